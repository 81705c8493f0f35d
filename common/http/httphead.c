/*
 * avk_httphead: see httphead.h.
 */
#include "common/http/httphead.h"

#include <string.h>
#include <strings.h>

#define LENGTH_MAX (UINT64_MAX >> 1) /* what a signed 64-bit reader still holds */

/* RFC 9110 section 5.6.2: tchar. */
static int is_tchar(unsigned char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_name(const char *name, size_t len, const char *want)
{
        return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/* The value of a Content-Length field: 1 and *n, or 0 when it is not digits only or too large. */
static int parse_length(const char *value, size_t len, uint64_t *n)
{
        *n = 0;
        if (len == 0)
                return 0;
        for (size_t i = 0; i < len; i++) {
                unsigned digit = (unsigned char)value[i] - '0';
                if (digit > 9 || *n > (LENGTH_MAX - digit) / 10)
                        return 0;
                *n = *n * 10 + digit;
        }
        return 1;
}

void avk_httphead_init(struct avk_httphead *head, int http10)
{
        *head = (struct avk_httphead){.http10 = http10};
}

static void fault(struct avk_httphead *head, const char *why)
{
        if (!head->fault)
                head->fault = why;
}

void avk_httphead_field(struct avk_httphead *head, const char *name, size_t name_len,
                        const char *value, size_t value_len)
{
        if (name_len == 0) {
                fault(head, "a header without a name");
                return;
        }
        for (size_t i = 0; i < name_len; i++) {
                if (!is_tchar((unsigned char)name[i])) {
                        fault(head, name[i] == ' ' || name[i] == '\t'
                                        ? "a header name holds white space (before its colon?)"
                                        : "a header name holds a character a name may not");
                        return;
                }
        }
        if (memchr(value, '\0', value_len)) {
                fault(head, "a header value holds a NUL byte");
                return;
        }
        if (is_name(name, name_len, "Content-Length")) {
                uint64_t n;
                if (!parse_length(value, value_len, &n))
                        fault(head, "Content-Length is not a number of bytes (digits only, below "
                                    "2^63)");
                else if (head->content_lengths > 0 && n != head->content_length)
                        fault(head, "Content-Length given twice with different values");
                head->content_length = n;
                head->content_lengths++;
        } else if (is_name(name, name_len, "Transfer-Encoding")) {
                if (head->transfer_encodings++ > 0)
                        fault(head, "Transfer-Encoding given more than once");
                else if (!is_name(value, value_len, "chunked"))
                        fault(head, "Transfer-Encoding other than chunked alone");
        }
}

const char *avk_httphead_verdict(const struct avk_httphead *head)
{
        if (head->fault)
                return head->fault;
        if (head->transfer_encodings && head->content_lengths)
                return "both Content-Length and Transfer-Encoding";
        if (head->transfer_encodings && head->http10)
                return "Transfer-Encoding in a request of HTTP version 1.0";
        return NULL;
}
