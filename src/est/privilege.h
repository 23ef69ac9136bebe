/*
 * privilege.h: what estrad checks and gives up before it serves.  Started
 * as root, it binds its listeners and opens its logs, then drops to the
 * configured "user" (and "group"); it refuses to start, and a SIGHUP
 * reload is refused, when the configuration or a file it names could be
 * swapped by someone else: world-writable, owned by a user other than root
 * and the one estrad was started as, or in a directory such a user or
 * anyone may write to.  --doctor reuses the file walk and the mode rules.
 */
#ifndef ESTRAD_EST_PRIVILEGE_H
#define ESTRAD_EST_PRIVILEGE_H

#include <sys/types.h>

#include <stddef.h>

#include "ra/config.h"

/* What est_privilege_mode() found. */
enum est_mode_verdict {
	EST_MODE_OK,
	EST_MODE_WEAK,    /* a secret readable by group or others: warn */
	EST_MODE_EXPOSED, /* a secret anyone may read: estrad warns, --doctor
	                     fails */
	EST_MODE_UNSAFE,  /* world-writable, foreign owner, or in such a
	                     directory: estrad refuses to start or reload */
	EST_MODE_MISSING  /* cannot stat or read it */
};

/*
 * Judges the mode of path; secret says it holds a private key or a
 * password.  A secret its group may read is fine when that group is
 * run_gid, the group estrad runs as ((gid_t)-1 for none).  Borrows path;
 * writes the reason and the remedy (each a full phrase, "" when OK) into
 * why and fix of size len.
 */
enum est_mode_verdict est_privilege_mode(const char *path, int secret,
                                         gid_t run_gid, char *why, char *fix,
                                         size_t len);

/* The group estrad runs as after the drop, or (gid_t)-1 when none is
 * configured or known.  Borrows config. */
gid_t est_privilege_run_gid(const struct ra_config *config);

/*
 * Called once per file the configuration names: path is absolute and
 * borrowed for the call, key the dotted JSON key ("labels.x.ca.key"),
 * secret as for est_privilege_mode(), exec set for a helper command.
 */
typedef void (*est_privilege_file_fn)(const char *path, const char *key,
                                      int secret, int exec, void *arg);

/*
 * Reads config_path again (JSON) and calls fn for every file it names,
 * relative paths resolved against dir, each path once.  Borrows both
 * strings.  Returns 0, or -1 with the reason in err (size errlen).
 */
int est_privilege_files(const char *config_path, const char *dir,
                        est_privilege_file_fn fn, void *arg, char *err,
                        size_t errlen);

/*
 * Refuses (-1, reason in err) a configuration file or named file that
 * est_privilege_mode() finds unsafe; logs a warning through ra_log for a
 * secret that others or a foreign group may read.  Runs at start and at
 * every reload.  Borrows config.
 */
int est_privilege_check(const struct ra_config *config, char *err,
                        size_t errlen);

/*
 * When running as root with config->user set, hands the log files and
 * the pending directory (those root owns) to that user and group, then
 * drops to them (supplementary groups included) for good; as root without
 * a user, logs a warning.  Call it after the listeners are bound and the
 * logs opened, before the workers start.  Returns 0, or -1 with err.
 */
int est_privilege_drop(const struct ra_config *config, char *err,
                       size_t errlen);

#endif
