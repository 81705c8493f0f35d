/*
 * avk_router: see router.h and docs/router.md.
 *
 * The router is its domain logic plus the hooks of the service kernel
 * (common/kafka/service.h), whose one thread runs them all: the kernel polls
 * the group consumer, rebuilds on assignment, serves delivery reports and
 * stores offsets. No locks, then, except the atomics that other threads read
 * for statistics.
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

#include <librdkafka/rdkafka.h>
#include <uuid/uuid.h>

#include "common/util/arena.h"
#include "common/util/clock.h"
#include "common/contract/avro_field.h"
#include "common/contract/codec.h"
#include "common/contract/directory.h"
#include "common/util/env.h"
#include "common/util/errors.h"
#include "common/util/hash.h"
#include "common/contract/ident.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"
#include "common/kafka/service.h"
#include "consumer/route/rules.h"

#define COMPONENT "router"
#define ID_SIZE   37 /* a UUID in text and its NUL */

#define MAX_PARTITIONS AVK_SERVICE_MAX_PARTITIONS
#define WRONG_RECEIVER "REJECTED_WRONG_RECEIVER"

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
        int manual; /* decided MANUAL: at the county's triage desk */
};

struct deviation {
        struct avk_hnode node; /* in the router's table, by id */
        char id[ID_SIZE];
        int32_t partition;
        char *
            report; /* what routing reads of its DeviationReported (pack_report); NULL until seen */
        struct hop *hops;
        int hop_cnt; /* hops[0..hop_cnt) */
};

struct avk_router {
        struct avk_env env;
        /* The registry had no answer while decoding: the record waits
         * (AVK_SERVICE_WAIT) or the rebuild is tried again; why, for the log. */
        int unavailable;
        char unavailable_why[512];
        avk_directory_t *dir;
        avk_rules_t *rules;
        avk_codec_t *codec;
        const avk_schema_t *reported_schema, *response_schema, *routed_schema;
        avro_value_t reported_value, response_value, routed_value;
        const char *topic[IN_TOPICS];
        const char *routed_topic, *deadletter_topic;
        const char *outputs[1]; /* topics sharing the inputs' partition count */
        char group[256];
        avk_service_t *service;
        avk_outbox_t *outbox;               /* the service's */
        avk_arena_t *arena[MAX_PARTITIONS]; /* the state of each partition: common/util/arena.h */
        avk_htab_t table;                   /* the deviations, in their partitions' arenas */
        uint64_t seed;                      /* of the table's hash: ids come from outside */

        atomic_ullong routed, rerouted, replayed, deadlettered, skipped;

        avk_metrics_t *metrics;
        avk_metric_family_t *m_routed, *m_deadletter, *m_skipped;
        avk_metric_t *m_replayed;
        uint64_t summary_done;
};

/* ---- state ---- */

/* Copies src into dst of size, cut to fit: per routed record, snprintf's
 * format parsing cost more than the copy. */
static void copy_text(char *dst, size_t size, const char *src)
{
        size_t n = strnlen(src, size - 1);
        memcpy(dst, src, n);
        dst[n] = '\0';
}

static uint64_t hash_id(const avk_router_t *r, const char *id)
{
        return avk_hash_bytes(id, strlen(id), r->seed);
}

static int same_id(const struct avk_hnode *node, const void *id)
{
        return strcmp(avk_container_of(node, struct deviation, node)->id, id) == 0;
}

static struct deviation *state_find(avk_router_t *r, const char *id)
{
        struct avk_hnode *n = avk_htab_find(&r->table, hash_id(r, id), same_id, id);
        return n ? avk_container_of(n, struct deviation, node) : NULL;
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
        d = state_alloc(r, partition, sizeof(*d));
        if (!d)
                return NULL;
        memset(d, 0, sizeof(*d));
        copy_text(d->id, sizeof(d->id), id);
        d->partition = partition;
        avk_htab_insert(&r->table, &d->node, hash_id(r, id));
        return d;
}

/* Forgets the deviations of partitions flagged in drop (all when NULL):
 * out of the table, then their arenas at once. */
static void state_drop(avk_router_t *r, const int *drop)
{
        struct avk_hiter it;
        avk_hiter_init(&it, &r->table);
        for (struct avk_hnode *n; (n = avk_hiter_next(&it, &r->table));) {
                if (!drop || drop[avk_container_of(n, struct deviation, node)->partition])
                        avk_htab_remove(&r->table, n);
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
                           const char *party, const char *cause, const void *routed, size_t len,
                           int manual)
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
        hop->manual = manual;
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

/* Notes that the registry had no answer for a record's writer schema. */
static void unavailable(avk_router_t *r, const char *why)
{
        r->unavailable = 1;
        snprintf(r->unavailable_why, sizeof(r->unavailable_why), "%s", why);
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
        rc |= avro_value_get_by_name(v, "routed_at", &f, NULL) ||
              avro_value_set_long(&f, avk_clock_system_ms());
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
        int encoded = avk_codec_encode(r->codec, r->routed_topic, r->routed_schema, v, &out, &len,
                                       errstr, errstr_size);
        if (encoded == AVK_CODEC_UNAVAILABLE)
                unavailable(r, errstr);
        if (encoded != 0)
                return NULL;
        struct hop *hop = set_hop(r, d, dec->hop, event_id, dec->receiver_party, cause, out, len,
                                  dec->kind == AVK_RULES_MANUAL);
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
        int rc = avk_codec_decode(r->codec, m->payload, m->len, r->reported_schema,
                                  &r->reported_value, reason, sizeof(reason));
        if (rc != 0) {
                snprintf(errstr, errstr_size, "undecodable DeviationReported: %s", reason);
                if (rc == AVK_CODEC_UNAVAILABLE)
                        unavailable(r, errstr);
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
                return r->unavailable ? AVK_SERVICE_WAIT : deadletter(r, t, seq, m, err);
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
                return r->unavailable ? AVK_SERVICE_WAIT : deadletter(r, t, seq, m, err);
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
        int rc = avk_codec_decode(r->codec, m->payload, m->len, r->response_schema, v, reason,
                                  sizeof(reason));
        if (rc != 0) {
                snprintf(err, sizeof(err), "undecodable DeviationResponse: %s", reason);
                if (rc != AVK_CODEC_UNAVAILABLE)
                        return deadletter(r, t, seq, m, err);
                unavailable(r, err);
                return AVK_SERVICE_WAIT;
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
        /* The desk triages for the county: its "wrong receiver" routes the deviation on to
         * the receiver it names, or leaves it at the desk; never a hop back to the desk. */
        int by_desk = d->hops[current].manual && avk_rules_hosts_desk(r->dir, party);
        if (by_desk && !avk_avro_text(v, "suggested_receiver")) {
                skip(r, "DESK_" WRONG_RECEIVER);
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
                                          .earlier_rejecting_cnt = earlier_cnt,
                                          .by_desk = by_desk};
        struct report rp;
        struct avk_rules_decision dec;
        unpack_report(d->report, &rp);
        avk_rules_reroute(r->rules, r->dir, &rp.in, &rej, &dec);
        if (by_desk && dec.kind == AVK_RULES_MANUAL) {
                skip(r, "DESK_" WRONG_RECEIVER); /* nobody the desk named can take it */
                return 0;
        }
        if (!record_hop(r, d, &rp, &dec, response_id, err, sizeof(err)))
                return r->unavailable ? AVK_SERVICE_WAIT : deadletter(r, t, seq, m, err);
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
        int rc =
            avk_codec_decode(r->codec, m->payload, m->len, r->routed_schema, v, err, sizeof(err));
        if (rc == AVK_CODEC_UNAVAILABLE)
                unavailable(r, err);
        if (rc != 0)
                return;
        int32_t hop = -1;
        const char *id = avk_avro_text(v, "deviation_id"),
                   *party = avk_avro_text(v, "receiver_party");
        const char *event_id = avk_avro_text(v, "event_id"),
                   *decision = avk_avro_text(v, "decision");
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
                set_hop(r, d, hop, event_id, party, cause, m->payload, m->len,
                        decision &&
                            strcmp(decision, avk_rules_decision_symbol(AVK_RULES_MANUAL)) == 0);
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
static int on_rebuild(void *opaque, const int32_t *parts, int cnt)
{
        avk_router_t *r = opaque;
        r->unavailable = 0;
        if (avk_service_replay(r->service, r->topic[IN_REPORTED], parts, cnt, rebuild_reported,
                               r) != 0 ||
            avk_service_replay(r->service, r->routed_topic, parts, cnt, rebuild_routed, r) != 0)
                return -1;
        /* A state rebuilt without every record it read would route again
         * what was routed: try again once the registry answers. */
        if (r->unavailable) {
                avk_log(AVK_LOG_WARN, "router", "state not rebuilt: %s (trying again)",
                        r->unavailable_why);
                r->unavailable = 0;
                return -1;
        }
        return 0;
}

/* The state of partitions parts is forgotten: a failed rebuild, a revoke. */
static void on_drop(void *opaque, const int32_t *parts, int cnt)
{
        int drop[MAX_PARTITIONS] = {0};
        for (int i = 0; i < cnt; i++)
                drop[parts[i]] = 1;
        state_drop(opaque, drop);
}

static void describe(void *opaque, char *buf, size_t size)
{
        avk_router_t *r = opaque;
        snprintf(buf, size, "%zu deviations", r->table.cnt);
}

/* ---- the loop ---- */

static int on_record(void *opaque, int topic, avk_outbox_input_t *t, uint64_t seq,
                     const rd_kafka_message_t *m, char *errstr, size_t errstr_size)
{
        avk_router_t *r = opaque;
        int rc = topic == IN_REPORTED ? on_reported(r, t, seq, m) : on_response(r, t, seq, m);
        if (rc == AVK_SERVICE_WAIT) {
                snprintf(errstr, errstr_size, "%s", r->unavailable_why);
                r->unavailable = 0;
        } else if (rc) {
                snprintf(errstr, errstr_size, "out of memory");
        }
        return rc;
}

static void summary(void *opaque)
{
        avk_router_t *r = opaque;
        struct avk_service_stats s;
        avk_service_stats(r->service, &s);
        uint64_t done = s.inputs_done;
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
                (unsigned long long)avk_outbox_in_flight(r->outbox), r->table.cnt);
}

int avk_router_run(avk_router_t *r, char *errstr, size_t errstr_size)
{
        avk_log(AVK_LOG_INFO, COMPONENT, "group %s: routing %s and %s", r->group,
                r->topic[IN_REPORTED], r->topic[IN_RESPONSE]);
        return avk_service_run(r->service, errstr, errstr_size);
}

void avk_router_stop(avk_router_t *r)
{
        avk_service_stop(r->service);
}

void avk_router_stats(avk_router_t *r, struct avk_router_stats *s)
{
        struct avk_service_stats k;
        avk_service_stats(r->service, &k);
        *s = (struct avk_router_stats){
            .inputs_taken = k.inputs_taken,
            .inputs_done = k.inputs_done,
            .routed = atomic_load(&r->routed),
            .rerouted = atomic_load(&r->rerouted),
            .replayed = atomic_load(&r->replayed),
            .deadlettered = atomic_load(&r->deadlettered),
            .skipped = atomic_load(&r->skipped),
            .retries = k.retries,
            .partitions = k.partitions,
        };
}

avk_metrics_t *avk_router_metrics(avk_router_t *r)
{
        return r->metrics;
}

int avk_router_ready(void *opaque, char *why, size_t why_size)
{
        avk_router_t *r = opaque;
        return avk_service_ready(r->service, why, why_size);
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
        return r->m_routed && r->m_deadletter && r->m_skipped && r->m_replayed ? 0 : -1;
}

avk_router_t *avk_router_new(const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        avk_router_t *r = calloc(1, sizeof(*r));
        if (!r || avk_htab_init(&r->table, 1024) != 0) {
                free(r);
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        r->seed = avk_hash_seed();
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
        if (!r->codec || make_metrics(r) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        avro_generic_value_new(avk_schema_iface(r->reported_schema), &r->reported_value);
        avro_generic_value_new(avk_schema_iface(r->response_schema), &r->response_value);
        avro_generic_value_new(avk_schema_iface(r->routed_schema), &r->routed_value);
        r->outputs[0] = r->routed_topic;
        struct avk_service_options opts = {
            .component = COMPONENT,
            .metric_prefix = "avk_router",
            .group = r->group,
            .inputs = r->topic,
            .input_cnt = IN_TOPICS,
            .outputs = r->outputs,
            .output_cnt = 1,
            .revoke_note = "their inputs will be routed again by the next owner",
            .metrics = r->metrics,
            .hooks = {.on_record = on_record,
                      .on_rebuild = on_rebuild,
                      .on_drop = on_drop,
                      .describe = describe,
                      .summary = summary,
                      .opaque = r}};
        r->service = avk_service_new(cfg, &opts, errstr, errstr_size);
        if (!r->service)
                goto fail;
        r->outbox = avk_service_outbox(r->service);
        return r;
fail:
        avk_router_destroy(r);
        return NULL;
}

void avk_router_destroy(avk_router_t *r)
{
        if (!r)
                return;
        avk_service_destroy(r->service);
        state_drop(r, NULL);
        avk_htab_destroy(&r->table);
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
