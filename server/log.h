/*
 * log.h - leveled logging to stderr for etcfsd (prefix log_).  One line per
 * event, "2026-11-23T21:37:08.123Z LEVEL message", like etcd's console log.
 */
#ifndef EF_LOG_H
#define EF_LOG_H

enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO = 1,
	LOG_WARN = 2,
	LOG_ERROR = 3
};
extern int log_min_level;
/* "debug", "info", "warn", "error"; returns -1 for anything else. */
int log_parse_level(const char *s);
void log_at(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)

#endif
