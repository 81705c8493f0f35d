/*
 * avk_log: see log.h. The level is process-wide and set once at start-up,
 * before threads exist; reads afterwards need no lock.
 */
#include "common/util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum avk_log_level min_level = AVK_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void avk_log_set_level(enum avk_log_level level)
{
        min_level = level;
}

int avk_log_level_parse(const char *name, enum avk_log_level *level)
{
        for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
                if (strcmp(name, level_names[i]) == 0) {
                        *level = (enum avk_log_level)i;
                        return 0;
                }
        }
        return -1;
}

void avk_log(enum avk_log_level level, const char *component, const char *fmt, ...)
{
        if (level < min_level)
                return;
        char stamp[32];
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

        char line[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        /* One fprintf per line keeps lines whole when threads log at once. */
        fprintf(stderr, "%s.%03ldZ %s %s: %s\n", stamp, now.tv_nsec / 1000000L, level_names[level],
                component, line);
}
