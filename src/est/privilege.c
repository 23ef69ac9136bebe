/*
 * privilege.c: file-mode checks and the privilege drop (privilege.h).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
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

/*
 * Besides root, the user estrad was started as may own the files it
 * trusts: captured at the first check, before any privilege drop, so that
 * a reload judges files as the start did.
 */
static uid_t priv_start_uid = (uid_t)-1;

static int
priv_trusted_owner(uid_t uid)
{
	if (priv_start_uid == (uid_t)-1)
		priv_start_uid = geteuid();
	return uid == 0 || uid == priv_start_uid;
}

/* Names uid for a message: "nobody (uid 65534)", or "uid 1234". */
static const char *
priv_owner_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(buf, len, "%s (uid %u)", pw->pw_name,
		         (unsigned int)uid);
	else
		snprintf(buf, len, "uid %u", (unsigned int)uid);
	return buf;
}

/*
 * Judges the directories above path (symbolic links resolved): whoever
 * may write to one of them may replace what it holds, whatever the file's
 * own mode.  A world-writable directory with the sticky bit (/tmp) is
 * fine: there only a file's owner may rename or remove it.  Returns 0, or
 * -1 with the reason and the remedy.
 */
static int
priv_check_dirs(const char *path, char *why, char *fix, size_t len)
{
	char *real = NULL, *dir, owner[128];
	struct stat st;
	int rc = -1;

	if ((real = realpath(path, NULL)) == NULL) {
		rc = 0; /* stat() succeeded: a race; the next check sees it */
		goto out;
	}
	dir = real;
	do {
		dir = dirname(dir);
		if (stat(dir, &st) != 0)
			break;
		if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
			snprintf(
			    why, len,
			    "in directory %s, world-writable (mode %04o) "
			    "without the sticky bit: anyone can replace it",
			    dir, (unsigned int)(st.st_mode & 07777));
			snprintf(fix, len, "chmod o-w %s", dir);
			goto out;
		}
		if (!priv_trusted_owner(st.st_uid)) {
			snprintf(
			    why, len,
			    "in directory %s, owned by %s, neither root "
			    "nor the user estrad was started as: that user "
			    "can replace it",
			    dir,
			    priv_owner_name(st.st_uid, owner, sizeof(owner)));
			snprintf(fix, len,
			         "chown root %s, or start estrad as its owner",
			         dir);
			goto out;
		}
	} while (strcmp(dir, "/") != 0 && strcmp(dir, ".") != 0);
	rc = 0;
out:
	free(real);
	return rc;
}

enum est_mode_verdict
est_privilege_mode(const char *path, int secret, gid_t run_gid, char *why,
                   char *fix, size_t len)
{
	char owner[128];
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
	if (!priv_trusted_owner(st.st_uid)) {
		snprintf(why, len,
		         "owned by %s, neither root nor the user estrad was "
		         "started as: that user can replace it",
		         priv_owner_name(st.st_uid, owner, sizeof(owner)));
		snprintf(fix, len,
		         "chown root %s, or start estrad as its owner", path);
		return EST_MODE_UNSAFE;
	}
	if (priv_check_dirs(path, why, fix, len) != 0)
		return EST_MODE_UNSAFE;
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

/*
 * Hands one file or directory estrad writes after the drop to uid:gid
 * when root owns it (estrad just created it as root); a directory's
 * regular files owned by root go with it.  Links are not followed.
 * Returns 1 when something changed hands, 0 when nothing had to, -1 on
 * failure (logged).
 */
static int
priv_give(const char *path, int is_dir, uid_t uid, gid_t gid)
{
	struct dirent *e;
	struct stat st;
	DIR *d = NULL;
	int fd, dfd, rc = -1;

	fd =
	    open(path, (is_dir ? O_RDONLY | O_DIRECTORY : O_WRONLY | O_APPEND) |
	                   O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0)
		goto fail;
	if (st.st_uid != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
		rc = 0;
		goto out;
	}
	if (fchown(fd, uid, gid) != 0)
		goto fail;
	if (is_dir) {
		if ((dfd = dup(fd)) < 0 || (d = fdopendir(dfd)) == NULL) {
			if (dfd >= 0)
				close(dfd);
			goto fail;
		}
		while ((e = readdir(d)) != NULL)
			if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			        0 &&
			    S_ISREG(st.st_mode) && st.st_uid == 0 &&
			    fchownat(fd, e->d_name, uid, gid,
			             AT_SYMLINK_NOFOLLOW) != 0)
				goto fail;
	}
	rc = 1;
	goto out;
fail:
	ra_log(CORE_LOG_WARN, PRIV_COMPONENT, NULL,
	       "give it to estrad's user by hand (chown)",
	       "cannot hand %s to uid %u: (%d: %s)", path, (unsigned int)uid,
	       errno, strerror(errno));
out:
	if (d != NULL)
		closedir(d);
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * The files estrad writes after the drop: the logs (reopened by SIGHUP)
 * and the pending store.  Started as root, estrad created them as root;
 * they become the user's, or the user could not write them.
 */
static void
priv_give_all(const struct ra_config *config, uid_t uid, gid_t gid)
{
	const char *logs[3] = {config->logs.error, config->logs.access,
	                       config->logs.audit};
	int i, given = 0;

	for (i = 0; i < 3; i++)
		if (logs[i] != NULL && strcmp(logs[i], "-") != 0 &&
		    priv_give(logs[i], 0, uid, gid) > 0)
			given = 1;
	if (config->pending_dir != NULL &&
	    priv_give(config->pending_dir, 1, uid, gid) > 0)
		given = 1;
	if (given)
		ra_log(CORE_LOG_INFO, PRIV_COMPONENT, NULL, NULL,
		       "handed what estrad writes (log files, pending "
		       "directory) to user %s",
		       config->user);
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
	priv_give_all(config, pw->pw_uid, gid);
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
