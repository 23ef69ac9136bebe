/*
 * fuzz_certsrv_page.c: AD CS pages through every reader of certsrv_page.c,
 * the one hand-written parser of network input in estrad.  The input is
 * copied into an exact-size buffer so that a read past its end is caught
 * by AddressSanitizer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca_plugins/certsrv_page.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct certsrv_page page;
	unsigned long renewals;
	char excerpt[256];
	char *buf;

	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	certsrv_page_submit(buf, size, &page);
	if (strlen(page.message) >= sizeof(page.message) ||
	    strlen(page.last_status) >= sizeof(page.last_status))
		abort();
	certsrv_page_status(buf, size, &page);
	certsrv_page_renewals(buf, size, &renewals);
	certsrv_page_unauthorized(buf, size);
	certsrv_page_has_template(buf, size, "WebServer");
	certsrv_page_has_template(buf, size, "Template With Spaces");
	certsrv_page_excerpt(buf, size, excerpt, sizeof(excerpt));
	if (strlen(excerpt) >= sizeof(excerpt))
		abort();
	free(buf);
	return 0;
}
