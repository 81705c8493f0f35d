/*
 * avk_inbox: a routed record's inbox copies (docs/notify.md, "Inbox
 * topics"). A receiver with an inbox topic gets two records there per
 * routed record, the DeviationReported and the DeviationRouted, byte for
 * byte as read from their topics and with the headers the router gives
 * them, keyed by the deviation id. They are produced again after a backoff
 * until Kafka acknowledges both, beside the webhook's attempts: neither
 * channel waits for the other's retries.
 *
 * A delivery's inbox part moves AVK_INBOX_DUE (avk_inbox_start()) ->
 * AVK_INBOX_SENT (avk_inbox_send()) -> AVK_INBOX_DONE (avk_inbox_produced());
 * a copy Kafka refused is produced again by the kernel's outbox after a
 * pause, counted by avk_inbox_refused().
 * The tracker copies its escalations and reminders to the inbox itself
 * (docs/tracker.md): those have no inbox part here.
 */
#ifndef AVK_INBOX_H
#define AVK_INBOX_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumer/notify/delivery.h"

/**
 * @brief Keeps the avk-cause header of routed record m as read, for its
 * inbox copy; a record without one (not written by the router) gives a
 * copy without. @returns 0, or -1 when out of memory.
 */
int avk_inbox_copy_cause(struct avk_delivery *d, const rd_kafka_message_t *m);

/**
 * @brief Makes d's inbox copies due now, with the deviation as read from
 * topic.reported (len bytes at reported, copied: the deviation map may
 * drop it before a retry). @returns 0, or -1 when out of memory.
 */
int avk_inbox_start(struct avk_delivery *d, const void *reported, size_t len, int64_t now);

/**
 * @brief Produces d's two inbox copies through the outbox, which produces
 * each again until Kafka has it: AVK_INBOX_SENT (dl->fatal set when out of
 * memory).
 */
void avk_inbox_send(struct avk_deliveries *dl, struct avk_delivery *d);

/** @brief Kafka refused or failed one of d's inbox copies: counted, produced again. */
void avk_inbox_refused(struct avk_deliveries *dl, struct avk_delivery *d);

/** @brief Kafka acknowledged one of d's inbox copies: AVK_INBOX_DONE with both. */
void avk_inbox_produced(struct avk_deliveries *dl, struct avk_delivery *d);

#endif
