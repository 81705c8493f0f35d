/*
 * avvik intake library: file deviations and responses from existing systems.
 *
 * A reporter validates a JSON document against the contract (every field
 * error at once, named by path), encodes it, and produces it to Kafka keyed
 * by the deviation id with an idempotent producer (acks=all). A document
 * counts as filed only once Kafka has acknowledged it.
 *
 * Thread-safe: any number of threads may file through one reporter.
 *
 *   avk_reporter_t *r = avk_reporter_new(cfg, err, sizeof(err));
 *   char id[AVK_ID_SIZE];
 *   struct avk_errors errs;
 *   if (avk_reporter_file(r, AVK_KIND_DEVIATION, doc, id, &errs) == AVK_FILED) ...
 *   avk_reporter_destroy(r);
 */
#ifndef AVK_REPORTER_H
#define AVK_REPORTER_H

#include <jansson.h>

#include "common/config.h"
#include "common/errors.h"

#define AVK_ID_SIZE 37 /**< a UUID in text and its NUL */

typedef struct avk_reporter avk_reporter_t;

/** What a document is; it decides the topic and schema. */
enum avk_kind {
        AVK_KIND_DEVIATION, /**< DeviationReported, to topic.reported */
        AVK_KIND_RESPONSE,  /**< DeviationResponse, to topic.response */
};

/** The outcome of filing one document. */
enum avk_result {
        AVK_FILED = 0,       /**< Kafka acknowledged it */
        AVK_REJECTED = 1,    /**< field errors; nothing was sent */
        AVK_UNAVAILABLE = 3, /**< Kafka did not acknowledge within intake.ack.timeout.ms */
};

/**
 * @brief Called once per submitted document that passed validation, from the
 * reporter's delivery thread, when Kafka acknowledged it or gave up.
 * @param id the document's id (deviation_id or response_id), valid during the call.
 */
typedef void(avk_reporter_done_cb)(void *opaque, const char *id, enum avk_result result,
                                   const char *reason);

/**
 * @brief Creates a reporter: a Kafka producer and the schema catalog from cfg.
 * @returns NULL with the reason in errstr (configuration, Schema Registry).
 */
avk_reporter_t *avk_reporter_new(const avk_config_t *cfg, char *errstr, size_t errstr_size);

/** @brief Waits for every submitted document's outcome, then frees the reporter. */
void avk_reporter_destroy(avk_reporter_t *reporter);

/**
 * @brief Validates doc and sends it without waiting for Kafka.
 *
 * A document without its id (deviation_id for a deviation, response_id for a
 * response) gets a new random UUID. On AVK_FILED the id is written to id and
 * done() will be called exactly once; on AVK_REJECTED errs holds every field
 * error and done() is not called.
 */
enum avk_result avk_reporter_submit(avk_reporter_t *reporter, enum avk_kind kind, const json_t *doc,
                                    char id[AVK_ID_SIZE], struct avk_errors *errs,
                                    avk_reporter_done_cb *done, void *opaque);

/**
 * @brief Files doc and waits for Kafka: AVK_FILED only once it is acknowledged.
 * On AVK_UNAVAILABLE errs holds the reason.
 */
enum avk_result avk_reporter_file(avk_reporter_t *reporter, enum avk_kind kind, const json_t *doc,
                                  char id[AVK_ID_SIZE], struct avk_errors *errs);

#endif
