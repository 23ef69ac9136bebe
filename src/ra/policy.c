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

#include "core/error.h"
#include "core/escape.h"
#include "ra/policy.h"

/* Longest pattern accepted; longer ones are a configuration mistake. */
#define POL_PATTERN_MAX 512

/* Most entries of one list (patterns, curves, digests, extensions). */
#define POL_LIST_MAX 64

/*
 * Bounds that hold when the label sets none: most subjectAltName entries,
 * most subject attributes and most bytes of the subject's DER.  Real
 * device and server requests stay far below them; thousands of names or
 * attributes only cost the RA, the CA and every relying party.
 */
#define POL_SAN_MAX_DEFAULT       100
#define POL_SUBJECT_ATTRS_DEFAULT 32
#define POL_SUBJECT_BYTES_DEFAULT 2048

/* Longest DNS name and label (RFC 1035 §2.3.4, as text without the
 * trailing dot). */
#define POL_DNS_NAME_MAX  253
#define POL_DNS_LABEL_MAX 63

/* A list of anchored patterns; unset means "no rule". */
struct pol_patterns {
	int set;
	regex_t *re; /* owned, n of them */
	char **src;  /* the patterns as written, for hints; owned */
	size_t n;
};

/* What happens to a requested extension the allow-list does not name. */
enum pol_unlisted {
	POL_UNLISTED_DEFAULT, /* not set: dropped where the CA allows it */
	POL_UNLISTED_DROP,    /* "drop", as written */
	POL_UNLISTED_REFUSE   /* "refuse" */
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
	int san_other;    /* otherName, dirName, RID, x400, ediParty */
	int san_wildcard; /* a dNSName may be a "*." wildcard */
	long san_max;     /* most SAN entries */
	int subject_max_attrs;
	int subject_max_bytes;

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
	enum pol_unlisted ext_unlisted;
	ASN1_OBJECT *eku[POL_LIST_MAX]; /* owned */
	size_t n_eku;
};

static const char *const pol_keys[] = {
    "cn",   "cn_equals", "san",        "subject",
    "keys", "signature", "extensions", NULL,
};
static const char *const pol_san_keys[] = {
    "dns", "ip", "email", "uri", "other", "wildcard", "max", NULL,
};
static const char *const pol_subject_keys[] = {
    "max_attributes",
    "max_bytes",
    NULL,
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
               struct core_err *err)
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
			return core_err_set(err, path, "unknown key \"%s\"",
			                    key);
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
                  int icase, struct pol_patterns *p, struct core_err *err)
{
	char anchored[POL_PATTERN_MAX + 8], epath[128], msg[128];
	const json_t *list, *v;
	const char *s;
	int rc = -1, r;
	size_t i, n;

	if ((list = json_object_get(obj, key)) == NULL)
		return 0;
	if (!json_is_array(list)) {
		core_err_set(err, path, "must be an array of patterns");
		goto out;
	}
	if ((n = json_array_size(list)) > POL_LIST_MAX) {
		core_err_set(err, path, "at most %d patterns", POL_LIST_MAX);
		goto out;
	}
	p->set = 1;
	if (n > 0 && ((p->re = calloc(n, sizeof(*p->re))) == NULL ||
	              (p->src = calloc(n, sizeof(*p->src))) == NULL)) {
		core_err_set(err, path, "out of memory");
		goto out;
	}
	json_array_foreach(list, i, v)
	{
		snprintf(epath, sizeof(epath), "%s.%zu", path, i);
		if ((s = json_string_value(v)) == NULL || s[0] == '\0') {
			core_err_set(err, epath, "must be a non-empty string");
			goto out;
		}
		if (strlen(s) > POL_PATTERN_MAX) {
			core_err_set(err, epath, "longer than %d bytes",
			             POL_PATTERN_MAX);
			goto out;
		}
		snprintf(anchored, sizeof(anchored), "^(%s)$", s);
		r = regcomp(&p->re[i], anchored,
		            REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0));
		if (r != 0) {
			regerror(r, &p->re[i], msg, sizeof(msg));
			core_err_set(err, epath,
			             "not a POSIX extended regular expression: "
			             "%s",
			             msg);
			goto out;
		}
		if ((p->src[i] = strdup(s)) == NULL) {
			regfree(&p->re[i]);
			core_err_set(err, epath, "out of memory");
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
             struct core_err *err)
{
	const json_t *v;

	if ((v = json_object_get(obj, key)) == NULL)
		return 0;
	if (!json_is_boolean(v))
		return core_err_set(err, path, "must be true or false");
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
pol_load_keys(struct ra_policy *p, const json_t *obj, struct core_err *err)
{
	char epath[64];
	const json_t *keys, *v, *list;
	size_t i;
	int nid;

	if ((keys = json_object_get(obj, "keys")) == NULL)
		return 0;
	if (!json_is_object(keys))
		return core_err_set(err, "keys", "must be an object");
	if (pol_check_keys(keys, "keys.", pol_key_keys, err) != 0)
		return -1;
	p->keys_set = 1;
	p->rsa_min = 0;
	p->n_ec = 0;
	p->ed25519 = p->ed448 = 0;
	if ((v = json_object_get(keys, "rsa")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 2048 ||
		    json_integer_value(v) > 16384)
			return core_err_set(
			    err, "keys.rsa",
			    "must be the least RSA size in bits, "
			    "2048 to 16384");
		p->rsa_min = (int)json_integer_value(v);
	}
	if ((list = json_object_get(keys, "ec")) != NULL) {
		if (!json_is_array(list) ||
		    json_array_size(list) > POL_LIST_MAX)
			return core_err_set(err, "keys.ec",
			                    "must be an array of curve names");
		json_array_foreach(list, i, v)
		{
			snprintf(epath, sizeof(epath), "keys.ec.%zu", i);
			if (!json_is_string(v) ||
			    (nid = pol_curve_nid(json_string_value(v))) ==
			        NID_undef)
				return core_err_set(err, epath,
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
pol_load_signature(struct ra_policy *p, const json_t *obj, struct core_err *err)
{
	const json_t *list, *v;
	const EVP_MD *md;
	char epath[64];
	size_t i;
	int nid;

	if ((list = json_object_get(obj, "signature")) == NULL)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > POL_LIST_MAX)
		return core_err_set(err, "signature",
		                    "must be an array of digest names");
	p->sig_set = 1;
	json_array_foreach(list, i, v)
	{
		snprintf(epath, sizeof(epath), "signature.%zu", i);
		if (!json_is_string(v) ||
		    (md = EVP_get_digestbyname(json_string_value(v))) == NULL)
			return core_err_set(err, epath,
			                    "not a digest name OpenSSL knows "
			                    "(e.g. \"sha256\")");
		nid = EVP_MD_get_type(md);
		if (nid == NID_sha1 || nid == NID_md5 || nid == NID_md4 ||
		    nid == NID_md5_sha1)
			return core_err_set(err, epath,
			                    "%s is broken and never allowed",
			                    json_string_value(v));
		p->md_nids[p->n_md++] = nid;
	}
	return 0;
}

/* Loads an array of OIDs or object names into objs. */
static int
pol_load_objects(const json_t *list, const char *path, ASN1_OBJECT **objs,
                 size_t *n, struct core_err *err)
{
	const json_t *v;
	char epath[64];
	size_t i;

	if (!json_is_array(list) || json_array_size(list) > POL_LIST_MAX)
		return core_err_set(err, path,
		                    "must be an array of OIDs or object names");
	json_array_foreach(list, i, v)
	{
		snprintf(epath, sizeof(epath), "%s.%zu", path, i);
		if (!json_is_string(v) || json_string_value(v)[0] == '\0' ||
		    (objs[*n] = OBJ_txt2obj(json_string_value(v), 0)) == NULL) {
			ERR_clear_error();
			return core_err_set(err, epath,
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
pol_load_extensions(struct ra_policy *p, const json_t *obj,
                    struct core_err *err)
{
	const json_t *ext, *v;
	const char *s;
	size_t i;

	if ((ext = json_object_get(obj, "extensions")) == NULL)
		goto defaults;
	if (!json_is_object(ext))
		return core_err_set(err, "extensions", "must be an object");
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
			p->ext_unlisted = POL_UNLISTED_DROP;
		else if (s != NULL && strcmp(s, "refuse") == 0)
			p->ext_unlisted = POL_UNLISTED_REFUSE;
		else
			return core_err_set(err, "extensions.unlisted",
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
			return core_err_set(
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
pol_load_san(struct ra_policy *p, const json_t *obj, struct core_err *err)
{
	const json_t *san, *v;

	if ((san = json_object_get(obj, "san")) == NULL)
		return 0;
	if (!json_is_object(san))
		return core_err_set(err, "san", "must be an object");
	if (pol_check_keys(san, "san.", pol_san_keys, err) != 0 ||
	    pol_patterns_load(san, "dns", "san.dns", 1, &p->san_dns, err) !=
	        0 ||
	    pol_patterns_load(san, "ip", "san.ip", 0, &p->san_ip, err) != 0 ||
	    pol_patterns_load(san, "email", "san.email", 1, &p->san_email,
	                      err) != 0 ||
	    pol_patterns_load(san, "uri", "san.uri", 0, &p->san_uri, err) !=
	        0 ||
	    pol_get_bool(san, "other", "san.other", &p->san_other, err) != 0 ||
	    pol_get_bool(san, "wildcard", "san.wildcard", &p->san_wildcard,
	                 err) != 0)
		return -1;
	if ((v = json_object_get(san, "max")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 1000)
			return core_err_set(
			    err, "san.max",
			    "must be an integer from 0 to 1000");
		p->san_max = (long)json_integer_value(v);
	}
	return 0;
}

/* Reads an integer from min to max at key of obj (path for messages). */
static int
pol_get_int(const json_t *obj, const char *key, const char *path, int min,
            int max, int *out, struct core_err *err)
{
	const json_t *v;

	if ((v = json_object_get(obj, key)) == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return core_err_set(
		    err, path, "must be an integer from %d to %d", min, max);
	*out = (int)json_integer_value(v);
	return 0;
}

static int
pol_load_subject(struct ra_policy *p, const json_t *obj, struct core_err *err)
{
	const json_t *subject;

	if ((subject = json_object_get(obj, "subject")) == NULL)
		return 0;
	if (!json_is_object(subject))
		return core_err_set(err, "subject", "must be an object");
	if (pol_check_keys(subject, "subject.", pol_subject_keys, err) != 0 ||
	    pol_get_int(subject, "max_attributes", "subject.max_attributes", 1,
	                256, &p->subject_max_attrs, err) != 0 ||
	    pol_get_int(subject, "max_bytes", "subject.max_bytes", 256, 65536,
	                &p->subject_max_bytes, err) != 0)
		return -1;
	return 0;
}

struct ra_policy *
ra_policy_new(const json_t *conf, struct core_err *err)
{
	struct ra_policy *p = NULL, *rc = NULL;
	const json_t *v;
	const char *s;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		core_err_set(err, "", "out of memory");
		goto out;
	}
	p->san_max = POL_SAN_MAX_DEFAULT;
	p->subject_max_attrs = POL_SUBJECT_ATTRS_DEFAULT;
	p->subject_max_bytes = POL_SUBJECT_BYTES_DEFAULT;
	p->rsa_min = 2048;
	if (conf == NULL) {
		if (pol_load_extensions(p, NULL, err) != 0)
			goto out;
		rc = p;
		p = NULL;
		goto out;
	}
	if (!json_is_object(conf)) {
		core_err_set(err, "", "must be an object");
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
			core_err_set(err, "cn_equals",
			             "must be \"none\", \"user\", \"cert_cn\" "
			             "or \"identity\"");
			goto out;
		}
	}
	if (pol_load_san(p, conf, err) != 0 ||
	    pol_load_subject(p, conf, err) != 0 ||
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

/* Copies len bytes of s for a message, escaped (core/escape.h): client
 * bytes never reach a log raw. */
static const char *
pol_printable(const unsigned char *s, size_t len, char *buf, size_t buflen)
{
	return core_escape_bytes(s, len, CORE_ESCAPE_INNER, buf, buflen);
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

/*
 * The size of the subject: its attributes (each RDN holds one or more)
 * and the bytes of its DER, both bounded whatever the other rules say.
 */
static int
pol_check_subject(const struct ra_policy *p, X509_REQ *csr,
                  struct ra_policy_verdict *v)
{
	const X509_NAME *name = X509_REQ_get_subject_name(csr);
	const unsigned char *der = NULL;
	char hint[96];
	size_t derlen = 0;
	int n;

	if (name == NULL || X509_NAME_get0_der(name, &der, &derlen) != 1) {
		ERR_clear_error();
		return pol_refuse(v, "subject", NULL,
		                  "CSR refused: subject does not encode");
	}
	if ((n = X509_NAME_entry_count(name)) > p->subject_max_attrs) {
		snprintf(hint, sizeof(hint),
		         "rule subject.max_attributes allows %d",
		         p->subject_max_attrs);
		return pol_refuse(
		    v, "subject.max_attributes", hint,
		    "CSR refused: subject has %d attributes, more "
		    "than rule subject.max_attributes %d",
		    n, p->subject_max_attrs);
	}
	if (derlen > (size_t)p->subject_max_bytes) {
		snprintf(hint, sizeof(hint), "rule subject.max_bytes allows %d",
		         p->subject_max_bytes);
		return pol_refuse(
		    v, "subject.max_bytes", hint,
		    "CSR refused: subject is %zu bytes, more than "
		    "rule subject.max_bytes %d",
		    derlen, p->subject_max_bytes);
	}
	return 0;
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
		/*
		 * A TLS client that finds no dNSName matches the host name
		 * against the CN, wildcards included: a '*' there is a
		 * wildcard as much as in the subjectAltName.
		 */
		if (!p->san_wildcard && memchr(utf8, '*', (size_t)n) != NULL) {
			pol_refuse(v, "san.wildcard",
			           "set san.wildcard to true if the label may "
			           "issue wildcard names",
			           "CSR refused: subject CN \"%s\" holds a "
			           "wildcard, which rule san.wildcard does not "
			           "allow",
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

/* Names byte c for a message: 'c' when printable, else \xHH. */
static const char *
pol_byte_text(unsigned char c, char *buf, size_t len)
{
	if (c > 0x20 && c < 0x7f && c != '\'' && c != '\\')
		snprintf(buf, len, "'%c'", c);
	else
		snprintf(buf, len, "\\x%02x", c);
	return buf;
}

/*
 * Checks that s (len bytes) is a host name in the preferred name syntax
 * RFC 5280 asks of a dNSName (RFC 1034 §3.5, with RFC 1123's leading
 * digits): labels of ASCII letters, digits and hyphens, neither starting
 * nor ending with a hyphen, 1 to 63 bytes each, 253 bytes in all, no
 * trailing dot (IDNs come as xn-- A-labels).  A leftmost label that is
 * "*" alone makes a wildcard (*wildcard set) over the two or more labels
 * that must follow it; a '*' anywhere else, "*" alone and "*.com" are no
 * names.  Returns 0, or -1 with the fault in why.
 */
static int
pol_dns_syntax(const unsigned char *s, size_t len, int *wildcard, char *why,
               size_t whylen)
{
	size_t i, start = 0, labels = 0;
	char byte[8];

	*wildcard = 0;
	if (len == 0) {
		snprintf(why, whylen, "it is empty");
		return -1;
	}
	if (len > POL_DNS_NAME_MAX) {
		snprintf(why, whylen, "it is longer than %d bytes",
		         POL_DNS_NAME_MAX);
		return -1;
	}
	if (len == 1 && s[0] == '*') {
		snprintf(why, whylen,
		         "a wildcard must stand over two or more labels");
		return -1;
	}
	if (len >= 2 && s[0] == '*' && s[1] == '.') {
		*wildcard = 1;
		start = 2;
	}
	for (i = start; i <= len; i++) {
		if (i < len && s[i] != '.') {
			if ((s[i] >= 'a' && s[i] <= 'z') ||
			    (s[i] >= 'A' && s[i] <= 'Z') ||
			    (s[i] >= '0' && s[i] <= '9') || s[i] == '-')
				continue;
			if (s[i] == '*')
				snprintf(why, whylen,
				         "a wildcard '*' may only be the whole "
				         "leftmost label");
			else
				snprintf(
				    why, whylen,
				    "byte %s is not a letter, digit or "
				    "hyphen",
				    pol_byte_text(s[i], byte, sizeof(byte)));
			return -1;
		}
		if (i == start) {
			snprintf(why, whylen, "it has an empty label");
			return -1;
		}
		if (i - start > POL_DNS_LABEL_MAX) {
			snprintf(why, whylen, "a label is longer than %d bytes",
			         POL_DNS_LABEL_MAX);
			return -1;
		}
		if (s[start] == '-' || s[i - 1] == '-') {
			snprintf(why, whylen,
			         "a label starts or ends with a hyphen");
			return -1;
		}
		labels++;
		start = i + 1;
	}
	if (*wildcard && labels < 2) {
		snprintf(why, whylen,
		         "a wildcard must stand over two or more labels");
		return -1;
	}
	return 0;
}

/*
 * Checks that s (len bytes) is an rfc822Name: a mailbox local@domain of
 * printable ASCII without spaces, one '@', a local part of 1 to 64 bytes
 * and a domain that is a host name (no wildcard).  Quoted local parts
 * holding '@' or spaces are refused with the rest.  Returns 0, or -1
 * with the fault in why.
 */
static int
pol_email_syntax(const unsigned char *s, size_t len, char *why, size_t whylen)
{
	const unsigned char *at = NULL;
	char byte[8], dwhy[128];
	size_t i;
	int wildcard;

	for (i = 0; i < len; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f) {
			snprintf(why, whylen, "byte %s is not printable ASCII",
			         pol_byte_text(s[i], byte, sizeof(byte)));
			return -1;
		}
		if (s[i] == '@') {
			if (at != NULL) {
				snprintf(why, whylen, "it has two '@'");
				return -1;
			}
			at = s + i;
		}
	}
	if (at == NULL) {
		snprintf(why, whylen, "it has no '@'");
		return -1;
	}
	if (at == s || at - s > 64) {
		snprintf(why, whylen,
		         "its local part is empty or longer than "
		         "64 bytes");
		return -1;
	}
	if (pol_dns_syntax(at + 1, len - (size_t)(at + 1 - s), &wildcard, dwhy,
	                   sizeof(dwhy)) != 0 ||
	    wildcard) {
		snprintf(why, whylen, "its domain is no host name%s%s",
		         wildcard ? "" : ": ", wildcard ? "" : dwhy);
		return -1;
	}
	return 0;
}

/*
 * URI schemes never put in a certificate: a viewer that makes the name a
 * link would run or open what it says.
 */
static const char *const pol_uri_refused[] = {
    "javascript", "vbscript", "data", "file", NULL,
};

/*
 * Checks that s (len bytes) is a URI as far as a certificate needs: printable
 * ASCII without spaces (RFC 3986 has none; an IRI must be converted to a
 * URI), a scheme (a letter, then letters, digits, '+', '-' or '.') and a
 * ':', and a scheme not in pol_uri_refused.  Returns 0, or -1 with the
 * fault in why; *scheme_refused is set when only the scheme is at fault.
 */
static int
pol_uri_syntax(const unsigned char *s, size_t len, char *why, size_t whylen,
               int *scheme_refused)
{
	char byte[8], scheme[16];
	size_t i, colon = 0;

	*scheme_refused = 0;
	for (i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f) {
			snprintf(why, whylen, "byte %s is not printable ASCII",
			         pol_byte_text(s[i], byte, sizeof(byte)));
			return -1;
		}
	for (i = 0; i < len && s[i] != ':'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (i > 0 && ((s[i] >= '0' && s[i] <= '9') || s[i] == '+' ||
		                 s[i] == '-' || s[i] == '.'))))
			break;
	colon = i;
	if (colon == 0 || colon == len || s[colon] != ':') {
		snprintf(why, whylen,
		         "it does not start with a scheme and ':'");
		return -1;
	}
	if (colon < sizeof(scheme)) {
		for (i = 0; i < colon; i++)
			scheme[i] =
			    (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a'
			                                      : s[i]);
		scheme[colon] = '\0';
		for (i = 0; pol_uri_refused[i] != NULL; i++)
			if (strcmp(scheme, pol_uri_refused[i]) == 0) {
				*scheme_refused = 1;
				snprintf(why, whylen,
				         "URI scheme \"%s\" is never allowed",
				         scheme);
				return -1;
			}
	}
	return 0;
}

/*
 * Names what the iPAddress a (4 or 16 bytes) is when it names no single
 * host: "an unspecified" (0.0.0.0, ::), "the broadcast"
 * (255.255.255.255) or "a multicast" (224.0.0.0/4, ff00::/8) address.
 * IPv4-mapped IPv6 addresses count as the IPv4 address.  NULL otherwise.
 */
static const char *
pol_ip_special(const unsigned char *a, int len)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
	                                         0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char zero[16], ones[4] = {0xff, 0xff, 0xff, 0xff};

	if (len == 16 && memcmp(a, mapped, sizeof(mapped)) == 0) {
		a += sizeof(mapped);
		len = 4;
	}
	if (memcmp(a, zero, (size_t)len) == 0)
		return "an unspecified";
	if (len == 4 && memcmp(a, ones, sizeof(ones)) == 0)
		return "the broadcast";
	if ((len == 4 && (a[0] & 0xf0) == 0xe0) || (len == 16 && a[0] == 0xff))
		return "a multicast";
	return NULL;
}

/*
 * Checks a dNSName: its syntax, then whether a wildcard may be issued,
 * then the label's patterns.
 */
static int
pol_check_dns(const struct ra_policy *p, const ASN1_STRING *str,
              struct ra_policy_verdict *v)
{
	const unsigned char *data = ASN1_STRING_get0_data(str);
	size_t len = (size_t)ASN1_STRING_length(str);
	char shown[300], why[128];
	int wildcard;

	if (pol_dns_syntax(data, len, &wildcard, why, sizeof(why)) != 0) {
		pol_printable(data, len, shown, sizeof(shown));
		return pol_refuse(
		    v, "san.dns",
		    "letters, digits and hyphens in labels of 1 to "
		    "63 bytes; \"*.\" over two or more labels "
		    "where san.wildcard allows it",
		    "CSR refused: subjectAltName dNSName \"%s\" is "
		    "not a valid DNS name: %s",
		    shown, why);
	}
	if (wildcard && !p->san_wildcard) {
		pol_printable(data, len, shown, sizeof(shown));
		return pol_refuse(
		    v, "san.wildcard",
		    "set san.wildcard to true if the label may "
		    "issue wildcard names",
		    "CSR refused: subjectAltName dNSName \"%s\" is "
		    "a wildcard, which rule san.wildcard does not "
		    "allow",
		    shown);
	}
	return pol_check_san_string(&p->san_dns, "san.dns", "dNSName", str, v);
}

/* Checks an rfc822Name: its syntax, then the label's patterns. */
static int
pol_check_email(const struct ra_policy *p, const ASN1_STRING *str,
                struct ra_policy_verdict *v)
{
	const unsigned char *data = ASN1_STRING_get0_data(str);
	size_t len = (size_t)ASN1_STRING_length(str);
	char shown[300], why[160];

	if (pol_email_syntax(data, len, why, sizeof(why)) != 0) {
		pol_printable(data, len, shown, sizeof(shown));
		return pol_refuse(
		    v, "san.email", NULL,
		    "CSR refused: subjectAltName rfc822Name \"%s\" "
		    "is not a valid e-mail address: %s",
		    shown, why);
	}
	return pol_check_san_string(&p->san_email, "san.email", "rfc822Name",
	                            str, v);
}

/* Checks a uniformResourceIdentifier: its syntax and scheme, then the
 * label's patterns. */
static int
pol_check_uri(const struct ra_policy *p, const ASN1_STRING *str,
              struct ra_policy_verdict *v)
{
	const unsigned char *data = ASN1_STRING_get0_data(str);
	size_t len = (size_t)ASN1_STRING_length(str);
	char shown[300], why[128];
	int scheme_refused;

	if (pol_uri_syntax(data, len, why, sizeof(why), &scheme_refused) != 0) {
		pol_printable(data, len, shown, sizeof(shown));
		if (scheme_refused)
			return pol_refuse(
			    v, "san.uri", NULL,
			    "CSR refused: subjectAltName "
			    "uniformResourceIdentifier \"%s\": %s",
			    shown, why);
		return pol_refuse(v, "san.uri", NULL,
		                  "CSR refused: subjectAltName "
		                  "uniformResourceIdentifier \"%s\" is not a "
		                  "valid URI: %s",
		                  shown, why);
	}
	return pol_check_san_string(&p->san_uri, "san.uri",
	                            "uniformResourceIdentifier", str, v);
}

static int
pol_check_san(const struct ra_policy *p, const STACK_OF(X509_EXTENSION) *exts,
              struct ra_policy_verdict *v)
{
	GENERAL_NAMES *names = NULL;
	char ip[INET6_ADDRSTRLEN], hint[256];
	const GENERAL_NAME *gn;
	const char *what;
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
	if (n > p->san_max) {
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
			if (pol_check_dns(p, gn->d.dNSName, v) != 0)
				goto out;
			break;
		case GEN_EMAIL:
			if (pol_check_email(p, gn->d.rfc822Name, v) != 0)
				goto out;
			break;
		case GEN_URI:
			if (pol_check_uri(p, gn->d.uniformResourceIdentifier,
			                  v) != 0)
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
			if ((what = pol_ip_special(ASN1_STRING_get0_data(a),
			                           len)) != NULL) {
				pol_refuse(v, "san.ip", NULL,
				           "CSR refused: subjectAltName "
				           "iPAddress %s is %s address, which "
				           "names no host",
				           ip, what);
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

/*
 * Refuses what no EST client gets, whatever the allow-list and
 * extensions.unlisted say: basicConstraints CA:TRUE (or one that does not
 * decode) and a keyUsage with keyCertSign or cRLSign (or one that does
 * not decode).  Dropping them is not enough: a CA that takes the CSR as
 * sent would honour them, and a request for a CA is worth a refusal
 * anywhere.  Returns 0 for every other extension.
 */
static int
pol_check_never(X509_EXTENSION *ext, struct ra_policy_verdict *v)
{
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;
	char bits[32] = "";
	int ca;

	switch (OBJ_obj2nid(X509_EXTENSION_get_object(ext))) {
	case NID_basic_constraints:
		bc = X509V3_EXT_d2i(ext);
		ca = bc == NULL || bc->ca;
		BASIC_CONSTRAINTS_free(bc);
		ERR_clear_error();
		if (ca)
			return pol_refuse(v, "extensions.basicConstraints",
			                  NULL,
			                  "CSR refused: requested "
			                  "basicConstraints CA:TRUE is never "
			                  "allowed (rule extensions)");
		return 0;
	case NID_key_usage:
		if ((ku = X509V3_EXT_d2i(ext)) == NULL) {
			ERR_clear_error();
			return pol_refuse(
			    v, "extensions.keyUsage", NULL,
			    "CSR refused: requested keyUsage does "
			    "not decode");
		}
		/* Bits 5 and 6 of KeyUsage (RFC 5280 §4.2.1.3). */
		if (ASN1_BIT_STRING_get_bit(ku, 5))
			pol_list_add(bits, sizeof(bits), "keyCertSign");
		if (ASN1_BIT_STRING_get_bit(ku, 6))
			pol_list_add(bits, sizeof(bits), "cRLSign");
		ASN1_BIT_STRING_free(ku);
		if (bits[0] != '\0')
			return pol_refuse(
			    v, "extensions.keyUsage", NULL,
			    "CSR refused: requested keyUsage %s is "
			    "never allowed (rule extensions)",
			    bits);
		return 0;
	default:
		return 0;
	}
}

/*
 * The requested extensions: those never allowed, then the allow-list
 * (an unlisted one is dropped or refused; refused when forwarded, the
 * CSR going to the CA as sent), then the EKUs of an allowed
 * extendedKeyUsage.
 */
static int
pol_check_extensions(const struct ra_policy *p,
                     const STACK_OF(X509_EXTENSION) *exts, int forwarded,
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
		if (pol_check_never(ext, v) != 0)
			goto out;
		if (!pol_has_object(p->ext_allow, p->n_ext_allow, obj)) {
			if (p->ext_unlisted == POL_UNLISTED_REFUSE) {
				pol_refuse(
				    v, "extensions",
				    "list it in extensions.allow if the "
				    "label should honour it",
				    "CSR refused: requested extension %s "
				    "not allowed by rule extensions",
				    name);
				goto out;
			}
			if (forwarded) {
				pol_refuse(
				    v, "extensions",
				    "list it in extensions.allow if the "
				    "CA may honour it",
				    "CSR refused: requested extension %s "
				    "not allowed by rule extensions, and it "
				    "cannot be dropped: the label's CA "
				    "receives the CSR as sent",
				    name);
				goto out;
			}
			pol_list_add(v->dropped, sizeof(v->dropped), name);
			continue;
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
ra_policy_says_drop(const struct ra_policy *policy)
{
	return policy != NULL && policy->ext_unlisted == POL_UNLISTED_DROP;
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
	    pol_check_subject(policy, in->csr, verdict) != 0 ||
	    pol_check_cn(policy, in, verdict) != 0 ||
	    pol_check_san(policy, exts, verdict) != 0 ||
	    pol_check_extensions(policy, exts, in->forwards_csr, verdict) != 0)
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
