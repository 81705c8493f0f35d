/*
 * avk_notify: the notifier's service hooks on the service kernel
 * (common/kafka/service.h; docs/architecture.md, "The service kernel"; the
 * format and policy are in docs/notify.md). The kernel owns the Kafka side -
 * the group consumer and the producer, the inputs' offsets, dead letters,
 * flow control, rebalances, readiness and the standard metrics; here are
 * the deviation map and the live deliveries, each moved by the concern
 * modules beside it: delivery.h (records, states, webhook attempts),
 * retry.h (topic.notify.retry), failed.h (dead letters and DeliveryFailed)
 * and inbox.h (the inbox copies).
 *
 * One thread runs everything: the kernel's loop, libcurl's multi handle
 * (the kernel sleeps through the wait hook in curl_multi_poll(), woken by
 * curl's sockets, the Kafka queues, a due time or avk_notify_stop()) and
 * the outbox's acknowledgements. No delivery ever blocks another: an
 * attempt is a socket in the multi handle, a backoff is a time stamp.
 *
 * Every record of topic.routed, topic.escalated, topic.reminder, topic.feedback
 * and topic.notify.retry is a delivery holding its kernel input unfinished
 * (avk_outbox_hold()); its inbox copies, retry record, dead letter and
 * DeliveryFailed event are outputs of that input. It ends when
 * avk_delivery_finished() (the webhook's part DONE: delivered, parked or
 * dead-lettered, and the inbox copies acknowledged or none to write); the
 * kernel stores an input's offset once it and every earlier input of its
 * partition are finished. A failing endpoint holds nothing of the fresh
 * topics: its deliveries wait on the retry topic, and only the records due
 * there are in memory. The kernel pauses the fresh topics while
 * notify.max.in.flight of their inputs are unfinished, and the retry topic
 * while notify.retry.max.held of its are: neither holds up the other.
 *
 * The deviations of topic.reported fill a bounded map (deviation id -> the
 * record as read, decoded only when a body is built), rebuilt from the
 * beginning of each assigned partition (on_rebuild) and kept up by the
 * records read since. Since the router produces a routed record only after
 * its deviation is in Kafka, a deviation still missing
 * notify.deviation.wait.ms after the routed record arrived, with
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

#include "common/kafka/partner.h"
#include "common/kafka/service.h"
#include "common/util/clock.h"
#include "common/util/env.h"
#include "common/util/idcache.h"
#include "common/util/log.h"
#include "common/util/scrub.h"
#include "consumer/notify/delivery.h"
#include "consumer/notify/failed.h"
#include "consumer/notify/inbox.h"
#include "consumer/notify/retry.h"

#define COMPONENT        AVK_DELIVERY_LOG
#define WAITING_CHECK_MS 100  /* how often waiting deliveries look at the clock */
#define SEQ_INDEX_SIZE   1024 /* buckets of the index by seq at start (it grows) */
#define MAX_PARTITIONS   AVK_SERVICE_MAX_PARTITIONS
#define IN_REPORTED      AVK_Q_CNT /* the kernel's inputs: the lists' topics, then topic.reported */
#define IN_CNT           (AVK_Q_CNT + 1)
/* A body that waits for the Schema Registry is built again after this, doubling up to the max. */
#define REGISTRY_BACKOFF_MIN_MS 200
#define REGISTRY_BACKOFF_MAX_MS 5000

/* Flow control: the fresh topics share a bound, the retry topic has its own. */
enum pool { POOL_FRESH, POOL_RETRY, POOL_REPORTED };
static const int input_pool[IN_CNT] = {POOL_FRESH, POOL_FRESH, POOL_FRESH,
                                       POOL_FRESH, POOL_RETRY, POOL_REPORTED};

struct avk_notify {
        const avk_config_t *cfg;
        struct avk_env env;
        avk_service_t *service;
        avk_metrics_t *own_metrics; /* when the caller gave none */
        int curl_inited;
        struct avk_deliveries dl; /* what the concern modules work with */
        const char *inputs[IN_CNT];
        size_t pool_bounds[POOL_REPORTED + 1];
        int64_t wait_ms;
        size_t max_held;
        struct avk_delivery_list live;                 /* every delivery not yet ended */
        struct avk_partner_part parts[MAX_PARTITIONS]; /* of topic.reported */
        avk_idcache_t *cache; /* deviation id -> the DeviationReported as read */
        size_t held[2];       /* deliveries not finished: fresh, of the retry topic */
        atomic_uint_fast64_t held_now, retry_held_now;
        avk_metric_family_t *m_held, *m_retry_held;
        /* Bodies wait for the Schema Registry: no deviation is decoded
         * before registry_retry_at; not ready meanwhile. */
        int64_t registry_backoff_ms, registry_retry_at;
        atomic_int registry_waiting;
};

/* ---- the pure parts ---------------------------------------------------- */

/* DeviationReported's free-text fields, and DeviationFeedback's. */
static const char *const free_text[] = {"description", "immediate_actions", "routine"};
static const char *const feedback_text[] = {"reason", "analysis", "action_plan"};

/* Staff write identities into free text too: an endpoint not cleared for
 * them gets the text as the analysis stream does. @returns -1 when out of memory. */
static int scrub_fields(json_t *obj, const char *const *fields, size_t cnt)
{
        for (size_t i = 0; i < cnt; i++) {
                json_t *field = json_object_get(obj, fields[i]);
                if (!json_is_string(field))
                        continue;
                char *clean =
                    avk_scrub_text(json_string_value(field), json_string_length(field), NULL, NULL);
                int rc = clean ? json_object_set_new(obj, fields[i], json_string(clean)) : -1;
                free(clean);
                if (rc != 0)
                        return -1;
        }
        return 0;
}

json_t *avk_notify_feedback_body(const json_t *feedback, int patient_identity)
{
        json_t *body = json_deep_copy(feedback);
        if (body && !patient_identity &&
            scrub_fields(body, feedback_text, sizeof(feedback_text) / sizeof(feedback_text[0])) !=
                0) {
                json_decref(body);
                return NULL;
        }
        return body;
}

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
        if (scrub_fields(dev, free_text, sizeof(free_text) / sizeof(free_text[0])) != 0) {
                json_decref(body);
                return NULL;
        }
        return body;
}

static void publish_counts(avk_notify_t *n)
{
        atomic_store(&n->held_now, n->held[0]);
        atomic_store(&n->retry_held_now, n->held[1]);
        avk_metric_set(avk_metrics_series(n->m_held, NULL), (int64_t)n->held[0]);
        avk_metric_set(avk_metrics_series(n->m_retry_held, NULL), (int64_t)n->held[1]);
}

/* Ends d: out of the list, its hold on its input released, freed. */
static void end_delivery(avk_notify_t *n, struct avk_delivery *d)
{
        TAILQ_REMOVE(&n->live, d, link);
        n->held[d->queue == AVK_Q_RETRY]--;
        if (d->queue == AVK_Q_RETRY && d->state == AVK_DELIVERY_IN_FLIGHT)
                n->dl.retry_attempts--;
        avk_outbox_end(n->dl.outbox, d->in, d->in_seq);
        avk_delivery_free(&n->dl, d);
}

/* Kafka acknowledged an output of a delivery (NULL: ended since). */
static void on_acked(void *opaque, const void *key, size_t key_len, uint64_t tag)
{
        avk_notify_t *n = opaque;
        (void)key;
        (void)key_len;
        enum avk_output out;
        struct avk_delivery *d = avk_delivery_tagged(&n->dl, tag, &out);
        if (!d)
                return;
        switch (out) {
        case AVK_OUTPUT_INBOX:
                avk_inbox_produced(&n->dl, d);
                break;
        case AVK_OUTPUT_PARK:
                avk_retry_produced(&n->dl, d);
                break;
        case AVK_OUTPUT_DEAD_LETTER:
                avk_failed_produced(&n->dl, d);
                break;
        }
}

/* Kafka refused or failed an output: produced again while its delivery
 * lives (one abandoned at a rebalance is the next owner's to redo). */
static int still_wanted(void *opaque, const void *key, size_t key_len, uint64_t tag)
{
        struct avk_deliveries *dl = &((avk_notify_t *)opaque)->dl;
        enum avk_output out;
        struct avk_delivery *d = avk_delivery_tagged(dl, tag, &out);
        (void)key;
        (void)key_len;
        if (d && out == AVK_OUTPUT_INBOX)
                avk_inbox_refused(dl, d);
        return d != NULL;
}

/* The Schema Registry had no answer for a deviation's writer schema (why):
 * no body is built before a backoff has passed, and the notifier is not
 * ready meanwhile. Nothing is dead-lettered for it. */
static void registry_wait(avk_notify_t *n, const char *why, int64_t now)
{
        if (!n->registry_backoff_ms)
                avk_log(AVK_LOG_WARN, COMPONENT,
                        "webhook bodies wait for the Schema Registry: %s (built again later, not "
                        "dead-lettered)",
                        why);
        n->registry_backoff_ms =
            n->registry_backoff_ms ? n->registry_backoff_ms * 2 : REGISTRY_BACKOFF_MIN_MS;
        if (n->registry_backoff_ms > REGISTRY_BACKOFF_MAX_MS)
                n->registry_backoff_ms = REGISTRY_BACKOFF_MAX_MS;
        n->registry_retry_at = now + n->registry_backoff_ms;
        atomic_store(&n->registry_waiting, 1);
}

static void registry_answered(avk_notify_t *n)
{
        if (!n->registry_backoff_ms)
                return;
        avk_log(AVK_LOG_INFO, COMPONENT, "webhook bodies are built again");
        n->registry_backoff_ms = 0;
        atomic_store(&n->registry_waiting, 0);
}

/* Starts a routed record's channels once its deviation is known: the
 * inbox copies (once), and the webhook's body, which waits while the
 * Schema Registry has no answer for the deviation's writer schema. */
static void resolve(avk_notify_t *n, struct avk_delivery *d, int64_t now)
{
        size_t len;
        const void *payload = avk_idcache_get(n->cache, d->deviation_id, &len);
        if (!payload) {
                if (avk_partner_gone(&n->parts[d->partition], d->eof_seq, now - d->arrived_at,
                                     n->wait_ms))
                        avk_failed_dead_letter(&n->dl, d, 1, "deviation not found in %s",
                                               n->dl.topic_reported);
                return;
        }
        if (d->inbox && d->inbox_state == AVK_INBOX_NONE &&
            avk_inbox_start(d, payload, len, now) != 0) {
                snprintf(n->dl.fatal, sizeof(n->dl.fatal), "out of memory");
                return;
        }
        if (now < n->registry_retry_at)
                return;
        char why[512];
        if (avk_delivery_compose(&n->dl, d, payload, len, now, why, sizeof(why)) ==
            AVK_CODEC_UNAVAILABLE)
                registry_wait(n, why, now);
        else if (d->webhook)
                registry_answered(n);
}

/* A record of a source topic (queue < AVK_Q_RETRY) or of the retry topic.
 * @returns 0, or AVK_SERVICE_WAIT with the reason in why when the Schema
 * Registry had no answer for the record's writer schema: nothing kept, the
 * kernel reads the record again after a backoff. */
static int on_delivery_record(avk_notify_t *n, int queue, avk_outbox_input_t *in, uint64_t seq,
                              const rd_kafka_message_t *m, char *why, size_t why_size)
{
        struct avk_delivery *d = avk_delivery_new(&n->dl);
        if (!d || avk_outbox_keep(m, &d->key, &d->payload) != 0 ||
            (queue == AVK_SRC_ROUTED && avk_inbox_copy_cause(d, m) != 0)) {
                if (d)
                        avk_delivery_free(&n->dl, d);
                snprintf(n->dl.fatal, sizeof(n->dl.fatal), "out of memory");
                return 0;
        }
        d->key_len = m->key_len;
        d->payload_len = m->len;
        d->in = in;
        d->in_seq = seq;
        d->queue = queue;
        d->src = queue < AVK_Q_RETRY ? (enum avk_source)queue : AVK_SRC_CNT;
        d->partition = d->origin_partition = m->partition;
        d->offset = d->origin_offset = m->offset;
        d->arrived_at = avk_clock_mono_ms();
        d->eof_seq = n->parts[m->partition].eof_seq;
        if (queue != AVK_Q_RETRY &&
            avk_delivery_accept(&n->dl, d, d->arrived_at, why, why_size) == AVK_CODEC_UNAVAILABLE) {
                avk_delivery_free(&n->dl, d);
                return AVK_SERVICE_WAIT;
        }
        avk_outbox_hold(in, seq);
        TAILQ_INSERT_TAIL(&n->live, d, link);
        n->held[queue == AVK_Q_RETRY]++;
        if (queue == AVK_Q_RETRY)
                avk_retry_accept(&n->dl, d, m, d->arrived_at);
        return 0;
}

/* A DeviationReported, read live or by the rebuild: into the map. */
static void remember(avk_notify_t *n, const rd_kafka_message_t *m)
{
        char id[AVK_DELIVERY_ID_SIZE];
        if (!m->key || m->key_len == 0 || m->key_len >= sizeof(id)) {
                /* The router dead-letters what it cannot read; here it is only counted. */
                avk_metric_add(
                    avk_metrics_series(n->dl.m_undecodable, (const char *[]){n->dl.topic_reported}),
                    1);
                return;
        }
        memcpy(id, m->key, m->key_len);
        id[m->key_len] = '\0';
        size_t held;
        /* The first body filed under an id is the deviation; the router dead-letters another
         * (docs/router.md, "One body per deviation"), so a receiver never gets it either. */
        if (avk_idcache_get(n->cache, id, &held))
                return;
        if (avk_idcache_put(n->cache, id, m->payload, m->len) != 0)
                snprintf(n->dl.fatal, sizeof(n->dl.fatal), "out of memory");
}

static void rebuild_reported(void *opaque, const rd_kafka_message_t *m)
{
        remember(opaque, m);
}

/* The loop ends with dl.fatal once it is set. */
static int fatal(const avk_notify_t *n, char *errstr, size_t errstr_size)
{
        if (!n->dl.fatal[0])
                return 0;
        snprintf(errstr, errstr_size, "%s", n->dl.fatal);
        return -1;
}

static int on_record(void *opaque, int topic, avk_outbox_input_t *in, uint64_t seq,
                     const rd_kafka_message_t *m, char *errstr, size_t errstr_size)
{
        avk_notify_t *n = opaque;
        if (topic == IN_REPORTED) {
                avk_partner_read(&n->parts[m->partition]);
                remember(n, m);
        } else if (on_delivery_record(n, topic, in, seq, m, errstr, errstr_size) ==
                   AVK_SERVICE_WAIT) {
                return AVK_SERVICE_WAIT;
        }
        return fatal(n, errstr, errstr_size);
}

static void on_eof(void *opaque, int topic, int32_t partition)
{
        if (topic == IN_REPORTED)
                avk_partner_end(&((avk_notify_t *)opaque)->parts[partition]);
}

/* Moves every delivery that can move and ends the finished; returns when
 * the next one falls due. */
static int64_t step(avk_notify_t *n, int64_t now, int64_t next)
{
        for (struct avk_delivery *d = TAILQ_FIRST(&n->live), *after; d; d = after) {
                after = TAILQ_NEXT(d, link);
                /* Retry attempts at once are bounded like fresh ones: a due
                 * retry without a slot waits for an attempt to finish. */
                int no_slot = d->queue == AVK_Q_RETRY && n->dl.retry_attempts >= n->max_held;
                if (d->state == AVK_DELIVERY_WAITING)
                        resolve(n, d, now);
                if (d->state == AVK_DELIVERY_DUE && d->next_attempt_at <= now && !no_slot &&
                    (d->queue != AVK_Q_RETRY || avk_retry_address(&n->dl, d) == 0))
                        avk_delivery_start_attempt(&n->dl, d, now);
                else if (d->state == AVK_DELIVERY_PARK_DUE && d->next_attempt_at <= now)
                        avk_retry_send(&n->dl, d);
                else if (d->state == AVK_DELIVERY_DEAD_DUE && d->next_attempt_at <= now)
                        avk_failed_send(&n->dl, d, now);
                if (d->inbox_state == AVK_INBOX_DUE && d->inbox_due_at <= now)
                        avk_inbox_send(&n->dl, d);
                if (avk_delivery_finished(d)) {
                        end_delivery(n, d);
                        continue;
                }
                if (((d->state == AVK_DELIVERY_DUE && !no_slot) ||
                     d->state == AVK_DELIVERY_PARK_DUE || d->state == AVK_DELIVERY_DEAD_DUE) &&
                    d->next_attempt_at < next)
                        next = d->next_attempt_at;
                if (d->state == AVK_DELIVERY_WAITING && now + WAITING_CHECK_MS < next)
                        next = now + WAITING_CHECK_MS;
        }
        return next;
}

static void attempt_done(void *opaque, void *private_ptr, int curl_code)
{
        avk_notify_t *n = opaque;
        avk_delivery_finish_attempt(&n->dl, private_ptr, curl_code, avk_clock_mono_ms());
}

static int on_tick(void *opaque, int64_t *next_due, char *errstr, size_t errstr_size)
{
        avk_notify_t *n = opaque;
        avk_webhook_collect(n->dl.multi, attempt_done, n);
        *next_due = step(n, avk_clock_mono_ms(), *next_due);
        publish_counts(n);
        return fatal(n, errstr, errstr_size);
}

static void wait_for_work(void *opaque, int wake_fd, int timeout_ms)
{
        avk_notify_t *n = opaque;
        avk_webhook_wait(n->dl.multi, wake_fd, timeout_ms);
}

/*
 * Input partition in is revoked: its deliveries end unfinished (what was
 * finished was ended already, and the kernel committed it), for the
 * partition's next owner to deliver again under the same event id.
 */
static void on_revoke(void *opaque, avk_outbox_input_t *in)
{
        avk_notify_t *n = opaque;
        for (struct avk_delivery *d = TAILQ_FIRST(&n->live), *after; d; d = after) {
                after = TAILQ_NEXT(d, link);
                if (d->in == in)
                        end_delivery(n, d);
        }
        publish_counts(n);
}

/* The map is of the partitions held: it goes with them. */
static void on_drop(void *opaque, const int32_t *parts, int cnt)
{
        avk_notify_t *n = opaque;
        avk_idcache_clear(n->cache);
        avk_partner_forget(n->parts, parts, cnt);
}

/* Fills the map from topic.reported's partitions parts, to their current end. */
static int on_rebuild(void *opaque, const int32_t *parts, int cnt)
{
        avk_notify_t *n = opaque;
        return avk_service_replay(n->service, n->dl.topic_reported, parts, cnt, rebuild_reported,
                                  n);
}

static void describe(void *opaque, char *buf, size_t size)
{
        avk_notify_t *n = opaque;
        snprintf(buf, size, "%zu deviations", avk_idcache_count(n->cache));
}

/* ---- life cycle -------------------------------------------------------- */

static void register_metrics(avk_notify_t *n, avk_metrics_t *m)
{
        n->dl.m_deliveries = avk_metrics_counter(
            m, "avk_notify_deliveries_total",
            "Deliveries finished by the notifier, by receiving party, outcome (delivered: the "
            "webhook took it; inbox: both inbox copies acknowledged; dead_lettered; no_webhook: an "
            "escalation, reminder or feedback to a party without a webhook) and event (routed, "
            "escalated, reminder, feedback).",
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
        n->m_held = avk_metrics_gauge(
            m, "avk_notify_held",
            "Deliveries of topic.routed, topic.escalated, "
            "topic.reminder and topic.feedback not finished (waiting for the deviation, "
            "first attempt in flight, inbox copies or parking not "
            "acknowledged).",
            NULL);
        n->m_retry_held = avk_metrics_gauge(
            m, "avk_notify_retry_held",
            "Records of topic.notify.retry held until their attempt is finished.", NULL);
        n->dl.m_parked = avk_metrics_counter(
            m, "avk_notify_retries_parked_total",
            "Failed webhook attempts parked on topic.notify.retry for a later attempt, by "
            "receiving party and event (routed, escalated, reminder, feedback).",
            (const char *[]){"party", "event", NULL});
        n->dl.m_undecodable = avk_metrics_counter(m, "avk_notify_undecodable_total",
                                                  "Records the notifier could not read, by topic.",
                                                  (const char *[]){"topic", NULL});
}

static int read_settings(avk_notify_t *n, const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        n->dl.timeout_ms = avk_config_get_int(cfg, "notify.timeout.ms");
        n->dl.connect_timeout_ms = avk_config_get_int(cfg, "notify.connect.timeout.ms");
        n->dl.retry_max = avk_config_get_int(cfg, "notify.retry.max");
        n->dl.max_age_ms = avk_config_get_int(cfg, "notify.retry.max.age.ms");
        n->dl.backoff_ms = avk_config_get_int(cfg, "notify.retry.backoff.ms");
        n->dl.backoff_max_ms = avk_config_get_int(cfg, "notify.retry.backoff.max.ms");
        n->wait_ms = avk_config_get_int(cfg, "notify.deviation.wait.ms");
        n->max_held = (size_t)avk_config_get_int(cfg, "notify.max.in.flight");
        n->pool_bounds[POOL_FRESH] = n->max_held;
        n->pool_bounds[POOL_RETRY] = (size_t)avk_config_get_int(cfg, "notify.retry.max.held");
        n->dl.ca_location = avk_config_get(cfg, "notify.ssl.ca.location");
        for (int s = 0; s < AVK_SRC_CNT; s++)
                n->dl.topic[s] = avk_config_get(cfg, avk_delivery_sources[s].topic_key);
        n->dl.topic[AVK_Q_RETRY] = avk_config_get(cfg, "topic.notify.retry");
        n->dl.topic_reported = avk_config_get(cfg, "topic.reported");
        n->dl.topic_deadletter = avk_config_get(cfg, "topic.deadletter");
        n->dl.topic_failed = avk_config_get(cfg, "topic.delivery.failed");
        for (int q = 0; q < AVK_Q_CNT; q++)
                n->inputs[q] = n->dl.topic[q];
        n->inputs[IN_REPORTED] = n->dl.topic_reported;
        if (n->dl.backoff_ms > n->dl.backoff_max_ms) {
                snprintf(errstr, errstr_size,
                         "notify.retry.backoff.ms: %" PRId64
                         " is more than notify.retry.backoff.max.ms (%" PRId64 ")",
                         n->dl.backoff_ms, n->dl.backoff_max_ms);
                return -1;
        }
        return 0;
}

/* The schemas, values, codec and map the deliveries work with. */
static int open_contract(avk_notify_t *n, const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        if (avk_env_open(&n->env, cfg, errstr, errstr_size) != 0)
                return -1;
        for (int s = 0; s < AVK_SRC_CNT; s++) {
                n->dl.schema[s] =
                    avk_catalog_by_name(n->env.catalog, avk_delivery_sources[s].schema);
                if (!n->dl.schema[s] ||
                    avro_generic_value_new(avk_schema_iface(n->dl.schema[s]), &n->dl.value[s]) != 0)
                        goto oom;
        }
        n->dl.reported_schema = avk_catalog_by_name(n->env.catalog, "DeviationReported");
        n->dl.failed_schema = avk_catalog_by_name(n->env.catalog, "DeliveryFailed");
        n->dl.codec = avk_codec_new(n->env.catalog, n->env.registry);
        if (!n->dl.reported_schema || !n->dl.failed_schema || !n->dl.codec ||
            !(n->cache =
                  avk_idcache_new((size_t)avk_config_get_int(cfg, "notify.cache.max.entries"))) ||
            avro_generic_value_new(avk_schema_iface(n->dl.reported_schema),
                                   &n->dl.reported_value) != 0 ||
            avro_generic_value_new(avk_schema_iface(n->dl.failed_schema), &n->dl.failed_value) != 0)
                goto oom;
        return 0;
oom:
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
}

/* The notifier on the kernel (opaque: the avk_notify_t). */
static const struct avk_service_hooks notify_hooks = {.on_record = on_record,
                                                      .on_tick = on_tick,
                                                      .on_eof = on_eof,
                                                      .wait = wait_for_work,
                                                      .on_rebuild = on_rebuild,
                                                      .on_drop = on_drop,
                                                      .on_revoke = on_revoke,
                                                      .describe = describe,
                                                      .acked = on_acked,
                                                      .still_wanted = still_wanted};

static int open_service(avk_notify_t *n, const avk_config_t *cfg, avk_metrics_t *metrics,
                        char *errstr, size_t errstr_size)
{
        struct avk_service_options opts = {.component = COMPONENT,
                                           .metric_prefix = "avk_notify",
                                           .group = avk_config_get(cfg, "notify.group.id"),
                                           .inputs = n->inputs,
                                           .input_cnt = IN_CNT,
                                           .revoke_note = "their records will be delivered "
                                                          "again by the next owner",
                                           .input_pool = input_pool,
                                           .pool_max_unfinished = n->pool_bounds,
                                           .metrics = metrics,
                                           .hooks = notify_hooks};
        opts.hooks.opaque = n;
        if (!(n->service = avk_service_new(cfg, &opts, errstr, errstr_size)))
                return -1;
        n->dl.outbox = avk_service_outbox(n->service);
        return 0;
}

avk_notify_t *avk_notify_new(const avk_config_t *cfg, const avk_directory_t *dir,
                             avk_metrics_t *metrics, char *errstr, size_t errstr_size)
{
        avk_notify_t *n = calloc(1, sizeof(*n));
        if (!n || avk_htab_init(&n->dl.by_seq, SEQ_INDEX_SIZE) != 0) {
                free(n);
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        TAILQ_INIT(&n->live);
        n->cfg = cfg;
        n->dl.dir = dir;
        n->dl.rng = (uint64_t)avk_clock_system_ms() ^ ((uint64_t)getpid() << 32);
        if (!metrics && !(metrics = n->own_metrics = avk_metrics_new())) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        register_metrics(n, metrics);
        if (read_settings(n, cfg, errstr, errstr_size) != 0 ||
            open_contract(n, cfg, errstr, errstr_size) != 0 ||
            avk_webhook_multi_open(&n->dl.multi, &n->curl_inited, errstr, errstr_size) != 0 ||
            open_service(n, cfg, metrics, errstr, errstr_size) != 0)
                goto fail;
        return n;
fail:
        avk_notify_destroy(n);
        return NULL;
}

int avk_notify_run(avk_notify_t *n, char *errstr, size_t errstr_size)
{
        avk_log(AVK_LOG_INFO, COMPONENT, "consuming %s, %s, %s, %s, %s and %s as group %s",
                n->dl.topic[AVK_SRC_ROUTED], n->dl.topic[AVK_SRC_ESCALATED],
                n->dl.topic[AVK_SRC_REMINDER], n->dl.topic[AVK_SRC_FEEDBACK],
                n->dl.topic[AVK_Q_RETRY], n->dl.topic_reported,
                avk_config_get(n->cfg, "notify.group.id"));
        return avk_service_run(n->service, errstr, errstr_size);
}

void avk_notify_stop(avk_notify_t *n)
{
        avk_service_stop(n->service);
}

void avk_notify_stats(avk_notify_t *n, struct avk_notify_stats *stats)
{
        struct avk_service_stats kernel;
        avk_service_stats(n->service, &kernel);
        stats->delivered = atomic_load(&n->dl.delivered);
        stats->no_webhook = atomic_load(&n->dl.no_webhook);
        stats->dead_lettered = atomic_load(&n->dl.dead_lettered);
        stats->inbox = atomic_load(&n->dl.inbox);
        stats->inbox_retries = atomic_load(&n->dl.inbox_retries);
        stats->attempts = atomic_load(&n->dl.attempts);
        stats->parked = atomic_load(&n->dl.parked);
        stats->held = atomic_load(&n->held_now);
        stats->retry_held = atomic_load(&n->retry_held_now);
        stats->partitions = kernel.partitions;
}

int avk_notify_ready(void *opaque, char *why, size_t why_size)
{
        avk_notify_t *n = opaque;
        if (atomic_load(&n->registry_waiting)) {
                snprintf(why, why_size,
                         "webhook bodies wait for the Schema Registry (built again later)");
                return 0;
        }
        return avk_service_ready(n->service, why, why_size);
}

void avk_notify_destroy(avk_notify_t *n)
{
        if (!n)
                return;
        /* What a run left (none after a stop: the revoke ended every delivery). */
        struct avk_delivery *d;
        while ((d = TAILQ_FIRST(&n->live))) {
                TAILQ_REMOVE(&n->live, d, link);
                avk_delivery_free(&n->dl, d);
        }
        avk_htab_destroy(&n->dl.by_seq);
        avk_service_destroy(n->service);
        avk_webhook_multi_close(n->dl.multi, n->curl_inited);
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
        avk_metrics_destroy(n->own_metrics);
        free(n);
}
