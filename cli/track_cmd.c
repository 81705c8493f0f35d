/*
 * avvik track: runs the tracker (consumer/track/tracker.h) through the
 * service runner (cli/runner.h) until SIGINT or SIGTERM, with its /metrics,
 * /healthz and /readyz endpoint when tracker.http.listen is set; the tracker
 * then finishes the outputs in flight, commits and leaves its group.
 */
#include "cli/cli.h"
#include "cli/runner.h"
#include "common/util/log.h"
#include "consumer/track/tracker.h"

static const char usage_text[] =
    "usage: avvik track [-c FILE] [-X KEY=VALUE]\n"
    "Tracks every routed deviation (topic.routed) against the deadline policy\n"
    "(deadlines.file): acknowledgements, answers, rejections and disputes of topic.response,\n"
    "failed deliveries of topic.delivery.failed. Writes a DeviationStatus per change to\n"
    "topic.status, reminders before deadlines to topic.reminder and escalations up the\n"
    "ladder (holders from directory.file) to topic.escalated, with copies to each receiver's\n"
    "inbox topic, and what the reporting party is told of each change to topic.feedback (with\n"
    "a copy to its inbox topic; its unit and reply reference read from topic.reported).\n"
    "Runs until SIGINT or SIGTERM. See docs/tracker.md.\n" AVK_CLI_CONFIG_HELP;

static void *open_tracker(const avk_config_t *cfg, avk_metrics_t **metrics, char *errstr,
                          size_t errstr_size)
{
        avk_tracker_t *tracker = avk_tracker_new(cfg, NULL, NULL, errstr, errstr_size);
        if (!tracker)
                return NULL;
        *metrics = avk_tracker_metrics(tracker);
        if (avk_config_get(cfg, "tracker.clock.file"))
                avk_log(
                    AVK_LOG_WARN, "tracker",
                    "tracker.clock.file is set: processing time comes from a file (tests only)");
        return tracker;
}

static int run(void *tracker, char *errstr, size_t errstr_size)
{
        return avk_tracker_run(tracker, errstr, errstr_size);
}

static void stop(void *tracker)
{
        avk_tracker_stop(tracker);
}

static void close_tracker(void *tracker)
{
        avk_tracker_destroy(tracker);
}

int avk_cmd_track(int argc, char **argv)
{
        static const struct avk_cli_runner runner = {.command = "avvik track",
                                                     .component = "tracker",
                                                     .usage = usage_text,
                                                     .listen_key = "tracker.http.listen",
                                                     .open = open_tracker,
                                                     .run = run,
                                                     .stop = stop,
                                                     .ready = avk_tracker_ready,
                                                     .close = close_tracker};
        return avk_cli_runner_main(&runner, argc, argv);
}
