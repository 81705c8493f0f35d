/*
 * avk_index: see index.h.
 *
 * An open-addressing table with linear probing, kept between 3/8 and 3/4
 * full, under a read-write lock: the consumer thread writes, the gateway's
 * threads read. Deviation ids come from clients, so the slot is chosen by a
 * hash mixed with a per-index random seed - ids crafted to collide in one
 * process do not collide in another.
 */
#include "producer/gateway/index.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#include "common/contract/codec.h"
#include "common/util/env.h"
#include "common/kafka/follow.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"
#include "common/contract/party.h"

#define MIN_SLOTS 1024

struct slot {
        unsigned char id[16];
        int32_t hop;
        unsigned char reporter, receiver;
        unsigned char used;
};

struct avk_index {
        pthread_rwlock_t lock;
        struct slot *slots;
        size_t slot_cnt, used;
        uint64_t seed;
        atomic_int loaded;
        /* The consumer, when started. */
        pthread_t thread;
        int started;
        atomic_int stopping;
        const char *topic;
        struct avk_env env;
        avk_codec_t *codec;
        rd_kafka_t *rk;
};

static uint64_t mix(uint64_t x)
{
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

static size_t slot_of(const avk_index_t *index, const unsigned char id[16])
{
        uint64_t hi, lo;
        memcpy(&hi, id, 8);
        memcpy(&lo, id + 8, 8);
        return (size_t)mix(lo ^ mix(hi ^ index->seed)) & (index->slot_cnt - 1);
}

/* The slot holding id, or the empty slot where it belongs. */
static struct slot *probe(const avk_index_t *index, const unsigned char id[16])
{
        size_t i = slot_of(index, id);
        while (index->slots[i].used && memcmp(index->slots[i].id, id, 16) != 0)
                i = (i + 1) & (index->slot_cnt - 1);
        return &index->slots[i];
}

avk_index_t *avk_index_new(void)
{
        avk_index_t *index = calloc(1, sizeof(*index));
        if (!index)
                return NULL;
        index->slot_cnt = MIN_SLOTS;
        index->slots = calloc(index->slot_cnt, sizeof(*index->slots));
        if (!index->slots) {
                free(index);
                return NULL;
        }
        uuid_t random;
        uuid_generate_random(random);
        memcpy(&index->seed, random, sizeof(index->seed));
        pthread_rwlock_init(&index->lock, NULL);
        return index;
}

/* Doubles the table; under the write lock. */
static int grow(avk_index_t *index)
{
        struct slot *old = index->slots;
        size_t old_cnt = index->slot_cnt;
        struct slot *slots = calloc(2 * old_cnt, sizeof(*slots));
        if (!slots)
                return -1;
        index->slots = slots;
        index->slot_cnt = 2 * old_cnt;
        for (size_t i = 0; i < old_cnt; i++) {
                if (old[i].used)
                        *probe(index, old[i].id) = old[i];
        }
        free(old);
        return 0;
}

int avk_index_put(avk_index_t *index, const char *deviation_id, int32_t hop, int reporter_party,
                  int receiver_party)
{
        uuid_t id;
        if (uuid_parse(deviation_id, id) != 0 || reporter_party < 0 ||
            reporter_party > AVK_PARTY_MAX || receiver_party < 0 || receiver_party > AVK_PARTY_MAX)
                return -1;
        int rc = 0;
        pthread_rwlock_wrlock(&index->lock);
        if (4 * (index->used + 1) > 3 * index->slot_cnt && grow(index) != 0) {
                rc = -1;
                goto out;
        }
        struct slot *s = probe(index, id);
        if (s->used && hop < s->hop)
                goto out; /* an older routing, read late: the newer one stands */
        if (!s->used) {
                memcpy(s->id, id, 16);
                s->used = 1;
                index->used++;
        }
        s->hop = hop;
        s->reporter = (unsigned char)reporter_party;
        s->receiver = (unsigned char)receiver_party;
out:
        pthread_rwlock_unlock(&index->lock);
        return rc;
}

int avk_index_get(avk_index_t *index, const char *deviation_id, struct avk_index_entry *out)
{
        uuid_t id;
        if (uuid_parse(deviation_id, id) != 0)
                return -1;
        pthread_rwlock_rdlock(&index->lock);
        const struct slot *s = probe(index, id);
        int found = s->used;
        if (found)
                *out = (struct avk_index_entry){s->hop, s->reporter, s->receiver};
        pthread_rwlock_unlock(&index->lock);
        return found ? 0 : -1;
}

size_t avk_index_size(avk_index_t *index)
{
        pthread_rwlock_rdlock(&index->lock);
        size_t n = index->used;
        pthread_rwlock_unlock(&index->lock);
        return n;
}

int avk_index_loaded(avk_index_t *index)
{
        return atomic_load(&index->loaded);
}

static const char *string_field(avro_value_t *record, const char *name)
{
        avro_value_t field;
        const char *s = NULL;
        size_t size;
        if (avro_value_get_by_name(record, name, &field, NULL) != 0 ||
            avro_value_get_string(&field, &s, &size) != 0)
                return NULL;
        return s;
}

/* Records one DeviationRouted value; -1 with the reason. */
static int apply(void *opaque, avro_value_t *routed, char *errstr, size_t errstr_size)
{
        avk_index_t *index = opaque;
        const char *id = string_field(routed, "deviation_id");
        const char *parties[2] = {string_field(routed, "reporter_party"),
                                  string_field(routed, "receiver_party")};
        static const char *const names[2] = {"reporter_party", "receiver_party"};
        avro_value_t field;
        int32_t hop = 0;
        int party[2];
        char reason[256];
        if (!id || avro_value_get_by_name(routed, "hop", &field, NULL) != 0 ||
            avro_value_get_int(&field, &hop) != 0) {
                snprintf(errstr, errstr_size, "not a DeviationRouted record");
                return -1;
        }
        for (int i = 0; i < 2; i++) {
                if (!parties[i] ||
                    (party[i] = avk_party_parse(parties[i], reason, sizeof(reason))) < 0) {
                        snprintf(errstr, errstr_size, "%s: %s", names[i],
                                 parties[i] ? reason : "missing");
                        return -1;
                }
        }
        if (avk_index_put(index, id, hop, party[0], party[1]) != 0) {
                snprintf(errstr, errstr_size, "deviation_id: not a UUID, or out of memory");
                return -1;
        }
        return 0;
}

static void mark_loaded(void *opaque)
{
        avk_index_t *index = opaque;
        atomic_store(&index->loaded, 1);
        avk_log(AVK_LOG_INFO, "index", "%s read: %zu deviations", index->topic,
                avk_index_size(index));
}

/* Follows topic.routed (common/kafka/follow.h). A record the index cannot use is
 * skipped, never fatal: the router's dead-letter handling owns bad records. */
static void *consume(void *arg)
{
        avk_index_t *index = arg;
        char err[512];
        struct avk_follow follow = {
            .rk = index->rk,
            .codec = index->codec,
            .schema = avk_env_topic_schema(&index->env, index->topic, err, sizeof(err)),
            .topic = index->topic,
            .component = "index",
            .stopping = &index->stopping,
            .opaque = index,
            .apply = apply,
            .loaded = mark_loaded,
        };
        avk_follow_run(&follow);
        return NULL;
}

int avk_index_start(avk_index_t *index, const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        index->topic = avk_config_get(cfg, "topic.routed");
        if (avk_env_open(&index->env, cfg, errstr, errstr_size) != 0)
                return -1;
        if (!avk_env_topic_schema(&index->env, index->topic, errstr, errstr_size))
                goto fail;
        if (!(index->codec = avk_codec_new(index->env.catalog, index->env.registry))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        rd_kafka_conf_t *conf = avk_kafka_conf(cfg, errstr, errstr_size);
        if (!conf)
                goto fail;
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        /* The group id is never joined (partitions are assigned): it only
         * names the client in the broker's logs. */
        index->rk = avk_kafka_consumer_new(conf, "avvik-gateway-index", errstr, errstr_size);
        if (!index->rk) {
                rd_kafka_conf_destroy(conf);
                goto fail;
        }
        if (pthread_create(&index->thread, NULL, consume, index) != 0) {
                snprintf(errstr, errstr_size, "cannot start the index thread");
                goto fail;
        }
        index->started = 1;
        return 0;
fail:
        if (index->rk)
                rd_kafka_destroy(index->rk);
        index->rk = NULL;
        avk_codec_destroy(index->codec);
        index->codec = NULL;
        avk_env_close(&index->env);
        return -1;
}

void avk_index_destroy(avk_index_t *index)
{
        if (!index)
                return;
        if (index->started) {
                atomic_store(&index->stopping, 1);
                pthread_join(index->thread, NULL);
                avk_kafka_consumer_close(
                    index->rk, (int)avk_config_get_int(index->env.cfg, "consumer.close.timeout.ms"),
                    "index");
                rd_kafka_destroy_flags(index->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
                avk_codec_destroy(index->codec);
                avk_env_close(&index->env);
        }
        pthread_rwlock_destroy(&index->lock);
        free(index->slots);
        free(index);
}
