/*
 * avk_luhn: the Luhn check digit that ends a personnummer, a
 * samordningsnummer and an organisation number (the first part of an
 * HSA-id). At the bottom layer because both the identifier validators
 * (common/contract/ident.h) and the scrubber (common/util/scrub.h) use it.
 */
#ifndef AVK_LUHN_H
#define AVK_LUHN_H

#include <stddef.h>

/**
 * @brief The Luhn check digit over n ASCII digits (weights 2,1,2,1,... from the
 * left; digits of each product summed; (10 - sum mod 10) mod 10).
 * @returns 0..9, or -1 when digits is NULL or one of the n is not a digit.
 */
int avk_luhn(const char *digits, size_t n);

#endif
