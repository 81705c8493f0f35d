/*
 * avk_avroprog: Avro binary read and written by a program compiled from the
 * schema, into and out of a flat array of slots.
 *
 * At load, a schema (or a writer/reader pair) is compiled into a list of
 * typed steps, one per field in the writer's order, each naming the reader
 * slot it fills. Decoding runs the steps once over the buffer: every length,
 * enum index and union branch is checked against the bytes left and the
 * schema, every string is checked for UTF-8 without NUL, in the same pass that
 * stores it. Nothing is allocated per record: strings and bytes are views into
 * the decoded buffer (or into the program, for defaults).
 *
 * Slots are laid out by the reader schema, in field order, depth first: one
 * slot per field that is not a record (and per union), none for a record
 * itself; the fields of a record inside a union follow the union's slot. A
 * slot is found once by its path ("reporter.party", "patient.personal_id";
 * fields of a union's record branch are named through the union's field).
 *
 * A writer/reader program resolves as the Avro specification says: fields by
 * name, reader fields the writer lacks from their defaults, writer fields the
 * reader lacks skipped (and still checked), int -> long -> float -> double,
 * string <-> bytes, enum symbols by name (unknown ones to the reader enum's
 * default), union branches by type and name. Arrays, maps and recursive
 * types are not compiled (avk_codec reads them); none of schemas/ has one.
 * Why and how: docs/schema-evolution.md.
 *
 * A program is immutable after creation and may be shared by threads.
 */
#ifndef AVK_AVROPROG_H
#define AVK_AVROPROG_H

#include <stddef.h>
#include <stdint.h>

#include "common/contract/schema.h"

/**
 * One value. Which member holds it follows from the reader schema at the
 * slot: boolean, int, long and enum (symbol index) in i; float and double in
 * d; string, bytes and fixed in str/len (not NUL-terminated); a union's
 * branch (reader branch index) in branch, with a primitive branch's value in
 * the same slot. Slots under a union branch not taken keep what they held.
 */
typedef struct avk_avroprog_slot {
        union {
                int64_t i;
                double d;
                const char *str;
        } v;
        uint32_t len;
        int32_t branch;
} avk_avroprog_slot_t;

typedef struct avk_avroprog avk_avroprog_t;

/**
 * @brief Compiles schema for decoding and encoding its own binary.
 * @returns the program, or NULL with the reason in errstr. schema is not
 * owned and need not outlive the program.
 */
avk_avroprog_t *avk_avroprog_new(const avk_schema_t *schema, char *errstr, size_t errstr_size);

/**
 * @brief Compiles the reading of writer's binary into reader's slots.
 * @returns the program, or NULL with the reason (a reader field without
 * default that the writer lacks, types that do not resolve) in errstr.
 * Neither schema is owned. The program decodes only; encode with a program
 * of the reader (avk_avroprog_new).
 */
avk_avroprog_t *avk_avroprog_resolve(const avk_schema_t *writer, const avk_schema_t *reader,
                                     char *errstr, size_t errstr_size);

void avk_avroprog_destroy(avk_avroprog_t *prog);

/** @brief How many slots a record of the program's reader schema takes. */
size_t avk_avroprog_slot_count(const avk_avroprog_t *prog);

/** @brief The slot at path ("reporter.party"), or -1 when there is none. */
int avk_avroprog_slot(const avk_avroprog_t *prog, const char *path);

/** @brief The path of slot i, owned by the program. */
const char *avk_avroprog_slot_path(const avk_avroprog_t *prog, size_t i);

/**
 * @brief Decodes one datum that must fill buf exactly into slots (of
 * avk_avroprog_slot_count() entries). String slots point into buf: keep buf
 * while they are read.
 * @returns 0, or -1 with the field path, byte offset and reason in errstr.
 */
int avk_avroprog_decode(const avk_avroprog_t *prog, const void *buf, size_t len,
                        avk_avroprog_slot_t *slots, char *errstr, size_t errstr_size);

/**
 * @brief Encodes slots as Avro binary into out[0..cap).
 * @returns the datum's size: written when at most cap, otherwise nothing
 * usable is in out and the caller retries with that much room; or -1 with the
 * field path and reason in errstr (an enum index, union branch, int or fixed
 * length out of range, a string that is not UTF-8 or holds NUL, a program
 * from avk_avroprog_resolve()).
 */
int64_t avk_avroprog_encode(const avk_avroprog_t *prog, const avk_avroprog_slot_t *slots, void *out,
                            size_t cap, char *errstr, size_t errstr_size);

/**
 * @brief Encodes slots as avk_avroprog_encode() does into *buf, a malloc'd
 * buffer of *cap bytes the caller owns, grown (and *buf, *cap updated) when
 * the datum needs more room.
 * @returns the datum's size, or -1 with the reason in errstr (out of memory,
 * or as avk_avroprog_encode()).
 */
int64_t avk_avroprog_encode_into(const avk_avroprog_t *prog, const avk_avroprog_slot_t *slots,
                                 unsigned char **buf, size_t *cap, char *errstr,
                                 size_t errstr_size);

/**
 * @brief avk_avroprog_encode_into() for a caller whose strings are all made
 * of text checked before - decoded by a program, loaded by jansson, or cut
 * at a character from either: they are not checked for UTF-8 and NUL again
 * (the router's DeviationRouted, whose reason is most of its bytes). Every
 * other check is made.
 */
int64_t avk_avroprog_encode_checked_text_into(const avk_avroprog_t *prog,
                                              const avk_avroprog_slot_t *slots, unsigned char **buf,
                                              size_t *cap, char *errstr, size_t errstr_size);

#endif
