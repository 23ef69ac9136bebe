/*
 * check_ca_dogtag.c: unit tests of the dogtag backend without a real CA:
 * configuration errors (every one names its key), the JSON readers of
 * dogtag_json.c on bodies shaped as Dogtag sends them (ids longer
 * than 64 bits stay strings), PKIException parsing, and calls against dead
 * URLs (failover, UNREACHABLE) and the agent certificate checks.  The fake
 * Dogtag and the daemon are exercised by tests/integration/t_dogtag.sh.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_plugins/ca.h"
#include "ca_plugins/dogtag_json.h"
#include "ca_plugins/http.h"
#include "core/error.h"
#include "core/log.h"

static char tmpdir[] = "/tmp/check_ca_dogtag.XXXXXX";
static char pass_file[256], agent_pem[256], agent_key[256];
static char old_pem[256], old_key[256], other_key[256];
static EVP_PKEY *csr_key;
static X509_REQ *csr;

/* What the log hook saw. */
static int log_warn_count, log_error_count;
static char log_all[16384];

static void
log_hook(const struct ca_call *call, enum core_log_level level,
         const char *component, const char *hint, const char *message)
{
	size_t n = strlen(log_all);

	(void)call;
	if (level == CORE_LOG_WARN)
		log_warn_count++;
	if (level == CORE_LOG_ERROR)
		log_error_count++;
	snprintf(log_all + n, sizeof(log_all) - n, "%s: %s%s%s\n", component,
	         message, hint != NULL ? " hint: " : "",
	         hint != NULL ? hint : "");
}

/* Configures a dogtag instance from JSON text; NULL with err on error. */
static struct ca_instance *
configure(const char *text, struct core_err *err)
{
	json_error_t jerr;
	json_t *conf = json_loads(text, 0, &jerr);
	struct ca_instance *inst;

	ck_assert_msg(conf != NULL, "bad test JSON: %s: %s", jerr.text, text);
	memset(err, 0, sizeof(*err));
	inst = ca_instance_new(conf, tmpdir, err);
	json_decref(conf);
	return inst;
}

/* Expects configure to fail on key with text containing what. */
static void
refused(const char *text, const char *key, const char *what)
{
	struct core_err err;
	struct ca_instance *inst = configure(text, &err);

	ck_assert_msg(inst == NULL, "accepted: %s", text);
	ck_assert_str_eq(err.key, key);
	ck_assert_msg(strstr(err.text, what) != NULL,
	              "error \"%s\" lacks \"%s\"", err.text, what);
}

#define BASE                                                                   \
	"\"backend\": \"dogtag\", \"profile\": \"caServerCert\", \"urls\": "   \
	"[\"https://pki1.example.net:8443\", "                                 \
	"\"https://pki2.example.net:8443/\"]"

START_TEST(test_dogtag_configure_ok)
{
	struct ca_instance *inst;
	struct core_err err;
	char text[2048];

	snprintf(text, sizeof(text),
	         "{" BASE ", \"agent_cert\": \"%s\", \"agent_key\": \"%s\", "
	         "\"approval\": \"auto\", \"issuer_id\": "
	         "\"5f0e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b\", "
	         "\"connect_timeout\": 5, \"timeout\": 90, \"chain_refresh\": "
	         "600, \"retry_after\": 120, \"ca_bundle\": \"%s\"}",
	         agent_pem, agent_key, agent_pem);
	inst = configure(text, &err);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	ck_assert_str_eq(ca_instance_backend_name(inst), "dogtag");
	ca_instance_free(inst);
	/* Basic agent; and no agent at all in wait mode. */
	snprintf(text, sizeof(text),
	         "{" BASE ", \"user\": \"caadmin\", \"password_file\": \"%s\", "
	         "\"approval\": \"auto\"}",
	         pass_file);
	inst = configure(text, &err);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	ca_instance_free(inst);
	inst = configure("{" BASE "}", &err);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	ca_instance_free(inst);
	/* An expired agent certificate still loads: estrad starts and
	 * says so in its log. */
	snprintf(text, sizeof(text),
	         "{" BASE ", \"agent_cert\": \"%s\", \"agent_key\": \"%s\"}",
	         old_pem, old_key);
	inst = configure(text, &err);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_dogtag_configure_errors_named)
{
	char text[2048];

	refused("{" BASE ", \"profiel\": \"x\"}", "profiel",
	        "unknown key \"profiel\"");
	refused("{\"backend\": \"dogtag\", \"profile\": \"p\"}", "urls",
	        "missing \"urls\"");
	refused("{\"backend\": \"dogtag\", \"profile\": \"p\", \"urls\": []}",
	        "urls", "array of 1 to");
	refused("{\"backend\": \"dogtag\", \"profile\": \"p\", \"urls\": "
	        "[\"ldap://x\"]}",
	        "urls.0", "not an http:// or https:// URL");
	refused("{\"backend\": \"dogtag\", \"profile\": \"p\", \"urls\": "
	        "[\"https://a:8443\", \"https://b:8443/ca\"]}",
	        "urls.1", "base URL (https://HOST:8443)");
	refused("{\"backend\": \"dogtag\", \"profile\": \"p\", \"urls\": "
	        "[\"https://u:p@a:8443\"]}",
	        "urls.0", "plain base URL");
	refused("{\"backend\": \"dogtag\", \"urls\": [\"https://a:8443\"]}",
	        "profile", "missing \"profile\"");
	refused("{" BASE ", \"profile\": \"ca/../x\"}", "profile",
	        "only letters, digits");
	refused("{" BASE ", \"issuer_id\": \"a b\"}", "issuer_id",
	        "only letters, digits");
	refused("{" BASE ", \"approval\": \"yes\"}", "approval",
	        "unknown approval \"yes\" (one of: auto, wait)");
	refused("{" BASE ", \"approval\": \"auto\"}", "approval",
	        "approves as a CA agent");
	refused("{" BASE ", \"timeout\": 0}", "timeout",
	        "must be an integer from 1 to 3600");
	refused("{" BASE ", \"timeout\": \"60\"}", "timeout",
	        "must be an integer");
	refused("{" BASE ", \"chain_refresh\": 10}", "chain_refresh",
	        "must be an integer from 60 to");
	refused("{" BASE ", \"retry_after\": 0}", "retry_after",
	        "must be an integer from 1");
	refused("{" BASE ", \"ca_bundle\": \"nope.pem\"}", "ca_bundle",
	        "No such file or directory");
	snprintf(text, sizeof(text), "{" BASE ", \"agent_cert\": \"%s\"}",
	         agent_pem);
	refused(text, "agent_key", "go together");
	snprintf(text, sizeof(text), "{" BASE ", \"user\": \"caadmin\"}");
	refused(text, "password_file", "go together");
	snprintf(text, sizeof(text),
	         "{" BASE ", \"agent_cert\": \"%s\", \"agent_key\": \"%s\", "
	         "\"user\": \"caadmin\", \"password_file\": \"%s\"}",
	         agent_pem, agent_key, pass_file);
	refused(text, "user", "not both");
	snprintf(text, sizeof(text),
	         "{" BASE ", \"agent_cert\": \"%s\", \"agent_key\": \"%s\"}",
	         agent_pem, other_key);
	refused(text, "agent_key", "is not the key of the agent certificate");
	snprintf(text, sizeof(text),
	         "{" BASE ", \"agent_cert\": \"%s\", \"agent_key\": \"%s\"}",
	         pass_file, agent_key);
	refused(text, "agent_cert", "no PEM certificate");
	snprintf(text, sizeof(text),
	         "{\"backend\": \"dogtag\", \"profile\": \"p\", \"urls\": "
	         "[\"http://a:8080\"], \"user\": \"u\", \"password_file\": "
	         "\"%s\"}",
	         pass_file);
	refused(text, "urls.0", "needs https://");
}
END_TEST

START_TEST(test_dogtag_password_never_in_errors)
{
	char path[300], text[1024];
	struct core_err err;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/empty.pass", tmpdir);
	fp = fopen(path, "w");
	fputs("\nsecond-line-secret\n", fp);
	fclose(fp);
	snprintf(text, sizeof(text),
	         "{" BASE ", \"user\": \"u\", \"password_file\": \"%s\"}",
	         path);
	refused(text, "password_file", "is empty");
	configure(text, &err);
	ck_assert_ptr_null(strstr(err.text, "secret"));
	unlink(path);
}
END_TEST

/* --- JSON readers -------------------------------------------------------- */

#define STR(s) s, sizeof(s) - 1

START_TEST(test_dogtag_json_enroll_answer)
{
	static const char body[] =
	    "{\"total\":1,\"entries\":[{\"requestID\":\"0x1a\","
	    "\"requestType\":\"enrollment\",\"requestStatus\":\"complete\","
	    "\"certRequestType\":\"pkcs10\",\"operationResult\":\"success\","
	    "\"certId\":\"0x3f1c9e2a\",\"creationTime\":1732300000000,"
	    "\"modificationTime\":1732300000123}]}";
	struct dogtag_request_info info;

	ck_assert_int_eq(dogtag_json_request_info(STR(body), &info), 0);
	ck_assert_uint_eq(info.total, 1);
	ck_assert_str_eq(info.request_id, "0x1a");
	ck_assert_str_eq(info.cert_id, "0x3f1c9e2a");
	ck_assert_int_eq(info.status, DOGTAG_STATUS_COMPLETE);
	ck_assert_str_eq(info.request_type, "enrollment");
	ck_assert_str_eq(info.operation_result, "success");
	ck_assert_str_eq(info.error_message, "");
}
END_TEST

START_TEST(test_dogtag_json_ids_longer_than_64_bits)
{
	/* SSNv2: 128-bit random ids, hex and decimal, kept as written. */
	static const char body[] =
	    "{\"requestID\":\"0xd2b7c0a1f3e4958677a8b9c0d1e2f3a4\","
	    "\"requestStatus\":\"pending\",\"requestType\":\"enrollment\"}";
	static const char v1[] =
	    "{\"total\":1,\"entries\":[{\"requestURL\":\"https://pki1:8443/"
	    "ca/rest/certrequests/279928476137295614829305417295761293857\","
	    "\"certURL\":\"https://pki1:8443/ca/rest/certs/"
	    "340282366920938463463374607431768211455\","
	    "\"requestStatus\":\"complete\"}]}";
	struct dogtag_request_info info;

	ck_assert_int_eq(dogtag_json_request_info(STR(body), &info), 0);
	ck_assert_str_eq(info.request_id, "0xd2b7c0a1f3e4958677a8b9c0d1e2f3a4");
	ck_assert_int_eq(info.status, DOGTAG_STATUS_PENDING);
	ck_assert_str_eq(info.cert_id, "");
	ck_assert_int_eq(dogtag_json_request_info(STR(v1), &info), 0);
	ck_assert_str_eq(info.request_id,
	                 "279928476137295614829305417295761293857");
	ck_assert_str_eq(info.cert_id,
	                 "340282366920938463463374607431768211455");
	ck_assert(dogtag_id_valid("0x00000000000000000000000000000000000001"));
	ck_assert(!dogtag_id_valid("0x"));
	ck_assert(!dogtag_id_valid("0x1g"));
	ck_assert(!dogtag_id_valid("-1"));
	ck_assert(!dogtag_id_valid("1/../2"));
	ck_assert(!dogtag_id_valid(""));
}
END_TEST

START_TEST(test_dogtag_json_rejected_and_bad_bodies)
{
	static const char rejected[] =
	    "{\"total\":1,\"entries\":[{\"requestID\":\"0x1b\","
	    "\"requestStatus\":\"rejected\",\"operationResult\":\"success\","
	    "\"errorMessage\":\"Request Rejected - Key Parameters 1024 Not "
	    "Allowed\\n\"}]}";
	static const char bad_id[] =
	    "{\"requestID\":\"0x1b/../admin\",\"requestStatus\":\"pending\"}";
	struct dogtag_request_info info;

	ck_assert_int_eq(dogtag_json_request_info(STR(rejected), &info), 0);
	ck_assert_int_eq(info.status, DOGTAG_STATUS_REJECTED);
	/* The line break became a blank: the text goes into a log line. */
	ck_assert_str_eq(info.error_message,
	                 "Request Rejected - Key Parameters 1024 Not Allowed ");
	ck_assert_int_eq(dogtag_json_request_info(STR(bad_id), &info), -1);
	ck_assert_int_eq(
	    dogtag_json_request_info(STR("<html>404</html>"), &info), -1);
	ck_assert_int_eq(dogtag_json_request_info(
	                     STR("{\"total\":0,\"entries\":[]}"), &info),
	                 -1);
	ck_assert_int_eq(dogtag_json_request_info(STR("[1]"), &info), -1);
	ck_assert_int_eq(dogtag_json_request_info(NULL, 0, &info), -1);
	ck_assert_int_eq(dogtag_status_from("svc_pending"),
	                 DOGTAG_STATUS_SVC_PENDING);
	ck_assert_int_eq(dogtag_status_from("canceled"),
	                 DOGTAG_STATUS_CANCELED);
	ck_assert_int_eq(dogtag_status_from("Complete"), DOGTAG_STATUS_UNKNOWN);
}
END_TEST

START_TEST(test_dogtag_json_pki_exception)
{
	static const char nf[] =
	    "{\"Attributes\":{\"Attribute\":[{\"name\":\"requestId\","
	    "\"value\":\"26\"}]},\"ClassName\":\"com.netscape.certsrv."
	    "request.RequestNotFoundException\",\"Code\":404,\"Message\":"
	    "\"Request ID 0x1a not found\"}";
	static const char disabled[] =
	    "{\"error\":\"REST API v1 have been disabled\",\"message\":\"Use "
	    "REST API v2 instead\",\"documentation\":\"https://github.com/"
	    "dogtagpki/pki/wiki/REST-API-v2\"}";
	struct dogtag_exception ex;
	char longmsg[2048];
	int n;

	ck_assert_int_eq(dogtag_json_exception(STR(nf), &ex), 0);
	ck_assert_str_eq(ex.class_name, "RequestNotFoundException");
	ck_assert_int_eq(ex.code, 404);
	ck_assert_str_eq(ex.message, "Request ID 0x1a not found");
	ck_assert_int_eq(ex.v1_disabled, 0);
	ck_assert_int_eq(dogtag_json_exception(STR(disabled), &ex), 0);
	ck_assert_int_eq(ex.v1_disabled, 1);
	ck_assert_str_eq(ex.message, "Use REST API v2 instead");
	ck_assert_int_eq(dogtag_json_exception(
	                     STR("{\"ClassName\":\"com.netscape.certsrv.base."
	                         "ConflictingOperationException\",\"Code\":409,"
	                         "\"Message\":\"CA not enabled\"}"),
	                     &ex),
	                 0);
	ck_assert_str_eq(ex.class_name, "ConflictingOperationException");
	ck_assert_str_eq(ex.message, "CA not enabled");
	ck_assert_int_eq(
	    dogtag_json_exception(STR("<html><body>HTTP Status 404"), &ex), -1);
	ck_assert_int_eq(dogtag_json_exception(STR("{\"x\":1}"), &ex), -1);
	/* A long CA text is cut, so that the log line keeps its context. */
	n = snprintf(longmsg, sizeof(longmsg),
	             "{\"ClassName\":\"PKIException\",\"Message\":\"%01500d\"}",
	             0);
	ck_assert_int_eq(dogtag_json_exception(longmsg, (size_t)n, &ex), 0);
	ck_assert_uint_eq(strlen(ex.message), DOGTAG_TEXT_MAX - 1);
	ck_assert(dogtag_body_is_html(STR("  <!doctype html>"), NULL));
	ck_assert(dogtag_body_is_html(STR("{}"), "text/html;charset=utf-8"));
	ck_assert(!dogtag_body_is_html(STR("{}"), "application/json"));
}
END_TEST

START_TEST(test_dogtag_json_info_account_review)
{
	struct dogtag_info pki;
	struct dogtag_account acct;
	struct dogtag_review review;

	ck_assert_int_eq(
	    dogtag_json_info(
	        STR("{\"Name\":\"Dogtag Certificate System\",\"Version\":"
	            "\"11.7.0\"}"),
	        &pki),
	    0);
	ck_assert_str_eq(pki.version, "11.7.0");
	ck_assert_int_eq(dogtag_json_info(STR("<html/>"), &pki), -1);
	ck_assert_int_eq(
	    dogtag_json_account(
	        STR("{\"id\":\"ipara\",\"FullName\":\"IPA RA\",\"Roles\":"
	            "[\"Certificate Manager Agents\",\"Registration Manager "
	            "Agents\"]}"),
	        &acct),
	    0);
	ck_assert_str_eq(acct.id, "ipara");
	ck_assert_uint_eq(acct.nroles, 2);
	ck_assert_int_eq(
	    dogtag_json_review(
	        STR("{\"requestId\":\"0x1c\",\"requestStatus\":\"pending\","
	            "\"nonce\":\"-4711\",\"ProfileID\":\"caManual\"}"),
	        &review),
	    0);
	ck_assert_str_eq(review.request_id, "0x1c");
	ck_assert_int_eq(review.status, DOGTAG_STATUS_PENDING);
	ck_assert_int_eq(review.has_nonce, 1);
	ck_assert_int_eq(
	    dogtag_json_review(STR("{\"requestId\":\"0x1c\"}"), &review), 0);
	ck_assert_int_eq(review.has_nonce, 0);
}
END_TEST

/* A certificate for key, self-signed, valid from now + from to now + to. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, long from, long to, int ca)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, name);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, key);
	if (ca) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(
		    NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");

		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	X509_sign(x, key, EVP_sha256());
	X509_NAME_free(name);
	return x;
}

/* ProfileData (GET …/profiles/{id}): enabled, enabledBy; a missing or
 * non-boolean "enabled" is refused rather than read as disabled. */
START_TEST(test_dogtag_json_profile_state)
{
	static const char on[] =
	    "{\"id\":\"caServerCert\",\"classId\":\"caEnrollImpl\","
	    "\"enabled\":true,\"visible\":true,\"enabledBy\":\"caadmin\","
	    "\"Input\":[],\"Output\":[],\"PolicySets\":{}}";
	static const char off[] = "{\"id\":\"caOff\",\"enabled\":false,"
	                          "\"visible\":true}";
	static const char missing[] = "{\"id\":\"caX\",\"visible\":true}";
	static const char text[] = "{\"id\":\"caX\",\"enabled\":\"true\"}";
	struct dogtag_profile prof;

	ck_assert_int_eq(dogtag_json_profile(STR(on), &prof), 0);
	ck_assert_int_eq(prof.enabled, 1);
	ck_assert_str_eq(prof.enabled_by, "caadmin");
	ck_assert_int_eq(dogtag_json_profile(STR(off), &prof), 0);
	ck_assert_int_eq(prof.enabled, 0);
	ck_assert_str_eq(prof.enabled_by, "");
	ck_assert_int_eq(dogtag_json_profile(STR(missing), &prof), -1);
	ck_assert_int_eq(dogtag_json_profile(STR(text), &prof), -1);
	ck_assert_int_eq(dogtag_json_profile(STR("[true]"), &prof), -1);
	ck_assert_int_eq(dogtag_json_profile(NULL, 0, &prof), -1);
}
END_TEST

START_TEST(test_dogtag_json_cert_data_and_pkcs7)
{
	STACK_OF(X509) *certs, *got;
	struct dogtag_cert_data cd;
	PKCS7 *p7 = PKCS7_new();
	X509 *leaf = make_cert(csr_key, "leaf", 0, 3600, 0);
	X509 *ca = make_cert(csr_key, "ca", 0, 3600, 1);
	unsigned char *der = NULL;
	char *pem_leaf, *b64, *body;
	BIO *bio = BIO_new(BIO_s_mem());
	long n;
	int len;

	/* PKCS7CertChain as Dogtag writes it: base64 with line breaks, no
	 * armour. */
	PKCS7_set_type(p7, NID_pkcs7_signed);
	PKCS7_content_new(p7, NID_pkcs7_data);
	PKCS7_add_certificate(p7, leaf);
	PKCS7_add_certificate(p7, ca);
	len = i2d_PKCS7(p7, &der);
	ck_assert_int_gt(len, 0);
	b64 = malloc((size_t)len * 2 + 8);
	{
		int i, o = 0;
		char *one = malloc((size_t)len * 2 + 8);

		EVP_EncodeBlock((unsigned char *)one, der, len);
		for (i = 0; one[i] != '\0'; i++) {
			b64[o++] = one[i];
			if (i % 64 == 63) {
				b64[o++] = '\\';
				b64[o++] = 'n';
			}
		}
		b64[o] = '\0';
		free(one);
	}
	PEM_write_bio_X509(bio, leaf);
	n = BIO_get_mem_data(bio, &pem_leaf);
	body = malloc((size_t)n * 2 + strlen(b64) + 256);
	{
		char *esc = malloc((size_t)n * 2 + 1);
		long i;
		int o = 0;

		for (i = 0; i < n; i++) {
			if (pem_leaf[i] == '\n') {
				esc[o++] = '\\';
				esc[o++] = 'n';
			} else
				esc[o++] = pem_leaf[i];
		}
		esc[o] = '\0';
		snprintf(body, (size_t)n * 2 + strlen(b64) + 256,
		         "{\"id\":\"0x3f1c9e2a\",\"IssuerDN\":\"CN=ca\","
		         "\"SubjectDN\":\"CN=leaf\",\"Status\":\"VALID\","
		         "\"Encoded\":\"%s\",\"PKCS7CertChain\":\"%s\"}",
		         esc, b64);
		free(esc);
	}
	ck_assert_int_eq(dogtag_json_cert_data(body, strlen(body), &cd), 0);
	ck_assert_str_eq(cd.id, "0x3f1c9e2a");
	ck_assert_str_eq(cd.status, "VALID");
	ck_assert_ptr_nonnull(cd.encoded);
	ck_assert_ptr_nonnull(cd.pkcs7);
	got = dogtag_certs_from_pkcs7((const unsigned char *)cd.pkcs7,
	                              strlen(cd.pkcs7));
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(sk_X509_num(got), 2);
	ck_assert_int_eq(X509_cmp(sk_X509_value(got, 0), leaf), 0);
	sk_X509_pop_free(got, X509_free);
	certs = dogtag_certs_from_pem(cd.encoded, strlen(cd.encoded));
	ck_assert_ptr_nonnull(certs);
	ck_assert_int_eq(sk_X509_num(certs), 1);
	sk_X509_pop_free(certs, X509_free);
	dogtag_cert_data_cleanup(&cd);
	/* The chain endpoint's DER. */
	got = dogtag_certs_from_pkcs7(der, (size_t)len);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(sk_X509_num(got), 2);
	sk_X509_pop_free(got, X509_free);
	ck_assert_ptr_null(dogtag_certs_from_pkcs7(
	    (const unsigned char *)"not base64 !!", 13));
	ck_assert_int_eq(dogtag_json_cert_data(
	                     STR("{\"id\":\"0x1\",\"Status\":\"VALID\"}"), &cd),
	                 -1);
	dogtag_cert_data_cleanup(&cd);
	free(body);
	free(b64);
	OPENSSL_free(der);
	BIO_free(bio);
	PKCS7_free(p7);
	X509_free(leaf);
	X509_free(ca);
}
END_TEST

START_TEST(test_dogtag_json_enroll_body)
{
	struct dogtag_request_info info;
	json_t *root, *attr;
	char *body = dogtag_json_enroll_body("caServerCert", csr);
	const char *b64;

	ck_assert_ptr_nonnull(body);
	root = json_loads(body, 0, NULL);
	ck_assert_ptr_nonnull(root);
	ck_assert_str_eq(json_string_value(json_object_get(root, "ProfileID")),
	                 "caServerCert");
	attr = json_object_get(
	    json_array_get(json_object_get(root, "Input"), 0), "Attribute");
	ck_assert_str_eq(json_string_value(
	                     json_object_get(json_array_get(attr, 0), "Value")),
	                 "pkcs10");
	b64 = json_string_value(
	    json_object_get(json_array_get(attr, 1), "Value"));
	ck_assert_ptr_nonnull(b64);
	ck_assert_ptr_null(strchr(b64, '\n'));
	ck_assert_int_eq(strncmp(b64, "MI", 2), 0);
	/* No request info in it, of course. */
	ck_assert_int_eq(dogtag_json_request_info(body, strlen(body), &info),
	                 -1);
	json_decref(root);
	free(body);
}
END_TEST

/* --- calls ------------------------------------------------------------ */

struct result {
	int count;
	enum ca_outcome outcome;
	char cause[CA_CAUSE_MAX];
	char url[CA_URL_MAX];
	unsigned int retry_after;
};

static struct event_base *cli_base;

static void
call_done(struct ca_call *call, void *arg)
{
	struct result *r = arg;

	r->count++;
	r->outcome = call->result.outcome;
	r->retry_after = call->result.retry_after;
	snprintf(r->cause, sizeof(r->cause), "%s", call->result.cause);
	snprintf(r->url, sizeof(r->url), "%s", call->result.url);
	event_base_loopbreak(cli_base);
}

static void
run_call(struct ca_instance *inst, enum ca_operation op, const char *cookie,
         struct result *r)
{
	struct ca_call *call = ca_call_new();
	struct timeval tv = {10, 0};

	memset(r, 0, sizeof(*r));
	call->op = op;
	call->base = cli_base;
	call->rid = "0123456789abcdef";
	call->label = "routers";
	call->csr = op == CA_OP_ENROLL ? csr : NULL;
	call->cookie = cookie;
	ca_instance_start(inst, call, call_done, r);
	event_base_loopexit(cli_base, &tv);
	event_base_dispatch(cli_base);
	ck_assert_int_eq(r->count, 1);
	ca_call_free(call);
}

static int
dead_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void
setup(void)
{
	log_warn_count = log_error_count = 0;
	log_all[0] = '\0';
	ck_assert_ptr_nonnull(cli_base = event_base_new());
}

static void
teardown(void)
{
	ca_http_shutdown(cli_base);
	event_base_free(cli_base);
}

/* An instance with two dead URLs and the given extra keys. */
static struct ca_instance *
dead_instance(const char *extra)
{
	struct ca_instance *inst;
	struct core_err err;
	char text[2048];

	snprintf(
	    text, sizeof(text),
	    "{\"backend\": \"dogtag\", \"profile\": \"caServerCert\", "
	    "\"urls\": [\"http://127.0.0.1:%d\", \"http://127.0.0.1:%d\"], "
	    "\"connect_timeout\": 2, \"timeout\": 5, \"retry_after\": 42%s}",
	    dead_port(), dead_port(), extra);
	inst = configure(text, &err);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	return inst;
}

START_TEST(test_dogtag_all_dead_unreachable_with_failover)
{
	struct ca_instance *inst = dead_instance("");
	struct result r;

	run_call(inst, CA_OP_ENROLL, NULL, &r);
	ck_assert_int_eq(r.outcome, CA_UNREACHABLE);
	ck_assert_uint_eq(r.retry_after, 42);
	ck_assert_msg(strstr(r.cause, "enroll failed: curl 7 \"Couldn't "
	                              "connect to server\" (") == r.cause,
	              "%s", r.cause);
	ck_assert_ptr_nonnull(strstr(r.cause, " while probing the REST API"));
	ck_assert_ptr_nonnull(strstr(r.url, "/pki/v2/info"));
	ck_assert_int_eq(log_warn_count, 1);
	ck_assert_ptr_nonnull(strstr(log_all, "CA failover: curl 7 "));
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_dogtag_poll_cookie_checked)
{
	struct ca_instance *inst = dead_instance("");
	struct result r;

	run_call(inst, CA_OP_POLL, "0x1a/../x", &r);
	ck_assert_int_eq(r.outcome, CA_MISCONFIGURED);
	ck_assert_ptr_nonnull(strstr(r.cause, "not a Dogtag request id"));
	/* A good cookie goes to the CA (dead here). */
	run_call(inst, CA_OP_POLL, "0xd2b7c0a1f3e4958677a8b9c0d1e2f3a4", &r);
	ck_assert_int_eq(r.outcome, CA_UNREACHABLE);
	ck_assert_msg(strstr(r.cause, "poll failed: curl 7") == r.cause, "%s",
	              r.cause);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_dogtag_background_failure_answers_cacerts)
{
	struct ca_instance *inst = dead_instance("");
	struct timeval tv = {0, 300000};
	struct result r;

	ca_instance_loop_start(inst, cli_base);
	event_base_loopexit(cli_base, &tv);
	event_base_dispatch(cli_base);
	ck_assert_ptr_nonnull(
	    strstr(log_all, "CA chain refresh failed: curl 7"));
	ck_assert_ptr_nonnull(strstr(log_all, "next try in 5 s"));
	run_call(inst, CA_OP_CACERTS, NULL, &r);
	ck_assert_int_eq(r.outcome, CA_UNREACHABLE);
	ck_assert_msg(strstr(r.cause,
	                     "cacerts failed: no CA chain yet: CA "
	                     "chain refresh failed: curl 7") == r.cause,
	              "%s", r.cause);
	ca_instance_loop_stop(inst);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_dogtag_agent_expiry_logged_at_start)
{
	struct ca_instance *inst;
	char extra[1024];

	snprintf(extra, sizeof(extra),
	         ", \"agent_cert\": \"%s\", \"agent_key\": \"%s\"", old_pem,
	         old_key);
	inst = dead_instance(extra);
	ca_instance_loop_start(inst, cli_base);
	ca_instance_loop_stop(inst);
	ck_assert_msg(strstr(log_all, "agent certificate expired: the CA will "
	                              "refuse the agent login") != NULL,
	              "%s", log_all);
	ck_assert_ptr_nonnull(strstr(log_all, "agent_cert: \"CN=old-agent\" "
	                                      "expired "));
	ck_assert_ptr_nonnull(
	    strstr(log_all, "hint: renew the agent certificate, then SIGHUP"));
	ca_instance_free(inst);
	/* One that expires in 10 days: a warning. */
	log_all[0] = '\0';
	snprintf(extra, sizeof(extra),
	         ", \"agent_cert\": \"%s\", \"agent_key\": \"%s\"", agent_pem,
	         agent_key);
	inst = dead_instance(extra);
	ca_instance_loop_start(inst, cli_base);
	ca_instance_loop_stop(inst);
	ck_assert_msg(strstr(log_all, "agent certificate expires soon") != NULL,
	              "%s", log_all);
	ck_assert_ptr_nonnull(strstr(log_all, "(in 9 days)"));
	ca_instance_free(inst);
}
END_TEST

static Suite *
ca_dogtag_suite(void)
{
	Suite *s = suite_create("ca_dogtag");
	TCase *conf = tcase_create("configure");
	TCase *json = tcase_create("json");
	TCase *calls = tcase_create("calls");

	tcase_add_test(conf, test_dogtag_configure_ok);
	tcase_add_test(conf, test_dogtag_configure_errors_named);
	tcase_add_test(conf, test_dogtag_password_never_in_errors);
	suite_add_tcase(s, conf);
	tcase_add_test(json, test_dogtag_json_enroll_answer);
	tcase_add_test(json, test_dogtag_json_ids_longer_than_64_bits);
	tcase_add_test(json, test_dogtag_json_rejected_and_bad_bodies);
	tcase_add_test(json, test_dogtag_json_pki_exception);
	tcase_add_test(json, test_dogtag_json_info_account_review);
	tcase_add_test(json, test_dogtag_json_profile_state);
	tcase_add_test(json, test_dogtag_json_cert_data_and_pkcs7);
	tcase_add_test(json, test_dogtag_json_enroll_body);
	suite_add_tcase(s, json);
	tcase_add_checked_fixture(calls, setup, teardown);
	tcase_set_timeout(calls, 30);
	tcase_add_test(calls, test_dogtag_all_dead_unreachable_with_failover);
	tcase_add_test(calls, test_dogtag_poll_cookie_checked);
	tcase_add_test(calls, test_dogtag_background_failure_answers_cacerts);
	tcase_add_test(calls, test_dogtag_agent_expiry_logged_at_start);
	suite_add_tcase(s, calls);
	return s;
}

/* Writes key (and cert, if set) as PEM files. */
static void
write_pem(const char *cert_path, X509 *cert, const char *key_path,
          EVP_PKEY *key)
{
	FILE *fp;

	if (cert != NULL) {
		fp = fopen(cert_path, "w");
		PEM_write_X509(fp, cert);
		fclose(fp);
	}
	fp = fopen(key_path, "w");
	PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
}

int
main(void)
{
	EVP_PKEY_CTX *kctx;
	EVP_PKEY *agent = NULL, *old = NULL, *other = NULL;
	X509 *cert;
	SRunner *sr;
	FILE *fp;
	int failed;

	evthread_use_pthreads();
	ca_set_log_hook(log_hook);
	if (mkdtemp(tmpdir) == NULL)
		return EXIT_FAILURE;
	snprintf(pass_file, sizeof(pass_file), "%s/agent.pass", tmpdir);
	snprintf(agent_pem, sizeof(agent_pem), "%s/agent.pem", tmpdir);
	snprintf(agent_key, sizeof(agent_key), "%s/agent.key", tmpdir);
	snprintf(old_pem, sizeof(old_pem), "%s/old.pem", tmpdir);
	snprintf(old_key, sizeof(old_key), "%s/old.key", tmpdir);
	snprintf(other_key, sizeof(other_key), "%s/other.key", tmpdir);
	if ((fp = fopen(pass_file, "w")) == NULL)
		return EXIT_FAILURE;
	fputs("Secret.123\n", fp);
	fclose(fp);
	kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	EVP_PKEY_keygen_init(kctx);
	EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kctx, NID_X9_62_prime256v1);
	EVP_PKEY_keygen(kctx, &csr_key);
	EVP_PKEY_keygen(kctx, &agent);
	EVP_PKEY_keygen(kctx, &old);
	EVP_PKEY_keygen(kctx, &other);
	EVP_PKEY_CTX_free(kctx);
	/* The agent: valid for 9.5 more days; the old one expired. */
	cert = make_cert(agent, "estrad-agent", -86400, 9 * 86400 + 43200, 0);
	write_pem(agent_pem, cert, agent_key, agent);
	X509_free(cert);
	cert = make_cert(old, "old-agent", -3 * 86400, -86400, 0);
	write_pem(old_pem, cert, old_key, old);
	X509_free(cert);
	write_pem(NULL, NULL, other_key, other);
	csr = X509_REQ_new();
	X509_REQ_set_pubkey(csr, csr_key);
	X509_REQ_sign(csr, csr_key, EVP_sha256());
	sr = srunner_create(ca_dogtag_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	X509_REQ_free(csr);
	EVP_PKEY_free(csr_key);
	EVP_PKEY_free(agent);
	EVP_PKEY_free(old);
	EVP_PKEY_free(other);
	unlink(pass_file);
	unlink(agent_pem);
	unlink(agent_key);
	unlink(old_pem);
	unlink(old_key);
	unlink(other_key);
	rmdir(tmpdir);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
