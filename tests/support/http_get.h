/*
 * http_get: a GET over libcurl to a server of the test on 127.0.0.1 (the
 * services' /metrics, /healthz and /readyz endpoints), status and body.
 */
#ifndef AVK_TEST_HTTP_GET_H
#define AVK_TEST_HTTP_GET_H

struct http_reply {
        long status;
        char *body; /**< NUL-terminated; free() it */
};

/** @brief GETs http://127.0.0.1:<port><path>; a transport failure fails the running test. */
struct http_reply http_get(int port, const char *path);

#endif
