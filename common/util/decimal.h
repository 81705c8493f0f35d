/*
 * avk_decimal: an unsigned number in decimal, without snprintf. For text
 * made on a hot path - a routed record's hop, a request's id and status
 * label - where parsing a format string cost more than writing the digits.
 */
#ifndef AVK_DECIMAL_H
#define AVK_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/** Room for any uint64_t in decimal and its NUL. */
#define AVK_DECIMAL_SIZE 21

/**
 * @brief Writes v in decimal (no sign, no leading zeros; "0" for 0) and a NUL
 * into buf, which has room for AVK_DECIMAL_SIZE bytes or for v's digits and the NUL.
 * @returns the number of digits written.
 */
size_t avk_decimal(char *buf, uint64_t v);

#endif
