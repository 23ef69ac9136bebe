/*
 * check_ra_config.c: the configuration loader and its position scanner.
 * Each test writes a configuration into a temporary directory that also
 * holds a small PKI made with the OpenSSL API, loads it, and checks the
 * result or the exact "FILE:LINE:COL: KEY: reason" message.
 */
#include <sys/stat.h>

#include <crypt.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "ra/config.h"

/* snprintf that fails the test rather than truncate. */
#define FMT(buf, ...)                                                          \
	ck_assert_int_lt(snprintf((buf), sizeof(buf), __VA_ARGS__),            \
	                 (int)sizeof(buf))

/* The label CA block both the real local backend and a stub accept. */
#define CA_BLOCK                                                               \
	"{\"backend\": \"local\", \"cert\": \"ca.pem\", \"key\": \"ca.key\"}"

/* The tls block of most tests. */
#define TLS_BLOCK                                                              \
	"{\"cert\": \"server.pem\", \"key\": \"server.key\", "                 \
	"\"explicit_ca\": \"ca.pem\"}"

/* The directory of the PKI and the configurations, made once. */
static char tmpdir[PATH_MAX];
static char realdir[PATH_MAX];
static char conf_path[PATH_MAX];

static int
remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void
write_file(const char *name, const char *text, size_t len)
{
	char path[PATH_MAX];
	FILE *fp;

	FMT(path, "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
}

static void
write_text(const char *name, const char *text)
{
	write_file(name, text, strlen(text));
}

static void
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509_EXTENSION *ext;
	X509V3_CTX ctx;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ck_assert_ptr_nonnull(ext);
	ck_assert_int_eq(X509_add_ext(cert, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* Makes a certificate for key named cn, self-signed when issuer is NULL. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
          int ca)
{
	static long serial = 1;
	X509_NAME *name;
	X509 *x;

	x = X509_new();
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++),
	                 1);
	name = X509_NAME_new();
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
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	ck_assert_ptr_nonnull(
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365));
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	if (issuer == NULL)
		issuer = x;
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (ca) {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer, NID_key_usage,
		        "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
		add_ext(x, issuer, NID_authority_key_identifier, "keyid");
	}
	ck_assert_int_gt(
	    X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()),
	    0);
	return x;
}

static void
write_pem(const char *name, X509 *const *certs, size_t ncerts, EVP_PKEY *key,
          const EVP_CIPHER *enc)
{
	char path[PATH_MAX];
	size_t i;
	FILE *fp;

	FMT(path, "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	for (i = 0; i < ncerts; i++)
		ck_assert_int_eq(PEM_write_X509(fp, certs[i]), 1);
	if (key != NULL)
		ck_assert_int_eq(
		    PEM_write_PrivateKey(
		        fp, key, enc,
		        enc != NULL ? (unsigned char *)"passphrase" : NULL,
		        enc != NULL ? 10 : 0, NULL, NULL),
		    1);
	ck_assert_int_eq(fclose(fp), 0);
}

/* The PKI: issuing CA, server certificate, a manufacturer CA, an unrelated
 * key, an encrypted key, and files that hold no certificate. */
static void
pki_setup(void)
{
	EVP_PKEY *ca_key, *server_key, *mfr_key, *other_key;
	X509 *ca, *server, *mfr, *chain[2];
	char hash[CRYPT_OUTPUT_SIZE + 32];
	struct crypt_data *cd;
	char *setting;

	FMT(tmpdir, "/tmp/check_ra_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_ptr_nonnull(realpath(tmpdir, realdir));
	FMT(conf_path, "%s/estrad.json", tmpdir);

	ca_key = EVP_EC_gen("P-256");
	server_key = EVP_EC_gen("P-256");
	mfr_key = EVP_EC_gen("P-256");
	other_key = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(ca_key);
	ck_assert_ptr_nonnull(server_key);
	ck_assert_ptr_nonnull(mfr_key);
	ck_assert_ptr_nonnull(other_key);
	ca = make_cert(ca_key, "Test Issuing CA", NULL, NULL, 1);
	server = make_cert(server_key, "localhost", ca, ca_key, 0);
	mfr = make_cert(mfr_key, "Test Manufacturer CA", NULL, NULL, 1);

	write_pem("ca.pem", &ca, 1, NULL, NULL);
	write_pem("ca.key", NULL, 0, ca_key, NULL);
	chain[0] = server;
	chain[1] = ca;
	write_pem("server.pem", chain, 2, NULL, NULL);
	write_pem("server.key", NULL, 0, server_key, NULL);
	write_pem("manufacturer-ca.pem", &mfr, 1, NULL, NULL);
	write_pem("other.key", NULL, 0, other_key, NULL);
	write_pem("encrypted.key", NULL, 0, server_key, EVP_aes_256_cbc());
	write_text("empty.pem", "no certificate here\n");
	write_text("damaged.pem", "-----BEGIN CERTIFICATE-----\n"
	                          "MIIBdamaged\n-----END CERTIFICATE-----\n");

	/* A users file with one sha512-crypt user. */
	setting = crypt_gensalt_ra("$6$", 0, NULL, 0);
	ck_assert_ptr_nonnull(setting);
	cd = calloc(1, sizeof(*cd));
	ck_assert_ptr_nonnull(cd);
	FMT(hash, "estuser:%s\n", crypt_r("secret", setting, cd));
	write_text("users.htpasswd", hash);
	write_text("plain.htpasswd", "# users\nestuser:secret\n");
	free(cd);
	free(setting);

	X509_free(ca);
	X509_free(server);
	X509_free(mfr);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(server_key);
	EVP_PKEY_free(mfr_key);
	EVP_PKEY_free(other_key);
}

static void
pki_teardown(void)
{
	if (tmpdir[0] != '\0')
		nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes text as the configuration and loads it. */
static struct ra_config *
load(const char *text, char *err, size_t errlen)
{
	write_text("estrad.json", text);
	err[0] = '\0';
	return ra_config_load(conf_path, err, errlen);
}

static struct ra_config *
load_ok(const char *text)
{
	struct ra_config *config;
	char err[1024];

	config = load(text, err, sizeof(err));
	ck_assert_msg(config != NULL, "load failed: %s", err);
	ck_assert_str_eq(err, "");
	return config;
}

/* Loads text, expects failure, returns the message (static buffer). */
static const char *
load_fails(const char *text)
{
	static char err[1024];
	struct ra_config *config;

	config = load(text, err, sizeof(err));
	ck_assert_msg(config == NULL, "loaded:\n%s", text);
	ck_assert_msg(err[0] != '\0', "no message for:\n%s", text);
	return err;
}

/* Expects failure with exactly CONF_PATH followed by the formatted rest. */
static void expect_error(const char *text, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
expect_error(const char *text, const char *fmt, ...)
{
	char rest[1024], want[PATH_MAX + 1024];
	const char *err;
	va_list ap;

	va_start(ap, fmt);
	ck_assert_int_lt(vsnprintf(rest, sizeof(rest), fmt, ap),
	                 (int)sizeof(rest));
	va_end(ap);
	FMT(want, "%s%s", conf_path, rest);
	err = load_fails(text);
	ck_assert_str_eq(err, want);
}

/* Expects failure whose message starts with CONF_PATH + prefix and holds
 * needle. */
static void
expect_error_has(const char *text, const char *prefix, const char *needle)
{
	char want[PATH_MAX + 512];
	const char *err;

	FMT(want, "%s%s", conf_path, prefix);
	err = load_fails(text);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
	              "message \"%s\" does not start with \"%s\"", err, want);
	ck_assert_msg(needle == NULL || strstr(err, needle) != NULL,
	              "message \"%s\" lacks \"%s\"", err, needle);
}

/* Where needle first occurs in text, 1-based, as the scanner counts. */
static void
position_of(const char *text, const char *needle, int *line, int *col)
{
	const char *at = strstr(text, needle), *p;

	ck_assert_ptr_nonnull(at);
	*line = 1;
	*col = 1;
	for (p = text; p < at; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else
			(*col)++;
	}
}

/* A configuration with the given top-level members before "labels" and the
 * given members in label "default" (both may be empty). */
static const char *
config_with(const char *top, const char *label)
{
	static char text[8192];

	FMT(text,
	    "{\n"
	    "  \"tls\": " TLS_BLOCK ",\n"
	    "%s"
	    "  \"labels\": {\n"
	    "    \"default\": {%s\"ca\": " CA_BLOCK "}\n"
	    "  }\n"
	    "}\n",
	    top, label);
	return text;
}

START_TEST(test_config_defaults)
{
	struct ra_config *config;
	struct ra_label *label;
	char want[PATH_MAX + 64];
	long cores;

	config = load_ok(config_with("", ""));
	FMT(want, "%s/estrad.json", realdir);
	ck_assert_str_eq(config->path, want);
	ck_assert_str_eq(config->dir, realdir);
	ck_assert_uint_eq(config->nlisten, 1);
	ck_assert_str_eq(config->listen[0], "127.0.0.1:8443");
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	ck_assert_int_eq(config->workers, cores < 1    ? 1
	                                  : cores > 64 ? 64
	                                               : (int)cores);
	FMT(want, "%s/server.pem", realdir);
	ck_assert_str_eq(config->tls.cert, want);
	FMT(want, "%s/server.key", realdir);
	ck_assert_str_eq(config->tls.key, want);
	FMT(want, "%s/ca.pem", realdir);
	ck_assert_str_eq(config->tls.explicit_ca, want);
	ck_assert_ptr_null(config->tls.implicit_ca);
	ck_assert_ptr_nonnull(config->tls.ciphers);
	ck_assert_ptr_null(config->tls.ciphersuites);
	ck_assert_int_eq(config->tls.min_version, TLS1_2_VERSION);
	ck_assert_int_eq(config->tls.request_client_cert, 1);
	ck_assert_uint_eq(config->tls.session_timeout, 300);
	ck_assert_uint_eq(config->limits.max_body, 65536);
	ck_assert_uint_eq(config->limits.max_headers, 8192);
	ck_assert_uint_eq(config->limits.timeout, 30);
	ck_assert_uint_eq(config->limits.handshake_timeout, 10);
	ck_assert_uint_eq(config->limits.request_timeout, 30);
	ck_assert_uint_eq(config->limits.max_conns_per_client, 256);
	ck_assert_uint_eq(config->limits.max_conns_per_worker, 8192);
	/* Left out: est/limits.c may lower it to fit the descriptors. */
	ck_assert_int_eq(config->limits.per_worker_default, 1);
	ck_assert_str_eq(config->logs.error, "-");
	ck_assert_ptr_null(config->logs.access);
	ck_assert_ptr_null(config->logs.audit);
	ck_assert_int_eq(config->logs.level, CORE_LOG_INFO);
	ck_assert_ptr_null(config->users);
	ck_assert_ptr_null(config->users_table);
	ck_assert_uint_eq(config->nlabels, 1);
	label = config->labels[0];
	ck_assert_str_eq(label->name, "default");
	/* Without a users file the default is certificates only. */
	ck_assert_uint_eq(label->auth, RA_AUTH_CERT);
	ck_assert_int_eq(label->b64_wrap, RA_WRAP_AUTO);
	ck_assert_int_eq(label->accept_pem_armour, 1);
	ck_assert_int_eq(label->include_chain, 0);
	ck_assert_uint_eq(label->retry_after, 30);
	ck_assert_uint_eq(label->ncsrattrs, 0);
	ck_assert_ptr_null(label->csrattrs);
	ck_assert_ptr_nonnull(label->ca);
	ck_assert_str_eq(ca_instance_backend_name(label->ca), "local");
	ck_assert_ptr_eq(config->default_label, label);
	ck_assert_ptr_eq(ra_config_label(config, "default"), label);
	ck_assert_ptr_null(ra_config_label(config, "nope"));
	ck_assert_ptr_null(ra_config_label(NULL, "default"));
	ra_config_free(config);
	ra_config_free(NULL);
}
END_TEST

START_TEST(test_config_full)
{
	static const char text[] =
	    "{\n"
	    "  \"listen\": [\"127.0.0.1:18443\", \"[::1]:18443\",\n"
	    "             \"localhost:19443\"],\n"
	    "  \"workers\": 4,\n"
	    "  \"tls\": {\n"
	    "    \"cert\": \"server.pem\",\n"
	    "    \"key\": \"server.key\",\n"
	    "    \"explicit_ca\": \"ca.pem\",\n"
	    "    \"implicit_ca\": \"manufacturer-ca.pem\",\n"
	    "    \"min_version\": \"1.3\",\n"
	    "    \"request_client_cert\": false,\n"
	    "    \"ciphers\": \"ECDHE+AESGCM\",\n"
	    "    \"ciphersuites\": \"TLS_AES_256_GCM_SHA384\",\n"
	    "    \"session_timeout\": 600\n"
	    "  },\n"
	    "  \"limits\": {\"max_body\": 1024, \"max_headers\": 1048576,\n"
	    "             \"timeout\": 3600, \"handshake_timeout\": 300,\n"
	    "             \"request_timeout\": 1, \"max_conns_per_worker\": "
	    "8192},\n"
	    "  \"logs\": {\"error\": \"logs/error.log\", \"access\": \"-\",\n"
	    "           \"audit\": \"logs/audit.log\", \"level\": \"debug\"},\n"
	    "  \"users\": \"users.htpasswd\",\n"
	    "  \"default_label\": \"phones\",\n"
	    "  \"labels\": {\n"
	    "    \"default\": {\n"
	    "      \"auth\": [\"cert\", \"basic\"],\n"
	    "      \"b64_wrap\": 76,\n"
	    "      \"accept_pem_armour\": false,\n"
	    "      \"include_chain\": true,\n"
	    "      \"retry_after\": 86400,\n"
	    "      \"csrattrs\": [\"challengePassword\", "
	    "\"ecdsa-with-SHA256\",\n"
	    "                   \"id-ecPublicKey:secp384r1\", \"2.5.4.5\"],\n"
	    "      \"ca\": " CA_BLOCK "\n"
	    "    },\n"
	    "    \"phones\": {\"auth\": \"none\", \"b64_wrap\": \"none\",\n"
	    "               \"ca\": " CA_BLOCK "},\n"
	    "    \"v1.2_x-y\": {\"auth\": [\"basic\"], \"ca\": " CA_BLOCK "}\n"
	    "  }\n"
	    "}\n";
	struct ra_config *config;
	struct ra_label *def, *phones, *other;
	char want[PATH_MAX + 64];
	struct stat st;

	config = load_ok(text);
	ck_assert_uint_eq(config->nlisten, 3);
	ck_assert_str_eq(config->listen[0], "127.0.0.1:18443");
	ck_assert_str_eq(config->listen[1], "[::1]:18443");
	ck_assert_str_eq(config->listen[2], "localhost:19443");
	ck_assert_int_eq(config->workers, 4);
	FMT(want, "%s/manufacturer-ca.pem", realdir);
	ck_assert_str_eq(config->tls.implicit_ca, want);
	ck_assert_int_eq(config->tls.min_version, TLS1_3_VERSION);
	ck_assert_int_eq(config->tls.request_client_cert, 0);
	ck_assert_str_eq(config->tls.ciphers, "ECDHE+AESGCM");
	ck_assert_str_eq(config->tls.ciphersuites, "TLS_AES_256_GCM_SHA384");
	ck_assert_uint_eq(config->tls.session_timeout, 600);
	ck_assert_uint_eq(config->limits.max_body, 1024);
	ck_assert_uint_eq(config->limits.max_headers, 1048576);
	ck_assert_uint_eq(config->limits.timeout, 3600);
	ck_assert_uint_eq(config->limits.handshake_timeout, 300);
	ck_assert_uint_eq(config->limits.request_timeout, 1);
	/* Given, even at the default value, it is kept or estrad refuses to
	 * start. */
	ck_assert_uint_eq(config->limits.max_conns_per_worker, 8192);
	ck_assert_int_eq(config->limits.per_worker_default, 0);
	FMT(want, "%s/logs/error.log", realdir);
	ck_assert_str_eq(config->logs.error, want);
	ck_assert_str_eq(config->logs.access, "-");
	FMT(want, "%s/logs/audit.log", realdir);
	ck_assert_str_eq(config->logs.audit, want);
	ck_assert_int_eq(config->logs.level, CORE_LOG_DEBUG);
	/* The log directory was created; the logs themselves were not. */
	FMT(want, "%s/logs", realdir);
	ck_assert_int_eq(stat(want, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	FMT(want, "%s/logs/error.log", realdir);
	ck_assert_int_ne(stat(want, &st), 0);
	FMT(want, "%s/users.htpasswd", realdir);
	ck_assert_str_eq(config->users, want);
	ck_assert_ptr_nonnull(config->users_table);
	ck_assert_uint_eq(ra_users_count(config->users_table), 1);

	ck_assert_uint_eq(config->nlabels, 3);
	def = ra_config_label(config, "default");
	phones = ra_config_label(config, "phones");
	other = ra_config_label(config, "v1.2_x-y");
	ck_assert_ptr_nonnull(def);
	ck_assert_ptr_nonnull(phones);
	ck_assert_ptr_nonnull(other);
	/* Labels keep the order of the file. */
	ck_assert_ptr_eq(config->labels[0], def);
	ck_assert_ptr_eq(config->labels[1], phones);
	ck_assert_ptr_eq(config->labels[2], other);
	ck_assert_ptr_eq(config->default_label, phones);
	ck_assert_uint_eq(def->auth, RA_AUTH_CERT | RA_AUTH_BASIC);
	ck_assert_int_eq(def->b64_wrap, 76);
	ck_assert_int_eq(def->accept_pem_armour, 0);
	ck_assert_int_eq(def->include_chain, 1);
	ck_assert_uint_eq(def->retry_after, 86400);
	ck_assert_uint_eq(def->ncsrattrs, 4);
	ck_assert_str_eq(def->csrattrs[0], "challengePassword");
	ck_assert_str_eq(def->csrattrs[1], "ecdsa-with-SHA256");
	ck_assert_str_eq(def->csrattrs[2], "id-ecPublicKey:secp384r1");
	ck_assert_str_eq(def->csrattrs[3], "2.5.4.5");
	ck_assert_uint_eq(phones->auth, RA_AUTH_NONE);
	ck_assert_int_eq(phones->b64_wrap, RA_WRAP_NONE);
	ck_assert_uint_eq(other->auth, RA_AUTH_BASIC);
	ck_assert_ptr_nonnull(other->ca);
	ra_config_free(config);
}
END_TEST

START_TEST(test_config_default_auth_with_users)
{
	struct ra_config *config;

	config = load_ok(config_with("  \"users\": \"users.htpasswd\",\n", ""));
	ck_assert_uint_eq(config->labels[0]->auth,
	                  RA_AUTH_CERT | RA_AUTH_BASIC);
	ra_config_free(config);
}
END_TEST

START_TEST(test_config_unknown_top_key)
{
	const char *text = config_with("  \"bogus\": 1,\n", "");

	ck_assert_ptr_nonnull(strstr(text, "\n  \"bogus\""));
	expect_error(text, ":3:3: unknown key \"bogus\"");
}
END_TEST

START_TEST(test_config_unknown_label_key)
{
	const char *text = config_with("", "\"b64wrap\": 64, ");

	/* Line 4 is `    "default": {"b64wrap": 64, ...`. */
	expect_error(text, ":4:17: labels.default: unknown key \"b64wrap\"");
}
END_TEST

START_TEST(test_config_unknown_nested_keys)
{
	static const char tls[] =
	    "{\n"
	    "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"server.key\",\n"
	    "          \"explicit_ca\": \"ca.pem\", \"min_verison\": "
	    "\"1.3\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";
	static const char logs[] =
	    "{\n"
	    "  \"tls\": " TLS_BLOCK ",\n"
	    "  \"logs\": {\n"
	    "\t\"levle\": \"debug\"\n"
	    "  },\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";

	expect_error(tls, ":3:36: tls: unknown key \"min_verison\"");
	/* A tab counts as one column. */
	expect_error(logs, ":4:2: logs: unknown key \"levle\"");
}
END_TEST

START_TEST(test_config_wrong_types)
{
	expect_error(config_with("  \"workers\": \"4\",\n", ""),
	             ":3:14: workers: must be an integer, got a string");
	expect_error(
	    config_with("  \"listen\": \"127.0.0.1:8443\",\n", ""),
	    ":3:13: listen: must be an array of \"HOST:PORT\" strings, got a "
	    "string");
	expect_error(
	    config_with("  \"listen\": [8443],\n", ""),
	    ":3:14: listen.0: must be a \"HOST:PORT\" string, got an integer");
	expect_error(config_with("  \"limits\": [],\n", ""),
	             ":3:13: limits: must be an object, got an array");
	expect_error(
	    config_with("", "\"include_chain\": 1, "),
	    ":4:34: labels.default.include_chain: must be true or false, got "
	    "an integer");
	expect_error(
	    config_with("", "\"retry_after\": 1.5, "),
	    ":4:32: labels.default.retry_after: must be an integer, got a "
	    "real number");
	expect_error(
	    config_with("", "\"csrattrs\": \"challengePassword\", "),
	    ":4:29: labels.default.csrattrs: must be an array of strings, got "
	    "a string");
	expect_error(config_with("  \"users\": null,\n", ""),
	             ":3:12: users: must be a string, got null");
	expect_error(config_with("", "\"x\": 1, "),
	             ":4:17: labels.default: unknown key \"x\"");
}
END_TEST

START_TEST(test_config_ranges)
{
	expect_error(config_with("  \"workers\": 65,\n", ""),
	             ":3:14: workers: must be an integer from 0 to 64, got 65");
	expect_error(config_with("  \"workers\": -1,\n", ""),
	             ":3:14: workers: must be an integer from 0 to 64, got -1");
	expect_error(config_with("  \"limits\": {\"max_body\": 1023},\n", ""),
	             ":3:26: limits.max_body: must be an integer from 1024 to "
	             "16777216, got 1023");
	expect_error(
	    config_with("  \"limits\": {\"timeout\": 0},\n", ""),
	    ":3:25: limits.timeout: must be an integer from 1 to 3600, got 0");
	expect_error(
	    config_with("", "\"retry_after\": 0, "),
	    ":4:32: labels.default.retry_after: must be an integer from 1 to "
	    "86400, got 0");
	expect_error(
	    config_with("  \"logs\": {\"level\": \"verbose\"},\n", ""),
	    ":3:21: logs.level: must be one of emerg, alert, crit, error, "
	    "warn, notice, info, debug, got \"verbose\"");
}
END_TEST

/* The phase deadlines: positive, bounded, integers, and a configuration
 * without them (as before they existed) keeps limits.timeout alone. */
START_TEST(test_config_limits_deadlines)
{
	struct ra_config *config;

	expect_error(
	    config_with("  \"limits\": {\"handshake_timeout\": 0},\n", ""),
	    ":3:35: limits.handshake_timeout: must be an integer from 1 to "
	    "300, got 0");
	expect_error(
	    config_with("  \"limits\": {\"handshake_timeout\": 301},\n", ""),
	    ":3:35: limits.handshake_timeout: must be an integer from 1 to "
	    "300, got 301");
	expect_error(
	    config_with("  \"limits\": {\"request_timeout\": -5},\n", ""),
	    ":3:33: limits.request_timeout: must be an integer from 1 to "
	    "3600, got -5");
	expect_error(
	    config_with("  \"limits\": {\"request_timeout\": 3601},\n", ""),
	    ":3:33: limits.request_timeout: must be an integer from 1 to "
	    "3600, got 3601");
	expect_error(
	    config_with("  \"limits\": {\"request_timeout\": \"30\"},\n", ""),
	    ":3:33: limits.request_timeout: must be an integer, got a string");
	expect_error(
	    config_with("  \"limits\": {\"handshake_timeout\": 2.5},\n", ""),
	    ":3:35: limits.handshake_timeout: must be an integer, got a real "
	    "number");
	expect_error(
	    config_with("  \"limits\": {\"header_timeout\": 10},\n", ""),
	    ":3:14: limits: unknown key \"header_timeout\"");

	/* An existing configuration with limits.timeout only. */
	config = load_ok(config_with("  \"limits\": {\"timeout\": 5},\n", ""));
	ck_assert_uint_eq(config->limits.timeout, 5);
	ck_assert_uint_eq(config->limits.handshake_timeout, 10);
	ck_assert_uint_eq(config->limits.request_timeout, 30);
	ra_config_free(config);

	config = load_ok(config_with("  \"limits\": {\"handshake_timeout\": 2, "
	                             "\"request_timeout\": 3},\n",
	                             ""));
	ck_assert_uint_eq(config->limits.timeout, 30);
	ck_assert_uint_eq(config->limits.handshake_timeout, 2);
	ck_assert_uint_eq(config->limits.request_timeout, 3);
	ra_config_free(config);
}
END_TEST

START_TEST(test_config_min_version_refused)
{
	static const char text[] =
	    "{\n"
	    "  \"tls\": {\n"
	    "    \"cert\": \"server.pem\", \"key\": \"server.key\",\n"
	    "    \"explicit_ca\": \"ca.pem\",\n"
	    "    \"min_version\": \"1.1\"\n"
	    "  },\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";
	int line, col;

	position_of(text, "\"1.1\"", &line, &col);
	ck_assert_int_eq(line, 5);
	ck_assert_int_eq(col, 20);
	expect_error(text,
	             ":5:20: tls.min_version: must be \"1.2\" or \"1.3\", "
	             "got \"1.1\"");
}
END_TEST

/* A configuration whose tls object has the given members after the
 * required ones, all on line 2. */
static const char *
config_tls_with(const char *members)
{
	static char text[4096];

	FMT(text,
	    "{\n"
	    "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"server.key\", "
	    "\"explicit_ca\": \"ca.pem\", %s},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n",
	    members);
	return text;
}

/* The bounds on a client's certificate list: defaults that fit real
 * device chains, the values given, and strict ranges and types. */
START_TEST(test_config_tls_peer_limits)
{
	struct ra_config *config;

	config = load_ok(config_with("", ""));
	ck_assert_uint_eq(config->tls.verify_depth, 4);
	ck_assert_uint_eq(config->tls.max_cert_list, 16384);
	ck_assert_uint_eq(config->tls.max_key_bits, 8192);
	ra_config_free(config);

	config = load_ok(config_tls_with("\"verify_depth\": 0, "
	                                 "\"max_cert_list\": 4096, "
	                                 "\"max_key_bits\": 16384"));
	ck_assert_uint_eq(config->tls.verify_depth, 0);
	ck_assert_uint_eq(config->tls.max_cert_list, 4096);
	ck_assert_uint_eq(config->tls.max_key_bits, 16384);
	ra_config_free(config);

	expect_error_has(config_tls_with("\"verify_depth\": 33"), ":2:",
	                 "tls.verify_depth: must be an integer from 0 to 32, "
	                 "got 33");
	expect_error_has(config_tls_with("\"verify_depth\": -1"), ":2:",
	                 "tls.verify_depth: must be an integer from 0 to 32, "
	                 "got -1");
	expect_error_has(config_tls_with("\"max_cert_list\": 4095"), ":2:",
	                 "tls.max_cert_list: must be an integer from 4096 to "
	                 "1048576, got 4095");
	expect_error_has(config_tls_with("\"max_cert_list\": 1048577"), ":2:",
	                 "tls.max_cert_list: must be an integer from 4096 to "
	                 "1048576, got 1048577");
	expect_error_has(config_tls_with("\"max_key_bits\": 2047"), ":2:",
	                 "tls.max_key_bits: must be an integer from 2048 to "
	                 "16384, got 2047");
	expect_error_has(config_tls_with("\"max_key_bits\": 16385"), ":2:",
	                 "tls.max_key_bits: must be an integer from 2048 to "
	                 "16384, got 16385");
	expect_error_has(config_tls_with("\"verify_depth\": \"4\""), ":2:",
	                 "tls.verify_depth: must be an integer, got a string");
	expect_error_has(config_tls_with("\"max_cert_list\": 32768.0"), ":2:",
	                 "tls.max_cert_list: must be an integer, got a real "
	                 "number");
	expect_error_has(config_tls_with("\"max_key_size\": 8192"),
	                 ":2:", "tls: unknown key \"max_key_size\"");
}
END_TEST

START_TEST(test_config_label_names)
{
	static const char *const bad[] = {
	    "a b",
	    "x/y",
	    "",
	    "12345678901234567890123456789012345678901234567890123456789012345",
	};
	char text[1024];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FMT(text,
		    "{\n"
		    "  \"tls\": " TLS_BLOCK ",\n"
		    "  \"labels\": {\n"
		    "    \"%s\": {\"ca\": " CA_BLOCK "}\n"
		    "  }\n"
		    "}\n",
		    bad[i]);
		/* The key itself is named, on line 4, column 5. */
		expect_error_has(
		    text, ":4:5: labels: invalid label name \"",
		    "use 1 to 64 letters, digits, '.', '_' or '-'");
	}
	/* A name jansson unescapes cannot be found in the text as written:
	 * the message falls back to the labels object. */
	FMT(text, "{\n"
	          "  \"tls\": " TLS_BLOCK ",\n"
	          "  \"labels\": {\"caf\\u00e9\": {\"ca\": " CA_BLOCK "}}\n"
	          "}\n");
	expect_error(text,
	             ":3:13: labels: invalid label name \"caf\\xc3\\xa9\": "
	             "use 1 to 64 letters, digits, '.', '_' or '-'");
	/* 64 characters is the most. */
	FMT(text,
	    "{\n"
	    "  \"tls\": " TLS_BLOCK ",\n"
	    "  \"labels\": {\"%s\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n",
	    "1234567890123456789012345678901234567890123456789012345678901234");
	ra_config_free(load_ok(text));
}
END_TEST

START_TEST(test_config_label_operation_name_refused)
{
	static const char *const ops[] = {
	    "cacerts",  "simpleenroll", "simplereenroll",
	    "csrattrs", "fullcmc",      "serverkeygen",
	};
	char text[1024];
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		FMT(text,
		    "{\n"
		    "  \"tls\": " TLS_BLOCK ",\n"
		    "  \"labels\": {\n"
		    "    \"default\": {\"ca\": " CA_BLOCK "},\n"
		    "    \"%s\": {\"ca\": " CA_BLOCK "}\n"
		    "  }\n"
		    "}\n",
		    ops[i]);
		expect_error(text,
		             ":5:5: labels: label \"%s\" is an EST "
		             "operation name",
		             ops[i]);
	}
}
END_TEST

START_TEST(test_config_missing_files)
{
	static const char cert[] =
	    "{\n"
	    "  \"tls\": {\"cert\": \"nope.pem\", \"key\": \"server.key\", "
	    "\"explicit_ca\": \"ca.pem\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";
	static const char ca[] =
	    "{\n"
	    "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"server.key\", "
	    "\"explicit_ca\": \"/nonexistent/ca.pem\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";
	static const char dir[] =
	    "{\n"
	    "  \"tls\": {\"cert\": \".\", \"key\": \"server.key\", "
	    "\"explicit_ca\": \"ca.pem\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";
	static const char users[] =
	    "{\n"
	    "  \"tls\": " TLS_BLOCK ",\n"
	    "  \"users\": \"missing.htpasswd\",\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";

	expect_error(cert,
	             ":2:19: tls.cert: %s/nope.pem: No such file or "
	             "directory",
	             realdir);
	expect_error(ca, ":2:69: tls.explicit_ca: /nonexistent/ca.pem: No such "
	                 "file or directory");
	expect_error(dir, ":2:19: tls.cert: %s/.: not a regular file", realdir);
	expect_error(users,
	             ":3:12: users: %s/missing.htpasswd: No such file "
	             "or directory",
	             realdir);
}
END_TEST

START_TEST(test_config_required_keys)
{
	static const char no_tls[] =
	    "{\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";
	static const char no_key[] =
	    "{\n"
	    "  \"tls\": {\"cert\": \"server.pem\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";
	static const char no_explicit[] =
	    "{\n"
	    "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"server.key\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";
	static const char no_labels[] = "{\n"
	                                "  \"tls\": " TLS_BLOCK "\n"
	                                "}\n";
	static const char empty_labels[] = "{\n"
	                                   "  \"tls\": " TLS_BLOCK ",\n"
	                                   "  \"labels\": {}\n"
	                                   "}\n";
	static const char no_ca[] =
	    "{\n"
	    "  \"tls\": " TLS_BLOCK ",\n"
	    "  \"labels\": {\"default\": {\"retry_after\": 5}}\n"
	    "}\n";

	/* A missing key is placed at the object that lacks it. */
	expect_error(no_tls, ":1:1: tls: required");
	expect_error(no_key, ":2:10: tls.key: required");
	expect_error(no_explicit, ":2:10: tls.explicit_ca: required");
	expect_error(no_labels, ":1:1: labels: required");
	expect_error(empty_labels, ":3:13: labels: must define at least one "
	                           "label");
	expect_error(no_ca, ":3:25: labels.default.ca: required");
}
END_TEST

START_TEST(test_config_bad_pem)
{
	char text[1024];

	FMT(text,
	    "{\n"
	    "  \"tls\": {\"cert\": \"empty.pem\", \"key\": \"server.key\", "
	    "\"explicit_ca\": \"ca.pem\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n");
	expect_error(text,
	             ":2:19: tls.cert: %s/empty.pem: no PEM certificate "
	             "in file",
	             realdir);

	FMT(text,
	    "{\n"
	    "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"server.key\", "
	    "\"explicit_ca\": \"damaged.pem\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n");
	expect_error_has(text, ":2:69: tls.explicit_ca: ",
	                 "damaged.pem: "
	                 "cannot read certificate 1 (SSL: ");

	FMT(text,
	    "{\n"
	    "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"server.key\", "
	    "\"explicit_ca\": \"ca.pem\", \"implicit_ca\": \"server.key\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n");
	expect_error(text,
	             ":2:94: tls.implicit_ca: %s/server.key: no PEM "
	             "certificate in file",
	             realdir);

	FMT(text, "{\n"
	          "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"ca.pem\", "
	          "\"explicit_ca\": \"ca.pem\"},\n"
	          "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	          "}\n");
	expect_error_has(text, ":2:40: tls.key: ",
	                 "ca.pem: cannot read a PEM "
	                 "private key (SSL: ");
}
END_TEST

START_TEST(test_config_key_mismatch)
{
	static const char text[] =
	    "{\n"
	    "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"other.key\", "
	    "\"explicit_ca\": \"ca.pem\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";
	char want[PATH_MAX * 2 + 64];

	FMT(want,
	    "other.key does not match the certificate of tls.cert "
	    "(%s/server.pem)",
	    realdir);
	expect_error_has(text, ":2:40: tls.key: ", want);
}
END_TEST

START_TEST(test_config_encrypted_key)
{
	static const char text[] =
	    "{\n"
	    "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"encrypted.key\", "
	    "\"explicit_ca\": \"ca.pem\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";

	expect_error(
	    text,
	    ":2:40: tls.key: %s/encrypted.key: the key is "
	    "encrypted; estrad reads unencrypted keys only (protect the file "
	    "instead)",
	    realdir);
}
END_TEST

START_TEST(test_config_ciphers)
{
	static const char text[] =
	    "{\n"
	    "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"server.key\",\n"
	    "    \"explicit_ca\": \"ca.pem\", \"ciphers\": \"NOPE\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";
	static const char suites[] =
	    "{\n"
	    "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"server.key\",\n"
	    "    \"explicit_ca\": \"ca.pem\", \"ciphersuites\": "
	    "\"TLS_NOPE\"},\n"
	    "  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";

	expect_error_has(text,
	                 ":3:41: tls.ciphers: OpenSSL selects no cipher "
	                 "from \"NOPE\" (SSL: ",
	                 NULL);
	expect_error_has(suites,
	                 ":3:46: tls.ciphersuites: OpenSSL knows no "
	                 "TLS 1.3 suite in \"TLS_NOPE\" (SSL: ",
	                 NULL);
}
END_TEST

START_TEST(test_config_listen)
{
	static const char *const good[] = {
	    "0.0.0.0:1",
	    "[::]:65535",
	    "localhost:8443",
	    "[::1]:8443",
	};
	static const struct {
		const char *entry;
		const char *reason;
	} bad[] = {
	    {"127.0.0.1", "\"127.0.0.1\" is not \"HOST:PORT\" or "
	                  "\"[ADDRESS]:PORT\""},
	    {"127.0.0.1:0", "\"127.0.0.1:0\": port must be from 1 to 65535"},
	    {"127.0.0.1:65536", "\"127.0.0.1:65536\": port must be from 1 "
	                        "to 65535"},
	    {"127.0.0.1:+80", "\"127.0.0.1:+80\": port must be from 1 to "
	                      "65535"},
	    {"127.0.0.1:", "\"127.0.0.1:\": port must be from 1 to 65535"},
	    {"::1:8443", "\"::1:8443\": an IPv6 address needs brackets, as "
	                 "in \"[::1]:8443\""},
	    {"[::1]8443", "\"[::1]8443\" is not \"[ADDRESS]:PORT\""},
	    {":8443", "\":8443\" has no host (use 0.0.0.0 or [::] for "
	              "every address)"},
	    {"[localhost]:8443", "cannot resolve \"[localhost]:8443\": "},
	};
	char top[256];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		FMT(top, "  \"listen\": [\"%s\"],\n", good[i]);
		ra_config_free(load_ok(config_with(top, "")));
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[256];

		FMT(top, "  \"listen\": [\"127.0.0.1:8443\", \"%s\"],\n",
		    bad[i].entry);
		FMT(want, ":3:32: listen.1: %s", bad[i].reason);
		expect_error_has(config_with(top, ""), want, NULL);
	}
	expect_error(config_with("  \"listen\": [],\n", ""),
	             ":3:13: listen: must list at least one \"HOST:PORT\"");
	expect_error(config_with("  \"listen\": [\"127.0.0.1:1\", "
	                         "\"127.0.0.1:1\"],\n",
	                         ""),
	             ":3:29: listen.1: duplicate of listen.0");
}
END_TEST

START_TEST(test_config_unknown_backend)
{
	static const char text[] = "{\n"
	                           "  \"tls\": " TLS_BLOCK ",\n"
	                           "  \"labels\": {\n"
	                           "    \"default\": {\n"
	                           "      \"ca\": {\"backend\": \"nosuch\"}\n"
	                           "    }\n"
	                           "  }\n"
	                           "}\n";
	static const char missing[] = "{\n"
	                              "  \"tls\": " TLS_BLOCK ",\n"
	                              "  \"labels\": {\n"
	                              "    \"default\": {\n"
	                              "      \"ca\": {}\n"
	                              "    }\n"
	                              "  }\n"
	                              "}\n";

	expect_error_has(text,
	                 ":5:25: labels.default.ca.backend: unknown "
	                 "backend \"nosuch\" (one of: ",
	                 "local");
	/* A missing backend is placed at the ca object. */
	expect_error_has(missing,
	                 ":5:13: labels.default.ca.backend: missing "
	                 "string \"backend\"",
	                 NULL);
}
END_TEST

START_TEST(test_config_backend_error_located)
{
	static const char text[] = "{\n"
	                           "  \"tls\": " TLS_BLOCK ",\n"
	                           "  \"labels\": {\n"
	                           "    \"default\": {\n"
	                           "      \"ca\": {\n"
	                           "        \"backend\": \"local\",\n"
	                           "        \"cert\": \"ca.pem\",\n"
	                           "        \"key\": \"ca.key\",\n"
	                           "        \"bogus\": 1\n"
	                           "      }\n"
	                           "    }\n"
	                           "  }\n"
	                           "}\n";

	expect_error_has(
	    text, ":9:18: labels.default.ca.bogus: ", "unknown key \"bogus\"");
}
END_TEST

START_TEST(test_config_default_label)
{
	static const char two[] = "{\n"
	                          "  \"tls\": " TLS_BLOCK ",\n"
	                          "  \"labels\": {\n"
	                          "    \"a\": {\"ca\": " CA_BLOCK "},\n"
	                          "    \"b\": {\"ca\": " CA_BLOCK "}\n"
	                          "  }\n"
	                          "}\n";
	static const char with_default[] =
	    "{\n"
	    "  \"tls\": " TLS_BLOCK ",\n"
	    "  \"labels\": {\n"
	    "    \"a\": {\"ca\": " CA_BLOCK "},\n"
	    "    \"default\": {\"ca\": " CA_BLOCK "}\n"
	    "  }\n"
	    "}\n";
	static const char named[] = "{\n"
	                            "  \"tls\": " TLS_BLOCK ",\n"
	                            "  \"default_label\": \"b\",\n"
	                            "  \"labels\": {\n"
	                            "    \"default\": {\"ca\": " CA_BLOCK "},\n"
	                            "    \"b\": {\"ca\": " CA_BLOCK "}\n"
	                            "  }\n"
	                            "}\n";
	static const char wrong[] = "{\n"
	                            "  \"tls\": " TLS_BLOCK ",\n"
	                            "  \"default_label\": \"zzz\",\n"
	                            "  \"labels\": {\n"
	                            "    \"default\": {\"ca\": " CA_BLOCK "}\n"
	                            "  }\n"
	                            "}\n";
	static const char only[] =
	    "{\n"
	    "  \"tls\": " TLS_BLOCK ",\n"
	    "  \"labels\": {\"phones\": {\"ca\": " CA_BLOCK "}}\n"
	    "}\n";
	struct ra_config *config;

	expect_error(two, ":1:1: default_label: required when there are "
	                  "several labels and none is called \"default\"");
	config = load_ok(with_default);
	ck_assert_str_eq(config->default_label->name, "default");
	ra_config_free(config);
	config = load_ok(named);
	ck_assert_str_eq(config->default_label->name, "b");
	ra_config_free(config);
	expect_error(wrong, ":3:20: default_label: no label \"zzz\" in labels");
	config = load_ok(only);
	ck_assert_str_eq(config->default_label->name, "phones");
	ra_config_free(config);
}
END_TEST

START_TEST(test_config_b64_wrap)
{
	static const struct {
		const char *json;
		int want;
	} good[] = {
	    {"\"auto\"", RA_WRAP_AUTO},
	    {"\"none\"", RA_WRAP_NONE},
	    {"0", RA_WRAP_NONE},
	    {"64", 64},
	    {"76", 76},
	};
	static const struct {
		const char *json;
		const char *got;
	} bad[] = {
	    {"80", "80"}, {"\"64\"", "\"64\""}, {"\"wide\"", "\"wide\""},
	    {"-1", "-1"}, {"true", "true"},     {"64.0", "64"},
	};
	struct ra_config *config;
	char label[128];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		FMT(label, "\"b64_wrap\": %s, ", good[i].json);
		config = load_ok(config_with("", label));
		ck_assert_int_eq(config->labels[0]->b64_wrap, good[i].want);
		ra_config_free(config);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FMT(label, "\"b64_wrap\": %s, ", bad[i].json);
		expect_error(config_with("", label),
		             ":4:29: "
		             "labels.default.b64_wrap: must be \"auto\", "
		             "\"none\", 0, 64 "
		             "or 76, got %s",
		             bad[i].got);
	}
}
END_TEST

START_TEST(test_config_auth)
{
	struct ra_config *config;

	config = load_ok(config_with("", "\"auth\": \"none\", "));
	ck_assert_uint_eq(config->labels[0]->auth, RA_AUTH_NONE);
	ra_config_free(config);
	config = load_ok(config_with("", "\"auth\": [\"cert\"], "));
	ck_assert_uint_eq(config->labels[0]->auth, RA_AUTH_CERT);
	ra_config_free(config);

	/* Line 4 is `    "default": {"auth": ["cert", "basic"], ...`. */
	expect_error(
	    config_with("", "\"auth\": [\"cert\", \"basic\"], "),
	    ":4:34: labels.default.auth.1: \"basic\" needs the top-level "
	    "\"users\" file");
	expect_error(
	    config_with("", "\"auth\": [], "),
	    ":4:25: labels.default.auth: must list \"cert\" and/or \"basic\" "
	    "(use \"none\" for anonymous enrollment)");
	expect_error(
	    config_with("", "\"auth\": \"cert\", "),
	    ":4:25: labels.default.auth: must be \"none\" or an array of "
	    "\"cert\" and \"basic\", got \"cert\"");
	expect_error(
	    config_with("", "\"auth\": [\"cert\", \"none\"], "),
	    ":4:34: labels.default.auth.1: must be \"cert\", \"basic\" or "
	    "\"cert+basic\", got \"none\"");
	expect_error(
	    config_with("", "\"auth\": 1, "),
	    ":4:25: labels.default.auth: must be \"none\" or an array of "
	    "\"cert\" and \"basic\", got an integer");
}
END_TEST

/*
 * A label that names a store of its own leaves tls.*'s out unless it sets
 * trust.inherit; require_client_auth_eku is on unless turned off.
 */
START_TEST(test_config_trust_stores)
{
	static const char top[] =
	    "  \"tls\": {\"cert\": \"server.pem\", \"key\": \"server.key\", "
	    "\"explicit_ca\": \"ca.pem\", \"implicit_ca\": "
	    "\"manufacturer-ca.pem\"},\n";
	struct ra_config *config;
	struct ra_label *label;
	char text[8192], want[PATH_MAX + 64];

	/* No stores of its own: tls.*, both for enroll, explicit to renew. */
	FMT(text,
	    "{\n%s  \"labels\": {\"default\": {\"ca\": " CA_BLOCK "}}\n}\n",
	    top);
	config = load_ok(text);
	label = config->labels[0];
	ck_assert_int_eq(label->own_stores, 0);
	ck_assert_ptr_null(label->trust);
	ck_assert_str_eq(label->explicit_path, config->tls.explicit_ca);
	ck_assert_str_eq(label->implicit_path, config->tls.implicit_ca);
	ck_assert_uint_eq(label->trust_enroll,
	                  RA_TRUST_BIT_EXPLICIT | RA_TRUST_BIT_IMPLICIT);
	ck_assert_uint_eq(label->trust_reenroll, RA_TRUST_BIT_EXPLICIT);
	ck_assert_int_eq(label->require_client_auth_eku, 1);
	ra_config_free(config);

	/* An explicit store of its own: no implicit one at all. */
	FMT(text,
	    "{\n%s  \"labels\": {\"default\": {\"trust\": {\"explicit_ca\": "
	    "\"ca.pem\"}, \"require_client_auth_eku\": false, \"ca\": " CA_BLOCK
	    "}}\n}\n",
	    top);
	config = load_ok(text);
	label = config->labels[0];
	FMT(want, "%s/ca.pem", realdir);
	ck_assert_int_eq(label->own_stores, 1);
	ck_assert_ptr_nonnull(label->trust);
	ck_assert_str_eq(label->explicit_path, want);
	ck_assert_ptr_null(label->implicit_path);
	ck_assert_uint_eq(label->trust_enroll, RA_TRUST_BIT_EXPLICIT);
	ck_assert_int_eq(label->require_client_auth_eku, 0);
	ra_config_free(config);

	/* Asked for: tls.implicit_ca fills the store it left out. */
	FMT(text,
	    "{\n%s  \"labels\": {\"default\": {\"trust\": {\"explicit_ca\": "
	    "\"ca.pem\", \"inherit\": true}, \"ca\": " CA_BLOCK "}}\n}\n",
	    top);
	config = load_ok(text);
	label = config->labels[0];
	ck_assert_str_eq(label->implicit_path, config->tls.implicit_ca);
	ck_assert_uint_eq(label->trust_enroll,
	                  RA_TRUST_BIT_EXPLICIT | RA_TRUST_BIT_IMPLICIT);
	ra_config_free(config);

	/* An implicit store of its own: nothing to renew with, and asking
	 * for the explicit store it does not have is an error. */
	FMT(text,
	    "{\n%s  \"labels\": {\"default\": {\"trust\": {\"implicit_ca\": "
	    "\"manufacturer-ca.pem\"}, \"ca\": " CA_BLOCK "}}\n}\n",
	    top);
	config = load_ok(text);
	label = config->labels[0];
	ck_assert_ptr_null(label->explicit_path);
	ck_assert_uint_eq(label->trust_enroll, RA_TRUST_BIT_IMPLICIT);
	ck_assert_uint_eq(label->trust_reenroll, 0);
	ra_config_free(config);
	expect_error_has(config_with("",
	                             "\"trust\": {\"implicit_ca\": "
	                             "\"manufacturer-ca.pem\", \"reenroll\": "
	                             "[\"explicit\"]}, "),
	                 ":4:",
	                 "labels.default.trust.reenroll: \"explicit\" needs "
	                 "trust.explicit_ca");
	expect_error_has(config_with("",
	                             "\"trust\": {\"explicit_ca\": \"ca.pem\", "
	                             "\"enroll\": [\"implicit\"]}, "),
	                 ":4:",
	                 "labels.default.trust.enroll: \"implicit\" needs "
	                 "trust.implicit_ca");
	expect_error_has(config_with("", "\"trust\": {\"inherit\": true}, "),
	                 ":4:",
	                 "labels.default.trust.inherit: needs "
	                 "trust.explicit_ca or trust.implicit_ca");
	expect_error_has(
	    config_with("", "\"trust\": {\"explicit_ca\": \"ca.pem\", "
	                    "\"inherit\": 1}, "),
	    ":4:", "labels.default.trust.inherit: must be true or false");
}
END_TEST

START_TEST(test_config_csrattrs)
{
	struct ra_config *config;

	config = load_ok(config_with("", "\"csrattrs\": [], "));
	ck_assert_uint_eq(config->labels[0]->ncsrattrs, 0);
	ra_config_free(config);

	expect_error(
	    config_with("", "\"csrattrs\": [\"challengePassword\", "
	                    "\"notAnOid\"], "),
	    ":4:51: labels.default.csrattrs.1: \"notAnOid\" is not an OID or "
	    "OpenSSL object name");
	expect_error(
	    config_with("", "\"csrattrs\": [\"id-ecPublicKey:nope\"], "),
	    ":4:30: labels.default.csrattrs.0: \"id-ecPublicKey:nope\" is not "
	    "\"KEYTYPE:PARAM\" with both parts OIDs or OpenSSL object names");
	expect_error(
	    config_with("", "\"csrattrs\": [\":secp384r1\"], "),
	    ":4:30: labels.default.csrattrs.0: \":secp384r1\" is not "
	    "\"KEYTYPE:PARAM\" with both parts OIDs or OpenSSL object names");
	expect_error(
	    config_with("", "\"csrattrs\": [\"\"], "),
	    ":4:30: labels.default.csrattrs.0: \"\" is not an OID or OpenSSL "
	    "object name");
	expect_error(
	    config_with("", "\"csrattrs\": [7], "),
	    ":4:30: labels.default.csrattrs.0: must be a string, got an "
	    "integer");
}
END_TEST

START_TEST(test_config_users_file_errors)
{
	char want[PATH_MAX + 128];

	FMT(want,
	    ":3:12: users: %s/plain.htpasswd:2: user estuser: password "
	    "is not a crypt(3) hash (plain text is refused)",
	    realdir);
	expect_error(config_with("  \"users\": \"plain.htpasswd\",\n", ""),
	             "%s", want);
}
END_TEST

START_TEST(test_config_logs)
{
	char top[512];

	expect_error(
	    config_with("  \"logs\": {\"audit\": \"-\"},\n", ""),
	    ":3:21: logs.audit: must be a file path (\"-\" is not allowed "
	    "here)");
	expect_error(config_with("  \"logs\": {\"error\": \"\"},\n", ""),
	             ":3:21: logs.error: must not be empty");
	expect_error(
	    config_with("  \"logs\": {\"access\": \"a/b/c.log\"},\n", ""),
	    ":3:22: logs.access: cannot create directory %s/a/b: No such "
	    "file or directory",
	    realdir);
	expect_error(
	    config_with("  \"logs\": {\"access\": \"ca.pem/x.log\"},\n", ""),
	    ":3:22: logs.access: %s/ca.pem: not a directory", realdir);
	expect_error(config_with("  \"logs\": {\"error\": \".\"},\n", ""),
	             ":3:21: logs.error: %s/.: is a directory", realdir);
	/* An absolute path is taken as it is. */
	FMT(top, "  \"logs\": {\"error\": \"%s/abs/e.log\"},\n", realdir);
	{
		struct ra_config *config = load_ok(config_with(top, ""));
		char want[PATH_MAX + 32];

		FMT(want, "%s/abs/e.log", realdir);
		ck_assert_str_eq(config->logs.error, want);
		ra_config_free(config);
	}
}
END_TEST

/* The pending store's bounds: defaults, ranges, and one within the other;
 * its directory is refused when others may write into it. */
START_TEST(test_config_pending_bounds)
{
	struct ra_config *config;
	char path[PATH_MAX + 16];

	config = load_ok(config_with("  \"pending\": {\"dir\": \"p\"},\n", ""));
	ck_assert_ptr_nonnull(config->pending);
	ra_config_free(config);
	config = load_ok(config_with("  \"pending\": {\"dir\": \"p\", "
	                             "\"max_records\": 5, "
	                             "\"max_per_identity\": 5},\n",
	                             ""));
	ra_config_free(config);
	expect_error_has(
	    config_with(
	        "  \"pending\": {\"dir\": \"p\", \"max_records\": 0},\n", ""),
	    ":3:", "pending.max_records: must be an integer from 1 to 1000000");
	expect_error_has(config_with("  \"pending\": {\"dir\": \"p\", "
	                             "\"max_records\": 5, "
	                             "\"max_per_identity\": 6},\n",
	                             ""),
	                 ":3:",
	                 "pending.max_per_identity: 6 is more than "
	                 "pending.max_records (5)");
	FMT(path, "%s/p", realdir);
	ck_assert_int_eq(chmod(path, 0777), 0);
	expect_error_has(config_with("  \"pending\": {\"dir\": \"p\"},\n", ""),
	                 ":3:", "is group- or world-writable (mode 0777)");
	ck_assert_int_eq(chmod(path, 0700), 0);
}
END_TEST

START_TEST(test_config_json_syntax_error)
{
	static const char text[] = "{\n"
	                           "  \"listen\": [\"127.0.0.1:8443\",\n"
	                           "  }\n";
	static const char dup[] = "{\n"
	                          "  \"workers\": 1,\n"
	                          "  \"workers\": 2\n"
	                          "}\n";

	expect_error_has(text, ":3:3: ", NULL);
	expect_error_has(dup, ":3:", "duplicate object key");
	expect_error_has("", ":1:0: ", NULL);
	expect_error(" [1, 2]\n", ":1:2: the configuration must be a JSON "
	                          "object, got an array");
}
END_TEST

START_TEST(test_config_missing_file)
{
	char err[512], want[PATH_MAX + 64], path[PATH_MAX];

	FMT(path, "%s/none.json", tmpdir);
	ck_assert_ptr_null(ra_config_load(path, err, sizeof(err)));
	FMT(want, "%s: No such file or directory", path);
	ck_assert_str_eq(err, want);
	/* No message buffer at all is tolerated. */
	ck_assert_ptr_null(ra_config_load(path, NULL, 0));
}
END_TEST

START_TEST(test_config_relative_config_path)
{
	struct ra_config *config;
	char cwd[PATH_MAX], err[1024], want[PATH_MAX + 32];

	write_text("estrad.json", config_with("", ""));
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(tmpdir), 0);
	config = ra_config_load("estrad.json", err, sizeof(err));
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_msg(config != NULL, "%s", err);
	ck_assert_str_eq(config->dir, realdir);
	FMT(want, "%s/server.pem", realdir);
	ck_assert_str_eq(config->tls.cert, want);
	ra_config_free(config);
}
END_TEST

/* ra_config_locate on text of exactly len bytes in its own allocation, so
 * that AddressSanitizer sees any read past the end. */
static int
locate(const char *text, size_t len, const char *path, int last_is_key,
       int *line, int *col)
{
	char *copy = malloc(len > 0 ? len : 1);
	int rc;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, text, len);
	*line = *col = -7;
	rc = ra_config_locate(copy, len, path, last_is_key, line, col);
	free(copy);
	return rc;
}

static void
expect_at(const char *text, const char *path, int last_is_key, int line,
          int col)
{
	int l, c;

	ck_assert_msg(locate(text, strlen(text), path, last_is_key, &l, &c) ==
	                  0,
	              "\"%s\" not found", path);
	ck_assert_msg(l == line && c == col, "\"%s\" at %d:%d, want %d:%d",
	              path, l, c, line, col);
}

static void
expect_absent(const char *text, const char *path, int last_is_key)
{
	int l, c;

	ck_assert_msg(locate(text, strlen(text), path, last_is_key, &l, &c) ==
	                  -1,
	              "\"%s\" found at %d:%d", path, l, c);
	ck_assert_int_eq(l, -7);
}

START_TEST(test_locate_nested)
{
	static const char text[] =
	    "{\n"
	    "  \"a\": {\n"
	    "    \"b\": [10, {\"c\": \"x\"}, [true, null]],\n"
	    "    \"d\": -1.5e3\n"
	    "  },\n"
	    "  \"e\": {}\n"
	    "}";

	expect_at(text, "", 0, 1, 1);
	expect_at(text, "a", 0, 2, 8);
	expect_at(text, "a", 1, 2, 3);
	expect_at(text, "a.b", 0, 3, 10);
	expect_at(text, "a.b", 1, 3, 5);
	expect_at(text, "a.b.0", 0, 3, 11);
	expect_at(text, "a.b.1", 0, 3, 15);
	expect_at(text, "a.b.1.c", 0, 3, 21);
	expect_at(text, "a.b.1.c", 1, 3, 16);
	expect_at(text, "a.b.2.1", 0, 3, 34);
	expect_at(text, "a.d", 0, 4, 10);
	expect_at(text, "e", 0, 6, 8);
	expect_absent(text, "x", 0);
	expect_absent(text, "a.x", 0);
	expect_absent(text, "a.b.3", 0);
	expect_absent(text, "a.b.01", 0);
	expect_absent(text, "a.b.0.c", 0);
	expect_absent(text, "a.d.x", 0);
	expect_absent(text, "e.x", 0);
	expect_absent(text, "a.", 0);
	expect_absent(text, "", 1);
}
END_TEST

START_TEST(test_locate_strings)
{
	/* Braces, brackets, quotes, escaped quotes, a backslash before a
	 * closing quote, colons and commas inside strings, a raw newline
	 * inside a string (invalid JSON, counted anyway) and an escaped
	 * one (not a line break). */
	static const char text[] =
	    "{\"s\": \"}{][\\\"\\\\\", \"t\": \"a\\\\\",\n"
	    "\"k\\\"ey\": \"x:y,z\", \"u\": \"line\n"
	    "two\", \"v\": \"one\\ntwo\", \"w\": 1}";

	expect_at(text, "s", 0, 1, 7);
	expect_at(text, "t", 0, 1, 24);
	expect_at(text, "u", 0, 2, 24);
	expect_at(text, "v", 0, 3, 12);
	expect_at(text, "w", 0, 3, 29);
	expect_at(text, "w", 1, 3, 24);
	/* Keys are compared as written, escapes and all. */
	expect_at(text, "k\\\"ey", 1, 2, 1);
	expect_absent(text, "k\"ey", 1);
}
END_TEST

START_TEST(test_locate_dotted_keys_and_whitespace)
{
	static const char text[] =
	    "\r\n\t {\"labels\": {\"v1\": {\"x\": 1},\r\n"
	    "\t\"v1.2\": {\"auth\": \"none\"}}}";

	expect_at(text, "", 0, 2, 3);
	expect_at(text, "labels.v1.x", 0, 2, 27);
	/* "v1" matches first but lacks "2.auth"; "v1.2" has it. */
	expect_at(text, "labels.v1.2.auth", 0, 3, 19);
	expect_at(text, "labels.v1.2", 1, 3, 2);
}
END_TEST

START_TEST(test_locate_truncated_and_invalid)
{
	static const char text[] =
	    "{\"a\": {\"b\": [1, \"x\\\"y\", {\"c\": true}]}, \"d\": \"e\"}";
	static const char *const invalid[] = {
	    "",
	    "   ",
	    "{",
	    "}",
	    "{\"a\"",
	    "{\"a\":",
	    "{\"a\" 1}",
	    "{a: 1}",
	    "{\"a\": 1,}",
	    "[,]",
	    "{\"a\": 1 \"d\": 2}",
	    "\"",
	    "\"\\",
	    "{\"a\\",
	    "[[[[",
	    "{\"a\": [1 2]}",
	    "{\"a\":}",
	};
	size_t len, i;
	int l, c;

	/* Every prefix: either not found, or found inside the prefix. */
	for (len = 0; len <= strlen(text); len++) {
		if (locate(text, len, "d", 0, &l, &c) == 0) {
			ck_assert_int_eq(l, 1);
			ck_assert_int_ge(c, 1);
			ck_assert_int_le(c, (int)len);
		}
		(void)locate(text, len, "a.b.2.c", 1, &l, &c);
		(void)locate(text, len, "a.b.9", 0, &l, &c);
	}
	ck_assert_int_eq(locate(text, strlen(text) - 5, "d", 0, &l, &c), -1);
	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		ck_assert_int_eq(
		    locate(invalid[i], strlen(invalid[i]), "a.b", 0, &l, &c),
		    -1);
		(void)locate(invalid[i], strlen(invalid[i]), "", 0, &l, &c);
		(void)locate(invalid[i], strlen(invalid[i]), "a", 1, &l, &c);
	}
	/* The scanner is no validator: what it passes on the way may be
	 * wrong, and the place of the value is still given. */
	ck_assert_int_eq(locate("{\"a\": {\"b\": ]}}", 15, "a.b", 0, &l, &c),
	                 0);
	ck_assert_int_eq(c, 13);
	/* NUL bytes inside the text are just bytes. */
	ck_assert_int_eq(locate("{\"a\\0\": 1, \"b\": 2}", 19, "b", 0, &l, &c),
	                 0);
	ck_assert_int_eq(locate("{\"a\0\": 1, \"b\": 2}", 17, "b", 0, &l, &c),
	                 0);
	ck_assert_int_eq(locate("{\"a\0\": 1}", 9, "a", 0, &l, &c), -1);
	ck_assert_int_eq(ra_config_locate(NULL, 0, "a", 0, &l, &c), -1);
	ck_assert_int_eq(ra_config_locate("{}", 2, NULL, 0, &l, &c), -1);
}
END_TEST

START_TEST(test_locate_deep_nesting)
{
	size_t n = 200000, i;
	char *text = malloc(n);
	int l, c;

	ck_assert_ptr_nonnull(text);
	memset(text, '[', n);
	ck_assert_int_eq(ra_config_locate(text, n, "1", 0, &l, &c), -1);
	for (i = 0; i + 5 <= n; i += 5)
		memcpy(text + i, "{\"a\":", 5);
	ck_assert_int_eq(ra_config_locate(text, n, "a.a.b", 0, &l, &c), -1);
	free(text);
	/* Nesting jansson accepts is followed. */
	ck_assert_int_eq(ra_config_locate("[[[[[[[[[[1]]]]]]]]]]", 22,
	                                  "0.0.0.0.0.0.0.0.0.0", 0, &l, &c),
	                 0);
	ck_assert_int_eq(c, 11);
}
END_TEST

START_TEST(test_locate_random_bytes)
{
	static const char alphabet[] = "{}[]\":,\\ \n\tab01.-etrunlf\0";
	static const char *const paths[] = {
	    "", "a", "b", "a.b", "0", "a.0", "0.a", "a.b.0.1", "ab", "a.",
	};
	unsigned long long x = 0x9e3779b97f4a7c15ULL;
	char buf[96];
	int i, l, c;

	for (i = 0; i < 50000; i++) {
		size_t len, j;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		len = (size_t)(x % sizeof(buf));
		for (j = 0; j < len; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[j] = alphabet[x % (sizeof(alphabet) - 1)];
		}
		if (locate(buf, len, paths[i % 10], (int)(x >> 40) & 1, &l,
		           &c) == 0) {
			ck_assert_int_ge(l, 1);
			ck_assert_int_ge(c, 1);
			ck_assert_int_le(l, (int)len);
			ck_assert_int_le(c, (int)len);
		}
	}
}
END_TEST

static Suite *
ra_config_suite(void)
{
	Suite *s = suite_create("ra_config");
	TCase *tc = tcase_create("load");
	TCase *loc = tcase_create("locate");

	tcase_add_unchecked_fixture(tc, pki_setup, pki_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_config_defaults);
	tcase_add_test(tc, test_config_full);
	tcase_add_test(tc, test_config_default_auth_with_users);
	tcase_add_test(tc, test_config_unknown_top_key);
	tcase_add_test(tc, test_config_unknown_label_key);
	tcase_add_test(tc, test_config_unknown_nested_keys);
	tcase_add_test(tc, test_config_wrong_types);
	tcase_add_test(tc, test_config_ranges);
	tcase_add_test(tc, test_config_limits_deadlines);
	tcase_add_test(tc, test_config_min_version_refused);
	tcase_add_test(tc, test_config_tls_peer_limits);
	tcase_add_test(tc, test_config_label_names);
	tcase_add_test(tc, test_config_label_operation_name_refused);
	tcase_add_test(tc, test_config_missing_files);
	tcase_add_test(tc, test_config_required_keys);
	tcase_add_test(tc, test_config_bad_pem);
	tcase_add_test(tc, test_config_key_mismatch);
	tcase_add_test(tc, test_config_encrypted_key);
	tcase_add_test(tc, test_config_ciphers);
	tcase_add_test(tc, test_config_listen);
	tcase_add_test(tc, test_config_unknown_backend);
	tcase_add_test(tc, test_config_backend_error_located);
	tcase_add_test(tc, test_config_default_label);
	tcase_add_test(tc, test_config_b64_wrap);
	tcase_add_test(tc, test_config_auth);
	tcase_add_test(tc, test_config_trust_stores);
	tcase_add_test(tc, test_config_csrattrs);
	tcase_add_test(tc, test_config_users_file_errors);
	tcase_add_test(tc, test_config_logs);
	tcase_add_test(tc, test_config_pending_bounds);
	tcase_add_test(tc, test_config_json_syntax_error);
	tcase_add_test(tc, test_config_missing_file);
	tcase_add_test(tc, test_config_relative_config_path);
	suite_add_tcase(s, tc);

	tcase_set_timeout(loc, 60);
	tcase_add_test(loc, test_locate_nested);
	tcase_add_test(loc, test_locate_strings);
	tcase_add_test(loc, test_locate_dotted_keys_and_whitespace);
	tcase_add_test(loc, test_locate_truncated_and_invalid);
	tcase_add_test(loc, test_locate_deep_nesting);
	tcase_add_test(loc, test_locate_random_bytes);
	suite_add_tcase(s, loc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ra_config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
