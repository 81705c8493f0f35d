/*
 * The request-head framing check of the HTTP server (common/http/httphead.h),
 * against an oracle written separately here: the input is a request head,
 * split into fields the way libmicrohttpd splits them (a line per field, the
 * name up to the first colon, the value without surrounding blanks). The
 * check must accept exactly the heads the oracle finds unambiguous - names
 * that are tokens, one Content-Length value of digits below 2^63, at most one
 * Transfer-Encoding of exactly "chunked", never both, never chunked in
 * HTTP/1.0 - and, when it accepts a length, declare the oracle's.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/http/httphead.h"
#include "tests/fuzz/support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELDS_MAX 64
#define DIGITS_MAX 20

struct oracle {
        int bad;                   /* a rule is broken */
        int lengths, encodings;    /* fields of each name */
        unsigned long long length; /* the first Content-Length */
};

static int token(const char *s, size_t len)
{
        static const char tchars[] = "!#$%&'*+-.^_`|~0123456789"
                                     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        if (len == 0)
                return 0;
        for (size_t i = 0; i < len; i++)
                if (s[i] == '\0' || !memchr(tchars, s[i], sizeof(tchars) - 1))
                        return 0;
        return 1;
}

static int same_name(const char *s, size_t len, const char *name)
{
        return len == strlen(name) && strncasecmp(s, name, len) == 0;
}

/* Content-Length by strtoull on a copy: digits only (leading zeros too, as
 * RFC 9110's 1*DIGIT allows), at most INT64_MAX. */
static int oracle_length(const char *v, size_t len, unsigned long long *n)
{
        char copy[DIGITS_MAX + 1];
        while (len > 1 && v[0] == '0') {
                v++;
                len--;
        }
        if (len == 0 || len > DIGITS_MAX)
                return 0;
        memcpy(copy, v, len);
        for (size_t i = 0; i < len; i++)
                if (!memchr("0123456789", copy[i], 10))
                        return 0;
        copy[len] = '\0';
        errno = 0;
        *n = strtoull(copy, NULL, 10);
        return errno == 0 && *n <= INT64_MAX;
}

static void oracle_field(struct oracle *o, const char *name, size_t name_len, const char *value,
                         size_t value_len)
{
        if (!token(name, name_len) || memchr(value, '\0', value_len)) {
                o->bad = 1;
                return;
        }
        if (same_name(name, name_len, "content-length")) {
                unsigned long long n;
                if (!oracle_length(value, value_len, &n) || (o->lengths && n != o->length))
                        o->bad = 1;
                if (!o->lengths++)
                        o->length = n;
        } else if (same_name(name, name_len, "transfer-encoding")) {
                if (o->encodings++ || !same_name(value, value_len, "chunked"))
                        o->bad = 1;
        }
}

static int blank(char c)
{
        return c == ' ' || c == '\t';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *p = (const char *)data, *end = p + size;
        const char *eol = memchr(p, '\n', size);
        if (!eol)
                return 0;
        size_t line = (size_t)(eol - p) - (eol > p && eol[-1] == '\r');
        int http10 = line >= 9 && memcmp(p + line - 9, " HTTP/1.0", 9) == 0;
        struct avk_httphead head;
        struct oracle o = {0};
        avk_httphead_init(&head, http10);
        for (int fields = 0; fields < FIELDS_MAX && eol + 1 < end; fields++) {
                p = eol + 1;
                eol = memchr(p, '\n', (size_t)(end - p));
                if (!eol)
                        eol = end;
                line = (size_t)(eol - p) - (eol > p && eol[-1] == '\r');
                if (line == 0)
                        break; /* the end of the head */
                const char *colon = memchr(p, ':', line);
                if (!colon)
                        return 0; /* libmicrohttpd refuses the request itself */
                size_t name_len = (size_t)(colon - p);
                const char *value = colon + 1, *value_end = p + line;
                while (value < value_end && blank(*value))
                        value++;
                while (value_end > value && blank(value_end[-1]))
                        value_end--;
                size_t value_len = (size_t)(value_end - value);
                avk_httphead_field(&head, p, name_len, value, value_len);
                oracle_field(&o, p, name_len, value, value_len);
        }
        if (o.encodings && (o.lengths || http10))
                o.bad = 1;
        const char *verdict = avk_httphead_verdict(&head);
        if (!verdict != !o.bad)
                fuzz_fail("the check %s a head the oracle %s (%s)",
                          verdict ? "refused" : "accepted", o.bad ? "refuses" : "accepts",
                          verdict ? verdict : "no reason");
        if (!verdict && o.lengths && head.content_length != o.length)
                fuzz_fail("Content-Length %llu declared as %llu", o.length,
                          (unsigned long long)head.content_length);
        if (!verdict && (head.content_lengths > 0) != (o.lengths > 0))
                fuzz_fail("a Content-Length seen by one side only");
        return 0;
}
