/*
 * check_ra_auth_basic.c: the htpasswd loader and the Basic credential
 * check, with hashes made by libxcrypt in the test itself.
 */
#include <sys/stat.h>

#include <crypt.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <openssl/evp.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "core/offload.h"
#include "ra/auth_basic.h"

/* snprintf that fails the test rather than truncate. */
#define FMT(buf, ...)                                                          \
	ck_assert_int_lt(snprintf((buf), sizeof(buf), __VA_ARGS__),            \
	                 (int)sizeof(buf))

static char tmpdir[PATH_MAX];

/* Hashes of "secret" and "" made once: bcrypt and yescrypt are slow. */
static char hash_sha512[CRYPT_OUTPUT_SIZE];
static char hash_bcrypt[CRYPT_OUTPUT_SIZE];
static char hash_yescrypt[CRYPT_OUTPUT_SIZE];
static char hash_empty[CRYPT_OUTPUT_SIZE];

static void
make_hash(const char *prefix, unsigned long count, const char *password,
          char *out)
{
	struct crypt_data *cd;
	char *setting;
	const char *h;

	setting = crypt_gensalt_ra(prefix, count, NULL, 0);
	ck_assert_ptr_nonnull(setting);
	cd = calloc(1, sizeof(*cd));
	ck_assert_ptr_nonnull(cd);
	h = crypt_r(password, setting, cd);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(h[0], '$');
	snprintf(out, CRYPT_OUTPUT_SIZE, "%s", h);
	free(cd);
	free(setting);
}

static void
setup_hashes(void)
{
	if (hash_sha512[0] != '\0')
		return;
	make_hash("$6$", 0, "secret", hash_sha512);
	/* Cost 4, the least bcrypt allows, keeps the test quick. */
	make_hash("$2b$", 4, "secret", hash_bcrypt);
	make_hash("$y$", 0, "secret", hash_yescrypt);
	make_hash("$6$", 0, "", hash_empty);
}

static void
setup(void)
{
	FMT(tmpdir, "/tmp/check_ra_auth_basic.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	setup_hashes();
}

static int
remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void
teardown(void)
{
	ck_assert_int_eq(nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Writes text to tmpdir/name and returns the path (static buffer). */
static const char *
write_file(const char *name, const char *text)
{
	static char path[PATH_MAX];
	FILE *fp;

	FMT(path, "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
	return path;
}

/* Builds "Basic base64(user:password)" with explicit lengths. */
static void
make_header(char *out, size_t outlen, const char *scheme, const char *cred,
            size_t credlen)
{
	unsigned char b64[1024];
	int n;

	ck_assert_uint_lt(credlen, 700);
	n = EVP_EncodeBlock(b64, (const unsigned char *)cred, (int)credlen);
	ck_assert_int_ge(n, 0);
	snprintf(out, outlen, "%s %s", scheme, (const char *)b64);
}

static struct ra_users *
load_standard(void)
{
	char text[4096], err[512];
	struct ra_users *users;
	const char *path;

	FMT(text,
	    "# estrad users\n"
	    "\n"
	    "alice:%s\n"
	    "bob:%s\r\n"
	    "   \n"
	    "carol:%s\n"
	    "# nobody else\n"
	    "nopass:%s\n",
	    hash_sha512, hash_bcrypt, hash_yescrypt, hash_empty);
	path = write_file("users", text);
	err[0] = '\0';
	users = ra_users_load(path, err, sizeof(err));
	ck_assert_msg(users != NULL, "load failed: %s", err);
	return users;
}

static enum ra_basic_result
check_cred(const struct ra_users *users, const char *cred, char *user,
           size_t userlen)
{
	char header[1100];

	make_header(header, sizeof(header), "Basic", cred, strlen(cred));
	return ra_auth_basic_check(users, header, user, userlen);
}

static void
prefetch_done(void *arg)
{
	(*(int *)arg)++;
}

/*
 * Hands cred to a helper thread and runs base until it is done; returns
 * what ra_auth_basic_prefetch() returned.
 */
static int
prefetch_cred(const struct ra_users *users, struct event_base *base,
              const char *cred)
{
	char header[1100];
	int done = 0, rc, i;

	make_header(header, sizeof(header), "Basic", cred, strlen(cred));
	rc = ra_auth_basic_prefetch(users, header, "192.0.2.1:1", base,
	                            prefetch_done, &done);
	for (i = 0; rc == 1 && done == 0 && i < 1000; i++) {
		(void)event_base_loop(base, EVLOOP_NONBLOCK);
		if (done == 0)
			usleep(5000);
	}
	ck_assert_int_eq(done, rc == 1 ? 1 : 0);
	return rc;
}

/*
 * crypt(3) on a helper thread: the verdict is then found by the check on
 * the loop's thread, a success from the cache (no second helper run), a
 * failure once from its note.
 */
START_TEST(test_basic_prefetch_verdicts)
{
	struct ra_users *users = load_standard();
	struct event_base *base;
	char user[64];

	ck_assert_int_eq(evthread_use_pthreads(), 0);
	ck_assert_ptr_nonnull(base = event_base_new());
	ck_assert_int_eq(prefetch_cred(users, base, "alice:secret"), 1);
	ck_assert_int_eq(check_cred(users, "alice:secret", user, sizeof(user)),
	                 RA_BASIC_OK);
	ck_assert_str_eq(user, "alice");
	/* Cached now: nothing to hand over. */
	ck_assert_int_eq(prefetch_cred(users, base, "alice:secret"), 0);

	ck_assert_int_eq(prefetch_cred(users, base, "alice:wrong"), 1);
	ck_assert_int_eq(check_cred(users, "alice:wrong", user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);
	/* The note is used up; the check runs crypt(3) itself again. */
	ck_assert_int_eq(check_cred(users, "alice:wrong", user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);

	ck_assert_int_eq(prefetch_cred(users, base, "mallory:x"), 1);
	ck_assert_int_eq(check_cred(users, "mallory:x", user, sizeof(user)),
	                 RA_BASIC_UNKNOWN_USER);

	/* Not Basic, or no users: answered on the spot. */
	ck_assert_int_eq(ra_auth_basic_prefetch(users, "Bearer x", NULL, base,
	                                        prefetch_done, NULL),
	                 0);
	ck_assert_int_eq(ra_auth_basic_prefetch(NULL, "Basic YTpi", NULL, base,
	                                        prefetch_done, NULL),
	                 0);
	core_offload_drain(base);
	event_base_free(base);
	core_offload_stop();
	ra_users_free(users);
}
END_TEST

START_TEST(test_basic_load_counts_users)
{
	struct ra_users *users = load_standard();

	ck_assert_uint_eq(ra_users_count(users), 4);
	ra_users_free(users);
	ck_assert_uint_eq(ra_users_count(NULL), 0);
	ra_users_free(NULL);
}
END_TEST

START_TEST(test_basic_ok_each_hash_kind)
{
	struct ra_users *users = load_standard();
	char user[64];

	ck_assert_int_eq(check_cred(users, "alice:secret", user, sizeof(user)),
	                 RA_BASIC_OK);
	ck_assert_str_eq(user, "alice");
	ck_assert_int_eq(check_cred(users, "bob:secret", user, sizeof(user)),
	                 RA_BASIC_OK);
	ck_assert_str_eq(user, "bob");
	ck_assert_int_eq(check_cred(users, "carol:secret", user, sizeof(user)),
	                 RA_BASIC_OK);
	ck_assert_str_eq(user, "carol");
	ra_users_free(users);
}
END_TEST

START_TEST(test_basic_wrong_password)
{
	struct ra_users *users = load_standard();
	char user[64];

	ck_assert_int_eq(check_cred(users, "alice:Secret", user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);
	ck_assert_str_eq(user, "alice");
	ck_assert_int_eq(check_cred(users, "bob:secre", user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);
	ck_assert_int_eq(check_cred(users, "carol:", user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);
	/* A password may hold a colon: only the first one splits. */
	ck_assert_int_eq(
	    check_cred(users, "alice:secret:x", user, sizeof(user)),
	    RA_BASIC_BAD_PASSWORD);
	ra_users_free(users);
}
END_TEST

START_TEST(test_basic_unknown_user)
{
	struct ra_users *users = load_standard();
	char user[64];

	ck_assert_int_eq(
	    check_cred(users, "mallory:secret", user, sizeof(user)),
	    RA_BASIC_UNKNOWN_USER);
	ck_assert_str_eq(user, "mallory");
	ck_assert_int_eq(check_cred(users, ":secret", user, sizeof(user)),
	                 RA_BASIC_UNKNOWN_USER);
	ck_assert_str_eq(user, "");
	/* Prefixes and case variants are other users. */
	ck_assert_int_eq(check_cred(users, "Alice:secret", user, sizeof(user)),
	                 RA_BASIC_UNKNOWN_USER);
	ck_assert_int_eq(check_cred(users, "alic:secret", user, sizeof(user)),
	                 RA_BASIC_UNKNOWN_USER);
	ra_users_free(users);
}
END_TEST

START_TEST(test_basic_empty_password)
{
	struct ra_users *users = load_standard();
	char user[64];

	ck_assert_int_eq(check_cred(users, "nopass:", user, sizeof(user)),
	                 RA_BASIC_OK);
	ck_assert_str_eq(user, "nopass");
	ck_assert_int_eq(check_cred(users, "nopass:x", user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);
	ck_assert_int_eq(check_cred(users, "alice:", user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);
	ra_users_free(users);
}
END_TEST

START_TEST(test_basic_header_forms)
{
	struct ra_users *users = load_standard();
	char header[256], tail[200], user[64];

	/* The scheme is case-insensitive; blanks around the token pass. */
	make_header(header, sizeof(header), "bAsIc", "alice:secret", 12);
	ck_assert_int_eq(ra_auth_basic_check(users, header, user, sizeof(user)),
	                 RA_BASIC_OK);
	make_header(tail, sizeof(tail), "  BASIC  ", "alice:secret", 12);
	FMT(header, "%s  ", tail);
	ck_assert_int_eq(ra_auth_basic_check(users, header, user, sizeof(user)),
	                 RA_BASIC_OK);
	/* Missing '=' padding is tolerated: "alice:secre" needs one. */
	make_header(header, sizeof(header), "Basic", "alice:secre", 11);
	ck_assert_int_eq(header[strlen(header) - 1], '=');
	header[strlen(header) - 1] = '\0';
	ck_assert_int_eq(ra_auth_basic_check(users, header, user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);
	ck_assert_str_eq(user, "alice");
	/* Two missing pad characters: "bob:secret" is 10 bytes. */
	make_header(header, sizeof(header), "Basic", "bob:secret", 10);
	ck_assert_str_eq(header + strlen(header) - 2, "==");
	header[strlen(header) - 2] = '\0';
	ck_assert_int_eq(ra_auth_basic_check(users, header, user, sizeof(user)),
	                 RA_BASIC_OK);
	ra_users_free(users);
}
END_TEST

START_TEST(test_basic_malformed)
{
	static const char *const bad[] = {
	    "",
	    "Basic",
	    "Basic ",
	    "Basic    ",
	    "BasicYWxpY2U6c2VjcmV0",
	    "Bearer YWxpY2U6c2VjcmV0",
	    "Digest username=\"alice\"",
	    "Basic !!!!",
	    "Basic YWxpY2U6c2VjcmV0!",
	    "Basic YWxpY2U6c2VjcmV0 x",
	    "Basic Y",                /* length 1 mod 4 */
	    "Basic YWxpY2U6c2Vjc",    /* length 1 mod 4 */
	    "Basic YW=pY2U6c2VjcmV0", /* '=' inside */
	    "Basic YWxpY2U6c2VjcmV0===",
	    "Basic ====",
	    "Basic YWxpY2U", /* "alice": no colon */
	};
	struct ra_users *users = load_standard();
	char user[64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FMT(user, "unchanged");
		ck_assert_msg(
		    ra_auth_basic_check(users, bad[i], user, sizeof(user)) ==
		        RA_BASIC_MALFORMED,
		    "accepted \"%s\"", bad[i]);
		/* Nothing decoded without a colon is copied: it may be a
		 * password. */
		ck_assert_str_eq(user, "");
	}
	ck_assert_int_eq(ra_auth_basic_check(users, NULL, user, sizeof(user)),
	                 RA_BASIC_MALFORMED);
	/* A long header is refused before any decoding. */
	{
		char *big = malloc(10000);

		ck_assert_ptr_nonnull(big);
		memcpy(big, "Basic ", 6);
		memset(big + 6, 'A', 9000);
		big[9006] = '\0';
		ck_assert_int_eq(
		    ra_auth_basic_check(users, big, user, sizeof(user)),
		    RA_BASIC_MALFORMED);
		free(big);
	}
	ra_users_free(users);
}
END_TEST

START_TEST(test_basic_nul_in_password_refused)
{
	struct ra_users *users = load_standard();
	char header[256], user[64];

	/* "secret\0x" would pass as "secret" if crypt_r saw it. */
	make_header(header, sizeof(header), "Basic", "alice:secret\0x", 14);
	ck_assert_int_eq(ra_auth_basic_check(users, header, user, sizeof(user)),
	                 RA_BASIC_MALFORMED);
	ck_assert_str_eq(user, "alice");
	ra_users_free(users);
}
END_TEST

/* The name is copied as sent, for the log escaper, whole or not at all. */
START_TEST(test_basic_user_name_copied_safely)
{
	struct ra_users *users = load_standard();
	char header[256], user[64], tiny[4];

	make_header(header, sizeof(header), "Basic", "a\001b\177c\n\xff:pw",
	            10);
	ck_assert_int_eq(ra_auth_basic_check(users, header, user, sizeof(user)),
	                 RA_BASIC_UNKNOWN_USER);
	ck_assert_str_eq(user, "a\001b\177c\n\xff");
	/* A short buffer gets no name rather than a cut one. */
	ck_assert_int_eq(check_cred(users, "alice:secret", tiny, sizeof(tiny)),
	                 RA_BASIC_OK);
	ck_assert_str_eq(tiny, "");
	/* No buffer at all is fine too. */
	ck_assert_int_eq(check_cred(users, "alice:secret", NULL, 0),
	                 RA_BASIC_OK);
	ra_users_free(users);
}
END_TEST

/* Names longer than RA_BASIC_USER_MAX: refused in the file, malformed as
 * credentials, so that no log ever holds a cut name. */
START_TEST(test_basic_long_user_name_refused)
{
	char name[RA_BASIC_USER_MAX + 2], text[1024], err[512], user[512];
	char cred[RA_BASIC_USER_MAX + 16];
	struct ra_users *users;
	const char *path;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	FMT(text, "%s:%s\n", name, hash_sha512);
	path = write_file("long", text);
	ck_assert_ptr_null(ra_users_load(path, err, sizeof(err)));
	ck_assert_msg(strstr(err, "user name longer than 255 bytes") != NULL,
	              "%s", err);
	/* One byte less is a name. */
	name[sizeof(name) - 2] = '\0';
	FMT(text, "%s:%s\n", name, hash_sha512);
	path = write_file("long", text);
	users = ra_users_load(path, err, sizeof(err));
	ck_assert_msg(users != NULL, "%s", err);
	FMT(cred, "%s:secret", name);
	ck_assert_int_eq(check_cred(users, cred, user, sizeof(user)),
	                 RA_BASIC_OK);
	ck_assert_str_eq(user, name);
	FMT(cred, "%sn:secret", name);
	ck_assert_int_eq(check_cred(users, cred, user, sizeof(user)),
	                 RA_BASIC_MALFORMED);
	ck_assert_str_eq(user, "");
	ra_users_free(users);
}
END_TEST

/* Runs one throttled attempt of cred from client. */
static enum ra_basic_result
attempt_cred(const struct ra_users *users, const char *cred, const char *client,
             int busy, struct ra_basic_attempt *a)
{
	char header[1100], user[RA_BASIC_USER_MAX + 1];

	make_header(header, sizeof(header), "Basic", cred, strlen(cred));
	memset(a, 0, sizeof(*a));
	a->client = client;
	a->busy = busy;
	return ra_auth_basic_attempt(users, header, a, user, sizeof(user));
}

/*
 * Failed attempts past the free ones make the user wait: the next
 * attempt, even with the right password, is not checked.  Another user
 * from another client is not held back; verified credentials still pass
 * from this thread's cache.
 */
START_TEST(test_basic_attempt_throttles_failures)
{
	struct ra_users *users = load_standard();
	struct ra_basic_attempt a;
	char cred[64];
	int i;

	ra_auth_throttle_reset(NULL);
	ck_assert_int_eq(
	    attempt_cred(users, "bob:secret", "192.0.2.5:1", 0, &a),
	    RA_BASIC_OK);
	for (i = 0; i <= RA_THROTTLE_USER_FREE; i++) {
		FMT(cred, "alice:wrong-%d", i);
		ck_assert_int_eq(
		    attempt_cred(users, cred, "198.51.100.1:1", 0, &a),
		    RA_BASIC_BAD_PASSWORD);
	}
	ck_assert_int_eq(
	    attempt_cred(users, "alice:secret", "192.0.2.2:1", 0, &a),
	    RA_BASIC_THROTTLED);
	ck_assert_int_eq(a.reason, RA_THROTTLE_USER);
	ck_assert_uint_ge(a.retry_after, 1);
	ck_assert_int_eq(
	    attempt_cred(users, "carol:secret", "192.0.2.3:1", 0, &a),
	    RA_BASIC_OK);
	/* Unknown users count as much as wrong passwords, by name. */
	for (i = 0; i <= RA_THROTTLE_USER_FREE; i++)
		ck_assert_int_eq(
		    attempt_cred(users, "mallory:x", "203.0.113.1:1", 0, &a),
		    RA_BASIC_UNKNOWN_USER);
	ck_assert_int_eq(
	    attempt_cred(users, "mallory:x", "203.0.113.2:1", 0, &a),
	    RA_BASIC_THROTTLED);
	/* Cached credentials need no crypt(3): not held back, not even by
	 * a full queue. */
	ck_assert_int_eq(
	    attempt_cred(users, "bob:secret", "198.51.100.1:1", 1, &a),
	    RA_BASIC_OK);
	ck_assert_int_eq(
	    attempt_cred(users, "carol:other", "192.0.2.9:1", 1, &a),
	    RA_BASIC_BUSY);
	ck_assert_int_eq(a.reason, RA_THROTTLE_BUSY);
	ck_assert_uint_eq(a.retry_after, 1);
	ra_auth_throttle_reset(NULL);
	ra_users_free(users);
}
END_TEST

/*
 * The helper threads take at most RA_THROTTLE_QUEUE_PER_CLIENT checks of
 * one client; past that the prefetch says busy (-1) and runs nothing,
 * while another client still gets its checks queued.  A place is given
 * back when its check is done.
 */
START_TEST(test_basic_prefetch_fair_share)
{
	struct ra_users *users = load_standard();
	struct event_base *base;
	char header[1100], cred[64];
	int done = 0, i, rc, queued = 0;

	ra_auth_throttle_reset(NULL);
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	ck_assert_ptr_nonnull(base = event_base_new());
	for (i = 0; i < RA_THROTTLE_QUEUE_PER_CLIENT + 4; i++) {
		FMT(cred, "guess-%d:x", i);
		make_header(header, sizeof(header), "Basic", cred,
		            strlen(cred));
		rc = ra_auth_basic_prefetch(users, header, "192.0.2.30:1", base,
		                            prefetch_done, &done);
		ck_assert_int_eq(rc, i < RA_THROTTLE_QUEUE_PER_CLIENT ? 1 : -1);
		queued += rc == 1;
	}
	make_header(header, sizeof(header), "Basic", "alice:secret", 12);
	ck_assert_int_eq(ra_auth_basic_prefetch(users, header, "192.0.2.31:1",
	                                        base, prefetch_done, &done),
	                 1);
	queued++;
	for (i = 0; done < queued && i < 2000; i++) {
		(void)event_base_loop(base, EVLOOP_NONBLOCK);
		if (done < queued)
			usleep(5000);
	}
	ck_assert_int_eq(done, queued);
	/* The places are back. */
	make_header(header, sizeof(header), "Basic", "guess-x:x", 9);
	ck_assert_int_eq(ra_auth_basic_prefetch(users, header, "192.0.2.30:1",
	                                        base, prefetch_done, &done),
	                 1);
	core_offload_drain(base);
	event_base_free(base);
	core_offload_stop();
	ra_auth_throttle_reset(NULL);
	ra_users_free(users);
}
END_TEST

START_TEST(test_basic_empty_table)
{
	struct ra_users *users;
	char err[512], user[64];
	const char *path;

	path = write_file("empty", "# no users yet\n\n");
	users = ra_users_load(path, err, sizeof(err));
	ck_assert_msg(users != NULL, "%s", err);
	ck_assert_uint_eq(ra_users_count(users), 0);
	ck_assert_int_eq(check_cred(users, "alice:secret", user, sizeof(user)),
	                 RA_BASIC_UNKNOWN_USER);
	ra_users_free(users);
	ck_assert_int_eq(check_cred(NULL, "alice:secret", user, sizeof(user)),
	                 RA_BASIC_UNKNOWN_USER);
}
END_TEST

START_TEST(test_basic_no_final_newline)
{
	struct ra_users *users;
	char text[512], err[512], user[64];
	const char *path;

	FMT(text, "alice:%s", hash_sha512);
	path = write_file("nonl", text);
	users = ra_users_load(path, err, sizeof(err));
	ck_assert_msg(users != NULL, "%s", err);
	ck_assert_int_eq(check_cred(users, "alice:secret", user, sizeof(user)),
	                 RA_BASIC_OK);
	ra_users_free(users);
}
END_TEST

/* Loads text as a users file, expects failure, returns the message. */
static const char *
load_fails(const char *text, char *path, size_t pathlen)
{
	static char err[1024];
	struct ra_users *users;

	ck_assert_int_lt(snprintf(path, pathlen, "%s", write_file("bad", text)),
	                 (int)pathlen);
	err[0] = '\0';
	users = ra_users_load(path, err, sizeof(err));
	ck_assert_msg(users == NULL, "loaded: %s", text);
	return err;
}

START_TEST(test_basic_plain_text_refused)
{
	char text[512], path[PATH_MAX], want[PATH_MAX + 128];
	const char *err;

	FMT(text, "# users\nalice:%s\nbob:hunter2\n", hash_sha512);
	err = load_fails(text, path, sizeof(path));
	FMT(want,
	    "%s:3: user bob: password is not a "
	    "crypt(3) hash (plain text is refused)",
	    path);
	ck_assert_str_eq(err, want);
	/* The message never quotes the password. */
	ck_assert_ptr_null(strstr(err, "hunter2"));
}
END_TEST

START_TEST(test_basic_weak_schemes_refused)
{
	static const char *const lines[] = {
	    "u:$1$abcdefgh$0123456789012345678901\n",   /* md5crypt */
	    "u:$apr1$abcdefgh$012345678901234567890\n", /* Apache MD5 */
	    "u:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n",
	    "u:$3$$8846f7eaee8fb117ad06bdd830b7586c\n", /* NT hash */
	    "u:$6$\n",
	    "u:$6$saltsalt$\n",
	    "u:$2b$05\n",
	};
	char path[PATH_MAX], want[PATH_MAX + 64];
	const char *err;
	size_t i;

	/* The first four are schemes estrad refuses, the rest cut short. */
	for (i = 0; i < 4; i++) {
		err = load_fails(lines[i], path, sizeof(path));
		FMT(want, "%s:1: user u: unsupported hash scheme", path);
		ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
		              "line %zu: %s", i, err);
	}
	for (i = 4; i < sizeof(lines) / sizeof(lines[0]); i++) {
		err = load_fails(lines[i], path, sizeof(path));
		FMT(want, "%s:1: user u: malformed password hash", path);
		ck_assert_str_eq(err, want);
	}
}
END_TEST

START_TEST(test_basic_duplicate_refused)
{
	char text[1024], path[PATH_MAX], want[PATH_MAX + 128];
	const char *err;

	FMT(text, "alice:%s\nbob:%s\n\n# again\nalice:%s\nbob:%s\n",
	    hash_sha512, hash_sha512, hash_sha512, hash_sha512);
	err = load_fails(text, path, sizeof(path));
	FMT(want,
	    "%s:5: user alice: duplicate (first "
	    "defined on line 1)",
	    path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_basic_bad_lines_refused)
{
	char text[8192], path[PATH_MAX], want[PATH_MAX + 128];
	const char *err;

	err = load_fails("\njust-a-name\n", path, sizeof(path));
	FMT(want, "%s:2: not a \"user:hash\" line", path);
	ck_assert_str_eq(err, want);

	FMT(text, ":%s\n", hash_sha512);
	err = load_fails(text, path, sizeof(path));
	FMT(want, "%s:1: empty user name", path);
	ck_assert_str_eq(err, want);

	err = load_fails("alice:\n", path, sizeof(path));
	FMT(want, "%s:1: user alice: empty password hash", path);
	ck_assert_str_eq(err, want);

	FMT(text, "a\tb:%s\n", hash_sha512);
	err = load_fails(text, path, sizeof(path));
	FMT(want, "%s:1: user name holds a control byte", path);
	ck_assert_str_eq(err, want);

	/* A line of 4 KiB or more. */
	memset(text, 'a', 5000);
	memcpy(text + 5000, "\n", 2);
	err = load_fails(text, path, sizeof(path));
	FMT(want, "%s:1: line longer than 4095 bytes", path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_basic_nul_byte_refused)
{
	char path[PATH_MAX], want[PATH_MAX + 64], err[512];
	FILE *fp;

	FMT(path, "%s/nul", tmpdir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "alice:%s\n", hash_sha512);
	fwrite("bob\0:x\n", 1, 7, fp);
	fclose(fp);
	ck_assert_ptr_null(ra_users_load(path, err, sizeof(err)));
	FMT(want, "%s:2: NUL byte in line", path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_basic_missing_file)
{
	char path[PATH_MAX], want[PATH_MAX + 64], err[512];

	FMT(path, "%s/none", tmpdir);
	ck_assert_ptr_null(ra_users_load(path, err, sizeof(err)));
	FMT(want, "%s: No such file or directory", path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_basic_many_users_sorted_lookup)
{
	struct ra_users *users;
	char user[64], cred[64], err[512], path[PATH_MAX];
	FILE *fp;
	int i;

	/* Names in reverse order, all with the same (fast) hash. */
	FMT(path, "%s/many", tmpdir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	for (i = 999; i >= 0; i--)
		fprintf(fp, "user%04d:%s\n", i, hash_bcrypt);
	fclose(fp);
	users = ra_users_load(path, err, sizeof(err));
	ck_assert_msg(users != NULL, "%s", err);
	ck_assert_uint_eq(ra_users_count(users), 1000);
	ck_assert_int_eq(
	    check_cred(users, "user0000:secret", user, sizeof(user)),
	    RA_BASIC_OK);
	ck_assert_int_eq(
	    check_cred(users, "user0999:secret", user, sizeof(user)),
	    RA_BASIC_OK);
	FMT(cred, "user0500:nope");
	ck_assert_int_eq(check_cred(users, cred, user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);
	ck_assert_int_eq(
	    check_cred(users, "user1000:secret", user, sizeof(user)),
	    RA_BASIC_UNKNOWN_USER);
	ra_users_free(users);
}
END_TEST

START_TEST(test_basic_result_text)
{
	ck_assert_str_eq(ra_basic_result_text(RA_BASIC_OK), "ok");
	ck_assert_str_eq(ra_basic_result_text(RA_BASIC_UNKNOWN_USER),
	                 "unknown user");
	ck_assert_str_eq(ra_basic_result_text(RA_BASIC_BAD_PASSWORD),
	                 "wrong password");
	ck_assert_ptr_nonnull(ra_basic_result_text(RA_BASIC_MALFORMED));
	ck_assert_ptr_nonnull(ra_basic_result_text((enum ra_basic_result)42));
}
END_TEST

START_TEST(test_basic_cache_never_admits_what_crypt_refuses)
{
	struct ra_users *users = load_standard(), *other;
	char user[64], text[512], err[512];
	const char *path;

	/* A success is cached; the same credentials pass again, other
	 * passwords of the same user still fail. */
	ck_assert_int_eq(check_cred(users, "alice:secret", user, sizeof(user)),
	                 RA_BASIC_OK);
	ck_assert_int_eq(check_cred(users, "alice:secret", user, sizeof(user)),
	                 RA_BASIC_OK);
	ck_assert_str_eq(user, "alice");
	ck_assert_int_eq(check_cred(users, "alice:secreT", user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);
	ck_assert_int_eq(check_cred(users, "alice:secret2", user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);
	/* A reloaded file (a new table) whose alice has another password
	 * does not inherit the cached success. */
	FMT(text, "alice:%s\n", hash_empty);
	path = write_file("users2", text);
	other = ra_users_load(path, err, sizeof(err));
	ck_assert_ptr_nonnull(other);
	ck_assert_int_eq(check_cred(other, "alice:secret", user, sizeof(user)),
	                 RA_BASIC_BAD_PASSWORD);
	ra_users_free(other);
	ra_users_free(users);
}
END_TEST

static Suite *
ra_auth_basic_suite(void)
{
	Suite *s = suite_create("ra_auth_basic");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_basic_load_counts_users);
	tcase_add_test(tc, test_basic_ok_each_hash_kind);
	tcase_add_test(tc, test_basic_cache_never_admits_what_crypt_refuses);
	tcase_add_test(tc, test_basic_wrong_password);
	tcase_add_test(tc, test_basic_unknown_user);
	tcase_add_test(tc, test_basic_empty_password);
	tcase_add_test(tc, test_basic_header_forms);
	tcase_add_test(tc, test_basic_malformed);
	tcase_add_test(tc, test_basic_nul_in_password_refused);
	tcase_add_test(tc, test_basic_user_name_copied_safely);
	tcase_add_test(tc, test_basic_long_user_name_refused);
	tcase_add_test(tc, test_basic_attempt_throttles_failures);
	tcase_add_test(tc, test_basic_prefetch_fair_share);
	tcase_add_test(tc, test_basic_empty_table);
	tcase_add_test(tc, test_basic_no_final_newline);
	tcase_add_test(tc, test_basic_plain_text_refused);
	tcase_add_test(tc, test_basic_weak_schemes_refused);
	tcase_add_test(tc, test_basic_duplicate_refused);
	tcase_add_test(tc, test_basic_bad_lines_refused);
	tcase_add_test(tc, test_basic_nul_byte_refused);
	tcase_add_test(tc, test_basic_missing_file);
	tcase_add_test(tc, test_basic_many_users_sorted_lookup);
	tcase_add_test(tc, test_basic_result_text);
	tcase_add_test(tc, test_basic_prefetch_verdicts);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ra_auth_basic_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
