/*
 * auth_basic.c: HTTP Basic authentication (RFC 7617) against an htpasswd
 * file of crypt(3) hashes.  The table is read-only once loaded, so worker
 * threads share it without locks; every check brings its own crypt_data.
 */
#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/base64.h"
#include "core/log.h"
#include "core/offload.h"
#include "ra/auth_basic.h"
#include "ra/log.h"

/* Longest line of the users file, newline included. */
#define RA_USERS_LINE_MAX 4096

/* Most users one file may hold. */
#define RA_USERS_MAX 100000

/*
 * Longest base64 credential accepted in an Authorization header.  It
 * decodes to at most 3 KiB of "user:password", far more than any real
 * client sends, and bounds the buffers on the stack.
 */
#define RA_BASIC_B64_MAX 4096

struct ra_user {
	char *name;  /* owned */
	char *hash;  /* owned; a crypt(3) hash */
	size_t line; /* where it was defined, for duplicate reports */
};

struct ra_users {
	struct ra_user *users; /* sorted by name for bsearch; owned */
	size_t count;
	/* A copy of the first user's hash in file order, run through crypt_r
	 * for unknown users so that they cost the same as known ones. */
	char *dummy_hash;
	/* The table this one replaced, kept until the slot is freed. */
	struct ra_users *retired;
	/* Unique per load, so a cached success never outlives its file even
	 * if a later table is allocated at the same address. */
	unsigned long generation;
};

static unsigned long ra_users_generation;

struct ra_users_slot {
	/* Written with release order by the reloading thread, read with
	 * acquire order by workers: a reader sees a fully built table. */
	struct ra_users *current;
};

/*
 * The hash prefixes libxcrypt verifies that are not broken: bcrypt,
 * sha256-crypt, sha512-crypt, yescrypt, scrypt and gost-yescrypt.
 */
static const char *const ra_users_prefixes[] = {
    "$2b$", "$2y$", "$2a$", "$5$", "$6$", "$y$", "$7$", "$gy$",
};

static int
ra_user_cmp(const void *a, const void *b)
{
	const struct ra_user *ua = a, *ub = b;
	int c;

	if ((c = strcmp(ua->name, ub->name)) != 0)
		return c;
	/* Equal names sort by line so that duplicates report the later one
	 * against the first. */
	return ua->line < ub->line ? -1 : ua->line > ub->line;
}

static int
ra_user_find_cmp(const void *key, const void *elem)
{
	const struct ra_user *u = elem;

	return strcmp(key, u->name);
}

static int
ra_users_hash_known(const char *hash)
{
	size_t i;

	for (i = 0;
	     i < sizeof(ra_users_prefixes) / sizeof(ra_users_prefixes[0]); i++)
		if (strncmp(hash, ra_users_prefixes[i],
		            strlen(ra_users_prefixes[i])) == 0)
			return 1;
	return 0;
}

/*
 * Work limits of a users-file hash.  crypt(3) takes its cost from the hash
 * itself, and every Basic check runs it (an unknown user runs the first
 * user's hash), so one line like "$2b$31$..." or "$6$rounds=999999999$"
 * made each check hold a worker for days, and a yescrypt N of 2^40 asked
 * for terabytes; fuzz_htpasswd timed out on such lines.  The limits are
 * far above what the usual tools write (bcrypt cost 5 to 12, sha-crypt
 * 5,000 to 656,000 rounds, yescrypt from crypt_gensalt at most 1 GiB):
 * about a second per check.
 */
#define RA_USERS_SHA_ROUNDS_MAX  1000000UL
#define RA_USERS_BCRYPT_COST_MAX 14
/* N * r * p * (t + 1) of scrypt and yescrypt: 128 bytes each, 1 GiB. */
#define RA_USERS_SCRYPT_WORK_MAX (1ULL << 23)

/* The crypt(3) base64 digit value of c, or 64 when c is none. */
static unsigned int
ra_users_atoi64(unsigned char c)
{
	if (c == '.' || c == '/')
		return c == '.' ? 0 : 1;
	if (c >= '0' && c <= '9')
		return c - '0' + 2;
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 12;
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 38;
	return 64;
}

/*
 * Reads one variable-length number of a yescrypt setting as libxcrypt's
 * decode64_uint32() does.  Returns the position after it, or NULL.
 */
static const char *
ra_users_y_number(const char *s, unsigned long long min,
                  unsigned long long *out)
{
	unsigned int start = 0, end = 47, chars = 1, bits = 0, c;
	unsigned long long v = min;

	if ((c = ra_users_atoi64((unsigned char)*s++)) > 63)
		return NULL;
	while (c > end) {
		v += (unsigned long long)(end + 1 - start) << bits;
		start = end + 1;
		end = start + (62 - end) / 2;
		chars++;
		bits += 6;
	}
	v += (unsigned long long)(c - start) << bits;
	while (--chars) {
		if ((c = ra_users_atoi64((unsigned char)*s++)) > 63)
			return NULL;
		bits -= 6;
		v += (unsigned long long)c << bits;
	}
	*out = v;
	return s;
}

/* a * b, saturated at RA_USERS_SCRYPT_WORK_MAX + 1. */
static unsigned long long
ra_users_work_mul(unsigned long long a, unsigned long long b)
{
	const unsigned long long over = RA_USERS_SCRYPT_WORK_MAX + 1;

	if (a == 0 || b == 0)
		return 0;
	return a > over / b ? over : a * b;
}

/*
 * Says whether the cost a hash asks of crypt(3) is within the limits
 * above.  Parameters libxcrypt would refuse anyway pass here: crypt_r then
 * fails at once.  Returns 0, or -1 with the reason in why (size len).
 */
static int
ra_users_hash_cost_check(const char *hash, char *why, size_t len)
{
	unsigned long long n = 0, r = 0, p = 1, t = 0, have = 0, v, work;
	unsigned long rounds;
	const char *s;
	unsigned int i;

	if (strncmp(hash, "$5$rounds=", 10) == 0 ||
	    strncmp(hash, "$6$rounds=", 10) == 0) {
		/* Up to ten digits; libxcrypt clamps bigger counts to
		 * 999,999,999, which is over the limit as well. */
		for (i = 0; hash[10 + i] >= '0' && hash[10 + i] <= '9'; i++)
			;
		rounds = strtoul(hash + 10, NULL, 10);
		if (i > 10 || rounds > RA_USERS_SHA_ROUNDS_MAX) {
			snprintf(why, len,
			         "password hash too costly (sha-crypt rounds "
			         "at most %lu)",
			         RA_USERS_SHA_ROUNDS_MAX);
			return -1;
		}
		return 0;
	}
	if (strncmp(hash, "$2", 2) == 0) {
		/* "$2b$CC$": the cost is log2 of the rounds. */
		if (hash[4] >= '0' && hash[4] <= '9' && hash[5] >= '0' &&
		    hash[5] <= '9' &&
		    (hash[4] - '0') * 10 + (hash[5] - '0') >
		        RA_USERS_BCRYPT_COST_MAX) {
			snprintf(why, len,
			         "password hash too costly (bcrypt cost at "
			         "most %d)",
			         RA_USERS_BCRYPT_COST_MAX);
			return -1;
		}
		return 0;
	}
	if (strncmp(hash, "$7$", 3) == 0) {
		/* scrypt: N as log2, then r and p as 30-bit numbers. */
		s = hash + 3;
		if ((v = ra_users_atoi64((unsigned char)*s++)) > 63)
			return 0;
		n = 1ULL << v;
		r = p = 0;
		for (i = 0; i < 10; i++) {
			if ((v = ra_users_atoi64((unsigned char)*s++)) > 63)
				return 0;
			if (i < 5)
				r |= v << (6 * i);
			else
				p |= v << (6 * (i - 5));
		}
	} else if (strncmp(hash, "$y$", 3) == 0 ||
	           strncmp(hash, "$gy$", 4) == 0) {
		/* yescrypt: flavor, log2 N, r, then optionally a bit set
		 * saying which of p, t, g and NROM follow. */
		s = hash + (hash[1] == 'y' ? 3 : 4);
		if ((s = ra_users_y_number(s, 0, &v)) == NULL ||
		    (s = ra_users_y_number(s, 1, &v)) == NULL)
			return 0;
		n = v > 63 ? RA_USERS_SCRYPT_WORK_MAX + 1 : 1ULL << v;
		if ((s = ra_users_y_number(s, 1, &r)) == NULL)
			return 0;
		if (*s != '$' && (s = ra_users_y_number(s, 1, &have)) == NULL)
			return 0;
		if ((have & 1) && (s = ra_users_y_number(s, 2, &p)) == NULL)
			return 0;
		if ((have & 2) && ra_users_y_number(s, 1, &t) == NULL)
			return 0;
		/* g (upgrades) and a ROM are never written by crypt_gensalt
		 * and multiply the work: refused. */
		if (have & 12)
			n = RA_USERS_SCRYPT_WORK_MAX + 1;
	} else {
		return 0;
	}
	work = ra_users_work_mul(ra_users_work_mul(ra_users_work_mul(n, r), p),
	                         t + 1);
	if (work > RA_USERS_SCRYPT_WORK_MAX) {
		snprintf(why, len,
		         "password hash too costly (scrypt/yescrypt N*r*p at "
		         "most 2^23, 1 GiB)");
		return -1;
	}
	return 0;
}

/*
 * Checks the hash field of one line.  Returns 0, or -1 with the reason in
 * why (size len); the reason never quotes the field, which may be a plain
 * text password.
 */
static int
ra_users_hash_check(const char *hash, char *why, size_t len)
{
	const unsigned char *p;
	int dollars = 0, rc = -1;

	if (hash[0] == '\0') {
		snprintf(why, len, "empty password hash");
		goto out;
	}
	if (hash[0] != '$' && hash[0] != '{') {
		snprintf(
		    why, len,
		    "password is not a crypt(3) hash (plain text is refused)");
		goto out;
	}
	if (!ra_users_hash_known(hash)) {
		snprintf(why, len,
		         "unsupported hash scheme (use bcrypt $2b$, yescrypt "
		         "$y$, sha512-crypt $6$ or sha256-crypt $5$, e.g. from "
		         "mkpasswd or htpasswd -B)");
		goto out;
	}
	for (p = (const unsigned char *)hash; *p != '\0'; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == ':') {
			snprintf(
			    why, len,
			    "password hash holds a byte no crypt(3) hash has");
			goto out;
		}
	}
	/* Every supported scheme has at least "$ID$SALT$DIGEST" (bcrypt
	 * "$2b$COST$SALTDIGEST"); a hash cut short could never match. */
	for (p = (const unsigned char *)hash; *p != '\0'; p++)
		if (*p == '$')
			dollars++;
	if (dollars < 3 || strrchr(hash, '$')[1] == '\0' ||
	    crypt_checksalt(hash) == CRYPT_SALT_INVALID) {
		snprintf(why, len, "malformed password hash");
		goto out;
	}
	if (ra_users_hash_cost_check(hash, why, len) != 0)
		goto out;
	rc = 0;
out:
	return rc;
}

static int
ra_users_name_check(const char *name, char *why, size_t len)
{
	const unsigned char *p;
	int rc = -1;

	if (name[0] == '\0') {
		snprintf(why, len, "empty user name");
		goto out;
	}
	if (strlen(name) > RA_BASIC_USER_MAX) {
		snprintf(why, len, "user name longer than %d bytes",
		         RA_BASIC_USER_MAX);
		goto out;
	}
	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(why, len, "user name holds a control byte");
			goto out;
		}
	}
	rc = 0;
out:
	return rc;
}

/*
 * Parses one line (newline and trailing white space already removed) into
 * users, growing it as needed.  Returns 0, or -1 with "FILE:LINE: reason"
 * in err.
 */
static int
ra_users_add_line(struct ra_users *users, size_t *cap, char *line,
                  const char *path, size_t lineno, char *err, size_t errlen)
{
	struct ra_user *u;
	char why[256];
	char *colon;
	int rc = -1;

	if ((colon = strchr(line, ':')) == NULL) {
		snprintf(err, errlen, "%s:%zu: not a \"user:hash\" line", path,
		         lineno);
		goto out;
	}
	*colon = '\0';
	if (ra_users_name_check(line, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
		goto out;
	}
	if (ra_users_hash_check(colon + 1, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s:%zu: user %s: %s", path, lineno, line,
		         why);
		goto out;
	}
	if (users->count >= RA_USERS_MAX) {
		snprintf(err, errlen, "%s:%zu: too many users (at most %d)",
		         path, lineno, RA_USERS_MAX);
		goto out;
	}
	if (users->count == *cap) {
		size_t ncap = *cap == 0 ? 16 : *cap * 2;
		struct ra_user *n;

		if ((n = reallocarray(users->users, ncap, sizeof(*n))) ==
		    NULL) {
			snprintf(err, errlen, "%s:%zu: out of memory", path,
			         lineno);
			goto out;
		}
		users->users = n;
		*cap = ncap;
	}
	u = &users->users[users->count];
	u->name = strdup(line);
	u->hash = strdup(colon + 1);
	u->line = lineno;
	if (u->name == NULL || u->hash == NULL) {
		free(u->name);
		free(u->hash);
		snprintf(err, errlen, "%s:%zu: out of memory", path, lineno);
		goto out;
	}
	users->count++;
	rc = 0;
out:
	return rc;
}

/*
 * Reads one line of fp into buf (size size), without its newline and
 * NUL-terminated.  Returns 1 for a line, 0 at end of file, -1 when the line
 * does not fit, -2 for a NUL byte in it, -3 for a read error.
 */
static int
ra_users_read_line(FILE *fp, char *buf, size_t size, size_t *len)
{
	size_t n = 0;
	int c, rc = -1;

	while ((c = getc(fp)) != EOF && c != '\n') {
		if (c == '\0') {
			rc = -2;
			goto out;
		}
		if (n + 1 >= size)
			goto out;
		buf[n++] = (char)c;
	}
	if (c == EOF && ferror(fp)) {
		rc = -3;
		goto out;
	}
	buf[n] = '\0';
	*len = n;
	rc = c == EOF && n == 0 ? 0 : 1;
out:
	return rc;
}

/*
 * Finds the first duplicate name in file order in the sorted table.
 * Returns 0 when names are unique, or -1 with the message in err.
 */
static int
ra_users_check_unique(const struct ra_users *users, const char *path, char *err,
                      size_t errlen)
{
	size_t i, dup = 0, first;
	int rc = -1;

	/* Sorted by name then line, a redefinition sits right after the
	 * first definition; report the one that comes first in the file. */
	for (i = 1; i < users->count; i++)
		if (strcmp(users->users[i - 1].name, users->users[i].name) ==
		        0 &&
		    (dup == 0 || users->users[i].line < users->users[dup].line))
			dup = i;
	if (dup != 0) {
		first = dup - 1;
		while (first > 0 && strcmp(users->users[first - 1].name,
		                           users->users[dup].name) == 0)
			first--;
		snprintf(
		    err, errlen,
		    "%s:%zu: user %s: duplicate (first defined on line %zu)",
		    path, users->users[dup].line, users->users[dup].name,
		    users->users[first].line);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

struct ra_users *
ra_users_load(const char *path, char *err, size_t errlen)
{
	struct ra_users *users = NULL, *rc = NULL;
	char line[RA_USERS_LINE_MAX];
	size_t cap = 0, lineno = 0, len;
	FILE *fp = NULL;
	int r;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((users = calloc(1, sizeof(*users))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	users->generation =
	    __atomic_add_fetch(&ra_users_generation, 1, __ATOMIC_RELAXED);
	while ((r = ra_users_read_line(fp, line, sizeof(line), &len)) != 0) {
		lineno++;
		if (r == -1) {
			snprintf(err, errlen,
			         "%s:%zu: line longer than %d bytes", path,
			         lineno, RA_USERS_LINE_MAX - 1);
			goto out;
		}
		if (r == -2) {
			snprintf(err, errlen, "%s:%zu: NUL byte in line", path,
			         lineno);
			goto out;
		}
		if (r == -3) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno,
			         strerror(errno));
			goto out;
		}
		/* Editors leave CR and trailing blanks; no hash ends in
		 * white space, so dropping them loses nothing. */
		while (len > 0 &&
		       (line[len - 1] == '\r' || line[len - 1] == ' ' ||
		        line[len - 1] == '\t'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (ra_users_add_line(users, &cap, line, path, lineno, err,
		                      errlen) != 0)
			goto out;
	}
	if (users->count > 0) {
		if ((users->dummy_hash = strdup(users->users[0].hash)) ==
		    NULL) {
			snprintf(err, errlen, "%s: out of memory", path);
			goto out;
		}
		qsort(users->users, users->count, sizeof(*users->users),
		      ra_user_cmp);
	}
	if (ra_users_check_unique(users, path, err, errlen) != 0)
		goto out;
	rc = users;
	users = NULL;
out:
	if (fp != NULL)
		fclose(fp);
	OPENSSL_cleanse(line, sizeof(line));
	ra_users_free(users);
	return rc;
}

void
ra_users_free(struct ra_users *users)
{
	size_t i;

	if (users == NULL)
		return;
	for (i = 0; i < users->count; i++) {
		free(users->users[i].name);
		free(users->users[i].hash);
	}
	free(users->users);
	free(users->dummy_hash);
	free(users);
}

size_t
ra_users_count(const struct ra_users *users)
{
	return users != NULL ? users->count : 0;
}

/*
 * Decodes the base64 credential b64 (len bytes, no white space) into out
 * (size outlen), tolerating missing '=' padding.  Returns the decoded
 * length or -1.
 */
static int
ra_basic_decode(const char *b64, size_t len, unsigned char *out, size_t outlen)
{
	unsigned char decoded[CORE_BASE64_DECODED_MAX(RA_BASIC_B64_MAX)];
	long n = -1;

	if (len <= RA_BASIC_B64_MAX &&
	    (n = core_base64_decode(b64, 0, len, 0, decoded, sizeof(decoded),
	                            NULL, 0)) >= 0) {
		if ((size_t)n > outlen)
			n = -1;
		else
			memcpy(out, decoded, (size_t)n);
	}
	OPENSSL_cleanse(decoded, sizeof(decoded));
	return (int)n;
}

/*
 * Copies the user name as it came, for the logs, whose writer escapes
 * every byte that needs it: a name is recorded whole or (too long for
 * user, or holding a NUL, which ends it) not at all.
 */
static void
ra_basic_copy_user(char *user, size_t userlen, const unsigned char *name,
                   size_t len)
{
	if (user == NULL || userlen == 0 || len > userlen - 1 ||
	    memchr(name, '\0', len) != NULL)
		return;
	memcpy(user, name, len);
	user[len] = '\0';
}

/*
 * Runs password through crypt_r with setting and says whether the result
 * equals setting.  Fails closed when memory or the hash method fails.
 */
static int
ra_basic_crypt_matches(const char *password, const char *setting)
{
	struct crypt_data *cd;
	size_t hlen, slen;
	const char *h;
	int rc = 0;

	/* struct crypt_data is about 32 KiB: too large for the stacks of
	 * worker threads, so it lives on the heap. */
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		goto out;
	if ((h = crypt_r(password, setting, cd)) == NULL || h[0] == '*')
		goto out;
	hlen = strlen(h);
	slen = strlen(setting);
	if (hlen != slen)
		goto out;
	rc = CRYPTO_memcmp(h, setting, hlen) == 0;
out:
	if (cd != NULL) {
		/* The work area holds state derived from the password. */
		OPENSSL_cleanse(cd, sizeof(*cd));
		free(cd);
	}
	return rc;
}

/*
 * A cache of recent successful checks.  crypt(3) hashes are slow on
 * purpose (sha512-crypt costs about 3 ms, more than all the public-key
 * operations of an enrollment), and a provisioning service sends the same
 * credentials with every request.  Each worker thread keeps the HMAC, under
 * a random per-process key, of the credentials it verified against a given
 * users table; the password itself is never kept.  Failures are never
 * cached, an entry lives RA_BASIC_CACHE_TTL seconds, and a reloaded users
 * file is a new table, so its users are checked afresh.
 */
#define RA_BASIC_CACHE_SIZE 64
#define RA_BASIC_CACHE_TTL  300

/* The MAC that names credentials in the cache and the notes below. */
#define RA_BASIC_MAC_LEN 32

/* One verdict on credentials, in the cache or among the notes below. */
struct ra_basic_slot {
	unsigned long generation; /* of the users table it was checked on */
	unsigned char mac[RA_BASIC_MAC_LEN];
	time_t expires;
	enum ra_basic_result result;
};

static __thread struct ra_basic_slot ra_basic_cache[RA_BASIC_CACHE_SIZE];

/*
 * HMAC-SHA-256 under a random per-process key, keyed once: each MAC is a
 * copy of this context, because OpenSSL 3.0's HMAC() looks HMAC and
 * SHA-256 up by name on every call (2% of a full-handshake enrollment's
 * CPU, make bench).  Copies only read it, so threads share it.  It lives
 * as long as the process; NULL turns the cache off.
 */
static EVP_MAC_CTX *ra_basic_mac_keyed;
static pthread_once_t ra_basic_cache_once = PTHREAD_ONCE_INIT;

static void
ra_basic_cache_init(void)
{
	unsigned char key[32];
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	EVP_MAC *mac = NULL;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	                                             (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (RAND_bytes(key, sizeof(key)) != 1 ||
	    (mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(mac)) == NULL ||
	    EVP_MAC_init(ctx, key, sizeof(key), params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
		/* Without the cache every Basic check runs crypt(3). */
		ra_log(CORE_LOG_WARN, "ra.auth", NULL,
		       "check the OpenSSL installation (default provider)",
		       "Basic password cache off: cannot key HMAC-SHA-256 "
		       "(random bytes or OpenSSL's HMAC unavailable)");
	}
	ra_basic_mac_keyed = ctx;
	EVP_MAC_free(mac);
	OPENSSL_cleanse(key, sizeof(key));
}

/*
 * The MAC of table and credentials into mac; returns mac, or NULL when the
 * cache is off (then nothing is cached or noted).
 */
static const unsigned char *
ra_basic_cache_mac(const struct ra_users *users,
                   const unsigned char *credentials, size_t len,
                   unsigned char mac[RA_BASIC_MAC_LEN])
{
	const unsigned char *rc = NULL;
	EVP_MAC_CTX *ctx = NULL;
	size_t maclen = 0;

	pthread_once(&ra_basic_cache_once, ra_basic_cache_init);
	if (ra_basic_mac_keyed == NULL || len > RA_BASIC_B64_MAX ||
	    (ctx = EVP_MAC_CTX_dup(ra_basic_mac_keyed)) == NULL)
		goto out;
	if (EVP_MAC_update(ctx, (const unsigned char *)&users->generation,
	                   sizeof(users->generation)) != 1 ||
	    EVP_MAC_update(ctx, credentials, len) != 1 ||
	    EVP_MAC_final(ctx, mac, &maclen, RA_BASIC_MAC_LEN) != 1 ||
	    maclen != RA_BASIC_MAC_LEN)
		goto out;
	rc = mac;
out:
	EVP_MAC_CTX_free(ctx);
	return rc;
}

/* Files the verdict on the credentials of mac (NULL: nothing) in table
 * (size slots) for ttl seconds. */
static void
ra_basic_slot_put(struct ra_basic_slot *table, size_t size,
                  const struct ra_users *users, const unsigned char *mac,
                  time_t ttl, enum ra_basic_result result)
{
	struct ra_basic_slot *e;

	if (mac == NULL)
		return;
	e = &table[mac[0] % size];
	e->generation = users->generation;
	memcpy(e->mac, mac, RA_BASIC_MAC_LEN);
	e->expires = time(NULL) + ttl;
	e->result = result;
}

/* The live slot of the credentials of mac in table, or NULL. */
static struct ra_basic_slot *
ra_basic_slot_find(struct ra_basic_slot *table, size_t size,
                   const struct ra_users *users, const unsigned char *mac)
{
	struct ra_basic_slot *e;

	if (mac == NULL)
		return NULL;
	e = &table[mac[0] % size];
	if (e->generation != users->generation || e->expires <= time(NULL) ||
	    CRYPTO_memcmp(e->mac, mac, RA_BASIC_MAC_LEN) != 0)
		return NULL;
	return e;
}

/* Whether the credentials of mac were verified against users lately. */
static int
ra_basic_cache_hit(const struct ra_users *users, const unsigned char *mac)
{
	return ra_basic_slot_find(ra_basic_cache, RA_BASIC_CACHE_SIZE, users,
	                          mac) != NULL;
}

static void
ra_basic_cache_put(const struct ra_users *users, const unsigned char *mac)
{
	ra_basic_slot_put(ra_basic_cache, RA_BASIC_CACHE_SIZE, users, mac,
	                  RA_BASIC_CACHE_TTL, RA_BASIC_OK);
}

/*
 * One-time notes of checks that failed on a helper thread
 * (ra_auth_basic_prefetch()), per worker thread, keyed like the cache: the
 * request that asked is handled again on the same thread and finds its
 * verdict here instead of running crypt(3) on the loop.  A note is used
 * once and lives RA_BASIC_NOTE_TTL seconds; failures are still never
 * cached.
 */
#define RA_BASIC_NOTE_SIZE 64
#define RA_BASIC_NOTE_TTL  30

static __thread struct ra_basic_slot ra_basic_notes[RA_BASIC_NOTE_SIZE];

static void
ra_basic_note_put(const struct ra_users *users, const unsigned char *mac,
                  enum ra_basic_result result)
{
	ra_basic_slot_put(ra_basic_notes, RA_BASIC_NOTE_SIZE, users, mac,
	                  RA_BASIC_NOTE_TTL, result);
}

/* Finds the note of the credentials of mac; take uses it up.  Returns 1
 * with *result, or 0. */
static int
ra_basic_note_find(const struct ra_users *users, const unsigned char *mac,
                   int take, enum ra_basic_result *result)
{
	struct ra_basic_slot *e;

	if ((e = ra_basic_slot_find(ra_basic_notes, RA_BASIC_NOTE_SIZE, users,
	                            mac)) == NULL)
		return 0;
	*result = e->result;
	if (take)
		e->expires = 0;
	return 1;
}

/*
 * Decodes an Authorization value into decoded (size cap) as
 * "user:password" without NUL bytes: *n its length, *colon the colon's
 * offset.  Copies the user name out when it can be decoded.  Returns 0, or
 * -1 when the value is no Basic credentials.
 */
static int
ra_basic_parse(const char *authorization, unsigned char *decoded, size_t cap,
               size_t *n, size_t *colon, char *user, size_t userlen)
{
	const char *p, *b64;
	unsigned char *c;
	size_t len;
	int got;

	if (user != NULL && userlen > 0)
		user[0] = '\0';
	if (authorization == NULL)
		return -1;
	p = authorization;
	while (*p == ' ' || *p == '\t')
		p++;
	/* The scheme is case-insensitive (RFC 7617 §2, RFC 7235 §2.1). */
	if (strncasecmp(p, "Basic", 5) != 0 || (p[5] != ' ' && p[5] != '\t'))
		return -1;
	p += 5;
	while (*p == ' ' || *p == '\t')
		p++;
	b64 = p;
	len = strlen(b64);
	while (len > 0 && (b64[len - 1] == ' ' || b64[len - 1] == '\t'))
		len--;
	if (len == 0 || len > RA_BASIC_B64_MAX)
		return -1;
	if ((got = ra_basic_decode(b64, len, decoded, cap - 1)) < 0)
		return -1;
	decoded[got] = '\0';
	/* No colon: the whole thing may be a password, so nothing of it is
	 * copied out for the logs. */
	if ((c = memchr(decoded, ':', (size_t)got)) == NULL)
		return -1;
	/* No users file holds a longer name (ra_users_name_check()). */
	if ((size_t)(c - decoded) > RA_BASIC_USER_MAX)
		return -1;
	ra_basic_copy_user(user, userlen, decoded, (size_t)(c - decoded));
	/* crypt_r sees C strings: a NUL would cut the password short and
	 * let a prefix of it through. */
	if (memchr(decoded, '\0', (size_t)got) != NULL)
		return -1;
	*n = (size_t)got;
	*colon = (size_t)(c - decoded);
	return 0;
}

/* The user of decoded credentials ("user:password"), or NULL. */
static const struct ra_user *
ra_basic_find(const struct ra_users *users, unsigned char *decoded,
              size_t colon)
{
	const struct ra_user *found = NULL;

	if (users == NULL || users->count == 0)
		return NULL;
	decoded[colon] = '\0';
	found = bsearch(decoded, users->users, users->count,
	                sizeof(*users->users), ra_user_find_cmp);
	decoded[colon] = ':';
	return found;
}

/*
 * Says whether credentials of user name from attempt (NULL: not
 * throttled) may have crypt(3) run now; if not, sets *rc and attempt's
 * retry_after and reason.
 */
static int
ra_basic_may_crypt(struct ra_basic_attempt *attempt, const char *name,
                   enum ra_basic_result *rc)
{
	enum ra_auth_throttle_reason reason;
	unsigned int wait;

	if (attempt == NULL)
		return 1;
	if ((wait = ra_auth_throttle_wait(attempt->client, name, &reason)) >
	    0) {
		*rc = RA_BASIC_THROTTLED;
		attempt->retry_after = wait;
		attempt->reason = reason;
		return 0;
	}
	if (attempt->busy) {
		*rc = RA_BASIC_BUSY;
		attempt->retry_after = 1;
		attempt->reason = RA_THROTTLE_BUSY;
		return 0;
	}
	return 1;
}

/* ra_auth_basic_check(), throttled when attempt is not NULL. */
static enum ra_basic_result
ra_basic_check(const struct ra_users *users, const char *authorization,
               struct ra_basic_attempt *attempt, char *user, size_t userlen)
{
	unsigned char decoded[RA_BASIC_B64_MAX / 4 * 3 + 1];
	unsigned char mac_buf[RA_BASIC_MAC_LEN];
	enum ra_basic_result rc = RA_BASIC_MALFORMED;
	const struct ra_user *found;
	const unsigned char *mac = NULL;
	const char *name = (const char *)decoded;
	size_t n, colon;

	if (ra_basic_parse(authorization, decoded, sizeof(decoded), &n, &colon,
	                   user, userlen) != 0)
		goto out;
	if (users != NULL)
		mac = ra_basic_cache_mac(users, decoded, n, mac_buf);
	/* A helper thread checked these credentials for this request, and
	 * counted a failure. */
	if (users != NULL && ra_basic_note_find(users, mac, 1, &rc))
		goto out;
	found = ra_basic_find(users, decoded, colon);
	if (found != NULL && ra_basic_cache_hit(users, mac)) {
		rc = RA_BASIC_OK;
		goto out;
	}
	/* From here on the name is a C string and the password follows. */
	decoded[colon] = '\0';
	if (!ra_basic_may_crypt(attempt, name, &rc))
		goto out;
	if (found == NULL) {
		/* Spend the time a known user costs before answering. */
		if (users != NULL && users->dummy_hash != NULL)
			(void)ra_basic_crypt_matches((const char *)decoded +
			                                 colon + 1,
			                             users->dummy_hash);
		rc = RA_BASIC_UNKNOWN_USER;
	} else if (ra_basic_crypt_matches((const char *)decoded + colon + 1,
	                                  found->hash)) {
		rc = RA_BASIC_OK;
		ra_basic_cache_put(users, mac);
	} else {
		rc = RA_BASIC_BAD_PASSWORD;
	}
	if (attempt != NULL && rc == RA_BASIC_OK)
		ra_auth_throttle_passed(name);
	else if (attempt != NULL)
		ra_auth_throttle_failed(attempt->client, name);
out:
	OPENSSL_cleanse(decoded, sizeof(decoded));
	OPENSSL_cleanse(mac_buf, sizeof(mac_buf));
	return rc;
}

enum ra_basic_result
ra_auth_basic_check(const struct ra_users *users, const char *authorization,
                    char *user, size_t userlen)
{
	return ra_basic_check(users, authorization, NULL, user, userlen);
}

enum ra_basic_result
ra_auth_basic_attempt(const struct ra_users *users, const char *authorization,
                      struct ra_basic_attempt *attempt, char *user,
                      size_t userlen)
{
	attempt->retry_after = 0;
	attempt->reason = RA_THROTTLE_NONE;
	return ra_basic_check(users, authorization, attempt, user, userlen);
}

/* A check running on a helper thread (ra_auth_basic_prefetch()). */
struct ra_basic_job {
	const struct ra_users *users; /* kept until exit (the slot) */
	const char *hash;             /* the user's, or the dummy one */
	int known;                    /* the user exists */
	unsigned char decoded[RA_BASIC_B64_MAX / 4 * 3 + 1];
	size_t n, colon;
	int ok; /* set by the helper thread */
	char client[64];
	int place; /* among the queued checks (ra_auth_throttle_enter()) */
	void (*done)(void *arg);
	void *arg;
};

/* Helper thread: only the job's own copy and the immutable table. */
static void
ra_basic_job_work(void *arg)
{
	struct ra_basic_job *job = arg;

	job->decoded[job->colon] = '\0';
	job->ok = ra_basic_crypt_matches(
	              (const char *)job->decoded + job->colon + 1, job->hash) &&
	          job->known;
	job->decoded[job->colon] = ':';
}

/* Worker thread: the verdict goes where the re-run will look. */
static void
ra_basic_job_done(void *arg)
{
	struct ra_basic_job *job = arg;
	void (*done)(void *) = job->done;
	void *done_arg = job->arg;
	unsigned char mac_buf[RA_BASIC_MAC_LEN];
	const unsigned char *mac;

	ra_auth_throttle_leave(job->place);
	mac = ra_basic_cache_mac(job->users, job->decoded, job->n, mac_buf);
	job->decoded[job->colon] = '\0';
	if (job->ok) {
		ra_basic_cache_put(job->users, mac);
		ra_auth_throttle_passed((const char *)job->decoded);
	} else {
		ra_basic_note_put(job->users, mac,
		                  job->known ? RA_BASIC_BAD_PASSWORD
		                             : RA_BASIC_UNKNOWN_USER);
		ra_auth_throttle_failed(job->client,
		                        (const char *)job->decoded);
	}
	OPENSSL_cleanse(mac_buf, sizeof(mac_buf));
	OPENSSL_cleanse(job, sizeof(*job));
	free(job);
	done(done_arg);
}

int
ra_auth_basic_prefetch(const struct ra_users *users, const char *authorization,
                       const char *client, struct event_base *base,
                       void (*done)(void *arg), void *arg)
{
	unsigned char mac_buf[RA_BASIC_MAC_LEN];
	const unsigned char *mac;
	struct ra_basic_job *job;
	const struct ra_user *found;
	enum ra_basic_result noted;
	int rc = 0, waits;

	if (users == NULL || authorization == NULL ||
	    (job = calloc(1, sizeof(*job))) == NULL)
		return 0;
	job->place = -1;
	if (ra_basic_parse(authorization, job->decoded, sizeof(job->decoded),
	                   &job->n, &job->colon, NULL, 0) != 0)
		goto out;
	found = ra_basic_find(users, job->decoded, job->colon);
	mac = ra_basic_cache_mac(users, job->decoded, job->n, mac_buf);
	if ((found != NULL && ra_basic_cache_hit(users, mac)) ||
	    ra_basic_note_find(users, mac, 0, &noted))
		goto out;
	/* A client or user that has to wait is answered on the loop,
	 * without crypt(3). */
	job->decoded[job->colon] = '\0';
	waits =
	    ra_auth_throttle_wait(client, (const char *)job->decoded, NULL) > 0;
	job->decoded[job->colon] = ':';
	if (waits)
		goto out;
	job->users = users;
	job->known = found != NULL;
	job->hash = found != NULL ? found->hash : users->dummy_hash;
	job->done = done;
	job->arg = arg;
	snprintf(job->client, sizeof(job->client), "%s",
	         client != NULL ? client : "");
	if (job->hash == NULL)
		goto out;
	if ((job->place = ra_auth_throttle_enter(client)) < 0) {
		rc = -1;
		goto out;
	}
	if (core_offload_run(base, ra_basic_job_work, ra_basic_job_done, job) !=
	    0) {
		ra_auth_throttle_leave(job->place);
		goto out;
	}
	OPENSSL_cleanse(mac_buf, sizeof(mac_buf));
	return 1;
out:
	OPENSSL_cleanse(mac_buf, sizeof(mac_buf));
	OPENSSL_cleanse(job, sizeof(*job));
	free(job);
	return rc;
}

const char *
ra_basic_result_text(enum ra_basic_result result)
{
	switch (result) {
	case RA_BASIC_OK:
		return "ok";
	case RA_BASIC_MALFORMED:
		return "malformed Basic credentials";
	case RA_BASIC_UNKNOWN_USER:
		return "unknown user";
	case RA_BASIC_BAD_PASSWORD:
		return "wrong password";
	case RA_BASIC_THROTTLED:
		return "too many failed attempts";
	case RA_BASIC_BUSY:
		return "too many password checks waiting";
	}
	return "unknown result";
}

struct ra_users_slot *
ra_users_slot_new(struct ra_users *users)
{
	struct ra_users_slot *slot;

	if ((slot = calloc(1, sizeof(*slot))) == NULL) {
		ra_users_free(users);
		return NULL;
	}
	slot->current = users;
	return slot;
}

void
ra_users_slot_free(struct ra_users_slot *slot)
{
	struct ra_users *users, *next;

	if (slot == NULL)
		return;
	for (users = slot->current; users != NULL; users = next) {
		next = users->retired;
		ra_users_free(users);
	}
	free(slot);
}

const struct ra_users *
ra_users_slot_get(const struct ra_users_slot *slot)
{
	if (slot == NULL)
		return NULL;
	return __atomic_load_n(&slot->current, __ATOMIC_ACQUIRE);
}

long
ra_users_slot_reload(struct ra_users_slot *slot, const char *path, char *err,
                     size_t errlen)
{
	struct ra_users *users;

	if ((users = ra_users_load(path, err, errlen)) == NULL)
		return -1;
	/* Only this thread writes current, so a plain read of it is the
	 * latest; the old table hangs off the new one until exit. */
	users->retired = slot->current;
	__atomic_store_n(&slot->current, users, __ATOMIC_RELEASE);
	return (long)users->count;
}
