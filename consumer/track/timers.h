/*
 * avk_timers: the tracker's deadline timers - a 4-ary min-heap of (due, id)
 * with an index from id to heap position, so that setting, moving or
 * cancelling the timer of one id is O(log n) and finding what is due is
 * O(1) per fired timer: a tick never scans the open deviations.
 *
 * An id is a small dense integer (the tracker's slot of a deviation); each id
 * has at most one timer. Memory: 12 bytes per armed timer (an 8-byte due
 * time and a 4-byte id in two parallel arrays) plus 4 bytes per id of the
 * position index.
 *
 * Not thread-safe: one owner.
 */
#ifndef AVK_TIMERS_H
#define AVK_TIMERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct avk_timers avk_timers_t;

/** @brief An empty set of timers, or NULL when out of memory. */
avk_timers_t *avk_timers_new(void);

/** @brief Frees the timers. NULL is a no-op. */
void avk_timers_destroy(avk_timers_t *timers);

/**
 * @brief Arms the timer of id at due (ms), moving it when it is armed.
 * @returns 0, or -1 when out of memory (the timer is then unchanged).
 */
int avk_timers_set(avk_timers_t *timers, uint32_t id, int64_t due);

/** @brief Disarms the timer of id; nothing when it is not armed. */
void avk_timers_cancel(avk_timers_t *timers, uint32_t id);

/** @brief 1 when id has an armed timer, with its due time in *due (may be NULL). */
int avk_timers_armed(const avk_timers_t *timers, uint32_t id, int64_t *due);

/**
 * @brief Disarms and returns the earliest timer when it is due at or before
 * now. @returns 1 with its id and due time, or 0 when none is due.
 */
int avk_timers_pop_due(avk_timers_t *timers, int64_t now, uint32_t *id, int64_t *due);

/** @brief The earliest due time, or INT64_MAX when no timer is armed. */
int64_t avk_timers_next(const avk_timers_t *timers);

/** @brief Number of armed timers. */
size_t avk_timers_cnt(const avk_timers_t *timers);

/** @brief Bytes of memory the timers hold (arrays at their capacity). */
size_t avk_timers_memory(const avk_timers_t *timers);

#endif
