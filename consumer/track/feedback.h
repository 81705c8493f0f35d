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
 * After a crash a status record can be in Kafka without its feedback (two
 * writes). The tracker's rebuild therefore reads topic.feedback back
 * (avk_feedback_read_back()) before the changelog, and each status record
 * read after it whose feedback was not read back becomes a feedback owed
 * (avk_feedback_check()): the tracker writes it again, with the id, version
 * and body the first attempt had - at once when no input caused it (a timer,
 * an escalation completed by a rebuild), else when its input is read again
 * (its offset was not committed: its outputs were not all acknowledged), for
 * the input's own fields (docs/tracker.md, "Feedback after a crash").
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

/** @brief Forgets the deviations and the feedback owed of a partition (revoked, or its rebuild
 * failed). */
void avk_feedback_drop_partition(avk_feedback_t *fb, int partition);

/**
 * @brief Rebuild: a DeviationFeedback of deviation_id at version read back
 * from partition of topic.feedback, written at timestamp (the record's, ms
 * since the epoch). One written before since is not kept: since is the oldest
 * a check looks at (below). @returns 0, or -1 when out of memory.
 */
int avk_feedback_read_back(avk_feedback_t *fb, const char *deviation_id, int version, int partition,
                           int64_t timestamp, int64_t since);

/**
 * @brief Rebuild: status record s, written at timestamp, was read back. When
 * it was written at or after since, should have a feedback and none was read
 * back for its version, the feedback is owed: s and the filing's unit and
 * reference are copied. @returns 1 when owed, 0 when not, -1 when out of
 * memory.
 */
int avk_feedback_check(avk_feedback_t *fb, const struct avk_track_status *s, int64_t timestamp,
                       int64_t since);

/**
 * @brief Rebuild: escalation escalation_id of deviation_id was read back. A
 * status record it caused (a rebuild completed it) has no input to wait for:
 * a feedback owed for it is owed now.
 */
void avk_feedback_escalation_read_back(avk_feedback_t *fb, const char *deviation_id,
                                       const char *escalation_id);

/** @brief Rebuild failed (or a test is done with it): forgets what was read back of
 * topic.feedback. */
void avk_feedback_read_back_done(avk_feedback_t *fb);

/**
 * @brief Rebuild done: forgets what was read back of topic.feedback but the
 * feedback whose status record was not read back (it landed, the status
 * record did not): avk_feedback_fill() gives nothing for that version once,
 * when the input or timer that caused it writes the status record again
 * (until then, or until its partition is dropped, it is kept). @returns 0,
 * or -1 when out of memory.
 */
int avk_feedback_rebuilt(avk_feedback_t *fb);

/** @brief Feedback kept by avk_feedback_rebuilt() that is not yet matched (for tests). */
size_t avk_feedback_ahead_count(const avk_feedback_t *fb);

/**
 * @brief A feedback owed of deviation_id caused by input cause_id, or with
 * cause_id NULL one owed now (caused by no input) of deviation_id, or of any
 * deviation when deviation_id is NULL too. The status stays valid until
 * avk_feedback_paid() or avk_feedback_drop_partition() of its partition.
 * @returns NULL when none.
 */
const struct avk_track_status *avk_feedback_owed(const avk_feedback_t *fb, const char *deviation_id,
                                                 const char *cause_id);

/**
 * @brief Fills v as avk_feedback_fill() did for owed (from
 * avk_feedback_owed()) when it was first written: with its filing as it was
 * when the status was read back. @returns 1, or -1 when a field cannot be set.
 */
int avk_feedback_fill_owed(avk_feedback_t *fb, const struct avk_track_status *owed,
                           const struct avk_feedback_cause *cause, avro_value_t *v,
                           char id[AVK_IDENT_UUID_SIZE]);

/** @brief owed is written (or given up): frees it. */
void avk_feedback_paid(avk_feedback_t *fb, const struct avk_track_status *owed);

/** @brief Feedback owed (for the rebuild's log line and tests). */
size_t avk_feedback_owed_count(const avk_feedback_t *fb);

/** @brief Deviations whose filing is held. */
size_t avk_feedback_count(const avk_feedback_t *fb);

/**
 * @brief Fills v (a DeviationFeedback value) for status change s, with what
 * cause says when it is the change's cause (cause may be NULL), and writes
 * the event id to id. The status of an overdue mark (a deadline passed with
 * no step taken) is no change of course for the reporter; nor is one whose
 * feedback a rebuild in progress read back (a status record the rebuild
 * completes from its escalation, when its feedback landed and it did not),
 * nor one whose feedback the last rebuild read back without its status
 * record (avk_feedback_rebuilt(): the change made again).
 * @returns 1 when filled, 0 when s gives the reporter nothing, -1 when a
 * field cannot be set.
 */
int avk_feedback_fill(avk_feedback_t *fb, const struct avk_track_status *s,
                      const struct avk_feedback_cause *cause, avro_value_t *v,
                      char id[AVK_IDENT_UUID_SIZE]);

/** @brief The FeedbackKind symbol status s is reported as; NULL when none. */
const char *avk_feedback_kind(const struct avk_track_status *s);

#endif
