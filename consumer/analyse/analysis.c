/*
 * avk_analysis: see analysis.h; the mapping, the sink protocol and the
 * policy are in docs/analysis.md.
 *
 * The forwarder is its mapping plus the hooks of the service kernel
 * (common/kafka/service.h), whose one thread runs them: the consumer, the
 * producer's delivery reports, and libcurl's multi handle for the sink
 * through the kernel's wait hook, asleep in curl_multi_poll() until a socket,
 * the Kafka queues, a due retry or avk_analysis_stop() wakes it.
 *
 * Every input record is a job holding its input unfinished in the kernel's
 * outbox (avk_outbox_hold()) until the job ends. A job moves
 *   (WAITING for its deviation, status records only) -> PRODUCING (its
 *   AnalysisRecord an output of the input, on the way to topic.analysis) ->
 *   SINK_QUEUED -> IN_BATCH -> ended,
 * skipping the sink states without a sink. An input that cannot be decoded
 * or encoded for want of the Schema Registry ends its job unproduced and asks
 * the kernel to read it again later (AVK_SERVICE_WAIT); a waiting status
 * whose record cannot be encoded when its deviation comes goes to
 * PRODUCE_DUE and is tried again; an input that cannot be forwarded, or a record
 * whose batch spent its retry budget, becomes a dead letter (an output of
 * the input) and the job ends. The kernel stores an input's offset once its
 * outputs are acknowledged and its job ended, and every earlier input's.
 *
 * The deviation's view that every record shares (pseudonym, age band, sex,
 * municipality, event class, times of the report, scrubbed description) is
 * worked out once from its DeviationReported and kept in a bounded map
 * (avk_idcache) as the JSON text of those fields: a DeviationStatus carries
 * none of them. The decision and basis of each hop's DeviationRouted join
 * that entry (ROUTINGS), whichever of the two topics is read first. When
 * partitions are assigned, the kernel's rebuild reads topic.reported's and
 * topic.routed's from the beginning to fill the map (a registry without an
 * answer fails the rebuild, which is tried again); the consumer then
 * forwards from the group's committed offset as REPORTED. Since the tracker writes
 * a status only after the router read the deviation, a status whose deviation
 * is still unknown analysis.deviation.wait.ms after it arrived, with
 * topic.reported's partition read to its end since, is not coming (evicted, or
 * never filed) and is dead-lettered; a status whose hop's DeviationRouted is
 * missing the same way is forwarded without the decision (counted).
 */
#include "consumer/analyse/analysis.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/contract/agreement.h"
#include "common/contract/codec.h"
#include "common/util/clock.h"
#include "common/util/env.h"
#include "common/util/hash.h"
#include "common/util/idcache.h"
#include "common/contract/ident.h"
#include "common/contract/json.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"
#include "common/contract/municipality.h"
#include "common/util/secret.h"
#include "consumer/analyse/pseudonym.h"
#include "common/kafka/partner.h"
#include "common/kafka/service.h"
#include "common/util/scrub.h"
#include "common/http/webhook.h"

#define COMPONENT  "analysis"
#define USER_AGENT "avvik-analyse/0.1"
/* The sink's X-Avvik-Event-Type, signed with each batch: the record name of its lines. */
#define SINK_EVENT_TYPE  "AnalysisRecord"
#define WAITING_CHECK_MS 100 /* how often waiting statuses look at the clock */
#define PRODUCE_RETRY_MS 500
#define MAX_PARTITIONS   AVK_SERVICE_MAX_PARTITIONS
#define ID_SIZE          40
#define STATE_SIZE       16
#define REASON_SIZE      256
#define DESCRIPTION_MAX  8000 /* characters: AnalysisRecord.description_scrubbed's avk.maxLength */
#define SECRET_MIN       32
/* The member of a deviation's entry in the map with the routing of each hop
 * read from topic.routed: {"<hop>": [decision, basis]}. */
#define ROUTINGS "routings"
#define FILED_AT "filed_offset" /* the entry's: the offset of the DeviationReported it holds */

/* UUID version 5 namespaces (fixed forever: changing one makes every replay
 * look new downstream). AnalysisRecord.record_id: the name is
 * "<deviation_id>/<state>/<version>". Sink batch ids: the name is the
 * batch's record ids, each followed by '\n'. */
static const char record_namespace[] = "c5a1f0d2-6e4b-5a93-8d27-1b9e3f4c7a60";
static const char batch_namespace[] = "4e2d8b17-9c3a-5f60-a1d4-7b8e2c9f0a35";

enum input { IN_REPORTED, IN_STATUS, IN_ROUTED, IN_CNT };

enum state { WAITING, PRODUCE_DUE, PRODUCING, SINK_QUEUED, IN_BATCH };

/* Output tags (avk_outbox_msg.tag): the kind in the low bits; a record's job
 * id above them, a dead letter's input topic (INPUT_BITS) and reason. */
enum { TAG_RECORD = 1, TAG_DEAD = 2, TAG_BITS = 2, INPUT_BITS = 2 };

/* Dead-letter reasons, the metric's label (index in the tag). */
static const char *const dead_kinds[] = {"undecodable", "invalid", "missing_deviation", "sink"};
enum dead_kind { DEAD_UNDECODABLE, DEAD_INVALID, DEAD_MISSING, DEAD_SINK };

struct job {
        TAILQ_ENTRY(job) link;  /* every job, in arrival order */
        struct job *queue_next; /* the sink queue */
        struct avk_hnode node;  /* by id: an acknowledgement finds its job */
        uint64_t id;
        avk_outbox_input_t *in; /* the input it holds unfinished */
        uint64_t seq;
        enum input input;
        enum state state;
        int32_t partition;
        int64_t offset;
        void *key, *payload; /* the input as read (NULL: null), until its record exists */
        size_t key_len, payload_len;
        json_t *status; /* a DeviationStatus waiting for its deviation */
        char deviation_id[ID_SIZE], record_id[ID_SIZE], batch_id[ID_SIZE];
        char state_name[STATE_SIZE];
        void *record; /* the AnalysisRecord as produced */
        size_t record_len;
        char *line; /* its JSON, for the sink */
        size_t line_len;
        int64_t arrived_at, next_attempt_at, queued_at;
        uint64_t eof_seq[IN_CNT]; /* ends of the partner topics seen on the partition at arrival */
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

struct avk_analysis {
        const avk_config_t *cfg;
        struct avk_env env;
        avk_codec_t *codec;
        const avk_schema_t *schema[IN_CNT], *record_schema;
        avro_value_t value[IN_CNT], record_value;
        avk_pseudonym_t *pseudonym;
        struct avk_secret sink_secret;
        avk_service_t *service;
        avk_outbox_t *outbox; /* the service's */
        CURLM *multi;
        int curl_inited;
        char fatal[512]; /* set: the loop ends with this error */
        const char *topic[IN_CNT], *topic_analysis, *topic_deadletter;
        const char *sink_url, *ca_location;
        int64_t timeout_ms, connect_timeout_ms, retry_max, backoff_ms, backoff_max_ms, wait_ms,
            linger_ms;
        size_t batch_max, sink_max_in_flight, max_held;
        /* Of the partner topics, topic.reported and topic.routed (the status row is unused). */
        struct avk_partner_part parts[IN_CNT][MAX_PARTITIONS];
        avk_idcache_t *cache;
        TAILQ_HEAD(, job) jobs;
        avk_htab_t jobs_by_id;
        uint64_t last_job_id;
        struct job *queue_head, *queue_tail;
        size_t queued;
        struct batch *batches;
        size_t batch_cnt;
        size_t held[IN_CNT];
        int paused[IN_CNT];
        /* The registry had no answer during a rebuild: it is tried again. */
        int rebuild_unavailable;
        uint64_t rng;
        avk_metrics_t *own_metrics; /* when the caller gave none */
        atomic_uint_fast64_t forwarded, dead_lettered, sink_batches, sink_attempts, held_now,
            cached_now;
        avk_metric_family_t *m_records, *m_dead, *m_batches, *m_attempts, *m_retries, *m_latency,
            *m_scrubbed, *m_unparsed, *m_held, *m_cached, *m_unrouted, *m_filed_again;
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
                   {"Södra Älvsborg", "SJUHARAD"}};
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
        int derived = 0;
        const char *agreement =
            avk_agreement_of(str(rep, "agreement"), str(rep, "category"), occurred_ms, &derived);
        if (view && (json_object_set_new(view, "agreement",
                                         json_string(agreement ? agreement : "UNKNOWN")) != 0 ||
                     json_object_set_new(view, "agreement_derived", json_boolean(derived)) != 0 ||
                     json_object_set_new(view, "care_setting",
                                         nullable(json_object_get(json_object_get(rep, "location"),
                                                                  "care_setting"))) != 0 ||
                     json_object_set_new(view, "competence",
                                         nullable(json_object_get(rep, "competence"))) != 0)) {
                json_decref(view);
                return NULL;
        }
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
        if (r) {
                json_object_del(r, ROUTINGS);
                json_object_del(r, FILED_AT);
        }
        if (!r || identify(r, str(view, "deviation_id"), "REPORTED", 0,
                           json_object_get(view, "reported_at"), record_id) != 0) {
                json_decref(r);
                return NULL;
        }
        return r;
}

/* The decision and basis of hop of the deviation whose entry is view: a
 * [decision, basis] array, or NULL when its DeviationRouted was not read. */
static const json_t *routing_of(const json_t *view, json_int_t hop)
{
        char name[24];
        snprintf(name, sizeof(name), "%" JSON_INTEGER_FORMAT, hop);
        return json_object_get(json_object_get(view, ROUTINGS), name);
}

/* A record for the state change in status, on the deviation's view. The
 * routing in force decides category, harm, receiver, Lex Maria, the hop
 * and, when its DeviationRouted was read, the decision and its basis. */
static json_t *status_record(const json_t *view, const json_t *status, char record_id[ID_SIZE])
{
        json_t *r = json_deep_copy(view);
        const json_t *routing =
            routing_of(view, json_integer_value(json_object_get(status, "hop")));
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
            {"hop", "hop"},
        };
        for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++)
                if (json_object_set_new(r, copied[i][0],
                                        nullable(json_object_get(status, copied[i][1]))) != 0)
                        goto fail;
        if (json_object_set_new(flags, "possible_lex_maria",
                                nullable(json_object_get(status, "possible_lex_maria"))) != 0 ||
            json_object_set_new(r, "routing_decision", nullable(json_array_get(routing, 0))) != 0 ||
            json_object_set_new(r, "routing_basis", nullable(json_array_get(routing, 1))) != 0)
                goto fail;
        json_object_del(r, ROUTINGS);
        json_object_del(r, FILED_AT);
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

static int same_job(const struct avk_hnode *node, const void *id)
{
        return avk_container_of(node, struct job, node)->id == *(const uint64_t *)id;
}

static uint64_t hash_job(uint64_t id)
{
        return avk_hash_bytes(&id, sizeof(id), 0);
}

static void job_free(struct job *j)
{
        json_decref(j->status);
        free(j->key);
        free(j->payload);
        free(j->record);
        free(j->line);
        free(j);
}

/* Ends job j: out of the tables, its hold on its input released. */
static void job_end(avk_analysis_t *a, struct job *j)
{
        TAILQ_REMOVE(&a->jobs, j, link);
        avk_htab_remove(&a->jobs_by_id, &j->node);
        a->held[j->input]--;
        avk_outbox_end(a->outbox, j->in, j->seq);
        job_free(j);
}

static void drop_input(struct job *j)
{
        free(j->key);
        free(j->payload);
        j->key = j->payload = NULL;
        json_decref(j->status);
        j->status = NULL;
}

static struct job *job_new(avk_analysis_t *a, enum input input, avk_outbox_input_t *in,
                           uint64_t seq, const rd_kafka_message_t *m)
{
        struct job *j = calloc(1, sizeof(*j));
        if (!j || avk_outbox_keep(m, &j->key, &j->payload) != 0) {
                if (j)
                        job_free(j);
                snprintf(a->fatal, sizeof(a->fatal), "out of memory");
                return NULL;
        }
        j->key_len = m->key_len;
        j->payload_len = m->len;
        j->id = ++a->last_job_id;
        j->in = in;
        j->seq = seq;
        j->input = input;
        j->partition = m->partition;
        j->offset = m->offset;
        j->arrived_at = avk_clock_mono_ms();
        for (int k = 0; k < IN_CNT; k++)
                j->eof_seq[k] = a->parts[k][m->partition].eof_seq;
        avk_outbox_hold(in, seq);
        TAILQ_INSERT_TAIL(&a->jobs, j, link);
        avk_htab_insert(&a->jobs_by_id, &j->node, hash_job(j->id));
        a->held[input]++;
        return j;
}

static void dead_letter(avk_analysis_t *a, struct job *j, enum dead_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sends j to the dead-letter topic - the input as read, or, once j has a
 * record (a sink that would not take it), the record - and ends it. */
static void dead_letter(avk_analysis_t *a, struct job *j, enum dead_kind kind, const char *fmt, ...)
{
        char reason[REASON_SIZE];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        const char *names[2], *values[2];
        int cnt = 0;
        if (j->record_id[0]) {
                names[cnt] = "avk-record-id";
                values[cnt++] = j->record_id;
        }
        if (j->batch_id[0]) {
                names[cnt] = "avk-batch-id";
                values[cnt++] = j->batch_id;
        }
        int with_record = j->record != NULL;
        struct avk_outbox_source src = {.topic = a->topic[j->input],
                                        .partition = j->partition,
                                        .offset = j->offset,
                                        .key = with_record ? (const void *)j->deviation_id : j->key,
                                        .key_len =
                                            with_record ? strlen(j->deviation_id) : j->key_len,
                                        .value = with_record ? j->record : j->payload,
                                        .len = with_record ? j->record_len : j->payload_len,
                                        .hdr_names = names,
                                        .hdr_values = values,
                                        .hdr_cnt = cnt,
                                        .tag = (uint64_t)kind << (TAG_BITS + INPUT_BITS) |
                                               (uint64_t)j->input << TAG_BITS | TAG_DEAD};
        if (avk_outbox_deadletter(a->outbox, j->in, j->seq, a->topic_deadletter, &src, reason) != 0)
                snprintf(a->fatal, sizeof(a->fatal), "out of memory");
        job_end(a, j);
}

static void produce_record(avk_analysis_t *a, struct job *j)
{
        const char *names[] = {AVK_HDR_ID, AVK_HDR_TYPE};
        const char *values[] = {j->record_id, "AnalysisRecord"};
        struct avk_outbox_msg msg = {.topic = a->topic_analysis,
                                     .partition = RD_KAFKA_PARTITION_UA,
                                     .key = j->deviation_id,
                                     .key_len = strlen(j->deviation_id),
                                     .value = j->record,
                                     .len = j->record_len,
                                     .hdr_names = names,
                                     .hdr_values = values,
                                     .hdr_cnt = 2,
                                     .tag = j->id << TAG_BITS | TAG_RECORD};
        if (avk_outbox_emit(a->outbox, j->in, j->seq, &msg) != 0) {
                snprintf(a->fatal, sizeof(a->fatal), "out of memory");
                return;
        }
        j->state = PRODUCING;
}

static void finish(avk_analysis_t *a, struct job *j)
{
        atomic_fetch_add(&a->forwarded, 1);
        count(a->m_records, j->state_name);
        job_end(a, j);
}

static void queue_for_sink(avk_analysis_t *a, struct job *j)
{
        j->state = SINK_QUEUED;
        j->queued_at = avk_clock_mono_ms();
        j->queue_next = NULL;
        if (a->queue_tail)
                a->queue_tail->queue_next = j;
        else
                a->queue_head = j;
        a->queue_tail = j;
        a->queued++;
}

/* Kafka acknowledged a record (on to the sink) or a dead letter (counted). */
static void on_acked(void *opaque, const void *key, size_t key_len, uint64_t tag)
{
        avk_analysis_t *a = opaque;
        (void)key;
        (void)key_len;
        if ((tag & ((1u << TAG_BITS) - 1)) == TAG_DEAD) {
                atomic_fetch_add(&a->dead_lettered, 1);
                const char *labels[] = {a->topic[(tag >> TAG_BITS) & ((1u << INPUT_BITS) - 1)],
                                        dead_kinds[tag >> (TAG_BITS + INPUT_BITS)]};
                avk_metric_add(avk_metrics_series(a->m_dead, labels), 1);
                return;
        }
        uint64_t id = tag >> TAG_BITS;
        struct avk_hnode *n = avk_htab_find(&a->jobs_by_id, hash_job(id), same_job, &id);
        struct job *j = n ? avk_container_of(n, struct job, node) : NULL;
        if (!j || j->state != PRODUCING)
                return; /* its partition was revoked meanwhile */
        if (a->sink_url)
                queue_for_sink(a, j);
        else
                finish(a, j);
}

/* Encodes record for j and sends it; a record that breaks the contract is
 * dead-lettered. @returns 0, or AVK_SERVICE_WAIT with the reason in err when
 * it cannot be encoded now (the registry, memory): j is as it was, its input
 * kept for another try. */
static int forward(avk_analysis_t *a, struct job *j, json_t *record, char *err, size_t err_size)
{
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
                avk_errors_join(&errs, err, err_size);
                dead_letter(a, j, DEAD_INVALID, "not forwardable: %s", err);
                return 0;
        }
        if (avk_codec_encode(a->codec, a->topic_analysis, a->record_schema, &a->record_value, &buf,
                             &len, err, err_size) != 0 ||
            !(shaped = avk_json_from_avro(a->record_schema, &a->record_value, err, err_size)))
                return AVK_SERVICE_WAIT; /* the registry or memory: the same input will do later */
        j->line = json_dumps(shaped, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(shaped);
        j->record = malloc(len ? len : 1);
        if (!j->line || !j->record) {
                snprintf(a->fatal, sizeof(a->fatal), "out of memory");
                return 0;
        }
        memcpy(j->record, buf, len);
        j->record_len = len;
        j->line_len = strlen(j->line);
        drop_input(j);
        produce_record(a, j);
        return 0;
}

/* ---- inputs ------------------------------------------------------------ */

/* Decodes an input into *out (JSON). @returns 0, AVK_CODEC_UNAVAILABLE (the
 * registry had no answer: read it again later) or -1, with the reason in err. */
static int decode(avk_analysis_t *a, enum input input, const void *payload, size_t len,
                  json_t **out, char *err, size_t err_size)
{
        int rc = avk_codec_decode(a->codec, payload, len, a->schema[input], &a->value[input], err,
                                  err_size);
        if (rc != 0)
                return rc;
        *out = avk_json_from_avro(a->schema[input], &a->value[input], err, err_size);
        return *out ? 0 : -1;
}

/* The entry of deviation id in the map (a new object when there is none). */
static json_t *entry_of(avk_analysis_t *a, const char *id)
{
        size_t len;
        const char *text = avk_idcache_get(a->cache, id, &len);
        json_t *entry = text ? json_loadb(text, len, 0, NULL) : json_object();
        if (!entry)
                snprintf(a->fatal, sizeof(a->fatal), "out of memory");
        return entry;
}

/* Keeps entry, the map's entry of deviation id. */
static void keep(avk_analysis_t *a, const char *id, const json_t *entry)
{
        char *text = json_dumps(entry, JSON_COMPACT);
        if (!text || avk_idcache_put(a->cache, id, text, strlen(text)) != 0)
                snprintf(a->fatal, sizeof(a->fatal), "out of memory");
        free(text);
}

/* Keeps the view of deviation view, filed at offset, in the map, with the routings read
 * before it. */
static void remember(avk_analysis_t *a, json_t *view, int64_t offset)
{
        const char *id = str(view, "deviation_id");
        json_t *entry = entry_of(a, id);
        json_t *routings = json_object_get(entry, ROUTINGS);
        if (routings)
                json_object_set(view, ROUTINGS, routings);
        json_object_set_new(view, FILED_AT, json_integer(offset));
        keep(a, id, view);
        json_object_del(view, ROUTINGS);
        json_object_del(view, FILED_AT);
        json_decref(entry);
}

/* Whether the map holds another DeviationReported of deviation id than the one at offset
 * (an entry with routings only holds none; the same offset is the same record read again). */
static int filed_before(avk_analysis_t *a, const char *id, int64_t offset)
{
        size_t len;
        const char *text = avk_idcache_get(a->cache, id, &len);
        json_t *entry = text ? json_loadb(text, len, 0, NULL) : NULL;
        const json_t *at = json_object_get(entry, FILED_AT);
        int filed = at && json_integer_value(at) != offset;
        json_decref(entry);
        return filed;
}

/* A DeviationReported read by the rebuild: only fills the map. */
static void rebuild_reported(void *opaque, const rd_kafka_message_t *m)
{
        avk_analysis_t *a = opaque;
        char err[512];
        struct avk_scrub_counts scrubbed = {0};
        int unparsed = 0;
        json_t *rep = NULL;
        if (decode(a, IN_REPORTED, m->payload, m->len, &rep, err, sizeof(err)) ==
            AVK_CODEC_UNAVAILABLE)
                a->rebuild_unavailable = 1;
        json_t *view = rep ? deviation_view(a, rep, &scrubbed, &unparsed) : NULL;
        if (view && str(view, "deviation_id") &&
            !filed_before(a, str(view, "deviation_id"), m->offset))
                remember(a, view, m->offset);
        json_decref(view);
        json_decref(rep);
}

/* Ends job j before it produced anything, for its input to be read again
 * later (AVK_SERVICE_WAIT, with the reason in errstr). */
static int wait_for_registry(avk_analysis_t *a, struct job *j, const char *why, char *errstr,
                             size_t errstr_size)
{
        snprintf(errstr, errstr_size, "%s", why);
        job_end(a, j);
        return AVK_SERVICE_WAIT;
}

static int on_reported(avk_analysis_t *a, avk_outbox_input_t *in, uint64_t seq,
                       const rd_kafka_message_t *m, char *errstr, size_t errstr_size)
{
        char err[512], record_id[ID_SIZE];
        avk_partner_read(&a->parts[IN_REPORTED][m->partition]);
        struct job *j = job_new(a, IN_REPORTED, in, seq, m);
        if (!j)
                return 0;
        json_t *rep = NULL, *view = NULL, *record = NULL;
        struct avk_scrub_counts scrubbed = {0};
        int unparsed = 0, rc = decode(a, IN_REPORTED, m->payload, m->len, &rep, err, sizeof(err));
        if (rc == AVK_CODEC_UNAVAILABLE)
                return wait_for_registry(a, j, err, errstr, errstr_size);
        if (rc != 0) {
                dead_letter(a, j, DEAD_UNDECODABLE, "undecodable: %s", err);
                return 0;
        }
        rc = 0;
        if (!(view = deviation_view(a, rep, &scrubbed, &unparsed)) ||
            !(record = reported_record(view, record_id))) {
                dead_letter(a, j, DEAD_INVALID, "not forwardable: deviation_id or memory");
                goto out;
        }
        if (filed_before(a, str(view, "deviation_id"), m->offset)) {
                /* The first body filed under an id is the deviation; the router dead-letters
                 * another (docs/router.md, "One body per deviation"), and the same body again
                 * would only repeat its record. */
                count(a->m_filed_again, NULL);
                job_end(a, j);
                goto out;
        }
        snprintf(j->deviation_id, sizeof(j->deviation_id), "%s", str(view, "deviation_id"));
        snprintf(j->record_id, sizeof(j->record_id), "%s", record_id);
        snprintf(j->state_name, sizeof(j->state_name), "REPORTED");
        if (forward(a, j, record, err, sizeof(err)) != 0) {
                rc = wait_for_registry(a, j, err, errstr, errstr_size);
                goto out;
        }
        remember(a, view, m->offset);
        avk_metric_add(avk_metrics_series(a->m_scrubbed, (const char *[]){"personnummer"}),
                       (int64_t)scrubbed.personal_ids);
        avk_metric_add(avk_metrics_series(a->m_scrubbed, (const char *[]){"telefon"}),
                       (int64_t)scrubbed.phones);
        avk_metric_add(avk_metrics_series(a->m_scrubbed, (const char *[]){"e-post"}),
                       (int64_t)scrubbed.emails);
        if (unparsed)
                count(a->m_unparsed, NULL);
out:
        json_decref(record);
        json_decref(view);
        json_decref(rep);
        return rc;
}

/* Whether partner topic input of j's partition is read past what j needs. */
static int partner_gone(const avk_analysis_t *a, const struct job *j, enum input input, int64_t now)
{
        return avk_partner_gone(&a->parts[input][j->partition], j->eof_seq[input],
                                now - j->arrived_at, a->wait_ms);
}

/*
 * Forwards a waiting status once its deviation is known, and the
 * DeviationRouted of its hop too (or not coming: then without the decision,
 * counted). @returns 0, or AVK_SERVICE_WAIT with the reason in err when the
 * record cannot be encoded now (the job is as it was).
 */
static int resolve(avk_analysis_t *a, struct job *j, int64_t now, char *err, size_t err_size)
{
        size_t len;
        const char *text = avk_idcache_get(a->cache, j->deviation_id, &len);
        json_t *view = text ? json_loadb(text, len, 0, NULL) : NULL;
        json_t *record = NULL;
        char record_id[ID_SIZE];
        int rc = 0;
        if (!str(view, "deviation_id")) {
                /* Not filed yet, or only its routing read. */
                if (partner_gone(a, j, IN_REPORTED, now))
                        dead_letter(a, j, DEAD_MISSING, "deviation not found in %s",
                                    a->topic[IN_REPORTED]);
                goto out;
        }
        int routed =
            routing_of(view, json_integer_value(json_object_get(j->status, "hop"))) != NULL;
        if (!routed && !partner_gone(a, j, IN_ROUTED, now))
                goto out;
        if (!(record = status_record(view, j->status, record_id))) {
                dead_letter(a, j, DEAD_INVALID, "not forwardable: state, version or changed_at");
                goto out;
        }
        snprintf(j->record_id, sizeof(j->record_id), "%s", record_id);
        rc = forward(a, j, record, err, err_size);
        if (rc == 0 && !routed)
                count(a->m_unrouted, NULL);
out:
        json_decref(record);
        json_decref(view);
        return rc;
}

static int on_status(avk_analysis_t *a, avk_outbox_input_t *in, uint64_t seq,
                     const rd_kafka_message_t *m, char *errstr, size_t errstr_size)
{
        char err[512];
        struct job *j = job_new(a, IN_STATUS, in, seq, m);
        if (!j)
                return 0;
        int rc = decode(a, IN_STATUS, m->payload, m->len, &j->status, err, sizeof(err));
        if (rc == AVK_CODEC_UNAVAILABLE)
                return wait_for_registry(a, j, err, errstr, errstr_size);
        if (rc != 0) {
                dead_letter(a, j, DEAD_UNDECODABLE, "undecodable: %s", err);
                return 0;
        }
        const char *id = str(j->status, "deviation_id"), *state = str(j->status, "state");
        if (!id || strlen(id) >= sizeof(j->deviation_id) || !state ||
            strlen(state) >= sizeof(j->state_name)) {
                dead_letter(a, j, DEAD_INVALID, "not forwardable: deviation_id or state");
                return 0;
        }
        snprintf(j->deviation_id, sizeof(j->deviation_id), "%s", id);
        snprintf(j->state_name, sizeof(j->state_name), "%s", state);
        j->state = WAITING;
        if (resolve(a, j, avk_clock_mono_ms(), err, sizeof(err)) != 0)
                return wait_for_registry(a, j, err, errstr, errstr_size);
        return 0;
}

/* Keeps the decision and basis of a DeviationRouted (JSON) in its deviation's entry. */
static void note_routing(avk_analysis_t *a, const json_t *routed)
{
        const char *id = str(routed, "deviation_id");
        json_t *entry = id && strlen(id) < ID_SIZE ? entry_of(a, id) : NULL;
        if (!entry)
                return;
        char hop[24];
        snprintf(hop, sizeof(hop), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(routed, "hop")));
        json_t *routings = json_object_get(entry, ROUTINGS);
        if (!routings)
                json_object_set_new(entry, ROUTINGS, routings = json_object());
        json_object_set_new(routings, hop,
                            json_pack("[O?O?]", json_object_get(routed, "decision"),
                                      json_object_get(routed, "basis")));
        keep(a, id, entry);
        json_decref(entry);
}

/* A DeviationRouted read by the rebuild: only fills the map. */
static void rebuild_routed(void *opaque, const rd_kafka_message_t *m)
{
        avk_analysis_t *a = opaque;
        char err[512];
        json_t *routed = NULL;
        int rc = decode(a, IN_ROUTED, m->payload, m->len, &routed, err, sizeof(err));
        if (rc == AVK_CODEC_UNAVAILABLE)
                a->rebuild_unavailable = 1;
        if (rc == 0)
                note_routing(a, routed);
        json_decref(routed);
}

/* A DeviationRouted: no record of its own (the tracker's ROUTED status makes
 * that), only the decision its hop's records carry. */
static int on_routed(avk_analysis_t *a, avk_outbox_input_t *in, uint64_t seq,
                     const rd_kafka_message_t *m, char *errstr, size_t errstr_size)
{
        char err[512];
        json_t *routed = NULL;
        avk_partner_read(&a->parts[IN_ROUTED][m->partition]);
        int rc = decode(a, IN_ROUTED, m->payload, m->len, &routed, err, sizeof(err));
        if (rc == AVK_CODEC_UNAVAILABLE) {
                snprintf(errstr, errstr_size, "%s", err);
                return AVK_SERVICE_WAIT;
        }
        if (rc != 0) {
                struct job *j = job_new(a, IN_ROUTED, in, seq, m);
                if (j)
                        dead_letter(a, j, DEAD_UNDECODABLE, "undecodable: %s", err);
                return 0;
        }
        note_routing(a, routed);
        json_decref(routed);
        return 0;
}

/* The loop ends with a->fatal once it is set. */
static int fatal(const avk_analysis_t *a, char *errstr, size_t errstr_size)
{
        if (!a->fatal[0])
                return 0;
        snprintf(errstr, errstr_size, "%s", a->fatal);
        return -1;
}

static int on_record(void *opaque, int topic, avk_outbox_input_t *in, uint64_t seq,
                     const rd_kafka_message_t *m, char *errstr, size_t errstr_size)
{
        avk_analysis_t *a = opaque;
        int rc = topic == IN_REPORTED ? on_reported(a, in, seq, m, errstr, errstr_size)
                 : topic == IN_STATUS ? on_status(a, in, seq, m, errstr, errstr_size)
                                      : on_routed(a, in, seq, m, errstr, errstr_size);
        return fatal(a, errstr, errstr_size) != 0 ? -1 : rc;
}

static void on_eof(void *opaque, int topic, int32_t partition)
{
        avk_analysis_t *a = opaque;
        avk_partner_end(&a->parts[topic][partition]);
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
                curl_multi_remove_handle(a->multi, b->easy);
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
                        snprintf(a->fatal, sizeof(a->fatal), "out of memory");
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
        int64_t wall_ms = avk_clock_system_ms();
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
        if (!ok || !(b->easy = avk_webhook_post_start(a->multi, &post)))
                finish_batch(a, b, CURLE_OUT_OF_MEMORY, now);
}

static void finish_batch(avk_analysis_t *a, struct batch *b, int curl_code, int64_t now)
{
        char reason[REASON_SIZE];
        long status = avk_webhook_finish(a->multi, &b->easy, curl_code, reason, sizeof(reason));
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
                                dead_letter(a, b->jobs[i], DEAD_SINK,
                                            "sink: %s (attempt %d; not retried)", reason,
                                            b->attempts);
                        else
                                dead_letter(a, b->jobs[i], DEAD_SINK, "sink: %s (attempt %d of %d)",
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
        finish_batch(opaque, private_ptr, curl_code, avk_clock_mono_ms());
}

/* ---- the loop ---------------------------------------------------------- */

/* Moves every job and batch that can move; returns when the next one falls due. */
static int64_t step(avk_analysis_t *a, int64_t now, int64_t next)
{
        for (struct job *j = TAILQ_FIRST(&a->jobs), *after; j; j = after) {
                after = TAILQ_NEXT(j, link); /* j may end */
                if (j->state == WAITING || (j->state == PRODUCE_DUE && j->next_attempt_at <= now)) {
                        char err[512];
                        if (now + WAITING_CHECK_MS < next)
                                next = now + WAITING_CHECK_MS;
                        j->state = WAITING;
                        if (resolve(a, j, now, err, sizeof(err)) != 0) {
                                /* j is as it was: the registry, for a while */
                                avk_log(AVK_LOG_WARN, COMPONENT, "record %s: %s; retrying",
                                        j->record_id, err);
                                j->state = PRODUCE_DUE;
                                j->next_attempt_at = now + PRODUCE_RETRY_MS;
                        }
                } else if (j->state == PRODUCE_DUE && j->next_attempt_at < next) {
                        next = j->next_attempt_at;
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

static void publish_counts(avk_analysis_t *a)
{
        size_t held = a->held[IN_REPORTED] + a->held[IN_STATUS] + a->held[IN_ROUTED];
        atomic_store(&a->held_now, held);
        atomic_store(&a->cached_now, avk_idcache_count(a->cache));
        avk_metric_set(avk_metrics_series(a->m_held, NULL), (int64_t)held);
        avk_metric_set(avk_metrics_series(a->m_cached, NULL), (int64_t)avk_idcache_count(a->cache));
}

static int on_tick(void *opaque, int64_t *next_due, char *errstr, size_t errstr_size)
{
        avk_analysis_t *a = opaque;
        avk_webhook_collect(a->multi, attempt_done, a);
        /* A paused partner topic is no longer known to be read to its end,
         * so that no status is taken for missing while its deviation or
         * routing waits unfetched (the kernel pauses past analysis.max.in.flight). */
        for (int k = 0; k < IN_CNT; k++) {
                int paused = avk_service_paused(a->service, k);
                for (int p = 0; paused && !a->paused[k] && p < MAX_PARTITIONS; p++)
                        avk_partner_read(&a->parts[k][p]);
                a->paused[k] = paused;
        }
        *next_due = step(a, avk_clock_mono_ms(), *next_due);
        publish_counts(a);
        return fatal(a, errstr, errstr_size);
}

static void wait_for_work(void *opaque, int wake_fd, int timeout_ms)
{
        avk_analysis_t *a = opaque;
        avk_webhook_wait(a->multi, wake_fd, timeout_ms);
}

/* Gives the sink's work up: the batches, and the queue. */
static void drop_sink(avk_analysis_t *a)
{
        while (a->batches)
                batch_free(a, a->batches);
        a->queue_head = a->queue_tail = NULL;
        a->queued = 0;
}

/*
 * Input partition in is revoked: its jobs end unfinished, for the
 * partition's next owner to forward again under the same record ids. The
 * sink's batches go (a revoke takes every partition: range is eager); the
 * jobs of other inputs in them are queued again.
 */
static void on_revoke(void *opaque, avk_outbox_input_t *in)
{
        avk_analysis_t *a = opaque;
        drop_sink(a);
        for (struct job *j = TAILQ_FIRST(&a->jobs), *after; j; j = after) {
                after = TAILQ_NEXT(j, link);
                if (j->in == in) {
                        job_end(a, j);
                } else if (j->state == SINK_QUEUED || j->state == IN_BATCH) {
                        queue_for_sink(a, j);
                }
        }
        publish_counts(a);
}

/* The map is of the partitions held: it goes with them. */
static void on_drop(void *opaque, const int32_t *parts, int cnt)
{
        avk_analysis_t *a = opaque;
        avk_idcache_clear(a->cache);
        for (int k = 0; k < IN_CNT; k++)
                avk_partner_forget(a->parts[k], parts, cnt);
}

/* Fills the map from topic.reported's and topic.routed's partitions parts, to
 * their current end; a record the registry could not answer for fails the
 * rebuild (the kernel tries again), so that no deviation is left out. */
static int on_rebuild(void *opaque, const int32_t *parts, int cnt)
{
        avk_analysis_t *a = opaque;
        a->rebuild_unavailable = 0;
        if (avk_service_replay(a->service, a->topic[IN_REPORTED], parts, cnt, rebuild_reported,
                               a) != 0 ||
            avk_service_replay(a->service, a->topic[IN_ROUTED], parts, cnt, rebuild_routed, a) != 0)
                return -1;
        if (a->rebuild_unavailable)
                avk_log(AVK_LOG_WARN, COMPONENT,
                        "rebuild: the Schema Registry had no answer; trying again");
        return a->rebuild_unavailable ? -1 : 0;
}

/* ---- life cycle -------------------------------------------------------- */

static void register_metrics(avk_analysis_t *a, avk_metrics_t *m)
{
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
        a->m_held = avk_metrics_gauge(m, "avk_analysis_held", "Input records held.", NULL);
        a->m_cached =
            avk_metrics_gauge(m, "avk_analysis_deviations",
                              "Deviations known (the map for later state changes).", NULL);
        a->m_filed_again = avk_metrics_counter(
            m, "avk_analysis_filed_again_total",
            "DeviationReported records under a deviation id filed before, not forwarded: the first "
            "body filed is the deviation.",
            NULL);
        a->m_unrouted = avk_metrics_counter(
            m, "avk_analysis_routing_unknown_total",
            "Records forwarded without routing_decision: the DeviationRouted of their hop was not "
            "in topic.routed (evicted from the map, or never written).",
            NULL);
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
        a->topic[IN_ROUTED] = avk_config_get(cfg, "topic.routed");
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

static int open_service(avk_analysis_t *a, const avk_config_t *cfg, avk_metrics_t *metrics,
                        char *errstr, size_t errstr_size)
{
        struct avk_service_options opts = {
            .component = COMPONENT,
            .metric_prefix = "avk_analysis",
            .group = avk_config_get(cfg, "analysis.group.id"),
            .inputs = a->topic,
            .input_cnt = IN_CNT,
            .revoke_note = "their inputs will be forwarded again by the next owner",
            .max_unfinished = a->max_held,
            .metrics = metrics,
            .hooks = {.on_record = on_record,
                      .on_tick = on_tick,
                      .on_eof = on_eof,
                      .wait = wait_for_work,
                      .on_rebuild = on_rebuild,
                      .on_drop = on_drop,
                      .on_revoke = on_revoke,
                      .acked = on_acked,
                      .opaque = a}};
        if (!(a->service = avk_service_new(cfg, &opts, errstr, errstr_size)))
                return -1;
        a->outbox = avk_service_outbox(a->service);
        return 0;
}

avk_analysis_t *avk_analysis_new(const avk_config_t *cfg, avk_metrics_t *metrics, char *errstr,
                                 size_t errstr_size)
{
        avk_analysis_t *a = calloc(1, sizeof(*a));
        if (!a || avk_htab_init(&a->jobs_by_id, 1024) != 0) {
                free(a);
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        TAILQ_INIT(&a->jobs);
        a->cfg = cfg;
        a->rng = (uint64_t)avk_clock_system_ms() ^ ((uint64_t)getpid() << 32);
        if (!metrics && !(metrics = a->own_metrics = avk_metrics_new())) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        register_metrics(a, metrics);
        if (read_settings(a, cfg, errstr, errstr_size) != 0 ||
            avk_env_open(&a->env, cfg, errstr, errstr_size) != 0)
                goto fail;
        a->schema[IN_REPORTED] = avk_catalog_by_name(a->env.catalog, "DeviationReported");
        a->schema[IN_STATUS] = avk_catalog_by_name(a->env.catalog, "DeviationStatus");
        a->schema[IN_ROUTED] = avk_catalog_by_name(a->env.catalog, "DeviationRouted");
        a->record_schema = avk_catalog_by_name(a->env.catalog, "AnalysisRecord");
        a->codec = avk_codec_new(a->env.catalog, a->env.registry);
        a->cache = avk_idcache_new((size_t)avk_config_get_int(cfg, "analysis.cache.max.entries"));
        int values_made = 1;
        for (int k = 0; k < IN_CNT; k++)
                values_made =
                    values_made && a->schema[k] &&
                    avro_generic_value_new(avk_schema_iface(a->schema[k]), &a->value[k]) == 0;
        if (!values_made || !a->record_schema || !a->codec || !a->cache ||
            avro_generic_value_new(avk_schema_iface(a->record_schema), &a->record_value) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (avk_webhook_multi_open(&a->multi, &a->curl_inited, errstr, errstr_size) != 0 ||
            open_service(a, cfg, metrics, errstr, errstr_size) != 0)
                goto fail;
        return a;
fail:
        avk_analysis_destroy(a);
        return NULL;
}

int avk_analysis_run(avk_analysis_t *a, char *errstr, size_t errstr_size)
{
        avk_log(AVK_LOG_INFO, COMPONENT, "consuming %s, %s and %s as group %s; sink %s",
                a->topic[IN_STATUS], a->topic[IN_REPORTED], a->topic[IN_ROUTED],
                avk_config_get(a->cfg, "analysis.group.id"), a->sink_url ? "configured" : "none");
        return avk_service_run(a->service, errstr, errstr_size);
}

void avk_analysis_stop(avk_analysis_t *a)
{
        avk_service_stop(a->service);
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
        return avk_service_ready(a->service, why, why_size);
}

void avk_analysis_destroy(avk_analysis_t *a)
{
        if (!a)
                return;
        /* What a run left (none after a stop: the revoke ended every job). */
        drop_sink(a);
        while (!TAILQ_EMPTY(&a->jobs)) {
                struct job *j = TAILQ_FIRST(&a->jobs);
                TAILQ_REMOVE(&a->jobs, j, link);
                job_free(j);
        }
        avk_htab_destroy(&a->jobs_by_id);
        avk_service_destroy(a->service);
        avk_webhook_multi_close(a->multi, a->curl_inited);
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
        avk_metrics_destroy(a->own_metrics);
        free(a);
}
