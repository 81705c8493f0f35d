/*
 * avk_scrub: see scrub.h; the rules with examples are in docs/analysis.md.
 *
 * One pass has three steps, each linear:
 *  1. the view: every character of the text in its NFKC_Casefold form
 *     (ICU; this also drops the default-ignorable characters: soft hyphen,
 *     zero-width space, word joiner...), then folded by class: a digit of
 *     any Unicode digit class becomes its ASCII digit, every white space
 *     (line breaks included) ' ', every dash '-', a combining mark nothing,
 *     a letter stays, anything else becomes a placeholder no rule takes.
 *     Each byte of the view knows the source bytes it stands for. Then the
 *     e-mail spellings for people ("anna (at) vgr [dot] se") become '@' and
 *     '.', and the spaces around an '@' go;
 *  2. e-mail addresses: around every '@', the local part backwards (never
 *     past the previous '@' or address) and the domain forwards up to its
 *     last ".tld" of two or more ASCII letters;
 *  3. numbers: a run is digit groups joined by at most SEP_MAX separators
 *     (space, '-', '+', '/', parentheses; a run of spaces counts once). Each
 *     run is cut greedily from the left into personal identity numbers
 *     (tried first: a number that could be either is removed as the more
 *     sensitive one) and phone numbers; groups that fit neither stay.
 * A match removes the source bytes of its first to its last character;
 * everything else is copied as is.
 *
 * avk_scrub_text() repeats the pass on its own result until a pass replaces
 * nothing. Every replacement removes digits or an '@', which no marker
 * holds, so this ends; the second pass is almost always the last.
 */
#include "common/util/scrub.h"

#include <stdlib.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#include "common/util/luhn.h"

#define SEP_MAX           3    /* separators between two groups: " - ", ") " */
#define PHONE_MIN_DIGITS  7    /* "08-123 45" */
#define NATIONAL_MAX      11   /* "0771-123 45 67 8" is already too long */
#define INTERNATIONAL_MAX 15   /* E.164 */
#define PERSONAL_ID_MAX   12   /* digits of the long form */
#define PLACEHOLDER       0x7f /* in the view: a character that no rule takes */
#define FOLDED_MAX        32   /* UTF-16 units of one character's NFKC_Casefold form (18 at most) */

struct span {
        size_t start, end;
};

/* The normalised text: c[i] stands for the source bytes src[i]. */
struct view {
        unsigned char *c;
        struct span *src;
        size_t len, cap;
};

struct group {
        size_t start, end; /* the digits in the view, [start, end) */
        int plus;          /* a '+' right before the digits */
        int paren;         /* a '(' right before the digits */
        int in_word;       /* glued to a letter or digit before it (e.g. an HSA-id) */
};

struct groups {
        struct group *g;
        size_t cnt, cap;
};

struct out {
        char *p;
        size_t len, cap;
};

/* How far the output has got: in the source text and in the view. */
struct cursor {
        size_t text, view;
};

static int is_digit(unsigned char c)
{
        return c >= '0' && c <= '9';
}

static int is_alpha(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ---- the view --------------------------------------------------------- */

static int view_reserve(struct view *v, size_t more)
{
        if (v->len + more <= v->cap)
                return 0;
        size_t cap = (v->len + more) * 2;
        unsigned char *c = realloc(v->c, cap);
        if (!c)
                return -1;
        v->c = c;
        struct span *src = realloc(v->src, cap * sizeof(*src));
        if (!src)
                return -1;
        v->src = src;
        v->cap = cap;
        return 0;
}

static void view_put(struct view *v, unsigned char c, size_t from, size_t to)
{
        v->c[v->len] = c;
        v->src[v->len++] = (struct span){from, to};
}

static unsigned char fold_ascii(unsigned char b)
{
        if (b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r')
                return ' ';
        return b >= 'A' && b <= 'Z' ? (unsigned char)(b + ('a' - 'A')) : b;
}

/* 0-9 for a digit of any Unicode digit class (Numeric_Type Decimal or Digit), else -1. */
static int digit_value(UChar32 r)
{
        int type = u_getIntPropertyValue(r, UCHAR_NUMERIC_TYPE);
        if (type != U_NT_DECIMAL && type != U_NT_DIGIT)
                return -1;
        double value = u_getNumericValue(r);
        return value >= 0 && value <= 9 && value == (int)value ? (int)value : -1;
}

/* Appends the view of r, one character of the folded form of text[from, to). */
static void view_put_folded(struct view *v, UChar32 r, size_t from, size_t to)
{
        int type = u_charType(r), digit = digit_value(r);
        if (digit >= 0) {
                view_put(v, (unsigned char)('0' + digit), from, to);
        } else if (u_isUWhiteSpace(r)) {
                view_put(v, ' ', from, to);
        } else if (type == U_DASH_PUNCTUATION || u_hasBinaryProperty(r, UCHAR_DASH)) {
                view_put(v, '-', from, to);
        } else if (r < 0x80) {
                view_put(v, fold_ascii((unsigned char)r), from, to);
        } else if (type == U_NON_SPACING_MARK || type == U_ENCLOSING_MARK ||
                   type == U_COMBINING_SPACING_MARK) {
                return; /* "4\u20e3" is a 4 */
        } else if (u_hasBinaryProperty(r, UCHAR_ALPHABETIC)) {
                uint8_t bytes[U8_MAX_LENGTH];
                int32_t n = 0;
                U8_APPEND_UNSAFE(bytes, n, r);
                for (int32_t k = 0; k < n; k++)
                        view_put(v, bytes[k], from, to);
        } else {
                view_put(v, PLACEHOLDER, from, to);
        }
}

/* The view of recently seen characters beyond ASCII: a text repeats its few
 * (å, ä, ö), and ICU's normalisation costs more than the rest of a pass. */
#define FOLD_CACHE_SLOTS 64
#define FOLD_CACHE_BYTES 8

struct fold_cache {
        UChar32 cp[FOLD_CACHE_SLOTS]; /* -1: empty */
        unsigned char len[FOLD_CACHE_SLOTS];
        unsigned char bytes[FOLD_CACHE_SLOTS][FOLD_CACHE_BYTES];
};

static int view_build(struct view *v, const UNormalizer2 *nf, const unsigned char *s, size_t len)
{
        struct fold_cache cache;
        memset(cache.cp, 0xff, sizeof(cache.cp));
        size_t i = 0;
        while (i < len) {
                if (s[i] < 0x80) {
                        if (view_reserve(v, len - i) != 0)
                                return -1;
                        for (; i < len && s[i] < 0x80; i++)
                                view_put(v, fold_ascii(s[i]), i, i + 1);
                        continue;
                }
                /* ICU indexes with int32_t: decode from a window so any length works. */
                size_t from = i;
                int32_t k = 0,
                        window = (int32_t)(len - i < U8_MAX_LENGTH ? len - i : U8_MAX_LENGTH);
                UChar32 cp;
                U8_NEXT(s + i, k, window, cp);
                i += (size_t)k;
                size_t slot = cp >= 0 ? (size_t)cp % FOLD_CACHE_SLOTS : 0;
                if (cp >= 0 && cache.cp[slot] == cp) {
                        if (view_reserve(v, cache.len[slot]) != 0)
                                return -1;
                        for (unsigned b = 0; b < cache.len[slot]; b++)
                                view_put(v, cache.bytes[slot][b], from, i);
                        continue;
                }
                UChar in[2], folded[FOLDED_MAX];
                int32_t in_len = 0, folded_len = 0;
                UErrorCode err = U_ZERO_ERROR;
                if (cp >= 0) {
                        U16_APPEND_UNSAFE(in, in_len, cp);
                        folded_len = unorm2_normalize(nf, in, in_len, folded, FOLDED_MAX, &err);
                }
                if (view_reserve(v, (size_t)folded_len * 3 + 1) != 0)
                        return -1;
                if (cp < 0 || U_FAILURE(err)) {
                        view_put(v, PLACEHOLDER, from, i); /* not UTF-8 */
                        continue;
                }
                size_t start = v->len;
                for (int32_t f = 0; f < folded_len;) {
                        UChar32 r;
                        U16_NEXT(folded, f, folded_len, r);
                        view_put_folded(v, r, from, i);
                }
                if (v->len - start <= FOLD_CACHE_BYTES) {
                        cache.cp[slot] = cp;
                        cache.len[slot] = (unsigned char)(v->len - start);
                        memcpy(cache.bytes[slot], v->c + start, v->len - start);
                }
        }
        return 0;
}

/* How people write '@' and '.' so that a harvester misses them. */
static const char *const at_words[] = {"at", "a", "@", "snabel-a", "snabela", "snabel a"};
static const char *const dot_words[] = {"dot", "punkt", "pkt", "."};

/* The length of a bracketed word of words at c[i..len) ("(at)", "[ dot ]"), 0 when none. */
static size_t bracketed(const unsigned char *c, size_t i, size_t len, const char *const *words,
                        size_t cnt)
{
        static const char open[] = "([{<", close[] = ")]}>";
        const char *o = memchr(open, c[i], sizeof(open) - 1);
        if (!o)
                return 0;
        size_t j = i + 1;
        while (j < len && c[j] == ' ')
                j++;
        for (size_t w = 0; w < cnt; w++) {
                size_t n = strlen(words[w]);
                if (n > len - j || memcmp(c + j, words[w], n) != 0)
                        continue;
                size_t k = j + n;
                while (k < len && c[k] == ' ')
                        k++;
                if (k < len && c[k] == (unsigned char)close[o - open])
                        return k + 1 - i;
        }
        return 0;
}

/* Folds the e-mail spellings in place: "(at)" and its cousins to '@', "(dot)" to '.', without
 * the spaces around them ("anna (at) vgr.se" -> "anna@vgr.se"). */
static int may_open_email_word(unsigned char c)
{
        return c == '@' || c == '(' || c == '[' || c == '{' || c == '<';
}

/* Moves n bytes of the view, with their sources, from position from to to (to <= from). */
static void view_move(struct view *v, size_t to, size_t from, size_t n)
{
        if (to == from || n == 0)
                return;
        memmove(v->c + to, v->c + from, n);
        memmove(v->src + to, v->src + from, n * sizeof(*v->src));
}

/* Folds the e-mail spellings in place: "(at)" and its cousins to '@', "(dot)" to '.', without
 * the spaces around them ("anna (at) vgr.se" -> "anna@vgr.se"). */
static void view_fold_email_words(struct view *v)
{
        size_t w = 0, kept = 0; /* v[kept, r) is still to be moved to w */
        for (size_t r = 0; r < v->len; r++) {
                if (!may_open_email_word(v->c[r]))
                        continue;
                unsigned char sym = '@';
                size_t n =
                    bracketed(v->c, r, v->len, at_words, sizeof(at_words) / sizeof(*at_words));
                if (!n && (n = bracketed(v->c, r, v->len, dot_words,
                                         sizeof(dot_words) / sizeof(*dot_words))))
                        sym = '.';
                if (!n && v->c[r] == '@')
                        n = 1;
                size_t first = r, last = r + n;
                while (first > kept && v->c[first - 1] == ' ')
                        first--;
                while (last < v->len && v->c[last] == ' ')
                        last++;
                if (!n || (n == 1 && first == r && last == r + 1))
                        continue; /* nothing to fold ("anna@vgr.se" stays as it is) */
                view_move(v, w, kept, first - kept);
                w += first - kept;
                struct span src = {v->src[first].start, v->src[last - 1].end};
                v->c[w] = sym;
                v->src[w++] = src;
                kept = last;
                r = last - 1;
        }
        view_move(v, w, kept, v->len - kept);
        v->len = w + (v->len - kept);
}

/* ---- output ----------------------------------------------------------- */

static int out_put(struct out *o, const char *s, size_t n)
{
        if (o->len + n + 1 > o->cap) {
                size_t cap = (o->len + n + 1) * 2;
                char *p = realloc(o->p, cap);
                if (!p)
                        return -1;
                o->p = p;
                o->cap = cap;
        }
        memcpy(o->p + o->len, s, n);
        o->len += n;
        return 0;
}

/* Copies the text up to view position start, then marker for the view's [start, end). */
static int cut(struct out *o, const struct view *v, const char *text, size_t start, size_t end,
               struct cursor *at, const char *marker)
{
        size_t from = v->src[start].start > at->text ? v->src[start].start : at->text;
        if (out_put(o, text + at->text, from - at->text) != 0 ||
            out_put(o, marker, strlen(marker)) != 0)
                return -1;
        at->text = v->src[end - 1].end;
        at->view = end;
        return 0;
}

/* ---- e-mail addresses ------------------------------------------------- */

/* A local part: RFC 5322's common subset, and any letter beyond ASCII
 * (an internationalised address, "åsa@..."; other characters beyond ASCII
 * are PLACEHOLDER in the view). */
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
 * after a dot, so that text glued to it ("a@b.se-070") is not taken along.
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

/* Finds every address in the view; *spans (malloc'd) gets *cnt of them. */
static int find_emails(const struct view *v, struct span **spans, size_t *cnt)
{
        const unsigned char *s = v->c;
        size_t cap = 0, floor = 0;
        for (size_t i = 0; i < v->len; i++) {
                const unsigned char *at = memchr(s + i, '@', v->len - i);
                if (!at)
                        break;
                i = (size_t)(at - s);
                size_t start = i;
                while (start > floor && is_local(s[start - 1]))
                        start--;
                while (start < i && s[start] == '.')
                        start++;
                size_t end = start < i ? email_end(s, v->len, i) : 0;
                floor = i + 1;
                if (!end)
                        continue;
                if (*cnt == cap) {
                        size_t grown = cap ? cap * 2 : 4;
                        struct span *p = realloc(*spans, grown * sizeof(*p));
                        if (!p)
                                return -1;
                        *spans = p;
                        cap = grown;
                }
                (*spans)[(*cnt)++] = (struct span){start, end};
                floor = end;
                i = end - 1;
        }
        return 0;
}

/* ---- numbers ---------------------------------------------------------- */

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

/*
 * Whether the digits d[0..dl) (10 or 12), written in groups (the first of
 * first digits), are a personnummer or samordningsnummer. The usual
 * spellings - one group, or the date and the last four - need no check
 * digit; any other grouping ("12 12 12-1212", "4003 14 12 33") needs a
 * right one, or dates and phone numbers would go too.
 */
static int personal_id(const char *d, size_t dl, size_t groups, size_t first)
{
        if (dl == 12 &&
            !((d[0] == '1' && (d[1] == '8' || d[1] == '9')) || (d[0] == '2' && d[1] == '0')))
                return 0;
        const char *ten = d + (dl - 10); /* YYMMDDNNNC */
        if (!date_like(ten + 2))
                return 0;
        int usual = groups == 1 || (groups == 2 && first == dl - 4);
        /* Ten digits from 0 in one group: "0701234567" is a mobile number
         * unless the check digit says a person born 2000-2009. */
        if (usual && !(groups == 1 && dl == 10 && d[0] == '0'))
                return 1;
        return avk_luhn(ten, 9) == ten[9] - '0';
}

/* Whether groups g[i..] start with a personal identity number; *last gets
 * its last group (the longer form when both fit). */
static int match_personal_id(const unsigned char *s, const struct group *g, size_t n, size_t i,
                             size_t *last)
{
        if (g[i].plus)
                return 0; /* "+46...": a phone number */
        char d[PERSONAL_ID_MAX];
        size_t dl = 0;
        int found = 0;
        for (size_t j = i; j < n; j++) {
                size_t len = digits_of(&g[j]);
                /* " +46" starts a phone number; only "400314+1233" has a '+' inside. */
                int new_number = g[j].plus && g[j].start - g[j - (j > i)].end > 1;
                if (len > PERSONAL_ID_MAX - dl ||
                    (j > i && (!plain_between(s, &g[j - 1], &g[j]) || new_number)))
                        break;
                memcpy(d + dl, s + g[j].start, len);
                dl += len;
                if ((dl == 10 || dl == 12) && personal_id(d, dl, j - i + 1, digits_of(&g[i]))) {
                        *last = j;
                        found = 1;
                }
        }
        return found;
}

/*
 * Whether groups g[i..] start with a phone number: international ("+46 70
 * ...", "0046 ...", up to 15 digits) or Swedish (a leading 0, 7 to 11
 * digits, the first group "08" or three digits or more, so that "05-01-2026"
 * is not one; no area code starts with 0, so "00000000" is none either). A following group that
 * starts a personal identity number or another "+" number is not taken along.
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
        } else if (d[0] == '0' && len >= 2 && d[1] != '0' && (len >= 3 || d[1] == '8')) {
                max = NATIONAL_MAX;
                total = len;
        } else if (len == 1 && d[0] == '0' && i + 1 < n && s[g[i + 1].start] != '0') {
                max = NATIONAL_MAX; /* the trunk 0 apart: "(0)70-123 45 67" */
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
static int replace(struct out *o, const struct view *v, const char *text, const struct group *g,
                   size_t i, size_t last, struct cursor *at, const char *marker, int phone)
{
        size_t start = g[i].start - (phone && (g[i].plus || g[i].paren) ? 1 : 0);
        if (start < at->view)
                start = at->view;
        size_t end = g[last].end;
        int open = 0;
        for (size_t k = start; k < end; k++)
                open += v->c[k] == '(' ? 1 : v->c[k] == ')' ? -1 : 0;
        if (phone && open > 0 && end < v->len && v->c[end] == ')')
                end++;
        return cut(o, v, text, start, end, at, marker);
}

static int is_sep(unsigned char c)
{
        return c == '-' || c == '+' || c == '/' || c == '(' || c == ')';
}

/* Collects into gs the run of groups starting at view position i (a digit)
 * up to limit; boundary is where the output resumed after a replacement. */
static int collect_run(const struct view *v, size_t i, size_t limit, size_t boundary,
                       struct groups *gs)
{
        const unsigned char *s = v->c;
        size_t j = i;
        gs->cnt = 0;
        for (;;) {
                if (gs->cnt == gs->cap) {
                        size_t cap = gs->cap ? gs->cap * 2 : 16;
                        struct group *g = realloc(gs->g, cap * sizeof(*g));
                        if (!g)
                                return -1;
                        gs->g = g;
                        gs->cap = cap;
                }
                struct group *cur = &gs->g[gs->cnt++];
                cur->start = j;
                cur->plus = j > 0 && s[j - 1] == '+';
                cur->paren = j > 0 && s[j - 1] == '(';
                cur->in_word = j > boundary && (is_alpha(s[j - 1]) || is_digit(s[j - 1]));
                while (j < limit && is_digit(s[j]))
                        j++;
                cur->end = j;
                size_t k = j;
                for (int units = 0; units < SEP_MAX && k < limit; units++) {
                        if (s[k] == ' ')
                                while (k < limit && s[k] == ' ')
                                        k++;
                        else if (is_sep(s[k]))
                                k++;
                        else
                                break;
                }
                if (k == j || k >= limit || !is_digit(s[k]))
                        return 0;
                j = k;
        }
}

/* Replaces the numbers of the run in gs. */
static int scrub_run(struct out *o, const struct view *v, const char *text, const struct groups *gs,
                     struct cursor *at, struct avk_scrub_counts *found)
{
        const struct group *g = gs->g;
        for (size_t k = 0; k < gs->cnt;) {
                size_t last = k;
                int rc = 0;
                if (match_personal_id(v->c, g, gs->cnt, k, &last)) {
                        rc = replace(o, v, text, g, k, last, at, AVK_SCRUB_PERSONAL_ID, 0);
                        found->personal_ids++;
                } else if (match_phone(v->c, g, gs->cnt, k, &last)) {
                        rc = replace(o, v, text, g, k, last, at, AVK_SCRUB_PHONE, 1);
                        found->phones++;
                }
                if (rc != 0)
                        return -1;
                k = last + 1;
        }
        return 0;
}

/* ---- one pass, and the fixed point ------------------------------------- */

static char *scrub_pass(const UNormalizer2 *nf, const char *text, size_t len, size_t *out_len,
                        struct avk_scrub_counts *found)
{
        struct view v = {0};
        struct span *emails = NULL;
        struct groups gs = {0};
        struct out o = {.p = malloc(len + 64), .cap = len + 64};
        struct cursor at = {0, 0};
        size_t email_cnt = 0, next_email = 0, i = 0;
        int ok = 0;
        if (!o.p || view_build(&v, nf, (const unsigned char *)text, len) != 0)
                goto out;
        view_fold_email_words(&v);
        if (find_emails(&v, &emails, &email_cnt) != 0)
                goto out;
        while (i < v.len) {
                size_t limit = next_email < email_cnt ? emails[next_email].start : v.len;
                if (i == limit) {
                        if (cut(&o, &v, text, limit, emails[next_email].end, &at,
                                AVK_SCRUB_EMAIL) != 0)
                                goto out;
                        found->emails++;
                        i = emails[next_email++].end;
                        continue;
                }
                while (i < limit && !is_digit(v.c[i]))
                        i++;
                if (i == limit)
                        continue;
                if (collect_run(&v, i, limit, at.view, &gs) != 0 ||
                    scrub_run(&o, &v, text, &gs, &at, found) != 0)
                        goto out;
                i = gs.g[gs.cnt - 1].end > at.view ? gs.g[gs.cnt - 1].end : at.view;
        }
        if (out_put(&o, text + at.text, len - at.text) != 0)
                goto out;
        o.p[o.len] = '\0';
        *out_len = o.len;
        ok = 1;
out:
        free(v.c);
        free(v.src);
        free(emails);
        free(gs.g);
        if (ok)
                return o.p;
        free(o.p);
        return NULL;
}

char *avk_scrub_text(const char *text, size_t len, size_t *out_len, struct avk_scrub_counts *counts)
{
        UErrorCode err = U_ZERO_ERROR;
        const UNormalizer2 *nf = unorm2_getNFKCCasefoldInstance(&err);
        if (U_FAILURE(err))
                return NULL;
        struct avk_scrub_counts total = {0};
        char *result = NULL;
        size_t result_len = len;
        for (;;) {
                struct avk_scrub_counts found = {0};
                size_t next_len = 0;
                char *next = scrub_pass(nf, result ? result : text, result_len, &next_len, &found);
                free(result);
                if (!next)
                        return NULL;
                result = next;
                result_len = next_len;
                total.personal_ids += found.personal_ids;
                total.phones += found.phones;
                total.emails += found.emails;
                if (!found.personal_ids && !found.phones && !found.emails)
                        break;
        }
        if (out_len)
                *out_len = result_len;
        if (counts)
                *counts = total;
        return result;
}

/* Whether text[0..len) cannot hold a match: ASCII (its view is itself, case folded), fewer digits
 * than a phone number has (a personnummer has more), and nothing that opens an e-mail address's
 * '@' or its spelt-out forms ("(at)"). */
static int cannot_match(const char *text, size_t len)
{
        size_t digits = 0;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)text[i];
                if (c >= 0x80 || may_open_email_word(c))
                        return 0;
                digits += is_digit(c);
        }
        return digits < PHONE_MIN_DIGITS;
}

int avk_scrub_count(const char *text, size_t len, struct avk_scrub_counts *counts)
{
        if (cannot_match(text, len)) {
                *counts = (struct avk_scrub_counts){0};
                return 0;
        }
        char *scrubbed = avk_scrub_text(text, len, NULL, counts);
        if (!scrubbed)
                return -1;
        free(scrubbed);
        return 0;
}

char *avk_scrub_copy(char *dst, size_t size, const char *text)
{
        static const char withheld[] = "(error text withheld: out of memory)";
        if (size == 0)
                return dst;
        size_t len = 0;
        char *clean = text ? avk_scrub_text(text, strlen(text), &len, NULL) : NULL;
        const char *src = clean ? clean : withheld;
        size_t n = clean ? len : sizeof(withheld) - 1;
        if (n >= size) {
                n = size - 1;
                while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
                        n--; /* not inside a UTF-8 sequence */
        }
        memcpy(dst, src, n);
        dst[n] = '\0';
        free(clean);
        return dst;
}
