/*
 * avk_test_produce: a test-only producer of any avvik event - JSON documents
 * (one a line) from stdin, validated and encoded with the schema of TOPIC,
 * keyed by their deviation_id - for end-to-end tests that need events no
 * avvik command files yet (DeviationRouted before the router exists).
 * -s FILE writes with the schema in FILE instead (an earlier version of the
 * topic's schema, schemas/history/), framed with its fingerprint, as the build
 * that released it did.
 *
 * usage: avk_test_produce [-X KEY=VALUE]... [-s SCHEMA_FILE] TOPIC < documents.ndjson
 * Exit 0 once Kafka acknowledged every document; 1 with the reason otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/codec.h"
#include "common/util/env.h"
#include "common/contract/json.h"
#include "common/kafka/kafka.h"

static int failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)opaque;
        if (m->err) {
                fprintf(stderr, "avk_test_produce: %s\n", rd_kafka_err2str(m->err));
                failed = 1;
        }
}

/* Encodes one document and produces it; -1 with the reason printed. */
static int produce(rd_kafka_t *rk, avk_codec_t *codec, const avk_schema_t *schema,
                   avro_value_t *value, const char *topic, const char *line)
{
        json_error_t jerr;
        json_t *doc = json_loads(line, 0, &jerr);
        struct avk_errors errs;
        struct avk_json_opts opts = {.flags = AVK_JSON_VALIDATE, .skew_ms = 300000};
        char err[8192];
        int rc = -1;
        avk_errors_init(&errs);
        if (!doc) {
                fprintf(stderr, "avk_test_produce: %s\n", jerr.text);
                return -1;
        }
        const void *payload;
        size_t len;
        const char *key = json_string_value(json_object_get(doc, "deviation_id"));
        if (avk_json_to_avro(schema, doc, value, &opts, &errs) != 0) {
                fprintf(stderr, "avk_test_produce: %s\n", avk_errors_join(&errs, err, sizeof(err)));
        } else if (avk_codec_encode(codec, topic, schema, value, &payload, &len, err,
                                    sizeof(err)) != 0) {
                fprintf(stderr, "avk_test_produce: %s\n", err);
        } else if (rd_kafka_producev(
                       rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                       RD_KAFKA_V_VALUE((void *)payload, len),
                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) != 0) {
                fprintf(stderr, "avk_test_produce: produce failed\n");
        } else {
                rc = 0;
        }
        json_decref(doc);
        return rc;
}

/* The schema in path, or NULL with the reason in errstr. */
static avk_schema_t *schema_from_file(const char *path, char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *j = json_load_file(path, JSON_DECODE_ANY, &jerr);
        char *text = j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
        avk_schema_t *s = text ? avk_schema_new(text, errstr, errstr_size) : NULL;
        if (!j)
                snprintf(errstr, errstr_size, "%s: %s", path, jerr.text);
        free(text);
        json_decref(j);
        return s;
}

int main(int argc, char **argv)
{
        avk_config_t *cfg = avk_config_new();
        struct avk_env env = {0};
        avk_schema_t *earlier = NULL;
        const char *schema_file = NULL;
        avk_codec_t *codec = NULL;
        rd_kafka_t *rk = NULL;
        avro_value_t value = {0};
        char err[1024], *line = NULL;
        size_t cap = 0;
        int i = 1, rc = 1;
        for (; i + 1 < argc && strcmp(argv[i], "-X") == 0; i += 2) {
                if (avk_config_set_pair(cfg, argv[i + 1], err, sizeof(err)) != 0) {
                        fprintf(stderr, "avk_test_produce: %s\n", err);
                        goto out;
                }
        }
        if (i + 2 < argc && strcmp(argv[i], "-s") == 0) {
                schema_file = argv[i + 1];
                i += 2;
        }
        if (i + 1 != argc) {
                fprintf(stderr, "usage: avk_test_produce [-X KEY=VALUE]... [-s SCHEMA_FILE] "
                                "TOPIC < ndjson\n");
                goto out;
        }
        const char *topic = argv[i];
        const avk_schema_t *schema;
        rd_kafka_conf_t *conf;
        if (avk_env_open(&env, cfg, err, sizeof(err)) != 0 ||
            !(schema = avk_env_topic_schema(&env, topic, err, sizeof(err))) ||
            !(conf = avk_kafka_conf(cfg, err, sizeof(err)))) {
                fprintf(stderr, "avk_test_produce: %s\n", err);
                goto out;
        }
        if (schema_file) {
                if (!(earlier = schema_from_file(schema_file, err, sizeof(err)))) {
                        rd_kafka_conf_destroy(conf);
                        fprintf(stderr, "avk_test_produce: %s\n", err);
                        goto out;
                }
                schema = earlier;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        if (!(rk = avk_kafka_producer_new(conf, err, sizeof(err)))) {
                rd_kafka_conf_destroy(conf);
                fprintf(stderr, "avk_test_produce: %s\n", err);
                goto out;
        }
        codec = avk_codec_new(env.catalog, env.registry);
        avro_generic_value_new(avk_schema_iface(schema), &value);
        while (getline(&line, &cap, stdin) != -1) {
                if (line[strspn(line, " \t\r\n")] &&
                    produce(rk, codec, schema, &value, topic, line) != 0)
                        goto out;
        }
        if (rd_kafka_flush(rk, 30000) != 0) {
                fprintf(stderr, "avk_test_produce: not acknowledged within 30 s\n");
                goto out;
        }
        rc = failed;
out:
        free(line);
        if (value.self)
                avro_value_decref(&value);
        if (rk)
                rd_kafka_destroy(rk);
        avk_codec_destroy(codec);
        avk_schema_destroy(earlier);
        avk_env_close(&env);
        avk_config_destroy(cfg);
        return rc;
}
