/*
 * avk_municipality: lookup in the generated table (municipality_gen.c),
 * which is sorted by code. A deviation's intake looks codes up several times
 * (its municipality, reporter and location parties): six comparisons
 * instead of a scan's twenty-five on average.
 */
#include "common/contract/municipality.h"

#include <stddef.h>
#include <stdint.h>

/* A four-byte code as a number that sorts as strcmp() sorts the codes. */
static uint32_t code_key(const char *code)
{
        const unsigned char *c = (const unsigned char *)code;
        return (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
}

const struct avk_municipality *avk_municipality_find(const char *code)
{
        /* Every code in the table has four characters: a string of another
         * length is none of them. Then a comparison is one of two numbers,
         * not a call to strcmp() through bsearch(). */
        if (code == NULL || !code[0] || !code[1] || !code[2] || !code[3] || code[4])
                return NULL;
        uint32_t key = code_key(code);
        size_t lo = 0, hi = avk_municipality_cnt;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                uint32_t at = code_key(avk_municipalities[mid].code);
                if (at == key)
                        return &avk_municipalities[mid];
                if (at < key)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}
