/*
 * avk_agreement: which sub-agreement a deviation concerns, as the router's
 * rules and the analysis stream read it (docs/routing.md, "Text or
 * inference"): the reporter's Agreement symbol, or - when the reporter left it
 * UNKNOWN, as reporters mostly do - the one the category belongs to in the
 * agreement period of occurred_at (the 2027-2030 agreement from 2027-01-01
 * Swedish time). Pure, any thread.
 */
#ifndef AVK_AGREEMENT_H
#define AVK_AGREEMENT_H

#include <stdint.h>

/** 2027-01-01T00:00 in Sweden (CET, UTC+1): the 2027-2030 agreement's first moment, in ms. */
#define AVK_AGREEMENT_2027_FROM_MS 1798758000000LL

/**
 * @brief The Agreement symbol a deviation concerns.
 * @param agreement the reporter's symbol (NULL reads as UNKNOWN)
 * @param category the deviation's Category symbol, or NULL
 * @param derived set to 1 when the category decided it, else 0
 * @returns agreement itself, a static symbol derived from category, or
 * agreement (possibly NULL) when neither decides.
 */
const char *avk_agreement_of(const char *agreement, const char *category, int64_t occurred_at_ms,
                             int *derived);

#endif
