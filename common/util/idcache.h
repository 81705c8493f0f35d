/*
 * avk_idcache: a bounded map from a deviation id to bytes the caller keeps
 * about it, the oldest entry dropped first once it is full. The services
 * that join a lifecycle topic with topic.reported keep what they need of each
 * deviation here: the notifier the record as read, the analysis forwarder
 * the deviation's pseudonymised view.
 *
 * A chained hash over the ids for lookups and a list by age for eviction:
 * put, get and eviction are O(1). Not thread-safe: one owner thread.
 */
#ifndef AVK_IDCACHE_H
#define AVK_IDCACHE_H

#include <stddef.h>

typedef struct avk_idcache avk_idcache_t;

/** @brief A map holding at most max_entries. @returns NULL when out of memory. */
avk_idcache_t *avk_idcache_new(size_t max_entries);

/** @brief Frees the map and every entry. NULL is a no-op. */
void avk_idcache_destroy(avk_idcache_t *cache);

/**
 * @brief Stores a copy of value under id (at most 39 characters), replacing
 * what id held (a deviation filed twice keeps its last copy); the oldest
 * entry goes when the map is full. @returns 0, or -1 when out of memory.
 */
int avk_idcache_put(avk_idcache_t *cache, const char *id, const void *value, size_t len);

/**
 * @brief The bytes stored under id, their length in *len.
 * @returns a pointer owned by the map and valid until its next put or clear,
 * or NULL when id is not held.
 */
const void *avk_idcache_get(avk_idcache_t *cache, const char *id, size_t *len);

/** @brief Drops every entry. */
void avk_idcache_clear(avk_idcache_t *cache);

/** @brief Entries held. */
size_t avk_idcache_count(const avk_idcache_t *cache);

#endif
