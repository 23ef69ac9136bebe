/*
 * dogtag_json.h: the readers of what a Dogtag CA answers (the
 * enrollment request and response, PKIException bodies), kept apart from the
 * backend so that each is a pure function over a buffer and can be fuzzed
 * (tests/fuzz/fuzz_dogtag_json.c).  None of them does I/O or keeps state; the
 * buffers need no NUL.  Every text copied out of a body is cut to a fixed size
 * and has its control bytes replaced by blanks, so that it can go into a log
 * line or a client's answer as it is.
 */
#ifndef ESTRAD_CA_DOGTAG_JSON_H
#define ESTRAD_CA_DOGTAG_JSON_H

#include <stddef.h>

#include <openssl/x509.h>

/*
 * Request and certificate ids are strings: "0x" and hex digits, or decimal
 * digits.  Random serial numbers (SSNv2) make them 128 bits and more, so
 * they are never turned into integers.  The size leaves room for far
 * longer ids than any Dogtag makes.
 */
#define DOGTAG_ID_MAX 128

/* CA texts (errorMessage, Message) are cut to this many bytes, so that the
 * context and the hint of a log line survive. */
#define DOGTAG_TEXT_MAX 257

/* requestStatus values; UNKNOWN for anything else. */
enum dogtag_status {
	DOGTAG_STATUS_UNKNOWN,
	DOGTAG_STATUS_BEGIN,
	DOGTAG_STATUS_PENDING,
	DOGTAG_STATUS_SVC_PENDING,
	DOGTAG_STATUS_APPROVED,
	DOGTAG_STATUS_COMPLETE,
	DOGTAG_STATUS_REJECTED,
	DOGTAG_STATUS_CANCELED,
	DOGTAG_STATUS__MAX
};

/* Returns the status named by s (as Dogtag spells it), or UNKNOWN. */
enum dogtag_status dogtag_status_from(const char *s);

/* Returns the static Dogtag spelling of status ("pending", ...). */
const char *dogtag_status_name(enum dogtag_status status);

/* One CertRequestInfo: the enrollment answer's entries[0], or a status. */
struct dogtag_request_info {
	size_t total;                   /* entries in a CertRequestInfos */
	char request_id[DOGTAG_ID_MAX]; /* requestID, else requestURL's end */
	char cert_id[DOGTAG_ID_MAX];    /* certId, else certURL's end; "" */
	enum dogtag_status status;
	char status_text[32];                /* requestStatus as sent */
	char request_type[32];               /* "enrollment", ... */
	char operation_result[32];           /* "success", ... */
	char error_message[DOGTAG_TEXT_MAX]; /* errorMessage, or "" */
};

/*
 * Reads a CertRequestInfos ({"total","entries":[...]}, the enrollment
 * answer; entries[0] is read) or a single CertRequestInfo (the answer of
 * GET …/certrequests/{id}) from buf into out.  Borrows buf.  Returns 0, or
 * -1 when buf is not such a body (not JSON, no entry, no requestStatus, or
 * an id that is no Dogtag id).
 */
int dogtag_json_request_info(const char *buf, size_t len,
                             struct dogtag_request_info *out);

/* A PKIException body, or the "v1 disabled" body. */
struct dogtag_exception {
	char class_name[128]; /* ClassName without its package; "" when none */
	long code;            /* Code, 0 when absent */
	char message[DOGTAG_TEXT_MAX]; /* Message (or message), or "" */
	int v1_disabled;               /* {"error":"REST API v1 have been
	                                  disabled",…} */
};

/*
 * Reads a Dogtag error body from buf into out.  Borrows buf.  Returns 0,
 * or -1 when buf is no JSON object with ClassName, Message or error.
 */
int dogtag_json_exception(const char *buf, size_t len,
                          struct dogtag_exception *out);

/* The answer of GET /pki/v2/info or /pki/rest/info. */
struct dogtag_info {
	char name[128];   /* "Dogtag Certificate System", "" when absent */
	char version[64]; /* "11.7.0", "" when absent */
};

/* Reads an info body; borrows buf.  Returns 0, or -1 when not a JSON
 * object. */
int dogtag_json_info(const char *buf, size_t len, struct dogtag_info *out);

/* The answer of GET …/account/login. */
struct dogtag_account {
	char id[128];        /* "caadmin", "ipara", "" when absent */
	char full_name[128]; /* "" when absent */
	size_t nroles;       /* entries of Roles */
};

/* Reads an account body; borrows buf.  Returns 0, or -1 when not a JSON
 * object. */
int dogtag_json_account(const char *buf, size_t len,
                        struct dogtag_account *out);

/* What estrad checks in a review (GET …/agent/certrequests/{id}). */
struct dogtag_review {
	char request_id[DOGTAG_ID_MAX]; /* requestId, "" when absent */
	enum dogtag_status status;      /* requestStatus */
	int has_nonce;                  /* a non-empty nonce is present */
};

/* Reads a review body; borrows buf.  Returns 0, or -1 when not a JSON
 * object. */
int dogtag_json_review(const char *buf, size_t len, struct dogtag_review *out);

/* What estrad checks in a profile (GET …/profiles/{id}, a ProfileData). */
struct dogtag_profile {
	int enabled;          /* "enabled": 1 or 0 */
	char enabled_by[128]; /* "enabledBy", the agent; "" when absent */
};

/* Reads a ProfileData body; borrows buf.  Returns 0, or -1 when it is no
 * JSON object or its "enabled" is no boolean. */
int dogtag_json_profile(const char *buf, size_t len,
                        struct dogtag_profile *out);

/* A CertData (GET …/certs/{id}). */
struct dogtag_cert_data {
	char id[DOGTAG_ID_MAX];
	char status[32]; /* "VALID", ... */
	char *encoded;   /* Encoded: PEM of the certificate; NULL when absent */
	char *pkcs7;     /* PKCS7CertChain: base64, line breaks, no armour */
};

/*
 * Reads a CertData from buf into out (release with
 * dogtag_cert_data_cleanup, also after -1).  Borrows buf.  Returns 0, or
 * -1 when buf is no JSON object, or has neither Encoded nor
 * PKCS7CertChain, or out of memory.
 */
int dogtag_json_cert_data(const char *buf, size_t len,
                          struct dogtag_cert_data *out);

/* Frees what dogtag_json_cert_data allocated in cd; cd may be zeroed. */
void dogtag_cert_data_cleanup(struct dogtag_cert_data *cd);

/*
 * Returns 1 when s (NUL-terminated) is a Dogtag id: "0x" and 1 to
 * DOGTAG_ID_MAX - 3 hex digits, or 1 to DOGTAG_ID_MAX - 1 decimal digits;
 * else 0.
 */
int dogtag_id_valid(const char *s);

/*
 * Copies the last path segment of url (len bytes, no NUL needed) to out
 * (size outlen) when it is a Dogtag id ("…/certrequests/26" → "26").
 * Returns 0, or -1 with out "" when it is not.
 */
int dogtag_id_from_url(const char *url, size_t len, char *out, size_t outlen);

/*
 * Returns a new enrollment request (CertEnrollmentRequest) for
 * profile with the CSR as one line of base64 DER (free with free), or NULL
 * when out of memory or csr cannot be encoded.  Borrows csr.
 */
char *dogtag_json_enroll_body(const char *profile, X509_REQ *csr);

/*
 * Returns the certificates of a PKCS#7 in buf: DER, PEM ("-----BEGIN
 * PKCS7-----"), or bare base64 with any line breaks (PKCS7CertChain).  A
 * new stack in the PKCS#7's order (free with sk_X509_pop_free), or NULL
 * when there is none.  Borrows buf; leaves the OpenSSL error queue empty.
 */
STACK_OF(X509) *dogtag_certs_from_pkcs7(const unsigned char *buf, size_t len);

/*
 * Returns the certificates of PEM text (Encoded, or a bundle) as a new
 * stack (free with sk_X509_pop_free), or NULL when there is none.
 */
STACK_OF(X509) *dogtag_certs_from_pem(const char *buf, size_t len);

/*
 * Returns 1 when a body looks like an HTML page (Tomcat's error pages):
 * content_type text/html, or the first non-blank byte is '<'.  buf may be
 * NULL with len 0; content_type may be NULL.
 */
int dogtag_body_is_html(const char *buf, size_t len, const char *content_type);

#endif
