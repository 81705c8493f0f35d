/*
 * avk_schema_enum: the enums of the schemas - their symbols in the schema's
 * order and the index of a symbol - taken from the schemas themselves, so
 * that no module keeps a copy of a contract's symbols that could drift from
 * it. A module that stores an enum value as a small number stores its index
 * here.
 */
#ifndef AVK_SCHEMA_ENUM_H
#define AVK_SCHEMA_ENUM_H

#include <stddef.h>

#include <jansson.h>

#include "common/contract/schema.h"

/** An enum of the compiled-in schemas. */
struct avk_schema_enum {
        const char *name;           /**< full name: "se.vardsamverkan.avvik.Category" */
        const char *const *symbols; /**< in the schema's order */
        size_t cnt;
};

/**
 * @brief The enum of the compiled-in schemas (schemas/ *.avsc) with the given
 * full or short name ("Category").
 *
 * The table is built from the compiled-in schemas on the first call (safe
 * from any thread) and kept, read-only, until the process exits.
 *
 * @returns the enum, or NULL when no compiled-in schema defines one of that
 * name (or memory ran out on the first call).
 */
const struct avk_schema_enum *avk_schema_enum(const char *name);

/** @brief The index of symbol in e; -1 when it is not one of e's, or NULL. */
int avk_schema_enum_index(const struct avk_schema_enum *e, const char *symbol);

/**
 * @brief The full name that name stands for in schema: name itself when it
 * has a dot, else name in the namespace of schema's top-level type
 * ("se.vardsamverkan.avvik.Category" for "Category"). @returns buf.
 */
const char *avk_schema_enum_name(const avk_schema_t *schema, const char *name, char *buf,
                                 size_t size);

/**
 * @brief The symbols of the enum name (as avk_schema_enum_name() reads it) of schema.
 * @returns a JSON array of strings owned by schema, or NULL when schema
 * defines no such enum.
 */
const json_t *avk_schema_enum_symbols(const avk_schema_t *schema, const char *name);

#endif
