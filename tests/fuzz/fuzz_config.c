/*
 * fuzz_config.c: configuration files through ra_config_load() (strict
 * JSON checks and error positions, then every section down to the files
 * it names) and ra_config_locate() on the same text.
 *
 * The loader resolves the paths of a configuration against its directory
 * and opens them, so the text is written to DIR/conf/estrad.json of a
 * fixed tree made once, at the first input, in $TMPDIR (else /tmp) and
 * removed at exit (fuzz_pki.h):
 *
 *   DIR/certs/  every file conf/estrad.json names (one self-signed P-256
 *               CA as server, trust anchor and issuing CA; a users file)
 *   DIR/logs/, DIR/var/pending/
 *
 * so that the shipped configuration loads and mutations of it reach the
 * TLS, users, pending and label checks.  Per input only that one file is
 * rewritten in place.  A fuzzed configuration may name any directory for
 * its logs or pending store, and the loader creates missing ones: mkdir()
 * is replaced below so that nothing is created outside DIR.  Listen
 * addresses are resolved with getaddrinfo(), replaced too so that a
 * mutated host name is never looked up in the DNS (numeric hosts and
 * "localhost" only).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fuzz_pki.h"
#include "ra/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fz_dir = "";
static char fz_conf[192];
static int fz_fd = -1;
static int fz_verbose;

/*
 * The loader's mkdir(): only below fz_dir, never through "..", so that a
 * fuzzed "pending": {"dir": "/x/y"} creates nothing elsewhere.
 */
int
mkdir(const char *path, mode_t mode)
{
	size_t n = strlen(fz_dir);
	struct stat st;

	/* What exists is reported as mkdir(2) would. */
	if (stat(path, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	/* Before the tree is made, libFuzzer's own mkdir() calls pass. */
	if (n > 0 && (strncmp(path, fz_dir, n) != 0 || path[n] != '/' ||
	              strstr(path, "/..") != NULL)) {
		errno = EACCES;
		return -1;
	}
	return (int)syscall(SYS_mkdir, path, mode);
}

/* The loader's getaddrinfo(): no DNS. */
int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
            struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *,
	                   struct addrinfo **);
	struct addrinfo h;

	if (real == NULL &&
	    (*(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo")) == NULL)
		return EAI_FAIL;
	memset(&h, 0, sizeof(h));
	if (hints != NULL)
		h = *hints;
	if (node != NULL && strcmp(node, "localhost") != 0)
		h.ai_flags |= AI_NUMERICHOST;
	return real(node, service, &h, res);
}

/* Links DIR/certs/name to the CA file target (ca.pem or ca.key). */
static void
fz_link(const char *name, const char *target)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/certs/%s", fz_dir, name);
	if (symlink(target, path) != 0)
		fuzz_pki_die(path);
}

static void
fz_setup(void)
{
	static const char *const dirs[] = {"conf", "certs", "logs", "var",
	                                   "var/pending"};
	static const char *const pems[] = {"server.pem", "ca-chain.pem",
	                                   "manufacturer-ca.pem",
	                                   "issuing-ca.pem"};
	char path[160];
	size_t i;

	if (fz_fd >= 0)
		return;
	fz_verbose = getenv("FUZZ_CONFIG_VERBOSE") != NULL;
	fz_dir = fuzz_pki_mkdtemp("fuzz_config");
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", fz_dir, dirs[i]);
		if (mkdir(path, 0700) != 0)
			fuzz_pki_die(path);
	}
	snprintf(path, sizeof(path), "%s/certs", fz_dir);
	fuzz_pki_make(path);
	for (i = 0; i < sizeof(pems) / sizeof(pems[0]); i++)
		fz_link(pems[i], "ca.pem");
	fz_link("server.key", "ca.key");
	fz_link("issuing-ca.key", "ca.key");
	/* sha512-crypt of "secret" with the fewest rounds. */
	fuzz_pki_write_file(path, "users.htpasswd",
	                    "alice:$6$rounds=1000$saltsalt$LAV5VE5Y7w1d73x1mF"
	                    "NspYWUpazfmwv2SoepNXNKJ/otop/Zok96Hr8Q13LEv0DRY/x"
	                    "8v0/crpIjl8NJSAqXV/\n");
	snprintf(fz_conf, sizeof(fz_conf), "%s/conf/estrad.json", fz_dir);
	if ((fz_fd = open(fz_conf, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
	                  0600)) < 0)
		fuzz_pki_die(fz_conf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ra_config *config;
	char err[1024];
	int line, col;

	fz_setup();
	ra_config_locate((const char *)data, size, "labels.default.ca.cert", 0,
	                 &line, &col);
	ra_config_locate((const char *)data, size, "tls.0", 1, &line, &col);
	/* Written over, then cut to size: truncating to zero would make
	 * ext4 flush the file at its next close (auto_da_alloc), a disk
	 * write per input. */
	if (pwrite(fz_fd, data, size, 0) == (ssize_t)size &&
	    ftruncate(fz_fd, (off_t)size) == 0) {
		config = ra_config_load(fz_conf, err, sizeof(err));
		if (fz_verbose)
			fprintf(stderr, "fuzz_config: %s\n",
			        config != NULL ? "loaded" : err);
		ra_config_free(config);
	}
	return 0;
}
