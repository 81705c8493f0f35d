/*
 * avk_arena: memory for state that lives and dies together - the router's
 * deviations of one partition, dropped all at once when the partition is
 * revoked. Allocation bumps a pointer through chunks mapped from the
 * kernel; nothing is freed alone, everything at avk_arena_destroy().
 *
 * Why not malloc: state grows by every new deviation and is dropped a
 * partition at a time. Through malloc each deviation was four allocations
 * and a page fault per 4 KB of new heap, which were about a third of the
 * router thread's time in bench/router_vs_pipe.sh; a revoke freed them one
 * by one. Chunks double from AVK_ARENA_FIRST_CHUNK to AVK_ARENA_BIG_CHUNK,
 * then stay that size; each is faulted in AVK_ARENA_FILL_STEP at a time
 * just ahead of use, in ordinary pages (not transparent huge pages:
 * arena.c says why). A partition with few deviations stays small.
 *
 * Not thread-safe: one owner at a time.
 */
#ifndef AVK_ARENA_H
#define AVK_ARENA_H

#include <stddef.h>

#define AVK_ARENA_FIRST_CHUNK (64u << 10)
#define AVK_ARENA_BIG_CHUNK   (2u << 20)
#define AVK_ARENA_FILL_STEP   (64u << 10) /**< faulted in ahead of use at a time */

typedef struct avk_arena avk_arena_t;

/** @brief An empty arena; NULL when out of memory. Maps nothing until the first allocation. */
avk_arena_t *avk_arena_new(void);

/**
 * @brief size bytes aligned to 16, valid until avk_arena_destroy(); NULL
 * when out of memory. An allocation larger than a chunk gets its own.
 */
void *avk_arena_alloc(avk_arena_t *a, size_t size);

/** @brief Bytes mapped (chunks included in full): what the arena costs. */
size_t avk_arena_mapped(const avk_arena_t *a);

/** @brief Unmaps everything the arena handed out; NULL is ignored. */
void avk_arena_destroy(avk_arena_t *a);

#endif
