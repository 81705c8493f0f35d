/*
 * avk_failed: a delivery's end when it cannot be delivered (docs/notify.md):
 * the original record as read goes to the dead-letter topic with the reason
 * and where it was read, and for a routed record a DeliveryFailed event to
 * topic.delivery.failed, which the tracker escalates. An escalation or a
 * reminder gets no DeliveryFailed event: it would only escalate again
 * through the same failing endpoint.
 *
 * A delivery moves DEAD_DUE (avk_failed_dead_letter()) -> DEAD_SENT
 * (avk_failed_send(): both records produced through the kernel's outbox,
 * which produces each again until Kafka has it) -> DONE when Kafka has
 * acknowledged both (avk_failed_produced()), or back to DEAD_DUE after a
 * backoff when the DeliveryFailed event could not be made.
 */
#ifndef AVK_FAILED_H
#define AVK_FAILED_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumer/notify/delivery.h"

/**
 * @brief Sends d to the dead letter now, with a DeliveryFailed event when
 * failed_event is 1; the reason is fmt and what follows, logged.
 */
void avk_failed_dead_letter(struct avk_deliveries *dl, struct avk_delivery *d, int failed_event,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/**
 * @brief Produces DEAD_DUE d's dead letter (and DeliveryFailed event):
 * DEAD_SENT, or DEAD_DUE again after notify.retry.backoff.max.ms when the
 * event could not be encoded (dl->fatal set when out of memory).
 */
void avk_failed_send(struct avk_deliveries *dl, struct avk_delivery *d, int64_t now);

/** @brief Kafka acknowledged d's dead letter or DeliveryFailed event. */
void avk_failed_produced(struct avk_deliveries *dl, struct avk_delivery *d);

#endif
