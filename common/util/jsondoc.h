/*
 * avk_jsondoc: reading a JSON configuration document (the party directory,
 * the routing rules, the deadline policy) so that every problem is reported
 * at once, each naming the file and the JSON path ("directory.json:
 * parties[3].units[0].hsa_id: reason") or, for a syntax error, the line and
 * column ("directory.json:12:5: reason").
 *
 * A reader walks the document with avk_path_push()/avk_path_pop() on
 * doc->path and calls the helpers below, which add their errors at the
 * current path. Values are never quoted in "unknown key" errors: a secret
 * pasted where it does not belong stays out of logs.
 *
 * Conditions over a schema's enums (the routing rules, the deadline policy)
 * are read as bit masks over the enum's symbols, validated against the
 * schema itself, so a file can only name what a record can carry.
 */
#ifndef AVK_JSONDOC_H
#define AVK_JSONDOC_H

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

#include "common/util/errors.h"
#include "common/util/path.h"
#include "common/contract/schema.h"

struct avk_jsondoc {
        const char *file;        /**< the path as given; starts every error */
        struct avk_errors *errs; /**< where errors go; owned by the caller */
        struct avk_path path;    /**< where the reader is */
        char context[128];       /**< "" or a label between file and path, e.g. "rules[3] (R-X)" */
};

/** @brief Starts reading file; errors go to errs. */
void avk_jsondoc_init(struct avk_jsondoc *doc, const char *file, struct avk_errors *errs);

/**
 * @brief Parses the file (duplicate keys rejected).
 * @returns a new reference, or NULL with "file: cannot open: reason" or
 * "file:line:column: reason" added.
 */
json_t *avk_jsondoc_load(struct avk_jsondoc *doc);

/** @brief Adds "file[: context][: path]: reason" at the current path. */
void avk_jsondoc_fail(struct avk_jsondoc *doc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** @brief As avk_jsondoc_fail(), at the current path + key. */
void avk_jsondoc_fail_key(struct avk_jsondoc *doc, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * @brief The non-empty array at key of object, or NULL after adding
 * "key: expected a non-empty array, got ..." to the document's errors.
 */
json_t *avk_jsondoc_nonempty_array(struct avk_jsondoc *doc, json_t *object, const char *key);

/** @brief Reports each key of obj that allowed (NULL-terminated) lacks, naming the known keys. */
void avk_jsondoc_check_keys(struct avk_jsondoc *doc, json_t *obj, const char *const *allowed);

/** @brief 0 when value is an object; else -1 with an error at the current path. */
int avk_jsondoc_expect_object(struct avk_jsondoc *doc, const json_t *value);

/**
 * @brief The non-empty string obj.key, owned by obj. NULL when absent (an
 * error when required) or not a non-empty string without NUL (an error).
 */
const char *avk_jsondoc_string(struct avk_jsondoc *doc, json_t *obj, const char *key, int required);

/** @brief The boolean obj.key; dflt when absent, or with an error when not a boolean. */
int avk_jsondoc_bool(struct avk_jsondoc *doc, json_t *obj, const char *key, int dflt);

/**
 * @brief The id obj.key: prefix ("R-") and then up to max - strlen(prefix)
 * upper-case letters, digits and '-'. NULL when absent or malformed (an error).
 */
const char *avk_jsondoc_id(struct avk_jsondoc *doc, json_t *obj, const char *key,
                           const char *prefix, size_t max);

/** The most symbols an enum may have for avk_jsondoc_symbol_mask(): the bits of its mask. */
#define AVK_JSONDOC_SYMBOLS_MAX 64

/**
 * @brief The symbols (a JSON array of strings, owned by schema) of the enum
 * enum_name ("Category") in the namespace of schema's top-level type. NULL,
 * with an error naming what (the condition that needs it), when schema has no
 * such enum of at most AVK_JSONDOC_SYMBOLS_MAX symbols.
 */
const json_t *avk_jsondoc_enum_symbols(struct avk_jsondoc *doc, const avk_schema_t *schema,
                                       const char *enum_name, const char *what);

/** @brief The index of s in symbols (an array of strings); -1 when absent or s is NULL. */
int avk_jsondoc_symbol_index(const json_t *symbols, const char *s);

/**
 * @brief The bit mask (bit i for symbols[i]) of value, which must be a
 * non-empty array of distinct symbols of symbols (at most
 * AVK_JSONDOC_SYMBOLS_MAX); what names them in errors ("category"). Each bad
 * item is an error at its own path; the mask holds the good ones.
 */
uint64_t avk_jsondoc_symbol_mask(struct avk_jsondoc *doc, const json_t *value,
                                 const json_t *symbols, const char *what);

#endif
