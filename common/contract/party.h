/*
 * avk_party: the parties of the agreement as small integers - VGR is 0, the
 * county's 49 municipalities follow in the directory's order (1..49) - for
 * tables that hold a party per entry (tokens, the deviation index) in a byte
 * instead of a string.
 */
#ifndef AVK_PARTY_H
#define AVK_PARTY_H

#include <stddef.h>

#define AVK_PARTY_VGR 0
#define AVK_PARTY_MAX 49 /**< the highest party number: the 49th municipality */

/**
 * @brief The party number of "VGR" or a municipality code.
 * @returns 0..AVK_PARTY_MAX, or -1 with avk_ident_party()'s reason in errstr.
 */
int avk_party_parse(const char *code, char *errstr, size_t errstr_size);

/** @brief "VGR" or the municipality code of party (static storage); NULL when out of range. */
const char *avk_party_code(int party);

#endif
