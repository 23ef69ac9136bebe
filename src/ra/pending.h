/*
 * pending.h: the store of pending enrollments.  When a CA takes a request
 * under submission, or is slower than the label's ca_wait, estrad answers
 * 202 + Retry-After and remembers the request here; the client's retry
 * (RFC 7030 §4.2.3: the same CSR, perhaps rebuilt for a new TLS session)
 * finds it again by label, identity and public key, even after a restart.
 *
 * The store is reached only through struct ra_pending_ops, so that a store
 * shared by several estrad nodes behind one load balancer can replace the
 * default one, which keeps one JSON file per record in a state directory
 * and makes every write durable (temporary file, fsync, rename, fsync of
 * the directory) before the client hears 202.  The default store bounds
 * its records, in all and per identity, so that clients who never come
 * back cannot fill the disk or slow down expiry without end.
 */
#ifndef ESTRAD_RA_PENDING_H
#define ESTRAD_RA_PENDING_H

#include <sys/types.h>

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "ca_plugins/ca.h"

/* Hex SHA-256 plus NUL. */
#define RA_PENDING_KEY_MAX 65

/* Where a pending enrollment stands. */
enum ra_pending_state {
	/* The CA took it under submission; result.cookie polls it. */
	RA_PENDING_AT_CA,
	/* estrad's own CA call was still running when the client got 202;
	 * only the process that started it can finish it. */
	RA_PENDING_IN_FLIGHT,
	/* The CA answered after the client left: certificate kept here. */
	RA_PENDING_ISSUED,
	/* The CA refused after the client left: reason kept here. */
	RA_PENDING_REJECTED,
	RA_PENDING_STATE__MAX
};

/* Returns "at_ca", "in_flight", "issued" or "rejected". */
const char *ra_pending_state_name(enum ra_pending_state state);

/* One pending enrollment. */
struct ra_pending_record {
	char key[RA_PENDING_KEY_MAX]; /* ra_pending_key() */
	enum ra_pending_state state;
	char label[65];
	char identity[256];
	char first_rid[17];         /* the request that started it */
	char cookie[CA_COOKIE_MAX]; /* AT_CA: the CA's handle */
	char reason[CA_CAUSE_MAX];  /* REJECTED: the CA's reason */
	int status;                 /* REJECTED: the HTTP status */
	unsigned int retry_after;   /* seconds to tell the client */
	long pid;                   /* IN_FLIGHT: the process that owns it */
	time_t created;
	time_t expires;
	/* ISSUED: PEM certificates, the issued one first.  Owned; free with
	 * ra_pending_record_cleanup(). */
	char *certs_pem;
};

/* Frees what a record owns (not the record).  Safe on a zeroed record. */
void ra_pending_record_cleanup(struct ra_pending_record *record);

/*
 * Computes the record key: hex SHA-256 over the label, the authenticated
 * identity and the DER SubjectPublicKeyInfo of the CSR, so that a CSR
 * rebuilt for a new TLS session still finds its record while another
 * client's request for the same key does not.  Returns 0 or -1.
 */
int ra_pending_key(const char *label, const char *identity, X509_REQ *csr,
                   char key[RA_PENDING_KEY_MAX]);

/* PEM of certs (free with free()), or NULL. */
char *ra_pending_certs_to_pem(STACK_OF(X509) *certs);

/* Certificates from PEM (free with sk_X509_pop_free), or NULL. */
STACK_OF(X509) *ra_pending_certs_from_pem(const char *pem);

struct ra_pending;

/*
 * The operations of a store.  Every one is called from worker threads,
 * concurrently, and must be thread-safe; each returns at once (the default
 * store does local file I/O only).  err gets a one-line cause on -1.
 */
struct ra_pending_ops {
	const char *name;
	/* Writes record, replacing any with the same key, durably.
	 * RA_PENDING_FULL when a bound of the store refuses a new record
	 * (err names the bound), -1 on other failures. */
	int (*put)(struct ra_pending *store,
	           const struct ra_pending_record *record, char *err,
	           size_t errlen);
	/* 1 and *record filled (caller cleans it up), 0 when absent or
	 * expired (an expired record is removed), -1. */
	int (*get)(struct ra_pending *store, const char *key,
	           struct ra_pending_record *record, char *err, size_t errlen);
	/* 0 when removed or absent, -1. */
	int (*remove)(struct ra_pending *store, const char *key, char *err,
	              size_t errlen);
	/* Removes records whose expires is before now; returns how many, or
	 * -1.  Each removed record is reported through the error log.  It
	 * may do part of the work per call (the default store looks at
	 * RA_PENDING_EXPIRE_SCAN records at most and resumes where it
	 * stopped), so call it regularly. */
	int (*expire)(struct ra_pending *store, time_t now, char *err,
	              size_t errlen);
	/* Frees the store. */
	void (*close)(struct ra_pending *store);
};

/* A store: its operations and their private state. */
struct ra_pending {
	const struct ra_pending_ops *ops;
	unsigned int lifetime; /* seconds a record lives */
};

/* put: a bound of the store refuses a new record. */
#define RA_PENDING_FULL (-2)

/* Default bounds of the default store (pending.max_records and
 * pending.max_per_identity). */
#define RA_PENDING_MAX_RECORDS      10000
#define RA_PENDING_MAX_PER_IDENTITY 1000

/* What one expire call of the default store does at most: records looked
 * at, and expired records read, removed and logged. */
#define RA_PENDING_EXPIRE_SCAN   1024
#define RA_PENDING_EXPIRE_REMOVE 64

/* How the default store is opened. */
struct ra_pending_params {
	unsigned int lifetime;         /* seconds a record lives */
	unsigned int max_records;      /* records in the store, at most */
	unsigned int max_per_identity; /* records of one identity, at most */
	uid_t uid; /* the user estrad writes as (ra_safedir_uid()) */
};

/*
 * Opens the default store on dir, created with mode 0700 if missing (and
 * given to params->uid when estrad, as root, will drop to that user).
 * The directory must be writable by params->uid, owned by it or root, and
 * neither group- nor world-writable.  Borrows dir and params.  Returns a
 * new store (free with ra_pending_close) or NULL with the directory and
 * the reason in err.  The first store opened on a directory reads every
 * record into an index in memory, which later stores on the same
 * directory (a reload) share.
 */
struct ra_pending *ra_pending_open_dir(const char *dir,
                                       const struct ra_pending_params *params,
                                       char *err, size_t errlen);

/*
 * How many records the last expire call on store's directory looked at
 * (for tests: the work of one call is bounded).  store must be a default
 * store.
 */
size_t ra_pending_dir_examined(const struct ra_pending *store);

/* Closes store.  NULL is a no-op. */
void ra_pending_close(struct ra_pending *store);

/*
 * Reads one record from its JSON text (the default store's file format),
 * strictly: unknown keys, wrong types and oversized strings are errors.
 * Exposed for tests and fuzzing.  Returns 0 and fills record (clean it
 * up), or -1 with err.
 */
int ra_pending_record_parse(const char *text, size_t len,
                            struct ra_pending_record *record, char *err,
                            size_t errlen);

/* Formats record as JSON text (free with free()), or NULL. */
char *ra_pending_record_format(const struct ra_pending_record *record);

#endif
