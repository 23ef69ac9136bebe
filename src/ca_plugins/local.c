/*
 * local.c: the built-in CA backend ("local").  It signs requests in-process
 * with an issuing CA certificate and key read from PEM files, so estrad
 * runs out of the box without any external CA.  Everything that can be
 * checked or prepared is done at configure time on the main thread; after
 * that the state is only read, so worker threads issue concurrently on the
 * same label without locks, each with its own signing context.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_plugins/ca.h"
#include "core/certs.h"
#include "core/conf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/time.h"

#define LOCAL_COMPONENT "ca.local"

/* No poll: every answer is final at once.  No cancel: a call never outlives
 * its starting function but for the completion ca.c has queued. */
#define LOCAL_CAPS                                                             \
	(CA_CAP_ENROLL | CA_CAP_REENROLL | CA_CAP_CACERTS | CA_CAP_HEALTH)

/* Profile defaults and limits. */
#define LOCAL_DAYS_DEFAULT 365
#define LOCAL_DAYS_MAX     3650

/* Issued certificates start this long in the past for clients whose clock
 * is a little behind. */
#define LOCAL_SKEW_SECONDS (5 * 60)

/* health warns when a CA certificate expires within this many days. */
#define LOCAL_WARN_DAYS 30

/* Serial numbers: 20 random octets with the top bit cleared give positive
 * 159-bit integers that DER-encode in at most 20 octets (RFC 5280 4.1.2.2)
 * and carry far more than the 64 bits of entropy the CA/Browser Forum
 * asks for. */
#define LOCAL_SERIAL_BYTES    20
#define LOCAL_SERIAL_MIN_BITS 64
#define LOCAL_SERIAL_TRIES    8

#define LOCAL_HINT_KEY   "check the issuing CA key and certificate (estrad -t)"
#define LOCAL_HINT_RENEW "renew the issuing CA certificate, then reload"

/* Per-label state.  Written by configure only, read-only afterwards. */
struct local_ca {
	X509 *cert;            /* issuing CA certificate */
	EVP_PKEY *key;         /* its private key */
	STACK_OF(X509) *chain; /* cacerts answer: issuing CA first, to root */
	const char *md;        /* signing digest name; NULL for EdDSA */
	/* Set up to sign with key and md; each certificate is signed with a
	 * copy (EVP_MD_CTX_copy_ex only reads it, so threads share it). */
	EVP_MD_CTX *sign_template;
	unsigned int days;     /* validity of issued certificates */
	int check_signatures;  /* verify each new certificate's signature */
	unsigned int delay_ms; /* answers held back, to simulate a slow CA */
	/* Extensions every issued certificate carries, encoded once. */
	X509_EXTENSION *bc_ext;  /* basicConstraints critical CA:FALSE */
	X509_EXTENSION *ku_ext;  /* keyUsage critical, from the profile */
	X509_EXTENSION *eku_ext; /* extendedKeyUsage, from the profile */
	X509_EXTENSION *aki_ext; /* authorityKeyIdentifier keyid */
	char *cert_path;         /* resolved file names, for messages */
	char *key_path;
	char *chain_path;
};

/* Why an operation failed, filled before the call is completed. */
struct local_fault {
	enum ca_outcome outcome;
	const char *hint; /* static text or NULL */
	char cause[CA_CAUSE_MAX];
};

struct local_bit_name {
	const char *name;
	int bit;
};

struct local_nid_name {
	const char *name;
	int nid;
};

static const char *const local_conf_keys[] = {
    "backend",          "cert",     "key", "chain", "profile",
    "check_signatures", "delay_ms", NULL,
};

static const char *const local_profile_keys[] = {
    "validity_days",
    "key_usage",
    "extended_key_usage",
    NULL,
};

/* The key usages a leaf may get, with their bit in the KeyUsage string. */
static const struct local_bit_name local_key_usages[] = {
    {"digitalSignature", 0}, {"nonRepudiation", 1}, {"keyEncipherment", 2},
    {"dataEncipherment", 3}, {"keyAgreement", 4},
};

#define LOCAL_KU_NAMES                                                         \
	"digitalSignature, nonRepudiation, keyEncipherment, "                  \
	"dataEncipherment, keyAgreement"

static const struct local_nid_name local_ext_key_usages[] = {
    {"serverAuth", NID_server_auth},  {"clientAuth", NID_client_auth},
    {"codeSigning", NID_code_sign},   {"emailProtection", NID_email_protect},
    {"timeStamping", NID_time_stamp}, {"OCSPSigning", NID_OCSP_sign},
    {"id-kp-cmcRA", NID_cmcRA},
};

#define LOCAL_EKU_NAMES                                                        \
	"serverAuth, clientAuth, codeSigning, emailProtection, "               \
	"timeStamping, OCSPSigning, id-kp-cmcRA or a dotted OID"

#define LOCAL_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Fills f with outcome, hint and the formatted cause followed by the drained
 * OpenSSL error queue, which explains most failures.
 */
static void local_fault_set(struct local_fault *f, enum ca_outcome outcome,
                            const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
local_fault_set(struct local_fault *f, enum ca_outcome outcome,
                const char *hint, const char *fmt, ...)
{
	va_list ap;

	f->outcome = outcome;
	f->hint = hint;
	va_start(ap, fmt);
	vsnprintf(f->cause, sizeof(f->cause), fmt, ap);
	va_end(ap);
	core_ssl_errors_append(f->cause, sizeof(f->cause));
}

/*
 * Completes call with f.  A refused CSR is the client's fault (answered
 * 400); anything else means the CA itself is unusable (answered 500).  ra
 * logs the failure from the result, on the request's one line with the
 * answer.  The caller must not touch call afterwards.
 */
static void
local_fail(struct ca_call *call, const struct local_fault *f)
{
	call->result.csr_fault = f->outcome == CA_REJECTED;
	ca_call_fail(call, f->outcome, f->hint, "%s", f->cause);
}

/*
 * Writes x's subject into buf (size len) in RFC 2253 form, control and
 * non-ASCII bytes escaped by OpenSSL, and returns buf.
 */
static const char *
local_subject_str(X509 *x, char *buf, size_t len)
{
	BIO *bio = NULL;
	int n = 0;

	if ((bio = BIO_new(BIO_s_mem())) != NULL &&
	    X509_NAME_print_ex(bio, X509_get_subject_name(x), 0,
	                       XN_FLAG_RFC2253) >= 0)
		n = BIO_read(bio, buf, (int)len - 1);
	if (n > 0)
		buf[n] = '\0';
	else
		snprintf(buf, len, "(empty subject)");
	BIO_free(bio);
	return buf;
}

/*
 * Reads the file name at key of conf into *value (borrowed from conf):
 * NULL when absent and optional.  what describes the file for the
 * "missing" message.
 */
static int
local_conf_file(const json_t *conf, const char *key, int required,
                const char *what, const char **value, struct core_err *err)
{
	json_t *v;
	int rc = -1;

	*value = NULL;
	if ((v = json_object_get(conf, key)) == NULL) {
		if (required) {
			core_err_set(err, key, "missing \"%s\" (%s)", key,
			             what);
			goto out;
		}
	} else if (!json_is_string(v)) {
		core_err_set(err, key,
		             "\"%s\" must be a string (a file name), not %s",
		             key, core_conf_type_name(v));
		goto out;
	} else if (json_string_length(v) == 0 ||
	           strlen(json_string_value(v)) != json_string_length(v)) {
		/* A NUL inside the string would silently cut the name. */
		core_err_set(err, key, "\"%s\" must be a non-empty file name",
		             key);
		goto out;
	} else
		*value = json_string_value(v);
	rc = 0;
out:
	return rc;
}

/*
 * Resolves file against conf_dir unless it is absolute.  Sets *path to a
 * new string (free with free).
 */
static int
local_resolve(const char *conf_dir, const char *file, const char *key,
              char **path, struct core_err *err)
{
	char buf[PATH_MAX];
	int n, rc = -1;

	if (file[0] == '/' || conf_dir == NULL || conf_dir[0] == '\0')
		n = snprintf(buf, sizeof(buf), "%s", file);
	else
		n = snprintf(buf, sizeof(buf), "%s/%s", conf_dir, file);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		core_err_set(err, key, "file name too long: %s", file);
		goto out;
	}
	if ((*path = strdup(buf)) == NULL) {
		core_err_set(err, key, "out of memory");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/*
 * Opens path for PEM reading.  Refuses anything but a regular file: a
 * directory would only give a confusing PEM error, and a device or FIFO
 * could block estrad -t forever.  Returns a new BIO (free with BIO_free), or
 * NULL with err naming the file and the errno text.
 */
static BIO *
local_open(const char *path, const char *key, struct core_err *err)
{
	struct stat st;
	FILE *fp = NULL;
	BIO *rc = NULL;

	if ((fp = fopen(path, "re")) == NULL) {
		core_err_set(err, key, "cannot read %s: %s", path,
		             strerror(errno));
		goto out;
	}
	if (fstat(fileno(fp), &st) != 0) {
		core_err_set(err, key, "cannot read %s: %s", path,
		             strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		core_err_set(err, key, "cannot read %s: %s", path,
		             strerror(EISDIR));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		core_err_set(err, key, "cannot read %s: not a regular file",
		             path);
		goto out;
	}
	if ((rc = BIO_new_fp(fp, BIO_CLOSE)) == NULL) {
		core_err_set(err, key, "cannot read %s: out of memory", path);
		core_ssl_errors_append(err->text, sizeof(err->text));
		goto out;
	}
	fp = NULL;
out:
	if (fp != NULL)
		fclose(fp);
	return rc;
}

/*
 * Parses the profile's key_usage list (NULL: the default) into a new
 * KeyUsage bit string (free with ASN1_BIT_STRING_free).
 */
static int
local_key_usage(const json_t *list, ASN1_BIT_STRING **out, struct core_err *err)
{
	static const char key[] = "profile.key_usage";
	ASN1_BIT_STRING *ku = NULL;
	const char *name;
	size_t i, j;
	json_t *v;
	int rc = -1;

	if ((ku = ASN1_BIT_STRING_new()) == NULL) {
		core_err_set(err, key, "out of memory");
		goto out;
	}
	if (list == NULL) {
		if (!ASN1_BIT_STRING_set_bit(ku, 0, 1) ||
		    !ASN1_BIT_STRING_set_bit(ku, 2, 1)) {
			core_err_set(err, key, "out of memory");
			goto out;
		}
	} else if (!json_is_array(list)) {
		core_err_set(err, key,
		             "\"key_usage\" must be an array of names, not %s",
		             core_conf_type_name(list));
		goto out;
	} else if (json_array_size(list) == 0) {
		/* RFC 5280 4.2.1.3: a keyUsage sets at least one bit. */
		core_err_set(err, key,
		             "\"key_usage\" must name at least one usage (%s)",
		             LOCAL_KU_NAMES);
		goto out;
	}
	json_array_foreach(list, i, v)
	{
		if ((name = json_string_value(v)) == NULL) {
			core_err_set(err, key,
			             "element %zu must be a string, not %s",
			             i + 1, core_conf_type_name(v));
			goto out;
		}
		if (strcmp(name, "keyCertSign") == 0 ||
		    strcmp(name, "cRLSign") == 0) {
			core_err_set(
			    err, key,
			    "\"%s\" is refused: an EST leaf certificate "
			    "is never a CA",
			    name);
			goto out;
		}
		for (j = 0; j < LOCAL_NELEM(local_key_usages); j++)
			if (strcmp(name, local_key_usages[j].name) == 0)
				break;
		if (j == LOCAL_NELEM(local_key_usages)) {
			core_err_set(err, key,
			             "unknown key usage \"%s\" (allowed: %s)",
			             name, LOCAL_KU_NAMES);
			goto out;
		}
		if (ASN1_BIT_STRING_get_bit(ku, local_key_usages[j].bit)) {
			core_err_set(err, key, "\"%s\" is listed twice", name);
			goto out;
		}
		if (!ASN1_BIT_STRING_set_bit(ku, local_key_usages[j].bit, 1)) {
			core_err_set(err, key, "out of memory");
			goto out;
		}
	}
	*out = ku;
	ku = NULL;
	rc = 0;
out:
	ASN1_BIT_STRING_free(ku);
	return rc;
}

/*
 * Returns a new object for one extended_key_usage entry (free with
 * ASN1_OBJECT_free), or NULL: one of the names EST deployments use, or a
 * dotted OID.  OpenSSL's own short and long names are not accepted so that
 * the configuration means the same on every OpenSSL version, and the OID
 * must read back as written because OBJ_txt2obj() takes "1..2" as 1.0.2.
 */
static ASN1_OBJECT *
local_eku_object(const char *name)
{
	ASN1_OBJECT *obj = NULL, *rc = NULL;
	char canon[128];
	size_t i;

	for (i = 0; i < LOCAL_NELEM(local_ext_key_usages); i++)
		if (strcmp(name, local_ext_key_usages[i].name) == 0) {
			rc = OBJ_nid2obj(local_ext_key_usages[i].nid);
			goto out;
		}
	if (strspn(name, "0123456789.") != strlen(name) ||
	    strchr(name, '.') == NULL || (obj = OBJ_txt2obj(name, 0)) == NULL ||
	    OBJ_obj2txt(canon, sizeof(canon), obj, 1) <= 0 ||
	    strcmp(canon, name) != 0)
		goto out;
	rc = obj;
	obj = NULL;
out:
	ASN1_OBJECT_free(obj);
	return rc;
}

/*
 * Parses the profile's extended_key_usage list (NULL: the default) into a
 * new stack (free with sk_ASN1_OBJECT_pop_free(..., ASN1_OBJECT_free)).
 */
static int
local_ext_key_usage(const json_t *list, EXTENDED_KEY_USAGE **out,
                    struct core_err *err)
{
	static const char key[] = "profile.extended_key_usage";
	EXTENDED_KEY_USAGE *eku = NULL;
	ASN1_OBJECT *obj = NULL;
	const char *name;
	size_t i;
	json_t *v;
	int j, rc = -1;

	if ((eku = sk_ASN1_OBJECT_new_null()) == NULL) {
		core_err_set(err, key, "out of memory");
		goto out;
	}
	if (list == NULL) {
		if ((obj = OBJ_nid2obj(NID_client_auth)) == NULL ||
		    !sk_ASN1_OBJECT_push(eku, obj)) {
			core_err_set(err, key, "out of memory");
			goto out;
		}
		obj = NULL;
	} else if (!json_is_array(list)) {
		core_err_set(
		    err, key,
		    "\"extended_key_usage\" must be an array of names, "
		    "not %s",
		    core_conf_type_name(list));
		goto out;
	} else if (json_array_size(list) == 0) {
		/* RFC 5280 4.2.1.12: one purpose or more. */
		core_err_set(err, key,
		             "\"extended_key_usage\" must name at least one "
		             "purpose (%s)",
		             LOCAL_EKU_NAMES);
		goto out;
	}
	json_array_foreach(list, i, v)
	{
		if ((name = json_string_value(v)) == NULL) {
			core_err_set(err, key,
			             "element %zu must be a string, not %s",
			             i + 1, core_conf_type_name(v));
			goto out;
		}
		if ((obj = local_eku_object(name)) == NULL) {
			ERR_clear_error();
			core_err_set(err, key,
			             "unknown extended key usage \"%s\" "
			             "(allowed: %s)",
			             name, LOCAL_EKU_NAMES);
			goto out;
		}
		for (j = 0; j < sk_ASN1_OBJECT_num(eku); j++)
			if (OBJ_cmp(sk_ASN1_OBJECT_value(eku, j), obj) == 0)
				break;
		if (j < sk_ASN1_OBJECT_num(eku)) {
			core_err_set(err, key, "\"%s\" is listed twice", name);
			goto out;
		}
		if (!sk_ASN1_OBJECT_push(eku, obj)) {
			core_err_set(err, key, "out of memory");
			goto out;
		}
		obj = NULL;
	}
	*out = eku;
	eku = NULL;
	rc = 0;
out:
	ASN1_OBJECT_free(obj);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return rc;
}

/* Reads the "profile" object (NULL: all defaults) into ca. */
static int
local_profile(struct local_ca *ca, const json_t *profile, struct core_err *err)
{
	EXTENDED_KEY_USAGE *eku = NULL;
	ASN1_BIT_STRING *ku = NULL;
	json_int_t days = LOCAL_DAYS_DEFAULT;
	json_t *v;
	int rc = -1;

	if (profile != NULL && !json_is_object(profile)) {
		core_err_set(err, "profile",
		             "\"profile\" must be an object, not %s",
		             core_conf_type_name(profile));
		goto out;
	}
	if (profile != NULL &&
	    core_conf_check_keys(profile, "profile.", local_profile_keys,
	                         err) != 0)
		goto out;
	if ((v = json_object_get(profile, "validity_days")) != NULL) {
		if (!json_is_integer(v)) {
			core_err_set(
			    err, "profile.validity_days",
			    "\"validity_days\" must be an integer (days), not "
			    "%s",
			    core_conf_type_name(v));
			goto out;
		}
		days = json_integer_value(v);
		if (days < 1 || days > LOCAL_DAYS_MAX) {
			core_err_set(
			    err, "profile.validity_days",
			    "\"validity_days\" must be between 1 and %d, not "
			    "%" JSON_INTEGER_FORMAT,
			    LOCAL_DAYS_MAX, days);
			goto out;
		}
	}
	ca->days = (unsigned int)days;
	v = json_object_get(profile, "key_usage");
	if (local_key_usage(v, &ku, err) != 0)
		goto out;
	v = json_object_get(profile, "extended_key_usage");
	if (local_ext_key_usage(v, &eku, err) != 0)
		goto out;
	if ((ca->ku_ext = X509V3_EXT_i2d(NID_key_usage, 1, ku)) == NULL ||
	    (ca->eku_ext = X509V3_EXT_i2d(NID_ext_key_usage, 0, eku)) == NULL) {
		core_err_set(err, "profile",
		             "cannot encode the profile's key usages");
		core_ssl_errors_append(err->text, sizeof(err->text));
		goto out;
	}
	rc = 0;
out:
	ASN1_BIT_STRING_free(ku);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return rc;
}

/*
 * Checks that x is valid at now.  key and what name it in err ("cert",
 * "CA certificate"); the message gives both dates because the usual cause
 * is a wrong clock on one side.
 */
static int
local_check_time(X509 *x, time_t now, const char *key, const char *what,
                 const char *path, struct core_err *err)
{
	char when[32], now_s[32];
	int rc = -1;

	if (X509_cmp_time(X509_get0_notBefore(x), &now) > 0) {
		core_err_set(
		    err, key,
		    "%s %s is not valid before %s (now %s; clock skew?)", what,
		    path,
		    core_time_asn1(X509_get0_notBefore(x), when, sizeof(when)),
		    core_time_epoch(now, now_s, sizeof(now_s)));
		goto out;
	}
	if (X509_cmp_time(X509_get0_notAfter(x), &now) <= 0) {
		core_err_set(
		    err, key, "%s %s expired on %s (now %s; clock skew?)", what,
		    path,
		    core_time_asn1(X509_get0_notAfter(x), when, sizeof(when)),
		    core_time_epoch(now, now_s, sizeof(now_s)));
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/* Logs a warning when x expires within LOCAL_WARN_DAYS of now. */
static void
local_warn_expiry(const struct ca_call *call, X509 *x, time_t now)
{
	time_t soon = now + (time_t)LOCAL_WARN_DAYS * 24 * 60 * 60;
	char name[256], when[32];
	int days = 0, secs = 0;

	if (X509_cmp_time(X509_get0_notAfter(x), &soon) > 0)
		return;
	if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
		days = 0;
	ca_log(call, CORE_LOG_WARN, LOCAL_COMPONENT, LOCAL_HINT_RENEW,
	       "CA certificate expires soon: %s expires on %s, in %d days",
	       local_subject_str(x, name, sizeof(name)),
	       core_time_asn1(X509_get0_notAfter(x), when, sizeof(when)), days);
}

/* Loads and checks the issuing CA certificate. */
static int
local_load_cert(struct local_ca *ca, const char *conf_dir, const char *file,
                struct core_err *err)
{
	char name[256];
	BIO *bio = NULL;
	time_t now;
	int rc = -1;

	if (local_resolve(conf_dir, file, "cert", &ca->cert_path, err) != 0 ||
	    (bio = local_open(ca->cert_path, "cert", err)) == NULL)
		goto out;
	if ((ca->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		core_err_set(err, "cert", "no PEM certificate in %s",
		             ca->cert_path);
		core_ssl_errors_append(err->text, sizeof(err->text));
		goto out;
	}
	/* 1 is basicConstraints CA:TRUE (and keyCertSign if keyUsage is
	 * there); the legacy answers (v1 roots, Netscape types) do not make
	 * a certificate that modern clients accept as an issuer. */
	if (X509_check_ca(ca->cert) != 1) {
		core_err_set(
		    err, "cert",
		    "%s (%s) is not a CA certificate: it needs "
		    "basicConstraints CA:TRUE and, if it has keyUsage, "
		    "keyCertSign",
		    ca->cert_path,
		    local_subject_str(ca->cert, name, sizeof(name)));
		goto out;
	}
	now = time(NULL);
	if (local_check_time(ca->cert, now, "cert", "CA certificate",
	                     ca->cert_path, err) != 0)
		goto out;
	local_warn_expiry(NULL, ca->cert, now);
	rc = 0;
out:
	BIO_free(bio);
	return rc;
}

/*
 * Passphrase callback that refuses: OpenSSL's default would prompt on the
 * terminal and block estrad.  Records in *u that the key is encrypted.
 */
static int
local_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	*(int *)u = 1;
	return -1;
}

/* Loads the CA key and checks that it belongs to the certificate. */
static int
local_load_key(struct local_ca *ca, const char *conf_dir, const char *file,
               struct core_err *err)
{
	int encrypted = 0, rc = -1;
	BIO *bio = NULL;

	if (local_resolve(conf_dir, file, "key", &ca->key_path, err) != 0 ||
	    (bio = local_open(ca->key_path, "key", err)) == NULL)
		goto out;
	ca->key =
	    PEM_read_bio_PrivateKey(bio, NULL, local_no_passphrase, &encrypted);
	if (ca->key == NULL && encrypted) {
		ERR_clear_error();
		core_err_set(
		    err, "key",
		    "%s is encrypted: estrad reads only unencrypted keys "
		    "(protect the file with its mode and owner instead)",
		    ca->key_path);
		goto out;
	}
	if (ca->key == NULL) {
		core_err_set(err, "key", "no PEM private key in %s",
		             ca->key_path);
		core_ssl_errors_append(err->text, sizeof(err->text));
		goto out;
	}
	if (!X509_check_private_key(ca->cert, ca->key)) {
		core_err_set(err, "key", "key %s does not match certificate %s",
		             ca->key_path, ca->cert_path);
		core_ssl_errors_append(err->text, sizeof(err->text));
		goto out;
	}
	rc = 0;
out:
	BIO_free(bio);
	return rc;
}

/*
 * Reads every certificate of the chain file, in order, into a new stack
 * (free with sk_X509_pop_free(..., X509_free)).
 */
static STACK_OF(X509) *
local_read_certs(const char *path, struct core_err *err)
{
	STACK_OF(X509) *certs = NULL;
	BIO *bio;
	int n = 0;

	if ((bio = local_open(path, "chain", err)) == NULL)
		return NULL;
	if ((certs = core_certs_read_pem(bio, 1, &n)) == NULL) {
		core_err_set(err, "chain", "cannot read certificate %d of %s",
		             n + 1, path);
		core_ssl_errors_append(err->text, sizeof(err->text));
	}
	BIO_free(bio);
	return certs;
}

/*
 * Checks that chain runs from the issuing CA (first) to a self-signed root
 * (last), each certificate issued by the next, and that the CA verifies
 * against that root at the current time.
 */
static int
local_check_chain(struct local_ca *ca, struct core_err *err)
{
	STACK_OF(X509) *chain = ca->chain;
	X509_STORE_CTX *vctx = NULL;
	X509_STORE *store = NULL;
	char a[256], b[256];
	int i, n, rc = -1;
	X509 *root;

	n = sk_X509_num(chain);
	for (i = 0; i + 1 < n; i++) {
		X509 *x = sk_X509_value(chain, i),
		     *up = sk_X509_value(chain, i + 1);

		if (X509_self_signed(x, 0) == 1) {
			core_err_set(
			    err, "chain",
			    "chain %s goes on after the self-signed root %s: "
			    "list the issuing CA first, then its issuer, up to "
			    "the root, and nothing else",
			    ca->chain_path, local_subject_str(x, a, sizeof(a)));
			goto out;
		}
		if (X509_check_issued(up, x) != X509_V_OK) {
			core_err_set(
			    err, "chain",
			    "in chain %s, %s is not issued by the next "
			    "certificate %s: list the issuing CA first, then "
			    "its issuer, up to the root",
			    ca->chain_path, local_subject_str(x, a, sizeof(a)),
			    local_subject_str(up, b, sizeof(b)));
			goto out;
		}
	}
	root = sk_X509_value(chain, n - 1);
	if (X509_self_signed(root, 0) != 1) {
		ERR_clear_error();
		core_err_set(
		    err, "chain",
		    "chain %s does not end in a self-signed root: %s is issued "
		    "by another CA; add it",
		    ca->chain_path, local_subject_str(root, a, sizeof(a)));
		goto out;
	}
	if ((store = X509_STORE_new()) == NULL ||
	    !X509_STORE_add_cert(store, root) ||
	    (vctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(vctx, store, ca->cert, chain)) {
		core_err_set(err, "chain", "cannot verify chain %s",
		             ca->chain_path);
		core_ssl_errors_append(err->text, sizeof(err->text));
		goto out;
	}
	if (X509_verify_cert(vctx) != 1) {
		X509 *bad = X509_STORE_CTX_get_current_cert(vctx);

		ERR_clear_error();
		core_err_set(err, "chain",
		             "issuing CA does not verify against chain %s: %s "
		             "(certificate %s)",
		             ca->chain_path,
		             X509_verify_cert_error_string(
		                 X509_STORE_CTX_get_error(vctx)),
		             bad != NULL ? local_subject_str(bad, a, sizeof(a))
		                         : "?");
		goto out;
	}
	rc = 0;
out:
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(store);
	return rc;
}

/*
 * Loads the cacerts answer.  Without a chain file it is the issuing CA
 * alone; with one it is the file as given, the issuing CA prepended when
 * the file starts at its issuer, checked to reach a root.
 */
static int
local_load_chain(struct local_ca *ca, const char *conf_dir, const char *file,
                 struct core_err *err)
{
	int i, at = -1, rc = -1;

	if (file == NULL) {
		if ((ca->chain = sk_X509_new_null()) == NULL ||
		    !sk_X509_push(ca->chain, ca->cert)) {
			core_err_set(err, "chain", "out of memory");
			goto out;
		}
		X509_up_ref(ca->cert);
		rc = 0;
		goto out;
	}
	if (local_resolve(conf_dir, file, "chain", &ca->chain_path, err) != 0 ||
	    (ca->chain = local_read_certs(ca->chain_path, err)) == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(ca->chain) && at < 0; i++)
		if (X509_cmp(sk_X509_value(ca->chain, i), ca->cert) == 0)
			at = i;
	if (at > 0) {
		core_err_set(
		    err, "chain",
		    "chain %s lists the issuing CA as certificate %d: list it "
		    "first (or leave it out), then its issuer, up to the root",
		    ca->chain_path, at + 1);
		goto out;
	}
	if (at < 0) {
		if (!sk_X509_insert(ca->chain, ca->cert, 0)) {
			core_err_set(err, "chain", "out of memory");
			goto out;
		}
		X509_up_ref(ca->cert);
	}
	if (local_check_chain(ca, err) != 0)
		goto out;
	rc = 0;
out:
	return rc;
}

/* Returns the digest RFC 5480 pairs with an EC key of bits bits. */
static const char *
local_ec_digest(int bits)
{
	if (bits >= 521)
		return "SHA512";
	if (bits >= 384)
		return "SHA384";
	return "SHA256";
}

/*
 * Picks the signing digest for the CA key, makes one trial signature so
 * that a key OpenSSL cannot use fails now rather than at the first
 * enrollment, and encodes the fixed extensions.
 */
static int
local_prepare(struct local_ca *ca, struct core_err *err)
{
	static const unsigned char probe[] = "estrad local CA probe";
	unsigned char md[EVP_MAX_MD_SIZE], *sig = NULL;
	const ASN1_OCTET_STRING *skid;
	BASIC_CONSTRAINTS *bc = NULL;
	AUTHORITY_KEYID *akid = NULL;
	EVP_MD_CTX *mctx = NULL;
	unsigned int mdlen;
	size_t siglen = 0;
	int rc = -1;

	if (EVP_PKEY_is_a(ca->key, "RSA") || EVP_PKEY_is_a(ca->key, "RSA-PSS"))
		ca->md = "SHA256";
	else if (EVP_PKEY_is_a(ca->key, "EC"))
		/* Match the digest to the curve's strength (RFC 5480 4). */
		ca->md = local_ec_digest(EVP_PKEY_get_bits(ca->key));
	else if (EVP_PKEY_is_a(ca->key, "ED25519") ||
	         EVP_PKEY_is_a(ca->key, "ED448"))
		ca->md = NULL;
	else {
		core_err_set(
		    err, "key",
		    "key %s is of type %s: the local CA signs with RSA, "
		    "EC, Ed25519 or Ed448 keys",
		    ca->key_path, EVP_PKEY_get0_type_name(ca->key));
		goto out;
	}
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(mctx, NULL, ca->md, NULL, NULL, ca->key,
	                          NULL) <= 0 ||
	    EVP_DigestSign(mctx, NULL, &siglen, probe, sizeof(probe)) <= 0 ||
	    (sig = OPENSSL_malloc(siglen)) == NULL ||
	    EVP_DigestSign(mctx, sig, &siglen, probe, sizeof(probe)) <= 0) {
		core_err_set(err, "key", "key %s cannot sign with %s",
		             ca->key_path, ca->md != NULL ? ca->md : "EdDSA");
		core_ssl_errors_append(err->text, sizeof(err->text));
		goto out;
	}
	/*
	 * Setting up a signature looks the digest, the signature algorithm
	 * and the key's provider up by name in OpenSSL 3.0: a quarter of the
	 * local CA's CPU per certificate beyond the signature itself (make
	 * bench, perf).  A copy of a set-up context costs a few copies.
	 */
	if ((ca->sign_template = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(ca->sign_template, NULL, ca->md, NULL, NULL,
	                          ca->key, NULL) <= 0) {
		core_err_set(err, "key", "key %s cannot sign with %s",
		             ca->key_path, ca->md != NULL ? ca->md : "EdDSA");
		core_ssl_errors_append(err->text, sizeof(err->text));
		goto out;
	}
	/* A zeroed BASIC_CONSTRAINTS is CA:FALSE without pathLen. */
	if ((bc = BASIC_CONSTRAINTS_new()) != NULL)
		ca->bc_ext = X509V3_EXT_i2d(NID_basic_constraints, 1, bc);
	if (ca->bc_ext == NULL) {
		core_err_set(err, "cert", "cannot encode basicConstraints");
		core_ssl_errors_append(err->text, sizeof(err->text));
		goto out;
	}
	/* RFC 5280 requires a subjectKeyIdentifier in CA certificates; for
	 * one without, use the same SHA-1 key hash OpenSSL would have put
	 * there, which verifiers accept since there is nothing to compare. */
	if ((akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_new()) == NULL) {
		core_err_set(err, "cert", "out of memory");
		goto out;
	}
	if ((skid = X509_get0_subject_key_id(ca->cert)) != NULL) {
		if (!ASN1_OCTET_STRING_set(akid->keyid,
		                           ASN1_STRING_get0_data(skid),
		                           ASN1_STRING_length(skid))) {
			core_err_set(err, "cert", "out of memory");
			goto out;
		}
	} else if (!X509_pubkey_digest(ca->cert, EVP_sha1(), md, &mdlen) ||
	           !ASN1_OCTET_STRING_set(akid->keyid, md, (int)mdlen)) {
		core_err_set(err, "cert", "cannot hash the CA public key");
		core_ssl_errors_append(err->text, sizeof(err->text));
		goto out;
	}
	if ((ca->aki_ext = X509V3_EXT_i2d(NID_authority_key_identifier, 0,
	                                  akid)) == NULL) {
		core_err_set(err, "cert",
		             "cannot encode authorityKeyIdentifier");
		core_ssl_errors_append(err->text, sizeof(err->text));
		goto out;
	}
	rc = 0;
out:
	AUTHORITY_KEYID_free(akid);
	BASIC_CONSTRAINTS_free(bc);
	OPENSSL_free(sig);
	EVP_MD_CTX_free(mctx);
	return rc;
}

/* Reads "check_signatures" (boolean, default false). */
static int
local_conf_check_signatures(struct local_ca *ca, const json_t *conf,
                            struct core_err *err)
{
	const json_t *v = json_object_get(conf, "check_signatures");

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return core_err_set(err, "check_signatures",
		                    "must be true or false, not %s",
		                    core_conf_type_name(v));
	ca->check_signatures = json_is_true(v);
	return 0;
}

/* Reads "delay_ms" (0-60000, default 0). */
static int
local_conf_delay(struct local_ca *ca, const json_t *conf, struct core_err *err)
{
	long ms = 0;

	if (core_conf_int(conf, "delay_ms", 0, 60000, &ms, err) != 0)
		return -1;
	ca->delay_ms = (unsigned int)ms;
	return 0;
}

static int
local_configure(void *p, const json_t *conf, const char *conf_dir,
                struct core_err *err)
{
	const char *cert_file, *key_file, *chain_file;
	struct local_ca *ca = p;
	int rc = -1;

	/* Messages append the OpenSSL queue: start it empty. */
	ERR_clear_error();
	if (!json_is_object(conf)) {
		core_err_set(err, "", "\"ca\" must be an object, not %s",
		             core_conf_type_name(conf));
		goto out;
	}
	if (core_conf_check_keys(conf, "", local_conf_keys, err) != 0 ||
	    local_conf_file(conf, "cert", 1, "the issuing CA certificate, PEM",
	                    &cert_file, err) != 0 ||
	    local_conf_file(conf, "key", 1, "the issuing CA private key, PEM",
	                    &key_file, err) != 0 ||
	    local_conf_file(conf, "chain", 0, "the CA chain, PEM", &chain_file,
	                    err) != 0 ||
	    local_profile(ca, json_object_get(conf, "profile"), err) != 0 ||
	    local_conf_check_signatures(ca, conf, err) != 0 ||
	    local_conf_delay(ca, conf, err) != 0 ||
	    local_load_cert(ca, conf_dir, cert_file, err) != 0 ||
	    local_load_key(ca, conf_dir, key_file, err) != 0 ||
	    local_load_chain(ca, conf_dir, chain_file, err) != 0 ||
	    local_prepare(ca, err) != 0)
		goto out;
	rc = 0;
out:
	return rc;
}

static void
local_unconfigure(void *p)
{
	struct local_ca *ca = p;

	X509_EXTENSION_free(ca->bc_ext);
	X509_EXTENSION_free(ca->ku_ext);
	X509_EXTENSION_free(ca->eku_ext);
	X509_EXTENSION_free(ca->aki_ext);
	EVP_MD_CTX_free(ca->sign_template);
	sk_X509_pop_free(ca->chain, X509_free);
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	free(ca->cert_path);
	free(ca->key_path);
	free(ca->chain_path);
	memset(ca, 0, sizeof(*ca));
}

/*
 * Checks at issuance time that the CA certificate is still valid: a
 * long-running estrad outlives the check configure made.
 */
static int
local_ca_current(const struct local_ca *ca, time_t now, struct local_fault *f)
{
	char when[32], now_s[32];
	int rc = -1;

	if (X509_cmp_time(X509_get0_notBefore(ca->cert), &now) > 0) {
		local_fault_set(
		    f, CA_MISCONFIGURED, LOCAL_HINT_KEY,
		    "signing failed: the CA certificate is not valid before %s "
		    "(now %s; clock skew?)",
		    core_time_asn1(X509_get0_notBefore(ca->cert), when,
		                   sizeof(when)),
		    core_time_epoch(now, now_s, sizeof(now_s)));
		goto out;
	}
	if (X509_cmp_time(X509_get0_notAfter(ca->cert), &now) <= 0) {
		local_fault_set(
		    f, CA_MISCONFIGURED, LOCAL_HINT_RENEW,
		    "signing failed: the CA certificate expired on %s (now %s; "
		    "clock skew?)",
		    core_time_asn1(X509_get0_notAfter(ca->cert), when,
		                   sizeof(when)),
		    core_time_epoch(now, now_s, sizeof(now_s)));
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/*
 * Copies the CSR's SubjectPublicKeyInfo into x as it is.  X509_set_pubkey()
 * would re-encode the key through OpenSSL 3's encoder machinery, which
 * cost 15-25% of estrad's CPU per enrollment in `make bench`; the bytes
 * are already DER and only need copying.  Falls back to X509_set_pubkey()
 * for parameter types it does not copy.  Returns 0 or -1.
 */
static int
local_copy_pubkey(X509 *x, X509_REQ *csr, EVP_PKEY *pubkey)
{
	X509_PUBKEY *from = X509_REQ_get_X509_PUBKEY(csr);
	const unsigned char *key;
	const ASN1_OBJECT *param_obj;
	const void *param;
	ASN1_OBJECT *alg, *alg_copy = NULL;
	unsigned char *key_copy = NULL;
	void *param_copy = NULL;
	X509_ALGOR *algor;
	int keylen, param_type, rc = -1;

	if (from == NULL ||
	    !X509_PUBKEY_get0_param(&alg, &key, &keylen, &algor, from) ||
	    keylen <= 0)
		goto fallback;
	X509_ALGOR_get0(&param_obj, &param_type, &param, algor);
	(void)param_obj;
	if (param_type == V_ASN1_OBJECT)
		param_copy = OBJ_dup(param);
	else if (param_type == V_ASN1_SEQUENCE)
		param_copy = ASN1_STRING_dup(param);
	else if (param_type != V_ASN1_NULL && param_type != V_ASN1_UNDEF)
		goto fallback;
	if ((param_type == V_ASN1_OBJECT || param_type == V_ASN1_SEQUENCE) &&
	    param_copy == NULL)
		goto out;
	if ((alg_copy = OBJ_dup(alg)) == NULL ||
	    (key_copy = OPENSSL_memdup(key, (size_t)keylen)) == NULL)
		goto out;
	if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), alg_copy,
	                            param_type, param_copy, key_copy, keylen))
		goto out;
	/* Owned by the certificate now. */
	alg_copy = NULL;
	param_copy = NULL;
	key_copy = NULL;
	rc = 0;
	goto out;
fallback:
	rc = X509_set_pubkey(x, pubkey) ? 0 : -1;
out:
	if (param_copy != NULL) {
		if (param_type == V_ASN1_OBJECT)
			ASN1_OBJECT_free(param_copy);
		else
			ASN1_STRING_free(param_copy);
	}
	ASN1_OBJECT_free(alg_copy);
	OPENSSL_free(key_copy);
	return rc;
}

/*
 * Returns in *out a new subjectAltName extension (free with
 * X509_EXTENSION_free) re-encoded from the one the CSR requests, or NULL
 * when it requests none.  It is the only requested extension honoured:
 * everything else comes from the profile, so a CSR cannot ask for
 * basicConstraints CA:TRUE or extra key usages.
 */
static int
local_csr_san(X509_REQ *csr, int critical, X509_EXTENSION **out,
              struct local_fault *f)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *names = NULL;
	int i, rc = -1;

	*out = NULL;
	if ((exts = X509_REQ_get_extensions(csr)) == NULL &&
	    ERR_peek_error() != 0) {
		local_fault_set(f, CA_REJECTED, NULL,
		                "CSR refused: its extensionRequest attribute "
		                "does not parse");
		goto out;
	}
	if ((i = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1)) < 0) {
		rc = 0;
		goto out;
	}
	if (X509v3_get_ext_by_NID(exts, NID_subject_alt_name, i) >= 0) {
		local_fault_set(f, CA_REJECTED, NULL,
		                "CSR refused: it requests subjectAltName "
		                "twice");
		goto out;
	}
	if ((names = X509V3_EXT_d2i(X509v3_get_ext(exts, i))) == NULL ||
	    sk_GENERAL_NAME_num(names) == 0) {
		local_fault_set(f, CA_REJECTED, NULL,
		                "CSR refused: its subjectAltName does not "
		                "parse or is empty");
		goto out;
	}
	*out = X509V3_EXT_i2d(NID_subject_alt_name, critical, names);
	if (*out == NULL) {
		local_fault_set(f, CA_MISCONFIGURED, LOCAL_HINT_KEY,
		                "signing failed: cannot encode subjectAltName");
		goto out;
	}
	rc = 0;
out:
	GENERAL_NAMES_free(names);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

/* Sets a fresh random serial number on x (see LOCAL_SERIAL_BYTES). */
static int
local_serial(X509 *x)
{
	unsigned char buf[LOCAL_SERIAL_BYTES];
	ASN1_INTEGER *serial = NULL;
	BIGNUM *bn = NULL;
	int i, rc = -1;

	if ((bn = BN_new()) == NULL)
		goto out;
	/* Fewer than 64 bits happens with probability 2^-95; retrying keeps
	 * the promise exact rather than almost. */
	for (i = 0; i < LOCAL_SERIAL_TRIES; i++) {
		if (RAND_bytes(buf, sizeof(buf)) != 1)
			goto out;
		buf[0] &= 0x7f;
		if (BN_bin2bn(buf, sizeof(buf), bn) == NULL)
			goto out;
		if (BN_num_bits(bn) >= LOCAL_SERIAL_MIN_BITS)
			break;
	}
	if (i == LOCAL_SERIAL_TRIES)
		goto out;
	if ((serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_set_serialNumber(x, serial))
		goto out;
	rc = 0;
out:
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	return rc;
}

/*
 * Returns a new copy of t (free with ASN1_TIME_free) in the encoding RFC
 * 5280 asks for, UTCTime through 2049, since a CA certificate may use
 * GeneralizedTime where it should not.
 */
static ASN1_TIME *
local_time_copy(const ASN1_TIME *t)
{
	ASN1_TIME *rc = NULL, *copy;

	if ((copy = ASN1_STRING_dup(t)) == NULL)
		goto out;
	if (!ASN1_TIME_normalize(copy)) {
		ASN1_TIME_free(copy);
		goto out;
	}
	rc = copy;
out:
	return rc;
}

/*
 * Sets x's validity: from LOCAL_SKEW_SECONDS before now for the days of the
 * profile, both ends kept inside the CA certificate's own validity so that
 * the certificate never outlives its issuer.
 */
static int
local_validity(const struct local_ca *ca, X509 *x, time_t now)
{
	const ASN1_TIME *ca_from = X509_get0_notBefore(ca->cert);
	const ASN1_TIME *ca_until = X509_get0_notAfter(ca->cert);
	ASN1_TIME *from = NULL, *until = NULL, *t;
	int cmp, rc = -1;

	if ((from = ASN1_TIME_adj(NULL, now, 0, -LOCAL_SKEW_SECONDS)) == NULL ||
	    (until = ASN1_TIME_adj(NULL, now, (int)ca->days, 0)) == NULL)
		goto out;
	if ((cmp = ASN1_TIME_compare(from, ca_from)) == -2)
		goto out;
	if (cmp < 0) {
		if ((t = local_time_copy(ca_from)) == NULL)
			goto out;
		ASN1_TIME_free(from);
		from = t;
	}
	if ((cmp = ASN1_TIME_compare(until, ca_until)) == -2)
		goto out;
	if (cmp > 0) {
		if ((t = local_time_copy(ca_until)) == NULL)
			goto out;
		ASN1_TIME_free(until);
		until = t;
	}
	if (!X509_set1_notBefore(x, from) || !X509_set1_notAfter(x, until))
		goto out;
	rc = 0;
out:
	ASN1_TIME_free(from);
	ASN1_TIME_free(until);
	return rc;
}

/*
 * Issues a certificate for csr into a new *out (free with X509_free).
 * Only reads ca, so any number of threads may run it at once.
 */
static int
local_issue(const struct local_ca *ca, X509_REQ *csr, X509 **out,
            struct local_fault *f)
{
	X509_EXTENSION *san = NULL, *skid = NULL;
	EVP_MD_CTX *mctx = NULL;
	X509_NAME *subject;
	EVP_PKEY *pubkey;
	X509V3_CTX v3;
	X509 *x = NULL;
	time_t now;
	int empty, rc = -1;

	*out = NULL;
	now = time(NULL);
	if (csr == NULL) {
		local_fault_set(f, CA_MISCONFIGURED, NULL,
		                "signing failed: the request has no CSR "
		                "(estrad bug)");
		goto out;
	}
	if (local_ca_current(ca, now, f) != 0)
		goto out;
	if ((pubkey = X509_REQ_get0_pubkey(csr)) == NULL) {
		local_fault_set(f, CA_REJECTED, NULL,
		                "CSR refused: its public key does not parse");
		goto out;
	}
	subject = X509_REQ_get_subject_name(csr);
	/* RFC 5280 4.2.1.6: with an empty subject the identity is in the
	 * subjectAltName, which must then be critical. */
	empty = X509_NAME_entry_count(subject) == 0;
	if (local_csr_san(csr, empty, &san, f) != 0)
		goto out;
	if (empty && san == NULL) {
		local_fault_set(f, CA_REJECTED, NULL,
		                "CSR refused: it has neither a subject nor a "
		                "subjectAltName");
		goto out;
	}
	if ((x = X509_new()) == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    local_serial(x) != 0 ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
	    !X509_set_subject_name(x, subject) ||
	    local_copy_pubkey(x, csr, pubkey) != 0 ||
	    local_validity(ca, x, now) != 0) {
		local_fault_set(
		    f, CA_MISCONFIGURED, LOCAL_HINT_KEY,
		    "signing failed: cannot fill in the certificate");
		goto out;
	}
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, ca->cert, x, NULL, NULL, 0);
	if ((skid = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_key_identifier,
	                                "hash")) == NULL ||
	    !X509_add_ext(x, ca->bc_ext, -1) ||
	    !X509_add_ext(x, ca->ku_ext, -1) ||
	    !X509_add_ext(x, ca->eku_ext, -1) || !X509_add_ext(x, skid, -1) ||
	    !X509_add_ext(x, ca->aki_ext, -1) ||
	    (san != NULL && !X509_add_ext(x, san, -1))) {
		local_fault_set(f, CA_MISCONFIGURED, LOCAL_HINT_KEY,
		                "signing failed: cannot add the extensions");
		goto out;
	}
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_MD_CTX_copy_ex(mctx, ca->sign_template) != 1 ||
	    X509_sign_ctx(x, mctx) <= 0) {
		local_fault_set(f, CA_MISCONFIGURED, LOCAL_HINT_KEY,
		                "signing failed: cannot sign with the CA key");
		goto out;
	}
	/*
	 * A signature that does not verify (a faulty key, provider or
	 * hardware) must never reach a client.  OpenSSL's RSA signing
	 * already checks its CRT result before returning it (the fault that
	 * would leak the key), so a second check is optional: it costs one
	 * verification per certificate, 40% of the crypto floor of a P-256
	 * enrollment (make bench).
	 */
	if (ca->check_signatures &&
	    X509_verify(x, X509_get0_pubkey(ca->cert)) != 1) {
		local_fault_set(
		    f, CA_MISCONFIGURED, LOCAL_HINT_KEY,
		    "signing failed: the new signature does not verify with "
		    "the CA certificate");
		goto out;
	}
	*out = x;
	x = NULL;
	rc = 0;
out:
	EVP_MD_CTX_free(mctx);
	X509_EXTENSION_free(skid);
	X509_EXTENSION_free(san);
	X509_free(x);
	return rc;
}

/*
 * Serves CA_OP_ENROLL and CA_OP_REENROLL alike: ra applied the reenroll
 * identity rule before the call.  Completes the call before returning;
 * ca.c delivers the completion later from the loop.
 */
static void
local_enroll(void *p, struct ca_call *call)
{
	struct local_fault f;
	X509 *x = NULL;
	int rc = -1;

	/* The queue is per thread; start empty so faults show only ours. */
	ERR_clear_error();
	if (local_issue(p, call->csr, &x, &f) != 0)
		goto out;
	if ((call->result.chain = sk_X509_new_null()) == NULL ||
	    !sk_X509_push(call->result.chain, x)) {
		local_fault_set(&f, CA_MISCONFIGURED, NULL,
		                "signing failed: out of memory");
		goto out;
	}
	x = NULL;
	call->result.outcome = CA_ISSUED;
	rc = 0;
out:
	X509_free(x);
	if (rc != 0) {
		/* Only an ISSUED answer carries certificates. */
		sk_X509_free(call->result.chain);
		call->result.chain = NULL;
		local_fail(call, &f);
	} else
		ca_call_done_after(call, ((struct local_ca *)p)->delay_ms);
}

/* Answers with new references to the chain loaded at configure time. */
static void
local_cacerts(void *p, struct ca_call *call)
{
	struct local_ca *ca = p;
	struct local_fault f;
	int rc = -1;

	ERR_clear_error();
	if ((call->result.chain = X509_chain_up_ref(ca->chain)) == NULL) {
		local_fault_set(&f, CA_MISCONFIGURED, NULL,
		                "cacerts failed: out of memory");
		goto out;
	}
	call->result.outcome = CA_ISSUED;
	rc = 0;
out:
	if (rc != 0)
		local_fail(call, &f);
	else
		ca_call_done(call);
}

/*
 * Checks that every certificate of the chain is valid now and that the key
 * still matches; a certificate close to its end is logged as a warning but
 * still healthy.
 */
static int
local_check_health(const struct local_ca *ca, const struct ca_call *call,
                   struct local_fault *f)
{
	char name[256], when[32], now_s[32];
	time_t now = time(NULL);
	int i, rc = -1;
	X509 *x;

	for (i = 0; i < sk_X509_num(ca->chain); i++) {
		x = sk_X509_value(ca->chain, i);
		if (X509_cmp_time(X509_get0_notBefore(x), &now) > 0) {
			local_fault_set(
			    f, CA_MISCONFIGURED, LOCAL_HINT_KEY,
			    "health check failed: CA certificate %s is not "
			    "valid before %s (now %s; clock skew?)",
			    local_subject_str(x, name, sizeof(name)),
			    core_time_asn1(X509_get0_notBefore(x), when,
			                   sizeof(when)),
			    core_time_epoch(now, now_s, sizeof(now_s)));
			goto out;
		}
		if (X509_cmp_time(X509_get0_notAfter(x), &now) <= 0) {
			local_fault_set(
			    f, CA_MISCONFIGURED, LOCAL_HINT_RENEW,
			    "health check failed: CA certificate %s expired on "
			    "%s (now %s; clock skew?)",
			    local_subject_str(x, name, sizeof(name)),
			    core_time_asn1(X509_get0_notAfter(x), when,
			                   sizeof(when)),
			    core_time_epoch(now, now_s, sizeof(now_s)));
			goto out;
		}
		local_warn_expiry(call, x, now);
	}
	if (!X509_check_private_key(ca->cert, ca->key)) {
		local_fault_set(
		    f, CA_MISCONFIGURED, LOCAL_HINT_KEY,
		    "health check failed: the CA key does not match the CA "
		    "certificate");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/* --doctor: ISSUED with an empty cause when healthy. */
static void
local_health(void *p, struct ca_call *call)
{
	struct local_fault f;

	ERR_clear_error();
	if (local_check_health(p, call, &f) != 0)
		local_fail(call, &f);
	else {
		call->result.outcome = CA_ISSUED;
		ca_call_done(call);
	}
}

const struct ca_backend ca_local_backend = {
    "local",                 /* name */
    LOCAL_CAPS,              /* caps */
    sizeof(struct local_ca), /* priv_size */
    local_configure,         /* configure */
    local_enroll,            /* enroll */
    NULL,                    /* poll */
    local_cacerts,           /* cacerts */
    local_health,            /* health */
    NULL,                    /* cancel */
    local_unconfigure,       /* unconfigure */
    NULL,                    /* start: nothing runs in the background */
    NULL,                    /* stop */
    NULL,                    /* own_certs: none */
};
