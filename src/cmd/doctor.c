/*
 * doctor.c: estrad --doctor (doctor.h).
 *
 * The local checks read files with OpenSSL and stat(2); the CA checks run
 * every label's backend health and cacerts operations at once on an
 * event_base of their own, under one global deadline, and then map what
 * each returned to the ladder an operator walks by hand: DNS, TCP, TLS,
 * HTTP authentication, the backend's own probe (certsrv template, Dogtag
 * profile, helper IDENTIFY).  A curl code names the rung that failed, and
 * every rung below it answered, so they are reported ok.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "cmd/doctor.h"
#include "core/certs.h"
#include "core/log.h"
#include "core/time.h"
#include "est/listener.h"
#include "est/privilege.h"
#include "ra/config.h"
#include "ra/policy.h"

/* Seconds all CA checks together may take; then they are cancelled. */
#define DOC_DEADLINE 120

/* A certificate expiring within this many days is a warning. */
#define DOC_EXPIRY_WARN_DAYS 30

/* Warnings a backend may log during one label's checks that are kept. */
#define DOC_WARNS_MAX 4

/* A line's text fields are cut to this many bytes. */
#define DOC_TEXT_MAX 1024

enum doc_status { DOC_OK, DOC_WARN, DOC_FAIL };

static const char *const doc_status_names[] = {"ok", "warn", "FAIL"};

/* One run: where lines go and what they add up to. */
struct doctor {
	FILE *out;
	json_t *lines; /* the JSON array, or NULL for text */
	const struct ra_config *config;
	json_t *root; /* the configuration again, for backend details */
	size_t count[3];
	struct event_base *base;
	size_t running; /* CA calls not completed yet */
};

/* The CA checks of one label. */
struct doc_probe {
	struct doctor *d;
	const struct ra_label *label;
	const json_t *ca; /* the label's "ca" object; borrowed from root */
	struct ca_call *health, *chain;
	int health_done, chain_done;
	char warns[DOC_WARNS_MAX][DOC_TEXT_MAX];
	char warn_hints[DOC_WARNS_MAX][CA_HINT_MAX]; /* "" when none */
	size_t nwarns;
	char info[DOC_TEXT_MAX]; /* the last info line, e.g. IDENTIFY's */
};

/* Copies s into buf (size len) with control bytes turned into blanks. */
static const char *
doc_clean(const char *s, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "%s", s != NULL ? s : "");
	for (i = 0; buf[i] != '\0'; i++)
		if (iscntrl((unsigned char)buf[i]))
			buf[i] = ' ';
	return buf;
}

/* Prints (or keeps, for JSON) one line; remedy may be NULL or "". */
static void
doc_line(struct doctor *d, enum doc_status st, const char *subject,
         const char *check, const char *cause, const char *remedy)
{
	char s[DOC_TEXT_MAX], c[DOC_TEXT_MAX], w[DOC_TEXT_MAX], r[DOC_TEXT_MAX];

	d->count[st]++;
	doc_clean(subject, s, sizeof(s));
	doc_clean(check, c, sizeof(c));
	doc_clean(cause, w, sizeof(w));
	doc_clean(remedy, r, sizeof(r));
	if (d->lines != NULL) {
		json_array_append_new(
		    d->lines, json_pack("{s:s, s:s, s:s, s:s, s:s}", "status",
		                        doc_status_names[st], "subject", s,
		                        "check", c, "cause", w, "remedy", r));
		return;
	}
	fprintf(d->out, "%-5s %s: %s: %s%s%s\n", doc_status_names[st], s, c, w,
	        r[0] != '\0' ? ": " : "", r);
}

/* The subject of x as one line, into buf. */
static const char *
doc_name(const X509 *x, char *buf, size_t len)
{
	char *s = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);

	snprintf(buf, len, "%s", s != NULL ? s : "(no subject)");
	OPENSSL_free(s);
	return buf;
}

/* Reads every certificate of a PEM file; NULL when it holds none. */
static STACK_OF(X509) *
doc_read_certs(const char *path)
{
	STACK_OF(X509) *certs;
	BIO *bio = BIO_new_file(path, "r");

	certs = core_certs_read_pem(bio, 0, NULL);
	ERR_clear_error();
	BIO_free(bio);
	return certs;
}

/*
 * One validity line for x: FAIL when not yet valid (the clock, most
 * likely) or expired, warn within DOC_EXPIRY_WARN_DAYS, else ok.  Quiet
 * when ok and quiet_ok is set.  what ("" or e.g. "agent certificate ")
 * goes before the name in the check.  Returns the status.
 */
static enum doc_status
doc_validity(struct doctor *d, const char *subject, const char *what,
             const X509 *x, int quiet_ok)
{
	char name[256], check[512], when[32], now_s[32], cause[512];
	time_t now = time(NULL);
	int days = 0, secs = 0;

	doc_name(x, name, sizeof(name));
	snprintf(check, sizeof(check), "validity of %s%s", what, name);
	core_time_epoch(now, now_s, sizeof(now_s));
	if (X509_cmp_time(X509_get0_notBefore(x), &now) > 0) {
		snprintf(
		    cause, sizeof(cause),
		    "not valid before %s, but this host says it is %s "
		    "(clock skew?)",
		    core_time_asn1(X509_get0_notBefore(x), when, sizeof(when)),
		    now_s);
		doc_line(
		    d, DOC_FAIL, subject, check, cause,
		    "check this host's clock (timedatectl, chronyc "
		    "tracking), or reissue a certificate dated in the past");
		return DOC_FAIL;
	}
	if (X509_cmp_time(X509_get0_notAfter(x), &now) <= 0) {
		snprintf(
		    cause, sizeof(cause), "expired on %s (now %s)",
		    core_time_asn1(X509_get0_notAfter(x), when, sizeof(when)),
		    now_s);
		doc_line(d, DOC_FAIL, subject, check, cause,
		         "renew it, then reload estrad (systemctl reload "
		         "estrad)");
		return DOC_FAIL;
	}
	ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x));
	if (days < DOC_EXPIRY_WARN_DAYS) {
		snprintf(
		    cause, sizeof(cause), "expires on %s, in %d days",
		    core_time_asn1(X509_get0_notAfter(x), when, sizeof(when)),
		    days);
		doc_line(d, DOC_WARN, subject, check, cause,
		         "renew it soon, then reload estrad");
		return DOC_WARN;
	}
	if (!quiet_ok) {
		snprintf(
		    cause, sizeof(cause), "valid until %s (%d days)",
		    core_time_asn1(X509_get0_notAfter(x), when, sizeof(when)),
		    days);
		doc_line(d, DOC_OK, subject, check, cause, NULL);
	}
	return DOC_OK;
}

/* --- local checks ---------------------------------------------------------
 */

/* Whether the last component of the dotted key is name. */
static int
doc_key_is(const char *key, const char *name)
{
	const char *dot = strrchr(key, '.');

	return strcmp(dot != NULL ? dot + 1 : key, name) == 0;
}

/* A trust store: loads, count of anchors, none of them from the future. */
static void
doc_store(struct doctor *d, const char *path, const char *key)
{
	char subject[DOC_TEXT_MAX], cause[256];
	STACK_OF(X509) *certs;
	time_t now = time(NULL);
	int i, expired = 0, bad = 0;
	X509 *x;

	snprintf(subject, sizeof(subject), "trust store %s (%s)", path, key);
	if ((certs = doc_read_certs(path)) == NULL) {
		doc_line(d, DOC_FAIL, subject, "load",
		         "no PEM certificate in it",
		         "put the CA certificates (PEM) in it");
		return;
	}
	for (i = 0; i < sk_X509_num(certs); i++) {
		x = sk_X509_value(certs, i);
		if (X509_cmp_time(X509_get0_notBefore(x), &now) > 0) {
			doc_validity(d, subject, "", x, 0);
			bad++;
		} else if (X509_cmp_time(X509_get0_notAfter(x), &now) <= 0)
			expired++;
	}
	snprintf(cause, sizeof(cause), "%d anchor%s", sk_X509_num(certs),
	         sk_X509_num(certs) == 1 ? "" : "s");
	if (expired > 0) {
		size_t n = strlen(cause);

		snprintf(cause + n, sizeof(cause) - n, ", %d of them expired",
		         expired);
		doc_line(d, DOC_WARN, subject, "load", cause,
		         "remove or replace the expired certificates");
	} else if (bad == 0)
		doc_line(d, DOC_OK, subject, "load", cause, NULL);
	sk_X509_pop_free(certs, X509_free);
}

/* est_privilege_files() callback: mode, readability, trust stores. */
static void
doc_file(const char *path, const char *key, int secret, int exec, void *arg)
{
	struct doctor *d = arg;
	char subject[DOC_TEXT_MAX], check[256], why[512], fix[512];
	struct stat st;

	snprintf(subject, sizeof(subject), "file %s", path);
	snprintf(check, sizeof(check), "%s%s", key,
	         exec     ? " (helper executable)"
	         : secret ? " (secret)"
	                  : "");
	if (exec) {
		errno = 0;
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
		    access(path, X_OK) != 0) {
			snprintf(why, sizeof(why),
			         "not an executable file (%s)",
			         errno != 0 ? strerror(errno) : "not regular");
			doc_line(d, DOC_FAIL, subject, check, why,
			         "install the CA helper or correct command");
			return;
		}
	}
	switch (est_privilege_mode(path, secret,
	                           est_privilege_run_gid(d->config), why, fix,
	                           sizeof(why))) {
	case EST_MODE_OK:
		if (stat(path, &st) != 0)
			st.st_mode = 0;
		snprintf(why, sizeof(why), "readable, mode %04o",
		         (unsigned int)(st.st_mode & 07777));
		doc_line(d, DOC_OK, subject, check, why, NULL);
		break;
	case EST_MODE_WEAK:
		doc_line(d, DOC_WARN, subject, check, why, fix);
		break;
	case EST_MODE_EXPOSED:
	case EST_MODE_UNSAFE:
		doc_line(d, DOC_FAIL, subject, check,
		         why[0] != '\0' ? why : "unsafe mode", fix);
		return;
	default:
		doc_line(d, DOC_FAIL, subject, check, why, fix);
		return;
	}
	if (doc_key_is(key, "explicit_ca") || doc_key_is(key, "implicit_ca") ||
	    doc_key_is(key, "ca_bundle") || doc_key_is(key, "chain"))
		doc_store(d, path, key);
}

/* The server certificate: key match, chain to an anchor, validity. */
static void
doc_server_cert(struct doctor *d)
{
	const struct ra_config *config = d->config;
	char subject[DOC_TEXT_MAX], cause[DOC_TEXT_MAX], name[256];
	STACK_OF(X509) *certs = NULL, *anchors = NULL, *untrusted = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *store = NULL;
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;
	int i, err;
	X509 *x;

	snprintf(subject, sizeof(subject), "server certificate %s",
	         config->tls.cert);
	if ((certs = doc_read_certs(config->tls.cert)) == NULL) {
		doc_line(d, DOC_FAIL, subject, "load", "no PEM certificate",
		         "point tls.cert at the server certificate (PEM)");
		goto out;
	}
	if ((bio = BIO_new_file(config->tls.key, "r")) != NULL)
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (key == NULL ||
	    !X509_check_private_key(sk_X509_value(certs, 0), key)) {
		snprintf(cause, sizeof(cause),
		         "tls.key %s is not the key of the first certificate",
		         config->tls.key);
		doc_line(d, DOC_FAIL, subject, "key match", cause,
		         "compare `openssl x509 -noout -pubkey` with `openssl "
		         "pkey -pubout` and point tls.key at the right key");
	} else {
		snprintf(cause, sizeof(cause), "tls.key %s matches",
		         config->tls.key);
		doc_line(d, DOC_OK, subject, "key match", cause, NULL);
	}
	ERR_clear_error();

	/* Chain: the certificates after the first, then explicit_ca, must
	 * lead to a self-signed anchor; dates are judged separately. */
	if ((store = X509_STORE_new()) == NULL ||
	    (untrusted = sk_X509_new_null()) == NULL ||
	    (ctx = X509_STORE_CTX_new()) == NULL)
		goto out;
	anchors = doc_read_certs(config->tls.explicit_ca);
	for (i = 0; i < sk_X509_num(anchors); i++)
		X509_STORE_add_cert(store, sk_X509_value(anchors, i));
	for (i = 1; i < sk_X509_num(certs); i++) {
		x = sk_X509_value(certs, i);
		if (X509_check_issued(x, x) == X509_V_OK)
			X509_STORE_add_cert(store, x);
		else
			sk_X509_push(untrusted, x);
	}
	X509_STORE_set_flags(store, X509_V_FLAG_NO_CHECK_TIME);
	if (X509_STORE_CTX_init(ctx, store, sk_X509_value(certs, 0),
	                        untrusted) != 1)
		goto out;
	if (X509_verify_cert(ctx) == 1) {
		STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);

		snprintf(cause, sizeof(cause),
		         "complete: %d certificates up to %s",
		         sk_X509_num(chain),
		         doc_name(sk_X509_value(chain, sk_X509_num(chain) - 1),
		                  name, sizeof(name)));
		doc_line(d, DOC_OK, subject, "chain", cause, NULL);
		for (i = 0; i < sk_X509_num(chain); i++)
			doc_validity(d, subject, "", sk_X509_value(chain, i),
			             0);
	} else {
		err = X509_STORE_CTX_get_error(ctx);
		x = X509_STORE_CTX_get_current_cert(ctx);
		snprintf(cause, sizeof(cause), "incomplete: %s (at %s)",
		         X509_verify_cert_error_string(err),
		         x != NULL ? doc_name(x, name, sizeof(name)) : "?");
		doc_line(d, DOC_WARN, subject, "chain", cause,
		         "append the intermediate CA certificates to tls.cert "
		         "(server first), and the root to tls.explicit_ca");
		for (i = 0; i < sk_X509_num(certs); i++)
			doc_validity(d, subject, "", sk_X509_value(certs, i),
			             0);
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_free(untrusted);
	sk_X509_pop_free(anchors, X509_free);
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(key);
	BIO_free(bio);
}

/* The TLS context as the listener builds it, and the user to drop to. */
static void
doc_server(struct doctor *d)
{
	const struct ra_config *config = d->config;
	char err[DOC_TEXT_MAX], cause[DOC_TEXT_MAX];
	SSL_CTX *ctx;

	if ((ctx = est_listener_tls_context(config, err, sizeof(err))) == NULL)
		doc_line(d, DOC_FAIL, "server", "TLS context", err,
		         "fix the tls section");
	else
		doc_line(d, DOC_OK, "server", "TLS context",
		         "certificate, key and cipher settings load", NULL);
	SSL_CTX_free(ctx);
	if (config->user != NULL) {
		snprintf(cause, sizeof(cause), "drops to user %s%s%s",
		         config->user, config->group != NULL ? ", group " : "",
		         config->group != NULL ? config->group : "");
		doc_line(d, DOC_OK, "server", "privileges", cause, NULL);
	} else
		doc_line(
		    d, DOC_WARN, "server", "privileges",
		    "no \"user\": started as root, estrad keeps running as "
		    "root",
		    "set \"user\" (e.g. estrad) in the configuration");
}

/*
 * Labels whose policy says extensions.unlisted "drop" while their CA
 * receives the CSR as the client sent it: nothing can be dropped there, so
 * such a request is refused instead, which the configuration does not say.
 */
static void
doc_policies(struct doctor *d)
{
	char subject[DOC_TEXT_MAX], cause[DOC_TEXT_MAX];
	const struct ra_label *label;
	size_t i;
	int own;

	for (i = 0; i < d->config->nlabels; i++) {
		label = d->config->labels[i];
		if ((ca_instance_caps(label->ca) & CA_CAP_FORWARDS_CSR) == 0)
			continue;
		own = ra_policy_says_drop(label->policy);
		if (!own && !ra_policy_says_drop(label->ra_policy))
			continue;
		snprintf(subject, sizeof(subject), "label %s", label->name);
		snprintf(cause, sizeof(cause),
		         "%s.extensions.unlisted is \"drop\", but backend %s "
		         "sends the CSR to its CA as received: a requested "
		         "extension extensions.allow does not list is refused "
		         "(403), not dropped",
		         own ? "policy" : "ra_clients.policy",
		         ca_instance_backend_name(label->ca));
		doc_line(d, DOC_WARN, subject, "policy", cause,
		         "set extensions.unlisted to \"refuse\" and list in "
		         "extensions.allow what the CA may honour");
	}
}

/* --- label checks ---------------------------------------------------------
 */

/* Says whether the label's built-in CA profile grants serverAuth. */
static int
doc_grants_server_auth(struct doctor *d, const struct ra_label *label)
{
	const json_t *ca = json_object_get(
	    json_object_get(json_object_get(d->root, "labels"), label->name),
	    "ca");
	const json_t *eku = json_object_get(json_object_get(ca, "profile"),
	                                    "extended_key_usage"),
	             *v;
	size_t i;

	if (strcmp(ca_instance_backend_name(label->ca), "local") != 0)
		return 0;
	json_array_foreach(eku, i, v) if (json_is_string(v) &&
	                                  strcmp(json_string_value(v),
	                                         "serverAuth") == 0) return 1;
	return 0;
}

/* The label's built-in CA certificate (absolute path, new), or NULL. */
static char *
doc_local_ca(struct doctor *d, const struct ra_label *label)
{
	const json_t *ca = json_object_get(
	    json_object_get(json_object_get(d->root, "labels"), label->name),
	    "ca");
	const char *cert = json_string_value(json_object_get(ca, "cert"));
	char *path = NULL;

	if (cert == NULL ||
	    strcmp(ca_instance_backend_name(label->ca), "local") != 0)
		return NULL;
	if (cert[0] == '/')
		return strdup(cert);
	if (asprintf(&path, "%s/%s", d->config->dir, cert) < 0)
		return NULL;
	return path;
}

/*
 * Says whether what the CA of ca_path issues would chain to the trust
 * store in store_path, as a client certificate check builds chains
 * (every listed certificate an anchor; dates not judged here).
 */
static int
doc_store_takes(const char *store_path, const char *ca_path)
{
	STACK_OF(X509) *ca = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *store = NULL;
	int ok = 0;

	if ((ca = doc_read_certs(ca_path)) == NULL ||
	    (store = X509_STORE_new()) == NULL ||
	    X509_STORE_load_file(store, store_path) != 1 ||
	    (ctx = X509_STORE_CTX_new()) == NULL)
		goto out;
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN |
	                                X509_V_FLAG_NO_CHECK_TIME);
	if (X509_STORE_CTX_init(ctx, store, sk_X509_value(ca, 0), NULL) != 1)
		goto out;
	ok = X509_verify_cert(ctx) == 1;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(ca, X509_free);
	return ok;
}

/*
 * Per label: who may ask for which names, whether another label's
 * certificates authenticate on it, and its CRL's freshness.
 */
static void
doc_labels(struct doctor *d)
{
	const struct ra_config *config = d->config;
	char subject[DOC_TEXT_MAX], cause[DOC_TEXT_MAX], names[256], when[32];
	const struct ra_label *label, *other;
	char *ca_path;
	size_t i, j;

	for (i = 0; i < config->nlabels; i++) {
		label = config->labels[i];
		snprintf(subject, sizeof(subject), "label %s", label->name);
		if (ra_policy_open_names(label->policy, names, sizeof(names))) {
			snprintf(cause, sizeof(cause),
			         "any %s client may request any name: %s%s",
			         label->auth == RA_AUTH_NONE ? "(anonymous)"
			                                     : "authenticated",
			         names,
			         doc_grants_server_auth(d, label)
			             ? ", and its profile grants serverAuth"
			             : "");
			doc_line(d, DOC_WARN, subject, "policy", cause,
			         "bind names to the client: policy.cn_equals "
			         "(\"identity\", \"user\", \"cert_cn\") or "
			         "policy.cn patterns, and policy.san patterns "
			         "or san.max 0");
		}
		/* Only where a certificate can authenticate. */
		if (label->explicit_path != NULL &&
		    (label->auth == RA_AUTH_NONE ||
		     (label->auth & (RA_AUTH_CERT | RA_AUTH_CERT_BASIC))) &&
		    ((label->trust_enroll | label->trust_reenroll) &
		     RA_TRUST_BIT_EXPLICIT))
			for (j = 0; j < config->nlabels; j++) {
				other = config->labels[j];
				if (j == i ||
				    (ca_path = doc_local_ca(d, other)) == NULL)
					continue;
				if (doc_store_takes(label->explicit_path,
				                    ca_path)) {
					snprintf(
					    cause, sizeof(cause),
					    "accepts certificates issued by "
					    "label %s: its CA %s chains to "
					    "%s",
					    other->name, ca_path,
					    label->explicit_path);
					doc_line(
					    d, DOC_WARN, subject, "trust",
					    cause,
					    "give each label an issuing CA "
					    "of its own and list only that "
					    "CA in its trust.explicit_ca");
				}
				free(ca_path);
			}
		if (label->crl != NULL &&
		    ra_crl_stale(label->crl, when, sizeof(when))) {
			snprintf(
			    cause, sizeof(cause),
			    "%s is past its nextUpdate (%s): the label "
			    "refuses the client certificates it would check",
			    ra_crl_path(label->crl), when);
			doc_line(d, DOC_FAIL, subject, "crl", cause,
			         "publish a fresh CRL to that file, then "
			         "reload estrad");
		}
	}
}

/* --- CA checks ------------------------------------------------------------
 */

/* The CA log hook for the run: keeps a label's warnings (with their hints,
 * the remedy of their lines) and its last info. */
static void
doc_ca_log(const struct ca_call *call, enum core_log_level level,
           const char *component, const char *hint, const char *message)
{
	struct doc_probe *p = call != NULL ? call->log_context : NULL;

	(void)component;
	if (p == NULL)
		return;
	if (level == CORE_LOG_WARN && p->nwarns < DOC_WARNS_MAX) {
		snprintf(p->warn_hints[p->nwarns], CA_HINT_MAX, "%s",
		         hint != NULL ? hint : "");
		snprintf(p->warns[p->nwarns++], DOC_TEXT_MAX, "%s", message);
	} else if (level == CORE_LOG_INFO)
		snprintf(p->info, sizeof(p->info), "%s", message);
}

static void
doc_call_done(struct ca_call *call, void *arg)
{
	struct doc_probe *p = arg;

	if (call == p->health)
		p->health_done = 1;
	else
		p->chain_done = 1;
	if (--p->d->running == 0)
		event_base_loopbreak(p->d->base);
}

/* The global deadline: cancel what is still running. */
static void
doc_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct doc_probe *probes = arg;
	struct doctor *d = probes[0].d;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < d->config->nlabels; i++) {
		struct ca_instance *inst = probes[i].label->ca;

		/* A backend without cancel lets its calls run to their end. */
		if (!probes[i].health_done && probes[i].health != NULL)
			(void)ca_instance_cancel(inst, probes[i].health);
		if (!probes[i].chain_done && probes[i].chain != NULL)
			(void)ca_instance_cancel(inst, probes[i].chain);
	}
}

/* Starts op on the label's backend; NULL when it has no such op. */
static struct ca_call *
doc_start(struct doc_probe *p, enum ca_operation op, unsigned int cap)
{
	static const char rid[] = "d0c70000d0c70000";
	struct ca_call *call;

	if (!(ca_instance_caps(p->label->ca) & cap) ||
	    (call = ca_call_new()) == NULL)
		return NULL;
	call->op = op;
	call->base = p->d->base;
	call->rid = rid;
	call->label = p->label->name;
	call->log_context = p;
	p->d->running++;
	ca_instance_start(p->label->ca, call, doc_call_done, p);
	return call;
}

/* A string member of obj, or NULL. */
static const char *
doc_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* Which rung of the ladder a cause points at. */
enum doc_rung { DOC_DNS, DOC_TCP, DOC_TLS, DOC_AUTH, DOC_PROBE, DOC_RUNG__MAX };

/*
 * Reads the rung a failed health call stopped at from its cause: the curl
 * code for transport failures, the HTTP 401 or credential wording for
 * authentication, the backend's own probe otherwise.  Sets *code to the
 * curl code, 0 when none.
 */
static enum doc_rung
doc_rung_of(const char *cause, int *code)
{
	const char *p = cause;

	*code = 0;
	while ((p = strstr(p, "curl ")) != NULL) {
		if (isdigit((unsigned char)p[5])) {
			*code = (int)strtol(p + 5, NULL, 10);
			break;
		}
		p += 5;
	}
	/* The CA refused the backend's own credential (the Dogtag agent):
	 * authentication, whatever curl code carried it, since a TLS alert
	 * about a client certificate ends the handshake itself. */
	if (strstr(cause, "agent login failed") != NULL ||
	    strstr(cause, "agent authentication failed") != NULL ||
	    strstr(cause, "agent certificate expired") != NULL)
		return DOC_AUTH;
	switch (*code) {
	case 0:
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return DOC_DNS;
	case CURLE_COULDNT_CONNECT:
		return DOC_TCP;
	case CURLE_OPERATION_TIMEDOUT:
		/* libcurl says "Connection timed out" while connecting and
		 * "Operation timed out" once connected. */
		return strstr(cause, "onnection timed out") != NULL ||
		               strstr(cause, "onnect") != NULL
		           ? DOC_TCP
		           : DOC_AUTH;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return DOC_TLS;
	default:
		return DOC_AUTH;
	}
	if (strstr(cause, "HTTP 401") != NULL ||
	    strstr(cause, "bad credentials") != NULL ||
	    strstr(cause, "requires authentication") != NULL ||
	    strstr(cause, "401 page") != NULL)
		return DOC_AUTH;
	return DOC_PROBE;
}

/* The remedy for a rung when the backend gave no hint. */
static const char *
doc_remedy(enum doc_rung rung, int code, const char *host, char *buf,
           size_t len)
{
	switch (rung) {
	case DOC_DNS:
		snprintf(buf, len,
		         "check DNS for %s (getent hosts %s) or the url of the "
		         "label",
		         host, host);
		break;
	case DOC_TCP:
		if (code == CURLE_OPERATION_TIMEDOUT)
			snprintf(buf, len,
			         "check routing and firewalls between estrad "
			         "and %s, or raise connect_timeout",
			         host);
		else
			snprintf(buf, len,
			         "check that the CA web server listens on the "
			         "url's port of %s and no firewall rejects it",
			         host);
		break;
	case DOC_TLS:
		if (code == CURLE_PEER_FAILED_VERIFICATION)
			snprintf(buf, len,
			         "add the CA web server's issuer to ca_bundle, "
			         "or use a host name its certificate names");
		else
			snprintf(buf, len,
			         "check TLS versions, ciphers and client_cert "
			         "against the CA web server (openssl s_client "
			         "-connect %s)",
			         host);
		break;
	case DOC_AUTH:
		snprintf(buf, len, "check user, password_file and auth");
		break;
	default:
		snprintf(buf, len, "see the cause");
		break;
	}
	return buf;
}

/* The configured base URL result_url starts with, else the first one. */
static const char *
doc_base_url(const json_t *ca, const char *result_url)
{
	const json_t *urls = json_object_get(ca, "urls"), *v;
	const char *first = NULL, *u;
	size_t i;

	if (json_is_string(urls))
		return json_string_value(urls);
	if (doc_str(ca, "url") != NULL)
		return doc_str(ca, "url");
	json_array_foreach(urls, i, v)
	{
		if ((u = json_string_value(v)) == NULL)
			continue;
		if (first == NULL)
			first = u;
		if (result_url != NULL &&
		    strncmp(result_url, u, strlen(u)) == 0)
			return u;
	}
	return first;
}

/*
 * The cause of a failed call followed by the backend's detail (the URL's
 * answer, the helper's exit and stderr, the agent certificate), which the
 * error log carries too; into buf, returned.
 */
static const char *
doc_cause(const struct ca_result *res, const char *fallback, char *buf,
          size_t len)
{
	int n;

	n = snprintf(buf, len, "%s%s%s%s",
	             res->cause[0] != '\0' ? res->cause : fallback,
	             res->detail[0] != '\0' ? " (" : "", res->detail,
	             res->detail[0] != '\0' ? ")" : "");
	/* A cut detail says so rather than ending mid-word. */
	if (n >= 0 && (size_t)n >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
	return buf;
}

/* The ladder of an HTTP backend's health call. */
static void
doc_http_ladder(struct doc_probe *p, const char *subject, const char *url)
{
	const struct ca_result *res = &p->health->result;
	const json_t *ca = p->ca;
	const char *backend = ca_instance_backend_name(p->label->ca);
	char checks[DOC_RUNG__MAX][512], host[256] = "?", port[16] = "?";
	char remedy[512], cause[DOC_TEXT_MAX], *h = NULL, *pt = NULL,
	                                       *scheme = NULL;
	enum doc_rung rung = DOC_RUNG__MAX, r;
	int code = 0, https;
	CURLU *u;

	if ((u = curl_url()) != NULL &&
	    curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
		if (curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK)
			snprintf(host, sizeof(host), "%s", h);
		if (curl_url_get(u, CURLUPART_PORT, &pt, CURLU_DEFAULT_PORT) ==
		    CURLUE_OK)
			snprintf(port, sizeof(port), "%s", pt);
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	}
	https = scheme == NULL || strcmp(scheme, "http") != 0;
	curl_free(h);
	curl_free(pt);
	curl_free(scheme);
	curl_url_cleanup(u);

	snprintf(checks[DOC_DNS], sizeof(checks[0]), "DNS resolution of %s",
	         host);
	snprintf(checks[DOC_TCP], sizeof(checks[0]), "TCP connect to %s:%s",
	         host, port);
	snprintf(checks[DOC_TLS], sizeof(checks[0]),
	         "TLS handshake (CA bundle %s, host name %s)",
	         doc_str(ca, "ca_bundle") != NULL ? doc_str(ca, "ca_bundle")
	                                          : "system default",
	         host);
	snprintf(checks[DOC_AUTH], sizeof(checks[0]),
	         "HTTP authentication (auth %s%s%s)",
	         doc_str(ca, "auth") != NULL         ? doc_str(ca, "auth")
	         : doc_str(ca, "agent_cert") != NULL ? "agent certificate"
	                                             : "default",
	         doc_str(ca, "user") != NULL ? ", user " : "",
	         doc_str(ca, "user") != NULL ? doc_str(ca, "user") : "");
	if (strcmp(backend, "certsrv") == 0)
		snprintf(checks[DOC_PROBE], sizeof(checks[0]),
		         "template %s on certrqxt.asp",
		         doc_str(ca, "template") != NULL
		             ? doc_str(ca, "template")
		             : "(none)");
	else if (strcmp(backend, "dogtag") == 0)
		snprintf(checks[DOC_PROBE], sizeof(checks[0]),
		         "Dogtag API, agent login and profile %s",
		         doc_str(ca, "profile") != NULL ? doc_str(ca, "profile")
		                                        : "(default)");
	else
		snprintf(checks[DOC_PROBE], sizeof(checks[0]),
		         "%s health probe", backend);

	if (res->outcome != CA_ISSUED)
		rung = doc_rung_of(res->cause, &code);
	for (r = DOC_DNS; r < DOC_RUNG__MAX; r++) {
		if (r == DOC_TLS && !https)
			continue;
		if (r < rung) {
			doc_line(p->d, DOC_OK, subject, checks[r],
			         r == DOC_PROBE && p->info[0] != '\0' ? p->info
			                                              : "ok",
			         NULL);
			continue;
		}
		doc_line(
		    p->d, DOC_FAIL, subject, checks[r],
		    doc_cause(res, "failed", cause, sizeof(cause)),
		    res->hint[0] != '\0'
		        ? res->hint
		        : doc_remedy(r, code, host, remedy, sizeof(remedy)));
		break;
	}
}

/* The chain fetched by cacerts: count and dates. */
static void
doc_chain(struct doc_probe *p, const char *subject)
{
	const struct ca_result *res = &p->chain->result;
	char cause[DOC_TEXT_MAX], name[256];
	int i, bad = 0;

	if (res->outcome == CA_UNSUPPORTED)
		return;
	if (res->outcome != CA_ISSUED || sk_X509_num(res->chain) <= 0) {
		doc_line(p->d, DOC_FAIL, subject, "CA chain fetch",
		         doc_cause(res, "no certificate", cause, sizeof(cause)),
		         res->hint[0] != '\0' ? res->hint
		                              : "see the cause; /cacerts fails "
		                                "the same way");
		return;
	}
	for (i = 0; i < sk_X509_num(res->chain); i++)
		if (doc_validity(p->d, subject, "",
		                 sk_X509_value(res->chain, i), 1) == DOC_FAIL)
			bad = 1;
	snprintf(cause, sizeof(cause), "%d certificate%s, issuing CA %s",
	         sk_X509_num(res->chain),
	         sk_X509_num(res->chain) == 1 ? "" : "s",
	         doc_name(sk_X509_value(res->chain, 0), name, sizeof(name)));
	doc_line(p->d, bad ? DOC_WARN : DOC_OK, subject, "CA chain fetch",
	         cause, NULL);
}

/* What doc_own_cert needs: the run and the label's subject. */
struct doc_own {
	struct doctor *d;
	const char *subject;
};

/* ca_own_cert_fn: the validity of a certificate the backend presents to
 * its CA on its own behalf (the Dogtag agent certificate). */
static void
doc_own_cert(const char *role, const X509 *cert, void *arg)
{
	const struct doc_own *own = arg;
	char what[64];

	snprintf(what, sizeof(what), "%s certificate ", role);
	doc_validity(own->d, own->subject, what, cert, 0);
}

/* Prints the lines of one label's CA checks. */
static void
doc_report(struct doc_probe *p)
{
	const struct ca_instance *inst = p->label->ca;
	const char *backend = ca_instance_backend_name(inst), *url = NULL;
	char subject[DOC_TEXT_MAX], cause[DOC_TEXT_MAX];
	const json_t *cmd;
	size_t i;
	int reached_ca = 1;

	if (p->health != NULL)
		url = doc_base_url(p->ca, p->health->result.url);
	if (url != NULL) {
		snprintf(subject, sizeof(subject), "label %s: %s %s",
		         p->label->name, backend, url);
	} else if (strcmp(backend, "helper") == 0 &&
	           (cmd = json_array_get(json_object_get(p->ca, "command"),
	                                 0)) != NULL) {
		snprintf(subject, sizeof(subject), "label %s: helper %s",
		         p->label->name, json_string_value(cmd));
	} else if (doc_str(p->ca, "cert") != NULL) {
		snprintf(subject, sizeof(subject), "label %s: %s CA %s",
		         p->label->name, backend, doc_str(p->ca, "cert"));
	} else
		snprintf(subject, sizeof(subject), "label %s: %s",
		         p->label->name, backend);

	/* The backend's own certificates first: an expired agent
	 * certificate explains the refused login the ladder shows next. */
	{
		struct doc_own own = {p->d, subject};

		ca_instance_own_certs(inst, doc_own_cert, &own);
	}
	if (p->health == NULL) {
		doc_line(p->d, DOC_WARN, subject, "health",
		         "the backend has no health check", NULL);
	} else if (!p->health_done) {
		doc_line(p->d, DOC_FAIL, subject, "health",
		         "no answer within the deadline",
		         "check the backend's timeouts");
		reached_ca = 0;
	} else if (url != NULL) {
		int code;

		doc_http_ladder(p, subject, url);
		reached_ca =
		    p->health->result.outcome == CA_ISSUED ||
		    doc_rung_of(p->health->result.cause, &code) >= DOC_PROBE;
	} else {
		const struct ca_result *res = &p->health->result;
		const char *check =
		    strcmp(backend, "helper") == 0  ? "answers IDENTIFY"
		    : strcmp(backend, "local") == 0 ? "CA key and certificate"
		                                    : "health";

		if (res->outcome == CA_ISSUED) {
			snprintf(cause, sizeof(cause), "%s",
			         p->info[0] != '\0' ? p->info
			         : strcmp(backend, "local") == 0
			             ? "the key matches, the chain is valid now"
			             : "ok");
			doc_line(p->d, DOC_OK, subject, check, cause, NULL);
		} else {
			doc_line(p->d, DOC_FAIL, subject, check,
			         doc_cause(res, "failed", cause, sizeof(cause)),
			         res->hint[0] != '\0' ? res->hint
			                              : "see the cause");
			reached_ca = strcmp(backend, "local") == 0;
		}
	}
	for (i = 0; i < p->nwarns; i++)
		doc_line(p->d, DOC_WARN, subject, "backend warning",
		         p->warns[i], p->warn_hints[i]);
	/* The chain fetch fails the same way when the CA was not reached:
	 * one FAIL line for one cause. */
	if (p->chain != NULL && p->chain_done && reached_ca)
		doc_chain(p, subject);
}

/* Runs health and cacerts of every label at once, then reports. */
static void
doc_backends(struct doctor *d)
{
	const struct ra_config *config = d->config;
	const json_t *labels = json_object_get(d->root, "labels");
	struct doc_probe *probes = NULL;
	struct event *deadline = NULL;
	struct timeval tv = {DOC_DEADLINE, 0};
	size_t i;

	if (config->nlabels == 0 ||
	    (probes = calloc(config->nlabels, sizeof(*probes))) == NULL ||
	    (d->base = event_base_new()) == NULL ||
	    (deadline = evtimer_new(d->base, doc_deadline, probes)) == NULL) {
		doc_line(d, DOC_FAIL, "doctor", "CA checks",
		         "cannot set up (out of memory)", NULL);
		goto out;
	}
	ca_set_log_hook(doc_ca_log);
	for (i = 0; i < config->nlabels; i++) {
		probes[i].d = d;
		probes[i].label = config->labels[i];
		probes[i].ca = json_object_get(
		    json_object_get(labels, config->labels[i]->name), "ca");
		probes[i].health =
		    doc_start(&probes[i], CA_OP_HEALTH, CA_CAP_HEALTH);
		probes[i].chain =
		    doc_start(&probes[i], CA_OP_CACERTS, CA_CAP_CACERTS);
	}
	evtimer_add(deadline, &tv);
	/* Cancelled calls complete from the loop too: run until all did. */
	while (d->running > 0)
		if (event_base_dispatch(d->base) != 0)
			break;
	for (i = 0; i < config->nlabels; i++)
		doc_report(&probes[i]);
out:
	if (deadline != NULL)
		event_free(deadline);
	if (probes != NULL)
		for (i = 0; i < config->nlabels; i++) {
			ca_call_free(probes[i].health);
			ca_call_free(probes[i].chain);
		}
	if (d->base != NULL) {
		ca_loop_shutdown(d->base);
		event_base_free(d->base);
		d->base = NULL;
	}
	free(probes);
}

int
est_doctor_run(const char *config_path, int json, FILE *out)
{
	struct ra_config *config = NULL;
	struct doctor d;
	char err[DOC_TEXT_MAX], why[512], fix[512], subject[DOC_TEXT_MAX];
	json_error_t jerr;
	int rc = 1;

	memset(&d, 0, sizeof(d));
	d.out = out;
	if (json && (d.lines = json_array()) == NULL)
		goto out;
	snprintf(subject, sizeof(subject), "configuration %s", config_path);
	if (est_privilege_mode(config_path, 0, (gid_t)-1, why, fix,
	                       sizeof(why)) == EST_MODE_UNSAFE)
		doc_line(&d, DOC_FAIL, subject, "mode", why, fix);
	if ((config = ra_config_load(config_path, err, sizeof(err))) == NULL) {
		doc_line(&d, DOC_FAIL, subject, "load", err,
		         "fix the file at the line and column given (estrad -t "
		         "-c FILE checks it again)");
		goto report;
	}
	snprintf(why, sizeof(why), "%zu labels, default \"%s\"",
	         config->nlabels, config->default_label->name);
	doc_line(&d, DOC_OK, subject, "load", why, NULL);
	d.config = config;
	if ((d.root = json_load_file(config->path, 0, &jerr)) == NULL) {
		doc_line(&d, DOC_FAIL, subject, "load", jerr.text, NULL);
		goto report;
	}
	if (est_privilege_files(config->path, config->dir, doc_file, &d, err,
	                        sizeof(err)) != 0)
		doc_line(&d, DOC_FAIL, subject, "files", err, NULL);
	doc_server(&d);
	doc_server_cert(&d);
	doc_policies(&d);
	doc_labels(&d);
	doc_backends(&d);
report:
	if (d.lines != NULL) {
		json_dumpf(d.lines, out, JSON_INDENT(2));
		fputc('\n', out);
	} else
		fprintf(out, "doctor: %zu ok, %zu warn, %zu FAIL\n",
		        d.count[DOC_OK], d.count[DOC_WARN], d.count[DOC_FAIL]);
	fflush(out);
	rc = d.count[DOC_FAIL] > 0 ? 1 : 0;
out:
	ra_config_free(config);
	json_decref(d.root);
	json_decref(d.lines);
	return rc;
}
