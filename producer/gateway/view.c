/*
 * avk_view: see view.h.
 *
 * Deviations are fixed records in chunks of CHUNK records (a chunk never
 * moves, so growing copies nothing), found by id through an avk_slotidx.
 * Strings that repeat across deviations - rule ids, routing reasons,
 * decisions, steps, states - are interned: a timeline entry holds their
 * numbers. One read-write lock covers the view: the follow threads write,
 * the HTTP threads read.
 */
#include "producer/gateway/view.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#include "common/contract/codec.h"
#include "common/contract/directory.h"
#include "common/contract/party.h"
#include "common/contract/receipt.h"
#include "common/contract/slotfield.h"
#include "common/kafka/follow.h"
#include "common/kafka/kafka.h"
#include "common/util/env.h"
#include "common/util/hash.h"
#include "common/util/log.h"

#define CHUNK_BITS 16
#define CHUNK      (1u << CHUNK_BITS)
#define NO_PARTY   0xff
#define TOPIC_CNT  6
#define UUID_TEXT  37 /* a UUID in text and its NUL */
#define FIELD_MAX  16 /* the fields a follower reads of a record */

/* A deviation's state, from the tracker's changelog; NONE before any status. */
static const char *const state_names[] = {"NONE",     "ROUTED",   "ACKNOWLEDGED", "ANSWERED",
                                          "REJECTED", "DISPUTED", "ESCALATED",    "CLOSED"};
enum {
        ST_NONE,
        ST_ROUTED,
        ST_ACKNOWLEDGED,
        ST_ANSWERED,
        ST_REJECTED,
        ST_DISPUTED,
        ST_ESCALATED,
        ST_CLOSED,
        ST_CNT
};

static const char *const kind_names[] = {
    [AVK_VIEW_REPORTED] = "REPORTED",
    [AVK_VIEW_ROUTED] = "ROUTED",
    [AVK_VIEW_ACKNOWLEDGED] = "ACKNOWLEDGED",
    [AVK_VIEW_ANSWERED] = "ANSWERED",
    [AVK_VIEW_REJECTED_WRONG_RECEIVER] = "REJECTED_WRONG_RECEIVER",
    [AVK_VIEW_DISPUTED] = "DISPUTED",
    [AVK_VIEW_ESCALATED] = "ESCALATED",
    [AVK_VIEW_REMINDED] = "REMINDED",
    [AVK_VIEW_CLOSED] = "CLOSED",
    [AVK_VIEW_ESCALATION_CONFIRMED] = "ESCALATION_CONFIRMED",
};

#define PRINT_SIZE 6 /* bytes of a response's id and of its digest kept */

struct entry { /* one timeline entry: 24 bytes */
        int64_t at;
        union {
                struct {
                        uint32_t label, rule, reason; /* interned; 0 is none */
                };
                struct { /* a response: what recognises it again (avk_view_response()) */
                        unsigned char id[PRINT_SIZE], body[PRINT_SIZE];
                } print;
        };
        uint8_t kind : 7, by_desk : 1; /* by_desk: a response the triage desk gave */
        uint8_t party;
        int16_t hop;
};
_Static_assert(sizeof(struct entry) == 24, "a timeline entry is 24 bytes (docs/gateway.md)");

struct deviation {
        unsigned char id[16];
        unsigned char digest[AVK_VIEW_DIGEST_SIZE]; /* all zero until reported */
        int64_t filed_at;                           /* reported_at, else the first record's time */
        int64_t acknowledge_deadline_at, answer_deadline_at; /* 0 before any status */
        int64_t acknowledged_at, answered_at, closed_at;     /* -1 when not */
        uint64_t routed_to; /* bit per party it was routed to, AVK_VIEW_DESK's for the desk */
        char *reply_reference;
        char *answer; /* analysis, NUL, action plan, NUL; the latest answer */
        struct entry *timeline;
        uint32_t timeline_cnt, timeline_cap;
        int32_t version, hop;
        uint32_t deadline_rule, escalation_step; /* interned */
        uint8_t reported, reporter, receiver, state;
        int8_t deadline_kept;
        uint8_t overdue;
        uint8_t rejected; /* the receiver in force answered wrong receiver: a re-routing is due */
        uint8_t step_pending; /* the tracker's pending_step: a manual step waits for confirmation */
};

struct follower {
        avk_view_t *view;
        const char *topic;
        const avk_schema_t *schema;
        avk_codec_t *codec;
        rd_kafka_t *rk;
        pthread_t thread;
        int started;
        int (*apply)(struct follower *f, const rd_kafka_message_t *m, const avk_avroprog_slot_t *v,
                     char *errstr, size_t errstr_size);
        /* The fields apply() reads (paths, NULL-ended), found in the program's
         * slots at start; the current record's text fields, copied. */
        const char *const *paths;
        avk_slotfield_t fields[FIELD_MAX];
        size_t field_cnt;
        const char *text[FIELD_MAX];
        size_t text_len[FIELD_MAX];
        char *scratch;
        size_t scratch_cap;
};

struct avk_view {
        pthread_rwlock_t lock;
        struct deviation **chunks;
        size_t chunk_cnt, cnt;
        avk_slotidx_t index;
        uint64_t seed;
        /* Interned strings: number i + 1 is strings[i]. */
        char **strings;
        size_t string_cnt, string_cap;
        avk_slotidx_t string_index;
        size_t bytes; /* timelines, texts and interned strings */
        const avk_dispute_t *dispute;
        /* The followers, when started. */
        struct avk_env env;
        int env_open;
        struct follower followers[TOPIC_CNT];
        atomic_int loaded_cnt;
        atomic_int stopping;
};

static struct deviation *at(const avk_view_t *view, uint32_t i)
{
        return &view->chunks[i >> CHUNK_BITS][i & (CHUNK - 1)];
}

static uint64_t id_hash(const avk_view_t *view, const unsigned char id[16])
{
        return avk_hash_bytes(id, 16, view->seed);
}

static uint64_t slot_hash(uint32_t slot, const void *ctx)
{
        return id_hash(ctx, at(ctx, slot)->id);
}

static int slot_eq(uint32_t slot, const void *key, const void *ctx)
{
        return memcmp(at(ctx, slot)->id, key, 16) == 0;
}

static uint64_t string_hash(uint32_t slot, const void *ctx)
{
        const avk_view_t *view = ctx;
        const char *s = view->strings[slot];
        return avk_hash_bytes(s, strlen(s), view->seed);
}

static int string_eq(uint32_t slot, const void *key, const void *ctx)
{
        const avk_view_t *view = ctx;
        return strcmp(view->strings[slot], key) == 0;
}

avk_view_t *avk_view_new(const avk_dispute_t *dispute)
{
        avk_view_t *view = calloc(1, sizeof(*view));
        if (!view)
                return NULL;
        view->seed = avk_hash_seed();
        view->dispute = dispute;
        if (avk_slotidx_init(&view->index, 1024) != 0 ||
            avk_slotidx_init(&view->string_index, 256) != 0) {
                avk_slotidx_destroy(&view->index);
                free(view);
                return NULL;
        }
        pthread_rwlock_init(&view->lock, NULL);
        return view;
}

/* The number of s, interned on first use; 0 for NULL, UINT32_MAX when out of memory. */
static uint32_t intern(avk_view_t *view, const char *s)
{
        if (!s)
                return 0;
        uint64_t h = avk_hash_bytes(s, strlen(s), view->seed);
        uint32_t slot = avk_slotidx_find(&view->string_index, h, string_eq, s, view);
        if (slot != AVK_SLOTIDX_NONE)
                return slot + 1;
        if (view->string_cnt == view->string_cap) {
                size_t cap = view->string_cap ? 2 * view->string_cap : 64;
                char **strings = realloc(view->strings, cap * sizeof(*strings));
                if (!strings)
                        return UINT32_MAX;
                view->strings = strings;
                view->string_cap = cap;
        }
        char *copy = strdup(s);
        if (!copy)
                return UINT32_MAX;
        view->strings[view->string_cnt] = copy;
        if (avk_slotidx_insert(&view->string_index, h, (uint32_t)view->string_cnt, string_hash,
                               view) != 0) {
                free(copy);
                return UINT32_MAX;
        }
        view->bytes += strlen(s) + 1 + sizeof(char *);
        return (uint32_t)++view->string_cnt;
}

static const char *interned(const avk_view_t *view, uint32_t n)
{
        return n ? view->strings[n - 1] : NULL;
}

static int parse_id(const char *text, unsigned char id[16])
{
        return text && uuid_parse(text, id) == 0 ? 0 : -1;
}

/* The deviation with id, or NULL. Under either lock. */
static struct deviation *find(const avk_view_t *view, const unsigned char id[16])
{
        uint32_t slot = avk_slotidx_find(&view->index, id_hash(view, id), slot_eq, id, view);
        return slot == AVK_SLOTIDX_NONE ? NULL : at(view, slot);
}

/* The deviation with id, created when new; NULL when out of memory. Under the write lock. */
static struct deviation *find_or_add(avk_view_t *view, const unsigned char id[16], int64_t first_at)
{
        struct deviation *d = find(view, id);
        if (d)
                return d;
        if (view->cnt >= (size_t)UINT32_MAX - 1)
                return NULL;
        if ((view->cnt >> CHUNK_BITS) == view->chunk_cnt) {
                struct deviation **chunks =
                    realloc(view->chunks, (view->chunk_cnt + 1) * sizeof(*chunks));
                if (!chunks)
                        return NULL;
                view->chunks = chunks;
                if (!(chunks[view->chunk_cnt] = malloc(CHUNK * sizeof(struct deviation))))
                        return NULL;
                view->chunk_cnt++;
        }
        uint32_t slot = (uint32_t)view->cnt;
        d = at(view, slot);
        *d = (struct deviation){.filed_at = first_at,
                                .acknowledged_at = -1,
                                .answered_at = -1,
                                .closed_at = -1,
                                .reporter = NO_PARTY,
                                .receiver = NO_PARTY,
                                .deadline_kept = -1};
        memcpy(d->id, id, 16);
        if (avk_slotidx_insert(&view->index, id_hash(view, id), slot, slot_hash, view) != 0)
                return NULL;
        view->cnt++;
        return d;
}

static int valid_party(int party)
{
        return party >= 0 && party <= AVK_PARTY_MAX;
}

/* The print of a response's id: 48 bits of a hash of all its bits, so
 * that ids which share a prefix (time-ordered UUIDs) differ. -1 when it is
 * not a UUID. */
static int id_print(const avk_view_t *view, const char *response_id,
                    unsigned char print[PRINT_SIZE])
{
        unsigned char id[16];
        if (parse_id(response_id, id) != 0)
                return -1;
        uint64_t h = avk_hash_bytes(id, sizeof(id), view->seed);
        memcpy(print, &h, PRINT_SIZE);
        return 0;
}

/* Whether an entry of kind is a response (its print, not texts). */
static int is_response(uint8_t kind)
{
        return (kind >= AVK_VIEW_ACKNOWLEDGED && kind <= AVK_VIEW_DISPUTED) ||
               kind == AVK_VIEW_ESCALATION_CONFIRMED;
}

/* Appends e to d's timeline, unless the same entry is there (a record read
 * twice; for responses, the same response). */
static int append(avk_view_t *view, struct deviation *d, const struct entry *e)
{
        for (uint32_t i = 0; i < d->timeline_cnt; i++) {
                const struct entry *o = &d->timeline[i];
                if (o->at == e->at && o->kind == e->kind && o->party == e->party &&
                    o->hop == e->hop &&
                    (!is_response(e->kind) || memcmp(&o->print, &e->print, sizeof(e->print)) == 0))
                        return 0;
        }
        if (d->timeline_cnt == d->timeline_cap) {
                uint32_t cap = d->timeline_cap ? 2 * d->timeline_cap : 4;
                struct entry *t = realloc(d->timeline, cap * sizeof(*t));
                if (!t)
                        return -1;
                view->bytes += (cap - d->timeline_cap) * sizeof(*t);
                d->timeline = t;
                d->timeline_cap = cap;
        }
        d->timeline[d->timeline_cnt++] = *e;
        return 0;
}

/* Bytes of n consecutive NUL-terminated texts at s. */
static size_t texts_size(const char *s, int n)
{
        size_t size = 0;
        for (int i = 0; i < n; i++)
                size += strlen(s + size) + 1;
        return size;
}

/* Replaces *slot with a copy of the n texts (each NUL-terminated, "" for NULL). */
static int keep_texts(avk_view_t *view, char **slot, const char *const *texts, int n)
{
        size_t size = 0;
        for (int i = 0; i < n; i++)
                size += (texts[i] ? strlen(texts[i]) : 0) + 1;
        char *copy = malloc(size), *p = copy;
        if (!copy)
                return -1;
        for (int i = 0; i < n; i++) {
                size_t len = texts[i] ? strlen(texts[i]) : 0;
                memcpy(p, texts[i] ? texts[i] : "", len + 1);
                p += len + 1;
        }
        if (*slot)
                view->bytes -= texts_size(*slot, n);
        free(*slot);
        *slot = copy;
        view->bytes += size;
        return 0;
}

/* Makes party d's receiver in force; a new receiver has rejected nothing yet. */
static void set_receiver(struct deviation *d, int party)
{
        if (d->receiver != party)
                d->rejected = 0;
        d->receiver = (uint8_t)party;
}

/* The time of the latest entry of kind in d's timeline, or -1. */
static int64_t latest(const struct deviation *d, enum avk_view_kind kind)
{
        int64_t t = -1;
        for (uint32_t i = 0; i < d->timeline_cnt; i++)
                if (d->timeline[i].kind == kind && d->timeline[i].at > t)
                        t = d->timeline[i].at;
        return t;
}

int avk_view_add(avk_view_t *view, const struct avk_view_event *e)
{
        unsigned char id[16];
        if (parse_id(e->deviation_id, id) != 0 || !valid_party(e->party) ||
            (e->kind == AVK_VIEW_ROUTED && !valid_party(e->reporter)) ||
            (e->kind == AVK_VIEW_REPORTED && !e->digest) ||
            (unsigned)e->kind > AVK_VIEW_ESCALATION_CONFIRMED)
                return -1;
        int rc = -1;
        pthread_rwlock_wrlock(&view->lock);
        struct deviation *d = find_or_add(view, id, e->at);
        if (!d)
                goto out;
        if (!d->reported && e->at < d->filed_at)
                d->filed_at = e->at;
        switch (e->kind) {
        case AVK_VIEW_REPORTED:
                if (d->reported) {
                        rc = 0; /* the first document filed under the id stands */
                        goto out;
                }
                d->reported = 1;
                d->reporter = (uint8_t)e->party;
                d->filed_at = e->at;
                memcpy(d->digest, e->digest, AVK_VIEW_DIGEST_SIZE);
                if (e->text[0] && keep_texts(view, &d->reply_reference, e->text, 1) != 0)
                        goto out;
                break;
        case AVK_VIEW_ROUTED:
                if (d->reporter == NO_PARTY)
                        d->reporter = (uint8_t)e->reporter;
                /* A routing to the desk entitles the desk, not the party it records. */
                d->routed_to |= UINT64_C(1)
                                << (e->label && strcmp(e->label, AVK_VIEW_DESK_DECISION) == 0
                                        ? AVK_VIEW_DESK
                                        : e->party);
                if (d->receiver == NO_PARTY || e->hop >= d->hop) {
                        d->hop = e->hop;
                        set_receiver(d, e->party);
                }
                break;
        case AVK_VIEW_REJECTED_WRONG_RECEIVER:
                /* The desk passes on in its record_party's name, which it may route to: read
                 * after that routing, it must not stand as the party's own rejection. */
                if (e->party == d->receiver && !e->by_desk)
                        d->rejected = 1;
                break;
        case AVK_VIEW_ANSWERED:
                if (e->at >= latest(d, AVK_VIEW_ANSWERED) &&
                    keep_texts(view, &d->answer, e->text, 2) != 0)
                        goto out;
                break;
        default:
                break;
        }
        struct entry entry = {.at = e->at,
                              .kind = (uint8_t)e->kind,
                              .by_desk = e->by_desk != 0,
                              .party = (uint8_t)e->party,
                              .hop = (int16_t)(e->hop < INT16_MAX ? e->hop : INT16_MAX)};
        if (is_response(entry.kind)) {
                if (e->response_id && e->digest &&
                    id_print(view, e->response_id, entry.print.id) == 0)
                        memcpy(entry.print.body, e->digest, PRINT_SIZE);
        } else {
                entry.label = intern(view, e->label);
                entry.rule = intern(view, e->rule);
                entry.reason = intern(view, e->reason);
                if (entry.label == UINT32_MAX || entry.rule == UINT32_MAX ||
                    entry.reason == UINT32_MAX)
                        goto out;
        }
        rc = append(view, d, &entry);
out:
        pthread_rwlock_unlock(&view->lock);
        return rc;
}

static int state_of(const char *name)
{
        for (int i = 1; name && i < ST_CNT; i++)
                if (strcmp(name, state_names[i]) == 0)
                        return i;
        return -1;
}

int avk_view_status(avk_view_t *view, const struct avk_view_status *s)
{
        unsigned char id[16];
        int state = state_of(s->state);
        if (parse_id(s->deviation_id, id) != 0 || state < 0 || !valid_party(s->reporter) ||
            !valid_party(s->receiver))
                return -1;
        int rc = -1;
        pthread_rwlock_wrlock(&view->lock);
        struct deviation *d = find_or_add(view, id, s->changed_at);
        if (!d)
                goto out;
        if (d->state != ST_NONE && s->version <= d->version) {
                rc = 0; /* an older change, read late */
                goto out;
        }
        uint32_t rule = intern(view, s->deadline_rule), step = intern(view, s->escalation_step);
        if (rule == UINT32_MAX || step == UINT32_MAX)
                goto out;
        d->version = s->version;
        d->state = (uint8_t)state;
        if (d->reporter == NO_PARTY)
                d->reporter = (uint8_t)s->reporter;
        set_receiver(d, s->receiver);
        d->routed_to |= UINT64_C(1) << s->receiver;
        d->step_pending = s->pending_step != NULL;
        if (state == ST_REJECTED)
                d->rejected = 1;
        d->deadline_rule = rule;
        d->escalation_step = step;
        d->acknowledge_deadline_at = s->acknowledge_deadline_at;
        d->answer_deadline_at = s->answer_deadline_at;
        d->acknowledged_at = s->acknowledged_at;
        d->answered_at = s->answered_at;
        d->closed_at = s->closed_at;
        d->deadline_kept = (int8_t)s->deadline_kept;
        d->overdue = s->overdue != 0;
        rc = 0;
        if (state == ST_CLOSED)
                rc = append(view, d,
                            &(struct entry){.at = s->closed_at >= 0 ? s->closed_at : s->changed_at,
                                            .kind = AVK_VIEW_CLOSED,
                                            .party = (uint8_t)s->receiver,
                                            .reason = intern(view, "")});
out:
        pthread_rwlock_unlock(&view->lock);
        return rc;
}

int avk_view_loaded(avk_view_t *view)
{
        return atomic_load(&view->loaded_cnt) == TOPIC_CNT;
}

size_t avk_view_size(avk_view_t *view)
{
        pthread_rwlock_rdlock(&view->lock);
        size_t n = view->cnt;
        pthread_rwlock_unlock(&view->lock);
        return n;
}

size_t avk_view_memory(avk_view_t *view)
{
        pthread_rwlock_rdlock(&view->lock);
        size_t n = view->chunk_cnt * CHUNK * sizeof(struct deviation) +
                   (view->index.mask + 1) * sizeof(uint32_t) +
                   (view->string_index.mask + 1) * sizeof(uint32_t) + view->bytes;
        pthread_rwlock_unlock(&view->lock);
        return n;
}

enum avk_view_filing avk_view_filing(avk_view_t *view, const char *deviation_id,
                                     const unsigned char digest[AVK_VIEW_DIGEST_SIZE])
{
        unsigned char id[16];
        if (parse_id(deviation_id, id) != 0)
                return AVK_VIEW_NEW; /* the validator refuses it */
        enum avk_view_filing verdict = AVK_VIEW_NEW;
        pthread_rwlock_rdlock(&view->lock);
        const struct deviation *d = find(view, id);
        if (d && d->reported)
                verdict = memcmp(d->digest, digest, AVK_VIEW_DIGEST_SIZE) == 0 ? AVK_VIEW_SAME
                                                                               : AVK_VIEW_CONFLICT;
        pthread_rwlock_unlock(&view->lock);
        return verdict;
}

enum avk_view_filing avk_view_response(avk_view_t *view, const char *deviation_id,
                                       const char *response_id,
                                       const unsigned char digest[AVK_VIEW_DIGEST_SIZE])
{
        unsigned char id[16], rid[PRINT_SIZE];
        if (parse_id(deviation_id, id) != 0 || id_print(view, response_id, rid) != 0)
                return AVK_VIEW_NEW;
        enum avk_view_filing verdict = AVK_VIEW_NEW;
        pthread_rwlock_rdlock(&view->lock);
        const struct deviation *d = find(view, id);
        for (uint32_t i = 0; d && i < d->timeline_cnt && verdict != AVK_VIEW_SAME; i++) {
                const struct entry *e = &d->timeline[i];
                if (is_response(e->kind) && memcmp(e->print.id, rid, PRINT_SIZE) == 0)
                        verdict = !digest || memcmp(e->print.body, digest, PRINT_SIZE) == 0
                                      ? AVK_VIEW_SAME
                                      : AVK_VIEW_CONFLICT;
        }
        pthread_rwlock_unlock(&view->lock);
        return verdict;
}

static int is_desk_routing(const avk_view_t *view, const struct entry *e)
{
        return e->kind == AVK_VIEW_ROUTED && e->label &&
               strcmp(interned(view, e->label), AVK_VIEW_DESK_DECISION) == 0;
}

/* Whether every routing of d to party read so far went to the desk, which party's name only
 * records. Under a lock. */
static int desk_only(const avk_view_t *view, const struct deviation *d, int party)
{
        int desk = 0;
        for (uint32_t i = 0; i < d->timeline_cnt; i++) {
                const struct entry *e = &d->timeline[i];
                if (e->kind != AVK_VIEW_ROUTED || e->party != party)
                        continue;
                if (!is_desk_routing(view, e))
                        return 0;
                desk = 1;
        }
        return desk;
}

/* Whether d was routed to principal. The tracker's status names the desk's record_party as the
 * receiver of a routing to the desk; that party is entitled only by a routing of its own. Under
 * a lock. */
static int routed_to(const avk_view_t *view, const struct deviation *d, int principal)
{
        if (!(d->routed_to >> principal & 1))
                return 0;
        return principal == AVK_VIEW_DESK || !(d->routed_to >> AVK_VIEW_DESK & 1) ||
               !desk_only(view, d, principal);
}

/* Whether d is at the desk: its routing of the highest hop read goes to the desk and names the
 * receiver in force. Under a lock. */
static int at_desk(const avk_view_t *view, const struct deviation *d)
{
        if (!(d->routed_to >> AVK_VIEW_DESK & 1))
                return 0;
        const struct entry *last = NULL;
        for (uint32_t i = 0; i < d->timeline_cnt; i++) {
                const struct entry *e = &d->timeline[i];
                if (e->kind == AVK_VIEW_ROUTED && (!last || e->hop >= last->hop))
                        last = e;
        }
        return last && last->party == d->receiver && is_desk_routing(view, last);
}

static int involved(const avk_view_t *view, const struct deviation *d, int principal)
{
        return d->reporter == principal || routed_to(view, d, principal);
}

/* The time of d's answer (the tracker's, else the latest ANSWERED response), or -1. */
static int64_t answered_at(const struct deviation *d)
{
        return d->answered_at >= 0 ? d->answered_at : latest(d, AVK_VIEW_ANSWERED);
}

/* The end of d's dispute window, or -1 when unknown or not answered. Under a lock. */
static int64_t dispute_until(const avk_view_t *view, const struct deviation *d)
{
        int64_t answered = answered_at(d);
        if (answered < 0 || !d->answer)
                return -1;
        return avk_dispute_until(view->dispute, interned(view, d->deadline_rule), answered);
}

/* The verdict on a response of a receiver's kind (every kind but DISPUTED
 * and ESCALATION_CONFIRMED): the receiver in force gives it (the desk, while
 * the deviation is at it); an earlier receiver's comes too late; a
 * wrong-receiver rejection is given once per hop, but the desk's as often as
 * it takes: a suggestion the router cannot use leaves the deviation at the
 * desk (docs/routing.md). Under a lock. */
static enum avk_view_respond receiver_verdict(const avk_view_t *view, const struct deviation *d,
                                              int principal, const char *kind)
{
        int receiver = at_desk(view, d) ? AVK_VIEW_DESK : d->receiver;
        if (receiver != principal)
                return routed_to(view, d, principal) ? AVK_VIEW_RESPOND_STALE
                                                     : AVK_VIEW_RESPOND_NOT_RECEIVER;
        if (d->rejected && receiver != AVK_VIEW_DESK &&
            strcmp(kind, "REJECTED_WRONG_RECEIVER") == 0)
                return AVK_VIEW_RESPOND_REJECTED;
        return AVK_VIEW_RESPOND_OK;
}

enum avk_view_respond avk_view_may_respond(avk_view_t *view, const char *deviation_id, int party,
                                           const char *kind, int64_t now_ms, int64_t *until_ms)
{
        unsigned char id[16];
        *until_ms = -1;
        if (parse_id(deviation_id, id) != 0)
                return AVK_VIEW_RESPOND_UNKNOWN;
        enum avk_view_respond verdict = AVK_VIEW_RESPOND_UNKNOWN;
        pthread_rwlock_rdlock(&view->lock);
        const struct deviation *d = find(view, id);
        if (!d || !involved(view, d, party))
                goto out;
        if (strcmp(kind, "ESCALATION_CONFIRMED") == 0) {
                verdict = d->reporter != party && d->receiver != party ? AVK_VIEW_RESPOND_NOT_PARTY
                          : !d->step_pending ? AVK_VIEW_RESPOND_NOTHING_PENDING
                                             : AVK_VIEW_RESPOND_OK;
                goto out;
        }
        if (strcmp(kind, "DISPUTED") != 0) {
                verdict = receiver_verdict(view, d, party, kind);
                goto out;
        }
        *until_ms = dispute_until(view, d);
        if (d->reporter != party)
                verdict = AVK_VIEW_RESPOND_NOT_REPORTER;
        else if (d->state == ST_CLOSED || (*until_ms >= 0 && now_ms >= *until_ms))
                verdict = AVK_VIEW_RESPOND_WINDOW_OVER;
        else if (!d->answer || d->state == ST_DISPUTED)
                verdict = AVK_VIEW_RESPOND_NOT_ANSWERED;
        else
                verdict = AVK_VIEW_RESPOND_OK;
out:
        pthread_rwlock_unlock(&view->lock);
        return verdict;
}

int avk_view_receiver(avk_view_t *view, const char *deviation_id, int32_t *hop, int *party)
{
        unsigned char id[16];
        if (parse_id(deviation_id, id) != 0)
                return -1;
        int receiver = -1;
        pthread_rwlock_rdlock(&view->lock);
        const struct deviation *d = find(view, id);
        if (d && d->receiver != NO_PARTY) {
                receiver = at_desk(view, d) ? AVK_VIEW_DESK : d->receiver;
                *hop = d->hop;
                if (party)
                        *party = d->receiver;
        }
        pthread_rwlock_unlock(&view->lock);
        return receiver;
}

/* ---- rendering ----------------------------------------------------------- */

/* A time in RFC 3339 UTC with milliseconds, or JSON null for ms < 0. */
static json_t *time_json(int64_t ms)
{
        if (ms < 0)
                return json_null();
        time_t s = (time_t)(ms / 1000);
        struct tm tm;
        char text[80];
        gmtime_r(&s, &tm);
        snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        return json_string(text);
}

static json_t *party_json(uint8_t party)
{
        return party == NO_PARTY ? json_null() : json_string(avk_party_code(party));
}

static json_t *text_json(const char *s)
{
        return s && s[0] ? json_string(s) : json_null();
}

/* The state a look-up shows: the tracker's, else what the records read so far say. */
static const char *state_name(const struct deviation *d)
{
        if (d->state != ST_NONE)
                return state_names[d->state];
        return d->routed_to ? "ROUTED" : "REPORTED";
}

/* A deadline: when due, when met, and whether it was kept (null while open and not passed). */
static json_t *deadline_json(int64_t due, int64_t done, int64_t now_ms)
{
        if (due <= 0)
                return json_null();
        json_t *kept =
            done >= 0 ? json_boolean(done <= due) : (now_ms > due ? json_false() : json_null());
        return json_pack("{s:o,s:o,s:o}", "due_at", time_json(due), "met_at", time_json(done),
                         "kept", kept);
}

static json_t *deadlines_json(const struct deviation *d, int64_t now_ms)
{
        return json_pack("{s:o,s:o}", "acknowledge",
                         deadline_json(d->acknowledge_deadline_at, d->acknowledged_at, now_ms),
                         "answer", deadline_json(d->answer_deadline_at, d->answered_at, now_ms));
}

static int entry_order(const void *a, const void *b)
{
        const struct entry *x = a, *y = b;
        if (x->at != y->at)
                return x->at < y->at ? -1 : 1;
        return (int)x->kind - (int)y->kind;
}

static json_t *timeline_json(const avk_view_t *view, const struct deviation *d)
{
        json_t *list = json_array();
        struct entry *sorted = malloc((d->timeline_cnt + 1) * sizeof(*sorted));
        if (!list || !sorted) {
                free(sorted);
                json_decref(list);
                return NULL;
        }
        memcpy(sorted, d->timeline, d->timeline_cnt * sizeof(*sorted));
        qsort(sorted, d->timeline_cnt, sizeof(*sorted), entry_order);
        for (uint32_t i = 0; i < d->timeline_cnt; i++) {
                const struct entry *e = &sorted[i];
                json_t *item = json_pack("{s:o,s:s,s:o}", "at", time_json(e->at), "event",
                                         kind_names[e->kind], "party", party_json(e->party));
                static const char *const label_names[] = {
                    [AVK_VIEW_ROUTED] = "decision",
                    [AVK_VIEW_ESCALATED] = "step",
                    [AVK_VIEW_REMINDED] = "deadline",
                };
                if (e->kind == AVK_VIEW_ROUTED || e->kind == AVK_VIEW_ESCALATED ||
                    e->kind == AVK_VIEW_REMINDED)
                        json_object_set_new(item, "hop", json_integer(e->hop));
                if (is_response(e->kind)) {
                        /* The desk speaks in its record_party's name: say who it was. */
                        if (e->by_desk)
                                json_object_set_new(item, "responder",
                                                    json_string(AVK_DIRECTORY_DESK_RESPONDER));
                        json_array_append_new(list, item);
                        continue;
                }
                if (e->label && e->kind < sizeof(label_names) / sizeof(label_names[0]) &&
                    label_names[e->kind])
                        json_object_set_new(item, label_names[e->kind],
                                            json_string(interned(view, e->label)));
                if (e->rule)
                        json_object_set_new(item, "rule", json_string(interned(view, e->rule)));
                if (e->reason && interned(view, e->reason)[0])
                        json_object_set_new(item, "reason", json_string(interned(view, e->reason)));
                json_array_append_new(list, item);
        }
        free(sorted);
        return list;
}

json_t *avk_view_lookup(avk_view_t *view, const char *deviation_id, int party, int64_t now_ms)
{
        unsigned char id[16];
        if (parse_id(deviation_id, id) != 0)
                return NULL;
        json_t *doc = NULL;
        pthread_rwlock_rdlock(&view->lock);
        const struct deviation *d = find(view, id);
        if (!d || !involved(view, d, party))
                goto out;
        char text_id[UUID_TEXT];
        uuid_unparse_lower(d->id, text_id);
        json_t *answer = json_null();
        if (d->answer) {
                const char *plan = d->answer + strlen(d->answer) + 1;
                answer =
                    json_pack("{s:o,s:o,s:o}", "answered_at", time_json(answered_at(d)), "analysis",
                              text_json(d->answer), "action_plan", text_json(plan));
        }
        doc = json_pack("{s:s,s:s,s:i,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "deviation_id",
                        text_id, "state", state_name(d), "version", (int)d->version, "filed_at",
                        time_json(d->filed_at), "reporter_party", party_json(d->reporter),
                        "receiver_party", party_json(d->receiver), "deadline_rule",
                        text_json(interned(view, d->deadline_rule)), "deadlines",
                        deadlines_json(d, now_ms), "deadline_kept",
                        d->deadline_kept < 0 ? json_null() : json_boolean(d->deadline_kept),
                        "overdue", json_boolean(d->overdue), "answer", answer, "dispute_until",
                        time_json(d->state == ST_CLOSED ? -1 : dispute_until(view, d)), "timeline",
                        timeline_json(view, d));
        if (doc && d->reporter == party)
                json_object_set_new(doc, "reply_reference", text_json(d->reply_reference));
out:
        pthread_rwlock_unlock(&view->lock);
        return doc;
}

static int state_matches(const struct deviation *d, const char *state)
{
        if (strcmp(state, "all") == 0)
                return 1;
        if (strcmp(state, "answered") == 0)
                return d->state == ST_ANSWERED;
        if (strcmp(state, "closed") == 0)
                return d->state == ST_CLOSED;
        return d->state != ST_ANSWERED && d->state != ST_CLOSED; /* open */
}

/* Newest first: filing time, then id, both descending. */
static int newer(int64_t at_a, const unsigned char *id_a, int64_t at_b, const unsigned char *id_b)
{
        if (at_a != at_b)
                return at_a > at_b;
        return memcmp(id_a, id_b, 16) > 0;
}

struct match {
        int64_t at;
        const struct deviation *d;
};

static int match_order(const void *a, const void *b)
{
        const struct match *x = a, *y = b;
        if (newer(x->at, x->d->id, y->at, y->d->id))
                return -1;
        return newer(y->at, y->d->id, x->at, x->d->id) ? 1 : 0;
}

static json_t *summary_json(const avk_view_t *view, const struct deviation *d, int party,
                            int64_t now_ms)
{
        char text_id[UUID_TEXT];
        uuid_unparse_lower(d->id, text_id);
        json_t *item = json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o}", "deviation_id", text_id,
                                 "state", state_name(d), "filed_at", time_json(d->filed_at),
                                 "reporter_party", party_json(d->reporter), "receiver_party",
                                 party_json(d->receiver), "deadlines", deadlines_json(d, now_ms),
                                 "overdue", json_boolean(d->overdue), "dispute_until",
                                 time_json(d->state == ST_CLOSED ? -1 : dispute_until(view, d)));
        if (item && d->reporter == party)
                json_object_set_new(item, "reply_reference", text_json(d->reply_reference));
        return item;
}

json_t *avk_view_list(avk_view_t *view, const struct avk_view_query *q, int64_t now_ms, int *more,
                      int64_t *last_at, unsigned char last_id[16])
{
        json_t *items = json_array();
        *more = 0;
        pthread_rwlock_rdlock(&view->lock);
        struct match *matches = malloc((view->cnt + 1) * sizeof(*matches));
        size_t n = 0;
        if (!items || !matches)
                goto fail;
        for (size_t i = 0; i < view->cnt; i++) {
                const struct deviation *d = at(view, (uint32_t)i);
                int mine = q->receiver ? routed_to(view, d, q->party) : d->reporter == q->party;
                if (!mine || d->filed_at < q->since_ms || !state_matches(d, q->state) ||
                    (q->after && !newer(q->after_at, q->after_id, d->filed_at, d->id)))
                        continue;
                matches[n++] = (struct match){d->filed_at, d};
        }
        qsort(matches, n, sizeof(*matches), match_order);
        for (size_t i = 0; i < n && i < q->limit; i++) {
                json_t *item = summary_json(view, matches[i].d, q->party, now_ms);
                if (!item || json_array_append_new(items, item) != 0)
                        goto fail;
        }
        if (n > q->limit && q->limit > 0) {
                *more = 1;
                *last_at = matches[q->limit - 1].at;
                memcpy(last_id, matches[q->limit - 1].d->id, 16);
        }
        pthread_rwlock_unlock(&view->lock);
        free(matches);
        return items;
fail:
        pthread_rwlock_unlock(&view->lock);
        free(matches);
        json_decref(items);
        return NULL;
}

/* ---- following the topics ------------------------------------------------ */

/* The fields each topic's applier reads, by path, in the order of its
 * constants: found in the schema's compiled program once, at start. */
enum { R_KIND, R_DIGEST, R_DEVIATION_ID, R_FILED_AT, R_PARTY, R_REPLY_REFERENCE };
static const char *const receipt_fields[] = {
    "kind", "digest", "deviation_id", "filed_at", "party", "reply_reference", NULL};
enum {
        RT_DEVIATION_ID,
        RT_ROUTED_AT,
        RT_RECEIVER,
        RT_REPORTER,
        RT_HOP,
        RT_DECISION,
        RT_RULE_ID,
        RT_REASON
};
static const char *const routed_fields[] = {"deviation_id",   "routed_at", "receiver_party",
                                            "reporter_party", "hop",       "decision",
                                            "rule_id",        "reason",    NULL};
enum {
        RS_KIND,
        RS_DEVIATION_ID,
        RS_RESPONDED_AT,
        RS_PARTY,
        RS_ANALYSIS,
        RS_ACTION_PLAN,
        RS_RESPONSE_ID,
        RS_RESPONDER
};
static const char *const response_fields[] = {"kind",        "deviation_id", "responded_at",
                                              "party",       "analysis",     "action_plan",
                                              "response_id", "responder",    NULL};
enum {
        ST_DEVIATION_ID,
        ST_VERSION,
        ST_STATE,
        ST_CHANGED_AT,
        ST_REPORTER,
        ST_RECEIVER,
        ST_DEADLINE_RULE,
        ST_ACK_DEADLINE,
        ST_ANSWER_DEADLINE,
        ST_ACKNOWLEDGED_AT,
        ST_ANSWERED_AT,
        ST_CLOSED_AT,
        ST_DEADLINE_KEPT,
        ST_OVERDUE,
        ST_ESCALATION_STEP,
        ST_PENDING_STEP
};
static const char *const status_fields[] = {"deviation_id",
                                            "version",
                                            "state",
                                            "changed_at",
                                            "reporter_party",
                                            "receiver_party",
                                            "deadline_rule",
                                            "acknowledge_deadline_at",
                                            "answer_deadline_at",
                                            "acknowledged_at",
                                            "answered_at",
                                            "closed_at",
                                            "deadline_kept",
                                            "overdue",
                                            "escalation_step",
                                            "pending_step",
                                            NULL};
enum { ES_DEVIATION_ID, ES_ESCALATED_AT, ES_PARTY, ES_HOP, ES_STEP, ES_REASON };
static const char *const escalated_fields[] = {"deviation_id", "escalated_at", "party", "hop",
                                               "step",         "reason",       NULL};
enum { RM_DEVIATION_ID, RM_REMINDED_AT, RM_RECEIVER, RM_HOP, RM_KIND };
static const char *const reminder_fields[] = {"deviation_id", "reminded_at", "receiver_party",
                                              "hop",          "kind",        NULL};

/* A record's text field, NUL-terminated in the follower's scratch (valid
 * until its next record), its length in *len; NULL when the field is null. */
static const char *text_at(const struct follower *f, int field, size_t *len)
{
        *len = f->text_len[field];
        return f->text[field];
}

static const char *text(const struct follower *f, int field)
{
        return f->text[field];
}

/* A number field; when_null for a null. */
static int64_t number(const struct follower *f, const avk_avroprog_slot_t *slots, int field,
                      int64_t when_null)
{
        const avk_slotfield_t *sf = &f->fields[field];
        return avk_slotfield_is_null(sf, slots) ? when_null : avk_slotfield_long(sf, slots);
}

/* Copies the record's text fields (strings, bytes, enum symbols) into the
 * follower's scratch, each NUL-terminated: the view keeps C strings, and a
 * slot's string is a view into the record, without its NUL. -1 when out of
 * memory. */
static int copy_texts(struct follower *f, const avk_avroprog_slot_t *slots)
{
        size_t need = 0;
        for (size_t i = 0; i < f->field_cnt; i++) {
                size_t len = 0;
                if (avk_slotfield_text(&f->fields[i], slots, &len))
                        need += len + 1;
        }
        if (need > f->scratch_cap) {
                char *grown = realloc(f->scratch, need);
                if (!grown)
                        return -1;
                f->scratch = grown;
                f->scratch_cap = need;
        }
        char *at = f->scratch;
        for (size_t i = 0; i < f->field_cnt; i++) {
                size_t len = 0;
                const char *t = avk_slotfield_text(&f->fields[i], slots, &len);
                f->text[i] = t ? at : NULL;
                f->text_len[i] = t ? len : 0;
                if (!t)
                        continue;
                memcpy(at, t, len);
                at[len] = '\0';
                at += len + 1;
        }
        return 0;
}

/* A party field as a number; -1 with the reason. */
static int party_field(const struct follower *f, int field, char *errstr, size_t errstr_size)
{
        const char *code = text(f, field);
        char reason[128];
        int party = code ? avk_party_parse(code, reason, sizeof(reason)) : -1;
        if (party < 0)
                snprintf(errstr, errstr_size, "%s: %s", f->paths[field], code ? reason : "missing");
        return party;
}

static int add_or_say(struct follower *f, const struct avk_view_event *e, char *errstr,
                      size_t errstr_size)
{
        if (avk_view_add(f->view, e) == 0)
                return 0;
        snprintf(errstr, errstr_size, "deviation_id: not a UUID, or out of memory");
        return -1;
}

/* A deviation's receipt (common/contract/receipt.h) is what the view knows
 * of its filing: the view never reads topic.reported, which holds the
 * patient. A response's receipt adds nothing: topic.response is read. */
static int apply_receipt(struct follower *f, const rd_kafka_message_t *m,
                         const avk_avroprog_slot_t *v, char *errstr, size_t errstr_size)
{
        (void)m;
        const char *kind = text(f, R_KIND);
        if (kind && strcmp(kind, "RESPONSE") == 0)
                return 0;
        if (!kind || strcmp(kind, "DEVIATION") != 0) {
                snprintf(errstr, errstr_size, "kind: %s is not a document the view knows",
                         kind ? kind : "missing");
                return -1;
        }
        size_t len;
        const char *digest = text_at(f, R_DIGEST, &len);
        if (!digest || len != AVK_VIEW_DIGEST_SIZE) {
                snprintf(errstr, errstr_size, "digest: not %d bytes", AVK_VIEW_DIGEST_SIZE);
                return -1;
        }
        struct avk_view_event e = {.kind = AVK_VIEW_REPORTED,
                                   .deviation_id = text(f, R_DEVIATION_ID),
                                   .at = number(f, v, R_FILED_AT, 0),
                                   .party = party_field(f, R_PARTY, errstr, errstr_size),
                                   .reporter = -1,
                                   .text = {text(f, R_REPLY_REFERENCE)},
                                   .digest = (const unsigned char *)digest};
        if (e.party < 0)
                return -1;
        return add_or_say(f, &e, errstr, errstr_size);
}

static int apply_routed(struct follower *f, const rd_kafka_message_t *m,
                        const avk_avroprog_slot_t *v, char *errstr, size_t errstr_size)
{
        (void)m;
        struct avk_view_event e = {
            .kind = AVK_VIEW_ROUTED,
            .deviation_id = text(f, RT_DEVIATION_ID),
            .at = number(f, v, RT_ROUTED_AT, 0),
            .party = party_field(f, RT_RECEIVER, errstr, errstr_size),
            .reporter = party_field(f, RT_REPORTER, errstr, errstr_size),
            .hop = (int32_t)number(f, v, RT_HOP, 0),
            .label = text(f, RT_DECISION),
            .rule = text(f, RT_RULE_ID),
            .reason = text(f, RT_REASON),
        };
        if (e.party < 0 || e.reporter < 0)
                return -1;
        return add_or_say(f, &e, errstr, errstr_size);
}

static int apply_response(struct follower *f, const rd_kafka_message_t *m,
                          const avk_avroprog_slot_t *v, char *errstr, size_t errstr_size)
{
        static const char *const kinds[] = {
            [AVK_VIEW_ACKNOWLEDGED] = "ACKNOWLEDGED",
            [AVK_VIEW_ANSWERED] = "ANSWERED",
            [AVK_VIEW_REJECTED_WRONG_RECEIVER] = "REJECTED_WRONG_RECEIVER",
            [AVK_VIEW_DISPUTED] = "DISPUTED",
            [AVK_VIEW_ESCALATION_CONFIRMED] = "ESCALATION_CONFIRMED",
        };
        const char *kind = text(f, RS_KIND);
        const char *responder = text(f, RS_RESPONDER);
        unsigned char digest[AVK_VIEW_DIGEST_SIZE];
        struct avk_view_event e = {
            .deviation_id = text(f, RS_DEVIATION_ID),
            .at = number(f, v, RS_RESPONDED_AT, 0),
            .party = party_field(f, RS_PARTY, errstr, errstr_size),
            .reporter = -1,
            .text = {text(f, RS_ANALYSIS), text(f, RS_ACTION_PLAN)},
            .response_id = text(f, RS_RESPONSE_ID),
            .digest = avk_receipt_digest(m->payload, m->len, digest) == 0 ? digest : NULL,
            .by_desk = responder && strcmp(responder, AVK_DIRECTORY_DESK_RESPONDER) == 0};
        for (int k = AVK_VIEW_ACKNOWLEDGED; kind && k <= AVK_VIEW_ESCALATION_CONFIRMED; k++)
                if (kinds[k] && strcmp(kind, kinds[k]) == 0)
                        e.kind = (enum avk_view_kind)k;
        if (e.kind == AVK_VIEW_REPORTED) {
                snprintf(errstr, errstr_size, "kind: %s is not a response the view shows",
                         kind ? kind : "missing");
                return -1;
        }
        if (e.party < 0)
                return -1;
        return add_or_say(f, &e, errstr, errstr_size);
}

static int apply_escalated(struct follower *f, const rd_kafka_message_t *m,
                           const avk_avroprog_slot_t *v, char *errstr, size_t errstr_size)
{
        (void)m;
        struct avk_view_event e = {.kind = AVK_VIEW_ESCALATED,
                                   .deviation_id = text(f, ES_DEVIATION_ID),
                                   .at = number(f, v, ES_ESCALATED_AT, 0),
                                   .party = party_field(f, ES_PARTY, errstr, errstr_size),
                                   .reporter = -1,
                                   .hop = (int32_t)number(f, v, ES_HOP, 0),
                                   .label = text(f, ES_STEP),
                                   .reason = text(f, ES_REASON)};
        if (e.party < 0)
                return -1;
        return add_or_say(f, &e, errstr, errstr_size);
}

static int apply_reminder(struct follower *f, const rd_kafka_message_t *m,
                          const avk_avroprog_slot_t *v, char *errstr, size_t errstr_size)
{
        (void)m;
        struct avk_view_event e = {.kind = AVK_VIEW_REMINDED,
                                   .deviation_id = text(f, RM_DEVIATION_ID),
                                   .at = number(f, v, RM_REMINDED_AT, 0),
                                   .party = party_field(f, RM_RECEIVER, errstr, errstr_size),
                                   .reporter = -1,
                                   .hop = (int32_t)number(f, v, RM_HOP, 0),
                                   .label = text(f, RM_KIND)};
        if (e.party < 0)
                return -1;
        return add_or_say(f, &e, errstr, errstr_size);
}

static int apply_status(struct follower *f, const rd_kafka_message_t *m,
                        const avk_avroprog_slot_t *v, char *errstr, size_t errstr_size)
{
        (void)m;
        struct avk_view_status s = {
            .deviation_id = text(f, ST_DEVIATION_ID),
            .version = (int32_t)number(f, v, ST_VERSION, 0),
            .state = text(f, ST_STATE),
            .changed_at = number(f, v, ST_CHANGED_AT, 0),
            .reporter = party_field(f, ST_REPORTER, errstr, errstr_size),
            .receiver = party_field(f, ST_RECEIVER, errstr, errstr_size),
            .deadline_rule = text(f, ST_DEADLINE_RULE),
            .acknowledge_deadline_at = number(f, v, ST_ACK_DEADLINE, 0),
            .answer_deadline_at = number(f, v, ST_ANSWER_DEADLINE, 0),
            .acknowledged_at = number(f, v, ST_ACKNOWLEDGED_AT, -1),
            .answered_at = number(f, v, ST_ANSWERED_AT, -1),
            .closed_at = number(f, v, ST_CLOSED_AT, -1),
            .deadline_kept = (int)number(f, v, ST_DEADLINE_KEPT, -1),
            .overdue = (int)number(f, v, ST_OVERDUE, 0),
            .escalation_step = text(f, ST_ESCALATION_STEP),
            .pending_step = text(f, ST_PENDING_STEP),
        };
        if (s.reporter < 0 || s.receiver < 0)
                return -1;
        if (avk_view_status(f->view, &s) == 0)
                return 0;
        snprintf(errstr, errstr_size, "deviation_id or state: not usable, or out of memory");
        return -1;
}

static int follow_apply(void *opaque, const rd_kafka_message_t *m, const avk_avroprog_slot_t *slots,
                        char *errstr, size_t errstr_size)
{
        struct follower *f = opaque;
        if (copy_texts(f, slots) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        return f->apply(f, m, slots, errstr, errstr_size);
}

static void follow_loaded(void *opaque)
{
        struct follower *f = opaque;
        if (atomic_fetch_add(&f->view->loaded_cnt, 1) + 1 == TOPIC_CNT)
                avk_log(AVK_LOG_INFO, "view", "lifecycle topics read: %zu deviations",
                        avk_view_size(f->view));
}

static void *follow_thread(void *arg)
{
        struct follower *f = arg;
        struct avk_follow follow = {
            .rk = f->rk,
            .codec = f->codec,
            .schema = f->schema,
            .topic = f->topic,
            .component = "view",
            .stopping = &f->view->stopping,
            .opaque = f,
            .apply_slots = follow_apply,
            .loaded = follow_loaded,
        };
        avk_follow_run(&follow);
        return NULL;
}

static int start_follower(avk_view_t *view, struct follower *f, const char *topic_key, char *errstr,
                          size_t errstr_size)
{
        const avk_config_t *cfg = view->env.cfg;
        f->view = view;
        f->topic = avk_config_get(cfg, topic_key);
        if (!(f->schema = avk_env_topic_schema(&view->env, f->topic, errstr, errstr_size)))
                return -1;
        if (!(f->codec = avk_codec_new(view->env.catalog, view->env.registry))) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        const avk_avroprog_t *prog = avk_codec_program(f->codec, f->schema);
        if (!prog) {
                snprintf(errstr, errstr_size, "%s: its schema does not compile", f->topic);
                return -1;
        }
        for (f->field_cnt = 0; f->paths[f->field_cnt]; f->field_cnt++) {
                if (f->field_cnt == FIELD_MAX) {
                        snprintf(errstr, errstr_size, "%s: more than %d fields read", f->topic,
                                 FIELD_MAX);
                        return -1;
                }
                if (avk_slotfield_find(&f->fields[f->field_cnt], prog, f->schema,
                                       f->paths[f->field_cnt], errstr, errstr_size) != 0)
                        return -1;
        }
        rd_kafka_conf_t *conf = avk_kafka_conf(cfg, errstr, errstr_size);
        if (!conf)
                return -1;
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        /* The group id is never joined (partitions are assigned): it only
         * names the client in the broker's logs. */
        if (!(f->rk = avk_kafka_consumer_new(conf, "avvik-gateway-view", errstr, errstr_size))) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        if (pthread_create(&f->thread, NULL, follow_thread, f) != 0) {
                snprintf(errstr, errstr_size, "cannot start the view's thread for %s", f->topic);
                return -1;
        }
        f->started = 1;
        return 0;
}

int avk_view_start(avk_view_t *view, const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        static const char *const topic_keys[TOPIC_CNT] = {
            "topic.intake.receipts", "topic.routed",    "topic.response",
            "topic.status",          "topic.escalated", "topic.reminder"};
        static int (*const appliers[TOPIC_CNT])(struct follower *, const rd_kafka_message_t *,
                                                const avk_avroprog_slot_t *, char *, size_t) = {
            apply_receipt, apply_routed,    apply_response,
            apply_status,  apply_escalated, apply_reminder};
        static const char *const *const fields[TOPIC_CNT] = {receipt_fields,   routed_fields,
                                                             response_fields,  status_fields,
                                                             escalated_fields, reminder_fields};
        if (avk_env_open(&view->env, cfg, errstr, errstr_size) != 0)
                return -1;
        view->env_open = 1;
        for (int i = 0; i < TOPIC_CNT; i++) {
                view->followers[i].apply = appliers[i];
                view->followers[i].paths = fields[i];
                if (start_follower(view, &view->followers[i], topic_keys[i], errstr, errstr_size) !=
                    0)
                        return -1;
        }
        return 0;
}

void avk_view_destroy(avk_view_t *view)
{
        if (!view)
                return;
        atomic_store(&view->stopping, 1);
        for (int i = 0; i < TOPIC_CNT; i++) {
                struct follower *f = &view->followers[i];
                if (f->started)
                        pthread_join(f->thread, NULL);
                if (f->rk) {
                        avk_kafka_consumer_close(
                            f->rk,
                            (int)avk_config_get_int(view->env.cfg, "consumer.close.timeout.ms"),
                            "view");
                        rd_kafka_destroy_flags(f->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
                }
                avk_codec_destroy(f->codec);
                free(f->scratch);
        }
        if (view->env_open)
                avk_env_close(&view->env);
        for (size_t i = 0; i < view->cnt; i++) {
                struct deviation *d = at(view, (uint32_t)i);
                free(d->reply_reference);
                free(d->answer);
                free(d->timeline);
        }
        for (size_t i = 0; i < view->chunk_cnt; i++)
                free(view->chunks[i]);
        free(view->chunks);
        for (size_t i = 0; i < view->string_cnt; i++)
                free(view->strings[i]);
        free(view->strings);
        avk_slotidx_destroy(&view->index);
        avk_slotidx_destroy(&view->string_index);
        pthread_rwlock_destroy(&view->lock);
        free(view);
}
