/*
 * digest.h: the SHA-256 digest and lowercase hex encoding used for request
 * ids, audit digests and pending-store keys.
 */
#ifndef ESTRAD_CORE_DIGEST_H
#define ESTRAD_CORE_DIGEST_H

#include <stddef.h>

#include <openssl/evp.h>

/*
 * Writes the n bytes of in as lowercase hex into out (size outlen; as many
 * whole bytes as fit, NUL-terminated) and returns out.  The audit log's
 * digests and the request ids are lowercase; OPENSSL_buf2hexstr() writes
 * uppercase with separators.
 */
char *core_hex_encode(const unsigned char *in, size_t n, char *out,
                      size_t outlen);

/*
 * SHA-256 fetched once for the process, for digests in the request path:
 * with EVP_sha256() OpenSSL 3.0 looks the digest up by name on every use.
 * Falls back to EVP_sha256() when the fetch fails; never free it.
 */
const EVP_MD *core_sha256(void);

#endif
