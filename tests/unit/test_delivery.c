/*
 * The notifier's deliveries (consumer/notify/delivery.h): a producer
 * delivery report finds its delivery and output by seq while the delivery
 * lives and nothing once it is freed (dropped at a rebalance), and a
 * delivery is finished - its offset may be stored - only when both its
 * webhook part and its inbox part are.
 */
#include <check.h>
#include <stdlib.h>

#include "consumer/notify/delivery.h"

#define MANY 3000 /* well past the index's first size, so that it grows */

static struct avk_deliveries dl;

static void setup(void)
{
        ck_assert_int_eq(avk_htab_init(&dl.by_seq, 16), 0);
        dl.seq = 0;
}

static void teardown(void)
{
        avk_htab_destroy(&dl.by_seq);
}

START_TEST(deliveries_are_found_by_seq_until_freed)
{
        static struct avk_delivery *all[MANY];
        for (int i = 0; i < MANY; i++) {
                ck_assert_ptr_nonnull(all[i] = avk_delivery_new(&dl));
                ck_assert_uint_eq(all[i]->seq, (uint64_t)i + 1);
        }
        for (int i = 0; i < MANY; i += 2)
                avk_delivery_free(&dl, all[i]);
        for (int i = 0; i < MANY; i++)
                ck_assert_ptr_eq(avk_delivery_find(&dl, (uint64_t)i + 1), i % 2 ? all[i] : NULL);
        ck_assert_ptr_null(avk_delivery_find(&dl, MANY + 1));
        for (int i = 1; i < MANY; i += 2)
                avk_delivery_free(&dl, all[i]);
        ck_assert_uint_eq(dl.by_seq.cnt, 0);
}
END_TEST

START_TEST(an_output_tag_names_its_delivery_and_output)
{
        static const enum avk_output outputs[] = {AVK_OUTPUT_DEAD_LETTER, AVK_OUTPUT_INBOX,
                                                  AVK_OUTPUT_PARK};
        struct avk_delivery *first = avk_delivery_new(&dl), *d = avk_delivery_new(&dl);
        ck_assert_ptr_nonnull(first);
        ck_assert_ptr_nonnull(d);
        for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
                enum avk_output out = AVK_OUTPUT_DEAD_LETTER;
                ck_assert_ptr_eq(avk_delivery_tagged(&dl, avk_delivery_tag(d, outputs[i]), &out),
                                 d);
                ck_assert_int_eq(out, outputs[i]);
        }
        /* An acknowledgement that outlives its delivery finds nothing, not a neighbour. */
        uint64_t tag = avk_delivery_tag(d, AVK_OUTPUT_INBOX);
        avk_delivery_free(&dl, d);
        enum avk_output out;
        ck_assert_ptr_null(avk_delivery_tagged(&dl, tag, &out));
        avk_delivery_free(&dl, first);
}
END_TEST

START_TEST(a_delivery_is_finished_when_webhook_and_inbox_are)
{
        struct avk_delivery d = {.state = AVK_DELIVERY_DONE, .inbox_state = AVK_INBOX_NONE};
        ck_assert_int_eq(avk_delivery_finished(&d), 1);
        d.inbox_state = AVK_INBOX_DONE;
        ck_assert_int_eq(avk_delivery_finished(&d), 1);
        d.inbox_state = AVK_INBOX_DUE;
        ck_assert_int_eq(avk_delivery_finished(&d), 0);
        d.inbox_state = AVK_INBOX_SENT;
        ck_assert_int_eq(avk_delivery_finished(&d), 0);
        static const enum avk_delivery_state unfinished[] = {
            AVK_DELIVERY_WAITING,  AVK_DELIVERY_DUE,       AVK_DELIVERY_IN_FLIGHT,
            AVK_DELIVERY_PARK_DUE, AVK_DELIVERY_PARK_SENT, AVK_DELIVERY_DEAD_DUE,
            AVK_DELIVERY_DEAD_SENT};
        d.inbox_state = AVK_INBOX_DONE;
        for (size_t i = 0; i < sizeof(unfinished) / sizeof(unfinished[0]); i++) {
                d.state = unfinished[i];
                ck_assert_int_eq(avk_delivery_finished(&d), 0);
        }
}
END_TEST

int main(void)
{
        Suite *s = suite_create("delivery");
        TCase *tc = tcase_create("delivery");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, deliveries_are_found_by_seq_until_freed);
        tcase_add_test(tc, an_output_tag_names_its_delivery_and_output);
        tcase_add_test(tc, a_delivery_is_finished_when_webhook_and_inbox_are);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
