/*
 * avk_delivery: the notifier's deliveries (docs/notify.md). A delivery is
 * one record to deliver - of topic.routed, topic.escalated, topic.reminder,
 * topic.feedback or topic.notify.retry - and the small state machine that takes it to its
 * receiver's webhook: its states, the index by seq through which the
 * producer's delivery reports find it, and its webhook attempts on
 * common/http/webhook.h.
 *
 * The concern modules beside it each own a part of a delivery's way:
 * retry.h parks a failed attempt on topic.notify.retry and takes it back,
 * failed.h writes the dead letter and the DeliveryFailed event, inbox.h the
 * inbox copies. The service hooks (notify.c, on the service kernel
 * common/kafka/service.h) own the list of live deliveries and the deviation
 * map; a delivery holds its kernel input unfinished (avk_outbox_hold())
 * until avk_delivery_finished() says so, and its outputs go through the
 * kernel's outbox as outputs of that input, tagged (avk_delivery_tag()).
 *
 * A webhook's part of a delivery moves WAITING (for its deviation) -> DUE
 * (an attempt at next_attempt_at) -> IN_FLIGHT -> DONE when the webhook took
 * it. A failed attempt that may be retried is parked: PARK_DUE -> PARK_SENT
 * -> DONE (retry.h). Past the retry budget, or at once for a permanent
 * failure, DEAD_DUE -> DEAD_SENT -> DONE (failed.h). A receiver without a
 * webhook goes WAITING -> DONE.
 *
 * Everything here runs on the notifier's one thread.
 */
#ifndef AVK_DELIVERY_H
#define AVK_DELIVERY_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <avro.h>
#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "common/contract/codec.h"
#include "common/contract/directory.h"
#include "common/http/webhook.h"
#include "common/kafka/outbox.h"
#include "common/util/hash.h"
#include "common/util/metrics.h"

#define AVK_DELIVERY_LOG         "notify" /* the log component of every notify module */
#define AVK_DELIVERY_ID_SIZE     40       /* a UUID and its NUL, with room */
#define AVK_DELIVERY_PARTY_SIZE  8
#define AVK_DELIVERY_REASON_SIZE 256

/* The webhook's part of a delivery (its parking and dead letter included). */
enum avk_delivery_state {
        AVK_DELIVERY_WAITING,
        AVK_DELIVERY_DUE,
        AVK_DELIVERY_IN_FLIGHT,
        AVK_DELIVERY_PARK_DUE,
        AVK_DELIVERY_PARK_SENT,
        AVK_DELIVERY_DEAD_DUE,
        AVK_DELIVERY_DEAD_SENT,
        AVK_DELIVERY_DONE
};

/* The inbox's part of a routed record's delivery (inbox.h). AVK_INBOX_NONE:
 * nothing to write (no inbox topic, the deviation not known yet, or the
 * record dead-lettered before it was). */
enum avk_inbox_state { AVK_INBOX_NONE, AVK_INBOX_DUE, AVK_INBOX_SENT, AVK_INBOX_DONE };

/* Which output of a delivery an acknowledgement is for: the low
 * AVK_OUTPUT_BITS of its outbox tag, above them the delivery's seq. */
enum avk_output { AVK_OUTPUT_DEAD_LETTER, AVK_OUTPUT_INBOX, AVK_OUTPUT_PARK };
#define AVK_OUTPUT_BITS 2

/* What the notifier delivers, one source topic each. AVK_SRC_CNT also marks
 * a retry record whose kind is not known (it could not be read). */
enum avk_source {
        AVK_SRC_ROUTED,
        AVK_SRC_ESCALATED,
        AVK_SRC_REMINDER,
        AVK_SRC_FEEDBACK, /* to the reporting party (docs/notify.md) */
        AVK_SRC_CNT
};

/* The lists of a partition: one per source topic, then the retry topic's. */
#define AVK_Q_RETRY AVK_SRC_CNT
#define AVK_Q_CNT   (AVK_SRC_CNT + 1)

struct avk_source_def {
        const char *topic_key; /* configuration key of the topic */
        const char *schema;    /* record name: the X-Avvik-Event-Type header */
        const char *label;     /* the "event" label of avk_notify_deliveries_total */
        const char *id_field, *party_field, *unit_field;
};

extern const struct avk_source_def avk_delivery_sources[AVK_SRC_CNT];

struct avk_delivery {
        TAILQ_ENTRY(avk_delivery) link; /* in the notifier's list of live deliveries */
        struct avk_hnode by_seq;        /* in avk_deliveries.by_seq, hashed by seq */
        enum avk_source src;
        int queue; /* its list: src for a record of a source topic, AVK_Q_RETRY */
        enum avk_delivery_state state;
        uint64_t seq;           /* names the delivery in its outputs' tags */
        avk_outbox_input_t *in; /* the kernel input it holds unfinished, as input in_seq */
        uint64_t in_seq;
        int32_t partition;
        int64_t offset;
        /* The original record as read (the dead letter carries it; NULL for a
         * null key or value) and where it was read: for a retry record, as
         * its headers carried them; origin_topic is NULL for the delivery's
         * own topic. */
        void *key, *payload;
        size_t key_len, payload_len;
        char *origin_topic;
        int32_t origin_partition;
        int64_t origin_offset;
        char event_id[AVK_DELIVERY_ID_SIZE], deviation_id[AVK_DELIVERY_ID_SIZE],
            party[AVK_DELIVERY_PARTY_SIZE], unit[AVK_DELIVERY_ID_SIZE];
        int hop;
        json_t *event; /* the record, until the body is built */
        const struct avk_directory_webhook *webhook;
        char *body;
        size_t body_len;
        int identity; /* the body holds the patient's personal_id */
        int attempts;
        int64_t arrived_at, attempt_started_at, next_attempt_at;
        int64_t first_attempt_wall, due_wall; /* wall clock: they travel in retry records */
        uint64_t eof_seq; /* topic.reported ends seen on the partition at arrival */
        char reason[AVK_DELIVERY_REASON_SIZE];
        int failed_event; /* the dead letter comes with a DeliveryFailed event */
        int acks_pending;
        /* The inbox copies: the receiver's topic, the deviation as read from
         * topic.reported (kept: the map may drop it before a retry) and the
         * routed record's avk-cause header as read. */
        const char *inbox;
        enum avk_inbox_state inbox_state;
        void *reported, *cause;
        size_t reported_len, cause_len;
        int has_cause, inbox_pending;
        int64_t inbox_due_at;
        CURL *easy;
        struct curl_slist *headers;
        char curl_error[CURL_ERROR_SIZE];
};

/* The live deliveries, in the order their records arrived. */
TAILQ_HEAD(avk_delivery_list, avk_delivery);

/*
 * What every concern module works with: the kernel's outbox and curl's
 * multi handle (the notifier's), the directory, the codec, the topics, the
 * retry policy, the live deliveries by seq, the counters and metrics. The
 * shell fills it in at start-up and owns it; the modules only read the
 * settings and update the index, counters and metrics.
 */
struct avk_deliveries {
        const avk_directory_t *dir;
        avk_outbox_t *outbox;
        CURLM *multi;
        char fatal[128]; /* set (out of memory): the notifier's loop ends with it */
        avk_codec_t *codec;
        const avk_schema_t *schema[AVK_SRC_CNT], *reported_schema, *failed_schema;
        avro_value_t value[AVK_SRC_CNT], reported_value, failed_value;
        const char *topic[AVK_Q_CNT], *topic_reported, *topic_deadletter, *topic_failed;
        int64_t timeout_ms, connect_timeout_ms, retry_max, max_age_ms, backoff_ms, backoff_max_ms;
        const char *ca_location;
        /* Live deliveries by seq, for the outbox's acknowledgements: one
         * may outlive its delivery (dropped at a rebalance), so its tag
         * carries the seq, not a pointer. */
        avk_htab_t by_seq;
        uint64_t seq, rng;
        size_t retry_attempts; /* attempts of retry records in flight */
        atomic_uint_fast64_t delivered, no_webhook, dead_lettered, inbox, inbox_retries, attempts,
            parked;
        avk_metric_family_t *m_deliveries, *m_attempts, *m_latency, *m_undecodable,
            *m_inbox_retries, *m_parked;
};

/**
 * @brief A new delivery with the next seq, in dl's index; everything else
 * zero. @returns NULL when out of memory. Freed by avk_delivery_free().
 */
struct avk_delivery *avk_delivery_new(struct avk_deliveries *dl);

/** @brief The live delivery of seq, or NULL when it was freed. */
struct avk_delivery *avk_delivery_find(struct avk_deliveries *dl, uint64_t seq);

/**
 * @brief The delivery an output's tag is for, or NULL when it was freed
 * since (abandoned at a rebalance); *out says which output.
 */
struct avk_delivery *avk_delivery_tagged(struct avk_deliveries *dl, uint64_t tag,
                                         enum avk_output *out);

/** @brief The outbox tag of output out of d (never 0). */
uint64_t avk_delivery_tag(const struct avk_delivery *d, enum avk_output out);

/**
 * @brief Frees what d holds beyond its struct (its attempt cancelled): once
 * it is finished nothing reads it again, and a finished delivery behind an
 * unfinished one of its partition costs only the struct until the offset
 * passes it.
 */
void avk_delivery_shed(struct avk_deliveries *dl, struct avk_delivery *d);

/** @brief Takes d out of the index and frees it. */
void avk_delivery_free(struct avk_deliveries *dl, struct avk_delivery *d);

/** @brief Whether d is finished: its offset may be stored once every earlier one's may. */
int avk_delivery_finished(const struct avk_delivery *d);

/** @brief The topic the original record of d was read from. */
const char *avk_delivery_origin_topic(const struct avk_deliveries *dl,
                                      const struct avk_delivery *d);

/** @brief Writes d's reason (cut short if it must be: it goes into a header). */
void avk_delivery_set_reason(struct avk_delivery *d, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/** @brief Counts d in avk_notify_deliveries_total with outcome. */
void avk_delivery_count(struct avk_deliveries *dl, const struct avk_delivery *d,
                        const char *outcome);

/**
 * @brief Produces output out of d to topic through the outbox, as an output
 * of d's input (a copy of key and value, with headers h - NULL: none -
 * which it destroys):
 * the outbox produces it again until Kafka has it, asking
 * avk_notify's still_wanted hook after each failure.
 * @returns 0, or -1 when out of memory (dl->fatal set).
 */
int avk_delivery_produce(struct avk_deliveries *dl, struct avk_delivery *d, enum avk_output out,
                         const char *topic, const void *key, size_t key_len, const void *value,
                         size_t len, rd_kafka_headers_t *h);

/**
 * @brief Who receives for party and unit: the unit's receiver (with what it
 * does not name inherited from its party) when the directory lists the
 * unit under that party, else the party's; NULL for a party not in the
 * directory. A unit the directory does not list leaves its party's
 * coordinator as the receiver, as routing does (docs/routing.md).
 */
const struct avk_directory_receiver *avk_delivery_receiver(const struct avk_deliveries *dl,
                                                           const char *party, const char *unit);

/**
 * @brief Reads d's record (of a source topic, as read into d->payload) and
 * finds where it goes: WAITING for its deviation (a routed record), DUE
 * (its body sealed), DONE (no webhook) or to the dead letter.
 * @returns 0, or AVK_CODEC_UNAVAILABLE with the reason in why when the
 * Schema Registry gave no answer for the writer's schema: d is unchanged,
 * the record is not bad and is to be read again later (docs/notify.md,
 * "Schema Registry outage").
 */
int avk_delivery_accept(struct avk_deliveries *dl, struct avk_delivery *d, int64_t now, char *why,
                        size_t why_size);

/**
 * @brief Builds the webhook body of a WAITING routed record from its
 * deviation (payload, as read from topic.reported) and seals it; DONE when
 * the receiver has no webhook, to the dead letter when the deviation
 * cannot be read.
 * @returns 0, or AVK_CODEC_UNAVAILABLE with the reason in why when the
 * Schema Registry gave no answer for the deviation's writer schema: d stays
 * WAITING, to be composed again later.
 */
int avk_delivery_compose(struct avk_deliveries *dl, struct avk_delivery *d, const void *payload,
                         size_t len, int64_t now, char *why, size_t why_size);

/**
 * @brief Starts a webhook attempt of DUE d on dl's multi handle;
 * IN_FLIGHT until avk_delivery_finish_attempt().
 */
void avk_delivery_start_attempt(struct avk_deliveries *dl, struct avk_delivery *d, int64_t now);

/**
 * @brief Ends d's attempt with curl's result: DONE when the webhook took it,
 * else parked (retry.h) or to the dead letter (failed.h) as the retry
 * budget says.
 */
void avk_delivery_finish_attempt(struct avk_deliveries *dl, struct avk_delivery *d, int curl_code,
                                 int64_t now);

#endif
