/*
 * avk_gateway: see gateway.h; status codes and semantics in docs/gateway.md.
 *
 * libmicrohttpd calls the access handler for one request several times: once
 * when the headers are in (route, method, token, Content-Type and
 * Content-Length are checked there, so a request that will fail is answered
 * before its body is read), once per piece of the body, and once when the
 * body is complete, where the document is checked and sent. A request that
 * waits - for Kafka's acknowledgement, or for the first attempt of the same
 * idempotent request - is suspended and resumed by whoever settles it, from
 * another thread; the handler is then called once more and queues the answer.
 *
 * A request's answer is settled exactly once, under its own lock, which also
 * says whether the connection is suspended: the settling thread resumes it
 * only then, so a result that arrives before the handler had a chance to
 * suspend is simply answered at once.
 */
#include "producer/gateway/gateway.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <uuid/uuid.h>

#include "common/contract/json.h"
#include "common/contract/jsonparse.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "common/util/scrub.h"
#include "common/http/netaddr.h"
#include "common/contract/party.h"
#include "producer/gateway/auth.h"
#include "producer/intake/fhir.h"
#include "producer/gateway/idempotency.h"
#include "producer/gateway/index.h"
#include "producer/intake/reporter.h"

#define RETRY_AFTER_S        "2" /* seconds a client waits after 503 */
#define IDEMPOTENCY_KEY_MAX  255 /* characters in an Idempotency-Key */
#define BEARER_MAX           512 /* characters in a bearer token */
#define CONNECTION_TIMEOUT_S 30  /* an idle or stalled connection is closed after this */
#define TLS_FILE_MAX         (1 << 20)
/* An over-long chunked body is read and dropped (413 after it) up to this
 * many times gateway.max.body.bytes; past that the connection is closed. */
#define DISCARD_FACTOR 16
#define CONTENT_JSON   "application/json"

enum route {
        ROUTE_DEVIATIONS,
        ROUTE_RESPONSES,
        ROUTE_HEALTHZ,
        ROUTE_READYZ,
        ROUTE_METRICS,
        ROUTE_OTHER,
        ROUTE_CNT
};

/* The route label of metrics and logs: templates, never a raw URL. */
static const char *const route_names[ROUTE_CNT] = {
    "/v1/deviations", "/v1/deviations/{id}/responses", "/healthz", "/readyz", "/metrics", "other"};

enum stage {
        STAGE_BODY,     /* reading the body */
        STAGE_WAITING,  /* suspended until settled */
        STAGE_ANSWERED, /* a response is queued */
};

struct request {
        avk_gateway_t *gw;
        struct MHD_Connection *conn;
        enum route route;
        enum stage stage;
        char method[16];
        struct timespec started;
        int party;          /* the token's, -1 before it is checked */
        const char *client; /* the token's label, owned by the gateway's auth */
        int fhir;           /* Content-Type application/fhir+json */
        char url_id[AVK_ID_SIZE];
        char idempotency_key[IDEMPOTENCY_KEY_MAX + 1];
        char *body;
        size_t len, cap, dropped;
        int too_large;
        char id[AVK_ID_SIZE]; /* the document's id, for the log */
        avk_idem_flight_t *flight;
        /* The answer: settled once, under lock. */
        pthread_mutex_t lock;
        int settled, suspended;
        unsigned status;
        char *reply;
        const char *content_type;
        const char *allow;            /* 405 */
        const char *www_authenticate; /* 401 */
};

struct gateway_metrics {
        avk_metric_family_t *requests, *duration, *idempotency;
        avk_metric_t *in_flight, *idem_entries, *index_size, *index_loaded, *kafka_up;
        avk_metric_t *reporter_in_flight, *spool_pending, *filed, *spooled, *unavailable, *rejected;
};

struct avk_gateway {
        const avk_config_t *cfg;
        avk_auth_t *auth;
        avk_reporter_t *reporter;
        avk_index_t *index;
        avk_idem_t *idem;
        avk_metrics_t *metrics;
        struct gateway_metrics m;
        struct MHD_Daemon *daemon;
        char *tls_cert, *tls_key;
        size_t tls_key_len;
        size_t max_body;
        long long max_in_flight;
        int spool; /* intake.spool.dir is set */
        unsigned port;
        atomic_llong in_flight; /* documents sent, waiting for Kafka */
        atomic_int stopping;
        pthread_mutex_t lock; /* active */
        pthread_cond_t idle;
        size_t active; /* requests between the first handler call and completion */
};

static int64_t monotonic_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A malloc'd string from a JSON value it takes over (NULL when out of memory). */
static char *dump(json_t *j)
{
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        return text;
}

/* {"error": summary, "errors": [...]}: the body of every error answer. */
static json_t *error_json(const char *summary)
{
        return json_pack("{s:s,s:[]}", "error", summary, "errors");
}

/* Every error text of an answer passes here: scrubbed, it echoes no identity. */
static void add_error(json_t *body, const char *message)
{
        char clean[2 * AVK_ERROR_MSG_SIZE];
        avk_scrub_copy(clean, sizeof(clean), message);
        json_array_append_new(json_object_get(body, "errors"), json_string(clean));
}

/*
 * Settles req with its answer (text taken over). A request holding an
 * idempotency flight ends it here, so that requests waiting on it get the
 * same answer; only an accepted document's answer is kept for later retries.
 * A suspended connection is resumed, and the handler then queues the answer.
 */
static void settle(struct request *req, unsigned status, char *text)
{
        if (req->flight) {
                avk_idem_finish(req->gw->idem, req->flight, status, text ? text : "",
                                status == MHD_HTTP_ACCEPTED, monotonic_ms());
                req->flight = NULL;
        }
        pthread_mutex_lock(&req->lock);
        req->status = status;
        req->reply = text;
        req->settled = 1;
        if (req->suspended) {
                req->suspended = 0;
                MHD_resume_connection(req->conn);
        }
        pthread_mutex_unlock(&req->lock);
}

static void settle_json(struct request *req, unsigned status, json_t *body)
{
        settle(req, status, dump(body));
}

/* Settles req with an error whose one detail is formatted. */
__attribute__((format(printf, 4, 5))) static void fail(struct request *req, unsigned status,
                                                       const char *summary, const char *fmt, ...)
{
        char detail[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        json_t *body = error_json(summary);
        add_error(body, detail);
        settle_json(req, status, body);
}

/* Settles req with every field error of errs. */
static void fail_fields(struct request *req, unsigned status, const char *summary,
                        const struct avk_errors *errs)
{
        json_t *body = error_json(summary);
        for (size_t i = 0; i < errs->cnt; i++)
                add_error(body, errs->msg[i]);
        if (errs->dropped) {
                char more[64];
                snprintf(more, sizeof(more), "(and %zu more)", errs->dropped);
                add_error(body, more);
        }
        settle_json(req, status, body);
}

static enum MHD_Result queue(struct request *req)
{
        const char *text = req->reply ? req->reply : "";
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT); /* req->reply outlives it */
        if (!resp)
                return MHD_NO;
        unsigned status = req->reply ? req->status : MHD_HTTP_INTERNAL_SERVER_ERROR;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (status == MHD_HTTP_SERVICE_UNAVAILABLE || status == MHD_HTTP_TOO_MANY_REQUESTS)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER_S);
        if (status == MHD_HTTP_UNAUTHORIZED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                        req->www_authenticate);
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow);
        if (atomic_load(&req->gw->stopping))
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        req->status = status;
        req->stage = STAGE_ANSWERED;
        enum MHD_Result ret = MHD_queue_response(req->conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* After work that settles req from another thread was started: answers now
 * when it is settled already, else suspends until it is. */
static enum MHD_Result await(struct request *req)
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

/* ---- checks on the headers ---------------------------------------------- */

static enum route route_of(const char *url, char url_id[AVK_ID_SIZE], int *bad_id)
{
        static const char prefix[] = "/v1/deviations/", suffix[] = "/responses";
        if (strcmp(url, "/v1/deviations") == 0)
                return ROUTE_DEVIATIONS;
        if (strcmp(url, "/healthz") == 0)
                return ROUTE_HEALTHZ;
        if (strcmp(url, "/readyz") == 0)
                return ROUTE_READYZ;
        if (strcmp(url, "/metrics") == 0)
                return ROUTE_METRICS;
        size_t len = strlen(url), id_len = len - (sizeof(prefix) - 1) - (sizeof(suffix) - 1);
        if (len <= sizeof(prefix) - 1 + sizeof(suffix) - 1 ||
            strncmp(url, prefix, sizeof(prefix) - 1) != 0 ||
            strcmp(url + len - (sizeof(suffix) - 1), suffix) != 0)
                return ROUTE_OTHER;
        const char *id = url + sizeof(prefix) - 1;
        if (memchr(id, '/', id_len))
                return ROUTE_OTHER;
        uuid_t parsed;
        snprintf(url_id, AVK_ID_SIZE, "%.*s", (int)id_len, id);
        *bad_id = id_len != AVK_ID_SIZE - 1 || uuid_parse(url_id, parsed) != 0;
        return ROUTE_RESPONSES;
}

static const char *header(struct request *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* Sets req->party from the bearer token; -1 after settling a 401. */
static int authenticate(struct request *req)
{
        static const char challenge[] = "Bearer realm=\"avvik\"";
        static const char invalid[] = "Bearer realm=\"avvik\", error=\"invalid_token\"";
        const char *h = header(req, MHD_HTTP_HEADER_AUTHORIZATION);
        req->www_authenticate = challenge;
        if (!h) {
                fail(req, MHD_HTTP_UNAUTHORIZED, "authentication required",
                     "Authorization: missing; expected \"Bearer <token>\"");
                return -1;
        }
        if (strncasecmp(h, "Bearer ", 7) != 0) {
                fail(req, MHD_HTTP_UNAUTHORIZED, "authentication required",
                     "Authorization: not a Bearer token");
                return -1;
        }
        const char *token = h + 7 + strspn(h + 7, " ");
        size_t len = strlen(token);
        while (len > 0 && token[len - 1] == ' ')
                len--;
        req->www_authenticate = invalid;
        if (len == 0 || len > BEARER_MAX ||
            (req->party = avk_auth_lookup(req->gw->auth, token, len, &req->client)) < 0) {
                fail(req, MHD_HTTP_UNAUTHORIZED, "authentication failed",
                     "Authorization: unknown bearer token");
                return -1;
        }
        return 0;
}

/* Checks Content-Type: application/json, or application/fhir+json on
 * /v1/deviations; a charset, when given, must be UTF-8. -1 after a 415. */
static int check_content_type(struct request *req)
{
        static const char summary[] = "unsupported media type";
        const char *ct = header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!ct) {
                fail(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, summary,
                     "Content-Type: missing; expected application/json%s",
                     req->route == ROUTE_DEVIATIONS ? " or application/fhir+json" : "");
                return -1;
        }
        size_t len = strcspn(ct, ";");
        while (len > 0 && ct[len - 1] == ' ')
                len--;
        if (len == strlen(CONTENT_JSON) && strncasecmp(ct, CONTENT_JSON, len) == 0) {
                req->fhir = 0;
        } else if (req->route == ROUTE_DEVIATIONS && len == strlen("application/fhir+json") &&
                   strncasecmp(ct, "application/fhir+json", len) == 0) {
                req->fhir = 1;
        } else {
                fail(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, summary,
                     "Content-Type: \"%.*s\" is not accepted here; expected application/json%s",
                     (int)(len < 64 ? len : 64), ct,
                     req->route == ROUTE_DEVIATIONS ? " or application/fhir+json" : "");
                return -1;
        }
        for (const char *p = strchr(ct, ';'); p; p = strchr(p + 1, ';')) {
                const char *param = p + 1 + strspn(p + 1, " ");
                if (strncasecmp(param, "charset=", 8) != 0)
                        continue;
                const char *v = param + 8 + (param[8] == '"');
                size_t vlen = strcspn(v, "\"; ");
                if (!(vlen == 5 && strncasecmp(v, "utf-8", 5) == 0)) {
                        fail(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, summary,
                             "Content-Type: charset \"%.*s\": only utf-8 is accepted",
                             (int)(vlen < 32 ? vlen : 32), v);
                        return -1;
                }
        }
        return 0;
}

/* A declared Content-Length over the limit is answered 413 before the body
 * is read. -1 after settling an answer. */
static int check_length(struct request *req)
{
        const char *cl = header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
        if (declared > req->gw->max_body) {
                fail(req, MHD_HTTP_CONTENT_TOO_LARGE, "the body is too large",
                     "body: %llu bytes is over the limit of %zu bytes (gateway.max.body.bytes)",
                     declared, req->gw->max_body);
                return -1;
        }
        return 0;
}

/* The Idempotency-Key header, when present: 1..255 visible ASCII characters. */
static int check_idempotency_key(struct request *req)
{
        const char *key = header(req, "Idempotency-Key");
        if (!key)
                return 0;
        size_t len = strlen(key);
        int visible = len > 0 && len <= IDEMPOTENCY_KEY_MAX;
        for (size_t i = 0; visible && i < len; i++)
                visible = key[i] > 0x20 && key[i] < 0x7f;
        if (!visible) {
                fail(req, MHD_HTTP_BAD_REQUEST, "bad Idempotency-Key",
                     "Idempotency-Key: expected 1 to %d visible ASCII characters",
                     IDEMPOTENCY_KEY_MAX);
                return -1;
        }
        memcpy(req->idempotency_key, key, len + 1);
        return 0;
}

/* ---- health, readiness, metrics ----------------------------------------- */

static void health(struct request *req)
{
        settle_json(req, MHD_HTTP_OK, json_pack("{s:s}", "status", "serving"));
}

static void readiness(struct request *req)
{
        avk_gateway_t *gw = req->gw;
        struct avk_reporter_stats st;
        avk_reporter_stats(gw->reporter, &st);
        int ready = st.kafka_up || gw->spool;
        json_t *body = json_pack("{s:b,s:s,s:s,s:I,s:s}", "ready", ready, "kafka",
                                 st.kafka_up ? "up" : "down", "spool", gw->spool ? "on" : "off",
                                 "spool_pending", (json_int_t)st.spool_pending, "index",
                                 avk_index_loaded(gw->index) ? "loaded" : "loading");
        if (!ready)
                json_object_set_new(body, "error",
                                    json_string("Kafka is unreachable and intake.spool.dir is not "
                                                "set: nothing can be accepted"));
        settle_json(req, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static void metrics(struct request *req)
{
        avk_gateway_t *gw = req->gw;
        struct gateway_metrics *m = &gw->m;
        struct avk_reporter_stats st;
        avk_reporter_stats(gw->reporter, &st);
        avk_metric_set(m->in_flight, atomic_load(&gw->in_flight));
        avk_metric_set(m->idem_entries, (int64_t)avk_idem_size(gw->idem));
        avk_metric_set(m->index_size, (int64_t)avk_index_size(gw->index));
        avk_metric_set(m->index_loaded, avk_index_loaded(gw->index));
        avk_metric_set(m->kafka_up, st.kafka_up ? 1 : 0);
        avk_metric_set(m->reporter_in_flight, (int64_t)st.in_flight);
        avk_metric_set(m->spool_pending, (int64_t)st.spool_pending);
        avk_metric_set(m->filed, (int64_t)st.filed);
        avk_metric_set(m->spooled, (int64_t)st.spooled);
        avk_metric_set(m->unavailable, (int64_t)st.unavailable);
        avk_metric_set(m->rejected, (int64_t)st.rejected);
        req->content_type = AVK_METRICS_CONTENT_TYPE;
        settle(req, MHD_HTTP_OK, avk_metrics_render(gw->metrics));
}

/* ---- filing ------------------------------------------------------------- */

static void count_idempotency(avk_gateway_t *gw, const char *outcome)
{
        avk_metric_add(avk_metrics_series(gw->m.idempotency, (const char *[]){outcome}), 1);
}

/* The reporter's answer, from its thread. */
static void on_sent(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        struct request *req = opaque;
        atomic_fetch_sub(&req->gw->in_flight, 1);
        if (result == AVK_FILED || result == AVK_SPOOLED) {
                json_t *body = json_pack("{s:s,s:s}", "id", id, "status",
                                         result == AVK_FILED ? "filed" : "spooled");
                if (req->route == ROUTE_RESPONSES)
                        json_object_set_new(body, "deviation_id", json_string(req->url_id));
                settle_json(req, MHD_HTTP_ACCEPTED, body);
                return;
        }
        fail(req, MHD_HTTP_SERVICE_UNAVAILABLE,
             "Kafka did not acknowledge the document; retry later with the same request", "%s: %s",
             id, reason ? reason : "not acknowledged");
}

/* The first attempt's answer, for a retry that waited on it. */
static void on_first_answer(void *opaque, unsigned status, const char *body)
{
        settle(opaque, status, strdup(body));
}

/* SHA-256 of what a request asks for: its route, URL id, whether it is FHIR
 * and the document in a canonical form (sorted keys, no spaces), so a retry
 * that serialises the same document differently is still the same request. */
static int request_hash(const struct request *req, const json_t *source,
                        unsigned char hash[AVK_IDEM_HASH_SIZE])
{
        char *canonical = json_dumps(source, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!canonical)
                return -1;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
                 EVP_DigestUpdate(ctx, route_names[req->route], strlen(route_names[req->route])) &&
                 EVP_DigestUpdate(ctx, req->url_id, strlen(req->url_id)) &&
                 EVP_DigestUpdate(ctx, req->fhir ? "\nF\n" : "\nJ\n", 3) &&
                 EVP_DigestUpdate(ctx, canonical, strlen(canonical)) &&
                 EVP_DigestFinal_ex(ctx, hash, NULL);
        EVP_MD_CTX_free(ctx);
        free(canonical);
        return ok ? 0 : -1;
}

/*
 * Claims the request's idempotency keys - (party, Idempotency-Key) and
 * (kind, document id) - for the request. Returns 1 when the caller goes on
 * to file (req->flight set when there were keys), 0 when req is settled or
 * waiting on the first attempt.
 */
static int claim(struct request *req, const char *kind_name, const char *doc_id,
                 const json_t *source)
{
        avk_gateway_t *gw = req->gw;
        char keys[AVK_IDEM_MAX_KEYS][IDEMPOTENCY_KEY_MAX + 64];
        const char *key_ptrs[AVK_IDEM_MAX_KEYS];
        const char *key_names[AVK_IDEM_MAX_KEYS];
        size_t n = 0;
        if (req->idempotency_key[0]) {
                snprintf(keys[n], sizeof(keys[n]), "key %s %s", avk_party_code(req->party),
                         req->idempotency_key);
                key_names[n++] = "Idempotency-Key";
        }
        if (doc_id && strlen(doc_id) == AVK_ID_SIZE - 1) {
                int len = snprintf(keys[n], sizeof(keys[n]), "%s %s", kind_name, doc_id);
                for (int i = len - (AVK_ID_SIZE - 1); i < len; i++)
                        keys[n][i] = (char)tolower((unsigned char)keys[n][i]);
                key_names[n++] = req->route == ROUTE_RESPONSES ? "response_id" : "deviation_id";
        }
        if (n == 0)
                return 1;
        unsigned char hash[AVK_IDEM_HASH_SIZE];
        if (request_hash(req, source, hash) != 0) {
                fail(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", "body: cannot be hashed");
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                key_ptrs[i] = keys[i];
        struct avk_idem_claim c;
        avk_idem_begin(gw->idem, key_ptrs, n, hash, monotonic_ms(), on_first_answer, req, &c);
        switch (c.outcome) {
        case AVK_IDEM_NEW:
                req->flight = c.flight;
                return 1;
        case AVK_IDEM_DONE:
                count_idempotency(gw, "replayed");
                settle(req, c.status, c.body);
                return 0;
        case AVK_IDEM_WAIT:
                count_idempotency(gw, "waited");
                return 0;
        case AVK_IDEM_CONFLICT:
                count_idempotency(gw, "conflict");
                fail(req, MHD_HTTP_UNPROCESSABLE_CONTENT,
                     "the request conflicts with an earlier one",
                     "%s: was used for a different request; a retry must send the same document",
                     key_names[c.key]);
                return 0;
        case AVK_IDEM_FULL:
                count_idempotency(gw, "full");
                break;
        }
        fail(req, MHD_HTTP_SERVICE_UNAVAILABLE, "too many requests in progress",
             "gateway.idempotency.max.entries: every entry is in flight");
        return 0;
}

/*
 * Authorises a response against the index: the receiver acknowledges,
 * answers or rejects; the reporter disputes. Every other kind is held to the
 * receiver's rule, so a symbol added to the schema later is never open to
 * every party. 0 when authorised, -1 after settling the answer.
 */
static int authorize_response(struct request *req, const json_t *doc)
{
        avk_gateway_t *gw = req->gw;
        const char *kind = json_string_value(json_object_get(doc, "kind"));
        if (kind && strcmp(kind, "UNKNOWN") == 0) {
                fail(req, MHD_HTTP_BAD_REQUEST, "the response is not valid",
                     "kind: UNKNOWN is not a response a party can give");
                return -1;
        }
        struct avk_index_entry e;
        if (avk_index_get(gw->index, req->url_id, &e) != 0) {
                if (!avk_index_loaded(gw->index))
                        fail(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the deviation index is loading",
                             "{id}: %s is not in the index yet, which is still reading %s",
                             req->url_id, avk_config_get(gw->cfg, "topic.routed"));
                else
                        fail(req, MHD_HTTP_NOT_FOUND, "unknown deviation",
                             "{id}: deviation %s is not routed yet (no DeviationRouted record "
                             "for it); it can be responded to once it is routed",
                             req->url_id);
                return -1;
        }
        if (!kind)
                return 0; /* validation names it */
        int dispute = strcmp(kind, "DISPUTED") == 0;
        if (dispute ? e.reporter_party == req->party : e.receiver_party == req->party)
                return 0;
        fail(req, MHD_HTTP_FORBIDDEN, "the token's party may not give this response",
             dispute ? "party: %s did not report deviation %s; only the reporter disputes"
                     : "party: %s is not the current receiver of deviation %s",
             avk_party_code(req->party), req->url_id);
        return -1;
}

/* Files doc (which the caller keeps) of kind; source is what the client
 * sent, for the idempotency hash. */
static void file(struct request *req, enum avk_kind kind, json_t *doc, const json_t *source)
{
        avk_gateway_t *gw = req->gw;
        int response = kind == AVK_KIND_RESPONSE;
        const char *doc_id =
            json_string_value(json_object_get(doc, response ? "response_id" : "deviation_id"));
        if (!claim(req, response ? "response" : "deviation", doc_id, source))
                return;
        if (response && authorize_response(req, doc) != 0)
                return;
        if (atomic_fetch_add(&gw->in_flight, 1) >= gw->max_in_flight) {
                atomic_fetch_sub(&gw->in_flight, 1);
                fail(req, MHD_HTTP_SERVICE_UNAVAILABLE, "too many requests waiting for Kafka",
                     "gateway.max.in.flight: %lld documents are waiting for Kafka already",
                     gw->max_in_flight);
                return;
        }
        struct avk_errors errs;
        avk_prepared_t *prepared = NULL;
        enum avk_result result =
            avk_reporter_prepare(gw->reporter, kind, doc, req->id, &errs, &prepared);
        if (result != AVK_FILED) {
                atomic_fetch_sub(&gw->in_flight, 1);
                req->id[0] = '\0';
                if (result == AVK_REJECTED)
                        fail_fields(req, MHD_HTTP_BAD_REQUEST,
                                    response ? "the response is not valid"
                                             : "the deviation is not valid",
                                    &errs);
                else
                        fail_fields(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                    "the document could not be prepared", &errs);
                return;
        }
        avk_reporter_send(gw->reporter, prepared, on_sent, req);
}

/* A document names its party (a missing one is the validator's to report):
 * it must be the token's. Answers 403 and returns 0 when it is not. */
static int is_own_party(struct request *req, const char *path, const json_t *party)
{
        const char *code = json_string_value(party);
        if (!code || strcmp(code, avk_party_code(req->party)) == 0)
                return 1;
        fail(req, MHD_HTTP_FORBIDDEN, "the token's party may act only as itself",
             "%s: \"%.64s\" is not the token's party %s", path, code, avk_party_code(req->party));
        return 0;
}

static void file_deviation(struct request *req, json_t *doc)
{
        json_t *deviation = doc;
        if (req->fhir) {
                struct avk_errors errs;
                avk_errors_init(&errs);
                deviation = avk_fhir_to_deviation(doc, &errs);
                if (!deviation) {
                        fail_fields(req, MHD_HTTP_BAD_REQUEST,
                                    "the FHIR AdverseEvent cannot be mapped to a deviation", &errs);
                        return;
                }
        }
        if (is_own_party(req, "reporter.party",
                         json_object_get(json_object_get(deviation, "reporter"), "party")))
                file(req, AVK_KIND_DEVIATION, deviation, doc);
        if (deviation != doc)
                json_decref(deviation);
}

static void file_response(struct request *req, json_t *doc)
{
        const json_t *id = json_object_get(doc, "deviation_id");
        if (!id) {
                json_object_set_new(doc, "deviation_id", json_string(req->url_id));
        } else if (json_is_string(id) && strcasecmp(json_string_value(id), req->url_id) != 0) {
                fail(req, MHD_HTTP_BAD_REQUEST, "the response is not valid",
                     "deviation_id: \"%.40s\" is not the deviation of the URL, %s",
                     json_string_value(id), req->url_id);
                return;
        }
        if (is_own_party(req, "party", json_object_get(doc, "party")))
                file(req, AVK_KIND_RESPONSE, doc, doc);
}

/* The request is complete: answer a probe, or parse the body and file it.
 * (A probe is answered here, not from its headers: an answer given before
 * the request is complete closes the connection, and probes keep theirs.) */
static void process(struct request *req)
{
        avk_gateway_t *gw = req->gw;
        if (req->route == ROUTE_HEALTHZ) {
                health(req);
                return;
        }
        if (req->route == ROUTE_READYZ) {
                readiness(req);
                return;
        }
        if (req->route == ROUTE_METRICS) {
                metrics(req);
                return;
        }
        if (req->too_large) {
                fail(req, MHD_HTTP_CONTENT_TOO_LARGE, "the body is too large",
                     "body: over the limit of %zu bytes (gateway.max.body.bytes)", gw->max_body);
                return;
        }
        if (req->len == 0) {
                fail(req, MHD_HTTP_BAD_REQUEST, "the body is empty",
                     "body: empty; expected a JSON document");
                return;
        }
        char reason[256];
        json_t *doc = avk_json_parse(req->body, req->len, reason, sizeof(reason));
        free(req->body);
        req->body = NULL;
        if (!doc) {
                fail(req, MHD_HTTP_BAD_REQUEST, "the body is not valid JSON", "body: %s", reason);
                return;
        }
        if (!json_is_object(doc)) {
                fail(req, MHD_HTTP_BAD_REQUEST, "the body is not a JSON object",
                     "body: expected an object, got %s", avk_json_type_name(doc));
                json_decref(doc);
                return;
        }
        if (req->route == ROUTE_DEVIATIONS)
                file_deviation(req, doc);
        else
                file_response(req, doc);
        json_decref(doc);
}

/* Keeps a piece of the body; past the limit, drops it. MHD_NO closes the
 * connection of a body that goes on far past the limit. */
static enum MHD_Result take_body(struct request *req, const char *data, size_t size)
{
        size_t limit = req->gw->max_body;
        if (!req->too_large && req->len + size > limit) {
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

/* ---- the request's life ------------------------------------------------- */

static struct request *request_new(avk_gateway_t *gw, struct MHD_Connection *conn, const char *url,
                                   const char *method, int *bad_id)
{
        struct request *req = calloc(1, sizeof(*req));
        if (!req)
                return NULL;
        req->gw = gw;
        req->conn = conn;
        req->party = -1;
        req->client = "";
        req->content_type = CONTENT_JSON;
        snprintf(req->method, sizeof(req->method), "%s", method);
        clock_gettime(CLOCK_MONOTONIC, &req->started);
        req->route = route_of(url, req->url_id, bad_id);
        pthread_mutex_init(&req->lock, NULL);
        pthread_mutex_lock(&gw->lock);
        gw->active++;
        pthread_mutex_unlock(&gw->lock);
        return req;
}

/* The checks made when the headers are in; settles req when one fails or
 * when the route needs no body. */
static void on_headers(struct request *req, int bad_id)
{
        int api = req->route == ROUTE_DEVIATIONS || req->route == ROUTE_RESPONSES;
        int is_get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
        if (atomic_load(&req->gw->stopping)) {
                fail(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the gateway is shutting down",
                     "server: stopping; retry on another instance or later");
        } else if (req->route == ROUTE_OTHER) {
                fail(req, MHD_HTTP_NOT_FOUND, "no such resource",
                     "path: not one of /v1/deviations, /v1/deviations/{id}/responses, "
                     "/healthz, /readyz, /metrics");
        } else if (api ? strcmp(req->method, "POST") != 0 : !is_get) {
                req->allow = api ? "POST" : "GET, HEAD";
                fail(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed",
                     "method: %s is not allowed here; allowed: %s", req->method, req->allow);
        } else if (api && authenticate(req) == 0 && check_content_type(req) == 0 &&
                   check_length(req) == 0 && check_idempotency_key(req) == 0 && bad_id) {
                fail(req, MHD_HTTP_BAD_REQUEST, "bad deviation id in the URL",
                     "{id}: is not a UUID (8-4-4-4-12 hexadecimal digits)");
        }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
        (void)version;
        struct request *req = *con_cls;
        if (!req) {
                int bad_id = 0;
                if (!(req = request_new(cls, conn, url, method, &bad_id)))
                        return MHD_NO;
                *con_cls = req;
                on_headers(req, bad_id);
                return req->settled ? queue(req) : MHD_YES;
        }
        if (*upload_size) {
                size_t size = *upload_size;
                *upload_size = 0;
                return req->stage == STAGE_BODY ? take_body(req, upload, size) : MHD_YES;
        }
        if (req->stage == STAGE_BODY) {
                process(req);
                return await(req);
        }
        if (req->stage == STAGE_WAITING) {
                pthread_mutex_lock(&req->lock);
                int settled = req->settled;
                pthread_mutex_unlock(&req->lock);
                return settled ? queue(req) : MHD_YES;
        }
        return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
        (void)conn;
        avk_gateway_t *gw = cls;
        struct request *req = *con_cls;
        if (!req)
                return;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double seconds = (double)(now.tv_sec - req->started.tv_sec) +
                         (double)(now.tv_nsec - req->started.tv_nsec) / 1e9;
        char code[16] = "none";
        if (req->stage == STAGE_ANSWERED)
                snprintf(code, sizeof(code), "%u", req->status);
        const char *route = route_names[req->route];
        avk_metric_add(avk_metrics_series(gw->m.requests, (const char *[]){route, code}), 1);
        avk_metric_observe(avk_metrics_series(gw->m.duration, (const char *[]){route}), seconds);
        int api = req->route == ROUTE_DEVIATIONS || req->route == ROUTE_RESPONSES;
        avk_log(api ? AVK_LOG_INFO : AVK_LOG_DEBUG, "gateway", "%s %s %s %.1f ms%s%s%s%s%s%s%s",
                req->method, route, code, seconds * 1000, req->party >= 0 ? " party=" : "",
                req->party >= 0 ? avk_party_code(req->party) : "", req->client[0] ? " client=" : "",
                req->client, req->id[0] ? " id=" : "", req->id,
                why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed)");
        /* A thread that settled req may still be leaving its lock. */
        pthread_mutex_lock(&req->lock);
        pthread_mutex_unlock(&req->lock);
        free(req->body);
        free(req->reply);
        pthread_mutex_destroy(&req->lock);
        free(req);
        *con_cls = NULL;
        pthread_mutex_lock(&gw->lock);
        if (--gw->active == 0)
                pthread_cond_broadcast(&gw->idle);
        pthread_mutex_unlock(&gw->lock);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        (void)cls;
        char line[512];
        vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = '\0';
        avk_log(AVK_LOG_WARN, "http", "%s", line);
}

/* ---- start and stop ----------------------------------------------------- */

static int register_metrics(avk_gateway_t *gw)
{
        struct gateway_metrics *m = &gw->m;
        avk_metrics_t *r = gw->metrics;
        static const char *const no_labels[] = {NULL};
        m->requests = avk_metrics_counter(r, "avk_gateway_requests_total",
                                          "HTTP requests answered, by route and status code.",
                                          (const char *[]){"route", "code", NULL});
        m->duration =
            avk_metrics_histogram(r, "avk_gateway_request_duration_seconds",
                                  "Time from a request's headers to its answer, by route.",
                                  (const char *[]){"route", NULL}, AVK_METRICS_LATENCY_BUCKETS,
                                  AVK_METRICS_LATENCY_BUCKET_CNT);
        m->idempotency = avk_metrics_counter(
            r, "avk_gateway_idempotency_total",
            "Requests recognised as retries: replayed (first answer returned), waited (for the "
            "first attempt), conflict (same key, other document), full (no room).",
            (const char *[]){"outcome", NULL});
        m->in_flight = avk_metrics_series(
            avk_metrics_gauge(r, "avk_gateway_in_flight",
                              "Documents sent and waiting for Kafka's acknowledgement.", no_labels),
            NULL);
        m->idem_entries = avk_metrics_series(
            avk_metrics_gauge(r, "avk_gateway_idempotency_entries",
                              "Idempotency keys held, in flight or remembered.", no_labels),
            NULL);
        m->index_size = avk_metrics_series(
            avk_metrics_gauge(r, "avk_gateway_index_deviations",
                              "Deviations in the routing index (from topic.routed).", no_labels),
            NULL);
        m->index_loaded = avk_metrics_series(
            avk_metrics_gauge(r, "avk_gateway_index_loaded",
                              "1 once the routing index has read topic.routed to its end.",
                              no_labels),
            NULL);
        m->kafka_up = avk_metrics_series(
            avk_metrics_gauge(r, "avk_reporter_kafka_up",
                              "1 when the reporter's last metadata request to Kafka succeeded.",
                              no_labels),
            NULL);
        m->reporter_in_flight = avk_metrics_series(
            avk_metrics_gauge(r, "avk_reporter_in_flight",
                              "Documents the reporter sent whose outcome is not known yet.",
                              no_labels),
            NULL);
        m->spool_pending = avk_metrics_series(
            avk_metrics_gauge(r, "avk_reporter_spool_pending",
                              "Documents in the spool, not yet acknowledged by Kafka.", no_labels),
            NULL);
        avk_metric_family_t *docs =
            avk_metrics_counter(r, "avk_reporter_documents_total",
                                "Documents by outcome: filed (acknowledged by Kafka), spooled, "
                                "unavailable, rejected (by validation).",
                                (const char *[]){"outcome", NULL});
        m->filed = avk_metrics_series(docs, (const char *[]){"filed"});
        m->spooled = avk_metrics_series(docs, (const char *[]){"spooled"});
        m->unavailable = avk_metrics_series(docs, (const char *[]){"unavailable"});
        m->rejected = avk_metrics_series(docs, (const char *[]){"rejected"});
        return m->requests && m->duration && m->idempotency && m->in_flight && m->idem_entries &&
                       m->index_size && m->index_loaded && m->kafka_up && m->reporter_in_flight &&
                       m->spool_pending && m->filed && m->spooled && m->unavailable && m->rejected
                   ? 0
                   : -1;
}

/* Reads a PEM file of the TLS configuration (key names the config key). */
static char *read_pem(const avk_config_t *cfg, const char *key, size_t *len, char *errstr,
                      size_t errstr_size)
{
        const char *path = avk_config_get(cfg, key);
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

static int load_tls(avk_gateway_t *gw, char *errstr, size_t errstr_size)
{
        const char *cert = avk_config_get(gw->cfg, "gateway.tls.cert.file");
        const char *key = avk_config_get(gw->cfg, "gateway.tls.key.file");
        if (!cert && !key)
                return 0;
        if (!cert || !key) {
                snprintf(errstr, errstr_size, "%s: must be set with %s",
                         cert ? "gateway.tls.key.file" : "gateway.tls.cert.file",
                         cert ? "gateway.tls.cert.file" : "gateway.tls.key.file");
                return -1;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
                snprintf(errstr, errstr_size,
                         "gateway.tls.cert.file: this libmicrohttpd was built without TLS");
                return -1;
        }
        size_t cert_len;
        gw->tls_cert = read_pem(gw->cfg, "gateway.tls.cert.file", &cert_len, errstr, errstr_size);
        gw->tls_key = gw->tls_cert ? read_pem(gw->cfg, "gateway.tls.key.file", &gw->tls_key_len,
                                              errstr, errstr_size)
                                   : NULL;
        return gw->tls_key ? 0 : -1;
}

static int listen_http(avk_gateway_t *gw, char *errstr, size_t errstr_size)
{
        const char *listen = avk_config_get(gw->cfg, "gateway.listen");
        struct sockaddr_storage addr = {0};
        if (avk_netaddr_resolve_listen("gateway.listen", listen, &addr, errstr, errstr_size) != 0 ||
            load_tls(gw, errstr, errstr_size) != 0)
                return -1;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        if (addr.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        struct MHD_OptionItem tls[] = {
            {gw->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, gw->tls_cert},
            {MHD_OPTION_HTTPS_MEM_KEY, 0, gw->tls_key},
            {MHD_OPTION_END, 0, NULL}};
        if (gw->tls_cert)
                flags |= MHD_USE_TLS;
        gw->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, gw, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, gw,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE,
            (unsigned)avk_config_get_int(gw->cfg, "gateway.threads"), MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, on_completed, gw,
            MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
        if (!gw->daemon) {
                snprintf(errstr, errstr_size,
                         "gateway.listen: cannot listen on %s (address in use, or not this "
                         "host's?)%s",
                         listen,
                         gw->tls_cert ? ", or the TLS certificate and key do not load" : "");
                return -1;
        }
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(gw->daemon, MHD_DAEMON_INFO_BIND_PORT);
        gw->port = info ? info->port : 0;
        return 0;
}

static void destroy(avk_gateway_t *gw)
{
        if (gw->daemon)
                MHD_stop_daemon(gw->daemon);
        avk_index_destroy(gw->index);
        avk_reporter_destroy(gw->reporter);
        avk_idem_destroy(gw->idem);
        avk_auth_destroy(gw->auth);
        avk_metrics_destroy(gw->metrics);
        free(gw->tls_cert);
        if (gw->tls_key)
                OPENSSL_cleanse(gw->tls_key, gw->tls_key_len);
        free(gw->tls_key);
        pthread_cond_destroy(&gw->idle);
        pthread_mutex_destroy(&gw->lock);
        free(gw);
}

avk_gateway_t *avk_gateway_start(const avk_config_t *cfg, char *errstr, size_t errstr_size)
{
        avk_gateway_t *gw = calloc(1, sizeof(*gw));
        if (!gw) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        gw->cfg = cfg;
        pthread_mutex_init(&gw->lock, NULL);
        pthread_cond_init(&gw->idle, NULL);
        gw->max_body = (size_t)avk_config_get_int(cfg, "gateway.max.body.bytes");
        gw->max_in_flight = avk_config_get_int(cfg, "gateway.max.in.flight");
        gw->spool = avk_config_get(cfg, "intake.spool.dir") != NULL;
        const char *tokens = avk_config_get(cfg, "gateway.tokens.file");
        char reason[512];
        if (!tokens) {
                snprintf(errstr, errstr_size,
                         "gateway.tokens.file: not set; the gateway needs bearer tokens "
                         "(make them with 'avvik token PARTY')");
                goto fail;
        }
        if (!(gw->auth = avk_auth_load(tokens, reason, sizeof(reason)))) {
                snprintf(errstr, errstr_size, "gateway.tokens.file: %s", reason);
                goto fail;
        }
        gw->metrics = avk_metrics_new();
        gw->idem = avk_idem_new((size_t)avk_config_get_int(cfg, "gateway.idempotency.max.entries"),
                                avk_config_get_int(cfg, "gateway.idempotency.ttl.s") * 1000);
        gw->index = avk_index_new();
        if (!gw->metrics || !gw->idem || !gw->index || register_metrics(gw) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (avk_index_start(gw->index, cfg, errstr, errstr_size) != 0 ||
            !(gw->reporter = avk_reporter_new(cfg, errstr, errstr_size)) ||
            listen_http(gw, errstr, errstr_size) != 0)
                goto fail;
        avk_log(AVK_LOG_INFO, "gateway", "%s on port %u, %zu tokens, threads %lld",
                gw->tls_cert ? "HTTPS" : "HTTP", gw->port, avk_auth_count(gw->auth),
                (long long)avk_config_get_int(cfg, "gateway.threads"));
        return gw;
fail:
        destroy(gw);
        return NULL;
}

unsigned avk_gateway_port(const avk_gateway_t *gw)
{
        return gw->port;
}

void avk_gateway_stop(avk_gateway_t *gw)
{
        if (!gw)
                return;
        atomic_store(&gw->stopping, 1);
        MHD_socket listener = MHD_quiesce_daemon(gw->daemon);
        if (listener != MHD_INVALID_SOCKET)
                close(listener);
        /* Every request in progress ends: a suspended one when Kafka answers
         * (within intake.ack.timeout.ms), a stalled upload at the
         * connection timeout. Only then may the daemon stop: it must not
         * hold suspended connections when it does. */
        pthread_mutex_lock(&gw->lock);
        while (gw->active > 0)
                pthread_cond_wait(&gw->idle, &gw->lock);
        pthread_mutex_unlock(&gw->lock);
        destroy(gw);
}
