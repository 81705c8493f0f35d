/*
 * avk_reporter: see reporter.h.
 *
 * Validation and encoding happen in the calling thread with an encoding
 * context (codec and reusable values) taken from a small pool, so threads do
 * not serialise on the expensive part. Sending is serialised by send_lock,
 * which stamps each document with a sequence number: the order it was sent.
 *
 * Without a spool a document is produced at once, and the poll thread hands
 * its delivery report to the sender's callback - or, for AVK_REPORTER_SERVED,
 * the caller's thread in avk_reporter_serve(), so that librdkafka's messages
 * can be made and freed on one thread.
 *
 * With a spool the producer is transactional - its transactional.id is the
 * spool's instance, so a restart on the spool fences and aborts what the
 * process before left open - and one thread, the drain thread, makes every
 * transaction and serves the producer's events (no poll thread: it would
 * take the delivery reports a commit's flush waits for). Each document goes
 * with its receipt (common/contract/
 * receipt.h: its id, party, digest and time, nothing about the patient, on
 * topic.intake.receipts, keyed like the document) in the same transaction:
 * - direct: sent documents wait in a queue; the drain thread produces all
 *   that wait in one transaction (a group commit) and they are filed once it
 *   commits. With a commit interval a transaction begins no sooner than that
 *   after the one before began, so that there are fewer and larger ones
 *   (avk_reporter_set_commit_interval()). When it does not commit, they go
 *   to the spool, and from then on every new document goes to the spool
 *   too, so none overtakes them.
 * - spooled: once Kafka answers and the queue is empty, the drain thread
 *   produces the spool's documents in send order, a batch per transaction,
 *   and switches back to direct when the spool is empty.
 * A spooled document that may already be in Kafka (its transaction's outcome
 * is unknown, or the process died between the commit and the spool's note
 * of it) is looked for among the receipts, read with read_committed, before
 * it is produced again: its receipt is there exactly when it is. The drain
 * never reads the documents' topics (docs/intake.md, "Receipts").
 */
#include "producer/intake/reporter.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <uuid/uuid.h>

#include "common/contract/codec.h"
#include "common/contract/receipt.h"
#include "common/util/clock.h"
#include "common/util/env.h"
#include "common/contract/json.h"
#include "common/contract/jsonparse.h"
#include "common/contract/jsonstream.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"
#include "producer/intake/spool.h"

#define KIND_CNT       2
#define ID_HEADER      AVK_HDR_ID
#define MAX_PARTITIONS 1024 /* receipts partitions with a remembered end */
#define DRAIN_BATCH    512
#define KAFKA_PROBE_MS 1000
#define STALL_ATTEMPTS 3 /* drain attempts in a row, about a second apart, that move nothing */
#define TXN_ID_PREFIX  "avvik-intake-" /* + the spool's instance; deploy/acls.conf grants it */
#define TXN_TIMEOUT_MS 60000           /* librdkafka's default transaction.timeout.ms */
#define SPARE_MAX      4096            /* delivered documents kept for reuse (prepared_new()) */
#define SPARE_PAYLOAD  1024            /* the payload bytes a spare has room for: most documents' */
#define MAIN_NICE      19              /* the transactional producer's rdk:main thread */
#define FILE_SERVE_MS  100             /* avk_reporter_file(), served: looks at its outcome */

static const char *const id_field[KIND_CNT] = {"deviation_id", "response_id"};
static const char *const topic_key[KIND_CNT] = {"topic.reported", "topic.response"};
static const char *const party_path[KIND_CNT] = {"reporter.party", "party"};

struct encoder { /* one thread's encoding context */
        avk_codec_t *codec;
        avro_value_t value[KIND_CNT];
        struct avk_json_stream_buf stream; /* the single pass's working memory */
        struct encoder *next;
};

struct pending { /* one sent document until its outcome is known; inside its avk_prepared */
        avk_reporter_done_cb *done;
        void *opaque;
        avk_reporter_t *reporter;
        avk_prepared_t *doc;
        uint64_t seq;
        const char *spooled_because; /* why it goes to the spool: said if it cannot */
        int32_t receipt_partition;   /* where its receipt was produced; -1: nowhere */
        int64_t receipt_from;        /* that partition's known end just before */
        struct pending *next;        /* in the queue of the next transaction */
};

/* One allocation with its payload and its pending state once sent: it is
 * freed on another thread, so one malloc a document instead of two. */
struct avk_prepared {
        struct pending pending; /* from avk_reporter_send() on */
        enum avk_kind kind;
        char id[AVK_ID_SIZE];
        char key[AVK_ID_SIZE];
        void *payload; /* the bytes after the struct */
        size_t len;
        size_t cap;   /* the payload bytes it has room for */
        int local;    /* single-object framing: the registry could not be asked; spool only */
        int digested; /* digest is set (avk_prepared_digest()) */
        unsigned char digest[AVK_RECEIPT_DIGEST_SIZE];
        avk_prepared_t *next_spare;
};

/* Sequence numbers of sent documents. */
struct seq_set {
        uint64_t *seq;
        size_t cnt, cap;
        int sorted;
};

/* Where the transactional producer stands; only the drain thread uses it. */
enum txn_state {
        TXN_UNINIT,     /* init_transactions() has not succeeded yet */
        TXN_READY,      /* no transaction open */
        TXN_COMMITTING, /* a commit did not finish in time: it is called again */
        TXN_ABORTING,   /* a transaction failed: it is aborted (again) */
        TXN_FATAL,      /* fenced, or refused for good: nothing is produced any more */
};

struct avk_reporter {
        struct avk_env env;
        const avk_schema_t *schema[KIND_CNT];
        avk_json_plan_t *plan[KIND_CNT]; /* for documents filed as JSON text */
        /* The slots of the id, key and party in the plan's program; -1: JSON
         * text takes the tree path. */
        int id_slot[KIND_CNT], key_slot[KIND_CNT], party_slot[KIND_CNT];
        const char *topic[KIND_CNT];
        struct avk_json_opts opts;
        rd_kafka_t *rk;
        /* topic[]'s handles: a produce by name looks the topic up under
         * librdkafka's lock, per document. */
        rd_kafka_topic_t *rkt[KIND_CNT];
        rd_kafka_conf_t *scan_conf; /* for the consumer that reads receipts back */
        pthread_t poller, drainer;
        /* The caller serves the delivery reports (avk_reporter_serve()) on
         * this queue, the producer's main one; NULL: the poll thread does. */
        rd_kafka_queue_t *served;
        atomic_int stopping;
        pthread_mutex_t pool_lock;
        struct encoder *pool;
        /* Delivered documents of SPARE_PAYLOAD bytes, for the next ones:
         * made on the preparing threads and freed on the delivery thread,
         * each malloc and free took an arena's lock and merged chunks. */
        pthread_mutex_t spare_lock;
        avk_prepared_t *spares;
        size_t spare_cnt;

        pthread_mutex_t send_lock; /* send order; spool_mode changes */
        uint64_t next_seq;
        avk_spool_t *spool;
        int receipted; /* transactional, each document with its receipt: a spool, or asked */
        atomic_int spool_mode;

        /* The receipts (a spool only). The partition count is learnt once
         * the producer is initialised; the ends come from delivery reports:
         * a receipt produced later can only lie at or after them. */
        const char *receipts_topic;
        rd_kafka_topic_t *receipts_rkt;
        avk_receipt_writer_t *receipts; /* the drain thread's */
        int receipts_partitions;
        atomic_llong receipts_end[MAX_PARTITIONS];
        int ack_timeout_ms;
        enum txn_state txn;
        /* The documents of the open transaction, or of the last one while
         * its outcome is unknown; and those of transactions this process
         * aborted, until the spool is empty: they are certainly not in
         * Kafka, whatever a receipt says (the mock cluster of the tests
         * shows an aborted transaction's records). The drain thread's. */
        struct seq_set txn_seqs, aborted;

        pthread_mutex_t drain_lock; /* taken after send_lock, when both are */
        /* Signalled by a sender only when its document is the queue's first:
         * the drain thread waits for work only while the queue is empty. */
        pthread_cond_t drain_cond;
        struct pending *queue, **queue_tail; /* under drain_lock: the next transaction's */
        atomic_int commit_interval_ms;       /* avk_reporter_set_commit_interval() */
        atomic_int main_tid;                 /* the producer's rdk:main thread (lower_main()) */
        int64_t txn_begun_us;                /* the drain thread's: the last commit_queue() */

        atomic_int kafka_up;
        atomic_int registry_up;
        atomic_int drain_stalled;
        atomic_ulong in_flight, filed, spooled, unavailable, rejected, txn_not_committed,
            txn_committed;
};

static void finish(avk_reporter_t *r, avk_reporter_done_cb *done, void *opaque, const char *id,
                   enum avk_result result, const char *reason)
{
        atomic_fetch_add(result == AVK_FILED     ? &r->filed
                         : result == AVK_SPOOLED ? &r->spooled
                                                 : &r->unavailable,
                         1);
        atomic_fetch_sub(&r->in_flight, 1);
        done(opaque, id, result, reason);
}

static void wake_drainer(avk_reporter_t *r)
{
        pthread_mutex_lock(&r->drain_lock);
        pthread_cond_signal(&r->drain_cond);
        pthread_mutex_unlock(&r->drain_lock);
}

/* A spool append's outcome, for a document that was sent. */
static void on_spooled(void *opaque, int ok, const char *reason)
{
        struct pending *p = opaque;
        avk_reporter_t *r = p->reporter;
        /* What happened, for the sender: no server paths, and Kafka named
         * only when Kafka is why (docs/intake.md, "The spool on a full disk"). */
        char why[512];
        if (!ok)
                snprintf(why, sizeof(why), "%s, and the spool cannot keep it: %s",
                         p->spooled_because, reason);
        finish(r, p->done, p->opaque, p->doc->id, ok ? AVK_SPOOLED : AVK_UNAVAILABLE,
               ok ? NULL : why);
        avk_prepared_destroy(p->doc);
        wake_drainer(r);
}

#define BECAUSE_NOT_ACKNOWLEDGED "Kafka did not acknowledge it"
#define BECAUSE_NOT_TAKEN        "Kafka did not take it"
#define BECAUSE_SPOOL_FIRST      "documents sent before it are still in the spool"
#define BECAUSE_NO_REGISTRY      "the Schema Registry cannot be reached"

/* Appends p's document to the spool: it may be in Kafka when its receipt
 * was produced (receipt_partition >= 0), to be looked for from receipt_from. */
static void spool_append(avk_reporter_t *r, struct pending *p, const char *because)
{
        p->spooled_because = because;
        avk_prepared_t *d = p->doc;
        struct avk_spool_entry e = {.seq = p->seq,
                                    .partition = p->receipt_partition,
                                    .scan_from = p->receipt_partition >= 0 ? p->receipt_from : -1,
                                    .topic = r->topic[d->kind],
                                    .key = d->key,
                                    .id = d->id,
                                    .value = d->payload,
                                    .value_len = d->len};
        avk_spool_append(r->spool, &e, on_spooled, p);
}

/* Answers each document of batch unavailable for because: a transaction
 * that did not commit, or never began, without a spool to keep them. */
static void fail_batch(avk_reporter_t *r, struct pending *batch, const char *because)
{
        while (batch) {
                struct pending *p = batch;
                batch = p->next;
                finish(r, p->done, p->opaque, p->doc->id, AVK_UNAVAILABLE, because);
                avk_prepared_destroy(p->doc);
        }
}

/* The documents queued for the next transaction, taken off the queue. */
static struct pending *take_queue(avk_reporter_t *r)
{
        pthread_mutex_lock(&r->drain_lock);
        struct pending *queued = r->queue;
        r->queue = NULL;
        r->queue_tail = &r->queue;
        pthread_mutex_unlock(&r->drain_lock);
        return queued;
}

/* Spools the documents of batch (a transaction that did not commit, or
 * that never began) for because, then everything queued since, and sends
 * what comes after them to the spool too. batch NULL: the queue is spooled
 * for because. Without a spool, batch (NULL: the queue) is answered
 * unavailable instead; what was queued since waits for the next try. */
static void spool_queue(avk_reporter_t *r, struct pending *batch, const char *because)
{
        if (!r->spool) {
                fail_batch(r, batch ? batch : take_queue(r), because);
                return;
        }
        const char *queued_because = batch ? BECAUSE_SPOOL_FIRST : because;
        pthread_mutex_lock(&r->send_lock);
        atomic_store(&r->spool_mode, 1);
        while (batch) {
                struct pending *p = batch;
                batch = p->next;
                spool_append(r, p, because);
        }
        struct pending *queued = take_queue(r);
        while (queued) {
                struct pending *p = queued;
                queued = p->next;
                spool_append(r, p, queued_because);
        }
        pthread_mutex_unlock(&r->send_lock);
}

/* Raises *end to offset + 1 unless it is past that already. */
static void raise_end(atomic_llong *end, int64_t offset)
{
        long long seen = atomic_load(end);
        while (offset + 1 > seen && !atomic_compare_exchange_weak(end, &seen, offset + 1))
                ;
}

/* A prepared document with room for len payload bytes: a spare when one
 * fits, else a new one. */
static avk_prepared_t *prepared_new(avk_reporter_t *r, size_t len)
{
        avk_prepared_t *d = NULL;
        if (len <= SPARE_PAYLOAD) {
                pthread_mutex_lock(&r->spare_lock);
                if ((d = r->spares)) {
                        r->spares = d->next_spare;
                        r->spare_cnt--;
                }
                pthread_mutex_unlock(&r->spare_lock);
        }
        size_t cap = len <= SPARE_PAYLOAD ? SPARE_PAYLOAD : len;
        if (!d && !(d = malloc(sizeof(*d) + cap)))
                return NULL;
        d->cap = cap;
        return d;
}

/* Done with d: kept as a spare while there is room, freed otherwise. */
static void prepared_recycle(avk_reporter_t *r, avk_prepared_t *d)
{
        if (d->cap == SPARE_PAYLOAD) {
                pthread_mutex_lock(&r->spare_lock);
                if (r->spare_cnt < SPARE_MAX) {
                        d->next_spare = r->spares;
                        r->spares = d;
                        r->spare_cnt++;
                        d = NULL;
                }
                pthread_mutex_unlock(&r->spare_lock);
        }
        avk_prepared_destroy(d);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        avk_reporter_t *r = opaque;
        struct pending *p = m->_private;
        if (strcmp(rd_kafka_topic_name(m->rkt), r->receipts_topic) == 0) {
                if (!m->err && m->partition >= 0 && m->partition < MAX_PARTITIONS)
                        raise_end(&r->receipts_end[m->partition], m->offset);
                return;
        }
        if (!p)
                return; /* in a transaction: its outcome is the commit's */
        if (!m->err) {
                finish(r, p->done, p->opaque, p->doc->id, AVK_FILED, NULL);
        } else {
                char reason[256];
                snprintf(reason, sizeof(reason), BECAUSE_NOT_ACKNOWLEDGED ": %s",
                         rd_kafka_err2str(m->err));
                finish(r, p->done, p->opaque, p->doc->id, AVK_UNAVAILABLE, reason);
        }
        prepared_recycle(r, p->doc);
}

static void *poll_loop(void *arg)
{
        avk_reporter_t *r = arg;
        while (!atomic_load(&r->stopping))
                rd_kafka_poll(r->rk, 100);
        return NULL;
}

static int user_set(const avk_config_t *cfg, const char *kafka_name)
{
        for (size_t i = 0; i < avk_config_kafka_cnt(cfg); i++) {
                const char *name, *value;
                avk_config_kafka_get(cfg, i, &name, &value);
                if (strcmp(name, kafka_name) == 0)
                        return 1;
        }
        return 0;
}

/* ---- transactions ---- */

/* Adds seq to set. Out of memory it is left out, which is safe for both
 * sets: a document's receipt is looked for all the same. */
static void seq_add(struct seq_set *set, uint64_t seq)
{
        if (set->cnt == set->cap) {
                size_t cap = set->cap * 2 + 64;
                uint64_t *grown = realloc(set->seq, cap * sizeof(*grown));
                if (!grown)
                        return;
                set->seq = grown;
                set->cap = cap;
        }
        set->seq[set->cnt++] = seq;
        set->sorted = 0;
}

static int cmp_seq(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
}

static int seq_has(struct seq_set *set, uint64_t seq)
{
        if (!set->cnt)
                return 0;
        if (!set->sorted) {
                qsort(set->seq, set->cnt, sizeof(*set->seq), cmp_seq);
                set->sorted = 1;
        }
        return bsearch(&seq, set->seq, set->cnt, sizeof(*set->seq), cmp_seq) != NULL;
}

/*
 * Takes the outcome of a transactional call: 0 and TXN_READY on success;
 * else -1 with the state to go on from - retry when the call may simply be
 * made again, TXN_ABORTING when the transaction must be aborted,
 * TXN_FATAL when the producer is of no more use. Frees error.
 */
static int txn_outcome(avk_reporter_t *r, rd_kafka_error_t *error, enum txn_state retry,
                       const char *call)
{
        if (!error) {
                /* The transaction's outcome is known now. */
                if (r->txn == TXN_ABORTING) {
                        atomic_fetch_add(&r->txn_not_committed, 1);
                        for (size_t i = 0; i < r->txn_seqs.cnt; i++)
                                seq_add(&r->aborted, r->txn_seqs.seq[i]);
                }
                r->txn_seqs.cnt = 0;
                r->txn = TXN_READY;
                return 0;
        }
        if (rd_kafka_error_is_fatal(error)) {
                r->txn = TXN_FATAL;
                atomic_fetch_add(&r->txn_not_committed, 1);
                avk_log(AVK_LOG_ERROR, "intake",
                        "%s: %s: nothing more is produced and every document is spooled; is "
                        "another process using a copy of this spool? Restart on the spool "
                        "(docs/intake.md, \"Receipts\")",
                        call, rd_kafka_error_string(error));
        } else {
                r->txn = rd_kafka_error_txn_requires_abort(error) ? TXN_ABORTING : retry;
                avk_log(AVK_LOG_WARN, "intake", "%s: %s", call, rd_kafka_error_string(error));
        }
        rd_kafka_error_destroy(error);
        return -1;
}

/* Learns the receipts topic's partition count and where each partition
 * ends now. Every topic's metadata is asked for: the answer fills the
 * producer's cache, so that the first transaction's documents do not wait
 * for their topic's (about a second in librdkafka 2.0.2). */
static int receipts_learn(avk_reporter_t *r)
{
        const struct rd_kafka_metadata *md;
        if (rd_kafka_metadata(r->rk, 1, NULL, &md, r->ack_timeout_ms) != 0)
                return -1;
        int cnt = 0;
        for (int i = 0; i < md->topic_cnt; i++)
                if (strcmp(md->topics[i].topic, r->receipts_topic) == 0 && !md->topics[i].err)
                        cnt = md->topics[i].partition_cnt;
        rd_kafka_metadata_destroy(md);
        if (cnt <= 0 || cnt > MAX_PARTITIONS) {
                avk_log(AVK_LOG_WARN, "intake", "%s: %d partitions; expected 1 to %d",
                        r->receipts_topic, cnt, MAX_PARTITIONS);
                return -1;
        }
        for (int p = 0; p < cnt; p++) {
                int64_t low, high;
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    r->rk, r->receipts_topic, p, &low, &high, r->ack_timeout_ms);
                if (err) {
                        avk_log(AVK_LOG_WARN, "intake", "%s [%d]: %s", r->receipts_topic, p,
                                rd_kafka_err2str(err));
                        return -1;
                }
                raise_end(&r->receipts_end[p], high - 1);
        }
        r->receipts_partitions = cnt;
        return 0;
}

/* Brings the producer to TXN_READY if it can: initialises it (which
 * aborts what an earlier process left open under the same id), or finishes
 * a commit or an abort left over. @returns 1 when ready. */
static int txn_ready(avk_reporter_t *r)
{
        switch (r->txn) {
        case TXN_UNINIT:
                txn_outcome(r, rd_kafka_init_transactions(r->rk, r->ack_timeout_ms), TXN_UNINIT,
                            "init_transactions");
                break;
        case TXN_COMMITTING:
                txn_outcome(r, rd_kafka_commit_transaction(r->rk, r->ack_timeout_ms),
                            TXN_COMMITTING, "commit_transaction");
                break;
        case TXN_ABORTING:
                txn_outcome(r, rd_kafka_abort_transaction(r->rk, r->ack_timeout_ms), TXN_ABORTING,
                            "abort_transaction");
                break;
        case TXN_READY:
        case TXN_FATAL:
                break;
        }
        return r->txn == TXN_READY && (r->receipts_partitions > 0 || receipts_learn(r) == 0);
}

/* The receipts partition of key: the one the partitioner would choose. */
static int32_t receipt_partition(avk_reporter_t *r, const char *key)
{
        return rd_kafka_msg_partitioner_murmur2_random(r->receipts_rkt, key, strlen(key),
                                                       r->receipts_partitions, NULL, NULL);
}

/* Produces a document of kind and its receipt into the open transaction,
 * and says in *partition and *from where the receipt may be found. digest:
 * the document's, when known, else NULL. */
static rd_kafka_resp_err_t produce_with_receipt(avk_reporter_t *r, enum avk_kind kind,
                                                const char *key, const char *id, const void *value,
                                                size_t value_len, const unsigned char *digest,
                                                int32_t *partition, int64_t *from)
{
        *partition = receipt_partition(r, key);
        *from = atomic_load(&r->receipts_end[*partition]);
        const void *receipt;
        size_t receipt_len;
        char errstr[256];
        if (avk_receipt_write(r->receipts, (enum avk_receipt_kind)kind, value, value_len, digest,
                              &receipt, &receipt_len, errstr, sizeof(errstr)) != 0) {
                avk_log(AVK_LOG_WARN, "intake", "the receipt of %s: %s", id, errstr);
                return RD_KAFKA_RESP_ERR__FAIL;
        }
        rd_kafka_resp_err_t err = rd_kafka_producev(
            r->rk, RD_KAFKA_V_RKT(r->rkt[kind]), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_HEADER(ID_HEADER, id, -1),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_BLOCK | RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err)
                return err;
        return rd_kafka_producev(
            r->rk, RD_KAFKA_V_RKT(r->receipts_rkt), RD_KAFKA_V_PARTITION(*partition),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)receipt, receipt_len),
            RD_KAFKA_V_HEADER(ID_HEADER, id, -1),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_BLOCK | RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
}

/* How a transaction ended. */
enum txn_end {
        TXN_COMMITTED,
        TXN_ABORTED, /* certainly: no read_committed reader ever sees its records */
        TXN_UNKNOWN, /* the commit or the abort did not finish: its receipts will tell */
};

/* Ends the open transaction: commits it when every produce was taken
 * (err 0), else, or when the commit fails, aborts it. */
static enum txn_end txn_end(avk_reporter_t *r, rd_kafka_resp_err_t err)
{
        if (!err && txn_outcome(r, rd_kafka_commit_transaction(r->rk, r->ack_timeout_ms),
                                TXN_COMMITTING, "commit_transaction") == 0)
                return TXN_COMMITTED;
        if (err) {
                avk_log(AVK_LOG_WARN, "intake", "produce: %s", rd_kafka_err2str(err));
                r->txn = TXN_ABORTING;
        }
        if (r->txn == TXN_ABORTING)
                txn_ready(r);
        return r->txn == TXN_READY ? TXN_ABORTED : TXN_UNKNOWN;
}

/* Produces the documents queued since the last transaction in one
 * transaction; files them once it commits, or spools them. */
static void commit_queue(avk_reporter_t *r)
{
        struct pending *batch = take_queue(r);
        if (!batch)
                return;
        r->txn_begun_us = avk_clock_mono_us();
        if (txn_outcome(r, rd_kafka_begin_transaction(r->rk), TXN_READY, "begin_transaction") !=
            0) {
                spool_queue(r, batch, BECAUSE_NOT_TAKEN);
                return;
        }
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (struct pending *p = batch; p && !err; p = p->next) {
                avk_prepared_t *d = p->doc;
                seq_add(&r->txn_seqs, p->seq);
                err = produce_with_receipt(r, d->kind, d->key, d->id, d->payload, d->len,
                                           d->digested ? d->digest : NULL, &p->receipt_partition,
                                           &p->receipt_from);
        }
        enum txn_end end = txn_end(r, err);
        if (end != TXN_COMMITTED) {
                for (struct pending *p = batch; p && end == TXN_ABORTED; p = p->next)
                        p->receipt_partition = -1; /* certainly not in Kafka */
                spool_queue(r, batch, BECAUSE_NOT_ACKNOWLEDGED);
                return;
        }
        atomic_store(&r->kafka_up, 1);
        atomic_fetch_add(&r->txn_committed, 1);
        while (batch) {
                struct pending *p = batch;
                batch = p->next;
                finish(r, p->done, p->opaque, p->doc->id, AVK_FILED, NULL);
                prepared_recycle(r, p->doc);
        }
}

/* ---- draining the spool ---- */

struct found_ids { /* ids met among the receipts */
        char **ids;
        size_t cnt, cap;
};

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int found(const struct found_ids *f, const char *id)
{
        return f->cnt && bsearch(&id, f->ids, f->cnt, sizeof(*f->ids), cmp_str);
}

static void found_add(struct found_ids *f, const void *id, size_t len)
{
        if (f->cnt == f->cap) {
                size_t cap = f->cap * 2 + 64;
                char **ids = realloc(f->ids, cap * sizeof(*ids));
                if (!ids)
                        return;
                f->ids = ids;
                f->cap = cap;
        }
        char *s = malloc(len + 1);
        if (!s)
                return;
        memcpy(s, id, len);
        s[len] = '\0';
        f->ids[f->cnt++] = s;
}

static void found_free(struct found_ids *f)
{
        for (size_t i = 0; i < f->cnt; i++)
                free(f->ids[i]);
        free(f->ids);
}

/*
 * Reads each receipts partition in scan from its start offset to its end
 * with read_committed and collects the ids there. The end is the high
 * watermark when the scan starts: an end of partition reported before it
 * (transaction markers not yet written) is not the end. Returns 0, or -1
 * when the receipts could not be read completely (nothing may be produced
 * then).
 */
static int scan_receipts(avk_reporter_t *r, rd_kafka_topic_partition_list_t *scan,
                         struct found_ids *out)
{
        char errstr[512];
        int rc = -1;
        rd_kafka_conf_t *conf = rd_kafka_conf_dup(r->scan_conf);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        /* assign() needs a group.id, though nothing joins or commits. */
        rd_kafka_t *c = avk_kafka_consumer_new(conf, "avvik-spool-scan", errstr, sizeof(errstr));
        if (!c) {
                rd_kafka_conf_destroy(conf);
                avk_log(AVK_LOG_WARN, "spool", "cannot read the receipts: %s", errstr);
                return -1;
        }
        /* Only partitions with records past the start offset are read; each
         * remembers its end in its opaque. */
        rd_kafka_topic_partition_list_t *todo = rd_kafka_topic_partition_list_new(scan->cnt);
        int64_t end[MAX_PARTITIONS];
        for (int i = 0; i < scan->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &scan->elems[i];
                int64_t low, high;
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    c, tp->topic, tp->partition, &low, &high, 5000);
                if (err) {
                        avk_log(AVK_LOG_WARN, "spool", "reading the receipts of %s [%d]: %s",
                                tp->topic, tp->partition, rd_kafka_err2str(err));
                        goto out;
                }
                end[tp->partition] = high;
                if (tp->offset < high)
                        rd_kafka_topic_partition_list_add(todo, tp->topic, tp->partition)->offset =
                            tp->offset < low ? low : tp->offset;
        }
        int remaining = todo->cnt, idle = 0;
        rd_kafka_resp_err_t err = remaining ? rd_kafka_assign(c, todo) : 0;
        if (err) {
                avk_log(AVK_LOG_WARN, "spool", "reading the receipts: %s", rd_kafka_err2str(err));
                goto out;
        }
        while (remaining > 0 && idle < 10) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 1000);
                if (!m) {
                        idle++;
                        continue;
                }
                idle = 0;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        /* The end may be reported more than once (after a
                         * leader change, or markers written): count each
                         * partition once. */
                        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
                            todo, rd_kafka_topic_name(m->rkt), m->partition);
                        if (tp && !tp->opaque && m->offset >= end[m->partition]) {
                                tp->opaque = tp;
                                remaining--;
                        }
                } else if (m->err) {
                        avk_log(AVK_LOG_WARN, "spool", "reading the receipts: %s",
                                rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        goto out;
                } else {
                        /* The id header: a receipt of any version has it. */
                        const void *id;
                        size_t id_len;
                        rd_kafka_headers_t *hdrs;
                        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                            rd_kafka_header_get_last(hdrs, ID_HEADER, &id, &id_len) ==
                                RD_KAFKA_RESP_ERR_NO_ERROR)
                                found_add(out, id, id_len);
                }
                rd_kafka_message_destroy(m);
        }
        rc = remaining == 0 ? 0 : -1;
        if (rc)
                avk_log(AVK_LOG_WARN, "spool",
                        "reading the receipts: %d partitions not read to their end within 10 s",
                        remaining);
out:
        rd_kafka_topic_partition_list_destroy(todo);
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        if (out->cnt)
                qsort(out->ids, out->cnt, sizeof(*out->ids), cmp_str);
        return rc;
}

static struct encoder *encoder_get(avk_reporter_t *r);
static void encoder_put(avk_reporter_t *r, struct encoder *e);

/* The kind of a spooled document, from its topic. */
static enum avk_kind kind_of(const avk_reporter_t *r, const char *topic)
{
        return strcmp(topic, r->topic[AVK_KIND_RESPONSE]) == 0 ? AVK_KIND_RESPONSE
                                                               : AVK_KIND_DEVIATION;
}

/*
 * Produces one batch of the spool, oldest first, with its receipts in one
 * transaction. Returns 0 when the whole batch is in Kafka, -1 when some of
 * it must wait for a later try.
 */
static int drain_batch(avk_reporter_t *r, int *progressed)
{
        const struct avk_spool_entry *batch[DRAIN_BATCH], *done[DRAIN_BATCH], *send[DRAIN_BATCH];
        int32_t partition[DRAIN_BATCH];
        int64_t scan_from[DRAIN_BATCH];
        size_t done_cnt = 0, send_cnt = 0, n = avk_spool_batch(r->spool, batch, DRAIN_BATCH);
        struct found_ids ids = {0};
        char errstr[256];
        int rc = -1;
        struct encoder *e = encoder_get(r);
        if (!e)
                return -1;

        /* 1. Entries that may already be in Kafka: look for their receipts.
         * A mark of a partition the receipts topic does not have is looked
         * for in the key's partition from the start. */
        rd_kafka_topic_partition_list_t *scan = rd_kafka_topic_partition_list_new(8);
        for (size_t i = 0; i < n; i++) {
                if (batch[i]->scan_from < 0 || seq_has(&r->aborted, batch[i]->seq))
                        continue;
                int32_t p = batch[i]->partition < r->receipts_partitions
                                ? batch[i]->partition
                                : receipt_partition(r, batch[i]->key);
                int64_t from = p == batch[i]->partition ? batch[i]->scan_from : 0;
                rd_kafka_topic_partition_t *tp =
                    rd_kafka_topic_partition_list_find(scan, r->receipts_topic, p);
                if (!tp)
                        tp = rd_kafka_topic_partition_list_add(scan, r->receipts_topic, p);
                else if (tp->offset <= from)
                        continue;
                tp->offset = from;
        }
        if (scan->cnt && scan_receipts(r, scan, &ids) != 0)
                goto out;

        /* 2. The rest: a document spooled while the registry was unreachable
         * waits until the registry answers for its schema. */
        for (size_t i = 0; i < n; i++) {
                if (batch[i]->scan_from >= 0 && !seq_has(&r->aborted, batch[i]->seq) &&
                    found(&ids, batch[i]->id)) {
                        done[done_cnt++] = batch[i];
                        continue;
                }
                const void *framed;
                size_t framed_len;
                if (avk_codec_reframe(e->codec, batch[i]->topic, batch[i]->value,
                                      batch[i]->value_len, &framed, &framed_len, errstr,
                                      sizeof(errstr)) != 0) {
                        atomic_store(&r->registry_up, 0);
                        avk_log(AVK_LOG_WARN, "spool", "%s: %s", batch[i]->topic, errstr);
                        goto out;
                }
                send[send_cnt++] = batch[i];
        }
        if (done_cnt)
                avk_log(AVK_LOG_INFO, "spool",
                        "%zu documents were in Kafka already (found by their receipts): not "
                        "produced again",
                        done_cnt);
        if (!send_cnt) {
                rc = 0;
                goto out;
        }

        /* 3. Say durably where each receipt will go, then produce the batch
         * and its receipts in one transaction. */
        for (size_t i = 0; i < send_cnt; i++) {
                partition[i] = receipt_partition(r, send[i]->key);
                scan_from[i] = atomic_load(&r->receipts_end[partition[i]]);
        }
        if (avk_spool_maybe(r->spool, send, partition, scan_from, send_cnt, errstr,
                            sizeof(errstr)) != 0) {
                avk_log(AVK_LOG_ERROR, "spool", "%s", errstr);
                goto out;
        }
        if (txn_outcome(r, rd_kafka_begin_transaction(r->rk), TXN_READY, "begin_transaction") != 0)
                goto out;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (size_t i = 0; i < send_cnt && !err; i++) {
                seq_add(&r->txn_seqs, send[i]->seq);
                /* Framed in step 2 already, so the registry's id is cached. */
                const void *value;
                size_t value_len;
                int32_t p;
                int64_t from;
                err =
                    avk_codec_reframe(e->codec, send[i]->topic, send[i]->value, send[i]->value_len,
                                      &value, &value_len, errstr, sizeof(errstr)) == 0
                        ? produce_with_receipt(r, kind_of(r, send[i]->topic), send[i]->key,
                                               send[i]->id, value, value_len, NULL, &p, &from)
                        : RD_KAFKA_RESP_ERR__FAIL;
        }
        if (txn_end(r, err) != TXN_COMMITTED) {
                avk_log(AVK_LOG_WARN, "spool", "%zu documents not produced yet", send_cnt);
                goto out;
        }
        for (size_t i = 0; i < send_cnt; i++)
                done[done_cnt++] = send[i];
        rc = 0;
        atomic_store(&r->registry_up, 1);
out:
        atomic_fetch_add(&r->filed, done_cnt);
        if (done_cnt && avk_spool_done(r->spool, done, done_cnt, errstr, sizeof(errstr)) != 0) {
                avk_log(AVK_LOG_ERROR, "spool", "%s", errstr);
                rc = -1;
        } else if (done_cnt) {
                *progressed = 1;
        }
        rd_kafka_topic_partition_list_destroy(scan);
        found_free(&ids);
        encoder_put(r, e);
        return rc;
}

static int kafka_answers(avk_reporter_t *r)
{
        const struct rd_kafka_metadata *md;
        if (rd_kafka_metadata(r->rk, 0, NULL, &md, KAFKA_PROBE_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return 0;
        rd_kafka_metadata_destroy(md);
        return 1;
}

/* Holds the next transaction back until the commit interval has passed
 * since the last one began, or the reporter stops: librdkafka 2.0.2's main
 * thread spins for about 2 ms a transaction, whatever it holds (its loop
 * rounds a wait for a timer under a millisecond down to none, and a
 * transaction arms two 1 ms timers to register its partitions), so fewer,
 * larger transactions cost less CPU, at up to the interval of latency
 * (docs/gateway.md, "Group commit"). Senders do not signal a queue that
 * holds documents already, so the wait is slept out. */
static void commit_pace(avk_reporter_t *r)
{
        int64_t wait_us = r->txn_begun_us + 1000 * (int64_t)atomic_load(&r->commit_interval_ms) -
                          avk_clock_mono_us();
        if (wait_us <= 0)
                return;
        struct timespec until = avk_clock_deadline((wait_us + 999) / 1000);
        pthread_mutex_lock(&r->drain_lock);
        if (!atomic_load(&r->stopping))
                pthread_cond_timedwait(&r->drain_cond, &r->drain_lock, &until);
        pthread_mutex_unlock(&r->drain_lock);
}

static int queue_waiting(avk_reporter_t *r)
{
        pthread_mutex_lock(&r->drain_lock);
        int waiting = r->queue != NULL;
        pthread_mutex_unlock(&r->drain_lock);
        return waiting;
}

/*
 * With a spool: commits what the queue holds as soon as it holds something
 * (documents sent before any the spool holds), else probes Kafka once a
 * second and drains the spool when Kafka answers. Without one: probes Kafka.
 */
static void *drain_loop(void *arg)
{
        avk_reporter_t *r = arg;
        int stalls = 0; /* attempts in a row that moved nothing */
        for (;;) {
                int stopping = atomic_load(&r->stopping);
                if (r->receipted)
                        rd_kafka_poll(r->rk, 0); /* the events between transactions */
                if (r->receipted && queue_waiting(r)) {
                        commit_pace(r);
                        if (txn_ready(r))
                                commit_queue(r);
                        else
                                spool_queue(r, NULL, BECAUSE_NOT_TAKEN);
                        continue;
                }
                atomic_store(&r->kafka_up, kafka_answers(r));
                /* Initialising at once also aborts, at once, what a crashed
                 * process left open: that holds back read_committed readers. */
                int txn_ok = r->receipted && atomic_load(&r->kafka_up) && txn_ready(r);
                size_t waiting = r->spool ? avk_spool_outstanding(r->spool) : 0;
                int ready = waiting && txn_ok;
                int progressed = 0;
                int rc = ready ? drain_batch(r, &progressed) : -1;
                if (!waiting || progressed)
                        stalls = 0;
                else if (atomic_load(&r->kafka_up))
                        stalls++;
                /* A registry outage is reported as such (registry_up). */
                atomic_store(&r->drain_stalled,
                             stalls >= STALL_ATTEMPTS && atomic_load(&r->registry_up));
                if (r->spool && ready && rc == 0) {
                        pthread_mutex_lock(&r->send_lock);
                        if (avk_spool_outstanding(r->spool) == 0) {
                                atomic_store(&r->spool_mode, 0);
                                r->aborted.cnt = 0;
                        }
                        pthread_mutex_unlock(&r->send_lock);
                }
                if (stopping && (rc != 0 || !r->spool || avk_spool_outstanding(r->spool) == 0))
                        return NULL;
                if (ready && rc == 0)
                        continue;
                struct timespec until = avk_clock_deadline(1000);
                pthread_mutex_lock(&r->drain_lock);
                if (!atomic_load(&r->stopping) && !r->queue)
                        pthread_cond_timedwait(&r->drain_cond, &r->drain_lock, &until);
                pthread_mutex_unlock(&r->drain_lock);
        }
}

/* The slot of a top-level string field of kind's schema, or -1. */
static int string_slot(const avk_reporter_t *r, enum avk_kind kind, const char *name)
{
        const avk_avroprog_t *prog = avk_json_plan_prog(r->plan[kind]);
        avro_schema_t field = avro_schema_record_field_get(avk_schema_avro(r->schema[kind]), name);
        return prog && field && is_avro_string(field) ? avk_avroprog_slot(prog, name) : -1;
}

/* Notes the tid of the producer's librdkafka main thread (lower_main()). */
static rd_kafka_resp_err_t on_thread_start(rd_kafka_t *rk, rd_kafka_thread_type_t type,
                                           const char *name, void *opaque)
{
        (void)rk;
        (void)name;
        avk_reporter_t *r = opaque;
        if (type == RD_KAFKA_THREAD_MAIN)
                atomic_store(&r->main_tid, (int)syscall(SYS_gettid));
        return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static rd_kafka_resp_err_t on_new(rd_kafka_t *rk, const rd_kafka_conf_t *conf, void *opaque,
                                  char *errstr, size_t errstr_size)
{
        (void)conf;
        (void)errstr;
        (void)errstr_size;
        return rd_kafka_interceptor_add_on_thread_start(rk, "avvik-intake", on_thread_start,
                                                        opaque);
}

/*
 * A transactional producer's librdkafka main thread spins out every timer
 * due in under a millisecond - a transaction's two 1 ms timers, about 2 ms
 * of a core a transaction (docs/gateway.md, "Group commit"). At the lowest
 * priority it still runs at once on an idle core, but its spin yields to
 * every thread with work. Lowered once rd_kafka_new() has returned: the
 * thread has started the transaction coordinator's broker thread by then,
 * which would otherwise inherit the priority.
 */
static void lower_main(avk_reporter_t *r)
{
        int tid = atomic_load(&r->main_tid);
        if (tid > 0 && setpriority(PRIO_PROCESS, (id_t)tid, MAIN_NICE) != 0)
                avk_log(AVK_LOG_WARN, "intake", "rdk:main: its priority stays: %s",
                        strerror(errno));
}

/* Makes conf a transactional producer's, named after the spool, else
 * after instance.name (default <host>-intake): a name that stays across
 * restarts, so a restart fences and aborts what the process before left
 * open (docs/gateway.md, "Receipts"). */
static int transactional(avk_reporter_t *r, const avk_config_t *cfg, rd_kafka_conf_t *conf,
                         char *errstr, size_t errstr_size)
{
        char id[160], txn_timeout[32], name[128];
        const char *instance = name;
        if (r->spool)
                instance = avk_spool_instance(r->spool);
        else
                avk_kafka_instance_id(cfg, "intake", name, sizeof(name));
        snprintf(id, sizeof(id), TXN_ID_PREFIX "%s", instance);
        /* librdkafka wants message.timeout.ms <= transaction.timeout.ms. */
        int64_t ack = avk_config_get_int(cfg, "intake.ack.timeout.ms");
        snprintf(txn_timeout, sizeof(txn_timeout), "%lld",
                 (long long)(ack > TXN_TIMEOUT_MS ? ack : TXN_TIMEOUT_MS));
        char reason[256];
        if (rd_kafka_conf_interceptor_add_on_new(conf, "avvik-intake", on_new, r) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
                snprintf(errstr, errstr_size, "the spool's transactional producer: no interceptor");
                return -1;
        }
        if (rd_kafka_conf_set(conf, "transactional.id", id, reason, sizeof(reason)) !=
                RD_KAFKA_CONF_OK ||
            (!user_set(cfg, "transaction.timeout.ms") &&
             rd_kafka_conf_set(conf, "transaction.timeout.ms", txn_timeout, reason,
                               sizeof(reason)) != RD_KAFKA_CONF_OK)) {
                snprintf(errstr, errstr_size, "the spool's transactional producer: %s", reason);
                return -1;
        }
        return 0;
}

avk_reporter_t *avk_reporter_new(const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        return avk_reporter_new_mode(cfg, AVK_REPORTER_PLAIN, errstr, errstr_size);
}

avk_reporter_t *avk_reporter_new_mode(const avk_config_t *cfg, enum avk_reporter_mode mode,
                                      char *errstr, size_t errstr_size)
{
        avk_reporter_t *r = calloc(1, sizeof(*r));
        if (!r) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        pthread_mutex_init(&r->pool_lock, NULL);
        pthread_mutex_init(&r->spare_lock, NULL);
        pthread_mutex_init(&r->send_lock, NULL);
        pthread_mutex_init(&r->drain_lock, NULL);
        pthread_cond_init(&r->drain_cond, NULL);
        r->queue_tail = &r->queue;
        atomic_store(&r->registry_up, 1);
        if (avk_env_open(&r->env, cfg, errstr, errstr_size) != 0)
                goto fail_env;
        for (int k = 0; k < KIND_CNT; k++) {
                r->topic[k] = avk_config_get(cfg, topic_key[k]);
                r->schema[k] = avk_env_topic_schema(&r->env, r->topic[k], errstr, errstr_size);
                if (!r->schema[k])
                        goto fail;
                r->plan[k] = avk_json_plan_new(r->schema[k], errstr, errstr_size);
                if (!r->plan[k])
                        goto fail;
                r->id_slot[k] = string_slot(r, (enum avk_kind)k, id_field[k]);
                r->key_slot[k] = string_slot(r, (enum avk_kind)k, "deviation_id");
                const avk_avroprog_t *prog = avk_json_plan_prog(r->plan[k]);
                r->party_slot[k] = prog ? avk_avroprog_slot(prog, party_path[k]) : -1;
        }
        r->opts = (struct avk_json_opts){
            .flags = AVK_JSON_VALIDATE, .skew_ms = avk_config_get_int(cfg, "intake.clock.skew.ms")};
        const char *spool_dir = avk_config_get(cfg, "intake.spool.dir");
        if (spool_dir && *spool_dir) {
                r->spool = avk_spool_open(
                    spool_dir, (uint64_t)avk_config_get_int(cfg, "intake.spool.max.bytes"), errstr,
                    errstr_size);
                if (!r->spool)
                        goto fail;
                r->next_seq = avk_spool_max_seq(r->spool) + 1;
                atomic_store(&r->spool_mode, avk_spool_outstanding(r->spool) > 0);
        }
        r->receipted = r->spool || mode == AVK_REPORTER_RECEIPTED;
        r->scan_conf = avk_kafka_conf(cfg, errstr, errstr_size);
        rd_kafka_conf_t *conf = r->scan_conf ? avk_kafka_conf(cfg, errstr, errstr_size) : NULL;
        if (!conf)
                goto fail;
        /* The ack timeout is intake policy; an explicit kafka.* setting wins. */
        r->ack_timeout_ms = (int)avk_config_get_int(cfg, "intake.ack.timeout.ms");
        if (!user_set(cfg, "message.timeout.ms"))
                rd_kafka_conf_set(conf, "message.timeout.ms",
                                  avk_config_get(cfg, "intake.ack.timeout.ms"), NULL, 0);
        r->receipts_topic = avk_config_get(cfg, "topic.intake.receipts");
        if (r->receipted && transactional(r, cfg, conf, errstr, errstr_size) != 0) {
                rd_kafka_conf_destroy(conf);
                goto fail;
        }
        rd_kafka_conf_set_opaque(conf, r);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        r->rk = avk_kafka_producer_new(conf, errstr, errstr_size);
        if (!r->rk) {
                rd_kafka_conf_destroy(conf);
                goto fail;
        }
        if (r->receipted)
                lower_main(r);
        for (int k = 0; k < KIND_CNT; k++) {
                if (!(r->rkt[k] = rd_kafka_topic_new(r->rk, r->topic[k], NULL))) {
                        snprintf(errstr, errstr_size, "%s: %s", r->topic[k],
                                 rd_kafka_err2str(rd_kafka_last_error()));
                        goto fail_rk;
                }
        }
        if (r->receipted &&
            !(r->receipts_rkt = rd_kafka_topic_new(r->rk, r->receipts_topic, NULL))) {
                snprintf(errstr, errstr_size, "%s: %s", r->receipts_topic,
                         rd_kafka_err2str(rd_kafka_last_error()));
                goto fail_rk;
        }
        if (r->receipted &&
            !(r->receipts = avk_receipt_writer_new(r->env.catalog, r->env.registry,
                                                   r->receipts_topic, errstr, errstr_size)))
                goto fail_rk;
        /* A transactional producer's events are served by the drain thread,
         * which makes every transaction: a second thread polling the same
         * queue took the delivery reports that commit_transaction()'s flush
         * waits for, which then slept out its 10 ms poll each time. */
        if (!r->receipted && mode == AVK_REPORTER_SERVED)
                r->served = rd_kafka_queue_get_main(r->rk);
        else if (!r->receipted && pthread_create(&r->poller, NULL, poll_loop, r) != 0) {
                snprintf(errstr, errstr_size, "cannot start the delivery thread");
                goto fail_rk;
        }
        if (pthread_create(&r->drainer, NULL, drain_loop, r) != 0) {
                snprintf(errstr, errstr_size, "cannot start the spool thread");
                atomic_store(&r->stopping, 1);
                if (!r->receipted && !r->served)
                        pthread_join(r->poller, NULL);
                goto fail_rk;
        }
        return r;
fail_rk:
        if (r->served)
                rd_kafka_queue_destroy(r->served);
        avk_receipt_writer_destroy(r->receipts);
        if (r->receipts_rkt)
                rd_kafka_topic_destroy(r->receipts_rkt);
        for (int k = 0; k < KIND_CNT; k++)
                if (r->rkt[k])
                        rd_kafka_topic_destroy(r->rkt[k]);
        rd_kafka_destroy(r->rk);
fail:
        if (r->scan_conf)
                rd_kafka_conf_destroy(r->scan_conf);
        avk_spool_close(r->spool);
        for (int k = 0; k < KIND_CNT; k++)
                avk_json_plan_destroy(r->plan[k]);
        avk_env_close(&r->env);
fail_env:
        pthread_mutex_destroy(&r->pool_lock);
        pthread_mutex_destroy(&r->spare_lock);
        pthread_mutex_destroy(&r->send_lock);
        pthread_mutex_destroy(&r->drain_lock);
        pthread_cond_destroy(&r->drain_cond);
        free(r);
        return NULL;
}

void avk_reporter_destroy(avk_reporter_t *r)
{
        if (!r)
                return;
        /* Without a spool, outstanding deliveries resolve within
         * message.timeout.ms: wait for them all, so every sender hears its
         * outcome. With one, the drain thread commits or spools what is
         * queued, then empties the spool if Kafka takes it, or leaves it
         * for next time. */
        while (!r->receipted && rd_kafka_outq_len(r->rk) > 0)
                rd_kafka_flush(r->rk, 1000);
        atomic_store(&r->stopping, 1);
        wake_drainer(r);
        pthread_join(r->drainer, NULL);
        avk_spool_close(r->spool);
        rd_kafka_flush(r->rk, 5000);
        if (r->served) {
                rd_kafka_queue_destroy(r->served);
        } else if (!r->receipted) {
                /* Wakes the poll thread so it sees stopping now, not in 100 ms
                 * (a yield before it polls again is kept by the queue, never
                 * lost). */
                rd_kafka_queue_t *main_queue = rd_kafka_queue_get_main(r->rk);
                rd_kafka_queue_yield(main_queue);
                rd_kafka_queue_destroy(main_queue);
                pthread_join(r->poller, NULL);
        }
        avk_receipt_writer_destroy(r->receipts);
        if (r->receipts_rkt)
                rd_kafka_topic_destroy(r->receipts_rkt);
        for (int k = 0; k < KIND_CNT; k++)
                if (r->rkt[k])
                        rd_kafka_topic_destroy(r->rkt[k]);
        rd_kafka_destroy(r->rk);
        rd_kafka_conf_destroy(r->scan_conf);
        free(r->txn_seqs.seq);
        free(r->aborted.seq);
        while (r->pool) {
                struct encoder *e = r->pool;
                r->pool = e->next;
                for (int k = 0; k < KIND_CNT; k++)
                        avro_value_decref(&e->value[k]);
                avk_json_stream_buf_free(&e->stream);
                avk_codec_destroy(e->codec);
                free(e);
        }
        while (r->spares) {
                avk_prepared_t *d = r->spares;
                r->spares = d->next_spare;
                avk_prepared_destroy(d);
        }
        for (int k = 0; k < KIND_CNT; k++)
                avk_json_plan_destroy(r->plan[k]);
        avk_env_close(&r->env);
        pthread_mutex_destroy(&r->pool_lock);
        pthread_mutex_destroy(&r->spare_lock);
        pthread_mutex_destroy(&r->send_lock);
        pthread_mutex_destroy(&r->drain_lock);
        pthread_cond_destroy(&r->drain_cond);
        free(r);
}

int avk_reporter_serve(avk_reporter_t *r, int timeout_ms)
{
        if (!r->served)
                return -1;
        rd_kafka_poll(r->rk, timeout_ms);
        return 0;
}

void avk_reporter_wake(avk_reporter_t *r)
{
        if (r->served)
                rd_kafka_queue_yield(r->served);
}

static struct encoder *encoder_get(avk_reporter_t *r)
{
        pthread_mutex_lock(&r->pool_lock);
        struct encoder *e = r->pool;
        if (e)
                r->pool = e->next;
        pthread_mutex_unlock(&r->pool_lock);
        if (e)
                return e;
        e = calloc(1, sizeof(*e));
        if (!e)
                return NULL;
        e->codec = avk_codec_new(r->env.catalog, r->env.registry);
        for (int k = 0; k < KIND_CNT; k++)
                avro_generic_value_new(avk_schema_iface(r->schema[k]), &e->value[k]);
        return e;
}

static void encoder_put(avk_reporter_t *r, struct encoder *e)
{
        pthread_mutex_lock(&r->pool_lock);
        e->next = r->pool;
        r->pool = e;
        pthread_mutex_unlock(&r->pool_lock);
}

static void string_field(avro_value_t *record, const char *name, char out[AVK_ID_SIZE])
{
        avro_value_t field;
        const char *s = "";
        size_t size;
        if (avro_value_get_by_name(record, name, &field, NULL) == 0)
                avro_value_get_string(&field, &s, &size);
        snprintf(out, AVK_ID_SIZE, "%s", s);
}

/* A new random id for a document that lacks one. */
static void new_id(char *buf, size_t size)
{
        uuid_t u;
        char text[AVK_ID_SIZE];
        uuid_generate_random(u);
        uuid_unparse_lower(u, text);
        snprintf(buf, size, "%s", text);
}

static void slot_string(const avk_avroprog_slot_t *slot, char out[AVK_ID_SIZE])
{
        size_t len = slot->len < AVK_ID_SIZE ? slot->len : AVK_ID_SIZE - 1;
        memcpy(out, slot->v.str, len);
        out[len] = '\0';
}

/* Frames value, or when it is NULL the Avro binary of the encoder's
 * single pass, for kind's topic (local: in the framing of the spool). */
static int frame(avk_reporter_t *r, struct encoder *e, enum avk_kind kind, avro_value_t *value,
                 int local, const void **payload, size_t *len, char *reason, size_t reason_size)
{
        if (!value)
                return avk_codec_frame(e->codec, r->topic[kind], r->schema[kind], local,
                                       e->stream.avro, e->stream.avro_len, payload, len, reason,
                                       reason_size);
        if (local)
                return avk_codec_encode_local(e->codec, r->schema[kind], value, payload, len,
                                              reason, reason_size);
        return avk_codec_encode(e->codec, r->topic[kind], r->schema[kind], value, payload, len,
                                reason, reason_size);
}

/* Encodes value (of kind, validated; NULL: the encoder's single pass) into
 * a prepared document. */
static enum avk_result encode(avk_reporter_t *r, struct encoder *e, enum avk_kind kind,
                              avro_value_t *value, char id[AVK_ID_SIZE], struct avk_errors *errs,
                              avk_prepared_t **out)
{
        char reason[512];
        const void *payload;
        size_t len;
        int rc = frame(r, e, kind, value, 0, &payload, &len, reason, sizeof(reason));
        int local = 0;
        /* Accepted means kept, through a registry outage as through a Kafka
         * one: the spool keeps the document in the framing that needs no
         * registry, and the drain frames it for Kafka once the registry
         * answers. */
        if (rc == AVK_CODEC_UNAVAILABLE && r->spool) {
                local = 1;
                rc = frame(r, e, kind, value, 1, &payload, &len, reason, sizeof(reason));
        }
        if (rc != 0) {
                avk_errors_add(errs, NULL, "%s", reason);
                return AVK_UNAVAILABLE;
        }
        avk_prepared_t *d = prepared_new(r, len);
        if (!d) {
                avk_errors_add(errs, NULL, "out of memory");
                return AVK_UNAVAILABLE;
        }
        d->kind = kind;
        d->local = local;
        d->digested = 0;
        if (value) {
                string_field(value, id_field[kind], d->id);
                string_field(value, "deviation_id", d->key);
        } else {
                slot_string(&e->stream.slots[r->id_slot[kind]], d->id);
                slot_string(&e->stream.slots[r->key_slot[kind]], d->key);
        }
        d->payload = d + 1;
        d->len = len;
        memcpy(d->payload, payload, len);
        memcpy(id, d->id, AVK_ID_SIZE);
        *out = d;
        return AVK_FILED;
}

enum avk_result avk_reporter_prepare(avk_reporter_t *r, enum avk_kind kind, const json_t *doc,
                                     char id[AVK_ID_SIZE], struct avk_errors *errs,
                                     avk_prepared_t **out)
{
        avk_errors_init(errs);
        *out = NULL;
        json_t *with_id = NULL;
        if (json_is_object(doc) && !json_object_get(doc, id_field[kind])) {
                char text[AVK_ID_SIZE];
                new_id(text, sizeof(text));
                with_id = json_copy((json_t *)doc);
                json_object_set_new(with_id, id_field[kind], json_string(text));
                doc = with_id;
        }
        struct encoder *e = encoder_get(r);
        enum avk_result result = AVK_UNAVAILABLE;
        if (!e) {
                avk_errors_add(errs, NULL, "out of memory");
                goto out;
        }
        avro_value_t *value = &e->value[kind];
        if (avk_json_to_avro(r->schema[kind], doc, value, &r->opts, errs) != 0) {
                result = AVK_REJECTED;
                atomic_fetch_add(&r->rejected, 1);
                goto out;
        }
        result = encode(r, e, kind, value, id, errs, out);
out:
        if (e)
                encoder_put(r, e);
        json_decref(with_id);
        return result;
}

/* The single pass from text to a prepared document, the id filled in by
 * fill when text lacks it (fill NULL: text must carry it); party, when not
 * NULL, gets the party the document names. It says only yes: 0 when it does
 * not take text (the tree path then gives the verdict and every error),
 * else 1 with encode()'s result in *result. */
static int prepare_single(avk_reporter_t *r, enum avk_kind kind, const char *text, size_t len,
                          const struct avk_json_fill *fill, char id[AVK_ID_SIZE],
                          char party[AVK_PARTY_SIZE], struct avk_errors *errs, avk_prepared_t **out,
                          enum avk_result *result)
{
        if (r->id_slot[kind] < 0 || r->key_slot[kind] < 0 || r->party_slot[kind] < 0)
                return 0;
        struct encoder *e = encoder_get(r);
        if (!e)
                return 0;
        int streamed = avk_json_stream_encode(r->plan[kind], AVK_JSON_READER_SIMDJSON, text, len,
                                              fill, &r->opts, &e->stream) == 0;
        if (streamed) {
                *result = encode(r, e, kind, NULL, id, errs, out);
                if (party) {
                        const avk_avroprog_slot_t *slot = &e->stream.slots[r->party_slot[kind]];
                        size_t n = slot->len < AVK_PARTY_SIZE ? slot->len : AVK_PARTY_SIZE - 1;
                        memcpy(party, slot->v.str, n);
                        party[n] = '\0';
                }
        }
        encoder_put(r, e);
        return streamed;
}

enum avk_result avk_reporter_prepare_own(avk_reporter_t *r, enum avk_kind kind, const char *text,
                                         size_t len, char id[AVK_ID_SIZE],
                                         char party[AVK_PARTY_SIZE], struct avk_errors *errs,
                                         avk_prepared_t **out)
{
        avk_errors_init(errs);
        *out = NULL;
        enum avk_result result = AVK_REJECTED;
        if (!prepare_single(r, kind, text, len, NULL, id, party, errs, out, &result))
                return AVK_REJECTED;
        return result;
}

enum avk_result avk_reporter_prepare_json(avk_reporter_t *r, enum avk_kind kind, const char *text,
                                          size_t len, char id[AVK_ID_SIZE], struct avk_errors *errs,
                                          avk_prepared_t **out)
{
        avk_errors_init(errs);
        *out = NULL;
        struct avk_json_fill fill = {id_field[kind], new_id};
        enum avk_result result;
        if (prepare_single(r, kind, text, len, &fill, id, NULL, errs, out, &result))
                return result;
        char reason[256];
        json_t *doc = avk_json_parse(text, len, reason, sizeof(reason));
        if (!doc) {
                avk_errors_add(errs, NULL, "not valid JSON at %s", reason);
                return AVK_REJECTED;
        }
        result = avk_reporter_prepare(r, kind, doc, id, errs, out);
        json_decref(doc);
        return result;
}

const void *avk_prepared_payload(const avk_prepared_t *prepared, size_t *len)
{
        *len = prepared->len;
        return prepared->payload;
}

int avk_prepared_digest(avk_prepared_t *prepared, unsigned char digest[AVK_RECEIPT_DIGEST_SIZE])
{
        if (!prepared->digested &&
            avk_receipt_digest(prepared->payload, prepared->len, prepared->digest) != 0)
                return -1;
        prepared->digested = 1;
        memcpy(digest, prepared->digest, AVK_RECEIPT_DIGEST_SIZE);
        return 0;
}

void avk_prepared_destroy(avk_prepared_t *d)
{
        free(d);
}

void avk_reporter_send(avk_reporter_t *r, avk_prepared_t *d, avk_reporter_done_cb *done,
                       void *opaque)
{
        struct pending *p = &d->pending;
        *p = (struct pending){.done = done,
                              .opaque = opaque,
                              .reporter = r,
                              .doc = d,
                              .receipt_partition = -1,
                              .receipt_from = -1};
        atomic_fetch_add(&r->in_flight, 1);
        pthread_mutex_lock(&r->send_lock);
        p->seq = r->next_seq++;
        if (r->spool && (atomic_load(&r->spool_mode) || d->local)) {
                atomic_store(&r->spool_mode, 1); /* none overtakes it */
                spool_append(r, p, d->local ? BECAUSE_NO_REGISTRY : BECAUSE_SPOOL_FIRST);
                pthread_mutex_unlock(&r->send_lock);
                return;
        }
        if (r->receipted) { /* for the drain thread's next transaction */
                pthread_mutex_lock(&r->drain_lock);
                if (!r->queue)
                        pthread_cond_signal(&r->drain_cond);
                *r->queue_tail = p;
                r->queue_tail = &p->next;
                pthread_mutex_unlock(&r->drain_lock);
                pthread_mutex_unlock(&r->send_lock);
                return;
        }
        /* F_BLOCK: a full local queue waits for room instead of failing.
         * The payload stays with p until its delivery report. */
        rd_kafka_resp_err_t err = rd_kafka_producev(
            r->rk, RD_KAFKA_V_RKT(r->rkt[d->kind]), RD_KAFKA_V_KEY(d->key, strlen(d->key)),
            RD_KAFKA_V_VALUE(d->payload, d->len), RD_KAFKA_V_HEADER(ID_HEADER, d->id, -1),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_BLOCK), RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
        pthread_mutex_unlock(&r->send_lock);
        if (!err)
                return;
        char reason[256];
        snprintf(reason, sizeof(reason), BECAUSE_NOT_TAKEN " (%s): %s", r->topic[d->kind],
                 rd_kafka_err2str(err));
        finish(r, done, opaque, d->id, AVK_UNAVAILABLE, reason);
        avk_prepared_destroy(d);
}

enum avk_result avk_reporter_submit(avk_reporter_t *r, enum avk_kind kind, const json_t *doc,
                                    char id[AVK_ID_SIZE], struct avk_errors *errs,
                                    avk_reporter_done_cb *done, void *opaque)
{
        avk_prepared_t *d;
        enum avk_result result = avk_reporter_prepare(r, kind, doc, id, errs, &d);
        if (result == AVK_FILED)
                avk_reporter_send(r, d, done, opaque);
        return result;
}

void avk_reporter_stats(avk_reporter_t *r, struct avk_reporter_stats *s)
{
        *s = (struct avk_reporter_stats){
            .kafka_up = atomic_load(&r->kafka_up),
            .registry_up = atomic_load(&r->registry_up),
            .in_flight = atomic_load(&r->in_flight),
            .spool_pending = r->spool ? avk_spool_outstanding(r->spool) : 0,
            .drain_stalled = atomic_load(&r->drain_stalled),
            .filed = atomic_load(&r->filed),
            .spooled = atomic_load(&r->spooled),
            .unavailable = atomic_load(&r->unavailable),
            .rejected = atomic_load(&r->rejected),
            .txn_not_committed = atomic_load(&r->txn_not_committed),
            .txn_committed = atomic_load(&r->txn_committed),
        };
}

void avk_reporter_set_commit_interval(avk_reporter_t *r, int interval_ms)
{
        atomic_store(&r->commit_interval_ms, interval_ms);
}

struct waiter { /* avk_reporter_file() waiting for its one delivery report */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int done;
        enum avk_result result;
        char reason[256];
};

static void wake(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        (void)id;
        struct waiter *w = opaque;
        pthread_mutex_lock(&w->lock);
        w->result = result;
        snprintf(w->reason, sizeof(w->reason), "%s", reason ? reason : "");
        w->done = 1;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

enum avk_result avk_reporter_file(avk_reporter_t *r, enum avk_kind kind, const json_t *doc,
                                  char id[AVK_ID_SIZE], struct avk_errors *errs)
{
        struct waiter w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
        enum avk_result result = avk_reporter_submit(r, kind, doc, id, errs, wake, &w);
        if (result != AVK_FILED)
                return result;
        pthread_mutex_lock(&w.lock);
        while (!w.done) {
                if (!r->served) {
                        pthread_cond_wait(&w.cond, &w.lock);
                        continue;
                }
                /* No thread of the reporter's serves the delivery reports. */
                pthread_mutex_unlock(&w.lock);
                avk_reporter_serve(r, FILE_SERVE_MS);
                pthread_mutex_lock(&w.lock);
        }
        pthread_mutex_unlock(&w.lock);
        if (w.result == AVK_UNAVAILABLE)
                avk_errors_add(errs, NULL, "%s", w.reason);
        return w.result;
}
