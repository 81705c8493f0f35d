/*
 * avk_lookup: the gateway's read routes over the view (producer/gateway/view.h),
 * for the parties involved in a deviation and no one else:
 *
 *   GET /v1/deviations/{id}   one deviation's state, timeline, deadlines, answer
 *   GET /v1/deviations?role=receiver|reporter&state=open|answered|closed|all
 *                      &since=RFC3339&limit=1..500&cursor=...   a party's own list
 *
 * A deviation the party neither reported nor was routed is answered as one
 * that does not exist. The list pages with an opaque cursor signed
 * (HMAC-SHA256) with gateway.cursor.key.file's key, or a key made at start:
 * a forged cursor, one of another query or one older than
 * gateway.cursor.ttl.s is refused. Both answers carry an ETag (a digest of
 * the body) and answer If-None-Match with 304. docs/gateway.md has the
 * documents.
 */
#ifndef AVK_LOOKUP_H
#define AVK_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "common/util/config.h"
#include "producer/gateway/view.h"

#define AVK_LOOKUP_ETAG_SIZE 36 /**< a quoted ETag and its NUL */
#define AVK_LOOKUP_LIMIT_MAX 500

typedef struct avk_lookup avk_lookup_t;

/**
 * @brief The read routes over view (not owned; it must outlive them), with
 * the cursor key of cfg or a random one.
 * @returns NULL with the reason in errstr, naming the configuration key.
 */
avk_lookup_t *avk_lookup_new(avk_view_t *view, const avk_config_t *cfg, char *errstr,
                             size_t errstr_size);

/** @brief Wipes the key and frees the routes. NULL is a no-op. */
void avk_lookup_destroy(avk_lookup_t *lookup);

/** A read route's query and what it answers. */
struct avk_lookup_answer {
        unsigned status;                 /**< 200, 304, 400, 404 */
        char *body;                      /**< malloc'd JSON (the caller's); NULL for 304 */
        char etag[AVK_LOOKUP_ETAG_SIZE]; /**< for 200 and 304, else "" */
};

/**
 * @brief Answers GET /v1/deviations/{id} for party. if_none_match may be NULL.
 * @returns 0, or -1 when out of memory.
 */
int avk_lookup_deviation(avk_lookup_t *lookup, const char *id, int party, const char *if_none_match,
                         int64_t now_ms, struct avk_lookup_answer *out);

/** The list's query arguments as sent (each NULL when absent). */
struct avk_lookup_args {
        const char *role, *state, *since, *limit, *cursor;
};

/**
 * @brief Answers GET /v1/deviations for party.
 * @returns 0, or -1 when out of memory.
 */
int avk_lookup_list(avk_lookup_t *lookup, const struct avk_lookup_args *args, int party,
                    const char *if_none_match, int64_t now_ms, struct avk_lookup_answer *out);

#endif
