/* avk_record: see record.h. */
#include "producer/intake/record.h"

#include <string.h>

#include <zlib.h>

void avk_record_put_u(struct avk_record_buf *b, uint64_t v, int bytes)
{
        for (int i = 0; i < bytes; i++)
                b->p[b->len++] = (unsigned char)(v >> (8 * i));
}

void avk_record_put_bytes(struct avk_record_buf *b, const void *data, size_t len, int len_bytes)
{
        avk_record_put_u(b, len, len_bytes);
        if (len)
                memcpy(b->p + b->len, data, len);
        b->len += len;
}

void avk_record_seal(struct avk_record_buf *b)
{
        size_t body = b->len - AVK_RECORD_HEADER;
        uint32_t crc = (uint32_t)crc32(0L, b->p + AVK_RECORD_HEADER, (uInt)body);
        struct avk_record_buf h = {b->p, 0};
        avk_record_put_u(&h, body, 4);
        avk_record_put_u(&h, crc, 4);
}

uint64_t avk_record_get_u(struct avk_record_reader *r, int bytes)
{
        uint64_t v = 0;
        if (!r->ok || r->len - r->pos < (size_t)bytes) {
                r->ok = 0;
                return 0;
        }
        for (int i = 0; i < bytes; i++)
                v |= (uint64_t)r->p[r->pos++] << (8 * i);
        return v;
}

const unsigned char *avk_record_get_bytes(struct avk_record_reader *r, int len_bytes, size_t *len)
{
        *len = (size_t)avk_record_get_u(r, len_bytes);
        if (!r->ok || r->len - r->pos < *len) {
                r->ok = 0;
                return NULL;
        }
        const unsigned char *p = r->p + r->pos;
        r->pos += *len;
        return p;
}

size_t avk_record_length(const unsigned char *p)
{
        struct avk_record_reader h = {p, AVK_RECORD_HEADER, 0, 1};
        return (size_t)avk_record_get_u(&h, 4);
}

size_t avk_record_intact(const unsigned char *p, size_t avail, size_t max_body)
{
        if (avail < AVK_RECORD_HEADER)
                return 0;
        struct avk_record_reader h = {p, AVK_RECORD_HEADER, 0, 1};
        size_t body = (size_t)avk_record_get_u(&h, 4);
        uint32_t crc = (uint32_t)avk_record_get_u(&h, 4);
        if (body == 0 || body > max_body || avail - AVK_RECORD_HEADER < body ||
            crc != (uint32_t)crc32(0L, p + AVK_RECORD_HEADER, (uInt)body))
                return 0;
        return body;
}
