/*
 * avk_dashboard: see dashboard.h.
 *
 * Two threads share the aggregate under one mutex: the consumer adds
 * records, libmicrohttpd's threads compute answers. An answer is one pass
 * over the deviations (a few milliseconds per hundred thousand), so
 * nothing is cached and every answer is as fresh as the stream.
 *
 * The HTTP server (common/http/server.h) serves the probes and /metrics,
 * and the pages and API through the route table of listen_http().
 */
#include "consumer/dashboard/dashboard.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>

#include "common/util/clock.h"
#include "common/contract/codec.h"
#include "common/util/env.h"
#include "common/util/hash.h"
#include "common/kafka/follow.h"
#include "common/kafka/kafka.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "common/http/server.h"
#include "consumer/dashboard/access.h"
#include "consumer/dashboard/aggregate.h"
#include "consumer/dashboard/followup.h"

#define CONNECTION_TIMEOUT_S 30
#define HTTP_THREADS         2
#define REPORT_CSS           "rapport.css"
#define LOGIN_PAGE           "login.html"
#define SESSION_COOKIE       "avk_session"
#define CHALLENGE            "Bearer realm=\"avvik-dashboard\""
#define CHALLENGE_INVALID    CHALLENGE ", error=\"invalid_token\""
#define CONTENT_JSON         "application/json; charset=utf-8"
#define CONTENT_HTML         "text/html; charset=utf-8"
#define CONTENT_TEXT         "text/plain; charset=utf-8"

/* The page may run scripts and load styles from this server only, and
 * fetch only from it; nothing else, and no frame may hold it. */
#define PAGE_CSP                                                                                   \
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "                \
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

struct avk_dashboard {
        const avk_config_t *cfg;
        pthread_mutex_t lock; /* agg */
        avk_aggregate_t *agg;
        size_t overdue_max;
        avk_clock_t clock;
        avk_metrics_t *metrics;
        avk_metric_family_t *requests;
        avk_metric_t *applied, *ignored, *skipped, *deviations, *loaded_gauge;
        char report_csp[256]; /* names the hash of the report's inline style sheet */
        const struct avk_embedded_file *report_css;
        char login_csp[384]; /* names the hashes of the login page's script and style */
        const struct avk_embedded_file *login_page;
        avk_access_t *access;
        int64_t session_ttl_s;
        avk_httpd_t *httpd;
        /* The consumer. */
        pthread_t thread;
        int started;
        atomic_int stopping, loaded;
        const char *topic;
        struct avk_env env;
        avk_codec_t *codec;
        rd_kafka_t *rk;
};

/* Overdue is judged on processing time: the system's, or dashboard.clock.file's. */
static int64_t now_ms(avk_dashboard_t *db)
{
        return avk_clock_now(&db->clock);
}

/* A request's own state (avk_httpd_req_state): its Set-Cookie, which must
 * outlive the handler. */
struct dash_req {
        int role; /* of the bearer token, for POST /api/session */
        char set_cookie[160];
};

static const struct avk_embedded_file *embedded(const char *name)
{
        for (size_t i = 0; i < avk_dashboard_files_cnt; i++) {
                if (strcmp(avk_dashboard_files[i].name, name) == 0)
                        return &avk_dashboard_files[i];
        }
        return NULL;
}

/* ---- the consumer ------------------------------------------------------- */

/* topic.analysis into the aggregates (common/kafka/follow.h): each record applied,
 * or ignored when older than the deviation's view; one the aggregate cannot
 * use is skipped and counted - the stream's producer owns its dead letters. */
static int apply_record(void *opaque, avro_value_t *value, char *errstr, size_t errstr_size)
{
        avk_dashboard_t *db = opaque;
        pthread_mutex_lock(&db->lock);
        int rc = avk_aggregate_add(db->agg, value, errstr, errstr_size);
        avk_metric_set(db->deviations, (int64_t)avk_aggregate_size(db->agg));
        pthread_mutex_unlock(&db->lock);
        if (rc >= 0)
                avk_metric_add(rc == 1 ? db->applied : db->ignored, 1);
        return rc;
}

static void count_skipped(void *opaque)
{
        avk_dashboard_t *db = opaque;
        avk_metric_add(db->skipped, 1);
}

static void mark_loaded(void *opaque)
{
        avk_dashboard_t *db = opaque;
        atomic_store(&db->loaded, 1);
        avk_metric_set(db->loaded_gauge, 1);
        avk_log(AVK_LOG_INFO, "dashboard", "%s read: %lld deviations", db->topic,
                (long long)avk_metric_value(db->deviations));
}

static void *consume(void *arg)
{
        avk_dashboard_t *db = arg;
        char err[512];
        struct avk_follow follow = {
            .rk = db->rk,
            .codec = db->codec,
            .schema = avk_env_topic_schema(&db->env, db->topic, err, sizeof(err)),
            .topic = db->topic,
            .component = "dashboard",
            .stopping = &db->stopping,
            .opaque = db,
            .apply = apply_record,
            .skipped = count_skipped,
            .loaded = mark_loaded,
        };
        avk_follow_run(&follow);
        return NULL;
}

static int start_consumer(avk_dashboard_t *db, char *errstr, size_t errstr_size)
{
        db->topic = avk_config_get(db->cfg, "topic.analysis");
        if (avk_env_open(&db->env, db->cfg, errstr, errstr_size) != 0)
                return -1;
        if (!avk_env_topic_schema(&db->env, db->topic, errstr, errstr_size))
                return -1;
        if (!(db->codec = avk_codec_new(db->env.catalog, db->env.registry))) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        rd_kafka_conf_t *conf = avk_kafka_conf(db->cfg, errstr, errstr_size);
        if (!conf)
                return -1;
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        /* The group id is never joined (partitions are assigned): it only
         * names the client in the broker's logs. */
        db->rk = avk_kafka_consumer_new(conf, "avvik-dashboard", errstr, errstr_size);
        if (!db->rk) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        if (pthread_create(&db->thread, NULL, consume, db) != 0) {
                snprintf(errstr, errstr_size, "cannot start the consumer thread");
                return -1;
        }
        db->started = 1;
        return 0;
}

/* ---- answers ------------------------------------------------------------ */

static void answer_text(avk_httpd_req_t *req, unsigned status, const char *text)
{
        char *body = strdup(text);
        avk_httpd_answer(req, status, CONTENT_TEXT, body, body ? strlen(body) : 0);
}

/* A year "2027": four digits, 1970..2199 (the aggregate's range). 0 when not. */
static int parse_year(const char *s)
{
        if (!s || strlen(s) != 4 || strspn(s, "0123456789") != 4)
                return 0;
        int year = atoi(s);
        return year >= 1970 && year <= 2199 ? year : 0;
}

/* ---- who may read (consumer/dashboard/access.h) -------------------------- */

/* Sessions age on monotonic time, never on dashboard.clock.file's. */
static int64_t session_now_ms(void)
{
        return avk_clock_mono_ns() / 1000000;
}

/* The session id of the request's Cookie header, or NULL. */
static const char *session_cookie(avk_httpd_req_t *req, size_t *len)
{
        const char *h = avk_httpd_req_header(req, MHD_HTTP_HEADER_COOKIE);
        for (const char *p = h; p && *p; p += strcspn(p, ";"), p += strspn(p, "; ")) {
                if (strncmp(p, SESSION_COOKIE "=", sizeof(SESSION_COOKIE)) == 0) {
                        p += sizeof(SESSION_COOKIE);
                        *len = strcspn(p, "; ");
                        return p;
                }
        }
        return NULL;
}

/* 401 with the Bearer challenge; a page's is the login page (the browser's
 * way in), every other a line of text. -1, for the hooks. */
static int unauthorized(avk_dashboard_t *db, avk_httpd_req_t *req, int page, const char *challenge,
                        const char *text)
{
        avk_httpd_req_add_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
        if (page) {
                avk_httpd_req_add_header(req, "Content-Security-Policy", db->login_csp);
                avk_httpd_answer_static(req, MHD_HTTP_UNAUTHORIZED, CONTENT_HTML,
                                        db->login_page->data, db->login_page->len);
        } else {
                answer_text(req, MHD_HTTP_UNAUTHORIZED, text);
        }
        return -1;
}

/* The role of the request's bearer token, or else of its session cookie;
 * -1 after a 401. A presented token that is unknown is refused even when a
 * session cookie comes with it. */
static int request_role(avk_dashboard_t *db, avk_httpd_req_t *req, int page, int sessions)
{
        const char *h = avk_httpd_req_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
        size_t len = 0;
        if (h) {
                const char *token = avk_auth_bearer(h, &len);
                int role = token && len ? avk_access_token_role(db->access, token, len) : -1;
                if (role < 0)
                        return unauthorized(db, req, page, CHALLENGE_INVALID,
                                            "authentication failed: unknown bearer token\n");
                return role;
        }
        const char *id = sessions ? session_cookie(req, &len) : NULL;
        int role = id ? avk_access_session_role(db->access, id, len, session_now_ms()) : -1;
        if (role >= 0)
                return role;
        return unauthorized(db, req, page, CHALLENGE,
                            id ? "authentication required: the session has ended; present the "
                                 "token again\n"
                               : "authentication required: Authorization: Bearer <token>, or the "
                                 "session cookie of POST /api/session\n");
}

/* 0 when role is analyst, else -1 after a 403. */
static int permit_analyst(avk_httpd_req_t *req, int role)
{
        if (role == AVK_ROLE_ANALYST)
                return 0;
        char text[128];
        snprintf(text, sizeof(text), "forbidden: the role %s may not read this; it needs analyst\n",
                 avk_access_role_name(role));
        answer_text(req, MHD_HTTP_FORBIDDEN, text);
        return -1;
}

/* The hooks of the routes (avk_httpd_auth_cb). */
static int auth_page(avk_httpd_req_t *req, void *opaque)
{
        int role = request_role(opaque, req, 1, 1);
        return role < 0 ? -1 : permit_analyst(req, role);
}

static int auth_analyst(avk_httpd_req_t *req, void *opaque)
{
        int role = request_role(opaque, req, 0, 1);
        return role < 0 ? -1 : permit_analyst(req, role);
}

/* Any role. */
static int auth_any(avk_httpd_req_t *req, void *opaque)
{
        return request_role(opaque, req, 0, 1) < 0 ? -1 : 0;
}

/* A session is opened with the token alone, not with another session. */
static int auth_token(avk_httpd_req_t *req, void *opaque)
{
        if (!avk_httpd_req_header(req, MHD_HTTP_HEADER_AUTHORIZATION))
                return unauthorized(opaque, req, 0, CHALLENGE,
                                    "authentication required: Authorization: Bearer <token>\n");
        struct dash_req *state = avk_httpd_req_state(req);
        return (state->role = request_role(opaque, req, 0, 0)) < 0 ? -1 : 0;
}

/* POST /api/session: a session of the token's role, in a cookie the page's
 * script cannot read (HttpOnly), sent to this site alone (SameSite=Strict)
 * and over TLS alone when served so (Secure). */
static void session_open(avk_httpd_req_t *req, void *opaque)
{
        avk_dashboard_t *db = opaque;
        struct dash_req *state = avk_httpd_req_state(req);
        char id[AVK_ACCESS_SESSION_SIZE], text[32];
        if (avk_access_session_open(db->access, state->role, session_now_ms(), id) != 0) {
                answer_text(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "no random bytes for a session\n");
                return;
        }
        snprintf(state->set_cookie, sizeof(state->set_cookie),
                 SESSION_COOKIE "=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s", id,
                 (long long)db->session_ttl_s, avk_httpd_tls(db->httpd) ? "; Secure" : "");
        avk_httpd_req_add_header(req, MHD_HTTP_HEADER_SET_COOKIE, state->set_cookie);
        snprintf(text, sizeof(text), "%s\n", avk_access_role_name(state->role));
        answer_text(req, MHD_HTTP_OK, text);
}

/* DELETE /api/session: ends the request's session and clears its cookie. */
static void session_close(avk_httpd_req_t *req, void *opaque)
{
        avk_dashboard_t *db = opaque;
        size_t len;
        const char *id = session_cookie(req, &len);
        if (id)
                avk_access_session_close(db->access, id, len);
        avk_httpd_req_add_header(req, MHD_HTTP_HEADER_SET_COOKIE,
                                 SESSION_COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
        answer_text(req, MHD_HTTP_OK, "session ended\n");
}

static void summary(avk_httpd_req_t *req, void *opaque)
{
        avk_dashboard_t *db = opaque;
        const char *ar = avk_httpd_req_arg(req, "ar");
        int year = ar ? parse_year(ar) : 0;
        if (ar && !year) {
                avk_httpd_error(req, MHD_HTTP_BAD_REQUEST,
                                "ar: expected a year of four digits, 1970 to 2199", NULL);
                return;
        }
        pthread_mutex_lock(&db->lock);
        json_t *doc = avk_aggregate_summary(db->agg, year, now_ms(db));
        pthread_mutex_unlock(&db->lock);
        avk_httpd_answer_json(req, MHD_HTTP_OK, doc);
}

static void overdue(avk_httpd_req_t *req, void *opaque)
{
        avk_dashboard_t *db = opaque;
        pthread_mutex_lock(&db->lock);
        json_t *doc = avk_aggregate_overdue(db->agg, now_ms(db), db->overdue_max);
        pthread_mutex_unlock(&db->lock);
        avk_httpd_answer_json(req, MHD_HTTP_OK, doc);
}

static void report(avk_httpd_req_t *req, void *opaque)
{
        avk_dashboard_t *db = opaque;
        int year = parse_year(avk_httpd_req_param(req, "year"));
        if (!year) {
                answer_text(req, MHD_HTTP_NOT_FOUND,
                            "not found: the report is /rapport/YYYY, a year 1970 to 2199\n");
                return;
        }
        int64_t now = now_ms(db);
        pthread_mutex_lock(&db->lock);
        json_t *s = avk_aggregate_summary(db->agg, year, now);
        json_t *o = avk_aggregate_overdue(db->agg, now, db->overdue_max);
        pthread_mutex_unlock(&db->lock);
        char err[256];
        char *page =
            s && o ? avk_followup_html(s, o, db->report_css->data, err, sizeof(err)) : NULL;
        json_decref(s);
        json_decref(o);
        if (!page) {
                answer_text(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
                return;
        }
        avk_httpd_req_add_header(req, "Content-Security-Policy", db->report_csp);
        avk_httpd_answer(req, MHD_HTTP_OK, CONTENT_HTML, page, strlen(page));
}

static void static_file(avk_httpd_req_t *req, void *opaque)
{
        (void)opaque;
        static const struct {
                const char *url, *file, *type;
        } files[] = {
            {"/", "index.html", CONTENT_HTML},
            {"/index.html", "index.html", CONTENT_HTML},
            {"/app.js", "app.js", "text/javascript; charset=utf-8"},
            {"/style.css", "style.css", "text/css; charset=utf-8"},
            {"/favicon.svg", "favicon.svg", "image/svg+xml"},
        };
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                if (strcmp(avk_httpd_req_path(req), files[i].url) != 0)
                        continue;
                const struct avk_embedded_file *f = embedded(files[i].file);
                avk_httpd_answer_static(req, MHD_HTTP_OK, files[i].type, f->data, f->len);
                return;
        }
}

static int ready(void *opaque, char *why, size_t why_size)
{
        avk_dashboard_t *db = opaque;
        if (atomic_load(&db->loaded))
                return 1;
        snprintf(why, why_size, "reading topic.analysis from the beginning");
        return 0;
}

/* Every answered request, by route and status code. */
static void count_request(avk_httpd_req_t *req, void *opaque)
{
        avk_dashboard_t *db = opaque;
        unsigned status = avk_httpd_req_status(req);
        char code[16];
        snprintf(code, sizeof(code), "%u", status);
        if (status)
                avk_metric_add(avk_metrics_series(db->requests,
                                                  (const char *[]){avk_httpd_req_label(req), code}),
                               1);
}

/* ---- start and stop ----------------------------------------------------- */

static int register_metrics(avk_dashboard_t *db)
{
        avk_metrics_t *r = db->metrics;
        static const char *const no_labels[] = {NULL};
        db->requests = avk_metrics_counter(r, "avk_dashboard_requests_total",
                                           "HTTP requests answered, by route and status code.",
                                           (const char *[]){"route", "code", NULL});
        avk_metric_family_t *records = avk_metrics_counter(
            r, "avk_dashboard_records_total",
            "AnalysisRecords read: applied (the deviation's current view), ignored (older than "
            "the view held), skipped (not usable).",
            (const char *[]){"outcome", NULL});
        db->applied = avk_metrics_series(records, (const char *[]){"applied"});
        db->ignored = avk_metrics_series(records, (const char *[]){"ignored"});
        db->skipped = avk_metrics_series(records, (const char *[]){"skipped"});
        db->deviations =
            avk_metrics_series(avk_metrics_gauge(r, "avk_dashboard_deviations",
                                                 "Deviations held in memory.", no_labels),
                               NULL);
        db->loaded_gauge = avk_metrics_series(
            avk_metrics_gauge(r, "avk_dashboard_loaded",
                              "1 once topic.analysis has been read to its end.", no_labels),
            NULL);
        return db->requests && db->applied && db->ignored && db->skipped && db->deviations &&
                       db->loaded_gauge
                   ? 0
                   : -1;
}

#define B64_SHA256_SIZE 45 /* base64 of 32 bytes and its NUL */

/* The base64 SHA-256 of len bytes, for a CSP's 'sha256-...'; -1 when none. */
static int csp_hash(const char *data, size_t len, char b64[B64_SHA256_SIZE])
{
        unsigned char digest[32];
        if (avk_hash_sha256_digest(data, len, digest) != 0)
                return -1;
        EVP_EncodeBlock((unsigned char *)b64, digest, (int)sizeof(digest));
        return 0;
}

/* The hash of the text between open and the next "</" in page. */
static int inline_hash(const struct avk_embedded_file *page, const char *open,
                       char b64[B64_SHA256_SIZE])
{
        const char *start = strstr(page->data, open);
        const char *end = start ? strstr(start, "</") : NULL;
        return end ? csp_hash(start + strlen(open), (size_t)(end - start) - strlen(open), b64) : -1;
}

/* The report's CSP allows its one style sheet by hash; the login page's its
 * one script and style sheet, and fetches from this server. */
static int policies(avk_dashboard_t *db)
{
        char css[B64_SHA256_SIZE], script[B64_SHA256_SIZE], style[B64_SHA256_SIZE];
        db->report_css = embedded(REPORT_CSS);
        db->login_page = embedded(LOGIN_PAGE);
        if (!db->report_css || !db->login_page ||
            csp_hash(db->report_css->data, db->report_css->len, css) != 0 ||
            inline_hash(db->login_page, "<script>", script) != 0 ||
            inline_hash(db->login_page, "<style>", style) != 0)
                return -1;
        snprintf(db->report_csp, sizeof(db->report_csp),
                 "default-src 'none'; style-src 'sha256-%s'; base-uri 'none'; form-action "
                 "'none'; frame-ancestors 'none'",
                 css);
        snprintf(db->login_csp, sizeof(db->login_csp),
                 "default-src 'none'; script-src 'sha256-%s'; style-src 'sha256-%s'; img-src "
                 "data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
                 "frame-ancestors 'none'",
                 script, style);
        return 0;
}

static int listen_http(avk_dashboard_t *db, char *errstr, size_t errstr_size)
{
        static const char *const headers[] = {"Content-Security-Policy",
                                              PAGE_CSP,
                                              "X-Content-Type-Options",
                                              "nosniff",
                                              "Referrer-Policy",
                                              "no-referrer",
                                              "X-Frame-Options",
                                              "DENY",
                                              NULL};
        /* Every route but the probes and /metrics (counts only) needs a role. */
        static const struct avk_httpd_route routes[] = {
            {.method = "GET",
             .pattern = "/",
             .label = "file",
             .auth = auth_page,
             .on_request = static_file},
            {.method = "GET",
             .pattern = "/index.html",
             .label = "file",
             .auth = auth_page,
             .on_request = static_file},
            {.method = "GET",
             .pattern = "/app.js",
             .label = "file",
             .auth = auth_analyst,
             .on_request = static_file},
            {.method = "GET",
             .pattern = "/style.css",
             .label = "file",
             .auth = auth_analyst,
             .on_request = static_file},
            {.method = "GET",
             .pattern = "/favicon.svg",
             .label = "file",
             .auth = auth_analyst,
             .on_request = static_file},
            {.method = "GET",
             .pattern = "/api/sammanstallning.json",
             .auth = auth_any,
             .on_request = summary},
            {.method = "GET",
             .pattern = "/api/forsenade.json",
             .auth = auth_analyst,
             .on_request = overdue},
            {.method = "GET",
             .pattern = "/rapport/{year}",
             .auth = auth_page,
             .on_request = report},
            {.method = "POST",
             .pattern = "/api/session",
             .auth = auth_token,
             .on_request = session_open},
            {.method = "DELETE",
             .pattern = "/api/session",
             .auth = auth_any,
             .on_request = session_close},
        };
        struct avk_httpd_conf conf = {
            .listen = avk_config_get(db->cfg, "dashboard.listen"),
            .listen_key = "dashboard.listen",
            .tls_cert_file = avk_config_get(db->cfg, "dashboard.tls.cert.file"),
            .tls_key_file = avk_config_get(db->cfg, "dashboard.tls.key.file"),
            .tls_cert_key = "dashboard.tls.cert.file",
            .tls_key_key = "dashboard.tls.key.file",
            .hosts = avk_config_get(db->cfg, "dashboard.hosts"),
            .hosts_key = "dashboard.hosts",
            .threads = HTTP_THREADS,
            .body_timeout_s = CONNECTION_TIMEOUT_S,
            .style = AVK_HTTPD_TEXT,
            .name = "dashboard",
            .not_found = "not found",
            .headers = headers,
            .json_type = CONTENT_JSON,
            .metrics = db->metrics,
            .ready = ready,
            .routes = routes,
            .route_cnt = sizeof(routes) / sizeof(routes[0]),
            .state_size = sizeof(struct dash_req),
            .on_done = count_request,
            .opaque = db,
        };
        db->httpd = avk_httpd_start(&conf, errstr, errstr_size);
        return db->httpd ? 0 : -1;
}

static int open_access(avk_dashboard_t *db, char *errstr, size_t errstr_size)
{
        const char *tokens = avk_config_get(db->cfg, "dashboard.tokens.file");
        char reason[512];
        if (!tokens) {
                snprintf(errstr, errstr_size,
                         "dashboard.tokens.file: not set; the dashboard needs bearer tokens "
                         "(make them with 'avvik token --role analyst')");
                return -1;
        }
        db->access =
            avk_access_new(tokens, (size_t)avk_config_get_int(db->cfg, "dashboard.sessions.max"),
                           db->session_ttl_s * 1000, reason, sizeof(reason));
        if (!db->access) {
                snprintf(errstr, errstr_size, "dashboard.tokens.file: %s", reason);
                return -1;
        }
        return 0;
}

avk_dashboard_t *avk_dashboard_start(const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        avk_dashboard_t *db = calloc(1, sizeof(*db));
        if (!db) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        db->cfg = cfg;
        db->overdue_max = (size_t)avk_config_get_int(cfg, "dashboard.overdue.max");
        db->session_ttl_s = avk_config_get_int(cfg, "dashboard.session.ttl.s");
        avk_clock_init(&db->clock, avk_config_get(cfg, "dashboard.clock.file"));
        pthread_mutex_init(&db->lock, NULL);
        db->agg = avk_aggregate_new();
        db->metrics = avk_metrics_new();
        if (!db->agg || !db->metrics || register_metrics(db) != 0 || policies(db) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (open_access(db, errstr, errstr_size) != 0 ||
            start_consumer(db, errstr, errstr_size) != 0 ||
            listen_http(db, errstr, errstr_size) != 0)
                goto fail;
        avk_log(AVK_LOG_INFO, "dashboard", "%s on port %u, %zu tokens, reading %s",
                avk_httpd_tls(db->httpd) ? "HTTPS" : "HTTP", avk_httpd_port(db->httpd),
                avk_access_token_count(db->access), db->topic);
        return db;
fail:
        avk_dashboard_stop(db);
        return NULL;
}

unsigned avk_dashboard_port(const avk_dashboard_t *db)
{
        return avk_httpd_port(db->httpd);
}

int avk_dashboard_loaded(avk_dashboard_t *db)
{
        return atomic_load(&db->loaded);
}

void avk_dashboard_stop(avk_dashboard_t *db)
{
        if (!db)
                return;
        avk_httpd_stop(db->httpd);
        if (db->started) {
                atomic_store(&db->stopping, 1);
                pthread_join(db->thread, NULL);
        }
        if (db->rk) {
                avk_kafka_consumer_close(
                    db->rk, (int)avk_config_get_int(db->cfg, "consumer.close.timeout.ms"),
                    "dashboard");
                rd_kafka_destroy_flags(db->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        }
        avk_codec_destroy(db->codec);
        avk_env_close(&db->env);
        avk_aggregate_destroy(db->agg);
        avk_access_destroy(db->access);
        avk_metrics_destroy(db->metrics);
        pthread_mutex_destroy(&db->lock);
        free(db);
}
