/*
 * regress_main.c: runs a fuzz target's LLVMFuzzerTestOneInput over files,
 * without libFuzzer, so that every input a fuzzer ever found (and the seed
 * corpus) is replayed by `make check` under the normal and the sanitizer
 * build.  Usage: TARGET FILE-OR-DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds one file to the target; returns 0, or -1 if it cannot be read. */
static int
regress_file(const char *path)
{
	unsigned char *data = NULL;
	size_t size = 0;
	long len;
	FILE *fp;
	int rc = -1;

	if ((fp = fopen(path, "rb")) == NULL)
		goto out;
	if (fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) != 0)
		goto out;
	/* One spare byte: a target may never see a zero-length buffer as
	 * NULL, as libFuzzer never passes NULL either. */
	if ((data = malloc((size_t)len + 1)) == NULL)
		goto out;
	size = fread(data, 1, (size_t)len, fp);
	LLVMFuzzerTestOneInput(data, size);
	rc = 0;
out:
	if (fp != NULL)
		fclose(fp);
	free(data);
	return rc;
}

int
main(int argc, char **argv)
{
	int i, n = 0, bad = 0;

	for (i = 1; i < argc; i++) {
		struct stat st;
		struct dirent *e;
		DIR *dir;

		if (stat(argv[i], &st) != 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			bad += regress_file(argv[i]) != 0;
			n++;
			continue;
		}
		if ((dir = opendir(argv[i])) == NULL)
			continue;
		while ((e = readdir(dir)) != NULL) {
			char path[4096];

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i],
			         e->d_name);
			bad += regress_file(path) != 0;
			n++;
		}
		closedir(dir);
	}
	printf("%s: %d inputs replayed, %d unreadable\n", argv[0], n, bad);
	return bad == 0 ? 0 : 1;
}
