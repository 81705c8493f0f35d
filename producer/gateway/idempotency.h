/*
 * avk_idem: the gateway's memory of first results, so that a retried request
 * is answered as the first one was and never files a second document.
 *
 * A request names itself by up to AVK_IDEM_MAX_KEYS keys - the client's
 * Idempotency-Key scoped by its party, and the document's own id scoped by
 * its kind - and a SHA-256 of what it asks for. The first request under a key
 * takes a flight and does the work; a request under the same key while that
 * flight is in the air waits for its result (a callback, so no thread is
 * blocked); one after it gets the stored result. The same key with a
 * different body is a conflict. Only results the caller asks to keep (the
 * accepted ones) are remembered, for ttl after they are known; a failed
 * first attempt is handed to the requests waiting on it and then forgotten,
 * so a later retry tries again.
 *
 * Bounded: at most max_entries keys. Past it the oldest finished entry is
 * dropped; when every entry is still in flight a new key is refused
 * (AVK_IDEM_FULL). Thread-safe; callbacks run outside its lock.
 */
#ifndef AVK_IDEM_H
#define AVK_IDEM_H

#include <stddef.h>
#include <stdint.h>

#define AVK_IDEM_HASH_SIZE 32 /**< a SHA-256 of the request */
#define AVK_IDEM_MAX_KEYS  2

typedef struct avk_idem avk_idem_t;

/** One request's hold on its keys, from avk_idem_begin() to avk_idem_finish(). */
typedef struct avk_idem_flight avk_idem_flight_t;

/**
 * @brief Hands a waiting request the first request's result. Called once,
 * from the thread that calls avk_idem_finish(); body is valid during the call.
 */
typedef void(avk_idem_wait_cb)(void *opaque, unsigned status, const char *body);

enum avk_idem_outcome {
        AVK_IDEM_NEW,      /**< the keys are the caller's: do the work, then avk_idem_finish() */
        AVK_IDEM_DONE,     /**< the first result: status and body */
        AVK_IDEM_WAIT,     /**< the first request is in flight: the callback will answer */
        AVK_IDEM_CONFLICT, /**< a key was first used for a different request */
        AVK_IDEM_FULL,     /**< max_entries keys are all in flight: nothing can be taken now */
};

/** What avk_idem_begin() decided. */
struct avk_idem_claim {
        enum avk_idem_outcome outcome;
        size_t key;                /**< DONE, WAIT, CONFLICT: index of the key that decided */
        avk_idem_flight_t *flight; /**< NEW: pass to avk_idem_finish() */
        unsigned status;           /**< DONE */
        char *body;                /**< DONE: a malloc'd copy for the caller to free */
};

/**
 * @brief A cache of at most max_entries keys, results kept for ttl_ms.
 * @returns NULL when out of memory.
 */
avk_idem_t *avk_idem_new(size_t max_entries, int64_t ttl_ms);

/** @brief Frees the cache; every flight must have been finished. */
void avk_idem_destroy(avk_idem_t *idem);

/**
 * @brief Looks the keys up, in order, and takes those not known when none is.
 *
 * The first known key decides: its flight's hash differs from hash ->
 * CONFLICT; its result is known -> DONE; it is in flight -> WAIT, and cb
 * (opaque) will be called once with the result. No key known -> NEW, the keys
 * are held by claim->flight. A key whose result is older than ttl is not
 * known. key_cnt is 1..AVK_IDEM_MAX_KEYS; keys are copied.
 *
 * @param now_ms the caller's clock (ms), so that tests need not sleep.
 */
void avk_idem_begin(avk_idem_t *idem, const char *const *keys, size_t key_cnt,
                    const unsigned char hash[AVK_IDEM_HASH_SIZE], int64_t now_ms,
                    avk_idem_wait_cb *cb, void *opaque, struct avk_idem_claim *claim);

/**
 * @brief Ends a flight with its result: every waiting request's callback is
 * called with status and body. keep: remember the result under the flight's
 * keys until now_ms + ttl; otherwise forget the keys. flight is freed.
 */
void avk_idem_finish(avk_idem_t *idem, avk_idem_flight_t *flight, unsigned status, const char *body,
                     int keep, int64_t now_ms);

/** @brief Keys held, in flight or remembered. */
size_t avk_idem_size(avk_idem_t *idem);

#define AVK_IDEM_ID_SIZE 37 /**< a UUID in text and its NUL */

/**
 * @brief The document id a request under an Idempotency-Key gets when its
 * document carries none: a UUID (version 8) of the SHA-256 of what
 * (deviation or response), the party and the key. Every attempt - after a
 * restart, on another instance - files under the same id, so what Kafka
 * holds decides a retry (docs/gateway.md, "Idempotency").
 * @returns 0, or -1 when no digest could be made.
 */
int avk_idem_derive_id(const char *what, const char *party, const char *key,
                       char id[AVK_IDEM_ID_SIZE]);

#endif
