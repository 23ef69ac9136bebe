/*
 * reply.c: EST answers and their access-log lines.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "est/metrics.h"
#include "est/reply.h"
#include "est/wire.h"

static const char *
est_reply_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

static const char *
est_reply_method(struct evhttp_request *evreq)
{
	switch (evhttp_request_get_command(evreq)) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "OTHER";
	}
}

void
est_reply_send(struct evhttp_request *evreq, struct ra_request *req, int status,
               const char *content_type, int base64, const char *body,
               size_t len, const char *allow)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(evreq);
	struct evbuffer *buf = evbuffer_new();
	struct ra_access_entry entry;
	char retry[16];

	evhttp_add_header(out, EST_REQUEST_ID_HEADER, req->rid);
	/* A browser that reaches estrad must not guess a type for what it
	 * gets: an error body quotes what the client sent, and a guess of
	 * HTML would run it. */
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	if (content_type != NULL)
		evhttp_add_header(out, "Content-Type", content_type);
	if (base64)
		evhttp_add_header(out, "Content-Transfer-Encoding", "base64");
	if ((status == 202 || status == 429 || status == 503) &&
	    req->retry_after > 0) {
		snprintf(retry, sizeof(retry), "%u", req->retry_after);
		evhttp_add_header(out, "Retry-After", retry);
	}
	if (status == 401)
		evhttp_add_header(out, "WWW-Authenticate",
		                  "Basic realm=\"estrad\"");
	if (allow != NULL)
		evhttp_add_header(out, "Allow", allow);
	if (buf != NULL && len > 0)
		evbuffer_add(buf, body, len);

	memset(&entry, 0, sizeof(entry));
	entry.rid = req->rid;
	entry.client = req->peer.client;
	entry.method = est_reply_method(evreq);
	entry.path = evhttp_request_get_uri(evreq);
	entry.status = status;
	entry.bytes = len;
	entry.tls = req->peer.tls_version;
	entry.auth = ra_auth_method_name(req->auth_method);
	entry.identity = req->identity[0] != '\0' ? req->identity : NULL;
	entry.label = req->label != NULL ? req->label->name : NULL;
	entry.op = req->op_name;
	entry.backend = req->log.backend;
	entry.outcome = req->outcome_name;
	entry.ca_ms = req->ca_ms;
	entry.ms = ra_request_elapsed_ms(req);
	entry.retry_after = req->retry_after;
	entry.user_agent = evhttp_find_header(
	    evhttp_request_get_input_headers(evreq), "User-Agent");
	/* The access line is formatted before the send frees evreq. */
	ra_log_access(&entry);
	/* One count per answer, as there is one access line per answer. */
	est_metrics_answer(req->op_name, entry.label, status, entry.backend,
	                   entry.outcome, req->ca_ms,
	                   status >= 300 ? req->cause : NULL);
	evhttp_send_reply(evreq, status, est_reply_reason(status), buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

void
est_reply_error(struct evhttp_request *evreq, struct ra_request *req,
                const char *allow)
{
	char body[CA_CAUSE_MAX + 64];
	int n;

	n = snprintf(body, sizeof(body), "%s (request %s)\n", req->cause,
	             req->rid);
	if (n < 0)
		n = 0;
	else if ((size_t)n >= sizeof(body))
		n = sizeof(body) - 1;
	est_reply_send(evreq, req, req->status, EST_TYPE_TEXT, 0, body,
	               (size_t)n, allow);
}
