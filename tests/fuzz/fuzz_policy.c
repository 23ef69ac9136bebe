/*
 * fuzz_policy.c: policy evaluation on a parsed CSR.  The input is a DER
 * PKCS#10 request; est_csr_parse() checks it as estrad does, and a
 * request it refuses is still decoded with d2i_X509_REQ() so that the
 * evaluator also sees subjects, SANs and extensions whose signature a
 * mutation broke (ra_policy_check() reads fields only).  Each request goes
 * through three fixed policies built once with ra_policy_new(): the
 * defaults, a strict phones-like policy and one with identity templates
 * and an extension allow-list, as a plain client and as an RA, for a
 * label whose CA builds the certificate and for one it is forwarded to.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "core/error.h"
#include "est/csr.h"
#include "ra/policy.h"

#define FUZZ_POLICY_COUNT 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The policies of the test configuration and the README's examples. */
static const char *const fuzz_policy_json[FUZZ_POLICY_COUNT] = {
    NULL,
    "{\"cn\": [\"SEP[0-9A-F]{12}\"],"
    " \"san\": {\"dns\": [], \"ip\": [], \"email\": [], \"uri\": [],"
    " \"max\": 0},"
    " \"keys\": {\"rsa\": 2048, \"ec\": [\"P-256\", \"P-384\"]},"
    " \"signature\": [\"sha256\", \"sha384\", \"sha512\"],"
    " \"extensions\": {\"allow\": [\"subjectAltName\"],"
    " \"unlisted\": \"refuse\"}}",
    "{\"cn_equals\": \"identity\","
    " \"san\": {\"dns\": [\"[a-z0-9-]+\\\\.example\\\\.com\"],"
    " \"ip\": [\"192\\\\.0\\\\.2\\\\.[0-9]+\"],"
    " \"email\": [\".*@example\\\\.com\"], \"uri\": [\"urn:.*\"],"
    " \"other\": true, \"wildcard\": true, \"max\": 8},"
    " \"subject\": {\"max_attributes\": 8, \"max_bytes\": 512},"
    " \"keys\": {\"rsa\": 3072, \"ec\": [\"P-384\"], \"ed25519\": true},"
    " \"extensions\": {\"allow\": [\"subjectAltName\", \"keyUsage\","
    " \"extendedKeyUsage\"], \"eku\": [\"clientAuth\"],"
    " \"unlisted\": \"drop\"}}",
};

static struct ra_policy *fuzz_policies[FUZZ_POLICY_COUNT];

/* Builds the policies once; a policy that does not load is a bug here. */
static void
fuzz_policy_init(void)
{
	static int done;
	struct core_err err;
	json_error_t jerr;
	json_t *conf;
	int i;

	if (done)
		return;
	done = 1;
	for (i = 0; i < FUZZ_POLICY_COUNT; i++) {
		conf = NULL;
		if (fuzz_policy_json[i] != NULL &&
		    (conf = json_loads(fuzz_policy_json[i], 0, &jerr)) ==
		        NULL) {
			fprintf(stderr, "fuzz_policy: policy %d: %s\n", i,
			        jerr.text);
			abort();
		}
		if ((fuzz_policies[i] = ra_policy_new(conf, &err)) == NULL) {
			fprintf(stderr, "fuzz_policy: policy %d: %s: %s\n", i,
			        err.key, err.text);
			abort();
		}
		json_decref(conf);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ra_policy_verdict verdict;
	struct ra_policy_input in;
	const unsigned char *p = data;
	char err[512];
	X509_REQ *req;
	int i, mode;

	fuzz_policy_init();
	req = est_csr_parse(data, size, err, sizeof(err));
	if (req == NULL && size <= 65536)
		req = d2i_X509_REQ(NULL, &p, (long)size);
	ERR_clear_error();
	if (req == NULL)
		return 0;
	for (i = 0; i < FUZZ_POLICY_COUNT; i++) {
		for (mode = 0; mode < 4; mode++) {
			in.csr = req;
			in.user = i == 2 ? "seed1" : NULL;
			in.cert_cn =
			    mode & 1 ? "ra.example.com" : "SEP0011223344AA";
			in.is_ra = mode & 1;
			in.forwards_csr = mode >> 1;
			(void)ra_policy_check(fuzz_policies[i], &in, &verdict);
		}
	}
	X509_REQ_free(req);
	ERR_clear_error();
	return 0;
}
