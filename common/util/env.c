/* avk_env: see env.h. */
#include "common/util/env.h"

#include <stdio.h>

#include "common/kafka/kafka.h"

int avk_env_open(struct avk_env *env, const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        env->cfg = cfg;
        env->registry = NULL;
        env->catalog = avk_catalog_new_builtin(errstr, errstr_size);
        if (!env->catalog)
                return -1;
        const char *url = avk_config_get(cfg, "schema.registry.url");
        if (!url)
                return 0;
        struct avk_registry_conf rconf = {
            .url = url,
            .basic_auth = avk_config_get(cfg, "schema.registry.basic.auth.user.info"),
            .ca_location = avk_config_get(cfg, "schema.registry.ssl.ca.location"),
            .timeout_ms = avk_config_get_int(cfg, "schema.registry.timeout.ms")};
        env->registry = avk_registry_new(&rconf, errstr, errstr_size);
        if (!env->registry) {
                avk_catalog_destroy(env->catalog);
                env->catalog = NULL;
                return -1;
        }
        return 0;
}

void avk_env_close(struct avk_env *env)
{
        avk_registry_destroy(env->registry);
        avk_catalog_destroy(env->catalog);
        env->registry = NULL;
        env->catalog = NULL;
}

const avk_schema_t *avk_env_topic_schema(const struct avk_env *env, const char *topic, char *errstr,
                                         size_t errstr_size)
{
        const char *name = avk_kafka_topic_schema(env->cfg, topic);
        const avk_schema_t *s = name ? avk_catalog_by_name(env->catalog, name) : NULL;
        if (!s)
                snprintf(errstr, errstr_size, "topic %s carries no avvik schema", topic);
        return s;
}
