/*
 * authorizer.c: the external authorizer (see authorizer.h), run through
 * core_proc so that the worker never blocks on it.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/proc.h"
#include "ra/authorizer.h"

/* Most arguments of the command, program included. */
#define AUTHZ_ARGS_MAX 32

/* Output kept of the program: the reason is one line of it. */
#define AUTHZ_OUTPUT_MAX 4096

/* The PATH the program gets; nothing else of estrad's environment. */
#define AUTHZ_PATH "PATH=/usr/local/bin:/usr/bin:/bin"

struct ra_authorizer {
	char **argv; /* NULL-terminated, owned */
	unsigned int timeout;
};

struct ra_authz_call {
	ra_authz_done_fn done_fn;
	void *arg;
};

static const char *const authz_keys[] = {"command", "timeout", NULL};

const char *
ra_authorizer_path(const struct ra_authorizer *az)
{
	return az->argv[0];
}

unsigned int
ra_authorizer_timeout(const struct ra_authorizer *az)
{
	return az->timeout;
}

void
ra_authorizer_free(struct ra_authorizer *az)
{
	size_t i;

	if (az == NULL)
		return;
	for (i = 0; az->argv != NULL && az->argv[i] != NULL; i++)
		free(az->argv[i]);
	free(az->argv);
	free(az);
}

struct ra_authorizer *
ra_authorizer_new(const json_t *conf, const char *conf_dir,
                  struct core_err *err)
{
	struct ra_authorizer *az = NULL, *rc = NULL;
	const json_t *cmd, *v;
	const char *key, *s;
	struct stat st;
	char path[64];
	size_t i, j, n;
	json_t *val;

	if (!json_is_object(conf)) {
		core_err_set(err, "", "must be an object");
		goto out;
	}
	json_object_foreach((json_t *)conf, key, val)
	{
		for (j = 0; authz_keys[j] != NULL; j++)
			if (strcmp(key, authz_keys[j]) == 0)
				break;
		if (authz_keys[j] == NULL) {
			core_err_set(err, key, "unknown key \"%s\"", key);
			goto out;
		}
	}
	if ((az = calloc(1, sizeof(*az))) == NULL) {
		core_err_set(err, "", "out of memory");
		goto out;
	}
	az->timeout = 5;
	if ((v = json_object_get(conf, "timeout")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 300) {
			core_err_set(
			    err, "timeout",
			    "must be an integer from 1 to 300 (seconds)");
			goto out;
		}
		az->timeout = (unsigned int)json_integer_value(v);
	}
	if ((cmd = json_object_get(conf, "command")) == NULL) {
		core_err_set(err, "command", "required");
		goto out;
	}
	if (!json_is_array(cmd) || (n = json_array_size(cmd)) == 0 ||
	    n >= AUTHZ_ARGS_MAX) {
		core_err_set(err, "command",
		             "must be an array of 1 to %d strings: the program "
		             "and its arguments",
		             AUTHZ_ARGS_MAX - 1);
		goto out;
	}
	if ((az->argv = calloc(n + 1, sizeof(char *))) == NULL) {
		core_err_set(err, "command", "out of memory");
		goto out;
	}
	json_array_foreach(cmd, i, v)
	{
		snprintf(path, sizeof(path), "command.%zu", i);
		if ((s = json_string_value(v)) == NULL ||
		    (i == 0 && s[0] == '\0')) {
			core_err_set(err, path, "must be a string");
			goto out;
		}
		if (i == 0 && s[0] != '/') {
			if (asprintf(&az->argv[0], "%s/%s", conf_dir, s) < 0)
				az->argv[0] = NULL;
		} else
			az->argv[i] = strdup(s);
		if (az->argv[i] == NULL) {
			core_err_set(err, path, "out of memory");
			goto out;
		}
	}
	if (stat(az->argv[0], &st) != 0) {
		core_err_set(err, "command.0", "%s: %s", az->argv[0],
		             strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || access(az->argv[0], X_OK) != 0) {
		core_err_set(err, "command.0", "%s: not an executable file",
		             az->argv[0]);
		goto out;
	}
	rc = az;
	az = NULL;
out:
	ra_authorizer_free(az);
	return rc;
}

/* Copies the first line of text, printable ASCII only, into buf. */
static void
authz_first_line(const char *text, char *buf, size_t len)
{
	size_t i, n = 0;

	for (i = 0; text[i] != '\0' && text[i] != '\n' && n + 1 < len; i++)
		buf[n++] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '?';
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '?'))
		n--;
	buf[n] = '\0';
}

static void
authz_proc_done(struct core_proc *proc, const struct core_proc_result *res,
                void *arg)
{
	struct ra_authz_call *call = arg;
	struct ra_authz_result out;
	char line[200];

	(void)proc;
	memset(&out, 0, sizeof(out));
	out.ms = res->ms;
	out.status = res->status;
	authz_first_line(res->err, line, sizeof(line));
	if (res->exec_errno != 0) {
		out.answer = RA_AUTHZ_FAILED;
		snprintf(out.reason, sizeof(out.reason),
		         "cannot start: (%d: %s)", res->exec_errno,
		         strerror(res->exec_errno));
	} else if (res->timed_out) {
		out.answer = RA_AUTHZ_TIMEOUT;
		snprintf(out.reason, sizeof(out.reason),
		         "no answer within the timeout, killed after %ld ms",
		         res->ms);
	} else if (!res->exited) {
		out.answer = RA_AUTHZ_FAILED;
		snprintf(out.reason, sizeof(out.reason),
		         "killed by signal %d%s%s", res->status,
		         line[0] != '\0' ? ", stderr: " : "", line);
	} else if (res->status == 0) {
		out.answer = RA_AUTHZ_ALLOW;
	} else {
		out.answer = RA_AUTHZ_DENY;
		authz_first_line(res->out, line, sizeof(line));
		if (line[0] != '\0')
			snprintf(out.reason, sizeof(out.reason), "%s", line);
		else
			snprintf(out.reason, sizeof(out.reason), "exit %d",
			         res->status);
	}
	call->done_fn(&out, call->arg);
	free(call);
}

struct ra_authz_call *
ra_authorizer_run(const struct ra_authorizer *az, struct event_base *base,
                  const json_t *request, const char *rid, const char *label,
                  const char *operation, ra_authz_done_fn done_fn, void *arg,
                  char *err, size_t errlen)
{
	char env_rid[64], env_label[128], env_op[64];
	char *envp[] = {AUTHZ_PATH, "LC_ALL=C", env_rid,
	                env_label,  env_op,     NULL};
	struct ra_authz_call *call = NULL, *rc = NULL;
	struct core_proc_spec spec;
	char *input = NULL;

	if ((call = calloc(1, sizeof(*call))) == NULL ||
	    (input = json_dumps(request, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	call->done_fn = done_fn;
	call->arg = arg;
	snprintf(env_rid, sizeof(env_rid), "ESTRAD_RID=%s", rid);
	snprintf(env_label, sizeof(env_label), "ESTRAD_LABEL=%s", label);
	snprintf(env_op, sizeof(env_op), "ESTRAD_OPERATION=%s", operation);
	memset(&spec, 0, sizeof(spec));
	spec.argv = az->argv;
	spec.envp = envp;
	spec.input = input;
	spec.input_len = strlen(input);
	spec.timeout_ms = az->timeout * 1000;
	spec.max_output = AUTHZ_OUTPUT_MAX;
	if (core_proc_start(base, &spec, authz_proc_done, call, err, errlen) ==
	    NULL)
		goto out;
	rc = call;
	call = NULL;
out:
	free(input);
	free(call);
	return rc;
}
