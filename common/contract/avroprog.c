/*
 * avk_avroprog: see avroprog.h.
 *
 * Compilation walks the reader schema once to lay out its slots (a tree of
 * nodes that lives only while compiling), then walks the writer schema
 * against that tree and emits one step per writer value. A union step jumps
 * through a table to its branch's steps, which end in a jump past the last
 * branch; records emit no step of their own. Steps with slot -1 read and
 * check a value the reader does not keep.
 *
 * The checks are those of avk_binary_check() (common/contract/binary.c), so
 * this decoder refuses exactly the buffers that avk_codec refuses before
 * avro-c reads them: varints longer than 5 (int) or 10 bytes, ints outside
 * 32 bits, negative or overlong lengths, booleans other than 0 and 1, enum
 * and union indexes out of range, strings that are not UTF-8 or hold NUL,
 * and bytes after the datum.
 */
#include "common/contract/avroprog.h"

#include <avro.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/utf8.h"

#define MAX_DEPTH 64

enum opcode {
        OP_BOOLEAN,
        OP_INT,
        OP_LONG,
        OP_FLOAT, /* stored as double */
        OP_DOUBLE,
        OP_STRING, /* also bytes read as string or string as bytes: UTF-8 checked */
        OP_BYTES,
        OP_FIXED, /* arg: size */
        OP_ENUM,  /* arg: symbols */
        OP_UNION, /* arg: branches; table: first struct branch */
        OP_JUMP,  /* arg: target */
        /* Only in programs of two schemas: */
        OP_INT_TO_REAL,  /* arg 1: round to float */
        OP_LONG_TO_REAL, /* arg 1: round to float */
        OP_ENUM_MAP,     /* arg: writer symbols; table: first enum_map entry */
        OP_BRANCH,       /* a writer value that is no union into a reader union: arg the branch */
        OP_DEFAULT,      /* arg slots from slot on take the reader's defaults */
};

struct op {
        uint8_t code;
        int32_t slot; /* -1: read and checked, not kept */
        int32_t arg;
        int32_t table;
        int32_t path; /* index into names, for errors */
};

struct branch {
        int32_t reader_branch; /* -1: no reader branch matches this writer branch */
        int32_t pc;
};

struct avk_avroprog {
        struct op *ops;
        size_t ops_cnt;
        struct branch *branches;
        size_t branches_cnt;
        int32_t *enum_map; /* writer symbol -> reader symbol, -1 unknown */
        size_t enum_map_cnt;
        char **names; /* paths named in errors */
        size_t names_cnt;
        size_t slot_cnt;
        char **slot_paths;
        avk_avroprog_slot_t *defaults; /* what OP_DEFAULT copies, by slot */
        char **owned;                  /* default strings and bytes */
        size_t owned_cnt;
        int encodes; /* compiled from one schema */
};

/* ---- compiling ---- */

struct node { /* a value of the reader schema, while compiling */
        avro_schema_t schema;
        int32_t slot;         /* -1 for a record */
        int32_t first, count; /* the slots of this value and all below it */
        const char *name;     /* a record field's name */
        const json_t *field;  /* a record field's definition (its default) */
        struct node *kids;    /* record fields or union branches */
        size_t kid_cnt;
};

struct build {
        avk_avroprog_t *prog;
        const avk_schema_t *writer;
        const avk_schema_t *reader;
        char *errstr;
        size_t errstr_size;
        avro_schema_t open[MAX_DEPTH + 1]; /* the records being walked, outermost first */
        int open_cnt;
};

__attribute__((format(printf, 2, 3))) static int build_fail(struct build *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->errstr, b->errstr_size, fmt, ap);
        va_end(ap);
        return -1;
}

/* Grows *array (of *cnt items of size) by one zeroed item; its index or -1. */
static int32_t grow(void *array, size_t *cnt, size_t size)
{
        void **arr = array;
        if (*cnt >= INT32_MAX)
                return -1;
        char *grown = realloc(*arr, (*cnt + 1) * size);
        if (!grown)
                return -1;
        memset(grown + *cnt * size, 0, size);
        *arr = grown;
        return (int32_t)(*cnt)++;
}

static int32_t add_name(struct build *b, const char *parent, const char *name)
{
        avk_avroprog_t *p = b->prog;
        int32_t i = grow(&p->names, &p->names_cnt, sizeof(*p->names));
        if (i < 0)
                return build_fail(b, "out of memory");
        size_t len = strlen(parent) + 1 + strlen(name) + 1;
        p->names[i] = malloc(len);
        if (!p->names[i])
                return build_fail(b, "out of memory");
        snprintf(p->names[i], len, "%s%s%s", parent, parent[0] ? "." : "", name);
        return i;
}

static int emit(struct build *b, uint8_t code, int32_t slot, int32_t arg, int32_t table,
                int32_t path)
{
        avk_avroprog_t *p = b->prog;
        int32_t i = grow(&p->ops, &p->ops_cnt, sizeof(*p->ops));
        if (i < 0)
                return build_fail(b, "out of memory");
        p->ops[i] = (struct op){code, slot, arg, table, path};
        return i;
}

/* avro-c makes every use of a named type after its definition a link. */
static avro_schema_t follow(avro_schema_t s)
{
        while (is_avro_link(s))
                s = avro_schema_link_target(s);
        return s;
}

/* Enters record r at where; -1 when r is inside itself (a recursive type) or
 * records nest deeper than the walk goes. */
static int enter_record(struct build *b, avro_schema_t r, const char *where)
{
        for (int i = 0; i < b->open_cnt; i++) {
                if (b->open[i] == r)
                        return build_fail(b, "%s: recursive types are not compiled", where);
        }
        if (b->open_cnt > MAX_DEPTH)
                return build_fail(b, "%s: nests deeper than %d levels", where, MAX_DEPTH);
        b->open[b->open_cnt++] = r;
        return 0;
}

static void node_free(struct node *n)
{
        for (size_t i = 0; i < n->kid_cnt; i++)
                node_free(&n->kids[i]);
        free(n->kids);
}

/* Lays out the reader's slots below n (schema s at path), depth first. */
static int layout(struct build *b, struct node *n, avro_schema_t s, int32_t path, int depth)
{
        avk_avroprog_t *p = b->prog;
        const char *where = p->names[path][0] ? p->names[path] : "the record";
        n->schema = follow(s);
        if (depth > MAX_DEPTH)
                return build_fail(b, "%s: nests deeper than %d levels", where, MAX_DEPTH);
        n->first = (int32_t)p->slot_cnt;
        n->slot = -1;
        switch (avro_typeof(n->schema)) {
        case AVRO_ARRAY:
        case AVRO_MAP:
                return build_fail(b, "%s: arrays and maps are not compiled", where);
        case AVRO_RECORD: {
                const json_t *def = avk_schema_definition(b->reader, n->schema);
                const json_t *fields = json_object_get(def, "fields");
                if (enter_record(b, n->schema, where) != 0)
                        return -1;
                n->kid_cnt = avro_schema_record_size(n->schema);
                n->kids = calloc(n->kid_cnt ? n->kid_cnt : 1, sizeof(*n->kids));
                if (!n->kids)
                        return build_fail(b, "out of memory");
                for (size_t i = 0; i < n->kid_cnt; i++) {
                        struct node *k = &n->kids[i];
                        k->name = avro_schema_record_field_name(n->schema, (int)i);
                        k->field = json_array_get(fields, i);
                        int32_t kid_path = add_name(b, p->names[path], k->name);
                        if (kid_path < 0 ||
                            layout(b, k, avro_schema_record_field_get_by_index(n->schema, (int)i),
                                   kid_path, depth + 1) != 0)
                                return -1;
                }
                b->open_cnt--;
                break;
        }
        case AVRO_UNION:
        default: {
                int32_t slot = grow(&p->slot_paths, &p->slot_cnt, sizeof(*p->slot_paths));
                if (slot < 0 || !(p->slot_paths[slot] = strdup(p->names[path])))
                        return build_fail(b, "out of memory");
                n->slot = slot;
                if (!is_avro_union(n->schema))
                        break;
                n->kid_cnt = avro_schema_union_size(n->schema);
                n->kids = calloc(n->kid_cnt ? n->kid_cnt : 1, sizeof(*n->kids));
                if (!n->kids)
                        return build_fail(b, "out of memory");
                /* A record branch's fields are named through the union's
                 * field; any other branch keeps its value in the union's slot. */
                for (size_t i = 0; i < n->kid_cnt; i++) {
                        struct node *k = &n->kids[i];
                        avro_schema_t bs = follow(avro_schema_union_branch(n->schema, (int)i));
                        if (is_avro_record(bs) || is_avro_array(bs) || is_avro_map(bs)) {
                                if (layout(b, k, bs, path, depth + 1) != 0)
                                        return -1;
                        } else {
                                *k = (struct node){.schema = bs, .slot = slot, .first = slot};
                        }
                }
                break;
        }
        }
        n->count = (int32_t)p->slot_cnt - n->first;
        return 0;
}

static const char *type_name(avro_schema_t s)
{
        return is_avro_named_type(s) ? avro_schema_name(s) : avro_schema_type_name(s);
}

static int same_name(avro_schema_t a, avro_schema_t b)
{
        return strcmp(avro_schema_name(a), avro_schema_name(b)) == 0;
}

/* Whether the writer's primitive w is read as the reader's r by promotion. */
static int promotes(avro_type_t w, avro_type_t r)
{
        switch (w) {
        case AVRO_INT32:
                return r == AVRO_INT64 || r == AVRO_FLOAT || r == AVRO_DOUBLE;
        case AVRO_INT64:
                return r == AVRO_FLOAT || r == AVRO_DOUBLE;
        case AVRO_FLOAT:
                return r == AVRO_DOUBLE;
        case AVRO_STRING:
                return r == AVRO_BYTES;
        case AVRO_BYTES:
                return r == AVRO_STRING;
        default:
                return 0;
        }
}

/* The reader union's branch that a writer value of w is read as: the first
 * of the same type (and name), else the first it promotes to; -1 if none. */
static int32_t match_branch(avro_schema_t w, const struct node *r)
{
        for (size_t i = 0; i < r->kid_cnt; i++) {
                avro_schema_t k = r->kids[i].schema;
                if (avro_typeof(k) == avro_typeof(w) && (!is_avro_named_type(w) || same_name(w, k)))
                        return (int32_t)i;
        }
        for (size_t i = 0; i < r->kid_cnt; i++) {
                if (promotes(avro_typeof(w), avro_typeof(r->kids[i].schema)))
                        return (int32_t)i;
        }
        return -1;
}

static char *own(struct build *b, const char *bytes, size_t len)
{
        avk_avroprog_t *p = b->prog;
        int32_t i = grow(&p->owned, &p->owned_cnt, sizeof(*p->owned));
        if (i < 0 || !(p->owned[i] = malloc(len + 1)))
                return NULL;
        memcpy(p->owned[i], bytes, len);
        p->owned[i][len] = '\0';
        return p->owned[i];
}

/* A JSON default of bytes or fixed: each code point U+0000-U+00FF one byte. */
static int default_bytes(struct build *b, const char *text, avk_avroprog_slot_t *slot)
{
        size_t n = strlen(text), len = 0;
        char *out = own(b, text, n); /* at most as long as the text */
        if (!out)
                return -1;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)text[i];
                if (c >= 0x80) {
                        if ((c & 0xE0) != 0xC0 || c > 0xC3 || i + 1 >= n)
                                return -1;
                        c = (unsigned char)(((c & 0x03) << 6) | (text[++i] & 0x3F));
                }
                out[len++] = (char)c;
        }
        slot->v.str = out;
        slot->len = (uint32_t)len;
        return 0;
}

/* Puts the JSON default d of the reader value n into the default image. */
static int fill_default(struct build *b, const struct node *n, const json_t *d)
{
        avk_avroprog_slot_t *slot = n->slot >= 0 ? &b->prog->defaults[n->slot] : NULL;
        avro_schema_t s = n->schema;
        switch (avro_typeof(s)) {
        case AVRO_NULL:
                return json_is_null(d) ? 0 : -1;
        case AVRO_BOOLEAN:
                if (!json_is_boolean(d))
                        return -1;
                slot->v.i = json_is_true(d);
                return 0;
        case AVRO_INT32:
        case AVRO_INT64:
                if (!json_is_integer(d) ||
                    (is_avro_int32(s) &&
                     (json_integer_value(d) < INT32_MIN || json_integer_value(d) > INT32_MAX)))
                        return -1;
                slot->v.i = json_integer_value(d);
                return 0;
        case AVRO_FLOAT:
        case AVRO_DOUBLE:
                if (!json_is_number(d))
                        return -1;
                slot->v.d =
                    is_avro_float(s) ? (double)(float)json_number_value(d) : json_number_value(d);
                return 0;
        case AVRO_STRING: {
                const char *text = json_string_value(d);
                if (!text)
                        return -1;
                size_t len = json_string_length(d);
                if (avk_utf8_text_invalid_at(text, len) != len ||
                    !(slot->v.str = own(b, text, len)))
                        return -1;
                slot->len = (uint32_t)len;
                return 0;
        }
        case AVRO_BYTES:
        case AVRO_FIXED:
                if (!json_is_string(d) || default_bytes(b, json_string_value(d), slot) != 0)
                        return -1;
                return is_avro_fixed(s) && slot->len != avro_schema_fixed_size(s) ? -1 : 0;
        case AVRO_ENUM:
                slot->v.i =
                    json_is_string(d) ? avro_schema_enum_get_by_name(s, json_string_value(d)) : -1;
                return slot->v.i < 0 ? -1 : 0;
        case AVRO_UNION:
                /* The specification: a union's default is of its first branch. */
                slot->branch = 0;
                return fill_default(b, &n->kids[0], d);
        case AVRO_RECORD:
                if (!json_is_object(d))
                        return -1;
                for (size_t i = 0; i < n->kid_cnt; i++) {
                        const json_t *v = json_object_get(d, n->kids[i].name);
                        if (!v)
                                v = json_object_get(n->kids[i].field, "default");
                        if (!v || fill_default(b, &n->kids[i], v) != 0)
                                return -1;
                }
                return 0;
        default:
                return -1;
        }
}

static int compile(struct build *b, avro_schema_t w, const struct node *r, int32_t path, int depth);

/* A writer record read as the reader's record r (NULL: skipped). */
static int compile_record(struct build *b, avro_schema_t w, const struct node *r, int32_t path,
                          int depth)
{
        size_t n = avro_schema_record_size(w);
        const char *where = b->prog->names[path][0] ? b->prog->names[path] : "the record";
        if (enter_record(b, w, where) != 0)
                return -1;
        char *taken = r ? calloc(r->kid_cnt + 1, 1) : NULL;
        int rc = -1;
        if (r && !taken) {
                build_fail(b, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                const char *name = avro_schema_record_field_name(w, (int)i);
                const struct node *kid = NULL;
                for (size_t k = 0; r && k < r->kid_cnt && !kid; k++) {
                        if (strcmp(r->kids[k].name, name) == 0) {
                                kid = &r->kids[k];
                                taken[k] = 1;
                        }
                }
                int32_t kid_path = add_name(b, b->prog->names[path], name);
                if (kid_path < 0 || compile(b, avro_schema_record_field_get_by_index(w, (int)i),
                                            kid, kid_path, depth + 1) != 0)
                        goto out;
        }
        for (size_t k = 0; r && k < r->kid_cnt; k++) {
                if (taken[k])
                        continue;
                const struct node *kid = &r->kids[k];
                const json_t *d = json_object_get(kid->field, "default");
                const char *parent = b->prog->names[path];
                if (!d) {
                        build_fail(b,
                                   "%s%s%s: the reader's field has no default and the writer "
                                   "does not write it",
                                   parent, parent[0] ? "." : "", kid->name);
                        goto out;
                }
                if (fill_default(b, kid, d) != 0) {
                        build_fail(b, "%s%s%s: the default does not fit the field's type", parent,
                                   parent[0] ? "." : "", kid->name);
                        goto out;
                }
                if (kid->count > 0 && emit(b, OP_DEFAULT, kid->first, kid->count, 0, path) < 0)
                        goto out;
        }
        rc = 0;
out:
        b->open_cnt--;
        free(taken);
        return rc;
}

/* A writer union: one table entry and one run of steps per writer branch. */
static int compile_union(struct build *b, avro_schema_t w, const struct node *r, int32_t path,
                         int depth)
{
        avk_avroprog_t *p = b->prog;
        int32_t n = (int32_t)avro_schema_union_size(w);
        int32_t table = (int32_t)p->branches_cnt;
        for (int32_t i = 0; i < n; i++) {
                if (grow(&p->branches, &p->branches_cnt, sizeof(*p->branches)) < 0)
                        return build_fail(b, "out of memory");
        }
        int reader_is_union = r && is_avro_union(r->schema);
        if (emit(b, OP_UNION, reader_is_union ? r->slot : -1, n, table, path) < 0)
                return -1;
        int32_t *jumps = calloc((size_t)n, sizeof(*jumps));
        int32_t jump_cnt = 0, rc = -1;
        if (!jumps)
                return build_fail(b, "out of memory");
        for (int32_t i = 0; i < n; i++) {
                avro_schema_t wb = follow(avro_schema_union_branch(w, (int)i));
                const struct node *rb = NULL;
                int32_t reader_branch = 0;
                if (reader_is_union) {
                        reader_branch = match_branch(wb, r);
                        rb = reader_branch >= 0 ? &r->kids[reader_branch] : NULL;
                } else if (r) {
                        int fits = avro_typeof(wb) == avro_typeof(r->schema) ||
                                   promotes(avro_typeof(wb), avro_typeof(r->schema));
                        reader_branch = fits ? 0 : -1;
                        rb = fits ? r : NULL;
                }
                /* pc -1 until the end is known: no code, or nothing to read it as
                 * (then refused when met). */
                p->branches[table + i] = (struct branch){reader_branch, -1};
                if (reader_branch < 0)
                        continue;
                int32_t start = (int32_t)p->ops_cnt;
                if (compile(b, wb, rb, path, depth + 1) != 0)
                        goto out;
                if ((int32_t)p->ops_cnt == start)
                        continue;
                p->branches[table + i].pc = start;
                if ((jumps[jump_cnt++] = emit(b, OP_JUMP, -1, 0, 0, path)) < 0)
                        goto out;
        }
        /* The last branch's jump would only go to the next step. */
        if (jump_cnt > 0 && (size_t)jumps[jump_cnt - 1] == p->ops_cnt - 1) {
                p->ops_cnt--;
                jump_cnt--;
        }
        int32_t end = (int32_t)p->ops_cnt;
        for (int32_t j = 0; j < jump_cnt; j++)
                p->ops[jumps[j]].arg = end;
        for (int32_t i = 0; i < n; i++) {
                if (p->branches[table + i].pc < 0)
                        p->branches[table + i].pc = end;
        }
        rc = 0;
out:
        free(jumps);
        return rc;
}

static int compile_enum(struct build *b, avro_schema_t w, const struct node *r, int32_t path)
{
        avk_avroprog_t *p = b->prog;
        int32_t n = avro_schema_enum_number_of_symbols(w);
        int32_t slot = r ? r->slot : -1;
        int identity = !r || n == avro_schema_enum_number_of_symbols(r->schema);
        for (int32_t i = 0; r && identity && i < n; i++)
                identity =
                    strcmp(avro_schema_enum_get(w, i), avro_schema_enum_get(r->schema, i)) == 0;
        if (identity)
                return emit(b, OP_ENUM, slot, n, 0, path) < 0 ? -1 : 0;
        const json_t *def = avk_schema_definition(b->reader, r->schema);
        const char *fallback = json_string_value(json_object_get(def, "default"));
        int fallback_at = fallback ? avro_schema_enum_get_by_name(r->schema, fallback) : -1;
        int32_t table = (int32_t)p->enum_map_cnt;
        for (int32_t i = 0; i < n; i++) {
                int32_t at = grow(&p->enum_map, &p->enum_map_cnt, sizeof(*p->enum_map));
                if (at < 0)
                        return build_fail(b, "out of memory");
                int to = avro_schema_enum_get_by_name(r->schema, avro_schema_enum_get(w, i));
                p->enum_map[at] = to >= 0 ? to : fallback_at;
        }
        return emit(b, OP_ENUM_MAP, slot, n, table, path) < 0 ? -1 : 0;
}

/* A writer primitive (or fixed) read as the reader's r (NULL: skipped). */
static int compile_primitive(struct build *b, avro_schema_t w, const struct node *r, int32_t path)
{
        avro_type_t wt = avro_typeof(w), rt = r ? avro_typeof(r->schema) : wt;
        int32_t slot = r ? r->slot : -1;
        int to_float = rt == AVRO_FLOAT;
        if (wt != rt && !promotes(wt, rt))
                return build_fail(b, "%s: the writer's %s cannot be read as the reader's %s",
                                  b->prog->names[path], type_name(w), type_name(r->schema));
        switch (wt) {
        case AVRO_NULL:
                return 0;
        case AVRO_BOOLEAN:
                return emit(b, OP_BOOLEAN, slot, 0, 0, path) < 0 ? -1 : 0;
        case AVRO_INT32:
                if (rt == AVRO_FLOAT || rt == AVRO_DOUBLE)
                        return emit(b, OP_INT_TO_REAL, slot, to_float, 0, path) < 0 ? -1 : 0;
                return emit(b, OP_INT, slot, 0, 0, path) < 0 ? -1 : 0;
        case AVRO_INT64:
                if (rt == AVRO_FLOAT || rt == AVRO_DOUBLE)
                        return emit(b, OP_LONG_TO_REAL, slot, to_float, 0, path) < 0 ? -1 : 0;
                return emit(b, OP_LONG, slot, 0, 0, path) < 0 ? -1 : 0;
        case AVRO_FLOAT:
                return emit(b, OP_FLOAT, slot, 0, 0, path) < 0 ? -1 : 0;
        case AVRO_DOUBLE:
                return emit(b, OP_DOUBLE, slot, 0, 0, path) < 0 ? -1 : 0;
        case AVRO_STRING:
                return emit(b, OP_STRING, slot, 0, 0, path) < 0 ? -1 : 0;
        case AVRO_BYTES:
                return emit(b, rt == AVRO_STRING ? OP_STRING : OP_BYTES, slot, 0, 0, path) < 0 ? -1
                                                                                               : 0;
        case AVRO_FIXED:
                if (r && (!same_name(w, r->schema) ||
                          avro_schema_fixed_size(w) != avro_schema_fixed_size(r->schema)))
                        return build_fail(b, "%s: fixed %s does not resolve to fixed %s",
                                          b->prog->names[path], type_name(w), type_name(r->schema));
                return emit(b, OP_FIXED, slot, (int32_t)avro_schema_fixed_size(w), 0, path) < 0 ? -1
                                                                                                : 0;
        default:
                return build_fail(b, "%s: %s is not compiled", b->prog->names[path], type_name(w));
        }
}

static int compile(struct build *b, avro_schema_t w, const struct node *r, int32_t path, int depth)
{
        const char *where = b->prog->names[path][0] ? b->prog->names[path] : "the record";
        w = follow(w);
        if (depth > MAX_DEPTH)
                return build_fail(b, "%s: nests deeper than %d levels", where, MAX_DEPTH);
        if (is_avro_union(w))
                return compile_union(b, w, r, path, depth);
        if (r && is_avro_union(r->schema)) {
                int32_t k = match_branch(w, r);
                if (k < 0)
                        return build_fail(b,
                                          "%s: the writer's %s matches no branch of the "
                                          "reader's union",
                                          where, type_name(w));
                if (emit(b, OP_BRANCH, r->slot, k, 0, path) < 0)
                        return -1;
                return compile(b, w, &r->kids[k], path, depth + 1);
        }
        avro_type_t wt = avro_typeof(w);
        if (r && (wt == AVRO_RECORD || wt == AVRO_ENUM) &&
            (avro_typeof(r->schema) != wt || !same_name(w, r->schema)))
                return build_fail(b, "%s: the writer's %s cannot be read as the reader's %s", where,
                                  type_name(w), type_name(r->schema));
        switch (wt) {
        case AVRO_RECORD:
                return compile_record(b, w, r, path, depth);
        case AVRO_ENUM:
                return compile_enum(b, w, r, path);
        case AVRO_ARRAY:
        case AVRO_MAP:
                return build_fail(b, "%s: arrays and maps are not compiled", where);
        default:
                return compile_primitive(b, w, r, path);
        }
}

avk_avroprog_t *avk_avroprog_resolve(const avk_schema_t *writer, const avk_schema_t *reader,
                                     char *errstr, size_t errstr_size)
{
        struct node root = {0};
        struct build b = {.prog = calloc(1, sizeof(avk_avroprog_t)),
                          .writer = writer,
                          .reader = reader,
                          .errstr = errstr,
                          .errstr_size = errstr_size};
        if (!b.prog) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        int32_t top = add_name(&b, "", "");
        if (top < 0 || layout(&b, &root, avk_schema_avro(reader), top, 0) != 0)
                goto fail;
        b.prog->defaults = calloc(b.prog->slot_cnt + 1, sizeof(*b.prog->defaults));
        if (!b.prog->defaults) {
                build_fail(&b, "out of memory");
                goto fail;
        }
        if (compile(&b, avk_schema_avro(writer), &root, top, 0) != 0)
                goto fail;
        node_free(&root);
        return b.prog;
fail:
        node_free(&root);
        avk_avroprog_destroy(b.prog);
        return NULL;
}

avk_avroprog_t *avk_avroprog_new(const avk_schema_t *schema, char *errstr, size_t errstr_size)
{
        avk_avroprog_t *p = avk_avroprog_resolve(schema, schema, errstr, errstr_size);
        if (p)
                p->encodes = 1;
        return p;
}

void avk_avroprog_destroy(avk_avroprog_t *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->names_cnt; i++)
                free(p->names[i]);
        for (size_t i = 0; i < p->slot_cnt; i++)
                free(p->slot_paths[i]);
        for (size_t i = 0; i < p->owned_cnt; i++)
                free(p->owned[i]);
        free(p->names);
        free(p->slot_paths);
        free(p->owned);
        free(p->defaults);
        free(p->ops);
        free(p->branches);
        free(p->enum_map);
        free(p);
}

size_t avk_avroprog_slot_count(const avk_avroprog_t *p)
{
        return p->slot_cnt;
}

int avk_avroprog_slot(const avk_avroprog_t *p, const char *path)
{
        for (size_t i = 0; i < p->slot_cnt; i++) {
                if (strcmp(p->slot_paths[i], path) == 0)
                        return (int)i;
        }
        return -1;
}

const char *avk_avroprog_slot_path(const avk_avroprog_t *p, size_t i)
{
        return p->slot_paths[i];
}

/* ---- decoding ---- */

struct input {
        const unsigned char *start, *pos, *end;
        const avk_avroprog_t *prog;
        char *errstr;
        size_t errstr_size;
};

__attribute__((cold, format(printf, 3, 4))) static int
decode_fail(struct input *in, const struct op *op, const char *fmt, ...)
{
        char reason[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        const char *path = op ? in->prog->names[op->path] : "";
        snprintf(in->errstr, in->errstr_size, "%s%sat byte %zu: %s", path, path[0] ? " " : "",
                 (size_t)(in->pos - in->start), reason);
        return -1;
}

/* A zigzag varint of at most max_bytes bytes, as avk_binary_check reads it. */
static inline int read_varint(struct input *in, const struct op *op, int max_bytes, int64_t *out)
{
        const unsigned char *p = in->pos;
        if (p < in->end && !(*p & 0x80)) {
                *out = (int64_t)(*p >> 1) ^ -(int64_t)(*p & 1);
                in->pos = p + 1;
                return 0;
        }
        uint64_t v = 0;
        for (int i = 0; i < max_bytes; i++) {
                if (p == in->end) {
                        in->pos = p;
                        return decode_fail(in, op,
                                           "truncated: a variable-length integer is cut off");
                }
                unsigned char b = *p++;
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
                        in->pos = p;
                        return 0;
                }
        }
        in->pos = p;
        return decode_fail(in, op, "variable-length integer longer than %d bytes", max_bytes);
}

static inline int read_length_prefixed(struct input *in, const struct op *op, int is_string,
                                       avk_avroprog_slot_t *dst)
{
        int64_t len = 0;
        if (read_varint(in, op, 10, &len) != 0)
                return -1;
        size_t left = (size_t)(in->end - in->pos);
        if (len < 0)
                return decode_fail(in, op, "negative length %lld", (long long)len);
        if ((uint64_t)len > left)
                return decode_fail(in, op, "truncated: length %lld but %zu bytes left",
                                   (long long)len, left);
        if (len > UINT32_MAX)
                return decode_fail(in, op, "longer than 4 GiB");
        if (is_string) {
                size_t bad = avk_utf8_text_invalid_at(in->pos, (size_t)len);
                if (bad != (size_t)len)
                        return in->pos[bad]
                                   ? decode_fail(in, op, "invalid UTF-8 at byte %zu of the string",
                                                 bad)
                                   : decode_fail(in, op, "string contains a NUL character");
        }
        dst->v.str = (const char *)in->pos;
        dst->len = (uint32_t)len;
        in->pos += len;
        return 0;
}

static inline int read_fixed_size(struct input *in, const struct op *op, size_t n, const char *what)
{
        size_t left = (size_t)(in->end - in->pos);
        if (n > left)
                return decode_fail(in, op, "truncated: %s needs %zu bytes, %zu left", what, n,
                                   left);
        return 0;
}

static inline uint64_t load_le(const unsigned char *p, int n)
{
        uint64_t v = 0;
        for (int i = 0; i < n; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

int avk_avroprog_decode(const avk_avroprog_t *p, const void *buf, size_t len,
                        avk_avroprog_slot_t *slots, char *errstr, size_t errstr_size)
{
        struct input in = {buf, buf, (const unsigned char *)buf + len, p, errstr, errstr_size};
        avk_avroprog_slot_t sink; /* what steps with slot -1 read into */
        size_t pc = 0;
        while (pc < p->ops_cnt) {
                const struct op *op = &p->ops[pc++];
                avk_avroprog_slot_t *dst = op->slot >= 0 ? &slots[op->slot] : &sink;
                int64_t v = 0;
                switch (op->code) {
                case OP_BOOLEAN:
                        if (in.pos == in.end)
                                return decode_fail(&in, op, "truncated: boolean missing");
                        if (*in.pos > 1)
                                return decode_fail(&in, op, "boolean byte is %u, expected 0 or 1",
                                                   *in.pos);
                        dst->v.i = *in.pos++;
                        break;
                case OP_INT:
                case OP_INT_TO_REAL:
                        if (read_varint(&in, op, 5, &v) != 0)
                                return -1;
                        if (v < INT32_MIN || v > INT32_MAX)
                                return decode_fail(&in, op, "int out of 32-bit range");
                        if (op->code == OP_INT)
                                dst->v.i = v;
                        else
                                dst->v.d = op->arg ? (double)(float)v : (double)v;
                        break;
                case OP_LONG:
                        if (read_varint(&in, op, 10, &dst->v.i) != 0)
                                return -1;
                        break;
                case OP_LONG_TO_REAL:
                        if (read_varint(&in, op, 10, &v) != 0)
                                return -1;
                        dst->v.d = op->arg ? (double)(float)v : (double)v;
                        break;
                case OP_FLOAT: {
                        if (read_fixed_size(&in, op, 4, "a float") != 0)
                                return -1;
                        uint32_t bits = (uint32_t)load_le(in.pos, 4);
                        float f;
                        memcpy(&f, &bits, sizeof(f));
                        dst->v.d = f;
                        in.pos += 4;
                        break;
                }
                case OP_DOUBLE: {
                        if (read_fixed_size(&in, op, 8, "a double") != 0)
                                return -1;
                        uint64_t bits = load_le(in.pos, 8);
                        memcpy(&dst->v.d, &bits, sizeof(dst->v.d));
                        in.pos += 8;
                        break;
                }
                case OP_STRING:
                case OP_BYTES:
                        if (read_length_prefixed(&in, op, op->code == OP_STRING, dst) != 0)
                                return -1;
                        break;
                case OP_FIXED:
                        if (read_fixed_size(&in, op, (size_t)op->arg, "a fixed") != 0)
                                return -1;
                        dst->v.str = (const char *)in.pos;
                        dst->len = (uint32_t)op->arg;
                        in.pos += op->arg;
                        break;
                case OP_ENUM:
                case OP_ENUM_MAP:
                        if (read_varint(&in, op, 10, &v) != 0)
                                return -1;
                        if (v < 0 || v >= op->arg)
                                return decode_fail(&in, op,
                                                   "enum index %lld out of range (%d symbols)",
                                                   (long long)v, op->arg);
                        if (op->code == OP_ENUM_MAP && (v = p->enum_map[op->table + v]) < 0)
                                return decode_fail(&in, op,
                                                   "the writer's symbol is unknown to the "
                                                   "reader's enum, which has no default");
                        dst->v.i = v;
                        break;
                case OP_UNION: {
                        if (read_varint(&in, op, 10, &v) != 0)
                                return -1;
                        if (v < 0 || v >= op->arg)
                                return decode_fail(&in, op,
                                                   "union branch %lld out of range (%d branches)",
                                                   (long long)v, op->arg);
                        const struct branch *br = &p->branches[op->table + v];
                        if (br->reader_branch < 0)
                                return decode_fail(&in, op,
                                                   "the writer's union branch %lld has no match "
                                                   "in the reader's schema",
                                                   (long long)v);
                        dst->branch = br->reader_branch;
                        pc = (size_t)br->pc;
                        break;
                }
                case OP_JUMP:
                        pc = (size_t)op->arg;
                        break;
                case OP_BRANCH:
                        dst->branch = op->arg;
                        break;
                case OP_DEFAULT:
                        memcpy(dst, &p->defaults[op->slot], (size_t)op->arg * sizeof(*dst));
                        break;
                default:
                        return decode_fail(&in, op, "unknown step %u", op->code);
                }
        }
        if (in.pos != in.end)
                return decode_fail(&in, NULL, "%zu bytes trail the datum",
                                   (size_t)(in.end - in.pos));
        return 0;
}

/* ---- encoding ---- */

struct output {
        unsigned char *buf;
        size_t pos, cap;
};

/* Writes when it fits and counts in any case: the caller learns the size. */
static inline void put(struct output *out, const void *src, size_t n)
{
        if (n && out->pos + n <= out->cap)
                memcpy(out->buf + out->pos, src, n);
        out->pos += n;
}

static inline void put_varint(struct output *out, int64_t v)
{
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        unsigned char tmp[10];
        unsigned char *dst = out->pos + sizeof(tmp) <= out->cap ? out->buf + out->pos : tmp;
        size_t n = 0;
        while (z >= 0x80) {
                dst[n++] = (unsigned char)(z | 0x80);
                z >>= 7;
        }
        dst[n++] = (unsigned char)z;
        if (dst == tmp)
                put(out, tmp, n);
        else
                out->pos += n;
}

static inline void put_le(struct output *out, uint64_t bits, int n)
{
        unsigned char tmp[8];
        for (int i = 0; i < n; i++)
                tmp[i] = (unsigned char)(bits >> (8 * i));
        put(out, tmp, (size_t)n);
}

__attribute__((cold, format(printf, 5, 6))) static int64_t
encode_fail(const avk_avroprog_t *p, const struct op *op, char *errstr, size_t errstr_size,
            const char *fmt, ...)
{
        char reason[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        const char *path = op ? p->names[op->path] : "";
        snprintf(errstr, errstr_size, "%s%s%s", path, path[0] ? ": " : "", reason);
        return -1;
}

/* avk_avroprog_encode(); strings are checked unless the caller made them
 * from checked text (check_text 0). */
static int64_t encode(const avk_avroprog_t *p, const avk_avroprog_slot_t *slots, void *buf,
                      size_t cap, int check_text, char *errstr, size_t errstr_size)
{
        struct output out = {buf, 0, buf ? cap : 0};
        if (!p->encodes)
                return encode_fail(p, NULL, errstr, errstr_size,
                                   "a program of two schemas only decodes");
        size_t pc = 0;
        while (pc < p->ops_cnt) {
                const struct op *op = &p->ops[pc++];
                const avk_avroprog_slot_t *src = op->slot >= 0 ? &slots[op->slot] : NULL;
                switch (op->code) {
                case OP_BOOLEAN: {
                        if (src->v.i != 0 && src->v.i != 1)
                                return encode_fail(p, op, errstr, errstr_size,
                                                   "boolean is %lld, expected 0 or 1",
                                                   (long long)src->v.i);
                        unsigned char byte = (unsigned char)src->v.i;
                        put(&out, &byte, 1);
                        break;
                }
                case OP_INT:
                        if (src->v.i < INT32_MIN || src->v.i > INT32_MAX)
                                return encode_fail(p, op, errstr, errstr_size,
                                                   "int %lld out of 32-bit range",
                                                   (long long)src->v.i);
                        put_varint(&out, src->v.i);
                        break;
                case OP_LONG:
                        put_varint(&out, src->v.i);
                        break;
                case OP_FLOAT: {
                        float f = (float)src->v.d;
                        uint32_t bits;
                        memcpy(&bits, &f, sizeof(bits));
                        put_le(&out, bits, 4);
                        break;
                }
                case OP_DOUBLE: {
                        uint64_t bits;
                        memcpy(&bits, &src->v.d, sizeof(bits));
                        put_le(&out, bits, 8);
                        break;
                }
                case OP_STRING: {
                        size_t bad =
                            check_text ? avk_utf8_text_invalid_at(src->v.str, src->len) : src->len;
                        if (bad != src->len)
                                return encode_fail(p, op, errstr, errstr_size,
                                                   src->v.str[bad]
                                                       ? "invalid UTF-8 at byte %zu of the string"
                                                       : "NUL character at byte %zu of the string",
                                                   bad);
                        put_varint(&out, src->len);
                        put(&out, src->v.str, src->len);
                        break;
                }
                case OP_BYTES:
                        put_varint(&out, src->len);
                        put(&out, src->v.str, src->len);
                        break;
                case OP_FIXED:
                        if (src->len != (uint32_t)op->arg)
                                return encode_fail(p, op, errstr, errstr_size,
                                                   "fixed of %u bytes, expected %d", src->len,
                                                   op->arg);
                        put(&out, src->v.str, src->len);
                        break;
                case OP_ENUM:
                        if (src->v.i < 0 || src->v.i >= op->arg)
                                return encode_fail(p, op, errstr, errstr_size,
                                                   "enum index %lld out of range (%d symbols)",
                                                   (long long)src->v.i, op->arg);
                        put_varint(&out, src->v.i);
                        break;
                case OP_UNION:
                        if (src->branch < 0 || src->branch >= op->arg)
                                return encode_fail(p, op, errstr, errstr_size,
                                                   "union branch %d out of range (%d branches)",
                                                   src->branch, op->arg);
                        put_varint(&out, src->branch);
                        pc = (size_t)p->branches[op->table + src->branch].pc;
                        break;
                case OP_JUMP:
                        pc = (size_t)op->arg;
                        break;
                default: /* steps of two schemas: not in a program that encodes */
                        return encode_fail(p, op, errstr, errstr_size, "unknown step %u", op->code);
                }
        }
        if (out.pos > INT64_MAX)
                return encode_fail(p, NULL, errstr, errstr_size, "datum too large");
        return (int64_t)out.pos;
}

int64_t avk_avroprog_encode(const avk_avroprog_t *p, const avk_avroprog_slot_t *slots, void *buf,
                            size_t cap, char *errstr, size_t errstr_size)
{
        return encode(p, slots, buf, cap, 1, errstr, errstr_size);
}

static int64_t encode_into(const avk_avroprog_t *prog, const avk_avroprog_slot_t *slots,
                           unsigned char **buf, size_t *cap, int check_text, char *errstr,
                           size_t errstr_size)
{
        int64_t len = encode(prog, slots, *buf, *cap, check_text, errstr, errstr_size);
        if (len <= (int64_t)*cap)
                return len;
        unsigned char *grown = realloc(*buf, (size_t)len);
        if (!grown) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        *buf = grown;
        *cap = (size_t)len;
        return encode(prog, slots, *buf, *cap, check_text, errstr, errstr_size);
}

int64_t avk_avroprog_encode_into(const avk_avroprog_t *prog, const avk_avroprog_slot_t *slots,
                                 unsigned char **buf, size_t *cap, char *errstr, size_t errstr_size)
{
        return encode_into(prog, slots, buf, cap, 1, errstr, errstr_size);
}

int64_t avk_avroprog_encode_checked_text_into(const avk_avroprog_t *prog,
                                              const avk_avroprog_slot_t *slots, unsigned char **buf,
                                              size_t *cap, char *errstr, size_t errstr_size)
{
        return encode_into(prog, slots, buf, cap, 0, errstr, errstr_size);
}
