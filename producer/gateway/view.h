/*
 * avk_view: the gateway's picture of every deviation's course, kept from the
 * lifecycle topics - what the look-up routes answer, what decides who owns a
 * deviation id, who may respond, and whether a dispute is still possible.
 *
 *   topic.intake.receipts   the reporter's party, the filing time,
 *                    reply_reference and the digest of the filed document
 *                    (ownership) - never topic.reported, which holds the
 *                    patient (docs/gateway.md, "The view")
 *   topic.routed     each routing: receiver, decision, rule, reason, hop
 *   topic.response   acknowledgement, answer (analysis, action plan),
 *                    wrong receiver, dispute
 *   topic.status     the tracker's changelog: state, deadlines, whether kept
 *   topic.escalated, topic.reminder   timeline entries
 *
 * Each topic is read from its beginning by a thread of its own through
 * common/kafka/follow.h, with no consumer group: every gateway instance
 * holds the whole view. Until every topic has been read to its end once the
 * view is loading (/readyz says so). Records arrive in any order across
 * topics: a deviation is created by whichever record names it first.
 *
 * Memory (docs/gateway.md, "The view"): a deviation is one fixed record in
 * an array of chunks (ids and digests 16 bytes, parties one byte, times in
 * milliseconds) plus 4-byte slots of an index at most half full, and its
 * timeline of 24-byte entries whose texts (rule, reason, labels) are
 * interned once for the whole view. The answer's analysis and action plan
 * are kept as the receiver wrote them.
 */
#ifndef AVK_VIEW_H
#define AVK_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/contract/party.h"
#include "common/contract/receipt.h"
#include "common/util/config.h"
#include "producer/gateway/dispute.h"

/** Bytes of a filed document's digest kept: the receipt's. */
#define AVK_VIEW_DIGEST_SIZE AVK_RECEIPT_DIGEST_SIZE

/**
 * The county's manual triage desk as a principal (docs/gateway.md, "The triage desk"): the number
 * after the parties'. A routing with decision MANUAL goes to the desk; its receiver_party only
 * records the desk's record_party, which that routing grants nothing.
 */
#define AVK_VIEW_DESK          (AVK_PARTY_MAX + 1)
#define AVK_VIEW_DESK_CODE     "DESK"   /**< the desk's subject in the tokens file */
#define AVK_VIEW_DESK_DECISION "MANUAL" /**< DeviationRouted.decision of a routing to the desk */

typedef struct avk_view avk_view_t;

/** What a record of a lifecycle topic adds to a deviation. */
enum avk_view_kind {
        AVK_VIEW_REPORTED,
        AVK_VIEW_ROUTED,
        AVK_VIEW_ACKNOWLEDGED,
        AVK_VIEW_ANSWERED,
        AVK_VIEW_REJECTED_WRONG_RECEIVER,
        AVK_VIEW_DISPUTED,
        AVK_VIEW_ESCALATED,
        AVK_VIEW_REMINDED,
        AVK_VIEW_CLOSED,
        AVK_VIEW_ESCALATION_CONFIRMED,
};

/** One record's part, as the follow threads (and tests, benchmarks) give it. */
struct avk_view_event {
        enum avk_view_kind kind;
        const char *deviation_id; /**< a UUID in text */
        int64_t at;               /**< reported_at, routed_at, responded_at, ... */
        int party;           /**< reporter (REPORTED), receiver (ROUTED: the desk's record_party for
                                  a routing to the desk, REMINDED), responder, holder's party
                                  (ESCALATED) */
        int reporter;        /**< ROUTED: the reporter's party; -1 elsewhere */
        int32_t hop;         /**< ROUTED, ESCALATED, REMINDED */
        const char *label;   /**< ROUTED: decision; ESCALATED: step; REMINDED: kind; may be NULL */
        const char *rule;    /**< ROUTED: rule_id; may be NULL */
        const char *reason;  /**< ROUTED: reason; may be NULL */
        const char *text[2]; /**< ANSWERED: analysis, action plan; REPORTED: reply_reference */
        const unsigned char *digest; /**< REPORTED: AVK_VIEW_DIGEST_SIZE bytes, the document's;
                                          a response: its own, or NULL */
        const char *response_id;     /**< a response: its id (with digest, what recognises a
                                          retry of it: avk_view_response()), or NULL */
        int by_desk; /**< a response the triage desk gave (responder TRIAGE_DESK) in the name of
                          party, its record_party: no rejection of that party's own hop */
};

/** One DeviationStatus record (the tracker's changelog): the highest version wins. */
struct avk_view_status {
        const char *deviation_id;
        int32_t version;
        const char *state; /**< ROUTED, ACKNOWLEDGED, ANSWERED, ... as in the schema */
        int64_t changed_at;
        int reporter, receiver;
        const char *deadline_rule;
        int64_t acknowledge_deadline_at, answer_deadline_at;
        int64_t acknowledged_at, answered_at, closed_at; /**< -1 when null */
        int deadline_kept;                               /**< 1, 0, or -1 when null */
        int overdue;
        const char *escalation_step; /**< NULL when null */
        const char *pending_step;    /**< a manual step waiting for confirmation; NULL when none */
};

/**
 * @brief An empty view. dispute (may be NULL: no window known) is not
 * copied and must outlive the view. NULL when out of memory.
 */
avk_view_t *avk_view_new(const avk_dispute_t *dispute);

/**
 * @brief Starts the follow threads over cfg's lifecycle topics.
 * @returns 0, or -1 with the reason in errstr.
 */
int avk_view_start(avk_view_t *view, const avk_config_t *cfg, char *errstr, size_t errstr_size);

/** @brief Stops the threads (when started) and frees the view. NULL is a no-op. */
void avk_view_destroy(avk_view_t *view);

/** @brief Adds one record's event. @returns 0, or -1 (bad id or party, out of memory). */
int avk_view_add(avk_view_t *view, const struct avk_view_event *event);

/** @brief Applies one status record. @returns 0, or -1 (bad id or party, out of memory). */
int avk_view_status(avk_view_t *view, const struct avk_view_status *status);

/** @brief 1 once every topic has been read to its end once. */
int avk_view_loaded(avk_view_t *view);

/** @brief Deviations known. */
size_t avk_view_size(avk_view_t *view);

/** @brief Bytes the view holds (records, index, timelines, texts, interned strings). */
size_t avk_view_memory(avk_view_t *view);

/** What avk_view_filing() found for a deviation id about to be filed. */
enum avk_view_filing {
        AVK_VIEW_NEW,      /**< no document filed under the id yet */
        AVK_VIEW_SAME,     /**< the same document was filed under the id (a retry) */
        AVK_VIEW_CONFLICT, /**< another document was filed under the id */
};

/** @brief Whether a document with digest may be filed under deviation_id. */
enum avk_view_filing avk_view_filing(avk_view_t *view, const char *deviation_id,
                                     const unsigned char digest[AVK_VIEW_DIGEST_SIZE]);

/**
 * @brief Whether a response with response_id, and digest (of its Avro body;
 * NULL: the id alone), was read for deviation_id: AVK_VIEW_NEW when not,
 * AVK_VIEW_SAME when it was (with this digest), AVK_VIEW_CONFLICT when
 * another response was read under the id. A response is recognised by 48
 * bits of a hash of its id and 48 of its digest, kept in its timeline entry.
 */
enum avk_view_filing avk_view_response(avk_view_t *view, const char *deviation_id,
                                       const char *response_id,
                                       const unsigned char digest[AVK_VIEW_DIGEST_SIZE]);

/** Whether a principal may respond with a kind (avk_view_may_respond()); docs/gateway.md. */
enum avk_view_respond {
        AVK_VIEW_RESPOND_OK,
        AVK_VIEW_RESPOND_UNKNOWN,      /**< no such deviation, or not one the party is part of */
        AVK_VIEW_RESPOND_NOT_RECEIVER, /**< only the current receiver gives this kind; the party
                                            never received the deviation */
        AVK_VIEW_RESPOND_STALE,        /**< the party received it at an earlier hop: it was routed
                                            on, and only the current receiver gives this kind */
        AVK_VIEW_RESPOND_REJECTED,     /**< the current receiver rejected it as wrong receiver
                                            already: its re-routing is due */
        AVK_VIEW_RESPOND_NOT_REPORTER, /**< only the reporter disputes */
        AVK_VIEW_RESPOND_NOT_ANSWERED, /**< a dispute before any answer */
        AVK_VIEW_RESPOND_WINDOW_OVER,  /**< a dispute after the window, or of a closed deviation */
        AVK_VIEW_RESPOND_NOT_PARTY,    /**< a confirmation from neither the reporter nor the
                                            current receiver */
        AVK_VIEW_RESPOND_NOTHING_PENDING, /**< a confirmation while no manual step waits */
};

/**
 * @brief Whether principal (a party or AVK_VIEW_DESK) may give a response of
 * kind (the schema's symbol) to deviation_id at now_ms; *until_ms is the end
 * of the dispute window when one is known (else -1). A deviation at the desk
 * is the desk's to acknowledge, answer and reject, not its record_party's.
 */
enum avk_view_respond avk_view_may_respond(avk_view_t *view, const char *deviation_id, int party,
                                           const char *kind, int64_t now_ms, int64_t *until_ms);

/**
 * @brief The current receiver of deviation_id, and in *hop the hop that made
 * it so (for the reason of a refusal); in *party (may be NULL) the party the
 * routing names, the desk's record_party for a routing to the desk.
 * @returns the principal (AVK_VIEW_DESK while the deviation is at the desk),
 * or -1 when none is known.
 */
int avk_view_receiver(avk_view_t *view, const char *deviation_id, int32_t *hop, int *party);

/**
 * @brief The look-up of deviation_id for principal (docs/gateway.md): NULL when
 * the deviation is unknown or principal neither reported it nor was routed it
 * (the desk: routed it by a routing to the desk).
 * The caller owns the result.
 */
json_t *avk_view_lookup(avk_view_t *view, const char *deviation_id, int party, int64_t now_ms);

/** The list's query (GET /v1/deviations). */
struct avk_view_query {
        int party;         /**< a principal: a party or AVK_VIEW_DESK */
        int receiver;      /**< 1: routed to party; 0: reported by party */
        const char *state; /**< open, answered, closed or all */
        int64_t since_ms;  /**< filed at or after; INT64_MIN for any */
        size_t limit;
        int after;        /**< resume below (after_at, after_id) */
        int64_t after_at; /**< the last item's filing time */
        unsigned char after_id[16];
};

/**
 * @brief Up to q->limit summaries, newest first, into a new array (the
 * caller's). *more is 1 when more follow; then last_at and last_id say where
 * the page ended. NULL when out of memory.
 */
json_t *avk_view_list(avk_view_t *view, const struct avk_view_query *q, int64_t now_ms, int *more,
                      int64_t *last_at, unsigned char last_id[16]);

#endif
