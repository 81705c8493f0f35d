/* Shared by the fuzz harnesses: see support.h. */
#include "tests/fuzz/support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *const fuzz_record_names[] = {
    "DeviationReported",  "DeviationResponse", "DeviationRouted", "DeviationStatus",
    "DeviationEscalated", "DeadlineReminder",  "DeliveryFailed",  "AnalysisRecord",
};
const size_t fuzz_record_count = sizeof(fuzz_record_names) / sizeof(fuzz_record_names[0]);

const struct avk_json_opts fuzz_intake = {.flags = AVK_JSON_VALIDATE,
                                          .now_ms = 1795435200000LL,
                                          .skew_ms = 300000,
                                          .today_ymd = 20261123};

void fuzz_fail(const char *fmt, ...)
{
        va_list ap;
        fputs("fuzz: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        abort();
}

static avk_catalog_t *catalog;
static const avk_schema_t *older_reported;

/* Destroyed at exit, after the harnesses' values (atexit runs in reverse). */
static void release(void)
{
        avk_catalog_destroy(catalog);
}

const avk_catalog_t *fuzz_catalog(void)
{
        if (catalog)
                return catalog;
        char err[512];
        if (!(catalog = avk_catalog_new_builtin(err, sizeof(err))))
                fuzz_fail("the built-in catalog: %s", err);
        atexit(release);
        const char *path = AVK_SOURCE_DIR "/tests/data/deviation_reported_v2.avsc";
        FILE *f = fopen(path, "rb");
        static char text[65536];
        size_t len = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
        if (!f || len == 0 || len == sizeof(text) - 1)
                fuzz_fail("%s: cannot read it", path);
        fclose(f);
        text[len] = '\0';
        avk_schema_t *older = avk_schema_new(text, err, sizeof(err));
        if (!older || avk_catalog_add(catalog, older, err, sizeof(err)) != 0)
                fuzz_fail("%s: %s", path, err);
        older_reported = older;
        return catalog;
}

const avk_schema_t *fuzz_older_reported(void)
{
        fuzz_catalog();
        return older_reported;
}
