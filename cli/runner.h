/*
 * avk_cli_runner: how avvik starts a long-running service (route, track,
 * notify, analyse): the options (-c, -X, --help), the configuration, the
 * stop signals (blocked in every thread and taken by one waiting thread with
 * sigwait(), which asks the service to stop), the /metrics, /healthz and
 * /readyz endpoint (cli/metrics_endpoint.c), the run and the exit code. A
 * command is its usage text and a few hooks.
 */
#ifndef AVK_CLI_RUNNER_H
#define AVK_CLI_RUNNER_H

#include <stddef.h>

#include "common/http/metrics_http.h"
#include "common/util/config.h"
#include "common/util/metrics.h"

/** A service command. The strings are static. */
struct avk_cli_runner {
        const char *command;       /**< "avvik route", before every error */
        const char *component;     /**< "router", the log component of the stop line */
        const char *usage;         /**< the --help text */
        const char *listen_key;    /**< "router.http.listen" */
        const char *port_file_key; /**< "router.http.port.file", or NULL when there is none */
        /**
         * Makes the service from cfg (which outlives it) and says which
         * metrics registry its endpoint serves. @returns the service, or NULL
         * with the reason in errstr ("" when the hook printed it already).
         */
        void *(*open)(const avk_config_t *cfg, avk_metrics_t **metrics, char *errstr,
                      size_t errstr_size);
        /** Runs until stop(); @returns 0, or -1 with the reason in errstr. */
        int (*run)(void *service, char *errstr, size_t errstr_size);
        void (*stop)(void *service);     /**< any thread */
        avk_metrics_http_ready_cb ready; /**< /readyz; opaque is the service */
        void (*close)(void *service);    /**< frees what open made */
};

/**
 * @brief Runs the command with its arguments.
 * @returns the exit code: AVK_EXIT_OK after a stop by signal, AVK_EXIT_USAGE
 * for options, configuration or start-up, AVK_EXIT_KAFKA when the run failed.
 */
int avk_cli_runner_main(const struct avk_cli_runner *runner, int argc, char **argv);

#endif
