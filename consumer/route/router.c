/*
 * avk_router: see router.h and docs/router.md.
 *
 * One thread does everything: it polls the group consumer (which also runs
 * the rebalance callback), produces outputs asynchronously and serves the
 * producer's delivery reports. No locks, then, except the atomics that other
 * threads read for statistics.
 *
 * Offsets and outputs: common/kafka/outbox.h - an input's offset is never
 * committed before its outputs, and every earlier input's of its partition,
 * are durable; a failed output is produced again until it is.
 *
 * State: per deviation of the assigned partitions, what the rules read of
 * its DeviationReported (a re-routing decides on it again) and every routing
 * hop (receiver, the DeviationRouted as written, and the input that caused
 * it). It is rebuilt when partitions are assigned
 * by reading those partitions of topic.reported and topic.routed (our own
 * outputs) from the beginning to their current end, and is what lets a
 * re-routing know the deviation and its history, and a replayed input write
 * exactly the outputs it wrote before (same bytes, same event ids).
 */
#include "consumer/route/router.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <uuid/uuid.h>

#include "common/util/arena.h"
#include "common/contract/avro_field.h"
#include "common/contract/codec.h"
#include "common/contract/directory.h"
#include "common/util/env.h"
#include "common/util/errors.h"
#include "common/contract/ident.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"
#include "common/kafka/outbox.h"
#include "common/kafka/replay.h"
#include "consumer/route/rules.h"

#define COMPONENT "router"
#define ID_SIZE   37 /* a UUID in text and its NUL */

#define MAX_PARTITIONS   1024
#define BATCH_MAX        256   /* inputs taken from the consumer per round */
#define DRAIN_TIMEOUT_MS 30000 /* a revoke or stop waits this long for outputs in flight */
#define REBUILD_TIMEOUT  60000
#define SUMMARY_EVERY_MS 10000
#define READY_PROBE_MS   500 /* /readyz waits this long for Kafka's answer */
#define WRONG_RECEIVER   "REJECTED_WRONG_RECEIVER"

enum input_topic { IN_REPORTED, IN_RESPONSE, IN_TOPICS };

/* The namespace of DeviationRouted.event_id (UUIDv5, RFC 4122 section 4.3):
 * the name is "<deviation_id>/<hop>". Fixed forever: changing it would make
 * every replayed routing look new downstream. */
static const char event_namespace[] = "8d1c7a52-3f0e-5b6a-9e4d-6a2b0c9f1e37";

struct hop {
        char event_id[ID_SIZE]; /* of the DeviationRouted */
        char receiver_party[8];
        char cause[ID_SIZE];
        void *routed; /* the DeviationRouted as written; NULL when this hop is unknown */
        size_t routed_len;
};

struct deviation {
        char id[ID_SIZE];
        int32_t partition;
        char *
            report; /* what routing reads of its DeviationReported (pack_report); NULL until seen */
        struct hop *hops;
        int hop_cnt; /* hops[0..hop_cnt) */
        struct deviation *next;
};

struct avk_router {
        struct avk_env env;
        avk_directory_t *dir;
        avk_rules_t *rules;
        avk_codec_t *codec;
        const avk_schema_t *reported_schema, *response_schema, *routed_schema;
        avro_value_t reported_value, response_value, routed_value;
        const char *topic[IN_TOPICS];
        const char *routed_topic, *deadletter_topic;
        char group[256];
        struct avk_outbox_kafka kafka;

        avk_outbox_t *outbox;
        avk_outbox_input_t *current[IN_TOPICS][MAX_PARTITIONS]; /* the assigned partitions */
        int owned[MAX_PARTITIONS];                              /* partitions with state */
        avk_arena_t *arena[MAX_PARTITIONS]; /* the state of each partition: common/util/arena.h */
        struct deviation **table;
        size_t table_size, deviation_cnt;

        atomic_int stop;
        atomic_int partitions;
        atomic_ullong inputs_taken, inputs_done, routed, rerouted, replayed, deadlettered, skipped,
            retried;

        avk_metrics_t *metrics;
        avk_metric_family_t *m_routed, *m_deadletter, *m_skipped;
        avk_metric_t *m_latency, *m_replayed, *m_retries;
        struct timespec last_summary;
        uint64_t summary_done;
};

/* ---- time ---- */

static int64_t ms_between(const struct timespec *a, const struct timespec *b)
{
        return (int64_t)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

static struct timespec mono_now(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t;
}

static int64_t wall_ms(void)
{
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- outputs ---- */

/* Every output of an input is acknowledged (common/kafka/outbox.h). */
static void input_done(void *opaque, double seconds)
{
        avk_router_t *r = opaque;
        avk_metric_observe(r->m_latency, seconds);
        atomic_fetch_add(&r->inputs_done, 1);
}

/* The outbox counts the retries; the statistics and the counter mirror it. */
static void mirror_retries(avk_router_t *r)
{
        uint64_t n = avk_outbox_retries(r->outbox);
        atomic_store(&r->retried, n);
        avk_metric_set(r->m_retries, (int64_t)n);
}

/* ---- state ---- */

/* Copies src into dst of size, cut to fit: per routed record, snprintf's
 * format parsing cost more than the copy. */
static void copy_text(char *dst, size_t size, const char *src)
{
        size_t n = strnlen(src, size - 1);
        memcpy(dst, src, n);
        dst[n] = '\0';
}

static size_t hash_id(const char *id)
{
        size_t h = 1469598103934665603u; /* FNV-1a */
        for (; *id; id++)
                h = (h ^ (unsigned char)*id) * 1099511628211u;
        return h;
}

static struct deviation *state_find(avk_router_t *r, const char *id)
{
        if (!r->table_size)
                return NULL;
        for (struct deviation *d = r->table[hash_id(id) % r->table_size]; d; d = d->next) {
                if (strcmp(d->id, id) == 0)
                        return d;
        }
        return NULL;
}

static int state_grow(avk_router_t *r)
{
        size_t size = r->table_size ? r->table_size * 2 : 1024;
        struct deviation **table = calloc(size, sizeof(*table));
        if (!table)
                return -1;
        for (size_t i = 0; i < r->table_size; i++) {
                for (struct deviation *d = r->table[i], *next; d; d = next) {
                        next = d->next;
                        size_t b = hash_id(d->id) % size;
                        d->next = table[b];
                        table[b] = d;
                }
        }
        free(r->table);
        r->table = table;
        r->table_size = size;
        return 0;
}

/* Memory for state of partition p, which lives until p is revoked. */
static void *state_alloc(avk_router_t *r, int32_t p, size_t size)
{
        if (!r->arena[p] && !(r->arena[p] = avk_arena_new()))
                return NULL;
        return avk_arena_alloc(r->arena[p], size);
}

static struct deviation *state_get(avk_router_t *r, const char *id, int32_t partition)
{
        struct deviation *d = state_find(r, id);
        if (d)
                return d;
        if (partition < 0 || partition >= MAX_PARTITIONS)
                return NULL;
        if (r->deviation_cnt >= r->table_size && state_grow(r) != 0)
                return NULL;
        d = state_alloc(r, partition, sizeof(*d));
        if (!d)
                return NULL;
        memset(d, 0, sizeof(*d));
        copy_text(d->id, sizeof(d->id), id);
        d->partition = partition;
        size_t b = hash_id(id) % r->table_size;
        d->next = r->table[b];
        r->table[b] = d;
        r->deviation_cnt++;
        return d;
}

/* Forgets the deviations of partitions flagged in drop (all when NULL):
 * out of the table, then their arenas at once. */
static void state_drop(avk_router_t *r, const int *drop)
{
        for (size_t i = 0; i < r->table_size; i++) {
                for (struct deviation **dp = &r->table[i]; *dp;) {
                        struct deviation *d = *dp;
                        if (!drop || drop[d->partition]) {
                                *dp = d->next;
                                r->deviation_cnt--;
                        } else {
                                dp = &d->next;
                        }
                }
        }
        for (int p = 0; p < MAX_PARTITIONS; p++) {
                if (r->arena[p] && (!drop || drop[p])) {
                        avk_arena_destroy(r->arena[p]);
                        r->arena[p] = NULL;
                }
        }
}

/* What routing reads of a DeviationReported: the rules' inputs and the
 * fields the DeviationRouted copies. Kept packed per deviation - a few dozen
 * bytes instead of the whole report - and unpacked when a response re-routes
 * it. */
struct report {
        struct avk_rules_input in;
        int lex_maria; /* flags.possible_lex_maria */
};

static const struct {
        const char *path;
        size_t offset;
} report_fields[] = {
    {"reporter.party", offsetof(struct avk_rules_input, reporter_party)},
    {"receiver.party", offsetof(struct avk_rules_input, named_party)},
    {"receiver.unit_hsa_id", offsetof(struct avk_rules_input, named_unit_hsa_id)},
    {"location.party", offsetof(struct avk_rules_input, location_party)},
    {"location.unit_hsa_id", offsetof(struct avk_rules_input, location_unit_hsa_id)},
    {"municipality_code", offsetof(struct avk_rules_input, municipality_code)},
    {"location.care_setting", offsetof(struct avk_rules_input, care_setting)},
    {"category", offsetof(struct avk_rules_input, category)},
    {"competence", offsetof(struct avk_rules_input, competence)},
    {"home_visits", offsetof(struct avk_rules_input, home_visits)},
    {"agreement", offsetof(struct avk_rules_input, agreement)},
    {"event_class", offsetof(struct avk_rules_input, event_class)},
    {"harm.level", offsetof(struct avk_rules_input, harm_level)},
};
#define REPORT_FIELDS (sizeof(report_fields) / sizeof(report_fields[0]))

static const char **report_field(struct avk_rules_input *in, size_t i)
{
        return (const char **)((char *)in + report_fields[i].offset);
}

/* The report in v; its strings are v's. */
static void report_of(avro_value_t *v, struct report *rp)
{
        memset(rp, 0, sizeof(*rp));
        for (size_t i = 0; i < REPORT_FIELDS; i++)
                *report_field(&rp->in, i) = avk_avro_text(v, report_fields[i].path);
        avro_value_t flag;
        if (avk_avro_field(v, "flags.possible_lex_maria", &flag) == 0)
                avro_value_get_boolean(&flag, &rp->lex_maria);
        int64_t occurred_at = 0;
        if (avk_avro_field(v, "occurred_at", &flag) == 0)
                avro_value_get_long(&flag, &occurred_at);
        rp->in.occurred_at_ms = occurred_at;
}

/* Packs rp into one allocation of partition p's state: per field a
 * presence byte ('0' for null, '1' before the text) and a NUL, then the
 * flag byte and occurred_at in decimal. */
static char *pack_report(avk_router_t *r, int32_t p, const struct report *rp)
{
        struct avk_rules_input in = rp->in;
        char occurred[24];
        size_t size = 2 + (size_t)snprintf(occurred, sizeof(occurred), "%lld", in.occurred_at_ms);
        for (size_t i = 0; i < REPORT_FIELDS; i++) {
                const char *f = *report_field(&in, i);
                size += 2 + (f ? strlen(f) : 0);
        }
        char *packed = state_alloc(r, p, size), *at = packed;
        if (!packed)
                return NULL;
        for (size_t i = 0; i < REPORT_FIELDS; i++) {
                const char *f = *report_field(&in, i);
                size_t n = f ? strlen(f) : 0;
                *at++ = f ? '1' : '0';
                memcpy(at, f ? f : "", n + 1);
                at += n + 1;
        }
        *at++ = rp->lex_maria ? '1' : '0';
        memcpy(at, occurred, strlen(occurred) + 1);
        return packed;
}

/* The report packed by pack_report; its strings are packed's. */
static void unpack_report(const char *packed, struct report *rp)
{
        memset(rp, 0, sizeof(*rp));
        for (size_t i = 0; i < REPORT_FIELDS; i++) {
                int present = *packed++ == '1';
                *report_field(&rp->in, i) = present ? packed : NULL;
                packed += strlen(packed) + 1;
        }
        rp->lex_maria = *packed == '1';
        rp->in.occurred_at_ms = strtoll(packed + 1, NULL, 10);
}

/* Keeps what routing reads of the report in v for d (the first one seen
 * stays) and unpacks it into rp. */
static int set_report(avk_router_t *r, struct deviation *d, avro_value_t *v, struct report *rp)
{
        if (!d->report) {
                report_of(v, rp);
                d->report = pack_report(r, d->partition, rp);
                if (!d->report)
                        return -1;
        }
        unpack_report(d->report, rp);
        return 0;
}

/* Records hop h of d (a copy of routed); an already known hop is kept. A
 * re-routing outgrows the hops in the arena: the copy is there until the
 * partition goes, a few hundred bytes per re-routing. */
static struct hop *set_hop(avk_router_t *r, struct deviation *d, int h, const char *event_id,
                           const char *party, const char *cause, const void *routed, size_t len)
{
        if (h < 0 || h > 1000)
                return NULL;
        if (h >= d->hop_cnt) {
                struct hop *hops = state_alloc(r, d->partition, (size_t)(h + 1) * sizeof(*hops));
                if (!hops)
                        return NULL;
                if (d->hop_cnt)
                        memcpy(hops, d->hops, (size_t)d->hop_cnt * sizeof(*hops));
                memset(hops + d->hop_cnt, 0, (size_t)(h + 1 - d->hop_cnt) * sizeof(*hops));
                d->hops = hops;
                d->hop_cnt = h + 1;
        }
        struct hop *hop = &d->hops[h];
        if (hop->routed)
                return hop;
        hop->routed = state_alloc(r, d->partition, len);
        if (!hop->routed)
                return NULL;
        memcpy(hop->routed, routed, len);
        hop->routed_len = len;
        copy_text(hop->event_id, sizeof(hop->event_id), event_id);
        copy_text(hop->receiver_party, sizeof(hop->receiver_party), party);
        copy_text(hop->cause, sizeof(hop->cause), cause ? cause : "");
        return hop;
}

static void event_id_of(const char *deviation_id, int hop, char out[ID_SIZE])
{
        char name[64];
        int n = snprintf(name, sizeof(name), "%s/%d", deviation_id, hop);
        avk_ident_uuid5(event_namespace, name, (size_t)n, out);
}

/* ---- dead letter ---- */

static int deadletter(avk_router_t *r, avk_outbox_input_t *t, uint64_t seq,
                      const rd_kafka_message_t *m, const char *reason)
{
        atomic_fetch_add(&r->deadlettered, 1);
        avk_metric_add(
            avk_metrics_series(r->m_deadletter, (const char *[]){rd_kafka_topic_name(m->rkt)}), 1);
        struct avk_outbox_source src = avk_outbox_source_of(m);
        return avk_outbox_deadletter(r->outbox, t, seq, r->deadletter_topic, &src, reason);
}

/* Queues one output of input seq of t. Out of memory is the only failure. */
static int emit(avk_router_t *r, avk_outbox_input_t *t, uint64_t seq, const char *topic,
                int32_t partition, const void *key, size_t key_len, const void *payload, size_t len,
                const char *const *names, const char *const *values, int hdr_cnt)
{
        struct avk_outbox_msg msg = {.topic = topic,
                                     .partition = partition,
                                     .key = key,
                                     .key_len = key_len,
                                     .value = payload,
                                     .len = len,
                                     .hdr_names = names,
                                     .hdr_values = values,
                                     .hdr_cnt = hdr_cnt};
        return avk_outbox_emit(r->outbox, t, seq, &msg);
}

/* ---- routing ---- */

/* Writes hop h of d: the DeviationRouted to topic.routed, in the
 * deviation's partition. Delivering it - to the receiver's webhook and
 * inbox topic - is avvik notify's (docs/notify.md). */
static int emit_hop(avk_router_t *r, avk_outbox_input_t *t, uint64_t seq, const struct deviation *d,
                    int h)
{
        const struct hop *hop = &d->hops[h];
        char hop_text[16];
        snprintf(hop_text, sizeof(hop_text), "%d", h);
        const char *names[] = {AVK_HDR_ID, AVK_HDR_TYPE, AVK_HDR_HOP, AVK_HDR_CAUSE};
        const char *values[] = {hop->event_id, "DeviationRouted", hop_text, hop->cause};
        if (emit(r, t, seq, r->routed_topic, d->partition, d->id, strlen(d->id), hop->routed,
                 hop->routed_len, names, values, 4) != 0)
                return -1;
        atomic_fetch_add(&r->routed, 1);
        if (h > 0)
                atomic_fetch_add(&r->rerouted, 1);
        return 0;
}

/* Builds the DeviationRouted of decision for report rp and records it as
 * hop decision->hop of d. */
static struct hop *record_hop(avk_router_t *r, struct deviation *d, const struct report *rp,
                              const struct avk_rules_decision *dec, const char *cause, char *errstr,
                              size_t errstr_size)
{
        avro_value_t *v = &r->routed_value, f;
        char event_id[ID_SIZE];
        event_id_of(d->id, dec->hop, event_id);
        avro_value_reset(v);
        int rc =
            avk_avro_set_text(v, "event_id", event_id) |
            avk_avro_set_text(v, "deviation_id", d->id) |
            avk_avro_set_text(v, "reporter_party", rp->in.reporter_party) |
            avk_avro_set_text(v, "receiver_party", dec->receiver_party) |
            avk_avro_set_text(v, "receiver_unit_hsa_id",
                              dec->receiver_unit_hsa_id[0] ? dec->receiver_unit_hsa_id : NULL) |
            avk_avro_set_text(v, "decision", avk_rules_decision_symbol(dec->kind)) |
            avk_avro_set_text(v, "rule_id", dec->rule_id) |
            avk_avro_set_text(v, "reason", dec->reason) |
            avk_avro_set_text(v, "category", rp->in.category) |
            avk_avro_set_text(v, "harm_level", rp->in.harm_level);
        rc |=
            avro_value_get_by_name(v, "routed_at", &f, NULL) || avro_value_set_long(&f, wall_ms());
        rc |= avro_value_get_by_name(v, "hop", &f, NULL) || avro_value_set_int(&f, dec->hop);
        rc |= avro_value_get_by_name(v, "possible_lex_maria", &f, NULL) ||
              avro_value_set_boolean(&f, rp->lex_maria);
        rc |= avk_avro_set_text(v, "basis", avk_rules_basis_symbol(dec->basis));
        rc |= avro_value_get_by_name(v, "named_receiver_not_used", &f, NULL) ||
              avro_value_set_boolean(&f, dec->named_not_used);
        rc |= avro_value_get_by_name(v, "location_contradicts_setting", &f, NULL) ||
              avro_value_set_boolean(&f, dec->location_contradicts);
        if (rc) {
                snprintf(errstr, errstr_size, "cannot build the DeviationRouted");
                return NULL;
        }
        const void *out;
        size_t len;
        if (avk_codec_encode(r->codec, r->routed_topic, r->routed_schema, v, &out, &len, errstr,
                             errstr_size) != 0)
                return NULL;
        struct hop *hop = set_hop(r, d, dec->hop, event_id, dec->receiver_party, cause, out, len);
        if (!hop) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        avk_metric_add(
            avk_metrics_series(
                r->m_routed, (const char *[]){avk_rules_decision_symbol(dec->kind), dec->rule_id}),
            1);
        return hop;
}

/* Decodes a DeviationReported and checks what routing relies on: the key is
 * the deviation id (so its responses share its partition), and the patient's
 * municipality is one of the county's. */
static const char *decode_reported(avk_router_t *r, const rd_kafka_message_t *m, char *errstr,
                                   size_t errstr_size)
{
        char reason[256];
        if (avk_codec_decode(r->codec, m->payload, m->len, r->reported_schema, &r->reported_value,
                             reason, sizeof(reason)) != 0) {
                snprintf(errstr, errstr_size, "undecodable DeviationReported: %s", reason);
                return NULL;
        }
        const char *id = avk_avro_text(&r->reported_value, "deviation_id");
        uuid_t parsed;
        if (!id || uuid_parse(id, parsed) != 0) {
                snprintf(errstr, errstr_size, "deviation_id is not a UUID");
                return NULL;
        }
        if (m->key_len != strlen(id) || memcmp(m->key, id, m->key_len) != 0) {
                snprintf(errstr, errstr_size, "the key is not the deviation_id");
                return NULL;
        }
        const char *muni = avk_avro_text(&r->reported_value, "municipality_code");
        if (!muni || avk_ident_municipality_code(muni, reason, sizeof(reason)) != 0) {
                snprintf(errstr, errstr_size,
                         "municipality_code is not one of the county's 49 municipalities");
                return NULL;
        }
        return id;
}

static int on_reported(avk_router_t *r, avk_outbox_input_t *t, uint64_t seq,
                       const rd_kafka_message_t *m)
{
        char err[512];
        const char *id = decode_reported(r, m, err, sizeof(err));
        if (!id)
                return deadletter(r, t, seq, m, err);
        struct deviation *d = state_get(r, id, m->partition);
        struct report rp;
        if (!d || set_report(r, d, &r->reported_value, &rp) != 0)
                return -1;
        if (d->hop_cnt > 0 && d->hops[0].routed) {
                /* Routed before (a replay): the same outputs again. */
                atomic_fetch_add(&r->replayed, 1);
                avk_metric_add(r->m_replayed, 1);
                return emit_hop(r, t, seq, d, 0);
        }
        struct avk_rules_decision dec;
        avk_rules_decide(r->rules, r->dir, &rp.in, &dec);
        if (!record_hop(r, d, &rp, &dec, d->id, err, sizeof(err)))
                return deadletter(r, t, seq, m, err);
        return emit_hop(r, t, seq, d, 0);
}

static void skip(avk_router_t *r, const char *kind)
{
        atomic_fetch_add(&r->skipped, 1);
        avk_metric_add(avk_metrics_series(r->m_skipped, (const char *[]){kind}), 1);
}

static int on_response(avk_router_t *r, avk_outbox_input_t *t, uint64_t seq,
                       const rd_kafka_message_t *m)
{
        char err[512], reason[256];
        avro_value_t *v = &r->response_value;
        if (avk_codec_decode(r->codec, m->payload, m->len, r->response_schema, v, reason,
                             sizeof(reason)) != 0) {
                snprintf(err, sizeof(err), "undecodable DeviationResponse: %s", reason);
                return deadletter(r, t, seq, m, err);
        }
        const char *kind = avk_avro_text(v, "kind");
        if (!kind || strcmp(kind, WRONG_RECEIVER) != 0) {
                skip(r, kind ? kind : "UNKNOWN");
                return 0; /* the tracker's business, not the router's */
        }
        const char *id = avk_avro_text(v, "deviation_id"),
                   *response_id = avk_avro_text(v, "response_id");
        const char *party = avk_avro_text(v, "party");
        if (!id || !response_id || !party || m->key_len != strlen(id) ||
            memcmp(m->key, id, m->key_len) != 0)
                return deadletter(r, t, seq, m, "the key is not the deviation_id");
        struct deviation *d = state_find(r, id);
        if (!d || !d->report || d->hop_cnt == 0 || !d->hops[d->hop_cnt - 1].routed) {
                snprintf(err, sizeof(err),
                         "no routed DeviationReported for this deviation in partition %d",
                         (int)m->partition);
                return deadletter(r, t, seq, m, err);
        }
        for (int h = 1; h < d->hop_cnt; h++) {
                if (d->hops[h].routed && strcmp(d->hops[h].cause, response_id) == 0) {
                        atomic_fetch_add(&r->replayed, 1);
                        avk_metric_add(r->m_replayed, 1);
                        return emit_hop(r, t, seq, d, h);
                }
        }
        int current = d->hop_cnt - 1;
        if (strcmp(d->hops[current].receiver_party, party) != 0) {
                /* From an earlier receiver, or a party that never received it. */
                skip(r, "STALE_" WRONG_RECEIVER);
                return 0;
        }
        const char *earlier[1000];
        size_t earlier_cnt = 0;
        for (int h = 0; h < current; h++) {
                if (d->hops[h].routed)
                        earlier[earlier_cnt++] = d->hops[h].receiver_party;
        }
        struct avk_rules_rejection rej = {.hop = current,
                                          .rejecting_party = party,
                                          .suggested_party = avk_avro_text(v, "suggested_receiver"),
                                          .earlier_rejecting = earlier,
                                          .earlier_rejecting_cnt = earlier_cnt};
        struct report rp;
        struct avk_rules_decision dec;
        unpack_report(d->report, &rp);
        avk_rules_reroute(r->rules, r->dir, &rp.in, &rej, &dec);
        if (!record_hop(r, d, &rp, &dec, response_id, err, sizeof(err)))
                return deadletter(r, t, seq, m, err);
        avk_log(AVK_LOG_INFO, COMPONENT, "deviation %s: hop %d %s to %s (%s)", d->id, dec.hop,
                avk_rules_decision_symbol(dec.kind), dec.receiver_party, dec.rule_id);
        return emit_hop(r, t, seq, d, dec.hop);
}

/* ---- state rebuild ---- */

static void rebuild_apply(avk_router_t *r, const rd_kafka_message_t *m, int routed)
{
        char err[512];
        if (!routed) {
                const char *id = decode_reported(r, m, err, sizeof(err));
                struct deviation *d = id ? state_get(r, id, m->partition) : NULL;
                struct report rp;
                if (d)
                        set_report(r, d, &r->reported_value, &rp);
                return;
        }
        avro_value_t *v = &r->routed_value, f;
        if (avk_codec_decode(r->codec, m->payload, m->len, r->routed_schema, v, err, sizeof(err)) !=
            0)
                return;
        int32_t hop = -1;
        const char *id = avk_avro_text(v, "deviation_id"),
                   *party = avk_avro_text(v, "receiver_party");
        const char *event_id = avk_avro_text(v, "event_id");
        if (!id || !party || !event_id || avro_value_get_by_name(v, "hop", &f, NULL) != 0 ||
            avro_value_get_int(&f, &hop) != 0)
                return;
        char cause[ID_SIZE] = "";
        rd_kafka_headers_t *hdrs;
        const void *val;
        size_t len;
        if (rd_kafka_message_headers(m, &hdrs) == 0 &&
            rd_kafka_header_get_last(hdrs, AVK_HDR_CAUSE, &val, &len) == 0 && len < sizeof(cause)) {
                memcpy(cause, val, len);
                cause[len] = '\0';
        }
        struct deviation *d = state_get(r, id, m->partition);
        if (d)
                set_hop(r, d, hop, event_id, party, cause, m->payload, m->len);
}

static void rebuild_reported(void *opaque, const rd_kafka_message_t *m)
{
        rebuild_apply(opaque, m, 0);
}

static void rebuild_routed(void *opaque, const rd_kafka_message_t *m)
{
        rebuild_apply(opaque, m, 1);
}

/* Reads partitions parts of topic.reported and topic.routed from the
 * beginning to their ends as of now into the state. */
static int rebuild(avk_router_t *r, const int32_t *parts, int cnt)
{
        if (avk_replay_read(r->kafka.reader, r->topic[IN_REPORTED], parts, cnt, REBUILD_TIMEOUT,
                            rebuild_reported, r) != 0)
                return -1;
        return avk_replay_read(r->kafka.reader, r->routed_topic, parts, cnt, REBUILD_TIMEOUT,
                               rebuild_routed, r);
}

static void on_assign(avk_router_t *r, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
        int32_t nums[MAX_PARTITIONS];
        int fresh[MAX_PARTITIONS] = {0};
        int cnt = avk_replay_fresh(parts, r->owned, MAX_PARTITIONS, nums, fresh);
        struct timespec start = mono_now(), now;
        while (cnt && rebuild(r, nums, cnt) != 0 && !atomic_load(&r->stop)) {
                avk_log(AVK_LOG_WARN, COMPONENT, "rebuilding state failed; retrying");
                state_drop(r, fresh);
        }
        now = mono_now();
        for (int i = 0; i < cnt; i++)
                r->owned[nums[i]] = 1;
        int reported = 0;
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                int k = strcmp(tp->topic, r->topic[IN_REPORTED]) == 0 ? IN_REPORTED : IN_RESPONSE;
                if (tp->partition < 0 || tp->partition >= MAX_PARTITIONS)
                        continue;
                reported += k == IN_REPORTED;
                if (!r->current[k][tp->partition])
                        r->current[k][tp->partition] =
                            avk_outbox_assign(r->outbox, r->topic[k], tp->partition);
        }
        atomic_fetch_add(&r->partitions, reported);
        avk_log(AVK_LOG_INFO, COMPONENT,
                "assigned %d partitions; state of %d rebuilt in %lld ms: %zu deviations",
                parts->cnt, cnt, (long long)ms_between(&start, &now), r->deviation_cnt);
        rd_kafka_assign(rk, parts);
}

static void on_revoke(avk_router_t *r, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
        avk_outbox_revoking(r->outbox, rk, DRAIN_TIMEOUT_MS,
                            "their inputs will be routed again by the next owner");
        int drop[MAX_PARTITIONS] = {0}, reported = 0;
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                int k = strcmp(tp->topic, r->topic[IN_REPORTED]) == 0 ? IN_REPORTED : IN_RESPONSE;
                if (tp->partition < 0 || tp->partition >= MAX_PARTITIONS)
                        continue;
                avk_outbox_input_t *t = r->current[k][tp->partition];
                if (t) {
                        avk_outbox_revoke(r->outbox, t);
                        r->current[k][tp->partition] = NULL;
                        reported += k == IN_REPORTED;
                }
                drop[tp->partition] = 1;
                r->owned[tp->partition] = 0;
        }
        state_drop(r, drop);
        atomic_fetch_sub(&r->partitions, reported);
        avk_log(AVK_LOG_INFO, COMPONENT, "revoked %d partitions", parts->cnt);
        rd_kafka_assign(rk, NULL);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        avk_router_t *r = opaque;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
                on_assign(r, rk, parts);
        else
                on_revoke(r, rk, parts);
}

/* ---- the loop ---- */

static int handle(avk_router_t *r, const rd_kafka_message_t *m)
{
        const char *topic = rd_kafka_topic_name(m->rkt);
        int k = strcmp(topic, r->topic[IN_REPORTED]) == 0 ? IN_REPORTED : IN_RESPONSE;
        if (m->partition < 0 || m->partition >= MAX_PARTITIONS || !r->current[k][m->partition])
                return 0; /* a record fetched before a revoke: the next owner has it */
        avk_outbox_input_t *t = r->current[k][m->partition];
        atomic_fetch_add(&r->inputs_taken, 1);
        uint64_t seq = avk_outbox_begin(t, m->offset);
        if (seq == UINT64_MAX)
                return -1;
        int rc = k == IN_REPORTED ? on_reported(r, t, seq, m) : on_response(r, t, seq, m);
        avk_outbox_end(r->outbox, t, seq); /* the +1 hold: every output is produced */
        return rc;
}

static void summary(avk_router_t *r)
{
        struct timespec now = mono_now();
        if (ms_between(&r->last_summary, &now) < SUMMARY_EVERY_MS)
                return;
        r->last_summary = now;
        uint64_t done = atomic_load(&r->inputs_done);
        if (done == r->summary_done)
                return;
        r->summary_done = done;
        avk_log(AVK_LOG_INFO, COMPONENT,
                "inputs %llu, routed %llu (rerouted %llu, replayed %llu), dead-lettered %llu, "
                "skipped %llu, outputs in flight %llu, deviations held %zu",
                (unsigned long long)done, (unsigned long long)atomic_load(&r->routed),
                (unsigned long long)atomic_load(&r->rerouted),
                (unsigned long long)atomic_load(&r->replayed),
                (unsigned long long)atomic_load(&r->deadlettered),
                (unsigned long long)atomic_load(&r->skipped),
                (unsigned long long)avk_outbox_in_flight(r->outbox), r->deviation_cnt);
}

static int partition_cnt(const struct rd_kafka_metadata *md, const char *topic, char *errstr,
                         size_t errstr_size)
{
        for (int i = 0; i < md->topic_cnt; i++) {
                if (strcmp(md->topics[i].topic, topic) != 0)
                        continue;
                if (!md->topics[i].err)
                        return md->topics[i].partition_cnt;
                snprintf(errstr, errstr_size, "topic %s: %s", topic,
                         rd_kafka_err2str(md->topics[i].err));
                return -1;
        }
        snprintf(errstr, errstr_size, "topic %s: %s", topic,
                 rd_kafka_err2str(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
        return -1;
}

/* The lifecycle topics must share one partition count: a deviation's
 * response, report and routing are then in the same partition number.
 *
 * The metadata of every topic is asked for through the producer: that fills
 * its metadata cache with the output topics (topic.routed, the inbox topics,
 * the dead letter), so the first output to each is sent at once instead of
 * waiting up to a second for librdkafka's periodic scan of unknown topics. */
static int check_topics(avk_router_t *r, char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(r->kafka.producer, 1, NULL, &md, 10000);
        if (e) {
                snprintf(errstr, errstr_size, "topic metadata: %s", rd_kafka_err2str(e));
                return -1;
        }
        const char *topics[] = {r->topic[IN_REPORTED], r->topic[IN_RESPONSE], r->routed_topic};
        int first = -1, rc = -1;
        for (size_t i = 0; i < 3; i++) {
                int n = partition_cnt(md, topics[i], errstr, errstr_size);
                if (n < 0)
                        goto out;
                if (n > MAX_PARTITIONS) {
                        snprintf(errstr, errstr_size, "topic %s: more than %d partitions",
                                 topics[i], MAX_PARTITIONS);
                        goto out;
                }
                if (first >= 0 && n != first) {
                        snprintf(errstr, errstr_size,
                                 "topic %s has %d partitions and %s %d: the lifecycle topics "
                                 "must share one partition count",
                                 topics[i], n, topics[0], first);
                        goto out;
                }
                first = n;
        }
        rc = 0;
out:
        rd_kafka_metadata_destroy(md);
        return rc;
}

int avk_router_run(avk_router_t *r, char *errstr, size_t errstr_size)
{
        if (check_topics(r, errstr, errstr_size) != 0)
                return -1;
        rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(2);
        rd_kafka_topic_partition_list_add(subs, r->topic[IN_REPORTED], RD_KAFKA_PARTITION_UA);
        rd_kafka_topic_partition_list_add(subs, r->topic[IN_RESPONSE], RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(r->kafka.consumer, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (e) {
                snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(e));
                return -1;
        }
        avk_log(AVK_LOG_INFO, COMPONENT, "group %s: routing %s and %s", r->group,
                r->topic[IN_REPORTED], r->topic[IN_RESPONSE]);
        int rc = 0;
        r->last_summary = mono_now();
        while (!atomic_load(&r->stop)) {
                /* Up to BATCH_MAX inputs per round, the housekeeping below
                 * once per round: at full speed, serving delivery reports
                 * and storing offsets per input cost more than routing. */
                rd_kafka_message_t *m;
                for (int taken = 0; taken < BATCH_MAX && rc == 0 &&
                                    (m = rd_kafka_consumer_poll(r->kafka.consumer, taken ? 0 : 20));
                     taken++) {
                        if (m->err) {
                                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                        avk_log(AVK_LOG_WARN, COMPONENT, "consumer: %s",
                                                rd_kafka_message_errstr(m));
                        } else if (handle(r, m) != 0) {
                                snprintf(errstr, errstr_size, "out of memory");
                                rc = -1;
                        }
                        rd_kafka_message_destroy(m);
                }
                avk_outbox_poll(r->outbox);
                mirror_retries(r);
                char reason[512];
                if (rd_kafka_fatal_error(r->kafka.producer, reason, sizeof(reason))) {
                        snprintf(errstr, errstr_size, "producer: %s", reason);
                        rc = -1;
                }
                if (rc)
                        break;
                summary(r);
        }
        /* Closing revokes the assignment: on_revoke waits for the outputs in
         * flight, stores and commits; bounded, should Kafka not answer. */
        avk_kafka_consumer_close(r->kafka.consumer,
                                 (int)avk_config_get_int(r->env.cfg, "consumer.close.timeout.ms"),
                                 COMPONENT);
        avk_outbox_close(r->outbox);
        /* Destroyed here: rd_kafka_destroy() (avk_outbox_kafka_close()) would
         * close it again, without a bound, after a close that gave up. */
        rd_kafka_destroy_flags(r->kafka.consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        r->kafka.consumer = NULL;
        mirror_retries(r);
        summary(r);
        return rc;
}

void avk_router_stop(avk_router_t *r)
{
        atomic_store(&r->stop, 1);
}

void avk_router_stats(avk_router_t *r, struct avk_router_stats *s)
{
        *s = (struct avk_router_stats){
            .inputs_taken = atomic_load(&r->inputs_taken),
            .inputs_done = atomic_load(&r->inputs_done),
            .routed = atomic_load(&r->routed),
            .rerouted = atomic_load(&r->rerouted),
            .replayed = atomic_load(&r->replayed),
            .deadlettered = atomic_load(&r->deadlettered),
            .skipped = atomic_load(&r->skipped),
            .retries = atomic_load(&r->retried),
            .partitions = atomic_load(&r->partitions),
        };
}

avk_metrics_t *avk_router_metrics(avk_router_t *r)
{
        return r->metrics;
}

int avk_router_ready(void *opaque, char *why, size_t why_size)
{
        avk_router_t *r = opaque;
        if (!avk_kafka_reachable(r->kafka.producer, READY_PROBE_MS)) {
                snprintf(why, why_size, "Kafka does not answer");
                return 0;
        }
        if (atomic_load(&r->partitions) == 0) {
                snprintf(why, why_size, "no partition of %s assigned", r->topic[IN_REPORTED]);
                return 0;
        }
        return 1;
}

/* ---- creation ---- */

static int load_files(avk_router_t *r, const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        const char *dir_file = avk_config_get(cfg, "directory.file");
        const char *rules_file = avk_config_get(cfg, "routing.rules.file");
        if (!dir_file || !rules_file) {
                snprintf(errstr, errstr_size, "%s: required by the router",
                         dir_file ? "routing.rules.file" : "directory.file");
                return -1;
        }
        struct avk_errors errs;
        avk_errors_init(&errs);
        r->dir = avk_directory_load(dir_file, 0, &errs);
        if (r->dir)
                r->rules = avk_rules_load(rules_file, r->reported_schema, &errs);
        if (!r->rules) {
                avk_errors_join(&errs, errstr, errstr_size);
                return -1;
        }
        return 0;
}

static int make_metrics(avk_router_t *r)
{
        r->metrics = avk_metrics_new();
        if (!r->metrics)
                return -1;
        r->m_routed = avk_metrics_counter(r->metrics, "avk_router_routed_total",
                                          "DeviationRouted events written, by decision and rule.",
                                          (const char *[]){"decision", "rule", NULL});
        r->m_deadletter = avk_metrics_counter(r->metrics, "avk_router_deadlettered_total",
                                              "Records written to the dead-letter topic.",
                                              (const char *[]){"source", NULL});
        r->m_skipped = avk_metrics_counter(r->metrics, "avk_router_responses_skipped_total",
                                           "Responses that do not re-route, by kind.",
                                           (const char *[]){"kind", NULL});
        r->m_replayed = avk_metrics_series(
            avk_metrics_counter(r->metrics, "avk_router_replayed_total",
                                "Inputs seen again whose outputs were rewritten from state.", NULL),
            NULL);
        r->m_retries = avk_metrics_series(
            avk_metrics_counter(r->metrics, "avk_router_delivery_retries_total",
                                "Outputs produced again after a failed delivery.", NULL),
            NULL);
        r->m_latency = avk_metrics_series(
            avk_metrics_histogram(r->metrics, "avk_router_input_seconds",
                                  "From consuming an input to Kafka acknowledging its outputs.",
                                  NULL, AVK_METRICS_LATENCY_BUCKETS,
                                  AVK_METRICS_LATENCY_BUCKET_CNT),
            NULL);
        return r->m_routed && r->m_deadletter && r->m_skipped && r->m_replayed && r->m_retries &&
                       r->m_latency
                   ? 0
                   : -1;
}

avk_router_t *avk_router_new(const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        avk_router_t *r = calloc(1, sizeof(*r));
        if (!r) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        if (avk_env_open(&r->env, cfg, errstr, errstr_size) != 0)
                goto fail;
        r->reported_schema = avk_catalog_by_name(r->env.catalog, "DeviationReported");
        r->response_schema = avk_catalog_by_name(r->env.catalog, "DeviationResponse");
        r->routed_schema = avk_catalog_by_name(r->env.catalog, "DeviationRouted");
        r->topic[IN_REPORTED] = avk_config_get(cfg, "topic.reported");
        r->topic[IN_RESPONSE] = avk_config_get(cfg, "topic.response");
        r->routed_topic = avk_config_get(cfg, "topic.routed");
        r->deadletter_topic = avk_config_get(cfg, "topic.deadletter");
        snprintf(r->group, sizeof(r->group), "%s", avk_config_get(cfg, "router.group.id"));
        if (load_files(r, cfg, errstr, errstr_size) != 0)
                goto fail;
        r->codec = avk_codec_new(r->env.catalog, r->env.registry);
        struct avk_outbox_hooks hooks = {.input_done = input_done, .opaque = r};
        r->outbox = avk_outbox_new(&hooks, COMPONENT);
        if (!r->codec || !r->outbox || make_metrics(r) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        avro_generic_value_new(avk_schema_iface(r->reported_schema), &r->reported_value);
        avro_generic_value_new(avk_schema_iface(r->response_schema), &r->response_value);
        avro_generic_value_new(avk_schema_iface(r->routed_schema), &r->routed_value);
        if (avk_outbox_kafka_open(r->outbox, cfg, r->group, on_rebalance, r, &r->kafka, errstr,
                                  errstr_size) != 0)
                goto fail;
        return r;
fail:
        avk_router_destroy(r);
        return NULL;
}

void avk_router_destroy(avk_router_t *r)
{
        if (!r)
                return;
        avk_outbox_kafka_close(&r->kafka);
        avk_outbox_destroy(r->outbox);
        state_drop(r, NULL);
        free(r->table);
        if (r->reported_value.self)
                avro_value_decref(&r->reported_value);
        if (r->response_value.self)
                avro_value_decref(&r->response_value);
        if (r->routed_value.self)
                avro_value_decref(&r->routed_value);
        avk_codec_destroy(r->codec);
        avk_metrics_destroy(r->metrics);
        avk_rules_destroy(r->rules);
        avk_directory_destroy(r->dir);
        avk_env_close(&r->env);
        free(r);
}
