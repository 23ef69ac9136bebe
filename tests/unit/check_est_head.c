/*
 * check_est_head.c: unit tests of src/est/head.c, the request-head checks
 * that keep a proxy and evhttp from framing requests differently.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "est/head.h"

/* A copy of the stream with the spans the scanner hands out filled in, as
 * est/limits.c does in the connection's input buffer. */
struct stream {
	char bytes[1024];
	size_t len;
	unsigned int spans;
};

static void
fill_span(void *arg, uint64_t start, uint64_t end, int fill)
{
	struct stream *s = arg;

	ck_assert_uint_le(start, end);
	ck_assert_uint_le(end, s->len);
	memset(s->bytes + start, fill, (size_t)(end - start));
	s->spans++;
}

/* Scans text (len bytes) in pieces of step bytes; returns the refusal or
 * NULL.  The stream copy with its filled spans is left in s. */
static const char *
scan(struct est_head *h, struct stream *s, const char *text, size_t len,
     size_t step)
{
	size_t i, n;

	memset(s, 0, sizeof(*s));
	ck_assert_uint_lt(len, sizeof(s->bytes));
	memcpy(s->bytes, text, len);
	s->len = len;
	est_head_init(h, fill_span, s);
	for (i = 0; i < len; i += n) {
		n = len - i < step ? len - i : step;
		est_head_feed(h, (const unsigned char *)text + i, n);
	}
	return est_head_refusal(h);
}

/* The refusal of text, scanned whole and byte by byte (the same both
 * ways), or NULL. */
static const char *
refusal(const char *text, size_t len)
{
	static struct est_head h1, h2;
	struct stream s1, s2;
	const char *a, *b;

	a = scan(&h1, &s1, text, len, len);
	b = scan(&h2, &s2, text, len, 1);
	ck_assert_msg(
	    (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0),
	    "whole: %s, byte by byte: %s", a ? a : "(none)", b ? b : "(none)");
	ck_assert_mem_eq(s1.bytes, s2.bytes, len);
	return a;
}

#define REFUSAL(lit) refusal(lit, sizeof(lit) - 1)

static void
assert_refused(const char *got, const char *want)
{
	ck_assert_msg(got != NULL, "not refused, wanted \"%s\"", want);
	ck_assert_msg(strstr(got, want) != NULL,
	              "refused for \"%s\", not \"%s\"", got, want);
}

START_TEST(test_head_well_framed_accepted)
{
	ck_assert_ptr_null(REFUSAL("GET /.well-known/est/cacerts HTTP/1.1\r\n"
	                           "Host: a\r\n\r\n"));
	ck_assert_ptr_null(REFUSAL("POST /x HTTP/1.1\r\nHost: a\r\n"
	                           "content-length:\t 123 \t\r\n\r\n"));
	ck_assert_ptr_null(REFUSAL("POST /x HTTP/1.1\r\nHost: a\r\n"
	                           "Transfer-Encoding: Chunked\r\n\r\n"));
	/* Tabs and spaces inside a value, obs-text, a colon in a value. */
	ck_assert_ptr_null(
	    REFUSAL("GET /x HTTP/1.1\r\nUser-Agent: a\tb c\xff\r\n"
	            "X-Time: 12:00\r\n\r\n"));
}
END_TEST

/* After the empty line the body is not scanned: base64 bodies come with
 * bare LFs and chunk sizes. */
START_TEST(test_head_body_not_scanned)
{
	static const char text[] = "POST /x HTTP/1.1\r\nContent-Length: 9\r\n"
	                           "\r\nAB\nCD\r\0\n\n";

	ck_assert_ptr_null(refusal(text, sizeof(text) - 1));
}
END_TEST

/* est_head_next() starts the next head where the request ended: a bad
 * pipelined head is refused, a good one is not. */
START_TEST(test_head_next_request)
{
	static const char one[] = "POST /x HTTP/1.1\r\nContent-Length: 4\r\n"
	                          "\r\nAB\nC";
	static const char two[] = "GET /y HTTP/1.1\nHost: a\n\n";
	struct est_head h;
	struct stream s;

	ck_assert_ptr_null(scan(&h, &s, one, sizeof(one) - 1, 5));
	est_head_feed(&h, (const unsigned char *)two, sizeof(two) - 1);
	ck_assert_ptr_null(est_head_refusal(&h));
	est_head_next(&h, sizeof(one) - 1);
	ck_assert_uint_eq(h.offset, sizeof(one) - 1);
	est_head_feed(&h, (const unsigned char *)two, sizeof(two) - 1);
	assert_refused(est_head_refusal(&h), "bare LF");
	est_head_next(&h, h.offset);
	ck_assert_ptr_null(est_head_refusal(&h));
	est_head_feed(&h, (const unsigned char *)"GET / HTTP/1.1\r\n\r\n", 18);
	ck_assert_ptr_null(est_head_refusal(&h));
}
END_TEST

START_TEST(test_head_line_ends_refused)
{
	assert_refused(REFUSAL("GET /x HTTP/1.1\nHost: a\r\n\r\n"), "bare LF");
	assert_refused(REFUSAL("GET /x HTTP/1.1\r\nHost: a\n\r\n"), "bare LF");
	assert_refused(REFUSAL("GET /x HTTP/1.1\r\nA: 1\rB: 2\r\n\r\n"),
	               "bare CR");
	assert_refused(REFUSAL("GET /x HTTP/1.1\r\nA: 1\r\r\n\r\n"), "bare CR");
	assert_refused(REFUSAL("GET /x HTTP/1.1\r\nA: a\0b\r\n\r\n"), "NUL");
	assert_refused(REFUSAL("GET /x\0 HTTP/1.1\r\n\r\n"), "NUL");
}
END_TEST

START_TEST(test_head_fields_refused)
{
	assert_refused(REFUSAL("GET /x HTTP/1.1\r\nA: a\r\n b\r\n\r\n"),
	               "line folding");
	assert_refused(REFUSAL("GET /x HTTP/1.1\r\nA: a\r\n\tb\r\n\r\n"),
	               "line folding");
	assert_refused(
	    REFUSAL("POST /x HTTP/1.1\r\nContent-Length : 5\r\n\r\n"),
	    "space before the colon");
	assert_refused(REFUSAL("POST /x HTTP/1.1\r\nContent-Length: 5\r\n"
	                       "content-length: 6\r\n\r\n"),
	               "Content-Length given twice (\"5\" and \"6\")");
	assert_refused(REFUSAL("POST /x HTTP/1.1\r\nContent-Length: 5\r\n"
	                       "Content-Length: 5\r\n\r\n"),
	               "Content-Length given twice");
	assert_refused(
	    REFUSAL("POST /x HTTP/1.1\r\nContent-Length: +5\r\n\r\n"),
	    "Content-Length \"+5\" is not a plain decimal number");
	assert_refused(
	    REFUSAL("POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
	    "\"-1\"");
	assert_refused(
	    REFUSAL("POST /x HTTP/1.1\r\nContent-Length:  5x\r\n\r\n"),
	    "\"5x\"");
	assert_refused(
	    REFUSAL("POST /x HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n"),
	    "\"5 5\"");
	assert_refused(REFUSAL("POST /x HTTP/1.1\r\nContent-Length:\r\n\r\n"),
	               "Content-Length \"\"");
	assert_refused(REFUSAL("POST /x HTTP/1.1\r\nContent-Length: "
	                       "123456789012345678901234\"\r\n\r\n"),
	               "\"1234567890123456...\"");
	assert_refused(
	    REFUSAL("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	            "Content-Length: 5\r\n\r\n"),
	    "Transfer-Encoding together with Content-Length");
	assert_refused(REFUSAL("POST /x HTTP/1.1\r\nContent-Length: 5\r\n"
	                       "Transfer-Encoding: chunked\r\n\r\n"),
	               "Transfer-Encoding together with Content-Length");
	assert_refused(
	    REFUSAL("POST /x HTTP/1.1\r\n"
	            "Transfer-Encoding: gzip, chunked\r\n\r\n"),
	    "Transfer-Encoding \"gzip, chunked\" is not \"chunked\"");
	assert_refused(
	    REFUSAL("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	            "Transfer-Encoding: chunked\r\n\r\n"),
	    "Transfer-Encoding given twice");
}
END_TEST

/* The first reason is the one named, and the values of the framing fields
 * of a refused head (and its bare CRs) are handed out to be overwritten
 * (the name of Transfer-Encoding, which evhttp refuses with any value),
 * those before the refusal too, so that evhttp reads no body. */
START_TEST(test_head_spans_filled)
{
	static const char text[] = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n"
	                           "X: a\nContent-Length: -1\r\nY: 1\r2\r\n"
	                           "Transfer-Encoding: chunked\r\n\r\nbody";
	static const char want[] = "POST /x HTTP/1.1\r\nContent-Length:00\r\n"
	                           "X: a\nContent-Length:000\r\nY: 1 2\r\n"
	                           "XXXXXXXXXXXXXXXXX: chunked\r\n\r\nbody";
	struct est_head h;
	struct stream s;

	assert_refused(scan(&h, &s, text, sizeof(text) - 1, 7), "bare LF");
	ck_assert_uint_eq(s.spans, 4);
	ck_assert_mem_eq(s.bytes, want, sizeof(want) - 1);
	/* A head that is not refused keeps its bytes. */
	ck_assert_ptr_null(scan(
	    &h, &s, "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 39, 3));
	ck_assert_uint_eq(s.spans, 0);
}
END_TEST

/* evhttp reads no body for GET (nor HEAD, DELETE, OPTIONS): a body there
 * would become the next request for evhttp, and stay a body for a proxy. */
START_TEST(test_head_body_on_get_refused)
{
	assert_refused(REFUSAL("GET /x HTTP/1.1\r\nContent-Length: 30\r\n\r\n"),
	               "a body on a GET request");
	assert_refused(REFUSAL("DELETE /x HTTP/1.1\r\n"
	                       "Transfer-Encoding: chunked\r\n\r\n"),
	               "a body on a DELETE request");
	assert_refused(REFUSAL("VERYLONGMETHOD /x HTTP/1.1\r\n"
	                       "Content-Length: 1\r\n\r\n"),
	               "a body on a long-named request");
	ck_assert_ptr_null(
	    REFUSAL("GET /x HTTP/1.1\r\nContent-Length: 00\r\n\r\n"));
	ck_assert_ptr_null(
	    REFUSAL("PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\n"));
	ck_assert_ptr_null(
	    REFUSAL("PATCH /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
}
END_TEST

static Suite *
head_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("est_head");
	tc = tcase_create("accepted");
	tcase_add_test(tc, test_head_well_framed_accepted);
	tcase_add_test(tc, test_head_body_not_scanned);
	tcase_add_test(tc, test_head_next_request);
	suite_add_tcase(s, tc);

	tc = tcase_create("refused");
	tcase_add_test(tc, test_head_line_ends_refused);
	tcase_add_test(tc, test_head_fields_refused);
	tcase_add_test(tc, test_head_spans_filled);
	tcase_add_test(tc, test_head_body_on_get_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(head_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
