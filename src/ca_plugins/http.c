/*
 * http.c: libcurl's multi interface on libevent, one multi handle per
 * event_base (see http.h).  The socket and timer callbacks follow curl's
 * docs/examples/multi-event.c; unlike the example, the result of every
 * finished transfer (msg->data.result) is what its owner is told.
 *
 * The per-base state lives in a small registry keyed by the base, so that
 * any thread finds its own loop's multi and so that what is still cached
 * at exit (idle connections of a worker) stays reachable.  Only the
 * registry itself is shared between threads, under a mutex; a loop's
 * multi, events and transfers are touched only by its own thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "ca_plugins/ca.h"
#include "ca_plugins/http.h"

#define HTTP_CONNECT_TIMEOUT_MS 10000L
#define HTTP_TIMEOUT_MS         60000L

/* Idle connections each multi keeps for reuse. */
#define HTTP_MAX_CONNECTS 16

/* One socket curl watches, with its event. */
struct http_sock {
	struct event *ev;
	struct http_loop *loop;
};

/* The multi handle of one event_base. */
struct http_loop {
	struct event_base *base; /* borrowed; the registry key */
	CURLM *multi;
	CURLSH *share;                  /* cookies of every transfer */
	struct event *timer;            /* CURLMOPT_TIMERFUNCTION's timer */
	struct ca_http_transfer *first; /* transfers running, for shutdown */
	struct http_loop *next;         /* registry list */
};

struct ca_http_transfer {
	struct http_loop *loop;
	CURL *easy;
	struct curl_slist *headers;
	char *body; /* POST body copy, alive as long as the easy handle */
	ca_http_done_fn done;
	void *arg;
	struct ca_http_response res;
	char errbuf[CURL_ERROR_SIZE];
	char capture[64]; /* capture_cookie's name, "" when none */
	struct ca_http_transfer *prev, *next;
};

static pthread_mutex_t http_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct http_loop *http_registry;
static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc = CURLE_FAILED_INIT;

static const char *const http_auth_names[CA_HTTP_AUTH__MAX] = {
    "none", "basic", "ntlm", "negotiate", "client-cert", "any",
};

const char *
ca_http_auth_name(enum ca_http_auth auth)
{
	if ((unsigned int)auth >= CA_HTTP_AUTH__MAX)
		return "unknown";
	return http_auth_names[auth];
}

/*
 * curl_global_init() once per process: it is not thread-safe in every
 * libcurl, and workers may start their first transfers at the same time.
 */
static void
http_global_init(void)
{
	http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void http_check_multi_info(struct http_loop *loop);

/* A socket is ready: tell curl, then collect what finished. */
static void
http_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_loop *loop = arg;
	int action = 0, running = 0;

	action |= (what & EV_READ) ? CURL_CSELECT_IN : 0;
	action |= (what & EV_WRITE) ? CURL_CSELECT_OUT : 0;
	curl_multi_socket_action(loop->multi, fd, action, &running);
	/* Unlike multi-event.c, the timer is left to curl's timer function:
	 * a completion callback may have added a transfer whose start is
	 * that very timer, even when running says 0. */
	http_check_multi_info(loop);
}

/* curl's timeout expired (or asked to be run at once). */
static void
http_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_loop *loop = arg;
	int running = 0;

	(void)fd;
	(void)what;
	curl_multi_socket_action(loop->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_check_multi_info(loop);
}

/*
 * CURLMOPT_TIMERFUNCTION: -1 deletes the timer, 0 makes it fire from the
 * loop at once (curl must not be re-entered from its own callback).
 */
static int
http_timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_loop *loop = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(loop->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(loop->timer, &tv) == 0 ? 0 : -1;
}

/*
 * CURLMOPT_SOCKETFUNCTION: one event per socket, remembered with
 * curl_multi_assign(), re-armed when curl changes what it waits for and
 * freed when curl is done with the socket.
 */
static int
http_socket_fn(CURL *easy, curl_socket_t s, int what, void *userp,
               void *socketp)
{
	struct http_loop *loop = userp;
	struct http_sock *sock = socketp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (sock != NULL) {
			event_free(sock->ev);
			free(sock);
		}
		return 0;
	}
	kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
	               ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
	if (sock == NULL) {
		if ((sock = calloc(1, sizeof(*sock))) == NULL)
			return -1;
		sock->loop = loop;
		if ((sock->ev = event_new(loop->base, s, kind, http_event_cb,
		                          loop)) == NULL) {
			free(sock);
			return -1;
		}
		if (curl_multi_assign(loop->multi, s, sock) != CURLM_OK) {
			event_free(sock->ev);
			free(sock);
			return -1;
		}
	} else {
		event_del(sock->ev);
		if (event_assign(sock->ev, loop->base, s, kind, http_event_cb,
		                 loop) != 0)
			return -1;
	}
	return event_add(sock->ev, NULL) == 0 ? 0 : -1;
}

/* Frees loop's handles; the loop must have no transfer left. */
static void
http_loop_free(struct http_loop *loop)
{
	if (loop == NULL)
		return;
	/* curl_multi_cleanup() closes the cached connections, which calls
	 * the socket function with CURL_POLL_REMOVE: the events go too. */
	if (loop->multi != NULL)
		curl_multi_cleanup(loop->multi);
	if (loop->share != NULL)
		curl_share_cleanup(loop->share);
	if (loop->timer != NULL)
		event_free(loop->timer);
	free(loop);
}

/*
 * Returns base's loop state, created on first use and registered; NULL
 * when out of memory.
 */
static struct http_loop *
http_loop_get(struct event_base *base)
{
	struct http_loop *loop, *rc = NULL;

	pthread_mutex_lock(&http_registry_lock);
	for (loop = http_registry; loop != NULL; loop = loop->next)
		if (loop->base == base) {
			rc = loop;
			goto out;
		}
	if ((loop = calloc(1, sizeof(*loop))) == NULL)
		goto out;
	loop->base = base;
	if ((loop->multi = curl_multi_init()) == NULL ||
	    (loop->share = curl_share_init()) == NULL ||
	    (loop->timer = evtimer_new(base, http_timer_cb, loop)) == NULL ||
	    curl_share_setopt(loop->share, CURLSHOPT_SHARE,
	                      CURL_LOCK_DATA_COOKIE) != CURLSHE_OK ||
	    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION,
	                      http_socket_fn) != CURLM_OK ||
	    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop) !=
	        CURLM_OK ||
	    curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION,
	                      http_timer_fn) != CURLM_OK ||
	    curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop) !=
	        CURLM_OK ||
	    curl_multi_setopt(loop->multi, CURLMOPT_MAXCONNECTS,
	                      (long)HTTP_MAX_CONNECTS) != CURLM_OK) {
		http_loop_free(loop);
		goto out;
	}
	loop->next = http_registry;
	http_registry = loop;
	rc = loop;
out:
	pthread_mutex_unlock(&http_registry_lock);
	return rc;
}

/* Appends to the body up to its cap; past it, curl fails with 23. */
static size_t
http_write_fn(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct ca_http_transfer *t = userdata;
	size_t n = size * nmemb;

	if (n > t->res.cap - evbuffer_get_length(t->res.body)) {
		t->res.capped = 1;
		return 0;
	}
	if (evbuffer_add(t->res.body, ptr, n) != 0)
		return 0;
	return n;
}

/*
 * Copies the value of a "Set-Cookie: NAME=VALUE; attributes" line to the
 * response when NAME is the cookie asked for; the value ends at the first
 * ';', blank or line end and is dropped when it does not fit.
 */
static void
http_capture_cookie(struct ca_http_transfer *t, const char *p, size_t n)
{
	size_t i = 0, len = strlen(t->capture), j;

	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (n - i <= len || strncmp(p + i, t->capture, len) != 0 ||
	    p[i + len] != '=')
		return;
	i += len + 1;
	for (j = i; j < n && p[j] != ';' && p[j] != ' ' && p[j] != '\r' &&
	            p[j] != '\n' && p[j] != '\t';
	     j++)
		;
	if (j - i >= sizeof(t->res.cookie))
		return;
	memcpy(t->res.cookie, p + i, j - i);
	t->res.cookie[j - i] = '\0';
}

/*
 * Keeps the reason phrase of the last status line ("HTTP/1.1 401
 * Unauthorized"), bounded to the response's field; other header lines are
 * read with curl_easy_getinfo() at the end.
 */
static size_t
http_header_fn(char *ptr, size_t size, size_t nitems, void *userdata)
{
	struct ca_http_transfer *t = userdata;
	size_t n = size * nitems, i = 0, j = 0;

	if (t->capture[0] != '\0' && n > 11 &&
	    strncasecmp(ptr, "Set-Cookie:", 11) == 0) {
		http_capture_cookie(t, ptr + 11, n - 11);
		return n;
	}
	if (n < 5 || memcmp(ptr, "HTTP/", 5) != 0)
		return n;
	/* Skip the version and the status code. */
	while (i < n && ptr[i] != ' ')
		i++;
	while (i < n && ptr[i] == ' ')
		i++;
	while (i < n && ptr[i] != ' ' && ptr[i] != '\r' && ptr[i] != '\n')
		i++;
	while (i < n && ptr[i] == ' ')
		i++;
	while (i < n && ptr[i] != '\r' && ptr[i] != '\n' &&
	       j + 1 < sizeof(t->res.reason))
		t->res.reason[j++] = ptr[i++];
	t->res.reason[j] = '\0';
	return n;
}

static void
http_transfer_free(struct ca_http_transfer *t)
{
	if (t == NULL)
		return;
	if (t->easy != NULL)
		curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	free(t->body);
	if (t->res.body != NULL)
		evbuffer_free(t->res.body);
	free(t);
}

static void
http_unlink(struct ca_http_transfer *t)
{
	if (t->prev != NULL)
		t->prev->next = t->next;
	else if (t->loop->first == t)
		t->loop->first = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
}

/*
 * Ends t with result: fills the response, takes t out of the multi (its
 * connection goes back to the cache), calls the owner and frees t.
 */
static void
http_finish(struct ca_http_transfer *t, CURLcode result)
{
	curl_off_t us = 0;
	long sent = 0;
	char *type = NULL;

	t->res.curl_code = (int)result;
	t->res.curl_text = curl_easy_strerror(result);
	snprintf(t->res.error, sizeof(t->res.error), "%s", t->errbuf);
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->res.status);
	if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &type) ==
	        CURLE_OK &&
	    type != NULL)
		snprintf(t->res.content_type, sizeof(t->res.content_type), "%s",
		         type);
	if (curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &us) == CURLE_OK)
		t->res.elapsed_ms = (long)(us / 1000);
	/* Bytes of request headers sent: a POST that timed out after this
	 * may have reached the CA, so it is not retried elsewhere. */
	if (curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &sent) ==
	        CURLE_OK &&
	    sent > 0)
		t->res.request_sent = 1;
	curl_multi_remove_handle(t->loop->multi, t->easy);
	http_unlink(t);
	t->done(t, &t->res, t->arg);
	http_transfer_free(t);
}

/*
 * Drains curl's messages after curl_multi_socket_action(); each finished
 * transfer is completed with its own result.  The message is copied
 * before the handle is removed, which invalidates it.
 */
static void
http_check_multi_info(struct http_loop *loop)
{
	struct ca_http_transfer *t;
	CURLMsg *msg;
	CURLcode result;
	int left;
	CURL *easy;

	while ((msg = curl_multi_info_read(loop->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		result = msg->data.result;
		t = NULL;
		if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t) !=
		        CURLE_OK ||
		    t == NULL)
			continue;
		http_finish(t, result);
	}
}

/* Sets the authentication options of req on easy. */
static CURLcode
http_set_auth(CURL *easy, const struct ca_http_request *req)
{
	static const unsigned long bits[CA_HTTP_AUTH__MAX] = {
	    CURLAUTH_NONE,      /* none */
	    CURLAUTH_BASIC,     /* basic */
	    CURLAUTH_NTLM,      /* ntlm */
	    CURLAUTH_NEGOTIATE, /* negotiate */
	    CURLAUTH_NONE,      /* client-cert: TLS does it */
	    CURLAUTH_ANY,       /* any */
	};
	CURLcode rc = CURLE_OK;

	if (req->auth == CA_HTTP_AUTH_NONE ||
	    req->auth == CA_HTTP_AUTH_CLIENT_CERT)
		goto out;
	if ((rc = curl_easy_setopt(easy, CURLOPT_HTTPAUTH,
	                           (long)bits[req->auth])) != CURLE_OK)
		goto out;
	if (req->username != NULL) {
		if ((rc = curl_easy_setopt(easy, CURLOPT_USERNAME,
		                           req->username)) != CURLE_OK ||
		    (rc = curl_easy_setopt(easy, CURLOPT_PASSWORD,
		                           req->password != NULL ? req->password
		                                                 : "")) !=
		        CURLE_OK)
			goto out;
	} else if (req->auth == CA_HTTP_AUTH_NEGOTIATE) {
		/* libcurl answers a 401 only when some credentials are
		 * set; Kerberos takes them from the ticket cache, as
		 * curl --negotiate -u : does. */
		rc = curl_easy_setopt(easy, CURLOPT_USERPWD, ":");
	}
out:
	return rc;
}

/* Sets every option of req on t's easy handle. */
static CURLcode
http_setup(struct ca_http_transfer *t, const struct ca_http_request *req)
{
	CURL *easy = t->easy;
	CURLcode rc;
	size_t i;

#define HTTP_SET(opt, val)                                                     \
	do {                                                                   \
		if ((rc = curl_easy_setopt(easy, opt, val)) != CURLE_OK)       \
			goto out;                                              \
	} while (0)

	HTTP_SET(CURLOPT_URL, req->url);
	HTTP_SET(CURLOPT_PRIVATE, (void *)t);
	HTTP_SET(CURLOPT_ERRORBUFFER, t->errbuf);
	HTTP_SET(CURLOPT_NOSIGNAL, 1L);
	HTTP_SET(CURLOPT_PROTOCOLS_STR, "http,https");
	/* IIS refuses NTLM over HTTP/2. */
	HTTP_SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	HTTP_SET(CURLOPT_FOLLOWLOCATION, 0L);
	HTTP_SET(CURLOPT_TCP_KEEPALIVE, 1L);
	HTTP_SET(CURLOPT_WRITEFUNCTION, http_write_fn);
	HTTP_SET(CURLOPT_WRITEDATA, (void *)t);
	HTTP_SET(CURLOPT_HEADERFUNCTION, http_header_fn);
	HTTP_SET(CURLOPT_HEADERDATA, (void *)t);
	/* The cookie engine on, its jar shared by the loop's transfers,
	 * unless the caller keeps its session cookie itself. */
	if (!req->own_cookies) {
		HTTP_SET(CURLOPT_COOKIEFILE, "");
		HTTP_SET(CURLOPT_SHARE, t->loop->share);
	}
	HTTP_SET(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms > 0
	                                        ? req->connect_timeout_ms
	                                        : HTTP_CONNECT_TIMEOUT_MS);
	HTTP_SET(CURLOPT_TIMEOUT_MS,
	         req->timeout_ms > 0 ? req->timeout_ms : HTTP_TIMEOUT_MS);
	HTTP_SET(CURLOPT_SSL_VERIFYPEER, 1L);
	HTTP_SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (req->ca_bundle != NULL)
		HTTP_SET(CURLOPT_CAINFO, req->ca_bundle);
	if (req->client_cert != NULL) {
		HTTP_SET(CURLOPT_SSLCERT, req->client_cert);
		HTTP_SET(CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (req->client_key != NULL) {
		HTTP_SET(CURLOPT_SSLKEY, req->client_key);
		HTTP_SET(CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (req->user_agent != NULL)
		HTTP_SET(CURLOPT_USERAGENT, req->user_agent);
	if ((rc = http_set_auth(easy, req)) != CURLE_OK)
		goto out;
	if (req->method == CA_HTTP_POST) {
		/* A copy: the caller's body is borrowed for this call only,
		 * and NTLM sends it again after the handshake. */
		if ((t->body = malloc(req->body_len + 1)) == NULL) {
			rc = CURLE_OUT_OF_MEMORY;
			goto out;
		}
		if (req->body_len > 0)
			memcpy(t->body, req->body, req->body_len);
		t->body[req->body_len] = '\0';
		HTTP_SET(CURLOPT_POSTFIELDSIZE_LARGE,
		         (curl_off_t)req->body_len);
		HTTP_SET(CURLOPT_POSTFIELDS, t->body);
		if (req->content_type != NULL) {
			char line[256];

			snprintf(line, sizeof(line), "Content-Type: %s",
			         req->content_type);
			if ((t->headers =
			         curl_slist_append(t->headers, line)) == NULL) {
				rc = CURLE_OUT_OF_MEMORY;
				goto out;
			}
		}
	} else
		HTTP_SET(CURLOPT_HTTPGET, 1L);
	for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
		struct curl_slist *l;

		if ((l = curl_slist_append(t->headers, req->headers[i])) ==
		    NULL) {
			rc = CURLE_OUT_OF_MEMORY;
			goto out;
		}
		t->headers = l;
	}
	if (t->headers != NULL)
		HTTP_SET(CURLOPT_HTTPHEADER, t->headers);
	rc = CURLE_OK;
out:
	return rc;
#undef HTTP_SET
}

struct ca_http_transfer *
ca_http_start(struct event_base *base, const struct ca_http_request *req,
              ca_http_done_fn done, void *arg, char *err, size_t errlen)
{
	struct ca_http_transfer *t = NULL, *rc = NULL;
	struct http_loop *loop;
	CURLcode code;
	CURLMcode mcode;

	if (base == NULL || req == NULL || req->url == NULL || done == NULL ||
	    (unsigned int)req->method >= CA_HTTP_METHOD__MAX ||
	    (unsigned int)req->auth >= CA_HTTP_AUTH__MAX) {
		snprintf(err, errlen, "HTTP request incomplete (estrad bug)");
		goto out;
	}
	pthread_once(&http_once, http_global_init);
	if (http_global_rc != CURLE_OK) {
		snprintf(err, errlen, "curl %d \"%s\" (curl_global_init)",
		         (int)http_global_rc,
		         curl_easy_strerror(http_global_rc));
		goto out;
	}
	if ((loop = http_loop_get(base)) == NULL) {
		snprintf(err, errlen,
		         "cannot create the curl multi handle: out of memory");
		goto out;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->res.body = evbuffer_new()) == NULL ||
	    (t->easy = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot start a transfer: out of memory");
		goto out;
	}
	t->loop = loop;
	t->done = done;
	t->arg = arg;
	t->res.cap =
	    req->max_response > 0 ? req->max_response : (size_t)CA_MAX_RESPONSE;
	snprintf(t->res.url, sizeof(t->res.url), "%s", req->url);
	if (req->capture_cookie != NULL &&
	    strlen(req->capture_cookie) >= sizeof(t->capture)) {
		snprintf(err, errlen, "cookie name too long (estrad bug)");
		goto out;
	}
	if (req->capture_cookie != NULL)
		snprintf(t->capture, sizeof(t->capture), "%s",
		         req->capture_cookie);
	if ((code = http_setup(t, req)) != CURLE_OK) {
		snprintf(err, errlen, "curl %d \"%s\" (setting up %s)",
		         (int)code, curl_easy_strerror(code), t->res.url);
		goto out;
	}
	/* Adding arms the timer at 0: the transfer starts from the loop,
	 * so the callback can never run inside this function. */
	if ((mcode = curl_multi_add_handle(loop->multi, t->easy)) != CURLM_OK) {
		snprintf(err, errlen, "curl multi %d \"%s\" (adding %s)",
		         (int)mcode, curl_multi_strerror(mcode), t->res.url);
		goto out;
	}
	t->next = loop->first;
	if (loop->first != NULL)
		loop->first->prev = t;
	loop->first = t;
	rc = t;
	t = NULL;
out:
	http_transfer_free(t);
	return rc;
}

void
ca_http_cancel(struct ca_http_transfer *t)
{
	if (t == NULL)
		return;
	curl_multi_remove_handle(t->loop->multi, t->easy);
	http_unlink(t);
	http_transfer_free(t);
}

void
ca_http_shutdown(struct event_base *base)
{
	struct http_loop **pp, *loop = NULL;
	struct ca_http_transfer *t;

	pthread_mutex_lock(&http_registry_lock);
	for (pp = &http_registry; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->base == base) {
			loop = *pp;
			*pp = loop->next;
			break;
		}
	pthread_mutex_unlock(&http_registry_lock);
	if (loop == NULL)
		return;
	/* Owners learn that their transfer ended, so they can free what
	 * they hold; a callback that starts another transfer on this base
	 * would recreate the loop and is a bug. */
	while ((t = loop->first) != NULL) {
		snprintf(t->errbuf, sizeof(t->errbuf), "shutting down");
		http_finish(t, CURLE_ABORTED_BY_CALLBACK);
	}
	http_loop_free(loop);
}

const char *
ca_http_reason(long status)
{
	static const struct {
		long status;
		const char *text;
	} reasons[] = {
	    {200, "OK"},
	    {201, "Created"},
	    {202, "Accepted"},
	    {204, "No Content"},
	    {301, "Moved Permanently"},
	    {302, "Found"},
	    {304, "Not Modified"},
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {408, "Request Timeout"},
	    {413, "Payload Too Large"},
	    {415, "Unsupported Media Type"},
	    {429, "Too Many Requests"},
	    {500, "Internal Server Error"},
	    {501, "Not Implemented"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	};
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].text;
	return "";
}

const char *
ca_http_cause(const struct ca_http_response *res, char *buf, size_t len)
{
	const char *reason;
	int n;

	if (buf == NULL || len == 0)
		return buf;
	if (res->curl_code != 0) {
		n = snprintf(buf, len, "curl %d \"%s\"", res->curl_code,
		             res->curl_text != NULL ? res->curl_text : "");
		if (n >= 0 && (size_t)n < len && res->error[0] != '\0')
			n += snprintf(buf + n, len - (size_t)n, " (%s)",
			              res->error);
		if (n >= 0 && (size_t)n < len && res->capped)
			snprintf(buf + n, len - (size_t)n,
			         ": answer larger than CA_MAX_RESPONSE "
			         "(%zu bytes)",
			         res->cap);
		return buf;
	}
	reason =
	    res->reason[0] != '\0' ? res->reason : ca_http_reason(res->status);
	snprintf(buf, len, "HTTP %ld \"%s\"", res->status, reason);
	return buf;
}
