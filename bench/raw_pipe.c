/*
 * raw_pipe: the yardstick for the router's throughput - a bare librdkafka
 * consume->produce loop with nothing of avvik in it: a consumer group reads
 * FROM from the beginning, every record's key and value are produced to TO
 * (idempotent, as the router's outputs), and offsets are stored once a
 * record's copy is acknowledged and committed as the router's are. It exits
 * when COUNT copies are acknowledged and prints the rate.
 *
 * usage: raw_pipe BOOTSTRAP_SERVERS FROM TO COUNT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static long acked;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        rd_kafka_t *consumer = opaque;
        (void)rk;
        if (m->err) {
                fprintf(stderr, "raw_pipe: %s\n", rd_kafka_err2str(m->err));
                exit(1);
        }
        /* The input's partition and offset travel as the copy's opaque. */
        rd_kafka_topic_partition_t *in = m->_private;
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, in->topic, in->partition)->offset = in->offset + 1;
        rd_kafka_offsets_store(consumer, list);
        rd_kafka_topic_partition_list_destroy(list);
        free(in->topic);
        free(in);
        acked++;
}

static double now_s(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
        if (argc != 5) {
                fprintf(stderr, "usage: raw_pipe BOOTSTRAP_SERVERS FROM TO COUNT\n");
                return 2;
        }
        const char *servers = argv[1], *from = argv[2], *to = argv[3];
        long count = atol(argv[4]);
        char err[512], group[64];
        snprintf(group, sizeof(group), "raw-pipe-%ld", (long)time(NULL));
        rd_kafka_conf_t *cc = rd_kafka_conf_new();
        rd_kafka_conf_set(cc, "bootstrap.servers", servers, NULL, 0);
        rd_kafka_conf_set(cc, "group.id", group, NULL, 0);
        rd_kafka_conf_set(cc, "auto.offset.reset", "earliest", NULL, 0);
        rd_kafka_conf_set(cc, "enable.auto.offset.store", "false", NULL, 0);
        rd_kafka_conf_set(cc, "auto.commit.interval.ms", "1000", NULL, 0);
        rd_kafka_conf_set(cc, "fetch.wait.max.ms", "10", NULL, 0);
        rd_kafka_conf_set(cc, "partition.assignment.strategy", "range", NULL, 0);
        rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
        rd_kafka_conf_t *pc = rd_kafka_conf_new();
        rd_kafka_conf_set(pc, "bootstrap.servers", servers, NULL, 0);
        rd_kafka_conf_set(pc, "enable.idempotence", "true", NULL, 0);
        rd_kafka_conf_set(pc, "linger.ms", "2", NULL, 0);
        rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
        rd_kafka_conf_set_opaque(pc, consumer);
        rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
        if (!consumer || !producer) {
                fprintf(stderr, "raw_pipe: %s\n", err);
                return 1;
        }
        rd_kafka_poll_set_consumer(consumer);
        rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(subs, from, RD_KAFKA_PARTITION_UA);
        rd_kafka_subscribe(consumer, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        double start = 0;
        while (acked < count) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 20);
                if (m && !m->err) {
                        if (start == 0)
                                start = now_s(); /* from the first record: group join excluded */
                        rd_kafka_topic_partition_t *in = calloc(1, sizeof(*in));
                        in->topic = strdup(from);
                        in->partition = m->partition;
                        in->offset = m->offset;
                        while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(to),
                                                 RD_KAFKA_V_KEY(m->key, m->key_len),
                                                 RD_KAFKA_V_VALUE(m->payload, m->len),
                                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                                 RD_KAFKA_V_OPAQUE(in),
                                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                rd_kafka_poll(producer, 10);
                }
                if (m)
                        rd_kafka_message_destroy(m);
                rd_kafka_poll(producer, 0);
        }
        double s = now_s() - start;
        printf("raw_pipe: %ld records in %.3f s: %.0f records/s\n", count, s, (double)count / s);
        rd_kafka_flush(producer, 10000);
        rd_kafka_consumer_close(consumer);
        rd_kafka_destroy(producer);
        rd_kafka_destroy(consumer);
        return 0;
}
