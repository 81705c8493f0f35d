/*
 * avk_record: the checksummed records spool.log and drain.state are made of
 * (producer/intake/spool.h, drainstate.h). A record, little-endian: u32 body
 * length, u32 CRC-32 of the body, the body. A writer fills a buffer after
 * the header and seals it; a reader checks a record is whole and intact,
 * then reads its fields with bounds checks.
 */
#ifndef AVK_RECORD_H
#define AVK_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define AVK_RECORD_HEADER 8 /**< u32 body length, u32 CRC-32 */

/** A record being written: p has room for it, len is what is written so far. */
struct avk_record_buf {
        unsigned char *p;
        size_t len;
};

/** @brief Appends the low bytes bytes of v, little-endian. */
void avk_record_put_u(struct avk_record_buf *b, uint64_t v, int bytes);

/** @brief Appends len as a len_bytes-byte length, then data[0..len). */
void avk_record_put_bytes(struct avk_record_buf *b, const void *data, size_t len, int len_bytes);

/** @brief Writes the header of the record whose body is b->p[AVK_RECORD_HEADER..len). */
void avk_record_seal(struct avk_record_buf *b);

/** Reading a body with bounds checks: a failed read leaves ok at 0. */
struct avk_record_reader {
        const unsigned char *p;
        size_t len, pos;
        int ok;
};

/** @brief Reads a bytes-byte little-endian number; 0 and ok 0 past the end. */
uint64_t avk_record_get_u(struct avk_record_reader *r, int bytes);

/** @brief Reads a len_bytes-byte length and that many bytes; NULL and ok 0 past the end. */
const unsigned char *avk_record_get_bytes(struct avk_record_reader *r, int len_bytes, size_t *len);

/** @brief The body length the record header at p declares. */
size_t avk_record_length(const unsigned char *p);

/**
 * @brief The body length of the record at p[0..avail) when it is whole, at
 * most max_body long and its checksum matches; 0 otherwise.
 */
size_t avk_record_intact(const unsigned char *p, size_t avail, size_t max_body);

#endif
