/*
 * The routing cases (tests/data/routing-cases.json, docs/routing-cases.md):
 * every case, filled as a careful and as a hurried clinician would, through
 * the real rules (data/routing-rules.json) and directory
 * (data/directory.json). Each fill must reach the party the case names, by
 * the decision it names, never back to the reporter, and a decision by a rule
 * must quote its clause in the reason.
 */
#include "consumer/route/rules.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tests/support/routing_fixture.h"

#define CASES_FILE AVK_SOURCE_DIR "/tests/data/routing-cases.json"

static const char *const fills[] = {"careful", "hurried"};
#define FILL_CNT 2

static avk_directory_t *dir;
static avk_rules_t *rules;
static json_t *cases;

static const char *text_at(json_t *obj, const char *a, const char *b)
{
        json_t *v = json_object_get(obj, a);

        if (b != NULL)
                v = json_object_get(v, b);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

/* "2026-10-14T06:40:00Z" in ms since the epoch. */
static long long epoch_ms(const char *iso)
{
        struct tm tm = {0};

        ck_assert_ptr_nonnull(strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm));
        return (long long)timegm(&tm) * 1000;
}

static struct avk_rules_input input_of(json_t *fill)
{
        struct avk_rules_input in = {
            .reporter_party = text_at(fill, "reporter", "party"),
            .named_party = text_at(fill, "receiver", "party"),
            .location_party = text_at(fill, "location", "party"),
            .care_setting = text_at(fill, "location", "care_setting"),
            .municipality_code = text_at(fill, "municipality_code", NULL),
            .category = text_at(fill, "category", NULL),
            .competence = text_at(fill, "competence", NULL),
            .home_visits = text_at(fill, "home_visits", NULL),
            .agreement = text_at(fill, "agreement", NULL),
            .event_class = "INCIDENT_WITHOUT_HARM",
            .harm_level = "LOW",
            .occurred_at_ms = epoch_ms(text_at(fill, "occurred_at", NULL)),
        };
        return in;
}

/* Case i // 2, fill i % 2. */
START_TEST(every_case_reaches_the_party_the_agreement_names)
{
        json_t *c = json_array_get(json_object_get(cases, "cases"), (size_t)_i / FILL_CNT);
        json_t *fill = json_object_get(c, fills[_i % FILL_CNT]);
        const char *id = text_at(c, "id", NULL);
        const char *receiver = text_at(fill, "expected", "receiver");
        const char *decision = text_at(fill, "expected", "decision");
        struct avk_rules_input in = input_of(fill);
        const char *party =
            strcmp(receiver, "REGION") == 0 ? "VGR" : text_at(fill, "municipality_code", NULL);
        struct avk_rules_decision out;

        avk_rules_decide(rules, dir, &in, &out);
        ck_assert_msg(strcmp(out.receiver_party, party) == 0 &&
                          strcmp(avk_rules_decision_symbol(out.kind), decision) == 0,
                      "%s %s: expected %s by %s, got %s by %s (%s): %s", id, fills[_i % FILL_CNT],
                      party, decision, out.receiver_party, avk_rules_decision_symbol(out.kind),
                      out.rule_id, out.reason);
        ck_assert_str_ne(out.receiver_party, in.reporter_party);
        if (strncmp(out.rule_id, "R-", 2) == 0)
                ck_assert_msg(strstr(out.reason, " Klausul: ") != NULL, "%s: %s", id, out.reason);
        if (out.kind == AVK_RULES_TRIAGE || out.kind == AVK_RULES_NAMED_BY_REPORTER)
                ck_assert_int_eq(out.kind == AVK_RULES_TRIAGE && out.rule_id[0] == 'R'
                                     ? out.basis != AVK_RULES_BASIS_LOCAL_POLICY
                                     : out.basis == AVK_RULES_BASIS_LOCAL_POLICY,
                                 1);
}
END_TEST

/* A named receiver the reporter cannot have meant (its own party, an unknown code) is flagged. */
START_TEST(a_named_receiver_not_used_is_flagged)
{
        static const char *const ids[] = {"C62", "C63", "C64"};
        json_t *all = json_object_get(cases, "cases");

        for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
                for (size_t i = 0; i < json_array_size(all); i++) {
                        json_t *c = json_array_get(all, i);
                        struct avk_rules_input in;
                        struct avk_rules_decision out;

                        if (strcmp(text_at(c, "id", NULL), ids[k]) != 0)
                                continue;
                        in = input_of(json_object_get(c, "hurried"));
                        avk_rules_decide(rules, dir, &in, &out);
                        ck_assert_msg(out.named_not_used, "%s: %s", ids[k], out.reason);
                        ck_assert_msg(strstr(out.reason, "inte kan användas") != NULL, "%s: %s",
                                      ids[k], out.reason);
                        in = input_of(json_object_get(c, "careful"));
                        avk_rules_decide(rules, dir, &in, &out);
                        ck_assert_int_eq(out.named_not_used, 0);
                }
        }
}
END_TEST

/* Göteborg's nurse reports what happened at VGR, in 2027, in care setting setting. */
static struct avk_rules_input gothenburg_reports_about_vgr(const char *setting)
{
        struct avk_rules_input in = {.reporter_party = "1480",
                                     .location_party = "VGR",
                                     .municipality_code = "1480",
                                     .care_setting = setting,
                                     .category = "CARE_AND_TREATMENT",
                                     .competence = "NURSE",
                                     .occurred_at_ms = 1800000000000LL};
        return in;
}

/* A municipal care setting at a region location: the location is followed, and flagged. */
START_TEST(a_setting_that_contradicts_the_location_is_flagged)
{
        struct avk_rules_input in = gothenburg_reports_about_vgr("SPECIAL_HOUSING");
        struct avk_rules_decision out;

        avk_rules_decide(rules, dir, &in, &out);
        ck_assert_int_eq(out.location_contradicts, 1);
        ck_assert_str_eq(out.receiver_party, "VGR");
        ck_assert_ptr_nonnull(strstr(out.reason, "platsen följs"));
}
END_TEST

/* A receiver's suggestion naming the reporter is not followed. */
START_TEST(a_suggestion_naming_the_reporter_is_not_followed)
{
        struct avk_rules_input in = gothenburg_reports_about_vgr("INPATIENT");
        struct avk_rules_rejection rej = {
            .hop = 0, .rejecting_party = "VGR", .suggested_party = "1480"};
        struct avk_rules_decision out;

        avk_rules_reroute(rules, dir, &in, &rej, &out);
        ck_assert_str_ne(out.rule_id, AVK_RULES_ID_SUGGESTED);
        ck_assert_ptr_nonnull(strstr(out.reason, "rapporterande parten"));
}
END_TEST

static Suite *cases_suite(void)
{
        Suite *s = suite_create("routing_cases");
        TCase *tc = tcase_create("cases");

        tcase_add_loop_test(tc, every_case_reaches_the_party_the_agreement_names, 0,
                            (int)json_array_size(json_object_get(cases, "cases")) * FILL_CNT);
        tcase_add_test(tc, a_named_receiver_not_used_is_flagged);
        tcase_add_test(tc, a_setting_that_contradicts_the_location_is_flagged);
        tcase_add_test(tc, a_suggestion_naming_the_reporter_is_not_followed);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        struct routing_fixture fixture;
        json_error_t jerr;
        int failed = 1;

        cases = json_load_file(CASES_FILE, 0, &jerr);
        if (cases == NULL)
                fprintf(stderr, "%s: %s\n", CASES_FILE, jerr.text);
        if (routing_fixture_load(&fixture) == 0 && cases != NULL) {
                dir = fixture.dir;
                rules = fixture.rules;
                failed = routing_fixture_run(cases_suite());
        }
        routing_fixture_free(&fixture);
        json_decref(cases);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
