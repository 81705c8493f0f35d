/*
 * avk_httpd: see server.h.
 *
 * libmicrohttpd calls the access handler for one request several times: once
 * when the headers are in (framing, route, method, authentication and the
 * declared length are checked there, so a request that will fail is answered
 * before its body is read), once per piece of the body, and once when the
 * body is complete, where the route's handler runs. A request its handler
 * leaves unanswered is suspended and resumed by whoever answers it, from
 * another thread; the access handler is then called once more and queues the
 * answer.
 *
 * A request's answer is settled exactly once, under its own lock, which also
 * says whether the connection is suspended: the answering thread resumes it
 * only then, so an answer that arrives before the handler had a chance to
 * suspend is simply queued at once.
 */
#include "common/http/server.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/rand.h>

#include "common/http/httphead.h"
#include "common/http/netaddr.h"
#include "common/util/decimal.h"
#include "common/util/log.h"
#include "common/util/secret.h"
#include "common/util/scrub.h"

#define TLS_FILE_MAX     (1 << 20)
#define DEFAULT_MAX_BODY 65536
/* libmicrohttpd's memory per connection (its default 32 KiB): the request's
 * head, the read buffer and the answer's head. It zeroes all of it after
 * every request (0.9.75's MHD_pool_reset()), a tenth of an HTTP thread's
 * time at 32 KiB. 16 KiB holds a head of up to about 15 KiB, more than most
 * servers allow; the body does not live there (docs/gateway.md, "Limits and
 * back-pressure"). */
#define CONNECTION_MEMORY (16 * 1024)
/* An over-long chunked body is read and dropped (413 after it) up to this
 * many times the limit; past that the connection is closed. */
#define DISCARD_FACTOR    16
#define PARAM_MAX         2
#define PARAM_VALUE_MAX   64
#define HEADER_MAX        4
#define REQUEST_ID_MAX    64
#define ERROR_DETAIL_SIZE 1024 /* one error text of an answer */
#define CONTENT_TEXT      "text/plain; charset=utf-8"
/* libmicrohttpd warns once per refused or broken connection: a flood of
 * connections would be a flood of lines. At most LOG_BURST a window. */
#define LOG_BURST    5
#define LOG_WINDOW_S 10

/* Why a connection ended without an answer (avk_http_connections_aborted_total). */
enum abort_reason {
        ABORT_BEFORE_REQUEST, /* closed, or timed out, before a request's head was in */
        ABORT_TIMEOUT,        /* idle past a timeout in a request */
        ABORT_CLIENT_CLOSED,  /* the client went away in a request */
        ABORT_ERROR,          /* closed by the server in a request (a body far over the limit) */
        ABORT_CNT
};
static const char *const abort_names[ABORT_CNT] = {"before_request", "timeout", "client_closed",
                                                   "error"};

enum stage {
        STAGE_BODY,     /* reading the body */
        STAGE_WAITING,  /* suspended until answered */
        STAGE_ANSWERED, /* a response is queued */
};

struct avk_httpd_req {
        avk_httpd_t *httpd;
        struct MHD_Connection *conn;
        const struct avk_httpd_route *route; /* NULL when none matched */
        enum stage stage;
        char method[16];
        const char *path; /* libmicrohttpd's, valid while the request lives */
        struct timespec started;
        struct {
                const char *name; /* in the route's pattern, after '{' */
                size_t name_len;
                char value[PARAM_VALUE_MAX];
        } params[PARAM_MAX];
        size_t param_cnt;
        const char *header_names[HEADER_MAX], *header_values[HEADER_MAX];
        size_t header_cnt;
        char allow[64]; /* 405 */
        char request_id[REQUEST_ID_MAX + 1];
        int keep_body, too_large, completed;
        char *body;
        size_t len, cap, dropped;
        /* The answer: settled once, under lock. */
        pthread_mutex_t lock;
        int settled, suspended, reply_static;
        unsigned status;
        char *reply;
        size_t reply_len;
        const char *reply_type;
        _Alignas(max_align_t) unsigned char state[]; /* conf.state_size */
};

struct avk_httpd {
        struct avk_httpd_conf conf;
        struct avk_httpd_route probes[3];
        size_t probe_cnt;
        struct MHD_Daemon *daemon;
        char *tls_cert;
        struct avk_secret tls_key; /* owner-only file, wiped at the end */
        unsigned port;
        char id_prefix[17]; /* of a new request id: 16 random hexadecimal digits */
        atomic_uint_fast64_t next_id;
        atomic_int stopping;
        /* Requests between their first handler call and their end: counted
         * by every HTTP thread at each request's start and end, without a
         * lock (a lock shared by the threads, taken twice a request, was
         * contended); lock and idle only for the end of the last one, which
         * avk_httpd_stop() waits for. */
        atomic_size_t active;
        pthread_mutex_t lock;
        pthread_cond_t idle;
        pthread_mutex_t log_lock; /* the log_ fields */
        time_t log_window;        /* start of the window, monotonic seconds */
        unsigned log_lines, log_suppressed;
        /* On conf.metrics, when set: connections that ended without an
         * answer, by reason, and the library's warnings not logged. */
        avk_metric_t *aborted[ABORT_CNT], *suppressed;
};

/* A body buffer a connection keeps for its next request at most this large;
 * a larger one (a body near gateway.max.body.bytes) is freed. */
#define SPARE_BODY_MAX 16384

/* A connection's own state, from its start to its close. */
struct connection {
        unsigned requests;      /* begun on it */
        avk_httpd_req_t *spare; /* its last request's memory, for the next one; or NULL */
};

/* ---- answers ------------------------------------------------------------ */

/* Settles req with its answer (body taken over unless static). A suspended
 * connection is resumed, and the access handler then queues the answer. */
static void settle(avk_httpd_req_t *req, unsigned status, const char *type, char *body, size_t len,
                   int is_static)
{
        pthread_mutex_lock(&req->lock);
        if (req->settled) {
                pthread_mutex_unlock(&req->lock);
                avk_log(AVK_LOG_ERROR, "http", "%s %s: answered twice (%u after %u)", req->method,
                        avk_httpd_req_label(req), status, req->status);
                if (!is_static)
                        free(body);
                return;
        }
        req->status = status;
        req->reply = body;
        req->reply_len = len;
        req->reply_static = is_static;
        req->reply_type = type;
        req->settled = 1;
        if (req->suspended) {
                req->suspended = 0;
                MHD_resume_connection(req->conn);
        }
        pthread_mutex_unlock(&req->lock);
}

void avk_httpd_answer(avk_httpd_req_t *req, unsigned status, const char *content_type, char *body,
                      size_t len)
{
        settle(req, status, content_type, body, len, 0);
}

void avk_httpd_answer_static(avk_httpd_req_t *req, unsigned status, const char *content_type,
                             const char *body, size_t len)
{
        settle(req, status, content_type, (char *)body, len, 1);
}

static const char *json_content_type(const avk_httpd_t *httpd)
{
        return httpd->conf.json_type ? httpd->conf.json_type : "application/json";
}

void avk_httpd_answer_json(avk_httpd_req_t *req, unsigned status, json_t *doc)
{
        char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(doc);
        avk_httpd_answer(req, status, json_content_type(req->httpd), text, text ? strlen(text) : 0);
}

char *avk_httpd_error_body(const char *summary, const char *const *details, size_t cnt,
                           size_t dropped)
{
        json_t *doc = json_pack("{s:s}", "error", summary);
        json_t *errors = details ? json_array() : NULL;
        for (size_t i = 0; errors && i < cnt; i++) {
                char clean[ERROR_DETAIL_SIZE];
                json_array_append_new(
                    errors, json_string(avk_scrub_copy(clean, sizeof(clean), details[i])));
        }
        if (errors && dropped) {
                char more[64];
                snprintf(more, sizeof(more), "(and %zu more)", dropped);
                json_array_append_new(errors, json_string(more));
        }
        if (doc && errors)
                json_object_set_new(doc, "errors", errors);
        else
                json_decref(errors);
        char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(doc);
        return text;
}

__attribute__((format(printf, 4, 0))) static void
verror(avk_httpd_req_t *req, unsigned status, const char *summary, const char *fmt, va_list ap)
{
        char detail[ERROR_DETAIL_SIZE];
        const char *details[] = {detail};
        if (fmt)
                vsnprintf(detail, sizeof(detail), fmt, ap);
        char *text = avk_httpd_error_body(summary, fmt ? details : NULL, 1, 0);
        avk_httpd_answer(req, status, json_content_type(req->httpd), text, text ? strlen(text) : 0);
}

void avk_httpd_error(avk_httpd_req_t *req, unsigned status, const char *summary, const char *fmt,
                     ...)
{
        va_list ap;
        va_start(ap, fmt);
        verror(req, status, summary, fmt, ap);
        va_end(ap);
}

/* The server's own answers: a line of text, or a JSON error of summary and
 * the detail fmt, after the server's style. */
__attribute__((format(printf, 4, 5))) static void
own_answer(avk_httpd_req_t *req, unsigned status, const char *summary, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        if (req->httpd->conf.style == AVK_HTTPD_JSON) {
                verror(req, status, summary, fmt, ap);
        } else {
                char raw[ERROR_DETAIL_SIZE], line[ERROR_DETAIL_SIZE];
                vsnprintf(raw, sizeof(raw), fmt, ap);
                avk_scrub_copy(line, sizeof(line), raw);
                size_t len = strlen(line);
                char *text = malloc(len + 2);
                if (text)
                        snprintf(text, len + 2, "%s\n", line);
                avk_httpd_answer(req, status, CONTENT_TEXT, text, text ? len + 1 : 0);
        }
        va_end(ap);
}

static int is_settled(avk_httpd_req_t *req)
{
        pthread_mutex_lock(&req->lock);
        int settled = req->settled;
        pthread_mutex_unlock(&req->lock);
        return settled;
}

static int has_header(const avk_httpd_req_t *req, const char *name)
{
        for (size_t i = 0; i < req->header_cnt; i++) {
                if (strcasecmp(req->header_names[i], name) == 0)
                        return 1;
        }
        return 0;
}

static enum MHD_Result queue(avk_httpd_req_t *req)
{
        const avk_httpd_t *httpd = req->httpd;
        const char *text = req->reply ? req->reply : "";
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(req->reply ? req->reply_len : 0, (void *)text,
                                            MHD_RESPMEM_PERSISTENT); /* req->reply outlives it */
        if (!resp)
                return MHD_NO;
        unsigned status = req->reply ? req->status : MHD_HTTP_INTERNAL_SERVER_ERROR;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                req->reply_type ? req->reply_type : CONTENT_TEXT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        for (size_t i = 0; i < req->header_cnt; i++)
                MHD_add_response_header(resp, req->header_names[i], req->header_values[i]);
        for (const char *const *h = httpd->conf.headers; h && h[0]; h += 2) {
                if (!has_header(req, h[0]))
                        MHD_add_response_header(resp, h[0], h[1]);
        }
        if (httpd->conf.retry_after &&
            (status == MHD_HTTP_SERVICE_UNAVAILABLE || status == MHD_HTTP_TOO_MANY_REQUESTS))
                MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, httpd->conf.retry_after);
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow);
        MHD_add_response_header(resp, "X-Request-Id", req->request_id);
        if (atomic_load(&req->httpd->stopping) && !has_header(req, MHD_HTTP_HEADER_CONNECTION))
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        req->status = status;
        req->stage = STAGE_ANSWERED;
        enum MHD_Result ret = MHD_queue_response(req->conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* After the handler ran: answers now when it answered, else suspends until
 * whoever answers resumes the connection. */
static enum MHD_Result await(avk_httpd_req_t *req)
{
        req->stage = STAGE_WAITING;
        pthread_mutex_lock(&req->lock);
        int settled = req->settled;
        if (!settled) {
                req->suspended = 1;
                MHD_suspend_connection(req->conn);
        }
        pthread_mutex_unlock(&req->lock);
        return settled ? queue(req) : MHD_YES;
}

/* ---- the request's accessors ------------------------------------------- */

const char *avk_httpd_req_method(const avk_httpd_req_t *req)
{
        return req->method;
}

const char *avk_httpd_req_path(const avk_httpd_req_t *req)
{
        return req->path;
}

const char *avk_httpd_req_label(const avk_httpd_req_t *req)
{
        if (!req->route)
                return "other";
        return req->route->label ? req->route->label : req->route->pattern;
}

const char *avk_httpd_req_param(const avk_httpd_req_t *req, const char *name)
{
        for (size_t i = 0; i < req->param_cnt; i++) {
                if (strlen(name) == req->params[i].name_len &&
                    strncmp(req->params[i].name, name, req->params[i].name_len) == 0)
                        return req->params[i].value;
        }
        return NULL;
}

const char *avk_httpd_req_header(const avk_httpd_req_t *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *avk_httpd_req_arg(const avk_httpd_req_t *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *avk_httpd_req_body(const avk_httpd_req_t *req, size_t *len)
{
        *len = req->len;
        return req->body;
}

const char *avk_httpd_req_id(const avk_httpd_req_t *req)
{
        return req->request_id;
}

void *avk_httpd_req_state(avk_httpd_req_t *req)
{
        return req->state;
}

unsigned avk_httpd_req_status(const avk_httpd_req_t *req)
{
        return req->stage == STAGE_ANSWERED ? req->status : 0;
}

double avk_httpd_req_seconds(const avk_httpd_req_t *req)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - req->started.tv_sec) +
               (double)(now.tv_nsec - req->started.tv_nsec) / 1e9;
}

int avk_httpd_req_completed(const avk_httpd_req_t *req)
{
        return req->completed;
}

void avk_httpd_req_add_header(avk_httpd_req_t *req, const char *name, const char *value)
{
        for (size_t i = 0; i < req->header_cnt; i++) {
                if (strcasecmp(req->header_names[i], name) == 0) {
                        req->header_values[i] = value;
                        return;
                }
        }
        if (req->header_cnt < HEADER_MAX) {
                req->header_names[req->header_cnt] = name;
                req->header_values[req->header_cnt++] = value;
        }
}

/* ---- the checks made when the headers are in ------------------------------ */

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                   size_t name_len, const char *value, size_t value_len)
{
        (void)kind;
        avk_httphead_field(cls, name, name_len, value ? value : "", value ? value_len : 0);
        return MHD_YES;
}

/* RFC 9112 section 6: a message whose framing two parties could read
 * differently is refused, and its connection closed, before any body byte
 * is read - the bytes after it could otherwise run as another request
 * (common/http/httphead.h has the rules). NULL when the framing is
 * unambiguous, else why; *length is the declared Content-Length, or 0. */
static const char *ambiguous_framing(struct MHD_Connection *conn, const char *version,
                                     uint64_t *length)
{
        struct avk_httphead head;
        avk_httphead_init(&head, strcmp(version, MHD_HTTP_VERSION_1_0) == 0);
        MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_header, &head);
        *length = head.content_lengths ? head.content_length : 0;
        return avk_httphead_verdict(&head);
}

/* Whether path matches pattern; each {name} takes one non-empty segment,
 * recorded in req when it is not NULL. */
static int match(const char *pattern, const char *path, avk_httpd_req_t *req)
{
        size_t params = 0;
        while (*pattern && *path) {
                if (*pattern == '{') {
                        const char *close = strchr(pattern, '}');
                        size_t len = strcspn(path, "/");
                        if (!close || len == 0 || params == PARAM_MAX)
                                return 0;
                        if (req) {
                                req->params[params].name = pattern + 1;
                                req->params[params].name_len = (size_t)(close - pattern - 1);
                                snprintf(req->params[params].value, PARAM_VALUE_MAX, "%.*s",
                                         (int)len, path);
                        }
                        params++;
                        pattern = close + 1;
                        path += len;
                } else if (*pattern++ != *path++) {
                        return 0;
                }
        }
        if (*pattern || *path)
                return 0;
        if (req)
                req->param_cnt = params;
        return 1;
}

static int method_fits(const struct avk_httpd_route *route, const char *method)
{
        return strcmp(route->method, method) == 0 ||
               (strcmp(route->method, MHD_HTTP_METHOD_GET) == 0 &&
                strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
}

static void allow_method(char *allow, size_t size, const char *method)
{
        const char *add = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ? "GET, HEAD" : method;
        if (strstr(allow, add))
                return;
        size_t used = strlen(allow);
        snprintf(allow + used, size - used, "%s%s", used ? ", " : "", add);
}

/* Sets req->route to the route of path and method. When the path has routes
 * but none of the method, returns -1 with req->allow listing their methods. */
static int find_route(avk_httpd_req_t *req, const char *path)
{
        const avk_httpd_t *httpd = req->httpd;
        const struct avk_httpd_route *tables[] = {httpd->conf.routes, httpd->probes};
        const size_t counts[] = {httpd->conf.route_cnt, httpd->probe_cnt};
        const struct avk_httpd_route *path_route = NULL;
        for (size_t t = 0; t < 2; t++) {
                for (size_t i = 0; i < counts[t]; i++) {
                        const struct avk_httpd_route *r = &tables[t][i];
                        if (!match(r->pattern, path, NULL))
                                continue;
                        if (method_fits(r, req->method)) {
                                req->route = r;
                                match(r->pattern, path, req);
                                return 0;
                        }
                        path_route = path_route ? path_route : r;
                        allow_method(req->allow, sizeof(req->allow), r->method);
                }
        }
        req->route = path_route; /* its label, for metrics */
        return path_route ? -1 : 0;
}

/* The name of a Host value: up to its port, an IPv6 address with its brackets. */
static size_t host_name_len(const char *host)
{
        if (host[0] == '[') {
                const char *end = strchr(host, ']');
                return end ? (size_t)(end - host) + 1 : strlen(host);
        }
        return strcspn(host, ":");
}

/* 1 when list (the comma-separated conf.hosts) holds host's name. */
static int host_allowed(const char *list, const char *host)
{
        size_t len = host ? host_name_len(host) : 0;
        for (const char *p = list; len > 0 && *p;) {
                size_t n = strcspn(p, ",");
                if (n == len && strncasecmp(p, host, len) == 0)
                        return 1;
                p += n + (p[n] == ',');
        }
        return 0;
}

/* Answers req when it is to be refused from its headers alone. */
static void check_headers(avk_httpd_req_t *req, const char *path, const char *version)
{
        avk_httpd_t *httpd = req->httpd;
        uint64_t declared;
        const char *framing = ambiguous_framing(req->conn, version, &declared);
        if (framing) {
                avk_httpd_req_add_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
                own_answer(req, MHD_HTTP_BAD_REQUEST, "ambiguous request framing",
                           "framing: %s (RFC 9112 section 6)", framing);
                return;
        }
        if (httpd->conf.hosts &&
            !host_allowed(httpd->conf.hosts, avk_httpd_req_header(req, MHD_HTTP_HEADER_HOST))) {
                /* The Host is not echoed: it is the client's text. */
                own_answer(req, MHD_HTTP_MISDIRECTED_REQUEST, "misdirected request",
                           "host: not a name this server answers for (%s)", httpd->conf.hosts_key);
                return;
        }
        if (atomic_load(&httpd->stopping)) {
                char summary[64];
                snprintf(summary, sizeof(summary), "the %s is shutting down",
                         httpd->conf.name ? httpd->conf.name : "server");
                own_answer(req, MHD_HTTP_SERVICE_UNAVAILABLE, summary,
                           "server: stopping; retry on another instance or later");
                return;
        }
        if (find_route(req, path) != 0) {
                if (httpd->conf.style == AVK_HTTPD_JSON)
                        avk_httpd_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed",
                                        "method: %s is not allowed here; allowed: %s", req->method,
                                        req->allow);
                else
                        own_answer(req, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, "method not allowed");
                return;
        }
        if (!req->route) {
                own_answer(req, MHD_HTTP_NOT_FOUND, "no such resource", "%s",
                           httpd->conf.not_found ? httpd->conf.not_found : "not found");
                return;
        }
        if (req->route->auth && req->route->auth(req, httpd->conf.opaque) != 0) {
                if (!is_settled(req)) /* a hook that refused without an answer */
                        avk_httpd_error(req, MHD_HTTP_UNAUTHORIZED, "authentication failed", NULL);
                return;
        }
        req->keep_body = strcmp(req->route->method, MHD_HTTP_METHOD_GET) != 0;
        if (req->keep_body && declared > httpd->conf.max_body) {
                avk_httpd_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "the body is too large",
                                "body: %" PRIu64 " bytes is over the limit of %zu bytes%s%s%s",
                                declared, httpd->conf.max_body,
                                httpd->conf.max_body_key ? " (" : "",
                                httpd->conf.max_body_key ? httpd->conf.max_body_key : "",
                                httpd->conf.max_body_key ? ")" : "");
                return;
        }
        if (req->route->on_headers)
                req->route->on_headers(req, httpd->conf.opaque);
}

/* Keeps a piece of the body; past the limit, or on a route without a body,
 * drops it. MHD_NO closes the connection of a body far past the limit. */
static enum MHD_Result take_body(avk_httpd_req_t *req, const char *data, size_t size)
{
        size_t limit = req->httpd->conf.max_body;
        if (!req->too_large && (!req->keep_body || req->len + size > limit)) {
                req->too_large = 1;
                req->dropped = req->len;
                free(req->body);
                req->body = NULL;
                req->len = req->cap = 0;
        }
        if (req->too_large) {
                req->dropped += size;
                return req->dropped > DISCARD_FACTOR * limit ? MHD_NO : MHD_YES;
        }
        if (req->len + size > req->cap) {
                size_t cap = req->cap ? req->cap : 4096;
                while (cap < req->len + size)
                        cap *= 2;
                cap = cap < limit ? cap : limit;
                char *grown = realloc(req->body, cap);
                if (!grown)
                        return MHD_NO;
                req->body = grown;
                req->cap = cap;
        }
        memcpy(req->body + req->len, data, size);
        req->len += size;
        return MHD_YES;
}

/* The request is complete: run its handler. */
static void on_complete(avk_httpd_req_t *req)
{
        avk_httpd_t *httpd = req->httpd;
        if (req->too_large && req->keep_body) {
                avk_httpd_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "the body is too large",
                                "body: over the limit of %zu bytes%s%s%s", httpd->conf.max_body,
                                httpd->conf.max_body_key ? " (" : "",
                                httpd->conf.max_body_key ? httpd->conf.max_body_key : "",
                                httpd->conf.max_body_key ? ")" : "");
                return;
        }
        req->route->on_request(req, httpd->conf.opaque);
}

/* ---- the request's life ------------------------------------------------- */

/* The client's X-Request-Id when it is 1..64 of [A-Za-z0-9._:-], else a new one. */
static void set_request_id(avk_httpd_req_t *req)
{
        static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789._:-";
        const char *given = avk_httpd_req_header(req, "X-Request-Id");
        size_t len = given ? strlen(given) : 0;
        if (len > 0 && len <= REQUEST_ID_MAX && strspn(given, allowed) == len) {
                memcpy(req->request_id, given, len + 1);
                return;
        }
        /* The prefix, '-' and the count, without a printf a request. */
        memcpy(req->request_id, req->httpd->id_prefix, 16);
        req->request_id[16] = '-';
        avk_decimal(req->request_id + 17, atomic_fetch_add(&req->httpd->next_id, 1));
}

/*
 * Timeouts: the daemon's is the body timeout; a new connection gets the
 * header timeout until its first request's headers are in. Only then, once a
 * connection, does it change (each change takes libmicrohttpd's lock and
 * moves the connection between its timeout lists). Both are idle timeouts.
 */
static void set_timeout(struct MHD_Connection *conn, unsigned seconds)
{
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_TIMEOUT);
        if (!info || info->connection_timeout != seconds)
                MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, seconds);
}

static void count_abort(avk_httpd_t *httpd, enum abort_reason reason)
{
        if (httpd->aborted[reason])
                avk_metric_add(httpd->aborted[reason], 1);
}

/* A connection closed before any request began on it is one a client gave
 * up on, or never meant to use: counted, not logged (a flood of them would
 * be a flood of lines). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
        avk_httpd_t *httpd = cls;
        struct connection *c = *socket_context;
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                set_timeout(conn, httpd->conf.header_timeout_s);
                *socket_context = calloc(1, sizeof(struct connection));
                return;
        }
        if (c && c->requests == 0)
                count_abort(httpd, ABORT_BEFORE_REQUEST);
        if (c && c->spare) {
                free(c->spare->body);
                free(c->spare);
        }
        free(c);
        *socket_context = NULL;
}

/* The connection's own state; NULL once it is closed (or out of memory). */
static struct connection *connection_of(struct MHD_Connection *conn)
{
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return info ? info->socket_context : NULL;
}

/*
 * A request's memory: the connection's last request's when it kept one
 * (with its body buffer), else new. A request and a body buffer a request
 * were two allocations of over 1 KiB each, made on one thread and freed on
 * it, with the chunks merged between them; kept per connection, a
 * keep-alive client's requests allocate nothing here.
 */
static avk_httpd_req_t *request_new(avk_httpd_t *httpd, struct MHD_Connection *conn,
                                    const char *method, const char *path)
{
        struct connection *c = connection_of(conn);
        avk_httpd_req_t *req = c ? c->spare : NULL;
        if (req) {
                c->spare = NULL;
                char *body = req->body;
                size_t cap = req->cap;
                memset(req, 0, sizeof(*req) + httpd->conf.state_size);
                req->body = body;
                req->cap = cap;
        } else if (!(req = calloc(1, sizeof(*req) + httpd->conf.state_size))) {
                return NULL;
        }
        req->httpd = httpd;
        req->conn = conn;
        size_t method_len = strnlen(method, sizeof(req->method) - 1);
        memcpy(req->method, method, method_len);
        req->method[method_len] = '\0';
        req->path = path;
        if (c)
                c->requests++;
        clock_gettime(CLOCK_MONOTONIC, &req->started);
        pthread_mutex_init(&req->lock, NULL);
        set_request_id(req);
        atomic_fetch_add(&httpd->active, 1);
        return req;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
        avk_httpd_t *httpd = cls;
        avk_httpd_req_t *req = *con_cls;
        if (!req) {
                if (!(req = request_new(httpd, conn, method, url)))
                        return MHD_NO;
                *con_cls = req;
                set_timeout(conn, httpd->conf.body_timeout_s);
                check_headers(req, url, version);
                return is_settled(req) ? queue(req) : MHD_YES;
        }
        if (*upload_size) {
                size_t size = *upload_size;
                *upload_size = 0;
                return req->stage == STAGE_BODY ? take_body(req, upload, size) : MHD_YES;
        }
        if (req->stage == STAGE_BODY) {
                on_complete(req);
                return await(req);
        }
        if (req->stage == STAGE_WAITING)
                return is_settled(req) ? queue(req) : MHD_YES;
        return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
        avk_httpd_t *httpd = cls;
        avk_httpd_req_t *req = *con_cls;
        if (!req)
                return;
        req->completed = why == MHD_REQUEST_TERMINATED_COMPLETED_OK;
        if (why == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
                count_abort(httpd, ABORT_TIMEOUT);
        else if (why == MHD_REQUEST_TERMINATED_READ_ERROR ||
                 why == MHD_REQUEST_TERMINATED_CLIENT_ABORT)
                count_abort(httpd, ABORT_CLIENT_CLOSED);
        else if (why == MHD_REQUEST_TERMINATED_WITH_ERROR)
                count_abort(httpd, ABORT_ERROR);
        if (httpd->conf.on_done)
                httpd->conf.on_done(req, httpd->conf.opaque);
        /* A thread that answered req may still be leaving its lock. */
        pthread_mutex_lock(&req->lock);
        pthread_mutex_unlock(&req->lock);
        if (!req->reply_static)
                free(req->reply);
        pthread_mutex_destroy(&req->lock);
        struct connection *c = connection_of(conn);
        if (req->cap > SPARE_BODY_MAX) {
                free(req->body);
                req->body = NULL;
                req->cap = 0;
        }
        if (c && !c->spare) {
                c->spare = req;
        } else {
                free(req->body);
                free(req);
        }
        *con_cls = NULL;
        if (atomic_fetch_sub(&httpd->active, 1) == 1) {
                /* avk_httpd_stop() checks active under the lock: it cannot
                 * miss this, whether it is waiting yet or not. */
                pthread_mutex_lock(&httpd->lock);
                pthread_cond_broadcast(&httpd->idle);
                pthread_mutex_unlock(&httpd->lock);
        }
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        avk_httpd_t *httpd = cls;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        pthread_mutex_lock(&httpd->log_lock);
        unsigned suppressed = 0;
        if (now.tv_sec - httpd->log_window >= LOG_WINDOW_S) {
                suppressed = httpd->log_suppressed;
                httpd->log_window = now.tv_sec;
                httpd->log_lines = httpd->log_suppressed = 0;
        }
        int show = httpd->log_lines < LOG_BURST;
        if (show)
                httpd->log_lines++;
        else
                httpd->log_suppressed++;
        pthread_mutex_unlock(&httpd->log_lock);
        if (suppressed)
                avk_log(AVK_LOG_WARN, "http", "%u more warnings of libmicrohttpd not logged",
                        suppressed);
        if (!show) {
                if (httpd->suppressed)
                        avk_metric_add(httpd->suppressed, 1);
                return;
        }
        char line[512];
        vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = '\0';
        avk_log(AVK_LOG_WARN, "http", "%s", line);
}

/* ---- the operational endpoints ------------------------------------------ */

static void healthz(avk_httpd_req_t *req, void *opaque)
{
        (void)opaque;
        if (req->httpd->conf.style == AVK_HTTPD_JSON)
                avk_httpd_answer_json(req, MHD_HTTP_OK, json_pack("{s:s}", "status", "serving"));
        else
                own_answer(req, MHD_HTTP_OK, NULL, "serving");
}

static void readyz(avk_httpd_req_t *req, void *opaque)
{
        const avk_httpd_t *httpd = req->httpd;
        char why[256] = "";
        int ready = !httpd->conf.ready || httpd->conf.ready(opaque, why, sizeof(why));
        unsigned status = ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        if (httpd->conf.style == AVK_HTTPD_JSON)
                avk_httpd_answer_json(
                    req, status,
                    ready ? json_pack("{s:b}", "ready", 1)
                          : json_pack("{s:b,s:s}", "ready", 0, "error", why[0] ? why : "starting"));
        else if (ready)
                own_answer(req, status, NULL, "ready");
        else
                own_answer(req, status, NULL, "not ready: %s", why[0] ? why : "starting");
}

static void metrics(avk_httpd_req_t *req, void *opaque)
{
        const avk_httpd_t *httpd = req->httpd;
        if (httpd->conf.before_metrics)
                httpd->conf.before_metrics(opaque);
        char *text = avk_metrics_render(httpd->conf.metrics);
        avk_httpd_answer(req, MHD_HTTP_OK, AVK_METRICS_CONTENT_TYPE, text, text ? strlen(text) : 0);
}

/* The probes the service's routes do not answer themselves. */
static void add_probes(avk_httpd_t *httpd)
{
        const struct avk_httpd_route probes[] = {
            {.method = MHD_HTTP_METHOD_GET, .pattern = "/healthz", .on_request = healthz},
            {.method = MHD_HTTP_METHOD_GET, .pattern = "/readyz", .on_request = readyz},
            {.method = MHD_HTTP_METHOD_GET, .pattern = "/metrics", .on_request = metrics},
        };
        for (size_t p = 0; p < sizeof(probes) / sizeof(probes[0]); p++) {
                int served = p == 2 && !httpd->conf.metrics;
                for (size_t i = 0; !served && i < httpd->conf.route_cnt; i++)
                        served = strcmp(httpd->conf.routes[i].pattern, probes[p].pattern) == 0;
                if (!served)
                        httpd->probes[httpd->probe_cnt++] = probes[p];
        }
}

/* ---- start and stop ----------------------------------------------------- */

/* The server's own series on conf.metrics, when it is set. */
static int register_metrics(avk_httpd_t *httpd)
{
        avk_metrics_t *m = httpd->conf.metrics;
        if (!m)
                return 0;
        avk_metric_family_t *aborted = avk_metrics_counter(
            m, "avk_http_connections_aborted_total",
            "Connections and requests that ended without an answer, by reason: before_request "
            "(closed or timed out before a request's head was in), timeout, client_closed, error.",
            (const char *[]){"reason", NULL});
        avk_metric_family_t *suppressed =
            avk_metrics_counter(m, "avk_http_log_suppressed_total",
                                "Warnings of libmicrohttpd not logged, past the log's rate limit.",
                                (const char *[]){NULL});
        if (!aborted || !suppressed)
                return -1;
        for (size_t r = 0; r < ABORT_CNT; r++)
                if (!(httpd->aborted[r] =
                          avk_metrics_series(aborted, (const char *[]){abort_names[r]})))
                        return -1;
        httpd->suppressed = avk_metrics_series(suppressed, NULL);
        return httpd->suppressed ? 0 : -1;
}

/* Reads a PEM file of the TLS configuration (key names its configuration key). */
static char *read_pem(const char *path, const char *key, size_t *len, char *errstr,
                      size_t errstr_size)
{
        FILE *f = fopen(path, "r");
        char *text = f ? malloc(TLS_FILE_MAX + 1) : NULL;
        size_t n = text ? fread(text, 1, TLS_FILE_MAX + 1, f) : 0;
        int err = f ? ferror(f) : 0;
        if (!f || !text || err || n == 0 || n > TLS_FILE_MAX) {
                snprintf(errstr, errstr_size, "%s: %s: %s", key, path,
                         !f || err ? strerror(errno)
                         : !text   ? "out of memory"
                         : n == 0  ? "empty"
                                   : "larger than 1 MiB");
                free(text);
                text = NULL;
        } else {
                text[n] = '\0';
                *len = n;
        }
        if (f)
                fclose(f);
        return text;
}

static int load_tls(avk_httpd_t *httpd, char *errstr, size_t errstr_size)
{
        const struct avk_httpd_conf *c = &httpd->conf;
        if (!c->tls_cert_file && !c->tls_key_file)
                return 0;
        if (!c->tls_cert_file || !c->tls_key_file) {
                snprintf(errstr, errstr_size, "%s: must be set with %s",
                         c->tls_cert_file ? c->tls_key_key : c->tls_cert_key,
                         c->tls_cert_file ? c->tls_cert_key : c->tls_key_key);
                return -1;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
                snprintf(errstr, errstr_size, "%s: this libmicrohttpd was built without TLS",
                         c->tls_cert_key);
                return -1;
        }
        size_t cert_len;
        httpd->tls_cert =
            read_pem(c->tls_cert_file, c->tls_cert_key, &cert_len, errstr, errstr_size);
        if (!httpd->tls_cert)
                return -1;
        return avk_secret_read_max(c->tls_key_file, c->tls_key_key, 1, TLS_FILE_MAX,
                                   &httpd->tls_key, errstr, errstr_size);
}

static void destroy(avk_httpd_t *httpd)
{
        if (httpd->daemon)
                MHD_stop_daemon(httpd->daemon);
        free(httpd->tls_cert);
        avk_secret_wipe(&httpd->tls_key);
        pthread_cond_destroy(&httpd->idle);
        pthread_mutex_destroy(&httpd->lock);
        pthread_mutex_destroy(&httpd->log_lock);
        free(httpd);
}

static int valid_hosts(const char *list)
{
        for (const char *p = list;; p++) {
                size_t n = strcspn(p, ", \t");
                if (n == 0 || (p[n] != ',' && p[n] != '\0'))
                        return 0;
                p += n;
                if (*p == '\0')
                        return 1;
        }
}

static void apply_defaults(struct avk_httpd_conf *c)
{
        c->max_body = c->max_body ? c->max_body : DEFAULT_MAX_BODY;
        c->max_connections = c->max_connections ? c->max_connections : AVK_HTTPD_MAX_CONNECTIONS;
        c->max_connections_per_client = c->max_connections_per_client
                                            ? c->max_connections_per_client
                                            : AVK_HTTPD_MAX_PER_CLIENT;
        c->header_timeout_s =
            c->header_timeout_s ? c->header_timeout_s : AVK_HTTPD_HEADER_TIMEOUT_S;
        c->body_timeout_s = c->body_timeout_s ? c->body_timeout_s : AVK_HTTPD_BODY_TIMEOUT_S;
}

avk_httpd_t *avk_httpd_start(const struct avk_httpd_conf *conf, char *errstr, size_t errstr_size)
{
        struct sockaddr_storage addr = {0};
        if (avk_netaddr_resolve_listen(conf->listen_key, conf->listen, &addr, errstr,
                                       errstr_size) != 0)
                return NULL;
        if (conf->hosts && !valid_hosts(conf->hosts)) {
                snprintf(errstr, errstr_size,
                         "%s: expected names separated by commas, without blanks or empty names",
                         conf->hosts_key);
                return NULL;
        }
        avk_httpd_t *httpd = calloc(1, sizeof(*httpd));
        if (!httpd) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        httpd->conf = *conf;
        apply_defaults(&httpd->conf);
        pthread_mutex_init(&httpd->lock, NULL);
        pthread_cond_init(&httpd->idle, NULL);
        pthread_mutex_init(&httpd->log_lock, NULL);
        httpd->log_window = -LOG_WINDOW_S;
        add_probes(httpd);
        if (register_metrics(httpd) != 0) {
                snprintf(errstr, errstr_size,
                         "the server's metrics cannot be registered (taken, or out of memory)");
                goto fail;
        }
        uint64_t prefix;
        if (RAND_bytes((unsigned char *)&prefix, sizeof(prefix)) != 1) {
                snprintf(errstr, errstr_size, "no random bytes for request ids");
                goto fail;
        }
        snprintf(httpd->id_prefix, sizeof(httpd->id_prefix), "%016" PRIx64, prefix);
        if (load_tls(httpd, errstr, errstr_size) != 0)
                goto fail;
        /* epoll: select() fails on a descriptor past 1024, which a notifier
         * with many webhook attempts (a socket and a resolver each) reaches. */
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        if (addr.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        if (httpd->tls_cert)
                flags |= MHD_USE_TLS;
        const struct avk_httpd_conf *c = &httpd->conf;
        struct MHD_OptionItem opts[4];
        size_t n = 0;
        if (c->threads > 1)
                opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, c->threads, NULL};
        if (httpd->tls_cert) {
                opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, httpd->tls_cert};
                opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
                                                    (char *)httpd->tls_key.bytes};
        }
        opts[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
        httpd->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_access, httpd, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, httpd,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT,
            c->body_timeout_s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, httpd,
            MHD_OPTION_CONNECTION_LIMIT, c->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
            c->max_connections_per_client, MHD_OPTION_NOTIFY_COMPLETED, on_completed, httpd,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_ARRAY, opts,
            MHD_OPTION_END);
        if (!httpd->daemon) {
                snprintf(errstr, errstr_size,
                         "%s: cannot listen on %s (address in use, or not this host's?)%s",
                         c->listen_key, c->listen,
                         httpd->tls_cert ? ", or the TLS certificate and key do not load" : "");
                goto fail;
        }
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(httpd->daemon, MHD_DAEMON_INFO_BIND_PORT);
        httpd->port = info ? info->port : 0;
        return httpd;
fail:
        destroy(httpd);
        return NULL;
}

unsigned avk_httpd_port(const avk_httpd_t *httpd)
{
        return httpd->port;
}

int avk_httpd_tls(const avk_httpd_t *httpd)
{
        return httpd->tls_cert != NULL;
}

void avk_httpd_stop(avk_httpd_t *httpd)
{
        if (!httpd)
                return;
        atomic_store(&httpd->stopping, 1);
        MHD_socket listener = MHD_quiesce_daemon(httpd->daemon);
        if (listener != MHD_INVALID_SOCKET)
                close(listener);
        /* Every request in progress ends: a suspended one when it is
         * answered, a stalled upload at the body timeout. Only then may the
         * daemon stop: it must not hold suspended connections when it does. */
        pthread_mutex_lock(&httpd->lock);
        while (atomic_load(&httpd->active) > 0)
                pthread_cond_wait(&httpd->idle, &httpd->lock);
        pthread_mutex_unlock(&httpd->lock);
        destroy(httpd);
}
