/*
 * avk_json_stream: JSON text to Avro binary in one pass, for the intake's
 * hot path.
 *
 * avk_json_parse() + avk_json_to_avro() build a jansson tree and then walk
 * it: about half the cost of filing a document is the tree's hash tables
 * and allocations. Here yajl's events drive a walk of the schema instead:
 * each key is matched to its field, each value goes through the same rules
 * as the tree walk (common/contract/json_int.h) straight into its slot of
 * the schema's compiled program (common/contract/avroprog.h), and at the
 * end of an object the fields it lacked take their defaults through the
 * same rules; the program then writes the Avro binary. No avro-c value and
 * no allocation per field: the working memory is the caller's, reused.
 *
 * simdjson's On-Demand parser reads the text (common/contract/jsonsimd.h);
 * yajl, through the same callbacks, stays as the reference the tests and
 * the fuzzer compare it with.
 *
 * The single pass only ever says yes: on any error, and on what it does not
 * handle (arrays, maps, unknown fields, with yajl surrogate escapes, objects of more
 * than 256 fields; for avk_json_stream_encode() a schema the program does
 * not compile), it gives up, and the caller takes the tree path, which
 * gives the verdict and every error. So the documents accepted, the Avro
 * bytes and the error messages are those of the tree path (tests/unit/
 * test_json_stream.c checks it on a large corpus).
 */
#ifndef AVK_JSONSTREAM_H
#define AVK_JSONSTREAM_H

#include <stddef.h>

#include <avro.h>

#include "common/contract/avroprog.h"
#include "common/contract/json.h"
#include "common/contract/schema.h"

/** Which parser reads the text: the same callbacks fill the slots, the verdicts are the same. */
enum avk_json_reader {
        AVK_JSON_READER_SIMDJSON, /**< simdjson's On-Demand API: the services' */
        AVK_JSON_READER_YAJL,     /**< yajl's events: the reference in the differential tests */
};

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

/** @brief The plan's compiled program (slots by path), or NULL when its schema has none. */
const avk_avroprog_t *avk_json_plan_prog(const avk_json_plan_t *plan);

/**
 * One thread's working memory for the single pass, reused from document to
 * document: start it zeroed, free it with avk_json_stream_buf_free().
 */
struct avk_json_stream_buf {
        avk_avroprog_slot_t
            *slots;          /**< the last document's values, by slot of the plan's program */
        unsigned char *avro; /**< the last document's Avro binary (no framing) */
        size_t avro_len;
        size_t slots_cap, avro_cap; /* bytes */
        char *text;                 /* the strings the slots point to */
        size_t text_cap;
        struct avk_jsonsimd *simd; /* simdjson's parser, made at first use */
};

void avk_json_stream_buf_free(struct avk_json_stream_buf *b);

/**
 * @brief Encodes the one JSON document in buf[0..len), read by reader, as Avro binary of the
 * plan's schema into out->avro, as avk_json_parse() and avk_json_to_avro()
 * with opts would accept and convert it - the document with fill->field
 * added when it lacks it (fill may be NULL). out->slots hold its values
 * (strings point into out or the schema) until out's next use.
 * @returns 0, or -1 when it did not (an error, or a document the single pass
 * does not handle): the tree path then gives the verdict and the errors.
 */
int avk_json_stream_encode(const avk_json_plan_t *plan, enum avk_json_reader reader,
                           const char *buf, size_t len, const struct avk_json_fill *fill,
                           const struct avk_json_opts *opts, struct avk_json_stream_buf *out);

/**
 * @brief Fills out (a value of the plan's schema, reset first) from the one
 * JSON document in buf[0..len), as avk_json_parse() and avk_json_to_avro()
 * with opts would - the document with fill->field added when it lacks it
 * (fill may be NULL): avk_json_stream_encode() read back through avro-c,
 * for the tests and the benchmark that compare the two paths; for a schema
 * without a program (arrays, maps, a record inside itself) the pass fills
 * out itself.
 * @returns 0 when out holds the document; -1 when it does not (an error, or
 * a document the single pass does not handle): the tree path then gives the
 * verdict and the errors.
 */
int avk_json_stream_to_avro(const avk_json_plan_t *plan, enum avk_json_reader reader,
                            const char *buf, size_t len, const struct avk_json_fill *fill,
                            avro_value_t *out, const struct avk_json_opts *opts);

#endif
