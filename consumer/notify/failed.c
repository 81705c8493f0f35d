/*
 * avk_failed: see failed.h; the dead letter is the service kernel's
 * (avk_outbox_deadletter(), common/kafka/outbox.h), the DeliveryFailed
 * schema is schemas/.
 */
#include "consumer/notify/failed.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/contract/ident.h"
#include "common/contract/json.h"
#include "common/kafka/kafka.h"
#include "common/util/clock.h"
#include "common/util/log.h"

#define COMPONENT AVK_DELIVERY_LOG

/* UUID version 5 namespace of DeliveryFailed event ids (name: the routed event id). */
static const char failed_namespace[] = "7a0c4e1f-3b52-4d8e-9c61-2fd4850b36a9";

void avk_failed_dead_letter(struct avk_deliveries *dl, struct avk_delivery *d, int failed_event,
                            const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        avk_delivery_set_reason(d, fmt, ap);
        va_end(ap);
        d->failed_event = failed_event;
        d->state = AVK_DELIVERY_DEAD_DUE;
        d->next_attempt_at = avk_clock_mono_ms();
        avk_log(AVK_LOG_ERROR, COMPONENT,
                "%s [%d] offset %" PRId64
                ": event %s for party %s goes to the dead-letter topic: %s",
                dl->topic[d->queue], (int)d->partition, d->offset,
                d->event_id[0] ? d->event_id : "-", d->party[0] ? d->party : "-", d->reason);
}

/* The DeliveryFailed event id: a name-based UUID (version 5) of the routed event id. */
static void derive_uuid(const char *routed_event_id, char out[AVK_DELIVERY_ID_SIZE])
{
        avk_ident_uuid5(failed_namespace, routed_event_id, strlen(routed_event_id), out);
}

/* Produces the DeliveryFailed event of d; -1 with the reason in errstr. */
static int produce_failed_event(struct avk_deliveries *dl, struct avk_delivery *d, char *errstr,
                                size_t errstr_size)
{
        char event_id[AVK_DELIVERY_ID_SIZE], failed_at[32];
        derive_uuid(d->event_id, event_id);
        avk_json_format_time(avk_clock_system_ms(), failed_at);
        json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s?,s:i,s:s}", "event_id", event_id,
                              "deviation_id", d->deviation_id, "routed_event_id", d->event_id,
                              "hop", d->hop, "failed_at", failed_at, "receiver_party", d->party,
                              "receiver_unit_hsa_id", d->unit[0] ? d->unit : NULL, "attempts",
                              d->attempts, "reason", d->reason);
        struct avk_json_opts opts = {0};
        struct avk_errors errs;
        avk_errors_init(&errs);
        const void *buf;
        size_t len;
        int rc = -1;
        if (!j) {
                snprintf(errstr, errstr_size, "out of memory");
        } else if (avk_json_to_avro(dl->failed_schema, j, &dl->failed_value, &opts, &errs) != 0) {
                avk_errors_join(&errs, errstr, errstr_size);
        } else if (avk_codec_encode(dl->codec, dl->topic_failed, dl->failed_schema,
                                    &dl->failed_value, &buf, &len, errstr, errstr_size) == 0) {
                rc = avk_delivery_produce(dl, d, AVK_OUTPUT_DEAD_LETTER, dl->topic_failed,
                                          d->deviation_id, strlen(d->deviation_id), buf, len, NULL);
                if (rc)
                        snprintf(errstr, errstr_size, "out of memory");
        }
        json_decref(j);
        return rc;
}

/* Produces the dead letter of d through the kernel's one function: the
 * original record as read (a null key or value stays null), the reason in
 * headers with where it was read. */
static int produce_dead_letter(struct avk_deliveries *dl, struct avk_delivery *d)
{
        const char *names[] = {AVK_HDR_EVENT_ID}, *values[] = {d->event_id};
        struct avk_outbox_source src = {.topic = avk_delivery_origin_topic(dl, d),
                                        .partition = d->origin_partition,
                                        .offset = d->origin_offset,
                                        .key = d->key,
                                        .key_len = d->key_len,
                                        .value = d->payload,
                                        .len = d->payload_len,
                                        .hdr_names = names,
                                        .hdr_values = values,
                                        .hdr_cnt = d->event_id[0] ? 1 : 0,
                                        .tag = avk_delivery_tag(d, AVK_OUTPUT_DEAD_LETTER)};
        if (avk_outbox_deadletter(dl->outbox, d->in, d->in_seq, dl->topic_deadletter, &src,
                                  d->reason) == 0)
                return 0;
        snprintf(dl->fatal, sizeof(dl->fatal), "out of memory");
        return -1;
}

void avk_failed_send(struct avk_deliveries *dl, struct avk_delivery *d, int64_t now)
{
        char err[512];
        if (produce_dead_letter(dl, d) != 0)
                return;
        d->acks_pending = 1;
        d->state = AVK_DELIVERY_DEAD_SENT;
        if (!d->failed_event)
                return;
        if (produce_failed_event(dl, d, err, sizeof(err)) == 0) {
                d->acks_pending++;
                return;
        }
        /* The dead letter is on its way; both go again after a backoff: a
         * duplicate dead letter is harmless, a lost escalation is not. */
        avk_log(AVK_LOG_ERROR, COMPONENT, "event %s: %s not produced: %s", d->event_id,
                dl->topic_failed, err);
        d->state = AVK_DELIVERY_DEAD_DUE;
        d->next_attempt_at = now + dl->backoff_max_ms;
}

void avk_failed_produced(struct avk_deliveries *dl, struct avk_delivery *d)
{
        if (d->state != AVK_DELIVERY_DEAD_SENT || --d->acks_pending > 0)
                return;
        d->state = AVK_DELIVERY_DONE;
        atomic_fetch_add(&dl->dead_lettered, 1);
        avk_delivery_count(dl, d, "dead_lettered");
}
