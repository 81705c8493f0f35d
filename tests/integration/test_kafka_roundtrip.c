/*
 * Walking skeleton on the in-process mock cluster: deviations filed through
 * avvik's producer configuration and codec arrive on the topic, keyed by
 * deviation id, and read back equal in content. With produce requests failing
 * transiently, the idempotent producer still delivers each exactly once.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/contract/codec.h"
#include "common/contract/json.h"
#include "common/kafka/kafka.h"
#include "tests/support/codec_fixture.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/test_data.h"

#define TOPIC "deviation.reported"
static struct mock_kafka mk; /* 3 brokers; TOPIC with topic.partitions (6), 3 replicas */
static avk_catalog_t *catalog;
static const avk_schema_t *reported;

static void setup(void)
{
        char err[512];
        mock_kafka_start(&mk, 3);
        catalog = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(catalog != NULL, "%s", err);
        reported = avk_catalog_by_name(catalog, "DeviationReported");
}

static void teardown(void)
{
        avk_catalog_destroy(catalog);
        mock_kafka_stop(&mk);
}

struct delivered {
        int ok, failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        struct delivered *d = opaque;
        if (m->err)
                d->failed++;
        else
                d->ok++;
}

/* Loads deploy/samples/ *.json; returns how many, documents in docs[]. */
static size_t load_samples(json_t **docs, size_t max)
{
        char **paths;
        size_t cnt = test_data_sample_paths(&paths);
        size_t n = 0;
        for (; n < cnt && n < max; n++)
                docs[n] = codec_fixture_load_json(paths[n]);
        test_data_free_paths(paths);
        ck_assert_uint_ge(n, 3);
        return n;
}

static void produce_all(json_t **docs, size_t n, struct delivered *d)
{
        char err[512];
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, d);
        rd_kafka_t *rk = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        avk_codec_t *codec = codec_fixture_codec(catalog, NULL);
        struct avk_json_opts opts = {.flags = AVK_JSON_VALIDATE, .skew_ms = 300000};
        for (size_t i = 0; i < n; i++) {
                avro_value_t v;
                codec_fixture_value(reported, docs[i], &opts, &v);
                const void *buf;
                size_t len;
                ck_assert_int_eq(
                    avk_codec_encode(codec, TOPIC, reported, &v, &buf, &len, err, sizeof(err)), 0);
                const char *key = json_string_value(json_object_get(docs[i], "deviation_id"));
                ck_assert_int_eq(
                    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE((void *)buf, len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                    0);
                avro_value_decref(&v);
        }
        ck_assert_int_eq(rd_kafka_flush(rk, 30000), 0);
        avk_codec_destroy(codec);
        rd_kafka_destroy(rk);
}

struct read_back {
        avk_codec_t *codec;
        json_t **got;
        size_t n, max;
};

static void decode_record(void *opaque, const rd_kafka_message_t *m)
{
        struct read_back *rb = opaque;
        ck_assert_uint_lt(rb->n, rb->max);
        json_t *doc = codec_fixture_decode_json(rb->codec, m->payload, m->len, reported);
        rb->got[rb->n++] = doc;
        /* The key is the deviation id: all its events share a partition. */
        ck_assert_int_eq((int)m->key_len, 36);
        ck_assert(memcmp(m->key, json_string_value(json_object_get(doc, "deviation_id")), 36) == 0);
}

/* Reads the whole topic; returns the records as JSON, in got[]. */
static size_t consume_all(json_t **got, size_t max)
{
        struct read_back rb = {codec_fixture_codec(catalog, NULL), got, 0, max};
        mock_kafka_read_all(&mk, TOPIC, decode_record, &rb);
        avk_codec_destroy(rb.codec);
        return rb.n;
}

static void assert_same_set(json_t **want, size_t nwant, json_t **got, size_t ngot)
{
        ck_assert_uint_eq(ngot, nwant);
        for (size_t i = 0; i < nwant; i++) {
                int found = 0;
                for (size_t j = 0; j < ngot; j++)
                        found += json_equal(want[i], got[j]);
                ck_assert_msg(found == 1, "sample %zu arrived %d times", i, found);
        }
}

/* Files every sample; each must be acknowledged and read back exactly once. */
static void file_samples_and_read_them_back(void)
{
        json_t *docs[16], *got[16];
        size_t n = load_samples(docs, 16);
        struct delivered d = {0};
        produce_all(docs, n, &d);
        ck_assert_int_eq(d.ok, (int)n);
        ck_assert_int_eq(d.failed, 0);
        size_t m = consume_all(got, 16);
        assert_same_set(docs, n, got, m);
        for (size_t i = 0; i < n; i++)
                json_decref(docs[i]);
        for (size_t i = 0; i < m; i++)
                json_decref(got[i]);
}

START_TEST(filed_deviations_are_read_back_equal)
{
        file_samples_and_read_them_back();
}
END_TEST

START_TEST(transient_produce_errors_neither_lose_nor_double)
{
        /* Every produce attempt fails retriably a few times before succeeding. */
        rd_kafka_mock_push_request_errors(
            mk.cluster, MOCK_KAFKA_API_PRODUCE, 4, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
        file_samples_and_read_them_back();
}
END_TEST

static Suite *roundtrip_suite(void)
{
        Suite *s = suite_create("kafka_roundtrip");
        TCase *tc = tcase_create("mock cluster");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, filed_deviations_are_read_back_equal);
        tcase_add_test(tc, transient_produce_errors_neither_lose_nor_double);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(roundtrip_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
