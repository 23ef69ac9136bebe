/*
 * fuzz_dogtag_json.c: Dogtag answers through every reader of
 * dogtag_json.c (request infos, PKIException bodies, info, account,
 * review, ProfileData, CertData, ids in URLs, PKCS#7 and PEM certificates,
 * the HTML check).  The input is copied into an exact-size buffer so that a
 * read past its end is caught by AddressSanitizer; every text a reader copies
 * out must end within its field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "ca_plugins/dogtag_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless s ends within size bytes. */
static void
fz_bounded(const char *s, size_t size)
{
	if (strnlen(s, size) >= size)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dogtag_request_info info;
	struct dogtag_exception ex;
	struct dogtag_info pki;
	struct dogtag_account acct;
	struct dogtag_review review;
	struct dogtag_profile profile;
	struct dogtag_cert_data cd;
	STACK_OF(X509) *certs;
	char id[DOGTAG_ID_MAX], *buf, *str;

	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	if (dogtag_json_request_info(buf, size, &info) == 0) {
		fz_bounded(info.request_id, sizeof(info.request_id));
		fz_bounded(info.cert_id, sizeof(info.cert_id));
		fz_bounded(info.error_message, sizeof(info.error_message));
		if (info.request_id[0] != '\0' &&
		    !dogtag_id_valid(info.request_id))
			abort();
		(void)dogtag_status_name(info.status);
	}
	if (dogtag_json_exception(buf, size, &ex) == 0) {
		fz_bounded(ex.class_name, sizeof(ex.class_name));
		fz_bounded(ex.message, sizeof(ex.message));
	}
	if (dogtag_json_info(buf, size, &pki) == 0)
		fz_bounded(pki.version, sizeof(pki.version));
	if (dogtag_json_account(buf, size, &acct) == 0)
		fz_bounded(acct.id, sizeof(acct.id));
	if (dogtag_json_review(buf, size, &review) == 0)
		fz_bounded(review.request_id, sizeof(review.request_id));
	if (dogtag_json_profile(buf, size, &profile) == 0) {
		if (profile.enabled != 0 && profile.enabled != 1)
			abort();
		fz_bounded(profile.enabled_by, sizeof(profile.enabled_by));
	}
	if (dogtag_json_cert_data(buf, size, &cd) == 0) {
		if (cd.pkcs7 != NULL) {
			certs = dogtag_certs_from_pkcs7(
			    (const unsigned char *)cd.pkcs7, strlen(cd.pkcs7));
			sk_X509_pop_free(certs, X509_free);
		}
		if (cd.encoded != NULL) {
			certs = dogtag_certs_from_pem(cd.encoded,
			                              strlen(cd.encoded));
			sk_X509_pop_free(certs, X509_free);
		}
	}
	dogtag_cert_data_cleanup(&cd);
	if (dogtag_id_from_url(buf, size, id, sizeof(id)) == 0 &&
	    !dogtag_id_valid(id))
		abort();
	certs = dogtag_certs_from_pkcs7(data, size);
	sk_X509_pop_free(certs, X509_free);
	certs = dogtag_certs_from_pem(buf, size);
	sk_X509_pop_free(certs, X509_free);
	(void)dogtag_body_is_html(buf, size, NULL);
	/* The id check wants a string: the input up to its first NUL. */
	if ((str = malloc(size + 1)) != NULL) {
		memcpy(str, data, size);
		str[size] = '\0';
		(void)dogtag_id_valid(str);
		(void)dogtag_status_from(str);
		free(str);
	}
	free(buf);
	return 0;
}
