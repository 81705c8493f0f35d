/*
 * avk_copartition: see copartition.h.
 */
#include "common/kafka/copartition.h"

#include <stdio.h>
#include <string.h>

#include "common/kafka/kafka.h"

int avk_copartition_kafka_set(const avk_config_t *cfg, const char *name, const char **value)
{
        for (size_t i = 0; i < avk_config_kafka_cnt(cfg); i++) {
                const char *k;
                avk_config_kafka_get(cfg, i, &k, value);
                if (strcmp(k, name) == 0)
                        return 1;
        }
        return 0;
}

rd_kafka_t *avk_copartition_consumer_new(const avk_config_t *cfg, const struct avk_copartition *cp,
                                         char *errstr, size_t errstr_size)
{
        const char *strategy, *reset;
        if (avk_copartition_kafka_set(cfg, "partition.assignment.strategy", &strategy) &&
            strcmp(strategy, "range") != 0) {
                snprintf(errstr, errstr_size,
                         "kafka.partition.assignment.strategy: %s needs \"range\" "
                         "(partition p of %s and %s on one instance)",
                         cp->service, cp->topic_a, cp->topic_b);
                return NULL;
        }
        rd_kafka_conf_t *conf = avk_kafka_conf(cfg, errstr, errstr_size);
        if (!conf)
                return NULL;
        rd_kafka_conf_set(conf, "partition.assignment.strategy", "range", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        if (!avk_copartition_kafka_set(cfg, "auto.offset.reset", &reset))
                rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0);
        rd_kafka_conf_set_rebalance_cb(conf, cp->rebalance_cb);
        rd_kafka_conf_set_opaque(conf, cp->opaque);
        rd_kafka_t *rk =
            avk_kafka_consumer_new(conf, avk_config_get(cfg, cp->group_key), errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(conf);
        return rk;
}
