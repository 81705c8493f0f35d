/*
 * The notifier's pure parts: the webhook body (and what it leaves out for an
 * endpoint not cleared for patient identity), and the parts it shares with
 * the analysis sink (common/http/webhook.h): the HMAC-SHA256 signature over
 * time, event type and body and its verification, the
 * backoff schedule and what an attempt's result means.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "consumer/notify/notify.h"
#include "common/http/webhook.h"
#include "common/util/secret.h"
#include "tests/support/check_text.h"
#include "tests/support/test_data.h"

static json_t *routed(void)
{
        json_error_t jerr;
        json_t *r = json_loads(
            "{\"event_id\":\"0c7f3b1e-5d2a-5e4f-8a1b-2c3d4e5f6a7b\","
            "\"deviation_id\":\"3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10\","
            "\"routed_at\":\"2026-11-20T13:05:00.000Z\",\"hop\":0,\"reporter_party\":\"1480\","
            "\"receiver_party\":\"VGR\",\"receiver_unit_hsa_id\":null,"
            "\"decision\":\"AGREEMENT_RULE\",\"rule_id\":\"R-REGION-PHYSICIAN\","
            "\"reason\":\"Physicians are the region's.\",\"category\":\"MEDICATION\","
            "\"harm_level\":\"LOW\",\"possible_lex_maria\":false}",
            0, &jerr);
        ck_assert_msg(r != NULL, "%s", jerr.text);
        return r;
}

static json_t *deviation(void)
{
        char err[512];
        json_t *d = test_data_load_json(AVK_SOURCE_DIR
                                        "/deploy/samples/01-discharge-information-missing.json",
                                        err, sizeof(err));
        ck_assert_msg(d != NULL, "%s", err);
        json_object_set_new(d, "patient",
                            json_pack("{s:s,s:s,s:s}", "personal_id", "191212121212", "age_group",
                                      "AGE_80_PLUS", "sex", "FEMALE"));
        return d;
}

START_TEST(body_is_the_routed_event_with_the_deviation)
{
        json_t *r = routed(), *d = deviation();
        json_t *body = avk_notify_body(r, d, 1);
        ck_assert_ptr_nonnull(body);
        const char *key;
        json_t *value;
        json_object_foreach(r, key, value)
        {
                ck_assert_msg(json_equal(json_object_get(body, key), value), "%s differs", key);
        }
        ck_assert(json_equal(json_object_get(body, "deviation"), d));
        ck_assert_str_eq(
            json_string_value(json_object_get(
                json_object_get(json_object_get(body, "deviation"), "patient"), "personal_id")),
            "191212121212");
        ck_assert_uint_eq(json_object_size(body), json_object_size(r) + 1);
        json_decref(body);
        json_decref(r);
        json_decref(d);
}
END_TEST

START_TEST(identity_is_left_out_for_an_endpoint_not_cleared_for_it)
{
        json_t *r = routed(), *d = deviation();
        json_t *body = avk_notify_body(r, d, 0);
        ck_assert_ptr_nonnull(body);
        json_t *patient = json_object_get(json_object_get(body, "deviation"), "patient");
        ck_assert_ptr_null(json_object_get(patient, "personal_id"));
        ck_assert_str_eq(json_string_value(json_object_get(patient, "age_group")), "AGE_80_PLUS");
        ck_assert_str_eq(json_string_value(json_object_get(patient, "sex")), "FEMALE");
        char *text = json_dumps(body, JSON_COMPACT);
        ck_assert_ptr_null(strstr(text, "191212121212"));
        free(text);
        /* The inputs are untouched: the next endpoint may be cleared. */
        ck_assert_ptr_nonnull(json_object_get(json_object_get(d, "patient"), "personal_id"));
        json_decref(body);
        json_decref(r);
        json_decref(d);
}
END_TEST

START_TEST(free_text_is_scrubbed_for_an_endpoint_not_cleared_for_it)
{
        json_t *r = routed(), *d = deviation();
        json_object_set_new(d, "description",
                            json_string("Pat 19121212-1212 (tel 070-123 45 67) fick fel dos."));
        json_object_set_new(d, "immediate_actions", json_string("Ringde anhörig, a@b.se."));
        json_t *body = avk_notify_body(r, d, 0);
        ck_assert_ptr_nonnull(body);
        json_t *dev = json_object_get(body, "deviation");
        const char *description = json_string_value(json_object_get(dev, "description"));
        ck_assert_ptr_null(strstr(description, "1212-1212"));
        ck_assert_ptr_null(strstr(description, "123 45 67"));
        ck_assert_ptr_nonnull(strstr(description, "fick fel dos."));
        ck_assert_ptr_null(
            strstr(json_string_value(json_object_get(dev, "immediate_actions")), "a@b.se"));
        json_decref(body);
        /* A cleared endpoint gets the text as filed. */
        body = avk_notify_body(r, d, 1);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(body, "deviation"), "description")),
            "Pat 19121212-1212 (tel 070-123 45 67) fick fel dos.");
        json_decref(body);
        json_decref(r);
        json_decref(d);
}
END_TEST

START_TEST(feedback_free_text_is_scrubbed_for_an_endpoint_not_cleared_for_it)
{
        json_t *fb = json_pack("{s:s, s:s, s:s, s:s, s:s}", "event_id",
                               "9d3a6e21-47c8-5b1f-a2e4-6c0b8f7d1e35", "kind", "ANSWERED",
                               "analysis", "Pat 19121212-1212 fick fel dos.", "action_plan",
                               "Ring 070-123 45 67 vid oklarhet.", "reason", "Skriv till a@b.se.");
        json_t *body = avk_notify_feedback_body(fb, 0);
        ck_assert_ptr_nonnull(body);
        const char *analysis = json_string_value(json_object_get(body, "analysis"));
        ck_assert_ptr_null(strstr(analysis, "1212-1212"));
        ck_assert_ptr_nonnull(strstr(analysis, "fick fel dos."));
        ck_assert_ptr_null(
            strstr(json_string_value(json_object_get(body, "action_plan")), "123 45 67"));
        ck_assert_ptr_null(strstr(json_string_value(json_object_get(body, "reason")), "a@b.se"));
        ck_assert_str_eq(json_string_value(json_object_get(body, "kind")), "ANSWERED");
        json_decref(body);
        /* A cleared endpoint gets the text as written; the record is untouched. */
        body = avk_notify_feedback_body(fb, 1);
        ck_assert(json_equal(body, fb));
        ck_assert_str_eq(json_string_value(json_object_get(fb, "analysis")),
                         "Pat 19121212-1212 fick fel dos.");
        json_decref(body);
        json_decref(fb);
}
END_TEST

START_TEST(no_patient_is_no_problem)
{
        json_t *r = routed(), *d = deviation();
        json_object_set_new(d, "patient", json_null());
        json_t *body = avk_notify_body(r, d, 0);
        ck_assert(json_is_null(json_object_get(json_object_get(body, "deviation"), "patient")));
        json_decref(body);
        json_decref(r);
        json_decref(d);
}
END_TEST

/* RFC 4231, section 4: HMAC-SHA-256 test cases 1 and 2, the message in parts. */
START_TEST(hmac_of_parts_matches_rfc_4231)
{
        char hex[AVK_SECRET_HEX_SIZE];
        unsigned char key1[20];
        memset(key1, 0x0b, sizeof(key1));
        struct iovec hi[] = {{"Hi", 2}, {" ", 1}, {"There", 5}};
        ck_assert_int_eq(avk_secret_hmac_hexv(key1, sizeof(key1), hi, 3, hex), 0);
        ck_assert_str_eq(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
        const char *data = "what do ya want for nothing?";
        ck_assert_int_eq(
            avk_secret_hmac_hex((const unsigned char *)"Jefe", 4, data, strlen(data), hex), 0);
        ck_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
END_TEST

static char *test_secret(size_t *len)
{
        char err[512], path[512];
        char *secret = test_data_read(
            test_data_path("directory/secrets/test-webhook.secret", path, sizeof(path)), err,
            sizeof(err));
        ck_assert_msg(secret != NULL, "%s", err);
        *len = strcspn(secret, "\n");
        return secret;
}

/* The signature as a receiver would recompute it, with OpenSSL's EVP_MAC,
 * over "<t>.<event type>.<body>". */
START_TEST(signature_matches_a_recomputation_over_time_type_and_body)
{
        size_t secret_len;
        char *secret = test_secret(&secret_len);
        json_t *r = routed(), *d = deviation();
        json_t *body = avk_notify_body(r, d, 0);
        char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
        char sig[AVK_WEBHOOK_SIGNATURE_SIZE];
        ck_assert_int_eq(avk_webhook_sign((unsigned char *)secret, secret_len, 1795179901,
                                          "DeviationRouted", text, strlen(text), sig),
                         0);

        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                               OSSL_PARAM_construct_end()};
        unsigned char out[32];
        size_t out_len = 0;
        const char *prefix = "1795179901.DeviationRouted.";
        ck_assert_int_eq(EVP_MAC_init(ctx, (unsigned char *)secret, secret_len, params), 1);
        ck_assert_int_eq(EVP_MAC_update(ctx, (const unsigned char *)prefix, strlen(prefix)), 1);
        ck_assert_int_eq(EVP_MAC_update(ctx, (unsigned char *)text, strlen(text)), 1);
        ck_assert_int_eq(EVP_MAC_final(ctx, out, &out_len, sizeof(out)), 1);
        char expected[AVK_WEBHOOK_SIGNATURE_SIZE] = "t=1795179901,v1=";
        for (size_t i = 0; i < out_len; i++)
                snprintf(expected + 16 + 2 * i, 3, "%02x", out[i]);
        ck_assert_str_eq(sig, expected);

        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
        free(text);
        free(secret);
        json_decref(body);
        json_decref(r);
        json_decref(d);
}
END_TEST

/* A captured delivery: nothing of it can be changed, and it expires. */
START_TEST(verification_refuses_a_changed_time_type_or_body_and_an_old_time)
{
        size_t len;
        char *secret = test_secret(&len);
        const unsigned char *key = (unsigned char *)secret;
        const char *body = "{\"event_id\":\"0c7f3b1e-5d2a-5e4f-8a1b-2c3d4e5f6a7b\"}";
        const int64_t t = 1795179901, tol = AVK_WEBHOOK_TOLERANCE_S;
        char sig[AVK_WEBHOOK_SIGNATURE_SIZE], err[256], forged[2 * AVK_WEBHOOK_SIGNATURE_SIZE];
        ck_assert_int_eq(avk_webhook_sign(key, len, t, "DeviationRouted", body, strlen(body), sig),
                         0);
        ck_assert_msg(avk_webhook_verify(key, len, sig, "DeviationRouted", body, strlen(body),
                                         t + tol, tol, err, sizeof(err)) == 0,
                      "%s", err);
        /* Another event type: a reminder's signature does not pass as a routed event's. */
        ck_assert_int_eq(avk_webhook_verify(key, len, sig, "DeviationEscalated", body, strlen(body),
                                            t, tol, err, sizeof(err)),
                         -1);
        ck_assert_str_eq(err, "X-Avvik-Signature: no v1 matches the time, event type and body "
                              "under the key");
        /* The body changed by one byte. */
        ck_assert_int_eq(avk_webhook_verify(key, len, sig, "DeviationRouted", body,
                                            strlen(body) - 1, t, tol, err, sizeof(err)),
                         -1);
        /* The time moved forward to pass the tolerance, the v1 kept. */
        snprintf(forged, sizeof(forged), "t=%lld,%s", (long long)t + 3600, strchr(sig, ',') + 1);
        ck_assert_int_eq(avk_webhook_verify(key, len, forged, "DeviationRouted", body, strlen(body),
                                            t + 3600, tol, err, sizeof(err)),
                         -1);
        ck_assert_contains(err, "no v1 matches");
        /* Replayed later than the tolerance, and a time from the future. */
        ck_assert_int_eq(avk_webhook_verify(key, len, sig, "DeviationRouted", body, strlen(body),
                                            t + tol + 1, tol, err, sizeof(err)),
                         -1);
        ck_assert_str_eq(err, "X-Avvik-Signature: t=1795179901 is 301 s from now, more than the "
                              "300 s tolerated");
        ck_assert_int_eq(avk_webhook_verify(key, len, sig, "DeviationRouted", body, strlen(body),
                                            t - tol - 1, tol, err, sizeof(err)),
                         -1);
        /* The old scheme, and headers that are not one. */
        static const char *const malformed[] = {
            "sha256=5f0e", "", "t=,v1=00", "v1=abc", "t=1795179901", "t=-5,v1=00", "t=17x,v1=00"};
        for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
                ck_assert_int_eq(avk_webhook_verify(key, len, malformed[i], "DeviationRouted", body,
                                                    strlen(body), t, tol, err, sizeof(err)),
                                 -1);
                ck_assert_str_eq(err, "X-Avvik-Signature: expected t=<unix seconds>,v1=<64 hex "
                                      "digits>");
        }
        /* A second v1 (a key being rotated) does not hide the right one. */
        snprintf(forged, sizeof(forged), "t=%lld,v1=%064d,%s", (long long)t, 0,
                 strchr(sig, ',') + 1);
        ck_assert_int_eq(avk_webhook_verify(key, len, forged, "DeviationRouted", body, strlen(body),
                                            t, tol, err, sizeof(err)),
                         0);
        free(secret);
}
END_TEST

START_TEST(backoff_is_a_full_jitter_draw_below_a_capped_doubling)
{
        const int64_t base = 1000, max = 300000;
        uint64_t state = 42;
        for (int attempts = 1; attempts <= 40; attempts++) {
                int64_t cap = base;
                for (int i = 1; i < attempts && cap < max; i++)
                        cap *= 2;
                if (cap > max)
                        cap = max;
                int64_t lo = INT64_MAX, hi = -1;
                for (int i = 0; i < 2000; i++) {
                        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
                        int64_t w = avk_webhook_backoff_ms(attempts, base, max, state);
                        ck_assert_int_ge(w, 0);
                        ck_assert_int_le(w, cap);
                        lo = w < lo ? w : lo;
                        hi = w > hi ? w : hi;
                }
                /* Spread over the whole range, not a fixed delay. */
                ck_assert_int_lt(lo, cap / 10 + 1);
                ck_assert_int_gt(hi, cap - cap / 10 - 1);
        }
        /* The bounds themselves, from the extreme draws. */
        ck_assert_int_eq(avk_webhook_backoff_ms(1, base, max, 0), 0);
        ck_assert_int_eq(avk_webhook_backoff_ms(1, base, max, 1000), 1000);
        ck_assert_int_eq(avk_webhook_backoff_ms(3, base, max, 4000), 4000);
        ck_assert_int_eq(avk_webhook_backoff_ms(3, base, max, 4001), 0);
        ck_assert_int_eq(avk_webhook_backoff_ms(1000, base, max, (uint64_t)max), max);
        ck_assert_int_le(avk_webhook_backoff_ms(1000, INT64_MAX / 4, INT64_MAX, UINT64_MAX),
                         INT64_MAX);
}
END_TEST

START_TEST(only_failures_that_may_pass_are_retried)
{
        static const struct {
                int curl_code;
                long status;
                enum avk_webhook_verdict verdict;
        } cases[] = {
            {CURLE_OK, 200, AVK_WEBHOOK_DELIVERED},
            {CURLE_OK, 202, AVK_WEBHOOK_DELIVERED},
            {CURLE_OK, 204, AVK_WEBHOOK_DELIVERED},
            {CURLE_OK, 500, AVK_WEBHOOK_RETRY},
            {CURLE_OK, 502, AVK_WEBHOOK_RETRY},
            {CURLE_OK, 503, AVK_WEBHOOK_RETRY},
            {CURLE_OK, 408, AVK_WEBHOOK_RETRY},
            {CURLE_OK, 429, AVK_WEBHOOK_RETRY},
            {CURLE_OK, 400, AVK_WEBHOOK_PERMANENT},
            {CURLE_OK, 401, AVK_WEBHOOK_PERMANENT},
            {CURLE_OK, 404, AVK_WEBHOOK_PERMANENT},
            {CURLE_OK, 413, AVK_WEBHOOK_PERMANENT},
            {CURLE_OK, 301, AVK_WEBHOOK_PERMANENT},
            {CURLE_OPERATION_TIMEDOUT, 0, AVK_WEBHOOK_RETRY},
            {CURLE_COULDNT_CONNECT, 0, AVK_WEBHOOK_RETRY},
            {CURLE_PEER_FAILED_VERIFICATION, 0, AVK_WEBHOOK_RETRY},
            {CURLE_SSL_CONNECT_ERROR, 0, AVK_WEBHOOK_RETRY},
            {CURLE_RECV_ERROR, 0, AVK_WEBHOOK_RETRY},
            {CURLE_UNSUPPORTED_PROTOCOL, 0, AVK_WEBHOOK_PERMANENT},
            {CURLE_URL_MALFORMAT, 0, AVK_WEBHOOK_PERMANENT},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                ck_assert_msg(avk_webhook_classify(cases[i].curl_code, cases[i].status) ==
                                  cases[i].verdict,
                              "curl %d, HTTP %ld", cases[i].curl_code, cases[i].status);
}
END_TEST

static Suite *notify_body_suite(void)
{
        Suite *s = suite_create("notify_body");
        TCase *tc = tcase_create("pure");
        tcase_add_test(tc, body_is_the_routed_event_with_the_deviation);
        tcase_add_test(tc, identity_is_left_out_for_an_endpoint_not_cleared_for_it);
        tcase_add_test(tc, free_text_is_scrubbed_for_an_endpoint_not_cleared_for_it);
        tcase_add_test(tc, no_patient_is_no_problem);
        tcase_add_test(tc, feedback_free_text_is_scrubbed_for_an_endpoint_not_cleared_for_it);
        tcase_add_test(tc, hmac_of_parts_matches_rfc_4231);
        tcase_add_test(tc, signature_matches_a_recomputation_over_time_type_and_body);
        tcase_add_test(tc, verification_refuses_a_changed_time_type_or_body_and_an_old_time);
        tcase_add_test(tc, backoff_is_a_full_jitter_draw_below_a_capped_doubling);
        tcase_add_test(tc, only_failures_that_may_pass_are_retried);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(notify_body_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
