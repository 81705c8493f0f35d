/*
 * The bounded close of a group consumer (avk_kafka_consumer_close()) in the
 * router against the in-process mock cluster: a router stopped while its
 * group rebalances (a second router just joined) stops, and the inputs it
 * routed stay committed; a router whose brokers are all gone stops too,
 * giving up on the group after consumer.close.timeout.ms. A stop that hangs
 * fails the test after a watchdog's wait instead of blocking the suite.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/kafka/kafka.h"
#include "consumer/route/router.h"
#include "producer/intake/reporter.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/test_data.h"

#define STOP_WATCHDOG_S 60 /* a stop not done by then hangs: far above the close bound */
#define DEVIATIONS      12

static struct mock_kafka mk;
static json_t *sample;

static void setup(void)
{
        mock_kafka_start(&mk, 1);
        mock_kafka_set(&mk, "directory.file", AVK_SOURCE_DIR "/data/directory.json");
        mock_kafka_set(&mk, "routing.rules.file", AVK_SOURCE_DIR "/data/routing-rules.json");
        mock_kafka_set(&mk, "kafka.log_level", "0");
        mock_kafka_set(&mk, "kafka.session.timeout.ms", "6000");
        mock_kafka_set(&mk, "kafka.heartbeat.interval.ms", "500");
        mock_kafka_set(&mk, "kafka.auto.commit.interval.ms", "100");
        mock_kafka_set(&mk, "consumer.close.timeout.ms", "3000");
        char err[512];
        sample = test_data_load_json(AVK_SOURCE_DIR
                                     "/deploy/samples/01-discharge-information-missing.json",
                                     err, sizeof(err));
        ck_assert_msg(sample != NULL, "%s", err);
        json_object_del(sample, "deviation_id");
        json_object_set_new(sample, "receiver", json_object());
}

static void teardown(void)
{
        json_decref(sample);
        mock_kafka_stop(&mk);
}

/* ---- a router in a thread: run, then destroy, so that both are watched ---- */

struct running {
        avk_router_t *router;
        pthread_t thread;
        int rc;
        atomic_int done;
        char err[512];
};

static void *run(void *arg)
{
        struct running *rr = arg;
        rr->rc = avk_router_run(rr->router, rr->err, sizeof(rr->err));
        avk_router_destroy(rr->router);
        atomic_store(&rr->done, 1);
        return NULL;
}

static void start_router(struct running *rr, const char *group)
{
        char err[4096];
        memset(rr, 0, sizeof(*rr));
        mock_kafka_set(&mk, "router.group.id", group);
        rr->router = avk_router_new(mk.cfg, err, sizeof(err));
        ck_assert_msg(rr->router != NULL, "%s", err);
        ck_assert_int_eq(pthread_create(&rr->thread, NULL, run, rr), 0);
}

/* Tells the router to stop; the test fails if it has not stopped (its
 * destroy included) within STOP_WATCHDOG_S. */
static void stop_router(struct running *rr, const char *name)
{
        avk_router_stop(rr->router);
        for (int i = 0; i < STOP_WATCHDOG_S * 20 && !atomic_load(&rr->done); i++)
                usleep(50000);
        ck_assert_msg(atomic_load(&rr->done), "router %s did not stop within %d s", name,
                      STOP_WATCHDOG_S);
        pthread_join(rr->thread, NULL);
        ck_assert_msg(rr->rc == 0, "%s", rr->err);
}

static void wait_stats(struct running *rr, uint64_t inputs_done, int partitions)
{
        struct avk_router_stats s;
        for (int i = 0; i < 1200; i++) {
                avk_router_stats(rr->router, &s);
                if (s.inputs_done >= inputs_done && s.partitions >= partitions)
                        return;
                usleep(50000);
        }
        ck_abort_msg("within 60 s the router finished %llu inputs of %llu with %d partitions",
                     (unsigned long long)s.inputs_done, (unsigned long long)inputs_done,
                     s.partitions);
}

static void file_deviations(int n)
{
        char err[512], id[AVK_ID_SIZE];
        struct avk_errors errs;
        avk_reporter_t *r = avk_reporter_new(mk.cfg, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s", err);
        for (int i = 0; i < n; i++)
                ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, sample, id, &errs),
                                 AVK_FILED);
        avk_reporter_destroy(r);
}

/* The offsets group committed on topic.reported, summed over its partitions
 * (a partition without a commit counts 0), and the topic's end offsets. */
static void committed_and_end(const char *group, int64_t *committed, int64_t *end)
{
        char err[512];
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_t *rk = avk_kafka_consumer_new(conf, group, err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        const char *topic = avk_config_get(mk.cfg, "topic.reported");
        int partitions = (int)avk_config_get_int(mk.cfg, "topic.partitions");
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
        for (int p = 0; p < partitions; p++)
                rd_kafka_topic_partition_list_add(l, topic, p);
        ck_assert_int_eq(rd_kafka_committed(rk, l, 10000), 0);
        *committed = *end = 0;
        for (int p = 0; p < partitions; p++) {
                int64_t low, high;
                ck_assert_int_eq(rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10000),
                                 0);
                *end += high;
                if (l->elems[p].offset >= 0)
                        *committed += l->elems[p].offset;
        }
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(rk);
}

/* Router a routes the deviations; router b joins the group and a is told to
 * stop at once, or a little later, while the group rebalances (b's join
 * makes a revoke and rejoin). Each round: both stop; b, stopped once it
 * routed more deviations on its own, commits them: nothing is left
 * uncommitted after two clean stops. */
START_TEST(router_stopped_while_its_group_rebalances_stops_and_commits)
{
        static const int delays_ms[] = {0, 1000, 2500};
        int filed = 0;
        for (size_t round = 0; round < sizeof(delays_ms) / sizeof(delays_ms[0]); round++) {
                char group[64];
                snprintf(group, sizeof(group), "close-rebalance-%zu", round);
                struct running a, b;
                file_deviations(DEVIATIONS);
                filed += DEVIATIONS;
                start_router(&a, group);
                wait_stats(&a, (uint64_t)filed, 1);
                usleep(300000); /* auto-commit (100 ms) commits a's inputs */
                start_router(&b, group);
                usleep((useconds_t)delays_ms[round] * 1000);
                stop_router(&a, "a");
                wait_stats(&b, 0, 6); /* b took every partition of topic.reported over */
                file_deviations(DEVIATIONS);
                filed += DEVIATIONS;
                wait_stats(&b, DEVIATIONS, 6);
                stop_router(&b, "b");
                int64_t committed, end;
                committed_and_end(group, &committed, &end);
                ck_assert_msg(committed == end, "round %zu: group %s committed %lld of %lld inputs",
                              round, group, (long long)committed, (long long)end);
        }
}
END_TEST

/* Every broker goes down under a running router; SIGTERM's stop still ends
 * its run and destroy: the close gives up after consumer.close.timeout.ms. */
START_TEST(router_stops_with_every_broker_down)
{
        file_deviations(DEVIATIONS);
        struct running a;
        start_router(&a, "close-down");
        wait_stats(&a, DEVIATIONS, 1);
        mock_kafka_set_brokers(&mk, 0);
        stop_router(&a, "a");
}
END_TEST

/* The close alone, on a bare group consumer whose brokers are gone with an
 * offset stored and not yet committed: it gives up, and the destroy that
 * follows returns as well. */
START_TEST(consumer_close_gives_up_when_the_brokers_are_gone)
{
        char err[512];
        const char *topic = avk_config_get(mk.cfg, "topic.reported");
        rd_kafka_conf_t *pconf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(pconf != NULL, "%s", err);
        rd_kafka_t *producer = avk_kafka_producer_new(pconf, err, sizeof(err));
        ck_assert_msg(producer != NULL, "%s", err);
        mock_kafka_produce(producer, topic, "k", "v", 1);
        rd_kafka_destroy(producer);
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_conf_set(conf, "auto.commit.interval.ms", "600000", NULL, 0);
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0);
        rd_kafka_t *rk = avk_kafka_consumer_new(conf, "close-bare", err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
        ck_assert_int_eq(rd_kafka_subscribe(rk, l), 0);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_message_t *m = NULL;
        for (int i = 0; i < 300 && !m; i++) {
                m = rd_kafka_consumer_poll(rk, 100);
                if (m && m->err) {
                        rd_kafka_message_destroy(m);
                        m = NULL;
                }
        }
        ck_assert_msg(m != NULL, "the record was not consumed within 30 s");
        ck_assert_int_eq(rd_kafka_offset_store(m->rkt, m->partition, m->offset), 0);
        rd_kafka_message_destroy(m);
        mock_kafka_set_brokers(&mk, 0);
        /* Auto-commit far off: the stored offset waits for the commit of the
         * close, which cannot reach the group. */
        ck_assert_int_eq(avk_kafka_consumer_close(rk, 2000, "test"), -1);
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("consumer close");
        TCase *tc = tcase_create("mock cluster");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 240);
        tcase_add_test(tc, router_stopped_while_its_group_rebalances_stops_and_commits);
        tcase_add_test(tc, router_stops_with_every_broker_down);
        tcase_add_test(tc, consumer_close_gives_up_when_the_brokers_are_gone);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
