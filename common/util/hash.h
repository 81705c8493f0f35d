/*
 * avk_htab: the project's one hash table. Intrusive and chained, in the
 * manner of the Linux kernel's hlist and curl's lib/hash.c: an entry embeds a
 * struct avk_hnode, so entries live wherever their owner keeps them (an
 * arena, a struct of its own) and the table allocates only its bucket array.
 * Each node keeps its hash, so growing never hashes a key again.
 *
 * Keys are hashed with XXH3 (libxxhash) and a seed: a table whose keys come
 * from clients takes a random seed (avk_hash_seed()), so keys crafted to
 * collide in one process do not collide in another.
 *
 * Beside it, for entries kept in an array that moves when it grows (where a
 * pointer into it would dangle), avk_slotidx: open addressing of the
 * entries' array indexes, 4 bytes a slot at most half full, deletion by
 * backward shift. The owner hashes and compares through callbacks.
 *
 * Not thread-safe: a table has one owner, or its owner's lock.
 */
#ifndef AVK_HASH_H
#define AVK_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

struct avk_hnode {
        struct avk_hnode *next;
        uint64_t hash;
};

typedef struct avk_htab {
        struct avk_hnode **buckets;
        size_t mask; /**< bucket count - 1 (a power of two) */
        size_t cnt;  /**< nodes in the table */
} avk_htab_t;

/** The struct of type holding the member pointed to by ptr. */
#define avk_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/** @brief XXH3 of len bytes at p with seed. */
uint64_t avk_hash_bytes(const void *p, size_t len, uint64_t seed);

/** @brief A random seed from the kernel's generator (getrandom). */
uint64_t avk_hash_seed(void);

/**
 * @brief OpenSSL's SHA-256 for EVP_Digest*(), fetched once for the process:
 * EVP_sha256() is fetched again, under a lock, by every digest made with
 * it (OpenSSL 3), a third of the time of a short message's digest. Kept
 * until the process ends.
 */
const EVP_MD *avk_hash_sha256(void);

/**
 * @brief The calling thread's SHA-256 context, begun: feed it with
 * EVP_DigestUpdate() and end it with EVP_DigestFinal_ex() before the thread
 * calls this again. Made once a thread and reused, where EVP_Digest() and
 * EVP_MD_CTX_new() allocate a context and the provider's state for every
 * digest; owned by the thread, freed when it ends.
 * @returns the context, or NULL when out of memory.
 */
EVP_MD_CTX *avk_hash_sha256_begin(void);

/** @brief SHA-256 of data into out, with the thread's context. @returns 0, or -1. */
int avk_hash_sha256_digest(const void *data, size_t len, unsigned char out[32]);

/**
 * @brief Sets t up for about expected nodes (it grows past them).
 * @returns 0, or -1 when out of memory.
 */
int avk_htab_init(avk_htab_t *t, size_t expected);

/** @brief Frees the bucket array; the nodes belong to their owner. */
void avk_htab_destroy(avk_htab_t *t);

/**
 * @brief Inserts node under hash (no check for an equal key: find first).
 * Doubles the bucket array when the table holds more nodes than buckets; a
 * failed growth leaves the table longer-chained but whole.
 */
void avk_htab_insert(avk_htab_t *t, struct avk_hnode *node, uint64_t hash);

/**
 * @brief The first node under hash for which eq(node, key) is true, or NULL.
 */
struct avk_hnode *avk_htab_find(const avk_htab_t *t, uint64_t hash,
                                int (*eq)(const struct avk_hnode *node, const void *key),
                                const void *key);

/** @brief Unlinks node, which must be in t. */
void avk_htab_remove(avk_htab_t *t, struct avk_hnode *node);

/** An iteration over a table, in no order. */
struct avk_hiter {
        size_t bucket;
        struct avk_hnode *next;
};

/** @brief Starts an iteration over t. Nothing may be inserted until it ends. */
void avk_hiter_init(struct avk_hiter *it, const avk_htab_t *t);

/**
 * @brief The next node, or NULL at the end. The node returned may be
 * removed (and freed) before the next call.
 */
struct avk_hnode *avk_hiter_next(struct avk_hiter *it, const avk_htab_t *t);

/** An open-addressing index of array positions ("slots"). */
typedef struct avk_slotidx {
        uint32_t *pos; /**< slot + 1; 0 is empty */
        size_t mask;
        size_t cnt;
} avk_slotidx_t;

#define AVK_SLOTIDX_NONE UINT32_MAX

/** The hash of the entry at slot; the owner's, from what the entry holds. */
typedef uint64_t avk_slotidx_hash_fn(uint32_t slot, const void *ctx);
/** Whether the entry at slot has key. */
typedef int avk_slotidx_eq_fn(uint32_t slot, const void *key, const void *ctx);

/** @brief Sets idx up for about expected slots. @returns 0, or -1 when out of memory. */
int avk_slotidx_init(avk_slotidx_t *idx, size_t expected);

/** @brief Frees the index (the entries are the owner's). */
void avk_slotidx_destroy(avk_slotidx_t *idx);

/** @brief The slot whose entry has key under hash, or AVK_SLOTIDX_NONE. */
uint32_t avk_slotidx_find(const avk_slotidx_t *idx, uint64_t hash, avk_slotidx_eq_fn *eq,
                          const void *key, const void *ctx);

/**
 * @brief Adds slot under hash, growing first when the index would be more
 * than half full (hash_of hashes the entries already in it).
 * @returns 0, or -1 when out of memory (nothing added).
 */
int avk_slotidx_insert(avk_slotidx_t *idx, uint64_t hash, uint32_t slot,
                       avk_slotidx_hash_fn *hash_of, const void *ctx);

/** @brief Removes slot, whose entry hashes to hash and must be in idx. */
void avk_slotidx_remove(avk_slotidx_t *idx, uint64_t hash, uint32_t slot,
                        avk_slotidx_hash_fn *hash_of, const void *ctx);

#endif
