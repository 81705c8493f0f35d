/*
 * avk_metrics: a small Prometheus registry - counters, gauges and histograms
 * with fixed buckets, each a family of series told apart by a small fixed set
 * of labels - rendered in the text exposition format (version 0.0.4) for a
 * /metrics endpoint.
 *
 * Updates are lock-free (C11 atomics) from any thread; a series is created
 * under the registry's lock the first time its label values are asked for,
 * and a family holds at most AVK_METRICS_MAX_SERIES of them, so a label fed
 * from outside cannot grow memory without bound. Label values name routes,
 * status codes, parties, topics - never patient data (docs/domain.md,
 * "Patient data").
 *
 *   avk_metrics_t *m = avk_metrics_new();
 *   avk_metric_family_t *req = avk_metrics_counter(m, "avk_requests_total", "Requests.",
 *                                                  (const char *[]){"code", NULL});
 *   avk_metric_add(avk_metrics_series(req, (const char *[]){"202"}), 1);
 *   char *text = avk_metrics_render(m);
 */
#ifndef AVK_METRICS_H
#define AVK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define AVK_METRICS_MAX_FAMILIES 64
#define AVK_METRICS_MAX_LABELS   4   /**< label names per family */
#define AVK_METRICS_MAX_SERIES   256 /**< label value combinations per family */
#define AVK_METRICS_MAX_BUCKETS  16  /**< histogram upper bounds, +Inf not counted */

/** Upper bounds in seconds for request latencies, 5 ms to 10 s. */
#define AVK_METRICS_LATENCY_BUCKETS                                                                \
        (const double[])                                                                           \
        {                                                                                          \
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10                            \
        }
#define AVK_METRICS_LATENCY_BUCKET_CNT 11

/** The Content-Type of avk_metrics_render()'s text. */
#define AVK_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct avk_metrics avk_metrics_t;
typedef struct avk_metric_family avk_metric_family_t;
typedef struct avk_metric avk_metric_t; /**< one series of a family */

/** @brief An empty registry, for avk_metrics_destroy(). NULL when out of memory. */
avk_metrics_t *avk_metrics_new(void);

/** @brief Frees the registry with every family and series it holds. */
void avk_metrics_destroy(avk_metrics_t *metrics);

/**
 * @brief Registers a counter family.
 * @param label_names NULL-terminated, at most AVK_METRICS_MAX_LABELS; NULL for none.
 * Strings are copied.
 * @returns the family (owned by the registry), or NULL when a name is not a
 * valid Prometheus name, the name is taken by another family, the registry is
 * full or memory ran out. Registering a family again - the same name, type
 * and labels, as each server on one registry does - gives the family there.
 */
avk_metric_family_t *avk_metrics_counter(avk_metrics_t *metrics, const char *name, const char *help,
                                         const char *const *label_names);

/** @brief Registers a gauge family; as avk_metrics_counter(). */
avk_metric_family_t *avk_metrics_gauge(avk_metrics_t *metrics, const char *name, const char *help,
                                       const char *const *label_names);

/**
 * @brief Registers a histogram family with fixed buckets.
 * @param bounds upper bounds, strictly increasing, at most AVK_METRICS_MAX_BUCKETS
 * (+Inf is implied); copied.
 * @returns as avk_metrics_counter(), and NULL for bad bounds.
 */
avk_metric_family_t *avk_metrics_histogram(avk_metrics_t *metrics, const char *name,
                                           const char *help, const char *const *label_names,
                                           const double *bounds, size_t bound_cnt);

/**
 * @brief The series of family with these label values (one per label name, in
 * order; NULL for a family without labels), created at first use. Values are
 * copied.
 * @returns the series (owned by the registry), or NULL when family is NULL,
 * a value is NULL, the family holds AVK_METRICS_MAX_SERIES already or memory
 * ran out. Every update function accepts NULL and does nothing.
 */
avk_metric_t *avk_metrics_series(avk_metric_family_t *family, const char *const *label_values);

/** @brief Adds delta to a counter (delta >= 0) or gauge. */
void avk_metric_add(avk_metric_t *series, int64_t delta);

/**
 * @brief Sets a gauge - or a counter that mirrors a monotonic count kept
 * elsewhere (a library's statistics), read when the metrics are rendered.
 */
void avk_metric_set(avk_metric_t *series, int64_t value);

/** @brief Records one observation in a histogram. */
void avk_metric_observe(avk_metric_t *series, double value);

/** @brief The current value of a counter or gauge (0 for NULL). */
int64_t avk_metric_value(const avk_metric_t *series);

/**
 * @brief Every family in registration order, in the Prometheus text format:
 * "# HELP" and "# TYPE" lines, then one line per series (histograms: cumulative
 * _bucket lines with le, _sum and _count).
 * @returns a malloc'd string for the caller to free; NULL when out of memory.
 */
char *avk_metrics_render(avk_metrics_t *metrics);

#endif
