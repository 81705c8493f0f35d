/* avk_jsondoc: see jsondoc.h. */
#include "common/util/jsondoc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/contract/json.h"

void avk_jsondoc_init(struct avk_jsondoc *doc, const char *file, struct avk_errors *errs)
{
        doc->file = file;
        doc->errs = errs;
        doc->context[0] = '\0';
        avk_path_init(&doc->path);
}

json_t *avk_jsondoc_load(struct avk_jsondoc *doc)
{
        json_error_t jerr;
        json_t *root;
        /* Opened here rather than by jansson, so that the reason is errno's and
         * the file is named once. */
        FILE *f = fopen(doc->file, "rb");

        if (f == NULL) {
                avk_errors_add(doc->errs, doc->file, "cannot open: %s", strerror(errno));
                return NULL;
        }
        root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
        fclose(f);
        if (root == NULL)
                avk_errors_add(doc->errs, NULL, "%s:%d:%d: %s", doc->file, jerr.line, jerr.column,
                               jerr.text);
        return root;
}

static void vfail(struct avk_jsondoc *doc, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void vfail(struct avk_jsondoc *doc, const char *fmt, va_list ap)
{
        char json_path[256], where[AVK_ERROR_MSG_SIZE], reason[AVK_ERROR_MSG_SIZE];

        vsnprintf(reason, sizeof(reason), fmt, ap);
        avk_path_format(&doc->path, json_path, sizeof(json_path));
        snprintf(where, sizeof(where), "%s%s%s%s%s", doc->file, doc->context[0] ? ": " : "",
                 doc->context, json_path[0] ? ": " : "", json_path);
        avk_errors_add(doc->errs, where, "%s", reason);
}

void avk_jsondoc_fail(struct avk_jsondoc *doc, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vfail(doc, fmt, ap);
        va_end(ap);
}

void avk_jsondoc_fail_key(struct avk_jsondoc *doc, const char *key, const char *fmt, ...)
{
        va_list ap;

        avk_path_push(&doc->path, key, 0);
        va_start(ap, fmt);
        vfail(doc, fmt, ap);
        va_end(ap);
        avk_path_pop(&doc->path);
}

void avk_jsondoc_check_keys(struct avk_jsondoc *doc, json_t *obj, const char *const *allowed)
{
        const char *key;
        json_t *value;

        json_object_foreach(obj, key, value)
        {
                char expected[256];
                size_t used = 0;
                int known = 0;

                for (size_t i = 0; allowed[i] != NULL; i++)
                        known |= strcmp(key, allowed[i]) == 0;
                if (known)
                        continue;
                expected[0] = '\0';
                for (size_t i = 0; allowed[i] != NULL && used < sizeof(expected); i++)
                        used += (size_t)snprintf(expected + used, sizeof(expected) - used, "%s%s",
                                                 i ? ", " : "", allowed[i]);
                avk_jsondoc_fail_key(doc, key, "unknown key (expected %s)", expected);
        }
}

int avk_jsondoc_expect_object(struct avk_jsondoc *doc, const json_t *value)
{
        if (json_is_object(value))
                return 0;
        avk_jsondoc_fail(doc, "expected an object, got %s", avk_json_type_name(value));
        return -1;
}

const char *avk_jsondoc_string(struct avk_jsondoc *doc, json_t *obj, const char *key, int required)
{
        json_t *value = json_object_get(obj, key);
        const char *s;

        if (value == NULL) {
                if (required)
                        avk_jsondoc_fail_key(doc, key, "is required");
                return NULL;
        }
        if (!json_is_string(value)) {
                avk_jsondoc_fail_key(doc, key, "expected a string, got %s",
                                     avk_json_type_name(value));
                return NULL;
        }
        s = json_string_value(value);
        if (strlen(s) != json_string_length(value)) {
                avk_jsondoc_fail_key(doc, key, "contains a NUL character");
                return NULL;
        }
        if (*s == '\0') {
                avk_jsondoc_fail_key(doc, key, "is empty");
                return NULL;
        }
        return s;
}

int avk_jsondoc_bool(struct avk_jsondoc *doc, json_t *obj, const char *key, int dflt)
{
        json_t *value = json_object_get(obj, key);

        if (value == NULL)
                return dflt;
        if (!json_is_boolean(value)) {
                avk_jsondoc_fail_key(doc, key, "expected true or false, got %s",
                                     avk_json_type_name(value));
                return dflt;
        }
        return json_is_true(value);
}

const char *avk_jsondoc_id(struct avk_jsondoc *doc, json_t *obj, const char *key,
                           const char *prefix, size_t max)
{
        const char *id = avk_jsondoc_string(doc, obj, key, 1);
        size_t prefix_len = strlen(prefix);
        int valid;

        if (id == NULL)
                return NULL;
        valid = strncmp(id, prefix, prefix_len) == 0 && id[prefix_len] != '\0' && strlen(id) <= max;
        for (const char *p = id + prefix_len; valid && *p; p++)
                valid = (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-';
        if (!valid) {
                avk_jsondoc_fail_key(doc, key,
                                     "\"%s\" is not \"%s\" and up to %zu upper-case letters, "
                                     "digits and '-'",
                                     id, prefix, max - prefix_len);
                return NULL;
        }
        return id;
}

json_t *avk_jsondoc_nonempty_array(struct avk_jsondoc *doc, json_t *object, const char *key)
{
        json_t *list = json_object_get(object, key);
        if (json_is_array(list) && json_array_size(list) > 0)
                return list;
        avk_jsondoc_fail_key(doc, key, "expected a non-empty array, got %s",
                             list ? avk_json_type_name(list) : "nothing");
        return NULL;
}
