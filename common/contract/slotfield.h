/*
 * avk_slotfield: one field of a record decoded into avk_avroprog slots
 * (avk_codec_decode_slots(), common/contract/avroprog.h), found once by its
 * path: read as text (a string's bytes, an enum's symbol) or as a number,
 * and set for encoding, through the ["null", T] unions of the contract.
 * What avk_avro_field does for avro-c values, without a look-up by name
 * per record; a service finds its fields when it starts.
 */
#ifndef AVK_SLOTFIELD_H
#define AVK_SLOTFIELD_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>

#include "common/contract/avroprog.h"
#include "common/contract/schema.h"

/** A field of a program's slots: plain data, valid while its schema is. */
typedef struct avk_slotfield {
        int slot;           /**< its slot in the program's slots */
        int value_branch;   /**< of a ["null", T] union, the branch of T; -1: not a union */
        avro_schema_t type; /**< T: a string, bytes, enum, boolean, int or long; the schema's */
} avk_slotfield_t;

/**
 * @brief Finds the field at path ("harm.level") of schema in prog, a program
 * compiled from schema (avk_codec_program()).
 * @returns 0, or -1 with the reason in errstr: no such field, a record, or
 * a union other than ["null", T].
 */
int avk_slotfield_find(avk_slotfield_t *f, const avk_avroprog_t *prog, const avk_schema_t *schema,
                       const char *path, char *errstr, size_t errstr_size);

/**
 * @brief The field's text in slots: a string's bytes (not NUL-terminated,
 * pointing where the slot does) or an enum's symbol (NUL-terminated, the
 * schema's), its length in *len. @returns NULL when the field is null or
 * holds no text.
 */
const char *avk_slotfield_text(const avk_slotfield_t *f, const avk_avroprog_slot_t *slots,
                               size_t *len);

/**
 * @brief Copies the field's text into buf of size, NUL-terminated.
 * @returns buf, or NULL when the field is null, holds no text, or its text
 * does not fit.
 */
char *avk_slotfield_copy(const avk_slotfield_t *f, const avk_avroprog_slot_t *slots, char *buf,
                         size_t size);

/** @brief 1 when the field, a ["null", T] union, holds null; else 0. */
int avk_slotfield_is_null(const avk_slotfield_t *f, const avk_avroprog_slot_t *slots);

/** @brief A boolean, int or long field's value, an enum's symbol index; 0 when null. */
int64_t avk_slotfield_long(const avk_slotfield_t *f, const avk_avroprog_slot_t *slots);

/**
 * @brief Sets a string or enum field (an enum by its symbol): s is not
 * copied and must live until the slots are encoded; NULL sets a union null.
 * @returns 0, or -1 for a symbol the enum lacks or NULL outside a union.
 */
int avk_slotfield_set_text(const avk_slotfield_t *f, avk_avroprog_slot_t *slots, const char *s);

/** @brief Sets a boolean, int or long field, or an enum by its symbol's index (in a union, its
 * value branch). */
void avk_slotfield_set_long(const avk_slotfield_t *f, avk_avroprog_slot_t *slots, int64_t v);

#endif
