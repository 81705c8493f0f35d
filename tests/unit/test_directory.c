/*
 * Unit tests for avk_directory: the sample directory (data/directory.json)
 * loads clean with VGR and all 49 municipalities; lookups and inheritance;
 * and what an operator is told about a broken directory - every problem at
 * once, each naming the file and the JSON path (or line and column), and
 * never the bytes of a secret.
 *
 * Fixtures: tests/data/directory/ (secret files in secrets/, test-only).
 */
#include "common/contract/directory.h"
#include "common/contract/municipality.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "tests/support/check_text.h"
#include "tests/support/test_data.h"

#define SAMPLE_DIRECTORY AVK_SOURCE_DIR "/data/directory.json"
#define FIXTURE(name)    AVK_TEST_DATA "/directory/" name

static struct avk_errors errs;
static char joined[AVK_ERRORS_MAX * AVK_ERROR_MSG_SIZE];

static avk_directory_t *load(const char *path, unsigned flags)
{
        avk_directory_t *dir;

        avk_errors_init(&errs);
        dir = avk_directory_load(path, flags, &errs);
        avk_errors_join(&errs, joined, sizeof(joined));
        return dir;
}

static avk_directory_t *load_clean(const char *path, unsigned flags)
{
        avk_directory_t *dir = load(path, flags);

        ck_assert_msg(dir != NULL, "%s did not load: %s", path, joined);
        ck_assert_uint_eq(avk_errors_total(&errs), 0);
        return dir;
}

/* Asserts that the load failed and one of the errors is exactly expected. */
static void assert_error(const char *expected)
{
        for (size_t i = 0; i < errs.cnt; i++) {
                if (strcmp(errs.msg[i], expected) == 0)
                        return;
        }
        ck_abort_msg("no error \"%s\" among: %s", expected, joined);
}

/* Asserts that one of the errors is exactly "file: rest". */
static void assert_error_at(const char *file, const char *rest)
{
        char e[AVK_ERROR_MSG_SIZE];

        snprintf(e, sizeof(e), "%s: %s", file, rest);
        assert_error(e);
}

/* ---- the sample directory ---- */

START_TEST(sample_directory_loads_without_errors)
{
        avk_directory_t *dir = load_clean(SAMPLE_DIRECTORY, 0);

        ck_assert_uint_eq(avk_directory_party_cnt(dir), 1 + avk_municipality_cnt);
        ck_assert_uint_eq(avk_municipality_cnt, 49);
        avk_directory_destroy(dir);
}
END_TEST

START_TEST(sample_directory_lists_every_municipality_with_its_subregion)
{
        avk_directory_t *dir = load_clean(SAMPLE_DIRECTORY, 0);

        for (size_t i = 0; i < avk_municipality_cnt; i++) {
                const struct avk_municipality *m = &avk_municipalities[i];
                const struct avk_directory_party *p = avk_directory_party(dir, m->code);
                char inbox[64];

                ck_assert_msg(p != NULL, "%s %s missing", m->code, m->name);
                ck_assert_str_eq(p->code, m->code);
                ck_assert_str_eq(p->name, m->name);
                ck_assert_str_eq(p->subregion, m->subregion);
                snprintf(inbox, sizeof(inbox), "avvik.inbox.%s", m->code);
                ck_assert_str_eq(p->receiver.delivery->inbox_topic, inbox);
                for (int s = 0; s < AVK_DIRECTORY_LADDER_STEPS; s++)
                        ck_assert_ptr_nonnull(p->receiver.ladder[s]);
        }
        avk_directory_destroy(dir);
}
END_TEST

/* The local forum step is the sub-region's partsgemensamt forum, on both sides. */
START_TEST(the_local_forum_is_the_one_of_the_municipalitys_subregion_on_both_sides)
{
        avk_directory_t *dir = load_clean(SAMPLE_DIRECTORY, 0);
        const struct avk_directory_contact *goteborg =
            avk_directory_local_forum(dir, "VGR", "1480");

        ck_assert_ptr_nonnull(goteborg);
        ck_assert_str_eq(goteborg->name,
                         "Partsgemensamt forum Göteborgsregionen (delregional vårdsamverkan)");
        ck_assert_ptr_eq(avk_directory_local_forum(dir, "1480", "VGR"), goteborg);
        ck_assert_str_eq(avk_directory_local_forum(dir, "1490", "VGR")->name,
                         "Partsgemensamt forum Södra Älvsborg (delregional vårdsamverkan)");
        ck_assert_ptr_null(avk_directory_local_forum(dir, "VGR", NULL));
        avk_directory_destroy(dir);
}
END_TEST

START_TEST(sample_directory_has_vgr_with_its_units)
{
        avk_directory_t *dir = load_clean(SAMPLE_DIRECTORY, 0);
        const struct avk_directory_party *vgr = avk_directory_party(dir, "VGR");
        const struct avk_directory_unit *ward =
            avk_directory_unit(dir, "SE2321000131-E000000012345");

        ck_assert_ptr_nonnull(vgr);
        ck_assert_str_eq(vgr->name, "Västra Götalandsregionen");
        ck_assert_ptr_null(vgr->subregion);
        ck_assert_str_eq(vgr->receiver.delivery->inbox_topic, "avvik.inbox.vgr");
        ck_assert_ptr_nonnull(vgr->receiver.delivery->webhook);
        ck_assert_int_eq(vgr->receiver.delivery->webhook->patient_identity, 1);
        ck_assert_uint_ge(vgr->unit_cnt, 4);
        ck_assert_ptr_nonnull(ward);
        ck_assert_ptr_eq(ward->party, vgr);
        ck_assert_contains(ward->name, "Sahlgrenska");
        /* The units of the sample deviations in deploy/samples are in the directory. */
        ck_assert_str_eq(avk_directory_unit(dir, "SE2120001215-HSK0042")->party->code, "1480");
        ck_assert_str_eq(avk_directory_unit(dir, "SE2120001561-SABO7")->party->code, "1490");
        ck_assert_str_eq(avk_directory_unit(dir, "SE2321000131-E000000067890")->party->code, "VGR");
        avk_directory_destroy(dir);
}
END_TEST

START_TEST(sample_secrets_are_read_from_deploy_secrets)
{
        avk_directory_t *dir = load_clean(SAMPLE_DIRECTORY, 0);
        const struct avk_directory_webhook *wh =
            avk_directory_party(dir, "VGR")->receiver.delivery->webhook;
        char reason[256];
        char *file = test_data_read(wh->secret_file, reason, sizeof(reason));

        ck_assert_msg(file != NULL, "%s", reason);
        ck_assert_contains(wh->secret_file, "deploy/secrets/vgr-webhook.secret");
        ck_assert_uint_ge(wh->secret_len, AVK_DIRECTORY_SECRET_MIN);
        /* The file's bytes without the final newline. */
        ck_assert_uint_eq(strlen(file), wh->secret_len + 1);
        ck_assert_int_eq(memcmp(file, wh->secret, wh->secret_len), 0);
        ck_assert_int_eq(strncmp(file, "SAMPLE-local-stack-only-", 24), 0);
        free(file);
        avk_directory_destroy(dir);
}
END_TEST

/* ---- lookups and inheritance ---- */

START_TEST(lookups_find_parties_and_units_and_nothing_else)
{
        avk_directory_t *dir = load_clean(FIXTURE("partial.json"), AVK_DIRECTORY_ALLOW_PARTIAL);

        ck_assert_uint_eq(avk_directory_party_cnt(dir), 2);
        ck_assert_uint_eq(avk_directory_unit_cnt(dir), 3);
        ck_assert_str_eq(avk_directory_party_at(dir, 0)->code, "VGR");
        ck_assert_str_eq(avk_directory_party_at(dir, 1)->code, "1480");
        ck_assert_ptr_null(avk_directory_party_at(dir, 2));
        ck_assert_str_eq(avk_directory_party(dir, "1480")->subregion, "Göteborgsregionen");
        ck_assert_ptr_null(avk_directory_party(dir, "1490"));
        ck_assert_ptr_null(avk_directory_party(dir, "vgr"));
        ck_assert_ptr_null(avk_directory_party(dir, NULL));
        ck_assert_str_eq(avk_directory_unit(dir, "SE2120001215-HSK0042")->name,
                         "Hemsjukvård Centrum");
        ck_assert_ptr_null(avk_directory_unit(dir, "SE2120001215-HSK0043"));
        ck_assert_ptr_null(avk_directory_unit(dir, NULL));
        ck_assert_str_eq(avk_directory_party(dir, "VGR")->receiver.coordinator->phone,
                         "+46 31 00 00 00");
        ck_assert_ptr_null(avk_directory_party(dir, "1480")->receiver.coordinator->phone);
        avk_directory_destroy(dir);
}
END_TEST

START_TEST(a_unit_takes_from_its_party_what_it_does_not_name)
{
        avk_directory_t *dir = load_clean(FIXTURE("partial.json"), AVK_DIRECTORY_ALLOW_PARTIAL);
        const struct avk_directory_party *vgr = avk_directory_party(dir, "VGR");
        const struct avk_directory_unit *ward =
            avk_directory_unit(dir, "SE2321000131-E000000012345");

        /* The ward names only its manager: every other step, the coordinator
         * and the delivery are the party's. */
        ck_assert_str_eq(ward->receiver.ladder[AVK_DIRECTORY_MANAGER]->name,
                         "Vårdenhetschef avd 31");
        for (int s = AVK_DIRECTORY_SENIOR_MANAGER; s < AVK_DIRECTORY_LADDER_STEPS; s++)
                ck_assert_ptr_eq(ward->receiver.ladder[s], vgr->receiver.ladder[s]);
        ck_assert_ptr_eq(ward->receiver.coordinator, vgr->receiver.coordinator);
        ck_assert_ptr_eq(ward->receiver.delivery, vgr->receiver.delivery);
        avk_directory_destroy(dir);
}
END_TEST

/* The triage desk is an entry of its own: no party's unit, its own delivery and ladder; what is
 * routed to it reaches it whichever party the record names. */
START_TEST(the_triage_desk_is_its_own_receiver_and_no_partys_unit)
{
        avk_directory_t *dir = load_clean(SAMPLE_DIRECTORY, 0);
        const struct avk_directory_desk *desk = avk_directory_triage_desk(dir);
        const struct avk_directory_party *vgr = avk_directory_party(dir, "VGR");

        ck_assert_str_eq(desk->hsa_id, "SE2321000131-E000000000001");
        ck_assert_str_eq(desk->record_party, "VGR");
        ck_assert_ptr_null(avk_directory_unit(dir, desk->hsa_id));
        ck_assert_str_eq(desk->receiver.delivery->inbox_topic, "avvik.inbox.triage");
        ck_assert_ptr_nonnull(desk->receiver.delivery->webhook);
        ck_assert_int_eq(desk->receiver.delivery->webhook->patient_identity, 0);
        ck_assert_ptr_ne(desk->receiver.ladder[AVK_DIRECTORY_MANAGER],
                         vgr->receiver.ladder[AVK_DIRECTORY_MANAGER]);
        ck_assert_ptr_eq(avk_directory_receiver(dir, "VGR", desk->hsa_id), &desk->receiver);
        ck_assert_ptr_eq(avk_directory_receiver(dir, "1480", desk->hsa_id), &desk->receiver);
        ck_assert_ptr_eq(avk_directory_receiver(dir, "VGR", NULL), &vgr->receiver);
        /* A unit of another party than the one named: the party receives it. */
        ck_assert_ptr_eq(avk_directory_receiver(dir, "VGR", "SE2120001215-HSK0042"),
                         &vgr->receiver);
        ck_assert_ptr_eq(avk_directory_receiver(dir, "1480", "SE2120001215-HSK0042"),
                         &avk_directory_unit(dir, "SE2120001215-HSK0042")->receiver);
        ck_assert_ptr_null(avk_directory_receiver(dir, "0180", NULL));
        avk_directory_destroy(dir);
}
END_TEST

START_TEST(http_is_accepted_only_where_allow_http_says_so)
{
        avk_directory_t *dir = load_clean(FIXTURE("partial.json"), AVK_DIRECTORY_ALLOW_PARTIAL);
        const struct avk_directory_unit *hc = avk_directory_unit(dir, "SE2321000131-E000000020001");

        ck_assert_str_eq(hc->receiver.delivery->webhook->url, "http://localhost:8080/hook");
        ck_assert_ptr_null(hc->receiver.delivery->inbox_topic);
        avk_directory_destroy(dir);
}
END_TEST

/* ---- what a broken directory is told ---- */

START_TEST(every_problem_is_reported_at_once_with_file_and_path)
{
        const char *f = FIXTURE("many-errors.json");

        ck_assert_ptr_null(load(f, AVK_DIRECTORY_ALLOW_PARTIAL));
        assert_error_at(f,
                        "parties[0].coordinator.email: \"samordnare.vgr.test.example\" is not an "
                        "e-mail address");
        assert_error_at(f, "parties[0].ladder.local_forum: is required (step 3, the joint local or "
                           "sub-regional forum)");
        assert_error_at(f, "parties[0].delivery.webhook.url: URL must start with https://");
        assert_error_at(f,
                        "parties[0].delivery.inbox_topic: topic name character 6 is ' ', expected "
                        "[a-zA-Z0-9._-]");
        assert_error_at(f, "parties[0].units[0].colour: unknown key (expected hsa_id, name, "
                           "coordinator, ladder, delivery)");
        assert_error_at(f, "parties[0].units[1].hsa_id: organisation number check digit is 3, "
                           "expected 1");
        assert_error_at(f, "parties[0].units[2].hsa_id: SE2321000131-E1 is already the HSA-id of "
                           "parties[0].units[0]");
        assert_error_at(f, "parties[1].name: \"Borås\" is not the name of 1480 (Göteborg)");
        assert_error_at(f,
                        "parties[1].delivery.webhook.url: URL uses http://, https:// is required; "
                        "set \"allow_http\": true to allow a test endpoint");
        assert_error_at(f, "parties[1].units[0].hsa_id: is an HSA-id of VGR (organisation number "
                           "2321000131), but the unit is listed under 1480");
        assert_error_at(f, "parties[2].party: \"1480\" is already listed at parties[1]");
        assert_error_at(f,
                        "parties[3].party: party must be \"VGR\" or a municipality code ('0180' is "
                        "not one of the 49 municipalities in Västra Götaland)");
        assert_error_at(
            f, "parties[4].delivery.inbox_topic: \"avvik.inbox.1480\" is already the inbox "
               "of party 1480 (parties[1].delivery.inbox_topic); a party's inbox topic must "
               "be its own");
        assert_error_at(f, "parties[5].ladder: is required: the four escalation steps manager, "
                           "senior_manager, local_forum, county_forum");
        assert_error_at(f, "parties[5].delivery: names no channel: expected a webhook and/or an "
                           "inbox_topic");
        assert_error_at(f,
                        "triage_desk.hsa_id: SE2321000131-E1 is a unit of party VGR; the desk is "
                        "a joint function, no party's unit");
        assert_error_at(
            f, "triage_desk.delivery.inbox_topic: \"avvik.inbox.1480\" is already the inbox of "
               "party 1480 (parties[1].delivery.inbox_topic); a party's inbox topic must be its "
               "own");
        assert_error_at(f, "subregion_forums.Sjuhärad: no municipality of data/municipalities.csv "
                           "belongs to this sub-region");
        assert_error_at(f, "subregion_forums.Skaraborg.email: is required");
        ck_assert_msg(avk_errors_total(&errs) == 19, "%zu errors: %s", avk_errors_total(&errs),
                      joined);
}
END_TEST

START_TEST(a_syntax_error_names_line_and_column)
{
        const char *f = FIXTURE("syntax-error.json");
        char prefix[512];

        ck_assert_ptr_null(load(f, AVK_DIRECTORY_ALLOW_PARTIAL));
        ck_assert_uint_eq(avk_errors_total(&errs), 1);
        /* Line 4: {"party": "VGR" "name": ... - the comma is missing after "VGR". */
        snprintf(prefix, sizeof(prefix), "%s:4:", f);
        ck_assert_msg(strncmp(errs.msg[0], prefix, strlen(prefix)) == 0, "%s", errs.msg[0]);
        ck_assert_contains(errs.msg[0], "expected");
}
END_TEST

START_TEST(a_missing_file_is_named)
{
        ck_assert_ptr_null(load(FIXTURE("no-such-directory.json"), 0));
        ck_assert_uint_eq(avk_errors_total(&errs), 1);
        ck_assert_contains(errs.msg[0], "no-such-directory.json: cannot open: No such file");
}
END_TEST

START_TEST(a_partial_directory_needs_the_flag)
{
        const char *f = FIXTURE("partial.json");
        char e[AVK_ERROR_MSG_SIZE];

        ck_assert_ptr_null(load(f, 0));
        ck_assert_uint_eq(avk_errors_total(&errs), 1);
        snprintf(e, sizeof(e),
                 "%s: parties: 48 of the 49 municipalities are missing: 1401, 1402, 1407, ", f);
        ck_assert_msg(strncmp(errs.msg[0], e, strlen(e)) == 0, "%s", errs.msg[0]);
        ck_assert_contains(errs.msg[0], ", 1499 (load with AVK_DIRECTORY_ALLOW_PARTIAL");
        ck_assert_msg(strstr(errs.msg[0], "1480") == NULL, "%s", errs.msg[0]);
}
END_TEST

START_TEST(secrets_never_appear_in_errors)
{
        const char *f = FIXTURE("secrets-stay-secret.json");
        char e[AVK_ERROR_MSG_SIZE];

        ck_assert_ptr_null(load(f, AVK_DIRECTORY_ALLOW_PARTIAL));
        ck_assert_uint_eq(avk_errors_total(&errs), 3);
        snprintf(e, sizeof(e),
                 "%s: parties[0].delivery.webhook.secret: unknown key (expected url, secret_file, "
                 "allow_http, patient_identity)",
                 f);
        assert_error(e);
        snprintf(e, sizeof(e),
                 "%s: parties[0].delivery.webhook: secret_file: %s: the key is 20 bytes, at "
                 "least 32 required",
                 f, FIXTURE("secrets/short.secret"));
        assert_error(e);
        snprintf(e, sizeof(e),
                 "%s: parties[0].units[0].delivery.webhook: secret_file: %s: No such file or "
                 "directory",
                 f, FIXTURE("secrets/no-such.secret"));
        assert_error(e);
        /* Neither the value pasted inline nor the bytes of the short file. */
        ck_assert_msg(strstr(joined, "s3cr3t") == NULL, "%s", joined);
        ck_assert_msg(strstr(joined, "hunter2") == NULL, "%s", joined);
}
END_TEST

START_TEST(patient_identity_is_never_sent_over_http)
{
        const char *f = FIXTURE("identity-over-http.json");
        char e[AVK_ERROR_MSG_SIZE];

        ck_assert_ptr_null(load(f, AVK_DIRECTORY_ALLOW_PARTIAL));
        snprintf(e, sizeof(e),
                 "%s: parties[0].delivery.webhook.patient_identity: patient identity is only "
                 "sent over https://",
                 f);
        assert_error(e);
        ck_assert_uint_eq(avk_errors_total(&errs), 1);
}
END_TEST

/* A webhook key that its group or others may read is refused like the
 * pseudonym key: whoever reads it can sign deliveries. */
START_TEST(a_secret_file_others_may_read_is_refused)
{
        char dir[64], path[128], secret[128], reason[256], e[2 * AVK_ERROR_MSG_SIZE];
        ck_assert_ptr_nonnull(test_data_temp_dir("avk-directory", dir, sizeof(dir)));
        char *doc = test_data_read(FIXTURE("partial.json"), reason, sizeof(reason));
        char *key = test_data_read(FIXTURE("secrets/test-webhook.secret"), reason, sizeof(reason));
        ck_assert_msg(doc && key, "%s", reason);
        snprintf(path, sizeof(path), "%s/secrets", dir);
        ck_assert_int_eq(mkdir(path, 0700), 0);
        snprintf(secret, sizeof(secret), "%s/secrets/test-webhook.secret", dir);
        int fd = open(secret, O_WRONLY | O_CREAT | O_EXCL, 0640);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, key, strlen(key)), (ssize_t)strlen(key));
        close(fd);
        ck_assert_int_eq(chmod(secret, 0640), 0);
        snprintf(path, sizeof(path), "%s/partial.json", dir);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(doc, f);
        fclose(f);

        ck_assert_ptr_null(load(path, AVK_DIRECTORY_ALLOW_PARTIAL));
        snprintf(e, sizeof(e),
                 "%s: parties[0].delivery.webhook: secret_file: %s: group or others may access "
                 "the key (mode 0640); it must be readable by its owner only (chmod 600)",
                 path, secret);
        assert_error(e);
        ck_assert_msg(strstr(joined, key) == NULL, "%s", joined);

        ck_assert_int_eq(chmod(secret, 0600), 0);
        avk_directory_destroy(load_clean(path, AVK_DIRECTORY_ALLOW_PARTIAL));
        unlink(secret);
        unlink(path);
        snprintf(path, sizeof(path), "%s/secrets", dir);
        rmdir(path);
        rmdir(dir);
        free(doc);
        free(key);
}
END_TEST

static Suite *directory_suite(void)
{
        Suite *s = suite_create("directory");
        TCase *sample = tcase_create("sample");
        TCase *lookup = tcase_create("lookup");
        TCase *errors = tcase_create("errors");

        tcase_add_test(sample, sample_directory_loads_without_errors);
        tcase_add_test(sample, sample_directory_lists_every_municipality_with_its_subregion);
        tcase_add_test(sample, sample_directory_has_vgr_with_its_units);
        tcase_add_test(sample,
                       the_local_forum_is_the_one_of_the_municipalitys_subregion_on_both_sides);
        tcase_add_test(sample, sample_secrets_are_read_from_deploy_secrets);
        suite_add_tcase(s, sample);

        tcase_add_test(lookup, lookups_find_parties_and_units_and_nothing_else);
        tcase_add_test(lookup, a_unit_takes_from_its_party_what_it_does_not_name);
        tcase_add_test(lookup, http_is_accepted_only_where_allow_http_says_so);
        tcase_add_test(lookup, the_triage_desk_is_its_own_receiver_and_no_partys_unit);
        suite_add_tcase(s, lookup);

        tcase_add_test(errors, every_problem_is_reported_at_once_with_file_and_path);
        tcase_add_test(errors, a_syntax_error_names_line_and_column);
        tcase_add_test(errors, a_missing_file_is_named);
        tcase_add_test(errors, a_partial_directory_needs_the_flag);
        tcase_add_test(errors, secrets_never_appear_in_errors);
        tcase_add_test(errors, a_secret_file_others_may_read_is_refused);
        tcase_add_test(errors, patient_identity_is_never_sent_over_http);
        suite_add_tcase(s, errors);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(directory_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
