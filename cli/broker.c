/*
 * avvik broker: the embedded Kafka broker. librdkafka's mock cluster speaks
 * the real protocol on loopback, so every client (ours, kcat) works against
 * it unchanged. It keeps data in memory only and drops the oldest data past
 * about 5 MB per partition: for demos and tests, never a store of record.
 *
 * With directory.file set it also creates every inbox topic of the party
 * directory, which the router writes to.
 *
 * The bootstrap servers go to a file (written atomically) that the other
 * commands read when kafka.bootstrap.servers is unset; the file is removed
 * on SIGINT/SIGTERM, before the cluster stops.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cli/cli.h"
#include "common/contract/directory.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"

static const char usage_text[] =
    "usage: avvik broker [-c FILE] [-X KEY=VALUE] [-n BROKERS] [-f BOOTSTRAP_FILE]\n"
    "Runs librdkafka's mock Kafka cluster until SIGINT or SIGTERM, with every avvik\n"
    "topic created (with directory.file set, every inbox topic of the directory too),\n"
    "and writes its bootstrap servers to BOOTSTRAP_FILE.\n"
    "Memory only; the oldest data is dropped past about 5 MB per partition.\n"
    "  -n BROKERS     number of brokers (default 3)\n"
    "  -f FILE        bootstrap file (default: bootstrap.file, or "
    "/tmp/avvik-<uid>/...)\n" AVK_CLI_CONFIG_HELP;

/* An inbox topic of the directory, once: units may share their party's. */
static int create_inbox(rd_kafka_mock_cluster_t *mc, const char *topic, const char **made,
                        size_t *made_cnt, int partitions, int replicas)
{
        if (!topic)
                return 0;
        for (size_t i = 0; i < *made_cnt; i++) {
                if (strcmp(made[i], topic) == 0)
                        return 0;
        }
        made[(*made_cnt)++] = topic;
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topic, partitions, replicas);
        if (e)
                fprintf(stderr, "avvik broker: topic %s: %s\n", topic, rd_kafka_err2str(e));
        return e ? -1 : 0;
}

/* With directory.file set, creates every party's and unit's inbox topic and the triage desk's
 * (the notifier and the tracker write to them), with the lifecycle topics' partition count. */
static int create_inboxes(const avk_config_t *cfg, rd_kafka_mock_cluster_t *mc, int partitions,
                          int replicas)
{
        const char *path = avk_config_get(cfg, "directory.file");
        if (!path)
                return 0;
        struct avk_errors errs;
        avk_errors_init(&errs);
        avk_directory_t *dir = avk_directory_load(path, AVK_DIRECTORY_ALLOW_PARTIAL, &errs);
        if (!dir) {
                char joined[4096];
                fprintf(stderr, "avvik broker: %s\n",
                        avk_errors_join(&errs, joined, sizeof(joined)));
                return -1;
        }
        size_t cnt = avk_directory_party_cnt(dir) + avk_directory_unit_cnt(dir) + 1, made_cnt = 0;
        const char **made = calloc(cnt, sizeof(*made));
        int rc = made ? 0 : -1;
        if (!rc)
                rc =
                    create_inbox(mc, avk_directory_triage_desk(dir)->receiver.delivery->inbox_topic,
                                 made, &made_cnt, partitions, replicas);
        for (size_t i = 0; !rc && i < avk_directory_party_cnt(dir); i++) {
                const struct avk_directory_party *p = avk_directory_party_at(dir, i);
                rc = create_inbox(mc, p->receiver.delivery->inbox_topic, made, &made_cnt,
                                  partitions, replicas);
                for (size_t u = 0; !rc && u < p->unit_cnt; u++)
                        rc = create_inbox(mc, p->units[u].receiver.delivery->inbox_topic, made,
                                          &made_cnt, partitions, replicas);
        }
        if (!rc)
                avk_log(AVK_LOG_INFO, "broker", "%zu inbox topics of %s", made_cnt, path);
        free(made);
        avk_directory_destroy(dir);
        return rc;
}

int avk_cmd_broker(int argc, char **argv)
{
        avk_config_t *cfg = avk_cli_config_new();
        int brokers = 3, rc = AVK_EXIT_USAGE, opt;
        const char *file = NULL;
        static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
        while ((opt = getopt_long(argc, argv, "c:X:n:f:h", longopts, NULL)) != -1) {
                int handled = avk_cli_config_opt(cfg, opt, optarg);
                if (handled < 0)
                        goto out;
                if (handled)
                        continue;
                if (opt == 'n') {
                        brokers = atoi(optarg);
                        if (brokers < 1 || brokers > 9) {
                                fprintf(stderr, "avvik broker: -n: 1 to 9 brokers\n");
                                goto out;
                        }
                } else if (opt == 'f') {
                        file = optarg;
                } else if (opt == 'h') {
                        fputs(usage_text, stdout);
                        rc = AVK_EXIT_OK;
                        goto out;
                } else {
                        fputs(usage_text, stderr);
                        goto out;
                }
        }
        char dflt[256];
        if (!file)
                file = avk_config_get(cfg, "bootstrap.file");
        if (!file) {
                avk_kafka_default_bootstrap_file(dflt, sizeof(dflt));
                file = dflt;
        }

        /* Block the signals before librdkafka starts threads, so that they
         * inherit the mask and sigwait() below is the one place they land. */
        sigset_t sigs;
        avk_cli_block_stop_signals(&sigs);

        char err[512];
        /* This handle only owns the cluster: it has no brokers of its own to
         * reach, which librdkafka would otherwise warn about at notice level. */
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "4", NULL, 0);
        /* The mock brokers' sockets take this handle's settings: without
         * TCP_NODELAY a response written while the one before is unacknowledged
         * waits for the client's delayed ACK (40 ms on Linux), which held
         * every pipelined produce, and so every transaction's commit, for it.
         * A Kafka broker sets TCP_NODELAY on its sockets too. */
        rd_kafka_conf_set(conf, "socket.nagle.disable", "true", NULL, 0);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                fprintf(stderr, "avvik broker: %s\n", err);
                goto out;
        }
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
        if (!mc) {
                fprintf(stderr, "avvik broker: the mock cluster could not start\n");
                rd_kafka_destroy(rk);
                rc = AVK_EXIT_KAFKA;
                goto out;
        }
        int partitions = (int)avk_config_get_int(cfg, "topic.partitions");
        for (size_t i = 0; i < avk_topic_cnt; i++) {
                const char *name = avk_config_get(cfg, avk_topics[i].config_key);
                rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(
                    mc, name, avk_topics[i].one_partition ? 1 : partitions,
                    brokers < 3 ? brokers : 3);
                if (e) {
                        fprintf(stderr, "avvik broker: topic %s: %s\n", name, rd_kafka_err2str(e));
                        rc = AVK_EXIT_KAFKA;
                        goto stop;
                }
        }
        if (create_inboxes(cfg, mc, partitions, brokers < 3 ? brokers : 3) != 0) {
                rc = AVK_EXIT_USAGE;
                goto stop;
        }
        const char *servers = rd_kafka_mock_cluster_bootstraps(mc);
        if (avk_cli_write_atomically(file, servers) != 0) {
                fprintf(stderr, "avvik broker: cannot write %s: %s\n", file, strerror(errno));
                rc = AVK_EXIT_USAGE;
                goto stop;
        }
        avk_log(AVK_LOG_INFO, "broker", "%d brokers at %s (bootstrap file %s); Ctrl-C stops",
                brokers, servers, file);
        int sig;
        sigwait(&sigs, &sig);
        avk_log(AVK_LOG_INFO, "broker", "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        unlink(file);
        rc = AVK_EXIT_OK;
stop:
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
out:
        avk_config_destroy(cfg);
        return rc;
}
