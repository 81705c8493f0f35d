/* avk_utf8: see utf8.h. */
#include "common/contract/utf8.h"

#include <stdint.h>
#include <string.h>

#define ASCII_MASK UINT64_C(0x8080808080808080)
#define LOW_ONES   UINT64_C(0x0101010101010101)

/* The one walk of both checks; refuse_nul is a constant at each call, so
 * the compiler drops the NUL test where it is not wanted. */
static inline size_t invalid_at(const unsigned char *s, size_t n, int refuse_nul)
{
        size_t i = 0;
        while (i < n) {
                /* Most text is ASCII: eight bytes at a time while it is. A
                 * NUL byte sets its high bit in (word - LOW_ONES) & ~word. */
                uint64_t word;
                if (i + sizeof(word) <= n) {
                        memcpy(&word, s + i, sizeof(word));
                        uint64_t stop = word;
                        if (refuse_nul)
                                stop |= (word - LOW_ONES) & ~word;
                        if (!(stop & ASCII_MASK)) {
                                i += sizeof(word);
                                continue;
                        }
                }
                unsigned char b = s[i];
                size_t k;
                uint32_t cp;
                if (b == 0 && refuse_nul) {
                        return i;
                } else if (b < 0x80) {
                        i++;
                        continue;
                } else if ((b & 0xE0) == 0xC0) {
                        k = 1, cp = b & 0x1F;
                } else if ((b & 0xF0) == 0xE0) {
                        k = 2, cp = b & 0x0F;
                } else if ((b & 0xF8) == 0xF0) {
                        k = 3, cp = b & 0x07;
                } else {
                        return i;
                }
                if (i + k >= n)
                        return i;
                for (size_t j = 1; j <= k; j++) {
                        if ((s[i + j] & 0xC0) != 0x80)
                                return i;
                        cp = (cp << 6) | (s[i + j] & 0x3F);
                }
                static const uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
                if (cp < min_cp[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return i;
                i += k + 1;
        }
        return n;
}

size_t avk_utf8_invalid_at(const void *s, size_t n)
{
        return invalid_at(s, n, 0);
}

size_t avk_utf8_text_invalid_at(const void *s, size_t n)
{
        return invalid_at(s, n, 1);
}

size_t avk_utf8_chars(const void *s, size_t n)
{
        /* Every byte but a continuation byte (10xxxxxx) starts a character:
         * eight bytes at a time, a continuation byte being one whose bit 7
         * is set and bit 6 clear. Free text is long: byte by byte this was
         * a tenth of the single pass's own instructions. */
        const unsigned char *b = s;
        size_t chars = n, i = 0;
        for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
                uint64_t word;
                memcpy(&word, b + i, sizeof(word));
                /* One bit a continuation byte, at the bottom of its byte;
                 * the multiplication adds the eight bytes into the top one. */
                uint64_t continuation = (word & ~(word << 1) & ASCII_MASK) >> 7;
                chars -= (size_t)((continuation * LOW_ONES) >> 56);
        }
        for (; i < n; i++)
                chars -= (b[i] & 0xC0) == 0x80;
        return chars;
}
