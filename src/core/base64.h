/*
 * base64.h: strict base64 decoding of text that arrives from the network
 * (EST request bodies, HTTP Basic credentials).  OpenSSL's EVP_DecodeBlock
 * does the decoding; this module decides first what is acceptable, since
 * EVP_DecodeBlock itself would decode glued-together bodies or stray bytes
 * into garbage without complaint.
 */
#ifndef ESTRAD_CORE_BASE64_H
#define ESTRAD_CORE_BASE64_H

#include <stddef.h>

/* Bytes out must have for len bytes of base64 text. */
#define CORE_BASE64_DECODED_MAX(len) ((len) / 4 * 3 + 3)

/*
 * Decodes bytes start to end of in (RFC 4648 alphabet) into out (size
 * outlen, at least CORE_BASE64_DECODED_MAX(end - start)).  With
 * skip_space, CR, LF, space and tab anywhere are ignored; otherwise they
 * are refused.  Missing '=' padding is tolerated, in whole or in part;
 * more than the last quantum needs, or data after it, is not.  Returns
 * the decoded length, or -1 with "invalid base64: REASON" in err (size
 * errlen; NULL or 0 writes nothing), offsets counted from in.  Scratch
 * copies are wiped, as the text may be a password.
 */
long core_base64_decode(const char *in, size_t start, size_t end,
                        int skip_space, unsigned char *out, size_t outlen,
                        char *err, size_t errlen);

#endif
