/* avk_avro_field: see avro_field.h. */
#include "common/contract/avro_field.h"

#include <string.h>

int avk_avro_field(avro_value_t *rec, const char *path, avro_value_t *out)
{
        avro_value_t cur = *rec;
        char name[64];
        for (;;) {
                /* A copy, not snprintf: services read a dozen fields per record. */
                size_t n = strcspn(path, ".");
                if (n >= sizeof(name))
                        return -1;
                memcpy(name, path, n);
                name[n] = '\0';
                if (avro_value_get_by_name(&cur, name, out, NULL) != 0)
                        return -1;
                if (!path[n])
                        return 0;
                cur = *out;
                path += n + 1;
        }
}

/* The field at path with a union resolved to its branch; -1 for null or absent. */
static int resolved(avro_value_t *rec, const char *path, avro_value_t *out)
{
        avro_value_t v, branch;
        if (avk_avro_field(rec, path, &v) != 0)
                return -1;
        if (avro_value_get_type(&v) == AVRO_UNION) {
                if (avro_value_get_current_branch(&v, &branch) != 0)
                        return -1;
                v = branch;
        }
        if (avro_value_get_type(&v) == AVRO_NULL)
                return -1;
        *out = v;
        return 0;
}

const char *avk_avro_text(avro_value_t *rec, const char *path)
{
        avro_value_t v;
        if (resolved(rec, path, &v) != 0)
                return NULL;
        const char *s;
        size_t size;
        int i;
        switch (avro_value_get_type(&v)) {
        case AVRO_STRING:
                return avro_value_get_string(&v, &s, &size) == 0 ? s : NULL;
        case AVRO_ENUM:
                return avro_value_get_enum(&v, &i) == 0
                           ? avro_schema_enum_get(avro_value_get_schema(&v), i)
                           : NULL;
        default:
                return NULL;
        }
}

int avk_avro_long(avro_value_t *rec, const char *path, int64_t *out)
{
        avro_value_t v;
        if (resolved(rec, path, &v) != 0)
                return -1;
        int32_t i;
        int b;
        switch (avro_value_get_type(&v)) {
        case AVRO_INT64:
                return avro_value_get_long(&v, out);
        case AVRO_INT32:
                if (avro_value_get_int(&v, &i) != 0)
                        return -1;
                *out = i;
                return 0;
        case AVRO_BOOLEAN:
                if (avro_value_get_boolean(&v, &b) != 0)
                        return -1;
                *out = b;
                return 0;
        default:
                return -1;
        }
}

int avk_avro_set_text(avro_value_t *rec, const char *name, const char *s)
{
        avro_value_t f, branch;
        if (avro_value_get_by_name(rec, name, &f, NULL) != 0)
                return -1;
        if (avro_value_get_type(&f) == AVRO_UNION) {
                /* ["null", "string"]: branch 0 is null */
                if (avro_value_set_branch(&f, s ? 1 : 0, &branch) != 0)
                        return -1;
                if (!s)
                        return avro_value_set_null(&branch);
                f = branch;
        }
        if (avro_value_get_type(&f) == AVRO_ENUM) {
                int i = avro_schema_enum_get_by_name(avro_value_get_schema(&f), s ? s : "");
                return i < 0 ? -1 : avro_value_set_enum(&f, i);
        }
        return s ? avro_value_set_string(&f, s) : -1;
}

int avk_avro_set_long(avro_value_t *rec, const char *name, int64_t v, int is_null)
{
        avro_value_t f, branch;
        if (avro_value_get_by_name(rec, name, &f, NULL) != 0)
                return -1;
        if (avro_value_get_type(&f) == AVRO_UNION) {
                if (avro_value_set_branch(&f, is_null ? 0 : 1, &branch) != 0)
                        return -1;
                if (is_null)
                        return avro_value_set_null(&branch);
                f = branch;
        } else if (is_null) {
                return -1;
        }
        switch (avro_value_get_type(&f)) {
        case AVRO_INT64:
                return avro_value_set_long(&f, v);
        case AVRO_INT32:
                return avro_value_set_int(&f, (int32_t)v);
        case AVRO_BOOLEAN:
                return avro_value_set_boolean(&f, v != 0);
        default:
                return -1;
        }
}
