/*
 * avvik report: files one deviation (or response) from a JSON document.
 *
 * The document is validated against the topic's schema with every field
 * error reported at once; a valid one is encoded, produced with the
 * deviation id as key, and its id printed only after Kafka acknowledged it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/env.h"
#include "common/json.h"
#include "common/kafka.h"
#include "common/log.h"

#define MAX_DOCUMENT_BYTES (1 << 20)

static const char usage_text[] =
    "usage: avvik report [-c FILE] [-X KEY=VALUE] [-t TOPIC] [FILE|-]\n"
    "Files the JSON document in FILE (or stdin) to TOPIC (default topic.reported)\n"
    "and prints its deviation id once Kafka has acknowledged it.\n"
    "Exit: 0 accepted, 1 rejected (field errors on stderr), 2 usage or\n"
    "configuration error, 3 Kafka unreachable or did not acknowledge.\n"
    "  -t TOPIC       topic to file to; its schema follows from the topic\n" AVK_CLI_CONFIG_HELP;

struct delivery {
        rd_kafka_resp_err_t err;
        int done;
        int32_t partition;
        int64_t offset;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)opaque;
        struct delivery *d = m->_private;
        d->err = m->err;
        d->partition = m->partition;
        d->offset = m->offset;
        d->done = 1;
}

/* Reads at most MAX_DOCUMENT_BYTES; a larger input is an error, not a cut. */
static char *read_all(FILE *f, size_t *len, char *errstr, size_t errstr_size)
{
        char *buf = malloc(MAX_DOCUMENT_BYTES + 1);
        if (!buf) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        *len = fread(buf, 1, MAX_DOCUMENT_BYTES + 1, f);
        if (ferror(f)) {
                snprintf(errstr, errstr_size, "read error: %s", strerror(errno));
        } else if (*len > MAX_DOCUMENT_BYTES) {
                snprintf(errstr, errstr_size, "document is larger than %d bytes",
                         MAX_DOCUMENT_BYTES);
        } else {
                return buf;
        }
        free(buf);
        return NULL;
}

static int produce(const avk_config_t *cfg, const char *topic, const char *key, const void *payload,
                   size_t len)
{
        char err[512];
        rd_kafka_conf_t *conf = avk_kafka_conf(cfg, err, sizeof(err));
        if (!conf) {
                fprintf(stderr, "avvik report: %s\n", err);
                return AVK_EXIT_USAGE;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_t *rk = avk_kafka_producer_new(conf, err, sizeof(err));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                fprintf(stderr, "avvik report: %s\n", err);
                return AVK_EXIT_USAGE;
        }
        struct delivery d = {0};
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
        int rc = AVK_EXIT_KAFKA;
        if (e) {
                fprintf(stderr, "avvik report: %s: %s\n", topic, rd_kafka_err2str(e));
                goto out;
        }
        /* flush() serves the delivery report; message.timeout.ms bounds it. */
        while (!d.done)
                rd_kafka_flush(rk, 1000);
        if (d.err) {
                fprintf(stderr, "avvik report: %s: not acknowledged: %s\n", topic,
                        rd_kafka_err2str(d.err));
                goto out;
        }
        avk_log(AVK_LOG_DEBUG, "report", "%s acknowledged at %s [%d] offset %lld", key, topic,
                d.partition, (long long)d.offset);
        rc = AVK_EXIT_OK;
out:
        rd_kafka_destroy(rk);
        return rc;
}

int avk_cmd_report(int argc, char **argv)
{
        avk_config_t *cfg = avk_config_new();
        struct avk_env env = {0};
        avk_codec_t *codec = NULL;
        json_t *doc = NULL;
        char *text = NULL;
        avro_value_t value = {0};
        const char *topic = NULL;
        int rc = AVK_EXIT_USAGE, opt;
        char err[1024];
        static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
        while ((opt = getopt_long(argc, argv, "c:X:t:h", longopts, NULL)) != -1) {
                int handled = avk_cli_config_opt(cfg, opt, optarg);
                if (handled < 0)
                        goto out;
                if (handled)
                        continue;
                if (opt == 't') {
                        topic = optarg;
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
                fprintf(stderr, "avvik report: %s\n", err);
                goto out;
        }

        const char *path = optind < argc ? argv[optind] : "-";
        FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
        if (!in) {
                fprintf(stderr, "avvik report: %s: %s\n", path, strerror(errno));
                goto out;
        }
        size_t len;
        text = read_all(in, &len, err, sizeof(err));
        if (in != stdin)
                fclose(in);
        rc = AVK_EXIT_REJECTED;
        if (!text) {
                fprintf(stderr, "avvik report: %s: %s\n", path, err);
                goto out;
        }
        json_error_t jerr;
        doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc) {
                fprintf(stderr, "avvik report: %s:%d:%d: not valid JSON: %s\n", path, jerr.line,
                        jerr.column, jerr.text);
                goto out;
        }
        struct avk_json_opts opts = {.flags = AVK_JSON_VALIDATE,
                                     .skew_ms = avk_config_get_int(cfg, "intake.clock.skew.ms")};
        struct avk_errors errs;
        avk_errors_init(&errs);
        avro_generic_value_new(avk_schema_iface(schema), &value);
        if (avk_json_to_avro(schema, doc, &value, &opts, &errs) != 0) {
                for (size_t i = 0; i < errs.cnt; i++)
                        fprintf(stderr, "avvik report: %s: %s\n", path, errs.msg[i]);
                if (errs.dropped)
                        fprintf(stderr, "avvik report: %s: and %zu more errors\n", path,
                                errs.dropped);
                goto out;
        }
        rc = AVK_EXIT_USAGE;
        codec = avk_codec_new(env.catalog, env.registry);
        const void *payload;
        size_t payload_len;
        if (!codec || avk_codec_encode(codec, topic, schema, &value, &payload, &payload_len, err,
                                       sizeof(err)) != 0) {
                fprintf(stderr, "avvik report: %s\n", codec ? err : "out of memory");
                goto out;
        }
        avro_value_t id_field;
        const char *id;
        size_t id_size;
        avro_value_get_by_name(&value, "deviation_id", &id_field, NULL);
        avro_value_get_string(&id_field, &id, &id_size);
        rc = produce(cfg, topic, id, payload, payload_len);
        if (rc == AVK_EXIT_OK)
                printf("%s\n", id);
out:
        if (value.self)
                avro_value_decref(&value);
        json_decref(doc);
        free(text);
        avk_codec_destroy(codec);
        avk_env_close(&env);
        avk_config_destroy(cfg);
        return rc;
}
