/*
 * avk_reporter: see reporter.h.
 *
 * Validation and encoding happen in the calling thread with an encoding
 * context (codec and reusable values) taken from a small pool, so threads do
 * not serialise on the expensive part. Produce is asynchronous; one delivery
 * thread polls librdkafka and hands each outcome to the submitter's callback.
 */
#include "producer/reporter.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <uuid/uuid.h>

#include "common/codec.h"
#include "common/env.h"
#include "common/json.h"
#include "common/kafka.h"

#define KIND_CNT 2

static const char *const id_field[KIND_CNT] = {"deviation_id", "response_id"};
static const char *const topic_key[KIND_CNT] = {"topic.reported", "topic.response"};

struct encoder { /* one thread's encoding context */
        avk_codec_t *codec;
        avro_value_t value[KIND_CNT];
        struct encoder *next;
};

struct pending { /* one document between produce and its delivery report */
        avk_reporter_done_cb *done;
        void *opaque;
        char id[AVK_ID_SIZE];
};

struct avk_reporter {
        struct avk_env env;
        const avk_schema_t *schema[KIND_CNT];
        const char *topic[KIND_CNT];
        struct avk_json_opts opts;
        rd_kafka_t *rk;
        pthread_t poller;
        atomic_int stopping;
        pthread_mutex_t pool_lock;
        struct encoder *pool;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)opaque;
        struct pending *p = m->_private;
        p->done(p->opaque, p->id, m->err ? AVK_UNAVAILABLE : AVK_FILED,
                m->err ? rd_kafka_err2str(m->err) : NULL);
        free(p);
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

avk_reporter_t *avk_reporter_new(const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        avk_reporter_t *r = calloc(1, sizeof(*r));
        if (!r) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        pthread_mutex_init(&r->pool_lock, NULL);
        if (avk_env_open(&r->env, cfg, errstr, errstr_size) != 0)
                goto fail_env;
        for (int k = 0; k < KIND_CNT; k++) {
                r->topic[k] = avk_config_get(cfg, topic_key[k]);
                r->schema[k] = avk_env_topic_schema(&r->env, r->topic[k], errstr, errstr_size);
                if (!r->schema[k])
                        goto fail;
        }
        r->opts = (struct avk_json_opts){
            .flags = AVK_JSON_VALIDATE, .skew_ms = avk_config_get_int(cfg, "intake.clock.skew.ms")};
        rd_kafka_conf_t *conf = avk_kafka_conf(cfg, errstr, errstr_size);
        if (!conf)
                goto fail;
        /* The ack timeout is intake policy; an explicit kafka.* setting wins. */
        if (!user_set(cfg, "message.timeout.ms"))
                rd_kafka_conf_set(conf, "message.timeout.ms",
                                  avk_config_get(cfg, "intake.ack.timeout.ms"), NULL, 0);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        r->rk = avk_kafka_producer_new(conf, errstr, errstr_size);
        if (!r->rk) {
                rd_kafka_conf_destroy(conf);
                goto fail;
        }
        if (pthread_create(&r->poller, NULL, poll_loop, r) != 0) {
                snprintf(errstr, errstr_size, "cannot start the delivery thread");
                rd_kafka_destroy(r->rk);
                goto fail;
        }
        return r;
fail:
        avk_env_close(&r->env);
fail_env:
        pthread_mutex_destroy(&r->pool_lock);
        free(r);
        return NULL;
}

void avk_reporter_destroy(avk_reporter_t *r)
{
        if (!r)
                return;
        /* Outstanding deliveries resolve within message.timeout.ms: wait for
         * them all, so every submitter hears its outcome. */
        while (rd_kafka_outq_len(r->rk) > 0)
                rd_kafka_flush(r->rk, 1000);
        atomic_store(&r->stopping, 1);
        pthread_join(r->poller, NULL);
        rd_kafka_destroy(r->rk);
        while (r->pool) {
                struct encoder *e = r->pool;
                r->pool = e->next;
                for (int k = 0; k < KIND_CNT; k++)
                        avro_value_decref(&e->value[k]);
                avk_codec_destroy(e->codec);
                free(e);
        }
        avk_env_close(&r->env);
        pthread_mutex_destroy(&r->pool_lock);
        free(r);
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

enum avk_result avk_reporter_submit(avk_reporter_t *r, enum avk_kind kind, const json_t *doc,
                                    char id[AVK_ID_SIZE], struct avk_errors *errs,
                                    avk_reporter_done_cb *done, void *opaque)
{
        avk_errors_init(errs);
        json_t *with_id = NULL;
        if (json_is_object(doc) && !json_object_get(doc, id_field[kind])) {
                uuid_t u;
                char text[AVK_ID_SIZE];
                uuid_generate_random(u);
                uuid_unparse_lower(u, text);
                with_id = json_copy((json_t *)doc);
                json_object_set_new(with_id, id_field[kind], json_string(text));
                doc = with_id;
        }
        struct encoder *e = encoder_get(r);
        if (!e) {
                json_decref(with_id);
                avk_errors_add(errs, NULL, "out of memory");
                return AVK_UNAVAILABLE;
        }
        avro_value_t *value = &e->value[kind];
        enum avk_result result = AVK_REJECTED;
        if (avk_json_to_avro(r->schema[kind], doc, value, &r->opts, errs) != 0)
                goto out;
        result = AVK_UNAVAILABLE;
        char key[AVK_ID_SIZE], reason[512];
        string_field(value, id_field[kind], id);
        string_field(value, "deviation_id", key);
        const void *payload;
        size_t len;
        if (avk_codec_encode(e->codec, r->topic[kind], r->schema[kind], value, &payload, &len,
                             reason, sizeof(reason)) != 0) {
                avk_errors_add(errs, NULL, "%s", reason);
                goto out;
        }
        struct pending *p = malloc(sizeof(*p));
        if (!p) {
                avk_errors_add(errs, NULL, "out of memory");
                goto out;
        }
        *p = (struct pending){.done = done, .opaque = opaque};
        memcpy(p->id, id, AVK_ID_SIZE);
        /* F_BLOCK: a full local queue waits for room instead of failing. */
        rd_kafka_resp_err_t err = rd_kafka_producev(
            r->rk, RD_KAFKA_V_TOPIC(r->topic[kind]), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)payload, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY | RD_KAFKA_MSG_F_BLOCK), RD_KAFKA_V_OPAQUE(p),
            RD_KAFKA_V_END);
        if (err) {
                free(p);
                avk_errors_add(errs, NULL, "%s: %s", r->topic[kind], rd_kafka_err2str(err));
                goto out;
        }
        result = AVK_FILED;
out:
        encoder_put(r, e);
        json_decref(with_id);
        return result;
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
        while (!w.done)
                pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        if (w.result != AVK_FILED)
                avk_errors_add(errs, NULL, "Kafka did not acknowledge: %s", w.reason);
        return w.result;
}
