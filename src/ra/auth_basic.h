/*
 * auth_basic.h: HTTP Basic authentication (RFC 7617) against an htpasswd
 * file whose hashes crypt(3) verifies (libxcrypt: bcrypt $2b$/$2y$,
 * sha512-crypt $6$, sha256-crypt $5$, yescrypt $y$).  Plain-text or
 * unknown hash formats are refused at load.
 */
#ifndef ESTRAD_RA_AUTH_BASIC_H
#define ESTRAD_RA_AUTH_BASIC_H

#include <stddef.h>

#include "ra/auth_throttle.h"

/*
 * Longest user name, in bytes: longer names are refused in the users file
 * and as credentials, so that a name is never cut short in the logs.
 */
#define RA_BASIC_USER_MAX 255

/* The loaded users file; opaque. */
struct ra_users;

/*
 * Loads an htpasswd file: one "user:hash" per line, blank lines and lines
 * starting with '#' ignored, user names unique, without ':' or control
 * bytes and at most RA_BASIC_USER_MAX bytes long.  Returns
 * a new table (free with ra_users_free) or NULL with
 * "FILE:LINE: reason" in err.
 */
struct ra_users *ra_users_load(const char *path, char *err, size_t errlen);

/* Frees users.  NULL is a no-op. */
void ra_users_free(struct ra_users *users);

/* Returns how many users the table holds. */
size_t ra_users_count(const struct ra_users *users);

/* Results of ra_auth_basic_check(). */
enum ra_basic_result {
	RA_BASIC_OK,           /* user and password match */
	RA_BASIC_MALFORMED,    /* not "Basic <base64 of user:password>" */
	RA_BASIC_UNKNOWN_USER, /* no such user */
	RA_BASIC_BAD_PASSWORD, /* user known, password wrong */
	RA_BASIC_THROTTLED,    /* not checked: too many failures lately */
	RA_BASIC_BUSY          /* not checked: no room for a crypt(3) check */
};

/*
 * Checks an Authorization header value.  Copies the user name (even on
 * failure, when it could be decoded; raw bytes, for the log escaper) into
 * user (size userlen; RA_BASIC_USER_MAX + 1 holds every name).  The
 * password is compared through crypt_r(3) and CRYPTO_memcmp, and an
 * unknown user costs a crypt_r against a dummy hash of the same kind so
 * timing does not reveal which users exist.  The decoded password is
 * wiped before returning.  Nothing is throttled (see below).
 * Thread-safe.
 */
enum ra_basic_result ra_auth_basic_check(const struct ra_users *users,
                                         const char *authorization, char *user,
                                         size_t userlen);

/* Where credentials come from, and why they were not checked. */
struct ra_basic_attempt {
	const char *client; /* "ip:port" (borrowed) */
	/* ra_auth_basic_prefetch() found no room for their crypt(3): they
	 * are answered RA_BASIC_BUSY unless no crypt(3) is needed. */
	int busy;
	unsigned int retry_after; /* out: seconds, with THROTTLED/BUSY */
	enum ra_auth_throttle_reason reason; /* out: with THROTTLED/BUSY */
};

/*
 * ra_auth_basic_check() for credentials from attempt->client, throttled
 * (ra/auth_throttle.h): credentials verified lately on this thread pass
 * at once; otherwise, while the client or the user name has to wait, they
 * are answered RA_BASIC_THROTTLED without crypt(3).  A failure is counted
 * against the client and the user name, a right password clears the
 * user's failures.
 */
enum ra_basic_result ra_auth_basic_attempt(const struct ra_users *users,
                                           const char *authorization,
                                           struct ra_basic_attempt *attempt,
                                           char *user, size_t userlen);

/*
 * Takes crypt(3) off the caller's loop.  When checking authorization from
 * client ("ip:port", borrowed) against users would run crypt(3) (the
 * credentials are neither in this thread's cache of successes nor noted,
 * and neither client nor user name has to wait), runs it on a helper
 * thread (core/offload.h) and returns 1: done(arg) then runs on base's loop,
 * and the next ra_auth_basic_attempt() of the same credentials on that
 * thread answers without crypt(3), from the cache (success) or a one-time
 * note (failure).  The helper threads take at most RA_THROTTLE_QUEUE_MAX
 * checks, RA_THROTTLE_QUEUE_PER_CLIENT from one client: past that returns
 * -1 and runs nothing; the caller may offer again later, and an attempt
 * made without room must have busy set.  Returns 0
 * when no crypt(3) is needed or it could not be handed over: call
 * ra_auth_basic_attempt() at once.  users must stay valid (tables are
 * kept until their slot is freed); the credentials are copied and wiped.
 */
struct event_base;
int ra_auth_basic_prefetch(const struct ra_users *users,
                           const char *authorization, const char *client,
                           struct event_base *base, void (*done)(void *arg),
                           void *arg);

/* Returns a static phrase for a result, for logs ("unknown user"). */
const char *ra_basic_result_text(enum ra_basic_result result);

/*
 * The users table that is current, replaced as a whole on SIGHUP while
 * workers check credentials against it.  Readers take the current table
 * with one atomic load; a replaced table is kept (not freed) until the
 * slot is freed at exit, so a worker still reading it never sees freed
 * memory.  A reload costs the memory of one table, which an operator's
 * SIGHUPs over a process lifetime keep small.
 */
struct ra_users_slot;

/*
 * Returns a new slot holding users (taken; may be NULL for "no users
 * file"), or NULL when memory is short (users is then freed).  Free with
 * ra_users_slot_free.
 */
struct ra_users_slot *ra_users_slot_new(struct ra_users *users);

/* Frees slot and every table it ever held.  NULL is a no-op. */
void ra_users_slot_free(struct ra_users_slot *slot);

/*
 * Returns the current table (borrowed, valid until the slot is freed), or
 * NULL when the slot holds none.  Thread-safe, lock-free.
 */
const struct ra_users *ra_users_slot_get(const struct ra_users_slot *slot);

/*
 * Loads path as a new table and makes it current.  A file that does not
 * load is refused: the current table stays, and err (size errlen) holds
 * "FILE:LINE: reason".  Returns the new table's user count, or -1.  Main
 * thread only (one reload at a time).
 */
long ra_users_slot_reload(struct ra_users_slot *slot, const char *path,
                          char *err, size_t errlen);

#endif
