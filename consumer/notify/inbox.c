/* avk_inbox: see inbox.h. */
#include "consumer/notify/inbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka/kafka.h"
#include "common/util/clock.h"
#include "common/util/log.h"

#define COMPONENT AVK_DELIVERY_LOG

int avk_inbox_copy_cause(struct avk_delivery *d, const rd_kafka_message_t *m)
{
        rd_kafka_headers_t *h;
        const void *value;
        size_t len;
        if (rd_kafka_message_headers(m, &h) != 0 ||
            rd_kafka_header_get_last(h, AVK_HDR_CAUSE, &value, &len) != 0)
                return 0;
        d->has_cause = 1;
        d->cause_len = len;
        if (!value)
                return 0; /* a null value, copied as null */
        if (!(d->cause = malloc(len ? len : 1)))
                return -1;
        memcpy(d->cause, value, len);
        return 0;
}

int avk_inbox_start(struct avk_delivery *d, const void *reported, size_t len, int64_t now)
{
        if (!(d->reported = malloc(len ? len : 1)))
                return -1;
        memcpy(d->reported, reported, len);
        d->reported_len = len;
        d->inbox_state = AVK_INBOX_DUE;
        d->inbox_due_at = now;
        return 0;
}

/* Produces one inbox copy of d (docs/notify.md, "Inbox topics"): the
 * DeviationReported (routed 0) or the DeviationRouted (routed 1) as read,
 * with the headers the router gave them, keyed by the deviation id in the
 * partition the partitioner picks. -1 when out of memory. */
static int produce_inbox_copy(struct avk_deliveries *dl, struct avk_delivery *d, int routed)
{
        char hop_text[16];
        snprintf(hop_text, sizeof(hop_text), "%d", d->hop);
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        rd_kafka_header_add(h, AVK_HDR_ID, -1, routed ? d->event_id : d->deviation_id, -1);
        rd_kafka_header_add(h, AVK_HDR_TYPE, -1, routed ? "DeviationRouted" : "DeviationReported",
                            -1);
        rd_kafka_header_add(h, AVK_HDR_HOP, -1, hop_text, -1);
        if (!routed)
                rd_kafka_header_add(h, AVK_HDR_ROUTED_EVENT, -1, d->event_id, -1);
        else if (d->has_cause)
                rd_kafka_header_add(h, AVK_HDR_CAUSE, -1, d->cause, (ssize_t)d->cause_len);
        return avk_delivery_produce(dl, d, AVK_OUTPUT_INBOX, d->inbox, d->deviation_id,
                                    strlen(d->deviation_id), routed ? d->payload : d->reported,
                                    routed ? d->payload_len : d->reported_len, h);
}

void avk_inbox_send(struct avk_deliveries *dl, struct avk_delivery *d)
{
        d->inbox_pending = 0;
        for (int routed = 0; routed < 2; routed++) {
                if (produce_inbox_copy(dl, d, routed) != 0)
                        return;
                d->inbox_pending++;
        }
        d->inbox_state = AVK_INBOX_SENT;
}

void avk_inbox_refused(struct avk_deliveries *dl, struct avk_delivery *d)
{
        atomic_fetch_add(&dl->inbox_retries, 1);
        avk_metric_add(avk_metrics_series(dl->m_inbox_retries, (const char *[]){d->party}), 1);
        avk_log(AVK_LOG_ERROR, COMPONENT, "event %s: copy to inbox %s not acknowledged; again",
                d->event_id, d->inbox);
}

void avk_inbox_produced(struct avk_deliveries *dl, struct avk_delivery *d)
{
        if (d->inbox_state != AVK_INBOX_SENT || --d->inbox_pending > 0)
                return;
        d->inbox_state = AVK_INBOX_DONE;
        atomic_fetch_add(&dl->inbox, 1);
        avk_delivery_count(dl, d, "inbox");
        avk_log(AVK_LOG_INFO, COMPONENT, "event %s in inbox %s of party %s", d->event_id, d->inbox,
                d->party);
}
