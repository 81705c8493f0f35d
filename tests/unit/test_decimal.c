/* Numbers in decimal without snprintf (common/util/decimal.h), checked against snprintf. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/decimal.h"

START_TEST(decimal_writes_the_digits_snprintf_writes)
{
        const uint64_t values[] = {0, 1, 9, 10, 99, 100, 202, 503, 4294967295u, UINT64_MAX};
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                char got[AVK_DECIMAL_SIZE], want[AVK_DECIMAL_SIZE];
                memset(got, 'x', sizeof(got));
                int want_len = snprintf(want, sizeof(want), "%" PRIu64, values[i]);
                ck_assert_uint_eq(avk_decimal(got, values[i]), (size_t)want_len);
                ck_assert_str_eq(got, want);
        }
}
END_TEST

START_TEST(decimal_writes_no_more_than_the_digits_and_the_nul)
{
        char buf[8];
        memset(buf, 'x', sizeof(buf));
        ck_assert_uint_eq(avk_decimal(buf, 404), 3);
        ck_assert_int_eq(memcmp(buf, "404\0xxxx", sizeof(buf)), 0);
}
END_TEST

static Suite *decimal_suite(void)
{
        Suite *s = suite_create("decimal");
        TCase *tc = tcase_create("digits");
        tcase_add_test(tc, decimal_writes_the_digits_snprintf_writes);
        tcase_add_test(tc, decimal_writes_no_more_than_the_digits_and_the_nul);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(decimal_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
