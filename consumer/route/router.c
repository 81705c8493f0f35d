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

#include "common/util/arena.h"
#include "common/util/clock.h"
#include "common/util/decimal.h"
#include "common/contract/codec.h"
#include "common/contract/directory.h"
#include "common/util/env.h"
#include "common/util/errors.h"
#include "common/util/hash.h"
#include "common/contract/ident.h"
#include "common/contract/slotfield.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"
#include "common/kafka/service.h"
#include "consumer/route/rules.h"

#define COMPONENT "router"
#define ID_SIZE   37 /* a UUID in text and its NUL */

#define MAX_PARTITIONS AVK_SERVICE_MAX_PARTITIONS
#define WRONG_RECEIVER "REJECTED_WRONG_RECEIVER"
/* Inputs taken per round of the service kernel: under a backlog, a round
 * spanning several of the consumer's fetches leaves Kafka one produce request
 * per partition (docs/router.md, "Throughput"). */
#define ROUND_MAX 8192

enum input_topic { IN_REPORTED, IN_RESPONSE, IN_TOPICS };

/* The fields the router reads of a DeviationReported: the rules' text
 * inputs first (report_offsets), then the rest. */
enum reported_field {
        RP_MUNICIPALITY = 5,
        RP_DEVIATION_ID = 13,
        RP_LEX_MARIA,
        RP_OCCURRED_AT,
        RP_FIELDS
};

/* ... of a DeviationResponse. */
enum response_field {
        RS_KIND,
        RS_DEVIATION_ID,
        RS_RESPONSE_ID,
        RS_PARTY,
        RS_RESPONDER,
        RS_SUGGESTED,
        RS_FIELDS
};

/* Every field of a DeviationRouted: it reads some, writes all. */
enum routed_field {
        RT_EVENT_ID,
        RT_DEVIATION_ID,
        RT_ROUTED_AT,
        RT_HOP,
        RT_REPORTER_PARTY,
        RT_RECEIVER_PARTY,
        RT_RECEIVER_UNIT,
        RT_DECISION,
        RT_RULE_ID,
        RT_REASON,
        RT_CATEGORY,
        RT_HARM_LEVEL,
        RT_LEX_MARIA,
        RT_BASIS,
        RT_NAMED_NOT_USED,
        RT_LOCATION_CONTRADICTS,
        RT_FIELDS
};

/* The namespace of DeviationRouted.event_id (UUIDv5, RFC 4122 section 4.3):
 * the name is "<deviation_id>/<hop>". Fixed forever: changing it would make
 * every replayed routing look new downstream. */
static const char event_namespace[] = "8d1c7a52-3f0e-5b6a-9e4d-6a2b0c9f1e37";

/* A reason of routed records, as encoded (its length's varint, then its
 * text), kept once for every hop that carries it: it is most of a routed
 * record's bytes, and the rules give few distinct ones (docs/router.md). */
struct reason {
        struct avk_hnode node; /* in the router's reasons, by its bytes */
        size_t len;
        char bytes[];
};

/* What the state holds elsewhere of a DeviationRouted, in the record's
 * order: cut out of a hop's bytes, joined back when the hop is written. */
enum { CUT_EVENT_ID, CUT_DEVIATION_ID, CUT_REASON, CUTS };

struct hop {
        char event_id[ID_SIZE]; /* of the DeviationRouted */
        char receiver_party[8];
        /* The DeviationRouted as written without its cuts (docs/router.md,
         * "State"): cut i goes back in before routed[cut_at[i]]; a cut not
         * found in the record is empty. NULL when this hop is unknown. */
        char *routed;
        const struct reason *reason; /* CUT_REASON's bytes */
        /* avk-cause of the hop; NULL when it is the deviation's id (hop 0). */
        const char *cause;
        uint32_t len; /* of routed */
        uint32_t cut_at[CUTS];
        uint8_t event_cut, id_cut; /* bytes cut of event_id and of the deviation's id */
        uint8_t manual;            /* decided MANUAL: at the county's triage desk */
};

/* Largest members first: 96 bytes in the arena, as before the report's
 * offset and digest were added (docs/router.md, "One body per deviation"). */
struct deviation {
        struct avk_hnode node; /* in the router's table, by id */
        char *
            report; /* what routing reads of its DeviationReported (pack_report); NULL until seen */
        struct hop *hops;
        int64_t report_offset;  /* of the DeviationReported that filed it, in its partition */
        uint64_t report_digest; /* of that record's Avro body (body_digest) */
        int32_t partition;
        int hop_cnt; /* hops[0..hop_cnt) */
        char id[ID_SIZE];
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
        /* The fields read and written, in the slots of each schema's compiled
         * program (common/contract/slotfield.h): found once, at creation. */
        avk_slotfield_t reported_f[RP_FIELDS], response_f[RS_FIELDS], routed_f[RT_FIELDS];
        avk_avroprog_slot_t routed_slots[RT_FIELDS]; /* the DeviationRouted being built */
        const avk_avroprog_t *routed_prog;
        unsigned char *routed_buf; /* its Avro body */
        size_t routed_cap;
        const char *topic[IN_TOPICS];
        const char *routed_topic, *deadletter_topic;
        const char *outputs[1]; /* topics sharing the inputs' partition count */
        char group[256];
        avk_service_t *service;
        avk_outbox_t *outbox;               /* the service's */
        avk_arena_t *arena[MAX_PARTITIONS]; /* the state of each partition: common/util/arena.h */
        avk_htab_t table;                   /* the deviations, in their partitions' arenas */
        avk_htab_t reasons;                 /* struct reason, in reason_arena, for all partitions */
        avk_arena_t *reason_arena;
        uint64_t seed; /* of the table's hash: ids come from outside */

        atomic_ullong routed, rerouted, replayed, deadlettered, skipped, duplicates;

        avk_metrics_t *metrics;
        avk_metric_family_t *m_routed, *m_deadletter, *m_skipped, *m_filed_again;
        avk_metric_t *m_replayed;
        /* The RoutingDecision symbol of each decision kind, found once: a label of m_routed. */
        const char *decision_symbol[AVK_RULES_MANUAL + 1];
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

/* Where each text field the rules read goes in their input, in the order
 * of reported_paths. */
static const size_t report_offsets[] = {
    offsetof(struct avk_rules_input, reporter_party),
    offsetof(struct avk_rules_input, named_party),
    offsetof(struct avk_rules_input, named_unit_hsa_id),
    offsetof(struct avk_rules_input, location_party),
    offsetof(struct avk_rules_input, location_unit_hsa_id),
    offsetof(struct avk_rules_input, municipality_code),
    offsetof(struct avk_rules_input, care_setting),
    offsetof(struct avk_rules_input, category),
    offsetof(struct avk_rules_input, competence),
    offsetof(struct avk_rules_input, home_visits),
    offsetof(struct avk_rules_input, agreement),
    offsetof(struct avk_rules_input, event_class),
    offsetof(struct avk_rules_input, harm_level),
};
#define REPORT_FIELDS (sizeof(report_offsets) / sizeof(report_offsets[0]))

static const char *const reported_paths[RP_FIELDS] = {
    "reporter.party",
    "receiver.party",
    "receiver.unit_hsa_id",
    "location.party",
    "location.unit_hsa_id",
    "municipality_code",
    "location.care_setting",
    "category",
    "competence",
    "home_visits",
    "agreement",
    "event_class",
    "harm.level",
    [RP_DEVIATION_ID] = "deviation_id",
    [RP_LEX_MARIA] = "flags.possible_lex_maria",
    [RP_OCCURRED_AT] = "occurred_at",
};

static const char *const response_paths[RS_FIELDS] = {
    [RS_KIND] = "kind",   [RS_DEVIATION_ID] = "deviation_id", [RS_RESPONSE_ID] = "response_id",
    [RS_PARTY] = "party", [RS_RESPONDER] = "responder",       [RS_SUGGESTED] = "suggested_receiver",
};

static const char *const routed_paths[RT_FIELDS] = {
    [RT_EVENT_ID] = "event_id",
    [RT_DEVIATION_ID] = "deviation_id",
    [RT_ROUTED_AT] = "routed_at",
    [RT_HOP] = "hop",
    [RT_REPORTER_PARTY] = "reporter_party",
    [RT_RECEIVER_PARTY] = "receiver_party",
    [RT_RECEIVER_UNIT] = "receiver_unit_hsa_id",
    [RT_DECISION] = "decision",
    [RT_RULE_ID] = "rule_id",
    [RT_REASON] = "reason",
    [RT_CATEGORY] = "category",
    [RT_HARM_LEVEL] = "harm_level",
    [RT_LEX_MARIA] = "possible_lex_maria",
    [RT_BASIS] = "basis",
    [RT_NAMED_NOT_USED] = "named_receiver_not_used",
    [RT_LOCATION_CONTRADICTS] = "location_contradicts_setting",
};

static const char **report_field(struct avk_rules_input *in, size_t i)
{
        return (const char **)((char *)in + report_offsets[i]);
}

/* A packed field: null, text, or an enum's symbol by its index (the
 * symbol is the reader schema's, which lives as long as the router). */
#define PACKED_NULL '0'
#define PACKED_TEXT '1'
#define PACKED_ENUM 'e'

/* The symbol index of field i of the report in slots when it is an enum
 * whose index fits a byte; -1 otherwise. */
static int packed_enum(const avk_router_t *r, size_t i, const avk_avroprog_slot_t *slots)
{
        const avk_slotfield_t *f = &r->reported_f[i];
        if (!is_avro_enum(f->type) || avk_slotfield_is_null(f, slots))
                return -1;
        int64_t index = avk_slotfield_long(f, slots);
        return index >= 0 && index <= UINT8_MAX ? (int)index : -1;
}

/* Packs what routing reads of the DeviationReported in slots into one
 * allocation of partition p's state: per field a kind byte - PACKED_NULL,
 * PACKED_TEXT before the text and its NUL, PACKED_ENUM before the symbol's
 * index in a byte (most of the fields: a byte instead of the symbol's ten
 * or twenty) - then the flag byte and occurred_at's eight bytes. */
static char *pack_report(avk_router_t *r, int32_t p, const avk_avroprog_slot_t *slots)
{
        const char *text[REPORT_FIELDS];
        size_t len[REPORT_FIELDS], size = 1 + sizeof(int64_t);
        int symbol[REPORT_FIELDS];
        for (size_t i = 0; i < REPORT_FIELDS; i++) {
                symbol[i] = packed_enum(r, i, slots);
                text[i] =
                    symbol[i] >= 0 ? NULL : avk_slotfield_text(&r->reported_f[i], slots, &len[i]);
                size += symbol[i] >= 0 ? 2 : text[i] ? 2 + len[i] : 1;
        }
        char *packed = state_alloc(r, p, size), *at = packed;
        if (!packed)
                return NULL;
        for (size_t i = 0; i < REPORT_FIELDS; i++) {
                if (symbol[i] >= 0) {
                        *at++ = PACKED_ENUM;
                        *at++ = (char)(unsigned char)symbol[i];
                } else if (text[i]) {
                        *at++ = PACKED_TEXT;
                        memcpy(at, text[i], len[i]);
                        at += len[i];
                        *at++ = '\0';
                } else {
                        *at++ = PACKED_NULL;
                }
        }
        *at++ = avk_slotfield_long(&r->reported_f[RP_LEX_MARIA], slots) ? '1' : '0';
        int64_t occurred_at = avk_slotfield_long(&r->reported_f[RP_OCCURRED_AT], slots);
        memcpy(at, &occurred_at, sizeof(occurred_at));
        return packed;
}

/* The report packed by pack_report; its strings are packed's and the
 * reader schema's. */
static void unpack_report(const avk_router_t *r, const char *packed, struct report *rp)
{
        memset(rp, 0, sizeof(*rp));
        for (size_t i = 0; i < REPORT_FIELDS; i++) {
                char kind = *packed++;
                const char **field = report_field(&rp->in, i);
                if (kind == PACKED_ENUM) {
                        *field =
                            avro_schema_enum_get(r->reported_f[i].type, (unsigned char)*packed++);
                } else if (kind == PACKED_TEXT) {
                        *field = packed;
                        packed += strlen(packed) + 1;
                }
        }
        rp->lex_maria = *packed == '1';
        memcpy(&rp->in.occurred_at_ms, packed + 1, sizeof(rp->in.occurred_at_ms));
}

/* The digest of m's Avro body, whichever framing carries it: what tells a
 * deviation filed again byte for byte from one filed with another body. */
static uint64_t body_digest(const avk_router_t *r, const rd_kafka_message_t *m)
{
        size_t len = 0;
        const void *body = avk_codec_body(m->payload, m->len, &len);
        return avk_hash_bytes(body, len, r->seed);
}

/* Keeps what routing reads of the report in slots (record m) for d - the
 * first one seen stays, with its offset and digest. */
static int set_report(avk_router_t *r, struct deviation *d, const rd_kafka_message_t *m,
                      const avk_avroprog_slot_t *slots)
{
        if (d->report)
                return 0;
        d->report = pack_report(r, d->partition, slots);
        if (!d->report)
                return -1;
        d->report_offset = m->offset;
        d->report_digest = body_digest(r, m);
        return 0;
}

struct reason_key {
        const char *bytes;
        size_t len;
};

static int same_reason(const struct avk_hnode *node, const void *key)
{
        const struct reason *a = avk_container_of(node, struct reason, node);
        const struct reason_key *b = key;
        return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* The reason of len encoded bytes, kept once. NULL when out of memory. */
static const struct reason *intern_reason(avk_router_t *r, const char *bytes, size_t len)
{
        uint64_t hash = avk_hash_bytes(bytes, len, r->seed);
        struct reason_key key = {bytes, len};
        struct avk_hnode *known = avk_htab_find(&r->reasons, hash, same_reason, &key);
        if (known)
                return avk_container_of(known, struct reason, node);
        struct reason *fresh = avk_arena_alloc(r->reason_arena, sizeof(*fresh) + len);
        if (!fresh)
                return NULL;
        fresh->len = len;
        memcpy(fresh->bytes, bytes, len);
        avk_htab_insert(&r->reasons, &fresh->node, hash);
        return fresh;
}

/* Where text (a string field's value) is encoded in buf[from..len):
 * preceded by its length's varint, the first place (last 0) or the last
 * (last 1) it stands. @returns the offset of the varint, its encoding's
 * size in *size, or -1 when absent. */
static int64_t encoded_at(const char *buf, size_t from, size_t len, const char *text,
                          size_t text_len, int last, size_t *size)
{
        unsigned char varint[10];
        size_t n = 0;
        for (uint64_t z = (uint64_t)text_len << 1; n == 0 || z; z >>= 7)
                varint[n++] = (unsigned char)((z & 0x7f) | (z > 0x7f ? 0x80 : 0));
        if (len < from + n + text_len)
                return -1;
        size_t lo = from + n, hi = len - text_len;
        for (size_t i = 0; i <= hi - lo; i++) {
                size_t at = last ? hi - i : lo + i;
                if (memcmp(buf + at, text, text_len) == 0 && memcmp(buf + at - n, varint, n) == 0) {
                        *size = n + text_len;
                        return (int64_t)(at - n);
                }
        }
        return -1;
}

/* Records hop h of d: routed as written, but for its reason (kept once)
 * and the two ids' text (the hop's event_id and the deviation's id hold
 * them); an already known hop is kept. A re-routing outgrows the hops in
 * the arena: the copy is there until the partition goes, a few hundred
 * bytes per re-routing. */
static struct hop *set_hop(avk_router_t *r, struct deviation *d, int h, const char *event_id,
                           const char *party, const char *cause, const char *routed, size_t len,
                           const char *reason, size_t reason_len, int manual)
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
        /* The cause is kept only when it is not the deviation's id. */
        char *cause_copy = NULL;
        cause = cause ? cause : "";
        if (strcmp(cause, d->id) != 0) {
                size_t n = strlen(cause) + 1;
                if (!(cause_copy = state_alloc(r, d->partition, n)))
                        return NULL;
                memcpy(cause_copy, cause, n);
        }
        copy_text(hop->event_id, sizeof(hop->event_id), event_id);
        /* The cuts in the record: the reason where its text last stands (its
         * field is near the end), and before it the ids' text, first found in
         * their fields' order. Bytes are cut only where they are the text. */
        struct {
                size_t at, len;
        } cut[CUTS];
        size_t size = 0;
        int64_t at = encoded_at(routed, 0, len, reason, reason_len, 1, &size);
        cut[CUT_REASON].at = at < 0 ? len : (size_t)at;
        cut[CUT_REASON].len = at < 0 ? 0 : size;
        const char *ids[] = {[CUT_EVENT_ID] = hop->event_id, [CUT_DEVIATION_ID] = d->id};
        size_t from = 0;
        for (int i = CUT_EVENT_ID; i <= CUT_DEVIATION_ID; i++) {
                size_t n = strlen(ids[i]);
                at = encoded_at(routed, from, cut[CUT_REASON].at, ids[i], n, 0, &size);
                cut[i].at = at < 0 ? from : (size_t)at + size - n;
                cut[i].len = at < 0 ? 0 : n;
                from = cut[i].at + cut[i].len;
        }
        size_t kept = len;
        for (int i = 0; i < CUTS; i++)
                kept -= cut[i].len;
        hop->reason = cut[CUT_REASON].len
                          ? intern_reason(r, routed + cut[CUT_REASON].at, cut[CUT_REASON].len)
                          : NULL;
        hop->routed = state_alloc(r, d->partition, kept);
        if ((cut[CUT_REASON].len && !hop->reason) || !hop->routed)
                return NULL;
        size_t taken = 0;
        hop->len = 0;
        for (int i = 0; i < CUTS; i++) {
                memcpy(hop->routed + hop->len, routed + taken, cut[i].at - taken);
                hop->len += (uint32_t)(cut[i].at - taken);
                hop->cut_at[i] = hop->len;
                taken = cut[i].at + cut[i].len;
        }
        memcpy(hop->routed + hop->len, routed + taken, len - taken);
        hop->len += (uint32_t)(len - taken);
        hop->event_cut = (uint8_t)cut[CUT_EVENT_ID].len;
        hop->id_cut = (uint8_t)cut[CUT_DEVIATION_ID].len;
        hop->manual = (uint8_t)manual;
        copy_text(hop->receiver_party, sizeof(hop->receiver_party), party);
        hop->cause = cause_copy;
        return hop;
}

static const char *hop_cause(const struct deviation *d, const struct hop *hop)
{
        return hop->cause ? hop->cause : d->id;
}

static void event_id_of(const char *deviation_id, int hop, char out[ID_SIZE])
{
        char name[ID_SIZE + 12];
        size_t n = strnlen(deviation_id, ID_SIZE - 1);
        memcpy(name, deviation_id, n);
        name[n++] = '/';
        n += avk_decimal(name + n, (unsigned)hop);
        avk_ident_uuid5(event_namespace, name, n, out);
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

/* ---- routing ---- */

/* Writes hop h of d: the DeviationRouted to topic.routed, in the
 * deviation's partition. Delivering it - to the receiver's webhook and
 * inbox topic - is avvik notify's (docs/notify.md). */
static int emit_hop(avk_router_t *r, avk_outbox_input_t *t, uint64_t seq, const struct deviation *d,
                    int h)
{
        const struct hop *hop = &d->hops[h];
        char hop_number[AVK_DECIMAL_SIZE];
        avk_decimal(hop_number, (unsigned)h);
        const char *names[] = {AVK_HDR_ID, AVK_HDR_TYPE, AVK_HDR_HOP, AVK_HDR_CAUSE};
        const char *values[] = {hop->event_id, "DeviationRouted", hop_number, hop_cause(d, hop)};
        /* The kept bytes and, between them, the cuts' text. */
        const struct avk_outbox_part cut_text[CUTS] = {
            [CUT_EVENT_ID] = {hop->event_id, hop->event_cut},
            [CUT_DEVIATION_ID] = {d->id, hop->id_cut},
            [CUT_REASON] = {hop->reason ? hop->reason->bytes : "",
                            hop->reason ? hop->reason->len : 0}};
        struct avk_outbox_part parts[2 * CUTS + 1];
        size_t from = 0;
        for (int i = 0; i < CUTS; i++) {
                parts[2 * i] = (struct avk_outbox_part){hop->routed + from, hop->cut_at[i] - from};
                parts[2 * i + 1] = cut_text[i];
                from = hop->cut_at[i];
        }
        parts[2 * CUTS] = (struct avk_outbox_part){hop->routed + from, hop->len - from};
        struct avk_outbox_msg msg = {.topic = r->routed_topic,
                                     .partition = d->partition,
                                     .key = d->id,
                                     .key_len = strlen(d->id),
                                     .value_parts = parts,
                                     .value_part_cnt = (int)(sizeof(parts) / sizeof(parts[0])),
                                     .hdr_names = names,
                                     .hdr_values = values,
                                     .hdr_cnt = 4};
        if (avk_outbox_emit(r->outbox, t, seq, &msg) != 0)
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

/* Encodes routed_slots into routed_buf. Its strings are the decoded
 * input's, the directory's and the rules' (loaded by jansson), and the
 * reason put together from them (cut at a character, rules.c): checked
 * text, not checked again. @returns the body's size, or -1 with the reason
 * in errstr. */
static int64_t encode_routed(avk_router_t *r, char *errstr, size_t errstr_size)
{
        return avk_avroprog_encode_checked_text_into(
            r->routed_prog, r->routed_slots, &r->routed_buf, &r->routed_cap, errstr, errstr_size);
}

/* Builds the DeviationRouted of decision for report rp and records it as
 * hop decision->hop of d. */
static struct hop *record_hop(avk_router_t *r, struct deviation *d, const struct report *rp,
                              const struct avk_rules_decision *dec, const char *cause, char *errstr,
                              size_t errstr_size)
{
        const avk_slotfield_t *f = r->routed_f;
        avk_avroprog_slot_t *s = r->routed_slots;
        char event_id[ID_SIZE];
        event_id_of(d->id, dec->hop, event_id);
        int rc = avk_slotfield_set_text(&f[RT_EVENT_ID], s, event_id) |
                 avk_slotfield_set_text(&f[RT_DEVIATION_ID], s, d->id) |
                 avk_slotfield_set_text(&f[RT_REPORTER_PARTY], s, rp->in.reporter_party) |
                 avk_slotfield_set_text(&f[RT_RECEIVER_PARTY], s, dec->receiver_party) |
                 avk_slotfield_set_text(&f[RT_RECEIVER_UNIT], s,
                                        dec->receiver_unit_hsa_id[0] ? dec->receiver_unit_hsa_id
                                                                     : NULL) |
                 avk_slotfield_set_text(&f[RT_RULE_ID], s, dec->rule_id) |
                 avk_slotfield_set_text(&f[RT_REASON], s, dec->reason) |
                 avk_slotfield_set_text(&f[RT_CATEGORY], s, rp->in.category) |
                 avk_slotfield_set_text(&f[RT_HARM_LEVEL], s, rp->in.harm_level);
        /* The rules' kinds and bases are the indexes of their enums' symbols (rules.h). */
        avk_slotfield_set_long(&f[RT_DECISION], s, dec->kind);
        avk_slotfield_set_long(&f[RT_BASIS], s, dec->basis);
        avk_slotfield_set_long(&f[RT_ROUTED_AT], s, avk_clock_system_ms());
        avk_slotfield_set_long(&f[RT_HOP], s, dec->hop);
        avk_slotfield_set_long(&f[RT_LEX_MARIA], s, rp->lex_maria);
        avk_slotfield_set_long(&f[RT_NAMED_NOT_USED], s, dec->named_not_used);
        avk_slotfield_set_long(&f[RT_LOCATION_CONTRADICTS], s, dec->location_contradicts);
        int64_t body = rc ? -1 : encode_routed(r, errstr, errstr_size);
        if (rc)
                snprintf(errstr, errstr_size, "cannot build the DeviationRouted");
        if (body < 0)
                return NULL;
        const void *out;
        size_t len;
        int framed = avk_codec_frame(r->codec, r->routed_topic, r->routed_schema, 0, r->routed_buf,
                                     (size_t)body, &out, &len, errstr, errstr_size);
        if (framed == AVK_CODEC_UNAVAILABLE)
                unavailable(r, errstr);
        if (framed != 0)
                return NULL;
        struct hop *hop = set_hop(r, d, dec->hop, event_id, dec->receiver_party, cause, out, len,
                                  dec->reason, strlen(dec->reason), dec->kind == AVK_RULES_MANUAL);
        if (!hop) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        avk_metric_add(
            avk_metrics_series(r->m_routed,
                               (const char *[]){r->decision_symbol[dec->kind], dec->rule_id}),
            1);
        return hop;
}

/* Decodes a DeviationReported, its deviation id into id, and checks what
 * routing relies on: the key is the deviation id (so its responses share its
 * partition), and the patient's municipality is one of the county's.
 * @returns its slots (the codec's), or NULL with the reason in errstr. */
static const avk_avroprog_slot_t *decode_reported(avk_router_t *r, const rd_kafka_message_t *m,
                                                  char id[ID_SIZE], char *errstr,
                                                  size_t errstr_size)
{
        char reason[256], muni[16];
        const avk_avroprog_slot_t *slots;
        int rc = avk_codec_decode_slots(r->codec, m->payload, m->len, r->reported_schema, &slots,
                                        reason, sizeof(reason));
        if (rc != 0) {
                snprintf(errstr, errstr_size, "undecodable DeviationReported: %s", reason);
                if (rc == AVK_CODEC_UNAVAILABLE)
                        unavailable(r, errstr);
                return NULL;
        }
        if (!avk_slotfield_copy(&r->reported_f[RP_DEVIATION_ID], slots, id, ID_SIZE) ||
            !avk_ident_is_uuid(id, strlen(id))) {
                snprintf(errstr, errstr_size, "deviation_id is not a UUID");
                return NULL;
        }
        if (m->key_len != strlen(id) || memcmp(m->key, id, m->key_len) != 0) {
                snprintf(errstr, errstr_size, "the key is not the deviation_id");
                return NULL;
        }
        if (!avk_slotfield_copy(&r->reported_f[RP_MUNICIPALITY], slots, muni, sizeof(muni)) ||
            avk_ident_municipality_code(muni, reason, sizeof(reason)) != 0) {
                snprintf(errstr, errstr_size,
                         "municipality_code is not one of the county's 49 municipalities");
                return NULL;
        }
        return slots;
}

/* DeviationReported m names deviation d, filed before by another record:
 * the first stays (docs/router.md, "One body per deviation"). The same body
 * again (a client's retry, a spool drained twice) has been routed already;
 * another body is dead-lettered, so that no receiver ever reads two bodies
 * under one routed event. */
static int filed_again(avk_router_t *r, avk_outbox_input_t *t, uint64_t seq,
                       const rd_kafka_message_t *m, const struct deviation *d)
{
        if (body_digest(r, m) == d->report_digest) {
                atomic_fetch_add(&r->duplicates, 1);
                avk_metric_add(avk_metrics_series(r->m_filed_again, (const char *[]){"identical"}),
                               1);
                return 0;
        }
        avk_metric_add(avk_metrics_series(r->m_filed_again, (const char *[]){"conflicting"}), 1);
        char err[256];
        snprintf(err, sizeof(err),
                 "deviation_id already filed with another body (offset %lld of this "
                 "partition); the first stays: file a correction under a new deviation_id",
                 (long long)d->report_offset);
        return deadletter(r, t, seq, m, err);
}

static int on_reported(avk_router_t *r, avk_outbox_input_t *t, uint64_t seq,
                       const rd_kafka_message_t *m)
{
        char err[512], id[ID_SIZE];
        const avk_avroprog_slot_t *slots = decode_reported(r, m, id, err, sizeof(err));
        if (!slots)
                return r->unavailable ? AVK_SERVICE_WAIT : deadletter(r, t, seq, m, err);
        struct deviation *d = state_get(r, id, m->partition);
        if (!d)
                return -1;
        if (d->report && d->report_offset != m->offset)
                return filed_again(r, t, seq, m, d);
        if (set_report(r, d, m, slots) != 0)
                return -1;
        if (d->hop_cnt > 0 && d->hops[0].routed) {
                /* Routed before (a replay): the same outputs again. */
                atomic_fetch_add(&r->replayed, 1);
                avk_metric_add(r->m_replayed, 1);
                return emit_hop(r, t, seq, d, 0);
        }
        struct report rp;
        struct avk_rules_decision dec;
        unpack_report(r, d->report, &rp);
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
        const avk_avroprog_slot_t *v;
        int rc = avk_codec_decode_slots(r->codec, m->payload, m->len, r->response_schema, &v,
                                        reason, sizeof(reason));
        if (rc != 0) {
                snprintf(err, sizeof(err), "undecodable DeviationResponse: %s", reason);
                if (rc != AVK_CODEC_UNAVAILABLE)
                        return deadletter(r, t, seq, m, err);
                unavailable(r, err);
                return AVK_SERVICE_WAIT;
        }
        const avk_slotfield_t *f = r->response_f;
        size_t kind_len;
        const char *kind = avk_slotfield_text(&f[RS_KIND], v, &kind_len); /* a symbol: NUL-ended */
        if (!kind || strcmp(kind, WRONG_RECEIVER) != 0) {
                skip(r, kind ? kind : "UNKNOWN");
                return 0; /* the tracker's business, not the router's */
        }
        char id_text[256], response_text[256], party_text[256], suggested_text[256];
        const char *id = avk_slotfield_copy(&f[RS_DEVIATION_ID], v, id_text, sizeof(id_text));
        const char *response_id =
            avk_slotfield_copy(&f[RS_RESPONSE_ID], v, response_text, sizeof(response_text));
        const char *party = avk_slotfield_copy(&f[RS_PARTY], v, party_text, sizeof(party_text));
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
                if (d->hops[h].routed && strcmp(hop_cause(d, &d->hops[h]), response_id) == 0) {
                        atomic_fetch_add(&r->replayed, 1);
                        avk_metric_add(r->m_replayed, 1);
                        return emit_hop(r, t, seq, d, h);
                }
        }
        int current = d->hop_cnt - 1;
        size_t responder_len;
        const char *responder = avk_slotfield_text(&f[RS_RESPONDER], v, &responder_len);
        int from_desk = responder && strcmp(responder, AVK_DIRECTORY_DESK_RESPONDER) == 0;
        if (strcmp(d->hops[current].receiver_party, party) != 0 ||
            (from_desk && !d->hops[current].manual)) {
                /* From an earlier receiver, a party that never received it, or the desk after
                 * it routed the deviation on (to its record_party too, whose name it gives). */
                skip(r, "STALE_" WRONG_RECEIVER);
                return 0;
        }
        /* The desk triages for the county: its "wrong receiver" routes the deviation on to
         * the receiver it names, or leaves it at the desk; never a hop back to the desk. A
         * response written before DeviationResponse v3 reads as responder PARTY: at the desk's
         * hop it is still the desk's, which alone answers there (docs/gateway.md). */
        const char *suggested =
            avk_slotfield_copy(&f[RS_SUGGESTED], v, suggested_text, sizeof(suggested_text));
        int by_desk = d->hops[current].manual && avk_rules_hosts_desk(r->dir, party);
        if (by_desk && !suggested) {
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
                                          .suggested_party = suggested,
                                          .earlier_rejecting = earlier,
                                          .earlier_rejecting_cnt = earlier_cnt,
                                          .by_desk = by_desk};
        struct report rp;
        struct avk_rules_decision dec;
        unpack_report(r, d->report, &rp);
        avk_rules_reroute(r->rules, r->dir, &rp.in, &rej, &dec);
        if (by_desk && dec.kind == AVK_RULES_MANUAL) {
                skip(r, "DESK_" WRONG_RECEIVER); /* nobody the desk named can take it */
                return 0;
        }
        if (!record_hop(r, d, &rp, &dec, response_id, err, sizeof(err)))
                return r->unavailable ? AVK_SERVICE_WAIT : deadletter(r, t, seq, m, err);
        avk_log(AVK_LOG_INFO, COMPONENT, "deviation %s: hop %d %s to %s (%s)", d->id, dec.hop,
                r->decision_symbol[dec.kind], dec.receiver_party, dec.rule_id);
        return emit_hop(r, t, seq, d, dec.hop);
}

/* ---- state rebuild ---- */

static void rebuild_apply(avk_router_t *r, const rd_kafka_message_t *m, int routed)
{
        char err[512], id_text[256];
        const avk_avroprog_slot_t *v;
        if (!routed) {
                v = decode_reported(r, m, id_text, err, sizeof(err));
                struct deviation *d = v ? state_get(r, id_text, m->partition) : NULL;
                if (d)
                        set_report(r, d, m, v);
                return;
        }
        int rc = avk_codec_decode_slots(r->codec, m->payload, m->len, r->routed_schema, &v, err,
                                        sizeof(err));
        if (rc == AVK_CODEC_UNAVAILABLE)
                unavailable(r, err);
        if (rc != 0)
                return;
        const avk_slotfield_t *f = r->routed_f;
        char party_text[256], event_text[256];
        const char *id = avk_slotfield_copy(&f[RT_DEVIATION_ID], v, id_text, sizeof(id_text));
        const char *party =
            avk_slotfield_copy(&f[RT_RECEIVER_PARTY], v, party_text, sizeof(party_text));
        const char *event_id =
            avk_slotfield_copy(&f[RT_EVENT_ID], v, event_text, sizeof(event_text));
        size_t reason_len = 0;
        const char *reason = avk_slotfield_text(&f[RT_REASON], v, &reason_len);
        int32_t hop = (int32_t)avk_slotfield_long(&f[RT_HOP], v);
        if (!id || !party || !event_id || !reason)
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
                set_hop(r, d, hop, event_id, party, cause, m->payload, m->len, reason, reason_len,
                        avk_slotfield_long(&f[RT_DECISION], v) == AVK_RULES_MANUAL);
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
                "skipped %llu, filed again %llu, outputs in flight %llu, deviations held %zu",
                (unsigned long long)done, (unsigned long long)atomic_load(&r->routed),
                (unsigned long long)atomic_load(&r->rerouted),
                (unsigned long long)atomic_load(&r->replayed),
                (unsigned long long)atomic_load(&r->deadlettered),
                (unsigned long long)atomic_load(&r->skipped),
                (unsigned long long)atomic_load(&r->duplicates),
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
            .duplicates = atomic_load(&r->duplicates),
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

/* Finds the fields paths[0..cnt) of schema's program into out. */
static int find_fields(avk_router_t *r, const avk_schema_t *schema, const char *const *paths,
                       size_t cnt, avk_slotfield_t *out, char *errstr, size_t errstr_size)
{
        const avk_avroprog_t *prog = avk_codec_program(r->codec, schema);
        if (!prog) {
                snprintf(errstr, errstr_size, "%s: not compiled", avk_schema_fullname(schema));
                return -1;
        }
        for (size_t i = 0; i < cnt; i++) {
                if (avk_slotfield_find(&out[i], prog, schema, paths[i], errstr, errstr_size) != 0)
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
        r->m_filed_again = avk_metrics_counter(
            r->metrics, "avk_router_filed_again_total",
            "DeviationReported records under a deviation id filed before: the same body "
            "(skipped) or another (dead-lettered).",
            (const char *[]){"body", NULL});
        r->m_replayed = avk_metrics_series(
            avk_metrics_counter(r->metrics, "avk_router_replayed_total",
                                "Inputs seen again whose outputs were rewritten from state.", NULL),
            NULL);
        return r->m_routed && r->m_deadletter && r->m_skipped && r->m_filed_again && r->m_replayed
                   ? 0
                   : -1;
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
        r->reason_arena = avk_arena_new();
        if (!r->reason_arena || avk_htab_init(&r->reasons, 64) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
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
        if (!r->codec || make_metrics(r) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (find_fields(r, r->reported_schema, reported_paths, RP_FIELDS, r->reported_f, errstr,
                        errstr_size) != 0 ||
            find_fields(r, r->response_schema, response_paths, RS_FIELDS, r->response_f, errstr,
                        errstr_size) != 0 ||
            find_fields(r, r->routed_schema, routed_paths, RT_FIELDS, r->routed_f, errstr,
                        errstr_size) != 0)
                goto fail;
        r->routed_prog = avk_codec_program(r->codec, r->routed_schema);
        if (avk_avroprog_slot_count(r->routed_prog) != RT_FIELDS) {
                snprintf(errstr, errstr_size,
                         "DeviationRouted has fields the router does not fill");
                goto fail;
        }
        for (int kind = 0; kind <= AVK_RULES_MANUAL; kind++)
                r->decision_symbol[kind] = avk_rules_decision_symbol(kind);
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
            .round_max = ROUND_MAX,
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
        avk_htab_destroy(&r->reasons);
        avk_arena_destroy(r->reason_arena);
        free(r->routed_buf);
        avk_codec_destroy(r->codec);
        avk_metrics_destroy(r->metrics);
        avk_rules_destroy(r->rules);
        avk_directory_destroy(r->dir);
        avk_env_close(&r->env);
        free(r);
}
