/*
 * Timers: the tracker's deadline heap fires timers in due order, each once,
 * moves and cancels them, and holds many without a scan.
 */
#include <check.h>
#include <stdlib.h>

#include "consumer/track/timers.h"

static avk_timers_t *t;

static void setup(void)
{
        t = avk_timers_new();
        ck_assert_ptr_nonnull(t);
}

static void teardown(void)
{
        avk_timers_destroy(t);
}

START_TEST(timers_fire_in_due_order_and_only_when_due)
{
        ck_assert_int_eq(avk_timers_set(t, 7, 300), 0);
        ck_assert_int_eq(avk_timers_set(t, 3, 100), 0);
        ck_assert_int_eq(avk_timers_set(t, 9, 200), 0);
        uint32_t id;
        int64_t due;
        ck_assert_int_eq(avk_timers_pop_due(t, 99, &id, &due), 0);
        ck_assert_int_eq(avk_timers_next(t), 100);
        ck_assert_int_eq(avk_timers_pop_due(t, 250, &id, &due), 1);
        ck_assert_uint_eq(id, 3);
        ck_assert_int_eq(due, 100);
        ck_assert_int_eq(avk_timers_pop_due(t, 250, &id, &due), 1);
        ck_assert_uint_eq(id, 9);
        ck_assert_int_eq(avk_timers_pop_due(t, 250, &id, &due), 0);
        ck_assert_uint_eq(avk_timers_cnt(t), 1);
        ck_assert_int_eq(avk_timers_armed(t, 3, NULL), 0);
        ck_assert_int_eq(avk_timers_armed(t, 7, &due), 1);
        ck_assert_int_eq(due, 300);
}
END_TEST

START_TEST(setting_an_armed_timer_moves_it_and_cancel_disarms)
{
        avk_timers_set(t, 1, 100);
        avk_timers_set(t, 2, 200);
        avk_timers_set(t, 1, 500); /* later */
        avk_timers_set(t, 2, 50);  /* earlier */
        uint32_t id;
        int64_t due;
        ck_assert_int_eq(avk_timers_pop_due(t, 1000, &id, &due), 1);
        ck_assert_uint_eq(id, 2);
        ck_assert_int_eq(due, 50);
        avk_timers_cancel(t, 1);
        avk_timers_cancel(t, 1); /* twice: nothing */
        ck_assert_int_eq(avk_timers_pop_due(t, 1000, &id, &due), 0);
        ck_assert_int_eq(avk_timers_next(t), INT64_MAX);
}
END_TEST

/* Many timers with random due times, moved and cancelled at random: they
 * still come out in order and exactly the armed ones come out. */
START_TEST(many_timers_come_out_sorted_and_complete)
{
        enum { N = 20000 };
        int64_t *want = malloc(N * sizeof(*want));
        ck_assert_ptr_nonnull(want);
        srand(42);
        for (uint32_t i = 0; i < N; i++) {
                want[i] = rand() % 1000000;
                ck_assert_int_eq(avk_timers_set(t, i, want[i]), 0);
        }
        size_t armed = N;
        for (uint32_t i = 0; i < N; i += 3) {
                if (i % 2) {
                        avk_timers_cancel(t, i);
                        want[i] = -1;
                        armed--;
                } else {
                        want[i] = rand() % 1000000;
                        avk_timers_set(t, i, want[i]);
                }
        }
        ck_assert_uint_eq(avk_timers_cnt(t), armed);
        int64_t last = -1, due;
        uint32_t id;
        size_t fired = 0;
        while (avk_timers_pop_due(t, INT64_MAX - 1, &id, &due)) {
                ck_assert_int_ge(due, last);
                ck_assert_int_eq(due, want[id]);
                want[id] = -2; /* fired once */
                last = due;
                fired++;
        }
        ck_assert_uint_eq(fired, armed);
        free(want);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("timers");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, timers_fire_in_due_order_and_only_when_due);
        tcase_add_test(tc, setting_an_armed_timer_moves_it_and_cancel_disarms);
        tcase_add_test(tc, many_timers_come_out_sorted_and_complete);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
