/*
 * avk_follow: reads a whole topic from its beginning and keeps following
 * it, for the in-memory views built from a topic (the gateway's view of the
 * lifecycle topics, the dashboard's aggregates from topic.analysis).
 * No consumer group: every partition is assigned, again and again while
 * Kafka is unreachable or the topic missing. Each record is decoded with the
 * topic's schema and handed to a callback; a record that cannot be decoded
 * or used is logged and skipped - the topic's producer owns dead letters. A
 * record whose writer schema the Schema Registry cannot give just now is
 * read again after a wait (up to 5 s), never skipped: a view loaded while
 * the registry is away is late, not short. A final answer - a 404 for the
 * schema id, a schema that does not parse - skips the record like any other
 * that cannot be decoded (docs/operations.md, "While the Schema Registry is
 * down").
 */
#ifndef AVK_FOLLOW_H
#define AVK_FOLLOW_H

#include <stdatomic.h>
#include <stddef.h>

#include <avro.h>
#include <librdkafka/rdkafka.h>

#include "common/contract/avroprog.h"
#include "common/contract/codec.h"
#include "common/contract/schema.h"

struct avk_follow {
        rd_kafka_t *rk;             /**< a consumer (no subscription) */
        avk_codec_t *codec;         /**< decodes the records */
        const avk_schema_t *schema; /**< the topic's schema */
        const char *topic;
        const char *component;      /**< names the log lines, e.g. "index" */
        const atomic_int *stopping; /**< avk_follow_run() returns once set */
        void *opaque;
        /** Uses a record: 0 or more when used, -1 with the reason in errstr (skipped). */
        int (*apply)(void *opaque, avro_value_t *value, char *errstr, size_t errstr_size);
        /** apply() for a view that reads the record's fields from the compiled
         *  codec's slots (avk_codec_decode_slots(), laid out by
         *  avk_codec_program(codec, schema)) instead of an avro-c value (no
         *  value is made), and may need the record itself (its bytes or
         *  headers). When set, it is called instead of apply(). */
        int (*apply_slots)(void *opaque, const rd_kafka_message_t *m,
                           const avk_avroprog_slot_t *slots, char *errstr, size_t errstr_size);
        /** Called for every record skipped (undecodable, or apply() said -1); may be NULL. */
        void (*skipped)(void *opaque);
        /** Called once, when every partition has been read to its end; may be NULL. */
        void (*loaded)(void *opaque);
};

/** @brief Follows f->topic until *f->stopping. Run it on a thread of its own. */
void avk_follow_run(const struct avk_follow *f);

#endif
