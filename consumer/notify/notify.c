/*
 * avk_notify: the notifier's service shell (see notify.h; the format and
 * policy are in docs/notify.md). It owns the Kafka side - the consumer, the
 * partitions' lists in offset order, the deviation map, the offsets, flow
 * control and rebalances - and moves each delivery by calling the concern
 * modules beside it: delivery.h (records, states, webhook attempts),
 * retry.h (topic.notify.retry), failed.h (dead letters and DeliveryFailed)
 * and inbox.h (the inbox copies).
 *
 * One thread runs everything: the Kafka consumer's queue, libcurl's multi
 * handle and the producer's delivery reports (inbox copies, retry records,
 * dead letters, DeliveryFailed events). It sleeps in
 * curl_multi_poll(), woken by curl's sockets, by a pipe that librdkafka
 * writes to when the consumer's or producer's queue gets something
 * (rd_kafka_queue_io_event_enable), by the next retry falling due, or by
 * avk_notify_stop() (curl_multi_wakeup). No delivery ever blocks another:
 * an attempt is a socket in the multi handle, a backoff is a time stamp.
 *
 * Deliveries of a partition sit in a list in offset order, one list per
 * source topic and one for topic.notify.retry. Offsets advance over the
 * finished head of each list only (avk_delivery_finished(): the webhook's
 * part DONE, and the inbox copies acknowledged or none to write), so an
 * offset is stored when its record and every earlier one of the partition
 * are finished. A failing endpoint holds nothing of the fresh topics: its
 * deliveries wait on the retry topic, and only the records due there are
 * in memory. What is held is bounded by what it costs, not by position:
 * notify.max.in.flight counts the fresh deliveries not finished,
 * notify.retry.max.held the retry records not finished, and each pauses its
 * own topics only. A finished delivery behind an unfinished one is shed of
 * everything but its small struct at once.
 *
 * The deviations of topic.reported are read from the beginning of each
 * assigned partition into a bounded map (deviation id -> the record as
 * read, decoded only when a body is built). Since the router produces a
 * routed record only after its deviation is in Kafka, a deviation still
 * missing notify.deviation.wait.ms after the routed record arrived, with
 * topic.reported's partition read to its end since (or still at its end),
 * is not coming - evicted from the map, or never filed - and the routed
 * record is dead-lettered, with nothing written to the inbox. The wait must
 * well exceed fetch.wait.max.ms, so that a deviation produced just before
 * its routed record has been fetched.
 */
#include "consumer/notify/notify.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "common/kafka/copartition.h"
#include "common/kafka/kafka.h"
#include "common/kafka/pump.h"
#include "common/util/clock.h"
#include "common/util/env.h"
#include "common/util/idcache.h"
#include "common/util/log.h"
#include "common/util/scrub.h"
#include "consumer/notify/delivery.h"
#include "consumer/notify/failed.h"
#include "consumer/notify/inbox.h"
#include "consumer/notify/retry.h"

#define COMPONENT           AVK_DELIVERY_LOG
#define BATCH_MAX           500  /* records taken from the consumer per round */
#define WAITING_CHECK_MS    100  /* how often waiting deliveries look at the clock */
#define SEQ_INDEX_SIZE      1024 /* buckets of the index by seq at start (it grows) */
#define METADATA_TIMEOUT_MS 5000 /* learn_topics() waits this long for every topic's metadata */

/* The records of one topic's partition, in offset order. */
struct queue {
        struct avk_delivery_list list;
        int assigned;
};

struct part {
        struct queue q[AVK_Q_CNT];
        uint64_t reported_eof_seq; /* times topic.reported's partition was read to its end */
        int reported_at_end;       /* nothing read from topic.reported since its last end */
};

struct avk_notify {
        const avk_config_t *cfg;
        struct avk_env env;
        struct avk_pump pump;
        struct avk_deliveries dl; /* what the concern modules work with */
        int64_t wait_ms;
        size_t max_held, retry_max_held;
        struct part *parts;
        int part_cnt;
        avk_idcache_t *cache;    /* deviation id -> the DeviationReported as read */
        size_t held, retry_held; /* deliveries not finished: fresh, of the retry topic */
        int paused, retry_paused;
        atomic_int partitions; /* of topic.routed, assigned now */
        atomic_uint_fast64_t held_now, retry_held_now;
        avk_metric_family_t *m_held, *m_retry_held;
};

/* ---- the pure parts ---------------------------------------------------- */

/* DeviationReported's free-text fields. */
static const char *const free_text[] = {"description", "immediate_actions", "routine"};

json_t *avk_notify_body(const json_t *routed, const json_t *deviation, int patient_identity)
{
        json_t *body = json_deep_copy(routed);
        json_t *dev = json_deep_copy(deviation);
        if (!body || !dev || json_object_set_new(body, "deviation", dev) != 0) {
                json_decref(body);
                return NULL;
        }
        if (patient_identity)
                return body;
        json_t *patient = json_object_get(dev, "patient");
        if (json_is_object(patient))
                json_object_del(patient, "personal_id");
        /* Staff write identities into free text too: an endpoint not cleared
         * for them gets the text as the analysis stream does. */
        for (size_t i = 0; i < sizeof(free_text) / sizeof(free_text[0]); i++) {
                json_t *field = json_object_get(dev, free_text[i]);
                if (!json_is_string(field))
                        continue;
                char *clean =
                    avk_scrub_text(json_string_value(field), json_string_length(field), NULL, NULL);
                if (!clean || json_object_set_new(dev, free_text[i], json_string(clean)) != 0) {
                        free(clean);
                        json_decref(body);
                        return NULL;
                }
                free(clean);
        }
        return body;
}

static void on_produced(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        avk_notify_t *n = opaque;
        enum avk_output out;
        struct avk_delivery *d = avk_delivery_reported(&n->dl, m, &out);
        if (!d)
                return; /* abandoned at a rebalance: the next owner starts again */
        switch (out) {
        case AVK_OUTPUT_INBOX:
                avk_inbox_produced(&n->dl, d, m);
                break;
        case AVK_OUTPUT_PARK:
                avk_retry_produced(&n->dl, d, m);
                break;
        case AVK_OUTPUT_DEAD_LETTER:
                avk_failed_produced(&n->dl, d, m);
                break;
        }
}

/* Starts a routed record's channels once its deviation is known: the
 * inbox copies, and the webhook's body. */
static void resolve(avk_notify_t *n, struct avk_delivery *d, int64_t now)
{
        size_t len;
        const void *payload = avk_idcache_get(n->cache, d->deviation_id, &len);
        if (!payload) {
                const struct part *part = &n->parts[d->partition];
                if ((part->reported_eof_seq > d->eof_seq || part->reported_at_end) &&
                    now - d->arrived_at >= n->wait_ms)
                        avk_failed_dead_letter(&n->dl, d, 1, "deviation not found in %s",
                                               n->dl.topic_reported);
                return;
        }
        if (d->inbox && avk_inbox_start(d, payload, len, now) != 0) {
                snprintf(n->pump.fatal, sizeof(n->pump.fatal), "out of memory");
                return;
        }
        avk_delivery_compose(&n->dl, d, payload, len, now);
}

static int ensure_part(avk_notify_t *n, int32_t partition)
{
        int old_cnt = n->part_cnt;
        struct part *parts = avk_pump_grow(n->parts, &n->part_cnt, sizeof(*parts), partition);
        if (!parts)
                return -1;
        n->parts = parts;
        /* The array may have moved, and an empty list's tail pointer points
         * into its own head: set every empty list up again. */
        for (int p = 0; n->part_cnt != old_cnt && p < n->part_cnt; p++)
                for (int q = 0; q < AVK_Q_CNT; q++)
                        if (STAILQ_EMPTY(&parts[p].q[q].list))
                                STAILQ_INIT(&parts[p].q[q].list);
        return 0;
}

/* A record of a source topic (queue < AVK_Q_RETRY) or of the retry topic. */
static void on_record(avk_notify_t *n, const rd_kafka_message_t *m, int queue)
{
        struct avk_delivery *d = avk_delivery_new(&n->dl);
        if (!d || ensure_part(n, m->partition) != 0 ||
            avk_pump_copy(m, &d->key, &d->key_len, &d->payload, &d->payload_len) != 0 ||
            (queue == AVK_SRC_ROUTED && avk_inbox_copy_cause(d, m) != 0)) {
                if (d)
                        avk_delivery_free(&n->dl, d);
                snprintf(n->pump.fatal, sizeof(n->pump.fatal), "out of memory");
                return;
        }
        d->queue = queue;
        d->src = queue < AVK_Q_RETRY ? (enum avk_source)queue : AVK_SRC_CNT;
        d->partition = d->origin_partition = m->partition;
        d->offset = d->origin_offset = m->offset;
        d->arrived_at = avk_clock_mono_ms();
        struct part *part = &n->parts[m->partition];
        d->eof_seq = part->reported_eof_seq;
        STAILQ_INSERT_TAIL(&part->q[queue].list, d, link);
        if (queue == AVK_Q_RETRY)
                avk_retry_accept(&n->dl, d, m, d->arrived_at);
        else
                avk_delivery_accept(&n->dl, d, d->arrived_at);
}

static void on_reported(avk_notify_t *n, const rd_kafka_message_t *m)
{
        char id[AVK_DELIVERY_ID_SIZE];
        if (!m->key || m->key_len == 0 || m->key_len >= sizeof(id)) {
                /* The router dead-letters what it cannot read; here it is only counted. */
                avk_metric_add(
                    avk_metrics_series(n->dl.m_undecodable, (const char *[]){n->dl.topic_reported}),
                    1);
                return;
        }
        if (ensure_part(n, m->partition) == 0)
                n->parts[m->partition].reported_at_end = 0;
        memcpy(id, m->key, m->key_len);
        id[m->key_len] = '\0';
        if (avk_idcache_put(n->cache, id, m->payload, m->len) != 0)
                snprintf(n->pump.fatal, sizeof(n->pump.fatal), "out of memory");
}

/* A record or a partition's end, from avk_pump_take(). */
static void on_message(void *opaque, const rd_kafka_message_t *m)
{
        avk_notify_t *n = opaque;
        const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
        int reported = strcmp(topic, n->dl.topic_reported) == 0;
        if (m->err) {
                if (reported && ensure_part(n, m->partition) == 0) {
                        n->parts[m->partition].reported_eof_seq++;
                        n->parts[m->partition].reported_at_end = 1;
                }
        } else if (reported) {
                on_reported(n, m);
        } else {
                for (int q = 0; q < AVK_Q_CNT; q++) {
                        if (strcmp(topic, n->dl.topic[q]) == 0) {
                                on_record(n, m, q);
                                break;
                        }
                }
        }
}

/* Frees every delivery of list. */
static void free_list(avk_notify_t *n, struct avk_delivery_list *list)
{
        struct avk_delivery *d;
        while ((d = STAILQ_FIRST(list))) {
                STAILQ_REMOVE_HEAD(list, link);
                avk_delivery_free(&n->dl, d);
        }
}

/* Moves every delivery that can move; returns when the next one falls due. */
static int64_t step(avk_notify_t *n, int64_t now)
{
        int64_t next = now + AVK_PUMP_POLL_MAX_MS;
        for (int p = 0; p < n->part_cnt; p++) {
                for (int q = 0; q < AVK_Q_CNT; q++) {
                        struct avk_delivery *d;
                        STAILQ_FOREACH(d, &n->parts[p].q[q].list, link)
                        {
                                /* Retry attempts at once are bounded like
                                 * fresh ones: a due retry without a slot
                                 * waits for an attempt to finish. */
                                int no_slot =
                                    q == AVK_Q_RETRY && n->dl.retry_attempts >= n->max_held;
                                if (d->state == AVK_DELIVERY_WAITING)
                                        resolve(n, d, now);
                                if (d->state == AVK_DELIVERY_DUE && d->next_attempt_at <= now &&
                                    !no_slot &&
                                    (q != AVK_Q_RETRY || avk_retry_address(&n->dl, d) == 0))
                                        avk_delivery_start_attempt(&n->dl, d, now);
                                else if (d->state == AVK_DELIVERY_PARK_DUE &&
                                         d->next_attempt_at <= now)
                                        avk_retry_send(&n->dl, d, now);
                                else if (d->state == AVK_DELIVERY_DEAD_DUE &&
                                         d->next_attempt_at <= now)
                                        avk_failed_send(&n->dl, d, now);
                                if (d->inbox_state == AVK_INBOX_DUE && d->inbox_due_at <= now)
                                        avk_inbox_send(&n->dl, d, now);
                                if (d->inbox_state == AVK_INBOX_DUE && d->inbox_due_at < next)
                                        next = d->inbox_due_at;
                                if (((d->state == AVK_DELIVERY_DUE && !no_slot) ||
                                     d->state == AVK_DELIVERY_PARK_DUE ||
                                     d->state == AVK_DELIVERY_DEAD_DUE) &&
                                    d->next_attempt_at < next)
                                        next = d->next_attempt_at;
                                if (d->state == AVK_DELIVERY_WAITING &&
                                    now + WAITING_CHECK_MS < next)
                                        next = now + WAITING_CHECK_MS;
                        }
                }
        }
        return next;
}

static void attempt_done(void *opaque, void *private_ptr, int curl_code)
{
        avk_notify_t *n = opaque;
        avk_delivery_finish_attempt(&n->dl, private_ptr, curl_code, avk_clock_mono_ms());
}

/* Stores the offset past the finished head of every partition, sheds the
 * finished deliveries behind an unfinished one, and counts the unfinished. */
static void advance_offsets(avk_notify_t *n)
{
        size_t held[2] = {0, 0}; /* of the source topics, of the retry topic */
        for (int p = 0; p < n->part_cnt; p++) {
                for (int qi = 0; qi < AVK_Q_CNT; qi++) {
                        struct queue *q = &n->parts[p].q[qi];
                        int64_t last = -1;
                        struct avk_delivery *d;
                        while ((d = STAILQ_FIRST(&q->list)) && avk_delivery_finished(d)) {
                                last = d->offset;
                                STAILQ_REMOVE_HEAD(&q->list, link);
                                avk_delivery_free(&n->dl, d);
                        }
                        if (last >= 0 && q->assigned)
                                avk_pump_store(&n->pump, n->dl.topic[qi], p, last + 1);
                        STAILQ_FOREACH(d, &q->list, link)
                        {
                                if (avk_delivery_finished(d))
                                        avk_delivery_shed(&n->dl, d);
                                else
                                        held[qi == AVK_Q_RETRY]++;
                        }
                }
        }
        n->held = held[0];
        n->retry_held = held[1];
        atomic_store(&n->held_now, n->held);
        atomic_store(&n->retry_held_now, n->retry_held);
        avk_metric_set(avk_metrics_series(n->m_held, NULL), (int64_t)n->held);
        avk_metric_set(avk_metrics_series(n->m_retry_held, NULL), (int64_t)n->retry_held);
}

/* Pauses (pause) or resumes the assigned partitions of the source topics
 * (retry 0) or of the retry topic (retry 1). */
static void pause_topics(avk_notify_t *n, int retry, int pause)
{
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(n->part_cnt * AVK_Q_CNT);
        for (int p = 0; p < n->part_cnt; p++)
                for (int q = 0; q < AVK_Q_CNT; q++)
                        if ((q == AVK_Q_RETRY) == retry && n->parts[p].q[q].assigned)
                                rd_kafka_topic_partition_list_add(l, n->dl.topic[q], p);
        avk_pump_pause(&n->pump, l, pause);
}

/* Stops fetching the source topics while notify.max.in.flight of their
 * deliveries are unfinished, and the retry topic while
 * notify.retry.max.held of its records are: neither holds up the other. */
static void flow_control(avk_notify_t *n)
{
        int want_paused = n->held >= n->max_held;
        if (want_paused != n->paused) {
                pause_topics(n, 0, want_paused);
                n->paused = want_paused;
        }
        want_paused = n->retry_held >= n->retry_max_held;
        if (want_paused != n->retry_paused) {
                pause_topics(n, 1, want_paused);
                n->retry_paused = want_paused;
        }
}

/*
 * Gives the partitions up: finished deliveries (dead letters acknowledged
 * within avk_pump_flush()'s bound included) are committed, the rest are dropped for
 * the partitions' next owner to deliver again under the same event id.
 */
static void release_all(avk_notify_t *n)
{
        avk_pump_flush(&n->pump);
        advance_offsets(n);
        avk_pump_commit(&n->pump);
        for (int p = 0; p < n->part_cnt; p++) {
                struct part *part = &n->parts[p];
                for (int qi = 0; qi < AVK_Q_CNT; qi++) {
                        struct queue *q = &part->q[qi];
                        free_list(n, &q->list);
                        q->assigned = 0;
                }
                part->reported_at_end = 0;
        }
        atomic_store(&n->partitions, 0);
        n->held = n->retry_held = n->dl.retry_attempts = 0;
        n->paused = n->retry_paused = 0;
        atomic_store(&n->held_now, 0);
        atomic_store(&n->retry_held_now, 0);
        avk_idcache_clear(n->cache);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
        avk_notify_t *n = opaque;
        if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                release_all(n);
                rd_kafka_assign(rk, NULL);
                return;
        }
        for (int i = 0; i < partitions->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &partitions->elems[i];
                if (ensure_part(n, tp->partition) != 0) {
                        snprintf(n->pump.fatal, sizeof(n->pump.fatal), "out of memory");
                        break;
                }
                /* Deviations are not committed: the map is rebuilt from the start. */
                if (strcmp(tp->topic, n->dl.topic_reported) == 0)
                        tp->offset = RD_KAFKA_OFFSET_BEGINNING;
                for (int q = 0; q < AVK_Q_CNT; q++)
                        if (strcmp(tp->topic, n->dl.topic[q]) == 0)
                                n->parts[tp->partition].q[q].assigned = 1;
        }
        for (int i = 0; i < partitions->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &partitions->elems[i];
                if (strcmp(tp->topic, n->dl.topic[AVK_SRC_ROUTED]) == 0)
                        atomic_fetch_add(&n->partitions, 1);
                if (strcmp(tp->topic, n->dl.topic[AVK_SRC_ROUTED]) == 0 &&
                    !rd_kafka_topic_partition_list_find(partitions, n->dl.topic_reported,
                                                        tp->partition))
                        avk_log(AVK_LOG_ERROR, COMPONENT,
                                "%s [%d] is assigned without %s [%d]: the topics' partition "
                                "counts differ, and its deliveries wait for deviations that "
                                "are read elsewhere",
                                n->dl.topic[AVK_SRC_ROUTED], (int)tp->partition,
                                n->dl.topic_reported, (int)tp->partition);
        }
        rd_kafka_assign(rk, partitions);
}

/* ---- life cycle -------------------------------------------------------- */

static void register_metrics(avk_notify_t *n, avk_metrics_t *m)
{
        if (!m)
                return;
        n->dl.m_deliveries = avk_metrics_counter(
            m, "avk_notify_deliveries_total",
            "Deliveries finished by the notifier, by receiving party, outcome (delivered: the "
            "webhook took it; inbox: both inbox copies acknowledged; dead_lettered; no_webhook: an "
            "escalation or reminder to a receiver without a webhook) and event (routed, "
            "escalated, reminder).",
            (const char *[]){"party", "outcome", "event", NULL});
        n->dl.m_inbox_retries = avk_metrics_counter(
            m, "avk_notify_inbox_retries_total",
            "Inbox copies produced again after Kafka refused or failed them, by receiving party.",
            (const char *[]){"party", NULL});
        n->dl.m_attempts = avk_metrics_counter(
            m, "avk_notify_attempts_total",
            "Webhook attempts by receiving party and result (2xx, 4xx, 5xx, timeout, tls, "
            "connect, error).",
            (const char *[]){"party", "result", NULL});
        n->dl.m_latency = avk_metrics_histogram(
            m, "avk_notify_attempt_seconds", "Duration of webhook attempts by receiving party.",
            (const char *[]){"party", NULL}, AVK_METRICS_LATENCY_BUCKETS,
            AVK_METRICS_LATENCY_BUCKET_CNT);
        n->m_held = avk_metrics_gauge(m, "avk_notify_held",
                                      "Deliveries of topic.routed, topic.escalated and "
                                      "topic.reminder not finished (waiting for the deviation, "
                                      "first attempt in flight, inbox copies or parking not "
                                      "acknowledged).",
                                      NULL);
        n->m_retry_held = avk_metrics_gauge(
            m, "avk_notify_retry_held",
            "Records of topic.notify.retry held until their attempt is finished.", NULL);
        n->dl.m_parked = avk_metrics_counter(
            m, "avk_notify_retries_parked_total",
            "Failed webhook attempts parked on topic.notify.retry for a later attempt, by "
            "receiving party and event (routed, escalated, reminder).",
            (const char *[]){"party", "event", NULL});
        n->dl.m_undecodable = avk_metrics_counter(m, "avk_notify_undecodable_total",
                                                  "Records the notifier could not read, by topic.",
                                                  (const char *[]){"topic", NULL});
}

avk_notify_t *avk_notify_new(const avk_config_t *cfg, const avk_directory_t *dir,
                             avk_metrics_t *metrics, char *errstr, size_t errstr_size)
{
        avk_notify_t *n = calloc(1, sizeof(*n));
        if (!n) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        avk_pump_init(&n->pump, COMPONENT);
        n->cfg = cfg;
        n->dl.dir = dir;
        n->dl.pump = &n->pump;
        n->dl.timeout_ms = avk_config_get_int(cfg, "notify.timeout.ms");
        n->dl.connect_timeout_ms = avk_config_get_int(cfg, "notify.connect.timeout.ms");
        n->dl.retry_max = avk_config_get_int(cfg, "notify.retry.max");
        n->dl.max_age_ms = avk_config_get_int(cfg, "notify.retry.max.age.ms");
        n->dl.backoff_ms = avk_config_get_int(cfg, "notify.retry.backoff.ms");
        n->dl.backoff_max_ms = avk_config_get_int(cfg, "notify.retry.backoff.max.ms");
        n->wait_ms = avk_config_get_int(cfg, "notify.deviation.wait.ms");
        n->max_held = (size_t)avk_config_get_int(cfg, "notify.max.in.flight");
        n->retry_max_held = (size_t)avk_config_get_int(cfg, "notify.retry.max.held");
        n->dl.ca_location = avk_config_get(cfg, "notify.ssl.ca.location");
        for (int s = 0; s < AVK_SRC_CNT; s++)
                n->dl.topic[s] = avk_config_get(cfg, avk_delivery_sources[s].topic_key);
        n->dl.topic[AVK_Q_RETRY] = avk_config_get(cfg, "topic.notify.retry");
        n->dl.topic_reported = avk_config_get(cfg, "topic.reported");
        n->dl.topic_deadletter = avk_config_get(cfg, "topic.deadletter");
        n->dl.topic_failed = avk_config_get(cfg, "topic.delivery.failed");
        n->dl.rng = (uint64_t)avk_clock_system_ms() ^ ((uint64_t)getpid() << 32);
        register_metrics(n, metrics);
        if (avk_htab_init(&n->dl.by_seq, SEQ_INDEX_SIZE) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (n->dl.backoff_ms > n->dl.backoff_max_ms) {
                snprintf(errstr, errstr_size,
                         "notify.retry.backoff.ms: %" PRId64
                         " is more than notify.retry.backoff.max.ms (%" PRId64 ")",
                         n->dl.backoff_ms, n->dl.backoff_max_ms);
                goto fail;
        }
        if (avk_env_open(&n->env, cfg, errstr, errstr_size) != 0)
                goto fail;
        for (int s = 0; s < AVK_SRC_CNT; s++) {
                n->dl.schema[s] =
                    avk_catalog_by_name(n->env.catalog, avk_delivery_sources[s].schema);
                if (!n->dl.schema[s] || avro_generic_value_new(avk_schema_iface(n->dl.schema[s]),
                                                               &n->dl.value[s]) != 0) {
                        snprintf(errstr, errstr_size, "out of memory");
                        goto fail;
                }
        }
        n->dl.reported_schema = avk_catalog_by_name(n->env.catalog, "DeviationReported");
        n->dl.failed_schema = avk_catalog_by_name(n->env.catalog, "DeliveryFailed");
        n->dl.codec = avk_codec_new(n->env.catalog, n->env.registry);
        if (!n->dl.reported_schema || !n->dl.failed_schema || !n->dl.codec ||
            !(n->cache =
                  avk_idcache_new((size_t)avk_config_get_int(cfg, "notify.cache.max.entries"))) ||
            avro_generic_value_new(avk_schema_iface(n->dl.reported_schema),
                                   &n->dl.reported_value) != 0 ||
            avro_generic_value_new(avk_schema_iface(n->dl.failed_schema), &n->dl.failed_value) !=
                0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        struct avk_copartition cp = {.service = "avvik notify",
                                     .group_key = "notify.group.id",
                                     .topic_a = n->dl.topic[AVK_SRC_ROUTED],
                                     .topic_b = n->dl.topic_reported,
                                     .rebalance_cb = on_rebalance,
                                     .opaque = n};
        if (avk_pump_open(&n->pump, cfg, on_produced, n, &cp, errstr, errstr_size) != 0)
                goto fail;
        return n;
fail:
        avk_notify_destroy(n);
        return NULL;
}

/* Asks for every topic's metadata through the producer: its cache then
 * knows the inbox topics, and the first copy to each goes at once instead
 * of waiting for a metadata request of its own. Latency only: a failure is
 * logged and the copies find their topics later. */
static void learn_topics(avk_notify_t *n)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e =
            rd_kafka_metadata(n->pump.producer, 1, NULL, &md, METADATA_TIMEOUT_MS);
        if (e) {
                avk_log(AVK_LOG_WARN, COMPONENT, "topic metadata: %s", rd_kafka_err2str(e));
                return;
        }
        rd_kafka_metadata_destroy(md);
}

int avk_notify_run(avk_notify_t *n, char *errstr, size_t errstr_size)
{
        learn_topics(n);
        const char *topics[AVK_Q_CNT + 1];
        for (int q = 0; q < AVK_Q_CNT; q++)
                topics[q] = n->dl.topic[q];
        topics[AVK_Q_CNT] = n->dl.topic_reported;
        if (avk_pump_subscribe(&n->pump, topics, AVK_Q_CNT + 1, errstr, errstr_size) != 0)
                return -1;
        avk_log(AVK_LOG_INFO, COMPONENT, "consuming %s, %s, %s, %s and %s as group %s",
                n->dl.topic[AVK_SRC_ROUTED], n->dl.topic[AVK_SRC_ESCALATED],
                n->dl.topic[AVK_SRC_REMINDER], n->dl.topic[AVK_Q_RETRY], n->dl.topic_reported,
                avk_config_get(n->cfg, "notify.group.id"));
        while (avk_pump_running(&n->pump)) {
                int taken = avk_pump_take(&n->pump, BATCH_MAX, on_message, n);
                int64_t now = avk_clock_mono_ms();
                int64_t next = step(n, now);
                avk_pump_serve(&n->pump, attempt_done, n);
                advance_offsets(n);
                flow_control(n);
                /* Finished attempts may have made retries or offsets due now. */
                int64_t again = step(n, avk_clock_mono_ms());
                if (again < next)
                        next = again;
                avk_pump_sleep(&n->pump, next, taken == BATCH_MAX);
        }
        release_all(n);
        if (n->pump.fatal[0]) {
                snprintf(errstr, errstr_size, "%s", n->pump.fatal);
                return -1;
        }
        return 0;
}

void avk_notify_stop(avk_notify_t *n)
{
        avk_pump_stop(&n->pump);
}

void avk_notify_stats(avk_notify_t *n, struct avk_notify_stats *stats)
{
        stats->delivered = atomic_load(&n->dl.delivered);
        stats->no_webhook = atomic_load(&n->dl.no_webhook);
        stats->dead_lettered = atomic_load(&n->dl.dead_lettered);
        stats->inbox = atomic_load(&n->dl.inbox);
        stats->inbox_retries = atomic_load(&n->dl.inbox_retries);
        stats->attempts = atomic_load(&n->dl.attempts);
        stats->parked = atomic_load(&n->dl.parked);
        stats->held = atomic_load(&n->held_now);
        stats->retry_held = atomic_load(&n->retry_held_now);
        stats->partitions = atomic_load(&n->partitions);
}

int avk_notify_ready(void *opaque, char *why, size_t why_size)
{
        avk_notify_t *n = opaque;
        return avk_kafka_ready(n->pump.producer, atomic_load(&n->partitions),
                               n->dl.topic[AVK_SRC_ROUTED], why, why_size);
}

void avk_notify_destroy(avk_notify_t *n)
{
        if (!n)
                return;
        avk_pump_close_kafka(&n->pump); /* the consumer's revocation: release_all() */
        for (int p = 0; p < n->part_cnt; p++)
                for (int q = 0; q < AVK_Q_CNT; q++)
                        free_list(n, &n->parts[p].q[q].list);
        free(n->parts);
        avk_htab_destroy(&n->dl.by_seq);
        avk_pump_close(&n->pump);
        avk_idcache_destroy(n->cache);
        for (int s = 0; s < AVK_SRC_CNT; s++)
                if (n->dl.value[s].self)
                        avro_value_decref(&n->dl.value[s]);
        if (n->dl.reported_value.self)
                avro_value_decref(&n->dl.reported_value);
        if (n->dl.failed_value.self)
                avro_value_decref(&n->dl.failed_value);
        avk_codec_destroy(n->dl.codec);
        avk_env_close(&n->env);
        free(n);
}
