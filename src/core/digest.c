/*
 * digest.c: SHA-256 fetched once, and lowercase hex.
 */
#include <pthread.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "core/digest.h"

char *
core_hex_encode(const unsigned char *in, size_t n, char *out, size_t outlen)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (outlen == 0)
		return out;
	for (i = 0; i < n && 2 * i + 2 < outlen; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * i] = '\0';
	return out;
}

static EVP_MD *ca_sha256_fetched;
static pthread_once_t ca_sha256_once = PTHREAD_ONCE_INIT;

static void
core_sha256_fetch(void)
{
	ca_sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
	ERR_clear_error();
}

const EVP_MD *
core_sha256(void)
{
	pthread_once(&ca_sha256_once, core_sha256_fetch);
	return ca_sha256_fetched != NULL ? ca_sha256_fetched : EVP_sha256();
}
