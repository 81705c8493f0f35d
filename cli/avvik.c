/*
 * avvik: one program, subcommands in the manner of git or kcat. Each
 * subcommand lives with its side of the system (producer/, consumer/, cli/)
 * and parses its own options.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"

struct command {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *summary;
};

static int cmd_config(int argc, char **argv);

static const struct command commands[] = {
    {"broker", avk_cmd_broker, "run the embedded Kafka broker (librdkafka's mock cluster)"},
    {"report", avk_cmd_report, "file deviations or responses from JSON"},
    {"tail", avk_cmd_tail, "print a topic's records as JSON"},
    {"config", cmd_config, "list the configuration keys and their defaults"},
};

static void usage(FILE *out)
{
        fprintf(out, "usage: avvik <command> [options]\n\ncommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
        fprintf(out, "\n'avvik <command> --help' describes a command.\n");
}

static int cmd_config(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        printf("configuration keys (in a -c file as key=value, or as -X key=value):\n");
        avk_config_describe(stdout);
        return AVK_EXIT_OK;
}

int avk_cli_config_opt(avk_config_t *cfg, int opt, const char *arg)
{
        char err[512];
        int rc;
        if (opt == 'c')
                rc = avk_config_load(cfg, arg, err, sizeof(err));
        else if (opt == 'X')
                rc = avk_config_set_pair(cfg, arg, err, sizeof(err));
        else
                return 0;
        if (rc != 0) {
                fprintf(stderr, "avvik: %s\n", err);
                return -1;
        }
        enum avk_log_level level;
        if (avk_log_level_parse(avk_config_get(cfg, "log.level"), &level) == 0)
                avk_log_set_level(level);
        return 1;
}

int main(int argc, char **argv)
{
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? AVK_EXIT_USAGE : AVK_EXIT_OK;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].run(argc - 1, argv + 1);
        }
        fprintf(stderr, "avvik: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return AVK_EXIT_USAGE;
}
