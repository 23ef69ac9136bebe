/*
 * helper_output.h: readers of a certmonger CA helper's stdout, used by
 * helper.c and by tests/fuzz/fuzz_helper_output.c.  Pure functions: no
 * I/O, no state, any thread.
 */
#ifndef ESTRAD_CA_HELPER_OUTPUT_H
#define ESTRAD_CA_HELPER_OUTPUT_H

#include <stddef.h>

#include <openssl/x509.h>

/*
 * Reads the certificates of an issued answer: PEM
 * certificates, PEM PKCS#7, DER certificate or PKCS#7, or certmonger's
 * JSON {"certificate": PEM, "chain": [{"certificate": PEM}]}.  Borrows
 * text (len bytes, need not be NUL-terminated).  Returns a new stack (free
 * with sk_X509_pop_free), empty when nothing was readable, NULL when out
 * of memory.
 */
STACK_OF(X509) *ca_helper_output_certs(const char *text, size_t len);

/*
 * Moves the issued certificate to the front of certs: the one with the
 * CSR's public key, or without a CSR (NULL) the first that is no CA.
 * Borrows both.  Returns 0, or -1 when a CSR was given and no certificate
 * carries its key.
 */
int ca_helper_output_leaf_first(STACK_OF(X509) *certs, X509_REQ *csr);

/*
 * Reads FETCH-ROOTS output: nickname lines and PEM blocks in
 * three groups separated by empty lines, or the JSON form.  Borrows text.
 * Returns a new stack, intermediates first (free with sk_X509_pop_free),
 * or NULL when out of memory; sets names (size nameslen, at least 1) to
 * the nicknames for the log.
 */
STACK_OF(X509) *ca_helper_output_roots(const char *text, size_t len,
                                       char *names, size_t nameslen);

/*
 * Copies the cookie of exit 1 or 5 into buf (size buflen) as certmonger
 * hands it back.  Borrows text.  Returns 0, or -1 with *why set to a
 * static phrase when it does not fit or holds bytes a pending record
 * cannot keep.
 */
int ca_helper_output_cookie(const char *text, size_t len, char *buf,
                            size_t buflen, const char **why);

#endif
