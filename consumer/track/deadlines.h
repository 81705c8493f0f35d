/*
 * avk_deadlines: the deadline policy of the deviation process - how long a
 * receiver has to acknowledge and to answer a deviation, when it is reminded,
 * how long each step of the escalation ladder has to answer, and how long the
 * reporter has to dispute an answer - kept as data (data/deadlines.json;
 * format and the shipped policy: docs/deadlines.md).
 *
 * The agreement sets no figures: deviations are to be handled "skyndsamt"
 * and answered "så snart händelsen är analyserad och plan för åtgärd finns"
 * (A.13). The numbers are therefore policy, each rule saying in "because"
 * what it rests on.
 *
 * A policy is a list of rules, each matching on the receiving party, the
 * category, the harm level and the possible-Lex-Maria flag of a routing; the
 * first rule that matches gives the terms, and the last rule must match
 * everything, so every lookup finds terms. Spans are counted on the Swedish
 * working-day calendar in Stockholm time (common/util/calendar.h).
 *
 * A loaded policy is immutable and may be shared by threads read-only; the
 * terms it hands out are owned by it and valid until avk_deadlines_destroy().
 */
#ifndef AVK_DEADLINES_H
#define AVK_DEADLINES_H

#include <stddef.h>
#include <stdint.h>

#include "common/util/errors.h"

/** What avk_deadline_after() and avk_deadline_before() return for a span of none: never. */
#define AVK_DEADLINE_NEVER INT64_MAX

enum avk_deadline_unit { AVK_DEADLINE_WORKING_DAYS, AVK_DEADLINE_CALENDAR_DAYS };

/** A span of time: {"working_days": 3} or {"days": 60} in the file. */
struct avk_deadline_span {
        int amount; /**< 0 = none */
        enum avk_deadline_unit unit;
};

/** What a rule of the policy sets. */
struct avk_deadline_terms {
        const char *rule_id;                  /**< the policy rule that matched, "D-..." */
        struct avk_deadline_span acknowledge; /**< from routing to acknowledgement */
        struct avk_deadline_span answer;      /**< from routing to answer (A.13: analysed + plan) */
        struct avk_deadline_span
            remind_before; /**< reminder this long before each deadline; 0 = none */
        struct avk_deadline_span
            step_answer; /**< after each escalation: new deadline to answer at the step */
        struct avk_deadline_span
            dispute_window; /**< an answer not disputed within this closes the deviation */
        /** A passed deadline takes one automatic step to the receiver's "Chef över chef"
         * (local policy, docs/escalation.md); 0: reminders and the overdue mark only. */
        int deadline_step;
        /** The steps a person confirms before a disagreement reaches them, as bits (1 << step,
         * step 1..4 as the schema's EscalationStep); 0: every step automatic. */
        unsigned manual_steps;
};

typedef struct avk_deadlines avk_deadlines_t;

/**
 * @brief Loads and validates a policy file.
 *
 * Party codes are checked against VGR and the compiled-in municipalities,
 * categories and harm levels against the enums of the DeviationRouted
 * schema compiled in. Every problem is reported at once, each as
 * "path: rules[i] (ID): field: reason" or "path:line:column: reason".
 *
 * @returns the policy, or NULL with every problem added to errs.
 */
avk_deadlines_t *avk_deadlines_load(const char *path, struct avk_errors *errs);

/** @brief Frees the policy. NULL is a no-op. */
void avk_deadlines_destroy(avk_deadlines_t *policy);

/** @brief Number of rules. */
size_t avk_deadlines_cnt(const avk_deadlines_t *policy);

/**
 * @brief The terms of the first rule that matches. Never NULL (the loader
 * requires a final rule that matches everything). Pointer owned by policy.
 *
 * @param party the receiving party: "VGR" or a municipality code.
 * @param category the Category symbol of the routing (schemas/deviation_routed.avsc).
 * @param harm the HarmLevel symbol.
 * @param lex_maria 1 when the deviation is a possible Lex Maria case, else 0.
 *
 * A NULL or unknown party, category or harm level matches only rules that
 * leave that condition open.
 */
const struct avk_deadline_terms *avk_deadlines_lookup(const avk_deadlines_t *policy,
                                                      const char *party, const char *category,
                                                      const char *harm, int lex_maria);

/**
 * @brief The deadline span after from_ms: the end (23:59:59.999 Stockholm
 * time) of the span's last day, counted from the day after from_ms's local
 * day. AVK_DEADLINE_NEVER when the span is none.
 */
int64_t avk_deadline_after(const struct avk_deadline_span *span, int64_t from_ms);

/**
 * @brief The reminder instant span before deadline_ms: the start (00:00
 * Stockholm time) of the span's day before the deadline's local day.
 * AVK_DEADLINE_NEVER when the span is none or deadline_ms is.
 */
int64_t avk_deadline_before(const struct avk_deadline_span *span, int64_t deadline_ms);

/** @brief "3 working days", "60 days", "1 day" or "none" into buf. @returns buf. */
const char *avk_deadline_span_format(const struct avk_deadline_span *span, char *buf, size_t size);

#endif
