/*
 * The services' /metrics, /healthz and /readyz endpoint (common/http/metrics_http.h)
 * set up from their configuration: <service>.http.listen, and a port file
 * for tests and scripts that listen on port 0 (as gateway.port.file).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util/log.h"

int avk_cli_metrics_http_start(const avk_config_t *cfg, const char *service, const char *listen_key,
                               const char *port_file_key, avk_metrics_t *metrics,
                               avk_metrics_http_ready_cb ready, void *opaque,
                               avk_metrics_http_t **http)
{
        *http = NULL;
        const char *listen = avk_config_get(cfg, listen_key);
        if (!listen)
                return 0;
        char err[512];
        *http = avk_metrics_http_start(listen, metrics, ready, opaque, err, sizeof(err));
        if (!*http) {
                fprintf(stderr, "%s: %s: %s\n", service, listen_key, err);
                return -1;
        }
        const char *port_file = port_file_key ? avk_config_get(cfg, port_file_key) : NULL;
        char port[16];
        snprintf(port, sizeof(port), "%d", avk_metrics_http_port(*http));
        if (port_file && avk_cli_write_atomically(port_file, port) != 0) {
                fprintf(stderr, "%s: %s: cannot write %s: %s\n", service, port_file_key, port_file,
                        strerror(errno));
                avk_metrics_http_stop(*http);
                *http = NULL;
                return -1;
        }
        avk_log(AVK_LOG_INFO, "metrics-http", "%s: /metrics, /healthz, /readyz on port %s", service,
                port);
        return 0;
}

void avk_cli_metrics_http_stop(const avk_config_t *cfg, const char *port_file_key,
                               avk_metrics_http_t *http)
{
        if (!http)
                return;
        const char *port_file = port_file_key ? avk_config_get(cfg, port_file_key) : NULL;
        if (port_file)
                unlink(port_file);
        avk_metrics_http_stop(http);
}
