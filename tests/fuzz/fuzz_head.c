/*
 * fuzz_head.c: connection bytes through the request-head scanner
 * (est/head.c), in pieces whose sizes the first input byte picks, with
 * est_head_next() after every head as est/limits.c calls it.  The spans
 * it hands out must lie inside the bytes it was given, and a refusal must
 * be a printable, terminated string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "est/head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fuzz_seen;

static void
fuzz_span(void *arg, uint64_t start, uint64_t end, int fill)
{
	(void)arg;
	(void)fill;
	if (start >= end || end > fuzz_seen)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct est_head h;
	const char *why;
	size_t step, i, n, k;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 16 + 1;
	data++;
	size--;
	est_head_init(&h, fuzz_span, NULL);
	fuzz_seen = 0;
	for (i = 0; i < size; i += n) {
		n = size - i < step ? size - i : step;
		fuzz_seen += n;
		est_head_feed(&h, data + i, n);
		if ((why = est_head_refusal(&h)) != NULL) {
			for (k = 0; why[k] != '\0'; k++)
				if (k >= EST_HEAD_WHY_MAX ||
				    (unsigned char)why[k] < 0x20 ||
				    (unsigned char)why[k] >= 0x7f)
					abort();
		}
		if (h.offset != fuzz_seen)
			abort();
		/* A head ended: the request is taken whole, as evhttp does
		 * once its body is in. */
		if (h.body)
			est_head_next(&h, h.offset);
	}
	return 0;
}
