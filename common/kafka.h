/*
 * avk_kafka: Kafka clients configured the avvik way, and the topic set.
 *
 * Producers are idempotent with acks=all (a report counts as accepted only
 * once every in-sync replica has it); consumers store offsets only after the
 * caller has processed a record (at-least-once). bootstrap.servers comes from
 * kafka.bootstrap.servers, or else from the file the embedded broker writes.
 */
#ifndef AVK_KAFKA_H
#define AVK_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/config.h"

/*
 * Record headers. Every record avvik writes carries its own id and its
 * schema's name; a routing and its inbox copies also say which hop wrote
 * them and why (docs/router.md, docs/notify.md).
 */
#define AVK_HDR_ID           "avk-id"    /**< the record's own id */
#define AVK_HDR_TYPE         "avk-type"  /**< its schema's name, e.g. "DeviationRouted" */
#define AVK_HDR_HOP          "avk-hop"   /**< the routing hop, in decimal */
#define AVK_HDR_CAUSE        "avk-cause" /**< on a DeviationRouted: the input that caused it */
#define AVK_HDR_ROUTED_EVENT "avk-routed-event" /**< on an inbox report: the routing's event id */

/** A topic of the system: its configuration key and the schema it carries. */
struct avk_topic {
        const char *config_key; /**< e.g. "topic.reported" */
        const char *schema;     /**< short schema name, e.g. "DeviationReported" */
};

extern const struct avk_topic avk_topics[];
extern const size_t avk_topic_cnt;

/** @brief The schema short name carried by the topic with this name, or NULL. */
const char *avk_kafka_topic_schema(const avk_config_t *cfg, const char *topic_name);

/** @brief The default bootstrap file: /tmp/avvik-<uid>/bootstrap.servers. */
void avk_kafka_default_bootstrap_file(char *buf, size_t size);

/**
 * @brief A librdkafka configuration from cfg's kafka.* keys, with
 * bootstrap.servers resolved. @returns NULL with the reason in errstr.
 */
rd_kafka_conf_t *avk_kafka_conf(const avk_config_t *cfg, char *errstr, size_t errstr_size);

/** @brief An idempotent producer (acks=all). conf is consumed on success. */
rd_kafka_t *avk_kafka_producer_new(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);

/**
 * @brief Assigns every partition of topic to the consumer rk, each from
 * offset (RD_KAFKA_OFFSET_BEGINNING, ...), without joining a group.
 * @param partitions receives the topic's partition count.
 * @returns 0, or -1 with the reason (topic metadata, assignment) in errstr.
 */
int avk_kafka_assign_all(rd_kafka_t *rk, const char *topic, int64_t offset, int timeout_ms,
                         int *partitions, char *errstr, size_t errstr_size);

/**
 * @brief A consumer in group, offsets stored by the caller after processing.
 * conf is consumed on success.
 */
rd_kafka_t *avk_kafka_consumer_new(rd_kafka_conf_t *conf, const char *group, char *errstr,
                                   size_t errstr_size);

/**
 * @brief Whether Kafka answers rk's metadata request within timeout_ms: the
 * "Kafka reachable" half of a service's readiness. Any thread.
 */
int avk_kafka_reachable(rd_kafka_t *rk, int timeout_ms);

#endif
