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
#define DESK  "SE2321000131-E000000000001" /* the county's triage desk (data/directory.json) */
#define MAX   256

struct seen {
        enum avk_track_action_kind kind;
        uint64_t ticket;
        char id[37]; /* state, escalation or reminder id */
        char dev[37];
        int state, version, step, pending, hop, overdue, reason, deadline_kind, settled;
        int64_t at, deadline, answer_deadline, ack_deadline;
        int64_t time_to_answer;
        char cause[64];
        char rule[32];
        char party[16], counterpart[16]; /* an escalation's ladder and the other party, if any */
        int wrong_receiver_region;       /* a status's record of who answered "wrong receiver" */
        char wrong_receiver_municipality[16];
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
                s->pending = a->u.status.pending_step;
                s->hop = a->u.status.hop;
                s->overdue = a->u.status.overdue;
                s->at = a->u.status.changed_at;
                s->ack_deadline = a->u.status.acknowledge_deadline_at;
                s->answer_deadline = a->u.status.answer_deadline_at;
                s->time_to_answer = a->u.status.time_to_answer_ms;
                s->wrong_receiver_region = a->u.status.wrong_receiver_region;
                snprintf(s->wrong_receiver_municipality, sizeof(s->wrong_receiver_municipality),
                         "%s",
                         a->u.status.wrong_receiver_municipality
                             ? a->u.status.wrong_receiver_municipality
                             : "");
                break;
        case AVK_TRACK_ESCALATION:
                snprintf(s->id, sizeof(s->id), "%s", a->u.escalation.escalation_id);
                snprintf(s->dev, sizeof(s->dev), "%s", a->u.escalation.deviation_id);
                s->step = a->u.escalation.step;
                s->reason = a->u.escalation.reason;
                s->hop = a->u.escalation.hop;
                s->at = a->u.escalation.escalated_at;
                s->deadline = a->u.escalation.deadline_at;
                snprintf(s->party, sizeof(s->party), "%s", a->u.escalation.party);
                snprintf(s->counterpart, sizeof(s->counterpart), "%s",
                         a->u.escalation.counterpart ? a->u.escalation.counterpart : "");
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
        struct avk_track_options o = {
            .policy = policy, .sink = record, .kept_max = 4, .desk_hsa_id = DESK};
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

/* Hop hop of dev, reported by reporter, to receiver (unit: NULL, or DESK for the triage desk). */
static enum avk_track_result route(const char *dev, int hop, const char *reporter,
                                   const char *receiver, const char *unit, const char *harm,
                                   int64_t at)
{
        char event[64];
        snprintf(event, sizeof(event), "e%d-%s", hop, dev);
        struct avk_track_routed in = {.event_id = event,
                                      .deviation_id = dev,
                                      .routed_at = at,
                                      .hop = hop,
                                      .reporter_party = reporter,
                                      .receiver_party = receiver,
                                      .receiver_unit = unit,
                                      .category = "DISCHARGE_PLANNING",
                                      .harm_level = harm,
                                      .lex_maria = 0,
                                      .partition = 2};
        return avk_track_routed(t, &in);
}

static enum avk_track_result routed_to(const char *dev, int hop, const char *receiver,
                                       const char *harm, int64_t at)
{
        return route(dev, hop, "1480", receiver, NULL, harm, at);
}

static enum avk_track_result routed_hop(int hop, const char *reporter, const char *receiver,
                                        const char *unit, int64_t at)
{
        return route(DEV, hop, reporter, receiver, unit, "LOW", at);
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

/* e climbs party's ladder to step for reason, naming counterpart ("" for none). */
static void assert_escalation(const struct seen *e, int step, enum avk_track_reason reason,
                              const char *party, const char *counterpart)
{
        ck_assert_int_eq(e->kind, AVK_TRACK_ESCALATION);
        ck_assert_int_eq(e->step, step);
        ck_assert_int_eq(e->reason, reason);
        ck_assert_str_eq(e->party, party);
        ck_assert_str_eq(e->counterpart, counterpart);
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

/* A missed deadline is the receiver's delay, not a disagreement: the shipped
 * policy's one step goes straight to the receiver's "Chef över chef". */
START_TEST(a_missed_acknowledge_deadline_steps_once_to_the_receivers_managers_manager)
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
        assert_escalation(e, AVK_TRACK_STEP_MANAGERS_MANAGER, AVK_TRACK_ACKNOWLEDGE_DEADLINE_PASSED,
                          "VGR", "");
        ck_assert_int_eq(e->deadline, ack_deadline);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_ESCALATED);
        ck_assert_int_eq(s->step, AVK_TRACK_STEP_MANAGERS_MANAGER);
        ck_assert_int_eq(s->overdue, 1);
        ack_all();
        before = seen_cnt;
        advance(ack_deadline + DAY);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, before), 0);
}
END_TEST

/* Nobody ever answers: reminders, one step to "Chef över chef", and no
 * forum however many deadlines pass (docs/escalation.md). */
START_TEST(a_deviation_nobody_answers_never_climbs_to_a_forum)
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
        ck_assert_int_eq(steps[AVK_TRACK_STEP_MANAGER], 0);
        ck_assert_int_eq(steps[AVK_TRACK_STEP_MANAGERS_MANAGER], 1);
        ck_assert_int_eq(steps[AVK_TRACK_STEP_LOCAL_FORUM], 0);
        ck_assert_int_eq(steps[AVK_TRACK_STEP_COUNTY_FORUM], 0);
        ck_assert_int_gt(count(AVK_TRACK_REMINDER, 0), 0);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->step, AVK_TRACK_STEP_MANAGERS_MANAGER);
        ck_assert_int_eq(s->overdue, 1);
        ck_assert_uint_eq(avk_track_open_cnt(t), 1);
        ck_assert_int_eq(avk_track_next_due(t), INT64_MAX);
}
END_TEST

/* Replaces the shipped policy with one rule of D-DEFAULT's spans and the given extra keys. */
static void use_policy(const char *extra)
{
        static const char path[] = "test_track_policy.json";
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(
            f,
            "{\"rules\": [{\"id\": \"D-ALL\", \"because\": \"test\",\n"
            " \"acknowledge\": {\"working_days\": 3}, \"answer\": {\"days\": 60},\n"
            " \"remind_before\": {\"working_days\": 2}, \"step_answer\": {\"working_days\": 10},\n"
            " \"dispute_window\": {\"days\": 30}, %s}]}\n",
            extra);
        ck_assert_int_eq(fclose(f), 0);
        struct avk_errors errs;
        avk_errors_init(&errs);
        avk_track_destroy(t);
        avk_deadlines_destroy(policy);
        policy = avk_deadlines_load(path, &errs);
        ck_assert_msg(policy != NULL, "%s", errs.msg[0]);
        remove(path);
        t = make();
}

/* The deadline step is policy: without it a missed deadline gives reminders
 * and the overdue mark, and no escalation at all. */
START_TEST(without_the_deadline_step_a_missed_deadline_gives_reminders_only)
{
        use_policy("\"deadline_step\": false");
        routed(t0);
        for (int64_t at = t0; at < t0 + 120 * DAY; at += DAY / 2) {
                ack_all();
                advance(at);
        }
        ack_all();
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 0);
        ck_assert_int_eq(count(AVK_TRACK_REMINDER, 0), 2);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_ROUTED);
        ck_assert_int_eq(s->step, AVK_TRACK_STEP_NONE);
        ck_assert_int_eq(s->overdue, 1);
        ck_assert_int_eq(s->version, 2);
}
END_TEST

/* A forum step the policy makes manual waits for a person of either party to
 * confirm it: the dispute names it as pending and tells nobody yet. */
START_TEST(a_manual_forum_step_waits_for_confirmation_by_either_party)
{
        use_policy("\"manual_steps\": [\"LOCAL_FORUM\", \"COUNTY_FORUM\"]");
        routed(t0);
        int64_t at = t0;
        for (int round = 0; round < 3; round++) {
                char answer[16], dispute[16];
                snprintf(answer, sizeof(answer), "n%d", round);
                snprintf(dispute, sizeof(dispute), "d%d", round);
                at += DAY;
                ck_assert_int_eq(respond(answer, AVK_TRACK_ANSWER, "VGR", at), AVK_TRACK_APPLIED);
                at += DAY;
                ck_assert_int_eq(respond(dispute, AVK_TRACK_DISPUTE, "1480", at),
                                 AVK_TRACK_APPLIED);
        }
        /* Steps 1 and 2 are automatic (two escalations each); the third dispute waits. */
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 4);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_DISPUTED);
        ck_assert_int_eq(s->step, AVK_TRACK_STEP_MANAGERS_MANAGER);
        ck_assert_int_eq(s->pending, AVK_TRACK_STEP_LOCAL_FORUM);
        /* Only a party of the disagreement confirms, once. */
        ck_assert_int_eq(respond("c-other", AVK_TRACK_CONFIRM, "1490", at + 1000),
                         AVK_TRACK_NOT_PARTY);
        ck_assert_int_eq(respond("c1", AVK_TRACK_CONFIRM, "VGR", at + 2000), AVK_TRACK_APPLIED);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 6);
        assert_escalation(&seen[seen_cnt - 2], AVK_TRACK_STEP_LOCAL_FORUM,
                          AVK_TRACK_ANSWER_DISPUTED, "VGR", "1480");
        assert_escalation(&seen[seen_cnt - 1], AVK_TRACK_STEP_LOCAL_FORUM,
                          AVK_TRACK_ANSWER_DISPUTED, "1480", "VGR");
        s = last(AVK_TRACK_STATUS);
        ck_assert_int_eq(s->step, AVK_TRACK_STEP_LOCAL_FORUM);
        ck_assert_int_eq(s->pending, AVK_TRACK_STEP_NONE);
        ck_assert_int_eq(respond("c1", AVK_TRACK_CONFIRM, "VGR", at + 2000),
                         AVK_TRACK_NOT_EXPECTED);
        /* A new answer lets a pending step lapse: the next dispute asks again. */
        ck_assert_int_eq(respond("n3", AVK_TRACK_ANSWER, "VGR", at + DAY), AVK_TRACK_APPLIED);
        ck_assert_int_eq(respond("d3", AVK_TRACK_DISPUTE, "1480", at + 2 * DAY), AVK_TRACK_APPLIED);
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->pending, AVK_TRACK_STEP_COUNTY_FORUM);
        ck_assert_int_eq(respond("n4", AVK_TRACK_ANSWER, "VGR", at + 3 * DAY), AVK_TRACK_APPLIED);
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->pending, AVK_TRACK_STEP_NONE);
        ck_assert_int_eq(respond("c2", AVK_TRACK_CONFIRM, "1480", at + 4 * DAY),
                         AVK_TRACK_NOT_EXPECTED);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 6);
}
END_TEST

/* ---- both sides answer "wrong receiver" ---- */

/* The receiver of each hop in turn answers "wrong receiver"; then routing, with nobody left, sends
 * the deviation to the triage desk at the next hop. */
static void rejected_by_all_then_desk(const char *reporter, const char *const *receivers, int cnt)
{
        int64_t at = t0;
        for (int hop = 0; hop < cnt; hop++) {
                char id[16];
                snprintf(id, sizeof(id), "w%d", hop);
                ck_assert_int_eq(routed_hop(hop, reporter, receivers[hop], NULL, at),
                                 AVK_TRACK_APPLIED);
                ck_assert_int_eq(respond(id, AVK_TRACK_REJECT, receivers[hop], at + 3600000),
                                 AVK_TRACK_APPLIED);
                at += DAY;
        }
        ck_assert_int_eq(routed_hop(cnt, reporter, "VGR", DESK, at), AVK_TRACK_APPLIED);
}

START_TEST(both_sides_answering_wrong_receiver_start_the_local_forum_on_both_sides)
{
        /* A municipality reports; the region answers "wrong receiver"; the reporter counts for
         * its own side (routing excludes it), so routing has nobody left: both sides declined. */
        rejected_by_all_then_desk("1480", (const char *const[]){"VGR"}, 1);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 2);
        assert_escalation(&seen[seen_cnt - 2], AVK_TRACK_STEP_LOCAL_FORUM,
                          AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES, "VGR", "1480");
        assert_escalation(&seen[seen_cnt - 1], AVK_TRACK_STEP_LOCAL_FORUM,
                          AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES, "1480", "VGR");
        ck_assert_str_ne(seen[seen_cnt - 2].id, seen[seen_cnt - 1].id);
        /* Its acknowledgement deadline passes at the forum: an overdue mark, no new step. A
         * missed deadline's one step is to "Chef över chef", so a deadline's ESCALATED status
         * at another step is a mark (the feedback tells the reporter nothing of it). */
        int from = seen_cnt;
        int64_t end = now + 30 * DAY;
        for (int64_t at = now; at < end; at += DAY / 2) {
                ack_all();
                advance(at);
        }
        ack_all();
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, from), 0);
        const struct seen *s = last(AVK_TRACK_STATUS);
        ck_assert_int_ge(s - seen, from);
        ck_assert_int_eq(s->overdue, 1);
        ck_assert_str_eq(s->cause, "deadline:ACKNOWLEDGE");
        ck_assert_int_eq(s->state, AVK_TRACK_ESCALATED);
        ck_assert_int_eq(s->step, AVK_TRACK_STEP_LOCAL_FORUM);
        ck_assert_int_eq(s->hop, 1);
        ck_assert(s->wrong_receiver_region);
        ck_assert_str_eq(s->wrong_receiver_municipality, "");

        /* The region reports; a municipality, then the patient's municipality, answer "wrong
         * receiver": the forum is the last municipality's and the region's. */
        avk_track_destroy(t);
        t = make();
        seen_cnt = acked_upto = 0;
        rejected_by_all_then_desk("VGR", (const char *const[]){"1490", "1480"}, 2);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 2);
        assert_escalation(&seen[seen_cnt - 2], AVK_TRACK_STEP_LOCAL_FORUM,
                          AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES, "VGR", "1480");
        assert_escalation(&seen[seen_cnt - 1], AVK_TRACK_STEP_LOCAL_FORUM,
                          AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES, "1480", "VGR");
        ck_assert(!last(AVK_TRACK_STATUS)->wrong_receiver_region);
        ck_assert_str_eq(last(AVK_TRACK_STATUS)->wrong_receiver_municipality, "1480");

        /* The next hop is read before the "wrong receiver" that caused it (two topics): the
         * router routes again only on the receiver's "wrong receiver", so the hop says it. */
        avk_track_destroy(t);
        t = make();
        seen_cnt = acked_upto = 0;
        routed_hop(0, "1480", "VGR", NULL, t0);
        ck_assert_int_eq(routed_hop(1, "1480", "VGR", DESK, t0 + DAY), AVK_TRACK_APPLIED);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 2);
        ck_assert_int_eq(respond("w0", AVK_TRACK_REJECT, "VGR", t0 + 3600000), AVK_TRACK_STALE);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 2);
}
END_TEST

START_TEST(the_desk_without_both_sides_declining_starts_no_ladder)
{
        /* Routed to the desk at once (no party could take it): nobody answered anything. */
        ck_assert_int_eq(routed_hop(0, "1480", "VGR", DESK, t0), AVK_TRACK_APPLIED);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 0);
        /* Only municipalities declined a municipality's report: one side, no disagreement
         * between the parties; the desk triages. */
        avk_track_destroy(t);
        t = make();
        seen_cnt = acked_upto = 0;
        rejected_by_all_then_desk("1480", (const char *const[]){"1490", "1401"}, 2);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 0);
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->state, AVK_TRACK_ROUTED);
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->step, AVK_TRACK_STEP_NONE);
        /* Both sides declined, but routing found another receiver: no forum yet. */
        avk_track_destroy(t);
        t = make();
        seen_cnt = acked_upto = 0;
        routed_hop(0, "1480", "VGR", NULL, t0);
        respond("w0", AVK_TRACK_REJECT, "VGR", t0 + 1000);
        ck_assert_int_eq(routed_hop(1, "1480", "1490", NULL, t0 + DAY), AVK_TRACK_APPLIED);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 0);
        ck_assert(last(AVK_TRACK_STATUS)->wrong_receiver_region);
}
END_TEST

START_TEST(the_desks_wrong_receiver_is_not_a_rejection_and_its_deadlines_run)
{
        ck_assert_int_eq(routed_hop(0, "1480", "VGR", DESK, t0), AVK_TRACK_APPLIED);
        ck_assert_int_eq(respond("w-desk", AVK_TRACK_REJECT, "VGR", t0 + 1000),
                         AVK_TRACK_NOT_EXPECTED);
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->state, AVK_TRACK_ROUTED);
        int64_t ack_deadline = deadline(&terms("LOW")->acknowledge, t0);
        ack_all();
        advance(avk_deadline_before(&terms("LOW")->remind_before, ack_deadline));
        ck_assert_int_eq(count(AVK_TRACK_REMINDER, 0), 1);
        ack_all();
        advance(ack_deadline);
        ck_assert(last(AVK_TRACK_STATUS)->overdue);
}
END_TEST

START_TEST(a_manual_forum_step_about_responsibility_waits_for_the_region_or_its_municipality)
{
        use_policy("\"manual_steps\": [\"LOCAL_FORUM\"]");
        rejected_by_all_then_desk("VGR", (const char *const[]){"1480"}, 1);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 0);
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->pending, AVK_TRACK_STEP_LOCAL_FORUM);
        ck_assert_int_eq(respond("c-other", AVK_TRACK_CONFIRM, "1490", t0 + 2 * DAY),
                         AVK_TRACK_NOT_PARTY);
        ck_assert_int_eq(respond("c1", AVK_TRACK_CONFIRM, "1480", t0 + 2 * DAY), AVK_TRACK_APPLIED);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 2);
        assert_escalation(&seen[seen_cnt - 2], AVK_TRACK_STEP_LOCAL_FORUM,
                          AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES, "VGR", "1480");
        assert_escalation(&seen[seen_cnt - 1], AVK_TRACK_STEP_LOCAL_FORUM,
                          AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES, "1480", "VGR");
        const struct seen *s = &seen[seen_cnt - 3];
        ck_assert_int_eq(s->kind, AVK_TRACK_STATUS);
        ck_assert_int_eq(s->state, AVK_TRACK_ESCALATED);
        ck_assert_int_eq(s->pending, AVK_TRACK_STEP_NONE);
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
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 2); /* one per party */
        ;
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
        /* A disagreement: both parties' holders of the step are told, each
         * escalation naming the other party. */
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, 0), 2);
        const struct seen *receiver_side = &seen[seen_cnt - 2];
        const struct seen *reporter_side = &seen[seen_cnt - 1];
        assert_escalation(receiver_side, AVK_TRACK_STEP_MANAGER, AVK_TRACK_ANSWER_DISPUTED, "VGR",
                          "1480");
        assert_escalation(reporter_side, AVK_TRACK_STEP_MANAGER, AVK_TRACK_ANSWER_DISPUTED, "1480",
                          "VGR");
        ck_assert_str_ne(receiver_side->id, reporter_side->id);
        /* A second answer, after the dispute, counts. */
        ck_assert_int_eq(respond("n2", AVK_TRACK_ANSWER, "VGR", disputed + DAY), AVK_TRACK_APPLIED);
        ck_assert_int_eq(respond("d2", AVK_TRACK_DISPUTE, "1480", disputed + 2 * DAY),
                         AVK_TRACK_APPLIED);
        ck_assert_int_eq(last(AVK_TRACK_ESCALATION)->step, AVK_TRACK_STEP_MANAGERS_MANAGER);
}
END_TEST

/* Only a disagreement reaches the forums: each dispute climbs one step on
 * both sides, up to the county-level forum and no further (court is the
 * parties' own, outside avvik). */
START_TEST(disputes_climb_to_the_forums_on_both_sides_and_stop_at_the_county_forum)
{
        routed(t0);
        int64_t at = t0;
        for (int round = 0; round < 5; round++) {
                at += DAY;
                ck_assert_int_eq(
                    respond(round ? "n-later" : "n-first", AVK_TRACK_ANSWER, "VGR", at),
                    AVK_TRACK_APPLIED);
                at += DAY;
                char id[16];
                snprintf(id, sizeof(id), "d%d", round);
                ck_assert_int_eq(respond(id, AVK_TRACK_DISPUTE, "1480", at), AVK_TRACK_APPLIED);
                ack_all();
        }
        int receiver_steps[5] = {0}, reporter_steps[5] = {0};
        for (int i = 0; i < seen_cnt; i++) {
                if (seen[i].kind != AVK_TRACK_ESCALATION)
                        continue;
                ck_assert_int_eq(seen[i].reason, AVK_TRACK_ANSWER_DISPUTED);
                if (strcmp(seen[i].party, "VGR") == 0) {
                        ck_assert_str_eq(seen[i].counterpart, "1480");
                        receiver_steps[seen[i].step]++;
                } else {
                        ck_assert_str_eq(seen[i].party, "1480");
                        ck_assert_str_eq(seen[i].counterpart, "VGR");
                        reporter_steps[seen[i].step]++;
                }
        }
        for (int step = AVK_TRACK_STEP_MANAGER; step <= AVK_TRACK_STEP_COUNTY_FORUM; step++) {
                ck_assert_int_eq(receiver_steps[step], 1);
                ck_assert_int_eq(reporter_steps[step], 1);
        }
        ck_assert_int_eq(last(AVK_TRACK_STATUS)->step, AVK_TRACK_STEP_COUNTY_FORUM);
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

/* The escalation s read back from topic.escalated, on party's ladder naming counterpart. */
static struct avk_track_escalation escalation_of(const struct seen *s, const char *party,
                                                 const char *counterpart)
{
        struct avk_track_escalation e = {.deviation_id = DEV,
                                         .escalated_at = s->at,
                                         .hop = s->hop,
                                         .party = party,
                                         .counterpart = counterpart,
                                         .step = s->step,
                                         .reason = (enum avk_track_reason)s->reason,
                                         .deadline_at = s->deadline,
                                         .partition = 2};
        snprintf(e.escalation_id, sizeof(e.escalation_id), "%s", s->id);
        return e;
}

/* A rebuild that read back only read (on party's ladder, naming counterpart) of a step's two
 * escalations writes the other, missing, again with its id, and no status record. */
static void assert_rebuild_writes_the_missing_half(const struct seen *read, const char *party,
                                                   const char *counterpart,
                                                   const struct seen *missing, int before)
{
        struct avk_track_escalation e = escalation_of(read, party, counterpart);
        ck_assert_int_eq(avk_track_restore_escalation(t, &e), 0);
        ck_assert_int_eq(avk_track_restore_done(t, 2), 1);
        ck_assert_int_eq(count(AVK_TRACK_STATUS, before), 0);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, before), 1);
        const struct seen *again = last(AVK_TRACK_ESCALATION);
        ck_assert_str_eq(again->id, missing->id);
        assert_escalation(again, missing->step, (enum avk_track_reason)missing->reason,
                          missing->party, missing->counterpart);
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
        struct avk_track_escalation e = escalation_of(&esc, "VGR", NULL);

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

/* A disagreement's two escalations are two writes: a crash after the
 * receiver's leaves the reporter's side to the rebuild, which writes it with
 * the same id and nothing else. */
START_TEST(a_rebuild_writes_the_reporters_side_of_a_disagreement_when_missing)
{
        routed(t0);
        respond("n1", AVK_TRACK_ANSWER, "VGR", t0 + DAY);
        respond("d1", AVK_TRACK_DISPUTE, "1480", t0 + 2 * DAY);
        ack_all();
        struct seen answered = seen[1];
        struct seen disputed = *last(AVK_TRACK_STATUS);
        struct seen receiver_side = seen[seen_cnt - 2];
        struct seen reporter_side = seen[seen_cnt - 1];
        ck_assert_str_eq(reporter_side.party, "1480");
        avk_track_destroy(t);
        t = make();
        int before = seen_cnt;
        struct avk_track_status v1 = status_of(&seen[0], AVK_TRACK_NONE);
        struct avk_track_status v2 = status_of(&answered, t0 + DAY);
        struct avk_track_status v3 = status_of(&disputed, t0 + DAY);
        avk_track_restore_status(t, &v1);
        avk_track_restore_status(t, &v2);
        avk_track_restore_status(t, &v3);
        assert_rebuild_writes_the_missing_half(&receiver_side, "VGR", "1480", &reporter_side,
                                               before);
        assert_escalation(last(AVK_TRACK_ESCALATION), AVK_TRACK_STEP_MANAGER,
                          AVK_TRACK_ANSWER_DISPUTED, "1480", "VGR");
}
END_TEST

/* Who declined is in the changelog's latest record: a tracker rebuilt from it (a compacted
 * changelog keeps no earlier hop) still sees both sides decline at the next hop. */
START_TEST(a_rebuild_keeps_who_answered_wrong_receiver)
{
        /* Göteborg reports; the region, then Borås answer "wrong receiver"; the tracker restarts
         * at Borås's hop. Only the restored record says the region declined. */
        routed_hop(0, "1480", "VGR", NULL, t0);
        routed_hop(1, "1480", "1490", NULL, t0 + DAY);
        ack_all();
        struct seen hop1 = *last(AVK_TRACK_STATUS);
        ck_assert(hop1.wrong_receiver_region);
        avk_track_destroy(t);
        t = make();
        struct avk_track_status v = status_of(&hop1, AVK_TRACK_NONE);
        v.receiver_party = "1490";
        v.wrong_receiver_region = hop1.wrong_receiver_region;
        avk_track_restore_status(t, &v);
        avk_track_restore_done(t, 2);
        int before = seen_cnt;
        ck_assert_int_eq(routed_hop(2, "1480", "VGR", DESK, t0 + 2 * DAY), AVK_TRACK_APPLIED);
        ck_assert_int_eq(count(AVK_TRACK_ESCALATION, before), 2);
        assert_escalation(&seen[seen_cnt - 2], AVK_TRACK_STEP_LOCAL_FORUM,
                          AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES, "VGR", "1490");
        assert_escalation(&seen[seen_cnt - 1], AVK_TRACK_STEP_LOCAL_FORUM,
                          AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES, "1490", "VGR");
}
END_TEST

START_TEST(a_rebuild_writes_the_municipalitys_side_of_a_forum_about_responsibility)
{
        rejected_by_all_then_desk("1480", (const char *const[]){"VGR"}, 1);
        ack_all();
        struct seen escalated = seen[seen_cnt - 3];
        struct seen region_side = seen[seen_cnt - 2];
        struct seen municipality_side = seen[seen_cnt - 1];
        ck_assert_int_eq(escalated.state, AVK_TRACK_ESCALATED);
        avk_track_destroy(t);
        t = make();
        int before = seen_cnt;
        struct avk_track_status v = status_of(&escalated, AVK_TRACK_NONE);
        v.receiver_unit = DESK;
        v.wrong_receiver_region = escalated.wrong_receiver_region;
        avk_track_restore_status(t, &v);
        assert_rebuild_writes_the_missing_half(&region_side, "VGR", "1480", &municipality_side,
                                               before);
        assert_escalation(last(AVK_TRACK_ESCALATION), AVK_TRACK_STEP_LOCAL_FORUM,
                          AVK_TRACK_WRONG_RECEIVER_BOTH_SIDES, "1480", "VGR");
        /* With both sides read back, a rebuild writes nothing. */
        avk_track_destroy(t);
        t = make();
        before = seen_cnt;
        avk_track_restore_status(t, &v);
        struct avk_track_escalation region = escalation_of(&region_side, "VGR", "1480");
        struct avk_track_escalation municipality = escalation_of(&municipality_side, "1480", "VGR");
        avk_track_restore_escalation(t, &region);
        avk_track_restore_escalation(t, &municipality);
        ck_assert_int_eq(avk_track_restore_done(t, 2), 0);
        ck_assert_int_eq(seen_cnt, before);
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
                                              "DELIVERY_FAILED", "WRONG_RECEIVER_BOTH_SIDES"};
        static const char *const kinds[] = {"ACKNOWLEDGED", "ANSWERED", "REJECTED_WRONG_RECEIVER",
                                            "DISPUTED", "ESCALATION_CONFIRMED"};

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
        for (int i = AVK_TRACK_ACKNOWLEDGE; i <= AVK_TRACK_CONFIRM; i++)
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
        tcase_add_test(tc,
                       a_missed_acknowledge_deadline_steps_once_to_the_receivers_managers_manager);
        tcase_add_test(tc, a_deviation_nobody_answers_never_climbs_to_a_forum);
        tcase_add_test(tc, without_the_deadline_step_a_missed_deadline_gives_reminders_only);
        tcase_add_test(tc, a_response_before_its_routing_is_kept_and_applied_when_it_arrives);
        tcase_add_test(tc, a_kept_response_whose_routing_never_comes_is_settled_as_such);
        tcase_add_test(tc, duplicates_and_replays_change_nothing);
        tcase_add_test(tc, responses_from_the_wrong_party_are_ignored);
        tcase_add_test(tc, a_rejection_waits_for_the_next_hop_which_resets_the_deadlines);
        tcase_add_test(tc, a_disputed_answer_climbs_one_step_and_asks_for_a_new_answer);
        tcase_add_test(tc, disputes_climb_to_the_forums_on_both_sides_and_stop_at_the_county_forum);
        tcase_add_test(tc, a_manual_forum_step_waits_for_confirmation_by_either_party);
        tcase_add_test(tc, a_failed_delivery_escalates_to_the_manager_once);
        tcase_add_test(tc, both_sides_answering_wrong_receiver_start_the_local_forum_on_both_sides);
        tcase_add_test(tc, the_desk_without_both_sides_declining_starts_no_ladder);
        tcase_add_test(tc, the_desks_wrong_receiver_is_not_a_rejection_and_its_deadlines_run);
        tcase_add_test(
            tc, a_manual_forum_step_about_responsibility_waits_for_the_region_or_its_municipality);
        tcase_add_test(tc, timers_wait_for_outputs_in_flight);
        tcase_add_test(tc, a_rebuild_fires_what_passed_while_down_and_nothing_twice);
        tcase_add_test(tc, a_rebuild_writes_the_half_of_an_escalation_that_is_missing);
        tcase_add_test(tc, a_rebuild_writes_the_reporters_side_of_a_disagreement_when_missing);
        tcase_add_test(tc, a_rebuild_keeps_who_answered_wrong_receiver);
        tcase_add_test(tc, a_rebuild_writes_the_municipalitys_side_of_a_forum_about_responsibility);
        tcase_add_test(tc, states_steps_reasons_and_kinds_carry_the_schemas_symbols);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
