/*
 * Unit tests for avk_deadlines with the shipped policy (data/deadlines.json):
 * a table of routings and the rule and spans each gets, every row citing
 * what the rule rests on; the conditions a rule may name (fixture
 * conditions.json); every validation error, each naming the file and the
 * JSON path (fixtures in tests/data/deadlines/); and deadlines and reminder
 * instants over Easter, midsommar, Christmas and New Year.
 *
 * Expected instants are UTC, through timegm(), so a mistake in the calendar
 * does not cancel out.
 */
#include "consumer/track/deadlines.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util/calendar.h"
#include "tests/support/check_text.h"
#include "tests/support/test_data.h"

#define POLICY_FILE   AVK_SOURCE_DIR "/data/deadlines.json"
#define FIXTURE(name) AVK_TEST_DATA "/deadlines/" name

static struct avk_errors errs;
static char joined[AVK_ERRORS_MAX * AVK_ERROR_MSG_SIZE];
static avk_deadlines_t *policy;

static avk_deadlines_t *load(const char *path)
{
        avk_deadlines_t *p;

        avk_errors_init(&errs);
        p = avk_deadlines_load(path, &errs);
        avk_errors_join(&errs, joined, sizeof(joined));
        return p;
}

static void setup(void)
{
        policy = load(POLICY_FILE);
        ck_assert_msg(policy != NULL, "%s", joined);
}

static void teardown(void)
{
        avk_deadlines_destroy(policy);
        policy = NULL;
}

static int64_t utc(int year, int month, int day, int hour, int minute, int second, int ms)
{
        struct tm tm = {.tm_year = year - 1900,
                        .tm_mon = month - 1,
                        .tm_mday = day,
                        .tm_hour = hour,
                        .tm_min = minute,
                        .tm_sec = second};

        return (int64_t)timegm(&tm) * 1000 + ms;
}

#define WD AVK_DEADLINE_WORKING_DAYS
#define CD AVK_DEADLINE_CALENDAR_DAYS

static void assert_span(const char *what, const struct avk_deadline_span *got, int amount,
                        enum avk_deadline_unit unit)
{
        char a[40], b[40];
        struct avk_deadline_span want = {amount, unit};

        ck_assert_msg(got->amount == amount && (amount == 0 || got->unit == unit),
                      "%s: %s, expected %s", what, avk_deadline_span_format(got, a, sizeof(a)),
                      avk_deadline_span_format(&want, b, sizeof(b)));
}

/* ---- the shipped policy ---- */

struct lookup_case {
        const char *source; /* what the expected rule rests on */
        const char *party, *category, *harm;
        int lex_maria;
        const char *rule;
        int ack;
        enum avk_deadline_unit ack_unit;
        int answer;
        enum avk_deadline_unit answer_unit;
        int remind;  /* working days; 0 = none */
        int step;    /* working days */
        int dispute; /* days */
};

/* Source documents by file name (docs/agreement.md). */
#define A13    "001_d2508e3e58e7f3ae.txt, A.13 Avvikelser: 'skyndsamt', answer when analysed"
#define GBG    "DOMAIN.md step 3: a Göteborg-area routine set 60 days to answer"
#define PSL3_3 "patientsäkerhetslagen 2010:659 3 kap. 3 §: severe harm is investigated"
#define PSL3_5 "patientsäkerhetslagen 2010:659 3 kap. 5 §: Lex Maria to IVO as soon as possible"

static const struct lookup_case lookup_cases[] = {
    {A13 "; " GBG, "1480", "MEDICATION", "LOW", 0, "D-DEFAULT", 3, WD, 60, CD, 2, 10, 30},
    {A13 "; " GBG, "VGR", "DISCHARGE_PLANNING", "NONE", 0, "D-DEFAULT", 3, WD, 60, CD, 2, 10, 30},
    {A13 "; " GBG, "1490", "SIP", "MODERATE", 0, "D-DEFAULT", 3, WD, 60, CD, 2, 10, 30},
    {A13 "; " GBG " (harm not known: the ordinary terms)", "1401", "OTHER", "UNKNOWN", 0,
     "D-DEFAULT", 3, WD, 60, CD, 2, 10, 30},
    {PSL3_3, "1480", "MEDICATION", "SEVERE", 0, "D-SEVERE-HARM", 2, WD, 20, WD, 1, 10, 30},
    {PSL3_3, "VGR", "CARE_AND_TREATMENT", "DEATH", 0, "D-SEVERE-HARM", 2, WD, 20, WD, 1, 10, 30},
    {PSL3_5, "1490", "OTHER", "NONE", 1, "D-LEX-MARIA", 1, WD, 10, WD, 0, 5, 30},
    {PSL3_5 " (before the harm level: Lex Maria is the shorter)", "VGR", "MEDICATION", "DEATH", 1,
     "D-LEX-MARIA", 1, WD, 10, WD, 0, 5, 30},
    {"deadlines.h: an unknown party, category or harm matches only open conditions", "9999",
     "NOT_A_CATEGORY", "NOT_A_HARM", 0, "D-DEFAULT", 3, WD, 60, CD, 2, 10, 30},
    {"deadlines.h: NULLs match only open conditions", NULL, NULL, NULL, 0, "D-DEFAULT", 3, WD, 60,
     CD, 2, 10, 30},
};

START_TEST(the_shipped_policy_gives_each_routing_its_terms)
{
        const struct lookup_case *c = &lookup_cases[_i];
        const struct avk_deadline_terms *t =
            avk_deadlines_lookup(policy, c->party, c->category, c->harm, c->lex_maria);

        ck_assert_ptr_nonnull(t);
        ck_assert_msg(strcmp(t->rule_id, c->rule) == 0, "%s/%s/%s/%d: %s, expected %s (%s)",
                      c->party, c->category, c->harm, c->lex_maria, t->rule_id, c->rule, c->source);
        assert_span("acknowledge", &t->acknowledge, c->ack, c->ack_unit);
        assert_span("answer", &t->answer, c->answer, c->answer_unit);
        assert_span("remind_before", &t->remind_before, c->remind, WD);
        assert_span("step_answer", &t->step_answer, c->step, WD);
        assert_span("dispute_window", &t->dispute_window, c->dispute, CD);
}
END_TEST

START_TEST(the_shipped_policy_has_three_rules)
{
        ck_assert_uint_eq(avk_deadlines_cnt(policy), 3);
}
END_TEST

/* ---- deadlines on the calendar ---- */

START_TEST(an_ordinary_routing_before_easter_is_due_after_the_holidays)
{
        /* Routed Thursday 2 April 2026, 10:00; Good Friday to Easter Monday are holidays. */
        int64_t routed = avk_calendar_from_local(2026, 4, 2, 10, 0, 0);
        const struct avk_deadline_terms *t =
            avk_deadlines_lookup(policy, "1480", "MEDICATION", "LOW", 0);
        int64_t ack = avk_deadline_after(&t->acknowledge, routed);
        int64_t answer = avk_deadline_after(&t->answer, routed);

        /* Tuesday 7, Wednesday 8, Thursday 9 April: the end of Thursday (CEST). */
        ck_assert_int_eq(ack, utc(2026, 4, 9, 21, 59, 59, 999));
        /* 60 days: Monday 1 June. */
        ck_assert_int_eq(answer, utc(2026, 6, 1, 21, 59, 59, 999));
        /* Reminders 2 working days before: Tuesday 7 April and Thursday 28 May, at 00:00. */
        ck_assert_int_eq(avk_deadline_before(&t->remind_before, ack), utc(2026, 4, 6, 22, 0, 0, 0));
        ck_assert_int_eq(avk_deadline_before(&t->remind_before, answer),
                         utc(2026, 5, 27, 22, 0, 0, 0));
}
END_TEST

START_TEST(a_routing_before_christmas_is_due_after_it)
{
        /* Routed Tuesday 22 December 2026; 24-27 December are not working days. */
        int64_t routed = avk_calendar_from_local(2026, 12, 22, 14, 0, 0);
        const struct avk_deadline_terms *t = avk_deadlines_lookup(policy, "VGR", "SIP", "NONE", 0);
        int64_t ack = avk_deadline_after(&t->acknowledge, routed);

        /* Wednesday 23, Monday 28, Tuesday 29 (CET). */
        ck_assert_int_eq(ack, utc(2026, 12, 29, 22, 59, 59, 999));
        /* Two working days before Tuesday 29: Monday 28 and Wednesday 23. */
        ck_assert_int_eq(avk_deadline_before(&t->remind_before, ack),
                         utc(2026, 12, 22, 23, 0, 0, 0));
        /* 60 days: Saturday 20 February 2027; a calendar-day deadline may fall on a weekend. */
        ck_assert_int_eq(avk_deadline_after(&t->answer, routed), utc(2027, 2, 20, 22, 59, 59, 999));
}
END_TEST

START_TEST(a_lex_maria_case_before_midsommar_is_due_the_next_working_day)
{
        /* Routed Thursday 18 June 2026: midsommarafton is Friday 19. */
        int64_t routed = avk_calendar_from_local(2026, 6, 18, 15, 0, 0);
        const struct avk_deadline_terms *t =
            avk_deadlines_lookup(policy, "1490", "MEDICATION", "SEVERE", 1);

        ck_assert_str_eq(t->rule_id, "D-LEX-MARIA");
        ck_assert_int_eq(avk_deadline_after(&t->acknowledge, routed),
                         utc(2026, 6, 22, 21, 59, 59, 999));
        /* No reminder in this rule. */
        ck_assert_int_eq(
            avk_deadline_before(&t->remind_before, avk_deadline_after(&t->acknowledge, routed)),
            AVK_DEADLINE_NEVER);
        /* An escalation on Wednesday 30 December 2026: after nyårsafton, nyårsdagen
         * and trettondedag jul, five working days are 4, 5, 7, 8 and 11 January 2027. */
        ck_assert_int_eq(
            avk_deadline_after(&t->step_answer, avk_calendar_from_local(2026, 12, 30, 9, 0, 0)),
            utc(2027, 1, 11, 22, 59, 59, 999));
}
END_TEST

START_TEST(a_span_of_none_never_falls_due)
{
        struct avk_deadline_span none = {0, AVK_DEADLINE_WORKING_DAYS};
        struct avk_deadline_span one = {1, AVK_DEADLINE_CALENDAR_DAYS};
        int64_t now = utc(2026, 11, 23, 12, 0, 0, 0);

        ck_assert_int_eq(avk_deadline_after(&none, now), AVK_DEADLINE_NEVER);
        ck_assert_int_eq(avk_deadline_before(&none, now), AVK_DEADLINE_NEVER);
        ck_assert_int_eq(avk_deadline_before(&one, AVK_DEADLINE_NEVER), AVK_DEADLINE_NEVER);
        /* A calendar day before the end of Tuesday 24 November is the start of Monday 23. */
        ck_assert_int_eq(avk_deadline_before(&one, utc(2026, 11, 24, 22, 59, 59, 999)),
                         utc(2026, 11, 22, 23, 0, 0, 0));
}
END_TEST

START_TEST(spans_read_as_a_user_writes_them)
{
        struct avk_deadline_span spans[] = {{3, WD}, {1, WD}, {60, CD}, {1, CD}, {0, CD}};
        const char *want[] = {"3 working days", "1 working day", "60 days", "1 day", "none"};
        char buf[40];

        for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++)
                ck_assert_str_eq(avk_deadline_span_format(&spans[i], buf, sizeof(buf)), want[i]);
}
END_TEST

/* ---- conditions ---- */

START_TEST(parties_categories_harm_and_lex_maria_are_conditions)
{
        avk_deadlines_t *p = load(FIXTURE("conditions.json"));
        const struct avk_deadline_terms *t;

        ck_assert_msg(p != NULL, "%s", joined);
        ck_assert_str_eq(avk_deadlines_lookup(p, "1490", "MEDICATION", "LOW", 0)->rule_id,
                         "D-BORAS-MEDICATION");
        ck_assert_str_eq(avk_deadlines_lookup(p, "1490", "SIP", "SEVERE", 1)->rule_id,
                         "D-BORAS-MEDICATION");
        ck_assert_str_eq(avk_deadlines_lookup(p, "1490", "OTHER", "LOW", 0)->rule_id, "D-ALL");
        ck_assert_str_eq(avk_deadlines_lookup(p, "1480", "MEDICATION", "LOW", 0)->rule_id, "D-ALL");
        ck_assert_str_eq(avk_deadlines_lookup(p, "VGR", "MEDICATION", "MODERATE", 0)->rule_id,
                         "D-VGR");
        ck_assert_str_eq(avk_deadlines_lookup(p, "1480", "OTHER", "MODERATE", 0)->rule_id,
                         "D-MODERATE-NOT-LEX-MARIA");
        ck_assert_str_eq(avk_deadlines_lookup(p, "1480", "OTHER", "MODERATE", 1)->rule_id, "D-ALL");
        ck_assert_str_eq(avk_deadlines_lookup(p, "1480", "OTHER", "SEVERE", 0)->rule_id, "D-ALL");
        t = avk_deadlines_lookup(p, "1490", "SIP", "NONE", 0);
        assert_span("remind_before", &t->remind_before, 3, CD);
        assert_span("step_answer", &t->step_answer, 14, CD);
        assert_span("dispute_window", &t->dispute_window, 15, WD);
        avk_deadlines_destroy(p);
}
END_TEST

/* ---- validation ---- */

/* The reasons avk_ident_party() gives. */
#define PARTY_9999                                                                                 \
        "party must be \"VGR\" or a municipality code ('9999' is not one of the 49 "               \
        "municipalities in Västra Götaland)"
#define PARTY_LOWER_VGR                                                                            \
        "party must be \"VGR\" or a municipality code (municipality code must be 4 digits, got 3 " \
        "characters)"

static void assert_error_at(const char *file, const char *rest)
{
        ck_assert_error_at(&errs, file, rest);
}

START_TEST(every_problem_of_a_policy_names_the_rule_and_field)
{
        const char *f = FIXTURE("many-errors.json");

        ck_assert_ptr_null(load(f));
        assert_error_at(f, "colour: unknown key (expected about, rules)");
        assert_error_at(f, "rules[0] (D-A): escalate_after: unknown key (expected id, because, "
                           "match, acknowledge, answer, remind_before, step_answer, "
                           "dispute_window)");
        assert_error_at(f, "rules[0] (D-A): match.party: unknown key (expected parties, "
                           "categories, harm_levels, possible_lex_maria)");
        assert_error_at(f, "rules[0] (D-A): match.categories[0]: unknown symbol \"MEDICINE\"; "
                           "expected one of INFORMATION_TRANSFER, DISCHARGE_PLANNING, SIP, "
                           "MEDICATION, PHYSICIAN_AVAILABILITY, ASSISTIVE_DEVICES, "
                           "CARE_AND_TREATMENT, SELF_CARE, ORAL_HEALTH, MENTAL_HEALTH_ADDICTION, "
                           "CHILDREN_YOUNG_PEOPLE, OTHER");
        assert_error_at(f, "rules[0] (D-A): match.harm_levels[1]: \"SEVERE\" is listed twice");
        assert_error_at(f, "rules[1] (D-B): match.parties[1]: " PARTY_9999);
        assert_error_at(f, "rules[1] (D-B): match.parties[2]: \"1480\" is listed twice");
        assert_error_at(f, "rules[1] (D-B): match.parties[3]: " PARTY_LOWER_VGR);
        assert_error_at(f, "rules[1] (D-B): match.possible_lex_maria: expected true or false, "
                           "got a string");
        assert_error_at(f, "rules[2] (D-C): acknowledge.working_days: is 0; a span is a positive "
                           "number of days, at most 365");
        assert_error_at(f, "rules[2] (D-C): answer.days: is -3; a span is a positive number of "
                           "days, at most 365");
        assert_error_at(f, "rules[2] (D-C): remind_before: expected exactly one of working_days "
                           "and days");
        assert_error_at(f, "rules[2] (D-C): step_answer: expected {\"working_days\": n} or "
                           "{\"days\": n}, got a string");
        assert_error_at(f, "rules[2] (D-C): dispute_window.weeks: unknown key (expected "
                           "working_days, days)");
        assert_error_at(f, "rules[2] (D-C): dispute_window: expected exactly one of working_days "
                           "and days");
        assert_error_at(f, "rules[3]: id: \"D-A\" is already the id of rules[0]");
        assert_error_at(f, "rules[3]: match.categories: expected a non-empty array of category "
                           "symbols, got a string");
        assert_error_at(f, "rules[4]: id: \"deadline e\" is not \"D-\" and up to 62 upper-case "
                           "letters, digits and '-'");
        assert_error_at(f, "rules[4]: because: is required");
        assert_error_at(f, "rules[5] (D-F): remind_before: 2 working days is not shorter than "
                           "acknowledge (2 working days): the reminder would fall before the "
                           "deadline starts to run");
        assert_error_at(f, "rules[5] (D-F): dispute_window.days: is 366; a span is a positive "
                           "number of days, at most 365");
        assert_error_at(f, "rules[6] (D-ALL): step_answer: is required: {\"working_days\": n} or "
                           "{\"days\": n}");
        assert_error_at(f, "rules[6] (D-ALL): dispute_window: is required: {\"working_days\": n} "
                           "or {\"days\": n}");
        ck_assert_msg(avk_errors_total(&errs) == 23, "%zu errors: %s", avk_errors_total(&errs),
                      joined);
}
END_TEST

START_TEST(a_rule_after_a_catch_all_or_inside_an_earlier_rule_is_unreachable)
{
        const char *f = FIXTURE("unreachable.json");

        ck_assert_ptr_null(load(f));
        assert_error_at(f, "rules[1] (D-DEATH-LEX-MARIA): can never match: rules[0] (D-SEVERE) "
                           "comes first and matches every routing this rule matches");
        assert_error_at(f, "rules[3] (D-LATE): can never match: rules[2] (D-ALL) comes first and "
                           "matches every routing this rule matches");
        ck_assert_msg(avk_errors_total(&errs) == 2, "%zu errors: %s", avk_errors_total(&errs),
                      joined);
}
END_TEST

START_TEST(a_policy_must_end_with_a_catch_all)
{
        const char *f = FIXTURE("no-catch-all.json");

        ck_assert_ptr_null(load(f));
        assert_error_at(f, "rules: the last rule, rules[1] (D-NO-LEX-MARIA), has match "
                           "conditions; the last rule must have none, so that every routing "
                           "finds deadlines");
        ck_assert_msg(avk_errors_total(&errs) == 1, "%zu errors: %s", avk_errors_total(&errs),
                      joined);
}
END_TEST

START_TEST(a_policy_syntax_error_names_line_and_column)
{
        const char *f = FIXTURE("syntax-error.json");
        char prefix[512];

        ck_assert_ptr_null(load(f));
        ck_assert_uint_eq(avk_errors_total(&errs), 1);
        snprintf(prefix, sizeof(prefix), "%s:4:", f);
        ck_assert_msg(strncmp(errs.msg[0], prefix, strlen(prefix)) == 0, "%s", errs.msg[0]);
}
END_TEST

START_TEST(a_missing_policy_file_is_named_with_the_reason)
{
        const char *f = FIXTURE("does-not-exist.json");
        char want[512];

        ck_assert_ptr_null(load(f));
        snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", f);
        ck_assert_uint_eq(avk_errors_total(&errs), 1);
        ck_assert_str_eq(errs.msg[0], want);
}
END_TEST

static Suite *deadlines_suite(void)
{
        Suite *s = suite_create("deadlines");
        TCase *shipped = tcase_create("shipped policy");
        TCase *files = tcase_create("policy files");

        tcase_add_checked_fixture(shipped, setup, teardown);
        tcase_add_test(shipped, the_shipped_policy_has_three_rules);
        tcase_add_loop_test(shipped, the_shipped_policy_gives_each_routing_its_terms, 0,
                            (int)(sizeof(lookup_cases) / sizeof(lookup_cases[0])));
        tcase_add_test(shipped, an_ordinary_routing_before_easter_is_due_after_the_holidays);
        tcase_add_test(shipped, a_routing_before_christmas_is_due_after_it);
        tcase_add_test(shipped, a_lex_maria_case_before_midsommar_is_due_the_next_working_day);
        tcase_add_test(shipped, a_span_of_none_never_falls_due);
        tcase_add_test(shipped, spans_read_as_a_user_writes_them);
        suite_add_tcase(s, shipped);

        tcase_add_test(files, parties_categories_harm_and_lex_maria_are_conditions);
        tcase_add_test(files, every_problem_of_a_policy_names_the_rule_and_field);
        tcase_add_test(files, a_rule_after_a_catch_all_or_inside_an_earlier_rule_is_unreachable);
        tcase_add_test(files, a_policy_must_end_with_a_catch_all);
        tcase_add_test(files, a_policy_syntax_error_names_line_and_column);
        tcase_add_test(files, a_missing_policy_file_is_named_with_the_reason);
        suite_add_tcase(s, files);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(deadlines_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
