/*
 * avk_idem: see idempotency.h.
 *
 * A hash table (common/util/hash, seeded per table: keys come from
 * clients) maps each key to an entry; entries of one request
 * share its flight (hash, result, waiters), which is freed when the last
 * entry pointing at it goes. Finished entries sit on a list in the order
 * their results became known - which is also the order they expire in -
 * so expiry and eviction both take from its head in constant time.
 * Entries in flight are on no list and are never evicted.
 */
#include "producer/gateway/idempotency.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <openssl/evp.h>
#include <uuid/uuid.h>

#include "common/util/hash.h"

struct waiter {
        avk_idem_wait_cb *cb;
        void *opaque;
        struct waiter *next;
};

struct entry {
        struct avk_hnode node;
        char *key;
        avk_idem_flight_t *flight;
        int64_t expires_ms;          /* finished entries */
        TAILQ_ENTRY(entry) finished; /* by completion, when finished */
};

struct avk_idem_flight {
        unsigned char hash[AVK_IDEM_HASH_SIZE];
        int done;
        unsigned status;
        char *body;
        int refs; /* entries pointing here, plus one while in flight */
        struct entry *entries[AVK_IDEM_MAX_KEYS];
        size_t entry_cnt;
        struct waiter *waiters;
};

struct avk_idem {
        pthread_mutex_t lock;
        size_t max_entries, size;
        int64_t ttl_ms;
        avk_htab_t table;
        uint64_t seed;
        TAILQ_HEAD(, entry) finished; /* oldest first */
};

static uint64_t key_hash(const avk_idem_t *idem, const char *key)
{
        return avk_hash_bytes(key, strlen(key), idem->seed);
}

static int key_eq(const struct avk_hnode *node, const void *key)
{
        return strcmp(avk_container_of(node, struct entry, node)->key, key) == 0;
}

avk_idem_t *avk_idem_new(size_t max_entries, int64_t ttl_ms)
{
        avk_idem_t *idem = calloc(1, sizeof(*idem));
        if (!idem)
                return NULL;
        if (avk_htab_init(&idem->table,
                          max_entries < ((size_t)1 << 24) ? max_entries : ((size_t)1 << 24)) != 0) {
                free(idem);
                return NULL;
        }
        idem->seed = avk_hash_seed();
        TAILQ_INIT(&idem->finished);
        idem->max_entries = max_entries;
        idem->ttl_ms = ttl_ms;
        pthread_mutex_init(&idem->lock, NULL);
        return idem;
}

static void flight_free(avk_idem_flight_t *f)
{
        while (f->waiters) {
                struct waiter *w = f->waiters;
                f->waiters = w->next;
                free(w);
        }
        free(f->body);
        free(f);
}

/* Drops one reference to f; frees it with the last. */
static void flight_unref(avk_idem_flight_t *f)
{
        if (--f->refs == 0)
                flight_free(f);
}

void avk_idem_destroy(avk_idem_t *idem)
{
        if (!idem)
                return;
        struct avk_hiter it;
        struct avk_hnode *node;
        avk_hiter_init(&it, &idem->table);
        while ((node = avk_hiter_next(&it, &idem->table))) {
                struct entry *e = avk_container_of(node, struct entry, node);
                flight_unref(e->flight);
                free(e->key);
                free(e);
        }
        avk_htab_destroy(&idem->table);
        pthread_mutex_destroy(&idem->lock);
        free(idem);
}

static struct entry *find(avk_idem_t *idem, const char *key)
{
        struct avk_hnode *node = avk_htab_find(&idem->table, key_hash(idem, key), key_eq, key);
        return node ? avk_container_of(node, struct entry, node) : NULL;
}

/* Unlinks e from its bucket and, when finished, from the finished list; frees it. */
static void remove_entry(avk_idem_t *idem, struct entry *e)
{
        avk_htab_remove(&idem->table, &e->node);
        if (e->flight->done)
                TAILQ_REMOVE(&idem->finished, e, finished);
        flight_unref(e->flight);
        free(e->key);
        free(e);
        idem->size--;
}

static void expire(avk_idem_t *idem, int64_t now_ms)
{
        struct entry *e;
        while ((e = TAILQ_FIRST(&idem->finished)) && e->expires_ms <= now_ms)
                remove_entry(idem, e);
}

/* Takes the keys for a new flight; NULL when there is no room or memory. */
static avk_idem_flight_t *take(avk_idem_t *idem, const char *const *keys, size_t key_cnt,
                               const unsigned char hash[AVK_IDEM_HASH_SIZE])
{
        while (idem->size + key_cnt > idem->max_entries && !TAILQ_EMPTY(&idem->finished))
                remove_entry(idem, TAILQ_FIRST(&idem->finished));
        if (idem->size + key_cnt > idem->max_entries)
                return NULL;
        avk_idem_flight_t *f = calloc(1, sizeof(*f));
        if (!f)
                return NULL;
        memcpy(f->hash, hash, AVK_IDEM_HASH_SIZE);
        f->refs = 1;
        for (size_t i = 0; i < key_cnt; i++) {
                struct entry *e = calloc(1, sizeof(*e));
                char *key = strdup(keys[i]);
                if (!e || !key) {
                        free(e);
                        free(key);
                        break;
                }
                *e = (struct entry){.key = key, .flight = f};
                avk_htab_insert(&idem->table, &e->node, key_hash(idem, key));
                f->entries[f->entry_cnt++] = e;
                f->refs++;
                idem->size++;
        }
        if (f->entry_cnt < key_cnt) { /* out of memory: undo; f->refs keeps f */
                while (f->entry_cnt)
                        remove_entry(idem, f->entries[--f->entry_cnt]);
                flight_free(f);
                return NULL;
        }
        return f;
}

void avk_idem_begin(avk_idem_t *idem, const char *const *keys, size_t key_cnt,
                    const unsigned char hash[AVK_IDEM_HASH_SIZE], int64_t now_ms,
                    avk_idem_wait_cb *cb, void *opaque, struct avk_idem_claim *claim)
{
        *claim = (struct avk_idem_claim){.outcome = AVK_IDEM_FULL};
        pthread_mutex_lock(&idem->lock);
        expire(idem, now_ms);
        for (size_t i = 0; i < key_cnt; i++) {
                struct entry *e = find(idem, keys[i]);
                if (!e)
                        continue;
                avk_idem_flight_t *f = e->flight;
                claim->key = i;
                if (memcmp(f->hash, hash, AVK_IDEM_HASH_SIZE) != 0) {
                        claim->outcome = AVK_IDEM_CONFLICT;
                } else if (f->done) {
                        claim->status = f->status;
                        claim->body = strdup(f->body);
                        claim->outcome = claim->body ? AVK_IDEM_DONE : AVK_IDEM_FULL;
                } else {
                        struct waiter *w = malloc(sizeof(*w));
                        if (w) {
                                *w = (struct waiter){cb, opaque, f->waiters};
                                f->waiters = w;
                                claim->outcome = AVK_IDEM_WAIT;
                        }
                }
                goto out;
        }
        claim->flight = take(idem, keys, key_cnt, hash);
        if (claim->flight)
                claim->outcome = AVK_IDEM_NEW;
out:
        pthread_mutex_unlock(&idem->lock);
}

void avk_idem_finish(avk_idem_t *idem, avk_idem_flight_t *f, unsigned status, const char *body,
                     int keep, int64_t now_ms)
{
        pthread_mutex_lock(&idem->lock);
        struct waiter *waiters = f->waiters;
        f->waiters = NULL;
        if (keep)
                keep = (f->body = strdup(body)) != NULL;
        if (!keep) {
                /* The keys go; the caller's reference keeps f until the
                 * waiters are told. */
                while (f->entry_cnt)
                        remove_entry(idem, f->entries[--f->entry_cnt]);
        }
        f->status = status;
        f->done = 1;
        for (size_t i = 0; i < f->entry_cnt; i++) {
                struct entry *e = f->entries[i];
                e->expires_ms = now_ms + idem->ttl_ms;
                TAILQ_INSERT_TAIL(&idem->finished, e, finished);
        }
        if (keep)
                flight_unref(f); /* now its entries' alone */
        pthread_mutex_unlock(&idem->lock);
        while (waiters) {
                struct waiter *w = waiters;
                waiters = w->next;
                w->cb(w->opaque, status, body);
                free(w);
        }
        if (!keep)
                flight_free(f);
}

size_t avk_idem_size(avk_idem_t *idem)
{
        pthread_mutex_lock(&idem->lock);
        size_t n = idem->size;
        pthread_mutex_unlock(&idem->lock);
        return n;
}

int avk_idem_derive_id(const char *what, const char *party, const char *key,
                       char id[AVK_IDEM_ID_SIZE])
{
        /* The NULs between the parts keep ("a", "bc") and ("ab", "c") apart. */
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
                 EVP_DigestUpdate(ctx, "avvik Idempotency-Key", 22) &&
                 EVP_DigestUpdate(ctx, what, strlen(what) + 1) &&
                 EVP_DigestUpdate(ctx, party, strlen(party) + 1) &&
                 EVP_DigestUpdate(ctx, key, strlen(key)) && EVP_DigestFinal_ex(ctx, digest, &len);
        EVP_MD_CTX_free(ctx);
        if (!ok)
                return -1;
        uuid_t u;
        memcpy(u, digest, sizeof(u));
        u[6] = (unsigned char)((u[6] & 0x0f) | 0x80); /* version 8: RFC 9562, custom */
        u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* the RFC's variant */
        uuid_unparse_lower(u, id);
        return 0;
}
