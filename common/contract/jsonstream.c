/*
 * avk_json_stream: see jsonstream.h.
 *
 * The plan mirrors the schema: a place for every spot a JSON value can go
 * (its dereferenced avro-c type, the JSON that describes it, the field's
 * rules, and for a union a place per branch), and per record its fields
 * with their names, defaults and places - everything the tree walk looks up
 * in the schema's JSON for every value, looked up once.
 *
 * While yajl parses, a stack of frames holds the objects being filled, one
 * per open record, with a bitmap of the fields met so far. Every callback
 * either moves the value on or stops the parse; a stopped parse is the
 * caller's cue to take the tree path.
 */
#include "common/contract/jsonstream.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "common/contract/json_int.h"
#include "common/contract/jsonparse.h"
#include "common/contract/utf8.h"

#define MAX_FIELDS  256 /* fields of a record the single pass handles */
#define SMALL_BYTES 1024

struct record;

struct place {                /* where a JSON value goes */
        avro_schema_t schema; /* dereferenced */
        avro_type_t type;
        const json_t *node; /* the JSON definition of schema here */
        struct avk_json_rules rules;
        struct record *record;                  /* AVRO_RECORD */
        struct place *branches;                 /* AVRO_UNION: one per branch */
        int branch_of[AVK_JSON_KIND_ARRAY + 1]; /* AVRO_UNION: the branch per JSON kind, or -1 */
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
        size_t field_cnt;
        struct field *fields;
        struct record *next; /* in the plan's list */
};

struct avk_json_plan {
        const avk_schema_t *schema;
        struct place root;
        struct record *records;
};

/* ---- the plan ---- */

static int build_place(avk_json_plan_t *plan, struct place *p, avro_schema_t s, const json_t *node,
                       const json_t *field);

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
        r->next = plan->records;
        plan->records = r;
        size_t n = avro_schema_record_size(s);
        const json_t *fields = json_object_get(def, "fields");
        r->fields = calloc(n ? n : 1, sizeof(*r->fields));
        if (!r->fields)
                return NULL;
        r->field_cnt = n;
        for (size_t i = 0; i < n; i++) {
                struct field *f = &r->fields[i];
                f->name = avro_schema_record_field_name(s, (int)i);
                f->name_len = strlen(f->name);
                f->schema = avro_schema_record_field_get_by_index(s, (int)i);
                f->def = json_array_get(fields, i);
                f->type = json_object_get(f->def, "type");
                f->dflt = json_object_get(f->def, "default");
                if (build_place(plan, &f->place, f->schema, f->type, f->def) != 0)
                        return NULL;
        }
        return r;
}

/* The place of a value of s where node stands in the schema's JSON, in
 * field (NULL outside a record field), resolved as the tree walk does. */
static int build_place(avk_json_plan_t *plan, struct place *p, avro_schema_t s, const json_t *node,
                       const json_t *field)
{
        p->schema = avk_json_deref(s);
        p->type = avro_typeof(p->schema);
        p->node = avk_json_resolve_node(plan->schema, p->schema, node);
        avk_json_rules_of(p->schema, field, p->node, &p->rules);
        if (p->type == AVRO_RECORD) {
                p->record = build_record(plan, p->schema, p->node);
                return p->record ? 0 : -1;
        }
        if (p->type == AVRO_UNION) {
                size_t n = avro_schema_union_size(p->schema);
                p->branches = calloc(n ? n : 1, sizeof(*p->branches));
                if (!p->branches)
                        return -1;
                for (size_t i = 0; i < n; i++)
                        if (build_place(plan, &p->branches[i],
                                        avro_schema_union_branch(p->schema, (int)i),
                                        json_array_get(p->node, i), field) != 0)
                                return -1;
                for (int kind = 0; kind <= AVK_JSON_KIND_ARRAY; kind++)
                        p->branch_of[kind] = avk_json_union_branch(p->schema, kind);
        }
        return 0;
}

static void free_place(struct place *p)
{
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

avk_json_plan_t *avk_json_plan_new(const avk_schema_t *schema, char *errstr, size_t errstr_size)
{
        avk_json_plan_t *plan = calloc(1, sizeof(*plan));
        if (plan) {
                plan->schema = schema;
                if (build_place(plan, &plan->root, avk_schema_avro(schema), avk_schema_json(schema),
                                NULL) == 0)
                        return plan;
        }
        avk_json_plan_destroy(plan);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
}

/* ---- the single pass ---- */

struct frame { /* an open object: a record being filled */
        const struct record *record;
        avro_value_t value;
        int depth;                   /* of the record in the tree walk's count */
        size_t next;                 /* where the next key is looked for first */
        const struct field *pending; /* the field whose value comes next */
        uint64_t seen[MAX_FIELDS / 64];
};

struct stream {
        const avk_json_plan_t *plan;
        const struct avk_json_fill *fill;
        struct avk_json_walk walk;
        avro_value_t *out;
        struct frame frame[AVK_JSON_MAX_DEPTH];
        int depth;  /* open frames */
        int done;   /* the root object is closed */
        char *text; /* a string value with its NUL: small, or malloc'd */
        size_t text_cap;
        char small[SMALL_BYTES];
};

/* The value a JSON value of kind fills, and its place: the root, or the
 * pending field's, through a union's branch. NULL when the single pass
 * cannot go on (the tree walk would fail here, or the type is not one the
 * single pass handles). */
static const struct place *target(struct stream *st, enum avk_json_kind kind, avro_value_t *value,
                                  int *depth)
{
        const struct place *p;
        if (st->depth == 0) {
                if (st->done)
                        return NULL;
                p = &st->plan->root;
                *value = *st->out;
                *depth = 0;
        } else {
                struct frame *f = &st->frame[st->depth - 1];
                const struct field *field = f->pending;
                f->pending = NULL;
                if (!field || avro_value_get_by_index(
                                  &f->value, (size_t)(field - f->record->fields), value, NULL) != 0)
                        return NULL;
                p = &field->place;
                *depth = f->depth + 1;
        }
        if (*depth > AVK_JSON_WALK_MAX_DEPTH)
                return NULL;
        if (p->type == AVRO_UNION) {
                int b = p->branch_of[kind];
                avro_value_t branch;
                if (b < 0 || avro_value_set_branch(value, b, &branch) != 0)
                        return NULL;
                *value = branch;
                p = &p->branches[b];
                if (++*depth > AVK_JSON_WALK_MAX_DEPTH || p->type == AVRO_UNION)
                        return NULL;
        }
        return p;
}

/* A scalar into its place; 1 to go on, 0 to stop (yajl's convention). */
static int put(struct stream *st, const struct avk_json_scalar *in)
{
        avro_value_t value;
        int depth;
        const struct place *p = target(st, in->kind, &value, &depth);
        if (!p || p->type == AVRO_RECORD || p->type == AVRO_ARRAY || p->type == AVRO_MAP)
                return 0;
        return avk_json_set_scalar(&st->walk, p->schema, p->node, &p->rules, in, &value) == 0;
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

/* A string as jansson would hold it - valid UTF-8 without NUL - with its
 * NUL terminator, for the rules that take C strings. */
static int on_string(void *ctx, const unsigned char *s, size_t len)
{
        struct stream *st = ctx;
        if (memchr(s, '\0', len) || avk_utf8_invalid_at(s, len) != len)
                return 0;
        if (len + 1 > st->text_cap) {
                char *text = malloc(len + 1);
                if (!text)
                        return 0;
                if (st->text != st->small)
                        free(st->text);
                st->text = text;
                st->text_cap = len + 1;
        }
        memcpy(st->text, s, len);
        st->text[len] = '\0';
        struct avk_json_scalar in = {.kind = AVK_JSON_KIND_STRING, .string = st->text, .len = len};
        return put(st, &in);
}

static int on_start_map(void *ctx)
{
        struct stream *st = ctx;
        avro_value_t value;
        int depth;
        if (st->depth == AVK_JSON_MAX_DEPTH)
                return 0;
        const struct place *p = target(st, AVK_JSON_KIND_OBJECT, &value, &depth);
        if (!p || p->type != AVRO_RECORD || p->record->field_cnt > MAX_FIELDS)
                return 0;
        struct frame *f = &st->frame[st->depth++];
        *f = (struct frame){.record = p->record, .value = value, .depth = depth};
        return 1;
}

/* Keys usually come in the schema's order: the search starts after the
 * last field met. An unknown key, or one met before, stops the pass. */
static int on_map_key(void *ctx, const unsigned char *key, size_t len)
{
        struct stream *st = ctx;
        struct frame *f = &st->frame[st->depth - 1];
        size_t n = f->record->field_cnt, i = f->next;
        for (size_t k = 0; k < n; k++, i++) {
                if (i == n)
                        i = 0;
                const struct field *field = &f->record->fields[i];
                if (field->name_len != len || memcmp(field->name, key, len) != 0)
                        continue;
                if (f->seen[i / 64] & (UINT64_C(1) << (i % 64)))
                        return 0;
                f->seen[i / 64] |= UINT64_C(1) << (i % 64);
                f->pending = field;
                f->next = i + 1;
                return 1;
        }
        return 0;
}

/* The fields an object lacked: the caller's fill at the top level, else
 * the field's default through the tree walk, as avk_json_to_avro() does. */
static int fill_absent(struct stream *st, struct frame *f)
{
        for (size_t i = 0; i < f->record->field_cnt; i++) {
                if (f->seen[i / 64] & (UINT64_C(1) << (i % 64)))
                        continue;
                const struct field *field = &f->record->fields[i];
                if (st->depth == 1 && st->fill && strcmp(field->name, st->fill->field) == 0) {
                        char text[64];
                        st->fill->value(text, sizeof(text));
                        struct avk_json_scalar in = {
                            .kind = AVK_JSON_KIND_STRING, .string = text, .len = strlen(text)};
                        f->pending = field;
                        if (!put(st, &in))
                                return 0;
                        continue;
                }
                avro_value_t child;
                if (!field->dflt || avro_value_get_by_index(&f->value, i, &child, NULL) != 0 ||
                    avk_json_walk_value(&st->walk, field->schema, field->type, field->def,
                                        field->dflt, &child, f->depth + 1) != 0)
                        return 0;
        }
        return 1;
}

static int on_end_map(void *ctx)
{
        struct stream *st = ctx;
        if (!fill_absent(st, &st->frame[st->depth - 1]))
                return 0;
        st->done = --st->depth == 0;
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

int avk_json_stream_to_avro(const avk_json_plan_t *plan, const char *buf, size_t len,
                            const struct avk_json_fill *fill, avro_value_t *out,
                            const struct avk_json_opts *opts)
{
        /* jsonparse.c sends these to jansson's parser: so does the tree path. */
        if (avk_json_has_surrogate_escape(buf, len))
                return -1;
        struct stream st; /* a few KB: the frames are not initialised until used */
        st.plan = plan;
        st.fill = fill;
        st.out = out;
        st.depth = 0;
        st.done = 0;
        st.text = st.small;
        st.text_cap = sizeof(st.small);
        avk_json_walk_init(&st.walk, plan->schema, opts, NULL);
        avro_value_reset(out);
        int rc = -1;
        yajl_handle h = yajl_alloc(&callbacks, NULL, &st);
        if (h && yajl_parse(h, (const unsigned char *)buf, len) == yajl_status_ok &&
            yajl_complete_parse(h) == yajl_status_ok && st.done)
                rc = avk_json_check_relations(&st.walk, out);
        if (h)
                yajl_free(h);
        if (st.text != st.small)
                free(st.text);
        return rc;
}
