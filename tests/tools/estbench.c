/*
 * estbench.c: the load generator of estrad's benchmark (make bench).
 *
 *   estbench gencsr -k rsa|ec -n N -o FILE
 *	writes N base64 DER PKCS#10 requests, one a line, before any clock
 *	starts; the keys come from a small pool (keygen is not what we
 *	measure).
 *   estbench enroll [options]
 *	runs simpleenroll against estrad with the CSRs of --csrs, in mode
 *	full (a new TLS connection and full handshake per enrollment),
 *	resume (a new connection resuming the previous session) or
 *	keepalive (one connection per client, HTTP/1.1 keep-alive), with
 *	--concurrency clients (one thread each, blocking sockets), bounded
 *	by --count and --duration.  It reads estrad's CPU time and memory
 *	from /proc before and after, measures the crypto floor in-process
 *	and prints one line; --json appends the figures as one JSON line.
 *	--probe also measures /cacerts latency while the load runs.
 *   estbench idle [options]
 *	opens --conns keep-alive TLS connections (each asks /cacerts once),
 *	holds them, reports estrad's RSS per connection and the /cacerts
 *	latency meanwhile.
 *   estbench floor [options]
 *	prints the crypto floor alone.
 *   estbench handshake [options]
 *	opens a new connection per attempt, presents the client certificate
 *	list of --client-cert (key --client-key), and asks GET /cacerts; it
 *	counts the attempts estrad answered and those it refused during the
 *	handshake, and prints estrad's CPU per attempt: the cost of a hostile
 *	certificate list next to that of a normal one.
 *
 * HTTP/1.1 is written by hand here: this is a benchmark client that sends
 * one fixed request shape and reads answers framed by Content-Length, so
 * it stays minimal.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define EST_PATH "/.well-known/est"

/* Largest HTTP answer read; estrad's answers are a few KiB. */
#define BENCH_RESPONSE_MAX (256 * 1024)

/* Keys behind the CSRs of one gencsr run. */
#define BENCH_KEY_POOL 16

/* Longest CSR line accepted from a --csrs file. */
#define BENCH_CSR_LINE_MAX 16384

/* Crypto floor: CPU seconds spent timing each operation. */
#define BENCH_FLOOR_SECONDS 0.25

/* Pause between two /cacerts probes, milliseconds. */
#define BENCH_PROBE_INTERVAL_MS 10

/* Threads that open the connections of the idle mode. */
#define BENCH_IDLE_OPENERS 32

enum bench_mode {
	BENCH_FULL,
	BENCH_RESUME,
	BENCH_KEEPALIVE,
};

/* Command-line options shared by every subcommand. */
struct bench_opts {
	const char *host;
	int port;
	const char *cafile;      /* trust anchors for the server chain */
	const char *csrs;        /* file of base64 CSRs, one a line */
	const char *label;       /* CA label, "" for the default one */
	const char *credentials; /* file holding "user:password" */
	const char *users;       /* htpasswd file estrad checks against */
	const char *tls_key;     /* estrad's TLS key, for the floor */
	const char *ca_key;      /* the issuing CA key, for the floor */
	const char *json;        /* file the JSON line is appended to */
	const char *name;        /* run name in outputs */
	const char *keys;        /* key-set name in outputs */
	const char *keytype;     /* gencsr: rsa or ec */
	const char *out;         /* gencsr: output file */
	const char *client_cert; /* handshake: certificate list, leaf first */
	const char *client_key;  /* handshake: its leaf's key */
	enum bench_mode mode;
	int concurrency;
	long count;
	double duration;
	long pid; /* estrad's pid, 0 when unknown */
	long conns;
	int probe;
	int timeout; /* seconds a socket read or write may block */
};

/* One TLS connection of a client. */
struct bench_conn {
	int fd;
	SSL *ssl;
};

/* What a /proc sample of estrad holds. */
struct bench_proc {
	double cpu_s; /* utime + stime */
	long rss_kib; /* VmRSS */
	long hwm_kib; /* VmHWM */
	long threads; /* Threads */
};

/* Latency samples of one thread, milliseconds. */
struct bench_lat {
	double *ms;
	size_t n, cap;
};

/* The CPU seconds of each public-key operation of one enrollment. */
struct bench_floor {
	double tls_sign;
	double kex;
	double csr_verify;
	double cert_sign;
	double client_verify;
	double auth; /* crypt(3) of the Basic password: no public key, apart */
	char tls_sign_alg[64];
	char kex_alg[32];
	char csr_alg[64];
	char cert_alg[64];
};

/* Shared state of one enroll run. */
struct bench_run {
	const struct bench_opts *o;
	SSL_CTX *ctx;
	char **requests; /* prebuilt HTTP requests, one per CSR */
	size_t *reqlens;
	size_t nrequests;
	atomic_long next;
	atomic_long ok, failed, resumed, connects;
	atomic_int stop;
	atomic_long status_other; /* last unexpected status, if any */
	double deadline;          /* monotonic seconds */
	pthread_barrier_t ready, go;
};

/* One client thread of an enroll run. */
struct bench_client {
	struct bench_run *run;
	pthread_t thread;
	struct bench_lat lat;
	int prepared; /* -1 when its preparation failed */
	char err[256];
};

/* The /cacerts probe thread: a new TLS connection per probe, or one
 * kept-alive connection (reopened when the server closes it). */
struct bench_probe {
	const struct bench_opts *o;
	SSL_CTX *ctx;
	int keepalive;
	pthread_t thread;
	atomic_int stop;
	struct bench_lat lat;
	long failed;
	char err[256];
};

static void bench_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Prints the message with the drained OpenSSL queue and exits 1. */
static void
bench_die(const char *fmt, ...)
{
	unsigned long e;
	char buf[256];
	va_list ap;

	fputs("estbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, " (SSL: %s)", buf);
	}
	fputc('\n', stderr);
	exit(1);
}

/* Monotonic time in seconds. */
static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the calling thread in seconds. */
static double
bench_thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
bench_lat_add(struct bench_lat *lat, double ms)
{
	double *grown;
	size_t cap;

	if (lat->n == lat->cap) {
		cap = lat->cap == 0 ? 1024 : lat->cap * 2;
		if ((grown = realloc(lat->ms, cap * sizeof(*grown))) == NULL)
			return;
		lat->ms = grown;
		lat->cap = cap;
	}
	lat->ms[lat->n++] = ms;
}

static int
bench_double_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts lat and returns its q-quantile (nearest rank), 0 when empty. */
static double
bench_quantile(struct bench_lat *lat, double q)
{
	size_t rank;

	if (lat->n == 0)
		return 0;
	qsort(lat->ms, lat->n, sizeof(double), bench_double_cmp);
	rank = (size_t)(q * (double)lat->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > lat->n)
		rank = lat->n;
	return lat->ms[rank - 1];
}

/* Appends src's samples to dst. */
static void
bench_lat_merge(struct bench_lat *dst, const struct bench_lat *src)
{
	size_t i;

	for (i = 0; i < src->n; i++)
		bench_lat_add(dst, src->ms[i]);
}

/* Parses a decimal long in [min, max] or exits naming the option. */
static long
bench_long(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		bench_die("%s: \"%s\" is not a number in %ld..%ld", opt, s, min,
		          max);
	return v;
}

/* --- /proc --------------------------------------------------------------- */

/*
 * Reads estrad's CPU seconds (utime + stime of /proc/PID/stat) and its
 * memory figures (VmRSS, VmHWM of /proc/PID/status).  Returns -1 when the
 * process is gone.
 */
static int
bench_proc_read(long pid, struct bench_proc *p)
{
	char path[64], buf[4096], *s;
	unsigned long utime = 0, stime = 0;
	FILE *fp = NULL;
	size_t n;
	int field, rc = -1;

	memset(p, 0, sizeof(*p));
	if (pid <= 0)
		goto out;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fp = fopen(path, "re")) == NULL)
		goto out;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	fp = NULL;
	/* The command name may hold spaces: fields count from its ')'. */
	if ((s = strrchr(buf, ')')) == NULL)
		goto out;
	for (field = 2; *s != '\0' && field < 14; s++)
		if (*s == ' ')
			field++;
	if (sscanf(s, "%lu %lu", &utime, &stime) != 2)
		goto out;
	p->cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((fp = fopen(path, "re")) == NULL)
		goto out;
	while (fgets(buf, sizeof(buf), fp) != NULL) {
		if (strncmp(buf, "VmRSS:", 6) == 0)
			p->rss_kib = strtol(buf + 6, NULL, 10);
		else if (strncmp(buf, "VmHWM:", 6) == 0)
			p->hwm_kib = strtol(buf + 6, NULL, 10);
		else if (strncmp(buf, "Threads:", 8) == 0)
			p->threads = strtol(buf + 8, NULL, 10);
	}
	rc = 0;
out:
	if (fp != NULL)
		fclose(fp);
	return rc;
}

/*
 * Resets estrad's VmHWM to its current RSS (clear_refs 5, Linux 4.0+) so
 * that the next reading is the peak of this run.  Best effort.
 */
static void
bench_proc_reset_peak(long pid)
{
	char path[64];
	int fd;

	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/clear_refs", pid);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return;
	if (write(fd, "5", 1) != 1) {
		/* An older kernel keeps the lifetime peak: still a bound. */
	}
	close(fd);
}

/* --- files and encodings ------------------------------------------------- */

/* Reads the first line of path into buf without its newline. */
static void
bench_read_line(const char *path, char *buf, size_t len)
{
	FILE *fp;
	size_t n;

	if ((fp = fopen(path, "re")) == NULL)
		bench_die("cannot read %s: %s", path, strerror(errno));
	if (fgets(buf, (int)len, fp) == NULL)
		bench_die("%s is empty", path);
	fclose(fp);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
}

/* Returns a new PEM private key read from path (free with EVP_PKEY_free). */
static EVP_PKEY *
bench_read_key(const char *path)
{
	EVP_PKEY *key;
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL)
		bench_die("cannot read %s: %s", path, strerror(errno));
	key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (key == NULL)
		bench_die("%s: not a PEM private key", path);
	return key;
}

/*
 * Reads the base64 CSR lines of path.  Returns a new array of new strings
 * (free each and the array with free) and sets *n.
 */
static char **
bench_read_csrs(const char *path, size_t *n)
{
	char *line = NULL, **list = NULL, **grown;
	size_t cap = 0, len;
	FILE *fp;

	*n = 0;
	if ((fp = fopen(path, "re")) == NULL)
		bench_die("cannot read %s: %s", path, strerror(errno));
	if ((line = malloc(BENCH_CSR_LINE_MAX)) == NULL)
		bench_die("out of memory");
	while (fgets(line, BENCH_CSR_LINE_MAX, fp) != NULL) {
		len = strcspn(line, "\r\n");
		line[len] = '\0';
		if (len == 0)
			continue;
		if (*n == cap) {
			cap = cap == 0 ? 256 : cap * 2;
			if ((grown = realloc(list, cap * sizeof(*list))) ==
			    NULL)
				bench_die("out of memory");
			list = grown;
		}
		if ((list[*n] = strdup(line)) == NULL)
			bench_die("out of memory");
		(*n)++;
	}
	fclose(fp);
	free(line);
	if (*n == 0)
		bench_die("%s holds no CSR", path);
	return list;
}

/* Returns a new X509_REQ decoded from one base64 line. */
static X509_REQ *
bench_csr_decode(const char *b64)
{
	const unsigned char *p;
	unsigned char *der;
	size_t len = strlen(b64);
	X509_REQ *req;
	int n;

	if ((der = malloc(len)) == NULL)
		bench_die("out of memory");
	if ((n = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)len)) <
	    0)
		bench_die("a CSR line is not base64");
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	while (len > 0 && b64[len - 1] == '=') {
		len--;
		n--;
	}
	p = der;
	if ((req = d2i_X509_REQ(NULL, &p, n)) == NULL)
		bench_die("a CSR line is not a DER PKCS#10 request");
	free(der);
	return req;
}

/* --- gencsr -------------------------------------------------------------- */

/* Returns a new key of keytype (rsa: RSA-2048, ec: P-256). */
static EVP_PKEY *
bench_keygen(const char *keytype)
{
	EVP_PKEY *key;

	if (strcmp(keytype, "rsa") == 0)
		key = EVP_RSA_gen(2048);
	else if (strcmp(keytype, "ec") == 0)
		key = EVP_EC_gen("P-256");
	else
		bench_die("-k: key type must be rsa or ec, not \"%s\"",
		          keytype);
	if (key == NULL)
		bench_die("cannot generate a %s key", keytype);
	return key;
}

static int
bench_gencsr(const struct bench_opts *o)
{
	EVP_PKEY *keys[BENCH_KEY_POOL] = {NULL};
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *san = NULL;
	unsigned char *der = NULL;
	char cn[64], dns[96], *b64 = NULL;
	X509_NAME *name = NULL;
	X509_REQ *req = NULL;
	FILE *fp = NULL;
	int i, len, nkeys, rc = -1;
	long n;

	if (o->out == NULL || o->keytype == NULL || o->count <= 0)
		bench_die("gencsr needs -k rsa|ec, -n COUNT and -o FILE");
	nkeys = o->count < BENCH_KEY_POOL ? (int)o->count : BENCH_KEY_POOL;
	for (i = 0; i < nkeys; i++)
		keys[i] = bench_keygen(o->keytype);
	if ((fp = fopen(o->out, "we")) == NULL)
		bench_die("cannot write %s: %s", o->out, strerror(errno));
	for (n = 0; n < o->count; n++) {
		snprintf(cn, sizeof(cn), "bench-%06ld", n);
		snprintf(dns, sizeof(dns), "DNS:bench-%06ld.example.com", n);
		if ((req = X509_REQ_new()) == NULL ||
		    (name = X509_NAME_new()) == NULL ||
		    !X509_NAME_add_entry_by_txt(
		        name, "O", MBSTRING_UTF8,
		        (const unsigned char *)"estbench", -1, -1, 0) ||
		    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
		                                (const unsigned char *)cn, -1,
		                                -1, 0) ||
		    !X509_REQ_set_subject_name(req, name) ||
		    !X509_REQ_set_pubkey(req, keys[n % nkeys]) ||
		    (san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
		                               dns)) == NULL ||
		    (exts = sk_X509_EXTENSION_new_null()) == NULL ||
		    !sk_X509_EXTENSION_push(exts, san))
			goto out;
		san = NULL;
		if (!X509_REQ_add_extensions(req, exts) ||
		    X509_REQ_sign(req, keys[n % nkeys], EVP_sha256()) <= 0 ||
		    (len = i2d_X509_REQ(req, &der)) <= 0)
			goto out;
		if ((b64 = malloc((size_t)len / 3 * 4 + 8)) == NULL)
			goto out;
		EVP_EncodeBlock((unsigned char *)b64, der, len);
		fprintf(fp, "%s\n", b64);
		free(b64);
		b64 = NULL;
		OPENSSL_free(der);
		der = NULL;
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		exts = NULL;
		X509_NAME_free(name);
		name = NULL;
		X509_REQ_free(req);
		req = NULL;
	}
	if (fclose(fp) != 0) {
		fp = NULL;
		goto out;
	}
	fp = NULL;
	rc = 0;
out:
	if (fp != NULL)
		fclose(fp);
	free(b64);
	OPENSSL_free(der);
	X509_EXTENSION_free(san);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	X509_REQ_free(req);
	for (i = 0; i < BENCH_KEY_POOL; i++)
		EVP_PKEY_free(keys[i]);
	if (rc != 0)
		bench_die("cannot write the CSRs to %s", o->out);
	return rc;
}

/* --- TLS and HTTP -------------------------------------------------------- */

/* Returns the client TLS context: verifies the server chain against -a. */
static SSL_CTX *
bench_tls_context(const struct bench_opts *o)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		bench_die("cannot create the TLS context");
	if (o->cafile != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1)
			bench_die("cannot load %s", o->cafile);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	/* Idle connections should cost the client little memory too. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_AUTO_RETRY);
	return ctx;
}

/*
 * Connects to the server and completes the TLS handshake, offering sess
 * when not NULL.  Returns 0, or -1 with err filled.
 */
static int
bench_connect(const struct bench_opts *o, SSL_CTX *ctx, SSL_SESSION *sess,
              struct bench_conn *c, char *err, size_t errlen)
{
	struct timeval tv = {o->timeout, 0};
	struct sockaddr_in sin;
	int one = 1, rc = -1;
	unsigned long e;

	c->fd = -1;
	c->ssl = NULL;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)o->port);
	if (inet_pton(AF_INET, o->host, &sin.sin_addr) != 1) {
		snprintf(err, errlen, "%s: not an IPv4 address", o->host);
		goto out;
	}
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) !=
	        0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		snprintf(err, errlen, "connect %s:%d: (%d: %s)", o->host,
		         o->port, errno, strerror(errno));
		goto out;
	}
	if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    (sess != NULL && SSL_set_session(c->ssl, sess) != 1)) {
		snprintf(err, errlen, "SSL_new failed");
		goto out;
	}
	if (SSL_connect(c->ssl) != 1) {
		e = ERR_get_error();
		snprintf(err, errlen,
		         "TLS handshake with %s:%d failed (SSL: %s)", o->host,
		         o->port, e != 0 ? ERR_reason_error_string(e) : "eof");
		ERR_clear_error();
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
	}
	return rc;
}

/* Sends close_notify (without waiting for the peer's) and closes. */
static void
bench_close(struct bench_conn *c)
{
	if (c->ssl != NULL) {
		(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
	ERR_clear_error();
}

/* Case-insensitive search of header name in the head of an answer. */
static const char *
bench_header(const char *head, size_t headlen, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = head, *end = head + headlen;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (eol == NULL)
			break;
		p = eol + 1;
		if ((size_t)(end - p) > nlen &&
		    strncasecmp(p, name, nlen) == 0 && p[nlen] == ':')
			return p + nlen + 1;
	}
	return NULL;
}

/*
 * Writes req and reads one answer framed by Content-Length.  Sets *status
 * and *closes (the server announced Connection: close).  Returns 0, or -1
 * with err filled.
 */
static int
bench_exchange(struct bench_conn *c, const char *req, size_t reqlen,
               int *status, int *closes, char *err, size_t errlen)
{
	char buf[BENCH_RESPONSE_MAX + 1], *eoh = NULL;
	const char *v;
	size_t have = 0, headlen = 0, want = 0;
	long clen = -1;
	int n, rc = -1;

	*status = 0;
	*closes = 0;
	if (SSL_write(c->ssl, req, (int)reqlen) != (int)reqlen) {
		snprintf(err, errlen, "SSL_write failed");
		goto out;
	}
	for (;;) {
		if (eoh != NULL && have >= want)
			break;
		if (have >= BENCH_RESPONSE_MAX) {
			snprintf(err, errlen, "answer larger than %d bytes",
			         BENCH_RESPONSE_MAX);
			goto out;
		}
		errno = 0;
		n = SSL_read(c->ssl, buf + have,
		             BENCH_RESPONSE_MAX - (int)have);
		if (n <= 0) {
			snprintf(err, errlen,
			         "%s after %zu bytes of the answer",
			         errno == EAGAIN || errno == EWOULDBLOCK
			             ? "read timed out"
			             : "connection closed",
			         have);
			goto out;
		}
		have += (size_t)n;
		buf[have] = '\0';
		if (eoh == NULL && (eoh = strstr(buf, "\r\n\r\n")) != NULL) {
			headlen = (size_t)(eoh - buf) + 4;
			if (sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
				snprintf(err, errlen, "no HTTP status line");
				goto out;
			}
			if ((v = bench_header(buf, headlen,
			                      "Content-Length")) != NULL)
				clen = strtol(v, NULL, 10);
			if (clen < 0) {
				snprintf(err, errlen,
				         "answer without "
				         "Content-Length");
				goto out;
			}
			if ((v = bench_header(buf, headlen, "Connection")) !=
			        NULL &&
			    strncasecmp(v + strspn(v, " \t"), "close", 5) == 0)
				*closes = 1;
			want = headlen + (size_t)clen;
		}
	}
	rc = 0;
out:
	ERR_clear_error();
	return rc;
}

/*
 * Returns a new HTTP request (free with free) and sets *len.  body NULL
 * makes a GET.
 */
static char *
bench_request_new(const struct bench_opts *o, const char *label, const char *op,
                  const char *auth, const char *body, int keepalive,
                  size_t *len)
{
	size_t blen = body != NULL ? strlen(body) : 0, cap;
	char path[256], *req;
	int n;

	snprintf(path, sizeof(path), "%s%s%s/%s", EST_PATH,
	         label[0] != '\0' ? "/" : "", label, op);
	cap = blen + 1024 + (auth != NULL ? strlen(auth) : 0);
	if ((req = malloc(cap)) == NULL)
		bench_die("out of memory");
	if (body == NULL)
		n = snprintf(req, cap,
		             "GET %s HTTP/1.1\r\nHost: %s:%d\r\n"
		             "User-Agent: estbench\r\nConnection: %s\r\n\r\n",
		             path, o->host, o->port,
		             keepalive ? "keep-alive" : "close");
	else
		n = snprintf(req, cap,
		             "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
		             "User-Agent: estbench\r\n%s%s%s"
		             "Content-Type: application/pkcs10\r\n"
		             "Content-Length: %zu\r\nConnection: %s\r\n\r\n%s",
		             path, o->host, o->port,
		             auth != NULL ? "Authorization: Basic " : "",
		             auth != NULL ? auth : "",
		             auth != NULL ? "\r\n" : "", blen,
		             keepalive ? "keep-alive" : "close", body);
	if (n < 0 || (size_t)n >= cap)
		bench_die("request too long");
	*len = (size_t)n;
	return req;
}

/* Returns the base64 of the credentials file's "user:password" (new). */
static char *
bench_basic(const struct bench_opts *o)
{
	char line[512], *b64;
	size_t len;

	if (o->credentials == NULL)
		return NULL;
	bench_read_line(o->credentials, line, sizeof(line));
	len = strlen(line);
	if ((b64 = malloc(len / 3 * 4 + 8)) == NULL)
		bench_die("out of memory");
	EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)line, (int)len);
	OPENSSL_cleanse(line, sizeof(line));
	return b64;
}

/* --- crypto floor -------------------------------------------------------- */

/* Which handshake the floor describes. */
struct bench_handshake {
	char version[16];
	int group_nid;  /* negotiated key exchange group */
	int full;       /* the server signed (not resumed) */
	int key_is_rsa; /* estrad's TLS key */
};

/* One timed operation of the floor. */
typedef int (*bench_op_fn)(void *arg);

/*
 * Runs fn until BENCH_FLOOR_SECONDS of thread CPU have passed, after a
 * short warm-up, and returns the CPU seconds of one call.
 */
static double
bench_time_op(bench_op_fn fn, void *arg, const char *what)
{
	double start, used;
	long n = 0;
	int i;

	for (i = 0; i < 3; i++)
		if (fn(arg) != 0)
			bench_die("crypto floor: %s failed", what);
	start = bench_thread_cpu();
	do {
		for (i = 0; i < 8; i++)
			if (fn(arg) != 0)
				bench_die("crypto floor: %s failed", what);
		n += 8;
		used = bench_thread_cpu() - start;
	} while (used < BENCH_FLOOR_SECONDS);
	return used / (double)n;
}

/* A signature with key over msg, RSA-PSS when pss is set. */
struct bench_sign_arg {
	EVP_PKEY *key;
	int pss;
	unsigned char msg[1024];
	size_t msglen;
};

static int
bench_op_sign(void *p)
{
	struct bench_sign_arg *a = p;
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *md;
	int rc = -1;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, a->key) != 1)
		goto out;
	if (a->pss &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) !=
	         1))
		goto out;
	if (EVP_DigestSign(md, sig, &siglen, a->msg, a->msglen) != 1)
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

/* The server side of an ephemeral key exchange: keygen, then derive. */
struct bench_kex_arg {
	EVP_PKEY *peer;
	int nid;
};

static int
bench_op_kex(void *p)
{
	struct bench_kex_arg *a = p;
	unsigned char secret[128];
	size_t slen = sizeof(secret);
	EVP_PKEY_CTX *dctx = NULL;
	EVP_PKEY *mine = NULL;
	int rc = -1;

	mine = a->nid == NID_X25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "X25519")
	                            : EVP_EC_gen(OBJ_nid2sn(a->nid));
	if (mine == NULL || (dctx = EVP_PKEY_CTX_new(mine, NULL)) == NULL ||
	    EVP_PKEY_derive_init(dctx) != 1 ||
	    EVP_PKEY_derive_set_peer(dctx, a->peer) != 1 ||
	    EVP_PKEY_derive(dctx, secret, &slen) != 1)
		goto out;
	rc = 0;
out:
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_free(mine);
	return rc;
}

static int
bench_op_csr_verify(void *p)
{
	X509_REQ *req = p;

	return X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) == 1 ? 0 : -1;
}

/* crypt(3) of the Basic password against the users file's hash. */
struct bench_auth_arg {
	char password[256];
	char hash[512];
	struct crypt_data *cd;
};

static int
bench_op_auth(void *p)
{
	struct bench_auth_arg *a = p;
	const char *h = crypt_r(a->password, a->hash, a->cd);

	return h != NULL && strcmp(h, a->hash) == 0 ? 0 : -1;
}

/* Names a key for the output: "RSA-2048", "EC-256". */
static void
bench_key_name(EVP_PKEY *key, const char *use, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s-%d", use,
	         EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? "RSA" : "ECDSA",
	         EVP_PKEY_get_bits(key));
}

/* Reads the hash of the user named in the credentials file from -U. */
static int
bench_auth_prepare(const struct bench_opts *o, struct bench_auth_arg *a)
{
	char cred[512], line[1024], *colon;
	size_t ulen;
	FILE *fp = NULL;
	int rc = -1;

	if (o->credentials == NULL || o->users == NULL)
		goto out;
	bench_read_line(o->credentials, cred, sizeof(cred));
	if ((colon = strchr(cred, ':')) == NULL)
		goto out;
	ulen = (size_t)(colon - cred);
	snprintf(a->password, sizeof(a->password), "%s", colon + 1);
	if ((fp = fopen(o->users, "re")) == NULL)
		goto out;
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, cred, ulen + 1) == 0) {
			snprintf(a->hash, sizeof(a->hash), "%s",
			         line + ulen + 1);
			rc = 0;
			break;
		}
	}
out:
	if (fp != NULL)
		fclose(fp);
	return rc;
}

/*
 * Measures the CPU cost of every public-key operation one enrollment needs
 * on the keys estrad uses, single-threaded and in-process.  hs says which
 * handshake happened (NULL: keep-alive, no handshake per enrollment).
 */
static void
bench_floor_measure(const struct bench_opts *o,
                    const struct bench_handshake *hs, X509_REQ *csr,
                    struct bench_floor *f)
{
	struct bench_sign_arg sign;
	struct bench_kex_arg kex = {NULL, 0};
	struct bench_auth_arg auth;
	EVP_PKEY *tls_key = NULL, *ca_key = NULL;

	memset(f, 0, sizeof(*f));
	memset(&sign, 0, sizeof(sign));
	memset(&auth, 0, sizeof(auth));
	if (o->ca_key == NULL || o->tls_key == NULL)
		bench_die("the crypto floor needs --tls-key and --ca-key");
	tls_key = bench_read_key(o->tls_key);
	ca_key = bench_read_key(o->ca_key);
	if (hs != NULL && hs->full) {
		/* TLS 1.3 CertificateVerify signs 64 spaces, a context
		 * string and the transcript hash: 130 bytes. */
		sign.key = tls_key;
		sign.pss = EVP_PKEY_get_base_id(tls_key) == EVP_PKEY_RSA;
		sign.msglen = 130;
		memset(sign.msg, 0x20, sign.msglen);
		f->tls_sign =
		    bench_time_op(bench_op_sign, &sign, "handshake signature");
		bench_key_name(tls_key, sign.pss ? "PSS" : "sign",
		               f->tls_sign_alg, sizeof(f->tls_sign_alg));
	}
	if (hs != NULL && hs->group_nid != NID_undef) {
		kex.nid = hs->group_nid;
		kex.peer = kex.nid == NID_X25519
		               ? EVP_PKEY_Q_keygen(NULL, NULL, "X25519")
		               : EVP_EC_gen(OBJ_nid2sn(kex.nid));
		if (kex.peer == NULL)
			bench_die("cannot make a %s key", OBJ_nid2sn(kex.nid));
		f->kex = bench_time_op(bench_op_kex, &kex, "key exchange");
		snprintf(f->kex_alg, sizeof(f->kex_alg), "%s",
		         OBJ_nid2sn(kex.nid));
		EVP_PKEY_free(kex.peer);
	}
	f->csr_verify = bench_time_op(bench_op_csr_verify, csr, "CSR verify");
	bench_key_name(X509_REQ_get0_pubkey(csr), "verify", f->csr_alg,
	               sizeof(f->csr_alg));
	/* A leaf TBSCertificate is some 600 bytes. */
	sign.key = ca_key;
	sign.pss = 0;
	sign.msglen = 600;
	memset(sign.msg, 0x5a, sign.msglen);
	f->cert_sign = bench_time_op(bench_op_sign, &sign, "certificate sign");
	bench_key_name(ca_key, "sign", f->cert_alg, sizeof(f->cert_alg));
	/* Basic auth is no public-key operation: measured apart. */
	if (bench_auth_prepare(o, &auth) == 0 &&
	    (auth.cd = calloc(1, sizeof(*auth.cd))) != NULL) {
		f->auth = bench_time_op(bench_op_auth, &auth, "crypt(3)");
		free(auth.cd);
	}
	OPENSSL_cleanse(auth.password, sizeof(auth.password));
	EVP_PKEY_free(tls_key);
	EVP_PKEY_free(ca_key);
}

static double
bench_floor_total(const struct bench_floor *f)
{
	return f->tls_sign + f->kex + f->csr_verify + f->cert_sign +
	       f->client_verify;
}

/*
 * Makes one connection the way the run will (full or resumed) and reports
 * what was negotiated, for the floor.
 */
static void
bench_handshake_probe(const struct bench_opts *o, SSL_CTX *ctx,
                      struct bench_handshake *hs)
{
	struct bench_conn c;
	SSL_SESSION *sess = NULL;
	char err[256], *req;
	size_t len;
	int status, closes, round;

	memset(hs, 0, sizeof(*hs));
	req = bench_request_new(o, "", "cacerts", NULL, NULL, 0, &len);
	/* Resumption needs a session from a first connection. */
	for (round = 0; round < (o->mode == BENCH_RESUME ? 2 : 1); round++) {
		if (bench_connect(o, ctx, sess, &c, err, sizeof(err)) != 0)
			bench_die("%s", err);
		if (bench_exchange(&c, req, len, &status, &closes, err,
		                   sizeof(err)) != 0)
			bench_die("GET cacerts: %s", err);
		SSL_SESSION_free(sess);
		sess = SSL_get1_session(c.ssl);
		snprintf(hs->version, sizeof(hs->version), "%s",
		         SSL_get_version(c.ssl));
		hs->group_nid = SSL_get_negotiated_group(c.ssl);
		hs->full = !SSL_session_reused(c.ssl);
		bench_close(&c);
	}
	/* OpenSSL 3.0 may name groups by TLS id with a flag bit. */
	if (hs->group_nid & TLSEXT_nid_unknown)
		hs->group_nid = NID_undef;
	SSL_SESSION_free(sess);
	free(req);
}

/* --- the /cacerts probe -------------------------------------------------- */

static void *
bench_probe_main(void *arg)
{
	struct bench_probe *p = arg;
	struct bench_conn c;
	struct timespec pause = {0, BENCH_PROBE_INTERVAL_MS * 1000000L};
	char *req;
	size_t len;
	double t0;
	int status, closes;

	int open = 0;

	req = bench_request_new(p->o, "", "cacerts", NULL, NULL, p->keepalive,
	                        &len);
	/* A kept-alive probe connects before its clock starts. */
	if (p->keepalive &&
	    bench_connect(p->o, p->ctx, NULL, &c, p->err, sizeof(p->err)) == 0)
		open = 1;
	while (!atomic_load(&p->stop)) {
		t0 = bench_now();
		if (!open && bench_connect(p->o, p->ctx, NULL, &c, p->err,
		                           sizeof(p->err)) != 0) {
			p->failed++;
			nanosleep(&pause, NULL);
			continue;
		}
		open = 1;
		closes = 1;
		if (bench_exchange(&c, req, len, &status, &closes, p->err,
		                   sizeof(p->err)) != 0 ||
		    status != 200) {
			p->failed++;
			closes = 1;
		} else
			bench_lat_add(&p->lat, (bench_now() - t0) * 1000);
		if (!p->keepalive || closes) {
			bench_close(&c);
			open = 0;
		}
		nanosleep(&pause, NULL);
	}
	if (open)
		bench_close(&c);
	free(req);
	return NULL;
}

static void
bench_probe_start(struct bench_probe *p, const struct bench_opts *o,
                  SSL_CTX *ctx, int keepalive)
{
	memset(p, 0, sizeof(*p));
	p->o = o;
	p->ctx = ctx;
	p->keepalive = keepalive;
	atomic_store(&p->stop, 0);
	if (pthread_create(&p->thread, NULL, bench_probe_main, p) != 0)
		bench_die("cannot start the probe thread");
}

static void
bench_probe_stop(struct bench_probe *p)
{
	atomic_store(&p->stop, 1);
	pthread_join(p->thread, NULL);
}

/* A JSON object of the probe's figures. */
static json_t *
bench_probe_json(struct bench_probe *p, double *p99)
{
	double q50 = bench_quantile(&p->lat, 0.50);
	double q99 = bench_quantile(&p->lat, 0.99);
	double max = bench_quantile(&p->lat, 1.0);

	*p99 = q99;
	return json_pack("{s:I,s:I,s:f,s:f,s:f,s:s}", "requests",
	                 (json_int_t)p->lat.n, "failed", (json_int_t)p->failed,
	                 "p50_ms", q50, "p99_ms", q99, "max_ms", max, "kind",
	                 p->keepalive ? "GET cacerts, one kept-alive connection"
	                              : "GET cacerts, new TLS connection each");
}

/* --- enroll -------------------------------------------------------------- */

/*
 * Gets the client ready before the clock: a resumable session (resume) or
 * an open connection (keepalive), both from one GET /cacerts.
 */
static int
bench_client_prepare(struct bench_client *cl, struct bench_conn *c,
                     SSL_SESSION **sess)
{
	const struct bench_opts *o = cl->run->o;
	char *req = NULL;
	size_t len;
	int status, closes, rc = -1;

	if (o->mode == BENCH_FULL) {
		rc = 0;
		goto out;
	}
	req = bench_request_new(o, "", "cacerts", NULL, NULL, 1, &len);
	if (bench_connect(o, cl->run->ctx, NULL, c, cl->err, sizeof(cl->err)) !=
	        0 ||
	    bench_exchange(c, req, len, &status, &closes, cl->err,
	                   sizeof(cl->err)) != 0)
		goto out;
	if (o->mode == BENCH_RESUME) {
		*sess = SSL_get1_session(c->ssl);
		bench_close(c);
	}
	rc = 0;
out:
	free(req);
	return rc;
}

static void *
bench_client_main(void *arg)
{
	struct bench_client *cl = arg;
	struct bench_run *run = cl->run;
	const struct bench_opts *o = run->o;
	struct bench_conn c = {-1, NULL};
	SSL_SESSION *sess = NULL;
	double t0;
	long i;
	int status, closes;

	cl->prepared = bench_client_prepare(cl, &c, &sess);
	pthread_barrier_wait(&run->ready);
	pthread_barrier_wait(&run->go);
	while (cl->prepared == 0 && !atomic_load(&run->stop)) {
		if ((i = atomic_fetch_add(&run->next, 1)) >= o->count)
			break;
		t0 = bench_now();
		if (t0 >= run->deadline) {
			atomic_store(&run->stop, 1);
			break;
		}
		if (c.ssl == NULL) {
			if (bench_connect(o, run->ctx,
			                  o->mode == BENCH_RESUME ? sess : NULL,
			                  &c, cl->err, sizeof(cl->err)) != 0) {
				atomic_fetch_add(&run->failed, 1);
				continue;
			}
			atomic_fetch_add(&run->connects, 1);
			if (SSL_session_reused(c.ssl))
				atomic_fetch_add(&run->resumed, 1);
		}
		if (bench_exchange(&c, run->requests[i % run->nrequests],
		                   run->reqlens[i % run->nrequests], &status,
		                   &closes, cl->err, sizeof(cl->err)) != 0) {
			atomic_fetch_add(&run->failed, 1);
			bench_close(&c);
			continue;
		}
		if (status == 200) {
			atomic_fetch_add(&run->ok, 1);
			bench_lat_add(&cl->lat, (bench_now() - t0) * 1000);
		} else {
			atomic_fetch_add(&run->failed, 1);
			atomic_store(&run->status_other, status);
		}
		if (o->mode != BENCH_KEEPALIVE || closes) {
			if (o->mode == BENCH_RESUME) {
				/* TLS 1.3: the newest ticket resumes next. */
				SSL_SESSION_free(sess);
				sess = SSL_get1_session(c.ssl);
			}
			bench_close(&c);
		}
	}
	bench_close(&c);
	SSL_SESSION_free(sess);
	return NULL;
}

static const char *
bench_mode_name(enum bench_mode mode)
{
	switch (mode) {
	case BENCH_RESUME:
		return "resume";
	case BENCH_KEEPALIVE:
		return "keepalive";
	default:
		return "full";
	}
}

/* Appends obj as one line to path. */
static void
bench_json_append(const char *path, json_t *obj)
{
	char *text;
	FILE *fp;

	if (path == NULL)
		return;
	if ((text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER |
	                                JSON_REAL_PRECISION(6))) == NULL)
		bench_die("cannot format JSON");
	if ((fp = fopen(path, "ae")) == NULL)
		bench_die("cannot append to %s: %s", path, strerror(errno));
	fprintf(fp, "%s\n", text);
	fclose(fp);
	free(text);
}

static json_t *
bench_floor_json(const struct bench_floor *f)
{
	return json_pack(
	    "{s:f,s:s,s:f,s:s,s:f,s:s,s:f,s:s,s:f,s:f,s:f}", "tls_sign_ms",
	    f->tls_sign * 1000, "tls_sign_alg", f->tls_sign_alg, "kex_ms",
	    f->kex * 1000, "kex_alg", f->kex_alg, "csr_verify_ms",
	    f->csr_verify * 1000, "csr_alg", f->csr_alg, "cert_sign_ms",
	    f->cert_sign * 1000, "cert_alg", f->cert_alg, "client_verify_ms",
	    f->client_verify * 1000, "total_ms", bench_floor_total(f) * 1000,
	    "auth_crypt_ms", f->auth * 1000);
}

static int
bench_enroll(const struct bench_opts *o)
{
	struct bench_run run;
	struct bench_client *clients = NULL;
	struct bench_probe probe, probe_ka;
	struct bench_handshake hs;
	struct bench_floor fl;
	struct bench_proc before, after;
	struct bench_lat all = {NULL, 0, 0};
	struct rusage ru0, ru1;
	char **csrs, *auth;
	X509_REQ *csr;
	size_t ncsrs, i;
	double t0, wall, cpu, per, ftotal, p50, p99, max, probe_p99 = 0;
	double client_cpu;
	json_t *obj;
	long ok;
	int k;

	if (o->csrs == NULL)
		bench_die("enroll needs --csrs FILE");
	memset(&run, 0, sizeof(run));
	run.o = o;
	run.ctx = bench_tls_context(o);
	/* Everything below is prepared before the clock starts. */
	csrs = bench_read_csrs(o->csrs, &ncsrs);
	auth = bench_basic(o);
	run.nrequests = ncsrs;
	if ((run.requests = calloc(ncsrs, sizeof(char *))) == NULL ||
	    (run.reqlens = calloc(ncsrs, sizeof(size_t))) == NULL)
		bench_die("out of memory");
	for (i = 0; i < ncsrs; i++)
		run.requests[i] = bench_request_new(
		    o, o->label, "simpleenroll", auth, csrs[i],
		    o->mode == BENCH_KEEPALIVE, &run.reqlens[i]);
	csr = bench_csr_decode(csrs[0]);
	bench_handshake_probe(o, run.ctx, &hs);
	bench_floor_measure(o, o->mode == BENCH_KEEPALIVE ? NULL : &hs, csr,
	                    &fl);
	if ((clients = calloc((size_t)o->concurrency, sizeof(*clients))) ==
	    NULL)
		bench_die("out of memory");
	if (pthread_barrier_init(&run.ready, NULL,
	                         (unsigned)o->concurrency + 1) != 0 ||
	    pthread_barrier_init(&run.go, NULL, (unsigned)o->concurrency + 1) !=
	        0)
		bench_die("cannot make the barriers");
	for (k = 0; k < o->concurrency; k++) {
		clients[k].run = &run;
		if (pthread_create(&clients[k].thread, NULL, bench_client_main,
		                   &clients[k]) != 0)
			bench_die("cannot start client %d", k);
	}
	pthread_barrier_wait(&run.ready);
	for (k = 0; k < o->concurrency; k++)
		if (clients[k].prepared != 0)
			bench_die("client %d: %s", k, clients[k].err);
	bench_proc_reset_peak(o->pid);
	bench_proc_read(o->pid, &before);
	getrusage(RUSAGE_SELF, &ru0);
	if (o->probe) {
		bench_probe_start(&probe, o, run.ctx, 0);
		bench_probe_start(&probe_ka, o, run.ctx, 1);
	}
	t0 = bench_now();
	run.deadline = t0 + o->duration;
	pthread_barrier_wait(&run.go);
	for (k = 0; k < o->concurrency; k++)
		pthread_join(clients[k].thread, NULL);
	wall = bench_now() - t0;
	if (o->probe) {
		bench_probe_stop(&probe);
		bench_probe_stop(&probe_ka);
	}
	getrusage(RUSAGE_SELF, &ru1);
	bench_proc_read(o->pid, &after);
	client_cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
	                      ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
	             (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
	                      ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) /
	                 1e6;

	for (k = 0; k < o->concurrency; k++)
		bench_lat_merge(&all, &clients[k].lat);
	ok = atomic_load(&run.ok);
	p50 = bench_quantile(&all, 0.50);
	p99 = bench_quantile(&all, 0.99);
	max = bench_quantile(&all, 1.0);
	cpu = after.cpu_s - before.cpu_s;
	per = ok > 0 ? cpu / (double)ok : 0;
	ftotal = bench_floor_total(&fl);

	printf("%-22s %-9s %-8s c=%-3d %7.1f enroll/s  p50 %7.2f  p99 %7.2f  "
	       "max %7.2f ms  cpu %6.3f ms/enroll  floor %6.3f ms  "
	       "x%.2f (eff %.2f)  rss %ld MiB  ok %ld fail %ld%s\n",
	       o->name, bench_mode_name(o->mode), o->keys, o->concurrency,
	       wall > 0 ? (double)ok / wall : 0, p50, p99, max, per * 1000,
	       ftotal * 1000, ftotal > 0 ? per / ftotal : 0,
	       per > 0 ? ftotal / per : 0, after.hwm_kib / 1024, ok,
	       atomic_load(&run.failed), ok == 0 ? "  (no enrollment!)" : "");
	for (k = 0; k < o->concurrency; k++)
		if (clients[k].err[0] != '\0') {
			printf("    first client error: %s\n", clients[k].err);
			break;
		}
	if (atomic_load(&run.status_other) != 0)
		printf("    unexpected HTTP status %ld\n",
		       atomic_load(&run.status_other));
	obj = json_pack(
	    "{s:s,s:s,s:s,s:i,s:s,s:I,s:I,s:I,s:I,s:f,s:f,s:{s:f,s:f,s:f},"
	    "s:f,s:f,s:f,s:f,s:f,s:I,s:I,s:I,s:{s:s,s:s,s:b},s:o,s:f}",
	    "name", o->name, "mode", bench_mode_name(o->mode), "keys", o->keys,
	    "concurrency", o->concurrency, "label", o->label, "enrollments",
	    (json_int_t)ok, "failed", (json_int_t)atomic_load(&run.failed),
	    "connections", (json_int_t)atomic_load(&run.connects), "resumed",
	    (json_int_t)atomic_load(&run.resumed), "wall_s", wall,
	    "enroll_per_s", wall > 0 ? (double)ok / wall : 0.0, "latency_ms",
	    "p50", p50, "p99", p99, "max", max, "estrad_cpu_s", cpu,
	    "cpu_per_enroll_ms", per * 1000, "floor_ms", ftotal * 1000,
	    "efficiency", per > 0 ? ftotal / per : 0.0, "x_floor",
	    ftotal > 0 ? per / ftotal : 0.0, "rss_peak_kib",
	    (json_int_t)after.hwm_kib, "rss_end_kib", (json_int_t)after.rss_kib,
	    "estrad_threads", (json_int_t)after.threads, "tls", "version",
	    hs.version, "group",
	    hs.group_nid != NID_undef ? OBJ_nid2sn(hs.group_nid) : "-",
	    "server_signed", o->mode != BENCH_KEEPALIVE && hs.full, "floor",
	    bench_floor_json(&fl), "client_cpu_s", client_cpu);
	if (obj == NULL)
		bench_die("cannot build the JSON record");
	if (o->probe) {
		json_object_set_new(obj, "cacerts_probe",
		                    bench_probe_json(&probe, &probe_p99));
		printf(
		    "    /cacerts meanwhile, new connection each: %zu probes, "
		    "p50 %.2f p99 %.2f max %.2f ms, %ld failed; total %.3f "
		    "s\n",
		    probe.lat.n, bench_quantile(&probe.lat, 0.5), probe_p99,
		    bench_quantile(&probe.lat, 1.0), probe.failed, wall);
		free(probe.lat.ms);
		json_object_set_new(obj, "cacerts_probe_keepalive",
		                    bench_probe_json(&probe_ka, &probe_p99));
		printf("    /cacerts meanwhile, kept-alive connection: %zu "
		       "probes, p50 %.2f p99 %.2f max %.2f ms, %ld failed\n",
		       probe_ka.lat.n, bench_quantile(&probe_ka.lat, 0.5),
		       probe_p99, bench_quantile(&probe_ka.lat, 1.0),
		       probe_ka.failed);
		free(probe_ka.lat.ms);
	}
	bench_json_append(o->json, obj);
	json_decref(obj);
	fflush(stdout);

	for (k = 0; k < o->concurrency; k++)
		free(clients[k].lat.ms);
	free(clients);
	free(all.ms);
	for (i = 0; i < ncsrs; i++) {
		free(csrs[i]);
		free(run.requests[i]);
	}
	free(csrs);
	free(run.requests);
	free(run.reqlens);
	free(auth);
	X509_REQ_free(csr);
	pthread_barrier_destroy(&run.ready);
	pthread_barrier_destroy(&run.go);
	SSL_CTX_free(run.ctx);
	return ok > 0 ? 0 : 1;
}

/* --- idle connections ---------------------------------------------------- */

/* The connections one opener thread makes for the idle mode. */
struct bench_opener {
	const struct bench_opts *o;
	SSL_CTX *ctx;
	pthread_t thread;
	struct bench_conn *conns;
	long from, to;
	long opened;
	char err[256];
};

static void *
bench_opener_main(void *arg)
{
	struct bench_opener *op = arg;
	char *req;
	size_t len;
	long i;
	int status, closes;

	req = bench_request_new(op->o, "", "cacerts", NULL, NULL, 1, &len);
	for (i = op->from; i < op->to; i++) {
		if (bench_connect(op->o, op->ctx, NULL, &op->conns[i], op->err,
		                  sizeof(op->err)) != 0)
			break;
		if (bench_exchange(&op->conns[i], req, len, &status, &closes,
		                   op->err, sizeof(op->err)) != 0 ||
		    status != 200 || closes) {
			bench_close(&op->conns[i]);
			break;
		}
		op->opened++;
	}
	free(req);
	return NULL;
}

/* Counts the connections the server has not closed. */
static long
bench_idle_alive(struct bench_conn *conns, long n)
{
	char b;
	long i, alive = 0;
	ssize_t r;

	for (i = 0; i < n; i++) {
		if (conns[i].fd < 0)
			continue;
		r = recv(conns[i].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			alive++;
	}
	return alive;
}

static int
bench_idle(const struct bench_opts *o)
{
	struct bench_opener openers[BENCH_IDLE_OPENERS];
	struct bench_probe base_probe, probe;
	struct bench_proc before, after, end;
	struct bench_conn *conns;
	struct timespec settle = {1, 0};
	double t0, open_s, base_p99, p99, per_conn;
	long opened = 0, alive, i, chunk;
	json_t *obj;
	SSL_CTX *ctx;
	int k;

	if (o->conns <= 0)
		bench_die("idle needs --conns N");
	ctx = bench_tls_context(o);
	if ((conns = calloc((size_t)o->conns, sizeof(*conns))) == NULL)
		bench_die("out of memory");
	for (i = 0; i < o->conns; i++)
		conns[i].fd = -1;
	/* Baseline: /cacerts latency with no idle connection. */
	bench_probe_start(&base_probe, o, ctx, 0);
	nanosleep(&settle, NULL);
	bench_probe_stop(&base_probe);
	bench_proc_read(o->pid, &before);
	t0 = bench_now();
	chunk = (o->conns + BENCH_IDLE_OPENERS - 1) / BENCH_IDLE_OPENERS;
	for (k = 0; k < BENCH_IDLE_OPENERS; k++) {
		memset(&openers[k], 0, sizeof(openers[k]));
		openers[k].o = o;
		openers[k].ctx = ctx;
		openers[k].conns = conns;
		openers[k].from = k * chunk;
		openers[k].to =
		    (k + 1) * chunk < o->conns ? (k + 1) * chunk : o->conns;
		if (openers[k].from > openers[k].to)
			openers[k].from = openers[k].to;
		if (pthread_create(&openers[k].thread, NULL, bench_opener_main,
		                   &openers[k]) != 0)
			bench_die("cannot start opener %d", k);
	}
	for (k = 0; k < BENCH_IDLE_OPENERS; k++) {
		pthread_join(openers[k].thread, NULL);
		opened += openers[k].opened;
		if (openers[k].err[0] != '\0')
			printf("    opener %d stopped: %s\n", k,
			       openers[k].err);
	}
	open_s = bench_now() - t0;
	/* Let the server free what the handshakes used. */
	nanosleep(&settle, NULL);
	bench_proc_read(o->pid, &after);
	bench_probe_start(&probe, o, ctx, 0);
	{
		struct timespec d;

		d.tv_sec = (time_t)o->duration;
		d.tv_nsec = (long)((o->duration - (double)d.tv_sec) * 1e9);
		nanosleep(&d, NULL);
	}
	bench_probe_stop(&probe);
	alive = bench_idle_alive(conns, o->conns);
	bench_proc_read(o->pid, &end);
	per_conn = opened > 0 ? (double)(after.rss_kib - before.rss_kib) /
	                            (double)opened
	                      : 0;
	obj = json_pack(
	    "{s:s,s:s,s:s,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:f,s:o,s:o}", "name",
	    o->name, "mode", "idle", "keys", o->keys, "requested",
	    (json_int_t)o->conns, "opened", (json_int_t)opened,
	    "alive_after_probe", (json_int_t)alive, "open_s", open_s,
	    "rss_before_kib", (json_int_t)before.rss_kib, "rss_open_kib",
	    (json_int_t)after.rss_kib, "rss_peak_kib", (json_int_t)end.hwm_kib,
	    "rss_per_conn_kib", per_conn, "cacerts_probe",
	    bench_probe_json(&probe, &p99), "cacerts_probe_idle_0",
	    bench_probe_json(&base_probe, &base_p99));
	if (obj == NULL)
		bench_die("cannot build the JSON record");
	printf("%-22s idle      %-8s n=%-5ld opened %ld in %.1f s, alive %ld;"
	       " RSS %ld -> %ld KiB: %.1f KiB/conn; /cacerts p50 %.2f p99 "
	       "%.2f max %.2f ms (%zu probes; p99 %.2f ms with none open)\n",
	       o->name, o->keys, o->conns, opened, open_s, alive,
	       before.rss_kib, after.rss_kib, per_conn,
	       bench_quantile(&probe.lat, 0.5), p99,
	       bench_quantile(&probe.lat, 1.0), probe.lat.n, base_p99);
	bench_json_append(o->json, obj);
	json_decref(obj);
	fflush(stdout);
	for (i = 0; i < o->conns; i++)
		bench_close(&conns[i]);
	free(conns);
	free(probe.lat.ms);
	free(base_probe.lat.ms);
	SSL_CTX_free(ctx);
	return opened == o->conns ? 0 : 1;
}

/* --- floor --------------------------------------------------------------- */

static int
bench_floor_cmd(const struct bench_opts *o)
{
	struct bench_handshake hs;
	struct bench_floor f;
	char **csrs;
	size_t n, i;
	X509_REQ *csr;
	SSL_CTX *ctx;

	if (o->csrs == NULL)
		bench_die("floor needs --csrs FILE");
	csrs = bench_read_csrs(o->csrs, &n);
	csr = bench_csr_decode(csrs[0]);
	ctx = bench_tls_context(o);
	bench_handshake_probe(o, ctx, &hs);
	bench_floor_measure(o, &hs, csr, &f);
	printf("%s %s: %s %.3f ms, %s %.3f ms, %s %.3f ms, %s %.3f ms; "
	       "floor %.3f ms (crypt %.3f ms apart)\n",
	       o->keys, hs.version, f.tls_sign_alg, f.tls_sign * 1000,
	       f.kex_alg, f.kex * 1000, f.csr_alg, f.csr_verify * 1000,
	       f.cert_alg, f.cert_sign * 1000, bench_floor_total(&f) * 1000,
	       f.auth * 1000);
	for (i = 0; i < n; i++)
		free(csrs[i]);
	free(csrs);
	X509_REQ_free(csr);
	SSL_CTX_free(ctx);
	return 0;
}

/* --- handshake ----------------------------------------------------------- */

/* Shared state of one handshake run. */
struct bench_hs_run {
	const struct bench_opts *o;
	SSL_CTX *ctx;
	char *req;
	size_t reqlen;
	double deadline;
	atomic_long next, answered, refused;
	pthread_barrier_t go;
};

/* One client thread of a handshake run. */
struct bench_hs_client {
	struct bench_hs_run *run;
	pthread_t thread;
	char err[256]; /* the first refusal's reason */
};

static void *
bench_hs_main(void *arg)
{
	struct bench_hs_client *cl = arg;
	struct bench_hs_run *run = cl->run;
	struct bench_conn c = {-1, NULL};
	char err[256] = "";
	int status, closes;

	pthread_barrier_wait(&run->go);
	while (atomic_fetch_add(&run->next, 1) < run->o->count &&
	       bench_now() < run->deadline) {
		/* TLS 1.2 refuses in SSL_connect, TLS 1.3 on the first read
		 * after it: either way the attempt was refused. */
		if (bench_connect(run->o, run->ctx, NULL, &c, err,
		                  sizeof(err)) != 0 ||
		    bench_exchange(&c, run->req, run->reqlen, &status, &closes,
		                   err, sizeof(err)) != 0 ||
		    status != 200) {
			if (c.ssl != NULL && err[0] == '\0')
				snprintf(err, sizeof(err), "HTTP %d", status);
			atomic_fetch_add(&run->refused, 1);
			if (cl->err[0] == '\0')
				snprintf(cl->err, sizeof(cl->err), "%s", err);
		} else
			atomic_fetch_add(&run->answered, 1);
		bench_close(&c);
		err[0] = '\0';
	}
	return NULL;
}

static int
bench_handshake_cmd(const struct bench_opts *o)
{
	struct bench_hs_run run;
	struct bench_hs_client *clients = NULL;
	struct bench_proc before, after;
	double t0, wall, cpu, per;
	long attempts;
	json_t *obj;
	int k;

	memset(&run, 0, sizeof(run));
	run.o = o;
	run.ctx = bench_tls_context(o);
	/* A hostile client has no security level: small keys pass too. */
	SSL_CTX_set_security_level(run.ctx, 0);
	if (o->client_cert != NULL &&
	    (SSL_CTX_use_certificate_chain_file(run.ctx, o->client_cert) != 1 ||
	     SSL_CTX_use_PrivateKey_file(run.ctx,
	                                 o->client_key != NULL ? o->client_key
	                                                       : o->client_cert,
	                                 SSL_FILETYPE_PEM) != 1))
		bench_die("cannot use %s as the client certificate",
		          o->client_cert);
	run.req =
	    bench_request_new(o, "", "cacerts", NULL, NULL, 0, &run.reqlen);
	if ((clients = calloc((size_t)o->concurrency, sizeof(*clients))) ==
	        NULL ||
	    pthread_barrier_init(&run.go, NULL, (unsigned)o->concurrency + 1) !=
	        0)
		bench_die("out of memory");
	for (k = 0; k < o->concurrency; k++) {
		clients[k].run = &run;
		if (pthread_create(&clients[k].thread, NULL, bench_hs_main,
		                   &clients[k]) != 0)
			bench_die("cannot start client %d", k);
	}
	bench_proc_read(o->pid, &before);
	t0 = bench_now();
	run.deadline = t0 + o->duration;
	pthread_barrier_wait(&run.go);
	for (k = 0; k < o->concurrency; k++)
		pthread_join(clients[k].thread, NULL);
	wall = bench_now() - t0;
	bench_proc_read(o->pid, &after);
	attempts = atomic_load(&run.answered) + atomic_load(&run.refused);
	cpu = after.cpu_s - before.cpu_s;
	per = attempts > 0 ? cpu / (double)attempts : 0;
	printf("%-22s handshake c=%-3d %7.1f attempts/s  answered %ld refused "
	       "%ld  cpu %7.3f ms/attempt\n",
	       o->name, o->concurrency, wall > 0 ? (double)attempts / wall : 0,
	       atomic_load(&run.answered), atomic_load(&run.refused),
	       per * 1000);
	for (k = 0; k < o->concurrency; k++)
		if (clients[k].err[0] != '\0') {
			printf("    first refusal: %s\n", clients[k].err);
			break;
		}
	obj = json_pack(
	    "{s:s,s:s,s:s,s:i,s:I,s:I,s:f,s:f,s:f,s:s}", "name", o->name,
	    "mode", "handshake", "keys", o->keys, "concurrency", o->concurrency,
	    "answered", (json_int_t)atomic_load(&run.answered), "refused",
	    (json_int_t)atomic_load(&run.refused), "wall_s", wall,
	    "estrad_cpu_s", cpu, "cpu_per_attempt_ms", per * 1000,
	    "client_cert", o->client_cert != NULL ? o->client_cert : "-");
	if (obj == NULL)
		bench_die("cannot build the JSON record");
	bench_json_append(o->json, obj);
	json_decref(obj);
	fflush(stdout);
	free(clients);
	free(run.req);
	pthread_barrier_destroy(&run.go);
	SSL_CTX_free(run.ctx);
	return attempts > 0 ? 0 : 1;
}

/* --- main ---------------------------------------------------------------- */

static void
bench_usage(void)
{
	fputs("usage: estbench gencsr -k rsa|ec -n COUNT -o FILE\n"
	      "       estbench enroll|idle|floor|handshake -p PORT [options]\n"
	      "  -H, --host ADDR        server IPv4 address (127.0.0.1)\n"
	      "  -p, --port PORT        server port\n"
	      "  -a, --cafile FILE      trust anchors for the server chain\n"
	      "  -r, --csrs FILE        base64 CSRs, one a line (gencsr)\n"
	      "  -l, --label NAME       CA label (default label)\n"
	      "  -u, --credentials FILE user:password for Basic\n"
	      "  -U, --users FILE       estrad's htpasswd (crypt cost)\n"
	      "  -T, --tls-key FILE     estrad's TLS key (floor)\n"
	      "  -K, --ca-key FILE      issuing CA key (floor)\n"
	      "  -m, --mode MODE        full, resume or keepalive\n"
	      "  -c, --concurrency N    clients, one thread each\n"
	      "  -n, --count N          most enrollments (or CSRs)\n"
	      "  -d, --duration SEC     most seconds of load\n"
	      "  -P, --pid PID          estrad's pid, for /proc figures\n"
	      "  -C, --conns N          idle: connections to hold\n"
	      "  -b, --probe            enroll: probe /cacerts meanwhile\n"
	      "  -t, --timeout SEC      socket read/write timeout (30)\n"
	      "  -e, --client-cert FILE handshake: client certificate list\n"
	      "  -y, --client-key FILE  handshake: its leaf's key\n"
	      "  -j, --json FILE        append the figures as a JSON line\n"
	      "  -N, --name NAME        run name;  -S, --keys NAME  key set\n",
	      stderr);
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'},
	    {"cafile", required_argument, NULL, 'a'},
	    {"csrs", required_argument, NULL, 'r'},
	    {"label", required_argument, NULL, 'l'},
	    {"credentials", required_argument, NULL, 'u'},
	    {"users", required_argument, NULL, 'U'},
	    {"tls-key", required_argument, NULL, 'T'},
	    {"ca-key", required_argument, NULL, 'K'},
	    {"mode", required_argument, NULL, 'm'},
	    {"concurrency", required_argument, NULL, 'c'},
	    {"count", required_argument, NULL, 'n'},
	    {"duration", required_argument, NULL, 'd'},
	    {"pid", required_argument, NULL, 'P'},
	    {"conns", required_argument, NULL, 'C'},
	    {"probe", no_argument, NULL, 'b'},
	    {"json", required_argument, NULL, 'j'},
	    {"name", required_argument, NULL, 'N'},
	    {"keys", required_argument, NULL, 'S'},
	    {"keytype", required_argument, NULL, 'k'},
	    {"out", required_argument, NULL, 'o'},
	    {"timeout", required_argument, NULL, 't'},
	    {"client-cert", required_argument, NULL, 'e'},
	    {"client-key", required_argument, NULL, 'y'},
	    {NULL, 0, NULL, 0},
	};
	struct bench_opts o;
	struct rlimit rl;
	const char *cmd;
	char *end;
	int opt;

	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.label = "";
	o.name = "run";
	o.keys = "-";
	o.mode = BENCH_FULL;
	o.concurrency = 1;
	o.count = 1000;
	o.duration = 10;
	o.timeout = 30;
	if (argc < 2)
		bench_usage();
	cmd = argv[1];
	optind = 2;
	while ((opt = getopt_long(
	            argc, argv,
	            "H:p:a:r:l:u:U:T:K:m:c:n:d:P:C:bj:N:S:k:o:t:e:y:", options,
	            NULL)) != -1) {
		switch (opt) {
		case 'H':
			o.host = optarg;
			break;
		case 'p':
			o.port = (int)bench_long("--port", optarg, 1, 65535);
			break;
		case 'a':
			o.cafile = optarg;
			break;
		case 'r':
			o.csrs = optarg;
			break;
		case 'l':
			o.label = optarg;
			break;
		case 'u':
			o.credentials = optarg;
			break;
		case 'U':
			o.users = optarg;
			break;
		case 'T':
			o.tls_key = optarg;
			break;
		case 'K':
			o.ca_key = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "full") == 0)
				o.mode = BENCH_FULL;
			else if (strcmp(optarg, "resume") == 0)
				o.mode = BENCH_RESUME;
			else if (strcmp(optarg, "keepalive") == 0)
				o.mode = BENCH_KEEPALIVE;
			else
				bench_die("--mode: full, resume or keepalive, "
				          "not \"%s\"",
				          optarg);
			break;
		case 'c':
			o.concurrency =
			    (int)bench_long("--concurrency", optarg, 1, 4096);
			break;
		case 'n':
			o.count = bench_long("--count", optarg, 1, 100000000);
			break;
		case 'd':
			o.duration = strtod(optarg, &end);
			if (*end != '\0' || o.duration <= 0)
				bench_die("--duration: \"%s\" is no positive "
				          "number of seconds",
				          optarg);
			break;
		case 'P':
			o.pid = bench_long("--pid", optarg, 1, INT_MAX);
			break;
		case 'C':
			o.conns = bench_long("--conns", optarg, 1, 1000000);
			break;
		case 'b':
			o.probe = 1;
			break;
		case 'j':
			o.json = optarg;
			break;
		case 'N':
			o.name = optarg;
			break;
		case 'S':
			o.keys = optarg;
			break;
		case 'k':
			o.keytype = optarg;
			break;
		case 'o':
			o.out = optarg;
			break;
		case 't':
			o.timeout =
			    (int)bench_long("--timeout", optarg, 1, 3600);
			break;
		case 'e':
			o.client_cert = optarg;
			break;
		case 'y':
			o.client_key = optarg;
			break;
		default:
			bench_usage();
		}
	}
	if (optind != argc)
		bench_usage();
	/* Thousands of connections need as many descriptors. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(cmd, "gencsr") == 0)
		return bench_gencsr(&o);
	if (o.port == 0)
		bench_die("%s needs --port", cmd);
	if (strcmp(cmd, "enroll") == 0)
		return bench_enroll(&o);
	if (strcmp(cmd, "idle") == 0)
		return bench_idle(&o);
	if (strcmp(cmd, "floor") == 0)
		return bench_floor_cmd(&o);
	if (strcmp(cmd, "handshake") == 0)
		return bench_handshake_cmd(&o);
	bench_usage();
	return 2;
}
