/*
 * avk_deadlines: see deadlines.h.
 *
 * As in the routing rules (consumer/route/rules.c), each condition of a rule is a
 * bit mask over its values - parties by their party number (common/contract/party.h),
 * categories and harm levels by their index in the DeviationRouted schema's
 * enums - with 0 for a condition the rule leaves open. A lookup tests each
 * rule with a few AND operations, and the same masks let the loader reject a
 * rule that an earlier one hides.
 */
#include "consumer/track/deadlines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/util/calendar.h"
#include "common/contract/json.h"
#include "common/util/jsondoc.h"
#include "common/contract/party.h"
#include "common/contract/schema.h"

#define RULE_ID_MAX 64 /* DeviationStatus.deadline_rule holds 100 */
#define BECAUSE_MAX 1000
#define SPAN_MAX    365 /* a year: anything longer is a typing error, not a deadline */

/* Lex Maria as a condition: open, or required to be false or true. */
enum { LEX_MARIA_ANY = -1 };

enum field { F_PARTY, F_CATEGORY, F_HARM, FIELD_CNT };

/* The spans of a rule: the key in the file, where it goes, whether it is required. */
static const struct span_def {
        const char *key;
        size_t offset;
        int required;
} span_defs[] = {
    {"acknowledge", offsetof(struct avk_deadline_terms, acknowledge), 1},
    {"answer", offsetof(struct avk_deadline_terms, answer), 1},
    {"remind_before", offsetof(struct avk_deadline_terms, remind_before), 0},
    {"step_answer", offsetof(struct avk_deadline_terms, step_answer), 1},
    {"dispute_window", offsetof(struct avk_deadline_terms, dispute_window), 1},
};
#define SPAN_CNT (sizeof(span_defs) / sizeof(span_defs[0]))

/* The deadlines a reminder precedes: a reminder must fall after the routing day. */
static const char *const reminded[] = {"acknowledge", "answer", "step_answer"};

static const char *const root_keys[] = {"about", "rules", NULL};
static const char *const rule_keys[] = {"id",          "because",        "match",
                                        "acknowledge", "answer",         "remind_before",
                                        "step_answer", "dispute_window", NULL};
static const char *const match_keys[] = {"parties", "categories", "harm_levels",
                                         "possible_lex_maria", NULL};
static const char *const span_keys[] = {"working_days", "days", NULL};

struct rule {
        struct avk_deadline_terms terms; /* rule_id points into the policy's JSON */
        uint64_t mask[FIELD_CNT];
        int lex_maria;      /* LEX_MARIA_ANY, 0 or 1 */
        int has_conditions; /* match names a condition (valid or not) */
        int valid;
};

struct avk_deadlines {
        json_t *root;
        json_t *categories;  /* Category symbols, copied from the schema */
        json_t *harm_levels; /* HarmLevel symbols */
        struct rule *rules;
        size_t cnt;
};

/* ---- loading ---- */

static int load_symbols(avk_deadlines_t *policy, struct avk_jsondoc *doc)
{
        char errstr[256];
        avk_catalog_t *catalog = avk_catalog_new_builtin(errstr, sizeof(errstr));
        const avk_schema_t *routed = avk_catalog_by_name(catalog, "DeviationRouted");
        const json_t *categories, *harm_levels;
        int rc = -1;

        if (catalog == NULL) {
                avk_jsondoc_fail(doc, "cannot load the compiled-in schemas: %s", errstr);
                return -1;
        }
        if (routed == NULL) {
                avk_jsondoc_fail(doc, "the compiled-in schemas lack DeviationRouted");
                goto out;
        }
        categories = avk_jsondoc_enum_symbols(doc, routed, "Category", "categories");
        harm_levels = avk_jsondoc_enum_symbols(doc, routed, "HarmLevel", "harm_levels");
        if (categories == NULL || harm_levels == NULL)
                goto out;
        policy->categories = json_deep_copy(categories);
        policy->harm_levels = json_deep_copy(harm_levels);
        if (policy->categories == NULL || policy->harm_levels == NULL) {
                avk_jsondoc_fail(doc, "out of memory");
                goto out;
        }
        rc = 0;
out:
        avk_catalog_destroy(catalog);
        return rc;
}

/* match.parties: party codes, each once. */
static uint64_t parse_parties(struct avk_jsondoc *doc, json_t *value)
{
        uint64_t mask = 0;
        char reason[256];

        if (!json_is_array(value) || json_array_size(value) == 0) {
                avk_jsondoc_fail(doc,
                                 "expected a non-empty array of parties (\"VGR\" or a "
                                 "municipality code), got %s",
                                 avk_json_type_name(value));
                return 0;
        }
        for (size_t i = 0; i < json_array_size(value); i++) {
                json_t *item = json_array_get(value, i);
                const char *code = json_string_value(item);
                int party = code ? avk_party_parse(code, reason, sizeof(reason)) : -1;

                avk_path_push(&doc->path, NULL, (long)i);
                if (code == NULL)
                        avk_jsondoc_fail(doc, "expected a party code, got %s",
                                         avk_json_type_name(item));
                else if (party < 0)
                        avk_jsondoc_fail(doc, "%s", reason);
                else if (mask & (UINT64_C(1) << party))
                        avk_jsondoc_fail(doc, "\"%s\" is listed twice", code);
                else
                        mask |= UINT64_C(1) << party;
                avk_path_pop(&doc->path);
        }
        return mask;
}

static void parse_match(struct avk_jsondoc *doc, const avk_deadlines_t *policy, json_t *rule_obj,
                        struct rule *r)
{
        json_t *match = json_object_get(rule_obj, "match");
        json_t *value;

        r->lex_maria = LEX_MARIA_ANY;
        if (match == NULL)
                return;
        avk_path_push(&doc->path, "match", 0);
        if (avk_jsondoc_expect_object(doc, match) != 0)
                goto out;
        avk_jsondoc_check_keys(doc, match, match_keys);
        for (size_t i = 0; match_keys[i] != NULL; i++)
                r->has_conditions |= json_object_get(match, match_keys[i]) != NULL;
        if ((value = json_object_get(match, "parties")) != NULL) {
                avk_path_push(&doc->path, "parties", 0);
                r->mask[F_PARTY] = parse_parties(doc, value);
                avk_path_pop(&doc->path);
        }
        if ((value = json_object_get(match, "categories")) != NULL) {
                avk_path_push(&doc->path, "categories", 0);
                r->mask[F_CATEGORY] =
                    avk_jsondoc_symbol_mask(doc, value, policy->categories, "category");
                avk_path_pop(&doc->path);
        }
        if ((value = json_object_get(match, "harm_levels")) != NULL) {
                avk_path_push(&doc->path, "harm_levels", 0);
                r->mask[F_HARM] =
                    avk_jsondoc_symbol_mask(doc, value, policy->harm_levels, "harm level");
                avk_path_pop(&doc->path);
        }
        if (json_object_get(match, "possible_lex_maria") != NULL)
                r->lex_maria = avk_jsondoc_bool(doc, match, "possible_lex_maria", LEX_MARIA_ANY);
out:
        avk_path_pop(&doc->path);
}

/* rule_obj.key: {"working_days": n} or {"days": n}; amount stays 0 when absent. */
static void parse_span(struct avk_jsondoc *doc, json_t *rule_obj, const struct span_def *def,
                       struct avk_deadline_span *span)
{
        json_t *value = json_object_get(rule_obj, def->key);
        json_t *working_days, *days, *amount;

        if (value == NULL) {
                if (def->required)
                        avk_jsondoc_fail_key(doc, def->key,
                                             "is required: {\"working_days\": n} or "
                                             "{\"days\": n}");
                return;
        }
        avk_path_push(&doc->path, def->key, 0);
        if (!json_is_object(value)) {
                avk_jsondoc_fail(doc, "expected {\"working_days\": n} or {\"days\": n}, got %s",
                                 avk_json_type_name(value));
                goto out;
        }
        avk_jsondoc_check_keys(doc, value, span_keys);
        working_days = json_object_get(value, "working_days");
        days = json_object_get(value, "days");
        if ((working_days == NULL) == (days == NULL)) {
                avk_jsondoc_fail(doc, "expected exactly one of working_days and days");
                goto out;
        }
        amount = working_days ? working_days : days;
        if (!json_is_integer(amount) || json_integer_value(amount) < 1 ||
            json_integer_value(amount) > SPAN_MAX) {
                const char *key = working_days ? "working_days" : "days";

                if (json_is_integer(amount))
                        avk_jsondoc_fail_key(doc, key,
                                             "is %lld; a span is a positive number of days, at "
                                             "most %d",
                                             (long long)json_integer_value(amount), SPAN_MAX);
                else
                        avk_jsondoc_fail_key(doc, key, "expected an integer from 1 to %d, got %s",
                                             SPAN_MAX, avk_json_type_name(amount));
                goto out;
        }
        span->amount = (int)json_integer_value(amount);
        span->unit = working_days ? AVK_DEADLINE_WORKING_DAYS : AVK_DEADLINE_CALENDAR_DAYS;
out:
        avk_path_pop(&doc->path);
}

static struct avk_deadline_span *span_of(struct avk_deadline_terms *terms, const char *key)
{
        for (size_t i = 0; i < SPAN_CNT; i++) {
                if (strcmp(span_defs[i].key, key) == 0)
                        return (struct avk_deadline_span *)(void *)((char *)terms +
                                                                    span_defs[i].offset);
        }
        return NULL;
}

/*
 * A reminder as long as the deadline it precedes, or longer, would fall on or
 * before the routing day. Checked where both count the same unit; across
 * units the tracker skips a reminder whose instant has passed.
 */
static void check_reminder(struct avk_jsondoc *doc, struct avk_deadline_terms *terms)
{
        const struct avk_deadline_span *remind = &terms->remind_before;
        char a[40], b[40];

        if (remind->amount == 0)
                return;
        for (size_t i = 0; i < sizeof(reminded) / sizeof(reminded[0]); i++) {
                const struct avk_deadline_span *deadline = span_of(terms, reminded[i]);

                if (deadline->amount == 0 || deadline->unit != remind->unit ||
                    remind->amount < deadline->amount)
                        continue;
                avk_jsondoc_fail_key(doc, "remind_before",
                                     "%s is not shorter than %s (%s): the reminder would fall "
                                     "before the deadline starts to run",
                                     avk_deadline_span_format(remind, a, sizeof(a)), reminded[i],
                                     avk_deadline_span_format(deadline, b, sizeof(b)));
        }
}

static void parse_rule(struct avk_jsondoc *doc, avk_deadlines_t *policy, size_t index)
{
        struct rule *r = &policy->rules[index];
        json_t *obj = json_array_get(json_object_get(policy->root, "rules"), index);
        size_t errors_before = avk_errors_total(doc->errs);
        const char *id, *because;

        snprintf(doc->context, sizeof(doc->context), "rules[%zu]", index);
        if (avk_jsondoc_expect_object(doc, obj) != 0)
                return;
        id = avk_jsondoc_id(doc, obj, "id", "D-", RULE_ID_MAX);
        for (size_t i = 0; id && i < index; i++) {
                if (policy->rules[i].terms.rule_id &&
                    strcmp(policy->rules[i].terms.rule_id, id) == 0) {
                        avk_jsondoc_fail_key(doc, "id", "\"%s\" is already the id of rules[%zu]",
                                             id, i);
                        id = NULL;
                }
        }
        r->terms.rule_id = id;
        if (id)
                snprintf(doc->context, sizeof(doc->context), "rules[%zu] (%s)", index, id);
        avk_jsondoc_check_keys(doc, obj, rule_keys);
        because = avk_jsondoc_string(doc, obj, "because", 1);
        if (because && strlen(because) > BECAUSE_MAX)
                avk_jsondoc_fail_key(doc, "because", "is %zu bytes, at most %d", strlen(because),
                                     BECAUSE_MAX);
        parse_match(doc, policy, obj, r);
        for (size_t i = 0; i < SPAN_CNT; i++)
                parse_span(doc, obj, &span_defs[i], span_of(&r->terms, span_defs[i].key));
        check_reminder(doc, &r->terms);
        r->valid = avk_errors_total(doc->errs) == errors_before;
}

/* Whether a matches every routing that b matches. */
static int covers(const struct rule *a, const struct rule *b)
{
        for (int f = 0; f < FIELD_CNT; f++) {
                if (a->mask[f] == 0)
                        continue;
                if (b->mask[f] == 0 || (b->mask[f] & ~a->mask[f]) != 0)
                        return 0;
        }
        return a->lex_maria == LEX_MARIA_ANY || a->lex_maria == b->lex_maria;
}

/* First match wins: a rule that an earlier one covers is never used; the last must take all. */
static void check_order(struct avk_jsondoc *doc, const avk_deadlines_t *policy)
{
        const struct rule *last = &policy->rules[policy->cnt - 1];

        for (size_t i = 1; i < policy->cnt; i++) {
                const struct rule *b = &policy->rules[i];

                for (size_t j = 0; b->valid && j < i; j++) {
                        const struct rule *a = &policy->rules[j];

                        if (!a->valid || !covers(a, b))
                                continue;
                        snprintf(doc->context, sizeof(doc->context), "rules[%zu] (%s)", i,
                                 b->terms.rule_id);
                        avk_jsondoc_fail(doc,
                                         "can never match: rules[%zu] (%s) comes first and "
                                         "matches every routing this rule matches",
                                         j, a->terms.rule_id);
                        break;
                }
        }
        doc->context[0] = '\0';
        if (last->has_conditions)
                avk_jsondoc_fail_key(doc, "rules",
                                     "the last rule, rules[%zu] (%s), has match conditions; the "
                                     "last rule must have none, so that every routing finds "
                                     "deadlines",
                                     policy->cnt - 1, last->terms.rule_id);
}

avk_deadlines_t *avk_deadlines_load(const char *path, struct avk_errors *errs)
{
        struct avk_jsondoc doc;
        size_t errors_before = avk_errors_total(errs);
        avk_deadlines_t *policy = calloc(1, sizeof(*policy));
        json_t *list;

        avk_jsondoc_init(&doc, path, errs);
        if (policy == NULL) {
                avk_errors_add(errs, path, "out of memory");
                return NULL;
        }
        if (load_symbols(policy, &doc) != 0)
                goto out;
        policy->root = avk_jsondoc_load(&doc);
        if (policy->root == NULL || avk_jsondoc_expect_object(&doc, policy->root) != 0)
                goto out;
        avk_jsondoc_check_keys(&doc, policy->root, root_keys);
        avk_jsondoc_string(&doc, policy->root, "about", 0);

        list = avk_jsondoc_nonempty_array(&doc, policy->root, "rules");
        if (list == NULL)
                goto out;
        policy->cnt = json_array_size(list);
        policy->rules = calloc(policy->cnt, sizeof(*policy->rules));
        if (policy->rules == NULL) {
                avk_errors_add(errs, path, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < policy->cnt; i++)
                parse_rule(&doc, policy, i);
        doc.context[0] = '\0';
        check_order(&doc, policy);
out:
        if (avk_errors_total(errs) != errors_before) {
                avk_deadlines_destroy(policy);
                return NULL;
        }
        return policy;
}

void avk_deadlines_destroy(avk_deadlines_t *policy)
{
        if (policy == NULL)
                return;
        free(policy->rules);
        json_decref(policy->categories);
        json_decref(policy->harm_levels);
        json_decref(policy->root);
        free(policy);
}

size_t avk_deadlines_cnt(const avk_deadlines_t *policy)
{
        return policy->cnt;
}

/* ---- lookup ---- */

static int matches(const struct rule *r, const int idx[FIELD_CNT], int lex_maria)
{
        for (int f = 0; f < FIELD_CNT; f++) {
                if (r->mask[f] == 0)
                        continue;
                if (idx[f] < 0 || !(r->mask[f] & (UINT64_C(1) << idx[f])))
                        return 0;
        }
        return r->lex_maria == LEX_MARIA_ANY || r->lex_maria == lex_maria;
}

const struct avk_deadline_terms *avk_deadlines_lookup(const avk_deadlines_t *policy,
                                                      const char *party, const char *category,
                                                      const char *harm, int lex_maria)
{
        char reason[256];
        int idx[FIELD_CNT];

        idx[F_PARTY] = party ? avk_party_parse(party, reason, sizeof(reason)) : -1;
        idx[F_CATEGORY] = avk_jsondoc_symbol_index(policy->categories, category);
        idx[F_HARM] = avk_jsondoc_symbol_index(policy->harm_levels, harm);
        for (size_t i = 0; i + 1 < policy->cnt; i++) {
                if (matches(&policy->rules[i], idx, lex_maria != 0))
                        return &policy->rules[i].terms;
        }
        return &policy->rules[policy->cnt - 1].terms;
}

/* ---- spans on the calendar ---- */

int64_t avk_deadline_after(const struct avk_deadline_span *span, int64_t from_ms)
{
        if (span->amount <= 0)
                return AVK_DEADLINE_NEVER;
        if (span->unit == AVK_DEADLINE_WORKING_DAYS)
                return avk_calendar_add_working_days(from_ms, span->amount);
        return avk_calendar_add_days(from_ms, span->amount);
}

int64_t avk_deadline_before(const struct avk_deadline_span *span, int64_t deadline_ms)
{
        if (span->amount <= 0 || deadline_ms == AVK_DEADLINE_NEVER)
                return AVK_DEADLINE_NEVER;
        if (span->unit == AVK_DEADLINE_WORKING_DAYS)
                return avk_calendar_sub_working_days(deadline_ms, span->amount);
        return avk_calendar_sub_days(deadline_ms, span->amount);
}

const char *avk_deadline_span_format(const struct avk_deadline_span *span, char *buf, size_t size)
{
        if (span->amount <= 0)
                snprintf(buf, size, "none");
        else
                snprintf(buf, size, "%d %sday%s", span->amount,
                         span->unit == AVK_DEADLINE_WORKING_DAYS ? "working " : "",
                         span->amount == 1 ? "" : "s");
        return buf;
}
