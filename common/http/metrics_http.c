/* avk_metrics_http: see metrics_http.h. */
#include "common/http/metrics_http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "common/util/log.h"
#include "common/http/netaddr.h"

#define CONNECTION_TIMEOUT_S 10

struct avk_metrics_http {
        struct MHD_Daemon *daemon;
        avk_metrics_t *metrics;
        avk_metrics_http_ready_cb ready;
        void *opaque;
        int port;
};

/* Queues body (taken over, freed by libmicrohttpd) with status and type. */
static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, char *body,
                              const char *content_type)
{
        if (!body)
                return MHD_NO;
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        enum MHD_Result rc = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
        (void)version;
        (void)upload;
        (void)upload_size;
        (void)con_cls;
        avk_metrics_http_t *http = cls;
        const char *text = "text/plain; charset=utf-8";
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, strdup("method not allowed\n"),
                              text);
        if (strcmp(url, "/metrics") == 0)
                return answer(conn, MHD_HTTP_OK, avk_metrics_render(http->metrics),
                              AVK_METRICS_CONTENT_TYPE);
        if (strcmp(url, "/healthz") == 0)
                return answer(conn, MHD_HTTP_OK, strdup("serving\n"), text);
        if (strcmp(url, "/readyz") == 0) {
                char why[256] = "";
                int ready = !http->ready || http->ready(http->opaque, why, sizeof(why));
                char line[300];
                snprintf(line, sizeof(line), ready ? "ready\n" : "not ready: %s\n",
                         why[0] ? why : "starting");
                char *body = strdup(line);
                return answer(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body, text);
        }
        return answer(conn, MHD_HTTP_NOT_FOUND,
                      strdup("not found: this endpoint serves /metrics, /healthz, /readyz\n"),
                      text);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        (void)cls;
        char line[512];
        vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = '\0';
        avk_log(AVK_LOG_WARN, "metrics-http", "%s", line);
}

avk_metrics_http_t *avk_metrics_http_start(const char *listen, avk_metrics_t *metrics,
                                           avk_metrics_http_ready_cb ready, void *opaque,
                                           char *errstr, size_t errstr_size)
{
        struct sockaddr_storage addr = {0};
        if (avk_netaddr_resolve_listen("listen address", listen, &addr, errstr, errstr_size) != 0)
                return NULL;
        avk_metrics_http_t *http = calloc(1, sizeof(*http));
        if (!http) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        http->metrics = metrics;
        http->ready = ready;
        http->opaque = opaque;
        /* epoll, as the gateway and dashboard: select() fails on a
         * descriptor past 1024, which a notifier with many webhook
         * attempts (a socket and a resolver each) reaches. */
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
        if (addr.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        http->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, http, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, http,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
        if (!http->daemon) {
                snprintf(errstr, errstr_size,
                         "cannot listen on %s (address in use, or not this host's?)", listen);
                free(http);
                return NULL;
        }
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
        http->port = info ? info->port : 0;
        return http;
}

int avk_metrics_http_port(const avk_metrics_http_t *http)
{
        return http->port;
}

void avk_metrics_http_stop(avk_metrics_http_t *http)
{
        if (!http)
                return;
        MHD_stop_daemon(http->daemon);
        free(http);
}
