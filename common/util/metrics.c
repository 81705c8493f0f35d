/*
 * avk_metrics: see metrics.h.
 *
 * Families and series live in fixed arrays whose filled length is published
 * with a release store after the entry is complete, so readers (updates that
 * look a series up, the renderer) walk them without a lock; only creation
 * takes the registry's mutex. A histogram keeps per-bucket counts (not
 * cumulative) and its sum as the bits of a double in an atomic integer,
 * updated by compare-and-swap, which C11 atomics allow for any integer.
 */
#include "common/util/metrics.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const type_names[] = {"counter", "gauge", "histogram"};

struct avk_metric {
        char *label_values[AVK_METRICS_MAX_LABELS];
        atomic_int_least64_t value;                                 /* counter, gauge */
        atomic_uint_least64_t buckets[AVK_METRICS_MAX_BUCKETS + 1]; /* histogram; last is +Inf */
        atomic_uint_least64_t sum_bits;                             /* histogram: a double */
        const avk_metric_family_t *family;
};

struct avk_metric_family {
        enum metric_type type;
        char *name, *help;
        char *label_names[AVK_METRICS_MAX_LABELS];
        size_t label_cnt;
        double bounds[AVK_METRICS_MAX_BUCKETS];
        size_t bound_cnt;
        avk_metrics_t *registry;
        atomic_size_t series_cnt;
        avk_metric_t *series[AVK_METRICS_MAX_SERIES];
};

struct avk_metrics {
        pthread_mutex_t lock; /* creation of families and series */
        atomic_size_t family_cnt;
        avk_metric_family_t *families[AVK_METRICS_MAX_FAMILIES];
};

avk_metrics_t *avk_metrics_new(void)
{
        avk_metrics_t *m = calloc(1, sizeof(*m));
        if (m)
                pthread_mutex_init(&m->lock, NULL);
        return m;
}

static void series_free(avk_metric_t *s, size_t label_cnt)
{
        if (!s)
                return;
        for (size_t i = 0; i < label_cnt; i++)
                free(s->label_values[i]);
        free(s);
}

static void family_free(avk_metric_family_t *f)
{
        if (!f)
                return;
        for (size_t i = 0; i < atomic_load(&f->series_cnt); i++)
                series_free(f->series[i], f->label_cnt);
        for (size_t i = 0; i < f->label_cnt; i++)
                free(f->label_names[i]);
        free(f->name);
        free(f->help);
        free(f);
}

void avk_metrics_destroy(avk_metrics_t *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < atomic_load(&m->family_cnt); i++)
                family_free(m->families[i]);
        pthread_mutex_destroy(&m->lock);
        free(m);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; without ':' for label names. */
static int valid_name(const char *s, int colon_ok)
{
        if (!s || !*s || isdigit((unsigned char)*s))
                return 0;
        for (; *s; s++) {
                if (!(isalnum((unsigned char)*s) || *s == '_' || (colon_ok && *s == ':')))
                        return 0;
        }
        return 1;
}

static avk_metric_t *series_new(avk_metric_family_t *f, const char *const *values)
{
        avk_metric_t *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->family = f;
        for (size_t i = 0; i < f->label_cnt; i++) {
                if (!(s->label_values[i] = strdup(values[i]))) {
                        series_free(s, f->label_cnt);
                        return NULL;
                }
        }
        return s;
}

/* Whether f is the family these arguments would register. */
static int same_family(const avk_metric_family_t *f, enum metric_type type,
                       const char *const *label_names, size_t label_cnt, const double *bounds,
                       size_t bound_cnt)
{
        if (f->type != type || f->label_cnt != label_cnt || f->bound_cnt != bound_cnt ||
            (bound_cnt && memcmp(f->bounds, bounds, bound_cnt * sizeof(*bounds)) != 0))
                return 0;
        for (size_t i = 0; i < label_cnt; i++)
                if (strcmp(f->label_names[i], label_names[i]) != 0)
                        return 0;
        return 1;
}

static avk_metric_family_t *family_add(avk_metrics_t *m, enum metric_type type, const char *name,
                                       const char *help, const char *const *label_names,
                                       const double *bounds, size_t bound_cnt)
{
        if (!m || !valid_name(name, 1) || !help || bound_cnt > AVK_METRICS_MAX_BUCKETS)
                return NULL;
        for (size_t i = 1; i < bound_cnt; i++) {
                if (!(bounds[i] > bounds[i - 1]))
                        return NULL;
        }
        size_t label_cnt = 0;
        while (label_names && label_names[label_cnt]) {
                const char *l = label_names[label_cnt];
                /* "__" is reserved by Prometheus, "le" by histograms. */
                if (label_cnt == AVK_METRICS_MAX_LABELS || !valid_name(l, 0) ||
                    strncmp(l, "__", 2) == 0 || (type == METRIC_HISTOGRAM && !strcmp(l, "le")))
                        return NULL;
                label_cnt++;
        }
        avk_metric_family_t *f = NULL;
        pthread_mutex_lock(&m->lock);
        size_t n = atomic_load(&m->family_cnt);
        for (size_t i = 0; i < n; i++) {
                if (strcmp(m->families[i]->name, name) == 0) {
                        if (same_family(m->families[i], type, label_names, label_cnt, bounds,
                                        bound_cnt))
                                f = m->families[i];
                        goto out;
                }
        }
        if (n == AVK_METRICS_MAX_FAMILIES || !(f = calloc(1, sizeof(*f))))
                goto out;
        f->type = type;
        f->registry = m;
        f->label_cnt = label_cnt;
        f->bound_cnt = bound_cnt;
        if (bound_cnt)
                memcpy(f->bounds, bounds, bound_cnt * sizeof(*bounds));
        int ok = (f->name = strdup(name)) && (f->help = strdup(help));
        for (size_t i = 0; ok && i < label_cnt; i++)
                ok = (f->label_names[i] = strdup(label_names[i])) != NULL;
        /* A family without labels has one series: it is there from the start,
         * so it renders (as 0) before its first update. */
        if (ok && label_cnt == 0) {
                ok = (f->series[0] = series_new(f, NULL)) != NULL;
                atomic_store(&f->series_cnt, ok ? 1 : 0);
        }
        if (!ok) {
                family_free(f);
                f = NULL;
                goto out;
        }
        m->families[n] = f;
        atomic_store_explicit(&m->family_cnt, n + 1, memory_order_release);
out:
        pthread_mutex_unlock(&m->lock);
        return f;
}

avk_metric_family_t *avk_metrics_counter(avk_metrics_t *m, const char *name, const char *help,
                                         const char *const *label_names)
{
        return family_add(m, METRIC_COUNTER, name, help, label_names, NULL, 0);
}

avk_metric_family_t *avk_metrics_gauge(avk_metrics_t *m, const char *name, const char *help,
                                       const char *const *label_names)
{
        return family_add(m, METRIC_GAUGE, name, help, label_names, NULL, 0);
}

avk_metric_family_t *avk_metrics_histogram(avk_metrics_t *m, const char *name, const char *help,
                                           const char *const *label_names, const double *bounds,
                                           size_t bound_cnt)
{
        if (!bounds || bound_cnt == 0)
                return NULL;
        return family_add(m, METRIC_HISTOGRAM, name, help, label_names, bounds, bound_cnt);
}

/* The series among the first n of f with these values, or NULL. */
static avk_metric_t *series_find(avk_metric_family_t *f, size_t n, const char *const *values)
{
        for (size_t i = 0; i < n; i++) {
                avk_metric_t *s = f->series[i];
                size_t l = 0;
                while (l < f->label_cnt && strcmp(s->label_values[l], values[l]) == 0)
                        l++;
                if (l == f->label_cnt)
                        return s;
        }
        return NULL;
}

avk_metric_t *avk_metrics_series(avk_metric_family_t *f, const char *const *values)
{
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->label_cnt; i++) {
                if (!values || !values[i])
                        return NULL;
        }
        size_t n = atomic_load_explicit(&f->series_cnt, memory_order_acquire);
        avk_metric_t *s = series_find(f, n, values);
        if (s)
                return s;
        pthread_mutex_lock(&f->registry->lock);
        n = atomic_load(&f->series_cnt);
        s = series_find(f, n, values); /* another thread may have made it meanwhile */
        if (!s && n < AVK_METRICS_MAX_SERIES && (s = series_new(f, values))) {
                f->series[n] = s;
                atomic_store_explicit(&f->series_cnt, n + 1, memory_order_release);
        }
        pthread_mutex_unlock(&f->registry->lock);
        return s;
}

void avk_metric_add(avk_metric_t *s, int64_t delta)
{
        if (s && s->family->type != METRIC_HISTOGRAM)
                atomic_fetch_add_explicit(&s->value, delta, memory_order_relaxed);
}

void avk_metric_set(avk_metric_t *s, int64_t value)
{
        if (s && s->family->type != METRIC_HISTOGRAM)
                atomic_store_explicit(&s->value, value, memory_order_relaxed);
}

int64_t avk_metric_value(const avk_metric_t *s)
{
        return s ? atomic_load_explicit(&s->value, memory_order_relaxed) : 0;
}

static double bits_to_double(uint64_t bits)
{
        double d;
        memcpy(&d, &bits, sizeof(d));
        return d;
}

static uint64_t double_to_bits(double d)
{
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        return bits;
}

void avk_metric_observe(avk_metric_t *s, double value)
{
        if (!s || s->family->type != METRIC_HISTOGRAM)
                return;
        const avk_metric_family_t *f = s->family;
        size_t b = 0;
        while (b < f->bound_cnt && value > f->bounds[b])
                b++;
        atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
        uint64_t old = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&s->sum_bits, &old,
                                                      double_to_bits(bits_to_double(old) + value),
                                                      memory_order_relaxed, memory_order_relaxed))
                ;
}

/* Writes s escaped for a HELP line (quotes = 0) or a label value (quotes = 1). */
static void put_escaped(FILE *out, const char *s, int quotes)
{
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", out);
                else if (*s == '\n')
                        fputs("\\n", out);
                else if (quotes && *s == '"')
                        fputs("\\\"", out);
                else
                        fputc(*s, out);
        }
}

/* name{a="x",b="y"[,le="bound"]}; the braces only when there is a label. */
static void put_series_name(FILE *out, const avk_metric_family_t *f, const avk_metric_t *s,
                            const char *suffix, const char *le)
{
        fprintf(out, "%s%s", f->name, suffix);
        if (f->label_cnt == 0 && !le)
                return;
        fputc('{', out);
        for (size_t i = 0; i < f->label_cnt; i++) {
                fprintf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
                put_escaped(out, s->label_values[i], 1);
                fputc('"', out);
        }
        if (le)
                fprintf(out, "%sle=\"%s\"", f->label_cnt ? "," : "", le);
        fputc('}', out);
}

static void put_histogram(FILE *out, const avk_metric_family_t *f, const avk_metric_t *s)
{
        /* _count is the sum of the buckets read here, so that it always
         * equals the +Inf bucket even while observations land. */
        uint64_t cumulative = 0;
        char le[64];
        for (size_t b = 0; b <= f->bound_cnt; b++) {
                cumulative += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
                if (b < f->bound_cnt)
                        snprintf(le, sizeof(le), "%.15g", f->bounds[b]);
                put_series_name(out, f, s, "_bucket", b < f->bound_cnt ? le : "+Inf");
                fprintf(out, " %" PRIu64 "\n", cumulative);
        }
        put_series_name(out, f, s, "_sum", NULL);
        fprintf(out, " %.15g\n",
                bits_to_double(atomic_load_explicit(&s->sum_bits, memory_order_relaxed)));
        put_series_name(out, f, s, "_count", NULL);
        fprintf(out, " %" PRIu64 "\n", cumulative);
}

char *avk_metrics_render(avk_metrics_t *m)
{
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        if (!out)
                return NULL;
        size_t families = atomic_load_explicit(&m->family_cnt, memory_order_acquire);
        for (size_t i = 0; i < families; i++) {
                const avk_metric_family_t *f = m->families[i];
                fprintf(out, "# HELP %s ", f->name);
                put_escaped(out, f->help, 0);
                fprintf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
                size_t n = atomic_load_explicit(&f->series_cnt, memory_order_acquire);
                for (size_t j = 0; j < n; j++) {
                        const avk_metric_t *s = f->series[j];
                        if (f->type == METRIC_HISTOGRAM) {
                                put_histogram(out, f, s);
                                continue;
                        }
                        put_series_name(out, f, s, "", NULL);
                        fprintf(out, " %" PRId64 "\n",
                                (int64_t)atomic_load_explicit(&s->value, memory_order_relaxed));
                }
        }
        if (fclose(out) != 0) {
                free(text);
                return NULL;
        }
        return text;
}
