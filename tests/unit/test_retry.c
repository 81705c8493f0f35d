/*
 * The retry topic's record (consumer/notify/retry.h, docs/notify.md "Retry
 * topic"): what a parked delivery writes into its headers reads back into
 * the delivery that takes the next attempt, a record that lacks or garbles
 * a header is refused with the header's name, and the retry budget ends a
 * delivery's attempts by age (and by count only when one is set), so that
 * an endpoint down for ten minutes loses nothing to the dead letter.
 */
#include <check.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/http/webhook.h"
#include "common/kafka/kafka.h"
#include "common/util/config.h"
#include "consumer/notify/delivery.h"
#include "consumer/notify/notify_config.h"
#include "consumer/notify/retry.h"

#define RETRY_TOPIC  "deviation.notify.retry"
#define ROUTED_TOPIC "deviation.routed"

static struct avk_deliveries dl = {
    .topic = {[AVK_SRC_ROUTED] = ROUTED_TOPIC, [AVK_Q_RETRY] = RETRY_TOPIC},
};

/* A routed delivery that failed its third attempt, as avk_retry_park() leaves it. */
static void parked(struct avk_delivery *d, int with_unit)
{
        memset(d, 0, sizeof(*d));
        d->src = AVK_SRC_ROUTED;
        d->queue = AVK_SRC_ROUTED;
        strcpy(d->event_id, "0c7f3b1e-5d2a-5e4f-8a1b-2c3d4e5f6a7b");
        strcpy(d->deviation_id, "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10");
        strcpy(d->party, "VGR");
        if (with_unit)
                strcpy(d->unit, "SE2321000131-E000000000001");
        strcpy(d->reason, "HTTP 503 (attempt 3)");
        d->hop = 2;
        d->attempts = 3;
        d->first_attempt_wall = 1764000000000;
        d->due_wall = 1764000004000;
        d->identity = 1;
        static char original[] = "the routed record as read";
        d->payload = original;
        d->payload_len = strlen(d->payload);
        d->origin_partition = 4;
        d->origin_offset = 17;
}

/* A delivery of the retry topic as the shell hands it over: body as its payload. */
static struct avk_delivery *taken(const char *body)
{
        struct avk_delivery *d = calloc(1, sizeof(*d));
        ck_assert_ptr_nonnull(d);
        d->queue = AVK_Q_RETRY;
        d->src = AVK_SRC_CNT;
        d->payload = strdup(body);
        d->payload_len = strlen(body);
        return d;
}

static void release(struct avk_delivery *d)
{
        avk_delivery_shed(&dl, d);
        free(d);
}

static const char *header(rd_kafka_headers_t *h, const char *name)
{
        static char text[256];
        const void *value;
        size_t len;
        ck_assert_int_eq(rd_kafka_header_get_last(h, name, &value, &len), 0);
        ck_assert_uint_lt(len, sizeof(text));
        memcpy(text, value, len);
        text[len] = '\0';
        return text;
}

static void replace(rd_kafka_headers_t *h, const char *name, const char *value)
{
        rd_kafka_header_remove(h, name);
        if (value)
                rd_kafka_header_add(h, name, -1, value, -1);
}

/* The reason avk_retry_read() gives for headers h (it must refuse them). */
static const char *refusal(rd_kafka_headers_t *h, const char *body)
{
        static char err[256];
        struct avk_delivery *d = taken(body);
        ck_assert_int_eq(avk_retry_read(d, h, err, sizeof(err)), -1);
        ck_assert_str_eq(d->payload, body); /* the record as read, for the dead letter */
        release(d);
        return err;
}

START_TEST(a_parked_delivery_reads_back_from_its_record)
{
        struct avk_delivery sent;
        parked(&sent, 1);
        rd_kafka_headers_t *h = avk_retry_headers(&dl, &sent);
        ck_assert_str_eq(header(h, AVK_HDR_ERROR), "HTTP 503 (attempt 3)");
        ck_assert_str_eq(header(h, AVK_HDR_NOTIFY_EVENT), "routed");

        char err[256];
        struct avk_delivery *d = taken("{\"the\":\"body\"}");
        ck_assert_int_eq(avk_retry_read(d, h, err, sizeof(err)), 0);
        ck_assert_int_eq(d->src, AVK_SRC_ROUTED);
        ck_assert_str_eq(d->event_id, sent.event_id);
        ck_assert_str_eq(d->deviation_id, sent.deviation_id);
        ck_assert_str_eq(d->party, "VGR");
        ck_assert_str_eq(d->unit, "SE2321000131-E000000000001");
        ck_assert_int_eq(d->hop, 2);
        ck_assert_int_eq(d->attempts, 3);
        ck_assert_int_eq(d->first_attempt_wall, 1764000000000);
        ck_assert_int_eq(d->due_wall, 1764000004000);
        ck_assert_int_eq(d->identity, 1);
        ck_assert_str_eq(d->body, "{\"the\":\"body\"}");
        ck_assert_uint_eq(d->payload_len, sent.payload_len);
        ck_assert_mem_eq(d->payload, sent.payload, sent.payload_len);
        /* The dead letter of a later attempt names where the original was read. */
        ck_assert_str_eq(d->origin_topic, ROUTED_TOPIC);
        ck_assert_str_eq(avk_delivery_origin_topic(&dl, d), ROUTED_TOPIC);
        ck_assert_int_eq(d->origin_partition, 4);
        ck_assert_int_eq(d->origin_offset, 17);
        release(d);
        rd_kafka_headers_destroy(h);
}
END_TEST

START_TEST(a_record_without_unit_or_identity_reads_back_without_them)
{
        struct avk_delivery sent;
        parked(&sent, 0);
        sent.identity = 0;
        sent.src = AVK_SRC_ESCALATED;
        rd_kafka_headers_t *h = avk_retry_headers(&dl, &sent);
        char err[256];
        struct avk_delivery *d = taken("{}");
        ck_assert_int_eq(avk_retry_read(d, h, err, sizeof(err)), 0);
        ck_assert_int_eq(d->src, AVK_SRC_ESCALATED);
        ck_assert_str_eq(d->unit, "");
        ck_assert_int_eq(d->identity, 0);
        release(d);
        rd_kafka_headers_destroy(h);
}
END_TEST

START_TEST(a_record_missing_a_header_is_refused_with_its_name)
{
        struct avk_delivery sent;
        parked(&sent, 1);
        rd_kafka_headers_t *h = avk_retry_headers(&dl, &sent);
        replace(h, AVK_HDR_ATTEMPTS, NULL);
        ck_assert_str_eq(refusal(h, "{}"), "retry record: header avk-attempts missing");
        rd_kafka_headers_destroy(h);

        h = avk_retry_headers(&dl, &sent);
        replace(h, AVK_HDR_ORIGINAL, NULL);
        ck_assert_str_eq(refusal(h, "{}"), "retry record: header avk-original missing");
        rd_kafka_headers_destroy(h);

        ck_assert_str_eq(refusal(NULL, "{}"), "retry record: header avk-notify-event missing");
}
END_TEST

START_TEST(a_record_with_a_garbled_header_is_refused_with_its_name)
{
        struct avk_delivery sent;
        parked(&sent, 1);
        rd_kafka_headers_t *h = avk_retry_headers(&dl, &sent);
        replace(h, AVK_HDR_ATTEMPTS, "0");
        ck_assert_str_eq(refusal(h, "{}"), "retry record: header avk-attempts is not a decimal "
                                           "number from 1 to 2147483647");
        replace(h, AVK_HDR_ATTEMPTS, "3x");
        ck_assert_str_eq(refusal(h, "{}"), "retry record: header avk-attempts is not a decimal "
                                           "number from 1 to 2147483647");
        replace(h, AVK_HDR_ATTEMPTS, "3");
        replace(h, AVK_HDR_NOTIFY_EVENT, "digest");
        ck_assert_str_eq(refusal(h, "{}"),
                         "retry record: header avk-notify-event is not routed, escalated or "
                         "reminder");
        replace(h, AVK_HDR_NOTIFY_EVENT, "routed");
        replace(h, AVK_HDR_PARTY, "a party code far too long");
        ck_assert_str_eq(refusal(h, "{}"),
                         "retry record: header avk-party is not text of at most 7 bytes");
        replace(h, AVK_HDR_PARTY, "VGR");
        ck_assert_str_eq(refusal(h, ""), "retry record: no body (the record's value is empty)");
        rd_kafka_headers_destroy(h);
}
END_TEST

START_TEST(the_budget_ends_attempts_by_age_and_by_count_only_when_one_is_set)
{
        const int64_t first = 1764000000000, max_age = 3600000;
        ck_assert_int_eq(avk_retry_budget(1, 0, first, first + 1000, max_age), AVK_RETRY_LEFT);
        ck_assert_int_eq(avk_retry_budget(500, 0, first, first + max_age, max_age), AVK_RETRY_LEFT);
        ck_assert_int_eq(avk_retry_budget(2, 0, first, first + max_age + 1, max_age),
                         AVK_RETRY_AGE_SPENT);
        ck_assert_int_eq(avk_retry_budget(4, 5, first, first + max_age, max_age), AVK_RETRY_LEFT);
        ck_assert_int_eq(avk_retry_budget(5, 5, first, first + 1000, max_age),
                         AVK_RETRY_ATTEMPTS_SPENT);
        /* Both spent: the count is named. */
        ck_assert_int_eq(avk_retry_budget(6, 5, first, first + max_age + 1, max_age),
                         AVK_RETRY_ATTEMPTS_SPENT);
}
END_TEST

/* An endpoint down for ten minutes, with the default configuration: every
 * failed attempt, on a clock that moves by the backoff drawn, leaves budget
 * for the next, and the first attempt after the outage is made. */
START_TEST(a_ten_minute_outage_keeps_retrying_with_the_default_budget)
{
        avk_config_t *cfg = avk_config_new();
        char err[256];
        ck_assert_ptr_nonnull(cfg);
        ck_assert_msg(avk_config_add_keys(cfg, &avk_notify_config_keys, err, sizeof(err)) == 0,
                      "%s", err);
        const int64_t retry_max = avk_config_get_int(cfg, "notify.retry.max"),
                      max_age = avk_config_get_int(cfg, "notify.retry.max.age.ms"),
                      base = avk_config_get_int(cfg, "notify.retry.backoff.ms"),
                      cap = avk_config_get_int(cfg, "notify.retry.backoff.max.ms");
        avk_config_destroy(cfg);
        const int64_t first = 1764000000000, outage_ends = first + 10 * 60 * 1000;
        for (uint64_t seed = 1; seed <= 200; seed++) {
                uint64_t rng = seed;
                int64_t now = first;
                int attempts = 0;
                while (now < outage_ends) {
                        attempts++; /* fails: the endpoint is down */
                        int64_t wait =
                            avk_webhook_backoff_ms(attempts, base, cap, avk_webhook_random(&rng));
                        ck_assert_msg(wait <= cap, "seed %" PRIu64 ": backoff %" PRId64 " ms", seed,
                                      wait);
                        enum avk_retry_budget budget =
                            avk_retry_budget(attempts, retry_max, first, now + wait, max_age);
                        ck_assert_msg(budget == AVK_RETRY_LEFT,
                                      "seed %" PRIu64 ": budget spent (%d) after attempt %d, "
                                      "%" PRId64 " s into the outage",
                                      seed, (int)budget, attempts, (now - first) / 1000);
                        now += wait;
                }
                /* The attempt that succeeds comes within one capped backoff. */
                ck_assert_int_le(now - outage_ends, cap);
        }
}
END_TEST

int main(void)
{
        Suite *s = suite_create("retry");
        TCase *tc = tcase_create("retry record");
        tcase_add_test(tc, a_parked_delivery_reads_back_from_its_record);
        tcase_add_test(tc, a_record_without_unit_or_identity_reads_back_without_them);
        tcase_add_test(tc, a_record_missing_a_header_is_refused_with_its_name);
        tcase_add_test(tc, a_record_with_a_garbled_header_is_refused_with_its_name);
        tcase_add_test(tc, the_budget_ends_attempts_by_age_and_by_count_only_when_one_is_set);
        tcase_add_test(tc, a_ten_minute_outage_keeps_retrying_with_the_default_budget);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
