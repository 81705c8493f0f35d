/*
 * bench_tracker: the tracker's core (consumer/track/track.h: open-deviation table
 * and deadline timers) with 1,000,000 open deviations, no Kafka:
 *  - memory per open deviation: the heap's in-use bytes (mallinfo2, arena and
 *    mapped blocks) before
 *    and after the deviations are routed, divided by their number, and the
 *    core's own account (avk_track_memory); then with each deviation's
 *    filing as the feedback module keeps it (consumer/track/feedback.h:
 *    the reporting unit and a reply_reference of its own), the tracker's
 *    whole memory per open deviation;
 *  - the feedback check a rebuild adds (docs/tracker.md, "Feedback after a
 *    crash"): three feedback records per deviation read back, then three
 *    status records checked against them, in deviations per second, and
 *    the peak memory the read-back set takes;
 *  - apply throughput: routings, then acknowledgements, ns per input;
 *  - a deadline pass: the clock moved so that 1% of the deviations have a
 *    timer due (a reminder each), then so that all have (each escalates:
 *    a status record and an escalation): ns per record written; and an
 *    empty pass (nothing due), the cost of a tick on an idle table.
 * Every action is "acknowledged" right after each call, as Kafka would.
 *
 * usage: bench_tracker [DEVIATIONS] (default 1000000)
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util/calendar.h"
#include "consumer/track/deadlines.h"
#include "consumer/track/feedback.h"
#include "consumer/track/track.h"

#define DAY     (24 * 3600 * 1000LL)
#define ID_SIZE 37

static char (*pending)[ID_SIZE]; /* deviation ids of actions not yet acknowledged */
static size_t pending_cnt, pending_cap;
static size_t actions;

static int sink(void *opaque, const struct avk_track_action *a)
{
        (void)opaque;
        actions++;
        const char *id = a->kind == AVK_TRACK_STATUS       ? a->u.status.deviation_id
                         : a->kind == AVK_TRACK_ESCALATION ? a->u.escalation.deviation_id
                         : a->kind == AVK_TRACK_REMINDER   ? a->u.reminder.deviation_id
                                                           : NULL;
        if (!id)
                return 0;
        if (pending_cnt == pending_cap) {
                pending_cap = pending_cap ? pending_cap * 2 : 4096;
                pending = realloc(pending, pending_cap * ID_SIZE);
                if (!pending)
                        return -1;
        }
        memcpy(pending[pending_cnt++], id, ID_SIZE);
        return 0;
}

static void ack_all(avk_track_t *t)
{
        for (size_t i = 0; i < pending_cnt; i++)
                avk_track_acked(t, pending[i]);
        pending_cnt = 0;
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void id_of(size_t i, char out[ID_SIZE])
{
        snprintf(out, ID_SIZE, "%08x-%04x-4000-8000-%012llx", (unsigned)(i * 2654435761u),
                 (unsigned)(i & 0xffff), (unsigned long long)(i & 0xffffffffffffULL));
}

static size_t heap_in_use(void)
{
        /* Small blocks in the arena plus the large ones malloc maps on its own. */
        struct mallinfo2 m = mallinfo2();
        return m.uordblks + m.hblkhd;
}

/* Each deviation's filing as topic.reported gives it: a reporting unit (two in three name one)
 * and a reply_reference of its own, 20 characters like a source system's case id. */
static int file_all(avk_feedback_t *fb, size_t n)
{
        static const char *const units[] = {"SE2120001215-HSK0042", "SE2321000131-E000000012345"};
        char id[ID_SIZE], ref[32];
        for (size_t i = 0; i < n; i++) {
                id_of(i, id);
                snprintf(ref, sizeof(ref), "TRESERVA-2026-%06zu", i % 1000000);
                if (avk_feedback_reported(fb, id, i % 3 ? units[i % 2] : NULL, ref, (int)(i % 6)) !=
                    0)
                        return -1;
        }
        return 0;
}

/* A rebuild's feedback check over n deviations of three versions each (ROUTED,
 * ACKNOWLEDGED, ANSWERED), every feedback read back but the last version of
 * one deviation in a thousand. @returns the deviations checked per second,
 * or -1; *peak the bytes the read-back set took, *owed what was found owed. */
static double check_all(avk_feedback_t *fb, size_t n, size_t *peak, size_t *owed)
{
        static const enum avk_track_state states[] = {AVK_TRACK_ROUTED, AVK_TRACK_ACKNOWLEDGED,
                                                      AVK_TRACK_ANSWERED};
        const int64_t now = 1772438400000, since = now - 7 * DAY;
        char id[ID_SIZE];
        size_t base = heap_in_use();
        double start = now_s();
        for (size_t i = 0; i < n; i++) {
                id_of(i, id);
                for (int v = 1; v <= 3; v++) {
                        if ((v < 3 || i % 1000) &&
                            avk_feedback_read_back(fb, id, v, (int)(i % 6), now, since) != 0)
                                return -1;
                }
        }
        *peak = heap_in_use() - base;
        for (size_t i = 0; i < n; i++) {
                id_of(i, id);
                for (int v = 1; v <= 3; v++) {
                        struct avk_track_status s = {.deviation_id = id,
                                                     .version = v,
                                                     .state = states[v - 1],
                                                     .changed_at = now,
                                                     .cause = id,
                                                     .reporter_party = "1480",
                                                     .receiver_party = "VGR",
                                                     .category = "DISCHARGE_PLANNING",
                                                     .harm_level = "LOW",
                                                     .answered_at = now};
                        if (avk_feedback_check(fb, &s, now, since) < 0)
                                return -1;
                }
        }
        if (avk_feedback_rebuilt(fb) != 0)
                return -1;
        double s = now_s() - start;
        *owed = avk_feedback_owed_count(fb);
        return (double)n / s;
}

int main(int argc, char **argv)
{
        size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
        struct avk_errors errs;
        avk_errors_init(&errs);
        avk_deadlines_t *policy = avk_deadlines_load(AVK_SOURCE_DIR "/data/deadlines.json", &errs);
        if (!policy) {
                fprintf(stderr, "bench_tracker: %s\n", errs.msg[0]);
                return 1;
        }
        struct avk_track_options opt = {.policy = policy, .sink = sink};
        int64_t t0 = avk_calendar_from_local(2026, 3, 2, 9, 0, 0);

        size_t before = heap_in_use();
        avk_track_t *t = avk_track_new(&opt);
        if (!t)
                return 1;
        avk_track_advance(t, t0);
        /* Routed over 100 days, 1% a day: a day's reminders fall due together. */
        char id[ID_SIZE];
        double start = now_s();
        for (size_t i = 0; i < n; i++) {
                id_of(i, id);
                struct avk_track_routed in = {
                    .event_id = id,
                    .deviation_id = id,
                    .routed_at = t0 + (int64_t)(i % 100) * DAY + (int64_t)(i / 100) % 3600000,
                    .hop = 0,
                    .reporter_party = i % 2 ? "1480" : "VGR",
                    .receiver_party = i % 2 ? "VGR" : "1480",
                    .receiver_unit = i % 3 ? "SE2321000131-E000000012345" : NULL,
                    .category = "DISCHARGE_PLANNING",
                    .harm_level = "LOW",
                    .partition = (int)(i % 6)};
                if (avk_track_routed(t, &in) != AVK_TRACK_APPLIED)
                        return 1;
                if (pending_cnt >= 65536)
                        ack_all(t);
        }
        ack_all(t);
        double routed_s = now_s() - start;
        free(pending);
        pending = NULL;
        pending_cnt = pending_cap = 0;
        size_t after = heap_in_use();
        double per_dev = (double)(after - before) / (double)n;
        avk_feedback_t *fb = avk_feedback_new(policy, NULL);
        if (!fb || file_all(fb, n) != 0)
                return 1;
        double per_filing = (double)(heap_in_use() - after) / (double)n;

        printf("bench_tracker: %zu open deviations (%s build)\n", n, AVK_BENCH_BUILD_TYPE);
        printf("  memory per open deviation: %.1f B (heap in use, mallinfo2), %.1f B (core's "
               "account)\n",
               per_dev, (double)avk_track_memory(t) / (double)n);
        printf("  memory per open deviation with its filing (feedback): %.1f B (heap in use), of "
               "which the filing %.1f B\n",
               per_dev + per_filing, per_filing);
        printf("  apply DeviationRouted:      %.0f ns/input (%.0f/s)\n", routed_s * 1e9 / (double)n,
               (double)n / routed_s);
        size_t peak, owed;
        double checked = check_all(fb, n, &peak, &owed);
        if (checked < 0)
                return 1;
        printf("  rebuild's feedback check:   %.0f deviations/s (3 feedback read back, 3 status "
               "checked each), read-back set %.1f B per record at its peak, %zu owed\n",
               checked, (double)peak / (3.0 * (double)n), owed);
        avk_feedback_destroy(fb);

        /* An empty pass: nothing due (before the first reminder). */
        int64_t first = avk_track_next_due(t);
        int idle_rounds = 1000000;
        start = now_s();
        for (int i = 0; i < idle_rounds; i++)
                avk_track_advance(t, first - 1);
        double idle_s = now_s() - start;
        printf("  empty pass (nothing due):   %.1f ns\n", idle_s * 1e9 / idle_rounds);

        /* 1%: the first day's deviations have their reminder due. */
        actions = 0;
        start = now_s();
        long fired = avk_track_advance(t, first);
        double one_s = now_s() - start;
        ack_all(t);
        printf("  pass with 1%% due:           %ld records in %.2f ms, %.0f ns per record\n", fired,
               one_s * 1e3, fired > 0 ? one_s * 1e9 / (double)fired : 0.0);

        /* All: every deviation's next timer is due (one each per pass, as a
         * deviation waits for its outputs before its next timer). */
        start = now_s();
        fired = avk_track_advance(t, t0 + 400 * DAY);
        double all_s = now_s() - start;
        ack_all(t);
        printf("  pass with all due:          %ld records in %.2f ms, %.0f ns per record\n", fired,
               all_s * 1e3, fired > 0 ? all_s * 1e9 / (double)fired : 0.0);

        /* Acknowledgements of every deviation, in a fresh order. */
        start = now_s();
        for (size_t i = 0; i < n; i++) {
                id_of((i * 7919) % n, id);
                struct avk_track_response in = {.response_id = id,
                                                .deviation_id = id,
                                                .responded_at = t0 + 100 * DAY,
                                                .party = ((i * 7919) % n) % 2 ? "VGR" : "1480",
                                                .kind = AVK_TRACK_ANSWER,
                                                .partition = 0};
                avk_track_respond(t, &in);
                if (pending_cnt >= 65536)
                        ack_all(t);
        }
        ack_all(t);
        double resp_s = now_s() - start;
        printf("  apply DeviationResponse:    %.0f ns/input (%.0f/s)\n", resp_s * 1e9 / (double)n,
               (double)n / resp_s);
        free(pending);
        avk_track_destroy(t);
        avk_deadlines_destroy(policy);
        return 0;
}
