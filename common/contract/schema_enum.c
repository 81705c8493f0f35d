/*
 * avk_schema_enum: see schema_enum.h.
 *
 * The compiled-in table holds every enum of schemas/ *.avsc once, by full
 * name (a contract defines an enum the same in every schema that has it;
 * test_schema_enum checks that), copied out of the schemas it was read from.
 */
#include "common/contract/schema_enum.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

struct builtin {
        struct avk_schema_enum *enums; /* each with its strings in one block */
        size_t cnt;
};

/* Built once by build_builtin() and never changed or freed: the process owns it. */
static struct builtin builtin;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static const struct avk_schema_enum *find(const char *name)
{
        for (size_t i = 0; i < builtin.cnt; i++) {
                const char *full = builtin.enums[i].name;
                const char *dot = strrchr(full, '.');

                if (strcmp(full, name) == 0 || (dot && strcmp(dot + 1, name) == 0))
                        return &builtin.enums[i];
        }
        return NULL;
}

/*
 * Adds enum a, unless one of its full name is known: one block holds its
 * symbol pointers, then its full name and symbols, so that the table needs
 * none of the schemas it was read from.
 */
static int add_enum(avro_schema_t a)
{
        const char *ns = avro_schema_namespace(a) ? avro_schema_namespace(a) : "";
        const char *name = avro_schema_name(a);
        size_t cnt = (size_t)avro_schema_enum_number_of_symbols(a);
        size_t full_len = strlen(ns) + (*ns ? 1 : 0) + strlen(name);
        size_t size = cnt * sizeof(char *) + full_len + 1;
        struct avk_schema_enum *grown;
        const char **symbols;
        char *text, *full;

        for (size_t i = 0; i < cnt; i++)
                size += strlen(avro_schema_enum_get(a, (int)i)) + 1;
        symbols = malloc(size);
        if (symbols == NULL)
                return -1;
        full = (char *)(symbols + cnt);
        snprintf(full, full_len + 1, "%s%s%s", ns, *ns ? "." : "", name);
        if (find(full) != NULL) {
                free(symbols);
                return 0;
        }
        grown = realloc(builtin.enums, (builtin.cnt + 1) * sizeof(*grown));
        if (grown == NULL) {
                free(symbols);
                return -1;
        }
        builtin.enums = grown;
        text = full + full_len + 1;
        for (size_t i = 0; i < cnt; i++) {
                size_t len = strlen(avro_schema_enum_get(a, (int)i)) + 1;

                memcpy(text, avro_schema_enum_get(a, (int)i), len);
                symbols[i] = text;
                text += len;
        }
        builtin.enums[builtin.cnt++] = (struct avk_schema_enum){full, symbols, cnt};
        return 0;
}

/* Adds every enum that a reaches, each once. */
static int collect(avro_schema_t a, int depth)
{
        if (depth > 64 || is_avro_link(a))
                return 0;
        if (is_avro_enum(a))
                return add_enum(a);
        if (is_avro_record(a)) {
                for (size_t i = 0; i < avro_schema_record_size(a); i++) {
                        if (collect(avro_schema_record_field_get_by_index(a, (int)i), depth + 1))
                                return -1;
                }
        } else if (is_avro_union(a)) {
                for (size_t i = 0; i < avro_schema_union_size(a); i++) {
                        if (collect(avro_schema_union_branch(a, (int)i), depth + 1))
                                return -1;
                }
        } else if (is_avro_array(a)) {
                return collect(avro_schema_array_items(a), depth + 1);
        } else if (is_avro_map(a)) {
                return collect(avro_schema_map_values(a), depth + 1);
        }
        return 0;
}

static void build_builtin(void)
{
        char errstr[256];

        for (size_t i = 0; i < avk_schema_source_cnt; i++) {
                avk_schema_t *s =
                    avk_schema_new(avk_schema_sources[i].json, errstr, sizeof(errstr));
                int rc = s ? collect(avk_schema_avro(s), 0) : -1;

                avk_schema_destroy(s);
                if (rc != 0)
                        return;
        }
}

const struct avk_schema_enum *avk_schema_enum(const char *name)
{
        pthread_once(&builtin_once, build_builtin);
        return find(name);
}

int avk_schema_enum_index(const struct avk_schema_enum *e, const char *symbol)
{
        for (size_t i = 0; symbol && i < e->cnt; i++) {
                if (strcmp(e->symbols[i], symbol) == 0)
                        return (int)i;
        }
        return -1;
}

const char *avk_schema_enum_name(const avk_schema_t *schema, const char *name, char *buf,
                                 size_t size)
{
        const char *full = avk_schema_fullname(schema);
        const char *dot = strrchr(full, '.');

        if (strchr(name, '.') != NULL || dot == NULL)
                snprintf(buf, size, "%s", name);
        else
                snprintf(buf, size, "%.*s.%s", (int)(dot - full), full, name);
        return buf;
}

const json_t *avk_schema_enum_symbols(const avk_schema_t *schema, const char *name)
{
        char fullname[256];
        const json_t *def = avk_schema_named(
            schema, avk_schema_enum_name(schema, name, fullname, sizeof(fullname)));
        const char *type = json_string_value(json_object_get(def, "type"));

        if (type == NULL || strcmp(type, "enum") != 0)
                return NULL;
        return json_object_get(def, "symbols");
}
