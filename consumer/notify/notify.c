/*
 * avk_notify: see notify.h; the format and policy are in docs/notify.md.
 *
 * Three kinds of record are delivered the same way, each from its own topic:
 * DeviationRouted (topic.routed), DeviationEscalated (topic.escalated) and
 * DeadlineReminder (topic.reminder). Only a routed record needs the
 * deviation (its body carries it) and only its failure is escalated with a
 * DeliveryFailed event; the other two are delivered as they are.
 *
 * The router decides, the notifier delivers: a routed record goes to every
 * channel its receiver has, the webhook and the Kafka inbox topic. The
 * inbox gets two records, the DeviationReported and the DeviationRouted,
 * each as read from its topic (docs/notify.md, "Inbox topics"), produced
 * through the same producer as the dead letters. The two channels run side
 * by side on one delivery: the webhook's state (below) and the inbox's
 * (INBOX_DUE -> INBOX_SENT -> INBOX_DONE, or back to INBOX_DUE after a
 * backoff when Kafka refused either record); neither waits for the other's
 * retries, and the delivery is finished when both are. The tracker copies
 * its escalations and reminders to the inbox itself (docs/tracker.md): for
 * those the notifier has the webhook only.
 *
 * One thread runs everything: the Kafka consumer's queue, libcurl's multi
 * handle and the producer's delivery reports (inbox copies, retry records,
 * dead letters, DeliveryFailed events). It sleeps in
 * curl_multi_poll(), woken by curl's sockets, by a pipe that librdkafka
 * writes to when the consumer's or producer's queue gets something
 * (rd_kafka_queue_io_event_enable), by the next retry falling due, or by
 * avk_notify_stop() (curl_multi_wakeup). No delivery ever blocks another:
 * an attempt is a socket in the multi handle, a backoff is a time stamp.
 *
 * Deliveries of a partition sit in a list in offset order. A delivery moves
 * WAITING (for its deviation) -> DUE (an attempt at next_attempt_at) ->
 * IN_FLIGHT -> DONE when the webhook took it. An attempt that failed and
 * may be retried is PARKED: PARK_DUE -> PARK_SENT (a record produced to
 * topic.notify.retry that carries the body and everything the next attempt
 * and the dead letter need, waiting for Kafka's acknowledgement) -> DONE,
 * or back to PARK_DUE after a backoff when Kafka refused it. Past the retry
 * budget, or at once for a permanent failure, it goes DEAD_DUE -> DEAD_SENT
 * (the dead letter and the DeliveryFailed event produced, waiting for
 * Kafka's acknowledgement) -> DONE; a receiver without a webhook goes
 * WAITING -> DONE. Offsets advance over the finished head of each list only
 * (DONE, and the inbox copies acknowledged or none to write), so an offset
 * is stored when its record and every earlier one of the partition are
 * finished.
 *
 * The notifier reads topic.notify.retry too (docs/notify.md, "Retry
 * topic"): each record is a delivery of a list of its own per partition,
 * DUE at the wall-clock time the record names, attempted once by the
 * directory's webhook for its party and unit now, and then DONE, parked
 * again (a new record, attempts counted on) or dead-lettered like the
 * original record. A failing endpoint therefore holds nothing of the fresh
 * topics: its deliveries wait on the retry topic, and only the records due
 * there are in memory. What is held is bounded by what it costs, not by
 * position: notify.max.in.flight counts the fresh deliveries not finished,
 * notify.retry.max.held the retry records not finished, and each pauses its
 * own topics only. A finished delivery behind an unfinished one is shed of
 * everything but its small struct at once.
 *
 * The deviations of topic.reported are read from the beginning of each
 * assigned partition into a bounded map (deviation id -> the record as
 * read, decoded only when a body is built). Since the router produces a
 * routed record only after its deviation is in Kafka, a deviation still
 * missing notify.deviation.wait.ms after the routed record arrived, with
 * topic.reported's partition read to its end since (or still at its end),
 * is not coming - evicted from the map, or never filed - and the routed
 * record is dead-lettered, with nothing written to the inbox. The wait must
 * well exceed fetch.wait.max.ms, so that a deviation produced just before
 * its routed record has been fetched.
 */
#include "consumer/notify/notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/contract/codec.h"
#include "common/util/idcache.h"
#include "common/util/env.h"
#include "common/contract/ident.h"
#include "common/contract/json.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"
#include "common/kafka/copartition.h"
#include "common/kafka/pump.h"
#include "common/http/webhook.h"

#define COMPONENT           "notify"
#define USER_AGENT          "avvik-notify/0.1"
#define BATCH_MAX           500 /* records taken from the consumer per round */
#define WAITING_CHECK_MS    100 /* how often waiting deliveries look at the clock */
#define ID_SIZE             40  /* a UUID and its NUL, with room */
#define PARTY_SIZE          8
#define REASON_SIZE         256
#define METADATA_TIMEOUT_MS 5000 /* learn_topics() waits this long for every topic's metadata */

/* UUID version 5 namespace of DeliveryFailed event ids (name: the routed event id). */
static const char failed_namespace[] = "7a0c4e1f-3b52-4d8e-9c61-2fd4850b36a9";

/* The webhook's part of a delivery (its parking and dead letter included). */
enum state { WAITING, DUE, IN_FLIGHT, PARK_DUE, PARK_SENT, DEAD_DUE, DEAD_SENT, DONE };

/* The inbox's part of a routed record's delivery. INBOX_NONE: nothing to
 * write (no inbox topic, the deviation not known yet, or the record
 * dead-lettered before it was). */
enum inbox_state { INBOX_NONE, INBOX_DUE, INBOX_SENT, INBOX_DONE };

/* Which output of a delivery a producer delivery report is for: the low
 * OUTPUT_BITS of its opaque, above them the delivery's seq. */
enum output { OUT_DEAD_LETTER, OUT_INBOX, OUT_PARK };
#define OUTPUT_BITS 2

/* What the notifier delivers, one source topic each. SRC_CNT also marks a
 * retry record whose kind is not known (it could not be read). */
enum source { SRC_ROUTED, SRC_ESCALATED, SRC_REMINDER, SRC_CNT };

/* The lists of a partition: one per source topic, then the retry topic's. */
#define Q_RETRY SRC_CNT
#define Q_CNT   (SRC_CNT + 1)

struct source_def {
        const char *topic_key; /* configuration key of the topic */
        const char *schema;    /* record name: the X-Avvik-Event-Type header */
        const char *label;     /* the "event" label of avk_notify_deliveries_total */
        const char *id_field, *party_field, *unit_field;
};

static const struct source_def sources[SRC_CNT] = {
    [SRC_ROUTED] = {"topic.routed", "DeviationRouted", "routed", "event_id", "receiver_party",
                    "receiver_unit_hsa_id"},
    [SRC_ESCALATED] = {"topic.escalated", "DeviationEscalated", "escalated", "escalation_id",
                       "party", "unit_hsa_id"},
    [SRC_REMINDER] = {"topic.reminder", "DeadlineReminder", "reminder", "reminder_id",
                      "receiver_party", "receiver_unit_hsa_id"},
};

struct delivery {
        struct delivery *next;   /* the next record of the partition */
        struct delivery *by_seq; /* the next in its bucket of the seq index */
        enum source src;
        int queue; /* its list: src for a record of a source topic, Q_RETRY */
        enum state state;
        uint64_t seq; /* names the delivery in producer delivery reports */
        int32_t partition;
        int64_t offset;
        /* The original record as read (the dead letter carries it) and where
         * it was read: for a retry record, as its headers carried them;
         * origin_topic is NULL for the delivery's own topic. */
        void *key, *payload;
        size_t key_len, payload_len;
        char *origin_topic;
        int32_t origin_partition;
        int64_t origin_offset;
        char event_id[ID_SIZE], deviation_id[ID_SIZE], party[PARTY_SIZE], unit[ID_SIZE];
        int hop;
        json_t *event; /* the record, until the body is built */
        const struct avk_directory_webhook *webhook;
        char *body;
        size_t body_len;
        int identity; /* the body holds the patient's personal_id */
        char signature[AVK_WEBHOOK_SIGNATURE_SIZE];
        int attempts, park_refusals;
        int64_t arrived_at, attempt_started_at, next_attempt_at;
        int64_t first_attempt_wall, due_wall; /* wall clock: they travel in retry records */
        uint64_t eof_seq; /* topic.reported ends seen on the partition at arrival */
        char reason[REASON_SIZE];
        int failed_event; /* the dead letter comes with a DeliveryFailed event */
        int acks_pending, ack_failed;
        /* The inbox copies: the receiver's topic, the deviation as read from
         * topic.reported (kept: the map may drop it before a retry) and the
         * routed record's avk-cause header as read. */
        const char *inbox;
        enum inbox_state inbox_state;
        void *reported, *cause;
        size_t reported_len, cause_len;
        int has_cause, inbox_pending, inbox_failed, inbox_attempts;
        int64_t inbox_due_at;
        CURL *easy;
        struct curl_slist *headers;
        char curl_error[CURL_ERROR_SIZE];
};

/* The records of one topic's partition, in offset order. */
struct queue {
        struct delivery *head, *tail;
        int assigned;
};

struct part {
        struct queue q[Q_CNT];
        uint64_t reported_eof_seq; /* times topic.reported's partition was read to its end */
        int reported_at_end;       /* nothing read from topic.reported since its last end */
};

struct avk_notify {
        const avk_config_t *cfg;
        const avk_directory_t *dir;
        struct avk_env env;
        avk_codec_t *codec;
        const avk_schema_t *schema[SRC_CNT], *reported_schema, *failed_schema;
        avro_value_t value[SRC_CNT], reported_value, failed_value;
        struct avk_pump pump;
        const char *topic[Q_CNT], *topic_reported, *topic_deadletter, *topic_failed;
        int64_t timeout_ms, connect_timeout_ms, retry_max, max_age_ms, backoff_ms, backoff_max_ms,
            wait_ms;
        size_t max_held, retry_max_held;
        const char *ca_location;
        struct part *parts;
        int part_cnt;
        /* Live deliveries by seq, for the producer's delivery reports: a
         * report may outlive its delivery (dropped at a rebalance), so it
         * carries the seq, not a pointer. Chained, grown at load 1. */
        struct delivery **seq_bucket;
        size_t seq_buckets, seq_cnt;
        avk_idcache_t *cache;    /* deviation id -> the DeviationReported as read */
        size_t held, retry_held; /* deliveries not finished: fresh, of the retry topic */
        size_t retry_attempts;   /* attempts of retry records in flight */
        int paused, retry_paused;
        uint64_t seq, rng;
        atomic_int partitions; /* of topic.routed, assigned now */
        atomic_uint_fast64_t delivered, no_webhook, dead_lettered, inbox, inbox_retries, attempts,
            parked, held_now, retry_held_now;
        avk_metric_family_t *m_deliveries, *m_attempts, *m_latency, *m_held, *m_retry_held,
            *m_undecodable, *m_inbox_retries, *m_parked;
};

/* ---- the pure parts ---------------------------------------------------- */

json_t *avk_notify_body(const json_t *routed, const json_t *deviation, int patient_identity)
{
        json_t *body = json_deep_copy(routed);
        json_t *dev = json_deep_copy(deviation);
        if (!body || !dev || json_object_set_new(body, "deviation", dev) != 0) {
                json_decref(body);
                return NULL;
        }
        json_t *patient = json_object_get(dev, "patient");
        if (!patient_identity && json_is_object(patient))
                json_object_del(patient, "personal_id");
        return body;
}

/* ---- metrics and logging ----------------------------------------------- */

/* The "event" label of d: "unknown" for a retry record that could not be read. */
static const char *event_label(const struct delivery *d)
{
        return d->src < SRC_CNT ? sources[d->src].label : "unknown";
}

static void count_delivery(avk_notify_t *n, const struct delivery *d, const char *outcome)
{
        const char *labels[] = {d->party[0] ? d->party : "unknown", outcome, event_label(d)};
        avk_metric_add(avk_metrics_series(n->m_deliveries, labels), 1);
}

/* ---- deliveries -------------------------------------------------------- */

/* Frees what d holds beyond its struct: once it is finished nothing reads
 * it again, and a finished delivery behind an unfinished one of its
 * partition costs only the struct until the offset passes it. */
static void shed(avk_notify_t *n, struct delivery *d)
{
        if (d->easy) {
                curl_multi_remove_handle(n->pump.multi, d->easy);
                curl_easy_cleanup(d->easy);
                d->easy = NULL;
        }
        curl_slist_free_all(d->headers);
        json_decref(d->event);
        free(d->body);
        free(d->key);
        free(d->payload);
        free(d->reported);
        free(d->cause);
        free(d->origin_topic);
        d->headers = NULL;
        d->event = NULL;
        d->body = d->origin_topic = NULL;
        d->key = d->payload = d->reported = d->cause = NULL;
}

static struct delivery **seq_slot(avk_notify_t *n, uint64_t seq)
{
        return &n->seq_bucket[seq & (n->seq_buckets - 1)];
}

/* Makes d (its seq set) findable by find_delivery(). */
static int index_delivery(avk_notify_t *n, struct delivery *d)
{
        if (n->seq_cnt >= n->seq_buckets) {
                size_t size = n->seq_buckets ? n->seq_buckets * 2 : 1024;
                struct delivery **bucket = calloc(size, sizeof(*bucket));
                if (!bucket)
                        return -1;
                for (size_t i = 0; i < n->seq_buckets; i++) {
                        for (struct delivery *e = n->seq_bucket[i], *next; e; e = next) {
                                next = e->by_seq;
                                e->by_seq = bucket[e->seq & (size - 1)];
                                bucket[e->seq & (size - 1)] = e;
                        }
                }
                free(n->seq_bucket);
                n->seq_bucket = bucket;
                n->seq_buckets = size;
        }
        struct delivery **slot = seq_slot(n, d->seq);
        d->by_seq = *slot;
        *slot = d;
        n->seq_cnt++;
        return 0;
}

static void free_delivery(avk_notify_t *n, struct delivery *d)
{
        if (n->seq_buckets) {
                for (struct delivery **e = seq_slot(n, d->seq); *e; e = &(*e)->by_seq) {
                        if (*e == d) {
                                *e = d->by_seq;
                                n->seq_cnt--;
                                break;
                        }
                }
        }
        shed(n, d);
        free(d);
}

/* The topic the original record of d was read from. */
static const char *origin_topic(const avk_notify_t *n, const struct delivery *d)
{
        return d->origin_topic ? d->origin_topic : n->topic[d->queue];
}

/* Whether d is finished: its offset may be stored once every earlier one's may. */
static int finished(const struct delivery *d)
{
        return d->state == DONE && (d->inbox_state == INBOX_NONE || d->inbox_state == INBOX_DONE);
}

static void *opaque_of(const struct delivery *d, enum output out)
{
        return (void *)(uintptr_t)(d->seq << OUTPUT_BITS | (uint64_t)out);
}

static struct delivery *find_delivery(avk_notify_t *n, uint64_t seq)
{
        if (!n->seq_buckets)
                return NULL;
        struct delivery *d = *seq_slot(n, seq);
        while (d && d->seq != seq)
                d = d->by_seq;
        return d;
}

/* Writes d's reason (cut short if it must be: it goes into a header). */
static void set_reason(struct delivery *d, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void set_reason(struct delivery *d, const char *fmt, va_list ap)
{
        vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
}

static void dead_letter(avk_notify_t *n, struct delivery *d, int failed_event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void dead_letter(avk_notify_t *n, struct delivery *d, int failed_event, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        set_reason(d, fmt, ap);
        va_end(ap);
        d->failed_event = failed_event;
        d->state = DEAD_DUE;
        d->next_attempt_at = avk_pump_mono_ms();
        avk_log(AVK_LOG_ERROR, COMPONENT,
                "%s [%d] offset %" PRId64
                ": event %s for party %s goes to the dead-letter topic: %s",
                n->topic[d->queue], (int)d->partition, d->offset,
                d->event_id[0] ? d->event_id : "-", d->party[0] ? d->party : "-", d->reason);
}

/* The DeliveryFailed event id: a name-based UUID (version 5) of the routed event id. */
static void derive_uuid(const char *routed_event_id, char out[ID_SIZE])
{
        avk_ident_uuid5(failed_namespace, routed_event_id, strlen(routed_event_id), out);
}

/* Produces the DeliveryFailed event of d; -1 with the reason in errstr. */
static int produce_failed_event(avk_notify_t *n, struct delivery *d, char *errstr,
                                size_t errstr_size)
{
        char event_id[ID_SIZE], failed_at[32];
        derive_uuid(d->event_id, event_id);
        avk_json_format_time(avk_pump_wall_ms(), failed_at);
        json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s?,s:i,s:s}", "event_id", event_id,
                              "deviation_id", d->deviation_id, "routed_event_id", d->event_id,
                              "hop", d->hop, "failed_at", failed_at, "receiver_party", d->party,
                              "receiver_unit_hsa_id", d->unit[0] ? d->unit : NULL, "attempts",
                              d->attempts, "reason", d->reason);
        struct avk_json_opts opts = {0};
        struct avk_errors errs;
        avk_errors_init(&errs);
        const void *buf;
        size_t len;
        int rc = -1;
        if (!j) {
                snprintf(errstr, errstr_size, "out of memory");
        } else if (avk_json_to_avro(n->failed_schema, j, &n->failed_value, &opts, &errs) != 0) {
                avk_errors_join(&errs, errstr, errstr_size);
        } else if (avk_codec_encode(n->codec, n->topic_failed, n->failed_schema, &n->failed_value,
                                    &buf, &len, errstr, errstr_size) == 0) {
                rd_kafka_resp_err_t e = rd_kafka_producev(
                    n->pump.producer, RD_KAFKA_V_TOPIC(n->topic_failed),
                    RD_KAFKA_V_KEY(d->deviation_id, strlen(d->deviation_id)),
                    RD_KAFKA_V_VALUE((void *)buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_OPAQUE(opaque_of(d, OUT_DEAD_LETTER)), RD_KAFKA_V_END);
                if (e)
                        snprintf(errstr, errstr_size, "%s", rd_kafka_err2str(e));
                rc = e ? -1 : 0;
        }
        json_decref(j);
        return rc;
}

/* Produces one output of d (a copy of key and value, with headers h, which
 * it takes); -1 with the reason in errstr, h destroyed. */
static int produce_output(avk_notify_t *n, struct delivery *d, enum output out, const char *topic,
                          const void *key, size_t key_len, const void *value, size_t len,
                          rd_kafka_headers_t *h, char *errstr, size_t errstr_size)
{
        rd_kafka_resp_err_t e =
            rd_kafka_producev(n->pump.producer, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, len),
                              RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_OPAQUE(opaque_of(d, out)), RD_KAFKA_V_END);
        if (e) {
                rd_kafka_headers_destroy(h);
                snprintf(errstr, errstr_size, "%s", rd_kafka_err2str(e));
                return -1;
        }
        return 0;
}

/* Produces the dead letter of d: the original record as read, the reason in
 * headers with where it was read. */
static int produce_dead_letter(avk_notify_t *n, struct delivery *d, char *errstr,
                               size_t errstr_size)
{
        rd_kafka_headers_t *h = avk_pump_deadletter_headers(d->reason, origin_topic(n, d),
                                                            d->origin_partition, d->origin_offset);
        if (d->event_id[0])
                rd_kafka_header_add(h, AVK_HDR_EVENT_ID, -1, d->event_id, -1);
        return produce_output(n, d, OUT_DEAD_LETTER, n->topic_deadletter, d->key, d->key_len,
                              d->payload, d->payload_len, h, errstr, errstr_size);
}

/* Sends d's dead letter (and event); on failure tries again after a backoff. */
static void send_dead_letter(avk_notify_t *n, struct delivery *d, int64_t now)
{
        char err[512];
        d->ack_failed = 0;
        d->acks_pending = 0;
        if (produce_dead_letter(n, d, err, sizeof(err)) == 0) {
                d->acks_pending++;
                if (!d->failed_event || produce_failed_event(n, d, err, sizeof(err)) == 0) {
                        d->acks_pending += d->failed_event;
                        d->state = DEAD_SENT;
                        return;
                }
                /* The dead letter is on its way; its report finds the delivery
                 * back in DEAD_SENT and sends both again: a duplicate dead
                 * letter is harmless, a lost escalation is not. */
                d->ack_failed = 1;
                d->state = DEAD_SENT;
        }
        avk_log(AVK_LOG_ERROR, COMPONENT, "event %s: dead letter not produced: %s",
                d->event_id[0] ? d->event_id : "-", err);
        if (d->acks_pending == 0) {
                d->state = DEAD_DUE;
                d->next_attempt_at = now + n->backoff_max_ms;
        }
}

/* A delivery report of d's dead letter or DeliveryFailed event. */
static void dead_letter_produced(avk_notify_t *n, struct delivery *d, const rd_kafka_message_t *m)
{
        if (d->state != DEAD_SENT)
                return;
        if (m->err) {
                d->ack_failed = 1;
                avk_log(AVK_LOG_ERROR, COMPONENT, "event %s: %s not acknowledged: %s",
                        d->event_id[0] ? d->event_id : "-", rd_kafka_topic_name(m->rkt),
                        rd_kafka_err2str(m->err));
        }
        if (--d->acks_pending > 0)
                return;
        if (d->ack_failed) {
                d->state = DEAD_DUE;
                d->next_attempt_at = avk_pump_mono_ms() + n->backoff_max_ms;
                return;
        }
        d->state = DONE;
        atomic_fetch_add(&n->dead_lettered, 1);
        count_delivery(n, d, "dead_lettered");
}

/* Produces one inbox copy of d (docs/notify.md, "Inbox topics"): the
 * DeviationReported (routed 0) or the DeviationRouted (routed 1) as read,
 * with the headers the router gave them, keyed by the deviation id in the
 * partition the partitioner picks. -1 with the reason in errstr. */
static int produce_inbox_copy(avk_notify_t *n, struct delivery *d, int routed, char *errstr,
                              size_t errstr_size)
{
        char hop_text[16];
        snprintf(hop_text, sizeof(hop_text), "%d", d->hop);
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        rd_kafka_header_add(h, AVK_HDR_ID, -1, routed ? d->event_id : d->deviation_id, -1);
        rd_kafka_header_add(h, AVK_HDR_TYPE, -1, routed ? "DeviationRouted" : "DeviationReported",
                            -1);
        rd_kafka_header_add(h, AVK_HDR_HOP, -1, hop_text, -1);
        if (!routed)
                rd_kafka_header_add(h, AVK_HDR_ROUTED_EVENT, -1, d->event_id, -1);
        else if (d->has_cause)
                rd_kafka_header_add(h, AVK_HDR_CAUSE, -1, d->cause, (ssize_t)d->cause_len);
        return produce_output(n, d, OUT_INBOX, d->inbox, d->deviation_id, strlen(d->deviation_id),
                              routed ? d->payload : d->reported,
                              routed ? d->payload_len : d->reported_len, h, errstr, errstr_size);
}

/* Makes both inbox copies of d due again after a backoff. */
static void inbox_again(avk_notify_t *n, struct delivery *d, int64_t now)
{
        d->inbox_state = INBOX_DUE;
        d->inbox_due_at =
            now + avk_webhook_backoff_ms(d->inbox_attempts, n->backoff_ms, n->backoff_max_ms,
                                         avk_webhook_random(&n->rng));
        atomic_fetch_add(&n->inbox_retries, 1);
        avk_metric_add(avk_metrics_series(n->m_inbox_retries, (const char *[]){d->party}), 1);
}

/* Produces d's two inbox copies. Both are produced again when Kafka refuses
 * or fails either: a duplicate in the inbox carries the same bytes and
 * headers, and its reader knows it by avk-id. */
static void send_inbox(avk_notify_t *n, struct delivery *d, int64_t now)
{
        char err[256];
        d->inbox_attempts++;
        d->inbox_pending = 0;
        d->inbox_failed = 0;
        for (int routed = 0; routed < 2; routed++) {
                if (produce_inbox_copy(n, d, routed, err, sizeof(err)) != 0) {
                        avk_log(AVK_LOG_ERROR, COMPONENT,
                                "event %s: copy to inbox %s not produced: %s", d->event_id,
                                d->inbox, err);
                        d->inbox_failed = 1;
                        break;
                }
                d->inbox_pending++;
        }
        if (d->inbox_pending > 0) {
                /* Even with the second refused: the first one's report
                 * makes both due again, so no report of this round can
                 * arrive after the next has begun. */
                d->inbox_state = INBOX_SENT;
                return;
        }
        inbox_again(n, d, now);
}

/* A delivery report of one of d's inbox copies. */
static void inbox_produced(avk_notify_t *n, struct delivery *d, const rd_kafka_message_t *m)
{
        if (d->inbox_state != INBOX_SENT)
                return;
        if (m->err) {
                d->inbox_failed = 1;
                avk_log(AVK_LOG_ERROR, COMPONENT, "event %s: copy to inbox %s not acknowledged: %s",
                        d->event_id, d->inbox, rd_kafka_err2str(m->err));
        }
        if (--d->inbox_pending > 0)
                return;
        if (d->inbox_failed) {
                inbox_again(n, d, avk_pump_mono_ms());
                return;
        }
        d->inbox_state = INBOX_DONE;
        atomic_fetch_add(&n->inbox, 1);
        count_delivery(n, d, "inbox");
        avk_log(AVK_LOG_INFO, COMPONENT, "event %s in inbox %s of party %s (attempt %d)",
                d->event_id, d->inbox, d->party, d->inbox_attempts);
}

/* Produces d's retry record (docs/notify.md, "Retry topic"): keyed by the
 * original record's key, the body as sent as its value, and in headers what
 * the next attempt and the dead letter need. -1 with the reason in errstr. */
static int produce_retry_record(avk_notify_t *n, struct delivery *d, char *errstr,
                                size_t errstr_size)
{
        char hop_text[16], attempts_text[16], first_text[32], due_text[32];
        snprintf(hop_text, sizeof(hop_text), "%d", d->hop);
        snprintf(attempts_text, sizeof(attempts_text), "%d", d->attempts);
        snprintf(first_text, sizeof(first_text), "%" PRId64, d->first_attempt_wall);
        snprintf(due_text, sizeof(due_text), "%" PRId64, d->due_wall);
        /* avk-error and where the original was read, as a dead letter has them. */
        rd_kafka_headers_t *h = avk_pump_deadletter_headers(d->reason, origin_topic(n, d),
                                                            d->origin_partition, d->origin_offset);
        rd_kafka_header_add(h, AVK_HDR_EVENT_ID, -1, d->event_id, -1);
        rd_kafka_header_add(h, AVK_HDR_NOTIFY_EVENT, -1, sources[d->src].label, -1);
        rd_kafka_header_add(h, AVK_HDR_DEVIATION_ID, -1, d->deviation_id, -1);
        rd_kafka_header_add(h, AVK_HDR_HOP, -1, hop_text, -1);
        rd_kafka_header_add(h, AVK_HDR_PARTY, -1, d->party, -1);
        if (d->unit[0])
                rd_kafka_header_add(h, AVK_HDR_UNIT, -1, d->unit, -1);
        rd_kafka_header_add(h, AVK_HDR_ATTEMPTS, -1, attempts_text, -1);
        rd_kafka_header_add(h, AVK_HDR_FIRST_ATTEMPT_AT, -1, first_text, -1);
        rd_kafka_header_add(h, AVK_HDR_DUE_AT, -1, due_text, -1);
        if (d->identity)
                rd_kafka_header_add(h, AVK_HDR_IDENTITY, -1, "1", -1);
        rd_kafka_header_add(h, AVK_HDR_ORIGINAL, -1, d->payload, (ssize_t)d->payload_len);
        return produce_output(n, d, OUT_PARK, n->topic[Q_RETRY], d->key, d->key_len, d->body,
                              d->body_len, h, errstr, errstr_size);
}

/* Parks d: its retry record due now, the next attempt due at wait ms from
 * now (wall clock), the reason the last attempt failed. */
static void park(avk_notify_t *n, struct delivery *d, int64_t now, int64_t wall, int64_t wait,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void park(avk_notify_t *n, struct delivery *d, int64_t now, int64_t wall, int64_t wait,
                 const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        set_reason(d, fmt, ap);
        va_end(ap);
        d->due_wall = wall + wait;
        d->park_refusals = 0;
        d->state = PARK_DUE;
        d->next_attempt_at = now;
        avk_log(AVK_LOG_WARN, COMPONENT,
                "event %s to party %s: %s; next in %" PRId64 " ms, parked on %s", d->event_id,
                d->party, d->reason, wait, n->topic[Q_RETRY]);
}

/* Makes d's retry record due again after a backoff: Kafka refused it or
 * failed it, and the attempt it stands for must not be lost. */
static void park_again(avk_notify_t *n, struct delivery *d, int64_t now)
{
        d->state = PARK_DUE;
        d->next_attempt_at =
            now + avk_webhook_backoff_ms(++d->park_refusals, n->backoff_ms, n->backoff_max_ms,
                                         avk_webhook_random(&n->rng));
}

static void send_park(avk_notify_t *n, struct delivery *d, int64_t now)
{
        char err[256];
        if (produce_retry_record(n, d, err, sizeof(err)) == 0) {
                d->state = PARK_SENT;
                return;
        }
        avk_log(AVK_LOG_ERROR, COMPONENT, "event %s: record to %s not produced: %s", d->event_id,
                n->topic[Q_RETRY], err);
        park_again(n, d, now);
}

/* A delivery report of d's retry record: once Kafka has it, the next
 * attempt is the retry topic's and this delivery is finished. */
static void park_produced(avk_notify_t *n, struct delivery *d, const rd_kafka_message_t *m)
{
        if (d->state != PARK_SENT)
                return;
        if (m->err) {
                avk_log(AVK_LOG_ERROR, COMPONENT, "event %s: record to %s not acknowledged: %s",
                        d->event_id, n->topic[Q_RETRY], rd_kafka_err2str(m->err));
                park_again(n, d, avk_pump_mono_ms());
                return;
        }
        d->state = DONE;
        atomic_fetch_add(&n->parked, 1);
        avk_metric_add(
            avk_metrics_series(n->m_parked, (const char *[]){d->party, sources[d->src].label}), 1);
}

static void on_produced(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        avk_notify_t *n = opaque;
        uint64_t tag = (uint64_t)(uintptr_t)m->_private;
        struct delivery *d = find_delivery(n, tag >> OUTPUT_BITS);
        if (!d)
                return; /* abandoned at a rebalance: the next owner starts again */
        switch ((enum output)(tag & ((1u << OUTPUT_BITS) - 1))) {
        case OUT_INBOX:
                inbox_produced(n, d, m);
                break;
        case OUT_PARK:
                park_produced(n, d, m);
                break;
        case OUT_DEAD_LETTER:
                dead_letter_produced(n, d, m);
                break;
        }
}

/* Takes body as d's body (it is the same on every attempt), signs it and
 * makes the first attempt due. */
static void seal(avk_notify_t *n, struct delivery *d, json_t *body, int64_t now)
{
        d->body = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(body);
        if (!d->body) {
                dead_letter(n, d, d->src == SRC_ROUTED, "out of memory building the body");
                return;
        }
        d->body_len = strlen(d->body);
        d->identity = d->src == SRC_ROUTED && d->webhook->patient_identity;
        if (avk_webhook_sign(d->webhook->secret, d->webhook->secret_len, d->body, d->body_len,
                             d->signature) != 0) {
                dead_letter(n, d, d->src == SRC_ROUTED, "HMAC-SHA256 failed");
                return;
        }
        json_decref(d->event);
        d->event = NULL;
        d->state = DUE;
        d->next_attempt_at = now;
}

/* Starts a routed record's channels once its deviation is known: the
 * inbox copies, and the webhook's body. */
static void resolve(avk_notify_t *n, struct delivery *d, int64_t now)
{
        size_t len;
        const void *payload = avk_idcache_get(n->cache, d->deviation_id, &len);
        if (!payload) {
                const struct part *part = &n->parts[d->partition];
                if ((part->reported_eof_seq > d->eof_seq || part->reported_at_end) &&
                    now - d->arrived_at >= n->wait_ms)
                        dead_letter(n, d, 1, "deviation not found in %s", n->topic_reported);
                return;
        }
        if (d->inbox) {
                if (!(d->reported = malloc(len ? len : 1))) {
                        snprintf(n->pump.fatal, sizeof(n->pump.fatal), "out of memory");
                        return;
                }
                memcpy(d->reported, payload, len);
                d->reported_len = len;
                d->inbox_state = INBOX_DUE;
                d->inbox_due_at = now;
        }
        if (!d->webhook) {
                d->state = DONE;
                return;
        }
        char err[512];
        json_t *deviation = NULL, *body = NULL;
        if (avk_codec_decode(n->codec, payload, len, n->reported_schema, &n->reported_value, err,
                             sizeof(err)) != 0 ||
            !(deviation =
                  avk_json_from_avro(n->reported_schema, &n->reported_value, err, sizeof(err)))) {
                dead_letter(n, d, 1, "deviation undecodable: %s", err);
                return;
        }
        body = avk_notify_body(d->event, deviation, d->webhook->patient_identity);
        json_decref(deviation);
        seal(n, d, body, now);
}

static void finish_attempt(avk_notify_t *n, struct delivery *d, int curl_code, int64_t now);

static void start_attempt(avk_notify_t *n, struct delivery *d, int64_t now)
{
        char timestamp[32];
        avk_json_format_time(avk_pump_wall_ms(), timestamp);
        d->attempts++;
        d->attempt_started_at = now;
        if (d->attempts == 1)
                d->first_attempt_wall = avk_pump_wall_ms();
        d->curl_error[0] = '\0';
        d->state = IN_FLIGHT;
        if (d->queue == Q_RETRY)
                n->retry_attempts++;
        /* An empty Expect: keeps curl from waiting for "100 Continue". */
        int ok = avk_webhook_add_header(&d->headers, "Content-Type", "application/json") == 0 &&
                 avk_webhook_add_header(&d->headers, "X-Avvik-Event-Id", d->event_id) == 0 &&
                 avk_webhook_add_header(&d->headers, "X-Avvik-Event-Type",
                                        sources[d->src].schema) == 0 &&
                 avk_webhook_add_header(&d->headers, "X-Avvik-Signature", d->signature) == 0 &&
                 avk_webhook_add_header(&d->headers, "X-Avvik-Timestamp", timestamp) == 0 &&
                 (d->headers = curl_slist_append(d->headers, "Expect:")) != NULL;
        struct avk_webhook_post post = {
            .url = d->webhook->url,
            .headers = d->headers,
            .body = d->body,
            .body_len = d->body_len,
            .timeout_ms = n->timeout_ms,
            .connect_timeout_ms = n->connect_timeout_ms,
            .ca_location = n->ca_location,
            .user_agent = USER_AGENT,
            .private_ptr = d,
            .error_buffer = d->curl_error,
        };
        if (!ok || !(d->easy = avk_webhook_post_start(n->pump.multi, &post)))
                finish_attempt(n, d, CURLE_OUT_OF_MEMORY, now);
}

static void finish_attempt(avk_notify_t *n, struct delivery *d, int curl_code, int64_t now)
{
        char reason[REASON_SIZE];
        long status =
            avk_webhook_finish(n->pump.multi, &d->easy, curl_code, reason, sizeof(reason));
        curl_slist_free_all(d->headers);
        d->headers = NULL;
        if (d->queue == Q_RETRY)
                n->retry_attempts--;
        atomic_fetch_add(&n->attempts, 1);
        avk_metric_add(
            avk_metrics_series(n->m_attempts,
                               (const char *[]){d->party, avk_webhook_result(curl_code, status)}),
            1);
        avk_metric_observe(avk_metrics_series(n->m_latency, (const char *[]){d->party}),
                           (double)(now - d->attempt_started_at) / 1000.0);

        enum avk_webhook_verdict verdict = avk_webhook_classify(curl_code, status);
        if (verdict == AVK_WEBHOOK_DELIVERED) {
                d->state = DONE;
                atomic_fetch_add(&n->delivered, 1);
                count_delivery(n, d, "delivered");
                avk_log(AVK_LOG_INFO, COMPONENT, "event %s delivered to party %s (attempt %d)",
                        d->event_id, d->party, d->attempts);
                return;
        }
        int64_t wait = avk_webhook_backoff_ms(d->attempts, n->backoff_ms, n->backoff_max_ms,
                                              avk_webhook_random(&n->rng));
        int64_t wall = avk_pump_wall_ms();
        int escalate = d->src == SRC_ROUTED;
        if (verdict == AVK_WEBHOOK_PERMANENT) {
                dead_letter(n, d, escalate, "%s (attempt %d; not retried)", reason, d->attempts);
        } else if (d->attempts >= n->retry_max) {
                dead_letter(n, d, escalate, "%s (attempt %d of %d)", reason, d->attempts,
                            (int)n->retry_max);
        } else if (wall + wait - d->first_attempt_wall > n->max_age_ms) {
                dead_letter(n, d, escalate, "%s (attempt %d; notify.retry.max.age.ms passed)",
                            reason, d->attempts);
        } else {
                /* Parked on the retry topic: the wait holds up nothing
                 * here, not even this record's offset. */
                park(n, d, now, wall, wait, "%s (attempt %d)", reason, d->attempts);
        }
}

/* Who receives for party and unit: the unit's receiver (with what it does
 * not name inherited from its party) when the directory lists the unit
 * under that party, else the party's; NULL for a party not in the
 * directory. A unit the directory does not list leaves its party's
 * coordinator as the receiver, as routing does (docs/routing.md). */
static const struct avk_directory_receiver *receiver_of(const avk_notify_t *n, const char *party,
                                                        const char *unit)
{
        const struct avk_directory_unit *u = unit ? avk_directory_unit(n->dir, unit) : NULL;
        const struct avk_directory_party *p = avk_directory_party(n->dir, party);
        return u && p && u->party == p ? &u->receiver : p ? &p->receiver : NULL;
}

/* An escalation's body names who holds the step: the tracker's holder, or
 * when it gave none, the directory's holder of that step for the receiver. */
static void name_holder(json_t *escalation, const struct avk_directory_receiver *rc)
{
        static const char *const steps[AVK_DIRECTORY_LADDER_STEPS] = {
            [AVK_DIRECTORY_MANAGER] = "MANAGER",
            [AVK_DIRECTORY_SENIOR_MANAGER] = "MANAGERS_MANAGER",
            [AVK_DIRECTORY_LOCAL_FORUM] = "LOCAL_FORUM",
            [AVK_DIRECTORY_COUNTY_FORUM] = "COUNTY_FORUM",
        };
        const char *step = json_string_value(json_object_get(escalation, "step"));
        if (json_string_value(json_object_get(escalation, "holder")) || !step)
                return;
        for (int i = 0; i < AVK_DIRECTORY_LADDER_STEPS; i++) {
                if (strcmp(step, steps[i]) == 0) {
                        json_object_set_new(escalation, "holder", json_string(rc->ladder[i]->name));
                        return;
                }
        }
}

/* Reads a record and finds where it goes. */
static void accept_record(avk_notify_t *n, struct delivery *d, int64_t now)
{
        const struct source_def *src = &sources[d->src];
        char err[512];
        if (avk_codec_decode(n->codec, d->payload, d->payload_len, n->schema[d->src],
                             &n->value[d->src], err, sizeof(err)) != 0 ||
            !(d->event =
                  avk_json_from_avro(n->schema[d->src], &n->value[d->src], err, sizeof(err)))) {
                avk_metric_add(
                    avk_metrics_series(n->m_undecodable, (const char *[]){n->topic[d->src]}), 1);
                dead_letter(n, d, 0, "undecodable: %s", err);
                return;
        }
        /* The decoder checked the schema: these fields are there. */
        const char *unit = json_string_value(json_object_get(d->event, src->unit_field));
        snprintf(d->event_id, sizeof(d->event_id), "%s",
                 json_string_value(json_object_get(d->event, src->id_field)));
        snprintf(d->deviation_id, sizeof(d->deviation_id), "%s",
                 json_string_value(json_object_get(d->event, "deviation_id")));
        snprintf(d->party, sizeof(d->party), "%s",
                 json_string_value(json_object_get(d->event, src->party_field)));
        snprintf(d->unit, sizeof(d->unit), "%s", unit ? unit : "");
        d->hop = (int)json_integer_value(json_object_get(d->event, "hop"));

        const struct avk_directory_receiver *rc = receiver_of(n, d->party, unit);
        if (!rc) {
                dead_letter(n, d, d->src == SRC_ROUTED, "receiver party %s is not in the directory",
                            d->party);
        } else if (d->src == SRC_ROUTED) {
                /* Each channel the receiver has (the directory requires one)
                 * waits for the deviation: the body carries it, the inbox
                 * gets it as read. */
                d->webhook = rc->delivery->webhook;
                d->inbox = rc->delivery->inbox_topic;
                d->state = WAITING;
        } else if (!rc->delivery->webhook) {
                /* An escalation or reminder for a receiver with an inbox
                 * only: the tracker has copied it there itself
                 * (docs/tracker.md), the notifier has no webhook to use. */
                d->state = DONE;
                atomic_fetch_add(&n->no_webhook, 1);
                count_delivery(n, d, "no_webhook");
        } else {
                d->webhook = rc->delivery->webhook;
                if (d->src == SRC_ESCALATED)
                        name_holder(d->event, rc);
                seal(n, d, json_incref(d->event), now);
        }
}

static int ensure_part(avk_notify_t *n, int32_t partition)
{
        struct part *parts = avk_pump_grow(n->parts, &n->part_cnt, sizeof(*parts), partition);
        if (!parts)
                return -1;
        n->parts = parts;
        return 0;
}

/* Keeps the avk-cause header of a routed record as read, for its inbox copy;
 * a record without one (not written by the router) gives a copy without. */
static int copy_cause(struct delivery *d, const rd_kafka_message_t *m)
{
        rd_kafka_headers_t *h;
        const void *value;
        size_t len;
        if (rd_kafka_message_headers(m, &h) != 0 ||
            rd_kafka_header_get_last(h, AVK_HDR_CAUSE, &value, &len) != 0)
                return 0;
        d->has_cause = 1;
        d->cause_len = len;
        if (!value)
                return 0; /* a null value, copied as null */
        if (!(d->cause = malloc(len ? len : 1)))
                return -1;
        memcpy(d->cause, value, len);
        return 0;
}

/* Reads header name of a retry record as text into buf. -1 with the reason
 * in errstr when it is missing or empty, too long or not text. */
static int retry_header(rd_kafka_headers_t *h, const char *name, char *buf, size_t size,
                        char *errstr, size_t errstr_size)
{
        const void *value = NULL;
        size_t len = 0;
        if (!h || rd_kafka_header_get_last(h, name, &value, &len) != 0 || !value || len == 0) {
                snprintf(errstr, errstr_size, "retry record: header %s missing", name);
                return -1;
        }
        if (len >= size || memchr(value, '\0', len)) {
                snprintf(errstr, errstr_size,
                         "retry record: header %s is not text of at most %zu bytes", name,
                         size - 1);
                return -1;
        }
        memcpy(buf, value, len);
        buf[len] = '\0';
        return 0;
}

/* Reads header name of a retry record as a decimal number from min to max. */
static int retry_number(rd_kafka_headers_t *h, const char *name, int64_t min, int64_t max,
                        int64_t *out, char *errstr, size_t errstr_size)
{
        char text[32], *end;
        if (retry_header(h, name, text, sizeof(text), errstr, errstr_size) != 0)
                return -1;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (errno || *end || v < min || v > max) {
                snprintf(errstr, errstr_size,
                         "retry record: header %s is not a decimal number from %" PRId64
                         " to %" PRId64,
                         name, min, max);
                return -1;
        }
        *out = v;
        return 0;
}

/* Takes what a retry record carries into d (docs/notify.md, "Retry topic"),
 * whose key and payload hold the record as read: on success the payload
 * becomes the body and the original record's value the payload. -1 with the
 * reason in errstr (naming the header) when the record is incomplete, d's
 * record as read left for the dead letter; -2 when out of memory. */
static int read_retry_record(struct delivery *d, const rd_kafka_message_t *m, char *errstr,
                             size_t errstr_size)
{
        rd_kafka_headers_t *h = NULL;
        if (rd_kafka_message_headers(m, &h) != 0)
                h = NULL;
        char label[16], topic[256];
        int64_t hop, attempts, first, due, partition, offset;
        const void *original = NULL;
        size_t original_len = 0;
        if (retry_header(h, AVK_HDR_NOTIFY_EVENT, label, sizeof(label), errstr, errstr_size) != 0)
                return -1;
        enum source src = SRC_CNT;
        for (int s = 0; s < SRC_CNT; s++)
                if (strcmp(label, sources[s].label) == 0)
                        src = (enum source)s;
        if (src == SRC_CNT) {
                snprintf(errstr, errstr_size,
                         "retry record: header %s is not routed, escalated or reminder",
                         AVK_HDR_NOTIFY_EVENT);
                return -1;
        }
        const void *unit = NULL;
        size_t unit_len = 0;
        if (h && rd_kafka_header_get_last(h, AVK_HDR_UNIT, &unit, &unit_len) == 0 &&
            retry_header(h, AVK_HDR_UNIT, d->unit, sizeof(d->unit), errstr, errstr_size) != 0)
                return -1;
        if (retry_header(h, AVK_HDR_EVENT_ID, d->event_id, sizeof(d->event_id), errstr,
                         errstr_size) != 0 ||
            retry_header(h, AVK_HDR_DEVIATION_ID, d->deviation_id, sizeof(d->deviation_id), errstr,
                         errstr_size) != 0 ||
            retry_header(h, AVK_HDR_PARTY, d->party, sizeof(d->party), errstr, errstr_size) != 0 ||
            retry_number(h, AVK_HDR_HOP, 0, INT32_MAX, &hop, errstr, errstr_size) != 0 ||
            retry_number(h, AVK_HDR_ATTEMPTS, 1, INT32_MAX, &attempts, errstr, errstr_size) != 0 ||
            retry_number(h, AVK_HDR_FIRST_ATTEMPT_AT, 0, INT64_MAX, &first, errstr, errstr_size) !=
                0 ||
            retry_number(h, AVK_HDR_DUE_AT, 0, INT64_MAX, &due, errstr, errstr_size) != 0 ||
            retry_header(h, AVK_HDR_SOURCE_TOPIC, topic, sizeof(topic), errstr, errstr_size) != 0 ||
            retry_number(h, AVK_HDR_SOURCE_PARTITION, 0, INT32_MAX, &partition, errstr,
                         errstr_size) != 0 ||
            retry_number(h, AVK_HDR_SOURCE_OFFSET, 0, INT64_MAX, &offset, errstr, errstr_size) != 0)
                return -1;
        if (!h || rd_kafka_header_get_last(h, AVK_HDR_ORIGINAL, &original, &original_len) != 0 ||
            !original || original_len == 0) {
                snprintf(errstr, errstr_size, "retry record: header %s missing", AVK_HDR_ORIGINAL);
                return -1;
        }
        if (d->payload_len == 0) {
                snprintf(errstr, errstr_size,
                         "retry record: no body (the record's value is empty)");
                return -1;
        }
        void *original_copy = malloc(original_len);
        char *topic_copy = strdup(topic);
        if (!original_copy || !topic_copy) {
                free(original_copy);
                free(topic_copy);
                return -2;
        }
        memcpy(original_copy, original, original_len);
        d->src = src;
        d->hop = (int)hop;
        d->attempts = (int)attempts;
        d->first_attempt_wall = first;
        d->due_wall = due;
        const void *flag;
        size_t flag_len;
        d->identity = h && rd_kafka_header_get_last(h, AVK_HDR_IDENTITY, &flag, &flag_len) == 0;
        d->body = d->payload;
        d->body_len = d->payload_len;
        d->payload = original_copy;
        d->payload_len = original_len;
        d->origin_topic = topic_copy;
        d->origin_partition = (int32_t)partition;
        d->origin_offset = offset;
        return 0;
}

/* A retry record: its attempt falls due when the record says. */
static void accept_retry(avk_notify_t *n, struct delivery *d, const rd_kafka_message_t *m,
                         int64_t now)
{
        char err[REASON_SIZE];
        int rc = read_retry_record(d, m, err, sizeof(err));
        if (rc == -2) {
                /* Never attempted here: the loop ends on the error, and the
                 * record is left to the partition's next owner. */
                snprintf(n->pump.fatal, sizeof(n->pump.fatal), "out of memory");
                d->state = DUE;
                d->next_attempt_at = INT64_MAX;
                return;
        }
        if (rc != 0) {
                /* Nothing of a record that cannot be trusted goes into a
                 * log line or a header: the reason names the header only. */
                d->event_id[0] = d->deviation_id[0] = d->party[0] = d->unit[0] = '\0';
                avk_metric_add(
                    avk_metrics_series(n->m_undecodable, (const char *[]){n->topic[Q_RETRY]}), 1);
                dead_letter(n, d, 0, "%s", err);
                return;
        }
        /* A due time past the age budget was not written by a notifier:
         * the attempt comes by then at the latest. */
        int64_t wait = d->due_wall - avk_pump_wall_ms();
        d->state = DUE;
        d->next_attempt_at = now + (wait < 0 ? 0 : wait > n->max_age_ms ? n->max_age_ms : wait);
}

/*
 * Finds where a retry record's attempt goes, when it falls due: the
 * directory's webhook for its party and unit now, so that a corrected
 * directory takes effect, the carried body signed with that webhook's
 * secret. -1 when the delivery went to the dead letter instead.
 */
static int address_retry(avk_notify_t *n, struct delivery *d)
{
        const struct avk_directory_receiver *rc =
            receiver_of(n, d->party, d->unit[0] ? d->unit : NULL);
        int escalate = d->src == SRC_ROUTED;
        if (!rc) {
                dead_letter(n, d, escalate, "receiver party %s is not in the directory", d->party);
                return -1;
        }
        if (!rc->delivery->webhook) {
                dead_letter(n, d, escalate, "receiver party %s has no webhook in the directory",
                            d->party);
                return -1;
        }
        /* The body is the one signed before, byte for byte: one that holds
         * the patient's identity goes only to an endpoint still cleared. */
        if (d->identity && !rc->delivery->webhook->patient_identity) {
                dead_letter(n, d, escalate,
                            "the body holds patient identity and the webhook of party %s is no "
                            "longer cleared for it",
                            d->party);
                return -1;
        }
        d->webhook = rc->delivery->webhook;
        if (avk_webhook_sign(d->webhook->secret, d->webhook->secret_len, d->body, d->body_len,
                             d->signature) != 0) {
                dead_letter(n, d, escalate, "HMAC-SHA256 failed");
                return -1;
        }
        return 0;
}

/* A record of a source topic (queue < Q_RETRY) or of the retry topic. */
static void on_record(avk_notify_t *n, const rd_kafka_message_t *m, int queue)
{
        struct delivery *d = calloc(1, sizeof(*d));
        if (!d || ensure_part(n, m->partition) != 0 ||
            avk_pump_copy(m, &d->key, &d->key_len, &d->payload, &d->payload_len) != 0 ||
            (queue == SRC_ROUTED && copy_cause(d, m) != 0)) {
                if (d)
                        free_delivery(n, d);
                snprintf(n->pump.fatal, sizeof(n->pump.fatal), "out of memory");
                return;
        }
        d->queue = queue;
        d->src = queue < Q_RETRY ? (enum source)queue : SRC_CNT;
        d->seq = ++n->seq;
        if (index_delivery(n, d) != 0) {
                free_delivery(n, d);
                snprintf(n->pump.fatal, sizeof(n->pump.fatal), "out of memory");
                return;
        }
        d->partition = d->origin_partition = m->partition;
        d->offset = d->origin_offset = m->offset;
        d->arrived_at = avk_pump_mono_ms();
        struct part *part = &n->parts[m->partition];
        struct queue *q = &part->q[queue];
        d->eof_seq = part->reported_eof_seq;
        if (q->tail)
                q->tail->next = d;
        else
                q->head = d;
        q->tail = d;
        if (queue == Q_RETRY)
                accept_retry(n, d, m, d->arrived_at);
        else
                accept_record(n, d, d->arrived_at);
}

static void on_reported(avk_notify_t *n, const rd_kafka_message_t *m)
{
        char id[ID_SIZE];
        if (!m->key || m->key_len == 0 || m->key_len >= sizeof(id)) {
                /* The router dead-letters what it cannot read; here it is only counted. */
                avk_metric_add(
                    avk_metrics_series(n->m_undecodable, (const char *[]){n->topic_reported}), 1);
                return;
        }
        if (ensure_part(n, m->partition) == 0)
                n->parts[m->partition].reported_at_end = 0;
        memcpy(id, m->key, m->key_len);
        id[m->key_len] = '\0';
        if (avk_idcache_put(n->cache, id, m->payload, m->len) != 0)
                snprintf(n->pump.fatal, sizeof(n->pump.fatal), "out of memory");
}

/* A record or a partition's end, from avk_pump_take(). */
static void on_message(void *opaque, const rd_kafka_message_t *m)
{
        avk_notify_t *n = opaque;
        const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
        int reported = strcmp(topic, n->topic_reported) == 0;
        if (m->err) {
                if (reported && ensure_part(n, m->partition) == 0) {
                        n->parts[m->partition].reported_eof_seq++;
                        n->parts[m->partition].reported_at_end = 1;
                }
        } else if (reported) {
                on_reported(n, m);
        } else {
                for (int q = 0; q < Q_CNT; q++) {
                        if (strcmp(topic, n->topic[q]) == 0) {
                                on_record(n, m, q);
                                break;
                        }
                }
        }
}

/* Moves every delivery that can move; returns when the next one falls due. */
static int64_t step(avk_notify_t *n, int64_t now)
{
        int64_t next = now + AVK_PUMP_POLL_MAX_MS;
        for (int p = 0; p < n->part_cnt; p++) {
                for (int q = 0; q < Q_CNT; q++) {
                        for (struct delivery *d = n->parts[p].q[q].head; d; d = d->next) {
                                /* Retry attempts at once are bounded like
                                 * fresh ones: a due retry without a slot
                                 * waits for an attempt to finish. */
                                int no_slot = q == Q_RETRY && n->retry_attempts >= n->max_held;
                                if (d->state == WAITING)
                                        resolve(n, d, now);
                                if (d->state == DUE && d->next_attempt_at <= now && !no_slot &&
                                    (q != Q_RETRY || address_retry(n, d) == 0))
                                        start_attempt(n, d, now);
                                else if (d->state == PARK_DUE && d->next_attempt_at <= now)
                                        send_park(n, d, now);
                                else if (d->state == DEAD_DUE && d->next_attempt_at <= now)
                                        send_dead_letter(n, d, now);
                                if (d->inbox_state == INBOX_DUE && d->inbox_due_at <= now)
                                        send_inbox(n, d, now);
                                if (d->inbox_state == INBOX_DUE && d->inbox_due_at < next)
                                        next = d->inbox_due_at;
                                if (((d->state == DUE && !no_slot) || d->state == PARK_DUE ||
                                     d->state == DEAD_DUE) &&
                                    d->next_attempt_at < next)
                                        next = d->next_attempt_at;
                                if (d->state == WAITING && now + WAITING_CHECK_MS < next)
                                        next = now + WAITING_CHECK_MS;
                        }
                }
        }
        return next;
}

static void attempt_done(void *opaque, void *private_ptr, int curl_code)
{
        finish_attempt(opaque, private_ptr, curl_code, avk_pump_mono_ms());
}

/* Stores the offset past the finished head of every partition, sheds the
 * finished deliveries behind an unfinished one, and counts the unfinished. */
static void advance_offsets(avk_notify_t *n)
{
        size_t held[2] = {0, 0}; /* of the source topics, of the retry topic */
        for (int p = 0; p < n->part_cnt; p++) {
                for (int qi = 0; qi < Q_CNT; qi++) {
                        struct queue *q = &n->parts[p].q[qi];
                        int64_t last = -1;
                        while (q->head && finished(q->head)) {
                                struct delivery *d = q->head;
                                last = d->offset;
                                q->head = d->next;
                                if (!q->head)
                                        q->tail = NULL;
                                free_delivery(n, d);
                        }
                        if (last >= 0 && q->assigned)
                                avk_pump_store(&n->pump, n->topic[qi], p, last + 1);
                        for (struct delivery *d = q->head; d; d = d->next) {
                                if (finished(d))
                                        shed(n, d);
                                else
                                        held[qi == Q_RETRY]++;
                        }
                }
        }
        n->held = held[0];
        n->retry_held = held[1];
        atomic_store(&n->held_now, n->held);
        atomic_store(&n->retry_held_now, n->retry_held);
        avk_metric_set(avk_metrics_series(n->m_held, NULL), (int64_t)n->held);
        avk_metric_set(avk_metrics_series(n->m_retry_held, NULL), (int64_t)n->retry_held);
}

/* Pauses (pause) or resumes the assigned partitions of the source topics
 * (retry 0) or of the retry topic (retry 1). */
static void pause_topics(avk_notify_t *n, int retry, int pause)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n->part_cnt * Q_CNT);
        for (int p = 0; p < n->part_cnt; p++)
                for (int q = 0; q < Q_CNT; q++)
                        if ((q == Q_RETRY) == retry && n->parts[p].q[q].assigned)
                                rd_kafka_topic_partition_list_add(l, n->topic[q], p);
        avk_pump_pause(&n->pump, l, pause);
}

/* Stops fetching the source topics while notify.max.in.flight of their
 * deliveries are unfinished, and the retry topic while
 * notify.retry.max.held of its records are: neither holds up the other. */
static void flow_control(avk_notify_t *n)
{
        int want_paused = n->held >= n->max_held;
        if (want_paused != n->paused) {
                pause_topics(n, 0, want_paused);
                n->paused = want_paused;
        }
        want_paused = n->retry_held >= n->retry_max_held;
        if (want_paused != n->retry_paused) {
                pause_topics(n, 1, want_paused);
                n->retry_paused = want_paused;
        }
}

/*
 * Gives the partitions up: finished deliveries (dead letters acknowledged
 * within avk_pump_flush()'s bound included) are committed, the rest are dropped for
 * the partitions' next owner to deliver again under the same event id.
 */
static void release_all(avk_notify_t *n)
{
        avk_pump_flush(&n->pump);
        advance_offsets(n);
        avk_pump_commit(&n->pump);
        for (int p = 0; p < n->part_cnt; p++) {
                struct part *part = &n->parts[p];
                for (int qi = 0; qi < Q_CNT; qi++) {
                        struct queue *q = &part->q[qi];
                        while (q->head) {
                                struct delivery *d = q->head;
                                q->head = d->next;
                                free_delivery(n, d);
                        }
                        q->tail = NULL;
                        q->assigned = 0;
                }
                part->reported_at_end = 0;
        }
        atomic_store(&n->partitions, 0);
        n->held = n->retry_held = n->retry_attempts = 0;
        n->paused = n->retry_paused = 0;
        atomic_store(&n->held_now, 0);
        atomic_store(&n->retry_held_now, 0);
        avk_idcache_clear(n->cache);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
        avk_notify_t *n = opaque;
        if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                release_all(n);
                rd_kafka_assign(rk, NULL);
                return;
        }
        for (int i = 0; i < partitions->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &partitions->elems[i];
                if (ensure_part(n, tp->partition) != 0) {
                        snprintf(n->pump.fatal, sizeof(n->pump.fatal), "out of memory");
                        break;
                }
                /* Deviations are not committed: the map is rebuilt from the start. */
                if (strcmp(tp->topic, n->topic_reported) == 0)
                        tp->offset = RD_KAFKA_OFFSET_BEGINNING;
                for (int q = 0; q < Q_CNT; q++)
                        if (strcmp(tp->topic, n->topic[q]) == 0)
                                n->parts[tp->partition].q[q].assigned = 1;
        }
        for (int i = 0; i < partitions->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &partitions->elems[i];
                if (strcmp(tp->topic, n->topic[SRC_ROUTED]) == 0)
                        atomic_fetch_add(&n->partitions, 1);
                if (strcmp(tp->topic, n->topic[SRC_ROUTED]) == 0 &&
                    !rd_kafka_topic_partition_list_find(partitions, n->topic_reported,
                                                        tp->partition))
                        avk_log(AVK_LOG_ERROR, COMPONENT,
                                "%s [%d] is assigned without %s [%d]: the topics' partition "
                                "counts differ, and its deliveries wait for deviations that "
                                "are read elsewhere",
                                n->topic[SRC_ROUTED], (int)tp->partition, n->topic_reported,
                                (int)tp->partition);
        }
        rd_kafka_assign(rk, partitions);
}

/* ---- life cycle -------------------------------------------------------- */

static void register_metrics(avk_notify_t *n, avk_metrics_t *m)
{
        if (!m)
                return;
        n->m_deliveries = avk_metrics_counter(
            m, "avk_notify_deliveries_total",
            "Deliveries finished by the notifier, by receiving party, outcome (delivered: the "
            "webhook took it; inbox: both inbox copies acknowledged; dead_lettered; no_webhook: an "
            "escalation or reminder to a receiver without a webhook) and event (routed, "
            "escalated, reminder).",
            (const char *[]){"party", "outcome", "event", NULL});
        n->m_inbox_retries = avk_metrics_counter(
            m, "avk_notify_inbox_retries_total",
            "Inbox copies produced again after Kafka refused or failed them, by receiving party.",
            (const char *[]){"party", NULL});
        n->m_attempts = avk_metrics_counter(
            m, "avk_notify_attempts_total",
            "Webhook attempts by receiving party and result (2xx, 4xx, 5xx, timeout, tls, "
            "connect, error).",
            (const char *[]){"party", "result", NULL});
        n->m_latency = avk_metrics_histogram(
            m, "avk_notify_attempt_seconds", "Duration of webhook attempts by receiving party.",
            (const char *[]){"party", NULL}, AVK_METRICS_LATENCY_BUCKETS,
            AVK_METRICS_LATENCY_BUCKET_CNT);
        n->m_held = avk_metrics_gauge(m, "avk_notify_held",
                                      "Deliveries of topic.routed, topic.escalated and "
                                      "topic.reminder not finished (waiting for the deviation, "
                                      "first attempt in flight, inbox copies or parking not "
                                      "acknowledged).",
                                      NULL);
        n->m_retry_held = avk_metrics_gauge(
            m, "avk_notify_retry_held",
            "Records of topic.notify.retry held until their attempt is finished.", NULL);
        n->m_parked = avk_metrics_counter(
            m, "avk_notify_retries_parked_total",
            "Failed webhook attempts parked on topic.notify.retry for a later attempt, by "
            "receiving party and event (routed, escalated, reminder).",
            (const char *[]){"party", "event", NULL});
        n->m_undecodable = avk_metrics_counter(m, "avk_notify_undecodable_total",
                                               "Records the notifier could not read, by topic.",
                                               (const char *[]){"topic", NULL});
}

avk_notify_t *avk_notify_new(const avk_config_t *cfg, const avk_directory_t *dir,
                             avk_metrics_t *metrics, char *errstr, size_t errstr_size)
{
        avk_notify_t *n = calloc(1, sizeof(*n));
        if (!n) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        avk_pump_init(&n->pump, COMPONENT);
        n->cfg = cfg;
        n->dir = dir;
        n->timeout_ms = avk_config_get_int(cfg, "notify.timeout.ms");
        n->connect_timeout_ms = avk_config_get_int(cfg, "notify.connect.timeout.ms");
        n->retry_max = avk_config_get_int(cfg, "notify.retry.max");
        n->max_age_ms = avk_config_get_int(cfg, "notify.retry.max.age.ms");
        n->backoff_ms = avk_config_get_int(cfg, "notify.retry.backoff.ms");
        n->backoff_max_ms = avk_config_get_int(cfg, "notify.retry.backoff.max.ms");
        n->wait_ms = avk_config_get_int(cfg, "notify.deviation.wait.ms");
        n->max_held = (size_t)avk_config_get_int(cfg, "notify.max.in.flight");
        n->retry_max_held = (size_t)avk_config_get_int(cfg, "notify.retry.max.held");
        n->ca_location = avk_config_get(cfg, "notify.ssl.ca.location");
        for (int s = 0; s < SRC_CNT; s++)
                n->topic[s] = avk_config_get(cfg, sources[s].topic_key);
        n->topic[Q_RETRY] = avk_config_get(cfg, "topic.notify.retry");
        n->topic_reported = avk_config_get(cfg, "topic.reported");
        n->topic_deadletter = avk_config_get(cfg, "topic.deadletter");
        n->topic_failed = avk_config_get(cfg, "topic.delivery.failed");
        n->rng = (uint64_t)avk_pump_wall_ms() ^ ((uint64_t)getpid() << 32);
        register_metrics(n, metrics);
        if (n->backoff_ms > n->backoff_max_ms) {
                snprintf(errstr, errstr_size,
                         "notify.retry.backoff.ms: %" PRId64
                         " is more than notify.retry.backoff.max.ms (%" PRId64 ")",
                         n->backoff_ms, n->backoff_max_ms);
                goto fail;
        }
        if (avk_env_open(&n->env, cfg, errstr, errstr_size) != 0)
                goto fail;
        for (int s = 0; s < SRC_CNT; s++) {
                n->schema[s] = avk_catalog_by_name(n->env.catalog, sources[s].schema);
                if (!n->schema[s] ||
                    avro_generic_value_new(avk_schema_iface(n->schema[s]), &n->value[s]) != 0) {
                        snprintf(errstr, errstr_size, "out of memory");
                        goto fail;
                }
        }
        n->reported_schema = avk_catalog_by_name(n->env.catalog, "DeviationReported");
        n->failed_schema = avk_catalog_by_name(n->env.catalog, "DeliveryFailed");
        n->codec = avk_codec_new(n->env.catalog, n->env.registry);
        if (!n->reported_schema || !n->failed_schema || !n->codec ||
            !(n->cache =
                  avk_idcache_new((size_t)avk_config_get_int(cfg, "notify.cache.max.entries"))) ||
            avro_generic_value_new(avk_schema_iface(n->reported_schema), &n->reported_value) != 0 ||
            avro_generic_value_new(avk_schema_iface(n->failed_schema), &n->failed_value) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        struct avk_copartition cp = {.service = "avvik notify",
                                     .group_key = "notify.group.id",
                                     .topic_a = n->topic[SRC_ROUTED],
                                     .topic_b = n->topic_reported,
                                     .rebalance_cb = on_rebalance,
                                     .opaque = n};
        if (avk_pump_open(&n->pump, cfg, on_produced, n, &cp, errstr, errstr_size) != 0)
                goto fail;
        return n;
fail:
        avk_notify_destroy(n);
        return NULL;
}

/* Asks for every topic's metadata through the producer: its cache then
 * knows the inbox topics, and the first copy to each goes at once instead
 * of waiting for a metadata request of its own. Latency only: a failure is
 * logged and the copies find their topics later. */
static void learn_topics(avk_notify_t *n)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e =
            rd_kafka_metadata(n->pump.producer, 1, NULL, &md, METADATA_TIMEOUT_MS);
        if (e) {
                avk_log(AVK_LOG_WARN, COMPONENT, "topic metadata: %s", rd_kafka_err2str(e));
                return;
        }
        rd_kafka_metadata_destroy(md);
}

int avk_notify_run(avk_notify_t *n, char *errstr, size_t errstr_size)
{
        learn_topics(n);
        const char *topics[Q_CNT + 1];
        for (int q = 0; q < Q_CNT; q++)
                topics[q] = n->topic[q];
        topics[Q_CNT] = n->topic_reported;
        if (avk_pump_subscribe(&n->pump, topics, Q_CNT + 1, errstr, errstr_size) != 0)
                return -1;
        avk_log(AVK_LOG_INFO, COMPONENT, "consuming %s, %s, %s, %s and %s as group %s",
                n->topic[SRC_ROUTED], n->topic[SRC_ESCALATED], n->topic[SRC_REMINDER],
                n->topic[Q_RETRY], n->topic_reported, avk_config_get(n->cfg, "notify.group.id"));
        while (avk_pump_running(&n->pump)) {
                int taken = avk_pump_take(&n->pump, BATCH_MAX, on_message, n);
                int64_t now = avk_pump_mono_ms();
                int64_t next = step(n, now);
                avk_pump_serve(&n->pump, attempt_done, n);
                advance_offsets(n);
                flow_control(n);
                /* Finished attempts may have made retries or offsets due now. */
                int64_t again = step(n, avk_pump_mono_ms());
                if (again < next)
                        next = again;
                avk_pump_sleep(&n->pump, next, taken == BATCH_MAX);
        }
        release_all(n);
        if (n->pump.fatal[0]) {
                snprintf(errstr, errstr_size, "%s", n->pump.fatal);
                return -1;
        }
        return 0;
}

void avk_notify_stop(avk_notify_t *n)
{
        avk_pump_stop(&n->pump);
}

void avk_notify_stats(avk_notify_t *n, struct avk_notify_stats *stats)
{
        stats->delivered = atomic_load(&n->delivered);
        stats->no_webhook = atomic_load(&n->no_webhook);
        stats->dead_lettered = atomic_load(&n->dead_lettered);
        stats->inbox = atomic_load(&n->inbox);
        stats->inbox_retries = atomic_load(&n->inbox_retries);
        stats->attempts = atomic_load(&n->attempts);
        stats->parked = atomic_load(&n->parked);
        stats->held = atomic_load(&n->held_now);
        stats->retry_held = atomic_load(&n->retry_held_now);
        stats->partitions = atomic_load(&n->partitions);
}

int avk_notify_ready(void *opaque, char *why, size_t why_size)
{
        avk_notify_t *n = opaque;
        return avk_kafka_ready(n->pump.producer, atomic_load(&n->partitions), n->topic[SRC_ROUTED],
                               why, why_size);
}

void avk_notify_destroy(avk_notify_t *n)
{
        if (!n)
                return;
        avk_pump_close_kafka(&n->pump); /* the consumer's revocation: release_all() */
        for (int p = 0; p < n->part_cnt; p++) {
                for (int q = 0; q < Q_CNT; q++) {
                        while (n->parts[p].q[q].head) {
                                struct delivery *d = n->parts[p].q[q].head;
                                n->parts[p].q[q].head = d->next;
                                free_delivery(n, d);
                        }
                }
        }
        free(n->parts);
        free(n->seq_bucket);
        avk_pump_close(&n->pump);
        avk_idcache_destroy(n->cache);
        for (int s = 0; s < SRC_CNT; s++)
                if (n->value[s].self)
                        avro_value_decref(&n->value[s]);
        if (n->reported_value.self)
                avro_value_decref(&n->reported_value);
        if (n->failed_value.self)
                avro_value_decref(&n->failed_value);
        avk_codec_destroy(n->codec);
        avk_env_close(&n->env);
        free(n);
}
