/*
 * avk_json_parse: strict, fast JSON parsing into jansson values for the
 * intake: the gateway, and the documents avvik report's single pass
 * (common/contract/jsonstream.h) leaves to the tree path.
 *
 * jansson's own parser spends about 15 us on a 1 KB deviation, most of it in
 * its byte-at-a-time lexer; yajl's event parser building the same jansson
 * tree takes about 3 us. The result is the same json_t tree the validator
 * (common/contract/json.h) walks, with jansson's strictness kept: duplicate keys,
 * invalid UTF-8 (overlong forms, surrogates, above U+10FFFF), \u0000 and
 * integers outside int64 are errors, as is anything after the document.
 */
#ifndef AVK_JSONPARSE_H
#define AVK_JSONPARSE_H

#include <stddef.h>

#include <jansson.h>

/** How deep objects and arrays may nest; a contract document needs 4. */
#define AVK_JSON_MAX_DEPTH 64

/**
 * @brief Parses the one JSON document in buf[0..len).
 * @returns a new reference (the caller owns it), or NULL with
 * "line L column C: reason" in errstr. The reason never quotes the input.
 */
json_t *avk_json_parse(const char *buf, size_t len, char *errstr, size_t errstr_size);

#endif
