/*
 * certsrv_page.c: the hand parser of AD CS web enrollment pages (see
 * certsrv_page.h).  Every scan is a forward loop bounded by the buffer's
 * length; positions are size_t offsets, PG_NONE when nothing was found.
 * No function allocates, recurses or needs a terminating NUL.
 */
#include <stdio.h>
#include <string.h>

#include "ca_plugins/certsrv_page.h"
#include "core/escape.h"

#define PG_NONE ((size_t)-1)

/* Most digits read for one number: ReqIDs and renewals fit in 32 bits. */
#define PG_DIGITS_MAX 10

/* The excerpt's share of the page, in visible bytes. */
#define PG_EXCERPT_MAX 200

/* How far past a code its "(-DDDD SYMBOL)" may end. */
#define PG_SYMBOL_SCAN 96

static const char *const pg_kind_names[CERTSRV_PAGE_KIND__MAX] = {
    "unknown",     "unauthorized",    "issued",  "pending", "denied",
    "bad request", "unknown request", "CA down", "error",
};

const char *
certsrv_page_kind_name(enum certsrv_page_kind kind)
{
	if ((unsigned int)kind >= CERTSRV_PAGE_KIND__MAX)
		return "unknown";
	return pg_kind_names[kind];
}

static int
pg_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
pg_upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c;
}

static int
pg_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
pg_hex(int c)
{
	return pg_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
pg_alnum(int c)
{
	return pg_digit(c) || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '_';
}

static int
pg_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	       c == '\v';
}

/*
 * Returns the offset of needle in buf[from, len), compared ignoring ASCII
 * case when ci is set, or PG_NONE.
 */
static size_t
pg_find(const char *buf, size_t len, size_t from, const char *needle, int ci)
{
	size_t n = strlen(needle), i, j, last, next[2] = {0, 0};
	int first[2], k, nk;
	const char *hit;

	if (n == 0 || from > len || len - from < n)
		return PG_NONE;
	/* Candidates are found with memchr on the needle's first byte (both
	 * cases of it when ci), and only they are compared byte by byte.
	 * A page is scanned some thirty times per classification; a byte
	 * loop at every position made that most of the time a page costs,
	 * and many times that under a fuzzer's instrumentation.  next[]
	 * keeps each first byte's next position, so memchr passes every
	 * byte once. */
	first[0] = (unsigned char)needle[0];
	first[1] = first[0];
	if (ci) {
		first[0] = pg_lower(first[0]);
		first[1] = pg_upper(first[0]);
	}
	nk = first[1] != first[0] ? 2 : 1;
	last = len - n;
	for (i = from; i <= last; i++) {
		for (k = 0; k < nk; k++) {
			if (next[k] > i)
				continue;
			hit = memchr(buf + i, first[k], last + 1 - i);
			next[k] = hit != NULL ? (size_t)(hit - buf) : last + 1;
		}
		i = nk == 2 && next[1] < next[0] ? next[1] : next[0];
		if (i > last)
			break;
		for (j = 0; j < n; j++) {
			int a = (unsigned char)buf[i + j];
			int b = (unsigned char)needle[j];

			if (ci ? pg_lower(a) != pg_lower(b) : a != b)
				break;
		}
		if (j == n)
			return i;
	}
	return PG_NONE;
}

/*
 * Returns the offset just past the element id attribute `ID=name` (also
 * `id="name"`, any case) in buf[from, len), or PG_NONE.  The name must end
 * there, so locDispMsgLabel does not match locDispMsgLabelX.
 */
static size_t
pg_find_id(const char *buf, size_t len, size_t from, const char *name)
{
	size_t n = strlen(name), at, p, end;

	for (at = from; (at = pg_find(buf, len, at, name, 1)) != PG_NONE;
	     at++) {
		end = at + n;
		if (end < len && (buf[end] == '"' || buf[end] == '\''))
			end++;
		if (end < len && pg_alnum((unsigned char)buf[end]))
			continue;
		p = at;
		if (p > 0 && (buf[p - 1] == '"' || buf[p - 1] == '\''))
			p--;
		if (p < 1 || buf[p - 1] != '=')
			continue;
		p--;
		if (p < 2 || pg_lower((unsigned char)buf[p - 1]) != 'd' ||
		    pg_lower((unsigned char)buf[p - 2]) != 'i')
			continue;
		if (p > 2 && pg_alnum((unsigned char)buf[p - 3]))
			continue;
		return end;
	}
	return PG_NONE;
}

/*
 * Reads up to PG_DIGITS_MAX decimal digits at buf[*pos] into *value and
 * moves *pos past them.  Returns 0, or -1 when there is no digit or the
 * number is too long.
 */
static int
pg_number(const char *buf, size_t len, size_t *pos, unsigned long *value)
{
	unsigned long v = 0;
	size_t i = *pos, n = 0;

	while (i < len && pg_digit((unsigned char)buf[i])) {
		if (++n > PG_DIGITS_MAX)
			return -1;
		v = v * 10 + (unsigned long)(buf[i] - '0');
		i++;
	}
	if (n == 0)
		return -1;
	*pos = i;
	*value = v;
	return 0;
}

/*
 * Copies the visible text of buf[from, to) into out (size outlen): tags
 * removed, &amp; &lt; &gt; &quot; &#39; &nbsp; decoded, white space folded
 * to one space and trimmed.
 */
static void
pg_text(const char *buf, size_t from, size_t to, char *out, size_t outlen)
{
	static const struct {
		const char *entity;
		char c;
	} entities[] = {
	    {"&amp;", '&'},  {"&lt;", '<'},   {"&gt;", '>'},
	    {"&quot;", '"'}, {"&#39;", '\''}, {"&nbsp;", ' '},
	};
	size_t i = from, o = 0, e;
	int space = 0, tag = 0;

	if (outlen == 0)
		return;
	while (i < to && o + 1 < outlen) {
		int c = (unsigned char)buf[i];

		if (tag) {
			tag = c != '>';
			i++;
			continue;
		}
		if (c == '<') {
			tag = 1;
			space = o > 0;
			i++;
			continue;
		}
		if (pg_space(c)) {
			space = o > 0;
			i++;
			continue;
		}
		if (c == '&') {
			for (e = 0; e < sizeof(entities) / sizeof(entities[0]);
			     e++) {
				size_t n = strlen(entities[e].entity);

				if (to - i >= n &&
				    pg_find(buf, i + n, i, entities[e].entity,
				            1) == i)
					break;
			}
			if (e < sizeof(entities) / sizeof(entities[0])) {
				i += strlen(entities[e].entity);
				if (entities[e].c == ' ') {
					space = o > 0;
					continue;
				}
				c = entities[e].c;
				i--;
			}
		}
		if (space && o + 2 < outlen)
			out[o++] = ' ';
		space = 0;
		out[o++] = (char)c;
		i++;
	}
	out[o] = '\0';
}

/* Returns the offset of the end of the line holding pos (its '\n' or len). */
static size_t
pg_eol(const char *buf, size_t len, size_t pos)
{
	while (pos < len && buf[pos] != '\n')
		pos++;
	return pos;
}

/*
 * The value of a status label (two TABs): the line after the
 * one holding the label id.  Returns 0 with the text in out, or -1 when
 * the label is absent.
 */
static int
pg_label_value(const char *buf, size_t len, const char *id, char *out,
               size_t outlen)
{
	size_t at, start, end;

	out[0] = '\0';
	if ((at = pg_find_id(buf, len, 0, id)) == PG_NONE)
		return -1;
	start = pg_eol(buf, len, at);
	if (start < len)
		start++;
	end = pg_eol(buf, len, start);
	pg_text(buf, start, end, out, outlen);
	return 0;
}

/*
 * Finds the first code `0xHHHHHHHH` (exactly eight hex digits) in
 * buf[from, to) and, when it is followed by `(-DDDD SYMBOL)` or `(WIN32:
 * N SYMBOL)`, the symbol.  Returns 0 or -1 when there is none.
 */
static int
pg_code(const char *buf, size_t from, size_t to, unsigned long *code,
        char *symbol, size_t symlen)
{
	size_t at, i, end, close, tok;
	unsigned long v;

	for (at = from; (at = pg_find(buf, to, at, "0x", 1)) != PG_NONE; at++) {
		if (at > 0 && pg_alnum((unsigned char)buf[at - 1]))
			continue;
		v = 0;
		for (i = at + 2; i < to && i < at + 10 && pg_hex(buf[i]); i++)
			v = v * 16 +
			    (unsigned long)(pg_digit(buf[i])
			                        ? buf[i] - '0'
			                        : pg_lower(buf[i]) - 'a' + 10);
		if (i != at + 10 || (i < to && pg_alnum((unsigned char)buf[i])))
			continue;
		*code = v;
		symbol[0] = '\0';
		while (i < to && buf[i] == ' ')
			i++;
		if (i >= to || buf[i] != '(')
			return 0;
		end = to - i > PG_SYMBOL_SCAN ? i + PG_SYMBOL_SCAN : to;
		for (close = i; close < end && buf[close] != ')'; close++)
			;
		if (close >= end)
			return 0;
		/* The last token before ')' is the symbol when it looks
		 * like one: upper case, digits and underscores. */
		for (tok = close; tok > i + 1 && buf[tok - 1] != ' '; tok--)
			;
		for (i = tok; i < close; i++)
			if (!pg_alnum((unsigned char)buf[i]) ||
			    (buf[i] >= 'a' && buf[i] <= 'z'))
				return 0;
		if (close - tok > 0 && close - tok < symlen &&
		    !pg_digit((unsigned char)buf[tok])) {
			memcpy(symbol, buf + tok, close - tok);
			symbol[close - tok] = '\0';
		}
		return 0;
	}
	return -1;
}

/* Sets page's code from the first text that has one. */
static void
pg_page_code(struct certsrv_page *page, const char *buf, size_t len)
{
	const char *texts[2] = {page->last_status, page->message};
	size_t i;

	if (page->has_code)
		return;
	for (i = 0; i < 2; i++)
		if (pg_code(texts[i], 0, strlen(texts[i]), &page->code,
		            page->symbol, sizeof(page->symbol)) == 0) {
			page->has_code = 1;
			break;
		}
	if (!page->has_code && buf != NULL &&
	    pg_code(buf, 0, len, &page->code, page->symbol,
	            sizeof(page->symbol)) == 0)
		page->has_code = 1;
	if (page->has_code && page->symbol[0] == '\0') {
		const char *s = certsrv_page_code_symbol(page->code);

		if (s != NULL)
			snprintf(page->symbol, sizeof(page->symbol), "%s", s);
	}
}

/*
 * The disposition number of a status page: the digits just before the
 * `<LocID ID=locDispSpacer>` element.  Returns it, or -1.
 */
static int
pg_disposition(const char *buf, size_t len)
{
	size_t at, p, start;
	unsigned long v;

	if ((at = pg_find_id(buf, len, 0, "locDispSpacer")) == PG_NONE)
		return -1;
	p = at;
	while (p > 0 && buf[p - 1] != '<')
		p--;
	if (p == 0)
		return -1;
	p--;
	while (p > 0 && pg_space((unsigned char)buf[p - 1]))
		p--;
	start = p;
	while (start > 0 && p - start < PG_DIGITS_MAX &&
	       pg_digit((unsigned char)buf[start - 1]))
		start--;
	if (start == p || pg_number(buf, p, &start, &v) != 0 || v > 99)
		return -1;
	return (int)v;
}

/*
 * Reads the request id of a pending or denied page: the first number of
 * the locReqID paragraph, else the script's `nReqId = N`, else the number
 * after the English "Your Request Id is ".  Returns 0 with it in page.
 */
static int
pg_request_id(const char *buf, size_t len, struct certsrv_page *page)
{
	static const char *const markers[] = {"nReqId", "Your Request Id is "};
	size_t at, end, i;

	if ((at = pg_find_id(buf, len, 0, "locReqID")) != PG_NONE) {
		end = len - at > 512 ? at + 512 : len;
		while (at < end && buf[at] != '>')
			at++;
		while (at < end && !pg_digit((unsigned char)buf[at]) &&
		       buf[at] != '<')
			at++;
		if (pg_number(buf, end, &at, &page->req_id) == 0) {
			page->has_req_id = 1;
			return 0;
		}
	}
	for (i = 0; i < 2; i++) {
		if ((at = pg_find(buf, len, 0, markers[i], 1)) == PG_NONE)
			continue;
		at += strlen(markers[i]);
		/* The script form: nReqId = N; or nReqId=N; */
		if (i == 0) {
			while (at < len && (buf[at] == ' ' || buf[at] == '\t'))
				at++;
			if (at >= len || buf[at] != '=')
				continue;
			at++;
			while (at < len && (buf[at] == ' ' || buf[at] == '\t'))
				at++;
		}
		if (pg_number(buf, len, &at, &page->req_id) == 0) {
			page->has_req_id = 1;
			return 0;
		}
	}
	return -1;
}

/*
 * The issued marker: `certnew.cer?ReqID=N&` (`&amp;` matches too, the
 * CACert link does not).  Returns 0 with the id in page.
 */
static int
pg_issued_id(const char *buf, size_t len, struct certsrv_page *page)
{
	static const char marker[] = "certnew.cer?ReqID=";
	size_t at, p;
	unsigned long v;

	for (at = 0; (at = pg_find(buf, len, at, marker, 1)) != PG_NONE; at++) {
		p = at + sizeof(marker) - 1;
		if (pg_number(buf, len, &p, &v) != 0)
			continue;
		if (p < len && buf[p] == '&') {
			page->req_id = v;
			page->has_req_id = 1;
			return 0;
		}
	}
	return -1;
}

/* Codes that say the CA service is not there (RPC endpoint gone). */
static int
pg_code_ca_down(unsigned long code)
{
	return code == 0x800706baUL || /* RPC_S_SERVER_UNAVAILABLE */
	       code == 0x800706d9UL || /* EPT_S_NOT_REGISTERED */
	       code == 0x80070426UL;   /* ERROR_SERVICE_NOT_ACTIVE */
}

/* Codes that say the request itself did not parse. */
static int
pg_code_bad_request(unsigned long code)
{
	return (code & 0xffffff00UL) == 0x80093100UL || /* CRYPT_E_ASN1_* */
	       code == 0x80094001UL || /* CERTSRV_E_BAD_REQUESTSUBJECT */
	       code == 0x80092002UL;   /* CRYPT_E_BAD_ENCODE */
}

static int
pg_ca_down(const char *buf, size_t len, const struct certsrv_page *page)
{
	if (page->has_code && pg_code_ca_down(page->code))
		return 1;
	return pg_find(buf, len, 0,
	               "Certification Authority Service has not been started",
	               1) != PG_NONE;
}

/* Reads the error layout's labelled values and the page's code. */
static void
pg_status_fields(const char *buf, size_t len, struct certsrv_page *page)
{
	pg_label_value(buf, len, "locDispMsgLabel", page->message,
	               sizeof(page->message));
	pg_label_value(buf, len, "locLastStatLabel", page->last_status,
	               sizeof(page->last_status));
	page->disposition = pg_disposition(buf, len);
	pg_page_code(page, buf, len);
}

/*
 * The denied page's message: the error layout's value, else the English
 * `The disposition message is "…"`, else the text of the locDenied
 * paragraph.
 */
static void
pg_denied_message(const char *buf, size_t len, struct certsrv_page *page)
{
	static const char english[] = "The disposition message is \"";
	size_t at, end;

	if (page->message[0] != '\0')
		return;
	if ((at = pg_find(buf, len, 0, english, 1)) != PG_NONE) {
		at += sizeof(english) - 1;
		for (end = at; end < len && buf[end] != '"'; end++)
			;
		pg_text(buf, at, end, page->message, sizeof(page->message));
		return;
	}
	/* The paragraph that quotes the message (locDispMsg), else the
	 * denial paragraph itself. */
	if ((at = pg_find_id(buf, len, 0, "locDispMsg")) == PG_NONE)
		at = pg_find_id(buf, len, 0, "locDenied");
	if (at != PG_NONE) {
		while (at < len && buf[at] != '>')
			at++;
		if ((end = pg_find(buf, len, at, "</P>", 1)) == PG_NONE)
			end = len - at > 1024 ? at + 1024 : len;
		pg_text(buf, at < len ? at + 1 : len, end, page->message,
		        sizeof(page->message));
	}
}

static void
pg_reset(struct certsrv_page *page)
{
	memset(page, 0, sizeof(*page));
	page->disposition = -1;
}

/*
 * Sub-classifies a page with the error layout: CA down, bad request,
 * under submission, denied, or a plain error.
 */
static enum certsrv_page_kind
pg_error_kind(const char *buf, size_t len, struct certsrv_page *page)
{
	if (pg_ca_down(buf, len, page))
		return CERTSRV_PAGE_CA_DOWN;
	if ((page->has_code && pg_code_bad_request(page->code)) ||
	    pg_find(buf, len, 0, "Error Parsing Request", 1) != PG_NONE)
		return CERTSRV_PAGE_BAD_REQUEST;
	if (page->disposition == 5)
		return CERTSRV_PAGE_PENDING;
	if (page->disposition == 2 || page->disposition == 6) {
		pg_denied_message(buf, len, page);
		return CERTSRV_PAGE_DENIED;
	}
	return CERTSRV_PAGE_ERROR;
}

static int
pg_error_layout(const char *buf, size_t len)
{
	return pg_find_id(buf, len, 0, "locContactAdmin") != PG_NONE ||
	       pg_find_id(buf, len, 0, "locDispMsgLabel") != PG_NONE ||
	       pg_find_id(buf, len, 0, "locLastStatLabel") != PG_NONE;
}

enum certsrv_page_kind
certsrv_page_submit(const char *buf, size_t len, struct certsrv_page *page)
{
	enum certsrv_page_kind kind = CERTSRV_PAGE_UNKNOWN;

	pg_reset(page);
	if (buf == NULL)
		len = 0;
	/* Step 0: IIS's own 401 page. */
	if (certsrv_page_unauthorized(buf, len)) {
		kind = CERTSRV_PAGE_UNAUTHORIZED;
		goto out;
	}
	/* Step 1: issued. */
	if (pg_issued_id(buf, len, page) == 0 ||
	    pg_find(buf, len, 0, "Certificate Issued", 1) != PG_NONE) {
		kind = CERTSRV_PAGE_ISSUED;
		goto out;
	}
	pg_status_fields(buf, len, page);
	/* Step 2: denied. */
	if (pg_find_id(buf, len, 0, "locDenied") != PG_NONE ||
	    pg_find(buf, len, 0, "Your certificate request was denied", 1) !=
	        PG_NONE) {
		pg_denied_message(buf, len, page);
		page->has_code = 0;
		page->symbol[0] = '\0';
		pg_page_code(page, buf, len);
		pg_request_id(buf, len, page);
		/* A CSR that does not parse is refused on the denied page. */
		if ((page->has_code && pg_code_bad_request(page->code)) ||
		    pg_find(buf, len, 0, "Error Parsing Request", 1) != PG_NONE)
			kind = CERTSRV_PAGE_BAD_REQUEST;
		else
			kind = CERTSRV_PAGE_DENIED;
		goto out;
	}
	/* Step 3: the error layout, or a CA that is down. */
	if (pg_error_layout(buf, len)) {
		kind = pg_error_kind(buf, len, page);
		pg_request_id(buf, len, page);
		goto out;
	}
	if (pg_ca_down(buf, len, page)) {
		kind = CERTSRV_PAGE_CA_DOWN;
		goto out;
	}
	/* Step 4: pending. */
	if (pg_find_id(buf, len, 0, "locPending") != PG_NONE ||
	    pg_find(buf, len, 0, "nReqId", 1) != PG_NONE ||
	    pg_find(buf, len, 0, "Certificate Pending", 1) != PG_NONE) {
		pg_request_id(buf, len, page);
		kind = CERTSRV_PAGE_PENDING;
		goto out;
	}
	/* English "Error" last: every certsrv page title may say it. */
	if (pg_find(buf, len, 0, "Error", 0) != PG_NONE)
		kind = pg_error_kind(buf, len, page);
out:
	page->kind = kind;
	return kind;
}

enum certsrv_page_kind
certsrv_page_status(const char *buf, size_t len, struct certsrv_page *page)
{
	enum certsrv_page_kind kind = CERTSRV_PAGE_UNKNOWN;

	pg_reset(page);
	if (buf == NULL)
		len = 0;
	if (certsrv_page_unauthorized(buf, len)) {
		kind = CERTSRV_PAGE_UNAUTHORIZED;
		goto out;
	}
	pg_status_fields(buf, len, page);
	if ((page->has_code && page->code == 0x80094004UL) ||
	    pg_find(buf, len, 0, "The requested property value is empty", 1) !=
	        PG_NONE) {
		kind = CERTSRV_PAGE_UNKNOWN_REQUEST;
		goto out;
	}
	if (pg_ca_down(buf, len, page)) {
		kind = CERTSRV_PAGE_CA_DOWN;
		goto out;
	}
	switch (page->disposition) {
	case 5:
		kind = CERTSRV_PAGE_PENDING;
		goto out;
	case 2:
	case 6:
		pg_denied_message(buf, len, page);
		kind = CERTSRV_PAGE_DENIED;
		goto out;
	case 3:
	case 4:
		kind = CERTSRV_PAGE_ISSUED;
		goto out;
	default:
		break;
	}
	if (pg_find_id(buf, len, 0, "locDenied") != PG_NONE ||
	    pg_find(buf, len, 0, "Denied by", 1) != PG_NONE) {
		pg_denied_message(buf, len, page);
		kind = CERTSRV_PAGE_DENIED;
		goto out;
	}
	if (pg_find(buf, len, 0, "Taken Under Submission", 1) != PG_NONE) {
		kind = CERTSRV_PAGE_PENDING;
		goto out;
	}
	if (pg_error_layout(buf, len) ||
	    pg_find(buf, len, 0, "Error", 0) != PG_NONE)
		kind = pg_error_kind(buf, len, page);
out:
	page->kind = kind;
	return kind;
}

int
certsrv_page_renewals(const char *buf, size_t len, unsigned long *renewals)
{
	static const char marker[] = "var nRenewals";
	size_t at, p;
	unsigned long v;

	if (buf == NULL)
		return -1;
	for (at = 0; (at = pg_find(buf, len, at, marker, 0)) != PG_NONE; at++) {
		p = at + sizeof(marker) - 1;
		while (p < len && buf[p] == ' ')
			p++;
		if (p >= len || buf[p] != '=')
			continue;
		p++;
		while (p < len && buf[p] == ' ')
			p++;
		if (pg_number(buf, len, &p, &v) != 0)
			continue;
		while (p < len && buf[p] == ' ')
			p++;
		if (p < len && buf[p] == ';') {
			*renewals = v;
			return 0;
		}
	}
	return -1;
}

int
certsrv_page_unauthorized(const char *buf, size_t len)
{
	size_t at;

	if (buf == NULL)
		return 0;
	if ((at = pg_find(buf, len, 0, "<title>", 1)) == PG_NONE)
		return 0;
	at += 7;
	while (at < len && pg_space((unsigned char)buf[at]))
		at++;
	return pg_find(buf, len, at, "401 - Unauthorized", 1) == at;
}

int
certsrv_page_has_template(const char *buf, size_t len,
                          const char *template_name)
{
	size_t at, end, p, field, start, n = strlen(template_name);
	char quote;

	if (buf == NULL)
		return -1;
	if ((at = pg_find(buf, len, 0, "lbCertTemplate", 1)) == PG_NONE)
		return -1;
	/* Each <option tag is read once, up to its '>', and the search goes
	 * on after that '>': an <option inside a tag that is still open is
	 * an attribute of that tag, not an option of its own.  Looking again
	 * from just past "<option" made a page of "<option<option..." with
	 * no '>' cost time quadratic in its size (fuzz_certsrv_page: 256 KiB
	 * took 36 s, a 1 MiB answer would hold a worker for ten minutes). */
	for (; (at = pg_find(buf, len, at, "<option", 1)) != PG_NONE;
	     at = end) {
		for (end = at; end < len && buf[end] != '>'; end++)
			;
		at += 7;
		if ((p = pg_find(buf, end, at, "value=", 1)) == PG_NONE)
			continue;
		p += 6;
		quote = p < end && (buf[p] == '"' || buf[p] == '\'') ? buf[p]
		                                                     : '\0';
		if (quote != '\0')
			p++;
		/* Field 1 of the ';'-separated value. */
		for (field = 0, start = p; p < end && buf[p] != quote &&
		                           !(quote == '\0' && pg_space(buf[p]));
		     p++) {
			if (buf[p] != ';')
				continue;
			if (field == 1)
				break;
			field++;
			start = p + 1;
		}
		if (field == 1 && p - start == n &&
		    pg_find(buf, start + n, start, template_name, 1) == start)
			return 1;
	}
	return 0;
}

const char *
certsrv_page_excerpt(const char *buf, size_t len, char *out, size_t outlen)
{
	char text[PG_EXCERPT_MAX + 1];
	size_t scan;

	if (out == NULL || outlen == 0)
		return out;
	out[0] = '\0';
	if (buf == NULL)
		return out;
	/* Visible text of at most a few KiB of the page, cut to the excerpt
	 * size: enough to recognise what answered. */
	scan = len > 8192 ? 8192 : len;
	pg_text(buf, 0, scan, text, sizeof(text));
	core_escape(text, CORE_ESCAPE_INNER, out, outlen);
	return out;
}

const char *
certsrv_page_code_symbol(unsigned long code)
{
	static const struct {
		unsigned long code;
		const char *symbol;
	} symbols[] = {
	    {0x80094001UL, "CERTSRV_E_BAD_REQUESTSUBJECT"},
	    {0x80094002UL, "CERTSRV_E_NO_REQUEST"},
	    {0x80094003UL, "CERTSRV_E_BAD_REQUESTSTATUS"},
	    {0x80094004UL, "CERTSRV_E_PROPERTY_EMPTY"},
	    {0x80094012UL, "CERTSRV_E_TEMPLATE_DENIED"},
	    {0x80094014UL, "CERTSRV_E_ADMIN_DENIED_REQUEST"},
	    {0x80094800UL, "CERTSRV_E_UNSUPPORTED_CERT_TYPE"},
	    {0x80094801UL, "CERTSRV_E_NO_CERT_TYPE"},
	    {0x80094802UL, "CERTSRV_E_TEMPLATE_CONFLICT"},
	    {0x80094803UL, "CERTSRV_E_SUBJECT_ALT_NAME_REQUIRED"},
	    {0x80092002UL, "CRYPT_E_BAD_ENCODE"},
	    {0x8009310bUL, "CRYPT_E_ASN1_BADTAG"},
	    {0x80070005UL, "E_ACCESSDENIED"},
	    {0x80070057UL, "E_INVALIDARG"},
	    {0x80070426UL, "ERROR_SERVICE_NOT_ACTIVE"},
	    {0x800706baUL, "RPC_S_SERVER_UNAVAILABLE"},
	    {0x800706d9UL, "EPT_S_NOT_REGISTERED"},
	};
	size_t i;

	for (i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++)
		if (symbols[i].code == code)
			return symbols[i].symbol;
	return NULL;
}
