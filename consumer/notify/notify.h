/*
 * avk_notify: delivers routed deviations to every channel of their receiver
 * - its webhook and its Kafka inbox topic - and the tracker's escalations
 * and deadline reminders to the webhook of the party or unit concerned
 * (docs/notify.md). The router decides who receives; the notifier delivers.
 *
 * The notifier consumes topic.routed and, for the webhook body, topic.reported
 * (both keyed by deviation id, with one partition count and the range
 * assignor, so partition p of both lands on the same instance). It keeps a
 * bounded map deviation id -> DeviationReported for its partitions; a routed
 * record whose deviation has not been read yet waits for it.
 *
 * Every delivery is a small state machine driven by one thread around
 * libcurl's multi interface: many attempts are in flight at once, and one
 * slow or failing endpoint only ever delays its own deliveries. An attempt
 * that fails is retried with exponential backoff and full jitter until the
 * retry budget is spent, without holding anything up meanwhile: the
 * delivery is parked on topic.notify.retry (a record with the body and all
 * the next attempt needs), which the notifier consumes too and attempts
 * again when the record falls due. Once the budget is spent the original
 * record goes to the dead-letter topic and, for a routed record, a
 * DeliveryFailed event to topic.delivery.failed, which the tracker
 * escalates.
 *
 * DeviationEscalated (topic.escalated) and DeadlineReminder (topic.reminder)
 * go the same way to the webhook of their party and unit, with the same
 * signature, idempotency header, retries and dead letter; their bodies are
 * the event alone (no deviation, so no patient data), and a failed one is
 * dead-lettered without a DeliveryFailed event, which would only escalate
 * again through the same failing endpoint. So does DeviationFeedback
 * (topic.feedback), to the webhook of the reporting party and unit: every
 * change of a deviation's course for the party that filed it, its free text
 * scrubbed for an endpoint not cleared for patient identity.
 *
 * A receiver with an inbox topic gets two records there per routed record,
 * the DeviationReported and the DeviationRouted, byte for byte as read from
 * their topics and with the headers the router gives them; they are
 * produced again after a backoff until Kafka acknowledges both, alongside
 * the webhook's attempts.
 *
 * A record's offset is stored only when its delivery has finished - the
 * webhook delivered, parked or dead-lettered (and that acknowledged by
 * Kafka), or none; and both inbox copies acknowledged, or no inbox - and
 * every earlier record of its partition has too.
 *
 * The body is public so that it can be tested alone; the signature, the
 * backoff and the classification of an attempt are avk_webhook's (webhook.h),
 * shared with the analysis forwarder's sink.
 */
#ifndef AVK_NOTIFY_H
#define AVK_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/util/config.h"
#include "common/contract/directory.h"
#include "common/util/metrics.h"

/**
 * @brief The webhook body for a routed event: every field of the
 * DeviationRouted (routed, as avk_json_from_avro() gives it) and "deviation",
 * the DeviationReported. When patient_identity is 0 the patient's
 * personal_id is left out (age group and sex stay).
 * @returns a new object (a deep copy: neither argument is changed), or NULL
 * when out of memory.
 */
json_t *avk_notify_body(const json_t *routed, const json_t *deviation, int patient_identity);

/**
 * @brief The webhook body for a DeviationFeedback: every field of it
 * (feedback, as avk_json_from_avro() gives it), the free text - reason,
 * analysis, action plan - scrubbed of identity numbers, phone numbers and
 * e-mail (common/util/scrub.h) when patient_identity is 0.
 * @returns a new object (feedback is not changed), or NULL when out of memory.
 */
json_t *avk_notify_feedback_body(const json_t *feedback, int patient_identity);

typedef struct avk_notify avk_notify_t;

/** Counts since the notifier was created (for tests and status lines). */
struct avk_notify_stats {
        uint64_t delivered;     /**< records (of any kind) a webhook took (2xx) */
        uint64_t no_webhook;    /**< escalations and reminders for receivers without a webhook */
        uint64_t dead_lettered; /**< records on the dead-letter topic, acknowledged */
        uint64_t inbox;         /**< routed records whose two inbox copies are acknowledged */
        uint64_t inbox_retries; /**< times the inbox copies were produced again */
        uint64_t attempts;      /**< HTTP attempts finished, whatever their result */
        uint64_t parked;        /**< failed attempts parked on topic.notify.retry, acknowledged */
        uint64_t held;          /**< deliveries of the source topics not finished now */
        uint64_t retry_held;    /**< records of topic.notify.retry not finished now */
        int partitions;         /**< partitions of topic.routed assigned now */
};

/**
 * @brief Creates a notifier: the consumer (group notify.group.id), the
 * producer for the inbox topics, the retry topic, the dead-letter and
 * DeliveryFailed topics, and libcurl.
 * Neither cfg nor dir is owned; both must outlive the notifier. metrics may
 * be NULL; the notifier registers its families there.
 * @returns NULL with the reason in errstr (configuration, Kafka).
 */
avk_notify_t *avk_notify_new(const avk_config_t *cfg, const avk_directory_t *dir,
                             avk_metrics_t *metrics, char *errstr, size_t errstr_size);

/**
 * @brief Runs until avk_notify_stop(): consumes, delivers, retries, stores
 * offsets. On return every finished delivery's offset is committed; the
 * others are left to the next owner of their partition, which delivers
 * them again with the same X-Avvik-Event-Id and the same inbox records.
 * @returns 0, or -1 with the reason in errstr when Kafka fails fatally.
 */
int avk_notify_run(avk_notify_t *notify, char *errstr, size_t errstr_size);

/** @brief Asks avk_notify_run() to return; any thread, any time. */
void avk_notify_stop(avk_notify_t *notify);

/** @brief A snapshot of the counters; any thread. */
void avk_notify_stats(avk_notify_t *notify, struct avk_notify_stats *stats);

/**
 * @brief Whether the notifier is ready (for /readyz): Kafka answers a
 * metadata request within half a second, partitions of topic.routed are
 * assigned, and no record or body waits for the Schema Registry
 * (docs/notify.md, "Schema Registry outage").
 * @returns 1, or 0 with the reason in why. Any thread; opaque is the
 * avk_notify_t.
 */
int avk_notify_ready(void *opaque, char *why, size_t why_size);

/** @brief Closes the consumer and frees the notifier. NULL is a no-op. */
void avk_notify_destroy(avk_notify_t *notify);

#endif
