/*
 * Tests for avk_htab and the monotonic clock: every key inserted is found
 * through growth, removed keys are gone, iteration visits each node once even
 * when it removes as it goes, equal keys hash equally under one seed and
 * differently under another; monotonic time never goes back and the
 * condition-wait deadline lies ahead by the timeout; SHA-256 on a thread's
 * reused context digests each input alone, on several threads at once.
 */
#include "common/util/clock.h"
#include "common/util/hash.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct item {
        struct avk_hnode node;
        char key[16];
        int value;
};

static int key_eq(const struct avk_hnode *node, const void *key)
{
        return strcmp(avk_container_of(node, struct item, node)->key, key) == 0;
}

static uint64_t key_hash(const char *key)
{
        return avk_hash_bytes(key, strlen(key), 42);
}

static struct item *find(avk_htab_t *t, const char *key)
{
        struct avk_hnode *node = avk_htab_find(t, key_hash(key), key_eq, key);
        return node ? avk_container_of(node, struct item, node) : NULL;
}

enum { N = 10000 };

static struct item *fill(avk_htab_t *t)
{
        struct item *items = calloc(N, sizeof(*items));
        ck_assert_int_eq(avk_htab_init(t, 4), 0);
        for (int i = 0; i < N; i++) {
                snprintf(items[i].key, sizeof(items[i].key), "k%d", i);
                items[i].value = i;
                avk_htab_insert(t, &items[i].node, key_hash(items[i].key));
        }
        return items;
}

START_TEST(every_key_is_found_after_the_table_grew)
{
        avk_htab_t t;
        struct item *items = fill(&t);
        ck_assert_uint_eq(t.cnt, N);
        ck_assert_uint_ge(t.mask + 1, N); /* it grew from 16 buckets */
        for (int i = 0; i < N; i++) {
                char key[16];
                snprintf(key, sizeof(key), "k%d", i);
                struct item *it = find(&t, key);
                ck_assert_ptr_nonnull(it);
                ck_assert_int_eq(it->value, i);
        }
        ck_assert_ptr_null(find(&t, "k10000"));
        ck_assert_ptr_null(find(&t, ""));
        avk_htab_destroy(&t);
        free(items);
}
END_TEST

START_TEST(removed_keys_are_gone_and_the_rest_stay)
{
        avk_htab_t t;
        struct item *items = fill(&t);
        for (int i = 0; i < N; i += 2)
                avk_htab_remove(&t, &items[i].node);
        ck_assert_uint_eq(t.cnt, N / 2);
        for (int i = 0; i < N; i++)
                ck_assert((find(&t, items[i].key) != NULL) == (i % 2 == 1));
        avk_htab_destroy(&t);
        free(items);
}
END_TEST

START_TEST(iteration_visits_each_node_once_while_removing)
{
        avk_htab_t t;
        struct item *items = fill(&t);
        unsigned char *seen = calloc(N, 1);
        struct avk_hiter it;
        struct avk_hnode *node;
        avk_hiter_init(&it, &t);
        while ((node = avk_hiter_next(&it, &t))) {
                struct item *item = avk_container_of(node, struct item, node);
                ck_assert_int_eq(seen[item->value]++, 0);
                avk_htab_remove(&t, node);
        }
        for (int i = 0; i < N; i++)
                ck_assert_msg(seen[i] == 1, "k%d not visited", i);
        ck_assert_uint_eq(t.cnt, 0);
        free(seen);
        avk_htab_destroy(&t);
        free(items);
}
END_TEST

START_TEST(the_seed_changes_the_hash)
{
        ck_assert_uint_eq(avk_hash_bytes("abc", 3, 1), avk_hash_bytes("abc", 3, 1));
        ck_assert_uint_ne(avk_hash_bytes("abc", 3, 1), avk_hash_bytes("abc", 3, 2));
        ck_assert_uint_ne(avk_hash_bytes("abc", 3, 1), avk_hash_bytes("abd", 3, 1));
        ck_assert_uint_ne(avk_hash_seed(), avk_hash_seed());
}
END_TEST

/* A slot index over an array that moves as it grows. */
struct slots {
        uint64_t *keys;
};

static uint64_t slot_hash(uint32_t slot, const void *ctx)
{
        const struct slots *s = ctx;
        /* A weak hash on purpose: long probe runs test the backward shift. */
        return s->keys[slot] % 97;
}

static int slot_eq(uint32_t slot, const void *key, const void *ctx)
{
        const struct slots *s = ctx;
        return s->keys[slot] == *(const uint64_t *)key;
}

START_TEST(slot_index_finds_every_slot_through_growth_and_removal)
{
        struct slots s = {calloc(N, sizeof(uint64_t))};
        avk_slotidx_t idx;
        ck_assert_int_eq(avk_slotidx_init(&idx, 1), 0);
        for (uint32_t i = 0; i < N; i++) {
                s.keys[i] = (uint64_t)i * 7919 + 1;
                ck_assert_int_eq(avk_slotidx_insert(&idx, slot_hash(i, &s), i, slot_hash, &s), 0);
        }
        ck_assert_uint_eq(idx.cnt, N);
        ck_assert_uint_ge(idx.mask + 1, 2 * N);
        for (uint32_t i = 0; i < N; i += 3)
                avk_slotidx_remove(&idx, slot_hash(i, &s), i, slot_hash, &s);
        for (uint32_t i = 0; i < N; i++) {
                uint32_t got = avk_slotidx_find(&idx, slot_hash(i, &s), slot_eq, &s.keys[i], &s);
                if (i % 3 == 0)
                        ck_assert_uint_eq(got, AVK_SLOTIDX_NONE);
                else
                        ck_assert_uint_eq(got, i);
        }
        uint64_t absent = 2;
        ck_assert_uint_eq(avk_slotidx_find(&idx, absent % 97, slot_eq, &absent, &s),
                          AVK_SLOTIDX_NONE);
        avk_slotidx_destroy(&idx);
        free(s.keys);
}
END_TEST

static uint64_t home_is_key(uint32_t slot, const void *ctx)
{
        return ((const struct slots *)ctx)->keys[slot] / 10;
}

START_TEST(removal_moves_back_an_entry_whose_home_is_the_hole)
{
        /* Homes 3, 3, 4: positions 3, 4, 5. Removing the first must move the
         * second into its home and the third into its own. */
        uint64_t keys[] = {30, 31, 40};
        struct slots s = {keys};
        avk_slotidx_t idx;
        ck_assert_int_eq(avk_slotidx_init(&idx, 3), 0);
        for (uint32_t i = 0; i < 3; i++)
                ck_assert_int_eq(avk_slotidx_insert(&idx, keys[i] / 10, i, home_is_key, &s), 0);
        avk_slotidx_remove(&idx, 3, 0, home_is_key, &s);
        ck_assert_uint_eq(avk_slotidx_find(&idx, 3, slot_eq, &keys[1], &s), 1);
        ck_assert_uint_eq(avk_slotidx_find(&idx, 4, slot_eq, &keys[2], &s), 2);
        ck_assert_uint_eq(avk_slotidx_find(&idx, 3, slot_eq, &keys[0], &s), AVK_SLOTIDX_NONE);
        avk_slotidx_destroy(&idx);
}
END_TEST

/* SHA-256 of "abc" (FIPS 180-2, appendix B.1), and of "abcabc". */
static const unsigned char abc_sha256[32] = {
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

/* Digests on the calling thread's context, one after the other, one-shot
 * and in parts: each the digest of its own input only. 0 when all match. */
static void *digest_rounds(void *arg)
{
        (void)arg;
        long bad = 0;
        unsigned char out[32], parts[32], whole[32];
        for (int i = 0; i < 100; i++) {
                bad += avk_hash_sha256_digest("abc", 3, out) != 0 || memcmp(out, abc_sha256, 32);
                EVP_MD_CTX *ctx = avk_hash_sha256_begin();
                bad += !ctx || !EVP_DigestUpdate(ctx, "abc", 3) ||
                       !EVP_DigestUpdate(ctx, "abc", 3) || !EVP_DigestFinal_ex(ctx, parts, NULL);
                bad += avk_hash_sha256_digest("abcabc", 6, whole) != 0 || memcmp(parts, whole, 32);
                bad += memcmp(whole, abc_sha256, 32) == 0;
        }
        return (void *)bad;
}

START_TEST(sha256_on_a_threads_context_digests_each_input_alone)
{
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(pthread_create(&t[i], NULL, digest_rounds, NULL), 0);
        ck_assert_ptr_null(digest_rounds(NULL));
        for (int i = 0; i < 3; i++) {
                void *bad;
                pthread_join(t[i], &bad);
                ck_assert_ptr_null(bad);
        }
}
END_TEST

START_TEST(monotonic_time_goes_forward_and_deadlines_lie_ahead)
{
        int64_t a = avk_clock_mono_ns();
        int64_t b = avk_clock_mono_ns();
        ck_assert_int_ge(b, a);
        ck_assert_int_le(avk_clock_mono_us() - avk_clock_mono_ms() * 1000, 1000);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        struct timespec d = avk_clock_deadline(1500);
        int64_t ahead =
            (int64_t)(d.tv_sec - now.tv_sec) * 1000 + (d.tv_nsec - now.tv_nsec) / 1000000;
        ck_assert_int_ge(ahead, 1499);
        ck_assert_int_le(ahead, 1600);
        ck_assert_int_lt(d.tv_nsec, 1000000000);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("hash");
        TCase *tc = tcase_create("hash");
        tcase_add_test(tc, every_key_is_found_after_the_table_grew);
        tcase_add_test(tc, removed_keys_are_gone_and_the_rest_stay);
        tcase_add_test(tc, iteration_visits_each_node_once_while_removing);
        tcase_add_test(tc, the_seed_changes_the_hash);
        tcase_add_test(tc, slot_index_finds_every_slot_through_growth_and_removal);
        tcase_add_test(tc, removal_moves_back_an_entry_whose_home_is_the_hole);
        tcase_add_test(tc, monotonic_time_goes_forward_and_deadlines_lie_ahead);
        tcase_add_test(tc, sha256_on_a_threads_context_digests_each_input_alone);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
