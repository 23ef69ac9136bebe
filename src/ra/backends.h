/*
 * backends.h: what the front end and the programs may do with the CA
 * backends of a loaded configuration, without reaching into them: start
 * and stop their background work, list the certificates they present on
 * their own behalf, and release what they keep per event loop.
 */
#ifndef ESTRAD_RA_BACKENDS_H
#define ESTRAD_RA_BACKENDS_H

#include <event2/event.h>
#include <openssl/x509.h>

#include "ra/config.h"

/*
 * Starts the background work (CA chain refresh, agent-certificate
 * checks) of every label's backend of config on base, or stops it again.
 * The listener calls both on the thread of the worker whose loop base is,
 * once per configuration generation: start when the workers run, stop
 * before that loop ends.  Borrows config and base.
 */
void ra_backends_start(const struct ra_config *config, struct event_base *base);
void ra_backends_stop(const struct ra_config *config);

/*
 * Receives one certificate a label's backend presents to its CA on its
 * own behalf: label and cert are borrowed for the call only; role says
 * what it is for ("agent"); backend is the backend's static name.
 */
typedef void (*ra_own_cert_fn)(const struct ra_label *label,
                               const char *backend, const char *role,
                               const X509 *cert, void *arg);

/*
 * Calls fn once for every certificate any label's backend of config
 * presents on its own behalf, synchronously, in label order.  Safe on any
 * thread while config is loaded (the backends read only what configure
 * set).
 */
void ra_backends_own_certs(const struct ra_config *config, ra_own_cert_fn fn,
                           void *arg);

/*
 * Makes the backends log through the error log, each line with the
 * context of the request whose call logs it.  main calls it once at start,
 * before any backend is configured.
 */
void ra_backends_log_to_error_log(void);

/* Returns the static name of label's backend ("local", ...). */
const char *ra_label_backend_name(const struct ra_label *label);

/*
 * A worker calls it after its loop ended and the backends' stop hooks
 * ran, before freeing base: releases what the CA I/O keeps per loop.
 */
void ra_backends_loop_shutdown(struct event_base *base);

#endif
