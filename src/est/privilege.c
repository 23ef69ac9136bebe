/*
 * privilege.c: file-mode checks and the privilege drop (privilege.h).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/log.h"
#include "est/privilege.h"
#include "ra/log.h"

#define PRIV_COMPONENT "est.privilege"

/* Distinct files one configuration may name; more are checked twice. */
#define PRIV_SEEN_MAX 256

/* The keys whose string value is a file, and whether it is a secret. */
static const struct {
	const char *key;
	int secret;
} priv_file_keys[] = {
    {"key", 1},           {"client_key", 1},  {"agent_key", 1},
    {"password_file", 1}, {"users", 1},       {"cert", 0},
    {"chain", 0},         {"ca_bundle", 0},   {"client_cert", 0},
    {"agent_cert", 0},    {"explicit_ca", 0}, {"implicit_ca", 0},
    {"crl", 0},
};

enum est_mode_verdict
est_privilege_mode(const char *path, int secret, gid_t run_gid, char *why,
                   char *fix, size_t len)
{
	struct stat st;

	why[0] = fix[0] = '\0';
	if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
		snprintf(why, len, "cannot read it (%s)", strerror(errno));
		snprintf(fix, len,
		         "create it or correct its path, and let estrad's user "
		         "read it");
		return EST_MODE_MISSING;
	}
	if (st.st_mode & S_IWOTH) {
		snprintf(why, len,
		         "world-writable (mode %04o): anyone can replace it",
		         (unsigned int)(st.st_mode & 07777));
		snprintf(fix, len, "chmod o-w %s", path);
		return EST_MODE_UNSAFE;
	}
	if (secret && (st.st_mode & S_IROTH)) {
		snprintf(why, len, "a secret readable by everyone (mode %04o)",
		         (unsigned int)(st.st_mode & 07777));
		snprintf(fix, len, "chmod 600 %s (or 640 with group estrad)",
		         path);
		return EST_MODE_EXPOSED;
	}
	if (secret && (st.st_mode & (S_IRGRP | S_IWGRP)) &&
	    (run_gid == (gid_t)-1 || st.st_gid != run_gid)) {
		snprintf(why, len,
		         "a secret its group may read (mode %04o, gid %u)",
		         (unsigned int)(st.st_mode & 07777),
		         (unsigned int)st.st_gid);
		snprintf(fix, len,
		         "chmod 600 %s unless the group is estrad's own", path);
		return EST_MODE_WEAK;
	}
	return EST_MODE_OK;
}

/* State of one walk over the configuration's JSON. */
struct priv_walk {
	const char *dir;
	est_privilege_file_fn fn;
	void *arg;
	char *seen[PRIV_SEEN_MAX];
	size_t nseen;
};

/* Calls the walk's function for value (relative to dir) once per file. */
static void
priv_visit(struct priv_walk *w, const char *value, const char *key, int secret,
           int exec)
{
	char *path = NULL, *real;
	size_t i;

	if (value[0] == '\0')
		goto out;
	if (value[0] == '/')
		path = strdup(value);
	else if (asprintf(&path, "%s/%s", w->dir, value) < 0)
		path = NULL;
	if (path == NULL)
		goto out;
	/* Show /srv/estrad/certs/x.pem, not /srv/estrad/conf/../certs. */
	if ((real = realpath(path, NULL)) != NULL) {
		free(path);
		path = real;
	}
	for (i = 0; i < w->nseen; i++)
		if (strcmp(w->seen[i], path) == 0)
			goto out;
	w->fn(path, key, secret, exec, w->arg);
	if (w->nseen < PRIV_SEEN_MAX) {
		w->seen[w->nseen++] = path;
		path = NULL;
	}
out:
	free(path);
}

/* Walks obj (at dotted path at) for file keys, depth first. */
static void
priv_walk_object(struct priv_walk *w, const json_t *obj, const char *at)
{
	char sub[512];
	const char *key;
	json_t *v, *first;
	size_t i;

	json_object_foreach((json_t *)obj, key, v)
	{
		snprintf(sub, sizeof(sub), "%s%s%s", at,
		         at[0] != '\0' ? "." : "", key);
		/* Log files are written, not read: their directories are
		 * the packaging's business (LogsDirectory). */
		if (at[0] == '\0' &&
		    (strcmp(key, "logs") == 0 || strcmp(key, "pending") == 0))
			continue;
		if (json_is_object(v)) {
			priv_walk_object(w, v, sub);
			continue;
		}
		if (strcmp(key, "command") == 0 && json_is_array(v) &&
		    (first = json_array_get(v, 0)) != NULL &&
		    json_is_string(first)) {
			priv_visit(w, json_string_value(first), sub, 0, 1);
			continue;
		}
		if (!json_is_string(v))
			continue;
		for (i = 0;
		     i < sizeof(priv_file_keys) / sizeof(priv_file_keys[0]);
		     i++)
			if (strcmp(key, priv_file_keys[i].key) == 0) {
				priv_visit(w, json_string_value(v), sub,
				           priv_file_keys[i].secret, 0);
				break;
			}
	}
}

int
est_privilege_files(const char *config_path, const char *dir,
                    est_privilege_file_fn fn, void *arg, char *err,
                    size_t errlen)
{
	struct priv_walk w;
	json_error_t jerr;
	json_t *root = NULL;
	size_t i;
	int rc = -1;

	memset(&w, 0, sizeof(w));
	w.dir = dir;
	w.fn = fn;
	w.arg = arg;
	if ((root = json_load_file(config_path, 0, &jerr)) == NULL ||
	    !json_is_object(root)) {
		snprintf(err, errlen, "%s:%d:%d: %s", config_path, jerr.line,
		         jerr.column,
		         root == NULL ? jerr.text : "not an object");
		goto out;
	}
	priv_walk_object(&w, root, "");
	rc = 0;
out:
	for (i = 0; i < w.nseen; i++)
		free(w.seen[i]);
	json_decref(root);
	return rc;
}

gid_t
est_privilege_run_gid(const struct ra_config *config)
{
	struct passwd *pw;
	struct group *gr;

	if (config->group != NULL && (gr = getgrnam(config->group)) != NULL)
		return gr->gr_gid;
	if (config->user != NULL && (pw = getpwnam(config->user)) != NULL)
		return pw->pw_gid;
	return (gid_t)-1;
}

/* What est_privilege_check() gathers: the first refusal. */
struct priv_check {
	char err[2048];
	int failed;
	gid_t run_gid;
};

static void
priv_check_file(const char *path, const char *key, int secret, int exec,
                void *arg)
{
	struct priv_check *pc = arg;
	char why[256], fix[256];

	(void)exec;
	switch (est_privilege_mode(path, secret, pc->run_gid, why, fix,
	                           sizeof(why))) {
	case EST_MODE_UNSAFE:
		if (!pc->failed)
			snprintf(pc->err, sizeof(pc->err), "%s %s is %s; %s",
			         key, path, why, fix);
		pc->failed = 1;
		break;
	case EST_MODE_EXPOSED:
	case EST_MODE_WEAK:
		ra_log(CORE_LOG_WARN, PRIV_COMPONENT, NULL, fix,
		       "unsafe file mode: %s %s is %s", key, path, why);
		break;
	default:
		/* Loading the configuration already read every file. */
		break;
	}
}

int
est_privilege_check(const struct ra_config *config, char *err, size_t errlen)
{
	struct priv_check pc;
	char why[512], fix[512];
	int rc = -1;

	memset(&pc, 0, sizeof(pc));
	pc.run_gid = est_privilege_run_gid(config);
	if (est_privilege_mode(config->path, 0, pc.run_gid, why, fix,
	                       sizeof(why)) == EST_MODE_UNSAFE) {
		snprintf(err, errlen, "configuration %s is %s; %s",
		         config->path, why, fix);
		goto out;
	}
	if (est_privilege_files(config->path, config->dir, priv_check_file, &pc,
	                        err, errlen) != 0)
		goto out;
	if (pc.failed) {
		snprintf(err, errlen, "%s", pc.err);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int
est_privilege_drop(const struct ra_config *config, char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;
	gid_t gid;
	int rc = -1;

	if (geteuid() != 0) {
		rc = 0;
		goto out;
	}
	if (config->user == NULL) {
		ra_log(CORE_LOG_WARN, PRIV_COMPONENT, NULL,
		       "set \"user\" (e.g. \"estrad\") in the configuration",
		       "running as root: no \"user\" to drop to");
		rc = 0;
		goto out;
	}
	errno = 0;
	if ((pw = getpwnam(config->user)) == NULL) {
		snprintf(err, errlen, "user %s: %s", config->user,
		         errno != 0 ? strerror(errno) : "no such user");
		goto out;
	}
	gid = pw->pw_gid;
	if (config->group != NULL) {
		errno = 0;
		if ((gr = getgrnam(config->group)) == NULL) {
			snprintf(err, errlen, "group %s: %s", config->group,
			         errno != 0 ? strerror(errno)
			                    : "no such group");
			goto out;
		}
		gid = gr->gr_gid;
	}
	/* Groups first: once the uid is gone, they can no longer change. */
	if (initgroups(pw->pw_name, gid) != 0 || setgid(gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen,
		         "cannot drop to user %s (uid %u, gid %u): %s",
		         config->user, (unsigned int)pw->pw_uid,
		         (unsigned int)gid, strerror(errno));
		goto out;
	}
	/* A drop that can be undone is no drop. */
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		snprintf(err, errlen, "could regain root after dropping to %s",
		         config->user);
		goto out;
	}
	ra_log(CORE_LOG_INFO, PRIV_COMPONENT, NULL, NULL,
	       "dropped privileges to user %s (uid %u, gid %u)", config->user,
	       (unsigned int)pw->pw_uid, (unsigned int)gid);
	rc = 0;
out:
	return rc;
}
