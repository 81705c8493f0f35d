/*
 * avk_municipality: the directory of the county's 49 municipalities, compiled
 * in from data/municipalities.csv (official SCB kommunkod and sub-region).
 */
#ifndef AVK_MUNICIPALITY_H
#define AVK_MUNICIPALITY_H

#include <stddef.h>

struct avk_municipality {
        const char *code;      /**< SCB kommunkod, four digits, e.g. "1480" */
        const char *name;      /**< e.g. "Göteborg" */
        const char *subregion; /**< Fyrbodal, Göteborgsregionen, Skaraborg or Södra Älvsborg
                                  (health-care collaboration's names) */
};

/** The generated table, in the CSV's order: by code, ascending (the generator checks it). */
extern const struct avk_municipality avk_municipalities[];
extern const size_t avk_municipality_cnt;

/**
 * @brief Finds a municipality by its four-digit code (binary search: it runs
 * several times for every deviation filed).
 * @returns the entry (static storage) or NULL when the code is not one of the 49.
 */
const struct avk_municipality *avk_municipality_find(const char *code);

#endif
