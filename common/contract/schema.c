/*
 * avk_schema and avk_catalog: see schema.h.
 *
 * The Parsing Canonical Form is built as a fresh jansson tree (objects keep
 * insertion order, so keys come out in the specification's order name, type,
 * fields, symbols, items, values, size) and dumped compactly. The same walk
 * records every named type's definition under its full name, which the JSON
 * codec uses to find docs, defaults and avk.* attributes that avro-c drops.
 */
#include "common/contract/schema.h"

#include <stdlib.h>
#include <string.h>

struct named_def { /* a named avro-c type and its JSON definition */
        avro_schema_t avro;
        const json_t *json;
};

struct avk_schema {
        char *text;
        json_t *json;
        json_t *named; /* full name -> definition (borrowed from json) */
        char *fullname;
        char *canonical;
        uint64_t fingerprint;
        avro_schema_t avro;
        avro_value_iface_t *iface;
        struct named_def *defs;
        size_t defs_cnt;
};

/* CRC-64-AVRO, from the specification's "Schema Fingerprints". */
#define AVK_FP_EMPTY 0xc15d213aa4d7a795ULL

uint64_t avk_fingerprint64(const void *buf, size_t len)
{
        /* Bitwise rather than table-driven: it runs once per schema load, and
         * needs no lazily-built global table. */
        const unsigned char *p = buf;
        uint64_t fp = AVK_FP_EMPTY;
        for (size_t i = 0; i < len; i++) {
                fp ^= p[i];
                for (int bit = 0; bit < 8; bit++)
                        fp = (fp >> 1) ^ (AVK_FP_EMPTY & (0 - (fp & 1)));
        }
        return fp;
}

static const char *const primitives[] = {"null",  "boolean", "int",   "long",
                                         "float", "double",  "bytes", "string"};

static int is_primitive(const char *name)
{
        for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++) {
                if (strcmp(name, primitives[i]) == 0)
                        return 1;
        }
        return 0;
}

/* Full name of `name` seen inside namespace `ns` (specification, "Names"). */
static char *full_name(const char *name, const char *ns)
{
        size_t nl = strlen(name), sl = ns ? strlen(ns) : 0;
        char *out;
        if (strchr(name, '.') || sl == 0) {
                out = malloc(nl + 1);
                if (out)
                        memcpy(out, name, nl + 1);
                return out;
        }
        out = malloc(sl + 1 + nl + 1);
        if (out) {
                memcpy(out, ns, sl);
                out[sl] = '.';
                memcpy(out + sl + 1, name, nl + 1);
        }
        return out;
}

struct canon_walk {
        json_t *named; /* may be NULL when only the form is wanted */
        char *errstr;
        size_t errstr_size;
};

static json_t *canon(struct canon_walk *w, const json_t *node, const char *ns, int depth);

static json_t *canon_named(struct canon_walk *w, const json_t *node, const char *type,
                           const char *ns, int depth)
{
        const char *name = json_string_value(json_object_get(node, "name"));
        if (!name || !*name) {
                snprintf(w->errstr, w->errstr_size, "a %s has no \"name\"", type);
                return NULL;
        }
        const char *own_ns = json_string_value(json_object_get(node, "namespace"));
        char *fname = full_name(name, own_ns ? own_ns : ns);
        if (!fname)
                return NULL;
        /* The enclosing namespace of nested definitions is this type's own. */
        const char *dot = strrchr(fname, '.');
        char *inner_ns = dot ? strndup(fname, (size_t)(dot - fname)) : strdup("");
        json_t *out = json_object();
        if (!inner_ns || !out)
                goto fail;
        if (w->named) {
                if (json_object_get(w->named, fname)) {
                        snprintf(w->errstr, w->errstr_size, "type %s is defined twice", fname);
                        goto fail;
                }
                json_object_set_new(w->named, fname, json_pack("O", node));
        }
        json_object_set_new(out, "name", json_string(fname));
        json_object_set_new(out, "type", json_string(type));
        if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0) {
                const json_t *fields = json_object_get(node, "fields");
                if (!json_is_array(fields)) {
                        snprintf(w->errstr, w->errstr_size, "record %s has no \"fields\" array",
                                 fname);
                        goto fail;
                }
                json_t *cfields = json_array();
                json_object_set_new(out, "fields", cfields);
                size_t i;
                const json_t *f;
                json_array_foreach(fields, i, f)
                {
                        const char *fn = json_string_value(json_object_get(f, "name"));
                        if (!fn) {
                                snprintf(w->errstr, w->errstr_size,
                                         "field %zu of record %s has no \"name\"", i, fname);
                                goto fail;
                        }
                        json_t *ft = canon(w, json_object_get(f, "type"), inner_ns, depth + 1);
                        if (!ft)
                                goto fail;
                        json_array_append_new(cfields,
                                              json_pack("{s:s,s:o}", "name", fn, "type", ft));
                }
        } else if (strcmp(type, "enum") == 0) {
                json_object_set(out, "symbols", json_object_get(node, "symbols"));
        } else {
                json_object_set(out, "size", json_object_get(node, "size"));
        }
        free(inner_ns);
        free(fname);
        return out;
fail:
        free(inner_ns);
        free(fname);
        json_decref(out);
        return NULL;
}

static json_t *canon(struct canon_walk *w, const json_t *node, const char *ns, int depth)
{
        if (depth > 64) {
                snprintf(w->errstr, w->errstr_size, "schema nests deeper than 64 levels");
                return NULL;
        }
        if (json_is_string(node)) {
                const char *s = json_string_value(node);
                if (is_primitive(s))
                        return json_string(s);
                char *fname = full_name(s, ns);
                json_t *out = fname ? json_string(fname) : NULL;
                free(fname);
                return out;
        }
        if (json_is_array(node)) {
                json_t *out = json_array();
                size_t i;
                const json_t *b;
                json_array_foreach(node, i, b)
                {
                        json_t *cb = canon(w, b, ns, depth + 1);
                        if (!cb) {
                                json_decref(out);
                                return NULL;
                        }
                        json_array_append_new(out, cb);
                }
                return out;
        }
        if (!json_is_object(node)) {
                snprintf(w->errstr, w->errstr_size, "a schema must be a string, array or object");
                return NULL;
        }
        const json_t *type = json_object_get(node, "type");
        if (!json_is_string(type))
                return canon(w, type, ns, depth + 1);
        const char *t = json_string_value(type);
        if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0 || strcmp(t, "enum") == 0 ||
            strcmp(t, "fixed") == 0)
                return canon_named(w, node, t, ns, depth);
        if (strcmp(t, "array") == 0 || strcmp(t, "map") == 0) {
                const char *key = t[0] == 'a' ? "items" : "values";
                json_t *inner = canon(w, json_object_get(node, key), ns, depth + 1);
                return inner ? json_pack("{s:s,s:o}", "type", t, key, inner) : NULL;
        }
        /* A primitive with attributes (logicalType...), or a reference. */
        return canon(w, type, ns, depth + 1);
}

static char *canonical_form(const json_t *schema_json, json_t *named, char *errstr,
                            size_t errstr_size)
{
        struct canon_walk w = {named, errstr, errstr_size};
        json_t *c = canon(&w, schema_json, "", 0);
        if (!c)
                return NULL;
        char *out = json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        json_decref(c);
        return out;
}

char *avk_schema_canonical_form(const json_t *schema_json, char *errstr, size_t errstr_size)
{
        return canonical_form(schema_json, NULL, errstr, errstr_size);
}

/* Pairs every named type of the avro-c schema with its JSON definition. */
static int collect_defs(avk_schema_t *s, avro_schema_t a, int depth)
{
        if (depth > 64 || is_avro_link(a))
                return 0;
        if (is_avro_record(a) || is_avro_enum(a) || is_avro_fixed(a)) {
                for (size_t i = 0; i < s->defs_cnt; i++) {
                        if (s->defs[i].avro == a)
                                return 0;
                }
                const char *ns = avro_schema_namespace(a);
                char *fname = full_name(avro_schema_name(a), ns);
                struct named_def *grown = realloc(s->defs, (s->defs_cnt + 1) * sizeof(*grown));
                if (!fname || !grown) {
                        free(fname);
                        if (grown)
                                s->defs = grown;
                        return -1;
                }
                s->defs = grown;
                s->defs[s->defs_cnt++] = (struct named_def){a, json_object_get(s->named, fname)};
                free(fname);
        }
        if (is_avro_record(a)) {
                for (size_t i = 0; i < avro_schema_record_size(a); i++) {
                        if (collect_defs(s, avro_schema_record_field_get_by_index(a, (int)i),
                                         depth + 1) != 0)
                                return -1;
                }
        } else if (is_avro_union(a)) {
                for (size_t i = 0; i < avro_schema_union_size(a); i++) {
                        if (collect_defs(s, avro_schema_union_branch(a, (int)i), depth + 1) != 0)
                                return -1;
                }
        } else if (is_avro_array(a)) {
                return collect_defs(s, avro_schema_array_items(a), depth + 1);
        } else if (is_avro_map(a)) {
                return collect_defs(s, avro_schema_map_values(a), depth + 1);
        }
        return 0;
}

avk_schema_t *avk_schema_new(const char *json_text, char *errstr, size_t errstr_size)
{
        avk_schema_t *s = calloc(1, sizeof(*s));
        if (!s) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        json_error_t jerr;
        s->text = strdup(json_text);
        s->json = json_loads(json_text, JSON_DECODE_ANY, &jerr);
        if (!s->json) {
                snprintf(errstr, errstr_size, "schema is not JSON: line %d column %d: %s",
                         jerr.line, jerr.column, jerr.text);
                goto fail;
        }
        s->named = json_object();
        s->canonical = canonical_form(s->json, s->named, errstr, errstr_size);
        if (!s->canonical)
                goto fail;
        s->fingerprint = avk_fingerprint64(s->canonical, strlen(s->canonical));
        if (avro_schema_from_json_length(json_text, strlen(json_text), &s->avro) != 0) {
                snprintf(errstr, errstr_size, "avro: %s", avro_strerror());
                goto fail;
        }
        const char *name = json_string_value(json_object_get(s->json, "name"));
        const char *ns = json_string_value(json_object_get(s->json, "namespace"));
        s->fullname = full_name(name ? name : avro_schema_type_name(s->avro), ns);
        s->iface = avro_generic_class_from_schema(s->avro);
        if (!s->iface || !s->fullname || collect_defs(s, s->avro, 0) != 0) {
                snprintf(errstr, errstr_size, "avro: %s", avro_strerror());
                goto fail;
        }
        return s;
fail:
        avk_schema_destroy(s);
        return NULL;
}

void avk_schema_destroy(avk_schema_t *s)
{
        if (!s)
                return;
        if (s->iface)
                avro_value_iface_decref(s->iface);
        if (s->avro)
                avro_schema_decref(s->avro);
        free(s->defs);
        json_decref(s->named);
        json_decref(s->json);
        free(s->canonical);
        free(s->fullname);
        free(s->text);
        free(s);
}

const char *avk_schema_fullname(const avk_schema_t *s)
{
        return s->fullname;
}

const char *avk_schema_text(const avk_schema_t *s)
{
        return s->text;
}

const char *avk_schema_canonical(const avk_schema_t *s)
{
        return s->canonical;
}

uint64_t avk_schema_fingerprint(const avk_schema_t *s)
{
        return s->fingerprint;
}

avro_schema_t avk_schema_avro(const avk_schema_t *s)
{
        return s->avro;
}

avro_value_iface_t *avk_schema_iface(const avk_schema_t *s)
{
        return s->iface;
}

const json_t *avk_schema_json(const avk_schema_t *s)
{
        return s->json;
}

const json_t *avk_schema_named(const avk_schema_t *s, const char *fullname)
{
        return json_object_get(s->named, fullname);
}

const json_t *avk_schema_definition(const avk_schema_t *s, avro_schema_t named)
{
        for (size_t i = 0; i < s->defs_cnt; i++) {
                if (s->defs[i].avro == named)
                        return s->defs[i].json;
        }
        return NULL;
}

/* Whether a is, or holds in a union, array or map, a record (a link names one). */
static int holds_record(avro_schema_t a, int depth)
{
        if (depth > 64 || is_avro_record(a) || is_avro_link(a))
                return 1;
        if (is_avro_union(a)) {
                for (size_t i = 0; i < avro_schema_union_size(a); i++) {
                        if (holds_record(avro_schema_union_branch(a, (int)i), depth + 1))
                                return 1;
                }
                return 0;
        }
        if (is_avro_array(a))
                return holds_record(avro_schema_array_items(a), depth + 1);
        if (is_avro_map(a))
                return holds_record(avro_schema_map_values(a), depth + 1);
        return 0;
}

/* The resolution walk of avk_schema_reads(): reader's r reads writer's w;
 * path names where (a field path) in errstr. */
struct reads_walk {
        const avk_schema_t *reader;
        char *errstr;
        size_t errstr_size;
};

static int reads_type(struct reads_walk *rw, avro_schema_t r, avro_schema_t w, const char *path,
                      int depth);

/* A type without records: avro-c resolves it, and a writer enum symbol the
 * reader lacks needs the reader enum's default. */
static int reads_leaf(struct reads_walk *rw, avro_schema_t r, avro_schema_t w, const char *path)
{
        avro_value_iface_t *resolver = avro_resolved_reader_new(w, r);
        if (!resolver) {
                snprintf(rw->errstr, rw->errstr_size, "%s: %s", path, avro_strerror());
                return 0;
        }
        avro_value_iface_decref(resolver);
        if (!is_avro_enum(r) || !is_avro_enum(w))
                return 1;
        const json_t *def = avk_schema_definition(rw->reader, r);
        if (json_object_get(def, "default"))
                return 1;
        for (int i = 0; i < avro_schema_enum_number_of_symbols(w); i++) {
                const char *symbol = avro_schema_enum_get(w, i);
                if (avro_schema_enum_get_by_name(r, symbol) < 0) {
                        snprintf(rw->errstr, rw->errstr_size,
                                 "%s: enum %s: the writer's symbol %s is not the reader's, and the "
                                 "reader's enum has no default",
                                 path, avro_schema_name(r), symbol);
                        return 0;
                }
        }
        return 1;
}

/* Records of the same name: each reader field from the writer's field of its
 * name, or from its default. */
static int reads_record(struct reads_walk *rw, avro_schema_t r, avro_schema_t w, const char *path,
                        int depth)
{
        if (strcmp(avro_schema_name(r), avro_schema_name(w)) != 0) {
                snprintf(rw->errstr, rw->errstr_size, "%s: a record %s is not a %s", path,
                         avro_schema_name(w), avro_schema_name(r));
                return 0;
        }
        const json_t *fields = json_object_get(avk_schema_definition(rw->reader, r), "fields");
        for (size_t i = 0; i < avro_schema_record_size(r); i++) {
                const char *name = avro_schema_record_field_name(r, (int)i);
                char field_path[512];
                snprintf(field_path, sizeof(field_path), "%s.%s", path, name);
                int at = avro_schema_record_field_get_index(w, name);
                if (at >= 0) {
                        if (!reads_type(rw, avro_schema_record_field_get_by_index(r, (int)i),
                                        avro_schema_record_field_get_by_index(w, at), field_path,
                                        depth + 1))
                                return 0;
                } else if (!json_object_get(json_array_get(fields, i), "default")) {
                        snprintf(rw->errstr, rw->errstr_size,
                                 "%s: the writer has no such field and the reader's has no default",
                                 field_path);
                        return 0;
                }
        }
        return 1;
}

static int reads_type(struct reads_walk *rw, avro_schema_t r, avro_schema_t w, const char *path,
                      int depth)
{
        if (depth > 64)
                return 1; /* a recursive type, resolved on the way down */
        if (is_avro_link(r))
                r = avro_schema_link_target(r);
        if (is_avro_link(w))
                w = avro_schema_link_target(w);
        if (!holds_record(r, 0) && !holds_record(w, 0))
                return reads_leaf(rw, r, w, path);
        if (is_avro_union(w)) { /* every branch the writer may have written */
                for (size_t i = 0; i < avro_schema_union_size(w); i++) {
                        if (!reads_type(rw, r, avro_schema_union_branch(w, (int)i), path,
                                        depth + 1))
                                return 0;
                }
                return 1;
        }
        if (is_avro_union(r)) { /* the first branch that reads w */
                for (size_t i = 0; i < avro_schema_union_size(r); i++) {
                        if (reads_type(rw, avro_schema_union_branch(r, (int)i), w, path, depth + 1))
                                return 1;
                }
                snprintf(rw->errstr, rw->errstr_size,
                         "%s: no branch of the reader's union reads "
                         "the writer's %s",
                         path, avro_schema_type_name(w));
                return 0;
        }
        if (is_avro_record(r) && is_avro_record(w))
                return reads_record(rw, r, w, path, depth);
        if (is_avro_array(r) && is_avro_array(w))
                return reads_type(rw, avro_schema_array_items(r), avro_schema_array_items(w), path,
                                  depth + 1);
        if (is_avro_map(r) && is_avro_map(w))
                return reads_type(rw, avro_schema_map_values(r), avro_schema_map_values(w), path,
                                  depth + 1);
        snprintf(rw->errstr, rw->errstr_size, "%s: a %s is not read as a %s", path,
                 avro_schema_type_name(w), avro_schema_type_name(r));
        return 0;
}

int avk_schema_reads(const avk_schema_t *reader, const avk_schema_t *writer, char *errstr,
                     size_t errstr_size)
{
        struct reads_walk rw = {reader, errstr, errstr_size};
        return reads_type(&rw, reader->avro, writer->avro, reader->fullname, 0);
}

struct catalog_entry {
        avk_schema_t *schema;
        int earlier; /* an earlier version: read, never written (not found by name) */
};

struct avk_catalog {
        struct catalog_entry *entries;
        size_t cnt;
};

avk_catalog_t *avk_catalog_new(void)
{
        return calloc(1, sizeof(avk_catalog_t));
}

static int catalog_add(avk_catalog_t *c, avk_schema_t *schema, int earlier, char *errstr,
                       size_t errstr_size)
{
        if (avk_catalog_by_fingerprint(c, avk_schema_fingerprint(schema))) {
                snprintf(errstr, errstr_size, "schema %s is already in the catalog",
                         avk_schema_fullname(schema));
                return -1;
        }
        struct catalog_entry *grown = realloc(c->entries, (c->cnt + 1) * sizeof(*grown));
        if (!grown) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        c->entries = grown;
        c->entries[c->cnt++] = (struct catalog_entry){schema, earlier};
        return 0;
}

int avk_catalog_add(avk_catalog_t *c, avk_schema_t *schema, char *errstr, size_t errstr_size)
{
        return catalog_add(c, schema, 0, errstr, errstr_size);
}

int avk_catalog_add_earlier(avk_catalog_t *c, avk_schema_t *schema, char *errstr,
                            size_t errstr_size)
{
        return catalog_add(c, schema, 1, errstr, errstr_size);
}

/* Whether a schema of exactly this text is in the catalog. */
static int catalog_has_text(const avk_catalog_t *c, const char *text)
{
        for (size_t i = 0; i < c->cnt; i++) {
                if (strcmp(c->entries[i].schema->text, text) == 0)
                        return 1;
        }
        return 0;
}

/* Adds the compiled-in sources; earlier: as earlier versions, skipping any
 * already known (the newest history entry is the current schema). A history
 * file is a copy of the current schema's, so the same text is skipped before
 * it is parsed: ten of the 33 files, a fifth of the instructions of a start. */
static int add_sources(avk_catalog_t *c, const struct avk_schema_source *sources, size_t cnt,
                       int earlier, char *errstr, size_t errstr_size)
{
        for (size_t i = 0; i < cnt; i++) {
                char reason[256];
                if (earlier && catalog_has_text(c, sources[i].json))
                        continue;
                avk_schema_t *s = avk_schema_new(sources[i].json, reason, sizeof(reason));
                if (s && earlier && avk_catalog_by_fingerprint(c, avk_schema_fingerprint(s))) {
                        avk_schema_destroy(s);
                        continue;
                }
                if (!s || catalog_add(c, s, earlier, reason, sizeof(reason)) != 0) {
                        snprintf(errstr, errstr_size, "schemas/%s.avsc: %s", sources[i].file,
                                 reason);
                        avk_schema_destroy(s);
                        return -1;
                }
        }
        return 0;
}

avk_catalog_t *avk_catalog_new_builtin(char *errstr, size_t errstr_size)
{
        avk_catalog_t *c = avk_catalog_new();
        if (!c)
                return NULL;
        if (add_sources(c, avk_schema_sources, avk_schema_source_cnt, 0, errstr, errstr_size) !=
                0 ||
            add_sources(c, avk_schema_history, avk_schema_history_cnt, 1, errstr, errstr_size) !=
                0) {
                avk_catalog_destroy(c);
                return NULL;
        }
        return c;
}

void avk_catalog_destroy(avk_catalog_t *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < c->cnt; i++)
                avk_schema_destroy(c->entries[i].schema);
        free(c->entries);
        free(c);
}

const avk_schema_t *avk_catalog_by_name(const avk_catalog_t *c, const char *name)
{
        for (size_t i = 0; i < c->cnt; i++) {
                if (c->entries[i].earlier)
                        continue;
                const char *full = c->entries[i].schema->fullname;
                const char *dot = strrchr(full, '.');
                if (strcmp(full, name) == 0 || (dot && strcmp(dot + 1, name) == 0))
                        return c->entries[i].schema;
        }
        return NULL;
}

const avk_schema_t *avk_catalog_by_fingerprint(const avk_catalog_t *c, uint64_t fingerprint)
{
        for (size_t i = 0; i < c->cnt; i++) {
                if (c->entries[i].schema->fingerprint == fingerprint)
                        return c->entries[i].schema;
        }
        return NULL;
}
