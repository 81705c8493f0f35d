/*
 * The notifier against the in-process mock cluster and local webhook
 * receivers (tests/support/webhook_receiver.h), plain and TLS with
 * certificates made at test time by the openssl command: what a receiving
 * unit gets (once, signed, with the event id; identity only when cleared),
 * retries after 500s and timeouts, a slow party that holds up no one else,
 * an untrusted certificate, the dead letter with its DeliveryFailed event
 * once the retry budget is spent, and replays with the same event id; the
 * tracker's escalations and reminders delivered to their party's webhook,
 * and dead-lettered without a DeliveryFailed event; its feedback delivered
 * to the reporting party's webhook with its free text scrubbed; the two inbox records
 * of a routed deviation for a receiver with an inbox topic, side by side
 * with its webhook, produced again while Kafka refuses them, and the
 * offset held until both channels are done; failed attempts parked on the
 * retry topic so that a dead or hanging endpoint holds up no other party,
 * a parked delivery that survives a restart unchanged, the budget counted
 * across parkings, and a malformed retry record that blocks nothing.
 *
 * The directory is tests/data/directory/notify.json with the receivers'
 * URLs put in at run time.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/contract/codec.h"
#include "common/contract/directory.h"
#include "common/kafka/kafka.h"
#include "common/http/metrics_http.h"
#include "consumer/notify/notify.h"
#include "common/http/webhook.h"
#include "producer/intake/reporter.h"
#include "tests/support/check_text.h"
#include "tests/support/codec_fixture.h"
#include "tests/support/fake_registry.h"
#include "tests/support/http_get.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/service_fixture.h"
#include "tests/support/service_thread.h"
#include "tests/support/test_data.h"
#include "tests/support/wait_for.h"
#include "tests/support/webhook_receiver.h"

#define DEVIATION_ID "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10"
#define OTHER_ID     "6a0e7c52-1b3d-4f8a-9c2e-5d7f1a3b9e04"
#define EVENT_1      "0c7f3b1e-5d2a-5e4f-8a1b-2c3d4e5f6a7b"
#define EVENT_2      "1d8a4c2f-6e3b-5f5a-9b2c-3d4e5f6a7b8c"
#define ESCALATION   "2e9b5d30-7f4c-5a6b-8c3d-4e5f6a7b8c9d"
#define REMINDER     "3fac6e41-8a5d-5b7c-9d4e-5f6a7b8c9d0e"
#define RESPONSE     "4b0d7f52-9c6e-4c8d-ae5f-6a7b8c9d0e1f" /* the rejection behind a hop 1 */
#define FEEDBACK     "5c1e8a63-0d7f-5d9e-bf6a-7b8c9d0e1f2a"
#define UNIT_31      "SE2321000131-E000000012345" /* VGR's ward, without a ladder of its own */
#define UNIT_VVG     "SE2321000131-E000000000001" /* VGR's county coordination: an inbox only */
#define PERSONAL_ID  "194003141233"
#define SECRET_FILE  AVK_TEST_DATA "/directory/secrets/test-webhook.secret"

static struct service_fixture fx;

static void set(const char *key, const char *value)
{
        mock_kafka_set(&fx.mk, key, value);
}

static void setup(void)
{
        service_fixture_start(&fx, "avk-notify");
        /* The inboxes of tests/data/directory/notify.json, as avvik broker makes them. */
        const char *inboxes[] = {"avvik.inbox.vgr", "avvik.inbox.vvg", "avvik.inbox.1490"};
        for (size_t i = 0; i < sizeof(inboxes) / sizeof(inboxes[0]); i++)
                ck_assert_int_eq(rd_kafka_mock_topic_create(
                                     fx.mk.cluster, inboxes[i],
                                     (int)avk_config_get_int(fx.mk.cfg, "topic.partitions"), 1),
                                 0);
        set("notify.retry.backoff.ms", "50");
        set("notify.retry.backoff.max.ms", "200");
        set("notify.timeout.ms", "3000");
        set("notify.connect.timeout.ms", "2000");
        set("notify.deviation.wait.ms", "500");
}

static void teardown(void)
{
        service_fixture_stop(&fx);
}

/* ---- test data ---------------------------------------------------------- */

static char *replace(char *text, const char *placeholder, const char *with)
{
        char *at = strstr(text, placeholder);
        ck_assert_ptr_nonnull(at);
        size_t before = (size_t)(at - text), plen = strlen(placeholder), wlen = strlen(with);
        char *out = malloc(strlen(text) - plen + wlen + 1);
        ck_assert_ptr_nonnull(out);
        memcpy(out, text, before);
        memcpy(out + before, with, wlen);
        strcpy(out + before + wlen, at + plen);
        free(text);
        return out;
}

static void webhook_json(char *buf, size_t size, const char *url, int identity)
{
        snprintf(buf, size,
                 "{\"url\": \"%s\", \"secret_file\": \"%s\", \"allow_http\": %s, "
                 "\"patient_identity\": %s}",
                 url, SECRET_FILE, strncmp(url, "http:", 5) == 0 ? "true" : "false",
                 identity ? "true" : "false");
}

/* The directory with VGR's and Göteborg's webhooks at these URLs. */
static avk_directory_t *directory(const char *vgr_url, int vgr_identity, const char *gbg_url)
{
        char err[512], path[128], vgr[512], gbg[512];
        char *text = test_data_read(AVK_TEST_DATA "/directory/notify.json", err, sizeof(err));
        ck_assert_msg(text != NULL, "%s", err);
        webhook_json(vgr, sizeof(vgr), vgr_url, vgr_identity);
        webhook_json(gbg, sizeof(gbg), gbg_url, 0);
        text = replace(text, "\"@VGR_WEBHOOK@\"", vgr);
        text = replace(text, "\"@GBG_WEBHOOK@\"", gbg);
        snprintf(path, sizeof(path), "%s/directory.json", fx.workdir);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
        free(text);
        struct avk_errors errs;
        avk_errors_init(&errs);
        avk_directory_t *dir = avk_directory_load(path, AVK_DIRECTORY_ALLOW_PARTIAL, &errs);
        char joined[2048];
        ck_assert_msg(dir != NULL, "%s", avk_errors_join(&errs, joined, sizeof(joined)));
        return dir;
}

/* Files the sample deviation (with a patient identity) under id, with its description replaced
 * unless description is NULL. */
static void file_described(const char *id, const char *description)
{
        char err[512];
        json_t *doc = test_data_load_json(AVK_SOURCE_DIR
                                          "/deploy/samples/01-discharge-information-missing.json",
                                          err, sizeof(err));
        ck_assert_msg(doc != NULL, "%s", err);
        json_object_set_new(doc, "deviation_id", json_string(id));
        if (description)
                json_object_set_new(doc, "description", json_string(description));
        avk_reporter_t *r = avk_reporter_new(fx.mk.cfg, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s", err);
        char filed[AVK_ID_SIZE];
        struct avk_errors errs;
        ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, doc, filed, &errs), AVK_FILED);
        avk_reporter_destroy(r);
        json_decref(doc);
}

static void file_deviation(const char *id)
{
        file_described(id, NULL);
}

static void produce_raw(const char *topic, const char *key, const void *payload, size_t len)
{
        char err[512];
        rd_kafka_conf_t *conf = avk_kafka_conf(fx.mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_t *rk = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        mock_kafka_produce(rk, topic, key, payload, len);
        rd_kafka_destroy(rk);
}

/* A DeviationRouted as the router would produce it. */
static struct codec_message routed(const char *deviation_id, const char *event_id, int hop,
                                   const char *party, const char *unit)
{
        json_t *doc = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s?,s:s,s:s,s:s,s:s,s:s,s:b}",
                                "event_id", event_id, "deviation_id", deviation_id, "routed_at",
                                "2026-11-20T13:05:00.000Z", "hop", hop, "reporter_party", "1480",
                                "receiver_party", party, "receiver_unit_hsa_id", unit, "decision",
                                "AGREEMENT_RULE", "rule_id", "R-REGION-DISCHARGE-PLANNING",
                                "reason", "Discharge planning is the region's.", "category",
                                "DISCHARGE_PLANNING", "harm_level", "LOW", "possible_lex_maria", 0);
        struct codec_message m = codec_fixture_encode(
            fx.codec, "deviation.routed", avk_catalog_by_name(fx.catalog, "DeviationRouted"), doc);
        json_decref(doc);
        return m;
}

/* A DeviationEscalated as the tracker writes it, to VGR's unit 31 (no holder: the notifier names
 * it). */
static struct codec_message escalation(const char *deviation_id, const char *escalation_id)
{
        json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:n,s:s,s:i,s:s}", "escalation_id",
                                escalation_id, "deviation_id", deviation_id, "escalated_at",
                                "2026-11-27T13:05:00.000Z", "party", "VGR", "step", "MANAGER",
                                "reason", "ACKNOWLEDGE_DEADLINE_PASSED", "holder", "deadline_at",
                                "2026-11-27T13:00:00.000Z", "hop", 0, "unit_hsa_id", UNIT_31);
        struct codec_message m =
            codec_fixture_encode(fx.codec, "deviation.escalated",
                                 avk_catalog_by_name(fx.catalog, "DeviationEscalated"), doc);
        json_decref(doc);
        return m;
}

static void escalate(const char *deviation_id, const char *escalation_id)
{
        struct codec_message m = escalation(deviation_id, escalation_id);
        produce_raw("deviation.escalated", deviation_id, m.bytes, m.len);
        free(m.bytes);
}

/* A DeadlineReminder to Göteborg's coordinator. */
static struct codec_message reminder(const char *deviation_id, const char *reminder_id)
{
        json_t *doc =
            json_pack("{s:s,s:s,s:s,s:i,s:s,s:n,s:s,s:s}", "reminder_id", reminder_id,
                      "deviation_id", deviation_id, "reminded_at", "2026-11-26T13:00:00.000Z",
                      "hop", 0, "receiver_party", "1480", "receiver_unit_hsa_id", "kind", "ANSWER",
                      "deadline_at", "2026-11-27T13:00:00.000Z");
        struct codec_message m =
            codec_fixture_encode(fx.codec, "deviation.reminder",
                                 avk_catalog_by_name(fx.catalog, "DeadlineReminder"), doc);
        json_decref(doc);
        return m;
}

static void remind(const char *deviation_id, const char *reminder_id)
{
        struct codec_message m = reminder(deviation_id, reminder_id);
        produce_raw("deviation.reminder", deviation_id, m.bytes, m.len);
        free(m.bytes);
}

/*
 * Produces, through one producer, cnt rounds of an escalation to VGR's
 * unit 31 (to_vgr) and a reminder to Göteborg (to_gbg), each of a deviation
 * of its own (so spread over the partitions), numbered from first.
 */
static void produce_rounds(int first, int cnt, int to_vgr, int to_gbg)
{
        char err[512];
        rd_kafka_conf_t *conf = avk_kafka_conf(fx.mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_t *rk = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        for (int i = first; i < first + cnt; i++) {
                char deviation_id[40], event_id[40];
                for (int party = 0; party < 2; party++) {
                        if (!(party == 0 ? to_vgr : to_gbg))
                                continue;
                        snprintf(deviation_id, sizeof(deviation_id),
                                 "3f1c2a9e-8b7d-4c1e-9a65-%04d%08d", party, i);
                        snprintf(event_id, sizeof(event_id), "%s-5a6b-8c3d-%012d",
                                 party == 0 ? "2e9b5d30-7f4c" : "3fac6e41-8a5d", i);
                        struct codec_message m = party == 0 ? escalation(deviation_id, event_id)
                                                            : reminder(deviation_id, event_id);
                        ck_assert_int_eq(
                            rd_kafka_producev(rk,
                                              RD_KAFKA_V_TOPIC(party == 0 ? "deviation.escalated"
                                                                          : "deviation.reminder"),
                                              RD_KAFKA_V_KEY(deviation_id, strlen(deviation_id)),
                                              RD_KAFKA_V_VALUE(m.bytes, m.len),
                                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                              RD_KAFKA_V_END),
                            0);
                        free(m.bytes);
                }
        }
        ck_assert_int_eq(rd_kafka_flush(rk, 30000), 0);
        rd_kafka_destroy(rk);
}

/* The delivery report of produce_routed(): where the record went. */
static void routed_partition_of(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        ck_assert_msg(!m->err, "%s", rd_kafka_err2str(m->err));
        *(int32_t *)opaque = m->partition;
}

/* Produces m to topic.routed as the router writes it: keyed by the
 * deviation id, with its headers (docs/router.md, "Outputs").
 * @returns the partition it went to. */
static int32_t produce_routed(const char *deviation_id, const char *event_id, int hop,
                              const struct codec_message *m)
{
        char err[512], hop_text[16];
        int32_t partition = -1;
        snprintf(hop_text, sizeof(hop_text), "%d", hop);
        rd_kafka_conf_t *conf = avk_kafka_conf(fx.mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_conf_set_dr_msg_cb(conf, routed_partition_of);
        rd_kafka_conf_set_opaque(conf, &partition);
        rd_kafka_t *rk = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        rd_kafka_header_add(h, "avk-id", -1, event_id, -1);
        rd_kafka_header_add(h, "avk-type", -1, "DeviationRouted", -1);
        rd_kafka_header_add(h, "avk-hop", -1, hop_text, -1);
        rd_kafka_header_add(h, "avk-cause", -1, hop == 0 ? deviation_id : RESPONSE, -1);
        ck_assert_int_eq(
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("deviation.routed"),
                              RD_KAFKA_V_KEY(deviation_id, strlen(deviation_id)),
                              RD_KAFKA_V_VALUE(m->bytes, m->len), RD_KAFKA_V_HEADERS(h),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
        ck_assert_int_eq(rd_kafka_flush(rk, 10000), 0);
        rd_kafka_destroy(rk);
        ck_assert_int_ge(partition, 0);
        return partition;
}

/* Routes deviation_id to party (and unit): the record and headers the
 * router writes, the cause of a hop past 0 being RESPONSE. */
static void route(const char *deviation_id, const char *event_id, int hop, const char *party,
                  const char *unit)
{
        struct codec_message m = routed(deviation_id, event_id, hop, party, unit);
        produce_routed(deviation_id, event_id, hop, &m);
        free(m.bytes);
}

/* ---- the notifier in a thread ------------------------------------------ */

struct running {
        avk_notify_t *notify;
        avk_metrics_t *metrics;
        struct service_thread thread;
};

static int run_notify(void *service, char *errstr, size_t errstr_size)
{
        return avk_notify_run(service, errstr, errstr_size);
}

static void stop_notify(void *service)
{
        avk_notify_stop(service);
}

static void start(struct running *r, const avk_directory_t *dir)
{
        char err[512];
        r->metrics = avk_metrics_new();
        r->notify = avk_notify_new(fx.mk.cfg, dir, r->metrics, err, sizeof(err));
        ck_assert_msg(r->notify != NULL, "%s", err);
        service_thread_start(&r->thread, r->notify, run_notify, stop_notify);
}

static void stop(struct running *r)
{
        service_thread_stop(&r->thread);
        avk_notify_destroy(r->notify);
        avk_metrics_destroy(r->metrics);
}

static struct avk_notify_stats stats(struct running *r)
{
        struct avk_notify_stats s;
        avk_notify_stats(r->notify, &s);
        return s;
}

/* Waits up to 30 s for expr to reach want (the first group join takes ~3 s). */
#define WAIT_FOR(expr, want) WAIT_FOR_MS(expr, want, 30000)

/* ---- what the receiver and the topics got ------------------------------ */

/* The signature holds for the request's time, event type and body, as a
 * receiver checks it (docs/notify.md, "Signature"). */
static void assert_signed(const struct webhook_request *req)
{
        char err[512];
        char *secret = test_data_read(SECRET_FILE, err, sizeof(err));
        ck_assert_msg(secret != NULL, "%s", err);
        size_t len = strcspn(secret, "\n");
        ck_assert_msg(avk_webhook_verify((unsigned char *)secret, len, req->signature,
                                         req->event_type, req->body, req->body_len, time(NULL),
                                         AVK_WEBHOOK_TOLERANCE_S, err, sizeof(err)) == 0,
                      "%s", err);
        free(secret);
}

static json_t *body_of(const struct webhook_request *req)
{
        json_error_t jerr;
        json_t *j = json_loads(req->body, 0, &jerr);
        ck_assert_msg(j != NULL, "%s", jerr.text);
        return j;
}

#define RECORDS_MAX 16
#define HEADERS_MAX 8
struct record {
        int32_t partition;
        char key[64];
        char error[512], source_topic[64], source_partition[16], source_offset[32];
        unsigned char *payload;
        size_t len;
        size_t header_cnt;
        char header[HEADERS_MAX][2][64]; /* every header in order: name, value */
};

struct records {
        size_t n;
        struct record r[RECORDS_MAX];
};

static void collect(void *opaque, const rd_kafka_message_t *m)
{
        struct records *rs = opaque;
        ck_assert_uint_lt(rs->n, RECORDS_MAX);
        struct record *r = &rs->r[rs->n++];
        r->partition = m->partition;
        snprintf(r->key, sizeof(r->key), "%.*s", (int)m->key_len, (const char *)m->key);
        rd_kafka_headers_t *h;
        const char *name;
        const void *value;
        size_t len;
        if (rd_kafka_message_headers(m, &h) == 0) {
                for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &value, &len) == 0; i++) {
                        ck_assert_uint_lt(i, HEADERS_MAX);
                        snprintf(r->header[i][0], sizeof(r->header[i][0]), "%s", name);
                        snprintf(r->header[i][1], sizeof(r->header[i][1]), "%.*s", (int)len,
                                 value ? (const char *)value : "");
                        r->header_cnt = i + 1;
                }
        }
        mock_kafka_header(m, "avk-error", r->error, sizeof(r->error));
        mock_kafka_header(m, "avk-source-topic", r->source_topic, sizeof(r->source_topic));
        mock_kafka_header(m, "avk-source-partition", r->source_partition,
                          sizeof(r->source_partition));
        mock_kafka_header(m, "avk-source-offset", r->source_offset, sizeof(r->source_offset));
        r->payload = malloc(m->len + 1);
        memcpy(r->payload, m->payload, m->len);
        r->len = m->len;
}

static void records_free(struct records *rs)
{
        for (size_t i = 0; i < rs->n; i++)
                free(rs->r[i].payload);
}

/* The DeliveryFailed events, as JSON. */
static json_t *failed_events(void)
{
        static struct records rs;
        memset(&rs, 0, sizeof(rs));
        mock_kafka_read_all(&fx.mk, "deviation.delivery.failed", collect, &rs);
        json_t *all = json_array();
        for (size_t i = 0; i < rs.n; i++)
                json_array_append_new(all, codec_fixture_decode_json(
                                               fx.codec, rs.r[i].payload, rs.r[i].len,
                                               avk_catalog_by_name(fx.catalog, "DeliveryFailed")));
        records_free(&rs);
        return all;
}

/* A copy of what a test expects in an inbox: payload and headers, in order. */
struct inbox_copy {
        const unsigned char *payload;
        size_t len;
        const char *header[4][2];
};

/* Whether r is c: key, bytes and every header, names in order. */
static int is_copy(const struct record *r, const char *deviation_id, const struct inbox_copy *c)
{
        if (strcmp(r->key, deviation_id) != 0 || r->len != c->len ||
            memcmp(r->payload, c->payload, c->len) != 0 || r->header_cnt != 4)
                return 0;
        for (int i = 0; i < 4; i++)
                if (strcmp(r->header[i][0], c->header[i][0]) != 0 ||
                    strcmp(r->header[i][1], c->header[i][1]) != 0)
                        return 0;
        return 1;
}

/*
 * Checks that inbox holds the two records of deviation_id's routing
 * event_id at hop (cause: what caused it), as the router wrote them: the
 * DeviationReported as filed, and the DeviationRouted routed_bytes as on
 * topic.routed. exactly: nothing else; else each at least once and every
 * other record a duplicate of one of them (Kafka refused some on the way).
 */
static void assert_inbox(const char *inbox, const char *deviation_id, const char *event_id, int hop,
                         const char *cause, const struct codec_message *routed_bytes, int exactly)
{
        static struct records reported, got;
        memset(&reported, 0, sizeof(reported));
        memset(&got, 0, sizeof(got));
        mock_kafka_read_all(&fx.mk, "deviation.reported", collect, &reported);
        const struct record *filed = NULL;
        for (size_t i = 0; i < reported.n; i++)
                if (strcmp(reported.r[i].key, deviation_id) == 0)
                        filed = &reported.r[i];
        ck_assert_ptr_nonnull(filed);
        char hop_text[16];
        snprintf(hop_text, sizeof(hop_text), "%d", hop);
        const struct inbox_copy copies[2] = {
            {filed->payload,
             filed->len,
             {{"avk-id", deviation_id},
              {"avk-type", "DeviationReported"},
              {"avk-hop", hop_text},
              {"avk-routed-event", event_id}}},
            {routed_bytes->bytes,
             routed_bytes->len,
             {{"avk-id", event_id},
              {"avk-type", "DeviationRouted"},
              {"avk-hop", hop_text},
              {"avk-cause", cause}}},
        };
        mock_kafka_read_all(&fx.mk, inbox, collect, &got);
        size_t seen[2] = {0, 0};
        for (size_t i = 0; i < got.n; i++) {
                int which = is_copy(&got.r[i], deviation_id, &copies[0])   ? 0
                            : is_copy(&got.r[i], deviation_id, &copies[1]) ? 1
                                                                           : -1;
                ck_assert_msg(which >= 0, "%s: record %zu (key %s, type %s) is not a copy", inbox,
                              i, got.r[i].key,
                              got.r[i].header_cnt > 1 ? got.r[i].header[1][1] : "-");
                seen[which]++;
        }
        ck_assert_uint_ge(seen[0], 1);
        ck_assert_uint_ge(seen[1], 1);
        if (exactly)
                ck_assert_uint_eq(got.n, 2);
        records_free(&reported);
        records_free(&got);
}

/* The notifier's auto.commit.interval.ms in the tests that watch its
 * commits, and how many intervals they watch an offset that must not move. */
#define COMMIT_INTERVAL_MS   100
#define COMMIT_INTERVAL_TEXT "100"
#define COMMIT_WATCH_ROUNDS  8

/* A consumer in notify's group that only asks what the group committed. */
static rd_kafka_t *offsets_reader(void)
{
        char err[512];
        rd_kafka_conf_t *conf = avk_kafka_conf(fx.mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_t *rk = avk_kafka_consumer_new(conf, avk_config_get(fx.mk.cfg, "notify.group.id"),
                                                err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        return rk;
}

/* The offset notify's group committed for deviation.routed [partition]; -1 for none. */
static int64_t committed(rd_kafka_t *reader, int32_t partition)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, "deviation.routed", partition);
        ck_assert_int_eq(rd_kafka_committed(reader, l, 10000), 0);
        int64_t offset = l->elems[0].err ? -1 : l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
        return offset < 0 ? -1 : offset;
}

/* What the retry topic holds: records, and of the last one read what it carries. */
struct parked_seen {
        size_t n;
        int attempts_max;
        char event_id[64], event[16], party[16], source_topic[64], source_offset[32], error[256];
        int bodies_with_identity; /* bodies that hold the patient's personal_id */
};

static void see_parked(void *opaque, const rd_kafka_message_t *m)
{
        struct parked_seen *ps = opaque;
        char attempts[16];
        ps->n++;
        mock_kafka_header(m, "avk-event-id", ps->event_id, sizeof(ps->event_id));
        mock_kafka_header(m, "avk-notify-event", ps->event, sizeof(ps->event));
        mock_kafka_header(m, "avk-party", ps->party, sizeof(ps->party));
        mock_kafka_header(m, "avk-source-topic", ps->source_topic, sizeof(ps->source_topic));
        mock_kafka_header(m, "avk-source-offset", ps->source_offset, sizeof(ps->source_offset));
        mock_kafka_header(m, "avk-error", ps->error, sizeof(ps->error));
        mock_kafka_header(m, "avk-attempts", attempts, sizeof(attempts));
        if (atoi(attempts) > ps->attempts_max)
                ps->attempts_max = atoi(attempts);
        char *body = strndup(m->payload, m->len);
        ck_assert_ptr_nonnull(body);
        if (strstr(body, PERSONAL_ID))
                ps->bodies_with_identity++;
        free(body);
}

static struct parked_seen parked_records(void)
{
        struct parked_seen ps;
        memset(&ps, 0, sizeof(ps));
        mock_kafka_read_all(&fx.mk, "deviation.notify.retry", see_parked, &ps);
        return ps;
}

/* ---- the tests ---------------------------------------------------------- */

START_TEST(delivered_once_signed_with_the_event_id)
{
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        struct webhook_receiver *gbg = webhook_receiver_start(NULL, NULL);
        char err[512];
        char *secret = test_data_read(SECRET_FILE, err, sizeof(err));
        ck_assert_msg(secret != NULL, "%s", err);
        /* A receiver that checks the signature takes the delivery (401 otherwise). */
        webhook_receiver_verify(vgr, secret, strcspn(secret, "\n"));
        free(secret);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(gbg));
        file_deviation(DEVIATION_ID);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        usleep(300000);
        ck_assert_int_eq(webhook_receiver_count(vgr), 1);
        ck_assert_int_eq(webhook_receiver_count(gbg), 0);

        struct webhook_request req = webhook_receiver_request(vgr, 0);
        ck_assert_str_eq(req.event_id, EVENT_1);
        ck_assert_str_eq(req.content_type, "application/json");
        ck_assert_uint_eq(strlen(req.timestamp), 24);
        assert_signed(&req);
        ck_assert_str_eq(req.refused, "");
        json_t *body = body_of(&req);
        ck_assert_str_eq(json_string_value(json_object_get(body, "event_id")), EVENT_1);
        ck_assert_str_eq(json_string_value(json_object_get(body, "receiver_party")), "VGR");
        ck_assert_str_eq(json_string_value(json_object_get(body, "rule_id")),
                         "R-REGION-DISCHARGE-PLANNING");
        json_t *deviation = json_object_get(body, "deviation");
        ck_assert_str_eq(json_string_value(json_object_get(deviation, "deviation_id")),
                         DEVIATION_ID);
        /* VGR's endpoint is not cleared for patient identity. */
        ck_assert_ptr_null(json_object_get(json_object_get(deviation, "patient"), "personal_id"));
        ck_assert_ptr_null(strstr(req.body, PERSONAL_ID));
        ck_assert_ptr_nonnull(json_object_get(json_object_get(deviation, "patient"), "age_group"));
        json_decref(body);
        webhook_request_free(&req);

        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(
            text,
            "avk_notify_deliveries_total{party=\"VGR\",outcome=\"delivered\",event=\"routed\"} 1");
        ck_assert_contains(text, "avk_notify_attempts_total{party=\"VGR\",result=\"2xx\"} 1");
        free(text);
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
        webhook_receiver_stop(gbg);
}
END_TEST

/* The router keeps the first body filed under an id and dead-letters another (docs/router.md,
 * "One body per deviation"): the receiver's webhook gets that first body too. */
START_TEST(a_deviation_filed_again_with_another_body_is_delivered_with_the_first)
{
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_described(DEVIATION_ID, "The first filing of this deviation.");
        file_described(DEVIATION_ID, "Another body under the same id.");
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        struct webhook_request req = webhook_receiver_request(vgr, 0);
        json_t *body = body_of(&req);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(body, "deviation"), "description")),
            "The first filing of this deviation.");
        json_decref(body);
        webhook_request_free(&req);
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(answered_500_twice_is_delivered_on_the_third_attempt)
{
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        webhook_receiver_script(vgr, (const int[]){500, 500, 200}, 3);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        ck_assert_int_eq(webhook_receiver_count(vgr), 3);
        ck_assert_int_eq(stats(&run).attempts, 3);
        ck_assert_int_eq(stats(&run).dead_lettered, 0);
        struct webhook_request first = webhook_receiver_request(vgr, 0);
        for (int i = 1; i < 3; i++) {
                struct webhook_request again = webhook_receiver_request(vgr, i);
                ck_assert_str_eq(again.event_id, EVENT_1);
                ck_assert_str_eq(again.body, first.body); /* byte for byte */
                assert_signed(&again);                    /* with the attempt's own time */
                webhook_request_free(&again);
        }
        webhook_request_free(&first);
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(receiver_hanging_past_the_timeout_is_retried)
{
        set("notify.timeout.ms", "500");
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        webhook_receiver_hang(vgr, 1, 5000);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        ck_assert_int_eq(webhook_receiver_count(vgr), 2);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text, "avk_notify_attempts_total{party=\"VGR\",result=\"timeout\"} 1");
        free(text);
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(slow_party_does_not_hold_up_another)
{
        set("notify.timeout.ms", "20000");
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        struct webhook_receiver *gbg = webhook_receiver_start(NULL, NULL);
        webhook_receiver_hang(vgr, -1, 20000);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(gbg));
        file_deviation(DEVIATION_ID);
        file_deviation(OTHER_ID);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL); /* first, to the slow one */
        route(OTHER_ID, EVENT_2, 0, "1480", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(webhook_receiver_count(vgr), 1);
        WAIT_FOR(stats(&run).delivered, 1);
        ck_assert_int_eq(webhook_receiver_count(gbg), 1);
        /* Göteborg was served while VGR's attempt is still open. */
        ck_assert_int_eq(webhook_receiver_answered(vgr), 0);
        ck_assert_uint_eq(stats(&run).held, 1);
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
        webhook_receiver_stop(gbg);
}
END_TEST

/* A self-signed certificate for 127.0.0.1 in the fixture's directory as <name>.{crt,key}; returns
 * the PEM texts. */
static void make_certificate(const char *name, char **cert, char **key)
{
        char cmd[1024], path[128], err[512];
        snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                 "-days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
                 "-keyout %s/%s.key -out %s/%s.crt 2>/dev/null",
                 fx.workdir, name, fx.workdir, name);
        ck_assert_msg(system(cmd) == 0, "openssl req could not make a certificate");
        snprintf(path, sizeof(path), "%s/%s.crt", fx.workdir, name);
        *cert = test_data_read(path, err, sizeof(err));
        snprintf(path, sizeof(path), "%s/%s.key", fx.workdir, name);
        *key = test_data_read(path, err, sizeof(err));
        ck_assert_msg(*cert && *key, "%s", err);
}

START_TEST(trusted_endpoint_cleared_for_identity_gets_it)
{
        char *cert, *key, ca[128];
        make_certificate("trusted", &cert, &key);
        snprintf(ca, sizeof(ca), "%s/trusted.crt", fx.workdir);
        set("notify.ssl.ca.location", ca);
        struct webhook_receiver *vgr = webhook_receiver_start(cert, key);
        ck_assert_str_eq(strncmp(webhook_receiver_url(vgr), "https://", 8) == 0 ? "https" : "",
                         "https");
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 1, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        struct webhook_request req = webhook_receiver_request(vgr, 0);
        assert_signed(&req);
        json_t *body = body_of(&req);
        ck_assert_str_eq(
            json_string_value(json_object_get(
                json_object_get(json_object_get(body, "deviation"), "patient"), "personal_id")),
            PERSONAL_ID);
        json_decref(body);
        webhook_request_free(&req);
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
        free(cert);
        free(key);
}
END_TEST

START_TEST(untrusted_certificate_is_retried_then_dead_lettered)
{
        char *cert, *key, *other_cert, *other_key, ca[128];
        make_certificate("trusted", &cert, &key);
        make_certificate("stranger", &other_cert, &other_key);
        snprintf(ca, sizeof(ca), "%s/trusted.crt", fx.workdir);
        set("notify.ssl.ca.location", ca);
        set("notify.retry.max", "2");
        struct webhook_receiver *vgr = webhook_receiver_start(other_cert, other_key);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        ck_assert_int_eq(stats(&run).attempts, 2);
        ck_assert_int_eq(webhook_receiver_count(vgr), 0); /* never past the handshake */
        stop(&run);

        static struct records dl;
        memset(&dl, 0, sizeof(dl));
        ck_assert_uint_eq(mock_kafka_read_all(&fx.mk, "deviation.deadletter", collect, &dl), 1);
        ck_assert_contains(dl.r[0].error, "TLS: certificate verify failed");
        ck_assert_contains(dl.r[0].error, "attempt 2 of 2");
        records_free(&dl);
        json_t *events = failed_events();
        ck_assert_uint_eq(json_array_size(events), 1);
        json_t *ev = json_array_get(events, 0);
        ck_assert_contains(json_string_value(json_object_get(ev, "reason")), "certificate");
        ck_assert_int_eq(json_integer_value(json_object_get(ev, "attempts")), 2);
        json_decref(events);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
        free(cert);
        free(key);
        free(other_cert);
        free(other_key);
}
END_TEST

START_TEST(spent_retry_budget_dead_letters_with_an_escalation_event)
{
        set("notify.retry.max", "3");
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        webhook_receiver_script(vgr, (const int[]){503}, 1);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        struct codec_message m = routed(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        produce_raw("deviation.routed", DEVIATION_ID, m.bytes, m.len);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        ck_assert_int_eq(webhook_receiver_count(vgr), 3);
        /* The budget counts across parkings: two on the retry topic, the third attempt its last. */
        ck_assert_uint_eq(stats(&run).parked, 2);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(
            text, "avk_notify_deliveries_total{party=\"VGR\",outcome=\"dead_lettered\",event="
                  "\"routed\"} 1");
        ck_assert_contains(text,
                           "avk_notify_retries_parked_total{party=\"VGR\",event=\"routed\"} 2");
        free(text);
        stop(&run);
        struct parked_seen ps = parked_records();
        ck_assert_uint_eq(ps.n, 2);
        ck_assert_int_eq(ps.attempts_max, 2);
        ck_assert_str_eq(ps.event_id, EVENT_1);
        ck_assert_str_eq(ps.source_topic, "deviation.routed");
        ck_assert_str_eq(ps.source_offset, "0");
        ck_assert_str_eq(ps.error, "HTTP 503 (attempt 2)");

        static struct records dl;
        memset(&dl, 0, sizeof(dl));
        ck_assert_uint_eq(mock_kafka_read_all(&fx.mk, "deviation.deadletter", collect, &dl), 1);
        ck_assert_str_eq(dl.r[0].error, "HTTP 503 (attempt 3 of 3)");
        ck_assert_str_eq(dl.r[0].source_topic, "deviation.routed");
        ck_assert_str_eq(dl.r[0].source_offset, "0");
        ck_assert_uint_eq(dl.r[0].len, m.len);
        ck_assert_int_eq(memcmp(dl.r[0].payload, m.bytes, m.len), 0); /* the record as read */
        records_free(&dl);
        free(m.bytes);

        json_t *events = failed_events();
        ck_assert_uint_eq(json_array_size(events), 1);
        json_t *ev = json_array_get(events, 0);
        ck_assert_str_eq(json_string_value(json_object_get(ev, "deviation_id")), DEVIATION_ID);
        ck_assert_str_eq(json_string_value(json_object_get(ev, "routed_event_id")), EVENT_1);
        ck_assert_str_eq(json_string_value(json_object_get(ev, "receiver_party")), "VGR");
        ck_assert_str_eq(json_string_value(json_object_get(ev, "reason")),
                         "HTTP 503 (attempt 3 of 3)");
        ck_assert_int_eq(json_integer_value(json_object_get(ev, "attempts")), 3);
        const char *failed_id = json_string_value(json_object_get(ev, "event_id"));
        ck_assert_uint_eq(strlen(failed_id), 36);
        ck_assert_int_eq(failed_id[14], '5'); /* derived: version 5 */
        json_decref(events);

        /* The dead-lettered record's offset was committed: a restart in the
         * same group sends nothing again. */
        webhook_receiver_script(vgr, (const int[]){200}, 1);
        route(DEVIATION_ID, EVENT_2, 1, "VGR", NULL);
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        ck_assert_int_eq(webhook_receiver_count(vgr), 4);
        struct webhook_request req = webhook_receiver_request(vgr, 3);
        ck_assert_str_eq(req.event_id, EVENT_2);
        webhook_request_free(&req);
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(client_error_is_dead_lettered_without_retry)
{
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        webhook_receiver_script(vgr, (const int[]){401}, 1);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        ck_assert_int_eq(webhook_receiver_count(vgr), 1);
        stop(&run);
        static struct records dl;
        memset(&dl, 0, sizeof(dl));
        ck_assert_uint_eq(mock_kafka_read_all(&fx.mk, "deviation.deadletter", collect, &dl), 1);
        ck_assert_str_eq(dl.r[0].error, "HTTP 401 (attempt 1; not retried)");
        records_free(&dl);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(replay_in_a_new_group_sends_the_same_event_id)
{
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        stop(&run);

        set("notify.group.id", "avvik-notify-replay");
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        stop(&run);
        ck_assert_int_eq(webhook_receiver_count(vgr), 2);
        struct webhook_request first = webhook_receiver_request(vgr, 0);
        struct webhook_request replay = webhook_receiver_request(vgr, 1);
        ck_assert_str_eq(replay.event_id, EVENT_1);
        ck_assert_str_eq(replay.body, first.body);
        /* The same bytes, signed again with the replay's own time. */
        assert_signed(&replay);
        webhook_request_free(&first);
        webhook_request_free(&replay);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(undecodable_record_is_dead_lettered_and_blocks_nothing)
{
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        produce_raw("deviation.routed", DEVIATION_ID, "not avro", 8);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL); /* same key: the same partition, after */
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        stop(&run);
        static struct records dl;
        memset(&dl, 0, sizeof(dl));
        ck_assert_uint_eq(mock_kafka_read_all(&fx.mk, "deviation.deadletter", collect, &dl), 1);
        ck_assert_contains(dl.r[0].error, "undecodable: ");
        ck_assert_uint_eq(dl.r[0].len, 8);
        records_free(&dl);
        json_t *events = failed_events(); /* nothing known to escalate */
        ck_assert_uint_eq(json_array_size(events), 0);
        json_decref(events);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

/* Whether a dead letter's key and value are null, as Kafka gives them back. */
struct nulls {
        size_t n;
        int key_null, value_null;
};

static void see_nulls(void *opaque, const rd_kafka_message_t *m)
{
        struct nulls *seen = opaque;
        seen->n++;
        seen->key_null = m->key == NULL;
        seen->value_null = m->payload == NULL;
}

START_TEST(null_key_and_value_are_dead_lettered_as_null)
{
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        produce_raw("deviation.routed", NULL, NULL, 0);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        stop(&run);
        struct nulls seen = {0};
        ck_assert_uint_eq(mock_kafka_read_all(&fx.mk, "deviation.deadletter", see_nulls, &seen), 1);
        ck_assert_int_eq(seen.key_null, 1);
        ck_assert_int_eq(seen.value_null, 1);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(inbox_only_receivers_get_the_deviation_and_its_routing_in_their_inboxes)
{
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        /* Borås has an inbox only; so has VGR's county coordination unit,
         * which takes the deviation over on a re-routing. */
        struct codec_message to_boras = routed(DEVIATION_ID, EVENT_1, 0, "1490", NULL);
        struct codec_message to_vvg = routed(DEVIATION_ID, EVENT_2, 1, "VGR", UNIT_VVG);
        produce_routed(DEVIATION_ID, EVENT_1, 0, &to_boras);
        produce_routed(DEVIATION_ID, EVENT_2, 1, &to_vvg);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).inbox, 2);
        ck_assert_int_eq(webhook_receiver_count(vgr), 0);
        ck_assert_uint_eq(stats(&run).no_webhook, 0);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(
            text,
            "avk_notify_deliveries_total{party=\"1490\",outcome=\"inbox\",event=\"routed\"} 1");
        ck_assert_contains(
            text,
            "avk_notify_deliveries_total{party=\"VGR\",outcome=\"inbox\",event=\"routed\"} 1");
        ck_assert_ptr_null(strstr(text, PERSONAL_ID));
        free(text);
        stop(&run);
        assert_inbox("avvik.inbox.1490", DEVIATION_ID, EVENT_1, 0, DEVIATION_ID, &to_boras, 1);
        assert_inbox("avvik.inbox.vvg", DEVIATION_ID, EVENT_2, 1, RESPONSE, &to_vvg, 1);
        free(to_boras.bytes);
        free(to_vvg.bytes);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(inbox_copies_refused_by_kafka_are_produced_again_before_the_offset_moves)
{
        set("kafka.auto.commit.interval.ms", COMMIT_INTERVAL_TEXT);
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        struct codec_message to_boras = routed(DEVIATION_ID, EVENT_1, 0, "1490", NULL);
        int32_t partition = produce_routed(DEVIATION_ID, EVENT_1, 0, &to_boras);
        rd_kafka_t *reader = offsets_reader();
        /* Every produce is refused, as by a missing ACL on the inbox, until
         * the errors are cleared below. */
        static rd_kafka_resp_err_t refusals[1000];
        for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
                refusals[i] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
        rd_kafka_mock_push_request_errors_array(fx.mk.cluster, MOCK_KAFKA_API_PRODUCE,
                                                sizeof(refusals) / sizeof(refusals[0]), refusals);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).inbox_retries, 2);
        /* Nothing is acknowledged while Kafka refuses: over several commit
         * intervals the record stays held and its offset uncommitted. */
        for (int i = 0; i < COMMIT_WATCH_ROUNDS; i++) {
                ck_assert_int_eq(committed(reader, partition), -1);
                ck_assert_uint_eq(stats(&run).inbox, 0);
                ck_assert_uint_eq(stats(&run).held, 1);
                usleep(COMMIT_INTERVAL_MS * 1000);
        }
        static struct records none;
        memset(&none, 0, sizeof(none));
        ck_assert_uint_eq(mock_kafka_read_all(&fx.mk, "avvik.inbox.1490", collect, &none), 0);

        rd_kafka_mock_clear_request_errors(fx.mk.cluster, MOCK_KAFKA_API_PRODUCE);
        WAIT_FOR(stats(&run).inbox, 1);
        WAIT_FOR(committed(reader, partition), 1);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text, "avk_notify_inbox_retries_total{party=\"1490\"}");
        free(text);
        stop(&run);
        rd_kafka_consumer_close(reader);
        rd_kafka_destroy(reader);
        assert_inbox("avvik.inbox.1490", DEVIATION_ID, EVENT_1, 0, DEVIATION_ID, &to_boras, 0);
        free(to_boras.bytes);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(receiver_with_webhook_and_inbox_gets_both_neither_waiting_for_the_other)
{
        set("kafka.auto.commit.interval.ms", COMMIT_INTERVAL_TEXT);
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        /* The first attempt hangs past notify.timeout.ms (3 s): the second delivers. */
        webhook_receiver_hang(vgr, 1, 20000);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        struct codec_message to_vgr = routed(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        int32_t partition = produce_routed(DEVIATION_ID, EVENT_1, 0, &to_vgr);
        rd_kafka_t *reader = offsets_reader();
        struct running run;
        start(&run, dir);
        /* The inbox is written while the webhook's first attempt hangs... */
        WAIT_FOR(stats(&run).inbox, 1);
        WAIT_FOR(webhook_receiver_count(vgr), 1);
        ck_assert_int_eq(webhook_receiver_answered(vgr), 0);
        /* ...and the record is not finished until the webhook has it too:
         * watched over several commit intervals, for as long as the
         * webhook has not answered (an offset read before a 0 from the
         * counter was read while unanswered). */
        for (int i = 0; i < COMMIT_WATCH_ROUNDS; i++) {
                int64_t offset = committed(reader, partition);
                if (stats(&run).delivered > 0)
                        break;
                ck_assert_int_eq(offset, -1);
                ck_assert_uint_eq(stats(&run).held, 1);
                usleep(COMMIT_INTERVAL_MS * 1000);
        }
        WAIT_FOR(stats(&run).delivered, 1);
        WAIT_FOR(committed(reader, partition), 1);
        ck_assert_int_eq(webhook_receiver_count(vgr), 2);
        struct webhook_request req = webhook_receiver_request(vgr, 1);
        ck_assert_str_eq(req.event_id, EVENT_1);
        json_t *body = body_of(&req);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(body, "deviation"), "deviation_id")),
            DEVIATION_ID);
        json_decref(body);
        webhook_request_free(&req);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(
            text,
            "avk_notify_deliveries_total{party=\"VGR\",outcome=\"inbox\",event=\"routed\"} 1");
        ck_assert_contains(
            text,
            "avk_notify_deliveries_total{party=\"VGR\",outcome=\"delivered\",event=\"routed\"} 1");
        free(text);
        stop(&run);
        rd_kafka_consumer_close(reader);
        rd_kafka_destroy(reader);
        assert_inbox("avvik.inbox.vgr", DEVIATION_ID, EVENT_1, 0, DEVIATION_ID, &to_vgr, 1);
        free(to_vgr.bytes);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(deviation_never_filed_is_dead_lettered_as_missing)
{
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        route(OTHER_ID, EVENT_2, 0, "VGR", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        ck_assert_int_eq(webhook_receiver_count(vgr), 0);
        ck_assert_uint_eq(stats(&run).inbox, 0);
        stop(&run);
        /* VGR has an inbox too: nothing in it without the deviation. */
        static struct records inbox;
        memset(&inbox, 0, sizeof(inbox));
        ck_assert_uint_eq(mock_kafka_read_all(&fx.mk, "avvik.inbox.vgr", collect, &inbox), 0);
        json_t *events = failed_events();
        ck_assert_uint_eq(json_array_size(events), 1);
        json_t *ev = json_array_get(events, 0);
        ck_assert_str_eq(json_string_value(json_object_get(ev, "reason")),
                         "deviation not found in deviation.reported");
        ck_assert_int_eq(json_integer_value(json_object_get(ev, "attempts")), 0);
        json_decref(events);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(escalation_and_reminder_are_delivered_signed_with_their_ids)
{
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        struct webhook_receiver *gbg = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(gbg));
        file_deviation(DEVIATION_ID); /* on topic.reported, yet never in these bodies */
        escalate(DEVIATION_ID, ESCALATION);
        remind(OTHER_ID, REMINDER); /* needs no deviation */
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 2);
        ck_assert_int_eq(webhook_receiver_count(vgr), 1);
        ck_assert_int_eq(webhook_receiver_count(gbg), 1);

        struct webhook_request req = webhook_receiver_request(vgr, 0);
        ck_assert_str_eq(req.event_id, ESCALATION);
        ck_assert_str_eq(req.event_type, "DeviationEscalated");
        assert_signed(&req);
        json_t *body = body_of(&req);
        ck_assert_str_eq(json_string_value(json_object_get(body, "escalation_id")), ESCALATION);
        ck_assert_str_eq(json_string_value(json_object_get(body, "step")), "MANAGER");
        ck_assert_str_eq(json_string_value(json_object_get(body, "unit_hsa_id")), UNIT_31);
        /* The unit names no ladder: VGR's manager holds the step. */
        ck_assert_str_eq(json_string_value(json_object_get(body, "holder")), "Chef");
        ck_assert_ptr_null(json_object_get(body, "deviation"));
        ck_assert_ptr_null(strstr(req.body, PERSONAL_ID));
        json_decref(body);
        webhook_request_free(&req);

        req = webhook_receiver_request(gbg, 0);
        ck_assert_str_eq(req.event_id, REMINDER);
        ck_assert_str_eq(req.event_type, "DeadlineReminder");
        assert_signed(&req);
        body = body_of(&req);
        ck_assert_str_eq(json_string_value(json_object_get(body, "kind")), "ANSWER");
        ck_assert_str_eq(json_string_value(json_object_get(body, "deadline_at")),
                         "2026-11-27T13:00:00.000Z");
        json_decref(body);
        webhook_request_free(&req);

        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text, "avk_notify_deliveries_total{party=\"VGR\",outcome=\"delivered\","
                                 "event=\"escalated\"} 1");
        ck_assert_contains(text, "avk_notify_deliveries_total{party=\"1480\",outcome="
                                 "\"delivered\",event=\"reminder\"} 1");
        free(text);
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
        webhook_receiver_stop(gbg);
}
END_TEST

/* A DeviationFeedback as the tracker writes it: VGR answered Göteborg's home care unit, the
 * analysis naming a patient and a phone number. */
static void give_feedback(const char *deviation_id, const char *event_id)
{
        json_t *doc = json_pack(
            "{s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s}", "event_id", event_id,
            "deviation_id", deviation_id, "version", 3, "kind", "ANSWERED", "occurred_at",
            "2026-11-27T13:05:00.000Z", "reporter_party", "1480", "reporter_unit_hsa_id",
            "SE2120001215-HSK0042", "reply_reference", "TRESERVA-2026-000123", "hop", 0,
            "receiver_party", "VGR", "receiver_unit_hsa_id", UNIT_31, "analysis",
            "Patienten " PERSONAL_ID " skrevs ut utan läkemedelslista.", "action_plan",
            "Checklista vid utskrivning; frågor till 070-123 45 67.", "dispute_until",
            "2026-12-27T22:59:59.999Z");
        struct codec_message m =
            codec_fixture_encode(fx.codec, "deviation.feedback",
                                 avk_catalog_by_name(fx.catalog, "DeviationFeedback"), doc);
        json_decref(doc);
        produce_raw("deviation.feedback", deviation_id, m.bytes, m.len);
        free(m.bytes);
}

START_TEST(feedback_reaches_the_reporting_party_signed_and_scrubbed)
{
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        struct webhook_receiver *gbg = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(gbg));
        give_feedback(DEVIATION_ID, FEEDBACK); /* needs no deviation */
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        usleep(300000);
        /* The reporting party's (its unit names no webhook), never the receiver's. */
        ck_assert_int_eq(webhook_receiver_count(gbg), 1);
        ck_assert_int_eq(webhook_receiver_count(vgr), 0);
        struct webhook_request req = webhook_receiver_request(gbg, 0);
        ck_assert_str_eq(req.event_id, FEEDBACK);
        ck_assert_str_eq(req.event_type, "DeviationFeedback");
        assert_signed(&req);
        json_t *body = body_of(&req);
        ck_assert_str_eq(json_string_value(json_object_get(body, "kind")), "ANSWERED");
        ck_assert_str_eq(json_string_value(json_object_get(body, "reply_reference")),
                         "TRESERVA-2026-000123");
        ck_assert_str_eq(json_string_value(json_object_get(body, "dispute_until")),
                         "2026-12-27T22:59:59.999Z");
        /* Göteborg's endpoint is not cleared: the free text comes scrubbed. */
        ck_assert_ptr_null(strstr(req.body, PERSONAL_ID));
        ck_assert_ptr_null(strstr(req.body, "123 45 67"));
        ck_assert_contains(json_string_value(json_object_get(body, "analysis")),
                           "skrevs ut utan läkemedelslista.");
        ck_assert_contains(json_string_value(json_object_get(body, "action_plan")),
                           "Checklista vid utskrivning");
        json_decref(body);
        webhook_request_free(&req);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text, "avk_notify_deliveries_total{party=\"1480\",outcome="
                                 "\"delivered\",event=\"feedback\"} 1");
        free(text);
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
        webhook_receiver_stop(gbg);
}
END_TEST

START_TEST(failing_escalation_is_retried_then_dead_lettered_without_delivery_failed)
{
        set("notify.retry.max", "3");
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        webhook_receiver_script(vgr, (const int[]){503}, 1);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        escalate(DEVIATION_ID, ESCALATION);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        ck_assert_int_eq(webhook_receiver_count(vgr), 3);
        ck_assert_uint_eq(stats(&run).parked, 2);
        for (int i = 0; i < 3; i++) { /* the same request every time */
                struct webhook_request req = webhook_receiver_request(vgr, i);
                ck_assert_str_eq(req.event_id, ESCALATION);
                assert_signed(&req);
                webhook_request_free(&req);
        }
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text, "avk_notify_deliveries_total{party=\"VGR\",outcome="
                                 "\"dead_lettered\",event=\"escalated\"} 1");
        free(text);
        stop(&run);

        static struct records dl;
        memset(&dl, 0, sizeof(dl));
        ck_assert_uint_eq(mock_kafka_read_all(&fx.mk, "deviation.deadletter", collect, &dl), 1);
        ck_assert_str_eq(dl.r[0].error, "HTTP 503 (attempt 3 of 3)");
        ck_assert_str_eq(dl.r[0].source_topic, "deviation.escalated");
        records_free(&dl);
        /* A DeliveryFailed would be escalated again, through the same endpoint. */
        json_t *events = failed_events();
        ck_assert_uint_eq(json_array_size(events), 0);
        json_decref(events);

        /* Its offset was committed: a restart in the same group sends nothing again. */
        webhook_receiver_script(vgr, (const int[]){200}, 1);
        remind(OTHER_ID, REMINDER); /* Göteborg's, whose webhook is this receiver too */
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        stop(&run);
        ck_assert_int_eq(webhook_receiver_count(vgr), 4);
        struct webhook_request req = webhook_receiver_request(vgr, 3);
        ck_assert_str_eq(req.event_id, REMINDER);
        webhook_request_free(&req);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(metrics_and_readiness_are_served_over_http)
{
        char err[512];
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        escalate(DEVIATION_ID, ESCALATION);
        struct running run;
        start(&run, dir);
        avk_metrics_http_t *http = avk_metrics_http_start(
            "127.0.0.1:0", run.metrics, avk_notify_ready, run.notify, err, sizeof(err));
        ck_assert_msg(http != NULL, "%s", err);
        int port = avk_metrics_http_port(http);
        struct http_reply r = http_get(port, "/readyz");
        if (stats(&run).partitions == 0) { /* the group join takes seconds */
                ck_assert_int_eq(r.status, 503);
                ck_assert_contains(r.body, "no partition of deviation.routed assigned");
        }
        free(r.body);
        WAIT_FOR(stats(&run).delivered, 2);
        r = http_get(port, "/readyz");
        ck_assert_int_eq(r.status, 200);
        free(r.body);
        r = http_get(port, "/metrics");
        ck_assert_int_eq(r.status, 200);
        ck_assert_contains(r.body, "avk_notify_deliveries_total{party=\"VGR\",outcome="
                                   "\"delivered\",event=\"routed\"} 1");
        ck_assert_contains(r.body, "avk_notify_deliveries_total{party=\"VGR\",outcome="
                                   "\"delivered\",event=\"escalated\"} 1");
        ck_assert_contains(r.body, "avk_notify_attempts_total{party=\"VGR\",result=\"2xx\"} 2");
        free(r.body);
        avk_metrics_http_stop(http);
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

/* A Schema Registry outage is no bad record: the notifier reads again what it
 * cannot decode yet - an escalation and a reminder written in Confluent
 * framing, and the deviation a routed record's body carries - is not ready
 * meanwhile, and once the registry answers delivers every one, dead-lettering
 * nothing. */
START_TEST(registry_down_nothing_is_dead_lettered_and_all_is_delivered_once_back)
{
        char why[256];
        struct fake_registry *registry = fake_registry_start_or_fail();
        set("schema.registry.url", fake_registry_url(registry));
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        struct webhook_receiver *gbg = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(gbg));
        file_deviation(DEVIATION_ID);                 /* through the registry: Confluent framing */
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL); /* single-object: needs no registry */
        avk_registry_t *writer_registry = codec_fixture_registry(fake_registry_url(registry));
        avk_codec_t *single_object = fx.codec;
        fx.codec = codec_fixture_codec(fx.catalog, writer_registry);
        escalate(DEVIATION_ID, ESCALATION);
        remind(OTHER_ID, REMINDER);
        avk_codec_destroy(fx.codec);
        fx.codec = single_object;
        avk_registry_destroy(writer_registry);

        fake_registry_set_mode(registry, FAKE_REGISTRY_FAIL_500);
        struct running run;
        start(&run, dir);
        /* The three schema ids are asked for, and again after backoffs. */
        int asked = fake_registry_seen(registry).requests;
        WAIT_FOR(fake_registry_seen(registry).requests >= asked + 6, 1);
        ck_assert_int_eq(avk_notify_ready(run.notify, why, sizeof(why)), 0);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_ptr_null(strstr(text, "avk_notify_registry_waits_total 0\n"));
        ck_assert_contains(text, "avk_notify_registry_waits_total ");
        free(text);
        ck_assert_uint_eq(stats(&run).delivered, 0);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        fake_registry_set_mode(registry, FAKE_REGISTRY_NORMAL);
        WAIT_FOR(stats(&run).delivered, 3);
        WAIT_FOR(avk_notify_ready(run.notify, why, sizeof(why)), 1);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        ck_assert_int_eq(webhook_receiver_count(vgr), 2); /* the routing and the escalation */
        ck_assert_int_eq(webhook_receiver_count(gbg), 1); /* the reminder */
        stop(&run);
        static struct records dead;
        memset(&dead, 0, sizeof(dead));
        ck_assert_msg(mock_kafka_read_all(&fx.mk, "deviation.deadletter", collect, &dead) == 0,
                      "dead-lettered: %s", dead.r[0].error);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
        webhook_receiver_stop(gbg);
        fake_registry_stop(registry);
}
END_TEST

/* ---- the retry topic ---------------------------------------------------- */

/* Parties A (VGR, its webhook dead) and B (Göteborg, healthy): rounds of
 * deliveries to each. */
#define DEAD_FIRST_ROUNDS 40
#define DEAD_MIXED_ROUNDS 100

START_TEST(dead_endpoint_does_not_hold_up_other_parties)
{
        /* A few held deliveries fill the window; A's retries are minutes away. */
        set("notify.max.in.flight", "4");
        set("notify.retry.backoff.ms", "600000");
        set("notify.retry.backoff.max.ms", "600000");
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        struct webhook_receiver *gbg = webhook_receiver_start(NULL, NULL);
        webhook_receiver_script(vgr, (const int[]){503}, 1);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(gbg));
        produce_rounds(0, DEAD_FIRST_ROUNDS, 1, 0);
        struct running run;
        start(&run, dir);
        /* A's deliveries have failed (more than the window) before B's are filed. */
        WAIT_FOR(webhook_receiver_count(vgr), 8);
        produce_rounds(DEAD_FIRST_ROUNDS, DEAD_MIXED_ROUNDS, 1, 1);
        WAIT_FOR_MS(stats(&run).delivered, DEAD_MIXED_ROUNDS, 60000);
        ck_assert_int_eq(webhook_receiver_count(gbg), DEAD_MIXED_ROUNDS);
        /* Every one of A's is parked, none lost, none given up. */
        WAIT_FOR(stats(&run).parked, DEAD_FIRST_ROUNDS + DEAD_MIXED_ROUNDS);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        ck_assert_uint_le(stats(&run).held, 4);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text,
                           "avk_notify_retries_parked_total{party=\"VGR\",event=\"escalated\"}");
        ck_assert_contains(text, "avk_notify_retry_held ");
        free(text);
        stop(&run);
        struct parked_seen ps = parked_records();
        ck_assert_uint_ge(ps.n, DEAD_FIRST_ROUNDS + DEAD_MIXED_ROUNDS);
        ck_assert_str_eq(ps.event, "escalated");
        ck_assert_str_eq(ps.party, "VGR");
        ck_assert_str_eq(ps.source_topic, "deviation.escalated");
        ck_assert_contains(ps.error, "HTTP 503 (attempt ");
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
        webhook_receiver_stop(gbg);
}
END_TEST

START_TEST(hanging_endpoint_does_not_hold_up_other_parties)
{
        set("notify.max.in.flight", "4");
        set("notify.timeout.ms", "300");
        set("notify.retry.backoff.ms", "600000");
        set("notify.retry.backoff.max.ms", "600000");
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        struct webhook_receiver *gbg = webhook_receiver_start(NULL, NULL);
        webhook_receiver_hang(vgr, -1, 30000); /* accepts, never answers */
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(gbg));
        produce_rounds(0, 10, 1, 0);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).parked, 8);
        produce_rounds(10, 30, 1, 1);
        WAIT_FOR(stats(&run).delivered, 30);
        ck_assert_int_eq(webhook_receiver_count(gbg), 30);
        WAIT_FOR(stats(&run).parked, 40);
        ck_assert_int_eq(webhook_receiver_answered(vgr), 0);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text, "avk_notify_attempts_total{party=\"VGR\",result=\"timeout\"}");
        free(text);
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
        webhook_receiver_stop(gbg);
}
END_TEST

/* issue 18 point 8: an endpoint down for half the age budget, with the
 * backoff capped far below it, is retried until it answers; nothing goes to
 * the dead letter. The default attempt count applies. */
START_TEST(endpoint_down_for_half_the_age_is_delivered_without_a_dead_letter)
{
        set("notify.retry.max.age.ms", "20000");
        set("notify.retry.backoff.max.ms", "1000");
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        webhook_receiver_script(vgr, (const int[]){500}, 1);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        file_deviation(DEVIATION_ID);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(webhook_receiver_count(vgr), 1);
        sleep(10);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        ck_assert_uint_eq(stats(&run).delivered, 0);
        webhook_receiver_script(vgr, (const int[]){200}, 1);
        WAIT_FOR(stats(&run).delivered, 1);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        ck_assert_int_gt(webhook_receiver_count(vgr), 8); /* past the old count of 8 */
        stop(&run);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

START_TEST(parked_retry_survives_a_restart)
{
        set("notify.retry.max", "1000");
        struct webhook_receiver *dead = webhook_receiver_start(NULL, NULL);
        struct webhook_receiver *healthy = webhook_receiver_start(NULL, NULL);
        webhook_receiver_script(dead, (const int[]){503}, 1);
        avk_directory_t *dir = directory(webhook_receiver_url(dead), 0, webhook_receiver_url(dead));
        file_deviation(DEVIATION_ID);
        route(DEVIATION_ID, EVENT_1, 0, "VGR", NULL);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).parked, 1);
        stop(&run);
        avk_directory_destroy(dir);
        ck_assert_uint_ge(parked_records().n, 1);

        /* Restarted in the same group, with VGR's webhook now at a healthy
         * endpoint: the parked delivery arrives there, unchanged. */
        dir = directory(webhook_receiver_url(healthy), 0, webhook_receiver_url(healthy));
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        usleep(300000);
        /* At least once: a delivery made again after the restart carries the same event id and
         * body, which the receiver recognises (docs/notify.md). */
        ck_assert_int_ge(webhook_receiver_count(healthy), 1);
        ck_assert_uint_eq(stats(&run).dead_lettered, 0);
        stop(&run);
        struct webhook_request first = webhook_receiver_request(dead, 0);
        for (int i = 1; i < webhook_receiver_count(healthy); i++) {
                struct webhook_request again = webhook_receiver_request(healthy, i);
                ck_assert_str_eq(again.event_id, EVENT_1);
                ck_assert_uint_eq(again.body_len, first.body_len);
                ck_assert_int_eq(memcmp(again.body, first.body, first.body_len), 0);
                webhook_request_free(&again);
        }
        struct webhook_request later = webhook_receiver_request(healthy, 0);
        ck_assert_str_eq(later.event_id, EVENT_1);
        ck_assert_str_eq(later.event_type, "DeviationRouted");
        ck_assert_uint_eq(later.body_len, first.body_len);
        ck_assert_int_eq(memcmp(later.body, first.body, first.body_len), 0); /* byte for byte */
        assert_signed(&later);
        ck_assert_ptr_null(strstr(later.body, PERSONAL_ID));
        webhook_request_free(&first);
        webhook_request_free(&later);
        /* The retry topic never held the identity the endpoint is not cleared for. */
        ck_assert_int_eq(parked_records().bodies_with_identity, 0);
        avk_directory_destroy(dir);
        webhook_receiver_stop(dead);
        webhook_receiver_stop(healthy);
}
END_TEST

/* Produces to the retry topic a record of ESCALATION to party's unit 31 as
 * the notifier parks it (docs/notify.md, "Retry topic"), with every header
 * but omit (NULL: all), and with identity the mark of a body that holds the
 * patient's identity. */
static void produce_retry_record(const char *omit, const char *party, int identity,
                                 const char *body)
{
        char err[512], now_text[32];
        snprintf(now_text, sizeof(now_text), "%lld", (long long)time(NULL) * 1000);
        struct codec_message original = escalation(DEVIATION_ID, ESCALATION);
        const char *headers[][2] = {
            {"avk-error", "HTTP 503 (attempt 1)"},
            {"avk-source-topic", "deviation.escalated"},
            {"avk-source-partition", "2"},
            {"avk-source-offset", "7"},
            {"avk-event-id", ESCALATION},
            {"avk-notify-event", "escalated"},
            {"avk-deviation-id", DEVIATION_ID},
            {"avk-hop", "0"},
            {"avk-party", party},
            {"avk-unit", UNIT_31},
            {"avk-attempts", "1"},
            {"avk-first-attempt-at", now_text},
            {"avk-due-at", now_text},
        };
        rd_kafka_headers_t *h = rd_kafka_headers_new(16);
        for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
                if (!omit || strcmp(omit, headers[i][0]) != 0)
                        rd_kafka_header_add(h, headers[i][0], -1, headers[i][1], -1);
        if (identity)
                rd_kafka_header_add(h, "avk-patient-identity", -1, "1", -1);
        if (!omit || strcmp(omit, "avk-original") != 0)
                rd_kafka_header_add(h, "avk-original", -1, original.bytes, (ssize_t)original.len);
        rd_kafka_conf_t *conf = avk_kafka_conf(fx.mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_t *rk = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        ck_assert_int_eq(
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("deviation.notify.retry"),
                              RD_KAFKA_V_KEY(DEVIATION_ID, strlen(DEVIATION_ID)),
                              RD_KAFKA_V_VALUE((void *)body, strlen(body)), RD_KAFKA_V_HEADERS(h),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
        ck_assert_int_eq(rd_kafka_flush(rk, 10000), 0);
        rd_kafka_destroy(rk);
        free(original.bytes);
}

START_TEST(malformed_retry_record_is_dead_lettered_and_blocks_nothing)
{
        static const char body[] = "{\"escalation_id\":\"" ESCALATION "\",\"step\":\"MANAGER\"}";
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        /* Same key, so the same partition: the incomplete one first. */
        produce_retry_record("avk-party", "VGR", 0, body);
        produce_retry_record(NULL, "VGR", 0, body);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).delivered, 1);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        ck_assert_int_eq(webhook_receiver_count(vgr), 1);
        struct webhook_request req = webhook_receiver_request(vgr, 0);
        ck_assert_str_eq(req.event_id, ESCALATION);
        ck_assert_str_eq(req.event_type, "DeviationEscalated");
        ck_assert_str_eq(req.body, body); /* as carried */
        assert_signed(&req);
        webhook_request_free(&req);
        char *text = avk_metrics_render(run.metrics);
        ck_assert_contains(text,
                           "avk_notify_undecodable_total{topic=\"deviation.notify.retry\"} 1");
        free(text);
        stop(&run);
        static struct records dl;
        memset(&dl, 0, sizeof(dl));
        ck_assert_uint_eq(mock_kafka_read_all(&fx.mk, "deviation.deadletter", collect, &dl), 1);
        ck_assert_str_eq(dl.r[0].error, "retry record: header avk-party missing");
        ck_assert_str_eq(dl.r[0].source_topic, "deviation.notify.retry");
        records_free(&dl);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}
END_TEST

/* A parked delivery whose webhook is no longer where the directory says:
 * dead-lettered with the reason, never sent. */
static void assert_retry_dead_lettered(const char *party, int identity, const char *reason)
{
        static const char body[] = "{\"escalation_id\":\"" ESCALATION "\",\"step\":\"MANAGER\"}";
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        produce_retry_record(NULL, party, identity, body);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).dead_lettered, 1);
        stop(&run);
        ck_assert_int_eq(webhook_receiver_count(vgr), 0);
        static struct records dl;
        memset(&dl, 0, sizeof(dl));
        ck_assert_uint_eq(mock_kafka_read_all(&fx.mk, "deviation.deadletter", collect, &dl), 1);
        ck_assert_str_eq(dl.r[0].error, reason);
        /* The original record as read, where it was read. */
        ck_assert_str_eq(dl.r[0].source_topic, "deviation.escalated");
        ck_assert_str_eq(dl.r[0].source_partition, "2");
        ck_assert_str_eq(dl.r[0].source_offset, "7");
        struct codec_message original = escalation(DEVIATION_ID, ESCALATION);
        ck_assert_uint_eq(dl.r[0].len, original.len);
        ck_assert_int_eq(memcmp(dl.r[0].payload, original.bytes, original.len), 0);
        free(original.bytes);
        records_free(&dl);
        avk_directory_destroy(dir);
        webhook_receiver_stop(vgr);
}

START_TEST(retry_for_a_party_gone_from_the_directory_is_dead_lettered)
{
        assert_retry_dead_lettered("9999", 0, "receiver party 9999 is not in the directory");
}
END_TEST

START_TEST(retry_with_identity_for_an_endpoint_no_longer_cleared_is_dead_lettered)
{
        assert_retry_dead_lettered("VGR", 1,
                                   "the body holds patient identity and the webhook of party VGR "
                                   "is no longer cleared for it");
}
END_TEST

START_TEST(retry_attempts_at_once_are_bounded_by_max_in_flight)
{
        static const char body[] = "{\"escalation_id\":\"" ESCALATION "\",\"step\":\"MANAGER\"}";
        set("notify.max.in.flight", "2");
        set("notify.timeout.ms", "60000");
        struct webhook_receiver *vgr = webhook_receiver_start(NULL, NULL);
        webhook_receiver_hang(vgr, -1, 60000);
        avk_directory_t *dir = directory(webhook_receiver_url(vgr), 0, webhook_receiver_url(vgr));
        for (int i = 0; i < 5; i++)
                produce_retry_record(NULL, "VGR", 0, body);
        struct running run;
        start(&run, dir);
        WAIT_FOR(stats(&run).retry_held, 5);
        WAIT_FOR(webhook_receiver_count(vgr), 2);
        /* All five are due; two attempts hang, and the other three wait for a slot. */
        for (int i = 0; i < 10; i++) {
                ck_assert_int_eq(webhook_receiver_count(vgr), 2);
                usleep(100000);
        }
        ck_assert_uint_eq(stats(&run).retry_held, 5);
        webhook_receiver_stop(vgr); /* the hanging answers cut short: slots free up */
        stop(&run);
        avk_directory_destroy(dir);
}
END_TEST

static Suite *notify_suite(void)
{
        Suite *s = suite_create("notify");
        TCase *tc = tcase_create("mock cluster and webhook receivers");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, delivered_once_signed_with_the_event_id);
        tcase_add_test(tc, a_deviation_filed_again_with_another_body_is_delivered_with_the_first);
        tcase_add_test(tc, answered_500_twice_is_delivered_on_the_third_attempt);
        tcase_add_test(tc, receiver_hanging_past_the_timeout_is_retried);
        tcase_add_test(tc, slow_party_does_not_hold_up_another);
        tcase_add_test(tc, trusted_endpoint_cleared_for_identity_gets_it);
        tcase_add_test(tc, untrusted_certificate_is_retried_then_dead_lettered);
        tcase_add_test(tc, client_error_is_dead_lettered_without_retry);
        tcase_add_test(tc, replay_in_a_new_group_sends_the_same_event_id);
        tcase_add_test(tc, undecodable_record_is_dead_lettered_and_blocks_nothing);
        tcase_add_test(tc, null_key_and_value_are_dead_lettered_as_null);
        tcase_add_test(tc, deviation_never_filed_is_dead_lettered_as_missing);
        tcase_add_test(tc, escalation_and_reminder_are_delivered_signed_with_their_ids);
        tcase_add_test(tc, feedback_reaches_the_reporting_party_signed_and_scrubbed);
        tcase_add_test(tc, metrics_and_readiness_are_served_over_http);
        tcase_add_test(tc, registry_down_nothing_is_dead_lettered_and_all_is_delivered_once_back);
        suite_add_tcase(s, tc);
        /* A ctest entry of its own (CK_RUN_CASE): each stays under a minute and a half. */
        TCase *inbox = tcase_create("inbox topics");
        tcase_add_checked_fixture(inbox, setup, teardown);
        tcase_set_timeout(inbox, 120);
        tcase_add_test(inbox,
                       inbox_only_receivers_get_the_deviation_and_its_routing_in_their_inboxes);
        tcase_add_test(inbox,
                       inbox_copies_refused_by_kafka_are_produced_again_before_the_offset_moves);
        tcase_add_test(inbox,
                       receiver_with_webhook_and_inbox_gets_both_neither_waiting_for_the_other);
        suite_add_tcase(s, inbox);
        TCase *retry = tcase_create("retry topic");
        tcase_add_checked_fixture(retry, setup, teardown);
        tcase_set_timeout(retry, 120);
        tcase_add_test(retry, dead_endpoint_does_not_hold_up_other_parties);
        tcase_add_test(retry, hanging_endpoint_does_not_hold_up_other_parties);
        tcase_add_test(retry, parked_retry_survives_a_restart);
        tcase_add_test(retry, endpoint_down_for_half_the_age_is_delivered_without_a_dead_letter);
        tcase_add_test(retry, malformed_retry_record_is_dead_lettered_and_blocks_nothing);
        tcase_add_test(retry, retry_for_a_party_gone_from_the_directory_is_dead_lettered);
        tcase_add_test(retry, retry_attempts_at_once_are_bounded_by_max_in_flight);
        tcase_add_test(retry,
                       retry_with_identity_for_an_endpoint_no_longer_cleared_is_dead_lettered);
        tcase_add_test(retry, spent_retry_budget_dead_letters_with_an_escalation_event);
        tcase_add_test(retry,
                       failing_escalation_is_retried_then_dead_lettered_without_delivery_failed);
        suite_add_tcase(s, retry);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(notify_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
