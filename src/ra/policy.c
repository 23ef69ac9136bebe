/*
 * policy.c: parsing and evaluation of a label's authorization policy (see
 * policy.h).  Patterns are POSIX extended regular expressions compiled
 * once at load and matched against the whole value; regexec(3) on a
 * compiled expression is thread-safe, so workers share them.
 */
#include <arpa/inet.h>

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "ra/policy.h"

/* Longest pattern accepted; longer ones are a configuration mistake. */
#define POL_PATTERN_MAX 512

/* Most entries of one list (patterns, curves, digests, extensions). */
#define POL_LIST_MAX 64

/* A list of anchored patterns; unset means "no rule". */
struct pol_patterns {
	int set;
	regex_t *re; /* owned, n of them */
	char **src;  /* the patterns as written, for hints; owned */
	size_t n;
};

/* What the CSR's CN must equal. */
enum pol_cn_equals {
	POL_CN_ANY,     /* no template */
	POL_CN_USER,    /* the HTTP Basic user name */
	POL_CN_CERT_CN, /* the client certificate's CN */
	POL_CN_IDENTITY /* the Basic user when there is one, else cert CN */
};

struct ra_policy {
	struct pol_patterns cn;
	enum pol_cn_equals cn_equals;
	struct pol_patterns san_dns, san_ip, san_email, san_uri;
	int san_other; /* otherName, dirName, RID, x400, ediParty */
	long san_max;  /* most SAN entries; -1 for no limit */

	int keys_set; /* "keys" given: unlisted types refused */
	int rsa_min;  /* least RSA bits; 0: RSA refused */
	int ec_nids[POL_LIST_MAX];
	size_t n_ec;
	int ed25519, ed448;

	int sig_set; /* "signature" given */
	int md_nids[POL_LIST_MAX];
	size_t n_md;

	ASN1_OBJECT *ext_allow[POL_LIST_MAX]; /* owned */
	size_t n_ext_allow;
	int ext_refuse; /* unlisted extensions refused, not dropped */
	ASN1_OBJECT *eku[POL_LIST_MAX]; /* owned */
	size_t n_eku;
};

static const char *const pol_keys[] = {
    "cn", "cn_equals", "san", "keys", "signature", "extensions", NULL,
};
static const char *const pol_san_keys[] = {
    "dns", "ip", "email", "uri", "other", "max", NULL,
};
static const char *const pol_key_keys[] = {
    "rsa", "ec", "ed25519", "ed448", NULL,
};
static const char *const pol_ext_keys[] = {
    "allow",
    "unlisted",
    "eku",
    NULL,
};

static int
pol_check_keys(const json_t *obj, const char *prefix, const char *const *known,
               struct ca_err *err)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)obj, key, v)
	{
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (known[i] == NULL) {
			char path[128];

			snprintf(path, sizeof(path), "%s%s", prefix, key);
			return ca_err_set(err, path, "unknown key \"%s\"", key);
		}
	}
	return 0;
}

static void
pol_patterns_free(struct pol_patterns *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		regfree(&p->re[i]);
		free(p->src[i]);
	}
	free(p->re);
	free(p->src);
	memset(p, 0, sizeof(*p));
}

/*
 * Compiles the array of patterns at key (path for messages) into p.  Each
 * is anchored: "a|b" means the whole value is a or b.
 */
static int
pol_patterns_load(const json_t *obj, const char *key, const char *path,
                  int icase, struct pol_patterns *p, struct ca_err *err)
{
	char anchored[POL_PATTERN_MAX + 8], epath[128], msg[128];
	const json_t *list, *v;
	const char *s;
	int rc = -1, r;
	size_t i, n;

	if ((list = json_object_get(obj, key)) == NULL)
		return 0;
	if (!json_is_array(list)) {
		ca_err_set(err, path, "must be an array of patterns");
		goto out;
	}
	if ((n = json_array_size(list)) > POL_LIST_MAX) {
		ca_err_set(err, path, "at most %d patterns", POL_LIST_MAX);
		goto out;
	}
	p->set = 1;
	if (n > 0 && ((p->re = calloc(n, sizeof(*p->re))) == NULL ||
	              (p->src = calloc(n, sizeof(*p->src))) == NULL)) {
		ca_err_set(err, path, "out of memory");
		goto out;
	}
	json_array_foreach(list, i, v)
	{
		snprintf(epath, sizeof(epath), "%s.%zu", path, i);
		if ((s = json_string_value(v)) == NULL || s[0] == '\0') {
			ca_err_set(err, epath, "must be a non-empty string");
			goto out;
		}
		if (strlen(s) > POL_PATTERN_MAX) {
			ca_err_set(err, epath, "longer than %d bytes",
			           POL_PATTERN_MAX);
			goto out;
		}
		snprintf(anchored, sizeof(anchored), "^(%s)$", s);
		r = regcomp(&p->re[i], anchored,
		            REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0));
		if (r != 0) {
			regerror(r, &p->re[i], msg, sizeof(msg));
			ca_err_set(err, epath,
			           "not a POSIX extended regular expression: "
			           "%s",
			           msg);
			goto out;
		}
		if ((p->src[i] = strdup(s)) == NULL) {
			regfree(&p->re[i]);
			ca_err_set(err, epath, "out of memory");
			goto out;
		}
		p->n++;
	}
	rc = 0;
out:
	return rc;
}

/* Says whether value (a C string) matches one pattern of p. */
static int
pol_patterns_match(const struct pol_patterns *p, const char *value)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (regexec(&p->re[i], value, 0, NULL, 0) == 0)
			return 1;
	return 0;
}

/* Lists the patterns of p into buf for a hint. */
static void
pol_patterns_text(const struct pol_patterns *p, char *buf, size_t len)
{
	size_t i, used = 0;
	int n;

	buf[0] = '\0';
	if (p->n == 0) {
		snprintf(buf, len, "nothing");
		return;
	}
	for (i = 0; i < p->n && used < len; i++) {
		n = snprintf(buf + used, len - used, "%s%s",
		             i > 0 ? " or " : "", p->src[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static int
pol_get_bool(const json_t *obj, const char *key, const char *path, int *out,
             struct ca_err *err)
{
	const json_t *v;

	if ((v = json_object_get(obj, key)) == NULL)
		return 0;
	if (!json_is_boolean(v))
		return ca_err_set(err, path, "must be true or false");
	*out = json_is_true(v);
	return 0;
}

/* Resolves a curve name ("P-256", "prime256v1", "secp384r1") to a NID. */
static int
pol_curve_nid(const char *name)
{
	int nid;

	if ((nid = EC_curve_nist2nid(name)) != NID_undef)
		return nid;
	if ((nid = OBJ_sn2nid(name)) != NID_undef)
		return nid;
	return OBJ_ln2nid(name);
}

static int
pol_load_keys(struct ra_policy *p, const json_t *obj, struct ca_err *err)
{
	char epath[64];
	const json_t *keys, *v, *list;
	size_t i;
	int nid;

	if ((keys = json_object_get(obj, "keys")) == NULL)
		return 0;
	if (!json_is_object(keys))
		return ca_err_set(err, "keys", "must be an object");
	if (pol_check_keys(keys, "keys.", pol_key_keys, err) != 0)
		return -1;
	p->keys_set = 1;
	p->rsa_min = 0;
	p->n_ec = 0;
	p->ed25519 = p->ed448 = 0;
	if ((v = json_object_get(keys, "rsa")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 2048 ||
		    json_integer_value(v) > 16384)
			return ca_err_set(err, "keys.rsa",
			                  "must be the least RSA size in bits, "
			                  "2048 to 16384");
		p->rsa_min = (int)json_integer_value(v);
	}
	if ((list = json_object_get(keys, "ec")) != NULL) {
		if (!json_is_array(list) ||
		    json_array_size(list) > POL_LIST_MAX)
			return ca_err_set(err, "keys.ec",
			                  "must be an array of curve names");
		json_array_foreach(list, i, v)
		{
			snprintf(epath, sizeof(epath), "keys.ec.%zu", i);
			if (!json_is_string(v) ||
			    (nid = pol_curve_nid(json_string_value(v))) ==
			        NID_undef)
				return ca_err_set(err, epath,
				                  "not a curve name OpenSSL "
				                  "knows (e.g. \"P-256\")");
			p->ec_nids[p->n_ec++] = nid;
		}
	}
	if (pol_get_bool(keys, "ed25519", "keys.ed25519", &p->ed25519, err) !=
	        0 ||
	    pol_get_bool(keys, "ed448", "keys.ed448", &p->ed448, err) != 0)
		return -1;
	return 0;
}

static int
pol_load_signature(struct ra_policy *p, const json_t *obj, struct ca_err *err)
{
	const json_t *list, *v;
	const EVP_MD *md;
	char epath[64];
	size_t i;
	int nid;

	if ((list = json_object_get(obj, "signature")) == NULL)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > POL_LIST_MAX)
		return ca_err_set(err, "signature",
		                  "must be an array of digest names");
	p->sig_set = 1;
	json_array_foreach(list, i, v)
	{
		snprintf(epath, sizeof(epath), "signature.%zu", i);
		if (!json_is_string(v) ||
		    (md = EVP_get_digestbyname(json_string_value(v))) == NULL)
			return ca_err_set(err, epath,
			                  "not a digest name OpenSSL knows "
			                  "(e.g. \"sha256\")");
		nid = EVP_MD_get_type(md);
		if (nid == NID_sha1 || nid == NID_md5 || nid == NID_md4 ||
		    nid == NID_md5_sha1)
			return ca_err_set(err, epath,
			                  "%s is broken and never allowed",
			                  json_string_value(v));
		p->md_nids[p->n_md++] = nid;
	}
	return 0;
}

/* Loads an array of OIDs or object names into objs. */
static int
pol_load_objects(const json_t *list, const char *path, ASN1_OBJECT **objs,
                 size_t *n, struct ca_err *err)
{
	const json_t *v;
	char epath[64];
	size_t i;

	if (!json_is_array(list) || json_array_size(list) > POL_LIST_MAX)
		return ca_err_set(err, path,
		                  "must be an array of OIDs or object names");
	json_array_foreach(list, i, v)
	{
		snprintf(epath, sizeof(epath), "%s.%zu", path, i);
		if (!json_is_string(v) || json_string_value(v)[0] == '\0' ||
		    (objs[*n] = OBJ_txt2obj(json_string_value(v), 0)) == NULL) {
			ERR_clear_error();
			return ca_err_set(err, epath,
			                  "not an OID or object name OpenSSL "
			                  "knows");
		}
		(*n)++;
	}
	return 0;
}

static int
pol_has_object(ASN1_OBJECT *const *objs, size_t n, const ASN1_OBJECT *obj)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (OBJ_cmp(objs[i], obj) == 0)
			return 1;
	return 0;
}

static int
pol_load_extensions(struct ra_policy *p, const json_t *obj, struct ca_err *err)
{
	const json_t *ext, *v;
	const char *s;
	size_t i;

	if ((ext = json_object_get(obj, "extensions")) == NULL)
		goto defaults;
	if (!json_is_object(ext))
		return ca_err_set(err, "extensions", "must be an object");
	if (pol_check_keys(ext, "extensions.", pol_ext_keys, err) != 0)
		return -1;
	if ((v = json_object_get(ext, "allow")) != NULL) {
		if (pol_load_objects(v, "extensions.allow", p->ext_allow,
		                     &p->n_ext_allow, err) != 0)
			return -1;
	} else if ((p->ext_allow[p->n_ext_allow] =
	                OBJ_nid2obj(NID_subject_alt_name)) != NULL)
		p->n_ext_allow++;
	if ((v = json_object_get(ext, "unlisted")) != NULL) {
		s = json_string_value(v);
		if (s != NULL && strcmp(s, "drop") == 0)
			p->ext_refuse = 0;
		else if (s != NULL && strcmp(s, "refuse") == 0)
			p->ext_refuse = 1;
		else
			return ca_err_set(err, "extensions.unlisted",
			                  "must be \"drop\" or \"refuse\"");
	}
	if ((v = json_object_get(ext, "eku")) != NULL &&
	    pol_load_objects(v, "extensions.eku", p->eku, &p->n_eku, err) != 0)
		return -1;
	/* An allowed extendedKeyUsage without the list of EKUs the label
	 * grants would let a CSR pick any purpose. */
	for (i = 0; i < p->n_ext_allow; i++)
		if (OBJ_obj2nid(p->ext_allow[i]) == NID_ext_key_usage &&
		    json_object_get(ext, "eku") == NULL)
			return ca_err_set(
			    err, "extensions.eku",
			    "required when extensions.allow lists "
			    "extendedKeyUsage: the EKUs the label "
			    "grants");
	return 0;
defaults:
	/* Only subjectAltName is honoured unless the label says more. */
	if ((p->ext_allow[0] = OBJ_nid2obj(NID_subject_alt_name)) != NULL)
		p->n_ext_allow = 1;
	return 0;
}

static int
pol_load_san(struct ra_policy *p, const json_t *obj, struct ca_err *err)
{
	const json_t *san, *v;

	if ((san = json_object_get(obj, "san")) == NULL)
		return 0;
	if (!json_is_object(san))
		return ca_err_set(err, "san", "must be an object");
	if (pol_check_keys(san, "san.", pol_san_keys, err) != 0 ||
	    pol_patterns_load(san, "dns", "san.dns", 1, &p->san_dns, err) !=
	        0 ||
	    pol_patterns_load(san, "ip", "san.ip", 0, &p->san_ip, err) != 0 ||
	    pol_patterns_load(san, "email", "san.email", 1, &p->san_email,
	                      err) != 0 ||
	    pol_patterns_load(san, "uri", "san.uri", 0, &p->san_uri, err) !=
	        0 ||
	    pol_get_bool(san, "other", "san.other", &p->san_other, err) != 0)
		return -1;
	if ((v = json_object_get(san, "max")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 1000)
			return ca_err_set(err, "san.max",
			                  "must be an integer from 0 to 1000");
		p->san_max = (long)json_integer_value(v);
	}
	return 0;
}

struct ra_policy *
ra_policy_new(const json_t *conf, struct ca_err *err)
{
	struct ra_policy *p = NULL, *rc = NULL;
	const json_t *v;
	const char *s;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		ca_err_set(err, "", "out of memory");
		goto out;
	}
	p->san_max = -1;
	p->rsa_min = 2048;
	if (conf == NULL) {
		if (pol_load_extensions(p, NULL, err) != 0)
			goto out;
		rc = p;
		p = NULL;
		goto out;
	}
	if (!json_is_object(conf)) {
		ca_err_set(err, "", "must be an object");
		goto out;
	}
	if (pol_check_keys(conf, "", pol_keys, err) != 0 ||
	    pol_patterns_load(conf, "cn", "cn", 0, &p->cn, err) != 0)
		goto out;
	if ((v = json_object_get(conf, "cn_equals")) != NULL) {
		s = json_string_value(v);
		if (s != NULL && strcmp(s, "none") == 0)
			p->cn_equals = POL_CN_ANY;
		else if (s != NULL && strcmp(s, "user") == 0)
			p->cn_equals = POL_CN_USER;
		else if (s != NULL && strcmp(s, "cert_cn") == 0)
			p->cn_equals = POL_CN_CERT_CN;
		else if (s != NULL && strcmp(s, "identity") == 0)
			p->cn_equals = POL_CN_IDENTITY;
		else {
			ca_err_set(err, "cn_equals",
			           "must be \"none\", \"user\", \"cert_cn\" "
			           "or \"identity\"");
			goto out;
		}
	}
	if (pol_load_san(p, conf, err) != 0 ||
	    pol_load_keys(p, conf, err) != 0 ||
	    pol_load_signature(p, conf, err) != 0 ||
	    pol_load_extensions(p, conf, err) != 0)
		goto out;
	rc = p;
	p = NULL;
out:
	ra_policy_free(p);
	return rc;
}

void
ra_policy_free(struct ra_policy *policy)
{
	size_t i;

	if (policy == NULL)
		return;
	pol_patterns_free(&policy->cn);
	pol_patterns_free(&policy->san_dns);
	pol_patterns_free(&policy->san_ip);
	pol_patterns_free(&policy->san_email);
	pol_patterns_free(&policy->san_uri);
	for (i = 0; i < policy->n_ext_allow; i++)
		ASN1_OBJECT_free(policy->ext_allow[i]);
	for (i = 0; i < policy->n_eku; i++)
		ASN1_OBJECT_free(policy->eku[i]);
	free(policy);
}

/*
 * Copies len bytes of s for a message: printable ASCII as is, '"' and '\'
 * escaped, other bytes as \xHH.  Client bytes never reach a log raw.
 */
static const char *
pol_printable(const unsigned char *s, size_t len, char *buf, size_t buflen)
{
	size_t i, used = 0;
	char tmp[8];
	int n;

	buf[0] = '\0';
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			n = snprintf(tmp, sizeof(tmp), "\\%c", s[i]);
		else if (s[i] < 0x20 || s[i] >= 0x7f)
			n = snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
		else
			n = snprintf(tmp, sizeof(tmp), "%c", s[i]);
		if (n < 0 || used + (size_t)n >= buflen)
			break;
		memcpy(buf + used, tmp, (size_t)n);
		used += (size_t)n;
	}
	buf[used] = '\0';
	return buf;
}

/* Fills a refusal into v and returns -1. */
static int pol_refuse(struct ra_policy_verdict *v, const char *rule,
                      const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
pol_refuse(struct ra_policy_verdict *v, const char *rule, const char *hint,
           const char *fmt, ...)
{
	va_list ap;

	v->allowed = 0;
	snprintf(v->rule, sizeof(v->rule), "%s", rule);
	snprintf(v->hint, sizeof(v->hint), "%s", hint != NULL ? hint : "");
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
	return -1;
}

const char *
ra_policy_name_cn(const X509_NAME *name, char *buf, size_t len)
{
	const ASN1_STRING *data;
	unsigned char *utf8 = NULL;
	int i, n;

	buf[0] = '\0';
	if (name == NULL ||
	    (i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0)
		return buf;
	/* The last CN is the one TLS and most CAs use. */
	for (n = i; n >= 0;
	     n = X509_NAME_get_index_by_NID(name, NID_commonName, n))
		i = n;
	data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	if ((n = ASN1_STRING_to_UTF8(&utf8, data)) < 0) {
		ERR_clear_error();
		return buf;
	}
	/* A CN with a NUL in it is nobody's identity. */
	if (memchr(utf8, '\0', (size_t)n) == NULL)
		snprintf(buf, len, "%.*s", n, (const char *)utf8);
	OPENSSL_free(utf8);
	return buf;
}

/* The CN rules: patterns, then the identity template. */
static int
pol_check_cn(const struct ra_policy *p, const struct ra_policy_input *in,
             struct ra_policy_verdict *v)
{
	const X509_NAME *name = X509_REQ_get_subject_name(in->csr);
	const ASN1_STRING *data;
	unsigned char *utf8 = NULL;
	char shown[300], hint[256];
	const char *want = NULL, *what = "";
	int i = -1, n, rc = -1, count = 0;

	while ((i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0) {
		count++;
		data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		OPENSSL_free(utf8);
		utf8 = NULL;
		if ((n = ASN1_STRING_to_UTF8(&utf8, data)) < 0) {
			ERR_clear_error();
			pol_refuse(v, "cn", NULL,
			           "CSR refused: subject CN is not a valid "
			           "string");
			goto out;
		}
		pol_printable(utf8, (size_t)n, shown, sizeof(shown));
		if (memchr(utf8, '\0', (size_t)n) != NULL) {
			pol_refuse(v, "cn", NULL,
			           "CSR refused: subject CN \"%s\" holds a NUL "
			           "byte",
			           shown);
			goto out;
		}
		if (p->cn.set && !pol_patterns_match(&p->cn, (char *)utf8)) {
			pol_patterns_text(&p->cn, hint, sizeof(hint));
			pol_refuse(v, "cn", hint,
			           "CSR refused: subject CN \"%s\" not allowed "
			           "by rule cn",
			           shown);
			goto out;
		}
	}
	if (p->cn.set && count == 0) {
		pol_refuse(v, "cn", NULL,
		           "CSR refused: subject has no CN, which rule cn "
		           "requires");
		goto out;
	}
	/* An RA enrolls on behalf of others (RFC 7030 §3.7): the identity
	 * template does not bind it. */
	if (p->cn_equals == POL_CN_ANY || in->is_ra) {
		rc = 0;
		goto out;
	}
	switch (p->cn_equals) {
	case POL_CN_USER:
		want = in->user;
		what = "the HTTP Basic user name";
		break;
	case POL_CN_CERT_CN:
		want = in->cert_cn;
		what = "the client certificate's CN";
		break;
	default:
		want = in->user != NULL ? in->user : in->cert_cn;
		what = in->user != NULL ? "the HTTP Basic user name"
		                        : "the client certificate's CN";
		break;
	}
	if (want == NULL || want[0] == '\0') {
		pol_refuse(v, "cn_equals", NULL,
		           "CSR refused: rule cn_equals needs %s, and the "
		           "client has none",
		           what);
		goto out;
	}
	if (count != 1 || utf8 == NULL || strcmp((char *)utf8, want) != 0) {
		char wshown[300];

		pol_printable((const unsigned char *)want, strlen(want), wshown,
		              sizeof(wshown));
		pol_refuse(v, "cn_equals", NULL,
		           "CSR refused: subject CN must equal %s \"%s\" "
		           "(rule cn_equals)",
		           what, wshown);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(utf8);
	return rc;
}

/* Checks one string SAN against its rule. */
static int
pol_check_san_string(const struct pol_patterns *rule, const char *rule_name,
                     const char *type_name, const ASN1_STRING *str,
                     struct ra_policy_verdict *v)
{
	const unsigned char *data = ASN1_STRING_get0_data(str);
	size_t len = (size_t)ASN1_STRING_length(str);
	char shown[300], hint[256], *copy;
	int rc = -1;

	pol_printable(data, len, shown, sizeof(shown));
	if (memchr(data, '\0', len) != NULL)
		return pol_refuse(v, rule_name, NULL,
		                  "CSR refused: subjectAltName %s \"%s\" holds "
		                  "a NUL byte",
		                  type_name, shown);
	if (!rule->set)
		return 0;
	if ((copy = strndup((const char *)data, len)) == NULL)
		return pol_refuse(v, rule_name, NULL,
		                  "CSR refused: out of memory");
	if (pol_patterns_match(rule, copy))
		rc = 0;
	else {
		pol_patterns_text(rule, hint, sizeof(hint));
		pol_refuse(v, rule_name, hint,
		           "CSR refused: subjectAltName %s \"%s\" not allowed "
		           "by rule %s",
		           type_name, shown, rule_name);
	}
	free(copy);
	return rc;
}

static int
pol_check_san(const struct ra_policy *p, const STACK_OF(X509_EXTENSION) *exts,
              struct ra_policy_verdict *v)
{
	GENERAL_NAMES *names = NULL;
	char ip[INET6_ADDRSTRLEN], hint[256];
	const GENERAL_NAME *gn;
	int i, n, rc = -1;

	if ((i = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1)) < 0) {
		rc = 0;
		goto out;
	}
	if (X509v3_get_ext_by_NID(exts, NID_subject_alt_name, i) >= 0) {
		pol_refuse(v, "san", NULL,
		           "CSR refused: more than one subjectAltName "
		           "extension");
		goto out;
	}
	if ((names = X509V3_EXT_d2i(X509v3_get_ext(exts, i))) == NULL) {
		ERR_clear_error();
		pol_refuse(v, "san", NULL,
		           "CSR refused: subjectAltName does not decode");
		goto out;
	}
	n = sk_GENERAL_NAME_num(names);
	if (p->san_max >= 0 && n > p->san_max) {
		snprintf(hint, sizeof(hint), "rule san.max allows %ld",
		         p->san_max);
		pol_refuse(v, "san.max", hint,
		           "CSR refused: %d subjectAltName entries exceed rule "
		           "san.max %ld",
		           n, p->san_max);
		goto out;
	}
	for (i = 0; i < n; i++) {
		gn = sk_GENERAL_NAME_value(names, i);
		switch (gn->type) {
		case GEN_DNS:
			if (pol_check_san_string(&p->san_dns, "san.dns",
			                         "dNSName", gn->d.dNSName,
			                         v) != 0)
				goto out;
			break;
		case GEN_EMAIL:
			if (pol_check_san_string(&p->san_email, "san.email",
			                         "rfc822Name", gn->d.rfc822Name,
			                         v) != 0)
				goto out;
			break;
		case GEN_URI:
			if (pol_check_san_string(
			        &p->san_uri, "san.uri",
			        "uniformResourceIdentifier",
			        gn->d.uniformResourceIdentifier, v) != 0)
				goto out;
			break;
		case GEN_IPADD: {
			const ASN1_OCTET_STRING *a = gn->d.iPAddress;
			int len = ASN1_STRING_length(a);

			if ((len != 4 && len != 16) ||
			    inet_ntop(len == 4 ? AF_INET : AF_INET6,
			              ASN1_STRING_get0_data(a), ip,
			              sizeof(ip)) == NULL) {
				pol_refuse(v, "san.ip", NULL,
				           "CSR refused: subjectAltName "
				           "iPAddress of %d bytes",
				           len);
				goto out;
			}
			if (p->san_ip.set &&
			    !pol_patterns_match(&p->san_ip, ip)) {
				pol_patterns_text(&p->san_ip, hint,
				                  sizeof(hint));
				pol_refuse(v, "san.ip", hint,
				           "CSR refused: subjectAltName "
				           "iPAddress %s not allowed by rule "
				           "san.ip",
				           ip);
				goto out;
			}
			break;
		}
		default:
			if (!p->san_other) {
				pol_refuse(
				    v, "san.other",
				    "set san.other to allow otherName, "
				    "directoryName and registeredID",
				    "CSR refused: subjectAltName of type "
				    "%d not allowed by rule san.other",
				    gn->type);
				goto out;
			}
			break;
		}
	}
	rc = 0;
out:
	GENERAL_NAMES_free(names);
	return rc;
}

static int
pol_check_key(const struct ra_policy *p, X509_REQ *csr,
              struct ra_policy_verdict *v)
{
	EVP_PKEY *pkey = X509_REQ_get0_pubkey(csr);
	char group[80] = "", hint[256];
	int id, nid, bits;
	size_t i, glen = 0;

	if (pkey == NULL)
		return pol_refuse(v, "keys", NULL,
		                  "CSR refused: no usable public key");
	if (!p->keys_set)
		return 0;
	id = EVP_PKEY_get_base_id(pkey);
	bits = EVP_PKEY_get_bits(pkey);
	switch (id) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		if (p->rsa_min == 0)
			return pol_refuse(v, "keys", "keys.rsa is not set",
			                  "CSR refused: RSA keys are not "
			                  "allowed by rule keys");
		if (bits < p->rsa_min) {
			snprintf(hint, sizeof(hint),
			         "rule keys.rsa asks for %d bits or more",
			         p->rsa_min);
			return pol_refuse(v, "keys.rsa", hint,
			                  "CSR refused: key RSA-%d is smaller "
			                  "than rule keys.rsa %d",
			                  bits, p->rsa_min);
		}
		return 0;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(
		        pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
		        &glen) != 1)
			ERR_clear_error();
		nid = OBJ_sn2nid(group);
		for (i = 0; i < p->n_ec; i++)
			if (p->ec_nids[i] == nid && nid != NID_undef)
				return 0;
		return pol_refuse(v, "keys.ec", NULL,
		                  "CSR refused: EC curve %s not allowed by "
		                  "rule keys.ec",
		                  group[0] != '\0' ? group : "(unnamed)");
	case EVP_PKEY_ED25519:
		if (p->ed25519)
			return 0;
		return pol_refuse(v, "keys.ed25519", NULL,
		                  "CSR refused: Ed25519 keys are not allowed "
		                  "by rule keys");
	case EVP_PKEY_ED448:
		if (p->ed448)
			return 0;
		return pol_refuse(v, "keys.ed448", NULL,
		                  "CSR refused: Ed448 keys are not allowed by "
		                  "rule keys");
	default:
		return pol_refuse(
		    v, "keys", NULL,
		    "CSR refused: key type %s not allowed by rule "
		    "keys",
		    OBJ_nid2sn(id));
	}
}

static int
pol_check_signature(const struct ra_policy *p, X509_REQ *csr,
                    struct ra_policy_verdict *v)
{
	int sig = X509_REQ_get_signature_nid(csr), md = NID_undef,
	    pk = NID_undef;
	size_t i;

	if (!p->sig_set)
		return 0;
	if (OBJ_find_sigid_algs(sig, &md, &pk) != 1)
		return pol_refuse(v, "signature", NULL,
		                  "CSR refused: signature algorithm %s not "
		                  "allowed by rule signature",
		                  OBJ_nid2sn(sig));
	/* EdDSA has its hash built in; the key rule decides about it. */
	if (md == NID_undef && (pk == NID_ED25519 || pk == NID_ED448))
		return 0;
	for (i = 0; i < p->n_md; i++)
		if (md != NID_undef && p->md_nids[i] == md)
			return 0;
	return pol_refuse(v, "signature", NULL,
	                  "CSR refused: signature algorithm %s not allowed by "
	                  "rule signature",
	                  OBJ_nid2sn(sig));
}

/* Names obj by its short name ("basicConstraints"), else its OID. */
static const char *
pol_obj_name(const ASN1_OBJECT *obj, char *buf, size_t len)
{
	int nid = OBJ_obj2nid(obj);

	if (nid != NID_undef && OBJ_nid2sn(nid) != NULL)
		snprintf(buf, len, "%s", OBJ_nid2sn(nid));
	else
		OBJ_obj2txt(buf, (int)len, obj, 1);
	return buf;
}

/* Appends name to the comma-separated list in buf. */
static void
pol_list_add(char *buf, size_t len, const char *name)
{
	size_t used = strlen(buf);

	if (used + 2 + strlen(name) + 1 > len)
		return;
	snprintf(buf + used, len - used, "%s%s", used > 0 ? "," : "", name);
}

static int
pol_check_extensions(const struct ra_policy *p,
                     const STACK_OF(X509_EXTENSION) *exts,
                     struct ra_policy_verdict *v)
{
	char name[80];
	X509_EXTENSION *ext;
	ASN1_OBJECT *obj;
	int i, j, rc = -1;

	for (i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		ext = sk_X509_EXTENSION_value(exts, i);
		obj = X509_EXTENSION_get_object(ext);
		pol_obj_name(obj, name, sizeof(name));
		if (!pol_has_object(p->ext_allow, p->n_ext_allow, obj)) {
			if (p->ext_refuse) {
				pol_refuse(
				    v, "extensions",
				    "list it in extensions.allow if the "
				    "label should honour it",
				    "CSR refused: requested extension %s "
				    "not allowed by rule extensions",
				    name);
				goto out;
			}
			pol_list_add(v->dropped, sizeof(v->dropped), name);
			continue;
		}
		if (OBJ_obj2nid(obj) == NID_basic_constraints) {
			BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(ext);
			int ca = bc == NULL || bc->ca;

			BASIC_CONSTRAINTS_free(bc);
			ERR_clear_error();
			/* Whatever the list says, an EST client never gets
			 * a CA certificate. */
			if (ca) {
				pol_refuse(v, "extensions.basicConstraints",
				           NULL,
				           "CSR refused: requested "
				           "basicConstraints CA:TRUE is never "
				           "allowed (rule extensions)");
				goto out;
			}
		}
		if (OBJ_obj2nid(obj) == NID_ext_key_usage) {
			EXTENDED_KEY_USAGE *eku = X509V3_EXT_d2i(ext);

			if (eku == NULL) {
				ERR_clear_error();
				pol_refuse(v, "extensions.eku", NULL,
				           "CSR refused: extendedKeyUsage does "
				           "not decode");
				goto out;
			}
			for (j = 0; j < sk_ASN1_OBJECT_num(eku); j++) {
				ASN1_OBJECT *e = sk_ASN1_OBJECT_value(eku, j);

				if (pol_has_object(p->eku, p->n_eku, e))
					continue;
				pol_obj_name(e, name, sizeof(name));
				sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
				pol_refuse(v, "extensions.eku", NULL,
				           "CSR refused: extended key usage %s "
				           "not granted by rule extensions.eku",
				           name);
				goto out;
			}
			sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
		}
	}
	rc = 0;
out:
	return rc;
}

int
ra_policy_check(const struct ra_policy *policy,
                const struct ra_policy_input *in,
                struct ra_policy_verdict *verdict)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	int rc = -1;

	memset(verdict, 0, sizeof(*verdict));
	if (in == NULL || in->csr == NULL) {
		pol_refuse(verdict, "csr", NULL, "CSR refused: no CSR");
		goto out;
	}
	exts = X509_REQ_get_extensions(in->csr);
	ERR_clear_error();
	if (pol_check_key(policy, in->csr, verdict) != 0 ||
	    pol_check_signature(policy, in->csr, verdict) != 0 ||
	    pol_check_cn(policy, in, verdict) != 0 ||
	    pol_check_san(policy, exts, verdict) != 0 ||
	    pol_check_extensions(policy, exts, verdict) != 0)
		goto out;
	verdict->allowed = 1;
	rc = 0;
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

int
ra_policy_open_names(const struct ra_policy *policy, char *buf, size_t len)
{
	const char *open[6];
	size_t i, n = 0, used = 0;
	int san = 0;

	buf[0] = '\0';
	if (!policy->cn.set && policy->cn_equals == POL_CN_ANY)
		open[n++] = "subject CN";
	/* SANs reach the certificate only when the allow-list keeps the
	 * extension, and not at all with san.max 0. */
	for (i = 0; i < policy->n_ext_allow; i++)
		if (OBJ_obj2nid(policy->ext_allow[i]) == NID_subject_alt_name)
			san = policy->san_max != 0;
	if (san && !policy->san_dns.set)
		open[n++] = "dNSName";
	if (san && !policy->san_ip.set)
		open[n++] = "iPAddress";
	if (san && !policy->san_email.set)
		open[n++] = "rfc822Name";
	if (san && !policy->san_uri.set)
		open[n++] = "URI";
	if (san && policy->san_other)
		open[n++] = "otherName/dirName";
	for (i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s",
		                 i > 0 ? ", " : "", open[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
	return n > 0;
}
