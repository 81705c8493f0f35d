/*
 * The HTTP server module (common/http/server.h): routes with path
 * parameters, the probes, request ids, answers given later from another
 * thread, the authentication hook and body limit - what a client gets back
 * over real HTTP - and what a hostile client gets: ambiguous framing refused
 * and the connection closed (RFC 9112 section 6), idle and slow connections
 * from one address that leave everyone else served.
 */
#include <check.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/http/server.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_data.h"

static atomic_int handled;

static void part(avk_httpd_req_t *req, void *opaque)
{
        (void)opaque;
        atomic_fetch_add(&handled, 1);
        avk_httpd_answer_json(req, 200,
                              json_pack("{s:s,s:s}", "item", avk_httpd_req_param(req, "item"),
                                        "part", avk_httpd_req_param(req, "part")));
}

static void echo(avk_httpd_req_t *req, void *opaque)
{
        (void)opaque;
        atomic_fetch_add(&handled, 1);
        size_t len;
        const char *body = avk_httpd_req_body(req, &len);
        char *copy = malloc(len + 1);
        if (len)
                memcpy(copy, body, len);
        avk_httpd_answer(req, 200, "text/plain", copy, len);
}

#define STATE_SIZE 64

/* Answers "fresh" when the request's state is all zero, as a request's
 * state starts, else "stale"; then marks it, and answers from it. */
static void stateful(avk_httpd_req_t *req, void *opaque)
{
        (void)opaque;
        char *state = avk_httpd_req_state(req);
        int fresh = 1;
        for (size_t i = 0; i < STATE_SIZE; i++)
                fresh &= state[i] == 0;
        size_t len;
        const char *body = avk_httpd_req_body(req, &len);
        int n = snprintf(state, STATE_SIZE, "%s %.*s", fresh ? "fresh" : "stale", (int)len, body);
        avk_httpd_answer_static(req, 200, "text/plain", state, (size_t)n);
}

static void *answer_later(void *arg)
{
        usleep(50 * 1000);
        avk_httpd_error(arg, 503, "later", "waited %d ms", 50);
        return NULL;
}

static void deferred(avk_httpd_req_t *req, void *opaque)
{
        (void)opaque;
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, answer_later, req), 0);
        pthread_detach(t);
}

static int needs_token(avk_httpd_req_t *req, void *opaque)
{
        (void)opaque;
        const char *token = avk_httpd_req_header(req, "Authorization");
        if (token && strcmp(token, "Bearer good") == 0)
                return 0;
        avk_httpd_req_add_header(req, "WWW-Authenticate", "Bearer realm=\"test\"");
        avk_httpd_error(req, 401, "authentication required", NULL);
        return -1;
}

/* A hook that refuses without answering: the server answers 401 for it. */
static int refuses_silently(avk_httpd_req_t *req, void *opaque)
{
        (void)req;
        (void)opaque;
        return -1;
}

static const struct avk_httpd_route routes[] = {
    {.method = "GET", .pattern = "/items/{item}/parts/{part}", .on_request = part},
    {.method = "POST", .pattern = "/echo", .on_request = echo},
    {.method = "POST", .pattern = "/private", .auth = needs_token, .on_request = echo},
    {.method = "POST", .pattern = "/closed", .auth = refuses_silently, .on_request = echo},
    {.method = "GET", .pattern = "/later", .on_request = deferred},
    {.method = "POST", .pattern = "/state", .on_request = stateful},
};

/* A server with these limits (0: the defaults), its own series on metrics (may be NULL). */
static avk_httpd_t *start_with(unsigned per_client, unsigned header_timeout_s,
                               unsigned body_timeout_s, avk_metrics_t *metrics)
{
        struct avk_httpd_conf conf = {
            .listen = "127.0.0.1:0",
            .listen_key = "test.listen",
            .threads = 2,
            .max_body = 1024,
            .max_body_key = "test.max.body.bytes",
            .max_connections = 64,
            .max_connections_per_client = per_client,
            .header_timeout_s = header_timeout_s,
            .body_timeout_s = body_timeout_s,
            .style = AVK_HTTPD_JSON,
            .name = "test server",
            .not_found = "path: not served",
            .routes = routes,
            .route_cnt = sizeof(routes) / sizeof(routes[0]),
            .state_size = STATE_SIZE,
            .metrics = metrics,
        };
        char err[256];
        avk_httpd_t *h = avk_httpd_start(&conf, err, sizeof(err));
        ck_assert_msg(h != NULL, "%s", err);
        atomic_store(&handled, 0);
        return h;
}

static avk_httpd_t *start(unsigned per_client, unsigned header_timeout_s, unsigned body_timeout_s)
{
        return start_with(per_client, header_timeout_s, body_timeout_s, NULL);
}

/* One request on a connection of its own; the whole answer, closed or not. */
static char *exchange(avk_httpd_t *h, const char *source, const char *request, int *closed)
{
        int fd = raw_http_connect(source, (int)avk_httpd_port(h));
        ck_assert_int_ge(fd, 0);
        char *answer = raw_http_exchange(fd, request, 2000, closed);
        close(fd);
        ck_assert_ptr_nonnull(answer);
        return answer;
}

/* Sends request on a connection of its own: the answer must have status
 * and hold has (unless NULL). @returns the answer, for more checks. */
static char *expect(avk_httpd_t *h, const char *request, int status, const char *has)
{
        int closed;
        char *a = exchange(h, NULL, request, &closed), line[32];
        snprintf(line, sizeof(line), "HTTP/1.1 %d", status);
        ck_assert_msg(strncmp(a, line, strlen(line)) == 0, "want %d: %s", status, a);
        ck_assert_msg(!has || strstr(a, has), "no \"%s\" in %s", has, a);
        return a;
}

/* GETs path: the answer must have status and hold has (unless NULL). */
static void expect_get(avk_httpd_t *h, const char *path, int status, const char *has)
{
        char request[512];
        snprintf(request, sizeof(request),
                 "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
        free(expect(h, request, status, has));
}

START_TEST(a_route_takes_its_path_parameters)
{
        avk_httpd_t *h = start(0, 0, 0);
        expect_get(h, "/items/a1/parts/7", 200, "{\"item\":\"a1\",\"part\":\"7\"}");
        expect_get(h, "/items//parts/7", 404,
                   "{\"error\":\"no such resource\",\"errors\":[\"path: not served\"]}");
        avk_httpd_stop(h);
}
END_TEST

START_TEST(a_known_path_with_another_method_is_405_with_allow)
{
        avk_httpd_t *h = start(0, 0, 0);
        char *a = expect(h, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 405,
                         "Allow: POST\r\n");
        ck_assert_ptr_nonnull(strstr(a, "method: GET is not allowed here; allowed: POST"));
        free(a);
        free(expect(h, "DELETE /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 405,
                    "Allow: GET, HEAD\r\n"));
        avk_httpd_stop(h);
}
END_TEST

START_TEST(the_probes_answer_without_routes_of_their_own)
{
        avk_httpd_t *h = start(0, 0, 0);
        expect_get(h, "/healthz", 200, "{\"status\":\"serving\"}");
        expect_get(h, "/readyz", 200, "{\"ready\":true}");
        expect_get(h, "/metrics", 404, NULL); /* no registry given: no /metrics */
        avk_httpd_stop(h);
}
END_TEST

START_TEST(every_answer_carries_a_request_id)
{
        avk_httpd_t *h = start(0, 0, 0);
        free(expect(h,
                    "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123\r\nConnection: "
                    "close\r\n\r\n",
                    200, "X-Request-Id: abc-123\r\n"));
        char *first = expect(h, "GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                             404, "X-Request-Id: ");
        char *second = expect(h, "GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                              404, "X-Request-Id: ");
        const char *id1 = strstr(first, "X-Request-Id: "), *id2 = strstr(second, "X-Request-Id: ");
        ck_assert_int_gt((int)strcspn(id1 + 14, "\r"), 8);
        ck_assert_int_ne(strncmp(id1, id2, strcspn(id1, "\r")), 0);
        free(first);
        free(second);
        char *a = expect(
            h,
            "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: bad id\r\nConnection: close\r\n\r\n",
            200, "X-Request-Id: ");
        ck_assert_ptr_null(strstr(a, "bad id"));
        free(a);
        avk_httpd_stop(h);
}
END_TEST

/* The request id the server made for a request to /nowhere: its prefix (16
 * hexadecimal digits) into prefix, its number returned. */
static unsigned long made_request_id(avk_httpd_t *h, char prefix[17])
{
        char *a = expect(h, "GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 404,
                         "X-Request-Id: ");
        const char *id = strstr(a, "X-Request-Id: ") + 14;
        size_t len = strcspn(id, "\r");
        ck_assert_msg(len > 17 && strspn(id, "0123456789abcdef") == 16 && id[16] == '-' &&
                          strspn(id + 17, "0123456789") == len - 17,
                      "request id \"%.*s\" is not 16 hexadecimal digits, '-' and a number",
                      (int)len, id);
        memcpy(prefix, id, 16);
        prefix[16] = '\0';
        unsigned long n = strtoul(id + 17, NULL, 10);
        free(a);
        return n;
}

START_TEST(a_made_request_id_is_the_prefix_and_a_count)
{
        avk_httpd_t *h = start(0, 0, 0);
        char prefix[17], first_prefix[17];
        unsigned long first = made_request_id(h, first_prefix);
        for (unsigned long i = 1; i <= 12; i++) { /* into two digits */
                ck_assert_uint_eq(made_request_id(h, prefix), first + i);
                ck_assert_str_eq(prefix, first_prefix);
        }
        avk_httpd_stop(h);
}
END_TEST

START_TEST(an_answer_may_come_later_from_another_thread)
{
        avk_httpd_t *h = start(0, 0, 0);
        expect_get(h, "/later", 503, "{\"error\":\"later\",\"errors\":[\"waited 50 ms\"]}");
        avk_httpd_stop(h);
}
END_TEST

/* A connection's requests one after the other (the server reuses the
 * memory of one for the next): each starts with zeroed state and sees its
 * own body only, a shorter one after a longer one too. */
START_TEST(requests_on_one_connection_start_afresh)
{
        avk_httpd_t *h = start(0, 0, 0);
        int fd = raw_http_connect(NULL, (int)avk_httpd_port(h));
        ck_assert_int_ge(fd, 0);
        int closed;
        char *a = raw_http_exchange(fd,
                                    "POST /state HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n"
                                    "abcdefghij"
                                    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\n"
                                    "1234567"
                                    "POST /state HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                                    "Connection: close\r\n\r\nxyz",
                                    2000, &closed);
        close(fd);
        ck_assert_ptr_nonnull(a);
        ck_assert_int_eq(raw_http_count(a, "HTTP/1.1 200"), 3);
        ck_assert_msg(strstr(a, "\r\n\r\nfresh abcdefghijHTTP/1.1 200"), "%s", a);
        ck_assert_msg(strstr(a, "\r\n\r\n1234567HTTP/1.1 200"), "%s", a);
        ck_assert_msg(strstr(a, "\r\n\r\nfresh xyz") && !strstr(a, "stale"), "%s", a);
        free(a);
        avk_httpd_stop(h);
}
END_TEST

START_TEST(the_authentication_hook_answers_before_the_body)
{
        avk_httpd_t *h = start(0, 0, 0);
        free(expect(h,
                    "POST /private HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                    "Connection: close\r\n\r\nhi",
                    401, "WWW-Authenticate: Bearer realm=\"test\"\r\n"));
        char *a = expect(h,
                         "POST /private HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
                         "Content-Length: 2\r\nConnection: close\r\n\r\nhi",
                         200, NULL);
        ck_assert_ptr_null(strstr(a, "WWW-Authenticate"));
        ck_assert_int_eq(atomic_load(&handled), 1);
        free(a);
        free(expect(h, "POST /closed HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi", 401,
                    "{\"error\":\"authentication failed\"}"));
        ck_assert_int_eq(atomic_load(&handled), 1);
        avk_httpd_stop(h);
}
END_TEST

START_TEST(a_body_over_the_limit_is_413)
{
        avk_httpd_t *h = start(0, 0, 0);
        free(expect(h, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n\r\n", 413,
                    "body: 4096 bytes is over the limit of 1024 bytes (test.max.body.bytes)"));
        char chunked[4096];
        int n = snprintf(chunked, sizeof(chunked),
                         "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                         "Connection: close\r\n\r\n800\r\n");
        memset(chunked + n, 'x', 0x800);
        snprintf(chunked + n + 0x800, sizeof(chunked) - (size_t)n - 0x800, "\r\n0\r\n\r\n");
        free(expect(h, chunked, 413, "body: over the limit of 1024 bytes"));
        ck_assert_int_eq(atomic_load(&handled), 0);
        avk_httpd_stop(h);
}
END_TEST

/* A smuggled request: framing two readers could take apart differently,
 * and a second request after it. The server must answer 400 once, close the
 * connection, and run neither. */
static void check_refused(const char *request)
{
        avk_httpd_t *h = start(0, 0, 0);
        int closed;
        char *a = exchange(h, NULL, request, &closed);
        ck_assert_msg(strncmp(a, "HTTP/1.1 400", 12) == 0, "%s", a);
        ck_assert_msg(raw_http_count(a, "HTTP/1.") == 1, "more than one answer: %s", a);
        ck_assert_ptr_nonnull(strstr(a, "ambiguous request framing"));
        ck_assert_msg(closed, "the connection stayed open: %s", a);
        ck_assert_int_eq(atomic_load(&handled), 0);
        free(a);
        avk_httpd_stop(h);
}

/* GETs /healthz with a header of pad bytes: the answer must have status. */
static void expect_padded(avk_httpd_t *h, size_t pad, int status)
{
        char *request = malloc(pad + 128);
        ck_assert_ptr_nonnull(request);
        int len = snprintf(request, pad + 128, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: ");
        memset(request + len, 'a', pad);
        snprintf(request + len + pad, 128 - (size_t)len, "\r\nConnection: close\r\n\r\n");
        free(expect(h, request, status, NULL));
        free(request);
}

/* Each connection has 16 KiB of libmicrohttpd's memory, zeroed after every
 * request (docs/gateway.md, "Limits and back-pressure"): a head of 12 KiB
 * is served, one of 20 KiB is 431. */
START_TEST(a_head_past_the_connections_memory_is_431)
{
        avk_httpd_t *h = start(0, 0, 0);
        expect_padded(h, 12 * 1024, 200);
        expect_padded(h, 20 * 1024, 431);
        avk_httpd_stop(h);
}
END_TEST

START_TEST(content_length_with_transfer_encoding_is_refused_and_closed)
{
        check_refused("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                      "GET /items/x/parts/smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
}
END_TEST

START_TEST(two_different_content_lengths_are_refused_and_closed)
{
        check_refused("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                      "Content-Length: 48\r\n\r\n"
                      "GET /items/x/parts/smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
}
END_TEST

START_TEST(a_space_before_a_header_colon_is_refused_and_closed)
{
        check_refused("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n"
                      "\r\n5\r\nhello\r\n0\r\n\r\n"
                      "GET /items/x/parts/smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
}
END_TEST

START_TEST(a_coding_other_than_chunked_alone_is_refused_and_closed)
{
        /* libmicrohttpd reads no body for a coding it does not know: the chunks would run. */
        check_refused("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n"
                      "\r\n0\r\n\r\n"
                      "GET /items/x/parts/smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
}
END_TEST

START_TEST(chunked_in_http_1_0_is_refused_and_closed)
{
        check_refused("POST /echo HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                      "\r\n0\r\n\r\n"
                      "GET /items/x/parts/smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
}
END_TEST

/* 200 idle connections from 127.0.0.1 against a server that takes 16 per
 * address and 64 in all: another address still gets every /healthz at once. */
START_TEST(idle_connections_from_one_address_leave_others_served)
{
        enum { IDLE = 200, PROBES = 50 };
        avk_httpd_t *h = start(16, 30, 30);
        int idle[IDLE];
        raw_http_hold_idle((int)avk_httpd_port(h), idle, IDLE);
        double slowest =
            raw_http_slowest_get("127.0.0.2", (int)avk_httpd_port(h), "/healthz", PROBES);
        ck_assert_msg(slowest < 0.5, "slowest /healthz took %.3f s", slowest);
        for (int i = 0; i < IDLE; i++)
                close(idle[i]);
        avk_httpd_stop(h);
}
END_TEST

/* Sends request and leaves the connection be: the server must close it
 * within 5 s, without running a handler. */
static void check_closed_when_idle(avk_httpd_t *h, const char *request)
{
        int fd = raw_http_connect(NULL, (int)avk_httpd_port(h)), closed;
        ck_assert_int_ge(fd, 0);
        free(raw_http_exchange(fd, request, 5000, &closed));
        close(fd);
        ck_assert_msg(closed, "still open after 5 s: %s", request);
        ck_assert_int_eq(atomic_load(&handled), 0);
}

/* Headers that never end are closed at the header timeout (the body's is
 * long), a body that stops at the body timeout (the headers' is long). */
START_TEST(slow_headers_and_bodies_are_closed_at_their_timeouts)
{
        avk_httpd_t *h = start(0, 1, 60);
        check_closed_when_idle(h, "GET /healthz HTTP/1.1\r\nHost: t\r\n");
        avk_httpd_stop(h);
        h = start(0, 60, 1);
        check_closed_when_idle(h, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab");
        avk_httpd_stop(h);
}
END_TEST

/* The value of series (name and labels, as rendered) on h's /metrics; -1 when absent. */
static long long metric(avk_httpd_t *h, const char *series)
{
        int closed;
        char *a = exchange(h, NULL, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                           &closed);
        long long value = -1;
        for (const char *line = strstr(a, "\n"); line; line = strstr(line + 1, "\n")) {
                if (strncmp(line + 1, series, strlen(series)) == 0 &&
                    line[1 + strlen(series)] == ' ')
                        value = strtoll(line + 2 + strlen(series), NULL, 10);
        }
        free(a);
        return value;
}

/* Opens cnt connections, sends text (may be "") on each, waits wait_ms
 * (for the server to read it) and closes them unanswered. */
static void give_up(avk_httpd_t *h, const char *text, int cnt, int wait_ms)
{
        int fds[64];
        ck_assert_int_le(cnt, 64);
        for (int i = 0; i < cnt; i++) {
                fds[i] = raw_http_connect(NULL, (int)avk_httpd_port(h));
                ck_assert_int_ge(fds[i], 0);
                if (text[0])
                        ck_assert_int_eq(write(fds[i], text, strlen(text)), (ssize_t)strlen(text));
        }
        usleep((useconds_t)wait_ms * 1000);
        for (int i = 0; i < cnt; i++)
                close(fds[i]);
}

/* Lines in the file at path. */
static int lines_of(const char *path)
{
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        int n = 0, c;
        while ((c = fgetc(f)) != EOF)
                n += c == '\n';
        fclose(f);
        return n;
}

/* A flood of connections given up on: each counted by its reason in
 * /metrics, and the log does not grow a line for each. */
START_TEST(aborted_connections_are_counted_and_the_log_stays_bounded)
{
        enum { HEADS = 60, BODIES = 40, EMPTY = 20 }; /* each at most 64 */
        char log[] = "/tmp/avk-httpd-log-XXXXXX";
        int log_fd = mkstemp(log), saved = dup(2);
        ck_assert_int_ge(log_fd, 0);
        ck_assert_int_ge(dup2(log_fd, 2), 0);
        avk_metrics_t *m = avk_metrics_new();
        avk_httpd_t *h = start_with(0, 1, 1, m);
        give_up(h, "GET /healthz HTTP/1.1\r\nHo", HEADS, 0);
        /* Closed once the server began the request, in its body. */
        give_up(h, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab", BODIES, 300);
        give_up(h, "", EMPTY, 0);
        /* Each connection once: the heads and the empty ones before a request,
         * the bodies when the server sees them go (or, on a busy machine,
         * before it began their request, or at the body timeout). */
        long long by[4] = {0}, sum = 0;
        for (int tries = 0; tries < 100 && sum < HEADS + BODIES + EMPTY; tries++) {
                usleep(50 * 1000);
                sum = 0;
                for (int r = 0; r < 4; r++) {
                        static const char *const reasons[] = {"before_request", "client_closed",
                                                              "timeout", "error"};
                        char series[96];
                        snprintf(series, sizeof(series),
                                 "avk_http_connections_aborted_total{reason=\"%s\"}", reasons[r]);
                        sum += by[r] = metric(h, series);
                }
        }
        ck_assert_int_eq(sum, HEADS + BODIES + EMPTY);
        ck_assert_int_ge(by[0], HEADS + EMPTY);
        ck_assert_int_eq(by[3], 0);
        ck_assert_int_eq(atomic_load(&handled), 0);
        ck_assert_int_ge(metric(h, "avk_http_log_suppressed_total"), 0);
        avk_httpd_stop(h);
        avk_metrics_destroy(m);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        close(log_fd);
        int lines = lines_of(log);
        unlink(log);
        ck_assert_msg(lines <= 10, "%d log lines for %d connections", lines,
                      HEADS + BODIES + EMPTY);
}
END_TEST

/* Two servers on one registry (a restart, a second endpoint) share its series. */
START_TEST(servers_on_one_registry_share_its_series)
{
        avk_metrics_t *m = avk_metrics_new();
        avk_httpd_t *a = start_with(0, 1, 1, m), *b = start_with(0, 1, 1, m);
        give_up(a, "", 1, 0);
        give_up(b, "", 1, 0);
        long long both = 0;
        for (int tries = 0; tries < 100 && both < 2; tries++) {
                usleep(50 * 1000);
                both = metric(b, "avk_http_connections_aborted_total{reason=\"before_request\"}");
        }
        ck_assert_int_eq(both, 2);
        avk_httpd_stop(a);
        avk_httpd_stop(b);
        avk_metrics_destroy(m);
}
END_TEST

START_TEST(tls_needs_both_files_and_names_the_key)
{
        struct avk_httpd_conf conf = {.listen = "127.0.0.1:0",
                                      .listen_key = "test.listen",
                                      .tls_cert_file = "/nonexistent/cert.pem",
                                      .tls_cert_key = "test.tls.cert.file",
                                      .tls_key_key = "test.tls.key.file"};
        char err[256] = "";
        ck_assert_ptr_null(avk_httpd_start(&conf, err, sizeof(err)));
        ck_assert_str_eq(err, "test.tls.key.file: must be set with test.tls.cert.file");
        conf.tls_key_file = "/nonexistent/key.pem";
        ck_assert_ptr_null(avk_httpd_start(&conf, err, sizeof(err)));
        ck_assert_str_eq(err,
                         "test.tls.cert.file: /nonexistent/cert.pem: No such file or directory");
}
END_TEST

START_TEST(hosts_are_names_separated_by_commas)
{
        static const char *const bad[] = {"", "a,,b", "a, b", ",a", "a,", "a b"};
        struct avk_httpd_conf conf = {
            .listen = "127.0.0.1:0", .listen_key = "test.listen", .hosts_key = "test.hosts"};
        char err[256] = "";
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                conf.hosts = bad[i];
                ck_assert_msg(avk_httpd_start(&conf, err, sizeof(err)) == NULL, "'%s'", bad[i]);
                ck_assert_str_eq(err, "test.hosts: expected names separated by commas, without "
                                      "blanks or empty names");
        }
        conf.hosts = "a.example,[::1],localhost";
        avk_httpd_t *h = avk_httpd_start(&conf, err, sizeof(err));
        ck_assert_msg(h != NULL, "%s", err);
        avk_httpd_stop(h);
}
END_TEST

START_TEST(a_tls_key_others_may_read_is_refused)
{
        char dir[64], cert[96], key[96], err[512] = "";
        ck_assert_ptr_nonnull(test_data_temp_dir("avk-httpd-tls", dir, sizeof(dir)));
        snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
        snprintf(key, sizeof(key), "%s/key.pem", dir);
        FILE *f = fopen(cert, "w");
        ck_assert_ptr_nonnull(f);
        fputs("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", f);
        fclose(f);
        ck_assert_ptr_nonnull(f = fopen(key, "w"));
        fputs("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n", f);
        fclose(f);
        ck_assert_int_eq(chmod(key, 0644), 0);
        struct avk_httpd_conf conf = {.listen = "127.0.0.1:0",
                                      .listen_key = "test.listen",
                                      .tls_cert_file = cert,
                                      .tls_cert_key = "test.tls.cert.file",
                                      .tls_key_file = key,
                                      .tls_key_key = "test.tls.key.file"};
        ck_assert_ptr_null(avk_httpd_start(&conf, err, sizeof(err)));
        ck_assert_msg(strstr(err, "test.tls.key.file") && strstr(err, "group or others"), "%s",
                      err);
        test_data_remove_dir(dir);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("httpd");
        TCase *tc = tcase_create("httpd");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, a_route_takes_its_path_parameters);
        tcase_add_test(tc, requests_on_one_connection_start_afresh);
        tcase_add_test(tc, a_head_past_the_connections_memory_is_431);
        tcase_add_test(tc, a_tls_key_others_may_read_is_refused);
        tcase_add_test(tc, a_known_path_with_another_method_is_405_with_allow);
        tcase_add_test(tc, the_probes_answer_without_routes_of_their_own);
        tcase_add_test(tc, every_answer_carries_a_request_id);
        tcase_add_test(tc, a_made_request_id_is_the_prefix_and_a_count);
        tcase_add_test(tc, an_answer_may_come_later_from_another_thread);
        tcase_add_test(tc, the_authentication_hook_answers_before_the_body);
        tcase_add_test(tc, a_body_over_the_limit_is_413);
        tcase_add_test(tc, content_length_with_transfer_encoding_is_refused_and_closed);
        tcase_add_test(tc, two_different_content_lengths_are_refused_and_closed);
        tcase_add_test(tc, a_space_before_a_header_colon_is_refused_and_closed);
        tcase_add_test(tc, idle_connections_from_one_address_leave_others_served);
        tcase_add_test(tc, slow_headers_and_bodies_are_closed_at_their_timeouts);
        tcase_add_test(tc, tls_needs_both_files_and_names_the_key);
        tcase_add_test(tc, hosts_are_names_separated_by_commas);
        tcase_add_test(tc, a_coding_other_than_chunked_alone_is_refused_and_closed);
        tcase_add_test(tc, chunked_in_http_1_0_is_refused_and_closed);
        tcase_add_test(tc, aborted_connections_are_counted_and_the_log_stays_bounded);
        tcase_add_test(tc, servers_on_one_registry_share_its_series);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
