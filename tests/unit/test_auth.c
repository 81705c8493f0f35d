/*
 * Gateway tokens: a tokens file is checked line by line with file:line
 * errors; a presented token finds its party only through its SHA-256; new
 * tokens are random base64url and load back through their own line.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/contract/party.h"
#include "common/http/auth.h"
#include "tests/support/check_text.h"

/* SHA-256 of "abc" (FIPS 180-2 test vector). */
#define HASH_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static char path[64];
static char err[512];
static avk_auth_t *auth;

static void setup(void)
{
        snprintf(path, sizeof(path), "/tmp/avk-test-auth-%d", (int)getpid());
        err[0] = '\0';
        auth = NULL;
}

static void teardown(void)
{
        avk_auth_destroy(auth);
        unlink(path);
}

static void write_tokens(const char *content)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        close(fd);
}

/* Loads content, expecting the error "path:want". */
static void load_fails(const char *content, const char *want)
{
        write_tokens(content);
        ck_assert_ptr_null(avk_auth_load(path, avk_party_parse, err, sizeof(err)));
        char full[600];
        snprintf(full, sizeof(full), "%s:%s", path, want);
        ck_assert_str_eq(err, full);
}

START_TEST(hash_is_sha256_in_lower_case_hex)
{
        char hex[AVK_AUTH_HEX_SIZE];
        avk_auth_hash_hex("abc", 3, hex);
        ck_assert_str_eq(hex, HASH_ABC);
}
END_TEST

START_TEST(tokens_find_their_party_and_label)
{
        char secret_hex[AVK_AUTH_HEX_SIZE];
        avk_auth_hash_hex("secret-token", 12, secret_hex);
        char content[512];
        snprintf(content, sizeof(content),
                 "# tokens of the test\n"
                 "\n"
                 "  " HASH_ABC "   1480   treserva goteborg  \n"
                 "%s VGR\r\n",
                 secret_hex);
        write_tokens(content);
        auth = avk_auth_load(path, avk_party_parse, err, sizeof(err));
        ck_assert_msg(auth != NULL, "%s", err);
        ck_assert_uint_eq(avk_auth_count(auth), 2);
        const char *label = NULL;
        ck_assert_str_eq(avk_party_code(avk_auth_lookup(auth, "abc", 3, &label)), "1480");
        ck_assert_str_eq(label, "treserva goteborg");
        ck_assert_int_eq(avk_auth_lookup(auth, "secret-token", 12, &label), AVK_PARTY_VGR);
        ck_assert_str_eq(label, "");
        /* The hash, or a near miss, is not a token. */
        ck_assert_int_eq(avk_auth_lookup(auth, HASH_ABC, strlen(HASH_ABC), &label), -1);
        ck_assert_int_eq(avk_auth_lookup(auth, "abcd", 4, NULL), -1);
        ck_assert_int_eq(avk_auth_lookup(auth, "ab", 2, NULL), -1);
        ck_assert_int_eq(avk_auth_lookup(auth, "", 0, NULL), -1);
}
END_TEST

START_TEST(upper_case_hex_loads)
{
        char upper[AVK_AUTH_HEX_SIZE + 8];
        snprintf(upper, sizeof(upper), "%s", HASH_ABC);
        for (char *p = upper; *p; p++)
                *p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
        strcat(upper, " 1401\n");
        write_tokens(upper);
        auth = avk_auth_load(path, avk_party_parse, err, sizeof(err));
        ck_assert_msg(auth != NULL, "%s", err);
        ck_assert_str_eq(avk_party_code(avk_auth_lookup(auth, "abc", 3, NULL)), "1401");
}
END_TEST

START_TEST(every_bad_line_is_named_by_file_and_line)
{
        load_fails("# only a comment\nabc 1480\n",
                   "2: token hash: expected 64 hexadecimal digits (SHA-256), got 3 characters");
        load_fails("ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad 1480\n",
                   "1: token hash: not hexadecimal at character 1");
        load_fails(HASH_ABC "\n", "1: expected \"<sha256-hex-of-token> <subject> [label]\"");
        load_fails(HASH_ABC " 9999 x\n",
                   "1: party must be \"VGR\" or a municipality code ('9999' is not one of the "
                   "49 municipalities in Västra Götaland)");
        load_fails(HASH_ABC " vgr\n", "1: party must be \"VGR\" or a municipality code "
                                      "(municipality code must be 4 digits, got 3 characters)");
        load_fails("\n" HASH_ABC " 1480 a\n#\n" HASH_ABC " VGR b\n",
                   "4: duplicate token hash (first on line 2)");
        load_fails(HASH_ABC " 1480 "
                            "0123456789012345678901234567890123456789012345678901234567890123456789"
                            "\n",
                   "1: label: longer than 64 characters");
}
END_TEST

START_TEST(empty_or_missing_files_are_errors)
{
        write_tokens("# nothing yet\n\n");
        ck_assert_ptr_null(avk_auth_load(path, avk_party_parse, err, sizeof(err)));
        ck_assert_contains(err, ": holds no token (make one with 'avvik token PARTY')");
        ck_assert_ptr_null(avk_auth_load("/nonexistent/tokens", avk_party_parse, err, sizeof(err)));
        ck_assert_str_eq(err, "/nonexistent/tokens: No such file or directory");
}
END_TEST

START_TEST(new_tokens_are_random_base64url_and_load_through_their_hash)
{
        char a[AVK_AUTH_TOKEN_SIZE], b[AVK_AUTH_TOKEN_SIZE];
        ck_assert_int_eq(avk_auth_token_new(a), 0);
        ck_assert_int_eq(avk_auth_token_new(b), 0);
        ck_assert_uint_eq(strlen(a), 43);
        ck_assert_uint_eq(
            strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
        ck_assert_str_ne(a, b);
        char hex[AVK_AUTH_HEX_SIZE], line[128];
        avk_auth_hash_hex(a, strlen(a), hex);
        snprintf(line, sizeof(line), "%s 1480 made\n", hex);
        write_tokens(line);
        auth = avk_auth_load(path, avk_party_parse, err, sizeof(err));
        ck_assert_msg(auth != NULL, "%s", err);
        ck_assert_str_eq(avk_party_code(avk_auth_lookup(auth, a, strlen(a), NULL)), "1480");
        ck_assert_int_eq(avk_auth_lookup(auth, b, strlen(b), NULL), -1);
}
END_TEST

START_TEST(parties_are_numbered_vgr_first)
{
        ck_assert_int_eq(avk_party_parse("VGR", err, sizeof(err)), AVK_PARTY_VGR);
        int p = avk_party_parse("1480", err, sizeof(err));
        ck_assert_int_ge(p, 1);
        ck_assert_int_le(p, AVK_PARTY_MAX);
        ck_assert_str_eq(avk_party_code(p), "1480");
        for (int i = 0; i <= AVK_PARTY_MAX; i++)
                ck_assert_int_eq(avk_party_parse(avk_party_code(i), err, sizeof(err)), i);
        ck_assert_ptr_null(avk_party_code(AVK_PARTY_MAX + 1));
        ck_assert_ptr_null(avk_party_code(-1));
        ck_assert_int_eq(avk_party_parse("0180", err, sizeof(err)), -1);
        ck_assert_contains(err, "party must be \"VGR\" or a municipality code");
}
END_TEST

static Suite *auth_suite(void)
{
        Suite *s = suite_create("auth");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, hash_is_sha256_in_lower_case_hex);
        tcase_add_test(tc, tokens_find_their_party_and_label);
        tcase_add_test(tc, upper_case_hex_loads);
        tcase_add_test(tc, every_bad_line_is_named_by_file_and_line);
        tcase_add_test(tc, empty_or_missing_files_are_errors);
        tcase_add_test(tc, new_tokens_are_random_base64url_and_load_through_their_hash);
        tcase_add_test(tc, parties_are_numbered_vgr_first);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(auth_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
