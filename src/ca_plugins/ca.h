/*
 * ca.h: the interface between the registration authority (src/ra) and the
 * CA backends (src/ca_plugins).  A backend is one const struct ca_backend;
 * ra creates one instance of it per label that names it, and starts
 * asynchronous calls on that instance from the worker threads.  Backends
 * include only this header.
 */
#ifndef ESTRAD_CA_H
#define ESTRAD_CA_H

#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/x509.h>

/*
 * What a CA call ended in.  ra maps each outcome to an EST answer (see
 * DESIGN.md): ISSUED 200, PENDING 202, REJECTED 403 (400 when csr_fault is
 * set), UNREACHABLE 503, MISCONFIGURED 500, UNSUPPORTED 501.
 */
enum ca_outcome {
	CA_ISSUED,
	CA_PENDING,
	CA_REJECTED,
	CA_UNREACHABLE,
	CA_MISCONFIGURED,
	CA_UNSUPPORTED,
	CA_CANCELLED,
	CA_OUTCOME__MAX
};

/*
 * Event priorities of a worker's loop (est/listener.c sets up two).  Work
 * for requests already under way (their connections once the TLS handshake
 * is done, CA call completions, answers waiting for the audit log) runs
 * before new TLS handshakes, so that a burst of new clients does not stall
 * the answers of those already being served.  On a loop with one priority
 * (unit tests, --doctor) setting them fails harmlessly.
 */
#define CA_LOOP_PRIORITY_ONGOING 0
#define CA_LOOP_PRIORITY_NEW     1
#define CA_LOOP_PRIORITIES       2

/* Returns a static upper-case name ("ISSUED", ...) for logs. */
const char *ca_outcome_name(enum ca_outcome outcome);

/* Which operation a call performs. */
enum ca_operation {
	CA_OP_ENROLL,
	CA_OP_REENROLL,
	CA_OP_POLL,
	CA_OP_CACERTS,
	CA_OP_HEALTH,
	CA_OPERATION__MAX
};

/* Returns a static lower-case name ("enroll", ...) for logs. */
const char *ca_operation_name(enum ca_operation op);

/* Capability bits of a backend; an operation without its bit answers 501. */
#define CA_CAP_ENROLL   0x01u
#define CA_CAP_REENROLL 0x02u
#define CA_CAP_POLL     0x04u
#define CA_CAP_CACERTS  0x08u
#define CA_CAP_HEALTH   0x10u
/*
 * Not an operation: the backend hands the CSR to its CA as the client sent
 * it (certsrv, dogtag, helper), so the CA may honour any extension it
 * requests and the RA cannot drop one; the policy refuses those it does
 * not allow instead.  A backend that builds the certificate itself (local)
 * leaves it unset.
 */
#define CA_CAP_FORWARDS_CSR 0x20u

/*
 * Log levels, in nginx's words (STYLE.md): emerg cannot start, alert an
 * invariant broke, crit the audit log is unwritable, error the operator must
 * fix something, warn degraded, notice a client was refused, info lifecycle,
 * debug.  ra's log levels have the same values.
 */
enum ca_log_level {
	CA_LOG_EMERG,
	CA_LOG_ALERT,
	CA_LOG_CRIT,
	CA_LOG_ERROR,
	CA_LOG_WARN,
	CA_LOG_NOTICE,
	CA_LOG_INFO,
	CA_LOG_DEBUG
};

/* Sizes of the fixed text fields of a result. */
#define CA_CAUSE_MAX  1024
#define CA_HINT_MAX   256
#define CA_URL_MAX    512
#define CA_DETAIL_MAX 1024
#define CA_COOKIE_MAX 256

/*
 * Why a configure call failed: the key (relative to the label's "ca" object,
 * e.g. "cert" or "profile.validity_days") so ra can name file, line and
 * column, and the reason in a full phrase.
 */
struct ca_err {
	char key[128];
	char text[512];
};

/* Fills err with key and a printf-style reason; returns -1 for "return". */
int ca_err_set(struct ca_err *err, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * What a call produced.  The backend fills it before ca_call_done(); ra
 * reads it in the completion callback and takes chain.
 */
struct ca_result {
	enum ca_outcome outcome;
	/* ISSUED: the issued certificate first, then any chain the CA gave.
	 * CACERTS: the CA chain to the root.  Owned by the call until ra takes
	 * it (sets it to NULL); ca_call_free() frees what is left.  An issued
	 * certificate may carry its key as DER only (the local CA copies the
	 * CSR's SubjectPublicKeyInfo undecoded): X509_get0_pubkey() on it may
	 * return NULL; compare keys with X509_get_X509_PUBKEY(). */
	STACK_OF(X509) *chain;
	/* PENDING: the CA's handle for the request, given back on poll. */
	char cookie[CA_COOKIE_MAX];
	/* PENDING and UNREACHABLE: seconds the client should wait; 0 lets ra
	 * pick the label's default. */
	unsigned int retry_after;
	/* REJECTED only: the CSR itself is bad (400 rather than 403). */
	int csr_fault;
	/* Every outcome but ISSUED: WHAT: CAUSE in the house shape, e.g.
	 * `enroll failed: curl 6 "Could not resolve hostname" (...)`.  Also
	 * the client's text/plain answer, so it must hold no secrets. */
	char cause[CA_CAUSE_MAX];
	/* Optional: what the operator should check. */
	char hint[CA_HINT_MAX];
	/* Optional: the CA URL involved. */
	char url[CA_URL_MAX];
	/* Optional, every outcome but ISSUED and PENDING: what else the
	 * operator needs to find the fault, as "key: value, key: value"
	 * (the helper run's exit, time and stderr; the agent certificate).
	 * ra writes the request's one error-log line from cause, detail, hint
	 * and url, so a backend does not log a per-call failure itself.
	 * detail goes to that line only (after the cause, escaped like it),
	 * never to the client, so it may name configuration; values with
	 * spaces or commas are quoted. */
	char detail[CA_DETAIL_MAX];
};

struct ca_call;

/* Completion callback, run once on the call's event_base thread. */
typedef void (*ca_call_done_fn)(struct ca_call *call, void *arg);

/*
 * Log hook: ra installs it once at start-up so that backends can log through
 * the request's context without including ra headers.  call may be NULL
 * (configure, background refresh).
 */
typedef void (*ca_log_fn)(const struct ca_call *call, enum ca_log_level level,
                          const char *component, const char *hint,
                          const char *message);

void ca_set_log_hook(ca_log_fn hook);

/*
 * Configuration readers shared by the backends, so that every "ca" object
 * is equally strict and every error names its key the same way.  Each
 * borrows conf for the call and fills err (key and reason) on -1.
 */

/*
 * Writes the n bytes of in as lowercase hex into out (size outlen; as many
 * whole bytes as fit, NUL-terminated) and returns out.  The audit log's
 * digests and the request ids are lowercase; OPENSSL_buf2hexstr() writes
 * uppercase with separators.
 */
char *ca_hex_encode(const unsigned char *in, size_t n, char *out,
                    size_t outlen);

/*
 * SHA-256 fetched once for the process, for digests in the request path:
 * with EVP_sha256() OpenSSL 3.0 looks the digest up by name on every use.
 * Falls back to EVP_sha256() when the fetch fails; never free it.
 */
const EVP_MD *ca_sha256(void);

/*
 * Reads every PEM certificate of bio (borrowed), in order.  Returns a new
 * stack (free with sk_X509_pop_free), or NULL when bio holds none, memory
 * runs out, or (strict set) a block other than the end of the data does
 * not read: the OpenSSL error queue then says why.  *count (may be NULL)
 * gets how many certificates were read.  Clears the queue otherwise.
 */
STACK_OF(X509) *ca_certs_read_pem(BIO *bio, int strict, int *count);

/*
 * Orders a CA chain as a CA web service may hand it out in any order: the
 * certificate no other one was issued by first (the issuing CA), then each
 * one's issuer up to the root, anything else after.  Takes in; returns a
 * new stack, or in itself when ordering fails.
 */
STACK_OF(X509) *ca_chain_order(STACK_OF(X509) *in);

/* Returns 1 when v is a non-empty string with no NUL or control byte. */
int ca_conf_clean_string(const json_t *v);

/*
 * Reads the first line (the password, line end dropped, at most max
 * bytes) of the file at path into a new *out (free with free).  Messages
 * name the key "password_file" and the file, never its content; the read
 * buffer is wiped.
 */
int ca_conf_read_password(const char *path, size_t max, char **out,
                          struct ca_err *err);

/* Returns "an object", "a string", ... for messages about v's type. */
const char *ca_conf_type_name(const json_t *v);

/*
 * Checks that every key of obj is in allowed (NULL-terminated); prefix
 * ("" or "profile.") makes err->key a path relative to the "ca" object.
 */
int ca_conf_check_keys(const json_t *obj, const char *prefix,
                       const char *const *allowed, struct ca_err *err);

/*
 * Reads the optional string at key into a new *out (free with free), NULL
 * when absent: non-empty, no NUL or control byte, at most max bytes.
 */
int ca_conf_string(const json_t *conf, const char *key, size_t max, char **out,
                   struct ca_err *err);

/* Reads the optional integer at key, from min to max; *out is left alone
 * when the key is absent. */
int ca_conf_int(const json_t *conf, const char *key, long min, long max,
                long *out, struct ca_err *err);

/*
 * Reads the optional file name at key, resolves it against conf_dir unless
 * absolute, and checks that it is a readable regular file (a FIFO or device
 * could hang estrad -t).  Sets a new *path (free with free), NULL when
 * absent.
 */
int ca_conf_file(const json_t *conf, const char *key, const char *conf_dir,
                 char **path, struct ca_err *err);

/*
 * One asynchronous operation on a backend instance.  ra creates it with
 * ca_call_new(), fills the request fields, and starts it with
 * ca_instance_start().  The backend reads the request fields, fills result,
 * and ends the call with ca_call_done() exactly once.
 */
struct ca_call {
	/* Request, set by ra, read-only for the backend. */
	enum ca_operation op;
	struct event_base *base; /* the worker's loop; borrowed */
	const char *rid;         /* request id, 16 hex digits; borrowed */
	const char *label;       /* label name; borrowed */
	X509_REQ *csr;           /* ENROLL/REENROLL: checked CSR; borrowed */
	X509 *renew_cert;        /* REENROLL: the certificate renewed */
	const char *cookie;      /* POLL: result.cookie of the PENDING call */
	void *log_context;       /* opaque to backends; passed to the hook */

	/* Answer, written by the backend before ca_call_done(). */
	struct ca_result result;

	/* Private to ca.c. */
	ca_call_done_fn done_fn;
	void *done_arg;
	struct event *done_event;
	int done_count;
};

/* Returns a new zeroed call (free with ca_call_free), or NULL. */
struct ca_call *ca_call_new(void);

/* Frees call and any chain left in its result.  NULL is a no-op. */
void ca_call_free(struct ca_call *call);

/*
 * Backends call this exactly once per call, from the call's event_base
 * thread, after filling call->result.  The completion callback runs later
 * from that loop (never inside the backend's starting function), so the
 * backend must not touch the call after this returns.  A second completion
 * is an invariant violation: it is logged as alert and aborts in debug
 * builds.
 */
void ca_call_done(struct ca_call *call);

/*
 * ca_call_done(), with the completion held back delay_ms milliseconds on
 * the call's loop (which goes on serving meanwhile).  For backends that
 * simulate a slow CA in benchmarks and tests (local's delay_ms).
 */
void ca_call_done_after(struct ca_call *call, unsigned int delay_ms);

/*
 * Convenience for backends: sets outcome, cause (printf-style), optional
 * hint, and completes the call with ca_call_done().
 */
void ca_call_fail(struct ca_call *call, enum ca_outcome outcome,
                  const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Logs through the hook with the call's context; call may be NULL.  Not
 * for the failure a call ends in: that goes into call->result (cause,
 * detail, hint, url), from which ra writes the request's one line.
 */
void ca_log(const struct ca_call *call, enum ca_log_level level,
            const char *component, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * Appends the OpenSSL error queue, drained, as " (SSL: reason; reason)" to
 * buf (of size len), the way nginx's ngx_ssl_error() does.  Leaves the
 * queue empty.  Shared by every layer that reports OpenSSL failures.
 */
void ca_ssl_errors_append(char *buf, size_t len);

/*
 * Formats buf (size len; NULL or 0 is allowed and writes nothing) from
 * fmt and, when ssl is set, appends the drained OpenSSL error queue as
 * ca_ssl_errors_append() does.  Empties the queue in every case, so no
 * stale error is blamed on a later call.
 */
void ca_error_set(char *buf, size_t len, int ssl, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Receives one certificate a backend presents to its CA on its own behalf
 * (see own_certs below).  role names what it is for: "agent" is the RA
 * agent certificate a backend logs in to its CA with.  cert is borrowed
 * for the call only; arg is the caller's.
 */
typedef void (*ca_own_cert_fn)(const char *role, const X509 *cert, void *arg);

/*
 * A CA backend.  Filled positionally in each plugin, member name trailing.
 */
struct ca_backend {
	const char *name;  /* config value of "backend"; component ca.NAME */
	unsigned int caps; /* CA_CAP_*; a missing operation answers 501 */
	size_t priv_size;  /* per-label state: zeroed, allocated and owned by
	                      ca_instance */

	/*
	 * ra/config.c calls it on the main thread while loading or reloading
	 * the configuration, once per label that uses this backend.  Borrows
	 * conf (the label's "ca" object) and conf_dir (relative paths are
	 * relative to it) for the call only; no network I/O.  Returns 0, or
	 * -1 with err filled (key and reason).  On -1, unconfigure is still
	 * called to release what was allocated.
	 */
	int (*configure)(void *priv, const json_t *conf, const char *conf_dir,
	                 struct ca_err *err);

	/*
	 * ra/request.c calls these on a worker thread.  They start the
	 * operation and return at once without blocking; they borrow call
	 * until they complete it with ca_call_done().  enroll serves both
	 * CA_OP_ENROLL and CA_OP_REENROLL (call->op says which).
	 */
	void (*enroll)(void *priv, struct ca_call *call);
	void (*poll)(void *priv, struct ca_call *call);    /* call->cookie */
	void (*cacerts)(void *priv, struct ca_call *call); /* result.chain */
	void (*health)(void *priv, struct ca_call *call);  /* --doctor */

	/*
	 * ra calls it at shutdown for a call still running; the backend
	 * completes the call with CA_CANCELLED (or its real outcome if that
	 * is already known).  May be NULL when no call can outlive its loop.
	 */
	void (*cancel)(void *priv, struct ca_call *call);

	/*
	 * ca_instance_free() calls it on the main thread after the instance's
	 * last call completed, to free what configure allocated in priv (not
	 * priv itself).  Must cope with a partly configured priv.
	 */
	void (*unconfigure)(void *priv);

	/*
	 * Optional.  est/listener.c calls it once per instance when the
	 * workers run, on the thread of worker 0 and with that worker's loop,
	 * for background work that belongs to no request (fetching and
	 * refreshing a CA chain, warning about an expiring agent
	 * certificate).  It must not block; the backend owns what it
	 * schedules on base until stop.
	 */
	void (*start)(void *priv, struct event_base *base);

	/*
	 * Optional.  Called on the same thread before that loop ends, to
	 * cancel what start scheduled (timers, transfers), so the loop can be
	 * freed.  Calls still running are completed by the backend with
	 * CA_CANCELLED.
	 */
	void (*stop)(void *priv);

	/*
	 * Optional; NULL when the backend presents no certificate of its
	 * own.  est/metrics.c calls it on the main thread for every /metrics
	 * scrape (the certificate expiry gauges), and est/doctor.c on its
	 * thread once per label (the validity check), each time between
	 * configure and unconfigure of the instance and possibly while its
	 * calls run on the workers.  So it reads only what configure set,
	 * takes no lock, does no I/O and blocks on nothing.  It calls
	 * fn(role, cert, arg) synchronously, once for each certificate the
	 * backend presents to its CA on its own behalf (none when it is
	 * configured without one), and returns; cert stays owned by the
	 * backend and is valid only during that fn call.
	 */
	void (*own_certs)(void *priv, ca_own_cert_fn fn, void *arg);
};

/*
 * est/listener.c calls it on each worker's thread after that worker's loop
 * ended (and after the backends' stop hooks), before the loop is freed:
 * releases what the shared CA I/O keeps per loop (libcurl multi handles
 * and their cached connections), and kills and reaps the child processes
 * still running on it (CA helpers, the authorizer) with their process
 * groups, so none outlives estrad.
 */
void ca_loop_shutdown(struct event_base *base);

/* Returns the backend registered under name, or NULL. */
const struct ca_backend *ca_backend_find(const char *name);

/* Returns the comma-separated names of all backends, for error messages. */
const char *ca_backend_names(void);

/* One configured backend for one label. */
struct ca_instance {
	const struct ca_backend *backend;
	void *priv;
};

/*
 * Returns a new instance of the backend named by conf's "backend" member,
 * configured from conf (free with ca_instance_free), or NULL with err.
 */
struct ca_instance *ca_instance_new(const json_t *conf, const char *conf_dir,
                                    struct ca_err *err);

/* Unconfigures and frees inst.  NULL is a no-op. */
void ca_instance_free(struct ca_instance *inst);

/*
 * Starts call->op on inst.  done_fn(call, arg) runs exactly once from
 * call->base.  Operations the backend lacks complete as CA_UNSUPPORTED.
 * Borrows inst (it must outlive the call) and call until completion.
 */
void ca_instance_start(struct ca_instance *inst, struct ca_call *call,
                       ca_call_done_fn done_fn, void *arg);

/* The backends estrad is built with. */
extern const struct ca_backend ca_local_backend;
extern const struct ca_backend ca_certsrv_backend;
extern const struct ca_backend ca_dogtag_backend;
extern const struct ca_backend ca_helper_backend;

#endif
