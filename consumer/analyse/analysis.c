/*
 * avk_analysis: see analysis.h; the mapping, the sink protocol and the
 * policy are in docs/analysis.md.
 *
 * One thread runs everything, as in the notifier (notify.c): the consumer's
 * queue, the producer's delivery reports and libcurl's multi handle for the
 * sink, asleep in curl_multi_poll() until a socket, the Kafka queues (through
 * a pipe), a due retry or avk_analysis_stop() wakes it.
 *
 * Every input record is a job in its partition's list for its topic, in
 * offset order. A job moves
 *   (WAITING for its deviation, status records only) -> PRODUCING (its
 *   AnalysisRecord on the way to topic.analysis) -> SINK_QUEUED -> IN_BATCH
 *   -> DONE,
 * skipping the sink states without a sink. A record Kafka refused goes back
 * to PRODUCE_DUE; an input that cannot be forwarded, or a record whose batch
 * spent its retry budget, goes DEAD_DUE -> DEAD_SENT (the dead letter
 * produced, waiting for Kafka's acknowledgement) -> DONE. Offsets advance
 * over the DONE head of each list only.
 *
 * The deviation's view that every record shares (pseudonym, age band, sex,
 * municipality, event class, times of the report, scrubbed description) is
 * worked out once from its DeviationReported and kept in a bounded map
 * (avk_idcache) as the JSON text of those fields: a DeviationStatus carries
 * none of them. topic.reported is read from the beginning of every assigned
 * partition to fill the map; records before the group's committed offset only
 * fill it, the others are also forwarded as REPORTED. Since the tracker writes
 * a status only after the router read the deviation, a status whose deviation
 * is still unknown analysis.deviation.wait.ms after it arrived, with
 * topic.reported's partition read to its end since, is not coming (evicted, or
 * never filed) and is dead-lettered.
 */
#include "consumer/analyse/analysis.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/contract/codec.h"
#include "common/util/env.h"
#include "common/util/idcache.h"
#include "common/contract/ident.h"
#include "common/contract/json.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"
#include "common/contract/municipality.h"
#include "common/util/secret.h"
#include "common/kafka/copartition.h"
#include "consumer/analyse/pseudonym.h"
#include "common/kafka/pump.h"
#include "common/util/scrub.h"
#include "common/http/webhook.h"

#define COMPONENT  "analysis"
#define USER_AGENT "avvik-analyse/0.1"
/* The sink's X-Avvik-Event-Type, signed with each batch: the record name of its lines. */
#define SINK_EVENT_TYPE      "AnalysisRecord"
#define TAKE_MAX             500 /* records taken from the consumer per round */
#define WAITING_CHECK_MS     100 /* how often waiting statuses look at the clock */
#define LAG_EVERY_MS         1000
#define PRODUCE_RETRY_MS     500
#define COMMITTED_TIMEOUT_MS 10000
#define ID_SIZE              40
#define STATE_SIZE           16
#define REASON_SIZE          256
#define DESCRIPTION_MAX      8000 /* characters: AnalysisRecord.description_scrubbed's avk.maxLength */
#define SECRET_MIN           32

/* UUID version 5 namespaces (fixed forever: changing one makes every replay
 * look new downstream). AnalysisRecord.record_id: the name is
 * "<deviation_id>/<state>/<version>". Sink batch ids: the name is the
 * batch's record ids, each followed by '\n'. */
static const char record_namespace[] = "c5a1f0d2-6e4b-5a93-8d27-1b9e3f4c7a60";
static const char batch_namespace[] = "4e2d8b17-9c3a-5f60-a1d4-7b8e2c9f0a35";

enum input { IN_REPORTED, IN_STATUS, IN_CNT };

enum state { WAITING, PRODUCE_DUE, PRODUCING, SINK_QUEUED, IN_BATCH, DEAD_DUE, DEAD_SENT, DONE };

struct job {
        struct job *next;       /* the next input of its partition and topic; orphans */
        struct job *queue_next; /* the sink queue */
        enum input input;
        enum state state;
        int32_t partition;
        int64_t offset;
        void *key, *payload; /* the input as read, until its record exists */
        size_t key_len, payload_len;
        json_t *status; /* a DeviationStatus waiting for its deviation */
        char deviation_id[ID_SIZE], record_id[ID_SIZE], batch_id[ID_SIZE];
        char state_name[STATE_SIZE];
        void *record; /* the AnalysisRecord as produced */
        size_t record_len;
        char *line; /* its JSON, for the sink */
        size_t line_len;
        int64_t arrived_at, next_attempt_at, queued_at;
        uint64_t eof_seq; /* topic.reported ends seen on the partition at arrival */
        int acks_pending, ack_failed, orphaned;
        const char *dead_kind; /* metric label of the dead letter */
        char reason[REASON_SIZE];
};

struct batch {
        struct batch *next;
        struct job **jobs;
        size_t cnt;
        char id[ID_SIZE];
        char *body;
        size_t body_len;
        int attempts;
        int64_t next_attempt_at, attempt_started_at;
        CURL *easy;
        struct curl_slist *headers;
        char curl_error[CURL_ERROR_SIZE];
};

struct list {
        struct job *head, *tail;
};

struct part {
        struct list in[IN_CNT];
        int assigned[IN_CNT];
        int64_t forward_from;      /* topic.reported: offsets below were forwarded before */
        uint64_t reported_eof_seq; /* times topic.reported's partition was read to its end */
        int reported_at_end;       /* nothing read from topic.reported since its last end */
};

struct avk_analysis {
        const avk_config_t *cfg;
        struct avk_env env;
        avk_codec_t *codec;
        const avk_schema_t *schema[IN_CNT], *record_schema;
        avro_value_t value[IN_CNT], record_value;
        avk_pseudonym_t *pseudonym;
        struct avk_secret sink_secret;
        struct avk_pump pump;
        const char *topic[IN_CNT], *topic_analysis, *topic_deadletter;
        const char *sink_url, *ca_location;
        int64_t timeout_ms, connect_timeout_ms, retry_max, backoff_ms, backoff_max_ms, wait_ms,
            linger_ms;
        size_t batch_max, sink_max_in_flight, max_held;
        struct part *parts;
        int part_cnt;
        avk_idcache_t *cache;
        struct job *queue_head, *queue_tail;
        size_t queued;
        struct batch *batches;
        size_t batch_cnt;
        struct job *orphans; /* dropped at a rebalance with a produce in flight */
        size_t held[IN_CNT];
        int paused[IN_CNT];
        uint64_t rng;
        int64_t next_lag_at;
        atomic_int consuming;
        atomic_uint_fast64_t forwarded, dead_lettered, sink_batches, sink_attempts, held_now,
            cached_now;
        avk_metric_family_t *m_records, *m_dead, *m_batches, *m_attempts, *m_retries, *m_latency,
            *m_scrubbed, *m_unparsed, *m_lag, *m_held, *m_cached;
};

/* ---- the records -------------------------------------------------------- */

/* The Subregion symbol of a municipality's sub-region (municipality.h). */
static const char *subregion_symbol(const char *municipality_code)
{
        static const struct {
                const char *name, *symbol;
        } map[] = {{"Fyrbodal", "FYRBODAL"},
                   {"Göteborgsregionen", "GOTEBORGSREGIONEN"},
                   {"Skaraborg", "SKARABORG"},
                   {"Sjuhärad", "SJUHARAD"}};
        const struct avk_municipality *m = avk_municipality_find(municipality_code);
        for (size_t i = 0; m && i < sizeof(map) / sizeof(map[0]); i++)
                if (strcmp(m->subregion, map[i].name) == 0)
                        return map[i].symbol;
        return "UNKNOWN";
}

/* Cuts s after max characters (UTF-8: a character starts at every byte that
 * is not 10xxxxxx), never inside one. */
static void cut_characters(char *s, size_t max)
{
        size_t chars = 0;
        for (char *p = s; *p; p++) {
                if (((unsigned char)*p & 0xc0) != 0x80 && chars++ == max) {
                        *p = '\0';
                        return;
                }
        }
}

static const char *str(const json_t *obj, const char *key)
{
        return json_string_value(json_object_get(obj, key));
}

static json_t *nullable(json_t *value)
{
        return value ? json_incref(value) : json_null();
}

/*
 * The fields of every record of the deviation in rep (a DeviationReported as
 * JSON): what the analysis stream may know of it. Free text other than the
 * scrubbed description is never copied. NULL when out of memory.
 */
static json_t *deviation_view(avk_analysis_t *a, const json_t *rep,
                              struct avk_scrub_counts *scrubbed, int *unparsed)
{
        const json_t *patient = json_object_get(rep, "patient");
        const json_t *harm = json_object_get(rep, "harm"), *flags = json_object_get(rep, "flags");
        const char *description = str(rep, "description");
        int64_t occurred_ms = 0;
        avk_json_parse_time(str(rep, "occurred_at"), &occurred_ms);
        struct avk_pseudonym_patient who;
        if (avk_pseudonym_patient(a->pseudonym, str(patient, "personal_id"),
                                  str(patient, "age_group"), str(patient, "sex"), occurred_ms,
                                  &who) != 0)
                return NULL;
        *unparsed = who.identity_unparsed;
        char *clean = avk_scrub_text(description ? description : "",
                                     description ? strlen(description) : 0, NULL, scrubbed);
        if (!clean)
                return NULL;
        cut_characters(clean, DESCRIPTION_MAX);
        const char *municipality = str(rep, "municipality_code");
        json_t *view = json_pack(
            "{s:O?,s:s?,s:s,s:s,s:O?,s:s,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:{s:O?,s:O?,s:O?},s:"
            "s}",
            "deviation_id", json_object_get(rep, "deviation_id"), "patient_pseudonym",
            who.has_pseudonym ? who.pseudonym : NULL, "age_group", who.age_group, "sex", who.sex,
            "municipality_code", json_object_get(rep, "municipality_code"), "subregion",
            subregion_symbol(municipality), "category", json_object_get(rep, "category"),
            "event_class", json_object_get(rep, "event_class"), "harm_level",
            json_object_get(harm, "level"), "psychological_harm",
            json_object_get(harm, "psychological"), "reporter_party",
            json_object_get(json_object_get(rep, "reporter"), "party"), "occurred_at",
            json_object_get(rep, "occurred_at"), "reported_at", json_object_get(rep, "reported_at"),
            "flags", "possible_lex_maria", json_object_get(flags, "possible_lex_maria"),
            "possible_lex_sarah", json_object_get(flags, "possible_lex_sarah"), "child_involved",
            json_object_get(flags, "child_involved"), "description_scrubbed", clean);
        explicit_bzero(&who, sizeof(who));
        free(clean);
        return view;
}

/* Sets the identity fields of record: record_id, state, version, state_at. */
static int identify(json_t *record, const char *deviation_id, const char *state, int version,
                    json_t *state_at, char record_id[ID_SIZE])
{
        char name[96];
        int n = snprintf(name, sizeof(name), "%s/%s/%d", deviation_id ? deviation_id : "", state,
                         version);
        if (!deviation_id || n < 0 || (size_t)n >= sizeof(name) ||
            avk_ident_uuid5(record_namespace, name, (size_t)n, record_id) != 0)
                return -1;
        return json_object_set_new(record, "record_id", json_string(record_id)) != 0 ||
               json_object_set_new(record, "state", json_string(state)) != 0 ||
               json_object_set_new(record, "version", json_integer(version)) != 0 ||
               json_object_set(record, "state_at", state_at ? state_at : json_null()) != 0;
}

/* The REPORTED record: the view as the report left it, nothing routed yet. */
static json_t *reported_record(const json_t *view, char record_id[ID_SIZE])
{
        json_t *r = json_deep_copy(view);
        if (!r || identify(r, str(view, "deviation_id"), "REPORTED", 0,
                           json_object_get(view, "reported_at"), record_id) != 0) {
                json_decref(r);
                return NULL;
        }
        return r;
}

/* A record for the state change in status, on the deviation's view. The
 * routing in force decides category, harm, receiver and Lex Maria. */
static json_t *status_record(const json_t *view, const json_t *status, char record_id[ID_SIZE])
{
        json_t *r = json_deep_copy(view);
        json_t *flags = json_object_get(r, "flags");
        json_int_t version = json_integer_value(json_object_get(status, "version"));
        const char *state = str(status, "state");
        if (!r || !state || !json_is_object(flags) || version < 1 || version > INT32_MAX ||
            identify(r, str(status, "deviation_id"), state, (int)version,
                     json_object_get(status, "changed_at"), record_id) != 0)
                goto fail;
        static const char *const copied[][2] = {
            {"category", "category"},
            {"harm_level", "harm_level"},
            {"reporter_party", "reporter_party"},
            {"receiver_party", "receiver_party"},
            {"time_to_acknowledge_ms", "time_to_acknowledge_ms"},
            {"time_to_answer_ms", "time_to_answer_ms"},
            {"acknowledge_deadline_at", "acknowledge_deadline_at"},
            {"answer_deadline_at", "answer_deadline_at"},
            {"overdue", "overdue"},
            {"deadline_kept", "deadline_kept"},
            {"highest_escalation_step", "escalation_step"},
        };
        for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++)
                if (json_object_set_new(r, copied[i][0],
                                        nullable(json_object_get(status, copied[i][1]))) != 0)
                        goto fail;
        if (json_object_set_new(flags, "possible_lex_maria",
                                nullable(json_object_get(status, "possible_lex_maria"))) != 0)
                goto fail;
        return r;
fail:
        json_decref(r);
        return NULL;
}

/* ---- metrics and logging ----------------------------------------------- */

static void count(avk_metric_family_t *family, const char *label)
{
        avk_metric_add(avk_metrics_series(family, label ? (const char *[]){label} : NULL), 1);
}

/* ---- jobs -------------------------------------------------------------- */

static void job_free(struct job *j)
{
        json_decref(j->status);
        free(j->key);
        free(j->payload);
        free(j->record);
        free(j->line);
        free(j);
}

static void drop_input(struct job *j)
{
        free(j->key);
        free(j->payload);
        j->key = j->payload = NULL;
        json_decref(j->status);
        j->status = NULL;
}

static int ensure_part(avk_analysis_t *a, int32_t partition)
{
        struct part *parts = avk_pump_grow(a->parts, &a->part_cnt, sizeof(*parts), partition);
        if (!parts)
                return -1;
        a->parts = parts;
        return 0;
}

static struct job *job_new(avk_analysis_t *a, enum input input, const rd_kafka_message_t *m)
{
        struct job *j = calloc(1, sizeof(*j));
        if (!j || ensure_part(a, m->partition) != 0 ||
            avk_pump_copy(m, &j->key, &j->key_len, &j->payload, &j->payload_len) != 0) {
                if (j)
                        job_free(j);
                snprintf(a->pump.fatal, sizeof(a->pump.fatal), "out of memory");
                return NULL;
        }
        j->input = input;
        j->partition = m->partition;
        j->offset = m->offset;
        j->arrived_at = avk_pump_mono_ms();
        struct part *part = &a->parts[m->partition];
        j->eof_seq = part->reported_eof_seq;
        struct list *l = &part->in[input];
        if (l->tail)
                l->tail->next = j;
        else
                l->head = j;
        l->tail = j;
        a->held[input]++;
        return j;
}

static void dead_letter(avk_analysis_t *a, struct job *j, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sends j to the dead-letter topic: the input as read, or, once j has a
 * record (a sink that would not take it), the record. */
static void dead_letter(avk_analysis_t *a, struct job *j, const char *kind, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->reason, sizeof(j->reason), fmt, ap);
        va_end(ap);
        j->dead_kind = kind;
        j->state = DEAD_DUE;
        j->next_attempt_at = avk_pump_mono_ms();
        avk_log(AVK_LOG_ERROR, COMPONENT,
                "%s [%d] offset %" PRId64 ": deviation %s goes to the dead-letter topic: %s",
                a->topic[j->input], (int)j->partition, j->offset,
                j->deviation_id[0] ? j->deviation_id : "-", j->reason);
}

static void send_dead_letter(avk_analysis_t *a, struct job *j, int64_t now)
{
        rd_kafka_headers_t *h =
            avk_pump_deadletter_headers(j->reason, a->topic[j->input], j->partition, j->offset);
        if (j->record_id[0])
                rd_kafka_header_add(h, "avk-record-id", -1, j->record_id, -1);
        if (j->batch_id[0])
                rd_kafka_header_add(h, "avk-batch-id", -1, j->batch_id, -1);
        int with_record = j->record != NULL;
        const void *key = with_record ? (const void *)j->deviation_id : j->key;
        size_t key_len = with_record ? strlen(j->deviation_id) : j->key_len;
        void *value = with_record ? j->record : j->payload;
        size_t value_len = with_record ? j->record_len : j->payload_len;
        rd_kafka_resp_err_t e = rd_kafka_producev(
            a->pump.producer, RD_KAFKA_V_TOPIC(a->topic_deadletter), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(j), RD_KAFKA_V_END);
        if (e) {
                rd_kafka_headers_destroy(h);
                avk_log(AVK_LOG_WARN, COMPONENT, "%s [%d] offset %" PRId64 ": dead letter: %s",
                        a->topic[j->input], (int)j->partition, j->offset, rd_kafka_err2str(e));
                j->next_attempt_at = now + PRODUCE_RETRY_MS;
                return;
        }
        j->state = DEAD_SENT;
        j->acks_pending = 1;
}

static void produce_record(avk_analysis_t *a, struct job *j, int64_t now)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        rd_kafka_header_add(h, AVK_HDR_ID, -1, j->record_id, -1);
        rd_kafka_header_add(h, AVK_HDR_TYPE, -1, "AnalysisRecord", -1);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            a->pump.producer, RD_KAFKA_V_TOPIC(a->topic_analysis),
            RD_KAFKA_V_KEY(j->deviation_id, strlen(j->deviation_id)),
            RD_KAFKA_V_VALUE(j->record, j->record_len), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(j), RD_KAFKA_V_END);
        if (e) {
                rd_kafka_headers_destroy(h);
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        avk_log(AVK_LOG_WARN, COMPONENT, "record %s: %s; retrying", j->record_id,
                                rd_kafka_err2str(e));
                j->state = PRODUCE_DUE;
                j->next_attempt_at = now + PRODUCE_RETRY_MS;
                return;
        }
        j->state = PRODUCING;
        j->acks_pending = 1;
}

static void finish(avk_analysis_t *a, struct job *j)
{
        j->state = DONE;
        atomic_fetch_add(&a->forwarded, 1);
        count(a->m_records, j->state_name);
}

static void on_produced(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        avk_analysis_t *a = opaque;
        struct job *j = m->_private;
        j->acks_pending--;
        if (j->orphaned) {
                if (j->acks_pending > 0)
                        return;
                for (struct job **p = &a->orphans; *p; p = &(*p)->next) {
                        if (*p == j) {
                                *p = j->next;
                                break;
                        }
                }
                job_free(j);
                return;
        }
        if (m->err)
                avk_log(AVK_LOG_WARN, COMPONENT, "%s: not acknowledged: %s; retrying",
                        rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        if (j->state == DEAD_SENT) {
                if (m->err) {
                        j->state = DEAD_DUE;
                        j->next_attempt_at = avk_pump_mono_ms() + PRODUCE_RETRY_MS;
                        return;
                }
                j->state = DONE;
                atomic_fetch_add(&a->dead_lettered, 1);
                avk_metric_add(avk_metrics_series(
                                   a->m_dead, (const char *[]){a->topic[j->input], j->dead_kind}),
                               1);
                return;
        }
        if (m->err) {
                j->state = PRODUCE_DUE;
                j->next_attempt_at = avk_pump_mono_ms() + PRODUCE_RETRY_MS;
                return;
        }
        if (!a->sink_url) {
                finish(a, j);
                return;
        }
        j->state = SINK_QUEUED;
        j->queued_at = avk_pump_mono_ms();
        j->queue_next = NULL;
        if (a->queue_tail)
                a->queue_tail->queue_next = j;
        else
                a->queue_head = j;
        a->queue_tail = j;
        a->queued++;
}

/* Encodes record for j and sends it; a record that breaks the contract is dead-lettered. */
static void forward(avk_analysis_t *a, struct job *j, json_t *record, int64_t now)
{
        char err[512];
        struct avk_errors errs;
        avk_errors_init(&errs);
        /* avk.format and length rules of the contract: a party, a municipality
         * or an id that is not one never reaches the stream (it could be
         * anything - a personnummer in a mistyped field). */
        struct avk_json_opts opts = {.flags = AVK_JSON_VALIDATE};
        const void *buf;
        size_t len;
        json_t *shaped = NULL;
        if (avk_json_to_avro(a->record_schema, record, &a->record_value, &opts, &errs) != 0) {
                avk_errors_join(&errs, err, sizeof(err));
                dead_letter(a, j, "invalid", "not forwardable: %s", err);
                return;
        }
        if (avk_codec_encode(a->codec, a->topic_analysis, a->record_schema, &a->record_value, &buf,
                             &len, err, sizeof(err)) != 0 ||
            !(shaped = avk_json_from_avro(a->record_schema, &a->record_value, err, sizeof(err)))) {
                /* The registry or memory: the same input will do next time. */
                avk_log(AVK_LOG_WARN, COMPONENT, "record %s: %s; retrying", j->record_id, err);
                j->state = PRODUCE_DUE;
                j->next_attempt_at = now + PRODUCE_RETRY_MS;
                return;
        }
        j->line = json_dumps(shaped, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(shaped);
        j->record = malloc(len ? len : 1);
        if (!j->line || !j->record) {
                snprintf(a->pump.fatal, sizeof(a->pump.fatal), "out of memory");
                return;
        }
        memcpy(j->record, buf, len);
        j->record_len = len;
        j->line_len = strlen(j->line);
        drop_input(j);
        produce_record(a, j, now);
}

/* ---- inputs ------------------------------------------------------------ */

static json_t *decode(avk_analysis_t *a, enum input input, const void *payload, size_t len,
                      char *err, size_t err_size)
{
        if (avk_codec_decode(a->codec, payload, len, a->schema[input], &a->value[input], err,
                             err_size) != 0)
                return NULL;
        return avk_json_from_avro(a->schema[input], &a->value[input], err, err_size);
}

static void on_reported(avk_analysis_t *a, const rd_kafka_message_t *m)
{
        char err[512], record_id[ID_SIZE];
        if (ensure_part(a, m->partition) != 0) {
                snprintf(a->pump.fatal, sizeof(a->pump.fatal), "out of memory");
                return;
        }
        struct part *part = &a->parts[m->partition];
        part->reported_at_end = 0;
        /* Below the committed offset a record only fills the map: it was forwarded before. */
        int forwarding = m->offset >= part->forward_from;
        struct job *j = forwarding ? job_new(a, IN_REPORTED, m) : NULL;
        if (forwarding && !j)
                return;
        json_t *rep = decode(a, IN_REPORTED, m->payload, m->len, err, sizeof(err));
        json_t *view = NULL, *record = NULL;
        struct avk_scrub_counts scrubbed = {0};
        int unparsed = 0;
        if (!rep) {
                if (j)
                        dead_letter(a, j, "undecodable", "undecodable: %s", err);
                return;
        }
        if (!(view = deviation_view(a, rep, &scrubbed, &unparsed)) ||
            !(record = reported_record(view, record_id))) {
                if (j)
                        dead_letter(a, j, "invalid", "not forwardable: deviation_id or memory");
                goto out;
        }
        const char *id = str(view, "deviation_id");
        char *text = json_dumps(view, JSON_COMPACT);
        if (!text || avk_idcache_put(a->cache, id, text, strlen(text)) != 0)
                snprintf(a->pump.fatal, sizeof(a->pump.fatal), "out of memory");
        free(text);
        if (!j)
                goto out;
        snprintf(j->deviation_id, sizeof(j->deviation_id), "%s", id);
        snprintf(j->record_id, sizeof(j->record_id), "%s", record_id);
        snprintf(j->state_name, sizeof(j->state_name), "REPORTED");
        avk_metric_add(avk_metrics_series(a->m_scrubbed, (const char *[]){"personnummer"}),
                       (int64_t)scrubbed.personal_ids);
        avk_metric_add(avk_metrics_series(a->m_scrubbed, (const char *[]){"telefon"}),
                       (int64_t)scrubbed.phones);
        avk_metric_add(avk_metrics_series(a->m_scrubbed, (const char *[]){"e-post"}),
                       (int64_t)scrubbed.emails);
        if (unparsed)
                count(a->m_unparsed, NULL);
        forward(a, j, record, avk_pump_mono_ms());
out:
        json_decref(record);
        json_decref(view);
        json_decref(rep);
}

/* Forwards a waiting status once its deviation is known. */
static void resolve(avk_analysis_t *a, struct job *j, int64_t now)
{
        size_t len;
        const char *text = avk_idcache_get(a->cache, j->deviation_id, &len);
        if (!text) {
                const struct part *part = &a->parts[j->partition];
                if ((part->reported_eof_seq > j->eof_seq || part->reported_at_end) &&
                    now - j->arrived_at >= a->wait_ms)
                        dead_letter(a, j, "missing_deviation", "deviation not found in %s",
                                    a->topic[IN_REPORTED]);
                return;
        }
        char record_id[ID_SIZE];
        json_t *view = json_loadb(text, len, 0, NULL);
        json_t *record = view ? status_record(view, j->status, record_id) : NULL;
        if (!record) {
                dead_letter(a, j, "invalid", "not forwardable: state, version or changed_at");
        } else {
                snprintf(j->record_id, sizeof(j->record_id), "%s", record_id);
                forward(a, j, record, now);
        }
        json_decref(record);
        json_decref(view);
}

static void on_status(avk_analysis_t *a, const rd_kafka_message_t *m)
{
        char err[512];
        struct job *j = job_new(a, IN_STATUS, m);
        if (!j)
                return;
        if (!(j->status = decode(a, IN_STATUS, m->payload, m->len, err, sizeof(err)))) {
                dead_letter(a, j, "undecodable", "undecodable: %s", err);
                return;
        }
        const char *id = str(j->status, "deviation_id"), *state = str(j->status, "state");
        if (!id || strlen(id) >= sizeof(j->deviation_id) || !state ||
            strlen(state) >= sizeof(j->state_name)) {
                dead_letter(a, j, "invalid", "not forwardable: deviation_id or state");
                return;
        }
        snprintf(j->deviation_id, sizeof(j->deviation_id), "%s", id);
        snprintf(j->state_name, sizeof(j->state_name), "%s", state);
        j->state = WAITING;
        resolve(a, j, avk_pump_mono_ms());
}

/* A record or a partition's end, from avk_pump_take(). */
static void on_message(void *opaque, const rd_kafka_message_t *m)
{
        avk_analysis_t *a = opaque;
        const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
        int reported = strcmp(topic, a->topic[IN_REPORTED]) == 0;
        if (m->err) {
                if (reported && ensure_part(a, m->partition) == 0) {
                        a->parts[m->partition].reported_eof_seq++;
                        a->parts[m->partition].reported_at_end = 1;
                }
        } else if (reported) {
                on_reported(a, m);
        } else if (strcmp(topic, a->topic[IN_STATUS]) == 0) {
                on_status(a, m);
        }
}

/* ---- the sink ---------------------------------------------------------- */

static void batch_free(avk_analysis_t *a, struct batch *b)
{
        for (struct batch **p = &a->batches; *p; p = &(*p)->next) {
                if (*p == b) {
                        *p = b->next;
                        a->batch_cnt--;
                        break;
                }
        }
        if (b->easy) {
                curl_multi_remove_handle(a->pump.multi, b->easy);
                curl_easy_cleanup(b->easy);
        }
        curl_slist_free_all(b->headers);
        free(b->jobs);
        free(b->body);
        free(b);
}

/* Cuts batches from the queue: full ones at once, a short one after the linger. */
static void form_batches(avk_analysis_t *a, int64_t now)
{
        while (a->queued > 0 && a->batch_cnt < a->sink_max_in_flight &&
               (a->queued >= a->batch_max || now - a->queue_head->queued_at >= a->linger_ms)) {
                size_t cnt = a->queued < a->batch_max ? a->queued : a->batch_max, body_len = 0;
                struct job *j = a->queue_head;
                for (size_t i = 0; i < cnt; i++, j = j->queue_next)
                        body_len += j->line_len + 1;
                struct batch *b = calloc(1, sizeof(*b));
                char *names = malloc(cnt * (AVK_IDENT_UUID_SIZE) + 1);
                if (!b || !names || !(b->jobs = malloc(cnt * sizeof(*b->jobs))) ||
                    !(b->body = malloc(body_len + 1))) {
                        if (b) {
                                free(b->jobs);
                                free(b);
                        }
                        free(names);
                        snprintf(a->pump.fatal, sizeof(a->pump.fatal), "out of memory");
                        return;
                }
                size_t at = 0, names_len = 0;
                for (size_t i = 0; i < cnt; i++) {
                        j = a->queue_head;
                        a->queue_head = j->queue_next;
                        memcpy(b->body + at, j->line, j->line_len);
                        at += j->line_len;
                        b->body[at++] = '\n';
                        names_len += (size_t)sprintf(names + names_len, "%s\n", j->record_id);
                        j->state = IN_BATCH;
                        b->jobs[i] = j;
                }
                if (!a->queue_head)
                        a->queue_tail = NULL;
                a->queued -= cnt;
                b->body[at] = '\0';
                b->body_len = at;
                b->cnt = cnt;
                /* The same records make the same batch id, on every attempt. */
                avk_ident_uuid5(batch_namespace, names, names_len, b->id);
                free(names);
                for (size_t i = 0; i < cnt; i++)
                        snprintf(b->jobs[i]->batch_id, sizeof(b->jobs[i]->batch_id), "%s", b->id);
                b->next_attempt_at = now;
                b->next = a->batches;
                a->batches = b;
                a->batch_cnt++;
        }
}

static void finish_batch(avk_analysis_t *a, struct batch *b, int curl_code, int64_t now);

static void start_batch(avk_analysis_t *a, struct batch *b, int64_t now)
{
        char timestamp[32], records[24], signature[AVK_WEBHOOK_SIGNATURE_SIZE];
        int64_t wall_ms = avk_pump_wall_ms();
        avk_json_format_time(wall_ms, timestamp);
        snprintf(records, sizeof(records), "%zu", b->cnt);
        b->attempts++;
        b->attempt_started_at = now;
        b->curl_error[0] = '\0';
        b->next_attempt_at = INT64_MAX; /* in flight */
        curl_slist_free_all(b->headers);
        b->headers = NULL;
        /* An empty Expect: keeps curl from waiting for "100 Continue". */
        int ok = avk_webhook_add_header(&b->headers, "Content-Type", "application/x-ndjson") == 0 &&
                 avk_webhook_add_header(&b->headers, "X-Avvik-Batch-Id", b->id) == 0 &&
                 avk_webhook_add_header(&b->headers, "X-Avvik-Record-Count", records) == 0 &&
                 avk_webhook_add_header(&b->headers, "X-Avvik-Event-Type", SINK_EVENT_TYPE) == 0 &&
                 avk_webhook_add_header(&b->headers, "X-Avvik-Timestamp", timestamp) == 0 &&
                 (!a->sink_secret.bytes ||
                  (avk_webhook_sign(a->sink_secret.bytes, a->sink_secret.len, wall_ms / 1000,
                                    SINK_EVENT_TYPE, b->body, b->body_len, signature) == 0 &&
                   avk_webhook_add_header(&b->headers, "X-Avvik-Signature", signature) == 0)) &&
                 (b->headers = curl_slist_append(b->headers, "Expect:")) != NULL;
        struct avk_webhook_post post = {
            .url = a->sink_url,
            .headers = b->headers,
            .body = b->body,
            .body_len = b->body_len,
            .timeout_ms = a->timeout_ms,
            .connect_timeout_ms = a->connect_timeout_ms,
            .ca_location = a->ca_location,
            .user_agent = USER_AGENT,
            .private_ptr = b,
            .error_buffer = b->curl_error,
        };
        if (!ok || !(b->easy = avk_webhook_post_start(a->pump.multi, &post)))
                finish_batch(a, b, CURLE_OUT_OF_MEMORY, now);
}

static void finish_batch(avk_analysis_t *a, struct batch *b, int curl_code, int64_t now)
{
        char reason[REASON_SIZE];
        long status =
            avk_webhook_finish(a->pump.multi, &b->easy, curl_code, reason, sizeof(reason));
        atomic_fetch_add(&a->sink_attempts, 1);
        count(a->m_attempts, avk_webhook_result(curl_code, status));
        avk_metric_observe(avk_metrics_series(a->m_latency, NULL),
                           (double)(now - b->attempt_started_at) / 1000.0);
        enum avk_webhook_verdict verdict = avk_webhook_classify(curl_code, status);
        if (verdict == AVK_WEBHOOK_DELIVERED) {
                for (size_t i = 0; i < b->cnt; i++)
                        finish(a, b->jobs[i]);
                atomic_fetch_add(&a->sink_batches, 1);
                count(a->m_batches, "delivered");
                avk_log(AVK_LOG_DEBUG, COMPONENT, "batch %s of %zu records taken (attempt %d)",
                        b->id, b->cnt, b->attempts);
                batch_free(a, b);
                return;
        }
        if (verdict == AVK_WEBHOOK_PERMANENT || b->attempts >= a->retry_max) {
                for (size_t i = 0; i < b->cnt; i++) {
                        if (verdict == AVK_WEBHOOK_PERMANENT)
                                dead_letter(a, b->jobs[i], "sink",
                                            "sink: %s (attempt %d; not retried)", reason,
                                            b->attempts);
                        else
                                dead_letter(a, b->jobs[i], "sink", "sink: %s (attempt %d of %d)",
                                            reason, b->attempts, (int)a->retry_max);
                }
                count(a->m_batches, "dead_lettered");
                batch_free(a, b);
                return;
        }
        int64_t wait = avk_webhook_backoff_ms(b->attempts, a->backoff_ms, a->backoff_max_ms,
                                              avk_webhook_random(&a->rng));
        b->next_attempt_at = now + wait;
        count(a->m_retries, NULL);
        avk_log(AVK_LOG_WARN, COMPONENT,
                "batch %s of %zu records: %s (attempt %d); next in %" PRId64 " ms", b->id, b->cnt,
                reason, b->attempts, wait);
}

static void attempt_done(void *opaque, void *private_ptr, int curl_code)
{
        finish_batch(opaque, private_ptr, curl_code, avk_pump_mono_ms());
}

/* ---- the loop ---------------------------------------------------------- */

/* Moves every job and batch that can move; returns when the next one falls due. */
static int64_t step(avk_analysis_t *a, int64_t now)
{
        int64_t next = now + AVK_PUMP_POLL_MAX_MS;
        for (int p = 0; p < a->part_cnt; p++) {
                for (int k = 0; k < IN_CNT; k++) {
                        for (struct job *j = a->parts[p].in[k].head; j; j = j->next) {
                                if (j->state == WAITING)
                                        resolve(a, j, now);
                                if (j->state == PRODUCE_DUE && j->next_attempt_at <= now)
                                        produce_record(a, j, now);
                                else if (j->state == DEAD_DUE && j->next_attempt_at <= now)
                                        send_dead_letter(a, j, now);
                                if ((j->state == PRODUCE_DUE || j->state == DEAD_DUE) &&
                                    j->next_attempt_at < next)
                                        next = j->next_attempt_at;
                                if (j->state == WAITING && now + WAITING_CHECK_MS < next)
                                        next = now + WAITING_CHECK_MS;
                        }
                }
        }
        if (a->sink_url) {
                form_batches(a, now);
                if (a->queued > 0 && a->queue_head->queued_at + a->linger_ms < next)
                        next = a->queue_head->queued_at + a->linger_ms;
                for (struct batch *b = a->batches, *nb; b; b = nb) {
                        nb = b->next; /* a batch that cannot start is freed */
                        if (b->next_attempt_at <= now)
                                start_batch(a, b, now);
                }
                for (struct batch *b = a->batches; b; b = b->next)
                        if (b->next_attempt_at < next)
                                next = b->next_attempt_at;
        }
        return next;
}

/* Stores the offset past the finished head of every list. */
static void advance_offsets(avk_analysis_t *a)
{
        for (int p = 0; p < a->part_cnt; p++) {
                for (int k = 0; k < IN_CNT; k++) {
                        struct list *l = &a->parts[p].in[k];
                        int64_t last = -1;
                        while (l->head && l->head->state == DONE) {
                                struct job *j = l->head;
                                last = j->offset;
                                l->head = j->next;
                                if (!l->head)
                                        l->tail = NULL;
                                job_free(j);
                                a->held[k]--;
                        }
                        if (last >= 0 && a->parts[p].assigned[k])
                                avk_pump_store(&a->pump, a->topic[k], p, last + 1);
                }
        }
        size_t held = a->held[IN_REPORTED] + a->held[IN_STATUS];
        atomic_store(&a->held_now, held);
        atomic_store(&a->cached_now, avk_idcache_count(a->cache));
        avk_metric_set(avk_metrics_series(a->m_held, NULL), (int64_t)held);
        avk_metric_set(avk_metrics_series(a->m_cached, NULL), (int64_t)avk_idcache_count(a->cache));
}

/*
 * Stops fetching an input topic while analysis.max.in.flight of its records
 * are held. A paused topic.reported is no longer known to be read to its
 * end, so that no status is taken for missing while its deviation waits
 * unfetched.
 */
static void flow_control(avk_analysis_t *a)
{
        for (int k = 0; k < IN_CNT; k++) {
                int want = a->held[k] >= a->max_held;
                if (want == a->paused[k])
                        continue;
                rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(a->part_cnt);
                for (int p = 0; p < a->part_cnt; p++) {
                        if (!a->parts[p].assigned[k])
                                continue;
                        rd_kafka_topic_partition_list_add(l, a->topic[k], p);
                        if (k == IN_REPORTED)
                                a->parts[p].reported_at_end = 0;
                }
                avk_pump_pause(&a->pump, l, want);
                a->paused[k] = want;
        }
}

/* Records behind the end of each input topic, over the assigned partitions. */
static void measure_lag(avk_analysis_t *a, int64_t now)
{
        if (now < a->next_lag_at)
                return;
        a->next_lag_at = now + LAG_EVERY_MS;
        for (int k = 0; k < IN_CNT; k++) {
                rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(a->part_cnt);
                for (int p = 0; p < a->part_cnt; p++)
                        if (a->parts[p].assigned[k])
                                rd_kafka_topic_partition_list_add(l, a->topic[k], p);
                int64_t lag = 0;
                if (l->cnt &&
                    rd_kafka_position(a->pump.consumer, l) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                        for (int i = 0; i < l->cnt; i++) {
                                int64_t lo, hi;
                                if (l->elems[i].offset >= 0 &&
                                    rd_kafka_get_watermark_offsets(a->pump.consumer, a->topic[k],
                                                                   l->elems[i].partition, &lo,
                                                                   &hi) == 0 &&
                                    hi > l->elems[i].offset)
                                        lag += hi - l->elems[i].offset;
                        }
                }
                rd_kafka_topic_partition_list_destroy(l);
                avk_metric_set(avk_metrics_series(a->m_lag, (const char *[]){a->topic[k]}), lag);
        }
}

/*
 * Gives the partitions up: finished inputs (within avk_pump_flush()'s bound) are
 * committed; the rest are dropped for the partitions' next owner to forward
 * again under the same record ids. A job whose produce Kafka has not
 * answered yet waits as an orphan for its delivery report.
 */
static void release_all(avk_analysis_t *a)
{
        avk_pump_flush(&a->pump);
        advance_offsets(a);
        avk_pump_commit(&a->pump);
        while (a->batches)
                batch_free(a, a->batches);
        a->queue_head = a->queue_tail = NULL;
        a->queued = 0;
        for (int p = 0; p < a->part_cnt; p++) {
                struct part *part = &a->parts[p];
                for (int k = 0; k < IN_CNT; k++) {
                        while (part->in[k].head) {
                                struct job *j = part->in[k].head;
                                part->in[k].head = j->next;
                                if (j->acks_pending > 0) {
                                        j->orphaned = 1;
                                        j->next = a->orphans;
                                        a->orphans = j;
                                } else {
                                        job_free(j);
                                }
                        }
                        part->in[k].tail = NULL;
                        part->assigned[k] = 0;
                }
                part->reported_at_end = 0;
                part->forward_from = 0;
        }
        a->held[IN_REPORTED] = a->held[IN_STATUS] = 0;
        a->paused[IN_REPORTED] = a->paused[IN_STATUS] = 0;
        atomic_store(&a->held_now, 0);
        avk_idcache_clear(a->cache);
}

/* The committed offsets of topic.reported's partitions in list: where forwarding resumes. */
static void forward_from_committed(avk_analysis_t *a, rd_kafka_t *rk,
                                   const rd_kafka_topic_partition_list_t *assigned)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(assigned->cnt);
        for (int i = 0; i < assigned->cnt; i++)
                if (strcmp(assigned->elems[i].topic, a->topic[IN_REPORTED]) == 0)
                        rd_kafka_topic_partition_list_add(l, a->topic[IN_REPORTED],
                                                          assigned->elems[i].partition);
        rd_kafka_resp_err_t e = l->cnt ? rd_kafka_committed(rk, l, COMMITTED_TIMEOUT_MS) : 0;
        if (e)
                avk_log(AVK_LOG_WARN, COMPONENT,
                        "%s: committed offsets unknown (%s): every deviation is forwarded again "
                        "under the same record ids",
                        a->topic[IN_REPORTED], rd_kafka_err2str(e));
        for (int i = 0; i < l->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &l->elems[i];
                if (ensure_part(a, tp->partition) == 0)
                        a->parts[tp->partition].forward_from =
                            !e && !tp->err && tp->offset > 0 ? tp->offset : 0;
        }
        rd_kafka_topic_partition_list_destroy(l);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
        avk_analysis_t *a = opaque;
        if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                release_all(a);
                rd_kafka_assign(rk, NULL);
                return;
        }
        forward_from_committed(a, rk, partitions);
        for (int i = 0; i < partitions->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &partitions->elems[i];
                if (ensure_part(a, tp->partition) != 0) {
                        snprintf(a->pump.fatal, sizeof(a->pump.fatal), "out of memory");
                        break;
                }
                int reported = strcmp(tp->topic, a->topic[IN_REPORTED]) == 0;
                a->parts[tp->partition].assigned[reported ? IN_REPORTED : IN_STATUS] = 1;
                /* The map is rebuilt from the start; the committed offset says
                 * where forwarding resumes. */
                if (reported)
                        tp->offset = RD_KAFKA_OFFSET_BEGINNING;
                else if (!rd_kafka_topic_partition_list_find(partitions, a->topic[IN_REPORTED],
                                                             tp->partition))
                        avk_log(AVK_LOG_ERROR, COMPONENT,
                                "%s [%d] is assigned without %s [%d]: the topics' partition counts "
                                "differ, and its statuses wait for deviations read elsewhere",
                                a->topic[IN_STATUS], (int)tp->partition, a->topic[IN_REPORTED],
                                (int)tp->partition);
        }
        rd_kafka_assign(rk, partitions);
}

/* ---- life cycle -------------------------------------------------------- */

static void register_metrics(avk_analysis_t *a, avk_metrics_t *m)
{
        if (!m)
                return;
        a->m_records = avk_metrics_counter(
            m, "avk_analysis_records_total",
            "AnalysisRecords forwarded (on topic.analysis and, with a sink, accepted), by state.",
            (const char *[]){"state", NULL});
        a->m_dead = avk_metrics_counter(
            m, "avk_analysis_dead_letters_total",
            "Inputs or records on the dead-letter topic, by input topic and reason (undecodable, "
            "invalid, missing_deviation, sink).",
            (const char *[]){"topic", "reason", NULL});
        a->m_batches = avk_metrics_counter(m, "avk_analysis_sink_batches_total",
                                           "Sink batches finished, by outcome (delivered, "
                                           "dead_lettered).",
                                           (const char *[]){"outcome", NULL});
        a->m_attempts = avk_metrics_counter(
            m, "avk_analysis_sink_attempts_total",
            "Sink attempts by result (2xx, 4xx, 5xx, timeout, tls, connect, error).",
            (const char *[]){"result", NULL});
        a->m_retries =
            avk_metrics_counter(m, "avk_analysis_sink_retries_total",
                                "Sink attempts that failed and were scheduled again.", NULL);
        a->m_latency = avk_metrics_histogram(
            m, "avk_analysis_sink_attempt_seconds", "Duration of sink attempts.", NULL,
            AVK_METRICS_LATENCY_BUCKETS, AVK_METRICS_LATENCY_BUCKET_CNT);
        a->m_scrubbed = avk_metrics_counter(
            m, "avk_analysis_scrubbed_total",
            "Things removed from descriptions, by kind (personnummer, telefon, e-post).",
            (const char *[]){"kind", NULL});
        a->m_unparsed = avk_metrics_counter(
            m, "avk_analysis_identity_unparsed_total",
            "Patient identities that did not parse (pseudonymised over their digits).", NULL);
        a->m_lag = avk_metrics_gauge(m, "avk_analysis_input_lag",
                                     "Records behind the end of each input topic (assigned "
                                     "partitions).",
                                     (const char *[]){"topic", NULL});
        a->m_held = avk_metrics_gauge(m, "avk_analysis_held", "Input records held.", NULL);
        a->m_cached =
            avk_metrics_gauge(m, "avk_analysis_deviations",
                              "Deviations known (the map for later state changes).", NULL);
}

static int read_settings(avk_analysis_t *a, const avk_config_t *cfg, char *errstr,
                         size_t errstr_size)
{
        a->timeout_ms = avk_config_get_int(cfg, "analysis.sink.timeout.ms");
        a->connect_timeout_ms = avk_config_get_int(cfg, "analysis.sink.connect.timeout.ms");
        a->retry_max = avk_config_get_int(cfg, "analysis.sink.retry.max");
        a->backoff_ms = avk_config_get_int(cfg, "analysis.sink.retry.backoff.ms");
        a->backoff_max_ms = avk_config_get_int(cfg, "analysis.sink.retry.backoff.max.ms");
        a->linger_ms = avk_config_get_int(cfg, "analysis.sink.linger.ms");
        a->batch_max = (size_t)avk_config_get_int(cfg, "analysis.sink.batch.max");
        a->sink_max_in_flight = (size_t)avk_config_get_int(cfg, "analysis.sink.max.in.flight");
        a->wait_ms = avk_config_get_int(cfg, "analysis.deviation.wait.ms");
        a->max_held = (size_t)avk_config_get_int(cfg, "analysis.max.in.flight");
        a->ca_location = avk_config_get(cfg, "analysis.sink.ssl.ca.location");
        a->sink_url = avk_config_get(cfg, "analysis.sink.url");
        a->topic[IN_REPORTED] = avk_config_get(cfg, "topic.reported");
        a->topic[IN_STATUS] = avk_config_get(cfg, "topic.status");
        a->topic_analysis = avk_config_get(cfg, "topic.analysis");
        a->topic_deadletter = avk_config_get(cfg, "topic.deadletter");
        const char *key_file = avk_config_get(cfg, "analysis.pseudonym.key.file");
        const char *secret_file = avk_config_get(cfg, "analysis.sink.secret.file");
        char reason[256];
        if (!key_file) {
                snprintf(errstr, errstr_size,
                         "analysis.pseudonym.key.file: required (the key of the patient "
                         "pseudonym; docs/analysis.md)");
                return -1;
        }
        if (a->backoff_ms > a->backoff_max_ms) {
                snprintf(errstr, errstr_size,
                         "analysis.sink.retry.backoff.ms: %" PRId64
                         " is more than analysis.sink.retry.backoff.max.ms (%" PRId64 ")",
                         a->backoff_ms, a->backoff_max_ms);
                return -1;
        }
        if (a->sink_url &&
            avk_ident_http_url(a->sink_url,
                               (int)avk_config_get_int(cfg, "analysis.sink.allow.http"), reason,
                               sizeof(reason)) != 0) {
                snprintf(errstr, errstr_size, "analysis.sink.url: %s", reason);
                return -1;
        }
        if (secret_file && !a->sink_url) {
                snprintf(errstr, errstr_size,
                         "analysis.sink.secret.file: set without analysis.sink.url");
                return -1;
        }
        if (!(a->pseudonym = avk_pseudonym_new(key_file, errstr, errstr_size)))
                return -1;
        if (secret_file && avk_secret_read(secret_file, "analysis.sink.secret.file", SECRET_MIN,
                                           &a->sink_secret, errstr, errstr_size) != 0)
                return -1;
        return 0;
}

avk_analysis_t *avk_analysis_new(const avk_config_t *cfg, avk_metrics_t *metrics, char *errstr,
                                 size_t errstr_size)
{
        avk_analysis_t *a = calloc(1, sizeof(*a));
        if (!a) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        avk_pump_init(&a->pump, COMPONENT);
        a->cfg = cfg;
        a->rng = (uint64_t)avk_pump_wall_ms() ^ ((uint64_t)getpid() << 32);
        register_metrics(a, metrics);
        if (read_settings(a, cfg, errstr, errstr_size) != 0 ||
            avk_env_open(&a->env, cfg, errstr, errstr_size) != 0)
                goto fail;
        a->schema[IN_REPORTED] = avk_catalog_by_name(a->env.catalog, "DeviationReported");
        a->schema[IN_STATUS] = avk_catalog_by_name(a->env.catalog, "DeviationStatus");
        a->record_schema = avk_catalog_by_name(a->env.catalog, "AnalysisRecord");
        a->codec = avk_codec_new(a->env.catalog, a->env.registry);
        a->cache = avk_idcache_new((size_t)avk_config_get_int(cfg, "analysis.cache.max.entries"));
        if (!a->schema[IN_REPORTED] || !a->schema[IN_STATUS] || !a->record_schema || !a->codec ||
            !a->cache ||
            avro_generic_value_new(avk_schema_iface(a->schema[IN_REPORTED]),
                                   &a->value[IN_REPORTED]) != 0 ||
            avro_generic_value_new(avk_schema_iface(a->schema[IN_STATUS]), &a->value[IN_STATUS]) !=
                0 ||
            avro_generic_value_new(avk_schema_iface(a->record_schema), &a->record_value) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        struct avk_copartition cp = {.service = "avvik analyse",
                                     .group_key = "analysis.group.id",
                                     .topic_a = a->topic[IN_STATUS],
                                     .topic_b = a->topic[IN_REPORTED],
                                     .rebalance_cb = on_rebalance,
                                     .opaque = a};
        if (avk_pump_open(&a->pump, cfg, on_produced, a, &cp, errstr, errstr_size) != 0)
                goto fail;
        return a;
fail:
        avk_analysis_destroy(a);
        return NULL;
}

int avk_analysis_run(avk_analysis_t *a, char *errstr, size_t errstr_size)
{
        const char *topics[] = {a->topic[IN_STATUS], a->topic[IN_REPORTED]};
        if (avk_pump_subscribe(&a->pump, topics, 2, errstr, errstr_size) != 0)
                return -1;
        avk_log(AVK_LOG_INFO, COMPONENT, "consuming %s and %s as group %s; sink %s",
                a->topic[IN_STATUS], a->topic[IN_REPORTED],
                avk_config_get(a->cfg, "analysis.group.id"), a->sink_url ? "configured" : "none");
        atomic_store(&a->consuming, 1);
        while (avk_pump_running(&a->pump)) {
                int taken = avk_pump_take(&a->pump, TAKE_MAX, on_message, a);
                int64_t next = step(a, avk_pump_mono_ms());
                avk_pump_serve(&a->pump, attempt_done, a);
                advance_offsets(a);
                flow_control(a);
                measure_lag(a, avk_pump_mono_ms());
                /* Acknowledgements and answers may have made work due now. */
                int64_t again = step(a, avk_pump_mono_ms());
                if (again < next)
                        next = again;
                avk_pump_sleep(&a->pump, next, taken == TAKE_MAX);
        }
        atomic_store(&a->consuming, 0);
        release_all(a);
        if (a->pump.fatal[0]) {
                snprintf(errstr, errstr_size, "%s", a->pump.fatal);
                return -1;
        }
        return 0;
}

void avk_analysis_stop(avk_analysis_t *a)
{
        avk_pump_stop(&a->pump);
}

void avk_analysis_stats(avk_analysis_t *a, struct avk_analysis_stats *s)
{
        s->forwarded = atomic_load(&a->forwarded);
        s->dead_lettered = atomic_load(&a->dead_lettered);
        s->sink_batches = atomic_load(&a->sink_batches);
        s->sink_attempts = atomic_load(&a->sink_attempts);
        s->held = atomic_load(&a->held_now);
        s->cached = atomic_load(&a->cached_now);
}

int avk_analysis_ready(void *opaque, char *why, size_t why_size)
{
        avk_analysis_t *a = opaque;
        if (atomic_load(&a->consuming))
                return 1;
        snprintf(why, why_size, "not consuming");
        return 0;
}

void avk_analysis_destroy(avk_analysis_t *a)
{
        if (!a)
                return;
        avk_pump_close_kafka(&a->pump); /* the consumer's revocation: release_all() */
        while (a->orphans) {
                struct job *j = a->orphans;
                a->orphans = j->next;
                job_free(j);
        }
        while (a->batches)
                batch_free(a, a->batches);
        for (int p = 0; p < a->part_cnt; p++) {
                for (int k = 0; k < IN_CNT; k++) {
                        while (a->parts[p].in[k].head) {
                                struct job *j = a->parts[p].in[k].head;
                                a->parts[p].in[k].head = j->next;
                                job_free(j);
                        }
                }
        }
        free(a->parts);
        avk_pump_close(&a->pump);
        avk_idcache_destroy(a->cache);
        for (int k = 0; k < IN_CNT; k++)
                if (a->value[k].self)
                        avro_value_decref(&a->value[k]);
        if (a->record_value.self)
                avro_value_decref(&a->record_value);
        avk_codec_destroy(a->codec);
        avk_env_close(&a->env);
        avk_pseudonym_destroy(a->pseudonym);
        avk_secret_wipe(&a->sink_secret);
        free(a);
}
