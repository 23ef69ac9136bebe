/*
 * check_est_csr.c: unit tests of src/est/csr.c.  Every key and request is
 * made here with the OpenSSL API, so the tests need no files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "est/csr.h"

/* Size of the error and name buffers handed to est_csr_*. */
#define ERR_MAX 512

/*
 * Keys made once in main() before the runner forks, so that each test
 * does not pay for RSA key generation again.
 */
static EVP_PKEY *rsa2048, *rsa1024, *rsapss2048, *ec256, *ec384, *ec521, *k256,
    *ed25519, *ed448;

/*
 * Builds a request for key with subject CN=cn (and O=Example), a dNSName
 * subjectAltName when san is set, signed with md (NULL for EdDSA).
 * Returns a new request (free with X509_REQ_free).
 */
static X509_REQ *
make_req(EVP_PKEY *key, const EVP_MD *md, const char *cn, int san)
{
	STACK_OF(X509_EXTENSION) *exts;
	X509_EXTENSION *ext;
	X509_NAME *name;
	X509_REQ *req;

	req = X509_REQ_new();
	ck_assert_ptr_nonnull(req);
	ck_assert_int_eq(X509_REQ_set_version(req, 0), 1);
	name = X509_REQ_get_subject_name(req);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(
	                     name, "O", MBSTRING_UTF8,
	                     (const unsigned char *)"Example", -1, -1, 0),
	                 1);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                            (const unsigned char *)cn,
	                                            -1, -1, 0),
	                 1);
	ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
	if (san) {
		exts = sk_X509_EXTENSION_new_null();
		ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
		                          "DNS:device.example.com");
		ck_assert_ptr_nonnull(ext);
		ck_assert_int_gt(sk_X509_EXTENSION_push(exts, ext), 0);
		ck_assert_int_eq(X509_REQ_add_extensions(req, exts), 1);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	ck_assert_int_gt(X509_REQ_sign(req, key, md), 0);
	return req;
}

/* Returns req's DER (free with OPENSSL_free) and sets *len. */
static unsigned char *
req_der(X509_REQ *req, size_t *len)
{
	unsigned char *der = NULL;
	int n;

	n = i2d_X509_REQ(req, &der);
	ck_assert_int_gt(n, 0);
	*len = (size_t)n;
	return der;
}

/* Builds, encodes and frees a request; returns its DER as req_der(). */
static unsigned char *
make_der(EVP_PKEY *key, const EVP_MD *md, const char *cn, size_t *len)
{
	unsigned char *der;
	X509_REQ *req;

	req = make_req(key, md, cn, 1);
	der = req_der(req, len);
	X509_REQ_free(req);
	return der;
}

/*
 * Parses der, expects success and an empty error queue.  Returns the
 * request (free with X509_REQ_free).
 */
static X509_REQ *
assert_parses(const unsigned char *der, size_t len)
{
	char err[ERR_MAX];
	X509_REQ *req;

	req = est_csr_parse(der, len, err, sizeof(err));
	ck_assert_msg(req != NULL, "refused: %s", err);
	ck_assert_uint_eq(ERR_peek_error(), 0);
	return req;
}

/*
 * Parses der, expects a refusal whose reason contains why and an empty
 * error queue afterwards.
 */
static void
assert_refused(const unsigned char *der, size_t len, const char *why)
{
	char err[ERR_MAX];
	X509_REQ *req;

	req = est_csr_parse(der, len, err, sizeof(err));
	ck_assert_msg(req == NULL, "accepted, wanted \"%s\"", why);
	ck_assert_msg(strstr(err, why) != NULL, "reason \"%s\" lacks \"%s\"",
	              err, why);
	ck_assert_ptr_null(strchr(err, '\n'));
	ck_assert_uint_eq(ERR_peek_error(), 0);
}

/* Builds a request with key and md and expects it to be accepted. */
static void
assert_key_accepted(EVP_PKEY *key, const EVP_MD *md, const char *name)
{
	unsigned char *der;
	char buf[ERR_MAX];
	X509_REQ *req;
	size_t len;

	der = make_der(key, md, "device", &len);
	req = assert_parses(der, len);
	ck_assert_str_eq(est_csr_key_name(req, buf, sizeof(buf)), name);
	X509_REQ_free(req);
	OPENSSL_free(der);
}

/* Builds a request with key and md and expects the reason why. */
static void
assert_key_refused(EVP_PKEY *key, const EVP_MD *md, const char *why)
{
	unsigned char *der;
	size_t len;

	der = make_der(key, md, "device", &len);
	assert_refused(der, len, why);
	OPENSSL_free(der);
}

START_TEST(test_csr_rsa2048_sha256_accepted)
{
	assert_key_accepted(rsa2048, EVP_sha256(), "RSA-2048");
	assert_key_accepted(rsa2048, EVP_sha384(), "RSA-2048");
	assert_key_accepted(rsa2048, EVP_sha512(), "RSA-2048");
}
END_TEST

START_TEST(test_csr_rsa1024_refused)
{
	assert_key_refused(
	    rsa1024, EVP_sha256(),
	    "CSR key RSA-1024 is too weak: at least 2048 bits needed");
}
END_TEST

START_TEST(test_csr_ec_p256_accepted)
{
	assert_key_accepted(ec256, EVP_sha256(), "EC-P-256");
}
END_TEST

START_TEST(test_csr_ec_p384_accepted)
{
	assert_key_accepted(ec384, EVP_sha384(), "EC-P-384");
}
END_TEST

START_TEST(test_csr_ec_p521_refused)
{
	assert_key_refused(ec521, EVP_sha512(),
	                   "CSR key EC-P-521 is not accepted: EC keys must be "
	                   "on P-256 or P-384");
}
END_TEST

START_TEST(test_csr_ec_secp256k1_refused)
{
	assert_key_refused(k256, EVP_sha256(),
	                   "CSR key EC-secp256k1 is not accepted");
}
END_TEST

START_TEST(test_csr_ed25519_accepted)
{
	assert_key_accepted(ed25519, NULL, "Ed25519");
}
END_TEST

START_TEST(test_csr_ed448_refused)
{
	assert_key_refused(ed448, NULL,
	                   "CSR key Ed448 is not accepted: RSA of at least "
	                   "2048 bits, EC P-256 or P-384, or Ed25519 needed");
}
END_TEST

START_TEST(test_csr_rsa_pss_key_refused)
{
	assert_key_refused(rsapss2048, EVP_sha256(),
	                   "CSR key RSA-PSS-2048 is not accepted");
}
END_TEST

START_TEST(test_csr_sha1_signature_refused)
{
	assert_key_refused(rsa2048, EVP_sha1(),
	                   "CSR signature algorithm sha1WithRSAEncryption is "
	                   "refused: SHA1 digests are too weak");
	assert_key_refused(
	    ec256, EVP_sha1(),
	    "CSR signature algorithm ecdsa-with-SHA1 is refused");
}
END_TEST

START_TEST(test_csr_md5_signature_refused)
{
	assert_key_refused(rsa2048, EVP_md5(),
	                   "CSR signature algorithm md5WithRSAEncryption is "
	                   "refused: MD5 digests are too weak");
}
END_TEST

/*
 * Signs a request for rsa2048 with RSASSA-PSS over md and returns its DER
 * (free with OPENSSL_free).
 */
static unsigned char *
make_pss_der(const EVP_MD *md, size_t *len)
{
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *der;
	EVP_MD_CTX *mctx;
	X509_REQ *req;

	req = make_req(rsa2048, EVP_sha256(), "pss", 0);
	mctx = EVP_MD_CTX_new();
	ck_assert_ptr_nonnull(mctx);
	ck_assert_int_eq(EVP_DigestSignInit(mctx, &pctx, md, NULL, rsa2048), 1);
	ck_assert_int_gt(
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 0);
	ck_assert_int_gt(
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 0);
	ck_assert_int_gt(X509_REQ_sign_ctx(req, mctx), 0);
	ck_assert_int_eq(X509_REQ_get_signature_nid(req), NID_rsassaPss);
	der = req_der(req, len);
	EVP_MD_CTX_free(mctx);
	X509_REQ_free(req);
	return der;
}

START_TEST(test_csr_rsa_pss_sha256_accepted)
{
	unsigned char *der;
	X509_REQ *req;
	size_t len;

	der = make_pss_der(EVP_sha256(), &len);
	req = assert_parses(der, len);
	X509_REQ_free(req);
	OPENSSL_free(der);
}
END_TEST

START_TEST(test_csr_rsa_pss_sha1_refused)
{
	unsigned char *der;
	size_t len;

	/* SHA-1 is PSS's default hash, so its parameters omit it. */
	der = make_pss_der(EVP_sha1(), &len);
	assert_refused(der, len,
	               "CSR signature algorithm rsassaPss is refused: SHA1 "
	               "digests are too weak");
	OPENSSL_free(der);
}
END_TEST

/*
 * Flips one byte of the subject's CN value after signing, for key, and
 * expects the signature check to catch it.
 */
static void
assert_tampered_subject_refused(EVP_PKEY *key, const EVP_MD *md)
{
	unsigned char *der, *hit;
	size_t len;

	der = make_der(key, md, "tamper-me", &len);
	hit = memmem(der, len, "tamper-me", strlen("tamper-me"));
	ck_assert_ptr_nonnull(hit);
	hit[0] = 'T';
	assert_refused(der, len, "CSR signature does not verify");
	OPENSSL_free(der);
}

START_TEST(test_csr_tampered_subject_refused)
{
	assert_tampered_subject_refused(rsa2048, EVP_sha256());
	assert_tampered_subject_refused(ec256, EVP_sha256());
	assert_tampered_subject_refused(ec384, EVP_sha384());
	assert_tampered_subject_refused(rsa2048, EVP_sha512());
	assert_tampered_subject_refused(ed25519, NULL);
}
END_TEST

START_TEST(test_csr_tampered_signature_refused)
{
	unsigned char *der;
	size_t len;

	/* The last DER byte is the end of the signature BIT STRING. */
	der = make_der(rsa2048, EVP_sha256(), "device", &len);
	der[len - 1] ^= 0x01;
	assert_refused(der, len, "CSR signature does not verify (SSL: ");
	OPENSSL_free(der);

	der = make_der(ed25519, NULL, "device", &len);
	der[len - 1] ^= 0x80;
	assert_refused(der, len, "CSR signature does not verify");
	OPENSSL_free(der);

	/* ECDSA: the last byte of s. */
	der = make_der(ec256, EVP_sha256(), "device", &len);
	der[len - 1] ^= 0x01;
	assert_refused(der, len, "CSR signature does not verify");
	OPENSSL_free(der);
	der = make_der(ec384, EVP_sha384(), "device", &len);
	der[len - 1] ^= 0x01;
	assert_refused(der, len, "CSR signature does not verify");
	OPENSSL_free(der);
}
END_TEST

/* A request with version 1 and CN=nobody, to be given a key and a
 * signature by hand (free with X509_REQ_free). */
static X509_REQ *
forged_req_new(void)
{
	X509_REQ *req = X509_REQ_new();

	ck_assert_ptr_nonnull(req);
	ck_assert_int_eq(X509_REQ_set_version(req, 0), 1);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(
	                     X509_REQ_get_subject_name(req), "CN",
	                     MBSTRING_UTF8, (const unsigned char *)"nobody", -1,
	                     -1, 0),
	                 1);
	return req;
}

/* Sets the signature BIT STRING of a request to bytes, no unused bits. */
static void
forged_req_set_signature(const ASN1_BIT_STRING *sig, const unsigned char *bytes,
                         size_t len)
{
	ASN1_BIT_STRING *bits = (ASN1_BIT_STRING *)sig;

	ck_assert_int_eq(
	    ASN1_BIT_STRING_set(bits, (unsigned char *)bytes, (int)len), 1);
	bits->flags &= ~0x07;
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
}

/*
 * A P-256 request whose public key is the point at infinity, signed with
 * the signature anyone can make for that key: with Q = O, ECDSA's check
 * u1*G + u2*Q = R holds for r = x(kG), s = e/k and any k.  Returns its DER
 * (free with OPENSSL_free) and sets *len.
 */
static unsigned char *
make_infinity_der(size_t *len)
{
	unsigned char penc_byte = 0x00, digest[32], *penc, *tbs = NULL;
	unsigned char *sigder = NULL, *der;
	const ASN1_BIT_STRING *sigc = NULL;
	const X509_ALGOR *alg = NULL;
	EC_GROUP *group;
	EC_POINT *point;
	ECDSA_SIG *esig;
	BIGNUM *k, *x, *r, *s, *e, *kinv;
	BN_CTX *bn;
	X509_REQ *req;
	int tbslen, siglen;

	req = forged_req_new();
	penc = OPENSSL_memdup(&penc_byte, 1);
	ck_assert_int_eq(
	    X509_PUBKEY_set0_param(X509_REQ_get_X509_PUBKEY(req),
	                           OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
	                           V_ASN1_OBJECT,
	                           OBJ_nid2obj(NID_X9_62_prime256v1), penc, 1),
	    1);
	X509_REQ_get0_signature(req, &sigc, &alg);
	ck_assert_int_eq(X509_ALGOR_set0((X509_ALGOR *)alg,
	                                 OBJ_nid2obj(NID_ecdsa_with_SHA256),
	                                 V_ASN1_UNDEF, NULL),
	                 1);
	tbslen = i2d_re_X509_REQ_tbs(req, &tbs);
	ck_assert_int_gt(tbslen, 0);
	ck_assert_int_eq(
	    EVP_Digest(tbs, (size_t)tbslen, digest, NULL, EVP_sha256(), NULL),
	    1);

	group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	bn = BN_CTX_new();
	k = BN_new();
	x = BN_new();
	s = BN_new();
	kinv = BN_new();
	ck_assert_ptr_nonnull(group);
	ck_assert_ptr_nonnull(bn);
	point = EC_POINT_new(group);
	e = BN_bin2bn(digest, sizeof(digest), NULL);
	ck_assert_int_eq(BN_rand_range(k, EC_GROUP_get0_order(group)), 1);
	ck_assert_int_eq(EC_POINT_mul(group, point, k, NULL, NULL, bn), 1);
	ck_assert_int_eq(
	    EC_POINT_get_affine_coordinates(group, point, x, NULL, bn), 1);
	r = BN_new();
	ck_assert_int_eq(BN_nnmod(r, x, EC_GROUP_get0_order(group), bn), 1);
	ck_assert_ptr_nonnull(
	    BN_mod_inverse(kinv, k, EC_GROUP_get0_order(group), bn));
	ck_assert_int_eq(BN_mod_mul(s, e, kinv, EC_GROUP_get0_order(group), bn),
	                 1);
	esig = ECDSA_SIG_new();
	ck_assert_int_eq(ECDSA_SIG_set0(esig, r, s), 1);
	siglen = i2d_ECDSA_SIG(esig, &sigder);
	ck_assert_int_gt(siglen, 0);
	forged_req_set_signature(sigc, sigder, siglen);
	der = req_der(req, len);

	OPENSSL_free(sigder);
	OPENSSL_free(tbs);
	ECDSA_SIG_free(esig);
	BN_free(e);
	BN_free(kinv);
	BN_free(x);
	BN_free(k);
	EC_POINT_free(point);
	BN_CTX_free(bn);
	EC_GROUP_free(group);
	X509_REQ_free(req);
	return der;
}

START_TEST(test_csr_ec_point_at_infinity_refused)
{
	unsigned char *der;
	size_t len;

	der = make_infinity_der(&len);
	assert_refused(der, len,
	               "CSR key EC-P-256 is not accepted: its public key is "
	               "the point at infinity or of small order");
	OPENSSL_free(der);
}
END_TEST

/*
 * The same for Ed25519: with the neutral element as public key A, the
 * check [S]B = R + [h]A holds for R = [S]B whatever was signed.  Here S = 1
 * and R is the base point's encoding.
 */
START_TEST(test_csr_ed25519_neutral_key_refused)
{
	unsigned char neutral[32] = {0x01}, sigbytes[64];
	const ASN1_BIT_STRING *sigc = NULL;
	const X509_ALGOR *alg = NULL;
	unsigned char *der, *penc;
	X509_REQ *req;
	size_t len;

	/* R: the base point (y = 4/5, little-endian); S: 1. */
	memset(sigbytes, 0x66, 32);
	sigbytes[0] = 0x58;
	memset(sigbytes + 32, 0, 32);
	sigbytes[32] = 0x01;
	req = forged_req_new();
	penc = OPENSSL_memdup(neutral, sizeof(neutral));
	ck_assert_int_eq(X509_PUBKEY_set0_param(X509_REQ_get_X509_PUBKEY(req),
	                                        OBJ_nid2obj(NID_ED25519),
	                                        V_ASN1_UNDEF, NULL, penc,
	                                        sizeof(neutral)),
	                 1);
	X509_REQ_get0_signature(req, &sigc, &alg);
	ck_assert_int_eq(X509_ALGOR_set0((X509_ALGOR *)alg,
	                                 OBJ_nid2obj(NID_ED25519), V_ASN1_UNDEF,
	                                 NULL),
	                 1);
	forged_req_set_signature(sigc, sigbytes, sizeof(sigbytes));
	der = req_der(req, &len);
	assert_refused(der, len,
	               "CSR key Ed25519 is not accepted: its public key is "
	               "the point at infinity or of small order");
	OPENSSL_free(der);
	X509_REQ_free(req);
}
END_TEST

/*
 * The same for RSA with public exponent 1: s^1 mod n is s, so the padded
 * DigestInfo itself is a valid signature.
 */
START_TEST(test_csr_rsa_exponent_one_refused)
{
	static const unsigned char sha256_prefix[] = {
	    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
	unsigned char em[256], *tbs = NULL, *der, nbytes[256];
	const ASN1_BIT_STRING *sigc = NULL;
	const X509_ALGOR *alg = NULL;
	OSSL_PARAM_BLD *bld;
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *key = NULL;
	BIGNUM *n, *e;
	X509_REQ *req;
	size_t len, i;
	int tbslen;

	/* Any odd 2048-bit n above the encoded message will do. */
	memset(nbytes, 0xff, sizeof(nbytes));
	n = BN_bin2bn(nbytes, sizeof(nbytes), NULL);
	e = BN_new();
	ck_assert_int_eq(BN_set_word(e, 1), 1);
	bld = OSSL_PARAM_BLD_new();
	ck_assert_int_eq(OSSL_PARAM_BLD_push_BN(bld, "n", n), 1);
	ck_assert_int_eq(OSSL_PARAM_BLD_push_BN(bld, "e", e), 1);
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	ck_assert_int_eq(EVP_PKEY_fromdata_init(ctx), 1);
	ck_assert_int_eq(
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params), 1);

	req = forged_req_new();
	ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
	X509_REQ_get0_signature(req, &sigc, &alg);
	ck_assert_int_eq(
	    X509_ALGOR_set0((X509_ALGOR *)alg,
	                    OBJ_nid2obj(NID_sha256WithRSAEncryption),
	                    V_ASN1_NULL, NULL),
	    1);
	tbslen = i2d_re_X509_REQ_tbs(req, &tbs);
	ck_assert_int_gt(tbslen, 0);
	/* EMSA-PKCS1-v1_5: 00 01 FF.. 00 DigestInfo. */
	em[0] = 0x00;
	em[1] = 0x01;
	len = sizeof(em) - sizeof(sha256_prefix) - 32;
	for (i = 2; i < len - 1; i++)
		em[i] = 0xff;
	em[len - 1] = 0x00;
	memcpy(em + len, sha256_prefix, sizeof(sha256_prefix));
	ck_assert_int_eq(EVP_Digest(tbs, (size_t)tbslen,
	                            em + len + sizeof(sha256_prefix), NULL,
	                            EVP_sha256(), NULL),
	                 1);
	forged_req_set_signature(sigc, em, sizeof(em));
	der = req_der(req, &len);
	assert_refused(der, len,
	               "CSR key RSA-2048 is not accepted: its public exponent "
	               "is 1 or even");
	OPENSSL_free(der);
	OPENSSL_free(tbs);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(e);
	BN_free(n);
}
END_TEST

/*
 * Replaces the outer signatureAlgorithm of a request signed by key with
 * nid's and expects a refusal: that field is not signed, so only the
 * verification (its digest, its key type) can catch the change.
 */
static void
assert_swapped_algorithm_refused(EVP_PKEY *key, const EVP_MD *md, int nid,
                                 const char *why)
{
	const X509_ALGOR *alg = NULL;
	const ASN1_BIT_STRING *sig = NULL;
	unsigned char *der;
	X509_REQ *req;
	size_t len;

	req = make_req(key, md, "device", 1);
	X509_REQ_get0_signature(req, &sig, &alg);
	ck_assert_int_eq(X509_ALGOR_set0((X509_ALGOR *)alg, OBJ_nid2obj(nid),
	                                 V_ASN1_UNDEF, NULL),
	                 1);
	der = req_der(req, &len);
	assert_refused(der, len, why);
	OPENSSL_free(der);
	X509_REQ_free(req);
}

START_TEST(test_csr_swapped_signature_algorithm_refused)
{
	/* Another digest than the one signed. */
	assert_swapped_algorithm_refused(ec256, EVP_sha256(),
	                                 NID_ecdsa_with_SHA384,
	                                 "CSR signature does not verify");
	assert_swapped_algorithm_refused(rsa2048, EVP_sha256(),
	                                 NID_sha512WithRSAEncryption,
	                                 "CSR signature does not verify");
	/* An algorithm of another key type than the request's key. */
	assert_swapped_algorithm_refused(rsa2048, EVP_sha256(),
	                                 NID_ecdsa_with_SHA256,
	                                 "CSR signature does not verify");
	assert_swapped_algorithm_refused(ec256, EVP_sha256(),
	                                 NID_sha256WithRSAEncryption,
	                                 "CSR signature does not verify");
}
END_TEST

START_TEST(test_csr_trailing_garbage_refused)
{
	unsigned char *der, *longer;
	size_t len;

	der = make_der(ec256, EVP_sha256(), "device", &len);
	longer = malloc(len + 3);
	ck_assert_ptr_nonnull(longer);
	memcpy(longer, der, len);
	memcpy(longer + len, "\x00\x01\x02", 3);
	assert_refused(longer, len + 3,
	               "CSR has 3 trailing bytes after the request");
	/* A second copy of the request is trailing bytes too. */
	free(longer);
	longer = malloc(2 * len);
	ck_assert_ptr_nonnull(longer);
	memcpy(longer, der, len);
	memcpy(longer + len, der, len);
	assert_refused(longer, 2 * len, "trailing bytes");
	free(longer);
	OPENSSL_free(der);
}
END_TEST

START_TEST(test_csr_garbage_refused)
{
	static const unsigned char garbage[] = "this is not a CSR at all";
	unsigned char *der;
	size_t len;

	assert_refused(garbage, sizeof(garbage) - 1,
	               "CSR is not a DER PKCS#10 request (SSL: ");

	/* A truncated request. */
	der = make_der(ec256, EVP_sha256(), "device", &len);
	assert_refused(der, len - 10, "CSR is not a DER PKCS#10 request");
	OPENSSL_free(der);
}
END_TEST

START_TEST(test_csr_empty_refused)
{
	assert_refused(NULL, 0, "CSR is empty");
	assert_refused((const unsigned char *)"", 0, "CSR is empty");
}
END_TEST

START_TEST(test_csr_version_2_refused)
{
	unsigned char *der, *patched;
	const unsigned char *p;
	X509_REQ *req;
	size_t len;

	req = make_req(ec256, EVP_sha256(), "device", 0);
	if (!X509_REQ_set_version(req, 1)) {
		/*
		 * Newer OpenSSL refuses to set it; patch the DER INTEGER
		 * 0 to 1 instead and read it back.
		 */
		ERR_clear_error();
		der = req_der(req, &len);
		patched = memmem(der, len < 12 ? len : 12, "\x02\x01\x00", 3);
		ck_assert_ptr_nonnull(patched);
		patched[2] = 1;
		X509_REQ_free(req);
		p = der;
		req = d2i_X509_REQ(NULL, &p, (long)len);
		ck_assert_ptr_nonnull(req);
		OPENSSL_free(der);
	}
	/* Re-sign, so that only the version is wrong. */
	ck_assert_int_gt(X509_REQ_sign(req, ec256, EVP_sha256()), 0);
	ck_assert_int_eq(X509_REQ_get_version(req), 1);
	der = req_der(req, &len);
	assert_refused(der, len, "CSR version 1 is not v1 (0)");
	OPENSSL_free(der);
	X509_REQ_free(req);
}
END_TEST

START_TEST(test_csr_malformed_extension_request_refused)
{
	unsigned char *der;
	X509_REQ *req;
	size_t len;

	/* extensionRequest holding an INTEGER instead of Extensions. */
	req = make_req(ec256, EVP_sha256(), "device", 0);
	ck_assert_int_eq(
	    X509_REQ_add1_attr_by_NID(req, NID_ext_req, V_ASN1_INTEGER,
	                              (const unsigned char *)"\x05", 1),
	    1);
	ck_assert_int_gt(X509_REQ_sign(req, ec256, EVP_sha256()), 0);
	der = req_der(req, &len);
	assert_refused(der, len, "CSR extensionRequest attribute is malformed");
	OPENSSL_free(der);
	X509_REQ_free(req);
}
END_TEST

START_TEST(test_csr_stale_errors_not_reported)
{
	static const unsigned char garbage[] = {0x30, 0x03, 0x02, 0x01};
	char err[ERR_MAX];

	ERR_raise_data(ERR_LIB_USER, 42, "stale marker");
	ck_assert_ptr_null(
	    est_csr_parse(garbage, sizeof(garbage), err, sizeof(err)));
	ck_assert_ptr_null(strstr(err, "stale marker"));
	ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_csr_no_err_buffer)
{
	ck_assert_ptr_null(
	    est_csr_parse((const unsigned char *)"x", 1, NULL, 0));
	ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_csr_key_name)
{
	struct {
		EVP_PKEY **key;
		const EVP_MD *md;
		const char *name;
	} cases[] = {
	    {&rsa2048, EVP_sha256(), "RSA-2048"},
	    {&rsa1024, EVP_sha256(), "RSA-1024"},
	    {&rsapss2048, EVP_sha256(), "RSA-PSS-2048"},
	    {&ec256, EVP_sha256(), "EC-P-256"},
	    {&ec384, EVP_sha384(), "EC-P-384"},
	    {&ec521, EVP_sha512(), "EC-P-521"},
	    {&k256, EVP_sha256(), "EC-secp256k1"},
	    {&ed25519, NULL, "Ed25519"},
	    {&ed448, NULL, "Ed448"},
	};
	char buf[ERR_MAX], small[5];
	X509_REQ *req;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		req = make_req(*cases[i].key, cases[i].md, "n", 0);
		ck_assert_str_eq(est_csr_key_name(req, buf, sizeof(buf)),
		                 cases[i].name);
		ck_assert_uint_eq(ERR_peek_error(), 0);
		X509_REQ_free(req);
	}

	/* Truncated, NUL-terminated. */
	req = make_req(rsa2048, EVP_sha256(), "n", 0);
	ck_assert_str_eq(est_csr_key_name(req, small, sizeof(small)), "RSA-");
	X509_REQ_free(req);

	/* No key at all. */
	req = X509_REQ_new();
	ck_assert_str_eq(est_csr_key_name(req, buf, sizeof(buf)), "unknown");
	ck_assert_str_eq(est_csr_key_name(NULL, buf, sizeof(buf)), "unknown");
	X509_REQ_free(req);
	ERR_clear_error();
}
END_TEST

START_TEST(test_csr_subject)
{
	char buf[ERR_MAX], small[8];
	X509_REQ *req;

	/* RFC 2253 lists the most specific RDN first. */
	req = make_req(ec256, EVP_sha256(), "device 1", 0);
	ck_assert_str_eq(est_csr_subject(req, buf, sizeof(buf)),
	                 "CN=device 1,O=Example");
	ck_assert_str_eq(est_csr_subject(req, small, sizeof(small)), "CN=devi");
	X509_REQ_free(req);

	/* Special characters escaped, control and UTF-8 bytes as \XX. */
	req = make_req(ec256, EVP_sha256(), "a,b+c\nJ\xc3\xb6rg", 0);
	est_csr_subject(req, buf, sizeof(buf));
	ck_assert_str_eq(buf, "CN=a\\,b\\+c\\0AJ\\C3\\B6rg,O=Example");
	X509_REQ_free(req);

	/* Empty subject. */
	req = X509_REQ_new();
	ck_assert_str_eq(est_csr_subject(req, buf, sizeof(buf)), "");
	ck_assert_str_eq(est_csr_subject(NULL, buf, sizeof(buf)), "");
	X509_REQ_free(req);
	ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_csr_extensions)
{
	STACK_OF(X509_EXTENSION) *exts;
	unsigned char *der;
	X509_REQ *req;
	size_t len;

	der = make_der(rsa2048, EVP_sha256(), "device", &len);
	req = assert_parses(der, len);
	exts = est_csr_extensions(req);
	ck_assert_ptr_nonnull(exts);
	ck_assert_int_eq(sk_X509_EXTENSION_num(exts), 1);
	ck_assert_int_eq(OBJ_obj2nid(X509_EXTENSION_get_object(
	                     sk_X509_EXTENSION_value(exts, 0))),
	                 NID_subject_alt_name);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	OPENSSL_free(der);

	req = make_req(ec256, EVP_sha256(), "device", 0);
	ck_assert_ptr_null(est_csr_extensions(req));
	ck_assert_ptr_null(est_csr_extensions(NULL));
	X509_REQ_free(req);
	ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/*
 * An EC key on P-256 whose SubjectPublicKeyInfo spells the curve out as
 * explicit parameters instead of naming it.  OpenSSL recognises the
 * parameters as P-256 and names the group, so only the encoding tells.
 */
static EVP_PKEY *
keygen_explicit_p256(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	OSSL_PARAM params[3];
	EVP_PKEY *key = NULL;

	ck_assert_ptr_nonnull(ctx);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	                                             (char *)"P-256", 0);
	params[1] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_EC_ENCODING, (char *)OSSL_PKEY_EC_ENCODING_EXPLICIT,
	    0);
	params[2] = OSSL_PARAM_construct_end();
	ck_assert_int_eq(EVP_PKEY_keygen_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_params(ctx, params), 1);
	ck_assert_int_eq(EVP_PKEY_generate(ctx, &key), 1);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

START_TEST(test_csr_ec_explicit_parameters_refused)
{
	EVP_PKEY *key = keygen_explicit_p256();
	const X509_ALGOR *palg = NULL;
	unsigned char *der;
	X509_REQ *req;
	size_t len;
	int ptype = 0;

	req = make_req(key, EVP_sha256(), "device", 1);
	/* The request really carries the parameters, not a curve OID. */
	ck_assert_int_eq(X509_PUBKEY_get0_param(NULL, NULL, NULL,
	                                        (X509_ALGOR **)&palg,
	                                        X509_REQ_get_X509_PUBKEY(req)),
	                 1);
	X509_ALGOR_get0(NULL, &ptype, NULL, palg);
	ck_assert_int_eq(ptype, V_ASN1_SEQUENCE);
	der = req_der(req, &len);
	assert_refused(der, len,
	               "CSR key EC-P-256 is not accepted: its curve is given "
	               "by explicit parameters, not named");
	OPENSSL_free(der);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
}
END_TEST

/* A stack of one extension, name=value in openssl.cnf syntax (free with
 * sk_X509_EXTENSION_pop_free). */
static STACK_OF(X509_EXTENSION) *
ext_stack(const char *name, const char *value)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *ext = X509V3_EXT_conf(NULL, NULL, name, value);

	ck_assert_ptr_nonnull(exts);
	ck_assert_ptr_nonnull(ext);
	ck_assert_int_gt(sk_X509_EXTENSION_push(exts, ext), 0);
	return exts;
}

/* Adds exts to req as an attribute of OID oid (text). */
static void
add_ext_attr(X509_REQ *req, const char *oid, STACK_OF(X509_EXTENSION) *exts)
{
	unsigned char *enc = NULL;
	int n;

	n = ASN1_item_i2d((const ASN1_VALUE *)exts, &enc,
	                  ASN1_ITEM_rptr(X509_EXTENSIONS));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(
	    X509_REQ_add1_attr_by_txt(req, oid, V_ASN1_SEQUENCE, enc, n), 1);
	OPENSSL_free(enc);
}

/*
 * Returns req (freed) re-read with the attribute OID from renamed to to,
 * which must encode to as many bytes.  OpenSSL 3.0 will not add a second
 * attribute of one type, so a request with two is made with a stand-in
 * type and renamed in its DER.
 */
static X509_REQ *
rename_attr(X509_REQ *req, const char *from, const char *to)
{
	ASN1_OBJECT *ofrom = OBJ_txt2obj(from, 1), *oto = OBJ_txt2obj(to, 1);
	unsigned char *der = NULL, *efrom = NULL, *eto = NULL, *at;
	const unsigned char *p;
	int len, nfrom, nto;

	ck_assert_ptr_nonnull(ofrom);
	ck_assert_ptr_nonnull(oto);
	nfrom = i2d_ASN1_OBJECT(ofrom, &efrom);
	nto = i2d_ASN1_OBJECT(oto, &eto);
	ck_assert_int_gt(nfrom, 0);
	ck_assert_int_eq(nfrom, nto);
	len = i2d_X509_REQ(req, &der);
	ck_assert_int_gt(len, 0);
	at = memmem(der, (size_t)len, efrom, (size_t)nfrom);
	ck_assert_ptr_nonnull(at);
	memcpy(at, eto, (size_t)nto);
	X509_REQ_free(req);
	p = der;
	req = d2i_X509_REQ(NULL, &p, len);
	ck_assert_ptr_nonnull(req);
	OPENSSL_free(der);
	OPENSSL_free(efrom);
	OPENSSL_free(eto);
	ASN1_OBJECT_free(ofrom);
	ASN1_OBJECT_free(oto);
	return req;
}

/* OIDs of the extension request attributes and of stand-ins of the same
 * encoded length (smimeCapabilities and an unassigned sibling). */
#define OID_EXT_REQ       "1.2.840.113549.1.9.14"
#define OID_EXT_REQ_STAND "1.2.840.113549.1.9.15"
#define OID_MS_EXT_REQ    "1.3.6.1.4.1.311.2.1.14"
#define OID_MS_STAND      "1.3.6.1.4.1.311.2.1.99"

/* Signs req with ec256, expects a refusal that contains why, frees req. */
static void
assert_req_refused(X509_REQ *req, const char *why)
{
	unsigned char *der;
	size_t len;

	ck_assert_int_gt(X509_REQ_sign(req, ec256, EVP_sha256()), 0);
	der = req_der(req, &len);
	assert_refused(der, len, why);
	OPENSSL_free(der);
	X509_REQ_free(req);
}

/*
 * OpenSSL, and so the policy, reads the first extensionRequest (else the
 * first msExtReq) and its first value; a CA may read another.  A request
 * with more than one of them, or with one of several values, is refused
 * rather than judged on one and honoured on another.
 */
START_TEST(test_csr_several_extension_requests_refused)
{
	STACK_OF(X509_EXTENSION) *ca = ext_stack("basicConstraints", "CA:TRUE");
	STACK_OF(X509_EXTENSION) *san =
	    ext_stack("subjectAltName", "DNS:device.example.com");
	X509_ATTRIBUTE *attr = NULL;
	unsigned char *enc = NULL, *der;
	X509_REQ *req;
	size_t len;
	int n;

	/* Two extensionRequest attributes. */
	req = make_req(ec256, EVP_sha256(), "device", 1);
	add_ext_attr(req, OID_EXT_REQ_STAND, ca);
	req = rename_attr(req, OID_EXT_REQ_STAND, OID_EXT_REQ);
	assert_req_refused(req, "CSR has 2 extension request attributes");

	/* extensionRequest and msExtReq. */
	req = make_req(ec256, EVP_sha256(), "device", 1);
	add_ext_attr(req, OID_MS_EXT_REQ, ca);
	assert_req_refused(req, "CSR has 2 extension request attributes");

	/* Two msExtReq. */
	req = make_req(ec256, EVP_sha256(), "device", 0);
	add_ext_attr(req, OID_MS_EXT_REQ, san);
	add_ext_attr(req, OID_MS_STAND, ca);
	req = rename_attr(req, OID_MS_STAND, OID_MS_EXT_REQ);
	assert_req_refused(req, "CSR has 2 extension request attributes");

	/* One extensionRequest holding two sets of extensions. */
	req = make_req(ec256, EVP_sha256(), "device", 0);
	n = ASN1_item_i2d((const ASN1_VALUE *)san, &enc,
	                  ASN1_ITEM_rptr(X509_EXTENSIONS));
	ck_assert_int_gt(n, 0);
	ck_assert_ptr_nonnull(X509_ATTRIBUTE_create_by_NID(
	    &attr, NID_ext_req, V_ASN1_SEQUENCE, enc, n));
	OPENSSL_free(enc);
	enc = NULL;
	n = ASN1_item_i2d((const ASN1_VALUE *)ca, &enc,
	                  ASN1_ITEM_rptr(X509_EXTENSIONS));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(
	    X509_ATTRIBUTE_set1_data(attr, V_ASN1_SEQUENCE, enc, n), 1);
	OPENSSL_free(enc);
	ck_assert_int_eq(X509_ATTRIBUTE_count(attr), 2);
	ck_assert_int_eq(X509_REQ_add1_attr(req, attr), 1);
	X509_ATTRIBUTE_free(attr);
	assert_req_refused(req,
	                   "CSR extensionRequest attribute holds 2 values");

	/* One msExtReq alone is a request like any other. */
	req = make_req(ec256, EVP_sha256(), "device", 0);
	add_ext_attr(req, OID_MS_EXT_REQ, san);
	ck_assert_int_gt(X509_REQ_sign(req, ec256, EVP_sha256()), 0);
	der = req_der(req, &len);
	X509_REQ_free(req);
	req = assert_parses(der, len);
	X509_REQ_free(req);
	OPENSSL_free(der);

	sk_X509_EXTENSION_pop_free(ca, X509_EXTENSION_free);
	sk_X509_EXTENSION_pop_free(san, X509_EXTENSION_free);
}
END_TEST

/* X.509 allows one instance of an extension; a CA honours one of two. */
START_TEST(test_csr_duplicate_extension_refused)
{
	STACK_OF(X509_EXTENSION) *ku =
	    ext_stack("keyUsage", "digitalSignature");
	X509_EXTENSION *again =
	    X509V3_EXT_conf(NULL, NULL, "keyUsage", "keyCertSign");
	X509_REQ *req;

	ck_assert_ptr_nonnull(again);
	ck_assert_int_gt(sk_X509_EXTENSION_push(ku, again), 0);
	req = make_req(ec256, EVP_sha256(), "device", 0);
	add_ext_attr(req, OID_EXT_REQ, ku);
	assert_req_refused(req, "CSR requests extension keyUsage twice");
	sk_X509_EXTENSION_pop_free(ku, X509_EXTENSION_free);
}
END_TEST

/*
 * RSA and EC requests take csr.c's fast decoding path; what comes out must
 * be the request received, byte for byte, with its key decoded.
 */
static void
assert_same_request(EVP_PKEY *key, const EVP_MD *md, int fast)
{
	unsigned char *der, *again = NULL;
	X509_REQ *req;
	size_t len;
	int n;

	der = make_der(key, md, "device", &len);
	req = assert_parses(der, len);
	ck_assert_ptr_nonnull(X509_REQ_get0_pubkey(req));
	ck_assert_int_eq(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key), 1);
	/* The fast path leaves a legacy key (no provider behind it); the
	 * normal path's decoder makes a provider key. */
	ck_assert_int_eq(
	    EVP_PKEY_get0_provider(X509_REQ_get0_pubkey(req)) == NULL, fast);
	n = i2d_X509_REQ(req, &again);
	ck_assert_int_eq(n, (int)len);
	ck_assert_int_eq(memcmp(again, der, len), 0);
	ck_assert_int_eq(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
	OPENSSL_free(again);
	X509_REQ_free(req);
	OPENSSL_free(der);
}

START_TEST(test_csr_decoded_as_received)
{
	assert_same_request(rsa2048, EVP_sha256(), 1);
	assert_same_request(ec256, EVP_sha256(), 1);
	assert_same_request(ec384, EVP_sha384(), 1);
	assert_same_request(ed25519, NULL, 0);
}
END_TEST

/*
 * A request whose outer length is not in its shortest form (BER, not DER)
 * does not re-encode to the bytes received: it takes the normal path and
 * is still accepted, as OpenSSL accepts it, with its signature checked
 * over the bytes the client signed.
 */
START_TEST(test_csr_non_der_length_accepted)
{
	unsigned char *der, *ber;
	X509_REQ *req;
	size_t len;

	der = make_der(rsa2048, EVP_sha256(), "device", &len);
	/* An RSA-2048 request is longer than 255 bytes: 30 82 HH LL. */
	ck_assert_int_eq(der[0], 0x30);
	ck_assert_int_eq(der[1], 0x82);
	ber = malloc(len + 1);
	ck_assert_ptr_nonnull(ber);
	ber[0] = 0x30;
	ber[1] = 0x83;
	ber[2] = 0x00;
	memcpy(ber + 3, der + 2, len - 2);
	req = assert_parses(ber, len + 1);
	ck_assert_ptr_nonnull(X509_REQ_get0_pubkey(req));
	/* Not the fast path: its re-encoding differs from these bytes. */
	ck_assert_ptr_nonnull(
	    EVP_PKEY_get0_provider(X509_REQ_get0_pubkey(req)));
	X509_REQ_free(req);
	free(ber);
	OPENSSL_free(der);
}
END_TEST

static Suite *
csr_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("est_csr");
	tc = tcase_create("keys");
	tcase_add_test(tc, test_csr_rsa2048_sha256_accepted);
	tcase_add_test(tc, test_csr_rsa1024_refused);
	tcase_add_test(tc, test_csr_ec_p256_accepted);
	tcase_add_test(tc, test_csr_ec_p384_accepted);
	tcase_add_test(tc, test_csr_ec_p521_refused);
	tcase_add_test(tc, test_csr_ec_secp256k1_refused);
	tcase_add_test(tc, test_csr_ed25519_accepted);
	tcase_add_test(tc, test_csr_ed448_refused);
	tcase_add_test(tc, test_csr_rsa_pss_key_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("signatures");
	tcase_add_test(tc, test_csr_sha1_signature_refused);
	tcase_add_test(tc, test_csr_md5_signature_refused);
	tcase_add_test(tc, test_csr_rsa_pss_sha256_accepted);
	tcase_add_test(tc, test_csr_rsa_pss_sha1_refused);
	tcase_add_test(tc, test_csr_tampered_subject_refused);
	tcase_add_test(tc, test_csr_tampered_signature_refused);
	tcase_add_test(tc, test_csr_swapped_signature_algorithm_refused);
	tcase_add_test(tc, test_csr_ec_point_at_infinity_refused);
	tcase_add_test(tc, test_csr_ed25519_neutral_key_refused);
	tcase_add_test(tc, test_csr_rsa_exponent_one_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("syntax");
	tcase_add_test(tc, test_csr_trailing_garbage_refused);
	tcase_add_test(tc, test_csr_garbage_refused);
	tcase_add_test(tc, test_csr_empty_refused);
	tcase_add_test(tc, test_csr_version_2_refused);
	tcase_add_test(tc, test_csr_malformed_extension_request_refused);
	tcase_add_test(tc, test_csr_ec_explicit_parameters_refused);
	tcase_add_test(tc, test_csr_several_extension_requests_refused);
	tcase_add_test(tc, test_csr_duplicate_extension_refused);
	tcase_add_test(tc, test_csr_stale_errors_not_reported);
	tcase_add_test(tc, test_csr_no_err_buffer);
	tcase_add_test(tc, test_csr_decoded_as_received);
	tcase_add_test(tc, test_csr_non_der_length_accepted);
	suite_add_tcase(s, tc);

	tc = tcase_create("describe");
	tcase_add_test(tc, test_csr_key_name);
	tcase_add_test(tc, test_csr_subject);
	tcase_add_test(tc, test_csr_extensions);
	suite_add_tcase(s, tc);
	return s;
}

/* Makes a key of the given algorithm, failing the whole run when it cannot. */
static EVP_PKEY *
keygen(const char *alg, const char *curve, size_t bits)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *key = NULL;

	if (strcmp(alg, "RSA-PSS") == 0) {
		/* EVP_PKEY_Q_keygen() takes a size for "RSA" only. */
		if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL)) !=
		        NULL &&
		    EVP_PKEY_keygen_init(ctx) > 0 &&
		    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) > 0)
			(void)EVP_PKEY_generate(ctx, &key);
		EVP_PKEY_CTX_free(ctx);
	} else if (curve != NULL)
		key = EVP_PKEY_Q_keygen(NULL, NULL, alg, curve);
	else if (bits > 0)
		key = EVP_PKEY_Q_keygen(NULL, NULL, alg, bits);
	else
		key = EVP_PKEY_Q_keygen(NULL, NULL, alg);
	if (key == NULL) {
		fprintf(stderr, "cannot generate %s %s key\n", alg,
		        curve != NULL ? curve : "");
		ERR_print_errors_fp(stderr);
		exit(EXIT_FAILURE);
	}
	return key;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	rsa2048 = keygen("RSA", NULL, 2048);
	rsa1024 = keygen("RSA", NULL, 1024);
	rsapss2048 = keygen("RSA-PSS", NULL, 2048);
	ec256 = keygen("EC", "P-256", 0);
	ec384 = keygen("EC", "P-384", 0);
	ec521 = keygen("EC", "P-521", 0);
	k256 = keygen("EC", "secp256k1", 0);
	ed25519 = keygen("ED25519", NULL, 0);
	ed448 = keygen("ED448", NULL, 0);

	sr = srunner_create(csr_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(rsapss2048);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(ec521);
	EVP_PKEY_free(k256);
	EVP_PKEY_free(ed25519);
	EVP_PKEY_free(ed448);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
