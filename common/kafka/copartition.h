/*
 * avk_copartition: the group consumer of a service that joins two
 * co-partitioned lifecycle topics - keyed by deviation id, one partition
 * count (docs/architecture.md, "Kafka") - the notifier (topic.routed with
 * topic.reported; the service kernel, service.h, has its own). The range assignor gives partition p
 * of both topics to the same instance, so a record finds the deviation it belongs to locally; any
 * other assignor would scatter them, and is refused.
 */
#ifndef AVK_COPARTITION_H
#define AVK_COPARTITION_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "common/util/config.h"

/** The consumer's settings; every pointer must outlive the call only. */
struct avk_copartition {
        const char *service;   /**< "avvik notify", for errors */
        const char *group_key; /**< configuration key of the group id, e.g. "notify.group.id" */
        const char *topic_a, *topic_b;
        void (*rebalance_cb)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *partitions, void *opaque);
        void *opaque;
};

/**
 * @brief The consumer: kafka.* settings from cfg, the range assignor,
 * partition ends reported (enable.partition.eof), offsets stored by the
 * caller, auto.offset.reset=earliest unless set (a new group delivers what
 * is on the topics: at least once).
 * @returns NULL with the reason in errstr (another assignor configured, Kafka).
 */
rd_kafka_t *avk_copartition_consumer_new(const avk_config_t *cfg, const struct avk_copartition *cp,
                                         char *errstr, size_t errstr_size);

/** @brief Whether kafka.<name> is set in cfg; its value in *value. */
int avk_copartition_kafka_set(const avk_config_t *cfg, const char *name, const char **value);

#endif
