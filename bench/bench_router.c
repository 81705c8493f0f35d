/*
 * bench_router: the router (consumer/route/router.h) in-process against a running
 * broker (bootstrap file), in a consumer group of its own.
 *
 *   bench_router throughput BOOTSTRAP_FILE SOURCE_DIR COUNT
 *     routes topic.reported from the beginning until COUNT inputs are done
 *     (every output acknowledged) and prints the rate over the window
 *     raw_pipe measures: from the first input taken from the consumer to
 *     the COUNT-th done (the group join and the state rebuild at assignment
 *     are outside it). The statistics are sampled every 2 ms: either end of
 *     the window may be seen up to 2 ms late, and a finer period's wake-ups
 *     take CPU from the router on these 2 cores. Also the broker's CPU and
 *     the idle cores over the window (bench/window.h).
 *
 *   bench_router latency BOOTSTRAP_FILE SOURCE_DIR RATE COUNT
 *     files COUNT deviations at RATE per second with the reporter library
 *     while the router runs, reads topic.routed, and prints p50/p99/max of
 *     the time from the reporter's acknowledgement to the routed record's
 *     arrival at a consumer: of the deviations after the first two seconds
 *     (the rate held), and apart the first two seconds', filed to a router
 *     that had been idle (its partitions paused, records looked for every
 *     500 ms and fetched about a second later: docs/architecture.md, "The
 *     service kernel").
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/window.h"
#include "common/util/heap.h"
#include "common/kafka/kafka.h"
#include "consumer/route/router.h"
#include "consumer/route/router_config.h"
#include "producer/intake/intake_config.h"
#include "producer/intake/reporter.h"

static double now_s(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct running {
        avk_router_t *router;
        pthread_t thread;
        char err[512];
};

static void *run(void *arg)
{
        struct running *rr = arg;
        if (avk_router_run(rr->router, rr->err, sizeof(rr->err)) != 0)
                fprintf(stderr, "bench_router: %s\n", rr->err);
        return NULL;
}

static avk_config_t *config(const char *bootstrap_file, const char *src)
{
        char err[512], path[1024], group[64];
        avk_config_t *cfg = avk_config_new();
        snprintf(group, sizeof(group), "bench-router-%ld", (long)time(NULL));
        snprintf(path, sizeof(path), "%s/data/directory.json", src);
        /* The router routes; the latency run files deviations through the intake library. */
        int rc = avk_config_add_keys(cfg, &avk_router_config_keys, err, sizeof(err)) |
                 avk_config_add_keys(cfg, &avk_intake_config_keys, err, sizeof(err)) |
                 avk_config_set(cfg, "bootstrap.file", bootstrap_file, err, sizeof(err)) |
                 avk_config_set(cfg, "directory.file", path, err, sizeof(err)) |
                 avk_config_set(cfg, "router.group.id", group, err, sizeof(err)) |
                 avk_config_set(cfg, "kafka.log_level", "3", err, sizeof(err));
        snprintf(path, sizeof(path), "%s/data/routing-rules.json", src);
        rc |= avk_config_set(cfg, "routing.rules.file", path, err, sizeof(err));
        if (rc) {
                fprintf(stderr, "bench_router: %s\n", err);
                exit(2);
        }
        return cfg;
}

static void start(struct running *rr, const avk_config_t *cfg)
{
        char err[4096];
        rr->router = avk_router_new(cfg, err, sizeof(err));
        if (!rr->router || pthread_create(&rr->thread, NULL, run, rr) != 0) {
                fprintf(stderr, "bench_router: %s\n", err);
                exit(1);
        }
}

static void stop(struct running *rr)
{
        avk_router_stop(rr->router);
        pthread_join(rr->thread, NULL);
        avk_router_destroy(rr->router);
}

/* Samples the statistics of a router running on the main thread, prints the
 * rate once count inputs are done and stops it. */
struct watch {
        avk_router_t *router;
        long count;
        clockid_t router_clock; /* CPU time of the thread running the router */
};

/* CPU seconds of clock. */
static double cpu_s(clockid_t clock)
{
        struct timespec t;
        clock_gettime(clock, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long minor_faults(void)
{
        struct rusage u;
        getrusage(RUSAGE_SELF, &u);
        return u.ru_minflt;
}

static void *watch(void *arg)
{
        struct watch *w = arg;
        struct avk_router_stats s;
        double first = 0, first_done = 0, thread0 = 0, process0 = 0;
        long faults0 = 0;
        struct bench_window window = {0};
        do {
                usleep(2000);
                avk_router_stats(w->router, &s);
                if (!first && s.inputs_taken > 0) {
                        first = now_s();
                        thread0 = cpu_s(w->router_clock);
                        process0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
                        faults0 = minor_faults();
                        bench_window_open(&window);
                }
                if (!first_done && s.inputs_done > 0)
                        first_done = now_s();
        } while (s.inputs_done < (uint64_t)w->count);
        double end = now_s(), secs = end - first;
        double thread = cpu_s(w->router_clock) - thread0;
        double process = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - process0;
        printf("router: %ld records in %.3f s: %.0f records/s (1 output each: the routed event; "
               "first done after %.0f ms)\n",
               w->count, secs, (double)w->count / secs, (first_done - first) * 1000);
        /* CPU per record is steadier than the rate on a shared machine: it
         * compares builds when other work takes the cores. */
        printf("router: CPU per record %.1f us on the router's thread, %.1f us in the process; "
               "%.2f page faults per record\n",
               thread * 1e6 / (double)w->count, process * 1e6 / (double)w->count,
               (double)(minor_faults() - faults0) / (double)w->count);
        bench_window_print(&window, "router", w->count);
        avk_router_stop(w->router);
        return NULL;
}

/* The router runs on the main thread, as in 'avvik route': its allocations
 * then come from glibc's main arena, which avk_heap_tune() pads; a thread's
 * arena grows a page range at a time. */
static int throughput(const char *bootstrap_file, const char *src, long count)
{
        char err[4096];
        avk_config_t *cfg = config(bootstrap_file, src);
        struct watch w = {.router = avk_router_new(cfg, err, sizeof(err)), .count = count};
        pthread_t watcher;
        if (!w.router || pthread_getcpuclockid(pthread_self(), &w.router_clock) != 0 ||
            pthread_create(&watcher, NULL, watch, &w) != 0) {
                fprintf(stderr, "bench_router: %s\n", err);
                exit(1);
        }
        int rc = avk_router_run(w.router, err, sizeof(err));
        if (rc != 0)
                fprintf(stderr, "bench_router: %s\n", err);
        pthread_join(watcher, NULL);
        avk_router_destroy(w.router);
        avk_config_destroy(cfg);
        return rc ? 1 : 0;
}

/* ---- latency ---- */

struct sample {
        char id[AVK_ID_SIZE];
        double acked, arrived;
};

static struct sample *samples;
static atomic_long sample_cnt; /* samples[0..sample_cnt) are filed */
static atomic_long arrived_cnt;
static atomic_int reading;

static struct sample *find(const char *id, size_t len)
{
        for (long i = atomic_load(&sample_cnt) - 1; i >= 0; i--) { /* recent first */
                if (strlen(samples[i].id) == len && memcmp(samples[i].id, id, len) == 0)
                        return &samples[i];
        }
        return NULL;
}

static void on_filed(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        (void)id;
        (void)reason;
        struct sample *s = opaque;
        if (result == AVK_FILED)
                s->acked = now_s();
}

static void *read_routed(void *arg)
{
        rd_kafka_t *rk = arg;
        while (atomic_load(&reading)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
                if (!m)
                        continue;
                double t = now_s();
                if (!m->err && m->key) {
                        struct sample *s = find(m->key, m->key_len);
                        if (s && !s->arrived) {
                                s->arrived = t;
                                atomic_fetch_add(&arrived_cnt, 1);
                        }
                }
                rd_kafka_message_destroy(m);
        }
        return NULL;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static int latency(const char *bootstrap_file, const char *src, long rate, long count)
{
        char err[512], path[1024];
        avk_config_t *cfg = config(bootstrap_file, src);
        snprintf(path, sizeof(path), "%s/deploy/samples/01-discharge-information-missing.json",
                 src);
        json_error_t jerr;
        json_t *doc = json_load_file(path, 0, &jerr);
        if (!doc) {
                fprintf(stderr, "bench_router: %s: %s\n", path, jerr.text);
                return 1;
        }
        json_object_del(doc, "deviation_id");
        json_object_set_new(doc, "receiver", json_object());
        samples = calloc((size_t)count, sizeof(*samples));
        /* A reader of topic.routed from its end, polling briefly. */
        rd_kafka_conf_t *conf = avk_kafka_conf(cfg, err, sizeof(err));
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", NULL, 0);
        rd_kafka_t *rk = avk_kafka_consumer_new(conf, "bench-router-latency", err, sizeof(err));
        int partitions;
        if (!rk ||
            avk_kafka_assign_all(rk, avk_config_get(cfg, "topic.routed"), RD_KAFKA_OFFSET_END,
                                 10000, &partitions, err, sizeof(err)) != 0) {
                fprintf(stderr, "bench_router: %s\n", err);
                return 1;
        }
        struct running rr;
        start(&rr, cfg);
        struct avk_router_stats s;
        do { /* the router has joined its group */
                usleep(10000);
                avk_router_stats(rr.router, &s);
        } while (s.partitions == 0);
        atomic_store(&reading, 1);
        pthread_t reader;
        pthread_create(&reader, NULL, read_routed, rk);
        sleep(1); /* the reader's fetches are under way */
        avk_reporter_t *rep = avk_reporter_new(cfg, err, sizeof(err));
        double t0 = now_s();
        for (long i = 0; i < count; i++) {
                double due = t0 + (double)i / (double)rate, wait = due - now_s();
                if (wait > 0)
                        usleep((useconds_t)(wait * 1e6));
                struct avk_errors errs;
                avk_reporter_submit(rep, AVK_KIND_DEVIATION, doc, samples[i].id, &errs, on_filed,
                                    &samples[i]);
                atomic_store(&sample_cnt, i + 1);
        }
        double filed_s = now_s() - t0;
        for (int i = 0; i < 200 && atomic_load(&arrived_cnt) < count; i++)
                usleep(50000);
        atomic_store(&reading, 0);
        pthread_join(reader, NULL);
        double *lat = calloc((size_t)count, sizeof(*lat));
        /* The first two seconds' apart: the router was idle before them. */
        long first = 2 * rate < count ? 2 * rate : count, n = 0, steady = 0;
        double first_max = 0;
        for (long i = 0; i < count; i++) {
                if (!samples[i].acked || !samples[i].arrived)
                        continue;
                double ms = (samples[i].arrived - samples[i].acked) * 1000;
                if (i < first)
                        first_max = ms > first_max ? ms : first_max;
                else
                        lat[steady++] = ms;
                n++;
        }
        qsort(lat, (size_t)steady, sizeof(*lat), cmp_double);
        printf("latency at %.0f deviations/s: %ld of %ld matched; ack -> routed readable after "
               "the first two seconds: p50 %.1f ms, p99 %.1f ms, max %.1f ms; in the first two "
               "seconds (%ld, the router idle before): max %.1f ms\n",
               (double)count / filed_s, n, count, steady ? lat[steady / 2] : 0,
               steady ? lat[(steady * 99) / 100] : 0, steady ? lat[steady - 1] : 0, first,
               first_max);
        free(lat);
        avk_reporter_destroy(rep);
        stop(&rr);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        free(samples);
        json_decref(doc);
        avk_config_destroy(cfg);
        return 0;
}

int main(int argc, char **argv)
{
        avk_heap_tune(); /* as 'avvik route' runs */
        if (argc == 5 && strcmp(argv[1], "throughput") == 0)
                return throughput(argv[2], argv[3], atol(argv[4]));
        if (argc == 6 && strcmp(argv[1], "latency") == 0)
                return latency(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
        fprintf(stderr, "usage: bench_router throughput BOOTSTRAP_FILE SOURCE_DIR COUNT\n"
                        "       bench_router latency BOOTSTRAP_FILE SOURCE_DIR RATE COUNT\n");
        return 2;
}
