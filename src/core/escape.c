/*
 * escape.c: the one escaper of logs and messages.
 */
#include <stdlib.h>
#include <string.h>

#include "core/escape.h"

/*
 * Writes the escaped form of byte c in mode to out (room for 4 bytes);
 * returns its length.
 */
static size_t
core_escape_byte(unsigned char c, int mode, char *out)
{
	static const char hex[] = "0123456789abcdef";

	if (c < 0x20 || c >= 0x7f) {
		out[0] = '\\';
		out[1] = 'x';
		out[2] = hex[c >> 4];
		out[3] = hex[c & 0xf];
		return 4;
	}
	if (mode != CORE_ESCAPE_TEXT && (c == '"' || c == '\\')) {
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	}
	out[0] = (char)c;
	return 1;
}

/* Whether mode wraps the n bytes at s in double quotes. */
static int
core_escape_quoted(const unsigned char *s, size_t n, int mode)
{
	return mode == CORE_ESCAPE_QUOTE &&
	       (n == 0 || memchr(s, ' ', n) != NULL ||
	        memchr(s, ',', n) != NULL || memchr(s, '"', n) != NULL);
}

const char *
core_escape_bytes(const void *s, size_t n, int mode, char *buf, size_t len)
{
	const unsigned char *p = s;
	size_t o = 0, i, k, limit;
	char piece[4];
	int quoted;

	if (len == 0)
		return buf;
	if (p == NULL)
		n = 0;
	quoted = core_escape_quoted(p, n, mode);
	/* Room for the closing quote and the NUL; an escape is never cut
	 * in two. */
	if (len < (quoted ? 3u : 1u)) {
		buf[0] = '\0';
		return buf;
	}
	limit = len - 1 - (quoted ? 1 : 0);
	if (quoted)
		buf[o++] = '"';
	for (i = 0; i < n; i++) {
		k = core_escape_byte(p[i], mode, piece);
		if (o + k > limit)
			break;
		memcpy(buf + o, piece, k);
		o += k;
	}
	if (quoted)
		buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

const char *
core_escape(const char *s, int mode, char *buf, size_t len)
{
	return core_escape_bytes(s, s != NULL ? strlen(s) : 0, mode, buf, len);
}

char *
core_escape_new(const void *s, size_t n, int mode)
{
	const unsigned char *p = s;
	size_t i, len = 0, o = 0;
	char piece[4], *out;
	int quoted;

	if (p == NULL)
		n = 0;
	quoted = core_escape_quoted(p, n, mode);
	for (i = 0; i < n; i++)
		len += core_escape_byte(p[i], mode, piece);
	if ((out = malloc(len + (quoted ? 2 : 0) + 1)) == NULL)
		return NULL;
	if (quoted)
		out[o++] = '"';
	for (i = 0; i < n; i++)
		o += core_escape_byte(p[i], mode, out + o);
	if (quoted)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}
