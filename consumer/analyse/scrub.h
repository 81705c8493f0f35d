/*
 * avk_scrub: removes from free text what identifies a person directly before
 * the text leaves the deviation topics (the analysis stream): anything that
 * looks like a personnummer or samordningsnummer, a Swedish or international
 * phone number, or an e-mail address. Each is replaced by a marker
 * ([personnummer], [telefon], [e-post]) so a reader still sees that something
 * was there. Rules and examples: docs/analysis.md, "Scrubbing".
 *
 * The scanner errs toward scrubbing: a personnummer is removed whether or not
 * its check digit is right (a typo is still an identity), in every usual
 * spelling (10 or 12 digits, '-', '+', spaces). Dates, times, years, HSA-ids
 * and municipality codes are left alone. It reads each byte a bounded number
 * of times (linear in the input) and copies everything it does not replace
 * byte for byte, so a multibyte UTF-8 sequence is never split.
 */
#ifndef AVK_SCRUB_H
#define AVK_SCRUB_H

#include <stddef.h>

#define AVK_SCRUB_PERSONAL_ID "[personnummer]"
#define AVK_SCRUB_PHONE       "[telefon]"
#define AVK_SCRUB_EMAIL       "[e-post]"

/** What one call replaced (for metrics: counts, never the text). */
struct avk_scrub_counts {
        size_t personal_ids; /**< personnummer and samordningsnummer */
        size_t phones;
        size_t emails;
};

/**
 * @brief The scrubbed copy of text[0..len).
 * @param counts receives what was replaced; may be NULL.
 * @param out_len receives the length of the result (without the NUL); may be NULL.
 * @returns a malloc'd, NUL-terminated string for the caller to free, or NULL
 * when out of memory.
 */
char *avk_scrub_text(const char *text, size_t len, size_t *out_len,
                     struct avk_scrub_counts *counts);

#endif
