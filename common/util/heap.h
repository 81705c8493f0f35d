/*
 * avk_heap: process-wide tuning of glibc's allocator, shared by the avvik
 * command and the benchmarks that measure its services in-process.
 */
#ifndef AVK_HEAP_H
#define AVK_HEAP_H

/**
 * @brief Keeps freed heap for reuse instead of giving it back to the kernel
 * after every burst. Call once, first thing in main().
 */
void avk_heap_tune(void);

#endif
