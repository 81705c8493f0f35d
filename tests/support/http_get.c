/* A GET for tests: see http_get.h. */
#include "tests/support/http_get.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

struct buffer {
        char *data;
        size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
        struct buffer *b = opaque;
        size_t n = size * nmemb;
        char *grown = realloc(b->data, b->len + n + 1);
        if (!grown)
                return 0;
        memcpy(grown + b->len, data, n);
        b->len += n;
        grown[b->len] = '\0';
        b->data = grown;
        return n;
}

struct http_reply http_get(int port, const char *path)
{
        char url[256];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        struct buffer b = {0};
        struct http_reply r = {0};
        CURL *c = curl_easy_init();
        ck_assert_ptr_nonnull(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
        CURLcode rc = curl_easy_perform(c);
        ck_assert_msg(rc == CURLE_OK, "GET %s: %s", path, curl_easy_strerror(rc));
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_cleanup(c);
        r.body = b.data ? b.data : strdup("");
        return r;
}
