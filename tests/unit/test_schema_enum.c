/*
 * The schemas' enums (common/contract/schema_enum.h): an enum's symbols and
 * a symbol's index taken from the compiled-in schemas, and from a schema a
 * caller holds.
 */
#include "common/contract/schema_enum.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/schema.h"

START_TEST(an_enum_is_found_by_its_short_or_full_name)
{
        const struct avk_schema_enum *category = avk_schema_enum("Category");

        ck_assert_ptr_nonnull(category);
        ck_assert_str_eq(category->name, "se.vardsamverkan.avvik.Category");
        ck_assert_ptr_eq(avk_schema_enum("se.vardsamverkan.avvik.Category"), category);
        ck_assert_uint_eq(category->cnt, 12);
        ck_assert_str_eq(category->symbols[0], "INFORMATION_TRANSFER");
        ck_assert_str_eq(category->symbols[11], "OTHER");
        ck_assert_ptr_null(avk_schema_enum("Colour"));
        ck_assert_ptr_null(avk_schema_enum("DeviationRouted"));
}
END_TEST

START_TEST(a_symbols_index_is_its_place_in_the_schema)
{
        const struct avk_schema_enum *harm = avk_schema_enum("HarmLevel");

        ck_assert_ptr_nonnull(harm);
        for (size_t i = 0; i < harm->cnt; i++)
                ck_assert_int_eq(avk_schema_enum_index(harm, harm->symbols[i]), (int)i);
        ck_assert_int_eq(avk_schema_enum_index(harm, "SEVERE"), 3);
        ck_assert_int_eq(avk_schema_enum_index(harm, "severe"), -1);
        ck_assert_int_eq(avk_schema_enum_index(harm, NULL), -1);
}
END_TEST

/* The table holds each enum once: every schema that defines it must agree with it. */
START_TEST(every_schema_defines_each_enum_as_the_table_has_it)
{
        const char *const names[] = {"AgeGroup",
                                     "Agreement",
                                     "CareSetting",
                                     "Category",
                                     "Competence",
                                     "DeadlineKind",
                                     "DeviationLifecycle",
                                     "DeviationState",
                                     "EscalationReason",
                                     "EscalationStep",
                                     "EventClass",
                                     "HarmLevel",
                                     "HomeVisits",
                                     "ReporterRole",
                                     "ResponseKind",
                                     "RoutingDecision",
                                     "Sex",
                                     "Subregion"};
        size_t definitions = 0;
        char errstr[256];

        for (size_t i = 0; i < avk_schema_source_cnt; i++) {
                avk_schema_t *s =
                    avk_schema_new(avk_schema_sources[i].json, errstr, sizeof(errstr));

                ck_assert_msg(s != NULL, "%s", errstr);
                for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
                        const json_t *symbols = avk_schema_enum_symbols(s, names[n]);
                        const struct avk_schema_enum *e = avk_schema_enum(names[n]);

                        ck_assert_msg(e != NULL, "no enum %s", names[n]);
                        if (symbols == NULL)
                                continue;
                        definitions++;
                        ck_assert_uint_eq(json_array_size(symbols), e->cnt);
                        for (size_t k = 0; k < e->cnt; k++)
                                ck_assert_str_eq(json_string_value(json_array_get(symbols, k)),
                                                 e->symbols[k]);
                }
                avk_schema_destroy(s);
        }
        /* Category and HarmLevel alone are defined in four schemas. */
        ck_assert_uint_ge(definitions, sizeof(names) / sizeof(names[0]) + 6);
}
END_TEST

START_TEST(a_schemas_own_enum_is_read_in_its_namespace)
{
        char errstr[256];
        avk_schema_t *s = avk_schema_new(
            "{\"type\": \"record\", \"name\": \"Thing\", \"namespace\": \"t\", \"fields\": ["
            "{\"name\": \"colour\", \"type\": {\"type\": \"enum\", \"name\": \"Colour\", "
            "\"symbols\": [\"RED\", \"GREEN\"]}}]}",
            errstr, sizeof(errstr));
        char name[64];

        ck_assert_msg(s != NULL, "%s", errstr);
        ck_assert_str_eq(avk_schema_enum_name(s, "Colour", name, sizeof(name)), "t.Colour");
        ck_assert_str_eq(avk_schema_enum_name(s, "u.Colour", name, sizeof(name)), "u.Colour");
        ck_assert_uint_eq(json_array_size(avk_schema_enum_symbols(s, "Colour")), 2);
        ck_assert_ptr_eq(avk_schema_enum_symbols(s, "t.Colour"),
                         avk_schema_enum_symbols(s, "Colour"));
        ck_assert_ptr_null(avk_schema_enum_symbols(s, "Thing"));
        ck_assert_ptr_null(avk_schema_enum_symbols(s, "Shape"));
        ck_assert_ptr_null(avk_schema_enum("Colour"));
        avk_schema_destroy(s);
}
END_TEST

static Suite *schema_enum_suite(void)
{
        Suite *s = suite_create("schema_enum");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, an_enum_is_found_by_its_short_or_full_name);
        tcase_add_test(tc, a_symbols_index_is_its_place_in_the_schema);
        tcase_add_test(tc, every_schema_defines_each_enum_as_the_table_has_it);
        tcase_add_test(tc, a_schemas_own_enum_is_read_in_its_namespace);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(schema_enum_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
