/*
 * avk_tracker_config: the configuration keys of avvik track (consumer/track/tracker.h): the
 * deadline policy file, its consumer group, metrics endpoint, tick and kept responses. Whatever
 * runs the service adds them to its configuration with avk_config_add_keys()
 * (common/util/config.h); every avvik command does.
 */
#ifndef AVK_TRACKER_CONFIG_H
#define AVK_TRACKER_CONFIG_H

#include "common/util/config.h"

/** The keys, with their kinds, bounds, defaults and meanings. Static storage. */
extern const struct avk_config_table avk_tracker_config_keys;

#endif
