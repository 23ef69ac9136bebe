/*
 * listener.c: TLS listener, worker threads and signal handling.
 */
#include <arpa/inet.h>
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
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/core_names.h>
#include <openssl/err.h>

#include "core/error.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/offload.h"
#include "est/conn.h"
#include "est/limits.h"
#include "est/listener.h"
#include "est/metrics.h"
#include "est/privilege.h"
#include "ra/backends.h"
#include "ra/log.h"

/* Pending connections per listening socket. */
#define EST_LISTEN_BACKLOG 1024

/*
 * One listening socket's evconnlistener (evhttp's) and the timer that
 * resumes it after a pause (est_listener_accept_error()).
 */
struct est_accept {
	struct evconnlistener *lev; /* borrowed from evhttp */
	struct event *resume;       /* owned, on the listener's loop */
};

struct est_worker {
	struct est_server *server;
	pthread_t thread;
	int started;
	struct event_base *base;
	struct evhttp *http;
	struct est_conn_worker conn;
	int *fds; /* one listening socket per listen address */
	struct est_accept *accepts; /* one per listen address */
};

struct est_server {
	/* The configuration estrad started with: its listen addresses and
	 * worker count are the sockets and threads, which a reload keeps. */
	const struct ra_config *config;
	struct est_worker *workers;
	int nworkers;

	/* The current generation and the retired ones still referenced,
	 * under lock.  Taking a reference happens under the lock too: a
	 * bare atomic load followed by an increment would race with the
	 * last release of a generation a reload just replaced. */
	pthread_mutex_t lock;
	struct est_generation *current;
	struct est_generation *retired;
	unsigned long serial;

	int metrics_fd;              /* bound at start, or -1 */
	struct evhttp *metrics_http; /* on the main thread's loop */
	struct est_accept metrics_accept;
};

/*
 * The listeners whose loop runs on this thread: libevent tells a
 * listener's error callback only the listener and evhttp's argument, and
 * a listener runs on its loop's thread alone.
 */
static _Thread_local struct est_accept *est_accepts_here;
static _Thread_local size_t est_naccepts_here;

/* SSL ex_data slot marking estrad's own connections (see bevcb). */
static int est_listener_ssl_index = -1;

/* Values of that slot: handshake running, done, failed and counted. */
#define EST_SSL_HANDSHAKING ((void *)1)
#define EST_SSL_ESTABLISHED ((void *)2)
#define EST_SSL_FAILED      ((void *)3)

/* SSL_CTX ex_data slot holding the context's est_listener_peer_limits. */
static int est_listener_ctx_index = -1;

/* The tls.* bounds on a client's certificate list, owned by its SSL_CTX
 * (a connection may outlive the configuration it was accepted under). */
struct est_listener_peer_limits {
	unsigned int verify_depth;
	unsigned int max_key_bits;
};

/* Frees a context's peer limits with the context. */
static void
est_listener_ctx_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                       long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

/* Writes the peer address of ssl's socket as "ip:port" (or "-"). */
static void
est_listener_peer_name(SSL *ssl, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	int fd = ssl != NULL ? SSL_get_fd(ssl) : -1;

	snprintf(buf, len, "-");
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sslen) != 0)
		return;
	if (ss.ss_family == AF_INET &&
	    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host,
	              sizeof(host)) != NULL)
		snprintf(buf, len, "%s:%u", host,
		         ntohs(((struct sockaddr_in *)&ss)->sin_port));
	else if (ss.ss_family == AF_INET6 &&
	         inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
	                   host, sizeof(host)) != NULL)
		snprintf(buf, len, "[%s]:%u", host,
		         ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
}

/* Logs the one notice line of a handshake refused for its client's
 * certificate list. */
static void
est_listener_refused(SSL *ssl, const char *hint, const char *why)
{
	struct ra_log_context ctx;
	char client[INET6_ADDRSTRLEN + 16];

	est_listener_peer_name(ssl, client, sizeof(client));
	memset(&ctx, 0, sizeof(ctx));
	ctx.client = client;
	ra_log(CORE_LOG_NOTICE, "est.listener", &ctx, hint,
	       "TLS handshake refused: %s", why);
}

/*
 * Checks the public key of certificate i of the n a client sent: an RSA
 * public exponent above 2^32 (a valid key never needs one; OpenSSL lets
 * it be as large as the modulus, which makes each verification with it
 * cost a hundred normal ones), and an RSA modulus or DSA prime above
 * max_bits.  Returns 1 when the key is acceptable, else 0 with the reason
 * in why.  A key OpenSSL cannot decode is left to the handshake (leaf)
 * and to the RA's verification (CAs), which refuse it.
 */
static int
est_listener_key_ok(X509 *cert, int i, int n, unsigned int max_bits, char *why,
                    size_t whylen)
{
	const char *type = NULL;
	EVP_PKEY *key;
	BIGNUM *e = NULL;
	int ok = 0, bits;

	/* What fails here is said in why, not left in OpenSSL's queue. */
	ERR_set_mark();
	if ((key = X509_get0_pubkey(cert)) == NULL) {
		ok = 1;
		goto out;
	}
	if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS"))
		type = "an RSA";
	else if (EVP_PKEY_is_a(key, "DSA"))
		type = "a DSA";
	else {
		ok = 1;
		goto out;
	}
	if ((bits = EVP_PKEY_get_bits(key)) > (int)max_bits) {
		snprintf(why, whylen,
		         "certificate %d of the %d the client sent has %s "
		         "key of %d bits, more than tls.max_key_bits %u",
		         i, n, type, bits, max_bits);
		goto out;
	}
	if (strcmp(type, "an RSA") == 0) {
		if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) !=
		    1) {
			snprintf(why, whylen,
			         "certificate %d of the %d the client sent has "
			         "an RSA key without a readable exponent",
			         i, n);
			goto out;
		}
		if (BN_num_bits(e) > 32) {
			snprintf(
			    why, whylen,
			    "certificate %d of the %d the client sent has "
			    "an RSA public exponent of %d bits (at most 32 "
			    "accepted)",
			    i, n, BN_num_bits(e));
			goto out;
		}
	}
	ok = 1;
out:
	BN_free(e);
	ERR_pop_to_mark();
	return ok;
}

/*
 * OpenSSL calls it instead of X509_verify_cert() when a client sends
 * certificates.  The TLS layer verifies no chain: its context has no
 * trust store, and the RA verifies the chain against the label's
 * explicit and implicit stores for each request (ra/auth_cert.c), where
 * a refusal names the store and reason and an anonymous operation still
 * answers a client whose certificate chains to nothing.  Verifying here
 * as well would only spend a signature check per link, which is what a
 * client without credentials buys with a long list of keys that are
 * expensive to verify with.  What is checked, before any signature work:
 * no more certificates than the leaf, tls.verify_depth intermediates and
 * the root, and no absurd RSA or DSA key in any of them, the leaf's
 * included, whose key checks CertificateVerify.  A refusal ends the
 * handshake with an alert and one notice line.
 */
static int
est_listener_check_peer(X509_STORE_CTX *store, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
	    store, SSL_get_ex_data_X509_STORE_CTX_idx());
	const struct est_listener_peer_limits *lim = NULL;
	STACK_OF(X509) *list = X509_STORE_CTX_get0_untrusted(store);
	const char *hint = NULL;
	char why[256];
	int i, n = list != NULL ? sk_X509_num(list) : 0, max, ok = 0;

	(void)arg;
	if (ssl != NULL && est_listener_ctx_index >= 0)
		lim = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
		                          est_listener_ctx_index);
	if (lim == NULL) {
		snprintf(why, sizeof(why), "%s",
		         "no certificate limits on this TLS context");
		X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED);
		goto out;
	}
	max = (int)lim->verify_depth + 2;
	if (n > max) {
		snprintf(why, sizeof(why),
		         "the client sent %d certificates, more than "
		         "tls.verify_depth %u allows (%d)",
		         n, lim->verify_depth, max);
		hint = "raise tls.verify_depth if real clients send chains "
		       "this long";
		X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_CHAIN_TOO_LONG);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!est_listener_key_ok(sk_X509_value(list, i), i, n,
		                         lim->max_key_bits, why, sizeof(why))) {
			hint = "no CA issues such keys to clients; "
			       "tls.max_key_bits bounds the key size";
			/* These codes make OpenSSL send bad_certificate;
			 * it has none for a key too large. */
			X509_STORE_CTX_set_error(
			    store, i == 0 ? X509_V_ERR_EE_KEY_TOO_SMALL
			                  : X509_V_ERR_CA_KEY_TOO_SMALL);
			goto out;
		}
	/* SSL_get_verify_result() must not claim a verification that did
	 * not happen: this is what OpenSSL's own reached with no store. */
	X509_STORE_CTX_set_error(store,
	                         X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	ok = 1;
out:
	if (!ok)
		est_listener_refused(ssl, hint, why);
	return ok;
}

/*
 * Returns the label whose PoP linking caps the listener at TLS 1.2, or
 * NULL: one with pop "required" and no tls_exporter, because tls-unique
 * does not exist in TLS 1.3 and the label is known only after the
 * handshake.
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

/*
 * Counts handshakes and their failures for the metrics.  An alert sent or
 * received before the handshake completed names the failure; the slot
 * value makes each connection count once, since TLS 1.3 reports
 * HANDSHAKE_DONE again after the session tickets.
 */
static void
est_listener_info(const SSL *cssl, int where, int ret)
{
	/* The callback gets a const SSL; the slot is ours to update. */
	SSL *ssl = (SSL *)(uintptr_t)cssl;
	char reason[96];
	void *state;

	if (est_listener_ssl_index < 0 ||
	    (state = SSL_get_ex_data(ssl, est_listener_ssl_index)) !=
	        EST_SSL_HANDSHAKING)
		return;
	/* A client certificate list over tls.max_cert_list is refused by
	 * OpenSSL from the length in its header, before a byte of it is
	 * read; the alert it sends is the moment to say why. */
	if ((where & SSL_CB_WRITE_ALERT) && (ret >> 8) == SSL3_AL_FATAL &&
	    SSL_get_state(ssl) == TLS_ST_SR_CERT &&
	    ERR_GET_LIB(ERR_peek_last_error()) == ERR_LIB_SSL &&
	    ERR_GET_REASON(ERR_peek_last_error()) ==
	        SSL_R_EXCESSIVE_MESSAGE_SIZE) {
		snprintf(reason, sizeof(reason),
		         "client certificate list larger than "
		         "tls.max_cert_list (%ld bytes)",
		         (long)SSL_get_max_cert_list(ssl));
		est_listener_refused(ssl,
		                     "raise tls.max_cert_list if real clients "
		                     "send lists this large",
		                     reason);
	}
	if (where & SSL_CB_HANDSHAKE_DONE) {
		SSL_set_ex_data(ssl, est_listener_ssl_index,
		                EST_SSL_ESTABLISHED);
		est_metrics_tls_handshake();
	} else if ((where & SSL_CB_ALERT) && (ret >> 8) == SSL3_AL_FATAL) {
		snprintf(reason, sizeof(reason), "%s %s",
		         (where & SSL_CB_READ) ? "received" : "sent",
		         SSL_alert_desc_string_long(ret));
		SSL_set_ex_data(ssl, est_listener_ssl_index, EST_SSL_FAILED);
		est_metrics_tls_failure(reason);
	}
}

/*
 * Runs when any SSL object of the process is freed (libcurl's too, whose
 * slot is NULL): closes the books on one of estrad's connections.
 */
static void
est_listener_ssl_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                       long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (ptr == NULL)
		return;
	if (ptr == EST_SSL_HANDSHAKING)
		est_metrics_tls_failure(
		    "closed before the handshake completed");
	est_metrics_connections(-1);
}

SSL_CTX *
est_listener_tls_context(const struct ra_config *config, char *err,
                         size_t errlen)
{
	static const unsigned char sid_ctx[] = "estrad";
	STACK_OF(X509_NAME) *names = NULL;
	struct est_listener_peer_limits *lim = NULL;
	SSL_CTX *ctx = NULL, *rc = NULL;
	size_t i;

	ERR_clear_error();
	if (est_listener_ctx_index < 0 &&
	    (est_listener_ctx_index = SSL_CTX_get_ex_new_index(
	         0, NULL, NULL, NULL, est_listener_ctx_freed)) < 0) {
		core_error_set(err, errlen, 1, "%s",
		               "cannot register TLS context data");
		goto out;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		core_error_set(err, errlen, 1, "%s",
		               "cannot create TLS context");
		goto out;
	}
	if (SSL_CTX_set_min_proto_version(ctx, config->tls.min_version) != 1) {
		core_error_set(err, errlen, 1, "%s",
		               "cannot set the minimum TLS version");
		goto out;
	}
	if (est_listener_tls12_cap(config) != NULL &&
	    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1) {
		core_error_set(err, errlen, 1, "%s",
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
		core_error_set(err, errlen, 1,
		               "tls.ciphers \"%s\" selects "
		               "no cipher",
		               config->tls.ciphers);
		goto out;
	}
	if (config->tls.ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, config->tls.ciphersuites) != 1) {
		core_error_set(err, errlen, 1,
		               "tls.ciphersuites \"%s\" "
		               "selects no suite",
		               config->tls.ciphersuites);
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, config->tls.cert) != 1) {
		core_error_set(err, errlen, 1, "cannot load tls.cert %s",
		               config->tls.cert);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, config->tls.key,
	                                SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		core_error_set(err, errlen, 1, "cannot use tls.key %s",
		               config->tls.key);
		goto out;
	}
	SSL_CTX_set_info_callback(ctx, est_listener_info);
	/* Resumption needs a session id context once peers are verified. */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_timeout(ctx, (long)config->tls.session_timeout);
	/* TLS 1.3 servers send two tickets by default, for clients that
	 * open connections in parallel; an EST client resumes one at a
	 * time, and each ticket costs a session encoding, its encryption
	 * and a record (about 2% of a full-handshake enrollment). */
	SSL_CTX_set_num_tickets(ctx, 1);
	/* A client's Certificate message longer than this is refused from
	 * its header (OpenSSL's default lets 100 KiB through). */
	SSL_CTX_set_max_cert_list(ctx, (long)config->tls.max_cert_list);
	if (config->tls.request_client_cert) {
		if ((lim = calloc(1, sizeof(*lim))) == NULL ||
		    SSL_CTX_set_ex_data(ctx, est_listener_ctx_index, lim) !=
		        1) {
			core_error_set(err, errlen, 1, "%s", "out of memory");
			goto out;
		}
		/* The context owns it now, and frees it. */
		lim->verify_depth = config->tls.verify_depth;
		lim->max_key_bits = config->tls.max_key_bits;
		lim = NULL;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_verify_depth(ctx, (int)config->tls.verify_depth);
		SSL_CTX_set_cert_verify_callback(ctx, est_listener_check_peer,
		                                 NULL);
		/* The CertificateRequest names both stores' CAs so clients
		 * pick a certificate we can use. */
		if ((names = sk_X509_NAME_new_null()) == NULL ||
		    SSL_add_file_cert_subjects_to_stack(
		        names, config->tls.explicit_ca) != 1 ||
		    (config->tls.implicit_ca != NULL &&
		     SSL_add_file_cert_subjects_to_stack(
		         names, config->tls.implicit_ca) != 1)) {
			core_error_set(err, errlen, 1, "%s",
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
				core_error_set(
				    err, errlen, 1,
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
	free(lim);
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
/*
 * evhttp calls it for every accepted connection: wraps the socket in an
 * OpenSSL bufferevent that performs the server handshake, with the TLS
 * context of the generation current now.  The SSL object holds its own
 * reference to that context, so a connection accepted before a reload
 * finishes with the old certificate while new ones get the new.
 */
static struct bufferevent *
est_listener_bevcb(struct event_base *base, void *arg)
{
	struct est_worker *worker = arg;
	struct est_generation *gen = est_server_acquire(worker->server);
	SSL *ssl = SSL_new(gen->ssl_ctx);
	struct bufferevent *bev;

	/* Connection limits and timeout accounting (est/limits.c). */
	if (ssl != NULL)
		est_limits_conn_new(ssl, base, gen->config);
	est_generation_release(gen);
	if (ssl == NULL) {
		ERR_clear_error();
		return NULL;
	}
	if (est_listener_ssl_index >= 0 &&
	    SSL_set_ex_data(ssl, est_listener_ssl_index, EST_SSL_HANDSHAKING) ==
	        1)
		est_metrics_connections(1);
	bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	/* New handshakes wait behind requests under way (est/conn.c raises
	 * a connection once it has sent a request); each request head is
	 * checked as it comes in (est/limits.c). */
	if (bev != NULL) {
		(void)bufferevent_priority_set(bev, CORE_LOOP_PRIORITY_NEW);
		est_limits_conn_input(ssl, bufferevent_get_input(bev));
	}
	return bev;
}

/* A paused listener resumes accepting, with its spare descriptor back. */
static void
est_listener_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct est_accept *a = arg;

	(void)fd;
	(void)what;
	est_limits_spare_take();
	(void)evconnlistener_enable(a->lev);
}

/*
 * libevent's listener calls it when accept(2) failed for a reason other
 * than a retry (EMFILE or ENFILE, mostly).  Without it the listener would
 * log a warning and stay enabled, and the loop would call accept(2) again
 * at once: hundreds of thousands of failed calls and log lines a second
 * while the descriptors last.  The listener pauses for
 * EST_LIMITS_PAUSE_MS instead; est/limits.c closes the oldest waiting
 * connection with the spare descriptor and logs.
 */
static void
est_listener_accept_error(struct evconnlistener *lev, void *arg)
{
	static const struct timeval pause_tv = {0, EST_LIMITS_PAUSE_MS * 1000};
	int err = EVUTIL_SOCKET_ERROR();
	size_t i;

	(void)arg;
	for (i = 0; i < est_naccepts_here; i++)
		if (est_accepts_here[i].lev == lev)
			break;
	/* Without its timer (out of memory) a listener stays enabled. */
	if (i < est_naccepts_here && est_accepts_here[i].resume != NULL &&
	    event_add(est_accepts_here[i].resume, &pause_tv) == 0)
		(void)evconnlistener_disable(lev);
	est_limits_accept_failed(evconnlistener_get_fd(lev),
	                         evconnlistener_get_base(lev), err);
}

/*
 * Hands the listening socket fd to http, whose loop is base, and watches
 * its accept errors; fills a (its timer is the caller's to free).
 * Returns 0 (evhttp owns fd), or -1 when out of memory or evhttp refused
 * the socket (fd is still the caller's).
 */
static int
est_listener_accept_on(struct evhttp *http, struct event_base *base, int fd,
                       struct est_accept *a)
{
	struct evhttp_bound_socket *bound;

	if ((a->resume = evtimer_new(base, est_listener_accept_resume, a)) ==
	    NULL)
		return -1;
	if ((bound = evhttp_accept_socket_with_handle(http, fd)) == NULL) {
		event_free(a->resume);
		a->resume = NULL;
		return -1;
	}
	a->lev = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(a->lev, est_listener_accept_error);
	return 0;
}

/*
 * Applies the request limits of the current generation to one worker's
 * evhttp, on that worker's thread (evhttp is not thread-safe).
 */
static void
est_worker_apply_limits(struct est_worker *worker)
{
	struct est_generation *gen = est_server_acquire(worker->server);
	const struct ra_config *config = gen->config;

	evhttp_set_timeout(worker->http, (int)config->limits.timeout);
	evhttp_set_max_headers_size(worker->http,
	                            (ev_ssize_t)config->limits.max_headers);
	/* Bodies up to four times the limit are read so that est/conn.c can
	 * answer 413 with its text and log line; beyond that evhttp cuts the
	 * connection with its own bare 413 to bound memory. */
	evhttp_set_max_body_size(worker->http,
	                         (ev_ssize_t)(config->limits.max_body * 4));
	est_generation_release(gen);
}

static void
est_worker_apply_limits_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	est_worker_apply_limits(arg);
}

/*
 * A worker's loop.  The epoll change list folds the add/delete pairs a
 * connection's bufferevent makes within one loop pass into one
 * epoll_ctl(2) (about ten per connection otherwise); estrad never hands
 * the loop dup()ed descriptors, the case the change list gets wrong.
 * Two priorities (core/loop.h): after 2 ms of callbacks of the lower one (new
 * handshakes, 1-2 ms each with RSA) the loop looks for ready work of the
 * higher one, so a burst of handshakes delays a request under way by a
 * handshake or two, not by the whole burst.
 */
/* How long a worker's loop runs new-handshake callbacks before it looks
 * for requests under way again: one RSA-2048 handshake and a bit.  After
 * every single callback, the extra epoll_wait(2) calls cost 10% of the CPU
 * of a full-handshake enrollment (make bench). */
static const struct timeval est_worker_recheck = {0, 2000};

static struct event_base *
est_worker_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base = NULL;

	if (cfg != NULL &&
	    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) ==
	        0 &&
	    event_config_set_max_dispatch_interval(cfg, &est_worker_recheck, -1,
	                                           CORE_LOOP_PRIORITY_NEW) == 0)
		base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (base == NULL)
		base = event_base_new();
	if (base != NULL &&
	    event_base_priority_init(base, CORE_LOOP_PRIORITIES) != 0) {
		event_base_free(base);
		base = NULL;
	}
	return base;
}

static int
est_worker_init(struct est_server *server, struct est_worker *worker, char *err,
                size_t errlen)
{
	const struct ra_config *config = server->config;
	size_t i;

	worker->server = server;
	if ((worker->base = est_worker_base_new()) == NULL ||
	    (worker->http = evhttp_new(worker->base)) == NULL) {
		snprintf(err, errlen, "cannot create event loop");
		return -1;
	}
	worker->conn.server = server;
	worker->conn.base = worker->base;
	evhttp_set_bevcb(worker->http, est_listener_bevcb, worker);
	evhttp_set_gencb(worker->http, est_conn_handle, &worker->conn);
	est_worker_apply_limits(worker);
	evhttp_set_allowed_methods(
	    worker->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                      EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                      EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	/* HTTP/1.1 keep-alive is fine, but evhttp must not add a
	 * Content-Type of its own. */
	evhttp_set_default_content_type(worker->http, NULL);
	if ((worker->fds = calloc(config->nlisten, sizeof(int))) == NULL ||
	    (worker->accepts =
	         calloc(config->nlisten, sizeof(*worker->accepts))) == NULL) {
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
		if (est_listener_accept_on(worker->http, worker->base,
		                           worker->fds[i],
		                           &worker->accepts[i]) != 0) {
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

/*
 * Generations.  The server holds one reference to the current one; each
 * request and each bevcb call holds one while it uses it.
 */

struct est_generation *
est_server_acquire(struct est_server *server)
{
	struct est_generation *gen;

	pthread_mutex_lock(&server->lock);
	gen = server->current;
	__atomic_add_fetch(&gen->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&server->lock);
	return gen;
}

/* Returns a new generation owning ssl_ctx, with the server's reference. */
static struct est_generation *
est_generation_new(struct est_server *server, const struct ra_config *config,
                   const struct ra_trust *trust, SSL_CTX *ssl_ctx)
{
	struct est_generation *gen;

	if ((gen = calloc(1, sizeof(*gen))) == NULL)
		return NULL;
	gen->config = config;
	gen->trust = trust;
	gen->ssl_ctx = ssl_ctx;
	gen->refs = 1;
	gen->server = server;
	gen->serial = ++server->serial;
	return gen;
}

/* Frees gen and what it owns (not what it borrows from main()). */
static void
est_generation_free(struct est_generation *gen)
{
	if (gen == NULL)
		return;
	SSL_CTX_free(gen->ssl_ctx);
	ra_trust_free(gen->own_trust);
	ra_config_free(gen->own_config);
	free(gen);
}

/*
 * Starts (start set) or stops the background work of every label's CA
 * backend of gen.  Worker 0 hosts it: its loop is the one a backend's
 * timers and transfers run on, so start and stop happen on that thread.
 */
static void
est_generation_backends(struct est_generation *gen, struct event_base *base,
                        int start)
{
	const struct ra_config *config = gen->config;

	if (start == gen->started)
		return;
	gen->started = start;
	if (start)
		ra_backends_start(config, base);
	else
		ra_backends_stop(config);
}

/* Takes gen off the retired list, where it may or may not be. */
static void
est_server_unlink(struct est_server *server, struct est_generation *gen)
{
	struct est_generation **p;

	pthread_mutex_lock(&server->lock);
	for (p = &server->retired; *p != NULL; p = &(*p)->next)
		if (*p == gen) {
			*p = gen->next;
			break;
		}
	gen->next = NULL;
	pthread_mutex_unlock(&server->lock);
}

/*
 * Worker 0, once the last reference of a retired generation is gone: no
 * request uses its CA instances any more, so stopping their background
 * work cancels nothing a client waits for, and freeing them is safe.
 */
static void
est_generation_retire_cb(evutil_socket_t fd, short what, void *arg)
{
	struct est_generation *gen = arg;
	struct est_server *server = gen->server;

	(void)fd;
	(void)what;
	est_server_unlink(server, gen);
	est_generation_backends(gen, server->workers[0].base, 0);
	ra_log(CORE_LOG_INFO, "est.listener", NULL, NULL,
	       "configuration generation %lu released", gen->serial);
	est_generation_free(gen);
}

void
est_generation_release(void *arg)
{
	static const struct timeval now = {0, 0};
	struct est_generation *gen = arg;

	if (gen == NULL ||
	    __atomic_sub_fetch(&gen->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	/* Only a retired generation reaches zero: the server holds a
	 * reference to the current one.  If worker 0 cannot take the job,
	 * the generation stays on the retired list and is freed at exit. */
	if (event_base_once(gen->server->workers[0].base, -1, EV_TIMEOUT,
	                    est_generation_retire_cb, gen, &now) != 0)
		ra_log(CORE_LOG_WARN, "est.listener", NULL, NULL,
		       "cannot schedule the release of configuration "
		       "generation %lu: out of memory; it is freed at exit",
		       gen->serial);
}

struct est_server *
est_server_new(const struct ra_config *config, const struct ra_trust *trust,
               char *err, size_t errlen)
{
	struct est_server *server = NULL, *rc = NULL;
	SSL_CTX *ssl_ctx = NULL;
	int i;

	if (evthread_use_pthreads() != 0) {
		snprintf(err, errlen, "libevent has no pthread support");
		goto out;
	}
	if (est_listener_ssl_index < 0 &&
	    (est_listener_ssl_index = SSL_get_ex_new_index(
	         0, NULL, NULL, NULL, est_listener_ssl_freed)) < 0) {
		snprintf(err, errlen, "cannot register TLS connection data");
		goto out;
	}
	if ((server = calloc(1, sizeof(*server))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	pthread_mutex_init(&server->lock, NULL);
	server->metrics_fd = -1;
	server->config = config;
	/* Taken before privileges are dropped, like the sockets. */
	est_limits_spare_take();
	if ((ssl_ctx = est_listener_tls_context(config, err, errlen)) == NULL)
		goto out;
	if ((server->current =
	         est_generation_new(server, config, trust, ssl_ctx)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ssl_ctx = NULL;
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
	/* Bound here with the TLS sockets, before privileges are dropped. */
	if (config->metrics_listen != NULL &&
	    (server->metrics_fd =
	         est_listener_bind(config->metrics_listen, err, errlen)) < 0)
		goto out;
	rc = server;
	server = NULL;
out:
	SSL_CTX_free(ssl_ctx);
	est_server_free(server);
	return rc;
}

static void *
est_worker_main(void *arg)
{
	struct est_worker *worker = arg;
	struct est_server *server = worker->server;
	struct est_generation *gen;

	est_accepts_here = worker->accepts;
	est_naccepts_here = server->config->nlisten;
	if (worker == &server->workers[0]) {
		gen = est_server_acquire(server);
		est_generation_backends(gen, worker->base, 1);
		est_generation_release(gen);
	}
	event_base_dispatch(worker->base);
	if (worker == &server->workers[0]) {
		/* The loop will not run again: every generation still here
		 * stops its background work now.  Retired ones are freed
		 * with the server. */
		pthread_mutex_lock(&server->lock);
		est_generation_backends(server->current, worker->base, 0);
		for (gen = server->retired; gen != NULL; gen = gen->next)
			est_generation_backends(gen, worker->base, 0);
		pthread_mutex_unlock(&server->lock);
	}
	/* Requests waiting for a helper thread (crypt(3)) or for their audit
	 * record are answered (or at least handed to their connection)
	 * before the loop is freed. */
	core_offload_drain(worker->base);
	ra_backends_loop_shutdown(worker->base);
	return NULL;
}

struct est_signal_state {
	struct est_server *server;
	struct event_base *base;
};

/* Returns 1 when the two lists of strings differ. */
static int
est_strings_differ(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 1;
	for (i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 1;
	return 0;
}

/* Returns 1 when two optional strings differ. */
static int
est_string_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/*
 * Logs one warn line for each key of a reloaded config that only a
 * restart can apply: the sockets, the threads and the open log files stay
 * what estrad started with.
 */
static void
est_server_reload_warn(const struct est_server *server,
                       const struct ra_config *next)
{
	const struct ra_config *first = server->config;
	static const char hint[] = "restart estrad to apply it";
	const char *key = NULL;
	int i;

	for (i = 0; i < 6; i++) {
		switch (i) {
		case 0:
			key = est_strings_differ(first->listen, first->nlisten,
			                         next->listen, next->nlisten)
			          ? "listen"
			          : NULL;
			break;
		case 1:
			key = (next->workers > 0 ? next->workers : 1) !=
			              server->nworkers
			          ? "workers"
			          : NULL;
			break;
		case 2:
			key = est_string_differs(first->metrics_listen,
			                         next->metrics_listen)
			          ? "metrics.listen"
			          : NULL;
			break;
		case 3:
			key = est_string_differs(first->logs.error,
			                         next->logs.error)
			          ? "logs.error"
			          : NULL;
			break;
		case 4:
			key = est_string_differs(first->logs.access,
			                         next->logs.access)
			          ? "logs.access"
			          : NULL;
			break;
		default:
			key = est_string_differs(first->logs.audit,
			                         next->logs.audit)
			          ? "logs.audit"
			          : NULL;
			break;
		}
		if (key != NULL)
			ra_log(CORE_LOG_WARN, "est.listener", NULL, hint,
			       "configuration reload: %s changed but cannot "
			       "be applied live; the value estrad started "
			       "with stays in force",
			       key);
	}
}

/*
 * Worker 0: makes a validated generation current.  Its backends start
 * first, on the thread their background work belongs to, so the first
 * request that sees the generation finds them running; the old one is
 * retired and freed when its last request is done.
 */
static void
est_server_activate_cb(evutil_socket_t fd, short what, void *arg)
{
	struct est_generation *gen = arg, *old;
	struct est_server *server = gen->server;
	const struct ra_config *config = gen->config;
	static const struct timeval now = {0, 0};
	int i;

	(void)fd;
	(void)what;
	est_server_unlink(server, gen);
	est_generation_backends(gen, server->workers[0].base, 1);
	pthread_mutex_lock(&server->lock);
	old = server->current;
	server->current = gen;
	old->next = server->retired;
	server->retired = old;
	pthread_mutex_unlock(&server->lock);
	ra_log_set_level(config->logs.level);
	est_metrics_reload(1, gen->serial);
	ra_log(CORE_LOG_NOTICE, "est.listener", NULL, NULL,
	       "configuration %s reloaded: generation %lu, %zu labels, "
	       "default \"%s\"",
	       config->path, gen->serial, config->nlabels,
	       config->default_label->name);
	if (config->users_table != NULL)
		ra_log(CORE_LOG_NOTICE, "est.listener", NULL, NULL,
		       "users file %s reloaded: %zu users", config->users,
		       ra_users_count(ra_users_slot_get(config->users_slot)));
	if (est_listener_tls12_cap(config) != NULL)
		ra_log(CORE_LOG_INFO, "est.listener", NULL, NULL,
		       "TLS capped at 1.2: label %s requires PoP linking "
		       "(tls-unique) without tls_exporter",
		       est_listener_tls12_cap(config)->name);
	/* Each worker applies the new request limits on its own thread. */
	for (i = 0; i < server->nworkers; i++)
		if (i == 0)
			est_worker_apply_limits(&server->workers[0]);
		else if (event_base_once(server->workers[i].base, -1,
		                         EV_TIMEOUT, est_worker_apply_limits_cb,
		                         &server->workers[i], &now) != 0)
			ra_log(CORE_LOG_WARN, "est.listener", NULL,
			       "send SIGHUP again",
			       "worker %d keeps its old request limits: out "
			       "of memory",
			       i);
	est_generation_release(old);
}

/*
 * SIGHUP, main thread: builds a complete new generation from the
 * configuration file (config with users, CRLs, policies and CA instances;
 * trust stores; TLS context with the certificate and key read again) and
 * hands it to worker 0 to make current.  Anything that fails to load is
 * refused with one error line naming file, line, column and reason, and
 * the generation in force keeps serving.
 */
static void
est_server_reload(struct est_server *server)
{
	static const struct timeval now = {0, 0};
	static const char hint[] =
	    "fix it and send SIGHUP again; the configuration loaded before "
	    "stays in force";
	struct est_generation *cur, *gen = NULL;
	struct ra_config *config = NULL;
	struct ra_trust *trust = NULL;
	SSL_CTX *ssl_ctx = NULL;
	char err[1024] = "", *path = NULL;

	cur = est_server_acquire(server);
	path = strdup(cur->config->path);
	est_generation_release(cur);
	if (path == NULL) {
		ra_log(CORE_LOG_ERROR, "est.listener", NULL, hint,
		       "configuration reload refused: out of memory");
		goto fail;
	}
	if ((config = ra_config_load(path, err, sizeof(err))) == NULL) {
		/* A users file that does not load is named as such, the
		 * words operators grep for since SIGHUP first reloaded it. */
		ra_log(CORE_LOG_ERROR, "est.listener", NULL, hint, "%s: %s",
		       strstr(err, ": users: ") != NULL
		           ? "users file reload refused"
		           : "configuration reload refused",
		       err);
		goto fail;
	}
	/* The threads stay those estrad started with. */
	if (est_limits_nofile(config, server->nworkers, err, sizeof(err)) !=
	    0) {
		ra_log(CORE_LOG_ERROR, "est.listener", NULL, hint,
		       "configuration reload refused: %s: limits: %s", path,
		       err);
		goto fail;
	}
	/* The file checks of the start, so that a reload cannot bring in
	 * what a start refuses. */
	if (est_privilege_check(config, err, sizeof(err)) != 0) {
		ra_log(CORE_LOG_ERROR, "est.listener", NULL, hint,
		       "configuration reload refused: %s", err);
		goto fail;
	}
	if ((trust = ra_trust_new(config->tls.explicit_ca,
	                          config->tls.implicit_ca, err, sizeof(err))) ==
	    NULL) {
		ra_log(CORE_LOG_ERROR, "est.listener", NULL, hint,
		       "configuration reload refused: %s: tls: %s", path, err);
		goto fail;
	}
	if ((ssl_ctx = est_listener_tls_context(config, err, sizeof(err))) ==
	    NULL) {
		ra_log(CORE_LOG_ERROR, "est.listener", NULL, hint,
		       "configuration reload refused: %s: tls: %s", path, err);
		goto fail;
	}
	if ((gen = est_generation_new(server, config, trust, ssl_ctx)) ==
	    NULL) {
		ra_log(CORE_LOG_ERROR, "est.listener", NULL, hint,
		       "configuration reload refused: out of memory");
		goto fail;
	}
	gen->own_config = config;
	gen->own_trust = trust;
	config = NULL;
	trust = NULL;
	ssl_ctx = NULL;
	est_server_reload_warn(server, gen->config);
	ra_config_log_warnings(gen->config);
	/* Listed as retired until worker 0 makes it current, so that a stop
	 * before the switch still frees it. */
	pthread_mutex_lock(&server->lock);
	gen->next = server->retired;
	server->retired = gen;
	pthread_mutex_unlock(&server->lock);
	if (event_base_once(server->workers[0].base, -1, EV_TIMEOUT,
	                    est_server_activate_cb, gen, &now) != 0) {
		est_server_unlink(server, gen);
		ra_log(CORE_LOG_ERROR, "est.listener", NULL, hint,
		       "configuration reload refused: cannot schedule the "
		       "switch: out of memory");
		goto fail;
	}
	free(path);
	return;
fail:
	est_metrics_reload(0, 0);
	est_generation_free(gen);
	SSL_CTX_free(ssl_ctx);
	ra_trust_free(trust);
	ra_config_free(config);
	free(path);
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
			ra_log(CORE_LOG_NOTICE, "est.listener", NULL, NULL,
			       "signal %d: log files reopened", (int)sig);
		if (sig == SIGHUP)
			est_server_reload(state->server);
		return;
	}
	ra_log(CORE_LOG_NOTICE, "est.listener", NULL, NULL,
	       "signal %d: shutting down", (int)sig);
	for (i = 0; i < state->server->nworkers; i++)
		if (state->server->workers[i].started)
			event_base_loopexit(state->server->workers[i].base,
			                    NULL);
	event_base_loopexit(state->base, NULL);
}

/* Answers status with a text/plain body. */
static void
est_server_metrics_text(struct evhttp_request *evreq, int status,
                        const char *reason, const char *text)
{
	struct evbuffer *buf = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(evreq),
	                  "Content-Type", "text/plain; charset=utf-8");
	if (buf != NULL)
		evbuffer_add_printf(buf, "%s\n", text);
	evhttp_send_reply(evreq, status, reason, buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

/*
 * The plain-HTTP listener, main thread: /metrics (Prometheus text format),
 * /healthz (the process answers) and /readyz (a configuration is loaded
 * and no backend's last CA call was UNREACHABLE).
 */
static void
est_server_metrics_cb(struct evhttp_request *evreq, void *arg)
{
	struct est_server *server = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(evreq);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type method = evhttp_request_get_command(evreq);
	struct est_generation *gen;
	struct evbuffer *buf;
	char why[512];

	if (path == NULL)
		path = "";
	if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(evreq),
		                  "Allow", "GET, HEAD");
		est_server_metrics_text(evreq, 405, "Method Not Allowed",
		                        "use GET");
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		est_server_metrics_text(evreq, 200, "OK", "ok");
		return;
	}
	if (strcmp(path, "/readyz") == 0) {
		if (est_metrics_ready(why, sizeof(why)))
			est_server_metrics_text(evreq, 200, "OK", "ready");
		else
			est_server_metrics_text(evreq, 503,
			                        "Service Unavailable", why);
		return;
	}
	if (strcmp(path, "/metrics") != 0) {
		est_server_metrics_text(evreq, 404, "Not Found",
		                        "try /metrics, /healthz or /readyz");
		return;
	}
	if ((buf = evbuffer_new()) == NULL) {
		est_server_metrics_text(evreq, 500, "Internal Server Error",
		                        "out of memory");
		return;
	}
	gen = est_server_acquire(server);
	est_metrics_render(buf, gen->config, gen->ssl_ctx);
	est_generation_release(gen);
	evhttp_add_header(evhttp_request_get_output_headers(evreq),
	                  "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(evreq, 200, "OK", buf);
	evbuffer_free(buf);
}

int
est_server_run(struct est_server *server)
{
	static const int signals[] = {SIGHUP, SIGUSR1, SIGTERM, SIGINT};
	struct event *events[sizeof(signals) / sizeof(signals[0])] = {NULL};
	struct est_signal_state state = {server, NULL};
	const struct ra_config *config = server->config;
	sigset_t block, old;
	size_t s;
	int i, rc = -1;

	signal(SIGPIPE, SIG_IGN);
	est_metrics_reload(1, 1);
	/* Workers must not take the signals the main loop handles. */
	sigemptyset(&block);
	for (s = 0; s < sizeof(signals) / sizeof(signals[0]); s++)
		sigaddset(&block, signals[s]);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (i = 0; i < server->nworkers; i++) {
		if (pthread_create(&server->workers[i].thread, NULL,
		                   est_worker_main, &server->workers[i]) != 0) {
			ra_log(CORE_LOG_EMERG, "est.listener", NULL, NULL,
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
	if (server->metrics_fd >= 0) {
		if ((server->metrics_http = evhttp_new(state.base)) == NULL ||
		    est_listener_accept_on(server->metrics_http, state.base,
		                           server->metrics_fd,
		                           &server->metrics_accept) != 0) {
			ra_log(CORE_LOG_EMERG, "est.listener", NULL, NULL,
			       "cannot serve metrics on %s",
			       config->metrics_listen);
			goto out;
		}
		/* evhttp's listener owns and closes the socket now. */
		server->metrics_fd = -1;
		est_accepts_here = &server->metrics_accept;
		est_naccepts_here = 1;
		evhttp_set_gencb(server->metrics_http, est_server_metrics_cb,
		                 server);
		evhttp_set_timeout(server->metrics_http, 10);
		evhttp_set_allowed_methods(
		    server->metrics_http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
		                              EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
		ra_log(CORE_LOG_INFO, "est.listener", NULL, NULL,
		       "metrics on http://%s/metrics, /healthz, /readyz",
		       config->metrics_listen);
	}
	for (i = 0; i < (int)config->nlisten; i++)
		ra_log(CORE_LOG_INFO, "est.listener", NULL, NULL,
		       "listening on %s with %d workers", config->listen[i],
		       server->nworkers);
	if (est_listener_tls12_cap(config) != NULL)
		ra_log(CORE_LOG_INFO, "est.listener", NULL, NULL,
		       "TLS capped at 1.2: label %s requires PoP linking "
		       "(tls-unique) without tls_exporter",
		       est_listener_tls12_cap(config)->name);
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
	if (server->metrics_http != NULL) {
		evhttp_free(server->metrics_http);
		server->metrics_http = NULL;
	}
	est_accepts_here = NULL;
	est_naccepts_here = 0;
	if (server->metrics_accept.resume != NULL) {
		event_free(server->metrics_accept.resume);
		server->metrics_accept.resume = NULL;
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
	struct est_generation *gen;
	size_t k;
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
		for (k = 0; w->accepts != NULL && k < server->config->nlisten;
		     k++)
			if (w->accepts[k].resume != NULL)
				event_free(w->accepts[k].resume);
		free(w->accepts);
		free(w->fds);
		if (w->base != NULL)
			event_base_free(w->base);
	}
	free(server->workers);
	if (server->metrics_fd >= 0)
		close(server->metrics_fd);
	/* The threads are gone: whatever still references a generation
	 * will never run again. */
	while ((gen = server->retired) != NULL) {
		server->retired = gen->next;
		est_generation_free(gen);
	}
	est_generation_free(server->current);
	pthread_mutex_destroy(&server->lock);
	free(server);
}
