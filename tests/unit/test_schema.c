/*
 * Schema module: Parsing Canonical Form and CRC-64-AVRO fingerprints against
 * the vectors the Avro specification publishes (share/test/data/
 * schema-tests.txt in the Avro source tree), and the built-in catalog.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/schema.h"

struct vector {
        const char *input;
        const char *canonical;
        int64_t fingerprint; /* signed, as the specification prints it; 0 = not given */
};

static const struct vector vectors[] = {
    {"\"null\"", "\"null\"", 7195948357588979594LL},
    {"{\"type\":\"null\"}", "\"null\"", 0},
    {"\"boolean\"", "\"boolean\"", -6970731678124411036LL},
    {"{\"type\":\"boolean\"}", "\"boolean\"", 0},
    {"\"int\"", "\"int\"", 8247732601305521295LL},
    {"{\"type\":\"int\"}", "\"int\"", 0},
    {"\"long\"", "\"long\"", -3434872931120570953LL},
    {"{\"type\":\"long\"}", "\"long\"", 0},
    {"\"float\"", "\"float\"", 5583340709985441680LL},
    {"{\"type\":\"float\"}", "\"float\"", 0},
    {"\"double\"", "\"double\"", -8181574048448539266LL},
    {"{\"type\":\"double\"}", "\"double\"", 0},
    {"\"bytes\"", "\"bytes\"", 5746618253357095269LL},
    {"{\"type\":\"bytes\"}", "\"bytes\"", 0},
    {"\"string\"", "\"string\"", -8142146995180207161LL},
    {"{\"type\":\"string\"}", "\"string\"", 0},
    {"[  ]", "[]", -1241056759729112623LL},
    {"[ \"int\"  ]", "[\"int\"]", -5232228896498058493LL},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]", 5392556393470105090LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}", 5916914534497305771LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}", -4616218487480524110LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"Useful info\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"foo\", "
     "\"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], \"type\":\"record\", "
     "\"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"}]}",
     7843277075252814651LL},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", "
     "\"default\":\"true\"},\n{\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\","
     "\"type\":\"int\"}],\n \"type\":\"record\", \"name\":\"foo\"\n}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"},"
     "{\"name\":\"f2\",\"type\":\"int\"}]}",
     -4860222112080293046LL},
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
     "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}", -6342190197741309591LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}",
     -4448647247586288245LL},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", 1756455273707447556LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", -3064184465700546786LL},
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
     "{\"type\":\"array\",\"items\":\"null\"}", -589620603366471059LL},
    {"{ \"values\":\"string\", \"type\":\"map\"}", "{\"type\":\"map\",\"values\":\"string\"}",
     -8732877298790414990LL},
    {"{\"name\":\"PigValue\",\"type\":\"record\",\n \"fields\":[{\"name\":\"value\", "
     "\"type\":[\"null\", \"int\", \"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\",\"type\":"
     "[\"null\",\"int\",\"long\",\"PigValue\"]}]}",
     -1759257747318642341LL},
};

START_TEST(canonical_form_matches_specification_vectors)
{
        const struct vector *v = &vectors[_i];
        char err[256] = "";
        json_error_t jerr;
        json_t *j = json_loads(v->input, JSON_DECODE_ANY, &jerr);
        ck_assert_msg(j != NULL, "vector %d is not JSON: %s", _i, jerr.text);
        char *form = avk_schema_canonical_form(j, err, sizeof(err));
        ck_assert_msg(form != NULL, "vector %d: %s", _i, err);
        ck_assert_str_eq(form, v->canonical);
        if (v->fingerprint != 0)
                ck_assert_int_eq((int64_t)avk_fingerprint64(form, strlen(form)), v->fingerprint);
        free(form);
        json_decref(j);
}
END_TEST

START_TEST(canonical_form_qualifies_nested_names_and_drops_attributes)
{
        char err[256] = "";
        avk_schema_t *s = avk_schema_new(
            "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\",\"doc\":\"d\",\"fields\":["
            "{\"name\":\"e\",\"avk.format\":\"party\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
            "\"symbols\":[\"A\"],\"default\":\"A\"}},"
            "{\"name\":\"again\",\"type\":\"E\"},"
            "{\"name\":\"t\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}}]}",
            err, sizeof(err));
        ck_assert_msg(s != NULL, "%s", err);
        ck_assert_str_eq(avk_schema_canonical(s),
                         "{\"name\":\"n.R\",\"type\":\"record\",\"fields\":["
                         "{\"name\":\"e\",\"type\":{\"name\":\"n.E\",\"type\":\"enum\","
                         "\"symbols\":[\"A\"]}},{\"name\":\"again\",\"type\":\"n.E\"},"
                         "{\"name\":\"t\",\"type\":\"long\"}]}");
        ck_assert_str_eq(avk_schema_fullname(s), "n.R");
        ck_assert_ptr_nonnull(avk_schema_named(s, "n.E"));
        ck_assert_ptr_null(avk_schema_named(s, "E"));
        avk_schema_destroy(s);
}
END_TEST

START_TEST(bad_schema_text_is_rejected_with_position)
{
        char err[256] = "";
        ck_assert_ptr_null(avk_schema_new("{\"type\": \"record\", ", err, sizeof(err)));
        ck_assert_msg(strstr(err, "not JSON: line 1") != NULL, "got: %s", err);
        ck_assert_ptr_null(avk_schema_new("{\"type\":\"record\",\"fields\":[]}", err, sizeof(err)));
        ck_assert_msg(strstr(err, "has no \"name\"") != NULL, "got: %s", err);
        ck_assert_ptr_null(avk_schema_new("{\"type\":\"nonsense\"}", err, sizeof(err)));
        ck_assert_msg(strstr(err, "avro:") != NULL, "got: %s", err);
}
END_TEST

START_TEST(builtin_catalog_holds_every_event_type)
{
        char err[256] = "";
        avk_catalog_t *c = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(c != NULL, "%s", err);
        const char *names[] = {"DeviationReported",  "DeviationRouted", "DeviationResponse",
                               "DeviationEscalated", "AnalysisRecord",  "DeliveryFailed"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                const avk_schema_t *s = avk_catalog_by_name(c, names[i]);
                ck_assert_msg(s != NULL, "missing %s", names[i]);
                ck_assert_ptr_eq(avk_catalog_by_fingerprint(c, avk_schema_fingerprint(s)), s);
                ck_assert_ptr_eq(avk_catalog_by_name(c, avk_schema_fullname(s)), s);
        }
        ck_assert_ptr_null(avk_catalog_by_name(c, "Nope"));
        ck_assert_ptr_null(avk_catalog_by_fingerprint(c, 42));
        avk_catalog_destroy(c);
}
END_TEST

/* Walks a schema's JSON and checks the contract's rules: every record field
 * has a doc, every enum a default symbol that is one of its symbols. */
static void check_contract_rules(const json_t *node, const char *file)
{
        if (json_is_array(node)) {
                size_t i;
                const json_t *b;
                json_array_foreach(node, i, b) check_contract_rules(b, file);
                return;
        }
        if (!json_is_object(node))
                return;
        const char *type = json_string_value(json_object_get(node, "type"));
        const char *name = json_string_value(json_object_get(node, "name"));
        if (type && strcmp(type, "enum") == 0) {
                const char *def = json_string_value(json_object_get(node, "default"));
                ck_assert_msg(def != NULL, "%s: enum %s has no default symbol", file, name);
                int found = 0;
                size_t i;
                const json_t *sym;
                json_array_foreach(json_object_get(node, "symbols"), i, sym) found |=
                    strcmp(json_string_value(sym), def) == 0;
                ck_assert_msg(found, "%s: enum %s default %s is not a symbol", file, name, def);
        }
        if (type && strcmp(type, "record") == 0) {
                ck_assert_msg(json_is_string(json_object_get(node, "doc")),
                              "%s: record %s has no doc", file, name);
                size_t i;
                const json_t *f;
                json_array_foreach(json_object_get(node, "fields"), i, f)
                {
                        ck_assert_msg(json_is_string(json_object_get(f, "doc")),
                                      "%s: field %s.%s has no doc", file, name,
                                      json_string_value(json_object_get(f, "name")));
                        check_contract_rules(json_object_get(f, "type"), file);
                }
        }
        if (!json_is_string(json_object_get(node, "type")))
                check_contract_rules(json_object_get(node, "type"), file);
}

START_TEST(every_field_has_a_doc_and_every_enum_a_default)
{
        for (size_t i = 0; i < avk_schema_source_cnt; i++) {
                json_error_t jerr;
                json_t *j = json_loads(avk_schema_sources[i].json, 0, &jerr);
                ck_assert_msg(j != NULL, "%s: %s", avk_schema_sources[i].file, jerr.text);
                check_contract_rules(j, avk_schema_sources[i].file);
                json_decref(j);
        }
}
END_TEST

/* A type shared by several schemas (Category, HarmLevel...) must be defined
 * identically everywhere, or the analysis stream would disagree with intake. */
START_TEST(shared_types_are_identical_across_schemas)
{
        char err[256] = "";
        json_t *seen = json_object();
        int compared = 0;
        for (size_t i = 0; i < avk_schema_source_cnt; i++) {
                avk_schema_t *s = avk_schema_new(avk_schema_sources[i].json, err, sizeof(err));
                ck_assert_msg(s != NULL, "%s", err);
                for (const char **n =
                         (const char *[]){"Category", "HarmLevel", "EventClass", "AgeGroup", "Sex",
                                          "EscalationStep", "GovernanceFlags", NULL};
                     *n; n++) {
                        char full[128];
                        snprintf(full, sizeof(full), "se.vardsamverkan.avvik.%s", *n);
                        const json_t *d = avk_schema_named(s, full);
                        if (!d)
                                continue;
                        char *form = avk_schema_canonical_form(d, err, sizeof(err));
                        const json_t *first = json_object_get(seen, *n);
                        if (first) {
                                ck_assert_msg(strcmp(json_string_value(first), form) == 0,
                                              "%s differs in %s", *n, avk_schema_sources[i].file);
                                compared++;
                        } else {
                                json_object_set_new(seen, *n, json_string(form));
                        }
                        free(form);
                }
                avk_schema_destroy(s);
        }
        ck_assert_int_ge(compared, 7);
        json_decref(seen);
}
END_TEST

static Suite *schema_suite(void)
{
        Suite *s = suite_create("schema");
        TCase *tc = tcase_create("core");
        tcase_add_loop_test(tc, canonical_form_matches_specification_vectors, 0,
                            (int)(sizeof(vectors) / sizeof(vectors[0])));
        tcase_add_test(tc, canonical_form_qualifies_nested_names_and_drops_attributes);
        tcase_add_test(tc, bad_schema_text_is_rejected_with_position);
        tcase_add_test(tc, builtin_catalog_holds_every_event_type);
        tcase_add_test(tc, every_field_has_a_doc_and_every_enum_a_default);
        tcase_add_test(tc, shared_types_are_identical_across_schemas);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(schema_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
