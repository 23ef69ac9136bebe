/*
 * error.c: keyed configuration errors and OpenSSL error draining.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "core/error.h"

int
core_err_set(struct core_err *err, const char *key, const char *fmt, ...)
{
	va_list ap;

	snprintf(err->key, sizeof(err->key), "%s", key != NULL ? key : "");
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return -1;
}

void
core_ssl_errors_append(char *buf, size_t len)
{
	const char *data;
	unsigned long code;
	size_t used;
	int flags, first = 1;

	used = strnlen(buf, len);
	while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) !=
	       0) {
		char reason[256];
		int n;

		if (used + 2 >= len)
			continue; /* keep draining: the queue must end empty */
		ERR_error_string_n(code, reason, sizeof(reason));
		if (!(flags & ERR_TXT_STRING) || data == NULL)
			data = "";
		n = snprintf(buf + used, len - used, "%s%s%s%s",
		             first ? " (SSL: " : "; ", reason,
		             *data != '\0' ? ":" : "", data);
		first = 0;
		used = n < 0 ? len : used + (size_t)n;
		if (used >= len)
			used = len - 1;
	}
	if (first)
		return;
	/* Close the parenthesis, overwriting the last byte when full. */
	if (used + 1 < len) {
		buf[used] = ')';
		buf[used + 1] = '\0';
	} else {
		buf[len - 2] = ')';
		buf[len - 1] = '\0';
	}
}

void
core_error_set(char *buf, size_t len, int ssl, const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || len == 0)
		goto out;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (ssl)
		core_ssl_errors_append(buf, len);
out:
	ERR_clear_error();
}
