/*
 * route.h: mapping of request paths to EST operations and CA labels
 * (RFC 7030 §3.2.2): /.well-known/est/<op> and
 * /.well-known/est/<label>/<op>.  Query strings are ignored.
 */
#ifndef ESTRAD_EST_ROUTE_H
#define ESTRAD_EST_ROUTE_H

#include <stddef.h>

/* EST operations, including the ones estrad answers 501 for. */
enum est_operation {
	EST_OP_CACERTS,
	EST_OP_SIMPLEENROLL,
	EST_OP_SIMPLEREENROLL,
	EST_OP_CSRATTRS,
	EST_OP_FULLCMC,
	EST_OP_SERVERKEYGEN,
	EST_OPERATION__MAX
};

/* Path-parse outcomes. */
enum est_route_status {
	EST_ROUTE_OK,
	EST_ROUTE_NOT_EST,    /* not under /.well-known/est/ */
	EST_ROUTE_UNKNOWN_OP, /* last segment is no EST operation */
	EST_ROUTE_BAD_LABEL   /* label segment has forbidden bytes */
};

#define EST_LABEL_MAX 64

struct est_route {
	enum est_operation op;
	/* The label segment, "" for the unlabelled (default) path. Labels
	 * match [A-Za-z0-9._-]{1,64}. */
	char label[EST_LABEL_MAX + 1];
};

/*
 * Parses uri (the request target as received, e.g.
 * "/.well-known/est/phones/simpleenroll?x=1") into route.  A trailing
 * slash is tolerated; percent-encoding is not decoded (labels never need
 * it), so "%2e" is a bad label.  Returns the status.
 */
enum est_route_status est_route_parse(const char *uri, struct est_route *route);

/* Returns the operation's path name ("simpleenroll"). */
const char *est_route_op_name(enum est_operation op);

/* Returns the HTTP method the operation accepts: "GET" or "POST". */
const char *est_route_op_method(enum est_operation op);

#endif
