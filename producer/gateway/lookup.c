/*
 * avk_lookup: see lookup.h.
 *
 * A cursor is the hex of: the last item's filing time and id, the query it
 * pages (party, role, state, since), when it was made, and the first 16
 * bytes of an HMAC-SHA256 over all of it - so a client can neither forge a
 * position nor carry a cursor over to another party's or query's list.
 */
#include "producer/gateway/lookup.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>
#include <uuid/uuid.h>

#include "common/contract/json.h"
#include "common/http/server.h"
#include "common/util/hash.h"
#include "common/util/secret.h"

#define KEY_SIZE      32
#define MAC_SIZE      16
#define CURSOR_DATA   43 /* 8 at, 16 id, party, role, state, 8 since, 8 made */
#define CURSOR_BYTES  (CURSOR_DATA + MAC_SIZE)
#define LIMIT_DEFAULT 100

static const char *const states[] = {"open", "answered", "closed", "all"};

struct avk_lookup {
        avk_view_t *view;
        struct avk_secret key;
        int64_t cursor_ttl_ms;
};

avk_lookup_t *avk_lookup_new(avk_view_t *view, const avk_config_t *cfg, char *errstr,
                             size_t errstr_size)
{
        avk_lookup_t *lookup = calloc(1, sizeof(*lookup));
        if (!lookup) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        lookup->view = view;
        lookup->cursor_ttl_ms = avk_config_get_int(cfg, "gateway.cursor.ttl.s") * 1000;
        const char *path = avk_config_get(cfg, "gateway.cursor.key.file");
        if (path) {
                if (avk_secret_read(path, "gateway.cursor.key.file", KEY_SIZE, &lookup->key, errstr,
                                    errstr_size) != 0) {
                        free(lookup);
                        return NULL;
                }
                return lookup;
        }
        lookup->key.bytes = malloc(KEY_SIZE);
        if (!lookup->key.bytes || getrandom(lookup->key.bytes, KEY_SIZE, 0) != KEY_SIZE) {
                snprintf(errstr, errstr_size, "gateway.cursor.key.file: unset, and no random key");
                free(lookup->key.bytes);
                free(lookup);
                return NULL;
        }
        lookup->key.len = lookup->key.size = KEY_SIZE;
        return lookup;
}

void avk_lookup_destroy(avk_lookup_t *lookup)
{
        if (!lookup)
                return;
        avk_secret_wipe(&lookup->key);
        free(lookup);
}

/* Sets out to an error answer with one formatted detail. */
__attribute__((format(printf, 4, 5))) static int
refuse(struct avk_lookup_answer *out, unsigned status, const char *summary, const char *fmt, ...)
{
        char detail[512];
        const char *details[] = {detail};
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        out->status = status;
        out->etag[0] = '\0';
        out->body = avk_httpd_error_body(summary, details, 1, 0);
        return out->body ? 0 : -1;
}

/* Sets out to doc (taken over) with the ETag of tagged (doc, or the part of
 * it that says whether anything changed), or 304 when if_none_match names it. */
static int answer(json_t *doc, const json_t *tagged, const char *if_none_match,
                  struct avk_lookup_answer *out)
{
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        char *tag_text = doc ? json_dumps(tagged, JSON_COMPACT) : NULL;
        json_decref(doc);
        unsigned char digest[32];
        int ok =
            text && tag_text && avk_hash_sha256_digest(tag_text, strlen(tag_text), digest) == 0;
        free(tag_text);
        if (!ok) {
                free(text);
                return -1;
        }
        char *p = out->etag;
        *p++ = '"';
        for (int i = 0; i < 16; i++, p += 2)
                snprintf(p, 3, "%02x", digest[i]);
        snprintf(p, 2, "\"");
        if (if_none_match &&
            (strstr(if_none_match, out->etag) || strcmp(if_none_match, "*") == 0)) {
                free(text);
                out->status = 304;
                out->body = NULL;
                return 0;
        }
        out->status = 200;
        out->body = text;
        return 0;
}

static int is_uuid(const char *s)
{
        uuid_t id;
        return strlen(s) == 36 && uuid_parse(s, id) == 0;
}

int avk_lookup_deviation(avk_lookup_t *lookup, const char *id, int party, const char *if_none_match,
                         int64_t now_ms, struct avk_lookup_answer *out)
{
        if (!is_uuid(id))
                return refuse(out, 400, "bad deviation id in the URL",
                              "{id}: is not a UUID (8-4-4-4-12 hexadecimal digits)");
        json_t *doc = avk_view_lookup(lookup->view, id, party, now_ms);
        if (!doc) {
                /* The same answer for an id no one filed and one another party holds. */
                if (!avk_view_loaded(lookup->view))
                        return refuse(out, 503, "the deviation view is loading",
                                      "{id}: not known yet; the gateway is still reading the "
                                      "lifecycle topics");
                return refuse(out, 404, "unknown deviation",
                              "{id}: no deviation %s that this party reported or was routed", id);
        }
        return answer(doc, doc, if_none_match, out);
}

static void put64(unsigned char *p, int64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
}

static int64_t get64(const unsigned char *p)
{
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return (int64_t)v;
}

static int mac(const avk_lookup_t *lookup, const unsigned char *data, unsigned char out[MAC_SIZE])
{
        char hex[AVK_SECRET_HEX_SIZE];
        if (avk_secret_hmac_hex(lookup->key.bytes, lookup->key.len, data, CURSOR_DATA, hex) != 0)
                return -1;
        for (int i = 0; i < MAC_SIZE; i++)
                sscanf(hex + 2 * i, "%2hhx", &out[i]);
        return 0;
}

/* The cursor after (at, id) for q, in hex (CURSOR_BYTES * 2 + 1). */
static int cursor_make(const avk_lookup_t *lookup, const struct avk_view_query *q, int state,
                       int64_t at, const unsigned char id[16], int64_t now_ms, char *hex)
{
        unsigned char c[CURSOR_BYTES];
        put64(c, at);
        memcpy(c + 8, id, 16);
        c[24] = (unsigned char)q->party;
        c[25] = (unsigned char)q->receiver;
        c[26] = (unsigned char)state;
        put64(c + 27, q->since_ms);
        put64(c + 35, now_ms);
        if (mac(lookup, c, c + CURSOR_DATA) != 0)
                return -1;
        for (int i = 0; i < CURSOR_BYTES; i++)
                snprintf(hex + 2 * i, 3, "%02x", c[i]);
        return 0;
}

/* Reads a cursor into q's position; 0, or -1 with the reason. */
static int cursor_read(const avk_lookup_t *lookup, const char *hex, struct avk_view_query *q,
                       int state, int64_t now_ms, const char **reason)
{
        unsigned char c[CURSOR_BYTES], expected[MAC_SIZE];
        *reason = "is not a cursor this gateway made";
        if (strlen(hex) != 2 * CURSOR_BYTES)
                return -1;
        for (int i = 0; i < CURSOR_BYTES; i++) {
                if (!isxdigit((unsigned char)hex[2 * i]) ||
                    !isxdigit((unsigned char)hex[2 * i + 1]))
                        return -1;
                sscanf(hex + 2 * i, "%2hhx", &c[i]);
        }
        if (mac(lookup, c, expected) != 0 ||
            CRYPTO_memcmp(expected, c + CURSOR_DATA, MAC_SIZE) != 0)
                return -1;
        if (c[24] != q->party || c[25] != q->receiver || c[26] != state ||
            get64(c + 27) != q->since_ms) {
                *reason = "belongs to another query; page with the role, state and since it came "
                          "with";
                return -1;
        }
        int64_t made = get64(c + 35);
        if (now_ms - made > lookup->cursor_ttl_ms || made > now_ms + 60000) {
                *reason = "has expired; start the list again without a cursor";
                return -1;
        }
        q->after = 1;
        q->after_at = get64(c);
        memcpy(q->after_id, c + 8, 16);
        return 0;
}

int avk_lookup_list(avk_lookup_t *lookup, const struct avk_lookup_args *args, int party,
                    const char *if_none_match, int64_t now_ms, struct avk_lookup_answer *out)
{
        static const char summary[] = "bad query";
        struct avk_view_query q = {.party = party, .since_ms = INT64_MIN, .limit = LIMIT_DEFAULT};
        if (!args->role ||
            (strcmp(args->role, "receiver") != 0 && strcmp(args->role, "reporter") != 0))
                return refuse(out, 400, summary, "role: %s; expected receiver or reporter",
                              args->role ? "unknown" : "missing");
        q.receiver = strcmp(args->role, "receiver") == 0;
        int state = 0; /* open, when not given */
        if (args->state) {
                for (state = 0; state < 4 && strcmp(args->state, states[state]) != 0; state++)
                        continue;
                if (state == 4)
                        return refuse(out, 400, summary,
                                      "state: unknown; expected open, answered, closed or all");
        }
        q.state = states[state];
        if (args->since && avk_json_parse_time(args->since, &q.since_ms) != 0)
                return refuse(out, 400, summary,
                              "since: expected an RFC 3339 time, e.g. 2026-01-31T12:00:00Z");
        if (args->limit) {
                char *end;
                long limit = strtol(args->limit, &end, 10);
                if (!isdigit((unsigned char)args->limit[0]) || *end || limit < 1 ||
                    limit > AVK_LOOKUP_LIMIT_MAX)
                        return refuse(out, 400, summary, "limit: expected 1 to %d",
                                      AVK_LOOKUP_LIMIT_MAX);
                q.limit = (size_t)limit;
        }
        const char *reason;
        if (args->cursor && cursor_read(lookup, args->cursor, &q, state, now_ms, &reason) != 0)
                return refuse(out, 400, summary, "cursor: %s", reason);
        if (!avk_view_loaded(lookup->view))
                return refuse(out, 503, "the deviation view is loading",
                              "the gateway is still reading the lifecycle topics");
        int more = 0;
        int64_t last_at = 0;
        unsigned char last_id[16];
        json_t *items = avk_view_list(lookup->view, &q, now_ms, &more, &last_at, last_id);
        if (!items)
                return -1;
        /* The ETag is the items': a cursor differs with every request. */
        json_t *doc = json_pack("{s:O}", "items", items);
        char next[2 * CURSOR_BYTES + 1];
        if (doc && more) {
                if (cursor_make(lookup, &q, state, last_at, last_id, now_ms, next) != 0) {
                        json_decref(doc);
                        return -1;
                }
                json_object_set_new(doc, "next_cursor", json_string(next));
        } else if (doc) {
                json_object_set_new(doc, "next_cursor", json_null());
        }
        int rc = answer(doc, items, if_none_match, out);
        json_decref(items);
        return rc;
}
