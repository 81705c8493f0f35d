/* avk_retry: see retry.h; the record's format is in docs/notify.md, "Retry topic". */
#include "consumer/notify/retry.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka/kafka.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "consumer/notify/failed.h"

#define COMPONENT AVK_DELIVERY_LOG

enum avk_retry_budget avk_retry_budget(int attempts, int64_t retry_max, int64_t first_attempt_wall,
                                       int64_t next_attempt_wall, int64_t max_age_ms)
{
        if (retry_max > 0 && attempts >= retry_max)
                return AVK_RETRY_ATTEMPTS_SPENT;
        if (next_attempt_wall - first_attempt_wall > max_age_ms)
                return AVK_RETRY_AGE_SPENT;
        return AVK_RETRY_LEFT;
}

rd_kafka_headers_t *avk_retry_headers(const struct avk_deliveries *dl, const struct avk_delivery *d)
{
        char hop_text[16], attempts_text[16], first_text[32], due_text[32];
        snprintf(hop_text, sizeof(hop_text), "%d", d->hop);
        snprintf(attempts_text, sizeof(attempts_text), "%d", d->attempts);
        snprintf(first_text, sizeof(first_text), "%" PRId64, d->first_attempt_wall);
        snprintf(due_text, sizeof(due_text), "%" PRId64, d->due_wall);
        /* avk-error and where the original was read, as a dead letter has them. */
        rd_kafka_headers_t *h = avk_pump_deadletter_headers(
            d->reason, avk_delivery_origin_topic(dl, d), d->origin_partition, d->origin_offset);
        rd_kafka_header_add(h, AVK_HDR_EVENT_ID, -1, d->event_id, -1);
        rd_kafka_header_add(h, AVK_HDR_NOTIFY_EVENT, -1, avk_delivery_sources[d->src].label, -1);
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
        return h;
}

/* Produces d's retry record (docs/notify.md, "Retry topic"): keyed by the
 * original record's key, the body as sent as its value, and in headers what
 * the next attempt and the dead letter need. -1 with the reason in errstr. */
static int produce_retry_record(struct avk_deliveries *dl, struct avk_delivery *d, char *errstr,
                                size_t errstr_size)
{
        return avk_delivery_produce(dl, d, AVK_OUTPUT_PARK, dl->topic[AVK_Q_RETRY], d->key,
                                    d->key_len, d->body, d->body_len, avk_retry_headers(dl, d),
                                    errstr, errstr_size);
}

void avk_retry_park(struct avk_deliveries *dl, struct avk_delivery *d, int64_t now, int64_t wall,
                    int64_t wait, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        avk_delivery_set_reason(d, fmt, ap);
        va_end(ap);
        d->due_wall = wall + wait;
        d->park_refusals = 0;
        d->state = AVK_DELIVERY_PARK_DUE;
        d->next_attempt_at = now;
        avk_log(AVK_LOG_WARN, COMPONENT,
                "event %s to party %s: %s; next in %" PRId64 " ms, parked on %s", d->event_id,
                d->party, d->reason, wait, dl->topic[AVK_Q_RETRY]);
}

/* Makes d's retry record due again after a backoff: Kafka refused it or
 * failed it, and the attempt it stands for must not be lost. */
static void park_again(struct avk_deliveries *dl, struct avk_delivery *d, int64_t now)
{
        d->state = AVK_DELIVERY_PARK_DUE;
        d->next_attempt_at =
            now + avk_webhook_backoff_ms(++d->park_refusals, dl->backoff_ms, dl->backoff_max_ms,
                                         avk_webhook_random(&dl->rng));
}

void avk_retry_send(struct avk_deliveries *dl, struct avk_delivery *d, int64_t now)
{
        char err[256];
        if (produce_retry_record(dl, d, err, sizeof(err)) == 0) {
                d->state = AVK_DELIVERY_PARK_SENT;
                return;
        }
        avk_log(AVK_LOG_ERROR, COMPONENT, "event %s: record to %s not produced: %s", d->event_id,
                dl->topic[AVK_Q_RETRY], err);
        park_again(dl, d, now);
}

void avk_retry_produced(struct avk_deliveries *dl, struct avk_delivery *d,
                        const rd_kafka_message_t *m)
{
        if (d->state != AVK_DELIVERY_PARK_SENT)
                return;
        if (m->err) {
                avk_log(AVK_LOG_ERROR, COMPONENT, "event %s: record to %s not acknowledged: %s",
                        d->event_id, dl->topic[AVK_Q_RETRY], rd_kafka_err2str(m->err));
                park_again(dl, d, avk_clock_mono_ms());
                return;
        }
        d->state = AVK_DELIVERY_DONE;
        atomic_fetch_add(&dl->parked, 1);
        avk_metric_add(
            avk_metrics_series(dl->m_parked,
                               (const char *[]){d->party, avk_delivery_sources[d->src].label}),
            1);
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

int avk_retry_read(struct avk_delivery *d, rd_kafka_headers_t *h, char *errstr, size_t errstr_size)
{
        char label[16], topic[256];
        int64_t hop, attempts, first, due, partition, offset;
        const void *original = NULL;
        size_t original_len = 0;
        if (retry_header(h, AVK_HDR_NOTIFY_EVENT, label, sizeof(label), errstr, errstr_size) != 0)
                return -1;
        enum avk_source src = AVK_SRC_CNT;
        for (int s = 0; s < AVK_SRC_CNT; s++)
                if (strcmp(label, avk_delivery_sources[s].label) == 0)
                        src = (enum avk_source)s;
        if (src == AVK_SRC_CNT) {
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

void avk_retry_accept(struct avk_deliveries *dl, struct avk_delivery *d,
                      const rd_kafka_message_t *m, int64_t now)
{
        char err[AVK_DELIVERY_REASON_SIZE];
        rd_kafka_headers_t *h = NULL;
        if (rd_kafka_message_headers(m, &h) != 0)
                h = NULL;
        int rc = avk_retry_read(d, h, err, sizeof(err));
        if (rc == -2) {
                /* Never attempted here: the loop ends on the error, and the
                 * record is left to the partition's next owner. */
                snprintf(dl->pump->fatal, sizeof(dl->pump->fatal), "out of memory");
                d->state = AVK_DELIVERY_DUE;
                d->next_attempt_at = INT64_MAX;
                return;
        }
        if (rc != 0) {
                /* Nothing of a record that cannot be trusted goes into a
                 * log line or a header: the reason names the header only. */
                d->event_id[0] = d->deviation_id[0] = d->party[0] = d->unit[0] = '\0';
                avk_metric_add(
                    avk_metrics_series(dl->m_undecodable, (const char *[]){dl->topic[AVK_Q_RETRY]}),
                    1);
                avk_failed_dead_letter(dl, d, 0, "%s", err);
                return;
        }
        /* A due time past the age budget was not written by a notifier:
         * the attempt comes by then at the latest. */
        int64_t wait = d->due_wall - avk_clock_system_ms();
        d->state = AVK_DELIVERY_DUE;
        d->next_attempt_at = now + (wait < 0 ? 0 : wait > dl->max_age_ms ? dl->max_age_ms : wait);
}

int avk_retry_address(struct avk_deliveries *dl, struct avk_delivery *d)
{
        const struct avk_directory_receiver *rc =
            avk_delivery_receiver(dl, d->party, d->unit[0] ? d->unit : NULL);
        int escalate = d->src == AVK_SRC_ROUTED;
        if (!rc) {
                avk_failed_dead_letter(dl, d, escalate, "receiver party %s is not in the directory",
                                       d->party);
                return -1;
        }
        if (!rc->delivery->webhook) {
                avk_failed_dead_letter(
                    dl, d, escalate, "receiver party %s has no webhook in the directory", d->party);
                return -1;
        }
        /* The body is the one sent before, byte for byte: one that holds
         * the patient's identity goes only to an endpoint still cleared. */
        if (d->identity && !rc->delivery->webhook->patient_identity) {
                avk_failed_dead_letter(
                    dl, d, escalate,
                    "the body holds patient identity and the webhook of party %s is no "
                    "longer cleared for it",
                    d->party);
                return -1;
        }
        d->webhook = rc->delivery->webhook;
        return 0;
}
