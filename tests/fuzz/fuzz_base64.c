/*
 * fuzz_base64.c: EST request bodies through est_wire_base64_decode(), with
 * and without PEM armour tolerance, and a round trip through the encoder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "est/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	unsigned char *der;
	size_t len = 0, b64len = 0;
	int armour;

	for (armour = 0; armour <= 1; armour++) {
		der = est_wire_base64_decode((const char *)data, size, armour,
		                             &len, err, sizeof(err));
		if (der != NULL) {
			/* What decodes must encode and decode to itself. */
			char *b64 =
			    est_wire_base64_encode(der, len, 64, &b64len);
			unsigned char *again;
			size_t len2 = 0;

			if (b64 == NULL)
				abort();
			again = est_wire_base64_decode(b64, b64len, 0, &len2,
			                               err, sizeof(err));
			if (again == NULL || len2 != len ||
			    memcmp(again, der, len) != 0)
				abort();
			free(again);
			free(b64);
			free(der);
		}
	}
	return 0;
}
