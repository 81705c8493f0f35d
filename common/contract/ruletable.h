/*
 * avk_ruletable: a table of rules kept as data - a JSON file whose "rules"
 * array is read in order, the first rule whose conditions all hold deciding.
 * The routing rules (consumer/route/rules.h) and the deadline policy
 * (consumer/track/deadlines.h) are both one; each describes its conditions
 * and reads its own terms (receivers and clauses, durations and reminders)
 * through a hook, and the table does the rest.
 *
 * Each condition is a bit mask over its values - the symbols of a schema
 * enum, a fixed list of symbols, party numbers (common/contract/party.h) or
 * false/true - with 0 for a condition the rule leaves open. A lookup tests a
 * rule with a few AND operations, and the same masks let the loader refuse a
 * rule that an earlier one hides (every mask of the earlier rule a superset):
 * first match wins, so such a rule could never be used.
 *
 * Every problem of a file is reported at once, each naming the file, the rule
 * and the field: "path: rules[i] (ID): field: reason", or
 * "path:line:column: reason" for a syntax error (common/util/jsondoc.h).
 *
 * A loaded table is immutable and may be shared by threads read-only.
 */
#ifndef AVK_RULETABLE_H
#define AVK_RULETABLE_H

#include <stddef.h>

#include <jansson.h>

#include "common/contract/schema.h"
#include "common/util/errors.h"
#include "common/util/jsondoc.h"

/** The most conditions a table's rules may name. */
#define AVK_RULETABLE_CONDITIONS_MAX 16

/** What the values of a condition are. */
enum avk_ruletable_kind {
        AVK_RULETABLE_ENUM,    /**< symbols of an enum of the table's schema */
        AVK_RULETABLE_SYMBOLS, /**< symbols of a fixed list */
        AVK_RULETABLE_PARTY,   /**< party codes: "VGR" or a municipality code */
        AVK_RULETABLE_BOOL,    /**< true or false (one value, not an array) */
};

/** A condition a rule may name. */
struct avk_ruletable_condition {
        const char *key; /**< its key in a rule's conditions object ("category") */
        enum avk_ruletable_kind kind;
        const char *what;           /**< ENUM, SYMBOLS: a value in errors ("harm level") */
        const char *enum_name;      /**< ENUM: the enum's name in the schema ("Category") */
        const char *const *symbols; /**< SYMBOLS: the values, NULL-terminated */
};

/** Whether a rule may leave every condition open. */
enum avk_ruletable_order {
        /** Every rule names a condition; what no rule takes is the caller's to handle. */
        AVK_RULETABLE_NARROW,
        /** The last rule names none, so every lookup finds one. */
        AVK_RULETABLE_CATCH_ALL,
};

/** A kind of table: its file format and the hooks that read its own terms. */
struct avk_ruletable_def {
        const char *id_prefix;      /**< every rule id starts with it: "R-" */
        const char *subject;        /**< what a rule matches, in errors: "deviation" */
        const char *conditions_key; /**< the key of a rule's conditions object: "when" */
        enum avk_ruletable_order order;
        const char *found; /**< CATCH_ALL: what every lookup finds, in errors: "deadlines" */
        const struct avk_ruletable_condition *conditions;
        size_t condition_cnt;         /**< at most AVK_RULETABLE_CONDITIONS_MAX */
        const char *const *root_keys; /**< the document's keys, "rules" and "about" among them */
        const char *const *rule_keys; /**< a rule's keys, "id" and conditions_key among them */
        size_t terms_size;            /**< bytes of a rule's own terms */
        /** Reads the document's own keys (the table's "about" and "rules" are read for it). */
        void (*parse_root)(struct avk_jsondoc *doc, json_t *root, void *arg);
        /**
         * Reads a rule's own terms into terms (terms_size bytes, zeroed). id is
         * the rule's id, NULL when it is malformed; strings taken from rule stay
         * valid as long as the table.
         */
        void (*parse_terms)(struct avk_jsondoc *doc, json_t *rule, const char *id, void *terms,
                            void *arg);
};

typedef struct avk_ruletable avk_ruletable_t;

/**
 * @brief Loads and validates a table file.
 *
 * @param def the kind of table; must outlive the table.
 * @param schema the schema whose enums the ENUM conditions name (NULL when
 *        there are none); only read during the call.
 * @param arg passed to def's hooks.
 * @returns the table, or NULL with every problem added to errs.
 */
avk_ruletable_t *avk_ruletable_load(const struct avk_ruletable_def *def, const char *path,
                                    const avk_schema_t *schema, void *arg, struct avk_errors *errs);

/** @brief Frees the table. NULL is a no-op. */
void avk_ruletable_destroy(avk_ruletable_t *table);

/** @brief Number of rules. */
size_t avk_ruletable_cnt(const avk_ruletable_t *table);

/** @brief The id of rule i ("R-MUNI-NURSE"), owned by the table. */
const char *avk_ruletable_id(const avk_ruletable_t *table, size_t i);

/** @brief The terms parse_terms read for rule i, owned by the table. */
const void *avk_ruletable_terms(const avk_ruletable_t *table, size_t i);

/** @brief Whether rule i names condition c (an index into def->conditions). */
int avk_ruletable_names(const avk_ruletable_t *table, size_t i, size_t c);

/** What a lookup asks: each condition's value as an index, -1 when unknown. */
struct avk_ruletable_query {
        int idx[AVK_RULETABLE_CONDITIONS_MAX];
};

/** @brief A query with every value unknown: it matches only rules that leave all open. */
void avk_ruletable_query_init(struct avk_ruletable_query *q);

/**
 * @brief Sets condition c (ENUM, SYMBOLS or PARTY) of q to value; NULL or a
 * value the condition does not know matches only rules that leave c open.
 */
void avk_ruletable_query_set(const avk_ruletable_t *table, struct avk_ruletable_query *q, size_t c,
                             const char *value);

/** @brief Sets BOOL condition c of q to value (0 or 1). */
void avk_ruletable_query_set_bool(struct avk_ruletable_query *q, size_t c, int value);

/**
 * @brief The first rule, from rule `from` on, whose conditions all hold for
 * q; avk_ruletable_cnt() when none does. A CATCH_ALL table's lookup from 0
 * always finds one.
 */
size_t avk_ruletable_first(const avk_ruletable_t *table, const struct avk_ruletable_query *q,
                           size_t from);

#endif
