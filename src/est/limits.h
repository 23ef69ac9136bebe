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
 * The bytes of each request head are checked as they come in, before
 * evhttp parses them (est/head.h), and est/conn.c refuses a request whose
 * head is ambiguous.
 *
 * A deadline that runs out shuts the socket down (evhttp then tears the
 * connection down) and names its limit.  Each cause is logged once when
 * it first happens (with the client) and then as one line with a counter
 * per window (EST_LIMITS_WINDOW seconds), never once per connection: a
 * thousand slow clients make two lines.
 */
#ifndef ESTRAD_EST_LIMITS_H
#define ESTRAD_EST_LIMITS_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "ra/config.h"

/* Seconds a cause's counter collects before its summary line. */
#define EST_LIMITS_WINDOW 10

/*
 * How long a listening socket stops accepting after accept(2) failed for
 * a reason other than a retry (out of descriptors, mostly).  libevent
 * would otherwise call accept(2) again at once, and fail again, for as
 * long as the condition lasts, with one warning line each time.
 */
#define EST_LIMITS_PAUSE_MS   250
#define EST_LIMITS_PAUSE_TEXT "250 ms"

/*
 * Descriptors kept beyond the client connections for estrad itself: log
 * files, listening sockets, each loop's own, the spare descriptor,
 * connections to CAs and helper processes' pipes.
 */
#define EST_LIMITS_NOFILE_RESERVE 256

/* The fewest connections per worker that the default may be lowered to. */
#define EST_LIMITS_MIN_PER_WORKER 16

/* The most descriptors asked for when the hard limit is unlimited: the
 * kernel's default fs.nr_open. */
#define EST_LIMITS_NOFILE_CEILING 1048576

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

/*
 * Starts the head checks (est/head.h) on input, the plaintext input
 * buffer of the bufferevent that owns ssl (evhttp's bevcb, right after
 * creating it, on the worker thread).  Borrows input, which must outlive
 * ssl (a bufferevent frees its SSL before its buffers).  Without the
 * accounting (a failed est_limits_conn_new()) it does nothing.
 */
void est_limits_conn_input(SSL *ssl, struct evbuffer *input);

/*
 * Returns why the head of the request est_limits_request_arrived() last
 * saw on ssl is refused (borrowed; valid until the next request arrives
 * or the connection ends), or NULL when it is not.  The connection's
 * framing is then in doubt: the answer must close it.
 */
const char *est_limits_request_refusal(SSL *ssl);

/*
 * accept(2) on the listening socket fd, whose loop is base, failed with
 * err, which is no reason to retry (est/listener.c pauses the listener
 * for EST_LIMITS_PAUSE_MS).  When the process or the system is out of
 * descriptors (EMFILE, ENFILE), the spare descriptor is given up for one
 * accept that takes the oldest waiting connection and closes it, so that
 * its client learns at once, and is taken again.  Counted and logged like
 * the closures above: one line when it first happens, then one per
 * window.  Thread-safe.
 */
void est_limits_accept_failed(int fd, struct event_base *base, int err);

/* Takes the spare descriptor unless it is held: at start, and when a
 * paused listener resumes.  Thread-safe. */
void est_limits_spare_take(void);

/*
 * Fits the process's descriptor limit (RLIMIT_NOFILE) to config's
 * connection limits for workers threads: it needs workers x
 * limits.max_conns_per_worker + EST_LIMITS_NOFILE_RESERVE.  Raises the
 * soft limit to that (the hard one too when estrad may); when the hard
 * limit is too low, lowers a default max_conns_per_worker to what fits
 * (down to EST_LIMITS_MIN_PER_WORKER), writing config, or fails.  With
 * max_conns_per_worker 0 the soft limit is raised to the hard one.  Logs
 * what it changed.  Returns 0, or -1 with the reason in err.  Main
 * thread, at start and at each reload (config is the new one).
 */
int est_limits_nofile(struct ra_config *config, int workers, char *err,
                      size_t errlen);

#endif
