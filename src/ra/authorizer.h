/*
 * authorizer.h: the optional external authorizer of a label: a program
 * that reads a JSON description of the request on stdin (operation, label,
 * peer, identity, client chain, CSR) and allows it by exiting 0 or denies
 * it with any other exit status, its first stdout line being the reason.
 * It runs asynchronously on the worker's loop (core/proc.h) with a
 * timeout, an explicit environment and capped output.
 */
#ifndef ESTRAD_RA_AUTHORIZER_H
#define ESTRAD_RA_AUTHORIZER_H

#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

#include "core/error.h"

/* A label's "authorizer" object; read-only once built. */
struct ra_authorizer;

/*
 * Parses conf ({"command": [PATH, ARG...], "timeout": SECONDS}); a
 * relative PATH is relative to conf_dir and must name an executable file.
 * Returns a new authorizer (free with ra_authorizer_free) or NULL with
 * err->key relative to the authorizer object.  Borrows conf and conf_dir.
 */
struct ra_authorizer *ra_authorizer_new(const json_t *conf,
                                        const char *conf_dir,
                                        struct core_err *err);

/* Frees az.  NULL is a no-op. */
void ra_authorizer_free(struct ra_authorizer *az);

/* Returns the program's absolute path (borrowed from az), for logs. */
const char *ra_authorizer_path(const struct ra_authorizer *az);

/* Returns the timeout in seconds. */
unsigned int ra_authorizer_timeout(const struct ra_authorizer *az);

/* The authorizer's answer. */
enum ra_authz_answer {
	RA_AUTHZ_ALLOW,   /* exit 0 */
	RA_AUTHZ_DENY,    /* any other exit status */
	RA_AUTHZ_TIMEOUT, /* killed at the timeout */
	RA_AUTHZ_FAILED   /* could not start, or died of a signal */
};

struct ra_authz_result {
	enum ra_authz_answer answer;
	int status; /* exit status or signal */
	long ms;
	/* DENY: the first stdout line (printable ASCII only, cut), or
	 * "exit N" when it printed nothing; TIMEOUT, FAILED: what happened,
	 * with the first stderr line when there is one. */
	char reason[256];
};

/* Called once from the loop with the answer. */
typedef void (*ra_authz_done_fn)(const struct ra_authz_result *res, void *arg);

struct ra_authz_call;

/*
 * Runs az with request (borrowed; serialised to its stdin) on base.  env
 * gives ESTRAD_RID, ESTRAD_LABEL and ESTRAD_OPERATION to the program
 * besides PATH.  Returns the call (owned by the loop until done_fn ran)
 * or NULL with err; done_fn never runs inside this call.
 */
struct ra_authz_call *
ra_authorizer_run(const struct ra_authorizer *az, struct event_base *base,
                  const json_t *request, const char *rid, const char *label,
                  const char *operation, ra_authz_done_fn done_fn, void *arg,
                  char *err, size_t errlen);

#endif
