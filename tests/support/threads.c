/* threads: see threads.h. */
#include "tests/support/threads.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include <check.h>

void threads_file(const char *tid, const char *file, char *line, size_t size)
{
        char path[300];
        snprintf(path, sizeof(path), "/proc/%s/%s", tid, file);
        FILE *f = fopen(path, "r");
        line[0] = '\0';
        if (f && !fgets(line, (int)size, f))
                line[0] = '\0';
        if (f)
                fclose(f);
}

int threads_named(const char *prefix, int (*keep)(const char *tid, void *opaque), void *opaque)
{
        DIR *tasks = opendir("/proc/self/task");
        ck_assert_ptr_nonnull(tasks);
        int n = 0;
        for (struct dirent *t; (t = readdir(tasks));) {
                char comm[32];
                if (t->d_name[0] == '.')
                        continue;
                threads_file(t->d_name, "comm", comm, sizeof(comm));
                n += strncmp(comm, prefix, strlen(prefix)) == 0 &&
                     (!keep || keep(t->d_name, opaque));
        }
        closedir(tasks);
        return n;
}
