/*
 * conf.c: strict readers of configuration values.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "core/conf.h"
#include "core/error.h"

const char *
core_conf_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a real number";
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	default:
		return "null";
	}
}

int
core_conf_check_keys(const json_t *obj, const char *prefix,
                     const char *const *allowed, struct core_err *err)
{
	char path[sizeof(err->key)], list[512];
	const char *key;
	json_t *value;
	size_t i, used;
	int rc = -1;

	/* jansson's iterator takes a non-const object but only reads it. */
	json_object_foreach((json_t *)obj, key, value)
	{
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] != NULL)
			continue;
		list[0] = '\0';
		for (i = 0, used = 0; allowed[i] != NULL; i++) {
			int n = snprintf(list + used, sizeof(list) - used,
			                 "%s%s", i > 0 ? ", " : "", allowed[i]);

			if (n < 0 || (size_t)n >= sizeof(list) - used)
				break;
			used += (size_t)n;
		}
		snprintf(path, sizeof(path), "%s%s", prefix, key);
		core_err_set(err, path, "unknown key \"%s\" (allowed: %s)", key,
		             list);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int
core_conf_clean_string(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t i, n = json_string_length(v);

	if (s == NULL || n == 0 || strlen(s) != n)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

int
core_conf_read_password(const char *path, size_t max, char **out,
                        struct core_err *err)
{
	static const char key[] = "password_file";
	char buf[4096 + 2];
	FILE *fp = NULL;
	size_t n;
	int rc = -1;

	*out = NULL;
	if (max > sizeof(buf) - 2)
		max = sizeof(buf) - 2;
	if ((fp = fopen(path, "re")) == NULL) {
		core_err_set(err, key, "cannot read %s: %s", path,
		             strerror(errno));
		goto out;
	}
	n = fread(buf, 1, max + 1, fp);
	if (ferror(fp)) {
		core_err_set(err, key, "cannot read %s: %s", path,
		             strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) > max) {
		core_err_set(err, key,
		             "%s: the first line is longer than %zu bytes",
		             path, max);
		goto out;
	}
	if (buf[0] == '\0') {
		core_err_set(err, key,
		             "%s: the first line (the password) is empty",
		             path);
		goto out;
	}
	if ((*out = strdup(buf)) == NULL) {
		core_err_set(err, key, "out of memory");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (fp != NULL)
		fclose(fp);
	return rc;
}

int
core_conf_string(const json_t *conf, const char *key, size_t max, char **out,
                 struct core_err *err)
{
	const char *s;
	json_t *v;
	size_t i, n;
	int rc = -1;

	*out = NULL;
	if ((v = json_object_get(conf, key)) == NULL) {
		rc = 0;
		goto out;
	}
	if ((s = json_string_value(v)) == NULL) {
		core_err_set(err, key, "\"%s\" must be a string, not %s", key,
		             core_conf_type_name(v));
		goto out;
	}
	n = json_string_length(v);
	/* A NUL inside would silently cut the value short. */
	if (n == 0 || strlen(s) != n) {
		core_err_set(err, key, "\"%s\" must be a non-empty string",
		             key);
		goto out;
	}
	if (n > max) {
		core_err_set(err, key, "\"%s\" is longer than %zu bytes", key,
		             max);
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			core_err_set(err, key,
			             "\"%s\" must not hold control characters",
			             key);
			goto out;
		}
	if ((*out = strdup(s)) == NULL) {
		core_err_set(err, key, "out of memory");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int
core_conf_int(const json_t *conf, const char *key, long min, long max,
              long *out, struct core_err *err)
{
	json_int_t n;
	json_t *v;
	int rc = -1;

	if ((v = json_object_get(conf, key)) == NULL) {
		rc = 0;
		goto out;
	}
	if (!json_is_integer(v)) {
		core_err_set(err, key, "\"%s\" must be an integer, not %s", key,
		             core_conf_type_name(v));
		goto out;
	}
	n = json_integer_value(v);
	if (n < min || n > max) {
		core_err_set(
		    err, key,
		    "\"%s\" must be an integer from %ld to %ld, not %lld", key,
		    min, max, (long long)n);
		goto out;
	}
	*out = (long)n;
	rc = 0;
out:
	return rc;
}

int
core_conf_file(const json_t *conf, const char *key, const char *conf_dir,
               char **path, struct core_err *err)
{
	char *name = NULL, buf[PATH_MAX];
	struct stat st;
	FILE *fp = NULL;
	int n, rc = -1;

	*path = NULL;
	if (core_conf_string(conf, key, PATH_MAX, &name, err) != 0)
		goto out;
	if (name == NULL) {
		rc = 0;
		goto out;
	}
	if (name[0] == '/' || conf_dir == NULL || conf_dir[0] == '\0')
		n = snprintf(buf, sizeof(buf), "%s", name);
	else
		n = snprintf(buf, sizeof(buf), "%s/%s", conf_dir, name);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		core_err_set(err, key, "file name too long: %s", name);
		goto out;
	}
	if ((fp = fopen(buf, "re")) == NULL) {
		core_err_set(err, key, "cannot read %s: %s", buf,
		             strerror(errno));
		goto out;
	}
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
		core_err_set(err, key, "cannot read %s: not a regular file",
		             buf);
		goto out;
	}
	if ((*path = strdup(buf)) == NULL) {
		core_err_set(err, key, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (fp != NULL)
		fclose(fp);
	free(name);
	return rc;
}
