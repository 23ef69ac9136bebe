/*
 * auth_cert.h: TLS client certificate authentication against two distinct
 * trust stores (RFC 7030 §3.3.2): the explicit store (the EST CA chain,
 * certificates estrad issued) and the optional implicit store (third-party
 * CAs such as device manufacturers).  The TLS layer verifies no chain:
 * it accepts any certificate list within the tls.* bounds whose leaf key
 * the client proves it holds (est/listener.c); the chain is judged here
 * so that the answer can name the store and the verify reason.
 */
#ifndef ESTRAD_RA_AUTH_CERT_H
#define ESTRAD_RA_AUTH_CERT_H

#include <stddef.h>

#include <openssl/x509.h>

/* Which store validated a certificate. */
enum ra_trust_store { RA_TRUST_NONE, RA_TRUST_EXPLICIT, RA_TRUST_IMPLICIT };

/* Returns "explicit", "implicit" or "none". */
const char *ra_trust_store_name(enum ra_trust_store store);

/* The loaded trust stores; read-only and shared by all threads. */
struct ra_trust;

/*
 * Loads the PEM files; either path may be NULL for a store that is left
 * empty.  Every certificate of a file is a trust anchor, an intermediate
 * CA included (X509_V_FLAG_PARTIAL_CHAIN): a store that lists one issuing
 * CA accepts what that CA issued and nothing its siblings under the same
 * root did.  Returns a new trust (free with ra_trust_free) or NULL with the
 * file and OpenSSL reason in err.
 */
struct ra_trust *ra_trust_new(const char *explicit_path,
                              const char *implicit_path, char *err,
                              size_t errlen);

/* Frees trust.  NULL is a no-op. */
void ra_trust_free(struct ra_trust *trust);

/*
 * Verifies cert (with the untrusted chain the client sent, may be NULL)
 * against the explicit store, then the implicit one, requiring the
 * clientAuth purpose.  Returns the store that validated it, or
 * RA_TRUST_NONE with the OpenSSL verify reason of the explicit attempt in
 * why ("certificate has expired").  Borrows everything.  Thread-safe.
 */
enum ra_trust_store ra_trust_verify(const struct ra_trust *trust, X509 *cert,
                                    STACK_OF(X509) *chain, char *why,
                                    size_t whylen);

/* Bits of ra_trust_check.stores: the stores a label accepts for an op. */
#define RA_TRUST_BIT_EXPLICIT 0x1u
#define RA_TRUST_BIT_IMPLICIT 0x2u

/* A parsed CRL of the explicit store's CA; read-only, shared. */
struct ra_crl;

/* One verification, with the label's rules. */
struct ra_trust_check {
	/* In. */
	unsigned int stores;      /* RA_TRUST_BIT_*: stores that count */
	int require_eku;          /* the leaf must list clientAuth in its EKU */
	unsigned int grace_days;  /* an explicit leaf expired at most this many
	                             days ago still counts (re-enrollment) */
	const struct ra_crl *crl; /* revoked certificates, or NULL */

	/* Out. */
	enum ra_trust_store store;   /* the store that counted, or NONE */
	int crl_stale;               /* refused: crl is past its nextUpdate */
	enum ra_trust_store chained; /* the store the chain reached, even
	                                one the label does not accept */
	long expired_days; /* days since notAfter when accepted in grace,
	                      else -1 */
	int is_ra;         /* the leaf carries id-kp-cmcRA */
	/* NONE: why, with the OpenSSL verify reason when there is one
	 * ("certificate has expired"). */
	char why[256];
};

/*
 * Verifies cert (with the untrusted chain the client sent) against the
 * stores of check->stores, then applies the EKU, grace and revocation
 * rules.  A CA certificate (basicConstraints CA:TRUE, or keyCertSign
 * without it) is never a client's; a CRL past its nextUpdate refuses the
 * certificates it would judge (revocations since then are unknown).
 * Returns check->store.  Borrows everything.  Thread-safe.
 */
enum ra_trust_store ra_trust_verify_check(const struct ra_trust *trust,
                                          X509 *cert, STACK_OF(X509) *chain,
                                          struct ra_trust_check *check);

/*
 * Loads a CRL (PEM or DER) and verifies its signature with the CA of
 * explicit_path whose subject is the CRL's issuer.  Returns a new CRL
 * (free with ra_crl_free) or NULL with the reason in err.
 */
struct ra_crl *ra_crl_load(const char *path, const char *explicit_path,
                           char *err, size_t errlen);

/* Frees crl.  NULL is a no-op. */
void ra_crl_free(struct ra_crl *crl);

/* Says whether crl lists cert (same issuer and serial).  Thread-safe. */
int ra_crl_revoked(const struct ra_crl *crl, X509 *cert);

/*
 * Says whether crl is past its nextUpdate now (a CRL without one never
 * is), with that time (ISO 8601 UTC) in when.  Thread-safe.
 */
int ra_crl_stale(const struct ra_crl *crl, char *when, size_t whenlen);

/* The path crl was loaded from (borrowed, valid while crl is). */
const char *ra_crl_path(const struct ra_crl *crl);

/*
 * Returns 1 the first time it is called for crl and 0 afterwards, so that
 * a stale CRL is reported once per loaded configuration whichever thread
 * meets it first.  Thread-safe.
 */
int ra_crl_claim_warning(struct ra_crl *crl);

#endif
