/*
 * avk_clock: processing time for the services that act on it (the tracker's
 * deadlines, the dashboard's overdue list). Normally the system's real-time
 * clock; when a clock file is configured (tracker.clock.file,
 * dashboard.clock.file - for tests and the local stack's demo, never
 * production) the time is the number of ms since the epoch written in that
 * file, read on every call and never going back, so that a test or a demo
 * can move weeks ahead in seconds.
 */
#ifndef AVK_CLOCK_H
#define AVK_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct avk_clock {
        const char *file;        /**< NULL: the system clock; not owned */
        _Atomic int64_t last_ms; /**< the latest time read from file */
} avk_clock_t;

/** @brief Sets clock up to read file (NULL for the system clock). */
void avk_clock_init(avk_clock_t *clock, const char *file);

/**
 * @brief Now, in ms since the epoch (UTC). With a file: its value, or the
 * last one read when it is missing, unreadable or smaller. Thread-safe.
 */
int64_t avk_clock_now(avk_clock_t *clock);

/** @brief The system's real-time clock in ms since the epoch. */
int64_t avk_clock_system_ms(void);

#endif
