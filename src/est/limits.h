/*
 * limits.h: connection limits, phase deadlines and the accounting of
 * connections estrad closes for cause.  Each accepted TLS connection gets
 * a small record attached to its SSL (ex_data), a message callback that
 * notes when records come and go, and one deadline timer on its worker's
 * loop.  From them:
 *
 *  - limits.max_conns_per_client and limits.max_conns_per_worker: a
 *    connection over either limit is shut down right after its accept,
 *    before the first read from it, so that connections that never send
 *    a byte count too;
 *  - limits.handshake_timeout: the TLS handshake must be complete that
 *    long after the accept, however the client's bytes trickle in;
 *  - limits.request_timeout: a request (head and body) must have fully
 *    arrived that long after its first byte, however it trickles in;
 *    est/conn.c says when it has (est_limits_request_arrived()), so a
 *    request waiting for a slow CA is never cut by it;
 *  - limits.timeout stays evhttp's inactivity timeout (est/listener.c):
 *    when the SSL is freed, a connection that was silent for it is
 *    counted as closed for its phase: TLS handshake not completed,
 *    request incomplete (head or body), or idle keep-alive.
 *
 * A deadline that runs out shuts the socket down (evhttp then tears the
 * connection down) and names its limit.  Each cause is logged once when
 * it first happens (with the client) and then as one line with a counter
 * per window (EST_LIMITS_WINDOW seconds), never once per connection: a
 * thousand slow clients make two lines.
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
 * the limits of config (read now; borrowed for the call only), and starts
 * the handshake deadline.  The record and its timer are owned by ssl's
 * ex_data and freed with ssl.  Borrows base, which must outlive ssl.
 * Failure (out of memory) only leaves the connection unaccounted, or
 * without deadlines.  Thread-safe.
 */
void est_limits_conn_new(SSL *ssl, struct event_base *base,
                         const struct ra_config *config);

/*
 * Tells the accounting that a whole request (head and body) has arrived
 * on ssl: est/conn.c calls it on the worker thread that owns ssl, before
 * the request is worked on.  The request deadline stops; the next one
 * starts with the first byte of the next request, or when the answer
 * begins to go out if that byte came before.  Borrows ssl for the call; NULL,
 * or an ssl without the accounting (a failed est_limits_conn_new()), is
 * ignored.
 */
void est_limits_request_arrived(SSL *ssl);

#endif
