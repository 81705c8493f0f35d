/* avk_slotfield: see slotfield.h. */
#include "common/contract/slotfield.h"

#include <stdio.h>
#include <string.h>

/* The branch of a ["null", T] union that is not null, or -1. */
static int value_branch_of(avro_schema_t u)
{
        if (avro_schema_union_size(u) != 2)
                return -1;
        for (int b = 0; b < 2; b++) {
                if (is_avro_null(avro_schema_union_branch(u, b)))
                        return 1 - b;
        }
        return -1;
}

/* A named type used again after its definition ("type": "EscalationStep")
 * is a link in avro-c: the type it names. */
static avro_schema_t resolved(avro_schema_t t)
{
        while (t && is_avro_link(t))
                t = avro_schema_link_target(t);
        return t;
}

int avk_slotfield_find(avk_slotfield_t *f, const avk_avroprog_t *prog, const avk_schema_t *schema,
                       const char *path, char *errstr, size_t errstr_size)
{
        avro_schema_t t = avk_schema_avro(schema);
        char name[128];
        for (const char *at = path; t;) {
                size_t n = strcspn(at, ".");
                if (is_avro_union(t) && value_branch_of(t) >= 0) /* a record's field through it */
                        t = avro_schema_union_branch(t, value_branch_of(t));
                t = resolved(t);
                if (!is_avro_record(t) || n >= sizeof(name)) {
                        t = NULL;
                        break;
                }
                memcpy(name, at, n);
                name[n] = '\0';
                t = avro_schema_record_field_get(t, name);
                if (!at[n])
                        break;
                at += n + 1;
        }
        f->slot = t ? avk_avroprog_slot(prog, path) : -1;
        if (f->slot < 0) {
                snprintf(errstr, errstr_size, "%s: no field %s", avk_schema_fullname(schema), path);
                return -1;
        }
        f->value_branch = -1;
        if (is_avro_union(t)) {
                f->value_branch = value_branch_of(t);
                if (f->value_branch < 0) {
                        snprintf(errstr, errstr_size, "%s: %s is not a [\"null\", T] union",
                                 avk_schema_fullname(schema), path);
                        return -1;
                }
                t = avro_schema_union_branch(t, f->value_branch);
        }
        t = resolved(t);
        if (is_avro_record(t) || is_avro_union(t)) {
                snprintf(errstr, errstr_size, "%s: %s is not a single value",
                         avk_schema_fullname(schema), path);
                return -1;
        }
        f->type = t;
        return 0;
}

const char *avk_slotfield_text(const avk_slotfield_t *f, const avk_avroprog_slot_t *slots,
                               size_t *len)
{
        const avk_avroprog_slot_t *s = &slots[f->slot];
        if (f->value_branch >= 0 && s->branch != f->value_branch)
                return NULL;
        if (is_avro_enum(f->type)) {
                const char *symbol = avro_schema_enum_get(f->type, (int)s->v.i);
                *len = symbol ? strlen(symbol) : 0;
                return symbol;
        }
        if (!is_avro_string(f->type) && !is_avro_bytes(f->type))
                return NULL;
        *len = s->len;
        return s->v.str ? s->v.str : "";
}

char *avk_slotfield_copy(const avk_slotfield_t *f, const avk_avroprog_slot_t *slots, char *buf,
                         size_t size)
{
        size_t len;
        const char *text = avk_slotfield_text(f, slots, &len);
        if (!text || len >= size)
                return NULL;
        memcpy(buf, text, len);
        buf[len] = '\0';
        return buf;
}

int avk_slotfield_is_null(const avk_slotfield_t *f, const avk_avroprog_slot_t *slots)
{
        return f->value_branch >= 0 && slots[f->slot].branch != f->value_branch;
}

int64_t avk_slotfield_long(const avk_slotfield_t *f, const avk_avroprog_slot_t *slots)
{
        return avk_slotfield_is_null(f, slots) ? 0 : slots[f->slot].v.i;
}

int avk_slotfield_set_text(const avk_slotfield_t *f, avk_avroprog_slot_t *slots, const char *s)
{
        avk_avroprog_slot_t *slot = &slots[f->slot];
        if (!s) {
                if (f->value_branch < 0)
                        return -1;
                slot->branch = 1 - f->value_branch;
                return 0;
        }
        slot->branch = f->value_branch;
        if (is_avro_enum(f->type)) {
                int index = avro_schema_enum_get_by_name(f->type, s);
                slot->v.i = index;
                return index < 0 ? -1 : 0;
        }
        slot->v.str = s;
        slot->len = (uint32_t)strlen(s);
        return 0;
}

void avk_slotfield_set_long(const avk_slotfield_t *f, avk_avroprog_slot_t *slots, int64_t v)
{
        slots[f->slot].branch = f->value_branch;
        slots[f->slot].v.i = v;
}
