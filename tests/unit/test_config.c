/*
 * Configuration: validated when set, errors name the key (and file:line),
 * kafka.* checked against librdkafka's own property table; a service's keys
 * join through their table, and every command knows them all; a service's
 * group.instance.id comes from instance.name, else from the host's name and
 * the service's, the same at every start on that host (static membership,
 * docs/operations.md, "Restarts").
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "cli/config_keys.h"
#include "common/kafka/kafka.h"
#include "common/util/config.h"

static avk_config_t *cfg;
static char err[512];

static void setup(void)
{
        cfg = avk_config_new();
        err[0] = '\0';
}

static void teardown(void)
{
        avk_config_destroy(cfg);
}

/* Writes content to a new file of this process; the path is valid until the next call. */
static char *write_file(const char *content)
{
        static char path[64];
        static int files;
        snprintf(path, sizeof(path), "/tmp/avk-test-config-%d-%d", (int)getpid(), files++);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        close(fd);
        return path;
}

START_TEST(defaults_are_in_force_until_set)
{
        ck_assert_str_eq(avk_config_get(cfg, "topic.reported"), "deviation.reported");
        ck_assert_int_eq(avk_config_get_int(cfg, "topic.partitions"), 6);
        ck_assert_ptr_null(avk_config_get(cfg, "schema.registry.url"));
        ck_assert_int_eq(avk_config_set(cfg, "topic.partitions", "12", err, sizeof(err)), 0);
        ck_assert_int_eq(avk_config_get_int(cfg, "topic.partitions"), 12);
}
END_TEST

START_TEST(unknown_key_is_an_error_naming_it)
{
        ck_assert_int_eq(avk_config_set(cfg, "topic.reportd", "x", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "topic.reportd: unknown configuration key");
}
END_TEST

START_TEST(bad_values_are_errors_naming_key_and_reason)
{
        ck_assert_int_eq(avk_config_set(cfg, "topic.partitions", "six", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "topic.partitions: \"six\" is not an integer");
        ck_assert_int_eq(avk_config_set(cfg, "topic.partitions", "0", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "topic.partitions: 0 is outside 1..1000");
        ck_assert_int_eq(avk_config_set(cfg, "topic.partitions", "6x", err, sizeof(err)), -1);
        ck_assert_int_eq(
            avk_config_set(cfg, "schema.registry.url", "localhost:8081", err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "is not an http:// or https:// URL"), "%s", err);
        ck_assert_int_eq(avk_config_set(cfg, "schema.registry.url", "https://u:secret@sr:8081/",
                                        err, sizeof(err)),
                         -1);
        ck_assert_msg(strstr(err, "holds credentials") && !strstr(err, "secret"), "%s", err);
        ck_assert_int_eq(
            avk_config_set(cfg, "schema.registry.url", "https://sr:8081/a@b", err, sizeof(err)), 0);
        ck_assert_int_eq(avk_config_set(cfg, "log.level", "loud", err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "log.level: \"loud\" is not one of"), "%s", err);
        ck_assert_int_eq(avk_config_set(cfg, "topic.routed", "", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "topic.routed: empty value");
        /* A rejected value leaves the previous one in force. */
        ck_assert_int_eq(avk_config_get_int(cfg, "topic.partitions"), 6);
}
END_TEST

START_TEST(kafka_keys_are_checked_by_librdkafka_and_passed_through)
{
        ck_assert_int_eq(avk_config_set(cfg, "kafka.bootstrap.servers", "a:9092", err, sizeof(err)),
                         0);
        ck_assert_int_eq(avk_config_set(cfg, "kafka.bootstrap.servers", "b:9092", err, sizeof(err)),
                         0);
        ck_assert_int_eq(avk_config_set(cfg, "kafka.no.such.property", "1", err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "kafka.no.such.property: No such configuration property"), "%s",
                      err);
        ck_assert_int_eq(avk_config_set(cfg, "kafka.acks", "maybe", err, sizeof(err)), -1);
        ck_assert_msg(strncmp(err, "kafka.acks: Invalid value", 25) == 0, "%s", err);
        ck_assert_uint_eq(avk_config_kafka_cnt(cfg), 1);
        const char *name, *value;
        avk_config_kafka_get(cfg, 0, &name, &value);
        ck_assert_str_eq(name, "bootstrap.servers");
        ck_assert_str_eq(value, "b:9092");
}
END_TEST

START_TEST(file_with_comments_and_spaces_loads)
{
        char *path = write_file("# avvik\n\n  topic.reported = in.deviations  \n"
                                "kafka.client.id=avvik-test\n#kafka.acks=bogus\n");
        ck_assert_msg(avk_config_load(cfg, path, err, sizeof(err)) == 0, "%s", err);
        ck_assert_str_eq(avk_config_get(cfg, "topic.reported"), "in.deviations");
        ck_assert_uint_eq(avk_config_kafka_cnt(cfg), 1);
        unlink(path);
}
END_TEST

START_TEST(file_errors_name_path_and_line)
{
        char *path = write_file("topic.reported=a\n\nno equals sign here\n");
        ck_assert_int_eq(avk_config_load(cfg, path, err, sizeof(err)), -1);
        char expected[128];
        snprintf(expected, sizeof(expected), "%s:3: expected key=value", path);
        ck_assert_str_eq(err, expected);
        unlink(path);

        path = write_file("# ok\ntopic.partitions=-1\n");
        ck_assert_int_eq(avk_config_load(cfg, path, err, sizeof(err)), -1);
        snprintf(expected, sizeof(expected), "%s:2: topic.partitions: -1 is outside 1..1000", path);
        ck_assert_str_eq(err, expected);
        unlink(path);

        ck_assert_int_eq(avk_config_load(cfg, "/nonexistent/avvik.properties", err, sizeof(err)),
                         -1);
        ck_assert_str_eq(err, "/nonexistent/avvik.properties: No such file or directory");
}
END_TEST

START_TEST(command_line_pairs_need_an_equals_sign)
{
        ck_assert_int_eq(avk_config_set_pair(cfg, "log.level=debug", err, sizeof(err)), 0);
        ck_assert_str_eq(avk_config_get(cfg, "log.level"), "debug");
        ck_assert_int_eq(avk_config_set_pair(cfg, "log.level", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "\"log.level\": expected key=value");
        ck_assert_int_eq(avk_config_set_pair(cfg, "=x", err, sizeof(err)), -1);
}
END_TEST

/* A service's own keys, as a service folder keeps them. */
static const struct avk_config_key counter_keys[] = {
    {"counter.limit", AVK_CONFIG_INT, 1, 9, "3", "how far the counter counts"},
    {"counter.name", AVK_CONFIG_STRING, 0, 0, NULL, "what the counter is called"},
};
static const struct avk_config_table counter_table = AVK_CONFIG_TABLE(counter_keys);

START_TEST(a_services_keys_are_known_and_validated_once_its_table_is_added)
{
        ck_assert_int_eq(avk_config_set(cfg, "counter.limit", "4", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "counter.limit: unknown configuration key");
        ck_assert_int_eq(avk_config_add_keys(cfg, &counter_table, err, sizeof(err)), 0);
        ck_assert_int_eq(avk_config_get_int(cfg, "counter.limit"), 3);
        ck_assert_ptr_null(avk_config_get(cfg, "counter.name"));
        ck_assert_int_eq(avk_config_set(cfg, "counter.limit", "12", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "counter.limit: 12 is outside 1..9");
        ck_assert_int_eq(avk_config_set(cfg, "counter.name", "", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "counter.name: empty value");
        ck_assert_int_eq(avk_config_set(cfg, "counter.limit", "4", err, sizeof(err)), 0);
        ck_assert_int_eq(avk_config_get_int(cfg, "counter.limit"), 4);
        /* The shared keys are as they were. */
        ck_assert_str_eq(avk_config_get(cfg, "topic.reported"), "deviation.reported");
}
END_TEST

START_TEST(a_key_is_defined_once)
{
        static const struct avk_config_key again[] = {
            {"topic.reported", AVK_CONFIG_STRING, 0, 0, "elsewhere", "a second definition"},
        };
        static const struct avk_config_table again_table = AVK_CONFIG_TABLE(again);

        ck_assert_int_eq(avk_config_add_keys(cfg, &again_table, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "topic.reported: defined twice");
        ck_assert_int_eq(avk_config_add_keys(cfg, &counter_table, err, sizeof(err)), 0);
        ck_assert_int_eq(avk_config_add_keys(cfg, &counter_table, err, sizeof(err)), -1);
        ck_assert_str_eq(err, "counter.limit: defined twice");
        ck_assert_str_eq(avk_config_get(cfg, "topic.reported"), "deviation.reported");
}
END_TEST

START_TEST(the_listing_holds_every_key_added_with_its_default)
{
        char *listing = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&listing, &size);

        ck_assert_int_eq(avk_config_add_keys(cfg, &counter_table, err, sizeof(err)), 0);
        avk_config_describe(cfg, out);
        fclose(out);
        ck_assert_msg(strstr(listing,
                             "  counter.limit                          how far the counter "
                             "counts [3]\n"),
                      "%s", listing);
        ck_assert_msg(strstr(listing, "  counter.name                           what the counter "
                                      "is called\n"),
                      "%s", listing);
        ck_assert_msg(strstr(listing, "  topic.partitions "), "%s", listing);
        ck_assert_msg(strstr(listing, "  kafka.<property> "), "%s", listing);
        free(listing);
}
END_TEST

/* One properties file may serve every command: each knows every service's keys. */
START_TEST(every_command_knows_every_services_keys)
{
        static const char *const keys[] = {
            "intake.spool.dir",  "gateway.listen",   "routing.rules.file", "router.group.id",
            "notify.group.id",   "deadlines.file",   "tracker.tick.ms",    "analysis.group.id",
            "analysis.sink.url", "dashboard.listen", "directory.file",     "log.level"};
        avk_config_t *all = avk_cli_config_new();

        ck_assert_ptr_nonnull(all);
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                ck_assert_msg(avk_config_set(all, keys[i], "1", err, sizeof(err)) == 0 ||
                                  strstr(err, "unknown configuration key") == NULL,
                              "%s", err);
        ck_assert_int_eq(avk_config_set(all, "tracker.tick.ms", "5", err, sizeof(err)), -1);
        ck_assert_str_eq(err, "tracker.tick.ms: 5 is outside 10..60000");
        ck_assert_int_eq(avk_config_get_int(all, "dashboard.overdue.max"), 500);
        avk_config_destroy(all);
}
END_TEST

START_TEST(configured_instance_name_is_the_instance_id)
{
        char id[256];
        ck_assert_int_eq(avk_config_set(cfg, "instance.name", "router-a", err, sizeof(err)), 0);
        avk_kafka_instance_id(cfg, "router", id, sizeof(id));
        ck_assert_str_eq(id, "router-a");
}
END_TEST

START_TEST(default_instance_id_is_the_host_and_the_service)
{
        char host[256], want[600], id[600];
        ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
        snprintf(want, sizeof(want), "%s-notify", host);
        avk_kafka_instance_id(cfg, "notify", id, sizeof(id));
        ck_assert_str_eq(id, want);
}
END_TEST

static Suite *config_suite(void)
{
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, defaults_are_in_force_until_set);
        tcase_add_test(tc, unknown_key_is_an_error_naming_it);
        tcase_add_test(tc, bad_values_are_errors_naming_key_and_reason);
        tcase_add_test(tc, kafka_keys_are_checked_by_librdkafka_and_passed_through);
        tcase_add_test(tc, file_with_comments_and_spaces_loads);
        tcase_add_test(tc, file_errors_name_path_and_line);
        tcase_add_test(tc, command_line_pairs_need_an_equals_sign);
        tcase_add_test(tc, a_services_keys_are_known_and_validated_once_its_table_is_added);
        tcase_add_test(tc, a_key_is_defined_once);
        tcase_add_test(tc, the_listing_holds_every_key_added_with_its_default);
        tcase_add_test(tc, every_command_knows_every_services_keys);
        tcase_add_test(tc, configured_instance_name_is_the_instance_id);
        tcase_add_test(tc, default_instance_id_is_the_host_and_the_service);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(config_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
