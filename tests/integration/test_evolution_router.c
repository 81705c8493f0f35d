/*
 * Schema evolution in practice (docs/schema-evolution.md): a running router
 * built with DeviationReported v1 (schemas/) meets records of v2
 * (tests/data/deviation_reported_v2.avsc: two new fields with defaults and
 * the new Category symbol TRANSPORT) on the mock cluster, interleaved with v1
 * records, as during a rolling upgrade where a writer went first.
 *
 * With a Schema Registry (the fake one) the v1 router learns v2 by its id,
 * routes both records and reads TRANSPORT as the enum's default OTHER; the
 * v2 bytes as filed - what avvik notify copies unchanged into the receiver's
 * inbox (test_notify) - are read by a v1 party consumer, and a v2 consumer
 * reads v1 records with v2's defaults. Without a
 * registry a v1 reader cannot know v2's fingerprint: the v2 record is
 * dead-lettered with the reason and the partition goes on - which is why the
 * procedure upgrades readers before writers.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/contract/codec.h"
#include "common/util/env.h"
#include "common/kafka/kafka.h"
#include "consumer/route/router.h"
#include "producer/intake/reporter.h"
#include "tests/support/codec_fixture.h"
#include "tests/support/fake_registry.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/test_data.h"

#define REPORTED "deviation.reported"
#define MAX_SEEN 16

static struct mock_kafka mk;
static struct fake_registry *fake;
static avk_catalog_t *v1_catalog, *v2_catalog;
static const avk_schema_t *v1, *v2;
static json_t *sample;

/* Sets up the cluster; with_registry: the fake registry and Confluent framing. */
static void start(int with_registry)
{
        char err[512];
        mock_kafka_start(&mk, 3);
        const char *set[][2] = {
            {"directory.file", AVK_SOURCE_DIR "/data/directory.json"},
            {"routing.rules.file", AVK_SOURCE_DIR "/data/routing-rules.json"},
            {"router.group.id", "router-evolution"},
            {"kafka.log_level", "0"},
            {"kafka.session.timeout.ms", "6000"},
            {"kafka.heartbeat.interval.ms", "500"},
        };
        for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
                ck_assert_int_eq(avk_config_set(mk.cfg, set[i][0], set[i][1], err, sizeof(err)), 0);
        if (with_registry) {
                fake = fake_registry_start_or_fail();
                ck_assert_int_eq(avk_config_set(mk.cfg, "schema.registry.url",
                                                fake_registry_url(fake), err, sizeof(err)),
                                 0);
        }
        v1_catalog = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(v1_catalog != NULL, "%s", err);
        v1 = avk_catalog_by_name(v1_catalog, "DeviationReported");
        char path[512];
        char *text = test_data_read(
            test_data_path("deviation_reported_v2.avsc", path, sizeof(path)), err, sizeof(err));
        ck_assert_msg(text != NULL, "%s", err);
        avk_schema_t *schema = avk_schema_new(text, err, sizeof(err));
        free(text);
        ck_assert_msg(schema != NULL, "%s", err);
        v2_catalog = avk_catalog_new();
        ck_assert_int_eq(avk_catalog_add(v2_catalog, schema, err, sizeof(err)), 0);
        v2 = schema;
        sample = codec_fixture_load_json(AVK_SOURCE_DIR
                                         "/deploy/samples/01-discharge-information-missing.json");
}

static void setup_registry(void)
{
        start(1);
}

static void setup_single_object(void)
{
        start(0);
}

static void teardown(void)
{
        json_decref(sample);
        avk_catalog_destroy(v2_catalog);
        avk_catalog_destroy(v1_catalog);
        fake_registry_stop(fake);
        fake = NULL;
        mock_kafka_stop(&mk);
}

/* ---- writers ---- */

/* Files the sample as v1 with id, through the intake library (a v1 program). */
static void file_v1(const char *id)
{
        char err[512];
        avk_reporter_t *r = avk_reporter_new(mk.cfg, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s", err);
        json_t *doc = json_deep_copy(sample);
        json_object_set_new(doc, "deviation_id", json_string(id));
        struct avk_errors errs;
        char out_id[AVK_ID_SIZE], joined[1024];
        enum avk_result res = avk_reporter_file(r, AVK_KIND_DEVIATION, doc, out_id, &errs);
        ck_assert_msg(res == AVK_FILED, "%s", avk_errors_join(&errs, joined, sizeof(joined)));
        json_decref(doc);
        avk_reporter_destroy(r);
}

/* Produces the sample as v2 with id, category TRANSPORT and the new fields
 * set, framed as a v2 program would: Confluent with the registry, else
 * single-object. */
static void produce_v2(const char *id)
{
        char err[512];
        json_t *doc = json_deep_copy(sample);
        json_object_set_new(doc, "deviation_id", json_string(id));
        json_object_set_new(doc, "category", json_string("TRANSPORT"));
        json_object_set_new(doc, "follow_up_requested", json_true());
        json_object_set_new(doc, "follow_up_contact", json_string("Samordnare, avdelning 31"));
        avk_registry_t *registry = fake ? codec_fixture_registry(fake_registry_url(fake)) : NULL;
        avk_codec_t *codec = codec_fixture_codec(v2_catalog, registry);
        struct codec_message m = codec_fixture_encode(codec, REPORTED, v2, doc);

        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_t *producer = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(producer != NULL, "%s", err);
        ck_assert_int_eq(
            rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(REPORTED), RD_KAFKA_V_KEY(id, strlen(id)),
                              RD_KAFKA_V_VALUE(m.bytes, m.len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
        ck_assert_int_eq(rd_kafka_flush(producer, 30000), 0);
        rd_kafka_destroy(producer);
        free(m.bytes);
        avk_codec_destroy(codec);
        avk_registry_destroy(registry);
        json_decref(doc);
}

/* ---- the v1 router ---- */

struct running {
        avk_router_t *router;
        pthread_t thread;
        int rc;
        char err[512];
};

static void *run(void *arg)
{
        struct running *rr = arg;
        rr->rc = avk_router_run(rr->router, rr->err, sizeof(rr->err));
        return NULL;
}

static void start_router(struct running *rr)
{
        char err[4096];
        rr->router = avk_router_new(mk.cfg, err, sizeof(err));
        ck_assert_msg(rr->router != NULL, "%s", err);
        ck_assert_int_eq(pthread_create(&rr->thread, NULL, run, rr), 0);
}

/* Stops rr's router once it has finished n inputs (60 s at most). */
static void stop_after(struct running *rr, uint64_t n)
{
        struct avk_router_stats s;
        for (int i = 0; i < 1200; i++) {
                avk_router_stats(rr->router, &s);
                if (s.inputs_done >= n)
                        break;
                usleep(50000);
        }
        avk_router_stop(rr->router);
        pthread_join(rr->thread, NULL);
        ck_assert_msg(rr->rc == 0, "%s", rr->err);
        avk_router_destroy(rr->router);
        ck_assert_msg(s.inputs_done >= n, "the router finished %llu inputs of %llu within 60 s",
                      (unsigned long long)s.inputs_done, (unsigned long long)n);
}

/* Runs the router until it has finished n inputs, then stops it. */
static void route(uint64_t n)
{
        struct running rr = {0};
        start_router(&rr);
        stop_after(&rr, n);
}

/* The registry failing since it had answered asked requests: once the router
 * has asked it three more times, nothing is done and the router is not
 * ready; then the registry answers, and the router is stopped once it has
 * finished n inputs. */
static void outage_then_recovery(struct running *rr, int asked, uint64_t n)
{
        char why[256];
        for (int i = 0; i < 600 && fake_registry_seen(fake).requests < asked + 3; i++)
                usleep(50000);
        ck_assert_int_ge(fake_registry_seen(fake).requests, asked + 3);
        ck_assert_int_eq(avk_router_ready(rr->router, why, sizeof(why)), 0);
        struct avk_router_stats st;
        avk_router_stats(rr->router, &st);
        ck_assert_uint_eq(st.inputs_done, 0);
        fake_registry_set_mode(fake, FAKE_REGISTRY_NORMAL);
        stop_after(rr, n);
}

/* ---- reading back ---- */

struct seen {
        size_t n;
        struct {
                char key[64], error[512];
                unsigned char *bytes;
                size_t len;
        } r[MAX_SEEN];
};

static void header(const rd_kafka_message_t *m, const char *name, char *out, size_t size)
{
        rd_kafka_headers_t *hdrs;
        const void *v;
        size_t len;
        out[0] = '\0';
        if (rd_kafka_message_headers(m, &hdrs) == 0 &&
            rd_kafka_header_get_last(hdrs, name, &v, &len) == 0)
                snprintf(out, size, "%.*s", (int)len, (const char *)v);
}

static void collect(void *opaque, const rd_kafka_message_t *m)
{
        struct seen *s = opaque;
        ck_assert_uint_lt(s->n, MAX_SEEN);
        snprintf(s->r[s->n].key, sizeof(s->r[s->n].key), "%.*s", (int)m->key_len,
                 (const char *)m->key);
        header(m, "avk-error", s->r[s->n].error, sizeof(s->r[s->n].error));
        s->r[s->n].bytes = malloc(m->len);
        memcpy(s->r[s->n].bytes, m->payload, m->len);
        s->r[s->n].len = m->len;
        s->n++;
}

static void read_topic(const char *topic, struct seen *s)
{
        memset(s, 0, sizeof(*s));
        mock_kafka_read_all(&mk, topic, collect, s);
}

static void release(struct seen *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->r[i].bytes);
        s->n = 0;
}

/* The index of the record of s with key; the test fails when there is none. */
static size_t find(const struct seen *s, const char *key)
{
        for (size_t i = 0; i < s->n; i++) {
                if (strcmp(s->r[i].key, key) == 0)
                        return i;
        }
        ck_abort_msg("no record with key %s", key);
        return 0;
}

static const char *field(const json_t *doc, const char *name)
{
        return json_string_value(json_object_get(doc, name));
}

#define OLD_ID "0b4f5c1e-7a8d-4e2f-9c3b-1d2e3f4a5b01"
#define NEW_ID "0b4f5c1e-7a8d-4e2f-9c3b-1d2e3f4a5b02"
#define AFTER  "0b4f5c1e-7a8d-4e2f-9c3b-1d2e3f4a5b03"

/* ---- tests ---- */

START_TEST(v1_router_routes_v2_records_and_reads_the_new_symbol_as_the_default)
{
        file_v1(OLD_ID);
        produce_v2(NEW_ID);
        file_v1(AFTER);
        route(3);

        /* Nothing dead-lettered: every record routed, the new one as OTHER. */
        struct seen s;
        read_topic("deviation.deadletter", &s);
        ck_assert_msg(s.n == 0, "dead-lettered: %s", s.n ? s.r[0].error : "");
        release(&s);
        struct avk_env env;
        char err[512];
        ck_assert_int_eq(avk_env_open(&env, mk.cfg, err, sizeof(err)), 0);
        avk_codec_t *reader = codec_fixture_codec(env.catalog, env.registry);
        const avk_schema_t *routed = avk_catalog_by_name(env.catalog, "DeviationRouted");
        read_topic("deviation.routed", &s);
        ck_assert_uint_eq(s.n, 3);
        json_t *r = codec_fixture_decode_json(reader, s.r[find(&s, NEW_ID)].bytes,
                                              s.r[find(&s, NEW_ID)].len, routed);
        ck_assert_str_eq(field(r, "category"), "OTHER");
        ck_assert_str_eq(field(r, "receiver_party"), "VGR");
        json_decref(r);
        r = codec_fixture_decode_json(reader, s.r[find(&s, OLD_ID)].bytes,
                                      s.r[find(&s, OLD_ID)].len, routed);
        ck_assert_str_eq(field(r, "category"), "DISCHARGE_PLANNING");
        json_decref(r);
        release(&s);

        /* The v2 bytes as filed, as a party finds them in its inbox: a v1
         * party consumer reads them (new fields dropped, TRANSPORT as OTHER),
         * a v2 one reads them whole. */
        read_topic(REPORTED, &s);
        size_t i = find(&s, NEW_ID);
        json_t *as_v1 = codec_fixture_decode_json(reader, s.r[i].bytes, s.r[i].len, v1);
        ck_assert_str_eq(field(as_v1, "category"), "OTHER");
        ck_assert_ptr_null(json_object_get(as_v1, "follow_up_requested"));
        json_decref(as_v1);
        avk_registry_t *v2_registry = codec_fixture_registry(fake_registry_url(fake));
        avk_codec_t *v2_reader = codec_fixture_codec(v2_catalog, v2_registry);
        json_t *as_v2 = codec_fixture_decode_json(v2_reader, s.r[i].bytes, s.r[i].len, v2);
        ck_assert_str_eq(field(as_v2, "category"), "TRANSPORT");
        ck_assert(json_is_true(json_object_get(as_v2, "follow_up_requested")));

        /* The reverse: the v1 record, read by a v2 consumer, gets v2's defaults. */
        size_t j = find(&s, OLD_ID);
        json_t *old_as_v2 = codec_fixture_decode_json(v2_reader, s.r[j].bytes, s.r[j].len, v2);
        ck_assert_str_eq(field(old_as_v2, "category"), "DISCHARGE_PLANNING");
        ck_assert(json_is_false(json_object_get(old_as_v2, "follow_up_requested")));
        ck_assert(json_is_null(json_object_get(old_as_v2, "follow_up_contact")));
        json_decref(old_as_v2);
        json_decref(as_v2);
        avk_codec_destroy(v2_reader);
        avk_registry_destroy(v2_registry);
        release(&s);

        /* v1 (ids in filing order: v1 first) and v2 were registered under the
         * topic's subject; the v1 router learnt v2 by its id. */
        ck_assert_int_eq(fake_registry_registrations(fake, REPORTED "-value"), 3);
        char *first = fake_registry_schema(fake, FAKE_REGISTRY_FIRST_ID);
        char *second = fake_registry_schema(fake, FAKE_REGISTRY_FIRST_ID + 1);
        ck_assert_str_eq(first, avk_schema_text(v1));
        ck_assert_str_eq(second, avk_schema_text(v2));
        free(first);
        free(second);
        avk_codec_destroy(reader);
        avk_env_close(&env);
}
END_TEST

/* A registry outage is no bad record: the router reads the records again once
 * the registry answers, is not ready meanwhile, and dead-letters nothing. */
START_TEST(registry_down_the_router_waits_and_dead_letters_nothing)
{
        file_v1(OLD_ID);
        file_v1(NEW_ID); /* the registry answered: Confluent framing, ids registered */
        fake_registry_set_mode(fake, FAKE_REGISTRY_FAIL_500);
        int asked = fake_registry_seen(fake).requests;
        struct running rr = {0};
        start_router(&rr);
        /* Its rebuild and its records need the writer's schema. */
        outage_then_recovery(&rr, asked, 2);
        struct seen dead, routed;
        read_topic("deviation.deadletter", &dead);
        ck_assert_msg(dead.n == 0, "dead-lettered: %s", dead.n ? dead.r[0].error : "");
        read_topic("deviation.routed", &routed);
        find(&routed, OLD_ID);
        find(&routed, NEW_ID);
        release(&dead);
        release(&routed);
}
END_TEST

/* Two deviations in one batch of one partition while the registry is down: the
 * router takes both in one round and waits on the first; the second waits with
 * it, to be read again after it, rather than being tried on its own and moving
 * the partition's read position past the first (docs/architecture.md, "The
 * service kernel"). Both are routed once the registry answers. */
START_TEST(registry_down_a_partitions_later_record_waits_with_the_first)
{
        struct running rr = {0};
        char err[512];
        start_router(&rr);
        struct avk_router_stats st = {0};
        for (int i = 0; i < 600 && st.partitions == 0; i++) {
                usleep(50000);
                avk_router_stats(rr.router, &st);
        }
        ck_assert_int_gt(st.partitions, 0);
        /* Encoded while the registry answers (the writer's schema registered),
         * produced once it does not: the router has never seen the schema. */
        avk_registry_t *registry = codec_fixture_registry(fake_registry_url(fake));
        avk_codec_t *codec = codec_fixture_codec(v1_catalog, registry);
        const char *ids[] = {OLD_ID, NEW_ID};
        struct codec_message m[2];
        for (int i = 0; i < 2; i++) {
                json_t *doc = json_deep_copy(sample);
                json_object_set_new(doc, "deviation_id", json_string(ids[i]));
                m[i] = codec_fixture_encode(codec, REPORTED, v1, doc);
                json_decref(doc);
        }
        fake_registry_set_mode(fake, FAKE_REGISTRY_FAIL_500);
        int asked = fake_registry_seen(fake).requests;
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_t *producer = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(producer != NULL, "%s", err);
        for (int i = 0; i < 2; i++)
                ck_assert_int_eq(
                    rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(REPORTED), RD_KAFKA_V_PARTITION(0),
                                      RD_KAFKA_V_KEY(ids[i], strlen(ids[i])),
                                      RD_KAFKA_V_VALUE(m[i].bytes, m[i].len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                    0);
        ck_assert_int_eq(rd_kafka_flush(producer, 30000), 0);
        rd_kafka_destroy(producer);
        outage_then_recovery(&rr, asked, 2);
        struct seen routed;
        read_topic("deviation.routed", &routed);
        find(&routed, OLD_ID);
        find(&routed, NEW_ID);
        release(&routed);
        for (int i = 0; i < 2; i++)
                free(m[i].bytes);
        avk_codec_destroy(codec);
        avk_registry_destroy(registry);
}
END_TEST

START_TEST(without_a_registry_a_v1_router_dead_letters_v2_and_goes_on)
{
        file_v1(OLD_ID);
        produce_v2(NEW_ID);
        file_v1(AFTER);
        route(3);

        struct seen s;
        read_topic("deviation.deadletter", &s);
        ck_assert_uint_eq(s.n, 1);
        ck_assert_str_eq(s.r[0].key, NEW_ID);
        ck_assert_ptr_nonnull(strstr(s.r[0].error, "unknown schema fingerprint"));
        release(&s);
        read_topic("deviation.routed", &s);
        ck_assert_uint_eq(s.n, 2);
        find(&s, OLD_ID);
        find(&s, AFTER);
        release(&s);
}
END_TEST

static Suite *evolution_router_suite(void)
{
        Suite *suite = suite_create("evolution_router");
        TCase *registry = tcase_create("registry");
        tcase_add_checked_fixture(registry, setup_registry, teardown);
        tcase_set_timeout(registry, 120);
        tcase_add_test(registry,
                       v1_router_routes_v2_records_and_reads_the_new_symbol_as_the_default);
        suite_add_tcase(suite, registry);
        tcase_add_test(registry, registry_down_the_router_waits_and_dead_letters_nothing);
        tcase_add_test(registry, registry_down_a_partitions_later_record_waits_with_the_first);
        TCase *single = tcase_create("single_object");
        tcase_add_checked_fixture(single, setup_single_object, teardown);
        tcase_set_timeout(single, 120);
        tcase_add_test(single, without_a_registry_a_v1_router_dead_letters_v2_and_goes_on);
        suite_add_tcase(suite, single);
        return suite;
}

int main(void)
{
        SRunner *runner = srunner_create(evolution_router_suite());
        srunner_run_all(runner, CK_NORMAL);
        int failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
