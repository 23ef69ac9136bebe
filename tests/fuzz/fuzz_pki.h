/*
 * fuzz_pki.h: what the fuzz targets that need a server set up share: a
 * self-signed P-256 CA made with the OpenSSL API (used as TLS certificate,
 * explicit trust anchor and local CA at once) and small files in a
 * temporary directory.  Test code only; every function is static.
 */
#ifndef ESTRAD_FUZZ_PKI_H
#define ESTRAD_FUZZ_PKI_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Setup failed: a fuzz run without its server is worthless. */
static void
fuzz_pki_die(const char *what)
{
	fprintf(stderr, "fuzz: setup failed: %s\n", what);
	ERR_print_errors_fp(stderr);
	abort();
}

/* Writes text to dir/name. */
static void
fuzz_pki_write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) == EOF ||
	    fclose(fp) != 0)
		fuzz_pki_die(path);
}

/* Adds extension nid with value to x, signed by itself. */
static void
fuzz_pki_ext(X509 *x, int nid, const char *value)
{
	X509_EXTENSION *ext;
	X509V3_CTX ctx;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL ||
	    X509_add_ext(x, ext, -1) != 1)
		fuzz_pki_die("certificate extension");
	X509_EXTENSION_free(ext);
}

/* Makes dir/ca.key and dir/ca.pem: a self-signed P-256 CA. */
static void
fuzz_pki_make(const char *dir)
{
	char path[256];
	EVP_PKEY *key;
	X509_NAME *name;
	X509 *x;
	FILE *fp;

	if ((key = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -86400) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 3650) == NULL ||
	    X509_set_pubkey(x, key) != 1 || (name = X509_NAME_new()) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                               (const unsigned char *)"fuzz CA", -1, -1,
	                               0) != 1 ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, name) != 1)
		fuzz_pki_die("CA certificate");
	X509_NAME_free(name);
	fuzz_pki_ext(x, NID_basic_constraints, "critical,CA:TRUE");
	fuzz_pki_ext(x, NID_key_usage,
	             "critical,keyCertSign,cRLSign,digitalSignature");
	fuzz_pki_ext(x, NID_subject_key_identifier, "hash");
	if (X509_sign(x, key, EVP_sha256()) == 0)
		fuzz_pki_die("CA signature");
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	if ((fp = fopen(path, "w")) == NULL ||
	    PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fclose(fp) != 0)
		fuzz_pki_die(path);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	if ((fp = fopen(path, "w")) == NULL || PEM_write_X509(fp, x) != 1 ||
	    fclose(fp) != 0)
		fuzz_pki_die(path);
	X509_free(x);
	EVP_PKEY_free(key);
}

/* The directory fuzz_pki_mkdtemp() made, removed at exit. */
static char fuzz_pki_dir[64];

/* nftw() callback: removes one entry, children first. */
static int
fuzz_pki_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes the directory and everything a target made in it. */
static void
fuzz_pki_cleanup(void)
{
	if (fuzz_pki_dir[0] != '\0')
		(void)nftw(fuzz_pki_dir, fuzz_pki_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Makes a temporary directory named after prefix ("fuzz_http") in $TMPDIR
 * (an absolute path under 32 bytes), else /tmp, that is removed with all
 * it holds at exit, so that make check leaves nothing behind.  Returns it
 * (static storage).
 */
static const char *
fuzz_pki_mkdtemp(const char *prefix)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(fuzz_pki_dir, sizeof(fuzz_pki_dir), "%s/%s.XXXXXX",
	         tmp != NULL && tmp[0] == '/' && strlen(tmp) < 32 ? tmp
	                                                          : "/tmp",
	         prefix);
	if (mkdtemp(fuzz_pki_dir) == NULL)
		fuzz_pki_die("mkdtemp");
	atexit(fuzz_pki_cleanup);
	return fuzz_pki_dir;
}

#endif
