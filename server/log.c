/*
 * log.c - the logger behind log.h.  A single fprintf per line keeps lines
 * from different threads whole.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"

int log_min_level = LOG_INFO;

int log_parse_level(const char *s)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

void log_at(int level, const char *fmt, ...)
{
	if (level < log_min_level)
		return;
	static const char *tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
	char msg[1024], ts[32];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03dZ %s %s\n", ts, (int)(tv.tv_usec / 1000), tags[level & 3], msg);
}
