/*
 * avk_tracker: the tracker service - reads topic.routed, topic.response and
 * topic.delivery.failed in a consumer group and runs the deviation process's
 * state machine (consumer/track/track.h) over them with the deadline policy
 * (deadlines.file) on a processing-time clock, writing
 *   - a DeviationStatus per change to topic.status (the changelog, compacted
 *     in production; what the analysis forwarder carries on),
 *   - DeviationEscalated to topic.escalated and DeadlineReminder to
 *     topic.reminder, each also copied to the receiver's inbox topic from the
 *     party directory (the step's holder, from the directory, in the
 *     escalation),
 *   - a DeviationFeedback per change to topic.feedback for the reporting
 *     party, copied to its inbox topic (consumer/track/feedback.h; the
 *     reporting unit and reply reference from topic.reported, read too).
 * Records that cannot be processed go to topic.deadletter, as the router's.
 *
 * At-least-once with the router's offset discipline (common/kafka/outbox.h);
 * timer-driven outputs are made safe by the changelog: on assignment the
 * state of the partitions is rebuilt from topic.status, topic.escalated and
 * topic.reminder, so that after a crash no deadline is lost and nothing is
 * escalated or reminded twice. The argument: docs/tracker.md.
 *
 * One thread runs avk_tracker_run(); avk_tracker_stop(), the statistics and
 * the metrics may be used from any thread.
 */
#ifndef AVK_TRACKER_H
#define AVK_TRACKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/util/config.h"
#include "common/util/metrics.h"

typedef struct avk_tracker avk_tracker_t;

/** What a tracker has done since it was created. */
struct avk_tracker_stats {
        uint64_t inputs_done;  /**< inputs whose offset was stored (or skipped past) */
        uint64_t applied;      /**< inputs that changed a deviation's state */
        uint64_t ignored;      /**< inputs that did not (duplicates, stale, wrong party...) */
        uint64_t statuses;     /**< DeviationStatus records written */
        uint64_t escalations;  /**< DeviationEscalated written */
        uint64_t reminders;    /**< DeadlineReminder written */
        uint64_t deadlettered; /**< records written to topic.deadletter */
        uint64_t rebuilds;     /**< partition assignments whose state was rebuilt */
        uint64_t open;         /**< open deviations held now */
        int partitions;        /**< partitions of topic.routed assigned now */
};

/** Processing time in ms since the epoch; for tests (NULL: the system clock). */
typedef int64_t (*avk_tracker_clock_fn)(void *opaque);

/**
 * @brief Creates a tracker from cfg: loads directory.file and deadlines.file,
 * creates the Kafka clients. cfg is not copied and must outlive the tracker.
 * clock may be NULL (the system clock, or tracker.clock.file when set).
 * @returns NULL with the reason in errstr.
 */
avk_tracker_t *avk_tracker_new(const avk_config_t *cfg, avk_tracker_clock_fn clock,
                               void *clock_opaque, char *errstr, size_t errstr_size);

/**
 * @brief Joins the group and tracks until avk_tracker_stop(); then waits for
 * outputs in flight (bounded), commits and leaves the group.
 * @returns 0 after a stop, -1 with the reason in errstr (topics, a fatal
 * producer error).
 */
int avk_tracker_run(avk_tracker_t *tracker, char *errstr, size_t errstr_size);

/** @brief Asks avk_tracker_run() to return. Any thread; not async-signal-safe. */
void avk_tracker_stop(avk_tracker_t *tracker);

/** @brief A snapshot of the counters. Any thread. */
void avk_tracker_stats(avk_tracker_t *tracker, struct avk_tracker_stats *stats);

/** @brief 1 when partitions are assigned and their state rebuilt (for /readyz), else 0 with why. */
int avk_tracker_ready(void *tracker, char *why, size_t why_size);

/** @brief The tracker's metrics (avk_tracker_* families), owned by it. */
avk_metrics_t *avk_tracker_metrics(avk_tracker_t *tracker);

/** @brief Frees a tracker that is not running. NULL is a no-op. */
void avk_tracker_destroy(avk_tracker_t *tracker);

#endif
