/*
 * Walking skeleton on the in-process mock cluster: deviations filed through
 * avvik's producer configuration and codec arrive on the topic, keyed by
 * deviation id, and read back equal in content. With produce requests failing
 * transiently, the idempotent producer still delivers each exactly once.
 */
#include <check.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/codec.h"
#include "common/json.h"
#include "common/kafka.h"

#define TOPIC "deviation.reported"
/* Kafka protocol ApiKey of Produce; librdkafka keeps its constants private. */
#define KAFKA_API_PRODUCE 0

static rd_kafka_t *mock_owner;
static rd_kafka_mock_cluster_t *mock;
static avk_config_t *cfg;
static avk_catalog_t *catalog;
static const avk_schema_t *reported;

static void setup(void)
{
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
        mock_owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        ck_assert_msg(mock_owner != NULL, "%s", err);
        mock = rd_kafka_mock_cluster_new(mock_owner, 3);
        ck_assert_ptr_nonnull(mock);
        ck_assert_int_eq(rd_kafka_mock_topic_create(mock, TOPIC, 6, 3), 0);
        cfg = avk_config_new();
        ck_assert_int_eq(avk_config_set(cfg, "kafka.bootstrap.servers",
                                        rd_kafka_mock_cluster_bootstraps(mock), err, sizeof(err)),
                         0);
        catalog = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(catalog != NULL, "%s", err);
        reported = avk_catalog_by_name(catalog, "DeviationReported");
}

static void teardown(void)
{
        avk_catalog_destroy(catalog);
        avk_config_destroy(cfg);
        rd_kafka_mock_cluster_destroy(mock);
        rd_kafka_destroy(mock_owner);
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
        glob_t g;
        ck_assert_int_eq(glob(AVK_SOURCE_DIR "/deploy/samples/*.json", 0, NULL, &g), 0);
        size_t n = 0;
        for (size_t i = 0; i < g.gl_pathc && n < max; i++) {
                json_error_t jerr;
                docs[n] = json_load_file(g.gl_pathv[i], 0, &jerr);
                ck_assert_msg(docs[n] != NULL, "%s: %s", g.gl_pathv[i], jerr.text);
                n++;
        }
        globfree(&g);
        ck_assert_uint_ge(n, 3);
        return n;
}

static void produce_all(json_t **docs, size_t n, struct delivered *d)
{
        char err[512];
        rd_kafka_conf_t *conf = avk_kafka_conf(cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, d);
        rd_kafka_t *rk = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        avk_codec_t *codec = avk_codec_new(catalog, NULL);
        avro_value_t v;
        avro_generic_value_new(avk_schema_iface(reported), &v);
        struct avk_json_opts opts = {.flags = AVK_JSON_VALIDATE, .skew_ms = 300000};
        for (size_t i = 0; i < n; i++) {
                struct avk_errors errs;
                avk_errors_init(&errs);
                ck_assert_int_eq(avk_json_to_avro(reported, docs[i], &v, &opts, &errs), 0);
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
        }
        ck_assert_int_eq(rd_kafka_flush(rk, 30000), 0);
        avro_value_decref(&v);
        avk_codec_destroy(codec);
        rd_kafka_destroy(rk);
}

/* Reads the whole topic; returns the records as JSON, in got[]. */
static size_t consume_all(json_t **got, size_t max)
{
        char err[512];
        rd_kafka_conf_t *conf = avk_kafka_conf(cfg, err, sizeof(err));
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", NULL, 0);
        rd_kafka_t *rk = avk_kafka_consumer_new(conf, "test-roundtrip", err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(6);
        for (int p = 0; p < 6; p++)
                rd_kafka_topic_partition_list_add(parts, TOPIC, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        ck_assert_int_eq(rd_kafka_assign(rk, parts), 0);
        rd_kafka_topic_partition_list_destroy(parts);
        avk_codec_t *codec = avk_codec_new(catalog, NULL);
        avro_value_t v;
        avro_generic_value_new(avk_schema_iface(reported), &v);
        size_t n = 0;
        int eofs = 0;
        while (eofs < 6) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 5000);
                ck_assert_msg(m != NULL, "no message or end of partition within 5 s");
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eofs++;
                } else {
                        ck_assert_msg(!m->err, "%s", rd_kafka_message_errstr(m));
                        ck_assert_msg(avk_codec_decode(codec, m->payload, m->len, reported, &v, err,
                                                       sizeof(err)) == 0,
                                      "%s", err);
                        ck_assert_uint_lt(n, max);
                        got[n] = avk_json_from_avro(reported, &v, err, sizeof(err));
                        /* The key is the deviation id: all its events share a partition. */
                        ck_assert_int_eq((int)m->key_len, 36);
                        ck_assert(memcmp(m->key,
                                         json_string_value(json_object_get(got[n], "deviation_id")),
                                         36) == 0);
                        n++;
                }
                rd_kafka_message_destroy(m);
        }
        avro_value_decref(&v);
        avk_codec_destroy(codec);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return n;
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

START_TEST(filed_deviations_are_read_back_equal)
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
END_TEST

START_TEST(transient_produce_errors_neither_lose_nor_double)
{
        json_t *docs[16], *got[16];
        size_t n = load_samples(docs, 16);
        /* Every produce attempt fails retriably a few times before succeeding. */
        rd_kafka_mock_push_request_errors(
            mock, KAFKA_API_PRODUCE, 4, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
        struct delivered d = {0};
        produce_all(docs, n, &d);
        ck_assert_int_eq(d.ok, (int)n);
        size_t m = consume_all(got, 16);
        assert_same_set(docs, n, got, m);
        for (size_t i = 0; i < n; i++)
                json_decref(docs[i]);
        for (size_t i = 0; i < m; i++)
                json_decref(got[i]);
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
