/*
 * avk_feedback: what the reporting party is told of its deviation's course
 * (issue 15; docs/notify.md, "What the reporting party gets"). The tracker
 * decides each change of a deviation's state (consumer/track/track.h) and
 * writes it to the changelog; this module turns each such change into a
 * DeviationFeedback (schemas/deviation_feedback.avsc) for the reporting
 * party: routed and re-routed (to whom, by which rule or decision, why),
 * acknowledged, answered (analysis and action plan in full, and until when
 * it may be disputed), rejected as wrong receiver, disputed, escalated (the
 * step and its holder on the receiving side), closed.
 *
 * The event's version is the status record's, and its id a UUIDv5 of
 * "<deviation_id>/<version>": the same after a replay or a rebuild, so a
 * receiving system orders and de-duplicates by them.
 *
 * The reporter's unit and reply_reference are the reporter's own data: they
 * come from topic.reported (avk_feedback_reported()), read by the tracker
 * co-partitioned with its other inputs, and never pass through
 * DeviationRouted, which goes to the receiver's inbox as it is.
 *
 * Not thread-safe: one owner (the tracker's thread). Strings handed in are
 * copied; strings in an event are valid until the next call.
 */
#ifndef AVK_FEEDBACK_H
#define AVK_FEEDBACK_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>

#include "common/contract/directory.h"
#include "common/contract/ident.h"
#include "consumer/track/deadlines.h"
#include "consumer/track/track.h"

typedef struct avk_feedback avk_feedback_t;

/** What the input that caused a status change says beyond the status: NULL fields for none. */
struct avk_feedback_cause {
        const char *id;       /**< the input's id (event_id, response_id): matched to the cause */
        const char *decision; /**< a DeviationRouted's RoutingDecision symbol */
        const char *rule_id;
        const char *reason; /**< a routing's reason, or a response's comment */
        const char *analysis, *action_plan;
};

/**
 * @brief A module with no deviations. policy and dir are not owned and must
 * outlive it. @returns NULL when out of memory.
 */
avk_feedback_t *avk_feedback_new(const avk_deadlines_t *policy, const avk_directory_t *dir);

/** @brief Frees it. NULL is a no-op. */
void avk_feedback_destroy(avk_feedback_t *fb);

/**
 * @brief Takes a DeviationReported's reporting unit and reply_reference (NULL
 * for none) under its id and partition. The first filing under an id wins.
 * @returns 0, or -1 when out of memory.
 */
int avk_feedback_reported(avk_feedback_t *fb, const char *deviation_id, const char *unit,
                          const char *reply_reference, int partition);

/** @brief 1 when the deviation's filing has been read, else 0. */
int avk_feedback_known(const avk_feedback_t *fb, const char *deviation_id);

/** @brief Forgets a deviation (it is closed: no feedback follows). */
void avk_feedback_forget(avk_feedback_t *fb, const char *deviation_id);

/** @brief Forgets the deviations of a partition (revoked, or its rebuild failed). */
void avk_feedback_drop_partition(avk_feedback_t *fb, int partition);

/** @brief Deviations whose filing is held. */
size_t avk_feedback_count(const avk_feedback_t *fb);

/**
 * @brief Fills v (a DeviationFeedback value) for status change s, with what
 * cause says when it is the change's cause (cause may be NULL), and writes
 * the event id to id. The status of an overdue mark (a deadline passed with
 * no step taken) is no change of course for the reporter.
 * @returns 1 when filled, 0 when s gives the reporter nothing, -1 when a
 * field cannot be set.
 */
int avk_feedback_fill(avk_feedback_t *fb, const struct avk_track_status *s,
                      const struct avk_feedback_cause *cause, avro_value_t *v,
                      char id[AVK_IDENT_UUID_SIZE]);

/** @brief The FeedbackKind symbol status s is reported as; NULL when none. */
const char *avk_feedback_kind(const struct avk_track_status *s);

#endif
