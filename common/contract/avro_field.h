/*
 * avk_avro_field: reading and setting the fields of an Avro record by name,
 * through the ["null", T] unions of the contract - what a service needs to
 * pull a few fields out of a decoded record, or fill a record to encode,
 * without a JSON round trip.
 */
#ifndef AVK_AVRO_FIELD_H
#define AVK_AVRO_FIELD_H

#include <stdint.h>

#include <avro.h>

/** @brief The field at a dotted path of a record ("harm.level"). @returns 0, or -1 when absent. */
int avk_avro_field(avro_value_t *rec, const char *path, avro_value_t *out);

/**
 * @brief A string or enum field as text (through a union). @returns NULL for
 * null or absent; the string is owned by the value.
 */
const char *avk_avro_text(avro_value_t *rec, const char *path);

/** @brief A long, int or boolean field (through a union). @returns 0, or -1 for null or absent. */
int avk_avro_long(avro_value_t *rec, const char *path, int64_t *out);

/** @brief Sets a string or enum field (a ["null","string"] union too: NULL sets null). */
int avk_avro_set_text(avro_value_t *rec, const char *name, const char *s);

/**
 * @brief Sets a long, int or boolean field; for a ["null", T] union, is_null
 * sets null. @returns 0, or -1 when absent or of another type.
 */
int avk_avro_set_long(avro_value_t *rec, const char *name, int64_t v, int is_null);

#endif
