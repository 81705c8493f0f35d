/*
 * avk_feedback: see feedback.h; the event's fields are in
 * schemas/deviation_feedback.avsc, the reasoning in docs/notify.md ("What
 * the reporting party gets").
 *
 * The filings are kept in the project's hash table (common/util/hash.h), one
 * allocation each: the node, the id, the unit and the reply reference. Only
 * deviations that may still change are held: a deviation leaves when it
 * closes, and the tracker's rebuild forgets those its changelog says are
 * closed.
 *
 * What a rebuild reads back of topic.feedback is a set of 64-bit hashes of
 * each (deviation_id, version) with its partition and whether the changelog
 * had the version (an array indexed by the project's slot index), about 34
 * bytes a record, freed when the rebuild ends but for the versions the
 * changelog did not have; two pairs with one hash (2^-64 a pair) would take a
 * missing feedback for one written. A feedback owed is a copy of its status
 * record's strings and the filing's, in the hash table under its deviation id;
 * there are as many as a crash left half-written, and as many feedback records
 * that landed ahead of their status record.
 */
#include "consumer/track/feedback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/avro_field.h"
#include "common/contract/ident.h"
#include "common/util/hash.h"

#define INITIAL_BUCKETS 1024
#define OWED_BUCKETS    16

/* UUIDv5 namespace of DeviationFeedback.event_id (docs/notify.md). */
static const char feedback_namespace[] = "9d3a6e21-47c8-5b1f-a2e4-6c0b8f7d1e35";

struct filing {
        struct avk_hnode node;
        int partition;
        const char *unit, *reply_reference; /* NULL for none; point into text */
        char id[AVK_IDENT_UUID_SIZE];
        char text[];
};

/* A status record whose feedback was not read back, with the filing as it
 * was then (a closed deviation's is forgotten before its input is read
 * again). Only the fields the feedback is made of are kept. */
struct owed {
        struct avk_hnode node;
        struct avk_track_status s; /* strings point into text */
        const char *unit, *reply_reference;
        int now; /* caused by no input: written at the end of the rebuild */
        char text[];
};

/* A (deviation, version) whose feedback is in topic.feedback. */
struct written {
        uint64_t hash;
        int32_t partition;
        int32_t has_status; /* its status record was read back too */
};

struct avk_feedback {
        const avk_deadlines_t *policy;
        const avk_directory_t *dir;
        avk_htab_t filings, owed;
        uint64_t seed;
        /* The rebuild's read-back of topic.feedback. */
        struct written *read_back;
        size_t read_back_cnt, read_back_cap;
        avk_slotidx_t read_back_idx;
        /* Read back without their status record: written once that status is (a few at most,
         * what a crash left; searched in order). */
        struct written *ahead;
        size_t ahead_cnt, ahead_cap;
};

static int filing_eq(const struct avk_hnode *node, const void *key)
{
        return strcmp(avk_container_of(node, struct filing, node)->id, key) == 0;
}

static uint64_t hash_of(const avk_feedback_t *fb, const char *id)
{
        return avk_hash_bytes(id, strlen(id), fb->seed);
}

static struct filing *find(const avk_feedback_t *fb, const char *id)
{
        struct avk_hnode *node = avk_htab_find(&fb->filings, hash_of(fb, id), filing_eq, id);
        return node ? avk_container_of(node, struct filing, node) : NULL;
}

avk_feedback_t *avk_feedback_new(const avk_deadlines_t *policy, const avk_directory_t *dir)
{
        avk_feedback_t *fb = calloc(1, sizeof(*fb));
        if (!fb || avk_htab_init(&fb->filings, INITIAL_BUCKETS) != 0) {
                free(fb);
                return NULL;
        }
        if (avk_htab_init(&fb->owed, OWED_BUCKETS) != 0) {
                avk_htab_destroy(&fb->filings);
                free(fb);
                return NULL;
        }
        fb->policy = policy;
        fb->dir = dir;
        fb->seed = avk_hash_seed();
        return fb;
}

/* Removes and frees every filing for which drop(filing, arg) is true. */
static void sweep(avk_feedback_t *fb, int (*drop)(const struct filing *f, const void *arg),
                  const void *arg)
{
        struct avk_hiter it;
        struct avk_hnode *node;
        avk_hiter_init(&it, &fb->filings);
        while ((node = avk_hiter_next(&it, &fb->filings))) {
                struct filing *f = avk_container_of(node, struct filing, node);
                if (drop(f, arg)) {
                        avk_htab_remove(&fb->filings, node);
                        free(f);
                }
        }
}

static int any(const struct filing *f, const void *arg)
{
        (void)f;
        (void)arg;
        return 1;
}

static int of_partition(const struct filing *f, const void *arg)
{
        return f->partition == *(const int *)arg;
}

/* Frees the feedback owed of partition, or all with partition -1. */
static void sweep_owed(avk_feedback_t *fb, int partition)
{
        struct avk_hiter it;
        struct avk_hnode *node;
        avk_hiter_init(&it, &fb->owed);
        while ((node = avk_hiter_next(&it, &fb->owed))) {
                struct owed *o = avk_container_of(node, struct owed, node);
                if (partition < 0 || o->s.partition == partition) {
                        avk_htab_remove(&fb->owed, node);
                        free(o);
                }
        }
}

void avk_feedback_destroy(avk_feedback_t *fb)
{
        if (!fb)
                return;
        sweep(fb, any, NULL);
        sweep_owed(fb, -1);
        avk_feedback_read_back_done(fb);
        free(fb->ahead);
        avk_htab_destroy(&fb->filings);
        avk_htab_destroy(&fb->owed);
        free(fb);
}

int avk_feedback_reported(avk_feedback_t *fb, const char *deviation_id, const char *unit,
                          const char *reply_reference, int partition)
{
        size_t id_len = strlen(deviation_id);
        if (id_len >= AVK_IDENT_UUID_SIZE || find(fb, deviation_id))
                return 0;
        size_t unit_len = unit ? strlen(unit) + 1 : 0;
        size_t ref_len = reply_reference ? strlen(reply_reference) + 1 : 0;
        struct filing *f = malloc(sizeof(*f) + unit_len + ref_len);
        if (!f)
                return -1;
        memcpy(f->id, deviation_id, id_len + 1);
        f->partition = partition;
        f->unit = unit ? memcpy(f->text, unit, unit_len) : NULL;
        f->reply_reference =
            reply_reference ? memcpy(f->text + unit_len, reply_reference, ref_len) : NULL;
        avk_htab_insert(&fb->filings, &f->node, hash_of(fb, deviation_id));
        return 0;
}

int avk_feedback_known(const avk_feedback_t *fb, const char *deviation_id)
{
        return find(fb, deviation_id) != NULL;
}

void avk_feedback_forget(avk_feedback_t *fb, const char *deviation_id)
{
        struct filing *f = find(fb, deviation_id);
        if (!f)
                return;
        avk_htab_remove(&fb->filings, &f->node);
        free(f);
}

void avk_feedback_drop_partition(avk_feedback_t *fb, int partition)
{
        sweep(fb, of_partition, &partition);
        sweep_owed(fb, partition);
        size_t kept = 0;
        for (size_t i = 0; i < fb->ahead_cnt; i++) {
                if (fb->ahead[i].partition != partition)
                        fb->ahead[kept++] = fb->ahead[i];
        }
        fb->ahead_cnt = kept;
}

/* ---- after a crash: what the rebuild reads back, what is owed ---- */

/* The version goes into the seed: XXH3 under another seed is another hash. */
static uint64_t version_hash(const avk_feedback_t *fb, const char *deviation_id, int version)
{
        return avk_hash_bytes(deviation_id, strlen(deviation_id),
                              fb->seed ^ ((uint64_t)(uint32_t)version * 0x9e3779b97f4a7c15u));
}

static uint64_t read_back_hash(uint32_t slot, const void *ctx)
{
        return ((const avk_feedback_t *)ctx)->read_back[slot].hash;
}

static int read_back_eq(uint32_t slot, const void *key, const void *ctx)
{
        return ((const avk_feedback_t *)ctx)->read_back[slot].hash == *(const uint64_t *)key;
}

/* The read-back entry of hash h, or NULL. */
static struct written *read_back_of(const avk_feedback_t *fb, uint64_t h)
{
        if (!fb->read_back_cnt)
                return NULL;
        uint32_t slot = avk_slotidx_find(&fb->read_back_idx, h, read_back_eq, &h, fb);
        return slot == AVK_SLOTIDX_NONE ? NULL : &fb->read_back[slot];
}

/* Makes room for one more in *arr of *cap entries with cnt used, starting at first entries.
 * @returns 0, or -1 when out of memory. */
static int room_for_one(struct written **arr, size_t cnt, size_t *cap, size_t first)
{
        if (cnt < *cap)
                return 0;
        size_t grown_cap = *cap ? 2 * *cap : first;
        struct written *grown = realloc(*arr, grown_cap * sizeof(*grown));
        if (!grown)
                return -1;
        *arr = grown;
        *cap = grown_cap;
        return 0;
}

/* Adds hash h of a (deviation, version) of partition to the read-back set; has_status says
 * whether its status record was read. @returns 0, or -1 when out of memory. */
static int remember(avk_feedback_t *fb, uint64_t h, int partition, int has_status)
{
        if (read_back_of(fb, h))
                return 0;
        /* The index exists while the array has room (read_back_cap > 0). */
        int first = !fb->read_back_cap;
        if (first && avk_slotidx_init(&fb->read_back_idx, INITIAL_BUCKETS) != 0)
                return -1;
        if (room_for_one(&fb->read_back, fb->read_back_cnt, &fb->read_back_cap, INITIAL_BUCKETS) !=
            0) {
                if (first)
                        avk_slotidx_destroy(&fb->read_back_idx);
                return -1;
        }
        fb->read_back[fb->read_back_cnt] =
            (struct written){.hash = h, .partition = partition, .has_status = has_status};
        if (avk_slotidx_insert(&fb->read_back_idx, h, (uint32_t)fb->read_back_cnt, read_back_hash,
                               fb) != 0)
                return -1;
        fb->read_back_cnt++;
        return 0;
}

int avk_feedback_read_back(avk_feedback_t *fb, const char *deviation_id, int version, int partition,
                           int64_t timestamp, int64_t since)
{
        return timestamp < since
                   ? 0
                   : remember(fb, version_hash(fb, deviation_id, version), partition, 0);
}

void avk_feedback_read_back_done(avk_feedback_t *fb)
{
        if (fb->read_back_cap)
                avk_slotidx_destroy(&fb->read_back_idx);
        free(fb->read_back);
        fb->read_back = NULL;
        fb->read_back_cnt = fb->read_back_cap = 0;
}

int avk_feedback_rebuilt(avk_feedback_t *fb)
{
        int rc = 0;
        for (size_t i = 0; i < fb->read_back_cnt && rc == 0; i++) {
                if (fb->read_back[i].has_status)
                        continue;
                rc = room_for_one(&fb->ahead, fb->ahead_cnt, &fb->ahead_cap, OWED_BUCKETS);
                if (rc == 0)
                        fb->ahead[fb->ahead_cnt++] = fb->read_back[i];
        }
        avk_feedback_read_back_done(fb);
        return rc;
}

/* Whether the feedback of hash h landed ahead of its status record; it is then taken out: the
 * version is written once. */
static int took_ahead(avk_feedback_t *fb, uint64_t h)
{
        for (size_t i = 0; i < fb->ahead_cnt; i++) {
                if (fb->ahead[i].hash == h) {
                        fb->ahead[i] = fb->ahead[--fb->ahead_cnt];
                        return 1;
                }
        }
        return 0;
}

size_t avk_feedback_ahead_count(const avk_feedback_t *fb)
{
        return fb->ahead_cnt;
}

/* Copies s into *at (advanced past it); NULL stays NULL. */
static const char *put(char **at, const char *s)
{
        if (!s)
                return NULL;
        size_t n = strlen(s) + 1;
        char *copy = memcpy(*at, s, n);
        *at += n;
        return copy;
}

static size_t len_of(const char *s)
{
        return s ? strlen(s) + 1 : 0;
}

int avk_feedback_check(avk_feedback_t *fb, const struct avk_track_status *s, int64_t timestamp,
                       int64_t since)
{
        uint64_t h = version_hash(fb, s->deviation_id, s->version);
        if (timestamp < since || !avk_feedback_kind(s))
                return 0;
        struct written *w = read_back_of(fb, h);
        if (w) {
                w->has_status = 1;
                return 0;
        }
        /* A status record written twice (an output in flight at a kill) owes one feedback. */
        if (remember(fb, h, s->partition, 1) != 0)
                return -1;
        const struct filing *f = find(fb, s->deviation_id);
        const char *unit = f ? f->unit : NULL, *ref = f ? f->reply_reference : NULL;
        struct owed *o = malloc(sizeof(*o) + len_of(s->deviation_id) + len_of(s->cause) +
                                len_of(s->reporter_party) + len_of(s->receiver_party) +
                                len_of(s->receiver_unit) + len_of(s->category) +
                                len_of(s->harm_level) + len_of(unit) + len_of(ref));
        if (!o)
                return -1;
        /* What avk_feedback_fill() reads of a status; the rest is not the reporter's. */
        char *at = o->text;
        o->s = (struct avk_track_status){.deviation_id = put(&at, s->deviation_id),
                                         .version = s->version,
                                         .state = s->state,
                                         .changed_at = s->changed_at,
                                         .cause = put(&at, s->cause),
                                         .hop = s->hop,
                                         .reporter_party = put(&at, s->reporter_party),
                                         .receiver_party = put(&at, s->receiver_party),
                                         .receiver_unit = put(&at, s->receiver_unit),
                                         .category = put(&at, s->category),
                                         .harm_level = put(&at, s->harm_level),
                                         .lex_maria = s->lex_maria,
                                         .answer_deadline_at = s->answer_deadline_at,
                                         .answered_at = s->answered_at,
                                         .step = s->step,
                                         .partition = s->partition};
        o->unit = put(&at, unit);
        o->reply_reference = put(&at, ref);
        o->now = strncmp(s->cause, "deadline:", 9) == 0;
        avk_htab_insert(&fb->owed, &o->node, hash_of(fb, s->deviation_id));
        return 1;
}

/* Whether o has cause_id for its cause, or with cause_id NULL is owed now. */
static int caused_by(const struct owed *o, const char *cause_id)
{
        return cause_id ? strcmp(o->s.cause, cause_id) == 0 : o->now;
}

struct owed_key {
        const char *deviation_id, *cause_id;
};

static int owed_eq(const struct avk_hnode *node, const void *key)
{
        const struct owed *o = avk_container_of(node, struct owed, node);
        const struct owed_key *k = key;
        return strcmp(o->s.deviation_id, k->deviation_id) == 0 && caused_by(o, k->cause_id);
}

/* The first feedback owed of deviation_id (of any deviation when NULL) caused by cause_id. */
static struct owed *owed_where(const avk_feedback_t *fb, const char *deviation_id,
                               const char *cause_id)
{
        if (!fb->owed.cnt)
                return NULL;
        if (deviation_id) {
                struct owed_key key = {deviation_id, cause_id};
                struct avk_hnode *node =
                    avk_htab_find(&fb->owed, hash_of(fb, deviation_id), owed_eq, &key);
                return node ? avk_container_of(node, struct owed, node) : NULL;
        }
        struct avk_hiter it;
        struct avk_hnode *node;
        avk_hiter_init(&it, &fb->owed);
        while ((node = avk_hiter_next(&it, &fb->owed))) {
                struct owed *o = avk_container_of(node, struct owed, node);
                if (caused_by(o, cause_id))
                        return o;
        }
        return NULL;
}

void avk_feedback_escalation_read_back(avk_feedback_t *fb, const char *deviation_id,
                                       const char *escalation_id)
{
        struct owed *o = owed_where(fb, deviation_id, escalation_id);
        if (o)
                o->now = 1;
}

const struct avk_track_status *avk_feedback_owed(const avk_feedback_t *fb, const char *deviation_id,
                                                 const char *cause_id)
{
        struct owed *o = owed_where(fb, deviation_id, cause_id);
        return o ? &o->s : NULL;
}

void avk_feedback_paid(avk_feedback_t *fb, const struct avk_track_status *owed)
{
        struct owed *o = avk_container_of(owed, struct owed, s);
        avk_htab_remove(&fb->owed, &o->node);
        free(o);
}

size_t avk_feedback_owed_count(const avk_feedback_t *fb)
{
        return fb->owed.cnt;
}

size_t avk_feedback_count(const avk_feedback_t *fb)
{
        return fb->filings.cnt;
}

const char *avk_feedback_kind(const struct avk_track_status *s)
{
        /* An overdue mark keeps the state and names a deadline as its cause. The one step a
         * missed deadline takes goes to "Chef över chef" (docs/escalation.md): a deadline's
         * ESCALATED status at another step marks a deviation already on the ladder (at a
         * forum, or at the manager with no deadline step), and is no new step to tell. */
        int overdue_mark =
            strncmp(s->cause, "deadline:", 9) == 0 && s->state != AVK_TRACK_CLOSED &&
            (s->state != AVK_TRACK_ESCALATED || s->step != AVK_TRACK_STEP_MANAGERS_MANAGER);
        if (overdue_mark)
                return NULL;
        switch (s->state) {
        case AVK_TRACK_ROUTED:
                return s->hop > 0 ? "REROUTED" : "ROUTED";
        case AVK_TRACK_ACKNOWLEDGED:
                return "ACKNOWLEDGED";
        case AVK_TRACK_ANSWERED:
                return "ANSWERED";
        case AVK_TRACK_REJECTED:
                return "REJECTED_WRONG_RECEIVER";
        case AVK_TRACK_DISPUTED:
                return "DISPUTED";
        case AVK_TRACK_ESCALATED:
                return "ESCALATED";
        case AVK_TRACK_CLOSED:
                return "CLOSED";
        default:
                return NULL;
        }
}

/* Who holds step (1..4) on the receiving side: the receiver's ladder (the
 * unit's, its party's where it names none, or the triage desk's), the local
 * forum of the sub-region. */
static const char *holder_of(const avk_feedback_t *fb, const struct avk_track_status *s)
{
        if (s->step < 1 || s->step > AVK_DIRECTORY_LADDER_STEPS)
                return NULL;
        if (s->step - 1 == AVK_DIRECTORY_LOCAL_FORUM) {
                const struct avk_directory_contact *forum =
                    avk_directory_local_forum(fb->dir, s->receiver_party, s->reporter_party);
                if (forum)
                        return forum->name;
        }
        const struct avk_directory_receiver *rc =
            avk_directory_receiver(fb->dir, s->receiver_party, s->receiver_unit);
        return rc && rc->ladder[s->step - 1] ? rc->ladder[s->step - 1]->name : NULL;
}

/* Until when an answer may be disputed: the deadline rule's window from the answer. */
static int64_t dispute_until(const avk_feedback_t *fb, const struct avk_track_status *s)
{
        const struct avk_deadline_terms *terms = avk_deadlines_lookup(
            fb->policy, s->receiver_party, s->category, s->harm_level, s->lex_maria);
        return avk_deadline_after(&terms->dispute_window, s->answered_at);
}

static int set_time(avro_value_t *v, const char *name, int64_t ms)
{
        int none = ms == AVK_TRACK_NONE || ms == AVK_DEADLINE_NEVER;
        return avk_avro_set_long(v, name, none ? 0 : ms, none);
}

/* avk_feedback_fill() with the filing's unit and reference given. */
static int fill(avk_feedback_t *fb, const struct avk_track_status *s,
                const struct avk_feedback_cause *cause, const char *unit,
                const char *reply_reference, avro_value_t *v, char id[AVK_IDENT_UUID_SIZE])
{
        const char *kind = avk_feedback_kind(s);
        if (!kind)
                return 0;
        char name[64];
        int n = snprintf(name, sizeof(name), "%s/%d", s->deviation_id, s->version);
        if (n < 0 || (size_t)n >= sizeof(name) ||
            avk_ident_uuid5(feedback_namespace, name, (size_t)n, id) != 0)
                return -1;
        if (cause && (!cause->id || strcmp(cause->id, s->cause) != 0))
                cause = NULL;
        static const struct avk_feedback_cause none;
        if (!cause)
                cause = &none;
        int routing = s->state == AVK_TRACK_ROUTED;
        int answered = s->state == AVK_TRACK_ANSWERED;
        int awaiting = s->state == AVK_TRACK_ROUTED || s->state == AVK_TRACK_ACKNOWLEDGED ||
                       s->state == AVK_TRACK_DISPUTED || s->state == AVK_TRACK_ESCALATED;
        int stepped = s->state == AVK_TRACK_ESCALATED || s->state == AVK_TRACK_DISPUTED;
        avro_value_reset(v);
        int rc =
            avk_avro_set_text(v, "event_id", id) |
            avk_avro_set_text(v, "deviation_id", s->deviation_id) |
            avk_avro_set_long(v, "version", s->version, 0) | avk_avro_set_text(v, "kind", kind) |
            avk_avro_set_long(v, "occurred_at", s->changed_at, 0) |
            avk_avro_set_text(v, "reporter_party", s->reporter_party) |
            avk_avro_set_text(v, "reporter_unit_hsa_id", unit) |
            avk_avro_set_text(v, "reply_reference", reply_reference) |
            avk_avro_set_long(v, "hop", s->hop, 0) |
            avk_avro_set_text(v, "receiver_party", s->receiver_party) |
            avk_avro_set_text(v, "receiver_unit_hsa_id", s->receiver_unit) |
            avk_avro_set_text(v, "decision", routing ? cause->decision : NULL) |
            avk_avro_set_text(v, "rule_id", routing ? cause->rule_id : NULL) |
            avk_avro_set_text(v, "reason", cause->reason) |
            avk_avro_set_text(v, "analysis", answered ? cause->analysis : NULL) |
            avk_avro_set_text(v, "action_plan", answered ? cause->action_plan : NULL) |
            avk_avro_set_text(v, "escalation_step", avk_track_step_name(s->step)) |
            avk_avro_set_text(v, "holder", stepped ? holder_of(fb, s) : NULL) |
            set_time(v, "answer_deadline_at", awaiting ? s->answer_deadline_at : AVK_TRACK_NONE) |
            set_time(v, "dispute_until",
                     answered && s->answered_at != AVK_TRACK_NONE ? dispute_until(fb, s)
                                                                  : AVK_TRACK_NONE);
        return rc ? -1 : 1;
}

int avk_feedback_fill(avk_feedback_t *fb, const struct avk_track_status *s,
                      const struct avk_feedback_cause *cause, avro_value_t *v,
                      char id[AVK_IDENT_UUID_SIZE])
{
        /* Its feedback may have landed when the status record did not: a rebuild completing the
         * status record from its escalation, or the input or timer that caused it, read again
         * or firing again after the rebuild. */
        uint64_t h = version_hash(fb, s->deviation_id, s->version);
        if (read_back_of(fb, h) || took_ahead(fb, h))
                return 0;
        const struct filing *f = find(fb, s->deviation_id);
        return fill(fb, s, cause, f ? f->unit : NULL, f ? f->reply_reference : NULL, v, id);
}

int avk_feedback_fill_owed(avk_feedback_t *fb, const struct avk_track_status *owed,
                           const struct avk_feedback_cause *cause, avro_value_t *v,
                           char id[AVK_IDENT_UUID_SIZE])
{
        const struct owed *o = avk_container_of(owed, struct owed, s);
        return fill(fb, owed, cause, o->unit, o->reply_reference, v, id);
}
