/* bench_window: see window.h. */
#include "window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The broker's user + system ticks (/proc/PID/stat), or -1. */
static long long broker_ticks(void)
{
        const char *pid = getenv("AVK_BENCH_BROKER_PID");
        char path[64], line[1024];
        if (!pid || !*pid || strspn(pid, "0123456789") != strlen(pid) || strlen(pid) > 10)
                return -1;
        snprintf(path, sizeof(path), "/proc/%s/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return -1;
        long long utime = -1, stime = -1;
        /* The command's name may hold spaces: the fields after it follow its last ')'. */
        if (fgets(line, sizeof(line), f)) {
                char *after = line;
                for (char *p = line; *p; p++)
                        if (*p == ')')
                                after = p + 1;
                if (sscanf(after, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &utime,
                           &stime) != 2)
                        utime = -1;
        }
        fclose(f);
        return utime < 0 ? -1 : utime + stime;
}

/* The machine's idle (idle + iowait) and total ticks (/proc/stat's first line). */
static void machine_ticks(unsigned long long *idle, unsigned long long *total)
{
        unsigned long long v[8] = {0};
        FILE *f = fopen("/proc/stat", "r");
        *idle = *total = 0;
        if (!f)
                return;
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) == 8) {
                *idle = v[3] + v[4];
                for (int i = 0; i < 8; i++)
                        *total += v[i];
        }
        fclose(f);
}

void bench_window_open(struct bench_window *w)
{
        w->broker_ticks = broker_ticks();
        machine_ticks(&w->idle, &w->total);
}

void bench_window_print(const struct bench_window *w, const char *name, long count)
{
        unsigned long long idle, total;
        long long broker = broker_ticks();
        machine_ticks(&idle, &total);
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        double idle_cores =
            total > w->total ? (double)(idle - w->idle) * (double)cores / (double)(total - w->total)
                             : 0;
        if (broker >= 0 && w->broker_ticks >= 0)
                printf("%s: broker %.1f us of CPU per record over the window; %.2f cores left "
                       "idle\n",
                       name,
                       (double)(broker - w->broker_ticks) * 1e6 / (double)sysconf(_SC_CLK_TCK) /
                           (double)count,
                       idle_cores);
        else
                printf("%s: %.2f cores left idle over the window\n", name, idle_cores);
}
