/*
 * avk_clock: the one time module. Monotonic time for intervals, timeouts and
 * rates (avk_clock_mono_*), wall-clock time for what is written into records
 * (avk_clock_system_ms), and processing time for the services that act on it
 * (the tracker's deadlines, the dashboard's overdue list). Normally the system's real-time
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
#include <time.h>

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

/** @brief Monotonic time in ns, for intervals only (unrelated to the epoch). */
int64_t avk_clock_mono_ns(void);

/** @brief Monotonic time in us, for intervals only. */
int64_t avk_clock_mono_us(void);

/** @brief Monotonic time in ms, for intervals only. */
int64_t avk_clock_mono_ms(void);

/**
 * @brief The absolute CLOCK_REALTIME time timeout_ms from now, for
 * pthread_cond_timedwait() with the default condition clock.
 */
struct timespec avk_clock_deadline(int64_t timeout_ms);

#endif
