/*
 * Metrics: what a Prometheus scrape of /metrics reads - HELP and TYPE lines,
 * one line per series with its labels escaped, cumulative histogram buckets
 * - and that updates from many threads at once are all counted.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/metrics.h"
#include "tests/support/check_text.h"

static avk_metrics_t *m;
static char *text;

static void setup(void)
{
        m = avk_metrics_new();
        ck_assert_ptr_nonnull(m);
        text = NULL;
}

static void teardown(void)
{
        free(text);
        avk_metrics_destroy(m);
}

static const char *render(void)
{
        free(text);
        text = avk_metrics_render(m);
        ck_assert_ptr_nonnull(text);
        return text;
}

START_TEST(counter_without_labels_renders_from_the_start)
{
        avk_metric_family_t *f = avk_metrics_counter(m, "avk_things_total", "Things.", NULL);
        ck_assert_ptr_nonnull(f);
        ck_assert_str_eq(render(), "# HELP avk_things_total Things.\n"
                                   "# TYPE avk_things_total counter\n"
                                   "avk_things_total 0\n");
        avk_metric_t *s = avk_metrics_series(f, NULL);
        avk_metric_add(s, 2);
        avk_metric_add(s, 3);
        ck_assert_int_eq(avk_metric_value(s), 5);
        ck_assert_contains(render(), "\navk_things_total 5\n");
}
END_TEST

START_TEST(labelled_series_appear_once_used_in_order_of_first_use)
{
        avk_metric_family_t *f = avk_metrics_counter(m, "avk_requests_total", "Requests.",
                                                     (const char *[]){"route", "code", NULL});
        ck_assert_str_eq(render(), "# HELP avk_requests_total Requests.\n"
                                   "# TYPE avk_requests_total counter\n");
        avk_metric_add(avk_metrics_series(f, (const char *[]){"/v1/deviations", "202"}), 1);
        avk_metric_add(avk_metrics_series(f, (const char *[]){"/healthz", "200"}), 4);
        avk_metric_add(avk_metrics_series(f, (const char *[]){"/v1/deviations", "202"}), 1);
        ck_assert_str_eq(render(), "# HELP avk_requests_total Requests.\n"
                                   "# TYPE avk_requests_total counter\n"
                                   "avk_requests_total{route=\"/v1/deviations\",code=\"202\"} 2\n"
                                   "avk_requests_total{route=\"/healthz\",code=\"200\"} 4\n");
}
END_TEST

START_TEST(label_values_and_help_are_escaped)
{
        avk_metric_family_t *f =
            avk_metrics_gauge(m, "avk_g", "Line one\nback\\slash.", (const char *[]){"v", NULL});
        avk_metric_set(avk_metrics_series(f, (const char *[]){"a\"b\\c\nd"}), -7);
        ck_assert_str_eq(render(), "# HELP avk_g Line one\\nback\\\\slash.\n"
                                   "# TYPE avk_g gauge\n"
                                   "avk_g{v=\"a\\\"b\\\\c\\nd\"} -7\n");
}
END_TEST

START_TEST(gauge_goes_up_and_down)
{
        avk_metric_t *g =
            avk_metrics_series(avk_metrics_gauge(m, "avk_in_flight", "In flight.", NULL), NULL);
        avk_metric_add(g, 3);
        avk_metric_add(g, -1);
        ck_assert_int_eq(avk_metric_value(g), 2);
        avk_metric_set(g, 10);
        ck_assert_contains(render(), "\navk_in_flight 10\n");
}
END_TEST

START_TEST(histogram_buckets_are_cumulative_with_sum_and_count)
{
        avk_metric_family_t *f = avk_metrics_histogram(m, "avk_latency_seconds", "Latency.",
                                                       (const char *[]){"route", NULL},
                                                       (const double[]){0.1, 0.5, 1}, 3);
        ck_assert_ptr_nonnull(f);
        avk_metric_t *s = avk_metrics_series(f, (const char *[]){"r"});
        avk_metric_observe(s, 0.05);
        avk_metric_observe(s, 0.1); /* on the bound: in that bucket (le) */
        avk_metric_observe(s, 0.7);
        avk_metric_observe(s, 3);
        ck_assert_str_eq(render(), "# HELP avk_latency_seconds Latency.\n"
                                   "# TYPE avk_latency_seconds histogram\n"
                                   "avk_latency_seconds_bucket{route=\"r\",le=\"0.1\"} 2\n"
                                   "avk_latency_seconds_bucket{route=\"r\",le=\"0.5\"} 2\n"
                                   "avk_latency_seconds_bucket{route=\"r\",le=\"1\"} 3\n"
                                   "avk_latency_seconds_bucket{route=\"r\",le=\"+Inf\"} 4\n"
                                   "avk_latency_seconds_sum{route=\"r\"} 3.85\n"
                                   "avk_latency_seconds_count{route=\"r\"} 4\n");
        /* Counter updates do not apply to a histogram, nor observations to a counter. */
        avk_metric_add(s, 5);
        ck_assert_int_eq(avk_metric_value(s), 0);
}
END_TEST

START_TEST(bad_registrations_are_refused)
{
        ck_assert_ptr_null(avk_metrics_counter(m, "9lives", "x", NULL));
        ck_assert_ptr_null(avk_metrics_counter(m, "has space", "x", NULL));
        ck_assert_ptr_null(avk_metrics_counter(m, "", "x", NULL));
        ck_assert_ptr_null(avk_metrics_counter(m, "ok", "x", (const char *[]){"a:b", NULL}));
        ck_assert_ptr_null(avk_metrics_counter(m, "ok", "x", (const char *[]){"__x", NULL}));
        ck_assert_ptr_null(
            avk_metrics_counter(m, "ok", "x", (const char *[]){"a", "b", "c", "d", "e", NULL}));
        ck_assert_ptr_null(
            avk_metrics_histogram(m, "h", "x", (const char *[]){"le", NULL}, (double[]){1}, 1));
        ck_assert_ptr_null(avk_metrics_histogram(m, "h", "x", NULL, (double[]){1, 1}, 2));
        ck_assert_ptr_null(avk_metrics_histogram(m, "h", "x", NULL, NULL, 0));
        ck_assert_ptr_nonnull(avk_metrics_counter(m, "ok:total", "x", NULL));
        ck_assert_ptr_null(avk_metrics_gauge(m, "ok:total", "taken", NULL));
}
END_TEST

START_TEST(series_are_bounded_and_null_updates_do_nothing)
{
        avk_metric_family_t *f = avk_metrics_counter(m, "avk_c", "c", (const char *[]){"k", NULL});
        char value[16];
        for (int i = 0; i < AVK_METRICS_MAX_SERIES; i++) {
                snprintf(value, sizeof(value), "%d", i);
                ck_assert_ptr_nonnull(avk_metrics_series(f, (const char *[]){value}));
        }
        ck_assert_ptr_null(avk_metrics_series(f, (const char *[]){"one too many"}));
        ck_assert_ptr_nonnull(avk_metrics_series(f, (const char *[]){"7"}));
        ck_assert_ptr_null(avk_metrics_series(f, (const char *[]){NULL}));
        ck_assert_ptr_null(avk_metrics_series(NULL, NULL));
        avk_metric_add(NULL, 1);
        avk_metric_set(NULL, 1);
        avk_metric_observe(NULL, 1);
        ck_assert_int_eq(avk_metric_value(NULL), 0);
}
END_TEST

#define THREADS 8
#define ROUNDS  20000

static void *hammer(void *arg)
{
        avk_metric_family_t **f = arg;
        char route[8];
        for (int i = 0; i < ROUNDS; i++) {
                snprintf(route, sizeof(route), "r%d", i % 5);
                avk_metric_add(avk_metrics_series(f[0], (const char *[]){route}), 1);
                avk_metric_observe(avk_metrics_series(f[1], NULL), 0.5);
        }
        return NULL;
}

START_TEST(updates_from_many_threads_are_all_counted)
{
        avk_metric_family_t *f[2] = {
            avk_metrics_counter(m, "avk_hits_total", "Hits.", (const char *[]){"route", NULL}),
            avk_metrics_histogram(m, "avk_h", "H.", NULL, (double[]){1}, 1)};
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
                ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, f), 0);
        for (int i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        for (int r = 0; r < 5; r++) {
                char route[8];
                snprintf(route, sizeof(route), "r%d", r);
                ck_assert_int_eq(
                    avk_metric_value(avk_metrics_series(f[0], (const char *[]){route})),
                    THREADS * ROUNDS / 5);
        }
        char want[128];
        snprintf(want, sizeof(want), "avk_h_count %d\n", THREADS * ROUNDS);
        ck_assert_contains(render(), want);
        snprintf(want, sizeof(want), "avk_h_sum %d\n", THREADS * ROUNDS / 2);
        ck_assert_contains(text, want);
        /* Five series, each once: concurrent first uses did not make duplicates. */
        ck_assert_ptr_null(strstr(strstr(text, "route=\"r0\"") + 1, "route=\"r0\""));
}
END_TEST

static Suite *metrics_suite(void)
{
        Suite *s = suite_create("metrics");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, counter_without_labels_renders_from_the_start);
        tcase_add_test(tc, labelled_series_appear_once_used_in_order_of_first_use);
        tcase_add_test(tc, label_values_and_help_are_escaped);
        tcase_add_test(tc, gauge_goes_up_and_down);
        tcase_add_test(tc, histogram_buckets_are_cumulative_with_sum_and_count);
        tcase_add_test(tc, bad_registrations_are_refused);
        tcase_add_test(tc, series_are_bounded_and_null_updates_do_nothing);
        tcase_add_test(tc, updates_from_many_threads_are_all_counted);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(metrics_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
