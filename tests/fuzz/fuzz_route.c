/*
 * fuzz_route.c: request paths through est_route_parse().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "est/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct est_route route;
	char *uri;

	/* evhttp hands the handler a NUL-terminated string. */
	if ((uri = malloc(size + 1)) == NULL)
		return 0;
	memcpy(uri, data, size);
	uri[size] = '\0';
	if (est_route_parse(uri, &route) == EST_ROUTE_OK &&
	    strlen(route.label) > EST_LABEL_MAX)
		abort();
	free(uri);
	return 0;
}
