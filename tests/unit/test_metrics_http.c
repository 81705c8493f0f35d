/*
 * The metrics and health endpoint of the services: what Prometheus and an
 * orchestrator's probes get back over real HTTP (libcurl as the client).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/http/metrics_http.h"

struct reply {
        long status;
        char body[4096];
        size_t len;
        char content_type[128];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
        struct reply *r = opaque;
        size_t n = size * nmemb;
        size_t room = sizeof(r->body) - 1 - r->len;
        memcpy(r->body + r->len, data, n < room ? n : room);
        r->len += n < room ? n : room;
        r->body[r->len] = '\0';
        return n;
}

static struct reply request(int port, const char *method, const char *path)
{
        struct reply r = {0};
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        CURL *c = curl_easy_init();
        ck_assert_ptr_nonnull(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
        ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        char *type = NULL;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
        snprintf(r.content_type, sizeof(r.content_type), "%s", type ? type : "");
        curl_easy_cleanup(c);
        return r;
}

static int ready_flag;

static int ready(void *opaque, char *why, size_t why_size)
{
        (void)opaque;
        if (!ready_flag)
                snprintf(why, why_size, "Kafka unreachable");
        return ready_flag;
}

START_TEST(metrics_are_served_in_prometheus_text_format)
{
        avk_metrics_t *m = avk_metrics_new();
        avk_metric_add(avk_metrics_series(avk_metrics_counter(m, "avk_things_total", "Things.",
                                                              (const char *[]){"kind", NULL}),
                                          (const char *[]){"good"}),
                       3);
        char err[256];
        avk_metrics_http_t *h =
            avk_metrics_http_start("127.0.0.1:0", m, NULL, NULL, err, sizeof(err));
        ck_assert_msg(h != NULL, "%s", err);
        ck_assert_int_gt(avk_metrics_http_port(h), 0);
        struct reply r = request(avk_metrics_http_port(h), "GET", "/metrics");
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.content_type, AVK_METRICS_CONTENT_TYPE);
        ck_assert_ptr_nonnull(strstr(r.body, "avk_things_total{kind=\"good\"} 3\n"));
        r = request(avk_metrics_http_port(h), "GET", "/healthz");
        ck_assert_int_eq(r.status, 200);
        avk_metrics_http_stop(h);
        avk_metrics_destroy(m);
}
END_TEST

/* A notifier with many webhook attempts has more than select()'s 1024
 * descriptors open: the server's own sockets then sit past FD_SETSIZE. */
START_TEST(metrics_are_served_with_more_than_1024_descriptors_open)
{
        enum { OPEN = 1100 };
        int fds[OPEN], base = open("/dev/null", O_RDONLY);
        ck_assert_int_ge(base, 0);
        for (int i = 0; i < OPEN; i++) {
                fds[i] = dup(base);
                ck_assert_msg(fds[i] >= 0, "dup: %s", strerror(errno));
        }
        avk_metrics_t *m = avk_metrics_new();
        char err[256];
        avk_metrics_http_t *h =
            avk_metrics_http_start("127.0.0.1:0", m, NULL, NULL, err, sizeof(err));
        ck_assert_msg(h != NULL, "%s", err);
        struct reply r = request(avk_metrics_http_port(h), "GET", "/metrics");
        ck_assert_int_eq(r.status, 200);
        avk_metrics_http_stop(h);
        avk_metrics_destroy(m);
        for (int i = 0; i < OPEN; i++)
                close(fds[i]);
        close(base);
}
END_TEST

START_TEST(readiness_follows_the_service_and_says_why_not)
{
        avk_metrics_t *m = avk_metrics_new();
        char err[256];
        ready_flag = 0;
        avk_metrics_http_t *h =
            avk_metrics_http_start("127.0.0.1:0", m, ready, NULL, err, sizeof(err));
        ck_assert_msg(h != NULL, "%s", err);
        struct reply r = request(avk_metrics_http_port(h), "GET", "/readyz");
        ck_assert_int_eq(r.status, 503);
        ck_assert_str_eq(r.body, "not ready: Kafka unreachable\n");
        ready_flag = 1;
        r = request(avk_metrics_http_port(h), "GET", "/readyz");
        ck_assert_int_eq(r.status, 200);
        avk_metrics_http_stop(h);
        avk_metrics_destroy(m);
}
END_TEST

START_TEST(other_paths_and_methods_are_refused)
{
        avk_metrics_t *m = avk_metrics_new();
        char err[256];
        avk_metrics_http_t *h =
            avk_metrics_http_start("127.0.0.1:0", m, NULL, NULL, err, sizeof(err));
        ck_assert_msg(h != NULL, "%s", err);
        ck_assert_int_eq(request(avk_metrics_http_port(h), "GET", "/v1/deviations").status, 404);
        ck_assert_int_eq(request(avk_metrics_http_port(h), "POST", "/metrics").status, 405);
        avk_metrics_http_stop(h);
        avk_metrics_destroy(m);
}
END_TEST

START_TEST(a_bad_listen_address_is_a_clear_error)
{
        avk_metrics_t *m = avk_metrics_new();
        char err[256] = "";
        ck_assert_ptr_null(avk_metrics_http_start("localhost", m, NULL, NULL, err, sizeof(err)));
        ck_assert_str_eq(err,
                         "listen address: \"localhost\": expected host:port or [address]:port");
        ck_assert_ptr_null(
            avk_metrics_http_start("127.0.0.1:99999", m, NULL, NULL, err, sizeof(err)));
        avk_metrics_destroy(m);
}
END_TEST

START_TEST(a_port_in_use_is_a_clear_error)
{
        avk_metrics_t *m = avk_metrics_new();
        char err[256] = "", listen[64];
        avk_metrics_http_t *h =
            avk_metrics_http_start("127.0.0.1:0", m, NULL, NULL, err, sizeof(err));
        ck_assert_msg(h != NULL, "%s", err);
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", avk_metrics_http_port(h));
        ck_assert_ptr_null(avk_metrics_http_start(listen, m, NULL, NULL, err, sizeof(err)));
        ck_assert_ptr_nonnull(strstr(err, "cannot listen on 127.0.0.1:"));
        avk_metrics_http_stop(h);
        avk_metrics_destroy(m);
}
END_TEST

int main(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
        Suite *s = suite_create("metrics_http");
        TCase *tc = tcase_create("endpoint");
        tcase_add_test(tc, metrics_are_served_in_prometheus_text_format);
        tcase_add_test(tc, metrics_are_served_with_more_than_1024_descriptors_open);
        tcase_add_test(tc, readiness_follows_the_service_and_says_why_not);
        tcase_add_test(tc, other_paths_and_methods_are_refused);
        tcase_add_test(tc, a_bad_listen_address_is_a_clear_error);
        tcase_add_test(tc, a_port_in_use_is_a_clear_error);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        curl_global_cleanup();
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
