/*
 * safedir.c: checks of the directories estrad writes into (safedir.h).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ra/safedir.h"

uid_t
ra_safedir_uid(const char *user)
{
	struct passwd *pw;

	if (geteuid() == 0 && user != NULL && (pw = getpwnam(user)) != NULL)
		return pw->pw_uid;
	return geteuid();
}

int
ra_safedir_check(int dirfd, const char *path, uid_t uid, char *err,
                 size_t errlen)
{
	struct stat st;
	int rc = -1;

	if (fstat(dirfd, &st) != 0) {
		snprintf(err, errlen, "cannot stat %s: (%d: %s)", path, errno,
		         strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", path);
		goto out;
	}
	/* The sticky bit does not help: it stops others from removing
	 * estrad's files, not from creating theirs under names estrad is
	 * about to use. */
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen,
		         "%s is group- or world-writable (mode %04o): another "
		         "user could plant a link where estrad writes; chmod "
		         "go-w %s",
		         path, (unsigned int)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_uid != 0 && st.st_uid != uid) {
		snprintf(err, errlen,
		         "%s is owned by uid %u, neither root nor estrad's "
		         "user (uid %u): its owner could plant a link where "
		         "estrad writes; chown %u %s",
		         path, (unsigned int)st.st_uid, (unsigned int)uid,
		         (unsigned int)uid, path);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int
ra_safedir_check_parent(const char *file, uid_t uid, char *err, size_t errlen)
{
	char dir[4096];
	const char *slash = strrchr(file, '/');
	size_t len;
	int fd = -1, rc = -1;

	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else {
		len = slash == file ? 1 : (size_t)(slash - file);
		if (len >= sizeof(dir)) {
			snprintf(err, errlen, "%s: path too long", file);
			goto out;
		}
		memcpy(dir, file, len);
		dir[len] = '\0';
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		/* Nothing can be planted in a directory that is not there;
		 * opening the file fails and says so. */
		if (errno == ENOENT || errno == ENOTDIR) {
			rc = 0;
			goto out;
		}
		snprintf(err, errlen, "cannot open directory %s: (%d: %s)", dir,
		         errno, strerror(errno));
		goto out;
	}
	rc = ra_safedir_check(fd, dir, uid, err, errlen);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}
