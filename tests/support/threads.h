/*
 * threads: this process's threads as /proc shows them, for tests that check
 * what a service does to its own threads and librdkafka's (their number,
 * priority, timer slack).
 */
#ifndef AVK_TEST_THREADS_H
#define AVK_TEST_THREADS_H

#include <stddef.h>

/**
 * @brief The first line of file in /proc/TID of thread tid of this process,
 * or "" when the thread has ended. /proc/TID, not /proc/self/task/TID: only
 * the former has timerslack_ns.
 */
void threads_file(const char *tid, const char *file, char *line, size_t size);

/**
 * @brief How many threads of this process have a name starting with prefix
 * and, when keep is not NULL, keep(tid, opaque) nonzero.
 */
int threads_named(const char *prefix, int (*keep)(const char *tid, void *opaque), void *opaque);

#endif
