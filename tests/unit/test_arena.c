/*
 * Tests for avk_arena: allocations are aligned, disjoint and keep their
 * bytes while the arena lives, across chunk boundaries and past a chunk's
 * size; chunks grow from the first size to huge-page chunks; destroy gives
 * everything back (ASan's leak check and munmap's result would show a
 * chunk lost or unmapped twice).
 */
#include "common/util/arena.h"

#include <check.h>
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

START_TEST(chunks_double_up_to_huge_page_chunks)
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

START_TEST(huge_page_chunks_are_aligned_to_their_size)
{
        avk_arena_t *a = avk_arena_new();
        unsigned char *last = NULL;
        /* Allocate until the chunks are huge-page sized; a fresh big
         * chunk's first allocation sits just past its header. */
        for (size_t i = 0; i < (8u << 20) / 4096; i++) {
                size_t before = avk_arena_mapped(a);
                unsigned char *p = avk_arena_alloc(a, 4096);
                ck_assert_ptr_nonnull(p);
                if (avk_arena_mapped(a) - before == AVK_ARENA_BIG_CHUNK)
                        last = p;
        }
        ck_assert_ptr_nonnull(last);
        uintptr_t chunk = (uintptr_t)last & ~(uintptr_t)(AVK_ARENA_BIG_CHUNK - 1);
        ck_assert_uint_lt((uintptr_t)last - chunk, 64);
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
        tcase_add_test(tc, chunks_double_up_to_huge_page_chunks);
        tcase_add_test(tc, huge_page_chunks_are_aligned_to_their_size);
        tcase_add_test(tc, an_allocation_larger_than_a_chunk_gets_its_own);
        tcase_add_test(tc, destroying_null_or_an_empty_arena_is_harmless);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
