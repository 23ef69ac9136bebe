/*
 * conf.h: strict readers of configuration values in jansson objects.
 */
#ifndef ESTRAD_CORE_CONF_H
#define ESTRAD_CORE_CONF_H

#include <stddef.h>

#include <jansson.h>

#include "core/error.h"

/*
 * Configuration readers shared by every layer, so that every object of the
 * configuration is equally strict and every error names its key the same way.
 * Each borrows conf for the call and fills err (key and reason) on -1.
 */

/* Returns 1 when v is a non-empty string with no NUL or control byte. */
int core_conf_clean_string(const json_t *v);

/*
 * Reads the first line (the password, line end dropped, at most max
 * bytes) of the file at path into a new *out (free with free).  Messages
 * name the key "password_file" and the file, never its content; the read
 * buffer is wiped.
 */
int core_conf_read_password(const char *path, size_t max, char **out,
                            struct core_err *err);

/* Returns "an object", "a string", ... for messages about v's type. */
const char *core_conf_type_name(const json_t *v);

/*
 * Checks that every key of obj is in allowed (NULL-terminated); prefix
 * ("" or "profile.") makes err->key a path relative to the "ca" object.
 */
int core_conf_check_keys(const json_t *obj, const char *prefix,
                         const char *const *allowed, struct core_err *err);

/*
 * Reads the optional string at key into a new *out (free with free), NULL
 * when absent: non-empty, no NUL or control byte, at most max bytes.
 */
int core_conf_string(const json_t *conf, const char *key, size_t max,
                     char **out, struct core_err *err);

/* Reads the optional integer at key, from min to max; *out is left alone
 * when the key is absent. */
int core_conf_int(const json_t *conf, const char *key, long min, long max,
                  long *out, struct core_err *err);

/*
 * Reads the optional file name at key, resolves it against conf_dir unless
 * absolute, and checks that it is a readable regular file (a FIFO or device
 * could hang estrad -t).  Sets a new *path (free with free), NULL when
 * absent.
 */
int core_conf_file(const json_t *conf, const char *key, const char *conf_dir,
                   char **path, struct core_err *err);

#endif
