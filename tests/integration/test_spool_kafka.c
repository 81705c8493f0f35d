/*
 * The intake spool against the in-process mock cluster: while Kafka is down
 * documents are answered "spooled" and kept on disk; when Kafka is back they
 * reach it in the order they were sent, each exactly once - also across a
 * restart, and also when a previous process died after producing part of
 * the spool but before recording that it had; and while the Schema
 * Registry cannot be reached, documents are spooled and reach Kafka in the
 * registry's framing once it answers.
 */
#include <check.h>
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/kafka/kafka.h"
#include "producer/intake/reporter.h"
#include "producer/intake/spool.h"
#include "tests/support/fake_registry.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/test_data.h"

#define DOCS 60

static struct mock_kafka mk;
static json_t *doc;
static char dir[64];

static void setup(void)
{
        char err[512];
        mock_kafka_start(&mk, 3);
        json_t *sample = test_data_load_json(
            AVK_SOURCE_DIR "/deploy/samples/01-discharge-information-missing.json", err,
            sizeof(err));
        ck_assert_msg(sample != NULL, "%s", err);
        doc = json_copy(sample);
        json_decref(sample);
        json_object_del(doc, "deviation_id"); /* each filing gets a new id */
        ck_assert_ptr_nonnull(test_data_temp_dir("avk-spool", dir, sizeof(dir)));
        ck_assert_int_eq(avk_config_set(mk.cfg, "intake.ack.timeout.ms", "1500", err, sizeof(err)),
                         0);
        avk_config_set(mk.cfg, "kafka.log_level", "0", err, sizeof(err));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static void teardown(void)
{
        json_decref(doc);
        mock_kafka_stop(&mk);
        nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void use_spool(void)
{
        char err[256];
        ck_assert_int_eq(avk_config_set(mk.cfg, "intake.spool.dir", dir, err, sizeof(err)), 0);
}

static avk_reporter_t *reporter(void)
{
        char err[512];
        avk_reporter_t *r = avk_reporter_new(mk.cfg, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s", err);
        return r;
}

/* Documents sent in order, and what each was answered. */
struct sent {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int n, answered;
        char ids[DOCS][AVK_ID_SIZE];
        enum avk_result result[DOCS];
};

static struct sent sent;

static void on_done(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        (void)id;
        (void)reason;
        int i = (int)(intptr_t)opaque;
        pthread_mutex_lock(&sent.lock);
        sent.result[i] = result;
        sent.answered++;
        pthread_cond_broadcast(&sent.cond);
        pthread_mutex_unlock(&sent.lock);
}

static void send_docs(avk_reporter_t *r, int n)
{
        for (int i = 0; i < n; i++) {
                struct avk_errors errs;
                int at = sent.n++;
                ck_assert_int_eq(avk_reporter_submit(r, AVK_KIND_DEVIATION, doc, sent.ids[at],
                                                     &errs, on_done, (void *)(intptr_t)at),
                                 AVK_FILED);
        }
        pthread_mutex_lock(&sent.lock);
        while (sent.answered < sent.n)
                pthread_cond_wait(&sent.cond, &sent.lock);
        pthread_mutex_unlock(&sent.lock);
}

static void wait_spool_empty(avk_reporter_t *r)
{
        struct avk_reporter_stats st;
        for (int i = 0; i < 600; i++) {
                avk_reporter_stats(r, &st);
                if (st.spool_pending == 0)
                        return;
                usleep(100000);
        }
        ck_abort_msg("the spool still holds %llu documents after 60 s",
                     (unsigned long long)st.spool_pending);
}

/* What the topic holds: each record's id header and partition, in order. */
struct records {
        size_t n;
        char id[4 * DOCS][AVK_ID_SIZE];
        int32_t partition[4 * DOCS];
        unsigned char magic[4 * DOCS]; /* the value's first byte: its framing */
};

static struct records rec;

static void collect(void *opaque, const rd_kafka_message_t *m)
{
        (void)opaque;
        rd_kafka_headers_t *hdrs;
        const void *id;
        size_t len;
        ck_assert_uint_lt(rec.n, 4 * DOCS);
        ck_assert_int_eq(rd_kafka_message_headers(m, &hdrs), 0);
        ck_assert_int_eq(rd_kafka_header_get_last(hdrs, "avk-id", &id, &len), 0);
        ck_assert_uint_eq(len, AVK_ID_SIZE - 1);
        memcpy(rec.id[rec.n], id, len);
        rec.id[rec.n][len] = '\0';
        rec.magic[rec.n] = m->len ? ((const unsigned char *)m->payload)[0] : 0xff;
        rec.partition[rec.n++] = m->partition;
}

static int sent_index(const char *id)
{
        for (int i = 0; i < sent.n; i++)
                if (strcmp(sent.ids[i], id) == 0)
                        return i;
        return -1;
}

/* Every sent document is in Kafka exactly once, and within a partition in
 * the order it was sent. */
static void check_topic(void)
{
        rec.n = 0;
        mock_kafka_read_all(&mk, "deviation.reported", collect, NULL);
        ck_assert_uint_eq(rec.n, (size_t)sent.n);
        int last[64];
        for (int p = 0; p < 64; p++)
                last[p] = -1;
        int seen[DOCS] = {0};
        for (size_t i = 0; i < rec.n; i++) {
                int at = sent_index(rec.id[i]);
                ck_assert_msg(at >= 0, "record %zu has an id never sent: %s", i, rec.id[i]);
                ck_assert_msg(!seen[at]++, "%s is in Kafka twice", rec.id[i]);
                ck_assert_int_lt(rec.partition[i], 64);
                ck_assert_msg(at > last[rec.partition[i]], "%s overtook a document sent before it",
                              rec.id[i]);
                last[rec.partition[i]] = at;
        }
}

START_TEST(kafka_down_spools_and_drains_in_order_when_back)
{
        use_spool();
        avk_reporter_t *r = reporter();
        send_docs(r, 5); /* Kafka up: filed directly */
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(sent.result[i], AVK_FILED);
        mock_kafka_set_brokers(&mk, 0);
        send_docs(r, 40);
        for (int i = 5; i < 45; i++)
                ck_assert_msg(sent.result[i] == AVK_SPOOLED, "document %d answered %d", i,
                              sent.result[i]);
        struct avk_reporter_stats st;
        avk_reporter_stats(r, &st);
        ck_assert_uint_eq(st.spool_pending, 40);
        ck_assert_uint_eq(st.spooled, 40);
        mock_kafka_set_brokers(&mk, 1);
        wait_spool_empty(r);
        send_docs(r, 5); /* back to direct */
        avk_reporter_destroy(r);
        check_topic();
}
END_TEST

START_TEST(spooled_documents_survive_a_restart)
{
        use_spool();
        avk_reporter_t *r = reporter();
        mock_kafka_set_brokers(&mk, 0);
        send_docs(r, 30);
        for (int i = 0; i < 30; i++)
                ck_assert_int_eq(sent.result[i], AVK_SPOOLED);
        avk_reporter_destroy(r); /* Kafka still down: the spool keeps them */
        mock_kafka_set_brokers(&mk, 1);
        r = reporter();
        wait_spool_empty(r);
        avk_reporter_destroy(r);
        check_topic();
}
END_TEST

/* Produces spool entries as a drain would, with its MAYBE records, but
 * records no DONE: the state a crash mid-drain leaves behind. */
static void drain_partly_then_crash(size_t produce)
{
        char err[512];
        avk_spool_t *spool = avk_spool_open(dir, 1 << 30, err, sizeof(err));
        ck_assert_msg(spool != NULL, "%s", err);
        const struct avk_spool_entry *batch[DOCS];
        size_t n = avk_spool_batch(spool, batch, DOCS);
        ck_assert_uint_ge(n, produce);
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_ptr_nonnull(conf);
        rd_kafka_t *p = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(p != NULL, "%s", err);
        int32_t partition[DOCS];
        int64_t scan_from[DOCS];
        for (size_t i = 0; i < produce; i++) {
                partition[i] = (int32_t)(i % 3);
                scan_from[i] = 0;
        }
        ck_assert_int_eq(
            avk_spool_maybe(spool, batch, partition, scan_from, produce, err, sizeof(err)), 0);
        for (size_t i = 0; i < produce; i++)
                ck_assert_int_eq(rd_kafka_producev(
                                     p, RD_KAFKA_V_TOPIC(batch[i]->topic),
                                     RD_KAFKA_V_PARTITION(partition[i]),
                                     RD_KAFKA_V_KEY(batch[i]->key, strlen(batch[i]->key)),
                                     RD_KAFKA_V_VALUE((void *)batch[i]->value, batch[i]->value_len),
                                     RD_KAFKA_V_HEADER("avk-id", batch[i]->id, -1),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                                 0);
        ck_assert_int_eq(rd_kafka_flush(p, 10000), 0);
        rd_kafka_destroy(p);
        avk_spool_close(spool);
}

START_TEST(documents_a_crashed_drain_produced_are_not_produced_twice)
{
        use_spool();
        avk_reporter_t *r = reporter();
        mock_kafka_set_brokers(&mk, 0);
        send_docs(r, 25);
        avk_reporter_destroy(r);
        mock_kafka_set_brokers(&mk, 1);
        drain_partly_then_crash(15);
        r = reporter();
        wait_spool_empty(r);
        avk_reporter_destroy(r);
        /* Order is not checked here: the crashed drain put the first 15 on
         * partitions of its own choosing. */
        rec.n = 0;
        mock_kafka_read_all(&mk, "deviation.reported", collect, NULL);
        ck_assert_uint_eq(rec.n, (size_t)sent.n);
        for (int i = 0; i < sent.n; i++) {
                int copies = 0;
                for (size_t j = 0; j < rec.n; j++)
                        copies += strcmp(rec.id[j], sent.ids[i]) == 0;
                ck_assert_msg(copies == 1, "%s is in Kafka %d times", sent.ids[i], copies);
        }
}
END_TEST

START_TEST(registry_down_at_start_spools_and_drains_once_it_answers)
{
        char err[256];
        struct fake_registry *registry = fake_registry_start_or_fail();
        fake_registry_set_mode(registry, FAKE_REGISTRY_FAIL_500);
        ck_assert_int_eq(avk_config_set(mk.cfg, "schema.registry.url", fake_registry_url(registry),
                                        err, sizeof(err)),
                         0);
        use_spool();
        avk_reporter_t *r = reporter();
        send_docs(r, 20);
        for (int i = 0; i < 20; i++)
                ck_assert_msg(sent.result[i] == AVK_SPOOLED, "document %d answered %d", i,
                              sent.result[i]);
        struct avk_reporter_stats st;
        for (int i = 0; i < 100 && (avk_reporter_stats(r, &st), st.registry_up); i++)
                usleep(100000);
        ck_assert_msg(!st.registry_up, "the drain did not notice the registry is down");
        ck_assert_uint_eq(st.spool_pending, 20);
        fake_registry_set_mode(registry, FAKE_REGISTRY_NORMAL);
        wait_spool_empty(r);
        avk_reporter_stats(r, &st);
        ck_assert(st.registry_up);
        send_docs(r, 5); /* back to direct */
        avk_reporter_destroy(r);
        check_topic();
        for (size_t i = 0; i < rec.n; i++)
                ck_assert_msg(rec.magic[i] == 0x00, "record %zu is not in Confluent framing (%02x)",
                              i, rec.magic[i]);
        fake_registry_stop(registry);
}
END_TEST

START_TEST(without_a_spool_kafka_down_is_unavailable)
{
        avk_reporter_t *r = reporter();
        mock_kafka_set_brokers(&mk, 0);
        send_docs(r, 3);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(sent.result[i], AVK_UNAVAILABLE);
        mock_kafka_set_brokers(&mk, 1);
        avk_reporter_destroy(r);
}
END_TEST

static void reset_sent(void)
{
        sent = (struct sent){.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
}

static Suite *spool_kafka_suite(void)
{
        Suite *s = suite_create("spool on Kafka");
        TCase *tc = tcase_create("mock cluster");
        tcase_add_checked_fixture(tc, reset_sent, NULL);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 180);
        tcase_add_test(tc, kafka_down_spools_and_drains_in_order_when_back);
        tcase_add_test(tc, spooled_documents_survive_a_restart);
        tcase_add_test(tc, documents_a_crashed_drain_produced_are_not_produced_twice);
        tcase_add_test(tc, without_a_spool_kafka_down_is_unavailable);
        tcase_add_test(tc, registry_down_at_start_spools_and_drains_once_it_answers);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(spool_kafka_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
