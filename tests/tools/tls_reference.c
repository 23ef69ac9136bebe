/*
 * tls_reference.c: the benchmark's yardstick (make bench).  A minimal
 * HTTPS server with estrad's TLS settings (TLS 1.2 or later, a server
 * session cache, one TLS 1.3 ticket, the same certificate chain and key)
 * that answers every request with a fixed 200 of an enrollment answer's
 * size and does nothing else: no HTTP parser, no event loop, no
 * authentication, no CSR, no certificate, no logs.  Its CPU per exchange is
 * what OpenSSL and the kernel cost for one connection, handshake and
 * request on this machine, which no server built on them can go below.
 *
 *   tls_reference -p PORT -c CHAIN.pem -k KEY.pem [-t THREADS] [-b BYTES]
 *
 * Listens on 127.0.0.1:PORT with THREADS threads (default: the number of
 * cores) blocking on one listening socket, each serving one connection at a
 * time until the client closes it.  Prints "ready" once listening; runs
 * until killed.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* Largest request head and body read before the connection is dropped. */
#define REFERENCE_REQUEST_MAX 65536

struct reference {
	SSL_CTX *ctx;
	int listen_fd;
	char *answer; /* the fixed HTTP answer, head and body */
	int answer_len;
};

/*
 * Returns the length of the first whole request (head and Content-Length
 * body) at the start of buf, or 0 when more bytes are needed.
 */
static size_t
reference_request_len(const char *buf, size_t len)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	const char *cl;
	size_t head;
	long body = 0;

	if (end == NULL)
		return 0;
	head = (size_t)(end - buf) + 4;
	cl = memmem(buf, head, "\r\nContent-Length:", 17);
	if (cl == NULL)
		cl = memmem(buf, head, "\r\ncontent-length:", 17);
	if (cl != NULL)
		body = strtol(cl + 17, NULL, 10);
	if (body < 0 || head + (size_t)body > len)
		return 0;
	return head + (size_t)body;
}

/* Serves one accepted connection until the client closes it. */
static void
reference_serve(struct reference *r, int fd)
{
	char buf[REFERENCE_REQUEST_MAX];
	size_t have = 0, used;
	int n, one = 1;
	SSL *ssl;

	/* estrad sets TCP_NODELAY too: answers must not wait for ACKs. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((ssl = SSL_new(r->ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_accept(ssl) != 1)
		goto out;
	for (;;) {
		if (have == sizeof(buf))
			goto out;
		n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - have));
		if (n <= 0)
			goto out;
		have += (size_t)n;
		while ((used = reference_request_len(buf, have)) > 0) {
			if (SSL_write(ssl, r->answer, r->answer_len) !=
			    r->answer_len)
				goto out;
			memmove(buf, buf + used, have - used);
			have -= used;
		}
	}
out:
	SSL_free(ssl);
	ERR_clear_error();
	close(fd);
}

static void *
reference_thread(void *arg)
{
	struct reference *r = arg;
	int fd;

	for (;;) {
		if ((fd = accept(r->listen_fd, NULL, NULL)) >= 0)
			reference_serve(r, fd);
	}
	return NULL;
}

/* The same TLS context settings as est_listener_tls_context(). */
static SSL_CTX *
reference_context(const char *chain, const char *key)
{
	static const unsigned char sid_ctx[] = "estrad";
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, chain) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_print_errors_fp(stderr);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_NO_COMPRESSION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_num_tickets(ctx, 1);
	return ctx;
}

static void
reference_usage(void)
{
	fprintf(stderr, "usage: tls_reference -p PORT -c CHAIN.pem -k KEY.pem "
	                "[-t THREADS] [-b BYTES]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *chain = NULL, *key = NULL;
	struct sockaddr_in addr;
	struct reference r;
	long threads = sysconf(_SC_NPROCESSORS_ONLN), body = 1800, port = 0;
	pthread_t tid;
	int opt, one = 1, head;
	long i;

	while ((opt = getopt(argc, argv, "p:c:k:t:b:")) != -1) {
		switch (opt) {
		case 'p':
			port = strtol(optarg, NULL, 10);
			break;
		case 'c':
			chain = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 't':
			threads = strtol(optarg, NULL, 10);
			break;
		case 'b':
			body = strtol(optarg, NULL, 10);
			break;
		default:
			reference_usage();
		}
	}
	if (chain == NULL || key == NULL || port <= 0 || port > 65535 ||
	    threads < 1 || threads > 256 || body < 0 || body > 1000000)
		reference_usage();
	memset(&r, 0, sizeof(r));
	if ((r.ctx = reference_context(chain, key)) == NULL)
		return 1;
	/* An enrollment answer: base64 PKCS#7 of about this size. */
	if ((r.answer = malloc((size_t)body + 256)) == NULL)
		return 1;
	head = snprintf(r.answer, 256,
	                "HTTP/1.1 200 OK\r\n"
	                "Content-Type: application/pkcs7-mime; "
	                "smime-type=certs-only\r\n"
	                "Content-Transfer-Encoding: base64\r\n"
	                "Content-Length: %ld\r\n\r\n",
	                body);
	memset(r.answer + head, 'A', (size_t)body);
	r.answer_len = head + (int)body;

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((r.listen_fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(r.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
	               sizeof(one)) != 0 ||
	    bind(r.listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(r.listen_fd, 1024) != 0) {
		perror("tls_reference: listen");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (i = 1; i < threads; i++)
		if (pthread_create(&tid, NULL, reference_thread, &r) != 0)
			return 1;
	reference_thread(&r);
	return 0;
}
