/*
 * dogtag_json.c: readers of Dogtag's JSON answers and of the PKCS#7 and PEM
 * it carries (see dogtag_json.h).  JSON goes through jansson, certificates
 * and base64 through OpenSSL; nothing here parses by hand beyond picking
 * the last segment of a URL.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "ca_plugins/dogtag_json.h"
#include "core/certs.h"

static const char *const dogtag_status_names[DOGTAG_STATUS__MAX] = {
    "unknown",  "begin",    "pending",  "svc_pending",
    "approved", "complete", "rejected", "canceled",
};

enum dogtag_status
dogtag_status_from(const char *s)
{
	size_t i;

	if (s == NULL)
		return DOGTAG_STATUS_UNKNOWN;
	for (i = 1; i < DOGTAG_STATUS__MAX; i++)
		if (strcmp(s, dogtag_status_names[i]) == 0)
			return (enum dogtag_status)i;
	return DOGTAG_STATUS_UNKNOWN;
}

const char *
dogtag_status_name(enum dogtag_status status)
{
	if ((unsigned int)status >= DOGTAG_STATUS__MAX)
		return "unknown";
	return dogtag_status_names[status];
}

/*
 * Copies the JSON string v to out (size outlen), cut to fit, control bytes
 * and NULs turned into blanks.  Leaves out "" when v is no string.
 */
static void
dj_copy_text(const json_t *v, char *out, size_t outlen)
{
	const char *s = json_string_value(v);
	size_t i, n;

	out[0] = '\0';
	if (s == NULL || outlen == 0)
		return;
	n = json_string_length(v);
	if (n > outlen - 1)
		n = outlen - 1;
	for (i = 0; i < n; i++)
		out[i] =
		    (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
	out[n] = '\0';
}

/*
 * Copies an id member (a string, or an integer as some servers write
 * decimal ids) to out.  Returns 0 when absent or valid, -1 when present
 * but no Dogtag id.
 */
static int
dj_copy_id(const json_t *v, char *out, size_t outlen)
{
	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return -1;
		snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) >= outlen ||
	    strlen(json_string_value(v)) != json_string_length(v) ||
	    !dogtag_id_valid(json_string_value(v)))
		return -1;
	snprintf(out, outlen, "%s", json_string_value(v));
	return 0;
}

/* Parses buf as a JSON object; returns a new reference or NULL. */
static json_t *
dj_load_object(const char *buf, size_t len)
{
	json_error_t jerr;
	json_t *root;

	if (buf == NULL || len == 0)
		return NULL;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root != NULL && !json_is_object(root)) {
		json_decref(root);
		root = NULL;
	}
	return root;
}

int
dogtag_id_valid(const char *s)
{
	size_t i, n;

	if (s == NULL)
		return 0;
	n = strlen(s);
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (n == 2 || n > DOGTAG_ID_MAX - 1)
			return 0;
		for (i = 2; i < n; i++)
			if (!isxdigit((unsigned char)s[i]))
				return 0;
		return 1;
	}
	if (n == 0 || n > DOGTAG_ID_MAX - 1)
		return 0;
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

int
dogtag_id_from_url(const char *url, size_t len, char *out, size_t outlen)
{
	size_t end = len, start;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (url == NULL)
		return -1;
	/* A query or fragment is no part of the path. */
	for (start = 0; start < len; start++)
		if (url[start] == '?' || url[start] == '#' ||
		    url[start] == '\0') {
			end = start;
			break;
		}
	while (end > 0 && url[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && url[start - 1] != '/')
		start--;
	if (end - start == 0 || end - start >= outlen)
		return -1;
	memcpy(out, url + start, end - start);
	out[end - start] = '\0';
	if (!dogtag_id_valid(out)) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* Reads one CertRequestInfo object into out. */
static int
dj_request_entry(const json_t *e, struct dogtag_request_info *out)
{
	const json_t *v;
	int rc = -1;

	if (!json_is_object(e))
		goto out;
	if (!json_is_string(v = json_object_get(e, "requestStatus")))
		goto out;
	dj_copy_text(v, out->status_text, sizeof(out->status_text));
	out->status = dogtag_status_from(json_string_value(v));
	if (dj_copy_id(json_object_get(e, "requestID"), out->request_id,
	               sizeof(out->request_id)) != 0 ||
	    dj_copy_id(json_object_get(e, "certId"), out->cert_id,
	               sizeof(out->cert_id)) != 0)
		goto out;
	/* Servers before 11.2 name the request only by its URL (v1). */
	if (out->request_id[0] == '\0' &&
	    json_is_string(v = json_object_get(e, "requestURL")))
		(void)dogtag_id_from_url(json_string_value(v),
		                         json_string_length(v), out->request_id,
		                         sizeof(out->request_id));
	if (out->cert_id[0] == '\0' &&
	    json_is_string(v = json_object_get(e, "certURL")))
		(void)dogtag_id_from_url(json_string_value(v),
		                         json_string_length(v), out->cert_id,
		                         sizeof(out->cert_id));
	dj_copy_text(json_object_get(e, "requestType"), out->request_type,
	             sizeof(out->request_type));
	dj_copy_text(json_object_get(e, "operationResult"),
	             out->operation_result, sizeof(out->operation_result));
	dj_copy_text(json_object_get(e, "errorMessage"), out->error_message,
	             sizeof(out->error_message));
	rc = 0;
out:
	return rc;
}

int
dogtag_json_request_info(const char *buf, size_t len,
                         struct dogtag_request_info *out)
{
	json_t *root, *entries, *total;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((root = dj_load_object(buf, len)) == NULL)
		goto out;
	entries = json_object_get(root, "entries");
	if (entries != NULL) {
		if (!json_is_array(entries) || json_array_size(entries) == 0)
			goto out;
		out->total = json_array_size(entries);
		total = json_object_get(root, "total");
		if (json_is_integer(total) && json_integer_value(total) > 0)
			out->total = (size_t)json_integer_value(total);
		rc = dj_request_entry(json_array_get(entries, 0), out);
	} else {
		out->total = 1;
		rc = dj_request_entry(root, out);
	}
out:
	json_decref(root);
	if (rc != 0) {
		memset(out, 0, sizeof(*out));
		rc = -1;
	}
	return rc;
}

int
dogtag_json_exception(const char *buf, size_t len, struct dogtag_exception *out)
{
	const json_t *cls, *msg, *code, *error;
	const char *dot;
	json_t *root;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((root = dj_load_object(buf, len)) == NULL)
		goto out;
	cls = json_object_get(root, "ClassName");
	msg = json_object_get(root, "Message");
	code = json_object_get(root, "Code");
	error = json_object_get(root, "error");
	if (!json_is_string(cls) && !json_is_string(msg) &&
	    !json_is_string(error))
		goto out;
	if (json_is_string(cls)) {
		/* "com.netscape.certsrv.base.BadRequestException" is
		 * BadRequestException to operators. */
		dot = strrchr(json_string_value(cls), '.');
		if (dot != NULL && dot[1] != '\0') {
			json_t *tmp = json_string(dot + 1);

			dj_copy_text(tmp, out->class_name,
			             sizeof(out->class_name));
			json_decref(tmp);
		} else
			dj_copy_text(cls, out->class_name,
			             sizeof(out->class_name));
	}
	if (json_is_integer(code))
		out->code = (long)json_integer_value(code);
	if (json_is_string(msg))
		dj_copy_text(msg, out->message, sizeof(out->message));
	if (json_is_string(error)) {
		const json_t *m = json_object_get(root, "message");

		out->v1_disabled =
		    strstr(json_string_value(error), "disabled") != NULL;
		dj_copy_text(json_is_string(m) ? m : error, out->message,
		             sizeof(out->message));
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int
dogtag_json_info(const char *buf, size_t len, struct dogtag_info *out)
{
	json_t *root;

	memset(out, 0, sizeof(*out));
	if ((root = dj_load_object(buf, len)) == NULL)
		return -1;
	dj_copy_text(json_object_get(root, "Name"), out->name,
	             sizeof(out->name));
	dj_copy_text(json_object_get(root, "Version"), out->version,
	             sizeof(out->version));
	json_decref(root);
	return 0;
}

int
dogtag_json_account(const char *buf, size_t len, struct dogtag_account *out)
{
	json_t *root, *roles;

	memset(out, 0, sizeof(*out));
	if ((root = dj_load_object(buf, len)) == NULL)
		return -1;
	dj_copy_text(json_object_get(root, "id"), out->id, sizeof(out->id));
	dj_copy_text(json_object_get(root, "FullName"), out->full_name,
	             sizeof(out->full_name));
	if (json_is_array(roles = json_object_get(root, "Roles")))
		out->nroles = json_array_size(roles);
	json_decref(root);
	return 0;
}

int
dogtag_json_review(const char *buf, size_t len, struct dogtag_review *out)
{
	json_t *root, *nonce;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((root = dj_load_object(buf, len)) == NULL)
		goto out;
	if (dj_copy_id(json_object_get(root, "requestId"), out->request_id,
	               sizeof(out->request_id)) != 0)
		goto out;
	out->status = dogtag_status_from(
	    json_string_value(json_object_get(root, "requestStatus")));
	nonce = json_object_get(root, "nonce");
	out->has_nonce =
	    (json_is_string(nonce) && json_string_length(nonce) > 0) ||
	    json_is_integer(nonce);
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* Returns a new copy of the JSON string v (NULs refused), or NULL. */
int
dogtag_json_profile(const char *buf, size_t len, struct dogtag_profile *out)
{
	json_t *root, *enabled;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((root = dj_load_object(buf, len)) == NULL)
		goto out;
	/* A missing "enabled" would read as disabled: refuse it instead. */
	if (!json_is_boolean(enabled = json_object_get(root, "enabled")))
		goto out;
	out->enabled = json_is_true(enabled);
	dj_copy_text(json_object_get(root, "enabledBy"), out->enabled_by,
	             sizeof(out->enabled_by));
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

static char *
dj_dup_string(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	char *copy;

	if (s == NULL || n == 0 || strlen(s) != n)
		return NULL;
	if ((copy = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(copy, s, n + 1);
	return copy;
}

int
dogtag_json_cert_data(const char *buf, size_t len, struct dogtag_cert_data *out)
{
	json_t *root;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((root = dj_load_object(buf, len)) == NULL)
		goto out;
	if (dj_copy_id(json_object_get(root, "id"), out->id, sizeof(out->id)) !=
	    0)
		goto out;
	dj_copy_text(json_object_get(root, "Status"), out->status,
	             sizeof(out->status));
	out->encoded = dj_dup_string(json_object_get(root, "Encoded"));
	out->pkcs7 = dj_dup_string(json_object_get(root, "PKCS7CertChain"));
	if (out->encoded == NULL && out->pkcs7 == NULL)
		goto out;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

void
dogtag_cert_data_cleanup(struct dogtag_cert_data *cd)
{
	if (cd == NULL)
		return;
	free(cd->encoded);
	free(cd->pkcs7);
	cd->encoded = NULL;
	cd->pkcs7 = NULL;
}

char *
dogtag_json_enroll_body(const char *profile, X509_REQ *csr)
{
	unsigned char *der = NULL;
	char *b64 = NULL, *rc = NULL;
	json_t *body = NULL;
	int n;

	if (profile == NULL || csr == NULL ||
	    (n = i2d_X509_REQ(csr, &der)) <= 0 || n > INT_MAX / 4 - 4)
		goto out;
	/* One line of base64: EVP_EncodeBlock adds no
	 * line breaks. */
	if ((b64 = malloc(((size_t)n + 2) / 3 * 4 + 1)) == NULL)
		goto out;
	EVP_EncodeBlock((unsigned char *)b64, der, n);
	body = json_pack(
	    "{s:s, s:b, s:[{s:s, s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}]}], "
	    "s:[], s:{s:[]}}",
	    "ProfileID", profile, "Renewal", 0, "Input", "id", "i1", "ClassID",
	    "certReqInputImpl", "Name", "Certificate Request Input",
	    "Attribute", "name", "cert_request_type", "Value", "pkcs10", "name",
	    "cert_request", "Value", b64, "Output", "Attributes", "Attribute");
	if (body == NULL)
		goto out;
	rc = json_dumps(body, JSON_COMPACT);
out:
	ERR_clear_error();
	json_decref(body);
	free(b64);
	OPENSSL_free(der);
	return rc;
}

/* Copies the certificates of p7 into a new stack, or NULL when none. */
static STACK_OF(X509) *
dj_pkcs7_certs(PKCS7 *p7)
{
	STACK_OF(X509) *certs = sk_X509_new_null();

	if (certs != NULL && core_certs_from_pkcs7(p7, certs) <= 0) {
		sk_X509_pop_free(certs, X509_free);
		certs = NULL;
	}
	return certs;
}

/*
 * Decodes base64 text with any line breaks and blanks (PKCS7CertChain)
 * into a new buffer (free with free) of *outlen bytes, or NULL.
 */
static unsigned char *
dj_base64_decode(const unsigned char *in, size_t len, size_t *outlen)
{
	EVP_ENCODE_CTX *ctx = NULL;
	unsigned char *out = NULL, *rc = NULL;
	int n = 0, fin = 0;

	if (len == 0 || len > INT_MAX / 2)
		goto out;
	if ((ctx = EVP_ENCODE_CTX_new()) == NULL ||
	    (out = malloc(len / 4 * 3 + 80)) == NULL)
		goto out;
	EVP_DecodeInit(ctx);
	if (EVP_DecodeUpdate(ctx, out, &n, in, (int)len) < 0 ||
	    EVP_DecodeFinal(ctx, out + n, &fin) < 0 || n + fin <= 0)
		goto out;
	*outlen = (size_t)(n + fin);
	rc = out;
	out = NULL;
out:
	EVP_ENCODE_CTX_free(ctx);
	free(out);
	return rc;
}

STACK_OF(X509) *
dogtag_certs_from_pkcs7(const unsigned char *buf, size_t len)
{
	STACK_OF(X509) *rc = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t i = 0, derlen = 0;
	PKCS7 *p7 = NULL;
	BIO *bio = NULL;

	if (buf == NULL || len == 0 || len > (size_t)INT_MAX / 2)
		goto out;
	while (i < len && isspace(buf[i]))
		i++;
	if (i == len)
		goto out;
	if (buf[i] == 0x30) {
		p = buf + i;
		p7 = d2i_PKCS7(NULL, &p, (long)(len - i));
	} else if (buf[i] == '-') {
		if ((bio = BIO_new_mem_buf(buf + i, (int)(len - i))) == NULL)
			goto out;
		p7 = PEM_read_bio_PKCS7(bio, NULL, NULL, NULL);
	} else {
		if ((der = dj_base64_decode(buf + i, len - i, &derlen)) ==
		        NULL ||
		    derlen > LONG_MAX)
			goto out;
		p = der;
		p7 = d2i_PKCS7(NULL, &p, (long)derlen);
	}
	rc = dj_pkcs7_certs(p7);
out:
	ERR_clear_error();
	PKCS7_free(p7);
	BIO_free(bio);
	free(der);
	return rc;
}

STACK_OF(X509) *
dogtag_certs_from_pem(const char *buf, size_t len)
{
	STACK_OF(X509) *certs = NULL;
	BIO *bio;

	if (buf == NULL || len == 0 || len > (size_t)INT_MAX ||
	    (bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
		return NULL;
	certs = core_certs_read_pem(bio, 0, NULL);
	ERR_clear_error();
	BIO_free(bio);
	return certs;
}

int
dogtag_body_is_html(const char *buf, size_t len, const char *content_type)
{
	size_t i = 0;

	if (content_type != NULL &&
	    strncasecmp(content_type, "text/html", 9) == 0)
		return 1;
	while (buf != NULL && i < len && isspace((unsigned char)buf[i]))
		i++;
	return buf != NULL && i < len && buf[i] == '<';
}
