/*
 * check_est_pkcs7.c: unit tests of src/est/pkcs7.c, the certs-only PKCS#7
 * and CsrAttrs bodies, read back with OpenSSL's decoders.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "est/pkcs7.h"

/* Size of the error buffers handed to est_pkcs7_csrattrs(). */
#define ERR_MAX 256

/* The CsrAttrs example of RFC 7030 Appendix A.2, DER. */
static const unsigned char rfc7030_a2[] = {
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09,
    0x07, 0x30, 0x12, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x31, 0x07, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x30, 0x16, 0x06,
    0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e, 0x31, 0x09,
    0x06, 0x07, 0x2b, 0x06, 0x01, 0x01, 0x01, 0x01, 0x16, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
};

/* One key for all test certificates, made in main() before forking. */
static EVP_PKEY *key;

/* Returns a new self-signed certificate for CN=cn (free with X509_free). */
static X509 *
make_cert(const char *cn, long serial)
{
	X509_NAME *name;
	X509 *x;

	x = X509_new();
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
	name = X509_get_subject_name(x);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                            (const unsigned char *)cn,
	                                            -1, -1, 0),
	                 1);
	ck_assert_int_eq(X509_set_issuer_name(x, name), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	return x;
}

/*
 * Decodes der as PKCS#7, checks it is a certs-only SignedData (no
 * signers, no digest algorithms, id-data content type without content)
 * holding exactly want, in order.
 */
static void
assert_certs_only(const unsigned char *der, size_t len, STACK_OF(X509) *want)
{
	STACK_OF(X509) *got;
	const unsigned char *p;
	PKCS7_SIGNED *sd;
	PKCS7 *p7;
	int i;

	p = der;
	p7 = d2i_PKCS7(NULL, &p, (long)len);
	ck_assert_ptr_nonnull(p7);
	ck_assert_ptr_eq(p, der + len);
	ck_assert_int_eq(PKCS7_type_is_signed(p7), 1);
	sd = p7->d.sign;
	ck_assert_int_eq(ASN1_INTEGER_get(sd->version), 1);
	ck_assert_int_eq(sk_X509_ALGOR_num(sd->md_algs), 0);
	ck_assert_int_eq(sk_PKCS7_SIGNER_INFO_num(PKCS7_get_signer_info(p7)),
	                 0);
	ck_assert_int_eq(PKCS7_type_is_data(sd->contents), 1);
	ck_assert_ptr_null(sd->contents->d.data);

	/* No certificates at all leaves the OPTIONAL field out. */
	got = sd->cert;
	ck_assert_int_eq(got == NULL ? 0 : sk_X509_num(got), sk_X509_num(want));
	for (i = 0; i < sk_X509_num(want); i++)
		ck_assert_int_eq(
		    X509_cmp(sk_X509_value(got, i), sk_X509_value(want, i)), 0);
	PKCS7_free(p7);
}

START_TEST(test_pkcs7_certs_only_two_certs_in_order)
{
	STACK_OF(X509) *certs;
	unsigned char *der;
	size_t len;

	/* Issued first, then its "issuer": the order clients expect. */
	certs = sk_X509_new_null();
	ck_assert_int_gt(sk_X509_push(certs, make_cert("zz leaf", 2)), 0);
	ck_assert_int_gt(sk_X509_push(certs, make_cert("aa root", 1)), 0);
	der = est_pkcs7_certs_only(certs, &len);
	ck_assert_ptr_nonnull(der);
	assert_certs_only(der, len, certs);
	OPENSSL_free(der);

	/* The reverse order stays reversed: no DER SET OF sorting. */
	sk_X509_push(certs, sk_X509_shift(certs));
	der = est_pkcs7_certs_only(certs, &len);
	ck_assert_ptr_nonnull(der);
	assert_certs_only(der, len, certs);
	OPENSSL_free(der);

	/* Borrowed: the caller's certificates are still intact. */
	ck_assert_int_eq(sk_X509_num(certs), 2);
	sk_X509_pop_free(certs, X509_free);
}
END_TEST

START_TEST(test_pkcs7_certs_only_one_cert)
{
	STACK_OF(X509) *certs;
	unsigned char *der;
	size_t len;

	certs = sk_X509_new_null();
	ck_assert_int_gt(sk_X509_push(certs, make_cert("device", 7)), 0);
	der = est_pkcs7_certs_only(certs, &len);
	ck_assert_ptr_nonnull(der);
	assert_certs_only(der, len, certs);
	OPENSSL_free(der);
	sk_X509_pop_free(certs, X509_free);
}
END_TEST

START_TEST(test_pkcs7_certs_only_empty_and_null)
{
	STACK_OF(X509) *certs;
	unsigned char *der;
	size_t len = 42;

	certs = sk_X509_new_null();
	der = est_pkcs7_certs_only(certs, &len);
	ck_assert_ptr_nonnull(der);
	assert_certs_only(der, len, certs);
	OPENSSL_free(der);

	ck_assert_ptr_null(est_pkcs7_certs_only(NULL, &len));
	ck_assert_uint_eq(len, 0);
	ck_assert_ptr_null(est_pkcs7_certs_only(certs, NULL));

	/* A NULL slot is refused, not dereferenced. */
	ck_assert_int_gt(sk_X509_push(certs, NULL), 0);
	ck_assert_ptr_null(est_pkcs7_certs_only(certs, &len));
	sk_X509_free(certs);
	ERR_clear_error();
}
END_TEST

/* Builds CsrAttrs from names, expecting success; returns DER, sets *len. */
static unsigned char *
assert_csrattrs(const char *const *names, size_t count, size_t *len)
{
	unsigned char *der;
	char err[ERR_MAX];

	der = est_pkcs7_csrattrs(names, count, len, err, sizeof(err));
	ck_assert_msg(der != NULL, "refused: %s", err);
	ck_assert_uint_eq(ERR_peek_error(), 0);
	return der;
}

START_TEST(test_pkcs7_csrattrs_a2_like_decodes)
{
	static const char *const names[] = {
	    "challengePassword",
	    "id-ecPublicKey:secp384r1",
	    "ecdsa-with-SHA384",
	};
	ASN1_SEQUENCE_ANY *seq;
	const unsigned char *p;
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *t, *v;
	unsigned char *der;
	size_t len;

	der = assert_csrattrs(names, 3, &len);
	p = der;
	seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
	ck_assert_ptr_nonnull(seq);
	ck_assert_ptr_eq(p, der + len);
	ck_assert_int_eq(sk_ASN1_TYPE_num(seq), 3);

	t = sk_ASN1_TYPE_value(seq, 0);
	ck_assert_int_eq(ASN1_TYPE_get(t), V_ASN1_OBJECT);
	ck_assert_int_eq(OBJ_obj2nid(t->value.object),
	                 NID_pkcs9_challengePassword);

	/* Attribute { id-ecPublicKey, SET { secp384r1 } }. */
	t = sk_ASN1_TYPE_value(seq, 1);
	ck_assert_int_eq(ASN1_TYPE_get(t), V_ASN1_SEQUENCE);
	attr = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ATTRIBUTE), t);
	ck_assert_ptr_nonnull(attr);
	ck_assert_int_eq(OBJ_obj2nid(X509_ATTRIBUTE_get0_object(attr)),
	                 NID_X9_62_id_ecPublicKey);
	ck_assert_int_eq(X509_ATTRIBUTE_count(attr), 1);
	v = X509_ATTRIBUTE_get0_type(attr, 0);
	ck_assert_int_eq(ASN1_TYPE_get(v), V_ASN1_OBJECT);
	ck_assert_int_eq(OBJ_obj2nid(v->value.object), NID_secp384r1);
	X509_ATTRIBUTE_free(attr);

	t = sk_ASN1_TYPE_value(seq, 2);
	ck_assert_int_eq(ASN1_TYPE_get(t), V_ASN1_OBJECT);
	ck_assert_int_eq(OBJ_obj2nid(t->value.object), NID_ecdsa_with_SHA384);

	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	OPENSSL_free(der);
}
END_TEST

START_TEST(test_pkcs7_csrattrs_rfc7030_a2_bytes)
{
	/*
	 * The full A.2 list, including its extensionRequest (OpenSSL's
	 * "extReq") with a bare OID, which RFC 9908 no longer allows but
	 * whose bytes are known.
	 */
	static const char *const names[] = {
	    "challengePassword",
	    "id-ecPublicKey:secp384r1",
	    "extReq:1.3.6.1.1.1.1.22",
	    "ecdsa-with-SHA384",
	};
	static const char *const dotted[] = {
	    "1.2.840.113549.1.9.7",
	    "1.2.840.10045.2.1:1.3.132.0.34",
	    "1.2.840.113549.1.9.14:1.3.6.1.1.1.1.22",
	    "1.2.840.10045.4.3.3",
	};
	unsigned char *der;
	size_t len;

	der = assert_csrattrs(names, 4, &len);
	ck_assert_uint_eq(len, sizeof(rfc7030_a2));
	ck_assert_mem_eq(der, rfc7030_a2, len);
	OPENSSL_free(der);

	der = assert_csrattrs(dotted, 4, &len);
	ck_assert_uint_eq(len, sizeof(rfc7030_a2));
	ck_assert_mem_eq(der, rfc7030_a2, len);
	OPENSSL_free(der);
}
END_TEST

START_TEST(test_pkcs7_csrattrs_empty_list)
{
	static const char *const none[] = {"unused"};
	unsigned char *der;
	size_t len;

	der = assert_csrattrs(none, 0, &len);
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(der, "\x30\x00", 2);
	OPENSSL_free(der);

	der = assert_csrattrs(NULL, 0, &len);
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(der, "\x30\x00", 2);
	OPENSSL_free(der);
}
END_TEST

/* Expects names[0] alone to be refused with a reason containing why. */
static void
assert_csrattr_refused(const char *name, const char *why)
{
	const char *names[2];
	char err[ERR_MAX];
	size_t len = 42;

	names[0] = "challengePassword";
	names[1] = name;
	ck_assert_ptr_null(
	    est_pkcs7_csrattrs(names, 2, &len, err, sizeof(err)));
	ck_assert_uint_eq(len, 0);
	ck_assert_msg(strstr(err, why) != NULL, "reason \"%s\" lacks \"%s\"",
	              err, why);
	ck_assert_uint_eq(ERR_peek_error(), 0);
}

START_TEST(test_pkcs7_csrattrs_bad_name_named)
{
	assert_csrattr_refused("noSuchAttribute",
	                       "csrattrs entry \"noSuchAttribute\" is not an "
	                       "OID or a known object name");
	assert_csrattr_refused("1.2.x.4", "\"1.2.x.4\"");
	assert_csrattr_refused("id-ecPublicKey:secp999r1",
	                       "csrattrs entry \"id-ecPublicKey:secp999r1\": "
	                       "\"secp999r1\" is not an OID");
	assert_csrattr_refused("nokey:secp384r1", "\"nokey\" is not an OID");
	assert_csrattr_refused(":secp384r1",
	                       "\":secp384r1\" is not KEYTYPE:PARAM");
	assert_csrattr_refused("id-ecPublicKey:",
	                       "\"id-ecPublicKey:\" is not KEYTYPE:PARAM");
	assert_csrattr_refused("a:b:c", "\"a:b:c\" is not KEYTYPE:PARAM");
	assert_csrattr_refused("", "csrattrs entry \"\" is empty");
	assert_csrattr_refused(NULL, "is empty");
	/* A name OpenSSL knows but with no OID to encode. */
	assert_csrattr_refused("ChaCha20", "\"ChaCha20\" is not an OID");
}
END_TEST

START_TEST(test_pkcs7_csrattrs_no_output)
{
	static const char *const names[] = {"challengePassword"};
	char err[ERR_MAX];
	size_t len;

	ck_assert_ptr_null(
	    est_pkcs7_csrattrs(names, 1, NULL, err, sizeof(err)));
	ck_assert_ptr_null(est_pkcs7_csrattrs(NULL, 1, &len, err, sizeof(err)));
	ck_assert_ptr_null(est_pkcs7_csrattrs(NULL, 1, &len, NULL, 0));
}
END_TEST

static Suite *
pkcs7_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("est_pkcs7");
	tc = tcase_create("certs_only");
	tcase_add_test(tc, test_pkcs7_certs_only_two_certs_in_order);
	tcase_add_test(tc, test_pkcs7_certs_only_one_cert);
	tcase_add_test(tc, test_pkcs7_certs_only_empty_and_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("csrattrs");
	tcase_add_test(tc, test_pkcs7_csrattrs_a2_like_decodes);
	tcase_add_test(tc, test_pkcs7_csrattrs_rfc7030_a2_bytes);
	tcase_add_test(tc, test_pkcs7_csrattrs_empty_list);
	tcase_add_test(tc, test_pkcs7_csrattrs_bad_name_named);
	tcase_add_test(tc, test_pkcs7_csrattrs_no_output);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL) {
		ERR_print_errors_fp(stderr);
		return EXIT_FAILURE;
	}
	sr = srunner_create(pkcs7_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	EVP_PKEY_free(key);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
