/*
 * avk_service: the kernel of a consume-process-produce service (the router,
 * the tracker, the analysis forwarder): its Kafka clients, the run loop,
 * rebalances with a state rebuild, the topic check, flow control, the
 * bounded close, stop, readiness and the standard metrics. The service is its domain logic plus the
 * hooks below; its outputs, offsets and dead letters go through the kernel's outbox
 * (common/kafka/outbox.h), whose input FIFOs the kernel keeps per assigned
 * partition. docs/architecture.md, "The service kernel", describes the whole.
 *
 * One thread runs avk_service_run() and every hook (the rebalance hooks run
 * from inside the consumer poll of that thread). avk_service_stop(),
 * avk_service_ready() and the counters may be called from any thread.
 */
#ifndef AVK_SERVICE_H
#define AVK_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/kafka/outbox.h"
#include "common/util/config.h"
#include "common/util/metrics.h"

/** The most partitions a service's topics may have. */
#define AVK_SERVICE_MAX_PARTITIONS 1024

typedef struct avk_service avk_service_t;

/** on_record's answer for a record to read again later (a transient failure). */
#define AVK_SERVICE_WAIT 1

/** What a service supplies; opaque is handed to each. Hooks marked optional may be NULL. */
struct avk_service_hooks {
        /**
         * A record of input topic inputs[topic], partition assigned, begun as
         * input seq of in: its outputs go to avk_outbox_emit(outbox, in, seq,
         * ...), a dead letter to avk_outbox_deadletter(). The kernel ends the
         * input when the hook returns (avk_outbox_end()); to keep it
         * unfinished longer the hook takes a hold (avk_outbox_hold()).
         * @returns 0; AVK_SERVICE_WAIT before any output when the record
         * cannot be handled yet for no fault of its own (the Schema Registry
         * has no answer): the kernel reads it again after a backoff and is
         * not ready meanwhile; or -1 with the reason in errstr: the loop ends.
         */
        int (*on_record)(void *opaque, int topic, avk_outbox_input_t *in, uint64_t seq,
                         const rd_kafka_message_t *m, char *errstr, size_t errstr_size);
        /**
         * Optional: once per round of the loop; lowers *next_due (avk_clock_mono_ms(),
         * set to a second from now) to when it has work due next.
         * @returns 0, or -1 with errstr: the loop ends.
         */
        int (*on_tick)(void *opaque, int64_t *next_due, char *errstr, size_t errstr_size);
        /** Optional: input topic inputs[topic] [partition] was read to its current end. */
        void (*on_eof)(void *opaque, int topic, int32_t partition);
        /**
         * Optional: the service waits for work outside Kafka too (curl's multi
         * handle): the kernel sleeps through this hook, which must return when
         * wake_fd is readable (Kafka's queues and avk_service_stop() write to
         * it; the hook drains it) or after timeout_ms. Without it the kernel
         * sleeps in the consumer poll.
         */
        void (*wait)(void *opaque, int wake_fd, int timeout_ms);
        /**
         * Optional: rebuilds the state of newly assigned partitions parts
         * (through avk_service_replay()). @returns 0, or -1: the kernel calls
         * on_drop for them and tries again until it succeeds or is stopped.
         */
        int (*on_rebuild)(void *opaque, const int32_t *parts, int cnt);
        /** Optional: forget the state of partitions parts (a failed rebuild, a revoke). */
        void (*on_drop)(void *opaque, const int32_t *parts, int cnt);
        /** Optional: input partition in is being revoked: release the holds taken on it. */
        void (*on_revoke)(void *opaque, avk_outbox_input_t *in);
        /** Optional: the state held, for the assignment's log line ("12 deviations"). */
        void (*describe)(void *opaque, char *buf, size_t size);
        /** Optional: every 10 s and at the end of the run: the service's summary line. */
        void (*summary)(void *opaque);
        /** Optional: avk_outbox_hooks' acked, for tagged outputs. */
        void (*acked)(void *opaque, const void *key, size_t key_len, uint64_t tag);
        /** Optional: avk_outbox_hooks' still_wanted, for tagged outputs. */
        int (*still_wanted)(void *opaque, const void *key, size_t key_len, uint64_t tag);
        void *opaque;
};

/** What the kernel is to run; the strings and arrays must outlive the service. */
struct avk_service_options {
        const char *component;     /**< names the service in logs: "router" */
        const char *metric_prefix; /**< "avk_router": avk_router_input_seconds, ... */
        const char *group;         /**< the consumer group id */
        const char *const *inputs; /**< the subscribed topics; readiness counts inputs[0] */
        int input_cnt;
        const char *const *outputs; /**< topics that must share the inputs' partition count */
        int output_cnt;
        const char *revoke_note; /**< what happens to outputs left in flight at a revoke */
        /** Pause an input topic while this many of its inputs are unfinished (0: never). */
        size_t max_unfinished;
        /**
         * Optional, instead of max_unfinished: input topic k counts in pool
         * input_pool[k], and the topics of pool i are paused together while
         * pool_max_unfinished[i] of their inputs are unfinished (0: never).
         * Pools are numbered from 0 below input_cnt.
         */
        const int *input_pool;
        const size_t *pool_max_unfinished;
        /**
         * Records taken from the consumer per round at most (0: 256), handled
         * partition number by partition number before the round's delivery
         * reports and offsets: a larger round gives larger produce requests
         * under a backlog, and goes past the bounds above by up to a round.
         */
        int round_max;
        avk_metrics_t *metrics; /**< the service's registry: the kernel adds its families */
        struct avk_service_hooks hooks;
};

/**
 * @brief Makes the outbox and the clients from the kafka.* settings of cfg:
 * the producer (its delivery reports go to the outbox; linger.ms=2 unless
 * set), the group consumer (range assignor: partition p of every input topic
 * on one instance; auto.offset.reset=earliest, auto.commit.interval.ms=1000,
 * fetch.wait.max.ms=10 unless set; static membership, group.instance.id
 * from avk_kafka_instance_id() unless kafka.group.instance.id is set;
 * session.timeout.ms=6000 and heartbeat.interval.ms=2000 unless set;
 * auto-commit of the offsets the outbox stores; partition ends reported,
 * to on_eof when set; another configured assignor is refused) and the
 * reader of rebuilds (group "<group>-state", never joined). Registers
 * <prefix>_input_seconds, <prefix>_delivery_retries_total,
 * <prefix>_registry_waits_total and <prefix>_input_lag{topic}. cfg and
 * opts are not copied.
 * @returns the service, or NULL with the reason in errstr.
 */
avk_service_t *avk_service_new(const avk_config_t *cfg, const struct avk_service_options *opts,
                               char *errstr, size_t errstr_size);

/**
 * @brief Checks the topics (inputs and outputs exist and share one partition
 * count), joins the group and runs until avk_service_stop() or a failure
 * (idle, it pauses its partitions and looks for records every 500 ms:
 * docs/architecture.md, "The service kernel");
 * then closes the consumer within consumer.close.timeout.ms (the revoke waits
 * for outputs in flight and commits; the instance leaves the group, static
 * member or not: avk_kafka_consumer_close()), and gives up what is still
 * queued.
 * @returns 0 after a stop, or -1 with the reason in errstr (topics, a hook, a
 * fatal producer error, a consumer fenced by another instance of its name). Offsets of unfinished
 * inputs are never committed.
 */
int avk_service_run(avk_service_t *svc, char *errstr, size_t errstr_size);

/** @brief Asks avk_service_run() to return. Any thread; not async-signal-safe. */
void avk_service_stop(avk_service_t *svc);

/**
 * @brief Readiness ("assigned and keeping up", for /readyz): Kafka answers a
 * metadata request within half a second and partitions of inputs[0] are
 * assigned with their state rebuilt. @returns 1, or 0 with the reason in why.
 * Any thread.
 */
int avk_service_ready(avk_service_t *svc, char *why, size_t why_size);

/**
 * @brief Whether every assigned input partition is at its end now, or was read
 * to its end at or after since_ms (avk_clock_mono_ms()): then every record
 * appended to the inputs before since_ms, as far as the last fetch of each
 * partition tells, has been handed to on_record. Timers on processing time
 * wait for this, so that a backlog (a restart, a lagging topic) is applied
 * before a deadline is judged. Nothing assigned: 1. Run thread.
 */
int avk_service_read_to_end_since(const avk_service_t *svc, int64_t since_ms);

/** @brief Whether input topic inputs[topic] is paused now (flow control). Run thread. */
int avk_service_paused(avk_service_t *svc, int topic);

/** @brief The outbox of the service's outputs (owned by the service). */
avk_outbox_t *avk_service_outbox(avk_service_t *svc);

/**
 * @brief For on_rebuild: reads partitions parts of topic from the beginning
 * to their current end through the reader (avk_replay_read(), 60 s at most). The
 * first call of a rebuild opens the reader; the kernel closes it when the rebuild is done.
 * @returns 0, or -1 (the rebuild is tried again).
 */
int avk_service_replay(avk_service_t *svc, const char *topic, const int32_t *parts, int cnt,
                       void (*cb)(void *opaque, const rd_kafka_message_t *m), void *opaque);

/** Counters of the kernel, any thread. */
struct avk_service_stats {
        uint64_t inputs_taken; /**< records taken for assigned partitions */
        uint64_t inputs_done;  /**< inputs whose outputs Kafka has all acknowledged */
        uint64_t retries;      /**< outputs produced again after a failed delivery */
        uint64_t idle_spells;  /**< times it paused its partitions for want of records */
        int partitions;        /**< partitions of inputs[0] assigned now */
};

/** @brief A snapshot of the counters. Any thread. */
void avk_service_stats(avk_service_t *svc, struct avk_service_stats *stats);

/** @brief Frees a service that is not running: clients, outbox. NULL is a no-op. */
void avk_service_destroy(avk_service_t *svc);

#endif
