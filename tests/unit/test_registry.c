/*
 * Tests for avk_registry against the fake Schema Registry of
 * tests/support/fake_registry.h, served in-process on an ephemeral loopback
 * port. The fake speaks just enough of the Confluent API (register, fetch by
 * id, Confluent error bodies) and can be switched into failure modes, so each
 * test shows what a caller of the client gets back when the registry
 * misbehaves.
 */
#include "common/contract/registry.h"

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/check_text.h"
#include "tests/support/fake_registry.h"

#define CLIENT_TIMEOUT_MS 300L

static const char SCHEMA_A[] = "{\"type\":\"record\",\"name\":\"Deviation\",\"fields\":[{\"name\":"
                               "\"id\",\"type\":\"string\"}]}";
static const char SCHEMA_B[] = "{\"type\":\"record\",\"name\":\"Response\",\"fields\":[{\"name\":"
                               "\"text\",\"type\":\"string\"}]}";

static struct fake_registry *fake;

static void fake_start(void)
{
        fake = fake_registry_start_or_fail();
}

static void fake_stop(void)
{
        fake_registry_stop(fake);
        fake = NULL;
}

/* Stores a schema as if another producer had registered it; returns its id. */
static int32_t fake_add_schema(const char *schema)
{
        int32_t id = fake_registry_add_schema(fake, schema);
        ck_assert_int_ge(id, FAKE_REGISTRY_FIRST_ID);
        return id;
}

static struct fake_registry_seen fake_seen(void)
{
        return fake_registry_seen(fake);
}

static avk_registry_t *client_for(const char *url, const char *basic_auth, long timeout_ms)
{
        struct avk_registry_conf conf = {
            .url = url, .basic_auth = basic_auth, .timeout_ms = timeout_ms};
        char errstr[512] = "";
        avk_registry_t *reg = avk_registry_new(&conf, errstr, sizeof(errstr));
        ck_assert_msg(reg != NULL, "avk_registry_new(\"%s\"): %s", url, errstr);
        return reg;
}

static avk_registry_t *client(void)
{
        return client_for(fake_registry_url(fake), NULL, 0);
}

static double elapsed_ms(const struct timespec *since)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - since->tv_sec) * 1000.0 +
               (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

/* A port nothing listens on: bound once by us, then released. */
/* A port nothing listens on. */
static unsigned unused_port(void)
{
        unsigned port = fake_registry_unused_port();
        ck_assert_uint_ne(port, 0);
        return port;
}

START_TEST(test_register_returns_id_and_caches_it)
{
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id = -1, again = -1;

        ck_assert_msg(avk_registry_register(reg, "deviation.reported-value", SCHEMA_A, &id, errstr,
                                            sizeof(errstr)) == 0,
                      "%s", errstr);
        ck_assert_int_eq(id, FAKE_REGISTRY_FIRST_ID);
        struct fake_registry_seen seen = fake_seen();
        ck_assert_int_eq(seen.requests, 1);
        ck_assert_str_eq(seen.method, "POST");
        ck_assert_str_eq(seen.url, "/subjects/deviation.reported-value/versions");
        ck_assert_str_eq(seen.schema, SCHEMA_A);
        ck_assert_str_eq(seen.content_type, "application/vnd.schemaregistry.v1+json");
        ck_assert_contains(seen.accept, "application/vnd.schemaregistry.v1+json");

        ck_assert_msg(avk_registry_register(reg, "deviation.reported-value", SCHEMA_A, &again,
                                            errstr, sizeof(errstr)) == 0,
                      "%s", errstr);
        ck_assert_int_eq(again, FAKE_REGISTRY_FIRST_ID);
        ck_assert_int_eq(fake_seen().requests, 1);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_register_cache_is_keyed_by_subject_and_schema)
{
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id_b = -1, id_other_subject = -1;

        int32_t id_a = -1;
        ck_assert_msg(
            avk_registry_register(reg, "a-value", SCHEMA_A, &id_a, errstr, sizeof(errstr)) == 0,
            "%s", errstr);
        ck_assert_msg(
            avk_registry_register(reg, "a-value", SCHEMA_B, &id_b, errstr, sizeof(errstr)) == 0,
            "%s", errstr);
        ck_assert_int_eq(fake_seen().requests, 2);
        ck_assert_int_ne(id_a, id_b);
        ck_assert_msg(avk_registry_register(reg, "b-value", SCHEMA_A, &id_other_subject, errstr,
                                            sizeof(errstr)) == 0,
                      "%s", errstr);
        ck_assert_int_eq(fake_seen().requests, 3);
        ck_assert_str_eq(fake_seen().subject, "b-value");
        ck_assert_int_eq(id_other_subject, id_a);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_register_escapes_subject)
{
        /* Unescaped, '?' would start a query and '#' a fragment, and the path would
         * no longer end in /versions. */
        static const char subject[] = "deviation reported/v1?x=1#frag%20+\xc3\xa6\xc3\xb8";
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id = -1;

        ck_assert_msg(avk_registry_register(reg, subject, SCHEMA_A, &id, errstr, sizeof(errstr)) ==
                          0,
                      "%s", errstr);
        ck_assert_int_eq(id, FAKE_REGISTRY_FIRST_ID);
        ck_assert_str_eq(fake_seen().subject, subject);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_trailing_slash_is_stripped)
{
        char url[80];
        snprintf(url, sizeof(url), "%s/", fake_registry_url(fake));
        avk_registry_t *reg = client_for(url, NULL, 0);
        char errstr[512] = "";
        int32_t id = -1;

        ck_assert_msg(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)) == 0, "%s",
            errstr);
        ck_assert_str_eq(fake_seen().url, "/subjects/s-value/versions");

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_fetch_returns_schema_and_caches_it)
{
        int32_t id = fake_add_schema(SCHEMA_B);
        avk_registry_t *reg = client();
        char errstr[512] = "";
        const char *schema = NULL, *again = NULL;

        ck_assert_msg(avk_registry_fetch(reg, id, &schema, errstr, sizeof(errstr)) == 0, "%s",
                      errstr);
        ck_assert_str_eq(schema, SCHEMA_B);
        struct fake_registry_seen seen = fake_seen();
        ck_assert_int_eq(seen.requests, 1);
        ck_assert_str_eq(seen.method, "GET");
        ck_assert_contains(seen.accept, "application/vnd.schemaregistry.v1+json");

        ck_assert_msg(avk_registry_fetch(reg, id, &again, errstr, sizeof(errstr)) == 0, "%s",
                      errstr);
        ck_assert_ptr_eq(again, schema);
        ck_assert_int_eq(fake_seen().requests, 1);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_fetch_accepts_explicit_avro_type)
{
        int32_t id = fake_add_schema(SCHEMA_A);
        fake_registry_set_schema_type(fake, "AVRO");
        avk_registry_t *reg = client();
        char errstr[512] = "";
        const char *schema = NULL;

        ck_assert_msg(avk_registry_fetch(reg, id, &schema, errstr, sizeof(errstr)) == 0, "%s",
                      errstr);
        ck_assert_str_eq(schema, SCHEMA_A);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_fetch_rejects_protobuf)
{
        int32_t id = fake_add_schema("syntax = \"proto3\"; message M {}");
        fake_registry_set_schema_type(fake, "PROTOBUF");
        avk_registry_t *reg = client();
        char errstr[512] = "";
        const char *schema = NULL;

        ck_assert_int_eq(avk_registry_fetch(reg, id, &schema, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, "PROTOBUF");
        ck_assert_ptr_null(schema);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_fetch_unknown_id_names_error_code)
{
        avk_registry_t *reg = client();
        char errstr[512] = "";
        const char *schema = NULL;

        ck_assert_int_eq(avk_registry_fetch(reg, 42, &schema, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, "404");
        ck_assert_contains(errstr, "40403");
        ck_assert_contains(errstr, "not found");
        ck_assert_contains(errstr, "schema id 42");
        ck_assert_ptr_null(schema);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_server_error_names_status)
{
        fake_registry_set_mode(fake, FAKE_REGISTRY_FAIL_500);
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id = -1;

        ck_assert_int_eq(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)),
            AVK_REGISTRY_UNAVAILABLE);
        ck_assert_contains(errstr, "500");
        ck_assert_contains(errstr, "50001");
        ck_assert_contains(errstr, "backend datastore");
        ck_assert_contains(errstr, "s-value");

        /* A failure is not cached: the registry is asked again once it recovers. */
        fake_registry_set_mode(fake, FAKE_REGISTRY_NORMAL);
        ck_assert_msg(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)) == 0, "%s",
            errstr);
        ck_assert_int_eq(id, FAKE_REGISTRY_FIRST_ID);
        ck_assert_int_eq(fake_seen().requests, 2);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_garbage_body_is_not_json)
{
        fake_registry_set_mode(fake, FAKE_REGISTRY_GARBAGE);
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id = -1;
        const char *schema = NULL;

        ck_assert_int_eq(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)),
            AVK_REGISTRY_UNAVAILABLE);
        ck_assert_contains(errstr, "200");
        ck_assert_contains(errstr, "not JSON");

        errstr[0] = '\0';
        ck_assert_int_eq(avk_registry_fetch(reg, 7, &schema, errstr, sizeof(errstr)),
                         AVK_REGISTRY_UNAVAILABLE);
        ck_assert_contains(errstr, "not JSON");
        ck_assert_contains(errstr, "schema id 7");

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_answer_without_id_is_malformed)
{
        fake_registry_set_mode(fake, FAKE_REGISTRY_NO_ID);
        avk_registry_t *reg = client();
        char errstr[512] = "";
        int32_t id = -1;

        ck_assert_int_eq(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)),
            AVK_REGISTRY_UNAVAILABLE);
        ck_assert_contains(errstr, "200");
        ck_assert_contains(errstr, "malformed");
        ck_assert_int_eq(id, -1);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_oversized_answer_is_refused)
{
        static const enum fake_registry_mode modes[] = {FAKE_REGISTRY_HUGE,
                                                        FAKE_REGISTRY_HUGE_CHUNKED};
        avk_registry_t *reg = client();
        char errstr[512] = "";
        const char *schema = NULL;

        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                fake_registry_set_mode(fake, modes[i]);
                errstr[0] = '\0';
                ck_assert_int_eq(avk_registry_fetch(reg, 1, &schema, errstr, sizeof(errstr)),
                                 AVK_REGISTRY_UNAVAILABLE);
                ck_assert_contains(errstr, "4 MiB");
        }

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_hanging_registry_times_out)
{
        fake_registry_set_mode(fake, FAKE_REGISTRY_HANG);
        avk_registry_t *reg = client_for(fake_registry_url(fake), NULL, CLIENT_TIMEOUT_MS);
        char errstr[512] = "";
        int32_t id = -1;
        struct timespec start;

        clock_gettime(CLOCK_MONOTONIC, &start);
        ck_assert_int_eq(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)),
            AVK_REGISTRY_UNAVAILABLE);
        double took = elapsed_ms(&start);
        ck_assert_msg(took < 1000.0, "register took %.0f ms against a %ld ms timeout", took,
                      CLIENT_TIMEOUT_MS);
        ck_assert_contains(errstr, "timeout");
        ck_assert_contains(errstr, "300 ms");

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_basic_auth_is_sent)
{
        avk_registry_t *reg = client_for(fake_registry_url(fake), "user:secret", 0);
        char errstr[512] = "";
        int32_t id = -1;

        ck_assert_msg(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)) == 0, "%s",
            errstr);
        /* base64("user:secret") */
        ck_assert_str_eq(fake_seen().authorization, "Basic dXNlcjpzZWNyZXQ=");
        avk_registry_destroy(reg);

        reg = client();
        ck_assert_msg(
            avk_registry_register(reg, "t-value", SCHEMA_A, &id, errstr, sizeof(errstr)) == 0, "%s",
            errstr);
        ck_assert_str_eq(fake_seen().authorization, "");
        avk_registry_destroy(reg);
}
END_TEST

struct register_thread {
        avk_registry_t *reg;
        int32_t id;
        int ret;
        char errstr[256];
};

static void *register_in_thread(void *arg)
{
        struct register_thread *t = arg;
        t->ret = avk_registry_register(t->reg, "shared-value", SCHEMA_A, &t->id, t->errstr,
                                       sizeof(t->errstr));
        return NULL;
}

START_TEST(test_threads_share_one_registration)
{
        enum { THREADS = 8 };
        struct register_thread threads[THREADS];
        pthread_t tids[THREADS];
        avk_registry_t *reg = client();

        for (int i = 0; i < THREADS; i++) {
                threads[i] = (struct register_thread){.reg = reg, .id = -1, .ret = -2};
                ck_assert_int_eq(pthread_create(&tids[i], NULL, register_in_thread, &threads[i]),
                                 0);
        }
        for (int i = 0; i < THREADS; i++)
                pthread_join(tids[i], NULL);
        for (int i = 0; i < THREADS; i++) {
                ck_assert_msg(threads[i].ret == 0, "thread %d: %s", i, threads[i].errstr);
                ck_assert_int_eq(threads[i].id, FAKE_REGISTRY_FIRST_ID);
        }
        /* The lock is held across the request, so the first thread's answer is cached
         * before any other thread looks. */
        ck_assert_int_eq(fake_seen().requests, 1);

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_unreachable_registry_names_url)
{
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u", unused_port());
        avk_registry_t *reg = client_for(url, NULL, 2000);
        char errstr[512] = "";
        int32_t id = -1;
        const char *schema = NULL;

        ck_assert_int_eq(
            avk_registry_register(reg, "s-value", SCHEMA_A, &id, errstr, sizeof(errstr)),
            AVK_REGISTRY_UNAVAILABLE);
        ck_assert_contains(errstr, url);
        ck_assert_contains(errstr, "connect");

        errstr[0] = '\0';
        ck_assert_int_eq(avk_registry_fetch(reg, 1, &schema, errstr, sizeof(errstr)),
                         AVK_REGISTRY_UNAVAILABLE);
        ck_assert_contains(errstr, url);
        ck_assert_contains(errstr, "connect");

        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_bad_urls_are_rejected)
{
        static const char *const urls[] = {"ftp://x", "", "localhost:8081", "http://",
                                           "https:///subjects"};
        char errstr[512];

        for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
                struct avk_registry_conf conf = {.url = urls[i]};
                errstr[0] = '\0';
                avk_registry_t *reg = avk_registry_new(&conf, errstr, sizeof(errstr));
                ck_assert_msg(reg == NULL, "\"%s\" was accepted", urls[i]);
                ck_assert_contains(errstr, "schema registry url");
        }

        struct avk_registry_conf no_url = {.url = NULL};
        errstr[0] = '\0';
        ck_assert_ptr_null(avk_registry_new(&no_url, errstr, sizeof(errstr)));
        ck_assert_contains(errstr, "empty");

        struct avk_registry_conf negative = {.url = "http://localhost:8081", .timeout_ms = -1};
        errstr[0] = '\0';
        ck_assert_ptr_null(avk_registry_new(&negative, errstr, sizeof(errstr)));
        ck_assert_contains(errstr, "timeout");
}
END_TEST

START_TEST(test_https_url_is_accepted)
{
        struct avk_registry_conf conf = {.url = "https://registry.example:8081/",
                                         .ca_location = "/etc/ssl/certs/ca-certificates.crt"};
        char errstr[512] = "";
        avk_registry_t *reg = avk_registry_new(&conf, errstr, sizeof(errstr));
        ck_assert_msg(reg != NULL, "%s", errstr);
        avk_registry_destroy(reg);
}
END_TEST

/* The stand-in for a registry that is taken away and brought back
 * (avk_test_registry, tests/cli/chaos.sh): on the same port and kept file it
 * answers the ids it gave before, to a client that never saw them. */
START_TEST(test_restarted_fake_keeps_ids)
{
        char dir[] = "/tmp/avk-registry-XXXXXX", path[64], errstr[512] = "";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/ids", dir);
        struct fake_registry *first =
            fake_registry_start_on(FAKE_REGISTRY_NORMAL, 0, errstr, sizeof(errstr));
        ck_assert_msg(first != NULL, "%s", errstr);
        ck_assert_msg(fake_registry_keep_in(first, path, errstr, sizeof(errstr)) == 0, "%s",
                      errstr);
        avk_registry_t *reg = client_for(fake_registry_url(first), NULL, 0);
        int32_t id_a = 0, id_b = 0, again = 0, id_new = 0;
        ck_assert_int_eq(
            avk_registry_register(reg, "a-value", SCHEMA_A, &id_a, errstr, sizeof(errstr)), 0);
        ck_assert_int_eq(
            avk_registry_register(reg, "b-value", SCHEMA_B, &id_b, errstr, sizeof(errstr)), 0);
        avk_registry_destroy(reg);
        unsigned port = (unsigned)atoi(strrchr(fake_registry_url(first), ':') + 1);
        fake_registry_stop(first);

        struct fake_registry *second =
            fake_registry_start_on(FAKE_REGISTRY_NORMAL, port, errstr, sizeof(errstr));
        ck_assert_msg(second != NULL, "%s", errstr);
        ck_assert_msg(fake_registry_keep_in(second, path, errstr, sizeof(errstr)) == 0, "%s",
                      errstr);
        reg = client_for(fake_registry_url(second), NULL, 0);
        const char *schema = NULL;
        ck_assert_msg(avk_registry_fetch(reg, id_b, &schema, errstr, sizeof(errstr)) == 0, "%s",
                      errstr);
        ck_assert_str_eq(schema, SCHEMA_B);
        ck_assert_int_eq(
            avk_registry_register(reg, "a-value", SCHEMA_A, &again, errstr, sizeof(errstr)), 0);
        ck_assert_int_eq(again, id_a);
        ck_assert_int_eq(
            avk_registry_register(reg, "c-value", "\"string\"", &id_new, errstr, sizeof(errstr)),
            0);
        ck_assert_int_eq(id_new, id_b + 1);
        avk_registry_destroy(reg);
        fake_registry_stop(second);
        unlink(path);
        rmdir(dir);
}
END_TEST

static Suite *registry_suite(void)
{
        Suite *suite = suite_create("registry");

        TCase *with_fake = tcase_create("with_fake");
        tcase_add_checked_fixture(with_fake, fake_start, fake_stop);
        tcase_add_test(with_fake, test_register_returns_id_and_caches_it);
        tcase_add_test(with_fake, test_register_cache_is_keyed_by_subject_and_schema);
        tcase_add_test(with_fake, test_register_escapes_subject);
        tcase_add_test(with_fake, test_trailing_slash_is_stripped);
        tcase_add_test(with_fake, test_fetch_returns_schema_and_caches_it);
        tcase_add_test(with_fake, test_fetch_accepts_explicit_avro_type);
        tcase_add_test(with_fake, test_fetch_rejects_protobuf);
        tcase_add_test(with_fake, test_fetch_unknown_id_names_error_code);
        tcase_add_test(with_fake, test_server_error_names_status);
        tcase_add_test(with_fake, test_garbage_body_is_not_json);
        tcase_add_test(with_fake, test_answer_without_id_is_malformed);
        tcase_add_test(with_fake, test_oversized_answer_is_refused);
        tcase_add_test(with_fake, test_hanging_registry_times_out);
        tcase_add_test(with_fake, test_basic_auth_is_sent);
        tcase_add_test(with_fake, test_threads_share_one_registration);
        suite_add_tcase(suite, with_fake);

        TCase *without_fake = tcase_create("without_fake");
        tcase_add_test(without_fake, test_unreachable_registry_names_url);
        tcase_add_test(without_fake, test_restarted_fake_keeps_ids);
        tcase_add_test(without_fake, test_bad_urls_are_rejected);
        tcase_add_test(without_fake, test_https_url_is_accepted);
        suite_add_tcase(suite, without_fake);

        return suite;
}

int main(void)
{
        SRunner *runner = srunner_create(registry_suite());
        srunner_run_all(runner, CK_NORMAL);
        int failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
