/*
 * Schema evolution through avk_codec: DeviationReported v1 (schemas/) and the
 * test fixture v2 (tests/data/deviation_reported_v2.avsc), which adds a
 * boolean with a default (follow_up_requested, in the middle of the record),
 * a nullable string (follow_up_contact, at the end), and TRANSPORT to the
 * Category enum just before OTHER - so OTHER moves from position 11 to 12.
 *
 * avro-c 1.11.1 resolves enums by position and does not fill reader defaults
 * (docs/architecture.md, "Known pitfalls"); these tests show that the codec's projection
 * does both by name: a v2 reader of v1 data gets the defaults and OTHER stays
 * OTHER; a v1 reader of v2 data drops the new fields, reads TRANSPORT as the
 * enum's default OTHER and OTHER as OTHER. Once in single-object framing (the
 * reader's catalog knows both versions), once in Confluent framing (the
 * reader's catalog knows only its own version and learns the writer's from
 * the fake Schema Registry by id).
 */
#include "common/contract/codec.h"

#include <avro.h>
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/registry.h"
#include "common/contract/schema.h"
#include "common/contract/slotfield.h"
#include "tests/support/check_text.h"
#include "tests/support/codec_fixture.h"
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

/* A schema parsed from text and added to catalog, which owns it; what names it in failures. */
static const avk_schema_t *add_schema(avk_catalog_t *catalog, const char *text, const char *what)
{
        char errstr[512] = "";
        avk_schema_t *schema = avk_schema_new(text, errstr, sizeof(errstr));
        ck_assert_msg(schema != NULL, "%s: %s", what, errstr);
        ck_assert_msg(avk_catalog_add(catalog, schema, errstr, sizeof(errstr)) == 0, "%s", errstr);
        return schema;
}

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
        both = avk_catalog_new();
        ck_assert_ptr_nonnull(both);
        v1 = add_schema(both, avk_schema_text(builtin_v1), "v1");
        v2 = add_schema(both, v2_text, "v2");
        free(v2_text);

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

static void fake_start(void)
{
        fake = fake_registry_start_or_fail();
}

static void fake_stop(void)
{
        fake_registry_stop(fake);
        fake = NULL;
}

/* ---- helpers ---- */

/* Sample i as a v1 document with the given category. */
static json_t *v1_doc(size_t i, const char *category)
{
        json_t *j = codec_fixture_load_json(sample_paths[i]);
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

/* doc, written by pair's writer as written_as and read by its reader as
 * read_as: the JSON the reader gets. */
static json_t *write_and_read(const struct codec_pair *pair, const avk_schema_t *written_as,
                              const json_t *doc, const avk_schema_t *read_as)
{
        struct codec_message m = codec_fixture_encode(pair->writer, TOPIC, written_as, doc);
        json_t *read = codec_fixture_decode_json(pair->reader, m.bytes, m.len, read_as);
        free(m.bytes);
        return read;
}

/* read must equal expected; a difference names sample i and the category written. */
static void assert_read_as(const json_t *expected, const json_t *read, size_t i,
                           const char *category)
{
        char what[600];
        snprintf(what, sizeof(what), "%s, category %s", sample_paths[i], category);
        assert_json_equal(expected, read, what);
}

static int symbol_index(const avk_schema_t *schema, const char *field, const char *symbol)
{
        avro_schema_t record = avk_schema_avro(schema);
        avro_schema_t e = avro_schema_record_field_get(record, field);
        ck_assert_msg(e != NULL && is_avro_enum(e), "%s is not an enum", field);
        return avro_schema_enum_get_by_name(e, symbol);
}

/* v1 data, written by pair's writer, read as v2 by its reader: defaults
 * filled, symbols by name. Categories: one before the inserted symbol, and
 * OTHER after it. */
static void v1_data_reads_as_v2(const struct codec_pair *pair, const avk_schema_t *older,
                                const avk_schema_t *newer)
{
        static const char *const categories[] = {"DISCHARGE_PLANNING", "OTHER"};
        for (size_t i = 0; i < sample_cnt; i++) {
                for (size_t c = 0; c < 2; c++) {
                        json_t *doc = v1_doc(i, categories[c]);
                        json_t *read = write_and_read(pair, older, doc, newer);

                        json_t *expected = json_deep_copy(doc);
                        json_object_set_new(expected, "follow_up_requested", json_false());
                        json_object_set_new(expected, "follow_up_contact", json_null());
                        assert_read_as(expected, read, i, categories[c]);
                        ck_assert_str_eq(json_string_value(json_object_get(read, "category")),
                                         categories[c]);

                        json_decref(expected);
                        json_decref(read);
                        json_decref(doc);
                }
        }
}

/* v2 data read as v1: new fields dropped, TRANSPORT to the default OTHER,
 * symbols on either side of it by name. */
static void v2_data_reads_as_v1(const struct codec_pair *pair, const avk_schema_t *newer,
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
                        json_t *read = write_and_read(pair, newer, doc, older);

                        json_t *expected = v1_doc(i, categories[c].read);
                        assert_read_as(expected, read, i, categories[c].written);
                        ck_assert_ptr_null(json_object_get(read, "follow_up_requested"));
                        ck_assert_ptr_null(json_object_get(read, "follow_up_contact"));

                        json_decref(expected);
                        json_decref(read);
                        json_decref(doc);
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
        struct codec_pair pair = codec_fixture_pair(both, both, NULL);
        v1_data_reads_as_v2(&pair, v1, v2);
        codec_fixture_pair_destroy(&pair);
}
END_TEST

START_TEST(test_v2_data_read_as_v1_drops_new_fields_and_maps_new_symbol_to_default)
{
        struct codec_pair pair = codec_fixture_pair(both, both, NULL);
        v2_data_reads_as_v1(&pair, v2, v1);
        codec_fixture_pair_destroy(&pair);
}
END_TEST

START_TEST(test_v2_single_object_data_is_unknown_to_a_v1_only_reader)
{
        /* Without a registry a reader knows only its catalog: v2's fingerprint is news. */
        struct codec_pair pair = codec_fixture_pair(both, builtin, NULL);
        json_t *doc = v2_doc(0, "TRANSPORT");
        struct codec_message m = codec_fixture_encode(pair.writer, TOPIC, v2, doc);
        char errstr[512] = "";
        ck_assert_int_eq(
            codec_fixture_decode(pair.reader, m.bytes, m.len, v1, NULL, errstr, sizeof(errstr)),
            -1);
        ck_assert_contains(errstr, "unknown schema fingerprint");
        free(m.bytes);
        json_decref(doc);
        codec_fixture_pair_destroy(&pair);
}
END_TEST

START_TEST(test_v1_confluent_data_read_as_v2_gets_defaults_and_symbols_by_name)
{
        const avk_schema_t *builtin_v1 = avk_catalog_by_name(builtin, "DeviationReported");
        /* The v2 program's catalog holds v2 alone, so the writer's v1 can only come
         * from the registry. */
        avk_catalog_t *v2_only = avk_catalog_new();
        ck_assert_ptr_nonnull(v2_only);
        const avk_schema_t *own_v2 = add_schema(v2_only, avk_schema_text(v2), "v2");
        struct codec_pair pair = codec_fixture_pair(builtin, v2_only, fake_registry_url(fake));

        v1_data_reads_as_v2(&pair, builtin_v1, own_v2);

        ck_assert_int_eq(fake_registry_registrations(fake, SUBJECT), 1);
        ck_assert_int_eq(fake_registry_seen(fake).fetches, 1);

        codec_fixture_pair_destroy(&pair);
        avk_catalog_destroy(v2_only);
}
END_TEST

START_TEST(test_v2_confluent_data_read_as_v1_learns_v2_from_the_registry)
{
        /* The reader is a v1 program: its catalog has never seen v2. */
        struct codec_pair pair = codec_fixture_pair(both, builtin, fake_registry_url(fake));
        const avk_schema_t *builtin_v1 = avk_catalog_by_name(builtin, "DeviationReported");

        v2_data_reads_as_v1(&pair, v2, builtin_v1);

        /* v2 went to the registry once under the topic's subject, and the reader
         * fetched it once by id. */
        ck_assert_int_eq(fake_registry_registrations(fake, SUBJECT), 1);
        struct fake_registry_seen seen = fake_registry_seen(fake);
        ck_assert_int_eq(seen.fetches, 1);
        char *registered = fake_registry_schema(fake, FAKE_REGISTRY_FIRST_ID);
        ck_assert_ptr_nonnull(registered);
        ck_assert_str_eq(registered, avk_schema_text(v2));
        free(registered);

        codec_fixture_pair_destroy(&pair);
}
END_TEST

START_TEST(test_both_versions_under_one_subject_get_their_own_ids)
{
        struct codec_pair pair = codec_fixture_pair(both, builtin, fake_registry_url(fake));
        const avk_schema_t *builtin_v1 = avk_catalog_by_name(builtin, "DeviationReported");
        json_t *old_doc = v1_doc(0, "OTHER"), *new_doc = v2_doc(0, "TRANSPORT");
        struct codec_message old_msg = codec_fixture_encode(pair.writer, TOPIC, v1, old_doc);
        struct codec_message new_msg = codec_fixture_encode(pair.writer, TOPIC, v2, new_doc);

        ck_assert_int_eq(fake_registry_registrations(fake, SUBJECT), 2);
        ck_assert_uint_eq(old_msg.bytes[0], 0x00);
        ck_assert_uint_eq(new_msg.bytes[0], 0x00);
        ck_assert_mem_ne(old_msg.bytes + 1, new_msg.bytes + 1, 4);

        /* One v1 reader reads both, interleaved, as they arrive on one topic. */
        for (int round = 0; round < 2; round++) {
                json_t *a =
                    codec_fixture_decode_json(pair.reader, old_msg.bytes, old_msg.len, builtin_v1);
                json_t *b =
                    codec_fixture_decode_json(pair.reader, new_msg.bytes, new_msg.len, builtin_v1);
                ck_assert_str_eq(json_string_value(json_object_get(a, "category")), "OTHER");
                ck_assert_str_eq(json_string_value(json_object_get(b, "category")), "OTHER");
                ck_assert_ptr_null(json_object_get(b, "follow_up_requested"));
                json_decref(a);
                json_decref(b);
        }
        ck_assert_int_eq(fake_registry_seen(fake).fetches, 2);

        free(old_msg.bytes);
        free(new_msg.bytes);
        json_decref(old_doc);
        json_decref(new_doc);
        codec_fixture_pair_destroy(&pair);
}
END_TEST

START_TEST(test_every_truncation_of_v1_data_read_as_v2_fails_cleanly)
{
        /* Read across versions, the body is checked as it is read: each cut
         * is refused, in a buffer of its own size so ASan sees any overread. */
        struct codec_pair pair = codec_fixture_pair(both, both, NULL);
        json_t *doc = v1_doc(0, "OTHER");
        struct codec_message m = codec_fixture_encode(pair.writer, TOPIC, v1, doc);
        for (size_t cut = 10; cut < m.len; cut++) {
                unsigned char *prefix = malloc(cut);
                memcpy(prefix, m.bytes, cut);
                char errstr[512] = "";
                ck_assert_int_eq(codec_fixture_decode(pair.reader, prefix, cut, v2, NULL, errstr,
                                                      sizeof(errstr)),
                                 -1);
                ck_assert_contains(errstr, "truncated");
                free(prefix);
        }
        free(m.bytes);
        json_decref(doc);
        codec_fixture_pair_destroy(&pair);
}
END_TEST

/* v1 with a field the compiled reader does not take (an array, default []). */
static const avk_schema_t *add_v3_with_tags(avk_catalog_t *catalog)
{
        json_error_t jerr;
        json_t *j = json_loads(avk_schema_text(v1), 0, &jerr);
        ck_assert_ptr_nonnull(j);
        json_array_append_new(json_object_get(j, "fields"),
                              json_pack("{s:s,s:{s:s,s:s},s:[]}", "name", "tags", "type", "type",
                                        "array", "items", "string", "default"));
        char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        const avk_schema_t *v3 = add_schema(catalog, text, "v3");
        free(text);
        json_decref(j);
        return v3;
}

START_TEST(test_versions_with_an_array_are_read_through_the_json_projection)
{
        const avk_schema_t *v3 = add_v3_with_tags(both);
        struct codec_pair pair = codec_fixture_pair(both, both, NULL);
        json_t *doc = v1_doc(0, "OTHER");
        json_t *tagged = json_deep_copy(doc);
        json_object_set_new(tagged, "tags", json_pack("[s,s]", "a", "b"));

        json_t *read = write_and_read(&pair, v3, tagged, v1); /* tags dropped */
        assert_read_as(doc, read, 0, "OTHER");
        json_decref(read);
        json_object_set_new(tagged, "tags", json_array()); /* the default */
        read = write_and_read(&pair, v1, doc, v3);
        assert_read_as(tagged, read, 0, "OTHER");
        json_decref(read);

        json_decref(tagged);
        json_decref(doc);
        codec_fixture_pair_destroy(&pair);
}
END_TEST

/* doc written as written_as, read into read_as's slots: field's text there
 * must be want (NULL: null). */
static void assert_slot_text(const struct codec_pair *pair, const avk_schema_t *written_as,
                             const json_t *doc, const avk_schema_t *read_as, const char *field,
                             const char *want)
{
        char errstr[512] = "", text[8192];
        avk_slotfield_t f;
        const avk_avroprog_slot_t *slots;
        const avk_avroprog_t *prog = avk_codec_program(pair->reader, read_as);
        ck_assert_ptr_nonnull(prog);
        ck_assert_msg(avk_slotfield_find(&f, prog, read_as, field, errstr, sizeof(errstr)) == 0,
                      "%s", errstr);
        struct codec_message m = codec_fixture_encode(pair->writer, TOPIC, written_as, doc);
        ck_assert_msg(avk_codec_decode_slots(pair->reader, m.bytes, m.len, read_as, &slots, errstr,
                                             sizeof(errstr)) == 0,
                      "%s", errstr);
        const char *got = avk_slotfield_copy(&f, slots, text, sizeof(text));
        if (want)
                ck_assert_str_eq(got, want);
        else
                ck_assert_ptr_null(got);
        free(m.bytes);
}

/* The services' slots (avk_codec_decode_slots) read every version as the
 * reader's, like avk_codec_decode: the same version, a compiled pair (v1 as
 * v2: defaults, symbols by name) and a pair read through the projection (v3's
 * array). */
/* A named type used again after its definition is a link in avro-c:
 * DeviationStatus's pending_step, ["null", "EscalationStep"], is set and read
 * as that enum. */
START_TEST(test_slots_read_a_named_type_used_again)
{
        char errstr[512] = "";
        const avk_schema_t *status = avk_catalog_by_name(builtin, "DeviationStatus");
        ck_assert_ptr_nonnull(status);
        avk_avroprog_t *prog = avk_avroprog_new(status, errstr, sizeof(errstr));
        ck_assert_msg(prog != NULL, "%s", errstr);
        avk_slotfield_t pending;
        ck_assert_msg(
            avk_slotfield_find(&pending, prog, status, "pending_step", errstr, sizeof(errstr)) == 0,
            "%s", errstr);
        avk_avroprog_slot_t *slots = calloc(avk_avroprog_slot_count(prog), sizeof(*slots));
        size_t len = 0;
        ck_assert_int_eq(avk_slotfield_set_text(&pending, slots, "LOCAL_FORUM"), 0);
        ck_assert_int_eq(avk_slotfield_is_null(&pending, slots), 0);
        ck_assert_str_eq(avk_slotfield_text(&pending, slots, &len), "LOCAL_FORUM");
        ck_assert_int_eq(avk_slotfield_set_text(&pending, slots, "NO_SUCH_STEP"), -1);
        ck_assert_int_eq(avk_slotfield_set_text(&pending, slots, NULL), 0);
        ck_assert_int_eq(avk_slotfield_is_null(&pending, slots), 1);
        ck_assert_ptr_null(avk_slotfield_text(&pending, slots, &len));
        free(slots);
        avk_avroprog_destroy(prog);
}
END_TEST

START_TEST(test_slots_read_every_version_as_the_reader)
{
        const avk_schema_t *v3 = add_v3_with_tags(both);
        struct codec_pair pair = codec_fixture_pair(both, both, NULL);
        json_t *doc = v1_doc(0, "OTHER");
        assert_slot_text(&pair, v1, doc, v1, "category", "OTHER");
        assert_slot_text(&pair, v1, doc, v2, "category", "OTHER");
        assert_slot_text(&pair, v1, doc, v2, "follow_up_contact", NULL); /* the default */
        json_object_set_new(doc, "tags", json_pack("[s]", "a"));
        assert_slot_text(&pair, v3, doc, v1, "description",
                         json_string_value(json_object_get(doc, "description")));
        assert_slot_text(
            &pair, v3, doc, v1, "reporter.party",
            json_string_value(json_object_get(json_object_get(doc, "reporter"), "party")));
        json_decref(doc);
        codec_fixture_pair_destroy(&pair);
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
        tcase_add_test(single_object, test_every_truncation_of_v1_data_read_as_v2_fails_cleanly);
        tcase_add_test(single_object,
                       test_versions_with_an_array_are_read_through_the_json_projection);
        tcase_add_test(single_object, test_slots_read_every_version_as_the_reader);
        tcase_add_test(single_object, test_slots_read_a_named_type_used_again);
        suite_add_tcase(suite, single_object);

        TCase *confluent = tcase_create("confluent");
        tcase_add_checked_fixture(confluent, setup, teardown);
        tcase_add_checked_fixture(confluent, fake_start, fake_stop);
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
