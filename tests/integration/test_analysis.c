/*
 * The analysis forwarder against the in-process mock cluster and a local
 * HTTP sink (tests/support/webhook_receiver.h). The tests produce the
 * tracker's DeviationStatus records themselves.
 *
 * "mock cluster and sink": a report and its state changes become the
 * expected AnalysisRecords; a status that arrives before its report waits for
 * it; duplicates and a replay keep their record ids; a sink answering 500
 * twice gets every record, each under one batch id, signed; a hanging sink is
 * timed out and retried; a sink past its budget dead-letters the records; an
 * undecodable input is dead-lettered and its partition goes on.
 *
 * "privacy property": many deviations with random valid personnummer and
 * samordningsnummer (and phone numbers and e-mail addresses) in every free-text
 * field and in every string of the statuses; no identity, in any spelling,
 * reaches a byte of the analysis topic, the sink's bodies or the metrics, and
 * the pseudonym is stable per patient and differs between patients.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/contract/codec.h"
#include "common/contract/ident.h"
#include "common/util/luhn.h"
#include "common/kafka/kafka.h"
#include "common/util/secret.h"
#include "consumer/analyse/analysis.h"
#include "common/http/webhook.h"
#include "tests/support/check_text.h"
#include "tests/support/codec_fixture.h"
#include "tests/support/fake_registry.h"
#include "tests/support/json_find.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/service_fixture.h"
#include "tests/support/service_thread.h"
#include "tests/support/test_data.h"
#include "tests/support/wait_for.h"
#include "tests/support/webhook_receiver.h"

#define DEVIATION_ID "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10"
#define OTHER_ID     "6a0e7c52-1b3d-4f8a-9c2e-5d7f1a3b9e04"
#define PERSONAL_ID  "194003141233"
#define KEY          "analysis-test-key-0123456789abcdef-not-for-production"
#define SECRET_FILE  AVK_TEST_DATA "/directory/secrets/test-webhook.secret"
/* docs/analysis.md: the namespace of AnalysisRecord.record_id. */
#define RECORD_NAMESPACE "c5a1f0d2-6e4b-5a93-8d27-1b9e3f4c7a60"

static struct service_fixture fx;
static rd_kafka_t *producer;

static void set(const char *key, const char *value)
{
        mock_kafka_set(&fx.mk, key, value);
}

/* Writes KEY to name in the work directory with mode; the path into path. */
static void write_key(const char *name, mode_t mode, char *path, size_t size)
{
        snprintf(path, size, "%s/%s", fx.workdir, name);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(KEY "\n", f);
        fclose(f);
        ck_assert_int_eq(chmod(path, mode), 0);
}

static void setup(void)
{
        char err[512], path[128];
        service_fixture_start(&fx, "avk-analysis");
        set("analysis.deviation.wait.ms", "500");
        set("analysis.sink.retry.backoff.ms", "50");
        set("analysis.sink.retry.backoff.max.ms", "200");
        set("analysis.sink.timeout.ms", "3000");
        set("analysis.sink.connect.timeout.ms", "2000");
        set("analysis.sink.linger.ms", "50");
        set("analysis.sink.allow.http", "1");
        write_key("pseudonym.key", 0600, path, sizeof(path));
        set("analysis.pseudonym.key.file", path);
        rd_kafka_conf_t *conf = avk_kafka_conf(fx.mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        producer = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(producer != NULL, "%s", err);
}

static void teardown(void)
{
        rd_kafka_destroy(producer);
        service_fixture_stop(&fx);
}

/* ---- inputs ------------------------------------------------------------- */

static void produce_raw(const char *topic, const char *key, const void *payload, size_t len)
{
        mock_kafka_produce(producer, topic, key, payload, len);
}

static void produce_json(const char *topic, const char *schema, const char *key, json_t *doc)
{
        struct codec_message m =
            codec_fixture_encode(fx.codec, topic, avk_catalog_by_name(fx.catalog, schema), doc);
        produce_raw(topic, key, m.bytes, m.len);
        free(m.bytes);
}

/* The sample deviation under id, with the patient and description given. */
static json_t *deviation(const char *id, const char *personal_id, const char *description)
{
        char err[512];
        json_t *doc = test_data_load_json(AVK_SOURCE_DIR
                                          "/deploy/samples/01-discharge-information-missing.json",
                                          err, sizeof(err));
        ck_assert_msg(doc != NULL, "%s", err);
        json_object_set_new(doc, "deviation_id", json_string(id));
        json_object_set_new(json_object_get(doc, "patient"), "personal_id",
                            json_string(personal_id));
        if (description)
                json_object_set_new(doc, "description", json_string(description));
        return doc;
}

static void file_deviation(const char *id, const char *personal_id, const char *description)
{
        json_t *doc = deviation(id, personal_id, description);
        produce_json("deviation.reported", "DeviationReported", id, doc);
        json_decref(doc);
}

/* A DeviationStatus as the tracker writes it; answered_ms < 0: not answered. */
static json_t *status(const char *id, int version, const char *state, int64_t answered_ms)
{
        char state_id[AVK_IDENT_UUID_SIZE], name[64];
        int n = snprintf(name, sizeof(name), "%s/%d", id, version);
        avk_ident_uuid5(RECORD_NAMESPACE, name, (size_t)n, state_id);
        json_t *doc = json_pack(
            "{s:s,s:s,s:i,s:s,s:s,s:s,s:i,s:s,s:s,s:n,s:s,s:s,s:b,s:s,s:s,s:s,s:s,s:b}", "state_id",
            state_id, "deviation_id", id, "version", version, "state", state, "changed_at",
            "2026-11-20T13:05:00.000Z", "cause", "routed-event", "hop", 0, "reporter_party", "1480",
            "receiver_party", "VGR", "receiver_unit_hsa_id", "category", "DISCHARGE_PLANNING",
            "harm_level", "LOW", "possible_lex_maria", 1, "deadline_rule", "R-DEFAULT", "routed_at",
            "2026-11-20T13:05:00.000Z", "acknowledge_deadline_at", "2026-11-22T13:05:00.000Z",
            "answer_deadline_at", "2027-01-19T13:05:00.000Z", "overdue", 0);
        ck_assert_ptr_nonnull(doc);
        if (answered_ms >= 0) {
                json_object_set_new(doc, "changed_at", json_string("2026-11-25T10:00:00.000Z"));
                json_object_set_new(doc, "answered_at", json_string("2026-11-25T10:00:00.000Z"));
                json_object_set_new(doc, "time_to_answer_ms", json_integer(answered_ms));
                json_object_set_new(doc, "time_to_acknowledge_ms", json_integer(3600000));
                json_object_set_new(doc, "deadline_kept", json_true());
                json_object_set_new(doc, "escalation_step", json_string("MANAGER"));
        }
        return doc;
}

static void file_status(const char *id, int version, const char *state, int64_t answered_ms)
{
        json_t *doc = status(id, version, state, answered_ms);
        produce_json("deviation.status", "DeviationStatus", id, doc);
        json_decref(doc);
}

/* A DeviationRouted of hop as the router writes it: to VGR, decided and based as given. */
static void file_routed(const char *id, int hop, const char *decision, const char *basis)
{
        char event_id[AVK_IDENT_UUID_SIZE], name[64];
        int n = snprintf(name, sizeof(name), "%s/routed/%d", id, hop);
        avk_ident_uuid5(RECORD_NAMESPACE, name, (size_t)n, event_id);
        json_t *doc = json_pack(
            "{s:s,s:s,s:s,s:i,s:s,s:s,s:n,s:s,s:s,s:s,s:s,s:s,s:b,s:s}", "event_id", event_id,
            "deviation_id", id, "routed_at", "2026-11-20T13:05:00.000Z", "hop", hop,
            "reporter_party", "1480", "receiver_party", "VGR", "receiver_unit_hsa_id", "decision",
            decision, "rule_id", "R-TEST", "reason", "Enligt avtalet.", "category",
            "DISCHARGE_PLANNING", "harm_level", "LOW", "possible_lex_maria", 1, "basis", basis);
        ck_assert_ptr_nonnull(doc);
        produce_json("deviation.routed", "DeviationRouted", id, doc);
        json_decref(doc);
}

/* ---- the forwarder in a thread ------------------------------------------ */

struct running {
        avk_analysis_t *analysis;
        avk_metrics_t *metrics;
        struct service_thread thread;
};

static int run_analysis(void *service, char *errstr, size_t errstr_size)
{
        return avk_analysis_run(service, errstr, errstr_size);
}

static void stop_analysis(void *service)
{
        avk_analysis_stop(service);
}

static void start(struct running *r)
{
        char err[512];
        r->metrics = avk_metrics_new();
        r->analysis = avk_analysis_new(fx.mk.cfg, r->metrics, err, sizeof(err));
        ck_assert_msg(r->analysis != NULL, "%s", err);
        service_thread_start(&r->thread, r->analysis, run_analysis, stop_analysis);
}

static void stop(struct running *r)
{
        service_thread_stop(&r->thread);
        avk_analysis_destroy(r->analysis);
        avk_metrics_destroy(r->metrics);
}

static struct avk_analysis_stats stats(struct running *r)
{
        struct avk_analysis_stats s;
        avk_analysis_stats(r->analysis, &s);
        return s;
}

/* Waits up to 60 s for expr to reach want (the first group join takes ~3 s). */
#define WAIT_FOR(expr, want) WAIT_FOR_MS(expr, want, 60000)

/* ---- what the topics got ------------------------------------------------ */

struct records {
        size_t n, cap;
        struct record {
                char *key, *payload, error[512], source_topic[64], record_id[64], batch_id[64];
                size_t key_len, len;
        } * r;
};

static void collect(void *opaque, const rd_kafka_message_t *m)
{
        struct records *rs = opaque;
        if (rs->n == rs->cap) {
                rs->cap = rs->cap ? rs->cap * 2 : 16;
                rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r));
                ck_assert_ptr_nonnull(rs->r);
        }
        struct record *r = &rs->r[rs->n++];
        memset(r, 0, sizeof(*r));
        mock_kafka_header(m, "avk-error", r->error, sizeof(r->error));
        mock_kafka_header(m, "avk-source-topic", r->source_topic, sizeof(r->source_topic));
        mock_kafka_header(m, "avk-record-id", r->record_id, sizeof(r->record_id));
        mock_kafka_header(m, "avk-batch-id", r->batch_id, sizeof(r->batch_id));
        r->payload = malloc(m->len + 1);
        r->key = malloc(m->key_len + 1);
        ck_assert(r->payload && r->key);
        memcpy(r->payload, m->payload, m->len);
        r->len = m->len;
        if (m->key_len)
                memcpy(r->key, m->key, m->key_len);
        r->key_len = m->key_len;
}

static void records_free(struct records *rs)
{
        for (size_t i = 0; i < rs->n; i++) {
                free(rs->r[i].payload);
                free(rs->r[i].key);
        }
        free(rs->r);
        memset(rs, 0, sizeof(*rs));
}

static struct records read_topic(const char *topic)
{
        struct records rs = {0};
        mock_kafka_read_all(&fx.mk, topic, collect, &rs);
        return rs;
}

/* The AnalysisRecords on topic.analysis, as JSON, in the order read. */
static json_t *analysis_records(void)
{
        struct records rs = read_topic("deviation.analysis");
        json_t *all = json_array();
        for (size_t i = 0; i < rs.n; i++)
                json_array_append_new(all, codec_fixture_decode_json(
                                               fx.codec, rs.r[i].payload, rs.r[i].len,
                                               avk_catalog_by_name(fx.catalog, "AnalysisRecord")));
        records_free(&rs);
        return all;
}

static const json_t *find_state(const json_t *all, const char *state)
{
        return json_find(all, "state", state);
}

static const char *field(const json_t *r, const char *name)
{
        return json_string_value(json_object_get(r, name));
}

static void expected_record_id(const char *id, const char *state, int version,
                               char out[AVK_IDENT_UUID_SIZE])
{
        char name[96];
        int n = snprintf(name, sizeof(name), "%s/%s/%d", id, state, version);
        ck_assert_int_eq(avk_ident_uuid5(RECORD_NAMESPACE, name, (size_t)n, out), 0);
}

/* ---- the tests ---------------------------------------------------------- */

START_TEST(report_and_state_changes_become_analysis_records)
{
        file_deviation(DEVIATION_ID, PERSONAL_ID,
                       "Patienten 400314-1233 skrevs ut utan läkemedelslista; anhörig nås på "
                       "070-123 45 67 eller anna.andersson@example.se.");
        file_routed(DEVIATION_ID, 0, "AGREEMENT_RULE", "TEXT");
        file_status(DEVIATION_ID, 1, "ROUTED", -1);
        file_status(DEVIATION_ID, 2, "ANSWERED", 432000000);
        struct running run;
        start(&run);
        WAIT_FOR(stats(&run).forwarded, 3);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text, "avk_analysis_records_total{state=\"REPORTED\"} 1");
        ck_assert_contains(text, "avk_analysis_records_total{state=\"ANSWERED\"} 1");
        ck_assert_contains(text, "avk_analysis_scrubbed_total{kind=\"personnummer\"} 1");
        ck_assert_contains(text, "avk_analysis_scrubbed_total{kind=\"telefon\"} 1");
        ck_assert_contains(text, "avk_analysis_scrubbed_total{kind=\"e-post\"} 1");
        free(text);
        stop(&run);

        json_t *all = analysis_records();
        ck_assert_uint_eq(json_array_size(all), 3);
        char id[AVK_IDENT_UUID_SIZE], pseudonym[AVK_SECRET_HEX_SIZE];
        ck_assert_int_eq(avk_secret_hmac_hex((const unsigned char *)KEY, strlen(KEY), PERSONAL_ID,
                                             12, pseudonym),
                         0);

        const json_t *rep = find_state(all, "REPORTED");
        expected_record_id(DEVIATION_ID, "REPORTED", 0, id);
        ck_assert_str_eq(field(rep, "record_id"), id);
        ck_assert_str_eq(field(rep, "deviation_id"), DEVIATION_ID);
        ck_assert_str_eq(field(rep, "state_at"), "2026-11-17T07:55:00.000Z");
        ck_assert_str_eq(field(rep, "patient_pseudonym"), pseudonym);
        ck_assert_str_eq(field(rep, "age_group"), "AGE_80_PLUS");
        ck_assert_str_eq(field(rep, "sex"), "MALE");
        ck_assert_str_eq(field(rep, "municipality_code"), "1480");
        ck_assert_str_eq(field(rep, "subregion"), "GOTEBORGSREGIONEN");
        ck_assert_str_eq(field(rep, "category"), "DISCHARGE_PLANNING");
        ck_assert_str_eq(field(rep, "event_class"), "INCIDENT_WITHOUT_HARM");
        ck_assert_str_eq(field(rep, "harm_level"), "NONE");
        ck_assert_str_eq(field(rep, "reporter_party"), "1480");
        ck_assert(json_is_null(json_object_get(rep, "receiver_party")));
        ck_assert(json_is_null(json_object_get(rep, "time_to_answer_ms")));
        ck_assert(
            json_is_false(json_object_get(json_object_get(rep, "flags"), "possible_lex_maria")));
        ck_assert_str_eq(field(rep, "description_scrubbed"),
                         "Patienten [personnummer] skrevs ut utan läkemedelslista; anhörig nås på "
                         "[telefon] eller [e-post].");
        ck_assert_int_eq(json_integer_value(json_object_get(rep, "version")), 0);
        ck_assert_str_eq(field(rep, "agreement"), "DISCHARGE_PAYMENT");
        ck_assert(json_is_false(json_object_get(rep, "agreement_derived")));
        ck_assert_str_eq(field(rep, "care_setting"), "INPATIENT");
        ck_assert_str_eq(field(rep, "competence"), "PHYSICIAN");
        ck_assert(json_is_null(json_object_get(rep, "hop")));
        ck_assert(json_is_null(json_object_get(rep, "routing_decision")));
        ck_assert(json_is_null(json_object_get(rep, "routing_basis")));

        const json_t *answered = find_state(all, "ANSWERED");
        expected_record_id(DEVIATION_ID, "ANSWERED", 2, id);
        ck_assert_str_eq(field(answered, "record_id"), id);
        ck_assert_str_eq(field(answered, "state_at"), "2026-11-25T10:00:00.000Z");
        ck_assert_str_eq(field(answered, "patient_pseudonym"), pseudonym);
        ck_assert_str_eq(field(answered, "receiver_party"), "VGR");
        ck_assert_str_eq(field(answered, "harm_level"), "LOW"); /* the routing's */
        ck_assert_int_eq(json_integer_value(json_object_get(answered, "time_to_answer_ms")),
                         432000000);
        ck_assert_int_eq(json_integer_value(json_object_get(answered, "time_to_acknowledge_ms")),
                         3600000);
        ck_assert(json_is_true(json_object_get(answered, "deadline_kept")));
        ck_assert_str_eq(field(answered, "answer_deadline_at"), "2027-01-19T13:05:00.000Z");
        ck_assert_str_eq(field(answered, "highest_escalation_step"), "MANAGER");
        ck_assert(json_is_true(
            json_object_get(json_object_get(answered, "flags"), "possible_lex_maria")));
        ck_assert_str_eq(field(answered, "description_scrubbed"),
                         field(rep, "description_scrubbed"));
        ck_assert_int_eq(json_integer_value(json_object_get(answered, "version")), 2);
        ck_assert_str_eq(field(answered, "agreement"), "DISCHARGE_PAYMENT");
        ck_assert_str_eq(field(answered, "care_setting"), "INPATIENT");
        ck_assert_str_eq(field(answered, "competence"), "PHYSICIAN");
        ck_assert_int_eq(json_integer_value(json_object_get(answered, "hop")), 0);
        ck_assert_str_eq(field(answered, "routing_decision"), "AGREEMENT_RULE");
        ck_assert_str_eq(field(answered, "routing_basis"), "TEXT");
        ck_assert_str_eq(field(find_state(all, "ROUTED"), "routing_decision"), "AGREEMENT_RULE");
        ck_assert_str_eq(field(find_state(all, "ROUTED"), "state_at"), "2026-11-20T13:05:00.000Z");

        /* Nothing of the report's other free text or identity. */
        char *dump = json_dumps(all, JSON_COMPACT);
        ck_assert_ptr_null(strstr(dump, PERSONAL_ID));
        ck_assert_ptr_null(strstr(dump, "personal_id"));
        ck_assert_ptr_null(strstr(dump, "jourläkare"));           /* immediate_actions */
        ck_assert_ptr_null(strstr(dump, "Treserva"));             /* source_system */
        ck_assert_ptr_null(strstr(dump, "SE2120001215-HSK0042")); /* the reporting unit */
        free(dump);
        json_decref(all);
}
END_TEST

/* A sub-agreement the reporter left UNKNOWN is the category's (agreement_derived);
 * a status whose DeviationRouted comes after it waits for its decision. */
START_TEST(derived_agreement_and_a_late_routing)
{
        set("analysis.deviation.wait.ms", "30000");
        json_t *doc = deviation(DEVIATION_ID, PERSONAL_ID, NULL);
        json_object_set_new(doc, "agreement", json_string("UNKNOWN"));
        produce_json("deviation.reported", "DeviationReported", DEVIATION_ID, doc);
        json_decref(doc);
        file_status(DEVIATION_ID, 1, "ROUTED", -1);
        struct running run;
        start(&run);
        WAIT_FOR(stats(&run).forwarded, 1);
        usleep(500000);
        ck_assert_uint_eq(stats(&run).forwarded, 1);
        file_routed(DEVIATION_ID, 0, "TRIAGE", "LOCAL_POLICY");
        WAIT_FOR(stats(&run).forwarded, 2);
        stop(&run);
        json_t *all = analysis_records();
        ck_assert_uint_eq(json_array_size(all), 2);
        const json_t *routed = find_state(all, "ROUTED");
        ck_assert_str_eq(field(routed, "agreement"), "DISCHARGE_PAYMENT");
        ck_assert(json_is_true(json_object_get(routed, "agreement_derived")));
        ck_assert_str_eq(field(routed, "routing_decision"), "TRIAGE");
        ck_assert_str_eq(field(routed, "routing_basis"), "LOCAL_POLICY");
        json_decref(all);
}
END_TEST

START_TEST(status_before_its_report_waits_for_it)
{
        set("analysis.deviation.wait.ms", "30000");
        struct running run;
        start(&run);
        file_status(DEVIATION_ID, 1, "ROUTED", -1);
        file_routed(DEVIATION_ID, 0, "AGREEMENT_RULE", "TEXT");
        usleep(500000);
        ck_assert_uint_eq(stats(&run).forwarded, 0);
        file_deviation(DEVIATION_ID, PERSONAL_ID, NULL);
        WAIT_FOR(stats(&run).forwarded, 2);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        stop(&run);
        json_t *all = analysis_records();
        ck_assert_uint_eq(json_array_size(all), 2);
        ck_assert_str_eq(field(find_state(all, "ROUTED"), "municipality_code"), "1480");
        json_decref(all);
}
END_TEST

/* The router keeps the first body filed under an id and dead-letters another (docs/router.md,
 * "One body per deviation"): the analysis stream shows that first body, once. */
START_TEST(a_deviation_filed_again_is_forwarded_once_with_its_first_body)
{
        file_deviation(DEVIATION_ID, PERSONAL_ID, "The first filing of this deviation.");
        file_deviation(DEVIATION_ID, PERSONAL_ID, "Another body under the same id.");
        file_status(DEVIATION_ID, 1, "ROUTED", -1);
        struct running run;
        start(&run);
        WAIT_FOR(stats(&run).forwarded, 2);
        usleep(1000000); /* time for a record that should not come */
        stop(&run);

        json_t *all = analysis_records();
        ck_assert_uint_eq(json_array_size(all), 2);
        size_t i;
        const json_t *r;
        json_array_foreach(all, i, r)
        {
                if (strcmp(field(r, "state"), "REPORTED") == 0)
                        ck_assert_str_eq(
                            json_string_value(json_object_get(r, "description_scrubbed")),
                            "The first filing of this deviation.");
        }
        json_decref(all);
}
END_TEST

START_TEST(duplicates_and_a_replay_keep_their_record_ids)
{
        file_deviation(DEVIATION_ID, PERSONAL_ID, NULL);
        file_status(DEVIATION_ID, 1, "ROUTED", -1);
        file_status(DEVIATION_ID, 1, "ROUTED", -1); /* the tracker wrote it again */
        struct running run;
        start(&run);
        WAIT_FOR(stats(&run).forwarded, 3);
        stop(&run);
        set("analysis.group.id", "avvik-analysis-replay");
        start(&run);
        WAIT_FOR(stats(&run).forwarded, 3);
        stop(&run);

        json_t *all = analysis_records();
        ck_assert_uint_eq(json_array_size(all), 6);
        char reported[AVK_IDENT_UUID_SIZE], routed[AVK_IDENT_UUID_SIZE];
        expected_record_id(DEVIATION_ID, "REPORTED", 0, reported);
        expected_record_id(DEVIATION_ID, "ROUTED", 1, routed);
        size_t i;
        const json_t *r;
        int seen_reported = 0;
        json_array_foreach(all, i, r)
        {
                const char *id = field(r, "record_id");
                int is_reported = strcmp(field(r, "state"), "REPORTED") == 0;
                ck_assert_str_eq(id, is_reported ? reported : routed);
                seen_reported += is_reported;
        }
        ck_assert_int_eq(seen_reported, 2);
        json_decref(all);
}
END_TEST

/* Every sink request: the batch id names one body, the body's records are one
 * record per line, and no record appears under two batch ids. Returns the
 * distinct record ids delivered. */
static json_t *check_sink(struct webhook_receiver *sink)
{
        char err[512];
        char *secret = test_data_read(SECRET_FILE, err, sizeof(err));
        ck_assert_msg(secret != NULL, "%s", err);
        size_t secret_len = strcspn(secret, "\n");
        json_t *batch_of = json_object(), *body_of = json_object();
        for (int i = 0; i < webhook_receiver_count(sink); i++) {
                struct webhook_request req = webhook_receiver_request(sink, i);
                ck_assert_str_eq(req.content_type, "application/x-ndjson");
                ck_assert_uint_eq(strlen(req.batch_id), 36);
                ck_assert_str_eq(req.event_type, "AnalysisRecord");
                ck_assert_msg(avk_webhook_verify((unsigned char *)secret, secret_len, req.signature,
                                                 req.event_type, req.body, req.body_len, time(NULL),
                                                 AVK_WEBHOOK_TOLERANCE_S, err, sizeof(err)) == 0,
                              "%s", err);
                const char *known = json_string_value(json_object_get(body_of, req.batch_id));
                if (known)
                        ck_assert_str_eq(req.body, known); /* a retry: byte for byte */
                json_object_set_new(body_of, req.batch_id, json_string(req.body));
                for (char *line = req.body, *end; *line; line = end + 1) {
                        end = strchr(line, '\n');
                        ck_assert_ptr_nonnull(end);
                        json_error_t jerr;
                        json_t *rec = json_loadb(line, (size_t)(end - line), 0, &jerr);
                        ck_assert_msg(rec != NULL, "%s", jerr.text);
                        const char *id = field(rec, "record_id");
                        const char *was = json_string_value(json_object_get(batch_of, id));
                        if (was)
                                ck_assert_str_eq(was, req.batch_id);
                        json_object_set_new(batch_of, id, json_string(req.batch_id));
                        json_decref(rec);
                }
                webhook_request_free(&req);
        }
        free(secret);
        json_decref(body_of);
        return batch_of;
}

START_TEST(sink_answering_500_twice_gets_every_record_under_one_batch_id)
{
        struct webhook_receiver *sink = webhook_receiver_start(NULL, NULL);
        webhook_receiver_script(sink, (const int[]){500, 500, 200}, 3);
        set("analysis.sink.url", webhook_receiver_url(sink));
        set("analysis.sink.secret.file", SECRET_FILE);
        set("analysis.sink.batch.max", "2");
        set("analysis.sink.max.in.flight", "1");
        set("analysis.sink.linger.ms", "1000"); /* batches of 2, then the last one */
        file_deviation(DEVIATION_ID, PERSONAL_ID, NULL);
        file_status(DEVIATION_ID, 1, "ROUTED", -1);
        file_status(DEVIATION_ID, 2, "ANSWERED", 432000000);
        struct running run;
        start(&run);
        WAIT_FOR(stats(&run).forwarded, 3);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        ck_assert_uint_eq(stats(&run).sink_attempts, 4);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text, "avk_analysis_sink_attempts_total{result=\"5xx\"} 2");
        ck_assert_contains(text, "avk_analysis_sink_retries_total 2");
        ck_assert_contains(text, "avk_analysis_sink_batches_total{outcome=\"delivered\"} 2");
        free(text);
        stop(&run);
        json_t *delivered = check_sink(sink);
        ck_assert_uint_eq(json_object_size(delivered), 3);
        json_decref(delivered);

        /* Offsets were stored after the sink took the batches: a restart in
         * the same group sends nothing again. */
        int before = webhook_receiver_count(sink);
        file_status(OTHER_ID, 1, "ROUTED", -1);
        file_deviation(OTHER_ID, "198507092487", NULL);
        start(&run);
        WAIT_FOR(stats(&run).forwarded, 2);
        stop(&run);
        delivered = check_sink(sink);
        ck_assert_uint_eq(json_object_size(delivered), 5);
        ck_assert_int_le(webhook_receiver_count(sink), before + 2);
        json_decref(delivered);
        webhook_receiver_stop(sink);
}
END_TEST

START_TEST(hanging_sink_is_timed_out_and_retried)
{
        struct webhook_receiver *sink = webhook_receiver_start(NULL, NULL);
        webhook_receiver_hang(sink, 1, 5000);
        set("analysis.sink.url", webhook_receiver_url(sink));
        set("analysis.sink.secret.file", SECRET_FILE);
        set("analysis.sink.timeout.ms", "500");
        file_deviation(DEVIATION_ID, PERSONAL_ID, NULL);
        struct running run;
        start(&run);
        WAIT_FOR(stats(&run).forwarded, 1);
        ck_assert_int_eq(webhook_receiver_count(sink), 2);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text, "avk_analysis_sink_attempts_total{result=\"timeout\"} 1");
        free(text);
        stop(&run);
        json_t *delivered = check_sink(sink);
        ck_assert_uint_eq(json_object_size(delivered), 1);
        json_decref(delivered);
        webhook_receiver_stop(sink);
}
END_TEST

START_TEST(sink_past_its_budget_dead_letters_the_records)
{
        struct webhook_receiver *sink = webhook_receiver_start(NULL, NULL);
        webhook_receiver_script(sink, (const int[]){503}, 1);
        set("analysis.sink.url", webhook_receiver_url(sink));
        set("analysis.sink.retry.max", "2");
        file_deviation(DEVIATION_ID, PERSONAL_ID, NULL);
        struct running run;
        start(&run);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        ck_assert_uint_eq(stats(&run).forwarded, 0);
        ck_assert_int_eq(webhook_receiver_count(sink), 2);
        stop(&run);
        struct records dl = read_topic("deviation.deadletter");
        ck_assert_uint_eq(dl.n, 1);
        ck_assert_str_eq(dl.r[0].error, "sink: HTTP 503 (attempt 2 of 2)");
        ck_assert_str_eq(dl.r[0].source_topic, "deviation.reported");
        char id[AVK_IDENT_UUID_SIZE];
        expected_record_id(DEVIATION_ID, "REPORTED", 0, id);
        ck_assert_str_eq(dl.r[0].record_id, id);
        ck_assert_uint_eq(strlen(dl.r[0].batch_id), 36);
        /* The record itself, for an operator to send again. */
        json_t *rec = codec_fixture_decode_json(fx.codec, dl.r[0].payload, dl.r[0].len,
                                                avk_catalog_by_name(fx.catalog, "AnalysisRecord"));
        ck_assert_str_eq(field(rec, "record_id"), id);
        json_decref(rec);
        records_free(&dl);
        webhook_receiver_stop(sink);
}
END_TEST

START_TEST(undecodable_input_is_dead_lettered_and_the_partition_goes_on)
{
        file_deviation(DEVIATION_ID, PERSONAL_ID, NULL);
        produce_raw("deviation.status", DEVIATION_ID, "not avro", 8);
        file_status(DEVIATION_ID, 1, "ROUTED", -1); /* same key: same partition, after */
        struct running run;
        start(&run);
        WAIT_FOR(stats(&run).forwarded, 2);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text, "avk_analysis_dead_letters_total{topic=\"deviation.status\","
                                 "reason=\"undecodable\"} 1");
        free(text);
        stop(&run);
        struct records dl = read_topic("deviation.deadletter");
        ck_assert_uint_eq(dl.n, 1);
        ck_assert_contains(dl.r[0].error, "undecodable: ");
        ck_assert_str_eq(dl.r[0].source_topic, "deviation.status");
        ck_assert_uint_eq(dl.r[0].len, 8);
        records_free(&dl);
}
END_TEST

/* A Schema Registry outage is no bad record (issue 18.1): the forwarder can
 * neither read the Confluent-framed inputs nor register its output schema;
 * it is not ready, dead-letters nothing and forwards every record once the
 * registry answers. */
START_TEST(registry_outage_waits_and_dead_letters_nothing)
{
        char why[256];
        struct fake_registry *fake = fake_registry_start_or_fail();
        set("schema.registry.url", fake_registry_url(fake));
        avk_registry_t *registry = codec_fixture_registry(fake_registry_url(fake));
        avk_codec_t *local = fx.codec;
        fx.codec = codec_fixture_codec(fx.catalog, registry);
        file_deviation(DEVIATION_ID, PERSONAL_ID, NULL);
        file_routed(DEVIATION_ID, 0, "AGREEMENT_RULE", "TEXT");
        file_status(DEVIATION_ID, 1, "ROUTED", -1);
        fake_registry_set_mode(fake, FAKE_REGISTRY_FAIL_500);
        struct running run;
        start(&run);
        int asked = fake_registry_seen(fake).requests;
        for (int i = 0; i < 1200 && fake_registry_seen(fake).requests < asked + 3; i++)
                usleep(50000);
        ck_assert_int_ge(fake_registry_seen(fake).requests, asked + 3);
        ck_assert_int_eq(avk_analysis_ready(run.analysis, why, sizeof(why)), 0);
        ck_assert_uint_eq(stats(&run).forwarded, 0);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        fake_registry_set_mode(fake, FAKE_REGISTRY_NORMAL);
        WAIT_FOR(stats(&run).forwarded, 2);
        WAIT_FOR(avk_analysis_ready(run.analysis, why, sizeof(why)), 1);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        stop(&run);

        struct records dl = read_topic("deviation.deadletter");
        ck_assert_msg(dl.n == 0, "dead-lettered: %s", dl.n ? dl.r[0].error : "");
        records_free(&dl);
        json_t *all = analysis_records();
        ck_assert_uint_eq(json_array_size(all), 2);
        ck_assert_str_ne(field(json_array_get(all, 0), "record_id"),
                         field(json_array_get(all, 1), "record_id"));
        ck_assert_str_eq(field(find_state(all, "ROUTED"), "routing_decision"), "AGREEMENT_RULE");
        json_decref(all);
        avk_codec_destroy(fx.codec);
        fx.codec = local;
        avk_registry_destroy(registry);
        fake_registry_stop(fake);
}
END_TEST

/* /readyz means "assigned and keeping up" (issue 18.10): not while the
 * forwarder runs without partitions - the group's first join takes about 3 s
 * on the mock cluster - nor after it gave them up. */
START_TEST(ready_only_while_partitions_are_assigned)
{
        char why[256] = "";
        struct running run;
        start(&run);
        usleep(500000);
        ck_assert_int_eq(avk_analysis_ready(run.analysis, why, sizeof(why)), 0);
        ck_assert_str_eq(why, "no partition of deviation.reported assigned");
        WAIT_FOR(avk_analysis_ready(run.analysis, why, sizeof(why)), 1);
        service_thread_stop(&run.thread);
        ck_assert_int_eq(avk_analysis_ready(run.analysis, why, sizeof(why)), 0);
        avk_analysis_destroy(run.analysis);
        avk_metrics_destroy(run.metrics);
}
END_TEST

START_TEST(status_of_a_deviation_never_filed_is_dead_lettered_as_missing)
{
        file_status(OTHER_ID, 1, "ROUTED", -1);
        struct running run;
        start(&run);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        ck_assert_uint_eq(stats(&run).forwarded, 0);
        stop(&run);
        struct records dl = read_topic("deviation.deadletter");
        ck_assert_uint_eq(dl.n, 1);
        ck_assert_str_eq(dl.r[0].error, "deviation not found in deviation.reported");
        records_free(&dl);
}
END_TEST

/* ---- the privacy property ----------------------------------------------- */

#define PATIENTS   40
#define DEVIATIONS 60

struct patient {
        char twelve[48];   /* YYYYMMDDNNNC */
        char forms[8][64]; /* every spelling */
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned rnd(unsigned n)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (unsigned)(rng % n);
}

/* A random valid personnummer or (one in three) samordningsnummer. */
static void make_patient(struct patient *p)
{
        unsigned year = 1930 + rnd(95), month = 1 + rnd(12), day = 1 + rnd(28);
        unsigned coordination = rnd(3) == 0;
        char nine[32];
        snprintf(nine, sizeof(nine), "%02u%02u%02u%03u", year % 100, month,
                 day + (coordination ? 60 : 0), rnd(1000));
        int check = avk_luhn(nine, 9);
        snprintf(p->twelve, sizeof(p->twelve), "%02u%.9s%d", year / 100, nine, check);
        const char *t = p->twelve, *ten = p->twelve + 2;
        snprintf(p->forms[0], 64, "%.12s", t);
        snprintf(p->forms[1], 64, "%.10s", ten);
        snprintf(p->forms[2], 64, "%.6s-%.4s", ten, ten + 6);
        snprintf(p->forms[3], 64, "%.8s-%.4s", t, t + 8);
        snprintf(p->forms[4], 64, "%.6s %.4s", ten, ten + 6);
        snprintf(p->forms[5], 64, "%.8s %.4s", t, t + 8);
        snprintf(p->forms[6], 64, "%.6s+%.4s", ten, ten + 6);
        snprintf(p->forms[7], 64, "%.2s %.2s %.2s-%.4s", ten, ten + 2, ten + 4, ten + 6);
}

/* Free text naming patients a and b in random spellings, a phone number and an e-mail. */
static void free_text(char *buf, size_t size, const struct patient *a, const struct patient *b,
                      const char *phone, const char *email)
{
        snprintf(buf, size, "Pat %s (även %s), anhörig %s, %s. Ring %s om %s.", a->forms[rnd(8)],
                 b->forms[rnd(8)], phone, email, phone, a->forms[rnd(8)]);
}

static int holds(const char *hay, size_t len, const char *needle)
{
        size_t n = strlen(needle);
        for (size_t i = 0; n && i + n <= len; i++)
                if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0)
                        return 1;
        return 0;
}

static void assert_clean(const char *what, const char *bytes, size_t len,
                         const struct patient *patients, char (*phones)[32], char (*emails)[64])
{
        for (int p = 0; p < PATIENTS; p++)
                for (int f = 0; f < 8; f++)
                        ck_assert_msg(!holds(bytes, len, patients[p].forms[f]),
                                      "%s holds patient %d in spelling %d", what, p, f);
        for (int d = 0; d < DEVIATIONS; d++) {
                char digits[32];
                size_t n = 0;
                for (const char *c = phones[d]; *c; c++)
                        if (*c >= '0' && *c <= '9')
                                digits[n++] = *c;
                digits[n] = '\0';
                ck_assert_msg(!holds(bytes, len, phones[d]) && !holds(bytes, len, digits),
                              "%s holds phone %d", what, d);
                ck_assert_msg(!holds(bytes, len, emails[d]), "%s holds e-mail %d", what, d);
        }
}

/* The sink's key is read like the pseudonym key: a file its group or others
 * may read is refused at start, the error naming the key and the file. */
START_TEST(sink_secret_file_others_may_read_is_refused)
{
        char err[512], path[128];
        write_key("sink.secret", 0644, path, sizeof(path));
        set("analysis.sink.url", "http://127.0.0.1:9/analysis");
        set("analysis.sink.secret.file", path);
        avk_metrics_t *metrics = avk_metrics_new();
        avk_analysis_t *a = avk_analysis_new(fx.mk.cfg, metrics, err, sizeof(err));
        ck_assert_ptr_null(a);
        char want[512];
        snprintf(want, sizeof(want),
                 "analysis.sink.secret.file: %s: group or others may access the key (mode "
                 "0644); it must be readable by its owner only (chmod 600)",
                 path);
        ck_assert_str_eq(err, want);
        ck_assert_int_eq(chmod(path, 0600), 0);
        a = avk_analysis_new(fx.mk.cfg, metrics, err, sizeof(err));
        ck_assert_msg(a != NULL, "%s", err);
        avk_analysis_destroy(a);
        avk_metrics_destroy(metrics);
}
END_TEST

START_TEST(no_identity_reaches_the_topic_the_sink_or_the_metrics)
{
        static struct patient patients[PATIENTS];
        static char phones[DEVIATIONS][32], emails[DEVIATIONS][64], ids[DEVIATIONS][40];
        for (int p = 0; p < PATIENTS; p++)
                make_patient(&patients[p]);
        struct webhook_receiver *sink = webhook_receiver_start(NULL, NULL);
        set("analysis.sink.url", webhook_receiver_url(sink));
        set("analysis.sink.secret.file", SECRET_FILE);
        set("analysis.sink.batch.max", "25");
        set("analysis.sink.linger.ms", "200");
        for (int d = 0; d < DEVIATIONS; d++) {
                const struct patient *a = &patients[d % PATIENTS], *b = &patients[rnd(PATIENTS)];
                if (rnd(2))
                        snprintf(phones[d], sizeof(phones[d]), "07%u-%03u %02u %02u", rnd(10),
                                 rnd(1000), rnd(100), rnd(100));
                else
                        snprintf(phones[d], sizeof(phones[d]), "+46 7%u %03u %02u %02u", rnd(10),
                                 rnd(1000), rnd(100), rnd(100));
                snprintf(emails[d], sizeof(emails[d]), "namn%d.efternamn@kommun%u.se", d,
                         rnd(1000));
                char name[16], text[512];
                snprintf(name, sizeof(name), "%d", d);
                avk_ident_uuid5(RECORD_NAMESPACE, name, strlen(name), ids[d]);
                /* A patient's second deviation spells the identity the short way. */
                char personal_id[64];
                if (d < PATIENTS)
                        snprintf(personal_id, sizeof(personal_id), "%s", a->twelve);
                else
                        snprintf(personal_id, sizeof(personal_id), "%.6s-%s", a->twelve + 2,
                                 a->twelve + 8);
                json_t *doc = deviation(ids[d], personal_id, NULL);
                static const char *const free_fields[] = {"description", "immediate_actions",
                                                          "routine", "source_system"};
                for (size_t f = 0; f < 4; f++) {
                        free_text(text, sizeof(text), a, b, phones[d], emails[d]);
                        json_object_set_new(doc, free_fields[f], json_string(text));
                }
                produce_json("deviation.reported", "DeviationReported", ids[d], doc);
                json_decref(doc);
                for (int v = 1; v <= 2; v++) {
                        json_t *st = status(ids[d], v, v == 1 ? "ROUTED" : "ANSWERED",
                                            v == 1 ? -1 : 86400000);
                        /* Every string of the status a writer could fill with text. */
                        json_object_set_new(st, "cause", json_string(a->forms[rnd(8)]));
                        json_object_set_new(st, "deadline_rule", json_string(phones[d]));
                        json_object_set_new(st, "receiver_unit_hsa_id", json_string(emails[d]));
                        produce_json("deviation.status", "DeviationStatus", ids[d], st);
                        json_decref(st);
                }
        }
        struct running run;
        start(&run);
        WAIT_FOR(stats(&run).forwarded, 3 * DEVIATIONS);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        char *metrics = avk_metrics_render(run.metrics);
        stop(&run);

        /* Every byte of the topic: keys and values. */
        struct records rs = read_topic("deviation.analysis");
        ck_assert_uint_eq(rs.n, 3 * DEVIATIONS);
        for (size_t i = 0; i < rs.n; i++) {
                assert_clean("topic value", rs.r[i].payload, rs.r[i].len, patients, phones, emails);
                assert_clean("topic key", rs.r[i].key, rs.r[i].key_len, patients, phones, emails);
        }
        records_free(&rs);
        /* Every sink body. */
        ck_assert_int_gt(webhook_receiver_count(sink), 0);
        for (int i = 0; i < webhook_receiver_count(sink); i++) {
                struct webhook_request req = webhook_receiver_request(sink, i);
                assert_clean("sink body", req.body, req.body_len, patients, phones, emails);
                webhook_request_free(&req);
        }
        json_t *delivered = check_sink(sink);
        ck_assert_uint_eq(json_object_size(delivered), 3 * DEVIATIONS);
        json_decref(delivered);
        /* The metrics text. */
        assert_clean("metrics", metrics, strlen(metrics), patients, phones, emails);
        free(metrics);

        /* One pseudonym per patient, in every record of every deviation of
         * theirs, whatever the spelling; never another patient's. */
        json_t *all = analysis_records(), *by_patient = json_object();
        size_t i;
        const json_t *r;
        json_array_foreach(all, i, r)
        {
                int d = -1;
                for (int k = 0; k < DEVIATIONS && d < 0; k++)
                        if (strcmp(field(r, "deviation_id"), ids[k]) == 0)
                                d = k;
                ck_assert_int_ge(d, 0);
                const char *pseudonym = field(r, "patient_pseudonym");
                ck_assert_uint_eq(strlen(pseudonym), 64);
                char who[8];
                snprintf(who, sizeof(who), "%d", d % PATIENTS);
                const char *known = field(by_patient, who);
                if (known)
                        ck_assert_str_eq(pseudonym, known);
                json_object_set_new(by_patient, who, json_string(pseudonym));
                ck_assert_ptr_nonnull(strstr(field(r, "description_scrubbed"), "[personnummer]"));
        }
        json_t *distinct = json_object();
        const char *key;
        json_t *value;
        json_object_foreach(by_patient, key, value)
        {
                ck_assert_ptr_null(json_object_get(distinct, json_string_value(value)));
                json_object_set_new(distinct, json_string_value(value), json_true());
        }
        ck_assert_uint_eq(json_object_size(by_patient), PATIENTS);
        json_decref(distinct);
        json_decref(by_patient);
        json_decref(all);
        webhook_receiver_stop(sink);
}
END_TEST

static Suite *analysis_suite(void)
{
        Suite *s = suite_create("analysis");
        TCase *tc = tcase_create("mock cluster and sink");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, report_and_state_changes_become_analysis_records);
        tcase_add_test(tc, status_before_its_report_waits_for_it);
        tcase_add_test(tc, derived_agreement_and_a_late_routing);
        tcase_add_test(tc, duplicates_and_a_replay_keep_their_record_ids);
        tcase_add_test(tc, a_deviation_filed_again_is_forwarded_once_with_its_first_body);
        tcase_add_test(tc, sink_answering_500_twice_gets_every_record_under_one_batch_id);
        tcase_add_test(tc, hanging_sink_is_timed_out_and_retried);
        tcase_add_test(tc, sink_past_its_budget_dead_letters_the_records);
        tcase_add_test(tc, undecodable_input_is_dead_lettered_and_the_partition_goes_on);
        tcase_add_test(tc, status_of_a_deviation_never_filed_is_dead_lettered_as_missing);
        tcase_add_test(tc, ready_only_while_partitions_are_assigned);
        tcase_add_test(tc, registry_outage_waits_and_dead_letters_nothing);
        tcase_add_test(tc, sink_secret_file_others_may_read_is_refused);
        suite_add_tcase(s, tc);
        TCase *privacy = tcase_create("privacy property");
        tcase_add_checked_fixture(privacy, setup, teardown);
        tcase_set_timeout(privacy, 180);
        tcase_add_test(privacy, no_identity_reaches_the_topic_the_sink_or_the_metrics);
        suite_add_tcase(s, privacy);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(analysis_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
