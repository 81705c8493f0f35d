/*
 * The scrubber (common/util/scrub.h) as tables: every usual spelling of a
 * personnummer, samordningsnummer, Swedish and international phone number
 * and e-mail address is replaced by its marker; the near misses a
 * description is full of - dates, times, years, HSA-ids, municipality codes,
 * doses, amounts - are left as written. Then UTF-8: multibyte text around
 * and between matches is copied byte for byte, and random text never comes
 * out as invalid UTF-8. Then the spellings that got past the scrubber once
 * (issue 17), and a property: identities generated in every spelling a
 * person can read, embedded in random text, never come out readable, and
 * the output is a fixed point.
 *
 * Check digits used below (Luhn over YYMMDDNNN): 400314-123[3],
 * 121212-121[2], 701063-239[1] (a samordningsnummer: day 03 + 60).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include "common/util/luhn.h"
#include "common/util/scrub.h"

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
            "00000000-0000-4000-8000-00000000beef",
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
            /* "23 06 1480 46" has a right check digit: it must not take the "+46" */
            {"23 06 1480 +46 70 816 12 53", "23 06 1480 [telefon]"},
            {"(031) 128 23 06 1480 +46 (0)70 - 816 12 53", "[telefon] 1480 [telefon]"},
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

/* Random text of len bytes < size, from pieces of identities, separators and
 * multibyte characters, ending where the generator says; *state steps on. */
static size_t random_text(uint64_t *state, char *in, size_t size)
{
        static const char *const pieces[] = {
            "0",    "1",  "4",      "7",    "9", "00",       "070",
            "-",    " ",  "+",      "(",    ")", "@",        ".",
            "se",   "a",  "å",      "Ö",    "–", "\xc2\xa0", "\xe2\x80\x89",
            "🙂", "12", "400314", "1233", ":", "x.y",
        };
        size_t len = 0;
        for (;;) {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                const char *p = pieces[*state % (sizeof(pieces) / sizeof(pieces[0]))];
                if (len + strlen(p) >= size || (*state >> 40) % 64 == 0)
                        return len;
                memcpy(in + len, p, strlen(p));
                len += strlen(p);
        }
}

START_TEST(random_utf8_text_stays_valid_utf8)
{
        uint64_t state = 0x2545f4914f6cdd1dULL;
        char in[512];
        for (int round = 0; round < 5000; round++) {
                size_t len = random_text(&state, in, sizeof(in));
                size_t out_len;
                char *out = avk_scrub_text(in, len, &out_len, NULL);
                ck_assert_ptr_nonnull(out);
                ck_assert_msg(valid_utf8((unsigned char *)out, out_len), "round %d", round);
                ck_assert_uint_le(out_len, 2 * len);
                free(out);
        }
}
END_TEST

/* avk_scrub_count() answers short plain text without scrubbing it: it must
 * say exactly what scrubbing replaces, near its shortcut's edge too. */
START_TEST(count_says_what_scrubbing_would_replace)
{
        static const struct {
                const char *in;
                size_t personal_ids, phones, emails;
        } rows[] = {
            {"LIFECARE-88412", 0, 0, 0}, {"08-123 45", 0, 1, 0},       {"08-123 4", 0, 0, 0},
            {"4003141233", 1, 0, 0},     {"anna(at)vgr.se", 0, 0, 1},  {"anna@vgr.se", 0, 0, 1},
            {"REF 070-12", 0, 0, 0},     {"ref ０８-123 45", 0, 1, 0},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                struct avk_scrub_counts c;
                ck_assert_int_eq(avk_scrub_count(rows[i].in, strlen(rows[i].in), &c), 0);
                ck_assert_msg(c.personal_ids == rows[i].personal_ids &&
                                  c.phones == rows[i].phones && c.emails == rows[i].emails,
                              "row %zu (\"%s\"): %zu %zu %zu", i, rows[i].in, c.personal_ids,
                              c.phones, c.emails);
        }
        uint64_t state = 0x9e3779b97f4a7c15ULL;
        char in[24];
        for (int round = 0; round < 20000; round++) {
                size_t len = random_text(&state, in, sizeof(in));
                struct avk_scrub_counts counted, scrubbed;
                ck_assert_int_eq(avk_scrub_count(in, len, &counted), 0);
                free(avk_scrub_text(in, len, NULL, &scrubbed));
                ck_assert_msg(counted.personal_ids == scrubbed.personal_ids &&
                                  counted.phones == scrubbed.phones &&
                                  counted.emails == scrubbed.emails,
                              "round %d: \"%.*s\"", round, (int)len, in);
        }
}
END_TEST

/* ---- the spellings that got past the scrubber (issue 17) ---- */

START_TEST(separators_of_every_class_inside_a_personnummer_are_taken_with_it)
{
        static const struct row rows[] = {
            {"pnr 400314\n1233.", "pnr [personnummer]."},
            {"pnr 400314\r\n1233", "pnr [personnummer]"},
            {"pnr 400314  1233", "pnr [personnummer]"},
            {"pnr 400314 \n - 1233", "pnr [personnummer]"},
            {"400314\xe2\x80\x90"
             "1233",
             "[personnummer]"}, /* U+2010 hyphen */
            {"400314\xef\xb9\xa3"
             "1233",
             "[personnummer]"}, /* U+FE63 small hyphen-minus */
            {"400314\xef\xbc\x8d"
             "1233",
             "[personnummer]"}, /* U+FF0D fullwidth hyphen */
            {"400314\xe2\x80\x94"
             "1233",
             "[personnummer]"}, /* U+2014 em dash */
            {"400314\xe3\x80\x80"
             "1233",
             "[personnummer]"}, /* U+3000 ideographic space */
            {"400314\xe2\x80\xa8"
             "1233",
             "[personnummer]"}, /* U+2028 line separator */
            {"400314/1233", "[personnummer]"},
            {"4003\xc2\xad"
             "14-1233",
             "[personnummer]"}, /* soft hyphen */
            {"400314-12\xe2\x80\x8b"
             "33",
             "[personnummer]"}, /* zero-width space */
            {"40\xe2\x81\xa0"
             "0314\xef\xbb\xbf"
             "1233",
             "[personnummer]"}, /* word joiner, BOM */
            {"4003 14 12 33", "[personnummer]"},
            {"4 0 0 3 1 4 - 1 2 3 3", "[personnummer]"},
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(digits_of_every_unicode_digit_class_are_read)
{
        static const struct row rows[] = {
            /* fullwidth */
            {"\xef\xbc\x94\xef\xbc\x90\xef\xbc\x90\xef\xbc\x93\xef\xbc\x91\xef\xbc\x94-"
             "\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93\xef\xbc\x93",
             "[personnummer]"},
            /* Arabic-Indic */
            {"\xd9\xa4\xd9\xa0\xd9\xa0\xd9\xa3\xd9\xa1\xd9\xa4-\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa3",
             "[personnummer]"},
            /* Devanagari, mixed with ASCII */
            {"\xe0\xa5\xaa"
             "00314-1233",
             "[personnummer]"},
            /* superscripts and circled digits */
            {"\xe2\x81\xb4"
             "00314-\xe2\x91\xa0"
             "233",
             "[personnummer]"},
            /* mathematical bold */
            {"\xf0\x9d\x9f\x92"
             "00314-1233 \xf0\x9d\x9f\x8e"
             "70-123 45 67",
             "[personnummer] [telefon]"},
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(a_personnummer_after_any_number_of_digit_groups_is_replaced)
{
        char in[1024];
        for (size_t groups = 1; groups < 300; groups++) {
                for (size_t i = 0; i < groups; i++)
                        memcpy(in + 2 * i, "7 ", 2);
                strcpy(in + 2 * groups, "400314-1233");
                char *out = scrub(in, NULL);
                ck_assert_msg(strcmp(out + 2 * groups, "[personnummer]") == 0,
                              "after %zu groups: %s", groups, out + 2 * groups);
                free(out);
        }
}
END_TEST

START_TEST(phone_numbers_with_a_slash_or_other_classes_are_replaced)
{
        static const struct row rows[] = {
            {"070/123 45 67", "[telefon]"},
            {"ring 031/12 34 56", "ring [telefon]"},
            {"070\xe2\x80\x90"
             "123\n45 67",
             "[telefon]"},
            {"\xef\xbc\x90\xef\xbc\x97\xef\xbc\x90-123 45 67", "[telefon]"},
            {"\xef\xbc\x8b"
             "46 70 123 45 67",
             "[telefon]"}, /* fullwidth plus */
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(email_addresses_written_for_people_are_replaced)
{
        static const struct row rows[] = {
            {"anna(at)vgr.se", "[e-post]"},
            {"skriv till anna (at) vgr.se.", "skriv till [e-post]."},
            {"anna [AT] vgr [dot] se", "[e-post]"},
            {"anna{at}vgr(punkt)se", "[e-post]"},
            {"anna (snabel-a) vgr.se", "[e-post]"},
            {"anna @ vgr.se", "[e-post]"},
            {"anna\xef\xbc\xa0vgr.se", "[e-post]"}, /* fullwidth @ */
            {"anna\xef\xb9\xab"
             "vgr.se",
             "[e-post]"},                        /* small @ */
            {"an\xc2\xadna@vgr.se", "[e-post]"}, /* soft hyphen */
            {"alternativ (a) eller (b)", "alternativ (a) eller (b)"},
        };
        CHECK_ROWS(rows);
}
END_TEST

START_TEST(scrubbing_is_idempotent_where_one_match_ends_and_another_begins)
{
        static const struct row rows[] = {
            {"a@b.se070-123 45 67", "[e-post][telefon]"},
            {"a@b.se400314-1233", "[e-post][personnummer]"},
        };
        CHECK_ROWS(rows);
}
END_TEST

/* ---- property: identities in every spelling, in random text ---- */

static uint64_t next_random(uint64_t *state)
{
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        return *state;
}

static size_t pick(uint64_t *state, size_t n)
{
        return (size_t)(next_random(state) % n);
}

struct text {
        char b[16384];
        size_t len;
};

static void put(struct text *t, const char *s)
{
        size_t n = strlen(s);
        ck_assert_uint_lt(t->len + n, sizeof(t->b));
        memcpy(t->b + t->len, s, n);
        t->len += n;
        t->b[t->len] = '\0';
}

static void put_cp(struct text *t, UChar32 cp)
{
        char bytes[U8_MAX_LENGTH + 1];
        int32_t n = 0;
        U8_APPEND_UNSAFE(bytes, n, cp);
        bytes[n] = '\0';
        put(t, bytes);
}

/* A digit in one of the Unicode digit classes a reader takes for it. */
static void put_digit(struct text *t, int d, uint64_t *rnd)
{
        static const UChar32 zeros[] = {'0',    '0',    0xff10, 0x0660,  0x06f0,  0x0966,
                                        0x09e6, 0x0e50, 0x1040, 0x1d7ce, 0x1d7ec, 0x1d7f6};
        static const UChar32 superscript[] = {0x2070, 0x00b9, 0x00b2, 0x00b3, 0x2074,
                                              0x2075, 0x2076, 0x2077, 0x2078, 0x2079};
        size_t k = pick(rnd, sizeof(zeros) / sizeof(zeros[0]) + 2);
        if (k == sizeof(zeros) / sizeof(zeros[0]))
                put_cp(t, superscript[d]);
        else if (k > sizeof(zeros) / sizeof(zeros[0]))
                put_cp(t, d == 0 ? 0x24ea : 0x2460 + d - 1); /* circled */
        else
                put_cp(t, zeros[k] + d);
}

static const char *const invisible[] = {
    "\xc2\xad", "\xe2\x80\x8b", "\xe2\x80\x8c", "\xe2\x80\x8d", "\xe2\x81\xa0", "\xef\xbb\xbf",
};

/* Between two characters of an identity: now and then an invisible one. */
static void maybe_invisible(struct text *t, uint64_t *rnd)
{
        if (pick(rnd, 8) == 0)
                put(t, invisible[pick(rnd, sizeof(invisible) / sizeof(invisible[0]))]);
}

static const char *const separators[] = {
    "-",
    " ",
    "  ",
    "\n",
    "\r\n",
    " - ",
    "\t",
    "/",
    "\xc2\xa0",
    "\xe2\x80\x89",
    "\xe2\x80\xaf",
    "\xe3\x80\x80",
    "\xe2\x80\x90",
    "\xe2\x80\x91",
    "\xe2\x80\x92",
    "\xe2\x80\x93",
    "\xe2\x80\x94",
    "\xe2\x88\x92",
    "\xef\xb9\xa3",
    "\xef\xbc\x8d",
    "\xe2\x80\xa8",
};

static const char *separator(uint64_t *rnd)
{
        return separators[pick(rnd, sizeof(separators) / sizeof(separators[0]))];
}

/* Writes digits d[0..n), a separator before each position marked in cut. */
static void put_number(struct text *t, const char *d, size_t n, const int *cut, uint64_t *rnd)
{
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && cut[i])
                        put(t, separator(rnd));
                else if (i > 0)
                        maybe_invisible(t, rnd);
                put_digit(t, d[i] - '0', rnd);
        }
}

/* A personnummer or samordningsnummer with a right check digit, 10 or 12
 * digits, in one of the groupings people use; *core gets YYMMDDNNNC. */
static void put_personal_id(struct text *t, char core[11], uint64_t *rnd)
{
        unsigned year = 1900 + (unsigned)pick(rnd, 126), month = 1 + (unsigned)pick(rnd, 12);
        unsigned day = 1 + (unsigned)pick(rnd, 28) + (pick(rnd, 4) == 0 ? 60 : 0);
        char d[16];
        snprintf(d, sizeof(d), "%04u%02u%02u%03u", year % 10000, month % 100, day % 100,
                 (unsigned)pick(rnd, 1000));
        d[11] = (char)('0' + avk_luhn(d + 2, 9));
        d[12] = '\0';
        memcpy(core, d + 2, 10);
        core[10] = '\0';
        int twelve = pick(rnd, 2) == 0;
        const char *digits = twelve ? d : d + 2;
        size_t n = twelve ? 12 : 10, date = n - 4;
        int cut[12] = {0};
        switch (pick(rnd, 4)) {
        case 0: /* 4003141233 */
                break;
        case 1: /* 400314-1233, and the centenarian's 400314+1233 */
                cut[date] = 1;
                if (!twelve && pick(rnd, 4) == 0) {
                        put_number(t, digits, date, cut, rnd);
                        put(t, "+");
                        put_number(t, digits + date, 4, cut, rnd);
                        return;
                }
                break;
        case 2: /* 40 03 14-1233 */
                cut[date - 4] = cut[date - 2] = cut[date] = 1;
                break;
        default: /* anywhere: 4003 14 12 33 */
                for (int k = 0; k < 3; k++)
                        cut[1 + pick(rnd, n - 1)] = 1;
                break;
        }
        put_number(t, digits, n, cut, rnd);
}

/* A Swedish phone number, nationally or internationally written; *nsn gets
 * its national significant number (without the leading 0). */
static void put_phone(struct text *t, char nsn[12], uint64_t *rnd)
{
        static const char *const areas[] = {"70", "72", "73", "76", "79", "8", "31", "40", "520"};
        const char *area = areas[pick(rnd, sizeof(areas) / sizeof(areas[0]))];
        size_t n = strlen(area), total = strlen(area) + 7;
        memcpy(nsn, area, n);
        for (; n < total; n++)
                nsn[n] = (char)('0' + pick(rnd, 10));
        nsn[n] = '\0';
        int cut[12] = {0};
        for (size_t k = strlen(area) + 3; k < total; k += 2)
                cut[k] = pick(rnd, 3) != 0;
        cut[strlen(area)] = pick(rnd, 4) != 0;
        switch (pick(rnd, 5)) {
        case 0: /* 070-123 45 67 */
                put_digit(t, 0, rnd);
                put_number(t, nsn, total, cut, rnd);
                break;
        case 1: /* (070) 123 45 67 */
                put(t, "(");
                put_digit(t, 0, rnd);
                cut[strlen(area)] = 0;
                put_number(t, nsn, strlen(area), cut, rnd);
                put(t, ") ");
                put_number(t, nsn + strlen(area), total - strlen(area), cut + strlen(area), rnd);
                break;
        case 2: /* +46 70 123 45 67 */
                put(t, pick(rnd, 2) ? "+46"
                                    : "\xef\xbc\x8b"
                                      "46");
                put(t, separator(rnd));
                put_number(t, nsn, total, cut, rnd);
                break;
        case 3: /* +46 (0)70-123 45 67 */
                put(t, "+46 (0)");
                put_number(t, nsn, total, cut, rnd);
                break;
        default: /* 0046 70 123 45 67 */
                put(t, "0046 ");
                put_number(t, nsn, total, cut, rnd);
                break;
        }
}

/* An e-mail address with @ and dots as people write them; *local gets its
 * local part's letters, lower case. */
static void put_email(struct text *t, char local[16], uint64_t *rnd)
{
        static const char *const ats[] = {
            "@",      "@",    "\xef\xbc\xa0", "\xef\xb9\xab", "(at)", "[at]",
            " (at) ", "(AT)", "{at}",         " [snabel-a] ", "(a)",  " @ ",
        };
        static const char *const dots[] = {".", ".", ".", "(dot)", " [dot] ", "[.]", "(punkt)"};
        static const char *const tlds[] = {"se", "com", "nu", "org"};
        size_t n = 0;
        local[n++] = 'q';
        local[n++] = 'x';
        while (n < 9)
                local[n++] = (char)('a' + pick(rnd, 26));
        local[n] = '\0';
        for (size_t i = 0; i < n; i++) {
                if (i == 4 && pick(rnd, 2) == 0)
                        put(t, ".");
                else if (i > 0)
                        maybe_invisible(t, rnd);
                int upper = pick(rnd, 3) == 0;
                if (pick(rnd, 6) == 0)
                        put_cp(t, (upper ? 0xff21 : 0xff41) + (local[i] - 'a')); /* fullwidth */
                else
                        put_cp(t, upper ? local[i] - 'a' + 'A' : local[i]);
        }
        put(t, ats[pick(rnd, sizeof(ats) / sizeof(ats[0]))]);
        put(t, pick(rnd, 2) ? "vgregion" : "kommun");
        if (pick(rnd, 2) == 0) {
                put(t, dots[pick(rnd, sizeof(dots) / sizeof(dots[0]))]);
                put(t, "goteborg");
        }
        put(t, dots[pick(rnd, sizeof(dots) / sizeof(dots[0]))]);
        put(t, tlds[pick(rnd, sizeof(tlds) / sizeof(tlds[0]))]);
}

static const char *const prose[] = {
    "Patienten",
    "skrevs ut",
    "utan",
    "l\xc3\xa4kemedelslista",
    "kl 14:30",
    "2026-11-20",
    "0,5 mg x 2",
    "1480",
    "v. 47",
    "\xc3\x85sa p\xc3\xa5 avd 5",
    "SE2321000131-E000000012345",
    "\xf0\x9f\x99\x82",
    "ringde",
    "anh\xc3\xb6rig",
    "(se nedan)",
    "1 2 3",
    "o.s.v.",
    "\xc3\xb6",
};

static const char *const boundaries[] = {" ", "\n", ", ", ": ", " (", ") ", ". ", " \xe2\x80\x93 "};

/* The letters and digits of s, compatibility-folded and case-folded, digits
 * of every class as ASCII: what a reader can still make out, without the
 * separators. */
static char *skeleton(const char *s, size_t len)
{
        UErrorCode err = U_ZERO_ERROR;
        int32_t wide_len = 0;
        UChar *wide = malloc((len + 1) * sizeof(UChar)),
              *folded = malloc((len * 18 + 1) * sizeof(UChar));
        ck_assert_ptr_nonnull(wide);
        ck_assert_ptr_nonnull(folded);
        u_strFromUTF8WithSub(wide, (int32_t)len + 1, &wide_len, s, (int32_t)len, 0xfffd, NULL,
                             &err);
        ck_assert_msg(U_SUCCESS(err), "%s", u_errorName(err));
        int32_t folded_len = unorm2_normalize(unorm2_getNFKCCasefoldInstance(&err), wide, wide_len,
                                              folded, (int32_t)len * 18 + 1, &err);
        ck_assert_msg(U_SUCCESS(err), "%s", u_errorName(err));
        char *out = malloc((size_t)folded_len + 1);
        ck_assert_ptr_nonnull(out);
        size_t n = 0;
        for (int32_t i = 0; i < folded_len;) {
                UChar32 c;
                U16_NEXT(folded, i, folded_len, c);
                double value = u_getNumericValue(c);
                if (u_isdigit(c) || (value >= 0 && value <= 9 && value == (int)value &&
                                     u_getIntPropertyValue(c, UCHAR_NUMERIC_TYPE) == U_NT_DIGIT))
                        out[n++] = (char)('0' + (int)value);
                else if (c >= 'a' && c <= 'z')
                        out[n++] = (char)c;
        }
        out[n] = '\0';
        free(wide);
        free(folded);
        return out;
}

/* A dead letter's reason goes through avk_scrub_copy() (avk_outbox_deadletter()):
 * what names the fault stays - the registry's subject in double quotes, the
 * schema id, the status - and only identity-shaped text goes, quoted or not
 * (issue 18, point 14: quoted text was blanked whole, the subject with it). */
START_TEST(dead_letter_reason_keeps_the_registry_subject_and_loses_identities)
{
        char reason[512];
        avk_scrub_copy(
            reason, sizeof(reason),
            "schema registry answered 409 (error 409: Schema being registered is "
            "incompatible with an earlier schema for subject \"deviation.routed-value\", "
            "details: \"patient 19400314-1233\") for subject "
            "\"deviation.routed-value\" (schema id 117), caller \"070-123 45 67\"");
        ck_assert_str_eq(reason,
                         "schema registry answered 409 (error 409: Schema being registered is "
                         "incompatible with an earlier schema for subject "
                         "\"deviation.routed-value\", details: \"patient [personnummer]\") "
                         "for subject \"deviation.routed-value\" (schema id 117), caller "
                         "\"[telefon]\"");
}
END_TEST

START_TEST(generated_identities_in_every_spelling_never_come_out_readable)
{
        uint64_t rnd = 0x9e3779b97f4a7c15ULL;
        static struct text t;
        enum { IDS = 8 };
        for (int round = 0; round < 3000; round++) {
                char planted[IDS][16];
                size_t planted_cnt = 0;
                t.len = 0;
                t.b[0] = '\0';
                size_t parts = 1 + pick(&rnd, 12);
                for (size_t p = 0; p < parts; p++) {
                        put(&t, prose[pick(&rnd, sizeof(prose) / sizeof(prose[0]))]);
                        put(&t, boundaries[pick(&rnd, sizeof(boundaries) / sizeof(boundaries[0]))]);
                        if (planted_cnt < IDS && pick(&rnd, 2) == 0) {
                                char *id = planted[planted_cnt++];
                                switch (pick(&rnd, 3)) {
                                case 0:
                                        put_personal_id(&t, id, &rnd);
                                        break;
                                case 1:
                                        put_phone(&t, id, &rnd);
                                        break;
                                default:
                                        put_email(&t, id, &rnd);
                                        break;
                                }
                                put(&t, boundaries[pick(&rnd, sizeof(boundaries) /
                                                                  sizeof(boundaries[0]))]);
                        }
                }
                size_t out_len;
                char *out = avk_scrub_text(t.b, t.len, &out_len, NULL);
                ck_assert_ptr_nonnull(out);
                char *readable = skeleton(out, out_len);
                for (size_t k = 0; k < planted_cnt; k++)
                        ck_assert_msg(!strstr(readable, planted[k]),
                                      "round %d: %s is readable in \"%s\" from \"%s\"", round,
                                      planted[k], out, t.b);
                size_t again_len;
                char *again = avk_scrub_text(out, out_len, &again_len, NULL);
                ck_assert_ptr_nonnull(again);
                ck_assert_msg(again_len == out_len && memcmp(again, out, out_len) == 0,
                              "round %d: not a fixed point: \"%s\" became \"%s\"", round, out,
                              again);
                free(again);
                free(readable);
                free(out);
        }
}
END_TEST

static Suite *scrub_suite(void)
{
        Suite *s = suite_create("scrub");
        TCase *tc = tcase_create("tables");
        tcase_add_test(tc, personnummer_in_every_spelling_is_replaced);
        tcase_add_test(tc, dead_letter_reason_keeps_the_registry_subject_and_loses_identities);
        tcase_add_test(tc, wrong_check_digit_is_replaced_all_the_same);
        tcase_add_test(tc, samordningsnummer_is_replaced);
        tcase_add_test(tc, unicode_separators_inside_a_number_are_taken_with_it);
        tcase_add_test(tc, swedish_phone_numbers_are_replaced);
        tcase_add_test(tc, international_phone_numbers_are_replaced);
        tcase_add_test(tc, email_addresses_are_replaced);
        tcase_add_test(tc, dates_times_years_and_codes_are_left_alone);
        tcase_add_test(tc, identity_glued_to_a_phone_number_is_told_apart);
        tcase_add_test(tc, counts_say_what_was_replaced);
        tcase_add_test(tc, count_says_what_scrubbing_would_replace);
        suite_add_tcase(s, tc);
        TCase *utf8 = tcase_create("utf-8");
        tcase_add_test(utf8, multibyte_text_around_matches_is_copied_byte_for_byte);
        tcase_add_test(utf8, random_utf8_text_stays_valid_utf8);
        suite_add_tcase(s, utf8);
        TCase *spellings = tcase_create("spellings");
        tcase_add_test(spellings,
                       separators_of_every_class_inside_a_personnummer_are_taken_with_it);
        tcase_add_test(spellings, digits_of_every_unicode_digit_class_are_read);
        tcase_add_test(spellings, a_personnummer_after_any_number_of_digit_groups_is_replaced);
        tcase_add_test(spellings, phone_numbers_with_a_slash_or_other_classes_are_replaced);
        tcase_add_test(spellings, email_addresses_written_for_people_are_replaced);
        tcase_add_test(spellings, scrubbing_is_idempotent_where_one_match_ends_and_another_begins);
        suite_add_tcase(s, spellings);
        TCase *property = tcase_create("property");
        tcase_add_test(property, generated_identities_in_every_spelling_never_come_out_readable);
        suite_add_tcase(s, property);
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
