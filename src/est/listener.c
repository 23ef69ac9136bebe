/*
 * listener.c: TLS listener, worker threads and signal handling.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <openssl/err.h>

#include "ca_plugins/ca.h"
#include "est/conn.h"
#include "est/listener.h"
#include "ra/log.h"

/* Pending connections per listening socket. */
#define EST_LISTEN_BACKLOG 1024

struct est_worker {
	struct est_server *server;
	pthread_t thread;
	int started;
	struct event_base *base;
	struct evhttp *http;
	struct est_conn_worker conn;
	int *fds; /* one listening socket per listen address */
};

struct est_server {
	const struct ra_config *config;
	const struct ra_trust *trust;
	SSL_CTX *ssl_ctx;
	struct est_worker *workers;
	int nworkers;
};

/*
 * Accepts any client certificate at the TLS layer: the client still proves
 * it holds the key (CertificateVerify), and the RA then checks the chain
 * against the label's explicit and implicit stores, so that a refusal can
 * name the store and reason in the log instead of a bare handshake alert.
 */
static int
est_listener_verify_any(int preverify_ok, X509_STORE_CTX *ctx)
{
	(void)preverify_ok;
	(void)ctx;
	return 1;
}

/*
 * Returns the label whose PoP linking caps the listener at TLS 1.2, or
 * NULL: one with pop "required" and no tls_exporter, because tls-unique
 * does not exist in TLS 1.3 and the label is known only after the
 * handshake (est-protocol.md §7).
 */
const struct ra_label *
est_listener_tls12_cap(const struct ra_config *config)
{
	size_t i;

	for (i = 0; i < config->nlabels; i++)
		if (config->labels[i]->pop == RA_POP_REQUIRED &&
		    !config->labels[i]->tls_exporter)
			return config->labels[i];
	return NULL;
}

SSL_CTX *
est_listener_tls_context(const struct ra_config *config, char *err,
                         size_t errlen)
{
	static const unsigned char sid_ctx[] = "estrad";
	STACK_OF(X509_NAME) *names = NULL;
	SSL_CTX *ctx = NULL, *rc = NULL;
	size_t i;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		ca_error_set(err, errlen, 1, "%s", "cannot create TLS context");
		goto out;
	}
	if (SSL_CTX_set_min_proto_version(ctx, config->tls.min_version) != 1) {
		ca_error_set(err, errlen, 1, "%s",
		             "cannot set the minimum TLS version");
		goto out;
	}
	if (est_listener_tls12_cap(config) != NULL &&
	    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1) {
		ca_error_set(err, errlen, 1, "%s",
		             "cannot cap the TLS version at 1.2");
		goto out;
	}
	/* Client-initiated renegotiation is refused (RFC 7030 §3.5 wants
	 * none without RFC 5746) and compression stays off (CRIME). */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_NO_COMPRESSION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (config->tls.ciphers != NULL &&
	    SSL_CTX_set_cipher_list(ctx, config->tls.ciphers) != 1) {
		ca_error_set(err, errlen, 1,
		             "tls.ciphers \"%s\" selects "
		             "no cipher",
		             config->tls.ciphers);
		goto out;
	}
	if (config->tls.ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, config->tls.ciphersuites) != 1) {
		ca_error_set(err, errlen, 1,
		             "tls.ciphersuites \"%s\" "
		             "selects no suite",
		             config->tls.ciphersuites);
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, config->tls.cert) != 1) {
		ca_error_set(err, errlen, 1, "cannot load tls.cert %s",
		             config->tls.cert);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, config->tls.key,
	                                SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ca_error_set(err, errlen, 1, "cannot use tls.key %s",
		             config->tls.key);
		goto out;
	}
	/* Resumption needs a session id context once peers are verified. */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_timeout(ctx, (long)config->tls.session_timeout);
	if (config->tls.request_client_cert) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER,
		                   est_listener_verify_any);
		/* The CertificateRequest names both stores' CAs so clients
		 * pick a certificate we can use. */
		if ((names = sk_X509_NAME_new_null()) == NULL ||
		    SSL_add_file_cert_subjects_to_stack(
		        names, config->tls.explicit_ca) != 1 ||
		    (config->tls.implicit_ca != NULL &&
		     SSL_add_file_cert_subjects_to_stack(
		         names, config->tls.implicit_ca) != 1)) {
			ca_error_set(err, errlen, 1, "%s",
			             "cannot read the client CA names");
			goto out;
		}
		/* Labels with stores of their own add their CAs. */
		for (i = 0; i < config->nlabels; i++) {
			const struct ra_label *l = config->labels[i];

			if ((l->explicit_ca != NULL &&
			     SSL_add_file_cert_subjects_to_stack(
			         names, l->explicit_ca) != 1) ||
			    (l->implicit_ca != NULL &&
			     SSL_add_file_cert_subjects_to_stack(
			         names, l->implicit_ca) != 1)) {
				ca_error_set(err, errlen, 1,
				             "cannot read the client CA names "
				             "of label %s",
				             l->name);
				goto out;
			}
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		names = NULL;
	}
	rc = ctx;
	ctx = NULL;
out:
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

/* Opens one SO_REUSEPORT listening socket for "host:port". */
static int
est_listener_bind(const char *hostport, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char host[256], *port;
	int fd = -1, one = 1, gai;

	snprintf(host, sizeof(host), "%s", hostport);
	if ((port = strrchr(host, ':')) == NULL) {
		snprintf(err, errlen, "listen %s: missing port", hostport);
		goto fail;
	}
	*port++ = '\0';
	if (host[0] == '[' && port - host >= 3 && port[-2] == ']') {
		port[-2] = '\0';
		memmove(host, host + 1, strlen(host + 1) + 1);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((gai = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "listen %s: %s", hostport,
		         gai_strerror(gai));
		goto fail;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    /* Accepted sockets inherit it: an answer's header and body go
	     * out as two TLS records, and Nagle would hold the second until
	     * the client's delayed ACK (40 ms per keep-alive request). */
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(fd, EST_LISTEN_BACKLOG) != 0) {
		snprintf(err, errlen, "listen %s: (%d: %s)", hostport, errno,
		         strerror(errno));
		goto fail;
	}
	freeaddrinfo(res);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	if (res != NULL)
		freeaddrinfo(res);
	return -1;
}

/*
 * evhttp calls it for every accepted connection: wraps the socket in an
 * OpenSSL bufferevent that performs the server handshake.
 */
static struct bufferevent *
est_listener_bevcb(struct event_base *base, void *arg)
{
	struct est_worker *worker = arg;
	SSL *ssl;

	if ((ssl = SSL_new(worker->server->ssl_ctx)) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	return bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}

static int
est_worker_init(struct est_server *server, struct est_worker *worker, char *err,
                size_t errlen)
{
	const struct ra_config *config = server->config;
	size_t i;

	worker->server = server;
	if ((worker->base = event_base_new()) == NULL ||
	    (worker->http = evhttp_new(worker->base)) == NULL) {
		snprintf(err, errlen, "cannot create event loop");
		return -1;
	}
	worker->conn.config = config;
	worker->conn.trust = server->trust;
	worker->conn.base = worker->base;
	evhttp_set_bevcb(worker->http, est_listener_bevcb, worker);
	evhttp_set_gencb(worker->http, est_conn_handle, &worker->conn);
	evhttp_set_timeout(worker->http, (int)config->limits.timeout);
	evhttp_set_max_headers_size(worker->http,
	                            (ev_ssize_t)config->limits.max_headers);
	/* Bodies up to four times the limit are read so that est/conn.c can
	 * answer 413 with its text and log line; beyond that evhttp cuts the
	 * connection with its own bare 413 to bound memory. */
	evhttp_set_max_body_size(worker->http,
	                         (ev_ssize_t)(config->limits.max_body * 4));
	evhttp_set_allowed_methods(
	    worker->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                      EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                      EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	/* HTTP/1.1 keep-alive is fine, but evhttp must not add a
	 * Content-Type of its own. */
	evhttp_set_default_content_type(worker->http, NULL);
	if ((worker->fds = calloc(config->nlisten, sizeof(int))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < config->nlisten; i++)
		worker->fds[i] = -1;
	for (i = 0; i < config->nlisten; i++) {
		worker->fds[i] =
		    est_listener_bind(config->listen[i], err, errlen);
		if (worker->fds[i] < 0)
			return -1;
		if (evhttp_accept_socket(worker->http, worker->fds[i]) != 0) {
			snprintf(err, errlen,
			         "listen %s: evhttp refused the "
			         "socket",
			         config->listen[i]);
			return -1;
		}
		/* evhttp's listener owns and closes the socket now. */
	}
	return 0;
}

struct est_server *
est_server_new(const struct ra_config *config, const struct ra_trust *trust,
               char *err, size_t errlen)
{
	struct est_server *server = NULL, *rc = NULL;
	int i;

	if (evthread_use_pthreads() != 0) {
		snprintf(err, errlen, "libevent has no pthread support");
		goto out;
	}
	if ((server = calloc(1, sizeof(*server))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	server->config = config;
	server->trust = trust;
	if ((server->ssl_ctx = est_listener_tls_context(config, err, errlen)) ==
	    NULL)
		goto out;
	server->nworkers = config->workers > 0 ? config->workers : 1;
	if ((server->workers = calloc((size_t)server->nworkers,
	                              sizeof(*server->workers))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < server->nworkers; i++)
		if (est_worker_init(server, &server->workers[i], err, errlen) !=
		    0)
			goto out;
	rc = server;
	server = NULL;
out:
	est_server_free(server);
	return rc;
}

/*
 * Starts (start set) or stops the background work of every label's CA
 * backend.  Worker 0 hosts it: its loop is the one a backend's timers and
 * transfers run on, so start and stop happen on that thread.
 */
static void
est_worker_backends(struct est_worker *worker, int start)
{
	const struct ra_config *config = worker->server->config;
	size_t i;

	for (i = 0; i < config->nlabels; i++) {
		struct ca_instance *inst = config->labels[i]->ca;

		if (start && inst->backend->start != NULL)
			inst->backend->start(inst->priv, worker->base);
		else if (!start && inst->backend->stop != NULL)
			inst->backend->stop(inst->priv);
	}
}

static void *
est_worker_main(void *arg)
{
	struct est_worker *worker = arg;

	if (worker == &worker->server->workers[0])
		est_worker_backends(worker, 1);
	event_base_dispatch(worker->base);
	if (worker == &worker->server->workers[0])
		est_worker_backends(worker, 0);
	ca_loop_shutdown(worker->base);
	return NULL;
}

struct est_signal_state {
	struct est_server *server;
	struct event_base *base;
};

/*
 * SIGHUP: loads the users file again and swaps it in; workers see the new
 * table at their next Basic check.  A file that does not load is refused
 * and the old table stays.
 */
static void
est_server_reload_users(const struct ra_config *config)
{
	char err[512];
	long n;

	if (config->users == NULL || config->users_slot == NULL)
		return;
	if ((n = ra_users_slot_reload(config->users_slot, config->users, err,
	                              sizeof(err))) < 0) {
		ra_log(CA_LOG_ERROR, "est.listener", NULL,
		       "fix the file and send SIGHUP again; the users loaded "
		       "before stay in force",
		       "users file reload refused: %s", err);
		return;
	}
	ra_log(CA_LOG_NOTICE, "est.listener", NULL, NULL,
	       "users file %s reloaded: %ld users", config->users, n);
}

static void
est_server_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct est_signal_state *state = arg;
	int i;

	(void)what;
	if (sig == SIGHUP || sig == SIGUSR1) {
		/* Logged after the reopen, so the line lands in the new
		 * file that the operator is now tailing. */
		if (ra_log_reopen() == 0)
			ra_log(CA_LOG_NOTICE, "est.listener", NULL, NULL,
			       "signal %d: log files reopened", (int)sig);
		if (sig == SIGHUP)
			est_server_reload_users(state->server->config);
		return;
	}
	ra_log(CA_LOG_NOTICE, "est.listener", NULL, NULL,
	       "signal %d: shutting down", (int)sig);
	for (i = 0; i < state->server->nworkers; i++)
		if (state->server->workers[i].started)
			event_base_loopexit(state->server->workers[i].base,
			                    NULL);
	event_base_loopexit(state->base, NULL);
}

int
est_server_run(struct est_server *server)
{
	static const int signals[] = {SIGHUP, SIGUSR1, SIGTERM, SIGINT};
	struct event *events[sizeof(signals) / sizeof(signals[0])] = {NULL};
	struct est_signal_state state = {server, NULL};
	sigset_t block, old;
	size_t s;
	int i, rc = -1;

	signal(SIGPIPE, SIG_IGN);
	/* Workers must not take the signals the main loop handles. */
	sigemptyset(&block);
	for (s = 0; s < sizeof(signals) / sizeof(signals[0]); s++)
		sigaddset(&block, signals[s]);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (i = 0; i < server->nworkers; i++) {
		if (pthread_create(&server->workers[i].thread, NULL,
		                   est_worker_main, &server->workers[i]) != 0) {
			ra_log(CA_LOG_EMERG, "est.listener", NULL, NULL,
			       "cannot start worker %d: (%d: %s)", i, errno,
			       strerror(errno));
			goto out;
		}
		server->workers[i].started = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if ((state.base = event_base_new()) == NULL)
		goto out;
	for (s = 0; s < sizeof(signals) / sizeof(signals[0]); s++) {
		events[s] = evsignal_new(state.base, signals[s],
		                         est_server_on_signal, &state);
		if (events[s] == NULL || evsignal_add(events[s], NULL) != 0)
			goto out;
	}
	for (i = 0; i < (int)server->config->nlisten; i++)
		ra_log(CA_LOG_INFO, "est.listener", NULL, NULL,
		       "listening on %s with %d workers",
		       server->config->listen[i], server->nworkers);
	if (est_listener_tls12_cap(server->config) != NULL)
		ra_log(CA_LOG_INFO, "est.listener", NULL, NULL,
		       "TLS capped at 1.2: label %s requires PoP linking "
		       "(tls-unique) without tls_exporter",
		       est_listener_tls12_cap(server->config)->name);
	event_base_dispatch(state.base);
	rc = 0;
out:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (i = 0; i < server->nworkers; i++) {
		if (!server->workers[i].started)
			continue;
		if (rc != 0)
			event_base_loopexit(server->workers[i].base, NULL);
		pthread_join(server->workers[i].thread, NULL);
		server->workers[i].started = 0;
	}
	for (s = 0; s < sizeof(signals) / sizeof(signals[0]); s++)
		if (events[s] != NULL)
			event_free(events[s]);
	if (state.base != NULL)
		event_base_free(state.base);
	return rc;
}

void
est_server_free(struct est_server *server)
{
	int i;

	if (server == NULL)
		return;
	for (i = 0; server->workers != NULL && i < server->nworkers; i++) {
		struct est_worker *w = &server->workers[i];

		if (w->http != NULL)
			evhttp_free(w->http);
		else if (w->fds != NULL) {
			size_t j;

			for (j = 0; j < server->config->nlisten; j++)
				if (w->fds[j] >= 0)
					close(w->fds[j]);
		}
		free(w->fds);
		if (w->base != NULL)
			event_base_free(w->base);
	}
	free(server->workers);
	SSL_CTX_free(server->ssl_ctx);
	free(server);
}
