/* avk_path: see path.h. */
#include "common/util/path.h"

#include <stdio.h>

char *avk_path_format(const struct avk_path *p, char *buf, size_t size)
{
        size_t off = 0;
        int kept = p->depth < AVK_PATH_MAX_DEPTH ? p->depth : AVK_PATH_MAX_DEPTH;
        buf[0] = '\0';
        for (int i = 0; i < kept && off < size; i++) {
                int n = p->seg[i].name ? snprintf(buf + off, size - off, "%s%s", off ? "." : "",
                                                  p->seg[i].name)
                                       : snprintf(buf + off, size - off, "[%ld]", p->seg[i].index);
                if (n < 0)
                        break;
                off += (size_t)n;
        }
        if (kept < p->depth && off < size)
                snprintf(buf + off, size - off, "...");
        return buf;
}
