/*
 * check_ra_auth_throttle.c: the failure counts per client and per user
 * name, their growing delays and their forgetting, the bounded table, and
 * the places of the crypt(3) queue.  A fake clock stands in for time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "ra/auth_throttle.h"

static time_t fake_now;

static time_t
fake_clock(void)
{
	return fake_now;
}

static void
setup(void)
{
	fake_now = 1000000;
	ra_auth_throttle_reset(fake_clock);
}

static void
teardown(void)
{
	ra_auth_throttle_reset(NULL);
}

/* Fails user from client n times, client NULL meaning a new one each
 * time (so that only the user's count grows). */
static void
fail_n(const char *client, const char *user, int n)
{
	char other[64];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(other, sizeof(other), "198.51.100.%d:%d", i % 250,
		         1000 + i);
		ra_auth_throttle_failed(client != NULL ? client : other, user);
	}
}

START_TEST(test_throttle_user_waits_after_free_failures)
{
	enum ra_auth_throttle_reason reason = RA_THROTTLE__MAX;
	unsigned int expect[] = {1, 2, 4, 8, 16, 32, 60, 60};
	size_t i;

	fail_n(NULL, "alice", RA_THROTTLE_USER_FREE);
	ck_assert_uint_eq(
	    ra_auth_throttle_wait("192.0.2.1:1", "alice", &reason), 0);
	ck_assert_int_eq(reason, RA_THROTTLE_NONE);
	for (i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		fail_n(NULL, "alice", 1);
		ck_assert_uint_eq(
		    ra_auth_throttle_wait("192.0.2.1:1", "alice", &reason),
		    expect[i]);
		ck_assert_int_eq(reason, RA_THROTTLE_USER);
	}
	/* Another user, and no user at all, are not held back. */
	ck_assert_uint_eq(ra_auth_throttle_wait("192.0.2.1:1", "bob", NULL), 0);
	ck_assert_uint_eq(ra_auth_throttle_wait("192.0.2.1:1", NULL, NULL), 0);
	/* The wait runs down with the clock. */
	fake_now += 45;
	ck_assert_uint_eq(ra_auth_throttle_wait(NULL, "alice", NULL), 15);
	fake_now += 15;
	ck_assert_uint_eq(ra_auth_throttle_wait(NULL, "alice", NULL), 0);
}
END_TEST

START_TEST(test_throttle_client_waits_after_free_failures)
{
	enum ra_auth_throttle_reason reason;
	char user[32];
	int i;

	/* A new user name each time: guessing names is no way around. */
	for (i = 0; i < RA_THROTTLE_CLIENT_FREE; i++) {
		snprintf(user, sizeof(user), "guess-%d", i);
		ra_auth_throttle_failed("192.0.2.7:4000", user);
	}
	ck_assert_uint_eq(ra_auth_throttle_wait("192.0.2.7:4001", "x", NULL),
	                  0);
	ra_auth_throttle_failed("192.0.2.7:4002", "guess-last");
	ck_assert_uint_eq(
	    ra_auth_throttle_wait("192.0.2.7:4003", "estuser", &reason), 1);
	ck_assert_int_eq(reason, RA_THROTTLE_CLIENT);
	ck_assert_uint_eq(ra_auth_throttle_wait("192.0.2.8:4003", "x", NULL),
	                  0);
}
END_TEST

/* The port never counts; an IPv6 client counts by its /64; an
 * IPv4-mapped address is the IPv4 client. */
START_TEST(test_throttle_client_key_forms)
{
	fail_n("[2001:db8:1:2::1]:1000", NULL, RA_THROTTLE_CLIENT_FREE);
	ra_auth_throttle_failed("[2001:db8:1:2:ffff::9]:2000", NULL);
	ck_assert_uint_eq(
	    ra_auth_throttle_wait("[2001:db8:1:2::77]:3000", NULL, NULL), 1);
	ck_assert_uint_eq(
	    ra_auth_throttle_wait("[2001:db8:1:3::1]:3000", NULL, NULL), 0);

	fail_n("203.0.113.5:1", NULL, RA_THROTTLE_CLIENT_FREE);
	ra_auth_throttle_failed("[::ffff:203.0.113.5]:2", NULL);
	ck_assert_uint_eq(ra_auth_throttle_wait("203.0.113.5:3", NULL, NULL),
	                  1);
	ck_assert_uint_eq(ra_auth_throttle_wait("203.0.113.50:3", NULL, NULL),
	                  0);
	/* No address at all is one key of its own, and never crashes. */
	fail_n("-:0", NULL, RA_THROTTLE_CLIENT_FREE + 1);
	ck_assert_uint_eq(ra_auth_throttle_wait("-:0", NULL, NULL), 1);
	ck_assert_uint_eq(ra_auth_throttle_wait("[bogus", NULL, NULL), 0);
}
END_TEST

/* One failure is forgotten per RA_THROTTLE_FORGET seconds. */
START_TEST(test_throttle_failures_forgotten_over_time)
{
	fail_n("192.0.2.9:1", NULL, RA_THROTTLE_CLIENT_FREE + 3);
	ck_assert_uint_eq(ra_auth_throttle_wait("192.0.2.9:1", NULL, NULL), 4);
	fake_now += 2 * RA_THROTTLE_FORGET;
	ck_assert_uint_eq(ra_auth_throttle_wait("192.0.2.9:1", NULL, NULL), 0);
	/* Two forgotten: the next failure is the first past the free ones
	 * again. */
	ra_auth_throttle_failed("192.0.2.9:1", NULL);
	ck_assert_uint_eq(ra_auth_throttle_wait("192.0.2.9:1", NULL, NULL), 2);
	fake_now += (RA_THROTTLE_CLIENT_FREE + 2) * RA_THROTTLE_FORGET;
	ra_auth_throttle_failed("192.0.2.9:1", NULL);
	ck_assert_uint_eq(ra_auth_throttle_wait("192.0.2.9:1", NULL, NULL), 0);
}
END_TEST

/* A right password clears the user's failures, not the client's: one
 * working login must not reset a client that guesses other users. */
START_TEST(test_throttle_passed_clears_user_only)
{
	char user[32];
	int i;

	/* Both users and the client past their free failures. */
	for (i = 0; i < 2 * (RA_THROTTLE_USER_FREE + 1) ||
	            i <= RA_THROTTLE_CLIENT_FREE;
	     i++) {
		snprintf(user, sizeof(user), "u%d", i % 2 ? 1 : 2);
		ra_auth_throttle_failed("192.0.2.10:1", user);
	}
	ck_assert_uint_gt(ra_auth_throttle_wait(NULL, "u1", NULL), 0);
	ra_auth_throttle_passed("u1");
	ck_assert_uint_eq(ra_auth_throttle_wait(NULL, "u1", NULL), 0);
	ck_assert_uint_gt(ra_auth_throttle_wait(NULL, "u2", NULL), 0);
	ck_assert_uint_gt(ra_auth_throttle_wait("192.0.2.10:1", "u1", NULL), 0);
}
END_TEST

/* Far more names than entries: memory stays what it is, and a flood of
 * names tried once does not push a punished user out. */
START_TEST(test_throttle_table_bounded_keeps_punished)
{
	char user[32];
	int i;

	fail_n(NULL, "victim", RA_THROTTLE_USER_FREE + 4);
	ck_assert_uint_eq(ra_auth_throttle_wait(NULL, "victim", NULL), 8);
	for (i = 0; i < 20 * RA_THROTTLE_ENTRIES; i++) {
		snprintf(user, sizeof(user), "flood-%d", i);
		ra_auth_throttle_failed(NULL, user);
	}
	ck_assert_uint_eq(ra_auth_throttle_wait(NULL, "victim", NULL), 8);
}
END_TEST

START_TEST(test_throttle_queue_share_per_client)
{
	int places[RA_THROTTLE_QUEUE_MAX], i, n = 0, p;
	char client[64];

	for (i = 0; i < RA_THROTTLE_QUEUE_PER_CLIENT; i++)
		ck_assert_int_ge(
		    places[n++] = ra_auth_throttle_enter("192.0.2.20:1000"), 0);
	/* The client's share is full, on any port; others still get in. */
	ck_assert_int_eq(ra_auth_throttle_enter("192.0.2.20:2000"), -1);
	for (i = 0; n < RA_THROTTLE_QUEUE_MAX; i++) {
		snprintf(client, sizeof(client), "198.51.100.%d:1",
		         i / RA_THROTTLE_QUEUE_PER_CLIENT);
		ck_assert_int_ge(places[n++] = ra_auth_throttle_enter(client),
		                 0);
	}
	/* The whole queue is full, until a place is given back. */
	ck_assert_int_eq(ra_auth_throttle_enter("203.0.113.1:1"), -1);
	ra_auth_throttle_leave(places[0]);
	ck_assert_int_ge(p = ra_auth_throttle_enter("203.0.113.1:1"), 0);
	ck_assert_int_eq(ra_auth_throttle_enter("192.0.2.20:3000"), -1);
	ra_auth_throttle_leave(p);
	ck_assert_int_ge(ra_auth_throttle_enter("192.0.2.20:3000"), 0);
	/* Out-of-range places are ignored. */
	ra_auth_throttle_leave(-1);
	ra_auth_throttle_leave(RA_THROTTLE_QUEUE_MAX);
}
END_TEST

START_TEST(test_throttle_refusals_counted)
{
	ra_auth_throttle_refused(RA_THROTTLE_USER);
	ra_auth_throttle_refused(RA_THROTTLE_USER);
	ra_auth_throttle_refused(RA_THROTTLE_BUSY);
	ra_auth_throttle_refused(RA_THROTTLE_NONE);
	ck_assert_uint_eq(ra_auth_throttle_refusals(RA_THROTTLE_USER), 2);
	ck_assert_uint_eq(ra_auth_throttle_refusals(RA_THROTTLE_BUSY), 1);
	ck_assert_uint_eq(ra_auth_throttle_refusals(RA_THROTTLE_CLIENT), 0);
	ck_assert_uint_eq(ra_auth_throttle_refusals(RA_THROTTLE__MAX), 0);
	ck_assert_str_eq(ra_auth_throttle_reason_name(RA_THROTTLE_CLIENT),
	                 "client");
	ck_assert_str_eq(ra_auth_throttle_reason_name(RA_THROTTLE_BUSY),
	                 "busy");
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("ra_auth_throttle");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_throttle_user_waits_after_free_failures);
	tcase_add_test(tc, test_throttle_client_waits_after_free_failures);
	tcase_add_test(tc, test_throttle_client_key_forms);
	tcase_add_test(tc, test_throttle_failures_forgotten_over_time);
	tcase_add_test(tc, test_throttle_passed_clears_user_only);
	tcase_add_test(tc, test_throttle_table_bounded_keeps_punished);
	tcase_add_test(tc, test_throttle_queue_share_per_client);
	tcase_add_test(tc, test_throttle_refusals_counted);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
