/*
 * request.h: one EST request as the registration authority sees it: who is
 * asking (authentication), whether they may (the re-enrollment identity
 * rule; label policy comes with its own module), the CA call, and what the
 * answer is (status, certificates, cause), with the audit record and the
 * error-log line that go with it.  est/ creates one per HTTP request.
 */
#ifndef ESTRAD_RA_REQUEST_H
#define ESTRAD_RA_REQUEST_H

#include <stddef.h>

#include <event2/event.h>
#include <openssl/x509.h>

#include "ca_plugins/ca.h"
#include "core/log.h"
#include "ra/auth_basic.h"
#include "ra/auth_cert.h"
#include "ra/config.h"
#include "ra/log.h"
#include "ra/pending.h"

/* What the TLS layer knows about the client; filled by est/. */
struct ra_peer {
	char client[64];         /* "ip:port" */
	X509 *cert;              /* leaf the client proved; borrowed or NULL */
	STACK_OF(X509) *chain;   /* what the client sent; borrowed or NULL */
	const char *tls_version; /* static, "TLSv1.2" */
	unsigned char tls_unique[64]; /* RFC 5929 on TLS <= 1.2 */
	size_t tls_unique_len;        /* 0 on TLS 1.3 */
	/* RFC 9266 tls-exporter (label "EXPORTER-Channel-Binding", empty
	 * context, 32 bytes) on TLS 1.3; 0 bytes on TLS <= 1.2. */
	unsigned char tls_exporter[32];
	size_t tls_exporter_len;
};

/*
 * Room for an identity: a client certificate's subject (RFC 2253) or a
 * Basic user name.  It is kept whole, never cut: a certificate whose
 * subject does not fit does not authenticate.
 */
#define RA_REQUEST_IDENTITY_MAX 2048

/*
 * Most bytes the subject and subjectAltNames of a CSR may take, escaped, in
 * the audit record.  A larger CSR is refused before any check, so that its
 * record, which never cuts them, stays bounded (with everything else it
 * holds, about 80 KiB).
 */
#define RA_REQUEST_AUDIT_CSR_MAX 65536

/* How the client authenticated. */
enum ra_auth_method {
	RA_AUTHED_NONE,
	RA_AUTHED_CERT,
	RA_AUTHED_BASIC,
	RA_AUTHED_CERT_BASIC /* both, on a "cert+basic" label */
};

/* Returns "none", "cert", "basic" or "cert+basic". */
const char *ra_auth_method_name(enum ra_auth_method method);

struct ra_request;

/* Called once when the request has its answer, on the worker's loop. */
typedef void (*ra_request_done_fn)(struct ra_request *req, void *arg);

struct ra_request {
	char rid[17];                   /* 16 hex digits */
	const struct ra_config *config; /* borrowed */
	const struct ra_trust *trust;   /* borrowed */
	const struct ra_label *label;   /* borrowed; NULL until routed */
	struct event_base *base;        /* the worker's loop; borrowed */
	const char *op_name;            /* EST operation name, static */
	struct ra_peer peer;
	struct ra_log_context log; /* points into this struct */

	/* Authentication result. */
	enum ra_auth_method auth_method;
	enum ra_trust_store cert_store;
	/* Subject or user, raw; escaped when logged. */
	char identity[RA_REQUEST_IDENTITY_MAX];
	char user[RA_BASIC_USER_MAX + 1]; /* Basic user authenticated, or "" */
	/* est/ found no room for the crypt(3) of the request's Basic
	 * credentials (ra_auth_basic_prefetch() answered -1). */
	int basic_busy;
	char cert_cn[256]; /* CN of the accepted client certificate, or "" */
	int is_ra;         /* an id-kp-cmcRA client on an RA-enabled label */
	long cert_expired_days; /* reenroll inside the grace window, or -1 */

	/* Authorization: how PoP was linked ("tls-unique", ...), what the
	 * extension allow-list dropped, and whether the checks and the
	 * external authorizer are done (ra_request_start runs again after
	 * the authorizer answers). */
	const char *pop_linked;
	char ext_dropped[256];
	int authorized;

	/* CA call and answer. */
	X509_REQ *csr;        /* owned; freed with the request */
	json_t *audit_csr;    /* owned: the audit record's "csr", or NULL */
	struct ca_call *call; /* owned while running */
	enum ca_operation ca_op;
	enum ca_outcome outcome;
	const char *outcome_name; /* ISSUED, REFUSED, ... */
	int status;               /* HTTP status to send */
	unsigned int retry_after; /* seconds, for 202, 429 and 503 */
	char cause[CA_CAUSE_MAX]; /* text/plain answer and log cause */
	STACK_OF(X509) *certs;    /* owned: what to send on 200 */
	long ca_ms;               /* CA call duration, -1 if none */
	int audited;              /* the audit record is written */
	struct timeval started;

	/* Pending requests (ra/pending.h): the record key of this
	 * enrollment, the request that started it when this is a retry
	 * ("" otherwise), the CA cookie polled, and the ca_wait timer. */
	char pending_key[RA_PENDING_KEY_MAX];
	char first_rid[17];
	char poll_cookie[CA_COOKIE_MAX];
	char log_extra[64];
	char ca_url[CA_URL_MAX]; /* the CA URL of the last call, for logs */
	struct event *wait_timer;

	ra_request_done_fn done_fn;
	void *done_arg;

	/* Optional: called once when the request is really freed (an
	 * orphaned request only after its CA call completed), on the thread
	 * that frees it.  est/ drops its reference to the configuration
	 * generation there, so that config, trust and CA instances outlive
	 * every request that borrows them across a SIGHUP reload. */
	void (*release_fn)(void *arg);
	void *release_arg;
};

/*
 * Returns a new request with a fresh random rid (free with
 * ra_request_free), or NULL.  Borrows config, trust and base, which must
 * outlive it.
 */
struct ra_request *ra_request_new(const struct ra_config *config,
                                  const struct ra_trust *trust,
                                  struct event_base *base);

/*
 * Frees req.  A request whose CA call is still running is not freed: it is
 * marked orphaned and freed when the call completes (no request is lost,
 * and the CA's answer is still audited).  NULL is a no-op.
 */
void ra_request_free(struct ra_request *req);

/* Sets the label (borrowed from req->config) and the op name for logs. */
void ra_request_set_label(struct ra_request *req, const struct ra_label *label,
                          const char *op_name);

/*
 * Authenticates the client for an enrollment on req->label: a client
 * certificate that chains to the explicit or implicit store, or HTTP Basic
 * (authorization is the header value or NULL), as the label allows.
 * Returns 0 when allowed, else sets status (401 or 403), cause and
 * outcome REFUSED, logs one notice line, and returns -1.  A 401 means the
 * caller must send WWW-Authenticate.  Every failed Basic check gets the
 * same 401 text (unknown user and wrong password are told apart in the
 * error log only); Basic credentials held back by the throttle
 * (ra/auth_throttle.h) get 429, or 503 when the crypt(3) queue is full,
 * with retry_after set.
 */
int ra_request_authenticate(struct ra_request *req, const char *authorization);

/*
 * Starts an operation on the label's CA: CA_OP_ENROLL and CA_OP_REENROLL
 * with csr (taken), or CA_OP_CACERTS.  For re-enrollment the identity rule
 * of RFC 7030 §4.2.2 is checked first.  done_fn(req, arg) runs exactly once
 * from req->base with status, cause, retry_after and certs set; it runs
 * from the loop even when the answer is known at once.  Failures are
 * logged (one line naming the cause) and enrollments audited before
 * done_fn runs.
 */
void ra_request_start(struct ra_request *req, enum ca_operation op,
                      X509_REQ *csr, ra_request_done_fn done_fn, void *arg);

/*
 * Refuses the request with status and a printf-style cause, logs one
 * line at level with hint, and sets outcome REFUSED (or the outcome that
 * fits a 5xx).  Used by est/ for wire-level errors too, so every error has
 * its log line.
 */
void ra_request_refuse(struct ra_request *req, int status,
                       enum core_log_level level, const char *component,
                       const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/*
 * Writes the audit record of an enrollment refused before any CA call
 * (authentication, media type, bad CSR).  Returns what ra_log_audit does.
 */
int ra_request_audit_refused(struct ra_request *req);

/* Milliseconds since the request was created. */
long ra_request_elapsed_ms(const struct ra_request *req);

#endif
