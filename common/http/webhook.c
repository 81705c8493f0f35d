/*
 * avk_webhook: see webhook.h; the policy (what is retried, the backoff) is
 * described for receivers in docs/notify.md and docs/analysis.md.
 */
#include "common/http/webhook.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "common/util/secret.h"

/* The hex HMAC of "<unix_s>.<event_type>.<body>". */
static int mac_hex(const unsigned char *key, size_t key_len, int64_t unix_s, const char *event_type,
                   const void *body, size_t body_len, char out[AVK_SECRET_HEX_SIZE])
{
        char t[24];
        int t_len = snprintf(t, sizeof(t), "%" PRId64 ".", unix_s);
        struct iovec parts[] = {
            {t, (size_t)t_len},
            {(void *)event_type, strlen(event_type)},
            {(void *)".", 1},
            {(void *)body, body_len},
        };
        return avk_secret_hmac_hexv(key, key_len, parts, 4, out);
}

int avk_webhook_sign(const unsigned char *key, size_t key_len, int64_t unix_s,
                     const char *event_type, const void *body, size_t body_len,
                     char out[AVK_WEBHOOK_SIGNATURE_SIZE])
{
        char hex[AVK_SECRET_HEX_SIZE];
        if (mac_hex(key, key_len, unix_s, event_type, body, body_len, hex) != 0)
                return -1;
        snprintf(out, AVK_WEBHOOK_SIGNATURE_SIZE, "t=%" PRId64 ",v1=%s", unix_s, hex);
        return 0;
}

int avk_webhook_verify(const unsigned char *key, size_t key_len, const char *header,
                       const char *event_type, const void *body, size_t body_len, int64_t now_s,
                       int64_t tolerance_s, char *errstr, size_t errstr_size)
{
        int64_t t = -1;
        const char *v1[8];
        size_t v1_cnt = 0;
        /* Items "key=value" separated by commas; unknown keys are for later schemes. */
        for (const char *item = header; *item;) {
                size_t len = strcspn(item, ",");
                if (len > 2 && strncmp(item, "t=", 2) == 0 && t < 0) {
                        char *end;
                        errno = 0;
                        long long v = strtoll(item + 2, &end, 10);
                        if (item[2] >= '0' && item[2] <= '9' && end == item + len && errno == 0)
                                t = v;
                } else if (len == 3 + 64 && strncmp(item, "v1=", 3) == 0 &&
                           v1_cnt < sizeof(v1) / sizeof(v1[0])) {
                        v1[v1_cnt++] = item + 3;
                }
                item += len + (item[len] == ',');
        }
        if (t < 0 || v1_cnt == 0) {
                snprintf(errstr, errstr_size,
                         "X-Avvik-Signature: expected t=<unix seconds>,v1=<64 hex digits>");
                return -1;
        }
        if (t < now_s - tolerance_s || t > now_s + tolerance_s) {
                snprintf(errstr, errstr_size,
                         "X-Avvik-Signature: t=%" PRId64 " is %" PRId64
                         " s from now, more than the %" PRId64 " s tolerated",
                         t, t > now_s ? t - now_s : now_s - t, tolerance_s);
                return -1;
        }
        char hex[AVK_SECRET_HEX_SIZE];
        if (mac_hex(key, key_len, t, event_type, body, body_len, hex) != 0) {
                snprintf(errstr, errstr_size, "HMAC-SHA256 failed");
                return -1;
        }
        for (size_t i = 0; i < v1_cnt; i++)
                if (CRYPTO_memcmp(hex, v1[i], 64) == 0)
                        return 0;
        snprintf(errstr, errstr_size,
                 "X-Avvik-Signature: no v1 matches the time, event type and body under the key");
        return -1;
}

int64_t avk_webhook_backoff_ms(int attempts, int64_t base_ms, int64_t max_ms, uint64_t random)
{
        int64_t cap = base_ms;
        for (int i = 1; i < attempts && cap < max_ms; i++)
                cap = cap > INT64_MAX / 2 ? INT64_MAX : cap * 2;
        if (cap > max_ms)
                cap = max_ms;
        return cap <= 0 ? 0 : (int64_t)(random % ((uint64_t)cap + 1));
}

uint64_t avk_webhook_random(uint64_t *state)
{
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

enum avk_webhook_verdict avk_webhook_classify(int curl_code, long http_status)
{
        if (curl_code != CURLE_OK) {
                /* A URL curl cannot use will not improve with time; every other
                 * transport failure (refused, reset, timeout, TLS) may. */
                return curl_code == CURLE_UNSUPPORTED_PROTOCOL || curl_code == CURLE_URL_MALFORMAT
                           ? AVK_WEBHOOK_PERMANENT
                           : AVK_WEBHOOK_RETRY;
        }
        if (http_status >= 200 && http_status < 300)
                return AVK_WEBHOOK_DELIVERED;
        if (http_status >= 500 || http_status == 408 || http_status == 429)
                return AVK_WEBHOOK_RETRY;
        return AVK_WEBHOOK_PERMANENT;
}

const char *avk_webhook_result(int curl_code, long status)
{
        switch (curl_code) {
        case CURLE_OK:
                return status >= 500   ? "5xx"
                       : status >= 400 ? "4xx"
                       : status >= 300 ? "3xx"
                       : status >= 200 ? "2xx"
                                       : "1xx";
        case CURLE_OPERATION_TIMEDOUT:
                return "timeout";
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
                return "connect";
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
                return "tls";
        default:
                return "error";
        }
}

void avk_webhook_reason(CURL *easy, int curl_code, long status, char *buf, size_t size)
{
        long verify = 0;
        if (curl_code == CURLE_OK)
                snprintf(buf, size, "HTTP %ld", status);
        else if (curl_code == CURLE_PEER_FAILED_VERIFICATION && easy &&
                 curl_easy_getinfo(easy, CURLINFO_SSL_VERIFYRESULT, &verify) == CURLE_OK &&
                 verify != 0)
                snprintf(buf, size, "TLS: certificate verify failed: %s",
                         X509_verify_cert_error_string(verify));
        else
                snprintf(buf, size, "%s", curl_easy_strerror((CURLcode)curl_code));
}

int avk_webhook_add_header(struct curl_slist **list, const char *name, const char *value)
{
        char line[256];
        snprintf(line, sizeof(line), "%s: %s", name, value);
        struct curl_slist *l = curl_slist_append(*list, line);
        if (!l)
                return -1;
        *list = l;
        return 0;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        (void)ptr;
        (void)userdata;
        return size * nmemb;
}

CURL *avk_webhook_post_start(CURLM *multi, const struct avk_webhook_post *p)
{
        CURL *e = curl_easy_init();
        int https = strncmp(p->url, "https://", 8) == 0;
        int ok =
            e && curl_easy_setopt(e, CURLOPT_URL, p->url) == CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, https ? "https" : "http") == CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers) == CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body_len) == CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, p->body) == CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms) == CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)p->connect_timeout_ms) ==
                CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
            (!p->ca_location || curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_location) == CURLE_OK) &&
            curl_easy_setopt(e, CURLOPT_USERAGENT, p->user_agent) == CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard) == CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->error_buffer) == CURLE_OK &&
            curl_easy_setopt(e, CURLOPT_PRIVATE, p->private_ptr) == CURLE_OK &&
            curl_multi_add_handle(multi, e) == CURLM_OK;
        if (!ok && e) {
                curl_easy_cleanup(e);
                e = NULL;
        }
        return e;
}

long avk_webhook_finish(CURLM *multi, CURL **easy, int curl_code, char *buf, size_t size)
{
        long status = 0;
        if (curl_code == CURLE_OK)
                curl_easy_getinfo(*easy, CURLINFO_RESPONSE_CODE, &status);
        avk_webhook_reason(*easy, curl_code, status, buf, size);
        if (*easy) {
                curl_multi_remove_handle(multi, *easy);
                curl_easy_cleanup(*easy);
                *easy = NULL;
        }
        return status;
}

void avk_webhook_collect(CURLM *multi, avk_webhook_done_cb *done, void *opaque)
{
        int running, left;
        CURLMsg *msg;
        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                char *private_ptr = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &private_ptr);
                done(opaque, private_ptr, msg->data.result);
        }
}

int avk_webhook_wake_pipe(int fds[2])
{
        if (pipe(fds) != 0)
                return -1;
        for (int i = 0; i < 2; i++) {
                if (fcntl(fds[i], F_SETFL, O_NONBLOCK) != 0 ||
                    fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0)
                        return -1;
        }
        return 0;
}

void avk_webhook_wait(CURLM *multi, int wake_fd, int64_t timeout_ms)
{
        struct curl_waitfd wake = {.fd = wake_fd, .events = CURL_WAIT_POLLIN};
        curl_multi_poll(multi, &wake, 1,
                        (int)(timeout_ms < 0         ? 0
                              : timeout_ms > INT_MAX ? INT_MAX
                                                     : timeout_ms),
                        NULL);
        char drain[64];
        while (read(wake_fd, drain, sizeof(drain)) > 0)
                ;
}
