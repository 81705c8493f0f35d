/*
 * avk_service: see service.h and docs/architecture.md, "The service kernel". Grew out of the
 * router's and the tracker's loops, which were near copies of each other.
 */
#include "common/kafka/service.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "common/kafka/kafka.h"
#include "common/kafka/replay.h"
#include "common/kafka/round.h"
#include "common/util/clock.h"
#include "common/util/log.h"

#define MAX_PARTITIONS   AVK_SERVICE_MAX_PARTITIONS
#define ROUND_DEFAULT    256  /* records taken from the consumer per round, unless set */
#define POLL_MS          20   /* the longest wait for a record while records flow */
#define IDLE_AFTER_MS    1000 /* without a record this long, the consumer goes idle: */
#define IDLE_PROBE_MS    500  /* it asks for the partitions' ends this often */
#define IDLE_ASK_MS      1000 /* the longest wait for those ends, or the committed offsets */
#define WAIT_MAX_MS      1000 /* the longest sleep in the wait hook, should a wake-up be missed */
#define BACKOFF_MIN_MS   200  /* a record that asked to wait is read again after this, */
#define BACKOFF_MAX_MS   5000 /* doubling up to this; so does a failed rebuild */
#define STOP_CHECK_MS    50   /* a backoff looks at the stop flag this often */
#define LAG_EVERY_MS     1000
#define DRAIN_TIMEOUT_MS 30000 /* a revoke waits this long for outputs in flight */
#define REBUILD_TIMEOUT  60000
#define SUMMARY_EVERY_MS 10000
#define CLIENT_SLACK_NS  1000000L /* the Kafka clients' timer slack: client() */
/* The group's session timeout and heartbeat unless kafka.* sets them: how long
 * a member that stopped heartbeating keeps its partitions, librdkafka's 45 s
 * shortened to the brokers' least (group.min.session.timeout.ms), with three
 * heartbeats in it (docs/operations.md, "Restarts"). */
#define SESSION_TIMEOUT_MS "6000"
#define HEARTBEAT_MS       "2000"

struct avk_service {
        struct avk_service_options opts;
        struct avk_service_hooks hooks;
        const avk_config_t *cfg;
        char instance[256]; /* the consumer's group.instance.id */
        rd_kafka_t *producer, *consumer;
        /* The reader for rebuilds exists only during one (avk_service_replay()
         * opens it, on_assign() closes it): an idle client wakes its threads
         * every second. */
        rd_kafka_t *reader;
        rd_kafka_conf_t *reader_conf; /* copied for each reader */
        char reader_group[300];
        avk_outbox_t *outbox;
        avk_outbox_input_t **inputs; /* [topic * MAX_PARTITIONS + partition]: the assigned */
        /* The same index: when each assigned partition was last read to its end
         * (mono ms; 0: not since its assignment), and whether it is there now
         * (no record taken since): avk_service_read_to_end_since(). */
        int64_t *ended_at;
        uint8_t *at_end;
        int owned[MAX_PARTITIONS]; /* partitions whose state is rebuilt */
        avk_round_t *round;        /* records taken from the consumer, not yet handled */
        int rc;                    /* the first error of a round, its reason in errstr */
        char *errstr;              /* avk_service_run()'s */
        size_t errstr_size;
        int *paused;               /* [topic]: paused by flow control */
        uint64_t *pool_unfinished; /* [pool]: unfinished inputs, counted by flow control */
        int wake[2];               /* with the wait hook: Kafka's queues and stop write to [1] */
        rd_kafka_queue_t *consumer_queue, *producer_queue; /* wired to wake[1] */
        avk_metric_t *m_latency, *m_retries, *m_registry_waits;
        avk_metric_family_t *m_lag;
        int64_t last_summary, next_lag_at;
        int64_t backoff_ms, retry_at;             /* while records wait (AVK_SERVICE_WAIT) */
        int64_t last_record_at, next_due;         /* the last record taken; on_tick's next */
        int idle;                                 /* partitions paused for idleness */
        int64_t idle_next_at;                     /* the next probe of an idle service */
        rd_kafka_topic_partition_list_t *idle_at; /* idle: where each assigned partition is */
        rd_kafka_topic_partition_list_t *waiting; /* paused until retry_at */
        atomic_int stop, partitions, held_back;
        atomic_ullong inputs_taken, inputs_done, retries, idle_spells;
};

/* ---- what the outbox reports ---- */

static void input_done(void *opaque, double seconds)
{
        avk_service_t *svc = opaque;
        avk_metric_observe(svc->m_latency, seconds);
        atomic_fetch_add(&svc->inputs_done, 1);
}

static void acked(void *opaque, const void *key, size_t key_len, uint64_t tag)
{
        avk_service_t *svc = opaque;
        svc->hooks.acked(svc->hooks.opaque, key, key_len, tag);
}

static int still_wanted(void *opaque, const void *key, size_t key_len, uint64_t tag)
{
        avk_service_t *svc = opaque;
        return svc->hooks.still_wanted(svc->hooks.opaque, key, key_len, tag);
}

/* The outbox counts the retries; the statistics and the counter mirror it. */
static void mirror_retries(avk_service_t *svc)
{
        uint64_t n = avk_outbox_retries(svc->outbox);
        atomic_store(&svc->retries, n);
        avk_metric_set(svc->m_retries, (int64_t)n);
}

/* ---- rebalances ---- */

static int topic_index(const avk_service_t *svc, const char *topic)
{
        for (int k = 0; k < svc->opts.input_cnt; k++) {
                if (strcmp(topic, svc->opts.inputs[k]) == 0)
                        return k;
        }
        return -1;
}

/* The FIFO slot of topic [partition], or NULL when either is not an input. */
static avk_outbox_input_t **slot(avk_service_t *svc, const char *topic, int32_t partition)
{
        int k = topic_index(svc, topic);
        if (k < 0 || partition < 0 || partition >= MAX_PARTITIONS)
                return NULL;
        return &svc->inputs[(size_t)k * MAX_PARTITIONS + (size_t)partition];
}

static void drop(avk_service_t *svc, const int32_t *parts, int cnt)
{
        if (cnt && svc->hooks.on_drop)
                svc->hooks.on_drop(svc->hooks.opaque, parts, cnt);
}

static void close_reader(avk_service_t *svc)
{
        if (!svc->reader)
                return;
        rd_kafka_consumer_close(svc->reader);
        rd_kafka_destroy(svc->reader);
        svc->reader = NULL;
}

static void on_assign(avk_service_t *svc, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
        int32_t nums[MAX_PARTITIONS];
        int fresh[MAX_PARTITIONS] = {0};
        int cnt = avk_replay_fresh(parts, svc->owned, MAX_PARTITIONS, nums, fresh);
        int64_t start = avk_clock_mono_ms();
        int64_t backoff_ms = 0;
        while (cnt && svc->hooks.on_rebuild &&
               svc->hooks.on_rebuild(svc->hooks.opaque, nums, cnt) != 0 &&
               !atomic_load(&svc->stop)) {
                /* A rebuild fails on an outage (Kafka, the Schema Registry): wait, doubling,
                 * so that it costs neither them nor this host a busy loop, in steps short
                 * enough for a stop to answer at once. */
                backoff_ms = backoff_ms ? backoff_ms * 2 : BACKOFF_MIN_MS;
                if (backoff_ms > BACKOFF_MAX_MS)
                        backoff_ms = BACKOFF_MAX_MS;
                avk_log(AVK_LOG_WARN, svc->opts.component,
                        "rebuilding state failed; retrying in %lld ms", (long long)backoff_ms);
                drop(svc, nums, cnt);
                for (int64_t waited = 0; waited < backoff_ms && !atomic_load(&svc->stop);
                     waited += STOP_CHECK_MS)
                        nanosleep(&(struct timespec){0, STOP_CHECK_MS * 1000000L}, NULL);
        }
        close_reader(svc);
        for (int i = 0; i < cnt; i++)
                svc->owned[nums[i]] = 1;
        int first = 0;
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                avk_outbox_input_t **in = slot(svc, tp->topic, tp->partition);
                if (!in)
                        continue;
                first += strcmp(tp->topic, svc->opts.inputs[0]) == 0;
                svc->ended_at[in - svc->inputs] = 0;
                svc->at_end[in - svc->inputs] = 0;
                if (!*in) /* the options' name: the list's is freed after the callback */
                        *in = avk_outbox_assign(svc->outbox,
                                                svc->opts.inputs[topic_index(svc, tp->topic)],
                                                tp->partition);
        }
        atomic_fetch_add(&svc->partitions, first);
        for (int k = 0; k < svc->opts.input_cnt; k++)
                svc->paused[k] = 0; /* a newly assigned partition is fetched */
        char held[128] = "";
        if (svc->hooks.describe)
                svc->hooks.describe(svc->hooks.opaque, held, sizeof(held));
        avk_log(AVK_LOG_INFO, svc->opts.component,
                "assigned %d partitions; state of %d rebuilt in %lld ms%s%s", parts->cnt, cnt,
                (long long)(avk_clock_mono_ms() - start), held[0] ? ": " : "", held);
        rd_kafka_assign(rk, parts);
        /* The second without records that makes the service idle starts now:
         * counted from before a rebuild longer than that, it paused the
         * partitions just assigned before their first fetch. */
        svc->last_record_at = avk_clock_mono_ms();
}

static void on_revoke(avk_service_t *svc, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
        avk_outbox_drain(svc->outbox, DRAIN_TIMEOUT_MS);
        if (avk_outbox_in_flight(svc->outbox))
                avk_log(
                    AVK_LOG_WARN, svc->opts.component, "%llu outputs still in flight at revoke: %s",
                    (unsigned long long)avk_outbox_in_flight(svc->outbox), svc->opts.revoke_note);
        rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
                avk_log(AVK_LOG_WARN, svc->opts.component, "commit at revoke: %s",
                        rd_kafka_err2str(err));
        int32_t dropped[MAX_PARTITIONS];
        int dropped_cnt = 0, first = 0;
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                avk_outbox_input_t **in = slot(svc, tp->topic, tp->partition);
                if (!in)
                        continue;
                if (*in) {
                        if (svc->hooks.on_revoke)
                                svc->hooks.on_revoke(svc->hooks.opaque, *in);
                        avk_outbox_revoke(svc->outbox, *in);
                        *in = NULL;
                        first += strcmp(tp->topic, svc->opts.inputs[0]) == 0;
                }
                if (svc->owned[tp->partition]) {
                        svc->owned[tp->partition] = 0;
                        dropped[dropped_cnt++] = tp->partition;
                }
        }
        drop(svc, dropped, dropped_cnt);
        atomic_fetch_sub(&svc->partitions, first);
        avk_log(AVK_LOG_INFO, svc->opts.component, "revoked %d partitions", parts->cnt);
        rd_kafka_assign(rk, NULL);
}

static void idle_leave(avk_service_t *svc);
static void handle_round(avk_service_t *svc);

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        /* The records taken before the rebalance are handled before it: a record
         * of a partition revoked and assigned again must not follow the ones
         * the new assignment fetches again from the committed offset. */
        handle_round(opaque);
        /* A pause outlives the assignment in librdkafka: none is left for another one. */
        idle_leave(opaque);
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
                on_assign(opaque, rk, parts);
        else
                on_revoke(opaque, rk, parts);
}

/* ---- topics ---- */

/* The partition count of topic in md, or -1 with the reason in errstr. */
static int partition_cnt(const struct rd_kafka_metadata *md, const char *topic, char *errstr,
                         size_t errstr_size)
{
        for (int i = 0; i < md->topic_cnt; i++) {
                if (strcmp(md->topics[i].topic, topic) != 0)
                        continue;
                if (!md->topics[i].err)
                        return md->topics[i].partition_cnt;
                snprintf(errstr, errstr_size, "topic %s: %s", topic,
                         rd_kafka_err2str(md->topics[i].err));
                return -1;
        }
        snprintf(errstr, errstr_size, "topic %s: %s", topic,
                 rd_kafka_err2str(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
        return -1;
}

/* Inputs and outputs must share one partition count: a deviation's inputs
 * meet in one instance, and its outputs go to the same partition number,
 * which is what a rebuild reads.
 *
 * The metadata of every topic is asked for through the producer: that fills
 * its metadata cache with the output topics, so the first output to each is
 * sent at once instead of waiting up to a second for librdkafka's periodic
 * scan of unknown topics. */
static int check_topics(avk_service_t *svc, char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(svc->producer, 1, NULL, &md, 10000);
        if (e) {
                snprintf(errstr, errstr_size, "topic metadata: %s", rd_kafka_err2str(e));
                return -1;
        }
        int cnt = svc->opts.input_cnt + svc->opts.output_cnt, first = -1, rc = -1;
        for (int i = 0; i < cnt; i++) {
                const char *topic = i < svc->opts.input_cnt
                                        ? svc->opts.inputs[i]
                                        : svc->opts.outputs[i - svc->opts.input_cnt];
                int n = partition_cnt(md, topic, errstr, errstr_size);
                if (n < 0)
                        goto out;
                if (n > MAX_PARTITIONS) {
                        snprintf(errstr, errstr_size, "topic %s: more than %d partitions", topic,
                                 MAX_PARTITIONS);
                        goto out;
                }
                if (first >= 0 && n != first) {
                        snprintf(errstr, errstr_size,
                                 "topic %s has %d partitions and %s %d: the lifecycle topics "
                                 "must share one partition count",
                                 topic, n, svc->opts.inputs[0], first);
                        goto out;
                }
                first = n;
        }
        rc = 0;
out:
        rd_kafka_metadata_destroy(md);
        return rc;
}

/* ---- the loop ---- */

/* Record m could not be handled yet (why: the hook's reason): its partition
 * goes back to m and pauses until the backoff has passed. Its offset was
 * never stored, so a crash meanwhile reads it again too. */
static void hold_back(avk_service_t *svc, const rd_kafka_message_t *m, const char *why)
{
        const char *topic = rd_kafka_topic_name(m->rkt);
        if (!svc->backoff_ms)
                avk_log(AVK_LOG_WARN, svc->opts.component,
                        "%s [%d] offset %lld: %s (read again later, not dead-lettered)", topic,
                        (int)m->partition, (long long)m->offset, why);
        svc->backoff_ms = svc->backoff_ms ? svc->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (svc->backoff_ms > BACKOFF_MAX_MS)
                svc->backoff_ms = BACKOFF_MAX_MS;
        svc->retry_at = avk_clock_mono_ms() + svc->backoff_ms;
        if (!svc->waiting)
                svc->waiting = rd_kafka_topic_partition_list_new(8);
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(svc->waiting, topic, m->partition);
        if (!tp)
                tp = rd_kafka_topic_partition_list_add(svc->waiting, topic, m->partition);
        tp->offset = m->offset;
        avk_metric_add(svc->m_registry_waits, 1);
        rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, topic, m->partition)->offset = m->offset;
        rd_kafka_pause_partitions(svc->consumer, one);
        rd_kafka_error_t *error = rd_kafka_seek_partitions(svc->consumer, one, 5000);
        if (error) {
                avk_log(AVK_LOG_WARN, svc->opts.component, "%s [%d]: seek back: %s", topic,
                        (int)m->partition, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        rd_kafka_topic_partition_list_destroy(one);
        atomic_store(&svc->held_back, 1);
}

/* Resumes the partitions held back once their backoff has passed. */
static void resume_held_back(avk_service_t *svc, int64_t now)
{
        if (!svc->waiting || now < svc->retry_at)
                return;
        rd_kafka_resume_partitions(svc->consumer, svc->waiting);
        rd_kafka_topic_partition_list_destroy(svc->waiting);
        svc->waiting = NULL;
        atomic_store(&svc->held_back, 0);
}

static int dispatch(avk_service_t *svc, const rd_kafka_message_t *m, char *errstr,
                    size_t errstr_size)
{
        const char *topic = rd_kafka_topic_name(m->rkt);
        avk_outbox_input_t **in = slot(svc, topic, m->partition);
        if (!in || !*in)
                return 0; /* a record fetched before a revoke: the next owner has it */
        svc->at_end[in - svc->inputs] = 0;
        atomic_fetch_add(&svc->inputs_taken, 1);
        uint64_t seq = avk_outbox_begin(*in, m->offset);
        if (seq == UINT64_MAX) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        avk_outbox_input_t *input = *in;
        int rc = svc->hooks.on_record(svc->hooks.opaque, topic_index(svc, topic), input, seq, m,
                                      errstr, errstr_size);
        if (rc == AVK_SERVICE_WAIT) {
                if (avk_outbox_withdraw(input, seq) == 0) {
                        hold_back(svc, m, errstr);
                        return 0;
                }
                snprintf(errstr, errstr_size,
                         "%s [%d] offset %lld: asked to wait after its outputs", topic,
                         (int)m->partition, (long long)m->offset);
                rc = -1;
        } else if (rc == 0 && svc->backoff_ms) {
                avk_log(AVK_LOG_INFO, svc->opts.component, "records are handled again");
                svc->backoff_ms = 0;
        }
        avk_outbox_end(svc->outbox, input, seq); /* the +1 hold: every output is produced */
        return rc;
}

static void end_of_partition(avk_service_t *svc, const rd_kafka_message_t *m)
{
        avk_outbox_input_t **in = slot(svc, rd_kafka_topic_name(m->rkt), m->partition);
        if (!in || !*in)
                return;
        svc->ended_at[in - svc->inputs] = avk_clock_mono_ms();
        svc->at_end[in - svc->inputs] = 1;
        if (svc->hooks.on_eof)
                svc->hooks.on_eof(svc->hooks.opaque, topic_index(svc, rd_kafka_topic_name(m->rkt)),
                                  m->partition);
}

/* Whether m is at or after the record of its partition held back to be read
 * again (hold_back()): the consumer delivers it again after the backoff. */
static int behind_held_back(const avk_service_t *svc, const rd_kafka_message_t *m)
{
        const rd_kafka_topic_partition_t *tp =
            svc->waiting ? rd_kafka_topic_partition_list_find(
                               svc->waiting, rd_kafka_topic_name(m->rkt), m->partition)
                         : NULL;
        return tp && m->offset >= tp->offset;
}

static void handle(avk_service_t *svc, const rd_kafka_message_t *m)
{
        if (behind_held_back(svc, m))
                return;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                end_of_partition(svc, m);
        else if (m->err)
                avk_log(AVK_LOG_WARN, svc->opts.component, "consumer: %s",
                        rd_kafka_message_errstr(m));
        else
                svc->rc = dispatch(svc, m, svc->errstr, svc->errstr_size);
}

/* Handles the records taken, in partition order (common/kafka/round.h);
 * after an error the rest are let go unhandled: their offsets are not stored. */
static void handle_round(avk_service_t *svc)
{
        rd_kafka_message_t **records;
        int cnt = avk_round_take(svc->round, &records);
        for (int i = 0; i < cnt; i++) {
                if (!svc->rc)
                        handle(svc, records[i]);
                rd_kafka_message_destroy(records[i]);
        }
}

/* The assigned partitions of input topic k (a new list). */
static rd_kafka_topic_partition_list_t *assigned(avk_service_t *svc, int k)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
        for (int32_t p = 0; p < MAX_PARTITIONS; p++) {
                if (svc->inputs[(size_t)k * MAX_PARTITIONS + (size_t)p])
                        rd_kafka_topic_partition_list_add(l, svc->opts.inputs[k], p);
        }
        return l;
}

/* The flow-control pool of input topic k, and a pool's bound (0: never paused). */
static int pool_of(const avk_service_t *svc, int k)
{
        return svc->opts.input_pool ? svc->opts.input_pool[k] : k;
}

static size_t pool_bound(const avk_service_t *svc, int pool)
{
        return svc->opts.input_pool ? svc->opts.pool_max_unfinished[pool]
                                    : svc->opts.max_unfinished;
}

/* Pauses the input topics of a pool while its bound of their inputs are
 * unfinished, resumes them below: one slow pool holds up no other. */
static void flow_control(avk_service_t *svc)
{
        memset(svc->pool_unfinished, 0, (size_t)svc->opts.input_cnt * sizeof(uint64_t));
        for (int k = 0; k < svc->opts.input_cnt; k++) {
                for (size_t p = 0; p < MAX_PARTITIONS; p++) {
                        const avk_outbox_input_t *in = svc->inputs[(size_t)k * MAX_PARTITIONS + p];
                        if (in)
                                svc->pool_unfinished[pool_of(svc, k)] += avk_outbox_unfinished(in);
                }
        }
        for (int k = 0; k < svc->opts.input_cnt; k++) {
                size_t bound = pool_bound(svc, pool_of(svc, k));
                int want = bound && svc->pool_unfinished[pool_of(svc, k)] >= bound;
                if (want == svc->paused[k])
                        continue;
                rd_kafka_topic_partition_list_t *l = assigned(svc, k);
                if (want)
                        rd_kafka_pause_partitions(svc->consumer, l);
                else
                        rd_kafka_resume_partitions(svc->consumer, l);
                rd_kafka_topic_partition_list_destroy(l);
                svc->paused[k] = want;
        }
}

/* Records behind the end of each input topic, over the assigned partitions:
 * whether the service keeps up. */
static void measure_lag(avk_service_t *svc)
{
        int64_t now = avk_clock_mono_ms();
        if (now < svc->next_lag_at)
                return;
        svc->next_lag_at = now + LAG_EVERY_MS;
        for (int k = 0; k < svc->opts.input_cnt; k++) {
                rd_kafka_topic_partition_list_t *l = assigned(svc, k);
                int64_t lag = 0;
                if (l->cnt && rd_kafka_position(svc->consumer, l) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                        for (int i = 0; i < l->cnt; i++) {
                                int64_t lo, hi;
                                if (l->elems[i].offset >= 0 &&
                                    rd_kafka_get_watermark_offsets(svc->consumer, l->elems[i].topic,
                                                                   l->elems[i].partition, &lo,
                                                                   &hi) == 0 &&
                                    hi > l->elems[i].offset)
                                        lag += hi - l->elems[i].offset;
                        }
                }
                rd_kafka_topic_partition_list_destroy(l);
                avk_metric_set(
                    avk_metrics_series(svc->m_lag, (const char *[]){svc->opts.inputs[k]}), lag);
        }
}

/* ---- idleness ---- */

/* Pauses (pause) or resumes every assigned partition of every input topic. */
static void pause_assigned(avk_service_t *svc, int pause)
{
        for (int k = 0; k < svc->opts.input_cnt; k++) {
                rd_kafka_topic_partition_list_t *l = assigned(svc, k);
                if (l->cnt && pause)
                        rd_kafka_pause_partitions(svc->consumer, l);
                else if (l->cnt)
                        rd_kafka_resume_partitions(svc->consumer, l);
                rd_kafka_topic_partition_list_destroy(l);
        }
}

static void idle_leave(avk_service_t *svc)
{
        if (svc->idle)
                pause_assigned(svc, 0);
        if (svc->idle_at)
                rd_kafka_topic_partition_list_destroy(svc->idle_at);
        svc->idle_at = NULL;
        svc->idle = 0;
        svc->last_record_at = avk_clock_mono_ms();
}

/* Whether flow control, a record held back or an output in flight has
 * partitions paused or work under way: then the service is not idle. */
static int busy(const avk_service_t *svc)
{
        for (int k = 0; k < svc->opts.input_cnt; k++) {
                if (svc->paused[k])
                        return 1;
        }
        return svc->waiting || avk_outbox_in_flight(svc->outbox);
}

/* Pauses the assigned partitions, noting where each is: the offset after
 * the last record taken, or for one that gave none since its assignment
 * its committed offset (none: -1). */
static void idle_enter(avk_service_t *svc, int64_t now)
{
        rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(16);
        for (int k = 0; k < svc->opts.input_cnt; k++) {
                rd_kafka_topic_partition_list_t *l = assigned(svc, k);
                for (int i = 0; i < l->cnt; i++)
                        rd_kafka_topic_partition_list_add(at, l->elems[i].topic,
                                                          l->elems[i].partition);
                rd_kafka_topic_partition_list_destroy(l);
        }
        rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(at);
        if (!at->cnt || rd_kafka_position(svc->consumer, at) ||
            rd_kafka_committed(svc->consumer, committed, IDLE_ASK_MS)) {
                rd_kafka_topic_partition_list_destroy(at);
                rd_kafka_topic_partition_list_destroy(committed);
                svc->last_record_at = now; /* try again later */
                return;
        }
        for (int i = 0; i < at->cnt; i++) {
                if (at->elems[i].offset < 0)
                        at->elems[i].offset = committed->elems[i].offset;
        }
        rd_kafka_topic_partition_list_destroy(committed);
        pause_assigned(svc, 1);
        svc->idle_at = at;
        svc->idle = 1;
        atomic_fetch_add(&svc->idle_spells, 1);
        svc->idle_next_at = now + IDLE_PROBE_MS;
}

/* An idle service's probe found no record beyond where it is: every
 * assigned partition is read to its end, paused or not. */
static void all_at_end(avk_service_t *svc, int64_t now)
{
        for (size_t i = 0; i < (size_t)svc->opts.input_cnt * MAX_PARTITIONS; i++) {
                if (svc->inputs[i]) {
                        svc->ended_at[i] = now;
                        svc->at_end[i] = 1;
                }
        }
}

/* Whether an idle service's partitions hold records beyond where it is:
 * their ends, from one ListOffsets request per broker. A failed request
 * answers yes. */
static int idle_probe(avk_service_t *svc)
{
        rd_kafka_topic_partition_list_t *ends = rd_kafka_topic_partition_list_copy(svc->idle_at);
        for (int i = 0; i < ends->cnt; i++)
                ends->elems[i].offset = RD_KAFKA_OFFSET_END; /* the latest, as a time */
        int fresh = rd_kafka_offsets_for_times(svc->consumer, ends, IDLE_ASK_MS) != 0;
        for (int i = 0; i < ends->cnt && !fresh; i++) {
                const rd_kafka_topic_partition_t *at = rd_kafka_topic_partition_list_find(
                    svc->idle_at, ends->elems[i].topic, ends->elems[i].partition);
                fresh = ends->elems[i].err || !at ||
                        ends->elems[i].offset > (at->offset > 0 ? at->offset : 0);
        }
        rd_kafka_topic_partition_list_destroy(ends);
        return fresh;
}

/* An empty fetch costs a request and, on the embedded broker, takes the
 * whole fetch.wait.max.ms: kept short, it keeps latency low while records
 * flow and burns CPU while none do. So a service that took no record for
 * IDLE_AFTER_MS pauses its partitions and asks every IDLE_PROBE_MS whether
 * any has records beyond where it is, fetching again when one has: a long
 * wait when idle, short ones when busy (the first record after an idle spell
 * waits up to 1.5 s: docs/architecture.md, "The service kernel"). */
static void idle_step(avk_service_t *svc, int taken, int64_t now)
{
        /* A service with a wait hook (the notifier, the analysis forwarder)
         * keeps fetching: its work outside Kafka and the ends of its partner
         * topics (on_eof) are not reconciled with paused partitions. */
        if (svc->hooks.wait)
                return;
        if (taken || (!svc->idle && busy(svc))) {
                if (svc->idle)
                        idle_leave(svc);
                svc->last_record_at = now;
        } else if (!svc->idle && now - svc->last_record_at >= IDLE_AFTER_MS) {
                idle_enter(svc, now);
        } else if (svc->idle && now >= svc->idle_next_at) {
                if (idle_probe(svc)) {
                        idle_leave(svc);
                } else {
                        all_at_end(svc, now);
                        svc->idle_next_at = avk_clock_mono_ms() + IDLE_PROBE_MS;
                }
        }
}

/* How long the loop may sleep from now: until on_tick's next due time, an
 * idle service's next probe, and in the consumer poll while records flow
 * POLL_MS at most (a wait hook wakes when Kafka's queues do). */
static int sleep_ms(const avk_service_t *svc, int64_t now)
{
        int64_t until = svc->next_due;
        if (svc->idle && svc->idle_next_at < until)
                until = svc->idle_next_at;
        else if (!svc->idle && !svc->hooks.wait && now + POLL_MS < until)
                until = now + POLL_MS;
        return until > now ? (int)(until - now) : 0;
}

static void unwire(avk_service_t *svc);

static void summary(avk_service_t *svc, int now)
{
        int64_t t = avk_clock_mono_ms();
        if (!svc->hooks.summary || (!now && t - svc->last_summary < SUMMARY_EVERY_MS))
                return;
        svc->last_summary = t;
        svc->hooks.summary(svc->hooks.opaque);
}

static int subscribe(avk_service_t *svc, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *subs =
            rd_kafka_topic_partition_list_new(svc->opts.input_cnt);
        for (int k = 0; k < svc->opts.input_cnt; k++)
                rd_kafka_topic_partition_list_add(subs, svc->opts.inputs[k], RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(svc->consumer, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (e) {
                snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(e));
                return -1;
        }
        avk_log(AVK_LOG_INFO, svc->opts.component,
                "group %s as instance %s: consuming %d topics from %s", svc->opts.group,
                svc->instance, svc->opts.input_cnt, svc->opts.inputs[0]);
        return 0;
}

int avk_service_run(avk_service_t *svc, char *errstr, size_t errstr_size)
{
        if (check_topics(svc, errstr, errstr_size) != 0 || subscribe(svc, errstr, errstr_size) != 0)
                return -1;
        int rc = 0;
        svc->errstr = errstr;
        svc->errstr_size = errstr_size;
        svc->last_summary = svc->last_record_at = avk_clock_mono_ms();
        svc->next_due = svc->last_summary + WAIT_MAX_MS;
        while (!atomic_load(&svc->stop)) {
                /* Up to a round's records (options' round_max), the housekeeping
                 * below once per round: at full speed, serving delivery reports
                 * and storing offsets per input cost more than the service. */
                rd_kafka_message_t *m;
                int taken = 0;
                for (; !avk_round_full(svc->round) &&
                       (m = rd_kafka_consumer_poll(
                            svc->consumer,
                            taken || svc->hooks.wait ? 0 : sleep_ms(svc, avk_clock_mono_ms())));
                     taken++)
                        avk_round_add(svc->round, m);
                int drained = !avk_round_full(svc->round); /* the consumer had no more */
                handle_round(svc);
                rc = svc->rc;
                avk_outbox_poll(svc->outbox);
                resume_held_back(svc, avk_clock_mono_ms());
                mirror_retries(svc);
                flow_control(svc);
                measure_lag(svc);
                int64_t now = avk_clock_mono_ms(), next_due = now + WAIT_MAX_MS;
                idle_step(svc, taken, now);
                if (!rc && svc->hooks.on_tick)
                        rc = svc->hooks.on_tick(svc->hooks.opaque, &next_due, errstr, errstr_size);
                svc->next_due = next_due;
                char reason[512];
                if (rd_kafka_fatal_error(svc->producer, reason, sizeof(reason))) {
                        snprintf(errstr, errstr_size, "producer: %s", reason);
                        rc = -1;
                } else if (rd_kafka_fatal_error(svc->consumer, reason, sizeof(reason))) {
                        /* Fenced: another instance joined under this one's name. */
                        snprintf(errstr, errstr_size, "consumer (instance %s): %s", svc->instance,
                                 reason);
                        rc = -1;
                }
                if (rc)
                        break;
                summary(svc, 0);
                if (svc->hooks.wait && drained && !atomic_load(&svc->stop))
                        svc->hooks.wait(svc->hooks.opaque, svc->wake[0], sleep_ms(svc, now));
        }
        unwire(svc);
        /* Closing revokes the assignment: on_revoke waits for the outputs in
         * flight, stores and commits; bounded, should Kafka not answer. */
        avk_kafka_consumer_close(svc->consumer,
                                 (int)avk_config_get_int(svc->cfg, "consumer.close.timeout.ms"),
                                 svc->opts.component);
        avk_outbox_close(svc->outbox);
        /* Destroyed here: rd_kafka_destroy() would close it again, without a
         * bound, after a close that gave up. */
        rd_kafka_destroy_flags(svc->consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        svc->consumer = NULL;
        mirror_retries(svc);
        summary(svc, 1);
        return rc;
}

void avk_service_stop(avk_service_t *svc)
{
        atomic_store(&svc->stop, 1);
        if (svc->wake[1] >= 0) {
                ssize_t n = write(svc->wake[1], "s", 1); /* a full pipe wakes anyway */
                (void)n;
        }
}

int avk_service_read_to_end_since(const avk_service_t *svc, int64_t since_ms)
{
        for (size_t i = 0; i < (size_t)svc->opts.input_cnt * MAX_PARTITIONS; i++) {
                if (svc->inputs[i] && !svc->at_end[i] &&
                    (!svc->ended_at[i] || svc->ended_at[i] < since_ms))
                        return 0;
        }
        return 1;
}

int avk_service_paused(avk_service_t *svc, int topic)
{
        return svc->paused[topic];
}

int avk_service_ready(avk_service_t *svc, char *why, size_t why_size)
{
        if (atomic_load(&svc->held_back)) {
                snprintf(why, why_size, "records wait for the Schema Registry (read again later)");
                return 0;
        }
        return avk_kafka_ready(svc->producer, atomic_load(&svc->partitions), svc->opts.inputs[0],
                               why, why_size);
}

avk_outbox_t *avk_service_outbox(avk_service_t *svc)
{
        return svc->outbox;
}

void avk_service_stats(avk_service_t *svc, struct avk_service_stats *s)
{
        *s = (struct avk_service_stats){.inputs_taken = atomic_load(&svc->inputs_taken),
                                        .inputs_done = atomic_load(&svc->inputs_done),
                                        .retries = atomic_load(&svc->retries),
                                        .idle_spells = atomic_load(&svc->idle_spells),
                                        .partitions = atomic_load(&svc->partitions)};
}

/* ---- creation ---- */

/* Sets a librdkafka property unless the configuration's kafka.* keys did. */
static void conf_default(const avk_config_t *cfg, rd_kafka_conf_t *conf, const char *name,
                         const char *value)
{
        for (size_t i = 0; i < avk_config_kafka_cnt(cfg); i++) {
                const char *n, *v;
                avk_config_kafka_get(cfg, i, &n, &v);
                if (strcmp(n, name) == 0)
                        return;
        }
        rd_kafka_conf_set(conf, name, value, NULL, 0);
}

/* What the group consumer and the rebuild reader share: a short fetch wait
 * (records move on within 10 ms at low rates), and a prefetch bounded by
 * queued.max.messages.kbytes (64 MB) alone. librdkafka 2.0.2 stops fetching
 * once its queue holds queued.min.messages (100,000 by default) or that many
 * kilobytes, and looks again only at its broker thread's next wake-up, up
 * to 1 s later (2.2.0 added fetch.queue.backoff.ms): 100,000 records are less
 * than a second of a service's work under a backlog, so it ran dry and
 * waited (docs/architecture.md, "Known pitfalls"). */
static void consumer_defaults(const avk_config_t *cfg, rd_kafka_conf_t *conf)
{
        conf_default(cfg, conf, "fetch.wait.max.ms", "10");
        conf_default(cfg, conf, "queued.min.messages", "1000000");
}

/* Makes one client from a configuration; destroys conf when that fails.
 * librdkafka 2.0.2's main thread waits for its next timer in whole
 * milliseconds, rounded down, then spins until the timer is due: up to 1 ms
 * of CPU at each of its timers (the consumer's run at 2 Hz), most of an idle
 * service's CPU. Its threads take the timer slack of the thread that creates
 * them, and with 1 ms of slack the kernel ends that wait once the timer is
 * due; a timeout then ends up to 1 ms late (docs/architecture.md, "The
 * service kernel"). The calling thread's own slack is put back. */
static rd_kafka_t *client(rd_kafka_conf_t *conf, const char *group, char *errstr,
                          size_t errstr_size)
{
        int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
        prctl(PR_SET_TIMERSLACK, CLIENT_SLACK_NS, 0, 0, 0);
        rd_kafka_t *rk = group ? avk_kafka_consumer_new(conf, group, errstr, errstr_size)
                               : avk_kafka_producer_new(conf, errstr, errstr_size);
        prctl(PR_SET_TIMERSLACK, (long)slack, 0, 0, 0);
        if (!rk)
                rd_kafka_conf_destroy(conf);
        return rk;
}

int avk_service_replay(avk_service_t *svc, const char *topic, const int32_t *parts, int cnt,
                       void (*cb)(void *opaque, const rd_kafka_message_t *m), void *opaque)
{
        if (!svc->reader) {
                char errstr[512];
                svc->reader = client(rd_kafka_conf_dup(svc->reader_conf), svc->reader_group, errstr,
                                     sizeof(errstr));
                if (!svc->reader) {
                        avk_log(AVK_LOG_WARN, svc->opts.component, "reader: %s", errstr);
                        return -1;
                }
        }
        return avk_replay_read(svc->reader, topic, parts, cnt, REBUILD_TIMEOUT, cb, opaque);
}

/* The range assignor is what makes a deviation's inputs meet: another one is refused. */
static int check_assignor(const avk_service_t *svc, char *errstr, size_t errstr_size)
{
        for (size_t i = 0; i < avk_config_kafka_cnt(svc->cfg); i++) {
                const char *n, *v;
                avk_config_kafka_get(svc->cfg, i, &n, &v);
                if (strcmp(n, "partition.assignment.strategy") == 0 && strcmp(v, "range") != 0) {
                        snprintf(errstr, errstr_size,
                                 "kafka.partition.assignment.strategy: %s needs \"range\" "
                                 "(partition p of every input topic on one instance)",
                                 svc->opts.component);
                        return -1;
                }
        }
        return 0;
}

/* With the wait hook: Kafka's queues write to the wake-up pipe. */
static int wire(avk_service_t *svc, char *errstr, size_t errstr_size)
{
        if (pipe(svc->wake) != 0) {
                snprintf(errstr, errstr_size, "wake-up pipe: out of descriptors");
                return -1;
        }
        for (int i = 0; i < 2; i++) {
                fcntl(svc->wake[i], F_SETFL, O_NONBLOCK);
                fcntl(svc->wake[i], F_SETFD, FD_CLOEXEC);
        }
        svc->consumer_queue = rd_kafka_queue_get_consumer(svc->consumer);
        svc->producer_queue = rd_kafka_queue_get_main(svc->producer);
        rd_kafka_queue_io_event_enable(svc->consumer_queue, svc->wake[1], "c", 1);
        rd_kafka_queue_io_event_enable(svc->producer_queue, svc->wake[1], "p", 1);
        return 0;
}

static void unwire(avk_service_t *svc)
{
        rd_kafka_queue_t **queues[] = {&svc->consumer_queue, &svc->producer_queue};
        for (size_t i = 0; i < 2; i++) {
                if (*queues[i]) {
                        rd_kafka_queue_io_event_enable(*queues[i], -1, NULL, 0);
                        rd_kafka_queue_destroy(*queues[i]);
                        *queues[i] = NULL;
                }
        }
}

static int open_clients(avk_service_t *svc, char *errstr, size_t errstr_size)
{
        const avk_config_t *cfg = svc->cfg;
        if (check_assignor(svc, errstr, errstr_size) != 0)
                return -1;
        rd_kafka_conf_t *pconf = avk_kafka_conf(cfg, errstr, errstr_size);
        if (!pconf)
                return -1;
        avk_outbox_conf(svc->outbox, pconf);
        conf_default(cfg, pconf, "linger.ms", "2");
        if (!(svc->producer = client(pconf, NULL, errstr, errstr_size)))
                return -1;
        rd_kafka_conf_t *cconf = avk_kafka_conf(cfg, errstr, errstr_size);
        if (!cconf)
                return -1;
        rd_kafka_conf_set_rebalance_cb(cconf, on_rebalance);
        rd_kafka_conf_set_opaque(cconf, svc);
        rd_kafka_conf_set(cconf, "partition.assignment.strategy", "range", NULL, 0);
        rd_kafka_conf_set(cconf, "enable.auto.commit", "true", NULL, 0);
        conf_default(cfg, cconf, "auto.offset.reset", "earliest");
        conf_default(cfg, cconf, "auto.commit.interval.ms", "1000");
        consumer_defaults(cfg, cconf);
        /* Static membership: a restarted instance takes its partitions back
         * without waiting for its former self's session to time out. */
        avk_kafka_instance_id(cfg, svc->opts.component, svc->instance, sizeof(svc->instance));
        conf_default(cfg, cconf, "group.instance.id", svc->instance);
        conf_default(cfg, cconf, "session.timeout.ms", SESSION_TIMEOUT_MS);
        conf_default(cfg, cconf, "heartbeat.interval.ms", HEARTBEAT_MS);
        rd_kafka_conf_set(cconf, "enable.partition.eof", "true", NULL, 0);
        if (!(svc->consumer = client(cconf, svc->opts.group, errstr, errstr_size)))
                return -1;
        if (!(svc->reader_conf = avk_kafka_conf(cfg, errstr, errstr_size)))
                return -1;
        rd_kafka_conf_set(svc->reader_conf, "enable.auto.commit", "false", NULL, 0);
        consumer_defaults(cfg, svc->reader_conf);
        snprintf(svc->reader_group, sizeof(svc->reader_group), "%s-state", svc->opts.group);
        avk_outbox_clients(svc->outbox, svc->producer, svc->consumer);
        return svc->hooks.wait ? wire(svc, errstr, errstr_size) : 0;
}

static int make_metrics(avk_service_t *svc)
{
        char name[128];
        snprintf(name, sizeof(name), "%s_delivery_retries_total", svc->opts.metric_prefix);
        svc->m_retries = avk_metrics_series(
            avk_metrics_counter(svc->opts.metrics, name,
                                "Outputs produced again after a failed delivery.", NULL),
            NULL);
        snprintf(name, sizeof(name), "%s_input_seconds", svc->opts.metric_prefix);
        svc->m_latency = avk_metrics_series(
            avk_metrics_histogram(svc->opts.metrics, name,
                                  "From consuming an input to Kafka acknowledging its outputs.",
                                  NULL, AVK_METRICS_LATENCY_BUCKETS,
                                  AVK_METRICS_LATENCY_BUCKET_CNT),
            NULL);
        snprintf(name, sizeof(name), "%s_registry_waits_total", svc->opts.metric_prefix);
        svc->m_registry_waits = avk_metrics_series(
            avk_metrics_counter(svc->opts.metrics, name,
                                "Inputs put back to be read again after a backoff because the "
                                "Schema Registry had no answer for their writer schema.",
                                NULL),
            NULL);
        snprintf(name, sizeof(name), "%s_input_lag", svc->opts.metric_prefix);
        svc->m_lag = avk_metrics_gauge(svc->opts.metrics, name,
                                       "Records behind the end of each input topic (assigned "
                                       "partitions).",
                                       (const char *[]){"topic", NULL});
        return svc->m_retries && svc->m_latency && svc->m_registry_waits && svc->m_lag ? 0 : -1;
}

avk_service_t *avk_service_new(const avk_config_t *cfg, const struct avk_service_options *opts,
                               char *errstr, size_t errstr_size)
{
        avk_service_t *svc = calloc(1, sizeof(*svc));
        if (!svc) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        svc->cfg = cfg;
        svc->wake[0] = svc->wake[1] = -1;
        svc->opts = *opts;
        svc->hooks = opts->hooks;
        struct avk_outbox_hooks hooks = {.input_done = input_done,
                                         .acked = opts->hooks.acked ? acked : NULL,
                                         .still_wanted =
                                             opts->hooks.still_wanted ? still_wanted : NULL,
                                         .opaque = svc};
        svc->outbox = avk_outbox_new(&hooks, opts->component);
        svc->inputs = calloc((size_t)opts->input_cnt * MAX_PARTITIONS, sizeof(*svc->inputs));
        svc->paused = calloc((size_t)opts->input_cnt, sizeof(*svc->paused));
        svc->ended_at = calloc((size_t)opts->input_cnt * MAX_PARTITIONS, sizeof(*svc->ended_at));
        svc->at_end = calloc((size_t)opts->input_cnt * MAX_PARTITIONS, sizeof(*svc->at_end));
        svc->pool_unfinished = calloc((size_t)opts->input_cnt, sizeof(*svc->pool_unfinished));
        svc->round =
            avk_round_new(opts->round_max ? opts->round_max : ROUND_DEFAULT, MAX_PARTITIONS);
        if (!svc->round || !svc->outbox || !svc->inputs || !svc->ended_at || !svc->at_end ||
            !svc->paused || !svc->pool_unfinished || make_metrics(svc) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (open_clients(svc, errstr, errstr_size) != 0)
                goto fail;
        return svc;
fail:
        avk_service_destroy(svc);
        return NULL;
}

void avk_service_destroy(avk_service_t *svc)
{
        if (!svc)
                return;
        unwire(svc);
        if (svc->waiting)
                rd_kafka_topic_partition_list_destroy(svc->waiting);
        if (svc->idle_at)
                rd_kafka_topic_partition_list_destroy(svc->idle_at);
        close_reader(svc);
        if (svc->reader_conf)
                rd_kafka_conf_destroy(svc->reader_conf);
        avk_round_destroy(svc->round);
        if (svc->consumer)
                rd_kafka_destroy(svc->consumer);
        avk_outbox_release(svc->outbox);
        if (svc->producer)
                rd_kafka_destroy(svc->producer);
        avk_outbox_destroy(svc->outbox);
        for (int i = 0; i < 2; i++) {
                if (svc->wake[i] >= 0)
                        close(svc->wake[i]);
        }
        free(svc->inputs);
        free(svc->ended_at);
        free(svc->at_end);
        free(svc->paused);
        free(svc->pool_unfinished);
        free(svc);
}
