/*
 * avk_cli_config_new: the configuration of a command - the shared keys and
 * every service's own keys (each table kept beside its service). Every
 * command knows every key, so one properties file may serve them all
 * (deploy/local/stack.sh does), and 'avvik config' lists them all.
 */
#ifndef AVK_CLI_CONFIG_KEYS_H
#define AVK_CLI_CONFIG_KEYS_H

#include "common/util/config.h"

/** @brief A configuration knowing every key of avvik, each at its default; NULL when out of memory.
 */
avk_config_t *avk_cli_config_new(void);

#endif
