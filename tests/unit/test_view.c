/*
 * avk_view without Kafka: records of the lifecycle topics in any order give
 * one picture of a deviation; the first document filed under an id owns it;
 * who may respond, and until when a dispute is possible.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/party.h"
#include "producer/gateway/view.h"

#define ID     "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10"
#define DAY_MS (24 * 3600 * INT64_C(1000))
#define T0     INT64_C(1767261600000) /* 2026-01-01 10:00 UTC */

/* Party numbers: the region, and three municipalities. */
#define VGR AVK_PARTY_VGR
static int GBG, HARRYDA, OTHER;

static avk_view_t *view;
static avk_dispute_t *dispute;
static const unsigned char first[AVK_VIEW_DIGEST_SIZE] = {1}, second[AVK_VIEW_DIGEST_SIZE] = {2};

static void setup(void)
{
        char err[256];
        GBG = avk_party_parse("1480", err, sizeof(err));
        HARRYDA = avk_party_parse("1401", err, sizeof(err));
        OTHER = avk_party_parse("1402", err, sizeof(err));
        ck_assert(GBG > 0 && HARRYDA > 0 && OTHER > 0);
        dispute = avk_dispute_load(AVK_SOURCE_DIR "/data/deadlines.json", err, sizeof(err));
        ck_assert_msg(dispute != NULL, "%s", err);
        view = avk_view_new(dispute);
        ck_assert_ptr_nonnull(view);
}

static void teardown(void)
{
        avk_view_destroy(view);
        avk_dispute_destroy(dispute);
}

static void reported(const unsigned char *digest)
{
        struct avk_view_event e = {.kind = AVK_VIEW_REPORTED,
                                   .deviation_id = ID,
                                   .at = T0,
                                   .party = GBG,
                                   .reporter = -1,
                                   .digest = digest};
        ck_assert_int_eq(avk_view_add(view, &e), 0);
}

/* A routing at hop to receiver with decision; to the triage desk, decision MANUAL and the
 * desk's record_party (VGR) as receiver. */
static void routed_as(int32_t hop, int receiver, const char *decision, int64_t at)
{
        struct avk_view_event e = {.kind = AVK_VIEW_ROUTED,
                                   .deviation_id = ID,
                                   .at = at,
                                   .party = receiver,
                                   .reporter = GBG,
                                   .hop = hop,
                                   .label = decision,
                                   .rule = "R-1",
                                   .reason = "r"};
        ck_assert_int_eq(avk_view_add(view, &e), 0);
}

static void routed(int32_t hop, int receiver, int64_t at)
{
        routed_as(hop, receiver, "AGREEMENT_RULE", at);
}

static void answered(int64_t at)
{
        struct avk_view_event e = {.kind = AVK_VIEW_ANSWERED,
                                   .deviation_id = ID,
                                   .at = at,
                                   .party = VGR,
                                   .reporter = -1,
                                   .text = {"analysis", "plan"}};
        ck_assert_int_eq(avk_view_add(view, &e), 0);
}

static void rejected(int party, int64_t at)
{
        struct avk_view_event e = {.kind = AVK_VIEW_REJECTED_WRONG_RECEIVER,
                                   .deviation_id = ID,
                                   .at = at,
                                   .party = party,
                                   .reporter = -1};
        ck_assert_int_eq(avk_view_add(view, &e), 0);
}

/* The tracker's status of version with a manual step waiting (pending) or none. */
static void status_pending(int32_t version, const char *state, int64_t answered_at,
                           const char *pending)
{
        struct avk_view_status s = {.deviation_id = ID,
                                    .version = version,
                                    .state = state,
                                    .changed_at = T0,
                                    .reporter = GBG,
                                    .receiver = VGR,
                                    .deadline_rule = "D-DEFAULT",
                                    .acknowledge_deadline_at = T0 + 3 * DAY_MS,
                                    .answer_deadline_at = T0 + 60 * DAY_MS,
                                    .acknowledged_at = -1,
                                    .answered_at = answered_at,
                                    .closed_at = -1,
                                    .deadline_kept = -1,
                                    .pending_step = pending};
        ck_assert_int_eq(avk_view_status(view, &s), 0);
}

static void status(int32_t version, const char *state, int64_t answered_at)
{
        status_pending(version, state, answered_at, NULL);
}

static const char *state_of(int party)
{
        static char state[32];
        json_t *doc = avk_view_lookup(view, ID, party, T0);
        if (!doc)
                return "none";
        snprintf(state, sizeof(state), "%s", json_string_value(json_object_get(doc, "state")));
        json_decref(doc);
        return state;
}

START_TEST(the_first_document_owns_its_id)
{
        ck_assert_int_eq(avk_view_filing(view, ID, first), AVK_VIEW_NEW);
        reported(first);
        ck_assert_int_eq(avk_view_filing(view, ID, first), AVK_VIEW_SAME);
        ck_assert_int_eq(avk_view_filing(view, ID, second), AVK_VIEW_CONFLICT);
        reported(second); /* a second document that reached Kafka anyway */
        ck_assert_int_eq(avk_view_filing(view, ID, first), AVK_VIEW_SAME);
}
END_TEST

START_TEST(a_routing_read_before_its_report_and_a_late_hop_are_placed)
{
        routed(1, HARRYDA, T0 + 2000);
        routed(0, VGR, T0 + 1000); /* the older routing, read late */
        reported(first);
        json_t *doc = avk_view_lookup(view, ID, VGR, T0);
        ck_assert_ptr_nonnull(doc); /* routed to it once: still entitled */
        ck_assert_str_eq(json_string_value(json_object_get(doc, "receiver_party")), "1401");
        const json_t *timeline = json_object_get(doc, "timeline");
        ck_assert_int_eq(json_array_size(timeline), 3);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(timeline, 0), "event")),
                         "REPORTED");
        json_decref(doc);
        ck_assert_str_eq(state_of(OTHER), "none");
}
END_TEST

START_TEST(an_older_status_read_late_changes_nothing)
{
        reported(first);
        routed(0, VGR, T0 + 1000);
        status(3, "ANSWERED", T0 + DAY_MS);
        status(2, "ACKNOWLEDGED", -1);
        ck_assert_str_eq(state_of(GBG), "ANSWERED");
}
END_TEST

START_TEST(who_may_respond)
{
        int64_t until;
        reported(first);
        routed(0, VGR, T0 + 1000);
        ck_assert_int_eq(avk_view_may_respond(view, ID, VGR, "ACKNOWLEDGED", T0, &until),
                         AVK_VIEW_RESPOND_OK);
        ck_assert_int_eq(avk_view_may_respond(view, ID, GBG, "ACKNOWLEDGED", T0, &until),
                         AVK_VIEW_RESPOND_NOT_RECEIVER);
        ck_assert_int_eq(avk_view_may_respond(view, ID, OTHER, "ACKNOWLEDGED", T0, &until),
                         AVK_VIEW_RESPOND_UNKNOWN);
        ck_assert_int_eq(avk_view_may_respond(view, ID, VGR, "DISPUTED", T0, &until),
                         AVK_VIEW_RESPOND_NOT_REPORTER);
        ck_assert_int_eq(avk_view_may_respond(view, ID, GBG, "DISPUTED", T0, &until),
                         AVK_VIEW_RESPOND_NOT_ANSWERED);
}
END_TEST

static enum avk_view_respond may(int party, const char *kind)
{
        int64_t until;
        return avk_view_may_respond(view, ID, party, kind, T0, &until);
}

START_TEST(a_rejection_from_an_earlier_receiver_or_a_second_one_is_stale)
{
        reported(first);
        routed(0, VGR, T0 + 1000);
        routed(1, HARRYDA, T0 + 2000);
        ck_assert_int_eq(may(VGR, "REJECTED_WRONG_RECEIVER"), AVK_VIEW_RESPOND_STALE);
        ck_assert_int_eq(may(VGR, "ANSWERED"), AVK_VIEW_RESPOND_STALE);
        ck_assert_int_eq(may(GBG, "REJECTED_WRONG_RECEIVER"), AVK_VIEW_RESPOND_NOT_RECEIVER);
        ck_assert_int_eq(may(HARRYDA, "REJECTED_WRONG_RECEIVER"), AVK_VIEW_RESPOND_OK);
        /* Harryda's rejection is read: a second one is refused, other kinds are not. */
        rejected(HARRYDA, T0 + 3000);
        ck_assert_int_eq(may(HARRYDA, "REJECTED_WRONG_RECEIVER"), AVK_VIEW_RESPOND_REJECTED);
        ck_assert_int_eq(may(HARRYDA, "ACKNOWLEDGED"), AVK_VIEW_RESPOND_OK);
        /* Re-routed: the new receiver may reject, Härryda's is stale. */
        routed(2, OTHER, T0 + 4000);
        ck_assert_int_eq(may(OTHER, "REJECTED_WRONG_RECEIVER"), AVK_VIEW_RESPOND_OK);
        ck_assert_int_eq(may(HARRYDA, "REJECTED_WRONG_RECEIVER"), AVK_VIEW_RESPOND_STALE);
}
END_TEST

START_TEST(the_trackers_rejected_state_refuses_a_second_rejection)
{
        reported(first);
        routed(0, VGR, T0 + 1000);
        status(2, "REJECTED", -1);
        ck_assert_int_eq(may(VGR, "REJECTED_WRONG_RECEIVER"), AVK_VIEW_RESPOND_REJECTED);
}
END_TEST

START_TEST(either_party_confirms_a_pending_step)
{
        reported(first);
        routed(0, HARRYDA, T0 + 500);
        routed(1, VGR, T0 + 1000);
        answered(T0 + DAY_MS);
        status(3, "ANSWERED", T0 + DAY_MS);
        ck_assert_int_eq(may(GBG, "ESCALATION_CONFIRMED"), AVK_VIEW_RESPOND_NOTHING_PENDING);
        ck_assert_int_eq(may(VGR, "ESCALATION_CONFIRMED"), AVK_VIEW_RESPOND_NOTHING_PENDING);
        status_pending(4, "DISPUTED", T0 + DAY_MS, "LOCAL_FORUM");
        ck_assert_int_eq(may(GBG, "ESCALATION_CONFIRMED"), AVK_VIEW_RESPOND_OK);
        ck_assert_int_eq(may(VGR, "ESCALATION_CONFIRMED"), AVK_VIEW_RESPOND_OK);
        ck_assert_int_eq(may(HARRYDA, "ESCALATION_CONFIRMED"), AVK_VIEW_RESPOND_NOT_PARTY);
        ck_assert_int_eq(may(OTHER, "ESCALATION_CONFIRMED"), AVK_VIEW_RESPOND_UNKNOWN);
        /* Confirmed: the tracker's next status has nothing pending. */
        status(5, "ESCALATED", T0 + DAY_MS);
        ck_assert_int_eq(may(GBG, "ESCALATION_CONFIRMED"), AVK_VIEW_RESPOND_NOTHING_PENDING);
}
END_TEST

#define RESPONSE "7a0c3b1e-2d4f-4e6a-9b8c-1d2e3f4a5b6c"

START_TEST(a_response_is_recognised_by_its_id_and_digest)
{
        reported(first);
        routed(0, VGR, T0 + 1000);
        ck_assert_int_eq(avk_view_response(view, ID, RESPONSE, NULL), AVK_VIEW_NEW);
        struct avk_view_event e = {.kind = AVK_VIEW_ESCALATION_CONFIRMED,
                                   .deviation_id = ID,
                                   .at = T0 + 2000,
                                   .party = GBG,
                                   .reporter = -1,
                                   .response_id = RESPONSE,
                                   .digest = first};
        ck_assert_int_eq(avk_view_add(view, &e), 0);
        ck_assert_int_eq(avk_view_response(view, ID, RESPONSE, NULL), AVK_VIEW_SAME);
        ck_assert_int_eq(avk_view_response(view, ID, RESPONSE, first), AVK_VIEW_SAME);
        ck_assert_int_eq(avk_view_response(view, ID, RESPONSE, second), AVK_VIEW_CONFLICT);
        ck_assert_int_eq(avk_view_response(view, ID, "7a0c3b1e-2d4f-4e6a-9b8c-1d2e3f4a5b6d", NULL),
                         AVK_VIEW_NEW);
        /* The confirmation is on both sides' timeline. */
        json_t *doc = avk_view_lookup(view, ID, VGR, T0);
        const json_t *timeline = json_object_get(doc, "timeline");
        ck_assert_int_eq(json_array_size(timeline), 3);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(timeline, 2), "event")),
                         "ESCALATION_CONFIRMED");
        json_decref(doc);
}
END_TEST

START_TEST(a_dispute_is_possible_until_the_window_ends)
{
        int64_t until, answer = T0 + DAY_MS;
        reported(first);
        routed(0, VGR, T0 + 1000);
        answered(answer);
        status(3, "ANSWERED", answer);
        ck_assert_int_eq(avk_view_may_respond(view, ID, GBG, "DISPUTED", answer + DAY_MS, &until),
                         AVK_VIEW_RESPOND_OK);
        /* D-DEFAULT: 30 days, as the tracker counts them. */
        ck_assert_int_ge(until, answer + 30 * DAY_MS - 2 * 3600 * 1000);
        ck_assert_int_le(until, answer + 31 * DAY_MS);
        ck_assert_int_eq(avk_view_may_respond(view, ID, GBG, "DISPUTED", until, &until),
                         AVK_VIEW_RESPOND_WINDOW_OVER);
        status(4, "CLOSED", answer);
        ck_assert_int_eq(avk_view_may_respond(view, ID, GBG, "DISPUTED", answer + DAY_MS, &until),
                         AVK_VIEW_RESPOND_WINDOW_OVER);
}
END_TEST

/* Whether principal's look-up of ID finds it. */
static int sees(int principal)
{
        json_t *doc = avk_view_lookup(view, ID, principal, T0);
        json_decref(doc);
        return doc != NULL;
}

START_TEST(a_routing_to_the_desk_is_the_desks_not_its_record_partys)
{
        reported(first);
        /* The tracker's status, naming the record_party, read before the routing to the desk. */
        status(1, "ROUTED", -1);
        ck_assert(sees(VGR));
        routed_as(1, VGR, AVK_VIEW_DESK_DECISION, T0 + 1000);
        ck_assert(!sees(VGR));
        ck_assert(sees(AVK_VIEW_DESK) && sees(GBG));
        ck_assert_int_eq(may(VGR, "ACKNOWLEDGED"), AVK_VIEW_RESPOND_UNKNOWN);
        ck_assert_int_eq(may(AVK_VIEW_DESK, "ACKNOWLEDGED"), AVK_VIEW_RESPOND_OK);
        ck_assert_int_eq(may(AVK_VIEW_DESK, "REJECTED_WRONG_RECEIVER"), AVK_VIEW_RESPOND_OK);
        ck_assert_int_eq(may(GBG, "ANSWERED"), AVK_VIEW_RESPOND_NOT_RECEIVER);
        ck_assert_int_eq(may(AVK_VIEW_DESK, "DISPUTED"), AVK_VIEW_RESPOND_NOT_REPORTER);
        int32_t hop = -1;
        int party = -1;
        ck_assert_int_eq(avk_view_receiver(view, ID, &hop, &party), AVK_VIEW_DESK);
        ck_assert_int_eq(hop, 1);
        ck_assert_int_eq(party, VGR);
        /* The desk's "wrong receiver" is recorded as the record_party's; the desk passes on
         * again when the router could not use its suggestion and kept the deviation at it. */
        rejected(VGR, T0 + 2000);
        ck_assert_int_eq(may(AVK_VIEW_DESK, "REJECTED_WRONG_RECEIVER"), AVK_VIEW_RESPOND_OK);
        /* Routed on: the desk's turn is over; it still sees the course. */
        routed(2, HARRYDA, T0 + 3000);
        ck_assert_int_eq(may(AVK_VIEW_DESK, "ANSWERED"), AVK_VIEW_RESPOND_STALE);
        ck_assert_int_eq(may(HARRYDA, "ANSWERED"), AVK_VIEW_RESPOND_OK);
        ck_assert_int_eq(avk_view_receiver(view, ID, &hop, NULL), HARRYDA);
        ck_assert(sees(AVK_VIEW_DESK) && !sees(VGR));
}
END_TEST

START_TEST(an_earlier_receiver_is_late_at_the_desk)
{
        reported(first);
        routed(0, VGR, T0);
        routed_as(1, VGR, AVK_VIEW_DESK_DECISION, T0 + 1000);
        ck_assert(sees(VGR));
        ck_assert_int_eq(may(VGR, "REJECTED_WRONG_RECEIVER"), AVK_VIEW_RESPOND_STALE);
        ck_assert_int_eq(may(AVK_VIEW_DESK, "ANSWERED"), AVK_VIEW_RESPOND_OK);
        /* The region, a side of the disagreement that sent it to the desk, confirms a step. */
        status_pending(1, "ROUTED", -1, "LOCAL_FORUM");
        ck_assert_int_eq(may(VGR, "ESCALATION_CONFIRMED"), AVK_VIEW_RESPOND_OK);
        ck_assert_int_eq(may(AVK_VIEW_DESK, "ESCALATION_CONFIRMED"), AVK_VIEW_RESPOND_NOT_PARTY);
        /* The desk is no principal of a deviation never routed to it. */
        avk_view_destroy(view);
        view = avk_view_new(dispute);
        ck_assert_ptr_nonnull(view);
        reported(first);
        routed(0, VGR, T0);
        ck_assert(!sees(AVK_VIEW_DESK));
        ck_assert_int_eq(may(AVK_VIEW_DESK, "ACKNOWLEDGED"), AVK_VIEW_RESPOND_UNKNOWN);
}
END_TEST

START_TEST(bad_records_are_refused)
{
        struct avk_view_event e = {
            .kind = AVK_VIEW_ROUTED, .deviation_id = "not-a-uuid", .party = VGR, .reporter = GBG};
        ck_assert_int_eq(avk_view_add(view, &e), -1);
        e.deviation_id = ID;
        e.party = 50;
        ck_assert_int_eq(avk_view_add(view, &e), -1);
        e.party = VGR;
        e.reporter = -1;
        ck_assert_int_eq(avk_view_add(view, &e), -1);
        ck_assert_uint_eq(avk_view_size(view), 0);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("view");
        TCase *tc = tcase_create("view");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, the_first_document_owns_its_id);
        tcase_add_test(tc, a_routing_read_before_its_report_and_a_late_hop_are_placed);
        tcase_add_test(tc, an_older_status_read_late_changes_nothing);
        tcase_add_test(tc, who_may_respond);
        tcase_add_test(tc, a_dispute_is_possible_until_the_window_ends);
        tcase_add_test(tc, a_rejection_from_an_earlier_receiver_or_a_second_one_is_stale);
        tcase_add_test(tc, the_trackers_rejected_state_refuses_a_second_rejection);
        tcase_add_test(tc, either_party_confirms_a_pending_step);
        tcase_add_test(tc, a_response_is_recognised_by_its_id_and_digest);
        tcase_add_test(tc, bad_records_are_refused);
        tcase_add_test(tc, a_routing_to_the_desk_is_the_desks_not_its_record_partys);
        tcase_add_test(tc, an_earlier_receiver_is_late_at_the_desk);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
