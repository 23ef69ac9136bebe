/*
 * listener.h: estrad's TLS front end.  One SSL_CTX shared by all workers;
 * `workers` threads, each with its own event_base, evhttp and listening
 * sockets (SO_REUSEPORT, so the kernel spreads connections), and the main
 * thread handling signals.
 */
#ifndef ESTRAD_EST_LISTENER_H
#define ESTRAD_EST_LISTENER_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "ra/auth_cert.h"
#include "ra/config.h"

struct est_server;

/*
 * One configuration generation: the config, the client trust stores and
 * the server TLS context built from it, with the label's CA instances
 * inside the config.  The first comes from main() at start; every SIGHUP
 * that validates builds a new one and makes it current.  New connections
 * take the current TLS context; each request holds a reference to the
 * current generation for its whole life (its CA call included, even when
 * the client left), so a reload never pulls anything from under it.  A
 * generation that is no longer current is freed on worker 0's thread when
 * its last reference goes, after its backends' stop hooks.
 */
struct est_generation {
	const struct ra_config *config; /* read-only for everyone */
	const struct ra_trust *trust;
	SSL_CTX *ssl_ctx;
	unsigned long serial; /* 1 at start, one more per reload */

	/* Private to listener.c. */
	struct ra_config *own_config; /* NULL when borrowed from main() */
	struct ra_trust *own_trust;
	int refs;    /* atomic */
	int started; /* the backends' start hooks ran */
	struct est_server *server;
	struct est_generation *next; /* on the retired list */
};

/*
 * Returns the current generation with one more reference; the caller
 * drops it with est_generation_release().  Thread-safe.
 */
struct est_generation *est_server_acquire(struct est_server *server);

/*
 * Drops one reference to gen (a struct est_generation, void * so that it
 * fits ra_request.release_fn).  The last one of a generation that is no
 * longer current schedules its freeing on worker 0.  Thread-safe.
 */
void est_generation_release(void *gen);

/*
 * Builds the TLS context from config->tls (certificate chain, key, TLS 1.2
 * minimum, ciphers, session cache and tickets, client certificate request
 * with the explicit and implicit CA names, renegotiation off) and binds
 * every listen address once per worker, and the metrics address when
 * configured.  Borrows config and trust, which must outlive the server;
 * they make generation 1.  Returns a new server (free with
 * est_server_free) or NULL with the address or file and the cause in err.
 */
struct est_server *est_server_new(const struct ra_config *config,
                                  const struct ra_trust *trust, char *err,
                                  size_t errlen);

/*
 * Starts the worker threads and runs the main thread's loop until SIGTERM
 * or SIGINT: SIGHUP and SIGUSR1 reopen the log files, and SIGHUP then
 * reloads the configuration file as a new generation (refused with one
 * error line naming file, line, column and reason when anything in it
 * does not load; the generation in force keeps serving).  The same loop
 * serves the plain-HTTP metrics listener when configured.  Returns 0
 * after a clean stop, -1 if the workers could not start.
 */
int est_server_run(struct est_server *server);

/* Frees server (workers must have stopped).  NULL is a no-op. */
void est_server_free(struct est_server *server);

/*
 * Builds the server TLS context alone (used by est_server_new and by
 * `estrad -t`).  Returns a new SSL_CTX (free with SSL_CTX_free) or NULL
 * with the cause in err.
 */
SSL_CTX *est_listener_tls_context(const struct ra_config *config, char *err,
                                  size_t errlen);

/*
 * Returns the first label (borrowed from config) whose PoP linking caps
 * the listener at TLS 1.2: pop "required" without tls_exporter.  NULL
 * when none does.
 */
const struct ra_label *est_listener_tls12_cap(const struct ra_config *config);

#endif
