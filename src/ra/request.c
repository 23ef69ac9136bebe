/*
 * request.c: the life of one EST request in the RA: authentication, the
 * re-enrollment identity rule, the CA call, the mapping of its outcome to
 * an EST status, and the audit record.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "core/digest.h"
#include "core/escape.h"
#include "core/log.h"
#include "core/time.h"
#include "ra/request.h"

/* Private flag kept beside the public struct: see ra_request_free(). */
struct ra_request_private {
	struct ra_request req;
	int orphaned;
	int running;
	/* ca_wait ran out: the client got 202 and the CA call goes on. */
	int detached;
	/* The answer came from a pending record, not from a CA call. */
	int from_store;
};

const char *
ra_auth_method_name(enum ra_auth_method method)
{
	switch (method) {
	case RA_AUTHED_CERT:
		return "cert";
	case RA_AUTHED_BASIC:
		return "basic";
	case RA_AUTHED_CERT_BASIC:
		return "cert+basic";
	default:
		return "none";
	}
}

struct ra_request *
ra_request_new(const struct ra_config *config, const struct ra_trust *trust,
               struct event_base *base)
{
	struct ra_request_private *priv;
	struct ra_request *req;
	unsigned char raw[8];

	if ((priv = calloc(1, sizeof(*priv))) == NULL)
		return NULL;
	req = &priv->req;
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		/* A request id only needs to be unique in the logs. */
		struct timeval tv;

		gettimeofday(&tv, NULL);
		memcpy(raw, &tv,
		       sizeof(raw) < sizeof(tv) ? sizeof(raw) : sizeof(tv));
	}
	core_hex_encode(raw, sizeof(raw), req->rid, sizeof(req->rid));
	req->config = config;
	req->trust = trust;
	req->base = base;
	req->ca_ms = -1;
	req->cert_expired_days = -1;
	req->outcome = CA_OUTCOME__MAX;
	gettimeofday(&req->started, NULL);
	req->log.rid = req->rid;
	req->log.client = req->peer.client;
	return req;
}

void
ra_request_free(struct ra_request *req)
{
	struct ra_request_private *priv = (struct ra_request_private *)req;
	void (*release_fn)(void *);
	void *release_arg;

	if (req == NULL)
		return;
	if (priv->running) {
		priv->orphaned = 1;
		return;
	}
	release_fn = req->release_fn;
	release_arg = req->release_arg;
	if (req->wait_timer != NULL)
		event_free(req->wait_timer);
	X509_REQ_free(req->csr);
	json_decref(req->audit_csr);
	ca_call_free(req->call);
	sk_X509_pop_free(req->certs, X509_free);
	free(priv);
	/* Last: what the request borrowed may go away with this call. */
	if (release_fn != NULL)
		release_fn(release_arg);
}

void
ra_request_set_label(struct ra_request *req, const struct ra_label *label,
                     const char *op_name)
{
	req->label = label;
	req->op_name = op_name;
	req->log.label = label != NULL ? label->name : NULL;
	req->log.op = op_name;
	if (label != NULL && label->ca != NULL)
		req->log.backend = ca_instance_backend_name(label->ca);
}

long
ra_request_elapsed_ms(const struct ra_request *req)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return (now.tv_sec - req->started.tv_sec) * 1000L +
	       (now.tv_usec - req->started.tv_usec) / 1000L;
}

static void
ra_request_vrefuse(struct ra_request *req, int status,
                   enum core_log_level level, const char *component,
                   const char *hint, const char *fmt, va_list ap)
{
	req->status = status;
	vsnprintf(req->cause, sizeof(req->cause), fmt, ap);
	if (req->outcome_name == NULL)
		req->outcome_name = status >= 500 ? "MISCONFIGURED" : "REFUSED";
	req->log.answer = status;
	ra_log(level, component, &req->log, hint, "%s", req->cause);
}

void
ra_request_refuse(struct ra_request *req, int status, enum core_log_level level,
                  const char *component, const char *hint, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ra_request_vrefuse(req, status, level, component, hint, fmt, ap);
	va_end(ap);
}

/*
 * Returns name as one RFC 2253 line, new (free with free()), or NULL when
 * memory is short.  OpenSSL escapes RFC 2253's specials, control bytes
 * and bytes past ASCII itself (as \HH); a value it cannot convert (bytes
 * that are not what their string type says) is written as its bytes, so
 * escaped, rather than lost.
 */
static char *
ra_request_subject_new(const X509_NAME *name)
{
	const unsigned long raw = (XN_FLAG_RFC2253 | ASN1_STRFLGS_IGNORE_TYPE) &
	                          ~(unsigned long)ASN1_STRFLGS_UTF8_CONVERT;
	char *data = NULL, *rc = NULL;
	BIO *bio = NULL;
	long n;

	ERR_set_mark();
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0 &&
	    (BIO_reset(bio) != 1 || X509_NAME_print_ex(bio, name, 0, raw) < 0))
		goto out;
	if ((n = BIO_get_mem_data(bio, &data)) < 0 ||
	    (rc = malloc((size_t)n + 1)) == NULL)
		goto out;
	if (n > 0)
		memcpy(rc, data, (size_t)n);
	rc[n] = '\0';
out:
	BIO_free(bio);
	ERR_pop_to_mark();
	return rc;
}

/* The trust stores of the label: its own, or tls.*. */
static const struct ra_trust *
ra_request_trust(const struct ra_request *req)
{
	return req->label->trust != NULL ? req->label->trust : req->trust;
}

static int
ra_request_is_reenroll(const struct ra_request *req)
{
	return req->op_name != NULL &&
	       strcmp(req->op_name, "simplereenroll") == 0;
}

/*
 * Judges the client certificate with the label's rules (stores per
 * operation, clientAuth EKU, grace window, CRL).  Returns 1 when it counts,
 * with its subject in subject (size RA_REQUEST_IDENTITY_MAX); 0 when there
 * is none, or when it does not count, with the reason in why and one
 * notice line naming the OpenSSL reason and the subject.
 */
static int
ra_request_judge_cert(struct ra_request *req, char *subject, char *why,
                      size_t whylen)
{
	const struct ra_label *label = req->label;
	int reenroll = ra_request_is_reenroll(req);
	struct ra_trust_check check;
	enum ra_trust_store store;
	char *text = NULL, shown[1024];
	size_t len;
	int rc = 0;

	subject[0] = '\0';
	if (req->peer.cert == NULL)
		return 0;
	memset(&check, 0, sizeof(check));
	check.stores = reenroll ? label->trust_reenroll : label->trust_enroll;
	check.require_eku = label->require_client_auth_eku;
	check.grace_days = reenroll ? label->grace_days : 0;
	check.crl = label->crl;
	text = ra_request_subject_new(X509_get_subject_name(req->peer.cert));
	core_escape(text, CORE_ESCAPE_INNER, shown, sizeof(shown));
	len = text != NULL ? strlen(text) : 0;
	store = ra_trust_verify_check(ra_request_trust(req), req->peer.cert,
	                              req->peer.chain, &check);
	if (store != RA_TRUST_NONE && len >= RA_REQUEST_IDENTITY_MAX) {
		/* The identity is never cut in the logs, so it must fit. */
		req->cert_store = store;
		snprintf(why, whylen,
		         "its subject is longer than %d characters",
		         RA_REQUEST_IDENTITY_MAX - 1);
		ra_log(CORE_LOG_NOTICE, "ra.auth", &req->log,
		       "such a certificate cannot be an identity here",
		       "client certificate not accepted: %s, subject: "
		       "\"%s\"",
		       why, shown);
		goto out;
	}
	if (store != RA_TRUST_NONE) {
		memcpy(subject, text != NULL ? text : "", len + 1);
		req->cert_store = store;
		req->cert_expired_days = check.expired_days;
		req->is_ra = check.is_ra && label->ra_enabled;
		ra_policy_name_cn(X509_get_subject_name(req->peer.cert),
		                  req->cert_cn, sizeof(req->cert_cn));
		if (check.expired_days >= 0)
			ra_log(CORE_LOG_INFO, "ra.auth", &req->log, NULL,
			       "client certificate expired %ld days ago, "
			       "accepted within reenroll.grace_days %u, "
			       "subject: \"%s\"",
			       check.expired_days, label->grace_days, shown);
		rc = 1;
		goto out;
	}
	req->cert_store = check.chained;
	snprintf(why, whylen, "%s", check.why);
	if (check.crl_stale)
		ra_config_log_crl(label);
	/* Logged even when Basic may still let the client in: the
	 * operator wants to know why the certificate was not enough. */
	ra_log(CORE_LOG_NOTICE, "ra.auth", &req->log,
	       check.chained == RA_TRUST_NONE
	           ? "check that the client certificate chains to "
	             "tls.explicit_ca or tls.implicit_ca (or the label's "
	             "trust stores)"
	           : "the label's trust, require_client_auth_eku, reenroll "
	             "and crl settings decide which certificates count",
	       "client certificate not accepted: %s, subject: \"%s\"", why,
	       shown);
	subject[0] = '\0';
out:
	free(text);
	return rc;
}

/*
 * Refuses Basic credentials that did not pass.  Whether the user exists is
 * for the error log only: the answer and the audit record say the same for
 * every failed check, so that they cannot be used to find user names.
 */
static void
ra_request_refuse_basic(struct ra_request *req, enum ra_basic_result basic,
                        const struct ra_basic_attempt *attempt)
{
	switch (basic) {
	case RA_BASIC_THROTTLED:
		req->retry_after = attempt->retry_after;
		ra_auth_throttle_refused(attempt->reason);
		ra_request_refuse(
		    req, 429, CORE_LOG_NOTICE, "ra.auth",
		    "failed password checks make a client address or user "
		    "name wait, longer each time; check the client's "
		    "credentials",
		    "authentication throttled: too many failed attempts for "
		    "this %s, retry after %u s",
		    ra_auth_throttle_reason_name(attempt->reason),
		    attempt->retry_after);
		snprintf(req->cause, sizeof(req->cause),
		         "authentication refused: too many failed attempts, "
		         "retry after %u s",
		         attempt->retry_after);
		break;
	case RA_BASIC_BUSY:
		req->retry_after = attempt->retry_after;
		req->outcome_name = "REFUSED";
		ra_auth_throttle_refused(RA_THROTTLE_BUSY);
		ra_request_refuse(
		    req, 503, CORE_LOG_WARN, "ra.auth",
		    "a burst of new or wrong credentials kept the password "
		    "checks that may wait full for 5 s; one client address "
		    "may have 16 of them",
		    "authentication busy: too many password checks waiting "
		    "(at most %d, %d per client address), retry after %u s",
		    RA_THROTTLE_QUEUE_MAX, RA_THROTTLE_QUEUE_PER_CLIENT,
		    attempt->retry_after);
		snprintf(req->cause, sizeof(req->cause),
		         "authentication busy: too many password checks "
		         "waiting, retry after %u s",
		         attempt->retry_after);
		break;
	default:
		ra_request_refuse(req, 401, CORE_LOG_NOTICE, "ra.auth",
		                  "check the user's password in the users file",
		                  "authentication failed: %s",
		                  ra_basic_result_text(basic));
		snprintf(req->cause, sizeof(req->cause),
		         "authentication failed: user name or password not "
		         "accepted");
		break;
	}
}

int
ra_request_authenticate(struct ra_request *req, const char *authorization)
{
	const struct ra_label *label = req->label;
	const struct ra_users *users =
	    ra_users_slot_get(req->config->users_slot);
	unsigned int allowed = label->auth;
	enum ra_basic_result basic = RA_BASIC_MALFORMED;
	struct ra_basic_attempt attempt;
	char why[256] = "", user[RA_BASIC_USER_MAX + 1] = "";
	char subject[RA_REQUEST_IDENTITY_MAX];
	int cert_ok, basic_tried = 0, basic_ok = 0;

	req->cert_expired_days = -1;
	/* The certificate is judged on every label, anonymous ones too: a
	 * re-enrollment needs the certificate being renewed. */
	cert_ok = ra_request_judge_cert(req, subject, why, sizeof(why));
	memset(&attempt, 0, sizeof(attempt));
	attempt.client = req->peer.client;
	attempt.busy = req->basic_busy;
	if ((allowed & (RA_AUTH_BASIC | RA_AUTH_CERT_BASIC)) &&
	    authorization != NULL && users != NULL) {
		basic_tried = 1;
		basic = ra_auth_basic_attempt(users, authorization, &attempt,
		                              user, sizeof(user));
		basic_ok = basic == RA_BASIC_OK;
	}
	if (allowed == RA_AUTH_NONE)
		req->auth_method = cert_ok ? RA_AUTHED_CERT : RA_AUTHED_NONE;
	else if ((allowed & RA_AUTH_CERT) && cert_ok)
		req->auth_method = RA_AUTHED_CERT;
	else if ((allowed & RA_AUTH_CERT_BASIC) && cert_ok && basic_ok)
		req->auth_method = RA_AUTHED_CERT_BASIC;
	else if ((allowed & RA_AUTH_BASIC) && basic_ok)
		req->auth_method = RA_AUTHED_BASIC;
	else
		goto refused;
	if (basic_ok && req->auth_method != RA_AUTHED_CERT)
		snprintf(req->user, sizeof(req->user), "%s", user);
	snprintf(req->identity, sizeof(req->identity), "%s",
	         req->auth_method == RA_AUTHED_BASIC ? user : subject);
	if (req->identity[0] != '\0')
		req->log.identity = req->identity;
	if (req->auth_method != RA_AUTHED_CERT &&
	    req->auth_method != RA_AUTHED_CERT_BASIC) {
		/* A certificate that counts but was not what authenticated
		 * carries no identity for the policy either. */
		req->is_ra = 0;
		req->cert_cn[0] = '\0';
	}
	return 0;
refused:
	req->is_ra = 0;
	if (user[0] != '\0') {
		snprintf(req->identity, sizeof(req->identity), "%s", user);
		req->log.identity = req->identity;
	}
	if (basic_tried && !basic_ok) {
		ra_request_refuse_basic(req, basic, &attempt);
		return -1;
	}
	/* The certificate was presented and judged: a credential retry
	 * cannot change that, so the answer is 403 rather than 401. */
	if (req->peer.cert != NULL && !cert_ok &&
	    (ra_request_is_reenroll(req) || req->cert_store != RA_TRUST_NONE)) {
		ra_request_refuse(
		    req, 403, CORE_LOG_NOTICE, "ra.auth", NULL,
		    "%s refused: client certificate not accepted: "
		    "%s",
		    req->op_name, why);
		return -1;
	}
	if ((allowed & (RA_AUTH_BASIC | RA_AUTH_CERT_BASIC)) && cert_ok) {
		ra_request_refuse(req, 401, CORE_LOG_NOTICE, "ra.auth", NULL,
		                  "authentication required: label %s needs "
		                  "Basic credentials with the client "
		                  "certificate",
		                  label->name);
		return -1;
	}
	if (allowed & RA_AUTH_BASIC) {
		ra_request_refuse(
		    req, 401, CORE_LOG_NOTICE, "ra.auth", NULL,
		    "authentication required: %s",
		    why[0] != '\0' ? "client certificate not accepted and no "
		                     "Basic credentials"
		                   : "no client certificate and no Basic "
		                     "credentials");
		return -1;
	}
	ra_request_refuse(req, why[0] != '\0' ? 403 : 401, CORE_LOG_NOTICE,
	                  "ra.auth", NULL, "authentication required: %s%s",
	                  why[0] != '\0'
	                      ? "client certificate not accepted: "
	                      : "label requires a client certificate and none "
	                        "was sent",
	                  why);
	return -1;
}

/* Returns the DER of the SAN extension of exts, or NULL. */
static ASN1_OCTET_STRING *
ra_request_san(const STACK_OF(X509_EXTENSION) *exts)
{
	int i = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);

	if (i < 0)
		return NULL;
	return X509_EXTENSION_get_data(X509v3_get_ext(exts, i));
}

/*
 * Same public key as the certificate being renewed is a renewal, another
 * one a rekey; the label may forbid either.
 */
static int
ra_request_check_key_reuse(struct ra_request *req, X509_REQ *csr)
{
	EVP_PKEY *old = X509_get0_pubkey(req->peer.cert),
	         *new = X509_REQ_get0_pubkey(csr);
	int same = old != NULL && new != NULL &&EVP_PKEY_eq(old, new) == 1;

	ERR_clear_error();
	if (same && !req->label->renew) {
		ra_request_refuse(req, 403, CORE_LOG_NOTICE, "ra.policy",
		                  "the label allows rekey only: send a CSR "
		                  "with a new key",
		                  "reenroll refused: the CSR reuses the key of "
		                  "the certificate being renewed (rule "
		                  "reenroll.renew)");
		return -1;
	}
	if (!same && !req->label->rekey) {
		ra_request_refuse(req, 403, CORE_LOG_NOTICE, "ra.policy",
		                  "the label allows renewal with the same key "
		                  "only",
		                  "reenroll refused: the CSR has a new key "
		                  "(rule reenroll.rekey)");
		return -1;
	}
	return 0;
}

/*
 * RFC 7030 §4.2.2: the CSR's Subject and SubjectAltName must be identical
 * to those of the certificate being renewed, compared as DER bytes.
 */
static int
ra_request_check_reenroll(struct ra_request *req, X509_REQ *csr)
{
	STACK_OF(X509_EXTENSION) *req_exts = NULL;
	ASN1_OCTET_STRING *a, *b;
	unsigned char *der_a = NULL, *der_b = NULL;
	int len_a, len_b, rc = -1;

	if (req->peer.cert == NULL ||
	    (req->auth_method != RA_AUTHED_CERT &&
	     req->auth_method != RA_AUTHED_CERT_BASIC)) {
		ra_request_refuse(
		    req, 403, CORE_LOG_NOTICE, "ra.request",
		    "simplereenroll needs the certificate being renewed as "
		    "the TLS client certificate",
		    "reenroll refused: Unable to locate certificate to be "
		    "renewed");
		goto out;
	}
	if (req->cert_store != RA_TRUST_EXPLICIT) {
		ra_request_refuse(
		    req, 403, CORE_LOG_NOTICE, "ra.request",
		    "a manufacturer certificate may enroll, not reenroll",
		    "reenroll refused: client certificate is anchored in the "
		    "implicit store");
		goto out;
	}
	if (ra_request_check_key_reuse(req, csr) != 0)
		goto out;
	/* An RA renews on behalf of others: the
	 * subject of its own certificate does not bind it. */
	if (req->is_ra) {
		rc = 0;
		goto out;
	}
	len_a = i2d_X509_NAME(X509_REQ_get_subject_name(csr), &der_a);
	len_b = i2d_X509_NAME(X509_get_subject_name(req->peer.cert), &der_b);
	if (len_a < 0 || len_b < 0 || len_a != len_b ||
	    memcmp(der_a, der_b, (size_t)len_a) != 0) {
		ra_request_refuse(
		    req, 403, CORE_LOG_NOTICE, "ra.request",
		    "the CSR must carry the subject of the certificate being "
		    "renewed",
		    "reenroll refused: CSR subject differs from the "
		    "certificate being renewed");
		goto out;
	}
	req_exts = X509_REQ_get_extensions(csr);
	a = ra_request_san(req_exts);
	b = ra_request_san(X509_get0_extensions(req->peer.cert));
	if ((a == NULL) != (b == NULL) ||
	    (a != NULL && ASN1_STRING_cmp(a, b) != 0)) {
		ra_request_refuse(
		    req, 403, CORE_LOG_NOTICE, "ra.request",
		    "the CSR must carry the subjectAltName of the certificate "
		    "being renewed",
		    "reenroll refused: CSR subjectAltName "
		    "differs from the certificate being renewed");
		goto out;
	}
	rc = 0;
out:
	sk_X509_EXTENSION_pop_free(req_exts, X509_EXTENSION_free);
	OPENSSL_free(der_a);
	OPENSSL_free(der_b);
	return rc;
}

/* Hex SHA-256 of DER bytes, for the audit record. */
static void
ra_request_sha256_hex(const unsigned char *der, int len, char *hex,
                      size_t hexlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	hex[0] = '\0';
	if (len <= 0 ||
	    EVP_Digest(der, (size_t)len, md, &mdlen, core_sha256(), NULL) != 1)
		return;
	core_hex_encode(md, mdlen, hex, hexlen);
}

/* A JSON string of estrad's own text (or the configuration's): as it is
 * when printable ASCII, escaped otherwise; never NULL but out of memory. */
static json_t *
ra_request_json_text(const char *s)
{
	return ra_log_json_string(s, CORE_ESCAPE_TEXT);
}

/* A JSON string of a client-supplied value, escaped as in every log. */
static json_t *
ra_request_json_value(const char *s)
{
	return ra_log_json_string(s, CORE_ESCAPE_INNER);
}

/* A JSON string of s as it is when it is UTF-8, else escaped: for the
 * external authorizer, which wants values unescaped but no key lost. */
static json_t *
ra_request_json_raw(const char *s)
{
	json_t *j = json_string(s != NULL ? s : "");

	return j != NULL ? j : ra_request_json_text(s);
}

/*
 * Returns one subjectAltName as text, new (free with free()), or NULL.
 * With escape set, as the audit record keeps it: the bytes of a dNSName,
 * rfc822Name or URI after its prefix, everything escaped as in every log,
 * so that a byte outside printable ASCII is kept, not turned into a dot
 * as OpenSSL prints it.  Without, as OpenSSL prints it.
 */
static char *
ra_request_san_text(const GENERAL_NAME *gn, int escape)
{
	const ASN1_IA5STRING *ia5 = NULL;
	const char *prefix = "";
	char *printed = NULL, *value = NULL, *rc = NULL, *data;
	BIO *bio = NULL;
	size_t plen;
	long n;

	switch (gn->type) {
	case GEN_DNS:
		prefix = "DNS:";
		ia5 = gn->d.dNSName;
		break;
	case GEN_EMAIL:
		prefix = "email:";
		ia5 = gn->d.rfc822Name;
		break;
	case GEN_URI:
		prefix = "URI:";
		ia5 = gn->d.uniformResourceIdentifier;
		break;
	default:
		break;
	}
	if (escape && ia5 != NULL) {
		value = core_escape_new(ASN1_STRING_get0_data(ia5),
		                        (size_t)ASN1_STRING_length(ia5),
		                        CORE_ESCAPE_INNER);
	} else {
		if ((bio = BIO_new(BIO_s_mem())) == NULL ||
		    GENERAL_NAME_print(bio, (GENERAL_NAME *)gn) <= 0 ||
		    (n = BIO_get_mem_data(bio, &data)) < 0 ||
		    (printed = malloc((size_t)n + 1)) == NULL)
			goto out;
		memcpy(printed, data, (size_t)n);
		printed[n] = '\0';
		if (!escape) {
			rc = printed;
			printed = NULL;
			goto out;
		}
		prefix = "";
		value = core_escape_new(printed, (size_t)n, CORE_ESCAPE_INNER);
	}
	if (value == NULL)
		goto out;
	plen = strlen(prefix);
	if ((rc = malloc(plen + strlen(value) + 1)) == NULL)
		goto out;
	memcpy(rc, prefix, plen);
	memcpy(rc + plen, value, strlen(value) + 1);
out:
	BIO_free(bio);
	free(printed);
	free(value);
	return rc;
}

/*
 * The "csr" object of the audit record (escape set: client-supplied
 * subject and SANs escaped as in every log, whole) or of the external
 * authorizer's input (as OpenSSL prints them).
 */
static json_t *
ra_request_audit_csr(X509_REQ *csr, int escape)
{
	char hex[2 * EVP_MAX_MD_SIZE + 1], key[64], *text;
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *names = NULL;
	unsigned char *der = NULL;
	EVP_PKEY *pkey;
	json_t *obj, *sans;
	int i, len;

	obj = json_object();
	sans = json_array();
	text = ra_request_subject_new(X509_REQ_get_subject_name(csr));
	json_object_set_new(obj, "subject",
	                    escape ? ra_request_json_value(text)
	                           : ra_request_json_raw(text));
	free(text);
	exts = X509_REQ_get_extensions(csr);
	i = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
	if (i >= 0)
		names = X509V3_EXT_d2i(X509v3_get_ext(exts, i));
	for (i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		text = ra_request_san_text(sk_GENERAL_NAME_value(names, i),
		                           escape);
		json_array_append_new(sans, escape ? ra_request_json_text(text)
		                                   : ra_request_json_raw(text));
		free(text);
	}
	GENERAL_NAMES_free(names);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	json_object_set_new(obj, "san", sans);
	pkey = X509_REQ_get0_pubkey(csr);
	if (pkey != NULL) {
		snprintf(key, sizeof(key), "%s-%d",
		         EVP_PKEY_get0_type_name(pkey),
		         EVP_PKEY_get_bits(pkey));
		json_object_set_new(obj, "key", ra_request_json_text(key));
		/* The CSR's own encoding: i2d_PUBKEY() would run the key
		 * through OpenSSL 3's encoder for the same bytes. */
		len = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(csr), &der);
		ra_request_sha256_hex(der, len, hex, sizeof(hex));
		json_object_set_new(obj, "spki_sha256", json_string(hex));
		OPENSSL_free(der);
	}
	/* Any string conversion above may leave stale errors behind. */
	ERR_clear_error();
	return obj;
}

/*
 * Builds the audit record's "csr" of the request's CSR once.  Returns 0,
 * or -1 after refusing a CSR whose subject and SANs would take more than
 * RA_REQUEST_AUDIT_CSR_MAX bytes there: its record then has no "csr",
 * like that of a body that is no CSR.
 */
static int
ra_request_audit_csr_prepare(struct ra_request *req)
{
	size_t size;

	if (req->csr == NULL || req->audit_csr != NULL ||
	    !ra_log_audit_enabled())
		return 0;
	req->audit_csr = ra_request_audit_csr(req->csr, 1);
	size = json_dumpb(req->audit_csr, NULL, 0, JSON_COMPACT);
	if (size <= RA_REQUEST_AUDIT_CSR_MAX)
		return 0;
	json_decref(req->audit_csr);
	req->audit_csr = NULL;
	X509_REQ_free(req->csr);
	req->csr = NULL;
	ra_request_refuse(req, 400, CORE_LOG_NOTICE, "ra.request",
	                  "the audit log keeps subject and subjectAltName "
	                  "whole, so their size is bounded",
	                  "%s refused: CSR subject and subjectAltName take "
	                  "%zu bytes in the audit record, more than %d",
	                  req->op_name, size, RA_REQUEST_AUDIT_CSR_MAX);
	return -1;
}

static json_t *
ra_request_audit_cert(X509 *cert)
{
	char hex[2 * EVP_MAX_MD_SIZE + 1], when[64], *issuer;
	const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
	BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
	char *serial_hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	unsigned char *der = NULL;
	json_t *obj = json_object();
	int len;

	json_object_set_new(obj, "serial",
	                    json_string(serial_hex != NULL ? serial_hex : ""));
	issuer = ra_request_subject_new(X509_get_issuer_name(cert));
	json_object_set_new(obj, "issuer", ra_request_json_text(issuer));
	free(issuer);
	if (core_time_asn1_seconds(X509_get0_notAfter(cert)) >= 0)
		json_object_set_new(
		    obj, "not_after",
		    json_string(core_time_asn1(X509_get0_notAfter(cert), when,
		                               sizeof(when))));
	len = i2d_X509(cert, &der);
	ra_request_sha256_hex(der, len, hex, sizeof(hex));
	json_object_set_new(obj, "sha256", json_string(hex));
	OPENSSL_free(der);
	OPENSSL_free(serial_hex);
	BN_free(bn);
	return obj;
}

/*
 * Builds the audit record of an answer (a new object), or returns NULL
 * when there is no audit log.  Marks the request audited.
 */
static json_t *
ra_request_audit_entry(struct ra_request *req, const char *event)
{
	json_t *entry, *auth;

	req->audited = 1;
	if (!ra_log_audit_enabled())
		return NULL;
	entry = json_object();
	auth = json_object();

	/* Every string goes through the log escaper: a byte that is not
	 * UTF-8 would make jansson refuse the string and lose its key. */
	json_object_set_new(entry, "rid", ra_request_json_text(req->rid));
	json_object_set_new(entry, "event", ra_request_json_text(event));
	json_object_set_new(
	    entry, "label",
	    ra_request_json_text(req->label != NULL ? req->label->name : ""));
	json_object_set_new(entry, "op", ra_request_json_text(req->op_name));
	json_object_set_new(entry, "client",
	                    ra_request_json_text(req->peer.client));
	json_object_set_new(
	    auth, "method",
	    ra_request_json_text(ra_auth_method_name(req->auth_method)));
	json_object_set_new(auth, "identity",
	                    ra_request_json_value(req->identity));
	if ((req->auth_method == RA_AUTHED_CERT ||
	     req->auth_method == RA_AUTHED_CERT_BASIC) &&
	    req->peer.cert != NULL) {
		char hex[2 * EVP_MAX_MD_SIZE + 1];
		unsigned char *der = NULL;
		int len = i2d_X509(req->peer.cert, &der);

		ra_request_sha256_hex(der, len, hex, sizeof(hex));
		OPENSSL_free(der);
		json_object_set_new(auth, "cert_sha256", json_string(hex));
		json_object_set_new(
		    auth, "store",
		    ra_request_json_text(ra_trust_store_name(req->cert_store)));
	}
	if (req->is_ra)
		json_object_set_new(auth, "ra", json_true());
	if (req->cert_expired_days >= 0)
		json_object_set_new(auth, "expired_days",
		                    json_integer(req->cert_expired_days));
	json_object_set_new(entry, "auth", auth);
	if (req->pop_linked != NULL)
		json_object_set_new(entry, "pop",
		                    ra_request_json_text(req->pop_linked));
	if (req->ext_dropped[0] != '\0')
		json_object_set_new(entry, "dropped_extensions",
		                    ra_request_json_text(req->ext_dropped));
	if (req->csr != NULL)
		json_object_set_new(entry, "csr",
		                    req->audit_csr != NULL
		                        ? json_incref(req->audit_csr)
		                        : ra_request_audit_csr(req->csr, 1));
	if (req->label != NULL && req->label->ca != NULL)
		json_object_set_new(
		    entry, "backend",
		    ra_request_json_text(
		        ca_instance_backend_name(req->label->ca)));
	if (req->certs != NULL && sk_X509_num(req->certs) > 0)
		json_object_set_new(
		    entry, "cert",
		    ra_request_audit_cert(sk_X509_value(req->certs, 0)));
	else
		json_object_set_new(entry, "reason",
		                    ra_request_json_text(req->cause));
	json_object_set_new(entry, "http_status", json_integer(req->status));
	return entry;
}

/*
 * Writes the audit record of an answer; with wait set it is durable on
 * return.  Returns -1 when the record could not be written (or made
 * durable): the caller then withholds what it promised.  Refusals promise
 * nothing and do not wait (ra_log_audit_nowait()), so that a flood of
 * them never stops the worker for the disk.
 */
static int
ra_request_audit(struct ra_request *req, const char *event, int wait)
{
	json_t *entry = ra_request_audit_entry(req, event);
	int rc;

	if (entry == NULL)
		return 0;
	rc = wait ? ra_log_audit(entry) : ra_log_audit_nowait(entry);
	json_decref(entry);
	return rc;
}

int
ra_request_audit_refused(struct ra_request *req)
{
	if (req->audited)
		return 0;
	return ra_request_audit(req, "refused", 0);
}

/* Maps the CA outcome to the EST answer. */
static int
ra_request_status_of(const struct ca_result *res)
{
	switch (res->outcome) {
	case CA_ISSUED:
		return 200;
	case CA_PENDING:
		return 202;
	case CA_REJECTED:
		return res->csr_fault ? 400 : 403;
	case CA_UNREACHABLE:
		return 503;
	case CA_UNSUPPORTED:
		return 501;
	case CA_CANCELLED:
		return 503;
	default:
		return 500;
	}
}

static void
ra_request_finish(struct ra_request *req)
{
	struct ra_request_private *priv = (struct ra_request_private *)req;

	priv->running = 0;
	if (priv->orphaned) {
		if (priv->detached)
			ra_log(CORE_LOG_INFO, "ra.request", &req->log, NULL,
			       "CA answered after the client got 202: %s, "
			       "kept for the client's retry",
			       req->outcome_name != NULL ? req->outcome_name
			                                 : "-");
		else
			ra_log(CORE_LOG_INFO, "ra.request", &req->log, NULL,
			       "client left before the CA answered (%s)",
			       req->outcome_name != NULL ? req->outcome_name
			                                 : "-");
		ra_request_free(req);
		return;
	}
	req->done_fn(req, req->done_arg);
}

/*
 * Authorization: PoP linking, the label's policy and its external
 * authorizer, after authentication and before the CA call.
 */

/* Appends the PEM of cert to list. */
static void
ra_request_json_pem(json_t *list, X509 *cert)
{
	BIO *bio;
	char *data = NULL;
	long n;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return;
	if (PEM_write_bio_X509(bio, cert) == 1 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0)
		json_array_append_new(list, json_stringn(data, (size_t)n));
	BIO_free(bio);
}

/* The request as the external authorizer reads it (README). */
static json_t *
ra_request_authz_input(struct ra_request *req)
{
	json_t *root = json_object(), *peer = json_object(),
	       *id = json_object(), *chain = json_array(), *csr;
	BIO *bio;
	char *data = NULL;
	long n;
	int i;

	json_object_set_new(root, "operation", json_string(req->op_name));
	json_object_set_new(root, "label", json_string(req->label->name));
	json_object_set_new(root, "rid", json_string(req->rid));
	json_object_set_new(peer, "client", json_string(req->peer.client));
	json_object_set_new(peer, "tls",
	                    json_string(req->peer.tls_version != NULL
	                                    ? req->peer.tls_version
	                                    : ""));
	json_object_set_new(
	    peer, "pop",
	    json_string(req->pop_linked != NULL ? req->pop_linked : "none"));
	json_object_set_new(root, "peer", peer);
	json_object_set_new(id, "method",
	                    json_string(ra_auth_method_name(req->auth_method)));
	json_object_set_new(id, "name", ra_request_json_raw(req->identity));
	json_object_set_new(id, "user", ra_request_json_raw(req->user));
	json_object_set_new(id, "cert_cn", ra_request_json_raw(req->cert_cn));
	json_object_set_new(id, "store",
	                    json_string(ra_trust_store_name(req->cert_store)));
	json_object_set_new(id, "ra", json_boolean(req->is_ra));
	json_object_set_new(root, "identity", id);
	if (req->peer.cert != NULL)
		ra_request_json_pem(chain, req->peer.cert);
	for (i = 0; req->peer.chain != NULL && i < sk_X509_num(req->peer.chain);
	     i++) {
		X509 *x = sk_X509_value(req->peer.chain, i);

		/* The server side's peer chain starts with the leaf. */
		if (req->peer.cert != NULL && X509_cmp(x, req->peer.cert) == 0)
			continue;
		ra_request_json_pem(chain, x);
	}
	json_object_set_new(root, "client_chain", chain);
	csr = ra_request_audit_csr(req->csr, 0);
	if ((bio = BIO_new(BIO_s_mem())) != NULL) {
		if (PEM_write_bio_X509_REQ(bio, req->csr) == 1 &&
		    (n = BIO_get_mem_data(bio, &data)) > 0)
			json_object_set_new(csr, "pem",
			                    json_stringn(data, (size_t)n));
		BIO_free(bio);
	}
	json_object_set_new(root, "csr", csr);
	ERR_clear_error();
	return root;
}

/* The external authorizer answered; runs on the worker's loop. */
static void
ra_request_authz_done(const struct ra_authz_result *res, void *arg)
{
	struct ra_request *req = arg;
	struct ra_request_private *priv = (struct ra_request_private *)req;
	const struct ra_authorizer *az = req->label->authorizer;
	char hint[CA_HINT_MAX];

	if (priv->orphaned) {
		/* The client left; nobody waits for a certificate. */
		ra_request_finish(req);
		return;
	}
	switch (res->answer) {
	case RA_AUTHZ_ALLOW:
		ra_log(CORE_LOG_INFO, "ra.authorizer", &req->log, NULL,
		       "authorizer allowed the request in %ld ms", res->ms);
		req->authorized = 1;
		ra_request_start(req, req->ca_op, req->csr, req->done_fn,
		                 req->done_arg);
		return;
	case RA_AUTHZ_DENY:
		snprintf(hint, sizeof(hint), "authorizer %s exited %d",
		         ra_authorizer_path(az), res->status);
		ra_request_refuse(req, 403, CORE_LOG_NOTICE, "ra.authorizer",
		                  hint, "%s refused: %s (rule authorizer)",
		                  req->op_name, res->reason);
		break;
	case RA_AUTHZ_TIMEOUT:
		snprintf(hint, sizeof(hint),
		         "check %s or raise authorizer.timeout",
		         ra_authorizer_path(az));
		req->outcome_name = "UNREACHABLE";
		req->retry_after = req->label->retry_after;
		ra_request_refuse(req, 503, CORE_LOG_ERROR, "ra.authorizer",
		                  hint,
		                  "%s failed: authorizer timed out after %u s "
		                  "(rule authorizer)",
		                  req->op_name, ra_authorizer_timeout(az));
		break;
	default:
		snprintf(hint, sizeof(hint), "check authorizer.command %s",
		         ra_authorizer_path(az));
		ra_request_refuse(req, 500, CORE_LOG_ERROR, "ra.authorizer",
		                  hint,
		                  "%s failed: authorizer %s (rule authorizer)",
		                  req->op_name, res->reason);
		break;
	}
	(void)ra_request_audit(req, req->status >= 500 ? "failed" : "refused",
	                       0);
	ra_request_finish(req);
}

/*
 * Runs the checks that follow authentication.  Returns 0 when the CA call
 * may start, 1 when the external authorizer was started (its answer
 * continues the request), -1 after refusing it.
 */
static int
ra_request_authorize(struct ra_request *req, enum ca_operation op,
                     X509_REQ *csr)
{
	const struct ra_label *label = req->label;
	const struct ra_policy *policy;
	struct ra_policy_verdict verdict;
	struct ra_policy_input in;
	struct ra_pop_channel channel;
	struct ra_pop_result pop;
	char err[256];
	json_t *input;
	int rc = -1;

	if (op == CA_OP_REENROLL && ra_request_check_reenroll(req, csr) != 0)
		goto out;
	memset(&channel, 0, sizeof(channel));
	channel.tls13 = req->peer.tls_version != NULL &&
	                strcmp(req->peer.tls_version, "TLSv1.3") == 0;
	channel.unique = req->peer.tls_unique;
	channel.unique_len = req->peer.tls_unique_len;
	channel.exporter = req->peer.tls_exporter;
	channel.exporter_len = req->peer.tls_exporter_len;
	if (ra_pop_check(label->pop, label->tls_exporter,
	                 req->is_ra && label->ra_waive_pop, csr, &channel,
	                 &pop) != 0) {
		ra_request_refuse(
		    req, pop.status,
		    pop.status >= 500 ? CORE_LOG_ERROR : CORE_LOG_NOTICE,
		    "ra.pop", pop.hint[0] != '\0' ? pop.hint : NULL, "%s",
		    pop.reason);
		goto out;
	}
	req->pop_linked = pop.linked;
	policy = req->is_ra && label->ra_policy != NULL ? label->ra_policy
	                                                : label->policy;
	memset(&in, 0, sizeof(in));
	in.csr = csr;
	in.user = req->user[0] != '\0' ? req->user : NULL;
	in.cert_cn = req->cert_cn[0] != '\0' ? req->cert_cn : NULL;
	in.is_ra = req->is_ra;
	in.forwards_csr =
	    (ca_instance_caps(label->ca) & CA_CAP_FORWARDS_CSR) != 0;
	if (ra_policy_check(policy, &in, &verdict) != 0) {
		ra_request_refuse(req, 403, CORE_LOG_NOTICE, "ra.policy",
		                  verdict.hint[0] != '\0' ? verdict.hint : NULL,
		                  "%s", verdict.reason);
		goto out;
	}
	if (verdict.dropped[0] != '\0') {
		snprintf(req->ext_dropped, sizeof(req->ext_dropped), "%s",
		         verdict.dropped);
		ra_log(CORE_LOG_INFO, "ra.policy", &req->log,
		       "list them in policy.extensions.allow to honour them",
		       "requested extensions dropped by rule extensions: %s",
		       verdict.dropped);
	}
	if (label->authorizer == NULL) {
		rc = 0;
		goto out;
	}
	if ((input = ra_request_authz_input(req)) == NULL ||
	    ra_authorizer_run(label->authorizer, req->base, input, req->rid,
	                      label->name, req->op_name, ra_request_authz_done,
	                      req, err, sizeof(err)) == NULL) {
		json_decref(input);
		ra_request_refuse(req, 500, CORE_LOG_ERROR, "ra.authorizer",
		                  "check authorizer.command of the label",
		                  "%s failed: cannot run the authorizer: %s",
		                  req->op_name,
		                  input == NULL ? "out of memory" : err);
		goto out;
	}
	json_decref(input);
	rc = 1;
out:
	return rc;
}

static void ra_request_conclude(struct ra_request *req, struct ca_call *call,
                                int enroll);
static void ra_request_pending_update(struct ra_request *req, int detached);

/*
 * Completion of the cacerts call made for include_chain: the CA chain is
 * appended after the issued certificate.  Without a chain the client still
 * gets its certificate; the failure is logged as degraded service.
 */
static void
ra_request_chain_done(struct ca_call *call, void *arg)
{
	struct ra_request *req = arg;
	STACK_OF(X509) *chain = call->result.chain;
	int i;

	if (call->result.outcome == CA_ISSUED && chain != NULL) {
		for (i = 0; i < sk_X509_num(chain); i++) {
			X509 *cert = sk_X509_value(chain, i);

			if (X509_cmp(cert, sk_X509_value(req->certs, 0)) == 0)
				continue;
			if (X509_up_ref(cert) != 1 ||
			    sk_X509_push(req->certs, cert) <= 0) {
				X509_free(cert);
				break;
			}
		}
	} else {
		/* The backend logs no line of its own for the failed call:
		 * this one carries its detail and hint. */
		ra_log(CORE_LOG_WARN, "ra.request", &req->log,
		       call->result.hint[0] != '\0' ? call->result.hint : NULL,
		       "include_chain: cannot get the CA chain: %s%s%s",
		       call->result.cause,
		       call->result.detail[0] != '\0' ? ", " : "",
		       call->result.detail);
	}
	ra_request_conclude(req, call, 1);
}

/* Starts a cacerts call on the same label for include_chain. */
static int
ra_request_fetch_chain(struct ra_request *req, struct ca_call *done)
{
	struct ca_call *call;

	if ((call = ca_call_new()) == NULL)
		return -1;
	ca_call_free(done);
	req->call = call;
	req->call->op = CA_OP_CACERTS;
	req->call->base = req->base;
	req->call->rid = req->rid;
	req->call->label = req->label->name;
	req->call->log_context = &req->log;
	ca_instance_start(req->label->ca, req->call, ra_request_chain_done,
	                  req);
	return 0;
}

/* Completion of the CA call, on the worker's loop. */
static void
ra_request_ca_done(struct ca_call *call, void *arg)
{
	struct ra_request *req = arg;
	struct ca_result *res = &call->result;
	int enroll = req->ca_op == CA_OP_ENROLL ||
	             req->ca_op == CA_OP_REENROLL || req->ca_op == CA_OP_POLL;

	if (req->wait_timer != NULL)
		evtimer_del(req->wait_timer);
	if (res->outcome == CA_PENDING)
		snprintf(req->poll_cookie, sizeof(req->poll_cookie), "%s",
		         res->cookie);
	req->ca_ms = ra_request_elapsed_ms(req);
	req->outcome = res->outcome;
	req->outcome_name = ca_outcome_name(res->outcome);
	req->status = ra_request_status_of(res);
	req->log.answer = req->status;
	/* Copied: the call, and its result, are freed before the request's
	 * last log line. */
	if (res->url[0] != '\0') {
		snprintf(req->ca_url, sizeof(req->ca_url), "%s", res->url);
		req->log.url = req->ca_url;
	}
	if (res->outcome == CA_ISSUED) {
		if (res->chain == NULL || sk_X509_num(res->chain) == 0) {
			/* A backend that says ISSUED without a certificate
			 * is broken; the client must not get an empty 200. */
			req->status = 500;
			req->outcome_name = "MISCONFIGURED";
			req->log.answer = 500;
			snprintf(req->cause, sizeof(req->cause),
			         "%s failed: backend %s answered without a "
			         "certificate",
			         ca_operation_name(req->ca_op),
			         ca_instance_backend_name(req->label->ca));
			ra_log(CORE_LOG_ALERT, "ra.request", &req->log, NULL,
			       "%s", req->cause);
		} else {
			req->certs = res->chain;
			res->chain = NULL;
			if (enroll && req->label->include_chain &&
			    ra_request_fetch_chain(req, call) == 0)
				return;
		}
	} else {
		unsigned int retry = res->retry_after;

		snprintf(req->cause, sizeof(req->cause), "%s",
		         res->cause[0] != '\0' ? res->cause
		                               : req->outcome_name);
		if (req->status == 202 || req->status == 503)
			req->retry_after =
			    retry != 0 ? retry : req->label->retry_after;
		if (res->outcome == CA_PENDING) {
			ra_log(CORE_LOG_NOTICE, "ra.request", &req->log,
			       res->hint[0] != '\0' ? res->hint : NULL, "%s",
			       req->cause);
		} else {
			char component[64];

			/* The failed request's one line: backends log no
			 * line of their own for it, so this one carries
			 * everything (cause, the backend's detail, URL,
			 * answer, hint), under the backend's component as
			 * the fault is the CA's. */
			snprintf(component, sizeof(component), "ca.%s",
			         ca_instance_backend_name(req->label->ca));
			ra_log(req->status >= 500 ? CORE_LOG_ERROR
			                          : CORE_LOG_NOTICE,
			       component, &req->log,
			       res->hint[0] != '\0' ? res->hint : NULL,
			       "%s%s%s", req->cause,
			       res->detail[0] != '\0' ? ", " : "", res->detail);
		}
	}
	ra_request_conclude(req, call, enroll);
}

/*
 * Applies the audit result rc of an enrollment answer: an issuance whose
 * record is not durable becomes a 500, a 202 a 503.
 */
static void
ra_request_audit_applied(struct ra_request *req, int rc_audit)
{
	if (rc_audit != 0 && req->status == 200) {
		sk_X509_pop_free(req->certs, X509_free);
		req->certs = NULL;
		req->status = 500;
		req->outcome_name = "MISCONFIGURED";
		snprintf(req->cause, sizeof(req->cause),
		         "enroll failed: audit log unwritable, certificate "
		         "withheld");
	} else if (rc_audit != 0 && req->status == 202) {
		/* A 202 without its audit record is a promise the audit
		 * cannot prove; the record stays, so the client's retry
		 * finds it once the disk is back. */
		req->status = 503;
		req->outcome_name = "UNREACHABLE";
		req->retry_after = req->label->retry_after;
		req->log.answer = 503;
		snprintf(req->cause, sizeof(req->cause),
		         "%s failed: audit log unwritable", req->op_name);
	}
}

/* The audit writer is done with the record of an enrollment answer. */
static void
ra_request_audited(int rc_audit, void *arg)
{
	struct ra_request *req = arg;

	ra_request_audit_applied(req, rc_audit);
	ra_request_finish(req);
}

/*
 * Frees the CA call, audits an enrollment answer and hands the answer to
 * est/ (once the audit record is durable).  An issuance whose audit record
 * cannot be made durable is turned into a 500: a certificate nobody can trace
 * must not leave.
 */
static void
ra_request_conclude(struct ra_request *req, struct ca_call *call, int enroll)
{
	struct ra_request_private *priv = (struct ra_request_private *)req;
	const char *event;
	json_t *entry = NULL;
	int rc_audit = 0;

	if (enroll && !priv->from_store)
		ra_request_pending_update(req, priv->detached);
	ca_call_free(call);
	req->call = NULL;
	if (enroll) {
		event = req->status == 200            ? "issued"
		        : req->status == 202          ? "pending"
		        : req->outcome == CA_REJECTED ? "rejected"
		                                      : "failed";
		entry = ra_request_audit_entry(req, event);
	}
	if (entry != NULL) {
		/* The worker goes on serving while the record is synced;
		 * the answer leaves when it is durable (ra_request_audited).
		 * The request stays running, so a client that leaves
		 * meanwhile only orphans it. */
		if (ra_log_audit_submit(entry, req->base, ra_request_audited,
		                        req) == 0) {
			json_decref(entry);
			return;
		}
		rc_audit = ra_log_audit(entry);
		json_decref(entry);
		ra_request_audit_applied(req, rc_audit);
	}
	ra_request_finish(req);
}

/* Delivers an answer known before any CA call, from the loop. */
static void
ra_request_deliver(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ra_request_finish(arg);
}

/*
 * Pending requests (RFC 7030 §4.2.3).  A retry finds its request again
 * by label, identity and public key; a CA that takes a request under
 * submission, or is slower than the label's ca_wait, leaves a record in
 * the store, and the answer comes from it or from polling the CA.
 */

/* What to check when the store refuses a record for its bounds. */
#define RA_REQUEST_PENDING_FULL_HINT                                           \
	"clients that do not come back keep their records until "              \
	"pending.lifetime ends; raise pending.max_records or "                 \
	"pending.max_per_identity if this load is legitimate"

/* Expires old records, at most once a second, from whichever worker:
 * each call does a bounded step of the work (ra_pending_ops.expire). */
static void
ra_request_pending_expire(struct ra_pending *store)
{
	static time_t last;
	time_t now = time(NULL),
	       seen = __atomic_load_n(&last, __ATOMIC_RELAXED);
	char err[512];

	if (now - seen < 1 ||
	    !__atomic_compare_exchange_n(&last, &seen, now, 0, __ATOMIC_RELAXED,
	                                 __ATOMIC_RELAXED))
		return;
	if (store->ops->expire(store, now, err, sizeof(err)) < 0)
		ra_log(CORE_LOG_ERROR, "ra.pending", NULL,
		       "check the pending.dir directory", "expiry failed: %s",
		       err);
}

/* Fills the parts of a record every state shares. */
static void
ra_request_pending_record(struct ra_request *req,
                          struct ra_pending_record *record,
                          enum ra_pending_state state)
{
	time_t now = time(NULL);

	memset(record, 0, sizeof(*record));
	snprintf(record->key, sizeof(record->key), "%s", req->pending_key);
	record->state = state;
	snprintf(record->label, sizeof(record->label), "%s", req->label->name);
	/* The record's copy only informs whoever reads the store; the key
	 * above is made from the whole identity. */
	snprintf(record->identity, sizeof(record->identity), "%.*s",
	         (int)sizeof(record->identity) - 1, req->identity);
	snprintf(record->first_rid, sizeof(record->first_rid), "%s",
	         req->first_rid[0] != '\0' ? req->first_rid : req->rid);
	snprintf(record->cookie, sizeof(record->cookie), "%s",
	         req->poll_cookie);
	record->retry_after =
	    req->retry_after != 0 ? req->retry_after : req->label->retry_after;
	record->pid = (long)getpid();
	record->created = now;
	record->expires = now + (time_t)req->config->pending->lifetime;
}

/*
 * Looks the enrollment up in the store.  Returns 0 to go on with *op
 * (CA_OP_POLL with req->poll_cookie when the CA holds the request), or 1
 * when the record itself is the answer (status, cause, certs set).
 */
static int
ra_request_pending_lookup(struct ra_request *req, enum ca_operation *op)
{
	struct ra_pending *store = req->config->pending;
	struct ra_pending_record record;
	char err[512];
	int rc = 0, found;

	if (store == NULL)
		return 0;
	if (ra_pending_key(req->label->name, req->identity, req->csr,
	                   req->pending_key) != 0) {
		req->pending_key[0] = '\0';
		return 0;
	}
	ra_request_pending_expire(store);
	found =
	    store->ops->get(store, req->pending_key, &record, err, sizeof(err));
	if (found < 0) {
		/* A damaged record must not block the client for ever: it
		 * is dropped and the request goes to the CA again. */
		ra_log(CORE_LOG_ERROR, "ra.pending", &req->log,
		       "the record was dropped; check the disk of pending.dir",
		       "cannot read pending record: %s", err);
		store->ops->remove(store, req->pending_key, err, sizeof(err));
		return 0;
	}
	if (found == 0)
		return 0;
	snprintf(req->first_rid, sizeof(req->first_rid), "%s",
	         record.first_rid);
	snprintf(req->log_extra, sizeof(req->log_extra), "first_rid: %s",
	         record.first_rid);
	req->log.extra = req->log_extra;
	switch (record.state) {
	case RA_PENDING_AT_CA:
		snprintf(req->poll_cookie, sizeof(req->poll_cookie), "%s",
		         record.cookie);
		*op = CA_OP_POLL;
		break;
	case RA_PENDING_IN_FLIGHT:
		if (record.pid == (long)getpid()) {
			req->status = 202;
			req->outcome = CA_PENDING;
			req->outcome_name = "PENDING";
			req->retry_after = record.retry_after;
			snprintf(req->cause, sizeof(req->cause),
			         "%s pending: the CA has not answered yet",
			         req->op_name);
			rc = 1;
			break;
		}
		ra_log(CORE_LOG_WARN, "ra.pending", &req->log,
		       "the CA may hold a duplicate request",
		       "pending request was in flight when estrad restarted; "
		       "submitting it again");
		store->ops->remove(store, req->pending_key, err, sizeof(err));
		break;
	case RA_PENDING_ISSUED:
		if ((req->certs =
		         ra_pending_certs_from_pem(record.certs_pem)) == NULL) {
			ra_log(CORE_LOG_ERROR, "ra.pending", &req->log, NULL,
			       "pending record holds no readable certificate; "
			       "submitting again");
			store->ops->remove(store, req->pending_key, err,
			                   sizeof(err));
			break;
		}
		req->status = 200;
		req->outcome = CA_ISSUED;
		req->outcome_name = "ISSUED";
		store->ops->remove(store, req->pending_key, err, sizeof(err));
		rc = 1;
		break;
	case RA_PENDING_REJECTED:
		req->status = record.status != 0 ? record.status : 403;
		req->outcome = CA_REJECTED;
		req->outcome_name = "REJECTED";
		snprintf(req->cause, sizeof(req->cause), "%s", record.reason);
		req->log.answer = req->status;
		ra_log(CORE_LOG_NOTICE, "ra.request", &req->log, NULL, "%s",
		       req->cause);
		store->ops->remove(store, req->pending_key, err, sizeof(err));
		rc = 1;
		break;
	default:
		break;
	}
	ra_pending_record_cleanup(&record);
	return rc;
}

/*
 * Brings the store up to date with the answer of an enrollment or poll
 * call.  detached: the client already has 202, so the answer itself must
 * be kept for its retry.  A PENDING answer that cannot be recorded is
 * turned into 503: estrad never promises what it cannot remember.
 */
static void
ra_request_pending_update(struct ra_request *req, int detached)
{
	struct ra_pending *store = req->config->pending;
	struct ra_pending_record record;
	char err[512];
	int keep = 0, rc = 0;

	if (store == NULL || req->pending_key[0] == '\0') {
		if (req->status == 202 && store == NULL)
			ra_log(CORE_LOG_WARN, "ra.pending", &req->log,
			       "configure pending.dir so that retries find "
			       "their request",
			       "no pending store: the client's retry will "
			       "submit a new request");
		return;
	}
	if (req->status == 202) {
		ra_request_pending_record(req, &record, RA_PENDING_AT_CA);
		keep = 1;
	} else if (detached && req->status == 200) {
		ra_request_pending_record(req, &record, RA_PENDING_ISSUED);
		record.certs_pem = ra_pending_certs_to_pem(req->certs);
		keep = record.certs_pem != NULL;
	} else if (detached && req->outcome == CA_REJECTED) {
		ra_request_pending_record(req, &record, RA_PENDING_REJECTED);
		record.status = req->status;
		snprintf(record.reason, sizeof(record.reason), "%s",
		         req->cause);
		keep = 1;
	} else if (req->status == 503 && req->ca_op == CA_OP_POLL) {
		/* The CA still holds the request; poll it again later. */
		return;
	}
	if (keep)
		rc = store->ops->put(store, &record, err, sizeof(err));
	else
		rc = store->ops->remove(store, req->pending_key, err,
		                        sizeof(err));
	if (keep)
		ra_pending_record_cleanup(&record);
	if (rc == 0)
		return;
	/* The 202 becomes a 503 first, so that the error line names the
	 * answer the client really gets. */
	if (req->status == 202 && !detached) {
		req->status = 503;
		req->outcome_name = "UNREACHABLE";
		req->retry_after = req->label->retry_after;
		req->log.answer = 503;
		snprintf(req->cause, sizeof(req->cause), "%s failed: %s",
		         req->op_name,
		         rc == RA_PENDING_FULL
		             ? "too many pending requests"
		             : "the pending request cannot be recorded");
	}
	ra_log(CORE_LOG_ERROR, "ra.pending", &req->log,
	       rc == RA_PENDING_FULL ? RA_REQUEST_PENDING_FULL_HINT
	                             : "check free space and permissions of "
	                               "pending.dir",
	       "cannot update pending record: %s", err);
}

/*
 * ca_wait ran out before the CA answered: the client gets 202 now, the
 * call goes on, and its answer is kept for the retry.
 */
static void
ra_request_wait_expired(evutil_socket_t fd, short what, void *arg)
{
	struct ra_request *req = arg;
	struct ra_request_private *priv = (struct ra_request_private *)req;
	struct ra_pending *store = req->config->pending;
	struct ra_pending_record record;
	char err[512];
	int rc;

	(void)fd;
	(void)what;
	priv->detached = 1;
	req->status = 202;
	req->outcome = CA_PENDING;
	req->outcome_name = "PENDING";
	req->retry_after = req->label->retry_after;
	req->ca_ms = ra_request_elapsed_ms(req);
	req->log.answer = 202;
	snprintf(req->cause, sizeof(req->cause),
	         "%s pending: the CA has not answered within ca_wait %u s",
	         req->op_name, req->label->ca_wait);
	if (store != NULL && req->pending_key[0] != '\0') {
		ra_request_pending_record(req, &record, RA_PENDING_IN_FLIGHT);
		if ((rc = store->ops->put(store, &record, err, sizeof(err))) !=
		    0) {
			ra_log(CORE_LOG_ERROR, "ra.pending", &req->log,
			       rc == RA_PENDING_FULL
			           ? RA_REQUEST_PENDING_FULL_HINT
			           : "check free space and permissions of "
			             "pending.dir",
			       "cannot record pending request: %s", err);
			req->status = 503;
			req->outcome_name = "UNREACHABLE";
			req->log.answer = 503;
			snprintf(req->cause, sizeof(req->cause),
			         "%s failed: the CA is slow and %s",
			         req->op_name,
			         rc == RA_PENDING_FULL
			             ? "there are too many pending requests"
			             : "the pending request cannot be "
			               "recorded");
		}
	}
	ra_log(CORE_LOG_NOTICE, "ra.request", &req->log,
	       "the answer is kept for the client's retry", "%s", req->cause);
	(void)ra_request_audit(req, req->status == 202 ? "pending" : "failed",
	                       1);
	/* est/ answers and frees its side; the request itself lives on
	 * (orphaned) until the CA call completes. */
	req->done_fn(req, req->done_arg);
}

/* Arms the ca_wait timer of an enrollment or poll call. */
static void
ra_request_arm_wait(struct ra_request *req)
{
	struct timeval wait = {(time_t)req->label->ca_wait, 0};

	if (req->ca_op != CA_OP_ENROLL && req->ca_op != CA_OP_REENROLL &&
	    req->ca_op != CA_OP_POLL)
		return;
	if (req->label->ca_wait == 0)
		return;
	if ((req->wait_timer = evtimer_new(req->base, ra_request_wait_expired,
	                                   req)) == NULL ||
	    evtimer_add(req->wait_timer, &wait) != 0)
		ra_log(CORE_LOG_WARN, "ra.request", &req->log, NULL,
		       "cannot arm the ca_wait timer: out of memory; the "
		       "client waits for the CA");
}

/* Delivers an answer taken from a pending record, from the loop. */
static void
ra_request_answered(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ra_request_conclude(arg, NULL, 1);
}

void
ra_request_start(struct ra_request *req, enum ca_operation op, X509_REQ *csr,
                 ra_request_done_fn done_fn, void *arg)
{
	struct ra_request_private *priv = (struct ra_request_private *)req;
	static const struct timeval now = {0, 0};

	req->done_fn = done_fn;
	req->done_arg = arg;
	req->ca_op = op;
	req->csr = csr;
	priv->running = 1;
	if ((op == CA_OP_ENROLL || op == CA_OP_REENROLL) && !req->authorized &&
	    ra_request_audit_csr_prepare(req) != 0)
		goto refused;
	if ((op == CA_OP_ENROLL || op == CA_OP_REENROLL) && !req->authorized) {
		switch (ra_request_authorize(req, op, csr)) {
		case 0:
			req->authorized = 1;
			break;
		case 1:
			return; /* the authorizer's answer goes on */
		default:
			goto refused;
		}
	}
	if ((op == CA_OP_ENROLL || op == CA_OP_REENROLL) &&
	    ra_request_pending_lookup(req, &op) != 0) {
		priv->from_store = 1;
		if (event_base_once(req->base, -1, EV_TIMEOUT,
		                    ra_request_answered, req, &now) != 0)
			ra_request_answered(-1, 0, req);
		return;
	}
	if ((req->call = ca_call_new()) == NULL) {
		ra_request_refuse(req, 500, CORE_LOG_ERROR, "ra.request", NULL,
		                  "%s failed: out of memory",
		                  ca_operation_name(op));
		goto refused;
	}
	req->ca_op = op;
	req->call->op = op;
	req->call->base = req->base;
	req->call->rid = req->rid;
	req->call->label = req->label->name;
	req->call->csr = csr;
	req->call->renew_cert = op == CA_OP_REENROLL ? req->peer.cert : NULL;
	req->call->cookie = op == CA_OP_POLL ? req->poll_cookie : NULL;
	req->call->log_context = &req->log;
	ra_request_arm_wait(req);
	ca_instance_start(req->label->ca, req->call, ra_request_ca_done, req);
	return;
refused:
	if (op == CA_OP_ENROLL || op == CA_OP_REENROLL)
		(void)ra_request_audit(req, "refused", 0);
	if (event_base_once(req->base, -1, EV_TIMEOUT, ra_request_deliver, req,
	                    &now) != 0)
		ra_request_finish(req);
}
