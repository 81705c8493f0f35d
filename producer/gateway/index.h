/*
 * avk_index: which party reported each deviation and which party receives it
 * now - what the gateway needs to authorise a response (the receiver
 * acknowledges, answers or rejects; the reporter disputes).
 *
 * Fed from topic.routed: every DeviationRouted record carries the deviation
 * id, its hop, the reporter's party and the receiver's; the highest hop wins,
 * so a re-routing moves the deviation to its new receiver. A consumer thread
 * assigns every partition from the beginning itself, with no consumer group:
 * each gateway instance needs the whole index, not a share of it. Until that
 * consumer has read every partition to its end once, the index is loading
 * and an unknown deviation may simply not have been read yet.
 *
 * Memory per deviation is a 16-byte binary UUID, the hop and two party
 * numbers (common/contract/party.h) in an open-addressing table: 24 bytes, about 48
 * with the table's slack - a million deviations take about 48 MB.
 */
#ifndef AVK_INDEX_H
#define AVK_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/util/config.h"

typedef struct avk_index avk_index_t;

/** What the index knows of one deviation. */
struct avk_index_entry {
        int32_t hop;        /**< the routing the parties come from */
        int reporter_party; /**< party number of the reporter */
        int receiver_party; /**< party number of the current receiver */
};

/** @brief An empty index, for avk_index_destroy(). NULL when out of memory. */
avk_index_t *avk_index_new(void);

/**
 * @brief Starts the consumer thread that fills the index from cfg's
 * topic.routed (kafka.* and bootstrap.file as every client).
 * @returns 0, or -1 with the reason in errstr.
 */
int avk_index_start(avk_index_t *index, const avk_config_t *cfg, char *errstr, size_t errstr_size);

/** @brief Stops the consumer thread (when started) and frees the index. */
void avk_index_destroy(avk_index_t *index);

/**
 * @brief Records a routing of deviation_id (a UUID in text); it replaces what
 * is known when hop is not lower than the known hop.
 * @returns 0, or -1 when deviation_id is not a UUID, a party is out of range
 * or memory ran out.
 */
int avk_index_put(avk_index_t *index, const char *deviation_id, int32_t hop, int reporter_party,
                  int receiver_party);

/**
 * @brief Looks a deviation up by its id (a UUID in text, any case).
 * @returns 0 with *out filled, or -1 when the index does not know it.
 */
int avk_index_get(avk_index_t *index, const char *deviation_id, struct avk_index_entry *out);

/** @brief Deviations known. */
size_t avk_index_size(avk_index_t *index);

/** @brief 1 once the consumer has read every partition of topic.routed to its end once. */
int avk_index_loaded(avk_index_t *index);

#endif
