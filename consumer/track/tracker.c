/*
 * avk_tracker: see tracker.h and docs/tracker.md.
 *
 * The tracker is its domain logic plus the hooks of the service kernel
 * (common/kafka/service.h), whose one thread runs them: the kernel polls the
 * group consumer and rebuilds on assignment; the hooks hand inputs to the
 * core (consumer/track/track.h), turn the core's actions into Avro records
 * produced through the outbox (common/kafka/outbox.h), and every
 * tracker.tick.ms advance the core to the clock's now. Atomics only for what
 * other threads read (statistics; metrics are atomic by themselves).
 *
 * Which input an action belongs to: the input being handled (its offset is
 * stored once the action's outputs are acknowledged), a kept response (the
 * core's ticket: its input stays unfinished until the core settles it), or
 * none (timers and rebuild: made safe by the changelog, not by offsets).
 */
#include "consumer/track/tracker.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "common/contract/avro_field.h"
#include "common/util/clock.h"
#include "common/contract/codec.h"
#include "common/contract/directory.h"
#include "common/util/env.h"
#include "common/util/errors.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"
#include "consumer/track/deadlines.h"
#include "consumer/track/feedback.h"
#include "common/kafka/service.h"
#include "consumer/track/track.h"

#define COMPONENT          "tracker"
#define ID_SIZE            37
#define QUANTILE_WINDOW    1024 /* answers per party the p50/p90 are taken over */
#define MAX_FIGURE_PARTIES 64
/* Waits between registrations of the output schemas while the registry does not answer. */

/* Output tags (common/kafka/outbox.h): the kind in the low bits, the status
 * version above them. */
enum { TAG_STATUS = 1, TAG_ESCALATION = 2, TAG_REMINDER = 3, TAG_BITS = 2 };

/* topic.reported gives the feedback its reporting unit and reply reference
 * (consumer/track/feedback.h). */
enum input_topic { IN_ROUTED, IN_RESPONSE, IN_FAILED, IN_REPORTED, IN_TOPICS };
/* The changelog's three topics, which the rebuild reads, then the feedback. */
enum output_topic { OUT_STATUS, OUT_ESCALATED, OUT_REMINDER, OUT_FEEDBACK, OUT_TOPICS };
#define OUT_CHANGELOG OUT_FEEDBACK

/* A response (or failure) the core keeps until its routing arrives: its
 * input stays unfinished, and its bytes are kept for the dead letter. */
struct kept_input {
        avk_outbox_input_t *input;
        uint64_t seq;
        struct avk_outbox_source src;
        LIST_ENTRY(kept_input) link;
        char data[]; /* key and value */
};

/* The last QUANTILE_WINDOW times of one party, for p50 and p90. */
struct window {
        double v[QUANTILE_WINDOW];
        size_t n, next;
};

struct figures {
        char party[8];
        struct window ack, answer;
        avk_metric_t *ack_q[2], *answer_q[2], *open, *overdue;
};

struct avk_tracker {
        struct avk_env env;
        avk_directory_t *dir;
        avk_deadlines_t *policy;
        avk_track_t *track;
        avk_feedback_t *feedback;
        struct avk_feedback_cause cause; /* of the input being handled */
        avro_value_t kept_value;         /* a kept response, read again for its feedback */
        avk_codec_t *codec;
        const avk_schema_t *in_schema[IN_TOPICS], *out_schema[OUT_TOPICS];
        avro_value_t in_value[IN_TOPICS], out_value[OUT_TOPICS];
        const char *in_topic[IN_TOPICS], *out_topic[OUT_TOPICS], *deadletter_topic;
        char group[256];
        avk_service_t *service;
        avk_outbox_t *outbox; /* the service's */
        LIST_HEAD(, kept_input) kept;

        /* The input being handled, for the actions it causes. */
        avk_outbox_input_t *cur_input;
        uint64_t cur_seq;
        int sink_failed;
        /* The registry had no answer while decoding: the input waits
         * (AVK_SERVICE_WAIT) or the rebuild is tried again; why, for the log. */
        int unavailable;
        char unavailable_why[512];
        /* Every output schema has its registry id (the codec keeps it): an output can then
         * always be encoded, so a registry outage never fails a decision half-written. */
        int outputs_registered;

        avk_tracker_clock_fn clock;
        void *clock_opaque;
        avk_clock_t processing_clock; /* the system's, or tracker.clock.file's */
        int64_t tick_ms, next_tick;
        /* A pass over the due timers judges them at processing time judge_at,
         * once the inputs were read to their end after judge_mono (mono ms; 0:
         * none pending): an answer waiting in Kafka stops its deadline. */
        int64_t judge_mono, judge_at;
        /* How far back a rebuild looks for status records without their feedback, and from when
         * (wall time: Kafka's record timestamps) the rebuild in progress does. */
        int64_t feedback_check_ms, check_since;

        atomic_ullong applied, ignored, statuses, escalations, reminders, deadlettered, rebuilds,
            open;

        avk_metrics_t *metrics;
        avk_metric_family_t *m_inputs, *m_escalations, *m_reminders, *m_open, *m_overdue, *m_ack_q,
            *m_answer_q;
        avk_metric_t *m_tick, *m_deadletter, *m_statuses, *m_kept, *m_judge_wait, *m_owed;
        struct figures *figures[MAX_FIGURE_PARTIES];
        uint64_t summary_done;
};

/* ---- time ---- */

/* Processing time: the injected clock, the test clock file, or the system's. */
static int64_t now_ms(avk_tracker_t *tr)
{
        if (tr->clock)
                return tr->clock(tr->clock_opaque);
        return avk_clock_now(&tr->processing_clock);
}

/* ---- figures ---- */

static struct figures *figures_of(avk_tracker_t *tr, const char *party)
{
        int i = 0;
        for (; i < MAX_FIGURE_PARTIES && tr->figures[i]; i++) {
                if (strcmp(tr->figures[i]->party, party) == 0)
                        return tr->figures[i];
        }
        if (i == MAX_FIGURE_PARTIES || strlen(party) >= sizeof(tr->figures[0]->party))
                return NULL;
        struct figures *f = calloc(1, sizeof(*f));
        if (!f)
                return NULL;
        snprintf(f->party, sizeof(f->party), "%s", party);
        const char *q[2] = {"0.5", "0.9"};
        for (int k = 0; k < 2; k++) {
                f->ack_q[k] = avk_metrics_series(tr->m_ack_q, (const char *[]){party, q[k]});
                f->answer_q[k] = avk_metrics_series(tr->m_answer_q, (const char *[]){party, q[k]});
        }
        f->open = avk_metrics_series(tr->m_open, (const char *[]){party});
        f->overdue = avk_metrics_series(tr->m_overdue, (const char *[]){party});
        tr->figures[i] = f;
        return f;
}

static void window_add(struct window *w, double v)
{
        w->v[w->next] = v;
        w->next = (w->next + 1) % QUANTILE_WINDOW;
        if (w->n < QUANTILE_WINDOW)
                w->n++;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

/* p50 and p90 (nearest rank) into the gauges, in whole seconds. */
static void window_publish(const struct window *w, avk_metric_t *const q[2])
{
        if (!w->n)
                return;
        double sorted[QUANTILE_WINDOW];
        memcpy(sorted, w->v, w->n * sizeof(double));
        qsort(sorted, w->n, sizeof(double), cmp_double);
        const double p[2] = {0.5, 0.9};
        for (int k = 0; k < 2; k++) {
                size_t rank = (size_t)(p[k] * (double)w->n + 0.999999);
                avk_metric_set(q[k], (int64_t)sorted[rank ? rank - 1 : 0]);
        }
}

static void party_counts(void *opaque, const char *party, long open, long overdue)
{
        struct figures *f = figures_of(opaque, party);
        if (f) {
                avk_metric_set(f->open, open);
                avk_metric_set(f->overdue, overdue);
        }
}

static void publish_figures(avk_tracker_t *tr)
{
        avk_track_parties(tr->track, party_counts, tr);
        for (int i = 0; i < MAX_FIGURE_PARTIES && tr->figures[i]; i++) {
                window_publish(&tr->figures[i]->ack, tr->figures[i]->ack_q);
                window_publish(&tr->figures[i]->answer, tr->figures[i]->answer_q);
        }
        atomic_store(&tr->open, avk_track_open_cnt(tr->track));
        avk_metric_set(tr->m_kept, (int64_t)avk_track_kept_cnt(tr->track));
}

/* ---- the directory ---- */

static const char *inbox_of(const struct avk_directory_receiver *rc)
{
        return rc && rc->delivery ? rc->delivery->inbox_topic : NULL;
}

/* ---- outputs ---- */

static avk_outbox_input_t *input_of(avk_tracker_t *tr, const struct avk_track_action *a,
                                    uint64_t *seq)
{
        if (a->ticket) {
                struct kept_input *k = (struct kept_input *)(uintptr_t)a->ticket;
                *seq = k->seq;
                return k->input;
        }
        *seq = tr->cur_seq;
        return tr->cur_input;
}

/* Produces value (of output kind) to its topic in the deviation's partition,
 * and a copy to inbox when there is one. */
static int write_record(avk_tracker_t *tr, const struct avk_track_action *a, int kind,
                        const char *deviation_id, int partition, const char *id, uint64_t tag,
                        const char *inbox)
{
        char err[512];
        const void *out;
        size_t len;
        static const char *const types[OUT_TOPICS] = {"DeviationStatus", "DeviationEscalated",
                                                      "DeadlineReminder", "DeviationFeedback"};
        if (avk_codec_encode(tr->codec, tr->out_topic[kind], tr->out_schema[kind],
                             &tr->out_value[kind], &out, &len, err, sizeof(err)) != 0) {
                avk_log(AVK_LOG_ERROR, COMPONENT, "deviation %s: cannot encode %s: %s",
                        deviation_id, types[kind], err);
                return -1;
        }
        uint64_t seq;
        avk_outbox_input_t *in = input_of(tr, a, &seq);
        const char *names[] = {AVK_HDR_ID, AVK_HDR_TYPE};
        const char *values[] = {id, types[kind]};
        struct avk_outbox_msg msg = {.topic = tr->out_topic[kind],
                                     .partition = partition,
                                     .key = deviation_id,
                                     .key_len = strlen(deviation_id),
                                     .value = out,
                                     .len = len,
                                     .hdr_names = names,
                                     .hdr_values = values,
                                     .hdr_cnt = 2,
                                     .tag = tag};
        if (avk_outbox_emit(tr->outbox, in, seq, &msg) != 0)
                return -1;
        if (!inbox)
                return 0;
        msg.topic = inbox;
        msg.partition = RD_KAFKA_PARTITION_UA;
        msg.tag = 0;
        return avk_outbox_emit(tr->outbox, in, seq, &msg);
}

static int set_time(avro_value_t *v, const char *name, int64_t ms)
{
        return avk_avro_set_long(v, name, ms == AVK_TRACK_NONE ? 0 : ms, ms == AVK_TRACK_NONE);
}

static int write_status(avk_tracker_t *tr, const struct avk_track_action *a)
{
        const struct avk_track_status *s = &a->u.status;
        avro_value_t *v = &tr->out_value[OUT_STATUS];
        avro_value_reset(v);
        int rc =
            avk_avro_set_text(v, "state_id", s->state_id) |
            avk_avro_set_text(v, "deviation_id", s->deviation_id) |
            avk_avro_set_long(v, "version", s->version, 0) |
            avk_avro_set_text(v, "state", avk_track_state_name(s->state)) |
            avk_avro_set_long(v, "changed_at", s->changed_at, 0) |
            avk_avro_set_text(v, "cause", s->cause) | avk_avro_set_long(v, "hop", s->hop, 0) |
            avk_avro_set_text(v, "reporter_party", s->reporter_party) |
            avk_avro_set_text(v, "receiver_party", s->receiver_party) |
            avk_avro_set_text(v, "receiver_unit_hsa_id", s->receiver_unit) |
            avk_avro_set_text(v, "category", s->category) |
            avk_avro_set_text(v, "harm_level", s->harm_level) |
            avk_avro_set_long(v, "possible_lex_maria", s->lex_maria, 0) |
            avk_avro_set_text(v, "deadline_rule", s->deadline_rule) |
            avk_avro_set_long(v, "routed_at", s->routed_at, 0) |
            avk_avro_set_long(v, "acknowledge_deadline_at", s->acknowledge_deadline_at, 0) |
            avk_avro_set_long(v, "answer_deadline_at", s->answer_deadline_at, 0) |
            set_time(v, "acknowledged_at", s->acknowledged_at) |
            set_time(v, "answered_at", s->answered_at) | set_time(v, "closed_at", s->closed_at) |
            set_time(v, "time_to_acknowledge_ms", s->time_to_acknowledge_ms) |
            set_time(v, "time_to_answer_ms", s->time_to_answer_ms) |
            avk_avro_set_long(v, "deadline_kept", s->deadline_kept > 0, s->deadline_kept < 0) |
            avk_avro_set_long(v, "overdue", s->overdue, 0) |
            avk_avro_set_text(v, "escalation_step", avk_track_step_name(s->step)) |
            avk_avro_set_text(v, "pending_step", avk_track_step_name(s->pending_step)) |
            avk_avro_set_long(v, "wrong_receiver_region", s->wrong_receiver_region, 0) |
            avk_avro_set_text(v, "wrong_receiver_municipality", s->wrong_receiver_municipality);
        if (rc)
                return -1;
        atomic_fetch_add(&tr->statuses, 1);
        avk_metric_add(tr->m_statuses, 1);
        /* The figures: a first acknowledgement or an answer of this change. */
        struct figures *f = figures_of(tr, s->receiver_party);
        if (f && s->state == AVK_TRACK_ACKNOWLEDGED && s->time_to_acknowledge_ms != AVK_TRACK_NONE)
                window_add(&f->ack, (double)s->time_to_acknowledge_ms / 1000.0);
        if (f && s->state == AVK_TRACK_ANSWERED && s->time_to_answer_ms != AVK_TRACK_NONE)
                window_add(&f->answer, (double)s->time_to_answer_ms / 1000.0);
        uint64_t tag = ((uint64_t)s->version << TAG_BITS) | TAG_STATUS;
        return write_record(tr, a, OUT_STATUS, s->deviation_id, s->partition, s->state_id, tag,
                            NULL);
}

/* What a kept response says, for the feedback of its application. */
static void kept_cause(avk_tracker_t *tr, uint64_t ticket, struct avk_feedback_cause *cause)
{
        const struct kept_input *k = (const struct kept_input *)(uintptr_t)ticket;
        avro_value_t *v = &tr->kept_value;
        char err[256];
        if (k->src.topic != tr->in_topic[IN_RESPONSE] ||
            avk_codec_decode(tr->codec, k->src.value, k->src.len, tr->in_schema[IN_RESPONSE], v,
                             err, sizeof(err)) != 0)
                return;
        *cause = (struct avk_feedback_cause){.id = avk_avro_text(v, "response_id"),
                                             .reason = avk_avro_text(v, "comment"),
                                             .analysis = avk_avro_text(v, "analysis"),
                                             .action_plan = avk_avro_text(v, "action_plan")};
}

/* Produces the DeviationFeedback in tr->out_value of status s, with a copy to the reporting
 * unit's (or its party's) inbox. */
static int emit_feedback(avk_tracker_t *tr, const struct avk_track_action *a,
                         const struct avk_track_status *s, const char *id)
{
        const char *unit = avk_avro_text(&tr->out_value[OUT_FEEDBACK], "reporter_unit_hsa_id");
        return write_record(tr, a, OUT_FEEDBACK, s->deviation_id, s->partition, id, 0,
                            inbox_of(avk_directory_receiver(tr->dir, s->reporter_party, unit)));
}

/* The reporting party's DeviationFeedback of a status change; a deviation
 * that closed leaves the module. */
static int write_feedback(avk_tracker_t *tr, const struct avk_track_action *a)
{
        const struct avk_track_status *s = &a->u.status;
        /* A response applied later than it was read (kept for its routing)
         * is not the input at hand: it is read again from its bytes. */
        struct avk_feedback_cause kept = {0};
        int later = a->ticket && !(tr->cause.id && strcmp(tr->cause.id, s->cause) == 0);
        if (later)
                kept_cause(tr, a->ticket, &kept);
        char id[AVK_IDENT_UUID_SIZE];
        int rc = avk_feedback_fill(tr->feedback, s, later ? &kept : &tr->cause,
                                   &tr->out_value[OUT_FEEDBACK], id);
        if (rc > 0)
                rc = emit_feedback(tr, a, s, id);
        if (s->state == AVK_TRACK_CLOSED)
                avk_feedback_forget(tr->feedback, s->deviation_id);
        return rc < 0 ? -1 : 0;
}

/* Writes the feedback a crash left owed (consumer/track/feedback.h): of
 * deviation_id those caused by the input at hand, whose fields are in cause;
 * with cause NULL those caused by no input, of every deviation (the end of a
 * rebuild). They are outputs of the input at hand, if any. */
static int pay_owed(avk_tracker_t *tr, const char *deviation_id,
                    const struct avk_feedback_cause *cause)
{
        const struct avk_track_status *s;
        while ((s = avk_feedback_owed(tr->feedback, deviation_id, cause ? cause->id : NULL))) {
                static const struct avk_track_action none = {.kind = AVK_TRACK_STATUS};
                char id[AVK_IDENT_UUID_SIZE];
                int rc = avk_feedback_fill_owed(tr->feedback, s, cause,
                                                &tr->out_value[OUT_FEEDBACK], id);
                if (rc > 0)
                        rc = emit_feedback(tr, &none, s, id);
                if (rc == 0)
                        avk_log(AVK_LOG_INFO, COMPONENT,
                                "deviation %s: feedback of version %d written after a restart "
                                "(its status record was in Kafka without it)",
                                s->deviation_id, s->version);
                avk_feedback_paid(tr->feedback, s);
                if (rc < 0)
                        return -1;
                avk_metric_add(tr->m_owed, 1);
        }
        return 0;
}

static int write_escalation(avk_tracker_t *tr, const struct avk_track_action *a)
{
        const struct avk_track_escalation *e = &a->u.escalation;
        const struct avk_directory_receiver *rc =
            avk_directory_receiver(tr->dir, e->party, e->unit);
        const struct avk_directory_contact *forum =
            e->step == AVK_TRACK_STEP_LOCAL_FORUM
                ? avk_directory_local_forum(tr->dir, e->party, e->counterpart)
                : NULL;
        const char *holder = forum                           ? forum->name
                             : rc && rc->ladder[e->step - 1] ? rc->ladder[e->step - 1]->name
                                                             : NULL;
        avro_value_t *v = &tr->out_value[OUT_ESCALATED];
        avro_value_reset(v);
        int err =
            avk_avro_set_text(v, "escalation_id", e->escalation_id) |
            avk_avro_set_text(v, "deviation_id", e->deviation_id) |
            avk_avro_set_long(v, "escalated_at", e->escalated_at, 0) |
            avk_avro_set_text(v, "party", e->party) |
            avk_avro_set_text(v, "step", avk_track_step_name(e->step)) |
            avk_avro_set_text(v, "reason", avk_track_reason_name(e->reason)) |
            avk_avro_set_text(v, "holder", holder) | set_time(v, "deadline_at", e->deadline_at) |
            avk_avro_set_long(v, "hop", e->hop, 0) | avk_avro_set_text(v, "unit_hsa_id", e->unit) |
            avk_avro_set_text(v, "counterpart_party", e->counterpart);
        if (err)
                return -1;
        atomic_fetch_add(&tr->escalations, 1);
        avk_metric_add(avk_metrics_series(tr->m_escalations,
                                          (const char *[]){avk_track_step_name(e->step),
                                                           avk_track_reason_name(e->reason)}),
                       1);
        avk_log(AVK_LOG_INFO, COMPONENT, "deviation %s: escalated to %s of %s (%s)",
                e->deviation_id, avk_track_step_name(e->step), e->party,
                avk_track_reason_name(e->reason));
        return write_record(tr, a, OUT_ESCALATED, e->deviation_id, e->partition, e->escalation_id,
                            TAG_ESCALATION, inbox_of(rc));
}

static int write_reminder(avk_tracker_t *tr, const struct avk_track_action *a)
{
        const struct avk_track_reminder *r = &a->u.reminder;
        avro_value_t *v = &tr->out_value[OUT_REMINDER];
        avro_value_reset(v);
        int err = avk_avro_set_text(v, "reminder_id", r->reminder_id) |
                  avk_avro_set_text(v, "deviation_id", r->deviation_id) |
                  avk_avro_set_long(v, "reminded_at", r->reminded_at, 0) |
                  avk_avro_set_long(v, "hop", r->hop, 0) |
                  avk_avro_set_text(v, "receiver_party", r->receiver_party) |
                  avk_avro_set_text(v, "receiver_unit_hsa_id", r->receiver_unit) |
                  avk_avro_set_text(v, "kind", avk_track_deadline_name(r->kind)) |
                  avk_avro_set_long(v, "deadline_at", r->deadline_at, 0);
        if (err)
                return -1;
        atomic_fetch_add(&tr->reminders, 1);
        avk_metric_add(
            avk_metrics_series(tr->m_reminders, (const char *[]){avk_track_deadline_name(r->kind)}),
            1);
        const struct avk_directory_receiver *rc =
            avk_directory_receiver(tr->dir, r->receiver_party, r->receiver_unit);
        return write_record(tr, a, OUT_REMINDER, r->deviation_id, r->partition, r->reminder_id,
                            TAG_REMINDER, inbox_of(rc));
}

static void count_metric(avk_tracker_t *tr, const char *topic, enum avk_track_result r)
{
        avk_metric_add(
            avk_metrics_series(tr->m_inputs, (const char *[]){topic, avk_track_result_name(r)}), 1);
}

static void count_input(avk_tracker_t *tr, const char *topic, enum avk_track_result r)
{
        if (r == AVK_TRACK_APPLIED)
                atomic_fetch_add(&tr->applied, 1);
        else if (r != AVK_TRACK_KEPT)
                atomic_fetch_add(&tr->ignored, 1);
        count_metric(tr, topic, r);
}

static int deadletter(avk_tracker_t *tr, avk_outbox_input_t *in, uint64_t seq,
                      const struct avk_outbox_source *src, const char *reason)
{
        atomic_fetch_add(&tr->deadlettered, 1);
        avk_metric_add(tr->m_deadletter, 1);
        return avk_outbox_deadletter(tr->outbox, in, seq, tr->deadletter_topic, src, reason);
}

static void kept_free(struct kept_input *k)
{
        LIST_REMOVE(k, link);
        free(k);
}

/* A kept response is settled: dead-lettered when its routing never came,
 * then its input is finished. */
static int settled(avk_tracker_t *tr, const struct avk_track_action *a)
{
        struct kept_input *k = (struct kept_input *)(uintptr_t)a->ticket;
        enum avk_track_result r = a->u.settled.result;
        count_input(tr, k->src.topic, r);
        int rc = 0;
        if (r == AVK_TRACK_NO_ROUTING)
                rc = deadletter(tr, k->input, k->seq, &k->src,
                                "no DeviationRouted for this deviation within tracker.kept.max.ms");
        avk_outbox_end(tr->outbox, k->input, k->seq);
        kept_free(k);
        return rc;
}

static int sink(void *opaque, const struct avk_track_action *a)
{
        avk_tracker_t *tr = opaque;
        int rc = 0;
        switch (a->kind) {
        case AVK_TRACK_STATUS:
                rc = write_status(tr, a);
                if (!rc)
                        rc = write_feedback(tr, a);
                break;
        case AVK_TRACK_ESCALATION:
                rc = write_escalation(tr, a);
                break;
        case AVK_TRACK_REMINDER:
                rc = write_reminder(tr, a);
                break;
        case AVK_TRACK_SETTLED:
                rc = settled(tr, a);
                break;
        }
        if (rc)
                tr->sink_failed = 1;
        return rc;
}

/* The outbox heard back about a tagged output. */
static void on_acked(void *opaque, const void *key, size_t key_len, uint64_t tag)
{
        avk_tracker_t *tr = opaque;
        char id[ID_SIZE];
        (void)tag;
        if (key_len >= sizeof(id))
                return;
        memcpy(id, key, key_len);
        id[key_len] = '\0';
        avk_track_acked(tr->track, id);
}

/* A status record that failed need not be written again when a later
 * version of the deviation exists: that one is (or will be) written, and the
 * changelog only needs the latest. */
static int still_wanted(void *opaque, const void *key, size_t key_len, uint64_t tag)
{
        avk_tracker_t *tr = opaque;
        char id[ID_SIZE];
        if ((tag & ((1u << TAG_BITS) - 1)) != TAG_STATUS || key_len >= sizeof(id))
                return 1;
        memcpy(id, key, key_len);
        id[key_len] = '\0';
        return avk_track_version(tr->track, id) <= (int)(tag >> TAG_BITS);
}

/* ---- inputs ---- */

/* Notes that the registry had no answer for a record's writer schema. */
static void unavailable(avk_tracker_t *tr, const char *why)
{
        tr->unavailable = 1;
        snprintf(tr->unavailable_why, sizeof(tr->unavailable_why), "%s", why);
}

static int decode(avk_tracker_t *tr, int k, const rd_kafka_message_t *m, char *errstr,
                  size_t errstr_size)
{
        static const char *const names[IN_TOPICS] = {"DeviationRouted", "DeviationResponse",
                                                     "DeliveryFailed", "DeviationReported"};
        char reason[256];
        int rc = avk_codec_decode(tr->codec, m->payload, m->len, tr->in_schema[k], &tr->in_value[k],
                                  reason, sizeof(reason));
        if (rc != 0) {
                snprintf(errstr, errstr_size, "undecodable %s: %s", names[k], reason);
                if (rc == AVK_CODEC_UNAVAILABLE)
                        unavailable(tr, errstr);
                return -1;
        }
        const char *id = avk_avro_text(&tr->in_value[k], "deviation_id");
        if (!id || m->key_len != strlen(id) || memcmp(m->key, id, m->key_len) != 0) {
                snprintf(errstr, errstr_size, "the key is not the deviation_id");
                return -1;
        }
        return 0;
}

static int64_t get_long(avro_value_t *v, const char *name)
{
        int64_t x = 0;
        avk_avro_long(v, name, &x);
        return x;
}

static enum avk_track_result apply(avk_tracker_t *tr, int k, const rd_kafka_message_t *m,
                                   struct kept_input *ticket)
{
        avro_value_t *v = &tr->in_value[k];
        switch (k) {
        case IN_ROUTED: {
                struct avk_track_routed in = {.event_id = avk_avro_text(v, "event_id"),
                                              .deviation_id = avk_avro_text(v, "deviation_id"),
                                              .routed_at = get_long(v, "routed_at"),
                                              .hop = (int)get_long(v, "hop"),
                                              .reporter_party = avk_avro_text(v, "reporter_party"),
                                              .receiver_party = avk_avro_text(v, "receiver_party"),
                                              .receiver_unit =
                                                  avk_avro_text(v, "receiver_unit_hsa_id"),
                                              .category = avk_avro_text(v, "category"),
                                              .harm_level = avk_avro_text(v, "harm_level"),
                                              .lex_maria = (int)get_long(v, "possible_lex_maria"),
                                              .partition = m->partition};
                tr->cause = (struct avk_feedback_cause){.id = in.event_id,
                                                        .decision = avk_avro_text(v, "decision"),
                                                        .rule_id = avk_avro_text(v, "rule_id"),
                                                        .reason = avk_avro_text(v, "reason")};
                return in.event_id ? avk_track_routed(tr->track, &in) : AVK_TRACK_BAD_INPUT;
        }
        case IN_RESPONSE: {
                int kind = avk_track_response_kind_parse(avk_avro_text(v, "kind"));
                if (kind < 0)
                        return AVK_TRACK_BAD_INPUT;
                struct avk_track_response in = {.response_id = avk_avro_text(v, "response_id"),
                                                .deviation_id = avk_avro_text(v, "deviation_id"),
                                                .responded_at = get_long(v, "responded_at"),
                                                .party = avk_avro_text(v, "party"),
                                                .kind = (enum avk_track_response_kind)kind,
                                                .partition = m->partition,
                                                .ticket = (uint64_t)(uintptr_t)ticket};
                tr->cause =
                    (struct avk_feedback_cause){.id = in.response_id,
                                                .reason = avk_avro_text(v, "comment"),
                                                .analysis = avk_avro_text(v, "analysis"),
                                                .action_plan = avk_avro_text(v, "action_plan")};
                return avk_track_respond(tr->track, &in);
        }
        default: {
                struct avk_track_failure in = {.event_id = avk_avro_text(v, "event_id"),
                                               .deviation_id = avk_avro_text(v, "deviation_id"),
                                               .hop = (int)get_long(v, "hop"),
                                               .failed_at = get_long(v, "failed_at"),
                                               .partition = m->partition,
                                               .ticket = (uint64_t)(uintptr_t)ticket};
                /* No field of a failure is the reporter's: only its id, to find a feedback owed. */
                tr->cause = (struct avk_feedback_cause){.id = in.event_id};
                return avk_track_failed(tr->track, &in);
        }
        }
}

static struct kept_input *kept_new(avk_tracker_t *tr, avk_outbox_input_t *in, uint64_t seq,
                                   const rd_kafka_message_t *m)
{
        struct kept_input *k = malloc(sizeof(*k) + m->key_len + m->len);
        if (!k)
                return NULL;
        k->input = in;
        k->seq = seq;
        k->src = avk_outbox_source_of(m);
        k->src.topic =
            tr->in_topic[strcmp(k->src.topic, tr->in_topic[IN_RESPONSE]) == 0 ? IN_RESPONSE
                                                                              : IN_FAILED];
        if (m->key_len)
                memcpy(k->data, m->key, m->key_len);
        if (m->len)
                memcpy(k->data + m->key_len, m->payload, m->len);
        k->src.key = m->key ? k->data : NULL;
        k->src.value = m->payload ? k->data + m->key_len : NULL;
        LIST_INSERT_HEAD(&tr->kept, k, link);
        return k;
}

/* A filing: its reporting unit and reply reference, for the feedback (read
 * live or by the rebuild). @returns 0, 1 when it cannot be read (the
 * router's to dead-letter; tr->unavailable when the registry had no
 * answer), -1 when out of memory. */
static int remember_filing(avk_tracker_t *tr, const rd_kafka_message_t *m)
{
        char err[512];
        if (decode(tr, IN_REPORTED, m, err, sizeof(err)) != 0)
                return 1;
        avro_value_t *v = &tr->in_value[IN_REPORTED];
        return avk_feedback_reported(tr->feedback, avk_avro_text(v, "deviation_id"),
                                     avk_avro_text(v, "reporter.unit_hsa_id"),
                                     avk_avro_text(v, "reply_reference"), m->partition);
}

/* A filing read live: counted, and read again later when the registry had no answer. */
static int take_reported(avk_tracker_t *tr, const rd_kafka_message_t *m)
{
        int rc = remember_filing(tr, m);
        if (rc < 0)
                return -1;
        if (rc > 0 && tr->unavailable)
                return AVK_SERVICE_WAIT;
        count_metric(tr, tr->in_topic[IN_REPORTED], rc ? AVK_TRACK_BAD_INPUT : AVK_TRACK_APPLIED);
        return 0;
}

/* The input's outcome; -1 when out of memory or an output cannot be encoded. */
static int handle(avk_tracker_t *tr, int k, avk_outbox_input_t *in, uint64_t seq,
                  const rd_kafka_message_t *m)
{
        struct avk_outbox_source src = avk_outbox_source_of(m);
        char err[512];
        int rc = 0;
        if (k == IN_REPORTED)
                return take_reported(tr, m);
        if (decode(tr, k, m, err, sizeof(err)) != 0)
                return tr->unavailable ? AVK_SERVICE_WAIT : deadletter(tr, in, seq, &src, err);
        struct kept_input *ticket = NULL;
        if (k != IN_ROUTED && !(ticket = kept_new(tr, in, seq, m)))
                return -1;
        tr->cur_input = in;
        tr->cur_seq = seq;
        tr->sink_failed = 0;
        enum avk_track_result r = apply(tr, k, m, ticket);
        /* Read again after a crash: the feedback it caused may be owed. */
        if (r != AVK_TRACK_KEPT && r != AVK_TRACK_BAD_INPUT && tr->cause.id &&
            pay_owed(tr, avk_avro_text(&tr->in_value[k], "deviation_id"), &tr->cause) != 0)
                tr->sink_failed = 1;
        tr->cur_input = NULL;
        tr->cause = (struct avk_feedback_cause){0};
        if (r != AVK_TRACK_KEPT && ticket)
                kept_free(ticket);
        if (r == AVK_TRACK_KEPT) {
                avk_metric_set(tr->m_kept, (int64_t)avk_track_kept_cnt(tr->track));
                avk_outbox_hold(in, seq); /* unfinished until the core settles it */
                return 0;
        }
        if (r == AVK_TRACK_FAILED || tr->sink_failed)
                rc = -1;
        else if (r == AVK_TRACK_BAD_INPUT)
                rc = deadletter(tr, in, seq, &src,
                                "deviation_id is not a UUID, or a party is empty");
        else if (r == AVK_TRACK_FULL)
                rc = deadletter(tr, in, seq, &src,
                                "too many responses wait for their routing (tracker.kept.max)");
        count_input(tr, tr->in_topic[k], r);
        return rc;
}

static int on_record(void *opaque, int topic, avk_outbox_input_t *in, uint64_t seq,
                     const rd_kafka_message_t *m, char *errstr, size_t errstr_size)
{
        avk_tracker_t *tr = opaque;
        int rc = handle(tr, topic, in, seq, m);
        if (rc == 0)
                return 0;
        if (rc == AVK_SERVICE_WAIT) {
                snprintf(errstr, errstr_size, "%s", tr->unavailable_why);
                tr->unavailable = 0;
                return rc;
        }
        snprintf(errstr, errstr_size, "out of memory or cannot encode an output");
        return -1;
}

/* ---- rebuild ---- */

/* A record's timestamp (ms since the epoch; 0 when it has none). */
static int64_t record_time(const rd_kafka_message_t *m)
{
        int64_t ts = rd_kafka_message_timestamp(m, NULL);
        return ts < 0 ? 0 : ts;
}

/* Decodes a record of output topic kind, read back by the rebuild, into
 * tr->out_value[kind]. @returns 0, or -1 (tr->unavailable when the registry had
 * no answer: the rebuild is tried again). */
static int restore_decode(avk_tracker_t *tr, int kind, const rd_kafka_message_t *m)
{
        char err[256];
        int rc = avk_codec_decode(tr->codec, m->payload, m->len, tr->out_schema[kind],
                                  &tr->out_value[kind], err, sizeof(err));
        if (rc == AVK_CODEC_UNAVAILABLE)
                unavailable(tr, err);
        return rc == 0 ? 0 : -1;
}

/* A feedback written before: none is owed for its version. */
static void restore_feedback(void *opaque, const rd_kafka_message_t *m)
{
        avk_tracker_t *tr = opaque;
        avro_value_t *v = &tr->out_value[OUT_FEEDBACK];
        const char *id =
            restore_decode(tr, OUT_FEEDBACK, m) == 0 ? avk_avro_text(v, "deviation_id") : NULL;
        if (id && avk_feedback_read_back(tr->feedback, id, (int)get_long(v, "version"),
                                         m->partition, record_time(m), tr->check_since) != 0)
                tr->sink_failed = 1;
}

static void restore_status(void *opaque, const rd_kafka_message_t *m)
{
        avk_tracker_t *tr = opaque;
        avro_value_t *v = &tr->out_value[OUT_STATUS];
        if (restore_decode(tr, OUT_STATUS, m) != 0)
                return;
        int state = avk_track_state_parse(avk_avro_text(v, "state"));
        const char *step = avk_avro_text(v, "escalation_step");
        const char *pending = avk_avro_text(v, "pending_step");
        int64_t acked = AVK_TRACK_NONE, answered = AVK_TRACK_NONE, closed = AVK_TRACK_NONE;
        avk_avro_long(v, "acknowledged_at", &acked);
        avk_avro_long(v, "answered_at", &answered);
        avk_avro_long(v, "closed_at", &closed);
        struct avk_track_status s = {
            .deviation_id = avk_avro_text(v, "deviation_id"),
            .version = (int)get_long(v, "version"),
            .state = state < 0 ? AVK_TRACK_ROUTED : (enum avk_track_state)state,
            .changed_at = get_long(v, "changed_at"),
            .cause = avk_avro_text(v, "cause"),
            .hop = (int)get_long(v, "hop"),
            .reporter_party = avk_avro_text(v, "reporter_party"),
            .receiver_party = avk_avro_text(v, "receiver_party"),
            .receiver_unit = avk_avro_text(v, "receiver_unit_hsa_id"),
            .category = avk_avro_text(v, "category"),
            .harm_level = avk_avro_text(v, "harm_level"),
            .lex_maria = (int)get_long(v, "possible_lex_maria"),
            .deadline_rule = avk_avro_text(v, "deadline_rule"),
            .routed_at = get_long(v, "routed_at"),
            .acknowledge_deadline_at = get_long(v, "acknowledge_deadline_at"),
            .answer_deadline_at = get_long(v, "answer_deadline_at"),
            .acknowledged_at = acked,
            .answered_at = answered,
            .closed_at = closed,
            .overdue = (int)get_long(v, "overdue"),
            .step = step ? avk_track_step_parse(step) : AVK_TRACK_STEP_NONE,
            .pending_step = pending ? avk_track_step_parse(pending) : AVK_TRACK_STEP_NONE,
            .wrong_receiver_region = (int)get_long(v, "wrong_receiver_region"),
            .wrong_receiver_municipality = avk_avro_text(v, "wrong_receiver_municipality"),
            .partition = m->partition};
        if (s.step < 0)
                s.step = AVK_TRACK_STEP_NONE;
        if (!s.deviation_id || !s.reporter_party || !s.receiver_party)
                return;
        if (avk_feedback_check(tr->feedback, &s, record_time(m), tr->check_since) < 0)
                tr->sink_failed = 1;
        if (s.state == AVK_TRACK_CLOSED)
                avk_feedback_forget(tr->feedback, s.deviation_id);
        if (avk_track_restore_status(tr->track, &s) != 0)
                tr->sink_failed = 1;
}

static void restore_escalation(void *opaque, const rd_kafka_message_t *m)
{
        avk_tracker_t *tr = opaque;
        avro_value_t *v = &tr->out_value[OUT_ESCALATED];
        if (restore_decode(tr, OUT_ESCALATED, m) != 0)
                return;
        int step = avk_track_step_parse(avk_avro_text(v, "step"));
        int reason = avk_track_reason_parse(avk_avro_text(v, "reason"));
        const char *id = avk_avro_text(v, "escalation_id");
        int64_t deadline = AVK_TRACK_NONE;
        avk_avro_long(v, "deadline_at", &deadline);
        if (step < 1 || reason < 0 || !id)
                return;
        struct avk_track_escalation e = {.deviation_id = avk_avro_text(v, "deviation_id"),
                                         .escalated_at = get_long(v, "escalated_at"),
                                         .hop = (int)get_long(v, "hop"),
                                         .party = avk_avro_text(v, "party"),
                                         .unit = avk_avro_text(v, "unit_hsa_id"),
                                         .step = step,
                                         .reason = (enum avk_track_reason)reason,
                                         .deadline_at = deadline,
                                         .partition = m->partition};
        snprintf(e.escalation_id, sizeof(e.escalation_id), "%s", id);
        if (!e.deviation_id)
                return;
        if (avk_track_restore_escalation(tr->track, &e) != 0)
                tr->sink_failed = 1;
        avk_feedback_escalation_read_back(tr->feedback, e.deviation_id, id);
}

static void restore_reminder(void *opaque, const rd_kafka_message_t *m)
{
        avk_tracker_t *tr = opaque;
        avro_value_t *v = &tr->out_value[OUT_REMINDER];
        if (restore_decode(tr, OUT_REMINDER, m) != 0)
                return;
        int kind = avk_track_deadline_parse(avk_avro_text(v, "kind"));
        struct avk_track_reminder r = {.deviation_id = avk_avro_text(v, "deviation_id"),
                                       .hop = (int)get_long(v, "hop"),
                                       .kind = (enum avk_track_deadline_kind)kind,
                                       .deadline_at = get_long(v, "deadline_at")};
        if (kind >= 0 && r.deviation_id)
                avk_track_restore_reminder(tr->track, &r);
}

static void restore_reported(void *opaque, const rd_kafka_message_t *m)
{
        avk_tracker_t *tr = opaque;
        if (remember_filing(tr, m) < 0)
                tr->sink_failed = 1;
}

/* Registers the four output schemas with the Schema Registry (the codec keeps their ids), once
 * per process: the core decides before its outputs are encoded, so an encode that needs the
 * registry mid-decision could neither be undone nor be tried again (docs/tracker.md, "While the
 * Schema Registry is down"). Without a registry there is nothing to register. @returns 0, or -1
 * with the reason noted (unavailable) or logged. */
static int register_outputs(avk_tracker_t *tr)
{
        char err[512];
        const void *out;
        size_t len;
        if (tr->outputs_registered || !tr->env.registry)
                return 0;
        for (int k = 0; k < OUT_TOPICS; k++) {
                int rc = avk_codec_frame(tr->codec, tr->out_topic[k], tr->out_schema[k], 0, "", 0,
                                         &out, &len, err, sizeof(err));
                if (rc == AVK_CODEC_UNAVAILABLE)
                        unavailable(tr, err);
                else if (rc != 0)
                        avk_log(AVK_LOG_ERROR, COMPONENT, "%s: %s", tr->out_topic[k], err);
                if (rc != 0)
                        return -1;
        }
        tr->outputs_registered = 1;
        return 0;
}

/* Reads the state of partitions: the filings (for the feedback; those the
 * changelog closes are forgotten again), the feedback written (to find what
 * a crash left owed), then from the outputs: the changelog (the latest
 * version per deviation; a version without its feedback owes it), then the
 * escalations (a half-written one is completed), then the reminders (not
 * sent again). The feedback owed that no input will cause again is written
 * at the end. */
static int on_rebuild(void *opaque, const int32_t *parts, int cnt)
{
        avk_tracker_t *tr = opaque;
        void (*cbs[OUT_CHANGELOG])(void *, const rd_kafka_message_t *) = {
            restore_status, restore_escalation, restore_reminder};
        tr->sink_failed = 0;
        tr->unavailable = 0;
        /* No partition is the tracker's, and so no input or timer fires, before its outputs
         * can be encoded: not ready meanwhile, nothing dead-lettered, nothing half-decided. */
        if (register_outputs(tr) != 0) {
                /* The kernel tries a failed rebuild again after a backoff. */
                avk_log(AVK_LOG_WARN, COMPONENT, "output schemas not registered: %s",
                        tr->unavailable ? tr->unavailable_why : "refused");
                tr->unavailable = 0;
                return -1;
        }
        tr->check_since = avk_clock_system_ms() - tr->feedback_check_ms;
        if (avk_service_replay(tr->service, tr->in_topic[IN_REPORTED], parts, cnt, restore_reported,
                               tr) != 0 ||
            avk_service_replay(tr->service, tr->out_topic[OUT_FEEDBACK], parts, cnt,
                               restore_feedback, tr) != 0)
                return -1;
        for (int k = 0; k < OUT_CHANGELOG; k++) {
                if (avk_service_replay(tr->service, tr->out_topic[k], parts, cnt, cbs[k], tr) != 0)
                        return -1;
        }
        for (int i = 0; i < cnt; i++) {
                if (avk_track_restore_done(tr->track, parts[i]) < 0)
                        return -1;
        }
        if (avk_feedback_rebuilt(tr->feedback) != 0)
                tr->sink_failed = 1;
        if (tr->sink_failed)
                return -1;
        /* A state rebuilt without every record it read would remind and
         * escalate again: try again once the registry answers. */
        if (tr->unavailable) {
                avk_log(AVK_LOG_WARN, "tracker", "state not rebuilt: %s (trying again)",
                        tr->unavailable_why);
                tr->unavailable = 0;
                return -1;
        }
        size_t owed = avk_feedback_owed_count(tr->feedback);
        if (pay_owed(tr, NULL, NULL) != 0)
                return -1;
        if (owed)
                avk_log(AVK_LOG_WARN, COMPONENT,
                        "%zu feedback records owed after a crash: %zu written, %zu to write when "
                        "their input is read again",
                        owed, owed - avk_feedback_owed_count(tr->feedback),
                        avk_feedback_owed_count(tr->feedback));
        atomic_fetch_add(&tr->rebuilds, (unsigned long long)cnt);
        return 0;
}

/* The state of partitions parts is forgotten: a failed rebuild, a revoke. */
static void on_drop(void *opaque, const int32_t *parts, int cnt)
{
        avk_tracker_t *tr = opaque;
        avk_feedback_read_back_done(tr->feedback);
        for (int i = 0; i < cnt; i++) {
                avk_track_drop_partition(tr->track, parts[i]);
                avk_feedback_drop_partition(tr->feedback, parts[i]);
        }
}

/* Kept responses of a revoked partition: the next owner reads them again. */
static void on_revoke(void *opaque, avk_outbox_input_t *in)
{
        avk_tracker_t *tr = opaque;
        for (struct kept_input *kp = LIST_FIRST(&tr->kept), *next; kp; kp = next) {
                next = LIST_NEXT(kp, link);
                if (kp->input == in) {
                        avk_outbox_end(tr->outbox, kp->input, kp->seq);
                        kept_free(kp);
                }
        }
}

static void describe(void *opaque, char *buf, size_t size)
{
        avk_tracker_t *tr = opaque;
        snprintf(buf, size, "%zu open deviations", avk_track_open_cnt(tr->track));
}

/* ---- the loop ---- */

static int on_tick(void *opaque, int64_t *next_due, char *errstr, size_t errstr_size)
{
        avk_tracker_t *tr = opaque;
        int64_t start = avk_clock_mono_ns();
        int due = start / 1000000 >= tr->next_tick;
        if (due)
                tr->next_tick = start / 1000000 + tr->tick_ms;
        /* An idle kernel sleeps until then (docs/architecture.md, "The service kernel"). */
        if (tr->next_tick < *next_due)
                *next_due = tr->next_tick;
        if (!due)
                return 0;
        if (!tr->judge_mono) {
                tr->judge_mono = start / 1000000;
                tr->judge_at = now_ms(tr);
        }
        if (!avk_service_read_to_end_since(tr->service, tr->judge_mono)) {
                avk_metric_set(tr->m_judge_wait, start / 1000000 - tr->judge_mono);
                return 0;
        }
        avk_metric_set(tr->m_judge_wait, 0);
        tr->sink_failed = 0;
        long n = avk_track_advance(tr->track, tr->judge_at);
        tr->judge_mono = 0;
        avk_metric_observe(tr->m_tick, (double)(avk_clock_mono_ns() - start) / 1e9);
        publish_figures(tr);
        if (n >= 0 && !tr->sink_failed)
                return 0;
        snprintf(errstr, errstr_size, "out of memory or cannot encode an output");
        return -1;
}

static void summary(void *opaque)
{
        avk_tracker_t *tr = opaque;
        struct avk_service_stats k;
        avk_service_stats(tr->service, &k);
        uint64_t done = k.inputs_done + atomic_load(&tr->statuses);
        if (done == tr->summary_done)
                return;
        tr->summary_done = done;
        avk_log(AVK_LOG_INFO, COMPONENT,
                "inputs %llu (applied %llu, ignored %llu), status %llu, escalations %llu, "
                "reminders %llu, dead-lettered %llu, open %zu, kept %zu, outputs in flight %llu",
                (unsigned long long)k.inputs_done, (unsigned long long)atomic_load(&tr->applied),
                (unsigned long long)atomic_load(&tr->ignored),
                (unsigned long long)atomic_load(&tr->statuses),
                (unsigned long long)atomic_load(&tr->escalations),
                (unsigned long long)atomic_load(&tr->reminders),
                (unsigned long long)atomic_load(&tr->deadlettered), avk_track_open_cnt(tr->track),
                avk_track_kept_cnt(tr->track),
                (unsigned long long)avk_outbox_in_flight(tr->outbox));
}

int avk_tracker_run(avk_tracker_t *tr, char *errstr, size_t errstr_size)
{
        avk_log(AVK_LOG_INFO, COMPONENT, "group %s: tracking %s, %s and %s", tr->group,
                tr->in_topic[IN_ROUTED], tr->in_topic[IN_RESPONSE], tr->in_topic[IN_FAILED]);
        return avk_service_run(tr->service, errstr, errstr_size);
}

void avk_tracker_stop(avk_tracker_t *tr)
{
        avk_service_stop(tr->service);
}

void avk_tracker_stats(avk_tracker_t *tr, struct avk_tracker_stats *s)
{
        struct avk_service_stats k;
        avk_service_stats(tr->service, &k);
        *s = (struct avk_tracker_stats){
            .inputs_done = k.inputs_done,
            .applied = atomic_load(&tr->applied),
            .ignored = atomic_load(&tr->ignored),
            .statuses = atomic_load(&tr->statuses),
            .escalations = atomic_load(&tr->escalations),
            .reminders = atomic_load(&tr->reminders),
            .deadlettered = atomic_load(&tr->deadlettered),
            .rebuilds = atomic_load(&tr->rebuilds),
            .open = atomic_load(&tr->open),
            .partitions = k.partitions,
        };
}

int avk_tracker_ready(void *opaque, char *why, size_t why_size)
{
        avk_tracker_t *tr = opaque;
        return avk_service_ready(tr->service, why, why_size);
}

avk_metrics_t *avk_tracker_metrics(avk_tracker_t *tr)
{
        return tr->metrics;
}

/* ---- creation ---- */

static int load_files(avk_tracker_t *tr, const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        const char *dir_file = avk_config_get(cfg, "directory.file");
        const char *policy_file = avk_config_get(cfg, "deadlines.file");
        if (!dir_file || !policy_file) {
                snprintf(errstr, errstr_size, "%s: required by the tracker",
                         dir_file ? "deadlines.file" : "directory.file");
                return -1;
        }
        struct avk_errors errs;
        avk_errors_init(&errs);
        tr->dir = avk_directory_load(dir_file, 0, &errs);
        if (tr->dir)
                tr->policy = avk_deadlines_load(policy_file, &errs);
        if (!tr->policy) {
                avk_errors_join(&errs, errstr, errstr_size);
                return -1;
        }
        return 0;
}

static int make_metrics(avk_tracker_t *tr)
{
        avk_metrics_t *m = tr->metrics = avk_metrics_new();
        if (!m)
                return -1;
        tr->m_inputs = avk_metrics_counter(
            m, "avk_tracker_inputs_total",
            "Inputs by topic and what they did (applied, duplicate, stale, not_receiver, ...).",
            (const char *[]){"topic", "result", NULL});
        tr->m_escalations =
            avk_metrics_counter(m, "avk_tracker_escalations_total",
                                "DeviationEscalated written, by ladder step and reason.",
                                (const char *[]){"step", "reason", NULL});
        tr->m_reminders = avk_metrics_counter(m, "avk_tracker_reminders_total",
                                              "DeadlineReminder written, by deadline.",
                                              (const char *[]){"deadline", NULL});
        tr->m_open = avk_metrics_gauge(m, "avk_tracker_open", "Open deviations by receiving party.",
                                       (const char *[]){"party", NULL});
        tr->m_overdue =
            avk_metrics_gauge(m, "avk_tracker_overdue",
                              "Open deviations with a deadline passed unmet, by receiving party.",
                              (const char *[]){"party", NULL});
        tr->m_ack_q = avk_metrics_gauge(
            m, "avk_tracker_time_to_acknowledge_seconds",
            "Routing to acknowledgement, p50 and p90 over the party's last 1024 (summary-style).",
            (const char *[]){"party", "quantile", NULL});
        tr->m_answer_q = avk_metrics_gauge(
            m, "avk_tracker_time_to_answer_seconds",
            "Routing to answer, p50 and p90 over the party's last 1024 (summary-style).",
            (const char *[]){"party", "quantile", NULL});
        tr->m_statuses =
            avk_metrics_series(avk_metrics_counter(m, "avk_tracker_status_total",
                                                   "DeviationStatus records written.", NULL),
                               NULL);
        tr->m_deadletter = avk_metrics_series(
            avk_metrics_counter(m, "avk_tracker_deadlettered_total",
                                "Records written to the dead-letter topic.", NULL),
            NULL);
        tr->m_kept = avk_metrics_series(
            avk_metrics_gauge(m, "avk_tracker_kept", "Responses waiting for their routing.", NULL),
            NULL);
        tr->m_judge_wait = avk_metrics_series(
            avk_metrics_gauge(m, "avk_tracker_deadlines_waiting_ms",
                              "How long due timers have waited for the inputs to be read to "
                              "their end (0: they are judged on time).",
                              NULL),
            NULL);
        tr->m_owed = avk_metrics_series(
            avk_metrics_counter(m, "avk_tracker_feedback_rewritten_total",
                                "DeviationFeedback written after a restart: its status record was "
                                "in Kafka, it was not (a crash between the two).",
                                NULL),
            NULL);
        tr->m_tick = avk_metrics_series(
            avk_metrics_histogram(m, "avk_tracker_tick_seconds",
                                  "One pass over the due timers (reminders, deadlines).", NULL,
                                  AVK_METRICS_LATENCY_BUCKETS, AVK_METRICS_LATENCY_BUCKET_CNT),
            NULL);
        return tr->m_inputs && tr->m_escalations && tr->m_reminders && tr->m_open &&
                       tr->m_overdue && tr->m_ack_q && tr->m_answer_q && tr->m_statuses &&
                       tr->m_deadletter && tr->m_kept && tr->m_judge_wait && tr->m_owed &&
                       tr->m_tick
                   ? 0
                   : -1;
}

avk_tracker_t *avk_tracker_new(const avk_config_t *cfg, avk_tracker_clock_fn clock,
                               void *clock_opaque, char *errstr, size_t errstr_size)
{
        static const char *const in_keys[IN_TOPICS] = {"topic.routed", "topic.response",
                                                       "topic.delivery.failed", "topic.reported"};
        static const char *const in_schemas[IN_TOPICS] = {"DeviationRouted", "DeviationResponse",
                                                          "DeliveryFailed", "DeviationReported"};
        static const char *const out_keys[OUT_TOPICS] = {"topic.status", "topic.escalated",
                                                         "topic.reminder", "topic.feedback"};
        static const char *const out_schemas[OUT_TOPICS] = {
            "DeviationStatus", "DeviationEscalated", "DeadlineReminder", "DeviationFeedback"};
        avk_tracker_t *tr = calloc(1, sizeof(*tr));
        if (!tr) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        tr->clock = clock;
        tr->clock_opaque = clock_opaque;
        avk_clock_init(&tr->processing_clock, avk_config_get(cfg, "tracker.clock.file"));
        tr->tick_ms = avk_config_get_int(cfg, "tracker.tick.ms");
        tr->feedback_check_ms = avk_config_get_int(cfg, "tracker.feedback.check.ms");
        if (avk_env_open(&tr->env, cfg, errstr, errstr_size) != 0)
                goto fail;
        for (int k = 0; k < IN_TOPICS; k++) {
                tr->in_topic[k] = avk_config_get(cfg, in_keys[k]);
                tr->in_schema[k] = avk_catalog_by_name(tr->env.catalog, in_schemas[k]);
        }
        for (int k = 0; k < OUT_TOPICS; k++) {
                tr->out_topic[k] = avk_config_get(cfg, out_keys[k]);
                tr->out_schema[k] = avk_catalog_by_name(tr->env.catalog, out_schemas[k]);
        }
        tr->deadletter_topic = avk_config_get(cfg, "topic.deadletter");
        snprintf(tr->group, sizeof(tr->group), "%s", avk_config_get(cfg, "tracker.group.id"));
        if (load_files(tr, cfg, errstr, errstr_size) != 0)
                goto fail;
        struct avk_track_options opt = {
            .policy = tr->policy,
            .sink = sink,
            .sink_opaque = tr,
            .kept_max = (size_t)avk_config_get_int(cfg, "tracker.kept.max"),
            .kept_max_ms = avk_config_get_int(cfg, "tracker.kept.max.ms"),
            .desk_hsa_id = avk_directory_triage_desk(tr->dir)->hsa_id,
        };
        tr->track = avk_track_new(&opt);
        tr->feedback = avk_feedback_new(tr->policy, tr->dir);
        tr->codec = avk_codec_new(tr->env.catalog, tr->env.registry);
        if (!tr->track || !tr->feedback || !tr->codec || make_metrics(tr) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        for (int k = 0; k < IN_TOPICS; k++)
                avro_generic_value_new(avk_schema_iface(tr->in_schema[k]), &tr->in_value[k]);
        for (int k = 0; k < OUT_TOPICS; k++)
                avro_generic_value_new(avk_schema_iface(tr->out_schema[k]), &tr->out_value[k]);
        avro_generic_value_new(avk_schema_iface(tr->in_schema[IN_RESPONSE]), &tr->kept_value);
        struct avk_service_options opts = {.component = COMPONENT,
                                           .metric_prefix = "avk_tracker",
                                           .group = tr->group,
                                           .inputs = tr->in_topic,
                                           .input_cnt = IN_TOPICS,
                                           .outputs = tr->out_topic,
                                           .output_cnt = OUT_TOPICS,
                                           .revoke_note =
                                               "the next owner rebuilds and writes them again",
                                           .metrics = tr->metrics,
                                           .hooks = {.on_record = on_record,
                                                     .on_tick = on_tick,
                                                     .on_rebuild = on_rebuild,
                                                     .on_drop = on_drop,
                                                     .on_revoke = on_revoke,
                                                     .describe = describe,
                                                     .summary = summary,
                                                     .acked = on_acked,
                                                     .still_wanted = still_wanted,
                                                     .opaque = tr}};
        if (!(tr->service = avk_service_new(cfg, &opts, errstr, errstr_size)))
                goto fail;
        tr->outbox = avk_service_outbox(tr->service);
        /* The clock file's first value, so that a tracker under test starts
         * at the test's time rather than at 0. */
        avk_track_advance(tr->track, now_ms(tr));
        return tr;
fail:
        avk_tracker_destroy(tr);
        return NULL;
}

void avk_tracker_destroy(avk_tracker_t *tr)
{
        if (!tr)
                return;
        while (!LIST_EMPTY(&tr->kept))
                kept_free(LIST_FIRST(&tr->kept));
        avk_service_destroy(tr->service);
        avk_track_destroy(tr->track);
        avk_feedback_destroy(tr->feedback);
        for (int k = 0; k < IN_TOPICS; k++) {
                if (tr->in_value[k].self)
                        avro_value_decref(&tr->in_value[k]);
        }
        for (int k = 0; k < OUT_TOPICS; k++) {
                if (tr->out_value[k].self)
                        avro_value_decref(&tr->out_value[k]);
        }
        if (tr->kept_value.self)
                avro_value_decref(&tr->kept_value);
        for (int i = 0; i < MAX_FIGURE_PARTIES; i++)
                free(tr->figures[i]);
        avk_codec_destroy(tr->codec);
        avk_metrics_destroy(tr->metrics);
        avk_deadlines_destroy(tr->policy);
        avk_directory_destroy(tr->dir);
        avk_env_close(&tr->env);
        free(tr);
}
