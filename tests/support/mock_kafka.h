/*
 * An in-process mock Kafka cluster for tests (librdkafka's rdkafka_mock.h)
 * with every avvik topic created, a configuration pointing at it, and a
 * reader that drains a topic from the beginning to its end.
 */
#ifndef AVK_TEST_MOCK_KAFKA_H
#define AVK_TEST_MOCK_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/util/config.h"

struct mock_kafka {
        rd_kafka_t *owner; /* the handle that owns the cluster (fault injection goes here) */
        rd_kafka_mock_cluster_t *cluster;
        avk_config_t *cfg; /* kafka.bootstrap.servers set; the test may set more */
        int brokers;
};

/** Kafka protocol ApiKey of Produce, for fault injection; librdkafka keeps its constants private.
 */
#define MOCK_KAFKA_API_PRODUCE 0
/** ApiKey of EndTxn (a transaction's commit or abort). */
#define MOCK_KAFKA_API_END_TXN 26

/** Starts a cluster of brokers brokers; aborts the test on failure. */
void mock_kafka_start(struct mock_kafka *mk, int brokers);

void mock_kafka_stop(struct mock_kafka *mk);

/** Takes every broker down (up 0) or brings every one back (up 1). */
void mock_kafka_set_brokers(const struct mock_kafka *mk, int up);

/** Sets key to value in mk's configuration; a value it refuses fails the test. */
void mock_kafka_set(const struct mock_kafka *mk, const char *key, const char *value);

/** The last header name of m into buf, truncated to fit; "" when m has none. */
void mock_kafka_header(const rd_kafka_message_t *m, const char *name, char *buf, size_t size);

/** Produces one record (key a string, NULL: null; payload NULL: a null value) with producer
 * and waits for its acknowledgement; a failure fails the test. */
void mock_kafka_produce(rd_kafka_t *producer, const char *topic, const char *key,
                        const void *payload, size_t len);

typedef void(mock_kafka_record_cb)(void *opaque, const rd_kafka_message_t *m);

/** Calls cb for every record of topic, from the beginning to the end; returns the count. */
size_t mock_kafka_read_all(const struct mock_kafka *mk, const char *topic, mock_kafka_record_cb *cb,
                           void *opaque);

#endif
