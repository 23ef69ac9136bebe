/*
 * pop.c: proof-of-possession linking (see pop.h).  The linking value is
 * base64 decoded and compared with the channel binding in constant time
 *.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "ra/pop.h"

/* RFC 7894 estIdentityLinking. */
#define POP_OID_IDENTITY_LINKING "1.2.840.113549.1.9.16.2.58"

/* A DirectoryString holds at most 255 characters (PKCS#9). */
#define POP_VALUE_MAX 255

const char *
ra_pop_mode_name(enum ra_pop_mode mode)
{
	switch (mode) {
	case RA_POP_OFF:
		return "off";
	case RA_POP_REQUIRED:
		return "required";
	default:
		return "optional";
	}
}

static int pop_fail(struct ra_pop_result *r, int status, const char *hint,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
pop_fail(struct ra_pop_result *r, int status, const char *hint, const char *fmt,
         ...)
{
	va_list ap;

	r->status = status;
	snprintf(r->hint, sizeof(r->hint), "%s", hint != NULL ? hint : "");
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Copies the single string value of the attribute obj of csr into buf
 * (size len, NUL-terminated) and returns its length; 0 when the attribute
 * is absent, -1 when it is malformed (several, not a string, too long).
 */
static int
pop_attribute(X509_REQ *csr, const ASN1_OBJECT *obj, char *buf, size_t len)
{
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *type;
	const ASN1_STRING *s;
	int i, n;

	buf[0] = '\0';
	if ((i = X509_REQ_get_attr_by_OBJ(csr, obj, -1)) < 0)
		return 0;
	if (X509_REQ_get_attr_by_OBJ(csr, obj, i) >= 0)
		return -1;
	attr = X509_REQ_get_attr(csr, i);
	if (X509_ATTRIBUTE_count(attr) != 1 ||
	    (type = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL)
		return -1;
	switch (type->type) {
	case V_ASN1_PRINTABLESTRING:
	case V_ASN1_UTF8STRING:
	case V_ASN1_IA5STRING:
	case V_ASN1_T61STRING:
	case V_ASN1_VISIBLESTRING:
		s = type->value.asn1_string;
		break;
	default:
		return -1;
	}
	n = ASN1_STRING_length(s);
	if (n <= 0 || n > POP_VALUE_MAX || (size_t)n >= len ||
	    memchr(ASN1_STRING_get0_data(s), '\0', (size_t)n) != NULL)
		return -1;
	memcpy(buf, ASN1_STRING_get0_data(s), (size_t)n);
	buf[n] = '\0';
	return n;
}

/*
 * Decodes base64 text (padding optional) into out (size outlen).  Returns
 * the byte count or -1.
 */
static int
pop_decode(const char *text, unsigned char *out, size_t outlen)
{
	char padded[POP_VALUE_MAX + 4];
	size_t len = strlen(text), data = len, pad, i;
	int n;

	while (data > 0 && text[data - 1] == '=')
		data--;
	if (data == 0 || data % 4 == 1 || len - data > 2)
		return -1;
	for (i = 0; i < data; i++) {
		char c = text[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return -1;
	}
	pad = (4 - data % 4) % 4;
	if (data + pad >= sizeof(padded) || (data + pad) / 4 * 3 > outlen)
		return -1;
	memcpy(padded, text, data);
	memset(padded + data, '=', pad);
	if ((n = EVP_DecodeBlock(out, (const unsigned char *)padded,
	                         (int)(data + pad))) < 0)
		return -1;
	return n - (int)pad;
}

int
ra_pop_check(enum ra_pop_mode mode, int tls_exporter, int waived, X509_REQ *csr,
             const struct ra_pop_channel *ch, struct ra_pop_result *r)
{
	char cp[POP_VALUE_MAX + 1], il[POP_VALUE_MAX + 1];
	unsigned char got[POP_VALUE_MAX];
	const unsigned char *want;
	const char *value, *binding;
	ASN1_OBJECT *il_obj = NULL;
	int ncp, nil, n, rc = -1;
	size_t want_len;

	memset(r, 0, sizeof(*r));
	r->linked = "none";
	if (mode == RA_POP_OFF) {
		r->linked = "off";
		rc = 0;
		goto out;
	}
	if (waived) {
		r->linked = "waived";
		rc = 0;
		goto out;
	}
	ncp = pop_attribute(csr, OBJ_nid2obj(NID_pkcs9_challengePassword), cp,
	                    sizeof(cp));
	if ((il_obj = OBJ_txt2obj(POP_OID_IDENTITY_LINKING, 1)) == NULL) {
		ERR_clear_error();
		pop_fail(r, 500, NULL, "popFailed: out of memory");
		goto out;
	}
	nil = pop_attribute(csr, il_obj, il, sizeof(il));
	if (ncp < 0 || nil < 0) {
		pop_fail(r, 400, NULL,
		         "CSR refused: popFailed: %s is not one string of at "
		         "most 255 characters",
		         ncp < 0 ? "challengePassword" : "estIdentityLinking");
		goto out;
	}
	if (ncp > 0 && nil > 0 && strcmp(cp, il) != 0) {
		pop_fail(r, 400, NULL,
		         "CSR refused: popFailed: challengePassword and "
		         "estIdentityLinking differ");
		goto out;
	}
	value = ncp > 0 ? cp : nil > 0 ? il : NULL;
	if (ch->tls13) {
		want = ch->exporter;
		want_len = tls_exporter ? ch->exporter_len : 0;
		binding = "tls-exporter";
	} else {
		want = ch->unique;
		want_len = ch->unique_len;
		binding = "tls-unique";
	}
	if (value == NULL) {
		if (mode != RA_POP_REQUIRED) {
			rc = 0;
			goto out;
		}
		if (ch->tls13 && !tls_exporter)
			pop_fail(r, 403,
			         "enable tls_exporter on the label or have "
			         "clients use TLS 1.2",
			         "CSR refused: popFailed: the label requires "
			         "linking and tls-unique does not exist in TLS "
			         "1.3; connect with TLS 1.2");
		else
			pop_fail(r, 403,
			         "the client must put the base64 channel "
			         "binding into challengePassword",
			         "CSR refused: popFailed: the label requires "
			         "challengePassword linked to the TLS "
			         "connection (%s)",
			         binding);
		goto out;
	}
	if (want_len == 0) {
		pop_fail(r, 403,
		         ch->tls13 ? "enable tls_exporter on the label or have "
		                     "clients use TLS 1.2"
		                   : NULL,
		         "CSR refused: popFailed: challengePassword cannot be "
		         "checked: %s",
		         ch->tls13 ? "tls-unique does not exist in TLS 1.3; "
		                     "connect with TLS 1.2"
		                   : "the connection has no tls-unique");
		goto out;
	}
	n = pop_decode(value, got, sizeof(got));
	/* Lengths are public (12 or 32 bytes); the bytes are compared in
	 * constant time. */
	if (n < 0 || (size_t)n != want_len ||
	    CRYPTO_memcmp(got, want, want_len) != 0) {
		pop_fail(r, 403,
		         "the CSR must be built on the same TLS connection "
		         "that sends it (no TLS-terminating proxy in between)",
		         "CSR refused: popFailed: challengePassword does not "
		         "match the %s of this TLS connection",
		         binding);
		goto out;
	}
	r->linked = binding;
	rc = 0;
out:
	ASN1_OBJECT_free(il_obj);
	OPENSSL_cleanse(cp, sizeof(cp));
	OPENSSL_cleanse(il, sizeof(il));
	return rc;
}
