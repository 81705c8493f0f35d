/*
 * avk_cli: the avvik program's subcommands and what they share - reading the
 * configuration from -c FILE and -X key=value, in that order.
 */
#ifndef AVK_CLI_H
#define AVK_CLI_H

#include <signal.h>

#include "cli/config_keys.h"
#include "common/util/config.h"
#include "common/util/metrics.h"
#include "common/http/metrics_http.h"

/** Exit codes shared by every subcommand (documented in README). */
enum {
        AVK_EXIT_OK = 0,
        AVK_EXIT_REJECTED = 1, /**< input rejected: field errors */
        AVK_EXIT_USAGE = 2,    /**< usage or configuration error */
        AVK_EXIT_KAFKA = 3,    /**< Kafka unreachable or did not acknowledge */
};

/**
 * @brief Handles the options every subcommand takes: 'c' (a properties file)
 * and 'X' (key=value). @returns 1 when opt was one of them and applied, 0 when
 * it is not theirs, -1 after printing the error.
 */
int avk_cli_config_opt(avk_config_t *cfg, int opt, const char *arg);

/**
 * @brief Parses the options of a subcommand that takes only -c, -X and
 * --help (the services). @returns -1 when the service should run, else the
 * exit code (usage printed: to stdout for --help, stderr for an error).
 */
int avk_cli_service_options(int argc, char **argv, avk_config_t *cfg, const char *usage);

/**
 * @brief Blocks SIGINT and SIGTERM into sigs. Call before any thread starts,
 * so every thread inherits the mask and sigwait(sigs) is where they land.
 */
void avk_cli_block_stop_signals(sigset_t *sigs);

/** The -c/-X lines for a subcommand's --help. */
#define AVK_CLI_CONFIG_HELP                                                                        \
        "  -c FILE        read configuration from FILE (key=value lines)\n"                        \
        "  -X KEY=VALUE   set one configuration key (after -c); see 'avvik config'\n"

/**
 * @brief Writes content and a newline to path through a temporary file, fsync
 * and rename, so a reader sees all of it or nothing; creates path's directory
 * (mode 0700) when missing. @returns 0, or -1 with errno set.
 */
int avk_cli_write_atomically(const char *path, const char *content);

/**
 * @brief Starts a service's /metrics, /healthz and /readyz endpoint
 * (common/http/metrics_http.h) when the configuration key listen_key is set, and
 * writes its port to the file named by port_file_key (NULL: no such key)
 * when that is set. @returns 0 with *http the endpoint, or NULL when
 * listen_key is unset; -1 after printing the error.
 */
int avk_cli_metrics_http_start(const avk_config_t *cfg, const char *service, const char *listen_key,
                               const char *port_file_key, avk_metrics_t *metrics,
                               avk_metrics_http_ready_cb ready, void *opaque,
                               avk_metrics_http_t **http);

/** @brief Stops what avk_cli_metrics_http_start() started; removes the port file. */
void avk_cli_metrics_http_stop(const avk_config_t *cfg, const char *port_file_key,
                               avk_metrics_http_t *http);

int avk_cmd_broker(int argc, char **argv);
int avk_cmd_report(int argc, char **argv);
int avk_cmd_tail(int argc, char **argv);
int avk_cmd_gateway(int argc, char **argv);
int avk_cmd_token(int argc, char **argv);
int avk_cmd_route(int argc, char **argv);
int avk_cmd_notify(int argc, char **argv);
int avk_cmd_track(int argc, char **argv);
int avk_cmd_analyse(int argc, char **argv);
int avk_cmd_dashboard(int argc, char **argv);
int avk_cmd_config(int argc, char **argv);

#endif
