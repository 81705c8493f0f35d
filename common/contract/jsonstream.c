/*
 * avk_json_stream: see jsonstream.h.
 *
 * The plan mirrors the schema: a place for every spot a JSON value can go
 * (its dereferenced avro-c type, the JSON that describes it, the field's
 * rules, and for a union a place per branch), and per record its fields
 * with their names, defaults and places - everything the tree walk looks up
 * in the schema's JSON for every value, looked up once.
 *
 * Every place also has its slot in the schema's avk_avroprog program,
 * counted from the first slot of the record around it (a named record is
 * planned once and may sit at several places), so the pass writes each value
 * straight into its slot and the program writes the Avro binary: no avro-c
 * value, no allocation per field. simdjson leaves each string in its copy
 * of the text with a NUL after it (jsonsimd.h); yajl's strings are copied
 * with their NUL into one buffer sized for the document before the parse;
 * either way the slots' views stay put.
 *
 * While the parser reads (simdjson, or yajl for the differential tests: the
 * same callbacks either way, jsonsimd.h), a stack of frames holds the objects being filled, one
 * per open record, with its first slot and a bitmap of the fields met so
 * far. Every callback either moves the value on or stops the parse; a
 * stopped parse is the caller's cue to take the tree path.
 */
#include "common/contract/jsonstream.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "common/contract/json_int.h"
#include "common/contract/jsonparse.h"
#include "common/contract/jsonsimd.h"
#include "common/contract/slotfield.h"

#define MAX_FIELDS 256 /* fields of a record the single pass handles */

struct record;

/* An enum's symbols by a hash of their length and end bytes, made with the
 * plan: a string is compared with the one or two symbols in its bucket,
 * not with each symbol of the enum in turn. Open addressing, at most half
 * full, so a probe ends at an empty slot. */
struct symbol_table {
        int32_t *slots; /* symbol index + 1, 0 empty */
        size_t mask;    /* slots - 1, a power of two less one */
};

struct place {                /* where a JSON value goes */
        avro_schema_t schema; /* dereferenced */
        int32_t slot;         /* from the record's first slot: the value's, the union's, or
                                 for a record the first of its fields */
        avro_type_t type;
        const json_t *node; /* the JSON definition of schema here */
        struct avk_json_rules rules;
        struct record *record;                  /* AVRO_RECORD */
        struct place *branches;                 /* AVRO_UNION: one per branch */
        int branch_of[AVK_JSON_KIND_ARRAY + 1]; /* AVRO_UNION: the branch per JSON kind, or -1 */
        struct symbol *symbols;                 /* AVRO_ENUM: by index */
        int symbol_cnt;
        struct symbol_table symbol_table; /* AVRO_ENUM */
};

/* An enum symbol, matched by length and bytes: avro-c's look-up by name
 * hashes the string and takes a tenth of a document's time. */
struct symbol {
        const char *name; /* the schema's */
        size_t len;
};

struct field {
        const char *name;
        size_t name_len;
        avro_schema_t schema; /* as the record holds it, for the tree walk of a default */
        const json_t *def;    /* the field's JSON */
        const json_t *type;   /* def's "type" */
        const json_t *dflt;   /* def's "default", or NULL: required */
        struct place place;
};

struct record {
        avro_schema_t schema;
        int32_t slot_cnt; /* of all its fields, nested ones included; -1 while planned */
        size_t field_cnt;
        struct field *fields;
        struct record *next; /* in the plan's list */
};

/* An "avk.differsFrom" of the schema (struct avk_json_differs) as the slots
 * it reads: mine must not hold other's string unless "unless" holds
 * unless_is (json.c's check_differs for avro-c values). */
struct relation {
        avk_slotfield_t mine, other, unless;
        const char *unless_is; /* NULL: no exception */
};

#define MAX_RELATIONS 8

struct avk_json_plan {
        const avk_schema_t *schema;
        struct place root;
        struct record *records;
        avk_avroprog_t *prog; /* NULL: the schema is not compiled; the pass fills avro-c
                                 values (avk_json_stream_to_avro) */
        struct relation relations[MAX_RELATIONS];
        int relation_cnt;
};

/* ---- the plan ---- */

/* The bucket of a symbol or a string of len > 0 bytes. */
static size_t symbol_hash(const char *s, size_t len)
{
        return len * 31 + (unsigned char)s[0] * 7 + (unsigned char)s[len - 1];
}

/* Fills t with p's symbols; 0, or -1 when memory ran out. */
static int index_symbols(struct symbol_table *t, const struct place *p)
{
        size_t size = 8;
        while (size < 2 * (size_t)p->symbol_cnt)
                size *= 2;
        t->slots = calloc(size, sizeof(*t->slots));
        if (!t->slots)
                return -1;
        t->mask = size - 1;
        for (int i = 0; i < p->symbol_cnt; i++) {
                /* Avro's names are never empty; this one would match nothing. */
                if (p->symbols[i].len == 0)
                        continue;
                size_t at = symbol_hash(p->symbols[i].name, p->symbols[i].len) & t->mask;
                while (t->slots[at])
                        at = (at + 1) & t->mask;
                t->slots[at] = i + 1;
        }
        return 0;
}

static int build_place(avk_json_plan_t *plan, struct place *p, avro_schema_t s, const json_t *node,
                       const json_t *field, int32_t *next_slot);

static struct record *build_record(avk_json_plan_t *plan, avro_schema_t s, const json_t *def)
{
        /* A named record is planned once, however often it is used (and a
         * recursive one stops here). */
        for (struct record *r = plan->records; r; r = r->next)
                if (r->schema == s)
                        return r;
        struct record *r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->schema = s;
        r->slot_cnt = -1;
        r->next = plan->records;
        plan->records = r;
        size_t n = avro_schema_record_size(s);
        const json_t *fields = json_object_get(def, "fields");
        r->fields = calloc(n ? n : 1, sizeof(*r->fields));
        if (!r->fields)
                return NULL;
        r->field_cnt = n;
        int32_t next_slot = 0;
        for (size_t i = 0; i < n; i++) {
                struct field *f = &r->fields[i];
                f->name = avro_schema_record_field_name(s, (int)i);
                f->name_len = strlen(f->name);
                f->schema = avro_schema_record_field_get_by_index(s, (int)i);
                f->def = json_array_get(fields, i);
                f->type = json_object_get(f->def, "type");
                f->dflt = json_object_get(f->def, "default");
                if (build_place(plan, &f->place, f->schema, f->type, f->def, &next_slot) != 0)
                        return NULL;
        }
        r->slot_cnt = next_slot;
        return r;
}

/* The place of a value of s where node stands in the schema's JSON, in
 * field (NULL outside a record field), resolved as the tree walk does; its
 * slots are laid out from *next_slot on as avk_avroprog lays them out
 * (avroprog.h): one per value and per union, a record's fields in order,
 * those of a union's record branch after the union's slot. */
static int build_place(avk_json_plan_t *plan, struct place *p, avro_schema_t s, const json_t *node,
                       const json_t *field, int32_t *next_slot)
{
        p->schema = avk_json_deref(s);
        p->type = avro_typeof(p->schema);
        p->node = avk_json_resolve_node(plan->schema, p->schema, node);
        avk_json_rules_of(p->schema, field, p->node, &p->rules);
        p->slot = *next_slot;
        if (p->type == AVRO_RECORD) {
                p->record = build_record(plan, p->schema, p->node);
                if (!p->record)
                        return -1;
                /* A record inside itself has no layout: avk_avroprog refuses it too. */
                *next_slot += p->record->slot_cnt < 0 ? 0 : p->record->slot_cnt;
                return 0;
        }
        (*next_slot)++;
        if (p->type == AVRO_ENUM) {
                p->symbol_cnt = avro_schema_enum_number_of_symbols(p->schema);
                p->symbols = calloc(p->symbol_cnt ? (size_t)p->symbol_cnt : 1, sizeof(*p->symbols));
                if (!p->symbols)
                        return -1;
                for (int i = 0; i < p->symbol_cnt; i++) {
                        p->symbols[i].name = avro_schema_enum_get(p->schema, i);
                        p->symbols[i].len = strlen(p->symbols[i].name);
                }
                if (index_symbols(&p->symbol_table, p) != 0)
                        return -1;
        }
        if (p->type == AVRO_UNION) {
                size_t n = avro_schema_union_size(p->schema);
                p->branches = calloc(n ? n : 1, sizeof(*p->branches));
                if (!p->branches)
                        return -1;
                for (size_t i = 0; i < n; i++) {
                        struct place *b = &p->branches[i];
                        /* Any branch but a record keeps its value in the union's slot. */
                        int32_t own = p->slot;
                        int is_record = avro_typeof(avk_json_deref(avro_schema_union_branch(
                                            p->schema, (int)i))) == AVRO_RECORD;
                        if (build_place(plan, b, avro_schema_union_branch(p->schema, (int)i),
                                        json_array_get(p->node, i), field,
                                        is_record ? next_slot : &own) != 0)
                                return -1;
                        if (!is_record)
                                b->slot = p->slot;
                }
                for (int kind = 0; kind <= AVK_JSON_KIND_ARRAY; kind++)
                        p->branch_of[kind] = avk_json_union_branch(p->schema, kind);
        }
        return 0;
}

static void free_place(struct place *p)
{
        free(p->symbols);
        free(p->symbol_table.slots);
        if (p->type != AVRO_UNION || !p->branches)
                return;
        for (size_t i = 0; i < avro_schema_union_size(p->schema); i++)
                free_place(&p->branches[i]);
        free(p->branches);
}

void avk_json_plan_destroy(avk_json_plan_t *plan)
{
        if (!plan)
                return;
        free_place(&plan->root);
        avk_avroprog_destroy(plan->prog);
        while (plan->records) {
                struct record *r = plan->records;
                plan->records = r->next;
                for (size_t i = 0; r->fields && i < r->field_cnt; i++)
                        free_place(&r->fields[i].place);
                free(r->fields);
                free(r);
        }
        free(plan);
}

/* Collects the relations among the fields of a record definition, prefix
 * being its path from the root ("" or "receiver."). */
static int plan_relations(avk_json_plan_t *plan, const json_t *def, const char *prefix)
{
        const json_t *fields = json_object_get(def, "fields");
        char reason[256];
        for (size_t i = 0; i < json_array_size(fields); i++) {
                const json_t *fdef = json_array_get(fields, i);
                char path[256];
                snprintf(path, sizeof(path), "%s%s", prefix,
                         json_string_value(json_object_get(fdef, "name")));
                const json_t *type = json_object_get(fdef, "type");
                if (json_is_object(type) && json_object_get(type, "fields")) {
                        char nested[260];
                        snprintf(nested, sizeof(nested), "%s.", path);
                        if (plan_relations(plan, type, nested) != 0)
                                return -1;
                }
                struct avk_json_differs rule;
                int has_rule = avk_json_differs_of(fdef, &rule);
                if (has_rule == 0)
                        continue;
                if (has_rule < 0 || plan->relation_cnt == MAX_RELATIONS)
                        return -1;
                struct relation *r = &plan->relations[plan->relation_cnt++];
                r->unless_is = rule.unless_field ? rule.unless_is : NULL;
                if (avk_slotfield_find(&r->mine, plan->prog, plan->schema, path, reason,
                                       sizeof(reason)) != 0 ||
                    avk_slotfield_find(&r->other, plan->prog, plan->schema, rule.other, reason,
                                       sizeof(reason)) != 0 ||
                    (r->unless_is &&
                     avk_slotfield_find(&r->unless, plan->prog, plan->schema, rule.unless_field,
                                        reason, sizeof(reason)) != 0))
                        return -1;
        }
        return 0;
}

/* Whether every relation holds in slots: no two related fields hold one
 * string, where no exception lifts the rule. */
static int relations_hold(const avk_json_plan_t *plan, const avk_avroprog_slot_t *slots)
{
        for (int i = 0; i < plan->relation_cnt; i++) {
                const struct relation *r = &plan->relations[i];
                size_t mine_len, other_len, unless_len;
                const char *mine = avk_slotfield_text(&r->mine, slots, &mine_len);
                const char *other = avk_slotfield_text(&r->other, slots, &other_len);
                if (!mine || !other || mine_len != other_len || memcmp(mine, other, mine_len) != 0)
                        continue;
                const char *unless =
                    r->unless_is ? avk_slotfield_text(&r->unless, slots, &unless_len) : NULL;
                if (!unless || unless_len != strlen(r->unless_is) ||
                    memcmp(unless, r->unless_is, unless_len) != 0)
                        return 0;
        }
        return 1;
}

avk_json_plan_t *avk_json_plan_new(const avk_schema_t *schema, char *errstr, size_t errstr_size)
{
        avk_json_plan_t *plan = calloc(1, sizeof(*plan));
        int32_t slot_cnt = 0;
        if (plan)
                plan->schema = schema;
        if (!plan || build_place(plan, &plan->root, avk_schema_avro(schema),
                                 avk_schema_json(schema), NULL, &slot_cnt) != 0) {
                avk_json_plan_destroy(plan);
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        /* A schema the program does not compile (arrays, maps, a record
         * inside itself) is filled into avro-c values only. */
        char reason[256];
        plan->prog = avk_avroprog_new(schema, reason, sizeof(reason));
        if (plan->prog && avk_avroprog_slot_count(plan->prog) != (size_t)slot_cnt) {
                snprintf(errstr, errstr_size, "%d slots planned, %zu in the program", slot_cnt,
                         avk_avroprog_slot_count(plan->prog));
                avk_json_plan_destroy(plan);
                return NULL;
        }
        if (plan->prog && plan_relations(plan, avk_schema_json(schema), "") != 0) {
                snprintf(errstr, errstr_size,
                         "an avk.differsFrom is malformed or names no single field");
                avk_json_plan_destroy(plan);
                return NULL;
        }
        return plan;
}

const avk_avroprog_t *avk_json_plan_prog(const avk_json_plan_t *plan)
{
        return plan->prog;
}

/* ---- the single pass ---- */

/* Where a value goes: slots counted from a record's first slot, or, for a
 * schema without a program, an avro-c value. */
struct spot {
        avk_avroprog_slot_t *slots;
        avro_value_t value;
};

struct frame {                      /* an open object: a record being filled */
        const struct field *fields; /* the record's, copied here: a load less a key */
        size_t field_cnt;
        struct spot spot;            /* of the record */
        int depth;                   /* of the record in the tree walk's count */
        size_t next;                 /* where the next key is looked for first */
        const struct field *pending; /* the field whose value comes next */
        size_t seen_cnt;             /* fields met: all of them, and nothing is absent */
        uint64_t seen[MAX_FIELDS / 64];
};

struct stream {
        const avk_json_plan_t *plan;
        const struct avk_json_fill *fill;
        struct avk_json_walk walk;
        struct spot root; /* slots NULL: into the avro-c value */
        struct frame frame[AVK_JSON_MAX_DEPTH];
        int depth;         /* open frames */
        struct frame *top; /* frame[depth - 1], kept: a key's look-up starts here */
        int done;          /* the root object is closed */
        char *text;        /* the strings of the document, each with its NUL */
        size_t text_used, text_cap;
        int strings_stay; /* the reader's strings stay put with their NUL (jsonsimd.h) */
        int nul_free;     /* the document has no \u0000 escape: no string holds a NUL */
};

/* Where a JSON value of kind goes, and its place: the root, or the pending
 * field's, through a union's branch (chosen there). NULL when the single
 * pass cannot go on (the tree walk would fail here, or the type is not one
 * the single pass handles). */
static const struct place *target(struct stream *st, enum avk_json_kind kind, struct spot *to,
                                  int *depth)
{
        const struct place *p;
        if (st->depth == 0) {
                if (st->done)
                        return NULL;
                p = &st->plan->root;
                *to = st->root;
                *depth = 0;
        } else {
                struct frame *f = st->top;
                const struct field *field = f->pending;
                f->pending = NULL;
                if (!field)
                        return NULL;
                *to = f->spot;
                if (!to->slots &&
                    avro_value_get_by_index(&f->spot.value, (size_t)(field - f->fields), &to->value,
                                            NULL) != 0)
                        return NULL;
                p = &field->place;
                *depth = f->depth + 1;
        }
        if (*depth > AVK_JSON_WALK_MAX_DEPTH)
                return NULL;
        if (p->type == AVRO_UNION) {
                int b = p->branch_of[kind];
                if (b < 0)
                        return NULL;
                if (to->slots) {
                        to->slots[p->slot].branch = b;
                } else {
                        avro_value_t branch;
                        if (avro_value_set_branch(&to->value, b, &branch) != 0)
                                return NULL;
                        to->value = branch;
                }
                p = &p->branches[b];
                if (++*depth > AVK_JSON_WALK_MAX_DEPTH || p->type == AVRO_UNION)
                        return NULL;
        }
        return p;
}

static uint64_t load64(const unsigned char *p)
{
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

static uint32_t load32(const unsigned char *p)
{
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

/* Whether a[0..n) and b[0..n) hold the same bytes. Keys and symbols are
 * short and of every length: memcmp()'s call and its choice by length cost
 * more than the comparison (an eighth of the pass's time), so words are
 * compared inline, the last one overlapping the one before, never reading
 * past n. */
static inline int same_bytes(const void *a, const void *b, size_t n)
{
        const unsigned char *x = a, *y = b;
        if (n >= sizeof(uint64_t)) {
                for (size_t i = 0; i + sizeof(uint64_t) < n; i += sizeof(uint64_t))
                        if (load64(x + i) != load64(y + i))
                                return 0;
                return load64(x + n - sizeof(uint64_t)) == load64(y + n - sizeof(uint64_t));
        }
        if (n >= sizeof(uint32_t))
                return load32(x) == load32(y) &&
                       load32(x + n - sizeof(uint32_t)) == load32(y + n - sizeof(uint32_t));
        for (size_t i = 0; i < n; i++)
                if (x[i] != y[i])
                        return 0;
        return 1;
}

/* Copies len bytes and a NUL into the document's string buffer. */
static const char *keep(struct stream *st, const void *s, size_t len)
{
        if (len + 1 > st->text_cap - st->text_used)
                return NULL;
        char *at = st->text + st->text_used;
        memcpy(at, s, len);
        at[len] = '\0';
        st->text_used += len + 1;
        return at;
}

/* The index of the symbol of p's enum that s[0..len) is, or -1. */
static int find_symbol(const struct place *p, const char *s, size_t len)
{
        const struct symbol_table *t = &p->symbol_table;
        if (len == 0)
                return -1;
        for (size_t at = symbol_hash(s, len) & t->mask; t->slots[at]; at = (at + 1) & t->mask) {
                const struct symbol *sym = &p->symbols[t->slots[at] - 1];
                if (sym->len == len && same_bytes(sym->name, s, len))
                        return t->slots[at] - 1;
        }
        return -1;
}

/* A scalar into its place; 1 to go on, 0 to stop (yajl's convention). */
static int put(struct stream *st, const struct avk_json_scalar *in)
{
        struct spot to;
        int depth;
        const struct place *p = target(st, in->kind, &to, &depth);
        if (!p || p->type == AVRO_RECORD || p->type == AVRO_ARRAY || p->type == AVRO_MAP)
                return 0;
        if (!to.slots)
                return avk_json_set_scalar(&st->walk, p->schema, p->node, &p->rules, in,
                                           &to.value) == 0;
        avk_avroprog_slot_t *slot = &to.slots[p->slot];
        /* A known symbol is its index; anything else (a fallback to the
         * default, an error) is the rules'. */
        int symbol = p->type == AVRO_ENUM && in->kind == AVK_JSON_KIND_STRING
                         ? find_symbol(p, in->string, in->len)
                         : -1;
        if (symbol >= 0) {
                slot->v.i = symbol;
                return 1;
        }
        char norm[AVK_JSON_NORM_SIZE];
        if (avk_json_convert_scalar(&st->walk, p->schema, p->node, &p->rules, in, norm, slot) != 0)
                return 0;
        /* A normalised string outlives norm in the document's buffer. */
        return p->type != AVRO_STRING || slot->v.str != norm ||
               (slot->v.str = keep(st, norm, slot->len)) != NULL;
}

static int on_null(void *ctx)
{
        struct avk_json_scalar in = {.kind = AVK_JSON_KIND_NULL};
        return put(ctx, &in);
}

static int on_boolean(void *ctx, int boolean)
{
        struct avk_json_scalar in = {.kind = AVK_JSON_KIND_BOOLEAN, .boolean = boolean};
        return put(ctx, &in);
}

static int on_number(void *ctx, const char *text, size_t len)
{
        struct avk_json_scalar in;
        const char *problem;
        return avk_json_number(text, len, &in, &problem) == 0 && put(ctx, &in);
}

/* A string with its NUL terminator, for the rules that take C strings. Its
 * UTF-8 is checked once: by simdjson as it reads the text, or for yajl's
 * by the program as it writes the string; a string that is not valid UTF-8
 * or holds a NUL fails, and the document takes the tree path, which rejects
 * it as jansson does. */
static int on_string(void *ctx, const unsigned char *s, size_t len)
{
        struct stream *st = ctx;
        const char *text = st->strings_stay ? (const char *)s : keep(st, s, len);
        struct avk_json_scalar in = {
            .kind = AVK_JSON_KIND_STRING, .string = text, .len = len, .nul_free = st->nul_free};
        return text && put(st, &in);
}

static int on_start_map(void *ctx)
{
        struct stream *st = ctx;
        struct spot to;
        int depth;
        if (st->depth == AVK_JSON_MAX_DEPTH)
                return 0;
        const struct place *p = target(st, AVK_JSON_KIND_OBJECT, &to, &depth);
        if (!p || p->type != AVRO_RECORD || p->record->field_cnt > MAX_FIELDS)
                return 0;
        /* Field by field, and only the words of seen the record uses: a
         * compound literal zeroed the whole frame with `rep stos` and read
         * to back whole over the 8 bytes just stored into it, a stall on
         * every object. */
        struct frame *f = st->top = &st->frame[st->depth++];
        f->fields = p->record->fields;
        f->field_cnt = p->record->field_cnt;
        f->spot.slots = to.slots ? to.slots + p->slot : NULL;
        f->spot.value = to.value;
        f->depth = depth;
        f->next = 0;
        f->pending = NULL;
        f->seen_cnt = 0;
        memset(f->seen, 0, (p->record->field_cnt + 63) / 64 * sizeof(f->seen[0]));
        return 1;
}

/* The index of the field of f named key[0..len), or n when there is none.
 * Keys usually come in the schema's order: the field after the last one met
 * is tried first, alone, and the rest only when it is not the key. */
static size_t find_field(const struct frame *f, const unsigned char *key, size_t len)
{
        size_t n = f->field_cnt, i = f->next;
        if (i < n && f->fields[i].name_len == len && same_bytes(f->fields[i].name, key, len))
                return i;
        for (i = 0; i < n; i++)
                if (f->fields[i].name_len == len && same_bytes(f->fields[i].name, key, len))
                        return i;
        return n;
}

/* An unknown key, or one met before, stops the pass. */
static int on_map_key(void *ctx, const unsigned char *key, size_t len)
{
        struct stream *st = ctx;
        struct frame *f = st->top;
        size_t i = find_field(f, key, len);
        if (i == f->field_cnt || f->seen[i / 64] & (UINT64_C(1) << (i % 64)))
                return 0;
        f->seen[i / 64] |= UINT64_C(1) << (i % 64);
        f->seen_cnt++;
        f->pending = &f->fields[i];
        f->next = i + 1;
        return 1;
}

/* The fields an object lacked: the caller's fill at the top level, else
 * the field's default, through the rules as avk_json_to_avro() applies
 * them: into slots when it is a scalar (a schema with a program has no
 * other: arrays and maps are not compiled, and a record default stops the
 * pass), into an avro-c value through the tree walk itself. */
static int fill_absent(struct stream *st, struct frame *f)
{
        for (size_t i = 0; f->seen_cnt < f->field_cnt && i < f->field_cnt; i++) {
                if (f->seen[i / 64] & (UINT64_C(1) << (i % 64)))
                        continue;
                const struct field *field = &f->fields[i];
                struct avk_json_scalar in;
                if (st->depth == 1 && st->fill && strcmp(field->name, st->fill->field) == 0) {
                        char text[64];
                        st->fill->value(text, sizeof(text));
                        size_t len = strlen(text);
                        in = (struct avk_json_scalar){.kind = AVK_JSON_KIND_STRING,
                                                      .string = keep(st, text, len),
                                                      .len = len};
                        if (!in.string)
                                return 0;
                } else if (!field->dflt) {
                        return 0;
                } else if (!f->spot.slots) {
                        avro_value_t child;
                        if (avro_value_get_by_index(&f->spot.value, i, &child, NULL) != 0 ||
                            avk_json_walk_value(&st->walk, field->schema, field->type, field->def,
                                                field->dflt, &child, f->depth + 1) != 0)
                                return 0;
                        continue;
                } else {
                        avk_json_scalar_of(field->dflt, &in);
                }
                f->pending = field;
                if (!put(st, &in))
                        return 0;
        }
        return 1;
}

static int on_end_map(void *ctx)
{
        struct stream *st = ctx;
        if (!fill_absent(st, st->top))
                return 0;
        st->done = --st->depth == 0;
        st->top = st->done ? NULL : &st->frame[st->depth - 1];
        return 1;
}

/* Arrays are the tree path's (no intake schema has one yet). */
static int on_start_array(void *ctx)
{
        (void)ctx;
        return 0;
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
};

/* Makes room for n bytes in *buf; 0, or -1 when memory ran out. */
static int reserve(void **buf, size_t *cap, size_t n)
{
        if (n <= *cap)
                return 0;
        void *grown = realloc(*buf, n);
        if (!grown)
                return -1;
        *buf = grown;
        *cap = n;
        return 0;
}

void avk_json_stream_buf_free(struct avk_json_stream_buf *b)
{
        free(b->slots);
        free(b->text);
        free(b->avro);
        avk_jsonsimd_destroy(b->simd);
        *b = (struct avk_json_stream_buf){0};
}

/* Whether reader read the whole document, every callback going on. */
static int read_events(enum avk_json_reader reader, struct avk_json_stream_buf *out,
                       const char *buf, size_t len, struct stream *st)
{
        if (reader == AVK_JSON_READER_SIMDJSON)
                return (out->simd || (out->simd = avk_jsonsimd_new()) != NULL) &&
                       avk_jsonsimd_walk(out->simd, buf, len, &callbacks, st);
        yajl_handle h = yajl_alloc(&callbacks, NULL, st);
        int ok = h && yajl_parse(h, (const unsigned char *)buf, len) == yajl_status_ok &&
                 yajl_complete_parse(h) == yajl_status_ok;
        if (h)
                yajl_free(h);
        return ok;
}

/* Whether buf may hold a \u0000 escape, the only way a parser lets a NUL
 * into a string (a raw one is not JSON): one look for a backslash in most
 * documents, instead of a strlen() for every string. */
static int has_nul_escape(const char *buf, size_t len)
{
        for (const char *at = buf, *end = buf + len;
             (at = memchr(at, '\\', (size_t)(end - at))) != NULL; at++)
                if ((size_t)(end - at) >= 6 && memcmp(at + 1, "u0000", 5) == 0)
                        return 1;
        return 0;
}

/* Parses the document into out->slots, or into value when it is not NULL. */
static int parse(const avk_json_plan_t *plan, enum avk_json_reader reader, const char *buf,
                 size_t len, const struct avk_json_fill *fill, const struct avk_json_opts *opts,
                 struct avk_json_stream_buf *out, avro_value_t *value)
{
        size_t slot_cnt = value ? 0 : avk_avroprog_slot_count(plan->prog);
        /* Every string is at most the document's bytes, plus a NUL and a
         * normalised form in each slot, plus the fill. */
        size_t text_cap = len + (slot_cnt + 2) * (AVK_JSON_NORM_SIZE + 1);
        if (reserve((void **)&out->slots, &out->slots_cap, slot_cnt * sizeof(*out->slots)) != 0 ||
            reserve((void **)&out->text, &out->text_cap, text_cap) != 0)
                return -1;
        struct stream st; /* a few KB: the frames are not initialised until used */
        st.plan = plan;
        st.fill = fill;
        st.root = (struct spot){.slots = value ? NULL : out->slots};
        if (value) {
                avro_value_reset(value);
                st.root.value = *value;
        }
        st.depth = 0;
        st.top = NULL;
        st.done = 0;
        st.text = out->text;
        st.text_used = 0;
        st.text_cap = out->text_cap;
        st.strings_stay = reader == AVK_JSON_READER_SIMDJSON;
        st.nul_free = !has_nul_escape(buf, len);
        avk_json_walk_init(&st.walk, plan->schema, opts, NULL);
        if (!read_events(reader, out, buf, len, &st) || !st.done)
                return -1;
        if (value)
                return avk_json_check_relations(&st.walk, value);
        return !(opts->flags & AVK_JSON_VALIDATE) || relations_hold(plan, out->slots) ? 0 : -1;
}

int avk_json_stream_encode(const avk_json_plan_t *plan, enum avk_json_reader reader,
                           const char *buf, size_t len, const struct avk_json_fill *fill,
                           const struct avk_json_opts *opts, struct avk_json_stream_buf *out)
{
        /* yajl turns a lone surrogate escape into '?', so jsonparse.c sends
         * documents with any to jansson's parser; simdjson decodes a pair as
         * jansson does and refuses a lone one itself. */
        if (!plan->prog ||
            (reader == AVK_JSON_READER_YAJL && avk_json_has_surrogate_escape(buf, len)) ||
            parse(plan, reader, buf, len, fill, opts, out, NULL) != 0)
                return -1;
        /* simdjson checked all of the text's UTF-8 as strictly as the
         * program does (RFC 3629) before it read a string (jsonsimd.h), so
         * the program does not check its strings again; yajl's check is not
         * as strict, so what it read is checked as it is written. A NUL,
         * which neither parser refuses in an escape, is convert_string()'s
         * (json.c) either way. */
        char errstr[256];
        int64_t n =
            reader == AVK_JSON_READER_SIMDJSON
                ? avk_avroprog_encode_checked_text_into(plan->prog, out->slots, &out->avro,
                                                        &out->avro_cap, errstr, sizeof(errstr))
                : avk_avroprog_encode_into(plan->prog, out->slots, &out->avro, &out->avro_cap,
                                           errstr, sizeof(errstr));
        if (n < 0)
                return -1;
        out->avro_len = (size_t)n;
        return 0;
}

int avk_json_stream_to_avro(const avk_json_plan_t *plan, enum avk_json_reader reader,
                            const char *buf, size_t len, const struct avk_json_fill *fill,
                            avro_value_t *out, const struct avk_json_opts *opts)
{
        struct avk_json_stream_buf b = {0};
        int rc;
        if (!plan->prog) {
                rc = avk_json_has_surrogate_escape(buf, len) ||
                             parse(plan, reader, buf, len, fill, opts, &b, out) != 0
                         ? -1
                         : 0;
        } else {
                rc = avk_json_stream_encode(plan, reader, buf, len, fill, opts, &b);
                avro_reader_t avro_in =
                    rc == 0 ? avro_reader_memory((const char *)b.avro, (int64_t)b.avro_len) : NULL;
                avro_value_reset(out);
                if (rc == 0)
                        rc = avro_in && avro_value_read(avro_in, out) == 0 ? 0 : -1;
                if (avro_in)
                        avro_reader_free(avro_in);
        }
        avk_json_stream_buf_free(&b);
        return rc;
}
