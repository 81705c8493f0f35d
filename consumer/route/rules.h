/*
 * avk_rules: who receives a deviation, decided from the health-care
 * agreement's allocation of responsibility, kept as data
 * (data/routing-rules.json; format and the table of rules: docs/routing.md).
 *
 * Each rule has an id, the clause of the agreement it rests on, conditions
 * over the deviation (category, care setting, competence, home visits,
 * agreement, event class, harm level, the reporting side) and the party it
 * names: the patient's MUNICIPALITY (municipality_code) or the REGION (VGR).
 *
 * A deviation in collaboration is about another party than the reporter's:
 * the reporting party is excluded exactly as a party that answered "wrong
 * receiver" is - for a named receiver, a receiver's suggestion, the rules and
 * triage alike, at the first hop and after it (when every other party has
 * rejected it, the county's triage desk triages by hand). The rules also read where the event
 * happened (location.party, unknown when it is the reporter's own) and the agreement period of
 * occurred_at (until 2026-12-31, or the 2027-2030 agreement); a rule naming
 * the side opposite to the location is passed over, and a sub-agreement left
 * UNKNOWN is derived from the category (docs/routing.md).
 *
 * The decision, in order:
 *   1. A receiver named by the reporter wins when the directory knows the
 *      party (and its unit, when one is named, belongs to that party) and it
 *      is not the reporter's own. A named receiver that cannot be used is
 *      never ignored silently: the reason says why, named_not_used is set,
 *      and the rules decide.
 *   2. Otherwise the first rule, in file order, whose conditions all hold and
 *      whose party is usable. First match rather than most specific: the
 *      order in the file is the order a reader checks, ties cannot arise, and
 *      the loader rejects a rule that an earlier one hides completely. A rule
 *      may name TRIAGE: no party alone answers (a joint responsibility).
 *   3. Otherwise triage by the coordinator of the most likely party: the
 *      party where the event happened when that is not the reporter's, else
 *      the reporter's counterpart (a municipality reports about VGR, VGR about
 *      the patient's municipality), else - once rejections have excluded
 *      those - the other side of the agreement.
 *   4. Otherwise (no usable party left) the county's triage desk triages by
 *      hand. Every input gets a decision: nothing is dropped.
 *
 * After a "wrong receiver" response, avk_rules_reroute() excludes every
 * party that has rejected the deviation (and the location no longer decides
 * once its party has): a receiver the rejecting party
 * suggests wins when usable, else the next rule, else triage; when the hop
 * bound (max_reroutes in the rules file) is passed, or every candidate has
 * rejected it (the parties disagree), the county's triage desk triages by hand.
 * The desk routes on by a "wrong receiver" with a suggestion (by_desk), which
 * wins past the bound and over earlier rejections.
 *
 * A loaded rule set is immutable and may be shared by threads read-only.
 */
#ifndef AVK_RULES_H
#define AVK_RULES_H

#include <stddef.h>

#include "common/contract/directory.h"
#include "common/util/errors.h"
#include "common/contract/schema.h"

/** DeviationRouted.reason holds at most 1000 characters; the reason is at most 1000 bytes. */
#define AVK_RULES_REASON_SIZE 1001
/** DeviationRouted.rule_id holds at most 100 characters. */
#define AVK_RULES_ID_SIZE 101

/*
 * rule_id of the decisions that no rule of the file makes. The file's rule
 * ids start with "R-", so they never collide with these. AVK_RULES_ID_DESK:
 * the county's triage desk chose the receiver (REROUTED, after its MANUAL hop).
 */
#define AVK_RULES_ID_NAMED     "NAMED-BY-REPORTER"
#define AVK_RULES_ID_SUGGESTED "SUGGESTED-BY-RECEIVER"
#define AVK_RULES_ID_DESK      "CHOSEN-BY-TRIAGE-DESK"
#define AVK_RULES_ID_TRIAGE    "TRIAGE"
#define AVK_RULES_ID_MANUAL    "MANUAL"

/** What a decision rests on: DeviationRouted.basis (DecisionBasis), in the schema's symbol order.
 */
enum avk_rules_basis {
        AVK_RULES_BASIS_TEXT,         /**< a rule whose cited clause says it */
        AVK_RULES_BASIS_INFERENCE,    /**< a rule that is avvik's reading of its clause */
        AVK_RULES_BASIS_LOCAL_POLICY, /**< no text decides: triage, a named receiver, the bound */
};

/** How the receiver was chosen: DeviationRouted.decision (RoutingDecision), in the schema's symbol
 * order. */
enum avk_rules_decision_kind {
        AVK_RULES_NAMED_BY_REPORTER, /**< the reporter's named receiver */
        AVK_RULES_AGREEMENT_RULE,    /**< a rule of the file */
        AVK_RULES_TRIAGE,            /**< no rule: a party's coordinator triages */
        AVK_RULES_REROUTED,          /**< after "wrong receiver": a suggestion or the next rule */
        AVK_RULES_MANUAL,            /**< the county's triage desk triages by hand */
};

/**
 * What routing reads of a DeviationReported. Strings are borrowed for the
 * call. Enum fields hold the schema's symbol ("HOME_HEALTH_CARE"); NULL or a
 * symbol no rule names matches only rules that leave the field open.
 */
struct avk_rules_input {
        const char *reporter_party;       /**< reporter.party: "VGR" or a municipality code */
        const char *named_party;          /**< receiver.party, NULL when the reporter named none */
        const char *named_unit_hsa_id;    /**< receiver.unit_hsa_id, or NULL */
        const char *location_party;       /**< location.party: where the event happened */
        const char *location_unit_hsa_id; /**< location.unit_hsa_id, or NULL */
        const char *municipality_code;    /**< the patient's municipality (SCB kommunkod) */
        const char *care_setting;         /**< location.care_setting (CareSetting) */
        const char *category;             /**< Category */
        const char *competence;           /**< Competence */
        const char *home_visits;          /**< HomeVisits */
        const char *agreement;            /**< Agreement */
        const char *event_class;          /**< EventClass */
        const char *harm_level;           /**< harm.level (HarmLevel) */
        long long occurred_at_ms; /**< occurred_at (ms since the epoch): the agreement period */
};

/** A "wrong receiver" response to a routing decision. Strings are borrowed for the call. */
struct avk_rules_rejection {
        int hop;                              /**< hop of the rejected decision: 0 for the first */
        const char *rejecting_party;          /**< the party that answered "wrong receiver" */
        const char *suggested_party;          /**< the receiver it suggests, or NULL */
        const char *suggested_unit_hsa_id;    /**< the unit it suggests, or NULL */
        const char *const *earlier_rejecting; /**< parties that rejected earlier hops, or NULL */
        size_t earlier_rejecting_cnt;
        /**
         * The triage desk routes a MANUAL decision on (avk_rules_hosts_desk()): only its
         * choice counts (AVK_RULES_ID_DESK), whatever the hop bound and whoever rejected
         * before - its own record_party too; the reporter stays excluded. Without a usable one
         * the decision is MANUAL again, and the caller leaves the deviation at the desk rather
         * than spend a hop on it.
         */
        int by_desk;
};

/** A decision: the fields of a DeviationRouted that routing fills. */
struct avk_rules_decision {
        enum avk_rules_decision_kind kind;
        int hop;                            /**< 0 first, one more per re-routing */
        char receiver_party[8];             /**< "VGR" or a municipality code */
        char receiver_unit_hsa_id[32];      /**< "" when the party's coordinator receives it */
        char rule_id[AVK_RULES_ID_SIZE];    /**< a rule id, or one of AVK_RULES_ID_* */
        char reason[AVK_RULES_REASON_SIZE]; /**< Swedish sentences: what matched, the clause */
        enum avk_rules_basis basis;
        int named_not_used;       /**< the reporter named a receiver that was not used */
        int location_contradicts; /**< location.party and care_setting are of different sides */
};

typedef struct avk_rules avk_rules_t;

/**
 * @brief Loads and validates a rules file.
 *
 * Condition symbols are checked against the enums of reported (the
 * DeviationReported schema), so a rule can only name what a deviation can
 * carry. Every problem is reported, each as "path: rules[i] (ID): field:
 * reason" or "path:line:column: reason" for a syntax error.
 *
 * @param reported the DeviationReported schema; only read during the call.
 * @returns the rules, or NULL with every problem added to errs.
 */
avk_rules_t *avk_rules_load(const char *path, const avk_schema_t *reported,
                            struct avk_errors *errs);

/** @brief Frees the rules. NULL is a no-op. */
void avk_rules_destroy(avk_rules_t *rules);

/** @brief Number of rules. */
size_t avk_rules_cnt(const avk_rules_t *rules);

/** @brief Re-routings allowed before the county's triage desk triages by hand. */
int avk_rules_max_reroutes(const avk_rules_t *rules);

/**
 * @brief Decides the first receiver of a deviation (hop 0). Always fills out.
 * @param dir the party directory the receiver must be in.
 */
void avk_rules_decide(const avk_rules_t *rules, const avk_directory_t *dir,
                      const struct avk_rules_input *in, struct avk_rules_decision *out);

/**
 * @brief Decides the next receiver after a "wrong receiver" response (hop
 * rejection->hop + 1). Always fills out.
 */
void avk_rules_reroute(const avk_rules_t *rules, const avk_directory_t *dir,
                       const struct avk_rules_input *in,
                       const struct avk_rules_rejection *rejection, struct avk_rules_decision *out);

/**
 * @brief The RoutingDecision symbol of a kind ("AGREEMENT_RULE"), from the
 * compiled-in schemas (common/contract/schema_enum.h). Static storage.
 */
const char *avk_rules_decision_symbol(enum avk_rules_decision_kind kind);

/**
 * @brief Whether party is the one a MANUAL decision names as receiver_party
 * for the county's triage desk (avk_directory_desk.record_party): a "wrong
 * receiver" in its name on such a decision is the desk's, which triages for
 * the whole county: not a rejection of the deviation, and it spends no hop.
 */
int avk_rules_hosts_desk(const avk_directory_t *dir, const char *party);

/** @brief The DecisionBasis symbol of a basis ("INFERENCE"). Static storage. */
const char *avk_rules_basis_symbol(enum avk_rules_basis basis);

#endif
