/*
 * avk_dispute: how long a reporter has to dispute an answer, per deadline
 * rule - the "dispute_window" of each rule in the deadline policy
 * (deadlines.file, docs/deadlines.md). The tracker owns the policy and
 * closes a deviation when its window ends; the gateway reads only the
 * windows, to refuse a late dispute at once and to say in a look-up until
 * when one is possible. The rule a deviation falls under comes from the
 * tracker's changelog (deadline_rule on topic.status).
 */
#ifndef AVK_DISPUTE_H
#define AVK_DISPUTE_H

#include <stddef.h>
#include <stdint.h>

typedef struct avk_dispute avk_dispute_t;

/**
 * @brief Reads the dispute windows of the policy at path.
 * @returns the windows (avk_dispute_destroy()), or NULL with the reason in
 * errstr naming the rule or key at fault.
 */
avk_dispute_t *avk_dispute_load(const char *path, char *errstr, size_t errstr_size);

/** @brief Frees the windows. NULL is a no-op. */
void avk_dispute_destroy(avk_dispute_t *dispute);

/**
 * @brief The end of the dispute window of an answer given at answered_ms
 * under rule_id.
 * @returns milliseconds since the epoch, or -1 when the rule is unknown.
 */
int64_t avk_dispute_until(const avk_dispute_t *dispute, const char *rule_id, int64_t answered_ms);

#endif
