/*
 * avk_outbox: see outbox.h. Extracted from the router, which was its first
 * user, when the tracker needed the same at-least-once bookkeeping; now the
 * service kernel's (service.c).
 */
#include "common/kafka/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/scrub.h"

#define RETRY_BACKOFF_MS 500
/* Outputs kept for reuse once delivered: a routed record with its headers
 * is over glibc's 1 KiB thread cache, so every malloc and free of one went
 * through the arena's bins. Enough for a round of the service kernel's
 * loop (256 inputs), rounded up so that records of slightly different sizes
 * fit a spare; none larger than SPARE_SIZE_MAX, so that spares hold at most
 * 8 MiB after a burst of large records. */
#define SPARE_MAX      512
#define SPARE_ROUND    512
#define SPARE_SIZE_MAX 16384

struct pending_input {
        int64_t offset;
        int outstanding; /* outputs not yet acknowledged, +1 while still producing them */
        int64_t start_us;
};

struct avk_outbox_input {
        const char *topic;
        int32_t partition;
        int assigned; /* 0 once revoked: finishes its outputs, never stores again */
        int dirty;    /* store_at changed since the last store */
        int64_t store_at;
        uint64_t head, tail; /* slots [head, tail) of ring, by sequence number */
        struct pending_input *ring;
        size_t cap;
        struct avk_outbox_input *next;
};

struct output {
        struct avk_outbox_input *input; /* NULL for an output of its own */
        uint64_t seq;
        uint64_t tag;
        const char *topic;
        int32_t partition;
        char *key; /* NULL for a null key */
        size_t key_len;
        char *payload; /* NULL for a null value */
        size_t len;
        int hdr_cnt;
        const char *hdr_name[AVK_OUTBOX_MAX_HDRS];
        const char *hdr_value[AVK_OUTBOX_MAX_HDRS];
        size_t hdr_len[AVK_OUTBOX_MAX_HDRS];
        int64_t retry_at;          /* avk_clock_mono_ms() */
        struct output *next_retry; /* also the next spare */
        size_t cap;                /* bytes of data */
        char data[];               /* key, payload, header names and values */
};

/* The producer's handle of a topic written to: a produce by name looks the
 * topic up under librdkafka's client-wide write lock, once per record. */
struct topic_handle {
        char *name;
        rd_kafka_topic_t *rkt;
};

struct avk_outbox {
        struct avk_outbox_hooks hooks;
        const char *component;
        rd_kafka_t *producer, *consumer;
        struct topic_handle *topics; /* of producer, until avk_outbox_release() */
        size_t topic_cnt;
        struct avk_outbox_input *inputs; /* assigned or finishing */
        struct output *retries;
        struct output *spares; /* delivered outputs to reuse: spare_cnt of them */
        size_t spare_cnt;
        uint64_t in_flight, retried;
        int closing;
};

avk_outbox_t *avk_outbox_new(const struct avk_outbox_hooks *hooks, const char *component)
{
        avk_outbox_t *o = calloc(1, sizeof(*o));
        if (!o)
                return NULL;
        if (hooks)
                o->hooks = *hooks;
        o->component = component;
        return o;
}

void avk_outbox_clients(avk_outbox_t *o, rd_kafka_t *producer, rd_kafka_t *consumer)
{
        o->producer = producer;
        o->consumer = consumer;
}

void avk_outbox_release(avk_outbox_t *o)
{
        if (!o)
                return;
        for (size_t i = 0; i < o->topic_cnt; i++) {
                rd_kafka_topic_destroy(o->topics[i].rkt);
                free(o->topics[i].name);
        }
        free(o->topics);
        o->topics = NULL;
        o->topic_cnt = 0;
}

void avk_outbox_destroy(avk_outbox_t *o)
{
        if (!o)
                return;
        avk_outbox_release(o);
        while (o->inputs) {
                struct avk_outbox_input *in = o->inputs;
                o->inputs = in->next;
                free(in->ring);
                free(in);
        }
        while (o->retries) {
                struct output *out = o->retries;
                o->retries = out->next_retry;
                free(out);
        }
        while (o->spares) {
                struct output *out = o->spares;
                o->spares = out->next_retry;
                free(out);
        }
        free(o);
}

/* ---- offsets ---- */

avk_outbox_input_t *avk_outbox_assign(avk_outbox_t *o, const char *topic, int32_t partition)
{
        struct avk_outbox_input *in = calloc(1, sizeof(*in));
        if (!in)
                return NULL;
        in->topic = topic;
        in->partition = partition;
        in->assigned = 1;
        in->store_at = -1;
        in->next = o->inputs;
        o->inputs = in;
        return in;
}

void avk_outbox_revoke(avk_outbox_t *o, avk_outbox_input_t *in)
{
        (void)o;
        in->assigned = 0;
}

uint64_t avk_outbox_begin(avk_outbox_input_t *in, int64_t offset)
{
        if (in->tail - in->head == in->cap) {
                size_t cap = in->cap ? in->cap * 2 : 256;
                struct pending_input *ring = malloc(cap * sizeof(*ring));
                if (!ring)
                        return UINT64_MAX;
                for (uint64_t s = in->head; s < in->tail; s++)
                        ring[s % cap] = in->ring[s % in->cap];
                free(in->ring);
                in->ring = ring;
                in->cap = cap;
        }
        uint64_t seq = in->tail++;
        in->ring[seq % in->cap] = (struct pending_input){
            .offset = offset, .outstanding = 1, .start_us = avk_clock_mono_us()};
        return seq;
}

/* One output of input seq is durable (or, for the +1 hold, all are produced). */
static void input_step(avk_outbox_t *o, struct avk_outbox_input *in, uint64_t seq)
{
        struct pending_input *p = &in->ring[seq % in->cap];
        if (--p->outstanding > 0)
                return;
        if (o->hooks.input_done)
                o->hooks.input_done(o->hooks.opaque,
                                    (double)(avk_clock_mono_us() - p->start_us) / 1e6);
        while (in->head < in->tail && in->ring[in->head % in->cap].outstanding == 0) {
                in->store_at = in->ring[in->head % in->cap].offset + 1;
                in->dirty = 1;
                in->head++;
        }
}

void avk_outbox_end(avk_outbox_t *o, avk_outbox_input_t *in, uint64_t seq)
{
        input_step(o, in, seq);
}

void avk_outbox_hold(avk_outbox_input_t *in, uint64_t seq)
{
        in->ring[seq % in->cap].outstanding++;
}

int avk_outbox_withdraw(avk_outbox_input_t *in, uint64_t seq)
{
        if (seq + 1 != in->tail || in->ring[seq % in->cap].outstanding != 1)
                return -1;
        in->tail--;
        return 0;
}

/* Stores the offsets that advanced; frees revoked inputs with nothing left. */
static void store_offsets(avk_outbox_t *o)
{
        rd_kafka_topic_partition_list_t *list = NULL;
        for (struct avk_outbox_input **ip = &o->inputs; *ip;) {
                struct avk_outbox_input *in = *ip;
                if (!in->assigned && in->head == in->tail) {
                        *ip = in->next;
                        free(in->ring);
                        free(in);
                        continue;
                }
                if (in->assigned && in->dirty) {
                        if (!list)
                                list = rd_kafka_topic_partition_list_new(8);
                        rd_kafka_topic_partition_list_add(list, in->topic, in->partition)->offset =
                            in->store_at;
                        in->dirty = 0;
                }
                ip = &in->next;
        }
        if (!list)
                return;
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(o->consumer, list);
        if (err && err != RD_KAFKA_RESP_ERR__STATE)
                avk_log(AVK_LOG_WARN, o->component, "storing offsets: %s", rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(list);
}

/* ---- outputs ---- */

/* The length of header value i of msg. */
static size_t hdr_len(const struct avk_outbox_msg *msg, int i)
{
        return msg->hdr_lens ? msg->hdr_lens[i] : strlen(msg->hdr_values[i]);
}

/* An output with room for size bytes of data: a spare when the last one
 * kept is large enough. */
static struct output *output_alloc(avk_outbox_t *o, size_t size)
{
        struct output *out = o->spares;
        if (out && out->cap >= size) {
                o->spares = out->next_retry;
                o->spare_cnt--;
                return out;
        }
        size_t cap = (size + SPARE_ROUND - 1) / SPARE_ROUND * SPARE_ROUND;
        out = malloc(sizeof(*out) + cap);
        if (out)
                out->cap = cap;
        return out;
}

/* out is done with: kept as a spare while there is room, freed otherwise. */
static void output_free(avk_outbox_t *o, struct output *out)
{
        if (o->spare_cnt >= SPARE_MAX || out->cap > SPARE_SIZE_MAX) {
                free(out);
                return;
        }
        out->next_retry = o->spares;
        o->spares = out;
        o->spare_cnt++;
}

static struct output *output_new(avk_outbox_t *o, const struct avk_outbox_msg *msg)
{
        const struct avk_outbox_part whole = {msg->value, msg->len};
        const struct avk_outbox_part *parts = msg->value_part_cnt ? msg->value_parts : &whole;
        int part_cnt = msg->value_part_cnt ? msg->value_part_cnt : 1;
        size_t len = 0;
        for (int i = 0; i < part_cnt; i++)
                len += parts[i].len;
        size_t size = msg->key_len + len;
        for (int i = 0; i < msg->hdr_cnt; i++)
                size += strlen(msg->hdr_names[i]) + 1 + hdr_len(msg, i);
        struct output *out = output_alloc(o, size);
        if (!out)
                return NULL;
        size_t cap = out->cap;
        memset(out, 0, sizeof(*out));
        out->cap = cap;
        out->topic = msg->topic;
        out->partition = msg->partition;
        out->tag = msg->tag;
        char *p = out->data;
        out->key = msg->key ? p : NULL;
        out->key_len = msg->key_len;
        if (msg->key_len)
                memcpy(p, msg->key, msg->key_len);
        p += msg->key_len;
        out->payload = msg->value || msg->value_part_cnt ? p : NULL;
        out->len = len;
        for (int i = 0; i < part_cnt; i++) {
                if (parts[i].len)
                        memcpy(p, parts[i].bytes, parts[i].len);
                p += parts[i].len;
        }
        out->hdr_cnt = msg->hdr_cnt;
        for (int i = 0; i < msg->hdr_cnt; i++) {
                size_t name_size = strlen(msg->hdr_names[i]) + 1, n = hdr_len(msg, i);
                memcpy(p, msg->hdr_names[i], name_size);
                out->hdr_name[i] = p;
                p += name_size;
                if (n)
                        memcpy(p, msg->hdr_values[i], n);
                out->hdr_value[i] = p;
                out->hdr_len[i] = n;
                p += n;
        }
        return out;
}

static void schedule_retry(avk_outbox_t *o, struct output *out)
{
        out->retry_at = avk_clock_mono_ms() + RETRY_BACKOFF_MS;
        out->next_retry = o->retries;
        o->retries = out;
}

/* The producer's handle of topic, made on first use; NULL when out of
 * memory. */
static rd_kafka_topic_t *topic_handle(avk_outbox_t *o, const char *topic)
{
        for (size_t i = 0; i < o->topic_cnt; i++) {
                if (strcmp(o->topics[i].name, topic) == 0)
                        return o->topics[i].rkt;
        }
        struct topic_handle *grown = realloc(o->topics, (o->topic_cnt + 1) * sizeof(*grown));
        if (!grown)
                return NULL;
        o->topics = grown;
        struct topic_handle *t = &o->topics[o->topic_cnt];
        if (!(t->name = strdup(topic)))
                return NULL;
        if (!(t->rkt = rd_kafka_topic_new(o->producer, topic, NULL))) {
                free(t->name);
                return NULL;
        }
        o->topic_cnt++;
        return t->rkt;
}

/* Produces out; a refusal other than a full queue schedules a retry. */
static void produce(avk_outbox_t *o, struct output *out)
{
        rd_kafka_topic_t *rkt = topic_handle(o, out->topic);
        if (!rkt) {
                avk_log(AVK_LOG_WARN, o->component, "produce to %s: out of memory; retrying",
                        out->topic);
                schedule_retry(o, out);
                return;
        }
        for (;;) {
                rd_kafka_headers_t *h = rd_kafka_headers_new((size_t)out->hdr_cnt);
                for (int i = 0; i < out->hdr_cnt; i++)
                        rd_kafka_header_add(h, out->hdr_name[i], -1, out->hdr_value[i],
                                            (ssize_t)out->hdr_len[i]);
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    o->producer, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(out->partition),
                    RD_KAFKA_V_KEY(out->key, out->key_len),
                    RD_KAFKA_V_VALUE(out->payload, out->len), RD_KAFKA_V_HEADERS(h),
                    RD_KAFKA_V_OPAQUE(out), RD_KAFKA_V_END);
                if (!err)
                        return;
                rd_kafka_headers_destroy(h);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        avk_log(AVK_LOG_WARN, o->component, "produce to %s: %s; retrying",
                                out->topic, rd_kafka_err2str(err));
                        schedule_retry(o, out);
                        return;
                }
                /* Delivery reports free room; they may finish earlier inputs,
                 * never this one, which holds its +1 until all are produced. */
                rd_kafka_poll(o->producer, 10);
        }
}

int avk_outbox_emit(avk_outbox_t *o, avk_outbox_input_t *in, uint64_t seq,
                    const struct avk_outbox_msg *msg)
{
        struct output *out = output_new(o, msg);
        if (!out)
                return -1;
        out->input = in;
        out->seq = seq;
        if (in)
                in->ring[seq % in->cap].outstanding++;
        o->in_flight++;
        produce(o, out);
        return 0;
}

/* A copy of len bytes at p, NULL for NULL. */
static int copy_bytes(const void *p, size_t len, void **out)
{
        *out = NULL;
        if (!p)
                return 0;
        if (!(*out = malloc(len ? len : 1)))
                return -1;
        memcpy(*out, p, len);
        return 0;
}

int avk_outbox_keep(const rd_kafka_message_t *m, void **key, void **value)
{
        *value = NULL;
        if (copy_bytes(m->key, m->key_len, key) != 0)
                return -1;
        return copy_bytes(m->payload, m->len, value);
}

struct avk_outbox_source avk_outbox_source_of(const rd_kafka_message_t *m)
{
        return (struct avk_outbox_source){.topic = rd_kafka_topic_name(m->rkt),
                                          .partition = m->partition,
                                          .offset = m->offset,
                                          .key = m->key,
                                          .key_len = m->key_len,
                                          .value = m->payload,
                                          .len = m->len};
}

int avk_outbox_deadletter(avk_outbox_t *o, avk_outbox_input_t *in, uint64_t seq,
                          const char *deadletter_topic, const struct avk_outbox_source *src,
                          const char *reason)
{
        char error[512], part[16], offset[24];
        const char *topic = src->topic;
        /* A reason may quote the record (a registry subject, a field's
         * value): identity-shaped text goes, the rest stays readable. */
        avk_scrub_copy(error, sizeof(error), reason);
        snprintf(part, sizeof(part), "%d", (int)src->partition);
        snprintf(offset, sizeof(offset), "%lld", (long long)src->offset);
        const char *names[AVK_OUTBOX_MAX_HDRS] = {"avk-error", "avk-source-topic",
                                                  "avk-source-partition", "avk-source-offset"};
        const char *values[AVK_OUTBOX_MAX_HDRS] = {error, topic, part, offset};
        int cnt = 4;
        for (int i = 0; i < src->hdr_cnt && cnt < AVK_OUTBOX_MAX_HDRS; i++, cnt++) {
                names[cnt] = src->hdr_names[i];
                values[cnt] = src->hdr_values[i];
        }
        avk_log(AVK_LOG_WARN, o->component, "%s [%s] offset %s to %s: %s", topic, part, offset,
                deadletter_topic, error);
        struct avk_outbox_msg msg = {.topic = deadletter_topic,
                                     .partition = RD_KAFKA_PARTITION_UA,
                                     .key = src->key,
                                     .key_len = src->key_len,
                                     .value = src->value,
                                     .len = src->len,
                                     .hdr_names = names,
                                     .hdr_values = values,
                                     .hdr_cnt = cnt,
                                     .tag = src->tag};
        return avk_outbox_emit(o, in, seq, &msg);
}

static void output_done(avk_outbox_t *o, struct output *out)
{
        o->in_flight--;
        if (out->tag && o->hooks.acked)
                o->hooks.acked(o->hooks.opaque, out->key, out->key_len, out->tag);
        if (out->input)
                input_step(o, out->input, out->seq);
        output_free(o, out);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        avk_outbox_t *o = opaque;
        struct output *out = m->_private;
        if (!m->err) {
                output_done(o, out);
                return;
        }
        if (o->closing) {
                /* Given up at stop: the input's offset is never stored, so the
                 * next owner of the partition writes this output again. */
                o->in_flight--;
                output_free(o, out);
                return;
        }
        if (out->tag && o->hooks.still_wanted &&
            !o->hooks.still_wanted(o->hooks.opaque, out->key, out->key_len, out->tag)) {
                output_done(o, out);
                return;
        }
        avk_log(AVK_LOG_WARN, o->component, "delivery to %s [%d]: %s; retrying", out->topic,
                (int)m->partition, rd_kafka_err2str(m->err));
        o->retried++;
        schedule_retry(o, out);
}

void avk_outbox_conf(avk_outbox_t *o, rd_kafka_conf_t *conf)
{
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, o);
}

static void run_retries(avk_outbox_t *o)
{
        if (!o->retries)
                return;
        int64_t now = avk_clock_mono_ms();
        struct output *due = NULL;
        for (struct output **op = &o->retries; *op;) {
                struct output *out = *op;
                if (out->retry_at <= now) {
                        *op = out->next_retry;
                        out->next_retry = due;
                        due = out;
                } else {
                        op = &out->next_retry;
                }
        }
        while (due) {
                struct output *out = due;
                due = out->next_retry;
                produce(o, out);
        }
}

void avk_outbox_poll(avk_outbox_t *o)
{
        rd_kafka_poll(o->producer, 0);
        run_retries(o);
        store_offsets(o);
}

void avk_outbox_drain(avk_outbox_t *o, int timeout_ms)
{
        int64_t deadline = avk_clock_mono_ms() + timeout_ms;
        while (o->in_flight > 0 && avk_clock_mono_ms() < deadline) {
                rd_kafka_poll(o->producer, 50);
                run_retries(o);
        }
        store_offsets(o);
}

void avk_outbox_close(avk_outbox_t *o)
{
        o->closing = 1;
        rd_kafka_purge(o->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        avk_outbox_drain(o, 1000);
        while (o->retries) {
                struct output *out = o->retries;
                o->retries = out->next_retry;
                o->in_flight--;
                free(out);
        }
}

uint64_t avk_outbox_unfinished(const avk_outbox_input_t *in)
{
        return in->tail - in->head;
}

uint64_t avk_outbox_in_flight(const avk_outbox_t *o)
{
        return o->in_flight;
}

uint64_t avk_outbox_retries(const avk_outbox_t *o)
{
        return o->retried;
}
