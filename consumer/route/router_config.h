/*
 * avk_router_config: the configuration keys of avvik route (consumer/route/router.h): the routing
 * rules file, its consumer group and metrics endpoint. Whatever runs the service adds them to its
 * configuration with avk_config_add_keys() (common/util/config.h); every avvik command does.
 */
#ifndef AVK_ROUTER_CONFIG_H
#define AVK_ROUTER_CONFIG_H

#include "common/util/config.h"

/** The keys, with their kinds, bounds, defaults and meanings. Static storage. */
extern const struct avk_config_table avk_router_config_keys;

#endif
