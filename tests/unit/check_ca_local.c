/*
 * check_ca_local.c: unit tests of the built-in OpenSSL CA backend.  main()
 * makes a root and an issuing CA with the OpenSSL API in a temporary
 * directory; each test configures an instance through ca_instance_new()
 * and drives calls on a real event_base, the way ra does.
 */
#include <sys/stat.h>

#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_plugins/ca.h"
#include "core/error.h"
#include "core/log.h"

#define DAY (24L * 60 * 60)

/* The PKI every test shares, made once by main() before the forks. */
static char tmpdir[] = "/tmp/check_ca_local.XXXXXX";
static EVP_PKEY *root_key, *ca_key, *rsa_csr_key, *ec_csr_key;
static X509 *root_cert, *ca_cert;

/* What the log hook saw, per test (each test runs in its own process). */
static int log_count[CORE_LOG_DEBUG + 1];
static char log_last[2048];

/* What one call ended in; the call itself is freed by run(). */
struct result {
	enum ca_outcome outcome;
	int csr_fault;
	STACK_OF(X509) *chain; /* taken from the call */
	char cause[CA_CAUSE_MAX];
};

struct done_state {
	int count;
	int returned; /* ca_instance_start has returned */
	int early;    /* the callback ran before that */
};

static void
log_hook(const struct ca_call *call, enum core_log_level level,
         const char *component, const char *hint, const char *message)
{
	if ((unsigned int)level <= CORE_LOG_DEBUG)
		log_count[level]++;
	snprintf(log_last, sizeof(log_last), "%s: %s", component, message);
}

/* Checked fixture: each test starts with an empty log record, also when
 * run without fork (CK_FORK=no). */
static void
reset_log(void)
{
	memset(log_count, 0, sizeof(log_count));
	log_last[0] = '\0';
}

static const EVP_MD *
sign_md(EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return NULL;
	return EVP_sha256();
}

static EVP_PKEY *
gen_key(const char *type)
{
	EVP_PKEY *key = NULL;

	if (strcmp(type, "RSA") == 0)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else if (strcmp(type, "P-256") == 0 || strcmp(type, "P-384") == 0)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", type);
	else
		key = EVP_PKEY_Q_keygen(NULL, NULL, type);
	ck_assert_ptr_nonnull(key);
	return key;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509_EXTENSION *ext;
	X509V3_CTX v3;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	ck_assert_ptr_nonnull(ext);
	ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/*
 * Makes a certificate for key named CN=cn, valid from now + from to now +
 * until (seconds), signed by issuer/issuer_key or self-signed when issuer is
 * NULL; a CA when ca is set.
 */
static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
          int ca, long from, long until)
{
	X509_NAME *name;
	BIGNUM *bn;
	X509 *x;

	x = X509_new();
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
	bn = BN_new();
	ck_assert_int_eq(BN_rand(bn, 64, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY),
	                 1);
	ck_assert_ptr_nonnull(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
	BN_free(bn);
	name = X509_NAME_new();
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(
	                     name, "O", MBSTRING_ASC,
	                     (const unsigned char *)"estrad tests", -1, -1, 0),
	                 1);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                                            (const unsigned char *)cn,
	                                            -1, -1, 0),
	                 1);
	ck_assert_int_eq(X509_set_subject_name(x, name), 1);
	ck_assert_int_eq(
	    X509_set_issuer_name(
	        x, issuer != NULL ? X509_get_subject_name(issuer) : name),
	    1);
	X509_NAME_free(name);
	ck_assert_ptr_nonnull(
	    X509_time_adj_ex(X509_getm_notBefore(x), 0, from, NULL));
	ck_assert_ptr_nonnull(
	    X509_time_adj_ex(X509_getm_notAfter(x), 0, until, NULL));
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	if (issuer == NULL) {
		issuer = x;
		issuer_key = key;
	}
	if (ca) {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer, NID_key_usage,
		        "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
	}
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (issuer != x)
		add_ext(x, issuer, NID_authority_key_identifier,
		        "keyid:always");
	ck_assert_int_gt(X509_sign(x, issuer_key, sign_md(issuer_key)), 0);
	return x;
}

/*
 * Makes a CSR for key with subject O=estrad tests, CN=cn (empty subject
 * when cn is NULL) requesting the extensions given as NID/value pairs,
 * ended by NID_undef.
 */
static X509_REQ *
make_csr(EVP_PKEY *key, const char *cn, ...)
{
	STACK_OF(X509_EXTENSION) *exts;
	const char *value;
	X509_REQ *req;
	va_list ap;
	int nid;

	req = X509_REQ_new();
	ck_assert_ptr_nonnull(req);
	if (cn != NULL) {
		X509_NAME *name = X509_REQ_get_subject_name(req);

		ck_assert_int_eq(X509_NAME_add_entry_by_txt(
		                     name, "O", MBSTRING_ASC,
		                     (const unsigned char *)"estrad tests", -1,
		                     -1, 0),
		                 1);
		ck_assert_int_eq(X509_NAME_add_entry_by_txt(
		                     name, "CN", MBSTRING_ASC,
		                     (const unsigned char *)cn, -1, -1, 0),
		                 1);
	}
	ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
	exts = sk_X509_EXTENSION_new_null();
	va_start(ap, cn);
	while ((nid = va_arg(ap, int)) != NID_undef) {
		X509_EXTENSION *ext;

		value = va_arg(ap, const char *);
		ext = X509V3_EXT_conf_nid(NULL, NULL, nid, value);
		ck_assert_ptr_nonnull(ext);
		ck_assert_int_gt(sk_X509_EXTENSION_push(exts, ext), 0);
	}
	va_end(ap);
	if (sk_X509_EXTENSION_num(exts) > 0)
		ck_assert_int_eq(X509_REQ_add_extensions(req, exts), 1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ck_assert_int_gt(X509_REQ_sign(req, key, sign_md(key)), 0);
	return req;
}

static void
path_in_tmp(char *buf, size_t len, const char *name)
{
	ck_assert_int_lt(snprintf(buf, len, "%s/%s", tmpdir, name), (int)len);
}

/* Writes the certificates (NULL-terminated) to tmpdir/name as PEM. */
static void
write_certs(const char *name, ...)
{
	char path[512];
	va_list ap;
	FILE *fp;
	X509 *x;

	path_in_tmp(path, sizeof(path), name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	va_start(ap, name);
	while ((x = va_arg(ap, X509 *)) != NULL)
		ck_assert_int_eq(PEM_write_X509(fp, x), 1);
	va_end(ap);
	ck_assert_int_eq(fclose(fp), 0);
}

static void
write_key(const char *name, EVP_PKEY *key, const char *passphrase)
{
	char path[512];
	FILE *fp;

	path_in_tmp(path, sizeof(path), name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	if (passphrase != NULL)
		ck_assert_int_eq(
		    PEM_write_PrivateKey(fp, key, EVP_aes_256_cbc(),
		                         (const unsigned char *)passphrase,
		                         (int)strlen(passphrase), NULL, NULL),
		    1);
	else
		ck_assert_int_eq(
		    PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL),
		    1);
	ck_assert_int_eq(fclose(fp), 0);
}

static void
write_text(const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	path_in_tmp(path, sizeof(path), name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
}

/* Returns a new "ca" object for the given files; chain may be NULL. */
static json_t *
make_conf(const char *cert, const char *key, const char *chain)
{
	json_t *conf;

	conf = json_pack("{s:s, s:s, s:s}", "backend", "local", "cert", cert,
	                 "key", key);
	ck_assert_ptr_nonnull(conf);
	if (chain != NULL)
		ck_assert_int_eq(
		    json_object_set_new(conf, "chain", json_string(chain)), 0);
	return conf;
}

/* The usual two-tier configuration: issuing CA, chain up to the root. */
static json_t *
default_conf(void)
{
	return make_conf("ca.pem", "ca.key", "chain.pem");
}

/* Configures conf (taken) relative to tmpdir; must succeed. */
static struct ca_instance *
configure_ok(json_t *conf)
{
	struct ca_instance *inst;
	struct core_err err;

	memset(&err, 0, sizeof(err));
	inst = ca_instance_new(conf, tmpdir, &err);
	json_decref(conf);
	ck_assert_msg(inst != NULL, "configure failed: %s: %s", err.key,
	              err.text);
	return inst;
}

/*
 * Configures conf (taken); must fail with err.key equal to key and err.text
 * containing text.
 */
static void
configure_fails(json_t *conf, const char *key, const char *text)
{
	struct ca_instance *inst;
	struct core_err err;

	memset(&err, 0, sizeof(err));
	inst = ca_instance_new(conf, tmpdir, &err);
	json_decref(conf);
	ck_assert_msg(inst == NULL, "configure succeeded, wanted %s: %s", key,
	              text);
	ck_assert_str_eq(err.key, key);
	ck_assert_msg(strstr(err.text, text) != NULL,
	              "error \"%s\" lacks \"%s\"", err.text, text);
}

static void
on_done(struct ca_call *call, void *arg)
{
	struct done_state *st = arg;

	st->count++;
	if (!st->returned)
		st->early = 1;
}

/*
 * Runs one call of op on inst on a fresh event_base, checks that the
 * completion ran exactly once and only after ca_instance_start returned,
 * and returns what it ended in.
 */
static struct result
run(struct ca_instance *inst, enum ca_operation op, X509_REQ *csr)
{
	struct done_state st = {0, 0, 0};
	struct event_base *base;
	struct ca_call *call;
	struct result r;

	memset(&r, 0, sizeof(r));
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	call = ca_call_new();
	ck_assert_ptr_nonnull(call);
	call->op = op;
	call->base = base;
	call->rid = "0123456789abcdef";
	call->label = "test";
	call->csr = csr;
	ca_instance_start(inst, call, on_done, &st);
	st.returned = 1;
	ck_assert_int_eq(st.count, 0);
	ck_assert_int_eq(event_base_dispatch(base), 1);
	ck_assert_int_eq(st.early, 0);
	ck_assert_int_eq(st.count, 1);
	r.outcome = call->result.outcome;
	r.csr_fault = call->result.csr_fault;
	r.chain = call->result.chain;
	call->result.chain = NULL;
	snprintf(r.cause, sizeof(r.cause), "%s", call->result.cause);
	ca_call_free(call);
	event_base_free(base);
	return r;
}

/* Runs an enrollment that must be issued; returns the new certificate. */
static X509 *
enroll_ok(struct ca_instance *inst, enum ca_operation op, X509_REQ *csr)
{
	struct result r;
	X509 *x;

	r = run(inst, op, csr);
	ck_assert_msg(r.outcome == CA_ISSUED, "outcome %s: %s",
	              ca_outcome_name(r.outcome), r.cause);
	ck_assert_ptr_nonnull(r.chain);
	ck_assert_int_eq(sk_X509_num(r.chain), 1);
	x = sk_X509_shift(r.chain);
	sk_X509_free(r.chain);
	/* Check what a client receives: the DER, parsed afresh.  The
	 * in-memory certificate carries its key as DER only (local.c copies
	 * the CSR's SubjectPublicKeyInfo without decoding it). */
	{
		unsigned char *der = NULL;
		const unsigned char *p;
		int len = i2d_X509(x, &der);
		X509 *parsed;

		ck_assert_int_gt(len, 0);
		p = der;
		parsed = d2i_X509(NULL, &p, len);
		ck_assert_ptr_nonnull(parsed);
		OPENSSL_free(der);
		X509_free(x);
		x = parsed;
	}
	return x;
}

/* Verifies x against root with the untrusted chain, strict RFC 5280. */
static void
check_verifies(X509 *x, X509 *root, STACK_OF(X509) *untrusted, int purpose)
{
	X509_STORE_CTX *vctx;
	X509_STORE *store;
	int ok;

	store = X509_STORE_new();
	ck_assert_int_eq(X509_STORE_add_cert(store, root), 1);
	vctx = X509_STORE_CTX_new();
	ck_assert_int_eq(X509_STORE_CTX_init(vctx, store, x, untrusted), 1);
	X509_STORE_CTX_set_flags(vctx, X509_V_FLAG_X509_STRICT);
	if (purpose != 0)
		ck_assert_int_eq(X509_STORE_CTX_set_purpose(vctx, purpose), 1);
	ok = X509_verify_cert(vctx);
	ck_assert_msg(
	    ok == 1, "verify: %s",
	    X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(store);
}

/* Returns the extension nid of x (borrowed), asserting it is there once. */
static X509_EXTENSION *
get_ext(X509 *x, int nid)
{
	int i;

	i = X509_get_ext_by_NID(x, nid, -1);
	ck_assert_int_ge(i, 0);
	ck_assert_int_lt(X509_get_ext_by_NID(x, nid, i), 0);
	return X509_get_ext(x, i);
}

/* Returns the extension nid the CSR requests (new), or NULL. */
static X509_EXTENSION *
csr_ext(X509_REQ *csr, int nid)
{
	STACK_OF(X509_EXTENSION) *exts;
	X509_EXTENSION *ext = NULL;
	int i;

	exts = X509_REQ_get_extensions(csr);
	if (exts != NULL && (i = X509v3_get_ext_by_NID(exts, nid, -1)) >= 0)
		ext = X509_EXTENSION_dup(X509v3_get_ext(exts, i));
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return ext;
}

/* Checks x's serial number: positive, 64 to 159 bits, at most 20 octets. */
static void
check_serial(X509 *x)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	BIGNUM *bn;

	bn = ASN1_INTEGER_to_BN(serial, NULL);
	ck_assert_ptr_nonnull(bn);
	ck_assert_int_eq(BN_is_negative(bn), 0);
	ck_assert_int_eq(BN_is_zero(bn), 0);
	ck_assert_int_ge(BN_num_bits(bn), 64);
	ck_assert_int_le(BN_num_bits(bn), 159);
	ck_assert_int_le(i2d_ASN1_INTEGER(serial, NULL), 2 + 20);
	BN_free(bn);
}

/* Checks that x's extendedKeyUsage lists exactly nids, in order. */
static void
check_eku(X509 *x, const int *nids, int n)
{
	EXTENDED_KEY_USAGE *eku;
	int crit = -1, i;

	eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
	ck_assert_ptr_nonnull(eku);
	ck_assert_int_eq(crit, 0);
	ck_assert_int_eq(sk_ASN1_OBJECT_num(eku), n);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)),
		                 nids[i]);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
}

/*
 * Checks everything the local CA promises about a certificate x issued by
 * issuer for csr: chain, names, key, serial, validity inside the issuer's,
 * basicConstraints, SKI/AKI, and keyUsage ku.
 */
static void
check_issued(X509 *x, X509_REQ *csr, X509 *issuer, unsigned int ku)
{
	BASIC_CONSTRAINTS *bc;
	AUTHORITY_KEYID *akid;
	int crit = -1;

	ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
	ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(x),
	                               X509_REQ_get_subject_name(csr)),
	                 0);
	ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(x),
	                               X509_get_subject_name(issuer)),
	                 0);
	{
		/* Compared as DER: the certificate holds the CSR's
		 * SubjectPublicKeyInfo byte for byte. */
		unsigned char *a = NULL, *b = NULL;
		int la = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &a);
		int lb = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(csr), &b);

		ck_assert_int_gt(la, 0);
		ck_assert_int_eq(la, lb);
		ck_assert_int_eq(memcmp(a, b, (size_t)la), 0);
		OPENSSL_free(a);
		OPENSSL_free(b);
	}
	ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(issuer)), 1);
	check_serial(x);
	ck_assert_int_le(ASN1_TIME_compare(X509_get0_notAfter(x),
	                                   X509_get0_notAfter(issuer)),
	                 0);
	ck_assert_int_ge(ASN1_TIME_compare(X509_get0_notBefore(x),
	                                   X509_get0_notBefore(issuer)),
	                 0);
	ck_assert_int_lt(
	    ASN1_TIME_compare(X509_get0_notBefore(x), X509_get0_notAfter(x)),
	    0);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(crit, 1);
	ck_assert_int_eq(bc->ca, 0);
	BASIC_CONSTRAINTS_free(bc);
	ck_assert_int_eq(X509_check_ca(x), 0);
	ck_assert_int_eq(X509_EXTENSION_get_critical(get_ext(x, NID_key_usage)),
	                 1);
	ck_assert_uint_eq(X509_get_key_usage(x), ku);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));
	get_ext(x, NID_subject_key_identifier);
	get_ext(x, NID_authority_key_identifier);
	ck_assert_ptr_nonnull(X509_get0_authority_key_id(x));
	ck_assert_int_eq(
	    ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
	                          X509_get0_subject_key_id(issuer)),
	    0);
	akid = X509_get_ext_d2i(x, NID_authority_key_identifier, &crit, NULL);
	ck_assert_ptr_nonnull(akid);
	ck_assert_int_eq(crit, 0);
	ck_assert_int_eq(X509_check_akid(issuer, akid), X509_V_OK);
	AUTHORITY_KEYID_free(akid);
}

/* Checks that x carries the CSR's subjectAltName, same names. */
static void
check_san_copied(X509 *x, X509_REQ *csr, int critical)
{
	X509_EXTENSION *want, *got;

	want = csr_ext(csr, NID_subject_alt_name);
	ck_assert_ptr_nonnull(want);
	got = get_ext(x, NID_subject_alt_name);
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(X509_EXTENSION_get_data(want),
	                                       X509_EXTENSION_get_data(got)),
	                 0);
	ck_assert_int_eq(X509_EXTENSION_get_critical(got), critical);
	X509_EXTENSION_free(want);
}

/* Seconds from now to t (negative in the past). */
static long
seconds_from_now(const ASN1_TIME *t)
{
	int days = 0, secs = 0;

	ck_assert_int_eq(ASN1_TIME_diff(&days, &secs, NULL, t), 1);
	return days * DAY + secs;
}

static STACK_OF(X509) *
stack_of(X509 *a)
{
	STACK_OF(X509) *sk = sk_X509_new_null();

	ck_assert_int_gt(sk_X509_push(sk, a), 0);
	return sk;
}

START_TEST(test_local_enroll_issues_verifiable_cert)
{
	static const int client[] = {NID_client_auth};
	struct ca_instance *inst;
	STACK_OF(X509) *untrusted;
	X509_REQ *csr;
	X509 *x;

	inst = configure_ok(default_conf());
	csr =
	    make_csr(rsa_csr_key, "device-01.example.com", NID_subject_alt_name,
	             "DNS:device-01.example.com,IP:192.0.2.10", NID_undef);
	x = enroll_ok(inst, CA_OP_ENROLL, csr);
	check_issued(x, csr, ca_cert,
	             X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_KEY_ENCIPHERMENT);
	check_eku(x, client, 1);
	check_san_copied(x, csr, 0);
	untrusted = stack_of(ca_cert);
	check_verifies(x, root_cert, untrusted, X509_PURPOSE_SSL_CLIENT);
	sk_X509_free(untrusted);
	/* Valid from five minutes ago (clock skew), for 365 days. */
	ck_assert_int_le(seconds_from_now(X509_get0_notBefore(x)), -290);
	ck_assert_int_ge(seconds_from_now(X509_get0_notBefore(x)), -310);
	ck_assert_int_ge(seconds_from_now(X509_get0_notAfter(x)),
	                 365 * DAY - 10);
	ck_assert_int_le(seconds_from_now(X509_get0_notAfter(x)),
	                 365 * DAY + 10);
	X509_free(x);
	X509_REQ_free(csr);
	ca_instance_free(inst);
}
END_TEST

/* Counts completions of calls that share one loop. */
static void
on_done_count(struct ca_call *call, void *arg)
{
	(void)call;
	(*(int *)arg)++;
}

static double
monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * delay_ms holds each answer back on the loop without blocking it: eight
 * calls started together on one loop all end after about one delay, not
 * eight.  check_signatures keeps issuing.
 */
START_TEST(test_local_delay_ms_does_not_block_the_loop)
{
	struct ca_call *calls[8];
	struct event_base *base;
	struct ca_instance *inst;
	json_t *conf = default_conf();
	X509_REQ *csr;
	double t0, took;
	int i, done = 0;

	json_object_set_new(conf, "delay_ms", json_integer(300));
	json_object_set_new(conf, "check_signatures", json_true());
	inst = configure_ok(conf);
	csr = make_csr(ec_csr_key, "slow.example.com", NID_undef, NULL,
	               NID_undef);
	ck_assert_ptr_nonnull(base = event_base_new());
	t0 = monotonic_seconds();
	for (i = 0; i < 8; i++) {
		ck_assert_ptr_nonnull(calls[i] = ca_call_new());
		calls[i]->op = CA_OP_ENROLL;
		calls[i]->base = base;
		calls[i]->rid = "0123456789abcdef";
		calls[i]->label = "test";
		calls[i]->csr = csr;
		ca_instance_start(inst, calls[i], on_done_count, &done);
	}
	ck_assert_int_eq(done, 0);
	ck_assert_int_eq(event_base_dispatch(base), 1);
	took = monotonic_seconds() - t0;
	ck_assert_int_eq(done, 8);
	ck_assert_msg(took >= 0.29, "answered after %.3f s, before the delay",
	              took);
	/* Serially this would take 2.4 s; the bound is loose for slow
	 * sanitizer builds. */
	ck_assert_msg(took < 1.5, "8 delayed calls took %.3f s", took);
	for (i = 0; i < 8; i++) {
		ck_assert_int_eq(calls[i]->result.outcome, CA_ISSUED);
		ca_call_free(calls[i]);
	}
	event_base_free(base);
	X509_REQ_free(csr);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_conf_delay_and_check_signatures_checked)
{
	json_t *conf = default_conf();

	json_object_set_new(conf, "delay_ms", json_integer(60001));
	configure_fails(conf, "delay_ms", "");
	conf = default_conf();
	json_object_set_new(conf, "check_signatures", json_string("yes"));
	configure_fails(conf, "check_signatures", "true or false");
}
END_TEST

START_TEST(test_local_enroll_ignores_requested_extensions)
{
	static const int client[] = {NID_client_auth};
	struct ca_instance *inst;
	X509_REQ *csr;
	X509 *x;

	inst = configure_ok(default_conf());
	csr = make_csr(
	    ec_csr_key, "sneaky", NID_basic_constraints, "critical,CA:TRUE",
	    NID_ext_key_usage, "codeSigning,clientAuth", NID_key_usage,
	    "critical,keyCertSign,cRLSign", NID_subject_alt_name,
	    "DNS:sneaky.example.com", NID_netscape_comment, "hello", NID_undef);
	x = enroll_ok(inst, CA_OP_ENROLL, csr);
	check_issued(x, csr, ca_cert,
	             X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_KEY_ENCIPHERMENT);
	check_eku(x, client, 1);
	ck_assert_int_eq(X509_get_extended_key_usage(x) & XKU_CODE_SIGN, 0);
	check_san_copied(x, csr, 0);
	ck_assert_int_lt(X509_get_ext_by_NID(x, NID_netscape_comment, -1), 0);
	ck_assert_int_eq(X509_get_ext_count(x), 6);
	X509_free(x);
	X509_REQ_free(csr);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_enroll_applies_profile)
{
	static const int ekus[] = {NID_server_auth, NID_client_auth, NID_cmcRA,
	                           NID_undef};
	struct ca_instance *inst;
	EXTENDED_KEY_USAGE *eku;
	ASN1_OBJECT *oid;
	X509_REQ *csr;
	json_t *conf;
	X509 *x;

	conf = default_conf();
	ck_assert_int_eq(
	    json_object_set_new(
	        conf, "profile",
	        json_pack("{s:i, s:[s,s], s:[s,s,s,s]}", "validity_days", 30,
	                  "key_usage", "digitalSignature", "nonRepudiation",
	                  "extended_key_usage", "serverAuth", "clientAuth",
	                  "id-kp-cmcRA", "1.3.6.1.4.1.99999.7")),
	    0);
	inst = configure_ok(conf);
	csr = make_csr(ec_csr_key, "server.example.com", NID_undef);
	x = enroll_ok(inst, CA_OP_ENROLL, csr);
	check_issued(x, csr, ca_cert,
	             X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_NON_REPUDIATION);
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	ck_assert_ptr_nonnull(eku);
	ck_assert_int_eq(sk_ASN1_OBJECT_num(eku), 4);
	ck_assert_int_eq(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), ekus[0]);
	ck_assert_int_eq(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 1)), ekus[1]);
	ck_assert_int_eq(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 2)), ekus[2]);
	oid = OBJ_txt2obj("1.3.6.1.4.1.99999.7", 1);
	ck_assert_int_eq(OBJ_cmp(sk_ASN1_OBJECT_value(eku, 3), oid), 0);
	ASN1_OBJECT_free(oid);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	/* No SAN requested, none issued. */
	ck_assert_int_lt(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), 0);
	ck_assert_int_ge(seconds_from_now(X509_get0_notAfter(x)),
	                 30 * DAY - 10);
	ck_assert_int_le(seconds_from_now(X509_get0_notAfter(x)),
	                 30 * DAY + 10);
	X509_free(x);
	X509_REQ_free(csr);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_serials_random)
{
	struct ca_instance *inst;
	X509 *x[8];
	X509_REQ *csr;
	int i, j;

	inst = configure_ok(default_conf());
	csr = make_csr(ec_csr_key, "same-request", NID_undef);
	for (i = 0; i < 8; i++) {
		x[i] = enroll_ok(inst, CA_OP_ENROLL, csr);
		check_serial(x[i]);
	}
	for (i = 0; i < 8; i++)
		for (j = i + 1; j < 8; j++)
			ck_assert_int_ne(
			    ASN1_INTEGER_cmp(X509_get0_serialNumber(x[i]),
			                     X509_get0_serialNumber(x[j])),
			    0);
	for (i = 0; i < 8; i++)
		X509_free(x[i]);
	X509_REQ_free(csr);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_validity_inside_ca_validity)
{
	struct ca_instance *inst;
	X509_REQ *csr;
	EVP_PKEY *key;
	X509 *ca, *x;

	/* A CA that started a minute ago and ends in ten days. */
	key = gen_key("P-256");
	ca = make_cert("Short CA", key, root_cert, root_key, 1, -60, 10 * DAY);
	write_certs("short.pem", ca, NULL);
	write_key("short.key", key, NULL);
	inst = configure_ok(make_conf("short.pem", "short.key", NULL));
	csr = make_csr(ec_csr_key, "capped", NID_undef);
	x = enroll_ok(inst, CA_OP_ENROLL, csr);
	check_issued(x, csr, ca,
	             X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_KEY_ENCIPHERMENT);
	ck_assert_int_eq(
	    ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)),
	    0);
	ck_assert_int_eq(
	    ASN1_TIME_compare(X509_get0_notBefore(x), X509_get0_notBefore(ca)),
	    0);
	X509_free(x);
	X509_REQ_free(csr);
	ca_instance_free(inst);
	X509_free(ca);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_local_enroll_ed25519_csr)
{
	struct ca_instance *inst;
	STACK_OF(X509) *untrusted;
	X509_REQ *csr;
	EVP_PKEY *key;
	X509 *x;

	key = gen_key("ED25519");
	inst = configure_ok(default_conf());
	csr = make_csr(key, "ed25519-device", NID_subject_alt_name,
	               "DNS:ed.example.com", NID_undef);
	x = enroll_ok(inst, CA_OP_ENROLL, csr);
	check_issued(x, csr, ca_cert,
	             X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_KEY_ENCIPHERMENT);
	check_san_copied(x, csr, 0);
	ck_assert_int_eq(X509_get_signature_nid(x),
	                 NID_sha256WithRSAEncryption);
	untrusted = stack_of(ca_cert);
	check_verifies(x, root_cert, untrusted, 0);
	sk_X509_free(untrusted);
	X509_free(x);
	X509_REQ_free(csr);
	ca_instance_free(inst);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_local_enroll_ec_csr)
{
	struct ca_instance *inst;
	STACK_OF(X509) *untrusted;
	X509_REQ *csr;
	X509 *x;

	inst = configure_ok(default_conf());
	csr = make_csr(ec_csr_key, "ec-device", NID_undef);
	x = enroll_ok(inst, CA_OP_ENROLL, csr);
	check_issued(x, csr, ca_cert,
	             X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_KEY_ENCIPHERMENT);
	ck_assert_int_eq(EVP_PKEY_is_a(X509_get0_pubkey(x), "EC"), 1);
	untrusted = stack_of(ca_cert);
	check_verifies(x, root_cert, untrusted, X509_PURPOSE_SSL_CLIENT);
	sk_X509_free(untrusted);
	X509_free(x);
	X509_REQ_free(csr);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_reenroll_issues)
{
	struct ca_instance *inst;
	X509_REQ *csr;
	X509 *x;

	inst = configure_ok(default_conf());
	csr = make_csr(ec_csr_key, "renewing", NID_subject_alt_name,
	               "DNS:renewing.example.com", NID_undef);
	x = enroll_ok(inst, CA_OP_REENROLL, csr);
	check_issued(x, csr, ca_cert,
	             X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_KEY_ENCIPHERMENT);
	check_san_copied(x, csr, 0);
	X509_free(x);
	X509_REQ_free(csr);
	ca_instance_free(inst);
}
END_TEST

/* Issues with a CA key of type type; the signature must be sig_nid. */
static void
check_ca_key_type(const char *type, const char *base, int sig_nid)
{
	char cert_file[64], key_file[64], chain_file[64];
	struct ca_instance *inst;
	STACK_OF(X509) *untrusted;
	X509_REQ *csr;
	EVP_PKEY *key;
	X509 *ca, *x;

	snprintf(cert_file, sizeof(cert_file), "%s.pem", base);
	snprintf(key_file, sizeof(key_file), "%s.key", base);
	snprintf(chain_file, sizeof(chain_file), "%s-chain.pem", base);
	key = gen_key(type);
	ca = make_cert(base, key, root_cert, root_key, 1, -DAY, 365 * DAY);
	write_certs(cert_file, ca, NULL);
	write_certs(chain_file, ca, root_cert, NULL);
	write_key(key_file, key, NULL);
	inst = configure_ok(make_conf(cert_file, key_file, chain_file));
	csr = make_csr(ec_csr_key, "device", NID_subject_alt_name,
	               "DNS:device.example.com", NID_undef);
	x = enroll_ok(inst, CA_OP_ENROLL, csr);
	check_issued(x, csr, ca,
	             X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_KEY_ENCIPHERMENT);
	ck_assert_int_eq(X509_get_signature_nid(x), sig_nid);
	untrusted = stack_of(ca);
	check_verifies(x, root_cert, untrusted, X509_PURPOSE_SSL_CLIENT);
	sk_X509_free(untrusted);
	X509_free(x);
	X509_REQ_free(csr);
	ca_instance_free(inst);
	X509_free(ca);
	EVP_PKEY_free(key);
}

START_TEST(test_local_ec_p256_ca_key)
{
	check_ca_key_type("P-256", "ec256-ca", NID_ecdsa_with_SHA256);
}
END_TEST

START_TEST(test_local_ec_p384_ca_key)
{
	check_ca_key_type("P-384", "ec384-ca", NID_ecdsa_with_SHA384);
}
END_TEST

START_TEST(test_local_ed25519_ca_key)
{
	check_ca_key_type("ED25519", "ed25519-ca", NID_ED25519);
}
END_TEST

START_TEST(test_local_empty_subject_gets_critical_san)
{
	struct ca_instance *inst;
	X509_REQ *csr;
	X509 *x;

	inst = configure_ok(default_conf());
	csr = make_csr(ec_csr_key, NULL, NID_subject_alt_name,
	               "DNS:nameless.example.com", NID_undef);
	x = enroll_ok(inst, CA_OP_ENROLL, csr);
	ck_assert_int_eq(X509_NAME_entry_count(X509_get_subject_name(x)), 0);
	check_san_copied(x, csr, 1);
	X509_free(x);
	X509_REQ_free(csr);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_empty_subject_without_san_refused)
{
	struct ca_instance *inst;
	struct result r;
	X509_REQ *csr;

	inst = configure_ok(default_conf());
	csr = make_csr(ec_csr_key, NULL, NID_undef);
	r = run(inst, CA_OP_ENROLL, csr);
	ck_assert_int_eq(r.outcome, CA_REJECTED);
	ck_assert_int_eq(r.csr_fault, 1);
	ck_assert_ptr_null(r.chain);
	ck_assert_ptr_nonnull(strstr(r.cause, "CSR refused"));
	X509_REQ_free(csr);
	ca_instance_free(inst);
}
END_TEST

/* Runs cacerts and checks the answer is want (NULL-terminated), in order. */
static void
check_cacerts(struct ca_instance *inst, ...)
{
	struct result r;
	va_list ap;
	X509 *want;
	int i = 0;

	r = run(inst, CA_OP_CACERTS, NULL);
	ck_assert_int_eq(r.outcome, CA_ISSUED);
	ck_assert_ptr_nonnull(r.chain);
	va_start(ap, inst);
	while ((want = va_arg(ap, X509 *)) != NULL) {
		ck_assert_int_lt(i, sk_X509_num(r.chain));
		ck_assert_int_eq(X509_cmp(sk_X509_value(r.chain, i), want), 0);
		i++;
	}
	va_end(ap);
	ck_assert_int_eq(sk_X509_num(r.chain), i);
	sk_X509_pop_free(r.chain, X509_free);
}

START_TEST(test_local_cacerts_chain_in_order)
{
	struct ca_instance *inst;

	inst = configure_ok(default_conf());
	/* Twice: the answer holds references, not the instance's chain. */
	check_cacerts(inst, ca_cert, root_cert, NULL);
	check_cacerts(inst, ca_cert, root_cert, NULL);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_cacerts_prepends_issuing_ca)
{
	struct ca_instance *inst;

	inst = configure_ok(make_conf("ca.pem", "ca.key", "root.pem"));
	check_cacerts(inst, ca_cert, root_cert, NULL);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_cacerts_default_is_issuing_ca)
{
	struct ca_instance *inst;

	inst = configure_ok(make_conf("ca.pem", "ca.key", NULL));
	check_cacerts(inst, ca_cert, NULL);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_single_tier_root_ca)
{
	struct ca_instance *inst;
	X509_REQ *csr;
	X509 *x;

	inst = configure_ok(make_conf("root.pem", "root.key", "root.pem"));
	check_cacerts(inst, root_cert, NULL);
	csr = make_csr(ec_csr_key, "direct", NID_undef);
	x = enroll_ok(inst, CA_OP_ENROLL, csr);
	check_issued(x, csr, root_cert,
	             X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_KEY_ENCIPHERMENT);
	check_verifies(x, root_cert, NULL, X509_PURPOSE_SSL_CLIENT);
	X509_free(x);
	X509_REQ_free(csr);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_health_ok)
{
	struct ca_instance *inst;
	struct result r;

	inst = configure_ok(default_conf());
	r = run(inst, CA_OP_HEALTH, NULL);
	ck_assert_int_eq(r.outcome, CA_ISSUED);
	ck_assert_str_eq(r.cause, "");
	ck_assert_ptr_null(r.chain);
	ck_assert_int_eq(log_count[CORE_LOG_WARN], 0);
	ck_assert_int_eq(log_count[CORE_LOG_ERROR], 0);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_health_warns_before_expiry)
{
	struct ca_instance *inst;
	struct result r;
	EVP_PKEY *key;
	X509 *ca;

	key = gen_key("P-256");
	ca =
	    make_cert("Ending CA", key, root_cert, root_key, 1, -DAY, 10 * DAY);
	write_certs("ending.pem", ca, NULL);
	write_certs("ending-chain.pem", ca, root_cert, NULL);
	write_key("ending.key", key, NULL);
	inst = configure_ok(
	    make_conf("ending.pem", "ending.key", "ending-chain.pem"));
	/* configure warned once already; health warns again. */
	ck_assert_int_eq(log_count[CORE_LOG_WARN], 1);
	r = run(inst, CA_OP_HEALTH, NULL);
	ck_assert_int_eq(r.outcome, CA_ISSUED);
	ck_assert_str_eq(r.cause, "");
	ck_assert_int_eq(log_count[CORE_LOG_WARN], 2);
	ck_assert_ptr_nonnull(strstr(log_last, "ca.local: "));
	ck_assert_ptr_nonnull(strstr(log_last, "expires"));
	ck_assert_ptr_nonnull(strstr(log_last, "Ending CA"));
	ca_instance_free(inst);
	X509_free(ca);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_local_poll_unsupported)
{
	struct ca_instance *inst;
	struct result r;

	inst = configure_ok(default_conf());
	r = run(inst, CA_OP_POLL, NULL);
	ck_assert_int_eq(r.outcome, CA_UNSUPPORTED);
	ca_instance_free(inst);
}
END_TEST

#define THREADS           8
#define ISSUES_PER_THREAD 8

struct worker {
	pthread_t thread;
	struct ca_instance *inst;
	X509_REQ *csr;
	X509 *issued[ISSUES_PER_THREAD];
	int done;
	int failures;
};

static void
worker_done(struct ca_call *call, void *arg)
{
	struct worker *w = arg;

	w->done++;
}

/* One worker thread: its own loop, enrollments one after the other. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct event_base *base;
	struct ca_call *call;
	int i;

	if ((base = event_base_new()) == NULL) {
		w->failures++;
		return NULL;
	}
	for (i = 0; i < ISSUES_PER_THREAD; i++) {
		if ((call = ca_call_new()) == NULL) {
			w->failures++;
			continue;
		}
		call->op = CA_OP_ENROLL;
		call->base = base;
		call->rid = "00000000000000aa";
		call->label = "test";
		call->csr = w->csr;
		ca_instance_start(w->inst, call, worker_done, w);
		if (event_base_dispatch(base) != 1 ||
		    call->result.outcome != CA_ISSUED ||
		    sk_X509_num(call->result.chain) != 1)
			w->failures++;
		else
			w->issued[i] = sk_X509_shift(call->result.chain);
		ca_call_free(call);
	}
	event_base_free(base);
	return NULL;
}

START_TEST(test_local_concurrent_enroll)
{
	static struct worker workers[THREADS];
	const ASN1_INTEGER *a, *b;
	struct ca_instance *inst;
	char cn[32];
	int i, j, k, l;

	inst = configure_ok(default_conf());
	for (i = 0; i < THREADS; i++) {
		snprintf(cn, sizeof(cn), "worker-%d", i);
		workers[i].inst = inst;
		workers[i].csr = make_csr(ec_csr_key, cn, NID_undef);
	}
	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&workers[i].thread, NULL,
		                                worker_main, &workers[i]),
		                 0);
	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_join(workers[i].thread, NULL), 0);
	for (i = 0; i < THREADS; i++) {
		ck_assert_int_eq(workers[i].failures, 0);
		ck_assert_int_eq(workers[i].done, ISSUES_PER_THREAD);
		for (j = 0; j < ISSUES_PER_THREAD; j++)
			check_issued(workers[i].issued[j], workers[i].csr,
			             ca_cert,
			             X509v3_KU_DIGITAL_SIGNATURE |
			                 X509v3_KU_KEY_ENCIPHERMENT);
	}
	/* Every serial of every thread differs from every other. */
	for (i = 0; i < THREADS; i++)
		for (j = 0; j < ISSUES_PER_THREAD; j++) {
			a = X509_get0_serialNumber(workers[i].issued[j]);
			for (k = i; k < THREADS; k++)
				for (l = k == i ? j + 1 : 0;
				     l < ISSUES_PER_THREAD; l++) {
					b = X509_get0_serialNumber(
					    workers[k].issued[l]);
					ck_assert_int_ne(ASN1_INTEGER_cmp(a, b),
					                 0);
				}
		}
	for (i = 0; i < THREADS; i++) {
		for (j = 0; j < ISSUES_PER_THREAD; j++)
			X509_free(workers[i].issued[j]);
		X509_REQ_free(workers[i].csr);
	}
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_conf_unknown_key)
{
	json_t *conf;

	conf = default_conf();
	ck_assert_int_eq(
	    json_object_set_new(conf, "certs", json_string("x.pem")), 0);
	configure_fails(conf, "certs", "unknown key \"certs\"");
}
END_TEST

START_TEST(test_local_conf_unknown_profile_key)
{
	json_t *conf;

	conf = default_conf();
	ck_assert_int_eq(
	    json_object_set_new(conf, "profile",
	                        json_pack("{s:i}", "validty_days", 30)),
	    0);
	configure_fails(conf, "profile.validty_days",
	                "unknown key \"validty_days\"");
}
END_TEST

START_TEST(test_local_conf_missing_files)
{
	configure_fails(make_conf("nonexistent.pem", "ca.key", NULL), "cert",
	                "No such file or directory");
	configure_fails(make_conf("ca.pem", "nonexistent.key", NULL), "key",
	                "No such file or directory");
	configure_fails(make_conf("ca.pem", "ca.key", "nonexistent.pem"),
	                "chain", "No such file or directory");
	configure_fails(make_conf(".", "ca.key", NULL), "cert",
	                "Is a directory");
	configure_fails(
	    json_pack("{s:s, s:s}", "backend", "local", "key", "ca.key"),
	    "cert", "missing \"cert\"");
	configure_fails(
	    json_pack("{s:s, s:s}", "backend", "local", "cert", "ca.pem"),
	    "key", "missing \"key\"");
}
END_TEST

START_TEST(test_local_conf_missing_file_names_path)
{
	char want[512];

	path_in_tmp(want, sizeof(want), "nonexistent.pem");
	configure_fails(make_conf("nonexistent.pem", "ca.key", NULL), "cert",
	                want);
}
END_TEST

START_TEST(test_local_conf_paths_resolved)
{
	struct ca_instance *inst;
	char dir[512], cert[512], key[512];
	struct core_err err;
	json_t *conf;

	/* Relative to conf_dir, even through "..". */
	path_in_tmp(dir, sizeof(dir), "conf");
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	conf = make_conf("../ca.pem", "../ca.key", "../chain.pem");
	memset(&err, 0, sizeof(err));
	inst = ca_instance_new(conf, dir, &err);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	ca_instance_free(inst);
	json_decref(conf);
	ck_assert_int_eq(rmdir(dir), 0);
	/* Absolute names ignore conf_dir. */
	path_in_tmp(cert, sizeof(cert), "ca.pem");
	path_in_tmp(key, sizeof(key), "ca.key");
	conf = make_conf(cert, key, NULL);
	inst = ca_instance_new(conf, "/nonexistent", &err);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	ca_instance_free(inst);
	json_decref(conf);
}
END_TEST

START_TEST(test_local_conf_key_mismatch)
{
	configure_fails(make_conf("ca.pem", "root.key", NULL), "key",
	                "does not match");
}
END_TEST

START_TEST(test_local_conf_expired_ca)
{
	EVP_PKEY *key;
	X509 *ca;

	key = gen_key("P-256");
	ca = make_cert("Old CA", key, root_cert, root_key, 1, -30 * DAY, -DAY);
	write_certs("old.pem", ca, NULL);
	write_key("old.key", key, NULL);
	configure_fails(make_conf("old.pem", "old.key", NULL), "cert",
	                "expired on ");
	configure_fails(make_conf("old.pem", "old.key", NULL), "cert",
	                "clock skew?");
	X509_free(ca);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_local_conf_not_yet_valid_ca)
{
	EVP_PKEY *key;
	X509 *ca;

	key = gen_key("P-256");
	ca = make_cert("Future CA", key, root_cert, root_key, 1, DAY, 30 * DAY);
	write_certs("future.pem", ca, NULL);
	write_key("future.key", key, NULL);
	configure_fails(make_conf("future.pem", "future.key", NULL), "cert",
	                "not valid before");
	configure_fails(make_conf("future.pem", "future.key", NULL), "cert",
	                "clock skew?");
	X509_free(ca);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_local_conf_not_a_ca)
{
	EVP_PKEY *key;
	X509 *leaf;

	key = gen_key("P-256");
	leaf =
	    make_cert("Just a leaf", key, ca_cert, ca_key, 0, -DAY, 30 * DAY);
	write_certs("leaf.pem", leaf, NULL);
	write_key("leaf.key", key, NULL);
	configure_fails(make_conf("leaf.pem", "leaf.key", NULL), "cert",
	                "is not a CA certificate");
	X509_free(leaf);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_local_conf_bad_pem)
{
	write_text("garbage.pem", "hello, world\n");
	configure_fails(make_conf("garbage.pem", "ca.key", NULL), "cert",
	                "no PEM certificate in");
	configure_fails(make_conf("garbage.pem", "ca.key", NULL), "cert",
	                "(SSL: ");
	configure_fails(make_conf("ca.pem", "garbage.pem", NULL), "key",
	                "no PEM private key in");
	configure_fails(make_conf("ca.pem", "ca.key", "garbage.pem"), "chain",
	                "cannot read certificate 1");
}
END_TEST

START_TEST(test_local_conf_encrypted_key)
{
	write_key("encrypted.key", ca_key, "secret");
	configure_fails(make_conf("ca.pem", "encrypted.key", NULL), "key",
	                "is encrypted");
}
END_TEST

START_TEST(test_local_conf_validity_days_range)
{
	struct ca_instance *inst;
	json_t *conf;

	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:i}", "validity_days", 0));
	configure_fails(conf, "profile.validity_days", "between 1 and 3650");
	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:i}", "validity_days", 3651));
	configure_fails(conf, "profile.validity_days", "not 3651");
	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:i}", "validity_days", -1));
	configure_fails(conf, "profile.validity_days", "between 1 and 3650");
	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:i}", "validity_days", 1));
	inst = configure_ok(conf);
	ca_instance_free(inst);
	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:i}", "validity_days", 3650));
	inst = configure_ok(conf);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_local_conf_wrong_types)
{
	json_t *conf;

	configure_fails(json_pack("{s:s, s:i, s:s}", "backend", "local", "cert",
	                          7, "key", "ca.key"),
	                "cert", "must be a string");
	configure_fails(json_pack("{s:s, s:s, s:s, s:b}", "backend", "local",
	                          "cert", "ca.pem", "key", "ca.key", "chain",
	                          1),
	                "chain", "must be a string");
	configure_fails(json_pack("{s:s, s:s, s:s}", "backend", "local", "cert",
	                          "", "key", "ca.key"),
	                "cert", "non-empty");
	conf = default_conf();
	json_object_set_new(conf, "profile", json_pack("[i]", 1));
	configure_fails(conf, "profile", "must be an object, not an array");
	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:s}", "validity_days", "365"));
	configure_fails(conf, "profile.validity_days",
	                "must be an integer (days), not a string");
	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:f}", "validity_days", 365.0));
	configure_fails(conf, "profile.validity_days", "must be an integer");
	conf = default_conf();
	json_object_set_new(
	    conf, "profile",
	    json_pack("{s:s}", "key_usage", "digitalSignature"));
	configure_fails(conf, "profile.key_usage", "must be an array");
	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:[i]}", "extended_key_usage", 3));
	configure_fails(conf, "profile.extended_key_usage",
	                "element 1 must be a string");
}
END_TEST

START_TEST(test_local_conf_ca_usages_refused)
{
	json_t *conf;

	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:[s,s]}", "key_usage",
	                              "digitalSignature", "keyCertSign"));
	configure_fails(conf, "profile.key_usage", "never a CA");
	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:[s]}", "key_usage", "cRLSign"));
	configure_fails(conf, "profile.key_usage", "\"cRLSign\" is refused");
}
END_TEST

START_TEST(test_local_conf_usage_names_checked)
{
	json_t *conf;

	conf = default_conf();
	json_object_set_new(
	    conf, "profile",
	    json_pack("{s:[s]}", "key_usage", "digitalsignature"));
	configure_fails(conf, "profile.key_usage",
	                "unknown key usage \"digitalsignature\"");
	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:[s,s]}", "key_usage", "keyAgreement",
	                              "keyAgreement"));
	configure_fails(conf, "profile.key_usage", "listed twice");
	conf = default_conf();
	json_object_set_new(conf, "profile", json_pack("{s:[]}", "key_usage"));
	configure_fails(conf, "profile.key_usage", "at least one");
	conf = default_conf();
	json_object_set_new(
	    conf, "profile",
	    json_pack("{s:[s]}", "extended_key_usage", "webServer"));
	configure_fails(conf, "profile.extended_key_usage",
	                "unknown extended key usage \"webServer\"");
	/* OpenSSL's own names are not part of the configuration language. */
	conf = default_conf();
	json_object_set_new(
	    conf, "profile",
	    json_pack("{s:[s]}", "extended_key_usage", "commonName"));
	configure_fails(conf, "profile.extended_key_usage",
	                "unknown extended key usage");
	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:[s]}", "extended_key_usage", "1..2"));
	configure_fails(conf, "profile.extended_key_usage",
	                "unknown extended key usage");
	conf = default_conf();
	json_object_set_new(
	    conf, "profile",
	    json_pack("{s:[s]}", "extended_key_usage", "1.2.03"));
	configure_fails(conf, "profile.extended_key_usage",
	                "unknown extended key usage");
	conf = default_conf();
	json_object_set_new(conf, "profile",
	                    json_pack("{s:[s,s]}", "extended_key_usage",
	                              "serverAuth", "1.3.6.1.5.5.7.3.1"));
	configure_fails(conf, "profile.extended_key_usage", "listed twice");
}
END_TEST

START_TEST(test_local_conf_chain_checked)
{
	EVP_PKEY *key;
	X509 *other;

	/* Without its root. */
	write_certs("no-root.pem", ca_cert, NULL);
	configure_fails(make_conf("ca.pem", "ca.key", "no-root.pem"), "chain",
	                "does not end in a self-signed root");
	/* Root first. */
	write_certs("reversed.pem", root_cert, ca_cert, NULL);
	configure_fails(make_conf("ca.pem", "ca.key", "reversed.pem"), "chain",
	                "lists the issuing CA as certificate 2");
	/* Somebody else's root. */
	key = gen_key("P-256");
	other = make_cert("Other Root", key, NULL, NULL, 1, -DAY, 30 * DAY);
	write_certs("other-root.pem", other, NULL);
	configure_fails(make_conf("ca.pem", "ca.key", "other-root.pem"),
	                "chain", "is not issued by the next certificate");
	/* Anything after the root. */
	write_certs("trailing.pem", ca_cert, root_cert, other, NULL);
	configure_fails(make_conf("ca.pem", "ca.key", "trailing.pem"), "chain",
	                "goes on after the self-signed root");
	X509_free(other);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_local_configure_unconfigure_no_leak)
{
	int i;

	/* Failures at every stage must release what was loaded before;
	 * LeakSanitizer checks when built with it. */
	write_certs("leak-reversed.pem", root_cert, ca_cert, NULL);
	for (i = 0; i < 3; i++) {
		configure_fails(make_conf("ca.pem", "root.key", "chain.pem"),
		                "key", "does not match");
		configure_fails(make_conf("ca.pem", "ca.key", "absent.pem"),
		                "chain", "No such file");
		configure_fails(
		    make_conf("ca.pem", "ca.key", "leak-reversed.pem"), "chain",
		    "lists the issuing CA");
		ca_instance_free(configure_ok(default_conf()));
	}
}
END_TEST

/*
 * Makes the shared PKI in tmpdir, once: an unchecked fixture of every test
 * case, so that it runs in the runner process before the forks and may use
 * ck_assert.
 */
static void
make_pki(void)
{
	if (root_cert != NULL)
		return;
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	root_key = gen_key("RSA");
	ca_key = gen_key("RSA");
	rsa_csr_key = gen_key("RSA");
	ec_csr_key = gen_key("P-256");
	root_cert = make_cert("Test Root CA", root_key, NULL, NULL, 1, -DAY,
	                      3650 * DAY);
	ca_cert = make_cert("Test Issuing CA", ca_key, root_cert, root_key, 1,
	                    -DAY, 1825 * DAY);
	write_certs("root.pem", root_cert, NULL);
	write_key("root.key", root_key, NULL);
	write_certs("ca.pem", ca_cert, NULL);
	write_key("ca.key", ca_key, NULL);
	write_certs("chain.pem", ca_cert, root_cert, NULL);
}

static void
remove_pki(void)
{
	struct dirent *de;
	char path[512];
	DIR *dir;

	if (root_cert == NULL)
		return;
	if ((dir = opendir(tmpdir)) != NULL) {
		while ((de = readdir(dir)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", tmpdir,
			         de->d_name);
			if (unlink(path) != 0)
				rmdir(path);
		}
		closedir(dir);
	}
	rmdir(tmpdir);
	X509_free(root_cert);
	X509_free(ca_cert);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(rsa_csr_key);
	EVP_PKEY_free(ec_csr_key);
}

static Suite *
ca_local_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("ca_local");
	tc = tcase_create("enroll");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, make_pki, NULL);
	tcase_add_checked_fixture(tc, reset_log, NULL);
	tcase_add_test(tc, test_local_enroll_issues_verifiable_cert);
	tcase_add_test(tc, test_local_enroll_ignores_requested_extensions);
	tcase_add_test(tc, test_local_enroll_applies_profile);
	tcase_add_test(tc, test_local_serials_random);
	tcase_add_test(tc, test_local_validity_inside_ca_validity);
	tcase_add_test(tc, test_local_enroll_ed25519_csr);
	tcase_add_test(tc, test_local_enroll_ec_csr);
	tcase_add_test(tc, test_local_reenroll_issues);
	tcase_add_test(tc, test_local_ec_p256_ca_key);
	tcase_add_test(tc, test_local_ec_p384_ca_key);
	tcase_add_test(tc, test_local_ed25519_ca_key);
	tcase_add_test(tc, test_local_empty_subject_gets_critical_san);
	tcase_add_test(tc, test_local_empty_subject_without_san_refused);
	tcase_add_test(tc, test_local_concurrent_enroll);
	suite_add_tcase(s, tc);
	tc = tcase_create("cacerts_health");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, make_pki, NULL);
	tcase_add_checked_fixture(tc, reset_log, NULL);
	tcase_add_test(tc, test_local_cacerts_chain_in_order);
	tcase_add_test(tc, test_local_cacerts_prepends_issuing_ca);
	tcase_add_test(tc, test_local_cacerts_default_is_issuing_ca);
	tcase_add_test(tc, test_local_single_tier_root_ca);
	tcase_add_test(tc, test_local_health_ok);
	tcase_add_test(tc, test_local_health_warns_before_expiry);
	tcase_add_test(tc, test_local_poll_unsupported);
	suite_add_tcase(s, tc);
	tc = tcase_create("configure");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, make_pki, NULL);
	tcase_add_checked_fixture(tc, reset_log, NULL);
	tcase_add_test(tc, test_local_conf_unknown_key);
	tcase_add_test(tc, test_local_conf_unknown_profile_key);
	tcase_add_test(tc, test_local_conf_missing_files);
	tcase_add_test(tc, test_local_conf_missing_file_names_path);
	tcase_add_test(tc, test_local_conf_paths_resolved);
	tcase_add_test(tc, test_local_conf_key_mismatch);
	tcase_add_test(tc, test_local_conf_expired_ca);
	tcase_add_test(tc, test_local_conf_not_yet_valid_ca);
	tcase_add_test(tc, test_local_conf_not_a_ca);
	tcase_add_test(tc, test_local_conf_bad_pem);
	tcase_add_test(tc, test_local_conf_encrypted_key);
	tcase_add_test(tc, test_local_conf_validity_days_range);
	tcase_add_test(tc, test_local_conf_wrong_types);
	tcase_add_test(tc, test_local_conf_ca_usages_refused);
	tcase_add_test(tc, test_local_conf_usage_names_checked);
	tcase_add_test(tc, test_local_conf_chain_checked);
	tcase_add_test(tc, test_local_configure_unconfigure_no_leak);
	tcase_add_test(tc, test_local_delay_ms_does_not_block_the_loop);
	tcase_add_test(tc, test_local_conf_delay_and_check_signatures_checked);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	ca_set_log_hook(log_hook);
	sr = srunner_create(ca_local_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_pki();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
