/*
 * avk_scrub: see scrub.h; the rules with examples are in docs/analysis.md.
 *
 * Two passes, each linear:
 *  1. e-mail addresses: around every '@', the local part backwards (never
 *     past the previous '@' or address) and the domain forwards up to its
 *     last ".tld" of two or more ASCII letters;
 *  2. numbers: a run is digit groups joined by at most SEP_MAX separator
 *     characters (space, '-', '+', parentheses, and their Unicode cousins
 *     no-break space, thin space, en dash, minus sign). Each run is cut
 *     greedily from the left into personal identity numbers (tried first:
 *     a number that could be either is removed as the more sensitive one)
 *     and phone numbers; groups that fit neither stay.
 * Only ASCII bytes and whole UTF-8 sequences of the separators above ever
 * end up inside a replaced span, and everything else is copied as is, so a
 * multibyte sequence is never split.
 */
#include "consumer/analyse/scrub.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/ident.h"

#define MAX_GROUPS        64 /* digit groups of one run; a longer run is cut */
#define SEP_MAX           3  /* separator characters between two groups: " - ", ") " */
#define PHONE_MIN_DIGITS  7  /* "08-123 45" */
#define NATIONAL_MAX      11 /* "0771-123 45 67 8" is already too long */
#define INTERNATIONAL_MAX 15 /* E.164 */

struct group {
        size_t start, end; /* the digits, [start, end) */
        int plus;          /* a '+' right before the digits */
        int paren;         /* a '(' right before the digits */
        int in_word;       /* glued to a letter or digit before it (e.g. an HSA-id) */
};

struct out {
        char *p;
        size_t len;
};

static int is_digit(unsigned char c)
{
        return c >= '0' && c <= '9';
}

static int is_alpha(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Bytes of one separator character at s, 0 when s does not start one. */
static size_t sep_len(const unsigned char *s, size_t left)
{
        if (left >= 1 && (s[0] == ' ' || s[0] == '-' || s[0] == '+' || s[0] == '(' || s[0] == ')' ||
                          s[0] == '\t'))
                return 1;
        if (left >= 2 && s[0] == 0xc2 && s[1] == 0xa0) /* U+00A0 no-break space */
                return 2;
        if (left >= 3 && s[0] == 0xe2 && s[1] == 0x80 &&
            (s[2] == 0x89 || s[2] == 0xaf || /* U+2009 thin space, U+202F narrow no-break */
             s[2] == 0x91 || s[2] == 0x93))  /* U+2011 no-break hyphen, U+2013 en dash */
                return 3;
        if (left >= 3 && s[0] == 0xe2 && s[1] == 0x88 && s[2] == 0x92) /* U+2212 minus */
                return 3;
        return 0;
}

static void emit(struct out *o, const char *s, size_t n)
{
        memcpy(o->p + o->len, s, n);
        o->len += n;
}

/* ---- e-mail addresses -------------------------------------------------- */

/* Bytes of a local part: RFC 5322's common subset, and any non-ASCII byte
 * (an internationalised address, "åsa@..."). */
static int is_local(unsigned char c)
{
        return c >= 0x80 || is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '%' ||
               c == '+' || c == '-';
}

static int is_domain(unsigned char c)
{
        return c >= 0x80 || is_alpha(c) || is_digit(c) || c == '.' || c == '-';
}

/*
 * The end of the address whose '@' is at, or 0 when there is none: the
 * domain runs to the end of its last label of two or more ASCII letters
 * after a dot, so that text glued to it ("a@b.se–070") is not taken along.
 */
static size_t email_end(const unsigned char *s, size_t len, size_t at)
{
        size_t end = 0, i = at + 1;
        while (i < len && is_domain(s[i])) {
                if (s[i] == '.' && i > at + 1) {
                        size_t letters = 0;
                        while (i + 1 + letters < len && is_alpha(s[i + 1 + letters]))
                                letters++;
                        if (letters >= 2)
                                end = i + 1 + letters;
                        i += 1 + letters;
                        continue;
                }
                i++;
        }
        return end;
}

struct span {
        size_t start, end;
};

/* Finds every address; returns how many spans were written to *spans (malloc'd). */
static size_t find_emails(const unsigned char *s, size_t len, struct span **spans, int *oom)
{
        size_t cnt = 0, cap = 0, floor = 0;
        *spans = NULL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] != '@')
                        continue;
                size_t start = i;
                while (start > floor && is_local(s[start - 1]))
                        start--;
                while (start < i && s[start] == '.')
                        start++;
                size_t end = start < i ? email_end(s, len, i) : 0;
                floor = i + 1;
                if (!end)
                        continue;
                if (cnt == cap) {
                        size_t grown = cap ? cap * 2 : 4;
                        struct span *p = realloc(*spans, grown * sizeof(*p));
                        if (!p) {
                                *oom = 1;
                                return cnt;
                        }
                        *spans = p;
                        cap = grown;
                }
                (*spans)[cnt++] = (struct span){start, end};
                floor = end;
                i = end - 1;
        }
        return cnt;
}

/* ---- numbers ----------------------------------------------------------- */

static size_t digits_of(const struct group *g)
{
        return g->end - g->start;
}

/* A birth date part: month 01-12, day 01-31, or 61-91 (samordningsnummer). */
static int date_like(const char *mmdd)
{
        int mm = (mmdd[0] - '0') * 10 + (mmdd[1] - '0');
        int dd = (mmdd[2] - '0') * 10 + (mmdd[3] - '0');
        return mm >= 1 && mm <= 12 && ((dd >= 1 && dd <= 31) || (dd >= 61 && dd <= 91));
}

/* Separators between groups a and b hold no parenthesis. */
static int plain_between(const unsigned char *s, const struct group *a, const struct group *b)
{
        for (size_t i = a->end; i < b->start; i++)
                if (s[i] == '(' || s[i] == ')')
                        return 0;
        return 1;
}

/* The spellings of a personnummer: digit counts per group, and whether only
 * a right check digit tells it from a date and time or a phone number. */
static const struct {
        int cnt;
        int len[4];
        int need_luhn;
} pnr_shapes[] = {
    {1, {10}, 0},         {1, {12}, 0},         {2, {6, 4}, 0},    {2, {8, 4}, 0},
    {4, {2, 2, 2, 4}, 1}, {4, {4, 2, 2, 4}, 1}, {3, {6, 2, 2}, 1}, {3, {8, 2, 2}, 1},
};

/* Whether groups g[i..] start with a personal identity number; *last gets its last group. */
static int match_personal_id(const unsigned char *s, const struct group *g, size_t n, size_t i,
                             size_t *last)
{
        if (g[i].plus)
                return 0; /* "+46...": a phone number */
        for (size_t k = 0; k < sizeof(pnr_shapes) / sizeof(pnr_shapes[0]); k++) {
                int cnt = pnr_shapes[k].cnt;
                if (i + (size_t)cnt > n)
                        continue;
                char d[13];
                size_t dl = 0;
                int fits = 1;
                for (int j = 0; j < cnt && fits; j++) {
                        const struct group *gj = &g[i + (size_t)j];
                        fits = digits_of(gj) == (size_t)pnr_shapes[k].len[j] &&
                               (j == 0 || plain_between(s, gj - 1, gj));
                        if (fits) {
                                memcpy(d + dl, s + gj->start, digits_of(gj));
                                dl += digits_of(gj);
                        }
                }
                if (!fits)
                        continue;
                const char *ten = d + (dl - 10); /* YYMMDDNNNC */
                if (dl == 12 && !((d[0] == '1' && (d[1] == '8' || d[1] == '9')) ||
                                  (d[0] == '2' && d[1] == '0')))
                        continue;
                if (!date_like(ten + 2))
                        continue;
                /* Ten digits from 0: "0701234567" is a mobile number unless the
                 * check digit says a person born 2000-2009. */
                int need_luhn = pnr_shapes[k].need_luhn || (cnt == 1 && dl == 10 && d[0] == '0');
                if (need_luhn && avk_ident_luhn(ten, 9) != ten[9] - '0')
                        continue;
                *last = i + (size_t)cnt - 1;
                return 1;
        }
        return 0;
}

/*
 * Whether groups g[i..] start with a phone number: international ("+46 70
 * ...", "0046 ...", up to 15 digits) or Swedish (a leading 0, 7 to 11
 * digits, the first group "08" or three digits or more, so that "05-01-2026"
 * is not one). A following group that starts a personal identity number or
 * another "+" number is not taken along.
 */
static int match_phone(const unsigned char *s, const struct group *g, size_t n, size_t i,
                       size_t *last)
{
        const struct group *first = &g[i];
        const unsigned char *d = s + first->start;
        size_t len = digits_of(first), max, total;
        if (first->in_word && !first->plus)
                return 0;
        if (first->plus) {
                max = INTERNATIONAL_MAX;
                total = len;
        } else if (len >= 3 && d[0] == '0' && d[1] == '0' && d[2] != '0') {
                max = INTERNATIONAL_MAX;
                total = len - 2;
        } else if (len == 2 && d[0] == '0' && d[1] == '0' && i + 1 < n &&
                   s[g[i + 1].start] != '0') {
                max = INTERNATIONAL_MAX;
                total = 0;
        } else if (d[0] == '0' && (len >= 3 || (len == 2 && d[1] == '8'))) {
                max = NATIONAL_MAX;
                total = len;
        } else {
                return 0;
        }
        if (total > max)
                return 0;
        size_t j = i + 1, unused;
        while (j < n && !g[j].plus && total + digits_of(&g[j]) <= max &&
               !match_personal_id(s, g, n, j, &unused)) {
                total += digits_of(&g[j]);
                j++;
        }
        if (total < PHONE_MIN_DIGITS)
                return 0;
        *last = j - 1;
        return 1;
}

/*
 * Replaces g[i..last] by marker; a phone number takes its '+' or '(' before
 * and a closing ')' after along ("(031) 12 34 56"), a personal identity
 * number its digits and separators only ("([personnummer])").
 */
static void replace(struct out *o, const unsigned char *s, size_t len, const struct group *g,
                    size_t i, size_t last, size_t *copied, const char *marker, int phone)
{
        size_t start = g[i].start - (phone && (g[i].plus || g[i].paren) ? 1 : 0);
        if (start < *copied)
                start = *copied;
        size_t end = g[last].end;
        int open = 0;
        for (size_t k = start; k < end; k++)
                open += s[k] == '(' ? 1 : s[k] == ')' ? -1 : 0;
        if (phone && open > 0 && end < len && s[end] == ')')
                end++;
        emit(o, (const char *)s + *copied, start - *copied);
        emit(o, marker, strlen(marker));
        *copied = end;
}

/* Collects the run of groups starting at s[i] (a digit) up to limit; returns the count. */
static size_t collect_run(const unsigned char *s, size_t i, size_t limit, struct group *g)
{
        size_t n = 0, j = i;
        while (n < MAX_GROUPS) {
                struct group *cur = &g[n++];
                cur->start = j;
                cur->plus = j > 0 && s[j - 1] == '+';
                cur->paren = j > 0 && s[j - 1] == '(';
                cur->in_word = j > 0 && (is_alpha(s[j - 1]) || is_digit(s[j - 1]));
                while (j < limit && is_digit(s[j]))
                        j++;
                cur->end = j;
                size_t k = j;
                for (int units = 0; units < SEP_MAX && k < limit; units++) {
                        size_t l = sep_len(s + k, limit - k);
                        if (!l)
                                break;
                        k += l;
                }
                if (k == j || k >= limit || !is_digit(s[k]))
                        break;
                j = k;
        }
        return n;
}

char *avk_scrub_text(const char *text, size_t len, size_t *out_len, struct avk_scrub_counts *counts)
{
        const unsigned char *s = (const unsigned char *)text;
        struct avk_scrub_counts found = {0};
        struct span *emails = NULL;
        int oom = 0;
        size_t email_cnt = find_emails(s, len, &emails, &oom);
        /* A marker is at most 1.4 times what it replaces (14 bytes for 10 digits). */
        struct out o = {.p = oom ? NULL : malloc(len * 2 + 1), .len = 0};
        if (!o.p) {
                free(emails);
                return NULL;
        }
        struct group g[MAX_GROUPS];
        size_t copied = 0, next_email = 0, i = 0;
        while (i < len) {
                size_t limit = next_email < email_cnt ? emails[next_email].start : len;
                if (i == limit) {
                        emit(&o, text + copied, i - copied);
                        emit(&o, AVK_SCRUB_EMAIL, strlen(AVK_SCRUB_EMAIL));
                        found.emails++;
                        copied = i = emails[next_email++].end;
                        continue;
                }
                if (!is_digit(s[i]) || (i > 0 && is_digit(s[i - 1]))) {
                        i++;
                        continue;
                }
                size_t n = collect_run(s, i, limit, g);
                for (size_t k = 0; k < n;) {
                        size_t last;
                        if (match_personal_id(s, g, n, k, &last)) {
                                replace(&o, s, len, g, k, last, &copied, AVK_SCRUB_PERSONAL_ID, 0);
                                found.personal_ids++;
                        } else if (match_phone(s, g, n, k, &last)) {
                                replace(&o, s, len, g, k, last, &copied, AVK_SCRUB_PHONE, 1);
                                found.phones++;
                        } else {
                                last = k;
                        }
                        k = last + 1;
                }
                i = g[n - 1].end > copied ? g[n - 1].end : copied;
        }
        emit(&o, text + copied, len - copied);
        o.p[o.len] = '\0';
        free(emails);
        if (out_len)
                *out_len = o.len;
        if (counts)
                *counts = found;
        return o.p;
}
