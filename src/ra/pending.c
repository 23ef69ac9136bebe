/*
 * pending.c: pending-enrollment records and the default store, one JSON
 * file per record in a state directory, written durably.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "ca_plugins/ca.h"
#include "ra/log.h"
#include "ra/pending.h"
#include "ra/safedir.h"

/* A record file is small; anything larger is not ours. */
#define RA_PENDING_FILE_MAX (256 * 1024)

static const char *const ra_pending_state_names[RA_PENDING_STATE__MAX] = {
    "at_ca",
    "in_flight",
    "issued",
    "rejected",
};

const char *
ra_pending_state_name(enum ra_pending_state state)
{
	if ((unsigned int)state >= RA_PENDING_STATE__MAX)
		return "unknown";
	return ra_pending_state_names[state];
}

void
ra_pending_record_cleanup(struct ra_pending_record *record)
{
	if (record == NULL)
		return;
	free(record->certs_pem);
	record->certs_pem = NULL;
}

int
ra_pending_key(const char *label, const char *identity, X509_REQ *csr,
               char key[RA_PENDING_KEY_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE], *spki = NULL;
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	int len, rc = -1;

	key[0] = '\0';
	if ((len = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(csr), &spki)) <= 0)
		goto out;
	/* NUL separators keep ("ab", "c") and ("a", "bc") apart. */
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, ca_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, label, strlen(label) + 1) != 1 ||
	    EVP_DigestUpdate(ctx, identity, strlen(identity) + 1) != 1 ||
	    EVP_DigestUpdate(ctx, spki, (size_t)len) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		goto out;
	ca_hex_encode(md, mdlen, key, RA_PENDING_KEY_MAX);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(spki);
	ERR_clear_error();
	return rc;
}

char *
ra_pending_certs_to_pem(STACK_OF(X509) *certs)
{
	BIO *bio = NULL;
	char *pem = NULL, *data;
	long len;
	int i;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(certs); i++)
		if (PEM_write_bio_X509(bio, sk_X509_value(certs, i)) != 1)
			goto out;
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0 || (pem = malloc((size_t)len + 1)) == NULL)
		goto out;
	memcpy(pem, data, (size_t)len);
	pem[len] = '\0';
out:
	BIO_free(bio);
	return pem;
}

STACK_OF(X509) *
ra_pending_certs_from_pem(const char *pem)
{
	STACK_OF(X509) *certs;
	BIO *bio = BIO_new_mem_buf(pem, -1);

	certs = ca_certs_read_pem(bio, 0, NULL);
	ERR_clear_error();
	BIO_free(bio);
	return certs;
}

char *
ra_pending_record_format(const struct ra_pending_record *r)
{
	json_t *obj;
	char *text = NULL;

	obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:I, "
	                "s:I, s:I}",
	                "key", r->key, "state", ra_pending_state_name(r->state),
	                "label", r->label, "identity", r->identity, "first_rid",
	                r->first_rid, "cookie", r->cookie, "reason", r->reason,
	                "status", r->status, "retry_after", (int)r->retry_after,
	                "pid", (json_int_t)r->pid, "created",
	                (json_int_t)r->created, "expires",
	                (json_int_t)r->expires);
	if (obj == NULL)
		return NULL;
	if (r->certs_pem != NULL &&
	    json_object_set_new(obj, "certs", json_string(r->certs_pem)) != 0)
		goto out;
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(obj);
	return text;
}

/* Copies a string member into buf (size len); oversized is an error. */
static int
ra_pending_copy(const json_t *value, const char *name, char *buf, size_t len,
                char *err, size_t errlen)
{
	const char *s = json_string_value(value);
	size_t n;

	if (s == NULL) {
		snprintf(err, errlen, "\"%s\" is not a string", name);
		return -1;
	}
	n = json_string_length(value);
	if (n >= len || memchr(s, '\0', n) != NULL) {
		snprintf(err, errlen, "\"%s\" is too long or holds NUL", name);
		return -1;
	}
	memcpy(buf, s, n + 1);
	return 0;
}

static int
ra_pending_number(const json_t *value, const char *name, json_int_t min,
                  json_int_t max, json_int_t *out, char *err, size_t errlen)
{
	if (!json_is_integer(value) || json_integer_value(value) < min ||
	    json_integer_value(value) > max) {
		snprintf(err, errlen, "\"%s\" is not an integer in %lld..%lld",
		         name, (long long)min, (long long)max);
		return -1;
	}
	*out = json_integer_value(value);
	return 0;
}

int
ra_pending_record_parse(const char *text, size_t len,
                        struct ra_pending_record *r, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *obj = NULL, *value;
	const char *name;
	json_int_t n;
	char state[16];
	int i, rc = -1, seen_state = 0;

	memset(r, 0, sizeof(*r));
	obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL || !json_is_object(obj)) {
		snprintf(err, errlen, "not a JSON object: %s",
		         obj == NULL ? jerr.text : "wrong type");
		goto out;
	}
	json_object_foreach(obj, name, value)
	{
		if (strcmp(name, "key") == 0) {
			if (ra_pending_copy(value, name, r->key, sizeof(r->key),
			                    err, errlen) != 0)
				goto out;
		} else if (strcmp(name, "state") == 0) {
			if (ra_pending_copy(value, name, state, sizeof(state),
			                    err, errlen) != 0)
				goto out;
			for (i = 0; i < RA_PENDING_STATE__MAX; i++)
				if (strcmp(state, ra_pending_state_names[i]) ==
				    0)
					break;
			if (i == RA_PENDING_STATE__MAX) {
				snprintf(err, errlen, "unknown state");
				goto out;
			}
			r->state = (enum ra_pending_state)i;
			seen_state = 1;
		} else if (strcmp(name, "label") == 0) {
			if (ra_pending_copy(value, name, r->label,
			                    sizeof(r->label), err, errlen) != 0)
				goto out;
		} else if (strcmp(name, "identity") == 0) {
			if (ra_pending_copy(value, name, r->identity,
			                    sizeof(r->identity), err,
			                    errlen) != 0)
				goto out;
		} else if (strcmp(name, "first_rid") == 0) {
			if (ra_pending_copy(value, name, r->first_rid,
			                    sizeof(r->first_rid), err,
			                    errlen) != 0)
				goto out;
		} else if (strcmp(name, "cookie") == 0) {
			if (ra_pending_copy(value, name, r->cookie,
			                    sizeof(r->cookie), err,
			                    errlen) != 0)
				goto out;
		} else if (strcmp(name, "reason") == 0) {
			if (ra_pending_copy(value, name, r->reason,
			                    sizeof(r->reason), err,
			                    errlen) != 0)
				goto out;
		} else if (strcmp(name, "status") == 0) {
			if (ra_pending_number(value, name, 0, 599, &n, err,
			                      errlen) != 0)
				goto out;
			r->status = (int)n;
		} else if (strcmp(name, "retry_after") == 0) {
			if (ra_pending_number(value, name, 0, 86400 * 30, &n,
			                      err, errlen) != 0)
				goto out;
			r->retry_after = (unsigned int)n;
		} else if (strcmp(name, "pid") == 0) {
			if (ra_pending_number(value, name, 0, 1L << 30, &n, err,
			                      errlen) != 0)
				goto out;
			r->pid = (long)n;
		} else if (strcmp(name, "created") == 0 ||
		           strcmp(name, "expires") == 0) {
			if (ra_pending_number(value, name, 0,
			                      (json_int_t)1 << 40, &n, err,
			                      errlen) != 0)
				goto out;
			if (name[0] == 'c')
				r->created = (time_t)n;
			else
				r->expires = (time_t)n;
		} else if (strcmp(name, "certs") == 0) {
			if (!json_is_string(value) ||
			    json_string_length(value) > RA_PENDING_FILE_MAX) {
				snprintf(err, errlen,
				         "\"certs\" is not a "
				         "string");
				goto out;
			}
			free(r->certs_pem);
			if ((r->certs_pem = strdup(json_string_value(value))) ==
			    NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
		} else {
			snprintf(err, errlen, "unknown key \"%.64s\"", name);
			goto out;
		}
	}
	if (r->key[0] == '\0' || !seen_state) {
		snprintf(err, errlen, "\"key\" or \"state\" missing");
		goto out;
	}
	if (r->state == RA_PENDING_ISSUED && r->certs_pem == NULL) {
		snprintf(err, errlen, "issued record without \"certs\"");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		ra_pending_record_cleanup(r);
	json_decref(obj);
	return rc;
}

/* The default store: one file per record under dir. */
struct ra_pending_dir {
	struct ra_pending base; /* first: the store is cast to this */
	char *dir;
	int dirfd;
};

/* Keys are hex digests; anything else never reaches the file system. */
static int
ra_pending_key_ok(const char *key)
{
	size_t i;

	for (i = 0; key[i] != '\0'; i++)
		if (!((key[i] >= '0' && key[i] <= '9') ||
		      (key[i] >= 'a' && key[i] <= 'f')))
			return 0;
	return i == RA_PENDING_KEY_MAX - 1;
}

static int
ra_pending_dir_put(struct ra_pending *store,
                   const struct ra_pending_record *record, char *err,
                   size_t errlen)
{
	struct ra_pending_dir *d = (struct ra_pending_dir *)store;
	char tmp[RA_PENDING_KEY_MAX + 32], name[RA_PENDING_KEY_MAX + 8];
	char rnd_hex[17], *text = NULL;
	unsigned char rnd[8];
	size_t len, off = 0;
	int fd = -1, rc = -1;

	tmp[0] = '\0';
	if (!ra_pending_key_ok(record->key)) {
		snprintf(err, errlen, "bad record key");
		goto out;
	}
	if ((text = ra_pending_record_format(record)) == NULL) {
		snprintf(err, errlen, "cannot format record: out of memory");
		goto out;
	}
	len = strlen(text);
	snprintf(name, sizeof(name), "%s.json", record->key);
	/* Write a temporary file, make it durable, then rename it over the
	 * record: a crash leaves the old record or the new one, never half
	 * of one.  The temporary name is random and the file made new, so
	 * that nothing planted under a name known in advance is written
	 * through. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		ERR_clear_error();
		snprintf(err, errlen,
		         "cannot write %s/%s: no random temporary name", d->dir,
		         name);
		goto out;
	}
	ca_hex_encode(rnd, sizeof(rnd), rnd_hex, sizeof(rnd_hex));
	snprintf(tmp, sizeof(tmp), ".%s.%s.tmp", record->key, rnd_hex);
	fd = openat(d->dirfd, tmp,
	            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		tmp[0] = '\0'; /* not ours: never removed */
		goto syserr;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto syserr;
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		goto syserr;
	}
	fd = -1;
	if (renameat(d->dirfd, tmp, d->dirfd, name) != 0)
		goto syserr;
	tmp[0] = '\0';
	if (fsync(d->dirfd) != 0)
		goto syserr;
	rc = 0;
	goto out;
syserr:
	snprintf(err, errlen, "cannot write %s/%s: (%d: %s)", d->dir, name,
	         errno, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (tmp[0] != '\0')
		unlinkat(d->dirfd, tmp, 0);
out:
	free(text);
	return rc;
}

static int
ra_pending_dir_get(struct ra_pending *store, const char *key,
                   struct ra_pending_record *record, char *err, size_t errlen)
{
	struct ra_pending_dir *d = (struct ra_pending_dir *)store;
	char name[RA_PENDING_KEY_MAX + 8], *text = NULL, why[256];
	struct stat st;
	size_t off = 0;
	int fd = -1, rc = -1;

	memset(record, 0, sizeof(*record));
	if (!ra_pending_key_ok(key)) {
		snprintf(err, errlen, "bad record key");
		goto out;
	}
	snprintf(name, sizeof(name), "%s.json", key);
	/* Never through a link, and without waiting on a FIFO: a record is
	 * a regular file of this directory or nothing. */
	fd = openat(d->dirfd, name,
	            O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			rc = 0;
		else if (errno == ELOOP)
			snprintf(err, errlen,
			         "%s/%s: a symbolic link, not a record file",
			         d->dir, name);
		else
			snprintf(err, errlen, "cannot read %s/%s: (%d: %s)",
			         d->dir, name, errno, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > RA_PENDING_FILE_MAX) {
		snprintf(err, errlen, "%s/%s: not a record file", d->dir, name);
		goto out;
	}
	if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, text + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (ra_pending_record_parse(text, off, record, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s/%s: bad record: %s", d->dir, name,
		         why);
		goto out;
	}
	if (strcmp(record->key, key) != 0) {
		ra_pending_record_cleanup(record);
		snprintf(err, errlen, "%s/%s: record key does not match",
		         d->dir, name);
		goto out;
	}
	rc = 1;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return rc;
}

static int
ra_pending_dir_remove(struct ra_pending *store, const char *key, char *err,
                      size_t errlen)
{
	struct ra_pending_dir *d = (struct ra_pending_dir *)store;
	char name[RA_PENDING_KEY_MAX + 8];

	if (!ra_pending_key_ok(key)) {
		snprintf(err, errlen, "bad record key");
		return -1;
	}
	snprintf(name, sizeof(name), "%s.json", key);
	if (unlinkat(d->dirfd, name, 0) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove %s/%s: (%d: %s)", d->dir,
		         name, errno, strerror(errno));
		return -1;
	}
	return 0;
}

static int
ra_pending_dir_expire(struct ra_pending *store, time_t now, char *err,
                      size_t errlen)
{
	struct ra_pending_dir *d = (struct ra_pending_dir *)store;
	struct ra_pending_record record;
	struct dirent *entry;
	char key[RA_PENDING_KEY_MAX], why[512];
	DIR *dir = NULL;
	int fd, removed = 0;

	if ((fd = openat(d->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) <
	        0 ||
	    (dir = fdopendir(fd)) == NULL) {
		snprintf(err, errlen, "cannot list %s: (%d: %s)", d->dir, errno,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((entry = readdir(dir)) != NULL) {
		size_t n = strlen(entry->d_name);

		if (n != RA_PENDING_KEY_MAX - 1 + 5 ||
		    strcmp(entry->d_name + n - 5, ".json") != 0)
			continue;
		memcpy(key, entry->d_name, RA_PENDING_KEY_MAX - 1);
		key[RA_PENDING_KEY_MAX - 1] = '\0';
		if (ra_pending_dir_get(store, key, &record, why, sizeof(why)) !=
		    1)
			continue;
		if (record.expires <= now &&
		    ra_pending_dir_remove(store, key, why, sizeof(why)) == 0) {
			ra_log(CA_LOG_WARN, "ra.pending",
			       &(struct ra_log_context){.rid = record.first_rid,
			                                .identity =
			                                    record.identity,
			                                .label = record.label},
			       "the client did not come back before the "
			       "pending lifetime ended",
			       "pending request expired: state %s, cookie %s",
			       ra_pending_state_name(record.state),
			       record.cookie[0] != '\0' ? record.cookie : "-");
			removed++;
		}
		ra_pending_record_cleanup(&record);
	}
	closedir(dir);
	return removed;
}

static void
ra_pending_dir_close(struct ra_pending *store)
{
	struct ra_pending_dir *d = (struct ra_pending_dir *)store;

	if (d->dirfd >= 0)
		close(d->dirfd);
	free(d->dir);
	free(d);
}

static const struct ra_pending_ops ra_pending_dir_ops = {
    "dir",                 /* name */
    ra_pending_dir_put,    /* put */
    ra_pending_dir_get,    /* get */
    ra_pending_dir_remove, /* remove */
    ra_pending_dir_expire, /* expire */
    ra_pending_dir_close,  /* close */
};

/*
 * Creates dir and any missing parents (mode 0700), so that a fresh
 * checkout's "../var/pending" works.  estrad, started as root, gives what
 * it creates to uid, the user it is going to run as.  Returns 0 or -1
 * with errno set.
 */
static int
ra_pending_mkdirs(const char *dir, uid_t uid)
{
	char path[4096];
	size_t i, len = strlen(dir);

	if (len == 0 || len >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) == 0) {
			if (uid != geteuid() &&
			    fchownat(AT_FDCWD, path, uid, (gid_t)-1,
			             AT_SYMLINK_NOFOLLOW) != 0)
				return -1;
		} else if (errno != EEXIST) {
			return -1;
		}
		path[i] = dir[i];
	}
	return 0;
}

/* Says whether uid can create files in the directory open on dirfd. */
static int
ra_pending_dir_writable(int dirfd, uid_t uid)
{
	struct stat st;

	/* As itself; this also sees a read-only file system. */
	if (faccessat(dirfd, ".", W_OK | X_OK, AT_EACCESS) != 0)
		return 0;
	if (uid == geteuid())
		return 1;
	/* As the user estrad drops to, from the mode bits alone: the
	 * directory is neither group- nor world-writable by now. */
	if (fstat(dirfd, &st) == 0 && st.st_uid == uid &&
	    (st.st_mode & (S_IWUSR | S_IXUSR)) == (S_IWUSR | S_IXUSR))
		return 1;
	errno = EACCES;
	return 0;
}

struct ra_pending *
ra_pending_open_dir(const char *dir, const struct ra_pending_params *params,
                    char *err, size_t errlen)
{
	struct ra_pending_dir *d = NULL;
	struct ra_pending *rc = NULL;

	if (ra_pending_mkdirs(dir, params->uid) != 0) {
		snprintf(err, errlen, "cannot create %s: (%d: %s)", dir, errno,
		         strerror(errno));
		goto out;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	d->dirfd = -1;
	if ((d->dir = strdup(dir)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((d->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot open %s: (%d: %s)", dir, errno,
		         strerror(errno));
		goto out;
	}
	/* The directory open from now on is the one checked here. */
	if (ra_safedir_check(d->dirfd, dir, params->uid, err, errlen) != 0)
		goto out;
	if (!ra_pending_dir_writable(d->dirfd, params->uid)) {
		snprintf(err, errlen,
		         "%s is not a directory estrad's user (uid %u) can "
		         "write: (%d: %s)",
		         dir, (unsigned int)params->uid, errno,
		         strerror(errno));
		goto out;
	}
	d->base.ops = &ra_pending_dir_ops;
	d->base.lifetime = params->lifetime;
	rc = &d->base;
	d = NULL;
out:
	if (d != NULL)
		ra_pending_dir_close(&d->base);
	return rc;
}

void
ra_pending_close(struct ra_pending *store)
{
	if (store != NULL)
		store->ops->close(store);
}
