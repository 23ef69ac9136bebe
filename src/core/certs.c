/*
 * certs.c: certificate readers and CA chain ordering.
 */
#include <limits.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/certs.h"

STACK_OF(X509) *
core_certs_read_pem(BIO *bio, int strict, int *count)
{
	STACK_OF(X509) *certs = NULL, *rc = NULL;
	unsigned long e;
	X509 *x;

	if (count != NULL)
		*count = 0;
	if (bio == NULL || (certs = sk_X509_new_null()) == NULL)
		goto out;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			goto out;
		}
		if (count != NULL)
			*count = sk_X509_num(certs);
	}
	/* The loop ends at the first read without a PEM block: the end of
	 * the data when that is the only error, else a broken block. */
	e = ERR_peek_last_error();
	if (sk_X509_num(certs) == 0 ||
	    (strict && (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	                ERR_GET_REASON(e) != PEM_R_NO_START_LINE)))
		goto out;
	ERR_clear_error();
	rc = certs;
	certs = NULL;
out:
	sk_X509_pop_free(certs, X509_free);
	return rc;
}

STACK_OF(X509) *
core_chain_order(STACK_OF(X509) *in)
{
	STACK_OF(X509) *out = NULL;
	X509 *cur = NULL, *c;
	int i, j, n = sk_X509_num(in);

	for (i = 0; i < n && cur == NULL; i++) {
		c = sk_X509_value(in, i);
		for (j = 0; j < n; j++)
			if (j != i &&
			    X509_check_issued(c, sk_X509_value(in, j)) ==
			        X509_V_OK &&
			    X509_check_issued(sk_X509_value(in, j),
			                      sk_X509_value(in, j)) !=
			        X509_V_OK)
				break;
		if (j == n)
			cur = c;
	}
	if (cur == NULL || (out = sk_X509_new_null()) == NULL)
		return in;
	while (cur != NULL) {
		(void)sk_X509_delete_ptr(in, cur);
		if (!sk_X509_push(out, cur)) {
			X509_free(cur);
			break;
		}
		c = cur;
		cur = NULL;
		if (X509_check_issued(c, c) == X509_V_OK)
			break;
		for (i = 0; i < sk_X509_num(in); i++)
			if (X509_check_issued(sk_X509_value(in, i), c) ==
			    X509_V_OK) {
				cur = sk_X509_value(in, i);
				break;
			}
	}
	while (sk_X509_num(in) > 0)
		if (!sk_X509_push(out, sk_X509_shift(in)))
			break;
	sk_X509_pop_free(in, X509_free);
	ERR_clear_error();
	return out;
}

int
core_certs_from_pkcs7(const PKCS7 *p7, STACK_OF(X509) *out)
{
	STACK_OF(X509) *in;
	int i, n = 0;

	if (p7 == NULL || !PKCS7_type_is_signed(p7) || p7->d.sign == NULL)
		return -1;
	in = p7->d.sign->cert;
	for (i = 0; in != NULL && i < sk_X509_num(in); i++) {
		X509 *x = sk_X509_value(in, i);

		if (X509_up_ref(x) != 1)
			return -1;
		if (!sk_X509_push(out, x)) {
			X509_free(x);
			return -1;
		}
		n++;
	}
	return n;
}

/*
 * Appends the certificate or PKCS#7 certificates that der (len bytes)
 * holds; prefer_p7 tries PKCS#7 first.  Returns the count, 0 when it is
 * neither, or -1 when memory ran out.
 */
static int
core_certs_der(const unsigned char *der, long len, int prefer_p7,
               STACK_OF(X509) *out)
{
	const unsigned char *p = der;
	PKCS7 *p7 = NULL;
	X509 *x = NULL;
	int rc = 0;

	if (!prefer_p7 && (x = d2i_X509(NULL, &p, len)) != NULL) {
		if (!sk_X509_push(out, x)) {
			X509_free(x);
			return -1;
		}
		return 1;
	}
	p = der;
	if ((p7 = d2i_PKCS7(NULL, &p, len)) != NULL)
		rc = core_certs_from_pkcs7(p7, out);
	else if (prefer_p7) {
		p = der;
		if ((x = d2i_X509(NULL, &p, len)) != NULL) {
			if (!sk_X509_push(out, x)) {
				X509_free(x);
				rc = -1;
			} else
				rc = 1;
		}
	}
	PKCS7_free(p7);
	return rc;
}

int
core_certs_read(const unsigned char *data, size_t len, STACK_OF(X509) *out)
{
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	BIO *bio = NULL;
	long derlen;
	int n, rc = 0;

	if (data == NULL || len == 0 || len > INT_MAX)
		goto out;
	if (memmem(data, len, "-----BEGIN", 10) == NULL) {
		rc = core_certs_der(data, (long)len, 0, out);
		goto out;
	}
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
		rc = -1;
		goto out;
	}
	while (PEM_read_bio(bio, &name, &header, &der, &derlen) == 1) {
		n = 0;
		if (strcmp(name, PEM_STRING_X509) == 0 ||
		    strcmp(name, PEM_STRING_X509_OLD) == 0)
			n = core_certs_der(der, derlen, 0, out);
		else if (strcmp(name, PEM_STRING_PKCS7) == 0)
			n = core_certs_der(der, derlen, 1, out);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		name = header = NULL;
		der = NULL;
		if (n < 0) {
			rc = -1;
			goto out;
		}
		rc += n;
	}
out:
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}
