/*
 * limits.c: per-client and per-worker connection limits, the handshake
 * and request deadlines, and the accounting of connections closed for
 * cause (see limits.h).
 *
 * The record of a connection lives in the SSL's ex_data and dies with it:
 * OpenSSL's free callback is the one place that sees every connection
 * end, whoever ends it (evhttp's timeout, the peer, a handshake failure,
 * a deadline).  The peer address is read at the first TLS record, when
 * the socket is known (evhttp sets it on the bufferevent after the bevcb
 * returns).
 *
 * Why deadlines and not only evhttp's timeout: evhttp's timeout is one of
 * inactivity, so a client sending one byte every few seconds keeps a
 * connection (and a descriptor, and memory) forever.  A deadline runs
 * from the start of a phase however the bytes come.
 *
 * Why one deadline for head and body (limits.request_timeout) rather than
 * one each: evhttp 2.1 gives a server no hook at the end of a request's
 * head.  Its requests are made inside evhttp (the request callback sees a
 * request only once the body has arrived), so evhttp_request_set_header_cb
 * cannot be set on them; evhttp_set_newreqcb, which would allow it, came
 * with libevent 2.2.  The records seen here are encrypted, so the end of
 * the head cannot be seen below evhttp either.
 *
 * Where a request starts: at its first byte after the handshake, seen by
 * a read callback on the socket BIO (installed at the first record), so
 * that even a record header trickled byte by byte starts the deadline;
 * should the BIO be taken, at the header of its first application-data
 * record.  Until the record's type is known the start is tentative: in
 * TLS 1.2 the header tells, in TLS 1.3 (where every record says data
 * outside) the inner type, known once the record is whole; an alert or a
 * KeyUpdate undoes the start.  Where it ends: at
 * est_limits_request_arrived() from est/conn.c.  Bytes that come in while
 * a request is being answered (a pipelined request) start the next
 * deadline only when the answer begins to go out, so that a slow CA does
 * not eat the next request's time.
 *
 * Threads: a connection's records, its timer and est/conn.c's call all
 * run on its worker's thread, so the phase needs no lock; the tables and
 * windows shared by the workers are under lim_lock.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "core/log.h"
#include "core/loop.h"
#include "est/head.h"
#include "est/limits.h"
#include "ra/log.h"

#define LIM_COMPONENT "est.limits"

/* Buckets of the client-address table; workers at most (config). */
#define LIM_BUCKETS 1024
#define LIM_WORKERS 64

/* Why a connection was closed; each has its own counter and window. */
enum lim_cause {
	LIM_HANDSHAKE,      /* silent for limits.timeout mid-handshake */
	LIM_INCOMPLETE,     /* silent for limits.timeout mid-request */
	LIM_IDLE,           /* keep-alive connection idle */
	LIM_PER_CLIENT,     /* over limits.max_conns_per_client */
	LIM_PER_WORKER,     /* over limits.max_conns_per_worker */
	LIM_HANDSHAKE_LATE, /* past limits.handshake_timeout */
	LIM_REQUEST_LATE,   /* past limits.request_timeout */
	LIM_NOFILE,         /* accept(2): out of descriptors */
	LIM_ACCEPT,         /* accept(2) failed for another reason */
	LIM_CAUSE__MAX
};

/* The first three texts predate the deadlines; they stay as they were
 * for the operators who grep for them. */
static const char *const lim_cause_text[LIM_CAUSE__MAX] = {
    "TLS handshake not completed within limits.timeout",
    "request head or body not completed within limits.timeout",
    "keep-alive connection idle for limits.timeout",
    "over limits.max_conns_per_client",
    "over limits.max_conns_per_worker",
    "TLS handshake not completed within limits.handshake_timeout",
    "request not completed within limits.request_timeout",
    "out of descriptors at accept",
    "accept failed",
};

static const char *const lim_cause_hint[LIM_CAUSE__MAX] = {
    "slow or stalled clients; raise limits.timeout only if legitimate "
    "clients are this slow",
    "slow or stalled clients; raise limits.timeout only if legitimate "
    "clients are this slow",
    NULL,
    "one address opens too many connections; raise "
    "limits.max_conns_per_client for a NAT or proxy in front of clients",
    "raise limits.max_conns_per_worker or add workers",
    "slow or stalled clients; raise limits.handshake_timeout only if "
    "legitimate clients need this long to connect",
    "slow or stalled clients; raise limits.request_timeout only if "
    "legitimate clients need this long to send a request",
    "accepting pauses " EST_LIMITS_PAUSE_TEXT " each time; raise the "
    "descriptor limit (LimitNOFILE=) or lower limits.max_conns_per_worker",
    "accepting pauses " EST_LIMITS_PAUSE_TEXT " each time; check the "
    "system's memory and socket buffers",
};

/* The level of each cause's lines: a client refused, or the operator's
 * business. */
static const enum core_log_level lim_cause_level[LIM_CAUSE__MAX] = {
    CORE_LOG_NOTICE, CORE_LOG_NOTICE, CORE_LOG_NOTICE,
    CORE_LOG_NOTICE, CORE_LOG_NOTICE, CORE_LOG_NOTICE,
    CORE_LOG_NOTICE, CORE_LOG_WARN,   CORE_LOG_ERROR,
};

/* The limits a connection is held to, copied when it is accepted. */
struct lim_conf {
	unsigned int timeout;           /* limits.timeout, seconds */
	unsigned int handshake_timeout; /* limits.handshake_timeout */
	unsigned int request_timeout;   /* limits.request_timeout */
	unsigned int max_per_client;    /* 0: no limit */
	unsigned int max_per_worker;    /* 0: no limit */
};

/* Where a connection is; the deadline timer runs in the first two. */
enum lim_phase {
	LIM_PH_HANDSHAKE, /* accepted, TLS handshake running */
	LIM_PH_REQUEST,   /* a request's first record is in, not all of it */
	LIM_PH_IDLE,      /* between requests: evhttp's timeout only */
	LIM_PH_ANSWERING, /* a whole request is in; no answer out yet */
};

/* A peer address as the table keeps it. */
struct lim_addr {
	int family;
	unsigned char bytes[16];
};

/* One address with open connections. */
struct lim_client {
	struct lim_addr addr;
	unsigned int count;
	struct lim_client *next;
};

/* The record attached to one connection's SSL; owned by its ex_data. */
struct lim_conn {
	struct event_base *base;
	SSL *ssl; /* the owner; the timer never outlives it */
	struct lim_conf conf;
	double accepted, last_in, last_out; /* monotonic seconds */
	double app_in, app_out;             /* last application data */
	struct lim_addr addr;
	int counted;     /* the limits were applied (at the accept) */
	int have_addr;   /* counted in the client table */
	int seen_record; /* the first record was looked at */
	int refused;     /* shut down for a limit or a deadline */
	char client[64]; /* "address:port" for the log, "-" until known */
	/* The deadline of the phase, on base; owned, NULL when out of
	 * memory (the connection then has evhttp's timeout only). */
	struct event *deadline;
	/* The socket BIO whose reads lim_bio_cb() watches, borrowed from
	 * ssl; NULL when it is not watched. */
	BIO *bio;
	enum lim_phase phase;
	/* Bytes started a request (or, answering, the next one) and their
	 * record's type is not known yet. */
	int tentative;
	/* A record of the next request came in while answering. */
	int next_pending;
	/* Runs once, right after the accept, before the loop reads from
	 * the socket: the limits apply then (lim_accepted()); owned. */
	struct event *accept_ev;
	/* The connection's plaintext input (borrowed from its bufferevent,
	 * which outlives the SSL), the callback that scans each request
	 * head in it (owned by input), and the bytes it has had in all. */
	struct evbuffer *input;
	struct evbuffer_cb_entry *input_cb;
	uint64_t in_total;
	struct est_head head;
	/* Why the request handed to est/conn.c last is refused, or "". */
	char refusal[EST_HEAD_WHY_MAX];
};

/* The counter of one cause: a line when a window opens, a summary line
 * with the count when it closes. */
struct lim_window {
	int open;
	unsigned long count; /* in the current window, after the first */
	unsigned long total; /* since start */
	char detail[96];     /* " (30 s)", " (24: Too many open files)" */
	char last_client[64];
	struct event_base *base; /* the loop the summary runs on */
};

static pthread_mutex_t lim_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lim_client *lim_clients[LIM_BUCKETS];
static struct {
	struct event_base *base;
	unsigned int count;
} lim_workers[LIM_WORKERS];
static struct lim_window lim_windows[LIM_CAUSE__MAX];
static int lim_index = -1;
/* The spare descriptor (est_limits_accept_failed()), -1 while not held;
 * under lim_lock. */
static int lim_spare = -1;

static double
lim_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned int
lim_hash(const struct lim_addr *a)
{
	unsigned int h = 2166136261u;
	size_t i, n = a->family == AF_INET6 ? 16 : 4;

	for (i = 0; i < n; i++)
		h = (h ^ a->bytes[i]) * 16777619u;
	return h % LIM_BUCKETS;
}

/* Adds delta to the connection count of a's entry; lim_lock held.
 * Returns the new count (0 when the entry went away). */
static unsigned int
lim_client_add(const struct lim_addr *a, int delta)
{
	struct lim_client **pp, *c;

	for (pp = &lim_clients[lim_hash(a)]; (c = *pp) != NULL; pp = &c->next)
		if (memcmp(&c->addr, a, sizeof(*a)) == 0)
			break;
	if (c == NULL) {
		if (delta < 0 || (c = calloc(1, sizeof(*c))) == NULL)
			return 0;
		c->addr = *a;
		c->next = NULL;
		*pp = c;
	}
	if (delta < 0 && c->count <= 1) {
		*pp = c->next;
		free(c);
		return 0;
	}
	c->count = delta < 0 ? c->count - 1 : c->count + 1;
	return c->count;
}

/* Adds delta to the open connections of the worker whose loop is base;
 * lim_lock held.  Returns the new count. */
static unsigned int
lim_worker_add(struct event_base *base, int delta)
{
	int i, free_slot = -1;

	for (i = 0; i < LIM_WORKERS; i++) {
		if (lim_workers[i].base == base)
			break;
		if (lim_workers[i].base == NULL && free_slot < 0)
			free_slot = i;
	}
	if (i == LIM_WORKERS) {
		if (free_slot < 0 || delta < 0)
			return 0;
		i = free_slot;
		lim_workers[i].base = base;
	}
	if (delta < 0 && lim_workers[i].count > 0)
		lim_workers[i].count--;
	else if (delta > 0)
		lim_workers[i].count++;
	return lim_workers[i].count;
}

static void lim_summary(evutil_socket_t fd, short what, void *arg);

/* The seconds of the limit cause names, 0 for the causes that are no
 * times. */
static unsigned int
lim_cause_seconds(enum lim_cause cause, const struct lim_conf *conf)
{
	switch (cause) {
	case LIM_HANDSHAKE:
	case LIM_INCOMPLETE:
	case LIM_IDLE:
		return conf->timeout;
	case LIM_HANDSHAKE_LATE:
		return conf->handshake_timeout;
	case LIM_REQUEST_LATE:
		return conf->request_timeout;
	default:
		return 0;
	}
}

/* Writes " (N s)" for the causes that are times, "" for the others. */
static void
lim_limit_text(unsigned int seconds, char *buf, size_t len)
{
	if (seconds > 0)
		snprintf(buf, len, " (%u s)", seconds);
	else
		buf[0] = '\0';
}

/* Arms the summary of window w on its loop. */
static void
lim_arm(struct lim_window *w)
{
	struct timeval tv = {EST_LIMITS_WINDOW, 0};

	if (event_base_once(w->base, -1, EV_TIMEOUT, lim_summary, w, &tv) !=
	    0) {
		/* No summary then; the next closure opens a new window. */
		pthread_mutex_lock(&lim_lock);
		w->open = 0;
		pthread_mutex_unlock(&lim_lock);
	}
}

/* A window ran out: one line with its count, or the window closes. */
static void
lim_summary(evutil_socket_t fd, short what, void *arg)
{
	struct lim_window *w = arg;
	enum lim_cause cause = (enum lim_cause)(w - lim_windows);
	unsigned long count, total;
	char client[64], detail[sizeof(w->detail)];

	(void)fd;
	(void)what;
	pthread_mutex_lock(&lim_lock);
	count = w->count;
	total = w->total;
	snprintf(detail, sizeof(detail), "%s", w->detail);
	snprintf(client, sizeof(client), "%s", w->last_client);
	w->count = 0;
	if (count == 0)
		w->open = 0;
	pthread_mutex_unlock(&lim_lock);
	if (count == 0)
		return;
	ra_log(lim_cause_level[cause], LIM_COMPONENT, NULL,
	       lim_cause_hint[cause],
	       "connections closed: %s%s, count: %lu in the last %d s, "
	       "total: %lu, last client: %s",
	       lim_cause_text[cause], detail, count, EST_LIMITS_WINDOW, total,
	       client);
	lim_arm(w);
}

/* Counts one closure for cause, with detail after its text and client;
 * the first of a window is logged now, the others in its summary, on the
 * loop base. */
static void
lim_report_at(enum lim_cause cause, const char *detail, const char *client,
              struct event_base *base)
{
	struct lim_window *w = &lim_windows[cause];
	unsigned long total;
	int first = 0;

	pthread_mutex_lock(&lim_lock);
	w->total++;
	total = w->total;
	snprintf(w->detail, sizeof(w->detail), "%s", detail);
	snprintf(w->last_client, sizeof(w->last_client), "%s", client);
	if (!w->open) {
		w->open = 1;
		w->count = 0;
		w->base = base;
		first = 1;
	} else
		w->count++;
	pthread_mutex_unlock(&lim_lock);
	if (!first)
		return;
	ra_log(lim_cause_level[cause], LIM_COMPONENT, NULL,
	       lim_cause_hint[cause],
	       "connection closed: %s%s, client: %s, total: %lu; further "
	       "ones are counted for %d s",
	       lim_cause_text[cause], detail, client, total, EST_LIMITS_WINDOW);
	lim_arm(w);
}

/* Counts one closure of connection c for cause. */
static void
lim_report(enum lim_cause cause, const struct lim_conn *c)
{
	char detail[32];

	lim_limit_text(lim_cause_seconds(cause, &c->conf), detail,
	               sizeof(detail));
	lim_report_at(cause, detail, c->client, c->base);
}

static void lim_request_start(struct lim_conn *c, int tentative);

/*
 * Read callback of the connection's socket BIO: the first bytes of a
 * request start its deadline even when they are less than a record
 * header.  OpenSSL reads no further ahead than the record it parses (no
 * read_ahead), so bytes read after the handshake belong to a record that
 * comes after it.  The BIO outlives the record (SSL_free frees ex_data
 * first), so lim_free() takes the callback away.
 */
static long
lim_bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
           int ret, size_t *processed)
{
	struct lim_conn *c;

	(void)argp;
	(void)len;
	(void)argi;
	(void)argl;
	if (oper != (BIO_CB_READ | BIO_CB_RETURN) || ret <= 0 ||
	    processed == NULL || *processed == 0 ||
	    (c = (struct lim_conn *)BIO_get_callback_arg(b)) == NULL ||
	    c->refused || !SSL_is_init_finished(c->ssl))
		return ret;
	lim_request_start(c, 1);
	return ret;
}

/* Fills a from ss and writes "address:port" ("-:0" when ss is neither
 * IPv4 nor IPv6) to client. */
static void
lim_addr_from(const struct sockaddr_storage *ss, struct lim_addr *a,
              char *client, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "-";
	unsigned int port = 0;

	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		a->family = AF_INET;
		memcpy(a->bytes, &in->sin_addr, 4);
		port = ntohs(in->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)ss;

		a->family = AF_INET6;
		memcpy(a->bytes, &in6->sin6_addr, 16);
		port = ntohs(in6->sin6_port);
	}
	if (a->family != 0)
		inet_ntop(a->family, a->bytes, host, sizeof(host));
	snprintf(client, len, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
	         port);
}

/* Reads the peer's address of fd into c->addr and c->client. */
static void
lim_peer(int fd, struct lim_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		ss.ss_family = AF_UNSPEC;
	lim_addr_from(&ss, &c->addr, c->client, sizeof(c->client));
}

/*
 * Applies the connection limits to c, whose socket is fd, once: counts it
 * for its address and shuts it down when the address or the worker holds
 * more than the limit.  The socket stays open (evhttp closes it): the
 * next read sees the end and the connection is torn down before any
 * handshake work is done for it.
 */
static void
lim_apply(struct lim_conn *c, int fd)
{
	unsigned int nclient = 0, nworker;
	enum lim_cause cause = LIM_CAUSE__MAX;

	if (c->counted || fd < 0)
		return;
	c->counted = 1;
	lim_peer(fd, c);
	pthread_mutex_lock(&lim_lock);
	if (c->addr.family != 0) {
		nclient = lim_client_add(&c->addr, 1);
		c->have_addr = 1;
	}
	nworker = lim_worker_add(c->base, 0);
	pthread_mutex_unlock(&lim_lock);
	if (c->conf.max_per_client > 0 && nclient > c->conf.max_per_client)
		cause = LIM_PER_CLIENT;
	else if (c->conf.max_per_worker > 0 && nworker > c->conf.max_per_worker)
		cause = LIM_PER_WORKER;
	/* A connection a deadline shut already counts once. */
	if (cause == LIM_CAUSE__MAX || c->refused)
		return;
	c->refused = 1;
	(void)shutdown(fd, SHUT_RDWR);
	lim_report(cause, c);
}

/*
 * Right after the accept, before the loop first reads from the socket
 * (the event runs at the loop's highest priority): the limits apply to a
 * connection that never sends a byte too.  evhttp hands the socket to the
 * connection only after est_limits_conn_new() returns, hence the event.
 */
static void
lim_accepted(evutil_socket_t fd, short what, void *arg)
{
	struct lim_conn *c = arg;

	(void)fd;
	(void)what;
	lim_apply(c, SSL_get_fd(c->ssl));
}

/* The first record of a connection: the socket BIO is there to watch
 * (and the limits apply, if lim_accepted() could not). */
static void
lim_first_record(SSL *ssl, struct lim_conn *c)
{
	if ((c->bio = SSL_get_rbio(ssl)) != NULL &&
	    BIO_get_callback_ex(c->bio) == NULL) {
		BIO_set_callback_arg(c->bio, (char *)c);
		BIO_set_callback_ex(c->bio, lim_bio_cb);
	} else
		c->bio = NULL;
	lim_apply(c, SSL_get_fd(ssl));
}

/*
 * Enters phase and runs its deadline: the handshake's and a request's
 * count from now; the other phases have none.  Should the timer fail to
 * be added (out of memory), the connection keeps evhttp's timeout.
 */
static void
lim_phase_set(struct lim_conn *c, enum lim_phase phase)
{
	struct timeval tv = {0, 0};

	c->phase = phase;
	if (c->deadline == NULL)
		return;
	if (phase == LIM_PH_HANDSHAKE)
		tv.tv_sec = (time_t)c->conf.handshake_timeout;
	else if (phase == LIM_PH_REQUEST)
		tv.tv_sec = (time_t)c->conf.request_timeout;
	if (tv.tv_sec > 0)
		(void)event_add(c->deadline, &tv);
	else
		(void)event_del(c->deadline);
}

/*
 * The deadline of the phase ran out: the socket is shut down, evhttp
 * sees the end at its next read and frees the connection (and with it the
 * SSL and this record); the closure is counted here, by its limit.
 */
static void
lim_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lim_conn *c = arg;
	enum lim_cause cause;
	int sfd;

	(void)fd;
	(void)what;
	if (c->refused)
		return;
	if (c->phase == LIM_PH_HANDSHAKE) {
		/* Done in time and no request yet: from here evhttp's
		 * timeout watches the idle connection. */
		if (SSL_is_init_finished(c->ssl)) {
			c->phase = LIM_PH_IDLE;
			return;
		}
		cause = LIM_HANDSHAKE_LATE;
	} else if (c->phase == LIM_PH_REQUEST)
		cause = LIM_REQUEST_LATE;
	else
		return;
	c->refused = 1;
	if ((sfd = SSL_get_fd(c->ssl)) >= 0) {
		/* Counted at the accept, the client is known; should that
		 * have failed, the log still names it. */
		if (!c->counted)
			lim_peer(sfd, c);
		(void)shutdown(sfd, SHUT_RDWR);
	}
	lim_report(cause, c);
}

/*
 * Bytes came in after the handshake: a request starts (or, while one is
 * answered, the next one waits for the answer to go out).  tentative: the
 * record's type is not known yet (its header is not whole, or in TLS 1.3
 * its inner type), and lim_request_type() may undo the start.
 */
static void
lim_request_start(struct lim_conn *c, int tentative)
{
	switch (c->phase) {
	case LIM_PH_HANDSHAKE:
	case LIM_PH_IDLE:
		c->tentative = tentative;
		lim_phase_set(c, LIM_PH_REQUEST);
		break;
	case LIM_PH_ANSWERING:
		if (!c->next_pending) {
			c->next_pending = 1;
			c->tentative = tentative;
		}
		break;
	case LIM_PH_REQUEST:
		break;
	}
}

/* The type of the record that made a tentative start is known: an alert,
 * a KeyUpdate or a refused renegotiation starts no request after all. */
static void
lim_request_type(struct lim_conn *c, int app)
{
	if (!c->tentative)
		return;
	c->tentative = 0;
	if (app)
		return;
	if (c->phase == LIM_PH_REQUEST)
		lim_phase_set(c, LIM_PH_IDLE);
	else if (c->phase == LIM_PH_ANSWERING)
		c->next_pending = 0;
}

/* The answer begins to go out: the next request's deadline, if one has
 * begun to come in, counts from now. */
static void
lim_answer_out(struct lim_conn *c)
{
	int next = c->next_pending;

	c->next_pending = 0;
	lim_phase_set(c, next ? LIM_PH_REQUEST : LIM_PH_IDLE);
}

/* OpenSSL's message callback: notes records in and out. */
static void
lim_msg(int write_p, int version, int content_type, const void *buf, size_t len,
        SSL *ssl, void *arg)
{
	const unsigned char *p = buf;
	struct lim_conn *c;
	double now;
	int app = 0;

	(void)version;
	(void)arg;
	if (content_type != SSL3_RT_HEADER &&
	    content_type != SSL3_RT_INNER_CONTENT_TYPE)
		return;
	if (lim_index < 0 || (c = SSL_get_ex_data(ssl, lim_index)) == NULL)
		return;
	now = lim_now();
	if (content_type == SSL3_RT_HEADER) {
		if (write_p)
			c->last_out = now;
		else
			c->last_in = now;
		/* In TLS 1.3 every protected record says application
		 * data outside; the inner type below tells. */
		app = len >= 1 && p[0] == SSL3_RT_APPLICATION_DATA &&
		      SSL_version(ssl) != TLS1_3_VERSION;
		if (!write_p && !c->seen_record) {
			c->seen_record = 1;
			lim_first_record(ssl, c);
		}
	} else
		app = len >= 1 && p[0] == SSL3_RT_APPLICATION_DATA;
	if (app && write_p)
		c->app_out = now;
	else if (app)
		c->app_in = now;
	if (c->refused || len < 1)
		return;
	if (content_type == SSL3_RT_HEADER && !write_p &&
	    SSL_is_init_finished(ssl)) {
		/* Without the read callback this header is the first the
		 * request deadline hears of it. */
		if (p[0] == SSL3_RT_APPLICATION_DATA) {
			lim_request_start(c, 1);
			if (SSL_version(ssl) != TLS1_3_VERSION)
				lim_request_type(c, 1);
		} else
			lim_request_type(c, 0);
	} else if (content_type == SSL3_RT_INNER_CONTENT_TYPE && !write_p)
		lim_request_type(c, app);
	else if (app && write_p && c->phase == LIM_PH_ANSWERING)
		lim_answer_out(c);
}

/*
 * The head scanner's spans (est/head.h): writes fill over the bytes at
 * stream offsets [start, end) that are still in the input buffer, before
 * evhttp parses them.  evhttp reads whole lines only, and a span ends a
 * line that came in with the bytes being scanned, so a span of the line
 * just ended is always there; one of a line evhttp has already taken is
 * left as it was (evhttp then answers the head itself).
 */
static void
lim_fill(void *arg, uint64_t start, uint64_t end, int fill)
{
	struct lim_conn *c = arg;
	uint64_t first = c->in_total - evbuffer_get_length(c->input);
	struct evbuffer_iovec vec[4];
	struct evbuffer_ptr ptr;
	size_t k;
	int i, n;

	if (start < first)
		start = first;
	if (end > c->in_total)
		end = c->in_total;
	while (start < end) {
		if (evbuffer_ptr_set(c->input, &ptr, (size_t)(start - first),
		                     EVBUFFER_PTR_SET) != 0 ||
		    (n = evbuffer_peek(c->input, (ev_ssize_t)(end - start),
		                       &ptr, vec, 4)) <= 0)
			return;
		for (i = 0; i < n && i < 4 && start < end; i++) {
			k = vec[i].iov_len;
			if (k > end - start)
				k = (size_t)(end - start);
			memset(vec[i].iov_base, fill, k);
			start += k;
		}
	}
}

/* Feeds the head scanner the input buffer from byte pos to its end; a
 * scanner waiting for the request to be taken only counts them. */
static void
lim_input_scan(struct lim_conn *c, size_t pos)
{
	struct evbuffer_iovec vec[8];
	struct evbuffer_ptr ptr;
	int i, n;

	if (c->head.body) {
		c->head.offset = c->in_total;
		return;
	}
	while (pos < evbuffer_get_length(c->input)) {
		if (evbuffer_ptr_set(c->input, &ptr, pos, EVBUFFER_PTR_SET) !=
		        0 ||
		    (n = evbuffer_peek(c->input, -1, &ptr, vec, 8)) <= 0)
			return;
		for (i = 0; i < n && i < 8; i++) {
			if (c->head.body) {
				/* The rest belongs to evhttp's body. */
				c->head.offset = c->in_total;
				return;
			}
			est_head_feed(&c->head, vec[i].iov_base,
			              vec[i].iov_len);
			pos += vec[i].iov_len;
		}
	}
}

/*
 * The input buffer changed.  Bytes come in at its end (the TLS layer
 * adds what it decrypted) and leave at its start (evhttp takes lines and
 * bodies), so the bytes added are its last n_added, scanned now, before
 * evhttp's read callback runs.
 */
static void
lim_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
             void *arg)
{
	struct lim_conn *c = arg;
	size_t len = evbuffer_get_length(buf), n = info->n_added;

	if (n == 0)
		return;
	c->in_total += n;
	if (n > len)
		n = len;
	lim_input_scan(c, len - n);
}

/* OpenSSL frees the SSL: the connection is over, for whatever reason. */
static void
lim_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
         void *argp)
{
	struct lim_conn *c = ptr;
	SSL *ssl = parent;
	double last;

	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (c == NULL)
		return;
	/* The loop still exists: SSLs are freed by their bufferevent, on
	 * the loop or, at exit, while the loop is freed (est/listener.c
	 * frees evhttp before the base). */
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->accept_ev != NULL)
		event_free(c->accept_ev);
	/* The bufferevent frees its SSL before its buffers. */
	if (c->input_cb != NULL)
		(void)evbuffer_remove_cb_entry(c->input, c->input_cb);
	if (c->bio != NULL && ssl != NULL && SSL_get_rbio(ssl) == c->bio) {
		BIO_set_callback_ex(c->bio, NULL);
		BIO_set_callback_arg(c->bio, NULL);
	}
	last = c->accepted;
	if (c->last_in > last)
		last = c->last_in;
	if (c->last_out > last)
		last = c->last_out;
	/* Silent for the whole timeout: evhttp closed it for that (a
	 * peer that leaves earlier is no cause). */
	if (!c->refused && c->conf.timeout > 0 &&
	    lim_now() - last + 0.25 >= (double)c->conf.timeout) {
		if (ssl == NULL || !SSL_is_init_finished(ssl))
			lim_report(LIM_HANDSHAKE, c);
		else if (c->app_in > c->app_out)
			lim_report(LIM_INCOMPLETE, c);
		else
			lim_report(LIM_IDLE, c);
	}
	pthread_mutex_lock(&lim_lock);
	if (c->have_addr)
		(void)lim_client_add(&c->addr, -1);
	(void)lim_worker_add(c->base, -1);
	pthread_mutex_unlock(&lim_lock);
	free(c);
}

static pthread_once_t lim_once = PTHREAD_ONCE_INIT;

/* Once per process: the ex_data index whose free callback ends the
 * accounting of a connection. */
static void
lim_init(void)
{
	lim_index = SSL_get_ex_new_index(0, "est_limits", NULL, NULL, lim_free);
}

void
est_limits_conn_new(SSL *ssl, struct event_base *base,
                    const struct ra_config *config)
{
	struct lim_conn *c;

	pthread_once(&lim_once, lim_init);
	if (lim_index < 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->base = base;
	c->ssl = ssl;
	c->conf.timeout = config->limits.timeout;
	c->conf.handshake_timeout = config->limits.handshake_timeout;
	c->conf.request_timeout = config->limits.request_timeout;
	c->conf.max_per_client = config->limits.max_conns_per_client;
	c->conf.max_per_worker = config->limits.max_conns_per_worker;
	c->accepted = lim_now();
	snprintf(c->client, sizeof(c->client), "-");
	est_head_init(&c->head, lim_fill, c);
	/* Without a timer the connection still has evhttp's timeout;
	 * without the accept event, the limits apply at its first record. */
	c->deadline = event_new(base, -1, 0, lim_deadline_cb, c);
	c->accept_ev = event_new(base, -1, 0, lim_accepted, c);
	if (SSL_set_ex_data(ssl, lim_index, c) != 1) {
		if (c->deadline != NULL)
			event_free(c->deadline);
		if (c->accept_ev != NULL)
			event_free(c->accept_ev);
		free(c);
		return;
	}
	pthread_mutex_lock(&lim_lock);
	(void)lim_worker_add(base, 1);
	pthread_mutex_unlock(&lim_lock);
	SSL_set_msg_callback(ssl, lim_msg);
	lim_phase_set(c, LIM_PH_HANDSHAKE);
	if (c->accept_ev != NULL) {
		/* On a loop with one priority (unit tests) this fails and
		 * the event runs at that one. */
		(void)event_priority_set(c->accept_ev,
		                         CORE_LOOP_PRIORITY_ONGOING);
		event_active(c->accept_ev, EV_TIMEOUT, 1);
	}
}

void
est_limits_conn_input(SSL *ssl, struct evbuffer *input)
{
	struct lim_conn *c;

	if (ssl == NULL || input == NULL || lim_index < 0 ||
	    (c = SSL_get_ex_data(ssl, lim_index)) == NULL || c->input != NULL)
		return;
	c->input = input;
	c->in_total = evbuffer_get_length(input);
	c->head.offset = c->in_total;
	c->input_cb = evbuffer_add_cb(input, lim_input_cb, c);
}

void
est_limits_request_arrived(SSL *ssl)
{
	struct lim_conn *c;
	const char *why;

	if (ssl == NULL || lim_index < 0 ||
	    (c = SSL_get_ex_data(ssl, lim_index)) == NULL)
		return;
	c->next_pending = 0;
	c->tentative = 0;
	lim_phase_set(c, LIM_PH_ANSWERING);
	why = est_head_refusal(&c->head);
	snprintf(c->refusal, sizeof(c->refusal), "%s", why != NULL ? why : "");
	/* What is left in the input begins the next request's head. */
	if (c->input_cb != NULL) {
		est_head_next(&c->head,
		              c->in_total - evbuffer_get_length(c->input));
		lim_input_scan(c, 0);
	}
}

const char *
est_limits_request_refusal(SSL *ssl)
{
	struct lim_conn *c;

	if (ssl == NULL || lim_index < 0 ||
	    (c = SSL_get_ex_data(ssl, lim_index)) == NULL ||
	    c->refusal[0] == '\0')
		return NULL;
	return c->refusal;
}

/* Takes the spare descriptor if it is not held; lim_lock held. */
static void
lim_spare_take_locked(void)
{
	if (lim_spare < 0)
		lim_spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void
est_limits_spare_take(void)
{
	pthread_mutex_lock(&lim_lock);
	lim_spare_take_locked();
	pthread_mutex_unlock(&lim_lock);
}

void
est_limits_accept_failed(int fd, struct event_base *base, int err)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct lim_addr addr;
	char client[64] = "-", detail[96];
	enum lim_cause cause = LIM_ACCEPT;
	int nfd;

	if (err == EMFILE || err == ENFILE) {
		cause = LIM_NOFILE;
		/* The spare makes room for one accept: the oldest waiting
		 * client is closed now rather than left to its timeout.
		 * Another thread may take the room first; the spare is then
		 * taken again when a listener resumes. */
		pthread_mutex_lock(&lim_lock);
		if (lim_spare >= 0) {
			(void)close(lim_spare);
			lim_spare = -1;
			memset(&ss, 0, sizeof(ss));
			if ((nfd = accept4(fd, (struct sockaddr *)&ss, &len,
			                   SOCK_CLOEXEC)) >= 0) {
				lim_addr_from(&ss, &addr, client,
				              sizeof(client));
				(void)close(nfd);
			}
			lim_spare_take_locked();
		}
		pthread_mutex_unlock(&lim_lock);
	}
	snprintf(detail, sizeof(detail), " (%d: %s)", err, strerror(err));
	lim_report_at(cause, detail, client, base);
}

/* Reads the descriptor limits; RLIM_INFINITY reads as nr_open's default,
 * the most setrlimit(2) grants. */
static void
lim_nofile_get(rlim_t *cur, rlim_t *max)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		rl.rlim_cur = rl.rlim_max = 1024;
	if (rl.rlim_max == RLIM_INFINITY)
		rl.rlim_max = EST_LIMITS_NOFILE_CEILING;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	*cur = rl.rlim_cur;
	*max = rl.rlim_max;
}

/* Raises the soft descriptor limit to want, and the hard one with it
 * when estrad may (CAP_SYS_RESOURCE); as far as the hard one otherwise.
 * Returns the soft limit now. */
static rlim_t
lim_nofile_raise(rlim_t want)
{
	struct rlimit rl;
	rlim_t cur, max;

	lim_nofile_get(&cur, &max);
	if (want <= cur)
		return cur;
	rl.rlim_cur = want;
	rl.rlim_max = want > max ? want : max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && want > max) {
		rl.rlim_cur = rl.rlim_max = max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	lim_nofile_get(&cur, &max);
	return cur;
}

int
est_limits_nofile(struct ra_config *config, int workers, char *err,
                  size_t errlen)
{
	unsigned int per = config->limits.max_conns_per_worker, fit;
	unsigned long long need;
	rlim_t before, max, now;
	int rc = -1;

	if (workers < 1)
		workers = 1;
	lim_nofile_get(&before, &max);
	need = per == 0 ? (unsigned long long)max
	                : (unsigned long long)workers * per +
	                      EST_LIMITS_NOFILE_RESERVE;
	now = lim_nofile_raise(need > EST_LIMITS_NOFILE_CEILING
	                           ? (rlim_t)EST_LIMITS_NOFILE_CEILING
	                           : (rlim_t)need);
	if (now > before)
		ra_log(CORE_LOG_INFO, LIM_COMPONENT, NULL, NULL,
		       "descriptor limit raised from %llu to %llu",
		       (unsigned long long)before, (unsigned long long)now);
	if (per == 0) {
		/* No per-worker limit: the descriptor limit is the only
		 * one, and accepting pauses when it is reached. */
		ra_log(CORE_LOG_INFO, LIM_COMPONENT, NULL, NULL,
		       "limits.max_conns_per_worker is 0: connections are "
		       "bounded by the descriptor limit %llu alone",
		       (unsigned long long)now);
		rc = 0;
		goto out;
	}
	if ((unsigned long long)now >= need) {
		rc = 0;
		goto out;
	}
	fit = now > EST_LIMITS_NOFILE_RESERVE
	          ? (unsigned int)((now - EST_LIMITS_NOFILE_RESERVE) /
	                           (rlim_t)workers)
	          : 0;
	if (config->limits.per_worker_default &&
	    fit >= EST_LIMITS_MIN_PER_WORKER) {
		config->limits.max_conns_per_worker = fit;
		ra_log(CORE_LOG_WARN, LIM_COMPONENT, NULL,
		       "raise the hard descriptor limit (LimitNOFILE= in the "
		       "systemd unit, ulimit -Hn) for more connections",
		       "descriptor limit %llu (hard %llu): "
		       "limits.max_conns_per_worker lowered to %u from its "
		       "default %u for %d workers",
		       (unsigned long long)now, (unsigned long long)max, fit,
		       per, workers);
		rc = 0;
		goto out;
	}
	if (config->limits.per_worker_default)
		snprintf(err, errlen,
		         "descriptor limit %llu (hard %llu) leaves fewer than "
		         "%d connections to each of %d workers once %d are "
		         "kept for estrad itself; raise the hard limit "
		         "(LimitNOFILE= in the systemd unit, ulimit -Hn) or "
		         "lower workers",
		         (unsigned long long)now, (unsigned long long)max,
		         EST_LIMITS_MIN_PER_WORKER, workers,
		         EST_LIMITS_NOFILE_RESERVE);
	else
		snprintf(err, errlen,
		         "descriptor limit %llu (hard %llu) is below the %llu "
		         "that %d workers x limits.max_conns_per_worker %u + "
		         "%d need; raise the hard limit (LimitNOFILE= in the "
		         "systemd unit, ulimit -Hn) or lower "
		         "limits.max_conns_per_worker or workers",
		         (unsigned long long)now, (unsigned long long)max, need,
		         workers, per, EST_LIMITS_NOFILE_RESERVE);
out:
	return rc;
}
