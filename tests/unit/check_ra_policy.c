/*
 * check_ra_policy.c: the label policy evaluator (ra/policy.c) on CSRs
 * built in the test, its strict parser, and the PoP linking check
 * (ra/pop.c) with channel bindings given as bytes.
 */
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>
#include <openssl/conf.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/error.h"
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
	struct core_err err;
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
	struct core_err err;
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
	struct ra_policy_input in = {csr, user, cert_cn, is_ra, 0};

	return ra_policy_check(p, &in, v);
}

/* Runs the evaluator for a label whose CA receives the CSR as sent. */
static int
check_forwarded(const struct ra_policy *p, X509_REQ *csr,
                struct ra_policy_verdict *v)
{
	struct ra_policy_input in = {csr, NULL, NULL, 0, 1};

	return ra_policy_check(p, &in, v);
}

/*
 * A signed P-256 CSR for CN=x whose subjectAltName holds one entry of
 * type (GEN_DNS, GEN_EMAIL, GEN_URI or GEN_IPADD) with the len raw bytes
 * of value, valid for the type or not: OpenSSL encodes what it is given.
 */
static X509_REQ *
make_csr_raw_san(int type, const char *value, size_t len)
{
	STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_STRING *str =
	    type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
	X509_REQ *req = X509_REQ_new();
	X509_EXTENSION *ext;

	ck_assert_ptr_nonnull(sk);
	ck_assert_ptr_nonnull(names);
	ck_assert_ptr_nonnull(gn);
	ck_assert_ptr_nonnull(str);
	ck_assert_ptr_nonnull(req);
	ck_assert_int_eq(ASN1_STRING_set(str, value, (int)len), 1);
	GENERAL_NAME_set0_value(gn, type, str);
	ck_assert_int_gt(sk_GENERAL_NAME_push(names, gn), 0);
	ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
	ck_assert_ptr_nonnull(ext);
	ck_assert_int_gt(sk_X509_EXTENSION_push(sk, ext), 0);
	X509_REQ_set_version(req, 0);
	ck_assert_int_eq(
	    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
	                               MBSTRING_UTF8,
	                               (const unsigned char *)"x", -1, -1, 0),
	    1);
	ck_assert_int_eq(X509_REQ_add_extensions(req, sk), 1);
	ck_assert_int_eq(X509_REQ_set_pubkey(req, key_p256), 1);
	ck_assert_int_gt(X509_REQ_sign(req, key_p256, EVP_sha256()), 0);
	sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
	GENERAL_NAMES_free(names);
	return req;
}

/*
 * Checks a CSR whose only SAN is type with the len bytes of value against
 * p: allowed when rule is NULL, else refused by rule with a reason that
 * contains why.
 */
static void
expect_san_len(const struct ra_policy *p, int type, const char *value,
               size_t len, const char *rule, const char *why)
{
	X509_REQ *csr = make_csr_raw_san(type, value, len);
	struct ra_policy_verdict v;
	int rc = check(p, csr, NULL, NULL, 0, &v);

	if (rule == NULL)
		ck_assert_msg(rc == 0, "SAN \"%.*s\" refused: %s", (int)len,
		              value, v.reason);
	else {
		ck_assert_msg(rc == -1, "SAN \"%.*s\" allowed", (int)len,
		              value);
		ck_assert_msg(strcmp(v.rule, rule) == 0,
		              "SAN \"%.*s\": rule %s, not %s (%s)", (int)len,
		              value, v.rule, rule, v.reason);
		ck_assert_msg(strstr(v.reason, why) != NULL,
		              "SAN \"%.*s\": \"%s\" lacks \"%s\"", (int)len,
		              value, v.reason, why);
	}
	X509_REQ_free(csr);
}

/* expect_san_len() for a C string. */
static void
expect_san(const struct ra_policy *p, int type, const char *value,
           const char *rule, const char *why)
{
	expect_san_len(p, type, value, strlen(value), rule, why);
}

/* expect_san() for an iPAddress given as text. */
static void
expect_ip(const struct ra_policy *p, const char *text, const char *why)
{
	unsigned char addr[16];
	int v6 = strchr(text, ':') != NULL;

	ck_assert_int_eq(inet_pton(v6 ? AF_INET6 : AF_INET, text, addr), 1);
	expect_san_len(p, GEN_IPADD, (const char *)addr, v6 ? 16 : 4,
	               why != NULL ? "san.ip" : NULL, why);
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
	    "extendedKeyUsage=codeSigning",
	    "nameConstraints=permitted;DNS:example.com",
	    NULL,
	};
	struct ra_policy *drop = policy_of(NULL);
	struct ra_policy *refuse =
	    policy_of("{\"extensions\": {\"unlisted\": \"refuse\"}}");
	X509_REQ *csr = make_csr(key_p256, EVP_sha256(), "x", "DNS:x.example",
	                         smuggled, NULL);
	struct ra_policy_verdict v;

	ck_assert_int_eq(check(drop, csr, NULL, NULL, 0, &v), 0);
	ck_assert_str_eq(v.dropped, "extendedKeyUsage,nameConstraints");
	ck_assert_int_eq(check(refuse, csr, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "extensions");
	ck_assert_ptr_nonnull(strstr(v.reason, "extendedKeyUsage"));
	X509_REQ_free(csr);
	ra_policy_free(drop);
	ra_policy_free(refuse);
}
END_TEST

/*
 * A CA certificate or a certificate-signing key usage is refused whatever
 * the policy lists and however unlisted extensions are handled: "drop"
 * must not turn a request for a CA into a quiet issuance.
 */
START_TEST(test_policy_ca_and_cert_signing_never_allowed)
{
	static const char *const ca[] = {"basicConstraints=critical,CA:TRUE",
	                                 NULL};
	static const char *const sign[] = {
	    "keyUsage=critical,digitalSignature,keyCertSign", NULL};
	static const char *const crl[] = {"keyUsage=cRLSign", NULL};
	static const char *const plain[] = {"keyUsage=digitalSignature",
	                                    "basicConstraints=CA:FALSE", NULL};
	struct ra_policy *drop = policy_of(NULL);
	struct ra_policy *listed =
	    policy_of("{\"extensions\": {\"allow\": [\"keyUsage\", "
	              "\"basicConstraints\"]}}");
	X509_REQ *r_ca = make_csr(key_p256, EVP_sha256(), "x", NULL, ca, NULL);
	X509_REQ *r_sign =
	    make_csr(key_p256, EVP_sha256(), "x", NULL, sign, NULL);
	X509_REQ *r_crl =
	    make_csr(key_p256, EVP_sha256(), "x", NULL, crl, NULL);
	X509_REQ *r_plain =
	    make_csr(key_p256, EVP_sha256(), "x", NULL, plain, NULL);
	const struct ra_policy *policies[] = {drop, listed};
	struct ra_policy_verdict v;
	size_t i;

	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(check(policies[i], r_ca, NULL, NULL, 0, &v),
		                 -1);
		ck_assert_str_eq(v.rule, "extensions.basicConstraints");
		ck_assert_ptr_nonnull(strstr(v.reason, "CA:TRUE"));
		ck_assert_str_eq(v.dropped, "");
		ck_assert_int_eq(check(policies[i], r_sign, NULL, NULL, 0, &v),
		                 -1);
		ck_assert_str_eq(v.rule, "extensions.keyUsage");
		ck_assert_ptr_nonnull(strstr(v.reason, "keyCertSign"));
		ck_assert_int_eq(check(policies[i], r_crl, NULL, NULL, 0, &v),
		                 -1);
		ck_assert_str_eq(v.rule, "extensions.keyUsage");
		ck_assert_ptr_nonnull(strstr(v.reason, "cRLSign"));
		/* The same as an RA. */
		ck_assert_int_eq(check(policies[i], r_ca, NULL, "ra", 1, &v),
		                 -1);
	}
	ck_assert_int_eq(check(drop, r_plain, NULL, NULL, 0, &v), 0);
	ck_assert_str_eq(v.dropped, "keyUsage,basicConstraints");
	ck_assert_int_eq(check(listed, r_plain, NULL, NULL, 0, &v), 0);
	ck_assert_str_eq(v.dropped, "");
	X509_REQ_free(r_ca);
	X509_REQ_free(r_sign);
	X509_REQ_free(r_crl);
	X509_REQ_free(r_plain);
	ra_policy_free(drop);
	ra_policy_free(listed);
}
END_TEST

/*
 * A CA that receives the CSR as sent honours what it asks for: "drop"
 * cannot be kept there, so an unlisted extension is refused and nothing
 * is reported as dropped.
 */
START_TEST(test_policy_forwarded_csr_cannot_drop)
{
	static const char *const smuggled[] = {
	    "nameConstraints=permitted;DNS:example.com", NULL};
	static const char *const eku[] = {"extendedKeyUsage=clientAuth", NULL};
	struct ra_policy *dflt = policy_of(NULL);
	struct ra_policy *drop =
	    policy_of("{\"extensions\": {\"unlisted\": \"drop\"}}");
	struct ra_policy *listed =
	    policy_of("{\"extensions\": {\"allow\": [\"subjectAltName\", "
	              "\"extendedKeyUsage\"], \"eku\": [\"clientAuth\"]}}");
	X509_REQ *bad = make_csr(key_p256, EVP_sha256(), "x", "DNS:x.example",
	                         smuggled, NULL);
	X509_REQ *ok =
	    make_csr(key_p256, EVP_sha256(), "x", "DNS:x.example", NULL, NULL);
	X509_REQ *r_eku =
	    make_csr(key_p256, EVP_sha256(), "x", "DNS:x.example", eku, NULL);
	struct ra_policy_verdict v;

	ck_assert_int_eq(check_forwarded(dflt, bad, &v), -1);
	ck_assert_str_eq(v.rule, "extensions");
	ck_assert_ptr_nonnull(strstr(v.reason, "nameConstraints"));
	ck_assert_ptr_nonnull(strstr(v.reason, "cannot be dropped"));
	ck_assert_str_eq(v.dropped, "");
	ck_assert_int_eq(check_forwarded(drop, bad, &v), -1);
	ck_assert_str_eq(v.rule, "extensions");
	ck_assert_str_eq(v.dropped, "");
	ck_assert_int_eq(check_forwarded(dflt, ok, &v), 0);
	ck_assert_int_eq(check_forwarded(listed, r_eku, &v), 0);
	ck_assert_int_eq(check_forwarded(dflt, r_eku, &v), -1);
	ck_assert_ptr_nonnull(strstr(v.reason, "extendedKeyUsage"));
	/* The built-in CA builds its own certificate: there it drops. */
	ck_assert_int_eq(check(drop, bad, NULL, NULL, 0, &v), 0);
	ck_assert_str_eq(v.dropped, "nameConstraints");
	X509_REQ_free(bad);
	X509_REQ_free(ok);
	X509_REQ_free(r_eku);
	ra_policy_free(dflt);
	ra_policy_free(drop);
	ra_policy_free(listed);
}
END_TEST

START_TEST(test_policy_dns_name_syntax)
{
	static const char *const partial[] = {
	    "a*.example.com", "foo.*.example.com", "**.example.com"};
	struct ra_policy *p = policy_of(NULL);
	char label63[64], long_name[300];
	size_t i;

	memset(label63, 'a', 63);
	label63[63] = '\0';
	expect_san(p, GEN_DNS, "host.example", NULL, NULL);
	expect_san(p, GEN_DNS, "Host-1.EXAMPLE", NULL, NULL);
	expect_san(p, GEN_DNS, "xn--bcher-kva.example", NULL, NULL);
	expect_san(p, GEN_DNS, "localhost", NULL, NULL);
	snprintf(long_name, sizeof(long_name), "%s.example", label63);
	expect_san(p, GEN_DNS, long_name, NULL, NULL);
	/* 253 bytes: four labels of 63 and one of 1, with dots. */
	snprintf(long_name, sizeof(long_name), "%s.%s.%s.%.59s.x", label63,
	         label63, label63, label63);
	ck_assert_uint_eq(strlen(long_name), 253);
	expect_san(p, GEN_DNS, long_name, NULL, NULL);
	snprintf(long_name, sizeof(long_name), "%s.%s.%s.%.60s.x", label63,
	         label63, label63, label63);
	expect_san(p, GEN_DNS, long_name, "san.dns", "longer than 253");
	snprintf(long_name, sizeof(long_name), "%sa.example", label63);
	expect_san(p, GEN_DNS, long_name, "san.dns", "longer than 63");

	expect_san(p, GEN_DNS, "ctl\n.example", "san.dns",
	           "\"ctl\\x0a.example\" is not a valid DNS name");
	expect_san(p, GEN_DNS, "hidden\xff.example", "san.dns",
	           "is not a valid DNS name");
	expect_san(p, GEN_DNS, "*", "san.dns",
	           "is not a valid DNS name: a wildcard must stand over two");
	expect_san(p, GEN_DNS, "*.*.com", "san.dns", "is not a valid DNS name");
	expect_san(p, GEN_DNS, "a..example", "san.dns", "empty label");
	expect_san(p, GEN_DNS, ".example", "san.dns", "empty label");
	expect_san(p, GEN_DNS, "example.", "san.dns", "empty label");
	expect_san(p, GEN_DNS, "", "san.dns", "is not a valid DNS name");
	expect_san(p, GEN_DNS, "-a.example", "san.dns", "hyphen");
	expect_san(p, GEN_DNS, "a-.example", "san.dns", "hyphen");
	expect_san(p, GEN_DNS, "under_score.example", "san.dns",
	           "not a letter, digit or hyphen");
	expect_san(p, GEN_DNS, "a b.example", "san.dns",
	           "not a letter, digit or hyphen");
	for (i = 0; i < sizeof(partial) / sizeof(partial[0]); i++)
		expect_san(p, GEN_DNS, partial[i], "san.dns",
		           "is not a valid DNS name");
	ra_policy_free(p);
}
END_TEST

/*
 * A wildcard is one whole leftmost label over at least two more, and only
 * where the label asks for them: a san.dns pattern such as ".*" matches
 * "*" by accident and must not be enough.
 */
START_TEST(test_policy_dns_wildcard_only_when_allowed)
{
	struct ra_policy *dflt = policy_of(NULL);
	struct ra_policy *pattern =
	    policy_of("{\"san\": {\"dns\": [\".*\\\\.example\\\\.com\"]}}");
	struct ra_policy *wild = policy_of("{\"san\": {\"wildcard\": true}}");
	struct ra_policy *narrow =
	    policy_of("{\"san\": {\"wildcard\": true, \"dns\": "
	              "[\"[a-z0-9-]+\\\\.example\\\\.com\"]}}");
	struct ra_policy_verdict v;
	X509_REQ *cn_wild;

	expect_san(dflt, GEN_DNS, "*.example.com", "san.wildcard",
	           "is a wildcard");
	expect_san(pattern, GEN_DNS, "*.example.com", "san.wildcard",
	           "is a wildcard");
	expect_san(pattern, GEN_DNS, "a.example.com", NULL, NULL);
	expect_san(wild, GEN_DNS, "*.example.com", NULL, NULL);
	expect_san(wild, GEN_DNS, "*", "san.dns", "is not a valid DNS name");
	expect_san(wild, GEN_DNS, "*.com", "san.dns",
	           "is not a valid DNS name");
	expect_san(wild, GEN_DNS, "*.*.com", "san.dns",
	           "is not a valid DNS name");
	expect_san(wild, GEN_DNS, "a*.example.com", "san.dns",
	           "is not a valid DNS name");
	expect_san(wild, GEN_DNS, "a.*.example.com", "san.dns",
	           "is not a valid DNS name");
	/* Allowed wildcards still match the label's patterns. */
	expect_san(narrow, GEN_DNS, "*.example.com", "san.dns",
	           "not allowed by rule san.dns");
	/* A TLS client that finds no dNSName matches the CN instead, wildcard
	 * and all: a CN with a '*' is a wildcard name too. */
	cn_wild =
	    make_csr(key_p256, EVP_sha256(), "*.example.com", NULL, NULL, NULL);
	ck_assert_int_eq(check(dflt, cn_wild, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "san.wildcard");
	ck_assert_ptr_nonnull(strstr(v.reason, "subject CN"));
	ck_assert_int_eq(check(wild, cn_wild, NULL, NULL, 0, &v), 0);
	X509_REQ_free(cn_wild);
	ra_policy_free(dflt);
	ra_policy_free(pattern);
	ra_policy_free(wild);
	ra_policy_free(narrow);
}
END_TEST

START_TEST(test_policy_email_and_uri_syntax)
{
	struct ra_policy *p = policy_of(NULL);
	size_t i;
	static const char *const bad_email[] = {
	    "a\x01@example.com", "a b@example.com",
	    "a\xff@example.com", "no-at.example.com",
	    "@example.com",      "a@",
	    "a@b@example.com",   "a@-bad.example",
	    "a@exa_mple.com",    "",
	};
	static const char *const bad_uri[] = {
	    "javascript:alert(1)",
	    "JavaScript:alert(1)",
	    "data:text/html,<b>x</b>",
	    "vbscript:msgbox",
	    "file:///etc/passwd",
	    "http://a b.example/",
	    "http://a\x07"
	    "b.example/",
	    "https://\xc3\xa9.example/",
	    "no-scheme",
	    "1abc:x",
	    ":x",
	    "",
	};

	expect_san(p, GEN_EMAIL, "device+1@example.com", NULL, NULL);
	for (i = 0; i < sizeof(bad_email) / sizeof(bad_email[0]); i++)
		expect_san(p, GEN_EMAIL, bad_email[i], "san.email",
		           "is not a valid e-mail address");
	expect_san(p, GEN_URI, "https://host.example/path?q=1#f", NULL, NULL);
	expect_san(p, GEN_URI, "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
	           NULL, NULL);
	expect_san(p, GEN_URI, "spiffe://example.org/ns/x", NULL, NULL);
	for (i = 0; i < sizeof(bad_uri) / sizeof(bad_uri[0]); i++)
		expect_san(p, GEN_URI, bad_uri[i], "san.uri", "URI");
	expect_san(p, GEN_URI, "javascript:alert(1)", "san.uri",
	           "scheme \"javascript\" is never allowed");
	ra_policy_free(p);
}
END_TEST

START_TEST(test_policy_ip_unspecified_multicast_broadcast)
{
	struct ra_policy *p = policy_of(NULL);

	expect_ip(p, "192.0.2.1", NULL);
	expect_ip(p, "127.0.0.1", NULL);
	expect_ip(p, "2001:db8::1", NULL);
	expect_ip(p, "0.0.0.0", "unspecified");
	expect_ip(p, "::", "unspecified");
	expect_ip(p, "::ffff:0.0.0.0", "unspecified");
	expect_ip(p, "255.255.255.255", "broadcast");
	expect_ip(p, "224.0.0.1", "multicast");
	expect_ip(p, "239.255.255.250", "multicast");
	expect_ip(p, "ff02::1", "multicast");
	expect_ip(p, "::ffff:224.0.0.251", "multicast");
	ra_policy_free(p);
}
END_TEST

/* A CSR for CN=x with n more OU attributes (each "u<i>"). */
static X509_REQ *
make_csr_ous(int n)
{
	X509_REQ *req = make_csr(key_p256, EVP_sha256(), "x", NULL, NULL, NULL);
	X509_NAME *name = X509_NAME_new();
	char ou[16];
	int i;

	ck_assert_ptr_nonnull(name);
	for (i = 0; i < n; i++) {
		snprintf(ou, sizeof(ou), "u%d", i);
		ck_assert_int_eq(X509_NAME_add_entry_by_txt(
		                     name, "OU", MBSTRING_UTF8,
		                     (const unsigned char *)ou, -1, -1, 0),
		                 1);
	}
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                            (const unsigned char *)"x",
	                                            -1, -1, 0),
	                 1);
	ck_assert_int_eq(X509_REQ_set_subject_name(req, name), 1);
	ck_assert_int_gt(X509_REQ_sign(req, key_p256, EVP_sha256()), 0);
	X509_NAME_free(name);
	return req;
}

/* A CSR whose SAN lists n dNSNames h<i>.example. */
static X509_REQ *
make_csr_sans(int n)
{
	char *san = malloc((size_t)n * 24 + 1);
	size_t used = 0;
	X509_REQ *req;
	int i;

	ck_assert_ptr_nonnull(san);
	san[0] = '\0';
	for (i = 0; i < n; i++)
		used += (size_t)snprintf(san + used, 24, "%sDNS:h%d.example",
		                         i > 0 ? "," : "", i);
	req = make_csr(key_p256, EVP_sha256(), "x", san, NULL, NULL);
	free(san);
	return req;
}

/*
 * Without any rule, a subject of thousands of attributes or bytes and a
 * SAN of thousands of names are refused: the defaults bound them, and a
 * label can move the bounds.
 */
START_TEST(test_policy_subject_and_san_bounded_by_default)
{
	struct ra_policy *dflt = policy_of(NULL);
	struct ra_policy *wide =
	    policy_of("{\"subject\": {\"max_attributes\": 64, \"max_bytes\": "
	              "8192}, \"san\": {\"max\": 200}}");
	X509_REQ *r31 = make_csr_ous(31), *r32 = make_csr_ous(32);
	X509_REQ *s100 = make_csr_sans(100), *s101 = make_csr_sans(101);
	X509_REQ *big = make_csr(key_p256, EVP_sha256(), "x", NULL, NULL, NULL);
	X509_NAME *name = X509_REQ_get_subject_name(big);
	unsigned char blob[3000];
	struct ra_policy_verdict v;

	/* 31 OUs and the CN: 32 attributes, the default bound. */
	ck_assert_int_eq(check(dflt, r31, NULL, NULL, 0, &v), 0);
	ck_assert_int_eq(check(dflt, r32, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "subject.max_attributes");
	ck_assert_ptr_nonnull(strstr(v.reason, "33 attributes"));
	ck_assert_int_eq(check(wide, r32, NULL, NULL, 0, &v), 0);

	/* One long attribute (not of a type with an upper bound OpenSSL
	 * would enforce while building it). */
	memset(blob, 'a', sizeof(blob));
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "1.2.3.4",
	                                            V_ASN1_UTF8STRING, blob,
	                                            sizeof(blob), -1, 0),
	                 1);
	ck_assert_int_gt(X509_REQ_sign(big, key_p256, EVP_sha256()), 0);
	ck_assert_int_eq(check(dflt, big, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "subject.max_bytes");
	ck_assert_int_eq(check(wide, big, NULL, NULL, 0, &v), 0);

	ck_assert_int_eq(check(dflt, s100, NULL, NULL, 0, &v), 0);
	ck_assert_int_eq(check(dflt, s101, NULL, NULL, 0, &v), -1);
	ck_assert_str_eq(v.rule, "san.max");
	ck_assert_int_eq(check(wide, s101, NULL, NULL, 0, &v), 0);
	X509_REQ_free(r31);
	X509_REQ_free(r32);
	X509_REQ_free(s100);
	X509_REQ_free(s101);
	X509_REQ_free(big);
	ra_policy_free(dflt);
	ra_policy_free(wide);
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
	expect_policy_error("{\"san\": {\"wildcard\": 1}}", "san.wildcard",
	                    "true or false");
	expect_policy_error("{\"subject\": {\"max_attributes\": 0}}",
	                    "subject.max_attributes", "1 to 256");
	expect_policy_error("{\"subject\": {\"max_bytes\": 10}}",
	                    "subject.max_bytes", "256 to 65536");
	expect_policy_error("{\"subject\": {\"max_byte\": 10}}",
	                    "subject.max_byte", "unknown key");
	expect_policy_error("{\"subject\": []}", "subject", "an object");
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
	tcase_add_test(tc, test_policy_ca_and_cert_signing_never_allowed);
	tcase_add_test(tc, test_policy_forwarded_csr_cannot_drop);
	tcase_add_test(tc, test_policy_dns_name_syntax);
	tcase_add_test(tc, test_policy_dns_wildcard_only_when_allowed);
	tcase_add_test(tc, test_policy_email_and_uri_syntax);
	tcase_add_test(tc, test_policy_ip_unspecified_multicast_broadcast);
	tcase_add_test(tc, test_policy_subject_and_san_bounded_by_default);
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
