/*
 * limits.h: connection limits and the accounting of connections estrad
 * closes for cause.  Each accepted TLS connection gets a small record
 * attached to its SSL (ex_data) and a message callback that notes when
 * records come and go.  From it:
 *
 *  - limits.max_conns_per_client and limits.max_conns_per_worker: a
 *    connection over either limit is shut down at its first TLS record
 *    (the peer's address is known only then), before any handshake work;
 *  - when the SSL is freed, a connection that was silent for
 *    limits.timeout is counted as closed for its phase: TLS handshake not
 *    completed, request incomplete (head or body), or idle keep-alive.
 *
 * Each cause is logged once when it first happens (with the client) and
 * then as one line with a counter per window (EST_LIMITS_WINDOW seconds),
 * never once per connection: a thousand slow clients make two lines.
 */
#ifndef ESTRAD_EST_LIMITS_H
#define ESTRAD_EST_LIMITS_H

#include <event2/event.h>
#include <openssl/ssl.h>

#include "ra/config.h"

/* Seconds a cause's counter collects before its summary line. */
#define EST_LIMITS_WINDOW 10

/*
 * Attaches the accounting to ssl, a server connection the worker whose
 * loop is base has just accepted (evhttp's bevcb, worker thread), with
 * the limits of config (read now; borrowed for the call only).  Borrows
 * base, which must outlive ssl.  Failure only leaves the connection
 * unaccounted.  Thread-safe.
 */
void est_limits_conn_new(SSL *ssl, struct event_base *base,
                         const struct ra_config *config);

#endif
