/*
 * auth_throttle.h: limits on guessing HTTP Basic passwords.  Failed checks
 * are counted per client address (an IPv6 client by its /64) and per user
 * name, known or not.  Past a number of free failures, each further one
 * makes that client or user wait before its next check: one second, then
 * twice as long each time, up to a cap.  Failures are forgotten one per
 * RA_THROTTLE_FORGET seconds, and a user's are forgotten at once when its
 * password is checked right; a client's are not, so that one working
 * login does not let a client try passwords on every other user.
 *
 * The crypt(3) checks handed to helper threads are bounded too, in total
 * and per client address, so that one client cannot queue so many that
 * everybody else waits behind them.
 *
 * Memory is fixed: the failure table has RA_THROTTLE_ENTRIES entries in
 * sets chosen by a salted digest of the key (a client cannot aim at a
 * set), and a new key takes the place of the least punished entry of its
 * set.  Every function is thread-safe.
 */
#ifndef ESTRAD_RA_AUTH_THROTTLE_H
#define ESTRAD_RA_AUTH_THROTTLE_H

#include <time.h>

/* Failures a user name may have before it must wait. */
#define RA_THROTTLE_USER_FREE 10
/* Failures a client address may have before it must wait: more than a
 * user, since several devices may share an address. */
#define RA_THROTTLE_CLIENT_FREE 20
/* The longest wait, in seconds. */
#define RA_THROTTLE_DELAY_MAX 60
/* Seconds after which one failure is forgotten. */
#define RA_THROTTLE_FORGET 60
/* Clients and user names whose failures are remembered. */
#define RA_THROTTLE_ENTRIES 4096
/* crypt(3) checks waiting for or running on a helper thread, in total and
 * from one client address. */
#define RA_THROTTLE_QUEUE_MAX        128
#define RA_THROTTLE_QUEUE_PER_CLIENT 16

/* Why a check was not run. */
enum ra_auth_throttle_reason {
	RA_THROTTLE_NONE,
	RA_THROTTLE_CLIENT, /* the client address failed too often */
	RA_THROTTLE_USER,   /* the user name failed too often */
	RA_THROTTLE_BUSY,   /* no room among the queued crypt(3) checks */
	RA_THROTTLE__MAX
};

/* Returns "client", "user", "busy" or "none" (static). */
const char *ra_auth_throttle_reason_name(enum ra_auth_throttle_reason reason);

/*
 * Returns how many seconds client (an "ip:port" or "[ip]:port"; borrowed)
 * and user (borrowed; NULL or "" when there is none) must wait before a
 * password of theirs is checked, 0 when it may be checked now.  When
 * non-zero, *reason (may be NULL) says which of the two waits longer.
 */
unsigned int ra_auth_throttle_wait(const char *client, const char *user,
                                   enum ra_auth_throttle_reason *reason);

/* Counts a failed check (unknown user or wrong password) against client
 * and user (borrowed; user may be NULL). */
void ra_auth_throttle_failed(const char *client, const char *user);

/* A right password: forgets the failures of user (borrowed). */
void ra_auth_throttle_passed(const char *user);

/*
 * Takes a place among the queued crypt(3) checks for client (borrowed).
 * Returns the place (give it back with ra_auth_throttle_leave()), or -1
 * when the queue, or the client's share of it, is full.
 */
int ra_auth_throttle_enter(const char *client);

/* Gives back a place ra_auth_throttle_enter() returned. */
void ra_auth_throttle_leave(int place);

/* Counts a request refused for reason, for the metric. */
void ra_auth_throttle_refused(enum ra_auth_throttle_reason reason);

/* Returns how many requests were refused for reason since the start. */
unsigned long long
ra_auth_throttle_refusals(enum ra_auth_throttle_reason reason);

/*
 * For tests: forgets every failure, place and count, and makes the clock
 * now() (NULL: the system's monotonic clock, in seconds).
 */
void ra_auth_throttle_reset(time_t (*now)(void));

#endif
