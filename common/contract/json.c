/*
 * avk_json: see json.h.
 *
 * The walk follows the avro-c schema for structure (so the value it fills
 * always matches the class) and, in parallel, the schema's original JSON for
 * what avro-c drops: logicalType, defaults and avk.* field attributes. Paths
 * are built in a fixed buffer as the walk descends ("patient.personal_id",
 * "items[3]") and cut back on return.
 *
 * The rules for one value (union branch, avk.* checks, normalisation) are
 * written once, over a kind and a scalar (json_int.h), and serve both this
 * tree walk and the single pass over the JSON text in jsonstream.c.
 */
#include "common/contract/json.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/contract/avro_field.h"
#include "common/contract/ident.h"
#include "common/contract/json_int.h"
#include "common/contract/utf8.h"
#include "common/util/clock.h"
#include "common/util/path.h"
#include "common/util/scrub.h"

#define DEFAULT_MAX_CHARS 256
#define MAX_DEPTH         AVK_JSON_WALK_MAX_DEPTH

/* ---- time ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int days_in_month(int year, int month)
{
        static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        return days[month - 1] + (month == 2 && leap);
}

/* Days from 1970-01-01 to year-month-day of the proleptic Gregorian
 * calendar (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
 * Not timegm(): glibc takes its time-zone lock several times per call,
 * and the intake's workers parse timestamps side by side. */
static int64_t days_from_civil(int64_t year, int month, int day)
{
        year -= month <= 2;
        int64_t era = (year >= 0 ? year : year - 399) / 400;
        int64_t year_of_era = year - era * 400;
        int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
        int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        return era * 146097 + day_of_era - 719468;
}

/* A number of at most max_digits digits in [from, to] at *p, read as
 * glibc's strptime reads %Y, %m, %d, %H, %M and %S (spaces before it
 * skipped, digits taken while the value can still grow within to), so
 * that the timestamps accepted did not change when strptime went: it took
 * the locale and a fifth of the intake's parse time. */
static const char *time_field(const char *p, int from, int to, int max_digits, int *out)
{
        while (isspace((unsigned char)*p))
                p++;
        if (!isdigit((unsigned char)*p))
                return NULL;
        int v = 0;
        do
                v = v * 10 + (*p++ - '0');
        while (--max_digits > 0 && v * 10 <= to && isdigit((unsigned char)*p));
        if (v < from || v > to)
                return NULL;
        *out = v;
        return p;
}

static const struct time_part {
        int from, to, digits;
        char after;
} time_parts[] = {{0, 9999, 4, '-'}, {1, 12, 2, '-'}, {1, 31, 2, 'T'},
                  {0, 23, 2, ':'},   {0, 59, 2, ':'}, {0, 61, 2, '\0'}};

#define TIME_PART_CNT (sizeof(time_parts) / sizeof(time_parts[0]))

static int digit_at(const char *p, int i)
{
        return (unsigned char)(p[i] - '0');
}

static int two_digits_at(const char *p, int i)
{
        return digit_at(p, i) <= 9 && digit_at(p, i + 1) <= 9;
}

/* The fields of "2026-11-18T02:15:00", every one with all its digits: what
 * a filing system sends. Then time_field() reads each number whole and
 * accepts it exactly when it is in range, so the numbers are read here
 * without it. 1 with v filled, 0 when p is not in this form. */
static int time_fields_full(const char *p, int v[TIME_PART_CNT])
{
        /* In order, each test only when those before it held: a NUL fails
         * each, so nothing past the string's end is read. */
        if (!(two_digits_at(p, 0) && two_digits_at(p, 2) && p[4] == '-' && two_digits_at(p, 5) &&
              p[7] == '-' && two_digits_at(p, 8) && p[10] == 'T' && two_digits_at(p, 11) &&
              p[13] == ':' && two_digits_at(p, 14) && p[16] == ':' && two_digits_at(p, 17)))
                return 0;
        v[0] = digit_at(p, 0) * 1000 + digit_at(p, 1) * 100 + digit_at(p, 2) * 10 + digit_at(p, 3);
        for (int i = 1; i < (int)TIME_PART_CNT; i++)
                v[i] = digit_at(p, 2 + 3 * i) * 10 + digit_at(p, 3 + 3 * i);
        return 1;
}

/* "%Y-%m-%dT%H:%M:%S" as glibc's strptime reads it. */
static const char *time_fields(const char *p, struct tm *tm)
{
        int v[TIME_PART_CNT];
        if (time_fields_full(p, v)) {
                for (size_t i = 0; i < TIME_PART_CNT; i++)
                        if (v[i] < time_parts[i].from || v[i] > time_parts[i].to)
                                return NULL;
                p += 19; /* the 14 digits and their 5 separators: "0000-00-00T00:00:00" */
        } else {
                for (size_t i = 0; i < TIME_PART_CNT; i++) {
                        p = time_field(p, time_parts[i].from, time_parts[i].to,
                                       time_parts[i].digits, &v[i]);
                        if (!p || (time_parts[i].after && *p++ != time_parts[i].after))
                                return NULL;
                }
        }
        *tm = (struct tm){.tm_year = v[0] - 1900,
                          .tm_mon = v[1] - 1,
                          .tm_mday = v[2],
                          .tm_hour = v[3],
                          .tm_min = v[4],
                          .tm_sec = v[5]};
        return p;
}

int avk_json_parse_time(const char *s, int64_t *ms)
{
        struct tm tm = {0};
        const char *p = time_fields(s, &tm);
        if (!p || !isdigit((unsigned char)s[0]))
                return -1;
        int64_t frac_ms = 0;
        if (*p == '.') {
                int digits = 0;
                for (p++; isdigit((unsigned char)*p); p++, digits++) {
                        if (digits < 3)
                                frac_ms = frac_ms * 10 + (*p - '0');
                }
                if (digits == 0 || digits > 9)
                        return -1;
                for (; digits < 3; digits++)
                        frac_ms *= 10;
        }
        int64_t offset_s = 0;
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
                   isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
                   isdigit((unsigned char)p[5])) {
                int hh = (p[1] - '0') * 10 + (p[2] - '0');
                int mm = (p[4] - '0') * 10 + (p[5] - '0');
                if (hh > 23 || mm > 59)
                        return -1;
                offset_s = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
                p += 6;
        } else {
                return -1;
        }
        if (*p != '\0')
                return -1;
        /* The fields accept 31 February, and a leap second that ends the day. */
        int year = tm.tm_year + 1900, month = tm.tm_mon + 1;
        int64_t second_of_day = tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
        if (month < 1 || month > 12 || tm.tm_mday < 1 || tm.tm_mday > days_in_month(year, month) ||
            second_of_day >= 86400)
                return -1;
        int64_t t = days_from_civil(year, month, tm.tm_mday) * 86400 + second_of_day;
        *ms = (t - offset_s) * 1000 + frac_ms;
        return 0;
}

void avk_json_format_time(int64_t ms, char buf[32])
{
        time_t secs = (time_t)floor_div(ms, 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, 32 - n, ".%03dZ", (int)(ms - (int64_t)secs * 1000));
}

/* ---- errors ---- */

/* Adds "path: reason" for the current place of the walk, unless the walk
 * only needs to know whether there is an error; returns -1. */
__attribute__((format(printf, 2, 3))) static int fail(struct avk_json_walk *w, const char *fmt, ...)
{
        if (!w->errs)
                return -1;
        char path[512];
        va_list ap;
        va_start(ap, fmt);
        avk_errors_addv(w->errs, avk_path_format(&w->path, path, sizeof(path)), fmt, ap);
        va_end(ap);
        return -1;
}

/* ---- schema JSON alongside the avro-c schema ---- */

static int is_named(avro_schema_t s)
{
        return is_avro_record(s) || is_avro_enum(s) || is_avro_fixed(s);
}

const json_t *avk_json_resolve_node(const avk_schema_t *schema, avro_schema_t s, const json_t *node)
{
        if (is_named(s)) {
                const json_t *def = avk_schema_definition(schema, s);
                return def ? def : node;
        }
        while (json_is_object(node) && !json_is_string(json_object_get(node, "type")))
                node = json_object_get(node, "type");
        return node;
}

static const char *logical_type(const json_t *node)
{
        return json_string_value(json_object_get(node, "logicalType"));
}

void avk_json_rules_of(avro_schema_t s, const json_t *field, const json_t *node,
                       struct avk_json_rules *rules)
{
        static const char *const formats[] = {
            [AVK_JSON_FORMAT_UUID] = "uuid",
            [AVK_JSON_FORMAT_PARTY] = "party",
            [AVK_JSON_FORMAT_HSA_ID] = "hsa-id",
            [AVK_JSON_FORMAT_MUNICIPALITY] = "municipality",
            [AVK_JSON_FORMAT_PERSONAL_ID] = "personal-id",
            [AVK_JSON_FORMAT_PAST] = "past",
            [AVK_JSON_FORMAT_NAMED_PARTY] = "named-party",
            [AVK_JSON_FORMAT_REFERENCE] = "reference",
        };
        *rules = (struct avk_json_rules){0};
        /* Only what the type uses: the tree walk asks for every value. */
        if (is_avro_string(s)) {
                rules->min_chars = json_integer_value(json_object_get(field, "avk.minLength"));
                rules->max_chars = json_integer_value(json_object_get(field, "avk.maxLength"));
        } else if (is_avro_int64(s)) {
                const char *lt = logical_type(node);
                rules->timestamp = lt && strcmp(lt, "timestamp-millis") == 0;
        } else {
                return;
        }
        const char *format = json_string_value(json_object_get(field, "avk.format"));
        for (size_t i = 1; format && i < sizeof(formats) / sizeof(formats[0]); i++)
                if (strcmp(format, formats[i]) == 0)
                        rules->format = (enum avk_json_format)i;
}

static enum avk_json_kind kind_of(const json_t *v)
{
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return AVK_JSON_KIND_OBJECT;
        case JSON_ARRAY:
                return AVK_JSON_KIND_ARRAY;
        case JSON_STRING:
                return AVK_JSON_KIND_STRING;
        case JSON_INTEGER:
                return AVK_JSON_KIND_INTEGER;
        case JSON_REAL:
                return AVK_JSON_KIND_REAL;
        case JSON_TRUE:
        case JSON_FALSE:
                return AVK_JSON_KIND_BOOLEAN;
        default:
                return AVK_JSON_KIND_NULL;
        }
}

const char *avk_json_kind_name(enum avk_json_kind kind)
{
        switch (kind) {
        case AVK_JSON_KIND_OBJECT:
                return "an object";
        case AVK_JSON_KIND_ARRAY:
                return "an array";
        case AVK_JSON_KIND_STRING:
                return "a string";
        case AVK_JSON_KIND_INTEGER:
                return "an integer";
        case AVK_JSON_KIND_REAL:
                return "a number";
        case AVK_JSON_KIND_BOOLEAN:
                return "a boolean";
        default:
                return "null";
        }
}

const char *avk_json_type_name(const json_t *v)
{
        return avk_json_kind_name(kind_of(v));
}

avro_schema_t avk_json_deref(avro_schema_t s)
{
        return is_avro_link(s) ? avro_schema_link_target(s) : s;
}

/* ---- one value: the rules both walks apply ---- */

/*
 * An opaque reference a filing system gives (reply_reference): printable
 * characters only, and nothing the scrubber (common/util/scrub.h) would take
 * out of a text - a personnummer or samordningsnummer, a phone number, an
 * e-mail address - so that no system passes a person's identity through it.
 */
static int check_reference(const char *s, size_t len, char *errstr, size_t errstr_size)
{
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x20 || c == 0x7f ||
                    (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0)) {
                        snprintf(errstr, errstr_size, "character %zu is not printable", i + 1);
                        return -1;
                }
        }
        struct avk_scrub_counts found;
        if (avk_scrub_count(s, len, &found) != 0) {
                snprintf(errstr, errstr_size, "cannot be checked (out of memory)");
                return -1;
        }
        if (found.personal_ids || found.phones || found.emails) {
                snprintf(errstr, errstr_size,
                         "reads as %s; give the filing system's own case reference instead",
                         found.personal_ids ? "an identity number"
                         : found.phones     ? "a phone number"
                                            : "an e-mail address");
                return -1;
        }
        return 0;
}

/* Applies avk.format and length rules; may rewrite the value (normalisation)
 * into norm. Returns 0, or -1 after adding the error. */
static int check_string(struct avk_json_walk *w, const struct avk_json_rules *rules, const char *s,
                        size_t len, char *norm, size_t norm_size)
{
        long long max = rules->max_chars, min = rules->min_chars;
        if (max == 0)
                max = DEFAULT_MAX_CHARS;
        /* UTF-8 takes one to four bytes a character, and the text is valid
         * UTF-8 here (or refused later, when the program writes it): the
         * length alone settles most strings without counting. */
        if (len > (size_t)max || (len + 3) / 4 < (size_t)min) {
                size_t chars = avk_utf8_chars(s, len);
                if (chars > (size_t)max)
                        return fail(w, "is %zu characters, at most %lld allowed", chars, max);
                if (chars < (size_t)min)
                        return fail(w, "is %zu characters, at least %lld required", chars, min);
        }
        char reason[200];
        reason[0] = '\0'; /* not = "": that zeroes all of it, for every string */
        int rc = 0;
        switch (rules->format) {
        case AVK_JSON_FORMAT_UUID:
                if (!avk_ident_is_uuid(s, len))
                        return fail(w, "is not a UUID (8-4-4-4-12 hexadecimal digits)");
                /* Hexadecimal digits and dashes: ASCII, lowered without the locale's table. */
                for (size_t i = 0; i <= len && i < norm_size; i++)
                        norm[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] + ('a' - 'A') : s[i]);
                break;
        case AVK_JSON_FORMAT_PARTY:
                if (strcmp(s, "VGR") != 0 &&
                    avk_ident_municipality_code(s, reason, sizeof(reason)) != 0)
                        return fail(w,
                                    "is not a party: expected \"VGR\" or a municipality "
                                    "code (%s)",
                                    reason);
                break;
        case AVK_JSON_FORMAT_NAMED_PARTY:
                /* A code no municipality has is filed: the router does not use it and says why
                 * in the routed event (docs/routing.md, "The decision"). */
                if (strcmp(s, "VGR") != 0 && (len != 4 || strspn(s, "0123456789") != 4))
                        return fail(w, "is not a party: expected \"VGR\" or a municipality code "
                                       "of 4 digits");
                break;
        case AVK_JSON_FORMAT_HSA_ID:
                rc = avk_ident_hsa_id(s, reason, sizeof(reason));
                break;
        case AVK_JSON_FORMAT_MUNICIPALITY:
                rc = avk_ident_municipality_code(s, reason, sizeof(reason));
                break;
        case AVK_JSON_FORMAT_PERSONAL_ID: {
                struct avk_personal_id pid;
                rc = avk_ident_personal_id(s, w->today_ymd, &pid, reason, sizeof(reason));
                if (rc == 0 && sizeof(pid.normalized) <= norm_size)
                        memcpy(norm, pid.normalized, sizeof(pid.normalized));
                break;
        }
        case AVK_JSON_FORMAT_REFERENCE:
                rc = check_reference(s, len, reason, sizeof(reason));
                break;
        default: /* no rule for strings ("past" is for timestamps) */
                break;
        }
        return rc == 0 ? 0 : fail(w, "%s", reason);
}

static int convert_string(struct avk_json_walk *w, const struct avk_json_rules *rules,
                          const struct avk_json_scalar *in, char norm[AVK_JSON_NORM_SIZE],
                          avk_avroprog_slot_t *out)
{
        if (in->kind != AVK_JSON_KIND_STRING)
                return fail(w, "expected a string, got %s", avk_json_kind_name(in->kind));
        const char *s = in->string;
        size_t len = in->len;
        norm[0] = '\0';
        if (!in->nul_free && strlen(s) != len)
                return fail(w, "contains a NUL character");
        if ((w->opts->flags & AVK_JSON_VALIDATE) &&
            check_string(w, rules, s, len, norm, AVK_JSON_NORM_SIZE) != 0)
                return -1;
        if (norm[0]) {
                s = norm;
                len = strlen(norm);
        }
        out->v.str = s;
        out->len = (uint32_t)len;
        return 0;
}

static int convert_long(struct avk_json_walk *w, const struct avk_json_rules *rules,
                        const struct avk_json_scalar *in, avk_avroprog_slot_t *out)
{
        int64_t v;
        if (rules->timestamp) {
                if (in->kind != AVK_JSON_KIND_STRING)
                        return fail(w, "expected an RFC 3339 timestamp string, got %s",
                                    avk_json_kind_name(in->kind));
                if (avk_json_parse_time(in->string, &v) != 0)
                        return fail(w, "is not an RFC 3339 timestamp "
                                       "(e.g. 2026-11-20T13:05:00Z or 2026-11-20T14:05:00+01:00)");
        } else if (in->kind == AVK_JSON_KIND_INTEGER) {
                v = in->integer;
        } else {
                return fail(w, "expected an integer, got %s", avk_json_kind_name(in->kind));
        }
        if ((w->opts->flags & AVK_JSON_VALIDATE) && rules->format == AVK_JSON_FORMAT_PAST) {
                char reason[160];
                if (avk_ident_not_future(v, w->now_ms, w->opts->skew_ms, reason, sizeof(reason)) !=
                    0)
                        return fail(w, "%s", reason);
        }
        out->v.i = v;
        return 0;
}

static int convert_enum(struct avk_json_walk *w, avro_schema_t s, const json_t *def,
                        const struct avk_json_scalar *in, avk_avroprog_slot_t *out)
{
        if (in->kind != AVK_JSON_KIND_STRING)
                return fail(w, "expected a symbol string, got %s", avk_json_kind_name(in->kind));
        int idx = avro_schema_enum_get_by_name(s, in->string);
        if (idx < 0 && (w->opts->flags & AVK_JSON_ENUM_FALLBACK)) {
                const char *dflt = json_string_value(json_object_get(def, "default"));
                idx = dflt ? avro_schema_enum_get_by_name(s, dflt) : -1;
        }
        if (idx >= 0) {
                out->v.i = idx;
                return 0;
        }
        char allowed[768] = "";
        size_t off = 0;
        int n = avro_schema_enum_number_of_symbols(s);
        for (int i = 0; i < n && off < sizeof(allowed); i++)
                off += (size_t)snprintf(allowed + off, sizeof(allowed) - off, "%s%s", i ? ", " : "",
                                        avro_schema_enum_get(s, i));
        return fail(w, "unknown symbol \"%s\"; expected one of %s", in->string, allowed);
}

int avk_json_convert_scalar(struct avk_json_walk *w, avro_schema_t s, const json_t *node,
                            const struct avk_json_rules *rules, const struct avk_json_scalar *in,
                            char norm[AVK_JSON_NORM_SIZE], avk_avroprog_slot_t *out)
{
        switch (avro_typeof(s)) {
        case AVRO_STRING:
                return convert_string(w, rules, in, norm, out);
        case AVRO_INT64:
                return convert_long(w, rules, in, out);
        case AVRO_INT32:
                if (in->kind != AVK_JSON_KIND_INTEGER)
                        return fail(w, "expected an integer, got %s", avk_json_kind_name(in->kind));
                if (in->integer < INT32_MIN || in->integer > INT32_MAX)
                        return fail(w, "%lld does not fit in 32 bits", (long long)in->integer);
                out->v.i = in->integer;
                return 0;
        case AVRO_BOOLEAN:
                if (in->kind != AVK_JSON_KIND_BOOLEAN)
                        return fail(w, "expected true or false, got %s",
                                    avk_json_kind_name(in->kind));
                out->v.i = in->boolean != 0;
                return 0;
        case AVRO_DOUBLE:
        case AVRO_FLOAT:
                if (in->kind != AVK_JSON_KIND_INTEGER && in->kind != AVK_JSON_KIND_REAL)
                        return fail(w, "expected a number, got %s", avk_json_kind_name(in->kind));
                out->v.d = in->kind == AVK_JSON_KIND_INTEGER ? (double)in->integer : in->real;
                return 0;
        case AVRO_NULL:
                if (in->kind != AVK_JSON_KIND_NULL)
                        return fail(w, "expected null, got %s", avk_json_kind_name(in->kind));
                return 0;
        case AVRO_ENUM:
                return convert_enum(w, s, node, in, out);
        default:
                return fail(w, "has an Avro type (%s) that JSON intake does not support",
                            avro_schema_type_name(s));
        }
}

int avk_json_set_scalar(struct avk_json_walk *w, avro_schema_t s, const json_t *node,
                        const struct avk_json_rules *rules, const struct avk_json_scalar *in,
                        avro_value_t *out)
{
        char norm[AVK_JSON_NORM_SIZE];
        avk_avroprog_slot_t v;
        if (avk_json_convert_scalar(w, s, node, rules, in, norm, &v) != 0)
                return -1;
        switch (avro_typeof(s)) {
        case AVRO_STRING:
                return avro_value_set_string_len(out, v.v.str, (size_t)v.len + 1);
        case AVRO_INT64:
                return avro_value_set_long(out, v.v.i);
        case AVRO_INT32:
                return avro_value_set_int(out, (int32_t)v.v.i);
        case AVRO_BOOLEAN:
                return avro_value_set_boolean(out, (int)v.v.i);
        case AVRO_DOUBLE:
                return avro_value_set_double(out, v.v.d);
        case AVRO_FLOAT:
                return avro_value_set_float(out, (float)v.v.d);
        case AVRO_ENUM:
                return avro_value_set_enum(out, (int)v.v.i);
        default:
                return avro_value_set_null(out);
        }
}

int avk_json_union_branch(avro_schema_t s, enum avk_json_kind kind)
{
        size_t n = avro_schema_union_size(s);
        int only = -1, non_null = 0;
        for (size_t i = 0; i < n; i++) {
                avro_schema_t b = avk_json_deref(avro_schema_union_branch(s, (int)i));
                if (kind == AVK_JSON_KIND_NULL) {
                        if (is_avro_null(b))
                                return (int)i;
                        continue;
                }
                if (is_avro_null(b))
                        continue;
                non_null++;
                only = (int)i;
                int number = kind == AVK_JSON_KIND_INTEGER || kind == AVK_JSON_KIND_REAL;
                int match =
                    (kind == AVK_JSON_KIND_STRING &&
                     (is_avro_string(b) || is_avro_enum(b) || is_avro_int64(b))) ||
                    (kind == AVK_JSON_KIND_INTEGER && (is_avro_int32(b) || is_avro_int64(b))) ||
                    (number && (is_avro_float(b) || is_avro_double(b))) ||
                    (kind == AVK_JSON_KIND_BOOLEAN && is_avro_boolean(b)) ||
                    (kind == AVK_JSON_KIND_OBJECT && (is_avro_record(b) || is_avro_map(b))) ||
                    (kind == AVK_JSON_KIND_ARRAY && is_avro_array(b));
                if (match)
                        return (int)i;
        }
        return non_null == 1 ? only : -1;
}

/* ---- JSON tree -> Avro ---- */

static int set_record(struct avk_json_walk *w, avro_schema_t s, const json_t *def, const json_t *in,
                      avro_value_t *out, int depth)
{
        if (!json_is_object(in))
                return fail(w, "expected an object, got %s", avk_json_type_name(in));
        const json_t *fields = json_object_get(def, "fields");
        size_t n = avro_schema_record_size(s), present = 0;
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                const char *name = avro_schema_record_field_name(s, (int)i);
                avro_schema_t fs = avro_schema_record_field_get_by_index(s, (int)i);
                const json_t *fdef = json_array_get(fields, i);
                const json_t *v = json_object_get(in, name);
                present += v != NULL;
                avk_path_push(&w->path, name, 0);
                if (!v)
                        v = json_object_get(fdef, "default");
                avro_value_t child;
                if (!v) {
                        rc |= fail(w, "is required");
                } else if (avro_value_get_by_index(out, i, &child, NULL) != 0) {
                        rc |= fail(w, "avro: %s", avro_strerror());
                } else {
                        rc |= avk_json_walk_value(w, fs, json_object_get(fdef, "type"), fdef, v,
                                                  &child, depth + 1);
                }
                avk_path_pop(&w->path);
        }
        /* Every key of the object is a field: no need to look for unknown ones. */
        if (!(w->opts->flags & AVK_JSON_IGNORE_UNKNOWN) && json_object_size(in) != present) {
                const char *key;
                const json_t *v;
                json_object_foreach((json_t *)in, key, v)
                {
                        if (avro_schema_record_field_get_index(s, key) >= 0)
                                continue;
                        avk_path_push(&w->path, key, 0);
                        rc |= fail(w, "unknown field");
                        avk_path_pop(&w->path);
                }
        }
        return rc ? -1 : 0;
}

void avk_json_scalar_of(const json_t *v, struct avk_json_scalar *out)
{
        *out = (struct avk_json_scalar){.kind = kind_of(v)};
        switch (out->kind) {
        case AVK_JSON_KIND_BOOLEAN:
                out->boolean = json_is_true(v);
                break;
        case AVK_JSON_KIND_INTEGER:
                out->integer = json_integer_value(v);
                break;
        case AVK_JSON_KIND_REAL:
                out->real = json_real_value(v);
                break;
        case AVK_JSON_KIND_STRING:
                out->string = json_string_value(v);
                out->len = json_string_length(v);
                break;
        default:
                break;
        }
}

int avk_json_walk_value(struct avk_json_walk *w, avro_schema_t s, const json_t *node,
                        const json_t *field, const json_t *in, avro_value_t *out, int depth)
{
        if (depth > MAX_DEPTH)
                return fail(w, "nests deeper than %d levels", MAX_DEPTH);
        s = avk_json_deref(s);
        node = avk_json_resolve_node(w->schema, s, node);
        switch (avro_typeof(s)) {
        case AVRO_RECORD:
                return set_record(w, s, node, in, out, depth);
        case AVRO_UNION: {
                int b = avk_json_union_branch(s, kind_of(in));
                if (b < 0)
                        return fail(w, "%s is not allowed here", avk_json_type_name(in));
                avro_value_t branch;
                if (avro_value_set_branch(out, b, &branch) != 0)
                        return fail(w, "avro: %s", avro_strerror());
                return avk_json_walk_value(w, avro_schema_union_branch(s, b),
                                           json_array_get(node, (size_t)b), field, in, &branch,
                                           depth + 1);
        }
        case AVRO_ARRAY: {
                if (!json_is_array(in))
                        return fail(w, "expected an array, got %s", avk_json_type_name(in));
                int rc = 0;
                size_t i;
                const json_t *item;
                json_array_foreach(in, i, item)
                {
                        avro_value_t child;
                        avk_path_push(&w->path, NULL, (long)i);
                        if (avro_value_append(out, &child, NULL) != 0)
                                rc |= fail(w, "avro: %s", avro_strerror());
                        else
                                rc |= avk_json_walk_value(w, avro_schema_array_items(s),
                                                          json_object_get(node, "items"), NULL,
                                                          item, &child, depth + 1);
                        avk_path_pop(&w->path);
                }
                return rc ? -1 : 0;
        }
        case AVRO_MAP: {
                if (!json_is_object(in))
                        return fail(w, "expected an object, got %s", avk_json_type_name(in));
                int rc = 0;
                const char *key;
                const json_t *item;
                json_object_foreach((json_t *)in, key, item)
                {
                        avro_value_t child;
                        avk_path_push(&w->path, key, 0);
                        if (avro_value_add(out, key, &child, NULL, NULL) != 0)
                                rc |= fail(w, "avro: %s", avro_strerror());
                        else
                                rc |= avk_json_walk_value(w, avro_schema_map_values(s),
                                                          json_object_get(node, "values"), NULL,
                                                          item, &child, depth + 1);
                        avk_path_pop(&w->path);
                }
                return rc ? -1 : 0;
        }
        default: {
                /* A string's rules matter only when validating. */
                struct avk_json_rules rules = {0};
                struct avk_json_scalar scalar;
                if (!is_avro_string(s) || (w->opts->flags & AVK_JSON_VALIDATE))
                        avk_json_rules_of(s, field, node, &rules);
                avk_json_scalar_of(in, &scalar);
                return avk_json_set_scalar(w, s, node, &rules, &scalar, out);
        }
        }
}

/* ---- relations between fields ---- */

int avk_json_differs_of(const json_t *fdef, struct avk_json_differs *out)
{
        const json_t *differs = json_object_get(fdef, "avk.differsFrom");
        if (!differs)
                return 0;
        const json_t *unless = json_object_get(differs, "unless");
        *out = (struct avk_json_differs){
            .other = json_string_value(json_object_get(differs, "field")),
            .reason = json_string_value(json_object_get(differs, "reason")),
            .unless_field = json_string_value(json_object_get(unless, "field")),
            .unless_is = json_string_value(json_object_get(unless, "is"))};
        if (!out->other || !out->reason || (unless && (!out->unless_field || !out->unless_is)))
                return -1;
        return 1;
}

/*
 * Checks every avk.differsFrom (struct avk_json_differs) among the fields of
 * record out (of the dereferenced type s, described by node) and its record
 * fields, root being the whole record. A field that holds the same string as
 * the one named fails with the reason, unless the record holds the
 * exception's value. Run once the record is complete, so the order of the
 * JSON keys plays no part.
 */
static int check_differs(struct avk_json_walk *w, avro_schema_t s, const json_t *node,
                         avro_value_t *root, avro_value_t *out, int depth)
{
        if (!is_avro_record(s) || depth > AVK_JSON_WALK_MAX_DEPTH)
                return 0;
        const json_t *fields = json_object_get(avk_json_resolve_node(w->schema, s, node), "fields");
        int rc = 0;
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
                const json_t *fdef = json_array_get(fields, i);
                struct avk_json_differs rule;
                int has_rule = avk_json_differs_of(fdef, &rule);
                avro_schema_t fs = avk_json_deref(avro_schema_record_field_get_by_index(s, (int)i));
                avro_value_t child;
                if (avro_value_get_by_index(out, i, &child, NULL) != 0)
                        continue;
                avk_path_push(&w->path, avro_schema_record_field_name(s, (int)i), 0);
                if (has_rule < 0) {
                        rc |= fail(w, "the schema's avk.differsFrom is malformed");
                } else if (has_rule > 0) {
                        const char *mine =
                            avk_avro_text(out, avro_schema_record_field_name(s, (int)i));
                        const char *theirs = mine ? avk_avro_text(root, rule.other) : NULL;
                        const char *exempt =
                            rule.unless_field ? avk_avro_text(root, rule.unless_field) : NULL;
                        if (theirs && strcmp(mine, theirs) == 0 &&
                            !(exempt && strcmp(exempt, rule.unless_is) == 0))
                                rc |= fail(w, "is %s, the same as %s: %s", mine, rule.other,
                                           rule.reason);
                }
                rc |= check_differs(w, fs, json_object_get(fdef, "type"), root, &child, depth + 1);
                avk_path_pop(&w->path);
        }
        return rc ? -1 : 0;
}

int avk_json_check_relations(struct avk_json_walk *w, avro_value_t *out)
{
        if (!(w->opts->flags & AVK_JSON_VALIDATE))
                return 0;
        avro_schema_t s = avk_json_deref(avk_schema_avro(w->schema));
        return check_differs(w, s, avk_schema_json(w->schema), out, out, 0);
}

void avk_json_walk_init(struct avk_json_walk *w, const avk_schema_t *schema,
                        const struct avk_json_opts *opts, struct avk_errors *errs)
{
        /* Field by field: a compound literal would zero the path's segments,
         * a kilobyte for every document the single pass reads. */
        w->schema = schema;
        w->opts = opts;
        w->errs = errs;
        w->now_ms = opts->now_ms ? opts->now_ms : avk_clock_system_ms();
        w->today_ymd = opts->today_ymd ? opts->today_ymd : avk_ident_today_ymd();
        avk_path_init(&w->path);
}

int avk_json_to_avro(const avk_schema_t *schema, const json_t *in, avro_value_t *out,
                     const struct avk_json_opts *opts, struct avk_errors *errs)
{
        struct avk_json_walk w;
        avk_json_walk_init(&w, schema, opts, errs);
        avro_value_reset(out);
        if (avk_json_walk_value(&w, avk_schema_avro(schema), avk_schema_json(schema), NULL, in, out,
                                0) != 0)
                return -1;
        return avk_json_check_relations(&w, out);
}

/* ---- Avro -> JSON ---- */

static json_t *from_avro(const avk_schema_t *schema, avro_schema_t s, const json_t *node,
                         avro_value_t *in, char *errstr, size_t errstr_size, int depth)
{
        s = avk_json_deref(s);
        node = avk_json_resolve_node(schema, s, node);
        if (depth > MAX_DEPTH) {
                snprintf(errstr, errstr_size, "value nests deeper than %d levels", MAX_DEPTH);
                return NULL;
        }
        switch (avro_typeof(s)) {
        case AVRO_STRING: {
                const char *str;
                size_t size;
                if (avro_value_get_string(in, &str, &size) != 0)
                        break;
                json_t *j = json_stringn(str, size ? size - 1 : 0);
                if (!j)
                        snprintf(errstr, errstr_size, "a string is not valid UTF-8");
                return j;
        }
        case AVRO_INT64: {
                int64_t v;
                if (avro_value_get_long(in, &v) != 0)
                        break;
                const char *lt = logical_type(node);
                if (lt && strcmp(lt, "timestamp-millis") == 0) {
                        char buf[32];
                        avk_json_format_time(v, buf);
                        return json_string(buf);
                }
                return json_integer(v);
        }
        case AVRO_INT32: {
                int32_t v;
                if (avro_value_get_int(in, &v) != 0)
                        break;
                return json_integer(v);
        }
        case AVRO_BOOLEAN: {
                int v;
                if (avro_value_get_boolean(in, &v) != 0)
                        break;
                return json_boolean(v);
        }
        case AVRO_DOUBLE: {
                double v;
                if (avro_value_get_double(in, &v) != 0)
                        break;
                return json_real(v);
        }
        case AVRO_FLOAT: {
                float v;
                if (avro_value_get_float(in, &v) != 0)
                        break;
                return json_real(v);
        }
        case AVRO_NULL:
                return json_null();
        case AVRO_ENUM: {
                int v;
                if (avro_value_get_enum(in, &v) != 0)
                        break;
                const char *sym = avro_schema_enum_get(s, v);
                if (!sym) {
                        snprintf(errstr, errstr_size, "enum index %d out of range", v);
                        return NULL;
                }
                return json_string(sym);
        }
        case AVRO_RECORD: {
                json_t *obj = json_object();
                const json_t *fields = json_object_get(node, "fields");
                size_t n = avro_schema_record_size(s);
                for (size_t i = 0; i < n; i++) {
                        avro_value_t child;
                        if (avro_value_get_by_index(in, i, &child, NULL) != 0) {
                                json_decref(obj);
                                goto avro_error;
                        }
                        json_t *v =
                            from_avro(schema, avro_schema_record_field_get_by_index(s, (int)i),
                                      json_object_get(json_array_get(fields, i), "type"), &child,
                                      errstr, errstr_size, depth + 1);
                        if (!v) {
                                json_decref(obj);
                                return NULL;
                        }
                        json_object_set_new(obj, avro_schema_record_field_name(s, (int)i), v);
                }
                return obj;
        }
        case AVRO_UNION: {
                int b;
                avro_value_t branch;
                if (avro_value_get_discriminant(in, &b) != 0 ||
                    avro_value_get_current_branch(in, &branch) != 0)
                        break;
                return from_avro(schema, avro_schema_union_branch(s, b),
                                 json_array_get(node, (size_t)b), &branch, errstr, errstr_size,
                                 depth + 1);
        }
        case AVRO_ARRAY: {
                size_t n;
                if (avro_value_get_size(in, &n) != 0)
                        break;
                json_t *arr = json_array();
                for (size_t i = 0; i < n; i++) {
                        avro_value_t child;
                        json_t *v = NULL;
                        if (avro_value_get_by_index(in, i, &child, NULL) == 0)
                                v = from_avro(schema, avro_schema_array_items(s),
                                              json_object_get(node, "items"), &child, errstr,
                                              errstr_size, depth + 1);
                        if (!v) {
                                json_decref(arr);
                                return NULL;
                        }
                        json_array_append_new(arr, v);
                }
                return arr;
        }
        case AVRO_MAP: {
                size_t n;
                if (avro_value_get_size(in, &n) != 0)
                        break;
                json_t *obj = json_object();
                for (size_t i = 0; i < n; i++) {
                        avro_value_t child;
                        const char *key;
                        json_t *v = NULL;
                        if (avro_value_get_by_index(in, i, &child, &key) == 0)
                                v = from_avro(schema, avro_schema_map_values(s),
                                              json_object_get(node, "values"), &child, errstr,
                                              errstr_size, depth + 1);
                        if (!v) {
                                json_decref(obj);
                                return NULL;
                        }
                        json_object_set_new(obj, key, v);
                }
                return obj;
        }
        default:
                snprintf(errstr, errstr_size, "Avro type %s has no JSON form here",
                         avro_schema_type_name(s));
                return NULL;
        }
avro_error:
        snprintf(errstr, errstr_size, "avro: %s", avro_strerror());
        return NULL;
}

json_t *avk_json_from_avro(const avk_schema_t *schema, avro_value_t *in, char *errstr,
                           size_t errstr_size)
{
        return from_avro(schema, avk_schema_avro(schema), avk_schema_json(schema), in, errstr,
                         errstr_size, 0);
}
