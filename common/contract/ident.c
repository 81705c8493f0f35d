/*
 * avk_ident: validation of the identifiers a deviation carries (personnummer,
 * samordningsnummer, HSA-id, municipality code) and of event timestamps.
 *
 * The validators are pure functions of their arguments - "today" and "now" are
 * passed in - so they are thread-safe and tests can pin the date that decides
 * the century of a 10-digit personnummer. Error sentences about personal ids
 * name a position, a single character, a month or a year, never the number:
 * they end up in logs, and the number is health-related personal data.
 */
#include "common/contract/ident.h"

#include "common/contract/municipality.h"
#include "common/contract/utf8.h"
#include "common/util/luhn.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#define HSA_ID_MAX_LEN      31
#define ORGNR_LEN           10
#define COORDINATION_DAYS   60
#define KAFKA_TOPIC_MAX_LEN 249

static const char *const month_names[12] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December",
};

static int fail(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Always -1, so that validators can "return fail(...)". */
static int fail(char *errstr, size_t errstr_size, const char *fmt, ...)
{
        va_list ap;

        if (errstr == NULL || errstr_size == 0)
                return -1;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
        return -1;
}

static int is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* Explicit ranges rather than isalnum(): the locale must not admit 'å'. */
static int is_ascii_alnum(char c)
{
        return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/*
 * Quotes one character for an error sentence. Control characters and bytes of
 * multi-byte UTF-8 sequences are shown as hex so that a log line stays
 * printable and valid UTF-8.
 */
static const char *char_repr(char c, char *buf, size_t buf_size)
{
        unsigned char u = (unsigned char)c;

        if (u >= 0x20 && u < 0x7f)
                snprintf(buf, buf_size, "'%c'", c);
        else
                snprintf(buf, buf_size, "byte 0x%02X", (unsigned)u);
        return buf;
}

/* Bytes of the UTF-8 character starting at s (0 when it is not a valid one). */
static size_t char_len(const char *s)
{
        unsigned char u = (unsigned char)*s;
        size_t n = u < 0x80 ? 1 : u >= 0xF0 ? 4 : u >= 0xE0 ? 3 : u >= 0xC0 ? 2 : 0;

        for (size_t i = 1; i < n; i++) {
                if (s[i] == '\0')
                        return 0;
        }
        return n > 0 && avk_utf8_invalid_at(s, n) == n ? n : 0;
}

static int two_digits(const char *p)
{
        return (p[0] - '0') * 10 + (p[1] - '0');
}

static int is_leap_year(int year)
{
        return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
        static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

        if (month == 2 && is_leap_year(year))
                return 29;
        return days[month - 1];
}

int avk_ident_today_ymd(void)
{
        /* Asked per document: the time-zone conversion is done once a second
         * per thread (a date changes only at a second's boundary). */
        static _Thread_local time_t known_second = (time_t)-1;
        static _Thread_local int known_ymd;
        time_t now = time(NULL);
        struct tm tm;

        if (now == known_second)
                return known_ymd;
        /* A failure here leaves no date to fall back on; -1 makes every
         * birth date "in the future" rather than silently accepting. */
        if (localtime_r(&now, &tm) == NULL)
                return -1;
        known_second = now;
        known_ymd = (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
        return known_ymd;
}

/*
 * Collects the digits and the optional separator. The digit count is checked
 * before the separator's place: "811218-987" lacks a digit, whatever the '-'.
 * A separator is accepted only in front of the last four digits, where the
 * Tax Agency prints it.
 */
static int personal_id_scan(const char *s, char *sep, char digits[13], char *errstr,
                            size_t errstr_size)
{
        size_t len = strlen(s);
        size_t ndigits = 0;
        char repr[16];

        for (size_t i = 0; i < len; i++) {
                if (is_digit(s[i])) {
                        if (ndigits < 12)
                                digits[ndigits] = s[i];
                        ndigits++;
                } else if (s[i] != '-' && s[i] != '+') {
                        return fail(errstr, errstr_size, "character %zu is %s, expected a digit",
                                    i + 1, char_repr(s[i], repr, sizeof(repr)));
                }
        }
        if (ndigits != 10 && ndigits != 12)
                return fail(errstr, errstr_size,
                            "expected 10 or 12 digits (YYMMDD-NNNC or YYYYMMDDNNNC), got %zu",
                            ndigits);
        digits[ndigits] = '\0';

        *sep = 0;
        for (size_t i = 0; i < len; i++) {
                if (is_digit(s[i]))
                        continue;
                if (i + 5 != len || *sep != 0)
                        return fail(errstr, errstr_size,
                                    "character %zu is '%c', a separator is only valid "
                                    "before the last four digits",
                                    i + 1, s[i]);
                *sep = s[i];
        }
        if (ndigits == 12 && *sep == '+')
                return fail(errstr, errstr_size, "'+' is only valid in the 10-digit form");
        return 0;
}

/*
 * The 10-digit form drops the century: the holder is under 100 this year
 * (birth date within the last 100 years up to today) unless the separator is
 * '+', which says 100 or older.
 */
static int resolve_century(int yy, int month, int day, char sep, int today_ymd)
{
        int today_year = today_ymd / 10000;
        int year = today_year - today_year % 100 + yy;

        if (year * 10000 + month * 100 + day > today_ymd)
                year -= 100;
        if (sep == '+')
                year -= 100;
        return year;
}

int avk_ident_personal_id(const char *s, int today_ymd, struct avk_personal_id *out, char *errstr,
                          size_t errstr_size)
{
        char digits[13];
        const char *tail; /* YYMMDDNNNC, the part the check digit covers */
        char sep = 0;
        int year, month, raw_day, day, is_coordination, expected, actual;

        if (s == NULL)
                return fail(errstr, errstr_size, "personal identity number is missing");
        if (today_ymd < 10000101 || today_ymd > 99991231)
                return fail(errstr, errstr_size, "today's date %d is not a YYYYMMDD date",
                            today_ymd);
        if (personal_id_scan(s, &sep, digits, errstr, errstr_size) != 0)
                return -1;

        tail = digits + strlen(digits) - 10;
        month = two_digits(tail + 2);
        raw_day = two_digits(tail + 4);
        if (month < 1 || month > 12)
                return fail(errstr, errstr_size, "month %02d does not exist", month);

        is_coordination = raw_day > COORDINATION_DAYS;
        day = is_coordination ? raw_day - COORDINATION_DAYS : raw_day;
        if (day < 1 || day > 31)
                return fail(errstr, errstr_size,
                            "day %02d is neither a day of the month (01-31) nor a "
                            "coordination number day (61-91)",
                            raw_day);

        if (tail == digits)
                year = resolve_century(two_digits(tail), month, day, sep, today_ymd);
        else
                year = two_digits(digits) * 100 + two_digits(digits + 2);

        if (day > days_in_month(year, month)) {
                if (is_coordination)
                        return fail(errstr, errstr_size,
                                    "coordination day %d (day %d + 60) does not exist in %s %d",
                                    raw_day, day, month_names[month - 1], year);
                return fail(errstr, errstr_size, "day %d does not exist in %s %d", day,
                            month_names[month - 1], year);
        }
        /* Only reachable with a 4-digit year: the short form is resolved into the past. */
        if (year * 10000 + month * 100 + day > today_ymd)
                return fail(errstr, errstr_size, "birth date is in the future");

        expected = avk_luhn(tail, 9);
        actual = tail[9] - '0';
        if (actual != expected)
                return fail(errstr, errstr_size, "check digit is %d, expected %d", actual,
                            expected);

        if (out != NULL) {
                out->normalized[0] = (char)('0' + year / 1000);
                out->normalized[1] = (char)('0' + year / 100 % 10);
                memcpy(out->normalized + 2, tail, 10);
                out->normalized[12] = '\0';
                out->birth_year = year;
                out->birth_month = month;
                out->birth_day = day;
                out->is_coordination = is_coordination;
                out->sex = (tail[8] - '0') % 2 == 1 ? AVK_SEX_MALE : AVK_SEX_FEMALE;
        }
        return 0;
}

int avk_ident_hsa_id(const char *s, char *errstr, size_t errstr_size)
{
        const char *orgnr;
        size_t orgnr_len = 0;
        size_t len;
        int expected, actual;
        char repr[16];

        if (s == NULL)
                return fail(errstr, errstr_size, "HSA-id is missing");
        if (strncmp(s, "SE", 2) != 0)
                return fail(errstr, errstr_size, "HSA-id must start with 'SE'");

        orgnr = s + 2;
        while (is_digit(orgnr[orgnr_len]))
                orgnr_len++;
        if (orgnr_len != ORGNR_LEN) {
                char next = orgnr[orgnr_len];

                if (orgnr_len > ORGNR_LEN || next == '-' || next == '\0')
                        return fail(errstr, errstr_size,
                                    "organisation number after 'SE' has %zu digits, expected 10",
                                    orgnr_len);
                return fail(errstr, errstr_size,
                            "character %zu (%s) is not a digit of the organisation number",
                            orgnr_len + 3, char_repr(next, repr, sizeof(repr)));
        }
        expected = avk_luhn(orgnr, ORGNR_LEN - 1);
        actual = orgnr[ORGNR_LEN - 1] - '0';
        if (actual != expected)
                return fail(errstr, errstr_size,
                            "organisation number check digit is %d, expected %d", actual, expected);

        if (orgnr[ORGNR_LEN] == '\0')
                return fail(errstr, errstr_size, "'%s' has no '-' after the organisation number",
                            s);
        if (orgnr[ORGNR_LEN] != '-')
                return fail(errstr, errstr_size,
                            "character %d (%s) must be '-' after the organisation number",
                            ORGNR_LEN + 3, char_repr(orgnr[ORGNR_LEN], repr, sizeof(repr)));
        if (orgnr[ORGNR_LEN + 1] == '\0')
                return fail(errstr, errstr_size,
                            "'%s' has nothing after '-', expected one or more [A-Za-z0-9]", s);

        len = strlen(s);
        for (size_t i = ORGNR_LEN + 3; i < len; i++) {
                unsigned char u = (unsigned char)s[i];

                if (is_ascii_alnum(s[i]))
                        continue;
                /* A letter such as 'Ö' (UTF-8): quoted as the reader typed it. */
                if (u >= 0x80 && char_len(s + i) > 0)
                        return fail(errstr, errstr_size,
                                    "character %zu ('%.*s') is not one of the letters A-Z or "
                                    "digits an HSA-id is made of: it never holds å, ä, ö or "
                                    "other letters, so copy it as the HSA catalogue writes it",
                                    avk_utf8_chars(s, i) + 1, (int)char_len(s + i), s + i);
                if (u >= 0x80)
                        return fail(errstr, errstr_size,
                                    "byte %zu (0x%02X) is not UTF-8 text, expected a letter or "
                                    "digit [A-Za-z0-9]",
                                    i + 1, (unsigned)u);
                return fail(errstr, errstr_size,
                            "character %zu (%s) is not a letter or digit [A-Za-z0-9]", i + 1,
                            char_repr(s[i], repr, sizeof(repr)));
        }
        if (len > HSA_ID_MAX_LEN)
                return fail(errstr, errstr_size, "'%s' is %zu characters, at most %d", s,
                            avk_utf8_chars(s, len), HSA_ID_MAX_LEN);
        return 0;
}

int avk_ident_municipality_code(const char *s, char *errstr, size_t errstr_size)
{
        size_t len;
        char repr[16];

        if (s == NULL)
                return fail(errstr, errstr_size, "municipality code is missing");
        len = strlen(s);
        /* Unquoted until known to be digits: the input may be any bytes. */
        if (len != 4)
                return fail(errstr, errstr_size,
                            "municipality code must be 4 digits, got %zu characters",
                            avk_utf8_chars(s, len));
        for (size_t i = 0; i < len; i++) {
                if (!is_digit(s[i]))
                        return fail(errstr, errstr_size,
                                    "municipality code character %zu is %s, expected a digit",
                                    i + 1, char_repr(s[i], repr, sizeof(repr)));
        }
        if (avk_municipality_find(s) == NULL)
                return fail(errstr, errstr_size,
                            "'%s' is not one of the %zu municipalities in Västra Götaland", s,
                            avk_municipality_cnt);
        return 0;
}

int avk_ident_party(const char *s, char *errstr, size_t errstr_size)
{
        char reason[160];

        if (s == NULL)
                return fail(errstr, errstr_size, "party is missing");
        if (strcmp(s, "VGR") == 0)
                return 0;
        if (avk_ident_municipality_code(s, reason, sizeof(reason)) != 0)
                return fail(errstr, errstr_size,
                            "party must be \"VGR\" or a municipality code (%s)", reason);
        return 0;
}

int avk_ident_kafka_topic(const char *s, char *errstr, size_t errstr_size)
{
        size_t len;
        char repr[16];

        if (s == NULL)
                return fail(errstr, errstr_size, "topic name is missing");
        len = strlen(s);
        if (len == 0)
                return fail(errstr, errstr_size, "topic name is empty");
        if (len > KAFKA_TOPIC_MAX_LEN)
                return fail(errstr, errstr_size, "topic name is %zu characters, at most %d", len,
                            KAFKA_TOPIC_MAX_LEN);
        if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return fail(errstr, errstr_size, "topic name cannot be \".\" or \"..\"");
        for (size_t i = 0; i < len; i++) {
                if (is_ascii_alnum(s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-')
                        continue;
                return fail(errstr, errstr_size,
                            "topic name character %zu is %s, expected [a-zA-Z0-9._-]", i + 1,
                            char_repr(s[i], repr, sizeof(repr)));
        }
        return 0;
}

int avk_ident_http_url(const char *s, int allow_http, char *errstr, size_t errstr_size)
{
        const char *authority;
        size_t authority_len;

        if (s == NULL)
                return fail(errstr, errstr_size, "URL is missing");
        if (strncmp(s, "https://", 8) == 0) {
                authority = s + 8;
        } else if (strncmp(s, "http://", 7) == 0) {
                if (!allow_http)
                        return fail(errstr, errstr_size, "URL uses http://, https:// is required");
                authority = s + 7;
        } else {
                return fail(errstr, errstr_size, "URL must start with https://%s",
                            allow_http ? " or http://" : "");
        }
        for (size_t i = 0; s[i] != '\0'; i++) {
                unsigned char u = (unsigned char)s[i];

                if (u <= 0x20 || u == 0x7f)
                        return fail(errstr, errstr_size,
                                    "URL character %zu is a space or control character", i + 1);
        }
        authority_len = strcspn(authority, "/?#");
        if (authority_len == 0)
                return fail(errstr, errstr_size, "URL has no host");
        if (memchr(authority, '@', authority_len) != NULL)
                return fail(errstr, errstr_size,
                            "URL holds credentials before the host; they belong in a secret");
        return 0;
}

/* "3 h 12 min", "5 min 1 ms": every non-zero unit, so that a timestamp just
 * past the allowed skew does not read the same as the skew. */
static void format_duration(uint64_t ms, char *buf, size_t buf_size)
{
        static const struct {
                uint64_t ms;
                const char *name;
        } units[] = {
            {86400000, "d"}, {3600000, "h"}, {60000, "min"}, {1000, "s"}, {1, "ms"},
        };
        size_t used = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                uint64_t n = ms / units[i].ms;
                int written;

                ms %= units[i].ms;
                if (n == 0)
                        continue;
                written = snprintf(buf + used, buf_size - used, "%s%" PRIu64 " %s",
                                   used > 0 ? " " : "", n, units[i].name);
                if (written < 0 || (size_t)written >= buf_size - used)
                        return;
                used += (size_t)written;
        }
        if (used == 0)
                snprintf(buf, buf_size, "0 ms");
}

int avk_ident_not_future(int64_t ts_ms, int64_t now_ms, int64_t skew_ms, char *errstr,
                         size_t errstr_size)
{
        uint64_t ahead, allowed;
        char ahead_str[64], allowed_str[64];

        if (ts_ms <= now_ms)
                return 0;
        /* Unsigned: ts_ms - now_ms can exceed INT64_MAX but never UINT64_MAX. */
        ahead = (uint64_t)ts_ms - (uint64_t)now_ms;
        allowed = skew_ms > 0 ? (uint64_t)skew_ms : 0;
        if (ahead <= allowed)
                return 0;
        format_duration(ahead, ahead_str, sizeof(ahead_str));
        format_duration(allowed, allowed_str, sizeof(allowed_str));
        return fail(errstr, errstr_size, "is %s in the future (allowed clock skew %s)", ahead_str,
                    allowed_str);
}

int avk_ident_is_uuid(const char *s, size_t len)
{
        if (len != AVK_IDENT_UUID_SIZE - 1)
                return 0;
        /* Without isxdigit(): its table is the locale's, a call away, for every character of
         * every UUID the intake reads. */
        static const char form[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                int hex = (unsigned char)(c - '0') <= 9 || (unsigned char)((c | 0x20) - 'a') <= 5;
                if (form[i] == '-' ? c != '-' : !hex)
                        return 0;
        }
        return 1;
}

int avk_ident_uuid5(const char *ns, const char *name, size_t name_len,
                    char out[AVK_IDENT_UUID_SIZE])
{
        /* Callers derive every id of a kind in one namespace: parsed once
         * per thread, not per id (a router derives one per record). */
        static _Thread_local char last_ns[AVK_IDENT_UUID_SIZE];
        static _Thread_local uuid_t space;
        uuid_t id;
        if (strncmp(ns, last_ns, sizeof(last_ns)) != 0) {
                if (strlen(ns) >= sizeof(last_ns) || uuid_parse(ns, space) != 0)
                        return -1;
                memcpy(last_ns, ns, strlen(ns) + 1);
        }
        uuid_generate_sha1(id, space, name, name_len);
        uuid_unparse_lower(id, out);
        return 0;
}
