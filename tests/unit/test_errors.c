/*
 * Field-error lists (common/util/errors.h): every message is scrubbed whole
 * where it is built, then cut to AVK_ERROR_MSG_SIZE at a character, so no
 * identity - not even one the cut would have split - reaches a reader.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/errors.h"

START_TEST(an_identity_in_the_path_or_the_reason_is_replaced)
{
        struct avk_errors errs;
        avk_errors_init(&errs);
        avk_errors_add(&errs, "patient.19400314-1233", "unknown field");
        avk_errors_add(&errs, "harm.level", "unknown symbol \"%s\"", "ring 070-123 45 67");
        avk_errors_add(&errs, NULL, "from %s", "anna (at) vgregion.se");
        ck_assert_str_eq(errs.msg[0], "patient.[personnummer]: unknown field");
        ck_assert_str_eq(errs.msg[1], "harm.level: unknown symbol \"ring [telefon]\"");
        ck_assert_str_eq(errs.msg[2], "from [e-post]");
}
END_TEST

START_TEST(an_identity_across_the_size_limit_is_replaced_before_the_cut)
{
        char value[AVK_ERROR_MSG_SIZE + 64];
        size_t pad = AVK_ERROR_MSG_SIZE - 12; /* the number starts 6 bytes before the cut */
        memset(value, 'x', pad);
        strcpy(value + pad - 1, " 400314-1233 tail");
        struct avk_errors errs;
        avk_errors_init(&errs);
        avk_errors_add(&errs, "f", "%s", value);
        ck_assert_ptr_null(strstr(errs.msg[0], "4003"));
        ck_assert_ptr_nonnull(strstr(errs.msg[0], " [pers"));
        ck_assert_uint_eq(strlen(errs.msg[0]), AVK_ERROR_MSG_SIZE - 1);
}
END_TEST

START_TEST(a_cut_message_ends_at_a_character)
{
        char value[AVK_ERROR_MSG_SIZE * 2] = "";
        for (size_t i = 0; i < AVK_ERROR_MSG_SIZE / 2; i++)
                strcat(value, "\xc3\xa5"); /* å */
        struct avk_errors errs;
        avk_errors_init(&errs);
        avk_errors_add(&errs, "ab", "%s", value); /* "ab: " makes the cut fall inside an å */
        size_t len = strlen(errs.msg[0]);
        ck_assert_uint_eq(len, AVK_ERROR_MSG_SIZE - 2);
        ck_assert_uint_eq((unsigned char)errs.msg[0][len - 1], 0xa5);
}
END_TEST

static Suite *errors_suite(void)
{
        Suite *s = suite_create("errors");
        TCase *tc = tcase_create("redaction");
        tcase_add_test(tc, an_identity_in_the_path_or_the_reason_is_replaced);
        tcase_add_test(tc, an_identity_across_the_size_limit_is_replaced_before_the_cut);
        tcase_add_test(tc, a_cut_message_ends_at_a_character);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(errors_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
