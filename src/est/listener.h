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
 * Builds the TLS context from config->tls (certificate chain, key, TLS 1.2
 * minimum, ciphers, session cache and tickets, client certificate request
 * with the explicit and implicit CA names, renegotiation off) and binds
 * every listen address once per worker.  Borrows config and trust, which
 * must outlive the server.  Returns a new server (free with
 * est_server_free) or NULL with the address or file and the cause in err.
 */
struct est_server *est_server_new(const struct ra_config *config,
                                  const struct ra_trust *trust, char *err,
                                  size_t errlen);

/*
 * Starts the worker threads and runs the main thread's signal loop until
 * SIGTERM or SIGINT: SIGHUP and SIGUSR1 reopen the log files.  Returns 0
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
