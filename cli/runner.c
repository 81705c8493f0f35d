/*
 * avk_cli_runner: see runner.h. Replaces the signal waiter and start-up each
 * service command had a copy of.
 */
#include "cli/runner.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "cli/cli.h"
#include "common/util/log.h"

struct waiter {
        sigset_t sigs;
        const struct avk_cli_runner *runner;
        void *service;
};

static void *wait_for_signal(void *arg)
{
        struct waiter *w = arg;
        int sig;
        sigwait(&w->sigs, &sig);
        avk_log(AVK_LOG_INFO, w->runner->component, "%s: stopping",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
        w->runner->stop(w->service);
        return NULL;
}

int avk_cli_runner_main(const struct avk_cli_runner *runner, int argc, char **argv)
{
        avk_config_t *cfg = avk_cli_config_new();
        avk_metrics_http_t *http = NULL;
        struct waiter w = {.runner = runner, .service = NULL};
        int rc = avk_cli_service_options(argc, argv, cfg, runner->usage);
        if (rc >= 0)
                goto out;
        rc = AVK_EXIT_USAGE;
        /* Blocked before any thread starts, so every thread inherits the mask
         * and the waiter's sigwait() is where the signals land. */
        avk_cli_block_stop_signals(&w.sigs);

        char err[4096] = "";
        avk_metrics_t *metrics = NULL;
        w.service = runner->open(cfg, &metrics, err, sizeof(err));
        if (!w.service) {
                if (err[0])
                        fprintf(stderr, "%s: %s\n", runner->command, err);
                goto out;
        }
        if (avk_cli_metrics_http_start(cfg, runner->command, runner->listen_key,
                                       runner->port_file_key, metrics, runner->ready, w.service,
                                       &http) != 0)
                goto out;
        pthread_t waiter;
        if (pthread_create(&waiter, NULL, wait_for_signal, &w) != 0) {
                fprintf(stderr, "%s: cannot start the signal thread\n", runner->command);
                goto out;
        }
        rc = AVK_EXIT_OK;
        if (runner->run(w.service, err, sizeof(err)) != 0) {
                fprintf(stderr, "%s: %s\n", runner->command, err);
                rc = AVK_EXIT_KAFKA;
                pthread_kill(waiter, SIGTERM); /* wakes the waiter after a failure */
        }
        pthread_join(waiter, NULL);
out:
        avk_cli_metrics_http_stop(cfg, runner->port_file_key, http);
        if (w.service)
                runner->close(w.service);
        avk_config_destroy(cfg);
        return rc;
}
