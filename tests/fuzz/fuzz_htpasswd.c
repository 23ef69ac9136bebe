/*
 * fuzz_htpasswd.c: users files through ra_users_load() and Authorization
 * headers through ra_auth_basic_check().  The input's first line is the
 * header, the rest the users file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ra/auth_basic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A known-good table so the header half is exercised on every input. */
static const char fuzz_users[] =
    "alice:$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5kn"
    "V8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
	struct ra_users *users;
	char path[64], err[512], user[128], *header;
	int fd;

	if ((header = malloc(hlen + 1)) == NULL)
		return 0;
	memcpy(header, data, hlen);
	header[hlen] = '\0';
	if ((fd = memfd_create("estrad-fuzz", MFD_CLOEXEC)) >= 0) {
		size_t rest = nl != NULL ? size - hlen - 1 : 0;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (write(fd, nl != NULL ? nl + 1 : data, rest) ==
		    (ssize_t)rest) {
			users = ra_users_load(path, err, sizeof(err));
			if (users != NULL)
				ra_auth_basic_check(users, header, user,
				                    sizeof(user));
			ra_users_free(users);
		}
		if (ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0 &&
		    write(fd, fuzz_users, sizeof(fuzz_users) - 1) ==
		        (ssize_t)(sizeof(fuzz_users) - 1)) {
			users = ra_users_load(path, err, sizeof(err));
			if (users != NULL)
				ra_auth_basic_check(users, header, user,
				                    sizeof(user));
			ra_users_free(users);
		}
		close(fd);
	}
	free(header);
	return 0;
}
