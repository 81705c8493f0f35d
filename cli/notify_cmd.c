/*
 * avvik notify: runs the notifier (consumer/notify/notify.h) through the
 * service runner (cli/runner.h) until SIGINT or SIGTERM; the notifier then
 * commits what it finished and leaves its group.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/runner.h"
#include "common/contract/directory.h"
#include "common/util/metrics.h"
#include "consumer/notify/notify.h"

static const char usage_text[] =
    "usage: avvik notify [-c FILE] [-X KEY=VALUE]\n"
    "Delivers every DeviationRouted of topic.routed to its receiver (directory.file): with the\n"
    "deviation of topic.reported, to its inbox topic (both records as read) and to its webhook\n"
    "(signed with HMAC-SHA256, the deviation in the body); and every\n"
    "DeviationEscalated (topic.escalated) and DeadlineReminder (topic.reminder) to the webhook\n"
    "of its party or unit, and every DeviationFeedback (topic.feedback) to the webhook of the\n"
    "reporting party or unit; retries with backoff, parking failed attempts on topic.notify.retry\n"
    "so that they hold up no other delivery, and dead-letters what the retry budget does\n"
    "not deliver (topic.deadletter, and for a routed record a DeliveryFailed event on\n"
    "topic.delivery.failed). With notify.http.listen set it serves /metrics, /healthz and\n"
    "/readyz there. Runs until SIGINT or SIGTERM.\n"
    "See docs/notify.md.\n" AVK_CLI_CONFIG_HELP;

/* What avvik notify runs: the notifier and what it borrows. */
struct notify_cmd {
        avk_directory_t *dir;
        avk_metrics_t *metrics;
        avk_notify_t *notify;
};

static void close_notify(void *opaque)
{
        struct notify_cmd *c = opaque;
        avk_notify_destroy(c->notify);
        avk_metrics_destroy(c->metrics);
        avk_directory_destroy(c->dir);
        free(c);
}

static void *open_notify(const avk_config_t *cfg, avk_metrics_t **metrics, char *errstr,
                         size_t errstr_size)
{
        const char *dir_file = avk_config_get(cfg, "directory.file");
        if (!dir_file) {
                snprintf(errstr, errstr_size, "directory.file is required");
                return NULL;
        }
        struct notify_cmd *c = calloc(1, sizeof(*c));
        if (!c) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        struct avk_errors errs;
        avk_errors_init(&errs);
        if (!(c->dir = avk_directory_load(dir_file, 0, &errs))) {
                for (size_t i = 0; i < errs.cnt; i++)
                        fprintf(stderr, "avvik notify: %s\n", errs.msg[i]);
                goto fail;
        }
        if (!(c->metrics = avk_metrics_new())) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (!(c->notify = avk_notify_new(cfg, c->dir, c->metrics, errstr, errstr_size)))
                goto fail;
        *metrics = c->metrics;
        return c;
fail:
        close_notify(c);
        return NULL;
}

static int run(void *opaque, char *errstr, size_t errstr_size)
{
        struct notify_cmd *c = opaque;
        return avk_notify_run(c->notify, errstr, errstr_size);
}

static void stop(void *opaque)
{
        struct notify_cmd *c = opaque;
        avk_notify_stop(c->notify);
}

static int ready(void *opaque, char *why, size_t why_size)
{
        struct notify_cmd *c = opaque;
        return avk_notify_ready(c->notify, why, why_size);
}

int avk_cmd_notify(int argc, char **argv)
{
        static const struct avk_cli_runner runner = {.command = "avvik notify",
                                                     .component = "notify",
                                                     .usage = usage_text,
                                                     .listen_key = "notify.http.listen",
                                                     .port_file_key = "notify.http.port.file",
                                                     .open = open_notify,
                                                     .run = run,
                                                     .stop = stop,
                                                     .ready = ready,
                                                     .close = close_notify};
        return avk_cli_runner_main(&runner, argc, argv);
}
