/* avk_arena: see arena.h. */
#include "common/util/arena.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALIGN 16

/* At the start of every chunk: the chunks form a list for destroy. */
struct chunk {
        struct chunk *prev;
        size_t size; /* mapped, this header included */
};

#define HEADER (((sizeof(struct chunk) + ALIGN - 1) / ALIGN) * ALIGN)

struct avk_arena {
        struct chunk *last;
        char *next, *end; /* free room of the last chunk */
        char *filled;     /* the last chunk is faulted in up to here */
        size_t next_size; /* of the next ordinary chunk */
        size_t mapped;
};

avk_arena_t *avk_arena_new(void)
{
        avk_arena_t *a = calloc(1, sizeof(*a));
        if (a)
                a->next_size = AVK_ARENA_FIRST_CHUNK;
        return a;
}

static size_t round_up(size_t n, size_t to)
{
        return (n + to - 1) / to * to;
}

/* Faults the last chunk in ahead of its use, AVK_ARENA_FILL_STEP at a time:
 * one call instead of a fault per page (a page fault costs a kernel entry
 * and exit, in a virtual machine a costly one), and only pages about to be
 * used, since the kernel zeroes each page it faults in: the whole chunk at
 * once zeroed the half of a doubled chunk that a partition never filled.
 * Kernels before 5.14 refuse it and the pages fault in as they are
 * touched. */
static void populate_to(avk_arena_t *a, const char *until)
{
        if (until <= a->filled)
                return;
        size_t want = round_up((size_t)(until - a->filled), AVK_ARENA_FILL_STEP);
        if (want > (size_t)(a->end - a->filled))
                want = (size_t)(a->end - a->filled);
        madvise(a->filled, want, MADV_POPULATE_WRITE);
        a->filled += want;
}

/* size bytes from the kernel, in ordinary 4 KB pages even where transparent
 * huge pages are "always". On these virtual machines the kernel's fresh 2 MB
 * pages fault in at about 0.5 GB/s against 2.5-3 GB/s for 4 KB pages (a 2 MB
 * page needs a free block the host has not backed lately): as huge pages, the
 * state the router adds while routing took 14% of its thread in the kernel
 * zeroing them (docs/router.md, "State, and how a replay writes the same
 * outputs"). */
static void *map_chunk(size_t size)
{
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return NULL;
        madvise(p, size, MADV_NOHUGEPAGE);
        return p;
}

void *avk_arena_alloc(avk_arena_t *a, size_t size)
{
        size = round_up(size ? size : 1, ALIGN);
        if (size > (size_t)(a->end - a->next)) {
                size_t chunk = a->next_size;
                if (size + HEADER > chunk)
                        chunk = round_up(size + HEADER, (size_t)sysconf(_SC_PAGESIZE));
                else if (a->next_size < AVK_ARENA_BIG_CHUNK)
                        a->next_size *= 2;
                struct chunk *c = map_chunk(chunk);
                if (!c)
                        return NULL;
                *c = (struct chunk){.prev = a->last, .size = chunk};
                a->last = c;
                a->next = (char *)c + HEADER;
                a->end = (char *)c + chunk;
                a->filled = (char *)c; /* page-aligned, as madvise() needs */
                a->mapped += chunk;
        }
        populate_to(a, a->next + size);
        void *p = a->next;
        a->next += size;
        return p;
}

size_t avk_arena_mapped(const avk_arena_t *a)
{
        return a->mapped;
}

void avk_arena_destroy(avk_arena_t *a)
{
        if (!a)
                return;
        for (struct chunk *c = a->last, *prev; c; c = prev) {
                prev = c->prev;
                munmap(c, c->size);
        }
        free(a);
}
