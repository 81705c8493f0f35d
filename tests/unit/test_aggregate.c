/*
 * test_aggregate: the figures of the yearly follow-up against a generated
 * data set whose answers the test computes itself - from the model it
 * generated, with Swedish time from the system's zone database (TZ set to
 * Europe/Stockholm in this process) rather than common/util/calendar.h - and the
 * rules one scenario at a time: the latest record per deviation counts,
 * months are Swedish, overdue is counted in Swedish calendar days, and the
 * report escapes what a description holds.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util/calendar.h"
#include "common/contract/json.h"
#include "common/contract/municipality.h"
#include "common/contract/party.h"
#include "common/contract/schema.h"
#include "consumer/dashboard/aggregate.h"
#include "consumer/dashboard/followup.h"
#include "tests/support/json_find.h"

#define DAY   INT64_C(86400000)
#define HOUR  INT64_C(3600000)
#define N_DEV 3000

static avk_catalog_t *catalog;
static const avk_schema_t *schema;

static void setup(void)
{
        char err[256];
        catalog = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(catalog, "%s", err);
        schema = avk_catalog_by_name(catalog, "AnalysisRecord");
        ck_assert_ptr_nonnull(schema);
        setenv("TZ", "Europe/Stockholm", 1);
        tzset();
}

static void teardown(void)
{
        avk_catalog_destroy(catalog);
}

static int64_t at(const char *rfc3339)
{
        int64_t ms;
        ck_assert_int_eq(avk_json_parse_time(rfc3339, &ms), 0);
        return ms;
}

static void set_time(json_t *doc, const char *key, int64_t ms)
{
        char buf[32];
        if (ms == INT64_MIN) {
                json_object_set_new(doc, key, json_null());
                return;
        }
        avk_json_format_time(ms, buf);
        json_object_set_new(doc, key, json_string(buf));
}

/* One deviation as the test models it: the view after its last state. */
struct model {
        char id[40];
        int state; /* 0 REPORTED 1 ROUTED 2 ACKNOWLEDGED 3 ANSWERED 4 CLOSED 5 ESCALATED */
        int64_t reported_at, routed_at, ack_deadline, answer_deadline, tta, ttans;
        int category, harm, municipality, reporter_vgr, step, kept;
        const char *description;
        /* NULL: the field's default (an older record's view); hop only with a decision */
        const char *agreement, *care_setting, *decision;
        int hop;
};

static const char *const state_names[] = {"REPORTED", "ROUTED", "ACKNOWLEDGED",
                                          "ANSWERED", "CLOSED", "ESCALATED"};
static const char *const category_names[] = {"INFORMATION_TRANSFER",
                                             "DISCHARGE_PLANNING",
                                             "SIP",
                                             "MEDICATION",
                                             "PHYSICIAN_AVAILABILITY",
                                             "ASSISTIVE_DEVICES",
                                             "CARE_AND_TREATMENT",
                                             "SELF_CARE",
                                             "ORAL_HEALTH",
                                             "MENTAL_HEALTH_ADDICTION",
                                             "CHILDREN_YOUNG_PEOPLE",
                                             "OTHER"};
static const char *const harm_names[] = {"NONE", "LOW", "MODERATE", "SEVERE", "DEATH", "UNKNOWN"};
static const char *const step_names[] = {NULL,          "MANAGER",      "MANAGERS_MANAGER",
                                         "LOCAL_FORUM", "COUNTY_FORUM", "COURT"};
static const char *const subregion_names[][2] = {{"Fyrbodal", "FYRBODAL"},
                                                 {"Göteborgsregionen", "GOTEBORGSREGIONEN"},
                                                 {"Skaraborg", "SKARABORG"},
                                                 {"Södra Älvsborg", "SJUHARAD"}};

static int subregion_of(int municipality)
{
        for (int i = 0; i < 4; i++) {
                if (strcmp(avk_municipalities[municipality].subregion, subregion_names[i][0]) == 0)
                        return i;
        }
        ck_abort_msg("unknown sub-region");
        return -1;
}

/* The AnalysisRecord of m in state (a state m passes through). */
static json_t *record_json(const struct model *m, int state)
{
        const char *code = avk_municipalities[m->municipality].code;
        int routed = state >= 1, acked = (state >= 2 && state != 5) || (state == 5 && m->tta >= 0);
        int answered = state == 3 || state == 4;
        int64_t state_at = state == 0   ? m->reported_at
                           : state == 1 ? m->routed_at
                           : state == 2 ? m->routed_at + m->tta
                           : state == 3 ? m->routed_at + m->ttans
                           : state == 4 ? m->routed_at + m->ttans + DAY
                                        : m->routed_at + 11 * DAY; /* after any acknowledgement */
        json_t *doc =
            json_pack("{s:s,s:s,s:s,s:n,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:b,s:{s:b,s:b,s:b}}",
                      "record_id", "00000000-0000-5000-8000-000000000000", "deviation_id", m->id,
                      "state", state_names[state], "patient_pseudonym", "age_group", "AGE_80_PLUS",
                      "sex", "FEMALE", "municipality_code", code, "subregion",
                      subregion_names[subregion_of(m->municipality)][1], "category",
                      category_names[m->category], "event_class", "NEAR_MISS", "harm_level",
                      harm_names[m->harm], "psychological_harm", 0, "reporter_party",
                      m->reporter_vgr ? "VGR" : code, "overdue", 0, "flags", "possible_lex_maria",
                      m->harm == 3, "possible_lex_sarah", 0, "child_involved", m->category == 10);
        ck_assert_ptr_nonnull(doc);
        json_object_set_new(doc, "receiver_party",
                            routed ? json_string(m->reporter_vgr ? code : "VGR") : json_null());
        set_time(doc, "state_at", state_at);
        set_time(doc, "occurred_at", m->reported_at - HOUR);
        set_time(doc, "reported_at", m->reported_at);
        set_time(doc, "acknowledge_deadline_at", routed ? m->ack_deadline : INT64_MIN);
        set_time(doc, "answer_deadline_at", routed ? m->answer_deadline : INT64_MIN);
        json_object_set_new(doc, "time_to_acknowledge_ms",
                            acked ? json_integer(m->tta) : json_null());
        json_object_set_new(doc, "time_to_answer_ms",
                            answered ? json_integer(m->ttans) : json_null());
        json_object_set_new(doc, "deadline_kept", answered ? json_boolean(m->kept) : json_null());
        json_object_set_new(doc, "highest_escalation_step",
                            state == 5 ? json_string(step_names[m->step]) : json_null());
        json_object_set_new(doc, "description_scrubbed",
                            m->description ? json_string(m->description) : json_null());
        if (m->agreement)
                json_object_set_new(doc, "agreement", json_string(m->agreement));
        if (m->care_setting)
                json_object_set_new(doc, "care_setting", json_string(m->care_setting));
        if (m->decision) {
                json_object_set_new(doc, "hop", json_integer(m->hop));
                json_object_set_new(doc, "routing_decision", json_string(m->decision));
        }
        return doc;
}

/* Adds the record of m in state; returns avk_aggregate_add()'s result. */
static int add(avk_aggregate_t *agg, const struct model *m, int state)
{
        json_t *doc = record_json(m, state);
        avro_value_t value;
        struct avk_errors errs;
        struct avk_json_opts opts = {.flags = AVK_JSON_VALIDATE};
        char err[512];
        avk_errors_init(&errs);
        avro_generic_value_new(avk_schema_iface(schema), &value);
        ck_assert_msg(avk_json_to_avro(schema, doc, &value, &opts, &errs) == 0, "%s",
                      avk_errors_join(&errs, err, sizeof(err)));
        int rc = avk_aggregate_add(agg, &value, err, sizeof(err));
        ck_assert_msg(rc >= 0, "%s", err);
        avro_value_decref(&value);
        json_decref(doc);
        return rc;
}

static uint64_t rng_state;

static uint64_t next(void) /* splitmix64 */
{
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static int64_t below(int64_t n)
{
        return (int64_t)(next() % (uint64_t)n);
}

static void generate(struct model *models, size_t n)
{
        int64_t start = at("2026-10-01T00:00:00.000Z");
        rng_state = 20270101;
        for (size_t i = 0; i < n; i++) {
                struct model *m = &models[i];
                snprintf(m->id, sizeof(m->id), "%08x-0000-4000-8000-%012x", (unsigned)(i + 1),
                         (unsigned)(i * 7919));
                m->state = (int)below(6);
                m->reported_at = start + below(540 * DAY);
                m->routed_at = m->reported_at + below(2 * HOUR);
                m->ack_deadline = m->routed_at + 3 * DAY;
                m->answer_deadline = m->routed_at + 60 * DAY;
                m->tta = m->state == 5 && below(2) ? -1 : below(10 * DAY);
                m->ttans = (m->tta < 0 ? 0 : m->tta) + below(90 * DAY);
                m->kept = m->routed_at + m->ttans <= m->answer_deadline;
                m->category = (int)below(12);
                m->harm = (int)below(6);
                m->municipality = (int)below((int64_t)avk_municipality_cnt);
                m->reporter_vgr = (int)below(2);
                m->step = m->state == 5 ? 1 + (int)below(5) : 0;
                m->description = NULL;
        }
}

/* Feeds every state of every model, shuffled, with some replays. */
static avk_aggregate_t *feed(const struct model *models, size_t n)
{
        struct rec {
                size_t model;
                int state;
        } *recs = malloc(n * 8 * sizeof(*recs));
        size_t cnt = 0;
        ck_assert_ptr_nonnull(recs);
        for (size_t i = 0; i < n; i++) {
                int s = models[i].state;
                /* The path to s: CLOSED after ANSWERED, ESCALATED after ROUTED. */
                int path[6], len = 0;
                path[len++] = 0;
                if (s >= 1)
                        path[len++] = 1;
                if ((s >= 2 && s <= 4) || (s == 5 && models[i].tta >= 0))
                        path[len++] = 2;
                if (s == 3 || s == 4)
                        path[len++] = 3;
                if (s == 4 || s == 5)
                        path[len++] = s;
                for (int k = 0; k < len; k++)
                        recs[cnt++] = (struct rec){i, path[k]};
                if (below(10) == 0)
                        recs[cnt++] = (struct rec){i, path[below(len)]}; /* a replay */
        }
        for (size_t i = cnt - 1; i > 0; i--) {
                size_t j = (size_t)below((int64_t)i + 1);
                struct rec t = recs[i];
                recs[i] = recs[j];
                recs[j] = t;
        }
        avk_aggregate_t *agg = avk_aggregate_new();
        ck_assert_ptr_nonnull(agg);
        for (size_t i = 0; i < cnt; i++)
                add(agg, &models[recs[i].model], recs[i].state);
        free(recs);
        return agg;
}

/* Swedish local date from the zone database. */
static struct tm local(int64_t ms)
{
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        ck_assert_ptr_nonnull(localtime_r(&t, &tm));
        return tm;
}

static int64_t local_day_number(int64_t ms)
{
        struct tm tm = local(ms), midnight = {0};
        midnight.tm_year = tm.tm_year;
        midnight.tm_mon = tm.tm_mon;
        midnight.tm_mday = tm.tm_mday;
        return (int64_t)timegm(&midnight) / 86400;
}

static int is_open(const struct model *m)
{
        return m->state != 3 && m->state != 4;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

static json_int_t count_of(const json_t *items, size_t i)
{
        return json_integer_value(json_object_get(json_array_get(items, i), "count"));
}

/* Checks a distribution against the values (sorted here), nearest rank. */
static void check_distribution(const json_t *d, int64_t *v, size_t n, const char *what)
{
        static const int bounds[] = {1, 3, 7, 14, 30, 60, 90};
        size_t buckets[8] = {0};
        qsort(v, n, sizeof(*v), cmp_i64);
        for (size_t i = 0; i < n; i++) {
                size_t b = 0;
                while (b < 7 && v[i] >= bounds[b] * DAY)
                        b++;
                buckets[b]++;
        }
        ck_assert_msg(n > 100, "%s: too few values to mean anything", what);
        ck_assert_int_eq(json_integer_value(json_object_get(d, "count")), n);
        /* p-th percentile, nearest rank: the value at 1-based rank ceil(p/100 * n). */
        size_t r50 = (size_t)((50 * n + 99) / 100), r90 = (size_t)((90 * n + 99) / 100);
        ck_assert_int_eq(json_integer_value(json_object_get(d, "p50_ms")), v[r50 - 1]);
        ck_assert_int_eq(json_integer_value(json_object_get(d, "p90_ms")), v[r90 - 1]);
        for (size_t b = 0; b < 8; b++)
                ck_assert_msg(count_of(json_object_get(d, "buckets"), b) == (json_int_t)buckets[b],
                              "%s bucket %zu", what, b);
}

START_TEST(generated_year_matches_independent_counts)
{
        struct model *models = calloc(N_DEV, sizeof(*models));
        ck_assert_ptr_nonnull(models);
        generate(models, N_DEV);
        avk_aggregate_t *agg = feed(models, N_DEV);
        ck_assert_int_eq(avk_aggregate_size(agg), N_DEV);
        int64_t now = at("2027-06-15T10:00:00.000Z");
        json_t *s = avk_aggregate_summary(agg, 2027, now);
        ck_assert_ptr_nonnull(s);

        size_t total = 0, months[12] = {0}, categories[12] = {0}, harms[6] = {0},
               subregions[5] = {0};
        size_t steps[6] = {0}, kept = 0, known = 0, pairs[50][50] = {{0}}, unrouted[50] = {0};
        size_t overdue = 0;
        int64_t *ack = malloc(N_DEV * sizeof(*ack)), *answer = malloc(N_DEV * sizeof(*answer));
        size_t acks = 0, answers = 0;
        for (size_t i = 0; i < N_DEV; i++) {
                const struct model *m = &models[i];
                struct tm tm = local(m->reported_at);
                if (tm.tm_year + 1900 != 2027)
                        continue;
                total++;
                months[tm.tm_mon]++;
                categories[m->category]++;
                harms[m->harm]++;
                subregions[subregion_of(m->municipality)]++;
                steps[m->step]++;
                int reporter = m->reporter_vgr ? 0 : m->municipality + 1;
                int receiver = m->reporter_vgr ? m->municipality + 1 : 0;
                if (m->state == 0)
                        unrouted[reporter]++;
                else
                        pairs[reporter][receiver]++;
                if (m->state == 3 || m->state == 4) {
                        known++;
                        kept += m->kept;
                        answer[answers++] = m->ttans;
                }
                if (m->state >= 2 && m->tta >= 0)
                        ack[acks++] = m->tta;
                int unacked = m->state == 1 || (m->state == 5 && m->tta < 0);
                overdue += is_open(m) && m->state != 0 &&
                           ((unacked && m->ack_deadline < now) || m->answer_deadline < now);
        }
        ck_assert_int_gt(total, 1000);
        ck_assert_int_eq(json_integer_value(json_object_get(s, "total")), total);
        const json_t *by_month = json_object_get(s, "by_month");
        ck_assert_int_eq(json_array_size(by_month), 12);
        for (size_t i = 0; i < 12; i++)
                ck_assert_msg(count_of(by_month, i) == (json_int_t)months[i], "month %zu", i + 1);
        for (size_t i = 0; i < 12; i++)
                ck_assert_int_eq(count_of(json_object_get(s, "by_category"), i), categories[i]);
        for (size_t i = 0; i < 6; i++)
                ck_assert_int_eq(count_of(json_object_get(s, "by_harm"), i), harms[i]);
        for (size_t i = 0; i < 4; i++)
                ck_assert_int_eq(count_of(json_object_get(s, "by_subregion"), i), subregions[i]);
        for (size_t i = 0; i < 6; i++)
                ck_assert_int_eq(
                    count_of(json_object_get(json_object_get(s, "escalation"), "by_step"), i),
                    steps[i]);
        const json_t *deadline = json_object_get(s, "deadline");
        ck_assert_int_eq(json_integer_value(json_object_get(deadline, "kept")), kept);
        ck_assert_int_eq(json_integer_value(json_object_get(deadline, "answered_with_deadline")),
                         known);
        ck_assert_double_eq_tol(json_real_value(json_object_get(deadline, "share")),
                                (double)kept / (double)known, 1e-12);
        ck_assert_int_eq(json_integer_value(json_object_get(s, "overdue")), overdue);

        size_t i;
        json_t *pair;
        size_t pair_sum = 0;
        json_array_foreach(json_object_get(s, "by_party_pair"), i, pair)
        {
                char err[128];
                const char *rep = json_string_value(json_object_get(pair, "reporter_party"));
                const json_t *rec = json_object_get(pair, "receiver_party");
                int r = avk_party_parse(rep, err, sizeof(err));
                json_int_t want =
                    json_is_null(rec)
                        ? (json_int_t)unrouted[r]
                        : (json_int_t)
                              pairs[r][avk_party_parse(json_string_value(rec), err, sizeof(err))];
                ck_assert_msg(json_integer_value(json_object_get(pair, "count")) == want,
                              "pair %s -> %s", rep,
                              json_is_null(rec) ? "-" : json_string_value(rec));
                pair_sum += (size_t)want;
        }
        ck_assert_int_eq(pair_sum, total); /* and so no pair is missing */

        const json_t *rt = json_object_get(s, "response_time");
        check_distribution(json_object_get(rt, "acknowledge"), ack, acks, "acknowledge");
        check_distribution(json_object_get(rt, "answer"), answer, answers, "answer");

        json_t *all = avk_aggregate_summary(agg, 0, now);
        ck_assert_int_eq(json_integer_value(json_object_get(all, "total")), N_DEV);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(all, "by_month"), 0), "month")),
                         "2026-10");
        ck_assert_int_eq(json_array_size(json_object_get(all, "years")), 3);
        json_decref(all);
        free(ack);
        free(answer);
        json_decref(s);
        avk_aggregate_destroy(agg);
        free(models);
}
END_TEST

START_TEST(overdue_list_counts_swedish_calendar_days)
{
        struct model *models = calloc(N_DEV, sizeof(*models));
        ck_assert_ptr_nonnull(models);
        generate(models, N_DEV);
        avk_aggregate_t *agg = feed(models, N_DEV);
        int64_t now = at("2027-11-02T06:30:00.000Z"); /* after the end of summer time */
        json_t *o = avk_aggregate_overdue(agg, now, 100000);
        size_t expected = 0;
        for (size_t i = 0; i < N_DEV; i++) {
                const struct model *m = &models[i];
                int unacked = m->state == 1 || (m->state == 5 && m->tta < 0);
                expected += is_open(m) && m->state != 0 &&
                            ((unacked && m->ack_deadline < now) || m->answer_deadline < now);
        }
        ck_assert_int_gt(expected, 100);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "total")), expected);
        const json_t *items = json_object_get(o, "items");
        ck_assert_int_eq(json_array_size(items), expected);
        size_t i;
        json_t *item;
        json_int_t previous = INT64_MAX;
        json_array_foreach(items, i, item)
        {
                const char *id = json_string_value(json_object_get(item, "deviation_id"));
                const struct model *m = NULL;
                for (size_t k = 0; k < N_DEV && !m; k++)
                        m = strcmp(models[k].id, id) == 0 ? &models[k] : NULL;
                ck_assert_ptr_nonnull(m);
                int unacked = m->state == 1 || (m->state == 5 && m->tta < 0);
                int by_ack = unacked && m->ack_deadline < now;
                int64_t since = by_ack ? m->ack_deadline : m->answer_deadline;
                ck_assert_str_eq(json_string_value(json_object_get(item, "deadline")),
                                 by_ack ? "ACKNOWLEDGE" : "ANSWER");
                json_int_t days = json_integer_value(json_object_get(item, "days_overdue"));
                ck_assert_msg(days == local_day_number(now) - local_day_number(since), "%s", id);
                ck_assert_int_le(days, previous);
                previous = days;
                ck_assert_str_eq(json_string_value(json_object_get(item, "receiver_name")),
                                 m->reporter_vgr ? avk_municipalities[m->municipality].name
                                                 : "Västra Götalandsregionen");
        }
        json_decref(o);
        o = avk_aggregate_overdue(agg, now, 5);
        ck_assert_int_eq(json_array_size(json_object_get(o, "items")), 5);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "total")), expected);
        json_decref(o);
        avk_aggregate_destroy(agg);
        free(models);
}
END_TEST

static struct model one(const char *id, const char *reported_at)
{
        struct model m = {.state = 1, .category = 3 /* MEDICATION */};
        m.municipality = (int)(avk_municipality_find("1480") - avk_municipalities); /* Göteborg */
        snprintf(m.id, sizeof(m.id), "%s", id);
        m.reported_at = at(reported_at);
        m.routed_at = m.reported_at + HOUR;
        m.ack_deadline = m.routed_at + 3 * DAY;
        m.answer_deadline = m.routed_at + 60 * DAY;
        m.tta = 2 * DAY;
        m.ttans = 20 * DAY;
        m.kept = 1;
        return m;
}

static json_int_t category_count(avk_aggregate_t *agg, int year, size_t category)
{
        json_t *s = avk_aggregate_summary(agg, year, at("2027-01-01T00:00:00.000Z"));
        json_int_t n = count_of(json_object_get(s, "by_category"), category);
        json_decref(s);
        return n;
}

START_TEST(newer_state_replaces_the_deviations_contribution)
{
        avk_aggregate_t *agg = avk_aggregate_new();
        struct model m = one("a0000000-0000-4000-8000-000000000001", "2027-02-10T10:00:00.000Z");
        ck_assert_int_eq(add(agg, &m, 1), 1); /* ROUTED, MEDICATION */
        m.category = 5;
        ck_assert_int_eq(add(agg, &m, 2), 1); /* ACKNOWLEDGED, recategorised */
        ck_assert_int_eq(avk_aggregate_size(agg), 1);
        ck_assert_int_eq(category_count(agg, 2027, 3), 0);
        ck_assert_int_eq(category_count(agg, 2027, 5), 1);
        m.category = 7;
        ck_assert_int_eq(add(agg, &m, 1), 0); /* the older ROUTED, read late */
        ck_assert_int_eq(category_count(agg, 2027, 5), 1);
        ck_assert_int_eq(category_count(agg, 2027, 7), 0);
        m.category = 5;
        ck_assert_int_eq(add(agg, &m, 2), 1); /* a replay is the same view */
        ck_assert_int_eq(category_count(agg, 2027, 5), 1);
        avk_aggregate_destroy(agg);
}
END_TEST

START_TEST(same_instant_ranks_by_the_process_order)
{
        avk_aggregate_t *agg = avk_aggregate_new();
        struct model m = one("a0000000-0000-4000-8000-000000000002", "2027-02-10T10:00:00.000Z");
        ck_assert_int_eq(add(agg, &m, 4), 1); /* CLOSED, a day after its answer */
        m.ttans += DAY;                       /* an ANSWERED at the same instant as CLOSED */
        ck_assert_int_eq(add(agg, &m, 3), 0);
        json_t *s = avk_aggregate_summary(agg, 2027, at("2027-06-01T00:00:00.000Z"));
        ck_assert_int_eq(count_of(json_object_get(s, "by_state"), 8), 1); /* CLOSED stands */
        json_decref(s);
        avk_aggregate_destroy(agg);
}
END_TEST

/* Labels as staff write them (docs/escalation.md, "Swedish labels"), whatever the count. */
START_TEST(states_steps_and_subregions_carry_the_labels_staff_use)
{
        static const struct {
                const char *section, *table, *code, *label; /* section NULL: the top level */
        } want[] = {
            {NULL, "by_state", "DISPUTED", "Svar ifrågasatt"},
            {NULL, "by_state", "REJECTED", "Fel mottagare – skickas vidare"},
            {"escalation", "by_step", "MANAGER", "Chef närmast patienten"},
            {"escalation", "by_step", "MANAGERS_MANAGER", "Chef över chef"},
            {"escalation", "by_step", "LOCAL_FORUM",
             "Partsgemensamt forum, lokalt eller delregionalt"},
            {"escalation", "by_step", "COUNTY_FORUM", "Partsgemensamt forum på länsnivå"},
            {NULL, "by_subregion", "SJUHARAD", "Södra Älvsborg"},
        };
        avk_aggregate_t *agg = avk_aggregate_new();
        json_t *s = avk_aggregate_summary(agg, 2027, at("2027-06-01T00:00:00.000Z"));
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                const json_t *in = want[i].section ? json_object_get(s, want[i].section) : s;
                const json_t *table = json_object_get(in, want[i].table), *row;
                const char *label = NULL;
                size_t r;
                json_array_foreach(table, r, row)
                {
                        if (strcmp(json_string_value(json_object_get(row, "code")), want[i].code) ==
                            0)
                                label = json_string_value(json_object_get(row, "label"));
                }
                ck_assert_msg(label && strcmp(label, want[i].label) == 0, "%s %s: %s",
                              want[i].table, want[i].code, label ? label : "(none)");
        }
        json_decref(s);
        avk_aggregate_destroy(agg);
}
END_TEST

START_TEST(percentiles_are_nearest_rank)
{
        avk_aggregate_t *agg = avk_aggregate_new();
        for (int i = 1; i <= 7; i++) {
                char id[40];
                snprintf(id, sizeof(id), "a1000000-0000-4000-8000-%012d", i);
                struct model m = one(id, "2027-02-10T10:00:00.000Z");
                m.tta = i * DAY;
                add(agg, &m, 2);
        }
        json_t *s = avk_aggregate_summary(agg, 2027, at("2027-06-01T00:00:00.000Z"));
        const json_t *d = json_object_get(json_object_get(s, "response_time"), "acknowledge");
        /* Ranks ceil(0.5 * 7) = 4 and ceil(0.9 * 7) = 7. */
        ck_assert_int_eq(json_integer_value(json_object_get(d, "p50_ms")), 4 * DAY);
        ck_assert_int_eq(json_integer_value(json_object_get(d, "p90_ms")), 7 * DAY);
        ck_assert_double_eq(json_real_value(json_object_get(d, "p90_days")), 7.0);
        /* 1 day is in "1-3", 7 days in "7-14". */
        ck_assert_int_eq(count_of(json_object_get(d, "buckets"), 0), 0);
        ck_assert_int_eq(count_of(json_object_get(d, "buckets"), 1), 2);
        ck_assert_int_eq(count_of(json_object_get(d, "buckets"), 3), 1);
        json_decref(s);
        avk_aggregate_destroy(agg);
}
END_TEST

START_TEST(months_and_years_are_swedish)
{
        static const struct {
                const char *utc, *month;
        } cases[] = {
            {"2026-12-31T23:30:00.000Z", "2027-01"}, /* CET: 00:30 on New Year's Day */
            {"2027-01-31T22:59:59.999Z", "2027-01"},
            {"2027-01-31T23:00:00.000Z", "2027-02"},
            {"2027-03-31T21:59:59.999Z", "2027-03"},
            {"2027-03-31T22:00:00.000Z", "2027-04"}, /* CEST: midnight is 22:00 UTC */
            {"2027-10-31T22:30:00.000Z", "2027-10"}, /* CET again since 01:00 UTC that day */
            {"2027-12-31T23:00:00.000Z", "2028-01"},
        };
        avk_aggregate_t *agg = avk_aggregate_new();
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char id[40];
                snprintf(id, sizeof(id), "b0000000-0000-4000-8000-%012zu", i);
                struct model m = one(id, cases[i].utc);
                add(agg, &m, 1);
        }
        json_t *s = avk_aggregate_summary(agg, 2027, at("2028-06-01T00:00:00.000Z"));
        ck_assert_int_eq(json_integer_value(json_object_get(s, "total")), 6);
        const json_t *by_month = json_object_get(s, "by_month");
        json_int_t want[12] = {2, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0};
        for (size_t i = 0; i < 12; i++)
                ck_assert_msg(count_of(by_month, i) == want[i], "month %zu: %lld", i + 1,
                              (long long)count_of(by_month, i));
        json_decref(s);
        s = avk_aggregate_summary(agg, 2028, at("2028-06-01T00:00:00.000Z"));
        ck_assert_int_eq(json_integer_value(json_object_get(s, "total")), 1);
        ck_assert_int_eq(count_of(json_object_get(s, "by_month"), 0), 1);
        json_decref(s);
        avk_aggregate_destroy(agg);
}
END_TEST

START_TEST(overdue_follows_the_deadline_in_force)
{
        avk_aggregate_t *agg = avk_aggregate_new();
        /* Routed 2027-03-01 09:00 UTC: acknowledgement due 03-04, answer 04-30. */
        struct model unacked =
            one("c0000000-0000-4000-8000-000000000001", "2027-03-01T08:00:00.000Z");
        struct model acked =
            one("c0000000-0000-4000-8000-000000000002", "2027-03-01T08:00:00.000Z");
        struct model answered =
            one("c0000000-0000-4000-8000-000000000003", "2027-03-01T08:00:00.000Z");
        struct model fresh =
            one("c0000000-0000-4000-8000-000000000004", "2027-03-09T08:00:00.000Z");
        add(agg, &unacked, 1);
        add(agg, &acked, 2);
        answered.ttans = 70 * DAY; /* late, but answered: no longer overdue */
        answered.kept = 0;
        add(agg, &answered, 3);
        add(agg, &fresh, 1);
        /* 2027-03-10 00:30 Swedish time: the first is 6 days past 03-04 09:00 UTC. */
        json_t *o = avk_aggregate_overdue(agg, at("2027-03-09T23:30:00.000Z"), 10);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "total")), 1);
        const json_t *item = json_array_get(json_object_get(o, "items"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(item, "deviation_id")), unacked.id);
        ck_assert_str_eq(json_string_value(json_object_get(item, "deadline")), "ACKNOWLEDGE");
        ck_assert_int_eq(json_integer_value(json_object_get(item, "days_overdue")), 6);
        ck_assert_str_eq(json_string_value(json_object_get(item, "reporter_name")), "Göteborg");
        ck_assert_str_eq(json_string_value(json_object_get(item, "category_label")), "Läkemedel");
        json_decref(o);
        /* After the answer deadline (04-30 09:00 UTC), acknowledged or not. */
        o = avk_aggregate_overdue(agg, at("2027-05-02T08:00:00.000Z"), 10);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "total")), 3); /* fresh too */
        item = json_array_get(json_object_get(o, "items"), 2);
        ck_assert_str_eq(json_string_value(json_object_get(item, "deviation_id")), acked.id);
        ck_assert_str_eq(json_string_value(json_object_get(item, "deadline")), "ANSWER");
        ck_assert_int_eq(json_integer_value(json_object_get(item, "days_overdue")), 2);
        json_decref(o);
        avk_aggregate_destroy(agg);
}
END_TEST

START_TEST(excerpt_is_cut_at_a_character_without_controls)
{
        avk_aggregate_t *agg = avk_aggregate_new();
        struct model m = one("d0000000-0000-4000-8000-000000000001", "2027-02-10T10:00:00.000Z");
        char text[400];
        memset(text, 'a', 135);
        strcpy(text + 135, "åäö\nrad två och mycket mer text som inte ryms i utdraget alls");
        m.description = text;
        add(agg, &m, 1);
        json_t *s = avk_aggregate_summary(agg, 2027, at("2027-03-01T00:00:00.000Z"));
        const char *excerpt = json_string_value(
            json_object_get(json_array_get(json_object_get(s, "latest"), 0), "excerpt"));
        ck_assert_ptr_nonnull(excerpt); /* jansson accepted it: valid UTF-8 */
        ck_assert_uint_le(strlen(excerpt), AVK_AGGREGATE_EXCERPT_MAX);
        ck_assert_ptr_nonnull(strstr(excerpt, "…"));
        ck_assert_ptr_null(strchr(excerpt, '\n'));
        json_decref(s);
        avk_aggregate_destroy(agg);
}
END_TEST

START_TEST(excerpt_never_shows_a_personal_identity_number)
{
        avk_aggregate_t *agg = avk_aggregate_new();
        struct model m = one("d0000000-0000-4000-8000-000000000002", "2027-02-10T10:00:00.000Z");
        m.description = "Patienten 19121212-1212 (samordningsnummer 701063-2391) fick fel dos";
        add(agg, &m, 1);
        json_t *s = avk_aggregate_summary(agg, 2027, at("2027-03-01T00:00:00.000Z"));
        char *text = json_dumps(s, 0);
        ck_assert_ptr_null(strstr(text, "1212"));
        ck_assert_ptr_null(strstr(text, "2391"));
        ck_assert_ptr_nonnull(strstr(text, "fick fel dos"));
        free(text);
        json_decref(s);
        avk_aggregate_destroy(agg);
}
END_TEST

START_TEST(report_escapes_descriptions)
{
        avk_aggregate_t *agg = avk_aggregate_new();
        struct model m = one("e0000000-0000-4000-8000-000000000001", "2027-02-10T10:00:00.000Z");
        m.description = "<script>alert(1)</script> \"><img src=x onerror=alert(1)> & 'x'";
        add(agg, &m, 1);
        int64_t now = at("2027-06-01T00:00:00.000Z");
        json_t *s = avk_aggregate_summary(agg, 2027, now), *o = avk_aggregate_overdue(agg, now, 10);
        char err[128];
        char *html = avk_followup_html(s, o, "body{}", err, sizeof(err));
        ck_assert_msg(html, "%s", err);
        ck_assert_ptr_null(strstr(html, "<script"));
        ck_assert_ptr_null(strstr(html, "<img"));
        /* In both lists, the overdue and the latest. */
        const char *escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x "
                              "onerror=alert(1)&gt; &amp; &#39;x&#39;";
        const char *first = strstr(html, escaped);
        ck_assert_ptr_nonnull(first);
        ck_assert_ptr_nonnull(strstr(first + 1, escaped));
        ck_assert_ptr_nonnull(strstr(html, "<svg"));
        ck_assert_ptr_nonnull(strstr(html, "Årlig uppföljning av avvikelser i samverkan 2027"));
        free(html);
        json_decref(s);
        json_decref(o);
        avk_aggregate_destroy(agg);
}
END_TEST

/* count/routed/wrong_receiver/decided/triage/manual_triage of a row, and its three rates. */
static void check_clarity(const json_t *row, const char *want_counts, double wrong, double triage,
                          double manual)
{
        static const char *const keys[] = {"count",   "routed", "wrong_receiver",
                                           "decided", "triage", "manual_triage"};
        char got[128] = "";
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", i ? "/" : "",
                         (long long)json_integer_value(json_object_get(row, keys[i])));
        ck_assert_str_eq(got, want_counts);
        static const char *const rates[] = {"wrong_receiver_rate", "triage_rate",
                                            "manual_triage_rate"};
        const double want[] = {wrong, triage, manual};
        for (size_t i = 0; i < 3; i++) {
                const json_t *rate = json_object_get(row, rates[i]);
                if (want[i] < 0)
                        ck_assert_msg(json_is_null(rate), "%s not null", rates[i]);
                else
                        ck_assert_msg(
                            json_is_real(rate) && fabs(json_real_value(rate) - want[i]) < 1e-9,
                            "%s: %f, want %f", rates[i], json_number_value(rate), want[i]);
        }
}

/*
 * Per sub-agreement, per care setting and per month: of the deviations
 * routed, those that met a wrong receiver (a hop above 0, whichever record
 * is the view); of those with a known routing decision, those that went to
 * triage or manual triage at any hop - also when that record is read after
 * a newer one.
 */
START_TEST(clarity_per_sub_agreement_care_setting_and_month)
{
        avk_aggregate_t *agg = avk_aggregate_new();
        struct model a = one("c0000000-0000-4000-8000-00000000000a", "2027-01-10T10:00:00.000Z");
        a.agreement = "DISCHARGE_PAYMENT", a.care_setting = "INPATIENT";
        a.decision = "AGREEMENT_RULE";
        add(agg, &a, 1);
        struct model b = one("c0000000-0000-4000-8000-00000000000b", "2027-01-11T10:00:00.000Z");
        b.agreement = "MENTAL_HEALTH_ADDICTION", b.care_setting = "HOME_HEALTH_CARE";
        b.decision = "TRIAGE";
        add(agg, &b, 1);
        b.decision = "REROUTED", b.hop = 1; /* the triage party said "wrong receiver" */
        add(agg, &b, 2);
        struct model c = one("c0000000-0000-4000-8000-00000000000c", "2027-01-12T10:00:00.000Z");
        c.agreement = "DISCHARGE_PAYMENT"; /* written before care setting and decision were */
        add(agg, &c, 1);
        struct model d = one("c0000000-0000-4000-8000-00000000000d", "2027-02-10T10:00:00.000Z");
        d.agreement = "ORAL_HEALTH", d.care_setting = "DENTAL";
        d.decision = "MANUAL", d.hop = 2;
        ck_assert_int_eq(add(agg, &d, 2), 1);
        d.decision = "TRIAGE", d.hop = 0;
        ck_assert_int_eq(add(agg, &d, 1), 0); /* the first routing, read late */
        struct model e = one("c0000000-0000-4000-8000-00000000000e", "2027-02-11T10:00:00.000Z");
        e.state = 0;
        add(agg, &e, 0); /* reported, not routed yet */

        int64_t now = at("2027-06-01T00:00:00.000Z");
        json_t *s = avk_aggregate_summary(agg, 2027, now);
        const json_t *by_agreement = json_object_get(s, "by_agreement");
        ck_assert_uint_eq(json_array_size(by_agreement), 8);
        check_clarity(json_find(by_agreement, "code", "DISCHARGE_PAYMENT"), "2/2/0/1/0/0", 0, 0, 0);
        check_clarity(json_find(by_agreement, "code", "MENTAL_HEALTH_ADDICTION"), "1/1/1/1/1/0", 1,
                      1, 0);
        check_clarity(json_find(by_agreement, "code", "ORAL_HEALTH"), "1/1/1/1/1/1", 1, 1, 1);
        check_clarity(json_find(by_agreement, "code", "UNKNOWN"), "1/0/0/0/0/0", -1, -1, -1);
        check_clarity(json_find(by_agreement, "code", "HEALTH_CARE_AGREEMENT"), "0/0/0/0/0/0", -1,
                      -1, -1);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_find(by_agreement, "code", "DISCHARGE_PAYMENT"), "label")),
                         "In- och utskrivning från sluten vård");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_find(by_agreement, "code", "MENTAL_HEALTH_ADDICTION"), "label")),
                         "Psykisk funktionsnedsättning, skadligt bruk och beroende");

        const json_t *by_setting = json_object_get(s, "by_care_setting");
        ck_assert_uint_eq(json_array_size(by_setting), 17);
        check_clarity(json_find(by_setting, "code", "NOT_RECORDED"), "2/1/0/0/0/0", 0, -1, -1);
        check_clarity(json_find(by_setting, "code", "INPATIENT"), "1/1/0/1/0/0", 0, 0, 0);
        check_clarity(json_find(by_setting, "code", "HOME_HEALTH_CARE"), "1/1/1/1/1/0", 1, 1, 0);
        check_clarity(json_find(by_setting, "code", "DENTAL"), "1/1/1/1/1/1", 1, 1, 1);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_find(by_setting, "code", "NOT_RECORDED"), "label")),
                         "Ej registrerad");

        const json_t *months = json_object_get(s, "clarity_by_month");
        ck_assert_uint_eq(json_array_size(months), 12);
        check_clarity(json_array_get(months, 0), "3/3/1/2/1/0", 1.0 / 3, 0.5, 0);
        check_clarity(json_array_get(months, 1), "2/1/1/1/1/1", 1, 1, 1);
        check_clarity(json_array_get(months, 2), "0/0/0/0/0/0", -1, -1, -1);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(s, "deadline"), "basis")),
            "LOCAL_POLICY");

        /* The report: the same figures, with the decimal comma, and the deadlines' basis. */
        json_t *o = avk_aggregate_overdue(agg, now, 10);
        char err[128];
        char *html = avk_followup_html(s, o, "body{}", err, sizeof(err));
        ck_assert_msg(html, "%s", err);
        static const char *const want[] = {
            "Ansvarsfördelningens tydlighet",
            "<td>In- och utskrivning från sluten vård</td><td class=\"num\">2</td><td "
            "class=\"num\">0,0&nbsp;%</td><td class=\"num\">0,0&nbsp;%</td>",
            "<td>jan</td><td class=\"num\">3</td><td class=\"num\">33,3&nbsp;%</td><td "
            "class=\"num\">50,0&nbsp;%</td><td class=\"num\">0,0&nbsp;%</td>",
            "<td>Ej registrerad</td><td class=\"num\">2</td><td class=\"num\">0,0&nbsp;%</td><td "
            "class=\"num\">–</td>",
            "Besvarade inom tidsgränsen (lokal policy)",
            "Tidsgränserna är lokal policy, inte avtalets text",
            "Dagar över tidsgränsen",
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                ck_assert_msg(strstr(html, want[i]), "the report lacks %s", want[i]);
        ck_assert_ptr_null(strstr(html, "Dagar sen"));
        free(html);
        json_decref(o);
        json_decref(s);
        avk_aggregate_destroy(agg);
}
END_TEST

/* Every time the page and the report show is Swedish time, as the zone
 * database has it (summer time included), never UTC. */
START_TEST(times_shown_are_swedish_time)
{
        /* {UTC, as shown}: the hours the clocks change and a new year. */
        static const char *const edges[][2] = {
            {"2027-03-28T00:59:00.000Z", "2027-03-28 01:59"}, /* CET, the last minute */
            {"2027-03-28T01:00:00.000Z", "2027-03-28 03:00"}, /* CEST from 01:00 UTC */
            {"2027-10-31T00:30:00.000Z", "2027-10-31 02:30"}, /* CEST, the first 02:30 */
            {"2027-10-31T01:30:00.000Z", "2027-10-31 02:30"}, /* CET, the second */
            {"2026-12-31T23:30:00.000Z", "2027-01-01 00:30"},
        };
        char buf[AVK_CALENDAR_LOCAL_SIZE], want[AVK_CALENDAR_LOCAL_SIZE];
        for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
                avk_calendar_format_local(at(edges[i][0]), buf);
                ck_assert_str_eq(buf, edges[i][1]);
        }
        /* Every 7 h 13 min over three years against localtime_r with TZ=Europe/Stockholm. */
        for (int64_t ms = at("2026-01-01T00:00:00.000Z"); ms < at("2029-01-01T00:00:00.000Z");
             ms += 7 * HOUR + 13 * 60000) {
                struct tm tm = local(ms);
                strftime(want, sizeof(want), "%Y-%m-%d %H:%M", &tm);
                avk_calendar_format_local(ms, buf);
                ck_assert_str_eq(buf, want);
        }

        avk_aggregate_t *agg = avk_aggregate_new();
        struct model m = one("d0000000-0000-4000-8000-000000000001", "2027-03-28T01:30:00.000Z");
        m.ack_deadline = at("2027-03-31T21:00:00.000Z");
        add(agg, &m, 1);
        int64_t now = at("2027-06-01T10:00:00.000Z");
        json_t *s = avk_aggregate_summary(agg, 2027, now), *o = avk_aggregate_overdue(agg, now, 10);
        ck_assert_str_eq(json_string_value(json_object_get(s, "now_local")), "2027-06-01 12:00");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(s, "latest"), 0), "reported_at_local")),
                         "2027-03-28 03:30");
        const json_t *item = json_array_get(json_object_get(o, "items"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(item, "deadline_at_local")),
                         "2027-03-31 23:00");
        ck_assert_str_eq(json_string_value(json_object_get(o, "now_local")), "2027-06-01 12:00");
        char err[128];
        char *html = avk_followup_html(s, o, "body{}", err, sizeof(err));
        ck_assert_msg(html, "%s", err);
        static const char *const shown[] = {"Sammanställd 2027-06-01 12:00 (svensk tid)",
                                            "<td>2027-03-28 03:30</td>",
                                            "Kvittens, 2027-03-31 23:00", "1 avvikelse saknar"};
        for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
                ck_assert_msg(strstr(html, shown[i]), "the report lacks %s", shown[i]);
        ck_assert_msg(!strstr(html, "UTC") && !strstr(html, "00.000Z"), "a time in UTC");
        free(html);
        json_decref(o);
        json_decref(s);
        avk_aggregate_destroy(agg);
}
END_TEST

START_TEST(unusable_record_names_the_field)
{
        avk_aggregate_t *agg = avk_aggregate_new();
        struct model m = one("f0000000-0000-4000-8000-000000000001", "2027-02-10T10:00:00.000Z");
        json_t *doc = record_json(&m, 1);
        json_object_set_new(doc, "receiver_party", json_string("Stockholm"));
        avro_value_t value;
        struct avk_errors errs;
        struct avk_json_opts opts = {0};
        char err[256];
        avk_errors_init(&errs);
        avro_generic_value_new(avk_schema_iface(schema), &value);
        ck_assert_int_eq(avk_json_to_avro(schema, doc, &value, &opts, &errs), 0);
        ck_assert_int_eq(avk_aggregate_add(agg, &value, err, sizeof(err)), -1);
        ck_assert_msg(strncmp(err, "receiver_party: ", 16) == 0, "%s", err);
        ck_assert_int_eq(avk_aggregate_size(agg), 0);
        avro_value_decref(&value);
        json_decref(doc);
        avk_aggregate_destroy(agg);
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("aggregate");
        TCase *tc = tcase_create("aggregate");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, generated_year_matches_independent_counts);
        tcase_add_test(tc, overdue_list_counts_swedish_calendar_days);
        tcase_add_test(tc, newer_state_replaces_the_deviations_contribution);
        tcase_add_test(tc, states_steps_and_subregions_carry_the_labels_staff_use);
        tcase_add_test(tc, same_instant_ranks_by_the_process_order);
        tcase_add_test(tc, percentiles_are_nearest_rank);
        tcase_add_test(tc, months_and_years_are_swedish);
        tcase_add_test(tc, overdue_follows_the_deadline_in_force);
        tcase_add_test(tc, excerpt_is_cut_at_a_character_without_controls);
        tcase_add_test(tc, excerpt_never_shows_a_personal_identity_number);
        tcase_add_test(tc, report_escapes_descriptions);
        tcase_add_test(tc, unusable_record_names_the_field);
        tcase_add_test(tc, clarity_per_sub_agreement_care_setting_and_month);
        tcase_add_test(tc, times_shown_are_swedish_time);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
