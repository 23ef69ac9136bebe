/*
 * csr.c: PKCS#10 request parsing and checks (see csr.h).  OpenSSL does all
 * ASN.1 and signature work; this file decides what estrad accepts and says
 * why it refuses, with OpenSSL's own reason appended where it has one.
 */
/*
 * The legacy RSA and EC public-key decoders below are deprecated in
 * OpenSSL 3.0 but not removed; see csr_decode_fast() for why they are used.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "core/error.h"
#include "est/csr.h"

/* OpenSSL 3.0 names the only PKCS#10 version; older headers did not. */
#ifndef X509_REQ_VERSION_1
#define X509_REQ_VERSION_1 0
#endif

/* Smallest RSA modulus accepted (NIST SP 800-131A). */
#define CSR_RSA_MIN_BITS 2048

/* Room for a key, curve or algorithm name in the messages below. */
#define CSR_NAME_MAX 80

/* What csr_key_judge() thinks of a request's public key. */
enum csr_key_verdict {
	CSR_KEY_OK,           /* RSA >= 2048, EC P-256/P-384 or Ed25519 */
	CSR_KEY_WEAK_RSA,     /* rsaEncryption with a short modulus */
	CSR_KEY_BAD_CURVE,    /* EC on another or an explicit curve */
	CSR_KEY_WEAK_POINT,   /* EC infinity, Ed25519 of small order */
	CSR_KEY_BAD_EXPONENT, /* RSA with e = 1 or an even e */
	CSR_KEY_BAD_TYPE      /* any other algorithm */
};

/*
 * Returns 1 when the EC key pkey is the point at infinity (an encoding of
 * one 0x00 byte decodes to it, on the curve as far as decoding goes).  For
 * that key ECDSA's check passes for a signature anyone can make (r = x(kG),
 * s = e/k), so a request with it proves nothing, and its certificate would
 * let anyone sign.  Fails closed: a key that cannot be read counts as one.
 */
static int
csr_ec_is_infinity(EVP_PKEY *pkey)
{
	const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(pkey);
	const EC_POINT *point;
	const EC_GROUP *group;

	if (ec == NULL || (group = EC_KEY_get0_group(ec)) == NULL ||
	    (point = EC_KEY_get0_public_key(ec)) == NULL)
		return 1;
	return EC_POINT_is_at_infinity(group, point) == 1;
}

/*
 * Returns 1 when the RSA key pkey has a public exponent of 1 (s^1 mod n is
 * s: the padded digest is its own signature, no private key needed) or an
 * even one (no RSA key has it; RFC 8017 wants e odd).  Fails closed.
 */
static int
csr_rsa_bad_exponent(EVP_PKEY *pkey)
{
	const RSA *rsa = EVP_PKEY_get0_RSA(pkey);
	const BIGNUM *e = rsa != NULL ? RSA_get0_e(rsa) : NULL;

	return e == NULL || BN_is_one(e) || !BN_is_odd(e);
}

/*
 * Returns 1 when the Ed25519 key pkey is a point of small order: for those
 * the check [S]B = R + [h]A holds for signatures made without any private
 * key (OpenSSL 3.0 verifies them).  The encodings are the eight points of
 * order 1, 2, 4 and 8 and their non-canonical forms y + p, compared without
 * the sign bit of x (the list libsodium refuses).  Fails closed.
 */
static int
csr_ed25519_small_order(EVP_PKEY *pkey)
{
	static const unsigned char small_order[][32] = {
	    /* y = 0 (order 4) */
	    {0x00},
	    /* y = 1, the neutral element (order 1) */
	    {0x01},
	    /* order 8 */
	    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
	     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
	     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	    /* order 8 */
	    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
	     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
	     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
	    /* y = p - 1 (order 2) */
	    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	    /* y = p, that is 0, not canonical */
	    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	    /* y = p + 1, that is 1, not canonical */
	    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	};
	unsigned char pub[32];
	size_t len = sizeof(pub), i;

	if (EVP_PKEY_get_raw_public_key(pkey, pub, &len) != 1 ||
	    len != sizeof(pub))
		return 1;
	for (i = 0; i < sizeof(small_order) / sizeof(small_order[0]); i++)
		if (memcmp(pub, small_order[i], 31) == 0 &&
		    (pub[31] & 0x7f) == small_order[i][31])
			return 1;
	return 0;
}

/*
 * Names pkey ("RSA-2048", "EC-P-256", "Ed25519", "DSA") into buf and judges
 * it against estrad's key policy.  Works between an error-queue mark and
 * its pop, so a failed curve lookup leaves the caller's queue as it was.
 */
static enum csr_key_verdict
csr_key_judge(EVP_PKEY *pkey, char *buf, size_t len)
{
	enum csr_key_verdict verdict = CSR_KEY_BAD_TYPE;
	char group[CSR_NAME_MAX];
	const char *nist, *type;
	int bits, nid;

	ERR_set_mark();
	bits = EVP_PKEY_get_bits(pkey);
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		snprintf(buf, len, "RSA-%d", bits);
		verdict = bits < CSR_RSA_MIN_BITS      ? CSR_KEY_WEAK_RSA
		          : csr_rsa_bad_exponent(pkey) ? CSR_KEY_BAD_EXPONENT
		                                       : CSR_KEY_OK;
	} else if (EVP_PKEY_is_a(pkey, "RSA-PSS")) {
		/*
		 * An id-RSASSA-PSS key is its own SubjectPublicKeyInfo
		 * type, which the CAs behind estrad do not all issue for.
		 */
		snprintf(buf, len, "RSA-PSS-%d", bits);
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		verdict = CSR_KEY_BAD_CURVE;
		if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group),
		                             NULL)) {
			/* Explicit curve parameters: no name to trust. */
			snprintf(buf, len, "EC-explicit-%d", bits);
			goto out;
		}
		/* Providers report "prime256v1"; accept "P-256" as well. */
		if ((nid = EC_curve_nist2nid(group)) == NID_undef)
			nid = OBJ_txt2nid(group);
		nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
		snprintf(buf, len, "EC-%s", nist != NULL ? nist : group);
		if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1)
			verdict = csr_ec_is_infinity(pkey) ? CSR_KEY_WEAK_POINT
			                                   : CSR_KEY_OK;
	} else if (EVP_PKEY_is_a(pkey, "ED25519")) {
		snprintf(buf, len, "Ed25519");
		verdict = csr_ed25519_small_order(pkey) ? CSR_KEY_WEAK_POINT
		                                        : CSR_KEY_OK;
	} else if (EVP_PKEY_is_a(pkey, "ED448")) {
		snprintf(buf, len, "Ed448");
	} else {
		type = EVP_PKEY_get0_type_name(pkey);
		snprintf(buf, len, "%s", type != NULL ? type : "unknown");
	}
out:
	ERR_pop_to_mark();
	return verdict;
}

/*
 * Returns 1 for digests whose collision resistance is broken or never
 * existed.  A CA signs what the request asks for, and proof of possession
 * over a forgeable digest proves nothing.
 */
static int
csr_md_is_weak(int md_nid)
{
	switch (md_nid) {
	case NID_md2:
	case NID_md4:
	case NID_md5:
	case NID_md5_sha1:
	case NID_mdc2:
	case NID_sha:
	case NID_sha1:
		return 1;
	default:
		return 0;
	}
}

/*
 * Checks the signature algorithm before any public-key work: it must be
 * one OpenSSL knows and its digest must not be MD5 or SHA-1 based.
 * RSASSA-PSS names its digest in the parameters, where an absent
 * hashAlgorithm means SHA-1 (RFC 4055 §3.1).  Returns 0, or -1 with err set.
 */
static int
csr_check_sigalg(X509_REQ *req, char *err, size_t errlen)
{
	const ASN1_BIT_STRING *sig = NULL;
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *aobj = NULL;
	const void *pval = NULL;
	RSA_PSS_PARAMS *pss = NULL;
	char name[CSR_NAME_MAX];
	int sig_nid, md_nid, pk_nid, ptype, rc = -1;

	X509_REQ_get0_signature(req, &sig, &alg);
	X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
	if (aobj == NULL || OBJ_obj2txt(name, sizeof(name), aobj, 0) <= 0)
		snprintf(name, sizeof(name), "(none)");

	sig_nid = X509_REQ_get_signature_nid(req);
	if (sig_nid == NID_undef ||
	    !OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid)) {
		core_error_set(err, errlen, 0,
		               "CSR signature algorithm %s is not supported",
		               name);
		goto out;
	}

	if (sig_nid == NID_rsassaPss) {
		if (ptype == V_ASN1_SEQUENCE)
			pss = ASN1_item_unpack(pval,
			                       ASN1_ITEM_rptr(RSA_PSS_PARAMS));
		if (pss == NULL) {
			core_error_set(
			    err, errlen, 1,
			    "CSR RSASSA-PSS signature parameters are "
			    "malformed");
			goto out;
		}
		md_nid = pss->hashAlgorithm == NULL
		             ? NID_sha1
		             : OBJ_obj2nid(pss->hashAlgorithm->algorithm);
	}

	if (csr_md_is_weak(md_nid)) {
		core_error_set(
		    err, errlen, 0,
		    "CSR signature algorithm %s is refused: %s digests are "
		    "too weak, SHA-256 or better needed",
		    name, OBJ_nid2sn(md_nid));
		goto out;
	}
	rc = 0;
out:
	RSA_PSS_PARAMS_free(pss);
	return rc;
}

/*
 * Fast decoding of RSA and EC requests.
 *
 * OpenSSL 3.0's d2i_X509_REQ() decodes the request's public key through
 * the provider decoders, and sets up a new decoder context for every key:
 * about 0.1 ms of look-ups under read-write locks, 40% of estrad's CPU for
 * an enrollment on a kept-alive connection (make bench, perf).  OpenSSL 3.2
 * caches these contexts; Debian 12 ships 3.0.  So for the two key types
 * nearly every client uses, the request is parsed with the thread's default
 * library context switched to an empty one (no decoder is found, the key
 * is left undecoded), and the key is decoded by the legacy RSA and EC
 * decoders, which need no look-up, then set on the request.  The request
 * is kept only when it re-encodes to exactly the bytes received, so that
 * the signature is checked over, and backends are sent, what the client
 * signed; anything else (other key types, non-DER input) takes the normal
 * path with its usual errors.
 */

/* A library context without providers; NULL when it cannot be made. */
static OSSL_LIB_CTX *csr_empty_ctx;
static pthread_once_t csr_empty_once = PTHREAD_ONCE_INIT;

/*
 * The digests and curves of the fast path, fetched and built once for the
 * process: OpenSSL 3.0 looks a digest up by name on every EVP_Digest() of
 * a legacy EVP_MD, and building a curve's group from its name costs more
 * than half an ECDSA verification (modular inverses for the Montgomery
 * constants).  NULL entries make the fast path step aside.
 */
static const int csr_fast_md_nids[] = {NID_sha256, NID_sha384, NID_sha512};
static EVP_MD *csr_fast_mds[3];
static const int csr_fast_curve_nids[] = {NID_X9_62_prime256v1, NID_secp384r1};
static EC_GROUP *csr_fast_groups[2];

static void
csr_empty_init(void)
{
	OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
	size_t i;

	/* Loading "null" keeps OpenSSL from loading the default provider
	 * into the context on first use. */
	if (ctx != NULL && OSSL_PROVIDER_load(ctx, "null") == NULL) {
		OSSL_LIB_CTX_free(ctx);
		ctx = NULL;
	}
	csr_empty_ctx = ctx;
	for (i = 0; i < sizeof(csr_fast_mds) / sizeof(csr_fast_mds[0]); i++)
		csr_fast_mds[i] =
		    EVP_MD_fetch(NULL, OBJ_nid2sn(csr_fast_md_nids[i]), NULL);
	for (i = 0; i < sizeof(csr_fast_groups) / sizeof(csr_fast_groups[0]);
	     i++)
		csr_fast_groups[i] =
		    EC_GROUP_new_by_curve_name(csr_fast_curve_nids[i]);
	ERR_clear_error();
}

/* The fetched digest of nid, or NULL when the fast path has none. */
static const EVP_MD *
csr_fast_md(int nid)
{
	size_t i;

	for (i = 0; i < sizeof(csr_fast_mds) / sizeof(csr_fast_mds[0]); i++)
		if (csr_fast_md_nids[i] == nid)
			return csr_fast_mds[i];
	return NULL;
}

/* The built group of the named curve nid, or NULL. */
static const EC_GROUP *
csr_fast_group(int nid)
{
	size_t i;

	for (i = 0; i < sizeof(csr_fast_groups) / sizeof(csr_fast_groups[0]);
	     i++)
		if (csr_fast_curve_nids[i] == nid)
			return csr_fast_groups[i];
	return NULL;
}

/*
 * Decodes an EC SubjectPublicKeyInfo on a named curve of the fast path
 * into a legacy key: a copy of the built group and the point (checked to
 * be on the curve).  Returns NULL for anything else.
 */
static EC_KEY *
csr_decode_ec_point(X509_PUBKEY *xpk)
{
	const unsigned char *point = NULL;
	const ASN1_OBJECT *curve;
	const void *pval = NULL;
	const EC_GROUP *group;
	X509_ALGOR *palg = NULL;
	EC_KEY *ec = NULL, *out = NULL;
	int len = 0, ptype = 0;

	if (!X509_PUBKEY_get0_param(NULL, &point, &len, &palg, xpk) ||
	    palg == NULL)
		goto out;
	X509_ALGOR_get0(NULL, &ptype, &pval, palg);
	if (ptype != V_ASN1_OBJECT)
		goto out;
	curve = pval;
	if ((group = csr_fast_group(OBJ_obj2nid(curve))) == NULL)
		goto out;
	if ((ec = EC_KEY_new()) == NULL || EC_KEY_set_group(ec, group) != 1 ||
	    o2i_ECPublicKey(&ec, &point, len) == NULL)
		goto out;
	out = ec;
	ec = NULL;
out:
	EC_KEY_free(ec);
	return out;
}

/* Decodes the SubjectPublicKeyInfo xpk with the legacy decoders; NULL
 * for other key types, other curves or on any failure. */
static EVP_PKEY *
csr_decode_key_legacy(X509_PUBKEY *xpk)
{
	ASN1_OBJECT *alg = NULL;
	unsigned char *spki = NULL;
	const unsigned char *p;
	EVP_PKEY *pkey = NULL, *out = NULL;
	RSA *rsa = NULL;
	EC_KEY *ec = NULL;
	int n, nid;

	if (!X509_PUBKEY_get0_param(&alg, NULL, NULL, NULL, xpk))
		goto out;
	nid = OBJ_obj2nid(alg);
	if ((pkey = EVP_PKEY_new()) == NULL)
		goto out;
	if (nid == NID_rsaEncryption) {
		if ((n = i2d_X509_PUBKEY(xpk, &spki)) <= 0)
			goto out;
		p = spki;
		if ((rsa = d2i_RSA_PUBKEY(NULL, &p, n)) == NULL ||
		    p != spki + n || EVP_PKEY_assign_RSA(pkey, rsa) != 1)
			goto out;
		rsa = NULL;
	} else if (nid == NID_X9_62_id_ecPublicKey) {
		if ((ec = csr_decode_ec_point(xpk)) == NULL ||
		    EVP_PKEY_assign_EC_KEY(pkey, ec) != 1)
			goto out;
		ec = NULL;
	} else {
		goto out;
	}
	out = pkey;
	pkey = NULL;
out:
	RSA_free(rsa);
	EC_KEY_free(ec);
	EVP_PKEY_free(pkey);
	OPENSSL_free(spki);
	return out;
}

/*
 * Finds the certificationRequestInfo (the signed bytes) inside der, a DER
 * request: the first element of the outer SEQUENCE.  Returns 0 with *tbs
 * and *tbslen, or -1.
 */
static int
csr_find_tbs(const unsigned char *der, long len, const unsigned char **tbs,
             long *tbslen)
{
	const unsigned char *p = der, *inner;
	long outer_len, inner_len;
	int tag, xclass, ret;

	ret = ASN1_get_object(&p, &outer_len, &tag, &xclass, len);
	if ((ret & 0x80) != 0 || !(ret & V_ASN1_CONSTRUCTED) ||
	    tag != V_ASN1_SEQUENCE || xclass != V_ASN1_UNIVERSAL)
		return -1;
	inner = p;
	ret = ASN1_get_object(&p, &inner_len, &tag, &xclass,
	                      len - (long)(inner - der));
	if ((ret & 0x80) != 0 || !(ret & V_ASN1_CONSTRUCTED) ||
	    tag != V_ASN1_SEQUENCE || xclass != V_ASN1_UNIVERSAL ||
	    inner_len > len - (long)(p - der))
		return -1;
	*tbs = inner;
	*tbslen = (long)(p - inner) + inner_len;
	return 0;
}

/*
 * Returns the request in der with its key decoded and, in *tbs and
 * *tbslen, the bytes its signature covers; or NULL: then the caller parses
 * it the normal way.
 */
static X509_REQ *
csr_decode_fast(const unsigned char *der, long len, const unsigned char **tbs,
                long *tbslen)
{
	OSSL_LIB_CTX *prev;
	X509_REQ *req = NULL, *out = NULL;
	EVP_PKEY *pkey = NULL;
	unsigned char *again = NULL;
	const unsigned char *p = der;
	int n;

	pthread_once(&csr_empty_once, csr_empty_init);
	if (csr_empty_ctx == NULL)
		return NULL;
	/* The switch is per thread and undone at once. */
	prev = OSSL_LIB_CTX_set0_default(csr_empty_ctx);
	req = d2i_X509_REQ(NULL, &p, len);
	(void)OSSL_LIB_CTX_set0_default(prev);
	if (req == NULL || p != der + len)
		goto out;
	if ((pkey = csr_decode_key_legacy(X509_REQ_get_X509_PUBKEY(req))) ==
	        NULL ||
	    X509_REQ_set_pubkey(req, pkey) != 1)
		goto out;
	if ((n = i2d_X509_REQ(req, &again)) != len ||
	    memcmp(again, der, (size_t)len) != 0 ||
	    csr_find_tbs(der, len, tbs, tbslen) != 0)
		goto out;
	out = req;
	req = NULL;
out:
	OPENSSL_free(again);
	EVP_PKEY_free(pkey);
	X509_REQ_free(req);
	/* Nothing this path failed on is the request's fault. */
	ERR_clear_error();
	return out;
}

/*
 * Verifies the signature of a request from csr_decode_fast() over tbs, the
 * bytes received, with the legacy RSA and ECDSA routines.  X509_REQ_verify()
 * would first export the legacy key to a provider key (for EC, building the
 * curve's group from its name once more) and look the algorithms up by
 * name: as much CPU again as the P-256 verification itself (make bench,
 * perf).  It checks what ASN1_item_verify() checks before the public-key
 * operation: the algorithm's key type is the key's, the signature has no
 * unused bits.  Returns 1 when the signature verifies, else 0: then
 * X509_REQ_verify() decides, and explains a refusal with OpenSSL's reason.
 */
static int
csr_verify_fast(X509_REQ *req, EVP_PKEY *pkey, const unsigned char *tbs,
                long tbslen)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	const ASN1_BIT_STRING *sig = NULL;
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *aobj = NULL;
	unsigned int digest_len = 0;
	const EVP_MD *md;
	RSA *rsa = NULL;
	EC_KEY *ec = NULL;
	int md_nid, pk_nid, rc = 0;

	X509_REQ_get0_signature(req, &sig, &alg);
	if (sig == NULL || alg == NULL)
		goto out;
	X509_ALGOR_get0(&aobj, NULL, NULL, alg);
	if (!OBJ_find_sigid_algs(OBJ_obj2nid(aobj), &md_nid, &pk_nid) ||
	    (md = csr_fast_md(md_nid)) == NULL ||
	    EVP_PKEY_type(pk_nid) != EVP_PKEY_get_base_id(pkey) ||
	    (sig->flags & 0x07) != 0 || sig->length <= 0)
		goto out;
	if (EVP_Digest(tbs, (size_t)tbslen, digest, &digest_len, md, NULL) != 1)
		goto out;
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		if ((rsa = EVP_PKEY_get1_RSA(pkey)) == NULL)
			goto out;
		/* RSA_verify() compares the whole DigestInfo encoding. */
		rc = RSA_verify(md_nid, digest, digest_len, sig->data,
		                (unsigned int)sig->length, rsa) == 1;
		break;
	case EVP_PKEY_EC:
		if ((ec = EVP_PKEY_get1_EC_KEY(pkey)) == NULL)
			goto out;
		/* ECDSA_verify() refuses signatures that are not DER. */
		rc = ECDSA_verify(0, digest, (int)digest_len, sig->data,
		                  sig->length, ec) == 1;
		break;
	default:
		break;
	}
out:
	RSA_free(rsa);
	EC_KEY_free(ec);
	OPENSSL_cleanse(digest, sizeof(digest));
	ERR_clear_error();
	return rc;
}

/*
 * Returns 1 when the request's key is EC with its curve spelled out as
 * explicit parameters (or implicitly CA's) instead of named by OID.  RFC
 * 5480 allows only namedCurve in certificates, verifiers such as
 * "openssl verify -x509_strict" refuse the certificate, and a CA copying
 * the SubjectPublicKeyInfo would issue one.  OpenSSL recognises the
 * parameters of a known curve and names the group all the same, so the
 * encoding itself is looked at.
 */
static int
csr_ec_not_named(X509_REQ *req)
{
	ASN1_OBJECT *alg = NULL;
	X509_ALGOR *palg = NULL;
	int ptype = V_ASN1_UNDEF;

	if (!X509_PUBKEY_get0_param(&alg, NULL, NULL, &palg,
	                            X509_REQ_get_X509_PUBKEY(req)) ||
	    OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey)
		return 0;
	if (palg != NULL)
		X509_ALGOR_get0(NULL, &ptype, NULL, palg);
	return ptype != V_ASN1_OBJECT;
}

/*
 * Checks the extension request attributes: at most one extensionRequest
 * or msExtReq attribute, holding exactly one value, that decodes, with no
 * extension requested twice.  OpenSSL, and so the policy, read the first
 * such attribute and its first value, and X.509 allows one instance of
 * an extension; a CA that reads another attribute, value or instance
 * would honour what the policy never saw.  Returns 0, or -1 with err set.
 */
static int
csr_check_ext_request(X509_REQ *req, char *err, size_t errlen)
{
	static const int nids[] = {NID_ext_req, NID_ms_ext_req};
	STACK_OF(X509_EXTENSION) *exts = NULL;
	const X509_ATTRIBUTE *attr = NULL;
	const ASN1_OBJECT *obj;
	char name[CSR_NAME_MAX];
	int i, j, n = 0, values, rc = -1;
	size_t k;

	for (k = 0; k < sizeof(nids) / sizeof(nids[0]); k++)
		for (i = -1;
		     (i = X509_REQ_get_attr_by_NID(req, nids[k], i)) >= 0;) {
			attr = X509_REQ_get_attr(req, i);
			n++;
		}
	if (n == 0) {
		rc = 0;
		goto out;
	}
	if (n > 1) {
		core_error_set(err, errlen, 0,
		               "CSR has %d extension request attributes "
		               "(extensionRequest or msExtReq), one is allowed",
		               n);
		goto out;
	}
	if ((values = X509_ATTRIBUTE_count(attr)) != 1) {
		core_error_set(
		    err, errlen, 0,
		    "CSR extensionRequest attribute holds %d values, "
		    "one is allowed",
		    values);
		goto out;
	}
	/*
	 * An extension request that does not decode would later look like
	 * no extensions at all (est_csr_extensions() returns NULL); refuse
	 * it here so that NULL there always means "none asked for".
	 */
	if ((exts = X509_REQ_get_extensions(req)) == NULL) {
		core_error_set(err, errlen, 1,
		               "CSR extensionRequest attribute is malformed");
		goto out;
	}
	for (i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		obj =
		    X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i));
		for (j = 0; j < i; j++)
			if (OBJ_cmp(obj,
			            X509_EXTENSION_get_object(
			                sk_X509_EXTENSION_value(exts, j))) == 0)
				break;
		if (j < i) {
			if (OBJ_obj2nid(obj) != NID_undef)
				snprintf(name, sizeof(name), "%s",
				         OBJ_nid2sn(OBJ_obj2nid(obj)));
			else
				OBJ_obj2txt(name, sizeof(name), obj, 1);
			core_error_set(err, errlen, 0,
			               "CSR requests extension %s twice", name);
			goto out;
		}
	}
	rc = 0;
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

X509_REQ *
est_csr_parse(const unsigned char *der, size_t len, char *err, size_t errlen)
{
	X509_REQ *req = NULL;
	const unsigned char *p, *tbs = NULL;
	EVP_PKEY *pkey;
	char key[CSR_NAME_MAX];
	long version, tbslen = 0;
	int rc = -1;

	/*
	 * Stale errors left on this thread by earlier work would otherwise
	 * be reported as this request's cause.
	 */
	ERR_clear_error();
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	if (der == NULL || len == 0) {
		core_error_set(err, errlen, 0, "CSR is empty");
		goto out;
	}
	if (len > LONG_MAX) {
		core_error_set(err, errlen, 0, "CSR is too long");
		goto out;
	}

	p = der;
	if ((req = csr_decode_fast(der, (long)len, &tbs, &tbslen)) != NULL)
		p = der + len;
	else if ((req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL) {
		core_error_set(err, errlen, 1,
		               "CSR is not a DER PKCS#10 request");
		goto out;
	}
	/*
	 * d2i stops after the first object; bytes past it would be a
	 * second request or junk the client did not mean to send.
	 */
	if (p != der + len) {
		core_error_set(err, errlen, 0,
		               "CSR has %zu trailing bytes after the request",
		               (size_t)(der + len - p));
		goto out;
	}

	version = X509_REQ_get_version(req);
	if (version != X509_REQ_VERSION_1) {
		core_error_set(err, errlen, 0, "CSR version %ld is not v1 (0)",
		               version);
		goto out;
	}

	/*
	 * Checks that need no public-key operation run first, so that a
	 * request refused anyway costs no signature verification.
	 */
	if (csr_check_sigalg(req, err, errlen) != 0)
		goto out;

	if ((pkey = X509_REQ_get0_pubkey(req)) == NULL) {
		core_error_set(err, errlen, 1,
		               "CSR public key cannot be decoded");
		goto out;
	}
	switch (csr_key_judge(pkey, key, sizeof(key))) {
	case CSR_KEY_OK:
		if (csr_ec_not_named(req)) {
			core_error_set(
			    err, errlen, 0,
			    "CSR key %s is not accepted: its curve is "
			    "given by explicit parameters, not named "
			    "(RFC 5480 requires a named curve)",
			    key);
			goto out;
		}
		break;
	case CSR_KEY_WEAK_RSA:
		core_error_set(
		    err, errlen, 0,
		    "CSR key %s is too weak: at least %d bits needed", key,
		    CSR_RSA_MIN_BITS);
		goto out;
	case CSR_KEY_BAD_CURVE:
		core_error_set(
		    err, errlen, 0,
		    "CSR key %s is not accepted: EC keys must be on P-256 "
		    "or P-384",
		    key);
		goto out;
	case CSR_KEY_BAD_EXPONENT:
		core_error_set(
		    err, errlen, 0,
		    "CSR key %s is not accepted: its public exponent "
		    "is 1 or even, for which anyone can make a "
		    "signature or no key exists",
		    key);
		goto out;
	case CSR_KEY_WEAK_POINT:
		core_error_set(
		    err, errlen, 0,
		    "CSR key %s is not accepted: its public key is the "
		    "point at infinity or of small order, for which "
		    "anyone can make a signature",
		    key);
		goto out;
	case CSR_KEY_BAD_TYPE:
		core_error_set(
		    err, errlen, 0,
		    "CSR key %s is not accepted: RSA of at least %d bits, "
		    "EC P-256 or P-384, or Ed25519 needed",
		    key, CSR_RSA_MIN_BITS);
		goto out;
	}

	/* Proof of possession: the request is signed by its own key. */
	if ((tbs == NULL || csr_verify_fast(req, pkey, tbs, tbslen) != 1) &&
	    X509_REQ_verify(req, pkey) != 1) {
		core_error_set(err, errlen, 1, "CSR signature does not verify");
		goto out;
	}

	if (csr_check_ext_request(req, err, errlen) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0) {
		X509_REQ_free(req);
		req = NULL;
	}
	ERR_clear_error();
	return req;
}

const char *
est_csr_key_name(X509_REQ *req, char *buf, size_t len)
{
	EVP_PKEY *pkey;

	if (buf == NULL || len == 0)
		return buf;
	ERR_set_mark();
	pkey = req != NULL ? X509_REQ_get0_pubkey(req) : NULL;
	if (pkey == NULL)
		snprintf(buf, len, "unknown");
	else
		(void)csr_key_judge(pkey, buf, len);
	ERR_pop_to_mark();
	return buf;
}

const char *
est_csr_subject(X509_REQ *req, char *buf, size_t len)
{
	const X509_NAME *name;
	BIO *bio = NULL;
	size_t want;
	int n;

	if (buf == NULL || len == 0)
		return buf;
	buf[0] = '\0';
	ERR_set_mark();
	if (req == NULL || (name = X509_REQ_get_subject_name(req)) == NULL)
		goto out;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	/*
	 * XN_FLAG_RFC2253 escapes control and non-ASCII bytes, so the
	 * result is one printable line however hostile the subject.
	 */
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0)
		goto out;
	want = len - 1 > INT_MAX ? INT_MAX : len - 1;
	if ((n = BIO_read(bio, buf, (int)want)) < 0)
		n = 0;
	buf[n] = '\0';
out:
	BIO_free(bio);
	ERR_pop_to_mark();
	return buf;
}

/*
 * clang-format takes STACK_OF() for a call and would put the name on the
 * return type's line.
 */
/* clang-format off */
STACK_OF(X509_EXTENSION) *
est_csr_extensions(X509_REQ *req)
/* clang-format on */
{
	STACK_OF(X509_EXTENSION) *exts = NULL;

	if (req == NULL)
		return NULL;
	ERR_set_mark();
	/* OpenSSL 3.0 answers an empty stack when there is no request. */
	exts = X509_REQ_get_extensions(req);
	if (exts != NULL && sk_X509_EXTENSION_num(exts) == 0) {
		sk_X509_EXTENSION_free(exts);
		exts = NULL;
	}
	ERR_pop_to_mark();
	return exts;
}
