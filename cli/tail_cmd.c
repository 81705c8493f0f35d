/*
 * avvik tail: prints a topic's records as JSON, one per line, in the shape
 * they were filed in. It assigns every partition itself (no group join, no
 * committed offsets), so it never disturbs the services' consumer groups.
 * A record that cannot be decoded is reported on stderr with its partition
 * and offset, and the tail goes on.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util/env.h"
#include "common/contract/json.h"
#include "common/kafka/kafka.h"

static const char usage_text[] =
    "usage: avvik tail [-c FILE] [-X KEY=VALUE] [-t TOPIC] [-n COUNT] [-e]\n"
    "Prints TOPIC's records (default topic.reported) from the beginning as JSON lines.\n"
    "  -t TOPIC       topic to read\n"
    "  -n COUNT       exit after COUNT records\n"
    "  -e             exit when every partition is read to its end\n" AVK_CLI_CONFIG_HELP;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

int avk_cmd_tail(int argc, char **argv)
{
        avk_config_t *cfg = avk_cli_config_new();
        struct avk_env env = {0};
        avk_codec_t *codec = NULL;
        rd_kafka_t *rk = NULL;
        avro_value_t value = {0};
        char *ended = NULL; /* partitions whose end was reached */
        const char *topic = NULL;
        long limit = -1;
        int to_end = 0, rc = AVK_EXIT_USAGE, opt;
        char err[1024];
        static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
        while ((opt = getopt_long(argc, argv, "c:X:t:n:eh", longopts, NULL)) != -1) {
                int handled = avk_cli_config_opt(cfg, opt, optarg);
                if (handled < 0)
                        goto out;
                if (handled)
                        continue;
                if (opt == 't') {
                        topic = optarg;
                } else if (opt == 'n') {
                        limit = atol(optarg);
                } else if (opt == 'e') {
                        to_end = 1;
                } else if (opt == 'h') {
                        fputs(usage_text, stdout);
                        rc = AVK_EXIT_OK;
                        goto out;
                } else {
                        fputs(usage_text, stderr);
                        goto out;
                }
        }
        if (!topic)
                topic = avk_config_get(cfg, "topic.reported");
        const avk_schema_t *schema;
        if (avk_env_open(&env, cfg, err, sizeof(err)) != 0 ||
            !(schema = avk_env_topic_schema(&env, topic, err, sizeof(err)))) {
                fprintf(stderr, "avvik tail: %s\n", err);
                goto out;
        }
        codec = avk_codec_new(env.catalog, env.registry);
        rd_kafka_conf_t *conf = avk_kafka_conf(cfg, err, sizeof(err));
        if (!codec || !conf) {
                fprintf(stderr, "avvik tail: %s\n", codec ? err : "out of memory");
                goto out;
        }
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rk = avk_kafka_consumer_new(conf, "avvik-tail", err, sizeof(err));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                fprintf(stderr, "avvik tail: %s\n", err);
                goto out;
        }
        int partitions = 0, at_end = 0;
        rc = AVK_EXIT_KAFKA;
        if (avk_kafka_assign_all(rk, topic, RD_KAFKA_OFFSET_BEGINNING, 10000, &partitions, err,
                                 sizeof(err)) != 0) {
                fprintf(stderr, "avvik tail: %s\n", err);
                goto out;
        }
        /* The end of a partition may be reported more than once (after a
         * leader change): count each partition once. */
        ended = calloc((size_t)partitions, 1);
        if (!ended)
                goto out;
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        avro_generic_value_new(avk_schema_iface(schema), &value);
        long printed = 0;
        int bad = 0;
        while (!stop && printed != limit && !(to_end && at_end == partitions)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (m->partition >= 0 && m->partition < partitions &&
                            !ended[m->partition]) {
                                ended[m->partition] = 1;
                                at_end++;
                        }
                } else if (m->err) {
                        fprintf(stderr, "avvik tail: %s\n", rd_kafka_message_errstr(m));
                } else if (avk_codec_decode(codec, m->payload, m->len, schema, &value, err,
                                            sizeof(err)) != 0) {
                        fprintf(stderr, "avvik tail: %s [%d] offset %lld: %s\n", topic,
                                m->partition, (long long)m->offset, err);
                        bad = 1;
                } else {
                        json_t *j = avk_json_from_avro(schema, &value, err, sizeof(err));
                        char *line = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
                        if (line)
                                printf("%s\n", line);
                        else
                                fprintf(stderr, "avvik tail: offset %lld: %s\n",
                                        (long long)m->offset, err);
                        fflush(stdout);
                        free(line);
                        json_decref(j);
                        printed++;
                }
                rd_kafka_message_destroy(m);
        }
        rc = bad ? AVK_EXIT_REJECTED : AVK_EXIT_OK;
out:
        free(ended);
        if (value.self)
                avro_value_decref(&value);
        if (rk) {
                avk_kafka_consumer_close(
                    rk, (int)avk_config_get_int(cfg, "consumer.close.timeout.ms"), "tail");
                rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        }
        avk_codec_destroy(codec);
        avk_env_close(&env);
        avk_config_destroy(cfg);
        return rc;
}
