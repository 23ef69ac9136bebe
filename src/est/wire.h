/*
 * wire.h: EST wire format helpers: base64 bodies in (any whitespace, optional
 * PEM armour) and out (wrapped per client), and media-type matching.
 * Decoding and encoding use OpenSSL's EVP base64 routines.
 */
#ifndef ESTRAD_EST_WIRE_H
#define ESTRAD_EST_WIRE_H

#include <stddef.h>

/* Exact media types estrad sends. */
#define EST_TYPE_CACERTS  "application/pkcs7-mime"
#define EST_TYPE_CERTS    "application/pkcs7-mime; smime-type=certs-only"
#define EST_TYPE_CSRATTRS "application/csrattrs"
#define EST_TYPE_PKCS10   "application/pkcs10"
#define EST_TYPE_TEXT     "text/plain"

/*
 * Decodes an EST request body: drops CR, LF, space and tab; when
 * accept_pem_armour is set, strips one "-----BEGIN ...-----" /
 * "-----END ...-----" pair around the payload; accepts missing "="
 * padding; rejects any other non-alphabet byte and a length of 1 mod 4.
 * Returns a new buffer (free with free()) holding the DER and sets *outlen,
 * or NULL with a short reason in err ("invalid base64: byte 0x2a at offset
 * 17").  An empty payload is an error too.
 */
unsigned char *est_wire_base64_decode(const char *in, size_t inlen,
                                      int accept_pem_armour, size_t *outlen,
                                      char *err, size_t errlen);

/*
 * Encodes der as base64.  wrap is 0 for a single line with no trailing
 * newline, or a column count (64, 76) for lines ending in LF, the last one
 * too.  Returns a new NUL-terminated string (free with free()) and sets
 * *outlen to its length, or NULL on allocation failure.
 */
char *est_wire_base64_encode(const unsigned char *der, size_t derlen, int wrap,
                             size_t *outlen);

/*
 * Returns 1 when a request Content-Type value names type_subtype, compared
 * case-insensitively, ignoring parameters and surrounding spaces
 * ("Application/PKCS10; charset=x" matches "application/pkcs10"), else 0.
 * NULL content_type never matches.
 */
int est_wire_media_type_is(const char *content_type, const char *type_subtype);

#endif
