/*
 * log.c: error, access and audit logs.  Lines are formatted into one fixed
 * buffer and written with a single write(2) on an O_APPEND descriptor, so
 * lines from several worker threads never interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/escape.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/offload.h"
#include "ra/log.h"
#include "ra/safedir.h"

/* One error-log line at most; CA text is cut first so context survives. */
#define RA_LOG_LINE_MAX 4096
/* The message part of a line (WHAT: CAUSE) before context is added. */
#define RA_LOG_MESSAGE_MAX 2048

struct ra_log_file {
	char *path; /* NULL: stderr (error, access) or disabled (audit) */
	int fd;
};

static struct ra_log_file ra_log_error_file = {NULL, STDERR_FILENO};
static struct ra_log_file ra_log_access_file = {NULL, -1};
static struct ra_log_file ra_log_audit_file = {NULL, -1};
static int ra_log_level = CORE_LOG_INFO;

/* Serializes audit appends, so that a record the disk did not take whole
 * can be cut off without touching another thread's record, and keeps a
 * reopen from swapping the file between the audit writer's write and its
 * fdatasync. */
static pthread_mutex_t ra_log_audit_lock = PTHREAD_MUTEX_INITIALIZER;

static void
ra_log_timestamp(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;

	char seconds[24];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(seconds, sizeof(seconds), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03uZ", seconds,
	         (unsigned int)(tv.tv_usec / 1000) % 1000u);
}

/*
 * Writes all of buf; a log line is never dropped for a short write.
 * Returns 0, or -1 with errno set when the file takes no more (ENOSPC,
 * EIO, EROFS).
 */
static int
ra_log_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The user estrad writes as after the drop, whose log directories are
 * safe to open files in; -1 until set: the effective user. */
static uid_t ra_log_dir_owner = (uid_t)-1;

void
ra_log_set_dir_owner(uid_t uid)
{
	ra_log_dir_owner = uid;
}

/* Checks the directory of the log file path (ra_safedir_check_parent);
 * 0, or -1 with the reason in why. */
static int
ra_log_dir_check(const char *path, char *why, size_t len)
{
	return ra_safedir_check_parent(
	    path, ra_log_dir_owner != (uid_t)-1 ? ra_log_dir_owner : geteuid(),
	    why, len);
}

static int
ra_log_open_one(struct ra_log_file *file, const char *path, int fallback,
                char *err, size_t errlen)
{
	char why[512];
	int fd;

	free(file->path);
	file->path = NULL;
	file->fd = fallback;
	if (path == NULL || strcmp(path, "-") == 0)
		return 0;
	if (ra_log_dir_check(path, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "cannot open log %s: %s", path, why);
		return -1;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open log %s: %s", path,
		         strerror(errno));
		return -1;
	}
	if ((file->path = strdup(path)) == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	file->fd = fd;
	return 0;
}

int
ra_log_open(const char *error_path, const char *access_path,
            const char *audit_path, int level, char *err, size_t errlen)
{
	ra_log_level = level;
	if (ra_log_open_one(&ra_log_error_file, error_path, STDERR_FILENO, err,
	                    errlen) != 0)
		return -1;
	if (access_path == NULL) {
		free(ra_log_access_file.path);
		ra_log_access_file.path = NULL;
		ra_log_access_file.fd = -1;
	} else if (ra_log_open_one(&ra_log_access_file, access_path,
	                           STDERR_FILENO, err, errlen) != 0)
		return -1;
	if (ra_log_open_one(&ra_log_audit_file, audit_path, -1, err, errlen) !=
	    0)
		return -1;
	return 0;
}

/*
 * Reopens one file in place: the new descriptor is dup2()ed over the old
 * number, so threads that are writing at this moment finish into the old
 * file and the next write goes to the new one, with no lock.
 */
static int
ra_log_reopen_one(struct ra_log_file *file)
{
	char why[512];
	int fd, rc = -1;

	if (file->path == NULL)
		return 0;
	if (ra_log_dir_check(file->path, why, sizeof(why)) != 0) {
		ra_log(CORE_LOG_ERROR, "ra.log", NULL,
		       "the old file stays open; make the directory safe and "
		       "send SIGUSR1",
		       "cannot reopen log %s: %s", file->path, why);
		goto out;
	}
	fd = open(file->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		ra_log(CORE_LOG_ERROR, "ra.log", NULL,
		       "check the log directory's permissions",
		       "cannot reopen log %s: (%d: %s)", file->path, errno,
		       strerror(errno));
		goto out;
	}
	if (dup3(fd, file->fd, O_CLOEXEC) < 0) {
		ra_log(CORE_LOG_ERROR, "ra.log", NULL, NULL,
		       "cannot reopen log %s: dup3: (%d: %s)", file->path,
		       errno, strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);
	rc = 0;
out:
	return rc;
}

int
ra_log_reopen(void)
{
	int rc = 0;

	if (ra_log_reopen_one(&ra_log_error_file) != 0)
		rc = -1;
	if (ra_log_reopen_one(&ra_log_access_file) != 0)
		rc = -1;
	pthread_mutex_lock(&ra_log_audit_lock);
	if (ra_log_reopen_one(&ra_log_audit_file) != 0)
		rc = -1;
	pthread_mutex_unlock(&ra_log_audit_lock);
	return rc;
}

static void
ra_log_close_one(struct ra_log_file *file, int fallback)
{
	if (file->path != NULL && file->fd >= 0)
		close(file->fd);
	free(file->path);
	file->path = NULL;
	file->fd = fallback;
}

static void ra_log_audit_writer_stop(void);

void
ra_log_close(void)
{
	ra_log_audit_writer_stop();
	ra_log_close_one(&ra_log_error_file, STDERR_FILENO);
	ra_log_close_one(&ra_log_access_file, -1);
	ra_log_close_one(&ra_log_audit_file, -1);
}

int
ra_log_enabled(enum core_log_level level)
{
	return (int)level <= __atomic_load_n(&ra_log_level, __ATOMIC_RELAXED);
}

void
ra_log_set_level(int level)
{
	/* Workers read it without a lock; an atomic store keeps that
	 * well-defined while a SIGHUP reload changes it. */
	__atomic_store_n(&ra_log_level, level, __ATOMIC_RELAXED);
}

json_t *
ra_log_json_string(const char *s, int mode)
{
	json_t *j = NULL;
	char *text;

	if (s == NULL)
		s = "";
	/* The escaped text is printable ASCII, so jansson takes it. */
	if ((text = core_escape_new(s, strlen(s), mode)) != NULL) {
		j = json_string(text);
		free(text);
	}
	return j != NULL ? j : json_null();
}

/* Appends ", key: value" with value escaped (quoted when needed). */
static void
ra_log_append_field(char *line, size_t *used, size_t len, const char *key,
                    const char *value, int mode)
{
	char escaped[1024];
	int n;

	if (value == NULL || *used >= len)
		return;
	core_escape(value, mode, escaped, sizeof(escaped));
	n = snprintf(line + *used, len - *used, ", %s: %s", key, escaped);
	if (n > 0)
		*used = (size_t)n >= len - *used ? len - 1 : *used + (size_t)n;
}

void
ra_log(enum core_log_level level, const char *component,
       const struct ra_log_context *ctx, const char *hint, const char *fmt, ...)
{
	char message[RA_LOG_MESSAGE_MAX], escaped[RA_LOG_MESSAGE_MAX];
	char line[RA_LOG_LINE_MAX], ts[32], answer[16];
	va_list ap;
	size_t used;
	int n;

	if (!ra_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	core_escape(message, CORE_ESCAPE_TEXT, escaped, sizeof(escaped));
	ra_log_timestamp(ts, sizeof(ts));

	n = snprintf(line, sizeof(line), "%s [%s] %ld#%ld: %s%s%s%s: %s", ts,
	             core_log_level_name(level), (long)getpid(),
	             (long)syscall(SYS_gettid),
	             ctx != NULL && ctx->rid != NULL ? "rid=" : "",
	             ctx != NULL && ctx->rid != NULL ? ctx->rid : "",
	             ctx != NULL && ctx->rid != NULL ? " " : "", component,
	             escaped);
	used = n < 0                       ? 0
	       : (size_t)n >= sizeof(line) ? sizeof(line) - 1
	                                   : (size_t)n;
	/* Keep room for the context and the hint: cut the message first. */
	if (used > sizeof(line) - 1024)
		used = sizeof(line) - 1024;
	line[used] = '\0';
	if (ctx != NULL) {
		ra_log_append_field(line, &used, sizeof(line) - 2, "client",
		                    ctx->client, CORE_ESCAPE_TEXT);
		ra_log_append_field(line, &used, sizeof(line) - 2, "identity",
		                    ctx->identity, CORE_ESCAPE_QUOTE);
		ra_log_append_field(line, &used, sizeof(line) - 2, "label",
		                    ctx->label, CORE_ESCAPE_QUOTE);
		ra_log_append_field(line, &used, sizeof(line) - 2, "op",
		                    ctx->op, CORE_ESCAPE_TEXT);
		ra_log_append_field(line, &used, sizeof(line) - 2, "backend",
		                    ctx->backend, CORE_ESCAPE_TEXT);
		ra_log_append_field(line, &used, sizeof(line) - 2, "url",
		                    ctx->url, CORE_ESCAPE_TEXT);
		if (ctx->extra != NULL && used < sizeof(line) - 2) {
			n = snprintf(line + used, sizeof(line) - 2 - used,
			             ", %s", ctx->extra);
			if (n > 0)
				used = (size_t)n >= sizeof(line) - 2 - used
				           ? sizeof(line) - 3
				           : used + (size_t)n;
		}
		if (ctx->answer != 0) {
			snprintf(answer, sizeof(answer), "%d", ctx->answer);
			ra_log_append_field(line, &used, sizeof(line) - 2,
			                    "answer", answer, CORE_ESCAPE_TEXT);
		}
	}
	if (hint != NULL && *hint != '\0') {
		char quoted[520];
		char tmp[512];

		/* The hint is always quoted, even without spaces. */
		core_escape(hint, CORE_ESCAPE_QUOTE, tmp, sizeof(tmp));
		if (tmp[0] != '"')
			snprintf(quoted, sizeof(quoted), "\"%s\"", tmp);
		else
			snprintf(quoted, sizeof(quoted), "%s", tmp);
		n = snprintf(line + used, sizeof(line) - 2 - used, ", hint: %s",
		             quoted);
		if (n > 0)
			used = (size_t)n >= sizeof(line) - 2 - used
			           ? sizeof(line) - 3
			           : used + (size_t)n;
	}
	line[used++] = '\n';
	ra_log_write_all(ra_log_error_file.fd, line, used);
}

/* Formats the access line of e with its escaped fields into buf (size
 * len), as snprintf does. */
static int
ra_log_access_format(char *buf, size_t len, const struct ra_access_entry *e,
                     const char *ts, const char *path, const char *identity,
                     const char *label, const char *ua)
{
	return snprintf(
	    buf, len,
	    "%s %s rid=%s \"%s %s HTTP/1.1\" %d %zu tls=%s auth=%s "
	    "id=\"%s\" label=%s op=%s backend=%s outcome=%s ca_ms=%ld ms=%ld "
	    "retry_after=%u ua=\"%s\"\n",
	    ts, e->client != NULL ? e->client : "-",
	    e->rid != NULL ? e->rid : "-", e->method != NULL ? e->method : "-",
	    path, e->status, e->bytes, e->tls != NULL ? e->tls : "-",
	    e->auth != NULL ? e->auth : "none", identity, label,
	    e->op != NULL ? e->op : "-", e->backend != NULL ? e->backend : "-",
	    e->outcome != NULL ? e->outcome : "-", e->ca_ms, e->ms,
	    e->retry_after, ua);
}

void
ra_log_access(const struct ra_access_entry *e)
{
	char ts[32], path[1024], ua[512], label[128], cut[512];
	const char *id = e->identity != NULL ? e->identity : "-";
	char *identity, *line = NULL;
	int n;

	if (ra_log_access_file.fd < 0)
		return;
	ra_log_timestamp(ts, sizeof(ts));
	/* The request target and the User-Agent are cut when long; the
	 * identity, which the line is kept for, is not (its length is
	 * bounded where it is made). */
	core_escape(e->path != NULL ? e->path : "-", CORE_ESCAPE_INNER, path,
	            sizeof(path));
	core_escape(e->user_agent != NULL ? e->user_agent : "-",
	            CORE_ESCAPE_INNER, ua, sizeof(ua));
	core_escape(e->label != NULL ? e->label : "-", CORE_ESCAPE_TEXT, label,
	            sizeof(label));
	if ((identity = core_escape_new(id, strlen(id), CORE_ESCAPE_INNER)) ==
	    NULL)
		core_escape(id, CORE_ESCAPE_INNER, cut, sizeof(cut));
	n = ra_log_access_format(NULL, 0, e, ts, path,
	                         identity != NULL ? identity : cut, label, ua);
	if (n > 0 && (line = malloc((size_t)n + 1)) != NULL &&
	    ra_log_access_format(line, (size_t)n + 1, e, ts, path,
	                         identity != NULL ? identity : cut, label,
	                         ua) == n)
		ra_log_write_all(ra_log_access_file.fd, line, (size_t)n);
	free(line);
	free(identity);
}

int
ra_log_audit_enabled(void)
{
	return ra_log_audit_file.fd >= 0;
}

/*
 * Formats entry as one audit line with its "ts" and newline; returns the
 * text (free it) and its length in *len, or NULL after a crit line.
 */
static char *
ra_log_audit_format(json_t *entry, size_t *len)
{
	char ts[32], *text;

	ra_log_timestamp(ts, sizeof(ts));
	if (json_object_set_new(entry, "ts", json_string(ts)) != 0 ||
	    (text = json_dumps(entry, JSON_COMPACT | JSON_PRESERVE_ORDER)) ==
	        NULL) {
		ra_log(CORE_LOG_CRIT, "ra.audit", NULL, NULL,
		       "cannot format audit record: out of memory");
		return NULL;
	}
	/* json_dumps() leaves room for its NUL, which becomes the newline. */
	*len = strlen(text);
	text[*len] = '\n';
	*len += 1;
	return text;
}

/* How ra_log_audit_append() makes what it wrote durable. */
enum ra_log_sync {
	RA_LOG_SYNC,      /* fdatasync after the write, lock released */
	RA_LOG_SYNC_HELD, /* fdatasync with the lock held (the writer) */
	RA_LOG_SYNC_LATER /* none: the writer thread syncs soon */
};

/*
 * Appends len bytes of whole records to the audit log and, as sync says,
 * makes them durable.  A batch the file did not take whole is cut off
 * again, so the log never holds a torn line.  Returns 0, or -1 after one
 * crit line.
 */
static int
ra_log_audit_append(const char *text, size_t len, enum ra_log_sync sync)
{
	off_t end;
	int saved;

	pthread_mutex_lock(&ra_log_audit_lock);
	end = lseek(ra_log_audit_file.fd, 0, SEEK_END);
	if (ra_log_write_all(ra_log_audit_file.fd, text, len) != 0) {
		saved = errno;
		if (end >= 0)
			(void)ftruncate(ra_log_audit_file.fd, end);
		pthread_mutex_unlock(&ra_log_audit_lock);
		ra_log(CORE_LOG_CRIT, "ra.audit", NULL,
		       "check the disk holding the audit log",
		       "cannot write audit log %s: (%d: %s)",
		       ra_log_audit_file.path, saved, strerror(saved));
		return -1;
	}
	if (sync != RA_LOG_SYNC_HELD)
		pthread_mutex_unlock(&ra_log_audit_lock);
	if (sync == RA_LOG_SYNC_LATER)
		return 0;
	/* The record must be on disk before the client sees its answer. */
	if (fdatasync(ra_log_audit_file.fd) != 0 && errno != EINVAL) {
		saved = errno;
		if (sync == RA_LOG_SYNC_HELD)
			pthread_mutex_unlock(&ra_log_audit_lock);
		ra_log(CORE_LOG_CRIT, "ra.audit", NULL,
		       "check the disk holding the audit log",
		       "cannot sync audit log %s: (%d: %s)",
		       ra_log_audit_file.path, saved, strerror(saved));
		return -1;
	}
	if (sync == RA_LOG_SYNC_HELD)
		pthread_mutex_unlock(&ra_log_audit_lock);
	return 0;
}

/* Formats and appends one record; see ra_log_audit_append(). */
static int
ra_log_audit_write(json_t *entry, enum ra_log_sync sync)
{
	char *text;
	size_t len;
	int rc;

	if (ra_log_audit_file.fd < 0)
		return 0;
	if ((text = ra_log_audit_format(entry, &len)) == NULL)
		return -1;
	rc = ra_log_audit_append(text, len, sync);
	free(text);
	return rc;
}

int
ra_log_audit(json_t *entry)
{
	return ra_log_audit_write(entry, RA_LOG_SYNC);
}

/*
 * The audit writer thread.  An answer must not leave before its record is
 * on disk, and fdatasync(2) on a worker's loop stopped that worker for the
 * disk once per answer (make bench: a third of the keep-alive throughput).
 * Records given to ra_log_audit_submit() are queued instead; one thread
 * writes everything queued with one write and one fdatasync (a group
 * commit), then wakes each submitter on its own loop.  Under load a batch
 * holds every record that arrived during the previous sync, so the syncs
 * per second stay bounded by the disk while answers per second do not.
 */
struct ra_log_audit_item {
	char *text; /* the formatted line, newline included */
	size_t len;
	struct event_base *base; /* the submitter's loop */
	struct event *ev;        /* on base; made active when done */
	void (*done)(int rc, void *arg);
	void *arg;
	int rc;
	struct ra_log_audit_item *next;
};

static pthread_mutex_t ra_log_queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ra_log_queue_cond = PTHREAD_COND_INITIALIZER;
static struct ra_log_audit_item *ra_log_queue_head;
static struct ra_log_audit_item **ra_log_queue_tail = &ra_log_queue_head;
static pthread_t ra_log_writer;
static int ra_log_writer_state; /* 0 none, 1 running, -1 cannot start */
static int ra_log_writer_stopping;
static int ra_log_sync_wanted; /* records written without a sync */

/* Runs on the submitter's loop: hands the result over and frees. */
static void
ra_log_audit_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct ra_log_audit_item *item = arg;
	void (*done)(int, void *) = item->done;
	void *done_arg = item->arg;
	int rc = item->rc;

	(void)fd;
	(void)what;
	core_offload_delivered(item->base);
	event_free(item->ev);
	free(item->text);
	free(item);
	done(rc, done_arg);
}

/* Writes and syncs one batch; returns 0 or -1 for all of it. */
static int
ra_log_audit_write_batch(struct ra_log_audit_item *batch)
{
	struct ra_log_audit_item *item;
	size_t total = 0, used = 0;
	char *buf;
	int rc;

	if (batch->next == NULL)
		return ra_log_audit_append(batch->text, batch->len,
		                           RA_LOG_SYNC_HELD);
	for (item = batch; item != NULL; item = item->next)
		total += item->len;
	if ((buf = malloc(total)) == NULL) {
		ra_log(CORE_LOG_CRIT, "ra.audit", NULL, NULL,
		       "cannot write audit records: out of memory");
		return -1;
	}
	for (item = batch; item != NULL; item = item->next) {
		memcpy(buf + used, item->text, item->len);
		used += item->len;
	}
	rc = ra_log_audit_append(buf, total, RA_LOG_SYNC_HELD);
	free(buf);
	return rc;
}

static void *
ra_log_audit_writer_main(void *arg)
{
	struct ra_log_audit_item *batch, *item, *next;
	int rc, sync_wanted;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&ra_log_queue_lock);
		while (ra_log_queue_head == NULL && !ra_log_sync_wanted &&
		       !ra_log_writer_stopping)
			pthread_cond_wait(&ra_log_queue_cond,
			                  &ra_log_queue_lock);
		batch = ra_log_queue_head;
		ra_log_queue_head = NULL;
		ra_log_queue_tail = &ra_log_queue_head;
		sync_wanted = ra_log_sync_wanted;
		ra_log_sync_wanted = 0;
		pthread_mutex_unlock(&ra_log_queue_lock);
		if (batch == NULL && !sync_wanted)
			break;
		if (batch == NULL) {
			/* Records ra_log_audit_nowait() wrote: one sync for
			 * all of them (a batch's sync covers them too). */
			pthread_mutex_lock(&ra_log_audit_lock);
			if (fdatasync(ra_log_audit_file.fd) != 0 &&
			    errno != EINVAL)
				ra_log(CORE_LOG_CRIT, "ra.audit", NULL,
				       "check the disk holding the audit log",
				       "cannot sync audit log %s: (%d: %s)",
				       ra_log_audit_file.path, errno,
				       strerror(errno));
			pthread_mutex_unlock(&ra_log_audit_lock);
			continue;
		}
		rc = ra_log_audit_write_batch(batch);
		/* The submitter frees an item as soon as it is active. */
		for (item = batch; item != NULL; item = next) {
			next = item->next;
			item->rc = rc;
			event_active(item->ev, EV_TIMEOUT, 1);
		}
	}
	return NULL;
}

/* Starts the writer thread if needed; returns 0 when it runs. */
static int
ra_log_audit_writer_running(void)
{
	int rc;

	pthread_mutex_lock(&ra_log_queue_lock);
	if (ra_log_writer_state == 0 && !ra_log_writer_stopping)
		ra_log_writer_state =
		    pthread_create(&ra_log_writer, NULL,
		                   ra_log_audit_writer_main, NULL) == 0
		        ? 1
		        : -1;
	rc = ra_log_writer_state == 1 && !ra_log_writer_stopping ? 0 : -1;
	pthread_mutex_unlock(&ra_log_queue_lock);
	return rc;
}

int
ra_log_audit_nowait(json_t *entry)
{
	int rc;

	if (ra_log_audit_file.fd < 0)
		return 0;
	if (ra_log_audit_writer_running() != 0)
		return ra_log_audit(entry);
	rc = ra_log_audit_write(entry, RA_LOG_SYNC_LATER);
	if (rc == 0) {
		pthread_mutex_lock(&ra_log_queue_lock);
		ra_log_sync_wanted = 1;
		pthread_cond_signal(&ra_log_queue_cond);
		pthread_mutex_unlock(&ra_log_queue_lock);
	}
	return rc;
}

int
ra_log_audit_submit(json_t *entry, struct event_base *base,
                    void (*done)(int rc, void *arg), void *arg)
{
	struct ra_log_audit_item *item = NULL;
	int rc = -1;

	if (ra_log_audit_file.fd < 0 || base == NULL ||
	    ra_log_audit_writer_running() != 0)
		return -1;
	rc = -1;
	if ((item = calloc(1, sizeof(*item))) == NULL ||
	    (item->ev = event_new(base, -1, 0, ra_log_audit_deliver, item)) ==
	        NULL)
		goto out;
	(void)event_priority_set(item->ev, CORE_LOOP_PRIORITY_ONGOING);
	if ((item->text = ra_log_audit_format(entry, &item->len)) == NULL)
		goto out;
	item->base = base;
	item->done = done;
	item->arg = arg;
	core_offload_expect(base);
	pthread_mutex_lock(&ra_log_queue_lock);
	*ra_log_queue_tail = item;
	ra_log_queue_tail = &item->next;
	pthread_cond_signal(&ra_log_queue_cond);
	pthread_mutex_unlock(&ra_log_queue_lock);
	item = NULL;
	rc = 0;
out:
	if (item != NULL) {
		if (item->ev != NULL)
			event_free(item->ev);
		free(item->text);
		free(item);
	}
	return rc;
}

/* Stops the writer after it has written everything queued. */
static void
ra_log_audit_writer_stop(void)
{
	int running;

	pthread_mutex_lock(&ra_log_queue_lock);
	running = ra_log_writer_state == 1;
	ra_log_writer_stopping = 1;
	pthread_cond_signal(&ra_log_queue_cond);
	pthread_mutex_unlock(&ra_log_queue_lock);
	if (running)
		pthread_join(ra_log_writer, NULL);
	pthread_mutex_lock(&ra_log_queue_lock);
	ra_log_writer_state = 0;
	ra_log_writer_stopping = 0;
	pthread_mutex_unlock(&ra_log_queue_lock);
}

static void
ra_log_libevent(int severity, const char *msg)
{
	enum core_log_level level;

	switch (severity) {
	case EVENT_LOG_DEBUG:
		level = CORE_LOG_DEBUG;
		break;
	case EVENT_LOG_MSG:
		level = CORE_LOG_INFO;
		break;
	case EVENT_LOG_WARN:
		level = CORE_LOG_WARN;
		break;
	default:
		level = CORE_LOG_ERROR;
		break;
	}
	ra_log(level, "est.libevent", NULL, NULL, "%s", msg);
}

void
ra_log_capture_libevent(void)
{
	event_set_log_callback(ra_log_libevent);
}
