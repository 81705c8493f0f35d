/*
 * avk_gateway_config: the configuration keys of avvik gateway (producer/gateway/gateway.h): its
 * listener, TLS, tokens, limits and idempotency. Whatever runs the service adds them to its
 * configuration with avk_config_add_keys() (common/util/config.h); every avvik command does.
 */
#ifndef AVK_GATEWAY_CONFIG_H
#define AVK_GATEWAY_CONFIG_H

#include "common/util/config.h"

/** The keys, with their kinds, bounds, defaults and meanings. Static storage. */
extern const struct avk_config_table avk_gateway_config_keys;

#endif
