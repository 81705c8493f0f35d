/*
 * avvik notify: runs the notifier (consumer/notify/notify.h) until SIGINT or
 * SIGTERM. The signals are blocked in every thread and taken by one waiting
 * thread with sigwait(), which asks the notifier to stop; the notifier then
 * commits what it finished and leaves its group.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "cli/cli.h"
#include "common/contract/directory.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "consumer/notify/notify.h"

static const char usage_text[] =
    "usage: avvik notify [-c FILE] [-X KEY=VALUE]\n"
    "Delivers every DeviationRouted of topic.routed to its receiver (directory.file): with the\n"
    "deviation of topic.reported, to its inbox topic (both records as read) and to its webhook\n"
    "(signed with HMAC-SHA256, the deviation in the body); and every\n"
    "DeviationEscalated (topic.escalated) and DeadlineReminder (topic.reminder) to the webhook\n"
    "of its party or unit; retries with backoff, parking failed attempts on topic.notify.retry\n"
    "so that they hold up no other delivery, and dead-letters what the retry budget does\n"
    "not deliver (topic.deadletter, and for a routed record a DeliveryFailed event on\n"
    "topic.delivery.failed). With notify.http.listen set it serves /metrics, /healthz and\n"
    "/readyz there. Runs until SIGINT or SIGTERM.\n"
    "See docs/notify.md.\n" AVK_CLI_CONFIG_HELP;

struct waiter {
        sigset_t sigs;
        avk_notify_t *notify;
};

static void *wait_for_signal(void *arg)
{
        struct waiter *w = arg;
        int sig;
        sigwait(&w->sigs, &sig);
        avk_log(AVK_LOG_INFO, "notify", "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        avk_notify_stop(w->notify);
        return NULL;
}

int avk_cmd_notify(int argc, char **argv)
{
        avk_config_t *cfg = avk_cli_config_new();
        avk_directory_t *dir = NULL;
        avk_metrics_t *metrics = NULL;
        avk_notify_t *notify = NULL;
        avk_metrics_http_t *http = NULL;
        int rc = avk_cli_service_options(argc, argv, cfg, usage_text);
        if (rc >= 0)
                goto out;
        rc = AVK_EXIT_USAGE;
        const char *dir_file = avk_config_get(cfg, "directory.file");
        if (!dir_file) {
                fprintf(stderr, "avvik notify: directory.file is required\n");
                goto out;
        }
        struct avk_errors errs;
        avk_errors_init(&errs);
        if (!(dir = avk_directory_load(dir_file, 0, &errs))) {
                for (size_t i = 0; i < errs.cnt; i++)
                        fprintf(stderr, "avvik notify: %s\n", errs.msg[i]);
                goto out;
        }
        /* Blocked before any thread starts, so every thread inherits the mask
         * and the waiter's sigwait() is where the signals land. */
        struct waiter w = {.notify = NULL};
        avk_cli_block_stop_signals(&w.sigs);

        char err[1024];
        metrics = avk_metrics_new();
        notify = metrics ? avk_notify_new(cfg, dir, metrics, err, sizeof(err)) : NULL;
        if (!notify) {
                fprintf(stderr, "avvik notify: %s\n", metrics ? err : "out of memory");
                goto out;
        }
        if (avk_cli_metrics_http_start(cfg, "avvik notify", "notify.http.listen",
                                       "notify.http.port.file", metrics, avk_notify_ready, notify,
                                       &http) != 0)
                goto out;
        w.notify = notify;
        pthread_t waiter;
        if (pthread_create(&waiter, NULL, wait_for_signal, &w) != 0) {
                fprintf(stderr, "avvik notify: cannot start the signal thread\n");
                goto out;
        }
        rc = AVK_EXIT_OK;
        if (avk_notify_run(notify, err, sizeof(err)) != 0) {
                fprintf(stderr, "avvik notify: %s\n", err);
                rc = AVK_EXIT_KAFKA;
                pthread_kill(waiter, SIGTERM); /* wakes the waiter after a failure */
        }
        pthread_join(waiter, NULL);
out:
        avk_cli_metrics_http_stop(cfg, "notify.http.port.file", http);
        avk_notify_destroy(notify);
        avk_metrics_destroy(metrics);
        avk_directory_destroy(dir);
        avk_config_destroy(cfg);
        return rc;
}
