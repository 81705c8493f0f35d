/*
 * avk_webhook: what the services that POST to endpoints outside avvik share
 * - the notifier's webhooks (notify.h) and the analysis forwarder's sink
 * (analysis.h): the signature header, the backoff between attempts, what an
 * attempt's result means, and one POST as an easy handle on a libcurl multi
 * handle that the service's single loop drives, woken by its Kafka queues
 * through a pipe (rd_kafka_queue_io_event_enable) while curl waits.
 *
 * Nothing here logs, and no reason it writes ever holds a URL, a body or a
 * secret: a URL may carry a token, a body patient data.
 */
#ifndef AVK_WEBHOOK_H
#define AVK_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

/** "t=", at most 20 digits, ",v1=", 64 hex digits and the NUL. */
#define AVK_WEBHOOK_SIGNATURE_SIZE 90

/** How far a signature's time may be from a receiver's clock, either way (docs/notify.md). */
#define AVK_WEBHOOK_TOLERANCE_S 300

/**
 * @brief Signs one attempt: the value of the X-Avvik-Signature header,
 * "t=<unix_s>,v1=<hex>" with the lower-case hex HMAC-SHA256 under key of
 * "<unix_s>.<event_type>.<body>", so that neither the time nor the event type
 * can be changed, and a captured delivery is refused once its time is past a
 * receiver's tolerance. @returns 0, or -1 when OpenSSL fails.
 */
int avk_webhook_sign(const unsigned char *key, size_t key_len, int64_t unix_s,
                     const char *event_type, const void *body, size_t body_len,
                     char out[AVK_WEBHOOK_SIGNATURE_SIZE]);

/**
 * @brief A receiver's check of an X-Avvik-Signature header (what the
 * receivers in tests do; docs/notify.md has the recipe for others): its t
 * is within tolerance_s of now_s and one of its v1 values is the signature of
 * t, event_type and body under key (compared in constant time).
 * @returns 0, or -1 with the reason in errstr.
 */
int avk_webhook_verify(const unsigned char *key, size_t key_len, const char *header,
                       const char *event_type, const void *body, size_t body_len, int64_t now_s,
                       int64_t tolerance_s, char *errstr, size_t errstr_size);

/**
 * @brief The wait before the attempt after attempts failed ones: "full
 * jitter", a uniform draw from 0 to min(max_ms, base_ms * 2^(attempts-1)),
 * taken from random (any 64 random bits), so that receivers recovering from
 * an outage are not hit by every sender at the same moment.
 */
int64_t avk_webhook_backoff_ms(int attempts, int64_t base_ms, int64_t max_ms, uint64_t random);

/** @brief The next 64 bits of a splitmix64 sequence: jitter needs spread, not secrecy. */
uint64_t avk_webhook_random(uint64_t *state);

/** What one attempt's result means for the delivery. */
enum avk_webhook_verdict {
        AVK_WEBHOOK_DELIVERED, /**< 2xx */
        AVK_WEBHOOK_RETRY,     /**< worth another attempt: 5xx, 408, 429, transport errors */
        AVK_WEBHOOK_PERMANENT, /**< the same request will fail again: other 1xx/3xx/4xx */
};

/**
 * @brief Classifies an attempt: curl_code is its CURLcode (0 when an HTTP
 * answer came), http_status the answer's status.
 */
enum avk_webhook_verdict avk_webhook_classify(int curl_code, long http_status);

/**
 * @brief A short name of an attempt's result for a metric label: "2xx".."5xx",
 * "timeout", "connect", "tls" or "error".
 */
const char *avk_webhook_result(int curl_code, long http_status);

/**
 * @brief The reason an attempt failed, for a log line or a dead letter: "HTTP
 * 503", curl's sentence, or the certificate problem (easy may be NULL).
 */
void avk_webhook_reason(CURL *easy, int curl_code, long http_status, char *buf, size_t size);

/** @brief Appends "name: value" to *list. @returns 0, or -1 when out of memory. */
int avk_webhook_add_header(struct curl_slist **list, const char *name, const char *value);

/** One POST. Nothing is copied: everything must live until the handle is cleaned up. */
struct avk_webhook_post {
        const char *url;
        struct curl_slist *headers; /**< Content-Type and the service's own */
        const void *body;
        size_t body_len;
        int64_t timeout_ms, connect_timeout_ms;
        const char *ca_location; /**< CA bundle; NULL: the system's. Verification is always on. */
        const char *user_agent;
        void *private_ptr;  /**< handed back by avk_webhook_collect() */
        char *error_buffer; /**< CURL_ERROR_SIZE bytes */
};

/**
 * @brief Starts post on multi: http:// or https:// as the URL says (no other
 * protocol, no redirects), the answer's body discarded.
 * @returns the easy handle, now in multi (for curl_multi_remove_handle() and
 * curl_easy_cleanup() once collected), or NULL when curl refuses an option or
 * memory runs out.
 */
CURL *avk_webhook_post_start(CURLM *multi, const struct avk_webhook_post *post);

/** Called for a finished POST with its private_ptr and CURLcode. */
typedef void avk_webhook_done_cb(void *opaque, void *private_ptr, int curl_code);

/**
 * @brief Ends a finished POST: its reason (avk_webhook_reason()) in buf, and
 * *easy (may be NULL: the POST never started) removed from multi, cleaned up
 * and set to NULL. @returns the answer's HTTP status, 0 without one.
 */
long avk_webhook_finish(CURLM *multi, CURL **easy, int curl_code, char *buf, size_t size);

/** @brief Drives multi and calls done for every POST that finished. */
void avk_webhook_collect(CURLM *multi, avk_webhook_done_cb *done, void *opaque);

/** @brief A non-blocking, close-on-exec pipe for wake-ups. @returns 0, or -1 with errno. */
int avk_webhook_wake_pipe(int fds[2]);

/**
 * @brief Sleeps in curl_multi_poll() until a socket of multi is ready, wake_fd
 * is readable, curl_multi_wakeup() is called or timeout_ms (clamped to
 * 0..INT_MAX) passes; then empties wake_fd.
 */
void avk_webhook_wait(CURLM *multi, int wake_fd, int64_t timeout_ms);

#endif
