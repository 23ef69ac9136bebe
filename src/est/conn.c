/*
 * conn.c: the EST request handler.  It turns one HTTP request into one RA
 * request and one answer: routing, method, authentication, media type,
 * body limits, base64 and PKCS#10 checks, then the CA call and the PKCS#7
 * answer.  Every refusal goes through ra_request_refuse(), which writes
 * the error-log line, so no error answer is silent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "core/escape.h"
#include "core/log.h"
#include "core/loop.h"
#include "est/conn.h"
#include "est/csr.h"
#include "est/limits.h"
#include "est/listener.h"
#include "est/pkcs7.h"
#include "est/reply.h"
#include "est/route.h"
#include "est/wire.h"
#include "ra/auth_basic.h"
#include "ra/log.h"
#include "ra/request.h"

/* State kept while the RA works on one HTTP request. */
struct est_conn_request {
	struct evhttp_request *evreq;
	struct ra_request *req;
	enum est_operation op;
	int wrap; /* base64 columns for this answer, 0 = one line */
};

/* Returns the SSL of evreq's connection, borrowed (valid until the
 * connection is freed), or NULL when there is none. */
static SSL *
est_conn_ssl(struct evhttp_request *evreq)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
	struct bufferevent *bev;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return NULL;
	return bufferevent_openssl_get_ssl(bev);
}

/*
 * Puts evreq's connection among the requests under way (core/loop.h): its
 * requests then go before new TLS handshakes on the worker's loop.  Done
 * here because bufferevent_openssl assigns its events afresh when the
 * handshake completes, which resets their priority.
 */
static void
est_conn_raise(struct evhttp_request *evreq)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
	struct bufferevent *bev;

	if (evcon != NULL &&
	    (bev = evhttp_connection_get_bufferevent(evcon)) != NULL)
		(void)bufferevent_priority_set(bev, CORE_LOOP_PRIORITY_ONGOING);
}

/* Writes evreq's client as "ip:port" or "[ip]:port" into buf (size len);
 * returns 0, or -1 when there is no connection (buf untouched). */
static int
est_conn_client(struct evhttp_request *evreq, char *buf, size_t len)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (evcon == NULL)
		return -1;
	evhttp_connection_get_peer(evcon, &addr, &port);
	snprintf(buf, len,
	         addr != NULL && strchr(addr, ':') != NULL ? "[%s]:%u"
	                                                   : "%s:%u",
	         addr != NULL ? addr : "-", (unsigned int)port);
	return 0;
}

/* Fills the peer address and TLS facts the RA needs. */
static void
est_conn_peer(struct evhttp_request *evreq, struct ra_peer *peer)
{
	SSL *ssl;

	if (est_conn_client(evreq, peer->client, sizeof(peer->client)) != 0)
		return;
	if ((ssl = est_conn_ssl(evreq)) == NULL)
		return;
	peer->tls_version = SSL_get_version(ssl);
	peer->cert = SSL_get0_peer_certificate(ssl);
	peer->chain = SSL_get_peer_cert_chain(ssl);
	/* tls-unique (RFC 5929): the first Finished of the latest handshake,
	 * the client's on a full handshake, ours on a resumed one. */
	if (SSL_version(ssl) <= TLS1_2_VERSION) {
		if (SSL_session_reused(ssl))
			peer->tls_unique_len = SSL_get_finished(
			    ssl, peer->tls_unique, sizeof(peer->tls_unique));
		else
			peer->tls_unique_len = SSL_get_peer_finished(
			    ssl, peer->tls_unique, sizeof(peer->tls_unique));
		if (peer->tls_unique_len > sizeof(peer->tls_unique))
			peer->tls_unique_len = 0;
	} else if (SSL_export_keying_material(
	               ssl, peer->tls_exporter, sizeof(peer->tls_exporter),
	               "EXPORTER-Channel-Binding",
	               sizeof("EXPORTER-Channel-Binding") - 1, NULL, 0,
	               0) == 1) {
		/* tls-exporter (RFC 9266), the TLS 1.3 channel binding:
		 * empty context, 32 bytes. */
		peer->tls_exporter_len = sizeof(peer->tls_exporter);
	}
}

static void
est_conn_request_free(struct est_conn_request *creq)
{
	if (creq == NULL)
		return;
	ra_request_free(creq->req);
	free(creq);
}

/*
 * Answers with req's status and cause, then frees everything.  A refused
 * enrollment is audited too: the audit log holds every refusal.
 */
static void
est_conn_fail(struct est_conn_request *creq, const char *allow)
{
	if (creq->req->ca_ms < 0 && creq->req->label != NULL &&
	    (creq->op == EST_OP_SIMPLEENROLL ||
	     creq->op == EST_OP_SIMPLEREENROLL))
		(void)ra_request_audit_refused(creq->req);
	est_reply_error(creq->evreq, creq->req, allow);
	est_conn_request_free(creq);
}

/*
 * Picks the base64 wrapping: the label's setting, or for `auto` one line
 * for enrollment answers and for clients without a User-Agent (strongSwan
 * cannot decode line breaks), 64 columns otherwise (libest cannot decode a
 * one-line cacerts).
 */
static int
est_conn_wrap(const struct ra_label *label, enum est_operation op,
              struct evhttp_request *evreq)
{
	const char *ua;

	if (label->b64_wrap != RA_WRAP_AUTO)
		return label->b64_wrap;
	if (op == EST_OP_SIMPLEENROLL || op == EST_OP_SIMPLEREENROLL)
		return 0;
	ua = evhttp_find_header(evhttp_request_get_input_headers(evreq),
	                        "User-Agent");
	return ua != NULL && *ua != '\0' ? 64 : 0;
}

/* Sends der as a base64 body of content_type and frees everything. */
static void
est_conn_send_base64(struct est_conn_request *creq, const unsigned char *der,
                     size_t len, const char *content_type)
{
	size_t b64len = 0;
	char *b64;

	if ((b64 = est_wire_base64_encode(der, len, creq->wrap, &b64len)) ==
	    NULL) {
		ra_request_refuse(
		    creq->req, 500, CORE_LOG_ERROR, "est.conn", NULL,
		    "%s failed: out of memory encoding the answer",
		    creq->req->op_name);
		est_conn_fail(creq, NULL);
		return;
	}
	est_reply_send(creq->evreq, creq->req, 200, content_type, 1, b64,
	               b64len, NULL);
	free(b64);
	est_conn_request_free(creq);
}

/* The RA's answer for cacerts, simpleenroll and simplereenroll. */
static void
est_conn_ra_done(struct ra_request *req, void *arg)
{
	struct est_conn_request *creq = arg;
	unsigned char *der;
	size_t len = 0;

	if (req->status != 200) {
		est_conn_fail(creq, NULL);
		return;
	}
	if ((der = est_pkcs7_certs_only(req->certs, &len)) == NULL) {
		ra_request_refuse(req, 500, CORE_LOG_ERROR, "est.conn", NULL,
		                  "%s failed: cannot encode PKCS#7",
		                  req->op_name);
		est_conn_fail(creq, NULL);
		return;
	}
	est_conn_send_base64(creq, der, len,
	                     creq->op == EST_OP_CACERTS ? EST_TYPE_CACERTS
	                                                : EST_TYPE_CERTS);
	OPENSSL_free(der);
}

static void
est_conn_csrattrs(struct est_conn_request *creq)
{
	const struct ra_label *label = creq->req->label;
	unsigned char *der;
	char err[256] = "";
	size_t len = 0;

	if (label->ncsrattrs == 0) {
		creq->req->outcome_name = "ISSUED";
		est_reply_send(creq->evreq, creq->req, 204, NULL, 0, NULL, 0,
		               NULL);
		est_conn_request_free(creq);
		return;
	}
	if ((der = est_pkcs7_csrattrs((const char *const *)label->csrattrs,
	                              label->ncsrattrs, &len, err,
	                              sizeof(err))) == NULL) {
		ra_request_refuse(creq->req, 500, CORE_LOG_ERROR, "est.conn",
		                  "check the csrattrs list of the label",
		                  "csrattrs failed: %s", err);
		est_conn_fail(creq, NULL);
		return;
	}
	creq->req->outcome_name = "ISSUED";
	est_conn_send_base64(creq, der, len, EST_TYPE_CSRATTRS);
	OPENSSL_free(der);
}

/*
 * Checks the enrollment body and parses the CSR.  Returns it (owned by the
 * caller), or NULL after refusing the request.
 */
static X509_REQ *
est_conn_read_csr(struct est_conn_request *creq)
{
	struct evhttp_request *evreq = creq->evreq;
	struct ra_request *req = creq->req;
	struct evkeyvalq *in = evhttp_request_get_input_headers(evreq);
	struct evbuffer *body = evhttp_request_get_input_buffer(evreq);
	const char *type = evhttp_find_header(in, "Content-Type");
	unsigned char *der = NULL;
	X509_REQ *csr = NULL;
	size_t len, derlen = 0;
	char err[512] = "", shown[256];
	char *text;

	if (type == NULL) {
		ra_request_refuse(
		    req, 415, CORE_LOG_NOTICE, "est.conn",
		    "send the CSR as Content-Type: application/pkcs10",
		    "%s refused: no Content-Type, application/pkcs10 expected",
		    req->op_name);
		goto out;
	}
	if (!est_wire_media_type_is(type, EST_TYPE_PKCS10)) {
		/* The client's header goes to the answer, the error log and
		 * the audit record: escaped, so it cannot end the quotes. */
		ra_request_refuse(
		    req, 415, CORE_LOG_NOTICE, "est.conn",
		    "send the CSR as Content-Type: application/pkcs10",
		    "%s refused: Content-Type \"%s\" is not application/pkcs10",
		    req->op_name,
		    core_escape(type, CORE_ESCAPE_INNER, shown, sizeof(shown)));
		goto out;
	}
	len = evbuffer_get_length(body);
	if (len == 0 && evhttp_find_header(in, "Content-Length") == NULL &&
	    evhttp_find_header(in, "Transfer-Encoding") == NULL) {
		ra_request_refuse(req, 411, CORE_LOG_NOTICE, "est.conn", NULL,
		                  "%s refused: request has no Content-Length",
		                  req->op_name);
		goto out;
	}
	if (len > req->config->limits.max_body) {
		ra_request_refuse(
		    req, 413, CORE_LOG_NOTICE, "est.conn",
		    "raise limits.max_body if such CSRs are legitimate",
		    "%s refused: body of %zu bytes exceeds limits.max_body "
		    "%zu",
		    req->op_name, len, req->config->limits.max_body);
		goto out;
	}
	if ((text = (char *)evbuffer_pullup(body, -1)) == NULL && len > 0) {
		ra_request_refuse(req, 500, CORE_LOG_ERROR, "est.conn", NULL,
		                  "%s failed: out of memory reading the body",
		                  req->op_name);
		goto out;
	}
	if ((der = est_wire_base64_decode(text, len,
	                                  req->label->accept_pem_armour,
	                                  &derlen, err, sizeof(err))) == NULL) {
		ra_request_refuse(
		    req, 400, CORE_LOG_NOTICE, "est.conn",
		    "the body must be the base64 of a DER PKCS#10 request",
		    "%s refused: %s", req->op_name, err);
		goto out;
	}
	if ((csr = est_csr_parse(der, derlen, err, sizeof(err))) == NULL) {
		ra_request_refuse(req, 400, CORE_LOG_NOTICE, "est.conn", NULL,
		                  "%s refused: %s", req->op_name, err);
		goto out;
	}
out:
	free(der);
	return csr;
}

static void est_conn_handle_now(struct evhttp_request *evreq,
                                struct est_conn_worker *worker, int basic_busy);

/*
 * How long a request whose Basic credentials find no room among the
 * queued crypt(3) checks (ra_auth_basic_prefetch() answers -1) asks again
 * before it is answered 503: the first wait, the longest, and in all, in
 * milliseconds.  A provisioning service that opens many connections at
 * once with one new credential waits a moment: once one check of it is
 * done, the others pass from the cache.
 */
#define EST_CONN_OFFER_FIRST_MS 10
#define EST_CONN_OFFER_STEP_MS  200
#define EST_CONN_OFFER_TOTAL_MS 5000

/* A request waiting for its Basic credentials' crypt(3), or for room to
 * queue it. */
struct est_conn_waiting {
	struct evhttp_request *evreq;
	struct est_conn_worker *worker;
	/* Held while the helper thread reads the generation's users table
	 * (a reload may free an older generation's). */
	struct est_generation *gen;
	unsigned int delay_ms;  /* before the next offer */
	unsigned int waited_ms; /* for room so far */
};

/*
 * Answers nothing to a client that left while its request waited (an
 * evhttp request whose connection is gone is freed by the answer).
 * Returns 1 when it had left.
 */
static int
est_conn_gone(struct evhttp_request *evreq)
{
	char uri[512];

	if (evhttp_request_get_connection(evreq) != NULL)
		return 0;
	ra_log(CORE_LOG_INFO, "est.conn", NULL, NULL,
	       "client left while its Basic credentials were checked, "
	       "uri: \"%s\"",
	       core_escape(evhttp_request_get_uri(evreq) != NULL
	                       ? evhttp_request_get_uri(evreq)
	                       : "-",
	                   CORE_ESCAPE_INNER, uri, sizeof(uri)));
	evhttp_send_error(evreq, 503, "Client gone");
	return 1;
}

/* The helper thread is done: the request is handled now, and its check
 * finds the verdict without crypt(3) (ra_auth_basic_prefetch()). */
static void
est_conn_prefetched(void *arg)
{
	struct est_conn_waiting *w = arg;
	struct evhttp_request *evreq = w->evreq;
	struct est_conn_worker *worker = w->worker;

	est_generation_release(w->gen);
	free(w);
	if (!est_conn_gone(evreq))
		est_conn_handle_now(evreq, worker, 0);
}

static void est_conn_offer_again(evutil_socket_t fd, short what, void *arg);

/*
 * Offers the crypt(3) of w's credentials to a helper thread (see
 * est_conn_prefetch()); when there is no room for it, asks again after a
 * while, up to EST_CONN_OFFER_TOTAL_MS.  Returns 1 when the request goes
 * on later, else 0 (now) or -1 (now, no room), and w is freed.
 */
static int
est_conn_offer(struct est_conn_waiting *w)
{
	const char *authz = evhttp_find_header(
	    evhttp_request_get_input_headers(w->evreq), "Authorization");
	struct timeval tv;
	char client[64] = "";
	int rc;

	(void)est_conn_client(w->evreq, client, sizeof(client));
	rc = ra_auth_basic_prefetch(
	    ra_users_slot_get(w->gen->config->users_slot), authz, client,
	    w->worker->base, est_conn_prefetched, w);
	if (rc == 1)
		return 1;
	if (rc < 0 && w->waited_ms < EST_CONN_OFFER_TOTAL_MS) {
		w->delay_ms = w->delay_ms == 0 ? EST_CONN_OFFER_FIRST_MS
		              : w->delay_ms * 2 > EST_CONN_OFFER_STEP_MS
		                  ? EST_CONN_OFFER_STEP_MS
		                  : w->delay_ms * 2;
		w->waited_ms += w->delay_ms;
		tv.tv_sec = 0;
		tv.tv_usec = (suseconds_t)w->delay_ms * 1000;
		if (event_base_once(w->worker->base, -1, EV_TIMEOUT,
		                    est_conn_offer_again, w, &tv) == 0)
			return 1;
	}
	est_generation_release(w->gen);
	free(w);
	return rc < 0 ? -1 : 0;
}

/* The wait for room is over: the request asks again. */
static void
est_conn_offer_again(evutil_socket_t fd, short what, void *arg)
{
	struct est_conn_waiting *w = arg;
	struct evhttp_request *evreq = w->evreq;
	struct est_conn_worker *worker = w->worker;
	int rc;

	(void)fd;
	(void)what;
	if (est_conn_gone(evreq)) {
		est_generation_release(w->gen);
		free(w);
		return;
	}
	if ((rc = est_conn_offer(w)) != 1)
		est_conn_handle_now(evreq, worker, rc < 0);
}

/*
 * Hands the crypt(3) of the request's Basic credentials to a helper thread
 * when they are not in this worker's cache (core/offload.h): a burst of new
 * or wrong credentials would otherwise hold the loop 3 ms each.  Returns 1
 * when the request goes on later (est_conn_prefetched(), or after waiting
 * for room among the queued checks), 0 when it goes on now, -1 when it
 * goes on now but its credentials found no room in time (their check must
 * not run crypt(3) on the loop).
 */
static int
est_conn_prefetch(struct evhttp_request *evreq, struct est_conn_worker *worker)
{
	struct est_conn_waiting *w;

	if (evhttp_find_header(evhttp_request_get_input_headers(evreq),
	                       "Authorization") == NULL ||
	    (w = calloc(1, sizeof(*w))) == NULL)
		return 0;
	w->evreq = evreq;
	w->worker = worker;
	w->gen = est_server_acquire(worker->server);
	return est_conn_offer(w);
}

void
est_conn_handle(struct evhttp_request *evreq, void *arg)
{
	struct est_conn_worker *worker = arg;
	int rc;

	/* The whole request is in: its deadline (limits.request_timeout)
	 * stops here, so that one waiting for a slow CA is never cut. */
	est_limits_request_arrived(est_conn_ssl(evreq));
	est_conn_raise(evreq);
	/* A request refused for its head gets no crypt(3) either. */
	if (est_limits_request_refusal(est_conn_ssl(evreq)) != NULL) {
		est_conn_handle_now(evreq, worker, 0);
		return;
	}
	if ((rc = est_conn_prefetch(evreq, worker)) != 1)
		est_conn_handle_now(evreq, worker, rc < 0);
}

/* Handles the request at once; basic_busy: its Basic credentials found
 * no room among the queued crypt(3) checks (est_conn_prefetch()). */
static void
est_conn_handle_now(struct evhttp_request *evreq,
                    struct est_conn_worker *worker, int basic_busy)
{
	struct est_conn_request *creq = NULL;
	struct ra_request *req;
	struct est_route route;
	enum est_route_status rs;
	const struct ra_label *label;
	struct est_generation *gen;
	enum evhttp_cmd_type method = evhttp_request_get_command(evreq);
	const struct evhttp_uri *parsed = evhttp_request_get_evhttp_uri(evreq);
	const char *want, *why,
	    *uri = parsed != NULL ? evhttp_uri_get_path(parsed) : NULL;
	X509_REQ *csr;
	char shown[512];

	gen = est_server_acquire(worker->server);
	if ((creq = calloc(1, sizeof(*creq))) == NULL ||
	    (creq->req = ra_request_new(gen->config, gen->trust,
	                                worker->base)) == NULL) {
		free(creq);
		est_generation_release(gen);
		/* No request object means no request id either: the line
		 * still says what happened and to whom. */
		ra_log(CORE_LOG_ALERT, "est.conn", NULL,
		       "estrad is out of memory; check its limits",
		       "request refused: out of memory, answer: 500, uri: "
		       "\"%s\"",
		       core_escape(evhttp_request_get_uri(evreq) != NULL
		                       ? evhttp_request_get_uri(evreq)
		                       : "-",
		                   CORE_ESCAPE_INNER, shown, sizeof(shown)));
		evhttp_send_error(evreq, 500, "Out of memory");
		return;
	}
	/* The request owns the reference from here on: a SIGHUP reload may
	 * make another generation current, but this one stays alive until
	 * the request (and any CA call it outlives its client with) is
	 * freed. */
	creq->req->release_fn = est_generation_release;
	creq->req->release_arg = gen;
	creq->evreq = evreq;
	req = creq->req;
	req->basic_busy = basic_busy;
	est_conn_peer(evreq, &req->peer);

	/* A head that a proxy in front could frame otherwise than evhttp
	 * did (est/head.h): what follows on the connection is in doubt, so
	 * the connection ends with the answer. */
	if ((why = est_limits_request_refusal(est_conn_ssl(evreq))) != NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(evreq),
		                  "Connection", "close");
		ra_request_refuse(req, 400, CORE_LOG_NOTICE, "est.conn",
		                  "estrad refuses request heads that a proxy "
		                  "could frame differently; fix the client or "
		                  "the proxy in front of estrad",
		                  "request refused: %s", why);
		est_conn_fail(creq, NULL);
		return;
	}

	rs = est_route_parse(uri != NULL ? uri : "", &route);
	if (rs != EST_ROUTE_OK) {
		ra_request_refuse(
		    req, 404, CORE_LOG_NOTICE, "est.conn",
		    rs == EST_ROUTE_NOT_EST
		        ? "EST lives under /.well-known/est/"
		        : NULL,
		    "no such resource: %s",
		    rs == EST_ROUTE_UNKNOWN_OP  ? "unknown EST operation"
		    : rs == EST_ROUTE_BAD_LABEL ? "malformed CA label"
		                                : "not an EST path");
		est_conn_fail(creq, NULL);
		return;
	}
	creq->op = route.op;
	label = route.label[0] == '\0'
	            ? req->config->default_label
	            : ra_config_label(req->config, route.label);
	ra_request_set_label(req, label, est_route_op_name(route.op));
	if (label == NULL) {
		ra_request_refuse(
		    req, 404, CORE_LOG_NOTICE, "est.conn",
		    "the configured labels are listed under \"labels\"",
		    "no such resource: unknown CA label \"%s\"", route.label);
		est_conn_fail(creq, NULL);
		return;
	}
	want = est_route_op_method(route.op);
	if ((strcmp(want, "GET") == 0) != (method == EVHTTP_REQ_GET) ||
	    (strcmp(want, "POST") == 0) != (method == EVHTTP_REQ_POST)) {
		ra_request_refuse(req, 405, CORE_LOG_NOTICE, "est.conn", NULL,
		                  "%s refused: method not allowed, use %s",
		                  req->op_name, want);
		est_conn_fail(creq, want);
		return;
	}
	if (route.op == EST_OP_FULLCMC || route.op == EST_OP_SERVERKEYGEN) {
		req->outcome_name = "UNSUPPORTED";
		ra_request_refuse(req, 501, CORE_LOG_NOTICE, "est.conn", NULL,
		                  "%s is not implemented", req->op_name);
		est_conn_fail(creq, NULL);
		return;
	}
	creq->wrap = est_conn_wrap(label, route.op, evreq);
	/* cacerts and csrattrs are anonymous unless the label says not
	 * (RFC 7030 §4.1, §4.5). */
	if (((route.op == EST_OP_CACERTS &&
	      !(label->anonymous & RA_ANON_CACERTS)) ||
	     (route.op == EST_OP_CSRATTRS &&
	      !(label->anonymous & RA_ANON_CSRATTRS))) &&
	    ra_request_authenticate(
	        req, evhttp_find_header(evhttp_request_get_input_headers(evreq),
	                                "Authorization")) != 0) {
		est_conn_fail(creq, NULL);
		return;
	}
	switch (route.op) {
	case EST_OP_CACERTS:
		ra_request_start(req, CA_OP_CACERTS, NULL, est_conn_ra_done,
		                 creq);
		return;
	case EST_OP_CSRATTRS:
		est_conn_csrattrs(creq);
		return;
	default:
		break;
	}
	if (ra_request_authenticate(
	        req, evhttp_find_header(evhttp_request_get_input_headers(evreq),
	                                "Authorization")) != 0) {
		est_conn_fail(creq, NULL);
		return;
	}
	if ((csr = est_conn_read_csr(creq)) == NULL) {
		est_conn_fail(creq, NULL);
		return;
	}
	ra_request_start(req,
	                 route.op == EST_OP_SIMPLEREENROLL ? CA_OP_REENROLL
	                                                   : CA_OP_ENROLL,
	                 csr, est_conn_ra_done, creq);
}
