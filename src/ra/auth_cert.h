/*
 * auth_cert.h: TLS client certificate authentication against two distinct
 * trust stores (RFC 7030 §3.3.2): the explicit store (the EST CA chain,
 * certificates estrad issued) and the optional implicit store (third-party
 * CAs such as device manufacturers).  The TLS layer accepts any
 * certificate whose key the client proves it holds; the chain is judged
 * here so that the answer can name the store and the verify reason.
 */
#ifndef ESTRAD_RA_AUTH_CERT_H
#define ESTRAD_RA_AUTH_CERT_H

#include <stddef.h>

#include <openssl/x509.h>

/* Which store validated a certificate. */
enum ra_trust_store { RA_TRUST_NONE, RA_TRUST_EXPLICIT, RA_TRUST_IMPLICIT };

/* Returns "explicit", "implicit" or "none". */
const char *ra_trust_store_name(enum ra_trust_store store);

/* The loaded trust stores; read-only and shared by all threads. */
struct ra_trust;

/*
 * Loads the PEM files (implicit_path may be NULL).  Returns a new trust
 * (free with ra_trust_free) or NULL with the file and OpenSSL reason in err.
 */
struct ra_trust *ra_trust_new(const char *explicit_path,
                              const char *implicit_path, char *err,
                              size_t errlen);

/* Frees trust.  NULL is a no-op. */
void ra_trust_free(struct ra_trust *trust);

/*
 * Verifies cert (with the untrusted chain the client sent, may be NULL)
 * against the explicit store, then the implicit one, requiring the
 * clientAuth purpose.  Returns the store that validated it, or
 * RA_TRUST_NONE with the OpenSSL verify reason of the explicit attempt in
 * why ("certificate has expired").  Borrows everything.  Thread-safe.
 */
enum ra_trust_store ra_trust_verify(const struct ra_trust *trust, X509 *cert,
                                    STACK_OF(X509) *chain, char *why,
                                    size_t whylen);

#endif
