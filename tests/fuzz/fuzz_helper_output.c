/*
 * fuzz_helper_output.c: a certmonger CA helper's stdout through every
 * reader helper.c applies to it: the issued answer of exit 0 (PEM, DER,
 * PKCS#7 or JSON certificates, then the leaf put first), the FETCH-ROOTS
 * groups (text and JSON) and the cookie of exit 1 and 5, with a full-size
 * and a tiny cookie buffer.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "ca_plugins/helper_output.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *why = NULL;
	char names[512], cookie[256], tiny[4];
	STACK_OF(X509) *certs;

	if ((certs = ca_helper_output_certs(text, size)) != NULL) {
		(void)ca_helper_output_leaf_first(certs, NULL);
		sk_X509_pop_free(certs, X509_free);
	}
	if ((certs = ca_helper_output_roots(text, size, names,
	                                    sizeof(names))) != NULL)
		sk_X509_pop_free(certs, X509_free);
	if ((certs = ca_helper_output_roots(text, size, tiny, sizeof(tiny))) !=
	    NULL)
		sk_X509_pop_free(certs, X509_free);
	(void)ca_helper_output_cookie(text, size, cookie, sizeof(cookie), &why);
	(void)ca_helper_output_cookie(text, size, tiny, sizeof(tiny), &why);
	return 0;
}
