/* avk_follow: see follow.h. */
#include "common/kafka/follow.h"

#include <stdlib.h>
#include <time.h>

#include "common/kafka/kafka.h"
#include "common/util/log.h"

#define POLL_MS 200 /* how often the loop looks at the stop flag */

void avk_follow_run(const struct avk_follow *f)
{
        char err[512];
        int partitions = 0, assigned = 0, warned = 0, at_end = 0;
        char *eof = NULL; /* partitions read to their end at least once */
        avro_value_t value;
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
                        if (!(eof = calloc((size_t)partitions, 1))) {
                                avk_log(AVK_LOG_ERROR, f->component, "out of memory");
                                break;
                        }
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
                } else if (avk_codec_decode(f->codec, m->payload, m->len, f->schema, &value, err,
                                            sizeof(err)) != 0 ||
                           f->apply(f->opaque, &value, err, sizeof(err)) < 0) {
                        avk_log(AVK_LOG_WARN, f->component, "%s [%d] offset %lld: %s (skipped)",
                                f->topic, (int)m->partition, (long long)m->offset, err);
                        if (f->skipped)
                                f->skipped(f->opaque);
                }
                rd_kafka_message_destroy(m);
        }
        free(eof);
        avro_value_decref(&value);
}
