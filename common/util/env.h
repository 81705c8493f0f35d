/*
 * avk_env: the process-wide objects every avvik program needs, built from
 * its configuration: the built-in schema catalog and, when
 * schema.registry.url is set, the Schema Registry client. Both are
 * read-only after creation and shared by threads; each thread then makes
 * its own avk_codec from them.
 */
#ifndef AVK_ENV_H
#define AVK_ENV_H

#include "common/contract/codec.h"
#include "common/util/config.h"
#include "common/contract/registry.h"
#include "common/contract/schema.h"

struct avk_env {
        const avk_config_t *cfg;  /**< not owned */
        avk_catalog_t *catalog;   /**< owned */
        avk_registry_t *registry; /**< owned; NULL without schema.registry.url */
};

/** @brief Fills env from cfg. @returns 0, or -1 with the reason in errstr. */
int avk_env_open(struct avk_env *env, const avk_config_t *cfg, char *errstr, size_t errstr_size);

void avk_env_close(struct avk_env *env);

/** @brief The schema carried by the topic with this name, or NULL with the reason. */
const avk_schema_t *avk_env_topic_schema(const struct avk_env *env, const char *topic, char *errstr,
                                         size_t errstr_size);

#endif
