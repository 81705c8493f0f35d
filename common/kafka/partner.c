/* avk_partner: see partner.h. */
#include "common/kafka/partner.h"

void avk_partner_read(struct avk_partner_part *part)
{
        part->at_end = 0;
}

void avk_partner_end(struct avk_partner_part *part)
{
        part->eof_seq++;
        part->at_end = 1;
}

int avk_partner_gone(const struct avk_partner_part *part, uint64_t eof_seq_at_arrival,
                     int64_t waited_ms, int64_t wait_ms)
{
        return (part->eof_seq > eof_seq_at_arrival || part->at_end) && waited_ms >= wait_ms;
}

void avk_partner_forget(struct avk_partner_part *parts, const int32_t *which, int cnt)
{
        for (int i = 0; i < cnt; i++)
                parts[which[i]] = (struct avk_partner_part){0};
}
