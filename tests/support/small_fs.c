/* small_fs: see small_fs.h. */
#include "tests/support/small_fs.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "tests/support/test_data.h"

/* The test runner's process (Check forks a test from it): its mounts are
 * named after it, so a sweep takes no other runner's. */
static pid_t runner;

/* "avk-small-fs-<runner>": mkdtemp adds a dash and six characters. */
static void prefix(char *buf, size_t size)
{
        snprintf(buf, size, "avk-small-fs-%ld", (long)(runner ? runner : getpid()));
}

int small_fs_mount(struct small_fs *fs, size_t bytes, char *why, size_t why_size)
{
        char name[48];
        prefix(name, sizeof(name));
        if (!test_data_temp_dir(name, fs->dir, sizeof(fs->dir))) {
                snprintf(why, why_size, "mkdtemp: %s", strerror(errno));
                return -1;
        }
        char options[64];
        snprintf(options, sizeof(options), "size=%zu,mode=0700", bytes);
        if (mount("tmpfs", fs->dir, "tmpfs", 0, options) != 0) {
                snprintf(why, why_size, "cannot mount a %zu-byte tmpfs on %s: %s", bytes, fs->dir,
                         strerror(errno));
                rmdir(fs->dir);
                return -1;
        }
        return 0;
}

static void filler_path(const struct small_fs *fs, char *path, size_t size)
{
        snprintf(path, size, "%s/filler", fs->dir);
}

size_t small_fs_fill(struct small_fs *fs)
{
        char path[96];
        filler_path(fs, path, sizeof(path));
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
        static const char block[4096];
        size_t took = 0;
        /* Block by block, then byte by byte: not a byte left. */
        for (size_t chunk = sizeof(block); chunk; chunk = chunk > 1 ? chunk / 2 : 0) {
                ssize_t n;
                while ((n = write(fd, block, chunk)) > 0)
                        took += (size_t)n;
                ck_assert_msg(n < 0 && errno == ENOSPC, "%s: %s", path,
                              n < 0 ? strerror(errno) : "short write");
        }
        ck_assert_int_eq(close(fd), 0);
        return took;
}

void small_fs_free(struct small_fs *fs)
{
        char path[96];
        filler_path(fs, path, sizeof(path));
        ck_assert_msg(unlink(path) == 0, "%s: %s", path, strerror(errno));
}

void small_fs_unmount(struct small_fs *fs)
{
        ck_assert_msg(umount(fs->dir) == 0, "umount %s: %s", fs->dir, strerror(errno));
        ck_assert_msg(rmdir(fs->dir) == 0, "rmdir %s: %s", fs->dir, strerror(errno));
}

void small_fs_setup(void)
{
        runner = getpid();
}

void small_fs_sweep(void)
{
        char name[48], mine[64];
        prefix(name, sizeof(name));
        snprintf(mine, sizeof(mine), "/tmp/%s-", name);
        FILE *mounts = fopen("/proc/self/mounts", "r");
        if (!mounts)
                return; /* nothing could be mounted either */
        char line[1024], dir[512];
        while (fgets(line, sizeof(line), mounts)) {
                if (sscanf(line, "%*s %511s", dir) == 1 && strncmp(dir, mine, strlen(mine)) == 0) {
                        fprintf(stderr, "unmounting %s, left by a failed test\n", dir);
                        if (umount(dir) == 0)
                                rmdir(dir);
                }
        }
        fclose(mounts);
}
