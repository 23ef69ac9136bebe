/*
 * metrics.h: estrad's counters and the plain-HTTP /metrics, /healthz and
 * /readyz endpoints.  Workers count through the est_metrics_* calls (a
 * short mutex-protected table, no I/O); the main thread renders the
 * Prometheus text exposition format on each scrape.
 */
#ifndef ESTRAD_EST_METRICS_H
#define ESTRAD_EST_METRICS_H

#include <stddef.h>

#include <event2/buffer.h>
#include <openssl/ssl.h>

#include "ra/config.h"

/*
 * Counts one answered EST request: estrad_requests_total{op,label,status};
 * for enrollments estrad_enrollments_total{backend,outcome}; when a CA
 * call was made (ca_ms >= 0) the backend latency histogram, and for a CA
 * call that did not issue or pend, estrad_backend_errors_total{backend,
 * cause} with the cause class taken from cause ("curl_28", "http_500",
 * "helper_exit_3", or the outcome).  It also records whether the label's
 * backend was last seen reachable, for /readyz.  Every argument is
 * borrowed and may be NULL ("" in the metric).  Thread-safe.
 */
void est_metrics_answer(const char *op, const char *label, int status,
                        const char *backend, const char *outcome, long ca_ms,
                        const char *cause);

/* Counts a completed TLS handshake.  Thread-safe. */
void est_metrics_tls_handshake(void);

/* Counts a failed TLS handshake by reason (borrowed).  Thread-safe. */
void est_metrics_tls_failure(const char *reason);

/* Adds delta (+1 or -1) to the open connection gauge.  Thread-safe. */
void est_metrics_connections(int delta);

/*
 * Counts a SIGHUP reload (ok set: applied, else refused) and, when
 * applied, forgets what /readyz knew about the old backends and notes the
 * time.  Generation 1 is the start: it sets the time and counts nothing.
 * Thread-safe.
 */
void est_metrics_reload(int ok, unsigned long generation);

/*
 * Writes the readiness verdict: 1 when every backend's last CA call was
 * not UNREACHABLE, else 0 with the first such label and cause in why
 * (size whylen).
 */
int est_metrics_ready(char *why, size_t whylen);

/*
 * Appends the whole exposition to out: the counters above plus gauges read
 * now from config (pending records in pending.dir; the tls.explicit_ca
 * and tls.implicit_ca certificates' notAfter; the notAfter of what each
 * label's backend presents to its CA, through its own_certs hook, e.g.
 * the Dogtag agent certificate) and from ctx (the server certificate and
 * the chain it sends).  Borrows everything; main thread.
 */
void est_metrics_render(struct evbuffer *out, const struct ra_config *config,
                        SSL_CTX *ctx);

#endif
