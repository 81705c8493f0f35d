/*
 * avk_reporter: see reporter.h.
 *
 * Validation and encoding happen in the calling thread with an encoding
 * context (codec and reusable values) taken from a small pool, so threads do
 * not serialise on the expensive part. Sending is serialised by send_lock,
 * which stamps each document with a sequence number: the order it was sent.
 *
 * Two ways to Kafka:
 * - direct: produce at once; the poll thread hands each delivery report to
 *   the sender's callback. A document Kafka did not take (timed out, broker
 *   down) goes to the spool instead, when there is one, and from then on
 *   every new document goes to the spool too, so none overtakes it.
 * - spooled: the drain thread produces the spool's documents in sequence
 *   order once Kafka answers and no direct document is still in flight, and
 *   switches back to direct when the spool is empty.
 * Every record carries its document id in the header "avk-id". A document
 * that may already have reached Kafka (its produce timed out in flight, or
 * the process died after producing it from the spool) is looked for in its
 * partition before it is produced again, so nothing is stored twice.
 */
#include "producer/intake/reporter.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <uuid/uuid.h>

#include "common/contract/codec.h"
#include "common/util/clock.h"
#include "common/util/env.h"
#include "common/contract/json.h"
#include "common/contract/jsonparse.h"
#include "common/contract/jsonstream.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"
#include "producer/intake/spool.h"

#define KIND_CNT       2
#define ID_HEADER      "avk-id"
#define MAX_PARTITIONS 1024 /* partitions with a remembered acknowledged offset */
#define DRAIN_BATCH    512
#define KAFKA_PROBE_MS 1000
#define STALL_ATTEMPTS 3 /* drain attempts in a row, about a second apart, that move nothing */

static const char *const id_field[KIND_CNT] = {"deviation_id", "response_id"};
static const char *const topic_key[KIND_CNT] = {"topic.reported", "topic.response"};

struct encoder { /* one thread's encoding context */
        avk_codec_t *codec;
        avro_value_t value[KIND_CNT];
        struct avk_json_stream_buf stream; /* the single pass's working memory */
        struct encoder *next;
};

struct avk_prepared { /* one allocation with its payload: it is freed on another thread */
        enum avk_kind kind;
        char id[AVK_ID_SIZE];
        char key[AVK_ID_SIZE];
        void *payload; /* the bytes after the struct */
        size_t len;
        int local; /* single-object framing: the registry could not be asked; spool only */
};

struct drain_batch; /* the spool batch the drain thread has in flight */

struct pending { /* one document between produce and its delivery report */
        avk_reporter_done_cb *done;
        void *opaque;
        avk_reporter_t *reporter;
        avk_prepared_t *doc;
        uint64_t seq;
        const char *spooled_because; /* why it goes to the spool: said if it cannot */
        struct drain_batch *batch;   /* set for documents produced from the spool */
        size_t index;                /* in batch */
};

struct drain_batch {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        size_t outstanding;
        int ok[DRAIN_BATCH];
        char reason[256];
};

struct avk_reporter {
        struct avk_env env;
        const avk_schema_t *schema[KIND_CNT];
        avk_json_plan_t *plan[KIND_CNT]; /* for documents filed as JSON text */
        /* The slots of the id and key in the plan's program; -1: JSON text
         * takes the tree path. */
        int id_slot[KIND_CNT], key_slot[KIND_CNT];
        const char *topic[KIND_CNT];
        struct avk_json_opts opts;
        rd_kafka_t *rk;
        rd_kafka_conf_t *scan_conf; /* for the consumer that looks for possible duplicates */
        pthread_t poller, drainer;
        atomic_int stopping;
        pthread_mutex_t pool_lock;
        struct encoder *pool;

        pthread_mutex_t send_lock; /* send order; spool_mode changes */
        uint64_t next_seq;
        avk_spool_t *spool;
        atomic_int spool_mode;
        atomic_ulong direct_in_flight;
        /* Highest acknowledged offset + 1 per partition: where a document
         * whose produce timed out in flight may be found. */
        atomic_llong acked_end[KIND_CNT][MAX_PARTITIONS];

        pthread_mutex_t drain_lock;
        pthread_cond_t drain_cond;

        atomic_int kafka_up;
        atomic_int registry_up;
        atomic_int drain_stalled;
        atomic_ulong in_flight, filed, spooled, unavailable, rejected;
};

static void finish(avk_reporter_t *r, avk_reporter_done_cb *done, void *opaque, const char *id,
                   enum avk_result result, const char *reason)
{
        atomic_fetch_add(result == AVK_FILED     ? &r->filed
                         : result == AVK_SPOOLED ? &r->spooled
                                                 : &r->unavailable,
                         1);
        atomic_fetch_sub(&r->in_flight, 1);
        done(opaque, id, result, reason);
}

static void wake_drainer(avk_reporter_t *r)
{
        pthread_mutex_lock(&r->drain_lock);
        pthread_cond_signal(&r->drain_cond);
        pthread_mutex_unlock(&r->drain_lock);
}

/* A spool append's outcome, for a document that was sent. */
static void on_spooled(void *opaque, int ok, const char *reason)
{
        struct pending *p = opaque;
        avk_reporter_t *r = p->reporter;
        /* What happened, for the sender: no server paths, and Kafka named
         * only when Kafka is why (docs/intake.md, "The spool on a full disk"). */
        char why[512];
        if (!ok)
                snprintf(why, sizeof(why), "%s, and the spool cannot keep it: %s",
                         p->spooled_because, reason);
        finish(r, p->done, p->opaque, p->doc->id, ok ? AVK_SPOOLED : AVK_UNAVAILABLE,
               ok ? NULL : why);
        avk_prepared_destroy(p->doc);
        free(p);
        wake_drainer(r);
}

#define BECAUSE_NOT_ACKNOWLEDGED "Kafka did not acknowledge it"
#define BECAUSE_NOT_TAKEN        "Kafka did not take it"
#define BECAUSE_SPOOL_FIRST      "documents sent before it are still in the spool"
#define BECAUSE_NO_REGISTRY      "the Schema Registry cannot be reached"

static void spool_append(avk_reporter_t *r, struct pending *p, int32_t partition, int64_t scan_from,
                         const char *because)
{
        p->spooled_because = because;
        avk_prepared_t *d = p->doc;
        struct avk_spool_entry e = {.seq = p->seq,
                                    .partition = partition,
                                    .scan_from = scan_from,
                                    .topic = r->topic[d->kind],
                                    .key = d->key,
                                    .id = d->id,
                                    .value = d->payload,
                                    .value_len = d->len};
        avk_spool_append(r->spool, &e, on_spooled, p);
}

/* Errors after which producing the same document again cannot succeed:
 * the sender hears of them rather than the spool keeping the document. */
static int permanent(rd_kafka_resp_err_t err)
{
        switch (err) {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_MSG:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR__INVALID_ARG:
                return 1;
        default:
                return 0;
        }
}

static void on_drained(struct pending *p, const rd_kafka_message_t *m)
{
        struct drain_batch *b = p->batch;
        pthread_mutex_lock(&b->lock);
        b->ok[p->index] = !m->err;
        if (m->err)
                snprintf(b->reason, sizeof(b->reason), "%s", rd_kafka_err2str(m->err));
        if (--b->outstanding == 0)
                pthread_cond_signal(&b->cond);
        pthread_mutex_unlock(&b->lock);
        free(p);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)opaque;
        struct pending *p = m->_private;
        if (p->batch) {
                on_drained(p, m);
                return;
        }
        avk_reporter_t *r = p->reporter;
        int kind = p->doc->kind;
        if (!m->err) {
                if (m->partition >= 0 && m->partition < MAX_PARTITIONS) {
                        atomic_llong *end = &r->acked_end[kind][m->partition];
                        long long seen = atomic_load(end);
                        while (m->offset + 1 > seen &&
                               !atomic_compare_exchange_weak(end, &seen, m->offset + 1))
                                ;
                }
                finish(r, p->done, p->opaque, p->doc->id, AVK_FILED, NULL);
        } else if (r->spool && !permanent(m->err)) {
                /* Kafka may have it although it did not say so: remember
                 * where to look before producing it from the spool. */
                int64_t scan_from = -1;
                if (rd_kafka_message_status(m) != RD_KAFKA_MSG_STATUS_NOT_PERSISTED)
                        scan_from = m->partition >= 0 && m->partition < MAX_PARTITIONS
                                        ? atomic_load(&r->acked_end[kind][m->partition])
                                        : 0;
                atomic_store(&r->spool_mode, 1);
                atomic_fetch_sub(&r->direct_in_flight, 1);
                spool_append(r, p, m->partition, scan_from, BECAUSE_NOT_ACKNOWLEDGED);
                return;
        } else {
                char reason[256];
                snprintf(reason, sizeof(reason), BECAUSE_NOT_ACKNOWLEDGED ": %s",
                         rd_kafka_err2str(m->err));
                finish(r, p->done, p->opaque, p->doc->id, AVK_UNAVAILABLE, reason);
        }
        atomic_fetch_sub(&r->direct_in_flight, 1);
        avk_prepared_destroy(p->doc);
        free(p);
        if (r->spool)
                wake_drainer(r);
}

static void *poll_loop(void *arg)
{
        avk_reporter_t *r = arg;
        while (!atomic_load(&r->stopping))
                rd_kafka_poll(r->rk, 100);
        return NULL;
}

static int user_set(const avk_config_t *cfg, const char *kafka_name)
{
        for (size_t i = 0; i < avk_config_kafka_cnt(cfg); i++) {
                const char *name, *value;
                avk_config_kafka_get(cfg, i, &name, &value);
                if (strcmp(name, kafka_name) == 0)
                        return 1;
        }
        return 0;
}

/* ---- draining the spool ---- */

struct found_ids { /* ids met while looking for possible duplicates */
        char **ids;
        size_t cnt, cap;
};

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int found(const struct found_ids *f, const char *id)
{
        return f->cnt && bsearch(&id, f->ids, f->cnt, sizeof(*f->ids), cmp_str);
}

static void found_add(struct found_ids *f, const void *id, size_t len)
{
        if (f->cnt == f->cap) {
                size_t cap = f->cap * 2 + 64;
                char **ids = realloc(f->ids, cap * sizeof(*ids));
                if (!ids)
                        return;
                f->ids = ids;
                f->cap = cap;
        }
        char *s = malloc(len + 1);
        if (!s)
                return;
        memcpy(s, id, len);
        s[len] = '\0';
        f->ids[f->cnt++] = s;
}

static void found_free(struct found_ids *f)
{
        for (size_t i = 0; i < f->cnt; i++)
                free(f->ids[i]);
        free(f->ids);
}

/*
 * Reads each partition in scan from its start offset to its end and
 * collects the avk-id headers there. Returns 0, or -1 when Kafka could not
 * be read completely (nothing may be produced then).
 */
static int scan_partitions(avk_reporter_t *r, rd_kafka_topic_partition_list_t *scan,
                           struct found_ids *out)
{
        char errstr[512];
        int rc = -1;
        rd_kafka_conf_t *conf = rd_kafka_conf_dup(r->scan_conf);
        /* assign() needs a group.id, though nothing joins or commits. */
        rd_kafka_conf_set(conf, "group.id", "avvik-spool-scan", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!c) {
                rd_kafka_conf_destroy(conf);
                avk_log(AVK_LOG_WARN, "spool", "cannot look for duplicates: %s", errstr);
                return -1;
        }
        rd_kafka_poll_set_consumer(c);
        /* Only partitions with records past the start offset are read. */
        rd_kafka_topic_partition_list_t *todo = rd_kafka_topic_partition_list_new(scan->cnt);
        for (int i = 0; i < scan->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &scan->elems[i];
                int64_t low, high;
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    c, tp->topic, tp->partition, &low, &high, 5000);
                if (err) {
                        avk_log(AVK_LOG_WARN, "spool", "looking for duplicates in %s [%d]: %s",
                                tp->topic, tp->partition, rd_kafka_err2str(err));
                        goto out;
                }
                if (tp->offset < high)
                        rd_kafka_topic_partition_list_add(todo, tp->topic, tp->partition)->offset =
                            tp->offset < low ? low : tp->offset;
        }
        int remaining = todo->cnt, idle = 0;
        rd_kafka_resp_err_t err = remaining ? rd_kafka_assign(c, todo) : 0;
        if (err) {
                avk_log(AVK_LOG_WARN, "spool", "looking for duplicates: %s", rd_kafka_err2str(err));
                goto out;
        }
        while (remaining > 0 && idle < 10) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 1000);
                if (!m) {
                        idle++;
                        continue;
                }
                idle = 0;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        /* The end may be reported more than once (after a
                         * leader change): count each partition once. */
                        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
                            todo, rd_kafka_topic_name(m->rkt), m->partition);
                        if (tp && !tp->opaque) {
                                tp->opaque = tp;
                                remaining--;
                        }
                } else if (m->err) {
                        avk_log(AVK_LOG_WARN, "spool", "looking for duplicates: %s",
                                rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        goto out;
                } else {
                        rd_kafka_headers_t *hdrs;
                        const void *id;
                        size_t len;
                        if (rd_kafka_message_headers(m, &hdrs) == 0 &&
                            rd_kafka_header_get_last(hdrs, ID_HEADER, &id, &len) == 0)
                                found_add(out, id, len);
                }
                rd_kafka_message_destroy(m);
        }
        rc = remaining == 0 ? 0 : -1;
        if (rc)
                avk_log(AVK_LOG_WARN, "spool",
                        "looking for duplicates: %d partitions not read "
                        "to their end within 10 s",
                        remaining);
out:
        rd_kafka_topic_partition_list_destroy(todo);
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        if (out->cnt)
                qsort(out->ids, out->cnt, sizeof(*out->ids), cmp_str);
        return rc;
}

/* The partition the producer's partitioner (murmur2_random, set by
 * avk_kafka_producer_new()) gives key, as producing it directly would have;
 * -1 when the topic's partitions are unknown. */
static int32_t partition_of(avk_reporter_t *r, const char *topic, const char *key)
{
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, topic, NULL);
        const struct rd_kafka_metadata *md;
        int32_t partition = -1;
        if (rkt && rd_kafka_metadata(r->rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0)
                        partition = rd_kafka_msg_partitioner_murmur2_random(
                            rkt, key, strlen(key), md->topics[0].partition_cnt, NULL, NULL);
                rd_kafka_metadata_destroy(md);
        }
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return partition;
}

/*
 * Produces one batch of the spool, oldest first. Returns 0 when the whole
 * batch is in Kafka, -1 when some of it must wait for a later try.
 */
static struct encoder *encoder_get(avk_reporter_t *r);
static void encoder_put(avk_reporter_t *r, struct encoder *e);

static int drain_batch(avk_reporter_t *r, int *progressed)
{
        const struct avk_spool_entry *batch[DRAIN_BATCH], *done[DRAIN_BATCH], *send[DRAIN_BATCH];
        int32_t partition[DRAIN_BATCH];
        int64_t scan_from[DRAIN_BATCH];
        size_t done_cnt = 0, send_cnt = 0, n = avk_spool_batch(r->spool, batch, DRAIN_BATCH);
        struct found_ids ids = {0};
        char errstr[256];
        int rc = -1;
        struct encoder *e = encoder_get(r);
        if (!e)
                return -1;

        /* 1. Entries that may already be in Kafka: look for them there. */
        rd_kafka_topic_partition_list_t *scan = rd_kafka_topic_partition_list_new(8);
        for (size_t i = 0; i < n; i++) {
                if (batch[i]->scan_from < 0)
                        continue;
                rd_kafka_topic_partition_t *tp =
                    rd_kafka_topic_partition_list_find(scan, batch[i]->topic, batch[i]->partition);
                if (!tp)
                        tp = rd_kafka_topic_partition_list_add(scan, batch[i]->topic,
                                                               batch[i]->partition);
                else if (tp->offset <= batch[i]->scan_from)
                        continue;
                tp->offset = batch[i]->scan_from;
        }
        if (scan->cnt && scan_partitions(r, scan, &ids) != 0)
                goto out;

        /* 2. The rest: say durably where each will go, then produce. A
         * document spooled while the registry was unreachable waits until
         * the registry answers for its schema. */
        for (size_t i = 0; i < n; i++) {
                if (batch[i]->scan_from >= 0 && found(&ids, batch[i]->id)) {
                        done[done_cnt++] = batch[i];
                        continue;
                }
                const void *framed;
                size_t framed_len;
                if (avk_codec_reframe(e->codec, batch[i]->topic, batch[i]->value,
                                      batch[i]->value_len, &framed, &framed_len, errstr,
                                      sizeof(errstr)) != 0) {
                        atomic_store(&r->registry_up, 0);
                        avk_log(AVK_LOG_WARN, "spool", "%s: %s", batch[i]->topic, errstr);
                        goto out;
                }
                int32_t p = batch[i]->partition >= 0
                                ? batch[i]->partition
                                : partition_of(r, batch[i]->topic, batch[i]->key);
                int64_t low, high;
                rd_kafka_resp_err_t err = p < 0 ? RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION
                                                : rd_kafka_query_watermark_offsets(
                                                      r->rk, batch[i]->topic, p, &low, &high, 5000);
                if (err) {
                        avk_log(AVK_LOG_WARN, "spool", "%s: partition of %s: %s", batch[i]->topic,
                                batch[i]->id, rd_kafka_err2str(err));
                        goto out;
                }
                partition[send_cnt] = p;
                scan_from[send_cnt] = high;
                send[send_cnt++] = batch[i];
        }
        if (done_cnt)
                avk_log(AVK_LOG_INFO, "spool",
                        "%zu documents were in Kafka already (found by id): not produced again",
                        done_cnt);
        if (send_cnt && avk_spool_maybe(r->spool, send, partition, scan_from, send_cnt, errstr,
                                        sizeof(errstr)) != 0) {
                avk_log(AVK_LOG_ERROR, "spool", "%s", errstr);
                goto out;
        }
        struct drain_batch db = {.lock = PTHREAD_MUTEX_INITIALIZER,
                                 .cond = PTHREAD_COND_INITIALIZER};
        for (size_t i = 0; i < send_cnt; i++) {
                struct pending *p = calloc(1, sizeof(*p));
                if (!p)
                        break;
                *p = (struct pending){.reporter = r, .batch = &db, .index = i};
                pthread_mutex_lock(&db.lock);
                db.outstanding++;
                pthread_mutex_unlock(&db.lock);
                /* Framed in step 2 already, so the registry's id is cached. */
                const void *value;
                size_t value_len;
                rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__FAIL;
                if (avk_codec_reframe(e->codec, send[i]->topic, send[i]->value, send[i]->value_len,
                                      &value, &value_len, errstr, sizeof(errstr)) == 0)
                        /* F_COPY: a reframed value lives in the codec's buffer. */
                        err = rd_kafka_producev(
                            r->rk, RD_KAFKA_V_TOPIC(send[i]->topic),
                            RD_KAFKA_V_PARTITION(partition[i]),
                            RD_KAFKA_V_KEY(send[i]->key, strlen(send[i]->key)),
                            RD_KAFKA_V_VALUE((void *)value, value_len),
                            RD_KAFKA_V_HEADER(ID_HEADER, send[i]->id, -1),
                            RD_KAFKA_V_MSGFLAGS(
                                RD_KAFKA_MSG_F_BLOCK |
                                (value != send[i]->value ? RD_KAFKA_MSG_F_COPY : 0)),
                            RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
                if (err) {
                        pthread_mutex_lock(&db.lock);
                        db.outstanding--;
                        pthread_mutex_unlock(&db.lock);
                        free(p);
                        break;
                }
        }
        pthread_mutex_lock(&db.lock);
        while (db.outstanding > 0)
                pthread_cond_wait(&db.cond, &db.lock);
        pthread_mutex_unlock(&db.lock);
        size_t sent_ok = 0;
        for (size_t i = 0; i < send_cnt; i++) {
                if (db.ok[i])
                        done[done_cnt++] = send[i];
                sent_ok += (size_t)db.ok[i];
        }
        if (sent_ok < send_cnt)
                avk_log(AVK_LOG_WARN, "spool", "%zu of %zu documents not produced yet: %s",
                        send_cnt - sent_ok, send_cnt, db.reason[0] ? db.reason : "not sent");
        rc = sent_ok == send_cnt ? 0 : -1;
        atomic_fetch_add(&r->filed, done_cnt);
        atomic_store(&r->registry_up, 1);
out:
        if (done_cnt && avk_spool_done(r->spool, done, done_cnt, errstr, sizeof(errstr)) != 0) {
                avk_log(AVK_LOG_ERROR, "spool", "%s", errstr);
                rc = -1;
        } else if (done_cnt) {
                *progressed = 1;
        }
        rd_kafka_topic_partition_list_destroy(scan);
        found_free(&ids);
        encoder_put(r, e);
        return rc;
}

static int kafka_answers(avk_reporter_t *r)
{
        const struct rd_kafka_metadata *md;
        if (rd_kafka_metadata(r->rk, 0, NULL, &md, KAFKA_PROBE_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return 0;
        rd_kafka_metadata_destroy(md);
        return 1;
}

/* Probes Kafka once a second; drains the spool when Kafka answers and no
 * direct document is in flight (one that fails still belongs before the
 * spool's later entries). */
static void *drain_loop(void *arg)
{
        avk_reporter_t *r = arg;
        int stalls = 0; /* attempts in a row that moved nothing */
        for (;;) {
                int stopping = atomic_load(&r->stopping);
                atomic_store(&r->kafka_up, kafka_answers(r));
                size_t waiting = r->spool ? avk_spool_outstanding(r->spool) : 0;
                int ready =
                    waiting && atomic_load(&r->kafka_up) && atomic_load(&r->direct_in_flight) == 0;
                int progressed = 0;
                int rc = ready ? drain_batch(r, &progressed) : -1;
                if (!waiting || progressed)
                        stalls = 0;
                else if (ready)
                        stalls++;
                /* A registry outage is reported as such (registry_up). */
                atomic_store(&r->drain_stalled,
                             stalls >= STALL_ATTEMPTS && atomic_load(&r->registry_up));
                if (r->spool && ready && rc == 0) {
                        pthread_mutex_lock(&r->send_lock);
                        if (avk_spool_outstanding(r->spool) == 0)
                                atomic_store(&r->spool_mode, 0);
                        pthread_mutex_unlock(&r->send_lock);
                }
                if (stopping && (rc != 0 || !r->spool || avk_spool_outstanding(r->spool) == 0))
                        return NULL;
                if (ready && rc == 0)
                        continue;
                struct timespec until = avk_clock_deadline(1000);
                pthread_mutex_lock(&r->drain_lock);
                if (!atomic_load(&r->stopping))
                        pthread_cond_timedwait(&r->drain_cond, &r->drain_lock, &until);
                pthread_mutex_unlock(&r->drain_lock);
        }
}

/* The slot of a top-level string field of kind's schema, or -1. */
static int string_slot(const avk_reporter_t *r, enum avk_kind kind, const char *name)
{
        const avk_avroprog_t *prog = avk_json_plan_prog(r->plan[kind]);
        avro_schema_t field = avro_schema_record_field_get(avk_schema_avro(r->schema[kind]), name);
        return prog && field && is_avro_string(field) ? avk_avroprog_slot(prog, name) : -1;
}

avk_reporter_t *avk_reporter_new(const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        avk_reporter_t *r = calloc(1, sizeof(*r));
        if (!r) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        pthread_mutex_init(&r->pool_lock, NULL);
        pthread_mutex_init(&r->send_lock, NULL);
        pthread_mutex_init(&r->drain_lock, NULL);
        pthread_cond_init(&r->drain_cond, NULL);
        atomic_store(&r->registry_up, 1);
        if (avk_env_open(&r->env, cfg, errstr, errstr_size) != 0)
                goto fail_env;
        for (int k = 0; k < KIND_CNT; k++) {
                r->topic[k] = avk_config_get(cfg, topic_key[k]);
                r->schema[k] = avk_env_topic_schema(&r->env, r->topic[k], errstr, errstr_size);
                if (!r->schema[k])
                        goto fail;
                r->plan[k] = avk_json_plan_new(r->schema[k], errstr, errstr_size);
                if (!r->plan[k])
                        goto fail;
                r->id_slot[k] = string_slot(r, (enum avk_kind)k, id_field[k]);
                r->key_slot[k] = string_slot(r, (enum avk_kind)k, "deviation_id");
        }
        r->opts = (struct avk_json_opts){
            .flags = AVK_JSON_VALIDATE, .skew_ms = avk_config_get_int(cfg, "intake.clock.skew.ms")};
        const char *spool_dir = avk_config_get(cfg, "intake.spool.dir");
        if (spool_dir && *spool_dir) {
                r->spool = avk_spool_open(
                    spool_dir, (uint64_t)avk_config_get_int(cfg, "intake.spool.max.bytes"), errstr,
                    errstr_size);
                if (!r->spool)
                        goto fail;
                r->next_seq = avk_spool_max_seq(r->spool) + 1;
                atomic_store(&r->spool_mode, avk_spool_outstanding(r->spool) > 0);
        }
        r->scan_conf = avk_kafka_conf(cfg, errstr, errstr_size);
        rd_kafka_conf_t *conf = r->scan_conf ? avk_kafka_conf(cfg, errstr, errstr_size) : NULL;
        if (!conf)
                goto fail;
        /* The ack timeout is intake policy; an explicit kafka.* setting wins. */
        if (!user_set(cfg, "message.timeout.ms"))
                rd_kafka_conf_set(conf, "message.timeout.ms",
                                  avk_config_get(cfg, "intake.ack.timeout.ms"), NULL, 0);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        r->rk = avk_kafka_producer_new(conf, errstr, errstr_size);
        if (!r->rk) {
                rd_kafka_conf_destroy(conf);
                goto fail;
        }
        if (pthread_create(&r->poller, NULL, poll_loop, r) != 0) {
                snprintf(errstr, errstr_size, "cannot start the delivery thread");
                goto fail_rk;
        }
        if (pthread_create(&r->drainer, NULL, drain_loop, r) != 0) {
                snprintf(errstr, errstr_size, "cannot start the spool thread");
                atomic_store(&r->stopping, 1);
                pthread_join(r->poller, NULL);
                goto fail_rk;
        }
        return r;
fail_rk:
        rd_kafka_destroy(r->rk);
fail:
        if (r->scan_conf)
                rd_kafka_conf_destroy(r->scan_conf);
        avk_spool_close(r->spool);
        for (int k = 0; k < KIND_CNT; k++)
                avk_json_plan_destroy(r->plan[k]);
        avk_env_close(&r->env);
fail_env:
        pthread_mutex_destroy(&r->pool_lock);
        pthread_mutex_destroy(&r->send_lock);
        pthread_mutex_destroy(&r->drain_lock);
        pthread_cond_destroy(&r->drain_cond);
        free(r);
        return NULL;
}

void avk_reporter_destroy(avk_reporter_t *r)
{
        if (!r)
                return;
        /* Outstanding deliveries resolve within message.timeout.ms: wait for
         * them all, so every sender hears its outcome; then the drain thread
         * empties the spool if Kafka takes it, or leaves it for next time. */
        while (atomic_load(&r->direct_in_flight) > 0 || rd_kafka_outq_len(r->rk) > 0)
                rd_kafka_flush(r->rk, 1000);
        atomic_store(&r->stopping, 1);
        wake_drainer(r);
        pthread_join(r->drainer, NULL);
        avk_spool_close(r->spool);
        rd_kafka_flush(r->rk, 5000);
        /* Wakes the poll thread so it sees stopping now, not in 100 ms (a
         * yield before it polls again is kept by the queue, never lost). */
        rd_kafka_queue_t *main_queue = rd_kafka_queue_get_main(r->rk);
        rd_kafka_queue_yield(main_queue);
        rd_kafka_queue_destroy(main_queue);
        pthread_join(r->poller, NULL);
        rd_kafka_destroy(r->rk);
        rd_kafka_conf_destroy(r->scan_conf);
        while (r->pool) {
                struct encoder *e = r->pool;
                r->pool = e->next;
                for (int k = 0; k < KIND_CNT; k++)
                        avro_value_decref(&e->value[k]);
                avk_json_stream_buf_free(&e->stream);
                avk_codec_destroy(e->codec);
                free(e);
        }
        for (int k = 0; k < KIND_CNT; k++)
                avk_json_plan_destroy(r->plan[k]);
        avk_env_close(&r->env);
        pthread_mutex_destroy(&r->pool_lock);
        pthread_mutex_destroy(&r->send_lock);
        pthread_mutex_destroy(&r->drain_lock);
        pthread_cond_destroy(&r->drain_cond);
        free(r);
}

static struct encoder *encoder_get(avk_reporter_t *r)
{
        pthread_mutex_lock(&r->pool_lock);
        struct encoder *e = r->pool;
        if (e)
                r->pool = e->next;
        pthread_mutex_unlock(&r->pool_lock);
        if (e)
                return e;
        e = calloc(1, sizeof(*e));
        if (!e)
                return NULL;
        e->codec = avk_codec_new(r->env.catalog, r->env.registry);
        for (int k = 0; k < KIND_CNT; k++)
                avro_generic_value_new(avk_schema_iface(r->schema[k]), &e->value[k]);
        return e;
}

static void encoder_put(avk_reporter_t *r, struct encoder *e)
{
        pthread_mutex_lock(&r->pool_lock);
        e->next = r->pool;
        r->pool = e;
        pthread_mutex_unlock(&r->pool_lock);
}

static void string_field(avro_value_t *record, const char *name, char out[AVK_ID_SIZE])
{
        avro_value_t field;
        const char *s = "";
        size_t size;
        if (avro_value_get_by_name(record, name, &field, NULL) == 0)
                avro_value_get_string(&field, &s, &size);
        snprintf(out, AVK_ID_SIZE, "%s", s);
}

/* A new random id for a document that lacks one. */
static void new_id(char *buf, size_t size)
{
        uuid_t u;
        char text[AVK_ID_SIZE];
        uuid_generate_random(u);
        uuid_unparse_lower(u, text);
        snprintf(buf, size, "%s", text);
}

static void slot_string(const avk_avroprog_slot_t *slot, char out[AVK_ID_SIZE])
{
        size_t len = slot->len < AVK_ID_SIZE ? slot->len : AVK_ID_SIZE - 1;
        memcpy(out, slot->v.str, len);
        out[len] = '\0';
}

/* Frames value, or when it is NULL the Avro binary of the encoder's
 * single pass, for kind's topic (local: in the framing of the spool). */
static int frame(avk_reporter_t *r, struct encoder *e, enum avk_kind kind, avro_value_t *value,
                 int local, const void **payload, size_t *len, char *reason, size_t reason_size)
{
        if (!value)
                return avk_codec_frame(e->codec, r->topic[kind], r->schema[kind], local,
                                       e->stream.avro, e->stream.avro_len, payload, len, reason,
                                       reason_size);
        if (local)
                return avk_codec_encode_local(e->codec, r->schema[kind], value, payload, len,
                                              reason, reason_size);
        return avk_codec_encode(e->codec, r->topic[kind], r->schema[kind], value, payload, len,
                                reason, reason_size);
}

/* Encodes value (of kind, validated; NULL: the encoder's single pass) into
 * a prepared document. */
static enum avk_result encode(avk_reporter_t *r, struct encoder *e, enum avk_kind kind,
                              avro_value_t *value, char id[AVK_ID_SIZE], struct avk_errors *errs,
                              avk_prepared_t **out)
{
        char reason[512];
        const void *payload;
        size_t len;
        int rc = frame(r, e, kind, value, 0, &payload, &len, reason, sizeof(reason));
        int local = 0;
        /* Accepted means kept, through a registry outage as through a Kafka
         * one: the spool keeps the document in the framing that needs no
         * registry, and the drain frames it for Kafka once the registry
         * answers. */
        if (rc == AVK_CODEC_UNAVAILABLE && r->spool) {
                local = 1;
                rc = frame(r, e, kind, value, 1, &payload, &len, reason, sizeof(reason));
        }
        if (rc != 0) {
                avk_errors_add(errs, NULL, "%s", reason);
                return AVK_UNAVAILABLE;
        }
        avk_prepared_t *d = malloc(sizeof(*d) + len);
        if (!d) {
                avk_errors_add(errs, NULL, "out of memory");
                return AVK_UNAVAILABLE;
        }
        d->kind = kind;
        d->local = local;
        if (value) {
                string_field(value, id_field[kind], d->id);
                string_field(value, "deviation_id", d->key);
        } else {
                slot_string(&e->stream.slots[r->id_slot[kind]], d->id);
                slot_string(&e->stream.slots[r->key_slot[kind]], d->key);
        }
        d->payload = d + 1;
        d->len = len;
        memcpy(d->payload, payload, len);
        memcpy(id, d->id, AVK_ID_SIZE);
        *out = d;
        return AVK_FILED;
}

enum avk_result avk_reporter_prepare(avk_reporter_t *r, enum avk_kind kind, const json_t *doc,
                                     char id[AVK_ID_SIZE], struct avk_errors *errs,
                                     avk_prepared_t **out)
{
        avk_errors_init(errs);
        *out = NULL;
        json_t *with_id = NULL;
        if (json_is_object(doc) && !json_object_get(doc, id_field[kind])) {
                char text[AVK_ID_SIZE];
                new_id(text, sizeof(text));
                with_id = json_copy((json_t *)doc);
                json_object_set_new(with_id, id_field[kind], json_string(text));
                doc = with_id;
        }
        struct encoder *e = encoder_get(r);
        enum avk_result result = AVK_UNAVAILABLE;
        if (!e) {
                avk_errors_add(errs, NULL, "out of memory");
                goto out;
        }
        avro_value_t *value = &e->value[kind];
        if (avk_json_to_avro(r->schema[kind], doc, value, &r->opts, errs) != 0) {
                result = AVK_REJECTED;
                atomic_fetch_add(&r->rejected, 1);
                goto out;
        }
        result = encode(r, e, kind, value, id, errs, out);
out:
        if (e)
                encoder_put(r, e);
        json_decref(with_id);
        return result;
}

enum avk_result avk_reporter_prepare_json(avk_reporter_t *r, enum avk_kind kind, const char *text,
                                          size_t len, char id[AVK_ID_SIZE], struct avk_errors *errs,
                                          avk_prepared_t **out)
{
        avk_errors_init(errs);
        *out = NULL;
        /* The single pass says only yes; for anything else the tree path
         * gives the verdict and every error. */
        struct encoder *e = r->id_slot[kind] >= 0 && r->key_slot[kind] >= 0 ? encoder_get(r) : NULL;
        if (e) {
                struct avk_json_fill fill = {id_field[kind], new_id};
                enum avk_result result = AVK_UNAVAILABLE;
                int streamed = avk_json_stream_encode(r->plan[kind], AVK_JSON_READER_SIMDJSON, text,
                                                      len, &fill, &r->opts, &e->stream) == 0;
                if (streamed)
                        result = encode(r, e, kind, NULL, id, errs, out);
                encoder_put(r, e);
                if (streamed)
                        return result;
        }
        char reason[256];
        json_t *doc = avk_json_parse(text, len, reason, sizeof(reason));
        if (!doc) {
                avk_errors_add(errs, NULL, "not valid JSON at %s", reason);
                return AVK_REJECTED;
        }
        enum avk_result result = avk_reporter_prepare(r, kind, doc, id, errs, out);
        json_decref(doc);
        return result;
}

const void *avk_prepared_payload(const avk_prepared_t *prepared, size_t *len)
{
        *len = prepared->len;
        return prepared->payload;
}

void avk_prepared_destroy(avk_prepared_t *d)
{
        free(d);
}

void avk_reporter_send(avk_reporter_t *r, avk_prepared_t *d, avk_reporter_done_cb *done,
                       void *opaque)
{
        struct pending *p = malloc(sizeof(*p));
        if (!p) {
                done(opaque, d->id, AVK_UNAVAILABLE, "out of memory");
                avk_prepared_destroy(d);
                return;
        }
        *p = (struct pending){.done = done, .opaque = opaque, .reporter = r, .doc = d};
        atomic_fetch_add(&r->in_flight, 1);
        pthread_mutex_lock(&r->send_lock);
        p->seq = r->next_seq++;
        if (atomic_load(&r->spool_mode) || d->local) {
                atomic_store(&r->spool_mode, 1); /* none overtakes it */
                spool_append(r, p, -1, -1, d->local ? BECAUSE_NO_REGISTRY : BECAUSE_SPOOL_FIRST);
                pthread_mutex_unlock(&r->send_lock);
                return;
        }
        atomic_fetch_add(&r->direct_in_flight, 1);
        /* F_BLOCK: a full local queue waits for room instead of failing.
         * The payload stays with p until its delivery report. */
        rd_kafka_resp_err_t err = rd_kafka_producev(
            r->rk, RD_KAFKA_V_TOPIC(r->topic[d->kind]), RD_KAFKA_V_KEY(d->key, strlen(d->key)),
            RD_KAFKA_V_VALUE(d->payload, d->len), RD_KAFKA_V_HEADER(ID_HEADER, d->id, -1),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_BLOCK), RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
        if (!err) {
                pthread_mutex_unlock(&r->send_lock);
                return;
        }
        atomic_fetch_sub(&r->direct_in_flight, 1);
        if (r->spool && !permanent(err)) {
                atomic_store(&r->spool_mode, 1);
                spool_append(r, p, -1, -1, BECAUSE_NOT_TAKEN);
                pthread_mutex_unlock(&r->send_lock);
                return;
        }
        pthread_mutex_unlock(&r->send_lock);
        char reason[256];
        snprintf(reason, sizeof(reason), BECAUSE_NOT_TAKEN " (%s): %s", r->topic[d->kind],
                 rd_kafka_err2str(err));
        finish(r, done, opaque, d->id, AVK_UNAVAILABLE, reason);
        avk_prepared_destroy(d);
        free(p);
}

enum avk_result avk_reporter_submit(avk_reporter_t *r, enum avk_kind kind, const json_t *doc,
                                    char id[AVK_ID_SIZE], struct avk_errors *errs,
                                    avk_reporter_done_cb *done, void *opaque)
{
        avk_prepared_t *d;
        enum avk_result result = avk_reporter_prepare(r, kind, doc, id, errs, &d);
        if (result == AVK_FILED)
                avk_reporter_send(r, d, done, opaque);
        return result;
}

void avk_reporter_stats(avk_reporter_t *r, struct avk_reporter_stats *s)
{
        *s = (struct avk_reporter_stats){
            .kafka_up = atomic_load(&r->kafka_up),
            .registry_up = atomic_load(&r->registry_up),
            .in_flight = atomic_load(&r->in_flight),
            .spool_pending = r->spool ? avk_spool_outstanding(r->spool) : 0,
            .drain_stalled = atomic_load(&r->drain_stalled),
            .filed = atomic_load(&r->filed),
            .spooled = atomic_load(&r->spooled),
            .unavailable = atomic_load(&r->unavailable),
            .rejected = atomic_load(&r->rejected),
        };
}

struct waiter { /* avk_reporter_file() waiting for its one delivery report */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int done;
        enum avk_result result;
        char reason[256];
};

static void wake(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        (void)id;
        struct waiter *w = opaque;
        pthread_mutex_lock(&w->lock);
        w->result = result;
        snprintf(w->reason, sizeof(w->reason), "%s", reason ? reason : "");
        w->done = 1;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

enum avk_result avk_reporter_file(avk_reporter_t *r, enum avk_kind kind, const json_t *doc,
                                  char id[AVK_ID_SIZE], struct avk_errors *errs)
{
        struct waiter w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
        enum avk_result result = avk_reporter_submit(r, kind, doc, id, errs, wake, &w);
        if (result != AVK_FILED)
                return result;
        pthread_mutex_lock(&w.lock);
        while (!w.done)
                pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        if (w.result == AVK_UNAVAILABLE)
                avk_errors_add(errs, NULL, "%s", w.reason);
        return w.result;
}
