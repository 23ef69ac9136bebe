/*
 * check_ra_log.c: the error, access and audit log formats, escaping, and
 * reopening for logrotate.
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "core/escape.h"
#include "core/log.h"
#include "core/offload.h"
#include "ra/log.h"

static char dir[] = "/tmp/check_ra_log.XXXXXX";
static char error_path[256], access_path[256], audit_path[256];

static void
setup(void)
{
	char err[256];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(error_path, sizeof(error_path), "%s/error.log", dir);
	snprintf(access_path, sizeof(access_path), "%s/access.log", dir);
	snprintf(audit_path, sizeof(audit_path), "%s/audit.log", dir);
	ck_assert_int_eq(ra_log_open(error_path, access_path, audit_path,
	                             CORE_LOG_INFO, err, sizeof(err)),
	                 0);
}

static void
teardown(void)
{
	char cmd[300];

	ra_log_close();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

/* Returns the last line of path (static buffer), without its newline. */
static const char *
last_line(const char *path)
{
	static char line[8192];
	char buf[8192];
	FILE *fp = fopen(path, "r");

	line[0] = '\0';
	ck_assert_ptr_nonnull(fp);
	while (fgets(buf, sizeof(buf), fp) != NULL)
		memcpy(line, buf, sizeof(line));
	fclose(fp);
	line[strcspn(line, "\n")] = '\0';
	return line;
}

static void
assert_matches(const char *text, const char *pattern)
{
	regex_t re;

	ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&re, text, 0, NULL, 0) == 0,
	              "\"%s\" does not match /%s/", text, pattern);
	regfree(&re);
}

START_TEST(test_log_escape_quotes_and_control_bytes)
{
	char buf[64];

	ck_assert_str_eq(core_escape("plain", 1, buf, sizeof(buf)), "plain");
	ck_assert_str_eq(core_escape("CN=a, O=b", 1, buf, sizeof(buf)),
	                 "\"CN=a, O=b\"");
	ck_assert_str_eq(core_escape("say \"hi\"", 1, buf, sizeof(buf)),
	                 "\"say \\\"hi\\\"\"");
	ck_assert_str_eq(core_escape("a\nb\x7f", 0, buf, sizeof(buf)),
	                 "a\\x0ab\\x7f");
	ck_assert_str_eq(core_escape("", 1, buf, sizeof(buf)), "\"\"");
	ck_assert_str_eq(core_escape(NULL, 0, buf, sizeof(buf)), "");
}
END_TEST

START_TEST(test_log_escape_truncates_safely)
{
	char buf[8], big[200];

	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	core_escape(big, 1, buf, sizeof(buf));
	ck_assert_uint_lt(strlen(buf), sizeof(buf));
	memset(big, 'x', sizeof(big) - 1);
	core_escape(big, 0, buf, sizeof(buf));
	ck_assert_uint_lt(strlen(buf), sizeof(buf));
}
END_TEST

START_TEST(test_log_error_line_house_format)
{
	struct ra_log_context ctx = {
	    .rid = "5d2e1c9a04b7f311",
	    .client = "192.0.2.10:4711",
	    .identity = "CN=SEP001122334455, O=x",
	    .label = "phones",
	    .op = "simpleenroll",
	    .backend = "local",
	    .answer = 403,
	};

	ra_log(CORE_LOG_NOTICE, "ra.policy", &ctx, "label phones allows less",
	       "CSR refused: dNSName \"%s\" not allowed", "cucm.example.com");
	assert_matches(
	    last_line(error_path),
	    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}"
	    "Z "
	    "\\[notice\\] [0-9]+#[0-9]+: rid=5d2e1c9a04b7f311 ra\\.policy: "
	    "CSR refused: dNSName \"cucm\\.example\\.com\" not allowed, "
	    "client: 192\\.0\\.2\\.10:4711, identity: \"CN=SEP001122334455, "
	    "O=x\", label: phones, op: simpleenroll, backend: local, "
	    "answer: 403, hint: \"label phones allows less\"$");
}
END_TEST

START_TEST(test_log_error_line_without_request)
{
	ra_log(CORE_LOG_INFO, "est.main", NULL, NULL, "starting");
	assert_matches(last_line(error_path),
	               "Z \\[info\\] [0-9]+#[0-9]+: est\\.main: starting$");
}
END_TEST

START_TEST(test_log_level_filters)
{
	ra_log(CORE_LOG_INFO, "est.main", NULL, NULL, "kept");
	ra_log(CORE_LOG_DEBUG, "est.main", NULL, NULL, "dropped");
	assert_matches(last_line(error_path), "kept$");
	ck_assert_int_eq(ra_log_enabled(CORE_LOG_DEBUG), 0);
	ck_assert_int_eq(ra_log_enabled(CORE_LOG_ERROR), 1);
}
END_TEST

START_TEST(test_log_message_control_bytes_escaped)
{
	ra_log(CORE_LOG_NOTICE, "est.conn", NULL, NULL, "bad\r\nline");
	assert_matches(last_line(error_path), "bad\\\\x0d\\\\x0aline$");
}
END_TEST

START_TEST(test_log_long_message_keeps_context_and_hint)
{
	struct ra_log_context ctx = {
	    .rid = "0123456789abcdef", .label = "x", .answer = 500};
	char big[6000];

	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ra_log(CORE_LOG_ERROR, "ca.local", &ctx, "the hint", "%s", big);
	assert_matches(last_line(error_path),
	               "label: x, answer: 500, hint: \"the hint\"$");
}
END_TEST

START_TEST(test_log_access_line)
{
	struct ra_access_entry e = {
	    .rid = "0123456789abcdef",
	    .client = "127.0.0.1:5000",
	    .method = "POST",
	    .path = "/.well-known/est/simpleenroll",
	    .status = 200,
	    .bytes = 1234,
	    .tls = "TLSv1.3",
	    .auth = "basic",
	    .identity = "estuser",
	    .label = "default",
	    .op = "simpleenroll",
	    .backend = "local",
	    .outcome = "ISSUED",
	    .ca_ms = 3,
	    .ms = 4,
	    .user_agent = "curl/7.88.1",
	};

	ra_log_access(&e);
	assert_matches(
	    last_line(access_path),
	    "^[0-9-]{10}T[0-9:]{8}\\.[0-9]{3}Z 127\\.0\\.0\\.1:5000 "
	    "rid=0123456789abcdef \"POST /\\.well-known/est/simpleenroll "
	    "HTTP/1\\.1\" 200 1234 tls=TLSv1\\.3 auth=basic id=\"estuser\" "
	    "label=default op=simpleenroll backend=local outcome=ISSUED "
	    "ca_ms=3 ms=4 retry_after=0 ua=\"curl/7\\.88\\.1\"$");
}
END_TEST

START_TEST(test_log_access_escapes_user_agent)
{
	struct ra_access_entry e = {.rid = "0123456789abcdef",
	                            .method = "GET",
	                            .path = "/x",
	                            .status = 404,
	                            .user_agent = "evil\"\n agent"};

	ra_log_access(&e);
	assert_matches(last_line(access_path),
	               "ua=\"evil\\\\\"\\\\x0a agent\"$");
}
END_TEST

/*
 * Splits an access line on the spaces outside double quotes (a quote
 * behind a backslash does not count) into at most max tokens; returns how
 * many, or -1 when a quote is left open.
 */
static int
access_tokens(const char *line, char tokens[][512], int max)
{
	int n = 0, inq = 0;
	size_t o = 0;

	for (; *line != '\0'; line++) {
		if (inq && *line == '\\' && line[1] != '\0') {
			if (n < max && o + 2 < 512) {
				tokens[n][o++] = line[0];
				tokens[n][o++] = line[1];
			}
			line++;
			continue;
		}
		if (*line == '"')
			inq = !inq;
		if (*line == ' ' && !inq) {
			if (n < max)
				tokens[n][o] = '\0';
			n++;
			o = 0;
			continue;
		}
		if (n < max && o + 1 < 512)
			tokens[n][o++] = *line;
	}
	if (n < max)
		tokens[n][o] = '\0';
	return inq ? -1 : n + 1;
}

/*
 * A user name, User-Agent and request target that try to close their
 * quotes and add fields: each stays one token, escaped, and the fields
 * after it are the real ones.
 */
START_TEST(test_log_access_fields_cannot_be_forged)
{
	struct ra_access_entry e = {
	    .rid = "0123456789abcdef",
	    .client = "192.0.2.1:1",
	    .method = "GET",
	    .path = "/.well-known/est/cacerts?x\" 200 0 tls=x",
	    .status = 401,
	    .auth = "none",
	    .identity = "a\" label=phones outcome=ISSUED x=\"\\",
	    .label = "default",
	    .op = "simpleenroll",
	    .outcome = "REFUSED",
	    .user_agent = "ua\\\" label=phones outcome=ISSUED ua=\"",
	};
	char tokens[24][512];

	ra_log_access(&e);
	ck_assert_int_eq(access_tokens(last_line(access_path), tokens, 24), 17);
	ck_assert_str_eq(tokens[3], "\"GET /.well-known/est/cacerts?x\\\" "
	                            "200 0 tls=x HTTP/1.1\"");
	ck_assert_str_eq(tokens[8], "id=\"a\\\" label=phones "
	                            "outcome=ISSUED x=\\\"\\\\\"");
	ck_assert_str_eq(tokens[9], "label=default");
	ck_assert_str_eq(tokens[12], "outcome=REFUSED");
	ck_assert_str_eq(tokens[16], "ua=\"ua\\\\\\\" label=phones "
	                             "outcome=ISSUED ua=\\\"\"");
}
END_TEST

/* The identity is never cut, however long the other fields are. */
START_TEST(test_log_access_identity_never_cut)
{
	char identity[2100], ua[3000];
	struct ra_access_entry e = {.rid = "0123456789abcdef",
	                            .method = "GET",
	                            .path = "/x",
	                            .status = 200,
	                            .identity = identity,
	                            .user_agent = ua};
	const char *line;

	memset(identity, 'i', sizeof(identity) - 2);
	identity[sizeof(identity) - 2] = 'Z';
	identity[sizeof(identity) - 1] = '\0';
	memset(ua, '"', sizeof(ua) - 1);
	ua[sizeof(ua) - 1] = '\0';
	ra_log_access(&e);
	line = last_line(access_path);
	ck_assert_ptr_nonnull(strstr(line, "iiiiZ\" label=-"));
	ck_assert_uint_lt(strlen(line), 4096);
}
END_TEST

START_TEST(test_log_escape_modes)
{
	char buf[64];

	/* Estrad's own text keeps its quotes; bytes are escaped. */
	ck_assert_str_eq(core_escape("say \"\\x\"\x01\xff", CORE_ESCAPE_TEXT,
	                             buf, sizeof(buf)),
	                 "say \"\\x\"\\x01\\xff");
	/* A value: quote and backslash escaped, so "\x01" written by a
	 * client differs from an escaped byte. */
	ck_assert_str_eq(
	    core_escape("a\"b\\x01\x01", CORE_ESCAPE_INNER, buf, sizeof(buf)),
	    "a\\\"b\\\\x01\\x01");
	ck_assert_str_eq(
	    core_escape("a\\b", CORE_ESCAPE_QUOTE, buf, sizeof(buf)), "a\\\\b");
	ck_assert_str_eq(core_escape("", CORE_ESCAPE_INNER, buf, sizeof(buf)),
	                 "");
	/* Cut at an escape boundary, quotes closed. */
	ck_assert_str_eq(core_escape("ab \xff", CORE_ESCAPE_QUOTE, buf, 8),
	                 "\"ab \"");
}
END_TEST

START_TEST(test_log_escape_new_whole)
{
	char big[5000], *out;

	memset(big, 0xff, sizeof(big));
	out = core_escape_new(big, sizeof(big), CORE_ESCAPE_INNER);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(strlen(out), 4 * sizeof(big));
	free(out);
	/* NUL bytes inside are escaped, not an end. */
	out = core_escape_new("a\0b", 3, CORE_ESCAPE_QUOTE);
	ck_assert_str_eq(out, "a\\x00b");
	free(out);
	out = core_escape_new("a, b", 4, CORE_ESCAPE_QUOTE);
	ck_assert_str_eq(out, "\"a, b\"");
	free(out);
}
END_TEST

/* A string that is not UTF-8 becomes a JSON string, escaped, instead of
 * no string at all (a lost key in the audit record). */
START_TEST(test_log_json_string_not_utf8)
{
	json_t *j = ra_log_json_string("ev\"il\xff\xc3(", CORE_ESCAPE_INNER);

	ck_assert_ptr_nonnull(j);
	ck_assert(json_is_string(j));
	ck_assert_str_eq(json_string_value(j), "ev\\\"il\\xff\\xc3(");
	json_decref(j);
	j = ra_log_json_string(NULL, CORE_ESCAPE_TEXT);
	ck_assert_str_eq(json_string_value(j), "");
	json_decref(j);
}
END_TEST

START_TEST(test_log_audit_json_line)
{
	json_t *entry = json_pack("{s:s, s:s}", "rid", "0123456789abcdef",
	                          "event", "issued");
	json_error_t jerr;
	json_t *back;

	ck_assert_int_eq(ra_log_audit(entry), 0);
	json_decref(entry);
	back = json_loads(last_line(audit_path), 0, &jerr);
	ck_assert_ptr_nonnull(back);
	ck_assert_str_eq(json_string_value(json_object_get(back, "event")),
	                 "issued");
	ck_assert_ptr_nonnull(json_string_value(json_object_get(back, "ts")));
	json_decref(back);
}
END_TEST

START_TEST(test_log_reopen_follows_rename)
{
	char moved[300];

	snprintf(moved, sizeof(moved), "%s.1", error_path);
	ra_log(CORE_LOG_INFO, "t", NULL, NULL, "before");
	ck_assert_int_eq(rename(error_path, moved), 0);
	ck_assert_int_eq(ra_log_reopen(), 0);
	ra_log(CORE_LOG_INFO, "t", NULL, NULL, "after");
	assert_matches(last_line(moved), "before$");
	assert_matches(last_line(error_path), "after$");
}
END_TEST

START_TEST(test_log_open_failure_names_path)
{
	char err[256];

	ck_assert_int_eq(ra_log_open("/nonexistent-dir/error.log", NULL, NULL,
	                             CORE_LOG_INFO, err, sizeof(err)),
	                 -1);
	assert_matches(err, "/nonexistent-dir/error\\.log: No such file");
}
END_TEST

/* What the audit writer handed back to a submitter. */
struct submitted {
	int calls;
	int rc;
};

static void
submitted_done(int rc, void *arg)
{
	struct submitted *sub = arg;

	sub->calls++;
	sub->rc = rc;
}

/* Counts the lines of path. */
static int
count_lines(const char *path)
{
	char buf[8192];
	FILE *fp = fopen(path, "r");
	int n = 0;

	if (fp == NULL)
		return 0;
	while (fgets(buf, sizeof(buf), fp) != NULL)
		n++;
	fclose(fp);
	return n;
}

/*
 * Records submitted from a loop are written by the writer thread, each as
 * a whole line, and every submitter hears back once, on its loop.
 */
START_TEST(test_log_audit_submit_writes_and_calls_back)
{
	struct submitted sub[20];
	struct event_base *base;
	int i, waited;

	memset(sub, 0, sizeof(sub));
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	ck_assert_ptr_nonnull(base = event_base_new());
	for (i = 0; i < 20; i++) {
		json_t *entry =
		    json_pack("{s:s, s:i}", "event", "issued", "n", i);

		ck_assert_int_eq(
		    ra_log_audit_submit(entry, base, submitted_done, &sub[i]),
		    0);
		json_decref(entry);
	}
	for (waited = 0; waited < 500; waited++) {
		(void)event_base_loop(base, EVLOOP_NONBLOCK);
		if (sub[19].calls > 0)
			break;
		usleep(10000);
	}
	core_offload_drain(base);
	for (i = 0; i < 20; i++) {
		ck_assert_int_eq(sub[i].calls, 1);
		ck_assert_int_eq(sub[i].rc, 0);
	}
	ck_assert_int_eq(count_lines(audit_path), 20);
	assert_matches(
	    last_line(audit_path),
	    "^\\{\"event\":\"issued\",\"n\":19,\"ts\":\"[0-9T:.Z-]+\"\\}$");
	event_base_free(base);
}
END_TEST

/* A disk that takes nothing: every submitter hears -1, nothing is torn. */
START_TEST(test_log_audit_submit_reports_a_full_disk)
{
	struct submitted sub[3];
	struct event_base *base;
	char err[256];
	int i;

	memset(sub, 0, sizeof(sub));
	ra_log_close();
	ck_assert_int_eq(ra_log_open(error_path, access_path, "/dev/full",
	                             CORE_LOG_INFO, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	ck_assert_ptr_nonnull(base = event_base_new());
	for (i = 0; i < 3; i++) {
		json_t *entry = json_pack("{s:s}", "event", "issued");

		ck_assert_int_eq(
		    ra_log_audit_submit(entry, base, submitted_done, &sub[i]),
		    0);
		json_decref(entry);
	}
	core_offload_drain(base);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(sub[i].calls, 1);
		ck_assert_int_eq(sub[i].rc, -1);
	}
	assert_matches(last_line(error_path),
	               "\\[crit\\] [0-9]+#[0-9]+: ra\\.audit: cannot write "
	               "audit log /dev/full: \\(28: ");
	event_base_free(base);
}
END_TEST

/* A refusal's record is in the file when ra_log_audit_nowait() returns
 * (the writer thread only syncs it). */
START_TEST(test_log_audit_nowait_writes_at_once)
{
	json_t *entry = json_pack("{s:s}", "event", "refused");
	json_error_t jerr;
	json_t *back;

	ck_assert_int_eq(ra_log_audit_nowait(entry), 0);
	json_decref(entry);
	back = json_loads(last_line(audit_path), 0, &jerr);
	ck_assert_ptr_nonnull(back);
	ck_assert_str_eq(json_string_value(json_object_get(back, "event")),
	                 "refused");
	json_decref(back);
}
END_TEST

static Suite *
ra_log_suite(void)
{
	Suite *s = suite_create("ra_log");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_log_escape_quotes_and_control_bytes);
	tcase_add_test(tc, test_log_escape_truncates_safely);
	tcase_add_test(tc, test_log_error_line_house_format);
	tcase_add_test(tc, test_log_error_line_without_request);
	tcase_add_test(tc, test_log_level_filters);
	tcase_add_test(tc, test_log_message_control_bytes_escaped);
	tcase_add_test(tc, test_log_long_message_keeps_context_and_hint);
	tcase_add_test(tc, test_log_access_line);
	tcase_add_test(tc, test_log_access_escapes_user_agent);
	tcase_add_test(tc, test_log_access_fields_cannot_be_forged);
	tcase_add_test(tc, test_log_access_identity_never_cut);
	tcase_add_test(tc, test_log_escape_modes);
	tcase_add_test(tc, test_log_escape_new_whole);
	tcase_add_test(tc, test_log_json_string_not_utf8);
	tcase_add_test(tc, test_log_audit_json_line);
	tcase_add_test(tc, test_log_reopen_follows_rename);
	tcase_add_test(tc, test_log_open_failure_names_path);
	tcase_add_test(tc, test_log_audit_submit_writes_and_calls_back);
	tcase_add_test(tc, test_log_audit_submit_reports_a_full_disk);
	tcase_add_test(tc, test_log_audit_nowait_writes_at_once);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ra_log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
