/*
 * avk_track: the tracker's core - the state of every open deviation of the
 * deviation process (A.13) and its escalation ladder (docs/escalation.md), as a pure,
 * deterministic state machine with no Kafka and no clock of its own.
 *
 *   inputs   avk_track_routed()    a DeviationRouted (a new hop resets the receiver and deadlines)
 *            avk_track_respond()   a DeviationResponse (acknowledged, answered, rejected, disputed)
 *            avk_track_failed()    a DeliveryFailed (the receiver was never told: escalate)
 *            avk_track_advance()   the clock moved: reminders, the deadline step, closing
 *   outputs  actions handed to a sink: a status record per change (the
 *            changelog), an escalation, a reminder, and "a kept response is
 *            now settled".
 *
 * Deadlines are event time: they run from routed_at of the hop in force (or
 * from the escalation or dispute that set them) and are computed with the
 * policy (consumer/track/deadlines.h). Timers fire on processing time: the `now`
 * handed to avk_track_advance(), from the clock the caller injects. Every
 * output id is a UUIDv5 of what it records, so a replay writes the same ids.
 *
 * The state can be rebuilt from the outputs (avk_track_restore_*), which is
 * how the service survives a crash: docs/tracker.md gives the argument.
 *
 * Memory: one fixed-size record per open deviation (about 100 bytes), a hash
 * index and a timer (consumer/track/timers.h); closed deviations leave the table
 * and only their 16-byte id is remembered, so late inputs are recognised.
 *
 * Not thread-safe: one owner. Strings handed in are copied or interned;
 * strings in actions are valid during the sink call only.
 */
#ifndef AVK_TRACK_H
#define AVK_TRACK_H

#include <stddef.h>
#include <stdint.h>

#include "consumer/track/deadlines.h"

/** A timestamp field with no value (the schema's null). */
#define AVK_TRACK_NONE INT64_MIN

/** The states of DeviationStatus.state, in the schema's symbol order. */
enum avk_track_state {
        AVK_TRACK_ROUTED,
        AVK_TRACK_ACKNOWLEDGED,
        AVK_TRACK_ANSWERED,
        AVK_TRACK_REJECTED,
        AVK_TRACK_DISPUTED,
        AVK_TRACK_ESCALATED,
        AVK_TRACK_CLOSED,
        AVK_TRACK_STATE_CNT
};

/** Steps of the ladder: 0 is "not escalated", 1..4 the schema's EscalationStep symbols. */
enum {
        AVK_TRACK_STEP_NONE = 0,
        AVK_TRACK_STEP_MANAGER = 1,
        AVK_TRACK_STEP_MANAGERS_MANAGER = 2,
        AVK_TRACK_STEP_LOCAL_FORUM = 3,
        AVK_TRACK_STEP_COUNTY_FORUM = 4, /**< the top: COURT is never reached automatically */
};
/* Steps 1 and 2 are the 2025 decision material's ("Chef närmast patienten", "Chef över chef"),
 * the forums (3, 4) the 2022 draft's A.14: docs/escalation.md. Only a disagreement reaches a
 * forum; a missed deadline reaches MANAGERS_MANAGER at most, and only where the policy's
 * deadline_step says so. */

/** EscalationReason, in the schema's symbol order. */
enum avk_track_reason {
        AVK_TRACK_ACKNOWLEDGE_DEADLINE_PASSED,
        AVK_TRACK_ANSWER_DEADLINE_PASSED,
        AVK_TRACK_ANSWER_DISPUTED,
        AVK_TRACK_DELIVERY_FAILED,
        AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES, /**< the region and a municipality both answered
                                                "wrong receiver" and routing has nobody left */
        AVK_TRACK_REASON_CNT
};

/** ResponseKind, in the schema's symbol order (UNKNOWN is not handed in). */
enum avk_track_response_kind {
        AVK_TRACK_ACKNOWLEDGE,
        AVK_TRACK_ANSWER,
        AVK_TRACK_REJECT,
        AVK_TRACK_DISPUTE,
        AVK_TRACK_CONFIRM, /**< ESCALATION_CONFIRMED: a person confirms the pending manual step */
};

/** DeadlineKind, in the schema's symbol order. */
enum avk_track_deadline_kind { AVK_TRACK_DEADLINE_ACKNOWLEDGE, AVK_TRACK_DEADLINE_ANSWER };

/** What an input did; avk_track_result_name() gives a metric label for it. */
enum avk_track_result {
        AVK_TRACK_APPLIED,   /**< the state changed */
        AVK_TRACK_KEPT,      /**< a response before its routing: kept until the routing arrives */
        AVK_TRACK_DUPLICATE, /**< already applied (a replay, or redundant) */
        AVK_TRACK_STALE,     /**< for an earlier hop than the one in force */
        AVK_TRACK_NOT_RECEIVER,   /**< from a party that is not the receiver in force */
        AVK_TRACK_NOT_REPORTER,   /**< a dispute from a party that is not the reporter's */
        AVK_TRACK_NOT_PARTY,      /**< a confirmation from a party that is neither side of it */
        AVK_TRACK_NOT_EXPECTED,   /**< not meaningful in the deviation's state */
        AVK_TRACK_CLOSED_ALREADY, /**< the deviation is closed */
        AVK_TRACK_NO_ROUTING,     /**< a kept response whose routing never came (dropped) */
        AVK_TRACK_BAD_INPUT,      /**< an id that is not a UUID, an empty party */
        AVK_TRACK_FULL,           /**< no room to keep a response before its routing */
        AVK_TRACK_FAILED,         /**< out of memory, or the sink failed: nothing was applied */
        AVK_TRACK_RESULT_CNT
};

/** A DeviationRouted. Strings are read during the call only. */
struct avk_track_routed {
        const char *event_id;
        const char *deviation_id;
        int64_t routed_at;
        int hop;
        const char *reporter_party;
        const char *receiver_party;
        const char *receiver_unit; /**< NULL for the party's coordinator */
        const char *category;      /**< Category symbol */
        const char *harm_level;    /**< HarmLevel symbol */
        int lex_maria;
        int partition; /**< the Kafka partition of the deviation (for rebuild and revoke) */
};

/** A DeviationResponse. */
struct avk_track_response {
        const char *response_id;
        const char *deviation_id;
        int64_t responded_at;
        const char *party;
        enum avk_track_response_kind kind;
        int partition;
        uint64_t ticket; /**< the caller's handle, returned in actions when the response was kept */
};

/** A DeliveryFailed. */
struct avk_track_failure {
        const char *event_id;
        const char *deviation_id;
        int hop;
        int64_t failed_at;
        int partition;
        uint64_t ticket; /**< as for a response: a failure for a hop not yet routed is kept */
};

/** A DeviationStatus record: every field of schemas/deviation_status.avsc. */
struct avk_track_status {
        char state_id[37];
        const char *deviation_id;
        int version;
        enum avk_track_state state;
        int64_t changed_at;
        const char *cause; /**< an input id or "deadline:<kind>" */
        int hop;
        const char *reporter_party;
        const char *receiver_party;
        const char *receiver_unit; /**< NULL for the party's coordinator */
        const char *category;
        const char *harm_level;
        int lex_maria;
        const char *deadline_rule;
        int64_t routed_at;
        int64_t acknowledge_deadline_at; /**< AVK_DEADLINE_NEVER when the policy sets none */
        int64_t answer_deadline_at;
        int64_t acknowledged_at; /**< AVK_TRACK_NONE for null, and so the next four */
        int64_t answered_at;
        int64_t closed_at;
        int64_t time_to_acknowledge_ms;
        int64_t time_to_answer_ms;
        int deadline_kept; /**< -1 for null */
        int overdue;
        int step;         /**< AVK_TRACK_STEP_NONE for null */
        int pending_step; /**< a manual step waiting for confirmation; AVK_TRACK_STEP_NONE: none */
        int wrong_receiver_region;               /**< VGR answered "wrong receiver" at a hop */
        const char *wrong_receiver_municipality; /**< the last municipality that did, or NULL */
        int partition;
};

/**
 * A DeviationEscalated, less the holder (the caller looks it up in the directory). A disagreement
 * (a disputed answer) is escalated on both sides: one escalation for the receiving party's ladder
 * and one for the reporting party's, each naming the other as counterpart. A disagreement about
 * responsibility (both sides answered "wrong receiver", WRONG_RECEIVER_BOTH_SIDES) is escalated to
 * LOCAL_FORUM on the region's side and the municipality's, each naming the other. A missed
 * deadline or a failed delivery is the receiver's alone (counterpart NULL) and never reaches a
 * forum step.
 */
struct avk_track_escalation {
        char escalation_id[37];
        const char *deviation_id;
        int64_t escalated_at; /**< processing time */
        int hop;
        const char *party;       /**< whose ladder: the receiving party, or on a disagreement the
                                    reporting party for its own escalation */
        const char *unit;        /**< the receiving unit in force on the receiver's escalation, NULL
                                    for none (its ladder first) and on the reporter's */
        const char *counterpart; /**< the other party of a disagreement, NULL for none */
        int step;                /**< 1..4 */
        enum avk_track_reason reason;
        int64_t deadline_at; /**< AVK_TRACK_NONE unless the reason is a deadline */
        int partition;
};

/** A DeadlineReminder. */
struct avk_track_reminder {
        char reminder_id[37];
        const char *deviation_id;
        int64_t reminded_at; /**< when it fell due (its scheduled time) */
        int hop;
        const char *receiver_party;
        const char *receiver_unit;
        enum avk_track_deadline_kind kind;
        int64_t deadline_at;
        int partition;
};

enum avk_track_action_kind {
        AVK_TRACK_STATUS,     /**< a state change: write the status record */
        AVK_TRACK_ESCALATION, /**< write the escalation */
        AVK_TRACK_REMINDER,   /**< write the reminder */
        AVK_TRACK_SETTLED,    /**< a kept response (ticket) is settled: applied or dropped */
};

struct avk_track_action {
        enum avk_track_action_kind kind;
        /** The kept response whose application caused this action, or 0 (the input at hand / a
         * timer). */
        uint64_t ticket;
        union {
                struct avk_track_status status;
                struct avk_track_escalation escalation;
                struct avk_track_reminder reminder;
                struct {
                        enum avk_track_result result;
                        int partition;
                } settled;
        } u;
};

/**
 * The sink of actions. Status, escalation and reminder actions count as "in
 * flight" for their deviation until avk_track_acked() is called for each;
 * while any is, the deviation's timers wait (so one deviation's outputs are
 * written in the order they were decided). @returns 0, or -1 to fail the call.
 */
typedef int (*avk_track_sink_fn)(void *opaque, const struct avk_track_action *action);

/** The processing-time clock, ms since the epoch (injected; tests use a fake). */
typedef int64_t (*avk_track_clock_fn)(void *opaque);

typedef struct avk_track avk_track_t;

struct avk_track_options {
        const avk_deadlines_t *policy; /**< not owned; must outlive the core */
        avk_track_sink_fn sink;
        void *sink_opaque;
        avk_track_clock_fn clock; /**< for avk_track_tick(); NULL: avk_track_advance() only */
        void *clock_opaque;
        size_t kept_max; /**< responses kept before their routing, at most (0: 10000) */
        int64_t
            kept_max_ms; /**< processing time a kept response waits for its routing (0: 10 min) */
        /** The HSA-id of the county's manual triage desk (the directory's triage_desk), where
         * routing sends what it cannot settle; NULL: none. Copied. */
        const char *desk_hsa_id;
};

/** @brief A core with no deviations. @returns NULL when out of memory. */
avk_track_t *avk_track_new(const struct avk_track_options *options);

/** @brief Frees the core. NULL is a no-op. */
void avk_track_destroy(avk_track_t *track);

/**
 * @brief Applies a DeviationRouted, then any response kept for it. A routing to the triage desk
 * (options.desk_hsa_id) at hop > 0 of a deviation that both sides have answered "wrong receiver"
 * (the region, and a municipality or the reporting municipality; the reporting party counts for its
 * own side, since routing excludes it as it excludes a rejecting party) starts the ladder's
 * LOCAL_FORUM step on both sides (docs/escalation.md, "Both sides answer wrong receiver"), or makes
 * it pending where the policy makes that step manual. @returns what it did.
 */
enum avk_track_result avk_track_routed(avk_track_t *track, const struct avk_track_routed *in);

/**
 * @brief Applies a DeviationResponse (KEPT: the ticket comes back in a SETTLED action). A dispute
 * whose next step the policy makes manual (avk_deadline_terms.manual_steps) does not climb: the
 * status names the step as pending, and a CONFIRM from either party of the disagreement climbs
 * to it (for a disagreement about responsibility: the region or its municipality). A "wrong
 * receiver" at the triage desk is NOT_EXPECTED: the desk keeps the deviation until it routes it
 * on, as the router does (docs/routing.md).
 */
enum avk_track_result avk_track_respond(avk_track_t *track, const struct avk_track_response *in);

/** @brief Applies a DeliveryFailed: escalates to the receiver's first step when nothing has
 * escalated this hop. */
enum avk_track_result avk_track_failed(avk_track_t *track, const struct avk_track_failure *in);

/**
 * @brief Fires every timer due at or before now: reminders, the overdue mark
 * and the policy's one deadline step (to MANAGERS_MANAGER, never a forum),
 * closing after the dispute window, and the kept responses
 * whose routing did not come in time. Cost: O(fired * log n); an idle call
 * is O(1). @returns the number of actions, or -1 when the sink failed.
 */
long avk_track_advance(avk_track_t *track, int64_t now);

/** @brief avk_track_advance() at the injected clock's now. */
long avk_track_tick(avk_track_t *track);

/** @brief The earliest instant a timer is due (INT64_MAX: none), to sleep until. */
int64_t avk_track_next_due(const avk_track_t *track);

/** @brief One status, escalation or reminder action of the deviation is durable. */
void avk_track_acked(avk_track_t *track, const char *deviation_id);

/**
 * @brief The version of the deviation's latest status, 0 when it is not open
 * (closed deviations have left). A status record that failed to be written
 * need not be written again when a later version exists.
 */
int avk_track_version(const avk_track_t *track, const char *deviation_id);

/* ---- rebuild from the outputs ---- */

/**
 * @brief Takes a status record read back from the changelog; the highest
 * version per deviation wins. Call for every record before the others.
 * @returns 0, or -1 when out of memory.
 */
int avk_track_restore_status(avk_track_t *track, const struct avk_track_status *status);

/**
 * @brief Takes an escalation read back from topic.escalated. One for a
 * higher step than the status records say (the crash fell between the
 * two writes) advances the deviation and emits the missing status record.
 */
int avk_track_restore_escalation(avk_track_t *track, const struct avk_track_escalation *esc);

/** @brief Takes a reminder read back: that reminder is not sent again. */
void avk_track_restore_reminder(avk_track_t *track, const struct avk_track_reminder *reminder);

/**
 * @brief Ends a rebuild of partition: emits the escalation of every deviation
 * whose status says it was escalated but whose escalation was not read back,
 * and arms the timers (deadlines that passed meanwhile fire at the next
 * advance). @returns the actions emitted, or -1 when the sink failed.
 */
long avk_track_restore_done(avk_track_t *track, int partition);

/** @brief Forgets the deviations and kept responses of a partition (revoked). */
void avk_track_drop_partition(avk_track_t *track, int partition);

/* ---- figures ---- */

/** @brief Open deviations and how many of them are overdue, per party ever seen (0s included). */
typedef void (*avk_track_party_fn)(void *opaque, const char *party, long open, long overdue);
void avk_track_parties(const avk_track_t *track, avk_track_party_fn fn, void *opaque);

/** @brief Open deviations in all. */
size_t avk_track_open_cnt(const avk_track_t *track);

/** @brief Kept responses waiting for their routing. */
size_t avk_track_kept_cnt(const avk_track_t *track);

/** @brief Bytes held for open deviations: records, index, timers, interned names. */
size_t avk_track_memory(const avk_track_t *track);

/* ---- symbols ---- */

const char *avk_track_state_name(enum avk_track_state state);
const char *avk_track_step_name(int step); /**< "MANAGER".."COUNTY_FORUM"; NULL for none */
const char *avk_track_reason_name(enum avk_track_reason reason);
const char *avk_track_result_name(enum avk_track_result result);
const char *avk_track_deadline_name(enum avk_track_deadline_kind kind);

/** @brief Symbol to value; -1 when unknown. */
int avk_track_state_parse(const char *name);
int avk_track_step_parse(const char *name);
int avk_track_reason_parse(const char *name);
int avk_track_response_kind_parse(const char *name);
int avk_track_deadline_parse(const char *name);

#endif
