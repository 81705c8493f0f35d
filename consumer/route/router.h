/*
 * avk_router: the router service - reads topic.reported and topic.response
 * in a consumer group and, per deviation, decides the receiver with the
 * agreement's rules (consumer/route/rules.h) and the party directory
 * (common/contract/directory.h), then writes
 *   - a DeviationRouted to topic.routed (key: deviation id; event_id a UUIDv5
 *     of the deviation id and the hop, so a replay writes the same id), and
 *   - the receiver's copy - the DeviationReported as received and the
 *     DeviationRouted - to the receiver's inbox topic from the directory.
 * A "wrong receiver" response from the current receiver re-routes (hop + 1;
 * MANUAL triage past the rules' bound). A record that cannot be processed
 * goes, as it was, to topic.deadletter with the reason in headers.
 *
 * At-least-once: an input's offset is stored only once Kafka acknowledged
 * every output of it and of every earlier input of its partition; stored
 * offsets are committed periodically and synchronously when partitions are
 * revoked. Semantics, state rebuild and configuration: docs/router.md.
 *
 * One thread runs avk_router_run(); avk_router_stop() and the statistics may
 * be called from any thread.
 */
#ifndef AVK_ROUTER_H
#define AVK_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/util/config.h"
#include "common/util/metrics.h"

typedef struct avk_router avk_router_t;

/** What a router has done since it was created. */
struct avk_router_stats {
        uint64_t inputs_taken; /**< inputs taken from the consumer for assigned partitions */
        uint64_t inputs_done;  /**< inputs whose outputs Kafka has all acknowledged */
        uint64_t routed;       /**< DeviationRouted events written, replays included */
        uint64_t rerouted;     /**< of those, after a wrong-receiver response (hop > 0) */
        uint64_t replayed;     /**< inputs seen again whose outputs were rewritten from state */
        uint64_t deadlettered; /**< records written to topic.deadletter */
        uint64_t skipped;      /**< responses that are not the router's business */
        uint64_t duplicates;   /**< DeviationReported records filed again with the same body */
        uint64_t retries;      /**< outputs produced again after a failed delivery */
        int partitions;        /**< partitions of topic.reported assigned now */
};

/**
 * @brief Creates a router from cfg: loads directory.file and
 * routing.rules.file, creates the Kafka clients. Nothing is consumed before
 * avk_router_run(). cfg is not copied: it must outlive the router.
 * @returns the router, or NULL with the reason in errstr (every problem of
 * the directory or rules files, joined).
 */
avk_router_t *avk_router_new(const avk_config_t *cfg, char *errstr, size_t errstr_size);

/**
 * @brief Joins the group and routes until avk_router_stop(); then waits for
 * in-flight outputs (bounded), commits and leaves the group.
 * @returns 0 after a stop, or -1 with the reason in errstr (topic metadata at
 * start, a fatal producer error). Offsets of unfinished inputs are never
 * committed, so a restart routes them again.
 */
int avk_router_run(avk_router_t *router, char *errstr, size_t errstr_size);

/** @brief Asks avk_router_run() to return. Any thread; not async-signal-safe. */
void avk_router_stop(avk_router_t *router);

/** @brief A snapshot of the counters. Any thread. */
void avk_router_stats(avk_router_t *router, struct avk_router_stats *stats);

/**
 * @brief The router's metrics registry (avk_router_* families), owned by the
 * router, for a /metrics endpoint or a test.
 */
avk_metrics_t *avk_router_metrics(avk_router_t *router);

/**
 * @brief Whether the router is ready (for /readyz): Kafka answers a metadata
 * request within half a second and partitions of topic.reported are
 * assigned. @returns 1, or 0 with the reason in why. Any thread; opaque is
 * the avk_router_t.
 */
int avk_router_ready(void *opaque, char *why, size_t why_size);

/** @brief Frees a router that is not running. NULL is a no-op. */
void avk_router_destroy(avk_router_t *router);

#endif
