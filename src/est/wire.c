/*
 * wire.c: EST wire format helpers (see wire.h).  The base64 arithmetic is
 * OpenSSL's EVP_DecodeBlock() and EVP_EncodeBlock(); this file only decides
 * which bytes reach them (whitespace, armour, alphabet, padding) and how the
 * encoded text is cut into lines.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "core/base64.h"
#include "est/wire.h"

/*
 * Input bytes handed to one EVP_EncodeBlock() call.  A multiple of 3, so
 * that only the last chunk can end in padding, and small enough that its
 * output always fits the int the call returns.
 */
#define WIRE_ENCODE_CHUNK (3 * 16384)

/* PEM armour lines (RFC 7468 §2); only their dashes and keywords matter. */
#define WIRE_PEM_BEGIN  "-----BEGIN "
#define WIRE_PEM_END    "-----END "
#define WIRE_PEM_DASHES "-----"

/*
 * Returns 1 for the whitespace RFC 8951 §3.1 tells receivers to tolerate:
 * CR, LF, space and horizontal tab.  Nothing else (no VT, no FF) is
 * whitespace here, so a stray control byte is reported, not skipped.
 */
static int
wire_is_space(unsigned char c)
{
	return c == '\r' || c == '\n' || c == ' ' || c == '\t';
}

/*
 * Returns the offset of the first occurrence of needle in in[from, to), or
 * to when there is none.  in need not be NUL-terminated.
 */
static size_t
wire_find(const char *in, size_t from, size_t to, const char *needle)
{
	const char *hit;
	size_t nlen;

	nlen = strlen(needle);
	if (from >= to || to - from < nlen)
		return to;
	hit = memmem(in + from, to - from, needle, nlen);
	return hit == NULL ? to : (size_t)(hit - in);
}

/*
 * Looks for one PEM armour pair around the payload.  Returns 1 and narrows
 * [*start, *end) to the text between the BEGIN and END lines, 0 when the
 * input (after leading whitespace) does not open with a BEGIN line, or -1
 * with err set when it does but the armour is broken.  Only whitespace may
 * follow the END line, so two concatenated PEM blocks are refused rather
 * than half-read.
 */
static int
wire_strip_armour(const char *in, size_t inlen, size_t *start, size_t *end,
                  char *err, size_t errlen)
{
	size_t i, eol, dashes, endl;
	int rc = -1;

	for (i = 0; i < inlen && wire_is_space((unsigned char)in[i]); i++)
		continue;
	if (inlen - i < strlen(WIRE_PEM_BEGIN) ||
	    memcmp(in + i, WIRE_PEM_BEGIN, strlen(WIRE_PEM_BEGIN)) != 0) {
		rc = 0;
		goto out;
	}

	/* The BEGIN line ends with dashes before its line break. */
	eol = wire_find(in, i, inlen, "\n");
	dashes =
	    wire_find(in, i + strlen(WIRE_PEM_BEGIN), eol, WIRE_PEM_DASHES);
	if (dashes == eol) {
		snprintf(err, errlen,
		         "invalid PEM armour: BEGIN line at offset %zu is not "
		         "closed by \"-----\"",
		         i);
		goto out;
	}
	*start = dashes + strlen(WIRE_PEM_DASHES);

	endl = wire_find(in, *start, inlen, WIRE_PEM_END);
	if (endl == inlen) {
		snprintf(err, errlen, "invalid PEM armour: no END line");
		goto out;
	}
	*end = endl;

	eol = wire_find(in, endl, inlen, "\n");
	dashes =
	    wire_find(in, endl + strlen(WIRE_PEM_END), eol, WIRE_PEM_DASHES);
	if (dashes == eol) {
		snprintf(err, errlen,
		         "invalid PEM armour: END line at offset %zu is not "
		         "closed by \"-----\"",
		         endl);
		goto out;
	}
	for (i = dashes + strlen(WIRE_PEM_DASHES); i < inlen; i++) {
		if (!wire_is_space((unsigned char)in[i])) {
			snprintf(err, errlen,
			         "invalid PEM armour: data after the END line "
			         "at offset %zu",
			         i);
			goto out;
		}
	}
	rc = 1;
out:
	return rc;
}

unsigned char *
est_wire_base64_decode(const char *in, size_t inlen, int accept_pem_armour,
                       size_t *outlen, char *err, size_t errlen)
{
	unsigned char *out = NULL;
	size_t start = 0, end = inlen;
	long n;
	int rc = -1;

	/*
	 * A caller may pass no error buffer: snprintf() with a size of 0
	 * writes nothing, so every message below is then simply dropped.
	 */
	if (err == NULL)
		errlen = 0;
	else if (errlen > 0)
		err[0] = '\0';
	if (outlen != NULL)
		*outlen = 0;
	if (outlen == NULL || (in == NULL && inlen > 0)) {
		snprintf(err, errlen, "invalid base64: no input or output");
		goto out;
	}
	if (accept_pem_armour &&
	    wire_strip_armour(in, inlen, &start, &end, err, errlen) < 0)
		goto out;
	if ((out = malloc(CORE_BASE64_DECODED_MAX(end - start))) == NULL) {
		snprintf(err, errlen, "invalid base64: out of memory");
		goto out;
	}
	if ((n = core_base64_decode(in, start, end, 1, out,
	                            CORE_BASE64_DECODED_MAX(end - start), err,
	                            errlen)) < 0)
		goto out;
	*outlen = (size_t)n;
	rc = 0;
out:
	if (rc != 0) {
		free(out);
		out = NULL;
	}
	return out;
}

char *
est_wire_base64_encode(const unsigned char *der, size_t derlen, int wrap,
                       size_t *outlen)
{
	unsigned char *flat = NULL;
	char *out = NULL;
	size_t flatlen, total, lines, col, i, j, chunk;
	int rc = -1;

	if (outlen != NULL)
		*outlen = 0;
	if (der == NULL && derlen > 0)
		goto out;
	/*
	 * Keep 4 * ceil(derlen / 3) characters plus at most one LF each in
	 * range of size_t.
	 */
	if (derlen > SIZE_MAX / 4)
		goto out;

	flatlen = (derlen + 2) / 3 * 4;
	if ((flat = malloc(flatlen + 1)) == NULL)
		goto out;
	flat[0] = '\0';
	for (i = 0, j = 0; i < derlen; i += chunk) {
		chunk = derlen - i;
		if (chunk > WIRE_ENCODE_CHUNK)
			chunk = WIRE_ENCODE_CHUNK;
		/* Writes 4 * ceil(chunk / 3) characters and a NUL. */
		j += (size_t)EVP_EncodeBlock(flat + j, der + i, (int)chunk);
	}

	/* A negative column count is treated as "no wrapping". */
	if (wrap <= 0) {
		out = (char *)flat;
		flat = NULL;
		total = flatlen;
	} else {
		lines = (flatlen + (size_t)wrap - 1) / (size_t)wrap;
		total = flatlen + lines;
		if ((out = malloc(total + 1)) == NULL)
			goto out;
		for (i = 0, j = 0, col = 0; i < flatlen; i++) {
			out[j++] = (char)flat[i];
			if (++col == (size_t)wrap || i + 1 == flatlen) {
				out[j++] = '\n';
				col = 0;
			}
		}
		out[j] = '\0';
	}
	if (outlen != NULL)
		*outlen = total;
	rc = 0;
out:
	free(flat);
	if (rc != 0) {
		free(out);
		out = NULL;
	}
	return out;
}

int
est_wire_media_type_is(const char *content_type, const char *type_subtype)
{
	const char *p, *e;
	size_t n;

	if (content_type == NULL || type_subtype == NULL)
		return 0;

	/* The type/subtype runs up to the first ";" less optional spaces. */
	p = content_type;
	while (*p == ' ' || *p == '\t')
		p++;
	e = p + strcspn(p, ";");
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;

	n = strlen(type_subtype);
	return n > 0 && (size_t)(e - p) == n &&
	       strncasecmp(p, type_subtype, n) == 0;
}
