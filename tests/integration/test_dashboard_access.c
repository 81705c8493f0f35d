/*
 * Who may read the dashboard (consumer/dashboard/access.h, docs/dashboard.md
 * "Access"): every route but the probes and /metrics refuses a request
 * without a token (401, a page's answer the login page), with an unknown
 * token (401), with a token whose role may not read it (403), and any
 * request whose Host is not in dashboard.hosts (421); a token opens a
 * session whose cookie reads until it ends.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/http/auth.h"
#include "consumer/dashboard/dashboard.h"
#include "tests/support/check_text.h"
#include "tests/support/raw_http.h"
#include "tests/support/service_fixture.h"

#define ANALYST "analyst-token-of-the-test"
#define FIGURES "figures-token-of-the-test"

static struct service_fixture fx;
static avk_dashboard_t *db;
static int port;

static const char *const data_routes[] = {
    "/",
    "/index.html",
    "/app.js",
    "/style.css",
    "/favicon.svg",
    "/api/sammanstallning.json",
    "/api/forsenade.json",
    "/rapport/2027",
};
#define DATA_ROUTE_CNT (sizeof(data_routes) / sizeof(data_routes[0]))

static void start(const char *ttl_s)
{
        service_fixture_start(&fx, "avk-dashboard-access");
        char tokens[128], line[256], hex[AVK_AUTH_HEX_SIZE];
        snprintf(tokens, sizeof(tokens), "%s/tokens", fx.workdir);
        FILE *f = fopen(tokens, "w");
        ck_assert_ptr_nonnull(f);
        avk_auth_hash_hex(ANALYST, strlen(ANALYST), hex);
        snprintf(line, sizeof(line), "%s analyst patient-safety team\n", hex);
        fputs(line, f);
        avk_auth_hash_hex(FIGURES, strlen(FIGURES), hex);
        fprintf(f, "%s figures statistics feed\n", hex);
        fclose(f);
        mock_kafka_set(&fx.mk, "dashboard.listen", "127.0.0.1:0");
        mock_kafka_set(&fx.mk, "dashboard.tokens.file", tokens);
        mock_kafka_set(&fx.mk, "dashboard.session.ttl.s", ttl_s);
        char err[512];
        db = avk_dashboard_start(fx.mk.cfg, err, sizeof(err));
        ck_assert_msg(db != NULL, "%s", err);
        port = (int)avk_dashboard_port(db);
}

static void setup(void)
{
        start("60");
}

static void teardown(void)
{
        avk_dashboard_stop(db);
        service_fixture_stop(&fx);
}

/* The answer to method path with the extra header lines (each ending in
 * \r\n) and Host: host (none when NULL); free() it. */
static char *ask(const char *method, const char *path, const char *host, const char *extra)
{
        char request[1024], host_line[128] = "";
        if (host)
                snprintf(host_line, sizeof(host_line), "Host: %s\r\n", host);
        snprintf(request, sizeof(request), "%s %s HTTP/1.1\r\n%s%sConnection: close\r\n\r\n",
                 method, path, host_line, extra ? extra : "");
        int fd = raw_http_connect(NULL, port), closed;
        ck_assert_int_ge(fd, 0);
        char *answer = raw_http_exchange(fd, request, 5000, &closed);
        close(fd);
        ck_assert_ptr_nonnull(answer);
        return answer;
}

static char *get(const char *path, const char *extra)
{
        return ask("GET", path, "127.0.0.1", extra);
}

/* The status code of an answer. */
static int status_of(const char *answer)
{
        return strncmp(answer, "HTTP/1.1 ", 9) == 0 ? atoi(answer + 9) : -1;
}

static void expect(char *answer, int status, const char *path, const char *contains)
{
        ck_assert_msg(status_of(answer) == status, "%s: want %d, got: %.300s", path, status,
                      answer);
        if (contains)
                ck_assert_contains(answer, contains);
        free(answer);
}

START_TEST(no_token_is_refused_on_every_route_but_the_probes)
{
        for (size_t i = 0; i < DATA_ROUTE_CNT; i++) {
                char *a = get(data_routes[i], NULL);
                ck_assert_contains(a, "WWW-Authenticate: Bearer realm=\"avvik-dashboard\"");
                ck_assert_not_contains(a, "Set-Cookie");
                expect(a, 401, data_routes[i], NULL);
        }
        /* A page's 401 is the login page, under a CSP of its own. */
        char *a = get("/", NULL);
        ck_assert_contains(a, "<form id=\"inloggning\">");
        expect(a, 401, "/", "Content-Security-Policy: default-src 'none'; script-src 'sha256-");
        expect(get("/rapport/2027", NULL), 401, "/rapport/2027", "id=\"inloggning\"");
        expect(get("/api/forsenade.json", NULL), 401, "forsenade",
               "authentication required: Authorization: Bearer <token>");
        expect(ask("POST", "/api/session", "127.0.0.1", "Content-Length: 0\r\n"), 401,
               "POST /api/session", NULL);
        expect(get("/healthz", NULL), 200, "/healthz", NULL);
        expect(get("/metrics", NULL), 200, "/metrics", "avk_dashboard_requests_total");
        a = get("/readyz", NULL);
        ck_assert_int_ne(status_of(a), 401);
        free(a);
}
END_TEST

START_TEST(an_unknown_token_is_refused)
{
        static const char *const wrong[] = {
            "Authorization: Bearer not-a-token-of-this-dashboard\r\n",
            "Authorization: Bearer " ANALYST "x\r\n",
            "Authorization: Bearer \r\n",
            "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\r\n",
            /* A gateway-shaped party token is not a dashboard token either. */
            "Authorization: Bearer " FIGURES FIGURES "\r\n",
        };
        for (size_t w = 0; w < sizeof(wrong) / sizeof(wrong[0]); w++) {
                for (size_t i = 0; i < DATA_ROUTE_CNT; i++) {
                        char *a = get(data_routes[i], wrong[w]);
                        ck_assert_contains(a, "error=\"invalid_token\"");
                        expect(a, 401, data_routes[i], NULL);
                }
        }
        /* An unknown token is refused even with a valid session beside it. */
        char *a = ask("POST", "/api/session", "127.0.0.1",
                      "Authorization: Bearer " ANALYST "\r\nContent-Length: 0\r\n");
        char *cookie = strstr(a, "avk_session=");
        ck_assert_ptr_nonnull(cookie);
        char extra[256];
        snprintf(extra, sizeof(extra), "Cookie: %.*s\r\nAuthorization: Bearer wrong\r\n",
                 (int)strcspn(cookie, ";"), cookie);
        free(a);
        expect(get("/api/forsenade.json", extra), 401, "cookie and a wrong token", NULL);
}
END_TEST

START_TEST(a_role_reads_only_what_it_may)
{
        const char *figures = "Authorization: Bearer " FIGURES "\r\n";
        const char *analyst = "Authorization: Bearer " ANALYST "\r\n";
        for (size_t i = 0; i < DATA_ROUTE_CNT; i++) {
                int summary = strcmp(data_routes[i], "/api/sammanstallning.json") == 0;
                expect(get(data_routes[i], figures), summary ? 200 : 403, data_routes[i],
                       summary ? NULL : "forbidden: the role figures may not read");
                expect(get(data_routes[i], analyst), 200, data_routes[i], NULL);
        }
        expect(get("/api/forsenade.json", analyst), 200, "overdue", "\"items\"");
}
END_TEST

START_TEST(a_foreign_host_is_misdirected)
{
        static const char *const foreign[] = {"attacker.example",
                                              "attacker.example:8090",
                                              "127.0.0.1.attacker.example",
                                              "localhost.",
                                              "[::2]:8090",
                                              ""};
        const char *analyst = "Authorization: Bearer " ANALYST "\r\n";
        for (size_t h = 0; h < sizeof(foreign) / sizeof(foreign[0]); h++) {
                expect(ask("GET", "/api/forsenade.json", foreign[h], analyst), 421, foreign[h],
                       "host: not a name this server answers for (dashboard.hosts)");
                expect(ask("GET", "/healthz", foreign[h], NULL), 421, foreign[h], NULL);
        }
        char *a = ask("GET", "/", "attacker.example", analyst);
        ck_assert_not_contains(a, "attacker.example");
        expect(a, 421, "no echo", NULL);
        static const char *const loopback[] = {"localhost", "LOCALHOST:8090", "127.0.0.1:1",
                                               "[::1]:8090"};
        for (size_t h = 0; h < sizeof(loopback) / sizeof(loopback[0]); h++)
                expect(ask("GET", "/api/forsenade.json", loopback[h], analyst), 200, loopback[h],
                       NULL);
}
END_TEST

/* POST /api/session with token; the "avk_session=..." of its answer. */
static void open_session(const char *token, char *cookie, size_t size)
{
        char extra[256];
        snprintf(extra, sizeof(extra), "Authorization: Bearer %s\r\nContent-Length: 0\r\n", token);
        char *a = ask("POST", "/api/session", "127.0.0.1", extra);
        ck_assert_contains(a, "Set-Cookie: avk_session=");
        ck_assert_contains(a, "; Path=/; Max-Age=");
        ck_assert_contains(a, "; HttpOnly; SameSite=Strict\r\n"); /* no Secure over plain HTTP */
        const char *c = strstr(a, "avk_session=");
        snprintf(cookie, size, "%.*s", (int)strcspn(c, ";"), c);
        expect(a, 200, "POST /api/session", NULL);
}

START_TEST(a_session_reads_until_it_is_ended)
{
        char cookie[128], extra[256], other[128];
        open_session(ANALYST, cookie, sizeof(cookie));
        open_session(ANALYST, other, sizeof(other));
        ck_assert_str_ne(cookie, other);
        snprintf(extra, sizeof(extra), "Cookie: theme=dark; %s; lang=sv\r\n", cookie);
        for (size_t i = 0; i < DATA_ROUTE_CNT; i++)
                expect(get(data_routes[i], extra), 200, data_routes[i], NULL);
        /* A session does not open another one: the token is needed. */
        snprintf(extra, sizeof(extra), "Cookie: %s\r\nContent-Length: 0\r\n", cookie);
        expect(ask("POST", "/api/session", "127.0.0.1", extra), 401, "session from session", NULL);
        expect(ask("DELETE", "/api/session", "127.0.0.1", extra), 200, "DELETE /api/session",
               "Set-Cookie: avk_session=; Path=/; Max-Age=0");
        snprintf(extra, sizeof(extra), "Cookie: %s\r\n", cookie);
        expect(get("/api/forsenade.json", extra), 401, "ended session", "the session has ended");
        expect(get("/", extra), 401, "ended session's page", "id=\"inloggning\"");
        snprintf(extra, sizeof(extra), "Cookie: %s\r\n", other);
        expect(get("/api/forsenade.json", extra), 200, "the other session", NULL);
        expect(get("/api/forsenade.json", "Cookie: avk_session=made-up\r\n"), 401, "made up", NULL);
        /* A figures session keeps its role. */
        open_session(FIGURES, cookie, sizeof(cookie));
        snprintf(extra, sizeof(extra), "Cookie: %s\r\n", cookie);
        expect(get("/api/forsenade.json", extra), 403, "figures session", NULL);
        expect(get("/api/sammanstallning.json", extra), 200, "figures session", NULL);
}
END_TEST

START_TEST(a_session_ends_after_its_time)
{
        teardown();
        start("1");
        char cookie[128], extra[256];
        open_session(ANALYST, cookie, sizeof(cookie));
        snprintf(extra, sizeof(extra), "Cookie: %s\r\n", cookie);
        expect(get("/api/forsenade.json", extra), 200, "fresh session", NULL);
        usleep(1100 * 1000);
        expect(get("/api/forsenade.json", extra), 401, "expired session", "the session has ended");
}
END_TEST

static Suite *access_suite(void)
{
        Suite *s = suite_create("dashboard_access");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, no_token_is_refused_on_every_route_but_the_probes);
        tcase_add_test(tc, an_unknown_token_is_refused);
        tcase_add_test(tc, a_role_reads_only_what_it_may);
        tcase_add_test(tc, a_foreign_host_is_misdirected);
        tcase_add_test(tc, a_session_reads_until_it_is_ended);
        tcase_add_test(tc, a_session_ends_after_its_time);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(access_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
