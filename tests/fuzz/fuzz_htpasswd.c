/*
 * fuzz_htpasswd.c: users files through ra_users_load() and Authorization
 * headers through ra_auth_basic_check().  The input's first line is the
 * header, the rest the users file.
 *
 * Per input only the users file is written and read: it goes into one
 * memfd made at the first input (rewritten in place, read back through
 * /proc/self/fd), and the known-good table the header is also checked
 * against is loaded once and kept.  Its hash has the fewest rounds
 * sha512-crypt takes (1,000, the password is "secret"), since crypt(3)
 * costs most of a run and is not what is under test.
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
    "alice:$6$rounds=1000$saltsalt$LAV5VE5Y7w1d73x1mFNspYWUpazfmwv2SoepNXN"
    "KJ/otop/Zok96Hr8Q13LEv0DRY/x8v0/crpIjl8NJSAqXV/\n";

static int fuzz_fd = -1;
static char fuzz_path[64];
static struct ra_users *fuzz_table;

/* Puts size bytes of data into the memfd as its whole content. */
static int
fuzz_put(const void *data, size_t size)
{
	return ftruncate(fuzz_fd, 0) == 0 &&
	               pwrite(fuzz_fd, data, size, 0) == (ssize_t)size
	           ? 0
	           : -1;
}

/* Makes the memfd and loads the known-good table, once. */
static int
fuzz_setup(void)
{
	char err[512];

	if (fuzz_fd >= 0)
		return 0;
	if ((fuzz_fd = memfd_create("estrad-fuzz", MFD_CLOEXEC)) < 0)
		return -1;
	snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d", fuzz_fd);
	if (fuzz_put(fuzz_users, sizeof(fuzz_users) - 1) != 0 ||
	    (fuzz_table = ra_users_load(fuzz_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_htpasswd: setup: %s\n", err);
		abort();
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
	size_t rest = nl != NULL ? size - hlen - 1 : 0;
	struct ra_users *users;
	char err[512], user[128], *header;

	if (fuzz_setup() != 0 || (header = malloc(hlen + 1)) == NULL)
		return 0;
	memcpy(header, data, hlen);
	header[hlen] = '\0';
	if (fuzz_put(nl != NULL ? nl + 1 : data, rest) == 0) {
		users = ra_users_load(fuzz_path, err, sizeof(err));
		if (users != NULL)
			ra_auth_basic_check(users, header, user, sizeof(user));
		ra_users_free(users);
	}
	ra_auth_basic_check(fuzz_table, header, user, sizeof(user));
	free(header);
	return 0;
}
