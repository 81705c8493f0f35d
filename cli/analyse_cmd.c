/*
 * avvik analyse: runs the analysis forwarder (consumer/analyse/analysis.h) until
 * SIGINT or SIGTERM. The signals are blocked in every thread and taken by one
 * waiting thread with sigwait(), which asks the forwarder to stop; it then
 * commits what it finished and leaves its group.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "cli/cli.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "consumer/analyse/analysis.h"

static const char usage_text[] =
    "usage: avvik analyse [-c FILE] [-X KEY=VALUE]\n"
    "Writes one pseudonymised AnalysisRecord to topic.analysis for every state change of a\n"
    "deviation: REPORTED from topic.reported, the others from the tracker's topic.status. The\n"
    "patient is a keyed pseudonym (analysis.pseudonym.key.file, required), an age band and a\n"
    "sex; the description is scrubbed of identity numbers, phone numbers and e-mail addresses.\n"
    "With analysis.sink.url set, the records are also POSTed there as signed NDJSON batches.\n"
    "Runs until SIGINT or SIGTERM. With analysis.http.listen set it serves /metrics, /healthz\n"
    "and /readyz there. See docs/analysis.md.\n" AVK_CLI_CONFIG_HELP;

struct waiter {
        sigset_t sigs;
        avk_analysis_t *analysis;
};

static void *wait_for_signal(void *arg)
{
        struct waiter *w = arg;
        int sig;
        sigwait(&w->sigs, &sig);
        avk_log(AVK_LOG_INFO, "analysis", "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        avk_analysis_stop(w->analysis);
        return NULL;
}

int avk_cmd_analyse(int argc, char **argv)
{
        avk_config_t *cfg = avk_cli_config_new();
        avk_metrics_t *metrics = NULL;
        avk_analysis_t *analysis = NULL;
        avk_metrics_http_t *http = NULL;
        int rc = avk_cli_service_options(argc, argv, cfg, usage_text);
        if (rc >= 0)
                goto out;
        rc = AVK_EXIT_USAGE;
        /* Blocked before any thread starts, so every thread inherits the mask
         * and the waiter's sigwait() is where the signals land. */
        struct waiter w = {.analysis = NULL};
        avk_cli_block_stop_signals(&w.sigs);

        char err[1024];
        metrics = avk_metrics_new();
        analysis = metrics ? avk_analysis_new(cfg, metrics, err, sizeof(err)) : NULL;
        if (!analysis) {
                fprintf(stderr, "avvik analyse: %s\n", metrics ? err : "out of memory");
                goto out;
        }
        if (avk_cli_metrics_http_start(cfg, "avvik analyse", "analysis.http.listen",
                                       "analysis.http.port.file", metrics, avk_analysis_ready,
                                       analysis, &http) != 0)
                goto out;
        w.analysis = analysis;
        pthread_t waiter;
        if (pthread_create(&waiter, NULL, wait_for_signal, &w) != 0) {
                fprintf(stderr, "avvik analyse: cannot start the signal thread\n");
                goto out;
        }
        rc = AVK_EXIT_OK;
        if (avk_analysis_run(analysis, err, sizeof(err)) != 0) {
                fprintf(stderr, "avvik analyse: %s\n", err);
                rc = AVK_EXIT_KAFKA;
                pthread_kill(waiter, SIGTERM); /* wakes the waiter after a failure */
        }
        pthread_join(waiter, NULL);
out:
        avk_cli_metrics_http_stop(cfg, "analysis.http.port.file", http);
        avk_analysis_destroy(analysis);
        avk_metrics_destroy(metrics);
        avk_config_destroy(cfg);
        return rc;
}
