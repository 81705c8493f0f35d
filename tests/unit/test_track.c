/*
 * The tracker's core against the shipped deadline policy (data/deadlines.json)
 * on a fake clock: what a receiving unit and a reporter would see happen to a
 * deviation - its status records, reminders and escalations up the ladder -
 * for inputs in order, out of order, twice, from the wrong party, and after
 * a rebuild from the outputs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/calendar.h"
#include "consumer/track/deadlines.h"
#include "consumer/track/track.h"

#define DEV   "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10"
#define OTHER "6a0e7c52-1b3d-4f8a-9c2e-5d7f1a3b9e04"
#define DAY   (24 * 3600 * 1000LL)
#define MAX   256

struct seen {
        enum avk_track_action_kind kind;
        uint64_t ticket;
        char id[37]; /* state, escalation or reminder id */
        char dev[37];
        int state, version, step, hop, overdue, reason, deadline_kind, settled;
        int64_t at, deadline, answer_deadline, ack_deadline;
        int64_t time_to_answer;
        char cause[64];
        char rule[32];
        int acked;
};

static avk_deadlines_t *policy;
static avk_track_t *t;
static struct seen seen[MAX];
static int seen_cnt, acked_upto;
static int64_t now;
static int64_t t0; /* Monday 2 March 2026, 09:00 Stockholm */

static int record(void *opaque, const struct avk_track_action *a)
{
        (void)opaque;
        ck_assert_int_lt(seen_cnt, MAX);
        struct seen *s = &seen[seen_cnt++];
        memset(s, 0, sizeof(*s));
        s->kind = a->kind;
        s->ticket = a->ticket;
        switch (a->kind) {
        case AVK_TRACK_STATUS:
                snprintf(s->id, sizeof(s->id), "%s", a->u.status.state_id);
                snprintf(s->dev, sizeof(s->dev), "%s", a->u.status.deviation_id);
                snprintf(s->cause, sizeof(s->cause), "%s", a->u.status.cause);
                snprintf(s->rule, sizeof(s->rule), "%s", a->u.status.deadline_rule);
                s->state = a->u.status.state;
                s->version = a->u.status.version;
                s->step = a->u.status.step;
                s->hop = a->u.status.hop;
                s->overdue = a->u.status.overdue;
                s->at = a->u.status.changed_at;
                s->ack_deadline = a->u.status.acknowledge_deadline_at;
                s->answer_deadline = a->u.status.answer_deadline_at;
                s->time_to_answer = a->u.status.time_to_answer_ms;
                break;
        case AVK_TRACK_ESCALATION:
                snprintf(s->id, sizeof(s->id), "%s", a->u.escalation.escalation_id);
                snprintf(s->dev, sizeof(s->dev), "%s", a->u.escalation.deviation_id);
                s->step = a->u.escalation.step;
                s->reason = a->u.escalation.reason;
                s->hop = a->u.escalation.hop;
                s->at = a->u.escalation.escalated_at;
                s->deadline = a->u.escalation.deadline_at;
                break;
        case AVK_TRACK_REMINDER:
                snprintf(s->id, sizeof(s->id), "%s", a->u.reminder.reminder_id);
                snprintf(s->dev, sizeof(s->dev), "%s", a->u.reminder.deviation_id);
                s->deadline_kind = a->u.reminder.kind;
                s->at = a->u.reminder.reminded_at;
                s->deadline = a->u.reminder.deadline_at;
                s->hop = a->u.reminder.hop;
                break;
        case AVK_TRACK_SETTLED:
                s->settled = a->u.settled.result;
                s->acked = 1;
                break;
        }
        return 0;
}

/* Kafka acknowledges every output so far. */
static void ack_all(void)
{
        for (; acked_upto < seen_cnt; acked_upto++) {
                struct seen *s = &seen[acked_upto];
                if (!s->acked) {
                        s->acked = 1;
                        avk_track_acked(t, s->dev);
                }
        }
}

static avk_track_t *make(void)
{
        struct avk_track_options o = {.policy = policy, .sink = record, .kept_max = 4};
        avk_track_t *track = avk_track_new(&o);
        ck_assert_ptr_nonnull(track);
        return track;
}

static void setup(void)
{
        struct avk_errors errs;
        avk_errors_init(&errs);
        policy = avk_deadlines_load(AVK_SOURCE_DIR "/data/deadlines.json", &errs);
        ck_assert_msg(policy != NULL, "%s", errs.msg[0]);
        t = make();
        seen_cnt = acked_upto = 0;
        t0 = avk_calendar_from_local(2026, 3, 2, 9, 0, 0);
        now = t0;
}

static void teardown(void)
{
        avk_track_destroy(t);
        avk_deadlines_destroy(policy);
}

static enum avk_track_result routed_to(const char *dev, int hop, const char *receiver,
                                       const char *harm, int64_t at)
{
        char event[64];
        snprintf(event, sizeof(event), "e%d-%s", hop, dev);
        struct avk_track_routed in = {.event_id = event,
                                      .deviation_id = dev,
                                      .routed_at = at,
                                      .hop = hop,
                                      .reporter_party = "1480",
                                      .receiver_party = receiver,
                                      .receiver_unit = NULL,
                                      .category = "DISCHARGE_PLANNING",
                                      .harm_level = harm,
                                      .lex_maria = 0,
                                      .partition = 2};
        return avk_track_routed(t, &in);
}

static enum avk_track_result routed(int64_t at)
{
        return routed_to(DEV, 0, "VGR", "LOW", at);
}

static enum avk_track_result respond(const char *id, enum avk_track_response_kind kind,
                                     const char *party, int64_t at)
{
        struct avk_track_response in = {.response_id = id,
                                        .deviation_id = DEV,
                                        .responded_at = at,
                                        .party = party,
                                        .kind = kind,
                                        .partition = 2,
                                        .ticket = 77};
        return avk_track_respond(t, &in);
}

static long advance(int64_t to)
{
        now = to;
        long n = avk_track_advance(t, to);
        ck_assert_int_ge(n, 0);
        return n;
}

static int count(enum avk_track_action_kind kind, int from)
{
        int n = 0;
        for (int i = from; i < seen_cnt; i++)
                n += seen[i].kind == kind;
        return n;
}

static const struct seen *last(enum avk_track_action_kind kind)
{
        for (int i = seen_cnt - 1; i >= 0; i--) {
                if (seen[i].kind == kind)
                        return &seen[i];
        }
        ck_abort_msg("no action of kind %d", (int)kind);
        return NULL;
}

static int64_t deadline(const struct avk_deadline_span *span, int64_t from)
{
        return avk_deadline_after(span, from);
}

static const struct avk_deadline_terms *terms(const char *harm)
{
        return avk_deadlines_lookup(policy, "VGR", "DISCHARGE_PLANNING", harm, 0);
}

/* ---- the process in order ---- */

START_TEST(routing_opens_the_deviation_with_the_policy_deadlines)
{
        ck_assert_int_eq(routed(t0), AVK_TRACK_APPLIED);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_ROUTED);
        ck_assert_int_eq(s->version, 1);
        ck_assert_str_eq(s->rule, "D-DEFAULT");
        ck_assert_int_eq(s->ack_deadline, deadline(&terms("LOW")->acknowledge, t0));
        ck_assert_int_eq(s->answer_deadline, deadline(&terms("LOW")->answer, t0));
        ck_assert_str_eq(s->cause, "e0-" DEV);
        ck_assert_uint_eq(avk_track_open_cnt(t), 1);
        /* Severe harm: the shorter rule. */
        ck_assert_int_eq(routed_to(OTHER, 0, "VGR", "SEVERE", t0), AVK_TRACK_APPLIED);
        ck_assert_str_eq(last(AVK_TRACK_STATUS)->rule, "D-SEVERE-HARM");
}
END_TEST

START_TEST(an_answer_not_disputed_within_the_window_closes_the_deviation)
{
        routed(t0);
        ck_assert_int_eq(respond("r1", AVK_TRACK_ACKNOWLEDGE, "VGR", t0 + 3600000),
                         AVK_TRACK_APPLIED);
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->state, AVK_TRACK_ACKNOWLEDGED);
        int64_t answered = t0 + 10 * DAY;
        ck_assert_int_eq(respond("r2", AVK_TRACK_ANSWER, "VGR", answered), AVK_TRACK_APPLIED);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_ANSWERED);
        ck_assert_int_eq(s->time_to_answer, 10 * DAY);
        ack_all();
        int64_t closes = deadline(&terms("LOW")->dispute_window, answered);
        ck_assert_int_eq(advance(closes - 1), 0);
        ck_assert_int_eq(advance(closes), 1);
        s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_CLOSED);
        ck_assert_int_eq(s->at, closes);
        ck_assert_uint_eq(avk_track_open_cnt(t), 0);
        /* Closed is final: a late input changes nothing. */
        ck_assert_int_eq(respond("r3", AVK_TRACK_DISPUTE, "1480", closes + 1),
                         AVK_TRACK_CLOSED_ALREADY);
        ck_assert_int_eq(routed(t0), AVK_TRACK_CLOSED_ALREADY);
        ck_assert_uint_eq(avk_track_open_cnt(t), 0);
}
END_TEST

START_TEST(a_reminder_comes_before_each_deadline_once)
{
        routed(t0);
        ack_all();
        const struct avk_deadline_terms *tm = terms("LOW");
        int64_t ack_deadline = deadline(&tm->acknowledge, t0);
        int64_t remind = avk_deadline_before(&tm->remind_before, ack_deadline);
        ck_assert_int_eq(advance(remind - 1), 0);
        ck_assert_int_eq(advance(remind), 1);
        const struct seen *r = last(AVK_TRACK_REMINDER);
        ck_assert_int_eq(r->deadline_kind, AVK_TRACK_DEADLINE_ACKNOWLEDGE);
        ck_assert_int_eq(r->deadline, ack_deadline);
        ck_assert_int_eq(r->at, remind);
        ack_all();
        ck_assert_int_eq(advance(remind + 1000), 0);
        ck_assert_int_eq(count(AVK_TRACK_REMINDER, 0), 1);
}
END_TEST

START_TEST(an_unacknowledged_deviation_escalates_to_the_manager_once)
{
        routed(t0);
        respond("r0", AVK_TRACK_ACKNOWLEDGE, "VGR", t0 + 1000); /* first: no ack escalation... */
        ack_all();
        /* ...so use another deviation that nobody acknowledges. */
        routed_to(OTHER, 0, "VGR", "LOW", t0);
        ack_all();
        int64_t ack_deadline = deadline(&terms("LOW")->acknowledge, t0);
        advance(ack_deadline - 1);
        ack_all();
        int before = seen_cnt;
        advance(ack_deadline);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, before), 1);
        const struct seen *e = last(AVK_TRACK_ESCALATION);
        ck_assert_str_eq(e->dev, OTHER);
        ck_assert_int_eq(e->step, AVK_TRACK_STEP_MANAGER);
        ck_assert_int_eq(e->reason, AVK_TRACK_ACKNOWLEDGE_DEADLINE_PASSED);
        ck_assert_int_eq(e->deadline, ack_deadline);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_ESCALATED);
        ck_assert_int_eq(s->step, AVK_TRACK_STEP_MANAGER);
        ck_assert_int_eq(s->overdue, 1);
        ack_all();
        before = seen_cnt;
        advance(ack_deadline + DAY);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, before), 0);
}
END_TEST

/* Nobody ever answers: the deviation climbs one step per passed deadline
 * to the county-level forum and stops there (never to court). */
START_TEST(an_unanswered_deviation_climbs_the_ladder_and_stops_at_the_county_forum)
{
        routed(t0);
        int64_t at = t0;
        for (int i = 0; i < 400; i++) {
                ack_all();
                at += DAY / 2;
                advance(at);
        }
        ack_all();
        int steps[5] = {0};
        for (int i = 0; i < seen_cnt; i++) {
                if (seen[i].kind == AVK_TRACK_ESCALATION)
                        steps[seen[i].step]++;
        }
        ck_assert_int_eq(steps[AVK_TRACK_STEP_MANAGER], 1);
        ck_assert_int_eq(steps[AVK_TRACK_STEP_MANAGERS_MANAGER], 1);
        ck_assert_int_eq(steps[AVK_TRACK_STEP_LOCAL_FORUM], 1);
        ck_assert_int_eq(steps[AVK_TRACK_STEP_COUNTY_FORUM], 1);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->step, AVK_TRACK_STEP_COUNTY_FORUM);
        ck_assert_int_eq(s->overdue, 1);
        ck_assert_uint_eq(avk_track_open_cnt(t), 1);
        ck_assert_int_eq(avk_track_next_due(t), INT64_MAX);
}
END_TEST

/* ---- order, duplicates, parties ---- */

START_TEST(a_response_before_its_routing_is_kept_and_applied_when_it_arrives)
{
        ck_assert_int_eq(respond("r1", AVK_TRACK_ACKNOWLEDGE, "VGR", t0 + 5000), AVK_TRACK_KEPT);
        ck_assert_int_eq(respond("r1", AVK_TRACK_ACKNOWLEDGE, "VGR", t0 + 5000),
                         AVK_TRACK_DUPLICATE);
        ck_assert_uint_eq(avk_track_kept_cnt(t), 1);
        ck_assert_int_eq(routed(t0), AVK_TRACK_APPLIED);
        ck_assert_uint_eq(avk_track_kept_cnt(t), 0);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_ACKNOWLEDGED);
        ck_assert_int_eq(s->version, 2);
        ck_assert_int_eq(s->ticket, 77);
        const struct seen *settled = last(AVK_TRACK_SETTLED);
        ck_assert_int_eq(settled->ticket, 77);
        ck_assert_int_eq(settled->settled, AVK_TRACK_APPLIED);
}
END_TEST

START_TEST(a_kept_response_whose_routing_never_comes_is_settled_as_such)
{
        advance(t0);
        ck_assert_int_eq(respond("r1", AVK_TRACK_ANSWER, "VGR", t0), AVK_TRACK_KEPT);
        ck_assert_int_eq(advance(t0 + 60000), 0);
        ck_assert_int_eq(advance(t0 + 10 * 60000), 1);
        ck_assert_int_eq(last(AVK_TRACK_SETTLED)->settled, AVK_TRACK_NO_ROUTING);
        ck_assert_uint_eq(avk_track_kept_cnt(t), 0);
        /* The bound: kept_max = 4. */
        for (int i = 0; i < 4; i++) {
                char id[8];
                snprintf(id, sizeof(id), "k%d", i);
                ck_assert_int_eq(respond(id, AVK_TRACK_ANSWER, "VGR", t0), AVK_TRACK_KEPT);
        }
        ck_assert_int_eq(respond("k4", AVK_TRACK_ANSWER, "VGR", t0), AVK_TRACK_FULL);
}
END_TEST

START_TEST(duplicates_and_replays_change_nothing)
{
        routed(t0);
        ck_assert_int_eq(routed(t0), AVK_TRACK_DUPLICATE);
        respond("a1", AVK_TRACK_ACKNOWLEDGE, "VGR", t0 + 1000);
        ck_assert_int_eq(respond("a1", AVK_TRACK_ACKNOWLEDGE, "VGR", t0 + 1000),
                         AVK_TRACK_DUPLICATE);
        respond("n1", AVK_TRACK_ANSWER, "VGR", t0 + 2 * DAY);
        ck_assert_int_eq(respond("n1", AVK_TRACK_ANSWER, "VGR", t0 + 2 * DAY), AVK_TRACK_DUPLICATE);
        ck_assert_int_eq(respond("d1", AVK_TRACK_DISPUTE, "1480", t0 + 3 * DAY), AVK_TRACK_APPLIED);
        int versions = last(AVK_TRACK_STATUS)->version;
        /* The whole stream again, as after a restart: nothing new. */
        ck_assert_int_eq(routed(t0), AVK_TRACK_DUPLICATE);
        ck_assert_int_eq(respond("a1", AVK_TRACK_ACKNOWLEDGE, "VGR", t0 + 1000),
                         AVK_TRACK_DUPLICATE);
        ck_assert_int_eq(respond("n1", AVK_TRACK_ANSWER, "VGR", t0 + 2 * DAY), AVK_TRACK_DUPLICATE);
        ck_assert_int_eq(respond("d1", AVK_TRACK_DISPUTE, "1480", t0 + 3 * DAY),
                         AVK_TRACK_DUPLICATE);
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->version, versions);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 1);
}
END_TEST

START_TEST(responses_from_the_wrong_party_are_ignored)
{
        routed(t0);
        ck_assert_int_eq(respond("x", AVK_TRACK_ANSWER, "1480", t0 + 1), AVK_TRACK_NOT_RECEIVER);
        ck_assert_int_eq(respond("y", AVK_TRACK_ACKNOWLEDGE, "1401", t0 + 1),
                         AVK_TRACK_NOT_RECEIVER);
        respond("n", AVK_TRACK_ANSWER, "VGR", t0 + DAY);
        ck_assert_int_eq(respond("z", AVK_TRACK_DISPUTE, "VGR", t0 + 2 * DAY),
                         AVK_TRACK_NOT_REPORTER);
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->state, AVK_TRACK_ANSWERED);
}
END_TEST

START_TEST(a_rejection_waits_for_the_next_hop_which_resets_the_deadlines)
{
        routed(t0);
        ack_all();
        ck_assert_int_eq(respond("w", AVK_TRACK_REJECT, "VGR", t0 + 1000), AVK_TRACK_APPLIED);
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->state, AVK_TRACK_REJECTED);
        ck_assert_int_eq(avk_track_next_due(t), INT64_MAX);
        int64_t rerouted = t0 + 2000;
        ck_assert_int_eq(routed_to(DEV, 1, "1480", "LOW", rerouted), AVK_TRACK_APPLIED);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_ROUTED);
        ck_assert_int_eq(s->hop, 1);
        ck_assert_int_eq(s->ack_deadline, deadline(&terms("LOW")->acknowledge, rerouted));
        /* The old hop is stale; the old receiver is no longer the receiver. */
        ck_assert_int_eq(routed(t0), AVK_TRACK_STALE);
        ck_assert_int_eq(respond("v", AVK_TRACK_ACKNOWLEDGE, "VGR", t0 + 3000),
                         AVK_TRACK_NOT_RECEIVER);
}
END_TEST

START_TEST(a_disputed_answer_climbs_one_step_and_asks_for_a_new_answer)
{
        routed(t0);
        respond("n1", AVK_TRACK_ANSWER, "VGR", t0 + DAY);
        int64_t disputed = t0 + 2 * DAY;
        ck_assert_int_eq(respond("d1", AVK_TRACK_DISPUTE, "1480", disputed), AVK_TRACK_APPLIED);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_DISPUTED);
        ck_assert_int_eq(s->step, AVK_TRACK_STEP_MANAGER);
        ck_assert_int_eq(s->answer_deadline, deadline(&terms("LOW")->step_answer, disputed));
        const struct seen *e = last(AVK_TRACK_ESCALATION);
        ck_assert_int_eq(e->reason, AVK_TRACK_ANSWER_DISPUTED);
        /* A second answer, after the dispute, counts. */
        ck_assert_int_eq(respond("n2", AVK_TRACK_ANSWER, "VGR", disputed + DAY), AVK_TRACK_APPLIED);
        ck_assert_int_eq(respond("d2", AVK_TRACK_DISPUTE, "1480", disputed + 2 * DAY),
                         AVK_TRACK_APPLIED);
        ck_assert_int_eq(last(AVK_TRACK_ESCALATION)->step, AVK_TRACK_STEP_MANAGERS_MANAGER);
}
END_TEST

START_TEST(a_failed_delivery_escalates_to_the_manager_once)
{
        routed(t0);
        struct avk_track_failure f = {.event_id = "f1",
                                      .deviation_id = DEV,
                                      .hop = 0,
                                      .failed_at = t0 + 3600000,
                                      .partition = 2};
        ck_assert_int_eq(avk_track_failed(t, &f), AVK_TRACK_APPLIED);
        const struct seen *e = last(AVK_TRACK_ESCALATION);
        ck_assert_int_eq(e->reason, AVK_TRACK_DELIVERY_FAILED);
        ck_assert_int_eq(e->step, AVK_TRACK_STEP_MANAGER);
        ck_assert_int_eq(avk_track_failed(t, &f), AVK_TRACK_DUPLICATE);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 1);
}
END_TEST

/* A deviation's timers wait while its outputs are in flight, so that its
 * outputs are written in the order they were decided. */
START_TEST(timers_wait_for_outputs_in_flight)
{
        routed(t0);
        int64_t ack_deadline = deadline(&terms("LOW")->acknowledge, t0);
        ck_assert_int_eq(advance(ack_deadline), 0); /* the ROUTED record is not acked yet */
        ack_all();
        /* Now the late reminder (past its deadline too: no longer news, not
         * written), then the escalation with its status record. */
        ck_assert_int_eq(advance(ack_deadline), 2);
        ck_assert_int_eq(count(AVK_TRACK_REMINDER, 0), 0);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 1);
}
END_TEST

/* ---- rebuild ---- */

static struct avk_track_status status_of(const struct seen *s, int64_t acked_at)
{
        return (struct avk_track_status){.deviation_id = s->dev,
                                         .version = s->version,
                                         .state = s->state,
                                         .changed_at = s->at,
                                         .cause = s->cause,
                                         .hop = s->hop,
                                         .reporter_party = "1480",
                                         .receiver_party = "VGR",
                                         .category = "DISCHARGE_PLANNING",
                                         .harm_level = "LOW",
                                         .deadline_rule = s->rule,
                                         .routed_at = t0,
                                         .acknowledge_deadline_at = s->ack_deadline,
                                         .answer_deadline_at = s->answer_deadline,
                                         .acknowledged_at = acked_at,
                                         .answered_at = AVK_TRACK_NONE,
                                         .closed_at = AVK_TRACK_NONE,
                                         .overdue = s->overdue,
                                         .step = s->step,
                                         .partition = 2};
}

START_TEST(a_rebuild_fires_what_passed_while_down_and_nothing_twice)
{
        routed(t0);
        ack_all();
        struct avk_track_status v1 = status_of(last(AVK_TRACK_STATUS), AVK_TRACK_NONE);
        int64_t ack_deadline = deadline(&terms("LOW")->acknowledge, t0);
        int64_t remind = avk_deadline_before(&terms("LOW")->remind_before, ack_deadline);
        advance(remind);
        struct seen reminder = *last(AVK_TRACK_REMINDER);
        /* Down from here; a new process rebuilds from the outputs. */
        avk_track_destroy(t);
        t = make();
        int before = seen_cnt;
        ck_assert_int_eq(avk_track_restore_status(t, &v1), 0);
        struct avk_track_reminder r = {.deviation_id = DEV,
                                       .hop = 0,
                                       .kind = AVK_TRACK_DEADLINE_ACKNOWLEDGE,
                                       .deadline_at = reminder.deadline};
        avk_track_restore_reminder(t, &r);
        ck_assert_int_eq(avk_track_restore_done(t, 2), 0);
        ck_assert_int_eq(seen_cnt, before);
        /* Back after the deadline: it fires now, the reminder does not again. */
        advance(ack_deadline + DAY);
        ck_assert_int_eq(count(AVK_TRACK_REMINDER, before), 0);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, before), 1);
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->version, 2);
}
END_TEST

START_TEST(a_rebuild_writes_the_half_of_an_escalation_that_is_missing)
{
        routed(t0);
        ack_all();
        int64_t ack_deadline = deadline(&terms("LOW")->acknowledge, t0);
        advance(ack_deadline);
        ack_all();
        advance(ack_deadline);
        ack_all();
        struct seen routed_rec = seen[0];
        struct seen escalated_rec = *last(AVK_TRACK_STATUS);
        struct seen esc = *last(AVK_TRACK_ESCALATION);
        ck_assert_int_eq(escalated_rec.state, AVK_TRACK_ESCALATED);
        struct avk_track_escalation e = {.deviation_id = DEV,
                                         .escalated_at = esc.at,
                                         .hop = 0,
                                         .step = esc.step,
                                         .reason = esc.reason,
                                         .deadline_at = esc.deadline,
                                         .partition = 2};
        snprintf(e.escalation_id, sizeof(e.escalation_id), "%s", esc.id);

        /* Crash 1: the escalation was written, its status record was not. */
        avk_track_destroy(t);
        t = make();
        int before = seen_cnt;
        struct avk_track_status v1 = status_of(&routed_rec, AVK_TRACK_NONE);
        avk_track_restore_status(t, &v1);
        ck_assert_int_eq(avk_track_restore_escalation(t, &e), 0);
        avk_track_restore_done(t, 2);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, before), 0);
        ck_assert_int_eq(count(AVK_TRACK_STATUS, before), 1);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_ESCALATED);
        ck_assert_int_eq(s->version, escalated_rec.version);
        ck_assert_str_eq(s->id, escalated_rec.id);
        ack_all();
        advance(ack_deadline + DAY);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, before), 0);

        /* Crash 2: the status record was written, the escalation was not. */
        avk_track_destroy(t);
        t = make();
        before = seen_cnt;
        struct avk_track_status v2 = status_of(&escalated_rec, AVK_TRACK_NONE);
        avk_track_restore_status(t, &v1);
        avk_track_restore_status(t, &v2);
        ck_assert_int_eq(avk_track_restore_done(t, 2), 1);
        const struct seen *again = last(AVK_TRACK_ESCALATION);
        ck_assert_str_eq(again->id, esc.id);
        ck_assert_int_eq(again->reason, AVK_TRACK_ACKNOWLEDGE_DEADLINE_PASSED);
        ack_all();
        advance(ack_deadline + DAY);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, before), 1);
}
END_TEST

/* track.h's enums mirror the schemas' symbols in order: the names the outputs carry. */
START_TEST(states_steps_reasons_and_kinds_carry_the_schemas_symbols)
{
        static const char *const states[] = {"ROUTED",   "ACKNOWLEDGED", "ANSWERED", "REJECTED",
                                             "DISPUTED", "ESCALATED",    "CLOSED"};
        static const char *const steps[] = {"MANAGER", "MANAGERS_MANAGER", "LOCAL_FORUM",
                                            "COUNTY_FORUM"};
        static const char *const reasons[] = {"ACKNOWLEDGE_DEADLINE_PASSED",
                                              "ANSWER_DEADLINE_PASSED", "ANSWER_DISPUTED",
                                              "DELIVERY_FAILED"};
        static const char *const kinds[] = {"ACKNOWLEDGED", "ANSWERED", "REJECTED_WRONG_RECEIVER",
                                            "DISPUTED"};

        for (int i = 0; i < AVK_TRACK_STATE_CNT; i++) {
                ck_assert_str_eq(avk_track_state_name((enum avk_track_state)i), states[i]);
                ck_assert_int_eq(avk_track_state_parse(states[i]), i);
        }
        ck_assert_str_eq(avk_track_state_name(AVK_TRACK_STATE_CNT), "UNKNOWN");
        ck_assert_int_eq(avk_track_state_parse("UNKNOWN"), -1);
        for (int step = AVK_TRACK_STEP_MANAGER; step <= AVK_TRACK_STEP_COUNTY_FORUM; step++) {
                ck_assert_str_eq(avk_track_step_name(step), steps[step - 1]);
                ck_assert_int_eq(avk_track_step_parse(steps[step - 1]), step);
        }
        ck_assert_ptr_null(avk_track_step_name(AVK_TRACK_STEP_NONE));
        ck_assert_ptr_null(avk_track_step_name(AVK_TRACK_STEP_COUNTY_FORUM + 1));
        ck_assert_int_eq(avk_track_step_parse("COURT"), -1);
        ck_assert_int_eq(avk_track_step_parse(NULL), -1);
        for (int i = 0; i < AVK_TRACK_REASON_CNT; i++) {
                ck_assert_str_eq(avk_track_reason_name((enum avk_track_reason)i), reasons[i]);
                ck_assert_int_eq(avk_track_reason_parse(reasons[i]), i);
        }
        ck_assert_str_eq(avk_track_reason_name(AVK_TRACK_REASON_CNT), "UNKNOWN");
        for (int i = AVK_TRACK_ACKNOWLEDGE; i <= AVK_TRACK_DISPUTE; i++)
                ck_assert_int_eq(avk_track_response_kind_parse(kinds[i]), i);
        ck_assert_int_eq(avk_track_response_kind_parse("UNKNOWN"), -1);
        ck_assert_str_eq(avk_track_deadline_name(AVK_TRACK_DEADLINE_ACKNOWLEDGE), "ACKNOWLEDGE");
        ck_assert_str_eq(avk_track_deadline_name(AVK_TRACK_DEADLINE_ANSWER), "ANSWER");
        ck_assert_int_eq(avk_track_deadline_parse("ANSWER"), AVK_TRACK_DEADLINE_ANSWER);
        ck_assert_int_eq(avk_track_deadline_parse("UNKNOWN"), -1);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("track");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, routing_opens_the_deviation_with_the_policy_deadlines);
        tcase_add_test(tc, an_answer_not_disputed_within_the_window_closes_the_deviation);
        tcase_add_test(tc, a_reminder_comes_before_each_deadline_once);
        tcase_add_test(tc, an_unacknowledged_deviation_escalates_to_the_manager_once);
        tcase_add_test(tc, an_unanswered_deviation_climbs_the_ladder_and_stops_at_the_county_forum);
        tcase_add_test(tc, a_response_before_its_routing_is_kept_and_applied_when_it_arrives);
        tcase_add_test(tc, a_kept_response_whose_routing_never_comes_is_settled_as_such);
        tcase_add_test(tc, duplicates_and_replays_change_nothing);
        tcase_add_test(tc, responses_from_the_wrong_party_are_ignored);
        tcase_add_test(tc, a_rejection_waits_for_the_next_hop_which_resets_the_deadlines);
        tcase_add_test(tc, a_disputed_answer_climbs_one_step_and_asks_for_a_new_answer);
        tcase_add_test(tc, a_failed_delivery_escalates_to_the_manager_once);
        tcase_add_test(tc, timers_wait_for_outputs_in_flight);
        tcase_add_test(tc, a_rebuild_fires_what_passed_while_down_and_nothing_twice);
        tcase_add_test(tc, a_rebuild_writes_the_half_of_an_escalation_that_is_missing);
        tcase_add_test(tc, states_steps_reasons_and_kinds_carry_the_schemas_symbols);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
