/*
 * avvik route: runs the router (consumer/route/router.h) through the service
 * runner (cli/runner.h) until SIGINT or SIGTERM; the router then finishes the
 * outputs in flight, commits and leaves its group.
 */
#include "cli/cli.h"
#include "cli/runner.h"
#include "consumer/route/router.h"

static const char usage_text[] =
    "usage: avvik route [-c FILE] [-X KEY=VALUE]\n"
    "Routes every deviation of topic.reported to the responsible party (routing.rules.file,\n"
    "directory.file) and re-routes after wrong-receiver responses of topic.response, writing\n"
    "DeviationRouted events to topic.routed (avvik notify delivers them to webhooks and inbox\n"
    "topics).\n"
    "Runs until SIGINT or SIGTERM. With router.http.listen set it serves /metrics, /healthz\n"
    "and /readyz there. See docs/router.md.\n" AVK_CLI_CONFIG_HELP;

static void *open_router(const avk_config_t *cfg, avk_metrics_t **metrics, char *errstr,
                         size_t errstr_size)
{
        avk_router_t *router = avk_router_new(cfg, errstr, errstr_size);
        if (router)
                *metrics = avk_router_metrics(router);
        return router;
}

static int run(void *router, char *errstr, size_t errstr_size)
{
        return avk_router_run(router, errstr, errstr_size);
}

static void stop(void *router)
{
        avk_router_stop(router);
}

static void close_router(void *router)
{
        avk_router_destroy(router);
}

int avk_cmd_route(int argc, char **argv)
{
        static const struct avk_cli_runner runner = {.command = "avvik route",
                                                     .component = "router",
                                                     .usage = usage_text,
                                                     .listen_key = "router.http.listen",
                                                     .port_file_key = "router.http.port.file",
                                                     .open = open_router,
                                                     .run = run,
                                                     .stop = stop,
                                                     .ready = avk_router_ready,
                                                     .close = close_router};
        return avk_cli_runner_main(&runner, argc, argv);
}
