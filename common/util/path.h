/*
 * avk_path: the field path of a schema walk ("patient.personal_id",
 * "items[3]"), kept as a stack of segments and formatted only when an error
 * needs it - formatting at every field was a third of the decode time.
 */
#ifndef AVK_PATH_H
#define AVK_PATH_H

#include <stddef.h>

#define AVK_PATH_MAX_DEPTH 64

struct avk_path {
        int depth; /**< may exceed AVK_PATH_MAX_DEPTH; deeper segments are not kept */
        struct {
                const char *name; /**< NULL for an array index; must outlive the walk */
                long index;
        } seg[AVK_PATH_MAX_DEPTH];
};

static inline void avk_path_init(struct avk_path *p)
{
        p->depth = 0;
}

static inline void avk_path_push(struct avk_path *p, const char *name, long index)
{
        if (p->depth < AVK_PATH_MAX_DEPTH) {
                p->seg[p->depth].name = name;
                p->seg[p->depth].index = index;
        }
        p->depth++;
}

static inline void avk_path_pop(struct avk_path *p)
{
        p->depth--;
}

/** @brief Writes the path ("a.b[3].c", "" at the root) into buf. @returns buf. */
char *avk_path_format(const struct avk_path *p, char *buf, size_t size);

#endif
