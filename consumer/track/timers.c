/*
 * avk_timers: see timers.h.
 *
 * A 4-ary heap rather than a binary one: half the depth, and the four
 * children of a node share a cache line of due times, so a sift-down touches
 * fewer lines. A hierarchical wheel was the other candidate; deadlines here
 * lie days to months ahead and are mostly far apart, which a wheel serves
 * with cascades and a heap with nothing special.
 */
#include "consumer/track/timers.h"

#include <stdlib.h>
#include <string.h>

#define ARITY   4
#define NOWHERE UINT32_MAX /* pos[] of an id without a timer */

struct avk_timers {
        int64_t *due; /* heap order */
        uint32_t *id; /* parallel to due */
        size_t cnt, cap;
        uint32_t *pos; /* id -> heap index, NOWHERE when disarmed */
        size_t pos_cap;
};

avk_timers_t *avk_timers_new(void)
{
        return calloc(1, sizeof(avk_timers_t));
}

void avk_timers_destroy(avk_timers_t *t)
{
        if (!t)
                return;
        free(t->due);
        free(t->id);
        free(t->pos);
        free(t);
}

static void place(avk_timers_t *t, size_t i, int64_t due, uint32_t id)
{
        t->due[i] = due;
        t->id[i] = id;
        t->pos[id] = (uint32_t)i;
}

static void sift_up(avk_timers_t *t, size_t i)
{
        int64_t due = t->due[i];
        uint32_t id = t->id[i];
        while (i > 0) {
                size_t parent = (i - 1) / ARITY;
                if (t->due[parent] <= due)
                        break;
                place(t, i, t->due[parent], t->id[parent]);
                i = parent;
        }
        place(t, i, due, id);
}

static void sift_down(avk_timers_t *t, size_t i)
{
        int64_t due = t->due[i];
        uint32_t id = t->id[i];
        for (;;) {
                size_t first = i * ARITY + 1;
                if (first >= t->cnt)
                        break;
                size_t last = first + ARITY < t->cnt ? first + ARITY : t->cnt;
                size_t min = first;
                for (size_t c = first + 1; c < last; c++) {
                        if (t->due[c] < t->due[min])
                                min = c;
                }
                if (t->due[min] >= due)
                        break;
                place(t, i, t->due[min], t->id[min]);
                i = min;
        }
        place(t, i, due, id);
}

static int grow_pos(avk_timers_t *t, uint32_t id)
{
        if (id < t->pos_cap)
                return 0;
        size_t cap = t->pos_cap ? t->pos_cap : 1024;
        while (cap <= id)
                cap *= 2;
        uint32_t *pos = realloc(t->pos, cap * sizeof(*pos));
        if (!pos)
                return -1;
        memset(pos + t->pos_cap, 0xff, (cap - t->pos_cap) * sizeof(*pos));
        t->pos = pos;
        t->pos_cap = cap;
        return 0;
}

static int grow_heap(avk_timers_t *t)
{
        if (t->cnt < t->cap)
                return 0;
        size_t cap = t->cap ? t->cap * 2 : 1024;
        int64_t *due = realloc(t->due, cap * sizeof(*due));
        if (!due)
                return -1;
        t->due = due;
        uint32_t *id = realloc(t->id, cap * sizeof(*id));
        if (!id)
                return -1;
        t->id = id;
        t->cap = cap;
        return 0;
}

int avk_timers_set(avk_timers_t *t, uint32_t id, int64_t due)
{
        if (id == NOWHERE || grow_pos(t, id) != 0)
                return -1;
        uint32_t i = t->pos[id];
        if (i != NOWHERE) {
                int64_t old = t->due[i];
                t->due[i] = due;
                if (due < old)
                        sift_up(t, i);
                else if (due > old)
                        sift_down(t, i);
                return 0;
        }
        if (grow_heap(t) != 0)
                return -1;
        size_t at = t->cnt++;
        place(t, at, due, id);
        sift_up(t, at);
        return 0;
}

/* Removes the entry at heap index i. */
static void remove_at(avk_timers_t *t, size_t i)
{
        t->pos[t->id[i]] = NOWHERE;
        size_t last = --t->cnt;
        if (i == last)
                return;
        int64_t old = t->due[i];
        place(t, i, t->due[last], t->id[last]);
        if (t->due[i] < old)
                sift_up(t, i);
        else
                sift_down(t, i);
}

void avk_timers_cancel(avk_timers_t *t, uint32_t id)
{
        if (id < t->pos_cap && t->pos[id] != NOWHERE)
                remove_at(t, t->pos[id]);
}

int avk_timers_armed(const avk_timers_t *t, uint32_t id, int64_t *due)
{
        if (id >= t->pos_cap || t->pos[id] == NOWHERE)
                return 0;
        if (due)
                *due = t->due[t->pos[id]];
        return 1;
}

int avk_timers_pop_due(avk_timers_t *t, int64_t now, uint32_t *id, int64_t *due)
{
        if (t->cnt == 0 || t->due[0] > now)
                return 0;
        *id = t->id[0];
        *due = t->due[0];
        remove_at(t, 0);
        return 1;
}

int64_t avk_timers_next(const avk_timers_t *t)
{
        return t->cnt ? t->due[0] : INT64_MAX;
}

size_t avk_timers_cnt(const avk_timers_t *t)
{
        return t->cnt;
}

size_t avk_timers_memory(const avk_timers_t *t)
{
        return sizeof(*t) + t->cap * (sizeof(int64_t) + sizeof(uint32_t)) +
               t->pos_cap * sizeof(uint32_t);
}
