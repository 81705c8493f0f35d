/*
 * avk_analysis_config: the configuration keys of avvik analyse (consumer/analyse/analysis.h): its
 * consumer group, metrics endpoint, pseudonym key, cache, flow control and the analysis sink.
 * Whatever runs the service adds them to its configuration with avk_config_add_keys()
 * (common/util/config.h); every avvik command does.
 */
#ifndef AVK_ANALYSIS_CONFIG_H
#define AVK_ANALYSIS_CONFIG_H

#include "common/util/config.h"

/** The keys, with their kinds, bounds, defaults and meanings. Static storage. */
extern const struct avk_config_table avk_analysis_config_keys;

#endif
