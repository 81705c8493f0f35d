/*
 * avk_track: see track.h and docs/tracker.md.
 *
 * Layout, chosen for a million open deviations in a few hundred MB:
 *  - devs: an array of fixed-size records (struct dev, 96 bytes), reused
 *    through a free list; a deviation is known inside by its slot number.
 *  - index: open addressing (linear probing, backward-shift deletion) of
 *    slot+1 by the 16-byte deviation id, kept at most half full.
 *  - timers: one per slot, at the earliest instant something is due for the
 *    deviation (a reminder, a deadline, the end of the dispute window).
 *  - parties and units are interned: a record holds 2- and 4-byte indexes.
 *  - closed: the ids of closed deviations, so that a late input for one is
 *    recognised instead of opening it again.
 *  - kept: the rare responses (and delivery failures) that arrive before
 *    their routing, by deviation id and in arrival order for expiry.
 */
#include "consumer/track/track.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <uuid/uuid.h>

#include "common/contract/ident.h"
#include "common/contract/schema_enum.h"
#include "common/util/hash.h"
#include "consumer/track/timers.h"

/* Namespaces of the output ids (UUIDv5, RFC 4122 section 4.3). Fixed
 * forever: changing one would make every replayed output look new.
 *   state_id       "<deviation_id>/<version>"
 *   escalation_id  "<deviation_id>/<hop>/<step>", and for the reporting
 *                  party's side of a disagreement "<deviation_id>/<hop>/<step>/<party>"
 *   reminder_id    "<deviation_id>/<hop>/<kind>/<deadline_at ms>" */
static const char state_namespace[] = "3b8f6c1d-52a7-5e09-8c4b-71d2e9f0a6c3";
static const char escalation_namespace[] = "c4e2a719-0d6b-5f3e-a1c8-9b57d3e2f014";
static const char reminder_namespace[] = "5e91d0a4-7c3f-5b26-8e1d-a4c6b2f9073e";

#define ID_SIZE     37
#define KEPT_MAX    10000
#define KEPT_MAX_MS (10 * 60 * 1000)
#define MAX_PARTIES 1024

/* The schema enums that track.h's enums mirror symbol for symbol, in order;
 * their trailing UNKNOWN (a reader's default) has no C counterpart. */
#define ENUM_STATE    "DeviationLifecycle"
#define ENUM_STEP     "EscalationStep" /* from step 1: 0 is "not escalated" */
#define ENUM_REASON   "EscalationReason"
#define ENUM_KIND     "ResponseKind"
#define ENUM_DEADLINE "DeadlineKind"
#define KIND_CNT      (AVK_TRACK_CONFIRM + 1)
#define DEADLINE_CNT  (AVK_TRACK_DEADLINE_ANSWER + 1)

static const char *const result_names[] = {
    "applied",      "kept",      "duplicate",    "stale",          "not_receiver",
    "not_reporter", "not_party", "not_expected", "closed_already", "no_routing",
    "bad_input",    "full",      "failed"};

/* What the deviation waits for. Closed deviations are not in the table. */
enum phase { AWAIT_ANSWER, ANSWERED_PHASE, REJECTED_PHASE };

enum flag {
        F_LEX = 1 << 0,
        F_REMINDED_ACK = 1 << 1,       /* the acknowledge deadline's reminder is written */
        F_REMINDED_ANSWER = 1 << 2,    /* the answer deadline's in force */
        F_ACK_DONE = 1 << 3,           /* the acknowledge deadline has been handled */
        F_ANSWER_DONE = 1 << 4,        /* the answer deadline in force has been handled (top) */
        F_LATE_ACK = 1 << 5,           /* acknowledge deadline passed unacknowledged */
        F_LATE_ANSWER = 1 << 6,        /* an answer deadline passed unanswered */
        F_DEFERRED = 1 << 7,           /* a timer fell due while outputs were in flight */
        F_ESCALATION_SEEN = 1 << 8,    /* rebuild: the current step's escalation was read back */
        F_USED = 1 << 9,               /* the slot holds a deviation */
        F_COUNTERPART_SEEN = 1 << 10,  /* rebuild: the reporter's side of the step was read back */
        F_REGION_DECLINED = 1 << 11,   /* VGR answered "wrong receiver" at some hop */
        F_RESPONSIBILITY = 1 << 12,    /* the hop's disagreement is about responsibility (both sides
                                          answered "wrong receiver"), not a disputed answer */
        F_DESK_HOP = 1 << 13,          /* routed MANUAL: the county's triage desk holds the hop */
        F_FORUM_REGION_SEEN = 1 << 14, /* rebuild: the region's side of that forum step was read */
        F_FORUM_MUNICIPALITY_SEEN = 1 << 15, /* rebuild: the municipality's side was read */
};

/* The region's party code; every other party is a municipality (avk_ident_party). */
#define REGION "VGR"

struct dev {
        uint8_t id[16];
        int64_t routed_at;
        int64_t ack_deadline;
        int64_t answer_deadline;
        int64_t acked_at;       /* AVK_TRACK_NONE when not */
        int64_t answered_at;    /* the last answer, AVK_TRACK_NONE when none */
        int64_t awaiting_since; /* an answer counts from here (routing or dispute) */
        const struct avk_deadline_terms *terms;
        uint32_t unit; /* interned; 0 = the party's coordinator */
        int32_t version;
        uint16_t hop;
        uint16_t reporter, receiver; /* interned parties */
        int16_t partition;
        uint16_t inflight; /* actions handed out and not yet acked */
        uint16_t flags;
        uint8_t phase, state, step, category, harm;
        uint8_t pending;                /* a manual step waiting for confirmation, 0 for none */
        uint16_t declined_municipality; /* interned: the last municipality that answered "wrong
                                           receiver" at a hop, 0 for none */
};

/* Interned strings: index 0 is the empty string ("none"). */
struct pool {
        char **str;
        uint32_t cnt, cap, max;
        avk_slotidx_t index;
        size_t bytes;
};

struct kept {
        uint8_t id[16];
        int is_failure;
        enum avk_track_response_kind kind;
        char input_id[ID_SIZE];
        int64_t at;      /* responded_at or failed_at */
        int64_t kept_at; /* processing time */
        char party[16];
        int hop;
        int partition;
        uint64_t ticket;
        struct avk_hnode node;     /* by deviation id */
        TAILQ_ENTRY(kept) arrival; /* arrival order */
};

struct avk_track {
        struct avk_track_options opt;
        const struct avk_schema_enum *category, *harm; /* the compiled-in Category, HarmLevel */
        int category_other, harm_unknown;              /* their OTHER and UNKNOWN */
        struct dev *devs;
        uint32_t dev_cap, dev_used, dev_high,
            free_head;       /* free list threads through devs[].version */
        avk_slotidx_t index; /* of devs */
        avk_timers_t *timers;
        struct pool parties, units;
        long *open_by_party, *overdue_by_party; /* by party index */
        uint8_t (*closed)[16];                  /* closed ids, indexed by closed_index */
        size_t closed_cap;
        avk_slotidx_t closed_index;
        avk_htab_t kept_by_id;
        TAILQ_HEAD(kept_list, kept) kept; /* oldest first */
        int64_t last_now;
        uint32_t desk_unit; /* the triage desk's HSA-id, interned in units; 0 for none */
};

/* ---- small helpers ---- */

/* Ids and names come from Kafka records the router wrote, not from clients:
 * a fixed seed serves. */
static uint64_t hash_id(const uint8_t id[16])
{
        return avk_hash_bytes(id, 16, 0);
}

static uint64_t hash_str(const char *s)
{
        return avk_hash_bytes(s, strlen(s), 0);
}

static int parse_id(const char *text, uint8_t id[16])
{
        static const uint8_t nil[16];
        if (!text || uuid_parse(text, id) != 0 || memcmp(id, nil, 16) == 0)
                return -1;
        return 0;
}

static void id_text(const uint8_t id[16], char out[ID_SIZE])
{
        uuid_unparse_lower(id, out);
}

static int64_t min64(int64_t a, int64_t b)
{
        return a < b ? a : b;
}

/* Symbol i of the compiled-in enum enum_name, when i is one of the first cnt; else NULL. */
static const char *enum_symbol(const char *enum_name, int i, int cnt)
{
        const struct avk_schema_enum *e = avk_schema_enum(enum_name);

        return e && i >= 0 && i < cnt && (size_t)i < e->cnt ? e->symbols[i] : NULL;
}

/* The index of symbol in the compiled-in enum enum_name when below cnt, else -1. */
static int enum_parse(const char *enum_name, const char *symbol, int cnt)
{
        const struct avk_schema_enum *e = avk_schema_enum(enum_name);
        int i = e ? avk_schema_enum_index(e, symbol) : -1;

        return i < cnt ? i : -1;
}

/* The index of symbol in e, or of fallback when symbol is not one of e's. */
static uint8_t symbol_or(const struct avk_schema_enum *e, const char *symbol, int fallback)
{
        int i = avk_schema_enum_index(e, symbol);

        return (uint8_t)(i < 0 ? fallback : i);
}

const char *avk_track_state_name(enum avk_track_state s)
{
        const char *name = enum_symbol(ENUM_STATE, (int)s, AVK_TRACK_STATE_CNT);

        return name ? name : "UNKNOWN";
}

const char *avk_track_step_name(int step)
{
        return enum_symbol(ENUM_STEP, step - 1, AVK_TRACK_STEP_COUNTY_FORUM);
}

const char *avk_track_reason_name(enum avk_track_reason r)
{
        const char *name = enum_symbol(ENUM_REASON, (int)r, AVK_TRACK_REASON_CNT);

        return name ? name : "UNKNOWN";
}

const char *avk_track_result_name(enum avk_track_result r)
{
        return (int)r >= 0 && r < AVK_TRACK_RESULT_CNT ? result_names[r] : "unknown";
}

const char *avk_track_deadline_name(enum avk_track_deadline_kind k)
{
        return enum_symbol(ENUM_DEADLINE,
                           k == AVK_TRACK_DEADLINE_ANSWER ? AVK_TRACK_DEADLINE_ANSWER
                                                          : AVK_TRACK_DEADLINE_ACKNOWLEDGE,
                           DEADLINE_CNT);
}

int avk_track_state_parse(const char *name)
{
        return enum_parse(ENUM_STATE, name, AVK_TRACK_STATE_CNT);
}

int avk_track_step_parse(const char *name)
{
        int i = enum_parse(ENUM_STEP, name, AVK_TRACK_STEP_COUNTY_FORUM);

        return i < 0 ? -1 : i + 1;
}

int avk_track_reason_parse(const char *name)
{
        return enum_parse(ENUM_REASON, name, AVK_TRACK_REASON_CNT);
}

int avk_track_response_kind_parse(const char *name)
{
        return enum_parse(ENUM_KIND, name, KIND_CNT);
}

int avk_track_deadline_parse(const char *name)
{
        return enum_parse(ENUM_DEADLINE, name, DEADLINE_CNT);
}

/* ---- interning ---- */

static int pool_init(struct pool *p, uint32_t max)
{
        p->max = max;
        p->cap = 16;
        p->str = calloc(p->cap, sizeof(*p->str));
        if (!p->str || avk_slotidx_init(&p->index, 32) != 0)
                return -1;
        p->str[0] = strdup("");
        p->cnt = 1;
        return p->str[0] ? 0 : -1;
}

static void pool_free(struct pool *p)
{
        for (uint32_t i = 0; i < p->cnt; i++)
                free(p->str[i]);
        free(p->str);
        avk_slotidx_destroy(&p->index);
}

/* The index of s; 0 for NULL or "". Adds it when add is set; UINT32_MAX when
 * absent (or full, or out of memory). */
static uint64_t pool_hash(uint32_t i, const void *p)
{
        return hash_str(((const struct pool *)p)->str[i]);
}

static int pool_eq(uint32_t i, const void *s, const void *p)
{
        return strcmp(((const struct pool *)p)->str[i], s) == 0;
}

static uint32_t pool_get(struct pool *p, const char *s, int add)
{
        if (!s || !*s)
                return 0;
        uint64_t hash = hash_str(s);
        uint32_t i = avk_slotidx_find(&p->index, hash, pool_eq, s, p);
        if (i != AVK_SLOTIDX_NONE)
                return i;
        if (!add || p->cnt >= p->max)
                return UINT32_MAX;
        if (p->cnt == p->cap) {
                char **str = realloc(p->str, (size_t)p->cap * 2 * sizeof(*str));
                if (!str)
                        return UINT32_MAX;
                p->str = str;
                p->cap *= 2;
        }
        char *copy = strdup(s);
        if (!copy)
                return UINT32_MAX;
        p->str[p->cnt] = copy;
        if (avk_slotidx_insert(&p->index, hash, p->cnt, pool_hash, p) != 0) {
                free(copy);
                return UINT32_MAX;
        }
        p->bytes += strlen(s) + 1;
        return p->cnt++;
}

static const char *pool_str(const struct pool *p, uint32_t i)
{
        return i < p->cnt ? p->str[i] : "";
}

/* ---- the open-deviation table ---- */

static uint64_t dev_hash(uint32_t slot, const void *t)
{
        return hash_id(((const avk_track_t *)t)->devs[slot].id);
}

static int dev_eq(uint32_t slot, const void *id, const void *t)
{
        return memcmp(((const avk_track_t *)t)->devs[slot].id, id, 16) == 0;
}

static struct dev *find(const avk_track_t *t, const uint8_t id[16], uint32_t *slot)
{
        uint32_t s = avk_slotidx_find(&t->index, hash_id(id), dev_eq, id, t);
        if (s == AVK_SLOTIDX_NONE)
                return NULL;
        if (slot)
                *slot = s;
        return &t->devs[s];
}

static struct dev *dev_new(avk_track_t *t, const uint8_t id[16], uint32_t *slot)
{
        uint32_t s;
        if (t->free_head != UINT32_MAX) {
                s = t->free_head;
                t->free_head = (uint32_t)t->devs[s].version;
        } else {
                if (t->dev_used == t->dev_cap) {
                        uint32_t cap = t->dev_cap ? t->dev_cap * 2 : 1024;
                        struct dev *devs = realloc(t->devs, (size_t)cap * sizeof(*devs));
                        if (!devs)
                                return NULL;
                        t->devs = devs;
                        t->dev_cap = cap;
                }
                s = t->dev_high++;
        }
        t->dev_used++;
        struct dev *d = &t->devs[s];
        memset(d, 0, sizeof(*d));
        memcpy(d->id, id, 16);
        d->flags = F_USED;
        if (avk_slotidx_insert(&t->index, hash_id(id), s, dev_hash, t) != 0) {
                d->flags = 0;
                d->version = (int32_t)t->free_head;
                t->free_head = s;
                t->dev_used--;
                return NULL;
        }
        *slot = s;
        return d;
}

/* Open and overdue counts: a deviation's share is taken out before a change
 * and put back after it. */
static void account(avk_track_t *t, const struct dev *d, long sign)
{
        t->open_by_party[d->receiver] += sign;
        if (d->flags & (F_LATE_ACK | F_LATE_ANSWER))
                t->overdue_by_party[d->receiver] += sign;
}

static void dev_remove(avk_track_t *t, uint32_t slot)
{
        struct dev *d = &t->devs[slot];
        account(t, d, -1);
        avk_timers_cancel(t->timers, slot);
        avk_slotidx_remove(&t->index, hash_id(d->id), slot, dev_hash, t);
        /* Deliberately not the whole (stale) record: the free list reuses version. */
        d->flags = 0;
        d->version = (int32_t)t->free_head;
        t->free_head = slot;
        t->dev_used--;
}

/* ---- closed ids ---- */

static uint64_t closed_hash(uint32_t i, const void *t)
{
        return hash_id(((const avk_track_t *)t)->closed[i]);
}

static int closed_eq(uint32_t i, const void *id, const void *t)
{
        return memcmp(((const avk_track_t *)t)->closed[i], id, 16) == 0;
}

static int closed_has(const avk_track_t *t, const uint8_t id[16])
{
        return avk_slotidx_find(&t->closed_index, hash_id(id), closed_eq, id, t) !=
               AVK_SLOTIDX_NONE;
}

static int closed_add(avk_track_t *t, const uint8_t id[16])
{
        if (closed_has(t, id))
                return 0;
        size_t n = t->closed_index.cnt;
        if (n == t->closed_cap) {
                size_t cap = t->closed_cap ? t->closed_cap * 2 : 1024;
                uint8_t(*closed)[16] = realloc(t->closed, cap * 16);
                if (!closed)
                        return -1;
                t->closed = closed;
                t->closed_cap = cap;
        }
        memcpy(t->closed[n], id, 16);
        return avk_slotidx_insert(&t->closed_index, hash_id(id), (uint32_t)n, closed_hash, t);
}

/* ---- deadlines and timers ---- */

/* The earliest instant something is due for d; AVK_DEADLINE_NEVER for nothing. */
static int64_t next_due(const struct dev *d)
{
        const struct avk_deadline_terms *terms = d->terms;
        int64_t due = AVK_DEADLINE_NEVER;
        if (d->phase == ANSWERED_PHASE)
                return avk_deadline_after(&terms->dispute_window, d->answered_at);
        if (d->phase != AWAIT_ANSWER)
                return due;
        if (d->acked_at == AVK_TRACK_NONE && !(d->flags & F_ACK_DONE) &&
            d->ack_deadline != AVK_DEADLINE_NEVER) {
                int64_t remind = avk_deadline_before(&terms->remind_before, d->ack_deadline);
                /* A reminder at or before the routing would only repeat it. */
                if (!(d->flags & F_REMINDED_ACK) && remind > d->routed_at)
                        due = min64(due, remind);
                due = min64(due, d->ack_deadline);
        }
        if (!(d->flags & F_ANSWER_DONE) && d->answer_deadline != AVK_DEADLINE_NEVER) {
                int64_t remind = avk_deadline_before(&terms->remind_before, d->answer_deadline);
                if (!(d->flags & F_REMINDED_ANSWER) && remind > d->awaiting_since)
                        due = min64(due, remind);
                due = min64(due, d->answer_deadline);
        }
        return due;
}

static int arm(avk_track_t *t, uint32_t slot)
{
        int64_t due = next_due(&t->devs[slot]);
        if (due == AVK_DEADLINE_NEVER) {
                avk_timers_cancel(t->timers, slot);
                return 0;
        }
        return avk_timers_set(t->timers, slot, due);
}

/* ---- actions ---- */

static int sink(avk_track_t *t, struct dev *d, struct avk_track_action *a)
{
        if (d && a->kind != AVK_TRACK_SETTLED)
                d->inflight++;
        return t->opt.sink(t->opt.sink_opaque, a);
}

static int emit_status(avk_track_t *t, struct dev *d, enum avk_track_state state,
                       int64_t changed_at, const char *cause, int64_t closed_at, uint64_t ticket)
{
        char id[ID_SIZE], name[64];
        id_text(d->id, id);
        d->version++;
        d->state = (uint8_t)state;
        struct avk_track_action a = {.kind = AVK_TRACK_STATUS, .ticket = ticket};
        struct avk_track_status *s = &a.u.status;
        int n = snprintf(name, sizeof(name), "%s/%d", id, (int)d->version);
        avk_ident_uuid5(state_namespace, name, (size_t)n, s->state_id);
        s->deviation_id = id;
        s->version = d->version;
        s->state = state;
        s->changed_at = changed_at;
        s->cause = cause;
        s->hop = d->hop;
        s->reporter_party = pool_str(&t->parties, d->reporter);
        s->receiver_party = pool_str(&t->parties, d->receiver);
        s->receiver_unit = d->unit ? pool_str(&t->units, d->unit) : NULL;
        s->category = t->category->symbols[d->category];
        s->harm_level = t->harm->symbols[d->harm];
        s->lex_maria = (d->flags & F_LEX) != 0;
        s->deadline_rule = d->terms->rule_id;
        s->routed_at = d->routed_at;
        s->acknowledge_deadline_at = d->ack_deadline;
        s->answer_deadline_at = d->answer_deadline;
        s->acknowledged_at = d->acked_at;
        s->answered_at = d->answered_at;
        s->closed_at = closed_at;
        s->time_to_acknowledge_ms =
            d->acked_at == AVK_TRACK_NONE ? AVK_TRACK_NONE : d->acked_at - d->routed_at;
        s->time_to_answer_ms =
            d->answered_at == AVK_TRACK_NONE ? AVK_TRACK_NONE : d->answered_at - d->routed_at;
        s->deadline_kept =
            d->answered_at == AVK_TRACK_NONE ? -1 : d->answered_at <= d->answer_deadline;
        s->overdue = (d->flags & (F_LATE_ACK | F_LATE_ANSWER)) != 0;
        s->step = d->step;
        s->pending_step = d->pending;
        s->wrong_receiver_region = (d->flags & F_REGION_DECLINED) != 0;
        s->wrong_receiver_municipality =
            d->declined_municipality ? pool_str(&t->parties, d->declined_municipality) : NULL;
        s->partition = d->partition;
        return sink(t, d, &a);
}

/* Whether the interned unit is the county's triage desk. */
static int is_desk(const avk_track_t *t, uint32_t unit)
{
        return t->desk_unit != 0 && unit == t->desk_unit;
}

/* Which ladder an escalation climbs. */
enum side {
        RECEIVER_ALONE,    /* a missed deadline or failed delivery: the receiver's */
        RECEIVER_SIDE,     /* a disagreement: the receiver's, naming the reporter */
        REPORTER_SIDE,     /* a disagreement: the reporter's, naming the receiver */
        REGION_SIDE,       /* a disagreement about responsibility: the region's, naming the
                              municipality */
        MUNICIPALITY_SIDE, /* the same: the municipality's, naming the region */
};

/*
 * The municipality of a disagreement about responsibility, as an interned party, when both
 * sides have answered "wrong receiver" (docs/escalation.md, "Both sides answer wrong
 * receiver"); 0 when they have not. The reporting party counts for its own side: routing
 * excludes it as it excludes a party that answered "wrong receiver" (docs/routing.md).
 */
static uint16_t responsibility_municipality(const avk_track_t *t, const struct dev *d)
{
        int region_reported = strcmp(pool_str(&t->parties, d->reporter), REGION) == 0;
        uint16_t municipality = d->declined_municipality ? d->declined_municipality
                                : region_reported        ? 0
                                                         : d->reporter;
        return municipality && (region_reported || (d->flags & F_REGION_DECLINED)) ? municipality
                                                                                   : 0;
}

static int emit_escalation(avk_track_t *t, struct dev *d, enum side side,
                           enum avk_track_reason reason, int64_t now, int64_t deadline_at,
                           uint64_t ticket)
{
        char id[ID_SIZE], name[96];
        id_text(d->id, id);
        struct avk_track_action a = {.kind = AVK_TRACK_ESCALATION, .ticket = ticket};
        struct avk_track_escalation *e = &a.u.escalation;
        const char *receiver = pool_str(&t->parties, d->receiver);
        const char *reporter = pool_str(&t->parties, d->reporter);
        const char *municipality = pool_str(&t->parties, responsibility_municipality(t, d));
        /* Whose ladder, and the other party of a disagreement. */
        const char *party = receiver, *counterpart = NULL;
        switch (side) {
        case RECEIVER_ALONE:
                break;
        case RECEIVER_SIDE:
                counterpart = reporter;
                break;
        case REPORTER_SIDE:
                party = reporter;
                counterpart = receiver;
                break;
        case REGION_SIDE:
                party = REGION;
                counterpart = municipality;
                break;
        case MUNICIPALITY_SIDE:
                party = municipality;
                counterpart = REGION;
                break;
        }
        /* Only the receiver's own escalation goes without the party in its id: neither side of
         * a disagreement about responsibility is the hop's receiver (the triage desk). */
        int n =
            side == RECEIVER_ALONE || side == RECEIVER_SIDE
                ? snprintf(name, sizeof(name), "%s/%d/%d", id, (int)d->hop, (int)d->step)
                : snprintf(name, sizeof(name), "%s/%d/%d/%s", id, (int)d->hop, (int)d->step, party);
        avk_ident_uuid5(escalation_namespace, name, (size_t)n, e->escalation_id);
        e->deviation_id = id;
        e->escalated_at = now;
        e->hop = d->hop;
        e->party = party;
        e->unit = (side == RECEIVER_ALONE || side == RECEIVER_SIDE) && d->unit
                      ? pool_str(&t->units, d->unit)
                      : NULL;
        e->counterpart = counterpart;
        e->step = d->step;
        e->reason = reason;
        e->deadline_at = deadline_at;
        e->partition = d->partition;
        return sink(t, d, &a);
}

static int emit_reminder(avk_track_t *t, struct dev *d, enum avk_track_deadline_kind kind,
                         int64_t at, int64_t deadline)
{
        char id[ID_SIZE], name[96];
        id_text(d->id, id);
        struct avk_track_action a = {.kind = AVK_TRACK_REMINDER};
        struct avk_track_reminder *r = &a.u.reminder;
        int n = snprintf(name, sizeof(name), "%s/%d/%s/%lld", id, (int)d->hop,
                         avk_track_deadline_name(kind), (long long)deadline);
        avk_ident_uuid5(reminder_namespace, name, (size_t)n, r->reminder_id);
        r->deviation_id = id;
        r->reminded_at = at;
        r->hop = d->hop;
        r->receiver_party = pool_str(&t->parties, d->receiver);
        r->receiver_unit = d->unit ? pool_str(&t->units, d->unit) : NULL;
        r->kind = kind;
        r->deadline_at = deadline;
        r->partition = d->partition;
        return sink(t, d, &a);
}

/* A disagreement at d's step: both parties' holders of the step are told - the receiver's and the
 * reporter's for a disputed answer, the region's and the municipality's for one about
 * responsibility. */
static int emit_disagreement(avk_track_t *t, struct dev *d, int64_t now, uint64_t ticket)
{
        if (d->flags & F_RESPONSIBILITY) {
                if (emit_escalation(t, d, REGION_SIDE, AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES, now,
                                    AVK_TRACK_NONE, ticket) != 0)
                        return -1;
                return emit_escalation(t, d, MUNICIPALITY_SIDE, AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES,
                                       now, AVK_TRACK_NONE, ticket);
        }
        if (emit_escalation(t, d, RECEIVER_SIDE, AVK_TRACK_ANSWER_DISPUTED, now, AVK_TRACK_NONE,
                            ticket) != 0)
                return -1;
        return emit_escalation(t, d, REPORTER_SIDE, AVK_TRACK_ANSWER_DISPUTED, now, AVK_TRACK_NONE,
                               ticket);
}

static int settle(avk_track_t *t, uint64_t ticket, enum avk_track_result result, int partition)
{
        struct avk_track_action a = {.kind = AVK_TRACK_SETTLED, .ticket = ticket};
        a.u.settled.result = result;
        a.u.settled.partition = partition;
        return sink(t, NULL, &a);
}

/* ---- escalation ---- */

/* Moves d one step up (the caller has taken its share out of the counts) and
 * gives the step a deadline to answer from `from`; a deadline never moves
 * earlier, since the receiver was promised the policy's. At the top nothing
 * is escalated: the parties take it further themselves. @returns 1 when it
 * climbed, 0 at the top. */
static int climb(struct dev *d, int64_t from)
{
        if (d->step >= AVK_TRACK_STEP_COUNTY_FORUM)
                return 0;
        d->step++;
        int64_t next = avk_deadline_after(&d->terms->step_answer, from);
        if (next != AVK_DEADLINE_NEVER && next > d->answer_deadline) {
                d->answer_deadline = next;
                d->flags &= (uint16_t) ~(F_ANSWER_DONE | F_REMINDED_ANSWER);
        }
        return 1;
}

/* ---- the inputs ---- */

static void apply_kept(avk_track_t *t, const uint8_t id[16]);

static enum avk_track_result routed_new_hop(avk_track_t *t, struct dev *d, uint32_t slot,
                                            const struct avk_track_routed *in, uint32_t reporter,
                                            uint32_t receiver, uint32_t unit)
{
        d->hop = (uint16_t)in->hop;
        d->reporter = (uint16_t)reporter;
        d->receiver = (uint16_t)receiver;
        d->unit = unit;
        d->partition = (int16_t)in->partition;
        d->category = symbol_or(t->category, in->category, t->category_other);
        d->harm = symbol_or(t->harm, in->harm_level, t->harm_unknown);
        d->terms = avk_deadlines_lookup(t->opt.policy, in->receiver_party,
                                        t->category->symbols[d->category],
                                        t->harm->symbols[d->harm], in->lex_maria != 0);
        d->routed_at = in->routed_at;
        d->ack_deadline = avk_deadline_after(&d->terms->acknowledge, in->routed_at);
        d->answer_deadline = avk_deadline_after(&d->terms->answer, in->routed_at);
        d->acked_at = AVK_TRACK_NONE;
        d->answered_at = AVK_TRACK_NONE;
        d->awaiting_since = in->routed_at;
        d->phase = AWAIT_ANSWER;
        d->step = AVK_TRACK_STEP_NONE;
        d->pending = AVK_TRACK_STEP_NONE;
        /* Who has answered "wrong receiver" outlives the hop: it is the deviation's history. */
        d->flags = (uint16_t)((d->flags & (F_USED | F_DEFERRED | F_REGION_DECLINED)) |
                              (in->lex_maria ? F_LEX : 0) | (is_desk(t, unit) ? F_DESK_HOP : 0));
        /* Routing has nobody left after rejections (it sends the deviation to the desk), and
         * both sides have declined: a disagreement about responsibility, which the ladder's
         * forum step settles. */
        int forum =
            (d->flags & F_DESK_HOP) && in->hop > 0 && responsibility_municipality(t, d) != 0;
        if (forum) {
                d->flags |= F_RESPONSIBILITY;
                if (d->terms->manual_steps & (1u << AVK_TRACK_STEP_LOCAL_FORUM))
                        d->pending = AVK_TRACK_STEP_LOCAL_FORUM;
        }
        account(t, d, +1);
        if (emit_status(t, d, AVK_TRACK_ROUTED, in->routed_at, in->event_id, AVK_TRACK_NONE, 0) !=
            0)
                return AVK_TRACK_FAILED;
        if (forum && !d->pending) {
                account(t, d, -1);
                d->step = AVK_TRACK_STEP_LOCAL_FORUM - 1;
                climb(d, in->routed_at);
                account(t, d, +1);
                if (emit_status(t, d, AVK_TRACK_ESCALATED, in->routed_at, in->event_id,
                                AVK_TRACK_NONE, 0) != 0 ||
                    emit_disagreement(t, d, t->last_now, 0) != 0)
                        return AVK_TRACK_FAILED;
        }
        if (arm(t, slot) != 0)
                return AVK_TRACK_FAILED;
        return AVK_TRACK_APPLIED;
}

enum avk_track_result avk_track_routed(avk_track_t *t, const struct avk_track_routed *in)
{
        uint8_t id[16];
        if (parse_id(in->deviation_id, id) != 0 || !in->receiver_party || !*in->receiver_party ||
            !in->reporter_party || !*in->reporter_party || in->hop < 0 || in->hop > UINT16_MAX)
                return AVK_TRACK_BAD_INPUT;
        if (closed_has(t, id))
                return AVK_TRACK_CLOSED_ALREADY;
        uint32_t slot;
        struct dev *d = find(t, id, &slot);
        if (d && in->hop < d->hop)
                return AVK_TRACK_STALE;
        if (d && in->hop == d->hop)
                return AVK_TRACK_DUPLICATE;
        uint32_t reporter = pool_get(&t->parties, in->reporter_party, 1);
        uint32_t receiver = pool_get(&t->parties, in->receiver_party, 1);
        uint32_t unit = pool_get(&t->units, in->receiver_unit, 1);
        if (reporter == UINT32_MAX || receiver == UINT32_MAX || unit == UINT32_MAX)
                return AVK_TRACK_BAD_INPUT;
        if (d) {
                account(t, d, -1);
                /* The router routes again only when the receiver in force answers "wrong
                 * receiver": the next hop says so, whichever of the two the tracker reads
                 * first. The desk's "wrong receiver" is no party's: it triages for the county. */
                if (!(d->flags & F_DESK_HOP) &&
                    strcmp(pool_str(&t->parties, d->receiver), REGION) == 0)
                        d->flags |= F_REGION_DECLINED;
                else if (!(d->flags & F_DESK_HOP))
                        d->declined_municipality = d->receiver;
        } else {
                d = dev_new(t, id, &slot);
                if (!d)
                        return AVK_TRACK_FAILED;
        }
        enum avk_track_result r = routed_new_hop(t, d, slot, in, reporter, receiver, unit);
        if (r == AVK_TRACK_APPLIED)
                apply_kept(t, id);
        return r;
}

/* ---- kept inputs ---- */

static int kept_eq(const struct avk_hnode *node, const void *key)
{
        const struct kept *k = avk_container_of(node, struct kept, node);
        const struct kept *want = key;
        return memcmp(k->id, want->id, 16) == 0 && strcmp(k->input_id, want->input_id) == 0;
}

static void kept_unlink(avk_track_t *t, struct kept *k)
{
        avk_htab_remove(&t->kept_by_id, &k->node);
        TAILQ_REMOVE(&t->kept, k, arrival);
}

static enum avk_track_result keep(avk_track_t *t, const uint8_t id[16], int is_failure,
                                  enum avk_track_response_kind kind, const char *input_id,
                                  int64_t at, const char *party, int hop, int partition,
                                  uint64_t ticket)
{
        struct kept want;
        memcpy(want.id, id, 16);
        snprintf(want.input_id, sizeof(want.input_id), "%s", input_id);
        if (avk_htab_find(&t->kept_by_id, hash_id(id), kept_eq, &want))
                return AVK_TRACK_DUPLICATE;
        if (t->kept_by_id.cnt >= t->opt.kept_max)
                return AVK_TRACK_FULL;
        struct kept *k = calloc(1, sizeof(*k));
        if (!k)
                return AVK_TRACK_FAILED;
        memcpy(k->id, id, 16);
        k->is_failure = is_failure;
        k->kind = kind;
        snprintf(k->input_id, sizeof(k->input_id), "%s", input_id);
        k->at = at;
        k->kept_at = t->last_now;
        snprintf(k->party, sizeof(k->party), "%s", party ? party : "");
        k->hop = hop;
        k->partition = partition;
        k->ticket = ticket;
        avk_htab_insert(&t->kept_by_id, &k->node, hash_id(id));
        TAILQ_INSERT_TAIL(&t->kept, k, arrival);
        return AVK_TRACK_KEPT;
}

/* Applies, in arrival order, what was kept for the deviation id and is now
 * applicable; a failure for a hop still ahead stays kept. */
static void apply_kept(avk_track_t *t, const uint8_t id[16])
{
        if (TAILQ_EMPTY(&t->kept))
                return;
        char text[ID_SIZE];
        id_text(id, text);
        for (struct kept *k = TAILQ_FIRST(&t->kept), *next; k; k = next) {
                next = TAILQ_NEXT(k, arrival);
                if (memcmp(k->id, id, 16) != 0)
                        continue;
                enum avk_track_result r;
                if (k->is_failure) {
                        struct dev *d = find(t, id, NULL);
                        if (d && k->hop > d->hop)
                                continue;
                        struct avk_track_failure f = {.event_id = k->input_id,
                                                      .deviation_id = text,
                                                      .hop = k->hop,
                                                      .failed_at = k->at,
                                                      .partition = k->partition,
                                                      .ticket = k->ticket};
                        kept_unlink(t, k);
                        r = avk_track_failed(t, &f);
                } else {
                        struct avk_track_response resp = {.response_id = k->input_id,
                                                          .deviation_id = text,
                                                          .responded_at = k->at,
                                                          .party = k->party,
                                                          .kind = k->kind,
                                                          .partition = k->partition,
                                                          .ticket = k->ticket};
                        kept_unlink(t, k);
                        r = avk_track_respond(t, &resp);
                }
                /* Applied or not, the kept input is finished now. */
                settle(t, k->ticket, r, k->partition);
                free(k);
                next = TAILQ_FIRST(&t->kept); /* applying may have changed the list */
        }
}

/* ---- responses ---- */

static enum avk_track_result respond_to(avk_track_t *t, struct dev *d, uint32_t slot,
                                        const struct avk_track_response *in)
{
        uint32_t party = pool_get(&t->parties, in->party, 0);
        int from_receiver = party == d->receiver;
        int from_reporter = party == d->reporter;
        uint64_t ticket = in->ticket;
        /* A disagreement about responsibility is the region's and its municipality's. */
        int from_disagreeing =
            (d->flags & F_RESPONSIBILITY) &&
            (strcmp(in->party, REGION) == 0 || party == responsibility_municipality(t, d));
        if (in->kind == AVK_TRACK_CONFIRM && !from_receiver && !from_reporter && !from_disagreeing)
                return AVK_TRACK_NOT_PARTY;
        if (in->kind != AVK_TRACK_DISPUTE && in->kind != AVK_TRACK_CONFIRM && !from_receiver)
                return AVK_TRACK_NOT_RECEIVER;
        if (in->kind == AVK_TRACK_DISPUTE && !from_reporter)
                return AVK_TRACK_NOT_REPORTER;
        /* The receiver of a later hop may have received an earlier one too
         * (the triage desk names VGR as its record party): time tells them apart. */
        if (d->hop > 0 && in->responded_at < d->routed_at)
                return AVK_TRACK_STALE;
        int rc = 0;
        switch (in->kind) {
        case AVK_TRACK_ACKNOWLEDGE:
                if (d->phase == REJECTED_PHASE)
                        return AVK_TRACK_NOT_EXPECTED;
                if (d->phase == ANSWERED_PHASE || d->acked_at != AVK_TRACK_NONE)
                        return AVK_TRACK_DUPLICATE;
                account(t, d, -1);
                d->acked_at = in->responded_at;
                d->flags &= (uint16_t)~F_LATE_ACK;
                account(t, d, +1);
                rc = emit_status(t, d, AVK_TRACK_ACKNOWLEDGED, in->responded_at, in->response_id,
                                 AVK_TRACK_NONE, ticket);
                break;
        case AVK_TRACK_ANSWER:
                if (d->phase == REJECTED_PHASE)
                        return AVK_TRACK_NOT_EXPECTED;
                /* Answered already, or an answer older than the dispute it would answer. */
                if (d->phase == ANSWERED_PHASE || in->responded_at < d->awaiting_since)
                        return AVK_TRACK_DUPLICATE;
                account(t, d, -1);
                d->answered_at = in->responded_at;
                if (d->acked_at == AVK_TRACK_NONE)
                        d->acked_at = in->responded_at;
                d->phase = ANSWERED_PHASE;
                d->pending = 0; /* a new answer: a step waiting for confirmation lapses */
                d->flags &= (uint16_t) ~(F_LATE_ACK | F_LATE_ANSWER);
                account(t, d, +1);
                rc = emit_status(t, d, AVK_TRACK_ANSWERED, in->responded_at, in->response_id,
                                 AVK_TRACK_NONE, ticket);
                break;
        case AVK_TRACK_REJECT:
                if (d->phase == REJECTED_PHASE)
                        return AVK_TRACK_DUPLICATE;
                /* The desk triages for the county and keeps the deviation until it routes it
                 * on (the router spends no hop on its "wrong receiver"): its deadlines run. */
                if (d->phase == ANSWERED_PHASE || (d->flags & F_DESK_HOP))
                        return AVK_TRACK_NOT_EXPECTED;
                account(t, d, -1);
                d->phase = REJECTED_PHASE;
                d->flags &= (uint16_t) ~(F_LATE_ACK | F_LATE_ANSWER);
                account(t, d, +1);
                rc = emit_status(t, d, AVK_TRACK_REJECTED, in->responded_at, in->response_id,
                                 AVK_TRACK_NONE, ticket);
                break;
        case AVK_TRACK_DISPUTE:
                if (d->phase == AWAIT_ANSWER && in->responded_at <= d->awaiting_since)
                        return AVK_TRACK_DUPLICATE;
                if (d->phase != ANSWERED_PHASE)
                        return AVK_TRACK_NOT_EXPECTED;
                if (in->responded_at < d->answered_at)
                        return AVK_TRACK_DUPLICATE; /* disputes an answer older than the one in
                                                       force */
                account(t, d, -1);
                d->phase = AWAIT_ANSWER;
                d->awaiting_since = in->responded_at;
                /* From here the disagreement is about the answer, between reporter and receiver. */
                d->flags &= (uint16_t)~F_RESPONSIBILITY;
                /* The step (or, at the top, the same forum) answers again. */
                d->answer_deadline = avk_deadline_after(&d->terms->step_answer, in->responded_at);
                d->flags &= (uint16_t) ~(F_ANSWER_DONE | F_REMINDED_ANSWER);
                /* A step the policy makes manual waits for a person to confirm it. */
                int climbed = 0;
                if (d->step < AVK_TRACK_STEP_COUNTY_FORUM &&
                    (d->terms->manual_steps & (1u << (d->step + 1))))
                        d->pending = (uint8_t)(d->step + 1);
                else
                        climbed = climb(d, in->responded_at);
                account(t, d, +1);
                rc = emit_status(t, d, AVK_TRACK_DISPUTED, in->responded_at, in->response_id,
                                 AVK_TRACK_NONE, ticket);
                if (!rc && climbed)
                        rc = emit_disagreement(t, d, t->last_now, ticket);
                break;
        case AVK_TRACK_CONFIRM:
                if (d->pending == AVK_TRACK_STEP_NONE)
                        return AVK_TRACK_NOT_EXPECTED;
                account(t, d, -1);
                d->step = (uint8_t)(d->pending - 1);
                d->pending = AVK_TRACK_STEP_NONE;
                climb(d, in->responded_at);
                account(t, d, +1);
                rc = emit_status(
                    t, d, d->flags & F_RESPONSIBILITY ? AVK_TRACK_ESCALATED : AVK_TRACK_DISPUTED,
                    in->responded_at, in->response_id, AVK_TRACK_NONE, ticket);
                if (!rc)
                        rc = emit_disagreement(t, d, t->last_now, ticket);
                break;
        }
        if (rc != 0 || arm(t, slot) != 0)
                return AVK_TRACK_FAILED;
        return AVK_TRACK_APPLIED;
}

enum avk_track_result avk_track_respond(avk_track_t *t, const struct avk_track_response *in)
{
        uint8_t id[16];
        if (parse_id(in->deviation_id, id) != 0 || !in->response_id || !in->party || !*in->party)
                return AVK_TRACK_BAD_INPUT;
        if (closed_has(t, id))
                return AVK_TRACK_CLOSED_ALREADY;
        uint32_t slot;
        struct dev *d = find(t, id, &slot);
        if (!d)
                return keep(t, id, 0, in->kind, in->response_id, in->responded_at, in->party, 0,
                            in->partition, in->ticket);
        return respond_to(t, d, slot, in);
}

enum avk_track_result avk_track_failed(avk_track_t *t, const struct avk_track_failure *in)
{
        uint8_t id[16];
        if (parse_id(in->deviation_id, id) != 0 || !in->event_id || in->hop < 0)
                return AVK_TRACK_BAD_INPUT;
        if (closed_has(t, id))
                return AVK_TRACK_CLOSED_ALREADY;
        uint32_t slot;
        struct dev *d = find(t, id, &slot);
        if (!d || in->hop > d->hop)
                return keep(t, id, 1, AVK_TRACK_ACKNOWLEDGE, in->event_id, in->failed_at, NULL,
                            in->hop, in->partition, in->ticket);
        if (in->hop < d->hop)
                return AVK_TRACK_STALE;
        /* The receiver has it after all, or the ladder holds it already. */
        if (d->phase != AWAIT_ANSWER || d->acked_at != AVK_TRACK_NONE)
                return AVK_TRACK_NOT_EXPECTED;
        if (d->step > AVK_TRACK_STEP_NONE)
                return AVK_TRACK_DUPLICATE;
        account(t, d, -1);
        climb(d, in->failed_at);
        account(t, d, +1);
        if (emit_status(t, d, AVK_TRACK_ESCALATED, in->failed_at, in->event_id, AVK_TRACK_NONE,
                        in->ticket) != 0 ||
            emit_escalation(t, d, RECEIVER_ALONE, AVK_TRACK_DELIVERY_FAILED, t->last_now,
                            AVK_TRACK_NONE, in->ticket) != 0 ||
            arm(t, slot) != 0)
                return AVK_TRACK_FAILED;
        return AVK_TRACK_APPLIED;
}

/* ---- timers ---- */

static void close_dev(avk_track_t *t, uint32_t slot)
{
        struct dev *d = &t->devs[slot];
        closed_add(t, d->id);
        dev_remove(t, slot);
}

/* Handles the one earliest thing due for d at now. @returns -1 when the sink failed. */
static int fire(avk_track_t *t, uint32_t slot, int64_t now)
{
        struct dev *d = &t->devs[slot];
        const struct avk_deadline_terms *terms = d->terms;
        if (d->phase == ANSWERED_PHASE) {
                int64_t closes = avk_deadline_after(&terms->dispute_window, d->answered_at);
                if (closes > now)
                        return arm(t, slot);
                account(t, d, -1);
                d->phase = REJECTED_PHASE; /* no timers while the record waits to leave */
                account(t, d, +1);
                int rc = emit_status(t, d, AVK_TRACK_CLOSED, closes, "deadline:DISPUTE_WINDOW",
                                     closes, 0);
                close_dev(t, slot);
                return rc;
        }
        if (d->phase != AWAIT_ANSWER)
                return 0;
        /* The candidates in time order: acknowledge reminder, acknowledge
         * deadline, answer reminder, answer deadline. */
        int ack_open = d->acked_at == AVK_TRACK_NONE && !(d->flags & F_ACK_DONE) &&
                       d->ack_deadline != AVK_DEADLINE_NEVER;
        int answer_open = !(d->flags & F_ANSWER_DONE) && d->answer_deadline != AVK_DEADLINE_NEVER;
        int64_t ack_remind = avk_deadline_before(&terms->remind_before, d->ack_deadline);
        int64_t answer_remind = avk_deadline_before(&terms->remind_before, d->answer_deadline);
        int64_t best = AVK_DEADLINE_NEVER;
        int what = -1; /* 0 ack reminder, 1 ack deadline, 2 answer reminder, 3 answer deadline */
        if (ack_open && !(d->flags & F_REMINDED_ACK) && ack_remind > d->routed_at &&
            ack_remind < best) {
                best = ack_remind;
                what = 0;
        }
        if (ack_open && d->ack_deadline < best) {
                best = d->ack_deadline;
                what = 1;
        }
        if (answer_open && !(d->flags & F_REMINDED_ANSWER) && answer_remind > d->awaiting_since &&
            answer_remind < best) {
                best = answer_remind;
                what = 2;
        }
        if (answer_open && d->answer_deadline < best) {
                best = d->answer_deadline;
                what = 3;
        }
        if (what < 0 || best > now)
                return arm(t, slot);
        int rc = 0;
        switch (what) {
        case 0:
                d->flags |= F_REMINDED_ACK;
                /* A reminder whose deadline has passed too is no longer news. */
                if (d->ack_deadline > now)
                        rc = emit_reminder(t, d, AVK_TRACK_DEADLINE_ACKNOWLEDGE, best,
                                           d->ack_deadline);
                break;
        case 2:
                d->flags |= F_REMINDED_ANSWER;
                if (d->answer_deadline > now)
                        rc = emit_reminder(t, d, AVK_TRACK_DEADLINE_ANSWER, best,
                                           d->answer_deadline);
                break;
        case 1:
        case 3: {
                enum avk_track_reason reason = what == 1 ? AVK_TRACK_ACKNOWLEDGE_DEADLINE_PASSED
                                                         : AVK_TRACK_ANSWER_DEADLINE_PASSED;
                account(t, d, -1);
                int was_overdue = (d->flags & (F_LATE_ACK | F_LATE_ANSWER)) != 0;
                if (what == 1)
                        d->flags |= F_ACK_DONE | F_LATE_ACK;
                else
                        d->flags |= F_ANSWER_DONE | F_LATE_ANSWER;
                /* A missed deadline is no disagreement: at most the policy's one step to
                 * the receiver's "Chef över chef", never a forum (docs/escalation.md). */
                int climbed = 0;
                if (terms->deadline_step && d->step < AVK_TRACK_STEP_MANAGERS_MANAGER) {
                        d->step = AVK_TRACK_STEP_MANAGER;
                        climbed = climb(d, now);
                }
                account(t, d, +1);
                const char *cause = what == 1 ? "deadline:ACKNOWLEDGE" : "deadline:ANSWER";
                if (climbed) {
                        rc = emit_status(t, d, AVK_TRACK_ESCALATED, best, cause, AVK_TRACK_NONE, 0);
                        if (!rc)
                                rc = emit_escalation(t, d, RECEIVER_ALONE, reason, now, best, 0);
                } else if (!was_overdue) {
                        /* No step to take, but it is overdue now. */
                        rc = emit_status(t, d, (enum avk_track_state)d->state, best, cause,
                                         AVK_TRACK_NONE, 0);
                }
                break;
        }
        }
        if (rc != 0)
                return -1;
        return arm(t, slot);
}

static int expire_kept(avk_track_t *t, int64_t now, long *actions)
{
        struct kept *k;
        while ((k = TAILQ_FIRST(&t->kept)) && k->kept_at + t->opt.kept_max_ms <= now) {
                kept_unlink(t, k);
                int rc = settle(t, k->ticket, AVK_TRACK_NO_ROUTING, k->partition);
                free(k);
                if (rc != 0)
                        return -1;
                (*actions)++;
        }
        return 0;
}

long avk_track_advance(avk_track_t *t, int64_t now)
{
        long actions = 0;
        if (now > t->last_now)
                t->last_now = now;
        if (expire_kept(t, now, &actions) != 0)
                return -1;
        uint32_t slot;
        int64_t due;
        while (avk_timers_pop_due(t->timers, now, &slot, &due)) {
                struct dev *d = &t->devs[slot];
                if (d->inflight > 0) {
                        /* Written in decision order: wait for the outputs in flight. */
                        d->flags |= F_DEFERRED;
                        continue;
                }
                uint16_t before = d->inflight;
                if (fire(t, slot, now) != 0)
                        return -1;
                /* A closed deviation's slot may be reused by now: count what fired. */
                actions += (d->flags & F_USED) ? d->inflight - before : 1;
                if ((d->flags & F_USED) && d->inflight > 0) {
                        avk_timers_cancel(t->timers, slot);
                        d->flags |= F_DEFERRED;
                }
        }
        return actions;
}

long avk_track_tick(avk_track_t *t)
{
        return avk_track_advance(t, t->opt.clock ? t->opt.clock(t->opt.clock_opaque) : t->last_now);
}

int64_t avk_track_next_due(const avk_track_t *t)
{
        int64_t next = avk_timers_next(t->timers);
        if (!TAILQ_EMPTY(&t->kept))
                next = min64(next, TAILQ_FIRST(&t->kept)->kept_at + t->opt.kept_max_ms);
        return next;
}

void avk_track_acked(avk_track_t *t, const char *deviation_id)
{
        uint8_t id[16];
        uint32_t slot;
        if (parse_id(deviation_id, id) != 0)
                return;
        struct dev *d = find(t, id, &slot);
        if (!d || d->inflight == 0)
                return;
        if (--d->inflight == 0 && (d->flags & F_DEFERRED)) {
                d->flags &= (uint16_t)~F_DEFERRED;
                arm(t, slot);
        }
}

int avk_track_version(const avk_track_t *t, const char *deviation_id)
{
        uint8_t id[16];
        if (parse_id(deviation_id, id) != 0)
                return 0;
        const struct dev *d = find(t, id, NULL);
        return d ? d->version : 0;
}

/* ---- rebuild ---- */

int avk_track_restore_status(avk_track_t *t, const struct avk_track_status *s)
{
        uint8_t id[16];
        if (parse_id(s->deviation_id, id) != 0)
                return 0;
        uint32_t slot;
        struct dev *d = find(t, id, &slot);
        if (d && s->version <= d->version)
                return 0;
        if (s->state == AVK_TRACK_CLOSED) {
                if (d)
                        dev_remove(t, slot);
                return closed_add(t, id);
        }
        if (closed_has(t, id))
                return 0;
        uint32_t reporter = pool_get(&t->parties, s->reporter_party, 1);
        uint32_t receiver = pool_get(&t->parties, s->receiver_party, 1);
        uint32_t unit = pool_get(&t->units, s->receiver_unit, 1);
        if (reporter == UINT32_MAX || receiver == UINT32_MAX || unit == UINT32_MAX)
                return 0;
        if (d) {
                account(t, d, -1);
        } else {
                d = dev_new(t, id, &slot);
                if (!d)
                        return -1;
        }
        d->hop = (uint16_t)s->hop;
        d->reporter = (uint16_t)reporter;
        d->receiver = (uint16_t)receiver;
        d->unit = unit;
        d->partition = (int16_t)s->partition;
        d->category = symbol_or(t->category, s->category, t->category_other);
        d->harm = symbol_or(t->harm, s->harm_level, t->harm_unknown);
        /* The deadlines are the record's (what was promised); the terms for
         * what comes next are today's policy. */
        d->terms = avk_deadlines_lookup(t->opt.policy, s->receiver_party,
                                        t->category->symbols[d->category],
                                        t->harm->symbols[d->harm], s->lex_maria);
        d->routed_at = s->routed_at;
        d->ack_deadline = s->acknowledge_deadline_at;
        d->answer_deadline = s->answer_deadline_at;
        d->acked_at = s->acknowledged_at;
        d->answered_at = s->answered_at;
        d->version = s->version;
        d->state = (uint8_t)s->state;
        d->step = (uint8_t)(s->step > 0 && s->step <= AVK_TRACK_STEP_COUNTY_FORUM ? s->step : 0);
        d->pending =
            (uint8_t)(s->pending_step > d->step && s->pending_step <= AVK_TRACK_STEP_COUNTY_FORUM
                          ? s->pending_step
                          : 0);
        d->phase = s->state == AVK_TRACK_ANSWERED   ? ANSWERED_PHASE
                   : s->state == AVK_TRACK_REJECTED ? REJECTED_PHASE
                                                    : AWAIT_ANSWER;
        /* An answer counts from the routing, or from the dispute that asked
         * for it again (the changelog's changed_at of a DISPUTED record); a
         * later record keeps the earlier value, so keep the latest known. */
        if (s->state == AVK_TRACK_DISPUTED)
                d->awaiting_since = s->changed_at;
        else if (!(d->awaiting_since > s->routed_at))
                d->awaiting_since = s->routed_at;
        uint16_t flags =
            (uint16_t)(F_USED | (s->lex_maria ? F_LEX : 0) | (is_desk(t, unit) ? F_DESK_HOP : 0) |
                       (s->wrong_receiver_region ? F_REGION_DECLINED : 0));
        uint32_t declined = pool_get(&t->parties, s->wrong_receiver_municipality, 1);
        d->declined_municipality = (uint16_t)(declined == UINT32_MAX ? 0 : declined);
        /* A forum step about responsibility is ESCALATED at a forum (a dispute's is DISPUTED, a
         * deadline's never reaches one), or pending from the routing to the desk. */
        if ((s->state == AVK_TRACK_ESCALATED && d->step >= AVK_TRACK_STEP_LOCAL_FORUM) ||
            (s->state == AVK_TRACK_ROUTED && d->pending == AVK_TRACK_STEP_LOCAL_FORUM))
                flags |= F_RESPONSIBILITY;
        if (s->overdue)
                flags |= d->acked_at == AVK_TRACK_NONE ? F_LATE_ACK : F_LATE_ANSWER;
        /* A deadline the record shows as handled must not fire again. */
        if (d->acked_at == AVK_TRACK_NONE && s->overdue)
                flags |= F_ACK_DONE;
        if (s->overdue && d->answer_deadline <= s->changed_at)
                flags |= F_ANSWER_DONE | F_LATE_ANSWER;
        d->flags = flags;
        d->inflight = 0;
        account(t, d, +1);
        return 0;
}

int avk_track_restore_escalation(avk_track_t *t, const struct avk_track_escalation *e)
{
        uint8_t id[16];
        uint32_t slot;
        if (parse_id(e->deviation_id, id) != 0)
                return 0;
        struct dev *d = find(t, id, &slot);
        if (!d || e->hop != d->hop || e->step < d->step)
                return 0;
        /* The reporter's side of a disagreement follows the receiver's; a disagreement about
         * responsibility has the region's side and the municipality's. */
        uint16_t seen =
            e->reason == AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES
                ? (e->party && strcmp(e->party, REGION) == 0 ? F_FORUM_REGION_SEEN
                                                             : F_FORUM_MUNICIPALITY_SEEN)
            : e->party && pool_get(&t->parties, e->party, 0) != d->receiver ? F_COUNTERPART_SEEN
                                                                            : F_ESCALATION_SEEN;
        if (e->step == d->step) {
                d->flags |= seen;
                return 0;
        }
        /* Written, but its status record was not: the crash fell between
         * the two. Advance as the escalation did and write the record. */
        account(t, d, -1);
        const char *cause = e->escalation_id;
        enum avk_track_state state = AVK_TRACK_ESCALATED;
        int64_t changed_at = e->deadline_at != AVK_TRACK_NONE ? e->deadline_at : e->escalated_at;
        switch (e->reason) {
        case AVK_TRACK_ACKNOWLEDGE_DEADLINE_PASSED:
                d->flags |= F_ACK_DONE | F_LATE_ACK;
                cause = "deadline:ACKNOWLEDGE";
                break;
        case AVK_TRACK_ANSWER_DEADLINE_PASSED:
                d->flags |= F_LATE_ANSWER;
                cause = "deadline:ANSWER";
                break;
        case AVK_TRACK_ANSWER_DISPUTED:
                /* The dispute's own time is not in the escalation: an
                 * answer counts from the escalation, after the dispute. */
                state = AVK_TRACK_DISPUTED;
                d->phase = AWAIT_ANSWER;
                d->awaiting_since = e->escalated_at;
                break;
        case AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES:
                d->flags |= F_RESPONSIBILITY;
                d->pending = AVK_TRACK_STEP_NONE;
                break;
        default:
                break;
        }
        d->step = (uint8_t)(e->step - 1);
        climb(d, e->escalated_at);
        d->flags &= (uint16_t) ~(F_ESCALATION_SEEN | F_COUNTERPART_SEEN | F_FORUM_REGION_SEEN |
                                 F_FORUM_MUNICIPALITY_SEEN);
        d->flags |= seen;
        account(t, d, +1);
        return emit_status(t, d, state, changed_at, cause, AVK_TRACK_NONE, 0);
}

void avk_track_restore_reminder(avk_track_t *t, const struct avk_track_reminder *r)
{
        uint8_t id[16];
        if (parse_id(r->deviation_id, id) != 0)
                return;
        struct dev *d = find(t, id, NULL);
        if (!d || r->hop != d->hop)
                return;
        if (r->kind == AVK_TRACK_DEADLINE_ACKNOWLEDGE && r->deadline_at == d->ack_deadline)
                d->flags |= F_REMINDED_ACK;
        else if (r->kind == AVK_TRACK_DEADLINE_ANSWER && r->deadline_at == d->answer_deadline)
                d->flags |= F_REMINDED_ANSWER;
}

long avk_track_restore_done(avk_track_t *t, int partition)
{
        long actions = 0;
        for (uint32_t slot = 0; slot < t->dev_high; slot++) {
                struct dev *d = &t->devs[slot];
                if (!(d->flags & F_USED) || d->partition != partition)
                        continue;
                uint16_t seen_flags = d->flags & (F_ESCALATION_SEEN | F_COUNTERPART_SEEN |
                                                  F_FORUM_REGION_SEEN | F_FORUM_MUNICIPALITY_SEEN);
                int seen = (seen_flags & F_ESCALATION_SEEN) != 0;
                int counterpart_seen = (seen_flags & F_COUNTERPART_SEEN) != 0;
                d->flags &= (uint16_t)~seen_flags;
                /* A forum step about responsibility: each side's escalation not read back. */
                if ((d->flags & F_RESPONSIBILITY) && d->state == AVK_TRACK_ESCALATED) {
                        const enum side sides[2] = {REGION_SIDE, MUNICIPALITY_SIDE};
                        const uint16_t read_back[2] = {F_FORUM_REGION_SEEN,
                                                       F_FORUM_MUNICIPALITY_SEEN};
                        for (int i = 0; i < 2; i++) {
                                if (seen_flags & read_back[i])
                                        continue;
                                if (emit_escalation(t, d, sides[i],
                                                    AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES,
                                                    t->last_now, AVK_TRACK_NONE, 0) != 0)
                                        return -1;
                                actions++;
                        }
                        seen = counterpart_seen = 1;
                }
                /* The latest record says it escalated, and the escalation is
                 * not there: the crash fell between the two writes. */
                if (!seen && d->step > AVK_TRACK_STEP_NONE &&
                    (d->state == AVK_TRACK_ESCALATED || d->state == AVK_TRACK_DISPUTED)) {
                        enum avk_track_reason reason =
                            d->state == AVK_TRACK_DISPUTED ? AVK_TRACK_ANSWER_DISPUTED
                            : (d->flags & F_LATE_ACK) && !(d->flags & F_LATE_ANSWER)
                                ? AVK_TRACK_ACKNOWLEDGE_DEADLINE_PASSED
                            : (d->flags & F_LATE_ANSWER) ? AVK_TRACK_ANSWER_DEADLINE_PASSED
                                                         : AVK_TRACK_DELIVERY_FAILED;
                        int64_t deadline = reason == AVK_TRACK_ACKNOWLEDGE_DEADLINE_PASSED
                                               ? d->ack_deadline
                                               : AVK_TRACK_NONE;
                        enum side side =
                            reason == AVK_TRACK_ANSWER_DISPUTED ? RECEIVER_SIDE : RECEIVER_ALONE;
                        if (emit_escalation(t, d, side, reason, t->last_now, deadline, 0) != 0)
                                return -1;
                        actions++;
                }
                /* A disagreement's escalation on the reporter's side is written after the
                 * receiver's: a crash between the two leaves it to write here. */
                if (!counterpart_seen && d->step > AVK_TRACK_STEP_NONE &&
                    d->state == AVK_TRACK_DISPUTED) {
                        if (emit_escalation(t, d, REPORTER_SIDE, AVK_TRACK_ANSWER_DISPUTED,
                                            t->last_now, AVK_TRACK_NONE, 0) != 0)
                                return -1;
                        actions++;
                }
                if (arm(t, slot) != 0)
                        return -1;
        }
        return actions;
}

void avk_track_drop_partition(avk_track_t *t, int partition)
{
        for (uint32_t slot = 0; slot < t->dev_high; slot++) {
                struct dev *d = &t->devs[slot];
                if ((d->flags & F_USED) && d->partition == partition)
                        dev_remove(t, slot);
        }
        for (struct kept *k = TAILQ_FIRST(&t->kept), *next; k; k = next) {
                next = TAILQ_NEXT(k, arrival);
                if (k->partition == partition) {
                        kept_unlink(t, k);
                        free(k);
                }
        }
}

/* ---- figures ---- */

void avk_track_parties(const avk_track_t *t, avk_track_party_fn fn, void *opaque)
{
        for (uint32_t i = 1; i < t->parties.cnt; i++) {
                if (t->open_by_party[i] || t->overdue_by_party[i])
                        fn(opaque, t->parties.str[i], t->open_by_party[i], t->overdue_by_party[i]);
        }
}

size_t avk_track_open_cnt(const avk_track_t *t)
{
        return t->dev_used;
}

size_t avk_track_kept_cnt(const avk_track_t *t)
{
        return t->kept_by_id.cnt;
}

size_t avk_track_memory(const avk_track_t *t)
{
        return sizeof(*t) + (size_t)t->dev_cap * sizeof(struct dev) +
               (t->index.mask + 1) * sizeof(uint32_t) + avk_timers_memory(t->timers) +
               t->closed_cap * 16 + (t->closed_index.mask + 1) * sizeof(uint32_t) +
               t->parties.bytes + t->units.bytes + (size_t)t->units.cap * sizeof(char *) +
               (t->units.index.mask + 1) * sizeof(uint32_t);
}

/* ---- creation ---- */

avk_track_t *avk_track_new(const struct avk_track_options *opt)
{
        avk_track_t *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->opt = *opt;
        /* A record's category and harm level are kept as their index in the
         * schema's enum: OTHER and UNKNOWN stand for a symbol this build does
         * not know. */
        t->category = avk_schema_enum("Category");
        t->harm = avk_schema_enum("HarmLevel");
        if (!t->category || !t->harm || t->category->cnt > UINT8_MAX || t->harm->cnt > UINT8_MAX ||
            (t->category_other = avk_schema_enum_index(t->category, "OTHER")) < 0 ||
            (t->harm_unknown = avk_schema_enum_index(t->harm, "UNKNOWN")) < 0) {
                free(t);
                return NULL;
        }
        if (!t->opt.kept_max)
                t->opt.kept_max = KEPT_MAX;
        if (!t->opt.kept_max_ms)
                t->opt.kept_max_ms = KEPT_MAX_MS;
        t->free_head = UINT32_MAX;
        TAILQ_INIT(&t->kept);
        t->timers = avk_timers_new();
        t->open_by_party = calloc(MAX_PARTIES, sizeof(long));
        t->overdue_by_party = calloc(MAX_PARTIES, sizeof(long));
        if (avk_slotidx_init(&t->index, 512) != 0 || avk_slotidx_init(&t->closed_index, 512) != 0 ||
            avk_htab_init(&t->kept_by_id, 64) != 0 || !t->timers || !t->open_by_party ||
            !t->overdue_by_party || pool_init(&t->parties, MAX_PARTIES) != 0 ||
            pool_init(&t->units, UINT32_MAX - 1) != 0 ||
            (t->desk_unit = pool_get(&t->units, opt->desk_hsa_id, 1)) == UINT32_MAX) {
                avk_track_destroy(t);
                return NULL;
        }
        t->opt.desk_hsa_id = NULL; /* interned: the caller's string need not outlive the call */
        return t;
}

void avk_track_destroy(avk_track_t *t)
{
        if (!t)
                return;
        struct kept *k;
        while ((k = TAILQ_FIRST(&t->kept))) {
                TAILQ_REMOVE(&t->kept, k, arrival);
                free(k);
        }
        avk_htab_destroy(&t->kept_by_id);
        free(t->devs);
        avk_slotidx_destroy(&t->index);
        avk_timers_destroy(t->timers);
        pool_free(&t->parties);
        pool_free(&t->units);
        free(t->open_by_party);
        free(t->overdue_by_party);
        free(t->closed);
        avk_slotidx_destroy(&t->closed_index);
        free(t);
}
