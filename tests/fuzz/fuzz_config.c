/*
 * fuzz_config.c: configuration files through ra_config_load() (strict
 * JSON checks and error positions) and ra_config_locate() on the same
 * text.  The text reaches the loader through a memfd so that no file
 * system is touched.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ra/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ra_config *config;
	char path[64], err[1024];
	int fd, line, col;

	ra_config_locate((const char *)data, size, "labels.default.ca.cert", 0,
	                 &line, &col);
	ra_config_locate((const char *)data, size, "tls.0", 1, &line, &col);
	if ((fd = memfd_create("estrad-fuzz", MFD_CLOEXEC)) < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		config = ra_config_load(path, err, sizeof(err));
		ra_config_free(config);
	}
	close(fd);
	return 0;
}
