/*
 * small_fs: a file system of a few hundred kilobytes, to fill up - a tmpfs
 * mounted on a new directory under /tmp (the tests run as root). A test
 * that cannot mount one (no privilege, no tmpfs) is skipped with the
 * reason, not failed. A test that fails leaves its mount behind (Check
 * ends its process there): small_fs_sweep(), an unchecked teardown of the
 * test case, unmounts what its tests left.
 */
#ifndef AVK_TEST_SMALL_FS_H
#define AVK_TEST_SMALL_FS_H

#include <stddef.h>

/** A mounted small file system. */
struct small_fs {
        char dir[64]; /**< where it is mounted */
};

/**
 * @brief Mounts a tmpfs of bytes on a new directory.
 * @returns 0, or -1 with why not in why (nothing is left behind).
 */
int small_fs_mount(struct small_fs *fs, size_t bytes, char *why, size_t why_size);

/**
 * @brief Fills the file system with dir/filler until it has no room left.
 * @returns the bytes the filler took.
 */
size_t small_fs_fill(struct small_fs *fs);

/** @brief Frees the filler's space. */
void small_fs_free(struct small_fs *fs);

/** @brief Unmounts it and removes its directory. */
void small_fs_unmount(struct small_fs *fs);

/** @brief Unchecked setup: the mounts from now on are this process's to sweep. */
void small_fs_setup(void);

/** @brief Unchecked teardown: unmounts every small_fs its tests left mounted. */
void small_fs_sweep(void);

#endif
