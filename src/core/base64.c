/*
 * base64.c: the checks in front of OpenSSL's base64 decoder.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/base64.h"

/* The white space an EST body may carry between base64 characters. */
static int
core_base64_is_space(unsigned char c)
{
	return c == '\r' || c == '\n' || c == ' ' || c == '\t';
}

static int
core_base64_is_alphabet(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

long
core_base64_decode(const char *in, size_t start, size_t end, int skip_space,
                   unsigned char *out, size_t outlen, char *err, size_t errlen)
{
	unsigned char *text = NULL, c;
	size_t i, n = 0, pad = 0, want, size = 0;
	long rc = -1;
	int dlen;

	if (err == NULL)
		errlen = 0;
	else if (errlen > 0)
		err[0] = '\0';
	if ((in == NULL && end > start) || end < start || out == NULL) {
		snprintf(err, errlen, "invalid base64: no input or output");
		goto out;
	}
	/* Room for the filtered text and the padding put back below. */
	size = end - start + 4;
	if ((text = malloc(size)) == NULL) {
		snprintf(err, errlen, "invalid base64: out of memory");
		goto out;
	}
	/*
	 * Keep alphabet bytes, drop the tolerated white space and count
	 * "=".  Padding may only end the text: a data byte after it means
	 * two bodies were glued together.
	 */
	for (i = start; i < end; i++) {
		c = (unsigned char)in[i];
		if (skip_space && core_base64_is_space(c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (!core_base64_is_alphabet(c)) {
			snprintf(err, errlen,
			         "invalid base64: byte 0x%02x at offset %zu", c,
			         i);
			goto out;
		}
		if (pad > 0) {
			snprintf(
			    err, errlen,
			    "invalid base64: data after padding at offset %zu",
			    i);
			goto out;
		}
		text[n++] = c;
	}
	if (n == 0) {
		snprintf(err, errlen, "invalid base64: empty body");
		goto out;
	}
	if (n % 4 == 1) {
		snprintf(err, errlen,
		         "invalid base64: %zu characters, one more than a "
		         "multiple of 4",
		         n);
		goto out;
	}
	/* EVP_DecodeBlock wants whole quanta: put the full padding back and
	 * remember how many of its output bytes the padding stands for. */
	want = (4 - n % 4) % 4;
	if (pad > want) {
		snprintf(err, errlen,
		         "invalid base64: %zu padding characters where at most "
		         "%zu fit",
		         pad, want);
		goto out;
	}
	for (i = 0; i < want; i++)
		text[n++] = '=';
	if (n > INT_MAX || n / 4 * 3 > outlen) {
		snprintf(err, errlen, "invalid base64: body too long");
		goto out;
	}
	dlen = EVP_DecodeBlock(out, text, (int)n);
	if (dlen < 0 || (size_t)dlen < want) {
		snprintf(err, errlen,
		         "invalid base64: OpenSSL could not decode it");
		goto out;
	}
	rc = (long)((size_t)dlen - want);
out:
	if (text != NULL)
		OPENSSL_cleanse(text, size);
	free(text);
	return rc;
}
