/*
 * pending.c: pending-enrollment records and the default store, one JSON
 * file per record in a state directory, written durably.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
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

#include "core/certs.h"
#include "core/digest.h"
#include "core/log.h"
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
	    EVP_DigestInit_ex(ctx, core_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, label, strlen(label) + 1) != 1 ||
	    EVP_DigestUpdate(ctx, identity, strlen(identity) + 1) != 1 ||
	    EVP_DigestUpdate(ctx, spki, (size_t)len) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		goto out;
	core_hex_encode(md, mdlen, key, RA_PENDING_KEY_MAX);
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

	certs = core_certs_read_pem(bio, 0, NULL);
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

/*
 * The default store keeps one file per record in its directory, and an
 * index of the records in memory (key, identity, expiry), so that its
 * bounds are checked, and expired records found, without reading the
 * directory.  Every store opened on one directory shares one index: a
 * reload opens a new store while requests of the old configuration still
 * use the old one.  An index lives as long as a store uses it.
 */

/* A node of a hash chain, first member of what a table holds. */
struct rp_node {
	struct rp_node *next;
	uint64_t hash;
};

/* A chained hash table; nslots is a power of two. */
struct rp_table {
	struct rp_node **slots;
	size_t nslots;
	size_t count;
};

/* The records of one identity. */
struct rp_ident {
	struct rp_node node; /* first */
	unsigned int count;
	char name[];
};

/* One record. */
struct rp_entry {
	struct rp_node node; /* first */
	/* The scan list, in the order the records were added. */
	struct rp_entry *older, *newer;
	struct rp_ident *ident;
	time_t expires;
	char key[RA_PENDING_KEY_MAX];
};

/* The index of one directory. */
struct rp_index {
	struct rp_index *next; /* in rp_indexes */
	dev_t dev;
	ino_t ino;
	unsigned int refs;    /* stores using it, under rp_indexes_lock */
	pthread_mutex_t lock; /* guards everything below */
	struct rp_table entries, idents;
	struct rp_entry *oldest, *newest;
	struct rp_entry *cursor; /* where the expiry scan goes on; NULL:
	                            at the oldest */
	size_t examined;         /* records the last scan looked at */
};

static pthread_mutex_t rp_indexes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rp_index *rp_indexes;

#define RP_TABLE_SLOTS 256

/* Temporary files older than this are what a crash left behind. */
#define RP_TMP_STALE 3600

/* Returns the hash of s: the first bytes of its SHA-256, which no client
 * can make collide on purpose. */
static uint64_t
rp_hash(const char *s)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;
	uint64_t h = 0;

	if (EVP_Digest(s, strlen(s), md, &len, core_sha256(), NULL) != 1)
		ERR_clear_error();
	for (i = 0; i < len && i < sizeof(h); i++)
		h = h << 8 | md[i];
	return h;
}

/*
 * Returns the link that points to the node of t whose string (at offset
 * off of the node) is name, or the NULL link that ends its chain.
 */
static struct rp_node **
rp_table_find(struct rp_table *t, uint64_t hash, const char *name, size_t off)
{
	struct rp_node **pp;

	for (pp = &t->slots[hash & (t->nslots - 1)]; *pp != NULL;
	     pp = &(*pp)->next)
		if ((*pp)->hash == hash &&
		    strcmp((const char *)*pp + off, name) == 0)
			break;
	return pp;
}

/* Adds node (absent from t), doubling the slots first when t is full;
 * without memory for them the chains just grow longer. */
static void
rp_table_add(struct rp_table *t, struct rp_node *node)
{
	struct rp_node **slots, *n, *next;
	size_t i, nslots = t->nslots * 2;

	if (t->count >= t->nslots &&
	    (slots = calloc(nslots, sizeof(*slots))) != NULL) {
		for (i = 0; i < t->nslots; i++)
			for (n = t->slots[i]; n != NULL; n = next) {
				next = n->next;
				n->next = slots[n->hash & (nslots - 1)];
				slots[n->hash & (nslots - 1)] = n;
			}
		free(t->slots);
		t->slots = slots;
		t->nslots = nslots;
	}
	node->next = t->slots[node->hash & (t->nslots - 1)];
	t->slots[node->hash & (t->nslots - 1)] = node;
	t->count++;
}

/* The entry of key, or NULL.  ix->lock held. */
static struct rp_entry *
rp_index_entry(struct rp_index *ix, const char *key)
{
	return (struct rp_entry *)*rp_table_find(
	    &ix->entries, rp_hash(key), key, offsetof(struct rp_entry, key));
}

/* The records of identity so far, or 0.  ix->lock held. */
static unsigned int
rp_index_count(struct rp_index *ix, const char *identity)
{
	struct rp_ident *id = (struct rp_ident *)*rp_table_find(
	    &ix->idents, rp_hash(identity), identity,
	    offsetof(struct rp_ident, name));

	return id != NULL ? id->count : 0;
}

/* Adds the record key (absent) of identity.  ix->lock held.  Returns the
 * new entry, or NULL when out of memory. */
static struct rp_entry *
rp_index_add(struct rp_index *ix, const char *key, const char *identity,
             time_t expires)
{
	uint64_t hash = rp_hash(identity);
	struct rp_ident *id = (struct rp_ident *)*rp_table_find(
	    &ix->idents, hash, identity, offsetof(struct rp_ident, name));
	struct rp_entry *e = NULL;
	size_t len = strlen(identity);

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if (id == NULL) {
		if ((id = calloc(1, sizeof(*id) + len + 1)) == NULL) {
			free(e);
			return NULL;
		}
		memcpy(id->name, identity, len + 1);
		id->node.hash = hash;
		rp_table_add(&ix->idents, &id->node);
	}
	id->count++;
	e->ident = id;
	e->expires = expires;
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->node.hash = rp_hash(key);
	rp_table_add(&ix->entries, &e->node);
	e->older = ix->newest;
	if (ix->newest != NULL)
		ix->newest->newer = e;
	else
		ix->oldest = e;
	ix->newest = e;
	return e;
}

/* Forgets the record key, if indexed.  ix->lock held. */
static void
rp_index_del(struct rp_index *ix, const char *key)
{
	struct rp_node **pp = rp_table_find(&ix->entries, rp_hash(key), key,
	                                    offsetof(struct rp_entry, key));
	struct rp_entry *e = (struct rp_entry *)*pp;
	struct rp_ident *id;

	if (e == NULL)
		return;
	*pp = e->node.next;
	ix->entries.count--;
	if (ix->cursor == e)
		ix->cursor = e->newer;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		ix->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		ix->newest = e->older;
	id = e->ident;
	if (--id->count == 0) {
		pp = rp_table_find(&ix->idents, id->node.hash, id->name,
		                   offsetof(struct rp_ident, name));
		*pp = id->node.next;
		ix->idents.count--;
		free(id);
	}
	free(e);
}

/* Frees ix (no store uses it any more). */
static void
rp_index_free(struct rp_index *ix)
{
	struct rp_entry *e, *next;
	struct rp_node *n, *nn;
	size_t i;

	if (ix == NULL)
		return;
	for (e = ix->oldest; e != NULL; e = next) {
		next = e->newer;
		free(e);
	}
	for (i = 0; ix->idents.slots != NULL && i < ix->idents.nslots; i++)
		for (n = ix->idents.slots[i]; n != NULL; n = nn) {
			nn = n->next;
			free(n);
		}
	free(ix->entries.slots);
	free(ix->idents.slots);
	pthread_mutex_destroy(&ix->lock);
	free(ix);
}

/* The default store: one file per record under dir. */
struct ra_pending_dir {
	struct ra_pending base; /* first: the store is cast to this */
	char *dir;
	int dirfd;
	unsigned int max_records;
	unsigned int max_per_identity;
	struct rp_index *index; /* shared; NULL until opened */
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

/* Says whether name is a record's file name, and copies its key. */
static int
ra_pending_file_key(const char *name, char key[RA_PENDING_KEY_MAX])
{
	size_t n = strlen(name);

	if (n != RA_PENDING_KEY_MAX - 1 + 5 || strcmp(name + n - 5, ".json"))
		return 0;
	memcpy(key, name, RA_PENDING_KEY_MAX - 1);
	key[RA_PENDING_KEY_MAX - 1] = '\0';
	return ra_pending_key_ok(key);
}

/*
 * Reads the record of key from its file, and nothing else: 1 with record
 * filled (clean it up), 0 when there is none, -1 with err.
 */
static int
ra_pending_dir_read(struct ra_pending_dir *d, const char *key,
                    struct ra_pending_record *record, char *err, size_t errlen)
{
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
ra_pending_dir_put(struct ra_pending *store,
                   const struct ra_pending_record *record, char *err,
                   size_t errlen)
{
	struct ra_pending_dir *d = (struct ra_pending_dir *)store;
	struct rp_index *ix = d->index;
	char tmp[RA_PENDING_KEY_MAX + 32], name[RA_PENDING_KEY_MAX + 8];
	char rnd_hex[17], *text = NULL;
	unsigned char rnd[8];
	struct rp_entry *e;
	unsigned int n;
	size_t len, off = 0;
	int fd = -1, rc = -1, added = 0;

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
	/* A new record must fit the bounds, and holds its place from now
	 * on, so that concurrent writers cannot overshoot them together; a
	 * record written again (its state changed) is no new record. */
	pthread_mutex_lock(&ix->lock);
	if ((e = rp_index_entry(ix, record->key)) != NULL) {
		e->expires = record->expires;
	} else if (ix->entries.count >= d->max_records) {
		snprintf(err, errlen,
		         "the pending store is full: %zu records "
		         "(pending.max_records %u)",
		         ix->entries.count, d->max_records);
		rc = RA_PENDING_FULL;
	} else if ((n = rp_index_count(ix, record->identity)) >=
	           d->max_per_identity) {
		snprintf(err, errlen,
		         "the identity has %u pending records "
		         "(pending.max_per_identity %u)",
		         n, d->max_per_identity);
		rc = RA_PENDING_FULL;
	} else if (rp_index_add(ix, record->key, record->identity,
	                        record->expires) == NULL) {
		snprintf(err, errlen, "cannot index record: out of memory");
	} else {
		added = 1;
	}
	pthread_mutex_unlock(&ix->lock);
	if (e == NULL && !added)
		goto out;
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
		goto fail;
	}
	core_hex_encode(rnd, sizeof(rnd), rnd_hex, sizeof(rnd_hex));
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
fail:
	if (added) {
		pthread_mutex_lock(&ix->lock);
		rp_index_del(ix, record->key);
		pthread_mutex_unlock(&ix->lock);
	}
out:
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
	pthread_mutex_lock(&d->index->lock);
	rp_index_del(d->index, key);
	pthread_mutex_unlock(&d->index->lock);
	return 0;
}

/* Removes record, read just now and past its expiry, and says so in the
 * error log.  Returns 0 or -1. */
static int
ra_pending_dir_expired(struct ra_pending_dir *d,
                       const struct ra_pending_record *record)
{
	char why[512];

	if (ra_pending_dir_remove(&d->base, record->key, why, sizeof(why)) != 0)
		return -1;
	ra_log(CORE_LOG_WARN, "ra.pending",
	       &(struct ra_log_context){.rid = record->first_rid,
	                                .identity = record->identity,
	                                .label = record->label},
	       "the client did not come back before the pending lifetime "
	       "ended",
	       "pending request expired: state %s, cookie %s",
	       ra_pending_state_name(record->state),
	       record->cookie[0] != '\0' ? record->cookie : "-");
	return 0;
}

static int
ra_pending_dir_get(struct ra_pending *store, const char *key,
                   struct ra_pending_record *record, char *err, size_t errlen)
{
	struct ra_pending_dir *d = (struct ra_pending_dir *)store;
	struct rp_index *ix = d->index;
	int rc;

	rc = ra_pending_dir_read(d, key, record, err, errlen);
	if (rc == 0) {
		pthread_mutex_lock(&ix->lock);
		rp_index_del(ix, key);
		pthread_mutex_unlock(&ix->lock);
	}
	if (rc != 1)
		return rc;
	/* The expiry scan may not have come by yet: a record past its
	 * lifetime is gone all the same. */
	if (record->expires <= time(NULL)) {
		ra_pending_dir_expired(d, record);
		ra_pending_record_cleanup(record);
		memset(record, 0, sizeof(*record));
		return 0;
	}
	/* A record another process wrote is indexed once seen. */
	pthread_mutex_lock(&ix->lock);
	if (rp_index_entry(ix, key) == NULL)
		rp_index_add(ix, key, record->identity, record->expires);
	pthread_mutex_unlock(&ix->lock);
	return 1;
}

/*
 * Expires records a bounded number at a time, so that a store of tens of
 * thousands never holds up the worker that calls it: each call looks at
 * RA_PENDING_EXPIRE_SCAN records of the index at most, from where the last
 * call stopped, and reads and removes RA_PENDING_EXPIRE_REMOVE at most.
 */
static int
ra_pending_dir_expire(struct ra_pending *store, time_t now, char *err,
                      size_t errlen)
{
	struct ra_pending_dir *d = (struct ra_pending_dir *)store;
	struct rp_index *ix = d->index;
	char keys[RA_PENDING_EXPIRE_REMOVE][RA_PENDING_KEY_MAX], why[512];
	struct ra_pending_record record;
	struct rp_entry *e;
	size_t examined = 0, n = 0, i;
	int removed = 0, rc;

	(void)err;
	(void)errlen;
	pthread_mutex_lock(&ix->lock);
	for (e = ix->cursor != NULL ? ix->cursor : ix->oldest;
	     e != NULL && examined < RA_PENDING_EXPIRE_SCAN &&
	     n < RA_PENDING_EXPIRE_REMOVE;
	     e = e->newer) {
		examined++;
		if (e->expires <= now)
			memcpy(keys[n++], e->key, RA_PENDING_KEY_MAX);
	}
	/* At the end of the list the next call starts over. */
	ix->cursor = e;
	ix->examined = examined;
	pthread_mutex_unlock(&ix->lock);
	for (i = 0; i < n; i++) {
		rc = ra_pending_dir_read(d, keys[i], &record, why, sizeof(why));
		if (rc == 1 && record.expires > now) {
			/* Written again since it was indexed. */
			pthread_mutex_lock(&ix->lock);
			if ((e = rp_index_entry(ix, keys[i])) != NULL)
				e->expires = record.expires;
			pthread_mutex_unlock(&ix->lock);
		} else if (rc == 1) {
			if (ra_pending_dir_expired(d, &record) == 0)
				removed++;
		} else {
			/* Gone, or unreadable: the index forgets it, and a
			 * retry that finds it reports and drops it. */
			pthread_mutex_lock(&ix->lock);
			rp_index_del(ix, keys[i]);
			pthread_mutex_unlock(&ix->lock);
		}
		ra_pending_record_cleanup(&record);
	}
	return removed;
}

size_t
ra_pending_dir_examined(const struct ra_pending *store)
{
	const struct ra_pending_dir *d = (const struct ra_pending_dir *)store;
	size_t n;

	pthread_mutex_lock(&d->index->lock);
	n = d->index->examined;
	pthread_mutex_unlock(&d->index->lock);
	return n;
}

/*
 * Reads every record of d's directory into ix (not shared yet), and
 * removes the temporary files that a crash left behind.  Returns 0, or -1
 * with err.
 */
static int
rp_index_load(struct ra_pending_dir *d, struct rp_index *ix, char *err,
              size_t errlen)
{
	struct ra_pending_record record;
	struct dirent *entry;
	struct stat st;
	char key[RA_PENDING_KEY_MAX], why[512];
	time_t stale = time(NULL) - RP_TMP_STALE;
	DIR *dir = NULL;
	size_t n;
	int fd, rc = -1;

	if ((fd = openat(d->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) <
	        0 ||
	    (dir = fdopendir(fd)) == NULL) {
		snprintf(err, errlen, "cannot list %s: (%d: %s)", d->dir, errno,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	while ((entry = readdir(dir)) != NULL) {
		n = strlen(entry->d_name);
		if (entry->d_name[0] == '.' && n > 4 &&
		    strcmp(entry->d_name + n - 4, ".tmp") == 0) {
			if (fstatat(d->dirfd, entry->d_name, &st,
			            AT_SYMLINK_NOFOLLOW) == 0 &&
			    st.st_mtime < stale)
				unlinkat(d->dirfd, entry->d_name, 0);
			continue;
		}
		if (!ra_pending_file_key(entry->d_name, key) ||
		    ra_pending_dir_read(d, key, &record, why, sizeof(why)) != 1)
			continue;
		if (rp_index_entry(ix, key) == NULL &&
		    rp_index_add(ix, key, record.identity, record.expires) ==
		        NULL) {
			ra_pending_record_cleanup(&record);
			snprintf(err, errlen, "cannot index %s: out of memory",
			         d->dir);
			goto out;
		}
		ra_pending_record_cleanup(&record);
	}
	rc = 0;
out:
	if (dir != NULL)
		closedir(dir);
	return rc;
}

/* Finds the index of d's directory, or makes it.  Returns 0, or -1 with
 * err. */
static int
rp_index_attach(struct ra_pending_dir *d, char *err, size_t errlen)
{
	struct rp_index *ix = NULL;
	struct stat st;
	int rc = -1;

	if (fstat(d->dirfd, &st) != 0) {
		snprintf(err, errlen, "cannot stat %s: (%d: %s)", d->dir, errno,
		         strerror(errno));
		return -1;
	}
	pthread_mutex_lock(&rp_indexes_lock);
	for (ix = rp_indexes; ix != NULL; ix = ix->next)
		if (ix->dev == st.st_dev && ix->ino == st.st_ino)
			break;
	if (ix != NULL) {
		ix->refs++;
		d->index = ix;
		rc = 0;
		goto out;
	}
	if ((ix = calloc(1, sizeof(*ix))) == NULL ||
	    (ix->entries.slots = calloc(RP_TABLE_SLOTS, sizeof(void *))) ==
	        NULL ||
	    (ix->idents.slots = calloc(RP_TABLE_SLOTS, sizeof(void *))) ==
	        NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ix->entries.nslots = ix->idents.nslots = RP_TABLE_SLOTS;
	pthread_mutex_init(&ix->lock, NULL);
	ix->dev = st.st_dev;
	ix->ino = st.st_ino;
	ix->refs = 1;
	if (rp_index_load(d, ix, err, errlen) != 0)
		goto out;
	ix->next = rp_indexes;
	rp_indexes = ix;
	d->index = ix;
	ix = NULL;
	rc = 0;
out:
	pthread_mutex_unlock(&rp_indexes_lock);
	if (rc != 0 && ix != NULL) {
		if (ix->entries.slots == NULL || ix->idents.slots == NULL) {
			free(ix->entries.slots);
			free(ix->idents.slots);
			free(ix);
		} else {
			rp_index_free(ix);
		}
	}
	return rc;
}

/* Lets go of d's index; the last store frees it. */
static void
rp_index_detach(struct ra_pending_dir *d)
{
	struct rp_index **pp, *ix = d->index;

	if (ix == NULL)
		return;
	pthread_mutex_lock(&rp_indexes_lock);
	if (--ix->refs == 0) {
		for (pp = &rp_indexes; *pp != NULL; pp = &(*pp)->next)
			if (*pp == ix) {
				*pp = ix->next;
				break;
			}
	} else {
		ix = NULL;
	}
	pthread_mutex_unlock(&rp_indexes_lock);
	rp_index_free(ix);
	d->index = NULL;
}

static void
ra_pending_dir_close(struct ra_pending *store)
{
	struct ra_pending_dir *d = (struct ra_pending_dir *)store;

	rp_index_detach(d);
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
	d->max_records = params->max_records;
	d->max_per_identity = params->max_per_identity;
	if (rp_index_attach(d, err, errlen) != 0)
		goto out;
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
