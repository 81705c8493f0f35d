/*
 * avk_intake_config: the configuration keys of the intake library (producer/intake/reporter.h):
 * event-time checks, Kafka acknowledgement and the spool; read by avvik report and avvik gateway.
 * Whatever runs the service adds them to its configuration with
 * avk_config_add_keys() (common/util/config.h); every avvik command does.
 */
#ifndef AVK_INTAKE_CONFIG_H
#define AVK_INTAKE_CONFIG_H

#include "common/util/config.h"

/** The keys, with their kinds, bounds, defaults and meanings. Static storage. */
extern const struct avk_config_table avk_intake_config_keys;

#endif
