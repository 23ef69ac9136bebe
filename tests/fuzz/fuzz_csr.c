/*
 * fuzz_csr.c: DER PKCS#10 requests through est_csr_parse() and the
 * accessors the RA uses on an accepted request.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "est/csr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509_EXTENSION) *exts;
	char err[512], buf[512];
	X509_REQ *req;

	req = est_csr_parse(data, size, err, sizeof(err));
	if (req == NULL)
		return 0;
	est_csr_key_name(req, buf, sizeof(buf));
	est_csr_subject(req, buf, sizeof(buf));
	exts = est_csr_extensions(req);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return 0;
}
