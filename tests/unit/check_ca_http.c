/*
 * check_ca_http.c: unit tests of the asynchronous HTTP client (http.c).
 * Each test runs a tiny evhttp server on 127.0.0.1 in a thread of its own
 * and drives transfers on a separate event_base, the way a worker does.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "ca_plugins/http.h"

/* The test server: its own loop in its own thread. */
static struct event_base *srv_base;
static struct evhttp *srv_http;
static pthread_t srv_thread;
static int srv_port;
static int srv_connections; /* new connections seen (server thread) */
static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;

/* What one transfer ended in, copied out of the callback. */
struct outcome {
	int done;
	int curl_code;
	long status;
	char cause[512];
	char body[4096];
	size_t body_len;
	char content_type[128];
	int capped;
	int request_sent;
	struct timeval at;
};

/* The client side of a test. */
static struct event_base *cli_base;
static int cli_pending; /* callbacks still expected */
static int in_start;    /* ca_http_start() is running */
static int early;       /* a callback ran inside ca_http_start() */

static long
ms_since(const struct timeval *t0)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return (now.tv_sec - t0->tv_sec) * 1000L +
	       (now.tv_usec - t0->tv_usec) / 1000L;
}

static const char *
query_get(struct evhttp_request *req, const char *name)
{
	static char value[64];
	struct evkeyvalq q;
	const char *uri, *v;

	value[0] = '\0';
	uri = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (uri == NULL || evhttp_parse_query_str(uri, &q) != 0)
		return value;
	if ((v = evhttp_find_header(&q, name)) != NULL)
		snprintf(value, sizeof(value), "%s", v);
	evhttp_clear_headers(&q);
	return value;
}

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
           const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, text, strlen(text));
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Content-Type", "text/plain");
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static void
slow_reply(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reply_text(arg, 200, "OK", "slow");
}

/* Routes the test server's few paths. */
static void
srv_handle(struct evhttp_request *req, void *arg)
{
	const char *path =
	    evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	char text[2048];
	const char *v;

	(void)arg;
	if (path == NULL)
		path = "";
	if (strcmp(path, "/hello") == 0) {
		reply_text(req, 200, "OK", "hello");
	} else if (strcmp(path, "/echo") == 0) {
		struct evbuffer *body = evhttp_request_get_input_buffer(req);
		size_t n = evbuffer_get_length(body);
		char data[1024] = "";

		if (n >= sizeof(data))
			n = sizeof(data) - 1;
		evbuffer_copyout(body, data, n);
		data[n] = '\0';
		v = evhttp_find_header(in, "Content-Type");
		snprintf(text, sizeof(text), "%s %s %s",
		         evhttp_request_get_command(req) == EVHTTP_REQ_POST
		             ? "POST"
		             : "GET",
		         data, v != NULL ? v : "-");
		reply_text(req, 200, "OK", text);
	} else if (strcmp(path, "/headers") == 0) {
		const char *ua = evhttp_find_header(in, "User-Agent");
		const char *x = evhttp_find_header(in, "X-Test");

		snprintf(text, sizeof(text), "ua=%s x=%s", ua ? ua : "-",
		         x ? x : "-");
		reply_text(req, 200, "OK", text);
	} else if (strcmp(path, "/auth") == 0) {
		if ((v = evhttp_find_header(in, "Authorization")) == NULL) {
			evhttp_add_header(
			    evhttp_request_get_output_headers(req),
			    "WWW-Authenticate", "Basic realm=\"test\"");
			reply_text(req, 401, "Unauthorized", "who are you");
		} else
			reply_text(req, 200, "OK", v);
	} else if (strcmp(path, "/status") == 0) {
		int code = (int)strtol(query_get(req, "code"), NULL, 10);

		reply_text(req, code, code == 503 ? "Service Unavailable" : "X",
		           "status");
	} else if (strcmp(path, "/big") == 0) {
		size_t n = (size_t)strtoul(query_get(req, "n"), NULL, 10);
		struct evbuffer *b = evbuffer_new();
		char chunk[4096];

		memset(chunk, 'x', sizeof(chunk));
		while (n > 0) {
			size_t k = n < sizeof(chunk) ? n : sizeof(chunk);

			evbuffer_add(b, chunk, k);
			n -= k;
		}
		evhttp_send_reply(req, 200, "OK", b);
		evbuffer_free(b);
	} else if (strcmp(path, "/slow") == 0) {
		long ms = strtol(query_get(req, "ms"), NULL, 10);
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

		event_base_once(srv_base, -1, EV_TIMEOUT, slow_reply, req, &tv);
	} else if (strcmp(path, "/setcookie") == 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "Set-Cookie", "ASPSESSIONIDAB=xyz; path=/");
		reply_text(req, 200, "OK", "set");
	} else if (strcmp(path, "/getcookie") == 0) {
		v = evhttp_find_header(in, "Cookie");
		reply_text(req, 200, "OK", v != NULL ? v : "-");
	} else
		reply_text(req, 404, "Not Found", "no such page");
}

/* Counts the server's new connections (keep-alive check). */
static struct bufferevent *
srv_bevcb(struct event_base *base, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&srv_lock);
	srv_connections++;
	pthread_mutex_unlock(&srv_lock);
	return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static void *
srv_main(void *arg)
{
	(void)arg;
	event_base_dispatch(srv_base);
	return NULL;
}

static void
srv_start(void)
{
	struct evhttp_bound_socket *sock;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	ck_assert_ptr_nonnull(srv_base = event_base_new());
	ck_assert_ptr_nonnull(srv_http = evhttp_new(srv_base));
	evhttp_set_gencb(srv_http, srv_handle, NULL);
	evhttp_set_bevcb(srv_http, srv_bevcb, NULL);
	sock = evhttp_bind_socket_with_handle(srv_http, "127.0.0.1", 0);
	ck_assert_ptr_nonnull(sock);
	ck_assert_int_eq(getsockname(evhttp_bound_socket_get_fd(sock),
	                             (struct sockaddr *)&sin, &len),
	                 0);
	srv_port = ntohs(sin.sin_port);
	srv_connections = 0;
	ck_assert_int_eq(pthread_create(&srv_thread, NULL, srv_main, NULL), 0);
}

static void
srv_stop(void)
{
	event_base_loopexit(srv_base, NULL);
	pthread_join(srv_thread, NULL);
	evhttp_free(srv_http);
	event_base_free(srv_base);
	srv_base = NULL;
}

static void
setup(void)
{
	srv_start();
	ck_assert_ptr_nonnull(cli_base = event_base_new());
	cli_pending = 0;
	early = 0;
}

static void
teardown(void)
{
	ca_http_shutdown(cli_base);
	event_base_free(cli_base);
	cli_base = NULL;
	srv_stop();
}

static void
url(char *buf, size_t len, const char *path)
{
	snprintf(buf, len, "http://127.0.0.1:%d%s", srv_port, path);
}

static void
done_cb(struct ca_http_transfer *t, const struct ca_http_response *res,
        void *arg)
{
	struct outcome *o = arg;
	size_t n;

	(void)t;
	if (in_start)
		early = 1;
	o->done++;
	o->curl_code = res->curl_code;
	o->status = res->status;
	o->capped = res->capped;
	o->request_sent = res->request_sent;
	ca_http_cause(res, o->cause, sizeof(o->cause));
	snprintf(o->content_type, sizeof(o->content_type), "%s",
	         res->content_type);
	n = evbuffer_get_length(res->body);
	o->body_len = n;
	if (n >= sizeof(o->body))
		n = sizeof(o->body) - 1;
	evbuffer_copyout(res->body, o->body, n);
	o->body[n] = '\0';
	gettimeofday(&o->at, NULL);
	if (--cli_pending <= 0)
		event_base_loopbreak(cli_base);
}

static void
watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(cli_base);
}

/* Runs the client loop until every expected callback ran (or 10 s). */
static void
run_loop(long max_ms)
{
	struct timeval tv = {max_ms / 1000, (max_ms % 1000) * 1000};
	struct event *ev = evtimer_new(cli_base, watchdog, NULL);

	evtimer_add(ev, &tv);
	event_base_dispatch(cli_base);
	event_free(ev);
}

static struct ca_http_transfer *
start(const struct ca_http_request *req, struct outcome *o)
{
	struct ca_http_transfer *t;
	char err[256] = "";

	in_start = 1;
	t = ca_http_start(cli_base, req, done_cb, o, err, sizeof(err));
	in_start = 0;
	ck_assert_msg(t != NULL, "ca_http_start: %s", err);
	cli_pending++;
	return t;
}

static void
fetch(const char *path, struct outcome *o)
{
	struct ca_http_request req = {0};
	char u[256];

	url(u, sizeof(u), path);
	req.url = u;
	start(&req, o);
	run_loop(10000);
}

START_TEST(test_http_get_body)
{
	struct outcome o = {0};

	fetch("/hello", &o);
	ck_assert_int_eq(o.done, 1);
	ck_assert_int_eq(early, 0);
	ck_assert_int_eq(o.curl_code, 0);
	ck_assert_int_eq(o.status, 200);
	ck_assert_str_eq(o.body, "hello");
	ck_assert_str_eq(o.content_type, "text/plain");
	ck_assert_str_eq(o.cause, "HTTP 200 \"OK\"");
}
END_TEST

START_TEST(test_http_post_form_body)
{
	static const char body[] = "Mode=newreq&CertAttrib=A%20B";
	struct ca_http_request req = {0};
	struct outcome o = {0};
	char u[256];

	url(u, sizeof(u), "/echo");
	req.url = u;
	req.method = CA_HTTP_POST;
	req.body = body;
	req.body_len = strlen(body);
	start(&req, &o);
	run_loop(10000);
	ck_assert_int_eq(o.curl_code, 0);
	ck_assert_str_eq(o.body, "POST Mode=newreq&CertAttrib=A%20B "
	                         "application/x-www-form-urlencoded");
}
END_TEST

START_TEST(test_http_headers_and_user_agent)
{
	static const char *const headers[] = {"X-Test: 42", NULL};
	struct ca_http_request req = {0};
	struct outcome o = {0};
	char u[256];

	url(u, sizeof(u), "/headers");
	req.url = u;
	req.headers = headers;
	req.user_agent = "Mozilla/5.0 (compatible; estrad-test)";
	start(&req, &o);
	run_loop(10000);
	ck_assert_str_eq(o.body,
	                 "ua=Mozilla/5.0 (compatible; estrad-test) x=42");
}
END_TEST

START_TEST(test_http_basic_auth_header_sent)
{
	struct ca_http_request req = {0};
	struct outcome o = {0}, anon = {0};
	char u[256];

	url(u, sizeof(u), "/auth");
	req.url = u;
	req.auth = CA_HTTP_AUTH_BASIC;
	req.username = "user";
	req.password = "pass";
	start(&req, &o);
	run_loop(10000);
	ck_assert_int_eq(o.status, 200);
	ck_assert_str_eq(o.body, "Basic dXNlcjpwYXNz");
	fetch("/auth", &anon);
	ck_assert_int_eq(anon.status, 401);
	ck_assert_str_eq(anon.cause, "HTTP 401 \"Unauthorized\"");
}
END_TEST

START_TEST(test_http_status_cause)
{
	struct outcome o = {0};

	fetch("/status?code=503", &o);
	ck_assert_int_eq(o.curl_code, 0);
	ck_assert_int_eq(o.status, 503);
	ck_assert_str_eq(o.cause, "HTTP 503 \"Service Unavailable\"");
}
END_TEST

START_TEST(test_http_body_cap)
{
	struct ca_http_request req = {0};
	struct outcome o = {0}, small = {0};
	char u[256], path[64];

	snprintf(path, sizeof(path), "/big?n=%d", 2 * CA_MAX_RESPONSE);
	fetch(path, &o);
	ck_assert_int_eq(o.curl_code, 23);
	ck_assert_int_eq(o.capped, 1);
	ck_assert_uint_le(o.body_len, CA_MAX_RESPONSE);
	ck_assert_msg(strstr(o.cause, "curl 23 ") == o.cause &&
	                  strstr(o.cause, "CA_MAX_RESPONSE (1048576 bytes)"),
	              "cause: %s", o.cause);
	/* A smaller cap, and an answer of exactly the cap passes. */
	url(u, sizeof(u), "/big?n=100");
	req.url = u;
	req.max_response = 100;
	start(&req, &small);
	run_loop(10000);
	ck_assert_int_eq(small.curl_code, 0);
	ck_assert_uint_eq(small.body_len, 100);
}
END_TEST

START_TEST(test_http_timeout)
{
	struct ca_http_request req = {0};
	struct outcome o = {0};
	struct timeval t0;
	char u[256];

	url(u, sizeof(u), "/slow?ms=3000");
	req.url = u;
	req.timeout_ms = 300;
	gettimeofday(&t0, NULL);
	start(&req, &o);
	run_loop(10000);
	ck_assert_int_eq(o.curl_code, 28);
	ck_assert_int_eq(o.request_sent, 1);
	ck_assert_int_lt(ms_since(&t0), 2000);
	ck_assert_msg(strstr(o.cause, "curl 28 \"Timeout was reached\" (") ==
	                  o.cause,
	              "cause: %s", o.cause);
}
END_TEST

START_TEST(test_http_connection_refused)
{
	struct ca_http_request req = {0};
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct outcome o = {0};
	char u[256];
	int fd;

	/* A port that was free a moment ago and has no listener now. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/", ntohs(sin.sin_port));
	req.url = u;
	start(&req, &o);
	run_loop(10000);
	ck_assert_int_eq(o.curl_code, 7);
	ck_assert_int_eq(o.request_sent, 0);
	ck_assert_msg(strstr(o.cause, "curl 7 \"Couldn't connect to server\" "
	                              "(") == o.cause,
	              "cause: %s", o.cause);
}
END_TEST

START_TEST(test_http_unresolvable_host)
{
	struct ca_http_request req = {0};
	struct outcome o = {0};

	req.url = "http://nonexistent.invalid/certsrv/";
	start(&req, &o);
	run_loop(20000);
	ck_assert_int_eq(o.done, 1);
	ck_assert_int_eq(o.curl_code, 6);
	ck_assert_msg(strstr(o.cause, "curl 6 \"Couldn't resolve host name\" "
	                              "(") == o.cause &&
	                  strstr(o.cause, "nonexistent.invalid") != NULL,
	              "cause: %s", o.cause);
}
END_TEST

START_TEST(test_http_tls_to_plain_server)
{
	struct ca_http_request req = {0};
	struct outcome o = {0};
	char u[256];

	snprintf(u, sizeof(u), "https://127.0.0.1:%d/hello", srv_port);
	req.url = u;
	start(&req, &o);
	run_loop(10000);
	ck_assert_int_eq(o.curl_code, 35);
}
END_TEST

START_TEST(test_http_parallel_not_serial)
{
	struct outcome a = {0}, b = {0};
	struct ca_http_request req = {0};
	struct timeval t0;
	char u[256];
	long ms;

	url(u, sizeof(u), "/slow?ms=700");
	req.url = u;
	gettimeofday(&t0, NULL);
	start(&req, &a);
	start(&req, &b);
	run_loop(10000);
	ms = ms_since(&t0);
	ck_assert_int_eq(a.done + b.done, 2);
	ck_assert_str_eq(a.body, "slow");
	ck_assert_str_eq(b.body, "slow");
	ck_assert_msg(ms < 1300, "two 700 ms answers took %ld ms", ms);
}
END_TEST

START_TEST(test_http_keepalive_reuses_connection)
{
	struct outcome a = {0}, b = {0};
	int n;

	fetch("/hello", &a);
	fetch("/hello", &b);
	ck_assert_int_eq(b.status, 200);
	pthread_mutex_lock(&srv_lock);
	n = srv_connections;
	pthread_mutex_unlock(&srv_lock);
	ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(test_http_cookie_engine)
{
	struct outcome a = {0}, b = {0};

	fetch("/setcookie", &a);
	fetch("/getcookie", &b);
	ck_assert_str_eq(b.body, "ASPSESSIONIDAB=xyz");
}
END_TEST

/* A transfer started from a completion callback runs at once: the loop's
 * timer must not be dropped when the finished one was the last. */
static struct outcome chained_second;

static void
chained_cb(struct ca_http_transfer *t, const struct ca_http_response *res,
           void *arg)
{
	struct ca_http_request req = {0};
	char u[256], err[128];

	cli_pending++;
	done_cb(t, res, arg);
	url(u, sizeof(u), "/hello");
	req.url = u;
	ck_assert_ptr_nonnull(ca_http_start(cli_base, &req, done_cb,
	                                    &chained_second, err, sizeof(err)));
}

START_TEST(test_http_start_from_callback)
{
	struct ca_http_request req = {0};
	struct outcome first = {0};
	struct timeval t0;
	char u[256], err[128];

	memset(&chained_second, 0, sizeof(chained_second));
	url(u, sizeof(u), "/hello");
	req.url = u;
	ck_assert_ptr_nonnull(ca_http_start(cli_base, &req, chained_cb, &first,
	                                    err, sizeof(err)));
	cli_pending++;
	gettimeofday(&t0, NULL);
	run_loop(5000);
	ck_assert_int_eq(first.done, 1);
	ck_assert_int_eq(chained_second.done, 1);
	ck_assert_str_eq(chained_second.body, "hello");
	ck_assert_int_lt(ms_since(&t0), 2000);
}
END_TEST

START_TEST(test_http_cancel_no_callback)
{
	struct ca_http_request req = {0};
	struct ca_http_transfer *t;
	struct outcome o = {0}, other = {0};
	char u[256];

	url(u, sizeof(u), "/slow?ms=300");
	req.url = u;
	t = start(&req, &o);
	cli_pending--;
	start(&req, &other);
	ca_http_cancel(t);
	run_loop(3000);
	ck_assert_int_eq(o.done, 0);
	ck_assert_int_eq(other.done, 1);
}
END_TEST

START_TEST(test_http_shutdown_completes_running)
{
	struct ca_http_request req = {0};
	struct outcome o = {0};
	char u[256];

	url(u, sizeof(u), "/slow?ms=5000");
	req.url = u;
	start(&req, &o);
	run_loop(200);
	ck_assert_int_eq(o.done, 0);
	ca_http_shutdown(cli_base);
	ck_assert_int_eq(o.done, 1);
	ck_assert_int_eq(o.curl_code, 42);
	ck_assert_msg(strstr(o.cause, "(shutting down)") != NULL, "cause: %s",
	              o.cause);
}
END_TEST

START_TEST(test_http_start_refuses_incomplete)
{
	struct ca_http_request req = {0};
	char err[128] = "";

	ck_assert_ptr_null(
	    ca_http_start(cli_base, &req, done_cb, NULL, err, sizeof(err)));
	ck_assert_str_ne(err, "");
}
END_TEST

START_TEST(test_http_cause_shapes)
{
	struct ca_http_response res;
	char buf[256];

	memset(&res, 0, sizeof(res));
	res.curl_code = 6;
	res.curl_text = "Couldn't resolve host name";
	snprintf(res.error, sizeof(res.error), "Could not resolve host: x");
	ck_assert_str_eq(
	    ca_http_cause(&res, buf, sizeof(buf)),
	    "curl 6 \"Couldn't resolve host name\" (Could not resolve host: "
	    "x)");
	res.error[0] = '\0';
	ck_assert_str_eq(ca_http_cause(&res, buf, sizeof(buf)),
	                 "curl 6 \"Couldn't resolve host name\"");
	memset(&res, 0, sizeof(res));
	res.status = 401;
	ck_assert_str_eq(ca_http_cause(&res, buf, sizeof(buf)),
	                 "HTTP 401 \"Unauthorized\"");
	snprintf(res.reason, sizeof(res.reason), "Unauthorized: Access");
	ck_assert_str_eq(ca_http_cause(&res, buf, sizeof(buf)),
	                 "HTTP 401 \"Unauthorized: Access\"");
	ck_assert_str_eq(ca_http_auth_name(CA_HTTP_AUTH_CLIENT_CERT),
	                 "client-cert");
	/* Truncation keeps a terminated string. */
	memset(&res, 0, sizeof(res));
	res.curl_code = 7;
	res.curl_text = "Couldn't connect to server";
	ca_http_cause(&res, buf, 10);
	ck_assert_uint_eq(strlen(buf), 9);
}
END_TEST

static Suite *
ca_http_suite(void)
{
	Suite *s = suite_create("ca_http");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_http_get_body);
	tcase_add_test(tc, test_http_post_form_body);
	tcase_add_test(tc, test_http_headers_and_user_agent);
	tcase_add_test(tc, test_http_basic_auth_header_sent);
	tcase_add_test(tc, test_http_status_cause);
	tcase_add_test(tc, test_http_body_cap);
	tcase_add_test(tc, test_http_timeout);
	tcase_add_test(tc, test_http_connection_refused);
	tcase_add_test(tc, test_http_unresolvable_host);
	tcase_add_test(tc, test_http_tls_to_plain_server);
	tcase_add_test(tc, test_http_parallel_not_serial);
	tcase_add_test(tc, test_http_keepalive_reuses_connection);
	tcase_add_test(tc, test_http_cookie_engine);
	tcase_add_test(tc, test_http_start_from_callback);
	tcase_add_test(tc, test_http_cancel_no_callback);
	tcase_add_test(tc, test_http_shutdown_completes_running);
	tcase_add_test(tc, test_http_start_refuses_incomplete);
	tcase_add_test(tc, test_http_cause_shapes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	/* The server thread is stopped from the test's thread. */
	evthread_use_pthreads();
	sr = srunner_create(ca_http_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
