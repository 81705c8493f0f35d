/*
 * A receiver that checks signatures as docs/notify.md tells it to (the test
 * receiver, tests/support/webhook_receiver.c) refuses a captured delivery
 * sent again after the tolerance, and one whose event type was changed;
 * it takes a fresh one. The requests are sent over HTTP with libcurl.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/http/webhook.h"
#include "tests/support/webhook_receiver.h"

#define KEY  "a-test-key-of-thirty-two-bytes-or-more-0123456789"
#define BODY "{\"event_id\":\"0c7f3b1e-5d2a-5e4f-8a1b-2c3d4e5f6a7b\"}"

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        (void)ptr;
        (void)userdata;
        return size * nmemb;
}

/* POSTs BODY signed at t for signed_type, sent as sent_type; returns the status. */
static long post(struct webhook_receiver *r, int64_t t, const char *signed_type,
                 const char *sent_type)
{
        char sig[AVK_WEBHOOK_SIGNATURE_SIZE], line[256];
        ck_assert_int_eq(avk_webhook_sign((const unsigned char *)KEY, strlen(KEY), t, signed_type,
                                          BODY, strlen(BODY), sig),
                         0);
        struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
        snprintf(line, sizeof(line), "X-Avvik-Event-Type: %s", sent_type);
        headers = curl_slist_append(headers, line);
        snprintf(line, sizeof(line), "X-Avvik-Signature: %s", sig);
        headers = curl_slist_append(headers, line);
        CURL *e = curl_easy_init();
        ck_assert_ptr_nonnull(e);
        curl_easy_setopt(e, CURLOPT_URL, webhook_receiver_url(r));
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, BODY);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
        ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(e);
        curl_slist_free_all(headers);
        return status;
}

START_TEST(a_replay_after_the_tolerance_or_another_event_type_is_refused)
{
        struct webhook_receiver *r = webhook_receiver_start(NULL, NULL);
        webhook_receiver_verify(r, KEY, strlen(KEY));
        int64_t now = time(NULL);
        ck_assert_int_eq(post(r, now, "DeviationRouted", "DeviationRouted"), 200);
        ck_assert_int_eq(
            post(r, now - AVK_WEBHOOK_TOLERANCE_S - 60, "DeviationRouted", "DeviationRouted"), 401);
        ck_assert_int_eq(post(r, now, "DeadlineReminder", "DeviationRouted"), 401);

        struct webhook_request req = webhook_receiver_request(r, 0);
        ck_assert_str_eq(req.refused, "");
        webhook_request_free(&req);
        req = webhook_receiver_request(r, 1);
        ck_assert_ptr_nonnull(strstr(req.refused, "s tolerated"));
        webhook_request_free(&req);
        req = webhook_receiver_request(r, 2);
        ck_assert_ptr_nonnull(strstr(req.refused, "no v1 matches"));
        webhook_request_free(&req);
        webhook_receiver_stop(r);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("webhook_replay");
        TCase *tc = tcase_create("receiver");
        tcase_add_test(tc, a_replay_after_the_tolerance_or_another_event_type_is_refused);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
