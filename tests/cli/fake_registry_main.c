/*
 * avk_test_registry: the fake Schema Registry (tests/support/fake_registry.h)
 * as a process of its own, for end-to-end tests that take the registry away
 * and bring it back. Its schemas are kept in IDS_FILE, so a registry started
 * again on the same port and file hands out the ids it did before, as a real
 * registry does; a SIGKILL loses none (each new schema is flushed at once).
 *
 * usage: avk_test_registry PORT_FILE IDS_FILE [PORT]
 * Listens on 127.0.0.1:PORT (default: a free port), answering 500 until the
 * kept schemas are loaded, writes the port to PORT_FILE once it answers, and
 * runs until SIGTERM or SIGINT (exit 0).
 * Exit 1 with the reason when it cannot start.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/fake_registry.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

/* Writes the port to a temporary file renamed into place: a reader never sees half. */
static int write_port_file(const char *path, const char *url)
{
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        if (!f)
                return -1;
        const char *port = strrchr(url, ':') + 1;
        int failed = fprintf(f, "%s\n", port) < 0;
        failed |= fclose(f) != 0;
        return failed || rename(tmp, path) != 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
        if (argc < 3 || argc > 4) {
                fputs("usage: avk_test_registry PORT_FILE IDS_FILE [PORT]\n", stderr);
                return 1;
        }
        char *end = NULL;
        unsigned long port = argc == 4 ? strtoul(argv[3], &end, 10) : 0;
        if (argc == 4 && (*argv[3] == '\0' || *end != '\0' || port > 65535)) {
                fprintf(stderr, "avk_test_registry: %s: not a port\n", argv[3]);
                return 1;
        }
        struct sigaction action = {.sa_handler = on_signal};
        sigaction(SIGTERM, &action, NULL);
        sigaction(SIGINT, &action, NULL);

        char err[512] = "";
        int rc = 1;
        /* Answers 500 (a transient error to its clients) until the kept ids are back. */
        struct fake_registry *fake =
            fake_registry_start_on(FAKE_REGISTRY_FAIL_500, (unsigned)port, err, sizeof(err));
        if (!fake || fake_registry_keep_in(fake, argv[2], err, sizeof(err)) != 0) {
                fprintf(stderr, "avk_test_registry: %s\n", err);
                goto out;
        }
        fake_registry_set_mode(fake, FAKE_REGISTRY_NORMAL);
        if (write_port_file(argv[1], fake_registry_url(fake)) != 0) {
                fprintf(stderr, "avk_test_registry: %s: cannot write\n", argv[1]);
                goto out;
        }
        while (!stop)
                usleep(100 * 1000);
        rc = 0;
out:
        fake_registry_stop(fake);
        return rc;
}
