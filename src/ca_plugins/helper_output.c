/*
 * helper_output.c: readers of what a certmonger CA helper prints on
 * stdout under certmonger's CA-helper contract: the issued certificate and
 * chain of exit 0, the FETCH-ROOTS groups, and the cookie of exit 1 and 5. They
 * sit apart from helper.c so that they can be fuzzed without running a
 * helper; they do no I/O and keep no state.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_plugins/helper_output.h"
#include "core/certs.h"

/* The three groups of FETCH-ROOTS output. */
enum helper_group {
	HELPER_ROOTS,
	HELPER_OTHER_ROOTS,
	HELPER_OTHER,
	HELPER_GROUP__MAX
};

static STACK_OF(X509) *
helper_read_json(const char *text, size_t len, STACK_OF(X509) *out)
{
	STACK_OF(X509) *one;
	const char *pem;
	json_t *root, *chain, *v;
	size_t i;

	if ((root = json_loadb(text, len, 0, NULL)) == NULL)
		return out;
	if ((pem = json_string_value(json_object_get(root, "certificate"))) !=
	    NULL)
		(void)core_certs_read((const unsigned char *)pem, strlen(pem),
		                      out);
	chain = json_object_get(root, "chain");
	json_array_foreach(chain, i, v)
	{
		pem = json_string_value(json_object_get(v, "certificate"));
		if (pem == NULL ||
		    (one = ca_helper_output_certs(pem, strlen(pem))) == NULL)
			continue;
		while (sk_X509_num(one) > 0)
			if (!sk_X509_push(out, sk_X509_value(one, 0)))
				break;
			else
				(void)sk_X509_shift(one);
		sk_X509_pop_free(one, X509_free);
	}
	json_decref(root);
	return out;
}

STACK_OF(X509) *
ca_helper_output_certs(const char *text, size_t len)
{
	STACK_OF(X509) *out;
	size_t i;

	if ((out = sk_X509_new_null()) == NULL)
		return NULL;
	for (i = 0; i < len && isspace((unsigned char)text[i]); i++)
		;
	if (i < len && text[i] == '{')
		return helper_read_json(text + i, len - i, out);
	/* PEM blocks, a DER certificate or a DER PKCS#7. */
	(void)core_certs_read((const unsigned char *)text, len, out);
	return out;
}

/*
 * Moves the issued certificate to the front of certs: the one with the
 * CSR's public key, or without a CSR the first that is no CA.  Returns 0,
 * or -1 when a CSR was given and no certificate carries its key.
 */
int
ca_helper_output_leaf_first(STACK_OF(X509) *certs, X509_REQ *csr)
{
	EVP_PKEY *want = csr != NULL ? X509_REQ_get0_pubkey(csr) : NULL;
	X509 *x;
	int i, found = -1;

	for (i = 0; i < sk_X509_num(certs) && found < 0; i++) {
		x = sk_X509_value(certs, i);
		if (want != NULL ? EVP_PKEY_eq(X509_get0_pubkey(x), want) == 1
		                 : X509_check_ca(x) == 0)
			found = i;
	}
	ERR_clear_error();
	if (found < 0)
		return want != NULL ? -1 : 0;
	x = sk_X509_delete(certs, found);
	(void)sk_X509_unshift(certs, x);
	return 0;
}

/*
 * Reads FETCH-ROOTS output into a new stack, intermediates
 * ("other" certificates, the third group) first, then the roots and the
 * other trusted roots: an EST cacerts answer lists the chain.  Entries are
 * a nickname line and a PEM block; an empty line ends a group, several in
 * a row count as one.  The JSON form {"roots": [...], "other-roots":
 * [...], "other": [...]} is read too.  Sets names to the nicknames, for
 * the log.
 */
STACK_OF(X509) *
ca_helper_output_roots(const char *text, size_t len, char *names,
                       size_t nameslen)
{
	static const char *const json_groups[HELPER_GROUP__MAX] = {
	    "roots", "other-roots", "other"};
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	static const enum helper_group order[HELPER_GROUP__MAX] = {
	    HELPER_OTHER, HELPER_ROOTS, HELPER_OTHER_ROOTS};
	STACK_OF(X509) *groups[HELPER_GROUP__MAX] = {NULL, NULL, NULL};
	STACK_OF(X509) *out = NULL, *one;
	const char *p = text, *stop = text + len, *eol, *nick = NULL;
	size_t nick_len = 0, used = 0, i;
	int g = 0, in_group = 0, k;
	json_t *root = NULL, *v;

	names[0] = '\0';
	for (k = 0; k < HELPER_GROUP__MAX; k++)
		if ((groups[k] = sk_X509_new_null()) == NULL)
			goto out;
	for (i = 0; i < len && isspace((unsigned char)text[i]); i++)
		;
	if (i < len && text[i] == '{') {
		if ((root = json_loadb(text + i, len - i, 0, NULL)) == NULL)
			goto merge;
		for (k = 0; k < HELPER_GROUP__MAX; k++) {
			json_array_foreach(
			    json_object_get(root, json_groups[k]), i, v)
			{
				const char *pem = json_string_value(
				    json_object_get(v, "certificate"));
				const char *nn = json_string_value(
				    json_object_get(v, "nickname"));

				if (pem == NULL)
					continue;
				(void)core_certs_read(
				    (const unsigned char *)pem, strlen(pem),
				    groups[k]);
				if (nn != NULL && used + 4 < nameslen) {
					int n = snprintf(
					    names + used, nameslen - used,
					    "%s%s", used > 0 ? "; " : "", nn);
					if (n > 0)
						used +=
						    (size_t)n < nameslen - used
						        ? (size_t)n
						        : nameslen - used - 1;
				}
			}
		}
		goto merge;
	}
	while (p < stop) {
		size_t llen;

		if ((eol = memchr(p, '\n', (size_t)(stop - p))) == NULL)
			eol = stop;
		llen = (size_t)(eol - p);
		if (llen > 0 && p[llen - 1] == '\r')
			llen--;
		if (llen == 0) {
			/* An empty line ends a group that has entries. */
			if (in_group && g < HELPER_GROUP__MAX - 1)
				g++;
			in_group = 0;
		} else if (llen >= sizeof(begin) - 1 &&
		           memcmp(p, begin, sizeof(begin) - 1) == 0) {
			const char *e =
			    memmem(p, (size_t)(stop - p), end, sizeof(end) - 1);

			if (e == NULL)
				break;
			e += sizeof(end) - 1;
			(void)core_certs_read((const unsigned char *)p,
			                      (size_t)(e - p), groups[g]);
			in_group = 1;
			if (nick != NULL && used + 4 < nameslen) {
				int n = snprintf(names + used, nameslen - used,
				                 "%s%.*s", used > 0 ? "; " : "",
				                 (int)nick_len, nick);
				if (n > 0)
					used += (size_t)n < nameslen - used
					            ? (size_t)n
					            : nameslen - used - 1;
			}
			nick = NULL;
			if ((eol = memchr(e, '\n', (size_t)(stop - e))) == NULL)
				eol = stop;
		} else {
			nick = p;
			nick_len = llen;
		}
		p = eol < stop ? eol + 1 : stop;
	}
merge:
	if ((out = sk_X509_new_null()) == NULL)
		goto out;
	for (k = 0; k < HELPER_GROUP__MAX; k++) {
		one = groups[order[k]];
		while (sk_X509_num(one) > 0) {
			X509 *x = sk_X509_shift(one);

			if (!sk_X509_push(out, x))
				X509_free(x);
		}
	}
out:
	for (k = 0; k < HELPER_GROUP__MAX; k++)
		sk_X509_pop_free(groups[k], X509_free);
	json_decref(root);
	ERR_clear_error();
	return out;
}

/*
 * Copies a cookie into buf as certmonger hands it back: CR LF
 * becomes LF; a one-line cookie loses its newline, a multi-line one keeps
 * LF endings and one final LF.  Returns 0, or -1 with why set when the
 * cookie does not fit or holds bytes a pending record cannot keep.
 */
int
ca_helper_output_cookie(const char *text, size_t len, char *buf, size_t buflen,
                        const char **why)
{
	size_t i, n = 0, lines = 0;

	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\r' && i + 1 < len && text[i + 1] == '\n')
			continue;
		if (c == '\n')
			lines++;
		else if ((c < 0x20 && c != '\t') || c >= 0x7f) {
			*why = "holds control or non-ASCII bytes";
			return -1;
		}
		if (n + 2 >= buflen) {
			*why = "is too long";
			return -1;
		}
		buf[n++] = (char)c;
	}
	if (lines > 0)
		buf[n++] = '\n';
	buf[n] = '\0';
	return 0;
}
