/*
 * avvik route: runs the router (consumer/route/router.h) until SIGINT or SIGTERM.
 * The signals are blocked in every thread and taken by one waiting thread
 * with sigwait(), which asks the router to stop; the router then finishes
 * the outputs in flight, commits and leaves its group.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "cli/cli.h"
#include "common/util/log.h"
#include "consumer/route/router.h"

static const char usage_text[] =
    "usage: avvik route [-c FILE] [-X KEY=VALUE]\n"
    "Routes every deviation of topic.reported to the responsible party (routing.rules.file,\n"
    "directory.file) and re-routes after wrong-receiver responses of topic.response, writing\n"
    "DeviationRouted events to topic.routed (avvik notify delivers them to webhooks and inbox\n"
    "topics).\n"
    "Runs until SIGINT or SIGTERM. With router.http.listen set it serves /metrics, /healthz\n"
    "and /readyz there. See docs/router.md.\n" AVK_CLI_CONFIG_HELP;

struct waiter {
        sigset_t sigs;
        avk_router_t *router;
};

static void *wait_for_signal(void *arg)
{
        struct waiter *w = arg;
        int sig;
        sigwait(&w->sigs, &sig);
        avk_log(AVK_LOG_INFO, "router", "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        avk_router_stop(w->router);
        return NULL;
}

int avk_cmd_route(int argc, char **argv)
{
        avk_config_t *cfg = avk_cli_config_new();
        avk_router_t *router = NULL;
        avk_metrics_http_t *http = NULL;
        int rc = avk_cli_service_options(argc, argv, cfg, usage_text);
        if (rc >= 0)
                goto out;
        rc = AVK_EXIT_USAGE;
        /* Blocked before any thread starts, so every thread inherits the mask
         * and the waiter's sigwait() is where the signals land. */
        struct waiter w = {.router = NULL};
        avk_cli_block_stop_signals(&w.sigs);

        char err[4096];
        router = avk_router_new(cfg, err, sizeof(err));
        if (!router) {
                fprintf(stderr, "avvik route: %s\n", err);
                goto out;
        }
        if (avk_cli_metrics_http_start(cfg, "avvik route", "router.http.listen",
                                       "router.http.port.file", avk_router_metrics(router),
                                       avk_router_ready, router, &http) != 0)
                goto out;
        w.router = router;
        pthread_t waiter;
        if (pthread_create(&waiter, NULL, wait_for_signal, &w) != 0) {
                fprintf(stderr, "avvik route: cannot start the signal thread\n");
                goto out;
        }
        rc = AVK_EXIT_OK;
        if (avk_router_run(router, err, sizeof(err)) != 0) {
                fprintf(stderr, "avvik route: %s\n", err);
                rc = AVK_EXIT_KAFKA;
                pthread_kill(waiter, SIGTERM); /* wakes the waiter after a failure */
        }
        pthread_join(waiter, NULL);
out:
        avk_cli_metrics_http_stop(cfg, "router.http.port.file", http);
        avk_router_destroy(router);
        avk_config_destroy(cfg);
        return rc;
}
