/*
 * csr.h: PKCS#10 certificate signing requests as EST receives them: DER
 * parsing and the syntax, key and signature checks every request must pass
 * before the RA looks at it.  All ASN.1 work is OpenSSL's.
 */
#ifndef ESTRAD_EST_CSR_H
#define ESTRAD_EST_CSR_H

#include <stddef.h>

#include <openssl/x509.h>

/*
 * Parses der as a PKCS#10 request and checks it: the whole buffer is one
 * request (no trailing bytes), version 1, the signature verifies with the
 * request's own key (proof of possession), the signature algorithm is not
 * MD5 or SHA-1 based, the key is RSA of at least 2048 bits, EC on
 * P-256 or P-384 named by OID (not explicit parameters), or Ed25519, and
 * the request has at most one extension request attribute
 * (extensionRequest or msExtReq) with one value that decodes and asks for
 * no extension twice.  Returns a new request (free with
 * X509_REQ_free) or NULL with a one-line reason in err such as
 * "CSR signature does not verify (SSL: ...)" or
 * "CSR key RSA-1024 is too weak: at least 2048 bits needed".
 */
X509_REQ *est_csr_parse(const unsigned char *der, size_t len, char *err,
                        size_t errlen);

/*
 * Describes the request's key for logs and audit, e.g. "RSA-2048",
 * "EC-P-256", "Ed25519".  Writes into buf (size len) and returns buf.
 */
const char *est_csr_key_name(X509_REQ *req, char *buf, size_t len);

/*
 * Writes the request's subject as a one-line RFC 2253 string into buf
 * (size len), "" when empty, and returns buf.
 */
const char *est_csr_subject(X509_REQ *req, char *buf, size_t len);

/*
 * Returns the request's requested extensions (free with
 * sk_X509_EXTENSION_pop_free(..., X509_EXTENSION_free)), or NULL when it
 * has none.
 */
STACK_OF(X509_EXTENSION) *est_csr_extensions(X509_REQ *req);

#endif
