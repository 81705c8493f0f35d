/* The Luhn check digit (common/util/luhn.h), worked by hand in the comments. */
#include <check.h>
#include <stdlib.h>

#include "common/util/luhn.h"

START_TEST(luhn_gives_the_check_digit_of_personnummer_and_organisation_numbers)
{
        /* 8*2=16->7, 1, 1*2=2, 2, 1*2=2, 8, 9*2=18->9, 8, 7*2=14->5: 44 -> 6 */
        ck_assert_int_eq(avk_luhn("811218987", 9), 6);
        /* 7*2=14->5, 0, 1*2=2, 0, 6*2=12->3, 3, 2*2=4, 3, 9*2=18->9: 29 -> 1 */
        ck_assert_int_eq(avk_luhn("701063239", 9), 1);
        /* 2*2=4, 3, 2*2=4, 1, 0, 0, 0, 1, 3*2=6: 19 -> 1 (VGR, 2321000131) */
        ck_assert_int_eq(avk_luhn("232100013", 9), 1);
        /* a sum that is a multiple of 10 gives 0, not 10: 4,6,0,3,2,5,2,2,6 = 30 */
        ck_assert_int_eq(avk_luhn("260315123", 9), 0);
}
END_TEST

START_TEST(luhn_only_reads_n_characters)
{
        ck_assert_int_eq(avk_luhn("811218987XYZ", 9), 6);
        ck_assert_int_eq(avk_luhn("", 0), 0);
}
END_TEST

START_TEST(luhn_rejects_a_non_digit)
{
        ck_assert_int_eq(avk_luhn("81121898x", 9), -1);
        ck_assert_int_eq(avk_luhn(NULL, 9), -1);
}
END_TEST

static Suite *luhn_suite(void)
{
        Suite *s = suite_create("luhn");
        TCase *tc = tcase_create("check_digit");
        tcase_add_test(tc, luhn_gives_the_check_digit_of_personnummer_and_organisation_numbers);
        tcase_add_test(tc, luhn_only_reads_n_characters);
        tcase_add_test(tc, luhn_rejects_a_non_digit);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(luhn_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
