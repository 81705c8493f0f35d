/*
 * bench_view: the gateway's view (producer/gateway/view.h) with 1,000,000
 * deviations, no Kafka. Each deviation is reported (with a reply reference
 * on every second), routed, acknowledged and has the tracker's status; every
 * second is answered (analysis and action plan of ANSWER_BYTES together)
 * and every tenth re-routed and reminded - a view of deviations well into
 * their course. Printed:
 *  - memory per deviation: the heap's in-use bytes (mallinfo2) before and
 *    after, divided by the count, and the view's own account
 *    (avk_view_memory), both with the answers' text and without it;
 *  - the cost of a look-up (avk_view_lookup, JSON built) and of a list page
 *    (avk_view_list, 100 items) on the full view.
 *
 * usage: bench_view [DEVIATIONS] (default 1000000)
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "producer/gateway/view.h"

#define DAY_MS       (24 * 3600 * 1000LL)
#define ANSWER_BYTES 600 /* analysis and action plan together */
#define RULES        12  /* routing rules, so reasons and rule ids repeat as they do */

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void id_of(size_t i, char id[37])
{
        snprintf(id, 37, "%08x-0000-4000-8000-%012x", (unsigned)(i * 2654435761u), (unsigned)i);
}

static int fill(avk_view_t *view, size_t n, int64_t t0, const char *analysis, const char *plan)
{
        static const char *const parties[] = {"1480", "1401", "1402", "1407", "1415", "VGR"};
        char id[37], rule[16], reason[96], reference[32];
        unsigned char digest[AVK_VIEW_DIGEST_SIZE] = {0};
        for (size_t i = 0; i < n; i++) {
                id_of(i, id);
                int reporter = (int)(i % 5) + 1, receiver = 0;
                int64_t at = t0 + (int64_t)(i % 100) * DAY_MS / 100 + (int64_t)i;
                memcpy(digest, &i, sizeof(i));
                snprintf(rule, sizeof(rule), "R-%02zu", i % RULES);
                snprintf(reason, sizeof(reason), "agreement rule R-%02zu: %s to the region",
                         i % RULES, parties[i % 5]);
                snprintf(reference, sizeof(reference), "CASE-%zu", i);
                struct avk_view_event reported = {.kind = AVK_VIEW_REPORTED,
                                                  .deviation_id = id,
                                                  .at = at,
                                                  .party = reporter,
                                                  .reporter = -1,
                                                  .text = {i % 2 ? reference : NULL},
                                                  .digest = digest};
                struct avk_view_event routed = {.kind = AVK_VIEW_ROUTED,
                                                .deviation_id = id,
                                                .at = at + 1000,
                                                .party = receiver,
                                                .reporter = reporter,
                                                .hop = 0,
                                                .label = "AGREEMENT_RULE",
                                                .rule = rule,
                                                .reason = reason};
                struct avk_view_event ack = {.kind = AVK_VIEW_ACKNOWLEDGED,
                                             .deviation_id = id,
                                             .at = at + DAY_MS,
                                             .party = receiver,
                                             .reporter = -1};
                if (avk_view_add(view, &reported) || avk_view_add(view, &routed) ||
                    avk_view_add(view, &ack))
                        return -1;
                if (i % 10 == 0) {
                        struct avk_view_event again = routed, remind = ack;
                        again.hop = 1;
                        again.party = receiver = 1 + (int)(i % 7);
                        again.label = "REROUTED";
                        again.at += DAY_MS;
                        remind.kind = AVK_VIEW_REMINDED;
                        remind.party = receiver;
                        remind.label = "ANSWER";
                        remind.at += 20 * DAY_MS;
                        if (avk_view_add(view, &again) || avk_view_add(view, &remind))
                                return -1;
                }
                if (i % 2 == 0) {
                        struct avk_view_event answered = ack;
                        answered.kind = AVK_VIEW_ANSWERED;
                        answered.party = receiver;
                        answered.at += 10 * DAY_MS;
                        answered.text[0] = analysis;
                        answered.text[1] = plan;
                        if (avk_view_add(view, &answered))
                                return -1;
                }
                struct avk_view_status status = {
                    .deviation_id = id,
                    .version = 3,
                    .state = i % 2 == 0 ? "ANSWERED" : "ACKNOWLEDGED",
                    .changed_at = at + DAY_MS,
                    .reporter = reporter,
                    .receiver = receiver,
                    .deadline_rule = "D-DEFAULT",
                    .acknowledge_deadline_at = at + 3 * DAY_MS,
                    .answer_deadline_at = at + 60 * DAY_MS,
                    .acknowledged_at = at + DAY_MS,
                    .answered_at = i % 2 == 0 ? at + 11 * DAY_MS : -1,
                    .closed_at = -1,
                    .deadline_kept = -1,
                };
                if (avk_view_status(view, &status))
                        return -1;
        }
        return 0;
}

static int run(size_t n, int answers, int64_t t0)
{
        char analysis[ANSWER_BYTES / 2 + 1], plan[ANSWER_BYTES / 2 + 1];
        memset(analysis, 'a', sizeof(analysis) - 1);
        memset(plan, 'p', sizeof(plan) - 1);
        analysis[sizeof(analysis) - 1] = plan[sizeof(plan) - 1] = '\0';
        struct mallinfo2 before = mallinfo2();
        avk_view_t *view = avk_view_new(NULL);
        double start = now_s();
        if (!view || fill(view, n, t0, answers ? analysis : "", answers ? plan : "") != 0) {
                fprintf(stderr, "out of memory\n");
                avk_view_destroy(view);
                return 1;
        }
        double filled = now_s() - start;
        struct mallinfo2 after = mallinfo2();
        size_t heap = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
        printf("%zu deviations, answers %s: heap %.1f MB = %.0f bytes/deviation; view's account "
               "%.0f bytes/deviation; filled in %.2f s (%.0f ns/record)\n",
               n, answers ? "with text (600 B on every second)" : "without text",
               (double)heap / 1e6, (double)heap / (double)n,
               (double)avk_view_memory(view) / (double)n, filled, filled * 1e9 / (double)n / 5.5);
        if (answers) {
                char id[37];
                int64_t now = t0 + 200 * DAY_MS;
                enum { LOOKUPS = 100000, LISTS = 20 };
                start = now_s();
                for (size_t i = 0; i < LOOKUPS; i++) {
                        id_of(i * 7919 % n, id);
                        json_t *doc = avk_view_lookup(view, id, (int)(i * 7919 % n % 5) + 1, now);
                        char *text = json_dumps(doc, JSON_COMPACT);
                        free(text);
                        json_decref(doc);
                }
                printf("look-up with JSON text: %.1f us\n", (now_s() - start) * 1e6 / LOOKUPS);
                struct avk_view_query q = {.party = 1, .state = "all", .since_ms = 0, .limit = 100};
                int more;
                int64_t last_at;
                unsigned char last_id[16];
                start = now_s();
                for (int i = 0; i < LISTS; i++)
                        json_decref(avk_view_list(view, &q, now, &more, &last_at, last_id));
                printf("list page of 100 of one party's %zu: %.1f ms\n", n / 5,
                       (now_s() - start) * 1e3 / LISTS);
        }
        avk_view_destroy(view);
        return 0;
}

int main(int argc, char **argv)
{
        size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
        int64_t t0 = 1767225600000LL; /* 2026-01-01 */
        printf("bench_view (%s build)\n", AVK_BENCH_BUILD_TYPE);
        return run(n, 0, t0) || run(n, 1, t0);
}
