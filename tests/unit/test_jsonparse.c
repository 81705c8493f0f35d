/*
 * Tests for avk_json_parse: the same trees as jansson's own parser for every
 * valid document, and the same strictness for the invalid ones, each error
 * naming line, column and reason without quoting the input.
 */
#include "common/contract/jsonparse.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/check_text.h"
#include "tests/support/test_data.h"

/* Parses text with both parsers and requires equal trees. */
static void assert_same_as_jansson(const char *text, size_t len)
{
        char reason[256] = "";
        json_error_t jerr;
        json_t *want = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        ck_assert_msg(want != NULL, "jansson rejects the fixture: %s", jerr.text);
        json_t *got = avk_json_parse(text, len, reason, sizeof(reason));
        ck_assert_msg(got != NULL, "%.60s...: %s", text, reason);
        ck_assert_msg(json_equal(got, want), "different tree for %.60s", text);
        /* Integers stay integers and reals stay reals, as in jansson. */
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        ck_assert_str_eq(g, w);
        free(g);
        free(w);
        json_decref(got);
        json_decref(want);
}

static void assert_rejected(const char *text, size_t len, const char *expected)
{
        char reason[256] = "";
        json_t *got = avk_json_parse(text, len, reason, sizeof(reason));
        ck_assert_msg(got == NULL, "accepted: %.60s", text);
        ck_assert_contains(reason, expected);
        /* jansson rejects it too: the same strictness. */
        json_error_t jerr;
        json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        ck_assert_msg(j == NULL, "jansson accepts what avk_json_parse rejects: %.60s", text);
}

#define REJECTED(literal, expected) assert_rejected(literal, sizeof(literal) - 1, expected)
#define SAME(literal)               assert_same_as_jansson(literal, sizeof(literal) - 1)

START_TEST(sample_documents_give_the_same_tree_as_jansson)
{
        static const char *const files[] = {
            AVK_SOURCE_DIR "/deploy/samples/01-discharge-information-missing.json",
            AVK_SOURCE_DIR "/deploy/samples/02-no-physician-reachable.json",
            AVK_SOURCE_DIR "/deploy/samples/03-assistive-device-not-delivered.json",
            AVK_TEST_DATA "/fhir/adverse-event-discharge.json",
            AVK_TEST_DATA "/fhir/adverse-event-near-miss.json",
        };
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                FILE *f = fopen(files[i], "rb");
                ck_assert_msg(f != NULL, "%s", files[i]);
                static char buf[1 << 16];
                size_t len = fread(buf, 1, sizeof(buf), f);
                fclose(f);
                assert_same_as_jansson(buf, len);
        }
}
END_TEST

START_TEST(every_json_type_gives_the_same_tree_as_jansson)
{
        SAME("{\"a\":null,\"b\":true,\"c\":false,\"d\":0,\"e\":-12,\"f\":1.5,\"g\":-2e-3,"
             "\"h\":\"text\",\"i\":[],\"j\":{},\"k\":[1,[2,[3]],{\"x\":\"y\"}]}");
        SAME("[9223372036854775807,-9223372036854775808,1E300,0.0]");
        SAME("\"\\u00e5\\u00e4\\u00f6 \\ud83d\\ude00 \\\"\\\\\\/\\b\\f\\n\\r\\t\"");
        SAME("\"Åäö – 漢字 😀\"");
        SAME("  \n {\"padded\" : [ 1 , 2 ] }  \n");
        SAME("42");
}
END_TEST

START_TEST(invalid_utf8_is_rejected)
{
        REJECTED("\"\xc0\xaf\"", "UTF-8");          /* overlong '/' */
        REJECTED("\"\xed\xa0\x80\"", "UTF-8");      /* a surrogate, encoded */
        REJECTED("\"\xf4\x90\x80\x80\"", "UTF-8");  /* above U+10FFFF */
        REJECTED("\"\xe5\xe4\"", "");               /* Latin-1, not UTF-8 */
        REJECTED("{\"k\xff\":1}", "");              /* in a key */
        REJECTED("\"\\ud800\"", "line 1 column");   /* a lone surrogate escape */
        REJECTED("\"a\\uDC00b\"", "line 1 column"); /* a lone low surrogate */
        REJECTED("{\"x\":\"\\ud83d\", y}", "line 1 column");
}
END_TEST

START_TEST(nul_duplicate_keys_and_big_integers_are_rejected)
{
        REJECTED("\"a\\u0000b\"", "\\u0000");
        REJECTED("{\"a\":1,\"a\":2}", "duplicate object key");
        REJECTED("{\"o\":{\"a\":1,\"b\":2,\"a\":3}}", "duplicate object key");
        REJECTED("9223372036854775808", "integer out of range");
        REJECTED("-9223372036854775809", "integer out of range");
        REJECTED("1e999", "out of range");
}
END_TEST

START_TEST(syntax_errors_name_line_and_column)
{
        char reason[256];
        ck_assert_ptr_null(
            avk_json_parse("{\n  \"a\": 1,\n  \"b\": x\n}", 22, reason, sizeof(reason)));
        ck_assert_contains(reason, "line 3 column");
        REJECTED("{\"a\":1", "");     /* truncated */
        REJECTED("{\"a\":1}}", "");   /* trailing garbage */
        REJECTED("{\"a\":1} {}", ""); /* two documents */
        REJECTED("", "line 1 column 1");
        REJECTED("   ", "line 1 column");
        REJECTED("{'a':1}", "");
        REJECTED("[1,]", "");
        REJECTED("{\"a\":01}", "");
        REJECTED("/* comment */ {}", "");
}
END_TEST

START_TEST(nesting_past_the_limit_is_rejected)
{
        char deep[2 * AVK_JSON_MAX_DEPTH + 3];
        size_t n = 0;
        for (int i = 0; i < AVK_JSON_MAX_DEPTH; i++)
                deep[n++] = '[';
        for (int i = 0; i < AVK_JSON_MAX_DEPTH; i++)
                deep[n++] = ']';
        assert_same_as_jansson(deep, n); /* exactly the limit */
        n = 0;
        for (int i = 0; i <= AVK_JSON_MAX_DEPTH; i++)
                deep[n++] = '[';
        for (int i = 0; i <= AVK_JSON_MAX_DEPTH; i++)
                deep[n++] = ']';
        char reason[256];
        ck_assert_ptr_null(avk_json_parse(deep, n, reason, sizeof(reason)));
        ck_assert_contains(reason, "nested too deeply");
}
END_TEST

START_TEST(errors_never_quote_the_input)
{
        /* A personnummer next to a syntax error must not reach a log. */
        static const char doc[] = "{\"patient\":{\"personal_id\":\"19121212-1212\" x}}";
        char reason[256];
        ck_assert_ptr_null(avk_json_parse(doc, sizeof(doc) - 1, reason, sizeof(reason)));
        ck_assert_msg(strstr(reason, "1212") == NULL, "quotes the input: %s", reason);
        ck_assert_contains(reason, "line 1 column");
}
END_TEST

START_TEST(every_truncation_of_a_document_fails_cleanly)
{
        static const char doc[] =
            "{\"a\":[1,2.5,\"x\\u00e5\",{\"b\":null,\"c\":true}],\"d\":\"\xc3\xa5\xc3\xa4\"}";
        for (size_t len = 0; len < sizeof(doc) - 1; len++) {
                char reason[256] = "";
                json_t *j = avk_json_parse(doc, len, reason, sizeof(reason));
                ck_assert_msg(j == NULL, "a prefix of %zu bytes parsed", len);
                ck_assert_contains(reason, "line 1 column");
        }
        assert_same_as_jansson(doc, sizeof(doc) - 1);
}
END_TEST

static Suite *jsonparse_suite(void)
{
        Suite *s = suite_create("jsonparse");
        TCase *tc = tcase_create("parse");
        tcase_add_test(tc, sample_documents_give_the_same_tree_as_jansson);
        tcase_add_test(tc, every_json_type_gives_the_same_tree_as_jansson);
        tcase_add_test(tc, invalid_utf8_is_rejected);
        tcase_add_test(tc, nul_duplicate_keys_and_big_integers_are_rejected);
        tcase_add_test(tc, syntax_errors_name_line_and_column);
        tcase_add_test(tc, nesting_past_the_limit_is_rejected);
        tcase_add_test(tc, errors_never_quote_the_input);
        tcase_add_test(tc, every_truncation_of_a_document_fails_cleanly);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(jsonparse_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
