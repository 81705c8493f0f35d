/* avk_replay: see replay.h. */
#include "common/kafka/replay.h"

#include <stdlib.h>
#include <time.h>

#include "common/util/log.h"

static int64_t mono_ms(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int avk_replay_read(rd_kafka_t *reader, const char *topic, const int32_t *parts, int cnt,
                    int timeout_ms, avk_replay_cb *cb, void *opaque)
{
        int32_t max = 0;
        for (int i = 0; i < cnt; i++)
                max = parts[i] + 1 > max ? parts[i] + 1 : max;
        int64_t *end = calloc((size_t)max + 1, sizeof(*end));
        char *done = calloc((size_t)max + 1, 1);
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(cnt);
        int remaining = 0, rc = -1;
        if (!end || !done)
                goto out;
        for (int i = 0; i < cnt; i++) {
                int64_t lo, hi;
                rd_kafka_resp_err_t e =
                    rd_kafka_query_watermark_offsets(reader, topic, parts[i], &lo, &hi, 10000);
                if (e) {
                        avk_log(AVK_LOG_WARN, "replay", "%s [%d]: %s", topic, (int)parts[i],
                                rd_kafka_err2str(e));
                        goto out;
                }
                end[parts[i]] = hi;
                if (hi > lo) {
                        rd_kafka_topic_partition_list_add(list, topic, parts[i])->offset =
                            RD_KAFKA_OFFSET_BEGINNING;
                        remaining++;
                }
        }
        if (!remaining) {
                rc = 0;
                goto out;
        }
        if (rd_kafka_assign(reader, list) != 0)
                goto out;
        int64_t deadline = mono_ms() + timeout_ms;
        while (remaining > 0 && mono_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 200);
                if (!m)
                        continue;
                if (!m->err && m->partition >= 0 && m->partition < max &&
                    m->offset < end[m->partition]) {
                        cb(opaque, m);
                        if (m->offset == end[m->partition] - 1 && !done[m->partition]) {
                                done[m->partition] = 1;
                                remaining--;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(reader, NULL);
        rc = remaining == 0 ? 0 : -1;
out:
        rd_kafka_topic_partition_list_destroy(list);
        free(end);
        free(done);
        return rc;
}

int avk_replay_fresh(const rd_kafka_topic_partition_list_t *parts, const int *owned, int max,
                     int32_t *nums, int *fresh)
{
        int cnt = 0;
        for (int i = 0; i < parts->cnt; i++) {
                int32_t p = parts->elems[i].partition;
                if (p >= 0 && p < max && !owned[p] && !fresh[p]) {
                        fresh[p] = 1;
                        nums[cnt++] = p;
                }
        }
        return cnt;
}
