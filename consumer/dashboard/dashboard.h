/*
 * avk_dashboard: the patient-safety teams' web page (in Swedish) and the
 * yearly follow-up report, served by libmicrohttpd (docs/dashboard.md):
 *   GET /                          the page (index.html, app.js, style.css)
 *   GET /api/sammanstallning.json  the figures, of one year with ?ar=YYYY
 *   GET /api/forsenade.json        the overdue deviations
 *   GET /rapport/YYYY              the yearly follow-up report (HTML for print)
 *   GET /metrics /healthz /readyz
 *
 * A consumer thread assigns every partition of topic.analysis from the
 * beginning (no group: every instance needs every record), rebuilds the
 * figures in memory (consumer/dashboard/aggregate.h) and keeps following the topic.
 * The instance is ready once every partition has been read to its end.
 *
 * Nothing patient-related is served: the analysis stream carries no
 * identity, and of its free text only a cut excerpt of the scrubbed
 * description is shown - as text, never as markup. Every answer carries a
 * Content-Security-Policy that allows scripts from the server alone.
 */
#ifndef AVK_DASHBOARD_H
#define AVK_DASHBOARD_H

#include <stddef.h>

#include "common/util/config.h"

/** A file compiled into the binary (cmake/embed.cmake, avk_embed_files). */
struct avk_embedded_file {
        const char *name; /**< file name, e.g. "app.js" */
        const char *data; /**< its bytes, NUL-terminated */
        size_t len;       /**< without the NUL */
};

/** The files of the dashboard/ folder. */
extern const struct avk_embedded_file avk_dashboard_files[];
extern const size_t avk_dashboard_files_cnt;

typedef struct avk_dashboard avk_dashboard_t;

/**
 * @brief Starts reading topic.analysis and serving on dashboard.listen.
 * @returns the dashboard, or NULL with the reason (naming the key) in errstr.
 */
avk_dashboard_t *avk_dashboard_start(const avk_config_t *cfg, char *errstr, size_t errstr_size);

/** @brief The TCP port it listens on (dashboard.listen may ask for port 0). */
unsigned avk_dashboard_port(const avk_dashboard_t *db);

/** @brief 1 once every partition of topic.analysis has been read to its end once. */
int avk_dashboard_loaded(avk_dashboard_t *db);

/** @brief Stops serving and reading, and frees the dashboard. NULL is a no-op. */
void avk_dashboard_stop(avk_dashboard_t *db);

#endif
