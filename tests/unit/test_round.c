/*
 * Tests for avk_round: a round's records come back partition number by
 * partition number, each partition number's in the order taken, whatever
 * their topic; records without a partition (the consumer's errors) and of
 * a partition beyond the bound first; a round is full at its max and empty
 * once taken. The records are plain structs: the round only reads their
 * partition, and hands them back without destroying them.
 */
#include "common/kafka/round.h"

#include <check.h>
#include <stdlib.h>

enum { MAX = 16 };

/* Adds records of partitions parts (offsets 0, 1, ... in the order given) and takes the round. */
static int take(avk_round_t *r, rd_kafka_message_t *msgs, const int32_t *parts, int cnt,
                rd_kafka_message_t ***out)
{
        for (int i = 0; i < cnt; i++) {
                msgs[i] = (rd_kafka_message_t){.partition = parts[i], .offset = i};
                avk_round_add(r, &msgs[i]);
        }
        return avk_round_take(r, out);
}

START_TEST(records_come_back_by_partition_each_in_the_order_taken)
{
        avk_round_t *r = avk_round_new(MAX, 8);
        ck_assert_ptr_nonnull(r);
        /* Batches of three partitions as fetched: 3, 1, 3 again, 0, 1 again. */
        const int32_t parts[] = {3, 3, 1, 1, 1, 3, 3, 0, 1};
        const int64_t expect[] = {7, 2, 3, 4, 8, 0, 1, 5, 6}; /* offsets = positions taken */
        rd_kafka_message_t msgs[MAX], **out;
        int n = take(r, msgs, parts, 9, &out);
        ck_assert_int_eq(n, 9);
        for (int i = 0; i < n; i++)
                ck_assert_int_eq(out[i]->offset, expect[i]);
        avk_round_destroy(r);
}
END_TEST

START_TEST(one_partition_number_of_two_topics_keeps_the_order_taken)
{
        avk_round_t *r = avk_round_new(MAX, 8);
        rd_kafka_message_t msgs[MAX], **out;
        /* A report on partition 2 of one topic, a record of partition 5, then the
         * response on partition 2 of another topic: the report stays first. */
        const int32_t parts[] = {2, 5, 2};
        ck_assert_int_eq(take(r, msgs, parts, 3, &out), 3);
        ck_assert_ptr_eq(out[0], &msgs[0]);
        ck_assert_ptr_eq(out[1], &msgs[2]);
        ck_assert_ptr_eq(out[2], &msgs[1]);
        avk_round_destroy(r);
}
END_TEST

START_TEST(records_without_a_partition_come_first)
{
        avk_round_t *r = avk_round_new(MAX, 4);
        rd_kafka_message_t msgs[MAX], **out;
        /* A consumer error (partition -1) and a partition beyond the bound, between records. */
        const int32_t parts[] = {1, -1, 0, 9, 1};
        const int64_t expect[] = {1, 3, 2, 0, 4};
        ck_assert_int_eq(take(r, msgs, parts, 5, &out), 5);
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(out[i]->offset, expect[i]);
        avk_round_destroy(r);
}
END_TEST

START_TEST(a_round_is_full_at_its_max_and_empty_once_taken)
{
        avk_round_t *r = avk_round_new(3, 4);
        rd_kafka_message_t msgs[MAX], **out;
        ck_assert(!avk_round_full(r));
        ck_assert_int_eq(avk_round_take(r, &out), 0);
        for (int i = 0; i < 3; i++) {
                ck_assert(!avk_round_full(r));
                msgs[i] = (rd_kafka_message_t){.partition = 3 - i};
                avk_round_add(r, &msgs[i]);
        }
        ck_assert(avk_round_full(r));
        ck_assert_int_eq(avk_round_take(r, &out), 3);
        ck_assert_ptr_eq(out[0], &msgs[2]);
        ck_assert(!avk_round_full(r));
        ck_assert_int_eq(avk_round_take(r, &out), 0);
        avk_round_destroy(r);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("round");
        TCase *tc = tcase_create("round");
        tcase_add_test(tc, records_come_back_by_partition_each_in_the_order_taken);
        tcase_add_test(tc, one_partition_number_of_two_topics_keeps_the_order_taken);
        tcase_add_test(tc, records_without_a_partition_come_first);
        tcase_add_test(tc, a_round_is_full_at_its_max_and_empty_once_taken);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
