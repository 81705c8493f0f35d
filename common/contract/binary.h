/*
 * avk_binary: a bounds check of untrusted Avro binary before avro-c sees it.
 *
 * avro-c trusts length prefixes: a 5-byte payload can make it allocate about
 * 2 GB. This walk reads the datum against the schema without allocating and
 * checks every length against the bytes actually left, every enum and union
 * index against the schema, every string for valid UTF-8, and that nothing
 * trails the datum.
 */
#ifndef AVK_BINARY_H
#define AVK_BINARY_H

#include <stddef.h>

#include <avro.h>

/**
 * @brief Checks that buf holds exactly one well-formed datum of schema.
 * @returns 0, or -1 with the field path, offset and reason in errstr.
 */
int avk_binary_check(avro_schema_t schema, const void *buf, size_t len, char *errstr,
                     size_t errstr_size);

#endif
