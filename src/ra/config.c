/*
 * config.c: loads estrad's JSON configuration with jansson and checks all
 * of it before anything starts: every key, type and range, every file it
 * names (parsed with OpenSSL where they hold certificates or keys), every
 * listen address and every label's CA backend.  jansson does not say where
 * a value sits in the file, so a small scanner over the text finds the line
 * and column of a key path for the error messages.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/conf.h"
#include "core/error.h"
#include "core/escape.h"
#include "core/log.h"
#include "ra/config.h"
#include "ra/log.h"
#include "ra/safedir.h"

/* The configuration file is small; anything larger is a mistake. */
#define CFG_FILE_MAX (4 * 1024 * 1024)

/* Longest key path kept for messages and positions. */
#define CFG_PATH_MAX 512

/* Nesting the position scanner follows, as deep as jansson's parser. */
#define CFG_SCAN_DEPTH_MAX 2048

/* Most worker threads, whatever the number of cores. */
#define CFG_WORKERS_MAX 64

/*
 * TLS 1.2 default: forward-secret suites, AEAD first (Mozilla's
 * "intermediate" list), then ECDHE with AES-CBC and SHA-2 HMACs, because
 * strongSwan's pki on Debian 12 (no openssl plugin) offers nothing else and
 * is one of the EST clients estrad must serve.  TLS 1.3 suites are all
 * AEAD; OpenSSL's default stands unless ciphersuites is set.
 */
#define CFG_CIPHERS_DEFAULT                                                    \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"           \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"                 \
	"DHE-RSA-CHACHA20-POLY1305:"                                           \
	"ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"                   \
	"ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384"

/* State of one load: where messages go and what positions are read from. */
struct cfg {
	const char *file; /* the path as given, for messages */
	const char *text; /* the file's text, for positions */
	size_t len;
	char *err;
	size_t errlen;
	struct ra_config *config;
	SSL_CTX *scratch; /* tries cipher settings; created on first use */
};

static const char *const cfg_top_keys[] = {
    "listen", "workers", "tls",     "limits", "logs",  "users", "default_label",
    "labels", "pending", "metrics", "user",   "group", NULL,
};

static const char *const cfg_metrics_keys[] = {
    "listen",
    NULL,
};

static const char *const cfg_pending_keys[] = {
    "dir", "lifetime", "max_records", "max_per_identity", NULL,
};

static const char *const cfg_tls_keys[] = {
    "cert",         "key",           "explicit_ca",
    "implicit_ca",  "min_version",   "request_client_cert",
    "ciphers",      "ciphersuites",  "session_timeout",
    "verify_depth", "max_cert_list", "max_key_bits",
    NULL,
};

static const char *const cfg_limits_keys[] = {
    "max_body",
    "max_headers",
    "timeout",
    "handshake_timeout",
    "request_timeout",
    "max_conns_per_client",
    "max_conns_per_worker",
    NULL,
};

static const char *const cfg_logs_keys[] = {
    "error", "access", "audit", "level", NULL,
};

static const char *const cfg_label_keys[] = {
    "auth",
    "b64_wrap",
    "accept_pem_armour",
    "include_chain",
    "retry_after",
    "ca_wait",
    "csrattrs",
    "ca",
    "anonymous",
    "trust",
    "require_client_auth_eku",
    "ra_clients",
    "reenroll",
    "crl",
    "pop",
    "tls_exporter",
    "policy",
    "authorizer",
    NULL,
};

/* Labels may not shadow an operation. */
static const char *const cfg_operations[] = {
    "cacerts",      "simpleenroll", "simplereenroll", "csrattrs", "fullcmc",
    "serverkeygen", NULL,
};

/* Names of enum core_log_level, in its order. */

/*
 * The position scanner.  It trusts nothing about the text: every read is
 * bounded by end, so it is safe on truncated or invalid input too.
 */
struct cfg_scan {
	const char *p;
	const char *end;
	int line;
	int col;
};

static void
cfg_scan_step(struct cfg_scan *s)
{
	if (*s->p == '\n') {
		if (s->line < INT_MAX)
			s->line++;
		s->col = 1;
	} else if (s->col < INT_MAX)
		s->col++;
	s->p++;
}

static void
cfg_scan_ws(struct cfg_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	                         *s->p == '\n' || *s->p == '\r'))
		cfg_scan_step(s);
}

/*
 * Skips the string whose opening quote s is on, setting *start and *len
 * to its raw bytes (escapes left as they are).  Returns 0, or -1 when the
 * text ends first.
 */
static int
cfg_scan_string(struct cfg_scan *s, const char **start, size_t *len)
{
	int rc = -1;

	cfg_scan_step(s);
	*start = s->p;
	while (s->p < s->end && *s->p != '"') {
		/* An escaped byte never ends the string, whatever it is. */
		if (*s->p == '\\') {
			cfg_scan_step(s);
			if (s->p >= s->end)
				goto out;
		}
		cfg_scan_step(s);
	}
	if (s->p >= s->end)
		goto out;
	*len = (size_t)(s->p - *start);
	cfg_scan_step(s);
	rc = 0;
out:
	return rc;
}

/*
 * Matches the name (len raw bytes) against the first component of path.
 * Returns 0 for no match, 1 when it is the last component, 2 when more
 * follows (*rest then points past the dot).  Comparing against the whole
 * remaining path rather than a split component lets names that contain
 * dots (labels may) match too.
 */
static int
cfg_scan_match(const char *path, const char *name, size_t len,
               const char **rest)
{
	int rc = 0;

	if (strnlen(path, len + 1) < len || memcmp(path, name, len) != 0)
		goto out;
	if (path[len] == '\0')
		rc = 1;
	else if (path[len] == '.') {
		*rest = path + len + 1;
		rc = 2;
	}
out:
	return rc;
}

static int cfg_scan_value(struct cfg_scan *s, const char *path, int last_is_key,
                          int depth, int *line, int *col);

/*
 * Scans the object s is on for path (NULL: just skip it).  Returns 1 when
 * found, 0 when skipped to past its closing brace, -1 on bad text.
 */
static int
cfg_scan_object(struct cfg_scan *s, const char *path, int last_is_key,
                int depth, int *line, int *col)
{
	const char *key, *rest;
	int kline, kcol, m, rc = -1;
	size_t klen;

	cfg_scan_step(s);
	cfg_scan_ws(s);
	if (s->p < s->end && *s->p == '}') {
		cfg_scan_step(s);
		rc = 0;
		goto out;
	}
	for (;;) {
		cfg_scan_ws(s);
		if (s->p >= s->end || *s->p != '"')
			goto out;
		kline = s->line;
		kcol = s->col;
		if (cfg_scan_string(s, &key, &klen) != 0)
			goto out;
		cfg_scan_ws(s);
		if (s->p >= s->end || *s->p != ':')
			goto out;
		cfg_scan_step(s);
		cfg_scan_ws(s);
		if (s->p >= s->end)
			goto out;
		rest = NULL;
		m = path != NULL ? cfg_scan_match(path, key, klen, &rest) : 0;
		if (m == 1) {
			*line = last_is_key ? kline : s->line;
			*col = last_is_key ? kcol : s->col;
			rc = 1;
			goto out;
		}
		/* A key that matched but whose value lacks the rest is not
		 * the end: another key may match too ("a" and "a.b"). */
		if ((rc = cfg_scan_value(s, rest, last_is_key, depth + 1, line,
		                         col)) != 0)
			goto out;
		rc = -1;
		cfg_scan_ws(s);
		if (s->p >= s->end || (*s->p != '}' && *s->p != ','))
			goto out;
		if (*s->p == '}') {
			cfg_scan_step(s);
			rc = 0;
			goto out;
		}
		cfg_scan_step(s);
	}
out:
	return rc;
}

/* As cfg_scan_object, for an array; elements are named by index. */
static int
cfg_scan_array(struct cfg_scan *s, const char *path, int last_is_key, int depth,
               int *line, int *col)
{
	const char *rest;
	char index[24];
	int m, n, rc = -1;
	size_t i;

	cfg_scan_step(s);
	cfg_scan_ws(s);
	if (s->p < s->end && *s->p == ']') {
		cfg_scan_step(s);
		rc = 0;
		goto out;
	}
	for (i = 0;; i++) {
		cfg_scan_ws(s);
		if (s->p >= s->end)
			goto out;
		rest = NULL;
		m = 0;
		if (path != NULL) {
			n = snprintf(index, sizeof(index), "%zu", i);
			m = cfg_scan_match(path, index, (size_t)n, &rest);
		}
		if (m == 1) {
			/* An element has no key: its value is the place. */
			*line = s->line;
			*col = s->col;
			rc = 1;
			goto out;
		}
		if ((rc = cfg_scan_value(s, rest, last_is_key, depth + 1, line,
		                         col)) != 0)
			goto out;
		rc = -1;
		cfg_scan_ws(s);
		if (s->p >= s->end || (*s->p != ']' && *s->p != ','))
			goto out;
		if (*s->p == ']') {
			cfg_scan_step(s);
			rc = 0;
			goto out;
		}
		cfg_scan_step(s);
	}
out:
	return rc;
}

/*
 * Scans the value s is on for path (NULL: skip it).  Returns 1 when found,
 * 0 when skipped, -1 on bad text or nesting deeper than jansson allows.
 */
static int
cfg_scan_value(struct cfg_scan *s, const char *path, int last_is_key, int depth,
               int *line, int *col)
{
	static const char delimiters[] = ",}] \t\n\r\"{[:";
	const char *start;
	size_t len;
	int rc = -1;

	if (depth > CFG_SCAN_DEPTH_MAX || s->p >= s->end)
		goto out;
	if (*s->p == '{')
		rc = cfg_scan_object(s, path, last_is_key, depth, line, col);
	else if (*s->p == '[')
		rc = cfg_scan_array(s, path, last_is_key, depth, line, col);
	else if (*s->p == '"')
		rc = cfg_scan_string(s, &start, &len);
	else {
		/* A number, true, false or null runs to the next delimiter;
		 * an empty one is a byte no value starts with. */
		start = s->p;
		while (s->p < s->end && memchr(delimiters, *s->p,
		                               sizeof(delimiters) - 1) == NULL)
			cfg_scan_step(s);
		rc = s->p > start ? 0 : -1;
	}
out:
	return rc;
}

int
ra_config_locate(const char *text, size_t len, const char *path,
                 int last_is_key, int *line, int *column)
{
	struct cfg_scan s;
	int l = 0, c = 0, rc = -1;

	if (text == NULL || path == NULL || line == NULL || column == NULL)
		goto out;
	s.p = text;
	s.end = text + len;
	s.line = 1;
	s.col = 1;
	cfg_scan_ws(&s);
	if (s.p >= s.end)
		goto out;
	/* The empty path is the whole document, which has no key. */
	if (*path == '\0') {
		if (last_is_key)
			goto out;
		l = s.line;
		c = s.col;
	} else if (cfg_scan_value(&s, path, last_is_key, 0, &l, &c) != 1)
		goto out;
	*line = l;
	*column = c;
	rc = 0;
out:
	return rc;
}

/* Copies s into buf (size len) for a message, escaped (core/escape.h). */
static const char *
cfg_printable(const char *s, char *buf, size_t len)
{
	return core_escape(s, CORE_ESCAPE_INNER, buf, len);
}

/*
 * Writes "FILE:LINE:COL: SHOWN: reason" into the load's err and returns -1.
 * The position is that of the key at path `where` when at_key is set, else
 * of its value; when where is not in the text (a missing key), that of the
 * nearest enclosing value that is.  shown is the key path printed; NULL
 * prints where, "" prints none.
 */
static int cfg_error(struct cfg *c, const char *where, int at_key,
                     const char *shown, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
cfg_error(struct cfg *c, const char *where, int at_key, const char *shown,
          const char *fmt, ...)
{
	char path[CFG_PATH_MAX], reason[1024], *dot;
	int line = 0, col = 0, found = 0;
	va_list ap;

	if (c->err == NULL || c->errlen == 0)
		goto out;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (shown == NULL)
		shown = where;
	/* Walk up from where until some enclosing value is in the text; the
	 * root always is, as jansson parsed it. */
	snprintf(path, sizeof(path), "%s", where);
	for (;;) {
		if (ra_config_locate(c->text, c->len, path, at_key, &line,
		                     &col) == 0) {
			found = 1;
			break;
		}
		if (path[0] == '\0')
			break;
		at_key = 0;
		if ((dot = strrchr(path, '.')) != NULL)
			*dot = '\0';
		else
			path[0] = '\0';
	}
	if (found && shown[0] != '\0')
		snprintf(c->err, c->errlen, "%s:%d:%d: %s: %s", c->file, line,
		         col, shown, reason);
	else if (found)
		snprintf(c->err, c->errlen, "%s:%d:%d: %s", c->file, line, col,
		         reason);
	else if (shown[0] != '\0')
		snprintf(c->err, c->errlen, "%s: %s: %s", c->file, shown,
		         reason);
	else
		snprintf(c->err, c->errlen, "%s: %s", c->file, reason);
out:
	return -1;
}

/* As cfg_error, with the OpenSSL error queue appended and drained. */
static int cfg_ssl_error(struct cfg *c, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
cfg_ssl_error(struct cfg *c, const char *where, const char *fmt, ...)
{
	char reason[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	core_ssl_errors_append(reason, sizeof(reason));
	return cfg_error(c, where, 0, NULL, "%s", reason);
}

/*
 * Cuts a key path that did not fit its buffer back to its last whole
 * component, so that it still names a parent of what was meant; positions
 * fall back to that parent.
 */
static void
cfg_cut(char *buf, size_t len, int n)
{
	char *dot;

	if (n >= 0 && (size_t)n < len)
		return;
	if ((dot = strrchr(buf, '.')) != NULL)
		*dot = '\0';
	else
		buf[0] = '\0';
}

/* Writes the key path "objpath.key" into buf (size len). */
static void
cfg_join(char *buf, size_t len, const char *objpath, const char *key)
{
	cfg_cut(buf, len,
	        snprintf(buf, len, "%s%s%s", objpath,
	                 objpath[0] != '\0' ? "." : "", key));
}

/* As cfg_join, for the element at index of the array at objpath. */
static void
cfg_join_index(char *buf, size_t len, const char *objpath, size_t index)
{
	cfg_cut(buf, len, snprintf(buf, len, "%s.%zu", objpath, index));
}

/* Describes v for "got ..." in messages: strings quoted, numbers as is. */
static const char *
cfg_value_text(const json_t *v, char *buf, size_t len)
{
	char tmp[128];

	switch (json_typeof(v)) {
	case JSON_STRING:
		snprintf(buf, len, "\"%s\"",
		         cfg_printable(json_string_value(v), tmp, sizeof(tmp)));
		break;
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
		         json_integer_value(v));
		break;
	case JSON_REAL:
		snprintf(buf, len, "%g", json_real_value(v));
		break;
	default:
		snprintf(buf, len, "%s", core_conf_type_name(v));
		break;
	}
	return buf;
}

static int
cfg_type_error(struct cfg *c, const char *path, const char *want,
               const json_t *v)
{
	return cfg_error(c, path, 0, NULL, "must be %s, got %s", want,
	                 core_conf_type_name(v));
}

/* Refuses any key of obj (at objpath) that is not in known. */
static int
cfg_check_keys(struct cfg *c, const json_t *obj, const char *objpath,
               const char *const *known)
{
	char path[CFG_PATH_MAX], name[128];
	const char *key;
	json_t *v;
	size_t i;
	int rc = -1;

	/* jansson's iterator takes a non-const object but only reads it;
	 * it goes in file order, so the first unknown key is reported. */
	json_object_foreach((json_t *)obj, key, v)
	{
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (known[i] != NULL)
			continue;
		cfg_join(path, sizeof(path), objpath, key);
		cfg_error(c, path, 1, objpath, "unknown key \"%s\"",
		          cfg_printable(key, name, sizeof(name)));
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/*
 * Gets the object under key of obj; *out is left NULL when absent and not
 * required.  Checks its keys against known.
 */
static int
cfg_get_object(struct cfg *c, const json_t *obj, const char *objpath,
               const char *key, int required, const char *const *known,
               const json_t **out)
{
	char path[CFG_PATH_MAX];
	const json_t *v;
	int rc = -1;

	cfg_join(path, sizeof(path), objpath, key);
	*out = NULL;
	if ((v = json_object_get(obj, key)) == NULL) {
		if (required)
			cfg_error(c, path, 0, NULL, "required");
		else
			rc = 0;
		goto out;
	}
	if (!json_is_object(v)) {
		cfg_type_error(c, path, "an object", v);
		goto out;
	}
	if (cfg_check_keys(c, v, path, known) != 0)
		goto out;
	*out = v;
	rc = 0;
out:
	return rc;
}

/* Sets *out to the string under key, leaving it as is when absent. */
static int
cfg_get_string(struct cfg *c, const json_t *obj, const char *objpath,
               const char *key, int required, const char **out)
{
	char path[CFG_PATH_MAX];
	const json_t *v;
	int rc = -1;

	cfg_join(path, sizeof(path), objpath, key);
	if ((v = json_object_get(obj, key)) == NULL) {
		if (required)
			cfg_error(c, path, 0, NULL, "required");
		else
			rc = 0;
		goto out;
	}
	if (!json_is_string(v)) {
		cfg_type_error(c, path, "a string", v);
		goto out;
	}
	*out = json_string_value(v);
	rc = 0;
out:
	return rc;
}

static int
cfg_get_bool(struct cfg *c, const json_t *obj, const char *objpath,
             const char *key, int *out)
{
	char path[CFG_PATH_MAX];
	const json_t *v;
	int rc = -1;

	cfg_join(path, sizeof(path), objpath, key);
	if ((v = json_object_get(obj, key)) != NULL) {
		if (!json_is_boolean(v)) {
			cfg_type_error(c, path, "true or false", v);
			goto out;
		}
		*out = json_is_true(v);
	}
	rc = 0;
out:
	return rc;
}

static int
cfg_get_int(struct cfg *c, const json_t *obj, const char *objpath,
            const char *key, long long min, long long max, long long *out)
{
	char path[CFG_PATH_MAX];
	const json_t *v;
	long long n;
	int rc = -1;

	cfg_join(path, sizeof(path), objpath, key);
	if ((v = json_object_get(obj, key)) != NULL) {
		if (!json_is_integer(v)) {
			cfg_type_error(c, path, "an integer", v);
			goto out;
		}
		n = json_integer_value(v);
		if (n < min || n > max) {
			cfg_error(
			    c, path, 0, NULL,
			    "must be an integer from %lld to %lld, got %lld",
			    min, max, n);
			goto out;
		}
		*out = n;
	}
	rc = 0;
out:
	return rc;
}

/*
 * Rewrites *path with its directory resolved by realpath(3), so that logs
 * and messages show /srv/estrad/logs/error.log rather than
 * /srv/estrad/conf/../logs/error.log.  Leaves *path alone when the
 * directory does not exist (yet) or memory is short.
 */
static void
cfg_normalize(char **path)
{
	char *dir = NULL, *real = NULL, *joined = NULL, *slash;

	if ((dir = strdup(*path)) == NULL ||
	    (slash = strrchr(dir, '/')) == NULL || slash == dir)
		goto out;
	*slash = '\0';
	if ((real = realpath(dir, NULL)) == NULL ||
	    asprintf(&joined, "%s/%s", real, slash + 1) < 0)
		goto out;
	free(*path);
	*path = joined;
out:
	free(real);
	free(dir);
}

/*
 * Makes value (the string at path) absolute against the configuration's
 * directory.  Returns 0 with a new string in *out, or -1.
 */
static int
cfg_absolute(struct cfg *c, const char *path, const char *value, char **out)
{
	int rc = -1;

	*out = NULL;
	if (value[0] == '\0') {
		cfg_error(c, path, 0, NULL, "must not be empty");
		goto out;
	}
	if (value[0] == '/')
		*out = strdup(value);
	else if (asprintf(out, "%s/%s", c->config->dir, value) < 0)
		*out = NULL;
	if (*out == NULL) {
		cfg_error(c, path, 0, NULL, "out of memory");
		goto out;
	}
	cfg_normalize(out);
	rc = 0;
out:
	return rc;
}

/*
 * Opens file (named at path) for reading; it must be a regular file.
 * Returns the stream, or NULL with the error set.
 */
static FILE *
cfg_open(struct cfg *c, const char *path, const char *file)
{
	FILE *fp = NULL, *rc = NULL;
	struct stat st;

	if ((fp = fopen(file, "r")) == NULL) {
		cfg_error(c, path, 0, NULL, "%s: %s", file, strerror(errno));
		goto out;
	}
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
		cfg_error(c, path, 0, NULL, "%s: not a regular file", file);
		goto out;
	}
	rc = fp;
	fp = NULL;
out:
	if (fp != NULL)
		fclose(fp);
	return rc;
}

/* Notes that OpenSSL asked for a passphrase, and gives it none. */
static int
cfg_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	if (arg != NULL)
		*(int *)arg = 1;
	return -1;
}

/*
 * Reads every PEM certificate of file (named at path); there must be at
 * least one.  Returns a new stack (free with sk_X509_pop_free) or NULL.
 */
static STACK_OF(X509) *
cfg_read_certs(struct cfg *c, const char *path, const char *file)
{
	STACK_OF(X509) *certs = NULL, *rc = NULL;
	unsigned long e;
	BIO *bio = NULL;
	FILE *fp;
	X509 *x;

	if ((fp = cfg_open(c, path, file)) == NULL)
		goto out;
	if ((bio = BIO_new_fp(fp, BIO_CLOSE)) == NULL) {
		fclose(fp);
		cfg_ssl_error(c, path, "%s: out of memory", file);
		goto out;
	}
	if ((certs = sk_X509_new_null()) == NULL) {
		cfg_ssl_error(c, path, "%s: out of memory", file);
		goto out;
	}
	ERR_clear_error();
	while ((x = PEM_read_bio_X509_AUX(bio, NULL, cfg_no_passphrase,
	                                  NULL)) != NULL) {
		if (sk_X509_push(certs, x) <= 0) {
			X509_free(x);
			cfg_ssl_error(c, path, "%s: out of memory", file);
			goto out;
		}
	}
	/* Running out of PEM blocks is how the loop ends; anything else is
	 * a damaged block. */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	    ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
		cfg_ssl_error(c, path, "%s: cannot read certificate %d", file,
		              sk_X509_num(certs) + 1);
		goto out;
	}
	ERR_clear_error();
	if (sk_X509_num(certs) == 0) {
		cfg_error(c, path, 0, NULL, "%s: no PEM certificate in file",
		          file);
		goto out;
	}
	rc = certs;
	certs = NULL;
out:
	sk_X509_pop_free(certs, X509_free);
	BIO_free(bio);
	return rc;
}

/* Reads the unencrypted PEM private key of file; returns it new or NULL. */
static EVP_PKEY *
cfg_read_key(struct cfg *c, const char *path, const char *file)
{
	EVP_PKEY *rc = NULL;
	BIO *bio = NULL;
	int asked = 0;
	FILE *fp;

	if ((fp = cfg_open(c, path, file)) == NULL)
		goto out;
	if ((bio = BIO_new_fp(fp, BIO_CLOSE)) == NULL) {
		fclose(fp);
		cfg_ssl_error(c, path, "%s: out of memory", file);
		goto out;
	}
	ERR_clear_error();
	rc = PEM_read_bio_PrivateKey(bio, NULL, cfg_no_passphrase, &asked);
	if (rc == NULL && asked) {
		ERR_clear_error();
		cfg_error(c, path, 0, NULL,
		          "%s: the key is encrypted; estrad reads unencrypted "
		          "keys only (protect the file instead)",
		          file);
	} else if (rc == NULL)
		cfg_ssl_error(c, path, "%s: cannot read a PEM private key",
		              file);
out:
	BIO_free(bio);
	return rc;
}

/* Gets the scratch context that cipher settings are tried on. */
static SSL_CTX *
cfg_scratch(struct cfg *c, const char *path)
{
	if (c->scratch == NULL &&
	    (c->scratch = SSL_CTX_new(TLS_server_method())) == NULL)
		cfg_ssl_error(c, path, "cannot create a TLS context");
	return c->scratch;
}

/* Reads an optional or required file path at objpath.key into *out. */
static int
cfg_get_path(struct cfg *c, const json_t *obj, const char *objpath,
             const char *key, int required, char **out)
{
	char path[CFG_PATH_MAX];
	const char *value = NULL;
	int rc = -1;

	cfg_join(path, sizeof(path), objpath, key);
	if (cfg_get_string(c, obj, objpath, key, required, &value) != 0 ||
	    (value != NULL && cfg_absolute(c, path, value, out) != 0))
		goto out;
	rc = 0;
out:
	return rc;
}

static int
cfg_load_tls(struct cfg *c, const json_t *root)
{
	struct ra_config *config = c->config;
	STACK_OF(X509) *certs = NULL, *ca = NULL;
	const char *ciphers = CFG_CIPHERS_DEFAULT;
	const char *suites = NULL, *version = "1.2";
	char got[160];
	long long n;
	const json_t *tls;
	EVP_PKEY *key = NULL;
	SSL_CTX *ctx;
	int rc = -1;

	if (cfg_get_object(c, root, "", "tls", 1, cfg_tls_keys, &tls) != 0)
		goto out;

	if (cfg_get_path(c, tls, "tls", "cert", 1, &config->tls.cert) != 0 ||
	    (certs = cfg_read_certs(c, "tls.cert", config->tls.cert)) == NULL)
		goto out;
	if (cfg_get_path(c, tls, "tls", "key", 1, &config->tls.key) != 0 ||
	    (key = cfg_read_key(c, "tls.key", config->tls.key)) == NULL)
		goto out;
	ERR_clear_error();
	if (X509_check_private_key(sk_X509_value(certs, 0), key) != 1) {
		cfg_ssl_error(
		    c, "tls.key",
		    "%s does not match the certificate of tls.cert (%s)",
		    config->tls.key, config->tls.cert);
		goto out;
	}

	/* The explicit store is required: the listener names its CAs in
	 * the CertificateRequest and certificate authentication checks
	 * against it (RFC 7030 §3.3.2). */
	if (cfg_get_path(c, tls, "tls", "explicit_ca", 1,
	                 &config->tls.explicit_ca) != 0 ||
	    (ca = cfg_read_certs(c, "tls.explicit_ca",
	                         config->tls.explicit_ca)) == NULL)
		goto out;
	sk_X509_pop_free(ca, X509_free);
	ca = NULL;
	if (cfg_get_path(c, tls, "tls", "implicit_ca", 0,
	                 &config->tls.implicit_ca) != 0)
		goto out;
	if (config->tls.implicit_ca != NULL) {
		if ((ca = cfg_read_certs(c, "tls.implicit_ca",
		                         config->tls.implicit_ca)) == NULL)
			goto out;
		sk_X509_pop_free(ca, X509_free);
		ca = NULL;
	}

	if (cfg_get_string(c, tls, "tls", "min_version", 0, &version) != 0)
		goto out;
	if (strcmp(version, "1.2") == 0)
		config->tls.min_version = TLS1_2_VERSION;
	else if (strcmp(version, "1.3") == 0)
		config->tls.min_version = TLS1_3_VERSION;
	else {
		cfg_error(c, "tls.min_version", 0, NULL,
		          "must be \"1.2\" or \"1.3\", got %s",
		          cfg_value_text(json_object_get(tls, "min_version"),
		                         got, sizeof(got)));
		goto out;
	}

	if (cfg_get_string(c, tls, "tls", "ciphers", 0, &ciphers) != 0)
		goto out;
	if ((ctx = cfg_scratch(c, "tls.ciphers")) == NULL)
		goto out;
	ERR_clear_error();
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		cfg_ssl_error(c, "tls.ciphers",
		              "OpenSSL selects no cipher from \"%s\"",
		              cfg_printable(ciphers, got, sizeof(got)));
		goto out;
	}
	if ((config->tls.ciphers = strdup(ciphers)) == NULL) {
		cfg_error(c, "tls.ciphers", 0, NULL, "out of memory");
		goto out;
	}
	if (cfg_get_string(c, tls, "tls", "ciphersuites", 0, &suites) != 0)
		goto out;
	if (suites != NULL) {
		ERR_clear_error();
		if (SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
			cfg_ssl_error(
			    c, "tls.ciphersuites",
			    "OpenSSL knows no TLS 1.3 suite in \"%s\"",
			    cfg_printable(suites, got, sizeof(got)));
			goto out;
		}
		if ((config->tls.ciphersuites = strdup(suites)) == NULL) {
			cfg_error(c, "tls.ciphersuites", 0, NULL,
			          "out of memory");
			goto out;
		}
	}

	config->tls.request_client_cert = 1;
	if (cfg_get_bool(c, tls, "tls", "request_client_cert",
	                 &config->tls.request_client_cert) != 0)
		goto out;
	n = 300;
	if (cfg_get_int(c, tls, "tls", "session_timeout", 1, 86400, &n) != 0)
		goto out;
	config->tls.session_timeout = (unsigned int)n;

	/* Bounds on what a client's certificate list costs the handshake,
	 * wide enough for real device chains: leaf, up to four intermediate
	 * CAs and the root, RSA keys up to 8192 bits, 16 KiB in all (six
	 * RSA-4096 certificates).  OpenSSL parses every certificate of the
	 * list (3.0: about 0.1 ms each) before estrad can count them: the
	 * byte bound is what bounds that work. */
	n = 4;
	if (cfg_get_int(c, tls, "tls", "verify_depth", 0, 32, &n) != 0)
		goto out;
	config->tls.verify_depth = (unsigned int)n;
	n = 16384;
	if (cfg_get_int(c, tls, "tls", "max_cert_list", 4096, 1048576, &n) != 0)
		goto out;
	config->tls.max_cert_list = (unsigned int)n;
	n = 8192;
	if (cfg_get_int(c, tls, "tls", "max_key_bits", 2048, 16384, &n) != 0)
		goto out;
	config->tls.max_key_bits = (unsigned int)n;
	rc = 0;
out:
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(ca, X509_free);
	EVP_PKEY_free(key);
	return rc;
}

static int
cfg_load_limits(struct cfg *c, const json_t *root)
{
	struct ra_config *config = c->config;
	const json_t *limits;
	long long body = 65536, headers = 8192, timeout = 30;
	/* A handshake with a client certificate takes a constrained device
	 * a few seconds, a CSR of a few KiB far less than half a minute even
	 * on a slow link; a slowloris client is cut that soon however it
	 * trickles (evhttp's timeout alone is one of inactivity). */
	long long handshake = 10, request = 30;
	/* Enough for a provisioning service or a NAT in front of many
	 * devices, far below the descriptors a worker has. */
	long long per_client = 256, per_worker = 8192;
	int rc = -1;

	if (cfg_get_object(c, root, "", "limits", 0, cfg_limits_keys,
	                   &limits) != 0)
		goto out;
	if (limits != NULL &&
	    (cfg_get_int(c, limits, "limits", "max_body", 1024,
	                 16 * 1024 * 1024, &body) != 0 ||
	     cfg_get_int(c, limits, "limits", "max_headers", 1024, 1024 * 1024,
	                 &headers) != 0 ||
	     cfg_get_int(c, limits, "limits", "timeout", 1, 3600, &timeout) !=
	         0 ||
	     cfg_get_int(c, limits, "limits", "handshake_timeout", 1, 300,
	                 &handshake) != 0 ||
	     cfg_get_int(c, limits, "limits", "request_timeout", 1, 3600,
	                 &request) != 0 ||
	     cfg_get_int(c, limits, "limits", "max_conns_per_client", 0,
	                 1000000, &per_client) != 0 ||
	     cfg_get_int(c, limits, "limits", "max_conns_per_worker", 0,
	                 1000000, &per_worker) != 0))
		goto out;
	config->limits.max_body = (size_t)body;
	config->limits.max_headers = (size_t)headers;
	config->limits.timeout = (unsigned int)timeout;
	config->limits.handshake_timeout = (unsigned int)handshake;
	config->limits.request_timeout = (unsigned int)request;
	config->limits.max_conns_per_client = (unsigned int)per_client;
	config->limits.max_conns_per_worker = (unsigned int)per_worker;
	/* Left out, the per-worker limit may be lowered to fit the
	 * descriptor limit (est/limits.c); given, it is kept or estrad
	 * refuses to start. */
	config->limits.per_worker_default =
	    limits == NULL ||
	    json_object_get(limits, "max_conns_per_worker") == NULL;
	rc = 0;
out:
	return rc;
}

/*
 * Makes the log path at path absolute and sees that its directory exists,
 * creating it (one level) when it does not, so that a fresh checkout can
 * run.  "-" (standard error) passes when dash_ok is set.
 */
static int
cfg_log_path(struct cfg *c, const char *path, const char *value, int dash_ok,
             char **out)
{
	char *file = NULL, *dir = NULL, *slash;
	struct stat st;
	int rc = -1;

	*out = NULL;
	if (strcmp(value, "-") == 0) {
		if (!dash_ok) {
			cfg_error(
			    c, path, 0, NULL,
			    "must be a file path (\"-\" is not allowed here)");
			goto out;
		}
		if ((*out = strdup("-")) == NULL) {
			cfg_error(c, path, 0, NULL, "out of memory");
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (cfg_absolute(c, path, value, &file) != 0)
		goto out;
	if ((dir = strdup(file)) == NULL) {
		cfg_error(c, path, 0, NULL, "out of memory");
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash[1] == '\0') {
		cfg_error(c, path, 0, NULL, "%s: names a directory, not a file",
		          file);
		goto out;
	}
	slash[slash == dir ? 1 : 0] = '\0';
	if (stat(dir, &st) != 0) {
		if (errno != ENOENT || mkdir(dir, 0750) != 0) {
			cfg_error(c, path, 0, NULL,
			          "cannot create directory %s: %s", dir,
			          strerror(errno));
			goto out;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		cfg_error(c, path, 0, NULL, "%s: not a directory", dir);
		goto out;
	}
	if (stat(file, &st) == 0 && S_ISDIR(st.st_mode)) {
		cfg_error(c, path, 0, NULL, "%s: is a directory", file);
		goto out;
	}
	cfg_normalize(&file);
	*out = file;
	file = NULL;
	rc = 0;
out:
	free(file);
	free(dir);
	return rc;
}

static int
cfg_load_logs(struct cfg *c, const json_t *root)
{
	struct ra_config *config = c->config;
	const char *error = "-", *access = NULL, *audit = NULL;
	const char *level = "info";
	const json_t *logs;
	char got[160];
	enum core_log_level parsed;
	int rc = -1;

	if (cfg_get_object(c, root, "", "logs", 0, cfg_logs_keys, &logs) != 0)
		goto out;
	if (logs != NULL &&
	    (cfg_get_string(c, logs, "logs", "error", 0, &error) != 0 ||
	     cfg_get_string(c, logs, "logs", "access", 0, &access) != 0 ||
	     cfg_get_string(c, logs, "logs", "audit", 0, &audit) != 0 ||
	     cfg_get_string(c, logs, "logs", "level", 0, &level) != 0))
		goto out;
	if (cfg_log_path(c, "logs.error", error, 1, &config->logs.error) != 0)
		goto out;
	if (access != NULL && cfg_log_path(c, "logs.access", access, 1,
	                                   &config->logs.access) != 0)
		goto out;
	if (audit != NULL &&
	    cfg_log_path(c, "logs.audit", audit, 0, &config->logs.audit) != 0)
		goto out;
	if (core_log_level_parse(level, &parsed) != 0) {
		cfg_error(c, "logs.level", 0, NULL,
		          "must be one of emerg, alert, crit, error, warn, "
		          "notice, info, debug, got %s",
		          cfg_value_text(json_object_get(logs, "level"), got,
		                         sizeof(got)));
		goto out;
	}
	config->logs.level = (int)parsed;
	rc = 0;
out:
	return rc;
}

/*
 * Checks one listen entry: "HOST:PORT" or "[IPV6]:PORT" with a port from 1
 * to 65535 and a host that resolves.
 */
static int
cfg_check_listen(struct cfg *c, const char *path, const char *entry)
{
	struct addrinfo hints, *res = NULL;
	const char *colon, *close, *port, *hstart;
	char host[256], shown[160], *end;
	unsigned long n;
	size_t hlen;
	int rc = -1, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	hints.ai_family = AF_UNSPEC;
	cfg_printable(entry, shown, sizeof(shown));
	if (entry[0] == '[') {
		if ((close = strchr(entry, ']')) == NULL || close[1] != ':') {
			cfg_error(c, path, 0, NULL,
			          "\"%s\" is not \"[ADDRESS]:PORT\"", shown);
			goto out;
		}
		hstart = entry + 1;
		hlen = (size_t)(close - hstart);
		port = close + 2;
		hints.ai_family = AF_INET6;
		hints.ai_flags |= AI_NUMERICHOST;
	} else {
		if ((colon = strrchr(entry, ':')) == NULL) {
			cfg_error(
			    c, path, 0, NULL,
			    "\"%s\" is not \"HOST:PORT\" or \"[ADDRESS]:PORT\"",
			    shown);
			goto out;
		}
		hstart = entry;
		hlen = (size_t)(colon - entry);
		port = colon + 1;
		if (memchr(hstart, ':', hlen) != NULL) {
			cfg_error(c, path, 0, NULL,
			          "\"%s\": an IPv6 address needs brackets, as "
			          "in \"[::1]:8443\"",
			          shown);
			goto out;
		}
	}
	if (hlen == 0) {
		cfg_error(c, path, 0, NULL,
		          "\"%s\" has no host (use 0.0.0.0 or [::] for every "
		          "address)",
		          shown);
		goto out;
	}
	if (hlen >= sizeof(host)) {
		cfg_error(c, path, 0, NULL, "\"%s\": host name too long",
		          shown);
		goto out;
	}
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';
	errno = 0;
	n = strtoul(port, &end, 10);
	if (port[0] < '0' || port[0] > '9' || *end != '\0' || errno != 0 ||
	    n < 1 || n > 65535) {
		cfg_error(c, path, 0, NULL,
		          "\"%s\": port must be from 1 to 65535", shown);
		goto out;
	}
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
		cfg_error(c, path, 0, NULL, "cannot resolve \"%s\": %s", shown,
		          e == EAI_SYSTEM ? strerror(errno) : gai_strerror(e));
		goto out;
	}
	rc = 0;
out:
	if (res != NULL)
		freeaddrinfo(res);
	return rc;
}

static int
cfg_load_listen(struct cfg *c, const json_t *root)
{
	struct ra_config *config = c->config;
	char path[CFG_PATH_MAX];
	const json_t *listen, *v;
	size_t i, j, n;
	int rc = -1;

	if ((listen = json_object_get(root, "listen")) == NULL) {
		if ((config->listen = calloc(1, sizeof(char *))) == NULL ||
		    (config->listen[0] = strdup("127.0.0.1:8443")) == NULL) {
			cfg_error(c, "listen", 0, NULL, "out of memory");
			goto out;
		}
		config->nlisten = 1;
		rc = 0;
		goto out;
	}
	if (!json_is_array(listen)) {
		cfg_type_error(c, "listen", "an array of \"HOST:PORT\" strings",
		               listen);
		goto out;
	}
	if ((n = json_array_size(listen)) == 0) {
		cfg_error(c, "listen", 0, NULL,
		          "must list at least one \"HOST:PORT\"");
		goto out;
	}
	if ((config->listen = calloc(n, sizeof(char *))) == NULL) {
		cfg_error(c, "listen", 0, NULL, "out of memory");
		goto out;
	}
	json_array_foreach(listen, i, v)
	{
		cfg_join_index(path, sizeof(path), "listen", i);
		if (!json_is_string(v)) {
			cfg_type_error(c, path, "a \"HOST:PORT\" string", v);
			goto out;
		}
		if (cfg_check_listen(c, path, json_string_value(v)) != 0)
			goto out;
		for (j = 0; j < i; j++)
			if (strcmp(config->listen[j], json_string_value(v)) ==
			    0) {
				cfg_error(c, path, 0, NULL,
				          "duplicate of listen.%zu", j);
				goto out;
			}
		if ((config->listen[i] = strdup(json_string_value(v))) ==
		    NULL) {
			cfg_error(c, path, 0, NULL, "out of memory");
			goto out;
		}
		config->nlisten++;
	}
	rc = 0;
out:
	return rc;
}

/*
 * The optional plain-HTTP metrics and health listener: off unless the
 * "metrics" object names an address, and meant for loopback or a
 * management network since it has no TLS and no authentication.
 */
static int
cfg_load_metrics(struct cfg *c, const json_t *root)
{
	const json_t *obj = NULL, *v;
	int rc = -1;

	if (cfg_get_object(c, root, "", "metrics", 0, cfg_metrics_keys, &obj) !=
	    0)
		goto out;
	if (obj == NULL) {
		rc = 0;
		goto out;
	}
	if ((v = json_object_get(obj, "listen")) == NULL) {
		cfg_error(c, "metrics", 0, NULL,
		          "needs \"listen\": \"HOST:PORT\", e.g. "
		          "\"127.0.0.1:9443\"");
		goto out;
	}
	if (!json_is_string(v)) {
		cfg_type_error(c, "metrics.listen", "a \"HOST:PORT\" string",
		               v);
		goto out;
	}
	if (cfg_check_listen(c, "metrics.listen", json_string_value(v)) != 0)
		goto out;
	if ((c->config->metrics_listen = strdup(json_string_value(v))) ==
	    NULL) {
		cfg_error(c, "metrics.listen", 0, NULL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

static int
cfg_load_workers(struct cfg *c, const json_t *root)
{
	long long n = 0;
	long cores;
	int rc = -1;

	if (cfg_get_int(c, root, "", "workers", 0, CFG_WORKERS_MAX, &n) != 0)
		goto out;
	if (n == 0) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		n = cores < 1                 ? 1
		    : cores > CFG_WORKERS_MAX ? CFG_WORKERS_MAX
		                              : cores;
	}
	c->config->workers = (int)n;
	rc = 0;
out:
	return rc;
}

/*
 * "user" and "group": whom estrad drops to after binding when started as
 * root.  Both must exist here, so that a typo stops -t rather than the
 * start-up at 3 a.m.
 */
static int
cfg_load_user(struct cfg *c, const json_t *root)
{
	const char *user = NULL, *group = NULL;
	int rc = -1;

	if (cfg_get_string(c, root, "", "user", 0, &user) != 0 ||
	    cfg_get_string(c, root, "", "group", 0, &group) != 0)
		goto out;
	if (group != NULL && user == NULL) {
		cfg_error(c, "group", 1, NULL, "needs \"user\" as well");
		goto out;
	}
	if (user != NULL && (user[0] == '\0' || getpwnam(user) == NULL)) {
		cfg_error(c, "user", 0, NULL, "no such user \"%s\" here", user);
		goto out;
	}
	if (group != NULL && (group[0] == '\0' || getgrnam(group) == NULL)) {
		cfg_error(c, "group", 0, NULL, "no such group \"%s\" here",
		          group);
		goto out;
	}
	if ((user != NULL && (c->config->user = strdup(user)) == NULL) ||
	    (group != NULL && (c->config->group = strdup(group)) == NULL)) {
		cfg_error(c, "user", 0, NULL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

static int
cfg_load_users(struct cfg *c, const json_t *root)
{
	struct ra_config *config = c->config;
	char msg[1024];
	FILE *fp;
	int rc = -1;

	if (cfg_get_path(c, root, "", "users", 0, &config->users) != 0)
		goto out;
	if (config->users == NULL) {
		rc = 0;
		goto out;
	}
	/* Opening it here gives the same message as every other file. */
	if ((fp = cfg_open(c, "users", config->users)) == NULL)
		goto out;
	fclose(fp);
	if ((config->users_table =
	         ra_users_load(config->users, msg, sizeof(msg))) == NULL) {
		cfg_error(c, "users", 0, NULL, "%s", msg);
		goto out;
	}
	/* The slot owns the table from here on; SIGHUP replaces it. */
	if ((config->users_slot = ra_users_slot_new(config->users_table)) ==
	    NULL) {
		config->users_table = NULL;
		cfg_error(c, "users", 0, NULL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/*
 * The pending-request store: where 202 answers are remembered so that the
 * client's retry finds its request, even after a restart.
 */
static int
cfg_load_pending(struct cfg *c, const json_t *root)
{
	struct ra_config *config = c->config;
	struct ra_pending_params params;
	const json_t *obj = NULL;
	char msg[1024];
	long long n = 7 * 86400, records = RA_PENDING_MAX_RECORDS,
	          per_identity = RA_PENDING_MAX_PER_IDENTITY;
	int rc = -1;

	if (cfg_get_object(c, root, "", "pending", 0, cfg_pending_keys, &obj) !=
	    0)
		goto out;
	if (obj == NULL) {
		rc = 0;
		goto out;
	}
	if (cfg_get_path(c, obj, "pending", "dir", 1, &config->pending_dir) !=
	        0 ||
	    cfg_get_int(c, obj, "pending", "lifetime", 60, 90 * 86400, &n) !=
	        0 ||
	    cfg_get_int(c, obj, "pending", "max_records", 1, 1000000,
	                &records) != 0 ||
	    cfg_get_int(c, obj, "pending", "max_per_identity", 1, 1000000,
	                &per_identity) != 0)
		goto out;
	if (per_identity > records) {
		cfg_error(c, "pending.max_per_identity", 0, NULL,
		          "%lld is more than pending.max_records (%lld)",
		          per_identity, records);
		goto out;
	}
	config->pending_lifetime = (unsigned int)n;
	memset(&params, 0, sizeof(params));
	params.lifetime = config->pending_lifetime;
	params.max_records = (unsigned int)records;
	params.max_per_identity = (unsigned int)per_identity;
	/* The directory is checked for the user estrad writes as after the
	 * drop, at start and at every reload alike. */
	params.uid = ra_safedir_uid(config->user);
	if ((config->pending = ra_pending_open_dir(config->pending_dir, &params,
	                                           msg, sizeof(msg))) == NULL) {
		cfg_error(c, "pending.dir", 0, NULL, "%s", msg);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

static int
cfg_label_name_ok(const char *name)
{
	size_t i, len = strlen(name);
	int rc = 0;

	if (len < 1 || len > 64)
		goto out;
	for (i = 0; i < len; i++) {
		char ch = name[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			goto out;
	}
	rc = 1;
out:
	return rc;
}

static int
cfg_label_auth(struct cfg *c, struct ra_label *label, const json_t *obj,
               const char *lpath)
{
	char path[CFG_PATH_MAX], epath[CFG_PATH_MAX], got[160];
	const json_t *auth, *v;
	const char *s;
	int rc = -1;
	size_t i;

	cfg_join(path, sizeof(path), lpath, "auth");
	if ((auth = json_object_get(obj, "auth")) == NULL) {
		/* Basic is in the default only when there is a users file
		 * to check it against; listing it without one is the
		 * error. */
		label->auth = RA_AUTH_CERT;
		if (c->config->users_table != NULL)
			label->auth |= RA_AUTH_BASIC;
	} else if (json_is_string(auth)) {
		if (strcmp(json_string_value(auth), "none") != 0) {
			cfg_error(c, path, 0, NULL,
			          "must be \"none\" or an array of \"cert\" "
			          "and \"basic\", got %s",
			          cfg_value_text(auth, got, sizeof(got)));
			goto out;
		}
		label->auth = RA_AUTH_NONE;
	} else if (!json_is_array(auth)) {
		cfg_type_error(c, path,
		               "\"none\" or an array of \"cert\" and \"basic\"",
		               auth);
		goto out;
	} else if (json_array_size(auth) == 0) {
		cfg_error(c, path, 0, NULL,
		          "must list \"cert\" and/or \"basic\" (use \"none\" "
		          "for anonymous enrollment)");
		goto out;
	} else {
		label->auth = 0;
		json_array_foreach(auth, i, v)
		{
			cfg_join_index(epath, sizeof(epath), path, i);
			s = json_string_value(v);
			if (s != NULL && strcmp(s, "cert") == 0)
				label->auth |= RA_AUTH_CERT;
			else if (s != NULL && strcmp(s, "basic") == 0 &&
			         c->config->users_table != NULL)
				label->auth |= RA_AUTH_BASIC;
			else if (s != NULL && strcmp(s, "cert+basic") == 0 &&
			         c->config->users_table != NULL)
				label->auth |= RA_AUTH_CERT_BASIC;
			else if (s != NULL && (strcmp(s, "basic") == 0 ||
			                       strcmp(s, "cert+basic") == 0)) {
				cfg_error(c, epath, 0, NULL,
				          "\"basic\" needs the top-level "
				          "\"users\" file");
				goto out;
			} else {
				cfg_error(c, epath, 0, NULL,
				          "must be \"cert\", \"basic\" or "
				          "\"cert+basic\", got %s",
				          cfg_value_text(v, got, sizeof(got)));
				goto out;
			}
		}
	}
	rc = 0;
out:
	return rc;
}

static int
cfg_label_wrap(struct cfg *c, struct ra_label *label, const json_t *obj,
               const char *lpath)
{
	char path[CFG_PATH_MAX], got[160];
	const json_t *v;
	const char *s;
	int rc = -1;

	cfg_join(path, sizeof(path), lpath, "b64_wrap");
	label->b64_wrap = RA_WRAP_AUTO;
	if ((v = json_object_get(obj, "b64_wrap")) != NULL) {
		s = json_string_value(v);
		if (s != NULL && strcmp(s, "auto") == 0)
			label->b64_wrap = RA_WRAP_AUTO;
		else if (s != NULL && strcmp(s, "none") == 0)
			label->b64_wrap = RA_WRAP_NONE;
		else if (json_is_integer(v) && (json_integer_value(v) == 0 ||
		                                json_integer_value(v) == 64 ||
		                                json_integer_value(v) == 76))
			label->b64_wrap = (int)json_integer_value(v);
		else {
			cfg_error(
			    c, path, 0, NULL,
			    "must be \"auto\", \"none\", 0, 64 or 76, got %s",
			    cfg_value_text(v, got, sizeof(got)));
			goto out;
		}
	}
	rc = 0;
out:
	return rc;
}

/* Says whether OpenSSL knows s as an OID or an object name. */
static int
cfg_oid_ok(const char *s)
{
	ASN1_OBJECT *obj = NULL;
	int rc = 0;

	if (s[0] == '\0' || (obj = OBJ_txt2obj(s, 0)) == NULL) {
		/* The unknown name is reported by the caller, not the
		 * OpenSSL queue. */
		ERR_clear_error();
		goto out;
	}
	rc = 1;
out:
	ASN1_OBJECT_free(obj);
	return rc;
}

static int
cfg_label_csrattrs(struct cfg *c, struct ra_label *label, const json_t *obj,
                   const char *lpath)
{
	char path[CFG_PATH_MAX], epath[CFG_PATH_MAX], shown[160];
	char part[256];
	const json_t *list, *v;
	const char *s, *colon;
	size_t i, n, klen;
	int rc = -1;

	cfg_join(path, sizeof(path), lpath, "csrattrs");
	if ((list = json_object_get(obj, "csrattrs")) == NULL) {
		rc = 0;
		goto out;
	}
	if (!json_is_array(list)) {
		cfg_type_error(c, path, "an array of strings", list);
		goto out;
	}
	if ((n = json_array_size(list)) > 0 &&
	    (label->csrattrs = calloc(n, sizeof(char *))) == NULL) {
		cfg_error(c, path, 0, NULL, "out of memory");
		goto out;
	}
	json_array_foreach(list, i, v)
	{
		cfg_join_index(epath, sizeof(epath), path, i);
		if ((s = json_string_value(v)) == NULL) {
			cfg_type_error(c, epath, "a string", v);
			goto out;
		}
		cfg_printable(s, shown, sizeof(shown));
		if ((colon = strchr(s, ':')) != NULL) {
			/* "KEYTYPE:PARAM": both halves must be objects. */
			klen = (size_t)(colon - s);
			if (klen < sizeof(part)) {
				memcpy(part, s, klen);
				part[klen] = '\0';
			}
			if (klen >= sizeof(part) || !cfg_oid_ok(part) ||
			    !cfg_oid_ok(colon + 1)) {
				cfg_error(
				    c, epath, 0, NULL,
				    "\"%s\" is not \"KEYTYPE:PARAM\" with both "
				    "parts OIDs or OpenSSL object names",
				    shown);
				goto out;
			}
		} else if (!cfg_oid_ok(s)) {
			cfg_error(c, epath, 0, NULL,
			          "\"%s\" is not an OID or OpenSSL object name",
			          shown);
			goto out;
		}
		if ((label->csrattrs[i] = strdup(s)) == NULL) {
			cfg_error(c, epath, 0, NULL, "out of memory");
			goto out;
		}
		label->ncsrattrs++;
	}
	rc = 0;
out:
	return rc;
}

static int
cfg_label_ca(struct cfg *c, struct ra_label *label, const json_t *obj,
             const char *lpath)
{
	char path[CFG_PATH_MAX], where[CFG_PATH_MAX];
	struct core_err err;
	const json_t *ca;
	int rc = -1;

	cfg_join(path, sizeof(path), lpath, "ca");
	if ((ca = json_object_get(obj, "ca")) == NULL) {
		cfg_error(c, path, 0, NULL, "required");
		goto out;
	}
	if (!json_is_object(ca)) {
		cfg_type_error(c, path, "an object", ca);
		goto out;
	}
	memset(&err, 0, sizeof(err));
	ERR_clear_error();
	if ((label->ca = ca_instance_new(ca, c->config->dir, &err)) == NULL) {
		/* The backend put what it wanted of the queue into text. */
		ERR_clear_error();
		cfg_join(where, sizeof(where), path, err.key);
		cfg_error(c, err.key[0] != '\0' ? where : path, 0, NULL, "%s",
		          err.text[0] != '\0' ? err.text
		                              : "the backend refused it");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

static const char *const cfg_trust_keys[] = {
    "enroll", "reenroll", "explicit_ca", "implicit_ca", "inherit", NULL,
};

static const char *const cfg_reenroll_keys[] = {
    "grace_days",
    "renew",
    "rekey",
    NULL,
};

static const char *const cfg_ra_keys[] = {
    "enabled",
    "waive_pop",
    "policy",
    NULL,
};

/* Reads the array of store names at objpath.key into *out. */
static int
cfg_trust_list(struct cfg *c, const json_t *obj, const char *objpath,
               const char *key, int reenroll, unsigned int *out)
{
	char path[CFG_PATH_MAX], epath[CFG_PATH_MAX], got[160];
	const json_t *list, *v;
	const char *s;
	int rc = -1;
	size_t i;

	cfg_join(path, sizeof(path), objpath, key);
	if ((list = json_object_get(obj, key)) == NULL) {
		rc = 0;
		goto out;
	}
	if (!json_is_array(list)) {
		cfg_type_error(
		    c, path, "an array of \"explicit\" and \"implicit\"", list);
		goto out;
	}
	*out = 0;
	json_array_foreach(list, i, v)
	{
		cfg_join_index(epath, sizeof(epath), path, i);
		s = json_string_value(v);
		if (s != NULL && strcmp(s, "explicit") == 0)
			*out |= RA_TRUST_BIT_EXPLICIT;
		else if (s != NULL && strcmp(s, "implicit") == 0 && !reenroll)
			*out |= RA_TRUST_BIT_IMPLICIT;
		else if (s != NULL && strcmp(s, "implicit") == 0) {
			/* RFC 7030 §3.3.2: renewal is of
			 * a certificate the EST CA issued. */
			cfg_error(c, epath, 0, NULL,
			          "simplereenroll renews certificates the EST "
			          "CA issued: only \"explicit\" is allowed");
			goto out;
		} else {
			cfg_error(
			    c, epath, 0, NULL,
			    "must be \"explicit\" or \"implicit\", got %s",
			    cfg_value_text(v, got, sizeof(got)));
			goto out;
		}
	}
	rc = 0;
out:
	return rc;
}

/*
 * "trust": the label's stores and which count for which operation.  A
 * label that names a store of its own uses its own stores only: the one it
 * leaves out is empty rather than tls.*'s, unless "inherit" asks for
 * tls.*'s.  Otherwise a label meant for one CA's certificates would also
 * take the manufacturer certificates of tls.implicit_ca, or every
 * certificate under the root that tls.explicit_ca lists.
 */
static int
cfg_label_trust(struct cfg *c, struct ra_label *label, const json_t *obj,
                const char *lpath)
{
	struct ra_config *config = c->config;
	char path[CFG_PATH_MAX], where[CFG_PATH_MAX], msg[512];
	STACK_OF(X509) *certs = NULL;
	const json_t *t;
	int rc = -1, inherit = 0;

	cfg_join(path, sizeof(path), lpath, "trust");
	if (cfg_get_object(c, obj, lpath, "trust", 0, cfg_trust_keys, &t) != 0)
		goto out;
	if (t != NULL && (cfg_get_path(c, t, path, "explicit_ca", 0,
	                               &label->explicit_ca) != 0 ||
	                  cfg_get_path(c, t, path, "implicit_ca", 0,
	                               &label->implicit_ca) != 0 ||
	                  cfg_get_bool(c, t, path, "inherit", &inherit) != 0))
		goto out;
	label->own_stores =
	    label->explicit_ca != NULL || label->implicit_ca != NULL;
	if (t != NULL && json_object_get(t, "inherit") != NULL &&
	    !label->own_stores) {
		cfg_join(where, sizeof(where), path, "inherit");
		cfg_error(c, where, 0, NULL,
		          "needs trust.explicit_ca or trust.implicit_ca: a "
		          "label without stores of its own uses tls.*'s");
		goto out;
	}
	if (label->explicit_ca != NULL) {
		cfg_join(where, sizeof(where), path, "explicit_ca");
		if ((certs = cfg_read_certs(c, where, label->explicit_ca)) ==
		    NULL)
			goto out;
		sk_X509_pop_free(certs, X509_free);
		certs = NULL;
	}
	if (label->implicit_ca != NULL) {
		cfg_join(where, sizeof(where), path, "implicit_ca");
		if ((certs = cfg_read_certs(c, where, label->implicit_ca)) ==
		    NULL)
			goto out;
		sk_X509_pop_free(certs, X509_free);
		certs = NULL;
	}
	if (!label->own_stores || inherit) {
		label->explicit_path = label->explicit_ca != NULL
		                           ? label->explicit_ca
		                           : config->tls.explicit_ca;
		label->implicit_path = label->implicit_ca != NULL
		                           ? label->implicit_ca
		                           : config->tls.implicit_ca;
	} else {
		label->explicit_path = label->explicit_ca;
		label->implicit_path = label->implicit_ca;
	}
	if (label->own_stores &&
	    (label->trust =
	         ra_trust_new(label->explicit_path, label->implicit_path, msg,
	                      sizeof(msg))) == NULL) {
		cfg_error(c, path, 0, NULL, "%s", msg);
		goto out;
	}
	/* Manufacturer certificates may enroll by default, never renew. */
	label->trust_enroll =
	    (label->explicit_path != NULL ? RA_TRUST_BIT_EXPLICIT : 0) |
	    (label->implicit_path != NULL ? RA_TRUST_BIT_IMPLICIT : 0);
	label->trust_reenroll =
	    label->explicit_path != NULL ? RA_TRUST_BIT_EXPLICIT : 0;
	if (t != NULL && (cfg_trust_list(c, t, path, "enroll", 0,
	                                 &label->trust_enroll) != 0 ||
	                  cfg_trust_list(c, t, path, "reenroll", 1,
	                                 &label->trust_reenroll) != 0))
		goto out;
	if ((label->trust_enroll & RA_TRUST_BIT_IMPLICIT) &&
	    label->implicit_path == NULL) {
		cfg_join(where, sizeof(where), path, "enroll");
		cfg_error(c, where, 0, NULL, "\"implicit\" needs %s",
		          label->own_stores && !inherit
		              ? "trust.implicit_ca (the label has stores of "
		                "its own; trust.inherit takes tls.implicit_ca)"
		              : "tls.implicit_ca or trust.implicit_ca");
		goto out;
	}
	if (((label->trust_enroll | label->trust_reenroll) &
	     RA_TRUST_BIT_EXPLICIT) &&
	    label->explicit_path == NULL) {
		cfg_join(where, sizeof(where), path,
		         (label->trust_enroll & RA_TRUST_BIT_EXPLICIT)
		             ? "enroll"
		             : "reenroll");
		cfg_error(c, where, 0, NULL,
		          "\"explicit\" needs trust.explicit_ca (the label has "
		          "stores of its own; trust.inherit takes "
		          "tls.explicit_ca)");
		goto out;
	}
	rc = 0;
out:
	sk_X509_pop_free(certs, X509_free);
	return rc;
}

/* Builds a policy from the object at objpath.key (absent: defaults). */
static int
cfg_policy(struct cfg *c, const json_t *obj, const char *objpath,
           const char *key, int absent_ok, struct ra_policy **out)
{
	char path[CFG_PATH_MAX], where[CFG_PATH_MAX];
	const json_t *v;
	struct core_err err;
	int rc = -1;

	cfg_join(path, sizeof(path), objpath, key);
	*out = NULL;
	v = json_object_get(obj, key);
	if (v == NULL && absent_ok) {
		rc = 0;
		goto out;
	}
	if (v != NULL && !json_is_object(v)) {
		cfg_type_error(c, path, "an object", v);
		goto out;
	}
	memset(&err, 0, sizeof(err));
	if ((*out = ra_policy_new(v, &err)) == NULL) {
		cfg_join(where, sizeof(where), path, err.key);
		if (strncmp(err.text, "unknown key", 11) == 0) {
			/* Reported at the key and named by its object, like
			 * every other unknown key. */
			char parent[CFG_PATH_MAX], *dot;

			snprintf(parent, sizeof(parent), "%s", where);
			if ((dot = strrchr(parent, '.')) != NULL)
				*dot = '\0';
			cfg_error(c, where, 1, parent, "%s", err.text);
		} else
			cfg_error(c, err.key[0] != '\0' ? where : path, 0, NULL,
			          "%s", err.text);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

static int
cfg_label_reenroll(struct cfg *c, struct ra_label *label, const json_t *obj,
                   const char *lpath)
{
	char path[CFG_PATH_MAX];
	const json_t *r;
	long long n = 0;
	int rc = -1;

	label->renew = 1;
	label->rekey = 1;
	cfg_join(path, sizeof(path), lpath, "reenroll");
	if (cfg_get_object(c, obj, lpath, "reenroll", 0, cfg_reenroll_keys,
	                   &r) != 0)
		goto out;
	if (r != NULL &&
	    (cfg_get_int(c, r, path, "grace_days", 0, 3650, &n) != 0 ||
	     cfg_get_bool(c, r, path, "renew", &label->renew) != 0 ||
	     cfg_get_bool(c, r, path, "rekey", &label->rekey) != 0))
		goto out;
	label->grace_days = (unsigned int)n;
	if (!label->renew && !label->rekey) {
		cfg_error(c, path, 0, NULL,
		          "renew and rekey are both false: use trust.reenroll "
		          "[] to turn re-enrollment off");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

static int
cfg_label_ra_clients(struct cfg *c, struct ra_label *label, const json_t *obj,
                     const char *lpath)
{
	char path[CFG_PATH_MAX];
	const json_t *r;
	int rc = -1;

	label->ra_waive_pop = 1;
	cfg_join(path, sizeof(path), lpath, "ra_clients");
	if (cfg_get_object(c, obj, lpath, "ra_clients", 0, cfg_ra_keys, &r) !=
	    0)
		goto out;
	if (r != NULL &&
	    (cfg_get_bool(c, r, path, "enabled", &label->ra_enabled) != 0 ||
	     cfg_get_bool(c, r, path, "waive_pop", &label->ra_waive_pop) != 0 ||
	     cfg_policy(c, r, path, "policy", 1, &label->ra_policy) != 0))
		goto out;
	rc = 0;
out:
	return rc;
}

/* "anonymous": the GET operations served without authentication. */
static int
cfg_label_anonymous(struct cfg *c, struct ra_label *label, const json_t *obj,
                    const char *lpath)
{
	char path[CFG_PATH_MAX], epath[CFG_PATH_MAX], got[160];
	const json_t *list, *v;
	const char *s;
	int rc = -1;
	size_t i;

	label->anonymous = RA_ANON_CACERTS | RA_ANON_CSRATTRS;
	cfg_join(path, sizeof(path), lpath, "anonymous");
	if ((list = json_object_get(obj, "anonymous")) == NULL) {
		rc = 0;
		goto out;
	}
	if (!json_is_array(list)) {
		cfg_type_error(
		    c, path, "an array of \"cacerts\" and \"csrattrs\"", list);
		goto out;
	}
	label->anonymous = 0;
	json_array_foreach(list, i, v)
	{
		cfg_join_index(epath, sizeof(epath), path, i);
		s = json_string_value(v);
		if (s != NULL && strcmp(s, "cacerts") == 0)
			label->anonymous |= RA_ANON_CACERTS;
		else if (s != NULL && strcmp(s, "csrattrs") == 0)
			label->anonymous |= RA_ANON_CSRATTRS;
		else {
			cfg_error(c, epath, 0, NULL,
			          "must be \"cacerts\" or \"csrattrs\", got %s",
			          cfg_value_text(v, got, sizeof(got)));
			goto out;
		}
	}
	rc = 0;
out:
	return rc;
}

/*
 * "pop" and "tls_exporter".  A label that requires linking asks for
 * challengePassword in csrattrs (RFC 8951 §4), so it is added when the
 * list lacks it.
 */
static int
cfg_label_pop(struct cfg *c, struct ra_label *label, const json_t *obj,
              const char *lpath)
{
	char path[CFG_PATH_MAX], got[160];
	const char *s = "optional";
	char **grown;
	int rc = -1;
	size_t i;

	cfg_join(path, sizeof(path), lpath, "pop");
	if (cfg_get_string(c, obj, lpath, "pop", 0, &s) != 0 ||
	    cfg_get_bool(c, obj, lpath, "tls_exporter", &label->tls_exporter) !=
	        0)
		goto out;
	if (strcmp(s, "off") == 0)
		label->pop = RA_POP_OFF;
	else if (strcmp(s, "optional") == 0)
		label->pop = RA_POP_OPTIONAL;
	else if (strcmp(s, "required") == 0)
		label->pop = RA_POP_REQUIRED;
	else {
		cfg_error(
		    c, path, 0, NULL,
		    "must be \"required\", \"optional\" or \"off\", got %s",
		    cfg_value_text(json_object_get(obj, "pop"), got,
		                   sizeof(got)));
		goto out;
	}
	if (label->pop == RA_POP_REQUIRED && !label->tls_exporter &&
	    c->config->tls.min_version == TLS1_3_VERSION) {
		cfg_error(c, path, 0, NULL,
		          "\"required\" needs TLS 1.2 (tls-unique) but "
		          "tls.min_version is \"1.3\": set tls_exporter "
		          "true or lower tls.min_version");
		goto out;
	}
	if (label->pop != RA_POP_REQUIRED) {
		rc = 0;
		goto out;
	}
	for (i = 0; i < label->ncsrattrs; i++)
		if (OBJ_txt2nid(label->csrattrs[i]) ==
		    NID_pkcs9_challengePassword)
			break;
	if (i == label->ncsrattrs) {
		if ((grown = reallocarray(label->csrattrs, label->ncsrattrs + 1,
		                          sizeof(char *))) == NULL) {
			cfg_error(c, path, 0, NULL, "out of memory");
			goto out;
		}
		label->csrattrs = grown;
		if ((label->csrattrs[label->ncsrattrs] =
		         strdup("challengePassword")) == NULL) {
			cfg_error(c, path, 0, NULL, "out of memory");
			goto out;
		}
		label->ncsrattrs++;
	}
	rc = 0;
out:
	return rc;
}

/* Everything that decides who may enroll on the label. */
static int
cfg_label_security(struct cfg *c, struct ra_label *label, const json_t *obj,
                   const char *lpath)
{
	char path[CFG_PATH_MAX], where[CFG_PATH_MAX], msg[512];
	const char *crl = NULL;
	struct core_err err;
	const json_t *v;
	char *crl_path = NULL;
	int rc = -1;

	/* A certificate without the clientAuth EKU was not issued for
	 * client authentication; a label may still accept it. */
	label->require_client_auth_eku = 1;
	if (cfg_label_anonymous(c, label, obj, lpath) != 0 ||
	    cfg_label_trust(c, label, obj, lpath) != 0 ||
	    cfg_get_bool(c, obj, lpath, "require_client_auth_eku",
	                 &label->require_client_auth_eku) != 0 ||
	    cfg_label_ra_clients(c, label, obj, lpath) != 0 ||
	    cfg_label_reenroll(c, label, obj, lpath) != 0 ||
	    cfg_label_pop(c, label, obj, lpath) != 0 ||
	    cfg_policy(c, obj, lpath, "policy", 0, &label->policy) != 0)
		goto out;
	cfg_join(path, sizeof(path), lpath, "crl");
	if (cfg_get_string(c, obj, lpath, "crl", 0, &crl) != 0)
		goto out;
	if (crl != NULL) {
		if (cfg_absolute(c, path, crl, &crl_path) != 0)
			goto out;
		if ((label->crl = ra_crl_load(crl_path, label->explicit_path,
		                              msg, sizeof(msg))) == NULL) {
			cfg_error(c, path, 0, NULL, "%s", msg);
			goto out;
		}
	}
	cfg_join(path, sizeof(path), lpath, "authorizer");
	if ((v = json_object_get(obj, "authorizer")) != NULL) {
		memset(&err, 0, sizeof(err));
		if ((label->authorizer =
		         ra_authorizer_new(v, c->config->dir, &err)) == NULL) {
			cfg_join(where, sizeof(where), path, err.key);
			cfg_error(c, err.key[0] != '\0' ? where : path, 0, NULL,
			          "%s", err.text);
			goto out;
		}
	}
	rc = 0;
out:
	free(crl_path);
	return rc;
}

static int
cfg_load_label(struct cfg *c, const char *name, const json_t *obj)
{
	struct ra_config *config = c->config;
	char lpath[CFG_PATH_MAX], shown[160];
	struct ra_label *label;
	long long n = 30;
	int rc = -1;
	size_t i;

	cfg_join(lpath, sizeof(lpath), "labels", name);
	cfg_printable(name, shown, sizeof(shown));
	if (!cfg_label_name_ok(name)) {
		cfg_error(c, lpath, 1, "labels",
		          "invalid label name \"%s\": use 1 to 64 letters, "
		          "digits, '.', '_' or '-'",
		          shown);
		goto out;
	}
	for (i = 0; cfg_operations[i] != NULL; i++)
		if (strcmp(name, cfg_operations[i]) == 0)
			break;
	if (cfg_operations[i] != NULL) {
		cfg_error(c, lpath, 1, "labels",
		          "label \"%s\" is an EST operation name", shown);
		goto out;
	}
	if (!json_is_object(obj)) {
		cfg_type_error(c, lpath, "an object", obj);
		goto out;
	}
	if (cfg_check_keys(c, obj, lpath, cfg_label_keys) != 0)
		goto out;
	/* In the config at once, so that ra_config_free() frees what a
	 * later check leaves half made. */
	if ((label = calloc(1, sizeof(*label))) == NULL) {
		cfg_error(c, lpath, 0, NULL, "out of memory");
		goto out;
	}
	config->labels[config->nlabels++] = label;
	if ((label->name = strdup(name)) == NULL) {
		cfg_error(c, lpath, 0, NULL, "out of memory");
		goto out;
	}
	label->accept_pem_armour = 1;
	if (cfg_label_auth(c, label, obj, lpath) != 0 ||
	    cfg_label_wrap(c, label, obj, lpath) != 0 ||
	    cfg_get_bool(c, obj, lpath, "accept_pem_armour",
	                 &label->accept_pem_armour) != 0 ||
	    cfg_get_bool(c, obj, lpath, "include_chain",
	                 &label->include_chain) != 0 ||
	    cfg_get_int(c, obj, lpath, "retry_after", 1, 86400, &n) != 0)
		goto out;
	label->retry_after = (unsigned int)n;
	n = 8;
	if (cfg_get_int(c, obj, lpath, "ca_wait", 1, 300, &n) != 0)
		goto out;
	label->ca_wait = (unsigned int)n;
	if (cfg_label_csrattrs(c, label, obj, lpath) != 0 ||
	    cfg_label_security(c, label, obj, lpath) != 0 ||
	    cfg_label_ca(c, label, obj, lpath) != 0)
		goto out;
	rc = 0;
out:
	return rc;
}

static int
cfg_load_labels(struct cfg *c, const json_t *root)
{
	struct ra_config *config = c->config;
	const char *name, *def = NULL;
	const json_t *labels;
	char shown[160];
	int rc = -1;
	json_t *v;
	size_t n;

	if ((labels = json_object_get(root, "labels")) == NULL) {
		cfg_error(c, "labels", 0, NULL, "required");
		goto out;
	}
	if (!json_is_object(labels)) {
		cfg_type_error(c, "labels", "an object", labels);
		goto out;
	}
	if ((n = json_object_size(labels)) == 0) {
		cfg_error(c, "labels", 0, NULL,
		          "must define at least one label");
		goto out;
	}
	if ((config->labels = calloc(n, sizeof(*config->labels))) == NULL) {
		cfg_error(c, "labels", 0, NULL, "out of memory");
		goto out;
	}
	json_object_foreach((json_t *)labels, name, v)
	{
		if (cfg_load_label(c, name, v) != 0)
			goto out;
	}

	if (cfg_get_string(c, root, "", "default_label", 0, &def) != 0)
		goto out;
	if (def != NULL)
		config->default_label = ra_config_label(config, def);
	else if ((config->default_label = ra_config_label(config, "default")) ==
	             NULL &&
	         config->nlabels == 1)
		config->default_label = config->labels[0];
	if (config->default_label == NULL && def != NULL) {
		cfg_error(c, "default_label", 0, NULL,
		          "no label \"%s\" in labels",
		          cfg_printable(def, shown, sizeof(shown)));
		goto out;
	}
	if (config->default_label == NULL) {
		cfg_error(c, "default_label", 0, NULL,
		          "required when there are several labels and none is "
		          "called \"default\"");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/*
 * Reads the whole file into a new buffer (free with free) of *len bytes.
 * Returns it, or NULL with "FILE: reason" in err.
 */
static char *
cfg_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	char *buf = NULL, *rc = NULL;
	struct stat st;
	FILE *fp;
	size_t n;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > CFG_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		         CFG_FILE_MAX);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	n = fread(buf, 1, (size_t)st.st_size + 1, fp);
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (n > (size_t)st.st_size) {
		snprintf(err, errlen, "%s: changed while being read", path);
		goto out;
	}
	buf[n] = '\0';
	*len = n;
	rc = buf;
	buf = NULL;
out:
	if (fp != NULL)
		fclose(fp);
	free(buf);
	return rc;
}

/* Sets config->path and config->dir, both absolute. */
static int
cfg_set_paths(struct ra_config *config, const char *path, char *err,
              size_t errlen)
{
	char *copy = NULL;
	int rc = -1;

	if ((config->path = realpath(path, NULL)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((copy = strdup(config->path)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	/* dirname() of an absolute path is absolute; copy it before it
	 * points into copy. */
	if ((config->dir = strdup(dirname(copy))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

struct ra_config *
ra_config_load(const char *path, char *err, size_t errlen)
{
	struct ra_config *config = NULL, *rc = NULL;
	char scratch_err[16];
	json_error_t jerr;
	json_t *root = NULL;
	char *text = NULL;
	struct cfg c;
	size_t len = 0;

	if (err == NULL || errlen == 0) {
		err = scratch_err;
		errlen = sizeof(scratch_err);
	}
	err[0] = '\0';
	memset(&c, 0, sizeof(c));
	c.file = path;
	c.err = err;
	c.errlen = errlen;
	if ((text = cfg_read_file(path, &len, err, errlen)) == NULL)
		goto out;
	c.text = text;
	c.len = len;
	if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line,
		         jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		cfg_error(&c, "", 0, "",
		          "the configuration must be a JSON object, got %s",
		          core_conf_type_name(root));
		goto out;
	}
	if ((config = calloc(1, sizeof(*config))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	c.config = config;
	if (cfg_set_paths(config, path, err, errlen) != 0)
		goto out;
	ERR_clear_error();
	if (cfg_check_keys(&c, root, "", cfg_top_keys) != 0 ||
	    cfg_load_listen(&c, root) != 0 || cfg_load_workers(&c, root) != 0 ||
	    cfg_load_user(&c, root) != 0 || cfg_load_tls(&c, root) != 0 ||
	    cfg_load_limits(&c, root) != 0 || cfg_load_logs(&c, root) != 0 ||
	    cfg_load_users(&c, root) != 0 || cfg_load_pending(&c, root) != 0 ||
	    cfg_load_labels(&c, root) != 0 || cfg_load_metrics(&c, root) != 0)
		goto out;
	rc = config;
	config = NULL;
out:
	/* Nothing a failed check left behind concerns the caller. */
	ERR_clear_error();
	SSL_CTX_free(c.scratch);
	ra_config_free(config);
	json_decref(root);
	free(text);
	return rc;
}

void
ra_config_free(struct ra_config *config)
{
	struct ra_label *label;
	size_t i, j;

	if (config == NULL)
		return;
	free(config->path);
	free(config->dir);
	for (i = 0; i < config->nlisten; i++)
		free(config->listen[i]);
	free(config->listen);
	free(config->tls.cert);
	free(config->tls.key);
	free(config->tls.explicit_ca);
	free(config->tls.implicit_ca);
	free(config->tls.ciphers);
	free(config->tls.ciphersuites);
	free(config->logs.error);
	free(config->logs.access);
	free(config->logs.audit);
	free(config->users);
	free(config->user);
	free(config->group);
	if (config->users_slot != NULL)
		ra_users_slot_free(config->users_slot);
	else
		ra_users_free(config->users_table);
	free(config->pending_dir);
	ra_pending_close(config->pending);
	free(config->metrics_listen);
	for (i = 0; i < config->nlabels; i++) {
		label = config->labels[i];
		free(label->name);
		for (j = 0; j < label->ncsrattrs; j++)
			free(label->csrattrs[j]);
		free(label->csrattrs);
		ca_instance_free(label->ca);
		free(label->explicit_ca);
		free(label->implicit_ca);
		ra_trust_free(label->trust);
		ra_policy_free(label->ra_policy);
		ra_policy_free(label->policy);
		ra_crl_free(label->crl);
		ra_authorizer_free(label->authorizer);
		free(label);
	}
	free(config->labels);
	free(config);
}

struct ra_label *
ra_config_label(const struct ra_config *config, const char *name)
{
	size_t i;

	if (config == NULL || name == NULL)
		return NULL;
	for (i = 0; i < config->nlabels; i++)
		if (strcmp(config->labels[i]->name, name) == 0)
			return config->labels[i];
	return NULL;
}

void
ra_config_log_crl(const struct ra_label *label)
{
	char when[32];

	if (label->crl == NULL ||
	    !ra_crl_stale(label->crl, when, sizeof(when)) ||
	    !ra_crl_claim_warning(label->crl))
		return;
	ra_log(CORE_LOG_ERROR, "ra.auth", NULL,
	       "publish a fresh CRL to that file, then send SIGHUP",
	       "CRL %s is past its nextUpdate (%s): label %s refuses the "
	       "client certificates it would check until a fresh one is "
	       "loaded",
	       ra_crl_path(label->crl), when, label->name);
}

void
ra_config_log_warnings(const struct ra_config *config)
{
	size_t i;

	for (i = 0; i < config->nlabels; i++)
		ra_config_log_crl(config->labels[i]);
}
