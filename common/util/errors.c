/*
 * avk_errors: see errors.h. Every message is scrubbed here, whole, before
 * it is cut to fit: this is the one place field errors are built, and a
 * field error quotes what the sender wrote.
 */
#include "common/util/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/scrub.h"

void avk_errors_init(struct avk_errors *errs)
{
        errs->cnt = 0;
        errs->dropped = 0;
}

/* "path: reason" formatted whole (malloc'd), or NULL when out of memory. */
__attribute__((format(printf, 2, 0))) static char *format_line(const char *path, const char *fmt,
                                                               va_list ap)
{
        const char *sep = path && *path ? ": " : "";
        va_list again;
        va_copy(again, ap);
        int head = snprintf(NULL, 0, "%s%s", path ? path : "", sep);
        int body = vsnprintf(NULL, 0, fmt, ap);
        char *line = head >= 0 && body >= 0 ? malloc((size_t)head + (size_t)body + 1) : NULL;
        if (line) {
                snprintf(line, (size_t)head + 1, "%s%s", path ? path : "", sep);
                vsnprintf(line + head, (size_t)body + 1, fmt, again);
        }
        va_end(again);
        return line;
}

void avk_errors_addv(struct avk_errors *errs, const char *path, const char *fmt, va_list ap)
{
        if (errs->cnt == AVK_ERRORS_MAX) {
                errs->dropped++;
                return;
        }
        char *line = format_line(path, fmt, ap);
        avk_scrub_copy(errs->msg[errs->cnt++], AVK_ERROR_MSG_SIZE, line);
        free(line);
}

void avk_errors_add(struct avk_errors *errs, const char *path, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        avk_errors_addv(errs, path, fmt, ap);
        va_end(ap);
}

size_t avk_errors_total(const struct avk_errors *errs)
{
        return errs->cnt + errs->dropped;
}

char *avk_errors_join(const struct avk_errors *errs, char *buf, size_t size)
{
        size_t off = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < errs->cnt && off < size; i++)
                off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? "; " : "", errs->msg[i]);
        if (errs->dropped && off < size)
                snprintf(buf + off, size - off, " (and %zu more)", errs->dropped);
        return buf;
}
