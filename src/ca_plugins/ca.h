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

#include "core/error.h"
#include "core/log.h"

/*
 * What a CA call ended in.  ra maps each outcome to an EST answer (see
 * docs/architecture.md): ISSUED 200, PENDING 202, REJECTED 403 (400 when
 * csr_fault is set), UNREACHABLE 503, MISCONFIGURED 500, UNSUPPORTED 501.
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

/* Sizes of the fixed text fields of a result. */
#define CA_CAUSE_MAX  1024
#define CA_HINT_MAX   256
#define CA_URL_MAX    512
#define CA_DETAIL_MAX 1024
#define CA_COOKIE_MAX 256

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
typedef void (*ca_log_fn)(const struct ca_call *call, enum core_log_level level,
                          const char *component, const char *hint,
                          const char *message);

void ca_set_log_hook(ca_log_fn hook);

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
void ca_log(const struct ca_call *call, enum core_log_level level,
            const char *component, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

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
	                 struct core_err *err);

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
	 * Optional.  ra_backends_start() calls it once per instance when the
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
	 * own.  Through ca_instance_own_certs(), ra calls it on the main
	 * thread for every /metrics scrape (the certificate expiry gauges),
	 * and cmd/doctor.c on its
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
 * ra_backends_loop_shutdown() calls it on each worker's thread after that
 * worker's loop ended (and after the backends' stop hooks), before the
 * loop is freed:
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

/*
 * One configured backend for one label: the backend and its private state.
 * Opaque outside ca.c; ra reaches the backend only through the calls below.
 */
struct ca_instance;

/*
 * Returns a new instance of the backend named by conf's "backend" member,
 * configured from conf (free with ca_instance_free), or NULL with err.
 */
struct ca_instance *ca_instance_new(const json_t *conf, const char *conf_dir,
                                    struct core_err *err);

/* Unconfigures and frees inst.  NULL is a no-op. */
void ca_instance_free(struct ca_instance *inst);

/*
 * Starts call->op on inst.  done_fn(call, arg) runs exactly once from
 * call->base.  Operations the backend lacks complete as CA_UNSUPPORTED.
 * Borrows inst (it must outlive the call) and call until completion.
 */
void ca_instance_start(struct ca_instance *inst, struct ca_call *call,
                       ca_call_done_fn done_fn, void *arg);

/* Returns the backend's name ("local", ...), static. */
const char *ca_instance_backend_name(const struct ca_instance *inst);

/* Returns the backend's CA_CAP_* bits. */
unsigned int ca_instance_caps(const struct ca_instance *inst);

/*
 * Runs the backend's start hook (when it has one) for inst on base: see
 * struct ca_backend's start.  Called once per instance on the thread that
 * runs base, when the workers start.
 */
void ca_instance_loop_start(struct ca_instance *inst, struct event_base *base);

/* Runs the backend's stop hook, if any, on the same thread as start. */
void ca_instance_loop_stop(struct ca_instance *inst);

/*
 * Asks the backend to end call (started on inst and still running) early,
 * as struct ca_backend's cancel says.  A backend without cancel lets the
 * call run to its end: returns -1 then, 0 when cancel was asked for.
 */
int ca_instance_cancel(struct ca_instance *inst, struct ca_call *call);

/*
 * Calls fn(role, cert, arg) for each certificate the backend presents to
 * its CA on its own behalf, as struct ca_backend's own_certs says; nothing
 * when it has none.
 */
void ca_instance_own_certs(const struct ca_instance *inst, ca_own_cert_fn fn,
                           void *arg);

/* The backends estrad is built with. */
extern const struct ca_backend ca_local_backend;
extern const struct ca_backend ca_certsrv_backend;
extern const struct ca_backend ca_dogtag_backend;
extern const struct ca_backend ca_helper_backend;

#endif
