/*
 * fuzz_pending_record.c: pending-store record files through
 * ra_pending_record_parse(), and back through the formatter.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ra/pending.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ra_pending_record record, again;
	char err[256], *text;

	if (ra_pending_record_parse((const char *)data, size, &record, err,
	                            sizeof(err)) != 0)
		return 0;
	/* An accepted record must survive its own format. */
	if ((text = ra_pending_record_format(&record)) == NULL)
		abort();
	if (ra_pending_record_parse(text, strlen(text), &again, err,
	                            sizeof(err)) != 0 ||
	    strcmp(again.key, record.key) != 0 || again.state != record.state)
		abort();
	ra_pending_record_cleanup(&again);
	ra_pending_record_cleanup(&record);
	free(text);
	return 0;
}
