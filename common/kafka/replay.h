/*
 * avk_replay: reads partitions of a topic from the beginning to their end as
 * of the call, the way a consumer-group service rebuilds its state from its
 * own outputs (or a changelog) when partitions are assigned to it.
 */
#ifndef AVK_REPLAY_H
#define AVK_REPLAY_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

typedef void(avk_replay_cb)(void *opaque, const rd_kafka_message_t *m);

/**
 * @brief Calls cb for every record of the given partitions of topic, from the
 * beginning to the high watermark each had when the call began, then leaves
 * reader unassigned. reader is a consumer used for nothing else (its group is
 * never joined: it assigns partitions itself).
 * @returns 0, or -1 when a watermark could not be read or the records did not
 * arrive within timeout_ms (the caller drops what it built and retries).
 */
int avk_replay_read(rd_kafka_t *reader, const char *topic, const int32_t *parts, int cnt,
                    int timeout_ms, avk_replay_cb *cb, void *opaque);

/**
 * @brief The partitions of parts not owned (owned[p] 0) and below max, each
 * once: those whose state a rebuild must read. Their numbers go to nums, and
 * fresh[p] is set to 1 for each (fresh, zeroed by the caller, and owned have
 * max entries).
 * @returns how many.
 */
int avk_replay_fresh(const rd_kafka_topic_partition_list_t *parts, const int *owned, int max,
                     int32_t *nums, int *fresh);

#endif
