/*
 * avk_metrics_http: the small HTTP endpoint every avvik service runs beside
 * its work (configuration key <service>.http.listen), for Prometheus and for
 * the orchestrator's probes:
 *   GET /metrics  the service's registry in Prometheus text format
 *   GET /healthz  200 while the process serves (liveness)
 *   GET /readyz   200 when the service's ready() says so, else 503 with the reason
 * Served by the HTTP server (common/http/server.h) on a thread of its own, so
 * a busy or stuck service loop never delays a scrape. Any other path is 404;
 * methods other than GET and HEAD are 405.
 */
#ifndef AVK_METRICS_HTTP_H
#define AVK_METRICS_HTTP_H

#include <stddef.h>

#include "common/http/server.h"
#include "common/util/metrics.h"

typedef struct avk_metrics_http avk_metrics_http_t;

/** @brief Whether the service is ready (avk_httpd_ready_cb). */
typedef avk_httpd_ready_cb avk_metrics_http_ready_cb;

/**
 * @brief Starts serving metrics on listen ("host:port", "[address]:port"; port
 * 0 picks a free one, see avk_metrics_http_port()). metrics and opaque are not
 * owned and must outlive the endpoint; ready may be NULL (always ready).
 * @returns the endpoint, or NULL with the reason in errstr.
 */
avk_metrics_http_t *avk_metrics_http_start(const char *listen, avk_metrics_t *metrics,
                                           avk_metrics_http_ready_cb ready, void *opaque,
                                           char *errstr, size_t errstr_size);

/** @brief The TCP port the endpoint listens on. */
int avk_metrics_http_port(const avk_metrics_http_t *http);

/** @brief Stops serving and frees the endpoint. NULL is a no-op. */
void avk_metrics_http_stop(avk_metrics_http_t *http);

#endif
