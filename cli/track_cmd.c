/*
 * avvik track: runs the tracker (consumer/track/tracker.h) until SIGINT or
 * SIGTERM, with its /metrics, /healthz and /readyz endpoint when
 * tracker.http.listen is set. The signals are blocked in every thread and
 * taken by one waiting thread with sigwait(), which asks the tracker to
 * stop; the tracker then finishes the outputs in flight, commits and leaves
 * its group.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "cli/cli.h"
#include "common/util/log.h"
#include "common/http/metrics_http.h"
#include "consumer/track/tracker.h"

static const char usage_text[] =
    "usage: avvik track [-c FILE] [-X KEY=VALUE]\n"
    "Tracks every routed deviation (topic.routed) against the deadline policy\n"
    "(deadlines.file): acknowledgements, answers, rejections and disputes of topic.response,\n"
    "failed deliveries of topic.delivery.failed. Writes a DeviationStatus per change to\n"
    "topic.status, reminders before deadlines to topic.reminder and escalations up the\n"
    "ladder (holders from directory.file) to topic.escalated, with copies to each receiver's\n"
    "inbox topic. Runs until SIGINT or SIGTERM. See docs/tracker.md.\n" AVK_CLI_CONFIG_HELP;

struct waiter {
        sigset_t sigs;
        avk_tracker_t *tracker;
};

static void *wait_for_signal(void *arg)
{
        struct waiter *w = arg;
        int sig;
        sigwait(&w->sigs, &sig);
        avk_log(AVK_LOG_INFO, "tracker", "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        avk_tracker_stop(w->tracker);
        return NULL;
}

int avk_cmd_track(int argc, char **argv)
{
        avk_config_t *cfg = avk_cli_config_new();
        avk_tracker_t *tracker = NULL;
        avk_metrics_http_t *http = NULL;
        int rc = avk_cli_service_options(argc, argv, cfg, usage_text);
        if (rc >= 0)
                goto out;
        rc = AVK_EXIT_USAGE;
        /* Blocked before any thread starts, so every thread inherits the mask
         * and the waiter's sigwait() is where the signals land. */
        struct waiter w = {.tracker = NULL};
        avk_cli_block_stop_signals(&w.sigs);

        char err[4096];
        tracker = avk_tracker_new(cfg, NULL, NULL, err, sizeof(err));
        if (!tracker) {
                fprintf(stderr, "avvik track: %s\n", err);
                goto out;
        }
        const char *listen = avk_config_get(cfg, "tracker.http.listen");
        if (listen) {
                http = avk_metrics_http_start(listen, avk_tracker_metrics(tracker),
                                              avk_tracker_ready, tracker, err, sizeof(err));
                if (!http) {
                        fprintf(stderr, "avvik track: tracker.http.listen: %s\n", err);
                        goto out;
                }
                avk_log(AVK_LOG_INFO, "tracker", "metrics on port %d", avk_metrics_http_port(http));
        }
        if (avk_config_get(cfg, "tracker.clock.file"))
                avk_log(
                    AVK_LOG_WARN, "tracker",
                    "tracker.clock.file is set: processing time comes from a file (tests only)");
        w.tracker = tracker;
        pthread_t waiter;
        if (pthread_create(&waiter, NULL, wait_for_signal, &w) != 0) {
                fprintf(stderr, "avvik track: cannot start the signal thread\n");
                goto out;
        }
        rc = AVK_EXIT_OK;
        if (avk_tracker_run(tracker, err, sizeof(err)) != 0) {
                fprintf(stderr, "avvik track: %s\n", err);
                rc = AVK_EXIT_KAFKA;
                pthread_kill(waiter, SIGTERM); /* wakes the waiter after a failure */
        }
        pthread_join(waiter, NULL);
out:
        avk_metrics_http_stop(http);
        avk_tracker_destroy(tracker);
        avk_config_destroy(cfg);
        return rc;
}
