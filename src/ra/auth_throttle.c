/*
 * auth_throttle.c: failure counts per client address and per user name,
 * and the places of the crypt(3) queue (see auth_throttle.h).  Both tables
 * are fixed arrays under one mutex; each call does a few comparisons and,
 * outside the lock, one SHA-256 per key.
 */
#include <arpa/inet.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/digest.h"
#include "ra/auth_throttle.h"

/* Entries per set of the failure table. */
#define RA_THROTTLE_WAYS 4
#define RA_THROTTLE_SETS (RA_THROTTLE_ENTRIES / RA_THROTTLE_WAYS)

/* Bytes of a key digest kept per entry. */
#define RA_THROTTLE_KEY_LEN 16

/* Failures counted at most, far past the cap of the delay. */
#define RA_THROTTLE_FAILURES_MAX 1000

/* Times are milliseconds of the monotonic clock: a wait of "1 s" counted
 * in whole seconds could end a moment after it began. */
struct ra_throttle_entry {
	unsigned char key[RA_THROTTLE_KEY_LEN];
	unsigned int failures; /* 0: the entry is free once until passed */
	long long last;        /* when failures was last raised or decayed */
	long long until;       /* no check before this time */
};

struct ra_throttle_place {
	unsigned char key[RA_THROTTLE_KEY_LEN];
	unsigned int taken; /* 0: free */
};

static pthread_mutex_t ra_throttle_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ra_throttle_entry ra_throttle_table[RA_THROTTLE_SETS]
                                                 [RA_THROTTLE_WAYS];
static struct ra_throttle_place ra_throttle_places[RA_THROTTLE_QUEUE_MAX];
static unsigned int ra_throttle_queued;
static unsigned long long ra_throttle_counts[RA_THROTTLE__MAX];
static time_t (*ra_throttle_clock)(void);

/*
 * A random salt for the key digests, drawn once: without it a client
 * could pick user names that all fall into one set and push a punished
 * entry out.  Should the random generator fail, the salt stays zero and
 * throttling still works, only its sets are predictable.
 */
static unsigned char ra_throttle_salt[16];
static pthread_once_t ra_throttle_salt_once = PTHREAD_ONCE_INIT;

static void
ra_throttle_salt_init(void)
{
	if (RAND_bytes(ra_throttle_salt, sizeof(ra_throttle_salt)) != 1)
		memset(ra_throttle_salt, 0, sizeof(ra_throttle_salt));
}

/* Now, in milliseconds. */
static long long
ra_throttle_now(void)
{
	struct timespec ts;

	if (ra_throttle_clock != NULL)
		return (long long)ra_throttle_clock() * 1000;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The digest of a key: kind ('c' client, 'u' user) and len bytes of data.
 * Returns 0, or -1 when the digest fails (the caller then skips the key).
 */
static int
ra_throttle_key(char kind, const void *data, size_t len,
                unsigned char key[RA_THROTTLE_KEY_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int rc = -1;

	pthread_once(&ra_throttle_salt_once, ra_throttle_salt_init);
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (EVP_DigestInit_ex(ctx, core_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, ra_throttle_salt, sizeof(ra_throttle_salt)) !=
	        1 ||
	    EVP_DigestUpdate(ctx, &kind, 1) != 1 ||
	    EVP_DigestUpdate(ctx, data, len) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 ||
	    mdlen < RA_THROTTLE_KEY_LEN)
		goto out;
	memcpy(key, md, RA_THROTTLE_KEY_LEN);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/*
 * The key of a client "ip:port" or "[ip]:port": the address without the
 * port, an IPv6 address cut to its /64 (one host usually holds a whole
 * /64, so counting its addresses apart would count nothing), an
 * IPv4-mapped IPv6 address as the IPv4 address.  A text that is no
 * address counts as itself without what follows its last colon.
 */
static int
ra_throttle_client_key(const char *client,
                       unsigned char key[RA_THROTTLE_KEY_LEN])
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
	                                         0, 0, 0, 0, 0xff, 0xff};
	unsigned char addr[16];
	char text[64];
	const char *end;
	size_t len;

	if (client == NULL)
		return -1;
	if (client[0] == '[' && (end = strchr(client, ']')) != NULL) {
		len = (size_t)(end - client - 1);
		if (len < sizeof(text)) {
			memcpy(text, client + 1, len);
			text[len] = '\0';
			if (inet_pton(AF_INET6, text, addr) == 1) {
				if (memcmp(addr, mapped, sizeof(mapped)) == 0)
					return ra_throttle_key('c', addr + 12,
					                       4, key);
				return ra_throttle_key('c', addr, 8, key);
			}
		}
		return ra_throttle_key('c', client, len + 2, key);
	}
	end = strrchr(client, ':');
	len = end != NULL ? (size_t)(end - client) : strlen(client);
	if (len < sizeof(text)) {
		memcpy(text, client, len);
		text[len] = '\0';
		if (inet_pton(AF_INET, text, addr) == 1)
			return ra_throttle_key('c', addr, 4, key);
	}
	return ra_throttle_key('c', client, len, key);
}

static int
ra_throttle_user_key(const char *user, unsigned char key[RA_THROTTLE_KEY_LEN])
{
	if (user == NULL || user[0] == '\0')
		return -1;
	return ra_throttle_key('u', user, strlen(user), key);
}

/* Forgets the failures e's time has worn off; lock held. */
static void
ra_throttle_decay(struct ra_throttle_entry *e, long long now)
{
	long long gone;

	if (e->failures == 0 || now <= e->last)
		return;
	gone = (now - e->last) / (RA_THROTTLE_FORGET * 1000LL);
	if (gone >= (long long)e->failures) {
		e->failures = 0;
		return;
	}
	e->failures -= (unsigned int)gone;
	e->last += gone * RA_THROTTLE_FORGET * 1000LL;
}

/* Whether e holds nothing worth keeping at now; lock held. */
static int
ra_throttle_idle(struct ra_throttle_entry *e, long long now)
{
	ra_throttle_decay(e, now);
	return e->failures == 0 && e->until <= now;
}

/* The set of key. */
static struct ra_throttle_entry *
ra_throttle_set(const unsigned char key[RA_THROTTLE_KEY_LEN])
{
	unsigned int i =
	    ((unsigned int)key[0] << 8 | key[1]) % RA_THROTTLE_SETS;

	return ra_throttle_table[i];
}

/* The live entry of key, or NULL; lock held. */
static struct ra_throttle_entry *
ra_throttle_find(const unsigned char key[RA_THROTTLE_KEY_LEN], long long now)
{
	struct ra_throttle_entry *set = ra_throttle_set(key);
	int i;

	for (i = 0; i < RA_THROTTLE_WAYS; i++)
		if (memcmp(set[i].key, key, RA_THROTTLE_KEY_LEN) == 0 &&
		    !ra_throttle_idle(&set[i], now))
			return &set[i];
	return NULL;
}

/*
 * The entry of key, made when there is none in the place of an idle one,
 * else of the one with the fewest failures (the oldest of those): a
 * flood of new names pushes out one another before a punished entry;
 * lock held.
 */
static struct ra_throttle_entry *
ra_throttle_make(const unsigned char key[RA_THROTTLE_KEY_LEN], long long now)
{
	struct ra_throttle_entry *set = ra_throttle_set(key), *e, *victim;
	int i;

	if ((e = ra_throttle_find(key, now)) != NULL)
		return e;
	victim = &set[0];
	for (i = 0; i < RA_THROTTLE_WAYS; i++) {
		e = &set[i];
		if (ra_throttle_idle(e, now)) {
			victim = e;
			break;
		}
		if (e->failures < victim->failures ||
		    (e->failures == victim->failures && e->last < victim->last))
			victim = e;
	}
	memset(victim, 0, sizeof(*victim));
	memcpy(victim->key, key, RA_THROTTLE_KEY_LEN);
	victim->last = now;
	return victim;
}

/* Raises the failures of key, free of them allowed; lock held. */
static void
ra_throttle_raise(const unsigned char key[RA_THROTTLE_KEY_LEN],
                  unsigned int free_failures, long long now)
{
	struct ra_throttle_entry *e = ra_throttle_make(key, now);
	unsigned int over;
	long long delay;

	ra_throttle_decay(e, now);
	if (e->failures < RA_THROTTLE_FAILURES_MAX)
		e->failures++;
	e->last = now;
	if (e->failures <= free_failures)
		return;
	/* 1, 2, 4 ... seconds: the shift stops long before it could
	 * overflow, the cap applies after it. */
	over = e->failures - free_failures - 1;
	delay = 1LL << (over < 16 ? over : 16);
	if (delay > RA_THROTTLE_DELAY_MAX)
		delay = RA_THROTTLE_DELAY_MAX;
	e->until = now + delay * 1000;
}

const char *
ra_auth_throttle_reason_name(enum ra_auth_throttle_reason reason)
{
	switch (reason) {
	case RA_THROTTLE_CLIENT:
		return "client";
	case RA_THROTTLE_USER:
		return "user";
	case RA_THROTTLE_BUSY:
		return "busy";
	default:
		return "none";
	}
}

unsigned int
ra_auth_throttle_wait(const char *client, const char *user,
                      enum ra_auth_throttle_reason *reason)
{
	unsigned char ckey[RA_THROTTLE_KEY_LEN], ukey[RA_THROTTLE_KEY_LEN];
	int have_c = ra_throttle_client_key(client, ckey) == 0,
	    have_u = ra_throttle_user_key(user, ukey) == 0;
	struct ra_throttle_entry *e;
	long long now, wait_c = 0, wait_u = 0;

	pthread_mutex_lock(&ra_throttle_lock);
	now = ra_throttle_now();
	if (have_c && (e = ra_throttle_find(ckey, now)) != NULL &&
	    e->until > now)
		wait_c = e->until - now;
	if (have_u && (e = ra_throttle_find(ukey, now)) != NULL &&
	    e->until > now)
		wait_u = e->until - now;
	pthread_mutex_unlock(&ra_throttle_lock);
	if (reason != NULL)
		*reason = wait_c == 0 && wait_u == 0 ? RA_THROTTLE_NONE
		          : wait_c >= wait_u         ? RA_THROTTLE_CLIENT
		                                     : RA_THROTTLE_USER;
	/* In whole seconds, rounded up: never "0" while it still waits. */
	return (unsigned int)(((wait_c >= wait_u ? wait_c : wait_u) + 999) /
	                      1000);
}

void
ra_auth_throttle_failed(const char *client, const char *user)
{
	unsigned char ckey[RA_THROTTLE_KEY_LEN], ukey[RA_THROTTLE_KEY_LEN];
	int have_c = ra_throttle_client_key(client, ckey) == 0,
	    have_u = ra_throttle_user_key(user, ukey) == 0;
	long long now;

	pthread_mutex_lock(&ra_throttle_lock);
	now = ra_throttle_now();
	if (have_c)
		ra_throttle_raise(ckey, RA_THROTTLE_CLIENT_FREE, now);
	if (have_u)
		ra_throttle_raise(ukey, RA_THROTTLE_USER_FREE, now);
	pthread_mutex_unlock(&ra_throttle_lock);
}

void
ra_auth_throttle_passed(const char *user)
{
	unsigned char ukey[RA_THROTTLE_KEY_LEN];
	struct ra_throttle_entry *e;

	if (ra_throttle_user_key(user, ukey) != 0)
		return;
	pthread_mutex_lock(&ra_throttle_lock);
	if ((e = ra_throttle_find(ukey, ra_throttle_now())) != NULL)
		memset(e, 0, sizeof(*e));
	pthread_mutex_unlock(&ra_throttle_lock);
}

int
ra_auth_throttle_enter(const char *client)
{
	unsigned char key[RA_THROTTLE_KEY_LEN];
	int i, place = -1, free_place = -1;

	/* A client with no address shares one key with all such. */
	if (ra_throttle_client_key(client, key) != 0)
		memset(key, 0, sizeof(key));
	pthread_mutex_lock(&ra_throttle_lock);
	if (ra_throttle_queued >= RA_THROTTLE_QUEUE_MAX)
		goto out;
	for (i = 0; i < RA_THROTTLE_QUEUE_MAX; i++) {
		if (ra_throttle_places[i].taken == 0) {
			if (free_place < 0)
				free_place = i;
		} else if (memcmp(ra_throttle_places[i].key, key,
		                  sizeof(key)) == 0) {
			place = i;
			break;
		}
	}
	if (place >= 0 &&
	    ra_throttle_places[place].taken >= RA_THROTTLE_QUEUE_PER_CLIENT) {
		place = -1;
		goto out;
	}
	/* Fewer places are taken than there are, so one is free. */
	if (place < 0) {
		place = free_place;
		memcpy(ra_throttle_places[place].key, key, sizeof(key));
	}
	ra_throttle_places[place].taken++;
	ra_throttle_queued++;
out:
	pthread_mutex_unlock(&ra_throttle_lock);
	return place;
}

void
ra_auth_throttle_leave(int place)
{
	if (place < 0 || place >= RA_THROTTLE_QUEUE_MAX)
		return;
	pthread_mutex_lock(&ra_throttle_lock);
	if (ra_throttle_places[place].taken > 0) {
		ra_throttle_places[place].taken--;
		ra_throttle_queued--;
	}
	pthread_mutex_unlock(&ra_throttle_lock);
}

void
ra_auth_throttle_refused(enum ra_auth_throttle_reason reason)
{
	if (reason > RA_THROTTLE_NONE && reason < RA_THROTTLE__MAX)
		__atomic_add_fetch(&ra_throttle_counts[reason], 1,
		                   __ATOMIC_RELAXED);
}

unsigned long long
ra_auth_throttle_refusals(enum ra_auth_throttle_reason reason)
{
	if (reason <= RA_THROTTLE_NONE || reason >= RA_THROTTLE__MAX)
		return 0;
	return __atomic_load_n(&ra_throttle_counts[reason], __ATOMIC_RELAXED);
}

void
ra_auth_throttle_reset(time_t (*now)(void))
{
	int i;

	pthread_mutex_lock(&ra_throttle_lock);
	memset(ra_throttle_table, 0, sizeof(ra_throttle_table));
	memset(ra_throttle_places, 0, sizeof(ra_throttle_places));
	ra_throttle_queued = 0;
	for (i = 0; i < RA_THROTTLE__MAX; i++)
		__atomic_store_n(&ra_throttle_counts[i], 0, __ATOMIC_RELAXED);
	ra_throttle_clock = now;
	pthread_mutex_unlock(&ra_throttle_lock);
}
