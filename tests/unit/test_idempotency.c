/*
 * Idempotency: a retry gets the first answer and never becomes a second
 * filing - whether it comes after the first (replayed), during it (waits for
 * the same answer) or with another body (conflict); failed first attempts
 * are not remembered; the cache stays within its bounds.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "producer/gateway/idempotency.h"

#define TTL_MS 60000

static avk_idem_t *idem;
static unsigned char hash_a[AVK_IDEM_HASH_SIZE], hash_b[AVK_IDEM_HASH_SIZE];

/* What a waiting request was handed. */
struct answer {
        int calls;
        unsigned status;
        char body[128];
};

static void on_answer(void *opaque, unsigned status, const char *body)
{
        struct answer *a = opaque;
        a->calls++;
        a->status = status;
        snprintf(a->body, sizeof(a->body), "%s", body);
}

static void setup(void)
{
        idem = avk_idem_new(16, TTL_MS);
        ck_assert_ptr_nonnull(idem);
        memset(hash_a, 'a', sizeof(hash_a));
        memset(hash_b, 'b', sizeof(hash_b));
}

static void teardown(void)
{
        avk_idem_destroy(idem);
}

static struct avk_idem_claim begin(const char *key, const unsigned char *hash, int64_t now,
                                   struct answer *a)
{
        struct avk_idem_claim c;
        avk_idem_begin(idem, (const char *[]){key}, 1, hash, now, on_answer, a, &c);
        return c;
}

START_TEST(a_retry_after_success_gets_the_first_answer)
{
        struct avk_idem_claim c = begin("key 1480 k1", hash_a, 0, NULL);
        ck_assert_int_eq(c.outcome, AVK_IDEM_NEW);
        ck_assert_ptr_nonnull(c.flight);
        avk_idem_finish(idem, c.flight, 202, "{\"id\":\"first\"}", 1, 10);
        c = begin("key 1480 k1", hash_a, 20, NULL);
        ck_assert_int_eq(c.outcome, AVK_IDEM_DONE);
        ck_assert_uint_eq(c.status, 202);
        ck_assert_str_eq(c.body, "{\"id\":\"first\"}");
        free(c.body);
        ck_assert_uint_eq(avk_idem_size(idem), 1);
}
END_TEST

START_TEST(the_same_key_with_another_body_is_a_conflict)
{
        struct avk_idem_claim c = begin("k", hash_a, 0, NULL);
        avk_idem_finish(idem, c.flight, 202, "first", 1, 0);
        c = begin("k", hash_b, 0, NULL);
        ck_assert_int_eq(c.outcome, AVK_IDEM_CONFLICT);
        ck_assert_uint_eq(c.key, 0);
        /* A conflict while the first is still in flight, too. */
        c = begin("k2", hash_a, 0, NULL);
        struct avk_idem_claim d = begin("k2", hash_b, 0, NULL);
        ck_assert_int_eq(d.outcome, AVK_IDEM_CONFLICT);
        avk_idem_finish(idem, c.flight, 202, "x", 1, 0);
}
END_TEST

START_TEST(a_retry_during_the_first_waits_for_its_answer)
{
        struct answer a1 = {0}, a2 = {0};
        struct avk_idem_claim c = begin("k", hash_a, 0, NULL);
        ck_assert_int_eq(begin("k", hash_a, 1, &a1).outcome, AVK_IDEM_WAIT);
        ck_assert_int_eq(begin("k", hash_a, 2, &a2).outcome, AVK_IDEM_WAIT);
        ck_assert_int_eq(a1.calls, 0);
        avk_idem_finish(idem, c.flight, 202, "answer", 1, 3);
        ck_assert_int_eq(a1.calls, 1);
        ck_assert_int_eq(a2.calls, 1);
        ck_assert_uint_eq(a1.status, 202);
        ck_assert_str_eq(a2.body, "answer");
}
END_TEST

START_TEST(a_failed_first_attempt_is_shared_then_forgotten)
{
        struct answer waiting = {0};
        struct avk_idem_claim c = begin("k", hash_a, 0, NULL);
        ck_assert_int_eq(begin("k", hash_a, 0, &waiting).outcome, AVK_IDEM_WAIT);
        avk_idem_finish(idem, c.flight, 503, "{\"error\":\"kafka\"}", 0, 0);
        ck_assert_int_eq(waiting.calls, 1);
        ck_assert_uint_eq(waiting.status, 503);
        ck_assert_str_eq(waiting.body, "{\"error\":\"kafka\"}");
        ck_assert_uint_eq(avk_idem_size(idem), 0);
        c = begin("k", hash_b, 0, NULL); /* even another body: the key is free again */
        ck_assert_int_eq(c.outcome, AVK_IDEM_NEW);
        avk_idem_finish(idem, c.flight, 400, "bad", 0, 0);
}
END_TEST

START_TEST(answers_expire_after_the_ttl)
{
        struct avk_idem_claim c = begin("k", hash_a, 0, NULL);
        avk_idem_finish(idem, c.flight, 202, "x", 1, 1000);
        c = begin("k", hash_a, 1000 + TTL_MS - 1, NULL);
        ck_assert_int_eq(c.outcome, AVK_IDEM_DONE);
        free(c.body);
        c = begin("k", hash_b, 1000 + TTL_MS, NULL);
        ck_assert_int_eq(c.outcome, AVK_IDEM_NEW);
        avk_idem_finish(idem, c.flight, 202, "y", 1, 1000 + TTL_MS);
        ck_assert_uint_eq(avk_idem_size(idem), 1);
}
END_TEST

START_TEST(either_key_recognises_a_request)
{
        const char *both[] = {"key 1480 k1", "deviation 3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10"};
        struct avk_idem_claim c;
        avk_idem_begin(idem, both, 2, hash_a, 0, on_answer, NULL, &c);
        ck_assert_int_eq(c.outcome, AVK_IDEM_NEW);
        avk_idem_finish(idem, c.flight, 202, "first", 1, 0);
        ck_assert_uint_eq(avk_idem_size(idem), 2);
        /* Another Idempotency-Key, the same document id: the same request. */
        const char *other_key[] = {"key 1480 k2", both[1]};
        avk_idem_begin(idem, other_key, 2, hash_a, 0, on_answer, NULL, &c);
        ck_assert_int_eq(c.outcome, AVK_IDEM_DONE);
        ck_assert_uint_eq(c.key, 1);
        ck_assert_str_eq(c.body, "first");
        free(c.body);
        /* The document id again with another document: a conflict naming that key. */
        avk_idem_begin(idem, other_key, 2, hash_b, 0, on_answer, NULL, &c);
        ck_assert_int_eq(c.outcome, AVK_IDEM_CONFLICT);
        ck_assert_uint_eq(c.key, 1);
}
END_TEST

START_TEST(the_oldest_answer_makes_room_and_in_flight_keys_are_never_dropped)
{
        char key[32];
        for (int i = 0; i < 16; i++) {
                snprintf(key, sizeof(key), "done-%d", i);
                struct avk_idem_claim c = begin(key, hash_a, i, NULL);
                ck_assert_int_eq(c.outcome, AVK_IDEM_NEW);
                avk_idem_finish(idem, c.flight, 202, key, 1, i);
        }
        struct avk_idem_claim c = begin("new", hash_a, 100, NULL);
        ck_assert_int_eq(c.outcome, AVK_IDEM_NEW);
        ck_assert_uint_eq(avk_idem_size(idem), 16);
        struct avk_idem_claim again = begin("done-0", hash_b, 100, NULL);
        ck_assert_int_eq(again.outcome, AVK_IDEM_NEW); /* it was dropped: the key is free */
        struct avk_idem_claim kept = begin("done-15", hash_a, 100, NULL);
        ck_assert_int_eq(kept.outcome, AVK_IDEM_DONE);
        free(kept.body);
        avk_idem_finish(idem, c.flight, 202, "x", 1, 100);
        avk_idem_finish(idem, again.flight, 202, "y", 1, 100);
}
END_TEST

START_TEST(no_room_when_every_key_is_in_flight)
{
        avk_idem_flight_t *flights[16];
        char key[32];
        for (int i = 0; i < 16; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                struct avk_idem_claim c = begin(key, hash_a, 0, NULL);
                ck_assert_int_eq(c.outcome, AVK_IDEM_NEW);
                flights[i] = c.flight;
        }
        ck_assert_int_eq(begin("one more", hash_a, 0, NULL).outcome, AVK_IDEM_FULL);
        for (int i = 0; i < 16; i++)
                avk_idem_finish(idem, flights[i], 202, "x", 1, 0);
        struct avk_idem_claim c = begin("one more", hash_a, 0, NULL);
        ck_assert_int_eq(c.outcome, AVK_IDEM_NEW);
        avk_idem_finish(idem, c.flight, 202, "x", 1, 0);
}
END_TEST

/* Many threads send the same request at once: exactly one does the work,
 * and every one ends with its answer. */
#define RACERS 16

static atomic_int workers, answered;

static void count_answer(void *opaque, unsigned status, const char *body)
{
        (void)opaque;
        if (status == 202 && strcmp(body, "the one") == 0)
                atomic_fetch_add(&answered, 1);
}

static void *race(void *arg)
{
        (void)arg;
        struct avk_idem_claim c;
        avk_idem_begin(idem, (const char *[]){"same"}, 1, hash_a, 0, count_answer, NULL, &c);
        if (c.outcome == AVK_IDEM_NEW) {
                atomic_fetch_add(&workers, 1);
                avk_idem_finish(idem, c.flight, 202, "the one", 1, 0);
                atomic_fetch_add(&answered, 1);
        } else if (c.outcome == AVK_IDEM_DONE) {
                count_answer(NULL, c.status, c.body);
                free(c.body);
        }
        return NULL;
}

START_TEST(concurrent_retries_make_one_filing)
{
        pthread_t t[RACERS];
        atomic_store(&workers, 0);
        atomic_store(&answered, 0);
        for (int i = 0; i < RACERS; i++)
                ck_assert_int_eq(pthread_create(&t[i], NULL, race, NULL), 0);
        for (int i = 0; i < RACERS; i++)
                pthread_join(t[i], NULL);
        ck_assert_int_eq(atomic_load(&workers), 1);
        ck_assert_int_eq(atomic_load(&answered), RACERS);
}
END_TEST

START_TEST(a_key_gives_one_id_of_its_own)
{
        char a[AVK_IDEM_ID_SIZE], b[AVK_IDEM_ID_SIZE];
        ck_assert_int_eq(avk_idem_derive_id("deviation", "1480", "order-7", a), 0);
        ck_assert_int_eq(avk_idem_derive_id("deviation", "1480", "order-7", b), 0);
        ck_assert_str_eq(a, b);
        ck_assert_int_eq(a[14], '8'); /* version 8 */
        ck_assert(strchr("89ab", a[19]) != NULL);
        ck_assert_int_eq(avk_idem_derive_id("deviation", "1401", "order-7", b), 0);
        ck_assert_str_ne(a, b);
        ck_assert_int_eq(avk_idem_derive_id("response", "1480", "order-7", b), 0);
        ck_assert_str_ne(a, b);
        ck_assert_int_eq(avk_idem_derive_id("deviation", "1480", "order-8", b), 0);
        ck_assert_str_ne(a, b);
        /* The parts are kept apart: ("148", "0order-7") is another request. */
        ck_assert_int_eq(avk_idem_derive_id("deviation", "148", "0order-7", b), 0);
        ck_assert_str_ne(a, b);
}
END_TEST

static Suite *idempotency_suite(void)
{
        Suite *s = suite_create("idempotency");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, a_retry_after_success_gets_the_first_answer);
        tcase_add_test(tc, the_same_key_with_another_body_is_a_conflict);
        tcase_add_test(tc, a_retry_during_the_first_waits_for_its_answer);
        tcase_add_test(tc, a_failed_first_attempt_is_shared_then_forgotten);
        tcase_add_test(tc, answers_expire_after_the_ttl);
        tcase_add_test(tc, either_key_recognises_a_request);
        tcase_add_test(tc, the_oldest_answer_makes_room_and_in_flight_keys_are_never_dropped);
        tcase_add_test(tc, no_room_when_every_key_is_in_flight);
        tcase_add_test(tc, concurrent_retries_make_one_filing);
        tcase_add_test(tc, a_key_gives_one_id_of_its_own);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(idempotency_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
