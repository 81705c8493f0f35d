/*
 * avk_deadlines: see deadlines.h.
 *
 * The policy is a rule table (common/contract/ruletable.h), as the routing
 * rules are: its conditions are the receiving party, the DeviationRouted
 * schema's Category and HarmLevel, and the possible-Lex-Maria flag; this file
 * reads what only the policy has - the spans and their reminders.
 */
#include "consumer/track/deadlines.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/contract/json.h"
#include "common/contract/ruletable.h"
#include "common/contract/schema.h"
#include "common/util/calendar.h"
#include "common/util/jsondoc.h"

#define BECAUSE_MAX 1000
#define SPAN_MAX    365 /* a year: anything longer is a typing error, not a deadline */

enum condition { C_PARTY, C_CATEGORY, C_HARM, C_LEX_MARIA, CONDITION_CNT };

/* The conditions of a rule's "match", in enum condition's order. */
static const struct avk_ruletable_condition conditions[CONDITION_CNT] = {
    {"parties", AVK_RULETABLE_PARTY, NULL, NULL, NULL},
    {"categories", AVK_RULETABLE_ENUM, "category", "Category", NULL},
    {"harm_levels", AVK_RULETABLE_ENUM, "harm level", "HarmLevel", NULL},
    {"possible_lex_maria", AVK_RULETABLE_BOOL, NULL, NULL, NULL},
};

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
static const char *const span_keys[] = {"working_days", "days", NULL};

struct avk_deadlines {
        avk_ruletable_t *table; /* each rule's terms a struct avk_deadline_terms */
};

/* ---- loading ---- */

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

static void parse_terms(struct avk_jsondoc *doc, json_t *rule_obj, const char *id, void *arg_terms,
                        void *arg)
{
        struct avk_deadline_terms *terms = arg_terms;
        const char *because = avk_jsondoc_string(doc, rule_obj, "because", 1);

        (void)arg;
        terms->rule_id = id;
        if (because && strlen(because) > BECAUSE_MAX)
                avk_jsondoc_fail_key(doc, "because", "is %zu bytes, at most %d", strlen(because),
                                     BECAUSE_MAX);
        for (size_t i = 0; i < SPAN_CNT; i++)
                parse_span(doc, rule_obj, &span_defs[i], span_of(terms, span_defs[i].key));
        check_reminder(doc, terms);
}

static const struct avk_ruletable_def table_def = {
    .id_prefix = "D-",
    .subject = "routing",
    .conditions_key = "match",
    .order = AVK_RULETABLE_CATCH_ALL,
    .found = "deadlines",
    .conditions = conditions,
    .condition_cnt = CONDITION_CNT,
    .root_keys = root_keys,
    .rule_keys = rule_keys,
    .terms_size = sizeof(struct avk_deadline_terms),
    .parse_terms = parse_terms,
};

avk_deadlines_t *avk_deadlines_load(const char *path, struct avk_errors *errs)
{
        char errstr[256];
        avk_catalog_t *catalog = avk_catalog_new_builtin(errstr, sizeof(errstr));
        const avk_schema_t *routed = avk_catalog_by_name(catalog, "DeviationRouted");
        avk_deadlines_t *policy = NULL;

        if (catalog == NULL) {
                avk_errors_add(errs, path, "cannot load the compiled-in schemas: %s", errstr);
                return NULL;
        }
        if (routed == NULL) {
                avk_errors_add(errs, path, "the compiled-in schemas lack DeviationRouted");
                goto out;
        }
        policy = calloc(1, sizeof(*policy));
        if (policy == NULL) {
                avk_errors_add(errs, path, "out of memory");
                goto out;
        }
        policy->table = avk_ruletable_load(&table_def, path, routed, NULL, errs);
        if (policy->table == NULL) {
                free(policy);
                policy = NULL;
        }
out:
        avk_catalog_destroy(catalog);
        return policy;
}

void avk_deadlines_destroy(avk_deadlines_t *policy)
{
        if (policy == NULL)
                return;
        avk_ruletable_destroy(policy->table);
        free(policy);
}

size_t avk_deadlines_cnt(const avk_deadlines_t *policy)
{
        return avk_ruletable_cnt(policy->table);
}

/* ---- lookup ---- */

const struct avk_deadline_terms *avk_deadlines_lookup(const avk_deadlines_t *policy,
                                                      const char *party, const char *category,
                                                      const char *harm, int lex_maria)
{
        struct avk_ruletable_query q;

        avk_ruletable_query_init(&q);
        avk_ruletable_query_set(policy->table, &q, C_PARTY, party);
        avk_ruletable_query_set(policy->table, &q, C_CATEGORY, category);
        avk_ruletable_query_set(policy->table, &q, C_HARM, harm);
        avk_ruletable_query_set_bool(&q, C_LEX_MARIA, lex_maria != 0);
        /* The last rule names no condition, so a rule is always found. */
        return avk_ruletable_terms(policy->table, avk_ruletable_first(policy->table, &q, 0));
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
