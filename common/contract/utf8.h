/*
 * avk_utf8: the one strict UTF-8 check (RFC 3629) for bytes that arrive from
 * outside - Avro strings before avro-c sees them (common/contract/binary.c) and JSON
 * strings in the single-pass intake (common/contract/jsonstream.c), which must refuse
 * exactly what jansson refuses: overlong forms, surrogates, code points
 * above U+10FFFF and stray continuation bytes.
 */
#ifndef AVK_UTF8_H
#define AVK_UTF8_H

#include <stddef.h>

/** @brief The offset of the first invalid sequence in s[0..n), or n when all of it is valid. */
size_t avk_utf8_invalid_at(const void *s, size_t n);

/**
 * @brief As avk_utf8_invalid_at(), and a NUL byte (which C strings cannot
 * carry) counts as invalid too: the offset of the first invalid sequence or
 * NUL, in one pass.
 */
size_t avk_utf8_text_invalid_at(const void *s, size_t n);

/**
 * @brief The characters in s[0..n): the bytes that start one, so that a
 * byte of an invalid sequence counts as one ("Tjörn" is 5, not 6).
 */
size_t avk_utf8_chars(const void *s, size_t n);

#endif
