/*
 * avk_gateway: see gateway.h; status codes and semantics in docs/gateway.md.
 *
 * The HTTP server (common/http/server.h) checks framing, route, method and
 * the declared length; the gateway's hooks check the token, Content-Type
 * and Idempotency-Key when the headers are in (so a request that will fail
 * is answered before its body is read), and file the document once the body
 * is complete. A request that waits - for Kafka's acknowledgement, or for
 * the first attempt of the same idempotent request - is answered later,
 * from the thread that settles it; the server keeps it suspended until then.
 */
#include "producer/gateway/gateway.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <uuid/uuid.h>

#include "common/contract/directory.h"
#include "common/contract/json.h"
#include "common/contract/jsonparse.h"
#include "common/http/server.h"
#include "common/util/clock.h"
#include "common/util/decimal.h"
#include "common/util/hash.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "common/contract/party.h"
#include "common/http/auth.h"
#include "producer/gateway/dispute.h"
#include "producer/intake/fhir.h"
#include "producer/gateway/idempotency.h"
#include "producer/gateway/lookup.h"
#include "producer/gateway/view.h"
#include "producer/intake/reporter.h"

#define RETRY_AFTER_S       "2" /* seconds a client waits after 503 */
#define IDEMPOTENCY_KEY_MAX 255 /* characters in an Idempotency-Key */
#define BEARER_MAX          512 /* characters in a bearer token */
#define CONTENT_JSON        "application/json"

/* A request to /v1, in the HTTP server's per-request state
 * (avk_httpd_req_state()): zeroed when the request starts, set up by the
 * first of the gateway's hooks to see it. */
struct request {
        avk_gateway_t *gw;     /* NULL until set up */
        avk_httpd_req_t *http; /* the server's request */
        int response;          /* POST /v1/deviations/{id}/responses */
        int authenticated;     /* party and client are the token's */
        int party;             /* the token's principal: a party or AVK_VIEW_DESK */
        const char *client;    /* the token's label, owned by the gateway's auth */
        int fhir;              /* Content-Type application/fhir+json */
        char url_id[AVK_ID_SIZE];
        char idempotency_key[IDEMPOTENCY_KEY_MAX + 1];
        char id[AVK_ID_SIZE]; /* the document's id, for the log */
        int derived_id;       /* the id is avk_idem_derive_id()'s, of the Idempotency-Key */
        avk_idem_flight_t *flight;
        char etag[AVK_LOOKUP_ETAG_SIZE];  /* a read route's, for its ETag header */
        char filed[64 + 2 * AVK_ID_SIZE]; /* the 202 of a document sent, while it is answered */
};

struct gateway_metrics {
        avk_metric_family_t *requests, *duration, *idempotency;
        avk_metric_t *in_flight, *idem_entries, *view_size, *view_bytes, *view_loaded, *kafka_up;
        avk_metric_t *reporter_in_flight, *spool_pending, *drain_stalled, *filed, *spooled,
            *unavailable, *rejected, *transactions;
};

struct avk_gateway {
        const avk_config_t *cfg;
        avk_auth_t *auth;
        avk_reporter_t *reporter;
        avk_dispute_t *dispute; /* NULL without deadlines.file */
        avk_view_t *view;
        avk_lookup_t *lookup;
        avk_idem_t *idem;
        avk_metrics_t *metrics;
        struct gateway_metrics m;
        avk_httpd_t *httpd;
        long long max_in_flight;
        int spool;              /* intake.spool.dir is set */
        atomic_llong in_flight; /* documents sent, waiting for Kafka */
        /* 1 from a start with documents in the spool until the spool was once
         * empty: a document of an earlier run may be there, not in the view. */
        atomic_int spool_backlog;
};

int avk_gateway_principal_parse(const char *code, char *errstr, size_t errstr_size)
{
        if (strcmp(code, AVK_VIEW_DESK_CODE) == 0)
                return AVK_VIEW_DESK;
        char reason[256];
        int party = avk_party_parse(code, reason, sizeof(reason));
        if (party < 0)
                snprintf(errstr, errstr_size, "%s; or %s, the county's triage desk", reason,
                         AVK_VIEW_DESK_CODE);
        return party;
}

/* "DESK", "VGR" or a municipality code. */
static const char *principal_code(int principal)
{
        return principal == AVK_VIEW_DESK ? AVK_VIEW_DESK_CODE : avk_party_code(principal);
}

static int64_t monotonic_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The gateway's state of http, set up on first use. */
static struct request *request_of(avk_httpd_req_t *http, avk_gateway_t *gw)
{
        struct request *req = avk_httpd_req_state(http);
        if (req->gw)
                return req;
        req->gw = gw;
        req->http = http;
        const char *id = avk_httpd_req_param(http, "id");
        req->response = id != NULL && strcmp(avk_httpd_req_method(http), "POST") == 0;
        size_t id_len = id ? strnlen(id, sizeof(req->url_id) - 1) : 0;
        memcpy(req->url_id, id ? id : "", id_len);
        req->url_id[id_len] = '\0';
        return req;
}

/*
 * Settles req with its answer (text taken over). A request holding an
 * idempotency flight ends it here, so that requests waiting on it get the
 * same answer; only an accepted document's answer is kept for later retries.
 */
static void finish_flight(struct request *req, unsigned status, const char *text)
{
        if (req->flight) {
                avk_idem_finish(req->gw->idem, req->flight, status, text ? text : "",
                                status == MHD_HTTP_ACCEPTED, monotonic_ms());
                req->flight = NULL;
        }
}

static void settle(struct request *req, unsigned status, char *text)
{
        finish_flight(req, status, text);
        avk_httpd_answer(req->http, status, CONTENT_JSON, text, text ? strlen(text) : 0);
}

static void settle_json(struct request *req, unsigned status, json_t *body)
{
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        settle(req, status, text);
}

/* Settles req with an error whose one detail is formatted. */
__attribute__((format(printf, 4, 5))) static void fail(struct request *req, unsigned status,
                                                       const char *summary, const char *fmt, ...)
{
        char detail[1024];
        const char *details[] = {detail};
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        settle(req, status, avk_httpd_error_body(summary, details, 1, 0));
}

/* Settles req with every field error of errs. */
static void fail_fields(struct request *req, unsigned status, const char *summary,
                        const struct avk_errors *errs)
{
        const char *details[AVK_ERRORS_MAX];
        for (size_t i = 0; i < errs->cnt; i++)
                details[i] = errs->msg[i];
        settle(req, status, avk_httpd_error_body(summary, details, errs->cnt, errs->dropped));
}

/* ---- checks on the headers ---------------------------------------------- */

static const char *header(struct request *req, const char *name)
{
        return avk_httpd_req_header(req->http, name);
}

/* Settles req with a 401 that carries challenge. */
static void unauthorized(struct request *req, const char *challenge, const char *summary,
                         const char *detail)
{
        avk_httpd_req_add_header(req->http, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
        fail(req, MHD_HTTP_UNAUTHORIZED, summary, "%s", detail);
}

/* The routes' authentication hook: sets the party from the bearer token; -1
 * after settling a 401. */
static int authenticate(avk_httpd_req_t *http, void *opaque)
{
        static const char challenge[] = "Bearer realm=\"avvik\"";
        static const char invalid[] = "Bearer realm=\"avvik\", error=\"invalid_token\"";
        struct request *req = request_of(http, opaque);
        const char *h = header(req, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!h) {
                unauthorized(req, challenge, "authentication required",
                             "Authorization: missing; expected \"Bearer <token>\"");
                return -1;
        }
        size_t len;
        const char *token = avk_auth_bearer(h, &len);
        if (!token) {
                unauthorized(req, challenge, "authentication required",
                             "Authorization: not a Bearer token");
                return -1;
        }
        if (len == 0 || len > BEARER_MAX ||
            (req->party = avk_auth_lookup(req->gw->auth, token, len, &req->client)) < 0) {
                unauthorized(req, invalid, "authentication failed",
                             "Authorization: unknown bearer token");
                return -1;
        }
        req->authenticated = 1;
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
                     !req->response ? " or application/fhir+json" : "");
                return -1;
        }
        size_t len = strcspn(ct, ";");
        while (len > 0 && ct[len - 1] == ' ')
                len--;
        if (len == strlen(CONTENT_JSON) && strncasecmp(ct, CONTENT_JSON, len) == 0) {
                req->fhir = 0;
        } else if (!req->response && len == strlen("application/fhir+json") &&
                   strncasecmp(ct, "application/fhir+json", len) == 0) {
                req->fhir = 1;
        } else {
                fail(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, summary,
                     "Content-Type: \"%.*s\" is not accepted here; expected application/json%s",
                     (int)(len < 64 ? len : 64), ct,
                     !req->response ? " or application/fhir+json" : "");
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

/* ---- readiness, metrics ------------------------------------------------- */

static void readiness(avk_httpd_req_t *http, void *opaque)
{
        avk_gateway_t *gw = opaque;
        struct avk_reporter_stats st;
        avk_reporter_stats(gw->reporter, &st);
        int loaded = avk_view_loaded(gw->view);
        int ready = (st.kafka_up || gw->spool) && !st.drain_stalled && loaded;
        json_t *body = json_pack(
            "{s:b,s:s,s:s,s:I,s:s,s:s}", "ready", ready, "kafka", st.kafka_up ? "up" : "down",
            "spool", gw->spool ? "on" : "off", "spool_pending", (json_int_t)st.spool_pending,
            "drain", st.drain_stalled ? "stalled" : "ok", "view", loaded ? "loaded" : "loading");
        if (!loaded)
                json_object_set_new(body, "error",
                                    json_string("the deviation view is still reading the "
                                                "lifecycle topics"));
        else if (st.drain_stalled)
                json_object_set_new(body, "error",
                                    json_string("the spool's drain moves nothing into Kafka "
                                                "although Kafka answers (see the gateway's log)"));
        else if (!ready)
                json_object_set_new(body, "error",
                                    json_string("Kafka is unreachable and intake.spool.dir is not "
                                                "set: nothing can be accepted"));
        avk_httpd_answer_json(http, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

/* Before /metrics renders: the gauges of what the gateway and reporter hold. */
static void refresh_metrics(void *opaque)
{
        avk_gateway_t *gw = opaque;
        struct gateway_metrics *m = &gw->m;
        struct avk_reporter_stats st;
        avk_reporter_stats(gw->reporter, &st);
        avk_metric_set(m->in_flight, atomic_load(&gw->in_flight));
        avk_metric_set(m->idem_entries, (int64_t)avk_idem_size(gw->idem));
        avk_metric_set(m->view_size, (int64_t)avk_view_size(gw->view));
        avk_metric_set(m->view_bytes, (int64_t)avk_view_memory(gw->view));
        avk_metric_set(m->view_loaded, avk_view_loaded(gw->view));
        avk_metric_set(m->kafka_up, st.kafka_up ? 1 : 0);
        avk_metric_set(m->reporter_in_flight, (int64_t)st.in_flight);
        avk_metric_set(m->spool_pending, (int64_t)st.spool_pending);
        avk_metric_set(m->drain_stalled, st.drain_stalled);
        avk_metric_set(m->filed, (int64_t)st.filed);
        avk_metric_set(m->spooled, (int64_t)st.spooled);
        avk_metric_set(m->unavailable, (int64_t)st.unavailable);
        avk_metric_set(m->rejected, (int64_t)st.rejected);
        avk_metric_set(m->transactions, (int64_t)st.txn_committed);
}

/* ---- filing ------------------------------------------------------------- */

static void count_idempotency(avk_gateway_t *gw, const char *outcome)
{
        avk_metric_add(avk_metrics_series(gw->m.idempotency, (const char *[]){outcome}), 1);
}

/* Copies text to at, without its NUL; returns the end. */
static char *put(char *at, const char *text)
{
        size_t len = strlen(text);
        memcpy(at, text, len);
        return at + len;
}

/* The reporter's answer, from its thread. */
static void on_sent(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        struct request *req = opaque;
        atomic_fetch_sub(&req->gw->in_flight, 1);
        if (result == AVK_FILED || result == AVK_SPOOLED) {
                /* Both ids are UUIDs (validated, at most AVK_ID_SIZE - 1
                 * characters), so the JSON needs no escaping and fits: put
                 * together from its pieces (no tree, no printf), on the
                 * reporter's one thread, into the request's state, which
                 * outlives the answer. */
                char *at = req->filed;
                at = put(at, "{\"id\":\"");
                at = put(at, id);
                at = put(at, result == AVK_FILED ? "\",\"status\":\"filed\""
                                                 : "\",\"status\":\"spooled\"");
                if (req->response) {
                        at = put(at, ",\"deviation_id\":\"");
                        at = put(at, req->url_id);
                        at = put(at, "\"");
                }
                at = put(at, "}");
                *at = '\0';
                finish_flight(req, MHD_HTTP_ACCEPTED, req->filed);
                avk_httpd_answer_static(req->http, MHD_HTTP_ACCEPTED, CONTENT_JSON, req->filed,
                                        (size_t)(at - req->filed));
                return;
        }
        fail(req, MHD_HTTP_SERVICE_UNAVAILABLE,
             "the document was not stored; retry later with the same request", "%s: %s", id,
             reason ? reason : "not stored");
}

/* The first attempt's answer, for a retry that waited on it. */
static void on_first_answer(void *opaque, unsigned status, const char *body)
{
        settle(opaque, status, strdup(body));
}

/* SHA-256 of what a request asks for: its route, URL id, whether it is FHIR
 * and the document's digest (avk_receipt_digest() of its Avro body, the
 * view's digest too), so a retry that serialises the same document
 * differently - other whitespace, another key order - is still the same
 * request (docs/gateway.md, "Idempotency"). */
static int request_hash(const struct request *req, const unsigned char digest[AVK_VIEW_DIGEST_SIZE],
                        unsigned char hash[AVK_IDEM_HASH_SIZE])
{
        const char *label = avk_httpd_req_label(req->http);
        EVP_MD_CTX *ctx = avk_hash_sha256_begin();
        int ok = ctx && EVP_DigestUpdate(ctx, label, strlen(label)) &&
                 EVP_DigestUpdate(ctx, req->url_id, strlen(req->url_id)) &&
                 EVP_DigestUpdate(ctx, req->fhir ? "\nF\n" : "\nJ\n", 3) &&
                 EVP_DigestUpdate(ctx, digest, AVK_VIEW_DIGEST_SIZE) &&
                 EVP_DigestFinal_ex(ctx, hash, NULL);
        return ok ? 0 : -1;
}

/* Settles req with the one answer to a deviation id under which another
 * document was filed: for every party, the owner too, whoever filed it. */
static void refuse_taken_id(struct request *req)
{
        fail(req, MHD_HTTP_CONFLICT, "the deviation id cannot be used",
             "deviation_id: a different document was filed under this id; a retry must send "
             "the same document, a new deviation needs a new id");
}

/*
 * Claims the request's idempotency keys - (party, Idempotency-Key) and
 * (kind, document id) - for the request. Returns 1 when the caller goes on
 * to file (req->flight set when there were keys), 0 when req is settled or
 * waiting on the first attempt.
 */
static int claim(struct request *req, const char *kind_name, const char *doc_id,
                 const unsigned char digest[AVK_VIEW_DIGEST_SIZE])
{
        avk_gateway_t *gw = req->gw;
        char keys[AVK_IDEM_MAX_KEYS][IDEMPOTENCY_KEY_MAX + 64];
        const char *key_ptrs[AVK_IDEM_MAX_KEYS];
        const char *key_names[AVK_IDEM_MAX_KEYS];
        size_t n = 0;
        if (req->idempotency_key[0]) {
                snprintf(keys[n], sizeof(keys[n]), "key %s %s", principal_code(req->party),
                         req->idempotency_key);
                key_names[n++] = "Idempotency-Key";
        }
        if (doc_id && strlen(doc_id) == AVK_ID_SIZE - 1) { /* "KIND id", the id in lower case */
                char *at = put(keys[n], kind_name);
                *at++ = ' ';
                for (size_t i = 0; i < AVK_ID_SIZE - 1; i++)
                        *at++ = (char)tolower((unsigned char)doc_id[i]);
                *at = '\0';
                key_names[n++] = req->response ? "response_id" : "deviation_id";
        }
        if (n == 0)
                return 1;
        unsigned char hash[AVK_IDEM_HASH_SIZE];
        if (request_hash(req, digest, hash) != 0) {
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
                if (!req->response && strcmp(key_names[c.key], "deviation_id") == 0) {
                        refuse_taken_id(req); /* the same answer as the view's */
                        return 0;
                }
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

/* Settles req with the 409 of a response that the deviation's course has
 * overtaken or made meaningless (docs/gateway.md, "Who may respond"). */
static void refuse_response(struct request *req, enum avk_view_respond verdict, const char *kind)
{
        int32_t hop = 0;
        int receiver = avk_view_receiver(req->gw->view, req->url_id, &hop, NULL);
        const char *current = receiver >= 0 ? principal_code(receiver) : "not known yet";
        const char *party = principal_code(req->party);
        switch (verdict) {
        case AVK_VIEW_RESPOND_STALE:
                fail(req, MHD_HTTP_CONFLICT, "the deviation was routed on",
                     "kind: %s comes from %s, a receiver of an earlier hop; deviation %s is routed "
                     "to %s (hop %d), which alone gives it now",
                     kind, party, req->url_id, current, (int)hop);
                return;
        case AVK_VIEW_RESPOND_REJECTED:
                fail(req, MHD_HTTP_CONFLICT, "the deviation is rejected already",
                     "kind: %s was given by %s for deviation %s at hop %d already; it is being "
                     "routed on",
                     kind, party, req->url_id, (int)hop);
                return;
        case AVK_VIEW_RESPOND_NOTHING_PENDING:
                fail(req, MHD_HTTP_CONFLICT, "no escalation step waits for confirmation",
                     "kind: %s confirms a manual step of the ladder; deviation %s has none "
                     "pending (docs/escalation.md)",
                     kind, req->url_id);
                return;
        default: /* NOT_RECEIVER, for a wrong-receiver rejection */
                fail(req, MHD_HTTP_CONFLICT, "the party is not the deviation's receiver",
                     "kind: %s is given by the current receiver of deviation %s, %s (hop %d); "
                     "%s reported it",
                     kind, req->url_id, current, (int)hop, party);
                return;
        }
}

/*
 * Authorises a response against the view: the receiver in force
 * acknowledges, answers or rejects; the reporter disputes an answer within
 * the dispute window; either of them confirms a manual escalation step that
 * waits. Every other kind is held to the receiver's rule, so a symbol added
 * to the schema later is never open to every party. A deviation the party
 * is not part of is answered as one that does not exist; a response the
 * course has overtaken (an earlier receiver's, a second rejection, a
 * confirmation of nothing) is a 409 that says why. 0 when authorised, -1
 * after settling the answer.
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
        int64_t until = -1;
        enum avk_view_respond verdict = avk_view_may_respond(
            gw->view, req->url_id, req->party, kind ? kind : "", avk_clock_system_ms(), &until);
        switch (verdict) {
        case AVK_VIEW_RESPOND_OK:
                if (req->party == AVK_VIEW_DESK && kind &&
                    strcmp(kind, "REJECTED_WRONG_RECEIVER") == 0 &&
                    !json_string_value(json_object_get(doc, "suggested_receiver"))) {
                        /* The router keeps it at the desk: the desk passes it on by naming. */
                        fail(req, MHD_HTTP_BAD_REQUEST, "the response is not valid",
                             "suggested_receiver: the triage desk passes deviation %s on to the "
                             "party it names; without one the deviation stays at the desk",
                             req->url_id);
                        return -1;
                }
                return 0;
        case AVK_VIEW_RESPOND_UNKNOWN:
                if (!avk_view_loaded(gw->view))
                        fail(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the deviation view is loading",
                             "{id}: %s is not known yet; the gateway is still reading the "
                             "lifecycle topics",
                             req->url_id);
                else
                        fail(req, MHD_HTTP_NOT_FOUND, "unknown deviation",
                             "{id}: no deviation %s that this party reported or was routed",
                             req->url_id);
                return -1;
        case AVK_VIEW_RESPOND_NOT_RECEIVER:
                if (!kind)
                        return 0; /* validation names it */
                if (strcmp(kind, "REJECTED_WRONG_RECEIVER") == 0) {
                        refuse_response(req, verdict, kind);
                        return -1;
                }
                fail(req, MHD_HTTP_FORBIDDEN, "the token's party may not give this response",
                     "party: %s is not the current receiver of deviation %s",
                     principal_code(req->party), req->url_id);
                return -1;
        case AVK_VIEW_RESPOND_NOT_REPORTER:
                fail(req, MHD_HTTP_FORBIDDEN, "the token's party may not give this response",
                     "party: %s did not report deviation %s; only the reporter disputes",
                     principal_code(req->party), req->url_id);
                return -1;
        case AVK_VIEW_RESPOND_NOT_PARTY:
                fail(req, MHD_HTTP_FORBIDDEN, "the token's party may not give this response",
                     "party: %s is neither the reporter nor the current receiver of deviation %s",
                     principal_code(req->party), req->url_id);
                return -1;
        case AVK_VIEW_RESPOND_NOT_ANSWERED:
                fail(req, MHD_HTTP_CONFLICT, "there is no answer to dispute",
                     "kind: DISPUTED needs an answer; deviation %s has none since it was "
                     "routed or last disputed",
                     req->url_id);
                return -1;
        case AVK_VIEW_RESPOND_WINDOW_OVER:
                fail(req, MHD_HTTP_CONFLICT, "the dispute window is over",
                     "kind: DISPUTED is possible until the dispute window ends; for deviation %s "
                     "it has ended and the deviation is closed or closes now",
                     req->url_id);
                return -1;
        case AVK_VIEW_RESPOND_STALE:
        case AVK_VIEW_RESPOND_REJECTED:
        case AVK_VIEW_RESPOND_NOTHING_PENDING:
                if (!kind)
                        return 0; /* validation names it */
                refuse_response(req, verdict, kind);
                return -1;
        }
        return -1;
}

/* 1 while documents spooled before this start may not be in Kafka yet and
 * the drain is moving them there (Kafka and the registry answer): a wait of
 * seconds. During an outage the document is taken (and spooled): holding
 * every document with an id back for the outage would cost more than the
 * rare retry of a document the killed run spooled unanswered. */
static int spool_backlog(avk_gateway_t *gw)
{
        if (!atomic_load(&gw->spool_backlog))
                return 0;
        struct avk_reporter_stats st;
        avk_reporter_stats(gw->reporter, &st);
        if (st.spool_pending == 0) {
                atomic_store(&gw->spool_backlog, 0);
                return 0;
        }
        return st.kafka_up && st.registry_up && !st.drain_stalled;
}

/*
 * A deviation id belongs to the first document filed under it, as the view
 * read it from the document's receipt - whichever gateway instance or
 * process filed it (docs/gateway.md, "The view"). The same document again is a retry and answered
 * as filed; another document is refused with one answer for every party, the owner too, so the
 * answer says nothing of who holds the id (under an id derived from an Idempotency-Key it is that
 * key's conflict, 422). An id the client chose or derived from its key may belong to a document an
 * earlier run left in the spool, not in Kafka yet: until the spool has drained once such a document
 * is 503, never filed twice. Returns 1 when prepared is new and goes on to Kafka, 0 after settling
 * req (prepared freed).
 */
static int check_ownership(struct request *req, avk_prepared_t *prepared, int chosen_id,
                           const unsigned char digest[AVK_VIEW_DIGEST_SIZE])
{
        avk_gateway_t *gw = req->gw;
        if (!avk_view_loaded(gw->view)) {
                fail(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the deviation view is loading",
                     "deviation_id: cannot be checked yet; the gateway is still reading the "
                     "lifecycle topics; retry later with the same request");
        } else {
                switch (avk_view_filing(gw->view, req->id, digest)) {
                case AVK_VIEW_NEW:
                        if (!chosen_id || !spool_backlog(gw))
                                return 1;
                        fail(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                             "the deviation id cannot be checked yet",
                             "%s: documents spooled before the gateway restarted are not all in "
                             "Kafka yet; retry later with the same request",
                             req->derived_id ? "Idempotency-Key" : "deviation_id");
                        break;
                case AVK_VIEW_SAME:
                        if (req->derived_id)
                                count_idempotency(gw, "replayed");
                        settle_json(req, MHD_HTTP_ACCEPTED,
                                    json_pack("{s:s,s:s}", "id", req->id, "status", "filed"));
                        break;
                case AVK_VIEW_CONFLICT:
                        if (!req->derived_id) {
                                refuse_taken_id(req);
                                break;
                        }
                        count_idempotency(gw, "conflict");
                        fail(req, MHD_HTTP_UNPROCESSABLE_CONTENT,
                             "the request conflicts with an earlier one",
                             "Idempotency-Key: was used for a different request; a retry must "
                             "send the same document");
                        break;
                }
        }
        avk_prepared_destroy(prepared);
        return 0;
}

/* Gives doc, which carries no id of its own, the id of the request's
 * Idempotency-Key. -1 after settling req. */
static int give_derived_id(struct request *req, json_t *doc, int response)
{
        char id[AVK_IDEM_ID_SIZE];
        if (avk_idem_derive_id(response ? "response" : "deviation", principal_code(req->party),
                               req->idempotency_key, id) != 0 ||
            json_object_set_new(doc, response ? "response_id" : "deviation_id", json_string(id)) !=
                0) {
                fail(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the document could not be prepared",
                     "Idempotency-Key: no id could be made of it");
                return -1;
        }
        req->derived_id = 1;
        return 0;
}

/*
 * A response the view read from topic.response under its response_id (given,
 * or derived from the Idempotency-Key): the same response again is a retry -
 * after a restart, on another instance - answered as filed before the view's
 * judgement of the deviation's course, which the first one may have moved
 * on; another response under the id is refused. Returns 1 after settling
 * req, 0 when the response is not known (or not valid: filing answers that).
 */
static int replay_response(struct request *req, const json_t *doc)
{
        avk_gateway_t *gw = req->gw;
        const char *response_id = json_string_value(json_object_get(doc, "response_id"));
        if (!response_id ||
            avk_view_response(gw->view, req->url_id, response_id, NULL) == AVK_VIEW_NEW)
                return 0;
        struct avk_errors errs;
        avk_prepared_t *prepared = NULL;
        if (avk_reporter_prepare(gw->reporter, AVK_KIND_RESPONSE, doc, req->id, &errs, &prepared) !=
            AVK_FILED)
                return 0;
        unsigned char digest[AVK_VIEW_DIGEST_SIZE];
        enum avk_view_filing seen =
            avk_prepared_digest(prepared, digest) == 0
                ? avk_view_response(gw->view, req->url_id, response_id, digest)
                : AVK_VIEW_NEW;
        avk_prepared_destroy(prepared);
        switch (seen) {
        case AVK_VIEW_NEW:
                return 0;
        case AVK_VIEW_SAME:
                count_idempotency(gw, "replayed");
                settle_json(req, MHD_HTTP_ACCEPTED,
                            json_pack("{s:s,s:s,s:s}", "id", req->id, "deviation_id", req->url_id,
                                      "status", "filed"));
                return 1;
        case AVK_VIEW_CONFLICT:
                break;
        }
        count_idempotency(gw, "conflict");
        fail(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "the request conflicts with an earlier one",
             "%s: was used for a different response; a retry must send the same document",
             req->derived_id ? "Idempotency-Key" : "response_id");
        return 1;
}

/*
 * Files prepared (taken over), req's document of kind: claims its
 * idempotency keys under the document's digest, then sends it - a deviation
 * once the view has not seen its id with another document. own_id: the
 * document carried its id; chosen_id: it carried it, or it was derived from
 * the Idempotency-Key.
 */
static void file_prepared(struct request *req, enum avk_kind kind, avk_prepared_t *prepared,
                          int own_id, int chosen_id)
{
        avk_gateway_t *gw = req->gw;
        int response = kind == AVK_KIND_RESPONSE;
        unsigned char digest[AVK_VIEW_DIGEST_SIZE];
        if (avk_prepared_digest(prepared, digest) != 0) {
                fail(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the document could not be prepared",
                     "body: cannot be hashed");
                goto drop;
        }
        if (!claim(req, response ? "response" : "deviation", own_id ? req->id : NULL, digest))
                goto drop;
        if (atomic_fetch_add(&gw->in_flight, 1) >= gw->max_in_flight) {
                atomic_fetch_sub(&gw->in_flight, 1);
                fail(req, MHD_HTTP_SERVICE_UNAVAILABLE, "too many requests waiting for Kafka",
                     "gateway.max.in.flight: %lld documents are waiting for Kafka already",
                     gw->max_in_flight);
                goto drop;
        }
        if (!response && !check_ownership(req, prepared, chosen_id, digest)) {
                atomic_fetch_sub(&gw->in_flight, 1);
                return;
        }
        avk_reporter_send(gw->reporter, prepared, on_sent, req);
        return;
drop:
        avk_prepared_destroy(prepared);
}

/* Files doc (which the caller keeps) of kind; text, when not NULL, is doc's
 * JSON text as the client sent it (len bytes), validated and encoded in the
 * single pass (common/contract/jsonstream.h) instead of through the tree:
 * the same verdict, errors and bytes, without the tree walk and avro-c's
 * values. */
static void file(struct request *req, enum avk_kind kind, json_t *doc, const char *text, size_t len)
{
        avk_gateway_t *gw = req->gw;
        int response = kind == AVK_KIND_RESPONSE;
        int own_id = json_string_value(
                         json_object_get(doc, response ? "response_id" : "deviation_id")) != NULL;
        int chosen_id = own_id || req->idempotency_key[0];
        if (!own_id && req->idempotency_key[0]) {
                if (give_derived_id(req, doc, response) != 0)
                        return;
                text = NULL; /* the id is in the tree only: the text is no longer the document */
        }
        if (response && (replay_response(req, doc) || authorize_response(req, doc) != 0))
                return;
        struct avk_errors errs;
        avk_prepared_t *prepared = NULL;
        enum avk_result result =
            text ? avk_reporter_prepare_json(gw->reporter, kind, text, len, req->id, &errs,
                                             &prepared)
                 : avk_reporter_prepare(gw->reporter, kind, doc, req->id, &errs, &prepared);
        if (result != AVK_FILED) {
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
        file_prepared(req, kind, prepared, own_id, chosen_id);
}

/* A deviation filed as JSON text that carries its own id and names the
 * token's party - the common case - in the single pass, without a JSON
 * tree. Returns 0 to leave req to the tree path, which gives every other
 * verdict (the desk's, another party's, a derived id, field errors). */
static int file_own(struct request *req, const char *text, size_t len)
{
        if (req->party == AVK_VIEW_DESK)
                return 0;
        char party[AVK_PARTY_SIZE];
        struct avk_errors errs;
        avk_prepared_t *prepared;
        if (avk_reporter_prepare_own(req->gw->reporter, AVK_KIND_DEVIATION, text, len, req->id,
                                     party, &errs, &prepared) != AVK_FILED)
                return 0;
        if (strcmp(party, principal_code(req->party)) != 0) {
                avk_prepared_destroy(prepared);
                req->id[0] = '\0';
                return 0;
        }
        file_prepared(req, AVK_KIND_DEVIATION, prepared, 1, 1);
        return 1;
}

/* A document names its party (a missing one is the validator's to report):
 * it must be the token's. The desk files no deviation, and responds as the
 * party its routing records (docs/gateway.md, "The triage desk"); to a
 * deviation not at the desk the view answers it. Answers 403 and returns 0
 * when the party is not the token's. */
static int is_own_party(struct request *req, const char *path, const json_t *party)
{
        const char *code = json_string_value(party);
        if (req->party == AVK_VIEW_DESK && !req->response) {
                fail(req, MHD_HTTP_FORBIDDEN, "the triage desk files no deviations",
                     "%s: the token is the county's triage desk, which triages deviations and "
                     "reports none",
                     path);
                return 0;
        }
        const char *own = principal_code(req->party);
        if (req->party == AVK_VIEW_DESK) {
                int32_t hop;
                int recorded = -1;
                if (avk_view_receiver(req->gw->view, req->url_id, &hop, &recorded) != AVK_VIEW_DESK)
                        return 1;
                own = avk_party_code(recorded);
        }
        if (!code || strcmp(code, own) == 0)
                return 1;
        fail(req, MHD_HTTP_FORBIDDEN, "the token's party may act only as itself",
             "%s: \"%.64s\" is not the token's party %s", path, code, own);
        return 0;
}

/* Who speaks is the token's to say: the desk's responses are TRIAGE_DESK (the gateway fills it
 * in), a party's are not - the desk alone may name its own record party as the receiver
 * (docs/routing.md). A value that is no string is the validator's to report. Answers 403 and
 * returns 0 when the document claims another speaker than the token. */
static int is_own_responder(struct request *req, const json_t *doc)
{
        const char *claimed = json_string_value(json_object_get(doc, "responder"));
        int desk = req->party == AVK_VIEW_DESK;
        if (!claimed || (strcmp(claimed, AVK_DIRECTORY_DESK_RESPONDER) == 0) == desk)
                return 1;
        if (desk)
                fail(req, MHD_HTTP_FORBIDDEN, "the triage desk responds as the desk",
                     "responder: \"%.64s\" is not the token's; the county's triage desk responds "
                     "as %s",
                     claimed, AVK_DIRECTORY_DESK_RESPONDER);
        else
                fail(req, MHD_HTTP_FORBIDDEN, "only the triage desk responds as the desk",
                     "responder: %s is the county's triage desk; the token is party %s, which "
                     "responds for itself",
                     AVK_DIRECTORY_DESK_RESPONDER, principal_code(req->party));
        return 0;
}

static void file_deviation(struct request *req, json_t *doc, const char *text, size_t len)
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
                file(req, AVK_KIND_DEVIATION, deviation, req->fhir ? NULL : text, len);
        if (deviation != doc)
                json_decref(deviation);
}

static void file_response(struct request *req, json_t *doc, const char *text, size_t len)
{
        const json_t *id = json_object_get(doc, "deviation_id");
        if (!id) {
                text = NULL; /* doc is no longer the body */
                json_object_set_new(doc, "deviation_id", json_string(req->url_id));
        } else if (json_is_string(id) && strcasecmp(json_string_value(id), req->url_id) != 0) {
                fail(req, MHD_HTTP_BAD_REQUEST, "the response is not valid",
                     "deviation_id: \"%.40s\" is not the deviation of the URL, %s",
                     json_string_value(id), req->url_id);
                return;
        }
        if (!is_own_party(req, "party", json_object_get(doc, "party")) ||
            !is_own_responder(req, doc))
                return;
        if (req->party == AVK_VIEW_DESK && !json_object_get(doc, "responder")) {
                text = NULL; /* doc is no longer the body */
                json_object_set_new(doc, "responder", json_string(AVK_DIRECTORY_DESK_RESPONDER));
        }
        file(req, AVK_KIND_RESPONSE, doc, text, len);
}

/* The route's handler, once the request is complete: parse the body and file it. */
static void process(avk_httpd_req_t *http, void *opaque)
{
        struct request *req = request_of(http, opaque);
        size_t len;
        const char *body = avk_httpd_req_body(http, &len);
        if (len == 0) {
                fail(req, MHD_HTTP_BAD_REQUEST, "the body is empty",
                     "body: empty; expected a JSON document");
                return;
        }
        if (!req->response && !req->fhir && file_own(req, body, len))
                return;
        char reason[256];
        json_t *doc = avk_json_parse(body, len, reason, sizeof(reason));
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
        if (req->response)
                file_response(req, doc, body, len);
        else
                file_deviation(req, doc, body, len);
        json_decref(doc);
}

/* ---- look-ups ----------------------------------------------------------- */

/* Answers a read route's answer, with its ETag. */
static void settle_lookup(struct request *req, int rc, struct avk_lookup_answer *a)
{
        if (rc != 0) {
                fail(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", "the answer: not built");
                return;
        }
        if (a->etag[0]) {
                memcpy(req->etag, a->etag, sizeof(req->etag));
                avk_httpd_req_add_header(req->http, MHD_HTTP_HEADER_ETAG, req->etag);
        }
        avk_httpd_req_add_header(req->http, MHD_HTTP_HEADER_CACHE_CONTROL, "private, no-cache");
        avk_httpd_answer(req->http, a->status, CONTENT_JSON, a->body ? a->body : strdup(""),
                         a->body ? strlen(a->body) : 0);
}

static void lookup_deviation(avk_httpd_req_t *http, void *opaque)
{
        struct request *req = request_of(http, opaque);
        struct avk_lookup_answer a;
        int rc = avk_lookup_deviation(req->gw->lookup, req->url_id, req->party,
                                      header(req, MHD_HTTP_HEADER_IF_NONE_MATCH),
                                      avk_clock_system_ms(), &a);
        settle_lookup(req, rc, &a);
}

static void lookup_list(avk_httpd_req_t *http, void *opaque)
{
        struct request *req = request_of(http, opaque);
        struct avk_lookup_args args = {
            .role = avk_httpd_req_arg(http, "role"),
            .state = avk_httpd_req_arg(http, "state"),
            .since = avk_httpd_req_arg(http, "since"),
            .limit = avk_httpd_req_arg(http, "limit"),
            .cursor = avk_httpd_req_arg(http, "cursor"),
        };
        struct avk_lookup_answer a;
        int rc =
            avk_lookup_list(req->gw->lookup, &args, req->party,
                            header(req, MHD_HTTP_HEADER_IF_NONE_MATCH), avk_clock_system_ms(), &a);
        settle_lookup(req, rc, &a);
}

/* The checks made once the token is known, before the body is read. */
static void on_headers(avk_httpd_req_t *http, void *opaque)
{
        struct request *req = request_of(http, opaque);
        uuid_t parsed;
        if (check_content_type(req) == 0 && check_idempotency_key(req) == 0 && req->response &&
            (strlen(req->url_id) != AVK_ID_SIZE - 1 || uuid_parse(req->url_id, parsed) != 0))
                fail(req, MHD_HTTP_BAD_REQUEST, "bad deviation id in the URL",
                     "{id}: is not a UUID (8-4-4-4-12 hexadecimal digits)");
}

/* Every request's end, answered or not: its metrics and log line. */
static void on_done(avk_httpd_req_t *http, void *opaque)
{
        avk_gateway_t *gw = opaque;
        const struct request *req = avk_httpd_req_state(http);
        double seconds = avk_httpd_req_seconds(http);
        unsigned status = avk_httpd_req_status(http); /* 100 to 599, or 0 */
        char code[AVK_DECIMAL_SIZE] = "none";
        if (status)
                avk_decimal(code, status);
        const char *route = avk_httpd_req_label(http);
        avk_metric_add(avk_metrics_series(gw->m.requests, (const char *[]){route, code}), 1);
        avk_metric_observe(avk_metrics_series(gw->m.duration, (const char *[]){route}), seconds);
        int api = strncmp(route, "/v1/", 4) == 0;
        const char *client = req->client ? req->client : "";
        avk_log(api ? AVK_LOG_INFO : AVK_LOG_DEBUG, "gateway", "%s %s %s %.1f ms%s%s%s%s%s%s%s",
                avk_httpd_req_method(http), route, code, seconds * 1000,
                req->authenticated ? " party=" : "",
                req->authenticated ? principal_code(req->party) : "", client[0] ? " client=" : "",
                client, req->id[0] ? " id=" : "", req->id,
                avk_httpd_req_completed(http) ? "" : " (connection closed)");
}

/* A gauge without labels, and its one series. */
static avk_metric_t *scalar_gauge(avk_metrics_t *r, const char *name, const char *help)
{
        return avk_metrics_series(avk_metrics_gauge(r, name, help, (const char *[]){NULL}), NULL);
}

/* ---- start and stop ----------------------------------------------------- */

static int register_metrics(avk_gateway_t *gw)
{
        struct gateway_metrics *m = &gw->m;
        avk_metrics_t *r = gw->metrics;
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
        m->in_flight = scalar_gauge(r, "avk_gateway_in_flight",
                                    "Documents sent and waiting for Kafka's acknowledgement.");
        m->idem_entries = scalar_gauge(r, "avk_gateway_idempotency_entries",
                                       "Idempotency keys held, in flight or remembered.");
        m->view_size = scalar_gauge(r, "avk_gateway_view_deviations",
                                    "Deviations in the view (from the lifecycle topics).");
        m->view_bytes = scalar_gauge(r, "avk_gateway_view_bytes",
                                     "Bytes the view holds: records, index, timelines, texts.");
        m->view_loaded = scalar_gauge(r, "avk_gateway_view_loaded",
                                      "1 once the view has read every lifecycle topic to its end.");
        m->kafka_up =
            scalar_gauge(r, "avk_reporter_kafka_up",
                         "1 when the reporter's last metadata request to Kafka succeeded.");
        m->reporter_in_flight =
            scalar_gauge(r, "avk_reporter_in_flight",
                         "Documents the reporter sent whose outcome is not known yet.");
        m->spool_pending = scalar_gauge(r, "avk_reporter_spool_pending",
                                        "Documents in the spool, not yet acknowledged by Kafka.");
        m->drain_stalled =
            scalar_gauge(r, "avk_reporter_drain_stalled",
                         "1 while the spool holds documents, Kafka answers and the drain "
                         "moves none into Kafka.");
        avk_metric_family_t *docs =
            avk_metrics_counter(r, "avk_reporter_documents_total",
                                "Documents by outcome: filed (acknowledged by Kafka), spooled, "
                                "unavailable, rejected (by validation).",
                                (const char *[]){"outcome", NULL});
        m->filed = avk_metrics_series(docs, (const char *[]){"filed"});
        m->spooled = avk_metrics_series(docs, (const char *[]){"spooled"});
        m->unavailable = avk_metrics_series(docs, (const char *[]){"unavailable"});
        m->rejected = avk_metrics_series(docs, (const char *[]){"rejected"});
        m->transactions =
            scalar_gauge(r, "avk_reporter_transactions_committed",
                         "Transactions of filed documents committed since the start "
                         "(a group commit holds several; gateway.commit.interval.ms).");
        return m->requests && m->duration && m->idempotency && m->in_flight && m->idem_entries &&
                       m->view_size && m->view_bytes && m->view_loaded && m->kafka_up &&
                       m->reporter_in_flight && m->spool_pending && m->drain_stalled && m->filed &&
                       m->spooled && m->unavailable && m->rejected && m->transactions
                   ? 0
                   : -1;
}

static int listen_http(avk_gateway_t *gw, char *errstr, size_t errstr_size)
{
        static const struct avk_httpd_route routes[] = {
            {.method = "POST",
             .pattern = "/v1/deviations",
             .auth = authenticate,
             .on_headers = on_headers,
             .on_request = process},
            {.method = "POST",
             .pattern = "/v1/deviations/{id}/responses",
             .auth = authenticate,
             .on_headers = on_headers,
             .on_request = process},
            {.method = "GET",
             .pattern = "/v1/deviations",
             .auth = authenticate,
             .on_request = lookup_list},
            {.method = "GET",
             .pattern = "/v1/deviations/{id}",
             .auth = authenticate,
             .on_request = lookup_deviation},
            {.method = "GET", .pattern = "/readyz", .on_request = readiness},
        };
        const avk_config_t *cfg = gw->cfg;
        if (avk_config_get_int(cfg, "gateway.max.connections.per.client") >
            avk_config_get_int(cfg, "gateway.max.connections")) {
                snprintf(errstr, errstr_size,
                         "gateway.max.connections.per.client: %lld is over gateway.max.connections "
                         "(%lld)",
                         (long long)avk_config_get_int(cfg, "gateway.max.connections.per.client"),
                         (long long)avk_config_get_int(cfg, "gateway.max.connections"));
                return -1;
        }
        struct avk_httpd_conf conf = {
            .listen = avk_config_get(cfg, "gateway.listen"),
            .listen_key = "gateway.listen",
            .tls_cert_file = avk_config_get(cfg, "gateway.tls.cert.file"),
            .tls_key_file = avk_config_get(cfg, "gateway.tls.key.file"),
            .tls_cert_key = "gateway.tls.cert.file",
            .tls_key_key = "gateway.tls.key.file",
            .threads = (unsigned)avk_config_get_int(cfg, "gateway.threads"),
            .max_body = (size_t)avk_config_get_int(cfg, "gateway.max.body.bytes"),
            .max_body_key = "gateway.max.body.bytes",
            .max_connections = (unsigned)avk_config_get_int(cfg, "gateway.max.connections"),
            .max_connections_per_client =
                (unsigned)avk_config_get_int(cfg, "gateway.max.connections.per.client"),
            .header_timeout_s = (unsigned)avk_config_get_int(cfg, "gateway.header.timeout.s"),
            .body_timeout_s = (unsigned)avk_config_get_int(cfg, "gateway.body.timeout.s"),
            .style = AVK_HTTPD_JSON,
            .name = "gateway",
            .not_found = "path: not one of /v1/deviations, /v1/deviations/{id}, "
                         "/v1/deviations/{id}/responses, /healthz, /readyz, /metrics",
            .retry_after = RETRY_AFTER_S,
            .json_type = CONTENT_JSON,
            .metrics = gw->metrics,
            .before_metrics = refresh_metrics,
            .routes = routes,
            .route_cnt = sizeof(routes) / sizeof(routes[0]),
            .state_size = sizeof(struct request),
            .on_done = on_done,
            .opaque = gw,
        };
        gw->httpd = avk_httpd_start(&conf, errstr, errstr_size);
        return gw->httpd ? 0 : -1;
}

static void destroy(avk_gateway_t *gw)
{
        avk_lookup_destroy(gw->lookup);
        avk_view_destroy(gw->view);
        avk_dispute_destroy(gw->dispute);
        avk_reporter_destroy(gw->reporter);
        avk_idem_destroy(gw->idem);
        avk_auth_destroy(gw->auth);
        avk_metrics_destroy(gw->metrics);
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
        if (!(gw->auth =
                  avk_auth_load(tokens, avk_gateway_principal_parse, reason, sizeof(reason)))) {
                snprintf(errstr, errstr_size, "gateway.tokens.file: %s", reason);
                goto fail;
        }
        gw->metrics = avk_metrics_new();
        gw->idem = avk_idem_new((size_t)avk_config_get_int(cfg, "gateway.idempotency.max.entries"),
                                avk_config_get_int(cfg, "gateway.idempotency.ttl.s") * 1000);
        const char *deadlines = avk_config_get(cfg, "deadlines.file");
        if (deadlines && !(gw->dispute = avk_dispute_load(deadlines, reason, sizeof(reason)))) {
                snprintf(errstr, errstr_size, "deadlines.file: %s", reason);
                goto fail;
        }
        gw->view = avk_view_new(gw->dispute);
        if (!gw->metrics || !gw->idem || !gw->view || register_metrics(gw) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (!(gw->lookup = avk_lookup_new(gw->view, cfg, errstr, errstr_size)) ||
            avk_view_start(gw->view, cfg, errstr, errstr_size) != 0 ||
            !(gw->reporter =
                  avk_reporter_new_mode(cfg, AVK_REPORTER_RECEIPTED, errstr, errstr_size)))
                goto fail;
        avk_reporter_set_commit_interval(
            gw->reporter, (int)avk_config_get_int(cfg, "gateway.commit.interval.ms"));
        struct avk_reporter_stats st;
        avk_reporter_stats(gw->reporter, &st);
        atomic_store(&gw->spool_backlog, st.spool_pending > 0);
        if (listen_http(gw, errstr, errstr_size) != 0)
                goto fail;
        avk_log(AVK_LOG_INFO, "gateway", "%s on port %u, %zu tokens, threads %lld",
                avk_httpd_tls(gw->httpd) ? "HTTPS" : "HTTP", avk_httpd_port(gw->httpd),
                avk_auth_count(gw->auth), (long long)avk_config_get_int(cfg, "gateway.threads"));
        return gw;
fail:
        destroy(gw);
        return NULL;
}

unsigned avk_gateway_port(const avk_gateway_t *gw)
{
        return avk_httpd_port(gw->httpd);
}

void avk_gateway_stop(avk_gateway_t *gw)
{
        if (!gw)
                return;
        /* Every request in progress is answered first: a suspended one when
         * Kafka answers (within intake.ack.timeout.ms). */
        avk_httpd_stop(gw->httpd);
        destroy(gw);
}
