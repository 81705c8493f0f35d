/*
 * avvik config: lists every configuration key with its default, and
 * 'avvik config check FILE...' checks properties files without starting a
 * service - every key known to this binary and every value valid, kafka.*
 * keys against librdkafka's own table - so a deployment's files can be
 * checked where no Kafka cluster runs (deploy/, tests/cli/deploy_check.sh).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util/errors.h"

static const char usage_text[] =
    "usage: avvik config                 list the configuration keys and their defaults\n"
    "       avvik config check FILE...   check properties files: every line, every error\n"
    "Check prints 'FILE: ok' for a good file and 'FILE:LINE: key: reason' on stderr for\n"
    "each bad line (an unknown key, a bad value); exit 0 when every file is good, else 2.\n"
    "It checks keys and values only: files the values name are not opened and no\n"
    "service or broker is contacted.\n";

static int check_files(int cnt, char **paths)
{
        int rc = AVK_EXIT_OK;
        for (int i = 0; i < cnt; i++) {
                avk_config_t *cfg = avk_cli_config_new();
                if (!cfg) {
                        fprintf(stderr, "avvik config check: out of memory\n");
                        return AVK_EXIT_USAGE;
                }
                struct avk_errors errs;
                avk_errors_init(&errs);
                if (avk_config_load_all(cfg, paths[i], &errs) == 0) {
                        printf("%s: ok\n", paths[i]);
                } else {
                        for (size_t e = 0; e < errs.cnt; e++)
                                fprintf(stderr, "%s\n", errs.msg[e]);
                        if (errs.dropped)
                                fprintf(stderr, "%s: %zu more errors\n", paths[i], errs.dropped);
                        rc = AVK_EXIT_USAGE;
                }
                avk_config_destroy(cfg);
        }
        return rc;
}

int avk_cmd_config(int argc, char **argv)
{
        if (argc == 1) {
                avk_config_t *cfg = avk_cli_config_new();

                if (!cfg) {
                        fprintf(stderr, "avvik config: out of memory\n");
                        return AVK_EXIT_USAGE;
                }
                printf("configuration keys (in a -c file as key=value, or as -X key=value):\n");
                avk_config_describe(cfg, stdout);
                avk_config_destroy(cfg);
                return AVK_EXIT_OK;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fputs(usage_text, stdout);
                return AVK_EXIT_OK;
        }
        if (strcmp(argv[1], "check") == 0 && argc > 2)
                return check_files(argc - 2, argv + 2);
        fputs(usage_text, stderr);
        return AVK_EXIT_USAGE;
}
