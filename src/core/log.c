/*
 * log.c: the names of the log levels, as configurations and log lines
 * spell them.
 */
#include <string.h>

#include "core/log.h"

static const char *const core_log_level_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
};

const char *
core_log_level_name(enum core_log_level level)
{
	if ((unsigned int)level >=
	    sizeof(core_log_level_names) / sizeof(core_log_level_names[0]))
		return "unknown";
	return core_log_level_names[level];
}

int
core_log_level_parse(const char *name, enum core_log_level *level)
{
	size_t i;

	for (i = 0; name != NULL && i < sizeof(core_log_level_names) /
	                                    sizeof(core_log_level_names[0]);
	     i++)
		if (strcmp(name, core_log_level_names[i]) == 0) {
			*level = (enum core_log_level)i;
			return 0;
		}
	return -1;
}
