/*
 * avk_partner: whether the partner record a waiting record needs - the
 * deviation of a routed record or of a status change, read from
 * topic.reported, which is co-partitioned with it - may still come
 * (docs/notify.md, "Offsets, rebalances, the deviation map"). The service that wrote the
 * waiting record did so only after its partner was in Kafka, so a partner
 * still missing wait_ms after the waiting record arrived, with the partner
 * topic's partition read to its end since (or still at its end), is not
 * coming. The notifier and the analysis forwarder keep one avk_partner_part
 * per partition of the partner topic, on their one thread.
 */
#ifndef AVK_PARTNER_H
#define AVK_PARTNER_H

#include <stdint.h>

/** What is known of one partition of the partner topic; zeroed: nothing read yet. */
struct avk_partner_part {
        uint64_t eof_seq; /**< times the partition was read to its end */
        int at_end;       /**< nothing read from it since its last end */
};

/** @brief A record of the partition was read: it is no longer known to be at its end. */
void avk_partner_read(struct avk_partner_part *part);

/** @brief The partition was read to its end. */
void avk_partner_end(struct avk_partner_part *part);

/** @brief Forgets partitions which[0..cnt) of parts (a failed rebuild, a revoke). */
void avk_partner_forget(struct avk_partner_part *parts, const int32_t *which, int cnt);

/**
 * @brief Whether the partner of a record that arrived waited_ms ago, when
 * part->eof_seq was eof_seq_at_arrival, is not coming: it has waited wait_ms
 * and the partition was read to its end since, or is at its end.
 * @returns 1 or 0.
 */
int avk_partner_gone(const struct avk_partner_part *part, uint64_t eof_seq_at_arrival,
                     int64_t waited_ms, int64_t wait_ms);

#endif
