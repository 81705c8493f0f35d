/*
 * avk_retry: the retry topic (docs/notify.md, "Retry topic"). A webhook
 * attempt that failed and may be retried holds nothing up: the delivery is
 * parked on topic.notify.retry as a record keyed by the original record's
 * key, the body as sent as its value, and in headers what the next attempt
 * and the dead letter need (the event, party and unit, attempts, the wall
 * times of the first attempt and of the next, the original record and
 * where it was read). The notifier consumes that topic too; each record is
 * a delivery of its own, DUE when the record says, attempted once through
 * the directory's webhook for its party and unit now, then DONE, parked
 * again (attempts counted on) or dead-lettered.
 *
 * Parking moves a delivery PARK_DUE (avk_retry_park()) -> PARK_SENT
 * (avk_retry_send()) -> DONE once Kafka has the record
 * (avk_retry_produced()); a record Kafka refused or failed is produced
 * again by the kernel's outbox: the attempt it stands for must not be lost.
 */
#ifndef AVK_RETRY_H
#define AVK_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumer/notify/delivery.h"

/*
 * What is left of a delivery's retry budget after a failed attempt. The
 * budget is a time, notify.retry.max.age.ms from the first attempt: with the
 * backoff capped at notify.retry.backoff.max.ms, attempts go on until then.
 * notify.retry.max counts attempts only when an operator sets it (0, the
 * default, is no count).
 */
enum avk_retry_budget {
        AVK_RETRY_LEFT,           /**< park it for the next attempt */
        AVK_RETRY_ATTEMPTS_SPENT, /**< notify.retry.max (when not 0) attempts made */
        AVK_RETRY_AGE_SPENT,      /**< the next attempt would pass notify.retry.max.age.ms */
};

/**
 * @brief The retry budget after attempts attempts of at most retry_max (0:
 * no count), the first at first_attempt_wall, the next due at next_attempt_wall (wall
 * clock, ms), with max_age_ms from the first to the last. Pure.
 */
enum avk_retry_budget avk_retry_budget(int attempts, int64_t retry_max, int64_t first_attempt_wall,
                                       int64_t next_attempt_wall, int64_t max_age_ms);

/**
 * @brief Parks d: its retry record due now, the next attempt due at wait ms
 * from now (wall clock wall), the reason the last attempt failed from fmt.
 */
void avk_retry_park(struct avk_deliveries *dl, struct avk_delivery *d, int64_t now, int64_t wall,
                    int64_t wait, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/**
 * @brief The headers of d's retry record (avk_retry_read() reads them
 * back). @returns headers the caller owns (rd_kafka_headers_destroy(), or
 * given to a produce call).
 */
rd_kafka_headers_t *avk_retry_headers(const struct avk_deliveries *dl,
                                      const struct avk_delivery *d);

/** @brief Produces PARK_DUE d's retry record: PARK_SENT (dl->fatal set when out of memory). */
void avk_retry_send(struct avk_deliveries *dl, struct avk_delivery *d);

/**
 * @brief Kafka acknowledged d's retry record: the next attempt is the retry
 * topic's and d is DONE.
 */
void avk_retry_produced(struct avk_deliveries *dl, struct avk_delivery *d);

/**
 * @brief Takes what a retry record's headers h (NULL: none) carry into d,
 * whose key and payload hold the record as read: on success the payload
 * becomes the body and the original record's value the payload.
 * @returns 0; -1 with the reason in errstr (naming the header) when the
 * record is incomplete, d's record as read left for the dead letter; -2
 * when out of memory.
 */
int avk_retry_read(struct avk_delivery *d, rd_kafka_headers_t *h, char *errstr, size_t errstr_size);

/**
 * @brief A record of the retry topic, m, read into d: DUE when the record
 * says (no later than notify.retry.max.age.ms from now), or to the dead
 * letter when it cannot be read.
 */
void avk_retry_accept(struct avk_deliveries *dl, struct avk_delivery *d,
                      const rd_kafka_message_t *m, int64_t now);

/**
 * @brief Finds where DUE retry record d's attempt goes: the directory's
 * webhook for its party and unit now, so that a corrected directory takes
 * effect, the carried body signed with that webhook's secret.
 * @returns 0, or -1 when d went to the dead letter instead.
 */
int avk_retry_address(struct avk_deliveries *dl, struct avk_delivery *d);

#endif
