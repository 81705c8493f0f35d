/*
 * avk_analysis: the analysis forwarder (avvik analyse; docs/analysis.md).
 *
 * It consumes topic.reported, topic.status and topic.routed (all keyed by
 * deviation id, one partition count, the range assignor: partition p of each
 * on one instance) and writes one AnalysisRecord per state change of a
 * deviation to topic.analysis: REPORTED from the DeviationReported itself,
 * every other state from the tracker's DeviationStatus, with the decision and
 * basis of its hop's DeviationRouted. A record carries no patient
 * identity and no free text but the scrubbed description (common/util/scrub.h): a keyed
 * pseudonym, the age band at the event and the sex (pseudonym.h) stand in for
 * the patient. Its record_id is a UUID version 5 of "<deviation_id>/<state>/
 * <version>", the same on every retry and replay.
 *
 * With analysis.sink.url set, every record the topic acknowledged is also
 * POSTed to that endpoint in NDJSON batches (one record's JSON a line),
 * signed, with a batch id derived from the record ids, retried with
 * exponential backoff and jitter; past the retry budget the batch's records
 * go to the dead-letter topic. An input's offset is stored only when its
 * record is on topic.analysis and in a batch the sink accepted (or on the
 * dead-letter topic), and every earlier input of its partition is too.
 *
 * Inputs that cannot be read, or that would put something other than the
 * contract's values on the stream, go to the dead-letter topic with the
 * reason in headers; the partition goes on. An input the Schema Registry
 * gives no answer for is no bad input: it is read again after a backoff
 * (AVK_SERVICE_WAIT), and the forwarder is not ready meanwhile.
 */
#ifndef AVK_ANALYSIS_H
#define AVK_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include "common/util/config.h"
#include "common/util/metrics.h"

typedef struct avk_analysis avk_analysis_t;

/** Counts since the forwarder was created (for tests and status lines). */
struct avk_analysis_stats {
        uint64_t forwarded;     /**< records on topic.analysis and, with a sink, accepted by it */
        uint64_t dead_lettered; /**< inputs or records on the dead-letter topic, acknowledged */
        uint64_t sink_batches;  /**< batches the sink accepted (2xx) */
        uint64_t sink_attempts; /**< sink attempts finished, whatever their result */
        uint64_t held;          /**< input records held now */
        uint64_t cached;        /**< deviations known now */
};

/**
 * @brief Creates the forwarder: reads the pseudonym key (and the sink's
 * secret), makes the consumer (group analysis.group.id), the producer and,
 * with a sink, libcurl's multi handle. cfg is not owned and must outlive the
 * forwarder. metrics may be NULL; the forwarder registers its families there.
 * @returns NULL with the reason in errstr (configuration, key files, Kafka).
 */
avk_analysis_t *avk_analysis_new(const avk_config_t *cfg, avk_metrics_t *metrics, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Runs until avk_analysis_stop(): consumes, forwards, retries, stores
 * offsets. On return every finished input's offset is committed; the others
 * are left to the next owner of their partition, which forwards them again
 * under the same record ids.
 * @returns 0, or -1 with the reason in errstr when Kafka fails fatally.
 */
int avk_analysis_run(avk_analysis_t *analysis, char *errstr, size_t errstr_size);

/** @brief Asks avk_analysis_run() to return; any thread, any time. */
void avk_analysis_stop(avk_analysis_t *analysis);

/** @brief A snapshot of the counters; any thread. */
void avk_analysis_stats(avk_analysis_t *analysis, struct avk_analysis_stats *stats);

/**
 * @brief For /readyz: 1 when Kafka answers and partitions of topic.reported
 * are assigned (avk_kafka_ready()), else 0 with the reason in why. Any thread.
 */
int avk_analysis_ready(void *analysis, char *why, size_t why_size);

/** @brief Closes the consumer, flushes the producer, wipes the keys and frees. NULL is a no-op. */
void avk_analysis_destroy(avk_analysis_t *analysis);

#endif
