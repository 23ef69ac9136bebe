/*
 * fuzz_tls_hello.c: the bytes a client opens a TLS connection with, into
 * a server SSL of estrad's own context (est_listener_tls_context(): TLS
 * 1.2 minimum, no renegotiation, no compression, a CertificateRequest
 * naming the trust stores, the verify and info callbacks).  The input is
 * cut into records' worth of writes, each followed by a handshake step,
 * so that a ClientHello split over several reads is parsed too.
 *
 * The server's key, certificate and configuration are made once in a
 * temporary directory on the first input (fuzz_pki.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "est/listener.h"
#include "ra/config.h"

#include "fuzz_pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static SSL_CTX *fuzz_tls_ctx;

static void
fuzz_tls_init(void)
{
	static const char conf[] =
	    "{\"tls\": {\"cert\": \"ca.pem\", \"key\": \"ca.key\",\n"
	    "  \"explicit_ca\": \"ca.pem\", \"implicit_ca\": \"ca.pem\"},\n"
	    " \"labels\": {\"default\": {\"auth\": [\"cert\"],\n"
	    "  \"ca\": {\"backend\": \"local\", \"cert\": \"ca.pem\",\n"
	    "  \"key\": \"ca.key\"}}}}\n";
	const char *dir = fuzz_pki_mkdtemp("fuzz_tls");
	char path[128], err[1024];
	struct ra_config *config;

	fuzz_pki_make(dir);
	fuzz_pki_write_file(dir, "estrad.json", conf);
	snprintf(path, sizeof(path), "%s/estrad.json", dir);
	if ((config = ra_config_load(path, err, sizeof(err))) == NULL)
		fuzz_pki_die(err);
	if ((fuzz_tls_ctx =
	         est_listener_tls_context(config, err, sizeof(err))) == NULL)
		fuzz_pki_die(err);
	/* The context keeps what it needs; the configuration is done. */
	ra_config_free(config);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[16384];
	size_t off = 0, chunk;
	BIO *in, *wbio;
	SSL *ssl;
	int step;

	if (fuzz_tls_ctx == NULL)
		fuzz_tls_init();
	if ((ssl = SSL_new(fuzz_tls_ctx)) == NULL)
		return 0;
	in = BIO_new(BIO_s_mem());
	wbio = BIO_new(BIO_s_mem());
	if (in == NULL || wbio == NULL) {
		BIO_free(in);
		BIO_free(wbio);
		SSL_free(ssl);
		return 0;
	}
	SSL_set_bio(ssl, in, wbio);
	SSL_set_accept_state(ssl);
	/* The first byte picks the write size, so that records arrive
	 * whole, split or several at once. */
	chunk = size > 0 ? (size_t)data[0] * 8 + 1 : 1;
	if (chunk < size / 48 + 1)
		chunk = size / 48 + 1;
	for (step = 0; step < 64; step++) {
		if (off < size) {
			size_t n = size - off < chunk ? size - off : chunk;

			if (BIO_write(in, data + off, (int)n) != (int)n)
				break;
			off += n;
		}
		if (SSL_do_handshake(ssl) == 1) {
			/* Whatever follows the handshake is read as
			 * application data, as evhttp would. */
			while (SSL_read(ssl, out, sizeof(out)) > 0)
				;
		}
		while (BIO_read(wbio, out, sizeof(out)) > 0)
			;
		if (off >= size && SSL_get_error(ssl, 0) != SSL_ERROR_WANT_READ)
			break;
		if (off >= size && step > 2)
			break;
	}
	SSL_free(ssl);
	ERR_clear_error();
	return 0;
}
