/*
 * avk_municipality: lookup in the generated table (municipality_gen.c).
 * 49 entries: a linear scan is faster than any index would be worth.
 */
#include "common/municipality.h"

#include <string.h>

const struct avk_municipality *avk_municipality_find(const char *code)
{
        if (code == NULL)
                return NULL;
        for (size_t i = 0; i < avk_municipality_cnt; i++) {
                if (strcmp(avk_municipalities[i].code, code) == 0)
                        return &avk_municipalities[i];
        }
        return NULL;
}
