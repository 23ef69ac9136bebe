/*
 * head.h: the checks of a request head that evhttp does not make.
 *
 * estrad may sit behind an HTTP proxy.  A request head that the proxy and
 * evhttp could split into requests differently (request smuggling) is
 * refused, never guessed at: evhttp takes a bare LF for a line end, keeps
 * the first of two Content-Length values, reads "+5" as 5, cuts a header
 * value at a NUL byte, joins folded lines and ignores a field whose name
 * ends in a space.  The scanner reads a connection's bytes as they arrive,
 * before evhttp parses them, and names the first of these in a head:
 *
 *  - a line end other than CRLF (a bare LF, a bare CR), a NUL byte;
 *  - obsolete line folding, whitespace between a field name and its colon;
 *  - Content-Length given twice, or not plain decimal digits;
 *  - Transfer-Encoding given twice, other than "chunked", or together with
 *    Content-Length;
 *  - a body (Content-Length other than 0, Transfer-Encoding) on a method
 *    other than POST, PUT or PATCH, whose body evhttp does not read: it
 *    would take the body for the next request.
 *
 * Bodies are not scanned (base64 is wrapped with bare LFs): after the
 * empty line that ends a head the scanner waits for est_head_next(), which
 * its caller calls when evhttp has taken the whole request.  State is a
 * few hundred bytes per connection, whatever the head's size.
 */
#ifndef ESTRAD_EST_HEAD_H
#define ESTRAD_EST_HEAD_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of a field value kept for the refusal text. */
#define EST_HEAD_VALUE_KEPT 16

/* Room for the refusal text, its NUL included. */
#define EST_HEAD_WHY_MAX 128

/*
 * Called for the bytes of a refused head that would make evhttp refuse it
 * with its own bare answer, before evhttp parses them, with their stream
 * offsets [start, end): the value of every Content-Length field (after
 * the colon up to the line end; fill '0'), the name of every
 * Transfer-Encoding field (fill 'X': evhttp refuses any value but
 * "chunked") and every bare CR (fill ' ').  Overwriting them with fill
 * lets evhttp hand the request on without a body, to be refused with
 * estrad's answer.
 */
typedef void (*est_head_span_fn)(void *arg, uint64_t start, uint64_t end,
                                 int fill);

/* A span waiting for the head to be refused. */
struct est_head_span {
	uint64_t start, end;
	int fill;
};

/* The scanner of one connection; zero it with est_head_init(). */
struct est_head {
	uint64_t offset;   /* stream offset of the next byte to scan */
	int body;          /* the head ended; waiting for est_head_next() */
	unsigned int line; /* lines of the head so far; 0 is the request line */
	char method[8];    /* the request line's first word, cut */
	size_t methodlen;  /* its bytes, uncut; past it at a space */
	int method_done;   /* the space after the method was seen */
	int cl_body;       /* a Content-Length other than 0 was seen */
	size_t col;        /* bytes of the current line */
	int cr;            /* the last byte was a CR */
	int folded;        /* the line continues the one before */
	uint64_t start;    /* stream offset of the line's first byte */
	uint64_t end;      /* stream offset after the line's last byte */
	/* The field line being read. */
	int in_value;                        /* past its colon */
	int name_space;                      /* whitespace in its name */
	char name[20];                       /* its name in lower case, cut */
	size_t namelen;                      /* bytes of the name, uncut */
	char value[EST_HEAD_VALUE_KEPT + 1]; /* trimmed value, cut */
	size_t valuelen;                     /* bytes kept in value */
	int value_cut;                       /* value was longer */
	int value_seen;                      /* a byte other than OWS came */
	int value_digits;                    /* value is 1*DIGIT (trimmed) */
	size_t value_spaces;                 /* whitespace after the last */
	uint64_t value_start;                /* stream offset after the colon */
	/* Counts of this head, and the spans waiting for a refusal (one
	 * Content-Length and one Transfer-Encoding at most: more is one). */
	unsigned int ncl, nte;
	char first_cl[EST_HEAD_VALUE_KEPT + 1];
	struct est_head_span spans[2];
	unsigned int nspans;
	/* The first reason to refuse the head, "" when none. */
	char why[EST_HEAD_WHY_MAX];
	est_head_span_fn span_fn;
	void *span_arg;
};

/*
 * Starts a scanner at stream offset 0, before a request line.  span_fn
 * (may be NULL) is called with span_arg as est_head_span_fn says.
 */
void est_head_init(struct est_head *h, est_head_span_fn span_fn,
                   void *span_arg);

/*
 * Scans the n bytes at p, the next bytes of the stream.  Between a head's
 * end and est_head_next() the bytes are only counted.  Borrows p for the
 * call.
 */
void est_head_feed(struct est_head *h, const unsigned char *p, size_t n);

/*
 * The request whose head was scanned is complete: the bytes from stream
 * offset next on begin the next head, and the refusal, if any, is
 * forgotten.
 */
void est_head_next(struct est_head *h, uint64_t next);

/* Returns the reason the head in progress or last ended is refused
 * (borrowed from h), or NULL when it is not. */
const char *est_head_refusal(const struct est_head *h);

#endif
