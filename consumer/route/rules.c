/*
 * avk_rules: see rules.h.
 *
 * The rules are a rule table (common/contract/ruletable.h) over the enums of
 * the DeviationReported schema and the reporting side; this file reads what
 * only routing has - the clause a rule rests on, the party it names, the hop
 * bound - and makes the decision.
 */
#include "consumer/route/rules.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/contract/agreement.h"
#include "common/contract/municipality.h"
#include "common/contract/ruletable.h"
#include "common/contract/schema_enum.h"
#include "common/util/jsondoc.h"

#define MAX_REROUTES_MAX 10
#define DOCUMENT_MAX     160
#define SECTION_MAX      160
#define QUOTE_MAX        300
#define SOURCE_MAX       100
#define RULE_REASON_MAX  400

/* The reporting side, the side of the location, and the party a rule names
 * (which may also be TRIAGE: no party alone answers). */
enum side { SIDE_REGION, SIDE_MUNICIPALITY, SIDE_CNT, SIDE_TRIAGE = SIDE_CNT };
static const char *const side_names[SIDE_CNT + 1] = {"REGION", "MUNICIPALITY", NULL};

/* The agreement periods, chosen by occurred_at. */
enum period { PERIOD_UNTIL_2026, PERIOD_FROM_2027, PERIOD_CNT };
static const char *const period_names[PERIOD_CNT + 1] = {"UNTIL_2026", "FROM_2027", NULL};

/* The care settings only one side runs (docs/routing.md, "Location and care setting"); the
 * others (HVB_HOME, ORDINARY_HOUSING, OTHER) belong to neither. */
static const char *const region_settings[] = {
    "INPATIENT", "OUTPATIENT_CLINIC", "REGION_PRIMARY_CARE",   "REGION_PRIMARY_CARE_HOME_VISIT",
    "EMERGENCY", "PREHOSPITAL",       "SPECIALISED_HOME_CARE", "DENTAL",
    NULL};
static const char *const municipal_settings[] = {
    "HOME_HEALTH_CARE", "SPECIAL_HOUSING", "HOUSING_WITH_SPECIAL_SERVICE",
    "DAY_ACTIVITY",     "SHORT_TERM_STAY", NULL};

enum field {
        F_REPORTER,
        F_CATEGORY,
        F_CARE_SETTING,
        F_COMPETENCE,
        F_HOME_VISITS,
        F_AGREEMENT,
        F_EVENT_CLASS,
        F_HARM_LEVEL,
        F_LOCATION,
        F_PERIOD,
        FIELD_CNT
};

/* The conditions a rule may name, in enum field's order: the key in "when"
 * and the schema enum its symbols come from (a fixed list for the reporting
 * side). */
static const struct avk_ruletable_condition conditions[FIELD_CNT] = {
    {"reporter", AVK_RULETABLE_SYMBOLS, "reporter", NULL, side_names},
    {"category", AVK_RULETABLE_ENUM, "category", "Category", NULL},
    {"care_setting", AVK_RULETABLE_ENUM, "care_setting", "CareSetting", NULL},
    {"competence", AVK_RULETABLE_ENUM, "competence", "Competence", NULL},
    {"home_visits", AVK_RULETABLE_ENUM, "home_visits", "HomeVisits", NULL},
    {"agreement", AVK_RULETABLE_ENUM, "agreement", "Agreement", NULL},
    {"event_class", AVK_RULETABLE_ENUM, "event_class", "EventClass", NULL},
    {"harm_level", AVK_RULETABLE_ENUM, "harm_level", "HarmLevel", NULL},
    {"location", AVK_RULETABLE_SYMBOLS, "location", NULL, side_names},
    {"period", AVK_RULETABLE_SYMBOLS, "period", NULL, period_names},
};

/* Where the deviation's symbol of each condition is in the input (none for the reporting side,
 * the location and the period: they are derived). */
static const size_t input_offsets[FIELD_CNT] = {
    0,
    offsetof(struct avk_rules_input, category),
    offsetof(struct avk_rules_input, care_setting),
    offsetof(struct avk_rules_input, competence),
    offsetof(struct avk_rules_input, home_visits),
    offsetof(struct avk_rules_input, agreement),
    offsetof(struct avk_rules_input, event_class),
    offsetof(struct avk_rules_input, harm_level),
    0,
    0,
};

static const char *const root_keys[] = {"about", "max_reroutes", "rules", NULL};
static const char *const rule_keys[] = {"id", "clause", "when", "then", NULL};
static const char *const clause_keys[] = {"document", "source", "section", "quote", NULL};
static const char *const then_keys[] = {"party", "basis", "reason", NULL};

/* What a rule of the table decides: strings point into the table's JSON. */
struct rule_terms {
        enum side party;
        enum avk_rules_basis basis;
        const char *reason;
        const char *document, *source, *section, *quote;
};

struct avk_rules {
        avk_ruletable_t *table;
        int max_reroutes;
};

/* ---- loading ---- */

/* obj.key, a string of at most max bytes; NULL after an error. */
static const char *get_text(struct avk_jsondoc *doc, json_t *obj, const char *key, size_t max)
{
        const char *s = avk_jsondoc_string(doc, obj, key, 1);

        if (s && strlen(s) > max) {
                avk_jsondoc_fail_key(doc, key, "is %zu bytes, at most %zu", strlen(s), max);
                return NULL;
        }
        return s;
}

static void parse_clause(struct avk_jsondoc *doc, json_t *rule_obj, struct rule_terms *r)
{
        json_t *clause = json_object_get(rule_obj, "clause");

        if (clause == NULL) {
                avk_jsondoc_fail_key(doc, "clause",
                                     "is required: the document, source, section and quote of "
                                     "the agreement the rule rests on");
                return;
        }
        avk_path_push(&doc->path, "clause", 0);
        if (avk_jsondoc_expect_object(doc, clause) == 0) {
                avk_jsondoc_check_keys(doc, clause, clause_keys);
                r->document = get_text(doc, clause, "document", DOCUMENT_MAX);
                r->source = get_text(doc, clause, "source", SOURCE_MAX);
                r->section = get_text(doc, clause, "section", SECTION_MAX);
                r->quote = get_text(doc, clause, "quote", QUOTE_MAX);
        }
        avk_path_pop(&doc->path);
}

/* obj.key, one of names (NULL-terminated): its index, or -1 after an error saying it is what_not.
 */
static int parse_symbol(struct avk_jsondoc *doc, json_t *obj, const char *key,
                        const char *const *names, const char *what_not)
{
        const char *value = avk_jsondoc_string(doc, obj, key, 1);

        for (int i = 0; value != NULL && names[i] != NULL; i++) {
                if (strcmp(value, names[i]) == 0)
                        return i;
        }
        if (value != NULL)
                avk_jsondoc_fail_key(doc, key, "\"%s\" is %s", value, what_not);
        return -1;
}

static void parse_then(struct avk_jsondoc *doc, json_t *rule_obj, struct rule_terms *r)
{
        /* In enum side's and enum avk_rules_basis's orders. */
        static const char *const parties[] = {"REGION", "MUNICIPALITY", "TRIAGE", NULL};
        static const char *const bases[] = {"TEXT", "INFERENCE", NULL};
        json_t *then = json_object_get(rule_obj, "then");
        int party, basis;

        if (then == NULL) {
                avk_jsondoc_fail_key(
                    doc, "then", "is required: {\"party\": ..., \"basis\": ..., \"reason\": ...}");
                return;
        }
        avk_path_push(&doc->path, "then", 0);
        if (avk_jsondoc_expect_object(doc, then) == 0) {
                avk_jsondoc_check_keys(doc, then, then_keys);
                party = parse_symbol(doc, then, "party", parties,
                                     "neither REGION (VGR), MUNICIPALITY (the patient's "
                                     "municipality) nor TRIAGE");
                basis = parse_symbol(doc, then, "basis", bases,
                                     "neither TEXT (the clause says it) nor INFERENCE (avvik's "
                                     "reading of it)");
                if (party >= 0)
                        r->party = (enum side)party;
                if (basis >= 0)
                        r->basis = (enum avk_rules_basis)basis;
                r->reason = get_text(doc, then, "reason", RULE_REASON_MAX);
        }
        avk_path_pop(&doc->path);
}

static void parse_terms(struct avk_jsondoc *doc, json_t *rule_obj, const char *id, void *terms,
                        void *arg)
{
        (void)id;
        (void)arg;
        parse_clause(doc, rule_obj, terms);
        parse_then(doc, rule_obj, terms);
}

static void parse_max_reroutes(struct avk_jsondoc *doc, json_t *root, void *arg)
{
        avk_rules_t *rules = arg;
        json_t *value = json_object_get(root, "max_reroutes");

        if (value == NULL) {
                avk_jsondoc_fail_key(doc, "max_reroutes",
                                     "is required: the re-routings allowed before the county "
                                     "coordinator triages by hand");
        } else if (!json_is_integer(value) || json_integer_value(value) < 1 ||
                   json_integer_value(value) > MAX_REROUTES_MAX) {
                avk_jsondoc_fail_key(doc, "max_reroutes", "expected an integer from 1 to %d",
                                     MAX_REROUTES_MAX);
        } else {
                rules->max_reroutes = (int)json_integer_value(value);
        }
}

static const struct avk_ruletable_def table_def = {
    .id_prefix = "R-",
    .subject = "deviation",
    .conditions_key = "when",
    .order = AVK_RULETABLE_NARROW,
    .conditions = conditions,
    .condition_cnt = FIELD_CNT,
    .root_keys = root_keys,
    .rule_keys = rule_keys,
    .terms_size = sizeof(struct rule_terms),
    .parse_root = parse_max_reroutes,
    .parse_terms = parse_terms,
};

avk_rules_t *avk_rules_load(const char *path, const avk_schema_t *reported, struct avk_errors *errs)
{
        avk_rules_t *rules = calloc(1, sizeof(*rules));

        if (rules == NULL) {
                avk_errors_add(errs, path, "out of memory");
                return NULL;
        }
        rules->table = avk_ruletable_load(&table_def, path, reported, rules, errs);
        if (rules->table == NULL) {
                free(rules);
                return NULL;
        }
        return rules;
}

void avk_rules_destroy(avk_rules_t *rules)
{
        if (rules == NULL)
                return;
        avk_ruletable_destroy(rules->table);
        free(rules);
}

size_t avk_rules_cnt(const avk_rules_t *rules)
{
        return avk_ruletable_cnt(rules->table);
}

int avk_rules_max_reroutes(const avk_rules_t *rules)
{
        return rules->max_reroutes;
}

const char *avk_rules_decision_symbol(enum avk_rules_decision_kind kind)
{
        const struct avk_schema_enum *decisions = avk_schema_enum("RoutingDecision");

        return decisions && (size_t)kind < decisions->cnt ? decisions->symbols[kind] : NULL;
}

/* ---- the reason ---- */

/* The reason being written: always valid UTF-8, cut at a character when full. */
struct text {
        char *buf;
        size_t size;
        size_t len;
        int full;
};

/* Appends s[0..n), cut at a character when full: s[n] is never inside a character. */
static void text_put(struct text *t, const char *s, size_t n)
{
        size_t room;

        if (t->full)
                return;
        room = t->size - 1 - t->len;
        if (n > room) {
                /* s[n] is the first byte left out: never one inside a character. */
                n = room;
                while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
                        n--;
                t->full = 1;
        }
        memcpy(t->buf + t->len, s, n);
        t->len += n;
        t->buf[t->len] = '\0';
}

/*
 * Appends each string up to the NULL that ends the list. The sentences made
 * for every record are put together this way, from the rules' and the
 * directory's prepared text, without formatting (docs/router.md, "Throughput").
 */
static void text_cat(struct text *t, ...) __attribute__((sentinel));

static void text_cat(struct text *t, ...)
{
        va_list ap;

        va_start(ap, t);
        for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *))
                text_put(t, s, strlen(s));
        va_end(ap);
}

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
        char part[AVK_RULES_REASON_SIZE * 2];
        va_list ap;
        int written;

        if (t->full)
                return;
        va_start(ap, fmt);
        written = vsnprintf(part, sizeof(part), fmt, ap);
        va_end(ap);
        if (written < 0)
                return;
        text_put(t, part, strlen(part));
}

/* An empty text over buf of size. */
static struct text text_over(char *buf, size_t size)
{
        buf[0] = '\0';
        return (struct text){.buf = buf, .size = size};
}

/* ---- deciding ---- */

/* One decision being made. */
struct route {
        const avk_rules_t *rules;
        const avk_directory_t *dir;
        const struct avk_rules_input *in;
        const struct avk_rules_rejection *rejection; /* NULL for the first routing */
        const char *location_side;        /* side of location.party; NULL when unknown or own */
        const char *agreement;            /* the input's, or derived from the category */
        int agreement_derived;            /* agreement was UNKNOWN and the category decided it */
        struct avk_ruletable_query query; /* the input's symbols as indexes */
        int rule_matched;                 /* some rule matched, usable or not */
        struct text reason;
        struct avk_rules_decision *out;
};

static const char *side_of(const char *party)
{
        if (party == NULL)
                return NULL;
        if (strcmp(party, "VGR") == 0)
                return side_names[SIDE_REGION];
        return avk_municipality_find(party) ? side_names[SIDE_MUNICIPALITY] : NULL;
}

static int listed(const char *const *list, const char *symbol)
{
        for (; symbol != NULL && *list != NULL; list++) {
                if (strcmp(*list, symbol) == 0)
                        return 1;
        }
        return 0;
}

static const char *input_symbol(const struct route *rt, int f)
{
        const struct avk_rules_input *in = rt->in;

        switch (f) {
        case F_REPORTER:
                return side_of(in->reporter_party);
        case F_LOCATION:
                return rt->location_side;
        case F_PERIOD:
                if (in->occurred_at_ms == 0)
                        return NULL;
                return period_names[in->occurred_at_ms < AVK_AGREEMENT_2027_FROM_MS
                                        ? PERIOD_UNTIL_2026
                                        : PERIOD_FROM_2027];
        case F_AGREEMENT:
                return rt->agreement;
        default:
                return *(const char *const *)(const void *)((const char *)in + input_offsets[f]);
        }
}

/* "Göteborg (1480)". */
static const char *label(const struct avk_directory_party *p, char *buf, size_t size)
{
        snprintf(buf, size, "%s (%s)", p->name, p->code);
        return buf;
}

/* "Göteborg (1480)" when the directory knows the party, else its code. */
static const char *label_code(const struct route *rt, const char *code, char *buf, size_t size)
{
        const struct avk_directory_party *p = avk_directory_party(rt->dir, code);

        if (p != NULL)
                return label(p, buf, size);
        snprintf(buf, size, "%s", code ? code : "(ingen)");
        return buf;
}

static int is_reporter(const struct route *rt, const char *code)
{
        return rt->in->reporter_party && strcmp(rt->in->reporter_party, code) == 0;
}

static int is_excluded(const struct route *rt, const char *code)
{
        const struct avk_rules_rejection *rej = rt->rejection;

        if (is_reporter(rt, code))
                return 1;
        if (rej == NULL)
                return 0;
        if (rej->rejecting_party && strcmp(rej->rejecting_party, code) == 0)
                return 1;
        for (size_t i = 0; i < rej->earlier_rejecting_cnt; i++) {
                if (rej->earlier_rejecting[i] && strcmp(rej->earlier_rejecting[i], code) == 0)
                        return 1;
        }
        return 0;
}

/* The agreement the rules read: the reporter's, or the category's when it is UNKNOWN. */
static void derive_agreement(struct route *rt)
{
        const struct avk_rules_input *in = rt->in;
        rt->agreement = avk_agreement_of(in->agreement, in->category, in->occurred_at_ms,
                                         &rt->agreement_derived);
}

/*
 * Where the event happened, when the reporter names another party than its
 * own there: a hurried reporter puts its own unit in location. A care setting
 * of the other side is a contradiction the reporter can see: the location is
 * followed, and the routed event says so.
 */
static void read_location(struct route *rt)
{
        const struct avk_rules_input *in = rt->in;
        const char *setting = in->care_setting;
        int other_side;

        /* After the party where it happened has rejected it, the location no longer points. */
        if (in->location_party == NULL || is_reporter(rt, in->location_party) ||
            is_excluded(rt, in->location_party))
                return;
        rt->location_side = side_of(in->location_party);
        if (rt->location_side == NULL)
                return;
        other_side = rt->location_side == side_names[SIDE_REGION]
                         ? listed(municipal_settings, setting)
                         : listed(region_settings, setting);
        if (other_side) {
                rt->out->location_contradicts = 1;
                text_add(&rt->reason,
                         "Vårdformen %s hör till den andra parten än platsen där händelsen "
                         "inträffade (%s); platsen följs. ",
                         setting, in->location_party);
        }
}

static void route_init(struct route *rt, const avk_rules_t *rules, const avk_directory_t *dir,
                       const struct avk_rules_input *in,
                       const struct avk_rules_rejection *rejection, int hop,
                       struct avk_rules_decision *out)
{
        memset(rt, 0, sizeof(*rt));
        memset(out, 0, sizeof(*out));
        rt->rules = rules;
        rt->dir = dir;
        rt->in = in;
        rt->rejection = rejection;
        rt->out = out;
        rt->reason.buf = out->reason;
        rt->reason.size = sizeof(out->reason);
        out->hop = hop;
        out->basis = AVK_RULES_BASIS_LOCAL_POLICY;
        derive_agreement(rt);
        read_location(rt);
        avk_ruletable_query_init(&rt->query);
        for (int f = 0; f < FIELD_CNT; f++)
                avk_ruletable_query_set(rules->table, &rt->query, (size_t)f, input_symbol(rt, f));
}

/* Copies src into dst of size, cut at a character to fit. */
static void set_text(char *dst, size_t size, const char *src)
{
        struct text t = text_over(dst, size);

        text_put(&t, src, strlen(src));
}

static void finish(struct route *rt, enum avk_rules_decision_kind kind, const char *rule_id,
                   const struct avk_directory_party *party, const struct avk_directory_unit *unit)
{
        rt->out->kind = kind;
        set_text(rt->out->rule_id, sizeof(rt->out->rule_id), rule_id);
        set_text(rt->out->receiver_party, sizeof(rt->out->receiver_party), party->code);
        set_text(rt->out->receiver_unit_hsa_id, sizeof(rt->out->receiver_unit_hsa_id),
                 unit ? unit->hsa_id : "");
}

/* The unit where the event happened, when it is one of party's: the deviation goes there. */
static const struct avk_directory_unit *location_unit(struct route *rt,
                                                      const struct avk_directory_party *party)
{
        const struct avk_directory_unit *u =
            avk_directory_unit(rt->dir, rt->in->location_unit_hsa_id);

        if (u == NULL || u->party != party)
                return NULL;
        text_cat(&rt->reason, " Enhet: ", u->name, " (", u->hsa_id, "), där händelsen inträffade.",
                 NULL);
        return u;
}

/*
 * A receiver someone named: who is "Rapportören", or the party that rejected
 * the deviation. A unit without a party stands for its own party. Returns 1
 * when out is filled, 0 (and a sentence saying why) when it cannot be used.
 */
static int take_named(struct route *rt, const char *party_code, const char *unit_hsa_id,
                      enum avk_rules_decision_kind kind, const char *rule_id, const char *who)
{
        const struct avk_directory_unit *unit = avk_directory_unit(rt->dir, unit_hsa_id);
        const struct avk_directory_party *party;
        /* why holds a unit name (up to 128), its HSA-id and two party labels whole. */
        char why[768] = "", buf[160], other[160];

        if (party_code == NULL && unit != NULL)
                party_code = unit->party->code;
        party = avk_directory_party(rt->dir, party_code);
        if (party_code == NULL)
                snprintf(why, sizeof(why),
                         "enheten %s finns inte i partskatalogen och ingen part angavs",
                         unit_hsa_id);
        else if (party == NULL)
                snprintf(why, sizeof(why), "parten \"%s\" finns inte i partskatalogen", party_code);
        else if (is_reporter(rt, party->code))
                snprintf(why, sizeof(why),
                         "%s är den rapporterande parten, och en avvikelse i samverkan går "
                         "till en annan part",
                         label(party, buf, sizeof(buf)));
        else if (is_excluded(rt, party->code))
                snprintf(why, sizeof(why), "%s har redan svarat fel mottagare",
                         label(party, buf, sizeof(buf)));
        else if (unit != NULL && unit->party != party)
                snprintf(why, sizeof(why), "enheten %s (%s) hör till %s, inte till %s", unit->name,
                         unit->hsa_id, label(unit->party, other, sizeof(other)),
                         label(party, buf, sizeof(buf)));
        if (why[0] != '\0') {
                text_add(&rt->reason, "%s angav en mottagare som inte kan användas: %s. ", who,
                         why);
                return 0;
        }
        text_add(&rt->reason, "%s angav %s som mottagare.", who, label(party, buf, sizeof(buf)));
        if (unit != NULL)
                text_add(&rt->reason, " Enhet: %s (%s).", unit->name, unit->hsa_id);
        else if (unit_hsa_id != NULL)
                text_add(&rt->reason,
                         " Den angivna enheten %s finns inte i partskatalogen; partens "
                         "samordnare tar emot den.",
                         unit_hsa_id);
        else
                unit = location_unit(rt, party);
        finish(rt, kind, rule_id, party, unit);
        return 1;
}

/* "competence NURSE, care_setting HOME_HEALTH_CARE": the input's values the rule tested. */
static void add_matched_values(const struct route *rt, size_t rule, struct text *t)
{
        const char *sep = "";

        for (int f = 0; f < FIELD_CNT; f++) {
                if (avk_ruletable_names(rt->rules->table, rule, (size_t)f)) {
                        text_cat(t, sep, conditions[f].key, " ", input_symbol(rt, f),
                                 f == F_AGREEMENT && rt->agreement_derived
                                     ? " (härlett ur kategorin)"
                                     : "",
                                 NULL);
                        sep = ", ";
                }
        }
}

/* Every value the deviation gave, for a sentence saying that no rule took it. */
static void add_input_values(const struct route *rt, struct text *t)
{
        const char *sep = "";

        for (int f = 0; f < FIELD_CNT; f++) {
                const char *value = input_symbol(rt, f);

                if (value != NULL) {
                        text_cat(t, sep, conditions[f].key, " ", value, NULL);
                        sep = ", ";
                }
        }
}

/* "Regel R-A, R-B gäller, men ...": the rules passed over, and why. */
static void note_passed(struct route *rt, const char *ids, size_t cnt, const char *why)
{
        if (cnt > 0)
                text_add(&rt->reason, "%s %s gäller, men %s. ", cnt == 1 ? "Regel" : "Reglerna",
                         ids, why);
}

/* The rules passed over: those against the location, then those naming an excluded party. */
static void note_passed_over(struct route *rt, const char *elsewhere, size_t elsewhere_cnt,
                             const char *excluded, size_t excluded_cnt)
{
        note_passed(rt, elsewhere, elsewhere_cnt, "strider mot platsen där händelsen inträffade");
        note_passed(rt, excluded, excluded_cnt,
                    "pekar ut den rapporterande parten eller en part som redan svarat fel "
                    "mottagare");
}

/* Adds id to the list ids of cnt rule ids. */
static void list_add(char *ids, size_t size, size_t *cnt, const char *id)
{
        size_t len = strlen(ids);

        if (len < size)
                snprintf(ids + len, size - len, "%s%s", *cnt ? ", " : "", id);
        (*cnt)++;
}

static void add_clause(struct route *rt, const struct rule_terms *r)
{
        text_cat(&rt->reason, " Klausul: ", r->document, ", \"", r->section, "\": \"", r->quote,
                 "\".", NULL);
}

static int take_triage(struct route *rt, const char *why_no_party);

/* The first rule that matches and names a usable party. Returns 1 when out is filled. */
static int take_rule(struct route *rt, enum avk_rules_decision_kind kind)
{
        const struct avk_rules_input *in = rt->in;
        const avk_ruletable_t *table = rt->rules->table;
        size_t cnt = avk_ruletable_cnt(table);
        char excluded[400] = "", elsewhere[400] = "", why[600];
        size_t excluded_cnt = 0, elsewhere_cnt = 0;

        for (size_t i = avk_ruletable_first(table, &rt->query, 0); i < cnt;
             i = avk_ruletable_first(table, &rt->query, i + 1)) {
                const struct rule_terms *r = avk_ruletable_terms(table, i);
                const char *id = avk_ruletable_id(table, i);
                const char *code = r->party == SIDE_REGION ? "VGR" : in->municipality_code;
                const struct avk_directory_party *party = avk_directory_party(rt->dir, code);

                rt->rule_matched = 1;
                if (r->party == SIDE_TRIAGE) {
                        note_passed_over(rt, elsewhere, elsewhere_cnt, excluded, excluded_cnt);
                        struct text why_text = text_over(why, sizeof(why));

                        text_cat(&why_text, "Regel ", id, " gäller (", NULL);
                        add_matched_values(rt, i, &why_text);
                        text_cat(&why_text, "): ", r->reason, NULL);
                        if (!take_triage(rt, why))
                                return 0;
                        set_text(rt->out->rule_id, sizeof(rt->out->rule_id), id);
                        rt->out->basis = r->basis;
                        add_clause(rt, r);
                        return 1;
                }
                if (rt->location_side && rt->location_side != side_names[r->party]) {
                        list_add(elsewhere, sizeof(elsewhere), &elsewhere_cnt, id);
                } else if (code == NULL) {
                        text_add(&rt->reason,
                                 "Regel %s gäller, men avvikelsen anger ingen kommun. ", id);
                } else if (party == NULL) {
                        text_add(&rt->reason,
                                 "Regel %s gäller, men parten %s finns inte i partskatalogen. ", id,
                                 code);
                } else if (is_excluded(rt, code)) {
                        list_add(excluded, sizeof(excluded), &excluded_cnt, id);
                } else {
                        note_passed_over(rt, elsewhere, elsewhere_cnt, excluded, excluded_cnt);
                        text_cat(&rt->reason, "Regel ", id, " gäller (", NULL);
                        add_matched_values(rt, i, &rt->reason);
                        text_cat(&rt->reason, "): ", r->reason, " Mottagare: ", party->name, " (",
                                 party->code, ").", NULL);
                        finish(rt, kind, id, party, location_unit(rt, party));
                        rt->out->basis = r->basis;
                        add_clause(rt, r);
                        return 1;
                }
        }
        note_passed_over(rt, elsewhere, elsewhere_cnt, excluded, excluded_cnt);
        return 0;
}

/*
 * The coordinator of the most likely party triages, after why_no_party (NULL:
 * no rule named a usable party). A deviation in collaboration is about another
 * party than the reporter's: first the party where the event happened when
 * that is not the reporter, then the reporter's counterpart (VGR for a
 * municipality, the patient's municipality for VGR). After a rejection has
 * excluded those, the other side of the agreement remains. Returns 1 when out
 * is filled.
 */
static int take_triage(struct route *rt, const char *why_no_party)
{
        const struct avk_rules_input *in = rt->in;
        int region_reports = side_of(in->reporter_party) == side_names[SIDE_REGION];
        struct {
                const char *code;
                const char *why;
        } candidates[3];
        size_t cnt = 0;
        char values[400];

        if (in->location_party &&
            (in->reporter_party == NULL || strcmp(in->location_party, in->reporter_party) != 0)) {
                candidates[cnt].code = in->location_party;
                candidates[cnt++].why = "parten där händelsen inträffade";
        }
        candidates[cnt].code = region_reports ? in->municipality_code : "VGR";
        candidates[cnt++].why = region_reports
                                    ? "patientens kommun, motpart till den rapporterande regionen"
                                    : "regionen, motpart till den rapporterande kommunen";
        candidates[cnt].code = region_reports ? "VGR" : in->municipality_code;
        candidates[cnt++].why = region_reports ? "regionen, avtalets andra part"
                                               : "patientens kommun, avtalets andra part";
        for (size_t i = 0; i < cnt; i++) {
                const struct avk_directory_party *party =
                    avk_directory_party(rt->dir, candidates[i].code);

                if (party == NULL || is_excluded(rt, party->code))
                        continue;
                if (why_no_party) {
                        text_cat(&rt->reason, why_no_party, " ", NULL);
                } else if (rt->rule_matched) {
                        text_cat(&rt->reason,
                                 "Ingen regel som gäller pekar ut en möjlig mottagare. ", NULL);
                } else {
                        struct text values_text = text_over(values, sizeof(values));

                        add_input_values(rt, &values_text);
                        text_cat(&rt->reason, "Ingen regel i avtalet gäller (", values, "). ",
                                 NULL);
                }
                text_cat(&rt->reason, "Samordnaren hos ", party->name, " (", party->code,
                         ") sorterar den: ", candidates[i].why, ".", NULL);
                finish(rt, AVK_RULES_TRIAGE, AVK_RULES_ID_TRIAGE, party, NULL);
                return 1;
        }
        return 0;
}

/* The county's triage desk, a joint function of the parties, sorts it by hand, after why. */
static void take_manual(struct route *rt, const char *why)
{
        const struct avk_directory_desk *desk = avk_directory_triage_desk(rt->dir);

        text_add(&rt->reason,
                 "%s Länets gemensamma sorteringsfunktion, %s (%s), sorterar den "
                 "manuellt.",
                 why, desk->name, desk->hsa_id);
        finish(rt, AVK_RULES_MANUAL, AVK_RULES_ID_MANUAL,
               avk_directory_party(rt->dir, desk->record_party), NULL);
        set_text(rt->out->receiver_unit_hsa_id, sizeof(rt->out->receiver_unit_hsa_id),
                 desk->hsa_id);
        rt->out->basis = AVK_RULES_BASIS_LOCAL_POLICY;
}

void avk_rules_decide(const avk_rules_t *rules, const avk_directory_t *dir,
                      const struct avk_rules_input *in, struct avk_rules_decision *out)
{
        struct route rt;

        route_init(&rt, rules, dir, in, NULL, 0, out);
        if (in->named_party || in->named_unit_hsa_id) {
                if (take_named(&rt, in->named_party, in->named_unit_hsa_id,
                               AVK_RULES_NAMED_BY_REPORTER, AVK_RULES_ID_NAMED, "Rapportören"))
                        return;
                out->named_not_used = 1;
        }
        if (take_rule(&rt, AVK_RULES_AGREEMENT_RULE) || take_triage(&rt, NULL))
                return;
        take_manual(&rt, "Ingen part i partskatalogen kan ta emot den.");
}

void avk_rules_reroute(const avk_rules_t *rules, const avk_directory_t *dir,
                       const struct avk_rules_input *in,
                       const struct avk_rules_rejection *rejection, struct avk_rules_decision *out)
{
        struct route rt;
        char rejecting[160], why[200];

        if (rejection->by_desk) {
                /* The desk settles what routing could not: only the reporter stays excluded. */
                struct avk_rules_rejection desk = {.hop = rejection->hop,
                                                   .suggested_party = rejection->suggested_party,
                                                   .suggested_unit_hsa_id =
                                                       rejection->suggested_unit_hsa_id};
                const struct avk_directory_desk *host = avk_directory_triage_desk(dir);
                const char *who = "Sorteringsfunktionen";

                route_init(&rt, rules, dir, in, &desk, rejection->hop + 1, out);
                text_add(&rt.reason,
                         "Länets gemensamma sorteringsfunktion, %s (%s), har sorterat den "
                         "manuellt och skickar den vidare. ",
                         host->name, host->hsa_id);
                if ((desk.suggested_party || desk.suggested_unit_hsa_id) &&
                    take_named(&rt, desk.suggested_party, desk.suggested_unit_hsa_id,
                               AVK_RULES_REROUTED, AVK_RULES_ID_DESK, who))
                        return;
                take_manual(&rt, "Den angav ingen mottagare som kan användas.");
                return;
        }
        route_init(&rt, rules, dir, in, rejection, rejection->hop + 1, out);
        label_code(&rt, rejection->rejecting_party, rejecting, sizeof(rejecting));
        text_add(&rt.reason, "%s svarade fel mottagare (omdirigering %d av högst %d). ", rejecting,
                 out->hop, rules->max_reroutes);
        if (out->hop > rules->max_reroutes) {
                snprintf(why, sizeof(why), "Omdirigerad %d gånger, det högsta reglerna tillåter.",
                         rules->max_reroutes);
                take_manual(&rt, why);
                return;
        }
        if ((rejection->suggested_party || rejection->suggested_unit_hsa_id) &&
            take_named(&rt, rejection->suggested_party, rejection->suggested_unit_hsa_id,
                       AVK_RULES_REROUTED, AVK_RULES_ID_SUGGESTED, rejecting))
                return;
        if (take_rule(&rt, AVK_RULES_REROUTED) || take_triage(&rt, NULL))
                return;
        take_manual(&rt, "Varje part utom rapportören som kunde ta emot den har svarat fel "
                         "mottagare: parterna är oeniga, och eskaleringstrappan gäller.");
}

int avk_rules_hosts_desk(const avk_directory_t *dir, const char *party)
{
        return party != NULL && strcmp(avk_directory_triage_desk(dir)->record_party, party) == 0;
}

const char *avk_rules_basis_symbol(enum avk_rules_basis basis)
{
        const struct avk_schema_enum *bases = avk_schema_enum("DecisionBasis");

        return bases && (size_t)basis < bases->cnt ? bases->symbols[basis] : NULL;
}
