/*
 * The scrubber (consumer/analyse/scrub.h) as tables: every usual spelling of a
 * personnummer, samordningsnummer, Swedish and international phone number
 * and e-mail address is replaced by its marker; the near misses a
 * description is full of - dates, times, years, HSA-ids, municipality codes,
 * doses, amounts - are left as written. Then UTF-8: multibyte text around
 * and between matches is copied byte for byte, and random text never comes
 * out as invalid UTF-8.
 *
 * Check digits used below (Luhn over YYMMDDNNN): 400314-123[3],
 * 121212-121[2], 701063-239[1] (a samordningsnummer: day 03 + 60).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/analyse/scrub.h"

struct row {
        const char *in, *out;
};

static char *scrub(const char *in, struct avk_scrub_counts *counts)
{
        size_t len = 0;
        char *out = avk_scrub_text(in, strlen(in), &len, counts);
        ck_assert_ptr_nonnull(out);
        ck_assert_uint_eq(len, strlen(out));
        return out;
}

static void check_rows(const struct row *rows, size_t cnt)
{
        for (size_t i = 0; i < cnt; i++) {
                char *out = scrub(rows[i].in, NULL);
                ck_assert_msg(strcmp(out, rows[i].out) == 0,
                              "row %zu: \"%s\" gave \"%s\", want \"%s\"", i, rows[i].in, out,
                              rows[i].out);
                free(out);
        }
}

#define CHECK_ROWS(rows) check_rows(rows, sizeof(rows) / sizeof(rows[0]))

START_TEST(personnummer_in_every_spelling_is_replaced)
{
        static const struct row rows[] = {
            {"400314-1233", "[personnummer]"},
            {"400314+1233", "[personnummer]"},
            {"4003141233", "[personnummer]"},
            {"400314 1233", "[personnummer]"},
            {"19400314-1233", "[personnummer]"},
            {"194003141233", "[personnummer]"},
            {"19400314 1233", "[personnummer]"},
            {"19400314 - 1233", "[personnummer]"},
            {"20121212-1212", "[personnummer]"},
            {"12 12 12-1212", "[personnummer]"},
            {"1940-03-14-1233", "[personnummer]"},
            {"pnr 400314-1233, född 1940", "pnr [personnummer], född 1940"},
            {"Pnr:121212-1212.", "Pnr:[personnummer]."},
            {"(121212-1212)", "([personnummer])"},
            {"pnr400314-1233", "pnr[personnummer]"},
            {"400314-1233 och 121212-1212", "[personnummer] och [personnummer]"},
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(wrong_check_digit_is_replaced_all_the_same)
{
        static const struct row rows[] = {
            {"400314-1234", "[personnummer]"},
            {"194003141230", "[personnummer]"},
            {"4003141239", "[personnummer]"},
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(samordningsnummer_is_replaced)
{
        static const struct row rows[] = {
            {"701063-2391", "[personnummer]"}, {"19701063-2391", "[personnummer]"},
            {"7010632391", "[personnummer]"},  {"197010632391", "[personnummer]"},
            {"701091+2391", "[personnummer]"},
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(unicode_separators_inside_a_number_are_taken_with_it)
{
        static const struct row rows[] = {
            {"121212\xe2\x80\x93"
             "1212 (tankstreck)",
             "[personnummer] (tankstreck)"},
            {"121212\xc2\xa0"
             "1212",
             "[personnummer]"},
            {"070\xe2\x80\x89"
             "123\xe2\x80\x89"
             "45\xe2\x80\x89"
             "67",
             "[telefon]"},
            {"070\xe2\x88\x92"
             "1234567",
             "[telefon]"},
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(swedish_phone_numbers_are_replaced)
{
        static const struct row rows[] = {
            {"070-123 45 67", "[telefon]"},
            {"070 123 45 67", "[telefon]"},
            {"070-1234567", "[telefon]"},
            {"0701234567", "[telefon]"},
            {"08-123 456 78", "[telefon]"},
            {"08-12 34 56", "[telefon]"},
            {"031-12 34 56", "[telefon]"},
            {"0520-123 45", "[telefon]"},
            {"0771-23 23 23", "[telefon]"},
            {"(031) 123 45 67", "[telefon]"},
            {"ring 010-473 00 00 före 16", "ring [telefon] före 16"},
            {"tel:031123456.", "tel:[telefon]."},
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(international_phone_numbers_are_replaced)
{
        static const struct row rows[] = {
            {"+46 70 123 45 67", "[telefon]"},
            {"+46701234567", "[telefon]"},
            {"+46 (0)70-123 45 67", "[telefon]"},
            {"0046 70 123 45 67", "[telefon]"},
            {"00 46 70 123 45 67", "[telefon]"},
            {"+47 22 12 34 56", "[telefon]"},
            {"+1 (555) 123-4567", "[telefon]"},
            {"anhörig (+46 8 123 456 78) nåddes", "anhörig ([telefon]) nåddes"},
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(email_addresses_are_replaced)
{
        static const struct row rows[] = {
            {"anna.andersson@vgregion.se", "[e-post]"},
            {"Mejla ANNA@VGR.SE i dag", "Mejla [e-post] i dag"},
            {"<b.svensson+avvik@kommun.goteborg.se>", "<[e-post]>"},
            {"Skicka till \xc3\x85sa.\xc3\x96"
             "berg@h\xc3\xb6glandet.se, tack",
             "Skicka till [e-post], tack"},
            {"a@b.se\xe2\x80\x93"
             "070-123 45 67",
             "[e-post]\xe2\x80\x93[telefon]"},
            {"x@a.se@b.se", "[e-post]@b.se"},
            {"4003141233@sms.example.se", "[e-post]"},
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(dates_times_years_and_codes_are_left_alone)
{
        static const char *const kept[] = {
            "2026-11-20",
            "2026-11-20 14:30",
            "20261120",
            "kl. 14:30",
            "kl 08.30-09.15",
            "14.30",
            "år 2026",
            "1999",
            "Göteborg 1480 och Mölndal 1481",
            "SE2321000131-E000000012345",
            "SE2120001215-HSK0042",
            "SE2321000131-E070123456",
            "ärende 2026-123456",
            "1 200 kr",
            "0,5 mg x 2",
            "10-15 minuter",
            "v. 47",
            "05-01-2026",
            "version 1.2.3",
            "1 2 3",
            "tel. saknas",
            "@home",
            "a@b",
            "user@localhost",
            "4013141233",
            "070-12",
            "",
        };
        for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
                struct avk_scrub_counts c;
                char *out = scrub(kept[i], &c);
                ck_assert_msg(strcmp(out, kept[i]) == 0, "\"%s\" became \"%s\"", kept[i], out);
                ck_assert_uint_eq(c.personal_ids + c.phones + c.emails, 0);
                free(out);
        }
}
END_TEST

START_TEST(identity_glued_to_a_phone_number_is_told_apart)
{
        static const struct row rows[] = {
            {"400314-1233 070-123 45 67", "[personnummer] [telefon]"},
            {"070-123 45 67 400314-1233", "[telefon] [personnummer]"},
            {"+46 8 12 34 56 400314 1233", "[telefon] [personnummer]"},
            {"031-12 34 56 19400314-1233", "[telefon] [personnummer]"},
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(counts_say_what_was_replaced)
{
        struct avk_scrub_counts c;
        char *out = scrub("400314-1233, 701063-2391, 070-123 45 67 och a@b.se", &c);
        ck_assert_str_eq(out, "[personnummer], [personnummer], [telefon] och [e-post]");
        ck_assert_uint_eq(c.personal_ids, 2);
        ck_assert_uint_eq(c.phones, 1);
        ck_assert_uint_eq(c.emails, 1);
        free(out);
}
END_TEST

START_TEST(multibyte_text_around_matches_is_copied_byte_for_byte)
{
        const char *in =
            "Åsa på avd 5 ringde 070-123 45 67 ö pnr 400314-1233 ÅÄÖ åäö é ü ✓ 🙂";
        char *out = scrub(in, NULL);
        ck_assert_str_eq(
            out,
            "Åsa på avd 5 ringde [telefon] ö pnr [personnummer] ÅÄÖ åäö é ü ✓ 🙂");
        free(out);
        /* Embedded NULs and bytes that are not UTF-8 pass through untouched. */
        const char raw[] = {'a', '\0', (char)0xff, '1', (char)0xc3};
        size_t len;
        out = avk_scrub_text(raw, sizeof(raw), &len, NULL);
        ck_assert_uint_eq(len, sizeof(raw));
        ck_assert_int_eq(memcmp(out, raw, sizeof(raw)), 0);
        free(out);
}
END_TEST

/* Whether s[0..len) is well-formed UTF-8 (RFC 3629). */
static int valid_utf8(const unsigned char *s, size_t len)
{
        size_t i = 0;
        while (i < len) {
                unsigned char c = s[i];
                size_t n = c < 0x80         ? 1
                           : (c >> 5) == 6  ? 2
                           : (c >> 4) == 14 ? 3
                           : (c >> 3) == 30 ? 4
                                            : 0;
                if (!n || i + n > len)
                        return 0;
                for (size_t k = 1; k < n; k++)
                        if ((s[i + k] & 0xc0) != 0x80)
                                return 0;
                i += n;
        }
        return 1;
}

START_TEST(random_utf8_text_stays_valid_utf8)
{
        static const char *const pieces[] = {
            "0",    "1",  "4",      "7",    "9", "00",       "070",
            "-",    " ",  "+",      "(",    ")", "@",        ".",
            "se",   "a",  "å",      "Ö",    "–", "\xc2\xa0", "\xe2\x80\x89",
            "🙂", "12", "400314", "1233", ":", "x.y",
        };
        uint64_t state = 0x2545f4914f6cdd1dULL;
        char in[512];
        for (int round = 0; round < 5000; round++) {
                size_t len = 0;
                for (;;) {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        const char *p = pieces[state % (sizeof(pieces) / sizeof(pieces[0]))];
                        if (len + strlen(p) >= sizeof(in) || (state >> 40) % 64 == 0)
                                break;
                        memcpy(in + len, p, strlen(p));
                        len += strlen(p);
                }
                size_t out_len;
                char *out = avk_scrub_text(in, len, &out_len, NULL);
                ck_assert_ptr_nonnull(out);
                ck_assert_msg(valid_utf8((unsigned char *)out, out_len), "round %d", round);
                ck_assert_uint_le(out_len, 2 * len);
                free(out);
        }
}
END_TEST

static Suite *scrub_suite(void)
{
        Suite *s = suite_create("scrub");
        TCase *tc = tcase_create("tables");
        tcase_add_test(tc, personnummer_in_every_spelling_is_replaced);
        tcase_add_test(tc, wrong_check_digit_is_replaced_all_the_same);
        tcase_add_test(tc, samordningsnummer_is_replaced);
        tcase_add_test(tc, unicode_separators_inside_a_number_are_taken_with_it);
        tcase_add_test(tc, swedish_phone_numbers_are_replaced);
        tcase_add_test(tc, international_phone_numbers_are_replaced);
        tcase_add_test(tc, email_addresses_are_replaced);
        tcase_add_test(tc, dates_times_years_and_codes_are_left_alone);
        tcase_add_test(tc, identity_glued_to_a_phone_number_is_told_apart);
        tcase_add_test(tc, counts_say_what_was_replaced);
        suite_add_tcase(s, tc);
        TCase *utf8 = tcase_create("utf-8");
        tcase_add_test(utf8, multibyte_text_around_matches_is_copied_byte_for_byte);
        tcase_add_test(utf8, random_utf8_text_stays_valid_utf8);
        suite_add_tcase(s, utf8);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(scrub_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
