/*
 * est_client.c: a small EST enrollment client for estrad's integration
 * tests.  It speaks TLS 1.2 or 1.3 through libcurl, may present a client
 * certificate, sends HTTP Basic credentials preemptively or only after a
 * 401 challenge (as libest does), and builds the CSR after the handshake
 * so that it can put the connection's tls-unique (RFC 5929) or
 * tls-exporter (RFC 9266) into challengePassword: proof-of-possession is
 * tested with real channel bindings, not constants.
 *
 *   est_client --url URL --cacert FILE [options]
 *
 * The CSR is built inside libcurl's read callback, when the connection
 * exists and CURLINFO_TLS_SSL_PTR gives its SSL; the body has a fixed
 * Content-Length and is padded with line feeds, which EST receivers
 * ignore in base64 (RFC 8951 §3.1).  A retry on another connection
 * rewinds the body through the seek callback and the CSR is built again
 * for that connection.
 *
 * Writes the response headers (every response, status lines included) to
 * --headers and the last body to --body; --info gets "tls=", "resumed="
 * and "pop=" lines.  Exit 0 when an HTTP answer came, 1 on errors, 2 on
 * bad usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/asn1.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* The fixed body size: a base64 CSR of any test key fits in it. */
#define CLIENT_BODY_MAX 8192

/* Most --ext options. */
#define CLIENT_EXT_MAX 8

struct client {
	const char *url, *cacert, *cert, *key, *basic, *subject, *subject_from;
	const char *san, *newkey, *key_in, *key_out, *md, *pop, *headers;
	const char *body, *info, *tls;
	const char *ext[CLIENT_EXT_MAX];
	int next, challenge;

	CURL *curl;
	EVP_PKEY *pkey;
	FILE *headers_fp, *body_fp;
	char payload[CLIENT_BODY_MAX];
	size_t payload_len, payload_off;
	int built;
	char pop_value[128];
	char tls_version[32];
	int resumed;
	int saw_www_auth;
	char error[512];
};

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: est_client --url URL --cacert FILE [options]\n"
	        "  --cert FILE --key FILE   TLS client certificate and key\n"
	        "  --tls 1.2|1.3            pin the TLS version\n"
	        "  --basic USER:PASS        HTTP Basic, preemptive\n"
	        "  --challenge              send Basic only after a 401\n"
	        "  --subject /CN=a/O=b      CSR subject\n"
	        "  --subject-from FILE      CSR subject and SAN of a cert\n"
	        "  --san DNS:a,IP:1.2.3.4   CSR subjectAltName\n"
	        "  --ext NAME=VALUE         requested extension (repeat)\n"
	        "  --newkey ec|ec:P-384|rsa:BITS|ed25519 (default ec)\n"
	        "  --key-in FILE            CSR key (renewal)\n"
	        "  --key-out FILE           write the new CSR key\n"
	        "  --md sha256|sha384|sha1  CSR signature digest\n"
	        "  --pop none|unique|exporter|wrong  challengePassword\n"
	        "  --headers FILE --body FILE --info FILE   outputs\n");
}

/* Logs the OpenSSL queue after msg into c->error. */
static void
client_ssl_error(struct client *c, const char *msg)
{
	unsigned long e = ERR_get_error();

	snprintf(c->error, sizeof(c->error), "%s%s%s", msg, e != 0 ? ": " : "",
	         e != 0 ? ERR_error_string(e, NULL) : "");
	ERR_clear_error();
}

static EVP_PKEY *
client_key(struct client *c)
{
	EVP_PKEY *pkey = NULL;
	FILE *fp;
	const char *spec = c->newkey != NULL ? c->newkey : "ec";

	if (c->key_in != NULL) {
		if ((fp = fopen(c->key_in, "r")) == NULL) {
			snprintf(c->error, sizeof(c->error), "cannot open %s",
			         c->key_in);
			return NULL;
		}
		pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
		fclose(fp);
	} else if (strcmp(spec, "ec") == 0)
		pkey = EVP_EC_gen("P-256");
	else if (strncmp(spec, "ec:", 3) == 0)
		pkey = EVP_EC_gen(spec + 3);
	else if (strncmp(spec, "rsa:", 4) == 0)
		pkey = EVP_RSA_gen((unsigned int)strtoul(spec + 4, NULL, 10));
	else if (strcmp(spec, "ed25519") == 0)
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pkey == NULL) {
		client_ssl_error(c, "cannot make or read the CSR key");
		return NULL;
	}
	if (c->key_out != NULL) {
		if ((fp = fopen(c->key_out, "w")) == NULL ||
		    PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL) !=
		        1) {
			if (fp != NULL)
				fclose(fp);
			EVP_PKEY_free(pkey);
			snprintf(c->error, sizeof(c->error), "cannot write %s",
			         c->key_out);
			return NULL;
		}
		fclose(fp);
	}
	return pkey;
}

/* Parses "/CN=a/O=b" into name. */
static int
client_subject(const char *text, X509_NAME *name)
{
	char buf[1024], *p, *next, *eq;

	if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf) ||
	    buf[0] != '/')
		return -1;
	for (p = buf + 1; p != NULL && *p != '\0'; p = next) {
		if ((next = strchr(p, '/')) != NULL)
			*next++ = '\0';
		if ((eq = strchr(p, '=')) == NULL)
			return -1;
		*eq = '\0';
		if (X509_NAME_add_entry_by_txt(name, p, MBSTRING_UTF8,
		                               (unsigned char *)eq + 1, -1, -1,
		                               0) != 1)
			return -1;
	}
	return 0;
}

/* The channel binding value the CSR carries, base64, or "". */
static int
client_pop(struct client *c, SSL *ssl)
{
	unsigned char bind[64];
	size_t len = 0;

	c->pop_value[0] = '\0';
	if (c->pop == NULL || strcmp(c->pop, "none") == 0)
		return 0;
	if (strcmp(c->pop, "unique") == 0) {
		/* The first Finished of the handshake: ours on a full one,
		 * the server's on a resumed one (RFC 5929 §3.1). */
		len = SSL_session_reused(ssl)
		          ? SSL_get_peer_finished(ssl, bind, sizeof(bind))
		          : SSL_get_finished(ssl, bind, sizeof(bind));
		if (SSL_version(ssl) > TLS1_2_VERSION)
			len = 12; /* what a naive client sends on TLS 1.3 */
	} else if (strcmp(c->pop, "exporter") == 0) {
		len = 32;
		if (SSL_export_keying_material(
		        ssl, bind, len, "EXPORTER-Channel-Binding",
		        sizeof("EXPORTER-Channel-Binding") - 1, NULL, 0,
		        0) != 1) {
			client_ssl_error(c, "tls-exporter failed");
			return -1;
		}
	} else if (strcmp(c->pop, "wrong") == 0) {
		len = 12;
		if (RAND_bytes(bind, (int)len) != 1)
			return -1;
	} else {
		snprintf(c->error, sizeof(c->error), "unknown --pop %s",
		         c->pop);
		return -1;
	}
	if (len == 0 || len > sizeof(bind)) {
		snprintf(c->error, sizeof(c->error), "no channel binding");
		return -1;
	}
	EVP_EncodeBlock((unsigned char *)c->pop_value, bind, (int)len);
	return 0;
}

/* Builds the CSR for the connection ssl into c->payload. */
static int
client_build(struct client *c, SSL *ssl)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	CONF *conf = NULL;
	X509_REQ *req = NULL;
	X509 *from = NULL;
	FILE *fp;
	unsigned char *der = NULL;
	const EVP_MD *md = NULL;
	char name[128], *eq;
	int len, i, rc = -1;
	size_t n, col;
	char *b64 = NULL;

	snprintf(c->tls_version, sizeof(c->tls_version), "%s",
	         SSL_get_version(ssl));
	c->resumed = SSL_session_reused(ssl);
	if (client_pop(c, ssl) != 0)
		goto out;
	if ((req = X509_REQ_new()) == NULL ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL)
		goto out;
	X509_REQ_set_version(req, 0);
	if (c->subject_from != NULL) {
		if ((fp = fopen(c->subject_from, "r")) == NULL ||
		    (from = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
			if (fp != NULL)
				fclose(fp);
			snprintf(c->error, sizeof(c->error), "cannot read %s",
			         c->subject_from);
			goto out;
		}
		fclose(fp);
		X509_REQ_set_subject_name(req, X509_get_subject_name(from));
		if ((i = X509_get_ext_by_NID(from, NID_subject_alt_name, -1)) >=
		        0 &&
		    (ext = X509_EXTENSION_dup(X509_get_ext(from, i))) != NULL)
			sk_X509_EXTENSION_push(exts, ext);
	} else if (c->subject != NULL &&
	           client_subject(c->subject, X509_REQ_get_subject_name(req)) !=
	               0) {
		snprintf(c->error, sizeof(c->error), "bad --subject %s",
		         c->subject);
		goto out;
	}
	/* An empty configuration database: extension values such as
	 * certificatePolicies look sections up in it. */
	if ((conf = NCONF_new(NULL)) == NULL)
		goto out;
	X509V3_set_ctx(&v3, NULL, NULL, req, NULL, 0);
	X509V3_set_nconf(&v3, conf);
	if (c->san != NULL) {
		if ((ext = X509V3_EXT_nconf_nid(conf, &v3, NID_subject_alt_name,
		                                c->san)) == NULL) {
			client_ssl_error(c, "bad --san");
			goto out;
		}
		sk_X509_EXTENSION_push(exts, ext);
	}
	for (i = 0; i < c->next; i++) {
		snprintf(name, sizeof(name), "%s", c->ext[i]);
		if ((eq = strchr(name, '=')) == NULL) {
			snprintf(c->error, sizeof(c->error), "bad --ext %s",
			         c->ext[i]);
			goto out;
		}
		*eq = '\0';
		if ((ext = X509V3_EXT_nconf(conf, &v3, name,
		                            c->ext[i] + (eq - name) + 1)) ==
		    NULL) {
			client_ssl_error(c, "bad --ext");
			goto out;
		}
		sk_X509_EXTENSION_push(exts, ext);
	}
	if (sk_X509_EXTENSION_num(exts) > 0 &&
	    X509_REQ_add_extensions(req, exts) != 1)
		goto out;
	if (c->pop_value[0] != '\0' &&
	    X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
	                              MBSTRING_ASC,
	                              (unsigned char *)c->pop_value, -1) != 1)
		goto out;
	if (EVP_PKEY_get_base_id(c->pkey) != EVP_PKEY_ED25519 &&
	    (md = EVP_get_digestbyname(c->md != NULL ? c->md : "sha256")) ==
	        NULL) {
		snprintf(c->error, sizeof(c->error), "unknown --md");
		goto out;
	}
	if (X509_REQ_set_pubkey(req, c->pkey) != 1 ||
	    X509_REQ_sign(req, c->pkey, md) <= 0) {
		client_ssl_error(c, "cannot sign the CSR");
		goto out;
	}
	if ((len = i2d_X509_REQ(req, &der)) <= 0)
		goto out;
	if ((b64 = malloc((size_t)len / 3 * 4 + 8)) == NULL)
		goto out;
	n = (size_t)EVP_EncodeBlock((unsigned char *)b64, der, len);
	/* 64 columns like libest, then line feeds up to the fixed size. */
	c->payload_len = 0;
	for (col = 0; col < n; col += 64) {
		size_t k = n - col < 64 ? n - col : 64;

		if (c->payload_len + k + 1 >= sizeof(c->payload))
			goto out;
		memcpy(c->payload + c->payload_len, b64 + col, k);
		c->payload_len += k;
		c->payload[c->payload_len++] = '\n';
	}
	memset(c->payload + c->payload_len, '\n',
	       sizeof(c->payload) - c->payload_len);
	c->payload_len = sizeof(c->payload);
	c->payload_off = 0;
	c->built = 1;
	rc = 0;
out:
	if (rc != 0 && c->error[0] == '\0')
		client_ssl_error(c, "cannot build the CSR");
	free(b64);
	OPENSSL_free(der);
	X509_free(from);
	X509_REQ_free(req);
	NCONF_free(conf);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

static size_t
client_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct client *c = arg;
	const struct curl_tlssessioninfo *info = NULL;
	size_t want = size * nitems, left;

	if (!c->built) {
		if (curl_easy_getinfo(c->curl, CURLINFO_TLS_SSL_PTR, &info) !=
		        CURLE_OK ||
		    info == NULL || info->backend != CURLSSLBACKEND_OPENSSL ||
		    info->internals == NULL) {
			snprintf(c->error, sizeof(c->error),
			         "no OpenSSL connection in the read callback");
			return CURL_READFUNC_ABORT;
		}
		if (client_build(c, info->internals) != 0)
			return CURL_READFUNC_ABORT;
	}
	left = c->payload_len - c->payload_off;
	if (want > left)
		want = left;
	memcpy(buf, c->payload + c->payload_off, want);
	c->payload_off += want;
	return want;
}

/* A retry starts the body again: on a new connection, with a new CSR. */
static int
client_seek(void *arg, curl_off_t offset, int origin)
{
	struct client *c = arg;

	if (offset != 0 || origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	c->built = 0;
	c->payload_off = 0;
	return CURL_SEEKFUNC_OK;
}

static size_t
client_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct client *c = arg;
	size_t len = size * nitems;

	if (len >= 17 && strncasecmp(buf, "WWW-Authenticate:", 17) == 0)
		c->saw_www_auth = 1;
	if (c->headers_fp != NULL)
		fwrite(buf, 1, len, c->headers_fp);
	return len;
}

static size_t
client_body(char *buf, size_t size, size_t nitems, void *arg)
{
	struct client *c = arg;

	if (c->body_fp != NULL)
		fwrite(buf, 1, size * nitems, c->body_fp);
	return size * nitems;
}

/* One POST on the handle; returns the HTTP status or -1. */
static long
client_post(struct client *c)
{
	long status = -1;
	CURLcode rc;

	c->built = 0;
	c->payload_off = 0;
	c->error[0] = '\0';
	if (c->body_fp != NULL)
		fclose(c->body_fp);
	c->body_fp = NULL;
	if (c->body != NULL && (c->body_fp = fopen(c->body, "w")) == NULL) {
		snprintf(c->error, sizeof(c->error), "cannot write %s",
		         c->body);
		return -1;
	}
	if ((rc = curl_easy_perform(c->curl)) != CURLE_OK) {
		if (c->error[0] == '\0')
			snprintf(c->error, sizeof(c->error), "curl %d: %s",
			         (int)rc, curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (c->body_fp != NULL)
		fflush(c->body_fp);
	return status;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"cacert", required_argument, NULL, 'C'},
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"tls", required_argument, NULL, 't'},
	    {"basic", required_argument, NULL, 'b'},
	    {"challenge", no_argument, NULL, 'x'},
	    {"subject", required_argument, NULL, 's'},
	    {"subject-from", required_argument, NULL, 'S'},
	    {"san", required_argument, NULL, 'a'},
	    {"ext", required_argument, NULL, 'e'},
	    {"newkey", required_argument, NULL, 'n'},
	    {"key-in", required_argument, NULL, 'i'},
	    {"key-out", required_argument, NULL, 'o'},
	    {"md", required_argument, NULL, 'm'},
	    {"pop", required_argument, NULL, 'p'},
	    {"headers", required_argument, NULL, 'H'},
	    {"body", required_argument, NULL, 'B'},
	    {"info", required_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct client c;
	struct curl_slist *hdrs = NULL;
	FILE *fp;
	long status;
	int opt, rc = 1;

	memset(&c, 0, sizeof(c));
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'u':
			c.url = optarg;
			break;
		case 'C':
			c.cacert = optarg;
			break;
		case 'c':
			c.cert = optarg;
			break;
		case 'k':
			c.key = optarg;
			break;
		case 't':
			c.tls = optarg;
			break;
		case 'b':
			c.basic = optarg;
			break;
		case 'x':
			c.challenge = 1;
			break;
		case 's':
			c.subject = optarg;
			break;
		case 'S':
			c.subject_from = optarg;
			break;
		case 'a':
			c.san = optarg;
			break;
		case 'e':
			if (c.next >= CLIENT_EXT_MAX) {
				usage(stderr);
				return 2;
			}
			c.ext[c.next++] = optarg;
			break;
		case 'n':
			c.newkey = optarg;
			break;
		case 'i':
			c.key_in = optarg;
			break;
		case 'o':
			c.key_out = optarg;
			break;
		case 'm':
			c.md = optarg;
			break;
		case 'p':
			c.pop = optarg;
			break;
		case 'H':
			c.headers = optarg;
			break;
		case 'B':
			c.body = optarg;
			break;
		case 'I':
			c.info = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (c.url == NULL || c.cacert == NULL || optind != argc ||
	    (c.challenge && c.basic == NULL)) {
		usage(stderr);
		return 2;
	}
	/* Subjects as UTF8String, as the dev PKI encodes them, so that a
	 * renewal CSR matches its certificate byte for byte. */
	ASN1_STRING_set_default_mask_asc("utf8only");
	if ((c.pkey = client_key(&c)) == NULL)
		goto out;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (c.curl = curl_easy_init()) == NULL)
		goto out;
	if (c.headers != NULL &&
	    (c.headers_fp = fopen(c.headers, "w")) == NULL) {
		snprintf(c.error, sizeof(c.error), "cannot write %s",
		         c.headers);
		goto out;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/pkcs10");
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c.curl, CURLOPT_URL, c.url);
	curl_easy_setopt(c.curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c.curl, CURLOPT_CAINFO, c.cacert);
	curl_easy_setopt(c.curl, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c.curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c.curl, CURLOPT_USERAGENT, "estrad-test-client");
	curl_easy_setopt(c.curl, CURLOPT_POST, 1L);
	curl_easy_setopt(c.curl, CURLOPT_POSTFIELDSIZE_LARGE,
	                 (curl_off_t)CLIENT_BODY_MAX);
	curl_easy_setopt(c.curl, CURLOPT_READFUNCTION, client_read);
	curl_easy_setopt(c.curl, CURLOPT_READDATA, &c);
	curl_easy_setopt(c.curl, CURLOPT_SEEKFUNCTION, client_seek);
	curl_easy_setopt(c.curl, CURLOPT_SEEKDATA, &c);
	curl_easy_setopt(c.curl, CURLOPT_HEADERFUNCTION, client_header);
	curl_easy_setopt(c.curl, CURLOPT_HEADERDATA, &c);
	curl_easy_setopt(c.curl, CURLOPT_WRITEFUNCTION, client_body);
	curl_easy_setopt(c.curl, CURLOPT_WRITEDATA, &c);
	if (c.tls != NULL && strcmp(c.tls, "1.2") == 0)
		curl_easy_setopt(c.curl, CURLOPT_SSLVERSION,
		                 (long)(CURL_SSLVERSION_TLSv1_2 |
		                        CURL_SSLVERSION_MAX_TLSv1_2));
	else if (c.tls != NULL && strcmp(c.tls, "1.3") == 0)
		curl_easy_setopt(c.curl, CURLOPT_SSLVERSION,
		                 (long)(CURL_SSLVERSION_TLSv1_3 |
		                        CURL_SSLVERSION_MAX_TLSv1_3));
	if (c.cert != NULL) {
		curl_easy_setopt(c.curl, CURLOPT_SSLCERT, c.cert);
		curl_easy_setopt(c.curl, CURLOPT_SSLKEY,
		                 c.key != NULL ? c.key : c.cert);
	}
	if (c.basic != NULL && !c.challenge) {
		curl_easy_setopt(c.curl, CURLOPT_HTTPAUTH,
		                 (long)CURLAUTH_BASIC);
		curl_easy_setopt(c.curl, CURLOPT_USERPWD, c.basic);
	}
	status = client_post(&c);
	if (status == 401 && c.challenge) {
		/* libest's way: credentials only after the challenge, on the
		 * same handle (and connection, when the server keeps it). */
		if (!c.saw_www_auth) {
			snprintf(c.error, sizeof(c.error),
			         "401 without WWW-Authenticate");
			goto out;
		}
		curl_easy_setopt(c.curl, CURLOPT_HTTPAUTH,
		                 (long)CURLAUTH_BASIC);
		curl_easy_setopt(c.curl, CURLOPT_USERPWD, c.basic);
		status = client_post(&c);
	}
	if (status < 0)
		goto out;
	if (c.info != NULL && (fp = fopen(c.info, "w")) != NULL) {
		fprintf(fp, "tls=%s\nresumed=%d\npop=%s\n", c.tls_version,
		        c.resumed, c.pop_value);
		fclose(fp);
	}
	printf("%ld\n", status);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "est_client: %s\n",
		        c.error[0] != '\0' ? c.error : "failed");
	if (c.headers_fp != NULL)
		fclose(c.headers_fp);
	if (c.body_fp != NULL)
		fclose(c.body_fp);
	curl_slist_free_all(hdrs);
	if (c.curl != NULL)
		curl_easy_cleanup(c.curl);
	curl_global_cleanup();
	EVP_PKEY_free(c.pkey);
	return rc;
}
