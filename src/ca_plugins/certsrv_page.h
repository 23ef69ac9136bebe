/*
 * certsrv_page.h: the one hand parser of AD CS web enrollment pages
 * (the submit, collect and CA-information pages).  Pure functions over a byte
 * buffer and its length: no allocation, no recursion, no read past len, no NUL
 * needed, so that a fuzzer can call them on anything.  Locale-independent
 * markers (element ids, URLs, numbers) are tried first, English text second.
 */
#ifndef ESTRAD_CA_CERTSRV_PAGE_H
#define ESTRAD_CA_CERTSRV_PAGE_H

#include <stddef.h>

/* What a page says, in the order the backend maps it. */
enum certsrv_page_kind {
	CERTSRV_PAGE_UNKNOWN,         /* nothing recognised */
	CERTSRV_PAGE_UNAUTHORIZED,    /* the IIS 401 page */
	CERTSRV_PAGE_ISSUED,          /* issued; req_id when found */
	CERTSRV_PAGE_PENDING,         /* under submission (disposition 5) */
	CERTSRV_PAGE_DENIED,          /* denied by policy or a CA manager */
	CERTSRV_PAGE_BAD_REQUEST,     /* the CSR did not parse */
	CERTSRV_PAGE_UNKNOWN_REQUEST, /* CERTSRV_E_PROPERTY_EMPTY */
	CERTSRV_PAGE_CA_DOWN,         /* the CA service is not running */
	CERTSRV_PAGE_ERROR,           /* any other error page */
	CERTSRV_PAGE_KIND__MAX
};

/* Sizes of the texts kept from a page. */
#define CERTSRV_PAGE_TEXT_MAX   256
#define CERTSRV_PAGE_SYMBOL_MAX 64

/*
 * What was read from a page.  Texts have tags removed, the common HTML
 * entities decoded and white space folded; they are raw CA text otherwise
 * (the logger escapes control bytes).
 */
struct certsrv_page {
	enum certsrv_page_kind kind;
	int has_req_id;
	unsigned long req_id; /* the CA's request id (ReqID) */
	int disposition;      /* CR_DISP_* number on status pages, or -1 */
	int has_code;
	unsigned long code;                      /* 0xHHHHHHHH */
	char symbol[CERTSRV_PAGE_SYMBOL_MAX];    /* CERTSRV_E_... or "" */
	char message[CERTSRV_PAGE_TEXT_MAX];     /* disposition message */
	char last_status[CERTSRV_PAGE_TEXT_MAX]; /* LastStatus line */
};

/* Returns the static lower-case name of kind ("issued", ...). */
const char *certsrv_page_kind_name(enum certsrv_page_kind kind);

/*
 * Classifies the answer of POST certfnsh.asp (401 page, issued,
 * denied, error, pending, unknown, in that order).  Borrows buf for the
 * call; fills *page.  Returns page->kind.
 */
enum certsrv_page_kind certsrv_page_submit(const char *buf, size_t len,
                                           struct certsrv_page *page);

/*
 * Classifies an HTML answer of certnew.cer / certnew.p7b (401
 * page, unknown ReqID, CA down, then the disposition number, then English
 * text).  Borrows buf; fills *page; returns page->kind.
 */
enum certsrv_page_kind certsrv_page_status(const char *buf, size_t len,
                                           struct certsrv_page *page);

/*
 * Reads `var nRenewals=N;` of certcarc.asp into *renewals.  Returns 0, or
 * -1 when the page has no such line (never a default).
 */
int certsrv_page_renewals(const char *buf, size_t len, unsigned long *renewals);

/* Returns 1 when buf is IIS's 401 page (`<title>401 - Unauthorized`). */
int certsrv_page_unauthorized(const char *buf, size_t len);

/*
 * Looks for template (its internal name, field 1 of an option value) in
 * the lbCertTemplate list of certrqxt.asp.  Borrows both.  Returns 1 when
 * listed, 0 when not, -1 when the page has no template list.
 */
int certsrv_page_has_template(const char *buf, size_t len,
                              const char *template_name);

/*
 * Writes a short excerpt of the page (its visible text, at most 200
 * bytes of it) into out (size outlen), printable ASCII only: quotes and
 * backslashes escaped, other bytes as \xHH.  Returns out.
 */
const char *certsrv_page_excerpt(const char *buf, size_t len, char *out,
                                 size_t outlen);

/* Returns the symbol of a well-known AD CS / Win32 code, or NULL. */
const char *certsrv_page_code_symbol(unsigned long code);

#endif
