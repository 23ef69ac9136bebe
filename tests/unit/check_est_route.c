/*
 * check_est_route.c: unit tests of src/est/route.c, request paths to EST
 * operations and labels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "est/route.h"

/* Parses uri and expects EST_ROUTE_OK with op and label. */
static void
assert_route(const char *uri, enum est_operation op, const char *label)
{
	struct est_route route;
	enum est_route_status status;

	memset(&route, 0x5a, sizeof(route));
	status = est_route_parse(uri, &route);
	ck_assert_msg(status == EST_ROUTE_OK, "%s: status %d", uri, status);
	ck_assert_msg(route.op == op, "%s: op %d, want %d", uri, route.op, op);
	ck_assert_str_eq(route.label, label);
}

/* Parses uri and expects want, with nothing of the path kept in route. */
static void
assert_refused(const char *uri, enum est_route_status want)
{
	struct est_route route;
	enum est_route_status status;

	memset(&route, 0x5a, sizeof(route));
	status = est_route_parse(uri, &route);
	ck_assert_msg(status == want, "%s: status %d, want %d", uri, status,
	              want);
	ck_assert_int_eq(route.op, EST_OPERATION__MAX);
	ck_assert_str_eq(route.label, "");
}

START_TEST(test_route_without_label)
{
	assert_route("/.well-known/est/cacerts", EST_OP_CACERTS, "");
	assert_route("/.well-known/est/simpleenroll", EST_OP_SIMPLEENROLL, "");
	assert_route("/.well-known/est/simplereenroll", EST_OP_SIMPLEREENROLL,
	             "");
	assert_route("/.well-known/est/csrattrs", EST_OP_CSRATTRS, "");
}
END_TEST

START_TEST(test_route_with_label)
{
	assert_route("/.well-known/est/phones/simpleenroll",
	             EST_OP_SIMPLEENROLL, "phones");
	assert_route("/.well-known/est/a/cacerts", EST_OP_CACERTS, "a");
	assert_route("/.well-known/est/Routers_v2.corp-1/csrattrs",
	             EST_OP_CSRATTRS, "Routers_v2.corp-1");
	/* A label may contain an operation name, just not equal one. */
	assert_route("/.well-known/est/cacerts2/cacerts", EST_OP_CACERTS,
	             "cacerts2");
	assert_route("/.well-known/est/CACERTS/cacerts", EST_OP_CACERTS,
	             "CACERTS");
	assert_route("/.well-known/est/.../cacerts", EST_OP_CACERTS, "...");
}
END_TEST

START_TEST(test_route_label_64_accepted)
{
	char uri[128], label[EST_LABEL_MAX + 1];

	memset(label, 'x', EST_LABEL_MAX);
	label[EST_LABEL_MAX] = '\0';
	snprintf(uri, sizeof(uri), "/.well-known/est/%s/simplereenroll", label);
	assert_route(uri, EST_OP_SIMPLEREENROLL, label);
}
END_TEST

START_TEST(test_route_trailing_slash_tolerated)
{
	assert_route("/.well-known/est/cacerts/", EST_OP_CACERTS, "");
	assert_route("/.well-known/est/phones/simpleenroll/",
	             EST_OP_SIMPLEENROLL, "phones");
	assert_route("/.well-known/est/phones/csrattrs/?x=1", EST_OP_CSRATTRS,
	             "phones");
	/* Only one. */
	assert_refused("/.well-known/est/cacerts//", EST_ROUTE_UNKNOWN_OP);
}
END_TEST

START_TEST(test_route_query_string_ignored)
{
	assert_route("/.well-known/est/cacerts?", EST_OP_CACERTS, "");
	assert_route("/.well-known/est/cacerts?x=1&y=/z", EST_OP_CACERTS, "");
	assert_route("/.well-known/est/phones/simpleenroll?x=1",
	             EST_OP_SIMPLEENROLL, "phones");
	assert_route("/.well-known/est/phones/simpleenroll?/bad%2e/label",
	             EST_OP_SIMPLEENROLL, "phones");
}
END_TEST

START_TEST(test_route_fullcmc_serverkeygen_recognised)
{
	assert_route("/.well-known/est/fullcmc", EST_OP_FULLCMC, "");
	assert_route("/.well-known/est/serverkeygen", EST_OP_SERVERKEYGEN, "");
	assert_route("/.well-known/est/phones/fullcmc", EST_OP_FULLCMC,
	             "phones");
	assert_route("/.well-known/est/phones/serverkeygen",
	             EST_OP_SERVERKEYGEN, "phones");
}
END_TEST

START_TEST(test_route_unknown_op)
{
	assert_refused("/.well-known/est/", EST_ROUTE_UNKNOWN_OP);
	assert_refused("/.well-known/est/?x=1", EST_ROUTE_UNKNOWN_OP);
	assert_refused("/.well-known/est/bogus", EST_ROUTE_UNKNOWN_OP);
	assert_refused("/.well-known/est/phones/bogus", EST_ROUTE_UNKNOWN_OP);
	assert_refused("/.well-known/est/phones/", EST_ROUTE_UNKNOWN_OP);
	assert_refused("/.well-known/est//", EST_ROUTE_UNKNOWN_OP);
	/* Operation names are case-sensitive path segments. */
	assert_refused("/.well-known/est/CACERTS", EST_ROUTE_UNKNOWN_OP);
	assert_refused("/.well-known/est/cacert", EST_ROUTE_UNKNOWN_OP);
	assert_refused("/.well-known/est/cacertss", EST_ROUTE_UNKNOWN_OP);
	assert_refused("/.well-known/est/cacerts;x", EST_ROUTE_UNKNOWN_OP);
	/* The operation is judged before the label. */
	assert_refused("/.well-known/est/bad%2e/bogus", EST_ROUTE_UNKNOWN_OP);
}
END_TEST

START_TEST(test_route_label_too_long_refused)
{
	char uri[128], label[EST_LABEL_MAX + 2];

	memset(label, 'x', EST_LABEL_MAX + 1);
	label[EST_LABEL_MAX + 1] = '\0';
	snprintf(uri, sizeof(uri), "/.well-known/est/%s/cacerts", label);
	assert_refused(uri, EST_ROUTE_BAD_LABEL);
}
END_TEST

START_TEST(test_route_label_bad_bytes_refused)
{
	static const char *const bad[] = {
	    "/.well-known/est/ph%2eones/cacerts",
	    "/.well-known/est/%2e/cacerts",
	    "/.well-known/est/ph ones/cacerts",
	    "/.well-known/est/ph+ones/cacerts",
	    "/.well-known/est/ph~ones/cacerts",
	    "/.well-known/est/ph:ones/cacerts",
	    "/.well-known/est/ph\tones/cacerts",
	    "/.well-known/est/j\xc3\xb6rg/cacerts",
	    "/.well-known/est/a/b/cacerts",
	    "/.well-known/est/./cacerts",
	    "/.well-known/est/../cacerts",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_refused(bad[i], EST_ROUTE_BAD_LABEL);
}
END_TEST

START_TEST(test_route_label_equal_to_op_refused)
{
	assert_refused("/.well-known/est/simpleenroll/cacerts",
	               EST_ROUTE_BAD_LABEL);
	assert_refused("/.well-known/est/cacerts/cacerts", EST_ROUTE_BAD_LABEL);
	assert_refused("/.well-known/est/fullcmc/simpleenroll",
	               EST_ROUTE_BAD_LABEL);
	assert_refused("/.well-known/est/serverkeygen/csrattrs/",
	               EST_ROUTE_BAD_LABEL);
}
END_TEST

START_TEST(test_route_empty_label_refused)
{
	assert_refused("/.well-known/est//cacerts", EST_ROUTE_BAD_LABEL);
	assert_refused("/.well-known/est//simpleenroll/", EST_ROUTE_BAD_LABEL);
}
END_TEST

START_TEST(test_route_not_est)
{
	assert_refused("/", EST_ROUTE_NOT_EST);
	assert_refused("", EST_ROUTE_NOT_EST);
	assert_refused(NULL, EST_ROUTE_NOT_EST);
	assert_refused("/cacerts", EST_ROUTE_NOT_EST);
	assert_refused("/.well-known/est", EST_ROUTE_NOT_EST);
	assert_refused("/.well-known/estcacerts", EST_ROUTE_NOT_EST);
	assert_refused("/.well-known/EST/cacerts", EST_ROUTE_NOT_EST);
	assert_refused("//.well-known/est/cacerts", EST_ROUTE_NOT_EST);
	assert_refused("/prefix/.well-known/est/cacerts", EST_ROUTE_NOT_EST);
	assert_refused(".well-known/est/cacerts", EST_ROUTE_NOT_EST);
	assert_refused("/.well-known/acme-challenge/x", EST_ROUTE_NOT_EST);
	ck_assert_int_eq(est_route_parse("/.well-known/est/cacerts", NULL),
	                 EST_ROUTE_NOT_EST);
}
END_TEST

START_TEST(test_route_op_names_and_methods)
{
	static const struct {
		enum est_operation op;
		const char *name, *method;
	} ops[] = {
	    {EST_OP_CACERTS, "cacerts", "GET"},
	    {EST_OP_SIMPLEENROLL, "simpleenroll", "POST"},
	    {EST_OP_SIMPLEREENROLL, "simplereenroll", "POST"},
	    {EST_OP_CSRATTRS, "csrattrs", "GET"},
	    {EST_OP_FULLCMC, "fullcmc", "POST"},
	    {EST_OP_SERVERKEYGEN, "serverkeygen", "POST"},
	};
	char uri[128];
	size_t i;

	ck_assert_uint_eq(sizeof(ops) / sizeof(ops[0]), EST_OPERATION__MAX);
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		ck_assert_str_eq(est_route_op_name(ops[i].op), ops[i].name);
		ck_assert_str_eq(est_route_op_method(ops[i].op), ops[i].method);
		/* Every name routes back to its operation. */
		snprintf(uri, sizeof(uri), "/.well-known/est/%s", ops[i].name);
		assert_route(uri, ops[i].op, "");
	}
	ck_assert_str_eq(est_route_op_name(EST_OPERATION__MAX), "unknown");
	ck_assert_str_eq(est_route_op_method(EST_OPERATION__MAX), "unknown");
	ck_assert_str_eq(est_route_op_name((enum est_operation) - 1),
	                 "unknown");
}
END_TEST

static Suite *
route_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("est_route");
	tc = tcase_create("accepted");
	tcase_add_test(tc, test_route_without_label);
	tcase_add_test(tc, test_route_with_label);
	tcase_add_test(tc, test_route_label_64_accepted);
	tcase_add_test(tc, test_route_trailing_slash_tolerated);
	tcase_add_test(tc, test_route_query_string_ignored);
	tcase_add_test(tc, test_route_fullcmc_serverkeygen_recognised);
	suite_add_tcase(s, tc);

	tc = tcase_create("refused");
	tcase_add_test(tc, test_route_unknown_op);
	tcase_add_test(tc, test_route_label_too_long_refused);
	tcase_add_test(tc, test_route_label_bad_bytes_refused);
	tcase_add_test(tc, test_route_label_equal_to_op_refused);
	tcase_add_test(tc, test_route_empty_label_refused);
	tcase_add_test(tc, test_route_not_est);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_test(tc, test_route_op_names_and_methods);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(route_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
