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
#include "core/log.h"
#include "ra/auth_basic.h"
#include "ra/auth_cert.h"
#include "ra/authorizer.h"
#include "ra/pending.h"
#include "ra/policy.h"
#include "ra/pop.h"

/* Ways a client may authenticate on a label (bits of ra_label.auth). */
#define RA_AUTH_NONE       0x0u /* anonymous enrollment (not the default) */
#define RA_AUTH_CERT       0x1u /* TLS client certificate, explicit or implicit */
#define RA_AUTH_BASIC      0x2u /* HTTP Basic against the users file */
#define RA_AUTH_CERT_BASIC 0x4u /* both together ("cert+basic") */

/* Operations a label serves without authentication (ra_label.anonymous). */
#define RA_ANON_CACERTS  0x1u
#define RA_ANON_CSRATTRS 0x2u

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
	 * and the call goes on in the background. */
	unsigned int ca_wait;
	/* csrattrs answer: the "csrattrs" list as given (OIDs, names or
	 * "KEYTYPE:PARAM"), each checked with OpenSSL at load; est builds the
	 * CsrAttrs DER from it.  Empty list: 204.  Owned. */
	char **csrattrs;
	size_t ncsrattrs;
	struct ca_instance *ca; /* owned */

	/* Authentication and authorization (RFC 7030 §3.3, §3.5, §3.7,
	 * §4.2.2); see README "Authentication and policy". */
	unsigned int anonymous;      /* RA_ANON_*: served without auth */
	unsigned int trust_enroll;   /* RA_TRUST_BIT_* for simpleenroll */
	unsigned int trust_reenroll; /* RA_TRUST_BIT_* for simplereenroll */
	char *explicit_ca;           /* the label's own stores, absolute, or */
	char *implicit_ca;           /* NULL when not set; owned */
	int own_stores;              /* one of them is set: tls.* count only
	                                with trust.inherit */
	/* The stores that count for the label, own or tls.*'s, or NULL for
	 * none; borrowed from the above or from config->tls. */
	const char *explicit_path;
	const char *implicit_path;
	struct ra_trust *trust;      /* built from those when own_stores,
	                                else NULL for tls.*'s; owned */
	int require_client_auth_eku; /* client leaf must list clientAuth
	                                (default) */
	int ra_enabled;              /* id-kp-cmcRA clients act as RAs */
	int ra_waive_pop;            /* and need not link PoP */
	struct ra_policy *ra_policy; /* policy for RA clients, or NULL for
	                                the label's; owned */
	unsigned int grace_days;     /* reenroll of a certificate expired at
	                                most this long ago */
	int renew;                   /* reenroll with the same key */
	int rekey;                   /* reenroll with a new key */
	struct ra_crl *crl;          /* revoked certificates, or NULL; owned */
	enum ra_pop_mode pop;        /* challengePassword linking */
	int tls_exporter;            /* accept RFC 9266 tls-exporter on 1.3 */
	struct ra_policy *policy;    /* never NULL after load; owned */
	struct ra_authorizer *authorizer; /* or NULL; owned */
};

/* The whole configuration.  Read-only once loaded; shared by all threads. */
struct ra_config {
	char *path; /* the file it was loaded from; owned */
	char *dir;  /* its directory; owned */

	char **listen; /* "host:port" strings; owned, nlisten of them */
	size_t nlisten;
	int workers; /* worker threads; 0 in the file means number of cores */
	/* Who to run as once the listeners are bound, when started as root
	 * ("user", optional "group"; both exist on this system); NULL when
	 * not set.  Owned. */
	char *user;
	char *group;

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
		/* What a client's certificate list may cost the handshake
		 * (est/listener.c): intermediates between leaf and trust
		 * anchor, bytes of the Certificate message, bits of an RSA
		 * modulus or DSA prime in any of its certificates. */
		unsigned int verify_depth;
		unsigned int max_cert_list;
		unsigned int max_key_bits;
	} tls; /* all paths absolute after load; owned */

	struct {
		size_t max_body;      /* bytes; larger bodies get 413 */
		size_t max_headers;   /* bytes of request head */
		unsigned int timeout; /* seconds of read/write inactivity */
		/* Seconds from accept to a completed TLS handshake, and from
		 * a request's first byte to its last body byte, however the
		 * bytes trickle in (est/limits.c). */
		unsigned int handshake_timeout;
		unsigned int request_timeout;
		/* Open connections one client address, one worker may
		 * hold; 0 = no limit (est/limits.c). */
		unsigned int max_conns_per_client;
		unsigned int max_conns_per_worker;
		/* max_conns_per_worker is the default, which est/limits.c
		 * lowers when the descriptor limit cannot hold it. */
		int per_worker_default;
	} limits;

	struct {
		char *error;  /* path, or "-" for stderr; owned */
		char *access; /* path, "-" for stderr, or NULL for none */
		char *audit;  /* path or NULL for none */
		int level;    /* most verbose enum core_log_level written */
	} logs;

	char *users; /* htpasswd file for Basic, or NULL; absolute; owned */
	/* The users table loaded at start (or NULL), owned by users_slot,
	 * which holds the current one after SIGHUP reloads: workers read
	 * ra_users_slot_get(users_slot). */
	struct ra_users *users_table;
	struct ra_users_slot *users_slot; /* owned; NULL without users */

	/* Pending-request store ("pending" object), or NULL when none is
	 * configured (a PENDING answer is then still 202, but not kept). */
	char *pending_dir;             /* absolute; owned */
	unsigned int pending_lifetime; /* seconds */
	struct ra_pending *pending;    /* owned */

	/* "metrics.listen": the plain-HTTP /metrics, /healthz and /readyz
	 * address, or NULL when the listener is off.  Owned. */
	char *metrics_listen;

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

/*
 * Logs, once per loaded configuration, what the operator must fix but
 * that does not stop it from loading: a label's CRL past its nextUpdate.
 * Call it when the configuration is about to serve (start, reload).
 * Borrows config.
 */
void ra_config_log_warnings(const struct ra_config *config);

/*
 * The same for one label's CRL, when a request finds it stale first (it
 * went past its nextUpdate while serving).  Borrows label.
 */
void ra_config_log_crl(const struct ra_label *label);

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
