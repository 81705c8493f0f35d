/*
 * The rule-table engine on its own (common/contract/ruletable.h): first match
 * in file order over a schema's enums, fixed symbols, parties and flags; a
 * hidden rule refused at load; every problem named with file, rule and field.
 * The routing rules and the deadline policy are tested through their own
 * suites (test_routing_rules, test_deadlines).
 */
#include "common/contract/ruletable.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/check_text.h"
#include "tests/support/test_data.h"

static const char schema_text[] =
    "{\"type\": \"record\", \"name\": \"Thing\", \"namespace\": \"t\", \"fields\": ["
    "{\"name\": \"colour\", \"type\": {\"type\": \"enum\", \"name\": \"Colour\", "
    "\"symbols\": [\"RED\", \"GREEN\", \"BLUE\"]}},"
    "{\"name\": \"size\", \"type\": {\"type\": \"enum\", \"name\": \"Size\", "
    "\"symbols\": [\"SMALL\", \"LARGE\"]}}]}";

enum { C_COLOUR, C_SIZE, C_SIDE, C_PARTY, C_URGENT, C_CNT };

static const char *const sides[] = {"LEFT", "RIGHT", NULL};

static const struct avk_ruletable_condition conditions[C_CNT] = {
    {"colour", AVK_RULETABLE_ENUM, "colour", "Colour", NULL},
    {"size", AVK_RULETABLE_ENUM, "size", "Size", NULL},
    {"side", AVK_RULETABLE_SYMBOLS, "side", NULL, sides},
    {"parties", AVK_RULETABLE_PARTY, NULL, NULL, NULL},
    {"urgent", AVK_RULETABLE_BOOL, NULL, NULL, NULL},
};

static const char *const root_keys[] = {"about", "limit", "rules", NULL};
static const char *const rule_keys[] = {"id", "when", "says", NULL};

/* A table's own terms: what a rule says, and the id the hook was given. */
struct terms {
        const char *id;
        const char *says;
};

struct reader {
        int limit;
        size_t terms_read;
};

static void parse_root(struct avk_jsondoc *doc, json_t *root, void *arg)
{
        struct reader *reader = arg;

        reader->limit = avk_jsondoc_bool(doc, root, "limit", 0);
}

static void parse_terms(struct avk_jsondoc *doc, json_t *rule, const char *id, void *terms,
                        void *arg)
{
        struct terms *t = terms;
        struct reader *reader = arg;

        t->id = id;
        t->says = avk_jsondoc_string(doc, rule, "says", 1);
        reader->terms_read++;
}

static struct avk_ruletable_def narrow = {
    .id_prefix = "T-",
    .subject = "thing",
    .conditions_key = "when",
    .order = AVK_RULETABLE_NARROW,
    .conditions = conditions,
    .condition_cnt = C_CNT,
    .root_keys = root_keys,
    .rule_keys = rule_keys,
    .terms_size = sizeof(struct terms),
    .parse_root = parse_root,
    .parse_terms = parse_terms,
};

static avk_schema_t *schema;
static struct avk_errors errs;
static struct reader reader;
static char dir[200], path[256], joined[8192];

static void setup(void)
{
        char errstr[256];

        schema = avk_schema_new(schema_text, errstr, sizeof(errstr));
        ck_assert_msg(schema != NULL, "%s", errstr);
        ck_assert_ptr_nonnull(test_data_temp_dir("avk-ruletable", dir, sizeof(dir)));
        snprintf(path, sizeof(path), "%s/table.json", dir);
        memset(&reader, 0, sizeof(reader));
}

static void teardown(void)
{
        unlink(path);
        rmdir(dir);
        avk_schema_destroy(schema);
}

/* Writes text to the table file and loads it as def. */
static avk_ruletable_t *load_as(const struct avk_ruletable_def *def, const char *text)
{
        FILE *f = fopen(path, "w");
        avk_ruletable_t *table;

        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
        avk_errors_init(&errs);
        table = avk_ruletable_load(def, path, schema, &reader, &errs);
        avk_errors_join(&errs, joined, sizeof(joined));
        return table;
}

static avk_ruletable_t *load(const char *text)
{
        avk_ruletable_t *table = load_as(&narrow, text);

        ck_assert_msg(table != NULL, "%s", joined);
        return table;
}

static void assert_error(const char *rest)
{
        ck_assert_error_at(&errs, path, rest);
}

/* The id of the first rule matching colour and size, from rule `from`; "none" when none does. */
static const char *first(const avk_ruletable_t *table, const char *colour, const char *size,
                         size_t from)
{
        struct avk_ruletable_query q;
        size_t i;

        avk_ruletable_query_init(&q);
        avk_ruletable_query_set(table, &q, C_COLOUR, colour);
        avk_ruletable_query_set(table, &q, C_SIZE, size);
        i = avk_ruletable_first(table, &q, from);
        return i < avk_ruletable_cnt(table) ? avk_ruletable_id(table, i) : "none";
}

START_TEST(the_first_rule_in_file_order_that_matches_decides)
{
        avk_ruletable_t *t = load("{\"rules\": ["
                                  "{\"id\": \"T-RED-LARGE\", \"when\": {\"colour\": [\"RED\"], "
                                  "\"size\": [\"LARGE\"]}, \"says\": \"a\"},"
                                  "{\"id\": \"T-WARM\", \"when\": {\"colour\": [\"RED\", "
                                  "\"GREEN\"]}, \"says\": \"b\"},"
                                  "{\"id\": \"T-SMALL\", \"when\": {\"size\": [\"SMALL\"]}, "
                                  "\"says\": \"c\"}]}");

        ck_assert_uint_eq(avk_ruletable_cnt(t), 3);
        ck_assert_str_eq(first(t, "RED", "LARGE", 0), "T-RED-LARGE");
        ck_assert_str_eq(first(t, "RED", "SMALL", 0), "T-WARM");
        ck_assert_str_eq(first(t, "BLUE", "SMALL", 0), "T-SMALL");
        ck_assert_str_eq(first(t, "BLUE", "LARGE", 0), "none");
        /* Looking on past a match finds the next rule that matches too. */
        ck_assert_str_eq(first(t, "RED", "LARGE", 1), "T-WARM");
        ck_assert_str_eq(first(t, "RED", "SMALL", 2), "T-SMALL");
        ck_assert(avk_ruletable_names(t, 0, C_SIZE));
        ck_assert(!avk_ruletable_names(t, 1, C_SIZE));
        avk_ruletable_destroy(t);
}
END_TEST

START_TEST(an_unknown_or_missing_value_matches_only_rules_that_leave_it_open)
{
        avk_ruletable_t *t = load("{\"rules\": ["
                                  "{\"id\": \"T-RED\", \"when\": {\"colour\": [\"RED\"]}, "
                                  "\"says\": \"a\"},"
                                  "{\"id\": \"T-LARGE\", \"when\": {\"size\": [\"LARGE\"]}, "
                                  "\"says\": \"b\"}]}");

        ck_assert_str_eq(first(t, "PURPLE", "LARGE", 0), "T-LARGE");
        ck_assert_str_eq(first(t, NULL, "LARGE", 0), "T-LARGE");
        ck_assert_str_eq(first(t, "RED", NULL, 0), "T-RED");
        ck_assert_str_eq(first(t, NULL, NULL, 0), "none");
        avk_ruletable_destroy(t);
}
END_TEST

START_TEST(fixed_symbols_parties_and_flags_are_conditions_too)
{
        avk_ruletable_t *t = load("{\"rules\": ["
                                  "{\"id\": \"T-LEFT-URGENT\", \"when\": {\"side\": [\"LEFT\"], "
                                  "\"urgent\": true}, \"says\": \"a\"},"
                                  "{\"id\": \"T-GOTEBORG\", \"when\": {\"parties\": [\"VGR\", "
                                  "\"1480\"], \"urgent\": false}, \"says\": \"b\"}]}");
        struct avk_ruletable_query q;

        avk_ruletable_query_init(&q);
        avk_ruletable_query_set(t, &q, C_SIDE, "LEFT");
        avk_ruletable_query_set_bool(&q, C_URGENT, 1);
        ck_assert_uint_eq(avk_ruletable_first(t, &q, 0), 0);
        avk_ruletable_query_set_bool(&q, C_URGENT, 0);
        ck_assert_uint_eq(avk_ruletable_first(t, &q, 0), 2);
        avk_ruletable_query_set(t, &q, C_PARTY, "1480");
        ck_assert_uint_eq(avk_ruletable_first(t, &q, 0), 1);
        avk_ruletable_query_set(t, &q, C_PARTY, "1481");
        ck_assert_uint_eq(avk_ruletable_first(t, &q, 0), 2);
        avk_ruletable_query_set(t, &q, C_PARTY, "not a party");
        ck_assert_uint_eq(avk_ruletable_first(t, &q, 0), 2);
        avk_ruletable_destroy(t);
}
END_TEST

START_TEST(the_hooks_read_the_documents_and_rules_own_terms)
{
        avk_ruletable_t *t = load("{\"about\": \"x\", \"limit\": true, \"rules\": ["
                                  "{\"id\": \"T-A\", \"when\": {\"colour\": [\"RED\"]}, "
                                  "\"says\": \"first\"},"
                                  "{\"id\": \"T-B\", \"when\": {\"colour\": [\"BLUE\"]}, "
                                  "\"says\": \"second\"}]}");
        const struct terms *b = avk_ruletable_terms(t, 1);

        ck_assert_int_eq(reader.limit, 1);
        ck_assert_uint_eq(reader.terms_read, 2);
        ck_assert_str_eq(b->id, "T-B");
        ck_assert_str_eq(b->says, "second");
        ck_assert_str_eq(((const struct terms *)avk_ruletable_terms(t, 0))->says, "first");
        avk_ruletable_destroy(t);
}
END_TEST

START_TEST(a_hidden_rule_is_refused_naming_the_rule_that_hides_it)
{
        ck_assert_ptr_null(load_as(&narrow, "{\"rules\": ["
                                            "{\"id\": \"T-WARM\", \"when\": {\"colour\": "
                                            "[\"RED\", \"GREEN\"]}, \"says\": \"a\"},"
                                            "{\"id\": \"T-BLUE\", \"when\": {\"colour\": "
                                            "[\"BLUE\"]}, \"says\": \"b\"},"
                                            "{\"id\": \"T-RED-SMALL\", \"when\": {\"colour\": "
                                            "[\"RED\"], \"size\": [\"SMALL\"]}, \"says\": \"c\"},"
                                            "{\"id\": \"T-URGENT\", \"when\": {\"urgent\": true}, "
                                            "\"says\": \"d\"},"
                                            "{\"id\": \"T-URGENT-LEFT\", \"when\": {\"urgent\": "
                                            "true, \"side\": [\"LEFT\"]}, \"says\": \"e\"}]}"));
        assert_error("rules[2] (T-RED-SMALL): can never match: rules[0] (T-WARM) comes first and "
                     "matches every thing this rule matches");
        assert_error("rules[4] (T-URGENT-LEFT): can never match: rules[3] (T-URGENT) comes first "
                     "and matches every thing this rule matches");
        ck_assert_msg(avk_errors_total(&errs) == 2, "%s", joined);
}
END_TEST

START_TEST(every_problem_names_the_file_rule_and_field)
{
        ck_assert_ptr_null(load_as(&narrow, "{\"colour\": 1, \"rules\": ["
                                            "{\"id\": \"T-A\", \"when\": {\"colour\": "
                                            "[\"PURPLE\"]}, \"says\": \"a\"},"
                                            "{\"id\": \"T-A\", \"when\": {\"size\": [\"SMALL\"]}, "
                                            "\"says\": \"b\"},"
                                            "{\"id\": \"X-C\", \"when\": {\"shape\": [\"ROUND\"]}, "
                                            "\"says\": \"c\"},"
                                            "{\"id\": \"T-D\", \"when\": {}, \"says\": \"d\"},"
                                            "{\"id\": \"T-E\", \"says\": \"e\"},"
                                            "{\"id\": \"T-F\", \"when\": {\"parties\": [\"VGR\", "
                                            "\"VGR\"], \"urgent\": \"yes\", \"side\": "
                                            "\"LEFT\"}},"
                                            "{\"id\": \"T-G\", \"when\": {\"size\": [\"LARGE\"]}, "
                                            "\"says\": \"g\", \"colour\": 2}]}"));
        assert_error("colour: unknown key (expected about, limit, rules)");
        assert_error("rules[0] (T-A): when.colour[0]: unknown symbol \"PURPLE\"; expected one of "
                     "RED, GREEN, BLUE");
        assert_error("rules[1]: id: \"T-A\" is already the id of rules[0]");
        assert_error("rules[2]: id: \"X-C\" is not \"T-\" and up to 62 upper-case letters, digits "
                     "and '-'");
        assert_error("rules[2]: when.shape: unknown key (expected colour, size, side, parties, "
                     "urgent)");
        assert_error("rules[3] (T-D): when: names no condition; a rule must narrow down what it "
                     "takes");
        assert_error("rules[4] (T-E): when: is required: the conditions of the rule");
        assert_error("rules[5] (T-F): when.parties[1]: \"VGR\" is listed twice");
        assert_error("rules[5] (T-F): when.urgent: expected true or false, got a string");
        assert_error("rules[5] (T-F): when.side: expected a non-empty array of side symbols, got a "
                     "string");
        assert_error("rules[5] (T-F): says: is required");
        assert_error("rules[6] (T-G): colour: unknown key (expected id, when, says)");
        ck_assert_msg(avk_errors_total(&errs) == 12, "%zu errors: %s", avk_errors_total(&errs),
                      joined);
}
END_TEST

START_TEST(a_schema_without_a_conditions_enum_is_named)
{
        static const struct avk_ruletable_condition shapes[] = {
            {"shape", AVK_RULETABLE_ENUM, "shape", "Shape", NULL},
        };
        struct avk_ruletable_def def = narrow;

        def.conditions = shapes;
        def.condition_cnt = 1;
        ck_assert_ptr_null(load_as(&def, "{\"rules\": []}"));
        assert_error("schema t.Thing has no enum t.Shape of at most 64 symbols for condition "
                     "shape");
        ck_assert_msg(avk_errors_total(&errs) == 1, "%s", joined);
}
END_TEST

/* A condition's values are bits of a 64-bit mask, and a query holds a fixed number of conditions.
 */
START_TEST(a_definition_beyond_the_masks_is_refused)
{
        static char names[65][8];
        static const char *many[66];
        static struct avk_ruletable_condition wide[1] = {
            {"many", AVK_RULETABLE_SYMBOLS, "many", NULL, many}};
        static struct avk_ruletable_condition flags[AVK_RULETABLE_CONDITIONS_MAX + 1];
        struct avk_ruletable_def def = narrow;

        for (size_t i = 0; i < 65; i++) {
                snprintf(names[i], sizeof(names[i]), "S%zu", i);
                many[i] = names[i];
        }
        def.conditions = wide;
        def.condition_cnt = 1;
        ck_assert_ptr_null(load_as(&def, "{\"rules\": []}"));
        assert_error("condition many has more than 64 symbols");

        for (size_t i = 0; i <= AVK_RULETABLE_CONDITIONS_MAX; i++)
                flags[i] =
                    (struct avk_ruletable_condition){"flag", AVK_RULETABLE_BOOL, NULL, NULL, NULL};
        def.conditions = flags;
        def.condition_cnt = AVK_RULETABLE_CONDITIONS_MAX + 1;
        ck_assert_ptr_null(load_as(&def, "{\"rules\": []}"));
        assert_error("17 conditions, at most 16");
}
END_TEST

START_TEST(a_catch_all_table_ends_with_a_rule_that_names_no_condition)
{
        struct avk_ruletable_def def = narrow;
        avk_ruletable_t *t;

        def.order = AVK_RULETABLE_CATCH_ALL;
        def.found = "an answer";
        ck_assert_ptr_null(load_as(&def, "{\"rules\": ["
                                         "{\"id\": \"T-RED\", \"when\": {\"colour\": [\"RED\"]}, "
                                         "\"says\": \"a\"},"
                                         "{\"id\": \"T-LARGE\", \"when\": {\"size\": [\"LARGE\"]}, "
                                         "\"says\": \"b\"}]}"));
        assert_error("rules: the last rule, rules[1] (T-LARGE), has when conditions; the last rule "
                     "must have none, so that every thing finds an answer");
        ck_assert_msg(avk_errors_total(&errs) == 1, "%s", joined);

        t = load_as(&def, "{\"rules\": ["
                          "{\"id\": \"T-RED\", \"when\": {\"colour\": [\"RED\"]}, \"says\": \"a\"},"
                          "{\"id\": \"T-ALL\", \"says\": \"b\"}]}");
        ck_assert_msg(t != NULL, "%s", joined);
        ck_assert_str_eq(first(t, "RED", NULL, 0), "T-RED");
        ck_assert_str_eq(first(t, "BLUE", NULL, 0), "T-ALL");
        ck_assert_str_eq(first(t, NULL, NULL, 0), "T-ALL");
        avk_ruletable_destroy(t);
}
END_TEST

START_TEST(a_syntax_error_names_line_and_column)
{
        char prefix[600];

        ck_assert_ptr_null(load_as(&narrow, "{\"rules\": [\n  {\"id\": }\n]}"));
        snprintf(prefix, sizeof(prefix), "%s:2:", path);
        ck_assert_msg(strncmp(errs.msg[0], prefix, strlen(prefix)) == 0, "%s", joined);
        ck_assert_uint_eq(avk_errors_total(&errs), 1);
}
END_TEST

static Suite *ruletable_suite(void)
{
        Suite *s = suite_create("ruletable");
        TCase *lookup = tcase_create("lookup");
        TCase *loading = tcase_create("loading");

        tcase_add_checked_fixture(lookup, setup, teardown);
        tcase_add_test(lookup, the_first_rule_in_file_order_that_matches_decides);
        tcase_add_test(lookup, an_unknown_or_missing_value_matches_only_rules_that_leave_it_open);
        tcase_add_test(lookup, fixed_symbols_parties_and_flags_are_conditions_too);
        tcase_add_test(lookup, the_hooks_read_the_documents_and_rules_own_terms);
        suite_add_tcase(s, lookup);

        tcase_add_checked_fixture(loading, setup, teardown);
        tcase_add_test(loading, a_hidden_rule_is_refused_naming_the_rule_that_hides_it);
        tcase_add_test(loading, every_problem_names_the_file_rule_and_field);
        tcase_add_test(loading, a_schema_without_a_conditions_enum_is_named);
        tcase_add_test(loading, a_definition_beyond_the_masks_is_refused);
        tcase_add_test(loading, a_catch_all_table_ends_with_a_rule_that_names_no_condition);
        tcase_add_test(loading, a_syntax_error_names_line_and_column);
        suite_add_tcase(s, loading);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(ruletable_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
