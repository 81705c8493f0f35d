/* avk_errors: see errors.h. */
#include "common/util/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void avk_errors_init(struct avk_errors *errs)
{
        errs->cnt = 0;
        errs->dropped = 0;
}

void avk_errors_add(struct avk_errors *errs, const char *path, const char *fmt, ...)
{
        if (errs->cnt == AVK_ERRORS_MAX) {
                errs->dropped++;
                return;
        }
        char *m = errs->msg[errs->cnt++];
        int n = 0;
        if (path && *path)
                n = snprintf(m, AVK_ERROR_MSG_SIZE, "%s: ", path);
        if (n >= AVK_ERROR_MSG_SIZE)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m + n, AVK_ERROR_MSG_SIZE - (size_t)n, fmt, ap);
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
