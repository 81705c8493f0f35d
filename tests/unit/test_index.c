/*
 * The gateway's deviation index: who reported a deviation and who receives
 * it now - the latest routing (highest hop) wins, whatever order the records
 * are read in, and lookups find every one of many deviations.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/contract/party.h"
#include "producer/gateway/index.h"

#define DEVIATION "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10"

static avk_index_t *index_;
static char err[256];

static void setup(void)
{
        index_ = avk_index_new();
        ck_assert_ptr_nonnull(index_);
}

static void teardown(void)
{
        avk_index_destroy(index_);
}

static int party(const char *code)
{
        return avk_party_parse(code, err, sizeof(err));
}

START_TEST(a_routed_deviation_is_found_in_any_case)
{
        struct avk_index_entry e;
        ck_assert_int_eq(avk_index_get(index_, DEVIATION, &e), -1);
        ck_assert_int_eq(avk_index_put(index_, DEVIATION, 0, party("1480"), party("VGR")), 0);
        ck_assert_int_eq(avk_index_get(index_, "3F1C2A9E-8B7D-4C1E-9A65-0D2F4B6C8E10", &e), 0);
        ck_assert_int_eq(e.hop, 0);
        ck_assert_str_eq(avk_party_code(e.reporter_party), "1480");
        ck_assert_str_eq(avk_party_code(e.receiver_party), "VGR");
        ck_assert_uint_eq(avk_index_size(index_), 1);
        ck_assert_int_eq(avk_index_loaded(index_), 0);
}
END_TEST

START_TEST(the_highest_hop_wins)
{
        struct avk_index_entry e;
        ck_assert_int_eq(avk_index_put(index_, DEVIATION, 1, party("1480"), party("1401")), 0);
        ck_assert_int_eq(avk_index_put(index_, DEVIATION, 0, party("1480"), party("VGR")), 0);
        ck_assert_int_eq(avk_index_get(index_, DEVIATION, &e), 0);
        ck_assert_int_eq(e.hop, 1);
        ck_assert_str_eq(avk_party_code(e.receiver_party), "1401");
        ck_assert_int_eq(avk_index_put(index_, DEVIATION, 2, party("1480"), party("VGR")), 0);
        ck_assert_int_eq(avk_index_get(index_, DEVIATION, &e), 0);
        ck_assert_str_eq(avk_party_code(e.receiver_party), "VGR");
        ck_assert_uint_eq(avk_index_size(index_), 1);
}
END_TEST

START_TEST(bad_ids_and_parties_are_refused)
{
        struct avk_index_entry e;
        ck_assert_int_eq(avk_index_put(index_, "not-a-uuid", 0, 0, 0), -1);
        ck_assert_int_eq(avk_index_put(index_, DEVIATION, 0, AVK_PARTY_MAX + 1, 0), -1);
        ck_assert_int_eq(avk_index_put(index_, DEVIATION, 0, 0, -1), -1);
        ck_assert_int_eq(avk_index_get(index_, "not-a-uuid", &e), -1);
        ck_assert_uint_eq(avk_index_size(index_), 0);
}
END_TEST

START_TEST(many_deviations_are_all_found)
{
        enum { N = 20000 };
        char id[40];
        for (int i = 0; i < N; i++) {
                /* Ids that differ only in a few bits, as sequential ids of a client would. */
                snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
                ck_assert_int_eq(avk_index_put(index_, id, 0, i % (AVK_PARTY_MAX + 1), 0), 0);
        }
        ck_assert_uint_eq(avk_index_size(index_), N);
        struct avk_index_entry e;
        for (int i = 0; i < N; i++) {
                snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
                ck_assert_int_eq(avk_index_get(index_, id, &e), 0);
                ck_assert_int_eq(e.reporter_party, i % (AVK_PARTY_MAX + 1));
        }
        ck_assert_int_eq(avk_index_get(index_, "00000000-0000-4000-8000-999999999999", &e), -1);
}
END_TEST

static Suite *index_suite(void)
{
        Suite *s = suite_create("index");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, a_routed_deviation_is_found_in_any_case);
        tcase_add_test(tc, the_highest_hop_wins);
        tcase_add_test(tc, bad_ids_and_parties_are_refused);
        tcase_add_test(tc, many_deviations_are_all_found);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(index_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
