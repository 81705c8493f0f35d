/*
 * avk_idcache: see idcache.h.
 */
#include "common/util/idcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/util/hash.h"

#define ID_SIZE 40 /* a UUID and its NUL, with room */

struct entry {
        struct avk_hnode node;
        TAILQ_ENTRY(entry) age; /* oldest first */
        char id[ID_SIZE];
        size_t len;
        unsigned char value[];
};

struct avk_idcache {
        avk_htab_t table;
        TAILQ_HEAD(, entry) by_age;
        size_t max;
};

static uint64_t hash_id(const char *id)
{
        return avk_hash_bytes(id, strlen(id), 0);
}

static int id_eq(const struct avk_hnode *node, const void *id)
{
        return strcmp(avk_container_of(node, struct entry, node)->id, id) == 0;
}

avk_idcache_t *avk_idcache_new(size_t max)
{
        avk_idcache_t *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        if (avk_htab_init(&c->table, max < ((size_t)1 << 20) ? max : ((size_t)1 << 20)) != 0) {
                free(c);
                return NULL;
        }
        TAILQ_INIT(&c->by_age);
        c->max = max;
        return c;
}

static struct entry *find(avk_idcache_t *c, const char *id)
{
        struct avk_hnode *node = avk_htab_find(&c->table, hash_id(id), id_eq, id);
        return node ? avk_container_of(node, struct entry, node) : NULL;
}

static void drop(avk_idcache_t *c, struct entry *e)
{
        avk_htab_remove(&c->table, &e->node);
        TAILQ_REMOVE(&c->by_age, e, age);
        free(e);
}

const void *avk_idcache_get(avk_idcache_t *c, const char *id, size_t *len)
{
        const struct entry *e = find(c, id);
        if (!e)
                return NULL;
        *len = e->len;
        return e->value;
}

int avk_idcache_put(avk_idcache_t *c, const char *id, const void *value, size_t len)
{
        struct entry *old = find(c, id);
        if (old)
                drop(c, old);
        struct entry *e = malloc(sizeof(*e) + len);
        if (!e)
                return -1;
        snprintf(e->id, sizeof(e->id), "%s", id);
        e->len = len;
        memcpy(e->value, value, len);
        avk_htab_insert(&c->table, &e->node, hash_id(e->id));
        TAILQ_INSERT_TAIL(&c->by_age, e, age);
        if (c->table.cnt > c->max)
                drop(c, TAILQ_FIRST(&c->by_age));
        return 0;
}

void avk_idcache_clear(avk_idcache_t *c)
{
        struct entry *e;
        while ((e = TAILQ_FIRST(&c->by_age)))
                drop(c, e);
}

size_t avk_idcache_count(const avk_idcache_t *c)
{
        return c->table.cnt;
}

void avk_idcache_destroy(avk_idcache_t *c)
{
        if (!c)
                return;
        avk_idcache_clear(c);
        avk_htab_destroy(&c->table);
        free(c);
}
