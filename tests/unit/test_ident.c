/*
 * Unit tests for avk_ident: personnummer and samordningsnummer (all five
 * forms, century resolution, dates, check digits), HSA-ids, municipality codes
 * and the future-timestamp check, including the exact error sentences a
 * reporter sees and that those never repeat a personal identity number.
 *
 * Every check digit below is worked out by hand in a comment: Luhn over the
 * nine digits YYMMDDNNN with weights 2,1,2,1,... from the left, the digits of
 * each product summed, C = (10 - sum mod 10) mod 10.
 */
#include "common/contract/ident.h"
#include "common/contract/municipality.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

/* A fixed "today" so that century resolution does not depend on the clock. */
#define TODAY 20260315

static char err[256];

static int personal(const char *s, struct avk_personal_id *out)
{
        err[0] = '\0';
        return avk_ident_personal_id(s, TODAY, out, err, sizeof(err));
}

/* Asserts that s is rejected with exactly the sentence expected. */
static void assert_personal_error(const char *s, const char *expected)
{
        struct avk_personal_id id;

        ck_assert_msg(personal(s, &id) == -1, "input %s was accepted", s);
        ck_assert_str_eq(err, expected);
}

static void assert_hsa_error(const char *s, const char *expected)
{
        err[0] = '\0';
        ck_assert_msg(avk_ident_hsa_id(s, err, sizeof(err)) == -1, "accepted, expected: %s",
                      expected);
        ck_assert_str_eq(err, expected);
}

static void assert_municipality_error(const char *s, const char *expected)
{
        err[0] = '\0';
        ck_assert_msg(avk_ident_municipality_code(s, err, sizeof(err)) == -1,
                      "accepted, expected: %s", expected);
        ck_assert_str_eq(err, expected);
}

/* ---- personnummer: the five forms ---- */

static void assert_811218_9876(const char *s)
{
        struct avk_personal_id id;

        memset(&id, 0x55, sizeof(id));
        ck_assert_msg(personal(s, &id) == 0, "%s rejected: %s", s, err);
        ck_assert_str_eq(id.normalized, "198112189876");
        ck_assert_int_eq(id.birth_year, 1981);
        ck_assert_int_eq(id.birth_month, 12);
        ck_assert_int_eq(id.birth_day, 18);
        ck_assert_int_eq(id.is_coordination, 0);
        ck_assert_int_eq(id.sex, AVK_SEX_MALE);
}

START_TEST(accepts_ten_digits_with_dash)
{
        assert_811218_9876("811218-9876");
}
END_TEST

START_TEST(accepts_ten_digits_without_separator)
{
        assert_811218_9876("8112189876");
}
END_TEST

START_TEST(accepts_twelve_digits_without_separator)
{
        assert_811218_9876("198112189876");
}
END_TEST

START_TEST(accepts_twelve_digits_with_dash)
{
        assert_811218_9876("19811218-9876");
}
END_TEST

START_TEST(accepts_ten_digits_with_plus_as_a_centenarian)
{
        struct avk_personal_id id;

        ck_assert_msg(personal("811218+9876", &id) == 0, "%s", err);
        ck_assert_str_eq(id.normalized, "188112189876");
        ck_assert_int_eq(id.birth_year, 1881);
        ck_assert_int_eq(id.birth_month, 12);
        ck_assert_int_eq(id.birth_day, 18);
}
END_TEST

START_TEST(accepts_a_null_out)
{
        ck_assert_int_eq(personal("811218-9876", NULL), 0);
}
END_TEST

/* ---- century of the 10-digit forms, today being 2026-03-15 ---- */

static int year_of(const char *s)
{
        struct avk_personal_id id;

        ck_assert_msg(personal(s, &id) == 0, "%s rejected: %s", s, err);
        return id.birth_year;
}

START_TEST(dash_puts_a_past_year_of_this_century_in_this_century)
{
        /* 1*2=2, 2, 0, 3, 1*2=2, 5, 1*2=2, 2, 3*2=6: 24 -> 6 */
        ck_assert_int_eq(year_of("120315-1236"), 2012);
}
END_TEST

START_TEST(plus_moves_the_birth_a_further_century_back)
{
        ck_assert_int_eq(year_of("120315+1236"), 1912);
}
END_TEST

START_TEST(dash_accepts_a_birth_today)
{
        /* 2*2=4, 6, 0, 3, 1*2=2, 5, 1*2=2, 2, 3*2=6: 30 -> 0 */
        ck_assert_int_eq(year_of("260315-1230"), 2026);
        ck_assert_int_eq(year_of("2603151230"), 2026);
}
END_TEST

START_TEST(dash_puts_a_birthday_later_this_year_in_the_last_century)
{
        /* Born 1926-03-16: still 99 on 2026-03-15, so '-' is right.
         * 4, 6, 0, 3, 2, 6, 2, 2, 6: 31 -> 9 */
        ck_assert_int_eq(year_of("260316-1239"), 1926);
}
END_TEST

START_TEST(plus_on_a_birthday_today_is_a_hundred_years_ago)
{
        ck_assert_int_eq(year_of("260315+1230"), 1926);
}
END_TEST

START_TEST(plus_on_a_birthday_later_this_year_is_two_centuries_ago)
{
        /* 1926-03-16 would be 99, not 100 or older: '+' means 1826. */
        ck_assert_int_eq(year_of("260316+1239"), 1826);
}
END_TEST

START_TEST(century_follows_today_not_the_clock)
{
        struct avk_personal_id id;

        /* On 2012-03-14, 120315 has not happened yet: it must be 1912. */
        ck_assert_int_eq(avk_ident_personal_id("120315-1236", 20120314, &id, err, sizeof(err)), 0);
        ck_assert_int_eq(id.birth_year, 1912);
        ck_assert_int_eq(avk_ident_personal_id("120315-1236", 20120315, &id, err, sizeof(err)), 0);
        ck_assert_int_eq(id.birth_year, 2012);
}
END_TEST

START_TEST(rejects_plus_in_the_twelve_digit_form)
{
        assert_personal_error("19811218+9876", "'+' is only valid in the 10-digit form");
}
END_TEST

START_TEST(rejects_a_today_that_is_not_a_date)
{
        ck_assert_int_eq(avk_ident_personal_id("811218-9876", 0, NULL, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "today's date 0 is not a YYYYMMDD date");
}
END_TEST

/* ---- samordningsnummer ---- */

START_TEST(accepts_the_coordination_number_from_the_domain_docs)
{
        struct avk_personal_id id;

        /* 701063-2391: 7*2=14->5, 0, 2, 0, 6*2=12->3, 3, 4, 3, 9*2=18->9: 29 -> 1 */
        ck_assert_msg(personal("701063-2391", &id) == 0, "%s", err);
        ck_assert_str_eq(id.normalized, "197010632391");
        ck_assert_int_eq(id.birth_year, 1970);
        ck_assert_int_eq(id.birth_month, 10);
        ck_assert_int_eq(id.birth_day, 3);
        ck_assert_int_eq(id.is_coordination, 1);
        ck_assert_int_eq(id.sex, AVK_SEX_MALE);
}
END_TEST

START_TEST(accepts_a_coordination_number_in_twelve_digits)
{
        struct avk_personal_id id;

        ck_assert_msg(personal("197010632391", &id) == 0, "%s", err);
        ck_assert_int_eq(id.birth_day, 3);
        ck_assert_int_eq(id.is_coordination, 1);
}
END_TEST

START_TEST(rejects_coordination_day_92)
{
        /* Luhn is right (7*2=14->5, 0, 2, 0, 9*2=18->9, 2, 4, 3, 18->9: 34 -> 6),
         * so only the day can be the reason. */
        assert_personal_error("701092-2396", "day 92 is neither a day of the month (01-31) nor a "
                                             "coordination number day (61-91)");
}
END_TEST

START_TEST(rejects_day_60_between_the_two_ranges)
{
        assert_personal_error("701060-2391", "day 60 is neither a day of the month (01-31) nor a "
                                             "coordination number day (61-91)");
}
END_TEST

START_TEST(rejects_a_coordination_day_that_the_month_lacks)
{
        /* 2001 is not a leap year. 0, 1, 0, 2, 8*2=16->7, 9, 2, 2, 6: 29 -> 1 */
        assert_personal_error("010289-1231",
                              "coordination day 89 (day 29 + 60) does not exist in February 2001");
}
END_TEST

/* ---- check digit ---- */

START_TEST(rejects_a_wrong_check_digit_naming_both_digits)
{
        assert_personal_error("811218-9875", "check digit is 5, expected 6");
        assert_personal_error("198112189870", "check digit is 0, expected 6");
        assert_personal_error("701063-2390", "check digit is 0, expected 1");
}
END_TEST

/* ---- dates ---- */

START_TEST(accepts_february_29_in_leap_years)
{
        struct avk_personal_id id;

        /* 0, 4, 0, 2, 2*2=4, 9, 2, 2, 6: 29 -> 1 */
        ck_assert_int_eq(year_of("040229-1231"), 2004);
        /* 2000 is divisible by 400: a leap year. 0, 0, 0, 2, 4, 9, 2, 2, 6: 25 -> 5 */
        ck_assert_int_eq(year_of("000229-1235"), 2000);
        ck_assert_msg(personal("20000229-1235", &id) == 0, "%s", err);
        ck_assert_int_eq(id.birth_day, 29);
}
END_TEST

START_TEST(rejects_february_29_in_a_common_year)
{
        /* 0, 1, 0, 2, 4, 9, 2, 2, 6: 26 -> 4 */
        assert_personal_error("010229-1234", "day 29 does not exist in February 2001");
}
END_TEST

START_TEST(rejects_february_29_in_1900_which_is_not_a_leap_year)
{
        /* The '+' puts 000229 in 1900: divisible by 100 but not 400. */
        assert_personal_error("000229+1235", "day 29 does not exist in February 1900");
        assert_personal_error("19000229-1235", "day 29 does not exist in February 1900");
}
END_TEST

START_TEST(rejects_february_30)
{
        assert_personal_error("20010230-1234", "day 30 does not exist in February 2001");
}
END_TEST

START_TEST(rejects_day_31_in_a_month_of_30)
{
        /* 8*2=16->7, 1, 0, 4, 3*2=6, 1, 18->9, 8, 14->5: 41 -> 9 */
        assert_personal_error("810431-9879", "day 31 does not exist in April 1981");
}
END_TEST

START_TEST(rejects_month_13)
{
        /* 7, 1, 2, 3, 2, 8, 9, 8, 5: 45 -> 5 */
        assert_personal_error("811318-9875", "month 13 does not exist");
}
END_TEST

START_TEST(rejects_month_0)
{
        assert_personal_error("810018-9876", "month 00 does not exist");
}
END_TEST

START_TEST(rejects_day_0)
{
        /* 7, 1, 2, 2, 0, 0, 9, 8, 5: 34 -> 6 */
        assert_personal_error("811200-9876", "day 00 is neither a day of the month (01-31) nor a "
                                             "coordination number day (61-91)");
}
END_TEST

START_TEST(rejects_day_32)
{
        /* 7, 1, 2, 2, 6, 2, 9, 8, 5: 42 -> 8 */
        assert_personal_error("811232-9878", "day 32 is neither a day of the month (01-31) nor a "
                                             "coordination number day (61-91)");
}
END_TEST

START_TEST(rejects_a_birth_date_in_the_future)
{
        /* 6, 1, 0, 1, 0, 1, 2, 2, 6: 19 -> 1 */
        assert_personal_error("20310101-1231", "birth date is in the future");
        /* tomorrow: 4, 6, 0, 3, 2, 6, 2, 2, 6: 31 -> 9 */
        assert_personal_error("202603161239", "birth date is in the future");
}
END_TEST

START_TEST(accepts_a_twelve_digit_birth_today)
{
        ck_assert_int_eq(year_of("202603151230"), 2026);
}
END_TEST

/* ---- length and characters ---- */

START_TEST(rejects_nine_digits)
{
        assert_personal_error("811218-987",
                              "expected 10 or 12 digits (YYMMDD-NNNC or YYYYMMDDNNNC), got 9");
}
END_TEST

START_TEST(rejects_eleven_and_thirteen_digits)
{
        assert_personal_error("81121898765",
                              "expected 10 or 12 digits (YYMMDD-NNNC or YYYYMMDDNNNC), got 11");
        assert_personal_error("1981121898765",
                              "expected 10 or 12 digits (YYMMDD-NNNC or YYYYMMDDNNNC), got 13");
}
END_TEST

START_TEST(rejects_the_empty_string_and_null)
{
        assert_personal_error("", "expected 10 or 12 digits (YYMMDD-NNNC or YYYYMMDDNNNC), got 0");
        ck_assert_int_eq(avk_ident_personal_id(NULL, TODAY, NULL, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "personal identity number is missing");
}
END_TEST

START_TEST(rejects_a_letter_naming_its_position)
{
        assert_personal_error("811218-98x6", "character 10 is 'x', expected a digit");
        assert_personal_error("81121x9876", "character 6 is 'x', expected a digit");
}
END_TEST

START_TEST(rejects_a_space_as_separator)
{
        assert_personal_error("811218 9876", "character 7 is ' ', expected a digit");
}
END_TEST

START_TEST(rejects_a_non_ascii_byte_as_hex)
{
        /* "ö" is 0xC3 0xB6 in UTF-8: the first byte is reported. */
        assert_personal_error("811218\xc3\xb6"
                              "9876",
                              "character 7 is byte 0xC3, expected a digit");
}
END_TEST

START_TEST(rejects_a_separator_elsewhere_than_before_the_last_four_digits)
{
        assert_personal_error("8112-189876", "character 5 is '-', a separator is only valid "
                                             "before the last four digits");
        assert_personal_error("811218--9876", "character 7 is '-', a separator is only valid "
                                              "before the last four digits");
        assert_personal_error("8112189876-", "character 11 is '-', a separator is only valid "
                                             "before the last four digits");
}
END_TEST

/* ---- sex ---- */

START_TEST(odd_ninth_digit_is_male_even_is_female)
{
        struct avk_personal_id id;

        /* 9876: N=7 odd, while the check digit 6 is even. */
        ck_assert_msg(personal("811218-9876", &id) == 0, "%s", err);
        ck_assert_int_eq(id.sex, AVK_SEX_MALE);
        /* 9843: N=4 even, check digit 3 odd. 7, 1, 2, 2, 2, 8, 9, 8, 4*2=8: 47 -> 3 */
        ck_assert_msg(personal("811218-9843", &id) == 0, "%s", err);
        ck_assert_int_eq(id.sex, AVK_SEX_FEMALE);
        /* 9868: N=6 even. 7, 1, 2, 2, 2, 8, 9, 8, 6*2=12->3: 42 -> 8 */
        ck_assert_msg(personal("198112189868", &id) == 0, "%s", err);
        ck_assert_int_eq(id.sex, AVK_SEX_FEMALE);
}
END_TEST

/* ---- no personal id in errors ---- */

static int contains(const char *haystack, const char *needle)
{
        return strstr(haystack, needle) != NULL;
}

START_TEST(error_sentences_never_repeat_the_personal_id)
{
        /* One input per kind of error, each with the digit groups that would
         * identify the person: the 10-digit core, the birth date and the
         * birth number. */
        static const struct {
                const char *input, *core, *birth_date, *birth_number;
        } cases[] = {
            {"811218-9875", "8112189875", "811218", "9875"},
            {"198112189870", "8112189870", "19811218", "9870"},
            {"811318-9875", "8113189875", "811318", "9875"},
            {"811232-9878", "8112329878", "811232", "9878"},
            {"701092-2396", "7010922396", "701092", "2396"},
            {"010229-1234", "0102291234", "010229", "1234"},
            {"010289-1231", "0102891231", "010289", "1231"},
            {"20310101-1231", "3101011231", "20310101", "1231"},
            {"19811218+9876", "8112189876", "19811218", "9876"},
            {"811218-98x6", "81121898x6", "811218", "98x6"},
            {"81121898765", "81121898765", "811218", "8765"},
            {"8112-189876", "8112189876", "811218", "9876"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                ck_assert_int_eq(personal(cases[i].input, NULL), -1);
                ck_assert_msg(err[0] != '\0', "no error sentence for case %zu", i);
                ck_assert_msg(!contains(err, cases[i].input), "case %zu leaks input: %s", i, err);
                ck_assert_msg(!contains(err, cases[i].core), "case %zu leaks digits: %s", i, err);
                ck_assert_msg(!contains(err, cases[i].birth_date), "case %zu leaks birth date: %s",
                              i, err);
                ck_assert_msg(!contains(err, cases[i].birth_number),
                              "case %zu leaks birth number: %s", i, err);
        }
}
END_TEST

START_TEST(errors_fit_a_small_buffer_and_tolerate_none)
{
        char small[8];

        memset(small, 'x', sizeof(small));
        ck_assert_int_eq(avk_ident_personal_id("811218-9875", TODAY, NULL, small, sizeof(small)),
                         -1);
        ck_assert_str_eq(small, "check d");
        ck_assert_int_eq(avk_ident_personal_id("811218-9875", TODAY, NULL, NULL, 0), -1);
        ck_assert_int_eq(avk_ident_hsa_id("XX", NULL, 0), -1);
}
END_TEST

/* ---- HSA-id ---- */

START_TEST(accepts_hsa_ids_of_vgr)
{
        /* 2321000131: 2*2=4, 3, 2*2=4, 1, 0, 0, 0, 1, 3*2=6: 19 -> 1 */
        ck_assert_int_eq(avk_ident_hsa_id("SE2321000131-E000000000001", err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_hsa_id("SE2321000131-S1", err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_hsa_id("SE2321000131-a", err, sizeof(err)), 0);
}
END_TEST

START_TEST(accepts_an_hsa_id_of_exactly_31_characters)
{
        const char *s = "SE2321000131-ABCDEFGHIJ01234567";

        ck_assert_uint_eq(strlen(s), 31);
        ck_assert_msg(avk_ident_hsa_id(s, err, sizeof(err)) == 0, "%s", err);
}
END_TEST

START_TEST(rejects_an_hsa_id_of_32_characters)
{
        const char *s = "SE2321000131-ABCDEFGHIJ012345678";

        ck_assert_uint_eq(strlen(s), 32);
        assert_hsa_error(s, "'SE2321000131-ABCDEFGHIJ012345678' is 32 characters, at most 31");
}
END_TEST

START_TEST(rejects_an_hsa_id_without_se)
{
        assert_hsa_error("se2321000131-E1", "HSA-id must start with 'SE'");
        assert_hsa_error("2321000131-E1", "HSA-id must start with 'SE'");
        assert_hsa_error("S", "HSA-id must start with 'SE'");
        assert_hsa_error("", "HSA-id must start with 'SE'");
}
END_TEST

START_TEST(rejects_a_null_hsa_id)
{
        assert_hsa_error(NULL, "HSA-id is missing");
}
END_TEST

START_TEST(rejects_an_organisation_number_with_a_wrong_check_digit)
{
        assert_hsa_error("SE2321000133-E1", "organisation number check digit is 3, expected 1");
}
END_TEST

START_TEST(rejects_an_organisation_number_of_the_wrong_length)
{
        assert_hsa_error("SE232100013-E1",
                         "organisation number after 'SE' has 9 digits, expected 10");
        assert_hsa_error("SE23210001311-E1",
                         "organisation number after 'SE' has 11 digits, expected 10");
        assert_hsa_error("SE", "organisation number after 'SE' has 0 digits, expected 10");
}
END_TEST

START_TEST(rejects_a_letter_in_the_organisation_number)
{
        assert_hsa_error("SE23210O0131-E1",
                         "character 8 ('O') is not a digit of the organisation number");
}
END_TEST

START_TEST(rejects_an_hsa_id_without_dash)
{
        assert_hsa_error("SE2321000131", "'SE2321000131' has no '-' after the organisation number");
        assert_hsa_error("SE2321000131_E1",
                         "character 13 ('_') must be '-' after the organisation number");
}
END_TEST

START_TEST(rejects_an_hsa_id_with_an_empty_suffix)
{
        assert_hsa_error("SE2321000131-",
                         "'SE2321000131-' has nothing after '-', expected one or more [A-Za-z0-9]");
}
END_TEST

START_TEST(rejects_a_swedish_letter_in_the_suffix)
{
        /* "å" is 0xC3 0xA5 in UTF-8: the 15th character, quoted as typed. */
        assert_hsa_error("SE2321000131-G\xc3\xa5rda",
                         "character 15 ('\xc3\xa5') is not one of the letters A-Z or digits an "
                         "HSA-id is made of: it never holds å, ä, ö or other letters, so copy it "
                         "as the HSA catalogue writes it");
        /* A byte that starts no character is named as a byte. */
        assert_hsa_error(
            "SE2321000131-G\xa5rda",
            "byte 15 (0xA5) is not UTF-8 text, expected a letter or digit [A-Za-z0-9]");
}
END_TEST

START_TEST(rejects_punctuation_in_the_suffix)
{
        assert_hsa_error("SE2321000131-E1-2",
                         "character 16 ('-') is not a letter or digit [A-Za-z0-9]");
        assert_hsa_error("SE2321000131-E 1",
                         "character 15 (' ') is not a letter or digit [A-Za-z0-9]");
}
END_TEST

/* ---- municipality codes ---- */

START_TEST(accepts_all_49_municipalities_of_the_county)
{
        ck_assert_uint_eq(avk_municipality_cnt, 49);
        for (size_t i = 0; i < avk_municipality_cnt; i++) {
                const char *code = avk_municipalities[i].code;

                ck_assert_msg(avk_ident_municipality_code(code, err, sizeof(err)) == 0,
                              "%s (%s) rejected: %s", code, avk_municipalities[i].name, err);
        }
}
END_TEST

START_TEST(accepts_goteborg_harryda_boras_and_lidkoping)
{
        ck_assert_int_eq(avk_ident_municipality_code("1480", err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_municipality_code("1401", err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_municipality_code("1490", err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_municipality_code("1494", err, sizeof(err)), 0);
}
END_TEST

START_TEST(rejects_stockholm)
{
        assert_municipality_error("0180",
                                  "'0180' is not one of the 49 municipalities in Västra Götaland");
}
END_TEST

START_TEST(rejects_a_letter_in_a_municipality_code)
{
        assert_municipality_error("14a0", "municipality code character 3 is 'a', expected a digit");
}
END_TEST

START_TEST(rejects_a_municipality_code_of_the_wrong_length)
{
        assert_municipality_error("148", "municipality code must be 4 digits, got 3 characters");
        assert_municipality_error("14800", "municipality code must be 4 digits, got 5 characters");
        assert_municipality_error("", "municipality code must be 4 digits, got 0 characters");
        /* Counted as a reader counts them: 5 characters, 6 bytes in UTF-8. */
        assert_municipality_error("Tj\xc3\xb6rn",
                                  "municipality code must be 4 digits, got 5 characters");
        assert_municipality_error(NULL, "municipality code is missing");
}
END_TEST

/* The table is searched by halves with the codes as numbers: each code finds its own entry, and
 * nothing else finds any - a code between two, before the first or after the last, a prefix or
 * an extension of one, the empty string. */
START_TEST(find_gives_each_code_its_entry_and_nothing_else_an_entry)
{
        for (size_t i = 0; i < avk_municipality_cnt; i++) {
                const char *code = avk_municipalities[i].code;
                char longer[8], shorter[4], next[12];
                ck_assert_ptr_eq(avk_municipality_find(code), &avk_municipalities[i]);
                snprintf(longer, sizeof(longer), "%s0", code);
                snprintf(shorter, sizeof(shorter), "%.3s", code);
                snprintf(next, sizeof(next), "%04d", atoi(code) + 1);
                ck_assert_ptr_null(avk_municipality_find(longer));
                ck_assert_ptr_null(avk_municipality_find(shorter));
                if (i + 1 == avk_municipality_cnt ||
                    strcmp(next, avk_municipalities[i + 1].code) != 0)
                        ck_assert_ptr_null(avk_municipality_find(next));
        }
        static const char *const none[] = {"", "0000", "1400", "9999", "14Ã¶", "14 0"};
        for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
                ck_assert_msg(avk_municipality_find(none[i]) == NULL, "%s", none[i]);
        ck_assert_ptr_null(avk_municipality_find(NULL));
}
END_TEST

/* ---- timestamps ---- */

#define NOW_MS  INT64_C(1773571200000) /* 2026-03-15 10:40 UTC */
#define MIN_MS  INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)
#define SKEW_MS (5 * MIN_MS)

START_TEST(accepts_a_timestamp_in_the_past_or_now)
{
        ck_assert_int_eq(avk_ident_not_future(NOW_MS, NOW_MS, SKEW_MS, err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_not_future(NOW_MS - 24 * HOUR_MS, NOW_MS, 0, err, sizeof(err)),
                         0);
        ck_assert_int_eq(avk_ident_not_future(INT64_MIN, NOW_MS, 0, err, sizeof(err)), 0);
}
END_TEST

START_TEST(accepts_a_timestamp_ahead_within_the_clock_skew)
{
        ck_assert_int_eq(avk_ident_not_future(NOW_MS + 1, NOW_MS, SKEW_MS, err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_not_future(NOW_MS + SKEW_MS, NOW_MS, SKEW_MS, err, sizeof(err)),
                         0);
}
END_TEST

START_TEST(rejects_a_timestamp_just_beyond_the_clock_skew)
{
        ck_assert_int_eq(
            avk_ident_not_future(NOW_MS + SKEW_MS + 1, NOW_MS, SKEW_MS, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "is 5 min 1 ms in the future (allowed clock skew 5 min)");
}
END_TEST

START_TEST(rejects_a_timestamp_hours_ahead_naming_the_distance)
{
        int64_t ts = NOW_MS + 3 * HOUR_MS + 12 * MIN_MS;

        ck_assert_int_eq(avk_ident_not_future(ts, NOW_MS, SKEW_MS, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "is 3 h 12 min in the future (allowed clock skew 5 min)");
        ck_assert_int_eq(
            avk_ident_not_future(NOW_MS + 2 * 24 * HOUR_MS + 1500, NOW_MS, 0, err, sizeof(err)),
            -1);
        ck_assert_str_eq(err, "is 2 d 1 s 500 ms in the future (allowed clock skew 0 ms)");
}
END_TEST

START_TEST(rejects_any_future_timestamp_without_skew)
{
        ck_assert_int_eq(avk_ident_not_future(NOW_MS + 1, NOW_MS, 0, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "is 1 ms in the future (allowed clock skew 0 ms)");
        /* a negative skew allows nothing rather than demanding a past timestamp */
        ck_assert_int_eq(avk_ident_not_future(NOW_MS, NOW_MS, -MIN_MS, err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_not_future(NOW_MS + 1, NOW_MS, -MIN_MS, err, sizeof(err)), -1);
}
END_TEST

START_TEST(handles_the_extreme_timestamps_without_overflow)
{
        ck_assert_int_eq(avk_ident_not_future(INT64_MAX, INT64_MIN, INT64_MAX, err, sizeof(err)),
                         -1);
        ck_assert_int_eq(avk_ident_not_future(INT64_MAX, NOW_MS, INT64_MAX, err, sizeof(err)), 0);
}
END_TEST

/* ---- today ---- */

static int ymd_of_now(void)
{
        time_t now = time(NULL);
        struct tm tm;

        ck_assert_ptr_nonnull(localtime_r(&now, &tm));
        return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

START_TEST(today_is_the_local_date_as_yyyymmdd)
{
        int before = ymd_of_now();
        int today = avk_ident_today_ymd();
        int after = ymd_of_now();

        /* Midnight may pass between the calls. */
        ck_assert_msg(today == before || today == after, "today %d, clock %d..%d", today, before,
                      after);
        ck_assert_int_ge(today, 20240101);
        ck_assert_int_ge(today % 10000 / 100, 1);
        ck_assert_int_le(today % 10000 / 100, 12);
        ck_assert_int_ge(today % 100, 1);
        ck_assert_int_le(today % 100, 31);
}
END_TEST

/* ---- UUID text ---- */

START_TEST(is_uuid_accepts_either_case_and_refuses_a_wrong_length)
{
        ck_assert_int_eq(avk_ident_is_uuid("0f8c2a4e-1b3d-4c5e-8f9a-0b1c2d3e4f5a", 36), 1);
        ck_assert_int_eq(avk_ident_is_uuid("0F8C2A4E-1B3D-4C5E-8F9A-0B1C2D3E4F5A", 36), 1);
        ck_assert_int_eq(avk_ident_is_uuid("0f8c2a4e-1b3d-4c5e-8f9a-0b1c2d3e4f5", 35), 0);
        ck_assert_int_eq(avk_ident_is_uuid("0f8c2a4e-1b3d-4c5e-8f9a-0b1c2d3e4f5ab", 37), 0);
        ck_assert_int_eq(avk_ident_is_uuid("", 0), 0);
}
END_TEST

/* Every one-byte change of a UUID, at every position: the answer is libuuid's. */
START_TEST(is_uuid_answers_as_uuid_parse)
{
        static const char bytes[] = "09afAFgG-_ /:@`{\x80\xff";
        char text[37];
        uuid_t parsed;
        for (size_t at = 0; at < 36; at++) {
                for (size_t b = 0; b < sizeof(bytes) - 1; b++) {
                        memcpy(text, "0f8c2a4e-1b3d-4c5e-8f9a-0b1c2d3e4f5a", sizeof(text));
                        text[at] = bytes[b];
                        ck_assert_msg(avk_ident_is_uuid(text, 36) ==
                                          (uuid_parse(text, parsed) == 0),
                                      "%s", text);
                }
        }
}
END_TEST

static Suite *ident_suite(void)
{
        Suite *s = suite_create("ident");
        TCase *forms = tcase_create("personal_id_forms");
        TCase *century = tcase_create("personal_id_century");
        TCase *coordination = tcase_create("coordination_number");
        TCase *dates = tcase_create("personal_id_dates");
        TCase *syntax = tcase_create("personal_id_syntax");
        TCase *privacy = tcase_create("personal_id_privacy");
        TCase *hsa = tcase_create("hsa_id");
        TCase *municipality = tcase_create("municipality_code");
        TCase *time_checks = tcase_create("time");
        TCase *uuid = tcase_create("uuid");

        tcase_add_test(forms, accepts_ten_digits_with_dash);
        tcase_add_test(forms, accepts_ten_digits_without_separator);
        tcase_add_test(forms, accepts_twelve_digits_without_separator);
        tcase_add_test(forms, accepts_twelve_digits_with_dash);
        tcase_add_test(forms, accepts_ten_digits_with_plus_as_a_centenarian);
        tcase_add_test(forms, accepts_a_null_out);
        tcase_add_test(forms, odd_ninth_digit_is_male_even_is_female);
        tcase_add_test(forms, rejects_a_wrong_check_digit_naming_both_digits);
        suite_add_tcase(s, forms);

        tcase_add_test(century, dash_puts_a_past_year_of_this_century_in_this_century);
        tcase_add_test(century, plus_moves_the_birth_a_further_century_back);
        tcase_add_test(century, dash_accepts_a_birth_today);
        tcase_add_test(century, dash_puts_a_birthday_later_this_year_in_the_last_century);
        tcase_add_test(century, plus_on_a_birthday_today_is_a_hundred_years_ago);
        tcase_add_test(century, plus_on_a_birthday_later_this_year_is_two_centuries_ago);
        tcase_add_test(century, century_follows_today_not_the_clock);
        tcase_add_test(century, rejects_plus_in_the_twelve_digit_form);
        tcase_add_test(century, rejects_a_today_that_is_not_a_date);
        suite_add_tcase(s, century);

        tcase_add_test(coordination, accepts_the_coordination_number_from_the_domain_docs);
        tcase_add_test(coordination, accepts_a_coordination_number_in_twelve_digits);
        tcase_add_test(coordination, rejects_coordination_day_92);
        tcase_add_test(coordination, rejects_day_60_between_the_two_ranges);
        tcase_add_test(coordination, rejects_a_coordination_day_that_the_month_lacks);
        suite_add_tcase(s, coordination);

        tcase_add_test(dates, accepts_february_29_in_leap_years);
        tcase_add_test(dates, rejects_february_29_in_a_common_year);
        tcase_add_test(dates, rejects_february_29_in_1900_which_is_not_a_leap_year);
        tcase_add_test(dates, rejects_february_30);
        tcase_add_test(dates, rejects_day_31_in_a_month_of_30);
        tcase_add_test(dates, rejects_month_13);
        tcase_add_test(dates, rejects_month_0);
        tcase_add_test(dates, rejects_day_0);
        tcase_add_test(dates, rejects_day_32);
        tcase_add_test(dates, rejects_a_birth_date_in_the_future);
        tcase_add_test(dates, accepts_a_twelve_digit_birth_today);
        suite_add_tcase(s, dates);

        tcase_add_test(syntax, rejects_nine_digits);
        tcase_add_test(syntax, rejects_eleven_and_thirteen_digits);
        tcase_add_test(syntax, rejects_the_empty_string_and_null);
        tcase_add_test(syntax, rejects_a_letter_naming_its_position);
        tcase_add_test(syntax, rejects_a_space_as_separator);
        tcase_add_test(syntax, rejects_a_non_ascii_byte_as_hex);
        tcase_add_test(syntax, rejects_a_separator_elsewhere_than_before_the_last_four_digits);
        suite_add_tcase(s, syntax);

        tcase_add_test(privacy, error_sentences_never_repeat_the_personal_id);
        tcase_add_test(privacy, errors_fit_a_small_buffer_and_tolerate_none);
        suite_add_tcase(s, privacy);

        tcase_add_test(hsa, accepts_hsa_ids_of_vgr);
        tcase_add_test(hsa, accepts_an_hsa_id_of_exactly_31_characters);
        tcase_add_test(hsa, rejects_an_hsa_id_of_32_characters);
        tcase_add_test(hsa, rejects_an_hsa_id_without_se);
        tcase_add_test(hsa, rejects_a_null_hsa_id);
        tcase_add_test(hsa, rejects_an_organisation_number_with_a_wrong_check_digit);
        tcase_add_test(hsa, rejects_an_organisation_number_of_the_wrong_length);
        tcase_add_test(hsa, rejects_a_letter_in_the_organisation_number);
        tcase_add_test(hsa, rejects_an_hsa_id_without_dash);
        tcase_add_test(hsa, rejects_an_hsa_id_with_an_empty_suffix);
        tcase_add_test(hsa, rejects_a_swedish_letter_in_the_suffix);
        tcase_add_test(hsa, rejects_punctuation_in_the_suffix);
        suite_add_tcase(s, hsa);

        tcase_add_test(municipality, accepts_all_49_municipalities_of_the_county);
        tcase_add_test(municipality, accepts_goteborg_harryda_boras_and_lidkoping);
        tcase_add_test(municipality, rejects_stockholm);
        tcase_add_test(municipality, rejects_a_letter_in_a_municipality_code);
        tcase_add_test(municipality, rejects_a_municipality_code_of_the_wrong_length);
        tcase_add_test(municipality, find_gives_each_code_its_entry_and_nothing_else_an_entry);
        suite_add_tcase(s, municipality);

        tcase_add_test(time_checks, accepts_a_timestamp_in_the_past_or_now);
        tcase_add_test(time_checks, accepts_a_timestamp_ahead_within_the_clock_skew);
        tcase_add_test(time_checks, rejects_a_timestamp_just_beyond_the_clock_skew);
        tcase_add_test(time_checks, rejects_a_timestamp_hours_ahead_naming_the_distance);
        tcase_add_test(time_checks, rejects_any_future_timestamp_without_skew);
        tcase_add_test(time_checks, handles_the_extreme_timestamps_without_overflow);
        tcase_add_test(time_checks, today_is_the_local_date_as_yyyymmdd);
        suite_add_tcase(s, time_checks);

        tcase_add_test(uuid, is_uuid_accepts_either_case_and_refuses_a_wrong_length);
        tcase_add_test(uuid, is_uuid_answers_as_uuid_parse);
        suite_add_tcase(s, uuid);

        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(ident_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
