/*
 * avk_outbox: the outputs of a consume-process-produce service and the
 * offsets of its inputs, at least once: an input's offset is stored only
 * once Kafka acknowledged every output of it and of every earlier input of
 * its partition. The service kernel's part for outputs, offsets and dead
 * letters (common/kafka/service.h; docs/architecture.md, "The service
 * kernel"): the kernel assigns, begins and ends inputs; a service emits
 * outputs and dead letters.
 *
 * Each assigned input partition has a FIFO of inputs in offset order, each
 * counting its outputs not yet acknowledged (plus one while the service is
 * still producing them). A delivery report decrements; when the inputs at
 * the head are finished the offset after the last of them is stored, and
 * the consumer's auto-commit commits it. A failed delivery (after
 * librdkafka's own retries) is produced again after 500 ms for as long as
 * it takes, unless the service says it is no longer wanted.
 *
 * Outputs may also stand alone (no input: the tracker's timer-driven
 * outputs); their acknowledgement is reported through the acked hook.
 *
 * One thread: the service's loop, which also serves the producer's delivery
 * reports (avk_outbox_poll()).
 */
#ifndef AVK_OUTBOX_H
#define AVK_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

typedef struct avk_outbox avk_outbox_t;
typedef struct avk_outbox_input avk_outbox_input_t; /**< one assigned input partition */

/** What the service hears back; every hook may be NULL. */
struct avk_outbox_hooks {
        /** All outputs of an input are acknowledged, seconds after it began. */
        void (*input_done)(void *opaque, double seconds);
        /** An output given a tag (not 0) is acknowledged. */
        void (*acked)(void *opaque, const void *key, size_t key_len, uint64_t tag);
        /** A tagged output failed: 1 to produce it again, 0 to let it go as done. */
        int (*still_wanted)(void *opaque, const void *key, size_t key_len, uint64_t tag);
        void *opaque;
};

/** One output. Everything is copied; a NULL key or value stays null on the topic. */
/** A piece of an output's value. */
struct avk_outbox_part {
        const void *bytes;
        size_t len;
};

struct avk_outbox_msg {
        const char *topic; /**< must outlive the outbox (the configuration's or directory's) */
        int32_t partition; /**< or RD_KAFKA_PARTITION_UA */
        const void *key;
        size_t key_len;
        const void *value;
        size_t len;
        /** Optional, instead of value and len: the value in pieces, joined in the one copy
         * the outbox makes (a caller that keeps its outputs in parts needs no copy of its own). */
        const struct avk_outbox_part *value_parts;
        int value_part_cnt;
        const char *const *hdr_names;
        const char *const *hdr_values;
        const size_t *hdr_lens; /**< the values' lengths (NULL: NUL-terminated strings) */
        int hdr_cnt;            /**< at most AVK_OUTBOX_MAX_HDRS */
        uint64_t tag;
};

#define AVK_OUTBOX_MAX_HDRS 16

/** @brief An outbox; component names it in logs. NULL when out of memory. */
avk_outbox_t *avk_outbox_new(const struct avk_outbox_hooks *hooks, const char *component);

/** @brief Sets the delivery report callback of a producer's configuration to the outbox's. */
void avk_outbox_conf(avk_outbox_t *outbox, rd_kafka_conf_t *producer_conf);

/** @brief The clients: the producer made from that configuration, the group consumer. */
void avk_outbox_clients(avk_outbox_t *outbox, rd_kafka_t *producer, rd_kafka_t *consumer);

/**
 * @brief Releases the outbox's topic handles of its producer; call before
 * the producer is destroyed (avk_outbox_destroy() does it too). NULL is a no-op.
 */
void avk_outbox_release(avk_outbox_t *outbox);

/** @brief Frees the outbox; call after avk_outbox_close(). NULL is a no-op. */
void avk_outbox_destroy(avk_outbox_t *outbox);

/** @brief The FIFO of a newly assigned input partition. NULL when out of memory. */
avk_outbox_input_t *avk_outbox_assign(avk_outbox_t *outbox, const char *topic, int32_t partition);

/**
 * @brief The partition is revoked: its outputs in flight finish, but it never
 * stores an offset again; it is freed when nothing is left.
 */
void avk_outbox_revoke(avk_outbox_t *outbox, avk_outbox_input_t *input);

/** @brief Begins an input at offset. @returns its sequence number, UINT64_MAX when out of memory.
 */
uint64_t avk_outbox_begin(avk_outbox_input_t *input, int64_t offset);

/** @brief Ends producing the outputs of input seq (releases the hold of begin). */
void avk_outbox_end(avk_outbox_t *outbox, avk_outbox_input_t *input, uint64_t seq);

/**
 * @brief Keeps input seq unfinished past its end, for work outside Kafka
 * (a response waiting for its routing); avk_outbox_end() releases the hold.
 */
void avk_outbox_hold(avk_outbox_input_t *input, uint64_t seq);

/**
 * @brief Takes back input seq, the last begun, before it produced anything:
 * the record is to be read again later (avk_service's AVK_SERVICE_WAIT).
 * @returns 0, or -1 when seq is not the last or has outputs (it stays).
 */
int avk_outbox_withdraw(avk_outbox_input_t *input, uint64_t seq);

/**
 * @brief Produces msg as an output of input seq, or alone when input is NULL.
 * @returns 0, or -1 when out of memory.
 */
int avk_outbox_emit(avk_outbox_t *outbox, avk_outbox_input_t *input, uint64_t seq,
                    const struct avk_outbox_msg *msg);

/** Where a dead-lettered record came from, and its bytes (NULL: a null key or value). */
struct avk_outbox_source {
        const char *topic;
        int32_t partition;
        int64_t offset;
        const void *key;
        size_t key_len;
        const void *value;
        size_t len;
        const char *const *hdr_names; /**< more headers (NULL: none) */
        const char *const *hdr_values;
        int hdr_cnt;  /**< at most AVK_OUTBOX_MAX_HDRS - 4 */
        uint64_t tag; /**< of the dead letter, as avk_outbox_msg's */
};

/**
 * @brief Copies consumed record m's key and value into new buffers, for a
 * dead letter written later: a null key or value stays NULL.
 * @returns 0, or -1 when out of memory (what was copied is in *key or
 * *value, NULL otherwise, for the caller to free).
 */
int avk_outbox_keep(const rd_kafka_message_t *m, void **key, void **value);

/** @brief The source of a consumed record. */
struct avk_outbox_source avk_outbox_source_of(const rd_kafka_message_t *m);

/**
 * @brief Writes the input record src, bytes and key unchanged (null stays null), to the dead-letter
 * topic as an output of input seq, with headers avk-error (reason, anything
 * quoted in it replaced by "...": a decoder may quote a value of the record,
 * which may be patient data), avk-source-topic, -partition and -offset; and
 * any headers src adds; and logs it. @returns 0, or -1 when out of memory.
 */
int avk_outbox_deadletter(avk_outbox_t *outbox, avk_outbox_input_t *input, uint64_t seq,
                          const char *deadletter_topic, const struct avk_outbox_source *src,
                          const char *reason);

/** @brief Serves delivery reports, due retries, and stores the offsets that advanced. */
void avk_outbox_poll(avk_outbox_t *outbox);

/** @brief As poll until nothing is in flight or timeout_ms passed. */
void avk_outbox_drain(avk_outbox_t *outbox, int timeout_ms);

/**
 * @brief At stop, after the consumer closed: purges what is queued, waits a
 * little, and gives up the rest (their inputs' offsets were never stored).
 */
void avk_outbox_close(avk_outbox_t *outbox);

/** @brief Inputs of the partition begun and not yet finished. */
uint64_t avk_outbox_unfinished(const avk_outbox_input_t *input);

/** @brief Outputs produced and not yet acknowledged or given up. */
uint64_t avk_outbox_in_flight(const avk_outbox_t *outbox);

/** @brief Outputs produced again after a failed delivery, since creation. */
uint64_t avk_outbox_retries(const avk_outbox_t *outbox);

#endif
