/*
 * safedir.h: the directories estrad writes into (the pending store, the
 * logs).  Whoever may write into such a directory can plant a link, or
 * any file, under a name estrad is about to open, and make estrad (often
 * root) write where it never meant to; so estrad refuses a directory that
 * is group- or world-writable, or owned by anyone but root and the user
 * it runs as.
 */
#ifndef ESTRAD_RA_SAFEDIR_H
#define ESTRAD_RA_SAFEDIR_H

#include <sys/types.h>

#include <stddef.h>

/*
 * The user estrad writes as once it has dropped its privileges: the uid of
 * user (borrowed; it must exist) when running as root with a user to drop
 * to, the effective uid otherwise.
 */
uid_t ra_safedir_uid(const char *user);

/*
 * Checks the directory open on dirfd, which path (borrowed) names in
 * messages; uid as from ra_safedir_uid().  Returns 0, or -1 with
 * "PATH is ...: why; remedy" in err (size errlen).
 */
int ra_safedir_check(int dirfd, const char *path, uid_t uid, char *err,
                     size_t errlen);

/*
 * The same check for the directory that holds file (borrowed), opened
 * here.  Returns 0 (also when the directory does not exist: opening the
 * file then fails), or -1 with the directory and the reason in err.
 */
int ra_safedir_check_parent(const char *file, uid_t uid, char *err,
                            size_t errlen);

#endif
