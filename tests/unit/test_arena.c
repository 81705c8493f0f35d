/*
 * Tests for avk_arena: allocations are aligned, disjoint and keep their
 * bytes while the arena lives, across chunk boundaries and past a chunk's
 * size; chunks grow from the first size to the big chunk's and are
 * faulted in a step ahead of use, not whole; destroy gives
 * everything back (ASan's leak check and munmap's result would show a
 * chunk lost or unmapped twice).
 */
#include "common/util/arena.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

START_TEST(allocations_are_aligned_disjoint_and_keep_their_bytes)
{
        avk_arena_t *a = avk_arena_new();
        ck_assert_ptr_nonnull(a);
        enum { N = 5000 };
        unsigned char *p[N];
        size_t size[N];
        /* Odd sizes from 1 to ~1 KB: 5000 of them cross several chunks. */
        for (int i = 0; i < N; i++) {
                size[i] = (size_t)(i * 37 % 1021) + 1;
                p[i] = avk_arena_alloc(a, size[i]);
                ck_assert_ptr_nonnull(p[i]);
                ck_assert_uint_eq((uintptr_t)p[i] % 16, 0);
                memset(p[i], i & 0xff, size[i]);
        }
        unsigned char expect[1024];
        for (int i = 0; i < N; i++) {
                memset(expect, i & 0xff, size[i]);
                ck_assert_msg(memcmp(p[i], expect, size[i]) == 0, "allocation %d overwritten", i);
        }
        avk_arena_destroy(a);
}
END_TEST

START_TEST(chunks_double_up_to_big_chunks)
{
        avk_arena_t *a = avk_arena_new();
        ck_assert_uint_eq(avk_arena_mapped(a), 0); /* nothing until asked */
        ck_assert_ptr_nonnull(avk_arena_alloc(a, 16));
        ck_assert_uint_eq(avk_arena_mapped(a), AVK_ARENA_FIRST_CHUNK);
        /* 6 MB in 1 KB pieces: 64 KB + 128 KB + ... + 1 MB, then 2 MB chunks. */
        size_t asked = 16;
        while (asked < (6u << 20)) {
                ck_assert_ptr_nonnull(avk_arena_alloc(a, 1024));
                asked += 1024;
        }
        size_t mapped = avk_arena_mapped(a), doubling = 0;
        for (size_t c = AVK_ARENA_FIRST_CHUNK; c < AVK_ARENA_BIG_CHUNK; c *= 2)
                doubling += c;
        ck_assert_uint_ge(mapped, asked);
        ck_assert_uint_eq((mapped - doubling) % AVK_ARENA_BIG_CHUNK, 0);
        /* The room left in the last chunk is less than a chunk. */
        ck_assert_uint_lt(mapped - asked, AVK_ARENA_BIG_CHUNK + 64 * 1024);
        avk_arena_destroy(a);
}
END_TEST

/* The kB of field ("Rss", "AnonHugePages") of the mapping holding p, from
 * /proc/self/smaps; -1 when not found. */
static long smaps_kb(const void *p, const char *field)
{
        FILE *f = fopen("/proc/self/smaps", "r");
        ck_assert_ptr_nonnull(f);
        char line[512];
        int inside = 0;
        long kb = -1;
        size_t field_len = strlen(field);
        while (kb < 0 && fgets(line, sizeof(line), f)) {
                uintptr_t lo, hi;
                if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2)
                        inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
                else if (inside && strncmp(line, field, field_len) == 0 && line[field_len] == ':')
                        kb = strtol(line + field_len + 1, NULL, 10);
        }
        fclose(f);
        return kb;
}

/* How many of the pages in [from, from + len) are resident; from is page-aligned. */
static size_t resident_pages(const unsigned char *from, size_t len)
{
        size_t pages = len / 4096, n = 0;
        unsigned char *vec = malloc(pages);
        ck_assert_ptr_nonnull(vec);
        ck_assert_int_eq(mincore((void *)from, len, vec), 0);
        for (size_t i = 0; i < pages; i++)
                n += vec[i] & 1;
        free(vec);
        return n;
}

START_TEST(a_big_chunk_is_faulted_in_a_step_ahead_of_use_in_ordinary_pages)
{
        avk_arena_t *a = avk_arena_new();
        unsigned char *last = NULL;
        /* Allocate until a big chunk is mapped; its first allocation is last. */
        for (size_t i = 0; i < (8u << 20) / 4096 && !last; i++) {
                size_t before = avk_arena_mapped(a);
                unsigned char *p = avk_arena_alloc(a, 4096);
                ck_assert_ptr_nonnull(p);
                if (avk_arena_mapped(a) - before == AVK_ARENA_BIG_CHUNK)
                        last = p;
        }
        ck_assert_ptr_nonnull(last);
        /* Fresh huge pages fault in several times slower than 4 KB ones on
         * these virtual machines (arena.c): none, wherever THP is enabled. */
        ck_assert_int_eq(smaps_kb(last, "AnonHugePages"), 0);
        /* The chunk starts a page before its first allocation (its header).
         * The first step is in, nothing after it: the kernel zeroes every
         * page it faults in, and a partition may never fill its chunk. */
        const unsigned char *chunk = (const unsigned char *)((uintptr_t)last & ~(uintptr_t)4095);
        const size_t step = AVK_ARENA_FILL_STEP;
        ck_assert_uint_eq(resident_pages(chunk, step), step / 4096);
        ck_assert_uint_eq(resident_pages(chunk + step, AVK_ARENA_BIG_CHUNK - step), 0);
        /* An allocation that crosses into the next step brings that step in
         * whole before it is touched. */
        unsigned char *p;
        do
                ck_assert_ptr_nonnull(p = avk_arena_alloc(a, 4096));
        while (p + 4096 <= chunk + step);
        ck_assert_uint_eq(resident_pages(chunk + step, step), step / 4096);
        ck_assert_uint_eq(resident_pages(chunk + 2 * step, AVK_ARENA_BIG_CHUNK - 2 * step), 0);
        avk_arena_destroy(a);
}
END_TEST

START_TEST(an_allocation_larger_than_a_chunk_gets_its_own)
{
        avk_arena_t *a = avk_arena_new();
        size_t big = 3u << 20;
        unsigned char *p = avk_arena_alloc(a, big);
        ck_assert_ptr_nonnull(p);
        memset(p, 0xab, big);
        unsigned char *q = avk_arena_alloc(a, 100);
        ck_assert_ptr_nonnull(q);
        ck_assert(q >= p + big || q + 100 <= p);
        ck_assert_uint_eq(p[big - 1], 0xab);
        avk_arena_destroy(a);
}
END_TEST

START_TEST(destroying_null_or_an_empty_arena_is_harmless)
{
        avk_arena_destroy(NULL);
        avk_arena_destroy(avk_arena_new());
}
END_TEST

int main(void)
{
        Suite *s = suite_create("arena");
        TCase *tc = tcase_create("arena");
        tcase_add_test(tc, allocations_are_aligned_disjoint_and_keep_their_bytes);
        tcase_add_test(tc, chunks_double_up_to_big_chunks);
        tcase_add_test(tc, a_big_chunk_is_faulted_in_a_step_ahead_of_use_in_ordinary_pages);
        tcase_add_test(tc, an_allocation_larger_than_a_chunk_gets_its_own);
        tcase_add_test(tc, destroying_null_or_an_empty_arena_is_harmless);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
