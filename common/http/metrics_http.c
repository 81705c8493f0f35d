/* avk_metrics_http: see metrics_http.h; the server is common/http/server.h. */
#include "common/http/metrics_http.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/http/server.h"

struct avk_metrics_http {
        avk_httpd_t *httpd;
};

avk_metrics_http_t *avk_metrics_http_start(const char *listen, avk_metrics_t *metrics,
                                           avk_metrics_http_ready_cb ready, void *opaque,
                                           char *errstr, size_t errstr_size)
{
        avk_metrics_http_t *http = calloc(1, sizeof(*http));
        if (!http) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        struct avk_httpd_conf conf = {
            .listen = listen,
            .listen_key = "listen address",
            .name = "metrics endpoint",
            .not_found = "not found: this endpoint serves /metrics, /healthz, /readyz",
            .metrics = metrics,
            .ready = ready,
            .opaque = opaque,
        };
        if (!(http->httpd = avk_httpd_start(&conf, errstr, errstr_size))) {
                free(http);
                return NULL;
        }
        return http;
}

int avk_metrics_http_port(const avk_metrics_http_t *http)
{
        return (int)avk_httpd_port(http->httpd);
}

void avk_metrics_http_stop(avk_metrics_http_t *http)
{
        if (!http)
                return;
        avk_httpd_stop(http->httpd);
        free(http);
}
