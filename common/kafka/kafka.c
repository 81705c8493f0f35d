/* avk_kafka: see kafka.h. */
#include "common/kafka/kafka.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util/log.h"

const struct avk_topic avk_topics[] = {
    {"topic.reported", "DeviationReported", 0},
    {"topic.routed", "DeviationRouted", 0},
    {"topic.response", "DeviationResponse", 0},
    {"topic.escalated", "DeviationEscalated", 0},
    {"topic.analysis", "AnalysisRecord", 0},
    {"topic.delivery.failed", "DeliveryFailed", 0},
    {"topic.status", "DeviationStatus", 0},
    {"topic.reminder", "DeadlineReminder", 0},
    {"topic.feedback", "DeviationFeedback", 0},
    {"topic.deadletter", NULL, 1},
    {"topic.notify.retry", NULL, 0}, /* avvik notify's own: docs/notify.md, "Retry topic" */
    {"topic.intake.receipts", "IntakeReceipt", 0}, /* docs/intake.md, "Receipts" */
};
const size_t avk_topic_cnt = sizeof(avk_topics) / sizeof(avk_topics[0]);

const char *avk_kafka_topic_schema(const avk_config_t *cfg, const char *topic_name)
{
        for (size_t i = 0; i < avk_topic_cnt; i++) {
                if (strcmp(avk_config_get(cfg, avk_topics[i].config_key), topic_name) == 0)
                        return avk_topics[i].schema;
        }
        return NULL;
}

void avk_kafka_default_bootstrap_file(char *buf, size_t size)
{
        snprintf(buf, size, "/tmp/avvik-%u/bootstrap.servers", (unsigned)getuid());
}

static int read_bootstrap_file(const char *path, char *out, size_t size, char *errstr,
                               size_t errstr_size)
{
        FILE *f = fopen(path, "r");
        if (!f) {
                snprintf(errstr, errstr_size,
                         "no kafka.bootstrap.servers set and %s cannot be read (%s): start "
                         "the embedded broker with 'avvik broker' or set kafka.bootstrap.servers",
                         path, strerror(errno));
                return -1;
        }
        int ok = fgets(out, (int)size, f) != NULL;
        fclose(f);
        out[strcspn(out, "\r\n")] = '\0';
        if (!ok || !*out) {
                snprintf(errstr, errstr_size, "%s is empty", path);
                return -1;
        }
        return 0;
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                    size_t errstr_size)
{
        char reason[256];
        if (rd_kafka_conf_set(conf, name, value, reason, sizeof(reason)) == RD_KAFKA_CONF_OK)
                return 0;
        snprintf(errstr, errstr_size, "kafka.%s: %s", name, reason);
        return -1;
}

/* Every avvik producer's partitioner (avk_kafka_producer_new()). */
#define PARTITIONER "murmur2_random"
/* Every avvik consumer's isolation (avk_kafka_consumer_new()). */
#define ISOLATION "read_committed"

rd_kafka_conf_t *avk_kafka_conf(const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        int have_bootstrap = 0;
        for (size_t i = 0; i < avk_config_kafka_cnt(cfg); i++) {
                const char *name, *value;
                avk_config_kafka_get(cfg, i, &name, &value);
                have_bootstrap |= strcmp(name, "bootstrap.servers") == 0;
                if (strcmp(name, "partitioner") == 0 && strcmp(value, PARTITIONER) != 0) {
                        snprintf(errstr, errstr_size,
                                 "kafka.partitioner: is %s, but avvik's producers use "
                                 "%s (the Java client's), which co-partitioning with other "
                                 "clients needs",
                                 value, PARTITIONER);
                        goto fail;
                }
                if (strcmp(name, "isolation.level") == 0 && strcmp(value, ISOLATION) != 0) {
                        snprintf(errstr, errstr_size,
                                 "kafka.isolation.level: is %s, but avvik's consumers read %s: "
                                 "the intake's aborted transactions must stay unseen "
                                 "(docs/intake.md, \"Receipts\")",
                                 value, ISOLATION);
                        goto fail;
                }
                if (conf_set(conf, name, value, errstr, errstr_size) != 0)
                        goto fail;
        }
        if (!have_bootstrap) {
                char dflt[256], servers[1024];
                const char *path = avk_config_get(cfg, "bootstrap.file");
                if (!path) {
                        avk_kafka_default_bootstrap_file(dflt, sizeof(dflt));
                        path = dflt;
                }
                if (read_bootstrap_file(path, servers, sizeof(servers), errstr, errstr_size) != 0 ||
                    conf_set(conf, "bootstrap.servers", servers, errstr, errstr_size) != 0)
                        goto fail;
        }
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

rd_kafka_t *avk_kafka_producer_new(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
        /* Idempotence implies acks=all and bounded in-flight requests; setting
         * them here as well would conflict with what librdkafka derives.
         * murmur2_random is the Java client's partitioner (Kafka Streams,
         * Connect and kafkajs use it too): a deviation's records written by
         * another team's producer land in the partition avvik's do, which
         * co-partitioning needs (docs/operations.md, "Partitions"). */
        if (conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) != 0 ||
            conf_set(conf, "partitioner", PARTITIONER, errstr, errstr_size) != 0)
                return NULL;
        return rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
}

rd_kafka_t *avk_kafka_consumer_new(rd_kafka_conf_t *conf, const char *group, char *errstr,
                                   size_t errstr_size)
{
        /* read_committed is librdkafka's default too; said here because the
         * intake's exactly-once rests on it: a record of an aborted
         * transaction is never seen (docs/intake.md, "Receipts"). */
        if (conf_set(conf, "group.id", group, errstr, errstr_size) != 0 ||
            conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) != 0 ||
            conf_set(conf, "isolation.level", ISOLATION, errstr, errstr_size) != 0)
                return NULL;
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (rk)
                rd_kafka_poll_set_consumer(rk);
        return rk;
}

void avk_kafka_instance_id(const avk_config_t *cfg, const char *component, char *buf, size_t size)
{
        const char *name = avk_config_get(cfg, "instance.name");
        if (name) {
                snprintf(buf, size, "%s", name);
                return;
        }
        char host[256];
        if (gethostname(host, sizeof(host)) != 0)
                snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        snprintf(buf, size, "%s-%s", host, component);
}

int avk_kafka_assign_all(rd_kafka_t *rk, const char *topic, int64_t offset, int timeout_ms,
                         int *partitions, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
        rd_kafka_topic_destroy(rkt);
        if (e || md->topic_cnt != 1 || md->topics[0].err) {
                snprintf(errstr, errstr_size, "topic %s: %s", topic,
                         rd_kafka_err2str(e ? e : md->topics[0].err));
                if (md)
                        rd_kafka_metadata_destroy(md);
                return -1;
        }
        *partitions = md->topics[0].partition_cnt;
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(*partitions);
        for (int i = 0; i < *partitions; i++)
                rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)
                    ->offset = offset;
        rd_kafka_metadata_destroy(md);
        e = rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (e) {
                snprintf(errstr, errstr_size, "assign %s: %s", topic, rd_kafka_err2str(e));
                return -1;
        }
        return 0;
}

/* /readyz waits this long for Kafka's answer */
#define READY_PROBE_MS 500

int avk_kafka_ready(rd_kafka_t *rk, int partitions, const char *topic, char *why, size_t why_size)
{
        const struct rd_kafka_metadata *md;
        if (rd_kafka_metadata(rk, 0, NULL, &md, READY_PROBE_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                snprintf(why, why_size, "Kafka does not answer");
                return 0;
        }
        rd_kafka_metadata_destroy(md);
        if (partitions <= 0) {
                snprintf(why, why_size, "no partition of %s assigned", topic);
                return 0;
        }
        return 1;
}

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long one wait of the close loops may last: the deadline is checked
 * between waits. */
#define CLOSE_POLL_MS 100
/* The close queue is served at least this long, even when the revoke used up
 * the timeout (a service's revoke waits for its outputs in flight): destroying
 * a consumer whose close is under way waits for its group to terminate, which
 * can need an operation on that queue (librdkafka 2.0.2's main thread runs
 * until the group is terminated), so a close given up at once could leave
 * rd_kafka_destroy() waiting without a bound. */
#define CLOSE_GRACE_MS 2000

/* The count of a partition list that a librdkafka getter returned with err;
 * destroys the list. */
static int list_cnt(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *l)
{
        int cnt = !err && l ? l->cnt : 0;
        if (l)
                rd_kafka_topic_partition_list_destroy(l);
        return cnt;
}

static int assigned_cnt(rd_kafka_t *rk)
{
        rd_kafka_topic_partition_list_t *l = NULL;
        rd_kafka_resp_err_t err = rd_kafka_assignment(rk, &l);
        return list_cnt(err, l);
}

static int subscribed(rd_kafka_t *rk)
{
        rd_kafka_topic_partition_list_t *l = NULL;
        rd_kafka_resp_err_t err = rd_kafka_subscription(rk, &l);
        return list_cnt(err, l) > 0;
}

int avk_kafka_consumer_close(rd_kafka_t *rk, int timeout_ms, const char *component)
{
        int64_t start = mono_ms(), deadline = start + timeout_ms;
        /* Leaving the group while it is not terminating: the revoke callback
         * runs from rd_kafka_consumer_poll() like any other, and its
         * rd_kafka_assign(NULL) is an ordinary unassign. A consumer that
         * assigned its partitions itself (no subscription) keeps them until
         * the close below. */
        if (subscribed(rk)) {
                rd_kafka_resp_err_t e = rd_kafka_unsubscribe(rk);
                if (e)
                        avk_log(AVK_LOG_WARN, component, "unsubscribe: %s", rd_kafka_err2str(e));
                while (assigned_cnt(rk) > 0 && mono_ms() < deadline) {
                        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, CLOSE_POLL_MS);
                        if (m)
                                rd_kafka_message_destroy(m);
                }
        }
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_error_t *err = rd_kafka_consumer_close_queue(rk, q);
        if (err) {
                avk_log(AVK_LOG_WARN, component, "consumer close: %s", rd_kafka_error_string(err));
                rd_kafka_error_destroy(err);
        } else {
                /* The group's queue now forwards to q, so records fetched for a
                 * partition still assigned (a consumer that assigned its
                 * partitions itself keeps them until here) arrive on q too.
                 * rd_kafka_queue_poll_callback() serves callbacks only and
                 * aborts on a record (rdkafka_queue.c, "res !=
                 * RD_KAFKA_OP_RES_PASS"); rd_kafka_consume_queue() serves the
                 * callbacks the same way and returns records, dropped here. */
                if (deadline < mono_ms() + CLOSE_GRACE_MS)
                        deadline = mono_ms() + CLOSE_GRACE_MS;
                while (!rd_kafka_consumer_closed(rk) && mono_ms() < deadline) {
                        rd_kafka_message_t *m = rd_kafka_consume_queue(q, CLOSE_POLL_MS);
                        if (m)
                                rd_kafka_message_destroy(m);
                }
        }
        int closed = rd_kafka_consumer_closed(rk);
        rd_kafka_queue_destroy(q);
        if (closed)
                return 0;
        avk_log(AVK_LOG_WARN, component,
                "consumer close gave up after %lld ms (Kafka or the group does not answer): "
                "offsets not committed are read again by the partitions' next owner",
                (long long)(mono_ms() - start));
        return -1;
}
