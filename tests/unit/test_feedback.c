/*
 * What the reporting party is told of a status change (consumer/track/feedback.h),
 * against the shipped directory and deadline policy: the kind for each state,
 * none for an overdue mark, an id and version that a replay gives again, the
 * answer in full only from the response that caused it, the holder of a step
 * on the receiving side, and the reporting unit and reference of the filing;
 * and after a crash, which status records a rebuild finds without their
 * feedback and what it writes for them.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/avro_field.h"
#include "common/contract/directory.h"
#include "common/contract/ident.h"
#include "common/contract/schema.h"
#include "common/util/calendar.h"
#include "consumer/track/deadlines.h"
#include "consumer/track/feedback.h"

#define DEV  "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10"
#define UNIT "SE2321000131-E000000012345"
#define DAY  (24 * 3600 * 1000LL)

static avk_catalog_t *catalog;
static avk_directory_t *dir;
static avk_deadlines_t *policy;
static avk_feedback_t *fb;
static avro_value_t value;
static char id[AVK_IDENT_UUID_SIZE];
static int64_t t0;

static void setup(void)
{
        char err[256];
        struct avk_errors errs;
        avk_errors_init(&errs);
        catalog = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(catalog != NULL, "%s", err);
        dir = avk_directory_load(AVK_SOURCE_DIR "/data/directory.json", 0, &errs);
        policy = avk_deadlines_load(AVK_SOURCE_DIR "/data/deadlines.json", &errs);
        ck_assert_ptr_nonnull(dir);
        ck_assert_ptr_nonnull(policy);
        fb = avk_feedback_new(policy, dir);
        ck_assert_ptr_nonnull(fb);
        const avk_schema_t *schema = avk_catalog_by_name(catalog, "DeviationFeedback");
        ck_assert_ptr_nonnull(schema);
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(schema), &value), 0);
        t0 = avk_calendar_from_local(2026, 3, 2, 9, 0, 0);
}

static void teardown(void)
{
        avro_value_decref(&value);
        avk_feedback_destroy(fb);
        avk_deadlines_destroy(policy);
        avk_directory_destroy(dir);
        avk_catalog_destroy(catalog);
}

/* A status of DEV as the core writes it: VGR's ward 31 receives Göteborg's deviation. */
static struct avk_track_status status(enum avk_track_state state, int version, const char *cause)
{
        return (struct avk_track_status){.deviation_id = DEV,
                                         .version = version,
                                         .state = state,
                                         .changed_at = t0 + DAY,
                                         .cause = cause,
                                         .reporter_party = "1480",
                                         .receiver_party = "VGR",
                                         .receiver_unit = UNIT,
                                         .category = "DISCHARGE_PLANNING",
                                         .harm_level = "LOW",
                                         .deadline_rule = "D-DEFAULT",
                                         .routed_at = t0,
                                         .acknowledge_deadline_at = t0 + 2 * DAY,
                                         .answer_deadline_at = t0 + 10 * DAY,
                                         .acknowledged_at = AVK_TRACK_NONE,
                                         .answered_at = AVK_TRACK_NONE,
                                         .closed_at = AVK_TRACK_NONE,
                                         .deadline_kept = -1};
}

static const char *text(const char *field)
{
        return avk_avro_text(&value, field);
}

static const char *kind_of(const struct avk_track_status *s)
{
        ck_assert_int_eq(avk_feedback_fill(fb, s, NULL, &value, id), 1);
        return text("kind");
}

START_TEST(kinds_follow_the_state_and_an_overdue_mark_is_none)
{
        struct avk_track_status s = status(AVK_TRACK_ROUTED, 1, "routed-event");
        ck_assert_str_eq(kind_of(&s), "ROUTED");
        s.hop = 1;
        ck_assert_str_eq(kind_of(&s), "REROUTED");
        s = status(AVK_TRACK_REJECTED, 2, "response");
        ck_assert_str_eq(kind_of(&s), "REJECTED_WRONG_RECEIVER");
        s = status(AVK_TRACK_ESCALATED, 3, "deadline:ACKNOWLEDGE");
        s.step = AVK_TRACK_STEP_MANAGERS_MANAGER;
        ck_assert_str_eq(kind_of(&s), "ESCALATED");
        s = status(AVK_TRACK_CLOSED, 5, "deadline:DISPUTE_WINDOW");
        ck_assert_str_eq(kind_of(&s), "CLOSED");
        /* A deadline passed with no step to take: the state stays, nothing to tell. */
        s = status(AVK_TRACK_ACKNOWLEDGED, 4, "deadline:ANSWER");
        ck_assert_int_eq(avk_feedback_fill(fb, &s, NULL, &value, id), 0);
        ck_assert_ptr_null(avk_feedback_kind(&s));
        /* Nor on a deviation already at a forum: the reporter was told of that step. */
        s = status(AVK_TRACK_ESCALATED, 4, "deadline:ACKNOWLEDGE");
        s.step = AVK_TRACK_STEP_LOCAL_FORUM;
        ck_assert_ptr_null(avk_feedback_kind(&s));
}
END_TEST

START_TEST(id_and_version_are_the_states_and_the_same_on_a_replay)
{
        struct avk_track_status s = status(AVK_TRACK_ACKNOWLEDGED, 2, "response");
        char first[AVK_IDENT_UUID_SIZE], want[AVK_IDENT_UUID_SIZE];
        ck_assert_int_eq(avk_feedback_fill(fb, &s, NULL, &value, first), 1);
        ck_assert_int_eq(avk_feedback_fill(fb, &s, NULL, &value, id), 1);
        ck_assert_str_eq(id, first);
        ck_assert_str_eq(text("event_id"), id);
        ck_assert_int_eq(avk_ident_uuid5("9d3a6e21-47c8-5b1f-a2e4-6c0b8f7d1e35", DEV "/2",
                                         strlen(DEV "/2"), want),
                         0);
        ck_assert_str_eq(id, want);
        int64_t version = 0;
        ck_assert_int_eq(avk_avro_long(&value, "version", &version), 0);
        ck_assert_int_eq(version, 2);
        s.version = 3;
        ck_assert_int_eq(avk_feedback_fill(fb, &s, NULL, &value, id), 1);
        ck_assert_str_ne(id, first);
}
END_TEST

START_TEST(the_answer_comes_in_full_from_the_response_that_caused_it)
{
        struct avk_track_status s = status(AVK_TRACK_ANSWERED, 3, "the-answer");
        s.answered_at = t0 + 5 * DAY;
        struct avk_feedback_cause cause = {.id = "the-answer",
                                           .analysis = "Underlaget saknades.",
                                           .action_plan = "Checklista från 1 april."};
        ck_assert_int_eq(avk_feedback_fill(fb, &s, &cause, &value, id), 1);
        ck_assert_str_eq(text("analysis"), "Underlaget saknades.");
        ck_assert_str_eq(text("action_plan"), "Checklista från 1 april.");
        const struct avk_deadline_terms *terms =
            avk_deadlines_lookup(policy, "VGR", "DISCHARGE_PLANNING", "LOW", 0);
        int64_t until = 0;
        ck_assert_int_eq(avk_avro_long(&value, "dispute_until", &until), 0);
        ck_assert_int_eq(until, avk_deadline_after(&terms->dispute_window, t0 + 5 * DAY));
        /* Another input's text is not this change's. */
        cause.id = "another-response";
        ck_assert_int_eq(avk_feedback_fill(fb, &s, &cause, &value, id), 1);
        ck_assert_ptr_null(text("analysis"));
        ck_assert_ptr_null(text("action_plan"));
}
END_TEST

START_TEST(a_step_names_its_holder_on_the_receiving_side)
{
        struct avk_track_status s = status(AVK_TRACK_ESCALATED, 3, "deadline:ANSWER");
        s.step = AVK_TRACK_STEP_MANAGERS_MANAGER;
        ck_assert_int_eq(avk_feedback_fill(fb, &s, NULL, &value, id), 1);
        ck_assert_str_eq(text("escalation_step"), "MANAGERS_MANAGER");
        const struct avk_directory_unit *u = avk_directory_unit(dir, UNIT);
        ck_assert_ptr_nonnull(u);
        ck_assert_str_eq(text("holder"), u->receiver.ladder[AVK_DIRECTORY_SENIOR_MANAGER]->name);
        /* No deadline to answer once it is closed, no holder without a step. */
        s = status(AVK_TRACK_CLOSED, 4, "deadline:DISPUTE_WINDOW");
        ck_assert_int_eq(avk_feedback_fill(fb, &s, NULL, &value, id), 1);
        ck_assert_ptr_null(text("holder"));
        int64_t deadline = 0;
        ck_assert_int_eq(avk_avro_long(&value, "answer_deadline_at", &deadline), -1);
}
END_TEST

START_TEST(the_filing_gives_unit_and_reference_until_forgotten)
{
        struct avk_track_status s = status(AVK_TRACK_ROUTED, 1, "routed-event");
        ck_assert_int_eq(avk_feedback_known(fb, DEV), 0);
        ck_assert_int_eq(avk_feedback_reported(fb, DEV, "SE2120001215-HSK0042", "CASE-1", 3), 0);
        /* The first filing under an id counts. */
        ck_assert_int_eq(avk_feedback_reported(fb, DEV, "SE2120001215-HSK0042", "CASE-2", 3), 0);
        ck_assert_uint_eq(avk_feedback_count(fb), 1);
        ck_assert_int_eq(avk_feedback_fill(fb, &s, NULL, &value, id), 1);
        ck_assert_str_eq(text("reporter_unit_hsa_id"), "SE2120001215-HSK0042");
        ck_assert_str_eq(text("reply_reference"), "CASE-1");
        avk_feedback_forget(fb, DEV);
        ck_assert_int_eq(avk_feedback_fill(fb, &s, NULL, &value, id), 1);
        ck_assert_ptr_null(text("reply_reference"));
        /* A revoked partition's filings go with it, the others stay. */
        ck_assert_int_eq(avk_feedback_reported(fb, DEV, NULL, NULL, 3), 0);
        ck_assert_int_eq(
            avk_feedback_reported(fb, "6a0e7c52-1b3d-4f8a-9c2e-5d7f1a3b9e04", NULL, NULL, 4), 0);
        avk_feedback_drop_partition(fb, 3);
        ck_assert_int_eq(avk_feedback_known(fb, DEV), 0);
        ck_assert_int_eq(avk_feedback_known(fb, "6a0e7c52-1b3d-4f8a-9c2e-5d7f1a3b9e04"), 1);
}
END_TEST

/* A rebuild: the feedback read back marks its version written; a status
 * record without one owes its feedback once, with the filing as it was,
 * whether an input or no input (a timer) caused it; an overdue mark owes
 * nothing. */
START_TEST(a_rebuild_owes_the_feedback_of_each_status_read_back_without_it)
{
        const int64_t now = t0 + 30 * DAY, since = now - 7 * DAY;
        ck_assert_int_eq(avk_feedback_reported(fb, DEV, "SE2120001215-HSK0042", "CASE-1", 3), 0);
        ck_assert_int_eq(avk_feedback_read_back(fb, DEV, 1, 3, now, since), 0);
        struct avk_track_status routed = status(AVK_TRACK_ROUTED, 1, "routed-event");
        struct avk_track_status answered = status(AVK_TRACK_ANSWERED, 2, "the-answer");
        answered.answered_at = t0 + 5 * DAY;
        struct avk_track_status overdue = status(AVK_TRACK_ANSWERED, 3, "deadline:ANSWER");
        struct avk_track_status closed = status(AVK_TRACK_CLOSED, 4, "deadline:DISPUTE_WINDOW");
        ck_assert_int_eq(avk_feedback_check(fb, &routed, now, since), 0);
        ck_assert_int_eq(avk_feedback_check(fb, &answered, now, since), 1);
        ck_assert_int_eq(avk_feedback_check(fb, &overdue, now, since), 0);
        ck_assert_int_eq(avk_feedback_check(fb, &closed, now, since), 1);
        /* A status record written twice (in flight at a kill) owes one feedback. */
        ck_assert_int_eq(avk_feedback_check(fb, &closed, now, since), 0);
        /* A status the rebuild completes from its escalation gets no second feedback. */
        ck_assert_int_eq(avk_feedback_fill(fb, &routed, NULL, &value, id), 0);
        avk_feedback_forget(fb, DEV); /* closed: the filing leaves, the copy stays */
        avk_feedback_read_back_done(fb);
        ck_assert_int_eq(avk_feedback_fill(fb, &routed, NULL, &value, id), 1);
        ck_assert_uint_eq(avk_feedback_owed_count(fb), 2);
        /* The closing is owed now; the answer waits for its response. */
        const struct avk_track_status *o = avk_feedback_owed(fb, NULL, NULL);
        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(o->version, 4);
        ck_assert_int_eq(avk_feedback_fill_owed(fb, o, NULL, &value, id), 1);
        ck_assert_str_eq(text("kind"), "CLOSED");
        ck_assert_str_eq(text("reply_reference"), "CASE-1");
        avk_feedback_paid(fb, o);
        ck_assert_ptr_null(avk_feedback_owed(fb, NULL, NULL));
        ck_assert_ptr_null(avk_feedback_owed(fb, DEV, "another-response"));
        o = avk_feedback_owed(fb, DEV, "the-answer");
        ck_assert_ptr_nonnull(o);
        struct avk_feedback_cause cause = {.id = "the-answer",
                                           .analysis = "Underlaget saknades.",
                                           .action_plan = "Checklista från 1 april."};
        ck_assert_int_eq(avk_feedback_fill_owed(fb, o, &cause, &value, id), 1);
        char want[AVK_IDENT_UUID_SIZE];
        ck_assert_int_eq(avk_ident_uuid5("9d3a6e21-47c8-5b1f-a2e4-6c0b8f7d1e35", DEV "/2",
                                         strlen(DEV "/2"), want),
                         0);
        ck_assert_str_eq(id, want);
        ck_assert_str_eq(text("kind"), "ANSWERED");
        ck_assert_str_eq(text("analysis"), "Underlaget saknades.");
        ck_assert_str_eq(text("reporter_unit_hsa_id"), "SE2120001215-HSK0042");
        ck_assert_str_eq(text("reply_reference"), "CASE-1");
        avk_feedback_paid(fb, o);
        ck_assert_uint_eq(avk_feedback_owed_count(fb), 0);
}
END_TEST

/* Older than the look-back (since) is neither kept as read back nor checked: a feedback past
 * topic.feedback's retention is not written again for a status record compaction kept. */
START_TEST(a_status_older_than_the_look_back_owes_nothing)
{
        const int64_t now = t0 + 30 * DAY, since = now - 7 * DAY;
        struct avk_track_status closed = status(AVK_TRACK_CLOSED, 4, "deadline:DISPUTE_WINDOW");
        ck_assert_int_eq(avk_feedback_check(fb, &closed, since - 1, since), 0);
        ck_assert_int_eq(avk_feedback_read_back(fb, DEV, 4, 3, since - 1, since), 0);
        ck_assert_int_eq(avk_feedback_check(fb, &closed, since, since), 1);
        avk_feedback_read_back_done(fb);
        ck_assert_uint_eq(avk_feedback_owed_count(fb), 1);
}
END_TEST

/* A status completed by a rebuild from its escalation (cause: the escalation's id) has no
 * input to wait for; a revoked partition's feedback owed goes with it. */
START_TEST(an_escalation_read_back_makes_its_status_feedback_owed_now)
{
        const int64_t now = t0 + 30 * DAY, since = now - 7 * DAY;
        struct avk_track_status s = status(AVK_TRACK_DISPUTED, 5, "escalation-id");
        s.step = AVK_TRACK_STEP_MANAGER;
        s.partition = 3;
        ck_assert_int_eq(avk_feedback_check(fb, &s, now, since), 1);
        ck_assert_ptr_null(avk_feedback_owed(fb, NULL, NULL));
        avk_feedback_escalation_read_back(fb, DEV, "escalation-id");
        const struct avk_track_status *o = avk_feedback_owed(fb, NULL, NULL);
        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(avk_feedback_fill_owed(fb, o, NULL, &value, id), 1);
        ck_assert_str_eq(text("kind"), "DISPUTED");
        ck_assert_str_eq(text("escalation_step"), "MANAGER");
        avk_feedback_drop_partition(fb, 3);
        ck_assert_uint_eq(avk_feedback_owed_count(fb), 0);
}
END_TEST

/* A feedback read back without its status record landed while the status record did not (two
 * writes, a kill between their acknowledgements): when the input or timer that caused it makes
 * that version again after the rebuild, the feedback is not written a second time - once; a
 * later version is; a revoked partition's are forgotten. */
START_TEST(a_feedback_that_landed_ahead_of_its_status_is_not_written_again)
{
        const int64_t now = t0 + 30 * DAY, since = now - 7 * DAY;
        const char *other = "6a0e7c52-1b3d-4f8a-9c2e-5d7f1a3b9e04";
        struct avk_track_status routed = status(AVK_TRACK_ROUTED, 1, "routed-event");
        struct avk_track_status answered = status(AVK_TRACK_ANSWERED, 2, "the-answer");
        answered.answered_at = t0 + 5 * DAY;
        struct avk_track_status closed = status(AVK_TRACK_CLOSED, 3, "deadline:DISPUTE_WINDOW");
        ck_assert_int_eq(avk_feedback_read_back(fb, DEV, 1, 3, now, since), 0);
        ck_assert_int_eq(avk_feedback_read_back(fb, DEV, 2, 3, now, since), 0);
        ck_assert_int_eq(avk_feedback_read_back(fb, other, 7, 4, now, since), 0);
        ck_assert_int_eq(avk_feedback_check(fb, &routed, now, since), 0);
        ck_assert_int_eq(avk_feedback_rebuilt(fb), 0);
        ck_assert_uint_eq(avk_feedback_ahead_count(fb), 2);
        ck_assert_int_eq(avk_feedback_fill(fb, &answered, NULL, &value, id), 0);
        ck_assert_int_eq(avk_feedback_fill(fb, &answered, NULL, &value, id), 1);
        ck_assert_int_eq(avk_feedback_fill(fb, &closed, NULL, &value, id), 1);
        ck_assert_int_eq(avk_feedback_fill(fb, &routed, NULL, &value, id), 1);
        ck_assert_uint_eq(avk_feedback_ahead_count(fb), 1);
        avk_feedback_drop_partition(fb, 4);
        ck_assert_uint_eq(avk_feedback_ahead_count(fb), 0);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("feedback");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, kinds_follow_the_state_and_an_overdue_mark_is_none);
        tcase_add_test(tc, id_and_version_are_the_states_and_the_same_on_a_replay);
        tcase_add_test(tc, the_answer_comes_in_full_from_the_response_that_caused_it);
        tcase_add_test(tc, a_step_names_its_holder_on_the_receiving_side);
        tcase_add_test(tc, the_filing_gives_unit_and_reference_until_forgotten);
        tcase_add_test(tc, a_rebuild_owes_the_feedback_of_each_status_read_back_without_it);
        tcase_add_test(tc, a_status_older_than_the_look_back_owes_nothing);
        tcase_add_test(tc, an_escalation_read_back_makes_its_status_feedback_owed_now);
        tcase_add_test(tc, a_feedback_that_landed_ahead_of_its_status_is_not_written_again);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
