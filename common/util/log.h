/*
 * avk_log: leveled logging to stderr, one line per event.
 *
 * Log lines never carry patient identity: callers pass ids of deviations and
 * units, never personal data (docs/domain.md, "Patient data").
 */
#ifndef AVK_LOG_H
#define AVK_LOG_H

enum avk_log_level { AVK_LOG_DEBUG, AVK_LOG_INFO, AVK_LOG_WARN, AVK_LOG_ERROR };

/** @brief Sets the lowest level that is printed (default AVK_LOG_INFO). */
void avk_log_set_level(enum avk_log_level level);

/** @brief Parses "debug", "info", "warn" or "error"; returns -1 on anything else. */
int avk_log_level_parse(const char *name, enum avk_log_level *level);

/** @brief Prints "<time> <level> <component>: <message>" to stderr. */
void avk_log(enum avk_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
