/*
 * webhook_receiver: an HTTP(S) endpoint served in-process by libmicrohttpd
 * on 127.0.0.1 and an ephemeral port, for tests of the notifier and of the
 * analysis forwarder's sink. It records
 * every POST it receives (body and avvik headers) and answers from a script
 * of status codes; it can hang before answering, to play a slow or dead
 * endpoint. A thread per connection, so a hanging answer holds up only its
 * own connection. Given the key (webhook_receiver_verify()) it checks every
 * signature as docs/notify.md tells receivers to, the time within
 * AVK_WEBHOOK_TOLERANCE_S included, and answers 401 to one that fails.
 *
 * Every accessor takes the receiver's lock: a test may call them while
 * requests are in flight.
 */
#ifndef AVK_TEST_WEBHOOK_RECEIVER_H
#define AVK_TEST_WEBHOOK_RECEIVER_H

#include <stddef.h>

#define WEBHOOK_RECEIVER_MAX 256 /* requests recorded */

/** One request as received; body is NUL-terminated. */
struct webhook_request {
        char event_id[64];
        char event_type[64]; /**< X-Avvik-Event-Type */
        char batch_id[64];   /**< X-Avvik-Batch-Id (the analysis sink) */
        char signature[96];
        char timestamp[48];
        char content_type[64];
        char refused[160]; /**< why the signature failed (answered 401); "" when it held or
                              unchecked */
        char *body;        /**< owned by the receiver */
        size_t body_len;
};

struct webhook_receiver;

/**
 * @brief Starts a receiver answering 200; with cert_pem and key_pem (PEM
 * text) it serves HTTPS only. A failure to start fails the running test.
 */
struct webhook_receiver *webhook_receiver_start(const char *cert_pem, const char *key_pem);

/** @brief Stops it (a hanging answer is cut short) and frees it. NULL is a no-op. */
void webhook_receiver_stop(struct webhook_receiver *r);

/** @brief "http://127.0.0.1:<port>/hook" (https with a certificate), owned by r. */
const char *webhook_receiver_url(const struct webhook_receiver *r);

/** @brief From now, checks each request's X-Avvik-Signature under key (copied). */
void webhook_receiver_verify(struct webhook_receiver *r, const void *key, size_t key_len);

/** @brief Answers the next requests with statuses in order; the last one repeats. */
void webhook_receiver_script(struct webhook_receiver *r, const int *statuses, size_t cnt);

/** @brief The first cnt requests from now (-1: all) wait ms before they are answered. */
void webhook_receiver_hang(struct webhook_receiver *r, int cnt, int ms);

/** @brief Requests received (body complete). */
int webhook_receiver_count(struct webhook_receiver *r);

/** @brief Requests answered. */
int webhook_receiver_answered(struct webhook_receiver *r);

/** @brief A copy of request i (0 = first), body included; for webhook_request_free(). */
struct webhook_request webhook_receiver_request(struct webhook_receiver *r, int i);

void webhook_request_free(struct webhook_request *req);

#endif
