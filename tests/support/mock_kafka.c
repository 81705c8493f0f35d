/* The mock cluster fixture: see mock_kafka.h. */
#include "tests/support/mock_kafka.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config_keys.h"
#include "common/kafka/kafka.h"

void mock_kafka_start(struct mock_kafka *mk, int brokers)
{
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
        mk->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        ck_assert_msg(mk->owner != NULL, "%s", err);
        mk->cluster = rd_kafka_mock_cluster_new(mk->owner, brokers);
        mk->brokers = brokers;
        ck_assert_ptr_nonnull(mk->cluster);
        mk->cfg = avk_cli_config_new();
        ck_assert_int_eq(avk_config_set(mk->cfg, "kafka.bootstrap.servers",
                                        rd_kafka_mock_cluster_bootstraps(mk->cluster), err,
                                        sizeof(err)),
                         0);
        int partitions = (int)avk_config_get_int(mk->cfg, "topic.partitions");
        for (size_t i = 0; i < avk_topic_cnt; i++)
                ck_assert_int_eq(rd_kafka_mock_topic_create(
                                     mk->cluster, avk_config_get(mk->cfg, avk_topics[i].config_key),
                                     partitions, brokers < 3 ? brokers : 3),
                                 0);
}

void mock_kafka_stop(struct mock_kafka *mk)
{
        avk_config_destroy(mk->cfg);
        rd_kafka_mock_cluster_destroy(mk->cluster);
        rd_kafka_destroy(mk->owner);
}

size_t mock_kafka_read_all(const struct mock_kafka *mk, const char *topic, mock_kafka_record_cb *cb,
                           void *opaque)
{
        char err[512];
        rd_kafka_conf_t *conf = avk_kafka_conf(mk->cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", NULL, 0);
        rd_kafka_t *rk = avk_kafka_consumer_new(conf, "test-reader", err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        int partitions = (int)avk_config_get_int(mk->cfg, "topic.partitions");
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
        for (int p = 0; p < partitions; p++)
                rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        ck_assert_int_eq(rd_kafka_assign(rk, parts), 0);
        rd_kafka_topic_partition_list_destroy(parts);
        size_t n = 0;
        /* The end of a partition may be reported more than once (after a
         * leader change): count each partition once. */
        char *at_end = calloc((size_t)partitions, 1);
        ck_assert_ptr_nonnull(at_end);
        for (int eofs = 0; eofs < partitions;) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 10000);
                ck_assert_msg(m != NULL, "%s: no record or end of partition within 10 s", topic);
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        ck_assert_int_lt(m->partition, partitions);
                        eofs += !at_end[m->partition];
                        at_end[m->partition] = 1;
                } else {
                        ck_assert_msg(!m->err, "%s", rd_kafka_message_errstr(m));
                        cb(opaque, m);
                        n++;
                }
                rd_kafka_message_destroy(m);
        }
        free(at_end);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return n;
}

void mock_kafka_set_brokers(const struct mock_kafka *mk, int up)
{
        for (int b = 1; b <= mk->brokers; b++) {
                if (up)
                        rd_kafka_mock_broker_set_up(mk->cluster, b);
                else
                        rd_kafka_mock_broker_set_down(mk->cluster, b);
        }
}

void mock_kafka_set(const struct mock_kafka *mk, const char *key, const char *value)
{
        char err[512];
        ck_assert_msg(avk_config_set(mk->cfg, key, value, err, sizeof(err)) == 0, "%s", err);
}

void mock_kafka_header(const rd_kafka_message_t *m, const char *name, char *buf, size_t size)
{
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t len;
        buf[0] = '\0';
        if (rd_kafka_message_headers(m, &h) == 0 &&
            rd_kafka_header_get_last(h, name, &v, &len) == 0)
                snprintf(buf, size, "%.*s", (int)len, (const char *)v);
}

void mock_kafka_produce(rd_kafka_t *producer, const char *topic, const char *key,
                        const void *payload, size_t len)
{
        ck_assert_int_eq(
            rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE((void *)payload, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
        ck_assert_int_eq(rd_kafka_flush(producer, 10000), 0);
}
