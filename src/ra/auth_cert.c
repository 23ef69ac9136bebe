/*
 * auth_cert.c: verification of TLS client certificates against the explicit
 * and implicit trust stores, kept apart so the RA knows which one vouched
 * for the client.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "ra/auth_cert.h"

struct ra_trust {
	X509_STORE *explicit_store; /* NULL when not configured */
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
	/* An issuing CA listed without its root still anchors: that is how
	 * a label accepts its own CA's certificates and not those of the
	 * other CAs under the same root. */
	if (X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) != 1)
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
	if (explicit_path != NULL && (trust->explicit_store = ra_trust_load(
	                                  explicit_path, err, errlen)) == NULL)
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

	snprintf(why, whylen, "no trust store");
	if (trust->explicit_store != NULL &&
	    ra_trust_verify_one(trust->explicit_store, cert, chain, why,
	                        whylen))
		return RA_TRUST_EXPLICIT;
	if (trust->implicit_store != NULL &&
	    ra_trust_verify_one(trust->implicit_store, cert, chain,
	                        implicit_why, sizeof(implicit_why)))
		return RA_TRUST_IMPLICIT;
	return RA_TRUST_NONE;
}

struct ra_crl {
	X509_CRL *crl;
	char *path;        /* for the operator's log line */
	atomic_int warned; /* the stale warning was given */
};

/*
 * Verification callback that forgives an expired leaf and nothing else:
 * the chain above it must be valid now (grace window of re-enrollment).
 */
static int
ra_trust_forgive_leaf_expiry(int ok, X509_STORE_CTX *ctx)
{
	if (!ok &&
	    X509_STORE_CTX_get_error(ctx) == X509_V_ERR_CERT_HAS_EXPIRED &&
	    X509_STORE_CTX_get_error_depth(ctx) == 0)
		return 1;
	return ok;
}

/*
 * Verifies against one store, forgiving an expired leaf when
 * leaf_expired_ok is set.  Returns 1 when it chains, else 0 with the
 * reason in why and the OpenSSL error and depth in *error and *depth.
 */
static int
ra_trust_verify_at(X509_STORE *store, X509 *cert, STACK_OF(X509) *chain,
                   int leaf_expired_ok, int *error, int *depth, char *why,
                   size_t whylen)
{
	X509_STORE_CTX *ctx = NULL;
	int ok = 0;

	*error = X509_V_OK;
	*depth = -1;
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, cert, chain) != 1) {
		snprintf(why, whylen, "cannot set up verification");
		goto out;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	if (leaf_expired_ok)
		X509_STORE_CTX_set_verify_cb(ctx, ra_trust_forgive_leaf_expiry);
	if (X509_verify_cert(ctx) == 1) {
		ok = 1;
		goto out;
	}
	*error = X509_STORE_CTX_get_error(ctx);
	*depth = X509_STORE_CTX_get_error_depth(ctx);
	snprintf(why, whylen, "%s", X509_verify_cert_error_string(*error));
out:
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* Says whether cert's extendedKeyUsage lists nid. */
static int
ra_trust_has_eku(X509 *cert, int nid)
{
	EXTENDED_KEY_USAGE *eku;
	int i, found = 0;

	if ((eku = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL)) ==
	    NULL) {
		ERR_clear_error();
		return 0;
	}
	for (i = 0; i < sk_ASN1_OBJECT_num(eku); i++)
		if (OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == nid)
			found = 1;
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return found;
}

enum ra_trust_store
ra_trust_verify_check(const struct ra_trust *trust, X509 *cert,
                      STACK_OF(X509) *chain, struct ra_trust_check *check)
{
	char why[256] = "", iwhy[256] = "", when[32];
	int error = X509_V_OK, depth = -1, ierror, idepth, day_diff = 0,
	    sec_diff = 0;
	const ASN1_TIME *not_after = X509_get0_notAfter(cert);

	check->store = RA_TRUST_NONE;
	check->chained = RA_TRUST_NONE;
	check->expired_days = -1;
	check->is_ra = 0;
	check->crl_stale = 0;
	check->why[0] = '\0';
	if (trust->explicit_store == NULL)
		snprintf(why, sizeof(why),
		         "the label has no explicit store (trust.explicit_ca)");
	else if (ra_trust_verify_at(trust->explicit_store, cert, chain, 0,
	                            &error, &depth, why, sizeof(why)))
		check->chained = RA_TRUST_EXPLICIT;
	else if (error == X509_V_ERR_CERT_HAS_EXPIRED && depth == 0 &&
	         ASN1_TIME_diff(&day_diff, &sec_diff, not_after, NULL) == 1) {
		/* Expired: does it chain when only its own expiry is
		 * forgiven, and did it expire within the grace window? */
		if (ra_trust_verify_at(trust->explicit_store, cert, chain, 1,
		                       &ierror, &idepth, iwhy, sizeof(iwhy))) {
			if (check->grace_days > 0 &&
			    (long)day_diff * 86400 + sec_diff <=
			        (long)check->grace_days * 86400) {
				check->chained = RA_TRUST_EXPLICIT;
				check->expired_days = day_diff;
			} else
				snprintf(why, sizeof(why),
				         "certificate has expired %d days ago "
				         "(reenroll.grace_days %u)",
				         day_diff, check->grace_days);
		}
	}
	if (check->chained == RA_TRUST_NONE && trust->implicit_store != NULL &&
	    ra_trust_verify_at(trust->implicit_store, cert, chain, 0, &ierror,
	                       &idepth, iwhy, sizeof(iwhy)))
		check->chained = RA_TRUST_IMPLICIT;
	ERR_clear_error();
	if (check->chained == RA_TRUST_NONE) {
		snprintf(check->why, sizeof(check->why), "%s", why);
		goto out;
	}
	if ((check->chained == RA_TRUST_EXPLICIT &&
	     !(check->stores & RA_TRUST_BIT_EXPLICIT)) ||
	    (check->chained == RA_TRUST_IMPLICIT &&
	     !(check->stores & RA_TRUST_BIT_IMPLICIT))) {
		snprintf(check->why, sizeof(check->why),
		         "certificate is anchored in the %s store, which the "
		         "label does not accept here",
		         ra_trust_store_name(check->chained));
		goto out;
	}
	/* The clientAuth purpose checks a leaf's EKU, not whether it is a
	 * CA: a CA's key signs certificates, it is no client's identity. */
	if (X509_check_ca(cert) != 0) {
		snprintf(check->why, sizeof(check->why),
		         "certificate is a CA certificate (basicConstraints "
		         "CA:TRUE or keyCertSign), not a client's");
		goto out;
	}
	if (check->require_eku && !ra_trust_has_eku(cert, NID_client_auth)) {
		snprintf(check->why, sizeof(check->why),
		         "certificate lacks the clientAuth extended key usage "
		         "(require_client_auth_eku)");
		goto out;
	}
	if (check->crl != NULL && check->chained == RA_TRUST_EXPLICIT &&
	    ra_crl_stale(check->crl, when, sizeof(when))) {
		check->crl_stale = 1;
		snprintf(check->why, sizeof(check->why),
		         "the label's CRL is past its nextUpdate (%s): "
		         "revocations since then are unknown",
		         when);
		goto out;
	}
	if (check->crl != NULL && check->chained == RA_TRUST_EXPLICIT &&
	    ra_crl_revoked(check->crl, cert)) {
		snprintf(check->why, sizeof(check->why),
		         "certificate is revoked (crl)");
		goto out;
	}
	check->is_ra = check->chained == RA_TRUST_EXPLICIT &&
	               ra_trust_has_eku(cert, NID_cmcRA);
	check->store = check->chained;
out:
	return check->store;
}

struct ra_crl *
ra_crl_load(const char *path, const char *explicit_path, char *err,
            size_t errlen)
{
	struct ra_crl *crl = NULL, *rc = NULL;
	STACK_OF(X509_INFO) *infos = NULL;
	BIO *bio = NULL;
	EVP_PKEY *key;
	X509 *ca;
	int i, verified = 0;

	ERR_clear_error();
	if ((crl = calloc(1, sizeof(*crl))) == NULL ||
	    (crl->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	atomic_init(&crl->warned, 0);
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open", path);
		goto out;
	}
	if ((crl->crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) == NULL) {
		(void)BIO_reset(bio);
		ERR_clear_error();
		crl->crl = d2i_X509_CRL_bio(bio, NULL);
	}
	if (crl->crl == NULL) {
		snprintf(err, errlen, "%s: not a PEM or DER CRL", path);
		goto out;
	}
	BIO_free(bio);
	if (explicit_path == NULL) {
		snprintf(err, errlen,
		         "%s: a CRL needs the label's explicit store, and it "
		         "has none",
		         path);
		goto out;
	}
	if ((bio = BIO_new_file(explicit_path, "r")) == NULL ||
	    (infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "%s: cannot read", explicit_path);
		goto out;
	}
	for (i = 0; i < sk_X509_INFO_num(infos) && !verified; i++) {
		ca = sk_X509_INFO_value(infos, i)->x509;
		if (ca == NULL ||
		    X509_NAME_cmp(X509_get_subject_name(ca),
		                  X509_CRL_get_issuer(crl->crl)) != 0 ||
		    (key = X509_get0_pubkey(ca)) == NULL)
			continue;
		verified = X509_CRL_verify(crl->crl, key) == 1;
	}
	if (!verified) {
		snprintf(err, errlen,
		         "%s: no CA of %s issued this CRL (or its signature "
		         "does not verify)",
		         path, explicit_path);
		goto out;
	}
	rc = crl;
	crl = NULL;
out:
	ERR_clear_error();
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	ra_crl_free(crl);
	return rc;
}

void
ra_crl_free(struct ra_crl *crl)
{
	if (crl == NULL)
		return;
	X509_CRL_free(crl->crl);
	free(crl->path);
	free(crl);
}

int
ra_crl_revoked(const struct ra_crl *crl, X509 *cert)
{
	X509_REVOKED *rev = NULL;

	if (crl == NULL || X509_NAME_cmp(X509_get_issuer_name(cert),
	                                 X509_CRL_get_issuer(crl->crl)) != 0)
		return 0;
	return X509_CRL_get0_by_cert(crl->crl, &rev, cert) == 1;
}

int
ra_crl_stale(const struct ra_crl *crl, char *when, size_t whenlen)
{
	const ASN1_TIME *next;
	struct tm tm;

	when[0] = '\0';
	if (crl == NULL || (next = X509_CRL_get0_nextUpdate(crl->crl)) == NULL)
		return 0;
	if (ASN1_TIME_to_tm(next, &tm) != 1 ||
	    strftime(when, whenlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, whenlen, "unreadable date");
	/* An unreadable date counts as past: nothing says it is fresh. */
	return X509_cmp_current_time(next) <= 0;
}

const char *
ra_crl_path(const struct ra_crl *crl)
{
	return crl->path;
}

int
ra_crl_claim_warning(struct ra_crl *crl)
{
	return atomic_exchange(&crl->warned, 1) == 0;
}
