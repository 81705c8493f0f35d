/*
 * The service kernel (common/kafka/service.h) against the in-process mock
 * cluster, with hooks of the test's own: what every service (router,
 * tracker, notifier, forwarder) inherits from it, apart from any of them.
 */
#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kafka/kafka.h"
#include "common/kafka/service.h"
#include "common/util/metrics.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/service_thread.h"
#include "tests/support/wait_for.h"

#define TOPIC      "avvik.test.service"
#define PARTITIONS 2
#define REBUILD_MS 1500 /* longer than the second without records that makes a service idle */
#define WAIT_MS    30000

static struct mock_kafka mk;

struct probe {
        atomic_int records;
        atomic_int rebuilds;
};

static int on_record(void *opaque, int topic, avk_outbox_input_t *in, uint64_t seq,
                     const rd_kafka_message_t *m, char *errstr, size_t errstr_size)
{
        (void)topic, (void)in, (void)seq, (void)m, (void)errstr, (void)errstr_size;
        atomic_fetch_add(&((struct probe *)opaque)->records, 1);
        return 0;
}

/* A rebuild that takes REBUILD_MS, as a router's of millions of deviations does. */
static int slow_rebuild(void *opaque, const int32_t *parts, int cnt)
{
        (void)parts, (void)cnt;
        atomic_fetch_add(&((struct probe *)opaque)->rebuilds, 1);
        nanosleep(&(struct timespec){REBUILD_MS / 1000, (REBUILD_MS % 1000) * 1000000L}, NULL);
        return 0;
}

static int run(void *svc, char *errstr, size_t errstr_size)
{
        return avk_service_run(svc, errstr, errstr_size);
}

static void stop(void *svc)
{
        avk_service_stop(svc);
}

static void setup(void)
{
        mock_kafka_start(&mk, 1);
        mock_kafka_set(&mk, "kafka.log_level", "3");
        ck_assert_int_eq(rd_kafka_mock_topic_create(mk.cluster, TOPIC, PARTITIONS, 1), 0);
}

static void teardown(void)
{
        mock_kafka_stop(&mk);
}

static const char *const inputs[] = {TOPIC};

/* The second without records that pauses an idle service counts from the
 * end of an assignment: a rebuild longer than that second paused the
 * partitions just assigned before their first fetch, and a record already
 * waiting was taken only at the next probe, up to 1.5 s later. */
START_TEST(a_slow_rebuild_does_not_leave_the_service_idle)
{
        char err[512];
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_t *producer = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(producer != NULL, "%s", err);
        mock_kafka_produce(producer, TOPIC, "k", "waiting", 7);
        ck_assert_int_eq(rd_kafka_flush(producer, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);

        struct probe probe = {0};
        avk_metrics_t *metrics = avk_metrics_new();
        ck_assert_ptr_nonnull(metrics);
        struct avk_service_options opts = {
            .component = "service-test",
            .metric_prefix = "avk_service_test",
            .group = "service-test-slow-rebuild",
            .inputs = inputs,
            .input_cnt = 1,
            .revoke_note = "",
            .metrics = metrics,
            .hooks = {.on_record = on_record, .on_rebuild = slow_rebuild, .opaque = &probe}};
        avk_service_t *svc = avk_service_new(mk.cfg, &opts, err, sizeof(err));
        ck_assert_msg(svc != NULL, "%s", err);
        struct service_thread t;
        service_thread_start(&t, svc, run, stop);

        WAIT_FOR_MS(atomic_load(&probe.records), 1, WAIT_MS);
        struct avk_service_stats s;
        avk_service_stats(svc, &s);
        ck_assert_int_eq(atomic_load(&probe.rebuilds), 1);
        ck_assert_msg(s.idle_spells == 0,
                      "went idle (its partitions paused) %llu time(s) before its first record",
                      (unsigned long long)s.idle_spells);

        service_thread_stop(&t);
        avk_service_destroy(svc);
        avk_metrics_destroy(metrics);
        rd_kafka_destroy(producer);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("service");
        TCase *tc = tcase_create("mock cluster");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, a_slow_rebuild_does_not_leave_the_service_idle);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
