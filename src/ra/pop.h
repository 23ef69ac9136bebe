/*
 * pop.h: proof-of-possession linking (RFC 7030 §3.5): a CSR that carries
 * challengePassword (or RFC 7894 estIdentityLinking) must carry the
 * base64 channel binding of the TLS connection it arrives on: tls-unique
 * (RFC 5929) on TLS 1.2, tls-exporter (RFC 9266) on TLS 1.3 when the
 * label enables it.  Pure: no I/O, no state.
 */
#ifndef ESTRAD_RA_POP_H
#define ESTRAD_RA_POP_H

#include <stddef.h>

#include <openssl/x509.h>

/* A label's "pop" setting. */
enum ra_pop_mode {
	RA_POP_OFF,      /* linking attributes are ignored */
	RA_POP_OPTIONAL, /* checked when present */
	RA_POP_REQUIRED  /* must be present and match */
};

/* Returns "off", "optional" or "required". */
const char *ra_pop_mode_name(enum ra_pop_mode mode);

/* The connection's channel bindings; borrowed. */
struct ra_pop_channel {
	int tls13;                     /* the connection is TLS 1.3 */
	const unsigned char *unique;   /* tls-unique, TLS <= 1.2 */
	size_t unique_len;             /* 0 when there is none */
	const unsigned char *exporter; /* tls-exporter, TLS 1.3 */
	size_t exporter_len;           /* 0 when there is none */
};

/* What the check found. */
struct ra_pop_result {
	int status; /* 0 linked or not needed; else the HTTP status */
	/* How the request was linked: "tls-unique", "tls-exporter",
	 * "none" (nothing to link), "waived" (RA client), "off". */
	const char *linked;
	char reason[256]; /* refusal: the client's text, names popFailed */
	char hint[256];
};

/*
 * Checks csr against the channel.  tls_exporter says whether the label
 * accepts tls-exporter on TLS 1.3; waived is set for an RA client whose
 * label waives linking.  Returns 0 when the request may go on, else -1
 * with result->status 400 (the attributes are malformed or disagree) or
 * 403 (linking failed or is required).  Borrows everything.
 */
int ra_pop_check(enum ra_pop_mode mode, int tls_exporter, int waived,
                 X509_REQ *csr, const struct ra_pop_channel *channel,
                 struct ra_pop_result *result);

#endif
