/*
 * The patient as the analysis stream sees it (consumer/analyse/pseudonym.h): the key
 * file's rules (length, owner-only permissions, errors that never quote the
 * key), the pseudonym as a receiver of the stream could recompute it with the
 * key (HMAC-SHA256 over the 12-digit identity, by OpenSSL's EVP_MAC), the same
 * for every spelling of one identity and different between patients and keys,
 * and the age band at the event and the sex from the identity.
 *
 * Identities (Luhn over YYMMDDNNN): 400314-1233 (male, born 1940),
 * 850709-2487 (female), 701063-2391 (samordningsnummer, born 1970-10-03).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "common/contract/json.h"
#include "consumer/analyse/pseudonym.h"
#include "tests/support/check_text.h"
#include "tests/support/test_data.h"

#define KEY_A "k3y-for-tests-only-0123456789abcdef-AAAA"
#define KEY_B "k3y-for-tests-only-0123456789abcdef-BBBB"

static char dir[64];

static void setup(void)
{
        ck_assert_ptr_nonnull(test_data_temp_dir("avk-pseudonym", dir, sizeof(dir)));
}

static void teardown(void)
{
        ck_assert_int_eq(test_data_remove_dir(dir), 0);
}

/* Writes content to dir/name with mode; returns the path (static buffer per name). */
static const char *key_file(const char *name, const char *content, mode_t mode)
{
        static char path[4][128];
        static int next;
        char *p = path[next++ % 4];
        snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
        FILE *f = fopen(p, "w");
        ck_assert_ptr_nonnull(f);
        fputs(content, f);
        fclose(f);
        ck_assert_int_eq(chmod(p, mode), 0);
        return p;
}

static avk_pseudonym_t *open_key(const char *key)
{
        char err[512];
        avk_pseudonym_t *p = avk_pseudonym_new(key_file("key", key, 0600), err, sizeof(err));
        ck_assert_msg(p != NULL, "%s", err);
        return p;
}

static int64_t at(const char *rfc3339)
{
        int64_t ms;
        ck_assert_int_eq(avk_json_parse_time(rfc3339, &ms), 0);
        return ms;
}

static struct avk_pseudonym_patient patient(avk_pseudonym_t *p, const char *id)
{
        struct avk_pseudonym_patient out;
        ck_assert_int_eq(avk_pseudonym_patient(p, id, "UNKNOWN", "UNKNOWN",
                                               at("2026-11-16T15:40:00.000Z"), &out),
                         0);
        return out;
}

START_TEST(key_readable_by_group_or_others_is_refused)
{
        char err[512];
        const char *path = key_file("key", KEY_A, 0640);
        ck_assert_ptr_null(avk_pseudonym_new(path, err, sizeof(err)));
        ck_assert_contains(err, "analysis.pseudonym.key.file: ");
        ck_assert_contains(err, path);
        ck_assert_contains(err, "mode 0640");
        ck_assert_contains(err, "chmod 600");
        ck_assert_ptr_null(strstr(err, KEY_A));
        ck_assert_ptr_null(avk_pseudonym_new(key_file("key", KEY_A, 0604), err, sizeof(err)));
        ck_assert_contains(err, "mode 0604");
}
END_TEST

START_TEST(short_key_is_refused_without_quoting_it)
{
        char err[512];
        ck_assert_ptr_null(avk_pseudonym_new(
            key_file("short", "only-31-bytes-of-key-material!\n", 0600), err, sizeof(err)));
        ck_assert_contains(err, "the key is 30 bytes, at least 32 required");
        ck_assert_ptr_null(strstr(err, "only-31"));
}
END_TEST

START_TEST(missing_key_file_names_the_file)
{
        char err[512], path[128];
        snprintf(path, sizeof(path), "%s/absent", dir);
        ck_assert_ptr_null(avk_pseudonym_new(path, err, sizeof(err)));
        ck_assert_contains(err, path);
        ck_assert_contains(err, "No such file");
}
END_TEST

/* What a holder of the key recomputes: HMAC-SHA256(key, "194003141233"), hex. */
START_TEST(pseudonym_is_the_hmac_of_the_twelve_digit_identity)
{
        avk_pseudonym_t *p = open_key(KEY_A "\n");
        struct avk_pseudonym_patient got = patient(p, "194003141233");
        ck_assert(got.has_pseudonym);

        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                               OSSL_PARAM_construct_end()};
        unsigned char out[32];
        size_t out_len = 0;
        ck_assert_int_eq(EVP_MAC_init(ctx, (const unsigned char *)KEY_A, strlen(KEY_A), params), 1);
        ck_assert_int_eq(EVP_MAC_update(ctx, (const unsigned char *)"194003141233", 12), 1);
        ck_assert_int_eq(EVP_MAC_final(ctx, out, &out_len, sizeof(out)), 1);
        char expected[65];
        for (size_t i = 0; i < out_len; i++)
                snprintf(expected + 2 * i, 3, "%02x", out[i]);
        ck_assert_str_eq(got.pseudonym, expected);
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
        avk_pseudonym_destroy(p);
}
END_TEST

START_TEST(every_spelling_of_one_identity_gives_one_pseudonym)
{
        avk_pseudonym_t *p = open_key(KEY_A);
        struct avk_pseudonym_patient canonical = patient(p, "194003141233");
        static const char *const spellings[] = {"400314-1233", "4003141233", "19400314-1233"};
        for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
                struct avk_pseudonym_patient other = patient(p, spellings[i]);
                ck_assert_msg(strcmp(other.pseudonym, canonical.pseudonym) == 0, "%s",
                              spellings[i]);
        }
        avk_pseudonym_destroy(p);
}
END_TEST

START_TEST(patients_and_keys_give_different_pseudonyms)
{
        avk_pseudonym_t *a = open_key(KEY_A), *b = open_key(KEY_B);
        struct avk_pseudonym_patient man = patient(a, "194003141233");
        struct avk_pseudonym_patient woman = patient(a, "198507092487");
        struct avk_pseudonym_patient man_b = patient(b, "194003141233");
        ck_assert_str_ne(man.pseudonym, woman.pseudonym);
        ck_assert_str_ne(man.pseudonym, man_b.pseudonym);
        ck_assert_uint_eq(strlen(man.pseudonym), 64);
        ck_assert_ptr_null(strstr(man.pseudonym, "194003141233"));
        avk_pseudonym_destroy(a);
        avk_pseudonym_destroy(b);
}
END_TEST

START_TEST(sex_comes_from_the_ninth_digit)
{
        avk_pseudonym_t *p = open_key(KEY_A);
        ck_assert_str_eq(patient(p, "194003141233").sex, "MALE");
        ck_assert_str_eq(patient(p, "198507092487").sex, "FEMALE");
        ck_assert_str_eq(patient(p, "197010632391").sex, "MALE");
        avk_pseudonym_destroy(p);
}
END_TEST

START_TEST(age_band_is_the_age_when_it_happened)
{
        avk_pseudonym_t *p = open_key(KEY_A);
        ck_assert_str_eq(patient(p, "194003141233").age_group, "AGE_80_PLUS");
        ck_assert_str_eq(patient(p, "198507092487").age_group, "AGE_18_64");
        /* A samordningsnummer's day is the birth day plus 60: born 1970-10-03. */
        ck_assert_str_eq(patient(p, "197010632391").age_group, "AGE_18_64");
        avk_pseudonym_destroy(p);

        /* Band edges fall on the birthday. */
        ck_assert_str_eq(avk_pseudonym_age_group(20081120, at("2026-11-19T23:59:59.000Z")),
                         "AGE_0_17");
        ck_assert_str_eq(avk_pseudonym_age_group(20081120, at("2026-11-20T00:00:00.000Z")),
                         "AGE_18_64");
        ck_assert_str_eq(avk_pseudonym_age_group(19611120, at("2026-11-19T12:00:00.000Z")),
                         "AGE_18_64");
        ck_assert_str_eq(avk_pseudonym_age_group(19611120, at("2026-11-20T12:00:00.000Z")),
                         "AGE_65_79");
        ck_assert_str_eq(avk_pseudonym_age_group(19461120, at("2026-11-20T12:00:00.000Z")),
                         "AGE_80_PLUS");
        ck_assert_str_eq(avk_pseudonym_age_group(20260101, at("2026-11-20T12:00:00.000Z")),
                         "AGE_0_17");
        ck_assert_str_eq(avk_pseudonym_age_group(20261121, at("2026-11-20T12:00:00.000Z")),
                         "UNKNOWN");
}
END_TEST

START_TEST(without_identity_the_reports_own_age_group_and_sex_are_kept)
{
        avk_pseudonym_t *p = open_key(KEY_A);
        struct avk_pseudonym_patient out;
        ck_assert_int_eq(avk_pseudonym_patient(p, NULL, "AGE_65_79", "FEMALE", 0, &out), 0);
        ck_assert(!out.has_pseudonym);
        ck_assert_str_eq(out.pseudonym, "");
        ck_assert_str_eq(out.age_group, "AGE_65_79");
        ck_assert_str_eq(out.sex, "FEMALE");
        ck_assert_int_eq(avk_pseudonym_patient(p, NULL, NULL, NULL, 0, &out), 0);
        ck_assert_str_eq(out.age_group, "UNKNOWN");
        ck_assert_str_eq(out.sex, "UNKNOWN");
        avk_pseudonym_destroy(p);
}
END_TEST

START_TEST(identity_that_does_not_parse_is_still_hidden)
{
        avk_pseudonym_t *p = open_key(KEY_A);
        struct avk_pseudonym_patient out;
        ck_assert_int_eq(avk_pseudonym_patient(p, "19401314-1233", "AGE_80_PLUS", "MALE",
                                               at("2026-11-16T15:40:00.000Z"), &out),
                         0);
        ck_assert(out.has_pseudonym);
        ck_assert(out.identity_unparsed);
        ck_assert_uint_eq(strlen(out.pseudonym), 64);
        ck_assert_str_eq(out.age_group, "AGE_80_PLUS");
        ck_assert_str_eq(out.sex, "MALE");
        avk_pseudonym_destroy(p);
}
END_TEST

static Suite *pseudonym_suite(void)
{
        Suite *s = suite_create("pseudonym");
        TCase *keys = tcase_create("key file");
        tcase_add_checked_fixture(keys, setup, teardown);
        tcase_add_test(keys, key_readable_by_group_or_others_is_refused);
        tcase_add_test(keys, short_key_is_refused_without_quoting_it);
        tcase_add_test(keys, missing_key_file_names_the_file);
        suite_add_tcase(s, keys);
        TCase *tc = tcase_create("patient");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, pseudonym_is_the_hmac_of_the_twelve_digit_identity);
        tcase_add_test(tc, every_spelling_of_one_identity_gives_one_pseudonym);
        tcase_add_test(tc, patients_and_keys_give_different_pseudonyms);
        tcase_add_test(tc, sex_comes_from_the_ninth_digit);
        tcase_add_test(tc, age_band_is_the_age_when_it_happened);
        tcase_add_test(tc, without_identity_the_reports_own_age_group_and_sex_are_kept);
        tcase_add_test(tc, identity_that_does_not_parse_is_still_hidden);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(pseudonym_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
