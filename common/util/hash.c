/*
 * avk_htab: see hash.h.
 */
#include "common/util/hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>

#include <openssl/evp.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t avk_hash_bytes(const void *p, size_t len, uint64_t seed)
{
        return XXH3_64bits_withSeed(p, len, seed);
}

uint64_t avk_hash_seed(void)
{
        uint64_t seed = 0;
        /* Without the kernel's entropy the seed is fixed: the table still
         * works, only its resistance to crafted collisions is gone. */
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
                seed = 0x9e3779b97f4a7c15ULL;
        return seed;
}

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static const EVP_MD *sha256;
/* Each thread's context: in the thread's own variable, and under the key
 * only so that it is freed when the thread ends. */
static pthread_key_t sha256_ctx_key;
static _Thread_local EVP_MD_CTX *sha256_ctx;

static void free_ctx(void *ctx)
{
        EVP_MD_CTX_free(ctx);
}

static void fetch_sha256(void)
{
        /* Without a provider of it, EVP_sha256(): fetched per digest, the same digest. */
        EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
        sha256 = md ? md : EVP_sha256();
        pthread_key_create(&sha256_ctx_key, free_ctx);
}

const EVP_MD *avk_hash_sha256(void)
{
        pthread_once(&sha256_once, fetch_sha256);
        return sha256;
}

EVP_MD_CTX *avk_hash_sha256_begin(void)
{
        const EVP_MD *md = avk_hash_sha256();
        if (!sha256_ctx) {
                if (!(sha256_ctx = EVP_MD_CTX_new()))
                        return NULL;
                pthread_setspecific(sha256_ctx_key, sha256_ctx);
        }
        /* The same digest again keeps the provider's state (OpenSSL 3's
         * evp_md_init_internal() frees it only for another digest). */
        return EVP_DigestInit_ex2(sha256_ctx, md, NULL) ? sha256_ctx : NULL;
}

int avk_hash_sha256_digest(const void *data, size_t len, unsigned char out[32])
{
        EVP_MD_CTX *ctx = avk_hash_sha256_begin();
        return ctx && EVP_DigestUpdate(ctx, data, len) && EVP_DigestFinal_ex(ctx, out, NULL) ? 0
                                                                                             : -1;
}

int avk_htab_init(avk_htab_t *t, size_t expected)
{
        size_t n = 16;
        while (n < expected && n < ((size_t)1 << 30))
                n *= 2;
        t->buckets = calloc(n, sizeof(*t->buckets));
        if (!t->buckets)
                return -1;
        t->mask = n - 1;
        t->cnt = 0;
        return 0;
}

void avk_htab_destroy(avk_htab_t *t)
{
        free(t->buckets);
        t->buckets = NULL;
        t->mask = 0;
        t->cnt = 0;
}

static void grow(avk_htab_t *t)
{
        size_t n = (t->mask + 1) * 2;
        struct avk_hnode **b = calloc(n, sizeof(*b));
        if (!b)
                return;
        for (size_t i = 0; i <= t->mask; i++) {
                struct avk_hnode *node = t->buckets[i];
                while (node) {
                        struct avk_hnode *next = node->next;
                        struct avk_hnode **slot = &b[node->hash & (n - 1)];
                        node->next = *slot;
                        *slot = node;
                        node = next;
                }
        }
        free(t->buckets);
        t->buckets = b;
        t->mask = n - 1;
}

void avk_htab_insert(avk_htab_t *t, struct avk_hnode *node, uint64_t hash)
{
        if (t->cnt > t->mask)
                grow(t);
        struct avk_hnode **slot = &t->buckets[hash & t->mask];
        node->hash = hash;
        node->next = *slot;
        *slot = node;
        t->cnt++;
}

struct avk_hnode *avk_htab_find(const avk_htab_t *t, uint64_t hash,
                                int (*eq)(const struct avk_hnode *node, const void *key),
                                const void *key)
{
        for (struct avk_hnode *node = t->buckets[hash & t->mask]; node; node = node->next)
                if (node->hash == hash && eq(node, key))
                        return node;
        return NULL;
}

void avk_htab_remove(avk_htab_t *t, struct avk_hnode *node)
{
        for (struct avk_hnode **p = &t->buckets[node->hash & t->mask]; *p; p = &(*p)->next) {
                if (*p == node) {
                        *p = node->next;
                        node->next = NULL;
                        t->cnt--;
                        return;
                }
        }
}

void avk_hiter_init(struct avk_hiter *it, const avk_htab_t *t)
{
        it->bucket = 0;
        it->next = t->buckets[0];
}

struct avk_hnode *avk_hiter_next(struct avk_hiter *it, const avk_htab_t *t)
{
        while (!it->next && it->bucket < t->mask)
                it->next = t->buckets[++it->bucket];
        struct avk_hnode *node = it->next;
        if (node)
                it->next = node->next;
        return node;
}

int avk_slotidx_init(avk_slotidx_t *idx, size_t expected)
{
        size_t n = 16;
        while (n < expected * 2 && n < ((size_t)1 << 32))
                n *= 2;
        idx->pos = calloc(n, sizeof(*idx->pos));
        if (!idx->pos)
                return -1;
        idx->mask = n - 1;
        idx->cnt = 0;
        return 0;
}

void avk_slotidx_destroy(avk_slotidx_t *idx)
{
        free(idx->pos);
        idx->pos = NULL;
        idx->mask = 0;
        idx->cnt = 0;
}

uint32_t avk_slotidx_find(const avk_slotidx_t *idx, uint64_t hash, avk_slotidx_eq_fn *eq,
                          const void *key, const void *ctx)
{
        for (size_t i = hash & idx->mask; idx->pos[i]; i = (i + 1) & idx->mask)
                if (eq(idx->pos[i] - 1, key, ctx))
                        return idx->pos[i] - 1;
        return AVK_SLOTIDX_NONE;
}

static void slotidx_put(uint32_t *pos, size_t mask, uint64_t hash, uint32_t slot)
{
        size_t i = hash & mask;
        while (pos[i])
                i = (i + 1) & mask;
        pos[i] = slot + 1;
}

int avk_slotidx_insert(avk_slotidx_t *idx, uint64_t hash, uint32_t slot,
                       avk_slotidx_hash_fn *hash_of, const void *ctx)
{
        if ((idx->cnt + 1) * 2 > idx->mask + 1) {
                size_t n = (idx->mask + 1) * 2;
                uint32_t *pos = calloc(n, sizeof(*pos));
                if (!pos)
                        return -1;
                for (size_t i = 0; i <= idx->mask; i++)
                        if (idx->pos[i])
                                slotidx_put(pos, n - 1, hash_of(idx->pos[i] - 1, ctx),
                                            idx->pos[i] - 1);
                free(idx->pos);
                idx->pos = pos;
                idx->mask = n - 1;
        }
        slotidx_put(idx->pos, idx->mask, hash, slot);
        idx->cnt++;
        return 0;
}

void avk_slotidx_remove(avk_slotidx_t *idx, uint64_t hash, uint32_t slot,
                        avk_slotidx_hash_fn *hash_of, const void *ctx)
{
        size_t mask = idx->mask;
        size_t i = hash & mask;
        while (idx->pos[i] != slot + 1)
                i = (i + 1) & mask;
        idx->pos[i] = 0;
        idx->cnt--;
        /* Backward shift: an entry after the hole moves into it unless its
         * home lies cyclically in (hole, entry]. */
        for (size_t j = (i + 1) & mask; idx->pos[j]; j = (j + 1) & mask) {
                size_t home = hash_of(idx->pos[j] - 1, ctx) & mask;
                if (((j - home) & mask) >= ((j - i) & mask)) {
                        idx->pos[i] = idx->pos[j];
                        idx->pos[j] = 0;
                        i = j;
                }
        }
}
