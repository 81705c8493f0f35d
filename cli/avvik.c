/*
 * avvik: one program, subcommands in the manner of git or kcat. Each
 * subcommand lives with its side of the system (producer/, consumer/, cli/)
 * and parses its own options.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util/heap.h"
#include "common/util/log.h"

struct command {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *summary;
};

static const struct command commands[] = {
    {"broker", avk_cmd_broker, "run the embedded Kafka broker (librdkafka's mock cluster)"},
    {"report", avk_cmd_report, "file deviations or responses from JSON"},
    {"tail", avk_cmd_tail, "print a topic's records as JSON"},
    {"gateway", avk_cmd_gateway, "serve the HTTP intake (deviations, responses, FHIR)"},
    {"route", avk_cmd_route, "route deviations to the responsible party and unit"},
    {"notify", avk_cmd_notify, "deliver routed deviations to the receivers' inboxes and webhooks"},
    {"track", avk_cmd_track, "track deadlines, remind, and escalate up the ladder"},
    {"analyse", avk_cmd_analyse, "forward the pseudonymised analysis stream (topic, HTTP sink)"},
    {"token", avk_cmd_token,
     "make a bearer token for the gateway (a party) or the dashboard (a role)"},
    {"dashboard", avk_cmd_dashboard, "serve the statistics page and the yearly follow-up report"},
    {"config", avk_cmd_config, "list the configuration keys; check properties files"},
};

static void usage(FILE *out)
{
        fprintf(out, "usage: avvik <command> [options]\n\ncommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
        fprintf(out, "\n'avvik <command> --help' describes a command.\n");
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

int avk_cli_write_atomically(const char *path, const char *content)
{
        char dir[512], tmp[600];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                        return -1;
        }
        snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
        FILE *f = fopen(tmp, "w");
        if (!f)
                return -1;
        int ok = fprintf(f, "%s\n", content) > 0;
        ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
        ok &= fclose(f) == 0;
        if (!ok || rename(tmp, path) != 0) {
                unlink(tmp);
                return -1;
        }
        return 0;
}

int avk_cli_service_options(int argc, char **argv, avk_config_t *cfg, const char *usage)
{
        static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
        int opt;
        while ((opt = getopt_long(argc, argv, "c:X:h", longopts, NULL)) != -1) {
                int handled = avk_cli_config_opt(cfg, opt, optarg);
                if (handled < 0)
                        return AVK_EXIT_USAGE;
                if (handled)
                        continue;
                fputs(usage, opt == 'h' ? stdout : stderr);
                return opt == 'h' ? AVK_EXIT_OK : AVK_EXIT_USAGE;
        }
        if (optind < argc) {
                fputs(usage, stderr);
                return AVK_EXIT_USAGE;
        }
        return -1;
}

void avk_cli_block_stop_signals(sigset_t *sigs)
{
        sigemptyset(sigs);
        sigaddset(sigs, SIGINT);
        sigaddset(sigs, SIGTERM);
        pthread_sigmask(SIG_BLOCK, sigs, NULL);
}

int main(int argc, char **argv)
{
        avk_heap_tune();
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
