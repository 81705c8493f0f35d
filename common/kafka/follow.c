/* avk_follow: see follow.h. */
#include "common/kafka/follow.h"

#include <stdlib.h>
#include <time.h>

#include "common/kafka/kafka.h"
#include "common/util/log.h"

#define POLL_MS      200  /* how often the loop looks at the stop flag */
#define RETRY_MAX_MS 5000 /* the longest wait between tries while the registry is away */

/* Waits ms, or less once stopping is set. */
static void pause_ms(const struct avk_follow *f, int64_t ms)
{
        for (int64_t waited = 0; waited < ms && !atomic_load(f->stopping); waited += POLL_MS)
                nanosleep(&(struct timespec){0, POLL_MS * 1000000L}, NULL);
}

/* Goes back to m's offset, to read m again after a wait: the registry had no
 * answer for its writer schema, which is no fault of the record's. The wait
 * grows while the registry stays away, whatever the other partitions read
 * meanwhile; waiting_at[partition] remembers the record, so that the wait
 * is logged once and ends only when that record is read. */
static void retry_later(const struct avk_follow *f, const rd_kafka_message_t *m,
                        int64_t *waiting_at, int64_t *backoff_ms, const char *reason)
{
        if (waiting_at[m->partition] != m->offset)
                avk_log(AVK_LOG_WARN, f->component,
                        "%s [%d] offset %lld: %s (waiting, not skipped)", f->topic,
                        (int)m->partition, (long long)m->offset, reason);
        waiting_at[m->partition] = m->offset;
        *backoff_ms = *backoff_ms ? *backoff_ms * 2 : POLL_MS;
        if (*backoff_ms > RETRY_MAX_MS)
                *backoff_ms = RETRY_MAX_MS;
        rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(at, f->topic, m->partition)->offset = m->offset;
        rd_kafka_error_t *error = rd_kafka_seek_partitions(f->rk, at, 5000);
        if (error) {
                avk_log(AVK_LOG_WARN, f->component, "%s [%d]: seek back: %s", f->topic,
                        (int)m->partition, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        rd_kafka_topic_partition_list_destroy(at);
        pause_ms(f, *backoff_ms);
}

/* Decodes m and hands it to the follower's callback. Returns 0 when used,
 * AVK_CODEC_UNAVAILABLE, or -1 with the reason in errstr (decoding, or the
 * callback's). value: the follower's avro-c value, unless it reads slots. */
static int decode_apply(const struct avk_follow *f, const rd_kafka_message_t *m,
                        avro_value_t *value, char *errstr, size_t errstr_size)
{
        int rc;
        if (f->apply_slots) {
                const avk_avroprog_slot_t *slots;
                rc = avk_codec_decode_slots(f->codec, m->payload, m->len, f->schema, &slots, errstr,
                                            errstr_size);
                if (rc == 0 && f->apply_slots(f->opaque, m, slots, errstr, errstr_size) < 0)
                        rc = -1;
                return rc;
        }
        rc = avk_codec_decode(f->codec, m->payload, m->len, f->schema, value, errstr, errstr_size);
        if (rc == 0 && f->apply(f->opaque, value, errstr, errstr_size) < 0)
                rc = -1;
        return rc;
}

void avk_follow_run(const struct avk_follow *f)
{
        char err[512];
        int partitions = 0, assigned = 0, warned = 0, at_end = 0;
        char *eof = NULL;           /* partitions read to their end at least once */
        int64_t *waiting_at = NULL; /* per partition: the offset read again, or -1 */
        int64_t backoff_ms = 0;     /* while the registry has no answer */
        avro_value_t value = {0};
        if (!f->apply_slots)
                avro_generic_value_new(avk_schema_iface(f->schema), &value);
        while (!atomic_load(f->stopping)) {
                if (!assigned) {
                        if (avk_kafka_assign_all(f->rk, f->topic, RD_KAFKA_OFFSET_BEGINNING,
                                                 POLL_MS * 5, &partitions, err, sizeof(err)) != 0) {
                                if (!warned++)
                                        avk_log(AVK_LOG_WARN, f->component, "%s (retrying)", err);
                                nanosleep(&(struct timespec){0, POLL_MS * 1000000L}, NULL);
                                continue;
                        }
                        assigned = 1;
                        eof = calloc((size_t)partitions, 1);
                        waiting_at = malloc((size_t)partitions * sizeof(*waiting_at));
                        if (!eof || !waiting_at) {
                                avk_log(AVK_LOG_ERROR, f->component, "out of memory");
                                break;
                        }
                        for (int p = 0; p < partitions; p++)
                                waiting_at[p] = -1;
                }
                rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, POLL_MS);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (m->partition >= 0 && m->partition < partitions && !eof[m->partition]) {
                                eof[m->partition] = 1;
                                if (++at_end == partitions && f->loaded)
                                        f->loaded(f->opaque);
                        }
                } else if (m->err) {
                        /* Broker connection errors are librdkafka's to log (it
                         * does, once per state change): the rest are ours. */
                        if (m->err != RD_KAFKA_RESP_ERR__TRANSPORT &&
                            m->err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
                                avk_log(AVK_LOG_WARN, f->component, "%s",
                                        rd_kafka_message_errstr(m));
                } else {
                        int rc = decode_apply(f, m, &value, err, sizeof(err));
                        if (rc == AVK_CODEC_UNAVAILABLE) {
                                retry_later(f, m, waiting_at, &backoff_ms, err);
                        } else if (rc != 0) {
                                avk_log(AVK_LOG_WARN, f->component,
                                        "%s [%d] offset %lld: %s (skipped)", f->topic,
                                        (int)m->partition, (long long)m->offset, err);
                                if (f->skipped)
                                        f->skipped(f->opaque);
                        }
                        if (rc != AVK_CODEC_UNAVAILABLE && waiting_at[m->partition] == m->offset) {
                                avk_log(AVK_LOG_INFO, f->component,
                                        "%s [%d] offset %lld: the registry answers again", f->topic,
                                        (int)m->partition, (long long)m->offset);
                                waiting_at[m->partition] = -1;
                                backoff_ms = 0;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        free(eof);
        free(waiting_at);
        if (!f->apply_slots)
                avro_value_decref(&value);
}
