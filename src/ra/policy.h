/*
 * policy.h: the authorization policy of one CA label (RFC 7030 §3.7): what
 * an authenticated client may ask for.  Rules on the subject CN and the
 * subjectAltName entries (POSIX extended regular expressions matched
 * against the whole value, and templates tied to the client's identity),
 * on the key and signature algorithms, and an allow-list of requested
 * extensions.  The evaluator is pure: it reads a parsed CSR and the
 * identity, does no I/O and keeps no state, so it can be fuzzed and runs
 * on any thread.  Independent of est/.
 */
#ifndef ESTRAD_RA_POLICY_H
#define ESTRAD_RA_POLICY_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "core/error.h"

/* A parsed "policy" object; read-only once built, shared by all threads. */
struct ra_policy;

/*
 * Parses conf, the label's "policy" object (NULL: the defaults), strictly:
 * unknown keys, wrong types, bad patterns and unknown algorithm names are
 * errors.  Returns a new policy (free with ra_policy_free) or NULL with
 * err->key set to the key path relative to the policy object ("san.dns.1")
 * and err->text to the reason.  Borrows conf for the call.
 */
struct ra_policy *ra_policy_new(const json_t *conf, struct core_err *err);

/* Frees policy.  NULL is a no-op. */
void ra_policy_free(struct ra_policy *policy);

/* What the evaluator looks at; every member borrowed. */
struct ra_policy_input {
	X509_REQ *csr;       /* parsed, signature already verified */
	const char *user;    /* HTTP Basic user name, or NULL */
	const char *cert_cn; /* CN of the client certificate, or NULL */
	int is_ra;           /* the client is an id-kp-cmcRA RA (§3.7) */
	/* The label's CA receives the CSR as the client sent it (certsrv,
	 * dogtag, helper): a requested extension cannot be dropped there,
	 * so one the allow-list does not name is refused. */
	int forwards_csr;
};

/* The evaluator's answer. */
struct ra_policy_verdict {
	int allowed;
	/* Refused: the rule's name as in the configuration ("san.dns",
	 * "cn_equals", "keys", "signature", "extensions"), a reason that
	 * names it (the client's text/plain answer and the log cause), and
	 * what the operator may check. */
	char rule[64];
	char reason[512];
	char hint[256];
	/* Allowed: the requested extensions the allow-list dropped, by short
	 * name and comma separated ("" when none); the CA is not to honour
	 * them, and the RA logs them.  Always "" when in->forwards_csr. */
	char dropped[256];
};

/*
 * Checks in against policy and fills verdict.  Returns 0 when allowed,
 * -1 when refused.  Borrows everything; no I/O; thread-safe.
 */
int ra_policy_check(const struct ra_policy *policy,
                    const struct ra_policy_input *in,
                    struct ra_policy_verdict *verdict);

/*
 * Returns 1 when policy's extensions.unlisted is "drop" as written in the
 * configuration, 0 when it is "refuse" or not set.  On a label whose CA
 * receives the CSR as sent, "drop" cannot be kept (unlisted extensions are
 * refused there), which estrad --doctor points out.  Borrows policy.
 */
int ra_policy_says_drop(const struct ra_policy *policy);

/*
 * Lists into buf (size len), comma separated, the names any client the
 * label authenticates may ask for whoever it is: "subject CN" when neither
 * a cn pattern nor cn_equals binds it, and each subjectAltName type no
 * rule restricts ("dNSName", "iPAddress", "rfc822Name", "URI",
 * "otherName/dirName") when the policy honours the extension and san.max
 * is not 0.  Returns 1 when the list is not empty, else 0 with buf "".
 * Borrows policy; thread-safe.
 */
int ra_policy_open_names(const struct ra_policy *policy, char *buf, size_t len);

/*
 * Returns the CN of name (the last one, as TLS does) into buf (size len),
 * "" when there is none.  Returns buf.  Borrows name.
 */
const char *ra_policy_name_cn(const X509_NAME *name, char *buf, size_t len);

#endif
