/*
 * Where a key lands: every avvik producer, and the spool's drain (which
 * picks partitions itself), puts a key in the partition the Java client's
 * default partitioner gives it - toPositive(murmur2(key)) % partitions - so
 * that records another team writes with Java, Kafka Streams, Connect or
 * kafkajs meet avvik's records of the same deviation (docs/operations.md,
 * "Topics").
 *
 * The expected partitions are the Java algorithm's: the hashes of the first
 * six keys are the test vectors of Kafka's own
 * clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
 * (testMurmur2; apache/kafka commit 8ab0994919752cd4870e771221ba934a6a539a67),
 * the deviation ids' hashes were computed with a port of
 * org.apache.kafka.common.utils.Utils.murmur2 that reproduces those vectors.
 * Every key is chosen so that librdkafka's default (CRC-32) puts it in
 * another partition of the six.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/kafka/kafka.h"
#include "producer/intake/reporter.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/test_data.h"

#define PARTITIONS 6
#define TOPIC      "deviation.reported"

struct java_key {
        const char *key;
        int32_t murmur2;   /* Utils.murmur2(key.getBytes()) */
        int32_t partition; /* toPositive(murmur2) % PARTITIONS */
};

static const struct java_key kafka_vectors[] = {
    {"21", -973932308, 0},
    {"foobar", -790332482, 0},
    {"a-little-bit-long-string", -985981536, 2},
    {"a-little-bit-longer-string", -1486304829, 5},
    {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, 5},
    {"abc", 479470107, 3},
};

static const struct java_key deviation_ids[] = {
    {"3f0c2a5e-8d4b-4c1e-9a7f-0b6d2e4c8a10", -2004446962, 4},
    {"b1e4d7a2-5c3f-4e8b-8d2a-7f9c1e3b5d64", 171862860, 0},
    {"00000000-0000-4000-8000-000000000001", -694496258, 0},
    {"6a2f9e41-1d7c-4b3a-a5e8-c4f2d9b07e13", -639721722, 2},
    {"e7d3c1b9-2a4f-4e6d-8b1c-5f0a9d3e7c25", 1147034718, 0},
};

#define ID_CNT (sizeof(deviation_ids) / sizeof(deviation_ids[0]))

static struct mock_kafka mk;
static char dir[64];

static void setup(void)
{
        mock_kafka_start(&mk, 3);
        ck_assert_int_eq(avk_config_get_int(mk.cfg, "topic.partitions"), PARTITIONS);
        mock_kafka_set(&mk, "kafka.log_level", "0");
        dir[0] = '\0';
}

static void teardown(void)
{
        mock_kafka_stop(&mk);
        if (dir[0])
                test_data_remove_dir(dir);
}

/* The topic's records: key and partition of each. */
struct landed {
        size_t n;
        char key[16][64];
        int32_t partition[16];
};

static void collect(void *opaque, const rd_kafka_message_t *m)
{
        struct landed *l = opaque;
        ck_assert_uint_lt(l->n, 16);
        ck_assert_uint_lt(m->key_len, sizeof(l->key[0]));
        memcpy(l->key[l->n], m->key, m->key_len);
        l->key[l->n][m->key_len] = '\0';
        l->partition[l->n++] = m->partition;
}

/* Each of the cnt keys is in the topic once, in its Java partition. */
static void check_landed(const struct java_key *keys, size_t cnt)
{
        struct landed l = {0};
        ck_assert_uint_eq(mock_kafka_read_all(&mk, TOPIC, collect, &l), cnt);
        for (size_t k = 0; k < cnt; k++) {
                size_t at = 0;
                while (at < l.n && strcmp(l.key[at], keys[k].key) != 0)
                        at++;
                ck_assert_msg(at < l.n, "%s is not in %s", keys[k].key, TOPIC);
                ck_assert_msg(l.partition[at] == keys[k].partition,
                              "%s (murmur2 %d) is in partition %d, the Java client's is %d",
                              keys[k].key, keys[k].murmur2, l.partition[at], keys[k].partition);
        }
}

START_TEST(a_producer_puts_each_key_where_the_java_client_does)
{
        char err[512];
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_t *producer = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(producer != NULL, "%s", err);
        for (size_t k = 0; k < sizeof(kafka_vectors) / sizeof(kafka_vectors[0]); k++)
                mock_kafka_produce(producer, TOPIC, kafka_vectors[k].key, "v", 1);
        rd_kafka_destroy(producer);
        check_landed(kafka_vectors, sizeof(kafka_vectors) / sizeof(kafka_vectors[0]));
}
END_TEST

/* Files deviation_ids[from..to) through r, each answered want. */
static void file_ids(avk_reporter_t *r, json_t *doc, size_t from, size_t to, enum avk_result want)
{
        for (size_t k = from; k < to; k++) {
                char id[AVK_ID_SIZE];
                struct avk_errors errs;
                json_object_set_new(doc, "deviation_id", json_string(deviation_ids[k].key));
                ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, doc, id, &errs), want);
                ck_assert_str_eq(id, deviation_ids[k].key);
        }
}

START_TEST(the_spool_drains_each_key_where_the_java_client_puts_it)
{
        char err[512];
        ck_assert_ptr_nonnull(test_data_temp_dir("avk-partitioner", dir, sizeof(dir)));
        mock_kafka_set(&mk, "intake.spool.dir", dir);
        /* Short, so that filings spool soon while the brokers are down; long enough that
         * none times out on a loaded machine once they are back: a timed-out message aborts
         * its transaction, and the mock shows aborted records to read_committed readers. */
        mock_kafka_set(&mk, "intake.ack.timeout.ms", "5000");
        json_t *doc = test_data_load_json(AVK_SOURCE_DIR
                                          "/deploy/samples/01-discharge-information-missing.json",
                                          err, sizeof(err));
        ck_assert_msg(doc != NULL, "%s", err);
        avk_reporter_t *r = avk_reporter_new(mk.cfg, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s", err);
        file_ids(r, doc, 0, 1, AVK_FILED); /* Kafka up: the producer's partitioner */
        mock_kafka_set_brokers(&mk, 0);
        file_ids(r, doc, 1, ID_CNT, AVK_SPOOLED);
        mock_kafka_set_brokers(&mk, 1);
        struct avk_reporter_stats st;
        for (int i = 0; i < 600; i++) {
                avk_reporter_stats(r, &st);
                if (st.spool_pending == 0)
                        break;
                usleep(100000);
        }
        ck_assert_uint_eq(st.spool_pending, 0);
        avk_reporter_destroy(r);
        json_decref(doc);
        check_landed(deviation_ids, ID_CNT);
}
END_TEST

START_TEST(a_partitioner_other_than_murmur2_is_refused)
{
        char err[512];
        mock_kafka_set(&mk, "kafka.partitioner", "consistent_random");
        ck_assert_ptr_null(avk_kafka_conf(mk.cfg, err, sizeof(err)));
        ck_assert_msg(strstr(err, "kafka.partitioner: is consistent_random") != NULL, "%s", err);
        mock_kafka_set(&mk, "kafka.partitioner", "murmur2_random");
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_conf_destroy(conf);
}
END_TEST

static Suite *partitioner_suite(void)
{
        Suite *s = suite_create("partitioner");
        TCase *tc = tcase_create("mock cluster");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, a_producer_puts_each_key_where_the_java_client_does);
        tcase_add_test(tc, the_spool_drains_each_key_where_the_java_client_puts_it);
        tcase_add_test(tc, a_partitioner_other_than_murmur2_is_refused);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(partitioner_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
