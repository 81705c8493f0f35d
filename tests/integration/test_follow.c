/*
 * avk_follow (the views that follow a topic: the gateway's view, the
 * dashboard) against the in-process mock cluster and the fake Schema
 * Registry: records in Confluent framing under schema ids the follower has
 * not fetched yet wait out a registry outage - nothing past the first of them
 * is delivered, nothing is skipped, a loading follower is not loaded - and
 * are delivered exactly once and in order when the registry answers again;
 * an id the registry says does not exist, or whose schema does not parse, is
 * skipped and counted, not waited on (docs/operations.md, "While the Schema
 * Registry is down").
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/contract/codec.h"
#include "common/contract/registry.h"
#include "common/contract/schema.h"
#include "common/kafka/follow.h"
#include "common/kafka/kafka.h"
#include "tests/support/codec_fixture.h"
#include "tests/support/fake_registry.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/wait_for.h"

#define TOPIC      "avvik.test.follow"
#define PARTITIONS 3
#define MAX_SEQ    128
#define WAIT_MS    20000
#define TRAFFIC_MS 3000 /* of records on another partition while one waits */

/* Version 2 adds a field with a default: another schema id, read by version 1. */
#define SCHEMA_V1                                                                                  \
        "{\"type\":\"record\",\"name\":\"FollowProbe\",\"namespace\":\"se.avvik.test\","           \
        "\"fields\":[{\"name\":\"seq\",\"type\":\"long\"}]}"
#define SCHEMA_V2                                                                                  \
        "{\"type\":\"record\",\"name\":\"FollowProbe\",\"namespace\":\"se.avvik.test\","           \
        "\"fields\":[{\"name\":\"seq\",\"type\":\"long\"},"                                        \
        "{\"name\":\"note\",\"type\":\"string\",\"default\":\"\"}]}"

/* How each record is written: single-object framing needs no registry. */
enum framing { SINGLE_OBJECT, CONFLUENT_V1, CONFLUENT_V2 };

static struct mock_kafka mk;
static struct fake_registry *registry;
static rd_kafka_t *producer;
static avk_catalog_t *v1_catalog, *v2_catalog, *reader_catalog;
static avk_registry_t *writer_registry;
static avk_codec_t *single_object, *confluent_v1, *confluent_v2;

/* What the follower under test delivered, skipped, and when it was loaded. */
static struct {
        pthread_t thread;
        atomic_int stopping;
        avk_registry_t *registry;
        avk_codec_t *codec;
        rd_kafka_t *rk;
        struct avk_follow follow;
        int seq_slot; /* of seq in the reader's compiled program */
        pthread_mutex_t lock;
        int64_t seq[PARTITIONS][MAX_SEQ];
        int cnt[PARTITIONS];
        atomic_int applied, skipped, loaded, applied_when_loaded;
} fol;

static avk_catalog_t *catalog_of(const char *schema_text)
{
        char err[256];
        avk_catalog_t *catalog = avk_catalog_new();
        avk_schema_t *schema = avk_schema_new(schema_text, err, sizeof(err));
        ck_assert_msg(schema != NULL, "%s", err);
        ck_assert_msg(avk_catalog_add(catalog, schema, err, sizeof(err)) == 0, "%s", err);
        return catalog;
}

static const avk_schema_t *probe(const avk_catalog_t *catalog)
{
        return avk_catalog_by_name(catalog, "se.avvik.test.FollowProbe");
}

static void setup(void)
{
        char err[512];
        mock_kafka_start(&mk, 1);
        mock_kafka_set(&mk, "kafka.fetch.wait.max.ms", "10"); /* records arrive at once */
        mock_kafka_set(&mk, "kafka.log_level", "3");
        ck_assert_int_eq(rd_kafka_mock_topic_create(mk.cluster, TOPIC, PARTITIONS, 1), 0);
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        producer = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(producer != NULL, "%s", err);
        registry = fake_registry_start_or_fail();
        v1_catalog = catalog_of(SCHEMA_V1);
        v2_catalog = catalog_of(SCHEMA_V2);
        reader_catalog = catalog_of(SCHEMA_V1);
        writer_registry = codec_fixture_registry(fake_registry_url(registry));
        single_object = codec_fixture_codec(v1_catalog, NULL);
        confluent_v1 = codec_fixture_codec(v1_catalog, writer_registry);
        confluent_v2 = codec_fixture_codec(v2_catalog, writer_registry);
        memset(&fol, 0, sizeof(fol));
        pthread_mutex_init(&fol.lock, NULL);
}

static void teardown(void)
{
        pthread_mutex_destroy(&fol.lock);
        avk_codec_destroy(single_object);
        avk_codec_destroy(confluent_v1);
        avk_codec_destroy(confluent_v2);
        avk_registry_destroy(writer_registry);
        avk_catalog_destroy(v1_catalog);
        avk_catalog_destroy(v2_catalog);
        avk_catalog_destroy(reader_catalog);
        fake_registry_stop(registry);
        rd_kafka_destroy(producer);
        mock_kafka_stop(&mk);
}

/* The record seq written as framing says, its bytes for the test to free.
 * Confluent framing registers its schema: write while the registry answers. */
static struct codec_message record(enum framing framing, int64_t seq)
{
        json_t *doc = json_pack("{s:I}", "seq", (json_int_t)seq);
        avk_codec_t *codec = framing == SINGLE_OBJECT  ? single_object
                             : framing == CONFLUENT_V1 ? confluent_v1
                                                       : confluent_v2;
        const avk_catalog_t *catalog = framing == CONFLUENT_V2 ? v2_catalog : v1_catalog;
        struct codec_message msg = codec_fixture_encode(codec, TOPIC, probe(catalog), doc);
        json_decref(doc);
        return msg;
}

static void produce(int partition, const struct codec_message *msg)
{
        ck_assert_int_eq(
            rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_VALUE(msg->bytes, msg->len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
}

/* The records every test writes, per partition in order: each partition
 * starts with records any reader decodes, then one under a schema id the
 * follower has not fetched, then more of both. */
struct planned {
        int partition;
        enum framing framing;
};

static const struct planned plan[] = {
    {0, SINGLE_OBJECT}, {0, SINGLE_OBJECT}, {0, CONFLUENT_V1},  {0, SINGLE_OBJECT},
    {0, CONFLUENT_V2},  {0, SINGLE_OBJECT}, {1, SINGLE_OBJECT}, {1, CONFLUENT_V2},
    {1, SINGLE_OBJECT}, {2, SINGLE_OBJECT}, {2, SINGLE_OBJECT},
};
#define PLANNED_CNT ((int)(sizeof(plan) / sizeof(plan[0])))

/* The planned records, encoded now (the registry must answer) for
 * produce_plan() to write later; each record's seq is its place in its
 * partition. */
static void encode_plan(struct codec_message *msgs)
{
        int next[PARTITIONS] = {0};
        for (int i = 0; i < PLANNED_CNT; i++)
                msgs[i] = record(plan[i].framing, next[plan[i].partition]++);
}

static void produce_plan(struct codec_message *msgs)
{
        for (int i = 0; i < PLANNED_CNT; i++) {
                produce(plan[i].partition, &msgs[i]);
                free(msgs[i].bytes);
        }
        ck_assert_int_eq(rd_kafka_flush(producer, 10000), 0);
}

/* How many records of partition the plan has before its first in Confluent framing. */
static int decodable_before_first_confluent(int partition)
{
        int n = 0;
        for (int i = 0; i < PLANNED_CNT; i++) {
                if (plan[i].partition != partition)
                        continue;
                if (plan[i].framing != SINGLE_OBJECT)
                        return n;
                n++;
        }
        return n;
}

static int planned_in(int partition)
{
        int n = 0;
        for (int i = 0; i < PLANNED_CNT; i++)
                n += plan[i].partition == partition;
        return n;
}

/* ---- the follower under test ------------------------------------------- */

static int apply_slots(void *opaque, const rd_kafka_message_t *m, const avk_avroprog_slot_t *slots,
                       char *errstr, size_t errstr_size)
{
        (void)opaque;
        (void)errstr;
        (void)errstr_size;
        int64_t seq = slots[fol.seq_slot].v.i;
        pthread_mutex_lock(&fol.lock);
        ck_assert_int_lt(m->partition, PARTITIONS);
        ck_assert_int_lt(fol.cnt[m->partition], MAX_SEQ);
        fol.seq[m->partition][fol.cnt[m->partition]++] = seq;
        pthread_mutex_unlock(&fol.lock);
        atomic_fetch_add(&fol.applied, 1);
        return 0;
}

static void count_skipped(void *opaque)
{
        (void)opaque;
        atomic_fetch_add(&fol.skipped, 1);
}

static void mark_loaded(void *opaque)
{
        (void)opaque;
        atomic_store(&fol.applied_when_loaded, atomic_load(&fol.applied));
        atomic_store(&fol.loaded, 1);
}

static void *follow_thread(void *arg)
{
        (void)arg;
        avk_follow_run(&fol.follow);
        return NULL;
}

/* Starts a follower of TOPIC with a registry client and a codec of its own:
 * it has fetched no schema id yet. */
static void start_following(void)
{
        char err[512];
        fol.registry = codec_fixture_registry(fake_registry_url(registry));
        fol.codec = codec_fixture_codec(reader_catalog, fol.registry);
        const avk_avroprog_t *prog = avk_codec_program(fol.codec, probe(reader_catalog));
        ck_assert_ptr_nonnull(prog);
        fol.seq_slot = avk_avroprog_slot(prog, "seq");
        ck_assert_int_ge(fol.seq_slot, 0);
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        fol.rk = avk_kafka_consumer_new(conf, "avvik-test-follow", err, sizeof(err));
        ck_assert_msg(fol.rk != NULL, "%s", err);
        fol.follow = (struct avk_follow){
            .rk = fol.rk,
            .codec = fol.codec,
            .schema = probe(reader_catalog),
            .topic = TOPIC,
            .component = "follow-test",
            .stopping = &fol.stopping,
            .apply_slots = apply_slots,
            .skipped = count_skipped,
            .loaded = mark_loaded,
        };
        ck_assert_int_eq(pthread_create(&fol.thread, NULL, follow_thread, NULL), 0);
}

static void stop_following(void)
{
        atomic_store(&fol.stopping, 1);
        pthread_join(fol.thread, NULL);
        avk_kafka_consumer_close(fol.rk, 5000, "follow-test");
        rd_kafka_destroy_flags(fol.rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        avk_codec_destroy(fol.codec);
        avk_registry_destroy(fol.registry);
}

static int delivered_in(int partition)
{
        pthread_mutex_lock(&fol.lock);
        int n = fol.cnt[partition];
        pthread_mutex_unlock(&fol.lock);
        return n;
}

/* Fails unless partition's records were delivered once each, in order: 0 .. want-1. */
static void assert_delivered_in_order(int partition, int want)
{
        pthread_mutex_lock(&fol.lock);
        int cnt = fol.cnt[partition];
        int64_t seq[MAX_SEQ];
        memcpy(seq, fol.seq[partition], sizeof(seq));
        pthread_mutex_unlock(&fol.lock);
        ck_assert_msg(cnt == want, "partition %d: %d records delivered, want %d", partition, cnt,
                      want);
        for (int i = 0; i < cnt; i++)
                ck_assert_msg(seq[i] == i, "partition %d: record %d is seq %lld, want %d",
                              partition, i, (long long)seq[i], i);
}

/* While the registry has no answer (500s, asked again and again): each
 * partition delivered what precedes its first record under an unfetched
 * schema id, nothing past it, nothing skipped. */
static void assert_held_at_the_first_unfetched_id(void)
{
        for (int p = 0; p < PARTITIONS; p++)
                WAIT_FOR_MS(delivered_in(p), decodable_before_first_confluent(p), WAIT_MS);
        int asked = fake_registry_seen(registry).requests;
        int64_t until = wait_for_now_ms() + WAIT_MS;
        while (fake_registry_seen(registry).requests < asked + 4 && wait_for_now_ms() < until)
                usleep(20000);
        for (int p = 0; p < PARTITIONS; p++)
                assert_delivered_in_order(p, decodable_before_first_confluent(p));
        ck_assert_int_eq(atomic_load(&fol.skipped), 0);
        ck_assert_int_ge(fake_registry_seen(registry).requests, asked + 4);
}

/* ---- the tests ---------------------------------------------------------- */

START_TEST(following_waits_out_a_registry_outage_and_delivers_every_record_once_in_order)
{
        struct codec_message msgs[PLANNED_CNT];
        encode_plan(msgs);
        start_following();
        WAIT_FOR_MS(atomic_load(&fol.loaded), 1, WAIT_MS); /* the empty topic */
        fake_registry_set_mode(registry, FAKE_REGISTRY_FAIL_500);
        produce_plan(msgs);
        assert_held_at_the_first_unfetched_id();
        fake_registry_set_mode(registry, FAKE_REGISTRY_NORMAL);
        WAIT_FOR_MS(atomic_load(&fol.applied), PLANNED_CNT, WAIT_MS);
        usleep(500000); /* time for a record delivered twice to show */
        stop_following();
        for (int p = 0; p < PARTITIONS; p++)
                assert_delivered_in_order(p, planned_in(p));
        ck_assert_int_eq(atomic_load(&fol.skipped), 0);
}
END_TEST

/* Issue 18 point 2: a view loaded while the registry is away is late, not
 * short - never loaded with fewer records than the topic held. */
START_TEST(loading_waits_out_a_registry_outage_and_is_loaded_only_with_every_record)
{
        struct codec_message msgs[PLANNED_CNT];
        encode_plan(msgs);
        produce_plan(msgs);
        fake_registry_set_mode(registry, FAKE_REGISTRY_FAIL_500);
        start_following();
        assert_held_at_the_first_unfetched_id();
        ck_assert_int_eq(atomic_load(&fol.loaded), 0);
        fake_registry_set_mode(registry, FAKE_REGISTRY_NORMAL);
        WAIT_FOR_MS(atomic_load(&fol.loaded), 1, WAIT_MS);
        ck_assert_int_eq(atomic_load(&fol.applied_when_loaded), PLANNED_CNT);
        usleep(500000);
        stop_following();
        for (int p = 0; p < PARTITIONS; p++)
                assert_delivered_in_order(p, planned_in(p));
        ck_assert_int_eq(atomic_load(&fol.skipped), 0);
}
END_TEST

/* A final answer is no outage: an id the registry does not have (404) and an
 * id whose schema does not parse are skipped and counted at once, and the
 * partition goes on. */
START_TEST(unknown_or_unparsable_schema_id_is_skipped_and_counted_not_waited_on)
{
        int32_t unparsable = fake_registry_add_schema(registry, "{\"type\":\"no such type\"}");
        ck_assert_int_ge(unparsable, FAKE_REGISTRY_FIRST_ID);
        int32_t unknown = unparsable + 1000;
        struct codec_message first = record(SINGLE_OBJECT, 0), framed = record(CONFLUENT_V1, 1),
                             last = record(SINGLE_OBJECT, 1);
        produce(0, &first);
        for (int i = 0; i < 2; i++) {
                int32_t id = i == 0 ? unknown : unparsable;
                framed.bytes[1] = (unsigned char)(id >> 24);
                framed.bytes[2] = (unsigned char)(id >> 16);
                framed.bytes[3] = (unsigned char)(id >> 8);
                framed.bytes[4] = (unsigned char)id;
                produce(0, &framed);
        }
        produce(0, &last);
        ck_assert_int_eq(rd_kafka_flush(producer, 10000), 0);
        free(first.bytes);
        free(framed.bytes);
        free(last.bytes);
        start_following();
        WAIT_FOR_MS(atomic_load(&fol.loaded), 1, WAIT_MS);
        stop_following();
        ck_assert_int_eq(atomic_load(&fol.skipped), 2);
        ck_assert_int_eq(atomic_load(&fol.applied_when_loaded), 2);
        assert_delivered_in_order(0, 2);
}
END_TEST

/* One partition waiting does not make the registry asked after every record
 * of the others: the wait between asks grows (200 ms doubling), as it would
 * without them. */
START_TEST(the_wait_grows_while_other_partitions_are_read)
{
        struct codec_message waiting = record(CONFLUENT_V1, 0);
        start_following();
        WAIT_FOR_MS(atomic_load(&fol.loaded), 1, WAIT_MS);
        fake_registry_set_mode(registry, FAKE_REGISTRY_FAIL_500);
        int before = fake_registry_seen(registry).requests;
        produce(0, &waiting);
        ck_assert_int_eq(rd_kafka_flush(producer, 10000), 0);
        free(waiting.bytes);
        WAIT_FOR_MS(fake_registry_seen(registry).requests, before + 1, WAIT_MS);
        int first = fake_registry_seen(registry).requests;
        int64_t from = wait_for_now_ms();
        int traffic = 0;
        while (wait_for_now_ms() - from < TRAFFIC_MS) {
                struct codec_message msg = record(SINGLE_OBJECT, traffic++);
                produce(1, &msg);
                ck_assert_int_eq(rd_kafka_flush(producer, 10000), 0);
                free(msg.bytes);
                usleep(50000);
        }
        int asked = fake_registry_seen(registry).requests - first;
        /* 200 + 400 + 800 + 1600 ms: up to four more asks within TRAFFIC_MS (14 when
         * each record of partition 1 started the wait again at 200 ms) */
        ck_assert_msg(asked <= 6, "the registry was asked %d times in %d ms of other records",
                      asked, TRAFFIC_MS);
        WAIT_FOR_MS(delivered_in(1), traffic, WAIT_MS);
        fake_registry_set_mode(registry, FAKE_REGISTRY_NORMAL);
        WAIT_FOR_MS(delivered_in(0), 1, WAIT_MS);
        stop_following();
        assert_delivered_in_order(0, 1);
        assert_delivered_in_order(1, traffic);
        ck_assert_int_eq(atomic_load(&fol.skipped), 0);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("follow");
        TCase *tc = tcase_create("mock cluster and fake registry");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(
            tc, following_waits_out_a_registry_outage_and_delivers_every_record_once_in_order);
        tcase_add_test(tc,
                       loading_waits_out_a_registry_outage_and_is_loaded_only_with_every_record);
        tcase_add_test(tc, the_wait_grows_while_other_partitions_are_read);
        tcase_add_test(tc, unknown_or_unparsable_schema_id_is_skipped_and_counted_not_waited_on);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
