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
 */
#include "consumer/track/feedback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/avro_field.h"
#include "common/contract/ident.h"
#include "common/util/hash.h"

#define INITIAL_BUCKETS 1024

/* UUIDv5 namespace of DeviationFeedback.event_id (docs/notify.md). */
static const char feedback_namespace[] = "9d3a6e21-47c8-5b1f-a2e4-6c0b8f7d1e35";

struct filing {
        struct avk_hnode node;
        int partition;
        const char *unit, *reply_reference; /* NULL for none; point into text */
        char id[AVK_IDENT_UUID_SIZE];
        char text[];
};

struct avk_feedback {
        const avk_deadlines_t *policy;
        const avk_directory_t *dir;
        avk_htab_t filings;
        uint64_t seed;
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

void avk_feedback_destroy(avk_feedback_t *fb)
{
        if (!fb)
                return;
        sweep(fb, any, NULL);
        avk_htab_destroy(&fb->filings);
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
}

size_t avk_feedback_count(const avk_feedback_t *fb)
{
        return fb->filings.cnt;
}

const char *avk_feedback_kind(const struct avk_track_status *s)
{
        /* An overdue mark keeps the state and names a deadline as its cause. */
        int overdue_mark = strncmp(s->cause, "deadline:", 9) == 0 &&
                           s->state != AVK_TRACK_ESCALATED && s->state != AVK_TRACK_CLOSED;
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

int avk_feedback_fill(avk_feedback_t *fb, const struct avk_track_status *s,
                      const struct avk_feedback_cause *cause, avro_value_t *v,
                      char id[AVK_IDENT_UUID_SIZE])
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
        const struct filing *f = find(fb, s->deviation_id);
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
            avk_avro_set_text(v, "reporter_unit_hsa_id", f ? f->unit : NULL) |
            avk_avro_set_text(v, "reply_reference", f ? f->reply_reference : NULL) |
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
