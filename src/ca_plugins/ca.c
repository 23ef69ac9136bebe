/*
 * ca.c: the backend registry, backend instances, and the call life cycle
 * shared by every CA backend: deferred completion, logging through ra's
 * hook, and OpenSSL error draining.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_plugins/ca.h"
#include "ca_plugins/http.h"
#include "ca_plugins/proc.h"

/* Every backend estrad is built with, in the order error messages list them. */
static const struct ca_backend *const ca_backends[] = {
    &ca_local_backend,
    &ca_certsrv_backend,
    &ca_dogtag_backend,
    &ca_helper_backend,
};

static ca_log_fn ca_log_hook;

const char *
ca_outcome_name(enum ca_outcome outcome)
{
	static const char *const names[CA_OUTCOME__MAX] = {
	    "ISSUED",        "PENDING",     "REJECTED",  "UNREACHABLE",
	    "MISCONFIGURED", "UNSUPPORTED", "CANCELLED",
	};

	if ((unsigned int)outcome >= CA_OUTCOME__MAX)
		return "UNKNOWN";
	return names[outcome];
}

const char *
ca_operation_name(enum ca_operation op)
{
	static const char *const names[CA_OPERATION__MAX] = {
	    "enroll", "reenroll", "poll", "cacerts", "health",
	};

	if ((unsigned int)op >= CA_OPERATION__MAX)
		return "unknown";
	return names[op];
}

int
ca_err_set(struct ca_err *err, const char *key, const char *fmt, ...)
{
	va_list ap;

	snprintf(err->key, sizeof(err->key), "%s", key != NULL ? key : "");
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return -1;
}

const char *
ca_conf_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a fractional number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

int
ca_conf_check_keys(const json_t *obj, const char *prefix,
                   const char *const *allowed, struct ca_err *err)
{
	char path[sizeof(err->key)], list[512];
	const char *key;
	json_t *value;
	size_t i, used;
	int rc = -1;

	/* jansson's iterator takes a non-const object but only reads it. */
	json_object_foreach((json_t *)obj, key, value)
	{
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] != NULL)
			continue;
		list[0] = '\0';
		for (i = 0, used = 0; allowed[i] != NULL; i++) {
			int n = snprintf(list + used, sizeof(list) - used,
			                 "%s%s", i > 0 ? ", " : "", allowed[i]);

			if (n < 0 || (size_t)n >= sizeof(list) - used)
				break;
			used += (size_t)n;
		}
		snprintf(path, sizeof(path), "%s%s", prefix, key);
		ca_err_set(err, path, "unknown key \"%s\" (allowed: %s)", key,
		           list);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int
ca_conf_clean_string(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t i, n = json_string_length(v);

	if (s == NULL || n == 0 || strlen(s) != n)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

int
ca_conf_read_password(const char *path, size_t max, char **out,
                      struct ca_err *err)
{
	static const char key[] = "password_file";
	char buf[4096 + 2];
	FILE *fp = NULL;
	size_t n;
	int rc = -1;

	*out = NULL;
	if (max > sizeof(buf) - 2)
		max = sizeof(buf) - 2;
	if ((fp = fopen(path, "re")) == NULL) {
		ca_err_set(err, key, "cannot read %s: %s", path,
		           strerror(errno));
		goto out;
	}
	n = fread(buf, 1, max + 1, fp);
	if (ferror(fp)) {
		ca_err_set(err, key, "cannot read %s: %s", path,
		           strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) > max) {
		ca_err_set(err, key,
		           "%s: the first line is longer than %zu bytes", path,
		           max);
		goto out;
	}
	if (buf[0] == '\0') {
		ca_err_set(err, key,
		           "%s: the first line (the password) is empty", path);
		goto out;
	}
	if ((*out = strdup(buf)) == NULL) {
		ca_err_set(err, key, "out of memory");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (fp != NULL)
		fclose(fp);
	return rc;
}

int
ca_conf_string(const json_t *conf, const char *key, size_t max, char **out,
               struct ca_err *err)
{
	const char *s;
	json_t *v;
	size_t i, n;
	int rc = -1;

	*out = NULL;
	if ((v = json_object_get(conf, key)) == NULL) {
		rc = 0;
		goto out;
	}
	if ((s = json_string_value(v)) == NULL) {
		ca_err_set(err, key, "\"%s\" must be a string, not %s", key,
		           ca_conf_type_name(v));
		goto out;
	}
	n = json_string_length(v);
	/* A NUL inside would silently cut the value short. */
	if (n == 0 || strlen(s) != n) {
		ca_err_set(err, key, "\"%s\" must be a non-empty string", key);
		goto out;
	}
	if (n > max) {
		ca_err_set(err, key, "\"%s\" is longer than %zu bytes", key,
		           max);
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			ca_err_set(err, key,
			           "\"%s\" must not hold control characters",
			           key);
			goto out;
		}
	if ((*out = strdup(s)) == NULL) {
		ca_err_set(err, key, "out of memory");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int
ca_conf_int(const json_t *conf, const char *key, long min, long max, long *out,
            struct ca_err *err)
{
	json_int_t n;
	json_t *v;
	int rc = -1;

	if ((v = json_object_get(conf, key)) == NULL) {
		rc = 0;
		goto out;
	}
	if (!json_is_integer(v)) {
		ca_err_set(err, key, "\"%s\" must be an integer, not %s", key,
		           ca_conf_type_name(v));
		goto out;
	}
	n = json_integer_value(v);
	if (n < min || n > max) {
		ca_err_set(
		    err, key,
		    "\"%s\" must be an integer from %ld to %ld, not %lld", key,
		    min, max, (long long)n);
		goto out;
	}
	*out = (long)n;
	rc = 0;
out:
	return rc;
}

int
ca_conf_file(const json_t *conf, const char *key, const char *conf_dir,
             char **path, struct ca_err *err)
{
	char *name = NULL, buf[PATH_MAX];
	struct stat st;
	FILE *fp = NULL;
	int n, rc = -1;

	*path = NULL;
	if (ca_conf_string(conf, key, PATH_MAX, &name, err) != 0)
		goto out;
	if (name == NULL) {
		rc = 0;
		goto out;
	}
	if (name[0] == '/' || conf_dir == NULL || conf_dir[0] == '\0')
		n = snprintf(buf, sizeof(buf), "%s", name);
	else
		n = snprintf(buf, sizeof(buf), "%s/%s", conf_dir, name);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		ca_err_set(err, key, "file name too long: %s", name);
		goto out;
	}
	if ((fp = fopen(buf, "re")) == NULL) {
		ca_err_set(err, key, "cannot read %s: %s", buf,
		           strerror(errno));
		goto out;
	}
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
		ca_err_set(err, key, "cannot read %s: not a regular file", buf);
		goto out;
	}
	if ((*path = strdup(buf)) == NULL) {
		ca_err_set(err, key, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (fp != NULL)
		fclose(fp);
	free(name);
	return rc;
}

char *
ca_hex_encode(const unsigned char *in, size_t n, char *out, size_t outlen)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (outlen == 0)
		return out;
	for (i = 0; i < n && 2 * i + 2 < outlen; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * i] = '\0';
	return out;
}

static EVP_MD *ca_sha256_fetched;
static pthread_once_t ca_sha256_once = PTHREAD_ONCE_INIT;

static void
ca_sha256_fetch(void)
{
	ca_sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
	ERR_clear_error();
}

const EVP_MD *
ca_sha256(void)
{
	pthread_once(&ca_sha256_once, ca_sha256_fetch);
	return ca_sha256_fetched != NULL ? ca_sha256_fetched : EVP_sha256();
}

STACK_OF(X509) *
ca_certs_read_pem(BIO *bio, int strict, int *count)
{
	STACK_OF(X509) *certs = NULL, *rc = NULL;
	unsigned long e;
	X509 *x;

	if (count != NULL)
		*count = 0;
	if (bio == NULL || (certs = sk_X509_new_null()) == NULL)
		goto out;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			goto out;
		}
		if (count != NULL)
			*count = sk_X509_num(certs);
	}
	/* The loop ends at the first read without a PEM block: the end of
	 * the data when that is the only error, else a broken block. */
	e = ERR_peek_last_error();
	if (sk_X509_num(certs) == 0 ||
	    (strict && (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	                ERR_GET_REASON(e) != PEM_R_NO_START_LINE)))
		goto out;
	ERR_clear_error();
	rc = certs;
	certs = NULL;
out:
	sk_X509_pop_free(certs, X509_free);
	return rc;
}

STACK_OF(X509) *
ca_chain_order(STACK_OF(X509) *in)
{
	STACK_OF(X509) *out = NULL;
	X509 *cur = NULL, *c;
	int i, j, n = sk_X509_num(in);

	for (i = 0; i < n && cur == NULL; i++) {
		c = sk_X509_value(in, i);
		for (j = 0; j < n; j++)
			if (j != i &&
			    X509_check_issued(c, sk_X509_value(in, j)) ==
			        X509_V_OK &&
			    X509_check_issued(sk_X509_value(in, j),
			                      sk_X509_value(in, j)) !=
			        X509_V_OK)
				break;
		if (j == n)
			cur = c;
	}
	if (cur == NULL || (out = sk_X509_new_null()) == NULL)
		return in;
	while (cur != NULL) {
		(void)sk_X509_delete_ptr(in, cur);
		if (!sk_X509_push(out, cur)) {
			X509_free(cur);
			break;
		}
		c = cur;
		cur = NULL;
		if (X509_check_issued(c, c) == X509_V_OK)
			break;
		for (i = 0; i < sk_X509_num(in); i++)
			if (X509_check_issued(sk_X509_value(in, i), c) ==
			    X509_V_OK) {
				cur = sk_X509_value(in, i);
				break;
			}
	}
	while (sk_X509_num(in) > 0)
		if (!sk_X509_push(out, sk_X509_shift(in)))
			break;
	sk_X509_pop_free(in, X509_free);
	ERR_clear_error();
	return out;
}

void
ca_set_log_hook(ca_log_fn hook)
{
	ca_log_hook = hook;
}

void
ca_log(const struct ca_call *call, enum ca_log_level level,
       const char *component, const char *hint, const char *fmt, ...)
{
	char message[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (ca_log_hook != NULL)
		ca_log_hook(call, level, component, hint, message);
	else
		fprintf(stderr, "%s: %s\n", component, message);
}

void
ca_ssl_errors_append(char *buf, size_t len)
{
	const char *data;
	unsigned long code;
	size_t used;
	int flags, first = 1;

	used = strnlen(buf, len);
	while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) !=
	       0) {
		char reason[256];
		int n;

		if (used + 2 >= len)
			continue; /* keep draining: the queue must end empty */
		ERR_error_string_n(code, reason, sizeof(reason));
		if (!(flags & ERR_TXT_STRING) || data == NULL)
			data = "";
		n = snprintf(buf + used, len - used, "%s%s%s%s",
		             first ? " (SSL: " : "; ", reason,
		             *data != '\0' ? ":" : "", data);
		first = 0;
		used = n < 0 ? len : used + (size_t)n;
		if (used >= len)
			used = len - 1;
	}
	if (first)
		return;
	/* Close the parenthesis, overwriting the last byte when full. */
	if (used + 1 < len) {
		buf[used] = ')';
		buf[used + 1] = '\0';
	} else {
		buf[len - 2] = ')';
		buf[len - 1] = '\0';
	}
}

void
ca_error_set(char *buf, size_t len, int ssl, const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || len == 0)
		goto out;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (ssl)
		ca_ssl_errors_append(buf, len);
out:
	ERR_clear_error();
}

struct ca_call *
ca_call_new(void)
{
	return calloc(1, sizeof(struct ca_call));
}

void
ca_call_free(struct ca_call *call)
{
	if (call == NULL)
		return;
	if (call->done_event != NULL)
		event_free(call->done_event);
	sk_X509_pop_free(call->result.chain, X509_free);
	free(call);
}

/*
 * Runs the completion callback from the loop, so that a backend that answers
 * at once (the local CA) still completes after its starting function
 * returned, like every network backend.
 */
static void
ca_call_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct ca_call *call = arg;

	(void)fd;
	(void)what;
	call->done_fn(call, call->done_arg);
}

void
ca_call_done(struct ca_call *call)
{
	ca_call_done_after(call, 0);
}

void
ca_call_done_after(struct ca_call *call, unsigned int delay_ms)
{
	const struct timeval when = {(time_t)(delay_ms / 1000),
	                             (suseconds_t)(delay_ms % 1000) * 1000};

	if (++call->done_count > 1) {
		ca_log(call, CA_LOG_ALERT, "ca.call", NULL,
		       "call completed twice: backend bug, second completion "
		       "ignored, op: %s",
		       ca_operation_name(call->op));
#ifndef NDEBUG
		abort();
#endif
		return;
	}
	if (call->done_event == NULL &&
	    (call->done_event =
	         evtimer_new(call->base, ca_call_deliver, call)) != NULL)
		(void)event_priority_set(call->done_event,
		                         CA_LOOP_PRIORITY_ONGOING);
	if (call->done_event == NULL ||
	    evtimer_add(call->done_event, &when) != 0) {
		/* Without an event the loop cannot run the callback later;
		 * running it now is the only way to not lose the request. */
		ca_log(call, CA_LOG_ALERT, "ca.call", NULL,
		       "cannot schedule completion: out of memory");
		call->done_fn(call, call->done_arg);
	}
}

void
ca_call_fail(struct ca_call *call, enum ca_outcome outcome, const char *hint,
             const char *fmt, ...)
{
	va_list ap;

	call->result.outcome = outcome;
	va_start(ap, fmt);
	vsnprintf(call->result.cause, sizeof(call->result.cause), fmt, ap);
	va_end(ap);
	if (hint != NULL)
		snprintf(call->result.hint, sizeof(call->result.hint), "%s",
		         hint);
	ca_call_done(call);
}

void
ca_loop_shutdown(struct event_base *base)
{
	ca_http_shutdown(base);
	ca_proc_shutdown(base);
}

const struct ca_backend *
ca_backend_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(ca_backends) / sizeof(ca_backends[0]); i++)
		if (strcmp(ca_backends[i]->name, name) == 0)
			return ca_backends[i];
	return NULL;
}

const char *
ca_backend_names(void)
{
	static char names[256];
	size_t i, used = 0;

	if (names[0] != '\0')
		return names;
	for (i = 0; i < sizeof(ca_backends) / sizeof(ca_backends[0]); i++) {
		int n = snprintf(names + used, sizeof(names) - used, "%s%s",
		                 i > 0 ? ", " : "", ca_backends[i]->name);
		if (n < 0 || (size_t)n >= sizeof(names) - used)
			break;
		used += (size_t)n;
	}
	return names;
}

struct ca_instance *
ca_instance_new(const json_t *conf, const char *conf_dir, struct ca_err *err)
{
	struct ca_instance *inst = NULL, *rc = NULL;
	const struct ca_backend *backend;
	const char *name;

	name = json_string_value(json_object_get(conf, "backend"));
	if (name == NULL) {
		ca_err_set(err, "backend",
		           "missing string \"backend\" (one "
		           "of: %s)",
		           ca_backend_names());
		goto out;
	}
	if ((backend = ca_backend_find(name)) == NULL) {
		ca_err_set(err, "backend",
		           "unknown backend \"%s\" (one of: "
		           "%s)",
		           name, ca_backend_names());
		goto out;
	}
	if ((inst = calloc(1, sizeof(*inst))) == NULL ||
	    (inst->priv = calloc(1, backend->priv_size > 0 ? backend->priv_size
	                                                   : 1)) == NULL) {
		ca_err_set(err, "backend", "out of memory");
		goto out;
	}
	inst->backend = backend;
	if (backend->configure(inst->priv, conf, conf_dir, err) != 0)
		goto out;
	rc = inst;
	inst = NULL;
out:
	ca_instance_free(inst);
	return rc;
}

void
ca_instance_free(struct ca_instance *inst)
{
	if (inst == NULL)
		return;
	if (inst->priv != NULL && inst->backend != NULL &&
	    inst->backend->unconfigure != NULL)
		inst->backend->unconfigure(inst->priv);
	free(inst->priv);
	free(inst);
}

void
ca_instance_start(struct ca_instance *inst, struct ca_call *call,
                  ca_call_done_fn done_fn, void *arg)
{
	const struct ca_backend *b = inst->backend;
	void (*op)(void *, struct ca_call *) = NULL;

	call->done_fn = done_fn;
	call->done_arg = arg;
	switch (call->op) {
	case CA_OP_ENROLL:
		if (b->caps & CA_CAP_ENROLL)
			op = b->enroll;
		break;
	case CA_OP_REENROLL:
		if (b->caps & CA_CAP_REENROLL)
			op = b->enroll;
		break;
	case CA_OP_POLL:
		if (b->caps & CA_CAP_POLL)
			op = b->poll;
		break;
	case CA_OP_CACERTS:
		if (b->caps & CA_CAP_CACERTS)
			op = b->cacerts;
		break;
	case CA_OP_HEALTH:
		if (b->caps & CA_CAP_HEALTH)
			op = b->health;
		break;
	default:
		break;
	}
	if (op == NULL) {
		ca_call_fail(call, CA_UNSUPPORTED, NULL,
		             "%s not supported by backend %s",
		             ca_operation_name(call->op), b->name);
		return;
	}
	op(inst->priv, call);
}
