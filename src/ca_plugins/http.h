/*
 * http.h: the asynchronous HTTP(S) client shared by the network CA backends
 * (certsrv, dogtag).  It drives libcurl's multi interface from the calling
 * worker's libevent event_base, in the pattern of curl's
 * docs/examples/multi-event.c: one event per socket, one timer per loop,
 * and the finished transfers drained after every curl_multi_socket_action().
 *
 * Each event_base gets its own multi handle, created on the first transfer
 * started on it and kept until ca_http_shutdown(): the multi's connection
 * cache keeps connections alive between transfers (NTLM authenticates a
 * connection, not a request), and its cookie share keeps IIS's session
 * cookie.  Everything of one base runs on that base's thread; nothing here
 * ever blocks.
 */
#ifndef ESTRAD_CA_HTTP_H
#define ESTRAD_CA_HTTP_H

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/event.h>

/*
 * The most bytes of one CA answer body kept.  A longer body aborts the
 * transfer with curl 23 (CURLE_WRITE_ERROR) and the cause names this cap:
 * no CA page, certificate or chain comes near it.
 */
#define CA_MAX_RESPONSE (1024 * 1024)

/* Request methods. */
enum ca_http_method { CA_HTTP_GET, CA_HTTP_POST, CA_HTTP_METHOD__MAX };

/*
 * HTTP authentication, mapped to CURLOPT_HTTPAUTH.  CLIENT_CERT offers no
 * HTTP authentication (the TLS client certificate is the credential); ANY
 * lets libcurl pick among what the server offers.
 */
enum ca_http_auth {
	CA_HTTP_AUTH_NONE,
	CA_HTTP_AUTH_BASIC,
	CA_HTTP_AUTH_NTLM,
	CA_HTTP_AUTH_NEGOTIATE,
	CA_HTTP_AUTH_CLIENT_CERT,
	CA_HTTP_AUTH_ANY,
	CA_HTTP_AUTH__MAX
};

/* Returns the static config name of auth ("basic", ...). */
const char *ca_http_auth_name(enum ca_http_auth auth);

/*
 * One request.  Every member is borrowed for the ca_http_start() call only:
 * what the transfer needs later is copied.  NULL and 0 members take the
 * default named beside them.
 */
struct ca_http_request {
	const char *url;            /* required, http:// or https:// */
	enum ca_http_method method; /* GET */
	const char *body;           /* POST body; NULL sends an empty one */
	size_t body_len;
	const char *content_type;   /* POST; x-www-form-urlencoded */
	const char *const *headers; /* extra "Name: value" lines, NULL-ended */
	const char *user_agent;     /* none sent */
	enum ca_http_auth auth;     /* NONE */
	const char *username;       /* never logged */
	const char *password;       /* never logged */
	const char *ca_bundle;      /* CURLOPT_CAINFO; libcurl's default */
	const char *client_cert;    /* PEM file, with client_key */
	const char *client_key;     /* PEM file */
	long connect_timeout_ms;    /* 10000 */
	long timeout_ms;            /* whole transfer; 60000 */
	size_t max_response;        /* body cap; CA_MAX_RESPONSE */
	/* Session cookies kept by the caller, not by the loop's shared jar:
	 * with own_cookies set the cookie engine stays off for this transfer
	 * (the caller sends its own "Cookie:" line in headers), and the value
	 * of the Set-Cookie named capture_cookie (e.g. "JSESSIONID"), if the
	 * answer sets it, is copied to the response's cookie.  Dogtag keeps
	 * its nonces in the HTTP session, so each enrollment needs a session
	 * of its own that no other transfer of the loop can replace. */
	int own_cookies;
	const char *capture_cookie;
};

/* The text sizes of a response. */
#define CA_HTTP_ERROR_MAX  256 /* >= CURL_ERROR_SIZE */
#define CA_HTTP_REASON_MAX 64
#define CA_HTTP_TYPE_MAX   128
#define CA_HTTP_URL_MAX    512
#define CA_HTTP_COOKIE_MAX 256

/*
 * What a transfer ended in, handed to the completion callback.  curl_code 0
 * means an HTTP answer arrived (any status); otherwise status is what was
 * seen before the failure, usually 0.
 */
struct ca_http_response {
	int curl_code;                   /* CURLcode */
	const char *curl_text;           /* curl_easy_strerror(); static */
	char error[CA_HTTP_ERROR_MAX];   /* CURLOPT_ERRORBUFFER, may be "" */
	long status;                     /* HTTP status, 0 when none */
	char reason[CA_HTTP_REASON_MAX]; /* the status line's reason text */
	char content_type[CA_HTTP_TYPE_MAX]; /* "" when none */
	char url[CA_HTTP_URL_MAX];           /* the URL requested */
	struct evbuffer *body;               /* the body, up to the cap */
	size_t cap;                          /* the cap that applied */
	int capped;                          /* the body went past cap */
	int request_sent; /* the request went out (it may have arrived) */
	long elapsed_ms;  /* total time */
	/* The value of the capture_cookie Set-Cookie, "" when none was set
	 * (or it did not fit: a session id never comes near the size). */
	char cookie[CA_HTTP_COOKIE_MAX];
};

struct ca_http_transfer;

/*
 * Completion callback, run exactly once per started transfer from the
 * base's loop (never inside ca_http_start) unless the transfer was
 * cancelled.  res and res->body are borrowed until the callback returns
 * (it may drain the body); the transfer is freed right after, so the
 * callback must not cancel it.  It may start new transfers.
 */
typedef void (*ca_http_done_fn)(struct ca_http_transfer *t,
                                const struct ca_http_response *res, void *arg);

/*
 * Starts req on base's multi handle (created on first use).  Borrows req
 * for the call, and base until the transfer completes.  Returns the
 * transfer, owned by this module until done runs or ca_http_cancel(); or
 * NULL with a reason in err (size errlen) when it cannot start (bad
 * request, out of memory): done is then never called.
 */
struct ca_http_transfer *ca_http_start(struct event_base *base,
                                       const struct ca_http_request *req,
                                       ca_http_done_fn done, void *arg,
                                       char *err, size_t errlen);

/*
 * Stops t and frees it without calling its callback.  Must run on t's
 * base's thread, before the callback ran.  NULL is a no-op.
 */
void ca_http_cancel(struct ca_http_transfer *t);

/*
 * Frees base's multi handle, connections and cookies.  Transfers still
 * running complete now, from inside this call, with curl 42
 * (CURLE_ABORTED_BY_CALLBACK) and the error text "shutting down", so that
 * their owners can free what they hold.  Call it on base's thread before
 * event_base_free(base), never from a completion callback.  A base that
 * never had a transfer is a no-op.
 */
void ca_http_shutdown(struct event_base *base);

/*
 * Writes the house cause of res into buf (size len) and returns buf:
 * `curl 6 "Couldn't resolve host name" (Could not resolve host: x)` for a
 * failed transfer (with the cap named when the body went past it), or
 * `HTTP 401 "Unauthorized"` for an HTTP answer.
 */
const char *ca_http_cause(const struct ca_http_response *res, char *buf,
                          size_t len);

/* Returns the standard reason phrase of status, or "" when unknown. */
const char *ca_http_reason(long status);

#endif
