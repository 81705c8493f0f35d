/*
 * avk_pump: the single thread of a service that consumes two co-partitioned
 * topics (copartition.h) and POSTs what it read to endpoints outside avvik
 * (webhook.h): the notifier (notify.c), until it moves onto the service
 * kernel (service.h) as the analysis forwarder did. Its clients (the group consumer, a producer for
 * outputs and dead letters, libcurl's multi handle) and the loop's pieces that do not depend on
 * what the service makes of a record: taking records, serving finished POSTs and delivery reports,
 * storing offsets, pausing, sleeping in curl_multi_poll() until a socket, the Kafka queues (through
 * a pipe that librdkafka writes to: rd_kafka_queue_io_event_enable), a due time or avk_pump_stop()
 * wakes it, and shutting down in order.
 */
#ifndef AVK_PUMP_H
#define AVK_PUMP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "common/util/config.h"
#include "common/kafka/copartition.h"
#include "common/http/webhook.h"

#define AVK_PUMP_POLL_MAX_MS 1000 /* longest sleep, should a wake-up be missed */

/** The clients and state of the loop; the service embeds it. */
struct avk_pump {
        const char *component; /**< names the service in logs */
        rd_kafka_t *consumer, *producer;
        rd_kafka_queue_t *consumer_queue, *producer_queue;
        CURLM *multi;
        int curl_inited;
        int wake[2];
        int close_timeout_ms; /**< consumer.close.timeout.ms */
        char fatal[512];      /**< set: the loop ends with this error */
        atomic_int stop;
};

/** @brief Makes p empty (nothing open), ready for avk_pump_open() or avk_pump_close(). */
void avk_pump_init(struct avk_pump *p, const char *component);

/**
 * @brief Opens libcurl (counted, paired with avk_pump_close()), the multi
 * handle and the wake-up pipe, a producer whose delivery reports go to dr with
 * opaque, and the consumer of cp; wires both clients' queues to the pipe.
 * @returns 0, or -1 with the reason in errstr (the caller closes p).
 */
int avk_pump_open(struct avk_pump *p, const avk_config_t *cfg,
                  void (*dr)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque),
                  void *opaque, const struct avk_copartition *cp, char *errstr, size_t errstr_size);

/** @brief Subscribes the consumer to topics. @returns 0, or -1 with the reason in errstr. */
int avk_pump_subscribe(struct avk_pump *p, const char *const *topics, int cnt, char *errstr,
                       size_t errstr_size);

/** @brief Whether the loop goes on: neither stopped nor failed. */
int avk_pump_running(struct avk_pump *p);

/** Called for a consumed record, or for the end of a partition (m->err is
 * RD_KAFKA_RESP_ERR__PARTITION_EOF). */
typedef void avk_pump_message_cb(void *opaque, const rd_kafka_message_t *m);

/**
 * @brief Takes up to max records from the consumer and hands them to cb; a
 * fatal consumer error ends the loop, other errors are logged.
 * @returns how many were taken.
 */
int avk_pump_take(struct avk_pump *p, int max, avk_pump_message_cb *cb, void *opaque);

/**
 * @brief Calls done for every POST that finished, serves the producer's
 * delivery reports; a fatal producer error ends the loop.
 */
void avk_pump_serve(struct avk_pump *p, avk_webhook_done_cb *done, void *opaque);

/**
 * @brief Sleeps until next (avk_clock_mono_ms()), AVK_PUMP_POLL_MAX_MS at most,
 * or only looks when busy (more records may be waiting).
 */
void avk_pump_sleep(struct avk_pump *p, int64_t next, int busy);

/** @brief Stores offset as where topic [partition] goes on; a failure is logged. */
void avk_pump_store(struct avk_pump *p, const char *topic, int32_t partition, int64_t offset);

/** @brief Pauses (pause) or resumes the partitions in l; destroys l. */
void avk_pump_pause(struct avk_pump *p, rd_kafka_topic_partition_list_t *l, int pause);

/** @brief Waits (a bounded time) for the producer's outputs to be acknowledged. */
void avk_pump_flush(struct avk_pump *p);

/** @brief Commits the stored offsets now; a failure is logged. */
void avk_pump_commit(struct avk_pump *p);

/** @brief Ends the loop from any thread. */
void avk_pump_stop(struct avk_pump *p);

/**
 * @brief The headers of a dead letter of the record at topic [partition]
 * offset: avk-error (reason), avk-source-topic, -partition and -offset, with
 * room for two more.
 */
rd_kafka_headers_t *avk_pump_deadletter_headers(const char *reason, const char *topic,
                                                int32_t partition, int64_t offset);

/**
 * @brief Grows an array of per-partition structures of elem_size bytes to
 * hold partition, the new ones zeroed.
 * @returns the array (perhaps moved; *cnt updated), or NULL for a negative
 * partition or out of memory (the array left as it was).
 */
void *avk_pump_grow(void *array, int *cnt, size_t elem_size, int32_t partition);

/**
 * @brief Copies m's key and value to new buffers (never NULL, even when
 * empty). @returns 0, or -1 when out of memory (what was allocated is in
 * *key or *value, for the caller to free).
 */
int avk_pump_copy(const rd_kafka_message_t *m, void **key, size_t *key_len, void **value,
                  size_t *value_len);

/**
 * @brief Closes the Kafka side: the queues unwired, the consumer closed within
 * consumer.close.timeout.ms (avk_kafka_consumer_close(): its rebalance callback
 * gives the partitions up, with the producer still there), the producer
 * flushed (a bounded wait) and destroyed.
 */
void avk_pump_close_kafka(struct avk_pump *p);

/** @brief Closes the rest, once no POST holds an easy handle: multi, libcurl, the pipe. */
void avk_pump_close(struct avk_pump *p);

#endif
