/*
 * Tests for avk_spool as its user sees it: what an append reports, what
 * avk_spool_batch hands back and in which order, what survives closing and
 * reopening, and what a crash would leave behind (a torn or corrupted tail,
 * a record the spool does not know). Each test works in its own directory
 * under /tmp and removes it at the end. Callbacks are waited for on a
 * condition variable, never by sleeping.
 *
 * Some tests forge file contents; they rely on the record layout documented
 * at the top of producer/intake/spool.c: u32 body length, u32 CRC-32 of the body,
 * then the body, whose first byte is the record type, all little-endian.
 */
#include "producer/intake/spool.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "common/util/log.h"
#include "tests/support/check_text.h"
#include "tests/support/small_fs.h"
#include "tests/support/test_data.h"

#define WAIT_SECONDS 60
#define SPOOL_MAX    ((uint64_t)1 << 30)

/* ---- temp directories and files ---- */

struct tmp {
        char dir[64];
        char log[96];
};

static void tmp_make(struct tmp *t)
{
        ck_assert_msg(test_data_temp_dir("avk_spool_test", t->dir, sizeof(t->dir)) != NULL,
                      "mkdtemp: %s", strerror(errno));
        snprintf(t->log, sizeof(t->log), "%s/spool.log", t->dir);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static void tmp_remove(const struct tmp *t)
{
        ck_assert_msg(nftw(t->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0, "removing %s: %s",
                      t->dir, strerror(errno));
}

static size_t file_size(const char *path)
{
        struct stat st;
        ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
        return (size_t)st.st_size;
}

/* The whole file, in a buffer the caller frees. */
static unsigned char *read_all(const char *path, size_t *len)
{
        *len = file_size(path);
        unsigned char *data = malloc(*len + 1);
        ck_assert_ptr_nonnull(data);
        FILE *f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
        ck_assert_uint_eq(fread(data, 1, *len, f), *len);
        fclose(f);
        return data;
}

/* Replaces the file's contents with data. */
static void write_all(const char *path, const unsigned char *data, size_t len)
{
        FILE *f = fopen(path, "wb");
        ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
}

/* ---- entries ---- */

static const unsigned char BINARY_VALUE[] = {0x00, 0x01, 0x00, 0xFF, 0x00, 0x80};
static const unsigned char NULS_VALUE[] = {0x00, 0x00, 0x00};
static const char TEXT_VALUE[] = "plain text";
static const char EMPTY_VALUE[] = "";

/* Five documents covering text, binary with NUL bytes, an empty value, all
 * NULs, an empty key, two topics; in seq order 1..5. */
static const struct avk_spool_entry SAMPLES[] = {
    {1, -1, -1, "avvik.deviation", "0301", "dev-1", TEXT_VALUE, sizeof(TEXT_VALUE) - 1},
    {2, -1, -1, "avvik.deviation", "4601", "dev-2", BINARY_VALUE, sizeof(BINARY_VALUE)},
    {3, -1, -1, "avvik.response", "5001", "resp-3", EMPTY_VALUE, 0},
    {4, -1, -1, "avvik.response", "", "resp-4", NULS_VALUE, sizeof(NULS_VALUE)},
    {5, -1, -1, "avvik.deviation", "1103", "dev-5", BINARY_VALUE + 1, sizeof(BINARY_VALUE) - 1},
};
#define SAMPLE_CNT (sizeof(SAMPLES) / sizeof(SAMPLES[0]))

/* The size of an entry's ENTRY record, per the documented layout. */
static size_t record_size(const struct avk_spool_entry *e)
{
        return 4 + 4 + 1 + 8 + 4 + 8 + 2 + strlen(e->topic) + 2 + strlen(e->key) + 2 +
               strlen(e->id) + 4 + e->value_len;
}

static void assert_entry(const struct avk_spool_entry *got, const struct avk_spool_entry *want)
{
        ck_assert_ptr_nonnull(got);
        ck_assert_msg(got->seq == want->seq, "seq %" PRIu64 ", expected %" PRIu64, got->seq,
                      want->seq);
        ck_assert_msg(got->partition == want->partition,
                      "seq %" PRIu64 ": partition %" PRId32 ", expected %" PRId32, want->seq,
                      got->partition, want->partition);
        ck_assert_msg(got->scan_from == want->scan_from,
                      "seq %" PRIu64 ": scan_from %" PRId64 ", expected %" PRId64, want->seq,
                      got->scan_from, want->scan_from);
        ck_assert_str_eq(got->topic, want->topic);
        ck_assert_str_eq(got->key, want->key);
        ck_assert_str_eq(got->id, want->id);
        ck_assert_msg(got->value_len == want->value_len,
                      "seq %" PRIu64 ": value_len %zu, expected %zu", want->seq, got->value_len,
                      want->value_len);
        if (want->value_len) {
                ck_assert_ptr_nonnull(got->value);
                ck_assert_msg(memcmp(got->value, want->value, want->value_len) == 0,
                              "seq %" PRIu64 ": value bytes differ", want->seq);
        }
}

/* avk_spool_batch must give exactly want[0..cnt), in that order. */
static void assert_batch(avk_spool_t *s, const struct avk_spool_entry *want, size_t cnt)
{
        const struct avk_spool_entry **got = calloc(cnt + 1, sizeof(*got));
        ck_assert_ptr_nonnull(got);
        size_t n = avk_spool_batch(s, got, cnt + 1);
        ck_assert_msg(n == cnt, "batch gave %zu entries, expected %zu", n, cnt);
        for (size_t i = 0; i < cnt; i++)
                assert_entry(got[i], &want[i]);
        free(got);
}

/* ---- appending and waiting for the callbacks ---- */

struct waiter {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        size_t calls;
};

/* One append's outcome, as its callback reported it. */
struct outcome {
        struct waiter *waiter;
        int calls;
        int ok;
        char reason[256];
};

static void waiter_init(struct waiter *w)
{
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        w->calls = 0;
}

static void waiter_destroy(struct waiter *w)
{
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
}

static void on_append(void *opaque, int ok, const char *reason)
{
        struct outcome *o = opaque;
        pthread_mutex_lock(&o->waiter->lock);
        o->calls++;
        o->ok = ok;
        snprintf(o->reason, sizeof(o->reason), "%s", reason ? reason : "");
        o->waiter->calls++;
        pthread_cond_broadcast(&o->waiter->cond);
        pthread_mutex_unlock(&o->waiter->lock);
}

/* Waits until at least n callbacks have been made (a bounded wait, so that
 * a lost callback fails the test instead of hanging it). */
static void wait_for_calls(struct waiter *w, size_t n)
{
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += WAIT_SECONDS;
        pthread_mutex_lock(&w->lock);
        int rc = 0;
        while (w->calls < n && rc == 0)
                rc = pthread_cond_timedwait(&w->cond, &w->lock, &deadline);
        size_t got = w->calls;
        pthread_mutex_unlock(&w->lock);
        ck_assert_msg(got >= n, "%zu of %zu append callbacks after %d s", got, n, WAIT_SECONDS);
}

static void assert_ok(const struct outcome *o, uint64_t seq)
{
        ck_assert_msg(o->calls == 1, "seq %" PRIu64 ": callback called %d times", seq, o->calls);
        ck_assert_msg(o->ok == 1, "seq %" PRIu64 ": append failed: %s", seq, o->reason);
}

/* Appends cnt entries at once, waits for all callbacks and checks each said ok. */
static void append_all(avk_spool_t *s, const struct avk_spool_entry *e, size_t cnt)
{
        struct waiter w;
        waiter_init(&w);
        struct outcome *o = calloc(cnt, sizeof(*o));
        ck_assert_ptr_nonnull(o);
        for (size_t i = 0; i < cnt; i++) {
                o[i].waiter = &w;
                avk_spool_append(s, &e[i], on_append, &o[i]);
        }
        wait_for_calls(&w, cnt);
        for (size_t i = 0; i < cnt; i++)
                assert_ok(&o[i], e[i].seq);
        free(o);
        waiter_destroy(&w);
}

/* Appends one entry and returns its outcome once its callback came. */
static struct outcome append_one(avk_spool_t *s, const struct avk_spool_entry *e)
{
        struct waiter w;
        waiter_init(&w);
        struct outcome o = {.waiter = &w};
        avk_spool_append(s, e, on_append, &o);
        wait_for_calls(&w, 1);
        waiter_destroy(&w);
        o.waiter = NULL;
        return o;
}

static avk_spool_t *open_ok(const char *dir, uint64_t max_bytes)
{
        char errstr[512] = "";
        avk_spool_t *s = avk_spool_open(dir, max_bytes, errstr, sizeof(errstr));
        ck_assert_msg(s != NULL, "avk_spool_open %s: %s", dir, errstr);
        return s;
}

/* Opening must fail; the reason is left in errstr. */
static void open_fails(const char *dir, char *errstr, size_t errstr_size)
{
        errstr[0] = '\0';
        avk_spool_t *s = avk_spool_open(dir, SPOOL_MAX, errstr, errstr_size);
        ck_assert_msg(s == NULL, "avk_spool_open %s succeeded", dir);
        ck_assert_msg(errstr[0] != '\0', "avk_spool_open %s failed without a reason", dir);
}

static void done_ok(avk_spool_t *s, const struct avk_spool_entry *const *batch, size_t cnt)
{
        char errstr[512] = "";
        ck_assert_msg(avk_spool_done(s, batch, cnt, errstr, sizeof(errstr)) == 0,
                      "avk_spool_done: %s", errstr);
}

static void maybe_ok(avk_spool_t *s, const struct avk_spool_entry *e, int32_t partition,
                     int64_t scan_from)
{
        char errstr[512] = "";
        const struct avk_spool_entry *batch[1] = {e};
        ck_assert_msg(
            avk_spool_maybe(s, batch, &partition, &scan_from, 1, errstr, sizeof(errstr)) == 0,
            "avk_spool_maybe: %s", errstr);
}

/* The entry with seq among the spool's first 64 entries; fails the test when it is not there. */
static const struct avk_spool_entry *find_seq(avk_spool_t *s, uint64_t seq)
{
        const struct avk_spool_entry *batch[64];
        size_t n = avk_spool_batch(s, batch, 64);
        for (size_t i = 0; i < n; i++)
                if (batch[i]->seq == seq)
                        return batch[i];
        ck_abort_msg("no entry with seq %" PRIu64 " in the spool", seq);
        return NULL;
}

/* ---- appending and reading back ---- */

START_TEST(test_fresh_spool_is_empty)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_uint_eq(avk_spool_outstanding(s), 0);
        ck_assert_uint_eq(avk_spool_max_seq(s), 0);
        const struct avk_spool_entry *batch[1];
        ck_assert_uint_eq(avk_spool_batch(s, batch, 1), 0);
        ck_assert_uint_eq(file_size(t.log), 0);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_appended_entries_come_back_in_seq_order_with_their_bytes)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, SAMPLE_CNT);
        ck_assert_uint_eq(avk_spool_outstanding(s), SAMPLE_CNT);
        ck_assert_uint_eq(avk_spool_max_seq(s), 5);
        assert_batch(s, SAMPLES, SAMPLE_CNT);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_batch_gives_at_most_max_oldest_entries)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, SAMPLE_CNT);
        const struct avk_spool_entry *batch[SAMPLE_CNT];
        ck_assert_uint_eq(avk_spool_batch(s, batch, 2), 2);
        assert_entry(batch[0], &SAMPLES[0]);
        assert_entry(batch[1], &SAMPLES[1]);
        ck_assert_uint_eq(avk_spool_batch(s, batch, 0), 0);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_appended_entry_is_a_copy)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        char topic[] = "topic", key[] = "key", id[] = "id", value[] = "value";
        struct avk_spool_entry e = {7, -1, -1, topic, key, id, value, 5};
        struct outcome o = append_one(s, &e);
        assert_ok(&o, 7);
        memset(topic, 'X', 5);
        memset(key, 'X', 3);
        memset(id, 'X', 2);
        memset(value, 'X', 5);
        struct avk_spool_entry want = {7, -1, -1, "topic", "key", "id", "value", 5};
        assert_batch(s, &want, 1);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_out_of_order_appends_come_back_in_seq_order)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        /* seq 5, 3, 4: each waited for, so each is its own group commit. */
        const struct avk_spool_entry *order[] = {&SAMPLES[4], &SAMPLES[2], &SAMPLES[3]};
        for (size_t i = 0; i < 3; i++) {
                struct outcome o = append_one(s, order[i]);
                assert_ok(&o, order[i]->seq);
        }
        ck_assert_uint_eq(avk_spool_max_seq(s), 5);
        assert_batch(s, &SAMPLES[2], 3);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_uint_eq(avk_spool_max_seq(s), 5);
        assert_batch(s, &SAMPLES[2], 3);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_out_of_order_appends_in_one_group_come_back_in_seq_order)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        const struct avk_spool_entry reversed[] = {SAMPLES[4], SAMPLES[3], SAMPLES[2], SAMPLES[1],
                                                   SAMPLES[0]};
        append_all(s, reversed, SAMPLE_CNT);
        assert_batch(s, SAMPLES, SAMPLE_CNT);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_file_holds_one_entry_record_per_append)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        size_t expected = 0;
        for (size_t i = 0; i < SAMPLE_CNT; i++) {
                struct outcome o = append_one(s, &SAMPLES[i]);
                assert_ok(&o, SAMPLES[i].seq);
                expected += record_size(&SAMPLES[i]);
                /* Durable when the callback says so: already in the file. */
                ck_assert_uint_eq(file_size(t.log), expected);
        }
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

/* ---- queueing and closing ---- */

/* A callback that blocks the writer thread until the test opens the gate. */
struct gate {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int entered, open, ok;
};

static void on_append_blocking(void *opaque, int ok, const char *reason)
{
        (void)reason;
        struct gate *g = opaque;
        pthread_mutex_lock(&g->lock);
        g->entered = 1;
        g->ok = ok;
        pthread_cond_broadcast(&g->cond);
        while (!g->open)
                pthread_cond_wait(&g->cond, &g->lock);
        pthread_mutex_unlock(&g->lock);
}

START_TEST(test_queued_appends_are_outstanding_but_not_batched_before_durable)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        struct gate g = {.entered = 0};
        pthread_mutex_init(&g.lock, NULL);
        pthread_cond_init(&g.cond, NULL);
        avk_spool_append(s, &SAMPLES[0], on_append_blocking, &g);
        pthread_mutex_lock(&g.lock);
        while (!g.entered)
                pthread_cond_wait(&g.cond, &g.lock);
        pthread_mutex_unlock(&g.lock);
        ck_assert_int_eq(g.ok, 1);

        /* The writer is held in seq 1's callback: 2 and 3 stay queued. */
        struct waiter w;
        waiter_init(&w);
        struct outcome o[2] = {{.waiter = &w}, {.waiter = &w}};
        avk_spool_append(s, &SAMPLES[1], on_append, &o[0]);
        avk_spool_append(s, &SAMPLES[2], on_append, &o[1]);
        ck_assert_uint_eq(avk_spool_outstanding(s), 3);
        ck_assert_uint_eq(avk_spool_max_seq(s), 3);
        assert_batch(s, SAMPLES, 1);

        pthread_mutex_lock(&g.lock);
        g.open = 1;
        pthread_cond_broadcast(&g.cond);
        pthread_mutex_unlock(&g.lock);
        wait_for_calls(&w, 2);
        assert_ok(&o[0], 2);
        assert_ok(&o[1], 3);
        ck_assert_uint_eq(avk_spool_outstanding(s), 3);
        assert_batch(s, SAMPLES, 3);
        avk_spool_close(s);
        waiter_destroy(&w);
        pthread_mutex_destroy(&g.lock);
        pthread_cond_destroy(&g.cond);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_close_writes_queued_appends_first)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        struct waiter w;
        waiter_init(&w);
        struct outcome o[SAMPLE_CNT];
        for (size_t i = 0; i < SAMPLE_CNT; i++) {
                o[i] = (struct outcome){.waiter = &w};
                avk_spool_append(s, &SAMPLES[i], on_append, &o[i]);
        }
        avk_spool_close(s); /* without waiting for a callback */
        pthread_mutex_lock(&w.lock);
        size_t calls = w.calls;
        pthread_mutex_unlock(&w.lock);
        ck_assert_uint_eq(calls, SAMPLE_CNT);
        for (size_t i = 0; i < SAMPLE_CNT; i++)
                assert_ok(&o[i], SAMPLES[i].seq);

        s = open_ok(t.dir, SPOOL_MAX);
        assert_batch(s, SAMPLES, SAMPLE_CNT);
        avk_spool_close(s);
        waiter_destroy(&w);
        tmp_remove(&t);
}
END_TEST

/* ---- reopening ---- */

START_TEST(test_reopen_gives_back_entries_and_max_seq)
{
        struct tmp t;
        tmp_make(&t);
        /* A value over 64 KiB, past what a u16 length could say. */
        size_t big_len = 70000;
        unsigned char *big = malloc(big_len);
        ck_assert_ptr_nonnull(big);
        for (size_t i = 0; i < big_len; i++)
                big[i] = (unsigned char)(i * 7 + 3);
        struct avk_spool_entry want[SAMPLE_CNT + 2];
        memcpy(want, SAMPLES, sizeof(SAMPLES));
        want[SAMPLE_CNT] = (struct avk_spool_entry){9, 2, 1234, "t", "k", "big", big, big_len};
        /* Produced once before: where it may already be travels with it. */
        want[SAMPLE_CNT + 1] = (struct avk_spool_entry){
            12, 7, INT64_C(5000000000), "avvik.deviation", "0301", "dev-12", "x", 1};

        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, want, SAMPLE_CNT + 2);
        ck_assert_uint_eq(avk_spool_max_seq(s), 12);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_uint_eq(avk_spool_outstanding(s), SAMPLE_CNT + 2);
        ck_assert_uint_eq(avk_spool_max_seq(s), 12);
        assert_batch(s, want, SAMPLE_CNT + 2);
        avk_spool_close(s);

        /* Reopening again changes nothing. */
        s = open_ok(t.dir, SPOOL_MAX);
        assert_batch(s, want, SAMPLE_CNT + 2);
        avk_spool_close(s);
        free(big);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_appends_after_reopen_join_the_recovered_entries)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, &SAMPLES[0], 1);
        append_all(s, &SAMPLES[3], 2);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, &SAMPLES[1], 2); /* seq 2 and 3: between the recovered ones */
        ck_assert_uint_eq(avk_spool_outstanding(s), SAMPLE_CNT);
        assert_batch(s, SAMPLES, SAMPLE_CNT);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        assert_batch(s, SAMPLES, SAMPLE_CNT);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

/* ---- MAYBE ---- */

START_TEST(test_maybe_persists_partition_and_scan_from)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, 3);
        const struct avk_spool_entry *batch[3];
        ck_assert_uint_eq(avk_spool_batch(s, batch, 3), 3);
        int32_t partition[2] = {3, 4};
        int64_t scan_from[2] = {100, INT64_C(6000000000)};
        char errstr[512] = "";
        ck_assert_msg(avk_spool_maybe(s, batch, partition, scan_from, 2, errstr, sizeof(errstr)) ==
                          0,
                      "avk_spool_maybe: %s", errstr);
        /* The entries the batch points at show it at once. */
        ck_assert_int_eq(batch[0]->partition, 3);
        ck_assert_int_eq(batch[0]->scan_from, 100);
        ck_assert_int_eq(batch[1]->partition, 4);
        ck_assert_int_eq(batch[1]->scan_from, INT64_C(6000000000));
        ck_assert_int_eq(batch[2]->partition, -1);
        ck_assert_int_eq(batch[2]->scan_from, -1);
        avk_spool_close(s);

        struct avk_spool_entry want[3];
        memcpy(want, SAMPLES, sizeof(want));
        want[0].partition = 3;
        want[0].scan_from = 100;
        want[1].partition = 4;
        want[1].scan_from = INT64_C(6000000000);
        s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_uint_eq(avk_spool_outstanding(s), 3);
        assert_batch(s, want, 3);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_later_maybe_for_same_partition_keeps_the_lower_offset)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, 1);
        maybe_ok(s, find_seq(s, 1), 3, 100);
        maybe_ok(s, find_seq(s, 1), 3, 150);
        const struct avk_spool_entry *e = find_seq(s, 1);
        ck_assert_int_eq(e->partition, 3);
        ck_assert_int_eq(e->scan_from, 100);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        e = find_seq(s, 1);
        ck_assert_int_eq(e->partition, 3);
        ck_assert_int_eq(e->scan_from, 100);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_later_maybe_for_same_partition_with_lower_offset_widens_the_range)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, 1);
        maybe_ok(s, find_seq(s, 1), 3, 100);
        maybe_ok(s, find_seq(s, 1), 3, 40);
        ck_assert_int_eq(find_seq(s, 1)->scan_from, 40);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        const struct avk_spool_entry *e = find_seq(s, 1);
        ck_assert_int_eq(e->partition, 3);
        ck_assert_int_eq(e->scan_from, 40);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_maybe_for_another_partition_replaces_the_earlier_one)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, 1);
        maybe_ok(s, find_seq(s, 1), 3, 100);
        maybe_ok(s, find_seq(s, 1), 5, 900);
        const struct avk_spool_entry *e = find_seq(s, 1);
        ck_assert_int_eq(e->partition, 5);
        ck_assert_int_eq(e->scan_from, 900);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        e = find_seq(s, 1);
        ck_assert_int_eq(e->partition, 5);
        ck_assert_int_eq(e->scan_from, 900);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_maybe_overrides_the_position_the_entry_was_appended_with)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        struct avk_spool_entry e = SAMPLES[0];
        e.partition = 2;
        e.scan_from = 500;
        append_all(s, &e, 1);
        maybe_ok(s, find_seq(s, 1), 2, 700); /* same partition, higher: kept at 500 */
        ck_assert_int_eq(find_seq(s, 1)->scan_from, 500);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_int_eq(find_seq(s, 1)->partition, 2);
        ck_assert_int_eq(find_seq(s, 1)->scan_from, 500);
        maybe_ok(s, find_seq(s, 1), 6, 800);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_int_eq(find_seq(s, 1)->partition, 6);
        ck_assert_int_eq(find_seq(s, 1)->scan_from, 800);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

/* ---- DONE ---- */

START_TEST(test_done_entries_do_not_come_back)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, SAMPLE_CNT);
        const struct avk_spool_entry *done[2] = {find_seq(s, 2), find_seq(s, 4)};
        done_ok(s, done, 2);
        const struct avk_spool_entry want[] = {SAMPLES[0], SAMPLES[2], SAMPLES[4]};
        ck_assert_uint_eq(avk_spool_outstanding(s), 3);
        assert_batch(s, want, 3);
        ck_assert_uint_gt(file_size(t.log), 0);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_uint_eq(avk_spool_outstanding(s), 3);
        ck_assert_uint_eq(avk_spool_max_seq(s), 5);
        assert_batch(s, want, 3);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_done_on_all_truncates_the_file)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, SAMPLE_CNT);
        const struct avk_spool_entry *batch[SAMPLE_CNT];
        ck_assert_uint_eq(avk_spool_batch(s, batch, SAMPLE_CNT), SAMPLE_CNT);
        maybe_ok(s, batch[0], 1, 10);
        done_ok(s, batch, SAMPLE_CNT);
        ck_assert_uint_eq(avk_spool_outstanding(s), 0);
        ck_assert_uint_eq(avk_spool_batch(s, batch, SAMPLE_CNT), 0);
        ck_assert_uint_eq(file_size(t.log), 0);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_uint_eq(avk_spool_outstanding(s), 0);
        ck_assert_uint_eq(avk_spool_batch(s, batch, SAMPLE_CNT), 0);
        ck_assert_uint_eq(file_size(t.log), 0);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_done_of_the_rest_after_reopen_truncates_the_file)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, SAMPLE_CNT);
        const struct avk_spool_entry *batch[SAMPLE_CNT];
        ck_assert_uint_eq(avk_spool_batch(s, batch, 2), 2);
        done_ok(s, batch, 2);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_uint_eq(avk_spool_batch(s, batch, SAMPLE_CNT), 3);
        done_ok(s, batch, 3);
        ck_assert_uint_eq(avk_spool_outstanding(s), 0);
        ck_assert_uint_eq(file_size(t.log), 0);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_appends_after_truncation_are_kept)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, 2);
        const struct avk_spool_entry *batch[2];
        ck_assert_uint_eq(avk_spool_batch(s, batch, 2), 2);
        done_ok(s, batch, 2);
        ck_assert_uint_eq(file_size(t.log), 0);
        append_all(s, &SAMPLES[2], 3);
        ck_assert_uint_eq(file_size(t.log), record_size(&SAMPLES[2]) + record_size(&SAMPLES[3]) +
                                                record_size(&SAMPLES[4]));
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        assert_batch(s, &SAMPLES[2], 3);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_done_and_maybe_reach_entries_written_out_of_seq_order)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        /* File order 5, 3, 4, 1, 2: replaying must still find each by seq. */
        const size_t order[] = {4, 2, 3, 0, 1};
        for (size_t i = 0; i < SAMPLE_CNT; i++) {
                struct outcome o = append_one(s, &SAMPLES[order[i]]);
                assert_ok(&o, SAMPLES[order[i]].seq);
        }
        const struct avk_spool_entry *done[2] = {find_seq(s, 1), find_seq(s, 3)};
        done_ok(s, done, 2);
        maybe_ok(s, find_seq(s, 2), 8, 80);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        struct avk_spool_entry want[] = {SAMPLES[1], SAMPLES[3], SAMPLES[4]};
        want[0].partition = 8;
        want[0].scan_from = 80;
        ck_assert_uint_eq(avk_spool_outstanding(s), 3);
        assert_batch(s, want, 3);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

/* ---- a crash's leftovers ---- */

/* Appends the samples one at a time; sizes[k] is the file size after k. */
static void append_measuring(avk_spool_t *s, const char *log, size_t sizes[SAMPLE_CNT + 1])
{
        sizes[0] = file_size(log);
        for (size_t i = 0; i < SAMPLE_CNT; i++) {
                struct outcome o = append_one(s, &SAMPLES[i]);
                assert_ok(&o, SAMPLES[i].seq);
                sizes[i + 1] = file_size(log);
                ck_assert_uint_eq(sizes[i + 1], sizes[i] + record_size(&SAMPLES[i]));
        }
}

START_TEST(test_torn_tail_keeps_exactly_the_complete_records)
{
        struct tmp t;
        tmp_make(&t);
        size_t sizes[SAMPLE_CNT + 1];
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_measuring(s, t.log, sizes);
        avk_spool_close(s);
        size_t full_len;
        unsigned char *full = read_all(t.log, &full_len);
        ck_assert_uint_eq(full_len, sizes[SAMPLE_CNT]);

        for (size_t len = 0; len <= full_len; len++) {
                write_all(t.log, full, full_len);
                ck_assert_msg(truncate(t.log, (off_t)len) == 0, "truncate: %s", strerror(errno));
                size_t complete = 0;
                while (complete < SAMPLE_CNT && sizes[complete + 1] <= len)
                        complete++;
                char errstr[512] = "";
                s = avk_spool_open(t.dir, SPOOL_MAX, errstr, sizeof(errstr));
                ck_assert_msg(s != NULL, "cut at %zu of %zu: %s", len, full_len, errstr);
                ck_assert_msg(avk_spool_outstanding(s) == complete,
                              "cut at %zu of %zu: %zu entries, expected %zu", len, full_len,
                              avk_spool_outstanding(s), complete);
                assert_batch(s, SAMPLES, complete);
                ck_assert_msg(file_size(t.log) == sizes[complete],
                              "cut at %zu of %zu: file is %zu bytes, expected %zu", len, full_len,
                              file_size(t.log), sizes[complete]);
                avk_spool_close(s);
        }
        free(full);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_append_after_a_cut_tail_survives_reopen)
{
        struct tmp t;
        tmp_make(&t);
        size_t sizes[SAMPLE_CNT + 1];
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_measuring(s, t.log, sizes);
        avk_spool_close(s);
        /* Half of the third record is left. */
        off_t cut = (off_t)(sizes[2] + (sizes[3] - sizes[2]) / 2);
        ck_assert_int_eq(truncate(t.log, cut), 0);

        s = open_ok(t.dir, SPOOL_MAX);
        assert_batch(s, SAMPLES, 2);
        append_all(s, &SAMPLES[2], 3);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_uint_eq(avk_spool_outstanding(s), SAMPLE_CNT);
        assert_batch(s, SAMPLES, SAMPLE_CNT);
        ck_assert_uint_eq(file_size(t.log), sizes[SAMPLE_CNT]);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_torn_done_record_leaves_its_entry_outstanding)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, 2);
        size_t before = file_size(t.log);
        const struct avk_spool_entry *done[1] = {find_seq(s, 1)};
        done_ok(s, done, 1);
        size_t after = file_size(t.log);
        ck_assert_uint_eq(after - before, 4 + 4 + 1 + 8); /* one DONE record */
        avk_spool_close(s);
        ck_assert_int_eq(truncate(t.log, (off_t)after - 1), 0);

        s = open_ok(t.dir, SPOOL_MAX);
        assert_batch(s, SAMPLES, 2);
        ck_assert_uint_eq(file_size(t.log), before);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_corrupted_last_record_is_dropped_and_earlier_ones_kept)
{
        struct tmp t;
        tmp_make(&t);
        size_t sizes[SAMPLE_CNT + 1];
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_measuring(s, t.log, sizes);
        avk_spool_close(s);
        size_t full_len;
        unsigned char *full = read_all(t.log, &full_len);

        /* Every byte of the last record in turn: length, CRC, type, fields. */
        for (size_t at = sizes[SAMPLE_CNT - 1]; at < full_len; at++) {
                full[at] ^= 0xFF;
                write_all(t.log, full, full_len);
                full[at] ^= 0xFF;
                char errstr[512] = "";
                s = avk_spool_open(t.dir, SPOOL_MAX, errstr, sizeof(errstr));
                ck_assert_msg(s != NULL, "byte %zu flipped: %s", at, errstr);
                ck_assert_msg(avk_spool_outstanding(s) == SAMPLE_CNT - 1,
                              "byte %zu flipped: %zu entries, expected %zu", at,
                              avk_spool_outstanding(s), SAMPLE_CNT - 1);
                assert_batch(s, SAMPLES, SAMPLE_CNT - 1);
                ck_assert_msg(file_size(t.log) == sizes[SAMPLE_CNT - 1],
                              "byte %zu flipped: file is %zu bytes, expected %zu", at,
                              file_size(t.log), sizes[SAMPLE_CNT - 1]);
                avk_spool_close(s);
        }
        free(full);
        tmp_remove(&t);
}
END_TEST

/* Damage before intact records is not a torn tail: cutting there would
 * lose acknowledged documents, so opening fails and the file stays. */
START_TEST(test_damaged_record_before_intact_ones_fails_open_naming_the_offset)
{
        struct tmp t;
        tmp_make(&t);
        size_t sizes[SAMPLE_CNT + 1];
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_measuring(s, t.log, sizes);
        avk_spool_close(s);
        size_t full_len;
        unsigned char *full = read_all(t.log, &full_len);
        full[sizes[2] - 1] ^= 0xFF; /* the last byte of the second record */
        write_all(t.log, full, full_len);
        char errstr[512] = "";
        s = avk_spool_open(t.dir, SPOOL_MAX, errstr, sizeof(errstr));
        ck_assert_ptr_null(s);
        char offset[64];
        snprintf(offset, sizeof(offset), "damaged record at offset %zu", sizes[1]);
        ck_assert_contains(errstr, offset);
        ck_assert_uint_eq(file_size(t.log), full_len);
        free(full);
        tmp_remove(&t);
}
END_TEST

/* A record of the documented layout with a valid CRC and the given body. */
static size_t craft_record(unsigned char *out, const unsigned char *body, size_t body_len)
{
        uint32_t crc = (uint32_t)crc32(0L, body, (uInt)body_len);
        for (int i = 0; i < 4; i++) {
                out[i] = (unsigned char)(body_len >> (8 * i));
                out[4 + i] = (unsigned char)(crc >> (8 * i));
        }
        memcpy(out + 8, body, body_len);
        return 8 + body_len;
}

START_TEST(test_crafted_done_record_is_honoured)
{
        /* Checks the layout the next test forges a record with. */
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, 3);
        avk_spool_close(s);
        size_t len;
        unsigned char *data = read_all(t.log, &len);
        const unsigned char body[9] = {3, 2, 0, 0, 0, 0, 0, 0, 0}; /* DONE seq 2 */
        unsigned char rec[17];
        size_t rec_len = craft_record(rec, body, sizeof(body));
        data = realloc(data, len + rec_len);
        ck_assert_ptr_nonnull(data);
        memcpy(data + len, rec, rec_len);
        write_all(t.log, data, len + rec_len);

        s = open_ok(t.dir, SPOOL_MAX);
        const struct avk_spool_entry want[] = {SAMPLES[0], SAMPLES[2]};
        assert_batch(s, want, 2);
        ck_assert_uint_eq(file_size(t.log), len + rec_len);
        avk_spool_close(s);
        free(data);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_unknown_record_type_fails_open_naming_the_offset)
{
        struct tmp t;
        tmp_make(&t);
        size_t sizes[SAMPLE_CNT + 1];
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_measuring(s, t.log, sizes);
        avk_spool_close(s);
        size_t len;
        unsigned char *data = read_all(t.log, &len);

        /* Type 9, between the second and the third ENTRY. */
        const unsigned char body[9] = {9, 1, 0, 0, 0, 0, 0, 0, 0};
        unsigned char rec[17];
        size_t rec_len = craft_record(rec, body, sizeof(body));
        unsigned char *forged = malloc(len + rec_len);
        ck_assert_ptr_nonnull(forged);
        memcpy(forged, data, sizes[2]);
        memcpy(forged + sizes[2], rec, rec_len);
        memcpy(forged + sizes[2] + rec_len, data + sizes[2], len - sizes[2]);
        write_all(t.log, forged, len + rec_len);

        char errstr[512], expected[64];
        open_fails(t.dir, errstr, sizeof(errstr));
        ck_assert_contains(errstr, t.log);
        ck_assert_contains(errstr, "unknown record type 9");
        snprintf(expected, sizeof(expected), "at offset %zu", sizes[2]);
        ck_assert_contains(errstr, expected);
        /* Nothing was cut: the records after it are still there to look at. */
        ck_assert_uint_eq(file_size(t.log), len + rec_len);
        free(forged);
        free(data);
        tmp_remove(&t);
}
END_TEST

/* ---- limits and errors ---- */

START_TEST(test_append_past_max_bytes_is_refused_until_the_spool_empties)
{
        struct tmp t;
        tmp_make(&t);
        struct avk_spool_entry e[3];
        for (size_t i = 0; i < 3; i++)
                e[i] = (struct avk_spool_entry){i + 1, -1, -1, "topic", "key", "id", "value", 5};
        size_t rec = record_size(&e[0]);
        /* Exactly two records fit. */
        avk_spool_t *s = open_ok(t.dir, 2 * rec);
        append_all(s, e, 2);
        ck_assert_uint_eq(file_size(t.log), 2 * rec);

        struct outcome o = append_one(s, &e[2]);
        ck_assert_int_eq(o.calls, 1);
        ck_assert_int_eq(o.ok, 0);
        ck_assert_contains(o.reason, "full");
        ck_assert_uint_eq(avk_spool_outstanding(s), 2);
        assert_batch(s, e, 2);
        ck_assert_uint_eq(file_size(t.log), 2 * rec);

        const struct avk_spool_entry *batch[2];
        ck_assert_uint_eq(avk_spool_batch(s, batch, 2), 2);
        done_ok(s, batch, 2);
        ck_assert_uint_eq(file_size(t.log), 0);
        o = append_one(s, &e[2]);
        assert_ok(&o, 3);
        ck_assert_uint_eq(avk_spool_outstanding(s), 1);
        assert_batch(s, &e[2], 1);
        avk_spool_close(s);

        s = open_ok(t.dir, 2 * rec);
        assert_batch(s, &e[2], 1);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_group_past_max_bytes_refuses_only_what_does_not_fit)
{
        struct tmp t;
        tmp_make(&t);
        struct avk_spool_entry e[5];
        for (size_t i = 0; i < 5; i++)
                e[i] = (struct avk_spool_entry){i + 1, -1, -1, "topic", "key", "id", "value", 5};
        size_t rec = record_size(&e[0]);
        avk_spool_t *s = open_ok(t.dir, 3 * rec);
        struct waiter w;
        waiter_init(&w);
        struct outcome o[5];
        for (size_t i = 0; i < 5; i++) {
                o[i] = (struct outcome){.waiter = &w};
                avk_spool_append(s, &e[i], on_append, &o[i]);
        }
        wait_for_calls(&w, 5);
        /* Whatever the grouping, the first three fit and the last two do not. */
        for (size_t i = 0; i < 3; i++)
                assert_ok(&o[i], i + 1);
        for (size_t i = 3; i < 5; i++) {
                ck_assert_int_eq(o[i].calls, 1);
                ck_assert_int_eq(o[i].ok, 0);
                ck_assert_contains(o[i].reason, "full");
        }
        ck_assert_uint_eq(avk_spool_outstanding(s), 3);
        assert_batch(s, e, 3);
        avk_spool_close(s);
        waiter_destroy(&w);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_second_open_of_a_spool_in_use_fails)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        append_all(s, SAMPLES, 1);
        char errstr[512];
        open_fails(t.dir, errstr, sizeof(errstr));
        ck_assert_contains(errstr, "in use");
        ck_assert_contains(errstr, t.log);

        /* The first is unharmed by the attempt. */
        append_all(s, &SAMPLES[1], 1);
        assert_batch(s, SAMPLES, 2);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        assert_batch(s, SAMPLES, 2);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

START_TEST(test_open_under_a_regular_file_fails_naming_the_path)
{
        struct tmp t;
        tmp_make(&t);
        char file[128], under[160];
        snprintf(file, sizeof(file), "%s/not-a-dir", t.dir);
        write_all(file, (const unsigned char *)"x", 1);
        snprintf(under, sizeof(under), "%s/spool", file);

        char errstr[512];
        open_fails(under, errstr, sizeof(errstr));
        ck_assert_contains(errstr, under);
        /* The directory itself a regular file. */
        open_fails(file, errstr, sizeof(errstr));
        ck_assert_contains(errstr, file);
        tmp_remove(&t);
}
END_TEST

/* The spool's identity (the reporter's transactional.id comes from it) is
 * a UUID that stays the same across reopening, differs between spools,
 * and a damaged one stops the open rather than being replaced. */
START_TEST(test_instance_id_is_a_uuid_kept_across_reopen)
{
        struct tmp t, other;
        tmp_make(&t);
        tmp_make(&other);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        char first[64];
        snprintf(first, sizeof(first), "%s", avk_spool_instance(s));
        ck_assert_uint_eq(strlen(first), 36);
        avk_spool_close(s);
        s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_str_eq(avk_spool_instance(s), first);
        avk_spool_t *o = open_ok(other.dir, SPOOL_MAX);
        ck_assert_str_ne(avk_spool_instance(o), first);
        avk_spool_close(o);
        avk_spool_close(s);

        char path[160], errstr[512];
        snprintf(path, sizeof(path), "%s/instance.id", t.dir);
        write_all(path, (const unsigned char *)"not-a-uuid\n", 11);
        open_fails(t.dir, errstr, sizeof(errstr));
        ck_assert_contains(errstr, "instance.id: not a UUID");
        tmp_remove(&t);
        tmp_remove(&other);
}
END_TEST

START_TEST(test_open_creates_a_missing_directory)
{
        struct tmp t;
        tmp_make(&t);
        char dir[128], log[160];
        snprintf(dir, sizeof(dir), "%s/spool", t.dir);
        snprintf(log, sizeof(log), "%s/spool.log", dir);
        avk_spool_t *s = open_ok(dir, SPOOL_MAX);
        append_all(s, SAMPLES, 1);
        avk_spool_close(s);
        ck_assert_uint_eq(file_size(log), record_size(&SAMPLES[0]));
        s = open_ok(dir, SPOOL_MAX);
        assert_batch(s, SAMPLES, 1);
        avk_spool_close(s);
        tmp_remove(&t);
}
END_TEST

/* ---- concurrency ---- */

#define THREADS        4
#define PER_THREAD     500
#define CONCURRENT_CNT (THREADS * PER_THREAD)

struct appender {
        avk_spool_t *spool;
        struct outcome *outcomes; /* indexed by seq - 1 */
        int index;
};

/* The strings of the entry with seq, so any thread can build or check it. */
struct concurrent_entry {
        char topic[32], key[32], id[32], value[48];
        struct avk_spool_entry e;
};

static void concurrent_entry(struct concurrent_entry *c, uint64_t seq)
{
        snprintf(c->topic, sizeof(c->topic), "topic-%" PRIu64, seq % 3);
        snprintf(c->key, sizeof(c->key), "key-%" PRIu64, seq);
        snprintf(c->id, sizeof(c->id), "id-%" PRIu64, seq);
        int len = snprintf(c->value, sizeof(c->value), "value %" PRIu64 "%c!", seq, '\0');
        c->e =
            (struct avk_spool_entry){seq, -1, -1, c->topic, c->key, c->id, c->value, (size_t)len};
}

static void *append_many(void *arg)
{
        struct appender *a = arg;
        for (int i = 0; i < PER_THREAD; i++) {
                /* Interleaved seqs: threads overtake each other. */
                uint64_t seq = (uint64_t)i * THREADS + (uint64_t)a->index + 1;
                struct concurrent_entry c;
                concurrent_entry(&c, seq);
                avk_spool_append(a->spool, &c.e, on_append, &a->outcomes[seq - 1]);
        }
        return NULL;
}

static void assert_concurrent_entries(avk_spool_t *s)
{
        const struct avk_spool_entry **batch = calloc(CONCURRENT_CNT + 1, sizeof(*batch));
        ck_assert_ptr_nonnull(batch);
        ck_assert_uint_eq(avk_spool_batch(s, batch, CONCURRENT_CNT + 1), CONCURRENT_CNT);
        for (size_t i = 0; i < CONCURRENT_CNT; i++) {
                struct concurrent_entry c;
                concurrent_entry(&c, i + 1);
                assert_entry(batch[i], &c.e);
        }
        free(batch);
}

START_TEST(test_concurrent_appends_are_all_kept_in_seq_order)
{
        struct tmp t;
        tmp_make(&t);
        avk_spool_t *s = open_ok(t.dir, SPOOL_MAX);
        struct waiter w;
        waiter_init(&w);
        struct outcome *o = calloc(CONCURRENT_CNT, sizeof(*o));
        ck_assert_ptr_nonnull(o);
        for (size_t i = 0; i < CONCURRENT_CNT; i++)
                o[i].waiter = &w;
        pthread_t threads[THREADS];
        struct appender appenders[THREADS];
        for (int i = 0; i < THREADS; i++) {
                appenders[i] = (struct appender){s, o, i};
                ck_assert_int_eq(pthread_create(&threads[i], NULL, append_many, &appenders[i]), 0);
        }
        for (int i = 0; i < THREADS; i++)
                pthread_join(threads[i], NULL);
        wait_for_calls(&w, CONCURRENT_CNT);
        for (size_t i = 0; i < CONCURRENT_CNT; i++)
                assert_ok(&o[i], i + 1);
        ck_assert_uint_eq(avk_spool_outstanding(s), CONCURRENT_CNT);
        ck_assert_uint_eq(avk_spool_max_seq(s), CONCURRENT_CNT);
        assert_concurrent_entries(s);
        avk_spool_close(s);

        s = open_ok(t.dir, SPOOL_MAX);
        ck_assert_uint_eq(avk_spool_outstanding(s), CONCURRENT_CNT);
        ck_assert_uint_eq(avk_spool_max_seq(s), CONCURRENT_CNT);
        assert_concurrent_entries(s);
        avk_spool_close(s);
        free(o);
        waiter_destroy(&w);
        tmp_remove(&t);
}
END_TEST

/* ---- a full file system (issue 18 points 7 and 13) ---- */

#define FULL_MAX 200 /* entries at most before a 256 KiB file system is full */

/* Entries 1..FULL_MAX of the concurrency tests, their strings in c. */
static void full_entries(struct concurrent_entry c[FULL_MAX])
{
        for (size_t i = 0; i < FULL_MAX; i++)
                concurrent_entry(&c[i], i + 1);
}

/* Appends c[from..] one by one, the file system filled after the first
 * ten, until one is refused: what a Kafka outage does to a small disk.
 * Checks the refusal says why without naming the server's path. @returns
 * the index of the refused entry. */
static size_t spool_until_full(avk_spool_t *s, struct small_fs *fs, struct concurrent_entry *c,
                               size_t from)
{
        for (size_t i = from; i < FULL_MAX; i++) {
                if (i == from + 10)
                        small_fs_fill(fs);
                struct outcome o = append_one(s, &c[i].e);
                if (!o.ok) {
                        ck_assert_uint_gt(i, from + 10);
                        ck_assert_str_eq(o.reason, "the spool's disk is full");
                        return i;
                }
        }
        ck_abort_msg("%d entries fit in a full file system", FULL_MAX);
        return 0;
}

/* A spool in a small tmpfs that filled up. */
struct full_spool {
        struct small_fs fs;
        struct concurrent_entry c[FULL_MAX]; /* entry seq is c[seq - 1] */
        avk_spool_t *s;
        size_t n; /* c[from..n) are spooled, c[n] was refused */
};

/* Opens a spool in a small tmpfs and spools c[from..] until it is full.
 * @returns 0 when no tmpfs can be mounted: the test then passes without
 * running, saying why. */
static int full_spool_start(struct full_spool *f, size_t from)
{
        char why[256];
        if (small_fs_mount(&f->fs, 256 * 1024, why, sizeof(why)) != 0) {
                fprintf(stderr, "skipped: %s\n", why);
                return 0;
        }
        full_entries(f->c);
        f->s = open_ok(f->fs.dir, SPOOL_MAX);
        f->n = spool_until_full(f->s, &f->fs, f->c, from);
        return 1;
}

/* Closes and opens the spool again, as a restart does. */
static void full_spool_reopen(struct full_spool *f)
{
        avk_spool_close(f->s);
        f->s = open_ok(f->fs.dir, SPOOL_MAX);
}

static void full_spool_stop(struct full_spool *f)
{
        avk_spool_close(f->s);
        small_fs_unmount(&f->fs);
}

static struct full_spool full_fs;

/* The oldest cnt entries, done. */
static void done_oldest(avk_spool_t *s, size_t cnt)
{
        const struct avk_spool_entry *batch[FULL_MAX];
        ck_assert_uint_eq(avk_spool_batch(s, batch, cnt), cnt);
        done_ok(s, batch, cnt);
}

/* The oldest cnt entries, marked as maybe in partition 1 from offset 10. */
static void maybe_oldest(avk_spool_t *s, size_t cnt)
{
        const struct avk_spool_entry *batch[FULL_MAX];
        int32_t partition[FULL_MAX];
        int64_t scan_from[FULL_MAX];
        ck_assert_uint_eq(avk_spool_batch(s, batch, cnt), cnt);
        for (size_t i = 0; i < cnt; i++) {
                partition[i] = 1;
                scan_from[i] = 10;
        }
        char errstr[512] = "";
        ck_assert_msg(
            avk_spool_maybe(s, batch, partition, scan_from, cnt, errstr, sizeof(errstr)) == 0,
            "avk_spool_maybe: %s", errstr);
}

/* The spool holds exactly the entries with seq in [from, to] and those in
 * also[0..also_cnt) (older ones), in order; those up to marked_through
 * marked as maybe_oldest() does. */
static void assert_seqs(avk_spool_t *s, const uint64_t *also, size_t also_cnt, uint64_t from,
                        uint64_t to, uint64_t marked_through)
{
        static struct concurrent_entry c[FULL_MAX];
        static struct avk_spool_entry e[FULL_MAX];
        full_entries(c);
        size_t cnt = 0;
        for (size_t i = 0; i < also_cnt; i++)
                e[cnt++] = c[also[i] - 1].e;
        for (uint64_t seq = from; seq <= to; seq++)
                e[cnt++] = c[seq - 1].e;
        for (size_t i = 0; i < cnt; i++) {
                if (e[i].seq <= marked_through) {
                        e[i].partition = 1;
                        e[i].scan_from = 10;
                }
        }
        ck_assert_uint_eq(avk_spool_outstanding(s), cnt);
        assert_batch(s, e, cnt);
}

START_TEST(test_drain_marks_on_a_full_file_system_and_they_survive_reopen)
{
        if (!full_spool_start(&full_fs, 0))
                return;
        size_t n = full_fs.n;
        /* The drain goes on: MAYBE for ten, DONE for five, then for the next ten. */
        maybe_oldest(full_fs.s, 10);
        done_oldest(full_fs.s, 5);
        assert_seqs(full_fs.s, NULL, 0, 6, n, 10);
        full_spool_reopen(&full_fs);
        assert_seqs(full_fs.s, NULL, 0, 6, n, 10);
        done_oldest(full_fs.s, 10);
        full_spool_reopen(&full_fs);
        assert_seqs(full_fs.s, NULL, 0, 16, n, 0);
        /* Everything done: the file starts afresh and frees its space. */
        done_oldest(full_fs.s, n - 15);
        ck_assert_uint_eq(avk_spool_outstanding(full_fs.s), 0);
        struct outcome o = append_one(full_fs.s, &full_fs.c[n].e);
        assert_ok(&o, n + 1);
        full_spool_reopen(&full_fs);
        assert_batch(full_fs.s, &full_fs.c[n].e, 1);
        full_spool_stop(&full_fs);
}
END_TEST

/* An entry appended after younger ones were done stays outstanding. */
START_TEST(test_entry_appended_after_younger_ones_were_done_on_a_full_file_system_stays)
{
        if (!full_spool_start(&full_fs, 1)) /* seq 2..n */
                return;
        size_t n = full_fs.n;
        done_oldest(full_fs.s, 4); /* seq 2..5 */
        small_fs_free(&full_fs.fs);
        append_all(full_fs.s, &full_fs.c[0].e, 1); /* seq 1, late */
        full_spool_reopen(&full_fs);
        const uint64_t late[] = {1};
        assert_seqs(full_fs.s, late, 1, 6, n, 0);
        /* Done: seq 6, past the late one. */
        const struct avk_spool_entry *six[1] = {find_seq(full_fs.s, 6)};
        done_ok(full_fs.s, six, 1);
        full_spool_reopen(&full_fs);
        assert_seqs(full_fs.s, late, 1, 7, n, 0);
        full_spool_stop(&full_fs);
}
END_TEST

/* A write of drain.state torn at any byte leaves the state before it. */
START_TEST(test_torn_drain_state_write_leaves_the_state_before_it)
{
        if (!full_spool_start(&full_fs, 0))
                return;
        size_t n = full_fs.n;
        char state[128];
        snprintf(state, sizeof(state), "%s/drain.state", full_fs.fs.dir);
        maybe_oldest(full_fs.s, 10);
        size_t before_len, after_len;
        unsigned char *before = read_all(state, &before_len);
        done_oldest(full_fs.s, 5);
        avk_spool_close(full_fs.s);
        unsigned char *after = read_all(state, &after_len);
        ck_assert_uint_eq(before_len, after_len);
        size_t first = 0, last = 0, changed = 0;
        for (size_t i = 0; i < after_len; i++) {
                if (before[i] != after[i]) {
                        if (!changed++)
                                first = i;
                        last = i;
                }
        }
        ck_assert_uint_gt(changed, 0);

        /* Torn: the new slot written up to each changed byte in turn. */
        unsigned char *torn = malloc(after_len);
        ck_assert_ptr_nonnull(torn);
        for (size_t at = first; at <= last; at++) {
                memcpy(torn, before, after_len);
                memcpy(torn + first, after + first, at - first);
                write_all(state, torn, after_len);
                full_fs.s = open_ok(full_fs.fs.dir, SPOOL_MAX);
                ck_assert_msg(avk_spool_outstanding(full_fs.s) == n,
                              "torn at byte %zu: %zu outstanding, expected %zu", at,
                              avk_spool_outstanding(full_fs.s), n);
                assert_seqs(full_fs.s, NULL, 0, 1, n, 10);
                avk_spool_close(full_fs.s);
        }
        write_all(state, after, after_len);
        full_fs.s = open_ok(full_fs.fs.dir, SPOOL_MAX);
        assert_seqs(full_fs.s, NULL, 0, 6, n, 10);
        full_spool_stop(&full_fs);
        free(torn);
        free(before);
        free(after);
}
END_TEST

static Suite *spool_suite(void)
{
        Suite *suite = suite_create("spool");
        TCase *tc = tcase_create("spool");
        tcase_add_test(tc, test_fresh_spool_is_empty);
        tcase_add_test(tc, test_appended_entries_come_back_in_seq_order_with_their_bytes);
        tcase_add_test(tc, test_batch_gives_at_most_max_oldest_entries);
        tcase_add_test(tc, test_appended_entry_is_a_copy);
        tcase_add_test(tc, test_out_of_order_appends_come_back_in_seq_order);
        tcase_add_test(tc, test_out_of_order_appends_in_one_group_come_back_in_seq_order);
        tcase_add_test(tc, test_file_holds_one_entry_record_per_append);
        tcase_add_test(tc, test_queued_appends_are_outstanding_but_not_batched_before_durable);
        tcase_add_test(tc, test_close_writes_queued_appends_first);
        tcase_add_test(tc, test_reopen_gives_back_entries_and_max_seq);
        tcase_add_test(tc, test_appends_after_reopen_join_the_recovered_entries);
        tcase_add_test(tc, test_maybe_persists_partition_and_scan_from);
        tcase_add_test(tc, test_later_maybe_for_same_partition_keeps_the_lower_offset);
        tcase_add_test(tc, test_later_maybe_for_same_partition_with_lower_offset_widens_the_range);
        tcase_add_test(tc, test_maybe_for_another_partition_replaces_the_earlier_one);
        tcase_add_test(tc, test_maybe_overrides_the_position_the_entry_was_appended_with);
        tcase_add_test(tc, test_done_entries_do_not_come_back);
        tcase_add_test(tc, test_done_on_all_truncates_the_file);
        tcase_add_test(tc, test_done_of_the_rest_after_reopen_truncates_the_file);
        tcase_add_test(tc, test_appends_after_truncation_are_kept);
        tcase_add_test(tc, test_done_and_maybe_reach_entries_written_out_of_seq_order);
        tcase_add_test(tc, test_torn_tail_keeps_exactly_the_complete_records);
        tcase_add_test(tc, test_append_after_a_cut_tail_survives_reopen);
        tcase_add_test(tc, test_torn_done_record_leaves_its_entry_outstanding);
        tcase_add_test(tc, test_corrupted_last_record_is_dropped_and_earlier_ones_kept);
        tcase_add_test(tc, test_damaged_record_before_intact_ones_fails_open_naming_the_offset);
        tcase_add_test(tc, test_crafted_done_record_is_honoured);
        tcase_add_test(tc, test_unknown_record_type_fails_open_naming_the_offset);
        tcase_add_test(tc, test_append_past_max_bytes_is_refused_until_the_spool_empties);
        tcase_add_test(tc, test_group_past_max_bytes_refuses_only_what_does_not_fit);
        tcase_add_test(tc, test_second_open_of_a_spool_in_use_fails);
        tcase_add_test(tc, test_open_under_a_regular_file_fails_naming_the_path);
        tcase_add_test(tc, test_open_creates_a_missing_directory);
        tcase_add_test(tc, test_instance_id_is_a_uuid_kept_across_reopen);
        tcase_add_test(tc, test_concurrent_appends_are_all_kept_in_seq_order);
        suite_add_tcase(suite, tc);
        TCase *full = tcase_create("full file system");
        tcase_add_unchecked_fixture(full, small_fs_setup, small_fs_sweep);
        tcase_set_timeout(full, 60);
        tcase_add_test(full, test_drain_marks_on_a_full_file_system_and_they_survive_reopen);
        tcase_add_test(
            full, test_entry_appended_after_younger_ones_were_done_on_a_full_file_system_stays);
        tcase_add_test(full, test_torn_drain_state_write_leaves_the_state_before_it);
        suite_add_tcase(suite, full);
        return suite;
}

int main(void)
{
        avk_log_set_level(AVK_LOG_ERROR); /* recovery warnings are expected here */
        SRunner *runner = srunner_create(spool_suite());
        srunner_run_all(runner, CK_NORMAL);
        int failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
