/*
 * The gateway's deviation index fed from topic.routed on the in-process mock
 * cluster: it reads every partition from the beginning, the latest routing of
 * a deviation wins, a record it cannot use is skipped without stopping the
 * partition, and it says when it has read the topic to its end - and not
 * before: while the Schema Registry has no answer for a record's writer
 * schema, the record waits and is read once the registry is back.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kafka/kafka.h"
#include "common/contract/party.h"
#include "producer/gateway/index.h"
#include "tests/support/codec_fixture.h"
#include "tests/support/fake_registry.h"
#include "tests/support/mock_kafka.h"

#define TOPIC "deviation.routed"
#define DEV_A "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10"
#define DEV_B "9a7e4b21-55c3-4f0e-8d1a-6b2c3d4e5f60"

static struct mock_kafka mk;
static avk_catalog_t *catalog;
static const avk_schema_t *routed;
static rd_kafka_t *producer;
static avk_codec_t *codec;
static avk_index_t *index_;

static void setup(void)
{
        char err[512];
        mock_kafka_start(&mk, 1);
        catalog = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(catalog != NULL, "%s", err);
        routed = avk_catalog_by_name(catalog, "DeviationRouted");
        codec = codec_fixture_codec(catalog, NULL);
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        producer = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(producer != NULL, "%s", err);
        index_ = avk_index_new();
}

static void teardown(void)
{
        avk_index_destroy(index_);
        rd_kafka_destroy(producer);
        avk_codec_destroy(codec);
        avk_catalog_destroy(catalog);
        mock_kafka_stop(&mk);
}

static void produce_raw(const char *key, const void *payload, size_t len)
{
        ck_assert_int_eq(
            rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE((void *)payload, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
        ck_assert_int_eq(rd_kafka_flush(producer, 10000), 0);
}

static void produce_routed(const char *deviation, int hop, const char *reporter,
                           const char *receiver)
{
        char event_id[40];
        snprintf(event_id, sizeof(event_id), "00000000-0000-4000-8000-%012d", hop);
        json_t *doc = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:n,s:s,s:s,s:s,s:s,s:s,s:b}", "event_id",
                                event_id, "deviation_id", deviation, "routed_at",
                                "2026-11-20T10:00:00.000Z", "hop", hop, "reporter_party", reporter,
                                "receiver_party", receiver, "receiver_unit_hsa_id", "decision",
                                "AGREEMENT_RULE", "rule_id", "R-1", "reason", "test", "category",
                                "MEDICATION", "harm_level", "NONE", "possible_lex_maria", 0);
        struct codec_message msg = codec_fixture_encode(codec, TOPIC, routed, doc);
        produce_raw(deviation, msg.bytes, msg.len);
        free(msg.bytes);
        json_decref(doc);
}

/* Waits until the index has read the topic to its end and knows n deviations. */
static void await_index(size_t n)
{
        for (int i = 0; i < 300; i++) {
                if (avk_index_loaded(index_) && avk_index_size(index_) == n)
                        return;
                nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
        }
        ck_abort_msg("index: loaded %d with %zu deviations after 15 s, want %zu",
                     avk_index_loaded(index_), avk_index_size(index_), n);
}

static const char *receiver_of(const char *deviation)
{
        struct avk_index_entry e;
        ck_assert_int_eq(avk_index_get(index_, deviation, &e), 0);
        return avk_party_code(e.receiver_party);
}

START_TEST(routings_already_on_the_topic_are_read_and_the_latest_wins)
{
        char err[512];
        produce_routed(DEV_A, 0, "1480", "VGR");
        produce_routed(DEV_A, 1, "1480", "1401");
        produce_routed(DEV_B, 0, "VGR", "1490");
        ck_assert_int_eq(avk_index_start(index_, mk.cfg, err, sizeof(err)), 0);
        await_index(2);
        ck_assert_str_eq(receiver_of(DEV_A), "1401");
        ck_assert_str_eq(receiver_of(DEV_B), "1490");
        struct avk_index_entry e;
        ck_assert_int_eq(avk_index_get(index_, DEV_B, &e), 0);
        ck_assert_str_eq(avk_party_code(e.reporter_party), "VGR");
}
END_TEST

START_TEST(an_empty_topic_is_loaded_and_later_routings_arrive)
{
        char err[512];
        ck_assert_int_eq(avk_index_start(index_, mk.cfg, err, sizeof(err)), 0);
        await_index(0);
        produce_routed(DEV_A, 0, "1480", "VGR");
        await_index(1);
        ck_assert_str_eq(receiver_of(DEV_A), "VGR");
}
END_TEST

START_TEST(a_record_it_cannot_use_is_skipped)
{
        char err[512];
        produce_raw(DEV_A, "garbage", 7);
        produce_routed(DEV_A, 0, "1480", "VGR"); /* same key: after the garbage */
        ck_assert_int_eq(avk_index_start(index_, mk.cfg, err, sizeof(err)), 0);
        await_index(1);
        ck_assert_str_eq(receiver_of(DEV_A), "VGR");
}
END_TEST

START_TEST(records_wait_while_the_registry_is_down_and_none_is_skipped)
{
        char err[512];
        struct fake_registry *registry = fake_registry_start_or_fail();
        ck_assert_int_eq(avk_config_set(mk.cfg, "schema.registry.url", fake_registry_url(registry),
                                        err, sizeof(err)),
                         0);
        avk_registry_t *client = codec_fixture_registry(fake_registry_url(registry));
        avk_codec_destroy(codec);
        codec = codec_fixture_codec(catalog, client); /* Confluent framing, id from the fake */
        produce_routed(DEV_A, 0, "1480", "VGR");
        produce_routed(DEV_B, 0, "VGR", "1490");
        fake_registry_set_mode(registry, FAKE_REGISTRY_FAIL_500);
        ck_assert_int_eq(avk_index_start(index_, mk.cfg, err, sizeof(err)), 0);
        nanosleep(&(struct timespec){2, 0}, NULL);
        ck_assert_msg(!avk_index_loaded(index_), "loaded while the registry is down");
        ck_assert_uint_eq(avk_index_size(index_), 0);
        fake_registry_set_mode(registry, FAKE_REGISTRY_NORMAL);
        await_index(2);
        ck_assert_str_eq(receiver_of(DEV_A), "VGR");
        ck_assert_str_eq(receiver_of(DEV_B), "1490");
        avk_index_destroy(index_);
        index_ = NULL;
        avk_codec_destroy(codec);
        codec = NULL;
        avk_registry_destroy(client);
        fake_registry_stop(registry);
}
END_TEST

static Suite *index_kafka_suite(void)
{
        Suite *s = suite_create("index_kafka");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, routings_already_on_the_topic_are_read_and_the_latest_wins);
        tcase_add_test(tc, an_empty_topic_is_loaded_and_later_routings_arrive);
        tcase_add_test(tc, a_record_it_cannot_use_is_skipped);
        tcase_add_test(tc, records_wait_while_the_registry_is_down_and_none_is_skipped);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(index_kafka_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
