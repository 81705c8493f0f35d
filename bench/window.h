/*
 * bench_window: what the rest of the machine did over a benchmark's window
 * - the embedded broker's CPU (its process id in AVK_BENCH_BROKER_PID) and
 * the cores left idle (/proc/stat). On these 2-core machines the broker
 * shares the cores with the side measured: a side that leaves no core idle
 * is bound by the CPU of both, not by waits (bench/RESULTS.md).
 */
#ifndef AVK_BENCH_WINDOW_H
#define AVK_BENCH_WINDOW_H

struct bench_window {
        long long broker_ticks;         /* the broker's user + system so far; -1 without one */
        unsigned long long idle, total; /* the machine's ticks so far */
};

/* Notes where the window begins. */
void bench_window_open(struct bench_window *w);

/* Prints, for the window opened in w that handled count records:
 * "NAME: broker X us of CPU per record over the window; Y cores left idle"
 * (without AVK_BENCH_BROKER_PID, the idle cores only). */
void bench_window_print(const struct bench_window *w, const char *name, long count);

#endif
