/*
 * log.h: the log levels every layer of estrad uses, from emerg (cannot
 * start) to debug.
 */
#ifndef ESTRAD_CORE_LOG_H
#define ESTRAD_CORE_LOG_H

/*
 * Log levels, in nginx's words: emerg cannot start, alert an
 * invariant broke, crit the audit log is unwritable, error the operator must
 * fix something, warn degraded, notice a client was refused, info lifecycle,
 * debug.  Every layer logs with these.
 */
enum core_log_level {
	CORE_LOG_EMERG,
	CORE_LOG_ALERT,
	CORE_LOG_CRIT,
	CORE_LOG_ERROR,
	CORE_LOG_WARN,
	CORE_LOG_NOTICE,
	CORE_LOG_INFO,
	CORE_LOG_DEBUG
};

/* Returns the level's lower-case name ("emerg" ... "debug"), static. */
const char *core_log_level_name(enum core_log_level level);

/* Sets *level from its name; returns 0, or -1 for an unknown name. */
int core_log_level_parse(const char *name, enum core_log_level *level);

#endif
