/*
 * The intake spool against the in-process mock cluster: while Kafka is down
 * documents are answered "spooled" and kept on disk; when Kafka is back they
 * reach it in the order they were sent, each exactly once - also across a
 * restart, and also when a previous process died after producing part of
 * the spool but before recording that it had, or with a transaction in
 * flight; each stored document has one receipt, its id only, and the drain
 * decides from the receipts alone what is stored; and while the Schema
 * Registry cannot be reached, documents are spooled and reach Kafka in the
 * registry's framing once it answers; a spool whose disk filled during the
 * outage drains all the same, and a drain that moves nothing while Kafka
 * answers says so.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/contract/avro_field.h"
#include "common/contract/codec.h"
#include "common/contract/receipt.h"
#include "common/kafka/kafka.h"
#include "common/util/env.h"
#include "producer/intake/reporter.h"
#include "producer/intake/spool.h"
#include "tests/support/fake_registry.h"
#include "tests/support/check_text.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/small_fs.h"
#include "tests/support/test_data.h"

#define DOCS     60
#define RECEIPTS "deviation.intake.receipts"

static struct mock_kafka mk;
static json_t *doc;
static char dir[64];

/* Transactions the reporters of this test did not commit: their records stay visible on the
 * mock cluster (a real one hides them from read_committed readers), so a document whose
 * transaction was aborted and produced again may be read twice here. */
static uint64_t not_committed;

static void setup(void)
{
        char err[512];
        not_committed = 0;
        mock_kafka_start(&mk, 3);
        json_t *sample = test_data_load_json(
            AVK_SOURCE_DIR "/deploy/samples/01-discharge-information-missing.json", err,
            sizeof(err));
        ck_assert_msg(sample != NULL, "%s", err);
        doc = json_copy(sample);
        json_decref(sample);
        json_object_del(doc, "deviation_id"); /* each filing gets a new id */
        ck_assert_ptr_nonnull(test_data_temp_dir("avk-spool", dir, sizeof(dir)));
        ck_assert_int_eq(avk_config_set(mk.cfg, "intake.ack.timeout.ms", "1500", err, sizeof(err)),
                         0);
        avk_config_set(mk.cfg, "kafka.log_level", "0", err, sizeof(err));
}

static void teardown(void)
{
        json_decref(doc);
        mock_kafka_stop(&mk);
        test_data_remove_dir(dir);
}

static void use_spool_in(const char *spool_dir)
{
        char err[256];
        ck_assert_int_eq(avk_config_set(mk.cfg, "intake.spool.dir", spool_dir, err, sizeof(err)),
                         0);
}

static void use_spool(void)
{
        use_spool_in(dir);
}

static avk_reporter_t *reporter(void)
{
        char err[512];
        avk_reporter_t *r = avk_reporter_new(mk.cfg, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s", err);
        return r;
}

/* Documents sent in order, and what each was answered. */
struct sent {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int n, answered;
        char ids[DOCS][AVK_ID_SIZE];
        enum avk_result result[DOCS];
        char reason[DOCS][256];
};

static struct sent sent;

static void on_done(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        (void)id;
        int i = (int)(intptr_t)opaque;
        pthread_mutex_lock(&sent.lock);
        sent.result[i] = result;
        snprintf(sent.reason[i], sizeof(sent.reason[i]), "%s", reason ? reason : "");
        sent.answered++;
        pthread_cond_broadcast(&sent.cond);
        pthread_mutex_unlock(&sent.lock);
}

static void send_docs(avk_reporter_t *r, int n)
{
        for (int i = 0; i < n; i++) {
                struct avk_errors errs;
                int at = sent.n++;
                ck_assert_int_eq(avk_reporter_submit(r, AVK_KIND_DEVIATION, doc, sent.ids[at],
                                                     &errs, on_done, (void *)(intptr_t)at),
                                 AVK_FILED);
        }
        pthread_mutex_lock(&sent.lock);
        while (sent.answered < sent.n)
                pthread_cond_wait(&sent.cond, &sent.lock);
        pthread_mutex_unlock(&sent.lock);
}

static void wait_spool_empty(avk_reporter_t *r)
{
        struct avk_reporter_stats st;
        for (int i = 0; i < 600; i++) {
                avk_reporter_stats(r, &st);
                if (st.spool_pending == 0)
                        return;
                usleep(100000);
        }
        ck_abort_msg("the spool still holds %llu documents after 60 s",
                     (unsigned long long)st.spool_pending);
}

static void destroy(avk_reporter_t *r)
{
        struct avk_reporter_stats st;
        avk_reporter_stats(r, &st);
        not_committed += st.txn_not_committed;
        avk_reporter_destroy(r);
}

/* What the topic holds: each record's id header and partition, in order. */
struct records {
        size_t n;
        char id[4 * DOCS][AVK_ID_SIZE];
        int32_t partition[4 * DOCS];
        unsigned char magic[4 * DOCS]; /* the value's first byte: its framing */
};

static struct records rec;

static void collect(void *opaque, const rd_kafka_message_t *m)
{
        (void)opaque;
        rd_kafka_headers_t *hdrs;
        const void *id;
        size_t len;
        ck_assert_uint_lt(rec.n, 4 * DOCS);
        ck_assert_int_eq(rd_kafka_message_headers(m, &hdrs), 0);
        ck_assert_int_eq(rd_kafka_header_get_last(hdrs, "avk-id", &id, &len), 0);
        ck_assert_uint_eq(len, AVK_ID_SIZE - 1);
        memcpy(rec.id[rec.n], id, len);
        rec.id[rec.n][len] = '\0';
        rec.magic[rec.n] = m->len ? ((const unsigned char *)m->payload)[0] : 0xff;
        rec.partition[rec.n++] = m->partition;
}

static int sent_index(const char *id)
{
        for (int i = 0; i < sent.n; i++)
                if (strcmp(sent.ids[i], id) == 0)
                        return i;
        return -1;
}

/* Every accepted document (filed or spooled) is in Kafka exactly once, and
 * within a partition in the order it was sent; no other is. Once a
 * transaction was not committed, its documents may be read a second time
 * (not_committed): then each is there at least once, in order where first seen. */
static void check_accepted_in_topic(void)
{
        rec.n = 0;
        mock_kafka_read_all(&mk, "deviation.reported", collect, NULL);
        size_t accepted = 0, distinct = 0;
        for (int i = 0; i < sent.n; i++)
                accepted += sent.result[i] != AVK_UNAVAILABLE;
        if (!not_committed)
                ck_assert_uint_eq(rec.n, accepted);
        int last[64];
        for (int p = 0; p < 64; p++)
                last[p] = -1;
        int seen[DOCS] = {0};
        for (size_t i = 0; i < rec.n; i++) {
                int at = sent_index(rec.id[i]);
                ck_assert_msg(at >= 0, "record %zu has an id never sent: %s", i, rec.id[i]);
                ck_assert_msg(sent.result[at] != AVK_UNAVAILABLE, "%s was refused but is in Kafka",
                              rec.id[i]);
                ck_assert_msg(!seen[at]++ || not_committed, "%s is in Kafka twice", rec.id[i]);
                if (seen[at] > 1)
                        continue;
                distinct++;
                ck_assert_int_lt(rec.partition[i], 64);
                ck_assert_msg(at > last[rec.partition[i]], "%s overtook a document sent before it",
                              rec.id[i]);
                last[rec.partition[i]] = at;
        }
        ck_assert_uint_eq(distinct, accepted);
}

/* Every stored document has exactly one receipt. Not for a test with an
 * aborted transaction: the mock cluster keeps its records visible (a real
 * one hides them from read_committed readers). */
static void check_receipts(void)
{
        rec.n = 0;
        mock_kafka_read_all(&mk, RECEIPTS, collect, NULL);
        size_t stored = 0;
        for (int i = 0; i < sent.n; i++) {
                stored += sent.result[i] != AVK_UNAVAILABLE;
                int copies = 0;
                for (size_t j = 0; j < rec.n; j++)
                        copies += strcmp(rec.id[j], sent.ids[i]) == 0;
                int stored_once = sent.result[i] != AVK_UNAVAILABLE;
                ck_assert_msg(copies == stored_once || (not_committed && stored_once && copies > 1),
                              "%s has %d receipts", sent.ids[i], copies);
        }
        if (!not_committed)
                ck_assert_uint_eq(rec.n, stored);
}

/* The stored documents' ids and digests, and a codec to read receipts. */
struct filed {
        struct avk_env env;
        avk_codec_t *codec;
        avro_value_t receipt;
        size_t n;
        char id[DOCS][AVK_ID_SIZE];
        unsigned char digest[DOCS][AVK_RECEIPT_DIGEST_SIZE];
};

static void collect_digest(void *opaque, const rd_kafka_message_t *m)
{
        struct filed *f = opaque;
        ck_assert_uint_lt(f->n, DOCS);
        mock_kafka_header(m, "avk-id", f->id[f->n], sizeof(f->id[f->n]));
        ck_assert_int_eq(avk_receipt_digest(m->payload, m->len, f->digest[f->n]), 0);
        f->n++;
}

/* A receipt: keyed like the document (a deviation's key is its own id),
 * an IntakeReceipt with the document's id, party, time and the digest of
 * the document stored under the id, and nothing of the patient. */
static void receipt_is_what_the_view_needs(void *opaque, const rd_kafka_message_t *m)
{
        struct filed *f = opaque;
        char id[AVK_ID_SIZE], err[256];
        mock_kafka_header(m, "avk-id", id, sizeof(id));
        ck_assert_uint_eq(m->key_len, AVK_ID_SIZE - 1);
        ck_assert_int_eq(memcmp(m->key, id, m->key_len), 0);
        const char *personal_id =
            json_string_value(json_object_get(json_object_get(doc, "patient"), "personal_id"));
        for (size_t at = 0; at + strlen(personal_id) <= m->len; at++)
                ck_assert_msg(
                    memcmp((const char *)m->payload + at, personal_id, strlen(personal_id)) != 0,
                    "the receipt of %s holds the personnummer", id);
        avro_value_reset(&f->receipt);
        ck_assert_msg(avk_codec_decode(f->codec, m->payload, m->len,
                                       avk_catalog_by_name(f->env.catalog, "IntakeReceipt"),
                                       &f->receipt, err, sizeof(err)) == 0,
                      "%s", err);
        ck_assert_str_eq(avk_avro_text(&f->receipt, "id"), id);
        ck_assert_str_eq(avk_avro_text(&f->receipt, "deviation_id"), id);
        ck_assert_str_eq(avk_avro_text(&f->receipt, "kind"), "DEVIATION");
        ck_assert_str_eq(
            avk_avro_text(&f->receipt, "party"),
            json_string_value(json_object_get(json_object_get(doc, "reporter"), "party")));
        ck_assert_str_eq(avk_avro_text(&f->receipt, "reply_reference"),
                         json_string_value(json_object_get(doc, "reply_reference")));
        int64_t filed_at;
        ck_assert_int_eq(avk_avro_long(&f->receipt, "filed_at", &filed_at), 0);
        ck_assert_int_eq(filed_at, 1794902100000); /* the sample's reported_at */
        avro_value_t digest;
        const void *bytes;
        size_t len;
        ck_assert_int_eq(avk_avro_field(&f->receipt, "digest", &digest), 0);
        ck_assert_int_eq(avro_value_get_bytes(&digest, &bytes, &len), 0);
        ck_assert_uint_eq(len, AVK_RECEIPT_DIGEST_SIZE);
        size_t i = 0;
        while (i < f->n && strcmp(f->id[i], id) != 0)
                i++;
        ck_assert_msg(i < f->n, "%s has a receipt but no document", id);
        ck_assert_int_eq(memcmp(bytes, f->digest[i], len), 0);
}

/* Every sent document is in Kafka exactly once, and within a partition in
 * the order it was sent. */
static void check_topic(void)
{
        for (int i = 0; i < sent.n; i++)
                ck_assert_msg(sent.result[i] != AVK_UNAVAILABLE, "document %d was refused: %s", i,
                              sent.reason[i]);
        check_accepted_in_topic();
}

START_TEST(kafka_down_spools_and_drains_in_order_when_back)
{
        use_spool();
        avk_reporter_t *r = reporter();
        send_docs(r, 5); /* Kafka up: filed directly */
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(sent.result[i], AVK_FILED);
        mock_kafka_set_brokers(&mk, 0);
        send_docs(r, 40);
        for (int i = 5; i < 45; i++)
                ck_assert_msg(sent.result[i] == AVK_SPOOLED, "document %d answered %d", i,
                              sent.result[i]);
        struct avk_reporter_stats st;
        avk_reporter_stats(r, &st);
        ck_assert_uint_eq(st.spool_pending, 40);
        ck_assert_uint_eq(st.spooled, 40);
        mock_kafka_set_brokers(&mk, 1);
        wait_spool_empty(r);
        send_docs(r, 5); /* back to direct */
        destroy(r);
        check_topic();
        check_receipts();
}
END_TEST

START_TEST(spooled_documents_survive_a_restart)
{
        use_spool();
        avk_reporter_t *r = reporter();
        mock_kafka_set_brokers(&mk, 0);
        send_docs(r, 30);
        for (int i = 0; i < 30; i++)
                ck_assert_int_eq(sent.result[i], AVK_SPOOLED);
        destroy(r); /* Kafka still down: the spool keeps them */
        mock_kafka_set_brokers(&mk, 1);
        r = reporter();
        wait_spool_empty(r);
        destroy(r);
        check_topic();
        check_receipts();
}
END_TEST

/* How a drain before the one under test ended. */
enum crash {
        CRASH_COMMITTED, /* its transaction committed, the spool not told */
        CRASH_IN_FLIGHT, /* records sent, the transaction neither committed nor aborted */
        CRASH_NO_RECEIPT /* the documents reached their topic, no receipt did */
};

/* Produces the first produce spool entries as a drain would, with its
 * MAYBE records, and dies as crash says, recording no DONE. */
static void drain_partly_then_crash(size_t produce, enum crash crash)
{
        char err[512];
        avk_spool_t *spool = avk_spool_open(dir, 1 << 30, err, sizeof(err));
        ck_assert_msg(spool != NULL, "%s", err);
        const struct avk_spool_entry *batch[DOCS];
        size_t n = avk_spool_batch(spool, batch, DOCS);
        ck_assert_uint_ge(n, produce);
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_ptr_nonnull(conf);
        char txn_id[64];
        snprintf(txn_id, sizeof(txn_id), "avvik-intake-%s", avk_spool_instance(spool));
        if (crash != CRASH_NO_RECEIPT)
                ck_assert_int_eq(
                    rd_kafka_conf_set(conf, "transactional.id", txn_id, err, sizeof(err)),
                    RD_KAFKA_CONF_OK);
        rd_kafka_t *p = avk_kafka_producer_new(conf, err, sizeof(err));
        ck_assert_msg(p != NULL, "%s", err);
        rd_kafka_topic_t *receipts = rd_kafka_topic_new(p, RECEIPTS, NULL);
        int partitions = (int)avk_config_get_int(mk.cfg, "topic.partitions");
        int32_t partition[DOCS];
        int64_t scan_from[DOCS];
        for (size_t i = 0; i < produce; i++) {
                partition[i] = rd_kafka_msg_partitioner_murmur2_random(
                    receipts, batch[i]->key, strlen(batch[i]->key), partitions, NULL, NULL);
                scan_from[i] = 0;
        }
        ck_assert_int_eq(
            avk_spool_maybe(spool, batch, partition, scan_from, produce, err, sizeof(err)), 0);
        if (crash != CRASH_NO_RECEIPT) {
                ck_assert_ptr_null(rd_kafka_init_transactions(p, 10000));
                ck_assert_ptr_null(rd_kafka_begin_transaction(p));
        }
        for (size_t i = 0; i < produce; i++) {
                ck_assert_int_eq(rd_kafka_producev(
                                     p, RD_KAFKA_V_TOPIC(batch[i]->topic),
                                     RD_KAFKA_V_KEY(batch[i]->key, strlen(batch[i]->key)),
                                     RD_KAFKA_V_VALUE((void *)batch[i]->value, batch[i]->value_len),
                                     RD_KAFKA_V_HEADER("avk-id", batch[i]->id, -1),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                                 0);
                if (crash != CRASH_NO_RECEIPT)
                        ck_assert_int_eq(
                            rd_kafka_producev(
                                p, RD_KAFKA_V_RKT(receipts), RD_KAFKA_V_PARTITION(partition[i]),
                                RD_KAFKA_V_KEY(batch[i]->key, strlen(batch[i]->key)),
                                RD_KAFKA_V_VALUE((void *)batch[i]->id, strlen(batch[i]->id)),
                                RD_KAFKA_V_HEADER("avk-id", batch[i]->id, -1),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                            0);
        }
        if (crash == CRASH_COMMITTED)
                ck_assert_ptr_null(rd_kafka_commit_transaction(p, 10000));
        else /* the records reach the brokers; a transaction stays open */
                ck_assert_int_eq(rd_kafka_flush(p, 10000), 0);
        rd_kafka_topic_destroy(receipts);
        rd_kafka_destroy(p);
        avk_spool_close(spool);
}

static void check_copies(const char *topic, int expected_first_15, int expected_rest);

/* Spools 25 documents, lets a drain produce the first 15 of them and die as
 * crash says, and drains the spool in a new reporter; then each document is
 * in deviation.reported once (the first 15: first_15_copies times) and has
 * one receipt. Order is not checked: the crashed drain's batch went first. */
static void crash_mid_drain(enum crash crash, int first_15_copies)
{
        use_spool();
        avk_reporter_t *r = reporter();
        mock_kafka_set_brokers(&mk, 0);
        send_docs(r, 25);
        destroy(r);
        mock_kafka_set_brokers(&mk, 1);
        drain_partly_then_crash(15, crash);
        r = reporter();
        wait_spool_empty(r);
        destroy(r);
        check_copies("deviation.reported", first_15_copies, 1);
        check_copies(RECEIPTS, 1, 1);
}

/* How many times each sent document is in the topic. */
static void check_copies(const char *topic, int expected_first_15, int expected_rest)
{
        rec.n = 0;
        mock_kafka_read_all(&mk, topic, collect, NULL);
        for (int i = 0; i < sent.n; i++) {
                int copies = 0;
                for (size_t j = 0; j < rec.n; j++)
                        copies += strcmp(rec.id[j], sent.ids[i]) == 0;
                int expected = i < 15 ? expected_first_15 : expected_rest;
                ck_assert_msg(copies == expected, "%s is in %s %d times, expected %d", sent.ids[i],
                              topic, copies, expected);
        }
}

START_TEST(documents_a_crashed_drain_committed_are_not_produced_twice)
{
        crash_mid_drain(CRASH_COMMITTED, 1);
}
END_TEST

/* The process died with its transaction in flight: the restart fences it
 * (init_transactions under the spool's transactional.id aborts it), and
 * the receipts decide. On a real cluster the records are aborted, unseen
 * by read_committed readers, and produced again; the mock cluster keeps
 * aborted records visible, receipts too, so they are not produced again.
 * Either way each document is seen once. */
START_TEST(a_transaction_in_flight_when_the_process_died_is_neither_lost_nor_doubled)
{
        crash_mid_drain(CRASH_IN_FLIGHT, 1);
}
END_TEST

/* The drain never reads the documents' topics: 15 documents that are in
 * deviation.reported without a receipt (on a real cluster: an aborted
 * transaction's records, which read_committed readers never see) count as
 * not stored and are produced again, with their receipts. Before the
 * receipts, the drain looked for them in deviation.reported itself, which
 * needed the gateway's principal to read every patient's deviation. */
START_TEST(the_drain_decides_from_the_receipts_alone)
{
        crash_mid_drain(CRASH_NO_RECEIPT, 2);
}
END_TEST

/* A receipt holds what the gateway's view needs of the document (id,
 * party, time, digest) and nothing about the patient: a principal that
 * reads receipts learns no patient's data. */
START_TEST(a_receipt_holds_the_filing_and_nothing_of_the_patient)
{
        use_spool();
        avk_reporter_t *r = reporter();
        send_docs(r, 5); /* direct */
        mock_kafka_set_brokers(&mk, 0);
        send_docs(r, 5); /* spooled */
        mock_kafka_set_brokers(&mk, 1);
        wait_spool_empty(r);
        destroy(r);
        check_topic();
        check_receipts();
        char err[256];
        struct filed *f = calloc(1, sizeof(*f));
        ck_assert_msg(avk_env_open(&f->env, mk.cfg, err, sizeof(err)) == 0, "%s", err);
        ck_assert_ptr_nonnull(f->codec = avk_codec_new(f->env.catalog, f->env.registry));
        ck_assert_int_eq(avro_generic_value_new(
                             avk_schema_iface(avk_catalog_by_name(f->env.catalog, "IntakeReceipt")),
                             &f->receipt),
                         0);
        size_t documents = mock_kafka_read_all(&mk, "deviation.reported", collect_digest, f);
        size_t receipts = mock_kafka_read_all(&mk, RECEIPTS, receipt_is_what_the_view_needs, f);
        if (!not_committed) { /* else the mock shows an aborted transaction's records too */
                ck_assert_uint_eq(documents, 10);
                ck_assert_uint_eq(receipts, 10);
        }
        avro_value_decref(&f->receipt);
        avk_codec_destroy(f->codec);
        avk_env_close(&f->env);
        free(f);
}
END_TEST

/* Kafka answers the reporter's commit PRODUCER_FENCED, as it does once
 * another producer initialised under the spool's transactional.id (a copy
 * of the spool directory started elsewhere; the mock cluster gives each
 * initialisation a producer id of its own instead, so the answer is
 * injected). The fenced reporter spools what it is sent and says its drain
 * is stalled; a reporter started on the spool afterwards stores every
 * document once. */
START_TEST(a_fenced_reporter_spools_and_a_restart_drains)
{
        use_spool();
        avk_reporter_t *r = reporter();
        send_docs(r, 3);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(sent.result[i], AVK_FILED);
        rd_kafka_mock_push_request_errors(mk.cluster, MOCK_KAFKA_API_END_TXN, 1,
                                          RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
        send_docs(r, 4);
        for (int i = 3; i < 7; i++)
                ck_assert_msg(sent.result[i] == AVK_SPOOLED, "document %d answered %d", i,
                              sent.result[i]);
        struct avk_reporter_stats st;
        for (int i = 0; i < 100 && (avk_reporter_stats(r, &st), !st.drain_stalled); i++)
                usleep(100000);
        ck_assert_msg(st.drain_stalled, "a fenced reporter's drain is not reported stalled");
        ck_assert_uint_eq(st.spool_pending, 4);
        destroy(r);
        r = reporter();
        wait_spool_empty(r);
        destroy(r);
        check_topic();
}
END_TEST

/* Consumers read committed records only: a setting that would show the
 * intake's aborted transactions is refused with the key's name. */
START_TEST(read_uncommitted_is_refused)
{
        char err[512];
        mock_kafka_set(&mk, "kafka.isolation.level", "read_uncommitted");
        rd_kafka_conf_t *conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_ptr_null(conf);
        ck_assert_contains(err, "kafka.isolation.level: is read_uncommitted");
        mock_kafka_set(&mk, "kafka.isolation.level", "read_committed");
        conf = avk_kafka_conf(mk.cfg, err, sizeof(err));
        ck_assert_msg(conf != NULL, "%s", err);
        rd_kafka_conf_destroy(conf);
}
END_TEST

START_TEST(registry_down_at_start_spools_and_drains_once_it_answers)
{
        char err[256];
        struct fake_registry *registry = fake_registry_start_or_fail();
        fake_registry_set_mode(registry, FAKE_REGISTRY_FAIL_500);
        ck_assert_int_eq(avk_config_set(mk.cfg, "schema.registry.url", fake_registry_url(registry),
                                        err, sizeof(err)),
                         0);
        use_spool();
        avk_reporter_t *r = reporter();
        send_docs(r, 20);
        for (int i = 0; i < 20; i++)
                ck_assert_msg(sent.result[i] == AVK_SPOOLED, "document %d answered %d", i,
                              sent.result[i]);
        struct avk_reporter_stats st;
        for (int i = 0; i < 100 && (avk_reporter_stats(r, &st), st.registry_up); i++)
                usleep(100000);
        ck_assert_msg(!st.registry_up, "the drain did not notice the registry is down");
        ck_assert_uint_eq(st.spool_pending, 20);
        fake_registry_set_mode(registry, FAKE_REGISTRY_NORMAL);
        wait_spool_empty(r);
        avk_reporter_stats(r, &st);
        ck_assert(st.registry_up);
        send_docs(r, 5); /* back to direct */
        destroy(r);
        check_topic();
        for (size_t i = 0; i < rec.n; i++)
                ck_assert_msg(rec.magic[i] == 0x00, "record %zu is not in Confluent framing (%02x)",
                              i, rec.magic[i]);
        fake_registry_stop(registry);
}
END_TEST

START_TEST(without_a_spool_kafka_down_is_unavailable)
{
        avk_reporter_t *r = reporter();
        mock_kafka_set_brokers(&mk, 0);
        send_docs(r, 3);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(sent.result[i], AVK_UNAVAILABLE);
        mock_kafka_set_brokers(&mk, 1);
        destroy(r);
}
END_TEST

/* issue 18 points 7 and 13: the spool's file system fills during a Kafka
 * outage. The document that no longer fits is refused saying why, without
 * the server's paths; once Kafka is back the drain empties the spool
 * although the disk is still full, and every accepted document is in Kafka
 * exactly once. */
START_TEST(spool_on_a_full_disk_drains_once_kafka_is_back)
{
        struct small_fs fs;
        char why[256];
        if (small_fs_mount(&fs, 512 * 1024, why, sizeof(why)) != 0) {
                fprintf(stderr, "skipped: %s\n", why);
                return;
        }
        char spool_dir[96];
        snprintf(spool_dir, sizeof(spool_dir), "%s/spool", fs.dir);
        use_spool_in(spool_dir);
        avk_reporter_t *r = reporter();
        mock_kafka_set_brokers(&mk, 0);
        send_docs(r, 10);
        small_fs_fill(&fs);
        while (sent.n < DOCS && (sent.n == 10 || sent.result[sent.n - 1] != AVK_UNAVAILABLE))
                send_docs(r, 1);
        int refused = sent.n - 1;
        ck_assert_msg(sent.result[refused] == AVK_UNAVAILABLE, "%d documents fit a full disk",
                      sent.n);
        for (int i = 0; i < refused; i++)
                ck_assert_int_eq(sent.result[i], AVK_SPOOLED);
        ck_assert_contains(sent.reason[refused], "the spool's disk is full");
        ck_assert_msg(!strstr(sent.reason[refused], fs.dir) &&
                          !strstr(sent.reason[refused], "spool.log"),
                      "the reason names a server path: %s", sent.reason[refused]);

        mock_kafka_set_brokers(&mk, 1);
        wait_spool_empty(r);
        struct avk_reporter_stats st;
        avk_reporter_stats(r, &st);
        ck_assert_int_eq(st.drain_stalled, 0);
        send_docs(r, 3); /* back to direct: the full disk is not in the way */
        for (int i = sent.n - 3; i < sent.n; i++)
                ck_assert_int_eq(sent.result[i], AVK_FILED);
        destroy(r);
        check_accepted_in_topic();
        small_fs_unmount(&fs);
}
END_TEST

static void set_leaders(int leader)
{
        int partitions = (int)avk_config_get_int(mk.cfg, "topic.partitions");
        for (int p = 0; p < partitions; p++)
                rd_kafka_mock_partition_set_leader(mk.cluster, "deviation.reported", p,
                                                   leader < 0 ? -1 : 1 + p % 3);
}

/* While Kafka answers but takes nothing (no partition has a leader), the
 * drain is reported stalled; once it moves documents again, no longer. */
START_TEST(drain_that_moves_nothing_while_kafka_answers_is_stalled)
{
        use_spool();
        avk_reporter_t *r = reporter();
        mock_kafka_set_brokers(&mk, 0);
        send_docs(r, 5);
        set_leaders(-1);
        mock_kafka_set_brokers(&mk, 1);
        struct avk_reporter_stats st;
        for (int i = 0; i < 300 && (avk_reporter_stats(r, &st), !st.drain_stalled); i++)
                usleep(100000);
        ck_assert_msg(st.drain_stalled, "the drain is not reported stalled after 30 s");
        ck_assert(st.kafka_up);
        ck_assert_uint_eq(st.spool_pending, 5);
        set_leaders(1);
        wait_spool_empty(r);
        /* The drain thread clears the flag after the batch that emptied the spool. */
        for (int i = 0; i < 50 && (avk_reporter_stats(r, &st), st.drain_stalled); i++)
                usleep(100000);
        ck_assert_int_eq(st.drain_stalled, 0);
        destroy(r);
        check_topic();
}
END_TEST

static void reset_sent(void)
{
        sent = (struct sent){.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
}

static Suite *spool_kafka_suite(void)
{
        Suite *s = suite_create("spool on Kafka");
        TCase *tc = tcase_create("mock cluster");
        tcase_add_checked_fixture(tc, reset_sent, NULL);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_unchecked_fixture(tc, small_fs_setup, small_fs_sweep);
        tcase_set_timeout(tc, 180);
        tcase_add_test(tc, kafka_down_spools_and_drains_in_order_when_back);
        tcase_add_test(tc, spooled_documents_survive_a_restart);
        tcase_add_test(tc, documents_a_crashed_drain_committed_are_not_produced_twice);
        tcase_add_test(tc,
                       a_transaction_in_flight_when_the_process_died_is_neither_lost_nor_doubled);
        tcase_add_test(tc, the_drain_decides_from_the_receipts_alone);
        tcase_add_test(tc, a_receipt_holds_the_filing_and_nothing_of_the_patient);
        tcase_add_test(tc, read_uncommitted_is_refused);
        tcase_add_test(tc, a_fenced_reporter_spools_and_a_restart_drains);
        tcase_add_test(tc, without_a_spool_kafka_down_is_unavailable);
        tcase_add_test(tc, registry_down_at_start_spools_and_drains_once_it_answers);
        tcase_add_test(tc, spool_on_a_full_disk_drains_once_kafka_is_back);
        tcase_add_test(tc, drain_that_moves_nothing_while_kafka_answers_is_stalled);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(spool_kafka_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
