/*
 * pkcs7.c: the DER bodies EST answers with (see pkcs7.h).  Both are built
 * with OpenSSL's ASN.1 types and encoders; no DER byte is written by hand.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "core/error.h"
#include "est/pkcs7.h"

/* clang-format takes STACK_OF() for a call and would space the "*". */
/* clang-format off */
unsigned char *
est_pkcs7_certs_only(STACK_OF(X509) *certs, size_t *len)
/* clang-format on */
{
	unsigned char *der = NULL;
	PKCS7 *p7 = NULL;
	X509 *x;
	int i, n, rc = -1;

	if (len != NULL)
		*len = 0;
	if (certs == NULL || len == NULL)
		goto out;

	/*
	 * A CMC Simple PKI Response (RFC 5272 §4.1): SignedData with no
	 * signers, no digest algorithms, and an id-data content type
	 * without content.  Detaching the content drops the empty OCTET
	 * STRING PKCS7_content_new() puts there.
	 */
	if ((p7 = PKCS7_new()) == NULL ||
	    !PKCS7_set_type(p7, NID_pkcs7_signed) ||
	    !PKCS7_content_new(p7, NID_pkcs7_data) ||
	    !PKCS7_set_detached(p7, 1))
		goto out;

	/*
	 * OpenSSL encodes certificates as a SEQUENCE OF, not a sorted DER
	 * SET OF, so the order given here is the order clients read.
	 */
	for (i = 0; i < sk_X509_num(certs); i++) {
		if ((x = sk_X509_value(certs, i)) == NULL ||
		    !PKCS7_add_certificate(p7, x))
			goto out;
	}

	if ((n = i2d_PKCS7(p7, &der)) <= 0) {
		der = NULL;
		goto out;
	}
	*len = (size_t)n;
	rc = 0;
out:
	/*
	 * The error queue is left as OpenSSL filled it on failure, for the
	 * caller to drain into its log line; there is no err argument.
	 */
	PKCS7_free(p7);
	if (rc != 0) {
		OPENSSL_free(der);
		der = NULL;
	}
	return der;
}

/*
 * Resolves an OID in dotted form or an OpenSSL short or long name.
 * Returns a new object (free with ASN1_OBJECT_free) or NULL.  Some OpenSSL
 * names (ciphers, for one) have a NID but no OID and would encode as an
 * empty OBJECT IDENTIFIER, so those are refused too.
 */
static ASN1_OBJECT *
pkcs7_obj(const char *txt)
{
	ASN1_OBJECT *obj;

	if ((obj = OBJ_txt2obj(txt, 0)) != NULL && OBJ_length(obj) == 0) {
		ASN1_OBJECT_free(obj);
		obj = NULL;
	}
	return obj;
}

/*
 * Appends the AttrOrOID for entry to seq: a bare OBJECT IDENTIFIER, or for
 * "KEYTYPE:PARAM" an Attribute { KEYTYPE, SET { PARAM } } (RFC 9908 §3.2).
 * Returns 0, or -1 with err naming the entry.
 */
static int
pkcs7_csrattr_push(ASN1_SEQUENCE_ANY *seq, const char *entry, char *err,
                   size_t errlen)
{
	ASN1_OBJECT *type = NULL, *param = NULL;
	X509_ATTRIBUTE *attr = NULL;
	ASN1_TYPE *item = NULL;
	const char *colon;
	char *keytype = NULL;
	int rc = -1;

	if (entry == NULL || *entry == '\0') {
		core_error_set(err, errlen, 0, "csrattrs entry \"\" is empty");
		goto out;
	}

	if ((colon = strchr(entry, ':')) == NULL) {
		if ((type = pkcs7_obj(entry)) == NULL) {
			core_error_set(
			    err, errlen, 0,
			    "csrattrs entry \"%s\" is not an OID or a "
			    "known object name",
			    entry);
			goto out;
		}
		if ((item = ASN1_TYPE_new()) == NULL) {
			core_error_set(err, errlen, 1,
			               "csrattrs entry \"%s\": out of memory",
			               entry);
			goto out;
		}
		/* The ASN1_TYPE takes the object. */
		ASN1_TYPE_set(item, V_ASN1_OBJECT, type);
		type = NULL;
	} else {
		if (colon == entry || colon[1] == '\0' ||
		    strchr(colon + 1, ':') != NULL) {
			core_error_set(
			    err, errlen, 0,
			    "csrattrs entry \"%s\" is not KEYTYPE:PARAM",
			    entry);
			goto out;
		}
		if ((keytype = strndup(entry, (size_t)(colon - entry))) ==
		    NULL) {
			core_error_set(err, errlen, 0,
			               "csrattrs entry \"%s\": out of memory",
			               entry);
			goto out;
		}
		if ((type = pkcs7_obj(keytype)) == NULL) {
			core_error_set(
			    err, errlen, 0,
			    "csrattrs entry \"%s\": \"%s\" is not an OID "
			    "or a known object name",
			    entry, keytype);
			goto out;
		}
		if ((param = pkcs7_obj(colon + 1)) == NULL) {
			core_error_set(
			    err, errlen, 0,
			    "csrattrs entry \"%s\": \"%s\" is not an OID "
			    "or a known object name",
			    entry, colon + 1);
			goto out;
		}
		/*
		 * The attribute copies param into its SET of values; DER
		 * of the whole Attribute then becomes one SEQUENCE element.
		 */
		attr = X509_ATTRIBUTE_create_by_OBJ(NULL, type, V_ASN1_OBJECT,
		                                    param, -1);
		if (attr != NULL)
			item = ASN1_TYPE_pack_sequence(
			    ASN1_ITEM_rptr(X509_ATTRIBUTE), attr, NULL);
		if (item == NULL) {
			core_error_set(
			    err, errlen, 1,
			    "csrattrs entry \"%s\" cannot be encoded", entry);
			goto out;
		}
	}

	if (!sk_ASN1_TYPE_push(seq, item)) {
		core_error_set(err, errlen, 1,
		               "csrattrs entry \"%s\": out of memory", entry);
		goto out;
	}
	item = NULL;
	rc = 0;
out:
	ASN1_TYPE_free(item);
	X509_ATTRIBUTE_free(attr);
	ASN1_OBJECT_free(param);
	ASN1_OBJECT_free(type);
	free(keytype);
	return rc;
}

unsigned char *
est_pkcs7_csrattrs(const char *const *names, size_t count, size_t *len,
                   char *err, size_t errlen)
{
	ASN1_SEQUENCE_ANY *seq = NULL;
	unsigned char *der = NULL;
	size_t i;
	int n, rc = -1;

	ERR_clear_error();
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len != NULL)
		*len = 0;
	if (len == NULL || (names == NULL && count > 0)) {
		core_error_set(err, errlen, 0,
		               "csrattrs: no list or no output");
		goto out;
	}

	if ((seq = sk_ASN1_TYPE_new_null()) == NULL) {
		core_error_set(err, errlen, 1, "csrattrs: out of memory");
		goto out;
	}
	for (i = 0; i < count; i++) {
		if (pkcs7_csrattr_push(seq, names[i], err, errlen) != 0)
			goto out;
	}

	/* CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID; empty is 30 00. */
	if ((n = i2d_ASN1_SEQUENCE_ANY(seq, &der)) <= 0) {
		der = NULL;
		core_error_set(err, errlen, 1, "csrattrs: DER encoding failed");
		goto out;
	}
	*len = (size_t)n;
	rc = 0;
out:
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	if (rc != 0) {
		OPENSSL_free(der);
		der = NULL;
	}
	ERR_clear_error();
	return der;
}
