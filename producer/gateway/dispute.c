/* avk_dispute: see dispute.h. */
#include "producer/gateway/dispute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/util/calendar.h"

struct window {
        char *rule_id;
        int amount;
        int working; /* working days, else calendar days */
};

struct avk_dispute {
        struct window *windows;
        size_t cnt;
};

void avk_dispute_destroy(avk_dispute_t *dispute)
{
        if (!dispute)
                return;
        for (size_t i = 0; i < dispute->cnt; i++)
                free(dispute->windows[i].rule_id);
        free(dispute->windows);
        free(dispute);
}

/* One rule's window: {"days": N} or {"working_days": N}; absent is none (0). */
static int read_window(const json_t *rule, struct window *w, char *errstr, size_t errstr_size)
{
        const char *id = json_string_value(json_object_get(rule, "id"));
        if (!id) {
                snprintf(errstr, errstr_size, "rules[]: a rule without an id");
                return -1;
        }
        const json_t *span = json_object_get(rule, "dispute_window");
        const json_t *days = json_object_get(span, "days");
        const json_t *working = json_object_get(span, "working_days");
        if (span && (!json_is_integer(days ? days : working) || (days && working) ||
                     json_integer_value(days ? days : working) < 0 ||
                     json_integer_value(days ? days : working) > 3650)) {
                snprintf(errstr, errstr_size,
                         "%s.dispute_window: expected {\"days\": N} or {\"working_days\": N}, "
                         "N from 0 to 3650",
                         id);
                return -1;
        }
        w->amount = span ? (int)json_integer_value(days ? days : working) : 0;
        w->working = working != NULL;
        if (!(w->rule_id = strdup(id))) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        return 0;
}

avk_dispute_t *avk_dispute_load(const char *path, char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *root = json_load_file(path, 0, &jerr);
        if (!root) {
                snprintf(errstr, errstr_size, "%s line %d: %s", path, jerr.line, jerr.text);
                return NULL;
        }
        avk_dispute_t *d = calloc(1, sizeof(*d));
        const json_t *rules = json_object_get(root, "rules");
        if (!d || !json_is_array(rules)) {
                snprintf(errstr, errstr_size,
                         d ? "rules: missing or not an array" : "out of memory");
                goto fail;
        }
        if (!(d->windows = calloc(json_array_size(rules) + 1, sizeof(*d->windows)))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        for (size_t i = 0; i < json_array_size(rules); i++, d->cnt++) {
                if (read_window(json_array_get(rules, i), &d->windows[i], errstr, errstr_size) != 0)
                        goto fail;
        }
        json_decref(root);
        return d;
fail:
        json_decref(root);
        avk_dispute_destroy(d);
        return NULL;
}

int64_t avk_dispute_until(const avk_dispute_t *dispute, const char *rule_id, int64_t answered_ms)
{
        for (size_t i = 0; dispute && rule_id && i < dispute->cnt; i++) {
                const struct window *w = &dispute->windows[i];
                if (strcmp(w->rule_id, rule_id) != 0)
                        continue;
                if (w->amount == 0)
                        return answered_ms; /* no window: the answer closes it */
                return w->working ? avk_calendar_add_working_days(answered_ms, w->amount)
                                  : avk_calendar_add_days(answered_ms, w->amount);
        }
        return -1;
}
