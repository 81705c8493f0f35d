/*
 * bench_scrub: the scrubber's cost per KB of free text (common/util/scrub.h),
 * no Kafka. Three texts of 64 KB each, cut into descriptions of about 1 KB
 * (what a deviation carries):
 *  - plain: Swedish prose with dates, times, doses and codes, no identity;
 *  - planted: the same with a personnummer, a phone number and an e-mail
 *    address in every description;
 *  - unicode: the planted text with its separators, digits and hyphens
 *    spelled in other Unicode forms (no-break spaces, U+2010, fullwidth
 *    digits, soft hyphens).
 * Each is scrubbed for at least a second; the best of five rounds is
 * printed as ns per KB and MB/s.
 *
 * usage: bench_scrub
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util/scrub.h"

#define TEXT_SIZE   (64 * 1024)
#define DESCRIPTION 1024
#define ROUNDS      5

static const char *const prose[] = {
    "Patienten skrevs ut fr\xc3\xa5n avdelning 34 den 2026-11-20 kl 14:30 utan "
    "l\xc3\xa4kemedelslista. ",
    "Hemsjukv\xc3\xa5rden fick ingen information om dosen 0,5 mg x 2 f\xc3\xb6re "
    "v. 47. ",
    "Kommunen (1480) kontaktade enheten SE2321000131-E000000012345 men fick inget svar "
    "p\xc3\xa5 tre dagar. ",
    "\xc3\x84rende 2026-123456 \xc3\xa5terkom efter 10-15 minuter i telefonk\xc3\xb6. ",
    "Anh\xc3\xb6rig uppgav att insulinet saknades och att ingen ringde tillbaka. ",
};

static const char *const planted[] = {
    "pnr 400314-1233 ",
    "ring 070-123 45 67 ",
    "mejla anna.andersson@vgregion.se ",
    "samordningsnummer 701063-2391 ",
    "+46 31 123 45 67 ",
};

static const char *const unicode[] = {
    "pnr 400314\xe2\x80\x90"
    "1233 ",
    "ring 070\xc2\xa0"
    "123\xc2\xa0"
    "45\xc2\xa0"
    "67 ",
    "mejla anna.andersson\xef\xbc\xa0vgregion.se ",
    "samordningsnummer \xef\xbc\x97\xef\xbc\x90\xef\xbc\x91\xef\xbc\x90\xef\xbc\x96\xef\xbc\x93"
    "-2\xc2\xad"
    "391 ",
    "+46\xe2\x80\xaf"
    "31 123 45 67 ",
};

/* Fills text with descriptions of about DESCRIPTION bytes; returns their count. */
static size_t fill(char *text, size_t *starts, const char *const *extra, size_t extra_cnt)
{
        size_t len = 0, cnt = 0, k = 0;
        while (len + DESCRIPTION < TEXT_SIZE) {
                starts[cnt++] = len;
                size_t end = len + DESCRIPTION - 200;
                while (len < end) {
                        const char *p = prose[k % (sizeof(prose) / sizeof(prose[0]))];
                        memcpy(text + len, p, strlen(p));
                        len += strlen(p);
                        if (extra && k % 2 == 0) {
                                const char *e = extra[(k / 2) % extra_cnt];
                                memcpy(text + len, e, strlen(e));
                                len += strlen(e);
                        }
                        k++;
                }
        }
        starts[cnt] = len;
        return cnt;
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const char *name, const char *const *extra, size_t extra_cnt)
{
        static char text[TEXT_SIZE];
        static size_t starts[TEXT_SIZE / DESCRIPTION + 1];
        size_t cnt = fill(text, starts, extra, extra_cnt);
        size_t bytes = starts[cnt];
        double best = 0;
        for (int round = 0; round < ROUNDS; round++) {
                size_t done = 0;
                double start = now_s(), elapsed;
                do {
                        for (size_t i = 0; i < cnt; i++) {
                                char *out = avk_scrub_text(text + starts[i],
                                                           starts[i + 1] - starts[i], NULL, NULL);
                                if (!out)
                                        return -1;
                                free(out);
                        }
                        done += bytes;
                        elapsed = now_s() - start;
                } while (elapsed < 1.0);
                double ns_per_kb = elapsed * 1e9 / ((double)done / 1024);
                if (round == 0 || ns_per_kb < best)
                        best = ns_per_kb;
        }
        printf("%-8s %8.0f ns/KB %8.1f MB/s\n", name, best, 1e9 / best / 1024);
        return 0;
}

int main(void)
{
        printf("bench_scrub (%s build), descriptions of about %d bytes, best of %d rounds\n",
               AVK_BENCH_BUILD_TYPE, DESCRIPTION, ROUNDS);
        if (run("plain", NULL, 0) != 0 ||
            run("planted", planted, sizeof(planted) / sizeof(planted[0])) != 0 ||
            run("unicode", unicode, sizeof(unicode) / sizeof(unicode[0])) != 0) {
                fprintf(stderr, "bench_scrub: out of memory\n");
                return 1;
        }
        return 0;
}
