/*
 * codec_fixture: the steps tests of avk_codec take again and again - load a
 * JSON document, make a registry client or a codec, fill an Avro value from
 * JSON, encode it into a framed message the test owns, decode a message back
 * to JSON. A step that is not what the test is about fails the running Check
 * test with the reason; decoding, which often is, also comes in a form that
 * hands the outcome back.
 */
#ifndef AVK_TEST_CODEC_FIXTURE_H
#define AVK_TEST_CODEC_FIXTURE_H

#include <stddef.h>

#include <avro.h>
#include <jansson.h>

#include "common/contract/codec.h"
#include "common/contract/json.h"
#include "common/contract/registry.h"
#include "common/contract/schema.h"

/** A framed message, copied out of the codec's buffer: the test frees bytes. */
struct codec_message {
        unsigned char *bytes;
        size_t len;
};

/**
 * A writer and a reader as two programs hold them: each codec on its own
 * catalog and, in Confluent framing, with its own registry client - so the
 * reader learns the writer's schema by id, from the registry.
 */
struct codec_pair {
        avk_registry_t *writer_registry, *reader_registry; /**< NULL in single-object framing */
        avk_codec_t *writer, *reader;
};

/** @brief The JSON document at path; a parse error fails the test. */
json_t *codec_fixture_load_json(const char *path);

/** @brief A registry client for url (2 s timeout), for avk_registry_destroy(). */
avk_registry_t *codec_fixture_registry(const char *url);

/** @brief A codec on catalog; registry NULL means single-object framing. */
avk_codec_t *codec_fixture_codec(const avk_catalog_t *catalog, avk_registry_t *registry);

/**
 * @brief A writer on writer_catalog and a reader on reader_catalog, each with
 * a registry client of its own for registry_url (NULL: single-object framing).
 */
struct codec_pair codec_fixture_pair(const avk_catalog_t *writer_catalog,
                                     const avk_catalog_t *reader_catalog, const char *registry_url);

void codec_fixture_pair_destroy(struct codec_pair *pair);

/**
 * @brief A new value of schema's class in out, filled from in under opts (NULL:
 * none of the intake rules), for avro_value_decref(). Field errors fail the test.
 */
void codec_fixture_value(const avk_schema_t *schema, const json_t *in,
                         const struct avk_json_opts *opts, avro_value_t *out);

/** @brief in, as a value of schema, encoded by codec for topic. */
struct codec_message codec_fixture_encode(avk_codec_t *codec, const char *topic,
                                          const avk_schema_t *schema, const json_t *in);

/**
 * @brief Decodes buf into a value of reader's class.
 * @returns 0 with, when json is not NULL, the value's JSON in *json (a new
 * reference); or -1 with the codec's reason in errstr.
 */
int codec_fixture_decode(avk_codec_t *codec, const void *buf, size_t len,
                         const avk_schema_t *reader, json_t **json, char *errstr,
                         size_t errstr_size);

/** @brief The JSON of buf, decoded as a reader; failing to decode fails the test. */
json_t *codec_fixture_decode_json(avk_codec_t *codec, const void *buf, size_t len,
                                  const avk_schema_t *reader);

/** @brief Fails the test unless actual equals expected, printing both; what names the case. */
void assert_json_equal(const json_t *expected, const json_t *actual, const char *what);

#endif
