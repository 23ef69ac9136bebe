/*
 * error.h: how failures are described: a keyed reason for configuration
 * errors, and message buffers that end in the drained OpenSSL error queue.
 */
#ifndef ESTRAD_CORE_ERROR_H
#define ESTRAD_CORE_ERROR_H

#include <stddef.h>

/*
 * Why loading a piece of configuration failed: the key (relative to the
 * object being read, e.g. a label's "ca" object,
 * e.g. "cert" or "profile.validity_days") so ra can name file, line and
 * column, and the reason in a full phrase.
 */
struct core_err {
	char key[128];
	char text[512];
};

/* Fills err with key and a printf-style reason; returns -1 for "return". */
int core_err_set(struct core_err *err, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Appends the OpenSSL error queue, drained, as " (SSL: reason; reason)" to
 * buf (of size len), the way nginx's ngx_ssl_error() does.  Leaves the
 * queue empty.  Shared by every layer that reports OpenSSL failures.
 */
void core_ssl_errors_append(char *buf, size_t len);

/*
 * Formats buf (size len; NULL or 0 is allowed and writes nothing) from
 * fmt and, when ssl is set, appends the drained OpenSSL error queue as
 * core_ssl_errors_append() does.  Empties the queue in every case, so no
 * stale error is blamed on a later call.
 */
void core_error_set(char *buf, size_t len, int ssl, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
