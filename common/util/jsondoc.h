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
 */
#ifndef AVK_JSONDOC_H
#define AVK_JSONDOC_H

#include <jansson.h>

#include <stddef.h>

#include "common/util/errors.h"
#include "common/util/path.h"

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

#endif
