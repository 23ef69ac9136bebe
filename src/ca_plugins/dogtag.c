/*
 * dogtag.c: the Dogtag / Red Hat Certificate System / FreeIPA CA backend
 * ("dogtag").  It enrolls through the CA's REST API:
 * probe the API version (/pki/v2/info, else /pki/rest/info), log in as an
 * RA agent, POST the enrollment request, and collect the certificate; in
 * approval mode "auto" it reviews and approves a pending request as the
 * agent within the same HTTP session (the nonce rule), in mode "wait" it
 * answers PENDING and a later poll collects what a human agent approved.
 * The CA chain comes from /authorities/…/chain, fetched in the background.
 *
 * Every exchange is an asynchronous transfer of http.c on the calling
 * worker's loop.  Each operation keeps its own JSESSIONID (http.c's
 * own_cookies), so that concurrent enrollments never replace each other's
 * session and with it the nonce of a review.  Answers are read by
 * dogtag_json.c only.
 *
 * Configuration is read once on the main thread and is read-only after.
 * What changes while workers run (the URL that answered last, the API
 * version of each URL, the CA chain cache, the operations running) sits
 * behind one mutex.  Background work (chain refresh, agent certificate
 * expiry warnings) runs on worker 0's loop (start/stop hooks).
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
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_plugins/ca.h"
#include "ca_plugins/dogtag_json.h"
#include "ca_plugins/http.h"
#include "core/certs.h"
#include "core/conf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/time.h"

#define DT_COMPONENT "ca.dogtag"

#define DT_CAPS                                                                \
	(CA_CAP_ENROLL | CA_CAP_REENROLL | CA_CAP_POLL | CA_CAP_CACERTS |      \
	 CA_CAP_HEALTH | CA_CAP_FORWARDS_CSR)

/* Most URLs of one label: a master CA and its clones. */
#define DT_URLS_MAX 8

/* Defaults and limits of the numeric keys, in seconds. */
#define DT_CONNECT_TIMEOUT_DEFAULT 10
#define DT_CONNECT_TIMEOUT_MAX     300
#define DT_TIMEOUT_DEFAULT         60
#define DT_TIMEOUT_MAX             3600
#define DT_CHAIN_REFRESH_DEFAULT   3600
#define DT_CHAIN_REFRESH_MIN       60
#define DT_CHAIN_REFRESH_MAX       (7 * 24 * 3600)
#define DT_RETRY_AFTER_MAX         (7 * 24 * 3600)

/* Back-off of the background chain fetch while the CA cannot be reached:
 * from the first value, doubling, up to the last. */
#define DT_BACKOFF_MIN 5
#define DT_BACKOFF_MAX 300

/* The agent certificate is announced as expiring this many days ahead,
 * and checked again this often. */
#define DT_EXPIRY_WARN_DAYS 30
#define DT_EXPIRY_CHECK     (24 * 3600)

/* The password file holds one line; anything longer is not a password. */
#define DT_PASSWORD_MAX 1024

/* Profile ids and authority ids are short in every real CA. */
#define DT_NAME_MAX 128

/* Dogtag's session cookie (Tomcat). */
#define DT_SESSION_COOKIE "JSESSIONID"

/* Which REST API a URL serves; learnt by probing, remembered per URL. */
enum dt_api { DT_API_UNKNOWN, DT_API_V2, DT_API_V1 };

/* What to do with a request the profile leaves pending. */
enum dt_approval {
	DT_APPROVAL_WAIT, /* PENDING; a human agent approves */
	DT_APPROVAL_AUTO  /* review and approve as the agent at once */
};

/* Per-label state. */
struct dogtag {
	/* Configuration: written by configure, read-only afterwards. */
	char *urls[DT_URLS_MAX]; /* base URLs, no trailing slash */
	size_t nurls;
	char *ca_bundle;
	char *agent_cert; /* resolved paths, NULL when not set */
	char *agent_key;
	char *user;     /* NULL: none */
	char *password; /* from password_file; never logged */
	char *profile;
	char *issuer_id; /* lightweight CA id; NULL: the host authority */
	enum dt_approval approval;
	long connect_timeout; /* seconds */
	long timeout;
	long chain_refresh;
	unsigned int retry_after; /* 0: the label's default */
	char agent_subject[256];  /* RFC 2253, "" without agent_cert */
	time_t agent_not_after;
	X509 *agent_x509; /* the agent certificate; NULL without agent_cert */

	/* Shared by the workers, under lock. */
	pthread_mutex_t lock;
	int lock_init;
	size_t good_url;                /* the URL that answered last */
	enum dt_api api[DT_URLS_MAX];   /* per URL, DT_API_UNKNOWN: probe */
	STACK_OF(X509) *chain;          /* cached CA chain, issuing CA first */
	int chain_failed;               /* the last fetch failed, no chain */
	char chain_cause[CA_CAUSE_MAX]; /* why it failed */
	struct dt_op *ops;              /* every operation running */

	/* Background work, on worker 0's loop only. */
	struct event_base *bg_base;
	struct event *bg_timer;
	struct event *expiry_timer;
	struct dt_op *bg_op;
	long bg_backoff;
};

/* The exchange an operation is at. */
enum dt_step {
	DT_PROBE_V2,      /* GET /pki/v2/info */
	DT_PROBE_V1,      /* GET /pki/rest/info */
	DT_LOGIN,         /* GET …/account/login */
	DT_SUBMIT,        /* POST …/certrequests */
	DT_REVIEW,        /* GET …/agent/certrequests/{id} */
	DT_APPROVE,       /* POST …/agent/certrequests/{id}/approve */
	DT_STATUS,        /* GET …/certrequests/{id} */
	DT_CERT,          /* GET …/certs/{id} */
	DT_CHAIN,         /* GET …/authorities/{aid}/chain */
	DT_PROFILE,       /* GET …/certrequests/profiles/{profile} */
	DT_PROFILE_STATE, /* GET …/profiles/{profile}: enabled or not */
	DT_STEP__MAX
};

/* One call, or one background chain fetch (call NULL). */
struct dt_op {
	struct dogtag *dt;
	struct ca_call *call; /* borrowed until completed; NULL: background */
	struct event_base *base;
	enum dt_step step; /* the exchange running */
	enum dt_step goal; /* the step that probe and login lead to */
	enum dt_api api;   /* the API of the current URL */
	size_t url;        /* index into dt->urls */
	size_t tries;      /* URLs tried so far */
	int logged_in;     /* in session on the current URL */
	int reprobed;      /* the API was probed again after an HTML 404 */
	int approved;      /* approved in this operation */
	char session[CA_HTTP_COOKIE_MAX]; /* JSESSIONID, "" when none */
	char req_id[DOGTAG_ID_MAX];       /* the CA's request id */
	char cert_id[DOGTAG_ID_MAX];      /* the issued certificate's id */
	char *submit;                     /* DT_SUBMIT body */
	char *review;                     /* DT_APPROVE body: the review */
	size_t review_len;
	struct ca_http_transfer *t;
	char page_url[CA_URL_MAX]; /* the URL of the current exchange */
	struct dt_op *prev, *next; /* dt->ops */
};

static const char *const dt_actions[DT_STEP__MAX] = {
    "probing the REST API",        "probing the REST API v1",
    "logging in as agent",         "submitting request",
    "reviewing request",           "approving request",
    "reading request status",      "collecting certificate",
    "fetching CA chain",           "reading the profile",
    "reading the profile's state",
};

static const char *const dt_conf_keys[] = {
    "backend",
    "urls",
    "ca_bundle",
    "agent_cert",
    "agent_key",
    "user",
    "password_file",
    "profile",
    "issuer_id",
    "approval",
    "connect_timeout",
    "timeout",
    "chain_refresh",
    "retry_after",
    NULL,
};

static void dt_step_start(struct dt_op *op);
static void dt_go(struct dt_op *op, enum dt_step goal);

/* --- configuration ---------------------------------------------------------
 */

/*
 * Reads the optional name at key (a profile or authority id, which go into
 * URL paths unescaped) into a new *out: letters, digits, '.', '_', '-'.
 */
static int
dt_conf_name(const json_t *conf, const char *key, char **out,
             struct core_err *err)
{
	size_t i;

	if (core_conf_string(conf, key, DT_NAME_MAX, out, err) != 0)
		return -1;
	for (i = 0; *out != NULL && (*out)[i] != '\0'; i++) {
		char c = (*out)[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
			continue;
		return core_err_set(
		    err, key,
		    "\"%s\" may hold only letters, digits, '.', "
		    "'_' and '-', not \"%s\"",
		    key, *out);
	}
	return 0;
}

/*
 * Reads "urls": one or more http(s) base URLs of PKI servers (the master
 * CA and its clones), trailing slash dropped.  The API paths (/ca/v2,
 * /pki/v2/info) are added by estrad, so a URL that already ends in /ca is
 * refused with the fix.
 */
static int
dt_conf_urls(struct dogtag *dt, const json_t *conf, struct core_err *err)
{
	char key[32];
	json_t *list, *v;
	size_t i, n;
	int rc = -1;

	if ((list = json_object_get(conf, "urls")) == NULL) {
		core_err_set(
		    err, "urls",
		    "missing \"urls\" (the PKI server base URLs, master "
		    "first, e.g. [\"https://pki1.example.net:8443\"])");
		goto out;
	}
	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > DT_URLS_MAX) {
		core_err_set(
		    err, "urls",
		    "\"urls\" must be an array of 1 to %d URLs, not %s",
		    DT_URLS_MAX, core_conf_type_name(list));
		goto out;
	}
	json_array_foreach(list, i, v)
	{
		const char *s, *path;

		snprintf(key, sizeof(key), "urls.%zu", i);
		if (!json_is_string(v) || !core_conf_clean_string(v) ||
		    json_string_length(v) > CA_URL_MAX - 160) {
			core_err_set(err, key,
			             "element %zu must be a URL string of at "
			             "most %d bytes",
			             i + 1, CA_URL_MAX - 160);
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
		if (strpbrk(s, "?# @") != NULL) {
			core_err_set(
			    err, key,
			    "\"%s\" must be a plain base URL (no query, "
			    "fragment, space or credentials)",
			    s);
			goto out;
		}
		if ((dt->urls[i] = strdup(s)) == NULL) {
			core_err_set(err, key, "out of memory");
			goto out;
		}
		dt->nurls = i + 1;
		n = strlen(dt->urls[i]);
		while (n > 0 && dt->urls[i][n - 1] == '/')
			dt->urls[i][--n] = '\0';
		path = strchr(dt->urls[i] + (s[4] == 's' ? 8 : 7), '/');
		if (path != NULL &&
		    (strcmp(path, "/ca") == 0 || strstr(path, "/ca/") != NULL ||
		     strcmp(path, "/pki") == 0)) {
			core_err_set(err, key,
			             "\"%s\" names a path of the CA; give the "
			             "server's base URL (https://HOST:8443), "
			             "estrad adds /ca/v2 or /ca/rest",
			             s);
			goto out;
		}
	}
	rc = 0;
out:
	return rc;
}

/* A passphrase callback that refuses: the key must not be encrypted, and
 * OpenSSL must never prompt on a terminal. */
static int
dt_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/*
 * Loads the agent certificate and key, checks that they belong together,
 * and remembers the certificate's subject and notAfter for the log lines.
 * An expired certificate is accepted here: estrad starts, says so in the
 * error log, and answers enrollments 500 until it is renewed.
 */
static int
dt_conf_agent(struct dogtag *dt, struct core_err *err)
{
	long long not_after;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	BIO *bio = NULL;
	FILE *fp = NULL;
	char *p = NULL;
	long n;
	int rc = -1;

	if ((fp = fopen(dt->agent_cert, "re")) == NULL ||
	    (cert = PEM_read_X509(fp, NULL, dt_no_passphrase, NULL)) == NULL) {
		core_err_set(err, "agent_cert",
		             "%s: no PEM certificate can be read",
		             dt->agent_cert);
		goto out;
	}
	fclose(fp);
	if ((fp = fopen(dt->agent_key, "re")) == NULL ||
	    (key = PEM_read_PrivateKey(fp, NULL, dt_no_passphrase, NULL)) ==
	        NULL) {
		core_err_set(err, "agent_key",
		             "%s: no unencrypted PEM private key can be read",
		             dt->agent_key);
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		core_err_set(err, "agent_key",
		             "%s is not the key of the agent certificate %s",
		             dt->agent_key, dt->agent_cert);
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
	                       XN_FLAG_RFC2253) < 0 ||
	    (n = BIO_get_mem_data(bio, &p)) < 0) {
		core_err_set(err, "agent_cert", "out of memory");
		goto out;
	}
	snprintf(dt->agent_subject, sizeof(dt->agent_subject), "%.*s",
	         (int)(n < (long)sizeof(dt->agent_subject) ? n : 255), p);
	if ((not_after = core_time_asn1_seconds(X509_get0_notAfter(cert))) <
	    0) {
		core_err_set(err, "agent_cert",
		             "%s: the certificate's notAfter cannot be read",
		             dt->agent_cert);
		goto out;
	}
	dt->agent_not_after = (time_t)not_after;
	/* Kept for own_certs: the expiry gauge of /metrics and --doctor. */
	dt->agent_x509 = cert;
	cert = NULL;
	rc = 0;
out:
	ERR_clear_error();
	if (fp != NULL)
		fclose(fp);
	BIO_free(bio);
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}

static void
dt_unconfigure(void *p)
{
	struct dogtag *dt = p;
	size_t i;

	for (i = 0; i < dt->nurls; i++)
		free(dt->urls[i]);
	free(dt->ca_bundle);
	free(dt->agent_cert);
	free(dt->agent_key);
	X509_free(dt->agent_x509);
	free(dt->user);
	if (dt->password != NULL) {
		OPENSSL_cleanse(dt->password, strlen(dt->password));
		free(dt->password);
	}
	free(dt->profile);
	free(dt->issuer_id);
	sk_X509_pop_free(dt->chain, X509_free);
	if (dt->lock_init)
		pthread_mutex_destroy(&dt->lock);
	memset(dt, 0, sizeof(*dt));
}

static int
dt_configure(void *p, const json_t *conf, const char *conf_dir,
             struct core_err *err)
{
	struct dogtag *dt = p;
	char *password_file = NULL, *approval = NULL;
	long n;
	int rc = -1;

	if (pthread_mutex_init(&dt->lock, NULL) != 0) {
		core_err_set(err, "", "cannot create a mutex");
		goto out;
	}
	dt->lock_init = 1;
	dt->connect_timeout = DT_CONNECT_TIMEOUT_DEFAULT;
	dt->timeout = DT_TIMEOUT_DEFAULT;
	dt->chain_refresh = DT_CHAIN_REFRESH_DEFAULT;
	if (!json_is_object(conf)) {
		core_err_set(err, "", "\"ca\" must be an object, not %s",
		             core_conf_type_name(conf));
		goto out;
	}
	if (core_conf_check_keys(conf, "", dt_conf_keys, err) != 0 ||
	    dt_conf_urls(dt, conf, err) != 0 ||
	    core_conf_file(conf, "ca_bundle", conf_dir, &dt->ca_bundle, err) !=
	        0 ||
	    core_conf_file(conf, "agent_cert", conf_dir, &dt->agent_cert,
	                   err) != 0 ||
	    core_conf_file(conf, "agent_key", conf_dir, &dt->agent_key, err) !=
	        0 ||
	    core_conf_string(conf, "user", 256, &dt->user, err) != 0 ||
	    core_conf_file(conf, "password_file", conf_dir, &password_file,
	                   err) != 0 ||
	    dt_conf_name(conf, "profile", &dt->profile, err) != 0 ||
	    dt_conf_name(conf, "issuer_id", &dt->issuer_id, err) != 0 ||
	    core_conf_string(conf, "approval", 16, &approval, err) != 0 ||
	    core_conf_int(conf, "connect_timeout", 1, DT_CONNECT_TIMEOUT_MAX,
	                  &dt->connect_timeout, err) != 0 ||
	    core_conf_int(conf, "timeout", 1, DT_TIMEOUT_MAX, &dt->timeout,
	                  err) != 0 ||
	    core_conf_int(conf, "chain_refresh", DT_CHAIN_REFRESH_MIN,
	                  DT_CHAIN_REFRESH_MAX, &dt->chain_refresh, err) != 0)
		goto out;
	n = 0;
	if (core_conf_int(conf, "retry_after", 1, DT_RETRY_AFTER_MAX, &n,
	                  err) != 0)
		goto out;
	dt->retry_after = (unsigned int)n;
	if (dt->profile == NULL) {
		core_err_set(err, "profile",
		             "missing \"profile\" (the Dogtag profile id, e.g. "
		             "\"caServerCert\")");
		goto out;
	}
	if (approval == NULL || strcmp(approval, "wait") == 0)
		dt->approval = DT_APPROVAL_WAIT;
	else if (strcmp(approval, "auto") == 0)
		dt->approval = DT_APPROVAL_AUTO;
	else {
		core_err_set(err, "approval",
		             "unknown approval \"%s\" (one of: auto, wait)",
		             approval);
		goto out;
	}
	/* One agent credential: a certificate (FreeIPA's RA agent) or a
	 * user with a password, never half of one. */
	if ((dt->agent_cert == NULL) != (dt->agent_key == NULL)) {
		core_err_set(
		    err, dt->agent_cert == NULL ? "agent_cert" : "agent_key",
		    "\"agent_cert\" and \"agent_key\" go together");
		goto out;
	}
	if ((dt->user == NULL) != (password_file == NULL)) {
		core_err_set(err, dt->user == NULL ? "user" : "password_file",
		             "\"user\" and \"password_file\" go together");
		goto out;
	}
	if (dt->agent_cert != NULL && dt->user != NULL) {
		core_err_set(err, "user",
		             "set either \"agent_cert\"/\"agent_key\" or "
		             "\"user\"/\"password_file\", not both");
		goto out;
	}
	if (dt->approval == DT_APPROVAL_AUTO && dt->agent_cert == NULL &&
	    dt->user == NULL) {
		core_err_set(
		    err, "approval",
		    "approval \"auto\" approves as a CA agent: set "
		    "\"agent_cert\" and \"agent_key\" (or \"user\" and "
		    "\"password_file\")");
		goto out;
	}
	if (dt->user != NULL) {
		size_t i;

		/* Basic sends the password as it is. */
		for (i = 0; i < dt->nurls; i++)
			if (strncmp(dt->urls[i], "https://", 8) != 0) {
				char key[32];

				snprintf(key, sizeof(key), "urls.%zu", i);
				core_err_set(
				    err, key,
				    "\"user\" (HTTP Basic) needs https:// "
				    "URLs");
				goto out;
			}
		if (core_conf_read_password(password_file, DT_PASSWORD_MAX,
		                            &dt->password, err) != 0)
			goto out;
	}
	if (dt->agent_cert != NULL && dt_conf_agent(dt, err) != 0)
		goto out;
	rc = 0;
out:
	free(password_file);
	free(approval);
	return rc;
}

/* --- agent certificate ----------------------------------------------------
 */

/*
 * Describes the agent credential into buf (size len) for log lines:
 * `"CN=estrad-agent" expired 2026-11-20T00:00:00Z`, `… expires … (in 12
 * days)`, `… valid until …`, or `user NAME`.  "" without credentials.
 */
static const char *
dt_agent_text(const struct dogtag *dt, char *buf, size_t len)
{
	char when[32];
	time_t now = time(NULL);
	long days;

	buf[0] = '\0';
	if (dt->user != NULL) {
		snprintf(buf, len, "user %s", dt->user);
		return buf;
	}
	if (dt->agent_cert == NULL)
		return buf;
	core_time_epoch(dt->agent_not_after, when, sizeof(when));
	days = (long)((dt->agent_not_after - now) / 86400);
	if (dt->agent_not_after <= now)
		snprintf(buf, len, "\"%s\" expired %s", dt->agent_subject,
		         when);
	else if (days < DT_EXPIRY_WARN_DAYS)
		snprintf(buf, len, "\"%s\" expires %s (in %ld days)",
		         dt->agent_subject, when, days);
	else
		snprintf(buf, len, "\"%s\" valid until %s", dt->agent_subject,
		         when);
	return buf;
}

/* Returns 1 when the agent certificate has expired. */
static int
dt_agent_expired(const struct dogtag *dt)
{
	return dt->agent_cert != NULL && dt->agent_not_after <= time(NULL);
}

/*
 * Logs the agent certificate's state when it has expired (error) or
 * expires within DT_EXPIRY_WARN_DAYS (warn).  call may be NULL.
 */
static void
dt_agent_check(const struct dogtag *dt, const struct ca_call *call)
{
	char text[400];

	if (dt->agent_cert == NULL)
		return;
	dt_agent_text(dt, text, sizeof(text));
	if (dt_agent_expired(dt))
		ca_log(call, CORE_LOG_ERROR, DT_COMPONENT,
		       "renew the agent certificate, then SIGHUP",
		       "agent certificate expired: the CA will refuse the "
		       "agent login, backend: dogtag, agent_cert: %s, file: %s",
		       text, dt->agent_cert);
	else if (dt->agent_not_after - time(NULL) <
	         (time_t)DT_EXPIRY_WARN_DAYS * 86400)
		ca_log(call, CORE_LOG_WARN, DT_COMPONENT,
		       "renew the agent certificate before it expires, then "
		       "SIGHUP",
		       "agent certificate expires soon, backend: dogtag, "
		       "agent_cert: %s, file: %s",
		       text, dt->agent_cert);
}

/* --- operations ------------------------------------------------------------
 */

static void
dt_op_link(struct dt_op *op)
{
	struct dogtag *dt = op->dt;

	pthread_mutex_lock(&dt->lock);
	op->next = dt->ops;
	if (dt->ops != NULL)
		dt->ops->prev = op;
	dt->ops = op;
	pthread_mutex_unlock(&dt->lock);
}

static void
dt_op_free(struct dt_op *op)
{
	struct dogtag *dt;

	if (op == NULL)
		return;
	dt = op->dt;
	pthread_mutex_lock(&dt->lock);
	if (op->prev != NULL)
		op->prev->next = op->next;
	else if (dt->ops == op)
		dt->ops = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	pthread_mutex_unlock(&dt->lock);
	ca_http_cancel(op->t);
	free(op->submit);
	free(op->review);
	OPENSSL_cleanse(op->session, sizeof(op->session));
	free(op);
}

/* Returns a new operation (free with dt_op_free) on the last good URL. */
static struct dt_op *
dt_op_new(struct dogtag *dt, struct ca_call *call, struct event_base *base)
{
	struct dt_op *op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return NULL;
	op->dt = dt;
	op->call = call;
	op->base = base;
	pthread_mutex_lock(&dt->lock);
	op->url = dt->good_url < dt->nurls ? dt->good_url : 0;
	pthread_mutex_unlock(&dt->lock);
	dt_op_link(op);
	return op;
}

/* Returns "enroll", "poll", ... for the WHAT of causes. */
static const char *
dt_what(const struct dt_op *op)
{
	if (op->call == NULL)
		return "CA chain refresh";
	if (op->call->op == CA_OP_REENROLL)
		return "reenroll";
	return ca_operation_name(op->call->op);
}

/* The label for hints, "this label" when unknown (background). */
static const char *
dt_label(const struct dt_op *op)
{
	return op->call != NULL && op->call->label != NULL ? op->call->label
	                                                   : "this label";
}

/* Whether the operation answers a client's enrollment (not a poll). */
static int
dt_is_enroll(const struct dt_op *op)
{
	return op->call != NULL &&
	       (op->call->op == CA_OP_ENROLL || op->call->op == CA_OP_REENROLL);
}

/* Schedules the next background chain fetch in seconds. */
static void
dt_bg_schedule(struct dogtag *dt, long seconds)
{
	struct timeval tv = {seconds, 0};

	if (dt->bg_timer != NULL)
		evtimer_add(dt->bg_timer, &tv);
}

/*
 * Ends op with outcome and the cause "WHAT: fmt while ACTION": completes
 * its call with cause, hint, URL and extra (as the result's detail: the
 * client's answer carries no configuration) for ra to log on the request's
 * one line, or, for the background fetch, logs the failure and schedules
 * the next try.  Frees op.
 */
static void dt_finish(struct dt_op *op, enum ca_outcome outcome, int csr_fault,
                      const char *hint, const char *what, const char *extra,
                      const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void
dt_finish(struct dt_op *op, enum ca_outcome outcome, int csr_fault,
          const char *hint, const char *what, const char *extra,
          const char *fmt, ...)
{
	struct dogtag *dt = op->dt;
	struct ca_call *call = op->call;
	char cause[CA_CAUSE_MAX], text[CA_CAUSE_MAX - 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (what != NULL)
		snprintf(cause, sizeof(cause), "%s: %s while %s", what, text,
		         dt_actions[op->step]);
	else
		snprintf(cause, sizeof(cause), "%s failed: %s while %s",
		         dt_what(op), text, dt_actions[op->step]);
	if (call == NULL) {
		/* Background: there is no request to answer, so the line
		 * names backend and URL itself. */
		pthread_mutex_lock(&dt->lock);
		if (dt->chain == NULL) {
			dt->chain_failed = 1;
			snprintf(dt->chain_cause, sizeof(dt->chain_cause), "%s",
			         cause);
		}
		pthread_mutex_unlock(&dt->lock);
		ca_log(NULL, CORE_LOG_ERROR, DT_COMPONENT, hint,
		       "%s, backend: dogtag, url: %s%s%s, next try in %ld s",
		       cause, op->page_url, extra != NULL ? ", " : "",
		       extra != NULL ? extra : "", dt->bg_backoff);
		dt->bg_op = NULL;
		dt_bg_schedule(dt, dt->bg_backoff);
		dt->bg_backoff = dt->bg_backoff * 2 > DT_BACKOFF_MAX
		                     ? DT_BACKOFF_MAX
		                     : dt->bg_backoff * 2;
		dt_op_free(op);
		return;
	}
	/* ra writes the request's one line from the result; this copy is
	 * for debugging only. */
	ca_log(call, CORE_LOG_DEBUG, DT_COMPONENT, hint, "%s%s%s", cause,
	       extra != NULL ? ", " : "", extra != NULL ? extra : "");
	sk_X509_pop_free(call->result.chain, X509_free);
	call->result.chain = NULL;
	call->result.outcome = outcome;
	call->result.csr_fault = csr_fault;
	snprintf(call->result.cause, sizeof(call->result.cause), "%s", cause);
	if (hint != NULL)
		snprintf(call->result.hint, sizeof(call->result.hint), "%s",
		         hint);
	if (extra != NULL)
		snprintf(call->result.detail, sizeof(call->result.detail), "%s",
		         extra);
	snprintf(call->result.url, sizeof(call->result.url), "%s",
	         op->page_url);
	if (outcome == CA_UNREACHABLE || outcome == CA_PENDING)
		call->result.retry_after = dt->retry_after;
	dt_op_free(op);
	ca_call_done(call);
}

/* Completes op's call as PENDING on the CA request op->req_id. */
static void
dt_pending(struct dt_op *op, const char *why)
{
	struct ca_call *call = op->call;

	ca_log(call, CORE_LOG_INFO, DT_COMPONENT, NULL,
	       "%s pending: CA request %s %s, profile %s, url: %s", dt_what(op),
	       op->req_id, why, op->dt->profile, op->page_url);
	call->result.outcome = CA_PENDING;
	snprintf(call->result.cookie, sizeof(call->result.cookie), "%s",
	         op->req_id);
	snprintf(call->result.cause, sizeof(call->result.cause),
	         "%s pending: CA request %s %s", dt_what(op), op->req_id, why);
	snprintf(call->result.url, sizeof(call->result.url), "%s",
	         op->page_url);
	call->result.retry_after = op->dt->retry_after;
	dt_op_free(op);
	ca_call_done(call);
}

/*
 * A failure after the CA created the request (review, approval, status,
 * certificate): the request is not lost.  An enrollment answers PENDING
 * with the request id, so that the client's retry polls it; the cause is
 * logged at error with hint.  A poll answers outcome (503 keeps its
 * pending record, so the next retry polls again).
 */
static void dt_kept(struct dt_op *op, enum ca_outcome outcome, const char *hint,
                    const char *extra, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
dt_kept(struct dt_op *op, enum ca_outcome outcome, const char *hint,
        const char *extra, const char *fmt, ...)
{
	char text[CA_CAUSE_MAX - 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (op->req_id[0] == '\0' || op->call == NULL ||
	    (!dt_is_enroll(op) && outcome != CA_PENDING)) {
		dt_finish(op, outcome, 0, hint, NULL, extra, "%s", text);
		return;
	}
	ca_log(op->call, CORE_LOG_ERROR, DT_COMPONENT, hint,
	       "%s failed: %s while %s; CA request %s stays pending at the "
	       "CA, the client's retry tries again%s%s",
	       dt_what(op), text, dt_actions[op->step], op->req_id,
	       extra != NULL ? ", " : "", extra != NULL ? extra : "");
	dt_pending(op, "kept after a failure (see the error log)");
}

/* Remembers the URL that answered, for the next operations. */
static void
dt_answered(struct dt_op *op)
{
	pthread_mutex_lock(&op->dt->lock);
	op->dt->good_url = op->url;
	pthread_mutex_unlock(&op->dt->lock);
}

/* Remembers api for op's URL (DT_API_UNKNOWN: probe again next time). */
static void
dt_set_api(struct dt_op *op, enum dt_api api)
{
	pthread_mutex_lock(&op->dt->lock);
	op->dt->api[op->url] = api;
	pthread_mutex_unlock(&op->dt->lock);
	op->api = api;
}

/* Whether goal needs the agent's session first. */
static int
dt_needs_login(const struct dt_op *op, enum dt_step goal)
{
	const struct dogtag *dt = op->dt;

	if (dt->agent_cert == NULL && dt->user == NULL)
		return 0;
	return goal == DT_SUBMIT || goal == DT_REVIEW || goal == DT_APPROVE ||
	       goal == DT_PROFILE || goal == DT_PROFILE_STATE;
}

/*
 * Heads op for goal on its current URL: the API probe first when the
 * URL's API is not known yet, then the agent login when goal needs it.
 */
static void
dt_go(struct dt_op *op, enum dt_step goal)
{
	op->goal = goal;
	pthread_mutex_lock(&op->dt->lock);
	op->api = op->dt->api[op->url];
	pthread_mutex_unlock(&op->dt->lock);
	if (op->api == DT_API_UNKNOWN)
		op->step = DT_PROBE_V2;
	else if (!op->logged_in && dt_needs_login(op, goal))
		op->step = DT_LOGIN;
	else
		op->step = goal;
	dt_step_start(op);
}

/*
 * Moves op to the next URL after a connection-level failure (cause) and
 * heads for the same goal there, with a new session (clones share the
 * request database, not the HTTP sessions).  Returns 0 when it did, -1
 * when every URL was tried.
 */
static int
dt_failover(struct dt_op *op, const char *cause)
{
	struct dogtag *dt = op->dt;
	enum dt_step goal;
	size_t next;

	if (op->tries + 1 >= dt->nurls)
		return -1;
	next = (op->url + 1) % dt->nurls;
	ca_log(op->call, CORE_LOG_WARN, DT_COMPONENT, NULL,
	       "CA failover: %s while %s at %s; trying %s", cause,
	       dt_actions[op->step], op->page_url, dt->urls[next]);
	goal = op->step == DT_PROBE_V2 || op->step == DT_PROBE_V1 ||
	               op->step == DT_LOGIN
	           ? op->goal
	           : op->step;
	/* The review's nonce lives in the session of the first CA. */
	if (goal == DT_APPROVE)
		goal = DT_REVIEW;
	op->tries++;
	op->url = next;
	op->logged_in = 0;
	op->reprobed = 0;
	op->session[0] = '\0';
	dt_go(op, goal);
	return 0;
}

/*
 * Writes the house cause of an HTTP error answer into buf: `HTTP 400 "Bad
 * Request": BadRequestException 400 "Bad request data: Profile x Not
 * Found"`, or `HTTP 404 "Not Found" (HTML page)`; fills ex (class_name ""
 * when the body is no PKIException).  Returns buf.
 */
static const char *
dt_http_cause(const struct ca_http_response *res, const char *data, size_t len,
              struct dogtag_exception *ex, char *buf, size_t buflen)
{
	char head[128];
	int html;

	ca_http_cause(res, head, sizeof(head));
	html = dogtag_body_is_html(data, len, res->content_type);
	if (html || dogtag_json_exception(data, len, ex) != 0) {
		memset(ex, 0, sizeof(*ex));
		snprintf(buf, buflen, "%s%s", head,
		         html       ? " (HTML page)"
		         : len == 0 ? " (empty body)"
		                    : "");
		return buf;
	}
	if (ex->v1_disabled)
		snprintf(buf, buflen, "%s: \"%s\"", head, ex->message);
	else
		snprintf(buf, buflen, "%s: %s %ld \"%s\"", head,
		         ex->class_name[0] != '\0' ? ex->class_name
		                                   : "PKIException",
		         ex->code != 0 ? ex->code : res->status, ex->message);
	return buf;
}

/* Returns 1 when the error names a TLS alert about our certificate. */
static int
dt_tls_cert_refused(const char *error)
{
	static const char *const alerts[] = {
	    "alert certificate expired", "alert bad certificate",
	    "alert unknown ca",          "alert certificate unknown",
	    "alert certificate revoked", "certificate required",
	    "alert access denied",       NULL,
	};
	size_t i;

	for (i = 0; alerts[i] != NULL; i++)
		if (strstr(error, alerts[i]) != NULL)
			return 1;
	return 0;
}

/* Whether the current step presents the agent credential. */
static int
dt_step_is_agent(enum dt_step step)
{
	return step == DT_LOGIN || step == DT_SUBMIT || step == DT_REVIEW ||
	       step == DT_APPROVE;
}

/*
 * The CA refused the agent credential (401/403 on an agent path, or a TLS
 * alert about the agent certificate): MISCONFIGURED, with the agent
 * certificate's subject and notAfter on the log line.  After the request
 * exists, it stays pending for a human agent.
 */
static void
dt_agent_refused(struct dt_op *op, const char *cause)
{
	struct dogtag *dt = op->dt;
	char agent[400], extra[440], hint[CA_HINT_MAX];

	dt_agent_text(dt, agent, sizeof(agent));
	if (dt->user != NULL) {
		snprintf(extra, sizeof(extra), "agent: %s", agent);
		snprintf(hint, sizeof(hint),
		         "check user and password_file of label %s, and that "
		         "%s is a CA agent",
		         dt_label(op), dt->user);
	} else if (dt->agent_cert != NULL) {
		snprintf(extra, sizeof(extra), "agent_cert: %s", agent);
		if (dt_agent_expired(dt))
			snprintf(hint, sizeof(hint),
			         "renew the agent certificate, then SIGHUP");
		else
			snprintf(
			    hint, sizeof(hint),
			    "check that the CA knows %.120s as an agent "
			    "(pki ca-user-cert-find) and trusts its issuer",
			    dt->agent_subject);
	} else {
		snprintf(extra, sizeof(extra), "agent: none");
		snprintf(hint, sizeof(hint),
		         "the CA asks for an agent: set agent_cert and "
		         "agent_key of label %s",
		         dt_label(op));
	}
	if (op->req_id[0] != '\0' && op->step != DT_SUBMIT) {
		dt_kept(op, CA_PENDING, hint, extra,
		        "agent authentication failed: %s", cause);
		return;
	}
	dt_finish(op, CA_MISCONFIGURED, 0, hint,
	          op->step == DT_LOGIN ? "agent login failed" : NULL, extra,
	          "%s%s",
	          op->step == DT_LOGIN ? ""
	                               : "agent authentication "
	                                 "failed: ",
	          cause);
}

/*
 * Handles a failed transfer: failover for connection-level failures, else
 * the outcome that fits the curl code.
 */
static void
dt_curl_failed(struct dt_op *op, const struct ca_http_response *res)
{
	struct dogtag *dt = op->dt;
	char cause[CA_CAUSE_MAX - 256], hint[CA_HINT_MAX];
	enum ca_outcome outcome = CA_UNREACHABLE;
	const char *h = NULL;
	int failover = 0;

	ca_http_cause(res, cause, sizeof(cause));
	/* A server that refuses the client certificate sends an alert and
	 * closes; depending on timing libcurl sees the alert (35, 56) or
	 * only the closed socket (55).  With an expired agent certificate
	 * either one is the refusal, not a dead CA worth failing over for. */
	if (dt_step_is_agent(op->step) && dt->agent_cert != NULL &&
	    (dt_tls_cert_refused(res->error) ||
	     (dt_agent_expired(dt) &&
	      (res->curl_code == CURLE_SSL_CONNECT_ERROR ||
	       res->curl_code == CURLE_SEND_ERROR ||
	       res->curl_code == CURLE_RECV_ERROR)))) {
		dt_agent_refused(op, cause);
		return;
	}
	switch (res->curl_code) {
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(hint, sizeof(hint),
		         "check DNS for the CA host or the urls of label %s",
		         dt_label(op));
		h = hint;
		failover = 1;
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
		snprintf(hint, sizeof(hint),
		         "check that the PKI server (pki-tomcatd) runs and "
		         "the urls of label %s",
		         dt_label(op));
		h = hint;
		failover = 1;
		break;
	case CURLE_OPERATION_TIMEDOUT: {
		size_t n = strlen(cause);

		/* A POST that went out may have reached the CA: moving it to
		 * a clone could issue twice. */
		failover =
		    !((op->step == DT_SUBMIT || op->step == DT_APPROVE) &&
		      res->request_sent);
		snprintf(cause + n, sizeof(cause) - n,
		         " (limits: connect_timeout %ld s, timeout %ld s)",
		         dt->connect_timeout, dt->timeout);
		snprintf(hint, sizeof(hint),
		         "check the PKI server's load and the network to it, "
		         "or raise timeout of label %s",
		         dt_label(op));
		h = hint;
		break;
	}
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		/* The connection dropped: a clone may answer, unless a POST
		 * may already have arrived. */
		failover =
		    !((op->step == DT_SUBMIT || op->step == DT_APPROVE) &&
		      res->request_sent);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		outcome = CA_MISCONFIGURED;
		if (strstr(res->error, "certificate is not yet valid") !=
		    NULL) {
			size_t n = strlen(cause);

			snprintf(cause + n, sizeof(cause) - n,
			         " (clock skew?)");
			h = "check the clocks of estrad and of the CA";
		} else if (strstr(res->error, "no alternative certificate "
		                              "subject name") != NULL ||
		           strstr(res->error, "does not match") != NULL) {
			h = "the PKI server's certificate does not name the "
			    "host of the url";
		} else {
			snprintf(hint, sizeof(hint),
			         "add the PKI server certificate's issuer to "
			         "the ca_bundle of label %s",
			         dt_label(op));
			h = hint;
		}
		break;
	case CURLE_SSL_CERTPROBLEM:
		outcome = CA_MISCONFIGURED;
		h = "check agent_cert and agent_key";
		break;
	case CURLE_WRITE_ERROR:
		if (res->capped) {
			/* No Dogtag answer comes near the cap: the url
			 * points at something else. */
			outcome = CA_MISCONFIGURED;
			h = "check that the url is the PKI server's base URL "
			    "and port (https://HOST:8443)";
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
		h = "check the PKI server and any proxy or firewall between "
		    "it and estrad";
	if (failover && dt_failover(op, cause) == 0)
		return;
	if (outcome == CA_CANCELLED) {
		dt_finish(op, outcome, 0, NULL, NULL, NULL, "%s", cause);
		return;
	}
	if (op->req_id[0] != '\0' && op->step != DT_SUBMIT) {
		dt_kept(op, outcome, h, NULL, "%s", cause);
		return;
	}
	dt_finish(op, outcome, 0, h, NULL, NULL, "%s", cause);
}

/*
 * An API path answered 404 with an HTML page, or the "v1 disabled" JSON:
 * the API this URL was probed for is gone (an upgrade removed v1, or the
 * URL points at another server).  Probe once more, then give up.
 */
static void
dt_api_gone(struct dt_op *op, const char *cause)
{
	if (!op->reprobed) {
		ca_log(op->call, CORE_LOG_WARN, DT_COMPONENT, NULL,
		       "REST API not available at %s: %s; probing the API "
		       "version again",
		       op->page_url, cause);
		op->reprobed = 1;
		op->logged_in = 0;
		op->session[0] = '\0';
		dt_set_api(op, DT_API_UNKNOWN);
		dt_go(op, op->step == DT_LOGIN ? op->goal : op->step);
		return;
	}
	dt_set_api(op, DT_API_UNKNOWN);
	dt_finish(op, CA_MISCONFIGURED, 0,
	          "check that the url is the PKI server's base URL and port "
	          "(https://HOST:8443) and that the CA's REST API is enabled",
	          NULL, NULL,
	          "REST API not available (not \"request not "
	          "found\"): %s",
	          cause);
}

/* Hint for a profile the CA does not know or has disabled. */
static void
dt_profile_hint(const struct dt_op *op, char *hint, size_t len)
{
	snprintf(hint, len,
	         "check profile %s of label %s: pki ca-profile-show %s, "
	         "pki ca-profile-enable %s",
	         op->dt->profile, dt_label(op), op->dt->profile,
	         op->dt->profile);
}

/*
 * Ends a health call that found the profile: logs what it found as the
 * call's last info line (--doctor prints that on its ok line) and
 * completes the call ISSUED.  unread, when set, says why the profile's
 * enabled state could not be read: logged as a warning, since the check
 * is then incomplete rather than failed.
 */
static void
dt_health_ok(struct dt_op *op, const char *state, const char *unread)
{
	struct ca_call *call = op->call;
	char agent[400], hint[CA_HINT_MAX];

	if (unread != NULL) {
		/* Dogtag lets only certificate logins of agents, auditors
		 * and administrators read a profile. */
		snprintf(hint, sizeof(hint),
		         "%s, or check it by hand: pki ca-profile-show %s",
		         op->dt->user != NULL
		             ? "set agent_cert and agent_key instead of user: "
		               "only certificate logins may read profiles"
		             : "let the agent read profiles "
		               "(certServer.profile.configuration read)",
		         op->dt->profile);
		ca_log(call, CORE_LOG_WARN, DT_COMPONENT, hint,
		       "profile %s exists, but whether it is enabled could "
		       "not be read: %s, url: %s",
		       op->dt->profile, unread, op->page_url);
	}
	dt_agent_text(op->dt, agent, sizeof(agent));
	ca_log(call, CORE_LOG_INFO, DT_COMPONENT, NULL,
	       "REST API %s, agent %s, profile %s %s",
	       op->api == DT_API_V2 ? "v2" : "v1 (deprecated)",
	       agent[0] != '\0' ? agent : "none", op->dt->profile, state);
	call->result.outcome = CA_ISSUED;
	snprintf(call->result.url, sizeof(call->result.url), "%s",
	         op->page_url);
	dt_op_free(op);
	ca_call_done(call);
}

/* Handles an HTTP answer other than 200/204. */
static void
dt_http_failed(struct dt_op *op, const struct ca_http_response *res,
               const char *data, size_t len)
{
	struct dogtag *dt = op->dt;
	struct dogtag_exception ex;
	char cause[CA_CAUSE_MAX - 256], hint[CA_HINT_MAX];
	int html = dogtag_body_is_html(data, len, res->content_type);

	dt_http_cause(res, data, len, &ex, cause, sizeof(cause));
	/* Reading a profile's state takes an agent that logged in with a
	 * certificate (auth method and ACL "profiles"); a refusal, or a
	 * server without the endpoint, leaves health at "the profile
	 * exists" with a warning. */
	if (op->step == DT_PROFILE_STATE) {
		dt_answered(op);
		dt_health_ok(op, "exists", cause);
		return;
	}
	/* The probes: 404 on v2 means an older server, try v1. */
	if (op->step == DT_PROBE_V2 && res->status == 404) {
		op->step = DT_PROBE_V1;
		dt_step_start(op);
		return;
	}
	if (res->status == 502 || res->status == 503 || res->status == 504) {
		/* The PKI server (or a proxy before it) is not serving: a
		 * clone may be, and nothing was created here. */
		if (dt_failover(op, cause) == 0)
			return;
		if (op->req_id[0] != '\0' && op->step != DT_SUBMIT) {
			dt_kept(op, CA_UNREACHABLE, NULL, NULL, "%s", cause);
			return;
		}
		dt_finish(op, CA_UNREACHABLE, 0,
		          "check the CA's debug log and that its subsystem "
		          "started (pki-server status)",
		          NULL, NULL, "%s", cause);
		return;
	}
	dt_answered(op);
	if (op->step == DT_PROBE_V1) {
		dt_finish(op, CA_MISCONFIGURED, 0,
		          "check that the url is the PKI server's base URL and "
		          "port (https://HOST:8443)",
		          NULL, NULL,
		          "no Dogtag REST API: /pki/v2/info and /pki/rest/info "
		          "answer %s",
		          cause);
		return;
	}
	if (res->status == 404 && (html || ex.v1_disabled)) {
		dt_api_gone(op, cause);
		return;
	}
	if ((res->status == 401 || res->status == 403) &&
	    dt_step_is_agent(op->step)) {
		dt_agent_refused(op, cause);
		return;
	}
	switch (op->step) {
	case DT_SUBMIT:
		if (res->status == 400 &&
		    (strstr(ex.message, "Profile") != NULL ||
		     strstr(ex.message, "profile") != NULL)) {
			dt_profile_hint(op, hint, sizeof(hint));
			dt_finish(op, CA_MISCONFIGURED, 0, hint, NULL, NULL,
			          "profile %s not found or not enabled: %s",
			          dt->profile, cause);
			return;
		}
		if ((res->status == 400 &&
		     strstr(ex.message, "uthority") != NULL) ||
		    res->status == 404) {
			snprintf(hint, sizeof(hint),
			         "check issuer_id of label %s: pki "
			         "ca-authority-find lists the authority ids",
			         dt_label(op));
			dt_finish(op, CA_MISCONFIGURED, 0, hint, NULL, NULL,
			          "issuer %s: %s",
			          dt->issuer_id != NULL ? dt->issuer_id
			                                : "(host authority)",
			          cause);
			return;
		}
		if (res->status == 409) {
			dt_finish(op, CA_UNREACHABLE, 0,
			          "enable the CA (pki ca-authority-enable) or "
			          "check issuer_id",
			          NULL, NULL, "CA disabled: %s", cause);
			return;
		}
		if (res->status == 410) {
			dt_finish(op, CA_MISCONFIGURED, 0,
			          "check issuer_id: the authority was deleted",
			          NULL, NULL, "CA deleted: %s", cause);
			return;
		}
		if (res->status == 500 &&
		    (strstr(ex.message, "Invalid Request") != NULL ||
		     strstr(ex.message, "nrollment request") != NULL)) {
			dt_finish(op, CA_REJECTED, 1, NULL,
			          "enroll refused by CA", NULL,
			          "bad CSR: %s, profile %s", cause,
			          dt->profile);
			return;
		}
		if (res->status >= 500) {
			dt_finish(op, CA_UNREACHABLE, 0,
			          "check the CA's debug log "
			          "(/var/log/pki/pki-tomcat/ca/debug)",
			          NULL, NULL, "%s, profile %s", cause,
			          dt->profile);
			return;
		}
		dt_finish(op, CA_MISCONFIGURED, 0, NULL, NULL, NULL,
		          "%s, profile %s", cause, dt->profile);
		return;
	case DT_APPROVE:
		if (strcasestr(ex.message, "nonce") != NULL) {
			dt_kept(op, CA_PENDING,
			        "review and approval must share the HTTP "
			        "session: check that no proxy or load balancer "
			        "between estrad and the CA drops JSESSIONID or "
			        "switches clones",
			        NULL, "nonce problem: %s", cause);
			return;
		}
		if (strstr(ex.message, "Not In Pending State") != NULL) {
			/* Someone approved (or rejected) it meanwhile. */
			op->approved = 1;
			dt_go(op, DT_STATUS);
			return;
		}
		dt_kept(op, res->status == 409 ? CA_UNREACHABLE : CA_PENDING,
		        "check the CA's debug log; a CA agent can approve the "
		        "request by hand",
		        NULL, "%s", cause);
		return;
	case DT_REVIEW:
	case DT_STATUS:
		if (res->status == 404 ||
		    (op->step == DT_REVIEW && res->status == 500 &&
		     strstr(ex.message, "not found") != NULL)) {
			dt_finish(op, CA_MISCONFIGURED, 0,
			          "the CA no longer knows the request: enroll "
			          "again",
			          NULL, NULL,
			          "request unknown to the CA: CA "
			          "request %s: %s",
			          op->req_id, cause);
			return;
		}
		dt_kept(op, res->status >= 500 ? CA_UNREACHABLE : CA_PENDING,
		        NULL, NULL, "%s", cause);
		return;
	case DT_CERT:
		dt_kept(op, CA_UNREACHABLE, NULL, NULL,
		        "certificate %s issued but not collected: %s",
		        op->cert_id, cause);
		return;
	case DT_CHAIN:
		if (res->status == 404 || res->status == 406) {
			snprintf(hint, sizeof(hint),
			         "check issuer_id of label %s: pki "
			         "ca-authority-find lists the authority ids",
			         dt_label(op));
			dt_finish(op, CA_MISCONFIGURED, 0, hint, NULL, NULL,
			          "%s, authority %s", cause,
			          dt->issuer_id != NULL ? dt->issuer_id
			                                : "host-authority");
			return;
		}
		break;
	case DT_PROFILE:
		if (res->status == 400 || res->status == 404) {
			dt_profile_hint(op, hint, sizeof(hint));
			dt_finish(op, CA_MISCONFIGURED, 0, hint, NULL, NULL,
			          "profile %s not found or not enabled: %s",
			          dt->profile, cause);
			return;
		}
		break;
	default:
		break;
	}
	dt_finish(op,
	          res->status == 409 || res->status >= 500 ? CA_UNREACHABLE
	                                                   : CA_MISCONFIGURED,
	          0, NULL, NULL, NULL, "%s", cause);
}

/* An answer that is not what the step expects: MISCONFIGURED. */
static void
dt_unexpected(struct dt_op *op, const struct ca_http_response *res,
              const char *data, size_t len, const char *expected)
{
	char excerpt[200];
	size_t i, n = len < sizeof(excerpt) - 1 ? len : sizeof(excerpt) - 1;

	for (i = 0; i < n; i++)
		excerpt[i] = (unsigned char)data[i] < 0x20 ||
		                     (unsigned char)data[i] >= 0x7f
		                 ? ' '
		                 : data[i];
	excerpt[n] = '\0';
	if (op->req_id[0] != '\0' && op->step != DT_SUBMIT) {
		dt_kept(op, CA_UNREACHABLE, NULL, NULL,
		        "unexpected answer (%s, %zu bytes, not %s): \"%s\"",
		        res->content_type[0] != '\0' ? res->content_type
		                                     : "no Content-Type",
		        len, expected, excerpt);
		return;
	}
	dt_finish(op, CA_MISCONFIGURED, 0,
	          "check that the url is the PKI server's base URL "
	          "(https://HOST:8443)",
	          NULL, NULL,
	          "unexpected answer (%s, %zu bytes, not %s): \"%s\"",
	          res->content_type[0] != '\0' ? res->content_type
	                                       : "no Content-Type",
	          len, expected, excerpt);
}

/* Returns a new copy of the cached chain with new references, or NULL. */
static STACK_OF(X509) *
dt_chain_copy(struct dogtag *dt)
{
	STACK_OF(X509) *rc = NULL;

	pthread_mutex_lock(&dt->lock);
	if (dt->chain != NULL)
		rc = X509_chain_up_ref(dt->chain);
	pthread_mutex_unlock(&dt->lock);
	return rc;
}

/* The chain arrived: cache it, answer the call or schedule a refresh. */
static void
dt_chain_done(struct dt_op *op, STACK_OF(X509) *chain)
{
	struct dogtag *dt = op->dt;
	struct ca_call *call = op->call;
	STACK_OF(X509) *old;

	chain = core_chain_order(chain);
	pthread_mutex_lock(&dt->lock);
	old = dt->chain;
	dt->chain = chain;
	dt->chain_failed = 0;
	dt->chain_cause[0] = '\0';
	pthread_mutex_unlock(&dt->lock);
	sk_X509_pop_free(old, X509_free);
	if (call == NULL) {
		ca_log(NULL, CORE_LOG_INFO, DT_COMPONENT, NULL,
		       "CA chain fetched: %d certificates, backend: dogtag, "
		       "url: %s",
		       sk_X509_num(chain), op->page_url);
		dt->bg_op = NULL;
		dt->bg_backoff = DT_BACKOFF_MIN;
		dt_bg_schedule(dt, dt->chain_refresh);
		dt_op_free(op);
		return;
	}
	if ((call->result.chain = dt_chain_copy(dt)) == NULL) {
		dt_finish(op, CA_MISCONFIGURED, 0, NULL, NULL, NULL,
		          "out of memory");
		return;
	}
	call->result.outcome = CA_ISSUED;
	snprintf(call->result.url, sizeof(call->result.url), "%s",
	         op->page_url);
	dt_op_free(op);
	ca_call_done(call);
}

/*
 * The certificate arrived (certs: the PKCS7CertChain, or Encoded alone):
 * the leaf is the one for the CSR's key; it goes first, then the chain
 * (from the PKCS#7, else from the cache).  Takes certs.
 */
static void
dt_issued(struct dt_op *op, STACK_OF(X509) *certs, int from_pkcs7)
{
	struct ca_call *call = op->call;
	STACK_OF(X509) *rest = NULL, *cached = NULL;
	EVP_PKEY *want = NULL;
	X509 *leaf = NULL;
	int i;

	if (call->csr != NULL)
		want = X509_REQ_get0_pubkey(call->csr);
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
		dt_finish(
		    op, CA_MISCONFIGURED, 0,
		    "the CA answered a certificate for another key: check "
		    "the CA's request database",
		    NULL, NULL,
		    "CA request %s, certificate %s: the certificate's "
		    "public key is not the CSR's",
		    op->req_id, op->cert_id);
		return;
	}
	(void)sk_X509_delete_ptr(certs, leaf);
	rest = core_chain_order(certs);
	certs = NULL;
	if (!from_pkcs7 || sk_X509_num(rest) == 0) {
		/* Encoded alone: the chain comes from the cache. */
		cached = dt_chain_copy(op->dt);
		while (cached != NULL && sk_X509_num(cached) > 0) {
			X509 *c = sk_X509_shift(cached);

			if (!sk_X509_push(rest, c))
				X509_free(c);
		}
		sk_X509_free(cached);
	}
	if (!sk_X509_unshift(rest, leaf)) {
		X509_free(leaf);
		sk_X509_pop_free(rest, X509_free);
		dt_finish(op, CA_MISCONFIGURED, 0, NULL, NULL, NULL,
		          "out of memory");
		return;
	}
	ca_log(call, CORE_LOG_INFO, DT_COMPONENT, NULL,
	       "%s: CA request %s issued as certificate %s, profile %s, url: "
	       "%s",
	       dt_what(op), op->req_id, op->cert_id, op->dt->profile,
	       op->page_url);
	sk_X509_pop_free(call->result.chain, X509_free);
	call->result.chain = rest;
	call->result.outcome = CA_ISSUED;
	snprintf(call->result.cookie, sizeof(call->result.cookie), "%s",
	         op->req_id);
	snprintf(call->result.url, sizeof(call->result.url), "%s",
	         op->page_url);
	dt_op_free(op);
	ca_call_done(call);
}

/*
 * Goes on from a CertRequestInfo (the enrollment answer or a status):
 * collect, approve, wait, or report the CA's refusal.
 */
static void
dt_request_state(struct dt_op *op, const struct dogtag_request_info *info)
{
	struct dogtag *dt = op->dt;

	if (info->request_id[0] != '\0')
		snprintf(op->req_id, sizeof(op->req_id), "%s",
		         info->request_id);
	if (op->req_id[0] == '\0') {
		dt_finish(op, CA_MISCONFIGURED, 0, NULL, NULL, NULL,
		          "the CA answered requestStatus %s without a request "
		          "id",
		          info->status_text);
		return;
	}
	if (info->error_message[0] != '\0' &&
	    strstr(info->error_message, "Server Internal Error") != NULL) {
		dt_kept(op, CA_UNREACHABLE,
		        "check the CA's debug log (/var/log/pki/pki-tomcat/ca/"
		        "debug)",
		        NULL,
		        "CA error: requestStatus %s \"%s\", CA request %s",
		        info->status_text, info->error_message, op->req_id);
		return;
	}
	switch (info->status) {
	case DOGTAG_STATUS_COMPLETE:
		if (info->cert_id[0] == '\0') {
			dt_kept(op, CA_UNREACHABLE, NULL, NULL,
			        "CA request %s is complete without a certId",
			        op->req_id);
			return;
		}
		snprintf(op->cert_id, sizeof(op->cert_id), "%s", info->cert_id);
		dt_go(op, DT_CERT);
		return;
	case DOGTAG_STATUS_PENDING:
		if (dt->approval == DT_APPROVAL_AUTO && !op->approved) {
			dt_go(op, DT_REVIEW);
			return;
		}
		dt_pending(op, dt->approval == DT_APPROVAL_AUTO
		                   ? "approved, not complete yet"
		                   : "awaits approval by a CA agent");
		return;
	case DOGTAG_STATUS_BEGIN:
	case DOGTAG_STATUS_SVC_PENDING:
	case DOGTAG_STATUS_APPROVED: {
		char why[64];

		snprintf(why, sizeof(why), "is %s", info->status_text);
		dt_pending(op, why);
		return;
	}
	case DOGTAG_STATUS_REJECTED:
		dt_finish(op, CA_REJECTED, 0, NULL,
		          op->call->op == CA_OP_POLL ? "poll: refused by CA"
		                                     : "enroll refused by CA",
		          NULL,
		          "requestStatus rejected \"%s\", CA request %s, "
		          "profile %s",
		          info->error_message[0] != '\0' ? info->error_message
		                                         : "(no message)",
		          op->req_id, dt->profile);
		return;
	case DOGTAG_STATUS_CANCELED:
		dt_finish(op, CA_REJECTED, 0, NULL,
		          op->call->op == CA_OP_POLL ? "poll: refused by CA"
		                                     : "enroll refused by CA",
		          NULL,
		          "requestStatus canceled by a CA agent%s%s%s, CA "
		          "request %s",
		          info->error_message[0] != '\0' ? " \"" : "",
		          info->error_message,
		          info->error_message[0] != '\0' ? "\"" : "",
		          op->req_id);
		return;
	default:
		dt_kept(op, CA_UNREACHABLE, NULL, NULL,
		        "unknown requestStatus \"%s\", CA request %s",
		        info->status_text, op->req_id);
		return;
	}
}

/* A 200/204 answer: dispatches on the step. */
static void
dt_step_ok(struct dt_op *op, const struct ca_http_response *res,
           const char *data, size_t len)
{
	struct dogtag_request_info info;
	struct dogtag_cert_data cd;
	struct dogtag_review review;
	struct dogtag_info pki;
	struct dogtag_account acct;
	STACK_OF(X509) *certs = NULL;
	int from_pkcs7 = 0;

	switch (op->step) {
	case DT_PROBE_V2:
	case DT_PROBE_V1:
		if (dogtag_json_info(data, len, &pki) != 0) {
			dt_unexpected(op, res, data, len, "PKI server info");
			return;
		}
		dt_set_api(op, op->step == DT_PROBE_V2 ? DT_API_V2 : DT_API_V1);
		ca_log(op->call, CORE_LOG_INFO, DT_COMPONENT, NULL,
		       "REST API %s at %s (%s %s)",
		       op->api == DT_API_V2 ? "v2" : "v1 (deprecated)",
		       op->page_url, pki.name[0] != '\0' ? pki.name : "PKI",
		       pki.version);
		dt_go(op, op->goal);
		return;
	case DT_LOGIN:
		if (dogtag_json_account(data, len, &acct) != 0) {
			dt_unexpected(op, res, data, len, "an account");
			return;
		}
		op->logged_in = 1;
		dt_go(op, op->goal);
		return;
	case DT_SUBMIT:
	case DT_STATUS:
		if (dogtag_json_request_info(data, len, &info) != 0) {
			dt_unexpected(op, res, data, len,
			              "a CertRequestInfo with requestStatus");
			return;
		}
		dt_request_state(op, &info);
		return;
	case DT_REVIEW:
		if (dogtag_json_review(data, len, &review) != 0) {
			dt_unexpected(op, res, data, len, "a review");
			return;
		}
		if (review.status != DOGTAG_STATUS_PENDING &&
		    review.status != DOGTAG_STATUS_UNKNOWN) {
			/* Someone acted on it meanwhile: read its state. */
			op->approved = 1;
			dt_go(op, DT_STATUS);
			return;
		}
		free(op->review);
		if ((op->review = malloc(len + 1)) == NULL) {
			dt_kept(op, CA_PENDING, NULL, NULL, "out of memory");
			return;
		}
		memcpy(op->review, data, len);
		op->review[len] = '\0';
		op->review_len = len;
		if (!review.has_nonce)
			ca_log(op->call, CORE_LOG_DEBUG, DT_COMPONENT, NULL,
			       "review of CA request %s carries no nonce "
			       "(ca.enableNonces=false)",
			       op->req_id);
		op->step = DT_APPROVE;
		dt_step_start(op);
		return;
	case DT_APPROVE:
		op->approved = 1;
		ca_log(op->call, CORE_LOG_INFO, DT_COMPONENT, NULL,
		       "CA request %s approved as agent, profile %s",
		       op->req_id, op->dt->profile);
		dt_go(op, DT_STATUS);
		return;
	case DT_CERT:
		if (dogtag_json_cert_data(data, len, &cd) != 0) {
			dogtag_cert_data_cleanup(&cd);
			dt_unexpected(op, res, data, len, "a CertData");
			return;
		}
		if (cd.pkcs7 != NULL && (certs = dogtag_certs_from_pkcs7(
		                             (const unsigned char *)cd.pkcs7,
		                             strlen(cd.pkcs7))) != NULL)
			from_pkcs7 = 1;
		else if (cd.encoded != NULL)
			certs = dogtag_certs_from_pem(cd.encoded,
			                              strlen(cd.encoded));
		dogtag_cert_data_cleanup(&cd);
		if (certs == NULL) {
			dt_kept(op, CA_UNREACHABLE, NULL, NULL,
			        "certificate %s: neither PKCS7CertChain nor "
			        "Encoded holds a certificate",
			        op->cert_id);
			return;
		}
		dt_issued(op, certs, from_pkcs7);
		return;
	case DT_CHAIN:
		if ((certs = dogtag_certs_from_pkcs7(
		         (const unsigned char *)data, len)) == NULL) {
			dt_unexpected(op, res, data, len, "a PKCS#7 chain");
			return;
		}
		dt_chain_done(op, certs);
		return;
	case DT_PROFILE: {
		if (dt_agent_expired(op->dt)) {
			char agent[400], extra[440];

			snprintf(extra, sizeof(extra), "agent_cert: %s",
			         dt_agent_text(op->dt, agent, sizeof(agent)));
			dt_finish(op, CA_MISCONFIGURED, 0,
			          "renew the agent certificate, then SIGHUP",
			          NULL, extra, "agent certificate expired");
			return;
		}
		/* An agent certificate near its end is not this call's
		 * finding: the start-up and daily checks log it, and
		 * --doctor reads its dates itself (own_certs). */
		/* The CA serves the template of a disabled profile too; only
		 * an agent may read whether it is enabled. */
		if (op->dt->agent_cert != NULL || op->dt->user != NULL) {
			dt_go(op, DT_PROFILE_STATE);
			return;
		}
		dt_health_ok(op,
		             "exists (no agent credential to read whether it "
		             "is enabled)",
		             NULL);
		return;
	}
	case DT_PROFILE_STATE: {
		struct dogtag_profile prof;
		char state[200], hint[CA_HINT_MAX];

		if (dogtag_json_profile(data, len, &prof) != 0) {
			dt_health_ok(op, "exists",
			             "the answer is no profile (no boolean "
			             "\"enabled\")");
			return;
		}
		if (!prof.enabled) {
			snprintf(
			    hint, sizeof(hint),
			    "enable it as a CA agent (pki ca-profile-enable "
			    "%s) or set the profile of label %s to an "
			    "enabled one",
			    op->dt->profile, dt_label(op));
			dt_finish(
			    op, CA_MISCONFIGURED, 0, hint, "profile disabled",
			    NULL,
			    "profile %s exists but the CA has it disabled "
			    "(\"enabled\": false)",
			    op->dt->profile);
			return;
		}
		snprintf(state, sizeof(state), "enabled%s%s",
		         prof.enabled_by[0] != '\0' ? " by " : "",
		         prof.enabled_by);
		dt_health_ok(op, state, NULL);
		return;
	}
	default:
		dt_finish(op, CA_MISCONFIGURED, 0, NULL, NULL, NULL,
		          "unknown step (estrad bug)");
		return;
	}
}

/* The completion of every transfer. */
static void
dt_http_done(struct ca_http_transfer *t, const struct ca_http_response *res,
             void *arg)
{
	struct dt_op *op = arg;
	const char *data;
	size_t len;

	(void)t;
	op->t = NULL;
	if (res->cookie[0] != '\0')
		snprintf(op->session, sizeof(op->session), "%s", res->cookie);
	if (res->curl_code != 0) {
		dt_curl_failed(op, res);
		return;
	}
	len = evbuffer_get_length(res->body);
	data = (const char *)evbuffer_pullup(res->body, -1);
	if (data == NULL) {
		data = "";
		len = 0;
	}
	if (res->status != 200 && res->status != 204) {
		dt_http_failed(op, res, data, len);
		return;
	}
	dt_answered(op);
	dt_step_ok(op, res, data, len);
}

/* Starts the transfer of op's current step on its current URL. */
static void
dt_step_start(struct dt_op *op)
{
	struct dogtag *dt = op->dt;
	struct ca_http_request req;
	const char *base = dt->urls[op->url], *api;
	const char *headers[4];
	char cookie[CA_HTTP_COOKIE_MAX + 32], err[256] = "";
	size_t nh = 0;

	api = op->api == DT_API_V1 ? "/ca/rest" : "/ca/v2";
	memset(&req, 0, sizeof(req));
	switch (op->step) {
	case DT_PROBE_V2:
		snprintf(op->page_url, sizeof(op->page_url), "%s/pki/v2/info",
		         base);
		break;
	case DT_PROBE_V1:
		snprintf(op->page_url, sizeof(op->page_url), "%s/pki/rest/info",
		         base);
		break;
	case DT_LOGIN:
		snprintf(op->page_url, sizeof(op->page_url),
		         "%s%s/account/login", base, api);
		break;
	case DT_SUBMIT:
		snprintf(op->page_url, sizeof(op->page_url),
		         "%s%s/certrequests%s%s", base, api,
		         dt->issuer_id != NULL ? "?issuer-id=" : "",
		         dt->issuer_id != NULL ? dt->issuer_id : "");
		req.method = CA_HTTP_POST;
		req.body = op->submit;
		req.body_len = strlen(op->submit);
		req.content_type = "application/json";
		break;
	case DT_REVIEW:
		snprintf(op->page_url, sizeof(op->page_url),
		         "%s%s/agent/certrequests/%s", base, api, op->req_id);
		break;
	case DT_APPROVE:
		snprintf(op->page_url, sizeof(op->page_url),
		         "%s%s/agent/certrequests/%s/approve", base, api,
		         op->req_id);
		req.method = CA_HTTP_POST;
		req.body = op->review;
		req.body_len = op->review_len;
		req.content_type = "application/json";
		break;
	case DT_STATUS:
		snprintf(op->page_url, sizeof(op->page_url),
		         "%s%s/certrequests/%s", base, api, op->req_id);
		break;
	case DT_CERT:
		snprintf(op->page_url, sizeof(op->page_url), "%s%s/certs/%s",
		         base, api, op->cert_id);
		break;
	case DT_CHAIN:
		snprintf(op->page_url, sizeof(op->page_url),
		         "%s%s/authorities/%s/chain", base, api,
		         dt->issuer_id != NULL ? dt->issuer_id
		                               : "host-authority");
		break;
	case DT_PROFILE:
		snprintf(op->page_url, sizeof(op->page_url),
		         "%s%s/certrequests/profiles/%s", base, api,
		         dt->profile);
		break;
	case DT_PROFILE_STATE:
		snprintf(op->page_url, sizeof(op->page_url), "%s%s/profiles/%s",
		         base, api, dt->profile);
		break;
	default:
		break;
	}
	/* DER PKCS#7 from the chain endpoint, JSON elsewhere. */
	headers[nh++] = op->step == DT_CHAIN ? "Accept: application/pkcs7-mime"
	                                     : "Accept: application/json";
	if (op->session[0] != '\0') {
		snprintf(cookie, sizeof(cookie), "Cookie: %s=%s",
		         DT_SESSION_COOKIE, op->session);
		headers[nh++] = cookie;
	}
	headers[nh] = NULL;
	req.url = op->page_url;
	req.headers = headers;
	req.user_agent = "estrad dogtag backend";
	req.ca_bundle = dt->ca_bundle;
	req.own_cookies = 1;
	req.capture_cookie = DT_SESSION_COOKIE;
	/* The agent credential goes only where the CA asks for one: the
	 * anonymous paths stay reachable with an expired certificate. */
	if (dt_step_is_agent(op->step)) {
		req.client_cert = dt->agent_cert;
		req.client_key = dt->agent_key;
		if (dt->user != NULL && op->step != DT_SUBMIT) {
			req.auth = CA_HTTP_AUTH_BASIC;
			req.username = dt->user;
			req.password = dt->password;
		}
	}
	req.connect_timeout_ms = dt->connect_timeout * 1000;
	req.timeout_ms = dt->timeout * 1000;
	req.max_response = CA_MAX_RESPONSE;
	if ((op->t = ca_http_start(op->base, &req, dt_http_done, op, err,
	                           sizeof(err))) == NULL)
		dt_finish(op, CA_MISCONFIGURED, 0, NULL, NULL, NULL, "%s", err);
	OPENSSL_cleanse(cookie, sizeof(cookie));
}

/* Fails a call that cannot start, from the loop like every completion. */
static void
dt_call_fail_now(struct ca_call *call, enum ca_outcome outcome,
                 const char *hint, const char *cause)
{
	/* ra logs the failure from the result, with the answer. */
	ca_call_fail(call, outcome, hint, "%s", cause);
}

static void
dt_enroll(void *p, struct ca_call *call)
{
	struct dogtag *dt = p;
	struct dt_op *op;

	if (call->csr == NULL) {
		dt_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "enroll failed: no CSR (estrad bug)");
		return;
	}
	if ((op = dt_op_new(dt, call, call->base)) == NULL ||
	    (op->submit = dogtag_json_enroll_body(dt->profile, call->csr)) ==
	        NULL) {
		dt_op_free(op);
		dt_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "enroll failed: out of memory");
		return;
	}
	dt_go(op, DT_SUBMIT);
}

static void
dt_poll(void *p, struct ca_call *call)
{
	struct dogtag *dt = p;
	struct dt_op *op;

	if (call->cookie == NULL || !dogtag_id_valid(call->cookie)) {
		dt_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "poll failed: the cookie is not a Dogtag "
		                 "request id");
		return;
	}
	if ((op = dt_op_new(dt, call, call->base)) == NULL) {
		dt_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "poll failed: out of memory");
		return;
	}
	snprintf(op->req_id, sizeof(op->req_id), "%s", call->cookie);
	dt_go(op, DT_STATUS);
}

static void
dt_cacerts(void *p, struct ca_call *call)
{
	struct dogtag *dt = p;
	char cause[CA_CAUSE_MAX];
	struct dt_op *op;
	int failed;

	if ((call->result.chain = dt_chain_copy(dt)) != NULL) {
		call->result.outcome = CA_ISSUED;
		ca_call_done(call);
		return;
	}
	pthread_mutex_lock(&dt->lock);
	failed = dt->chain_failed;
	snprintf(cause, sizeof(cause), "%s", dt->chain_cause);
	pthread_mutex_unlock(&dt->lock);
	if (failed) {
		/* The background fetch keeps trying; every client need not
		 * wait for the same timeout meanwhile. */
		call->result.retry_after = dt->retry_after;
		ca_call_fail(call, CA_UNREACHABLE,
		             "estrad retries in the background; see the CA "
		             "chain refresh lines",
		             "cacerts failed: no CA chain yet: %s", cause);
		return;
	}
	/* No chain and no failure yet: the first fetch has not finished
	 * (or no background runs); fetch for this call. */
	if ((op = dt_op_new(dt, call, call->base)) == NULL) {
		dt_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "cacerts failed: out of memory");
		return;
	}
	dt_go(op, DT_CHAIN);
}

static void
dt_health(void *p, struct ca_call *call)
{
	struct dt_op *op;

	if ((op = dt_op_new(p, call, call->base)) == NULL) {
		dt_call_fail_now(call, CA_MISCONFIGURED, NULL,
		                 "health failed: out of memory");
		return;
	}
	/* Probe again: health is where an upgrade that removed v1 shows. */
	dt_set_api(op, DT_API_UNKNOWN);
	dt_go(op, DT_PROFILE);
}

/* Finds the operation of call; the caller runs on call's thread. */
static struct dt_op *
dt_op_of(struct dogtag *dt, const struct ca_call *call)
{
	struct dt_op *op;

	pthread_mutex_lock(&dt->lock);
	for (op = dt->ops; op != NULL; op = op->next)
		if (op->call == call)
			break;
	pthread_mutex_unlock(&dt->lock);
	return op;
}

static void
dt_cancel(void *p, struct ca_call *call)
{
	struct dt_op *op = dt_op_of(p, call);

	if (op == NULL)
		return;
	dt_finish(op, CA_CANCELLED, 0, NULL, NULL, NULL, "cancelled");
}

/* The background timer: fetch the chain (again). */
static void
dt_bg_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dogtag *dt = arg;
	struct dt_op *op;

	(void)fd;
	(void)what;
	if (dt->bg_op != NULL)
		return;
	if ((op = dt_op_new(dt, NULL, dt->bg_base)) == NULL) {
		dt_bg_schedule(dt, dt->bg_backoff);
		return;
	}
	dt->bg_op = op;
	dt_go(op, DT_CHAIN);
}

/* The daily timer: warn about the agent certificate's expiry. */
static void
dt_expiry_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dogtag *dt = arg;
	struct timeval tv = {DT_EXPIRY_CHECK, 0};

	(void)fd;
	(void)what;
	dt_agent_check(dt, NULL);
	if (dt->expiry_timer != NULL)
		evtimer_add(dt->expiry_timer, &tv);
}

static void
dt_start(void *p, struct event_base *base)
{
	struct dogtag *dt = p;
	struct timeval tv = {DT_EXPIRY_CHECK, 0};

	dt->bg_base = base;
	dt->bg_backoff = DT_BACKOFF_MIN;
	dt_agent_check(dt, NULL);
	if (dt->agent_cert != NULL &&
	    ((dt->expiry_timer = evtimer_new(base, dt_expiry_tick, dt)) ==
	         NULL ||
	     evtimer_add(dt->expiry_timer, &tv) != 0))
		ca_log(NULL, CORE_LOG_ERROR, DT_COMPONENT, NULL,
		       "cannot schedule the daily agent certificate check: "
		       "out of memory, backend: dogtag");
	if ((dt->bg_timer = evtimer_new(base, dt_bg_tick, dt)) == NULL) {
		ca_log(NULL, CORE_LOG_ERROR, DT_COMPONENT, NULL,
		       "cannot schedule the CA chain fetch: out of memory, "
		       "backend: dogtag, url: %s",
		       dt->urls[0]);
		return;
	}
	dt_bg_schedule(dt, 0);
}

static void
dt_stop(void *p)
{
	struct dogtag *dt = p;
	struct dt_op *op;

	if (dt->bg_timer != NULL) {
		event_free(dt->bg_timer);
		dt->bg_timer = NULL;
	}
	if (dt->expiry_timer != NULL) {
		event_free(dt->expiry_timer);
		dt->expiry_timer = NULL;
	}
	if (dt->bg_op != NULL) {
		dt_op_free(dt->bg_op);
		dt->bg_op = NULL;
	}
	/* Calls still running on this loop end now; those of other
	 * workers belong to their threads. */
	for (;;) {
		pthread_mutex_lock(&dt->lock);
		for (op = dt->ops; op != NULL; op = op->next)
			if (op->base == dt->bg_base && op->call != NULL)
				break;
		pthread_mutex_unlock(&dt->lock);
		if (op == NULL)
			break;
		dt_finish(op, CA_CANCELLED, 0, NULL, NULL, NULL,
		          "cancelled: estrad is stopping");
	}
	dt->bg_base = NULL;
}

/* Reports the agent certificate; configuration only, so no lock. */
static void
dt_own_certs(void *p, ca_own_cert_fn fn, void *arg)
{
	const struct dogtag *dt = p;

	if (dt->agent_x509 != NULL)
		fn("agent", dt->agent_x509, arg);
}

const struct ca_backend ca_dogtag_backend = {
    "dogtag",              /* name */
    DT_CAPS,               /* caps */
    sizeof(struct dogtag), /* priv_size */
    dt_configure,          /* configure */
    dt_enroll,             /* enroll */
    dt_poll,               /* poll */
    dt_cacerts,            /* cacerts */
    dt_health,             /* health */
    dt_cancel,             /* cancel */
    dt_unconfigure,        /* unconfigure */
    dt_start,              /* start: CA chain, agent certificate expiry */
    dt_stop,               /* stop */
    dt_own_certs,          /* own_certs: the agent certificate */
};
