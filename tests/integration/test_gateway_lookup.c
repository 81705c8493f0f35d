/*
 * The gateway's view and read routes on the in-process mock cluster: three
 * parties file through the gateway, routings, answers and the tracker's
 * changelog are produced onto the lifecycle topics as the services would,
 * and every party's look-ups and lists show exactly what it reported or was
 * routed; a deviation id stays with the document first filed under it
 * across a gateway restart; a dispute is possible only within the window.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/kafka/kafka.h"
#include "common/util/clock.h"
#include "producer/gateway/gateway.h"
#include "tests/support/codec_fixture.h"
#include "tests/support/fake_registry.h"
#include "tests/support/raw_http.h"
#include "tests/support/service_fixture.h"
#include "tests/support/test_data.h"
#include "tests/support/wait_for.h"

#define SAMPLE AVK_SOURCE_DIR "/deploy/samples/01-discharge-information-missing.json"
#define DAY_MS (24 * 3600 * INT64_C(1000))

/* Tokens of the three parties - Göteborg (1480), Härryda (1401), the region - and of the
 * county's triage desk, whose routings and responses name the region (its record_party). */
static const char *const tokens[4] = {"token-of-1480", "token-of-1401", "token-of-vgr",
                                      "token-of-desk"};
static const char *const subjects[4] = {"1480", "1401", "VGR", "DESK"};
static const char *const parties[4] = {"1480", "1401", "VGR", "VGR"};
enum { GBG, HARRYDA, VGR, DESK };

#define D1         "11111111-1111-4111-8111-111111111111" /* Göteborg's, routed to VGR, answered */
#define D2         "22222222-2222-4222-8222-222222222222" /* Härryda's, to VGR, re-routed to Göteborg */
#define D3         "33333333-3333-4333-8333-333333333333" /* VGR's, routed to Härryda */
#define UNKNOWN_ID "44444444-4444-4444-8444-444444444444"
#define D5         "55555555-5555-4555-8555-555555555555" /* Göteborg's, routed to the desk */

static struct service_fixture fx;
static avk_gateway_t *gw;
static rd_kafka_t *producer;

static void write_tokens(const char *path)
{
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        for (int i = 0; i < 4; i++) {
                unsigned char hash[EVP_MAX_MD_SIZE];
                unsigned int len = 0;
                ck_assert_int_eq(
                    EVP_Digest(tokens[i], strlen(tokens[i]), hash, &len, EVP_sha256(), NULL), 1);
                for (unsigned int j = 0; j < len; j++)
                        fprintf(f, "%02x", hash[j]);
                fprintf(f, " %s system of %s\n", subjects[i], subjects[i]);
        }
        fclose(f);
}

static void start_gateway(void)
{
        char err[512];
        gw = avk_gateway_start(fx.mk.cfg, err, sizeof(err));
        ck_assert_msg(gw != NULL, "%s", err);
}

static void setup(void)
{
        char path[128], err[512];
        service_fixture_start(&fx, "avk-lookup");
        snprintf(path, sizeof(path), "%s/tokens", fx.workdir);
        write_tokens(path);
        mock_kafka_set(&fx.mk, "gateway.tokens.file", path);
        mock_kafka_set(&fx.mk, "gateway.listen", "127.0.0.1:0");
        mock_kafka_set(&fx.mk, "deadlines.file", AVK_SOURCE_DIR "/data/deadlines.json");
        rd_kafka_conf_t *conf = avk_kafka_conf(fx.mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        producer = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(producer != NULL, "%s", err);
        start_gateway();
}

static void teardown(void)
{
        avk_gateway_stop(gw);
        rd_kafka_destroy(producer);
        service_fixture_stop(&fx);
}

/* ---- HTTP ---------------------------------------------------------------- */

struct reply {
        int status;
        char *head; /* status line and headers */
        json_t *body;
};

static void reply_free(struct reply *r)
{
        free(r->head);
        json_decref(r->body);
}

/* One request with the party's token (who -1: none) and extra headers. */
static struct reply request(int who, const char *method, const char *target, const char *extra,
                            const char *body)
{
        size_t size = (body ? strlen(body) : 0) + strlen(target) + 1024;
        char *text = malloc(size);
        snprintf(text, size,
                 "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s%s%s%s"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                 method, target, who >= 0 ? "Authorization: Bearer " : "",
                 who >= 0 ? tokens[who] : "", who >= 0 ? "\r\n" : "", extra ? extra : "",
                 body ? strlen(body) : 0, body ? body : "");
        int fd = raw_http_connect("127.0.0.1", (int)avk_gateway_port(gw));
        int closed = 0;
        char *answer = raw_http_exchange(fd, text, 10000, &closed);
        close(fd);
        free(text);
        ck_assert_ptr_nonnull(answer);
        struct reply r = {0};
        ck_assert_int_eq(sscanf(answer, "HTTP/1.1 %d", &r.status), 1);
        char *split = strstr(answer, "\r\n\r\n");
        ck_assert_ptr_nonnull(split);
        split[2] = '\0';
        r.head = answer;
        r.body = split[4] ? json_loads(split + 4, 0, NULL) : NULL;
        return r;
}

static struct reply get(int who, const char *target)
{
        return request(who, "GET", target, NULL, NULL);
}

/* The value of a header in r, copied into buf; "" when absent. */
static const char *header_of(const struct reply *r, const char *name, char *buf, size_t size)
{
        buf[0] = '\0';
        for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
                if (strncasecmp(line + 2, name, strlen(name)) == 0 &&
                    line[2 + strlen(name)] == ':') {
                        const char *v = line + 3 + strlen(name) + 1;
                        snprintf(buf, size, "%.*s", (int)strcspn(v, "\r"), v);
                }
        }
        return buf;
}

/* ---- the deviations and their course ------------------------------------ */

static char *iso(int64_t ms, char *buf, size_t size)
{
        time_t s = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&s, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return buf;
}

/* The sample as party's deviation id, with a description of its own. */
static char *deviation(const char *id, int who, const char *description, const char *reference)
{
        char err[512];
        json_t *doc = test_data_load_json(SAMPLE, err, sizeof(err));
        ck_assert_msg(doc != NULL, "%s", err);
        json_object_set_new(doc, "deviation_id", json_string(id));
        json_object_set_new(json_object_get(doc, "reporter"), "party", json_string(parties[who]));
        if (who == VGR) {
                json_object_set_new(json_object_get(doc, "reporter"), "unit_hsa_id",
                                    json_string("SE2321000131-E000000012345"));
                json_object_set_new(json_object_get(doc, "receiver"), "party", json_null());
                json_object_set_new(json_object_get(doc, "receiver"), "unit_hsa_id", json_null());
        }
        json_object_set_new(doc, "description", json_string(description));
        if (reference)
                json_object_set_new(doc, "reply_reference", json_string(reference));
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        return text;
}

static int file_as(int who, const char *id, const char *description, const char *reference)
{
        char *doc = deviation(id, who, description, reference);
        struct reply r = request(who, "POST", "/v1/deviations", NULL, doc);
        free(doc);
        int status = r.status;
        reply_free(&r);
        return status;
}

static void produce(const char *topic, const char *schema, const char *id, json_t *doc)
{
        struct codec_message m =
            codec_fixture_encode(fx.codec, topic, avk_catalog_by_name(fx.catalog, schema), doc);
        mock_kafka_produce(producer, topic, id, m.bytes, m.len);
        free(m.bytes);
        json_decref(doc);
}

static void routed(const char *id, int hop, int reporter, int receiver, const char *decision,
                   int64_t at)
{
        char t[40], event[40];
        snprintf(event, sizeof(event), "%.34s%02d", id, hop);
        produce("deviation.routed", "DeviationRouted", id,
                json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:n,s:s,s:s,s:s,s:s,s:s,s:b}", "event_id",
                          event, "deviation_id", id, "routed_at", iso(at, t, sizeof(t)), "hop", hop,
                          "reporter_party", parties[reporter], "receiver_party", parties[receiver],
                          "receiver_unit_hsa_id", "decision", decision, "rule_id", "R-TEST",
                          "reason", "the test routes it", "category", "DISCHARGE_PLANNING",
                          "harm_level", "NONE", "possible_lex_maria", 0));
}

static void responded(const char *id, int who, const char *kind, int64_t at)
{
        char t[40], response[40];
        snprintf(response, sizeof(response), "%.30s%06d", id, (int)(at / 1000 % 1000000));
        int answer = strcmp(kind, "ANSWERED") == 0;
        produce("deviation.response", "DeviationResponse", id,
                json_pack("{s:s,s:s,s:s,s:s,s:n,s:s,s:s?,s:s?,s:n,s:n}", "response_id", response,
                          "deviation_id", id, "responded_at", iso(at, t, sizeof(t)), "party",
                          parties[who], "unit_hsa_id", "kind", kind, "analysis",
                          answer ? "the discharge note was sent to the wrong unit" : NULL,
                          "action_plan", answer ? "the ward checks the unit before sending" : NULL,
                          "suggested_receiver", "comment"));
}

/* The tracker's changelog: version, state and, once answered, when; the
 * manual step that waits for confirmation, or NULL. */
static void status_pending(const char *id, int version, const char *state, int reporter,
                           int receiver, int64_t routed_ms, int64_t answered_ms,
                           const char *pending_step)
{
        char t[5][40];
        json_t *doc = json_pack(
            "{s:s,s:s,s:i,s:s,s:s,s:s,s:i,s:s,s:s,s:n,s:s,s:s,s:b,s:s,s:s,s:s,s:s,s:n,s:n,s:n,"
            "s:n,s:n,s:n,s:b,s:n}",
            "state_id", id, "deviation_id", id, "version", version, "state", state, "changed_at",
            iso(answered_ms > 0 ? answered_ms : routed_ms, t[0], 40), "cause", "test", "hop", 1,
            "reporter_party", parties[reporter], "receiver_party", parties[receiver],
            "receiver_unit_hsa_id", "category", "DISCHARGE_PLANNING", "harm_level", "NONE",
            "possible_lex_maria", 0, "deadline_rule", "D-DEFAULT", "routed_at",
            iso(routed_ms, t[1], 40), "acknowledge_deadline_at",
            iso(routed_ms + 3 * DAY_MS, t[2], 40), "answer_deadline_at",
            iso(routed_ms + 60 * DAY_MS, t[3], 40), "acknowledged_at", "answered_at", "closed_at",
            "time_to_acknowledge_ms", "time_to_answer_ms", "deadline_kept", "overdue", 0,
            "escalation_step");
        if (answered_ms > 0)
                json_object_set_new(doc, "answered_at", json_string(iso(answered_ms, t[4], 40)));
        json_object_set_new(doc, "pending_step",
                            pending_step ? json_string(pending_step) : json_null());
        produce("deviation.status", "DeviationStatus", id, doc);
}

static void status(const char *id, int version, const char *state, int reporter, int receiver,
                   int64_t routed_ms, int64_t answered_ms)
{
        status_pending(id, version, state, reporter, receiver, routed_ms, answered_ms, NULL);
}

/* Waits until who's look-up of id answers want. */
static void wait_lookup(int who, const char *id, int want)
{
        char target[128];
        snprintf(target, sizeof(target), "/v1/deviations/%s", id);
        int64_t until = wait_for_now_ms() + 10000;
        int got = 0;
        while (wait_for_now_ms() < until) {
                struct reply r = get(who, target);
                got = r.status;
                reply_free(&r);
                if (got == want)
                        return;
                usleep(50000);
        }
        ck_abort_msg("GET %s as %s: %d, want %d", target, subjects[who], got, want);
}

static struct reply lookup(int who, const char *id)
{
        char target[128];
        snprintf(target, sizeof(target), "/v1/deviations/%s", id);
        return get(who, target);
}

/* The ids of a party's list, in order, as "id,id,...". */
static void list_ids(int who, const char *query, char *out, size_t size)
{
        char target[256];
        snprintf(target, sizeof(target), "/v1/deviations?%s", query);
        struct reply r = get(who, target);
        ck_assert_msg(r.status == 200, "%s as %s: %d", target, subjects[who], r.status);
        out[0] = '\0';
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(r.body, "items"), i, item)
        {
                size_t len = strlen(out);
                snprintf(out + len, size - len, "%s%.8s", len ? "," : "",
                         json_string_value(json_object_get(item, "deviation_id")));
        }
        reply_free(&r);
}

/* Fails the test unless who's list for query is want ("id,id,..." by the ids' first 8 characters).
 */
static void assert_list(int who, const char *query, const char *want)
{
        char got[256];
        list_ids(who, query, got, sizeof(got));
        ck_assert_msg(strcmp(got, want) == 0, "%s as %s: %s, want %s", query, subjects[who], got,
                      want);
}

static int ready(void)
{
        struct reply r = get(-1, "/readyz");
        int up = r.status == 200;
        reply_free(&r);
        return up;
}

/* 1 once who's look-up of id is in state. */
static int in_state(int who, const char *id, const char *state)
{
        struct reply r = lookup(who, id);
        int in = r.status == 200 &&
                 strcmp(json_string_value(json_object_get(r.body, "state")), state) == 0;
        reply_free(&r);
        return in;
}

/* The three deviations filed, routed (D2 re-routed) and D1 answered. */
static void three_parties(void)
{
        int64_t now = avk_clock_system_ms();
        WAIT_FOR_MS(ready(), 1, 10000);
        ck_assert_int_eq(file_as(GBG, D1, "Göteborg's own deviation", "GBG-CASE-1"), 202);
        ck_assert_int_eq(file_as(HARRYDA, D2, "Härryda's own deviation", NULL), 202);
        ck_assert_int_eq(file_as(VGR, D3, "The region's own deviation", NULL), 202);
        routed(D1, 1, GBG, VGR, "NAMED_BY_REPORTER", now - 3000);
        routed(D2, 1, HARRYDA, VGR, "AGREEMENT_RULE", now - 3000);
        routed(D2, 2, HARRYDA, GBG, "REROUTED", now - 2000);
        routed(D3, 1, VGR, HARRYDA, "AGREEMENT_RULE", now - 3000);
        responded(D1, VGR, "ACKNOWLEDGED", now - 1500);
        responded(D1, VGR, "ANSWERED", now - 1000);
        status(D1, 3, "ANSWERED", GBG, VGR, now - 3000, now - 1000);
        wait_lookup(HARRYDA, D3, 200);
        WAIT_FOR_MS(in_state(GBG, D2, "ROUTED") && in_state(GBG, D1, "ANSWERED"), 1, 10000);
}

/* ---- isolation ------------------------------------------------------------ */

START_TEST(each_party_sees_what_it_reported_or_was_routed)
{
        three_parties();
        /* who, then D1, D2, D3: 200 when involved, else 404 */
        static const int want[3][3] = {{200, 200, 404}, {404, 200, 200}, {200, 200, 200}};
        static const char *const ids[3] = {D1, D2, D3};
        for (int who = 0; who < 3; who++) {
                for (int d = 0; d < 3; d++) {
                        struct reply r = lookup(who, ids[d]);
                        ck_assert_msg(r.status == want[who][d], "%s looks up %s: %d, want %d",
                                      parties[who], ids[d], r.status, want[who][d]);
                        reply_free(&r);
                }
        }
        static const char *const lists[3][2] = {
            {"11111111", "22222222"}, {"22222222", "33333333"}, {"33333333", "11111111,22222222"}};
        char got[256];
        for (int who = 0; who < 3; who++) {
                list_ids(who, "role=reporter&state=all", got, sizeof(got));
                ck_assert_msg(strcmp(got, lists[who][0]) == 0, "%s reported: %s", parties[who],
                              got);
                list_ids(who, "role=receiver&state=all", got, sizeof(got));
                /* The region's list: newest filing first. */
                ck_assert_msg(strcmp(got, lists[who][1]) == 0 ||
                                  (who == VGR && strcmp(got, "22222222,11111111") == 0),
                              "%s received: %s", parties[who], got);
        }
        assert_list(GBG, "role=reporter&state=answered", "11111111");
        assert_list(GBG, "role=reporter&state=open", "");
        assert_list(VGR, "role=receiver&state=open", "22222222");
}
END_TEST

START_TEST(both_sides_see_one_timeline_and_the_answer)
{
        three_parties();
        struct reply reporter = lookup(GBG, D1), receiver = lookup(VGR, D1);
        ck_assert_int_eq(reporter.status, 200);
        ck_assert_int_eq(receiver.status, 200);
        ck_assert(json_equal(json_object_get(reporter.body, "timeline"),
                             json_object_get(receiver.body, "timeline")));
        const json_t *timeline = json_object_get(reporter.body, "timeline");
        ck_assert_int_eq(json_array_size(timeline), 4); /* reported, routed, ack, answer */
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(timeline, 1), "event")),
                         "ROUTED");
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(timeline, 1), "reason")),
                         "the test routes it");
        const json_t *answer = json_object_get(reporter.body, "answer");
        ck_assert_str_eq(json_string_value(json_object_get(answer, "action_plan")),
                         "the ward checks the unit before sending");
        ck_assert_str_eq(json_string_value(json_object_get(reporter.body, "receiver_party")),
                         "VGR");
        ck_assert(json_is_string(json_object_get(reporter.body, "dispute_until")));
        ck_assert(json_is_true(json_object_get(
            json_object_get(json_object_get(reporter.body, "deadlines"), "answer"), "kept")));
        /* The reply reference goes back to the reporter only. */
        ck_assert_str_eq(json_string_value(json_object_get(reporter.body, "reply_reference")),
                         "GBG-CASE-1");
        ck_assert_ptr_null(json_object_get(receiver.body, "reply_reference"));
        reply_free(&reporter);
        reply_free(&receiver);
}
END_TEST

START_TEST(another_partys_deviation_is_answered_as_an_unknown_one)
{
        three_parties();
        struct reply other = lookup(GBG, D3), unknown = lookup(GBG, UNKNOWN_ID);
        ck_assert_int_eq(other.status, 404);
        ck_assert_int_eq(unknown.status, 404);
        char *a = json_dumps(other.body, JSON_SORT_KEYS),
             *b = json_dumps(unknown.body, JSON_SORT_KEYS);
        /* The same text but for the id asked for. */
        char *at = strstr(a, D3), *bt = strstr(b, UNKNOWN_ID);
        ck_assert(at && bt);
        memcpy(at, UNKNOWN_ID, strlen(UNKNOWN_ID));
        ck_assert_str_eq(a, b);
        free(a);
        free(b);
        reply_free(&other);
        reply_free(&unknown);
}
END_TEST

/* ---- bad input ------------------------------------------------------------ */

static void expect(int who, const char *target, int status, const char *names)
{
        struct reply r = get(who, target);
        char *body = r.body ? json_dumps(r.body, 0) : strdup("");
        ck_assert_msg(r.status == status, "%s: %d, want %d (%s)", target, r.status, status, body);
        ck_assert_msg(!names || strstr(body, names), "%s: %s does not name %s", target, body,
                      names);
        free(body);
        reply_free(&r);
}

START_TEST(bad_requests_are_refused)
{
        three_parties();
        expect(GBG, "/v1/deviations/not-a-uuid", 400, "{id}");
        expect(-1, "/v1/deviations/" D1, 401, NULL);
        expect(-1, "/v1/deviations?role=reporter", 401, NULL);
        expect(GBG, "/v1/deviations?role=owner", 400, "role");
        expect(GBG, "/v1/deviations", 400, "role");
        expect(GBG, "/v1/deviations?role=reporter&state=pending", 400, "state");
        expect(GBG, "/v1/deviations?role=reporter&limit=501", 400, "limit");
        expect(GBG, "/v1/deviations?role=reporter&since=yesterday", 400, "since");
        char forged[256] = "/v1/deviations?role=reporter&cursor=";
        for (int i = 0; i < 59; i++)
                strcat(forged, "ab");
        expect(GBG, forged, 400, "cursor");
}
END_TEST

START_TEST(pages_follow_a_signed_cursor)
{
        three_parties();
        struct reply first = get(VGR, "/v1/deviations?role=receiver&state=all&limit=1");
        ck_assert_int_eq(first.status, 200);
        ck_assert_int_eq(json_array_size(json_object_get(first.body, "items")), 1);
        const char *cursor = json_string_value(json_object_get(first.body, "next_cursor"));
        ck_assert_ptr_nonnull(cursor);
        char target[512];
        snprintf(target, sizeof(target), "/v1/deviations?role=receiver&state=all&limit=1&cursor=%s",
                 cursor);
        struct reply second = get(VGR, target);
        ck_assert_int_eq(second.status, 200);
        ck_assert_int_eq(json_array_size(json_object_get(second.body, "items")), 1);
        ck_assert(!json_equal(json_object_get(first.body, "items"),
                              json_object_get(second.body, "items")));
        ck_assert(json_is_null(json_object_get(second.body, "next_cursor")));
        /* Another party, or another query, cannot use it. */
        expect(GBG, target, 400, "cursor");
        snprintf(target, sizeof(target), "/v1/deviations?role=reporter&state=all&limit=1&cursor=%s",
                 cursor);
        expect(VGR, target, 400, "cursor");
        /* A changed byte is a forgery. */
        snprintf(target, sizeof(target), "/v1/deviations?role=receiver&state=all&limit=1&cursor=%s",
                 cursor);
        char *last = target + strlen(target) - 1;
        *last = *last == '0' ? '1' : '0';
        expect(VGR, target, 400, "cursor");
        reply_free(&first);
        reply_free(&second);
}
END_TEST

START_TEST(an_expired_cursor_is_refused)
{
        avk_gateway_stop(gw);
        mock_kafka_set(&fx.mk, "gateway.cursor.ttl.s", "1");
        start_gateway();
        three_parties();
        struct reply first = get(VGR, "/v1/deviations?role=receiver&state=all&limit=1");
        ck_assert_int_eq(first.status, 200);
        char target[512];
        snprintf(target, sizeof(target), "/v1/deviations?role=receiver&state=all&limit=1&cursor=%s",
                 json_string_value(json_object_get(first.body, "next_cursor")));
        expect(VGR, target, 200, NULL);
        sleep(2);
        expect(VGR, target, 400, "expired");
        reply_free(&first);
}
END_TEST

START_TEST(an_unchanged_answer_is_304)
{
        three_parties();
        static const char *const targets[2] = {"/v1/deviations/" D1,
                                               "/v1/deviations?role=reporter&state=all"};
        for (int t = 0; t < 2; t++) {
                struct reply r = get(GBG, targets[t]);
                char etag[64], extra[128];
                ck_assert_str_ne(header_of(&r, "ETag", etag, sizeof(etag)), "");
                snprintf(extra, sizeof(extra), "If-None-Match: %s\r\n", etag);
                struct reply again = request(GBG, "GET", targets[t], extra, NULL);
                ck_assert_int_eq(again.status, 304);
                reply_free(&again);
                reply_free(&r);
        }
        /* A change to the deviation changes its ETag. */
        struct reply before = lookup(GBG, D1);
        char etag[64], extra[128];
        header_of(&before, "ETag", etag, sizeof(etag));
        snprintf(extra, sizeof(extra), "If-None-Match: %s\r\n", etag);
        status(D1, 4, "CLOSED", GBG, VGR, avk_clock_system_ms() - 3000,
               avk_clock_system_ms() - 1000);
        WAIT_FOR_MS(in_state(GBG, D1, "CLOSED"), 1, 10000);
        struct reply after = request(GBG, "GET", "/v1/deviations/" D1, extra, NULL);
        ck_assert_int_eq(after.status, 200);
        reply_free(&before);
        reply_free(&after);
}
END_TEST

/* ---- ownership of ids ----------------------------------------------------- */

static void ignore(void *opaque, const rd_kafka_message_t *m)
{
        (void)opaque;
        (void)m;
}

/* After D1 was filed by Göteborg: the same document again is a retry, the
 * look-up shows Göteborg's filing, and Härryda does not see it. */
static void d1_stays_goteborgs(void)
{
        ck_assert_int_eq(file_as(GBG, D1, "Göteborg's own deviation", "GBG-CASE-1"), 202);
        struct reply look = lookup(GBG, D1);
        ck_assert_int_eq(look.status, 200);
        ck_assert_str_eq(json_string_value(json_object_get(look.body, "reply_reference")),
                         "GBG-CASE-1");
        ck_assert_str_eq(json_string_value(json_object_get(look.body, "reporter_party")), "1480");
        expect(HARRYDA, "/v1/deviations/" D1, 404, NULL);
        reply_free(&look);
}

START_TEST(another_document_under_a_filed_id_is_refused_after_a_restart)
{
        WAIT_FOR_MS(ready(), 1, 10000);
        ck_assert_int_eq(file_as(GBG, D1, "Göteborg's own deviation", "GBG-CASE-1"), 202);
        wait_lookup(GBG, D1, 200);
        avk_gateway_stop(gw);
        start_gateway(); /* a new process: nothing of the first one's requests is known */
        WAIT_FOR_MS(ready(), 1, 10000);
        char *theirs = deviation(D1, HARRYDA, "Härryda's text under Göteborg's id", NULL);
        char *own_other = deviation(D1, GBG, "Göteborg's second text under its id", NULL);
        struct reply b = request(HARRYDA, "POST", "/v1/deviations", NULL, theirs);
        struct reply a = request(GBG, "POST", "/v1/deviations", NULL, own_other);
        ck_assert_int_eq(b.status, 409);
        ck_assert_int_eq(a.status, 409);
        /* One answer for the owner and anyone else. */
        ck_assert(json_equal(a.body, b.body));
        d1_stays_goteborgs();
        /* Only one document reached topic.reported. */
        ck_assert_int_eq(mock_kafka_read_all(&fx.mk, "deviation.reported", ignore, NULL), 1);
        free(theirs);
        free(own_other);
        reply_free(&a);
        reply_free(&b);
}
END_TEST

/* The gateway may not read deviation.reported (deploy/acls.conf): its view
 * knows who filed which document under an id from the receipts alone. Here
 * the cluster answers deviation.reported "not authorised" once the document
 * is in, as the brokers' ACLs do: a restarted gateway still loads, refuses
 * another document under the id, takes the same one as a retry and shows
 * its filing. */
START_TEST(ownership_after_a_restart_is_decided_without_reading_deviation_reported)
{
        WAIT_FOR_MS(ready(), 1, 10000);
        ck_assert_int_eq(file_as(GBG, D1, "Göteborg's own deviation", "GBG-CASE-1"), 202);
        wait_lookup(GBG, D1, 200);
        avk_gateway_stop(gw);
        rd_kafka_mock_topic_set_error(fx.mk.cluster, "deviation.reported",
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
        start_gateway();
        WAIT_FOR_MS(ready(), 1, 10000);
        char *theirs = deviation(D1, HARRYDA, "Härryda's text under Göteborg's id", NULL);
        struct reply b = request(HARRYDA, "POST", "/v1/deviations", NULL, theirs);
        ck_assert_int_eq(b.status, 409);
        d1_stays_goteborgs();
        free(theirs);
        reply_free(&b);
}
END_TEST

/* party's deviation without a deviation_id, filed with Idempotency-Key key:
 * the status, and the id answered in id. */
static int file_keyed(int who, const char *key, const char *description, char id[40])
{
        char *text = deviation(D1, who, description, NULL);
        json_t *doc = json_loads(text, 0, NULL);
        json_object_del(doc, "deviation_id");
        free(text);
        text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        char extra[128];
        snprintf(extra, sizeof(extra), "Idempotency-Key: %s\r\n", key);
        struct reply r = request(who, "POST", "/v1/deviations", extra, text);
        free(text);
        snprintf(id, 40, "%s",
                 r.status == 202 ? json_string_value(json_object_get(r.body, "id")) : "");
        int status = r.status;
        reply_free(&r);
        return status;
}

START_TEST(a_retry_under_an_idempotency_key_after_a_restart_is_stored_once)
{
        char first[40], again[40], other[40];
        WAIT_FOR_MS(ready(), 1, 10000);
        ck_assert_int_eq(file_keyed(GBG, "order-7", "Göteborg's keyed deviation", first), 202);
        wait_lookup(GBG, first, 200);
        avk_gateway_stop(gw);
        start_gateway(); /* a new process: its idempotency cache is empty */
        WAIT_FOR_MS(ready(), 1, 10000);
        ck_assert_int_eq(file_keyed(GBG, "order-7", "Göteborg's keyed deviation", again), 202);
        ck_assert_str_eq(again, first);
        /* The key with another document is the key's conflict. */
        ck_assert_int_eq(file_keyed(GBG, "order-7", "another text under the key", other), 422);
        /* Another party's key of the same text is its own. */
        ck_assert_int_eq(file_keyed(HARRYDA, "order-7", "Härryda's keyed deviation", other), 202);
        ck_assert_str_ne(other, first);
        wait_lookup(HARRYDA, other, 200);
        ck_assert_int_eq(mock_kafka_read_all(&fx.mk, "deviation.reported", ignore, NULL), 2);
}
END_TEST

START_TEST(a_reply_reference_is_checked)
{
        WAIT_FOR_MS(ready(), 1, 10000);
        static const char *const bad[] = {
            "19400314-1233",                                                     /* identity */
            "case 194003141233",                                                 /* inside */
            "0123456789012345678901234567890123456789012345678901234567890123x", /* 65 */
            "tab\there",
            "call 070-123 45 67", /* a phone number */
            "ask anna.svensson@example.se",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *doc = deviation(D1, GBG, "text", bad[i]);
                struct reply r = request(GBG, "POST", "/v1/deviations", NULL, doc);
                char *body = json_dumps(r.body, 0);
                ck_assert_msg(r.status == 400 && strstr(body, "reply_reference"), "%s: %d %s",
                              bad[i], r.status, body);
                free(body);
                free(doc);
                reply_free(&r);
        }
        ck_assert_int_eq(file_as(GBG, D1, "text", "TRESERVA-2026-000123"), 202);
}
END_TEST

/* ---- the dispute window --------------------------------------------------- */

/* who's response body to id with extra headers: its status, and its answer's
 * text in why (when not NULL). */
static int post_response(int who, const char *id, const char *extra, const char *body, char *why,
                         size_t why_size)
{
        char target[128];
        snprintf(target, sizeof(target), "/v1/deviations/%s/responses", id);
        struct reply r = request(who, "POST", target, extra, body);
        int code = r.status;
        if (why) {
                char *text = r.body ? json_dumps(r.body, 0) : strdup("");
                snprintf(why, why_size, "%s", text);
                free(text);
        }
        reply_free(&r);
        return code;
}

/* who's response of kind to id with comment, under the Idempotency-Key key
 * (NULL: none), answered at responded_ms: its status, and its answer's text
 * in why (when not NULL). */
static int respond_at(int who, const char *id, const char *kind, const char *comment,
                      const char *key, int64_t responded_ms, char *why, size_t why_size)
{
        char body[256], t[40], extra[128] = "";
        snprintf(body, sizeof(body),
                 "{\"party\":\"%s\",\"kind\":\"%s\",\"responded_at\":\"%s\","
                 "\"comment\":\"%s\"}",
                 parties[who], kind, iso(responded_ms, t, sizeof(t)), comment);
        if (key)
                snprintf(extra, sizeof(extra), "Idempotency-Key: %s\r\n", key);
        return post_response(who, id, extra, body, why, why_size);
}

static int respond(int who, const char *id, const char *kind, char *why, size_t why_size)
{
        return respond_at(who, id, kind, "the plan misses the evening visit", NULL,
                          avk_clock_system_ms() - 1000, why, why_size);
}

static int dispute(int who, const char *id)
{
        return respond(who, id, "DISPUTED", NULL, 0);
}

START_TEST(a_dispute_is_possible_only_within_the_window)
{
        three_parties();
        /* Before any answer: 409. */
        ck_assert_int_eq(dispute(HARRYDA, D2), 409);
        /* Only the reporter disputes. */
        ck_assert_int_eq(dispute(VGR, D1), 403);
        /* Answered a second ago under D-DEFAULT (30 days): possible. */
        ck_assert_int_eq(dispute(GBG, D1), 202);
        /* Answered 31 days ago: the window is over. */
        int64_t now = avk_clock_system_ms();
        routed(D3, 2, VGR, HARRYDA, "MANUAL", now - 40 * DAY_MS);
        responded(D3, HARRYDA, "ANSWERED", now - 31 * DAY_MS);
        status(D3, 2, "ANSWERED", VGR, HARRYDA, now - 40 * DAY_MS, now - 31 * DAY_MS);
        WAIT_FOR_MS(in_state(VGR, D3, "ANSWERED"), 1, 10000);
        ck_assert_int_eq(dispute(VGR, D3), 409);
}
END_TEST

/* ---- responses the course has overtaken ----------------------------------- */

/* 1 once the view has read who's rejection of id (a second one is refused). */
static int rejection_read(int who, const char *id)
{
        char why[1024];
        int code = respond(who, id, "REJECTED_WRONG_RECEIVER", why, sizeof(why));
        ck_assert_msg(code == 202 || code == 409, "%d %s", code, why);
        return code == 409;
}

START_TEST(a_rejection_not_from_the_current_receiver_is_409_with_the_reason)
{
        three_parties(); /* D2: Härryda's, routed to VGR, re-routed to Göteborg at hop 2 */
        char why[1024];
        ck_assert_int_eq(respond(VGR, D2, "REJECTED_WRONG_RECEIVER", why, sizeof(why)), 409);
        ck_assert_msg(strstr(why, "earlier hop") && strstr(why, "routed to 1480 (hop 2)"), "%s",
                      why);
        ck_assert_int_eq(respond(HARRYDA, D2, "REJECTED_WRONG_RECEIVER", why, sizeof(why)), 409);
        ck_assert_msg(strstr(why, "current receiver") && strstr(why, "1480"), "%s", why);
        /* A party not involved learns nothing. */
        ck_assert_int_eq(respond(GBG, D3, "REJECTED_WRONG_RECEIVER", NULL, 0), 404);
        /* The current receiver rejects once; a second rejection of the hop is 409. */
        ck_assert_int_eq(respond(GBG, D2, "REJECTED_WRONG_RECEIVER", NULL, 0), 202);
        WAIT_FOR_MS(rejection_read(GBG, D2), 1, 10000);
        ck_assert_int_eq(respond(GBG, D2, "REJECTED_WRONG_RECEIVER", why, sizeof(why)), 409);
        ck_assert_msg(strstr(why, "already"), "%s", why);
}
END_TEST

START_TEST(either_party_confirms_an_escalation_step_only_when_one_waits)
{
        three_parties(); /* D1: Göteborg's, answered by VGR */
        char why[1024];
        ck_assert_int_eq(respond(GBG, D1, "ESCALATION_CONFIRMED", why, sizeof(why)), 409);
        ck_assert_msg(strstr(why, "none pending"), "%s", why);
        ck_assert_int_eq(respond(VGR, D1, "ESCALATION_CONFIRMED", NULL, 0), 409);
        int64_t now = avk_clock_system_ms();
        status_pending(D1, 4, "DISPUTED", GBG, VGR, now - 3000, now - 1000, "LOCAL_FORUM");
        WAIT_FOR_MS(in_state(GBG, D1, "DISPUTED"), 1, 10000);
        ck_assert_int_eq(respond(GBG, D1, "ESCALATION_CONFIRMED", NULL, 0), 202);
        ck_assert_int_eq(respond(VGR, D1, "ESCALATION_CONFIRMED", NULL, 0), 202);
        ck_assert_int_eq(respond(HARRYDA, D1, "ESCALATION_CONFIRMED", NULL, 0), 404);
}
END_TEST

/* The number of timeline events of kind in who's look-up of id. */
static int events(int who, const char *id, const char *kind)
{
        struct reply r = lookup(who, id);
        int n = 0;
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(r.body, "timeline"), i, item)
        {
                n += strcmp(json_string_value(json_object_get(item, "event")), kind) == 0;
        }
        reply_free(&r);
        return n;
}

/* ---- the county's triage desk --------------------------------------------- */

/* The desk passes id on: a wrong-receiver rejection, as the region it is recorded as, that
 * names suggested (NULL: none); its status, and its answer's text in why (when not NULL). */
static int pass_on(int who, const char *id, const char *suggested, char *why, size_t why_size)
{
        char t[40];
        json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:s?}", "party", parties[who], "kind",
                                "REJECTED_WRONG_RECEIVER", "responded_at",
                                iso(avk_clock_system_ms() - 1000, t, sizeof(t)), "unit_hsa_id",
                                "SE2321000131-E000000000001", "suggested_receiver", suggested);
        char *body = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        int code = post_response(who, id, NULL, body, why, why_size);
        free(body);
        return code;
}

/* Keeps the wrong-receiver rejection read, as JSON, in *opaque. */
static void keep_rejection(void *opaque, const rd_kafka_message_t *m)
{
        json_t **rejection = opaque;
        json_t *doc = codec_fixture_decode_json(
            fx.codec, m->payload, m->len, avk_catalog_by_name(fx.catalog, "DeviationResponse"));
        if (strcmp(json_string_value(json_object_get(doc, "kind")), "REJECTED_WRONG_RECEIVER") !=
            0) {
                json_decref(doc);
                return;
        }
        ck_assert_ptr_null(*rejection);
        *rejection = doc;
}

/* The desk passes D5 on to receiver and the router routes it there at hop 2. Then
 * deviation.response holds n responses, one of them the desk's rejection: recorded as the
 * region, from the desk's unit, and - the gateway says who spoke, whatever the client sent - as
 * the desk's (responder TRIAGE_DESK). */
static void desk_passes_on(int receiver, int n)
{
        ck_assert_int_eq(pass_on(DESK, D5, subjects[receiver], NULL, 0), 202);
        WAIT_FOR_MS(events(DESK, D5, "REJECTED_WRONG_RECEIVER") == 1, 1, 10000);
        json_t *last = NULL;
        ck_assert_int_eq(mock_kafka_read_all(&fx.mk, "deviation.response", keep_rejection, &last),
                         n);
        ck_assert_str_eq(json_string_value(json_object_get(last, "party")), "VGR");
        ck_assert_str_eq(json_string_value(json_object_get(last, "unit_hsa_id")),
                         "SE2321000131-E000000000001");
        ck_assert_str_eq(json_string_value(json_object_get(last, "responder")), "TRIAGE_DESK");
        ck_assert_str_eq(json_string_value(json_object_get(last, "suggested_receiver")),
                         subjects[receiver]);
        json_decref(last);
        /* The timeline says the desk gave its responses (all the responses so far). */
        struct reply r = lookup(DESK, D5);
        size_t i;
        json_t *item;
        int by_desk = 0;
        json_array_foreach(json_object_get(r.body, "timeline"), i, item)
        {
                const char *event = json_string_value(json_object_get(item, "event"));
                const char *by = json_string_value(json_object_get(item, "responder"));
                if (strcmp(event, "ACKNOWLEDGED") == 0 ||
                    strcmp(event, "REJECTED_WRONG_RECEIVER") == 0) {
                        ck_assert_msg(by && strcmp(by, "TRIAGE_DESK") == 0,
                                      "the desk's %s says who gave it", event);
                        by_desk++;
                } else {
                        ck_assert_msg(!by, "%s has no responder", event);
                }
        }
        ck_assert_int_ge(by_desk, 1);
        reply_free(&r);
        routed(D5, 2, GBG, receiver, "REROUTED", avk_clock_system_ms() - 500);
        wait_lookup(receiver, D5, 200);
}

/* D5: Göteborg's, routed at hop 1 to the desk (receiver_party VGR, the desk's record_party). */
static void at_the_desk(void)
{
        three_parties();
        ck_assert_int_eq(file_as(GBG, D5, "Göteborg's deviation nobody takes", NULL), 202);
        routed(D5, 1, GBG, DESK, "MANUAL", avk_clock_system_ms() - 2000);
        wait_lookup(DESK, D5, 200);
}

START_TEST(the_desk_sees_the_deviations_routed_to_it_and_nothing_else)
{
        at_the_desk();
        struct reply r = lookup(DESK, D5);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(json_string_value(json_object_get(r.body, "reporter_party")), "1480");
        ck_assert_ptr_null(json_object_get(r.body, "reply_reference"));
        reply_free(&r);
        wait_lookup(GBG, D5, 200); /* the reporter sees its whole course */
        static const char *const others[] = {D1, D2, D3, UNKNOWN_ID};
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
                r = lookup(DESK, others[i]);
                ck_assert_msg(r.status == 404, "the desk looks up %s: %d", others[i], r.status);
                reply_free(&r);
        }
        assert_list(DESK, "role=receiver&state=all", "55555555");
        assert_list(DESK, "role=reporter&state=all", "");
}
END_TEST

START_TEST(the_region_is_not_the_desk)
{
        at_the_desk();
        /* The tracker's changelog names the desk's record_party as the receiver. */
        int64_t now = avk_clock_system_ms();
        status(D5, 2, "ACKNOWLEDGED", GBG, VGR, now - 2000, 0);
        WAIT_FOR_MS(in_state(DESK, D5, "ACKNOWLEDGED"), 1, 10000);
        struct reply r = lookup(VGR, D5);
        ck_assert_int_eq(r.status, 404);
        reply_free(&r);
        char got[256];
        list_ids(VGR, "role=receiver&state=all", got, sizeof(got));
        ck_assert_msg(!strstr(got, "55555555"), "the region's list: %s", got);
        static const char *const kinds[] = {"ACKNOWLEDGED", "ANSWERED", "REJECTED_WRONG_RECEIVER",
                                            "ESCALATION_CONFIRMED"};
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                ck_assert_msg(respond(VGR, D5, kinds[i], NULL, 0) == 404, "%s", kinds[i]);
        ck_assert_int_eq(pass_on(VGR, D5, "1401", NULL, 0), 404);
}
END_TEST

START_TEST(the_desk_acknowledges_and_passes_on_a_deviation_at_it)
{
        at_the_desk();
        char why[1024];
        ck_assert_int_eq(respond(DESK, D5, "ACKNOWLEDGED", why, sizeof(why)), 202);
        /* Passing on names the receiver: without one the router would keep it at the desk. */
        ck_assert_int_eq(pass_on(DESK, D5, NULL, why, sizeof(why)), 400);
        ck_assert_msg(strstr(why, "suggested_receiver"), "%s", why);
        desk_passes_on(HARRYDA, 4);
        /* Routed on: the desk's turn is over, and it still sees the course. */
        ck_assert_int_eq(respond(DESK, D5, "ANSWERED", why, sizeof(why)), 409);
        ck_assert_msg(strstr(why, "routed on") && strstr(why, "routed to 1401 (hop 2)"), "%s", why);
        wait_lookup(DESK, D5, 200);
}
END_TEST

START_TEST(the_desk_answers_only_at_its_hop_and_as_no_one_else)
{
        at_the_desk();
        char why[1024];
        /* Deviations not at the desk: unknown to it. */
        ck_assert_int_eq(respond(DESK, D1, "ACKNOWLEDGED", NULL, 0), 404);
        ck_assert_int_eq(pass_on(DESK, D2, "1401", NULL, 0), 404);
        /* It responds as the party its routing records, not as another. */
        ck_assert_int_eq(pass_on(GBG, D5, "1401", NULL, 0), 409);
        ck_assert_int_eq(post_response(DESK, D5, NULL,
                                       "{\"party\":\"1480\",\"kind\":\"ACKNOWLEDGED\"}", why,
                                       sizeof(why)),
                         403);
        ck_assert_msg(strstr(why, "not the token's party VGR"), "%s", why);
        /* It neither disputes nor confirms a step of the parties' ladder, nor files. */
        ck_assert_int_eq(respond(DESK, D5, "DISPUTED", NULL, 0), 403);
        ck_assert_int_eq(respond(DESK, D5, "ESCALATION_CONFIRMED", NULL, 0), 403);
        char *doc = deviation(UNKNOWN_ID, GBG, "the desk's own", NULL);
        struct reply r = request(DESK, "POST", "/v1/deviations", NULL, doc);
        free(doc);
        ck_assert_int_eq(r.status, 403);
        reply_free(&r);
        /* D2 goes to the desk after Göteborg's turn: the region, an earlier receiver, is late. */
        routed(D2, 3, HARRYDA, DESK, "MANUAL", avk_clock_system_ms() - 1000);
        wait_lookup(DESK, D2, 200);
        ck_assert_int_eq(pass_on(VGR, D2, "1401", why, sizeof(why)), 409);
        ck_assert_msg(strstr(why, "routed on") && strstr(why, "routed to DESK (hop 3)"), "%s", why);
        ck_assert_int_eq(respond(GBG, D2, "ACKNOWLEDGED", NULL, 0), 409);
        ck_assert_int_eq(respond(HARRYDA, D2, "ACKNOWLEDGED", NULL, 0), 403);
        ck_assert_int_eq(respond(DESK, D2, "ACKNOWLEDGED", NULL, 0), 202);
}
END_TEST

/* Issue 16: the desk, a joint function of both parties, passes a deviation to the region whose
 * name it answers in; the region then answers as any receiver, its own "wrong receiver" too. */
START_TEST(the_desk_passes_a_deviation_to_the_region_it_answers_for)
{
        at_the_desk();
        char why[1024];
        /* The region receives it, and the desk's rejection in the region's name is no
         * rejection of the region's hop. */
        desk_passes_on(VGR, 3);
        ck_assert_int_eq(respond(DESK, D5, "ACKNOWLEDGED", why, sizeof(why)), 409);
        ck_assert_int_eq(respond(VGR, D5, "REJECTED_WRONG_RECEIVER", why, sizeof(why)), 202);
}
END_TEST

/* Who speaks is the token's: a party cannot answer as the desk, nor the desk as a party. */
START_TEST(only_the_desks_token_responds_as_the_desk)
{
        at_the_desk();
        char why[1024], t[40], body[512];
        snprintf(body, sizeof(body),
                 "{\"party\":\"VGR\",\"responder\":\"TRIAGE_DESK\",\"kind\":"
                 "\"REJECTED_WRONG_RECEIVER\",\"responded_at\":\"%s\",\"suggested_receiver\":"
                 "\"VGR\"}",
                 iso(avk_clock_system_ms() - 1000, t, sizeof(t)));
        ck_assert_int_eq(post_response(VGR, D1, NULL, body, why, sizeof(why)), 403);
        ck_assert_msg(strstr(why, "responder: TRIAGE_DESK is the county's triage desk; the token "
                                  "is party VGR"),
                      "%s", why);
        snprintf(body, sizeof(body),
                 "{\"party\":\"VGR\",\"responder\":\"PARTY\",\"kind\":\"ACKNOWLEDGED\","
                 "\"responded_at\":\"%s\"}",
                 iso(avk_clock_system_ms() - 1000, t, sizeof(t)));
        ck_assert_int_eq(post_response(DESK, D5, NULL, body, why, sizeof(why)), 403);
        ck_assert_msg(strstr(why, "responder: \\\"PARTY\\\" is not the token's"), "%s", why);
        /* Nothing was filed: the fixture's two responses only. */
        ck_assert_int_eq(mock_kafka_read_all(&fx.mk, "deviation.response", ignore, NULL), 2);
}
END_TEST

START_TEST(a_retried_response_after_a_restart_gets_the_first_answer_and_is_stored_once)
{
        three_parties(); /* D2: Härryda's, routed on to Göteborg */
        char first[1024], again[1024];
        int64_t at = avk_clock_system_ms() - 1000;
        ck_assert_int_eq(respond_at(GBG, D2, "REJECTED_WRONG_RECEIVER", "not ours", "reject-1", at,
                                    first, sizeof(first)),
                         202);
        WAIT_FOR_MS(events(GBG, D2, "REJECTED_WRONG_RECEIVER") == 1, 1, 10000);
        avk_gateway_stop(gw);
        start_gateway(); /* its idempotency cache is empty; the view reads the rejection again */
        WAIT_FOR_MS(ready(), 1, 10000);
        ck_assert_int_eq(respond_at(GBG, D2, "REJECTED_WRONG_RECEIVER", "not ours", "reject-1", at,
                                    again, sizeof(again)),
                         202);
        json_t *a = json_loads(first, 0, NULL), *b = json_loads(again, 0, NULL);
        ck_assert_str_eq(json_string_value(json_object_get(a, "id")),
                         json_string_value(json_object_get(b, "id")));
        json_decref(a);
        json_decref(b);
        /* The key with another response is its conflict. */
        ck_assert_int_eq(respond_at(GBG, D2, "REJECTED_WRONG_RECEIVER", "not ours at all",
                                    "reject-1", at, NULL, 0),
                         422);
        /* Two responses of the fixture and the rejection, once. */
        ck_assert_int_eq(mock_kafka_read_all(&fx.mk, "deviation.response", ignore, NULL), 3);
}
END_TEST

/* Issue 18 point 2: a gateway started while the Schema Registry has no answer
 * for a writer schema in its lifecycle topics is not ready (its view waits at
 * that record, docs/operations.md "While the Schema Registry is down") and
 * is ready, the record read, once the registry answers. */
START_TEST(readyz_is_503_while_the_view_waits_for_the_schema_registry)
{
        struct fake_registry *registry = fake_registry_start_or_fail();
        avk_registry_t *writer_registry = codec_fixture_registry(fake_registry_url(registry));
        avk_codec_t *single_object = fx.codec;
        fx.codec = codec_fixture_codec(fx.catalog, writer_registry);
        routed(D3, 1, VGR, HARRYDA, "AGREEMENT_RULE", avk_clock_system_ms());
        avk_codec_destroy(fx.codec);
        fx.codec = single_object;
        avk_registry_destroy(writer_registry);
        avk_gateway_stop(gw);
        mock_kafka_set(&fx.mk, "schema.registry.url", fake_registry_url(registry));
        fake_registry_set_mode(registry, FAKE_REGISTRY_FAIL_500);
        start_gateway();
        int asked = fake_registry_seen(registry).requests;
        WAIT_FOR_MS(fake_registry_seen(registry).requests, asked + 1, 20000);
        usleep(1500000); /* asked again after 200, 400 and 800 ms; a view that skipped is loaded */
        struct reply r = get(-1, "/readyz");
        ck_assert_int_eq(r.status, 503);
        ck_assert_str_eq(json_string_value(json_object_get(r.body, "view")), "loading");
        reply_free(&r);
        ck_assert_int_ge(fake_registry_seen(registry).requests, asked + 3);
        fake_registry_set_mode(registry, FAKE_REGISTRY_NORMAL);
        WAIT_FOR_MS(ready(), 1, 20000);
        wait_lookup(HARRYDA, D3, 200);
        avk_gateway_stop(gw);
        gw = NULL;
        fake_registry_stop(registry);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("gateway_lookup");
        TCase *tc = tcase_create("lookup");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, each_party_sees_what_it_reported_or_was_routed);
        tcase_add_test(tc, both_sides_see_one_timeline_and_the_answer);
        tcase_add_test(tc, another_partys_deviation_is_answered_as_an_unknown_one);
        tcase_add_test(tc, bad_requests_are_refused);
        tcase_add_test(tc, pages_follow_a_signed_cursor);
        tcase_add_test(tc, an_expired_cursor_is_refused);
        tcase_add_test(tc, an_unchanged_answer_is_304);
        tcase_add_test(tc, another_document_under_a_filed_id_is_refused_after_a_restart);
        tcase_add_test(tc, ownership_after_a_restart_is_decided_without_reading_deviation_reported);
        tcase_add_test(tc, a_reply_reference_is_checked);
        tcase_add_test(tc, a_retry_under_an_idempotency_key_after_a_restart_is_stored_once);
        tcase_add_test(tc, a_dispute_is_possible_only_within_the_window);
        tcase_add_test(tc, a_rejection_not_from_the_current_receiver_is_409_with_the_reason);
        tcase_add_test(tc, either_party_confirms_an_escalation_step_only_when_one_waits);
        tcase_add_test(tc,
                       a_retried_response_after_a_restart_gets_the_first_answer_and_is_stored_once);
        tcase_add_test(tc, readyz_is_503_while_the_view_waits_for_the_schema_registry);
        tcase_add_test(tc, the_desk_sees_the_deviations_routed_to_it_and_nothing_else);
        tcase_add_test(tc, the_region_is_not_the_desk);
        tcase_add_test(tc, the_desk_acknowledges_and_passes_on_a_deviation_at_it);
        tcase_add_test(tc, the_desk_answers_only_at_its_hop_and_as_no_one_else);
        tcase_add_test(tc, the_desk_passes_a_deviation_to_the_region_it_answers_for);
        tcase_add_test(tc, only_the_desks_token_responds_as_the_desk);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
