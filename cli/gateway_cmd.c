/*
 * avvik gateway: runs the HTTP intake (producer/gateway/gateway.h) until SIGINT or
 * SIGTERM, then stops taking connections, answers every request in
 * progress and flushes the reporter before it exits.
 *
 * avvik token: makes a bearer token for the gateway (bound to a party) or the
 * dashboard (bound to a role) and the line of the tokens file that admits
 * it; the token itself is never stored.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util/log.h"
#include "common/http/auth.h"
#include "consumer/dashboard/access.h"
#include "producer/gateway/gateway.h"

static const char gateway_usage[] =
    "usage: avvik gateway [-c FILE] [-X KEY=VALUE]\n"
    "Serves the HTTP intake on gateway.listen until SIGINT or SIGTERM:\n"
    "  POST /v1/deviations                 a deviation (application/json), or a FHIR R4\n"
    "                                      AdverseEvent (application/fhir+json)\n"
    "  POST /v1/deviations/{id}/responses  a response to a deviation\n"
    "  GET  /healthz /readyz /metrics\n"
    "Requests to /v1 carry 'Authorization: Bearer TOKEN' (gateway.tokens.file; see\n"
    "'avvik token'). Documentation: docs/gateway.md. Keys: 'avvik config' (gateway.*).\n"
    "Exit: 0 stopped by a signal, 2 configuration error.\n" AVK_CLI_CONFIG_HELP;

static const char token_usage[] =
    "usage: avvik token PARTY [LABEL]\n"
    "       avvik token --role ROLE [LABEL]\n"
    "Makes a random bearer token (32 bytes from the system's CSPRNG, base64url) bound to\n"
    "PARTY (\"VGR\", a municipality code, or DESK: the county's triage desk), for the\n"
    "gateway, or to a dashboard ROLE (analyst: everything; figures:\n"
    "/api/sammanstallning.json alone), and prints two\n"
    "lines: the token, for the client, and the line to add to gateway.tokens.file or\n"
    "dashboard.tokens.file (its SHA-256, the party or role, and LABEL, which names the\n"
    "client in logs).\n"
    "The token is shown once: keep it in the client's secret store.\n";

int avk_cmd_gateway(int argc, char **argv)
{
        avk_config_t *cfg = avk_cli_config_new();
        int rc = avk_cli_service_options(argc, argv, cfg, gateway_usage);
        if (rc >= 0)
                goto out;
        rc = AVK_EXIT_USAGE;
        /* Blocked before any thread starts, so every thread inherits the mask
         * and sigwait() below is where the signals land. */
        sigset_t sigs;
        avk_cli_block_stop_signals(&sigs);
        /* A client that hangs up must not kill the server. */
        signal(SIGPIPE, SIG_IGN);

        char err[1024];
        avk_gateway_t *gw = avk_gateway_start(cfg, err, sizeof(err));
        if (!gw) {
                fprintf(stderr, "avvik gateway: %s\n", err);
                goto out;
        }
        const char *port_file = avk_config_get(cfg, "gateway.port.file");
        char port[16];
        snprintf(port, sizeof(port), "%u", avk_gateway_port(gw));
        if (port_file && avk_cli_write_atomically(port_file, port) != 0) {
                fprintf(stderr, "avvik gateway: gateway.port.file: cannot write %s: %s\n",
                        port_file, strerror(errno));
                avk_gateway_stop(gw);
                goto out;
        }
        int sig;
        sigwait(&sigs, &sig);
        avk_log(AVK_LOG_INFO, "gateway", "%s: finishing the requests in progress",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
        if (port_file)
                unlink(port_file);
        avk_gateway_stop(gw);
        avk_log(AVK_LOG_INFO, "gateway", "stopped");
        rc = AVK_EXIT_OK;
out:
        avk_config_destroy(cfg);
        return rc;
}

int avk_cmd_token(int argc, char **argv)
{
        if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
                fputs(token_usage, stdout);
                return AVK_EXIT_OK;
        }
        int role = argc > 1 && strcmp(argv[1], "--role") == 0;
        argc -= role;
        argv += role;
        if (argc < 2 || argc > 3) {
                fputs(token_usage, stderr);
                return AVK_EXIT_USAGE;
        }
        char reason[256];
        if ((role ? avk_access_role_parse : avk_gateway_principal_parse)(argv[1], reason,
                                                                         sizeof(reason)) < 0) {
                fprintf(stderr, "avvik token: %s: %s\n", role ? "ROLE" : "PARTY", reason);
                return AVK_EXIT_USAGE;
        }
        const char *label = argc == 3 ? argv[2] : "";
        if (strlen(label) > AVK_AUTH_LABEL_MAX || strpbrk(label, "\r\n")) {
                fprintf(stderr, "avvik token: LABEL: one line of at most %d characters\n",
                        AVK_AUTH_LABEL_MAX);
                return AVK_EXIT_USAGE;
        }
        char token[AVK_AUTH_TOKEN_SIZE], hex[AVK_AUTH_HEX_SIZE];
        if (avk_auth_token_new(token) != 0) {
                fprintf(stderr, "avvik token: the random generator failed\n");
                return AVK_EXIT_USAGE;
        }
        avk_auth_hash_hex(token, strlen(token), hex);
        printf("%s\n%s %s%s%s\n", token, hex, argv[1], *label ? " " : "", label);
        return AVK_EXIT_OK;
}
