/*
 * conn.h: the evhttp request handler: routes an EST request, checks its
 * method, media type and body, hands it to the RA, and answers.
 */
#ifndef ESTRAD_EST_CONN_H
#define ESTRAD_EST_CONN_H

#include <event2/event.h>
#include <event2/http.h>

#include "ra/auth_cert.h"
#include "ra/config.h"

struct est_server;

/*
 * What the handler needs from its worker; borrowed for the worker's life.
 * Each request takes the server's current configuration generation
 * (est_server_acquire) and keeps it until the request is freed.
 */
struct est_conn_worker {
	struct est_server *server;
	struct event_base *base;
};

/*
 * evhttp generic callback (evhttp_set_gencb), on the worker's thread; arg
 * is the struct est_conn_worker.  Every request gets exactly one answer
 * (possibly after the CA call), one access-log line, and for errors one
 * error-log line with the request id.
 */
void est_conn_handle(struct evhttp_request *evreq, void *arg);

#endif
