/*
 * avk_pump: see pump.h.
 */
#include "common/kafka/pump.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/kafka/kafka.h"
#include "common/util/clock.h"
#include "common/util/log.h"

#define FLUSH_TIMEOUT_MS 10000

void avk_pump_init(struct avk_pump *p, const char *component)
{
        memset(p, 0, sizeof(*p));
        p->component = component;
        p->wake[0] = p->wake[1] = -1;
}

static rd_kafka_t *producer_new(const avk_config_t *cfg,
                                void (*dr)(rd_kafka_t *rk, const rd_kafka_message_t *m,
                                           void *opaque),
                                void *opaque, char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf = avk_kafka_conf(cfg, errstr, errstr_size);
        if (!conf)
                return NULL;
        rd_kafka_conf_set_dr_msg_cb(conf, dr);
        rd_kafka_conf_set_opaque(conf, opaque);
        rd_kafka_t *rk = avk_kafka_producer_new(conf, errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(conf);
        return rk;
}

int avk_pump_open(struct avk_pump *p, const avk_config_t *cfg,
                  void (*dr)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque),
                  void *opaque, const struct avk_copartition *cp, char *errstr, size_t errstr_size)
{
        /* Thread-safe since curl 7.84 (CURL_VERSION_THREADSAFE); counted, so
         * it pairs with the cleanup in avk_pump_close(). */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                snprintf(errstr, errstr_size, "curl_global_init failed");
                return -1;
        }
        p->curl_inited = 1;
        if (!(p->multi = curl_multi_init()) || avk_webhook_wake_pipe(p->wake) != 0) {
                snprintf(errstr, errstr_size, "curl multi handle or pipe: %s", strerror(errno));
                return -1;
        }
        p->close_timeout_ms = (int)avk_config_get_int(cfg, "consumer.close.timeout.ms");
        if (!(p->producer = producer_new(cfg, dr, opaque, errstr, errstr_size)) ||
            !(p->consumer = avk_copartition_consumer_new(cfg, cp, errstr, errstr_size)))
                return -1;
        p->consumer_queue = rd_kafka_queue_get_consumer(p->consumer);
        p->producer_queue = rd_kafka_queue_get_main(p->producer);
        rd_kafka_queue_io_event_enable(p->consumer_queue, p->wake[1], "c", 1);
        rd_kafka_queue_io_event_enable(p->producer_queue, p->wake[1], "p", 1);
        return 0;
}

int avk_pump_subscribe(struct avk_pump *p, const char *const *topics, int cnt, char *errstr,
                       size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(cnt);
        for (int i = 0; i < cnt; i++)
                rd_kafka_topic_partition_list_add(l, topics[i], RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(p->consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (e) {
                snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(e));
                return -1;
        }
        return 0;
}

int avk_pump_running(struct avk_pump *p)
{
        return !atomic_load(&p->stop) && !p->fatal[0];
}

int avk_pump_take(struct avk_pump *p, int max, avk_pump_message_cb *cb, void *opaque)
{
        int taken = 0;
        rd_kafka_message_t *m;
        while (taken < max && !p->fatal[0] &&
               (m = rd_kafka_consumer_poll(p->consumer, 0)) != NULL) {
                taken++;
                if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                        char reason[256];
                        rd_kafka_fatal_error(p->consumer, reason, sizeof(reason));
                        snprintf(p->fatal, sizeof(p->fatal), "Kafka consumer: %s", reason);
                } else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        avk_log(AVK_LOG_WARN, p->component, "Kafka consumer: %s",
                                rd_kafka_message_errstr(m));
                } else {
                        cb(opaque, m);
                }
                rd_kafka_message_destroy(m);
        }
        return taken;
}

void avk_pump_serve(struct avk_pump *p, avk_webhook_done_cb *done, void *opaque)
{
        avk_webhook_collect(p->multi, done, opaque);
        rd_kafka_poll(p->producer, 0);
        if (rd_kafka_fatal_error(p->producer, NULL, 0)) {
                char reason[256];
                rd_kafka_fatal_error(p->producer, reason, sizeof(reason));
                snprintf(p->fatal, sizeof(p->fatal), "Kafka producer: %s", reason);
        }
}

void avk_pump_sleep(struct avk_pump *p, int64_t next, int busy)
{
        int64_t timeout = busy ? 0 : next - avk_clock_mono_ms();
        avk_webhook_wait(p->multi, p->wake[0],
                         timeout > AVK_PUMP_POLL_MAX_MS ? AVK_PUMP_POLL_MAX_MS : timeout);
}

void avk_pump_store(struct avk_pump *p, const char *topic, int32_t partition, int64_t offset)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
        rd_kafka_resp_err_t e = rd_kafka_offsets_store(p->consumer, l);
        if (e)
                avk_log(AVK_LOG_WARN, p->component, "%s [%d]: offset not stored: %s", topic,
                        (int)partition, rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(l);
}

void avk_pump_pause(struct avk_pump *p, rd_kafka_topic_partition_list_t *l, int pause)
{
        if (pause)
                rd_kafka_pause_partitions(p->consumer, l);
        else
                rd_kafka_resume_partitions(p->consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
}

void avk_pump_flush(struct avk_pump *p)
{
        rd_kafka_flush(p->producer, FLUSH_TIMEOUT_MS);
}

void avk_pump_commit(struct avk_pump *p)
{
        rd_kafka_resp_err_t e = rd_kafka_commit(p->consumer, NULL, 0);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
                avk_log(AVK_LOG_WARN, p->component, "commit: %s", rd_kafka_err2str(e));
}

void avk_pump_stop(struct avk_pump *p)
{
        atomic_store(&p->stop, 1);
        curl_multi_wakeup(p->multi);
}

rd_kafka_headers_t *avk_pump_deadletter_headers(const char *reason, const char *topic,
                                                int32_t partition, int64_t offset)
{
        char part_text[16], offset_text[32];
        snprintf(part_text, sizeof(part_text), "%d", (int)partition);
        snprintf(offset_text, sizeof(offset_text), "%" PRId64, offset);
        rd_kafka_headers_t *h = rd_kafka_headers_new(6);
        rd_kafka_header_add(h, "avk-error", -1, reason, -1);
        rd_kafka_header_add(h, "avk-source-topic", -1, topic, -1);
        rd_kafka_header_add(h, "avk-source-partition", -1, part_text, -1);
        rd_kafka_header_add(h, "avk-source-offset", -1, offset_text, -1);
        return h;
}

void *avk_pump_grow(void *array, int *cnt, size_t elem_size, int32_t partition)
{
        if (partition < 0)
                return NULL;
        if (partition < *cnt)
                return array;
        unsigned char *grown = realloc(array, (size_t)(partition + 1) * elem_size);
        if (!grown)
                return NULL;
        memset(grown + (size_t)*cnt * elem_size, 0, (size_t)(partition + 1 - *cnt) * elem_size);
        *cnt = partition + 1;
        return grown;
}

int avk_pump_copy(const rd_kafka_message_t *m, void **key, size_t *key_len, void **value,
                  size_t *value_len)
{
        if (!(*value = malloc(m->len ? m->len : 1)) ||
            !(*key = malloc(m->key_len ? m->key_len : 1)))
                return -1;
        memcpy(*value, m->payload, m->len);
        *value_len = m->len;
        if (m->key_len)
                memcpy(*key, m->key, m->key_len);
        *key_len = m->key_len;
        return 0;
}

void avk_pump_close_kafka(struct avk_pump *p)
{
        if (p->consumer_queue) {
                rd_kafka_queue_io_event_enable(p->consumer_queue, -1, NULL, 0);
                rd_kafka_queue_destroy(p->consumer_queue);
                p->consumer_queue = NULL;
        }
        if (p->producer_queue) {
                rd_kafka_queue_io_event_enable(p->producer_queue, -1, NULL, 0);
                rd_kafka_queue_destroy(p->producer_queue);
                p->producer_queue = NULL;
        }
        if (p->consumer) {
                /* Revokes: the service gives its partitions up. */
                avk_kafka_consumer_close(p->consumer, p->close_timeout_ms, p->component);
                rd_kafka_destroy_flags(p->consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
                p->consumer = NULL;
        }
        if (p->producer) {
                avk_pump_flush(p);
                rd_kafka_destroy(p->producer);
                p->producer = NULL;
        }
}

void avk_pump_close(struct avk_pump *p)
{
        if (p->multi)
                curl_multi_cleanup(p->multi);
        p->multi = NULL;
        if (p->curl_inited)
                curl_global_cleanup();
        p->curl_inited = 0;
        for (int i = 0; i < 2; i++) {
                if (p->wake[i] >= 0)
                        close(p->wake[i]);
                p->wake[i] = -1;
        }
}
