/*
 * avk_dashboard_config: the configuration keys of avvik dashboard (consumer/dashboard/dashboard.h):
 * its listener, clock and overdue list. Whatever runs the service adds them to its configuration
 * with avk_config_add_keys() (common/util/config.h); every avvik command does.
 */
#ifndef AVK_DASHBOARD_CONFIG_H
#define AVK_DASHBOARD_CONFIG_H

#include "common/util/config.h"

/** The keys, with their kinds, bounds, defaults and meanings. Static storage. */
extern const struct avk_config_table avk_dashboard_config_keys;

#endif
