/*
 * The schema history (docs/schema-evolution.md): the built-in catalog finds
 * every released version of a schema by fingerprint, and by name only the
 * current one, which it writes with; avk_schema_reads() says which changes
 * a reader survives, by avro-c's resolution plus the defaults it leaves out.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/schema.h"

/* A record T with the given fields (JSON text), and an enum E inside it. */
static avk_schema_t *record(const char *fields)
{
        char text[2048], err[256] = "";
        snprintf(text, sizeof(text),
                 "{\"type\": \"record\", \"name\": \"T\", \"namespace\": \"x\", "
                 "\"fields\": [%s]}",
                 fields);
        avk_schema_t *s = avk_schema_new(text, err, sizeof(err));
        ck_assert_msg(s != NULL, "%s: %s", text, err);
        return s;
}

#define KIND_ENUM(symbols, dflt)                                                                   \
        "{\"name\": \"kind\", \"type\": {\"type\": \"enum\", \"name\": \"E\", "                    \
        "\"symbols\": " symbols dflt "}}"

/* avk_schema_reads(reader, writer), expecting want; the reason when 0 into reason. */
static void expect_reads(const char *reader_fields, const char *writer_fields, int want,
                         const char *reason)
{
        avk_schema_t *reader = record(reader_fields), *writer = record(writer_fields);
        char err[512] = "";
        int got = avk_schema_reads(reader, writer, err, sizeof(err));
        ck_assert_msg(got == want, "reader [%s] of writer [%s]: %d (%s), want %d", reader_fields,
                      writer_fields, got, err, want);
        if (reason)
                ck_assert_msg(strstr(err, reason) != NULL, "reason '%s', want '%s'", err, reason);
        avk_schema_destroy(reader);
        avk_schema_destroy(writer);
}

#define ID      "{\"name\": \"id\", \"type\": \"string\"}"
#define COUNT   "{\"name\": \"count\", \"type\": \"int\"}"
#define COUNT_D "{\"name\": \"count\", \"type\": \"int\", \"default\": 0}"
#define COUNT_S "{\"name\": \"count\", \"type\": \"string\"}"
#define COUNT_L "{\"name\": \"count\", \"type\": \"long\"}"
#define NOTE_D  "{\"name\": \"note\", \"type\": [\"null\", \"string\"], \"default\": null}"
#define INNER(f)                                                                                   \
        "{\"name\": \"inner\", \"type\": {\"type\": \"record\", \"name\": \"I\", \"fields\": [" f  \
        "]}}"

START_TEST(a_reader_fills_a_field_the_writer_lacks_from_its_default)
{
        expect_reads(ID "," COUNT_D "," NOTE_D, ID, 1, NULL);
        expect_reads(ID "," INNER(ID "," COUNT_D), ID "," INNER(ID), 1, NULL);
}
END_TEST

START_TEST(a_reader_field_without_a_default_the_writer_lacks_is_refused)
{
        expect_reads(ID "," COUNT, ID, 0, "count");
        expect_reads(ID "," INNER(ID "," COUNT), ID "," INNER(ID), 0, "count");
}
END_TEST

START_TEST(a_field_only_the_writer_has_is_skipped)
{
        expect_reads(ID, ID "," COUNT, 1, NULL);
}
END_TEST

START_TEST(a_changed_type_is_refused_unless_avro_promotes_it)
{
        expect_reads(ID "," COUNT_S, ID "," COUNT, 0, "count");
        expect_reads(ID "," COUNT_L, ID "," COUNT, 1, NULL);
        expect_reads(ID "," COUNT, ID "," COUNT_L, 0, "count");
}
END_TEST

START_TEST(a_writer_symbol_needs_the_reader_to_know_it_or_have_a_default)
{
        expect_reads(KIND_ENUM("[\"A\", \"OTHER\"]", ", \"default\": \"OTHER\""),
                     KIND_ENUM("[\"A\", \"B\", \"OTHER\"]", ", \"default\": \"OTHER\""), 1, NULL);
        expect_reads(KIND_ENUM("[\"A\", \"OTHER\"]", ""),
                     KIND_ENUM("[\"A\", \"B\", \"OTHER\"]", ""), 0,
                     "kind: enum E: the writer's symbol B");
        expect_reads(KIND_ENUM("[\"OTHER\", \"B\", \"A\"]", ""), KIND_ENUM("[\"A\", \"B\"]", ""), 1,
                     NULL);
}
END_TEST

START_TEST(a_renamed_record_is_refused)
{
        char err[256] = "";
        avk_schema_t *reader = record(ID);
        avk_schema_t *writer = avk_schema_new(
            "{\"type\": \"record\", \"name\": \"U\", \"namespace\": \"x\", \"fields\": [" ID "]}",
            err, sizeof(err));
        ck_assert_msg(writer != NULL, "%s", err);
        ck_assert_int_eq(avk_schema_reads(reader, writer, err, sizeof(err)), 0);
        avk_schema_destroy(reader);
        avk_schema_destroy(writer);
}
END_TEST

/* The current source of the schema named name (a schemas/ file), or NULL. */
static const struct avk_schema_source *current_source(const char *history_file)
{
        /* "history/NAME/vN" */
        const char *name = history_file + strlen("history/");
        size_t len = (size_t)(strchr(name, '/') - name);
        for (size_t i = 0; i < avk_schema_source_cnt; i++) {
                if (strlen(avk_schema_sources[i].file) == len &&
                    strncmp(avk_schema_sources[i].file, name, len) == 0)
                        return &avk_schema_sources[i];
        }
        return NULL;
}

START_TEST(the_builtin_catalog_reads_every_released_version_and_writes_the_current)
{
        char err[512] = "";
        avk_catalog_t *c = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(c != NULL, "%s", err);
        size_t earlier = 0;
        for (size_t i = 0; i < avk_schema_history_cnt; i++) {
                const char *file = avk_schema_history[i].file;
                avk_schema_t *s = avk_schema_new(avk_schema_history[i].json, err, sizeof(err));
                ck_assert_msg(s != NULL, "%s: %s", file, err);
                const avk_schema_t *found =
                    avk_catalog_by_fingerprint(c, avk_schema_fingerprint(s));
                ck_assert_msg(found != NULL, "%s is not in the catalog", file);
                ck_assert_str_eq(avk_schema_fullname(found), avk_schema_fullname(s));
                const struct avk_schema_source *current = current_source(file);
                ck_assert_msg(current != NULL, "%s has no schema in schemas/", file);
                const avk_schema_t *by_name = avk_catalog_by_name(c, avk_schema_fullname(s));
                ck_assert_ptr_nonnull(by_name);
                ck_assert_str_eq(avk_schema_text(by_name), current->json);
                earlier += strcmp(avk_schema_text(by_name), avk_schema_history[i].json) != 0;
                avk_schema_destroy(s);
        }
        /* AnalysisRecord v1 and v2, DeviationEscalated v1. */
        ck_assert_uint_ge(earlier, 3);
        avk_catalog_destroy(c);
}
END_TEST

START_TEST(an_earlier_version_is_found_by_fingerprint_only)
{
        char err[256] = "";
        avk_catalog_t *c = avk_catalog_new();
        avk_schema_t *v1 = record(ID), *v2 = record(ID "," COUNT_D);
        uint64_t v1_fp = avk_schema_fingerprint(v1);
        ck_assert_int_eq(avk_catalog_add_earlier(c, v1, err, sizeof(err)), 0);
        ck_assert_ptr_null(avk_catalog_by_name(c, "x.T"));
        ck_assert_int_eq(avk_catalog_add(c, v2, err, sizeof(err)), 0);
        ck_assert_ptr_eq(avk_catalog_by_name(c, "T"), v2);
        ck_assert_ptr_eq(avk_catalog_by_fingerprint(c, v1_fp), v1);
        avk_catalog_destroy(c);
}
END_TEST

static Suite *schema_history_suite(void)
{
        Suite *s = suite_create("schema history");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, a_reader_fills_a_field_the_writer_lacks_from_its_default);
        tcase_add_test(tc, a_reader_field_without_a_default_the_writer_lacks_is_refused);
        tcase_add_test(tc, a_field_only_the_writer_has_is_skipped);
        tcase_add_test(tc, a_changed_type_is_refused_unless_avro_promotes_it);
        tcase_add_test(tc, a_writer_symbol_needs_the_reader_to_know_it_or_have_a_default);
        tcase_add_test(tc, a_renamed_record_is_refused);
        tcase_add_test(tc, the_builtin_catalog_reads_every_released_version_and_writes_the_current);
        tcase_add_test(tc, an_earlier_version_is_found_by_fingerprint_only);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(schema_history_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
