/*
 * log.h: the error, access and audit logs.  All three are
 * opened once at start-up and reopened on SIGHUP/SIGUSR1 for logrotate;
 * every line is written with one write(2) on an O_APPEND descriptor, so
 * worker threads never interleave lines and need no lock.
 */
#ifndef ESTRAD_RA_LOG_H
#define ESTRAD_RA_LOG_H

#include <sys/types.h>

#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

#include "core/log.h"

/*
 * The context of one request, printed after the message in the order
 * client, identity, label, op, backend, url, extra, answer, hint.  Every
 * member is borrowed and may be NULL (left out), answer 0 is left out.
 */
struct ra_log_context {
	const char *rid;
	const char *client;   /* "ip:port" */
	const char *identity; /* certificate subject or Basic user name */
	const char *label;
	const char *op;
	const char *backend;
	const char *url;
	const char *extra; /* preformatted "key: value, key: value" */
	int answer;        /* EST status sent */
};

/*
 * Names the user estrad writes as after dropping privileges
 * (ra_safedir_uid()): a log is opened only in a directory owned by root or
 * that user and writable by no group or other user (ra/safedir.h).  Until
 * set, the effective user.  Main thread, before ra_log_open().
 */
void ra_log_set_dir_owner(uid_t uid);

/*
 * Opens the log files (NULL or "-" paths: the error log and access log go
 * to stderr; no audit log).  Returns 0, or -1 with the path and errno text,
 * or why its directory is unsafe, in err.  Main thread, before workers
 * start.
 */
int ra_log_open(const char *error_path, const char *access_path,
                const char *audit_path, int level, char *err, size_t errlen);

/*
 * Reopens the files at the same paths (logrotate moved them).  Safe while
 * workers log: the new file replaces the old descriptor with dup2(2).
 * Returns 0 or -1 (the old descriptors keep working and an error line is
 * written).
 */
int ra_log_reopen(void);

/* Closes the log files; later lines go to stderr. */
void ra_log_close(void);

/* Sets the most verbose level written (SIGHUP reload).  Thread-safe. */
void ra_log_set_level(int level);

/* Returns 1 when a line at level would be written. */
int ra_log_enabled(enum core_log_level level);

/*
 * Writes one error-log line:
 * `TIME [LEVEL] PID#TID: rid=RID COMPONENT: MESSAGE, key: value, ...,
 * hint: "HINT"`.  ctx and hint may be NULL.  MESSAGE is "WHAT: CAUSE[ while
 * ACTION]", formatted from fmt; control bytes in it are escaped as \xHH.
 */
void ra_log(enum core_log_level level, const char *component,
            const struct ra_log_context *ctx, const char *hint, const char *fmt,
            ...) __attribute__((format(printf, 5, 6)));

/*
 * The fields of one access-log line, written once the answer is sent.
 * Strings are borrowed; NULL prints as "-".
 */
struct ra_access_entry {
	const char *rid;
	const char *client;
	const char *method;
	const char *path;
	int status;
	size_t bytes;     /* body bytes sent */
	const char *tls;  /* "TLSv1.3" */
	const char *auth; /* "cert", "basic", "none" */
	const char *identity;
	const char *label;
	const char *op;
	const char *backend;
	const char *outcome; /* ISSUED, REFUSED, ... */
	long ca_ms;          /* time spent in the CA call, -1 if none */
	long ms;             /* whole request */
	unsigned int retry_after;
	const char *user_agent;
};

/* Writes one access-log line. */
void ra_log_access(const struct ra_access_entry *entry);

/*
 * Appends entry as one JSON line to the audit log and fdatasync(2)s it, so
 * that an answer acknowledged to a client is on disk before it is sent.
 * Adds "ts".  Borrows entry.  Returns 0, or -1 after logging at crit (the
 * caller must then not hand out the certificate).  No audit file: 0.
 */
int ra_log_audit(json_t *entry);

/*
 * Like ra_log_audit(), without waiting: entry is formatted now (borrowed
 * for the call) and written and synced by the audit writer thread with
 * whatever else is queued.  Then done(rc, arg) runs on base's loop (the
 * caller's worker loop, which must be running or be drained with
 * core_offload_drain()), rc 0 when the record is durable, -1 when it could
 * not be written (a crit line says why).  Returns 0 when done will be called,
 * -1 when the record was not queued (no audit log, no memory, writer stopped):
 * the caller then uses ra_log_audit().  Thread-safe; base must have been made
 * after evthread_use_pthreads().
 */
int ra_log_audit_submit(json_t *entry, struct event_base *base,
                        void (*done)(int rc, void *arg), void *arg);

/*
 * Like ra_log_audit() for records that promise nothing (refusals): the
 * line is written now, so it survives the process, and the audit writer
 * thread makes it durable soon after, so that a flood of refused
 * requests never stops a worker for the disk.  Borrows entry.  Returns 0,
 * or -1 after a crit line.  No audit file: 0.
 */
int ra_log_audit_nowait(json_t *entry);

/* Returns 1 when an audit log is open, so callers skip building records
 * nobody will read. */
int ra_log_audit_enabled(void);

/*
 * Returns a new JSON string of s (NULL: "") escaped as mode says, for the
 * audit log: always valid UTF-8, so a key is never lost to a byte that is
 * not.  Never NULL: JSON null when memory is short.
 */
json_t *ra_log_json_string(const char *s, int mode);

/* Routes libevent's own warnings and errors into the error log. */
void ra_log_capture_libevent(void);

#endif
