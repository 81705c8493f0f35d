/*
 * The gateway against a hostile client, on the in-process mock cluster, over
 * raw sockets: a filing smuggled behind ambiguous framing is refused with the
 * request that carried it and never reaches Kafka (RFC 9112 section 6), and
 * hundreds of idle connections from one address leave another address's
 * /healthz and filings answered at once.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "producer/gateway/gateway.h"
#include "tests/support/http_get.h"
#include "tests/support/mock_kafka.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_data.h"
#include "tests/support/wait_for.h"

#define TOKEN  "test-token-of-1480"
#define SAMPLE AVK_SOURCE_DIR "/deploy/samples/01-discharge-information-missing.json"

static struct mock_kafka mk;
static char tokens_path[64];
static avk_gateway_t *gw;
static char *sample;

static void write_tokens(void)
{
        unsigned char hash[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        ck_assert_int_eq(EVP_Digest(TOKEN, strlen(TOKEN), hash, &len, EVP_sha256(), NULL), 1);
        snprintf(tokens_path, sizeof(tokens_path), "/tmp/avk-gateway-http-XXXXXX");
        int fd = mkstemp(tokens_path);
        ck_assert_int_ge(fd, 0);
        FILE *f = fdopen(fd, "w");
        for (unsigned int i = 0; i < len; i++)
                fprintf(f, "%02x", hash[i]);
        fprintf(f, " 1480 test client\n");
        fclose(f);
}

/* 1 once /readyz is 200: the view has read the lifecycle topics, so filings are decided. */
static int ready(void)
{
        struct http_reply r = http_get((int)avk_gateway_port(gw), "/readyz");
        free(r.body);
        return r.status == 200;
}

static void start_gateway(void)
{
        char err[512];
        mock_kafka_start(&mk, 1);
        write_tokens();
        mock_kafka_set(&mk, "gateway.tokens.file", tokens_path);
        mock_kafka_set(&mk, "gateway.listen", "127.0.0.1:0");
        mock_kafka_set(&mk, "gateway.max.connections", "64");
        mock_kafka_set(&mk, "gateway.max.connections.per.client", "8");
        gw = avk_gateway_start(mk.cfg, err, sizeof(err));
        ck_assert_msg(gw != NULL, "%s", err);
        WAIT_FOR_MS(ready(), 1, 10000);
        sample = test_data_read(SAMPLE, err, sizeof(err));
        ck_assert_msg(sample != NULL, "%s", err);
}

static void stop_gateway(void)
{
        avk_gateway_stop(gw);
        free(sample);
        unlink(tokens_path);
        mock_kafka_stop(&mk);
}

/* A filing of the sample, as the bytes of a request with its headers. */
static char *filing(void)
{
        size_t size = strlen(sample) + 512;
        char *request = malloc(size);
        snprintf(request, size,
                 "POST /v1/deviations HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN "\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                 strlen(sample), sample);
        return request;
}

static char *exchange(const char *source, const char *request, int *closed)
{
        int fd = raw_http_connect(source, (int)avk_gateway_port(gw));
        ck_assert_int_ge(fd, 0);
        char *answer = raw_http_exchange(fd, request, 3000, closed);
        close(fd);
        ck_assert_ptr_nonnull(answer);
        return answer;
}

static void count_record(void *opaque, const rd_kafka_message_t *m)
{
        (void)m;
        (*(int *)opaque)++;
}

/* head precedes a complete filing in one write: only head is answered (400),
 * the connection is closed, and nothing reaches deviation.reported. */
static void check_smuggling_refused(const char *head)
{
        char *smuggled = filing();
        size_t size = strlen(head) + strlen(smuggled) + 1;
        char *request = malloc(size);
        snprintf(request, size, "%s%s", head, smuggled);
        int closed;
        char *answer = exchange(NULL, request, &closed);
        ck_assert_msg(strncmp(answer, "HTTP/1.1 400", 12) == 0, "%s", answer);
        ck_assert_msg(raw_http_count(answer, "HTTP/1.") == 1, "more than one answer: %s", answer);
        ck_assert_msg(closed, "the connection stayed open: %s", answer);
        int records = 0;
        mock_kafka_read_all(&mk, "deviation.reported", count_record, &records);
        ck_assert_int_eq(records, 0);
        free(answer);
        free(request);
        free(smuggled);
}

START_TEST(a_filing_behind_length_and_chunked_framing_is_refused)
{
        check_smuggling_refused(
            "POST /v1/deviations HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN
            "\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
}
END_TEST

START_TEST(a_filing_behind_two_content_lengths_is_refused)
{
        check_smuggling_refused(
            "POST /v1/deviations HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN
            "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "Content-Length: 9999\r\n\r\n{}");
}
END_TEST

START_TEST(a_filing_behind_a_spaced_header_name_is_refused)
{
        check_smuggling_refused(
            "POST /v1/deviations HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN
            "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "Transfer-Encoding : chunked\r\n\r\n{}");
}
END_TEST

/* 1,100 idle connections from 127.0.0.1 - past the 1,020 libmicrohttpd
 * holds by default - with 8 taken per address and 64 in all: 127.0.0.2's
 * /healthz and a filing are answered at once. */
START_TEST(idle_connections_from_one_address_leave_others_filing)
{
        enum { IDLE = 1100, PROBES = 50 };
        int idle[IDLE];
        raw_http_hold_idle((int)avk_gateway_port(gw), idle, IDLE);
        double slowest =
            raw_http_slowest_get("127.0.0.2", (int)avk_gateway_port(gw), "/healthz", PROBES);
        ck_assert_msg(slowest < 0.5, "slowest /healthz took %.3f s", slowest);
        char *request = filing();
        int closed;
        char *a = exchange("127.0.0.2", request, &closed);
        ck_assert_msg(strncmp(a, "HTTP/1.1 202", 12) == 0, "filing: \"%s\"", a);
        free(a);
        free(request);
        for (int i = 0; i < IDLE; i++)
                close(idle[i]);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("gateway_http");
        TCase *tc = tcase_create("gateway_http");
        tcase_add_checked_fixture(tc, start_gateway, stop_gateway);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, a_filing_behind_length_and_chunked_framing_is_refused);
        tcase_add_test(tc, a_filing_behind_two_content_lengths_is_refused);
        tcase_add_test(tc, a_filing_behind_a_spaced_header_name_is_refused);
        tcase_add_test(tc, idle_connections_from_one_address_leave_others_filing);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
