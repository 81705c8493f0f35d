/*
 * Differential tests of avk_avroprog against avro-c, the reference.
 *
 * For every schema in schemas/, random records (every union branch, empty,
 * long and non-ASCII strings, edge numbers) are built as avro-c values and
 * encoded by avro-c: the program decodes them to the same values, field for
 * field, and encodes the same values to the same bytes. Truncated and
 * corrupted buffers are refused by the program exactly when avk_codec's
 * checked read (avk_binary_check, then avro-c's read) refuses them, and read
 * the same when both accept. Across versions the program reads what avro-c's
 * resolved writer reads where avro-c resolves as the specification says
 * (promotions, skipped fields, union branches), and what the JSON projection
 * (common/contract/json.h) reads where avro-c does not (reader defaults, enum
 * symbols by name: docs/schema-evolution.md).
 */
#include "common/contract/avroprog.h"

#include <avro.h>
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/binary.h"
#include "common/contract/json.h"
#include "common/util/errors.h"
#include "common/contract/schema.h"
#include "tests/support/check_text.h"
#include "tests/support/test_data.h"

#define RECORDS_PER_SCHEMA 400
#define CORRUPTIONS        40  /* random corruptions of every 8th record */
#define MAX_EVERY_CUT      512 /* truncations tried per record */
#define MAX_ENCODED        (64 * 1024)
#define PATH_SIZE          256

static avk_catalog_t *builtin;

static void setup(void)
{
        char errstr[512] = "";
        builtin = avk_catalog_new_builtin(errstr, sizeof(errstr));
        ck_assert_msg(builtin != NULL, "%s", errstr);
}

static void teardown(void)
{
        avk_catalog_destroy(builtin);
        builtin = NULL;
}

/* ---- random values ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

static const char *const text_pieces[] = {"a",
                                          "Z",
                                          "0",
                                          " ",
                                          "-",
                                          "å",
                                          "ä",
                                          "ö",
                                          "Å",
                                          "é",
                                          "ß",
                                          "€",
                                          "漢",
                                          "🚑",
                                          "\xf4\x8f\xbf\xbf",
                                          "SE2120001561-SABO7",
                                          "\n",
                                          "\"",
                                          "\\"};

/* A random valid UTF-8 text without NUL into buf (size cap); its length. */
static size_t random_text(char *buf, size_t cap)
{
        size_t kind = rnd() % 6, want, len = 0;
        if (kind == 0)
                want = 0;
        else if (kind == 1)
                want = 1000 + rnd() % 9000; /* long: several varint bytes of length */
        else
                want = rnd() % 60;
        size_t pieces = sizeof(text_pieces) / sizeof(text_pieces[0]);
        while (len < want) {
                const char *piece = text_pieces[rnd() % pieces];
                size_t n = strlen(piece);
                if (len + n >= cap)
                        break;
                memcpy(buf + len, piece, n);
                len += n;
        }
        buf[len] = '\0';
        return len;
}

/* Set while the reference is the JSON projection, whose JSON form holds
 * a long of DeviationReported (all timestamps) only as an RFC 3339 date. */
static int longs_are_dates;

static int64_t random_long(void)
{
        if (longs_are_dates)
                return (int64_t)(rnd() % 4102444800000ULL); /* 1970 to 2100 */
        static const int64_t edges[] = {0,
                                        1,
                                        -1,
                                        63,
                                        -64,
                                        64,
                                        -65,
                                        INT32_MAX,
                                        INT32_MIN,
                                        INT64_MAX,
                                        INT64_MIN,
                                        1795000000000LL,
                                        -1795000000000LL};
        if (rnd() % 2)
                return edges[rnd() % (sizeof(edges) / sizeof(edges[0]))];
        return (int64_t)rnd() >> (rnd() % 64);
}

static int32_t random_int(void)
{
        static const int32_t edges[] = {0, 1, -1, 63, -64, 64, -65, INT32_MAX, INT32_MIN, 8191};
        if (rnd() % 2)
                return edges[rnd() % (sizeof(edges) / sizeof(edges[0]))];
        return (int32_t)(rnd() >> (32 + rnd() % 32));
}

static double random_double(void)
{
        static const double edges[] = {0.0,     -0.0,     1.5,      -2.25,     DBL_MAX, DBL_MIN,
                                       FLT_MAX, 4.9e-324, INFINITY, -INFINITY, 1e300};
        if (rnd() % 2)
                return edges[rnd() % (sizeof(edges) / sizeof(edges[0]))];
        return (double)(int64_t)rnd() / 1e6;
}

/* avro-c makes every use of a named type after its definition a link. */
static avro_schema_t follow(avro_schema_t s)
{
        while (is_avro_link(s))
                s = avro_schema_link_target(s);
        return s;
}

static void random_value(avro_value_t *v, avro_schema_t s)
{
        char text[12000];
        s = follow(s);
        switch (avro_typeof(s)) {
        case AVRO_NULL:
                ck_assert_int_eq(avro_value_set_null(v), 0);
                break;
        case AVRO_BOOLEAN:
                ck_assert_int_eq(avro_value_set_boolean(v, (int)(rnd() % 2)), 0);
                break;
        case AVRO_INT32:
                ck_assert_int_eq(avro_value_set_int(v, random_int()), 0);
                break;
        case AVRO_INT64:
                ck_assert_int_eq(avro_value_set_long(v, random_long()), 0);
                break;
        case AVRO_FLOAT:
                ck_assert_int_eq(avro_value_set_float(v, (float)random_double()), 0);
                break;
        case AVRO_DOUBLE:
                ck_assert_int_eq(avro_value_set_double(v, random_double()), 0);
                break;
        case AVRO_STRING: {
                size_t len = random_text(text, sizeof(text));
                ck_assert_int_eq(avro_value_set_string_len(v, text, len + 1), 0);
                break;
        }
        case AVRO_BYTES:
        case AVRO_FIXED: {
                size_t len = is_avro_fixed(s) ? (size_t)avro_schema_fixed_size(s) : rnd() % 40;
                for (size_t i = 0; i < len; i++)
                        text[i] = (char)rnd(); /* any byte, NUL too */
                if (is_avro_fixed(s))
                        ck_assert_int_eq(avro_value_set_fixed(v, text, len), 0);
                else
                        ck_assert_int_eq(avro_value_set_bytes(v, text, len), 0);
                break;
        }
        case AVRO_ENUM:
                ck_assert_int_eq(
                    avro_value_set_enum(
                        v, (int)(rnd() % (uint64_t)avro_schema_enum_number_of_symbols(s))),
                    0);
                break;
        case AVRO_UNION: {
                avro_value_t branch;
                int b = (int)(rnd() % avro_schema_union_size(s));
                ck_assert_int_eq(avro_value_set_branch(v, b, &branch), 0);
                random_value(&branch, avro_schema_union_branch(s, b));
                break;
        }
        case AVRO_RECORD:
                for (size_t i = 0; i < avro_schema_record_size(s); i++) {
                        avro_value_t field;
                        ck_assert_int_eq(avro_value_get_by_index(v, i, &field, NULL), 0);
                        random_value(&field, avro_schema_record_field_get_by_index(s, (int)i));
                }
                break;
        default:
                ck_abort_msg("no random values of %s", avro_schema_type_name(s));
        }
}

/* ---- values against slots, by path ---- */

static void join(char *out, const char *parent, const char *name)
{
        snprintf(out, PATH_SIZE, "%s%s%s", parent, parent[0] ? "." : "", name);
}

static avk_avroprog_slot_t *slot_at(const avk_avroprog_t *prog, avk_avroprog_slot_t *slots,
                                    const char *path)
{
        int i = avk_avroprog_slot(prog, path);
        ck_assert_msg(i >= 0, "no slot %s", path);
        return &slots[i];
}

/* The slot value that v, avro-c's value of the leaf schema s, reads as. */
static avk_avroprog_slot_t leaf_slot(avro_value_t *v, avro_schema_t s)
{
        avk_avroprog_slot_t out = {.v.i = 0};
        int i32 = 0;
        float f = 0;
        size_t len = 0;
        switch (avro_typeof(s)) {
        case AVRO_BOOLEAN:
                avro_value_get_boolean(v, &i32);
                out.v.i = i32;
                break;
        case AVRO_INT32:
                avro_value_get_int(v, &i32);
                out.v.i = i32;
                break;
        case AVRO_ENUM:
                avro_value_get_enum(v, &i32);
                out.v.i = i32;
                break;
        case AVRO_INT64:
                avro_value_get_long(v, &out.v.i);
                break;
        case AVRO_FLOAT:
                avro_value_get_float(v, &f);
                out.v.d = f;
                break;
        case AVRO_DOUBLE:
                avro_value_get_double(v, &out.v.d);
                break;
        case AVRO_STRING:
                avro_value_get_string(v, &out.v.str, &len);
                len--; /* avro-c counts the NUL */
                break;
        case AVRO_BYTES:
                avro_value_get_bytes(v, (const void **)&out.v.str, &len);
                break;
        case AVRO_FIXED:
                avro_value_get_fixed(v, (const void **)&out.v.str, &len);
                break;
        default:
                ck_abort_msg("no slot value of %s", avro_schema_type_name(s));
        }
        out.len = (uint32_t)len;
        return out;
}

static void assert_leaf_equal(avro_schema_t s, const avk_avroprog_slot_t *slot,
                              const avk_avroprog_slot_t *expected, const char *path)
{
        switch (avro_typeof(s)) {
        case AVRO_FLOAT:
        case AVRO_DOUBLE:
                ck_assert_msg(memcmp(&slot->v.d, &expected->v.d, sizeof(double)) == 0,
                              "%s: %g, avro-c %g", path, slot->v.d, expected->v.d);
                return;
        case AVRO_STRING:
        case AVRO_BYTES:
        case AVRO_FIXED:
                ck_assert_msg(slot->len == expected->len &&
                                  memcmp(slot->v.str, expected->v.str, slot->len) == 0,
                              "%s: %u bytes differ from avro-c's %u", path, slot->len,
                              expected->len);
                return;
        default:
                ck_assert_msg(slot->v.i == expected->v.i, "%s: %lld, avro-c %lld", path,
                              (long long)slot->v.i, (long long)expected->v.i);
        }
}

enum walk { WALK_COMPARE, WALK_FILL };

/* Walks value v (of schema s) at path alongside its slots: checks that they
 * hold it (as decoded), or fills them from it (to encode). */
static void walk_slots(const avk_avroprog_t *prog, avk_avroprog_slot_t *slots, avro_value_t *v,
                       avro_schema_t s, const char *path, avk_avroprog_slot_t *slot, enum walk mode)
{
        s = follow(s);
        if (is_avro_null(s))
                return;
        if (is_avro_union(s)) {
                avro_value_t branch;
                int b;
                avro_value_get_discriminant(v, &b);
                avro_value_get_current_branch(v, &branch);
                if (mode == WALK_FILL)
                        slot->branch = b;
                ck_assert_msg(slot->branch == b, "%s: branch %d, avro-c %d", path, slot->branch, b);
                walk_slots(prog, slots, &branch, avro_schema_union_branch(s, b), path, slot, mode);
                return;
        }
        if (is_avro_record(s)) {
                for (size_t i = 0; i < avro_schema_record_size(s); i++) {
                        char sub[PATH_SIZE];
                        avro_value_t field;
                        avro_schema_t fs = follow(avro_schema_record_field_get_by_index(s, (int)i));
                        join(sub, path, avro_schema_record_field_name(s, (int)i));
                        avro_value_get_by_index(v, i, &field, NULL);
                        walk_slots(prog, slots, &field, fs, sub,
                                   is_avro_record(fs) ? NULL : slot_at(prog, slots, sub), mode);
                }
                return;
        }
        avk_avroprog_slot_t expected = leaf_slot(v, s);
        if (mode == WALK_FILL) {
                slot->v = expected.v;
                slot->len = expected.len;
        }
        assert_leaf_equal(s, slot, &expected, path);
}

static void assert_slots_hold(const avk_avroprog_t *prog, avk_avroprog_slot_t *slots,
                              avro_value_t *v, avro_schema_t s)
{
        walk_slots(prog, slots, v, s, "", NULL, WALK_COMPARE);
}

static void fill_slots(const avk_avroprog_t *prog, avk_avroprog_slot_t *slots, avro_value_t *v,
                       avro_schema_t s)
{
        walk_slots(prog, slots, v, s, "", NULL, WALK_FILL);
}

/* ---- avro-c's side ---- */

static size_t avro_c_encode(avro_value_t *v, char *buf, size_t cap)
{
        size_t len = 0;
        ck_assert_int_eq(avro_value_sizeof(v, &len), 0);
        ck_assert_uint_le(len, cap);
        avro_writer_t w = avro_writer_memory(buf, (int64_t)cap);
        ck_assert_msg(avro_value_write(w, v) == 0, "avro-c write: %s", avro_strerror());
        avro_writer_free(w);
        return len;
}

/* avk_codec's checked read: the bounds check, then avro-c. 0 when it accepts. */
static int checked_read(const avk_schema_t *schema, const void *buf, size_t len, avro_value_t *out)
{
        char errstr[512];
        if (avk_binary_check(avk_schema_avro(schema), buf, len, errstr, sizeof(errstr)) != 0)
                return -1;
        avro_value_reset(out);
        avro_reader_t r = avro_reader_memory(buf, (int64_t)len);
        int rc = avro_value_read(r, out);
        avro_reader_free(r);
        return rc == 0 ? 0 : -1;
}

/* The program and the checked read agree on buf: both refuse, or both read the same. */
static void assert_refuses_like_avro_c(const avk_schema_t *schema, const avk_avroprog_t *prog,
                                       avk_avroprog_slot_t *slots, avro_value_t *scratch,
                                       const void *buf, size_t len, const char *what)
{
        char errstr[512] = "";
        int reference = checked_read(schema, buf, len, scratch);
        int mine = avk_avroprog_decode(prog, buf, len, slots, errstr, sizeof(errstr));
        ck_assert_msg(mine == reference, "%s, %s (%zu bytes): checked read %s, program %s (%s)",
                      avk_schema_fullname(schema), what, len, reference ? "refuses" : "accepts",
                      mine ? "refuses" : "accepts", errstr);
        if (mine == 0)
                assert_slots_hold(prog, slots, scratch, avk_schema_avro(schema));
}

static void corrupt_and_compare(const avk_schema_t *schema, const avk_avroprog_t *prog,
                                avk_avroprog_slot_t *slots, avro_value_t *scratch,
                                const char *encoded, size_t len)
{
        /* Every truncation (of a long record, a sample of them), in a buffer
         * of its own size so ASan sees any overread. */
        size_t step = len > MAX_EVERY_CUT ? len / MAX_EVERY_CUT : 1;
        for (size_t cut = 0; cut < len; cut += step) {
                char *copy = malloc(cut ? cut : 1);
                memcpy(copy, encoded, cut);
                assert_refuses_like_avro_c(schema, prog, slots, scratch, copy, cut, "truncated");
                free(copy);
        }
        char *copy = malloc(len + 16);
        for (int i = 0; i < CORRUPTIONS && len > 0; i++) {
                memcpy(copy, encoded, len);
                size_t at = rnd() % len, n = len;
                switch (rnd() % 4) {
                case 0: /* one bit */
                        copy[at] ^= (char)(1u << (rnd() % 8));
                        break;
                case 1: /* one byte */
                        copy[at] = (char)rnd();
                        break;
                case 2: /* a huge or negative varint */
                        copy[at] = (char)(rnd() % 2 ? 0xff : 0x7f);
                        break;
                default: /* bytes after the datum */
                        copy[len] = (char)rnd();
                        n = len + 1;
                        break;
                }
                assert_refuses_like_avro_c(schema, prog, slots, scratch, copy, n, "corrupted");
        }
        free(copy);
}

/* ---- one schema, both directions ---- */

static void differential(const avk_schema_t *schema, uint64_t seed)
{
        char errstr[512] = "";
        avk_avroprog_t *prog = avk_avroprog_new(schema, errstr, sizeof(errstr));
        ck_assert_msg(prog != NULL, "%s: %s", avk_schema_fullname(schema), errstr);
        size_t n = avk_avroprog_slot_count(prog);
        avk_avroprog_slot_t *slots = calloc(n, sizeof(*slots));
        avk_avroprog_slot_t *filled = calloc(n, sizeof(*filled));
        char *theirs = malloc(MAX_ENCODED), *mine = malloc(MAX_ENCODED);
        avro_value_t value, scratch;
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(schema), &value), 0);
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(schema), &scratch), 0);
        rng_state = seed;
        for (int r = 0; r < RECORDS_PER_SCHEMA; r++) {
                avro_value_reset(&value);
                random_value(&value, avk_schema_avro(schema));
                size_t len = avro_c_encode(&value, theirs, MAX_ENCODED);

                ck_assert_msg(
                    avk_avroprog_decode(prog, theirs, len, slots, errstr, sizeof(errstr)) == 0,
                    "%s record %d: %s", avk_schema_fullname(schema), r, errstr);
                assert_slots_hold(prog, slots, &value, avk_schema_avro(schema));

                fill_slots(prog, filled, &value, avk_schema_avro(schema));
                int64_t got =
                    avk_avroprog_encode(prog, filled, mine, MAX_ENCODED, errstr, sizeof(errstr));
                ck_assert_msg(got >= 0, "%s record %d: %s", avk_schema_fullname(schema), r, errstr);
                ck_assert_msg((size_t)got == len && memcmp(mine, theirs, len) == 0,
                              "%s record %d: encoded %lld bytes, avro-c %zu, or they differ",
                              avk_schema_fullname(schema), r, (long long)got, len);

                if (r % 8 == 0)
                        corrupt_and_compare(schema, prog, slots, &scratch, theirs, len);
        }
        avro_value_decref(&value);
        avro_value_decref(&scratch);
        free(theirs);
        free(mine);
        free(slots);
        free(filled);
        avk_avroprog_destroy(prog);
}

START_TEST(test_every_schema_decodes_and_encodes_as_avro_c_does)
{
        for (size_t i = 0; i < avk_schema_source_cnt; i++) {
                const avk_schema_t *schema =
                    avk_catalog_by_name(builtin, avk_schema_sources[i].file);
                if (!schema) { /* the catalog names schemas by record name */
                        char errstr[512];
                        avk_schema_t *parsed =
                            avk_schema_new(avk_schema_sources[i].json, errstr, sizeof(errstr));
                        ck_assert_msg(parsed != NULL, "%s", errstr);
                        schema =
                            avk_catalog_by_fingerprint(builtin, avk_schema_fingerprint(parsed));
                        avk_schema_destroy(parsed);
                }
                ck_assert_ptr_nonnull(schema);
                differential(schema, 0x9e3779b97f4a7c15ULL + i);
        }
}
END_TEST

/* DeviationReported compiled; a failure fails the test. */
static avk_avroprog_t *reported_prog(void)
{
        char errstr[512] = "";
        avk_avroprog_t *prog = avk_avroprog_new(avk_catalog_by_name(builtin, "DeviationReported"),
                                                errstr, sizeof(errstr));
        ck_assert_msg(prog != NULL, "%s", errstr);
        return prog;
}

/* prog must refuse bytes with a reason that contains reason. */
static void assert_refused(const avk_avroprog_t *prog, const unsigned char *bytes, size_t len,
                           const char *reason)
{
        char errstr[512] = "";
        avk_avroprog_slot_t *slots = calloc(avk_avroprog_slot_count(prog), sizeof(*slots));
        ck_assert_int_eq(avk_avroprog_decode(prog, bytes, len, slots, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, reason);
        free(slots);
}

START_TEST(test_a_named_type_used_again_decodes_and_encodes_as_avro_c_does)
{
        /* Every use of Flags after the first is a link in avro-c, not recursion. */
        char errstr[512] = "";
        avk_schema_t *schema = avk_schema_new(
            "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
            "{\"name\":\"a\",\"type\":{\"type\":\"record\",\"name\":\"Flags\",\"fields\":["
            "{\"name\":\"x\",\"type\":\"boolean\"},"
            "{\"name\":\"k\",\"type\":{\"type\":\"enum\",\"name\":\"K\","
            "\"symbols\":[\"P\",\"Q\"]}}]}},"
            "{\"name\":\"b\",\"type\":\"Flags\"},"
            "{\"name\":\"c\",\"type\":[\"null\",\"Flags\",\"K\"]},"
            "{\"name\":\"d\",\"type\":{\"type\":\"fixed\",\"name\":\"Id\",\"size\":4}},"
            "{\"name\":\"e\",\"type\":[\"Id\",\"bytes\",\"float\",\"double\"]}]}",
            errstr, sizeof(errstr));
        ck_assert_msg(schema != NULL, "%s", errstr);
        differential(schema, 31);
        avk_schema_destroy(schema);
}
END_TEST

START_TEST(test_huge_string_length_is_refused_without_reading_past_the_buffer)
{
        /* DeviationReported starts with a string: claim 2^62 bytes. */
        avk_avroprog_t *prog = reported_prog();
        const unsigned char bytes[] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 'a'};
        assert_refused(prog, bytes, sizeof(bytes), "deviation_id at byte 9: truncated: length");
        avk_avroprog_destroy(prog);
}
END_TEST

START_TEST(test_decode_errors_name_the_field_and_reason)
{
        avk_avroprog_t *prog = reported_prog();
        /* deviation_id "\xc3(" is not UTF-8. */
        const unsigned char bad_utf8[] = {0x04, 0xc3, '('};
        assert_refused(prog, bad_utf8, sizeof(bad_utf8),
                       "deviation_id at byte 1: invalid UTF-8 at byte 0");
        const unsigned char nul[] = {0x04, 'a', 0};
        assert_refused(prog, nul, sizeof(nul), "deviation_id at byte 1: string contains a NUL");
        /* deviation_id "", occurred_at 0, discovered_at branch 2 of 2. */
        const unsigned char branch[] = {0x00, 0x00, 0x04};
        assert_refused(prog, branch, sizeof(branch),
                       "discovered_at at byte 3: union branch 2 out of range");
        avk_avroprog_destroy(prog);
}
END_TEST

START_TEST(test_slots_are_found_by_path)
{
        avk_avroprog_t *prog = reported_prog();
        ck_assert_int_eq(avk_avroprog_slot(prog, "deviation_id"), 0);
        int patient = avk_avroprog_slot(prog, "patient");
        ck_assert_int_gt(patient, 0);
        ck_assert_int_eq(avk_avroprog_slot(prog, "patient.personal_id"), patient + 1);
        ck_assert_int_eq(avk_avroprog_slot(prog, "reporter"), -1); /* a record has none */
        ck_assert_int_eq(avk_avroprog_slot(prog, "nonexistent"), -1);
        ck_assert_str_eq(avk_avroprog_slot_path(prog, (size_t)patient), "patient");
        avk_avroprog_destroy(prog);
}
END_TEST

START_TEST(test_encode_refuses_values_outside_the_schema)
{
        char errstr[512] = "";
        avk_schema_t *schema = avk_schema_new("{\"type\":\"record\",\"name\":\"E\",\"fields\":["
                                              "{\"name\":\"n\",\"type\":\"int\"},"
                                              "{\"name\":\"e\",\"type\":{\"type\":\"enum\","
                                              "\"name\":\"K\",\"symbols\":[\"A\",\"B\"]}},"
                                              "{\"name\":\"s\",\"type\":[\"null\",\"string\"]}]}",
                                              errstr, sizeof(errstr));
        ck_assert_msg(schema != NULL, "%s", errstr);
        avk_avroprog_t *prog = avk_avroprog_new(schema, errstr, sizeof(errstr));
        ck_assert_msg(prog != NULL, "%s", errstr);
        avk_avroprog_slot_t slots[3] = {{.v.i = 5}, {.v.i = 1}, {.v.str = "hej", .len = 3}};
        slots[2].branch = 1;
        unsigned char out[16];
        ck_assert_int_eq(avk_avroprog_encode(prog, slots, out, sizeof(out), errstr, sizeof(errstr)),
                         7);
        ck_assert_mem_eq(out, "\x0a\x02\x02\x06hej", 7);
        /* Too little room: the size, and nothing written past cap. */
        ck_assert_int_eq(avk_avroprog_encode(prog, slots, out, 2, errstr, sizeof(errstr)), 7);
        ck_assert_int_eq(avk_avroprog_encode(prog, slots, NULL, 0, errstr, sizeof(errstr)), 7);

        slots[0].v.i = (int64_t)INT32_MAX + 1;
        ck_assert_int_eq(avk_avroprog_encode(prog, slots, out, sizeof(out), errstr, sizeof(errstr)),
                         -1);
        ck_assert_contains(errstr, "n: int 2147483648 out of 32-bit range");
        slots[0].v.i = 5;
        slots[1].v.i = 2;
        ck_assert_int_eq(avk_avroprog_encode(prog, slots, out, sizeof(out), errstr, sizeof(errstr)),
                         -1);
        ck_assert_contains(errstr, "e: enum index 2 out of range (2 symbols)");
        slots[1].v.i = 0;
        slots[2].branch = 2;
        ck_assert_int_eq(avk_avroprog_encode(prog, slots, out, sizeof(out), errstr, sizeof(errstr)),
                         -1);
        ck_assert_contains(errstr, "s: union branch 2 out of range");
        slots[2] = (avk_avroprog_slot_t){.v.str = "\xff", .len = 1, .branch = 1};
        ck_assert_int_eq(avk_avroprog_encode(prog, slots, out, sizeof(out), errstr, sizeof(errstr)),
                         -1);
        ck_assert_contains(errstr, "s: invalid UTF-8 at byte 0");
        avk_avroprog_destroy(prog);
        avk_schema_destroy(schema);
}
END_TEST

START_TEST(test_arrays_maps_and_recursion_are_refused_at_compile)
{
        static const char *const texts[] = {
            "{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"xs\",\"type\":"
            "{\"type\":\"array\",\"items\":\"int\"}}]}",
            "{\"type\":\"record\",\"name\":\"M\",\"fields\":[{\"name\":\"xs\",\"type\":"
            "{\"type\":\"map\",\"values\":\"int\"}}]}",
            "{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":\"v\",\"type\":\"int\"},"
            "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}"};
        static const char *const reasons[] = {"xs: arrays and maps are not compiled",
                                              "xs: arrays and maps are not compiled",
                                              "next: recursive types are not compiled"};
        for (size_t i = 0; i < 3; i++) {
                char errstr[512] = "";
                avk_schema_t *schema = avk_schema_new(texts[i], errstr, sizeof(errstr));
                ck_assert_msg(schema != NULL, "%s", errstr);
                ck_assert_ptr_null(avk_avroprog_new(schema, errstr, sizeof(errstr)));
                ck_assert_contains(errstr, reasons[i]);
                avk_schema_destroy(schema);
        }
}
END_TEST

/* ---- two schemas ---- */

/* Reads records of writer with a program onto reader, and checks each against
 * reference_read's reader value. */
typedef void (*reference_read_fn)(const avk_schema_t *writer, const avk_schema_t *reader,
                                  avro_value_t *written, avro_value_t *read);

static void cross_version(const avk_schema_t *writer, const avk_schema_t *reader,
                          reference_read_fn reference_read, int records, uint64_t seed)
{
        char errstr[512] = "";
        avk_avroprog_t *prog = avk_avroprog_resolve(writer, reader, errstr, sizeof(errstr));
        ck_assert_msg(prog != NULL, "%s", errstr);
        avk_avroprog_slot_t *slots = calloc(avk_avroprog_slot_count(prog), sizeof(*slots));
        char *encoded = malloc(MAX_ENCODED);
        avro_value_t written, read;
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(writer), &written), 0);
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(reader), &read), 0);
        rng_state = seed;
        for (int r = 0; r < records; r++) {
                avro_value_reset(&written);
                random_value(&written, avk_schema_avro(writer));
                size_t len = avro_c_encode(&written, encoded, MAX_ENCODED);
                avro_value_reset(&read);
                reference_read(writer, reader, &written, &read);
                ck_assert_msg(
                    avk_avroprog_decode(prog, encoded, len, slots, errstr, sizeof(errstr)) == 0,
                    "record %d: %s", r, errstr);
                assert_slots_hold(prog, slots, &read, avk_schema_avro(reader));
        }
        avro_value_decref(&written);
        avro_value_decref(&read);
        free(encoded);
        free(slots);
        avk_avroprog_destroy(prog);
}

/* avro-c's resolved writer: right for promotions, skipped fields and union branches. */
static void avro_c_resolved_read(const avk_schema_t *writer, const avk_schema_t *reader,
                                 avro_value_t *written, avro_value_t *read)
{
        char *encoded = malloc(MAX_ENCODED);
        size_t len = avro_c_encode(written, encoded, MAX_ENCODED);
        avro_value_iface_t *resolver =
            avro_resolved_writer_new(avk_schema_avro(writer), avk_schema_avro(reader));
        ck_assert_msg(resolver != NULL, "avro-c resolver: %s", avro_strerror());
        avro_value_t resolved;
        ck_assert_int_eq(avro_resolved_writer_new_value(resolver, &resolved), 0);
        avro_resolved_writer_set_dest(&resolved, read);
        avro_reader_t r = avro_reader_memory(encoded, (int64_t)len);
        ck_assert_msg(avro_value_read(r, &resolved) == 0, "avro-c read: %s", avro_strerror());
        avro_reader_free(r);
        avro_value_decref(&resolved);
        avro_value_iface_decref(resolver);
        free(encoded);
}

/* The JSON projection (writer value -> JSON -> reader value, as avk_codec
 * reads pairs it does not compile): right for reader defaults and enum
 * symbols by name. */
static void json_projected_read(const avk_schema_t *writer, const avk_schema_t *reader,
                                avro_value_t *written, avro_value_t *read)
{
        char errstr[512] = "";
        json_t *j = avk_json_from_avro(writer, written, errstr, sizeof(errstr));
        ck_assert_msg(j != NULL, "to JSON: %s", errstr);
        struct avk_json_opts opts = {.flags = AVK_JSON_IGNORE_UNKNOWN | AVK_JSON_ENUM_FALLBACK};
        struct avk_errors errs;
        avk_errors_init(&errs);
        int rc = avk_json_to_avro(reader, j, read, &opts, &errs);
        json_decref(j);
        ck_assert_msg(rc == 0, "from JSON: %s", avk_errors_join(&errs, errstr, sizeof(errstr)));
}

static const avk_schema_t *v2_schema(avk_schema_t **owned)
{
        char path[512], errstr[512] = "";
        char *text =
            test_data_read(test_data_path("deviation_reported_v2.avsc", path, sizeof(path)), errstr,
                           sizeof(errstr));
        ck_assert_msg(text != NULL, "%s", errstr);
        *owned = avk_schema_new(text, errstr, sizeof(errstr));
        free(text);
        ck_assert_msg(*owned != NULL, "%s", errstr);
        return *owned;
}

START_TEST(test_v1_data_read_as_v2_as_the_json_projection_reads_it)
{
        avk_schema_t *v2;
        longs_are_dates = 1;
        cross_version(avk_catalog_by_name(builtin, "DeviationReported"), v2_schema(&v2),
                      json_projected_read, 200, 11);
        longs_are_dates = 0;
        avk_schema_destroy(v2);
}
END_TEST

START_TEST(test_v2_data_read_as_v1_as_the_json_projection_reads_it)
{
        avk_schema_t *v2;
        longs_are_dates = 1;
        cross_version(v2_schema(&v2), avk_catalog_by_name(builtin, "DeviationReported"),
                      json_projected_read, 200, 12);
        longs_are_dates = 0;
        avk_schema_destroy(v2);
}
END_TEST

/* Hand-made versions: what the writer wrote, what the reader expects. */
static const char PROMOTING_WRITER[] =
    "{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"a\",\"type\":\"int\"},"
    "{\"name\":\"b\",\"type\":\"int\"},"
    "{\"name\":\"c\",\"type\":\"long\"},"
    "{\"name\":\"d\",\"type\":\"float\"},"
    "{\"name\":\"e\",\"type\":\"long\"},"
    "{\"name\":\"gone\",\"type\":{\"type\":\"record\",\"name\":\"Gone\",\"fields\":["
    "{\"name\":\"x\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"y\",\"type\":{\"type\":\"enum\",\"name\":\"Y\",\"symbols\":[\"P\",\"Q\"]}},"
    "{\"name\":\"z\",\"type\":\"double\"}]}},"
    "{\"name\":\"u\",\"type\":[\"null\",\"int\",\"string\"]},"
    "{\"name\":\"plain\",\"type\":\"string\"},"
    "{\"name\":\"f\",\"type\":\"int\"}]}";
static const char PROMOTING_READER[] =
    "{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"plain\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"a\",\"type\":\"long\"},"
    "{\"name\":\"b\",\"type\":\"double\"},"
    "{\"name\":\"c\",\"type\":\"float\"},"
    "{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"e\",\"type\":\"double\"},"
    "{\"name\":\"u\",\"type\":[\"null\",\"string\",\"long\"]}]}";

static const char RENAMING_WRITER[] =
    "{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"color\",\"type\":{\"type\":\"enum\",\"name\":\"Color\","
    "\"symbols\":[\"RED\",\"GREEN\",\"BLUE\"]}},"
    "{\"name\":\"keep\",\"type\":\"string\"}]}";
static const char RENAMING_READER[] =
    "{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"keep\",\"type\":\"string\"},"
    "{\"name\":\"color\",\"type\":{\"type\":\"enum\",\"name\":\"Color\","
    "\"symbols\":[\"BLUE\",\"RED\",\"OTHER\"],\"default\":\"OTHER\"}},"
    "{\"name\":\"lang\",\"type\":\"string\",\"default\":\"sv\"},"
    "{\"name\":\"n\",\"type\":\"int\",\"default\":-3},"
    "{\"name\":\"flag\",\"type\":\"boolean\",\"default\":true},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"pick\",\"type\":[\"string\",\"null\"],\"default\":\"x\"},"
    "{\"name\":\"added\",\"type\":{\"type\":\"record\",\"name\":\"Added\",\"fields\":["
    "{\"name\":\"m\",\"type\":\"long\"},"
    "{\"name\":\"k\",\"type\":{\"type\":\"enum\",\"name\":\"K\",\"symbols\":[\"A\",\"B\"]},"
    "\"default\":\"B\"}]},\"default\":{\"m\":7}}]}";

static avk_schema_t *parse_schema(const char *text)
{
        char errstr[512] = "";
        avk_schema_t *schema = avk_schema_new(text, errstr, sizeof(errstr));
        ck_assert_msg(schema != NULL, "%s", errstr);
        return schema;
}

START_TEST(test_promotions_skips_and_union_branches_read_as_avro_c_resolves_them)
{
        avk_schema_t *writer = parse_schema(PROMOTING_WRITER);
        avk_schema_t *reader = parse_schema(PROMOTING_READER);
        cross_version(writer, reader, avro_c_resolved_read, 500, 21);
        avk_schema_destroy(writer);
        avk_schema_destroy(reader);
}
END_TEST

START_TEST(test_defaults_and_enum_symbols_read_as_the_json_projection_reads_them)
{
        avk_schema_t *writer = parse_schema(RENAMING_WRITER);
        avk_schema_t *reader = parse_schema(RENAMING_READER);
        cross_version(writer, reader, json_projected_read, 100, 22);

        /* And as the specification says, spelt out. */
        char errstr[512] = "";
        avk_avroprog_t *prog = avk_avroprog_resolve(writer, reader, errstr, sizeof(errstr));
        ck_assert_msg(prog != NULL, "%s", errstr);
        avk_avroprog_slot_t slots[9];
        const unsigned char green_hej[] = {0x02, 0x06, 'h', 'e', 'j'};
        ck_assert_int_eq(
            avk_avroprog_decode(prog, green_hej, sizeof(green_hej), slots, errstr, sizeof(errstr)),
            0);
        ck_assert_int_eq(slots[avk_avroprog_slot(prog, "color")].v.i, 2); /* OTHER */
        avk_avroprog_slot_t *lang = &slots[avk_avroprog_slot(prog, "lang")];
        ck_assert_mem_eq(lang->v.str, "sv", 2);
        ck_assert_uint_eq(lang->len, 2);
        ck_assert_int_eq(slots[avk_avroprog_slot(prog, "n")].v.i, -3);
        ck_assert_int_eq(slots[avk_avroprog_slot(prog, "flag")].v.i, 1);
        ck_assert_int_eq(slots[avk_avroprog_slot(prog, "note")].branch, 0);
        ck_assert_int_eq(slots[avk_avroprog_slot(prog, "pick")].branch, 0);
        ck_assert_int_eq(slots[avk_avroprog_slot(prog, "added.m")].v.i, 7);
        ck_assert_int_eq(slots[avk_avroprog_slot(prog, "added.k")].v.i, 1);
        avk_avroprog_destroy(prog);
        avk_schema_destroy(writer);
        avk_schema_destroy(reader);
}
END_TEST

START_TEST(test_writer_branch_without_reader_match_is_refused_when_met)
{
        avk_schema_t *writer = parse_schema("{\"type\":\"record\",\"name\":\"O\",\"fields\":["
                                            "{\"name\":\"n\",\"type\":[\"null\",\"long\"]}]}");
        avk_schema_t *reader = parse_schema("{\"type\":\"record\",\"name\":\"O\",\"fields\":["
                                            "{\"name\":\"n\",\"type\":\"double\"}]}");
        char errstr[512] = "";
        avk_avroprog_t *prog = avk_avroprog_resolve(writer, reader, errstr, sizeof(errstr));
        ck_assert_msg(prog != NULL, "%s", errstr);
        avk_avroprog_slot_t slot;
        ck_assert_int_eq(avk_avroprog_decode(prog, "\x02\x06", 2, &slot, errstr, sizeof(errstr)),
                         0);
        ck_assert(slot.v.d == 3.0);
        ck_assert_int_eq(avk_avroprog_decode(prog, "\x00", 1, &slot, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, "n at byte 1: the writer's union branch 0 has no match");
        avk_avroprog_destroy(prog);
        avk_schema_destroy(writer);
        avk_schema_destroy(reader);
}
END_TEST

START_TEST(test_reader_field_without_default_is_refused_at_compile)
{
        avk_schema_t *writer = parse_schema("{\"type\":\"record\",\"name\":\"O\",\"fields\":["
                                            "{\"name\":\"a\",\"type\":\"int\"}]}");
        avk_schema_t *reader = parse_schema("{\"type\":\"record\",\"name\":\"O\",\"fields\":["
                                            "{\"name\":\"a\",\"type\":\"int\"},"
                                            "{\"name\":\"b\",\"type\":\"string\"}]}");
        avk_schema_t *wrong = parse_schema("{\"type\":\"record\",\"name\":\"O\",\"fields\":["
                                           "{\"name\":\"a\",\"type\":\"string\"}]}");
        char errstr[512] = "";
        ck_assert_ptr_null(avk_avroprog_resolve(writer, reader, errstr, sizeof(errstr)));
        ck_assert_contains(errstr, "b: the reader's field has no default");
        ck_assert_ptr_null(avk_avroprog_resolve(writer, wrong, errstr, sizeof(errstr)));
        ck_assert_contains(errstr, "a: the writer's int cannot be read as the reader's string");
        avk_schema_destroy(writer);
        avk_schema_destroy(reader);
        avk_schema_destroy(wrong);
}
END_TEST

START_TEST(test_a_program_of_two_schemas_does_not_encode)
{
        avk_schema_t *v2;
        char errstr[512] = "";
        avk_avroprog_t *prog =
            avk_avroprog_resolve(avk_catalog_by_name(builtin, "DeviationReported"), v2_schema(&v2),
                                 errstr, sizeof(errstr));
        ck_assert_msg(prog != NULL, "%s", errstr);
        avk_avroprog_slot_t *slots = calloc(avk_avroprog_slot_count(prog), sizeof(*slots));
        ck_assert_int_eq(avk_avroprog_encode(prog, slots, NULL, 0, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, "only decodes");
        free(slots);
        avk_avroprog_destroy(prog);
        avk_schema_destroy(v2);
}
END_TEST

Suite *avroprog_suite(void);

Suite *avroprog_suite(void)
{
        Suite *s = suite_create("avroprog");
        TCase *one = tcase_create("one schema");
        tcase_add_checked_fixture(one, setup, teardown);
        tcase_set_timeout(one, 600);
        tcase_add_test(one, test_every_schema_decodes_and_encodes_as_avro_c_does);
        tcase_add_test(one, test_a_named_type_used_again_decodes_and_encodes_as_avro_c_does);
        tcase_add_test(one, test_huge_string_length_is_refused_without_reading_past_the_buffer);
        tcase_add_test(one, test_decode_errors_name_the_field_and_reason);
        tcase_add_test(one, test_slots_are_found_by_path);
        tcase_add_test(one, test_encode_refuses_values_outside_the_schema);
        tcase_add_test(one, test_arrays_maps_and_recursion_are_refused_at_compile);
        suite_add_tcase(s, one);
        TCase *two = tcase_create("two schemas");
        tcase_add_checked_fixture(two, setup, teardown);
        tcase_add_test(two, test_v1_data_read_as_v2_as_the_json_projection_reads_it);
        tcase_add_test(two, test_v2_data_read_as_v1_as_the_json_projection_reads_it);
        tcase_add_test(two, test_promotions_skips_and_union_branches_read_as_avro_c_resolves_them);
        tcase_add_test(two, test_defaults_and_enum_symbols_read_as_the_json_projection_reads_them);
        tcase_add_test(two, test_writer_branch_without_reader_match_is_refused_when_met);
        tcase_add_test(two, test_reader_field_without_default_is_refused_at_compile);
        tcase_add_test(two, test_a_program_of_two_schemas_does_not_encode);
        suite_add_tcase(s, two);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(avroprog_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
