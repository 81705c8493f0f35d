/*
 * No intake error echoes an identity (issue 17, point 4): a personnummer -
 * and a phone number and an e-mail address - planted in every field, as
 * every unknown key, and for FHIR also as every element name, code and
 * extension URL, never comes back in an error text. Deviations and
 * responses go through the intake library both ways it takes JSON (the
 * tree, and the text with its single pass), against the in-process mock
 * cluster; FHIR resources through the mapping. Every text is checked for
 * the planted digits and by the scrubber itself.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/scrub.h"
#include "producer/intake/fhir.h"
#include "producer/intake/reporter.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/test_data.h"

/* What is planted; each holds the birth date 400314 a clean text never shows
 * (the spellings of each class are test_scrub's). */
static const char *const planted[] = {
    "19400314-1233",
    "pnr 400314\xe2\x80\x90"
    "1233, 070-123 45 67, anna@vgregion.se",
};

static const char response_text[] =
    "{\"response_id\": \"5b0f1c2a-8b7d-4c1e-9a65-0d2f4b6c8e11\","
    " \"deviation_id\": \"3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10\","
    " \"responded_at\": \"2026-11-18T08:00:00.000Z\", \"party\": \"VGR\","
    " \"unit_hsa_id\": \"SE2321000131-E000000012345\", \"kind\": \"ANSWERED\","
    " \"analysis\": \"a\", \"action_plan\": \"b\", \"suggested_receiver\": null,"
    " \"comment\": null}";

static struct mock_kafka mk;
static avk_reporter_t *reporter;

struct probe {
        enum avk_kind kind; /* for the intake; unused for FHIR */
        int fhir;
        size_t texts;    /* error texts checked */
        size_t redacted; /* of them, ones that held a marker */
};

static void setup(void)
{
        char err[512];
        mock_kafka_start(&mk, 1);
        reporter = avk_reporter_new(mk.cfg, err, sizeof(err));
        ck_assert_msg(reporter != NULL, "%s", err);
}

static void teardown(void)
{
        avk_reporter_destroy(reporter);
        mock_kafka_stop(&mk);
}

static void assert_clean(struct probe *p, const struct avk_errors *errs, const char *where)
{
        for (size_t i = 0; i < errs->cnt; i++) {
                const char *m = errs->msg[i];
                struct avk_scrub_counts c;
                char *again = avk_scrub_text(m, strlen(m), NULL, &c);
                ck_assert_ptr_nonnull(again);
                free(again);
                ck_assert_msg(!strstr(m, "400314") && !strstr(m, "123 45 67") &&
                                  !strstr(m, "anna@"),
                              "%s: the error echoes the identity: %s", where, m);
                ck_assert_msg(c.personal_ids + c.phones + c.emails == 0,
                              "%s: the error holds an identity: %s", where, m);
                p->texts++;
                p->redacted += strstr(m, AVK_SCRUB_PERSONAL_ID) || strstr(m, AVK_SCRUB_PHONE) ||
                               strstr(m, AVK_SCRUB_EMAIL);
        }
}

/* Files doc both ways the intake takes JSON, or maps it from FHIR, and checks every error. */
static void check(struct probe *p, const json_t *doc, const char *where)
{
        struct avk_errors errs;
        avk_errors_init(&errs);
        if (p->fhir) {
                json_decref(avk_fhir_to_deviation(doc, &errs));
                assert_clean(p, &errs, where);
                return;
        }
        char id[AVK_ID_SIZE];
        avk_prepared_t *prepared = NULL;
        avk_reporter_prepare(reporter, p->kind, doc, id, &errs, &prepared);
        avk_prepared_destroy(prepared);
        assert_clean(p, &errs, where);
        char *text = json_dumps(doc, JSON_COMPACT);
        ck_assert_ptr_nonnull(text);
        prepared = NULL;
        avk_reporter_prepare_json(reporter, p->kind, text, strlen(text), id, &errs, &prepared);
        avk_prepared_destroy(prepared);
        free(text);
        assert_clean(p, &errs, where);
}

/* Plants every value of planted[] in every value under node, as an extra
 * key of every object and, with rename_keys, as every key; root is checked
 * after each change and restored. */
static void plant_everywhere(struct probe *p, json_t *root, json_t *node, int rename_keys)
{
        /* The keys first: a renamed key comes back at the end of the object. */
        size_t key_cnt = json_object_size(node);
        char(*keys)[256] = calloc(key_cnt + 1, sizeof(*keys));
        ck_assert_ptr_nonnull(keys);
        const char *key;
        json_t *child;
        size_t k = 0;
        json_object_foreach(node, key, child) snprintf(keys[k++], sizeof(*keys), "%s", key);
        for (size_t v = 0; v < sizeof(planted) / sizeof(planted[0]); v++) {
                const char *value = planted[v];
                if (json_is_object(node)) {
                        json_object_set_new(node, value, json_string("x"));
                        check(p, root, "an unknown key");
                        json_object_del(node, value);
                }
                for (k = 0; k < key_cnt; k++) {
                        child = json_incref(json_object_get(node, keys[k]));
                        json_object_set_new(node, keys[k], json_string(value));
                        check(p, root, keys[k]);
                        if (rename_keys) {
                                json_object_del(node, keys[k]);
                                json_object_set(node, value, child);
                                check(p, root, "an element name");
                                json_object_del(node, value);
                        }
                        json_object_set_new(node, keys[k], child);
                }
                for (size_t i = 0; i < json_array_size(node); i++) {
                        json_t *item = json_incref(json_array_get(node, i));
                        json_array_set_new(node, i, json_string(value));
                        check(p, root, "an array item");
                        json_array_set_new(node, i, item);
                }
        }
        for (k = 0; k < key_cnt; k++) {
                child = json_object_get(node, keys[k]);
                if (json_is_object(child) || json_is_array(child))
                        plant_everywhere(p, root, child, rename_keys);
        }
        for (size_t i = 0; i < json_array_size(node); i++)
                plant_everywhere(p, root, json_array_get(node, i), rename_keys);
        free(keys);
}

START_TEST(no_deviation_error_echoes_an_identity)
{
        char err[512];
        json_t *doc = test_data_load_json(AVK_SOURCE_DIR
                                          "/deploy/samples/01-discharge-information-missing.json",
                                          err, sizeof(err));
        ck_assert_msg(doc != NULL, "%s", err);
        struct probe p = {.kind = AVK_KIND_DEVIATION};
        plant_everywhere(&p, doc, doc, 0);
        /* The ten enum fields and the unknown keys quote what was sent. */
        ck_assert_uint_gt(p.redacted, 10 * sizeof(planted) / sizeof(planted[0]));
        json_decref(doc);
}
END_TEST

START_TEST(no_response_error_echoes_an_identity)
{
        json_error_t jerr;
        json_t *doc = json_loads(response_text, 0, &jerr);
        ck_assert_msg(doc != NULL, "%s", jerr.text);
        struct probe p = {.kind = AVK_KIND_RESPONSE};
        plant_everywhere(&p, doc, doc, 0);
        ck_assert_uint_gt(p.redacted, 0);
        json_decref(doc);
}
END_TEST

START_TEST(no_fhir_mapping_error_echoes_an_identity)
{
        static const char *const resources[] = {"adverse-event-discharge.json",
                                                "adverse-event-minimal.json",
                                                "adverse-event-near-miss.json"};
        struct probe p = {.fhir = 1};
        for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
                char path[512], err[512];
                snprintf(path, sizeof(path), "%s/fhir/%s", AVK_TEST_DATA, resources[i]);
                json_t *doc = test_data_load_json(path, err, sizeof(err));
                ck_assert_msg(doc != NULL, "%s", err);
                plant_everywhere(&p, doc, doc, 1);
                json_decref(doc);
        }
        /* Element names, codes and extension URLs are quoted in FHIR errors. */
        ck_assert_uint_gt(p.redacted, 0);
}
END_TEST

static Suite *intake_redaction_suite(void)
{
        Suite *s = suite_create("intake_redaction");
        TCase *tc = tcase_create("errors");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 240);
        tcase_add_test(tc, no_deviation_error_echoes_an_identity);
        tcase_add_test(tc, no_response_error_echoes_an_identity);
        tcase_add_test(tc, no_fhir_mapping_error_echoes_an_identity);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(intake_redaction_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
