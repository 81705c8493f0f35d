/*
 * raw_pipe: the yardstick for the router's throughput - a bare librdkafka
 * consume->produce loop with nothing of avvik in it: a consumer group reads
 * FROM from the beginning, every record's key and value are produced once
 * to each topic of TO (a comma-separated list: "a,b,b" writes three copies,
 * as the router writes three outputs) with the router's producer settings
 * (idempotent, so acks=all; linger.ms=2) and consumer settings
 * (fetch.wait.max.ms=10, queued.min.messages=1000000), and offsets are stored once a
 * record's copies are acknowledged and committed as the router's are. It exits when COUNT
 * records are done and prints the rate over the same window bench_router
 * measures: from the first record consumed to the last copy acknowledged
 * (the group join and the producer's start are outside it).
 *
 * With "headers", every copy carries the four headers the router writes on
 * a routed record (avk-id, avk-type, avk-hop, avk-cause; docs/router.md) and
 * goes to its input's partition, as the router's do: what those headers cost
 * librdkafka, apart from avvik's own work (bench/RESULTS.md). With SIZE too,
 * every copy's value is SIZE bytes (the input's, repeated): a pipe that
 * writes what the router writes - a routed record is half again the size of
 * the report it routes, most of it the reason - with none of its work.
 *
 * It also prints the broker's CPU and the idle cores over the window
 * (window.h).
 *
 * usage: raw_pipe BOOTSTRAP_SERVERS FROM TO[,TO...] COUNT [headers [SIZE]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "window.h"

/* An input in flight: its partition and offset and its copies not yet acknowledged. */
struct input {
        int32_t partition;
        int64_t offset;
        int outstanding;
};

#define MAX_TO 8

static const char *from;
static long done;
static size_t out_size; /* SIZE: each copy's value is that many bytes, in out_buf */
static char *out_buf;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        rd_kafka_t *consumer = opaque;
        (void)rk;
        if (m->err) {
                fprintf(stderr, "raw_pipe: %s\n", rd_kafka_err2str(m->err));
                exit(1);
        }
        struct input *in = m->_private;
        if (--in->outstanding > 0)
                return;
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, from, in->partition)->offset = in->offset + 1;
        rd_kafka_offsets_store(consumer, list);
        rd_kafka_topic_partition_list_destroy(list);
        free(in);
        done++;
}

static double now_s(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
        char err[256];
        if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "raw_pipe: %s: %s\n", name, err);
                exit(2);
        }
}

/* One copy of m to topic; with headers, as the router writes a routed record. */
static rd_kafka_resp_err_t produce(rd_kafka_t *producer, const char *topic,
                                   const rd_kafka_message_t *m, struct input *in, int headers)
{
        if (!headers)
                return rd_kafka_producev(
                    producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m->key, m->key_len),
                    RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_OPAQUE(in), RD_KAFKA_V_END);
        /* A routed record's event id and hop 0's cause: the deviation id, its key. */
        static const char event_id[] = "8d1c7a52-3f0e-5b6a-9e4d-6a2b0c9f1e37";
        void *value = m->payload;
        size_t len = m->len;
        if (out_size && m->len) {
                for (size_t at = 0; at < out_size; at += m->len)
                        memcpy(out_buf + at, m->payload,
                               out_size - at < m->len ? out_size - at : m->len);
                value = out_buf;
                len = out_size;
        }
        return rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(m->partition),
            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(value, len),
            RD_KAFKA_V_HEADER("avk-id", event_id, (ssize_t)sizeof(event_id) - 1),
            RD_KAFKA_V_HEADER("avk-type", "DeviationRouted", -1),
            RD_KAFKA_V_HEADER("avk-hop", "0", -1),
            RD_KAFKA_V_HEADER("avk-cause", m->key, (ssize_t)m->key_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(in), RD_KAFKA_V_END);
}

int main(int argc, char **argv)
{
        int headers = (argc == 6 || argc == 7) && strcmp(argv[5], "headers") == 0;
        long size = argc == 7 ? atol(argv[6]) : 0;
        if ((argc != 5 && !headers) || size < 0 || size > 1 << 20) {
                fprintf(stderr, "usage: raw_pipe BOOTSTRAP_SERVERS FROM TO[,TO...] COUNT "
                                "[headers [SIZE]] (SIZE at most 1 MiB)\n");
                return 2;
        }
        out_size = (size_t)size;
        if (out_size && !(out_buf = malloc(out_size))) {
                fprintf(stderr, "raw_pipe: out of memory\n");
                return 1;
        }
        const char *servers = argv[1], *to[MAX_TO];
        from = argv[2];
        long count = atol(argv[4]);
        int copies = 0;
        for (char *t = strtok(argv[3], ","); t && copies < MAX_TO; t = strtok(NULL, ","))
                to[copies++] = t;
        if (count <= 0 || copies == 0) {
                fprintf(stderr, "raw_pipe: COUNT must be positive and TO name a topic\n");
                return 2;
        }
        char err[512], group[64];
        snprintf(group, sizeof(group), "raw-pipe-%ld", (long)time(NULL));
        rd_kafka_conf_t *cc = rd_kafka_conf_new();
        set(cc, "bootstrap.servers", servers);
        set(cc, "group.id", group);
        set(cc, "auto.offset.reset", "earliest");
        set(cc, "enable.auto.offset.store", "false");
        set(cc, "auto.commit.interval.ms", "1000");
        set(cc, "fetch.wait.max.ms", "10");
        set(cc, "queued.min.messages", "1000000");
        set(cc, "partition.assignment.strategy", "range");
        set(cc, "log_level", "3");
        rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
        rd_kafka_conf_t *pc = rd_kafka_conf_new();
        set(pc, "bootstrap.servers", servers);
        set(pc, "enable.idempotence", "true");
        set(pc, "linger.ms", "2");
        set(pc, "log_level", "3");
        rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
        rd_kafka_conf_set_opaque(pc, consumer);
        rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
        if (!consumer || !producer) {
                fprintf(stderr, "raw_pipe: %s\n", err);
                return 1;
        }
        /* The router asks for every topic's metadata through its producer at
         * start, so that its first outputs do not wait for librdkafka's
         * periodic scan of unknown topics (up to 1 s); so does the yardstick. */
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t e = rd_kafka_metadata(producer, 1, NULL, &md, 10000);
        if (e) {
                fprintf(stderr, "raw_pipe: metadata: %s\n", rd_kafka_err2str(e));
                return 1;
        }
        rd_kafka_metadata_destroy(md);
        rd_kafka_poll_set_consumer(consumer);
        rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(subs, from, RD_KAFKA_PARTITION_UA);
        rd_kafka_subscribe(consumer, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        double start = 0, first_done = 0;
        struct timespec cpu0 = {0}, cpu1;
        struct rusage use0 = {0}, use1;
        struct bench_window window = {0};
        while (done < count) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 20);
                if (m && !m->err) {
                        if (start == 0) {
                                start = now_s();
                                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
                                getrusage(RUSAGE_SELF, &use0);
                                bench_window_open(&window);
                        }
                        struct input *in = malloc(sizeof(*in));
                        *in = (struct input){m->partition, m->offset, copies};
                        for (int c = 0; c < copies; c++) {
                                while (produce(producer, to[c], m, in, headers) ==
                                       RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                        rd_kafka_poll(producer, 10);
                        }
                }
                if (m)
                        rd_kafka_message_destroy(m);
                rd_kafka_poll(producer, 0);
                if (!first_done && done > 0)
                        first_done = now_s();
        }
        double end = now_s(), s = end - start;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
        getrusage(RUSAGE_SELF, &use1);
        double cpu =
            (double)(cpu1.tv_sec - cpu0.tv_sec) + (double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
        char what[96] = "";
        if (out_size)
                snprintf(what, sizeof(what), " of %zu bytes with the router's four headers",
                         out_size);
        else if (headers)
                snprintf(what, sizeof(what), " with the router's four headers");
        printf("raw_pipe: %ld records in %.3f s: %.0f records/s (%d cop%s each%s; first done "
               "after %.0f ms)\n",
               count, s, (double)count / s, copies, copies == 1 ? "y" : "ies", what,
               (first_done - start) * 1000);
        printf("raw_pipe: CPU per record %.1f us in the process; %.2f page faults per record\n",
               cpu * 1e6 / (double)count,
               (double)(use1.ru_minflt - use0.ru_minflt) / (double)count);
        bench_window_print(&window, "raw_pipe", count);
        rd_kafka_flush(producer, 10000);
        rd_kafka_consumer_close(consumer);
        rd_kafka_destroy(producer);
        rd_kafka_destroy(consumer);
        free(out_buf);
        return 0;
}
