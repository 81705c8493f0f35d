/*
 * Unit tests for the avk_ident validators of names that delivery uses:
 * parties ("VGR" or a municipality code), Kafka topic names and webhook
 * URLs, with the exact sentences an operator reads. A URL is never repeated
 * in its error: it may carry a token.
 */
#include "common/contract/ident.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static char err[256];

START_TEST(party_is_vgr_or_a_municipality_code)
{
        ck_assert_int_eq(avk_ident_party("VGR", err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_party("1480", err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_party("vgr", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "party must be \"VGR\" or a municipality code (municipality code "
                              "must be 4 digits, got 3 characters)");
        ck_assert_int_eq(avk_ident_party("0180", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "party must be \"VGR\" or a municipality code ('0180' is not one of "
                              "the 49 municipalities in Västra Götaland)");
        ck_assert_int_eq(avk_ident_party(NULL, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "party is missing");
}
END_TEST

START_TEST(kafka_topic_takes_the_brokers_characters_up_to_249)
{
        char longest[251];

        ck_assert_int_eq(avk_ident_kafka_topic("avvik.inbox.1480", err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_kafka_topic("a_b-C.9", err, sizeof(err)), 0);
        memset(longest, 'a', 249);
        longest[249] = '\0';
        ck_assert_int_eq(avk_ident_kafka_topic(longest, err, sizeof(err)), 0);
        longest[249] = 'a';
        longest[250] = '\0';
        ck_assert_int_eq(avk_ident_kafka_topic(longest, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "topic name is 250 characters, at most 249");
        ck_assert_int_eq(avk_ident_kafka_topic("avvik/inbox", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "topic name character 6 is '/', expected [a-zA-Z0-9._-]");
        ck_assert_int_eq(avk_ident_kafka_topic("avvik.inbox.göteborg", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "topic name character 14 is byte 0xC3, expected [a-zA-Z0-9._-]");
        ck_assert_int_eq(avk_ident_kafka_topic("..", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "topic name cannot be \".\" or \"..\"");
        ck_assert_int_eq(avk_ident_kafka_topic("", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "topic name is empty");
}
END_TEST

START_TEST(url_is_https_unless_http_is_allowed)
{
        ck_assert_int_eq(avk_ident_http_url("https://hooks.example/a?b=c", 0, err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_http_url("http://localhost:8080/hook", 1, err, sizeof(err)), 0);
        ck_assert_int_eq(avk_ident_http_url("http://localhost:8080/hook", 0, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "URL uses http://, https:// is required");
        ck_assert_int_eq(avk_ident_http_url("ftp://hooks.example/", 1, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "URL must start with https:// or http://");
        ck_assert_int_eq(avk_ident_http_url("https:///path", 0, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "URL has no host");
        ck_assert_int_eq(avk_ident_http_url("https://hooks.example/a b", 0, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "URL character 24 is a space or control character");
}
END_TEST

START_TEST(url_errors_never_repeat_the_url)
{
        ck_assert_int_eq(
            avk_ident_http_url("https://user:t0ken@hooks.example/", 0, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "URL holds credentials before the host; they belong in a secret");
        ck_assert_int_eq(
            avk_ident_http_url("http://hooks.example/?token=t0ken", 0, err, sizeof(err)), -1);
        ck_assert_ptr_null(strstr(err, "t0ken"));
        /* An '@' after the host is part of a path, not credentials. */
        ck_assert_int_eq(avk_ident_http_url("https://hooks.example/a@b", 0, err, sizeof(err)), 0);
}
END_TEST

static Suite *ident_names_suite(void)
{
        Suite *s = suite_create("ident_names");
        TCase *tc = tcase_create("names");

        tcase_add_test(tc, party_is_vgr_or_a_municipality_code);
        tcase_add_test(tc, kafka_topic_takes_the_brokers_characters_up_to_249);
        tcase_add_test(tc, url_is_https_unless_http_is_allowed);
        tcase_add_test(tc, url_errors_never_repeat_the_url);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(ident_names_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
