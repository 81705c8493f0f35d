/*
 * avk_jsonsimd: simdjson's On-Demand parser as a reader of JSON events for
 * the single pass (common/contract/jsonstream.h).
 *
 * The single pass's callbacks are written for yajl's event interface; this
 * module walks a document with simdjson (docs/intake.md, "Reading the JSON")
 * and calls the same callbacks, so one set of handlers fills the slots
 * whichever parser reads the text: strings and keys unescaped, numbers as
 * their text (each checked against JSON's grammar first). Unlike yajl's, a
 * string stays where it stood in the walk's own copy of the text, with a
 * NUL after it, until the next walk: the callback need not copy it. Like yajl it
 * stops at the first callback that returns 0. It reads objects, strings,
 * numbers, booleans and null; an array stops the walk (arrays are the tree
 * path's). simdjson itself rejects invalid UTF-8, raw control characters
 * in strings and anything after the document.
 *
 * A C interface over one C++ translation unit (jsonsimd.cpp), the project's
 * only one.
 */
#ifndef AVK_JSONSIMD_H
#define AVK_JSONSIMD_H

#include <stddef.h>

#include <yajl/yajl_parse.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One thread's parser and its padded copy of the text, reused from document to document. */
typedef struct avk_jsonsimd avk_jsonsimd_t;

/** @brief A parser; NULL when memory ran out. Free it with avk_jsonsimd_destroy(). */
avk_jsonsimd_t *avk_jsonsimd_new(void);

void avk_jsonsimd_destroy(avk_jsonsimd_t *p);

/**
 * @brief Reads the one JSON document in buf[0..len), an object, calling
 * cb's null, boolean, number, string, start_map, map_key and end_map
 * callbacks with ctx as yajl would; a string's s[len] is a NUL, and s stays
 * valid until p's next walk. A key is passed as it stands in the text,
 * escapes and all, and passed again unescaped only when the callback
 * refuses it and it holds a backslash: so map_key must refuse without an
 * effect, and accept no key with a backslash in it (an Avro name has none).
 * @returns 1 when the whole document was read and every callback returned
 * 1; 0 when the text is not one JSON object, holds an array, memory ran
 * out, or a callback returned 0.
 */
int avk_jsonsimd_walk(avk_jsonsimd_t *p, const char *buf, size_t len, const yajl_callbacks *cb,
                      void *ctx);

#ifdef __cplusplus
}
#endif

#endif
