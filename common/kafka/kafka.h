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

#include "common/util/config.h"

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
/* A dead letter's (avk_outbox_deadletter(), common/kafka/outbox.h) and, with the rest below, a
 * record of topic.notify.retry's: the notifier's parked webhook delivery (docs/notify.md, "Retry
 * topic"). */
#define AVK_HDR_ERROR            "avk-error"            /**< why: the reason, the last failure */
#define AVK_HDR_SOURCE_TOPIC     "avk-source-topic"     /**< the original record's topic */
#define AVK_HDR_SOURCE_PARTITION "avk-source-partition" /**< its partition, in decimal */
#define AVK_HDR_SOURCE_OFFSET    "avk-source-offset"    /**< its offset, in decimal */
#define AVK_HDR_EVENT_ID         "avk-event-id"         /**< the delivery's X-Avvik-Event-Id */
#define AVK_HDR_NOTIFY_EVENT     "avk-notify-event"     /**< routed, escalated or reminder */
#define AVK_HDR_DEVIATION_ID     "avk-deviation-id"     /**< the deviation's id */
#define AVK_HDR_PARTY            "avk-party"            /**< the receiving party's code */
#define AVK_HDR_UNIT             "avk-unit"             /**< the receiving unit's HSA id, if any */
#define AVK_HDR_ATTEMPTS         "avk-attempts"         /**< attempts made so far, in decimal */
#define AVK_HDR_FIRST_ATTEMPT_AT "avk-first-attempt-at" /**< ms since the epoch, in decimal */
#define AVK_HDR_DUE_AT           "avk-due-at" /**< the next attempt's, ms since the epoch */
#define AVK_HDR_IDENTITY         "avk-patient-identity" /**< "1": the body holds personal_id */
#define AVK_HDR_ORIGINAL         "avk-original"         /**< the original record's value bytes */

/** A topic of the system: its configuration key and the schema it carries. */
struct avk_topic {
        const char *config_key; /**< e.g. "topic.reported" */
        const char *schema;     /**< short schema name, e.g. "DeviationReported"; NULL: none */
        int one_partition;      /**< else the lifecycle topics' count (topic.partitions) */
};

extern const struct avk_topic avk_topics[];
extern const size_t avk_topic_cnt;

/** @brief The schema short name carried by the topic with this name, or NULL. */
const char *avk_kafka_topic_schema(const avk_config_t *cfg, const char *topic_name);

/** @brief The default bootstrap file: /tmp/avvik-<uid>/bootstrap.servers. */
void avk_kafka_default_bootstrap_file(char *buf, size_t size);

/**
 * @brief A librdkafka configuration from cfg's kafka.* keys, with
 * bootstrap.servers resolved. @returns NULL with the reason in errstr, also
 * for a kafka.partitioner other than murmur2_random and a
 * kafka.isolation.level other than read_committed.
 */
rd_kafka_conf_t *avk_kafka_conf(const avk_config_t *cfg, char *errstr, size_t errstr_size);

/**
 * @brief An idempotent producer (acks=all) that partitions keys as the Java
 * client does (murmur2_random). conf is consumed on success.
 */
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
 * @brief A consumer in group, offsets stored by the caller after processing,
 * reading committed records only (isolation.level=read_committed).
 * conf is consumed on success.
 */
rd_kafka_t *avk_kafka_consumer_new(rd_kafka_conf_t *conf, const char *group, char *errstr,
                                   size_t errstr_size);

/**
 * @brief The group.instance.id of a service's group consumer (static
 * membership, KIP-345; docs/operations.md, "Restarts"): cfg's instance.name,
 * else "<hostname>-<component>". Written into buf of size (cut to fit).
 */
void avk_kafka_instance_id(const avk_config_t *cfg, const char *component, char *buf, size_t size);

/**
 * @brief Closes the group consumer rk within timeout_ms (the service's
 * consumer.close.timeout.ms), its assignment given up through the
 * application's rebalance callback as on any revoke: that callback stores
 * and commits the offsets.
 *
 * rd_kafka_consumer_close() alone waits without a bound: for a group that
 * never answers (broker gone) and, in librdkafka 2.0.2, forever when a
 * rebalance is in progress (rd_kafka_assign() in the callback it serves
 * never returns, librdkafka issue #4884). So the consumer first leaves the
 * group with rd_kafka_unsubscribe(), its queue served here (callbacks
 * included) until the assignment is empty, while the group is not yet
 * terminating (so it sends LeaveGroup also as a static member with
 * group.instance.id: librdkafka leaves that out, KIP-345, only for a consumer
 * already closing, and a clean stop hands its partitions on at once); only
 * then is the group handler closed, on a queue of its own
 * served until rd_kafka_consumer_closed(). Past timeout_ms, and at least 2 s
 * after the close itself began (a revoke may have used up the timeout), it
 * gives up and logs that under component: the offsets not committed are read again by
 * the partitions' next owner (at least once; output ids are deterministic).
 * Records still taken from either queue here (a consumer that assigned its
 * partitions itself is still fetching) are dropped unprocessed (their
 * offsets are not stored).
 *
 * Destroy rk afterwards with rd_kafka_destroy_flags(rk,
 * RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE): a plain rd_kafka_destroy() would
 * close again, without a bound.
 * @returns 0 when closed, -1 when it gave up.
 */
int avk_kafka_consumer_close(rd_kafka_t *rk, int timeout_ms, const char *component);

/**
 * @brief The readiness of a consumer service ("assigned and keeping up", for
 * /readyz): Kafka answers rk's metadata request within half a second, and
 * partitions (the count of topic's partitions the service holds now, its
 * state rebuilt) is above 0. Every service's /readyz comes from here, most
 * through avk_service_ready(). Any thread.
 * @returns 1, or 0 with the reason in why.
 */
int avk_kafka_ready(rd_kafka_t *rk, int partitions, const char *topic, char *why, size_t why_size);

#endif
