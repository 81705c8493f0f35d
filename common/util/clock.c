/* avk_clock: see clock.h. */
#include "common/util/clock.h"

#include <stdio.h>
#include <time.h>

void avk_clock_init(avk_clock_t *clock, const char *file)
{
        clock->file = file;
        atomic_init(&clock->last_ms, 0);
}

int64_t avk_clock_system_ms(void)
{
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t avk_clock_mono_ns(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int64_t avk_clock_mono_us(void)
{
        return avk_clock_mono_ns() / 1000;
}

int64_t avk_clock_mono_ms(void)
{
        return avk_clock_mono_ns() / 1000000;
}

struct timespec avk_clock_deadline(int64_t timeout_ms)
{
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += (time_t)(timeout_ms / 1000);
        t.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (t.tv_nsec >= 1000000000) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000;
        }
        return t;
}

int64_t avk_clock_now(avk_clock_t *clock)
{
        if (!clock->file)
                return avk_clock_system_ms();
        /* A writer replaces the file by rename, so a read sees a whole number. */
        FILE *f = fopen(clock->file, "r");
        long long v;
        if (f) {
                if (fscanf(f, "%lld", &v) == 1) {
                        int64_t last = atomic_load(&clock->last_ms);
                        while (v > last &&
                               !atomic_compare_exchange_weak(&clock->last_ms, &last, (int64_t)v))
                                ;
                }
                fclose(f);
        }
        return atomic_load(&clock->last_ms);
}
