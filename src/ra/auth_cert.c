/*
 * auth_cert.c: verification of TLS client certificates against the explicit
 * and implicit trust stores, kept apart so the RA knows which one vouched
 * for the client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "ra/auth_cert.h"

struct ra_trust {
	X509_STORE *explicit_store;
	X509_STORE *implicit_store; /* NULL when not configured */
};

const char *
ra_trust_store_name(enum ra_trust_store store)
{
	switch (store) {
	case RA_TRUST_EXPLICIT:
		return "explicit";
	case RA_TRUST_IMPLICIT:
		return "implicit";
	default:
		return "none";
	}
}

static X509_STORE *
ra_trust_load(const char *path, char *err, size_t errlen)
{
	X509_STORE *store = NULL, *rc = NULL;
	unsigned long code;

	if ((store = X509_STORE_new()) == NULL)
		goto fail;
	if (X509_STORE_load_file(store, path) != 1)
		goto fail;
	rc = store;
	store = NULL;
	goto out;
fail:
	code = ERR_peek_last_error();
	snprintf(err, errlen, "cannot load trust store %s (SSL: %s)", path,
	         code != 0 ? ERR_reason_error_string(code) : "no certificates");
out:
	ERR_clear_error();
	X509_STORE_free(store);
	return rc;
}

struct ra_trust *
ra_trust_new(const char *explicit_path, const char *implicit_path, char *err,
             size_t errlen)
{
	struct ra_trust *trust = NULL, *rc = NULL;

	if ((trust = calloc(1, sizeof(*trust))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((trust->explicit_store =
	         ra_trust_load(explicit_path, err, errlen)) == NULL)
		goto out;
	if (implicit_path != NULL && (trust->implicit_store = ra_trust_load(
	                                  implicit_path, err, errlen)) == NULL)
		goto out;
	rc = trust;
	trust = NULL;
out:
	ra_trust_free(trust);
	return rc;
}

void
ra_trust_free(struct ra_trust *trust)
{
	if (trust == NULL)
		return;
	X509_STORE_free(trust->explicit_store);
	X509_STORE_free(trust->implicit_store);
	free(trust);
}

/* Returns 1 when cert chains to store for client authentication. */
static int
ra_trust_verify_one(X509_STORE *store, X509 *cert, STACK_OF(X509) *chain,
                    char *why, size_t whylen)
{
	X509_STORE_CTX *ctx = NULL;
	int ok = 0;

	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, cert, chain) != 1) {
		snprintf(why, whylen, "cannot set up verification");
		goto out;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	if (X509_verify_cert(ctx) == 1) {
		ok = 1;
		goto out;
	}
	snprintf(why, whylen, "%s",
	         X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
out:
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

enum ra_trust_store
ra_trust_verify(const struct ra_trust *trust, X509 *cert, STACK_OF(X509) *chain,
                char *why, size_t whylen)
{
	char implicit_why[256];

	if (ra_trust_verify_one(trust->explicit_store, cert, chain, why,
	                        whylen))
		return RA_TRUST_EXPLICIT;
	if (trust->implicit_store != NULL &&
	    ra_trust_verify_one(trust->implicit_store, cert, chain,
	                        implicit_why, sizeof(implicit_why)))
		return RA_TRUST_IMPLICIT;
	return RA_TRUST_NONE;
}
