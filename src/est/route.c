/*
 * route.c: request paths to EST operations and labels (see route.h).
 * Paths are compared byte for byte, as RFC 3986 §6.2.1 wants for the path
 * component: "/.well-known/EST/cacerts" is not an EST path.
 */
#include <string.h>

#include "est/route.h"

/* Every EST path starts with this (RFC 7030 §3.2.2, RFC 8615). */
#define ROUTE_PREFIX "/.well-known/est/"

/* What estrad knows about one operation. */
struct route_op {
	const char *name;   /* path segment */
	const char *method; /* the one HTTP method it accepts */
};

/* Indexed by enum est_operation; RFC 7030 §3.2.2 table and §4. */
static const struct route_op route_ops[EST_OPERATION__MAX] = {
    [EST_OP_CACERTS] = {"cacerts", "GET"},
    [EST_OP_SIMPLEENROLL] = {"simpleenroll", "POST"},
    [EST_OP_SIMPLEREENROLL] = {"simplereenroll", "POST"},
    [EST_OP_CSRATTRS] = {"csrattrs", "GET"},
    [EST_OP_FULLCMC] = {"fullcmc", "POST"},
    [EST_OP_SERVERKEYGEN] = {"serverkeygen", "POST"},
};

/*
 * Returns the operation named by the len bytes at seg, or
 * EST_OPERATION__MAX when none is.
 */
static enum est_operation
route_op_lookup(const char *seg, size_t len)
{
	int i;

	for (i = 0; i < EST_OPERATION__MAX; i++) {
		if (strlen(route_ops[i].name) == len &&
		    memcmp(route_ops[i].name, seg, len) == 0)
			return (enum est_operation)i;
	}
	return EST_OPERATION__MAX;
}

/*
 * Returns 1 when the len bytes at seg are a label: 1 to EST_LABEL_MAX of
 * [A-Za-z0-9._-], not an operation name (RFC 7030 §3.2.2 forbids that),
 * and not "." or "..", which are dot-segments (RFC 3986 §3.3) that a
 * client should have removed and a proxy may resolve differently.
 */
static int
route_label_ok(const char *seg, size_t len)
{
	size_t i;
	char c;

	if (len == 0 || len > EST_LABEL_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		c = seg[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	if ((len == 1 && seg[0] == '.') ||
	    (len == 2 && seg[0] == '.' && seg[1] == '.'))
		return 0;
	return route_op_lookup(seg, len) == EST_OPERATION__MAX;
}

enum est_route_status
est_route_parse(const char *uri, struct est_route *route)
{
	enum est_route_status status = EST_ROUTE_NOT_EST;
	enum est_operation op;
	const char *path, *end, *slash, *seg;
	size_t len;

	if (route == NULL)
		goto out;
	/* Nothing of a refused path is kept, not even its operation. */
	route->op = EST_OPERATION__MAX;
	route->label[0] = '\0';
	if (uri == NULL ||
	    strncmp(uri, ROUTE_PREFIX, strlen(ROUTE_PREFIX)) != 0)
		goto out;

	/* The query is ignored; one trailing slash is tolerated. */
	path = uri + strlen(ROUTE_PREFIX);
	end = path + strcspn(path, "?");
	if (end > path && end[-1] == '/')
		end--;

	/*
	 * The operation is the last segment and is checked first, so that
	 * an unknown operation under any label is UNKNOWN_OP.  Whatever
	 * precedes it must be exactly one label segment; a second slash
	 * makes it a bad label.
	 */
	slash = memrchr(path, '/', (size_t)(end - path));
	seg = slash != NULL ? slash + 1 : path;
	if ((op = route_op_lookup(seg, (size_t)(end - seg))) ==
	    EST_OPERATION__MAX) {
		status = EST_ROUTE_UNKNOWN_OP;
		goto out;
	}
	if (slash != NULL) {
		len = (size_t)(slash - path);
		if (!route_label_ok(path, len)) {
			status = EST_ROUTE_BAD_LABEL;
			goto out;
		}
		memcpy(route->label, path, len);
		route->label[len] = '\0';
	}
	route->op = op;
	status = EST_ROUTE_OK;
out:
	return status;
}

const char *
est_route_op_name(enum est_operation op)
{
	if ((int)op < 0 || op >= EST_OPERATION__MAX)
		return "unknown";
	return route_ops[op].name;
}

const char *
est_route_op_method(enum est_operation op)
{
	/* No method fits a value outside the enum; say so in the log. */
	if ((int)op < 0 || op >= EST_OPERATION__MAX)
		return "unknown";
	return route_ops[op].method;
}
