/*
 * avk_httphead: whether a request head frames its body unambiguously (RFC
 * 9112 section 6), judged from its header fields as a parser hands them
 * over, one by one. avk_httpd refuses a request this module finds ambiguous
 * with 400 and closes its connection before any body byte is read: the
 * bytes after a head two readers could frame differently (a proxy in front,
 * libmicrohttpd behind) could otherwise run as another request, i.e.
 * request smuggling. A module of its own, without libmicrohttpd, so that a
 * fuzzer (tests/fuzz/fuzz_httphead.c) drives the same code the server runs.
 *
 * The rules:
 *   - a field name is a token (RFC 9110 section 5.1): no white space before
 *     its colon, no control or separator characters;
 *   - Content-Length is digits only, at most 2^63 - 1, and one value however
 *     many times it is given;
 *   - Transfer-Encoding is given once, as exactly "chunked" (the only
 *     coding avvik's server reads), never in an HTTP/1.0 request, never
 *     together with Content-Length.
 */
#ifndef AVK_HTTPHEAD_H
#define AVK_HTTPHEAD_H

#include <stddef.h>
#include <stdint.h>

/** What the fields of one request head said about its framing. Zero it with avk_httphead_init(). */
struct avk_httphead {
        int http10; /**< the request line said HTTP/1.0 */
        unsigned content_lengths, transfer_encodings;
        const char *fault;       /**< the first rule broken, or NULL */
        uint64_t content_length; /**< the declared length, when content_lengths > 0 */
};

/** @brief Starts judging a head; http10 when its request line says HTTP/1.0. */
void avk_httphead_init(struct avk_httphead *head, int http10);

/**
 * @brief Adds one header field: name and value as the parser split them (the
 * value without its surrounding white space), neither NUL-terminated; a NUL
 * byte in either is a fault.
 */
void avk_httphead_field(struct avk_httphead *head, const char *name, size_t name_len,
                        const char *value, size_t value_len);

/**
 * @brief The verdict once every field is in.
 * @returns NULL when the framing is unambiguous, else why not (a static
 * sentence naming the header, never the client's text).
 */
const char *avk_httphead_verdict(const struct avk_httphead *head);

#endif
