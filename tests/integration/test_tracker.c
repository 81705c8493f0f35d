/*
 * The tracker against the in-process mock cluster, on a fake clock: what the
 * receiving unit, its managers and the analysis stream see on Kafka - the
 * status changelog, reminders, escalations with the ladder's holder from the
 * directory and their inbox copies - for responses in order and before
 * their routing, a deadline that passes while the tracker is down, restarts
 * that write nothing twice, and a record that cannot be read; and what the
 * reporting party is told (DeviationFeedback, with its reply reference and a
 * copy to its inbox), for responses in order and before their routing.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util/calendar.h"
#include "common/contract/codec.h"
#include "common/contract/ident.h"
#include "common/util/env.h"
#include "common/contract/json.h"
#include "common/kafka/kafka.h"
#include "consumer/track/deadlines.h"
#include "consumer/track/tracker.h"
#include "tests/support/codec_fixture.h"
#include "tests/support/fake_registry.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/test_data.h"

#define DEV     "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10"
#define DEV2    "6a0e7c52-1b3d-4f8a-9c2e-5d7f1a3b9e04"
#define DEV3    "7b1f8d63-2c4e-4a9b-8d3f-6e8a2b4c0f15" /* a partition of its own; DEV2 is DEV's */
#define UNIT    "SE2321000131-E000000012345" /* Medicinavdelning 31, SU: its own managers */
#define DESK    "SE2321000131-E000000000001" /* the county's triage desk (data/directory.json) */
#define DAY     (24 * 3600 * 1000LL)
#define MAX_REC 512

static struct mock_kafka mk;
static struct avk_env env;
static avk_codec_t *codec;
static rd_kafka_t *producer;
static avk_deadlines_t *policy;
static _Atomic int64_t fake_now;
static int64_t t0;

static int64_t fake_clock(void *opaque)
{
        (void)opaque;
        return atomic_load(&fake_now);
}

static void set(const char *key, const char *value)
{
        char err[512];
        ck_assert_msg(avk_config_set(mk.cfg, key, value, err, sizeof(err)) == 0, "%s", err);
}

static const char *const inboxes[] = {"avvik.inbox.vgr", "avvik.inbox.1480"};

static void setup_brokers(int brokers)
{
        char err[512];
        mock_kafka_start(&mk, brokers);
        for (size_t i = 0; i < sizeof(inboxes) / sizeof(inboxes[0]); i++)
                rd_kafka_mock_topic_create(mk.cluster, inboxes[i],
                                           (int)avk_config_get_int(mk.cfg, "topic.partitions"), 1);
        set("directory.file", AVK_SOURCE_DIR "/data/directory.json");
        set("deadlines.file", AVK_SOURCE_DIR "/data/deadlines.json");
        set("kafka.log_level", "0");
        set("kafka.session.timeout.ms", "6000");
        set("kafka.heartbeat.interval.ms", "500");
        set("tracker.tick.ms", "20");
        ck_assert_int_eq(avk_env_open(&env, mk.cfg, err, sizeof(err)), 0);
        codec = avk_codec_new(env.catalog, env.registry);
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_ptr_nonnull(conf);
        producer = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(producer != NULL, "%s", err);
        struct avk_errors errs;
        avk_errors_init(&errs);
        policy = avk_deadlines_load(AVK_SOURCE_DIR "/data/deadlines.json", &errs);
        ck_assert_ptr_nonnull(policy);
        t0 = avk_calendar_from_local(2026, 3, 2, 9, 0, 0);
        atomic_store(&fake_now, t0);
}

static void setup(void)
{
        setup_brokers(1);
}

static void teardown(void)
{
        avk_deadlines_destroy(policy);
        rd_kafka_destroy(producer);
        avk_codec_destroy(codec);
        avk_env_close(&env);
        mock_kafka_stop(&mk);
}

/* ---- the tracker in a thread ---- */

struct running {
        avk_tracker_t *tracker;
        pthread_t thread;
        int rc;
        char err[512];
};

static void *run(void *arg)
{
        struct running *r = arg;
        r->rc = avk_tracker_run(r->tracker, r->err, sizeof(r->err));
        return NULL;
}

static void start(struct running *r)
{
        char err[4096];
        r->tracker = avk_tracker_new(mk.cfg, fake_clock, NULL, err, sizeof(err));
        ck_assert_msg(r->tracker != NULL, "%s", err);
        ck_assert_int_eq(pthread_create(&r->thread, NULL, run, r), 0);
}

static void stop(struct running *r)
{
        avk_tracker_stop(r->tracker);
        pthread_join(r->thread, NULL);
        ck_assert_msg(r->rc == 0, "%s", r->err);
        avk_tracker_destroy(r->tracker);
}

static struct avk_tracker_stats stats_of(struct running *r)
{
        struct avk_tracker_stats s;
        avk_tracker_stats(r->tracker, &s);
        return s;
}

/* Waits until the tracker has finished n inputs. */
static void wait_inputs(struct running *r, uint64_t n)
{
        for (int i = 0; i < 1200; i++) {
                if (stats_of(r).inputs_done >= n)
                        return;
                usleep(50000);
        }
        ck_abort_msg("the tracker finished %llu inputs of %llu within 60 s",
                     (unsigned long long)stats_of(r).inputs_done, (unsigned long long)n);
}

static void wait_ready(struct running *r)
{
        char why[128];
        for (int i = 0; i < 1200 && !avk_tracker_ready(r->tracker, why, sizeof(why)); i++)
                usleep(50000);
        ck_assert_int_eq(avk_tracker_ready(r->tracker, why, sizeof(why)), 1);
}

/* ---- inputs ---- */

static void produce_json(const char *topic, const char *schema_name, const char *key, json_t *doc)
{
        const avk_schema_t *schema = avk_catalog_by_name(env.catalog, schema_name);
        struct codec_message msg = codec_fixture_encode(codec, topic, schema, doc);
        json_decref(doc);
        ck_assert_int_eq(
            rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE(msg.bytes, msg.len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
        free(msg.bytes);
        ck_assert_int_eq(rd_kafka_flush(producer, 10000), 0);
}

static const char *when(int64_t ms)
{
        static char buf[4][32];
        static int i;
        i = (i + 1) % 4;
        avk_json_format_time(ms, buf[i]);
        return buf[i];
}

/* Hop hop of dev, reported by 1480, to receiver (and unit) by decision. */
static void file_routed_hop(const char *dev, int hop, const char *receiver, const char *unit,
                            const char *decision, int64_t at)
{
        char event[64];
        snprintf(event, sizeof(event), "0c7f3b1e-5d2a-5e4f-8a1%d-%.12s", hop, dev + 24);
        json_t *doc =
            json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s?, s:s, s:s, s:s, s:s, s:s, s:b}",
                      "event_id", event, "deviation_id", dev, "routed_at", when(at), "hop", hop,
                      "reporter_party", "1480", "receiver_party", receiver, "receiver_unit_hsa_id",
                      unit, "decision", decision, "rule_id", "R-TEST", "reason", "test", "category",
                      "DISCHARGE_PLANNING", "harm_level", "LOW", "possible_lex_maria", 0);
        produce_json("deviation.routed", "DeviationRouted", dev, doc);
}

static void file_routed(const char *dev, const char *unit, int64_t at)
{
        file_routed_hop(dev, 0, "VGR", unit, "AGREEMENT_RULE", at);
}

static void file_response(const char *dev, const char *id, const char *kind, const char *party,
                          int64_t at)
{
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s}", "response_id", id, "deviation_id", dev,
                                "responded_at", when(at), "party", party, "kind", kind);
        produce_json("deviation.response", "DeviationResponse", dev, doc);
}

/* The sample deviation as Göteborg's home care unit files it, under dev, with reference. */
static void file_reported(const char *dev, const char *reference)
{
        char err[512];
        json_t *doc = test_data_load_json(AVK_SOURCE_DIR
                                          "/deploy/samples/01-discharge-information-missing.json",
                                          err, sizeof(err));
        ck_assert_msg(doc != NULL, "%s", err);
        json_object_set_new(doc, "deviation_id", json_string(dev));
        json_object_set_new(doc, "reply_reference", json_string(reference));
        produce_json("deviation.reported", "DeviationReported", dev, doc);
}

static void file_answer(const char *dev, const char *id, int64_t at)
{
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "response_id", id,
                                "deviation_id", dev, "responded_at", when(at), "party", "VGR",
                                "kind", "ANSWERED", "analysis", "Utskrivningen saknade underlag.",
                                "action_plan", "Checklista vid utskrivning från 1 april.");
        produce_json("deviation.response", "DeviationResponse", dev, doc);
}

/* ---- outputs ---- */

struct rec {
        char key[40], type[40], id[40];
        json_t *value;
};

static struct {
        size_t n;
        struct rec r[MAX_REC];
} got;

static void header(const rd_kafka_message_t *m, const char *name, char *out, size_t size)
{
        rd_kafka_headers_t *hdrs;
        const void *v;
        size_t len;
        out[0] = '\0';
        if (rd_kafka_message_headers(m, &hdrs) == 0 &&
            rd_kafka_header_get_last(hdrs, name, &v, &len) == 0)
                snprintf(out, size, "%.*s", (int)len, (const char *)v);
}

static void collect(void *opaque, const rd_kafka_message_t *m)
{
        (void)opaque;
        ck_assert_uint_lt(got.n, MAX_REC);
        struct rec *r = &got.r[got.n++];
        memset(r, 0, sizeof(*r));
        snprintf(r->key, sizeof(r->key), "%.*s", (int)m->key_len, (const char *)m->key);
        header(m, "avk-type", r->type, sizeof(r->type));
        header(m, "avk-id", r->id, sizeof(r->id));
        const avk_schema_t *schema = avk_catalog_by_name(env.catalog, r->type);
        char err[256];
        if (schema)
                codec_fixture_decode(codec, m->payload, m->len, schema, &r->value, err,
                                     sizeof(err));
}

static void release(void)
{
        for (size_t i = 0; i < got.n; i++)
                json_decref(got.r[i].value);
        got.n = 0;
}

static size_t read_topic(const char *topic)
{
        release();
        return mock_kafka_read_all(&mk, topic, collect, NULL);
}

static const char *str(const struct rec *r, const char *field)
{
        return json_string_value(json_object_get(r->value, field));
}

/* The status record of dev with the highest version. */
static const struct rec *latest_status(const char *dev)
{
        const struct rec *best = NULL;
        for (size_t i = 0; i < got.n; i++) {
                const struct rec *r = &got.r[i];
                json_int_t v = json_integer_value(json_object_get(r->value, "version"));
                if (strcmp(r->key, dev) == 0 &&
                    (!best || v > json_integer_value(json_object_get(best->value, "version"))))
                        best = r;
        }
        return best;
}

/* Polls topic until it holds at least n records. */
static void wait_records(const char *topic, size_t n)
{
        for (int i = 0; i < 60; i++) {
                if (read_topic(topic) >= n)
                        return;
                usleep(200000);
        }
        ck_abort_msg("%s: %zu records, expected %zu", topic, got.n, n);
}

static size_t distinct_ids(void)
{
        size_t n = 0;
        for (size_t i = 0; i < got.n; i++) {
                size_t j = 0;
                while (j < i && strcmp(got.r[j].id, got.r[i].id) != 0)
                        j++;
                n += j == i;
        }
        return n;
}

static const struct avk_deadline_terms *terms(void)
{
        return avk_deadlines_lookup(policy, "VGR", "DISCHARGE_PLANNING", "LOW", 0);
}

/* ---- tests ---- */

START_TEST(status_changes_follow_the_responses_with_every_field)
{
        struct running r;
        start(&r);
        wait_ready(&r);
        file_routed(DEV, UNIT, t0);
        file_response(DEV, "9b2e4c1a-7d3f-4e8b-a5c6-1f2e3d4c5b6a", "ACKNOWLEDGED", "VGR",
                      t0 + 3600000);
        file_response(DEV, "8a1d3b0f-6c2e-4d7a-94b5-0e1d2c3b4a59", "ANSWERED", "VGR", t0 + 5 * DAY);
        wait_inputs(&r, 3);
        stop(&r);
        ck_assert_uint_eq(read_topic("deviation.status"), 3);
        const struct rec *s = latest_status(DEV);
        ck_assert_str_eq(str(s, "state"), "ANSWERED");
        ck_assert_int_eq(json_integer_value(json_object_get(s->value, "version")), 3);
        ck_assert_str_eq(str(s, "deadline_rule"), "D-DEFAULT");
        ck_assert_str_eq(str(s, "receiver_unit_hsa_id"), UNIT);
        ck_assert_str_eq(str(s, "reporter_party"), "1480");
        ck_assert_int_eq(json_integer_value(json_object_get(s->value, "time_to_answer_ms")),
                         5 * DAY);
        ck_assert_int_eq(json_integer_value(json_object_get(s->value, "time_to_acknowledge_ms")),
                         3600000);
        ck_assert(json_is_true(json_object_get(s->value, "deadline_kept")));
        ck_assert(json_is_false(json_object_get(s->value, "overdue")));
        ck_assert(json_is_null(json_object_get(s->value, "escalation_step")));
        ck_assert_str_eq(s->id, str(s, "state_id"));
        release();
}
END_TEST

/* How many copies of the record id the topic holds (an inbox gets one of each of its party's). */
static size_t copies_in(const char *topic, const char *id)
{
        size_t n = 0;
        read_topic(topic);
        for (const struct rec *r = got.r; r < got.r + got.n; r++) {
                if (strcmp(r->id, id) == 0)
                        n++;
        }
        return n;
}

/* A missed deadline is no disagreement: one step to the receiving unit's
 * "Chef över chef", the receiver's alone. */
START_TEST(a_passed_deadline_escalates_to_the_units_managers_manager_with_an_inbox_copy)
{
        struct running r;
        start(&r);
        wait_ready(&r);
        file_routed(DEV, UNIT, t0);
        wait_inputs(&r, 1);
        int64_t ack_deadline = avk_deadline_after(&terms()->acknowledge, t0);
        atomic_store(&fake_now, avk_deadline_before(&terms()->remind_before, ack_deadline));
        wait_records("deviation.reminder", 1);
        atomic_store(&fake_now, ack_deadline + 1);
        wait_records("deviation.escalated", 1);
        stop(&r);
        ck_assert_uint_eq(got.n, 1);
        const struct rec *e = &got.r[0];
        ck_assert_str_eq(str(e, "step"), "MANAGERS_MANAGER");
        ck_assert_str_eq(str(e, "reason"), "ACKNOWLEDGE_DEADLINE_PASSED");
        ck_assert_str_eq(str(e, "holder"), "Verksamhetschef, Område Medicin, SU");
        ck_assert_str_eq(str(e, "party"), "VGR");
        ck_assert_str_eq(str(e, "unit_hsa_id"), UNIT);
        ck_assert(json_is_null(json_object_get(e->value, "counterpart_party")));
        char id[40];
        snprintf(id, sizeof(id), "%s", e->id);
        read_topic("deviation.status");
        const struct rec *s = latest_status(DEV);
        ck_assert_str_eq(str(s, "state"), "ESCALATED");
        ck_assert_str_eq(str(s, "escalation_step"), "MANAGERS_MANAGER");
        ck_assert(json_is_true(json_object_get(s->value, "overdue")));
        /* The reminder before the deadline came first, once. */
        ck_assert_uint_eq(read_topic("deviation.reminder"), 1);
        ck_assert_str_eq(str(&got.r[0], "kind"), "ACKNOWLEDGE");
        ck_assert_uint_eq(copies_in("avvik.inbox.vgr", id), 1);
        release();
}
END_TEST

/* A disputed answer is a disagreement: both parties' holders of the step
 * are told, each in its own inbox. */
START_TEST(a_disputed_answer_tells_both_parties_holders_of_the_next_step)
{
        struct running r;
        start(&r);
        wait_ready(&r);
        file_routed(DEV, UNIT, t0);
        file_response(DEV, "8a1d3b0f-6c2e-4d7a-94b5-0e1d2c3b4a59", "ANSWERED", "VGR", t0 + DAY);
        /* The receiver cannot dispute its own answer; the reporter can. */
        file_response(DEV, "7f0c2a9e-5b1d-4c6f-83a4-9d0c1b2a3948", "DISPUTED", "VGR", t0 + 2 * DAY);
        file_response(DEV, "6e9b1f8d-4a0c-4b5e-92f3-8c9b0a192837", "DISPUTED", "1480",
                      t0 + 2 * DAY);
        wait_inputs(&r, 4);
        wait_records("deviation.escalated", 2);
        stop(&r);
        ck_assert_uint_eq(got.n, 2);
        const struct rec *receiver =
            strcmp(str(&got.r[0], "party"), "VGR") == 0 ? &got.r[0] : &got.r[1];
        const struct rec *reporter = receiver == &got.r[0] ? &got.r[1] : &got.r[0];
        for (int i = 0; i < 2; i++) {
                ck_assert_str_eq(str(&got.r[i], "reason"), "ANSWER_DISPUTED");
                ck_assert_str_eq(str(&got.r[i], "step"), "MANAGER");
        }
        ck_assert_str_eq(str(receiver, "holder"), "Vårdenhetschef, Medicinavdelning 31, SU");
        ck_assert_str_eq(str(receiver, "unit_hsa_id"), UNIT);
        ck_assert_str_eq(str(receiver, "counterpart_party"), "1480");
        ck_assert_str_eq(str(reporter, "party"), "1480");
        ck_assert_str_eq(str(reporter, "holder"),
                         "Enhetschef närmast patienten, Göteborg (nås via avvikelsesamordnaren)");
        ck_assert(json_is_null(json_object_get(reporter->value, "unit_hsa_id")));
        ck_assert_str_eq(str(reporter, "counterpart_party"), "VGR");
        char receiver_id[40], reporter_id[40];
        snprintf(receiver_id, sizeof(receiver_id), "%s", receiver->id);
        snprintf(reporter_id, sizeof(reporter_id), "%s", reporter->id);
        ck_assert_uint_eq(copies_in("avvik.inbox.vgr", receiver_id), 1);
        ck_assert_uint_eq(copies_in("avvik.inbox.vgr", reporter_id), 0);
        ck_assert_uint_eq(copies_in("avvik.inbox.1480", reporter_id), 1);
        ck_assert_uint_eq(copies_in("avvik.inbox.1480", receiver_id), 0);
        read_topic("deviation.status");
        const struct rec *s = latest_status(DEV);
        ck_assert_str_eq(str(s, "state"), "DISPUTED");
        int64_t deadline = 0;
        ck_assert_int_eq(avk_json_parse_time(str(s, "answer_deadline_at"), &deadline), 0);
        ck_assert_int_eq(deadline, avk_deadline_after(&terms()->step_answer, t0 + 2 * DAY));
        release();
}
END_TEST

/* The third dispute reaches the local forum: on both sides the partsgemensamt
 * forum of Göteborg's sub-region, and the records name no patient. */
START_TEST(a_third_dispute_reaches_the_subregions_forum_with_no_patient_identity)
{
        static const char *const fields[] = {
            "escalation_id", "deviation_id", "escalated_at",     "party",
            "step",          "reason",       "holder",           "deadline_at",
            "hop",           "unit_hsa_id",  "counterpart_party"};
        struct running r;
        start(&r);
        wait_ready(&r);
        file_routed(DEV, UNIT, t0);
        for (int round = 0; round < 3; round++) {
                char answer[40], dispute[40];
                snprintf(answer, sizeof(answer), "8a1d3b0f-6c2e-4d7a-94b5-0e1d2c3b4a5%d", round);
                snprintf(dispute, sizeof(dispute), "6e9b1f8d-4a0c-4b5e-92f3-8c9b0a19283%d", round);
                file_response(DEV, answer, "ANSWERED", "VGR", t0 + (2 * round + 1) * DAY);
                file_response(DEV, dispute, "DISPUTED", "1480", t0 + (2 * round + 2) * DAY);
        }
        wait_inputs(&r, 7);
        wait_records("deviation.escalated", 6);
        stop(&r);
        size_t forum = 0;
        for (size_t i = 0; i < got.n; i++) {
                const struct rec *e = &got.r[i];
                ck_assert_uint_eq(json_object_size(e->value), sizeof(fields) / sizeof(fields[0]));
                for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
                        ck_assert_msg(json_object_get(e->value, fields[f]), "%s", fields[f]);
                if (strcmp(str(e, "step"), "LOCAL_FORUM") != 0)
                        continue;
                forum++;
                ck_assert_str_eq(
                    str(e, "holder"),
                    "Partsgemensamt forum Göteborgsregionen (delregional vårdsamverkan)");
        }
        ck_assert_uint_eq(forum, 2);
        release();
}
END_TEST

/* Göteborg reports, the region answers "wrong receiver", and routing, which may not send it back
 * to the reporter, has nobody left: it goes to the county's triage desk, and both sides' holders
 * of the local forum step - the forum of Göteborg's sub-region - are told, each copy in its own
 * party's inbox; the desk triages meanwhile. */
START_TEST(both_sides_wrong_receiver_reach_the_subregions_forum_on_both_sides)
{
        struct running r;
        start(&r);
        wait_ready(&r);
        file_routed(DEV, UNIT, t0);
        file_response(DEV, "7c0a2e4b-9d1f-4a3c-8b5e-2f4a6c8e0b13", "REJECTED_WRONG_RECEIVER", "VGR",
                      t0 + 3600000);
        file_routed_hop(DEV, 1, "VGR", DESK, "MANUAL", t0 + 2 * 3600000);
        wait_inputs(&r, 3);
        wait_records("deviation.escalated", 2);
        stop(&r);
        ck_assert_uint_eq(got.n, 2);
        for (size_t i = 0; i < got.n; i++) {
                const struct rec *e = &got.r[i];
                ck_assert_str_eq(str(e, "step"), "LOCAL_FORUM");
                ck_assert_str_eq(str(e, "reason"), "WRONG_RECEIVER_BOTH_SIDES");
                ck_assert_str_eq(
                    str(e, "holder"),
                    "Partsgemensamt forum Göteborgsregionen (delregional vårdsamverkan)");
                ck_assert(json_is_null(json_object_get(e->value, "unit_hsa_id")));
                ck_assert_str_eq(str(e, "counterpart_party"),
                                 strcmp(str(e, "party"), "VGR") == 0 ? "1480" : "VGR");
        }
        ck_assert_str_ne(str(&got.r[0], "party"), str(&got.r[1], "party"));
        char region_id[40], municipality_id[40];
        int first_is_region = strcmp(str(&got.r[0], "party"), "VGR") == 0;
        snprintf(region_id, sizeof(region_id), "%s", got.r[first_is_region ? 0 : 1].id);
        snprintf(municipality_id, sizeof(municipality_id), "%s", got.r[first_is_region ? 1 : 0].id);
        ck_assert_uint_eq(copies_in("avvik.inbox.vgr", region_id), 1);
        ck_assert_uint_eq(copies_in("avvik.inbox.1480", municipality_id), 1);
        ck_assert_uint_eq(copies_in("avvik.inbox.vgr", municipality_id), 0);
        read_topic("deviation.status");
        const struct rec *s = latest_status(DEV);
        ck_assert_str_eq(str(s, "state"), "ESCALATED");
        ck_assert_str_eq(str(s, "escalation_step"), "LOCAL_FORUM");
        ck_assert(json_is_true(json_object_get(s->value, "wrong_receiver_region")));
        release();
}
END_TEST

/* A manual step waits for a person to confirm it, across a restart: the
 * pending step is in the changelog, and the confirmation climbs. */
START_TEST(a_manual_step_waits_for_its_confirmation_across_a_restart)
{
        static const char path[] = "test_tracker_manual.json";
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("{\"rules\": [{\"id\": \"D-ALL\", \"because\": \"test\", \"acknowledge\": "
              "{\"working_days\": 3}, \"answer\": {\"days\": 60}, \"step_answer\": "
              "{\"working_days\": 10}, \"dispute_window\": {\"days\": 30}, \"manual_steps\": "
              "[\"MANAGER\"]}]}\n",
              f);
        ck_assert_int_eq(fclose(f), 0);
        set("deadlines.file", path);
        struct running r;
        start(&r);
        wait_ready(&r);
        file_routed(DEV, UNIT, t0);
        file_response(DEV, "8a1d3b0f-6c2e-4d7a-94b5-0e1d2c3b4a59", "ANSWERED", "VGR", t0 + DAY);
        file_response(DEV, "6e9b1f8d-4a0c-4b5e-92f3-8c9b0a192837", "DISPUTED", "1480",
                      t0 + 2 * DAY);
        wait_inputs(&r, 3);
        stop(&r);
        ck_assert_uint_eq(read_topic("deviation.escalated"), 0);
        read_topic("deviation.status");
        const struct rec *s = latest_status(DEV);
        ck_assert_str_eq(str(s, "state"), "DISPUTED");
        ck_assert_str_eq(str(s, "pending_step"), "MANAGER");
        ck_assert(json_is_null(json_object_get(s->value, "escalation_step")));
        start(&r);
        wait_ready(&r);
        file_response(DEV, "5d8a0e7c-3b9f-4a4d-81e2-7b8a9f081726", "ESCALATION_CONFIRMED", "1480",
                      t0 + 3 * DAY);
        wait_inputs(&r, 1);
        wait_records("deviation.escalated", 2);
        stop(&r);
        remove(path);
        for (size_t i = 0; i < got.n; i++)
                ck_assert_str_eq(str(&got.r[i], "step"), "MANAGER");
        read_topic("deviation.status");
        s = latest_status(DEV);
        ck_assert_str_eq(str(s, "escalation_step"), "MANAGER");
        ck_assert(json_is_null(json_object_get(s->value, "pending_step")));
        release();
}
END_TEST

START_TEST(a_response_before_its_routing_is_applied_when_the_routing_arrives)
{
        file_response(DEV, "9b2e4c1a-7d3f-4e8b-a5c6-1f2e3d4c5b6a", "ACKNOWLEDGED", "VGR",
                      t0 + 3600000);
        struct running r;
        start(&r);
        wait_ready(&r);
        usleep(300000); /* the response is read and kept first */
        file_routed(DEV, NULL, t0);
        wait_inputs(&r, 2);
        stop(&r);
        read_topic("deviation.status");
        ck_assert_str_eq(str(latest_status(DEV), "state"), "ACKNOWLEDGED");
        release();
}
END_TEST

/* Down while a deadline passes: it fires when the tracker is back; and
 * restarts write no status record, reminder or escalation twice. */
START_TEST(a_deadline_passed_while_down_fires_at_restart_and_nothing_twice)
{
        struct running r;
        start(&r);
        wait_ready(&r);
        file_routed(DEV, NULL, t0);
        file_routed(DEV2, UNIT, t0);
        wait_inputs(&r, 2);
        stop(&r);
        int64_t ack_deadline = avk_deadline_after(&terms()->acknowledge, t0);
        atomic_store(&fake_now, ack_deadline + DAY);
        start(&r);
        wait_ready(&r);
        wait_records("deviation.escalated", 2);
        stop(&r);
        for (int life = 0; life < 2; life++) {
                start(&r);
                wait_ready(&r);
                usleep(500000);
                stop(&r);
        }
        ck_assert_uint_eq(read_topic("deviation.escalated"), 2);
        ck_assert_uint_eq(distinct_ids(), 2);
        size_t statuses = read_topic("deviation.status");
        ck_assert_uint_eq(distinct_ids(), statuses);
        ck_assert_uint_eq(statuses, 4); /* ROUTED and ESCALATED of each */
        release();
}
END_TEST

/* A backlog at a start (a restart, a tracker behind its inputs): the
 * routings are read at once, the acknowledgements given in time come from a
 * broker 0.5 s slower, and the clock is past the deadline. Timers are judged once
 * the inputs are read to their end (docs/tracker.md, "Time"):
 * what is acknowledged in Kafka is neither escalated nor reminded. */
#define BACKLOG 100
START_TEST(an_acknowledgement_waiting_in_kafka_stops_its_deadline)
{
        teardown();
        setup_brokers(2);
        for (size_t t = 0; t < avk_topic_cnt + 2; t++) {
                const char *topic = t < avk_topic_cnt
                                        ? avk_config_get(mk.cfg, avk_topics[t].config_key)
                                        : inboxes[t - avk_topic_cnt];
                for (int p = 0; p < (int)avk_config_get_int(mk.cfg, "topic.partitions"); p++)
                        rd_kafka_mock_partition_set_leader(
                            mk.cluster, topic, p, strcmp(topic, "deviation.response") ? 1 : 2);
        }
        rd_kafka_mock_coordinator_set(mk.cluster, "group", "avvik-tracker", 1);
        char dev[40], id[40];
        for (int i = 0; i < BACKLOG; i++) {
                snprintf(dev, sizeof(dev), "3f1c2a9e-8b7d-4c1e-9a65-%012x", i);
                snprintf(id, sizeof(id), "9b2e4c1a-7d3f-4e8b-a5c6-%012x", i);
                file_routed(dev, NULL, t0);
                file_response(dev, id, "ACKNOWLEDGED", "VGR", t0 + 3600000);
        }
        int64_t now = avk_deadline_after(&terms()->acknowledge, t0) + DAY;
        ck_assert_int_gt(avk_deadline_after(&terms()->answer, t0), now);
        atomic_store(&fake_now, now);
        rd_kafka_mock_broker_set_rtt(mk.cluster, 2, 500);
        struct running r;
        start(&r); /* not ready: a metadata request to the slow broker takes 0.5 s */
        wait_inputs(&r, 2 * BACKLOG);
        usleep(500000); /* ticks after the last input */
        stop(&r);
        rd_kafka_mock_broker_set_rtt(mk.cluster, 2, 0);
        ck_assert_uint_eq(read_topic("deviation.escalated"), 0);
        ck_assert_uint_eq(read_topic("deviation.reminder"), 0);
        release();
}
END_TEST

START_TEST(an_unreadable_record_goes_to_the_dead_letter_and_the_partition_goes_on)
{
        const char junk[] = "not avro";
        ck_assert_int_eq(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("deviation.response"),
                                           RD_KAFKA_V_KEY(DEV, strlen(DEV)),
                                           RD_KAFKA_V_VALUE((void *)junk, sizeof(junk)),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
        rd_kafka_flush(producer, 10000);
        file_routed(DEV, NULL, t0);
        struct running r;
        start(&r);
        wait_inputs(&r, 2);
        stop(&r);
        ck_assert_uint_eq(read_topic("deviation.deadletter"), 1);
        ck_assert_uint_eq(read_topic("deviation.status"), 1);
        release();
}
END_TEST

/* A Schema Registry outage is no reason to stop or to dead-letter: the tracker registers its
 * output schemas before it takes a partition, is not ready while it cannot, and tracks what
 * waited once the registry answers. The routing is written without the registry (single-object
 * framing, as the default writers do), so only the tracker's own outputs need it. */
START_TEST(registry_down_the_tracker_waits_not_ready_and_dead_letters_nothing)
{
        struct fake_registry *fake = fake_registry_start_or_fail();
        set("schema.registry.url", fake_registry_url(fake));
        fake_registry_set_mode(fake, FAKE_REGISTRY_FAIL_500);
        file_routed(DEV, UNIT, t0);
        struct running r;
        start(&r);
        for (int i = 0; i < 600 && fake_registry_seen(fake).requests < 3; i++)
                usleep(50000);
        ck_assert_int_ge(fake_registry_seen(fake).requests, 3);
        char why[256];
        ck_assert_int_eq(avk_tracker_ready(r.tracker, why, sizeof(why)), 0);
        ck_assert_uint_eq(stats_of(&r).inputs_done, 0);
        fake_registry_set_mode(fake, FAKE_REGISTRY_NORMAL);
        wait_ready(&r);
        wait_inputs(&r, 1);
        stop(&r);
        ck_assert_int_eq(fake_registry_registrations(fake, "deviation.status-value"), 1);
        fake_registry_stop(fake);
        ck_assert_uint_eq(read_topic("deviation.deadletter"), 0);
        ck_assert_uint_eq(read_topic("deviation.status"), 1);
        ck_assert_str_eq(got.r[0].type, "DeviationStatus");
        ck_assert_str_eq(got.r[0].key, DEV);
        release();
}
END_TEST

START_TEST(metrics_show_the_times_per_party_and_the_open_count)
{
        struct running r;
        start(&r);
        wait_ready(&r);
        file_routed(DEV, NULL, t0);
        file_response(DEV, "9b2e4c1a-7d3f-4e8b-a5c6-1f2e3d4c5b6a", "ANSWERED", "VGR", t0 + 2 * DAY);
        file_routed(DEV2, NULL, t0);
        /* A response from a party that is not the receiver: ignored, counted. */
        file_response(DEV2, "8a1d3b0f-6c2e-4d7a-94b5-0e1d2c3b4a59", "ANSWERED", "1401", t0 + DAY);
        wait_inputs(&r, 4);
        atomic_store(&fake_now, t0 + 3600000);
        usleep(200000); /* a tick publishes the figures */
        char *text = avk_metrics_render(avk_tracker_metrics(r.tracker));
        stop(&r);
        ck_assert_ptr_nonnull(text);
        ck_assert_msg(strstr(text, "avk_tracker_time_to_answer_seconds{party=\"VGR\","
                                   "quantile=\"0.5\"} 172800\n"),
                      "%s", text);
        ck_assert_ptr_nonnull(strstr(text, "avk_tracker_time_to_answer_seconds{party=\"VGR\","
                                           "quantile=\"0.9\"} 172800\n"));
        ck_assert_ptr_nonnull(strstr(text, "avk_tracker_open{party=\"VGR\"} 2\n"));
        ck_assert_ptr_nonnull(strstr(
            text, "avk_tracker_inputs_total{topic=\"deviation.response\",result=\"not_receiver\"} "
                  "1\n"));
        free(text);
}
END_TEST

/* The feedback record of dev with version v, from what was read last. */
static const struct rec *feedback_of(const char *dev, int v)
{
        for (size_t i = 0; i < got.n; i++) {
                const struct rec *r = &got.r[i];
                if (strcmp(r->key, dev) == 0 &&
                    json_integer_value(json_object_get(r->value, "version")) == v)
                        return r;
        }
        ck_abort_msg("no feedback version %d of %s", v, dev);
        return NULL;
}

START_TEST(the_reporting_party_is_told_each_change_with_its_reference)
{
        struct running r;
        start(&r);
        wait_ready(&r);
        file_reported(DEV, "TRESERVA-2026-000123");
        file_routed(DEV, UNIT, t0);
        file_response(DEV, "9b2e4c1a-7d3f-4e8b-a5c6-1f2e3d4c5b6a", "ACKNOWLEDGED", "VGR",
                      t0 + 3600000);
        file_answer(DEV, "8a1d3b0f-6c2e-4d7a-94b5-0e1d2c3b4a59", t0 + 5 * DAY);
        wait_inputs(&r, 4);
        stop(&r);
        ck_assert_uint_eq(read_topic("deviation.feedback"), 3);
        ck_assert_uint_eq(distinct_ids(), 3);
        const struct rec *routed = feedback_of(DEV, 1);
        ck_assert_str_eq(str(routed, "kind"), "ROUTED");
        ck_assert_str_eq(str(routed, "decision"), "AGREEMENT_RULE");
        ck_assert_str_eq(str(routed, "rule_id"), "R-TEST");
        ck_assert_str_eq(str(routed, "receiver_party"), "VGR");
        ck_assert_str_eq(str(routed, "receiver_unit_hsa_id"), UNIT);
        ck_assert_ptr_nonnull(str(routed, "answer_deadline_at"));
        ck_assert_str_eq(str(feedback_of(DEV, 2), "kind"), "ACKNOWLEDGED");
        const struct rec *answer = feedback_of(DEV, 3);
        ck_assert_str_eq(str(answer, "kind"), "ANSWERED");
        ck_assert_str_eq(str(answer, "analysis"), "Utskrivningen saknade underlag.");
        ck_assert_str_eq(str(answer, "action_plan"), "Checklista vid utskrivning från 1 april.");
        ck_assert_str_eq(str(answer, "dispute_until"),
                         when(avk_deadline_after(&terms()->dispute_window, t0 + 5 * DAY)));
        ck_assert_str_eq(str(answer, "reporter_party"), "1480");
        ck_assert_str_eq(str(answer, "reporter_unit_hsa_id"), "SE2120001215-HSK0042");
        ck_assert_str_eq(str(answer, "reply_reference"), "TRESERVA-2026-000123");
        ck_assert_str_eq(answer->id, str(answer, "event_id"));
        ck_assert_str_eq(answer->type, "DeviationFeedback");
        /* Each is copied to the reporting unit's inbox (its party's: it names none). */
        char id[40];
        snprintf(id, sizeof(id), "%s", answer->id);
        ck_assert_uint_eq(copies_in("avvik.inbox.1480", id), 1);
        release();
}
END_TEST

START_TEST(an_answer_kept_for_its_routing_reaches_the_reporter_in_full)
{
        file_reported(DEV, "TRESERVA-2026-000124");
        file_answer(DEV, "8a1d3b0f-6c2e-4d7a-94b5-0e1d2c3b4a59", t0 + 3600000);
        struct running r;
        start(&r);
        wait_ready(&r);
        usleep(300000); /* the answer is read and kept first */
        file_routed(DEV, NULL, t0);
        wait_inputs(&r, 3);
        stop(&r);
        ck_assert_uint_eq(read_topic("deviation.feedback"), 2);
        ck_assert_str_eq(str(feedback_of(DEV, 1), "kind"), "ROUTED");
        const struct rec *answer = feedback_of(DEV, 2);
        ck_assert_str_eq(str(answer, "kind"), "ANSWERED");
        ck_assert_str_eq(str(answer, "analysis"), "Utskrivningen saknade underlag.");
        ck_assert_str_eq(str(answer, "reply_reference"), "TRESERVA-2026-000124");
        release();
}
END_TEST

/* Makes partition p of topic leaderless (leader -1), or gives it back to broker 1. */
static void set_leader(const char *topic, int p, int leader)
{
        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(mk.cluster, topic, p, leader), 0);
}

static void note_partition(void *opaque, const rd_kafka_message_t *m)
{
        if (m->key_len == strlen(DEV) && memcmp(m->key, DEV, m->key_len) == 0)
                ((int *)opaque)[0] = m->partition;
        else
                ((int *)opaque)[1] = m->partition;
}

/* The feedback records of dev at version v, from what was read last. */
static size_t feedback_count(const char *dev, int v)
{
        size_t n = 0;
        for (size_t i = 0; i < got.n; i++)
                n += strcmp(got.r[i].key, dev) == 0 &&
                     json_integer_value(json_object_get(got.r[i].value, "version")) == v;
        return n;
}

/* Waits until the tracker has decided n status records (written or not). */
static void wait_statuses(struct running *r, uint64_t n)
{
        for (int i = 0; i < 300 && stats_of(r).statuses < n; i++)
                usleep(100000);
        ck_assert_uint_eq(stats_of(r).statuses, n);
}

/* A crash between status records and their feedback, both ways round, on
 * two deviations' partitions. DEV's feedback partition has no leader while
 * an answer is applied and its dispute window passes: the ANSWERED and
 * CLOSED status records are in Kafka and their feedback is not. DEV3's status
 * partition has none while its acknowledge deadline passes: its escalation
 * and the ESCALATED feedback land, the status record does not. The tracker
 * goes (its close gives up what is not written, as a kill would). After a
 * restart each feedback is there once, with the id and body the first
 * attempt had: DEV's closing at the end of the rebuild, its answer (analysis
 * and action plan from the response) when the response is read again; DEV3's
 * status record is completed without a second feedback. */
START_TEST(feedback_lost_between_status_and_feedback_is_written_once_after_a_restart)
{
        struct running r;
        start(&r);
        wait_ready(&r);
        file_reported(DEV, "TRESERVA-2026-000125");
        file_routed(DEV, UNIT, t0);
        file_routed(DEV3, UNIT, t0);
        wait_records("deviation.feedback", 2);
        int part[2] = {-1, -1}; /* DEV's and DEV3's */
        mock_kafka_read_all(&mk, "deviation.routed", note_partition, part);
        ck_assert_int_ne(part[0], part[1]);
        set_leader("deviation.feedback", part[0], -1);
        set_leader("deviation.status", part[1], -1);
        file_answer(DEV, "8a1d3b0f-6c2e-4d7a-94b5-0e1d2c3b4a59", t0 + DAY);
        int64_t dispute_until = avk_deadline_after(&terms()->dispute_window, t0 + DAY);
        wait_statuses(&r, 3); /* the answer's input stays unfinished: its feedback waits */
        atomic_store(&fake_now, dispute_until + DAY);
        wait_records("deviation.escalated", 1); /* DEV3's, and its feedback beside it */
        wait_statuses(&r, 5);                   /* DEV: 3, DEV3: 2 */
        usleep(1000000);
        stop(&r);
        set_leader("deviation.feedback", part[0], 1);
        set_leader("deviation.status", part[1], 1);
        read_topic("deviation.feedback");
        ck_assert_uint_eq(feedback_count(DEV, 2) + feedback_count(DEV, 3), 0);
        ck_assert_uint_eq(feedback_count(DEV3, 2), 1);
        for (int life = 0; life < 2; life++) { /* the second writes nothing */
                start(&r);
                wait_ready(&r);
                wait_records("deviation.feedback", 5);
                usleep(500000);
                stop(&r);
        }
        size_t records = read_topic("deviation.feedback");
        ck_assert_uint_eq(distinct_ids(), records);
        for (int v = 1; v <= 3; v++)
                ck_assert_uint_eq(feedback_count(DEV, v), 1);
        ck_assert_uint_eq(feedback_count(DEV3, 1), 1);
        ck_assert_uint_eq(feedback_count(DEV3, 2), 1);
        const struct rec *answer = feedback_of(DEV, 2);
        char id[AVK_IDENT_UUID_SIZE];
        const char name[] = DEV "/2";
        ck_assert_int_eq(
            avk_ident_uuid5("9d3a6e21-47c8-5b1f-a2e4-6c0b8f7d1e35", name, sizeof(name) - 1, id), 0);
        ck_assert_str_eq(str(answer, "event_id"), id);
        ck_assert_str_eq(answer->id, id);
        ck_assert_str_eq(str(answer, "kind"), "ANSWERED");
        ck_assert_str_eq(str(answer, "analysis"), "Utskrivningen saknade underlag.");
        ck_assert_str_eq(str(answer, "action_plan"), "Checklista vid utskrivning från 1 april.");
        ck_assert_str_eq(str(answer, "dispute_until"), when(dispute_until));
        ck_assert_str_eq(str(answer, "reporter_unit_hsa_id"), "SE2120001215-HSK0042");
        ck_assert_str_eq(str(answer, "reply_reference"), "TRESERVA-2026-000125");
        const struct rec *closed = feedback_of(DEV, 3);
        ck_assert_str_eq(str(closed, "kind"), "CLOSED");
        ck_assert_str_eq(str(closed, "occurred_at"), when(dispute_until));
        ck_assert_str_eq(str(closed, "reply_reference"), "TRESERVA-2026-000125");
        ck_assert_str_eq(str(feedback_of(DEV3, 2), "kind"), "ESCALATED");
        read_topic("deviation.status");
        ck_assert_str_eq(str(latest_status(DEV3), "escalation_step"), "MANAGERS_MANAGER");
        /* The inbox had its leader: the first attempt's copy arrived, and the one written with
         * the feedback again carries the same id (inbox copies are at least once). */
        ck_assert_uint_eq(copies_in("avvik.inbox.1480", id), 2);
        release();
}
END_TEST

/* The other way round from an input: DEV's status partition has no leader while its answer is
 * applied, so the ANSWERED feedback lands and its status record does not. After a restart the
 * response is read again (its offset waited for the status record) and makes that version
 * again: the status record is written, the feedback is not written a second time. */
START_TEST(a_feedback_that_landed_without_its_status_is_not_written_again)
{
        struct running r;
        start(&r);
        wait_ready(&r);
        file_reported(DEV, "TRESERVA-2026-000126");
        file_routed(DEV, UNIT, t0);
        wait_records("deviation.feedback", 1);
        wait_records("deviation.status", 1);
        int part[2] = {-1, -1};
        mock_kafka_read_all(&mk, "deviation.routed", note_partition, part);
        set_leader("deviation.status", part[0], -1);
        file_answer(DEV, "8a1d3b0f-6c2e-4d7a-94b5-0e1d2c3b4a60", t0 + DAY);
        wait_records("deviation.feedback", 2);
        stop(&r);
        set_leader("deviation.status", part[0], 1);
        ck_assert_uint_eq(read_topic("deviation.status"), 1);
        start(&r);
        wait_ready(&r);
        wait_records("deviation.status", 2);
        ck_assert_int_eq(
            (int)json_integer_value(json_object_get(latest_status(DEV)->value, "version")), 2);
        usleep(500000);
        stop(&r);
        size_t records = read_topic("deviation.feedback");
        ck_assert_uint_eq(distinct_ids(), records);
        ck_assert_uint_eq(feedback_count(DEV, 2), 1);
        ck_assert_str_eq(str(feedback_of(DEV, 2), "kind"), "ANSWERED");
        release();
}
END_TEST

int main(void)
{
        Suite *s = suite_create("tracker");
        TCase *tc = tcase_create("mock cluster");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 180);
        tcase_add_test(tc, status_changes_follow_the_responses_with_every_field);
        tcase_add_test(
            tc, a_passed_deadline_escalates_to_the_units_managers_manager_with_an_inbox_copy);
        tcase_add_test(tc, a_disputed_answer_tells_both_parties_holders_of_the_next_step);
        tcase_add_test(tc, a_third_dispute_reaches_the_subregions_forum_with_no_patient_identity);
        tcase_add_test(tc, both_sides_wrong_receiver_reach_the_subregions_forum_on_both_sides);
        tcase_add_test(tc, a_manual_step_waits_for_its_confirmation_across_a_restart);
        tcase_add_test(tc, a_response_before_its_routing_is_applied_when_the_routing_arrives);
        tcase_add_test(tc, a_deadline_passed_while_down_fires_at_restart_and_nothing_twice);
        tcase_add_test(tc, an_acknowledgement_waiting_in_kafka_stops_its_deadline);
        tcase_add_test(tc, an_unreadable_record_goes_to_the_dead_letter_and_the_partition_goes_on);
        tcase_add_test(tc, metrics_show_the_times_per_party_and_the_open_count);
        tcase_add_test(tc, registry_down_the_tracker_waits_not_ready_and_dead_letters_nothing);
        tcase_add_test(tc, the_reporting_party_is_told_each_change_with_its_reference);
        tcase_add_test(tc, an_answer_kept_for_its_routing_reaches_the_reporter_in_full);
        tcase_add_test(tc,
                       feedback_lost_between_status_and_feedback_is_written_once_after_a_restart);
        tcase_add_test(tc, a_feedback_that_landed_without_its_status_is_not_written_again);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
