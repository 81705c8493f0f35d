/*
 * avk_notify_config: the configuration keys of avvik notify (consumer/notify/notify.h): its
 * consumer group, metrics endpoint, webhook attempts, retries and flow control. Whatever runs the
 * service adds them to its configuration with avk_config_add_keys() (common/util/config.h); every
 * avvik command does.
 */
#ifndef AVK_NOTIFY_CONFIG_H
#define AVK_NOTIFY_CONFIG_H

#include "common/util/config.h"

/** The keys, with their kinds, bounds, defaults and meanings. Static storage. */
extern const struct avk_config_table avk_notify_config_keys;

#endif
