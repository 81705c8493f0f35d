/*
 * avk_httpd: the one HTTP server of avvik's services (gateway, dashboard,
 * every service's metrics endpoint), on libmicrohttpd with epoll (a
 * descriptor past 1024 must work) and an optional thread pool.
 *
 * It owns what every server needs: the listen address, TLS, the library's
 * log, connection limits per client address and in all, header and body
 * timeouts, body limits, refusal of ambiguous framing (request smuggling),
 * a Host allow-list,
 * a request id per request (X-Request-Id), the operational endpoints
 * (/healthz, /readyz, /metrics) and a route table {method, pattern,
 * handler} with an authentication hook per route. A service supplies its
 * routes and nothing else. docs/gateway.md describes the limits.
 *
 * A request's answer is given once, with avk_httpd_answer*() or
 * avk_httpd_error*(), from the handler or later from any thread (the
 * gateway answers once Kafka acknowledged): a request its handler leaves
 * unanswered is suspended, not a blocked thread, and resumed by the answer.
 */
#ifndef AVK_HTTPD_H
#define AVK_HTTPD_H

#include <stddef.h>

#include <jansson.h>

#include "common/util/metrics.h"

typedef struct avk_httpd avk_httpd_t;
typedef struct avk_httpd_req avk_httpd_req_t;

/** @brief A route's handler; opaque is avk_httpd_conf.opaque. */
typedef void (*avk_httpd_handler_cb)(avk_httpd_req_t *req, void *opaque);

/**
 * @brief A route's authentication: 0 to go on, or -1 after answering the
 * request (401 with its WWW-Authenticate, see avk_httpd_req_add_header()).
 * Called once the headers are in, before the body is read.
 */
typedef int (*avk_httpd_auth_cb)(avk_httpd_req_t *req, void *opaque);

/**
 * @brief Whether the service is ready: 1, or 0 with a short reason (no patient
 * data) in why. Called on an HTTP thread for every /readyz: thread-safe and quick.
 */
typedef int (*avk_httpd_ready_cb)(void *opaque, char *why, size_t why_size);

/** The form of the server's own answers (probes, 404, 405, 400, 503). */
enum avk_httpd_style {
        AVK_HTTPD_TEXT, /**< one line of text/plain */
        AVK_HTTPD_JSON, /**< {"error": ...} documents, {"status": "serving"} */
};

struct avk_httpd_route {
        const char *method; /**< "POST", or "GET" (which answers HEAD too) */
        const char
            *pattern;      /**< "/v1/deviations/{id}/responses": {name} is one non-empty segment */
        const char *label; /**< for metrics and logs; NULL: the pattern */
        avk_httpd_auth_cb auth;          /**< NULL: open to every client */
        avk_httpd_handler_cb on_headers; /**< NULL, or checks before the body; may answer */
        avk_httpd_handler_cb on_request; /**< the complete request; answers now or later */
};

struct avk_httpd_conf {
        const char *listen;     /**< "host:port" or "[address]:port"; port 0 picks one */
        const char *listen_key; /**< the configuration key of listen, for errors */
        /** PEM files, both or neither (then HTTPS only), and their keys for errors. */
        const char *tls_cert_file, *tls_key_file, *tls_cert_key, *tls_key_key;
        /** "name,name,...": the Host names answered (any case, the port aside; an
         * IPv6 address in brackets), every other Host 421; NULL: any Host. Its key
         * for errors in hosts_key. Against DNS rebinding. */
        const char *hosts, *hosts_key;
        unsigned threads;                    /**< 0 or 1: one thread, else a pool of this many */
        size_t max_body;                     /**< bytes of a body kept; 0: 64 KiB */
        const char *max_body_key;            /**< its key for the 413 answer; NULL: none named */
        unsigned max_connections;            /**< in all; 0: AVK_HTTPD_MAX_CONNECTIONS */
        unsigned max_connections_per_client; /**< per address; 0: AVK_HTTPD_MAX_PER_CLIENT */
        unsigned
            header_timeout_s;    /**< idle while the headers come; 0: AVK_HTTPD_HEADER_TIMEOUT_S */
        unsigned body_timeout_s; /**< idle while the body comes; 0: AVK_HTTPD_BODY_TIMEOUT_S */
        enum avk_httpd_style style;
        const char *name;           /**< "gateway": "the gateway is shutting down" */
        const char *not_found;      /**< the sentence of a 404 for a path no route has */
        const char *const *headers; /**< name, value, ..., NULL: on every answer; may be NULL */
        const char *retry_after;    /**< Retry-After of 503 and 429 answers; NULL: none */
        const char *json_type;      /**< Content-Type of JSON answers; NULL: application/json */
        avk_metrics_t *metrics;     /**< served on /metrics; NULL: no /metrics */
        void (*before_metrics)(void *opaque); /**< NULL, or sets gauges before /metrics */
        avk_httpd_ready_cb ready;             /**< /readyz; NULL: always ready */
        const struct avk_httpd_route *routes; /**< looked up before the probes */
        size_t route_cnt;
        size_t state_size; /**< zeroed bytes per request, avk_httpd_req_state() */
        /** NULL, or called once per request when it ends, answered or not. */
        void (*on_done)(avk_httpd_req_t *req, void *opaque);
        void *opaque; /**< for every callback; not owned */
};

#define AVK_HTTPD_MAX_CONNECTIONS  4096
#define AVK_HTTPD_MAX_PER_CLIENT   256
#define AVK_HTTPD_HEADER_TIMEOUT_S 10
#define AVK_HTTPD_BODY_TIMEOUT_S   30

/**
 * @brief Starts serving conf (copied; the strings, routes, metrics and opaque
 * it points to are not, and must outlive the server).
 * @returns the server, or NULL with the reason in errstr, naming the key at fault.
 */
avk_httpd_t *avk_httpd_start(const struct avk_httpd_conf *conf, char *errstr, size_t errstr_size);

/** @brief The TCP port it listens on. */
unsigned avk_httpd_port(const avk_httpd_t *httpd);

/** @brief 1 when it serves HTTPS. */
int avk_httpd_tls(const avk_httpd_t *httpd);

/**
 * @brief Stops accepting connections, answers new requests on open ones 503
 * with Connection: close, waits until every request in progress has ended
 * (answered, or closed at a timeout), then stops and frees the server. NULL is
 * a no-op.
 */
void avk_httpd_stop(avk_httpd_t *httpd);

/* ---- the request, for handlers ----------------------------------------- */

/** @brief "GET", "POST", ... */
const char *avk_httpd_req_method(const avk_httpd_req_t *req);

/** @brief The path of the URL (owned by the request). */
const char *avk_httpd_req_path(const avk_httpd_req_t *req);

/** @brief The matched route's label, "other" when no route matched. */
const char *avk_httpd_req_label(const avk_httpd_req_t *req);

/** @brief The path parameter name of the matched pattern, or NULL. */
const char *avk_httpd_req_param(const avk_httpd_req_t *req, const char *name);

/** @brief A request header, or NULL. */
const char *avk_httpd_req_header(const avk_httpd_req_t *req, const char *name);

/** @brief A query argument, or NULL. */
const char *avk_httpd_req_arg(const avk_httpd_req_t *req, const char *name);

/** @brief The body read so far (owned by the request; not NUL-terminated). */
const char *avk_httpd_req_body(const avk_httpd_req_t *req, size_t *len);

/** @brief The request id answered in X-Request-Id (the client's when it sent a fitting one). */
const char *avk_httpd_req_id(const avk_httpd_req_t *req);

/** @brief The conf.state_size bytes of this request, zeroed at its start. */
void *avk_httpd_req_state(avk_httpd_req_t *req);

/** @brief The status answered, 0 while none (in on_done: the request ended unanswered). */
unsigned avk_httpd_req_status(const avk_httpd_req_t *req);

/** @brief Seconds from the headers to now. */
double avk_httpd_req_seconds(const avk_httpd_req_t *req);

/** @brief In on_done: 1 when the answer was sent completely, 0 when the connection closed first. */
int avk_httpd_req_completed(const avk_httpd_req_t *req);

/**
 * @brief Adds a header to the answer, replacing one of conf.headers of that
 * name (at most 4 a request). name and value are not copied: they must
 * outlive the request. Call before the answer is given.
 */
void avk_httpd_req_add_header(avk_httpd_req_t *req, const char *name, const char *value);

/* ---- answers: each request gets exactly one, from any thread ------------ */

/** @brief Answers body (malloc'd, taken over; NULL answers 500) of type. */
void avk_httpd_answer(avk_httpd_req_t *req, unsigned status, const char *content_type, char *body,
                      size_t len);

/** @brief Answers a body that is not taken over: one that lives until the request's end
 *  (embedded files, text in the request's state, avk_httpd_req_state()). */
void avk_httpd_answer_static(avk_httpd_req_t *req, unsigned status, const char *content_type,
                             const char *body, size_t len);

/** @brief Answers doc (taken over; NULL answers 500) as compact JSON. */
void avk_httpd_answer_json(avk_httpd_req_t *req, unsigned status, json_t *doc);

/**
 * @brief The text of an error answer: {"error": summary, "errors": details},
 * without "errors" when details is NULL, with "(and N more)" when dropped.
 * Every error text of every server is built here, so a rule over error
 * texts has one place: each detail is scrubbed (common/util/scrub.h), so no
 * answer echoes an identity a client sent. @returns a malloc'd string the
 * caller owns, or NULL.
 */
char *avk_httpd_error_body(const char *summary, const char *const *details, size_t cnt,
                           size_t dropped);

/** @brief Answers avk_httpd_error_body() of summary and the one detail fmt (none when NULL). */
__attribute__((format(printf, 4, 5))) void
avk_httpd_error(avk_httpd_req_t *req, unsigned status, const char *summary, const char *fmt, ...);

#endif
