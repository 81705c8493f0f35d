/*
 * avk_utf8_chars: counts what a reader sees, eight bytes at a time, exactly
 * as counting the bytes that are not continuation bytes one by one does -
 * on text, on invalid sequences and at every length and alignment.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/utf8.h"

/* The definition, a byte at a time. */
static size_t chars_one_by_one(const unsigned char *s, size_t n)
{
        size_t chars = 0;
        for (size_t i = 0; i < n; i++)
                chars += (s[i] & 0xC0) != 0x80;
        return chars;
}

START_TEST(utf8_chars_counts_characters_not_bytes)
{
        ck_assert_uint_eq(avk_utf8_chars("", 0), 0);
        ck_assert_uint_eq(avk_utf8_chars("Tjörn", strlen("Tjörn")), 5);
        const char *text = "Ingen läkare gick att nå; ambulans fick tillkallas 😀 €";
        ck_assert_uint_eq(avk_utf8_chars(text, strlen(text)), 54);
}
END_TEST

START_TEST(utf8_chars_at_every_length_and_alignment_as_one_by_one)
{
        /* Bytes of every class - ASCII, lead bytes, continuation bytes,
         * invalid ones - so that each lane of a word meets each. */
        static const unsigned char pool[] = {'a',  0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xC3,
                                             0xDF, 0xE2, 0xED, 0xF0, 0xF4, 0xF8, 0xFF};
        unsigned char buf[80];
        srand(19);
        for (int round = 0; round < 2000; round++) {
                for (size_t i = 0; i < sizeof(buf); i++)
                        buf[i] = pool[(size_t)rand() % sizeof(pool)];
                for (size_t from = 0; from < 9; from++)
                        for (size_t n = 0; from + n <= sizeof(buf); n += 1 + (n > 20) * 7)
                                ck_assert_uint_eq(avk_utf8_chars(buf + from, n),
                                                  chars_one_by_one(buf + from, n));
        }
}
END_TEST

static Suite *utf8_suite(void)
{
        Suite *s = suite_create("utf8");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, utf8_chars_counts_characters_not_bytes);
        tcase_add_test(tc, utf8_chars_at_every_length_and_alignment_as_one_by_one);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(utf8_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
