/*
 * config.h: estrad's configuration, loaded from one JSON file (jansson).
 * Strict: unknown keys, wrong types, out-of-range values and missing files
 * are errors naming the file, line, column and key.  Relative paths are
 * relative to the directory of the configuration file.
 */
#ifndef ESTRAD_RA_CONFIG_H
#define ESTRAD_RA_CONFIG_H

#include <stddef.h>

#include "ca_plugins/ca.h"
#include "ra/auth_basic.h"
#include "ra/pending.h"

/* Ways a client may authenticate on a label (bits of ra_label.auth). */
#define RA_AUTH_NONE  0x0u /* anonymous enrollment (not the default) */
#define RA_AUTH_CERT  0x1u /* TLS client certificate, explicit or implicit */
#define RA_AUTH_BASIC 0x2u /* HTTP Basic against the users file */

/* b64_wrap values other than a column count. */
#define RA_WRAP_AUTO -1
#define RA_WRAP_NONE 0

/* One CA label: /.well-known/est/<name>/... */
struct ra_label {
	char *name; /* owned */
	/* Accepted authentication for simpleenroll/simplereenroll: any one
	 * of the RA_AUTH_* bits set suffices, RA_AUTH_NONE allows anyone. */
	unsigned int auth;
	int b64_wrap;          /* RA_WRAP_AUTO, RA_WRAP_NONE, 64 or 76 */
	int accept_pem_armour; /* strip -----BEGIN ...----- armour on input */
	int include_chain;     /* enroll answer carries the CA chain too */
	unsigned int
	    retry_after; /* seconds for 202/503 when the CA says none */
	/* Seconds an enrollment waits for the CA before the client gets 202
	 * and the call goes on in the background (est-protocol.md §5). */
	unsigned int ca_wait;
	/* csrattrs answer: the "csrattrs" list as given (OIDs, names or
	 * "KEYTYPE:PARAM"), each checked with OpenSSL at load; est builds the
	 * CsrAttrs DER from it.  Empty list: 204.  Owned. */
	char **csrattrs;
	size_t ncsrattrs;
	struct ca_instance *ca; /* owned */
};

/* The whole configuration.  Read-only once loaded; shared by all threads. */
struct ra_config {
	char *path; /* the file it was loaded from; owned */
	char *dir;  /* its directory; owned */

	char **listen; /* "host:port" strings; owned, nlisten of them */
	size_t nlisten;
	int workers; /* worker threads; 0 in the file means number of cores */

	struct {
		char *cert;         /* server certificate (+ chain), PEM */
		char *key;          /* its private key, PEM */
		char *explicit_ca;  /* client trust: EST CA chain, PEM */
		char *implicit_ca;  /* client trust: third-party CAs or NULL */
		char *ciphers;      /* TLS 1.2 cipher list */
		char *ciphersuites; /* TLS 1.3 cipher suites */
		int min_version;    /* TLS1_2_VERSION or TLS1_3_VERSION */
		int request_client_cert; /* ask for (never require) a cert */
		unsigned int session_timeout; /* seconds */
	} tls; /* all paths absolute after load; owned */

	struct {
		size_t max_body;      /* bytes; larger bodies get 413 */
		size_t max_headers;   /* bytes of request head */
		unsigned int timeout; /* seconds of read/write inactivity */
	} limits;

	struct {
		char *error;  /* path, or "-" for stderr; owned */
		char *access; /* path, "-" for stderr, or NULL for none */
		char *audit;  /* path or NULL for none */
		int level;    /* most verbose enum ca_log_level written */
	} logs;

	char *users; /* htpasswd file for Basic, or NULL; absolute; owned */
	struct ra_users *users_table; /* loaded from users, or NULL; owned */

	/* Pending-request store ("pending" object), or NULL when none is
	 * configured (a PENDING answer is then still 202, but not kept). */
	char *pending_dir;             /* absolute; owned */
	unsigned int pending_lifetime; /* seconds */
	struct ra_pending *pending;    /* owned */

	struct ra_label **labels; /* owned, nlabels of them */
	size_t nlabels;
	struct ra_label *default_label; /* borrowed from labels */
};

/*
 * Loads and validates path, including every file it names and every
 * label's CA backend configuration.  Returns a new config (free with
 * ra_config_free), or NULL with a one-line message in err such as
 * `conf/estrad.json:12:7: labels.default.ca: unknown key "backnd"`.
 */
struct ra_config *ra_config_load(const char *path, char *err, size_t errlen);

/* Frees config and all it owns, CA instances included.  NULL is a no-op. */
void ra_config_free(struct ra_config *config);

/* Returns the label called name (borrowed from config), or NULL. */
struct ra_label *ra_config_label(const struct ra_config *config,
                                 const char *name);

/*
 * Finds where the value at a dotted key path ("labels.default.ca.cert")
 * starts in a JSON text that jansson already accepted, or where the key
 * itself is when last_is_key is set.  Sets 1-based *line and *column and
 * returns 0, or -1 if the path is not in text.  Exposed for tests.
 */
int ra_config_locate(const char *text, size_t len, const char *path,
                     int last_is_key, int *line, int *column);

#endif
