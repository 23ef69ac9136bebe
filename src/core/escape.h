/*
 * escape.h: how estrad writes bytes it did not choose (client input, CA
 * answers, configuration values) into logs and messages, so that they can
 * neither forge a field nor hide a byte.
 */
#ifndef ESTRAD_CORE_ESCAPE_H
#define ESTRAD_CORE_ESCAPE_H

#include <stddef.h>

/*
 * The one escaper of every log and message: every client-supplied string (user
 * name, certificate or CSR subject, SAN, User-Agent, request target, header
 * values quoted in messages) reaches the error, access and audit logs
 * through it, so a value reads the same in all three and cannot forge a
 * field.  Control bytes and bytes >= 0x7f become \xHH; in the value modes
 * a backslash and a double quote are preceded by a backslash, so the
 * escaped text stands for exactly one byte string.
 */
enum core_escape_mode {
	/* estrad's own text (a message, which quotes values it escaped
	 * with CORE_ESCAPE_INNER): \xHH only. */
	CORE_ESCAPE_TEXT = 0,
	/* A value standing alone: in double quotes when it holds a space,
	 * comma or double quote or is empty. */
	CORE_ESCAPE_QUOTE = 1,
	/* A value the caller puts between double quotes itself. */
	CORE_ESCAPE_INNER = 2
};

/*
 * Escapes s (NULL: "") as mode says into buf (size len), cutting it at an
 * escape boundary if it does not fit.  Returns buf.
 */
const char *core_escape(const char *s, int mode, char *buf, size_t len);

/*
 * Escapes the n bytes at s (NUL bytes too) as mode says, whole.  Returns
 * a new string (free with free()), or NULL when memory is short.
 */
char *core_escape_new(const void *s, size_t n, int mode);

/*
 * Escapes the n bytes at s (NUL bytes too) as mode says into buf (size
 * len), cutting at an escape boundary if it does not fit.  Returns buf.
 */
const char *core_escape_bytes(const void *s, size_t n, int mode, char *buf,
                              size_t len);

#endif
