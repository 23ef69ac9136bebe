/*
 * hostile_chain.c: writes the client-certificate lists that the TLS tests
 * and the benchmark send to estrad to see what verifying them costs it.
 *
 *   hostile_chain -n COUNT -o CHAIN.pem -k KEY.pem [-b BITS] [-e EBITS]
 *                 [-x CABITS] [-s CN] [-m]
 *
 * Makes one RSA key pair of BITS bits (3072) whose public exponent is a
 * random odd number of EBITS bits (0, the default, means 65537), writes
 * its private key to KEY.pem, and writes COUNT certificates to CHAIN.pem,
 * leaf first: certificate i has the subject "CN=<CN> i" and the issuer
 * "CN=<CN> i+1", the last one issues itself, and every one after the leaf
 * is a CA certificate.  They all carry the key pair's public key and are
 * signed with its private key, so each signature verifies with its
 * issuer's key; with -x, the CA certificates carry instead a made-up RSA
 * public key of CABITS bits (a random odd modulus, no private key) with
 * the same exponent, and their links no longer verify.  With -m the key
 * pair is Ed25519 instead and the certificates carry no extension: the
 * smallest certificates OpenSSL parses, which show what parsing a list
 * costs a server (-b, -e and -x do not apply).
 *
 * A public exponent as large as the modulus makes one signature
 * verification cost about as much as an RSA private-key operation without
 * the CRT, a hundred times a normal one; a list of such certificates is
 * what an attacker without credentials sends to a server that verifies
 * every link.  The key pair is genuine, so the client can still sign the
 * handshake (CertificateVerify) with it.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* OpenSSL decodes RSA moduli up to this size. */
#define HOSTILE_MAX_BITS 16384

static void hostile_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Prints the message with the drained OpenSSL queue and exits 1. */
static void
hostile_die(const char *fmt, ...)
{
	unsigned long e;
	char buf[256];
	va_list ap;

	fputs("hostile_chain: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, " (SSL: %s)", buf);
	}
	fputc('\n', stderr);
	exit(1);
}

/* Parses a decimal long in [min, max] or exits naming the option. */
static long
hostile_long(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || v < min || v > max)
		hostile_die("%s: \"%s\" is not a number in %ld..%ld", opt, s,
		            min, max);
	return v;
}

/* Returns a new random odd number of exactly bits bits. */
static BIGNUM *
hostile_odd(int bits)
{
	BIGNUM *bn = BN_new();

	if (bn == NULL ||
	    BN_rand(bn, bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD) != 1)
		hostile_die("cannot draw a %d-bit number", bits);
	return bn;
}

/* Returns a new RSA key built from params (keypair set: with d). */
static EVP_PKEY *
hostile_fromdata(OSSL_PARAM_BLD *bld, int keypair)
{
	EVP_PKEY_CTX *pctx = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY *key = NULL;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(pctx) != 1 ||
	    EVP_PKEY_fromdata(pctx, &key,
	                      keypair ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
	                      params) != 1)
		hostile_die("cannot build an RSA key");
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(pctx);
	return key;
}

/*
 * Returns a new RSA key pair of bits bits whose public exponent is a
 * random odd number of ebits bits (65537 when ebits is 0), and sets *e to
 * a new copy of that exponent.
 */
static EVP_PKEY *
hostile_keypair(int bits, int ebits, BIGNUM **e)
{
	BIGNUM *n = NULL, *p = NULL, *q = NULL, *p1 = NULL, *q1 = NULL;
	BIGNUM *lambda = NULL, *g = NULL, *d = NULL, *dp = NULL, *dq = NULL;
	BIGNUM *qinv = NULL;
	EVP_PKEY *base = NULL, *key = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	BN_CTX *bn = BN_CTX_new();

	if (bn == NULL || (base = EVP_RSA_gen((unsigned int)bits)) == NULL)
		hostile_die("cannot generate an RSA-%d key", bits);
	if (EVP_PKEY_get_bn_param(base, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    EVP_PKEY_get_bn_param(base, OSSL_PKEY_PARAM_RSA_FACTOR1, &p) != 1 ||
	    EVP_PKEY_get_bn_param(base, OSSL_PKEY_PARAM_RSA_FACTOR2, &q) != 1 ||
	    EVP_PKEY_get_bn_param(base, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
	                          &qinv) != 1)
		hostile_die("cannot read the RSA key's factors");
	/* d = e^-1 mod lcm(p-1, q-1), for an e coprime to it. */
	if ((p1 = BN_dup(p)) == NULL || (q1 = BN_dup(q)) == NULL ||
	    (lambda = BN_new()) == NULL || (g = BN_new()) == NULL ||
	    (d = BN_new()) == NULL || (dp = BN_new()) == NULL ||
	    (dq = BN_new()) == NULL || !BN_sub_word(p1, 1) ||
	    !BN_sub_word(q1, 1) || !BN_gcd(g, p1, q1, bn) ||
	    !BN_mul(lambda, p1, q1, bn) || !BN_div(lambda, NULL, lambda, g, bn))
		hostile_die("out of memory");
	if (ebits == 0) {
		if ((*e = BN_new()) == NULL || !BN_set_word(*e, RSA_F4))
			hostile_die("out of memory");
	} else
		for (*e = NULL;;) {
			BN_free(*e);
			*e = hostile_odd(ebits);
			if (!BN_gcd(g, *e, lambda, bn))
				hostile_die("out of memory");
			if (BN_is_one(g))
				break;
		}
	if (BN_mod_inverse(d, *e, lambda, bn) == NULL ||
	    !BN_mod(dp, d, p1, bn) || !BN_mod(dq, d, q1, bn))
		hostile_die("cannot compute the private exponent");
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, *e) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
	                            qinv))
		hostile_die("out of memory");
	key = hostile_fromdata(bld, 1);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(d);
	BN_clear_free(dp);
	BN_clear_free(dq);
	BN_clear_free(p);
	BN_clear_free(q);
	BN_clear_free(p1);
	BN_clear_free(q1);
	BN_clear_free(lambda);
	BN_clear_free(qinv);
	BN_free(g);
	BN_free(n);
	BN_CTX_free(bn);
	EVP_PKEY_free(base);
	return key;
}

/* Returns a new made-up RSA public key: random odd modulus of bits, e. */
static EVP_PKEY *
hostile_public(int bits, const BIGNUM *e)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *n = hostile_odd(bits);
	EVP_PKEY *key;

	if (bld == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		hostile_die("out of memory");
	key = hostile_fromdata(bld, 0);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	return key;
}

/* Sets "CN=<cn> i" as name. */
static X509_NAME *
hostile_name(const char *cn, long i)
{
	X509_NAME *name = X509_NAME_new();
	char text[128];

	snprintf(text, sizeof(text), "%s %ld", cn, i);
	if (name == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                (const unsigned char *)text, -1, -1, 0))
		hostile_die("out of memory");
	return name;
}

/* Adds the extension nid with the value text (openssl x509 syntax). */
static void
hostile_ext(X509 *cert, int nid, const char *text)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, nid, text);

	if (ext == NULL || !X509_add_ext(cert, ext, -1))
		hostile_die("cannot add %s", text);
	X509_EXTENSION_free(ext);
}

/* Returns certificate i of count: subject i, issuer i+1, key pub,
 * extensions unless minimal is set. */
static X509 *
hostile_cert(const char *cn, long i, long count, EVP_PKEY *pub,
             EVP_PKEY *signer, int minimal)
{
	X509_NAME *subject = hostile_name(cn, i);
	X509_NAME *issuer = hostile_name(cn, i + 1 < count ? i + 1 : i);
	X509 *cert = X509_new();

	if (cert == NULL || !X509_set_version(cert, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(cert), i + 1) ||
	    !X509_set_subject_name(cert, subject) ||
	    !X509_set_issuer_name(cert, issuer) ||
	    X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * 30) == NULL ||
	    !X509_set_pubkey(cert, pub))
		hostile_die("cannot fill certificate %ld", i);
	if (minimal)
		;
	else if (i == 0) {
		hostile_ext(cert, NID_basic_constraints, "critical,CA:FALSE");
		hostile_ext(cert, NID_key_usage,
		            "critical,digitalSignature,keyEncipherment");
		hostile_ext(cert, NID_ext_key_usage, "clientAuth");
	} else {
		hostile_ext(cert, NID_basic_constraints, "critical,CA:TRUE");
		hostile_ext(cert, NID_key_usage,
		            "critical,keyCertSign,cRLSign");
	}
	/* Ed25519 takes no separate digest. */
	if (X509_sign(cert, signer, minimal ? NULL : EVP_sha256()) <= 0)
		hostile_die("cannot sign certificate %ld", i);
	X509_NAME_free(subject);
	X509_NAME_free(issuer);
	return cert;
}

static void
hostile_usage(void)
{
	fputs("usage: hostile_chain -n COUNT -o CHAIN.pem -k KEY.pem "
	      "[-b BITS] [-e EBITS] [-x CABITS] [-s CN] [-m]\n",
	      stderr);
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *out = NULL, *keyout = NULL, *cn = "hostile";
	long count = 0, bits = 3072, ebits = 0, cabits = 0, i;
	EVP_PKEY *key, *capub = NULL;
	BIGNUM *e = NULL;
	FILE *fp;
	X509 *cert;
	int opt, minimal = 0;

	while ((opt = getopt(argc, argv, "n:o:k:b:e:x:s:m")) != -1) {
		switch (opt) {
		case 'n':
			count = hostile_long("-n", optarg, 1, 10000);
			break;
		case 'o':
			out = optarg;
			break;
		case 'k':
			keyout = optarg;
			break;
		case 'b':
			bits = hostile_long("-b", optarg, 1024, 4096);
			break;
		case 'e':
			ebits = hostile_long("-e", optarg, 0, 4095);
			break;
		case 'x':
			cabits =
			    hostile_long("-x", optarg, 1024, HOSTILE_MAX_BITS);
			break;
		case 's':
			cn = optarg;
			break;
		case 'm':
			minimal = 1;
			break;
		default:
			hostile_usage();
		}
	}
	if (optind != argc || count == 0 || out == NULL || keyout == NULL)
		hostile_usage();
	/* OpenSSL refuses an exponent not below the modulus. */
	if (ebits >= bits || (ebits != 0 && ebits < 2) ||
	    (cabits != 0 && ebits >= cabits))
		hostile_die("-e %ld: the exponent must be shorter than the "
		            "modulus",
		            ebits);
	if (minimal) {
		if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL)
			hostile_die("cannot generate an Ed25519 key");
	} else
		key = hostile_keypair((int)bits, (int)ebits, &e);
	if (cabits != 0 && !minimal)
		capub = hostile_public((int)cabits, e);
	if ((fp = fopen(keyout, "w")) == NULL ||
	    !PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) ||
	    fclose(fp) != 0)
		hostile_die("cannot write %s", keyout);
	if ((fp = fopen(out, "w")) == NULL)
		hostile_die("cannot write %s", out);
	for (i = 0; i < count; i++) {
		cert = hostile_cert(cn, i, count,
		                    i > 0 && capub != NULL ? capub : key, key,
		                    minimal);
		if (!PEM_write_X509(fp, cert))
			hostile_die("cannot write %s", out);
		X509_free(cert);
	}
	if (fclose(fp) != 0)
		hostile_die("cannot write %s", out);
	EVP_PKEY_free(capub);
	EVP_PKEY_free(key);
	BN_free(e);
	return 0;
}
