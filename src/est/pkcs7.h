/*
 * pkcs7.h: the DER bodies EST answers with: certs-only PKCS#7 (degenerate
 * CMS SignedData without signers) for cacerts and enrollment, and the
 * CsrAttrs SEQUENCE for csrattrs (RFC 8951 §4).
 */
#ifndef ESTRAD_EST_PKCS7_H
#define ESTRAD_EST_PKCS7_H

#include <stddef.h>

#include <openssl/x509.h>

/*
 * Builds a certs-only PKCS#7 holding certs in order.  Borrows certs.
 * Returns new DER (free with OPENSSL_free) and sets *len, or NULL.
 */
unsigned char *est_pkcs7_certs_only(STACK_OF(X509) *certs, size_t *len);

/*
 * Builds the DER CsrAttrs SEQUENCE from names: each entry is an OID in
 * dotted form or an OpenSSL short/long name ("challengePassword",
 * "ecdsa-with-SHA256"), emitted as a bare OID, or "KEYTYPE:PARAM" such as
 * "id-ecPublicKey:secp384r1" emitted as an Attribute whose values hold the
 * parameter OID.  Returns new DER (free with OPENSSL_free), sets *len, or
 * NULL with the offending entry named in err.  An empty list gives the
 * empty SEQUENCE (30 00).
 */
unsigned char *est_pkcs7_csrattrs(const char *const *names, size_t count,
                                  size_t *len, char *err, size_t errlen);

#endif
