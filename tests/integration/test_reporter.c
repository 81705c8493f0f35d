/*
 * The intake library against the in-process mock cluster: a document is
 * "filed" only once Kafka has it, keyed by its deviation id; rejected ones
 * send nothing; JSON text is filed and rejected as its tree is; threads may
 * file at once; an outage shorter than the ack timeout loses nothing, a
 * longer one is answered "unavailable"; a served reporter's outcomes come
 * in the thread that serves them; a receipted reporter's commit
 * interval makes one transaction of the documents sent within it, and its
 * librdkafka main thread runs at the lowest priority.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/contract/jsonparse.h"
#include "producer/intake/reporter.h"
#include "tests/support/check_text.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/test_data.h"
#include "tests/support/threads.h"
#include "tests/support/wait_for.h"

static struct mock_kafka mk;
static json_t *sample;

static void setup(void)
{
        char err[512];
        mock_kafka_start(&mk, 3);
        sample = test_data_load_json(AVK_SOURCE_DIR
                                     "/deploy/samples/01-discharge-information-missing.json",
                                     err, sizeof(err));
        ck_assert_msg(sample != NULL, "%s", err);
}

static void teardown(void)
{
        json_decref(sample);
        mock_kafka_stop(&mk);
}

static avk_reporter_t *reporter(void)
{
        char err[512];
        avk_reporter_t *r = avk_reporter_new(mk.cfg, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s", err);
        return r;
}

struct keys {
        size_t n;
        char key[1024][AVK_ID_SIZE];
};

static void collect_key(void *opaque, const rd_kafka_message_t *m)
{
        struct keys *k = opaque;
        ck_assert_uint_lt(k->n, 1024);
        ck_assert_uint_eq(m->key_len, AVK_ID_SIZE - 1);
        memcpy(k->key[k->n], m->key, AVK_ID_SIZE - 1);
        k->key[k->n++][AVK_ID_SIZE - 1] = '\0';
}

static size_t count_key(const struct keys *k, const char *key)
{
        size_t n = 0;
        for (size_t i = 0; i < k->n; i++)
                n += strcmp(k->key[i], key) == 0;
        return n;
}

START_TEST(filed_deviation_is_in_kafka_keyed_by_its_id)
{
        avk_reporter_t *r = reporter();
        char id[AVK_ID_SIZE];
        struct avk_errors errs;
        ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, sample, id, &errs), AVK_FILED);
        ck_assert_str_eq(id, "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10");
        avk_reporter_destroy(r);
        static struct keys k;
        k.n = 0;
        ck_assert_uint_eq(mock_kafka_read_all(&mk, "deviation.reported", collect_key, &k), 1);
        ck_assert_str_eq(k.key[0], id);
}
END_TEST

START_TEST(missing_id_is_generated_as_a_random_uuid)
{
        avk_reporter_t *r = reporter();
        json_t *doc = json_copy(sample);
        json_object_del(doc, "deviation_id");
        char first[AVK_ID_SIZE], second[AVK_ID_SIZE];
        struct avk_errors errs;
        ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, doc, first, &errs), AVK_FILED);
        ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, doc, second, &errs), AVK_FILED);
        json_decref(doc);
        avk_reporter_destroy(r);
        ck_assert_uint_eq(strlen(first), 36);
        ck_assert_int_eq(first[14], '4'); /* version 4: random */
        ck_assert_str_ne(first, second);
        static struct keys k;
        k.n = 0;
        mock_kafka_read_all(&mk, "deviation.reported", collect_key, &k);
        ck_assert_uint_eq(count_key(&k, first), 1);
        ck_assert_uint_eq(count_key(&k, second), 1);
}
END_TEST

START_TEST(rejected_document_sends_nothing)
{
        avk_reporter_t *r = reporter();
        json_t *doc = json_copy(sample);
        json_object_set_new(doc, "category", json_string("WEATHER"));
        json_object_del(doc, "description");
        char id[AVK_ID_SIZE];
        struct avk_errors errs;
        ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, doc, id, &errs), AVK_REJECTED);
        json_decref(doc);
        char joined[2048];
        avk_errors_join(&errs, joined, sizeof(joined));
        ck_assert_contains(joined, "category: unknown symbol \"WEATHER\"");
        ck_assert_contains(joined, "description: is required");
        avk_reporter_destroy(r);
        static struct keys k;
        k.n = 0;
        ck_assert_uint_eq(mock_kafka_read_all(&mk, "deviation.reported", collect_key, &k), 0);
}
END_TEST

START_TEST(response_goes_to_its_topic_keyed_by_the_deviation)
{
        avk_reporter_t *r = reporter();
        json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:s}", "deviation_id",
                                "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10", "responded_at",
                                "2026-11-18T09:00:00Z", "party", "VGR", "kind", "ACKNOWLEDGED",
                                "unit_hsa_id", "SE2321000131-E000000012345");
        char id[AVK_ID_SIZE];
        struct avk_errors errs;
        enum avk_result result = avk_reporter_file(r, AVK_KIND_RESPONSE, doc, id, &errs);
        char joined[2048];
        ck_assert_msg(result == AVK_FILED, "%s", avk_errors_join(&errs, joined, sizeof(joined)));
        json_decref(doc);
        ck_assert_str_ne(id, "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10"); /* its own response_id */
        avk_reporter_destroy(r);
        static struct keys k;
        k.n = 0;
        ck_assert_uint_eq(mock_kafka_read_all(&mk, "deviation.response", collect_key, &k), 1);
        ck_assert_str_eq(k.key[0], "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10");
}
END_TEST

struct values {
        size_t n;
        char *value[4];
        size_t len[4];
};

static void collect_value(void *opaque, const rd_kafka_message_t *m)
{
        struct values *v = opaque;
        ck_assert_uint_lt(v->n, 4);
        v->value[v->n] = malloc(m->len);
        memcpy(v->value[v->n], m->payload, m->len);
        v->len[v->n++] = m->len;
}

static void count_done(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        (void)id;
        (void)reason;
        *(int *)opaque += result == AVK_FILED;
}

/* The joined errors of text filed as JSON text, and as the tree it parses to. */
static void assert_same_rejection(avk_reporter_t *r, const char *text)
{
        char id[AVK_ID_SIZE], from_text[4096], from_tree[4096], reason[256];
        struct avk_errors errs;
        avk_prepared_t *d;
        ck_assert_int_eq(
            avk_reporter_prepare_json(r, AVK_KIND_DEVIATION, text, strlen(text), id, &errs, &d),
            AVK_REJECTED);
        avk_errors_join(&errs, from_text, sizeof(from_text));
        json_t *doc = avk_json_parse(text, strlen(text), reason, sizeof(reason));
        if (doc) {
                ck_assert_int_eq(avk_reporter_prepare(r, AVK_KIND_DEVIATION, doc, id, &errs, &d),
                                 AVK_REJECTED);
                avk_errors_join(&errs, from_tree, sizeof(from_tree));
                json_decref(doc);
        } else {
                snprintf(from_tree, sizeof(from_tree), "not valid JSON at %s", reason);
        }
        ck_assert_str_eq(from_text, from_tree);
}

START_TEST(json_text_is_filed_and_rejected_as_its_tree_is)
{
        avk_reporter_t *r = reporter();
        char *text = json_dumps(sample, JSON_COMPACT);
        char id[AVK_ID_SIZE];
        struct avk_errors errs;
        avk_prepared_t *d;
        int filed = 0;
        ck_assert_int_eq(
            avk_reporter_prepare_json(r, AVK_KIND_DEVIATION, text, strlen(text), id, &errs, &d),
            AVK_FILED);
        ck_assert_str_eq(id, "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10");
        avk_reporter_send(r, d, count_done, &filed);
        ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, sample, id, &errs), AVK_FILED);

        /* Without its id, a new one each time. */
        json_t *without_id = json_copy(sample);
        json_object_del(without_id, "deviation_id");
        char *text_without_id = json_dumps(without_id, JSON_COMPACT);
        char first[AVK_ID_SIZE], second[AVK_ID_SIZE];
        for (int i = 0; i < 2; i++) {
                ck_assert_int_eq(avk_reporter_prepare_json(r, AVK_KIND_DEVIATION, text_without_id,
                                                           strlen(text_without_id),
                                                           i ? second : first, &errs, &d),
                                 AVK_FILED);
                avk_prepared_destroy(d);
        }
        ck_assert_int_eq(first[14], '4');
        ck_assert_str_ne(first, second);

        /* Rejected with every error, word for word the tree path's. */
        json_t *bad = json_copy(sample);
        json_object_set_new(bad, "category", json_string("WEATHER"));
        json_object_del(bad, "description");
        json_object_set_new(json_object_get(bad, "reporter"), "party", json_string("Stockholm"));
        char *bad_text = json_dumps(bad, JSON_COMPACT);
        assert_same_rejection(r, bad_text);
        assert_same_rejection(r, "{\"deviation_id\":");
        assert_same_rejection(r, "[]");
        assert_same_rejection(r, "{\"deviation_id\":\"a\",\"deviation_id\":\"b\"}");
        avk_reporter_destroy(r);
        ck_assert_int_eq(filed, 1);

        /* The single pass and the tree path filed the same bytes. */
        static struct values v;
        v.n = 0;
        ck_assert_uint_eq(mock_kafka_read_all(&mk, "deviation.reported", collect_value, &v), 2);
        ck_assert_uint_eq(v.len[0], v.len[1]);
        ck_assert(memcmp(v.value[0], v.value[1], v.len[0]) == 0);
        for (size_t i = 0; i < v.n; i++)
                free(v.value[i]);
        free(text);
        free(text_without_id);
        free(bad_text);
        json_decref(without_id);
        json_decref(bad);
}
END_TEST

/* The gateway's pass for a document that carries its own id: the bytes of
 * avk_reporter_prepare_json() and the party it names; no id is made for a
 * document without one, and nothing but a valid document is taken. */
START_TEST(a_document_with_its_own_id_is_prepared_in_one_pass_with_its_party)
{
        avk_reporter_t *r = reporter();
        char *text = json_dumps(sample, JSON_COMPACT);
        char id[AVK_ID_SIZE], json_id[AVK_ID_SIZE], party[AVK_PARTY_SIZE];
        struct avk_errors errs;
        avk_prepared_t *own, *json;
        ck_assert_int_eq(avk_reporter_prepare_own(r, AVK_KIND_DEVIATION, text, strlen(text), id,
                                                  party, &errs, &own),
                         AVK_FILED);
        ck_assert_int_eq(avk_reporter_prepare_json(r, AVK_KIND_DEVIATION, text, strlen(text),
                                                   json_id, &errs, &json),
                         AVK_FILED);
        ck_assert_str_eq(id, json_id);
        ck_assert_str_eq(party, json_string_value(
                                    json_object_get(json_object_get(sample, "reporter"), "party")));
        size_t own_len, json_len;
        const void *own_payload = avk_prepared_payload(own, &own_len);
        const void *json_payload = avk_prepared_payload(json, &json_len);
        ck_assert_uint_eq(own_len, json_len);
        ck_assert(memcmp(own_payload, json_payload, own_len) == 0);
        avk_prepared_destroy(own);
        avk_prepared_destroy(json);

        json_t *without_id = json_copy(sample);
        json_object_del(without_id, "deviation_id");
        json_t *bad = json_copy(sample);
        json_object_set_new(bad, "category", json_string("WEATHER"));
        char *texts[] = {json_dumps(without_id, JSON_COMPACT), json_dumps(bad, JSON_COMPACT)};
        for (size_t i = 0; i < 2; i++) {
                ck_assert_int_eq(avk_reporter_prepare_own(r, AVK_KIND_DEVIATION, texts[i],
                                                          strlen(texts[i]), id, party, &errs, &own),
                                 AVK_REJECTED);
                ck_assert_ptr_null(own);
                ck_assert_uint_eq(errs.cnt, 0);
                free(texts[i]);
        }
        struct avk_reporter_stats st;
        avk_reporter_stats(r, &st);
        ck_assert_uint_eq(st.rejected, 0);
        avk_reporter_destroy(r);
        free(text);
        json_decref(without_id);
        json_decref(bad);
}
END_TEST

struct served_outcome {
        pthread_t thread;
        enum avk_result result;
        int calls;
};

static void note_served_outcome(void *opaque, const char *id, enum avk_result result,
                                const char *reason)
{
        (void)id;
        (void)reason;
        struct served_outcome *o = opaque;
        o->thread = pthread_self();
        o->result = result;
        o->calls++;
}

START_TEST(a_served_reporters_outcomes_come_in_the_thread_that_serves_them)
{
        char err[512], id[AVK_ID_SIZE];
        struct avk_errors errs;
        avk_reporter_t *r = avk_reporter_new_mode(mk.cfg, AVK_REPORTER_SERVED, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s", err);
        avk_prepared_t *doc;
        ck_assert_int_eq(avk_reporter_prepare(r, AVK_KIND_DEVIATION, sample, id, &errs, &doc),
                         AVK_FILED);
        struct served_outcome o = {0};
        avk_reporter_send(r, doc, note_served_outcome, &o);
        int64_t until = wait_for_now_ms() + 10000;
        while (o.calls == 0 && wait_for_now_ms() < until)
                ck_assert_int_eq(avk_reporter_serve(r, 100), 0);
        ck_assert_int_eq(o.calls, 1);
        ck_assert_int_eq(o.result, AVK_FILED);
        ck_assert(pthread_equal(o.thread, pthread_self()));
        /* A wake before a serve makes it return at once, not after 10 s. */
        avk_reporter_wake(r);
        int64_t from = wait_for_now_ms();
        ck_assert_int_eq(avk_reporter_serve(r, 10000), 0);
        ck_assert_int_lt(wait_for_now_ms() - from, 5000);
        /* Filing and waiting serves the reports itself. */
        ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, sample, id, &errs), AVK_FILED);
        avk_reporter_destroy(r);
        /* A reporter with its own delivery thread is not served by the caller. */
        avk_reporter_t *plain = reporter();
        ck_assert_int_eq(avk_reporter_serve(plain, 0), -1);
        avk_reporter_destroy(plain);
        static struct keys k;
        k.n = 0;
        ck_assert_uint_eq(mock_kafka_read_all(&mk, "deviation.reported", collect_key, &k), 2);
}
END_TEST

#define THREADS    4
#define PER_THREAD 50
struct filer {
        avk_reporter_t *r;
        json_t *doc;
        char ids[PER_THREAD][AVK_ID_SIZE];
        int filed;
};

static void *file_many(void *arg)
{
        struct filer *f = arg;
        for (int i = 0; i < PER_THREAD; i++) {
                struct avk_errors errs;
                f->filed += avk_reporter_file(f->r, AVK_KIND_DEVIATION, f->doc, f->ids[i], &errs) ==
                            AVK_FILED;
        }
        return NULL;
}

START_TEST(threads_file_through_one_reporter)
{
        avk_reporter_t *r = reporter();
        json_t *doc = json_copy(sample);
        json_object_del(doc, "deviation_id");
        static struct filer filers[THREADS];
        pthread_t threads[THREADS];
        for (int t = 0; t < THREADS; t++) {
                filers[t] = (struct filer){.r = r, .doc = doc};
                ck_assert_int_eq(pthread_create(&threads[t], NULL, file_many, &filers[t]), 0);
        }
        for (int t = 0; t < THREADS; t++) {
                pthread_join(threads[t], NULL);
                ck_assert_int_eq(filers[t].filed, PER_THREAD);
        }
        json_decref(doc);
        avk_reporter_destroy(r);
        static struct keys k;
        k.n = 0;
        ck_assert_uint_eq(mock_kafka_read_all(&mk, "deviation.reported", collect_key, &k),
                          THREADS * PER_THREAD);
        for (int t = 0; t < THREADS; t++)
                for (int i = 0; i < PER_THREAD; i++)
                        ck_assert_uint_eq(count_key(&k, filers[t].ids[i]), 1);
}
END_TEST

START_TEST(kafka_down_past_the_ack_timeout_is_unavailable)
{
        char err[256];
        ck_assert_int_eq(avk_config_set(mk.cfg, "intake.ack.timeout.ms", "1500", err, sizeof(err)),
                         0);
        avk_config_set(mk.cfg, "kafka.log_level", "0", err, sizeof(err));
        avk_reporter_t *r = reporter();
        mock_kafka_set_brokers(&mk, 0);
        char id[AVK_ID_SIZE];
        struct avk_errors errs;
        time_t start = time(NULL);
        ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, sample, id, &errs),
                         AVK_UNAVAILABLE);
        ck_assert_int_le(time(NULL) - start, 10);
        char joined[1024];
        ck_assert_contains(avk_errors_join(&errs, joined, sizeof(joined)),
                           "Kafka did not acknowledge");
        mock_kafka_set_brokers(&mk, 1);
        avk_reporter_destroy(r);
}
END_TEST

struct outcome {
        pthread_mutex_t lock;
        int filed, other;
};

static void count_outcome(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        (void)id;
        (void)reason;
        struct outcome *o = opaque;
        pthread_mutex_lock(&o->lock);
        if (result == AVK_FILED)
                o->filed++;
        else
                o->other++;

        pthread_mutex_unlock(&o->lock);
}

/* A stream of deviations submitted without waiting, each with a new id. */
#define STREAM_MAX 200
struct stream {
        avk_reporter_t *r;
        json_t *doc;
        struct outcome o;
        int n;
        char ids[STREAM_MAX][AVK_ID_SIZE];
};

static void stream_start(struct stream *st)
{
        char err[256];
        avk_config_set(mk.cfg, "kafka.log_level", "0", err, sizeof(err));
        /* Reconnect within the ack timeout even on a loaded machine: the
         * default backoff grows to 10 s, the whole ack timeout. */
        avk_config_set(mk.cfg, "kafka.reconnect.backoff.max.ms", "500", err, sizeof(err));
        st->r = reporter();
        st->doc = json_copy(sample);
        json_object_del(st->doc, "deviation_id");
        st->o = (struct outcome){.lock = PTHREAD_MUTEX_INITIALIZER};
        st->n = 0;
}

static void stream_submit(struct stream *st)
{
        struct avk_errors errs;
        ck_assert_int_lt(st->n, STREAM_MAX);
        ck_assert_int_eq(avk_reporter_submit(st->r, AVK_KIND_DEVIATION, st->doc, st->ids[st->n++],
                                             &errs, count_outcome, &st->o),
                         AVK_FILED);
}

/* Waits for every outcome: each must be filed, and in Kafka exactly once. */
static void stream_finish_and_check(struct stream *st)
{
        avk_reporter_destroy(st->r);
        json_decref(st->doc);
        ck_assert_int_eq(st->o.filed, st->n);
        ck_assert_int_eq(st->o.other, 0);
        static struct keys k;
        k.n = 0;
        ck_assert_uint_eq(mock_kafka_read_all(&mk, "deviation.reported", collect_key, &k),
                          (size_t)st->n);
        for (int i = 0; i < st->n; i++)
                ck_assert_uint_eq(count_key(&k, st->ids[i]), 1);
}

START_TEST(outage_shorter_than_the_ack_timeout_loses_and_doubles_nothing)
{
        static struct stream st;
        stream_start(&st);
        mock_kafka_set_brokers(&mk, 0);
        for (int i = 0; i < 20; i++)
                stream_submit(&st);
        sleep(1);
        mock_kafka_set_brokers(&mk, 1);
        stream_finish_and_check(&st);
}
END_TEST

static uint64_t filed_count(avk_reporter_t *r)
{
        struct avk_reporter_stats st;
        avk_reporter_stats(r, &st);
        return st.filed;
}

START_TEST(a_commit_interval_makes_one_transaction_of_documents_sent_within_it)
{
        char err[512];
        avk_reporter_t *r = avk_reporter_new_mode(mk.cfg, AVK_REPORTER_RECEIPTED, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s", err);
        avk_reporter_set_commit_interval(r, 2000);
        json_t *doc = json_copy(sample);
        json_object_del(doc, "deviation_id");
        char id[AVK_ID_SIZE], ids[5][AVK_ID_SIZE];
        struct avk_errors errs;
        ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, doc, id, &errs), AVK_FILED);
        /* Each of these would find the drain thread idle and begin a
         * transaction of its own without the interval. */
        struct outcome o = {.lock = PTHREAD_MUTEX_INITIALIZER};
        for (int i = 0; i < 5; i++) {
                ck_assert_int_eq(avk_reporter_submit(r, AVK_KIND_DEVIATION, doc, ids[i], &errs,
                                                     count_outcome, &o),
                                 AVK_FILED);
                usleep(20000);
        }
        WAIT_FOR_MS(filed_count(r), 6, 60000);
        struct avk_reporter_stats st;
        avk_reporter_stats(r, &st);
        ck_assert_uint_eq(st.txn_committed, 2);
        avk_reporter_destroy(r);
        json_decref(doc);
        ck_assert_int_eq(o.filed, 5);
        static struct keys k;
        k.n = 0;
        ck_assert_uint_eq(mock_kafka_read_all(&mk, "deviation.reported", collect_key, &k), 6);
        for (int i = 0; i < 5; i++)
                ck_assert_uint_eq(count_key(&k, ids[i]), 1);
}
END_TEST

static int at_nice(const char *tid, void *opaque)
{
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, (id_t)atoi(tid));
        return errno == 0 && nice == *(const int *)opaque;
}

/* Threads of this process whose name starts with prefix and whose nice value is nice. */
static int threads_at(const char *prefix, int nice)
{
        return threads_named(prefix, at_nice, &nice);
}

/* librdkafka 2.0.2's main thread spins out a transaction's 1 ms timers
 * (docs/gateway.md, "Group commit"): a receipted (transactional) reporter's
 * runs at nice 19, so that its spin yields to threads with work; the
 * broker threads, the transaction coordinator's too, keep their priority. */
START_TEST(a_receipted_reporters_librdkafka_main_thread_runs_at_the_lowest_priority)
{
        char err[512];
        avk_reporter_t *plain = reporter();
        ck_assert_int_eq(threads_at("rdk:main", 19), 0);
        avk_reporter_t *r = avk_reporter_new_mode(mk.cfg, AVK_REPORTER_RECEIPTED, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s", err);
        ck_assert_int_eq(threads_at("rdk:main", 19), 1);
        ck_assert_int_eq(threads_at("rdk:broker", 19), 0);
        json_t *doc = json_copy(sample);
        json_object_del(doc, "deviation_id");
        char id[AVK_ID_SIZE];
        struct avk_errors errs;
        ck_assert_int_eq(avk_reporter_file(r, AVK_KIND_DEVIATION, doc, id, &errs), AVK_FILED);
        ck_assert_int_eq(threads_at("rdk:broker", 19), 0);
        avk_reporter_destroy(r);
        avk_reporter_destroy(plain);
        json_decref(doc);
}
END_TEST

/* Files 200 documents, calling disturb() before documents 50 and 120. */
static void stream_disturbed(void (*disturb)(int at))
{
        static struct stream st;
        stream_start(&st);
        for (int i = 0; i < 200; i++) {
                if (i == 50 || i == 120)
                        disturb(i);
                stream_submit(&st);
                if (i % 10 == 0)
                        usleep(20000); /* spread the stream over the disturbances */
        }
        stream_finish_and_check(&st);
}

static void move_leaders(int at)
{
        int partitions = (int)avk_config_get_int(mk.cfg, "topic.partitions");
        for (int p = 0; p < partitions; p++)
                rd_kafka_mock_partition_set_leader(mk.cluster, "deviation.reported", p,
                                                   1 + (p + at) % 3);
}

static void fail_produce_requests(int at)
{
        (void)at;
        rd_kafka_mock_push_request_errors(mk.cluster, MOCK_KAFKA_API_PRODUCE, 1,
                                          RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
}

/*
 * Leader changes and injected produce errors mid-stream. librdkafka 2.0.2
 * with its mock cluster now and then holds fewer records than it
 * acknowledged under these faults (high watermarks summing to 197-199 of
 * 200) - with this reporter, with the one before it, and with a bare
 * librdkafka producer (tests/cli/raw_mock_faults.c, about 3 runs in 10). So
 * these run as ctest's test_reporter_mock_faults, labelled known-loss,
 * outside CI, until a real cluster settles whether the client or the mock
 * loses them.
 */
START_TEST(leader_changes_mid_stream_lose_and_double_nothing)
{
        stream_disturbed(move_leaders);
}
END_TEST

START_TEST(produce_errors_mid_stream_lose_and_double_nothing)
{
        stream_disturbed(fail_produce_requests);
}
END_TEST

static Suite *reporter_suite(void)
{
        Suite *s = suite_create("reporter");
        TCase *tc = tcase_create("mock cluster");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, filed_deviation_is_in_kafka_keyed_by_its_id);
        tcase_add_test(tc, missing_id_is_generated_as_a_random_uuid);
        tcase_add_test(tc, rejected_document_sends_nothing);
        tcase_add_test(tc, response_goes_to_its_topic_keyed_by_the_deviation);
        tcase_add_test(tc, json_text_is_filed_and_rejected_as_its_tree_is);
        tcase_add_test(tc, a_document_with_its_own_id_is_prepared_in_one_pass_with_its_party);
        tcase_add_test(tc, a_served_reporters_outcomes_come_in_the_thread_that_serves_them);
        tcase_add_test(tc, threads_file_through_one_reporter);
        tcase_add_test(tc, kafka_down_past_the_ack_timeout_is_unavailable);
        tcase_add_test(tc, outage_shorter_than_the_ack_timeout_loses_and_doubles_nothing);
        tcase_add_test(tc, a_commit_interval_makes_one_transaction_of_documents_sent_within_it);
        tcase_add_test(tc,
                       a_receipted_reporters_librdkafka_main_thread_runs_at_the_lowest_priority);
        suite_add_tcase(s, tc);
        /* Run apart from CI (ctest label known-loss): see the comment above them. */
        TCase *faults = tcase_create("mock faults");
        tcase_add_checked_fixture(faults, setup, teardown);
        tcase_set_timeout(faults, 120);
        tcase_add_test(faults, leader_changes_mid_stream_lose_and_double_nothing);
        tcase_add_test(faults, produce_errors_mid_stream_lose_and_double_nothing);
        suite_add_tcase(s, faults);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(reporter_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
