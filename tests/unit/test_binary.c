/*
 * Tests for avk_binary_check on small hand-built schemas and hand-built
 * bytes: every length, count, index and string of untrusted Avro binary is
 * checked against the schema and the bytes actually there, before avro-c
 * (which trusts them) sees the datum. Each case names the encoding it forges;
 * Avro's variable-length integers are zigzag-encoded, so 02 is 1, 01 is -1,
 * 04 is 2.
 */
#include "common/contract/binary.h"

#include <avro.h>
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/support/check_text.h"

/* A byte array and its size, as the two arguments the checks take. */
#define BYTES(...)                                                                                 \
        (const unsigned char[]){__VA_ARGS__}, sizeof((const unsigned char[]){__VA_ARGS__})

static const char NODE_SCHEMA[] =
    "{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
    "{\"name\":\"value\",\"type\":\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}";

static avro_schema_t parse(const char *json)
{
        avro_schema_t schema = NULL;
        ck_assert_msg(avro_schema_from_json_length(json, strlen(json), &schema) == 0,
                      "schema %s: %s", json, avro_strerror());
        return schema;
}

static void assert_valid(const char *schema_json, const unsigned char *bytes, size_t len)
{
        avro_schema_t schema = parse(schema_json);
        char errstr[512] = "";
        int rc = avk_binary_check(schema, bytes, len, errstr, sizeof(errstr));
        avro_schema_decref(schema);
        ck_assert_msg(rc == 0, "%s rejected %zu bytes: %s", schema_json, len, errstr);
}

/* The check must fail and its reason contain part1 and (unless NULL) part2. */
static void assert_invalid(const char *schema_json, const unsigned char *bytes, size_t len,
                           const char *part1, const char *part2)
{
        avro_schema_t schema = parse(schema_json);
        char errstr[512] = "";
        int rc = avk_binary_check(schema, bytes, len, errstr, sizeof(errstr));
        avro_schema_decref(schema);
        ck_assert_msg(rc == -1, "%s accepted %zu bytes", schema_json, len);
        ck_assert_contains(errstr, part1);
        if (part2)
                ck_assert_contains(errstr, part2);
}

static double seconds_since(const struct timespec *start)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* ---- well-formed data passes ---- */

START_TEST(test_datum_of_every_type_passes)
{
        static const char schema[] =
            "{\"type\":\"record\",\"name\":\"All\",\"fields\":["
            "{\"name\":\"n\",\"type\":\"null\"},"
            "{\"name\":\"b\",\"type\":\"boolean\"},"
            "{\"name\":\"i\",\"type\":\"int\"},"
            "{\"name\":\"l\",\"type\":\"long\"},"
            "{\"name\":\"f\",\"type\":\"float\"},"
            "{\"name\":\"d\",\"type\":\"double\"},"
            "{\"name\":\"raw\",\"type\":\"bytes\"},"
            "{\"name\":\"s\",\"type\":\"string\"},"
            "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\","
            "\"C\"]}},"
            "{\"name\":\"u\",\"type\":[\"null\",\"string\"]},"
            "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"int\"}},"
            "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
            "{\"name\":\"x\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":3}},"
            "{\"name\":\"r\",\"type\":{\"type\":\"record\",\"name\":\"R\",\"fields\":["
            "{\"name\":\"z\",\"type\":\"int\"}]}}]}";
        assert_valid(schema, BYTES(0x01,                         /* b: true */
                                   0x96, 0x01,                   /* i: 75 */
                                   0x01,                         /* l: -1 */
                                   0x00, 0x00, 0x80, 0x3F,       /* f: 1.0 */
                                   0, 0, 0, 0, 0, 0, 0xF0, 0x3F, /* d: 1.0 */
                                   0x04, 0xFF, 0xFE,             /* raw: 2 bytes, not UTF-8 */
                                   0x06, 'a', 'b', 'c',          /* s: "abc" */
                                   0x04,                         /* e: C */
                                   0x02, 0x02, 'x',              /* u: branch 1, "x" */
                                   0x04, 0x02, 0x04,             /* a: block of 2: 1, 2 */
                                   0x01, 0x02, 0x06,             /* a: 1 item in 1 byte: 3 */
                                   0x00,                         /* a: end */
                                   0x02, 0x02, 'k', 0x0A, 0x00,  /* m: {"k": 5} */
                                   'x', 'y', 'z',                /* x */
                                   0x02));                       /* r.z: 1 */
}
END_TEST

START_TEST(test_empty_record_and_null_need_no_bytes)
{
        static const unsigned char none[1] = {0};
        assert_valid("{\"type\":\"record\",\"name\":\"Empty\",\"fields\":[]}", none, 0);
        assert_valid("\"null\"", none, 0);
}
END_TEST

/* ---- variable-length integers ---- */

START_TEST(test_long_varint_over_10_bytes_is_rejected)
{
        assert_invalid("\"long\"",
                       BYTES(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01),
                       "variable-length integer longer than 10 bytes", "at byte 10");
        /* Ten bytes is the most a long needs: INT64_MIN is zigzag FF..FF. */
        assert_valid("\"long\"", BYTES(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01));
}
END_TEST

START_TEST(test_int_varint_over_5_bytes_is_rejected)
{
        assert_invalid("\"int\"", BYTES(0x80, 0x80, 0x80, 0x80, 0x80, 0x00),
                       "variable-length integer longer than 5 bytes", NULL);
}
END_TEST

START_TEST(test_cut_off_varint_is_truncated)
{
        assert_invalid("\"long\"", BYTES(0x80, 0x80), "truncated",
                       "variable-length integer is cut off");
        static const unsigned char none[1] = {0};
        assert_invalid("\"int\"", none, 0, "truncated", NULL);
}
END_TEST

START_TEST(test_int_outside_32_bits_is_rejected)
{
        /* 2^31 (zigzag 2^32) and -2^31 - 1 (zigzag 2^32 + 1). */
        assert_invalid("\"int\"", BYTES(0x80, 0x80, 0x80, 0x80, 0x10), "int out of 32-bit range",
                       NULL);
        assert_invalid("\"int\"", BYTES(0x81, 0x80, 0x80, 0x80, 0x10), "int out of 32-bit range",
                       NULL);
        /* INT32_MAX and INT32_MIN themselves fit. */
        assert_valid("\"int\"", BYTES(0xFE, 0xFF, 0xFF, 0xFF, 0x0F));
        assert_valid("\"int\"", BYTES(0xFF, 0xFF, 0xFF, 0xFF, 0x0F));
}
END_TEST

/* ---- lengths ---- */

START_TEST(test_negative_string_length_is_rejected)
{
        assert_invalid("\"string\"", BYTES(0x01, 'a'), "negative length -1", NULL);
        assert_invalid("\"bytes\"", BYTES(0x03, 'a'), "negative length -2", NULL);
}
END_TEST

START_TEST(test_length_beyond_the_bytes_left_is_truncated)
{
        assert_invalid("\"string\"", BYTES(0x0A, 'a', 'b'), "truncated",
                       "length 5 but 2 bytes left");
        /* About 2 GB claimed by five bytes: refused before anything is read. */
        assert_invalid("\"bytes\"", BYTES(0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 'a'), "truncated",
                       "length 2147483647 but 1 bytes left");
        /* The largest length a long can hold. */
        assert_invalid("\"string\"",
                       BYTES(0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01),
                       "length 9223372036854775807 but 0 bytes left", NULL);
}
END_TEST

START_TEST(test_short_fixed_float_and_double_are_truncated)
{
        assert_invalid("\"double\"", BYTES(0, 0, 0), "truncated", "a double needs 8 bytes, 3 left");
        assert_invalid("\"float\"", BYTES(0), "truncated", "a float needs 4 bytes, 1 left");
        assert_invalid("{\"type\":\"fixed\",\"name\":\"Id\",\"size\":16}", BYTES('a', 'b'),
                       "truncated", "a fixed needs 16 bytes, 2 left");
}
END_TEST

/* ---- booleans, enums, unions ---- */

START_TEST(test_boolean_byte_other_than_0_or_1_is_rejected)
{
        assert_invalid("\"boolean\"", BYTES(0x02), "boolean byte is 2", NULL);
        assert_invalid("\"boolean\"", BYTES(0xFF), "boolean byte is 255", NULL);
        static const unsigned char none[1] = {0};
        assert_invalid("\"boolean\"", none, 0, "truncated", "boolean missing");
        assert_valid("\"boolean\"", BYTES(0x00));
        assert_valid("\"boolean\"", BYTES(0x01));
}
END_TEST

START_TEST(test_enum_index_out_of_range_is_rejected)
{
        static const char schema[] =
            "{\"type\":\"enum\",\"name\":\"AB\",\"symbols\":[\"A\",\"B\"]}";
        assert_invalid(schema, BYTES(0x04), "enum index 2 out of range", "2 symbols");
        assert_invalid(schema, BYTES(0x01), "enum index -1 out of range", NULL);
        assert_valid(schema, BYTES(0x02));
}
END_TEST

START_TEST(test_union_branch_out_of_range_is_rejected)
{
        static const char schema[] = "[\"null\",\"string\"]";
        assert_invalid(schema, BYTES(0x04), "union branch 2 out of range", "2 branches");
        assert_invalid(schema, BYTES(0x01), "union branch -1 out of range", NULL);
        /* The chosen branch is checked too. */
        assert_invalid(schema, BYTES(0x02, 0x06, 'a'), "truncated", NULL);
        assert_valid(schema, BYTES(0x00));
        assert_valid(schema, BYTES(0x02, 0x02, 'a'));
}
END_TEST

/* ---- arrays and maps ---- */

START_TEST(test_huge_block_count_of_nulls_stops_at_the_item_bound)
{
        /* Null items take no bytes, so nothing but a bound on items stops a count of 2^62
         * (zigzag 2^63: nine 80s and 01) from spinning the walk. */
        static const char schema[] = "{\"type\":\"array\",\"items\":\"null\"}";
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        assert_invalid(schema, BYTES(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01),
                       "more than 1048576 items", NULL);
        /* Blocks that pass one by one but not together: 2^19 + 2^19 + 1 (2^19 is
         * zigzag 2^20: 80 80 40). */
        assert_invalid(schema, BYTES(0x80, 0x80, 0x40, 0x80, 0x80, 0x40, 0x02, 0x00),
                       "more than 1048576 items", NULL);
        double took = seconds_since(&start);
        ck_assert_msg(took < 2.0, "the walk took %.2f s", took);
        /* A thousand nulls (zigzag 2000: D0 0F) are fine. */
        assert_valid(schema, BYTES(0xD0, 0x0F, 0x00));
}
END_TEST

START_TEST(test_block_count_int64_min_is_rejected)
{
        /* -2^63 cannot be negated into an item count. */
        assert_invalid("{\"type\":\"array\",\"items\":\"null\"}",
                       BYTES(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01),
                       "block count out of range", NULL);
}
END_TEST

START_TEST(test_block_byte_size_beyond_the_bytes_left_is_rejected)
{
        /* A negative count is followed by the block's size in bytes: -1 item, 100 bytes. */
        assert_invalid("{\"type\":\"array\",\"items\":\"int\"}", BYTES(0x01, 0xC8, 0x01, 0x02),
                       "block claims 100 bytes", "1 left");
        assert_invalid("{\"type\":\"array\",\"items\":\"int\"}", BYTES(0x01, 0x01, 0x02),
                       "block claims -1 bytes", NULL);
}
END_TEST

START_TEST(test_items_missing_after_a_count_are_truncated)
{
        /* A block of 1000 ints (zigzag 2000) with two of them present. */
        assert_invalid("{\"type\":\"array\",\"items\":\"int\"}", BYTES(0xD0, 0x0F, 0x02, 0x04),
                       "truncated", NULL);
        /* No end-of-array marker. */
        assert_invalid("{\"type\":\"array\",\"items\":\"int\"}", BYTES(0x02, 0x02), "truncated",
                       NULL);
}
END_TEST

START_TEST(test_map_with_bad_key_is_rejected)
{
        static const char schema[] = "{\"type\":\"map\",\"values\":\"int\"}";
        /* One entry whose key is the single byte FF. */
        assert_invalid(schema, BYTES(0x02, 0x02, 0xFF, 0x02, 0x00), "invalid UTF-8", NULL);
        assert_invalid(schema, BYTES(0x02, 0x01, 0x02, 0x00), "negative length -1", NULL);
        assert_invalid(schema, BYTES(0x02, 0x0A, 'k', 0x02, 0x00), "truncated", "length 5");
        assert_valid(schema, BYTES(0x02, 0x06, 0xC3, 0xA5, 'r', 0x02, 0x00));
}
END_TEST

/* ---- nesting ---- */

/* A linked list of n Nodes, each with value 1 (02) and a next branch. */
static unsigned char *node_list(size_t n, size_t *len)
{
        unsigned char *bytes = malloc(2 * n + 1);
        ck_assert_ptr_nonnull(bytes);
        for (size_t i = 0; i < n; i++) {
                bytes[2 * i] = 0x02;     /* value: 1 */
                bytes[2 * i + 1] = 0x02; /* next: branch 1, another Node */
        }
        bytes[2 * n - 1] = 0x00; /* the last next: branch 0, null */
        *len = 2 * n;
        return bytes;
}

START_TEST(test_recursion_past_the_depth_limit_is_rejected)
{
        size_t len;
        unsigned char *deep = node_list(100000, &len);
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        assert_invalid(NODE_SCHEMA, deep, len, "nests deeper than 64 levels", "next");
        ck_assert_msg(seconds_since(&start) < 1.0, "a deep datum took long to refuse");
        free(deep);

        unsigned char *shallow = node_list(20, &len);
        assert_valid(NODE_SCHEMA, shallow, len);
        free(shallow);
}
END_TEST

/* ---- trailing bytes and error positions ---- */

START_TEST(test_trailing_bytes_are_rejected)
{
        assert_invalid("\"int\"", BYTES(0x02, 0x00, 0x00), "2 bytes trail the datum", NULL);
        assert_invalid("{\"type\":\"record\",\"name\":\"Empty\",\"fields\":[]}", BYTES(0x00),
                       "1 bytes trail the datum", NULL);
}
END_TEST

START_TEST(test_error_names_field_path_and_offset)
{
        static const char schema[] =
            "{\"type\":\"record\",\"name\":\"Outer\",\"fields\":["
            "{\"name\":\"id\",\"type\":\"int\"},"
            "{\"name\":\"inner\",\"type\":{\"type\":\"record\",\"name\":\"Inner\",\"fields\":["
            "{\"name\":\"flag\",\"type\":\"boolean\"},{\"name\":\"text\",\"type\":\"string\"}]}}]}";
        assert_invalid(schema, BYTES(0x02, 0x01, 0x04, 'o', 0xC0), "inner.text at byte 3",
                       "invalid UTF-8 at byte 1 of the string");
        assert_invalid(schema, BYTES(0x02, 0x07), "inner.flag at byte 1", "boolean byte is 7");
}
END_TEST

/* ---- UTF-8 ---- */

struct utf8_case {
        const char *what;
        unsigned char bytes[8];
        size_t len;
};

START_TEST(test_invalid_utf8_is_rejected)
{
        static const struct utf8_case cases[] = {
            {"overlong 2-byte '/'", {0xC0, 0xAF}, 2},
            {"overlong 3-byte '/'", {0xE0, 0x80, 0xAF}, 3},
            {"overlong 4-byte '/'", {0xF0, 0x80, 0x80, 0xAF}, 4},
            {"surrogate U+D800", {0xED, 0xA0, 0x80}, 3},
            {"surrogate U+DFFF", {0xED, 0xBF, 0xBF}, 3},
            {"above U+10FFFF", {0xF4, 0x90, 0x80, 0x80}, 4},
            {"2-byte sequence cut at the end", {'a', 0xC3}, 2},
            {"3-byte sequence cut at the end", {'a', 'b', 0xE2, 0x82}, 4},
            {"4-byte sequence cut at the end", {0xF0, 0x9F, 0x98}, 3},
            {"lone continuation byte", {'a', 0x80, 'b'}, 3},
            {"lead byte followed by ASCII", {0xC3, 'a'}, 2},
            {"5-byte form", {0xF8, 0x88, 0x80, 0x80, 0x80}, 5},
            {"byte FF", {0xFF}, 1},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                unsigned char datum[16];
                datum[0] = (unsigned char)(2 * cases[i].len); /* zigzag length */
                memcpy(datum + 1, cases[i].bytes, cases[i].len);
                avro_schema_t schema = parse("\"string\"");
                char errstr[256] = "";
                int rc = avk_binary_check(schema, datum, cases[i].len + 1, errstr, sizeof(errstr));
                avro_schema_decref(schema);
                ck_assert_msg(rc == -1, "%s was accepted", cases[i].what);
                ck_assert_msg(strstr(errstr, "invalid UTF-8") != NULL, "%s: %s", cases[i].what,
                              errstr);
        }
        /* The position named is the first bad sequence's. */
        assert_invalid("\"string\"", BYTES(0x06, 'a', 'b', 0xC0), "at byte 2 of the string", NULL);
}
END_TEST

START_TEST(test_valid_utf8_passes)
{
        static const struct utf8_case cases[] = {
            {"Swedish åäö", {0xC3, 0xA5, 0xC3, 0xA4, 0xC3, 0xB6}, 6},
            {"emoji U+1F600", {0xF0, 0x9F, 0x98, 0x80}, 4},
            {"U+10FFFF, the last code point", {0xF4, 0x8F, 0xBF, 0xBF}, 4},
            {"U+D7FF, just below the surrogates", {0xED, 0x9F, 0xBF}, 3},
            {"U+E000, just above the surrogates", {0xEE, 0x80, 0x80}, 3},
            {"U+0800, the smallest 3-byte", {0xE0, 0xA0, 0x80}, 3},
            {"U+0080, the smallest 2-byte", {0xC2, 0x80}, 2},
            {"ASCII", {'S', 'i', 'p'}, 3},
            {"empty", {0}, 0},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                unsigned char datum[16];
                datum[0] = (unsigned char)(2 * cases[i].len);
                memcpy(datum + 1, cases[i].bytes, cases[i].len);
                avro_schema_t schema = parse("\"string\"");
                char errstr[256] = "";
                int rc = avk_binary_check(schema, datum, cases[i].len + 1, errstr, sizeof(errstr));
                avro_schema_decref(schema);
                ck_assert_msg(rc == 0, "%s was rejected: %s", cases[i].what, errstr);
        }
}
END_TEST

START_TEST(test_nul_in_a_string_is_rejected_as_intake_rejects_it)
{
        /* "a\0b": UTF-8 allows NUL, but intake refuses it and a reader on
         * another schema version would too; the binary check keeps them equal. */
        assert_invalid("\"string\"", BYTES(0x06, 'a', 0x00, 'b'), "NUL character", NULL);
        assert_invalid("{\"type\":\"map\",\"values\":\"int\"}", BYTES(0x02, 0x02, 0x00, 0x02, 0x00),
                       "NUL character", NULL);
}
END_TEST

START_TEST(test_bytes_are_not_held_to_utf8)
{
        assert_valid("\"bytes\"", BYTES(0x06, 0xC0, 0xAF, 0xFF));
        assert_invalid("\"string\"", BYTES(0x06, 0xC0, 0xAF, 0xFF), "invalid UTF-8", NULL);
}
END_TEST

static Suite *binary_suite(void)
{
        Suite *suite = suite_create("binary");
        TCase *tc = tcase_create("check");
        tcase_add_test(tc, test_datum_of_every_type_passes);
        tcase_add_test(tc, test_empty_record_and_null_need_no_bytes);
        tcase_add_test(tc, test_long_varint_over_10_bytes_is_rejected);
        tcase_add_test(tc, test_int_varint_over_5_bytes_is_rejected);
        tcase_add_test(tc, test_cut_off_varint_is_truncated);
        tcase_add_test(tc, test_int_outside_32_bits_is_rejected);
        tcase_add_test(tc, test_negative_string_length_is_rejected);
        tcase_add_test(tc, test_length_beyond_the_bytes_left_is_truncated);
        tcase_add_test(tc, test_short_fixed_float_and_double_are_truncated);
        tcase_add_test(tc, test_boolean_byte_other_than_0_or_1_is_rejected);
        tcase_add_test(tc, test_enum_index_out_of_range_is_rejected);
        tcase_add_test(tc, test_union_branch_out_of_range_is_rejected);
        tcase_add_test(tc, test_huge_block_count_of_nulls_stops_at_the_item_bound);
        tcase_add_test(tc, test_block_count_int64_min_is_rejected);
        tcase_add_test(tc, test_block_byte_size_beyond_the_bytes_left_is_rejected);
        tcase_add_test(tc, test_items_missing_after_a_count_are_truncated);
        tcase_add_test(tc, test_map_with_bad_key_is_rejected);
        tcase_add_test(tc, test_recursion_past_the_depth_limit_is_rejected);
        tcase_add_test(tc, test_trailing_bytes_are_rejected);
        tcase_add_test(tc, test_error_names_field_path_and_offset);
        tcase_add_test(tc, test_invalid_utf8_is_rejected);
        tcase_add_test(tc, test_valid_utf8_passes);
        tcase_add_test(tc, test_nul_in_a_string_is_rejected_as_intake_rejects_it);
        tcase_add_test(tc, test_bytes_are_not_held_to_utf8);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void)
{
        SRunner *runner = srunner_create(binary_suite());
        srunner_run_all(runner, CK_NORMAL);
        int failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
