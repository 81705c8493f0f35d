/*
 * avk_codec: Avro values <-> Kafka message payloads, in either framing of
 * docs/architecture.md, "The contract":
 *  - Confluent wire format: 0x00, 4-byte big-endian schema id, Avro binary;
 *    used when a Schema Registry is configured (subject "<topic>-value").
 *  - Avro single-object encoding: 0xC3 0x01, 8-byte little-endian CRC-64-AVRO
 *    fingerprint of the schema's canonical form, Avro binary; used otherwise.
 * Readers accept both. A writer schema that differs from the reader's (an
 * older or newer version) is projected onto the reader's by field name, with
 * the reader's defaults for missing fields and enum symbols resolved by name
 * (unknown ones to the enum's default) - which avro-c's resolver does not do.
 *
 * A codec holds reusable buffers, readers and values: one per thread. The
 * catalog and registry it is given may be shared.
 */
#ifndef AVK_CODEC_H
#define AVK_CODEC_H

#include <stddef.h>

#include <avro.h>

#include "common/contract/avroprog.h"
#include "common/contract/registry.h"
#include "common/contract/schema.h"

typedef struct avk_codec avk_codec_t;

/**
 * What encode, decode and reframe return when they need the Schema Registry
 * and it gave no final answer (see registry.h): retry later; the record is
 * not bad.
 */
#define AVK_CODEC_UNAVAILABLE AVK_REGISTRY_UNAVAILABLE

/**
 * @brief Creates a codec. registry NULL means single-object encoding, and
 * Confluent-framed input is then an error. Neither argument is owned; both
 * must outlive the codec.
 */
avk_codec_t *avk_codec_new(const avk_catalog_t *catalog, avk_registry_t *registry);

void avk_codec_destroy(avk_codec_t *codec);

/**
 * @brief Frames and encodes value (of schema) for topic.
 * @param out receives the payload, owned by the codec and valid until its next call.
 * @returns 0, or with the reason in errstr AVK_CODEC_UNAVAILABLE (the
 * registry could not be asked) or -1.
 */
int avk_codec_encode(avk_codec_t *codec, const char *topic, const avk_schema_t *schema,
                     avro_value_t *value, const void **out, size_t *out_len, char *errstr,
                     size_t errstr_size);

/**
 * @brief Encodes value in single-object framing whatever the codec's
 * registry: what the intake keeps in its spool while the registry cannot be
 * reached (avk_codec_reframe() frames it for Kafka later). Same ownership
 * and errors as avk_codec_encode(), never AVK_CODEC_UNAVAILABLE.
 */
int avk_codec_encode_local(avk_codec_t *codec, const avk_schema_t *schema, avro_value_t *value,
                           const void **out, size_t *out_len, char *errstr, size_t errstr_size);

/**
 * @brief Frames body, the Avro binary of a record of schema, for topic as
 * avk_codec_encode() would (local: as avk_codec_encode_local() would). Same
 * ownership of out and the same errors.
 */
int avk_codec_frame(avk_codec_t *codec, const char *topic, const avk_schema_t *schema, int local,
                    const void *body, size_t body_len, const void **out, size_t *out_len,
                    char *errstr, size_t errstr_size);

/**
 * @brief The payload in as it goes to topic: a single-object-framed payload
 * gets the Confluent framing when the codec has a registry (the Avro body is
 * the same bytes); anything else is in itself.
 * @param out in, or a payload owned by the codec and valid until its next call.
 * @returns 0, AVK_CODEC_UNAVAILABLE, or -1 with the reason in errstr.
 */
int avk_codec_reframe(avk_codec_t *codec, const char *topic, const void *in, size_t in_len,
                      const void **out, size_t *out_len, char *errstr, size_t errstr_size);

/**
 * @brief The Avro body of a framed payload: the bytes after its Confluent or
 * single-object header, the same whichever framing carries them.
 * @returns a pointer into buf with its length in *body_len, or NULL when buf
 * is not framed.
 */
const void *avk_codec_body(const void *buf, size_t len, size_t *body_len);

/**
 * @brief Decodes a framed payload into out, a value of reader's class.
 * @returns 0, AVK_CODEC_UNAVAILABLE when the registry could not be asked
 * for the writer's schema, or -1 with the reason in errstr: unknown framing,
 * truncated header, unknown schema id or fingerprint, another record type,
 * or where and why the Avro binary is malformed.
 */
int avk_codec_decode(avk_codec_t *codec, const void *buf, size_t len, const avk_schema_t *reader,
                     avro_value_t *out, char *errstr, size_t errstr_size);

/**
 * @brief The compiled program of schema (common/contract/avroprog.h), made at
 * first use: where avk_codec_decode_slots() puts each field
 * (avk_avroprog_slot()). @returns the program, owned by the codec, or NULL
 * when schema is not compiled (arrays, maps, recursion) or out of memory.
 */
const avk_avroprog_t *avk_codec_program(avk_codec_t *codec, const avk_schema_t *schema);

/**
 * @brief Decodes a framed payload into slots laid out by reader's program
 * (avk_codec_program()), whichever version of reader wrote it; the program
 * checks bounds, indexes and UTF-8 in the pass that reads, and no avro-c
 * value is made (but for a writer/reader pair that is not compiled).
 * @param slots receives the codec's slots, valid until its next call; their
 * strings point into buf (or into the codec), not NUL-terminated.
 * @returns 0, AVK_CODEC_UNAVAILABLE, or -1 with the reason in errstr, as
 * avk_codec_decode().
 */
int avk_codec_decode_slots(avk_codec_t *codec, const void *buf, size_t len,
                           const avk_schema_t *reader, const avk_avroprog_slot_t **slots,
                           char *errstr, size_t errstr_size);

#endif
