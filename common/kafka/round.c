/* avk_round: see round.h. */
#include "common/kafka/round.h"

#include <stdlib.h>
#include <string.h>

struct avk_round {
        int max, partition_cnt;
        int cnt;
        rd_kafka_message_t **taken;   /* [cnt], in the order taken */
        rd_kafka_message_t **ordered; /* the same in partition order, after avk_round_take() */
        int *first;                   /* [partition_cnt + 2]: the counting sort's positions */
};

avk_round_t *avk_round_new(int max, int partition_cnt)
{
        avk_round_t *r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->max = max;
        r->partition_cnt = partition_cnt;
        r->taken = calloc((size_t)max, sizeof(*r->taken));
        r->ordered = calloc((size_t)max, sizeof(*r->ordered));
        r->first = calloc((size_t)partition_cnt + 2, sizeof(*r->first));
        if (!r->taken || !r->ordered || !r->first) {
                avk_round_destroy(r);
                return NULL;
        }
        return r;
}

void avk_round_destroy(avk_round_t *r)
{
        if (!r)
                return;
        for (int i = 0; i < r->cnt; i++)
                rd_kafka_message_destroy(r->taken[i]);
        free(r->taken);
        free(r->ordered);
        free(r->first);
        free(r);
}

int avk_round_full(const avk_round_t *r)
{
        return r->cnt >= r->max;
}

void avk_round_add(avk_round_t *r, rd_kafka_message_t *m)
{
        r->taken[r->cnt++] = m;
}

/* m's place in the order: 0 for no partition (or one out of range), p + 1 for partition p. */
static int key(const avk_round_t *r, const rd_kafka_message_t *m)
{
        return m->partition >= 0 && m->partition < r->partition_cnt ? m->partition + 1 : 0;
}

int avk_round_take(avk_round_t *r, rd_kafka_message_t ***records)
{
        int cnt = r->cnt;
        memset(r->first, 0, ((size_t)r->partition_cnt + 2) * sizeof(*r->first));
        for (int i = 0; i < cnt; i++)
                r->first[key(r, r->taken[i]) + 1]++;
        for (int k = 1; k < r->partition_cnt + 2; k++)
                r->first[k] += r->first[k - 1];
        for (int i = 0; i < cnt; i++)
                r->ordered[r->first[key(r, r->taken[i])]++] = r->taken[i];
        r->cnt = 0;
        *records = r->ordered;
        return cnt;
}
