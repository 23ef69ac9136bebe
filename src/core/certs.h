/*
 * certs.h: reading certificates and putting CA chains in order.
 */
#ifndef ESTRAD_CORE_CERTS_H
#define ESTRAD_CORE_CERTS_H

#include <stddef.h>

#include <openssl/bio.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

/*
 * Reads every PEM certificate of bio (borrowed), in order.  Returns a new
 * stack (free with sk_X509_pop_free), or NULL when bio holds none, memory
 * runs out, or (strict set) a block other than the end of the data does
 * not read: the OpenSSL error queue then says why.  *count (may be NULL)
 * gets how many certificates were read.  Clears the queue otherwise.
 */
STACK_OF(X509) *core_certs_read_pem(BIO *bio, int strict, int *count);

/*
 * Orders a CA chain as a CA web service may hand it out in any order: the
 * certificate no other one was issued by first (the issuing CA), then each
 * one's issuer up to the root, anything else after.  Takes in; returns a
 * new stack, or in itself when ordering fails.
 */
STACK_OF(X509) *core_chain_order(STACK_OF(X509) *in);

/*
 * Appends the certificates of a signed (certs-only) PKCS#7 to out, each
 * with a reference of its own.  Borrows p7 and out.  Returns how many
 * were appended, or -1 when p7 is NULL, not signedData, or memory ran out.
 */
int core_certs_from_pkcs7(const PKCS7 *p7, STACK_OF(X509) *out);

/*
 * Appends every certificate of data (len bytes, borrowed) to out: a DER
 * certificate or certs-only PKCS#7, or PEM blocks of certificates and
 * PKCS#7s, where a CERTIFICATE block may also hold a PKCS#7 (AD CS arms
 * its certs-only PKCS#7 that way).  Unreadable blocks are skipped.
 * Returns how many were appended (0: none readable), or -1 when memory ran
 * out.  Leaves the OpenSSL error queue empty.
 */
int core_certs_read(const unsigned char *data, size_t len, STACK_OF(X509) *out);

#endif
