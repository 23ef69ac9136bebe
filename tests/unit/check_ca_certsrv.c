/*
 * check_ca_certsrv.c: unit tests of the certsrv backend without a real CA:
 * configuration errors (every one names its key), and calls against dead
 * URLs or a tiny evhttp server in a thread of its own that answers canned
 * certsrv pages over plain HTTP.  The fake AD CS and the daemon are
 * exercised by tests/integration/t_certsrv.sh.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca_plugins/ca.h"
#include "ca_plugins/http.h"
#include "core/error.h"
#include "core/log.h"

static char tmpdir[] = "/tmp/check_ca_certsrv.XXXXXX";
static char pass_file[256];

/* What the log hook saw. */
static int log_warn_count;
static char log_all[8192];

/* The canned server. */
enum srv_mode { SRV_ISSUED, SRV_ISSUED_OTHER_KEY, SRV_PENDING, SRV_DOWN };
static enum srv_mode srv_mode;
static struct event_base *srv_base;
static struct evhttp *srv_http;
static pthread_t srv_thread;
static int srv_port;
static EVP_PKEY *csr_key, *other_key;
static X509_REQ *csr;

static void
log_hook(const struct ca_call *call, enum core_log_level level,
         const char *component, const char *hint, const char *message)
{
	size_t n = strlen(log_all);

	if (level == CORE_LOG_WARN)
		log_warn_count++;
	snprintf(log_all + n, sizeof(log_all) - n, "%s: %s\n", component,
	         message);
}

/* Configures a certsrv instance from JSON text; NULL with err on error. */
static struct ca_instance *
configure(const char *text, struct core_err *err)
{
	json_error_t jerr;
	json_t *conf = json_loads(text, 0, &jerr);
	struct ca_instance *inst;

	ck_assert_msg(conf != NULL, "bad test JSON: %s", jerr.text);
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
	"\"backend\": \"certsrv\", \"template\": \"WebServer\", \"urls\": "    \
	"[\"https://ca.example/certsrv\"]"

START_TEST(test_certsrv_configure_ok)
{
	struct ca_instance *inst;
	struct core_err err;
	char text[1024];

	snprintf(
	    text, sizeof(text),
	    "{" BASE ", \"user\": \"CORP\\\\svc-est\", \"password_file\": "
	    "\"%s\", \"auth\": \"ntlm\", \"cert_attrib\": [\"san:dns=a\"], "
	    "\"connect_timeout\": 5, \"timeout\": 90, \"chain_refresh\": "
	    "600, \"fetch_chain\": true, \"retry_after\": 120, "
	    "\"user_agent\": \"Mozilla/5.0 test\"}",
	    pass_file);
	inst = configure(text, &err);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	ck_assert_str_eq(ca_instance_backend_name(inst), "certsrv");
	ca_instance_free(inst);
	/* Anonymous: no user, no auth. */
	inst = configure("{" BASE "}", &err);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_certsrv_configure_errors_named)
{
	char text[1024];

	refused("{" BASE ", \"tmeplate\": \"x\"}", "tmeplate",
	        "unknown key \"tmeplate\"");
	refused("{\"backend\": \"certsrv\", \"template\": \"W\"}", "urls",
	        "missing \"urls\"");
	refused("{\"backend\": \"certsrv\", \"template\": \"W\", \"urls\": []}",
	        "urls", "array of 1 to");
	refused("{\"backend\": \"certsrv\", \"template\": \"W\", \"urls\": "
	        "[\"ftp://x/certsrv\"]}",
	        "urls.0", "not an http:// or https:// URL");
	refused("{\"backend\": \"certsrv\", \"template\": \"W\", \"urls\": "
	        "[\"https://a/certsrv\", \"https://u:p@b/certsrv\"]}",
	        "urls.1", "plain base URL");
	refused("{\"backend\": \"certsrv\", \"urls\": [\"https://a/certsrv\"]}",
	        "template", "missing \"template\"");
	refused("{" BASE ", \"auth\": \"kerberos\"}", "auth",
	        "unknown auth \"kerberos\"");
	refused("{" BASE ", \"auth\": \"ntlm\"}", "user", "needs \"user\"");
	refused("{" BASE ", \"user\": \"u\", \"auth\": \"basic\"}",
	        "password_file", "needs \"user\" and \"password_file\"");
	refused("{" BASE ", \"user\": \"u\", \"password_file\": \"nope\"}",
	        "password_file", "No such file or directory");
	refused("{" BASE ", \"auth\": \"client-cert\"}", "client_cert",
	        "needs \"client_cert\"");
	refused("{" BASE ", \"timeout\": 0}", "timeout",
	        "must be an integer from 1 to 3600");
	refused("{" BASE ", \"timeout\": \"60\"}", "timeout",
	        "must be an integer");
	refused("{" BASE ", \"chain_refresh\": 10}", "chain_refresh",
	        "must be an integer from 60 to");
	refused("{" BASE ", \"fetch_chain\": 1}", "fetch_chain",
	        "must be true or false");
	refused("{" BASE ", \"cert_attrib\": [\"novalue\"]}", "cert_attrib.0",
	        "\"name:value\"");
	refused("{" BASE ", \"cert_attrib\": [\"CertificateTemplate:X\"]}",
	        "cert_attrib.0", "set the template with \"template\"");
	refused("{\"backend\": \"certsrv\", \"urls\": [\"https://a/certsrv\"], "
	        "\"template\": \"a\\r\\nb\"}",
	        "template", "control characters");
	snprintf(text, sizeof(text),
	         "{\"backend\": \"certsrv\", \"template\": \"W\", \"urls\": "
	         "[\"http://a/certsrv\"], \"user\": \"u\", \"password_file\": "
	         "\"%s\", \"auth\": \"basic\"}",
	         pass_file);
	refused(text, "urls.0", "needs https://");
}
END_TEST

START_TEST(test_certsrv_password_never_in_errors)
{
	char path[300], text[1024];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/empty.pass", tmpdir);
	fp = fopen(path, "w");
	fputs("\nsecond-line-secret\n", fp);
	fclose(fp);
	snprintf(text, sizeof(text),
	         "{" BASE ", \"user\": \"u\", \"password_file\": \"%s\"}",
	         path);
	refused(text, "password_file", "is empty");
	{
		struct core_err err;

		configure(text, &err);
		ck_assert_ptr_null(strstr(err.text, "secret"));
	}
}
END_TEST

/* --- calls ------------------------------------------------------------ */

struct result {
	int count;
	enum ca_outcome outcome;
	int csr_fault;
	int ncerts;
	unsigned int retry_after;
	char cause[CA_CAUSE_MAX];
	char cookie[CA_COOKIE_MAX];
	char url[CA_URL_MAX];
};

static struct event_base *cli_base;

static void
call_done(struct ca_call *call, void *arg)
{
	struct result *r = arg;

	r->count++;
	r->outcome = call->result.outcome;
	r->csr_fault = call->result.csr_fault;
	r->ncerts =
	    call->result.chain != NULL ? sk_X509_num(call->result.chain) : 0;
	r->retry_after = call->result.retry_after;
	snprintf(r->cause, sizeof(r->cause), "%s", call->result.cause);
	snprintf(r->cookie, sizeof(r->cookie), "%s", call->result.cookie);
	snprintf(r->url, sizeof(r->url), "%s", call->result.url);
	event_base_loopbreak(cli_base);
}

/* Runs op on inst from cli_base and waits (10 s at most) for the answer. */
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
	call->label = "phones";
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
reply(struct evhttp_request *req, const char *type, const void *data,
      size_t len)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, data, len);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Content-Type", type);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* A certificate for key, self-signed by other_key: enough for the backend,
 * which checks the key, not the issuer. */
static X509 *
make_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)"leaf", -1, -1, 0);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, name);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_sign(x, other_key, EVP_sha256());
	X509_NAME_free(name);
	return x;
}

static void
srv_handle(struct evhttp_request *req, void *arg)
{
	static const char issued[] =
	    "<P ID=locInfo>Issued</P><A "
	    "Href=\"certnew.cer?ReqID=5&amp;Enc=bin\">DER</A>";
	static const char pending[] =
	    "<P ID=locPending>wait</P><P ID=locReqID> Your Request Id is 77. "
	    "</P>";
	static const char down[] =
	    "<P ID=locContactAdmin>x\r\n</P>\r\n"
	    "\t<DT ID=locDispMsgLabel>m</DT><DD>\r\n"
	    "\t\tThe Certification Authority Service has not been started.\r\n"
	    "\t<DT ID=locLastStatLabel>l</DT><DD>\r\n"
	    "\t\tThe RPC server is unavailable. 0x800706ba (WIN32: 1722 "
	    "RPC_S_SERVER_UNAVAILABLE)\r\n";
	const char *path =
	    evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

	(void)arg;
	if (path == NULL)
		path = "";
	if (srv_mode == SRV_DOWN) {
		reply(req, "text/html", down, sizeof(down) - 1);
	} else if (strcmp(path, "/certsrv/certfnsh.asp") == 0) {
		if (srv_mode == SRV_PENDING)
			reply(req, "text/html", pending, sizeof(pending) - 1);
		else
			reply(req, "text/html", issued, sizeof(issued) - 1);
	} else if (strcmp(path, "/certsrv/certnew.cer") == 0) {
		X509 *x = make_cert(srv_mode == SRV_ISSUED_OTHER_KEY ? other_key
		                                                     : csr_key);
		unsigned char *der = NULL;
		int len = i2d_X509(x, &der);

		/* Served as text/html on purpose: the body is sniffed. */
		reply(req, "text/html", der, (size_t)len);
		OPENSSL_free(der);
		X509_free(x);
	} else
		evhttp_send_error(req, 404, "Not Found");
}

static void *
srv_main(void *arg)
{
	(void)arg;
	event_base_dispatch(srv_base);
	return NULL;
}

static void
setup(void)
{
	struct evhttp_bound_socket *sock;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	log_warn_count = 0;
	log_all[0] = '\0';
	ck_assert_ptr_nonnull(cli_base = event_base_new());
	ck_assert_ptr_nonnull(srv_base = event_base_new());
	srv_http = evhttp_new(srv_base);
	evhttp_set_gencb(srv_http, srv_handle, NULL);
	sock = evhttp_bind_socket_with_handle(srv_http, "127.0.0.1", 0);
	ck_assert_ptr_nonnull(sock);
	getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin,
	            &len);
	srv_port = ntohs(sin.sin_port);
	srv_mode = SRV_ISSUED;
	ck_assert_int_eq(pthread_create(&srv_thread, NULL, srv_main, NULL), 0);
}

static void
teardown(void)
{
	ca_http_shutdown(cli_base);
	event_base_free(cli_base);
	event_base_loopexit(srv_base, NULL);
	pthread_join(srv_thread, NULL);
	evhttp_free(srv_http);
	event_base_free(srv_base);
}

/* An instance whose URLs are the canned server, after n dead URLs. */
static struct ca_instance *
instance(int dead, int live)
{
	struct ca_instance *inst;
	struct core_err err;
	char text[1024], urls[512] = "";
	size_t used = 0;
	int i;

	for (i = 0; i < dead; i++)
		used += (size_t)snprintf(urls + used, sizeof(urls) - used,
		                         "%s\"http://127.0.0.1:%d/certsrv\"",
		                         used > 0 ? ", " : "", dead_port());
	if (live)
		snprintf(urls + used, sizeof(urls) - used,
		         "%s\"http://127.0.0.1:%d/certsrv/\"",
		         used > 0 ? ", " : "", srv_port);
	snprintf(text, sizeof(text),
	         "{\"backend\": \"certsrv\", \"template\": \"Web Server\", "
	         "\"urls\": [%s], \"connect_timeout\": 2, \"timeout\": 5, "
	         "\"retry_after\": 42}",
	         urls);
	inst = configure(text, &err);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	return inst;
}

START_TEST(test_certsrv_enroll_issued_key_checked)
{
	struct ca_instance *inst = instance(0, 1);
	struct result r;

	run_call(inst, CA_OP_ENROLL, NULL, &r);
	ck_assert_msg(r.outcome == CA_ISSUED, "outcome %d: %s", r.outcome,
	              r.cause);
	ck_assert_int_eq(r.ncerts, 1);
	ck_assert_str_eq(r.cookie, "5");
	ck_assert_ptr_nonnull(
	    strstr(r.url, "/certsrv/certnew.cer?ReqID=5&Enc=bin"));
	srv_mode = SRV_ISSUED_OTHER_KEY;
	run_call(inst, CA_OP_ENROLL, NULL, &r);
	ck_assert_int_eq(r.outcome, CA_MISCONFIGURED);
	ck_assert_msg(strstr(r.cause, "public key is not the CSR's") != NULL,
	              "%s", r.cause);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_certsrv_enroll_pending_then_poll)
{
	struct ca_instance *inst = instance(0, 1);
	struct result r;

	srv_mode = SRV_PENDING;
	run_call(inst, CA_OP_ENROLL, NULL, &r);
	ck_assert_int_eq(r.outcome, CA_PENDING);
	ck_assert_str_eq(r.cookie, "77");
	ck_assert_uint_eq(r.retry_after, 42);
	/* The poll collects ReqID 77 (no CSR to compare with). */
	srv_mode = SRV_ISSUED;
	run_call(inst, CA_OP_POLL, "77", &r);
	ck_assert_msg(r.outcome == CA_ISSUED, "%s", r.cause);
	run_call(inst, CA_OP_POLL, "77x", &r);
	ck_assert_int_eq(r.outcome, CA_MISCONFIGURED);
	ck_assert_ptr_nonnull(strstr(r.cause, "not a certsrv request id"));
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_certsrv_ca_down_unreachable)
{
	struct ca_instance *inst = instance(0, 1);
	struct result r;

	srv_mode = SRV_DOWN;
	run_call(inst, CA_OP_ENROLL, NULL, &r);
	ck_assert_int_eq(r.outcome, CA_UNREACHABLE);
	ck_assert_msg(strstr(r.cause, "enroll failed: CA service not running: "
	                              "\"The Certification Authority Service "
	                              "has not been started.\"") == r.cause,
	              "%s", r.cause);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_certsrv_failover_and_remember)
{
	struct ca_instance *inst = instance(2, 1);
	struct result r;

	run_call(inst, CA_OP_ENROLL, NULL, &r);
	ck_assert_msg(r.outcome == CA_ISSUED, "%s", r.cause);
	ck_assert_int_eq(log_warn_count, 2);
	ck_assert_ptr_nonnull(strstr(log_all, "CA failover: curl 7 "));
	/* The URL that answered is used first next time. */
	run_call(inst, CA_OP_ENROLL, NULL, &r);
	ck_assert_int_eq(r.outcome, CA_ISSUED);
	ck_assert_int_eq(log_warn_count, 2);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_certsrv_all_dead_unreachable)
{
	struct ca_instance *inst = instance(2, 0);
	struct result r;

	run_call(inst, CA_OP_ENROLL, NULL, &r);
	ck_assert_int_eq(r.outcome, CA_UNREACHABLE);
	ck_assert_uint_eq(r.retry_after, 42);
	ck_assert_msg(strstr(r.cause, "enroll failed: curl 7 \"Couldn't "
	                              "connect to server\" (") == r.cause,
	              "%s", r.cause);
	ck_assert_ptr_nonnull(strstr(r.cause, " while submitting request"));
	ck_assert_ptr_nonnull(strstr(r.url, "/certsrv/certfnsh.asp"));
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_certsrv_cacerts_unreachable)
{
	struct ca_instance *inst = instance(1, 0);
	struct result r;

	/* No background fetch: the call fetches for itself. */
	run_call(inst, CA_OP_CACERTS, NULL, &r);
	ck_assert_int_eq(r.outcome, CA_UNREACHABLE);
	ck_assert_msg(strstr(r.cause, "cacerts failed: curl 7 ") == r.cause,
	              "%s", r.cause);
	ck_assert_ptr_nonnull(
	    strstr(r.cause, "while reading the CA renewal index"));
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_certsrv_background_failure_answers_cacerts)
{
	struct ca_instance *inst = instance(1, 0);
	struct timeval tv = {0, 300000};
	struct result r;

	/* start() runs on this loop as on worker 0; its first fetch fails
	 * and cacerts then answers at once with that cause. */
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

static Suite *
ca_certsrv_suite(void)
{
	Suite *s = suite_create("ca_certsrv");
	TCase *conf = tcase_create("configure");
	TCase *calls = tcase_create("calls");

	tcase_add_test(conf, test_certsrv_configure_ok);
	tcase_add_test(conf, test_certsrv_configure_errors_named);
	tcase_add_test(conf, test_certsrv_password_never_in_errors);
	suite_add_tcase(s, conf);
	tcase_add_checked_fixture(calls, setup, teardown);
	tcase_set_timeout(calls, 30);
	tcase_add_test(calls, test_certsrv_enroll_issued_key_checked);
	tcase_add_test(calls, test_certsrv_enroll_pending_then_poll);
	tcase_add_test(calls, test_certsrv_ca_down_unreachable);
	tcase_add_test(calls, test_certsrv_failover_and_remember);
	tcase_add_test(calls, test_certsrv_all_dead_unreachable);
	tcase_add_test(calls, test_certsrv_cacerts_unreachable);
	tcase_add_test(calls, test_certsrv_background_failure_answers_cacerts);
	suite_add_tcase(s, calls);
	return s;
}

int
main(void)
{
	EVP_PKEY_CTX *kctx;
	SRunner *sr;
	FILE *fp;
	int failed;

	evthread_use_pthreads();
	ca_set_log_hook(log_hook);
	if (mkdtemp(tmpdir) == NULL)
		return EXIT_FAILURE;
	snprintf(pass_file, sizeof(pass_file), "%s/ca.pass", tmpdir);
	if ((fp = fopen(pass_file, "w")) == NULL)
		return EXIT_FAILURE;
	fputs("s3cret\n", fp);
	fclose(fp);
	kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	EVP_PKEY_keygen_init(kctx);
	EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kctx, NID_X9_62_prime256v1);
	EVP_PKEY_keygen(kctx, &csr_key);
	EVP_PKEY_keygen(kctx, &other_key);
	EVP_PKEY_CTX_free(kctx);
	csr = X509_REQ_new();
	X509_REQ_set_pubkey(csr, csr_key);
	X509_REQ_sign(csr, csr_key, EVP_sha256());
	sr = srunner_create(ca_certsrv_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	X509_REQ_free(csr);
	EVP_PKEY_free(csr_key);
	EVP_PKEY_free(other_key);
	unlink(pass_file);
	{
		char path[300];

		snprintf(path, sizeof(path), "%s/empty.pass", tmpdir);
		unlink(path);
	}
	rmdir(tmpdir);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
