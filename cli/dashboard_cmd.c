/*
 * avvik dashboard: serves the patient-safety teams' page, its API and the
 * yearly follow-up report (consumer/dashboard/dashboard.h) until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util/log.h"
#include "consumer/dashboard/dashboard.h"

static const char usage_text[] =
    "usage: avvik dashboard [-c FILE] [-X KEY=VALUE]\n"
    "Reads topic.analysis from the beginning and serves on dashboard.listen (default\n"
    "127.0.0.1:8090) until SIGINT or SIGTERM:\n"
    "  GET /                          the dashboard (Swedish) for patient-safety teams\n"
    "  GET /api/sammanstallning.json  the figures; ?ar=YYYY for one year\n"
    "  GET /api/forsenade.json        the overdue deviations\n"
    "  GET /rapport/YYYY              the yearly follow-up report, HTML that prints to PDF\n"
    "  POST, DELETE /api/session       opens, ends a browser's session (a cookie)\n"
    "  GET /healthz /readyz /metrics\n"
    "Every route but the last three needs 'Authorization: Bearer TOKEN' of a role\n"
    "(dashboard.tokens.file; see 'avvik token --role') or a session's cookie.\n"
    "Documentation: docs/dashboard.md. Keys: 'avvik config' (dashboard.*).\n"
    "Exit: 0 stopped by a signal, 2 configuration error.\n" AVK_CLI_CONFIG_HELP;

int avk_cmd_dashboard(int argc, char **argv)
{
        avk_config_t *cfg = avk_cli_config_new();
        int rc = avk_cli_service_options(argc, argv, cfg, usage_text);
        if (rc >= 0)
                goto out;
        rc = AVK_EXIT_USAGE;
        /* Blocked before any thread starts, so every thread inherits the mask
         * and sigwait() below is where the signals land. */
        sigset_t sigs;
        avk_cli_block_stop_signals(&sigs);
        signal(SIGPIPE, SIG_IGN); /* a browser that hangs up must not kill the server */

        char err[1024];
        avk_dashboard_t *db = avk_dashboard_start(cfg, err, sizeof(err));
        if (!db) {
                fprintf(stderr, "avvik dashboard: %s\n", err);
                goto out;
        }
        const char *port_file = avk_config_get(cfg, "dashboard.port.file");
        char port[16];
        snprintf(port, sizeof(port), "%u", avk_dashboard_port(db));
        if (port_file && avk_cli_write_atomically(port_file, port) != 0) {
                fprintf(stderr, "avvik dashboard: dashboard.port.file: cannot write %s: %s\n",
                        port_file, strerror(errno));
                avk_dashboard_stop(db);
                goto out;
        }
        int sig;
        sigwait(&sigs, &sig);
        avk_log(AVK_LOG_INFO, "dashboard", "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        if (port_file)
                unlink(port_file);
        avk_dashboard_stop(db);
        rc = AVK_EXIT_OK;
out:
        avk_config_destroy(cfg);
        return rc;
}
