/*
 * bench_drain: how fast the intake spool drains into a running broker.
 *
 *   bench_drain BOOTSTRAP_FILE SAMPLE_JSON SPOOL_DIR COUNT
 *     fills SPOOL_DIR with COUNT copies of the deviation in SAMPLE_JSON,
 *     each with a new id, while Kafka cannot be reached (a reporter pointed
 *     at a closed port), then starts a reporter on the same spool against
 *     the broker and prints the documents per second from its creation
 *     until the spool is empty (Kafka's answer at start-up and every receipt
 *     or duplicate check included).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "producer/intake/intake_config.h"
#include "producer/intake/reporter.h"

static double now_s(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The configuration of a reporter on spool_dir with key set to value; the
 * ack timeout is ack_ms. */
static avk_config_t *config(const char *spool_dir, const char *ack_ms, const char *key,
                            const char *value)
{
        char err[512];
        avk_config_t *cfg = avk_config_new();
        if (avk_config_add_keys(cfg, &avk_intake_config_keys, err, sizeof(err)) != 0 ||
            avk_config_set(cfg, "intake.spool.dir", spool_dir, err, sizeof(err)) != 0 ||
            avk_config_set(cfg, "intake.ack.timeout.ms", ack_ms, err, sizeof(err)) != 0 ||
            avk_config_set(cfg, "kafka.log_level", "0", err, sizeof(err)) != 0 ||
            avk_config_set(cfg, key, value, err, sizeof(err)) != 0) {
                fprintf(stderr, "bench_drain: %s\n", err);
                exit(2);
        }
        return cfg;
}

static avk_reporter_t *reporter(const avk_config_t *cfg)
{
        char err[1024];
        avk_reporter_t *r = avk_reporter_new(cfg, err, sizeof(err));
        if (!r) {
                fprintf(stderr, "bench_drain: %s\n", err);
                exit(1);
        }
        return r;
}

static void ignore(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        (void)opaque;
        (void)id;
        (void)reason;
        if (result != AVK_SPOOLED) {
                fprintf(stderr, "bench_drain: a document was not spooled (%d)\n", result);
                exit(1);
        }
}

int main(int argc, char **argv)
{
        if (argc != 5) {
                fprintf(stderr, "usage: bench_drain BOOTSTRAP_FILE SAMPLE_JSON SPOOL_DIR COUNT\n");
                return 2;
        }
        long count = atol(argv[4]);
        json_error_t jerr;
        json_t *doc = json_load_file(argv[2], 0, &jerr);
        if (!doc || json_object_del(doc, "deviation_id") != 0) {
                fprintf(stderr, "bench_drain: %s: %s\n", argv[2],
                        doc ? "no deviation_id" : jerr.text);
                return 2;
        }

        /* Kafka is given up on after a second; the drain gets the default. */
        avk_config_t *offline = config(argv[3], "1000", "kafka.bootstrap.servers", "127.0.0.1:1");
        avk_reporter_t *r = reporter(offline);
        for (long i = 0; i < count; i++) {
                char id[AVK_ID_SIZE];
                struct avk_errors errs;
                if (avk_reporter_submit(r, AVK_KIND_DEVIATION, doc, id, &errs, ignore, NULL) !=
                    AVK_FILED) {
                        fprintf(stderr, "bench_drain: the sample was not accepted\n");
                        return 1;
                }
        }
        avk_reporter_destroy(r); /* waits until every document is in the spool */
        avk_config_destroy(offline);

        avk_config_t *cfg = config(argv[3], "10000", "bootstrap.file", argv[1]);
        double start = now_s();
        r = reporter(cfg);
        struct avk_reporter_stats st;
        for (avk_reporter_stats(r, &st); st.spool_pending > 0; avk_reporter_stats(r, &st))
                usleep(2000);
        double elapsed = now_s() - start;
        avk_reporter_destroy(r);
        avk_config_destroy(cfg);
        json_decref(doc);
        printf("drained %ld documents in %.2f s: %.0f documents/s\n", count, elapsed,
               (double)count / elapsed);
        return 0;
}
