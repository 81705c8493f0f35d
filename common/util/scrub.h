/*
 * avk_scrub: removes from text what identifies a person directly: anything
 * that looks like a personnummer or samordningsnummer, a Swedish or
 * international phone number, or an e-mail address. Each is replaced by a
 * marker ([personnummer], [telefon], [e-post]) so a reader still sees that
 * something was there. Two kinds of text pass through it: free text before
 * it leaves the deviation topics (the analysis stream, the dashboard), and
 * every error text the project builds (common/util/errors.h, the gateway's
 * answers), so that no error can echo an identity. Rules and examples:
 * docs/analysis.md, "Scrubbing".
 *
 * Matching runs on a normalised view of the text (Unicode compatibility
 * forms, case folded, invisible characters dropped, every space, dash and
 * digit class folded to ASCII), so an identity is found in every spelling
 * a person can read; what is not replaced is copied byte for byte, so a
 * multibyte UTF-8 sequence is never split. The scanner errs toward
 * scrubbing: a personnummer is removed whether or not its check digit is
 * right in the usual spellings (a typo is still an identity). The result is
 * a fixed point: scrubbing it again changes nothing. Linear in the input.
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
 * @brief The scrubbed copy of text[0..len), which may hold any bytes.
 * @param counts receives what was replaced; may be NULL.
 * @param out_len receives the length of the result (without the NUL); may be NULL.
 * @returns a malloc'd, NUL-terminated string for the caller to free, or NULL
 * when out of memory.
 */
char *avk_scrub_text(const char *text, size_t len, size_t *out_len,
                     struct avk_scrub_counts *counts);

/**
 * @brief What avk_scrub_text() would replace in text[0..len), without the copy:
 * a check that rejects such text (a reference that must not carry an
 * identity) asks this per document. Text that cannot hold a match - ASCII
 * with fewer digits than the shortest phone number and no '@' or bracket -
 * is answered without scrubbing it.
 * @param counts receives what would be replaced.
 * @returns 0, or -1 when out of memory (counts then unset).
 */
int avk_scrub_count(const char *text, size_t len, struct avk_scrub_counts *counts);

/**
 * @brief Writes the scrubbed text (NUL-terminated) into dst[0..size), cut at
 * a character boundary when it does not fit: the one step every error text
 * takes before anyone can read it. Scrub the whole text and let this cut
 * it, never the other way round (a cut identity is no longer found).
 * When text is NULL (a caller out of memory) or the scrubber is, dst gets a
 * fixed sentence, never the text.
 * @returns dst.
 */
char *avk_scrub_copy(char *dst, size_t size, const char *text);

#endif
