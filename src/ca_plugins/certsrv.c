/*
 * certsrv.c: the AD CS web enrollment backend ("certsrv").  It drives the
 * certsrv ASP pages the way browsers and scripts do:
 * POST certfnsh.asp to submit, GET certnew.cer to collect, certcarc.asp and
 * certnew.p7b for the CA chain, the home page and certrqxt.asp for health.
 * Every exchange is an asynchronous transfer of http.c on the calling
 * worker's loop; pages are read by certsrv_page.c only.
 *
 * Configuration is read once on the main thread and is read-only after.
 * What changes while workers run, the URL that answered last and the CA
 * chain cache, sits behind one mutex.  The chain is fetched and refreshed
 * in the background on worker 0's loop (start/stop hooks).
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_plugins/ca.h"
#include "ca_plugins/certsrv_page.h"
#include "ca_plugins/http.h"
#include "core/certs.h"
#include "core/conf.h"
#include "core/error.h"
#include "core/log.h"

#define CS_COMPONENT "ca.certsrv"

#define CS_CAPS                                                                \
	(CA_CAP_ENROLL | CA_CAP_REENROLL | CA_CAP_POLL | CA_CAP_CACERTS |      \
	 CA_CAP_HEALTH | CA_CAP_FORWARDS_CSR)

/* Most base URLs of one label (a CA and its fail-over partners). */
#define CS_URLS_MAX 8

/* Defaults and limits of the numeric keys, in seconds. */
#define CS_CONNECT_TIMEOUT_DEFAULT 10
#define CS_CONNECT_TIMEOUT_MAX     300
#define CS_TIMEOUT_DEFAULT         60
#define CS_TIMEOUT_MAX             3600
#define CS_CHAIN_REFRESH_DEFAULT   3600
#define CS_CHAIN_REFRESH_MIN       60
#define CS_CHAIN_REFRESH_MAX       (7 * 24 * 3600)
#define CS_RETRY_AFTER_MAX         (7 * 24 * 3600)

/* Back-off of the background chain fetch while the CA cannot be reached:
 * from the first value, doubling, up to the last. */
#define CS_BACKOFF_MIN 5
#define CS_BACKOFF_MAX 300

/* The password file holds one line; anything longer is not a password. */
#define CS_PASSWORD_MAX 1024

/* Template names and CertAttrib lines are short in every real CA. */
#define CS_TEMPLATE_MAX 256
#define CS_ATTRIB_MAX   4096

#define CS_USER_AGENT_DEFAULT "Mozilla/5.0 (compatible; estrad certsrv backend)"

/* Per-label state. */
struct certsrv {
	/* Configuration: written by configure, read-only afterwards. */
	char *urls[CS_URLS_MAX]; /* base URLs without the trailing slash */
	size_t nurls;
	char *user;     /* passed to the CA unchanged; NULL: none */
	char *password; /* from password_file; never logged */
	enum ca_http_auth auth;
	char *client_cert; /* resolved paths, NULL when not set */
	char *client_key;
	char *ca_bundle;
	char *template_name;
	char *form_attrib; /* CertAttrib value, form-encoded */
	char *user_agent;
	long connect_timeout; /* seconds */
	long timeout;
	long chain_refresh;
	int fetch_chain;
	unsigned int retry_after; /* 0: the label's default */

	/* Shared by the workers, under lock. */
	pthread_mutex_t lock;
	int lock_init;
	size_t good_url;       /* the URL that answered last */
	STACK_OF(X509) *chain; /* cached CA chain, issuing CA first */
	int chain_failed;      /* the last fetch failed, no chain yet */
	char chain_cause[CA_CAUSE_MAX]; /* why it failed */
	struct cs_op *ops;              /* every operation running */

	/* Background work, on worker 0's loop only. */
	struct event_base *bg_base;
	struct event *bg_timer;
	struct cs_op *bg_op;
	long bg_backoff;
};

/* The exchange an operation is at. */
enum cs_step {
	CS_SUBMIT, /* POST certfnsh.asp */
	CS_FETCH,  /* GET certnew.cer (or .p7b) of a request */
	CS_CARC,   /* GET certcarc.asp: the renewal index */
	CS_CHAIN,  /* GET certnew.p7b?ReqID=CACert: the CA chain */
	CS_HOME,   /* GET the base URL: credentials */
	CS_RQXT,   /* GET certrqxt.asp: the template list */
	CS_STEP__MAX
};

/* One call, or one background chain fetch (call NULL). */
struct cs_op {
	struct certsrv *cs;
	struct ca_call *call; /* borrowed until completed; NULL: background */
	struct event_base *base;
	enum cs_step step;
	size_t url;             /* index into cs->urls */
	size_t tries;           /* URLs tried so far for this step */
	int failover;           /* the step may move to another URL */
	int poll;               /* a poll, not the end of an enroll */
	unsigned long req_id;   /* the CA's request id */
	unsigned long renewals; /* CS_CHAIN: nRenewals */
	char *form;             /* CS_SUBMIT body */
	struct ca_http_transfer *t;
	char page_url[CA_URL_MAX]; /* the URL of the current exchange */
	struct cs_op *prev, *next; /* cs->ops */
};

static const char *const cs_actions[CS_STEP__MAX] = {
    "submitting request",           "collecting certificate",
    "reading the CA renewal index", "fetching CA chain",
    "checking credentials",         "listing templates",
};

static const char *const cs_conf_keys[] = {
    "backend",  "urls",          "user",        "password_file",
    "auth",     "client_cert",   "client_key",  "ca_bundle",
    "template", "cert_attrib",   "user_agent",  "connect_timeout",
    "timeout",  "chain_refresh", "fetch_chain", "retry_after",
    NULL,
};

static void cs_step_start(struct cs_op *op);

/* --- configuration ---------------------------------------------------------
 */

/* Reads "urls": one or more http(s) base URLs, trailing slash dropped. */
static int
cs_conf_urls(struct certsrv *cs, const json_t *conf, struct core_err *err)
{
	char key[32];
	json_t *list, *v;
	size_t i, n;
	int rc = -1;

	if ((list = json_object_get(conf, "urls")) == NULL) {
		core_err_set(err, "urls",
		             "missing \"urls\" (the certsrv base URLs, e.g. "
		             "[\"https://ca1.example.com/certsrv\"])");
		goto out;
	}
	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > CS_URLS_MAX) {
		core_err_set(
		    err, "urls",
		    "\"urls\" must be an array of 1 to %d URLs, not %s",
		    CS_URLS_MAX, core_conf_type_name(list));
		goto out;
	}
	json_array_foreach(list, i, v)
	{
		const char *s;

		snprintf(key, sizeof(key), "urls.%zu", i);
		if (!json_is_string(v) || !core_conf_clean_string(v) ||
		    json_string_length(v) > CA_URL_MAX - 64) {
			core_err_set(err, key,
			             "element %zu must be a URL string of at "
			             "most %d bytes",
			             i + 1, CA_URL_MAX - 64);
			goto out;
		}
		s = json_string_value(v);
		if (strncmp(s, "https://", 8) != 0 &&
		    strncmp(s, "http://", 7) != 0) {
			core_err_set(err, key,
			             "\"%s\" is not an http:// or https:// URL",
			             s);
			goto out;
		}
		if (strchr(s, '?') != NULL || strchr(s, '#') != NULL ||
		    strchr(s, ' ') != NULL || strchr(s, '@') != NULL) {
			core_err_set(
			    err, key,
			    "\"%s\" must be a plain base URL (no query, "
			    "fragment, space or credentials)",
			    s);
			goto out;
		}
		if ((cs->urls[i] = strdup(s)) == NULL) {
			core_err_set(err, key, "out of memory");
			goto out;
		}
		n = strlen(cs->urls[i]);
		while (n > 0 && cs->urls[i][n - 1] == '/')
			cs->urls[i][--n] = '\0';
		cs->nurls = i + 1;
	}
	rc = 0;
out:
	return rc;
}

/* Reads "auth" into cs->auth; without it, ntlm with a user, else none. */
static int
cs_conf_auth(struct certsrv *cs, const json_t *conf, struct core_err *err)
{
	static const char *const names[] = {
	    "basic", "ntlm", "negotiate", "client-cert", "any", NULL,
	};
	static const enum ca_http_auth values[] = {
	    CA_HTTP_AUTH_BASIC,       CA_HTTP_AUTH_NTLM, CA_HTTP_AUTH_NEGOTIATE,
	    CA_HTTP_AUTH_CLIENT_CERT, CA_HTTP_AUTH_ANY,
	};
	const char *s;
	json_t *v;
	size_t i;
	int rc = -1;

	if ((v = json_object_get(conf, "auth")) == NULL) {
		cs->auth =
		    cs->user != NULL ? CA_HTTP_AUTH_NTLM : CA_HTTP_AUTH_NONE;
		rc = 0;
		goto out;
	}
	if ((s = json_string_value(v)) == NULL) {
		core_err_set(err, "auth", "\"auth\" must be a string, not %s",
		             core_conf_type_name(v));
		goto out;
	}
	for (i = 0; names[i] != NULL; i++)
		if (strcmp(s, names[i]) == 0)
			break;
	if (names[i] == NULL) {
		core_err_set(err, "auth",
		             "unknown auth \"%s\" (one of: basic, ntlm, "
		             "negotiate, client-cert, any)",
		             s);
		goto out;
	}
	cs->auth = values[i];
	rc = 0;
out:
	return rc;
}

/*
 * Builds the form-encoded CertAttrib value: the template, the User-Agent
 * as browsers send it, and the configured extra "name:value" lines, each
 * ending in CRLF.
 */
static int
cs_conf_attrib(struct certsrv *cs, const json_t *conf, struct core_err *err)
{
	char attrib[CS_ATTRIB_MAX], key[40];
	json_t *list, *v;
	size_t i, used;
	int n, rc = -1;

	n = snprintf(attrib, sizeof(attrib),
	             "CertificateTemplate:%s\r\nUserAgent:%s\r\n",
	             cs->template_name, cs->user_agent);
	if (n < 0 || (size_t)n >= sizeof(attrib)) {
		core_err_set(err, "template",
		             "template and user_agent too long");
		goto out;
	}
	used = (size_t)n;
	if ((list = json_object_get(conf, "cert_attrib")) != NULL) {
		if (!json_is_array(list)) {
			core_err_set(err, "cert_attrib",
			             "\"cert_attrib\" must be an array of "
			             "\"name:value\" strings, not %s",
			             core_conf_type_name(list));
			goto out;
		}
		json_array_foreach(list, i, v)
		{
			const char *s = json_string_value(v), *colon;

			snprintf(key, sizeof(key), "cert_attrib.%zu", i);
			if (!json_is_string(v) || !core_conf_clean_string(v) ||
			    (colon = strchr(s, ':')) == NULL || colon == s) {
				core_err_set(
				    err, key,
				    "element %zu must be a \"name:value\" "
				    "string without line breaks",
				    i + 1);
				goto out;
			}
			if (strncasecmp(s, "CertificateTemplate:", 20) == 0) {
				core_err_set(
				    err, key,
				    "set the template with \"template\", "
				    "not in cert_attrib");
				goto out;
			}
			n = snprintf(attrib + used, sizeof(attrib) - used,
			             "%s\r\n", s);
			if (n < 0 || (size_t)n >= sizeof(attrib) - used) {
				core_err_set(err, key,
				             "cert_attrib longer than %d bytes",
				             CS_ATTRIB_MAX);
				goto out;
			}
			used += (size_t)n;
		}
	}
	/* curl_easy_escape() needs no handle since libcurl 7.82. */
	if ((cs->form_attrib = curl_easy_escape(NULL, attrib, (int)used)) ==
	    NULL) {
		core_err_set(err, "cert_attrib", "out of memory");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

static void
cs_unconfigure(void *p)
{
	struct certsrv *cs = p;
	size_t i;

	for (i = 0; i < cs->nurls; i++)
		free(cs->urls[i]);
	free(cs->user);
	if (cs->password != NULL) {
		OPENSSL_cleanse(cs->password, strlen(cs->password));
		free(cs->password);
	}
	free(cs->client_cert);
	free(cs->client_key);
	free(cs->ca_bundle);
	free(cs->template_name);
	if (cs->form_attrib != NULL)
		curl_free(cs->form_attrib);
	free(cs->user_agent);
	sk_X509_pop_free(cs->chain, X509_free);
	if (cs->lock_init)
		pthread_mutex_destroy(&cs->lock);
	memset(cs, 0, sizeof(*cs));
}

static int
cs_configure(void *p, const json_t *conf, const char *conf_dir,
             struct core_err *err)
{
	struct certsrv *cs = p;
	char *password_file = NULL;
	json_t *v;
	long n;
	int rc = -1;

	if (pthread_mutex_init(&cs->lock, NULL) != 0) {
		core_err_set(err, "", "cannot create a mutex");
		goto out;
	}
	cs->lock_init = 1;
	cs->connect_timeout = CS_CONNECT_TIMEOUT_DEFAULT;
	cs->timeout = CS_TIMEOUT_DEFAULT;
	cs->chain_refresh = CS_CHAIN_REFRESH_DEFAULT;
	if (!json_is_object(conf)) {
		core_err_set(err, "", "\"ca\" must be an object, not %s",
		             core_conf_type_name(conf));
		goto out;
	}
	if (core_conf_check_keys(conf, "", cs_conf_keys, err) != 0 ||
	    cs_conf_urls(cs, conf, err) != 0 ||
	    core_conf_string(conf, "user", 256, &cs->user, err) != 0 ||
	    cs_conf_auth(cs, conf, err) != 0 ||
	    core_conf_file(conf, "password_file", conf_dir, &password_file,
	                   err) != 0 ||
	    core_conf_file(conf, "client_cert", conf_dir, &cs->client_cert,
	                   err) != 0 ||
	    core_conf_file(conf, "client_key", conf_dir, &cs->client_key,
	                   err) != 0 ||
	    core_conf_file(conf, "ca_bundle", conf_dir, &cs->ca_bundle, err) !=
	        0 ||
	    core_conf_string(conf, "template", CS_TEMPLATE_MAX,
	                     &cs->template_name, err) != 0 ||
	    core_conf_string(conf, "user_agent", 512, &cs->user_agent, err) !=
	        0 ||
	    core_conf_int(conf, "connect_timeout", 1, CS_CONNECT_TIMEOUT_MAX,
	                  &cs->connect_timeout, err) != 0 ||
	    core_conf_int(conf, "timeout", 1, CS_TIMEOUT_MAX, &cs->timeout,
	                  err) != 0 ||
	    core_conf_int(conf, "chain_refresh", CS_CHAIN_REFRESH_MIN,
	                  CS_CHAIN_REFRESH_MAX, &cs->chain_refresh, err) != 0)
		goto out;
	n = 0;
	if (core_conf_int(conf, "retry_after", 1, CS_RETRY_AFTER_MAX, &n,
	                  err) != 0)
		goto out;
	cs->retry_after = (unsigned int)n;
	if ((v = json_object_get(conf, "fetch_chain")) != NULL) {
		if (!json_is_boolean(v)) {
			core_err_set(
			    err, "fetch_chain",
			    "\"fetch_chain\" must be true or false, not "
			    "%s",
			    core_conf_type_name(v));
			goto out;
		}
		cs->fetch_chain = json_is_true(v);
	}
	if (cs->template_name == NULL) {
		core_err_set(err, "template",
		             "missing \"template\" (the internal name of the "
		             "certificate template, as certrqxt.asp lists it)");
		goto out;
	}
	if (cs->user_agent == NULL &&
	    (cs->user_agent = strdup(CS_USER_AGENT_DEFAULT)) == NULL) {
		core_err_set(err, "user_agent", "out of memory");
		goto out;
	}
	/* The credentials each method needs, and nothing it would ignore. */
	switch (cs->auth) {
	case CA_HTTP_AUTH_BASIC:
	case CA_HTTP_AUTH_NTLM:
		if (cs->user == NULL || password_file == NULL) {
			core_err_set(
			    err, cs->user == NULL ? "user" : "password_file",
			    "auth \"%s\" needs \"user\" and "
			    "\"password_file\"",
			    ca_http_auth_name(cs->auth));
			goto out;
		}
		break;
	case CA_HTTP_AUTH_CLIENT_CERT:
		if (cs->client_cert == NULL || cs->client_key == NULL) {
			core_err_set(
			    err,
			    cs->client_cert == NULL ? "client_cert"
			                            : "client_key",
			    "auth \"client-cert\" needs \"client_cert\" "
			    "and \"client_key\"");
			goto out;
		}
		break;
	case CA_HTTP_AUTH_NONE:
		if (password_file != NULL) {
			core_err_set(err, "password_file",
			             "\"password_file\" without \"user\"");
			goto out;
		}
		break;
	default:
		break;
	}
	if ((cs->client_cert == NULL) != (cs->client_key == NULL)) {
		core_err_set(
		    err, cs->client_cert == NULL ? "client_cert" : "client_key",
		    "\"client_cert\" and \"client_key\" go together");
		goto out;
	}
	if (password_file != NULL && cs->user == NULL) {
		core_err_set(err, "user", "\"password_file\" without \"user\"");
		goto out;
	}
	if (cs->auth == CA_HTTP_AUTH_BASIC) {
		size_t i;

		/* Basic sends the password as it is. */
		for (i = 0; i < cs->nurls; i++)
			if (strncmp(cs->urls[i], "https://", 8) != 0) {
				char key[32];

				snprintf(key, sizeof(key), "urls.%zu", i);
				core_err_set(
				    err, key,
				    "auth \"basic\" needs https:// URLs");
				goto out;
			}
	}
	if (password_file != NULL &&
	    core_conf_read_password(password_file, CS_PASSWORD_MAX,
	                            &cs->password, err) != 0)
		goto out;
	if (cs_conf_attrib(cs, conf, err) != 0)
		goto out;
	rc = 0;
out:
	free(password_file);
	return rc;
}

/* --- operations ------------------------------------------------------------
 */

static void
cs_op_link(struct cs_op *op)
{
	struct certsrv *cs = op->cs;

	pthread_mutex_lock(&cs->lock);
	op->next = cs->ops;
	if (cs->ops != NULL)
		cs->ops->prev = op;
	cs->ops = op;
	pthread_mutex_unlock(&cs->lock);
}

static void
cs_op_free(struct cs_op *op)
{
	struct certsrv *cs;

	if (op == NULL)
		return;
	cs = op->cs;
	pthread_mutex_lock(&cs->lock);
	if (op->prev != NULL)
		op->prev->next = op->next;
	else if (cs->ops == op)
		cs->ops = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	pthread_mutex_unlock(&cs->lock);
	ca_http_cancel(op->t);
	free(op->form);
	free(op);
}

/* Returns a new operation (free with cs_op_free) starting at step. */
static struct cs_op *
cs_op_new(struct certsrv *cs, struct ca_call *call, struct event_base *base,
          enum cs_step step)
{
	struct cs_op *op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return NULL;
	op->cs = cs;
	op->call = call;
	op->base = base;
	op->step = step;
	op->failover = 1;
	pthread_mutex_lock(&cs->lock);
	op->url = cs->good_url < cs->nurls ? cs->good_url : 0;
	pthread_mutex_unlock(&cs->lock);
	cs_op_link(op);
	return op;
}

/* Returns "enroll", "poll", ... for the WHAT of causes. */
static const char *
cs_what(const struct cs_op *op)
{
	if (op->call == NULL)
		return "CA chain refresh";
	if (op->call->op == CA_OP_REENROLL)
		return "reenroll";
	return ca_operation_name(op->call->op);
}

/* The label for hints, "this label" when unknown (background). */
static const char *
cs_label(const struct cs_op *op)
{
	return op->call != NULL && op->call->label != NULL ? op->call->label
	                                                   : "this label";
}

/* Schedules the next background chain fetch in seconds. */
static void
cs_bg_schedule(struct certsrv *cs, long seconds)
{
	struct timeval tv = {seconds, 0};

	if (cs->bg_timer != NULL)
		evtimer_add(cs->bg_timer, &tv);
}

/*
 * Ends op with outcome and the cause "WHAT: fmt while ACTION": completes
 * its call with cause, hint and URL in the result (ra logs them on the
 * request's one line, with the answer) or, for the background fetch, logs
 * the failure and schedules the next try.  Frees op.
 */
static void cs_finish(struct cs_op *op, enum ca_outcome outcome, int csr_fault,
                      const char *hint, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
cs_finish(struct cs_op *op, enum ca_outcome outcome, int csr_fault,
          const char *hint, const char *what, const char *fmt, ...)
{
	struct certsrv *cs = op->cs;
	struct ca_call *call = op->call;
	char cause[CA_CAUSE_MAX], text[CA_CAUSE_MAX - 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (what != NULL)
		snprintf(cause, sizeof(cause), "%s: %s while %s", what, text,
		         cs_actions[op->step]);
	else
		snprintf(cause, sizeof(cause), "%s failed: %s while %s",
		         cs_what(op), text, cs_actions[op->step]);
	if (call == NULL) {
		/* Background: there is no request to answer, so the line
		 * names backend and URL itself. */
		pthread_mutex_lock(&cs->lock);
		if (cs->chain == NULL) {
			cs->chain_failed = 1;
			snprintf(cs->chain_cause, sizeof(cs->chain_cause), "%s",
			         cause);
		}
		pthread_mutex_unlock(&cs->lock);
		ca_log(NULL, CORE_LOG_ERROR, CS_COMPONENT, hint,
		       "%s, backend: certsrv, url: %s, next try in %ld s",
		       cause, op->page_url, cs->bg_backoff);
		cs->bg_op = NULL;
		cs_bg_schedule(cs, cs->bg_backoff);
		cs->bg_backoff = cs->bg_backoff * 2 > CS_BACKOFF_MAX
		                     ? CS_BACKOFF_MAX
		                     : cs->bg_backoff * 2;
		cs_op_free(op);
		return;
	}
	/* ra writes the request's one line from the result; this copy is
	 * for debugging only. */
	ca_log(call, CORE_LOG_DEBUG, CS_COMPONENT, hint, "%s", cause);
	sk_X509_pop_free(call->result.chain, X509_free);
	call->result.chain = NULL;
	call->result.outcome = outcome;
	call->result.csr_fault = csr_fault;
	snprintf(call->result.cause, sizeof(call->result.cause), "%s", cause);
	if (hint != NULL)
		snprintf(call->result.hint, sizeof(call->result.hint), "%s",
		         hint);
	snprintf(call->result.url, sizeof(call->result.url), "%s",
	         op->page_url);
	if (outcome == CA_UNREACHABLE || outcome == CA_PENDING)
		call->result.retry_after = cs->retry_after;
	cs_op_free(op);
	ca_call_done(call);
}

/* Completes op's call as PENDING on the CA request op->req_id. */
static void
cs_pending(struct cs_op *op, const char *why)
{
	struct ca_call *call = op->call;

	ca_log(call, CORE_LOG_INFO, CS_COMPONENT, NULL,
	       "%s pending: CA request %lu %s, url: %s", cs_what(op),
	       op->req_id, why, op->page_url);
	call->result.outcome = CA_PENDING;
	snprintf(call->result.cookie, sizeof(call->result.cookie), "%lu",
	         op->req_id);
	snprintf(call->result.cause, sizeof(call->result.cause),
	         "%s pending: CA request %lu %s", cs_what(op), op->req_id, why);
	snprintf(call->result.url, sizeof(call->result.url), "%s",
	         op->page_url);
	call->result.retry_after = op->cs->retry_after;
	cs_op_free(op);
	ca_call_done(call);
}

/* Remembers the URL that answered, for the next operations. */
static void
cs_answered(struct cs_op *op)
{
	pthread_mutex_lock(&op->cs->lock);
	op->cs->good_url = op->url;
	pthread_mutex_unlock(&op->cs->lock);
}

/*
 * Moves op to the next URL after a connection-level failure (cause) and
 * restarts its step there.  Returns 0 when it did, -1 when every URL was
 * tried or the step must stay on its CA.
 */
static int
cs_failover(struct cs_op *op, const char *cause)
{
	struct certsrv *cs = op->cs;
	size_t next;

	if (!op->failover || op->tries + 1 >= cs->nurls)
		return -1;
	next = (op->url + 1) % cs->nurls;
	ca_log(op->call, CORE_LOG_WARN, CS_COMPONENT, NULL,
	       "CA failover: %s while %s at %s; trying %s", cause,
	       cs_actions[op->step], op->page_url, cs->urls[next]);
	op->tries++;
	op->url = next;
	/* The chain comes from one CA: its renewal index first. */
	if (op->step == CS_CHAIN)
		op->step = CS_CARC;
	cs_step_start(op);
	return 0;
}

/* An unexpected page: MISCONFIGURED with an escaped excerpt. */
static void
cs_unexpected(struct cs_op *op, const struct ca_http_response *res,
              const char *what_page)
{
	char excerpt[512], *data;
	size_t len = evbuffer_get_length(res->body);

	data = (char *)evbuffer_pullup(res->body, -1);
	certsrv_page_excerpt(data, data != NULL ? len : 0, excerpt,
	                     sizeof(excerpt));
	cs_finish(op, CA_MISCONFIGURED, 0,
	          "check that the url is the certsrv web enrollment base URL "
	          "(https://HOST/certsrv)",
	          NULL, "unexpected answer from %s (%s, %zu bytes): \"%s\"",
	          what_page,
	          res->content_type[0] != '\0' ? res->content_type
	                                       : "no Content-Type",
	          len, excerpt);
}

/* 401 after credentials were offered (or none were configured). */
static void
cs_unauthorized(struct cs_op *op, const char *cause)
{
	struct certsrv *cs = op->cs;
	char hint[CA_HINT_MAX];

	if (cs->auth == CA_HTTP_AUTH_NONE) {
		snprintf(hint, sizeof(hint),
		         "the CA asks for credentials: set user, password_file "
		         "and auth of label %s",
		         cs_label(op));
		cs_finish(op, CA_MISCONFIGURED, 0, hint, NULL,
		          "%s: the CA requires authentication", cause);
		return;
	}
	snprintf(hint, sizeof(hint),
	         "check user, password_file and auth (%s) of label %s",
	         ca_http_auth_name(cs->auth), cs_label(op));
	cs_finish(op, CA_MISCONFIGURED, 0, hint, NULL,
	          "%s: bad credentials (auth %s%s%s)", cause,
	          ca_http_auth_name(cs->auth),
	          cs->user != NULL ? ", user " : "",
	          cs->user != NULL ? cs->user : "");
}

/*
 * Handles a failed transfer: failover for connection-level failures, else
 * the outcome that fits the curl code.
 */
static void
cs_curl_failed(struct cs_op *op, const struct ca_http_response *res)
{
	struct certsrv *cs = op->cs;
	char cause[CA_CAUSE_MAX - 128], hint[CA_HINT_MAX];
	enum ca_outcome outcome = CA_UNREACHABLE;
	const char *h = NULL;
	int failover = 0;

	ca_http_cause(res, cause, sizeof(cause));
	switch (res->curl_code) {
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(hint, sizeof(hint),
		         "check DNS for the CA host or the urls of label %s",
		         cs_label(op));
		h = hint;
		failover = 1;
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
		snprintf(hint, sizeof(hint),
		         "check that the CA web server (IIS) runs and the urls "
		         "of label %s",
		         cs_label(op));
		h = hint;
		failover = 1;
		break;
	case CURLE_OPERATION_TIMEDOUT: {
		size_t n = strlen(cause);

		/* A POST that went out may have reached the CA: moving it to
		 * another CA could issue twice. */
		failover = op->step != CS_SUBMIT || !res->request_sent;
		snprintf(cause + n, sizeof(cause) - n,
		         " (limits: connect_timeout %ld s, timeout %ld s)",
		         cs->connect_timeout, cs->timeout);
		snprintf(hint, sizeof(hint),
		         "check the CA's load and the network to it, or raise "
		         "timeout of label %s",
		         cs_label(op));
		h = hint;
		break;
	}
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		outcome = CA_MISCONFIGURED;
		if (strstr(res->error, "certificate is not yet valid") !=
		    NULL) {
			size_t n = strlen(cause);

			snprintf(cause + n, sizeof(cause) - n,
			         " (clock skew?)");
			h = "check the clocks of estrad and of the CA web "
			    "server";
		} else if (strstr(res->error, "no alternative certificate "
		                              "subject name") != NULL ||
		           strstr(res->error, "does not match") != NULL) {
			h = "the CA web server's certificate does not name "
			    "the host of the url";
		} else {
			snprintf(hint, sizeof(hint),
			         "add the CA web server's issuer to the "
			         "ca_bundle of label %s",
			         cs_label(op));
			h = hint;
		}
		break;
	case CURLE_SSL_CERTPROBLEM:
		outcome = CA_MISCONFIGURED;
		h = "check client_cert and client_key";
		break;
	case CURLE_WRITE_ERROR:
		if (res->capped) {
			/* No certsrv page comes near the cap: the url
			 * points at something else. */
			outcome = CA_MISCONFIGURED;
			h = "check that the url is the certsrv web enrollment "
			    "base URL (https://HOST/certsrv)";
		}
		break;
	case CURLE_ABORTED_BY_CALLBACK:
		outcome = CA_CANCELLED;
		break;
	default:
		break;
	}
	/* A connection cut or reset mid-answer has no cause of its own to
	 * name; the operator still learns where to look. */
	if (h == NULL && outcome == CA_UNREACHABLE)
		h = "check the CA web server and any proxy or firewall "
		    "between it and estrad";
	if (failover && cs_failover(op, cause) == 0)
		return;
	/* A certificate the CA issued but could not hand over yet is
	 * collected by the client's retry: pending, not lost. */
	if (op->step == CS_FETCH && !op->poll && outcome == CA_UNREACHABLE) {
		cs_pending(op, "issued, not collected yet");
		return;
	}
	cs_finish(op, outcome, 0, h, NULL, "%s", cause);
}

/* Handles a non-200 HTTP answer. */
static void
cs_http_status(struct cs_op *op, const struct ca_http_response *res)
{
	char cause[CA_CAUSE_MAX - 128];

	ca_http_cause(res, cause, sizeof(cause));
	if (res->status == 401) {
		cs_answered(op);
		cs_unauthorized(op, cause);
		return;
	}
	if (res->status >= 500) {
		if (cs_failover(op, cause) == 0)
			return;
		if (op->step == CS_FETCH && !op->poll) {
			cs_pending(op, "issued, not collected yet");
			return;
		}
		cs_finish(op, CA_UNREACHABLE, 0, NULL, NULL, "%s", cause);
		return;
	}
	cs_answered(op);
	cs_finish(op, CA_MISCONFIGURED, 0,
	          res->status == 404
	              ? "check that the url is the certsrv base URL "
	                "(https://HOST/certsrv)"
	              : NULL,
	          NULL, "%s", cause);
}

/*
 * Maps a denial (or an error page carrying a denial code) to its outcome
 *.
 */
static void
cs_denied(struct cs_op *op, const struct certsrv_page *page)
{
	struct certsrv *cs = op->cs;
	char disp[CA_CAUSE_MAX - 256], hint[CA_HINT_MAX], rid[48] = "";
	enum ca_outcome outcome = CA_REJECTED;
	const char *h = NULL, *what;

	what = op->call != NULL && op->call->op == CA_OP_POLL
	           ? "poll: refused by CA"
	           : "enroll refused by CA";
	if (page->has_code)
		snprintf(disp, sizeof(disp), "disposition 0x%08lx %s \"%s\"",
		         page->code,
		         page->symbol[0] != '\0' ? page->symbol : "(unknown)",
		         page->message);
	else
		snprintf(disp, sizeof(disp), "disposition \"%s\"",
		         page->message);
	if (page->has_req_id)
		snprintf(rid, sizeof(rid), ", CA request %lu", page->req_id);
	else if (op->req_id != 0)
		snprintf(rid, sizeof(rid), ", CA request %lu", op->req_id);
	if (page->has_code && page->code == 0x80094800UL) {
		outcome = CA_MISCONFIGURED;
		snprintf(hint, sizeof(hint),
		         "publish %s on this CA or pick a template "
		         "certrqxt.asp lists",
		         cs->template_name);
		h = hint;
	} else if (page->has_code && page->code == 0x80094012UL) {
		outcome = CA_MISCONFIGURED;
		snprintf(hint, sizeof(hint),
		         "give %s Enroll permission on template %s",
		         cs->user != NULL ? cs->user : "estrad's CA account",
		         cs->template_name);
		h = hint;
		cs_finish(op, outcome, 0, h, what,
		          "no Enroll permission: %s%s, template %s", disp, rid,
		          cs->template_name);
		return;
	}
	cs_finish(op, outcome, 0, h, what, "%s%s, template %s", disp, rid,
	          cs->template_name);
}

/* CA service down: failover, else UNREACHABLE. */
static void
cs_ca_down(struct cs_op *op, const struct certsrv_page *page)
{
	char cause[CA_CAUSE_MAX - 256];

	snprintf(cause, sizeof(cause), "CA service not running: \"%s\"%s%s",
	         page->message,
	         page->last_status[0] != '\0' ? ", LastStatus " : "",
	         page->last_status);
	if (cs_failover(op, cause) == 0)
		return;
	if (op->step == CS_FETCH && !op->poll) {
		cs_pending(op, "issued, not collected yet");
		return;
	}
	cs_finish(op, CA_UNREACHABLE, 0,
	          "start the Active Directory Certificate Services service "
	          "(certsvc) on the CA",
	          NULL, "%s", cause);
}

/* A classified status or submit page that is no success. */
static void
cs_page_failed(struct cs_op *op, const struct ca_http_response *res,
               const struct certsrv_page *page, const char *what_page)
{
	char cause[CA_CAUSE_MAX - 256];

	switch (page->kind) {
	case CERTSRV_PAGE_UNAUTHORIZED:
		snprintf(cause, sizeof(cause), "%s answered the 401 page",
		         what_page);
		cs_unauthorized(op, cause);
		return;
	case CERTSRV_PAGE_PENDING:
		if (!page->has_req_id && op->req_id == 0)
			break;
		if (page->has_req_id)
			op->req_id = page->req_id;
		cs_pending(op, "taken under submission (CA manager approval)");
		return;
	case CERTSRV_PAGE_DENIED:
		cs_denied(op, page);
		return;
	case CERTSRV_PAGE_BAD_REQUEST:
		cs_finish(op, CA_REJECTED, 1, NULL, "enroll refused by CA",
		          "CSR unreadable: disposition 0x%08lx %s \"%s\"",
		          page->code,
		          page->symbol[0] != '\0' ? page->symbol : "(unknown)",
		          page->message);
		return;
	case CERTSRV_PAGE_UNKNOWN_REQUEST:
		cs_finish(op, CA_MISCONFIGURED, 0,
		          "the CA no longer knows the request: enroll again",
		          NULL,
		          "request unknown to the CA: CA request %lu: "
		          "disposition 0x%08lx %s \"%s\"",
		          op->req_id, page->code, page->symbol, page->message);
		return;
	case CERTSRV_PAGE_CA_DOWN:
		cs_ca_down(op, page);
		return;
	case CERTSRV_PAGE_ERROR:
		if (page->has_code && (page->code == 0x80094800UL ||
		                       page->code == 0x80094012UL)) {
			cs_denied(op, page);
			return;
		}
		if (page->message[0] == '\0' && !page->has_code)
			break;
		cs_finish(op, CA_MISCONFIGURED, 0, NULL, NULL,
		          "CA error page: disposition 0x%08lx %s \"%s\"%s%s",
		          page->has_code ? page->code : 0UL, page->symbol,
		          page->message,
		          page->last_status[0] != '\0' ? ", LastStatus " : "",
		          page->last_status);
		return;
	default:
		break;
	}
	cs_unexpected(op, res, what_page);
}

/*
 * Reads certificates from a body: DER or PEM, a single certificate or a
 * certs-only PKCS#7, also in the CERTIFICATE armour certsrv uses for
 * PKCS#7.  Returns a new stack (free with
 * sk_X509_pop_free), or NULL when the body holds none.
 */
static STACK_OF(X509) *
cs_parse_certs(const unsigned char *data, size_t len)
{
	STACK_OF(X509) *certs = sk_X509_new_null();

	if (certs != NULL && core_certs_read(data, len, certs) <= 0) {
		sk_X509_pop_free(certs, X509_free);
		certs = NULL;
	}
	return certs;
}

/* Returns a new copy of the cached chain with new references, or NULL. */
static STACK_OF(X509) *
cs_chain_copy(struct certsrv *cs)
{
	STACK_OF(X509) *rc = NULL;

	pthread_mutex_lock(&cs->lock);
	if (cs->chain != NULL)
		rc = X509_chain_up_ref(cs->chain);
	pthread_mutex_unlock(&cs->lock);
	return rc;
}

/* The chain arrived: cache it, answer the call or schedule a refresh. */
static void
cs_chain_done(struct cs_op *op, STACK_OF(X509) *chain)
{
	struct certsrv *cs = op->cs;
	struct ca_call *call = op->call;
	STACK_OF(X509) *old;

	chain = core_chain_order(chain);
	pthread_mutex_lock(&cs->lock);
	old = cs->chain;
	cs->chain = chain;
	cs->chain_failed = 0;
	cs->chain_cause[0] = '\0';
	pthread_mutex_unlock(&cs->lock);
	sk_X509_pop_free(old, X509_free);
	if (call == NULL) {
		ca_log(NULL, CORE_LOG_INFO, CS_COMPONENT, NULL,
		       "CA chain fetched: %d certificates, renewal %lu, "
		       "backend: certsrv, url: %s",
		       sk_X509_num(chain), op->renewals, op->page_url);
		cs->bg_op = NULL;
		cs->bg_backoff = CS_BACKOFF_MIN;
		cs_bg_schedule(cs, cs->chain_refresh);
		cs_op_free(op);
		return;
	}
	if ((call->result.chain = cs_chain_copy(cs)) == NULL) {
		cs_finish(op, CA_MISCONFIGURED, 0, NULL, NULL, "out of memory");
		return;
	}
	call->result.outcome = CA_ISSUED;
	cs_op_free(op);
	ca_call_done(call);
}

/* certnew.cer answered a certificate (or its chain): check and answer. */
static void
cs_fetched(struct cs_op *op, STACK_OF(X509) *certs)
{
	struct ca_call *call = op->call;
	EVP_PKEY *want = NULL;
	X509 *leaf = NULL;
	int i;

	if (call->csr != NULL)
		want = X509_REQ_get0_pubkey(call->csr);
	/* The leaf is the one for the CSR's key; without a CSR (a poll
	 * after a restart) the one no other certificate was issued by. */
	for (i = 0; i < sk_X509_num(certs) && leaf == NULL; i++) {
		X509 *c = sk_X509_value(certs, i);

		if (want != NULL ? EVP_PKEY_eq(X509_get0_pubkey(c), want) == 1
		                 : X509_check_ca(c) == 0)
			leaf = c;
	}
	ERR_clear_error();
	if (leaf == NULL && want == NULL && sk_X509_num(certs) == 1)
		leaf = sk_X509_value(certs, 0);
	if (leaf == NULL) {
		sk_X509_pop_free(certs, X509_free);
		cs_finish(op, CA_MISCONFIGURED, 0,
		          "the CA answered a certificate for another key: "
		          "check the CA's request database",
		          NULL,
		          "CA request %lu: the certificate's public key is not "
		          "the CSR's",
		          op->req_id);
		return;
	}
	/* The leaf first, then whatever chain came with it. */
	(void)sk_X509_delete_ptr(certs, leaf);
	if (!sk_X509_unshift(certs, leaf)) {
		X509_free(leaf);
		sk_X509_pop_free(certs, X509_free);
		cs_finish(op, CA_MISCONFIGURED, 0, NULL, NULL, "out of memory");
		return;
	}
	ca_log(call, CORE_LOG_INFO, CS_COMPONENT, NULL,
	       "%s: CA request %lu issued, url: %s", cs_what(op), op->req_id,
	       op->page_url);
	sk_X509_pop_free(call->result.chain, X509_free);
	call->result.chain = certs;
	call->result.outcome = CA_ISSUED;
	snprintf(call->result.cookie, sizeof(call->result.cookie), "%lu",
	         op->req_id);
	snprintf(call->result.url, sizeof(call->result.url), "%s",
	         op->page_url);
	cs_op_free(op);
	ca_call_done(call);
}

/* The completion of every transfer: dispatches on the step. */
static void
cs_http_done(struct ca_http_transfer *t, const struct ca_http_response *res,
             void *arg)
{
	struct cs_op *op = arg;
	struct certsrv_page page;
	STACK_OF(X509) *certs;
	unsigned char *data;
	size_t len;
	int found;

	(void)t;
	op->t = NULL;
	if (res->curl_code != 0) {
		cs_curl_failed(op, res);
		return;
	}
	if (res->status != 200) {
		cs_http_status(op, res);
		return;
	}
	cs_answered(op);
	len = evbuffer_get_length(res->body);
	data = evbuffer_pullup(res->body, -1);
	if (data == NULL)
		len = 0;
	switch (op->step) {
	case CS_SUBMIT:
		certsrv_page_submit((const char *)data, len, &page);
		if (page.kind == CERTSRV_PAGE_ISSUED && page.has_req_id) {
			op->req_id = page.req_id;
			op->step = CS_FETCH;
			op->failover = 0;
			cs_step_start(op);
			return;
		}
		if (page.has_req_id)
			op->req_id = page.req_id;
		cs_page_failed(op, res, &page, "certfnsh.asp");
		return;
	case CS_FETCH:
		/* Sniff, whatever the Content-Type says. */
		if (len > 0 && data[0] != '<' &&
		    (certs = cs_parse_certs(data, len)) != NULL) {
			cs_fetched(op, certs);
			return;
		}
		certsrv_page_status((const char *)data, len, &page);
		if (page.kind == CERTSRV_PAGE_ISSUED) {
			cs_finish(
			    op, CA_MISCONFIGURED, 0,
			    "certnew.cer answers HTML to this User-Agent: "
			    "user_agent must start with Mozilla/5.0",
			    NULL,
			    "CA request %lu is issued but certnew.cer "
			    "answered a page, not the certificate",
			    op->req_id);
			return;
		}
		cs_page_failed(op, res, &page, "certnew.cer");
		return;
	case CS_CARC:
		if (certsrv_page_renewals((const char *)data, len,
		                          &op->renewals) == 0) {
			op->step = CS_CHAIN;
			cs_step_start(op);
			return;
		}
		certsrv_page_status((const char *)data, len, &page);
		if (page.kind != CERTSRV_PAGE_UNKNOWN &&
		    page.kind != CERTSRV_PAGE_ISSUED &&
		    page.kind != CERTSRV_PAGE_PENDING) {
			cs_page_failed(op, res, &page, "certcarc.asp");
			return;
		}
		cs_unexpected(op, res,
		              "certcarc.asp (no \"var nRenewals=N;\")");
		return;
	case CS_CHAIN:
		if (len > 0 && data[0] != '<' &&
		    (certs = cs_parse_certs(data, len)) != NULL) {
			cs_chain_done(op, certs);
			return;
		}
		certsrv_page_status((const char *)data, len, &page);
		if (page.kind != CERTSRV_PAGE_UNKNOWN &&
		    page.kind != CERTSRV_PAGE_ISSUED &&
		    page.kind != CERTSRV_PAGE_PENDING) {
			cs_page_failed(op, res, &page, "certnew.p7b");
			return;
		}
		cs_unexpected(op, res, "certnew.p7b (no PKCS#7)");
		return;
	case CS_HOME:
		op->step = CS_RQXT;
		cs_step_start(op);
		return;
	case CS_RQXT:
		found = certsrv_page_has_template((const char *)data, len,
		                                  op->cs->template_name);
		if (found == 1) {
			struct ca_call *call = op->call;

			call->result.outcome = CA_ISSUED;
			snprintf(call->result.url, sizeof(call->result.url),
			         "%s", op->page_url);
			cs_op_free(op);
			ca_call_done(call);
			return;
		}
		if (found == 0) {
			char hint[CA_HINT_MAX];

			snprintf(hint, sizeof(hint),
			         "publish %s on this CA and give %s Enroll "
			         "permission on it",
			         op->cs->template_name,
			         op->cs->user != NULL ? op->cs->user
			                              : "estrad's account");
			cs_finish(op, CA_MISCONFIGURED, 0, hint, NULL,
			          "template %s is not offered by certrqxt.asp "
			          "(not published, or no Enroll permission)",
			          op->cs->template_name);
			return;
		}
		cs_unexpected(op, res, "certrqxt.asp (no template list)");
		return;
	default:
		cs_finish(op, CA_MISCONFIGURED, 0, NULL, NULL,
		          "unknown step (estrad bug)");
		return;
	}
}

/* Starts the transfer of op's current step on its current URL. */
static void
cs_step_start(struct cs_op *op)
{
	struct certsrv *cs = op->cs;
	struct ca_http_request req;
	const char *base = cs->urls[op->url];
	char err[256] = "";
	const char *ext = cs->fetch_chain ? "p7b" : "cer";

	memset(&req, 0, sizeof(req));
	switch (op->step) {
	case CS_SUBMIT:
		snprintf(op->page_url, sizeof(op->page_url), "%s/certfnsh.asp",
		         base);
		req.method = CA_HTTP_POST;
		req.body = op->form;
		req.body_len = strlen(op->form);
		break;
	case CS_FETCH:
		snprintf(op->page_url, sizeof(op->page_url),
		         "%s/certnew.%s?ReqID=%lu&Enc=bin", base, ext,
		         op->req_id);
		break;
	case CS_CARC:
		snprintf(op->page_url, sizeof(op->page_url), "%s/certcarc.asp",
		         base);
		break;
	case CS_CHAIN:
		snprintf(op->page_url, sizeof(op->page_url),
		         "%s/certnew.p7b?ReqID=CACert&Renewal=%lu&Enc=bin",
		         base, op->renewals);
		break;
	case CS_HOME:
		snprintf(op->page_url, sizeof(op->page_url), "%s/", base);
		break;
	case CS_RQXT:
		snprintf(op->page_url, sizeof(op->page_url), "%s/certrqxt.asp",
		         base);
		break;
	default:
		break;
	}
	req.url = op->page_url;
	req.user_agent = cs->user_agent;
	req.auth = cs->auth;
	req.username = cs->user;
	req.password = cs->password;
	req.ca_bundle = cs->ca_bundle;
	req.client_cert = cs->client_cert;
	req.client_key = cs->client_key;
	req.connect_timeout_ms = cs->connect_timeout * 1000;
	req.timeout_ms = cs->timeout * 1000;
	req.max_response = CA_MAX_RESPONSE;
	if ((op->t = ca_http_start(op->base, &req, cs_http_done, op, err,
	                           sizeof(err))) == NULL)
		cs_finish(op, CA_MISCONFIGURED, 0, NULL, NULL, "%s", err);
}

/* Fails a call that cannot start, from the loop like every completion. */
static void
cs_call_fail_now(struct ca_call *call, enum ca_outcome outcome,
                 const char *hint, const char *cause)
{
	/* ra logs the failure from the result, with the answer. */
	ca_call_fail(call, outcome, hint, "%s", cause);
}

/*
 * Returns the new submission form (free with free): Mode, the CSR as PEM
 * with armour, CertAttrib, TargetStoreFlags, SaveCert, every
 * value form-encoded.
 */
static char *
cs_form(const struct certsrv *cs, X509_REQ *csr)
{
	char *pem_esc = NULL, *rc = NULL, *form = NULL;
	BIO *bio = NULL;
	char *pem;
	long pem_len;
	size_t len;

	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_REQ(bio, csr) ||
	    (pem_len = BIO_get_mem_data(bio, &pem)) <= 0 || pem_len > INT_MAX ||
	    (pem_esc = curl_easy_escape(NULL, pem, (int)pem_len)) == NULL)
		goto out;
	len = strlen(pem_esc) + strlen(cs->form_attrib) + 128;
	if ((form = malloc(len)) == NULL)
		goto out;
	snprintf(form, len,
	         "Mode=newreq&CertRequest=%s&CertAttrib=%s"
	         "&TargetStoreFlags=0&SaveCert=yes",
	         pem_esc, cs->form_attrib);
	rc = form;
	form = NULL;
out:
	ERR_clear_error();
	free(form);
	if (pem_esc != NULL)
		curl_free(pem_esc);
	BIO_free(bio);
	return rc;
}

static void
cs_enroll(void *p, struct ca_call *call)
{
	struct certsrv *cs = p;
	struct cs_op *op;

	if (call->csr == NULL) {
		cs_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "enroll failed: no CSR (estrad bug)");
		return;
	}
	if ((op = cs_op_new(cs, call, call->base, CS_SUBMIT)) == NULL ||
	    (op->form = cs_form(cs, call->csr)) == NULL) {
		cs_op_free(op);
		cs_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "enroll failed: out of memory");
		return;
	}
	cs_step_start(op);
}

static void
cs_poll(void *p, struct ca_call *call)
{
	struct certsrv *cs = p;
	const char *cookie = call->cookie;
	unsigned long id = 0;
	struct cs_op *op;
	size_t i;

	for (i = 0; cookie != NULL && cookie[i] != '\0'; i++) {
		if (cookie[i] < '0' || cookie[i] > '9' || i >= 10)
			break;
		id = id * 10 + (unsigned long)(cookie[i] - '0');
	}
	if (cookie == NULL || i == 0 || cookie[i] != '\0') {
		cs_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "poll failed: the cookie is not a certsrv "
		                 "request id");
		return;
	}
	if ((op = cs_op_new(cs, call, call->base, CS_FETCH)) == NULL) {
		cs_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "poll failed: out of memory");
		return;
	}
	op->req_id = id;
	op->poll = 1;
	cs_step_start(op);
}

static void
cs_cacerts(void *p, struct ca_call *call)
{
	struct certsrv *cs = p;
	char cause[CA_CAUSE_MAX];
	struct cs_op *op;
	int failed;

	if ((call->result.chain = cs_chain_copy(cs)) != NULL) {
		call->result.outcome = CA_ISSUED;
		ca_call_done(call);
		return;
	}
	pthread_mutex_lock(&cs->lock);
	failed = cs->chain_failed;
	snprintf(cause, sizeof(cause), "%s", cs->chain_cause);
	pthread_mutex_unlock(&cs->lock);
	if (failed) {
		/* The background fetch keeps trying; every client need not
		 * wait for the same timeout meanwhile. */
		call->result.retry_after = cs->retry_after;
		ca_call_fail(call, CA_UNREACHABLE,
		             "estrad retries in the background; see the CA "
		             "chain refresh lines",
		             "cacerts failed: no CA chain yet: %s", cause);
		return;
	}
	/* No chain and no failure yet: the first fetch has not finished
	 * (or no background runs); fetch for this call. */
	if ((op = cs_op_new(cs, call, call->base, CS_CARC)) == NULL) {
		cs_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "cacerts failed: out of memory");
		return;
	}
	cs_step_start(op);
}

static void
cs_health(void *p, struct ca_call *call)
{
	struct cs_op *op;

	if ((op = cs_op_new(p, call, call->base, CS_HOME)) == NULL) {
		cs_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "health failed: out of memory");
		return;
	}
	cs_step_start(op);
}

/* Finds the operation of call; the caller runs on call's thread. */
static struct cs_op *
cs_op_of(struct certsrv *cs, const struct ca_call *call)
{
	struct cs_op *op;

	pthread_mutex_lock(&cs->lock);
	for (op = cs->ops; op != NULL; op = op->next)
		if (op->call == call)
			break;
	pthread_mutex_unlock(&cs->lock);
	return op;
}

static void
cs_cancel(void *p, struct ca_call *call)
{
	struct cs_op *op = cs_op_of(p, call);

	if (op == NULL)
		return;
	cs_finish(op, CA_CANCELLED, 0, NULL, NULL, "cancelled");
}

/* The background timer: fetch the chain (again). */
static void
cs_bg_tick(evutil_socket_t fd, short what, void *arg)
{
	struct certsrv *cs = arg;
	struct cs_op *op;

	(void)fd;
	(void)what;
	if (cs->bg_op != NULL)
		return;
	if ((op = cs_op_new(cs, NULL, cs->bg_base, CS_CARC)) == NULL) {
		cs_bg_schedule(cs, cs->bg_backoff);
		return;
	}
	cs->bg_op = op;
	cs_step_start(op);
}

static void
cs_start(void *p, struct event_base *base)
{
	struct certsrv *cs = p;

	cs->bg_base = base;
	cs->bg_backoff = CS_BACKOFF_MIN;
	if ((cs->bg_timer = evtimer_new(base, cs_bg_tick, cs)) == NULL) {
		ca_log(NULL, CORE_LOG_ERROR, CS_COMPONENT, NULL,
		       "cannot schedule the CA chain fetch: out of memory, "
		       "backend: certsrv, url: %s",
		       cs->urls[0]);
		return;
	}
	cs_bg_schedule(cs, 0);
}

static void
cs_stop(void *p)
{
	struct certsrv *cs = p;
	struct cs_op *op;

	if (cs->bg_timer != NULL) {
		event_free(cs->bg_timer);
		cs->bg_timer = NULL;
	}
	if (cs->bg_op != NULL) {
		cs_op_free(cs->bg_op);
		cs->bg_op = NULL;
	}
	/* Calls still running on this loop end now; those of other
	 * workers belong to their threads. */
	for (;;) {
		pthread_mutex_lock(&cs->lock);
		for (op = cs->ops; op != NULL; op = op->next)
			if (op->base == cs->bg_base && op->call != NULL)
				break;
		pthread_mutex_unlock(&cs->lock);
		if (op == NULL)
			break;
		cs_finish(op, CA_CANCELLED, 0, NULL, NULL,
		          "cancelled: estrad is stopping");
	}
	cs->bg_base = NULL;
}

const struct ca_backend ca_certsrv_backend = {
    "certsrv",              /* name */
    CS_CAPS,                /* caps */
    sizeof(struct certsrv), /* priv_size */
    cs_configure,           /* configure */
    cs_enroll,              /* enroll */
    cs_poll,                /* poll */
    cs_cacerts,             /* cacerts */
    cs_health,              /* health */
    cs_cancel,              /* cancel */
    cs_unconfigure,         /* unconfigure */
    cs_start,               /* start: fetch and refresh the CA chain */
    cs_stop,                /* stop */
    NULL,                   /* own_certs: none */
};
