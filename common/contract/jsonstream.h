/*
 * avk_json_stream: JSON text to an Avro value in one pass, for the intake's
 * hot path.
 *
 * avk_json_parse() + avk_json_to_avro() build a jansson tree and then walk
 * it: about half the cost of filing a document is the tree's hash tables
 * and allocations. Here yajl's events drive a walk of the schema instead:
 * each key is matched to its field, each value goes straight into the Avro
 * value through the same rules as the tree walk (common/contract/json_int.h), and at
 * the end of an object the fields it lacked take their defaults through the
 * tree walk itself.
 *
 * The single pass only ever says yes: on any error, and on what it does not
 * handle (arrays, maps, unknown fields, surrogate escapes, objects of more
 * than 256 fields), it gives up, and the caller takes the tree path, which
 * gives the verdict and every error. So the documents accepted, the Avro
 * bytes and the error messages are those of the tree path (tests/unit/
 * test_json_stream.c checks it on a large corpus).
 */
#ifndef AVK_JSONSTREAM_H
#define AVK_JSONSTREAM_H

#include <stddef.h>

#include <avro.h>

#include "common/contract/json.h"
#include "common/contract/schema.h"

/** What the single pass knows of a schema, worked out once; read-only, shareable by threads. */
typedef struct avk_json_plan avk_json_plan_t;

/** A top-level string field the caller supplies when a document lacks it (an id). */
struct avk_json_fill {
        const char *field;
        /** Writes the field's value (NUL-terminated) into buf; called only when it is absent. */
        void (*value)(char *buf, size_t size);
};

/**
 * @brief Works out the plan for schema, which must outlive it.
 * @returns the plan, or NULL with the reason in errstr.
 */
avk_json_plan_t *avk_json_plan_new(const avk_schema_t *schema, char *errstr, size_t errstr_size);

void avk_json_plan_destroy(avk_json_plan_t *plan);

/**
 * @brief Fills out (a value of the plan's schema, reset first) from the one
 * JSON document in buf[0..len), as avk_json_parse() and avk_json_to_avro()
 * with opts would - the document with fill->field added when it lacks it
 * (fill may be NULL).
 * @returns 0 when out holds the document; -1 when it does not (an error, or
 * a document the single pass does not handle): the tree path then gives the
 * verdict and the errors.
 */
int avk_json_stream_to_avro(const avk_json_plan_t *plan, const char *buf, size_t len,
                            const struct avk_json_fill *fill, avro_value_t *out,
                            const struct avk_json_opts *opts);

#endif
