/* avk_binary: see binary.h. */
#include "common/contract/binary.h"

#include "common/util/path.h"
#include "common/contract/utf8.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Zero-size items (null, empty records) make block counts free to inflate:
 * bound the items of one array or map so a few bytes cannot spin the walk. */
#define MAX_BLOCK_ITEMS (1L << 20)
#define MAX_DEPTH       64

struct cursor {
        const unsigned char *p;
        size_t left;
        size_t len;
        struct avk_path path;
        char *errstr;
        size_t errstr_size;
};

__attribute__((format(printf, 2, 3))) static int fail(struct cursor *c, const char *fmt, ...)
{
        char reason[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        char path[256];
        avk_path_format(&c->path, path, sizeof(path));
        snprintf(c->errstr, c->errstr_size, "%s%sat byte %zu: %s", path, path[0] ? " " : "",
                 c->len - c->left, reason);
        return -1;
}

static int read_long(struct cursor *c, int64_t *out, int max_bytes)
{
        uint64_t v = 0;
        for (int i = 0; i < max_bytes; i++) {
                if (c->left == 0)
                        return fail(c, "truncated: a variable-length integer is cut off");
                unsigned char b = *c->p++;
                c->left--;
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
                        return 0;
                }
        }
        return fail(c, "variable-length integer longer than %d bytes", max_bytes);
}

static int skip(struct cursor *c, size_t n, const char *what)
{
        if (n > c->left)
                return fail(c, "truncated: %s needs %zu bytes, %zu left", what, n, c->left);
        c->p += n;
        c->left -= n;
        return 0;
}

static int check(struct cursor *c, avro_schema_t s, int depth);

/* Bytes, or with is_string a string: valid UTF-8 without NUL, which intake
 * refuses too and C strings cannot carry. */
static int check_length_prefixed(struct cursor *c, int is_string)
{
        int64_t len = 0;
        if (read_long(c, &len, 10) != 0)
                return -1;
        if (len < 0)
                return fail(c, "negative length %lld", (long long)len);
        if ((uint64_t)len > c->left)
                return fail(c, "truncated: length %lld but %zu bytes left", (long long)len,
                            c->left);
        if (is_string) {
                size_t bad = avk_utf8_invalid_at(c->p, (size_t)len);
                if (bad != (size_t)len)
                        return fail(c, "invalid UTF-8 at byte %zu of the string", bad);
                if (memchr(c->p, '\0', (size_t)len))
                        return fail(c, "string contains a NUL character");
        }
        return skip(c, (size_t)len, is_string ? "a string" : "bytes");
}

static int check_blocks(struct cursor *c, avro_schema_t items, int is_map, int depth)
{
        long total = 0;
        for (;;) {
                int64_t count = 0;
                if (read_long(c, &count, 10) != 0)
                        return -1;
                if (count == 0)
                        return 0;
                if (count < 0) {
                        int64_t bytes = 0;
                        if (count == INT64_MIN)
                                return fail(c, "block count out of range");
                        count = -count;
                        if (read_long(c, &bytes, 10) != 0)
                                return -1;
                        if (bytes < 0 || (uint64_t)bytes > c->left)
                                return fail(c, "block claims %lld bytes, %zu left",
                                            (long long)bytes, c->left);
                }
                if (count > MAX_BLOCK_ITEMS - total)
                        return fail(c, "more than %ld items", MAX_BLOCK_ITEMS);
                total += (long)count;
                for (int64_t i = 0; i < count; i++) {
                        if (is_map && check_length_prefixed(c, 1) != 0)
                                return -1;
                        if (check(c, items, depth + 1) != 0)
                                return -1;
                }
        }
}

static int check(struct cursor *c, avro_schema_t s, int depth)
{
        if (depth > MAX_DEPTH)
                return fail(c, "nests deeper than %d levels", MAX_DEPTH);
        if (is_avro_link(s))
                s = avro_schema_link_target(s);
        int64_t v = 0;
        switch (avro_typeof(s)) {
        case AVRO_NULL:
                return 0;
        case AVRO_BOOLEAN:
                if (c->left == 0)
                        return fail(c, "truncated: boolean missing");
                if (*c->p > 1)
                        return fail(c, "boolean byte is %u, expected 0 or 1", *c->p);
                return skip(c, 1, "a boolean");
        case AVRO_INT32:
                if (read_long(c, &v, 5) != 0)
                        return -1;
                return (v < INT32_MIN || v > INT32_MAX) ? fail(c, "int out of 32-bit range") : 0;
        case AVRO_INT64:
                return read_long(c, &v, 10);
        case AVRO_FLOAT:
                return skip(c, 4, "a float");
        case AVRO_DOUBLE:
                return skip(c, 8, "a double");
        case AVRO_FIXED:
                return skip(c, (size_t)avro_schema_fixed_size(s), "a fixed");
        case AVRO_BYTES:
                return check_length_prefixed(c, 0);
        case AVRO_STRING:
                return check_length_prefixed(c, 1);
        case AVRO_ENUM:
                if (read_long(c, &v, 10) != 0)
                        return -1;
                if (v < 0 || v >= avro_schema_enum_number_of_symbols(s))
                        return fail(c, "enum index %lld out of range (%d symbols)", (long long)v,
                                    avro_schema_enum_number_of_symbols(s));
                return 0;
        case AVRO_UNION:
                if (read_long(c, &v, 10) != 0)
                        return -1;
                if (v < 0 || (size_t)v >= avro_schema_union_size(s))
                        return fail(c, "union branch %lld out of range (%zu branches)",
                                    (long long)v, avro_schema_union_size(s));
                return check(c, avro_schema_union_branch(s, (int)v), depth + 1);
        case AVRO_ARRAY:
                return check_blocks(c, avro_schema_array_items(s), 0, depth);
        case AVRO_MAP:
                return check_blocks(c, avro_schema_map_values(s), 1, depth);
        case AVRO_RECORD: {
                size_t n = avro_schema_record_size(s);
                for (size_t i = 0; i < n; i++) {
                        avk_path_push(&c->path, avro_schema_record_field_name(s, (int)i), 0);
                        if (check(c, avro_schema_record_field_get_by_index(s, (int)i), depth + 1) !=
                            0)
                                return -1;
                        avk_path_pop(&c->path);
                }
                return 0;
        }
        default:
                return fail(c, "unsupported Avro type");
        }
}

int avk_binary_check(avro_schema_t schema, const void *buf, size_t len, char *errstr,
                     size_t errstr_size)
{
        struct cursor c = {
            .p = buf, .left = len, .len = len, .errstr = errstr, .errstr_size = errstr_size};
        if (check(&c, schema, 0) != 0)
                return -1;
        if (c.left != 0) {
                snprintf(errstr, errstr_size, "%zu bytes trail the datum", c.left);
                return -1;
        }
        return 0;
}
