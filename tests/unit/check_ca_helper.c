/*
 * check_ca_helper.c: unit tests of the certmonger CA-helper backend.  Each
 * test configures an instance through ca_instance_new() with the scripted
 * helper tests/fakes/helpers/fake-submit.sh (its first argument picks the
 * answer) and drives calls on a real event_base through
 * ca_instance_start(), the way ra does.  main() makes the keys, CSRs and
 * certificates once, before check forks the tests.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_plugins/ca.h"
#include "core/error.h"
#include "core/log.h"

/* Made once by main() before the forks, shared read-only by the tests. */
static char tmpdir[] = "/tmp/check_ca_helper.XXXXXX";
static char script[PATH_MAX];  /* the fake helper, absolute */
static char fakedir[PATH_MAX]; /* its directory */
static char state[PATH_MAX];   /* FAKE_STATE shared by the tests */
static EVP_PKEY *csr_key;
static X509_REQ *csr;  /* CN=dev1.example.test with SANs */
static X509 *certs[3]; /* self-signed: root, other root, issuing */
static char cert_pem[3][128];

/* Every line the log hook saw, per test (each runs in its own process). */
static char log_all[65536];
static size_t log_used;

/* What one call ended in; the call itself is freed by run_call(). */
struct result {
	enum ca_outcome outcome;
	STACK_OF(X509) *chain; /* taken from the call */
	char cookie[CA_COOKIE_MAX];
	unsigned int retry_after;
	char cause[CA_CAUSE_MAX];
	char hint[CA_HINT_MAX];
	long ms;   /* from start to completion */
	int early; /* completed before ca_instance_start returned */
};

struct done_state {
	int count;
	int returned;
	int early;
	struct event_base *base;
};

static void
log_hook(const struct ca_call *call, enum core_log_level level,
         const char *component, const char *hint, const char *message)
{
	int n;

	(void)call;
	n = snprintf(log_all + log_used, sizeof(log_all) - log_used,
	             "[%d] %s: %s%s%s\n", (int)level, component, message,
	             hint != NULL ? ", hint: " : "", hint != NULL ? hint : "");
	if (n > 0 && (size_t)n < sizeof(log_all) - log_used)
		log_used += (size_t)n;
}

static void
reset_log(void)
{
	log_all[0] = '\0';
	log_used = 0;
}

/* --- fixtures ------------------------------------------------------------- */

/*
 * Check's assertions only work inside a test; the fixtures are made in
 * main() before any test runs, so they fail this way.
 */
#define FIX(cond)                                                              \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: fixture failed: %s\n",         \
			        __FILE__, __LINE__, #cond);                    \
			exit(EXIT_FAILURE);                                    \
		}                                                              \
	} while (0)

static X509 *
self_signed(const char *cn, int ca)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_EXTENSION *ext;
	X509_NAME *name;
	X509V3_CTX v3;
	X509 *x = X509_new();

	FIX(key);
	FIX((X509_set_version(x, X509_VERSION_3)) == 1);
	FIX((ASN1_INTEGER_set(X509_get_serialNumber(x), 4711)) == 1);
	name = X509_get_subject_name(x);
	FIX((X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                                (const unsigned char *)cn, -1, -1,
	                                0)) == 1);
	FIX((X509_set_issuer_name(x, name)) == 1);
	FIX(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	FIX(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	FIX((X509_set_pubkey(x, key)) == 1);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	                          ca ? "critical,CA:TRUE" : "CA:FALSE");
	FIX(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	FIX((X509_sign(x, key, EVP_sha256())) > 0);
	EVP_PKEY_free(key);
	return x;
}

static void
write_pem(const char *path, X509 *x)
{
	FILE *fp = fopen(path, "w");

	FIX(fp);
	FIX((PEM_write_X509(fp, x)) == 1);
	fclose(fp);
}

/* Writes an executable shell script at path with the given body. */
static void
write_script(const char *path, const char *body)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "#!/bin/sh\n%s", body);
	fclose(fp);
	ck_assert_int_eq(chmod(path, 0755), 0);
}

static void
make_fixtures(void)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *ext;
	char *real;

	FIX(mkdtemp(tmpdir));
	real = realpath("tests/fakes/helpers/fake-submit.sh", NULL);
	FIX(real != NULL);
	snprintf(script, sizeof(script), "%s", real);
	snprintf(fakedir, sizeof(fakedir), "%s", real);
	*strrchr(fakedir, '/') = '\0';
	free(real);
	snprintf(state, sizeof(state), "%s/state", tmpdir);
	FIX((mkdir(state, 0700)) == 0);
	csr_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	FIX(csr_key);
	csr = X509_REQ_new();
	FIX((X509_NAME_add_entry_by_txt(
	        X509_REQ_get_subject_name(csr), "CN", MBSTRING_ASC,
	        (const unsigned char *)"dev1.example.test", -1, -1, 0)) == 1);
	FIX((X509_REQ_set_pubkey(csr, csr_key)) == 1);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
	                          "DNS:dev1.example.test,DNS:www.example.test,"
	                          "IP:192.0.2.7,email:ops@example.test");
	FIX(ext);
	sk_X509_EXTENSION_push(exts, ext);
	FIX((X509_REQ_add_extensions(csr, exts)) == 1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	FIX((X509_REQ_sign(csr, csr_key, EVP_sha256())) > 0);
	certs[0] = self_signed("Helper Root A", 1);
	certs[1] = self_signed("Helper Other Root", 1);
	certs[2] = self_signed("Helper Issuing CA", 1);
	for (int i = 0; i < 3; i++) {
		snprintf(cert_pem[i], sizeof(cert_pem[i]), "%s/cert%d.pem",
		         tmpdir, i);
		write_pem(cert_pem[i], certs[i]);
	}
}

/* Removes tmpdir and everything in it (two levels). */
static void
remove_tree(const char *dir)
{
	struct dirent *de;
	char path[PATH_MAX * 2];
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) != 0)
			remove_tree(path);
	}
	closedir(d);
	rmdir(dir);
}

static void
remove_fixtures(void)
{
	remove_tree(tmpdir);
	X509_REQ_free(csr);
	EVP_PKEY_free(csr_key);
	for (int i = 0; i < 3; i++)
		X509_free(certs[i]);
}

/* --- driving the backend -------------------------------------------------- */

/*
 * Returns a new instance from JSON text (printf-style), or NULL with err
 * filled.  conf_dir is the fake helper's directory.
 */
static struct ca_instance *conf_new(struct core_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static struct ca_instance *
conf_new(struct core_err *err, const char *fmt, ...)
{
	struct ca_instance *inst;
	json_error_t jerr;
	char text[8192];
	json_t *conf;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	conf = json_loads(text, 0, &jerr);
	ck_assert_msg(conf != NULL, "test JSON: %s: %s", jerr.text, text);
	memset(err, 0, sizeof(*err));
	inst = ca_instance_new(conf, fakedir, err);
	json_decref(conf);
	return inst;
}

/* An instance running the fake helper in mode, plus extra JSON members
 * (",\"timeout\": 1" and the like). */
static struct ca_instance *
fake_new(const char *mode, const char *extra)
{
	struct ca_instance *inst;
	struct core_err err;

	inst = conf_new(&err,
	                "{\"backend\": \"helper\", \"command\": [\"%s\", "
	                "\"%s\"], \"env\": {\"FAKE_STATE\": \"%s\"}%s}",
	                script, mode, state, extra != NULL ? extra : "");
	ck_assert_msg(inst != NULL, "configure: %s: %s", err.key, err.text);
	return inst;
}

static void
on_done(struct ca_call *call, void *arg)
{
	struct done_state *st = arg;

	(void)call;
	st->count++;
	if (!st->returned)
		st->early = 1;
	event_base_loopbreak(st->base);
}

static void
stop_loop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static long
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000L + tv.tv_usec / 1000L;
}

/*
 * Runs one call of op on inst on a fresh loop until it completes, then
 * runs the loop empty (the child reaped, every event freed).  renew is the
 * REENROLL certificate, cookie the POLL cookie.  Fills *res.
 */
static void
run_call_full(struct ca_instance *inst, enum ca_operation op, X509 *renew,
              const char *cookie, struct result *res)
{
	struct event_base *base = event_base_new();
	struct done_state st;
	struct ca_call *call = ca_call_new();
	struct timeval limit = {30, 0};
	struct event *guard;
	long start;

	ck_assert_ptr_nonnull(base);
	ck_assert_ptr_nonnull(call);
	memset(&st, 0, sizeof(st));
	memset(res, 0, sizeof(*res));
	st.base = base;
	call->op = op;
	call->base = base;
	call->rid = "0123456789abcdef";
	call->label = "t-helper";
	call->csr = op == CA_OP_CACERTS || op == CA_OP_HEALTH ? NULL : csr;
	call->renew_cert = renew;
	call->cookie = cookie;
	start = now_ms();
	ca_instance_start(inst, call, on_done, &st);
	st.returned = 1;
	/* A stuck call fails the test instead of hanging it. */
	guard = evtimer_new(base, stop_loop, base);
	ck_assert_ptr_nonnull(guard);
	evtimer_add(guard, &limit);
	event_base_dispatch(base);
	event_free(guard);
	ck_assert_int_eq(st.count, 1);
	res->ms = now_ms() - start;
	res->early = st.early;
	res->outcome = call->result.outcome;
	res->chain = call->result.chain;
	call->result.chain = NULL;
	snprintf(res->cookie, sizeof(res->cookie), "%s", call->result.cookie);
	res->retry_after = call->result.retry_after;
	snprintf(res->cause, sizeof(res->cause), "%s", call->result.cause);
	snprintf(res->hint, sizeof(res->hint), "%s", call->result.hint);
	ca_call_free(call);
	/* Nothing may be left on the loop: the run is over. */
	ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	event_base_free(base);
}

static void
run_call(struct ca_instance *inst, enum ca_operation op, struct result *res)
{
	run_call_full(inst, op, NULL, NULL, res);
}

/* Asserts that this process has no child left, not even a zombie. */
static void
assert_no_children(void)
{
	int status;

	errno = 0;
	ck_assert_int_eq(waitpid(-1, &status, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
}

/* Returns 1 when pid is gone or a zombie of someone else (not running). */
static int
pid_dead(long pid)
{
	char path[64], buf[512], *p;
	FILE *fp;
	int dead = 1;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return 1;
	if (fgets(buf, sizeof(buf), fp) != NULL &&
	    (p = strrchr(buf, ')')) != NULL && p[1] == ' ')
		dead = p[2] == 'Z' || p[2] == 'X';
	fclose(fp);
	return dead;
}

static long
read_pid(const char *name)
{
	char path[PATH_MAX + 64];
	long pid = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", state, name);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	if (fscanf(fp, "%ld", &pid) != 1)
		pid = -1;
	fclose(fp);
	return pid;
}

/* Removes a file of the shared state directory, left by an earlier test. */
static void
unlink_state(const char *name)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", state, name);
	(void)unlink(path);
}

static void
result_cleanup(struct result *res)
{
	sk_X509_pop_free(res->chain, X509_free);
	res->chain = NULL;
}

/* Returns the CN of x (static buffer). */
static const char *
cn_of(X509 *x)
{
	static char cn[256];

	cn[0] = '\0';
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
	                          sizeof(cn));
	return cn;
}

/* Asserts an ISSUED answer whose first certificate is for the CSR. */
static void
assert_issued_for_csr(const struct result *res, int ncerts)
{
	X509 *leaf;

	ck_assert_msg(res->outcome == CA_ISSUED, "outcome %s: %s",
	              ca_outcome_name(res->outcome), res->cause);
	ck_assert_ptr_nonnull(res->chain);
	ck_assert_int_eq(sk_X509_num(res->chain), ncerts);
	leaf = sk_X509_value(res->chain, 0);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(leaf), csr_key), 1);
	ck_assert_str_eq(cn_of(leaf), "dev1.example.test");
}

/* --- configuration -------------------------------------------------------- */

/* Configures from JSON and expects failure naming key, text containing
 * want. */
static void
expect_conf_error(const char *key, const char *want, const char *json)
{
	struct ca_instance *inst;
	struct core_err err;

	inst = conf_new(&err, "%s", json);
	ck_assert_msg(inst == NULL, "accepted: %s", json);
	ck_assert_str_eq(err.key, key);
	ck_assert_msg(strstr(err.text, want) != NULL, "\"%s\" lacks \"%s\"",
	              err.text, want);
}

START_TEST(test_helper_conf_unknown_key)
{
	char json[8192];

	snprintf(json, sizeof(json),
	         "{\"backend\": \"helper\", \"command\": [\"%s\"], "
	         "\"colour\": \"blue\"}",
	         script);
	expect_conf_error("colour", "unknown key \"colour\"", json);
}
END_TEST

START_TEST(test_helper_conf_command_checked)
{
	char json[8192];

	expect_conf_error("command", "missing \"command\"",
	                  "{\"backend\": \"helper\"}");
	expect_conf_error(
	    "command", "must be an array",
	    "{\"backend\": \"helper\", \"command\": \"/bin/true\"}");
	expect_conf_error("command", "must be an array",
	                  "{\"backend\": \"helper\", \"command\": []}");
	expect_conf_error("command.1", "must be a string",
	                  "{\"backend\": \"helper\", \"command\": "
	                  "[\"/bin/true\", 5]}");
	expect_conf_error("command.0", "No such file",
	                  "{\"backend\": \"helper\", \"command\": "
	                  "[\"/nonexistent/helper\"]}");
	snprintf(json, sizeof(json),
	         "{\"backend\": \"helper\", \"command\": [\"%s\"]}",
	         cert_pem[0]);
	expect_conf_error("command.0", "not an executable file", json);
	expect_conf_error("command.0", "not an executable file",
	                  "{\"backend\": \"helper\", \"command\": [\"/tmp\"]}");
}
END_TEST

START_TEST(test_helper_conf_relative_command)
{
	struct ca_instance *inst;
	struct result res;
	struct core_err err;

	/* Relative to the configuration directory (here: the fake's). */
	inst = conf_new(&err,
	                "{\"backend\": \"helper\", \"command\": "
	                "[\"fake-submit.sh\", \"issue\"], \"env\": "
	                "{\"FAKE_STATE\": \"%s\"}}",
	                state);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	run_call(inst, CA_OP_ENROLL, &res);
	assert_issued_for_csr(&res, 1);
	result_cleanup(&res);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_conf_env_checked)
{
	char json[8192];

	snprintf(json, sizeof(json),
	         "{\"backend\": \"helper\", \"command\": [\"%s\"], "
	         "\"env\": {\"1BAD\": \"x\"}}",
	         script);
	expect_conf_error("env.1BAD", "not a variable name", json);
	snprintf(json, sizeof(json),
	         "{\"backend\": \"helper\", \"command\": [\"%s\"], "
	         "\"env\": {\"CERTMONGER_CSR\": \"x\"}}",
	         script);
	expect_conf_error("env.CERTMONGER_CSR", "set by estrad", json);
	snprintf(json, sizeof(json),
	         "{\"backend\": \"helper\", \"command\": [\"%s\"], "
	         "\"env\": {\"X\": 5}}",
	         script);
	expect_conf_error("env.X", "must be a string", json);
	snprintf(json, sizeof(json),
	         "{\"backend\": \"helper\", \"command\": [\"%s\"], "
	         "\"env\": [\"X=1\"]}",
	         script);
	expect_conf_error("env", "must be an object", json);
}
END_TEST

START_TEST(test_helper_conf_numbers_and_strings)
{
	static const struct {
		const char *member, *key, *want;
	} cases[] = {
	    {"\"timeout\": 0", "timeout", "from 1 to 3600"},
	    {"\"timeout\": \"5\"", "timeout", "not a string"},
	    {"\"timeout\": 3601", "timeout",
	     "must be an integer from 1 to 3600"},
	    {"\"retry_after\": 0", "retry_after", "from 1 to"},
	    {"\"max_output\": 10", "max_output", "from 1024"},
	    {"\"roots_refresh\": 5", "roots_refresh", "from 60"},
	    {"\"profile\": \"\"", "profile", "non-empty"},
	    {"\"profile\": 7", "profile", "must be a string"},
	    {"\"nickname\": \"a\\nb\"", "nickname", "control characters"},
	    {"\"max_processes\": 0", "max_processes", "from 1 to 1024"},
	    {"\"max_processes\": 1025", "max_processes", "from 1 to 1024"},
	    {"\"max_processes\": 1.5", "max_processes", "integer"},
	    {"\"max_queued\": -1", "max_queued", "from 0 to 10000"},
	    {"\"max_queued\": 10001", "max_queued", "from 0 to 10000"},
	    {"\"roots_retry\": -1", "roots_retry", "from 0 to 3600"},
	    {"\"roots_retry\": 3601", "roots_retry", "from 0 to 3600"},
	};
	char json[8192];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(json, sizeof(json),
		         "{\"backend\": \"helper\", \"command\": [\"%s\"], %s}",
		         script, cases[i].member);
		expect_conf_error(cases[i].key, cases[i].want, json);
	}
}
END_TEST

START_TEST(test_helper_conf_full_accepted)
{
	struct ca_instance *inst;
	struct core_err err;

	inst = conf_new(&err,
	                "{\"backend\": \"helper\", \"command\": [\"%s\", "
	                "\"issue\"], \"env\": {\"FAKE_STATE\": \"%s\", "
	                "\"CERTMONGER_LOCAL_CA_DIR\": \"/tmp\"}, \"timeout\": "
	                "10, \"profile\": \"caIPAserviceCert\", \"nickname\": "
	                "\"IPA\", \"retry_after\": 60, \"max_output\": 4096, "
	                "\"roots_refresh\": 600, \"max_processes\": 2, "
	                "\"max_queued\": 0, \"roots_retry\": 0}",
	                script, state);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	ck_assert_str_eq(ca_instance_backend_name(inst), "helper");
	ca_instance_free(inst);
}
END_TEST

/* --- exit statuses -------------------------------------------------------- */

/* Reads $state/env.out into buf, after a new line, and removes it. */
static void
read_env_out(char *buf, size_t len)
{
	char path[PATH_MAX + 16];
	size_t n;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/env.out", state);
	fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	/* A leading new line lets every variable be found as "\nNAME=". */
	buf[0] = '\n';
	n = fread(buf + 1, 1, len - 2, fp);
	buf[n + 1] = '\0';
	fclose(fp);
	unlink(path);
}

START_TEST(test_helper_exit0_pem_issued)
{
	struct ca_instance *inst = fake_new("issue", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	assert_issued_for_csr(&res, 1);
	ck_assert_int_eq(res.early, 0);
	result_cleanup(&res);
	assert_no_children();
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit0_pkcs7_leaf_first)
{
	struct ca_instance *inst = fake_new("issue-p7", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	assert_issued_for_csr(&res, 2);
	ck_assert_str_eq(cn_of(sk_X509_value(res.chain, 1)), "Fake Helper CA");
	result_cleanup(&res);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit0_der_issued)
{
	struct ca_instance *inst = fake_new("issue-der", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	assert_issued_for_csr(&res, 1);
	result_cleanup(&res);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit0_wrong_key_refused)
{
	struct ca_instance *inst = fake_new("wrong-key", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_MISCONFIGURED);
	ck_assert_ptr_null(res.chain);
	ck_assert_ptr_nonnull(strstr(res.cause, "no certificate carries"));
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit0_garbage_misconfigured)
{
	struct ca_instance *inst = fake_new("garbage", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_MISCONFIGURED);
	ck_assert_str_eq(res.cause, "enroll failed: helper exit 0 ISSUED "
	                            "without a readable certificate");
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit1_wait_cookie)
{
	struct ca_instance *inst = fake_new("wait", ", \"retry_after\": 77");
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_PENDING);
	ck_assert_str_eq(res.cookie, "fake-cookie-1");
	ck_assert_uint_eq(res.retry_after, 77);
	ck_assert_str_eq(res.cause, "enroll pending: helper exit 1 WAIT");
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit1_without_cookie)
{
	struct ca_instance *inst = fake_new("wait-empty", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_MISCONFIGURED);
	ck_assert_str_eq(res.cookie, "");
	ck_assert_ptr_nonnull(
	    strstr(res.cause, "exit 1 WAIT without a cookie"));
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit5_delay_then_poll_issued)
{
	struct ca_instance *inst = fake_new("delay", NULL);
	char cookie[CA_COOKIE_MAX];
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_msg(res.outcome == CA_PENDING, "%s", res.cause);
	ck_assert_uint_eq(res.retry_after, 2);
	ck_assert_int_eq(strncmp(res.cookie, "req-", 4), 0);
	ck_assert_ptr_null(strchr(res.cookie, '\n'));
	ck_assert_str_eq(res.cause, "enroll pending: helper exit 5 "
	                            "WAIT_WITH_DELAY, retry after 2 s");
	snprintf(cookie, sizeof(cookie), "%s", res.cookie);
	run_call_full(inst, CA_OP_POLL, NULL, cookie, &res);
	assert_issued_for_csr(&res, 1);
	result_cleanup(&res);
	/* The fake CA forgot the request once it was issued. */
	run_call_full(inst, CA_OP_POLL, NULL, cookie, &res);
	ck_assert_int_eq(res.outcome, CA_REJECTED);
	ck_assert_ptr_nonnull(strstr(res.cause, "unknown cookie"));
	assert_no_children();
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit5_delay_only_submits_again)
{
	struct ca_instance *inst = fake_new("env", NULL);
	struct ca_instance *delay = fake_new("delay-only", NULL);
	char buf[65536];
	struct result res;

	run_call(delay, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_PENDING);
	ck_assert_str_eq(res.cookie, "");
	ck_assert_uint_eq(res.retry_after, 3);
	/* A poll without a cookie is a SUBMIT, as certmonger does it. */
	run_call_full(inst, CA_OP_POLL, NULL, "", &res);
	assert_issued_for_csr(&res, 1);
	result_cleanup(&res);
	read_env_out(buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\nCERTMONGER_OPERATION=SUBMIT\n"));
	ck_assert_ptr_null(strstr(buf, "CERTMONGER_CA_COOKIE"));
	ca_instance_free(delay);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit5_bad_delay)
{
	struct ca_instance *inst = fake_new("delay-bad", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_MISCONFIGURED);
	ck_assert_ptr_nonnull(strstr(res.cause, "without a delay in seconds"));
	ck_assert_ptr_nonnull(strstr(res.cause, "\"soon\""));
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit2_rejected)
{
	struct ca_instance *inst = fake_new("reject", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_REJECTED);
	ck_assert_str_eq(res.cause, "enroll refused by CA: helper exit 2 "
	                            "REJECTED \"request denied by fake "
	                            "policy\"");
	/* ra logs the refusal from the result; the backend's own line is
	 * debug only (issue 10: one line per failed request). */
	ck_assert_ptr_nonnull(strstr(log_all, "[7] ca.helper: enroll refused"));
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit3_unreachable_logged)
{
	struct ca_instance *inst =
	    fake_new("unreachable", ", \"retry_after\": 120");
	char want[PATH_MAX + 128];
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_UNREACHABLE);
	ck_assert_uint_eq(res.retry_after, 120);
	ck_assert_str_eq(res.cause,
	                 "enroll failed: helper exit 3 UNREACHABLE \"Server at "
	                 "https://ca.invalid/ca failed request, will retry: "
	                 "4301 (RPC failed).\"");
	/* stderr goes to the log, never to the client. */
	ck_assert_ptr_null(strstr(res.cause, "no route"));
	/* ra logs the failure from the result; the backend's own line is
	 * debug only (issue 10: one line per failed request). */
	ck_assert_ptr_nonnull(strstr(log_all, "[7] ca.helper: enroll failed: "
	                                      "helper exit 3 UNREACHABLE"));
	snprintf(want, sizeof(want),
	         "helper: %s, operation: SUBMIT, exit: 3, "
	         "ms: ",
	         script);
	ck_assert_msg(strstr(log_all, want) != NULL, "log: %s", log_all);
	ck_assert_ptr_nonnull(
	    strstr(log_all,
	           "stderr: \"fake-submit: connect to ca.invalid: no route\""));
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit4_unconfigured)
{
	struct ca_instance *inst = fake_new("unconfigured", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_MISCONFIGURED);
	ck_assert_str_eq(res.cause, "enroll failed: helper exit 4 UNCONFIGURED "
	                            "\"Unable to read signing request.\"");
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit6_unsupported)
{
	struct ca_instance *inst = fake_new("unsupported", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_UNSUPPORTED);
	ck_assert_str_eq(res.cause, "enroll not supported: helper exit 6 "
	                            "OPERATION_NOT_SUPPORTED");
	run_call(inst, CA_OP_CACERTS, &res);
	ck_assert_int_eq(res.outcome, CA_UNSUPPORTED);
	ck_assert_ptr_null(res.chain);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exit7_undefined)
{
	struct ca_instance *inst = fake_new("exit7", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_MISCONFIGURED);
	ck_assert_str_eq(res.cause, "enroll failed: helper exit 7 UNDEFINED "
	                            "\"something undefined happened\"");
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_crash_misconfigured)
{
	struct ca_instance *inst = fake_new("crash", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_MISCONFIGURED);
	ck_assert_str_eq(res.cause, "enroll failed: helper killed by SIGSEGV");
	ck_assert_ptr_nonnull(strstr(log_all, "exit: SIGSEGV"));
	ck_assert_ptr_nonnull(strstr(log_all, "stderr: \"about to crash\""));
	assert_no_children();
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_timeout_killed_no_zombie)
{
	struct ca_instance *inst = fake_new("hang", ", \"timeout\": 1");
	struct result res;
	long helper_pid, sleep_pid;
	int i;

	unlink_state("hang.pid");
	unlink_state("sleep.pid");
	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_MISCONFIGURED);
	ck_assert_str_eq(res.cause,
	                 "enroll failed: helper timed out after 1 s, killed");
	ck_assert_msg(res.ms >= 900 && res.ms < 5000, "took %ld ms", res.ms);
	ck_assert_ptr_nonnull(strstr(log_all, "exit: killed at the timeout"));
	/* The helper was reaped (no zombie of ours), and its own child, in
	 * its process group, was killed with it. */
	assert_no_children();
	helper_pid = read_pid("hang.pid");
	sleep_pid = read_pid("sleep.pid");
	ck_assert_int_gt(helper_pid, 0);
	ck_assert_int_gt(sleep_pid, 0);
	ck_assert(pid_dead(helper_pid));
	for (i = 0; i < 50 && !pid_dead(sleep_pid); i++)
		usleep(20000);
	ck_assert_msg(pid_dead(sleep_pid), "the helper's sleep still runs");
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_huge_output_capped)
{
	struct ca_instance *inst = fake_new("huge", NULL);
	struct result res;

	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_MISCONFIGURED);
	ck_assert_str_eq(res.cause, "enroll failed: helper exit 0 ISSUED but "
	                            "its output exceeds max_output (65536 "
	                            "bytes)");
	assert_no_children();
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_exec_failure_deferred)
{
	char path[PATH_MAX + 16];
	struct ca_instance *inst;
	struct result res;
	struct core_err err;

	/* Executable, but its interpreter does not exist: exec fails. */
	snprintf(path, sizeof(path), "%s/badinterp", tmpdir);
	{
		FILE *fp = fopen(path, "w");

		ck_assert_ptr_nonnull(fp);
		fputs("#!/nonexistent/interpreter\n", fp);
		fclose(fp);
		ck_assert_int_eq(chmod(path, 0755), 0);
	}
	inst = conf_new(
	    &err, "{\"backend\": \"helper\", \"command\": [\"%s\"]}", path);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_MISCONFIGURED);
	ck_assert_int_eq(res.early, 0);
	ck_assert_ptr_nonnull(strstr(res.cause, "cannot start helper"));
	ck_assert_ptr_nonnull(strstr(res.cause, "No such file"));
	ca_instance_free(inst);
}
END_TEST

/* --- environment ---------------------------------------------------------- */

START_TEST(test_helper_env_explicit_no_inheritance)
{
	struct ca_instance *inst;
	char buf[65536];
	struct result res;

	/* Secrets of estrad's own environment must not reach the helper. */
	ck_assert_int_eq(setenv("ESTRAD_TEST_SECRET", "hunter2", 1), 0);
	ck_assert_int_eq(setenv("HOME", "/root/secret-home", 1), 0);
	inst = fake_new("env", ", \"profile\": \"caIPAserviceCert\", "
	                       "\"nickname\": \"IPA\"");
	run_call(inst, CA_OP_ENROLL, &res);
	assert_issued_for_csr(&res, 1);
	result_cleanup(&res);
	read_env_out(buf, sizeof(buf));
	ck_assert_ptr_null(strstr(buf, "hunter2"));
	ck_assert_ptr_null(strstr(buf, "ESTRAD_TEST_SECRET"));
	ck_assert_ptr_null(strstr(buf, "secret-home"));
	ck_assert_ptr_nonnull(
	    strstr(buf, "PATH=/usr/bin:/bin:/usr/sbin:/sbin\n"));
	ck_assert_ptr_nonnull(strstr(buf, "CERTMONGER_OPERATION=SUBMIT\n"));
	ck_assert_ptr_nonnull(strstr(
	    buf, "CERTMONGER_CSR=-----BEGIN CERTIFICATE REQUEST-----\n"));
	ck_assert_ptr_nonnull(
	    strstr(buf, "-----END CERTIFICATE REQUEST-----\n"));
	ck_assert_ptr_nonnull(
	    strstr(buf, "CERTMONGER_CA_PROFILE=caIPAserviceCert\n"));
	ck_assert_ptr_nonnull(strstr(buf, "CERTMONGER_CA_NICKNAME=IPA\n"));
	ck_assert_ptr_nonnull(
	    strstr(buf, "CERTMONGER_REQ_SUBJECT=CN=dev1.example.test\n"));
	ck_assert_ptr_nonnull(strstr(buf,
	                             "CERTMONGER_REQ_HOSTNAME="
	                             "dev1.example.test\nwww.example.test\n"));
	ck_assert_ptr_nonnull(
	    strstr(buf, "CERTMONGER_REQ_IP_ADDRESS=192.0.2.7\n"));
	ck_assert_ptr_nonnull(
	    strstr(buf, "CERTMONGER_REQ_EMAIL=ops@example.test\n"));
	ck_assert_ptr_nonnull(strstr(buf, "CERTMONGER_KEY_TYPE=EC\n"));
	ck_assert_ptr_nonnull(strstr(buf, "CERTMONGER_SPKI=MFkw"));
	ck_assert_ptr_nonnull(strstr(buf, "FAKE_STATE="));
	ck_assert_ptr_null(strstr(buf, "CERTMONGER_CA_COOKIE"));
	ck_assert_ptr_null(strstr(buf, "CERTMONGER_CERTIFICATE"));
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_env_poll_and_reenroll)
{
	struct ca_instance *inst = fake_new("env", NULL);
	char buf[65536];
	struct result res;

	run_call_full(inst, CA_OP_POLL, NULL, "state=approve&requestId=7",
	              &res);
	assert_issued_for_csr(&res, 1);
	result_cleanup(&res);
	read_env_out(buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "CERTMONGER_OPERATION=POLL\n"));
	ck_assert_ptr_nonnull(
	    strstr(buf, "CERTMONGER_CA_COOKIE=state=approve&requestId=7\n"));
	run_call_full(inst, CA_OP_REENROLL, certs[2], NULL, &res);
	assert_issued_for_csr(&res, 1);
	result_cleanup(&res);
	read_env_out(buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "CERTMONGER_OPERATION=SUBMIT\n"));
	ck_assert_ptr_nonnull(strstr(
	    buf, "CERTMONGER_CERTIFICATE=-----BEGIN CERTIFICATE-----\n"));
	ca_instance_free(inst);
}
END_TEST

/* --- cacerts, health, cancel, background ---------------------------------- */

START_TEST(test_helper_cacerts_fetch_roots_cached)
{
	char copy[PATH_MAX + 16], body[1024];
	struct ca_instance *inst;
	struct result res;
	struct core_err err;

	/* A private copy of a roots-only helper, made unusable after the
	 * first call: the second must come from the cache. */
	snprintf(copy, sizeof(copy), "%s/roots-once.sh", tmpdir);
	snprintf(body, sizeof(body),
	         "[ \"$CERTMONGER_OPERATION\" = FETCH-ROOTS ] || exit 6\n"
	         "echo 'Helper Root A'\ncat '%s'\n",
	         cert_pem[0]);
	write_script(copy, body);
	inst = conf_new(
	    &err, "{\"backend\": \"helper\", \"command\": [\"%s\"]}", copy);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	run_call(inst, CA_OP_CACERTS, &res);
	ck_assert_msg(res.outcome == CA_ISSUED, "%s", res.cause);
	ck_assert_int_eq(sk_X509_num(res.chain), 1);
	ck_assert_int_eq(X509_cmp(sk_X509_value(res.chain, 0), certs[0]), 0);
	result_cleanup(&res);
	ck_assert_int_eq(chmod(copy, 0), 0);
	run_call(inst, CA_OP_CACERTS, &res);
	ck_assert_msg(res.outcome == CA_ISSUED, "%s", res.cause);
	ck_assert_int_eq(sk_X509_num(res.chain), 1);
	result_cleanup(&res);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_cacerts_groups_chain_first)
{
	char copy[PATH_MAX + 16], body[4096];
	struct ca_instance *inst;
	struct result res;
	struct core_err err;

	/* Roots, an empty line, other roots, two empty lines (one
	 * separator), the intermediates; CRLF line ends on the way. */
	snprintf(copy, sizeof(copy), "%s/roots-groups.sh", tmpdir);
	snprintf(body, sizeof(body),
	         "printf 'Helper Root A\\r\\n'\ncat '%s'\necho\n"
	         "echo 'Other Trusted Root'\ncat '%s'\necho\necho\n"
	         "echo 'Example Issuing CA'\ncat '%s'\n",
	         cert_pem[0], cert_pem[1], cert_pem[2]);
	write_script(copy, body);
	inst = conf_new(
	    &err, "{\"backend\": \"helper\", \"command\": [\"%s\"]}", copy);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	run_call(inst, CA_OP_CACERTS, &res);
	ck_assert_msg(res.outcome == CA_ISSUED, "%s", res.cause);
	ck_assert_int_eq(sk_X509_num(res.chain), 3);
	ck_assert_str_eq(cn_of(sk_X509_value(res.chain, 0)),
	                 "Helper Issuing CA");
	ck_assert_str_eq(cn_of(sk_X509_value(res.chain, 1)), "Helper Root A");
	ck_assert_str_eq(cn_of(sk_X509_value(res.chain, 2)),
	                 "Helper Other Root");
	result_cleanup(&res);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_cacerts_json_form)
{
	char copy[PATH_MAX + 16], body[4096];
	struct ca_instance *inst;
	struct result res;
	struct core_err err;

	snprintf(copy, sizeof(copy), "%s/roots-json.sh", tmpdir);
	snprintf(body, sizeof(body),
	         "r=$(sed 's/$/\\\\n/' '%s' | tr -d '\\n')\n"
	         "o=$(sed 's/$/\\\\n/' '%s' | tr -d '\\n')\n"
	         "printf '{\"roots\": [{\"nickname\": \"R\", \"certificate\": "
	         "\"%%s\"}], \"other\": [{\"nickname\": \"I\", "
	         "\"certificate\": \"%%s\"}]}\\n' \"$r\" \"$o\"\n",
	         cert_pem[0], cert_pem[2]);
	write_script(copy, body);
	inst = conf_new(
	    &err, "{\"backend\": \"helper\", \"command\": [\"%s\"]}", copy);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	run_call(inst, CA_OP_CACERTS, &res);
	ck_assert_msg(res.outcome == CA_ISSUED, "%s", res.cause);
	ck_assert_int_eq(sk_X509_num(res.chain), 2);
	ck_assert_str_eq(cn_of(sk_X509_value(res.chain, 0)),
	                 "Helper Issuing CA");
	ck_assert_str_eq(cn_of(sk_X509_value(res.chain, 1)), "Helper Root A");
	result_cleanup(&res);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_cacerts_empty_misconfigured)
{
	char copy[PATH_MAX + 16];
	struct ca_instance *inst;
	struct result res;
	struct core_err err;

	snprintf(copy, sizeof(copy), "%s/roots-empty.sh", tmpdir);
	write_script(copy, "echo 'Just a nickname'\n");
	inst = conf_new(
	    &err, "{\"backend\": \"helper\", \"command\": [\"%s\"]}", copy);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	run_call(inst, CA_OP_CACERTS, &res);
	ck_assert_int_eq(res.outcome, CA_MISCONFIGURED);
	ck_assert_ptr_nonnull(strstr(res.cause, "FETCH-ROOTS gave no"));
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_health_identify)
{
	struct ca_instance *inst = fake_new("issue", NULL);
	struct result res;

	run_call(inst, CA_OP_HEALTH, &res);
	ck_assert_msg(res.outcome == CA_ISSUED, "%s", res.cause);
	ck_assert_str_eq(res.cause, "");
	ck_assert_ptr_nonnull(strstr(
	    log_all, "helper identifies as \"Fake helper (estrad tests)\""));
	ca_instance_free(inst);
}
END_TEST

struct cancel_state {
	struct ca_instance *inst;
	struct ca_call *call;
};

static void
cancel_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cancel_state *cs = arg;

	(void)fd;
	(void)what;
	(void)ca_instance_cancel(cs->inst, cs->call);
}

START_TEST(test_helper_cancel_kills_and_reaps)
{
	struct ca_instance *inst = fake_new("hang", ", \"timeout\": 30");
	struct event_base *base = event_base_new();
	struct ca_call *call = ca_call_new();
	struct timeval later = {0, 300000};
	struct cancel_state cs = {inst, call};
	struct done_state st;
	long start = now_ms();

	memset(&st, 0, sizeof(st));
	st.base = base;
	call->op = CA_OP_ENROLL;
	call->base = base;
	call->csr = csr;
	ca_instance_start(inst, call, on_done, &st);
	st.returned = 1;
	event_base_once(base, -1, EV_TIMEOUT, cancel_tick, &cs, &later);
	event_base_dispatch(base);
	ck_assert_int_eq(st.count, 1);
	ck_assert_int_eq(call->result.outcome, CA_CANCELLED);
	/* The killed child is reaped from the loop, which then runs empty. */
	event_base_dispatch(base);
	ck_assert_int_lt(now_ms() - start, 5000);
	assert_no_children();
	ca_call_free(call);
	event_base_free(base);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_start_fetches_roots_stop_reaps)
{
	struct ca_instance *inst = fake_new("issue", NULL);
	struct ca_instance *hang = fake_new("hang", ", \"timeout\": 30");
	struct event_base *base = event_base_new();
	struct timeval brief = {0, 300000};
	struct result res;
	int i;

	/* The background fetch fills the cache... */
	ca_instance_loop_start(inst, base);
	for (i = 0;
	     i < 50 && strstr(log_all, "CA certificates fetched") == NULL;
	     i++) {
		struct timeval step = {0, 100000};

		event_base_once(base, -1, EV_TIMEOUT, stop_loop, base, &step);
		event_base_dispatch(base);
	}
	ck_assert_msg(strstr(log_all, "CA certificates fetched: 1 (Fake "
	                              "Helper CA)") != NULL,
	              "log: %s", log_all);
	ca_instance_loop_stop(inst);
	/* ... which cacerts answers from. */
	run_call(inst, CA_OP_CACERTS, &res);
	ck_assert_msg(res.outcome == CA_ISSUED, "%s", res.cause);
	ck_assert_str_eq(cn_of(sk_X509_value(res.chain, 0)), "Fake Helper CA");
	result_cleanup(&res);
	/* stop kills and reaps a fetch still running: the loop may end. */
	unlink_state("hang.pid");
	ca_instance_loop_start(hang, base);
	event_base_once(base, -1, EV_TIMEOUT, stop_loop, base, &brief);
	event_base_dispatch(base);
	ck_assert_int_gt(read_pid("hang.pid"), 0);
	ca_instance_loop_stop(hang);
	assert_no_children();
	ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	event_base_free(base);
	ca_instance_free(hang);
	ca_instance_free(inst);
}
END_TEST

/* --- concurrency ---------------------------------------------------------- */

/* Completion of one of several calls: the loop stops after the last. */
struct many_state {
	int count, want;
	struct event_base *base;
	long done_ms[16]; /* completion time of each call, by index */
	struct ca_call *calls[16];
	long start;
};

static void
on_done_many(struct ca_call *call, void *arg)
{
	struct many_state *ms = arg;
	int i;

	for (i = 0; i < ms->want; i++)
		if (ms->calls[i] == call)
			ms->done_ms[i] = now_ms() - ms->start;
	if (++ms->count == ms->want)
		event_base_loopbreak(ms->base);
}

/*
 * Starts n calls of op on inst at once on base (ms->calls), without
 * running the loop.
 */
static void
start_many(struct ca_instance *inst, struct event_base *base,
           enum ca_operation op, int n, struct many_state *ms)
{
	int i;

	ck_assert_int_le(n, 16);
	memset(ms, 0, sizeof(*ms));
	ms->want = n;
	ms->base = base;
	ms->start = now_ms();
	for (i = 0; i < n; i++) {
		struct ca_call *call = ca_call_new();

		ck_assert_ptr_nonnull(call);
		call->op = op;
		call->base = base;
		call->rid = "0123456789abcdef";
		call->label = "t-helper";
		call->csr =
		    op == CA_OP_CACERTS || op == CA_OP_HEALTH ? NULL : csr;
		ms->calls[i] = call;
		ca_instance_start(inst, call, on_done_many, ms);
	}
	/* Nothing completes inside ca_instance_start. */
	ck_assert_int_eq(ms->count, 0);
}

/* Runs base until every call of ms completed (at most 30 s). */
static void
wait_many(struct many_state *ms)
{
	struct timeval limit = {30, 0};
	struct event *guard = evtimer_new(ms->base, stop_loop, ms->base);

	ck_assert_ptr_nonnull(guard);
	evtimer_add(guard, &limit);
	event_base_dispatch(ms->base);
	event_free(guard);
	ck_assert_int_eq(ms->count, ms->want);
}

static void
free_many(struct many_state *ms)
{
	int i;

	for (i = 0; i < ms->want; i++)
		ca_call_free(ms->calls[i]);
}

/* Returns the number of lines of the file at path, 0 when it is missing. */
static int
count_lines(const char *path)
{
	FILE *fp = fopen(path, "r");
	int c, n = 0;

	if (fp == NULL)
		return 0;
	while ((c = fgetc(fp)) != EOF)
		if (c == '\n')
			n++;
	fclose(fp);
	return n;
}

START_TEST(test_helper_cacerts_concurrent_one_run)
{
	char copy[PATH_MAX + 16], count[PATH_MAX + 16], body[PATH_MAX * 4];
	struct event_base *base = event_base_new();
	struct ca_instance *inst;
	struct many_state ms;
	struct core_err err;
	int i;

	/* Eight cacerts calls find no roots: one FETCH-ROOTS answers all. */
	snprintf(copy, sizeof(copy), "%s/roots-slow.sh", tmpdir);
	snprintf(count, sizeof(count), "%s/roots-slow.count", tmpdir);
	snprintf(body, sizeof(body),
	         "[ \"$CERTMONGER_OPERATION\" = FETCH-ROOTS ] || exit 6\n"
	         "echo $$ >>'%s'\nsleep 1\n"
	         "echo 'Helper Root A'\ncat '%s'\n",
	         count, cert_pem[0]);
	write_script(copy, body);
	inst = conf_new(
	    &err, "{\"backend\": \"helper\", \"command\": [\"%s\"]}", copy);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	start_many(inst, base, CA_OP_CACERTS, 8, &ms);
	wait_many(&ms);
	for (i = 0; i < 8; i++) {
		struct ca_result *r = &ms.calls[i]->result;

		ck_assert_msg(r->outcome == CA_ISSUED, "call %d: %s: %s", i,
		              ca_outcome_name(r->outcome), r->cause);
		ck_assert_int_eq(sk_X509_num(r->chain), 1);
		ck_assert_int_eq(X509_cmp(sk_X509_value(r->chain, 0), certs[0]),
		                 0);
	}
	ck_assert_int_eq(count_lines(count), 1);
	free_many(&ms);
	ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	assert_no_children();
	event_base_free(base);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_cacerts_failure_remembered)
{
	char copy[PATH_MAX + 16], count[PATH_MAX + 16], body[PATH_MAX * 4];
	struct event_base *base = event_base_new();
	struct ca_instance *inst;
	struct many_state ms;
	struct result res;
	struct core_err err;
	int i;

	snprintf(copy, sizeof(copy), "%s/roots-down.sh", tmpdir);
	snprintf(count, sizeof(count), "%s/roots-down.count", tmpdir);
	snprintf(body, sizeof(body),
	         "echo $$ >>'%s'\nsleep 0.3\necho 'the CA is down'\nexit 3\n",
	         count);
	write_script(copy, body);
	inst = conf_new(&err,
	                "{\"backend\": \"helper\", \"command\": [\"%s\"], "
	                "\"roots_retry\": 2, \"retry_after\": 17}",
	                copy);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	/* Four at once share the one failed run... */
	start_many(inst, base, CA_OP_CACERTS, 4, &ms);
	wait_many(&ms);
	for (i = 0; i < 4; i++) {
		struct ca_result *r = &ms.calls[i]->result;

		ck_assert_int_eq(r->outcome, CA_UNREACHABLE);
		ck_assert_uint_eq(r->retry_after, 17);
		ck_assert_str_eq(r->cause,
		                 "cacerts failed: helper exit 3 UNREACHABLE "
		                 "\"the CA is down\"");
		ck_assert_ptr_nonnull(
		    strstr(r->detail, "operation: FETCH-ROOTS"));
	}
	free_many(&ms);
	ck_assert_int_eq(count_lines(count), 1);
	/* ... and the calls after it get the failure without a run. */
	for (i = 0; i < 3; i++) {
		run_call(inst, CA_OP_CACERTS, &res);
		ck_assert_int_eq(res.outcome, CA_UNREACHABLE);
		ck_assert_uint_eq(res.retry_after, 17);
		ck_assert_ptr_nonnull(strstr(res.cause, "the CA is down"));
		ck_assert_msg(res.ms < 200, "took %ld ms", res.ms);
	}
	ck_assert_int_eq(count_lines(count), 1);
	/* Once roots_retry has passed, the helper runs again. */
	usleep(2100 * 1000);
	run_call(inst, CA_OP_CACERTS, &res);
	ck_assert_int_eq(res.outcome, CA_UNREACHABLE);
	ck_assert_int_eq(count_lines(count), 2);
	assert_no_children();
	event_base_free(base);
	ca_instance_free(inst);
}
END_TEST

/* A SUBMIT that answers WAIT after 1 s and notes how many runs were under
 * way at once, one number a line in its .conc file.  Returns the script. */
static void
write_slow_wait(const char *name, char *path, size_t len, char *conc,
                size_t conclen)
{
	char body[PATH_MAX * 4];

	snprintf(path, len, "%s/%s.sh", tmpdir, name);
	snprintf(conc, conclen, "%s/%s.conc", tmpdir, name);
	snprintf(body, sizeof(body),
	         "touch '%s/%s.run.'$$\n"
	         "ls '%s' | grep -c '^%s\\.run\\.' >>'%s'\n"
	         "sleep 1\nrm -f '%s/%s.run.'$$\n"
	         "echo slow-cookie\nexit 1\n",
	         tmpdir, name, tmpdir, name, conc, tmpdir, name);
	write_script(path, body);
}

/* Returns the largest number in the file at path (one a line), or 0. */
static int
max_in(const char *path)
{
	FILE *fp = fopen(path, "r");
	int n, max = 0;

	if (fp == NULL)
		return 0;
	while (fscanf(fp, "%d", &n) == 1)
		if (n > max)
			max = n;
	fclose(fp);
	return max;
}

START_TEST(test_helper_cap_queues_then_refuses)
{
	char copy[PATH_MAX + 16], conc[PATH_MAX + 16];
	struct event_base *base = event_base_new();
	struct ca_instance *inst;
	struct many_state ms;
	struct core_err err;
	int i, pending = 0, busy = 0;

	/* Two run, two wait, the other two are refused at once. */
	write_slow_wait("capped", copy, sizeof(copy), conc, sizeof(conc));
	inst = conf_new(&err,
	                "{\"backend\": \"helper\", \"command\": [\"%s\"], "
	                "\"max_processes\": 2, \"max_queued\": 2, "
	                "\"retry_after\": 9}",
	                copy);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	start_many(inst, base, CA_OP_ENROLL, 6, &ms);
	wait_many(&ms);
	for (i = 0; i < 6; i++) {
		struct ca_result *r = &ms.calls[i]->result;

		if (r->outcome == CA_PENDING) {
			ck_assert_str_eq(r->cookie, "slow-cookie");
			pending++;
			continue;
		}
		ck_assert_msg(r->outcome == CA_UNREACHABLE, "call %d: %s: %s",
		              i, ca_outcome_name(r->outcome), r->cause);
		ck_assert_str_eq(r->cause, "enroll failed: helper busy: 2 "
		                           "running, 2 waiting");
		ck_assert_uint_eq(r->retry_after, 9);
		ck_assert_ptr_nonnull(strstr(r->hint, "max_processes"));
		ck_assert_ptr_nonnull(
		    strstr(r->detail, "max_processes: 2, max_queued: 2"));
		/* Refused without waiting for a run. */
		ck_assert_msg(ms.done_ms[i] < 500, "refused after %ld ms",
		              ms.done_ms[i]);
		busy++;
	}
	ck_assert_int_eq(pending, 4);
	ck_assert_int_eq(busy, 2);
	ck_assert_int_eq(count_lines(conc), 4);
	ck_assert_int_le(max_in(conc), 2);
	/* The queued two ran after the first two: two rounds of 1 s. */
	for (i = 0; i < 6; i++)
		if (ms.calls[i]->result.outcome == CA_PENDING)
			ck_assert_int_ge(ms.done_ms[i], 900);
	free_many(&ms);
	ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	assert_no_children();
	event_base_free(base);
	ca_instance_free(inst);
}
END_TEST

struct cancel_one {
	struct ca_instance *inst;
	struct many_state *ms;
	int index;
};

static void
cancel_one_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cancel_one *co = arg;

	(void)fd;
	(void)what;
	(void)ca_instance_cancel(co->inst, co->ms->calls[co->index]);
}

START_TEST(test_helper_cancel_queued_call)
{
	char copy[PATH_MAX + 16], conc[PATH_MAX + 16];
	struct event_base *base = event_base_new();
	struct timeval soon = {0, 200000};
	struct ca_instance *inst;
	struct cancel_one co;
	struct many_state ms;
	struct core_err err;

	/* One runs, two wait; the first waiting one is cancelled and the
	 * other still gets its run. */
	write_slow_wait("cancelq", copy, sizeof(copy), conc, sizeof(conc));
	inst = conf_new(&err,
	                "{\"backend\": \"helper\", \"command\": [\"%s\"], "
	                "\"max_processes\": 1}",
	                copy);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	start_many(inst, base, CA_OP_ENROLL, 3, &ms);
	co.inst = inst;
	co.ms = &ms;
	co.index = 1;
	event_base_once(base, -1, EV_TIMEOUT, cancel_one_tick, &co, &soon);
	wait_many(&ms);
	ck_assert_int_eq(ms.calls[0]->result.outcome, CA_PENDING);
	ck_assert_int_eq(ms.calls[1]->result.outcome, CA_CANCELLED);
	ck_assert_int_lt(ms.done_ms[1], 900);
	ck_assert_int_eq(ms.calls[2]->result.outcome, CA_PENDING);
	ck_assert_int_ge(ms.done_ms[2], 1800);
	ck_assert_int_eq(count_lines(conc), 2);
	ck_assert_int_le(max_in(conc), 1);
	free_many(&ms);
	ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	assert_no_children();
	event_base_free(base);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_cancel_waiting_cacerts)
{
	char copy[PATH_MAX + 16], body[PATH_MAX * 4];
	struct event_base *base = event_base_new();
	struct timeval soon = {0, 200000};
	struct ca_instance *inst;
	struct cancel_one co;
	struct many_state ms;
	struct core_err err;

	/* Two cacerts wait for one FETCH-ROOTS; cancelling one leaves the
	 * run to the other. */
	snprintf(copy, sizeof(copy), "%s/roots-cancel.sh", tmpdir);
	snprintf(body, sizeof(body),
	         "sleep 1\necho 'Helper Root A'\ncat '%s'\n", cert_pem[0]);
	write_script(copy, body);
	inst = conf_new(
	    &err, "{\"backend\": \"helper\", \"command\": [\"%s\"]}", copy);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	start_many(inst, base, CA_OP_CACERTS, 2, &ms);
	co.inst = inst;
	co.ms = &ms;
	co.index = 0;
	event_base_once(base, -1, EV_TIMEOUT, cancel_one_tick, &co, &soon);
	wait_many(&ms);
	ck_assert_int_eq(ms.calls[0]->result.outcome, CA_CANCELLED);
	ck_assert_int_lt(ms.done_ms[0], 900);
	ck_assert_msg(ms.calls[1]->result.outcome == CA_ISSUED, "%s",
	              ms.calls[1]->result.cause);
	ck_assert_int_eq(sk_X509_num(ms.calls[1]->result.chain), 1);
	free_many(&ms);
	ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	assert_no_children();
	event_base_free(base);
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_background_child_killed_at_exit)
{
	char copy[PATH_MAX + 16], body[PATH_MAX * 4];
	struct ca_instance *inst;
	struct result res;
	struct core_err err;
	long pid;
	int i;

	/* The helper leaves a sleep behind and exits: the sleep is in its
	 * process group, and ends with the run. */
	unlink_state("left.pid");
	snprintf(copy, sizeof(copy), "%s/leaves-child.sh", tmpdir);
	snprintf(body, sizeof(body),
	         "sleep 30 >/dev/null 2>&1 </dev/null &\n"
	         "echo $! >'%s/left.pid'\necho left-cookie\nexit 1\n",
	         state);
	write_script(copy, body);
	inst = conf_new(
	    &err, "{\"backend\": \"helper\", \"command\": [\"%s\"]}", copy);
	ck_assert_msg(inst != NULL, "%s: %s", err.key, err.text);
	run_call(inst, CA_OP_ENROLL, &res);
	ck_assert_int_eq(res.outcome, CA_PENDING);
	pid = read_pid("left.pid");
	ck_assert_int_gt(pid, 0);
	for (i = 0; i < 50 && !pid_dead(pid); i++)
		usleep(20000);
	ck_assert_msg(pid_dead(pid), "the helper's background sleep runs on");
	ca_instance_free(inst);
}
END_TEST

START_TEST(test_helper_loop_shutdown_kills_runs)
{
	struct ca_instance *inst = fake_new("hang", ", \"timeout\": 30");
	struct event_base *base = event_base_new();
	struct timeval brief = {0, 300000};
	struct many_state ms;
	long helper_pid, sleep_pid;
	int i;

	/* A worker's loop ends with a run under way (estrad stops): the
	 * run and what it started are killed and reaped with the loop. */
	unlink_state("hang.pid");
	unlink_state("sleep.pid");
	start_many(inst, base, CA_OP_ENROLL, 1, &ms);
	event_base_once(base, -1, EV_TIMEOUT, stop_loop, base, &brief);
	event_base_dispatch(base);
	for (i = 0; i < 50 && read_pid("sleep.pid") <= 0; i++)
		usleep(20000);
	helper_pid = read_pid("hang.pid");
	sleep_pid = read_pid("sleep.pid");
	ck_assert_int_gt(helper_pid, 0);
	ck_assert_int_gt(sleep_pid, 0);
	ca_loop_shutdown(base);
	assert_no_children();
	ck_assert(pid_dead(helper_pid));
	for (i = 0; i < 50 && !pid_dead(sleep_pid); i++)
		usleep(20000);
	ck_assert_msg(pid_dead(sleep_pid), "the helper's sleep still runs");
	ck_assert_int_eq(ms.count, 0);
	free_many(&ms);
	event_base_free(base);
	ca_instance_free(inst);
}
END_TEST

static Suite *
ca_helper_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("ca_helper");
	tc = tcase_create("configure");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, reset_log, NULL);
	tcase_add_test(tc, test_helper_conf_unknown_key);
	tcase_add_test(tc, test_helper_conf_command_checked);
	tcase_add_test(tc, test_helper_conf_relative_command);
	tcase_add_test(tc, test_helper_conf_env_checked);
	tcase_add_test(tc, test_helper_conf_numbers_and_strings);
	tcase_add_test(tc, test_helper_conf_full_accepted);
	suite_add_tcase(s, tc);
	tc = tcase_create("exit_status");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, reset_log, NULL);
	tcase_add_test(tc, test_helper_exit0_pem_issued);
	tcase_add_test(tc, test_helper_exit0_pkcs7_leaf_first);
	tcase_add_test(tc, test_helper_exit0_der_issued);
	tcase_add_test(tc, test_helper_exit0_wrong_key_refused);
	tcase_add_test(tc, test_helper_exit0_garbage_misconfigured);
	tcase_add_test(tc, test_helper_exit1_wait_cookie);
	tcase_add_test(tc, test_helper_exit1_without_cookie);
	tcase_add_test(tc, test_helper_exit5_delay_then_poll_issued);
	tcase_add_test(tc, test_helper_exit5_delay_only_submits_again);
	tcase_add_test(tc, test_helper_exit5_bad_delay);
	tcase_add_test(tc, test_helper_exit2_rejected);
	tcase_add_test(tc, test_helper_exit3_unreachable_logged);
	tcase_add_test(tc, test_helper_exit4_unconfigured);
	tcase_add_test(tc, test_helper_exit6_unsupported);
	tcase_add_test(tc, test_helper_exit7_undefined);
	tcase_add_test(tc, test_helper_crash_misconfigured);
	tcase_add_test(tc, test_helper_timeout_killed_no_zombie);
	tcase_add_test(tc, test_helper_huge_output_capped);
	tcase_add_test(tc, test_helper_exec_failure_deferred);
	suite_add_tcase(s, tc);
	tc = tcase_create("environment");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, reset_log, NULL);
	tcase_add_test(tc, test_helper_env_explicit_no_inheritance);
	tcase_add_test(tc, test_helper_env_poll_and_reenroll);
	suite_add_tcase(s, tc);
	tc = tcase_create("cacerts_health");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, reset_log, NULL);
	tcase_add_test(tc, test_helper_cacerts_fetch_roots_cached);
	tcase_add_test(tc, test_helper_cacerts_groups_chain_first);
	tcase_add_test(tc, test_helper_cacerts_json_form);
	tcase_add_test(tc, test_helper_cacerts_empty_misconfigured);
	tcase_add_test(tc, test_helper_health_identify);
	tcase_add_test(tc, test_helper_cancel_kills_and_reaps);
	tcase_add_test(tc, test_helper_start_fetches_roots_stop_reaps);
	suite_add_tcase(s, tc);
	tc = tcase_create("processes");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, reset_log, NULL);
	tcase_add_test(tc, test_helper_cacerts_concurrent_one_run);
	tcase_add_test(tc, test_helper_cacerts_failure_remembered);
	tcase_add_test(tc, test_helper_cap_queues_then_refuses);
	tcase_add_test(tc, test_helper_cancel_queued_call);
	tcase_add_test(tc, test_helper_cancel_waiting_cacerts);
	tcase_add_test(tc, test_helper_background_child_killed_at_exit);
	tcase_add_test(tc, test_helper_loop_shutdown_kills_runs);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	ca_set_log_hook(log_hook);
	make_fixtures();
	sr = srunner_create(ca_helper_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_fixtures();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
