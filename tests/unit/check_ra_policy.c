/*
 * check_ra_policy.c: the label policy evaluator (ra/policy.c) on CSRs
 * built in the test, its strict parser, and the PoP linking check
 * (ra/pop.c) with channel bindings given as bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>
#include <openssl/conf.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ra/policy.h"
#include "ra/pop.h"

static EVP_PKEY *key_p256, *key_p384;

static void
setup(void)
{
	if (key_p256 == NULL)
		key_p256 = EVP_EC_gen("P-256");
	if (key_p384 == NULL)
		key_p384 = EVP_EC_gen("P-384");
	ck_assert_ptr_nonnull(key_p256);
	ck_assert_ptr_nonnull(key_p384);
}

/*
 * A signed CSR for cn (may be NULL) with the given SAN and extra
 * extensions ("name=value", NULL-terminated), challengePassword when cp is
 * set, signed with key and md.
 */
static X509_REQ *
make_csr(EVP_PKEY *key, const EVP_MD *md, const char *cn, const char *san,
         const char *const *exts, const char *cp)
{
	STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
	X509_REQ *req = X509_REQ_new();
	CONF *conf = NCONF_new(NULL);
	X509_EXTENSION *ext;
	char name[128], *eq;
	X509V3_CTX v3;
	size_t i;

	ck_assert_ptr_nonnull(req);
	ck_assert_ptr_nonnull(sk);
	X509_REQ_set_version(req, 0);
	if (cn != NULL)
		ck_assert_int_eq(X509_NAME_add_entry_by_txt(
		                     X509_REQ_get_subject_name(req), "CN",
		                     MBSTRING_UTF8, (const unsigned char *)cn,
		                     -1, -1, 0),
		                 1);
	X509V3_set_ctx(&v3, NULL, NULL, req, NULL, 0);
	X509V3_set_nconf(&v3, conf);
	if (san != NULL) {
		ext =
		    X509V3_EXT_nconf_nid(conf, &v3, NID_subject_alt_name, san);
		ck_assert_ptr_nonnull(ext);
		sk_X509_EXTENSION_push(sk, ext);
	}
	for (i = 0; exts != NULL && exts[i] != NULL; i++) {
		snprintf(name, sizeof(name), "%s", exts[i]);
		eq = strchr(name, '=');
		ck_assert_ptr_nonnull(eq);
		*eq = '\0';
		ext = X509V3_EXT_nconf(conf, &v3, name, eq + 1);
		ck_assert_ptr_nonnull(ext);
		sk_X509_EXTENSION_push(sk, ext);
	}
	if (sk_X509_EXTENSION_num(sk) > 0)
		ck_assert_int_eq(X509_REQ_add_extensions(req, sk), 1);
	if (cp != NULL)
		ck_assert_int_eq(
		    X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
		                              MBSTRING_ASC,
		                              (const unsigned char *)cp, -1),
		    1);
	ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
	ck_assert_int_gt(X509_REQ_sign(req, key, md), 0);
	sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
	NCONF_free(conf);
	return req;
}

/* A policy from JSON text (NULL: the defaults); fails the test if bad. */
static struct ra_policy *
policy_of(const char *text)
{
	struct ra_policy *p;
	struct ca_err err;
	json_t *conf = NULL;

	memset(&err, 0, sizeof(err));
	if (text != NULL) {
		conf = json_loads(text, 0, NULL);
		ck_assert_ptr_nonnull(conf);
	}
	p = ra_policy_new(conf, &err);
	ck_assert_msg(p != NULL, "policy refused: %s: %s", err.key, err.text);
	json_decref(conf);
	return p;
}

/* Parses text and expects an error at key with text containing want. */
static void
expect_policy_error(const char *text, const char *key, const char *want)
{
	struct ca_err err;
	json_t *conf = json_loads(text, 0, NULL);

	ck_assert_ptr_nonnull(conf);
	memset(&err, 0, sizeof(err));
	ck_assert_ptr_null(ra_policy_new(conf, &err));
	ck_assert_str_eq(err.key, key);
	ck_assert_msg(strstr(err.text, want) != NULL, "\"%s\" lacks \"%s\"",
	              err.text, want);
	json_decref(conf);
}

/* Runs the evaluator; returns 0 or -1 and fills v. */
static int
check(const struct ra_policy *p, X509_REQ *csr, const char *user,
      const char *cert_cn, int is_ra, struct ra_policy_verdict *v)
{
	struct ra_policy_input in = {csr, user, cert_cn, is_ra};

	return ra_policy_check(p, &in, v);
}

START_TEST(test_policy_defaults_allow_plain_csr)
{
	struct ra_policy *p = policy_of(NULL);
	X509_REQ *csr = make_csr(key_p256, EVP_sha256(), "host.example",
	                         "DNS:host.example,IP:192.0.2.1", NULL, NULL);
	struct ra_policy_verdict v;

	ck_assert_int_eq(check(p, csr, "estuser", NULL, 0, &v), 0);
	ck_assert_int_eq(v.allowed, 1);
	ck_assert_str_eq(v.dropped, "");
	X509_REQ_free(csr);
	ra_policy_free(p);
}
END_TEST

START_TEST(test_policy_san_outside_pattern_refused)
{
	struct ra_policy *p =
	    policy_of("{\"san\": {\"dns\": "
	              "[\"[a-z0-9-]+\\\\.phones\\\\.example\\\\.com\"]}}");
	X509_REQ *csr = make_csr(key_p256, EVP_sha256(), "SEP001122334455",
	                         "DNS:cucm.example.com", NULL, NULL);
	struct ra_policy_verdict v;

	ck_assert_int_eq(check(p, csr, NULL, NULL, 0, &v), -1);
	ck_assert_int_eq(v.allowed, 0);
	ck_assert_str_eq(v.rule, "san.dns");
	ck_assert_str_eq(v.reason,
	                 "CSR refused: subjectAltName dNSName "
	                 "\"cucm.example.com\" not allowed by rule san.dns");
	ck_assert_ptr_nonnull(strstr(v.hint, "phones"));
	X509_REQ_free(csr);
	ra_policy_free(p);
}
END_TEST

START_TEST(test_policy_san_inside_pattern_allowed_case_insensitive)
{
	struct ra_policy *p =
	    policy_of("{\"san\": {\"dns\": "
	              "[\"[a-z0-9-]+\\\\.phones\\\\.example\\\\.com\"],"
	              " \"ip\": [\"192\\\\.0\\\\.2\\\\.[0-9]+\"]}}");
	X509_REQ *csr =
	    make_csr(key_p256, EVP_sha256(), "x",
	             "DNS:SEP1.Phones.Example.COM,IP:192.0.2.9", NULL, NULL);
	X509_REQ *bad =
	    make_csr(key_p256, EVP_sha256(), "x",
	             "DNS:a.phones.example.com,IP:198.51.100.1", NULL, NULL);
	struct ra_policy_verdict v;

	ck_assert_int_eq(check(p, csr, NULL, NULL, 0, &v), 0);
	ck_assert_int_eq(check(p, bad, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "san.ip");
	X509_REQ_free(csr);
	X509_REQ_free(bad);
	ra_policy_free(p);
}
END_TEST

START_TEST(test_policy_pattern_is_anchored)
{
	struct ra_policy *p = policy_of("{\"cn\": [\"SEP[0-9A-F]{12}\"]}");
	X509_REQ *ok = make_csr(key_p256, EVP_sha256(), "SEP0011223344AA", NULL,
	                        NULL, NULL);
	X509_REQ *longer = make_csr(key_p256, EVP_sha256(), "xSEP0011223344AAx",
	                            NULL, NULL, NULL);
	X509_REQ *none =
	    make_csr(key_p256, EVP_sha256(), NULL, NULL, NULL, NULL);
	struct ra_policy_verdict v;

	ck_assert_int_eq(check(p, ok, NULL, NULL, 0, &v), 0);
	ck_assert_int_eq(check(p, longer, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "cn");
	ck_assert_int_eq(check(p, none, NULL, NULL, 0, &v), -1);
	ck_assert_ptr_nonnull(strstr(v.reason, "has no CN"));
	X509_REQ_free(ok);
	X509_REQ_free(longer);
	X509_REQ_free(none);
	ra_policy_free(p);
}
END_TEST

START_TEST(test_policy_san_max_and_other_types)
{
	struct ra_policy *p = policy_of("{\"san\": {\"max\": 1}}");
	X509_REQ *two = make_csr(key_p256, EVP_sha256(), "x",
	                         "DNS:a.example,DNS:b.example", NULL, NULL);
	X509_REQ *other =
	    make_csr(key_p256, EVP_sha256(), "x", "RID:1.2.3.4", NULL, NULL);
	struct ra_policy_verdict v;

	ck_assert_int_eq(check(p, two, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "san.max");
	ck_assert_int_eq(check(p, other, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "san.other");
	X509_REQ_free(two);
	X509_REQ_free(other);
	ra_policy_free(p);
}
END_TEST

START_TEST(test_policy_cn_equals_identity)
{
	struct ra_policy *user = policy_of("{\"cn_equals\": \"user\"}");
	struct ra_policy *id = policy_of("{\"cn_equals\": \"identity\"}");
	X509_REQ *csr =
	    make_csr(key_p256, EVP_sha256(), "estuser", NULL, NULL, NULL);
	struct ra_policy_verdict v;

	ck_assert_int_eq(check(user, csr, "estuser", NULL, 0, &v), 0);
	ck_assert_int_eq(check(user, csr, "other", NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "cn_equals");
	ck_assert_int_eq(check(user, csr, NULL, "estuser", 0, &v), -1);
	ck_assert_ptr_nonnull(strstr(v.reason, "the client has none"));
	/* identity: the Basic user, else the certificate's CN. */
	ck_assert_int_eq(check(id, csr, NULL, "estuser", 0, &v), 0);
	ck_assert_int_eq(check(id, csr, NULL, "device-1", 0, &v), -1);
	/* An RA enrolls for others. */
	ck_assert_int_eq(check(id, csr, NULL, "ra-client", 1, &v), 0);
	X509_REQ_free(csr);
	ra_policy_free(user);
	ra_policy_free(id);
}
END_TEST

START_TEST(test_policy_keys_and_signature)
{
	struct ra_policy *p = policy_of("{\"keys\": {\"ec\": [\"P-384\"]},"
	                                " \"signature\": [\"sha384\"]}");
	X509_REQ *p256 =
	    make_csr(key_p256, EVP_sha384(), "x", NULL, NULL, NULL);
	X509_REQ *sha256 =
	    make_csr(key_p384, EVP_sha256(), "x", NULL, NULL, NULL);
	X509_REQ *ok = make_csr(key_p384, EVP_sha384(), "x", NULL, NULL, NULL);
	struct ra_policy_verdict v;

	ck_assert_int_eq(check(p, p256, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "keys.ec");
	ck_assert_int_eq(check(p, sha256, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "signature");
	ck_assert_int_eq(check(p, ok, NULL, NULL, 0, &v), 0);
	X509_REQ_free(p256);
	X509_REQ_free(sha256);
	X509_REQ_free(ok);
	ra_policy_free(p);
}
END_TEST

START_TEST(test_policy_extensions_dropped_or_refused)
{
	static const char *const smuggled[] = {
	    "basicConstraints=critical,CA:TRUE",
	    "extendedKeyUsage=codeSigning",
	    NULL,
	};
	struct ra_policy *drop = policy_of(NULL);
	struct ra_policy *refuse =
	    policy_of("{\"extensions\": {\"unlisted\": \"refuse\"}}");
	X509_REQ *csr = make_csr(key_p256, EVP_sha256(), "x", "DNS:x.example",
	                         smuggled, NULL);
	struct ra_policy_verdict v;

	ck_assert_int_eq(check(drop, csr, NULL, NULL, 0, &v), 0);
	ck_assert_str_eq(v.dropped, "basicConstraints,extendedKeyUsage");
	ck_assert_int_eq(check(refuse, csr, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "extensions");
	ck_assert_ptr_nonnull(strstr(v.reason, "basicConstraints"));
	X509_REQ_free(csr);
	ra_policy_free(drop);
	ra_policy_free(refuse);
}
END_TEST

START_TEST(test_policy_allowed_extensions_still_bounded)
{
	static const char *const ca[] = {"basicConstraints=CA:TRUE", NULL};
	static const char *const eku[] = {"extendedKeyUsage=codeSigning", NULL};
	static const char *const good[] = {"extendedKeyUsage=clientAuth",
	                                   "basicConstraints=CA:FALSE", NULL};
	struct ra_policy *p =
	    policy_of("{\"extensions\": {\"allow\": [\"basicConstraints\", "
	              "\"extendedKeyUsage\"], \"eku\": [\"clientAuth\"]}}");
	X509_REQ *r1 = make_csr(key_p256, EVP_sha256(), "x", NULL, ca, NULL);
	X509_REQ *r2 = make_csr(key_p256, EVP_sha256(), "x", NULL, eku, NULL);
	X509_REQ *r3 = make_csr(key_p256, EVP_sha256(), "x", NULL, good, NULL);
	struct ra_policy_verdict v;

	ck_assert_int_eq(check(p, r1, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "extensions.basicConstraints");
	ck_assert_int_eq(check(p, r2, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "extensions.eku");
	ck_assert_ptr_nonnull(strstr(v.reason, "codeSigning"));
	ck_assert_int_eq(check(p, r3, NULL, NULL, 0, &v), 0);
	X509_REQ_free(r1);
	X509_REQ_free(r2);
	X509_REQ_free(r3);
	ra_policy_free(p);
}
END_TEST

START_TEST(test_policy_parse_errors_name_the_key)
{
	expect_policy_error("{\"cnn\": []}", "cnn", "unknown key \"cnn\"");
	expect_policy_error("{\"san\": {\"dns\": [\"ok\", \"a(\"]}}",
	                    "san.dns.1", "not a POSIX extended regular");
	expect_policy_error("{\"san\": {\"dnss\": []}}", "san.dnss",
	                    "unknown key");
	expect_policy_error("{\"signature\": [\"sha1\"]}", "signature.0",
	                    "broken");
	expect_policy_error("{\"keys\": {\"ec\": [\"P-999\"]}}", "keys.ec.0",
	                    "curve");
	expect_policy_error("{\"keys\": {\"rsa\": 1024}}", "keys.rsa", "2048");
	expect_policy_error(
	    "{\"extensions\": {\"allow\": [\"extendedKeyUsage\"]}}",
	    "extensions.eku", "required");
	expect_policy_error("{\"extensions\": {\"unlisted\": \"keep\"}}",
	                    "extensions.unlisted", "\"drop\" or \"refuse\"");
	expect_policy_error("{\"cn_equals\": \"me\"}", "cn_equals",
	                    "\"identity\"");
}
END_TEST

/* --- PoP linking ---------------------------------------------------------- */

static const unsigned char unique[12] = "0123456789ab";
static const unsigned char exporter[32] = "0123456789abcdef0123456789abcdef";

static struct ra_pop_channel
channel(int tls13)
{
	struct ra_pop_channel ch;

	memset(&ch, 0, sizeof(ch));
	ch.tls13 = tls13;
	if (tls13) {
		ch.exporter = exporter;
		ch.exporter_len = sizeof(exporter);
	} else {
		ch.unique = unique;
		ch.unique_len = sizeof(unique);
	}
	return ch;
}

START_TEST(test_policy_open_names)
{
	static const struct {
		const char *conf, *want;
	} cases[] = {
	    {NULL, "subject CN, dNSName, iPAddress, rfc822Name, URI"},
	    {"{\"cn_equals\": \"identity\"}",
	     "dNSName, iPAddress, rfc822Name, URI"},
	    {"{\"cn\": [\"SEP[0-9A-F]{12}\"], \"san\": {\"max\": 0}}", ""},
	    {"{\"cn_equals\": \"user\", \"san\": {\"dns\": "
	     "[\"a\\\\.example\"], "
	     "\"other\": true}}",
	     "iPAddress, rfc822Name, URI, otherName/dirName"},
	    {"{\"cn_equals\": \"cert_cn\", \"extensions\": {\"allow\": []}}",
	     ""},
	    {"{\"cn_equals\": \"user\", \"san\": {\"dns\": [], \"ip\": [], "
	     "\"email\": [], \"uri\": []}}",
	     ""},
	};
	char buf[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ra_policy *p = policy_of(cases[i].conf);

		ck_assert_int_eq(ra_policy_open_names(p, buf, sizeof(buf)),
		                 cases[i].want[0] != '\0');
		ck_assert_str_eq(buf, cases[i].want);
		/* A short buffer is cut, never overrun. */
		ck_assert_int_eq(ra_policy_open_names(p, buf, 8),
		                 cases[i].want[0] != '\0');
		ck_assert_uint_lt(strlen(buf), 8);
		ra_policy_free(p);
	}
}
END_TEST

START_TEST(test_pop_tls_unique_match_and_mismatch)
{
	struct ra_pop_channel ch = channel(0);
	struct ra_pop_result r;
	char b64[64];
	X509_REQ *ok, *bad, *none;

	EVP_EncodeBlock((unsigned char *)b64, unique, sizeof(unique));
	ok = make_csr(key_p256, EVP_sha256(), "x", NULL, NULL, b64);
	bad = make_csr(key_p256, EVP_sha256(), "x", NULL, NULL,
	               "AAAAAAAAAAAAAAAA");
	none = make_csr(key_p256, EVP_sha256(), "x", NULL, NULL, NULL);
	ck_assert_int_eq(ra_pop_check(RA_POP_OPTIONAL, 0, 0, ok, &ch, &r), 0);
	ck_assert_str_eq(r.linked, "tls-unique");
	ck_assert_int_eq(ra_pop_check(RA_POP_OPTIONAL, 0, 0, bad, &ch, &r), -1);
	ck_assert_int_eq(r.status, 403);
	ck_assert_ptr_nonnull(strstr(r.reason, "popFailed"));
	ck_assert_int_eq(ra_pop_check(RA_POP_OPTIONAL, 0, 0, none, &ch, &r), 0);
	ck_assert_str_eq(r.linked, "none");
	ck_assert_int_eq(ra_pop_check(RA_POP_REQUIRED, 0, 0, none, &ch, &r),
	                 -1);
	ck_assert_int_eq(r.status, 403);
	/* Off ignores it; an RA may be waived. */
	ck_assert_int_eq(ra_pop_check(RA_POP_OFF, 0, 0, bad, &ch, &r), 0);
	ck_assert_int_eq(ra_pop_check(RA_POP_REQUIRED, 0, 1, bad, &ch, &r), 0);
	ck_assert_str_eq(r.linked, "waived");
	X509_REQ_free(ok);
	X509_REQ_free(bad);
	X509_REQ_free(none);
}
END_TEST

START_TEST(test_pop_tls13_needs_exporter)
{
	struct ra_pop_channel ch = channel(1);
	struct ra_pop_result r;
	char b64[64];
	X509_REQ *csr, *none;

	EVP_EncodeBlock((unsigned char *)b64, exporter, sizeof(exporter));
	csr = make_csr(key_p256, EVP_sha256(), "x", NULL, NULL, b64);
	none = make_csr(key_p256, EVP_sha256(), "x", NULL, NULL, NULL);
	ck_assert_int_eq(ra_pop_check(RA_POP_REQUIRED, 1, 0, csr, &ch, &r), 0);
	ck_assert_str_eq(r.linked, "tls-exporter");
	ck_assert_int_eq(ra_pop_check(RA_POP_OPTIONAL, 0, 0, csr, &ch, &r), -1);
	ck_assert_ptr_nonnull(strstr(r.reason, "TLS 1.2"));
	ck_assert_int_eq(ra_pop_check(RA_POP_REQUIRED, 0, 0, none, &ch, &r),
	                 -1);
	ck_assert_ptr_nonnull(strstr(r.reason, "connect with TLS 1.2"));
	X509_REQ_free(csr);
	X509_REQ_free(none);
}
END_TEST

static Suite *
ra_policy_suite(void)
{
	Suite *s = suite_create("ra_policy");
	TCase *tc = tcase_create("core");
	TCase *pop = tcase_create("pop");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_policy_defaults_allow_plain_csr);
	tcase_add_test(tc, test_policy_san_outside_pattern_refused);
	tcase_add_test(tc,
	               test_policy_san_inside_pattern_allowed_case_insensitive);
	tcase_add_test(tc, test_policy_pattern_is_anchored);
	tcase_add_test(tc, test_policy_san_max_and_other_types);
	tcase_add_test(tc, test_policy_cn_equals_identity);
	tcase_add_test(tc, test_policy_open_names);
	tcase_add_test(tc, test_policy_keys_and_signature);
	tcase_add_test(tc, test_policy_extensions_dropped_or_refused);
	tcase_add_test(tc, test_policy_allowed_extensions_still_bounded);
	tcase_add_test(tc, test_policy_parse_errors_name_the_key);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(pop, setup, NULL);
	tcase_add_test(pop, test_pop_tls_unique_match_and_mismatch);
	tcase_add_test(pop, test_pop_tls13_needs_exporter);
	suite_add_tcase(s, pop);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ra_policy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
