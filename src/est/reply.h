/*
 * reply.h: writing EST answers on an evhttp request: the request id
 * header, exact media types, Content-Transfer-Encoding for base64 bodies,
 * text/plain errors, and the access-log line that follows every answer.
 */
#ifndef ESTRAD_EST_REPLY_H
#define ESTRAD_EST_REPLY_H

#include <stddef.h>

#include <event2/http.h>

#include "ra/request.h"

/* The header that carries the request id on every answer. */
#define EST_REQUEST_ID_HEADER "X-Request-ID"

/*
 * Sends status with body (len bytes, may be 0) of content_type (NULL: no
 * Content-Type).  base64 set adds Content-Transfer-Encoding: base64.
 * Adds X-Request-ID, X-Content-Type-Options: nosniff, Retry-After when
 * req->retry_after is set on 202/503, WWW-Authenticate on 401, and Allow
 * when allow is not NULL.  Writes the access-log line.  Borrows everything;
 * evreq is answered and must not be used afterwards.
 */
void est_reply_send(struct evhttp_request *evreq, struct ra_request *req,
                    int status, const char *content_type, int base64,
                    const char *body, size_t len, const char *allow);

/*
 * Sends req->status with the text/plain body "CAUSE (request RID)\n"
 * built from req->cause.
 */
void est_reply_error(struct evhttp_request *evreq, struct ra_request *req,
                     const char *allow);

#endif
