/*
 * avk_round: the records the service kernel takes from its consumer in one
 * round of its loop, handed back partition number by partition number
 * (docs/architecture.md, "The service kernel").
 *
 * A service writes each input's outputs to the input's partition number, and
 * librdkafka sends one partition's queued records per produce request. The
 * consumer hands records over as fetched: a batch of one partition, then one
 * of the next (the embedded broker returns one batch a partition per fetch),
 * so records taken in that order leave Kafka one produce request per fetched
 * batch. A round taken from several fetches and handled in partition order
 * leaves it one request per partition and round.
 *
 * The order is a stable counting sort on the partition number: the records
 * of one partition number, of every topic, keep the order they were taken in
 * (a deviation's records of all its topics share a partition number), and
 * records without a partition (the consumer's own errors) come first.
 */
#ifndef AVK_ROUND_H
#define AVK_ROUND_H

#include <librdkafka/rdkafka.h>

typedef struct avk_round avk_round_t;

/** @brief A round of at most max records of partitions below partition_cnt (a record of a
 * higher one is ordered with the errors). NULL when out of memory. */
avk_round_t *avk_round_new(int max, int partition_cnt);

/** @brief Frees the round and destroys the records it still holds. */
void avk_round_destroy(avk_round_t *round);

/** @brief Whether the round holds its max records. */
int avk_round_full(const avk_round_t *round);

/** @brief Adds m, taken from the consumer, to a round that is not full; the round owns it. */
void avk_round_add(avk_round_t *round, rd_kafka_message_t *m);

/**
 * @brief Empties the round: *records is set to its records in partition
 * order, owned by the caller now (each to rd_kafka_message_destroy()); the
 * array itself is the round's, valid until the next avk_round_add().
 * @returns how many.
 */
int avk_round_take(avk_round_t *round, rd_kafka_message_t ***records);

#endif
