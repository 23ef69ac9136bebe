/*
 * helper.c: the certmonger CA-helper backend ("helper").  It runs any
 * program that speaks certmonger's helper contract: ipa-submit, dogtag-submit,
 *local-submit, scep-submit or a site's own script.  Each call starts the helper
 *once through proc.c on the calling worker's loop, with the operation and the
 * request in CERTMONGER_* variables of an environment built from nothing,
 * and maps its exit status to an outcome:
 *
 *	0 ISSUED            the certificate on stdout         200
 *	1 WAIT              a cookie on stdout                202
 *	5 WAIT_WITH_DELAY   a delay line, then the cookie     202 + that delay
 *	2 REJECTED          the CA's message                  403
 *	3 UNREACHABLE       the message                       503
 *	4 UNCONFIGURED      the message                       500
 *	6 OPERATION_NOT_SUPPORTED                             501
 *	anything else, a signal, the timeout                  500
 *
 * Configuration is read once on the main thread and is read-only after.
 * What changes while workers run, the CA certificates of FETCH-ROOTS, the
 * list of running operations and the calls waiting, sits behind one mutex.
 *
 * A helper is a process per run, and cacerts needs no credentials, so the
 * runs are bounded per label.  At most max_processes SUBMIT, POLL and
 * IDENTIFY runs exist at once; further calls wait in a queue of at most
 * max_queued, first come first served, and beyond it are answered 503
 * with Retry-After at once.  FETCH-ROOTS runs once at a time: the roots
 * are fetched and refreshed in the background on worker 0's loop
 * (start/stop hooks), and a cacerts call that finds none waits for the
 * run under way or starts one that every later call waits for.  A failed
 * run is remembered for roots_retry seconds and answered from memory, and
 * the last good roots are served while a refresh runs or after it
 * failed.  A call waiting on another worker is woken on its own loop.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_plugins/ca.h"
#include "ca_plugins/helper_output.h"
#include "core/conf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/proc.h"

#define HELPER_COMPONENT "ca.helper"

#define HELPER_CAPS                                                            \
	(CA_CAP_ENROLL | CA_CAP_REENROLL | CA_CAP_POLL | CA_CAP_CACERTS |      \
	 CA_CAP_HEALTH | CA_CAP_FORWARDS_CSR)

/* Limits of the configuration keys. */
#define HELPER_ARGS_MAX          64
#define HELPER_ENV_MAX           64
#define HELPER_TIMEOUT_DEFAULT   30
#define HELPER_TIMEOUT_MAX       3600
#define HELPER_RETRY_AFTER_MAX   (7 * 24 * 3600)
#define HELPER_OUTPUT_DEFAULT    (64 * 1024)
#define HELPER_OUTPUT_MIN        1024
#define HELPER_OUTPUT_MAX        (1024 * 1024 - 1)
#define HELPER_ROOTS_REFRESH     3600
#define HELPER_ROOTS_REFRESH_MIN 60
#define HELPER_ROOTS_REFRESH_MAX (7 * 24 * 3600)
#define HELPER_PROCESSES_DEFAULT 8
#define HELPER_PROCESSES_MAX     1024
#define HELPER_QUEUED_DEFAULT    256
#define HELPER_QUEUED_MAX        10000
#define HELPER_ROOTS_RETRY       10
#define HELPER_ROOTS_RETRY_MAX   3600
#define HELPER_NICKNAME_DEFAULT  "estrad"
#define HELPER_PATH_DEFAULT      "PATH=/usr/bin:/bin:/usr/sbin:/sbin"

/* The delay of exit 5 is capped so a bogus line cannot park a client for
 * years; 0 becomes 1 s, since 0 would mean "the label's default" to ra. */
#define HELPER_DELAY_MAX HELPER_RETRY_AFTER_MAX

/* Back-off of the background FETCH-ROOTS while it fails, in seconds: from
 * the first value, doubling, up to the last (or roots_refresh). */
#define HELPER_BACKOFF_MIN 5
#define HELPER_BACKOFF_MAX 300

/* Helper text quoted into causes and log lines (CA text is cut to 256
 * bytes first, so that a log line keeps its context). */
#define HELPER_QUOTE_MAX 256

/*
 * certmonger's exit statuses (src/submit-e.h); the values are the exit
 * codes, so they are named, not enumerated.
 */
#define HELPER_EXIT_ISSUED          0
#define HELPER_EXIT_WAIT            1
#define HELPER_EXIT_REJECTED        2
#define HELPER_EXIT_UNREACHABLE     3
#define HELPER_EXIT_UNCONFIGURED    4
#define HELPER_EXIT_WAIT_WITH_DELAY 5
#define HELPER_EXIT_UNSUPPORTED     6
#define HELPER_EXIT_NEED_SCEP       16
#define HELPER_EXIT_NEED_REKEY      17

/* What a run asks the helper for, in CERTMONGER_OPERATION. */
enum helper_verb {
	HELPER_SUBMIT,
	HELPER_POLL,
	HELPER_FETCH_ROOTS,
	HELPER_IDENTIFY,
	HELPER_VERB__MAX
};

static const char *const helper_verbs[HELPER_VERB__MAX] = {
    "SUBMIT",
    "POLL",
    "FETCH-ROOTS",
    "IDENTIFY",
};

/* Per-label state. */
struct helper {
	/* Configuration: written by configure, read-only afterwards. */
	char **argv;                /* argv[0] absolute; NULL-terminated */
	char **env;                 /* "NAME=value" of "env"; NULL-terminated */
	int env_path;               /* "env" sets PATH itself */
	char *profile;              /* CERTMONGER_CA_PROFILE, or NULL */
	char *nickname;             /* CERTMONGER_CA_NICKNAME */
	unsigned int timeout;       /* seconds, then SIGKILL */
	unsigned int retry_after;   /* 0: the label's default */
	size_t max_output;          /* stdout bytes accepted */
	unsigned int roots_refresh; /* seconds between background fetches */
	unsigned int max_processes; /* SUBMIT, POLL, IDENTIFY runs at once */
	unsigned int max_queued;    /* calls waiting, per queue */
	unsigned int roots_retry;   /* seconds a failed fetch is remembered */

	/* Shared by the workers, under lock. */
	pthread_mutex_t lock;
	int lock_init;
	STACK_OF(X509) *roots; /* FETCH-ROOTS cache: chain, roots, others */
	long long roots_ms;    /* when it was fetched (monotonic) */
	struct helper_answer *fail; /* the last failed fetch, or NULL */
	long long fail_until_ms;    /* answered from memory until then */
	struct helper_op *ops;      /* every run in progress */
	unsigned int running;       /* runs holding a process slot */
	struct helper_wait *waits, *waits_tail; /* oldest first */
	unsigned int slot_waiting;  /* not yet woken, waiting for a slot */
	unsigned int roots_waiting; /* not yet woken, waiting for roots */
	int fetching;               /* a FETCH-ROOTS run is under way */
	struct helper_op *fetch;    /* that run, once started */

	/* Background work, on worker 0's loop only. */
	struct event_base *bg_base;
	struct event *bg_timer;
	unsigned int bg_backoff;
};

/*
 * One run of the helper: SUBMIT, POLL or IDENTIFY for a call (holding a
 * process slot), or the label's one FETCH-ROOTS (call NULL), for the
 * background or for the cacerts calls waiting.
 */
struct helper_op {
	struct helper *h;
	struct ca_call *call; /* borrowed until completed; NULL: FETCH-ROOTS */
	struct event_base *base;
	enum helper_verb verb;
	int bg;                        /* the background's fetch */
	struct core_proc *proc;        /* owned by the loop; NULL once done */
	struct helper_op *prev, *next; /* h->ops */
};

/* How a call ends that did not run the helper itself: a failed FETCH-ROOTS
 * it waited for or that is remembered, or success (the cached roots). */
struct helper_answer {
	enum ca_outcome outcome;
	unsigned int retry_after;
	char cause[CA_CAUSE_MAX];
	char hint[CA_HINT_MAX];
	char detail[CA_DETAIL_MAX];
};

/*
 * A call waiting: for a process slot to run verb (SUBMIT, POLL, IDENTIFY),
 * or (verb FETCH-ROOTS) for the roots.  Linked in h->waits until its wake
 * runs on the call's loop; woken, a slot waiter holds the slot handed to
 * it, a roots waiter holds its answer.
 */
struct helper_wait {
	struct helper *h;
	struct ca_call *call; /* borrowed until completed */
	enum helper_verb verb;
	int woken;     /* its wake is scheduled on call->base */
	int cancelled; /* cancelled once woken: the wake only frees it */
	struct helper_answer answer; /* roots waiter, once woken */
	struct helper_wait *prev, *next;
};

static const char *const helper_conf_keys[] = {
    "backend",    "command",     "env",        "timeout",       "profile",
    "nickname",   "retry_after", "max_output", "roots_refresh", "max_processes",
    "max_queued", "roots_retry", NULL,
};

/*
 * CERTMONGER_* names a site may set in "env".  The others are request
 * input estrad sets per call, or configure certmonger's daemon and mean
 * nothing to a helper.
 */
static const char *const helper_env_allowed[] = {
    "CERTMONGER_LOCAL_CA_DIR",
    "CERTMONGER_CONFIG_DIR",
    NULL,
};

static void helper_proc_done(struct core_proc *proc,
                             const struct core_proc_result *res, void *arg);
static void helper_bg_schedule(struct helper *h, unsigned int seconds);

/* --- configuration -------------------------------------------------------- */

/* Frees a NULL-terminated array of strings.  NULL is a no-op. */
static void
helper_strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* core_conf_int() for the unsigned members of struct helper. */
static int
helper_conf_uint(const json_t *conf, const char *key, long min, long max,
                 unsigned int *value, struct core_err *err)
{
	long n = (long)*value;

	if (core_conf_int(conf, key, min, max, &n, err) != 0)
		return -1;
	*value = (unsigned int)n;
	return 0;
}

/*
 * Reads "command": an array of strings, the program and its arguments,
 * passed to the helper as they are (no shell, no word splitting).  A
 * relative program name is relative to conf_dir.
 */
static int
helper_conf_command(struct helper *h, const json_t *conf, const char *conf_dir,
                    struct core_err *err)
{
	char key[64];
	const char *s;
	struct stat st;
	json_t *cmd, *v;
	size_t i, n;
	int rc = -1;

	if ((cmd = json_object_get(conf, "command")) == NULL) {
		core_err_set(
		    err, "command",
		    "missing \"command\" (an array: the helper program "
		    "and its arguments)");
		goto out;
	}
	if (!json_is_array(cmd) || (n = json_array_size(cmd)) == 0 ||
	    n > HELPER_ARGS_MAX) {
		core_err_set(err, "command",
		             "\"command\" must be an array of 1 to %d strings "
		             "(the helper program and its arguments), not %s",
		             HELPER_ARGS_MAX,
		             json_is_array(cmd) ? "that many"
		                                : core_conf_type_name(cmd));
		goto out;
	}
	if ((h->argv = calloc(n + 1, sizeof(char *))) == NULL) {
		core_err_set(err, "command", "out of memory");
		goto out;
	}
	json_array_foreach(cmd, i, v)
	{
		snprintf(key, sizeof(key), "command.%zu", i);
		if ((s = json_string_value(v)) == NULL ||
		    strlen(s) != json_string_length(v) ||
		    (i == 0 && s[0] == '\0')) {
			core_err_set(
			    err, key, "must be a%s string without NUL, not %s",
			    i == 0 ? " non-empty" : "", core_conf_type_name(v));
			goto out;
		}
		if (i == 0 && s[0] != '/' && conf_dir != NULL &&
		    conf_dir[0] != '\0') {
			if (asprintf(&h->argv[0], "%s/%s", conf_dir, s) < 0)
				h->argv[0] = NULL;
		} else
			h->argv[i] = strdup(s);
		if (h->argv[i] == NULL) {
			core_err_set(err, key, "out of memory");
			goto out;
		}
	}
	if (stat(h->argv[0], &st) != 0) {
		core_err_set(err, "command.0", "cannot run %s: %s", h->argv[0],
		             strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || access(h->argv[0], X_OK) != 0) {
		core_err_set(err, "command.0",
		             "cannot run %s: not an executable "
		             "file",
		             h->argv[0]);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/* Returns 1 when name is a shell-style variable name. */
static int
helper_env_name_ok(const char *name)
{
	size_t i;

	if (name[0] == '\0' || isdigit((unsigned char)name[0]))
		return 0;
	for (i = 0; name[i] != '\0'; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_')
			return 0;
	return 1;
}

/*
 * Reads "env": an object of variable names and string values added to
 * every run.  Names estrad sets per call are refused rather than silently
 * overridden.
 */
static int
helper_conf_env(struct helper *h, const json_t *conf, struct core_err *err)
{
	char key[160];
	const char *name, *s;
	json_t *env, *v;
	size_t i, n = 0;
	int rc = -1;

	if ((env = json_object_get(conf, "env")) == NULL) {
		rc = 0;
		goto out;
	}
	if (!json_is_object(env) || json_object_size(env) > HELPER_ENV_MAX) {
		core_err_set(err, "env",
		             "\"env\" must be an object of at most %d "
		             "\"NAME\": \"value\" pairs, not %s",
		             HELPER_ENV_MAX,
		             json_is_object(env) ? "more"
		                                 : core_conf_type_name(env));
		goto out;
	}
	if ((h->env = calloc(json_object_size(env) + 1, sizeof(char *))) ==
	    NULL) {
		core_err_set(err, "env", "out of memory");
		goto out;
	}
	json_object_foreach(env, name, v)
	{
		snprintf(key, sizeof(key), "env.%s", name);
		if (!helper_env_name_ok(name)) {
			core_err_set(err, key,
			             "\"%s\" is not a variable name "
			             "([A-Za-z_][A-Za-z0-9_]*)",
			             name);
			goto out;
		}
		if (strncmp(name, "CERTMONGER_", 11) == 0) {
			for (i = 0; helper_env_allowed[i] != NULL; i++)
				if (strcmp(name, helper_env_allowed[i]) == 0)
					break;
			if (helper_env_allowed[i] == NULL) {
				core_err_set(
				    err, key,
				    "%s is set by estrad for each call "
				    "(only CERTMONGER_LOCAL_CA_DIR and "
				    "CERTMONGER_CONFIG_DIR may be set "
				    "here; the profile is \"profile\")",
				    name);
				goto out;
			}
		}
		if ((s = json_string_value(v)) == NULL ||
		    strlen(s) != json_string_length(v)) {
			core_err_set(err, key,
			             "must be a string without NUL, not %s",
			             core_conf_type_name(v));
			goto out;
		}
		if (asprintf(&h->env[n], "%s=%s", name, s) < 0) {
			h->env[n] = NULL;
			core_err_set(err, key, "out of memory");
			goto out;
		}
		n++;
		if (strcmp(name, "PATH") == 0)
			h->env_path = 1;
	}
	rc = 0;
out:
	return rc;
}

static void
helper_unconfigure(void *p)
{
	struct helper *h = p;
	struct helper_wait *w;
	struct helper_op *op;

	/* After the last call: what is left belongs to loops that ended
	 * (estrad stopping), whose children were killed with them and
	 * whose wakes will never run. */
	while ((w = h->waits) != NULL) {
		h->waits = w->next;
		free(w);
	}
	while ((op = h->ops) != NULL) {
		h->ops = op->next;
		free(op);
	}
	helper_strv_free(h->argv);
	helper_strv_free(h->env);
	free(h->profile);
	free(h->nickname);
	free(h->fail);
	sk_X509_pop_free(h->roots, X509_free);
	if (h->lock_init)
		pthread_mutex_destroy(&h->lock);
	memset(h, 0, sizeof(*h));
}

static int
helper_configure(void *p, const json_t *conf, const char *conf_dir,
                 struct core_err *err)
{
	struct helper *h = p;
	unsigned int max_output = HELPER_OUTPUT_DEFAULT;
	int rc = -1;

	if (pthread_mutex_init(&h->lock, NULL) != 0) {
		core_err_set(err, "backend", "cannot create a mutex");
		goto out;
	}
	h->lock_init = 1;
	h->timeout = HELPER_TIMEOUT_DEFAULT;
	h->roots_refresh = HELPER_ROOTS_REFRESH;
	h->max_processes = HELPER_PROCESSES_DEFAULT;
	h->max_queued = HELPER_QUEUED_DEFAULT;
	h->roots_retry = HELPER_ROOTS_RETRY;
	if (core_conf_check_keys(conf, "", helper_conf_keys, err) != 0 ||
	    helper_conf_command(h, conf, conf_dir, err) != 0 ||
	    helper_conf_env(h, conf, err) != 0 ||
	    helper_conf_uint(conf, "timeout", 1, HELPER_TIMEOUT_MAX,
	                     &h->timeout, err) != 0 ||
	    helper_conf_uint(conf, "retry_after", 1, HELPER_RETRY_AFTER_MAX,
	                     &h->retry_after, err) != 0 ||
	    helper_conf_uint(conf, "max_output", HELPER_OUTPUT_MIN,
	                     HELPER_OUTPUT_MAX, &max_output, err) != 0 ||
	    helper_conf_uint(conf, "roots_refresh", HELPER_ROOTS_REFRESH_MIN,
	                     HELPER_ROOTS_REFRESH_MAX, &h->roots_refresh,
	                     err) != 0 ||
	    helper_conf_uint(conf, "max_processes", 1, HELPER_PROCESSES_MAX,
	                     &h->max_processes, err) != 0 ||
	    helper_conf_uint(conf, "max_queued", 0, HELPER_QUEUED_MAX,
	                     &h->max_queued, err) != 0 ||
	    helper_conf_uint(conf, "roots_retry", 0, HELPER_ROOTS_RETRY_MAX,
	                     &h->roots_retry, err) != 0 ||
	    core_conf_string(conf, "profile", 1024, &h->profile, err) != 0 ||
	    core_conf_string(conf, "nickname", 1024, &h->nickname, err) != 0)
		goto out;
	h->max_output = max_output;
	if (h->nickname == NULL &&
	    (h->nickname = strdup(HELPER_NICKNAME_DEFAULT)) == NULL) {
		core_err_set(err, "nickname", "out of memory");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/* --- helper text ---------------------------------------------------------- */

/* Returns certmonger's name of an exit status, for logs and causes. */
static const char *
helper_status_name(int status)
{
	switch (status) {
	case HELPER_EXIT_ISSUED:
		return "ISSUED";
	case HELPER_EXIT_WAIT:
		return "WAIT";
	case HELPER_EXIT_REJECTED:
		return "REJECTED";
	case HELPER_EXIT_UNREACHABLE:
		return "UNREACHABLE";
	case HELPER_EXIT_UNCONFIGURED:
		return "UNCONFIGURED";
	case HELPER_EXIT_WAIT_WITH_DELAY:
		return "WAIT_WITH_DELAY";
	case HELPER_EXIT_UNSUPPORTED:
		return "OPERATION_NOT_SUPPORTED";
	case HELPER_EXIT_NEED_SCEP:
		return "NEED_SCEP_MESSAGES";
	case HELPER_EXIT_NEED_REKEY:
		return "NEED_REKEY";
	default:
		return "UNDEFINED";
	}
}

/*
 * Writes text (len bytes, or up to a NUL), cut to HELPER_QUOTE_MAX bytes
 * and without trailing white space, into buf as a double-quoted string:
 * quotes and backslashes escaped, a new line shown as \n.  Other control
 * bytes are left for the log writer, which escapes them as \xHH.  With
 * first_line set only the first line is taken.  Returns buf ("" when text
 * is empty).
 */
static const char *
helper_quote(const char *text, size_t len, int first_line, char *buf,
             size_t buflen)
{
	size_t i, n = 0, end;

	buf[0] = '\0';
	end = len < HELPER_QUOTE_MAX ? len : HELPER_QUOTE_MAX;
	for (i = 0; i < end && text[i] != '\0'; i++)
		if (first_line && (text[i] == '\n' || text[i] == '\r'))
			break;
	end = i;
	while (end > 0 && isspace((unsigned char)text[end - 1]))
		end--;
	if (end == 0 || buflen < 8)
		return buf;
	buf[n++] = '"';
	for (i = 0; i < end && n + 4 < buflen; i++) {
		if (text[i] == '"' || text[i] == '\\') {
			buf[n++] = '\\';
			buf[n++] = text[i];
		} else if (text[i] == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else if (text[i] != '\r')
			buf[n++] = text[i];
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}

/* Returns "SIGSEGV" and the like, or "signal" when unknown. */
static const char *
helper_signal_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev == NULL)
		snprintf(buf, len, "signal %d", sig);
	else
		snprintf(buf, len, "SIG%s", abbrev);
	return buf;
}

/* --- the environment of one run ------------------------------------------- */

/* A NULL-terminated list of "NAME=value" strings, grown as needed. */
struct helper_envp {
	char **v;
	size_t n, cap;
	int failed; /* out of memory once: the list is incomplete */
};

static void helper_envp_add(struct helper_envp *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends one variable (formatted "NAME=value"); remembers a failure. */
static void
helper_envp_add(struct helper_envp *e, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL, **v;

	if (e->failed)
		return;
	if (e->n + 2 > e->cap) {
		size_t cap = e->cap == 0 ? 32 : e->cap * 2;

		if ((v = realloc(e->v, cap * sizeof(char *))) == NULL) {
			e->failed = 1;
			return;
		}
		e->v = v;
		e->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s == NULL) {
		e->failed = 1;
		return;
	}
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

static void
helper_envp_cleanup(struct helper_envp *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/*
 * Returns the contents of a memory BIO as a new NUL-terminated string
 * (free with free), or NULL.
 */
static char *
helper_bio_string(BIO *bio)
{
	char *data = NULL, *rc = NULL;
	long n;

	if ((n = BIO_get_mem_data(bio, &data)) <= 0)
		goto out;
	if ((rc = malloc((size_t)n + 1)) == NULL)
		goto out;
	memcpy(rc, data, (size_t)n);
	rc[n] = '\0';
	/* Variables hold text; a last newline only bothers scripts. */
	while (n > 0 && rc[n - 1] == '\n')
		rc[--n] = '\0';
out:
	return rc;
}

/*
 * Adds the variables describing the CSR: the PEM itself, the key, the
 * requested subject and subjectAltName entries.  Kerberos
 * principal names and SPKAC are not given: estrad never holds the key
 * that would sign an SPKAC, and principals are otherNames it does not
 * decode.
 */
static void
helper_envp_csr(struct helper_envp *e, X509_REQ *csr)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *names = NULL;
	char *dns = NULL, *mail = NULL, *ip = NULL, *s, **list;
	unsigned char *der = NULL;
	char *text = NULL, *b64 = NULL;
	EVP_PKEY *pkey;
	BIO *bio = NULL;
	int i, len;

	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_REQ(bio, csr) != 1 ||
	    (text = helper_bio_string(bio)) == NULL) {
		e->failed = 1;
		goto out;
	}
	helper_envp_add(e, "CERTMONGER_CSR=%s", text);
	free(text);
	text = NULL;
	BIO_free(bio);
	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		e->failed = 1;
		goto out;
	}
	if (X509_NAME_print_ex(bio, X509_REQ_get_subject_name(csr), 0,
	                       XN_FLAG_RFC2253) > 0 &&
	    (text = helper_bio_string(bio)) != NULL)
		helper_envp_add(e, "CERTMONGER_REQ_SUBJECT=%s", text);
	if ((pkey = X509_REQ_get0_pubkey(csr)) != NULL) {
		switch (EVP_PKEY_get_base_id(pkey)) {
		case EVP_PKEY_RSA:
			helper_envp_add(e, "CERTMONGER_KEY_TYPE=RSA");
			break;
		case EVP_PKEY_EC:
			helper_envp_add(e, "CERTMONGER_KEY_TYPE=EC");
			break;
		case EVP_PKEY_DSA:
			helper_envp_add(e, "CERTMONGER_KEY_TYPE=DSA");
			break;
		default:
			break;
		}
		if ((len = i2d_PUBKEY(pkey, &der)) > 0 &&
		    (b64 = malloc(4 * (((size_t)len + 2) / 3) + 1)) != NULL) {
			EVP_EncodeBlock((unsigned char *)b64, der, len);
			helper_envp_add(e, "CERTMONGER_SPKI=%s", b64);
		}
	}
	exts = X509_REQ_get_extensions(csr);
	if ((i = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1)) >= 0)
		names = X509V3_EXT_d2i(X509v3_get_ext(exts, i));
	for (i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		char addr[INET6_ADDRSTRLEN];
		const ASN1_STRING *str;
		const unsigned char *d;
		int type, dlen, j;

		/* Only these three types hold an ASN1_STRING. */
		str = GENERAL_NAME_get0_value(gn, &type);
		if (type != GEN_DNS && type != GEN_EMAIL && type != GEN_IPADD)
			continue;
		d = ASN1_STRING_get0_data(str);
		dlen = ASN1_STRING_length(str);
		if (type == GEN_IPADD) {
			if (!((dlen == 4 && inet_ntop(AF_INET, d, addr,
			                              sizeof(addr)) != NULL) ||
			      (dlen == 16 && inet_ntop(AF_INET6, d, addr,
			                               sizeof(addr)) != NULL)))
				continue;
			d = (const unsigned char *)addr;
			dlen = (int)strlen(addr);
		}
		/* One value per line: a name with a control byte would
		 * break the list, and no valid name has one. */
		for (j = 0; j < dlen; j++)
			if (d[j] < 0x20 || d[j] == 0x7f)
				break;
		if (j < dlen || dlen == 0)
			continue;
		list = type == GEN_DNS ? &dns : type == GEN_EMAIL ? &mail : &ip;
		if (asprintf(&s, "%s%s%.*s", *list != NULL ? *list : "",
		             *list != NULL ? "\n" : "", dlen,
		             (const char *)d) < 0) {
			e->failed = 1;
			goto out;
		}
		free(*list);
		*list = s;
	}
	if (dns != NULL)
		helper_envp_add(e, "CERTMONGER_REQ_HOSTNAME=%s", dns);
	if (mail != NULL)
		helper_envp_add(e, "CERTMONGER_REQ_EMAIL=%s", mail);
	if (ip != NULL)
		helper_envp_add(e, "CERTMONGER_REQ_IP_ADDRESS=%s", ip);
out:
	ERR_clear_error();
	GENERAL_NAMES_free(names);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	OPENSSL_free(der);
	BIO_free(bio);
	free(text);
	free(b64);
	free(dns);
	free(mail);
	free(ip);
}

/*
 * Builds the whole environment of one run into e: PATH (unless "env" has
 * one), the configured "env", CERTMONGER_OPERATION and the nickname, and
 * for SUBMIT and POLL the request.  Nothing is inherited
 * from estrad's own environment.  Returns 0, or -1 when out of memory.
 */
static int
helper_envp_build(struct helper_envp *e, const struct helper *h,
                  enum helper_verb verb, const struct ca_call *call)
{
	BIO *bio = NULL;
	char *text = NULL;
	size_t i;

	if (!h->env_path)
		helper_envp_add(e, "%s", HELPER_PATH_DEFAULT);
	for (i = 0; h->env != NULL && h->env[i] != NULL; i++)
		helper_envp_add(e, "%s", h->env[i]);
	helper_envp_add(e, "CERTMONGER_OPERATION=%s", helper_verbs[verb]);
	helper_envp_add(e, "CERTMONGER_CA_NICKNAME=%s", h->nickname);
	if (verb != HELPER_SUBMIT && verb != HELPER_POLL)
		goto out;
	if (h->profile != NULL)
		helper_envp_add(e, "CERTMONGER_CA_PROFILE=%s", h->profile);
	if (call->csr != NULL)
		helper_envp_csr(e, call->csr);
	if (verb == HELPER_POLL)
		helper_envp_add(e, "CERTMONGER_CA_COOKIE=%s", call->cookie);
	if (call->op == CA_OP_REENROLL && call->renew_cert != NULL) {
		if ((bio = BIO_new(BIO_s_mem())) == NULL ||
		    PEM_write_bio_X509(bio, call->renew_cert) != 1 ||
		    (text = helper_bio_string(bio)) == NULL)
			e->failed = 1;
		else
			helper_envp_add(e, "CERTMONGER_CERTIFICATE=%s", text);
	}
out:
	ERR_clear_error();
	BIO_free(bio);
	free(text);
	return e->failed ? -1 : 0;
}

/* --- operations ----------------------------------------------------------- */

static void
helper_op_free(struct helper_op *op)
{
	free(op);
}

/* Takes op off the list of running operations. */
static void
helper_op_unlink(struct helper_op *op)
{
	struct helper *h = op->h;

	pthread_mutex_lock(&h->lock);
	if (op->prev != NULL)
		op->prev->next = op->next;
	else if (h->ops == op)
		h->ops = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	op->prev = op->next = NULL;
	pthread_mutex_unlock(&h->lock);
}

/*
 * Starts the helper for verb on base.  call is borrowed until completed
 * (NULL for the background).  Returns the running operation (owned by the
 * backend until the run ends), or NULL with the reason in err (size
 * errlen).
 */
static struct helper_op *
helper_run(struct helper *h, struct ca_call *call, struct event_base *base,
           enum helper_verb verb, char *err, size_t errlen)
{
	struct helper_op *op = NULL, *rc = NULL;
	struct helper_envp env;
	struct core_proc_spec spec;
	char why[256];

	memset(&env, 0, sizeof(env));
	if ((op = calloc(1, sizeof(*op))) == NULL ||
	    helper_envp_build(&env, h, verb, call) != 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	op->h = h;
	op->call = call;
	op->base = base;
	op->verb = verb;
	memset(&spec, 0, sizeof(spec));
	spec.argv = h->argv;
	spec.envp = env.v;
	spec.timeout_ms = h->timeout * 1000;
	/* One byte more than accepted tells "too much" from "just fits". */
	spec.max_output = h->max_output + 1;
	/* Linked first: a run that ends at once still finds its entry. */
	pthread_mutex_lock(&h->lock);
	op->next = h->ops;
	if (h->ops != NULL)
		h->ops->prev = op;
	h->ops = op;
	pthread_mutex_unlock(&h->lock);
	if ((op->proc = core_proc_start(base, &spec, helper_proc_done, op, why,
	                                sizeof(why))) == NULL) {
		helper_op_unlink(op);
		snprintf(err, errlen, "cannot start helper %s: %s", h->argv[0],
		         why);
		goto out;
	}
	rc = op;
	op = NULL;
out:
	helper_envp_cleanup(&env);
	helper_op_free(op);
	return rc;
}

/*
 * Writes into buf (size len) what the operator needs to know about a run
 * besides its cause: the helper, the operation, how it ended, the time it
 * took and its stderr.  The stderr goes to the log only, never to the
 * client.  Returns buf.
 */
static const char *
helper_run_detail(const struct helper_op *op,
                  const struct core_proc_result *res, char *buf, size_t len)
{
	char how[64], sig[32], err[HELPER_QUOTE_MAX * 2 + 8];

	if (res->exec_errno != 0)
		snprintf(how, sizeof(how), "not started");
	else if (res->timed_out)
		snprintf(how, sizeof(how), "killed at the timeout");
	else if (!res->exited)
		snprintf(how, sizeof(how), "%s",
		         helper_signal_name(res->status, sig, sizeof(sig)));
	else
		snprintf(how, sizeof(how), "%d", res->status);
	helper_quote(res->err, res->err_len, 0, err, sizeof(err));
	snprintf(buf, len, "helper: %s, operation: %s, exit: %s, ms: %ld%s%s",
	         op->h->argv[0], helper_verbs[op->verb], how, res->ms,
	         err[0] != '\0' ? ", stderr: " : "", err);
	return buf;
}

/* Logs the end of a run: cause, then the run's detail. */
static void
helper_log_run(const struct helper_op *op, enum core_log_level level,
               const char *hint, const char *cause,
               const struct core_proc_result *res)
{
	char detail[CA_DETAIL_MAX];

	ca_log(op->call, level, HELPER_COMPONENT, hint, "%s, %s%s", cause,
	       helper_run_detail(op, res, detail, sizeof(detail)),
	       op->call == NULL ? ", backend: helper" : "");
}

/*
 * What one run ended in, before the operation-specific reading of a
 * successful exit: outcome, cause, hint and Retry-After.
 */
struct helper_end {
	enum ca_outcome outcome;
	unsigned int retry_after;
	const char *hint; /* static text or NULL */
	char cause[CA_CAUSE_MAX];
};

static void helper_end_set(struct helper_end *end, enum ca_outcome outcome,
                           const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
helper_end_set(struct helper_end *end, enum ca_outcome outcome,
               const char *hint, const char *fmt, ...)
{
	va_list ap;

	end->outcome = outcome;
	end->hint = hint;
	va_start(ap, fmt);
	vsnprintf(end->cause, sizeof(end->cause), fmt, ap);
	va_end(ap);
}

/*
 * Judges how the run ended when the operation cannot use it: not started,
 * killed, output over the cap, or an exit status other than 0 (and 1 and 5
 * for SUBMIT and POLL).  what is "enroll" and the like.  Returns 1 when
 * end is filled, 0 when the caller reads the output.
 */
static int
helper_end_judge(const struct helper_op *op, const struct core_proc_result *res,
                 const char *what, struct helper_end *end)
{
	const struct helper *h = op->h;
	char line[HELPER_QUOTE_MAX * 2 + 8], sig[32];
	int wait_ok = op->verb == HELPER_SUBMIT || op->verb == HELPER_POLL;

	memset(end, 0, sizeof(*end));
	if (res->exec_errno != 0) {
		helper_end_set(end, CA_MISCONFIGURED,
		               "check the command of the label's ca",
		               "%s failed: cannot start helper %s: (%d: %s)",
		               what, h->argv[0], res->exec_errno,
		               strerror(res->exec_errno));
		return 1;
	}
	if (res->timed_out) {
		helper_end_set(end, CA_MISCONFIGURED,
		               "run the helper by hand with the same "
		               "CERTMONGER_* variables, or raise timeout",
		               "%s failed: helper timed out after %u s, killed",
		               what, h->timeout);
		return 1;
	}
	if (!res->exited) {
		helper_end_set(
		    end, CA_MISCONFIGURED,
		    "run the helper by hand with the same "
		    "CERTMONGER_* variables",
		    "%s failed: helper killed by %s", what,
		    helper_signal_name(res->status, sig, sizeof(sig)));
		return 1;
	}
	if (res->out_len > h->max_output) {
		helper_end_set(end, CA_MISCONFIGURED,
		               "raise max_output if the helper's answer is "
		               "really that large",
		               "%s failed: helper exit %d %s but its output "
		               "exceeds max_output (%zu bytes)",
		               what, res->status,
		               helper_status_name(res->status), h->max_output);
		return 1;
	}
	helper_quote(res->out, res->out_len, 1, line, sizeof(line));
	switch (res->status) {
	case HELPER_EXIT_ISSUED:
		return 0;
	case HELPER_EXIT_WAIT:
	case HELPER_EXIT_WAIT_WITH_DELAY:
		if (wait_ok)
			return 0;
		/* CA data is not there yet: try again later. */
		helper_end_set(end, CA_UNREACHABLE, NULL,
		               "%s failed: helper exit %d %s", what,
		               res->status, helper_status_name(res->status));
		end->retry_after = h->retry_after;
		return 1;
	case HELPER_EXIT_REJECTED:
		helper_end_set(end, CA_REJECTED, NULL,
		               "%s refused by CA: helper exit 2 REJECTED%s%s",
		               what, line[0] != '\0' ? " " : "", line);
		return 1;
	case HELPER_EXIT_UNREACHABLE:
		helper_end_set(end, CA_UNREACHABLE,
		               "check that the CA the helper talks to is "
		               "reachable",
		               "%s failed: helper exit 3 UNREACHABLE%s%s", what,
		               line[0] != '\0' ? " " : "", line);
		end->retry_after = h->retry_after;
		return 1;
	case HELPER_EXIT_UNCONFIGURED:
		helper_end_set(end, CA_MISCONFIGURED,
		               "check the helper's command, env and profile",
		               "%s failed: helper exit 4 UNCONFIGURED%s%s",
		               what, line[0] != '\0' ? " " : "", line);
		return 1;
	case HELPER_EXIT_UNSUPPORTED:
		helper_end_set(end, CA_UNSUPPORTED, NULL,
		               "%s not supported: helper exit 6 "
		               "OPERATION_NOT_SUPPORTED%s%s",
		               what, line[0] != '\0' ? " " : "", line);
		return 1;
	default:
		helper_end_set(end, CA_MISCONFIGURED,
		               "the helper contract defines exit 0 to 6 only",
		               "%s failed: helper exit %d %s%s%s", what,
		               res->status, helper_status_name(res->status),
		               line[0] != '\0' ? " " : "", line);
		return 1;
	}
}

/* Completes op's call with end, logs the run, frees op. */
static void
helper_finish(struct helper_op *op, const struct core_proc_result *res,
              struct helper_end *end)
{
	struct ca_call *call = op->call;
	enum core_log_level level;

	switch (end->outcome) {
	case CA_ISSUED:
		level = CORE_LOG_DEBUG;
		break;
	case CA_PENDING:
		level = CORE_LOG_INFO;
		break;
	default:
		/* A failure: ra writes the request's one line from the
		 * result, so this copy is for debugging only. */
		level = CORE_LOG_DEBUG;
		break;
	}
	helper_log_run(op, level, end->hint,
	               end->outcome == CA_ISSUED ? "helper exit 0 ISSUED"
	                                         : end->cause,
	               res);
	call->result.outcome = end->outcome;
	if (end->outcome == CA_PENDING || end->outcome == CA_UNREACHABLE)
		call->result.retry_after = end->retry_after;
	if (end->outcome != CA_ISSUED) {
		snprintf(call->result.cause, sizeof(call->result.cause), "%s",
		         end->cause);
		if (end->hint != NULL)
			snprintf(call->result.hint, sizeof(call->result.hint),
			         "%s", end->hint);
		if (end->outcome != CA_PENDING)
			helper_run_detail(op, res, call->result.detail,
			                  sizeof(call->result.detail));
	}
	helper_op_free(op);
	ca_call_done(call);
}

/* SUBMIT or POLL ended; answers the enroll or poll call. */
static void
helper_enroll_done(struct helper_op *op, const struct core_proc_result *res)
{
	struct ca_call *call = op->call;
	const char *what = ca_operation_name(call->op), *why = NULL;
	const char *p, *stop, *cookie;
	struct helper_end end;
	STACK_OF(X509) *certs = NULL;
	unsigned long delay;
	char digits[32], line[HELPER_QUOTE_MAX * 2 + 8];
	size_t n;

	if (helper_end_judge(op, res, what, &end))
		goto out;
	if (res->status == HELPER_EXIT_ISSUED) {
		certs = ca_helper_output_certs(res->out, res->out_len);
		if (certs == NULL || sk_X509_num(certs) == 0) {
			helper_end_set(
			    &end, CA_MISCONFIGURED,
			    "the helper must print the certificate "
			    "(PEM, DER or PKCS#7) on stdout",
			    "%s failed: helper exit 0 ISSUED without "
			    "a readable certificate",
			    what);
			goto out;
		}
		if (ca_helper_output_leaf_first(certs, call->csr) != 0) {
			helper_end_set(&end, CA_MISCONFIGURED,
			               "the CA answered with a certificate for "
			               "another request",
			               "%s failed: helper exit 0 ISSUED but no "
			               "certificate carries the CSR's key",
			               what);
			goto out;
		}
		call->result.chain = certs;
		certs = NULL;
		end.outcome = CA_ISSUED;
		goto out;
	}
	cookie = res->out;
	n = res->out_len;
	end.retry_after = op->h->retry_after;
	if (res->status == HELPER_EXIT_WAIT_WITH_DELAY) {
		/* Line 1 is the delay in decimal seconds; the cookie is
		 * everything after the newlines that end it. */
		stop = res->out + res->out_len;
		for (p = res->out; p < stop && *p != '\n' && *p != '\r'; p++)
			;
		n = (size_t)(p - res->out);
		while (n > 0 && isspace((unsigned char)res->out[n - 1]))
			n--;
		for (cookie = res->out;
		     n > 0 && isspace((unsigned char)*cookie); cookie++)
			n--;
		if (n == 0 || n >= sizeof(digits) ||
		    strspn(cookie, "0123456789") < n) {
			helper_end_set(
			    &end, CA_MISCONFIGURED,
			    "exit 5 needs the delay in seconds on line 1",
			    "%s failed: helper exit 5 WAIT_WITH_DELAY without "
			    "a delay in seconds on line 1%s%s",
			    what, res->out_len > 0 ? ": " : "",
			    helper_quote(res->out, res->out_len, 1, line,
			                 sizeof(line)));
			goto out;
		}
		memcpy(digits, cookie, n);
		digits[n] = '\0';
		errno = 0;
		delay = strtoul(digits, NULL, 10);
		if (errno != 0 || delay > HELPER_DELAY_MAX)
			delay = HELPER_DELAY_MAX;
		end.retry_after = delay > 0 ? (unsigned int)delay : 1;
		while (p < stop && (*p == '\n' || *p == '\r'))
			p++;
		cookie = p;
		n = (size_t)(stop - p);
	}
	if (ca_helper_output_cookie(cookie, n, call->result.cookie,
	                            sizeof(call->result.cookie), &why) != 0) {
		helper_end_set(&end, CA_MISCONFIGURED,
		               "estrad keeps cookies of printable ASCII up to "
		               "255 bytes",
		               "%s failed: helper exit %d %s but its cookie %s",
		               what, res->status,
		               helper_status_name(res->status), why);
		goto out;
	}
	if (res->status == HELPER_EXIT_WAIT && call->result.cookie[0] == '\0') {
		/* certmonger needs guidance here too: there is nothing to
		 * poll with. */
		helper_end_set(
		    &end, CA_MISCONFIGURED, "exit 1 needs the cookie on stdout",
		    "%s failed: helper exit 1 WAIT without a cookie", what);
		goto out;
	}
	if (res->status == HELPER_EXIT_WAIT_WITH_DELAY)
		helper_end_set(&end, CA_PENDING, NULL,
		               "%s pending: helper exit 5 WAIT_WITH_DELAY, "
		               "retry after %u s",
		               what, end.retry_after);
	else
		helper_end_set(&end, CA_PENDING, NULL,
		               "%s pending: helper exit 1 WAIT", what);
out:
	sk_X509_pop_free(certs, X509_free);
	if (end.outcome != CA_PENDING)
		call->result.cookie[0] = '\0';
	helper_finish(op, res, &end);
}

/* Returns a new copy of the cached roots with new references, or NULL. */
static STACK_OF(X509) *
helper_roots_copy(struct helper *h)
{
	STACK_OF(X509) *rc = NULL;

	pthread_mutex_lock(&h->lock);
	if (h->roots != NULL)
		rc = X509_chain_up_ref(h->roots);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* Returns milliseconds of the monotonic clock. */
static long long
helper_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fills a (failure) from end and the run's detail. */
static void
helper_answer_set(struct helper_answer *a, const struct helper_end *end,
                  const char *detail)
{
	memset(a, 0, sizeof(*a));
	a->outcome = end->outcome;
	a->retry_after = end->retry_after;
	snprintf(a->cause, sizeof(a->cause), "%s", end->cause);
	snprintf(a->hint, sizeof(a->hint), "%s",
	         end->hint != NULL ? end->hint : "");
	snprintf(a->detail, sizeof(a->detail), "%s",
	         detail != NULL ? detail : "");
}

/* Completes call with the failure a. */
static void
helper_answer_call(struct ca_call *call, const struct helper_answer *a)
{
	call->result.outcome = a->outcome;
	if (a->outcome == CA_UNREACHABLE)
		call->result.retry_after = a->retry_after;
	snprintf(call->result.cause, sizeof(call->result.cause), "%s",
	         a->cause);
	snprintf(call->result.hint, sizeof(call->result.hint), "%s", a->hint);
	snprintf(call->result.detail, sizeof(call->result.detail), "%s",
	         a->detail);
	ca_call_done(call);
}

/* Answers call 503 at once: running runs and waiting calls fill the
 * label's share. */
static void
helper_busy(struct helper *h, struct ca_call *call, unsigned int running,
            unsigned int waiting)
{
	snprintf(call->result.detail, sizeof(call->result.detail),
	         "max_processes: %u, max_queued: %u", h->max_processes,
	         h->max_queued);
	call->result.retry_after = h->retry_after;
	ca_call_fail(call, CA_UNREACHABLE,
	             "raise max_processes or max_queued of the label's ca, "
	             "or find out why the helper is slow",
	             "%s failed: helper busy: %u running, %u waiting",
	             ca_operation_name(call->op), running, waiting);
}

/* --- waiting calls -------------------------------------------------------- */

/* Appends w to h->waits; the caller holds h->lock. */
static void
helper_wait_link(struct helper *h, struct helper_wait *w)
{
	w->prev = h->waits_tail;
	w->next = NULL;
	if (h->waits_tail != NULL)
		h->waits_tail->next = w;
	else
		h->waits = w;
	h->waits_tail = w;
}

/* Takes w off h->waits; the caller holds h->lock. */
static void
helper_wait_unlink(struct helper *h, struct helper_wait *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else if (h->waits == w)
		h->waits = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else if (h->waits_tail == w)
		h->waits_tail = w->prev;
	w->prev = w->next = NULL;
}

static void helper_run_call(struct helper *h, struct ca_call *call,
                            enum helper_verb verb);
static void helper_slot_release(struct helper *h);

/*
 * w's wake, on its call's loop: a slot waiter starts its run with the slot
 * handed to it, a roots waiter completes with its answer.  A wait
 * cancelled after it was woken is only freed: its call is complete and
 * h may be gone.
 */
static void
helper_wait_wake(evutil_socket_t fd, short what, void *arg)
{
	struct helper_wait *w = arg;
	struct helper *h = w->h;
	struct ca_call *call = w->call;

	(void)fd;
	(void)what;
	if (w->cancelled) {
		free(w);
		return;
	}
	pthread_mutex_lock(&h->lock);
	helper_wait_unlink(h, w);
	pthread_mutex_unlock(&h->lock);
	if (w->verb != HELPER_FETCH_ROOTS)
		helper_run_call(h, call, w->verb);
	else if (w->answer.outcome != CA_ISSUED)
		helper_answer_call(call, &w->answer);
	else if ((call->result.chain = helper_roots_copy(h)) == NULL)
		ca_call_fail(call, CA_MISCONFIGURED, NULL,
		             "cacerts failed: out of memory");
	else {
		call->result.outcome = CA_ISSUED;
		ca_call_done(call);
	}
	free(w);
}

/*
 * Schedules w's wake on its call's loop (thread-safe); the caller holds
 * h->lock.  Returns 0, or -1 when out of memory (w stays as it was).
 */
static int
helper_wait_schedule(struct helper_wait *w)
{
	static const struct timeval now = {0, 0};

	if (event_base_once(w->call->base, -1, EV_TIMEOUT, helper_wait_wake, w,
	                    &now) != 0)
		return -1;
	w->woken = 1;
	return 0;
}

/*
 * A run holding a slot ended: the slot goes to the oldest call waiting for
 * one, on that call's loop, or is freed.
 */
static void
helper_slot_release(struct helper *h)
{
	struct helper_wait *w;
	int lost = 0;

	pthread_mutex_lock(&h->lock);
	for (w = h->waits; w != NULL; w = w->next)
		if (!w->woken && w->verb != HELPER_FETCH_ROOTS)
			break;
	if (w != NULL && helper_wait_schedule(w) == 0)
		h->slot_waiting--;
	else {
		lost = w != NULL;
		h->running--;
	}
	pthread_mutex_unlock(&h->lock);
	if (lost)
		ca_log(NULL, CORE_LOG_ALERT, HELPER_COMPONENT, NULL,
		       "cannot wake a call waiting for the helper: out of "
		       "memory; it waits for the next run to end, backend: "
		       "helper");
}

/* --- FETCH-ROOTS ---------------------------------------------------------- */

/*
 * The label's fetch ended: roots (taken; NULL when it failed) or the
 * failure a (NULL when it succeeded or was cancelled: nothing is
 * remembered then).  Updates the cache and answers every call waiting for
 * it.  Once this returns, h may be gone unless the caller holds it
 * otherwise (the background, until stop): the calls it wakes were all
 * that kept the label's configuration alive.
 */
static void
helper_roots_settle(struct helper *h, STACK_OF(X509) *roots,
                    const struct helper_answer *a,
                    const struct helper_answer *cancelled)
{
	STACK_OF(X509) *old = NULL;
	struct helper_wait *w;
	int lost = 0;

	pthread_mutex_lock(&h->lock);
	if (roots != NULL) {
		old = h->roots;
		h->roots = roots;
		h->roots_ms = helper_now_ms();
		h->fail_until_ms = 0;
	} else if (a != NULL) {
		if (h->fail == NULL)
			h->fail = malloc(sizeof(*h->fail));
		if (h->fail != NULL) {
			*h->fail = *a;
			h->fail_until_ms =
			    helper_now_ms() + (long long)h->roots_retry * 1000;
		}
	}
	h->fetching = 0;
	h->fetch = NULL;
	for (w = h->waits; w != NULL; w = w->next) {
		if (w->woken || w->verb != HELPER_FETCH_ROOTS)
			continue;
		if (roots != NULL)
			w->answer.outcome = CA_ISSUED;
		else
			w->answer = a != NULL ? *a : *cancelled;
		if (helper_wait_schedule(w) == 0)
			h->roots_waiting--;
		else
			lost = 1;
	}
	pthread_mutex_unlock(&h->lock);
	sk_X509_pop_free(old, X509_free);
	if (lost)
		ca_log(NULL, CORE_LOG_ALERT, HELPER_COMPONENT, NULL,
		       "cannot wake a call waiting for the CA certificates: "
		       "out of memory; it waits for the next fetch, backend: "
		       "helper");
}

/* FETCH-ROOTS ended, for the background or for the calls waiting. */
static void
helper_roots_done(struct helper_op *op, const struct core_proc_result *res)
{
	struct helper *h = op->h;
	STACK_OF(X509) *roots = NULL;
	char names[512], detail[CA_DETAIL_MAX];
	struct helper_answer *a = NULL;
	struct helper_end end;
	unsigned int next = 0;
	int bg = op->bg;

	if (helper_end_judge(op, res, "cacerts", &end))
		goto failed;
	roots = ca_helper_output_roots(res->out, res->out_len, names,
	                               sizeof(names));
	if (roots == NULL || sk_X509_num(roots) == 0) {
		helper_end_set(&end, CA_MISCONFIGURED,
		               "FETCH-ROOTS prints a nickname line and a PEM "
		               "certificate per CA",
		               "cacerts failed: helper exit 0 ISSUED but "
		               "FETCH-ROOTS gave no certificate");
		sk_X509_pop_free(roots, X509_free);
		roots = NULL;
		goto failed;
	}
	ca_log(NULL, CORE_LOG_INFO, HELPER_COMPONENT, NULL,
	       "CA certificates fetched: %d (%s), helper: %s, operation: "
	       "FETCH-ROOTS, ms: %ld, backend: helper",
	       sk_X509_num(roots), names[0] != '\0' ? names : "no nicknames",
	       h->argv[0], res->ms);
	if (bg) {
		h->bg_backoff = HELPER_BACKOFF_MIN;
		next = h->roots_refresh;
	}
	goto settle;
failed:
	helper_run_detail(op, res, detail, sizeof(detail));
	if ((a = malloc(sizeof(*a))) != NULL)
		helper_answer_set(a, &end, detail);
	if (bg) {
		/* The calls waiting each get a line of their own; the
		 * background's failure is the operator's to see. */
		helper_log_run(op,
		               end.outcome == CA_UNSUPPORTED ? CORE_LOG_INFO
		                                             : CORE_LOG_ERROR,
		               end.outcome == CA_UNSUPPORTED
		                   ? "cacerts answers 501 with this helper"
		                   : end.hint,
		               end.cause, res);
		/* Try again sooner while it fails. */
		next = end.outcome == CA_UNSUPPORTED ? h->roots_refresh
		                                     : h->bg_backoff;
		if (h->bg_backoff < HELPER_BACKOFF_MAX)
			h->bg_backoff *= 2;
		if (next > h->roots_refresh)
			next = h->roots_refresh;
	}
settle:
	/* op is freed after h->fetch no longer points to it. */
	if (a == NULL && roots == NULL) {
		/* Out of memory for the answer: the waiting calls still
		 * get one. */
		struct helper_answer oom;

		memset(&oom, 0, sizeof(oom));
		oom.outcome = CA_MISCONFIGURED;
		snprintf(oom.cause, sizeof(oom.cause),
		         "cacerts failed: out of memory");
		helper_roots_settle(h, NULL, NULL, &oom);
	} else
		helper_roots_settle(h, roots, a, NULL);
	helper_op_free(op);
	free(a);
	/* The background's h lives until stop, on this thread. */
	if (bg)
		helper_bg_schedule(h, next);
}

/*
 * Starts the label's FETCH-ROOTS on base; the caller set h->fetching.  A
 * run that cannot start ends like a failed one (answering the calls
 * waiting).  Returns 0, or -1 when it could not start.
 */
static int
helper_fetch_start(struct helper *h, struct event_base *base, int bg)
{
	struct helper_answer a;
	struct helper_op *op;
	char err[512];

	if ((op = helper_run(h, NULL, base, HELPER_FETCH_ROOTS, err,
	                     sizeof(err))) != NULL) {
		op->bg = bg;
		pthread_mutex_lock(&h->lock);
		h->fetch = op;
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	if (bg)
		ca_log(NULL, CORE_LOG_ERROR, HELPER_COMPONENT,
		       "check the command of the label's ca",
		       "CA certificate refresh failed: %s, backend: helper",
		       err);
	memset(&a, 0, sizeof(a));
	a.outcome = CA_MISCONFIGURED;
	snprintf(a.cause, sizeof(a.cause),
	         "cacerts failed: cannot start the CA helper");
	snprintf(a.hint, sizeof(a.hint), "check the command of the label's ca");
	snprintf(a.detail, sizeof(a.detail),
	         "operation: FETCH-ROOTS, error: \"%s\"", err);
	helper_roots_settle(h, NULL, &a, NULL);
	return -1;
}

/* IDENTIFY ended: healthy when it exits 0 (--doctor). */
static void
helper_identify_done(struct helper_op *op, const struct core_proc_result *res)
{
	char line[HELPER_QUOTE_MAX * 2 + 8];
	struct helper_end end;

	if (!helper_end_judge(op, res, "health", &end)) {
		end.outcome = CA_ISSUED;
		ca_log(op->call, CORE_LOG_INFO, HELPER_COMPONENT, NULL,
		       "helper identifies as %s, helper: %s, ms: %ld",
		       helper_quote(res->out, res->out_len, 1, line,
		                    sizeof(line))[0] != '\0'
		           ? line
		           : "(nothing)",
		       op->h->argv[0], res->ms);
	}
	helper_finish(op, res, &end);
}

/* The run ended (proc.c, on op's loop); proc is freed after this returns. */
static void
helper_proc_done(struct core_proc *proc, const struct core_proc_result *res,
                 void *arg)
{
	struct helper_op *op = arg;
	struct helper *h = op->h;

	(void)proc;
	op->proc = NULL;
	helper_op_unlink(op);
	if (op->verb == HELPER_FETCH_ROOTS) {
		helper_roots_done(op, res);
		return;
	}
	/* The slot goes on before the call completes: h stays until then. */
	helper_slot_release(h);
	if (op->verb == HELPER_IDENTIFY)
		helper_identify_done(op, res);
	else
		helper_enroll_done(op, res);
}

/* --- backend operations --------------------------------------------------- */

/* Runs verb for call with the process slot it holds, or fails the call
 * (deferred by ca_call_done) and gives the slot on. */
static void
helper_run_call(struct helper *h, struct ca_call *call, enum helper_verb verb)
{
	char err[512];

	if (helper_run(h, call, call->base, verb, err, sizeof(err)) != NULL)
		return;
	helper_slot_release(h);
	/* The reason names the command: the detail, for the log only. */
	snprintf(call->result.detail, sizeof(call->result.detail),
	         "operation: %s, error: \"%s\"", helper_verbs[verb], err);
	ca_call_fail(call, CA_MISCONFIGURED,
	             "check the command of the label's ca",
	             "%s failed: cannot start the CA helper",
	             ca_operation_name(call->op));
}

/*
 * Starts verb for call when a process slot is free; else queues the call
 * for the next slot, or answers 503 when the queue is full.
 */
static void
helper_start_call(struct helper *h, struct ca_call *call, enum helper_verb verb)
{
	struct helper_wait *w = calloc(1, sizeof(*w));
	unsigned int running, waiting;

	pthread_mutex_lock(&h->lock);
	if (h->running < h->max_processes) {
		h->running++;
		pthread_mutex_unlock(&h->lock);
		free(w);
		helper_run_call(h, call, verb);
		return;
	}
	running = h->running;
	waiting = h->slot_waiting;
	if (w == NULL || waiting >= h->max_queued) {
		pthread_mutex_unlock(&h->lock);
		free(w);
		if (waiting < h->max_queued)
			ca_call_fail(call, CA_MISCONFIGURED, NULL,
			             "%s failed: out of memory",
			             ca_operation_name(call->op));
		else
			helper_busy(h, call, running, waiting);
		return;
	}
	w->h = h;
	w->call = call;
	w->verb = verb;
	helper_wait_link(h, w);
	h->slot_waiting++;
	pthread_mutex_unlock(&h->lock);
}

static void
helper_enroll(void *p, struct ca_call *call)
{
	helper_start_call(p, call, HELPER_SUBMIT);
}

/*
 * A retry after 202.  certmonger polls only with a non-empty cookie and
 * submits again otherwise (exit 5 with a delay line alone), and so does
 * estrad.
 */
static void
helper_poll(void *p, struct ca_call *call)
{
	helper_start_call(p, call,
	                  call->cookie != NULL && call->cookie[0] != '\0'
	                      ? HELPER_POLL
	                      : HELPER_SUBMIT);
}

/*
 * Answers from the cached roots (however old: the background refreshes
 * them), or from a failure remembered; else waits for the label's
 * FETCH-ROOTS, starting it when none is under way.
 */
static void
helper_cacerts(void *p, struct ca_call *call)
{
	struct helper *h = p;
	struct helper_wait *w = calloc(1, sizeof(*w));
	struct helper_answer fail;
	unsigned int waiting;
	int start;

	pthread_mutex_lock(&h->lock);
	if (h->roots != NULL) {
		call->result.chain = X509_chain_up_ref(h->roots);
		pthread_mutex_unlock(&h->lock);
		free(w);
		if (call->result.chain == NULL)
			ca_call_fail(call, CA_MISCONFIGURED, NULL,
			             "cacerts failed: out of memory");
		else {
			call->result.outcome = CA_ISSUED;
			ca_call_done(call);
		}
		return;
	}
	if (h->fail != NULL && !h->fetching &&
	    helper_now_ms() < h->fail_until_ms) {
		fail = *h->fail;
		pthread_mutex_unlock(&h->lock);
		free(w);
		helper_answer_call(call, &fail);
		return;
	}
	waiting = h->roots_waiting;
	if (w == NULL || waiting >= h->max_queued) {
		pthread_mutex_unlock(&h->lock);
		free(w);
		if (waiting < h->max_queued)
			ca_call_fail(call, CA_MISCONFIGURED, NULL,
			             "cacerts failed: out of memory");
		else
			helper_busy(h, call, 1, waiting);
		return;
	}
	w->h = h;
	w->call = call;
	w->verb = HELPER_FETCH_ROOTS;
	helper_wait_link(h, w);
	h->roots_waiting++;
	start = !h->fetching;
	h->fetching = 1;
	pthread_mutex_unlock(&h->lock);
	if (start)
		(void)helper_fetch_start(h, call->base, 0);
}

static void
helper_health(void *p, struct ca_call *call)
{
	helper_start_call(p, call, HELPER_IDENTIFY);
}

/* Finds the run of call; the caller runs on call's thread. */
static struct helper_op *
helper_op_of(struct helper *h, const struct ca_call *call)
{
	struct helper_op *op;

	pthread_mutex_lock(&h->lock);
	for (op = h->ops; op != NULL; op = op->next)
		if (op->call == call)
			break;
	pthread_mutex_unlock(&h->lock);
	return op;
}

/*
 * Kills the run of op (killed and reaped now when reap is set, else from
 * the loop; its process group with it) and ends what waits for it: its
 * call completes as CANCELLED and its slot goes on, or, for FETCH-ROOTS,
 * the calls waiting are answered CANCELLED.
 */
static void
helper_op_cancel(struct helper_op *op, int reap, const char *why)
{
	struct helper *h = op->h;
	struct ca_call *call = op->call;
	struct helper_answer a;

	helper_op_unlink(op);
	if (reap)
		core_proc_kill(op->proc);
	else
		core_proc_cancel(op->proc);
	op->proc = NULL;
	if (call == NULL) {
		memset(&a, 0, sizeof(a));
		a.outcome = CA_CANCELLED;
		snprintf(a.cause, sizeof(a.cause), "cacerts cancelled: %s",
		         why);
		helper_roots_settle(h, NULL, NULL, &a);
		/* Freed once h->fetch no longer points to it. */
		helper_op_free(op);
		return;
	}
	helper_op_free(op);
	helper_slot_release(h);
	ca_call_fail(call, CA_CANCELLED, NULL, "%s cancelled: %s",
	             ca_operation_name(call->op), why);
}

/*
 * Cancels call, running or waiting.  A FETCH-ROOTS left without a call to
 * answer, on this loop and not the background's, is killed too: nothing
 * started for a call outlives it.
 */
static void
helper_cancel(void *p, struct ca_call *call)
{
	struct helper *h = p;
	struct helper_op *op = helper_op_of(h, call), *fetch = NULL;
	struct helper_wait *w;
	int release = 0;

	if (op != NULL) {
		helper_op_cancel(op, 0, "the request was cancelled");
		return;
	}
	pthread_mutex_lock(&h->lock);
	for (w = h->waits; w != NULL; w = w->next)
		if (w->call == call && !w->cancelled)
			break;
	if (w == NULL) {
		pthread_mutex_unlock(&h->lock);
		return;
	}
	helper_wait_unlink(h, w);
	if (w->verb != HELPER_FETCH_ROOTS) {
		/* Woken, it holds the slot handed to it. */
		if (w->woken)
			release = 1;
		else
			h->slot_waiting--;
	} else if (!w->woken) {
		h->roots_waiting--;
		if (h->roots_waiting == 0 && h->fetch != NULL &&
		    !h->fetch->bg && h->fetch->base == call->base)
			fetch = h->fetch;
	}
	if (w->woken)
		w->cancelled = 1;
	pthread_mutex_unlock(&h->lock);
	if (!w->cancelled)
		free(w);
	if (release)
		helper_slot_release(h);
	if (fetch != NULL)
		helper_op_cancel(fetch, 0, "no request waits for it");
	ca_call_fail(call, CA_CANCELLED, NULL,
	             "%s cancelled: the request was cancelled",
	             ca_operation_name(call->op));
}

/* The background timer: fetch the roots (again). */
static void
helper_bg_tick(evutil_socket_t fd, short what, void *arg)
{
	struct helper *h = arg;
	long long left = 0; /* ms until the cached roots are due */
	int busy;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&h->lock);
	busy = h->fetching;
	if (h->roots != NULL)
		left = h->roots_ms + (long long)h->roots_refresh * 1000 -
		       helper_now_ms();
	if (!busy && left < 1000)
		h->fetching = 1;
	pthread_mutex_unlock(&h->lock);
	if (busy) {
		/* A call's fetch is under way: see how it went soon. */
		helper_bg_schedule(h, HELPER_BACKOFF_MIN);
		return;
	}
	if (left >= 1000) {
		/* A call's fetch got the roots lately. */
		helper_bg_schedule(h, (unsigned int)(left / 1000));
		return;
	}
	if (helper_fetch_start(h, h->bg_base, 1) != 0)
		helper_bg_schedule(h, h->bg_backoff);
}

static void
helper_bg_schedule(struct helper *h, unsigned int seconds)
{
	struct timeval tv = {(time_t)seconds, 0};

	if (h->bg_timer != NULL)
		evtimer_add(h->bg_timer, &tv);
}

static void
helper_start(void *p, struct event_base *base)
{
	struct helper *h = p;

	h->bg_base = base;
	h->bg_backoff = HELPER_BACKOFF_MIN;
	if ((h->bg_timer = evtimer_new(base, helper_bg_tick, h)) == NULL) {
		ca_log(NULL, CORE_LOG_ERROR, HELPER_COMPONENT, NULL,
		       "cannot schedule the CA certificate fetch: out of "
		       "memory, backend: helper");
		return;
	}
	helper_bg_schedule(h, 0);
}

static void
helper_stop(void *p)
{
	struct helper *h = p;
	struct helper_op *op;

	if (h->bg_timer != NULL) {
		event_free(h->bg_timer);
		h->bg_timer = NULL;
	}
	/* The loop will not run again: children are killed and reaped
	 * here, so none is left behind as a zombie. */
	for (;;) {
		pthread_mutex_lock(&h->lock);
		for (op = h->ops; op != NULL; op = op->next)
			if (op->base == h->bg_base)
				break;
		pthread_mutex_unlock(&h->lock);
		if (op == NULL)
			break;
		helper_op_cancel(op, 1, "estrad is stopping");
	}
	h->bg_base = NULL;
}

const struct ca_backend ca_helper_backend = {
    "helper",              /* name */
    HELPER_CAPS,           /* caps */
    sizeof(struct helper), /* priv_size */
    helper_configure,      /* configure */
    helper_enroll,         /* enroll: SUBMIT */
    helper_poll,           /* poll: POLL with the cookie */
    helper_cacerts,        /* cacerts: FETCH-ROOTS, cached */
    helper_health,         /* health: IDENTIFY */
    helper_cancel,         /* cancel */
    helper_unconfigure,    /* unconfigure */
    helper_start,          /* start: fetch and refresh the roots */
    helper_stop,           /* stop */
    NULL,                  /* own_certs: none */
};
