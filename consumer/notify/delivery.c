/*
 * avk_delivery: see delivery.h; the format and policy are in docs/notify.md.
 *
 * Four kinds of record are delivered the same way, each from its own topic:
 * DeviationRouted (topic.routed), DeviationEscalated (topic.escalated),
 * DeadlineReminder (topic.reminder) and DeviationFeedback (topic.feedback,
 * to the reporting party). Only a routed record needs the deviation (its
 * body carries it) and only its failure is escalated with a DeliveryFailed
 * event; the others are delivered as they are, a feedback's free text
 * scrubbed for an endpoint not cleared for patient identity.
 */
#include "consumer/notify/delivery.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/json.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "consumer/notify/failed.h"
#include "consumer/notify/notify.h"
#include "consumer/notify/retry.h"

#define COMPONENT  AVK_DELIVERY_LOG
#define USER_AGENT "avvik-notify/0.1"

const struct avk_source_def avk_delivery_sources[AVK_SRC_CNT] = {
    [AVK_SRC_ROUTED] = {"topic.routed", "DeviationRouted", "routed", "event_id", "receiver_party",
                        "receiver_unit_hsa_id"},
    [AVK_SRC_ESCALATED] = {"topic.escalated", "DeviationEscalated", "escalated", "escalation_id",
                           "party", "unit_hsa_id"},
    [AVK_SRC_REMINDER] = {"topic.reminder", "DeadlineReminder", "reminder", "reminder_id",
                          "receiver_party", "receiver_unit_hsa_id"},
    [AVK_SRC_FEEDBACK] = {"topic.feedback", "DeviationFeedback", "feedback", "event_id",
                          "reporter_party", "reporter_unit_hsa_id"},
};

/* ---- the index by seq -------------------------------------------------- */

/* Seqs are handed out one by one and never come from outside: the seq is
 * its own hash, and consecutive seqs fill consecutive buckets. */
static int seq_eq(const struct avk_hnode *node, const void *key)
{
        return avk_container_of(node, struct avk_delivery, by_seq)->seq == *(const uint64_t *)key;
}

struct avk_delivery *avk_delivery_new(struct avk_deliveries *dl)
{
        struct avk_delivery *d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        d->seq = ++dl->seq;
        avk_htab_insert(&dl->by_seq, &d->by_seq, d->seq);
        return d;
}

struct avk_delivery *avk_delivery_find(struct avk_deliveries *dl, uint64_t seq)
{
        struct avk_hnode *node = avk_htab_find(&dl->by_seq, seq, seq_eq, &seq);
        return node ? avk_container_of(node, struct avk_delivery, by_seq) : NULL;
}

struct avk_delivery *avk_delivery_tagged(struct avk_deliveries *dl, uint64_t tag,
                                         enum avk_output *out)
{
        *out = (enum avk_output)(tag & ((1u << AVK_OUTPUT_BITS) - 1));
        return avk_delivery_find(dl, tag >> AVK_OUTPUT_BITS);
}

void avk_delivery_free(struct avk_deliveries *dl, struct avk_delivery *d)
{
        avk_htab_remove(&dl->by_seq, &d->by_seq);
        avk_delivery_shed(dl, d);
        free(d);
}

/* ---- metrics ----------------------------------------------------------- */

/* The "event" label of d: "unknown" for a retry record that could not be read. */
static const char *event_label(const struct avk_delivery *d)
{
        return d->src < AVK_SRC_CNT ? avk_delivery_sources[d->src].label : "unknown";
}

void avk_delivery_count(struct avk_deliveries *dl, const struct avk_delivery *d,
                        const char *outcome)
{
        const char *labels[] = {d->party[0] ? d->party : "unknown", outcome, event_label(d)};
        avk_metric_add(avk_metrics_series(dl->m_deliveries, labels), 1);
}

/* ---- deliveries -------------------------------------------------------- */

void avk_delivery_shed(struct avk_deliveries *dl, struct avk_delivery *d)
{
        if (d->easy) {
                curl_multi_remove_handle(dl->multi, d->easy);
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

const char *avk_delivery_origin_topic(const struct avk_deliveries *dl, const struct avk_delivery *d)
{
        return d->origin_topic ? d->origin_topic : dl->topic[d->queue];
}

int avk_delivery_finished(const struct avk_delivery *d)
{
        return d->state == AVK_DELIVERY_DONE &&
               (d->inbox_state == AVK_INBOX_NONE || d->inbox_state == AVK_INBOX_DONE);
}

uint64_t avk_delivery_tag(const struct avk_delivery *d, enum avk_output out)
{
        return d->seq << AVK_OUTPUT_BITS | (uint64_t)out;
}

void avk_delivery_set_reason(struct avk_delivery *d, const char *fmt, va_list ap)
{
        vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
}

int avk_delivery_produce(struct avk_deliveries *dl, struct avk_delivery *d, enum avk_output out,
                         const char *topic, const void *key, size_t key_len, const void *value,
                         size_t len, rd_kafka_headers_t *h)
{
        const char *names[AVK_OUTBOX_MAX_HDRS], *values[AVK_OUTBOX_MAX_HDRS];
        size_t lens[AVK_OUTBOX_MAX_HDRS];
        int cnt = 0;
        const void *header_value;
        while (h && cnt < AVK_OUTBOX_MAX_HDRS &&
               rd_kafka_header_get_all(h, (size_t)cnt, &names[cnt], &header_value, &lens[cnt]) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR) {
                values[cnt] = header_value;
                cnt++;
        }
        struct avk_outbox_msg msg = {.topic = topic,
                                     .partition = RD_KAFKA_PARTITION_UA,
                                     .key = key,
                                     .key_len = key_len,
                                     .value = value,
                                     .len = len,
                                     .hdr_names = names,
                                     .hdr_values = values,
                                     .hdr_lens = lens,
                                     .hdr_cnt = cnt,
                                     .tag = avk_delivery_tag(d, out)};
        int rc = avk_outbox_emit(dl->outbox, d->in, d->in_seq, &msg);
        if (h)
                rd_kafka_headers_destroy(h);
        if (rc != 0)
                snprintf(dl->fatal, sizeof(dl->fatal), "out of memory");
        return rc;
}

/* Takes body as d's body (it is the same on every attempt) and makes the
 * first attempt due. */
static void seal(struct avk_deliveries *dl, struct avk_delivery *d, json_t *body, int64_t now)
{
        d->body = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(body);
        if (!d->body) {
                avk_failed_dead_letter(dl, d, d->src == AVK_SRC_ROUTED,
                                       "out of memory building the body");
                return;
        }
        d->body_len = strlen(d->body);
        /* A feedback's free text is left as written for a cleared endpoint only. */
        d->identity = (d->src == AVK_SRC_ROUTED || d->src == AVK_SRC_FEEDBACK) &&
                      d->webhook->patient_identity;
        json_decref(d->event);
        d->event = NULL;
        d->state = AVK_DELIVERY_DUE;
        d->next_attempt_at = now;
}

int avk_delivery_compose(struct avk_deliveries *dl, struct avk_delivery *d, const void *payload,
                         size_t len, int64_t now, char *why, size_t why_size)
{
        if (!d->webhook) {
                d->state = AVK_DELIVERY_DONE;
                return 0;
        }
        json_t *deviation = NULL, *body = NULL;
        int rc = avk_codec_decode(dl->codec, payload, len, dl->reported_schema, &dl->reported_value,
                                  why, why_size);
        if (rc == AVK_CODEC_UNAVAILABLE)
                return rc;
        if (rc != 0 || !(deviation = avk_json_from_avro(dl->reported_schema, &dl->reported_value,
                                                        why, why_size))) {
                avk_failed_dead_letter(dl, d, 1, "deviation undecodable: %s", why);
                return 0;
        }
        body = avk_notify_body(d->event, deviation, d->webhook->patient_identity);
        json_decref(deviation);
        seal(dl, d, body, now);
        return 0;
}

void avk_delivery_start_attempt(struct avk_deliveries *dl, struct avk_delivery *d, int64_t now)
{
        char timestamp[32], signature[AVK_WEBHOOK_SIGNATURE_SIZE];
        int64_t wall_ms = avk_clock_system_ms();
        const char *event_type = avk_delivery_sources[d->src].schema;
        avk_json_format_time(wall_ms, timestamp);
        d->attempts++;
        d->attempt_started_at = now;
        if (d->attempts == 1)
                d->first_attempt_wall = avk_clock_system_ms();
        d->curl_error[0] = '\0';
        d->state = AVK_DELIVERY_IN_FLIGHT;
        if (d->queue == AVK_Q_RETRY)
                dl->retry_attempts++;
        /* An empty Expect: keeps curl from waiting for "100 Continue". */
        /* Each attempt is signed with its own time: docs/notify.md, "Signature". */
        int ok = avk_webhook_sign(d->webhook->secret, d->webhook->secret_len, wall_ms / 1000,
                                  event_type, d->body, d->body_len, signature) == 0 &&
                 avk_webhook_add_header(&d->headers, "Content-Type", "application/json") == 0 &&
                 avk_webhook_add_header(&d->headers, "X-Avvik-Event-Id", d->event_id) == 0 &&
                 avk_webhook_add_header(&d->headers, "X-Avvik-Event-Type", event_type) == 0 &&
                 avk_webhook_add_header(&d->headers, "X-Avvik-Signature", signature) == 0 &&
                 avk_webhook_add_header(&d->headers, "X-Avvik-Timestamp", timestamp) == 0 &&
                 (d->headers = curl_slist_append(d->headers, "Expect:")) != NULL;
        struct avk_webhook_post post = {
            .url = d->webhook->url,
            .headers = d->headers,
            .body = d->body,
            .body_len = d->body_len,
            .timeout_ms = dl->timeout_ms,
            .connect_timeout_ms = dl->connect_timeout_ms,
            .ca_location = dl->ca_location,
            .user_agent = USER_AGENT,
            .private_ptr = d,
            .error_buffer = d->curl_error,
        };
        if (!ok || !(d->easy = avk_webhook_post_start(dl->multi, &post)))
                avk_delivery_finish_attempt(dl, d, CURLE_OUT_OF_MEMORY, now);
}

void avk_delivery_finish_attempt(struct avk_deliveries *dl, struct avk_delivery *d, int curl_code,
                                 int64_t now)
{
        char reason[AVK_DELIVERY_REASON_SIZE];
        long status = avk_webhook_finish(dl->multi, &d->easy, curl_code, reason, sizeof(reason));
        curl_slist_free_all(d->headers);
        d->headers = NULL;
        if (d->queue == AVK_Q_RETRY)
                dl->retry_attempts--;
        atomic_fetch_add(&dl->attempts, 1);
        avk_metric_add(
            avk_metrics_series(dl->m_attempts,
                               (const char *[]){d->party, avk_webhook_result(curl_code, status)}),
            1);
        avk_metric_observe(avk_metrics_series(dl->m_latency, (const char *[]){d->party}),
                           (double)(now - d->attempt_started_at) / 1000.0);

        enum avk_webhook_verdict verdict = avk_webhook_classify(curl_code, status);
        if (verdict == AVK_WEBHOOK_DELIVERED) {
                d->state = AVK_DELIVERY_DONE;
                atomic_fetch_add(&dl->delivered, 1);
                avk_delivery_count(dl, d, "delivered");
                avk_log(AVK_LOG_INFO, COMPONENT, "event %s delivered to party %s (attempt %d)",
                        d->event_id, d->party, d->attempts);
                return;
        }
        int64_t wait = avk_webhook_backoff_ms(d->attempts, dl->backoff_ms, dl->backoff_max_ms,
                                              avk_webhook_random(&dl->rng));
        int64_t wall = avk_clock_system_ms();
        int escalate = d->src == AVK_SRC_ROUTED;
        enum avk_retry_budget budget = avk_retry_budget(
            d->attempts, dl->retry_max, d->first_attempt_wall, wall + wait, dl->max_age_ms);
        if (verdict == AVK_WEBHOOK_PERMANENT) {
                avk_failed_dead_letter(dl, d, escalate, "%s (attempt %d; not retried)", reason,
                                       d->attempts);
        } else if (budget == AVK_RETRY_ATTEMPTS_SPENT) {
                avk_failed_dead_letter(dl, d, escalate, "%s (attempt %d of %d)", reason,
                                       d->attempts, (int)dl->retry_max);
        } else if (budget == AVK_RETRY_AGE_SPENT) {
                avk_failed_dead_letter(dl, d, escalate,
                                       "%s (attempt %d; notify.retry.max.age.ms passed)", reason,
                                       d->attempts);
        } else {
                /* Parked on the retry topic: the wait holds up nothing
                 * here, not even this record's offset. */
                avk_retry_park(dl, d, now, wall, wait, "%s (attempt %d)", reason, d->attempts);
        }
}

const struct avk_directory_receiver *avk_delivery_receiver(const struct avk_deliveries *dl,
                                                           const char *party, const char *unit)
{
        return avk_directory_receiver(dl->dir, party, unit);
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

int avk_delivery_accept(struct avk_deliveries *dl, struct avk_delivery *d, int64_t now, char *why,
                        size_t why_size)
{
        const struct avk_source_def *src = &avk_delivery_sources[d->src];
        int decoded = avk_codec_decode(dl->codec, d->payload, d->payload_len, dl->schema[d->src],
                                       &dl->value[d->src], why, why_size);
        if (decoded == AVK_CODEC_UNAVAILABLE)
                return decoded;
        if (decoded != 0 || !(d->event = avk_json_from_avro(dl->schema[d->src], &dl->value[d->src],
                                                            why, why_size))) {
                avk_metric_add(
                    avk_metrics_series(dl->m_undecodable, (const char *[]){dl->topic[d->src]}), 1);
                avk_failed_dead_letter(dl, d, 0, "undecodable: %s", why);
                return 0;
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

        const struct avk_directory_receiver *rc = avk_delivery_receiver(dl, d->party, unit);
        if (!rc) {
                avk_failed_dead_letter(dl, d, d->src == AVK_SRC_ROUTED,
                                       "receiver party %s is not in the directory", d->party);
        } else if (d->src == AVK_SRC_ROUTED) {
                /* Each channel the receiver has (the directory requires one)
                 * waits for the deviation: the body carries it, the inbox
                 * gets it as read. */
                d->webhook = rc->delivery->webhook;
                d->inbox = rc->delivery->inbox_topic;
                d->state = AVK_DELIVERY_WAITING;
        } else if (!rc->delivery->webhook) {
                /* An escalation or reminder for a receiver with an inbox
                 * only: the tracker has copied it there itself
                 * (docs/tracker.md), the notifier has no webhook to use. */
                d->state = AVK_DELIVERY_DONE;
                atomic_fetch_add(&dl->no_webhook, 1);
                avk_delivery_count(dl, d, "no_webhook");
        } else {
                d->webhook = rc->delivery->webhook;
                if (d->src == AVK_SRC_ESCALATED)
                        name_holder(d->event, rc);
                seal(dl, d,
                     d->src == AVK_SRC_FEEDBACK
                         ? avk_notify_feedback_body(d->event, d->webhook->patient_identity)
                         : json_incref(d->event),
                     now);
        }
        return 0;
}
