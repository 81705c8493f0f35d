/*
 * avk_idcache: see idcache.h.
 */
#include "common/util/idcache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_SIZE 40 /* a UUID and its NUL, with room */

struct entry {
        struct entry *chain, *older, *newer;
        char id[ID_SIZE];
        size_t len;
        unsigned char value[];
};

struct avk_idcache {
        struct entry **buckets;
        size_t bucket_cnt, cnt, max;
        struct entry *oldest, *newest;
};

static size_t hash_id(const char *id)
{
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
        for (; *id; id++)
                h = (h ^ (unsigned char)*id) * 0x100000001b3ULL;
        return (size_t)h;
}

avk_idcache_t *avk_idcache_new(size_t max)
{
        avk_idcache_t *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        size_t want = max < ((size_t)1 << 20) ? max : ((size_t)1 << 20);
        c->bucket_cnt = 16;
        while (c->bucket_cnt < want)
                c->bucket_cnt *= 2;
        c->buckets = calloc(c->bucket_cnt, sizeof(*c->buckets));
        c->max = max;
        if (!c->buckets) {
                free(c);
                return NULL;
        }
        return c;
}

static struct entry **slot_of(avk_idcache_t *c, const char *id)
{
        struct entry **slot = &c->buckets[hash_id(id) & (c->bucket_cnt - 1)];
        while (*slot && strcmp((*slot)->id, id) != 0)
                slot = &(*slot)->chain;
        return slot;
}

static void unlink_entry(avk_idcache_t *c, struct entry **slot)
{
        struct entry *e = *slot;
        *slot = e->chain;
        if (e->older)
                e->older->newer = e->newer;
        else
                c->oldest = e->newer;
        if (e->newer)
                e->newer->older = e->older;
        else
                c->newest = e->older;
        c->cnt--;
        free(e);
}

const void *avk_idcache_get(avk_idcache_t *c, const char *id, size_t *len)
{
        const struct entry *e = *slot_of(c, id);
        if (!e)
                return NULL;
        *len = e->len;
        return e->value;
}

int avk_idcache_put(avk_idcache_t *c, const char *id, const void *value, size_t len)
{
        struct entry **slot = slot_of(c, id);
        if (*slot)
                unlink_entry(c, slot);
        struct entry *e = malloc(sizeof(*e) + len);
        if (!e)
                return -1;
        snprintf(e->id, sizeof(e->id), "%s", id);
        e->len = len;
        memcpy(e->value, value, len);
        slot = slot_of(c, e->id);
        e->chain = NULL;
        *slot = e;
        e->older = c->newest;
        e->newer = NULL;
        if (c->newest)
                c->newest->newer = e;
        else
                c->oldest = e;
        c->newest = e;
        c->cnt++;
        if (c->cnt > c->max)
                unlink_entry(c, slot_of(c, c->oldest->id));
        return 0;
}

void avk_idcache_clear(avk_idcache_t *c)
{
        while (c->oldest)
                unlink_entry(c, slot_of(c, c->oldest->id));
}

size_t avk_idcache_count(const avk_idcache_t *c)
{
        return c->cnt;
}

void avk_idcache_destroy(avk_idcache_t *c)
{
        if (!c)
                return;
        avk_idcache_clear(c);
        free(c->buckets);
        free(c);
}
