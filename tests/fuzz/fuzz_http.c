/*
 * fuzz_http.c: HTTP request heads and body framing as estrad handles
 * them.  The input is the byte stream a client sends on one connection:
 * it goes through a loopback socket into an evhttp set up as a worker
 * does (limits, allowed methods, est_conn_handle() as the generic
 * callback), so evhttp's request-line, header, Content-Length and chunked
 * parsing, pipelining and est/conn.c's routing, media-type, body,
 * base64, CSR and Basic checks all see it, and a well-formed enrollment
 * is issued by the local backend.  Plain HTTP: the framing is the same
 * under TLS.
 *
 * Everything it needs (a CA key and certificate, a users file and the
 * configuration) is made once in a temporary directory on the first
 * input, so that the plain regression driver works as libFuzzer does.
 */
#include <sys/socket.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "est/conn.h"
#include "est/listener.h"
#include "ra/auth_cert.h"
#include "ra/config.h"
#include "ra/log.h"

#include "fuzz_pki.h"

/* Longest input sent; longer ones are cut (the body cap is far below). */
#define FUZZ_HTTP_MAX_INPUT (256 * 1024)

/* Bound of one input's exchange, in milliseconds. */
#define FUZZ_HTTP_BOUND_MS 3000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What lives for the whole run. */
static struct {
	int ready;
	char dir[64];
	struct ra_config *config;
	struct ra_trust *trust;
	struct est_server *server;
	struct event_base *base;
	struct evhttp *http;
	struct est_conn_worker worker;
	struct sockaddr_in addr;
} fuzz_http;

/* One input's client side. */
struct fuzz_http_client {
	int fd;
	const uint8_t *data;
	size_t size, sent;
	struct event *rev, *wev;
};

/*
 * Returns a listening loopback socket on a free port and that address in
 * addr.
 */
static int
fuzz_http_listener(struct sockaddr_in *addr)
{
	socklen_t alen = sizeof(*addr);
	int fd, one = 1;

	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 ||
	    listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &alen) != 0)
		fuzz_pki_die("loopback listener");
	return fd;
}

/*
 * Builds the configuration (label "default" open to anyone, label "b"
 * behind Basic with user fuzz:secret), a server for it (whose own workers
 * never run: it only hands out the configuration generation), and an
 * evhttp on a loopback listener of its own set up as est_worker_init()
 * does.
 */
static void
fuzz_http_init(void)
{
	static const char conf_fmt[] =
	    "{\"listen\": [\"127.0.0.1:%u\"], \"workers\": 1,\n"
	    " \"tls\": {\"cert\": \"ca.pem\", \"key\": \"ca.key\",\n"
	    "  \"explicit_ca\": \"ca.pem\"},\n"
	    " \"limits\": {\"max_body\": 8192, \"max_headers\": 4096,\n"
	    "  \"timeout\": 2},\n"
	    " \"users\": \"users\",\n"
	    " \"labels\": {\n"
	    "  \"default\": {\"auth\": \"none\", \"csrattrs\":\n"
	    "   [\"challengePassword\"], \"ca\": {\"backend\": \"local\",\n"
	    "   \"cert\": \"ca.pem\", \"key\": \"ca.key\"}},\n"
	    "  \"b\": {\"auth\": [\"basic\"], \"b64_wrap\": 64,\n"
	    "   \"accept_pem_armour\": false, \"anonymous\": [],\n"
	    "   \"ca\": {\"backend\": \"local\",\n"
	    "   \"cert\": \"ca.pem\", \"key\": \"ca.key\"}}}}\n";
	char path[128], err[1024], users[256], conf[sizeof(conf_fmt) + 16];
	struct sockaddr_in spare;
	const char *hash, *log;
	int fd;

	snprintf(fuzz_http.dir, sizeof(fuzz_http.dir), "%s",
	         fuzz_pki_mkdtemp("fuzz_http"));
	fuzz_pki_make(fuzz_http.dir);
	/* Few rounds: the fuzzer is to spend its time on framing. */
	if ((hash = crypt("secret", "$6$rounds=1000$fuzzsalt$")) == NULL ||
	    hash[0] != '$')
		fuzz_pki_die("crypt");
	snprintf(users, sizeof(users), "fuzz:%s\n", hash);
	fuzz_pki_write_file(fuzz_http.dir, "users", users);
	/* The server binds the configured address itself; a free port is
	 * borrowed for it and given back. */
	fd = fuzz_http_listener(&spare);
	close(fd);
	snprintf(conf, sizeof(conf), conf_fmt,
	         (unsigned int)ntohs(spare.sin_port));
	fuzz_pki_write_file(fuzz_http.dir, "estrad.json", conf);
	snprintf(path, sizeof(path), "%s/estrad.json", fuzz_http.dir);
	if ((fuzz_http.config = ra_config_load(path, err, sizeof(err))) == NULL)
		fuzz_pki_die(err);
	if ((fuzz_http.trust = ra_trust_new(fuzz_http.config->tls.explicit_ca,
	                                    NULL, err, sizeof(err))) == NULL)
		fuzz_pki_die(err);
	/* Every log line is formatted (client bytes are escaped there) and
	 * thrown away, unless FUZZ_HTTP_LOG names a file to look at. */
	if ((log = getenv("FUZZ_HTTP_LOG")) == NULL)
		log = "/dev/null";
	if (ra_log_open(log, log, "/dev/null", CORE_LOG_DEBUG, err,
	                sizeof(err)) != 0)
		fuzz_pki_die(err);
	if ((fuzz_http.server = est_server_new(
	         fuzz_http.config, fuzz_http.trust, err, sizeof(err))) == NULL)
		fuzz_pki_die(err);
	if ((fuzz_http.base = event_base_new()) == NULL ||
	    (fuzz_http.http = evhttp_new(fuzz_http.base)) == NULL)
		fuzz_pki_die("event loop");
	fuzz_http.worker.server = fuzz_http.server;
	fuzz_http.worker.base = fuzz_http.base;
	evhttp_set_gencb(fuzz_http.http, est_conn_handle, &fuzz_http.worker);
	evhttp_set_timeout(fuzz_http.http,
	                   (int)fuzz_http.config->limits.timeout);
	evhttp_set_max_headers_size(
	    fuzz_http.http, (ev_ssize_t)fuzz_http.config->limits.max_headers);
	evhttp_set_max_body_size(
	    fuzz_http.http,
	    (ev_ssize_t)(fuzz_http.config->limits.max_body * 4));
	evhttp_set_allowed_methods(
	    fuzz_http.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(fuzz_http.http, NULL);
	fd = fuzz_http_listener(&fuzz_http.addr);
	if (evhttp_accept_socket(fuzz_http.http, fd) != 0)
		fuzz_pki_die("evhttp_accept_socket");
	fuzz_http.ready = 1;
}

/* Sends what the socket takes; once all is sent, ends the client's side. */
static void
fuzz_http_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct fuzz_http_client *c = arg;
	ssize_t n;

	(void)what;
	while (c->sent < c->size) {
		n = send(fd, c->data + c->sent, c->size - c->sent,
		         MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			/* estrad closed first (413, bad request line). */
			c->sent = c->size;
			break;
		}
		c->sent += (size_t)n;
	}
	(void)shutdown(fd, SHUT_WR);
	event_del(c->wev);
}

/* Reads the answers; estrad closing the connection ends the input. */
static void
fuzz_http_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct fuzz_http_client *c = arg;
	char buf[16384];
	ssize_t n;

	(void)c;
	if (what & EV_TIMEOUT) {
		event_base_loopbreak(fuzz_http.base);
		return;
	}
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		event_base_loopbreak(fuzz_http.base);
		return;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_http_client c;
	struct timeval bound = {FUZZ_HTTP_BOUND_MS / 1000,
	                        (FUZZ_HTTP_BOUND_MS % 1000) * 1000};

	if (!fuzz_http.ready)
		fuzz_http_init();
	memset(&c, 0, sizeof(c));
	c.data = data;
	c.size = size < FUZZ_HTTP_MAX_INPUT ? size : FUZZ_HTTP_MAX_INPUT;
	if ((c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	/* A loopback connect completes at once into the backlog; evhttp
	 * accepts it when the loop runs. */
	if (connect(c.fd, (struct sockaddr *)&fuzz_http.addr,
	            sizeof(fuzz_http.addr)) != 0 ||
	    fcntl(c.fd, F_SETFL, O_NONBLOCK) != 0)
		goto out;
	c.rev = event_new(fuzz_http.base, c.fd, EV_READ | EV_PERSIST,
	                  fuzz_http_on_read, &c);
	c.wev = event_new(fuzz_http.base, c.fd, EV_WRITE | EV_PERSIST,
	                  fuzz_http_on_write, &c);
	if (c.rev == NULL || c.wev == NULL || event_add(c.rev, &bound) != 0 ||
	    event_add(c.wev, NULL) != 0)
		goto out;
	event_base_dispatch(fuzz_http.base);
out:
	if (c.rev != NULL)
		event_free(c.rev);
	if (c.wev != NULL)
		event_free(c.wev);
	close(c.fd);
	/* Let evhttp see the close and free the server side of the
	 * connection before the next input. */
	event_base_loop(fuzz_http.base, EVLOOP_NONBLOCK);
	event_base_loop(fuzz_http.base, EVLOOP_NONBLOCK);
	return 0;
}
