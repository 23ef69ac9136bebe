/*
 * head.c: the request-head checks evhttp does not make (see head.h).
 *
 * The scanner follows evhttp's reading of a head: a line ends at a LF,
 * with or without a CR before it, and the head ends at the first empty
 * line after the request line.  It reads one byte at a time and keeps
 * only what the checks need: the field name (cut), a short copy of the
 * value and where it lies in the stream.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "est/head.h"

void
est_head_init(struct est_head *h, est_head_span_fn span_fn, void *span_arg)
{
	memset(h, 0, sizeof(*h));
	h->span_fn = span_fn;
	h->span_arg = span_arg;
}

/* Hands the span to the caller now when the head is refused, or keeps it
 * until it is (a later line may refuse it). */
static void
head_span(struct est_head *h, uint64_t start, uint64_t end, int fill)
{
	if (h->why[0] != '\0') {
		if (h->span_fn != NULL && end > start)
			h->span_fn(h->span_arg, start, end, fill);
		return;
	}
	if (h->nspans < sizeof(h->spans) / sizeof(h->spans[0])) {
		h->spans[h->nspans].start = start;
		h->spans[h->nspans].end = end;
		h->spans[h->nspans].fill = fill;
		h->nspans++;
	}
}

/* Refuses the head for the reason fmt says, unless an earlier reason
 * already does; the spans kept so far go to the caller. */
static void __attribute__((format(printf, 2, 3)))
head_refuse(struct est_head *h, const char *fmt, ...)
{
	va_list ap;
	unsigned int i;

	if (h->why[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(h->why, sizeof(h->why), fmt, ap);
	va_end(ap);
	for (i = 0; i < h->nspans; i++)
		head_span(h, h->spans[i].start, h->spans[i].end,
		          h->spans[i].fill);
	h->nspans = 0;
}

/* Forgets the field line just ended. */
static void
head_line_reset(struct est_head *h)
{
	h->col = 0;
	h->folded = 0;
	h->in_value = 0;
	h->name_space = 0;
	h->namelen = 0;
	h->name[0] = '\0';
	h->valuelen = 0;
	h->value[0] = '\0';
	h->value_cut = 0;
	h->value_seen = 0;
	h->value_digits = 0;
	h->value_spaces = 0;
}

/* Appends c to the kept copy of the value: printable ASCII but quotes and
 * backslashes, so that the copy can be quoted in a log line and a body. */
static void
head_value_keep(struct est_head *h, int c)
{
	if (h->valuelen >= EST_HEAD_VALUE_KEPT) {
		h->value_cut = 1;
		return;
	}
	h->value[h->valuelen++] =
	    c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
	h->value[h->valuelen] = '\0';
}

/* One byte of a line, not its end. */
static void
head_byte(struct est_head *h, int c, uint64_t off)
{
	int ows = c == ' ' || c == '\t';

	if (h->col++ == 0) {
		h->start = off;
		if (h->line > 0 && ows) {
			/* evhttp joins it to the field before; a proxy may
			 * not. */
			h->folded = 1;
			head_refuse(
			    h, "obsolete line folding in the request head");
		}
	}
	h->end = off + 1;
	if (h->line == 0 && !h->method_done) {
		if (c == ' ')
			h->method_done = 1;
		else if (h->methodlen++ < sizeof(h->method) - 1) {
			/* Kept printable for the refusal text. */
			h->method[h->methodlen - 1] =
			    c > 0x20 && c < 0x7f && c != '"' && c != '\\'
			        ? (char)c
			        : '?';
			h->method[h->methodlen] = '\0';
		}
	}
	if (h->line == 0 || h->folded)
		return;
	if (!h->in_value) {
		if (c == ':') {
			h->in_value = 1;
			h->value_start = off + 1;
			return;
		}
		if (ows)
			h->name_space = 1;
		if (h->namelen < sizeof(h->name) - 1) {
			h->name[h->namelen] = c >= 'A' && c <= 'Z'
			                          ? (char)(c - 'A' + 'a')
			                          : (char)c;
			h->name[h->namelen + 1] = '\0';
		}
		h->namelen++;
		return;
	}
	if (ows) {
		if (h->value_seen)
			h->value_spaces++;
		return;
	}
	if (!h->value_seen) {
		h->value_seen = 1;
		h->value_digits = 1;
	} else if (h->value_spaces > 0) {
		/* Whitespace inside the value, not around it. */
		h->value_digits = 0;
		for (; h->value_spaces > 0; h->value_spaces--)
			head_value_keep(h, ' ');
	}
	if (c < '0' || c > '9')
		h->value_digits = 0;
	head_value_keep(h, c);
}

/* A field line ended: the framing fields are checked. */
static void
head_field_end(struct est_head *h)
{
	const char *cut = h->value_cut ? "..." : "";
	int cl, te;

	if (h->name_space) {
		/* evhttp would look the field up with the space in its name,
		 * and a proxy may not. */
		head_refuse(h, "space before the colon of a header field name "
		               "in the request head");
	}
	cl = h->namelen == 14 && strcmp(h->name, "content-length") == 0;
	te = h->namelen == 17 && strcmp(h->name, "transfer-encoding") == 0;
	if (cl)
		head_span(h, h->value_start, h->end, '0');
	else if (te)
		head_span(h, h->start, h->start + h->namelen, 'X');
	else
		return;
	if (cl && ++h->ncl > 1)
		head_refuse(h,
		            "Content-Length given twice (\"%s\" and \"%s%s\")",
		            h->first_cl, h->value, cut);
	else if (cl) {
		snprintf(h->first_cl, sizeof(h->first_cl), "%s", h->value);
		h->cl_body =
		    h->value_digits && strspn(h->value, "0") < h->valuelen;
		if (!h->value_digits)
			head_refuse(h,
			            "Content-Length \"%s%s\" is not a plain "
			            "decimal number",
			            h->value, cut);
	} else if (++h->nte > 1)
		head_refuse(h, "Transfer-Encoding given twice");
	else if (h->value_cut || strcasecmp(h->value, "chunked") != 0)
		head_refuse(h, "Transfer-Encoding \"%s%s\" is not \"chunked\"",
		            h->value, cut);
	if (h->ncl > 0 && h->nte > 0)
		head_refuse(h,
		            "Transfer-Encoding together with Content-Length");
}

/* The head ended: evhttp reads a body for POST, PUT and PATCH only. */
static void
head_end(struct est_head *h)
{
	int body_method = strcmp(h->method, "POST") == 0 ||
	                  strcmp(h->method, "PUT") == 0 ||
	                  strcmp(h->method, "PATCH") == 0;

	if (!body_method && (h->cl_body || h->nte > 0))
		head_refuse(h,
		            "a body on a %s request, which would be read as "
		            "the next request",
		            h->methodlen < sizeof(h->method) ? h->method
		                                             : "long-named");
	h->body = 1;
}

/* A line ended (its LF is at off). */
static void
head_line_end(struct est_head *h)
{
	if (h->col == 0) {
		/* An empty line ends the head, after the request line; before
		 * it, evhttp refuses the head itself. */
		if (h->line > 0)
			head_end(h);
		head_line_reset(h);
		return;
	}
	if (h->line > 0 && h->in_value && !h->folded)
		head_field_end(h);
	h->line++;
	head_line_reset(h);
}

void
est_head_feed(struct est_head *h, const unsigned char *p, size_t n)
{
	size_t i;
	uint64_t off;
	int c;

	for (i = 0; i < n; i++) {
		off = h->offset++;
		if (h->body)
			continue;
		c = p[i];
		if (h->cr) {
			h->cr = 0;
			if (c == '\n') {
				head_line_end(h);
				continue;
			}
			/* evhttp keeps it inside the line and then refuses
			 * the field; it becomes a space for evhttp. */
			head_refuse(h, "bare CR in the request head");
			head_span(h, off - 1, off, ' ');
			head_byte(h, '\r', off - 1);
		}
		if (c == '\r') {
			h->cr = 1;
			continue;
		}
		if (c == '\n') {
			head_refuse(h, "bare LF in the request head");
			head_line_end(h);
			continue;
		}
		if (c == '\0')
			head_refuse(h, "NUL byte in the request head");
		head_byte(h, c, off);
	}
}

void
est_head_next(struct est_head *h, uint64_t next)
{
	est_head_init(h, h->span_fn, h->span_arg);
	h->offset = next;
}

const char *
est_head_refusal(const struct est_head *h)
{
	return h->why[0] != '\0' ? h->why : NULL;
}
