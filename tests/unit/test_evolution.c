/*
 * Schema evolution through avk_codec: DeviationReported v1 (schemas/) and the
 * test fixture v2 (tests/data/deviation_reported_v2.avsc), which adds a
 * boolean with a default (follow_up_requested, in the middle of the record),
 * a nullable string (follow_up_contact, at the end), and TRANSPORT to the
 * Category enum just before OTHER - so OTHER moves from position 11 to 12.
 *
 * avro-c 1.11.1 resolves enums by position and does not fill reader defaults
 * (DESIGN.md, "Known pitfalls"); these tests show that the codec's projection
 * does both by name: a v2 reader of v1 data gets the defaults and OTHER stays
 * OTHER; a v1 reader of v2 data drops the new fields, reads TRANSPORT as the
 * enum's default OTHER and OTHER as OTHER. Once in single-object framing (the
 * reader's catalog knows both versions), once in Confluent framing (the
 * reader's catalog knows only its own version and learns the writer's from
 * the fake Schema Registry by id).
 */
#include "common/codec.h"

#include <avro.h>
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/json.h"
#include "common/registry.h"
#include "common/schema.h"
#include "tests/support/check_text.h"
#include "tests/support/fake_registry.h"
#include "tests/support/test_data.h"

#define TOPIC   "deviation.reported"
#define SUBJECT "deviation.reported-value"

static avk_catalog_t *builtin; /* what a v1 program knows: v1 only */
static avk_catalog_t *both;    /* v1 and v2, built by hand */
static const avk_schema_t *v1, *v2;
static char **sample_paths;
static size_t sample_cnt;
static struct fake_registry *fake;

static void setup(void)
{
        char errstr[512] = "";
        builtin = avk_catalog_new_builtin(errstr, sizeof(errstr));
        ck_assert_msg(builtin != NULL, "%s", errstr);
        const avk_schema_t *builtin_v1 = avk_catalog_by_name(builtin, "DeviationReported");
        ck_assert_ptr_nonnull(builtin_v1);

        char path[512];
        char *v2_text =
            test_data_read(test_data_path("deviation_reported_v2.avsc", path, sizeof(path)), errstr,
                           sizeof(errstr));
        ck_assert_msg(v2_text != NULL, "%s", errstr);
        avk_schema_t *own_v1 = avk_schema_new(avk_schema_text(builtin_v1), errstr, sizeof(errstr));
        ck_assert_msg(own_v1 != NULL, "v1: %s", errstr);
        avk_schema_t *own_v2 = avk_schema_new(v2_text, errstr, sizeof(errstr));
        free(v2_text);
        ck_assert_msg(own_v2 != NULL, "v2: %s", errstr);

        both = avk_catalog_new();
        ck_assert_ptr_nonnull(both);
        ck_assert_msg(avk_catalog_add(both, own_v1, errstr, sizeof(errstr)) == 0, "%s", errstr);
        ck_assert_msg(avk_catalog_add(both, own_v2, errstr, sizeof(errstr)) == 0, "%s", errstr);
        v1 = own_v1;
        v2 = own_v2;

        sample_cnt = test_data_sample_paths(&sample_paths);
        ck_assert_uint_ge(sample_cnt, 1);
}

static void teardown(void)
{
        test_data_free_paths(sample_paths);
        sample_paths = NULL;
        avk_catalog_destroy(both);
        avk_catalog_destroy(builtin);
        both = builtin = NULL;
        v1 = v2 = NULL;
}

static void setup_with_fake(void)
{
        char errstr[256] = "";
        setup();
        fake = fake_registry_start(FAKE_REGISTRY_NORMAL, errstr, sizeof(errstr));
        ck_assert_msg(fake != NULL, "fake registry: %s", errstr);
}

static void teardown_with_fake(void)
{
        fake_registry_stop(fake);
        fake = NULL;
        teardown();
}

/* ---- helpers ---- */

static json_t *load_sample(size_t i)
{
        char errstr[512] = "";
        json_t *j = test_data_load_json(sample_paths[i], errstr, sizeof(errstr));
        ck_assert_msg(j != NULL, "%s", errstr);
        return j;
}

/* Sample i as a v1 document with the given category. */
static json_t *v1_doc(size_t i, const char *category)
{
        json_t *j = load_sample(i);
        json_object_set_new(j, "category", json_string(category));
        return j;
}

/* Sample i as a v2 document with the given category and the new fields set. */
static json_t *v2_doc(size_t i, const char *category)
{
        json_t *j = v1_doc(i, category);
        json_object_set_new(j, "follow_up_requested", json_true());
        json_object_set_new(j, "follow_up_contact",
                            json_string("Samordnare, SE2120001215-HSK0042"));
        return j;
}

static avk_registry_t *registry(void)
{
        struct avk_registry_conf conf = {.url = fake_registry_url(fake), .timeout_ms = 2000};
        char errstr[512] = "";
        avk_registry_t *reg = avk_registry_new(&conf, errstr, sizeof(errstr));
        ck_assert_msg(reg != NULL, "%s", errstr);
        return reg;
}

static avk_codec_t *codec_with(const avk_catalog_t *catalog, avk_registry_t *reg)
{
        avk_codec_t *codec = avk_codec_new(catalog, reg);
        ck_assert_ptr_nonnull(codec);
        return codec;
}

/* Encodes doc as a value of writer; returns a malloc'd copy of the message. */
static unsigned char *encode(avk_codec_t *codec, const avk_schema_t *writer, const json_t *doc,
                             size_t *len)
{
        struct avk_json_opts opts = {0};
        struct avk_errors errs;
        char joined[1024];
        avro_value_t value;
        const void *out = NULL;
        char errstr[512] = "";

        avk_errors_init(&errs);
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(writer), &value), 0);
        ck_assert_msg(avk_json_to_avro(writer, doc, &value, &opts, &errs) == 0, "%s",
                      avk_errors_join(&errs, joined, sizeof(joined)));
        ck_assert_msg(
            avk_codec_encode(codec, TOPIC, writer, &value, &out, len, errstr, sizeof(errstr)) == 0,
            "encode: %s", errstr);
        avro_value_decref(&value);
        unsigned char *copy = malloc(*len);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, out, *len);
        return copy;
}

/* Decodes msg as a value of reader; returns its JSON. */
static json_t *decode(avk_codec_t *codec, const unsigned char *msg, size_t len,
                      const avk_schema_t *reader)
{
        avro_value_t value;
        char errstr[512] = "";
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(reader), &value), 0);
        ck_assert_msg(avk_codec_decode(codec, msg, len, reader, &value, errstr, sizeof(errstr)) ==
                          0,
                      "decode: %s", errstr);
        json_t *j = avk_json_from_avro(reader, &value, errstr, sizeof(errstr));
        ck_assert_msg(j != NULL, "%s", errstr);
        avro_value_decref(&value);
        return j;
}

static void assert_json_equal(const json_t *expected, const json_t *actual, const char *what)
{
        if (json_equal(expected, actual))
                return;
        char *e = json_dumps(expected, JSON_SORT_KEYS | JSON_COMPACT);
        char *a = json_dumps(actual, JSON_SORT_KEYS | JSON_COMPACT);
        char diff[8192];
        snprintf(diff, sizeof(diff), "expected %s\n  actual %s", e, a);
        free(e);
        free(a);
        ck_abort_msg("%s: JSON differs\n%s", what, diff);
}

static int symbol_index(const avk_schema_t *schema, const char *field, const char *symbol)
{
        avro_schema_t record = avk_schema_avro(schema);
        avro_schema_t e = avro_schema_record_field_get(record, field);
        ck_assert_msg(e != NULL && is_avro_enum(e), "%s is not an enum", field);
        return avro_schema_enum_get_by_name(e, symbol);
}

/* v1 data, written by writer, read as v2 by reader: defaults filled, symbols
 * by name. Categories: one before the inserted symbol, and OTHER after it. */
static void v1_data_reads_as_v2(avk_codec_t *writer, const avk_schema_t *older, avk_codec_t *reader,
                                const avk_schema_t *newer)
{
        static const char *const categories[] = {"DISCHARGE_PLANNING", "OTHER"};
        for (size_t i = 0; i < sample_cnt; i++) {
                for (size_t c = 0; c < 2; c++) {
                        json_t *doc = v1_doc(i, categories[c]);
                        size_t len;
                        unsigned char *msg = encode(writer, older, doc, &len);
                        json_t *read = decode(reader, msg, len, newer);

                        json_t *expected = json_deep_copy(doc);
                        json_object_set_new(expected, "follow_up_requested", json_false());
                        json_object_set_new(expected, "follow_up_contact", json_null());
                        char what[600];
                        snprintf(what, sizeof(what), "%s, category %s", sample_paths[i],
                                 categories[c]);
                        assert_json_equal(expected, read, what);
                        ck_assert_str_eq(json_string_value(json_object_get(read, "category")),
                                         categories[c]);

                        json_decref(expected);
                        json_decref(read);
                        json_decref(doc);
                        free(msg);
                }
        }
}

/* v2 data read as v1: new fields dropped, TRANSPORT to the default OTHER,
 * symbols on either side of it by name. */
static void v2_data_reads_as_v1(avk_codec_t *writer, const avk_schema_t *newer, avk_codec_t *reader,
                                const avk_schema_t *older)
{
        static const struct {
                const char *written, *read;
        } categories[] = {{"TRANSPORT", "OTHER"},
                          {"OTHER", "OTHER"},
                          {"SIP", "SIP"},
                          {"MEDICATION", "MEDICATION"}};
        for (size_t i = 0; i < sample_cnt; i++) {
                for (size_t c = 0; c < sizeof(categories) / sizeof(categories[0]); c++) {
                        json_t *doc = v2_doc(i, categories[c].written);
                        size_t len;
                        unsigned char *msg = encode(writer, newer, doc, &len);
                        json_t *read = decode(reader, msg, len, older);

                        json_t *expected = v1_doc(i, categories[c].read);
                        char what[600];
                        snprintf(what, sizeof(what), "%s, category %s", sample_paths[i],
                                 categories[c].written);
                        assert_json_equal(expected, read, what);
                        ck_assert_ptr_null(json_object_get(read, "follow_up_requested"));
                        ck_assert_ptr_null(json_object_get(read, "follow_up_contact"));

                        json_decref(expected);
                        json_decref(read);
                        json_decref(doc);
                        free(msg);
                }
        }
}

/* ---- tests ---- */

START_TEST(test_v2_fixture_moves_other_and_keeps_the_name)
{
        /* The premise of the tests below: same record, other fingerprint, and OTHER at
         * another position - where avro-c's by-position resolution goes wrong. */
        ck_assert_str_eq(avk_schema_fullname(v1), avk_schema_fullname(v2));
        ck_assert_uint_ne(avk_schema_fingerprint(v1), avk_schema_fingerprint(v2));
        ck_assert_int_eq(symbol_index(v1, "category", "OTHER"), 11);
        ck_assert_int_eq(symbol_index(v2, "category", "OTHER"), 12);
        ck_assert_int_eq(symbol_index(v2, "category", "TRANSPORT"), 11);
        ck_assert_int_lt(symbol_index(v1, "category", "TRANSPORT"), 0);
        ck_assert_int_eq(
            avro_schema_record_field_get_index(avk_schema_avro(v1), "follow_up_requested"), -1);
        ck_assert_int_ge(
            avro_schema_record_field_get_index(avk_schema_avro(v2), "follow_up_requested"), 0);
}
END_TEST

START_TEST(test_v1_data_read_as_v2_gets_defaults_and_symbols_by_name)
{
        avk_codec_t *writer = codec_with(both, NULL);
        avk_codec_t *reader = codec_with(both, NULL);
        v1_data_reads_as_v2(writer, v1, reader, v2);
        avk_codec_destroy(reader);
        avk_codec_destroy(writer);
}
END_TEST

START_TEST(test_v2_data_read_as_v1_drops_new_fields_and_maps_new_symbol_to_default)
{
        avk_codec_t *writer = codec_with(both, NULL);
        avk_codec_t *reader = codec_with(both, NULL);
        v2_data_reads_as_v1(writer, v2, reader, v1);
        avk_codec_destroy(reader);
        avk_codec_destroy(writer);
}
END_TEST

START_TEST(test_v2_single_object_data_is_unknown_to_a_v1_only_reader)
{
        /* Without a registry a reader knows only its catalog: v2's fingerprint is news. */
        avk_codec_t *writer = codec_with(both, NULL);
        avk_codec_t *reader = codec_with(builtin, NULL);
        json_t *doc = v2_doc(0, "TRANSPORT");
        size_t len;
        unsigned char *msg = encode(writer, v2, doc, &len);
        avro_value_t value;
        char errstr[512] = "";
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(v1), &value), 0);
        ck_assert_int_eq(avk_codec_decode(reader, msg, len, v1, &value, errstr, sizeof(errstr)),
                         -1);
        ck_assert_contains(errstr, "unknown schema fingerprint");
        avro_value_decref(&value);
        free(msg);
        json_decref(doc);
        avk_codec_destroy(reader);
        avk_codec_destroy(writer);
}
END_TEST

START_TEST(test_v1_confluent_data_read_as_v2_gets_defaults_and_symbols_by_name)
{
        avk_registry_t *writer_reg = registry(), *reader_reg = registry();
        avk_codec_t *writer = codec_with(builtin, writer_reg);
        const avk_schema_t *builtin_v1 = avk_catalog_by_name(builtin, "DeviationReported");
        /* The v2 program's catalog holds v2 alone, so the writer's v1 can only come
         * from the registry. */
        char errstr[512] = "";
        avk_catalog_t *v2_only = avk_catalog_new();
        ck_assert_ptr_nonnull(v2_only);
        avk_schema_t *own_v2 = avk_schema_new(avk_schema_text(v2), errstr, sizeof(errstr));
        ck_assert_msg(own_v2 != NULL, "%s", errstr);
        ck_assert_msg(avk_catalog_add(v2_only, own_v2, errstr, sizeof(errstr)) == 0, "%s", errstr);
        avk_codec_t *reader = codec_with(v2_only, reader_reg);

        v1_data_reads_as_v2(writer, builtin_v1, reader, own_v2);

        ck_assert_int_eq(fake_registry_registrations(fake, SUBJECT), 1);
        ck_assert_int_eq(fake_registry_seen(fake).fetches, 1);

        avk_codec_destroy(reader);
        avk_codec_destroy(writer);
        avk_catalog_destroy(v2_only);
        avk_registry_destroy(reader_reg);
        avk_registry_destroy(writer_reg);
}
END_TEST

START_TEST(test_v2_confluent_data_read_as_v1_learns_v2_from_the_registry)
{
        avk_registry_t *writer_reg = registry(), *reader_reg = registry();
        avk_codec_t *writer = codec_with(both, writer_reg);
        /* A v1 program: its catalog has never seen v2. */
        avk_codec_t *reader = codec_with(builtin, reader_reg);
        const avk_schema_t *builtin_v1 = avk_catalog_by_name(builtin, "DeviationReported");

        v2_data_reads_as_v1(writer, v2, reader, builtin_v1);

        /* v2 went to the registry once under the topic's subject, and the reader
         * fetched it once by id. */
        ck_assert_int_eq(fake_registry_registrations(fake, SUBJECT), 1);
        struct fake_registry_seen seen = fake_registry_seen(fake);
        ck_assert_int_eq(seen.fetches, 1);
        char *registered = fake_registry_schema(fake, FAKE_REGISTRY_FIRST_ID);
        ck_assert_ptr_nonnull(registered);
        ck_assert_str_eq(registered, avk_schema_text(v2));
        free(registered);

        avk_codec_destroy(reader);
        avk_codec_destroy(writer);
        avk_registry_destroy(reader_reg);
        avk_registry_destroy(writer_reg);
}
END_TEST

START_TEST(test_both_versions_under_one_subject_get_their_own_ids)
{
        avk_registry_t *writer_reg = registry(), *reader_reg = registry();
        avk_codec_t *writer = codec_with(both, writer_reg);
        avk_codec_t *reader = codec_with(builtin, reader_reg);
        const avk_schema_t *builtin_v1 = avk_catalog_by_name(builtin, "DeviationReported");
        json_t *old_doc = v1_doc(0, "OTHER"), *new_doc = v2_doc(0, "TRANSPORT");
        size_t old_len, new_len;
        unsigned char *old_msg = encode(writer, v1, old_doc, &old_len);
        unsigned char *new_msg = encode(writer, v2, new_doc, &new_len);

        ck_assert_int_eq(fake_registry_registrations(fake, SUBJECT), 2);
        ck_assert_uint_eq(old_msg[0], 0x00);
        ck_assert_uint_eq(new_msg[0], 0x00);
        ck_assert_mem_ne(old_msg + 1, new_msg + 1, 4);

        /* One v1 reader reads both, interleaved, as they arrive on one topic. */
        for (int round = 0; round < 2; round++) {
                json_t *a = decode(reader, old_msg, old_len, builtin_v1);
                json_t *b = decode(reader, new_msg, new_len, builtin_v1);
                ck_assert_str_eq(json_string_value(json_object_get(a, "category")), "OTHER");
                ck_assert_str_eq(json_string_value(json_object_get(b, "category")), "OTHER");
                ck_assert_ptr_null(json_object_get(b, "follow_up_requested"));
                json_decref(a);
                json_decref(b);
        }
        ck_assert_int_eq(fake_registry_seen(fake).fetches, 2);

        free(old_msg);
        free(new_msg);
        json_decref(old_doc);
        json_decref(new_doc);
        avk_codec_destroy(reader);
        avk_codec_destroy(writer);
        avk_registry_destroy(reader_reg);
        avk_registry_destroy(writer_reg);
}
END_TEST

static Suite *evolution_suite(void)
{
        Suite *suite = suite_create("evolution");

        TCase *single_object = tcase_create("single_object");
        tcase_add_checked_fixture(single_object, setup, teardown);
        tcase_add_test(single_object, test_v2_fixture_moves_other_and_keeps_the_name);
        tcase_add_test(single_object, test_v1_data_read_as_v2_gets_defaults_and_symbols_by_name);
        tcase_add_test(single_object,
                       test_v2_data_read_as_v1_drops_new_fields_and_maps_new_symbol_to_default);
        tcase_add_test(single_object, test_v2_single_object_data_is_unknown_to_a_v1_only_reader);
        suite_add_tcase(suite, single_object);

        TCase *confluent = tcase_create("confluent");
        tcase_add_checked_fixture(confluent, setup_with_fake, teardown_with_fake);
        tcase_add_test(confluent,
                       test_v1_confluent_data_read_as_v2_gets_defaults_and_symbols_by_name);
        tcase_add_test(confluent, test_v2_confluent_data_read_as_v1_learns_v2_from_the_registry);
        tcase_add_test(confluent, test_both_versions_under_one_subject_get_their_own_ids);
        suite_add_tcase(suite, confluent);

        return suite;
}

int main(void)
{
        SRunner *runner = srunner_create(evolution_suite());
        srunner_run_all(runner, CK_NORMAL);
        int failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
