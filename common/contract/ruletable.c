/*
 * avk_ruletable: see ruletable.h.
 *
 * The enums come from the schema, not from a copy here: a symbol added to the
 * contract is usable in a table file at once, and a symbol renamed there makes
 * the file fail to load, naming the rule.
 */
#include "common/contract/ruletable.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/json.h"
#include "common/contract/party.h"
#include "common/contract/schema_enum.h"

#define RULE_ID_MAX 64 /* a rule id is written to records whose fields hold 100 */
#define SYMBOLS_MAX 64 /* the bits of a condition's mask */

/* BOOL conditions: bit 0 for false, bit 1 for true. */
#define BOOL_FALSE 0
#define BOOL_TRUE  1

struct rule {
        const char *id; /* points into the table's JSON */
        uint64_t mask[AVK_RULETABLE_CONDITIONS_MAX];
        int names_condition; /* the conditions object has a key (known or not) */
        int valid;
};

struct avk_ruletable {
        const struct avk_ruletable_def *def;
        json_t *root;
        json_t *symbols[AVK_RULETABLE_CONDITIONS_MAX]; /* ENUM, SYMBOLS: arrays of strings */
        /* The same strings (symbols[c]'s), looked up per query without jansson's calls. */
        const char *symbol_text[AVK_RULETABLE_CONDITIONS_MAX][SYMBOLS_MAX];
        size_t symbol_cnt[AVK_RULETABLE_CONDITIONS_MAX];
        struct rule *rules;
        unsigned char *terms; /* cnt * def->terms_size */
        size_t cnt;
};

/* ---- loading ---- */

/* The values a condition's symbols may take, as indexes into its bit mask. */
static int load_symbols(avk_ruletable_t *table, const avk_schema_t *schema, struct avk_jsondoc *doc)
{
        const struct avk_ruletable_def *def = table->def;

        if (def->condition_cnt > AVK_RULETABLE_CONDITIONS_MAX) {
                avk_jsondoc_fail(doc, "%zu conditions, at most %d", def->condition_cnt,
                                 AVK_RULETABLE_CONDITIONS_MAX);
                return -1;
        }
        for (size_t c = 0; c < def->condition_cnt; c++) {
                const struct avk_ruletable_condition *cond = &def->conditions[c];
                const json_t *symbols;
                char name[200];

                if (cond->kind == AVK_RULETABLE_ENUM) {
                        symbols = avk_schema_enum_symbols(schema, cond->enum_name);
                        if (symbols == NULL || json_array_size(symbols) > SYMBOLS_MAX) {
                                avk_jsondoc_fail(doc,
                                                 "schema %s has no enum %s of at most %d "
                                                 "symbols for condition %s",
                                                 avk_schema_fullname(schema),
                                                 avk_schema_enum_name(schema, cond->enum_name, name,
                                                                      sizeof(name)),
                                                 SYMBOLS_MAX, cond->key);
                                return -1;
                        }
                        table->symbols[c] = json_deep_copy(symbols);
                } else if (cond->kind == AVK_RULETABLE_SYMBOLS) {
                        table->symbols[c] = json_array();
                        for (size_t s = 0; cond->symbols[s] && table->symbols[c]; s++)
                                json_array_append_new(table->symbols[c],
                                                      json_string(cond->symbols[s]));
                } else {
                        continue;
                }
                if (table->symbols[c] == NULL) {
                        avk_jsondoc_fail(doc, "out of memory");
                        return -1;
                }
                if (json_array_size(table->symbols[c]) > SYMBOLS_MAX) {
                        avk_jsondoc_fail(doc, "condition %s has more than %d symbols", cond->key,
                                         SYMBOLS_MAX);
                        return -1;
                }
                table->symbol_cnt[c] = json_array_size(table->symbols[c]);
                for (size_t i = 0; i < table->symbol_cnt[c]; i++)
                        table->symbol_text[c][i] =
                            json_string_value(json_array_get(table->symbols[c], i));
        }
        return 0;
}

/* The index of s among condition c's symbols; -1 when absent or s is NULL. */
static int symbol_index(const avk_ruletable_t *table, size_t c, const char *s)
{
        if (s == NULL)
                return -1;
        for (size_t i = 0; i < table->symbol_cnt[c]; i++) {
                if (strcmp(table->symbol_text[c][i], s) == 0)
                        return (int)i;
        }
        return -1;
}

/* "A, B, C" into buf. */
static const char *symbol_list(const json_t *symbols, char *buf, size_t size)
{
        size_t used = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < json_array_size(symbols) && used < size; i++)
                used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                                         json_string_value(json_array_get(symbols, i)));
        return buf;
}

/* The index of value s of condition c, or -1 with the reason in reason. */
static int value_index(const avk_ruletable_t *table, size_t c, const char *s, char *reason,
                       size_t size)
{
        char expected[600];
        int idx;

        if (table->def->conditions[c].kind == AVK_RULETABLE_PARTY)
                return avk_party_parse(s, reason, size);
        idx = symbol_index(table, c, s);
        if (idx < 0)
                snprintf(reason, size, "unknown symbol \"%s\"; expected one of %s", s,
                         symbol_list(table->symbols[c], expected, sizeof(expected)));
        return idx;
}

/*
 * The bit mask of an array condition: value must be a non-empty array of
 * distinct values of condition c. Each bad item is an error at its own path;
 * the mask holds the good ones.
 */
static uint64_t values_mask(struct avk_jsondoc *doc, const avk_ruletable_t *table, size_t c,
                            const json_t *value)
{
        const struct avk_ruletable_condition *cond = &table->def->conditions[c];
        int party = cond->kind == AVK_RULETABLE_PARTY;
        uint64_t mask = 0;
        char reason[AVK_ERROR_MSG_SIZE];

        if (!json_is_array(value) || json_array_size(value) == 0) {
                if (party)
                        avk_jsondoc_fail(doc,
                                         "expected a non-empty array of parties (\"VGR\" or a "
                                         "municipality code), got %s",
                                         avk_json_type_name(value));
                else
                        avk_jsondoc_fail(doc, "expected a non-empty array of %s symbols, got %s",
                                         cond->what, avk_json_type_name(value));
                return 0;
        }
        for (size_t i = 0; i < json_array_size(value); i++) {
                json_t *item = json_array_get(value, i);
                const char *s = json_string_value(item);
                int idx = -1;

                avk_path_push(&doc->path, NULL, (long)i);
                if (s == NULL)
                        avk_jsondoc_fail(doc, "expected a %s, got %s",
                                         party ? "party code" : "symbol", avk_json_type_name(item));
                else if ((idx = value_index(table, c, s, reason, sizeof(reason))) < 0)
                        avk_jsondoc_fail(doc, "%s", reason);
                else if (mask & (UINT64_C(1) << idx))
                        avk_jsondoc_fail(doc, "\"%s\" is listed twice", s);
                else
                        mask |= UINT64_C(1) << idx;
                avk_path_pop(&doc->path);
        }
        return mask;
}

static uint64_t condition_mask(struct avk_jsondoc *doc, const avk_ruletable_t *table, size_t c,
                               json_t *conditions)
{
        const char *key = table->def->conditions[c].key;
        uint64_t mask;
        int b;

        if (table->def->conditions[c].kind == AVK_RULETABLE_BOOL) {
                b = avk_jsondoc_bool(doc, conditions, key, -1);
                return b < 0 ? 0 : UINT64_C(1) << (b ? BOOL_TRUE : BOOL_FALSE);
        }
        avk_path_push(&doc->path, key, 0);
        mask = values_mask(doc, table, c, json_object_get(conditions, key));
        avk_path_pop(&doc->path);
        return mask;
}

static void parse_conditions(struct avk_jsondoc *doc, const avk_ruletable_t *table, json_t *obj,
                             struct rule *r)
{
        const struct avk_ruletable_def *def = table->def;
        json_t *conditions = json_object_get(obj, def->conditions_key);
        const char *keys[AVK_RULETABLE_CONDITIONS_MAX + 1];

        if (conditions == NULL) {
                if (def->order == AVK_RULETABLE_NARROW)
                        avk_jsondoc_fail_key(doc, def->conditions_key,
                                             "is required: the conditions of the rule");
                return;
        }
        avk_path_push(&doc->path, def->conditions_key, 0);
        if (avk_jsondoc_expect_object(doc, conditions) != 0)
                goto out;
        for (size_t c = 0; c < def->condition_cnt; c++)
                keys[c] = def->conditions[c].key;
        keys[def->condition_cnt] = NULL;
        avk_jsondoc_check_keys(doc, conditions, keys);
        r->names_condition = json_object_size(conditions) > 0;
        if (!r->names_condition && def->order == AVK_RULETABLE_NARROW) {
                /* A rule that takes everything would leave the caller's fallback nothing to do. */
                avk_jsondoc_fail(doc, "names no condition; a rule must narrow down what it takes");
                goto out;
        }
        for (size_t c = 0; c < def->condition_cnt; c++) {
                if (json_object_get(conditions, def->conditions[c].key) != NULL)
                        r->mask[c] = condition_mask(doc, table, c, conditions);
        }
out:
        avk_path_pop(&doc->path);
}

static void parse_rule(struct avk_jsondoc *doc, avk_ruletable_t *table, json_t *list, size_t index,
                       void *arg)
{
        const struct avk_ruletable_def *def = table->def;
        struct rule *r = &table->rules[index];
        json_t *obj = json_array_get(list, index);
        size_t errors_before = avk_errors_total(doc->errs);
        const char *id;

        snprintf(doc->context, sizeof(doc->context), "rules[%zu]", index);
        if (avk_jsondoc_expect_object(doc, obj) != 0)
                return;
        id = avk_jsondoc_id(doc, obj, "id", def->id_prefix, RULE_ID_MAX);
        for (size_t i = 0; id && i < index; i++) {
                if (table->rules[i].id && strcmp(table->rules[i].id, id) == 0) {
                        avk_jsondoc_fail_key(doc, "id", "\"%s\" is already the id of rules[%zu]",
                                             id, i);
                        id = NULL;
                }
        }
        r->id = id;
        if (id)
                snprintf(doc->context, sizeof(doc->context), "rules[%zu] (%s)", index, id);
        avk_jsondoc_check_keys(doc, obj, def->rule_keys);
        parse_conditions(doc, table, obj, r);
        def->parse_terms(doc, obj, id, table->terms + index * def->terms_size, arg);
        r->valid = avk_errors_total(doc->errs) == errors_before;
}

/* Whether a matches everything that b matches. */
static int covers(const avk_ruletable_t *table, const struct rule *a, const struct rule *b)
{
        for (size_t c = 0; c < table->def->condition_cnt; c++) {
                if (a->mask[c] == 0)
                        continue;
                if (b->mask[c] == 0 || (b->mask[c] & ~a->mask[c]) != 0)
                        return 0;
        }
        return 1;
}

/* First match wins, so a rule that an earlier one covers can never be used. */
static void check_hidden(struct avk_jsondoc *doc, const avk_ruletable_t *table)
{
        for (size_t i = 1; i < table->cnt; i++) {
                const struct rule *b = &table->rules[i];

                for (size_t j = 0; b->valid && j < i; j++) {
                        const struct rule *a = &table->rules[j];

                        if (!a->valid || !covers(table, a, b))
                                continue;
                        snprintf(doc->context, sizeof(doc->context), "rules[%zu] (%s)", i, b->id);
                        avk_jsondoc_fail(doc,
                                         "can never match: rules[%zu] (%s) comes first and "
                                         "matches every %s this rule matches",
                                         j, a->id, table->def->subject);
                        break;
                }
        }
        doc->context[0] = '\0';
}

static void check_catch_all(struct avk_jsondoc *doc, const avk_ruletable_t *table)
{
        const struct rule *last = &table->rules[table->cnt - 1];

        if (last->names_condition)
                avk_jsondoc_fail_key(doc, "rules",
                                     "the last rule, rules[%zu] (%s), has %s conditions; the "
                                     "last rule must have none, so that every %s finds %s",
                                     table->cnt - 1, last->id ? last->id : "without an id",
                                     table->def->conditions_key, table->def->subject,
                                     table->def->found);
}

avk_ruletable_t *avk_ruletable_load(const struct avk_ruletable_def *def, const char *path,
                                    const avk_schema_t *schema, void *arg, struct avk_errors *errs)
{
        struct avk_jsondoc doc;
        size_t errors_before = avk_errors_total(errs);
        avk_ruletable_t *table = calloc(1, sizeof(*table));
        json_t *list;

        avk_jsondoc_init(&doc, path, errs);
        if (table == NULL) {
                avk_errors_add(errs, path, "out of memory");
                return NULL;
        }
        table->def = def;
        if (load_symbols(table, schema, &doc) != 0)
                goto out;
        table->root = avk_jsondoc_load(&doc);
        if (table->root == NULL || avk_jsondoc_expect_object(&doc, table->root) != 0)
                goto out;
        avk_jsondoc_check_keys(&doc, table->root, def->root_keys);
        avk_jsondoc_string(&doc, table->root, "about", 0);
        if (def->parse_root != NULL)
                def->parse_root(&doc, table->root, arg);

        list = avk_jsondoc_nonempty_array(&doc, table->root, "rules");
        if (list == NULL)
                goto out;
        table->cnt = json_array_size(list);
        table->rules = calloc(table->cnt, sizeof(*table->rules));
        table->terms = calloc(table->cnt, def->terms_size);
        if (table->rules == NULL || table->terms == NULL) {
                avk_errors_add(errs, path, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < table->cnt; i++)
                parse_rule(&doc, table, list, i, arg);
        doc.context[0] = '\0';
        check_hidden(&doc, table);
        if (def->order == AVK_RULETABLE_CATCH_ALL)
                check_catch_all(&doc, table);
out:
        if (avk_errors_total(errs) != errors_before) {
                avk_ruletable_destroy(table);
                return NULL;
        }
        return table;
}

void avk_ruletable_destroy(avk_ruletable_t *table)
{
        if (table == NULL)
                return;
        for (size_t c = 0; c < AVK_RULETABLE_CONDITIONS_MAX; c++)
                json_decref(table->symbols[c]);
        free(table->rules);
        free(table->terms);
        json_decref(table->root);
        free(table);
}

size_t avk_ruletable_cnt(const avk_ruletable_t *table)
{
        return table->cnt;
}

const char *avk_ruletable_id(const avk_ruletable_t *table, size_t i)
{
        return table->rules[i].id;
}

const void *avk_ruletable_terms(const avk_ruletable_t *table, size_t i)
{
        return table->terms + i * table->def->terms_size;
}

int avk_ruletable_names(const avk_ruletable_t *table, size_t i, size_t c)
{
        return table->rules[i].mask[c] != 0;
}

/* ---- lookup ---- */

void avk_ruletable_query_init(struct avk_ruletable_query *q)
{
        for (size_t c = 0; c < AVK_RULETABLE_CONDITIONS_MAX; c++)
                q->idx[c] = -1;
}

void avk_ruletable_query_set(const avk_ruletable_t *table, struct avk_ruletable_query *q, size_t c,
                             const char *value)
{
        char reason[256];

        if (table->def->conditions[c].kind == AVK_RULETABLE_PARTY)
                q->idx[c] = value ? avk_party_parse(value, reason, sizeof(reason)) : -1;
        else
                q->idx[c] = symbol_index(table, c, value);
}

void avk_ruletable_query_set_bool(struct avk_ruletable_query *q, size_t c, int value)
{
        q->idx[c] = value ? BOOL_TRUE : BOOL_FALSE;
}

static int matches(const avk_ruletable_t *table, const struct rule *r,
                   const struct avk_ruletable_query *q)
{
        for (size_t c = 0; c < table->def->condition_cnt; c++) {
                if (r->mask[c] == 0)
                        continue;
                if (q->idx[c] < 0 || !(r->mask[c] & (UINT64_C(1) << q->idx[c])))
                        return 0;
        }
        return 1;
}

size_t avk_ruletable_first(const avk_ruletable_t *table, const struct avk_ruletable_query *q,
                           size_t from)
{
        size_t i;

        for (i = from; i < table->cnt; i++) {
                if (matches(table, &table->rules[i], q))
                        break;
        }
        return i;
}
