/*
 * avvik analyse: runs the analysis forwarder (consumer/analyse/analysis.h)
 * through the service runner (cli/runner.h) until SIGINT or SIGTERM; it then
 * commits what it finished and leaves its group.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/runner.h"
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

/* What avvik analyse runs: the forwarder and its metrics. */
struct analyse_cmd {
        avk_metrics_t *metrics;
        avk_analysis_t *analysis;
};

static void close_analysis(void *opaque)
{
        struct analyse_cmd *c = opaque;
        avk_analysis_destroy(c->analysis);
        avk_metrics_destroy(c->metrics);
        free(c);
}

static void *open_analysis(const avk_config_t *cfg, avk_metrics_t **metrics, char *errstr,
                           size_t errstr_size)
{
        struct analyse_cmd *c = calloc(1, sizeof(*c));
        if (!c || !(c->metrics = avk_metrics_new())) {
                free(c);
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        if (!(c->analysis = avk_analysis_new(cfg, c->metrics, errstr, errstr_size))) {
                close_analysis(c);
                return NULL;
        }
        *metrics = c->metrics;
        return c;
}

static int run(void *opaque, char *errstr, size_t errstr_size)
{
        struct analyse_cmd *c = opaque;
        return avk_analysis_run(c->analysis, errstr, errstr_size);
}

static void stop(void *opaque)
{
        struct analyse_cmd *c = opaque;
        avk_analysis_stop(c->analysis);
}

static int ready(void *opaque, char *why, size_t why_size)
{
        struct analyse_cmd *c = opaque;
        return avk_analysis_ready(c->analysis, why, why_size);
}

int avk_cmd_analyse(int argc, char **argv)
{
        static const struct avk_cli_runner runner = {.command = "avvik analyse",
                                                     .component = "analysis",
                                                     .usage = usage_text,
                                                     .listen_key = "analysis.http.listen",
                                                     .port_file_key = "analysis.http.port.file",
                                                     .open = open_analysis,
                                                     .run = run,
                                                     .stop = stop,
                                                     .ready = ready,
                                                     .close = close_analysis};
        return avk_cli_runner_main(&runner, argc, argv);
}
