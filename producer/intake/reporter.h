/*
 * avvik intake library: file deviations and responses from existing systems.
 *
 * A reporter validates a JSON document against the contract (every field
 * error at once, named by path), encodes it, and produces it to Kafka keyed
 * by the deviation id with an idempotent producer (acks=all). A document
 * counts as filed only once Kafka has acknowledged it - or, with
 * intake.spool.dir set, once it is in the local fsync'd spool because Kafka
 * was unreachable; the spool drains to Kafka in order when Kafka is back.
 * With a spool (or in AVK_REPORTER_RECEIPTED mode) every document goes with
 * its receipt (common/contract/receipt.h) in one Kafka transaction and is
 * filed once that commits (docs/intake.md, "Receipts").
 *
 * Thread-safe: any number of threads may file through one reporter. Filing
 * is two steps, so that callers can validate in parallel and still keep
 * their order: avk_reporter_prepare() (validate and encode; any thread, in
 * parallel) and avk_reporter_send() (documents reach Kafka in the order
 * they are sent). avk_reporter_submit() does both.
 *
 *   avk_reporter_t *r = avk_reporter_new(cfg, err, sizeof(err));
 *   char id[AVK_ID_SIZE];
 *   struct avk_errors errs;
 *   if (avk_reporter_file(r, AVK_KIND_DEVIATION, doc, id, &errs) == AVK_FILED) ...
 *   avk_reporter_destroy(r);
 */
#ifndef AVK_REPORTER_H
#define AVK_REPORTER_H

#include <stdint.h>

#include <jansson.h>

#include "common/contract/receipt.h"
#include "common/util/config.h"
#include "common/util/errors.h"

#define AVK_ID_SIZE    37 /**< a UUID in text and its NUL */
#define AVK_PARTY_SIZE 8  /**< a party's code ("VGR", a municipality's four digits) and its NUL */

typedef struct avk_reporter avk_reporter_t;

/** A validated, encoded document ready to send (avk_reporter_prepare()). */
typedef struct avk_prepared avk_prepared_t;

/** What a document is; it decides the topic and schema. */
enum avk_kind {
        AVK_KIND_DEVIATION, /**< DeviationReported, to topic.reported */
        AVK_KIND_RESPONSE,  /**< DeviationResponse, to topic.response */
};

/** The outcome of filing one document. */
enum avk_result {
        AVK_FILED = 0,       /**< Kafka acknowledged it */
        AVK_REJECTED = 1,    /**< field errors; nothing was sent */
        AVK_UNAVAILABLE = 3, /**< Kafka did not acknowledge within intake.ack.timeout.ms
                                  and it could not be spooled (spool off or full) */
        AVK_SPOOLED = 4,     /**< Kafka unreachable: stored in the local spool (fsync'd), to be
                                  produced in order when Kafka is back */
};

/**
 * @brief Called once per sent document, from one of the reporter's threads (or,
 * AVK_REPORTER_SERVED, from avk_reporter_serve()), with AVK_FILED (Kafka
 * acknowledged it), AVK_SPOOLED or AVK_UNAVAILABLE.
 * @param id the document's id (deviation_id or response_id), valid during the call.
 */
typedef void(avk_reporter_done_cb)(void *opaque, const char *id, enum avk_result result,
                                   const char *reason);

/** Whether documents go with receipts (avk_reporter_new_mode()). */
enum avk_reporter_mode {
        AVK_REPORTER_PLAIN,     /**< receipts with a spool only (avvik report) */
        AVK_REPORTER_RECEIPTED, /**< every document with its receipt in one transaction,
                                     with or without a spool (the gateway: its view reads
                                     the receipts, docs/gateway.md) */
        AVK_REPORTER_SERVED,    /**< AVK_REPORTER_PLAIN, but without a spool the caller
                                     serves the delivery reports (avk_reporter_serve()):
                                     no delivery thread (avvik report, docs/intake.md) */
};

/**
 * @brief Creates a reporter: a Kafka producer and the schema catalog from cfg.
 * Documents go with receipts when intake.spool.dir is set (AVK_REPORTER_PLAIN).
 * @returns NULL with the reason in errstr (configuration, Schema Registry).
 */
avk_reporter_t *avk_reporter_new(const avk_config_t *cfg, char *errstr, size_t errstr_size);

/**
 * @brief avk_reporter_new() in mode. A receipted reporter without a spool is
 * a transactional producer named after instance.name (else the host name)
 * that answers AVK_UNAVAILABLE when a transaction does not commit.
 */
avk_reporter_t *avk_reporter_new_mode(const avk_config_t *cfg, enum avk_reporter_mode mode,
                                      char *errstr, size_t errstr_size);

/**
 * @brief Serves the delivery reports of an AVK_REPORTER_SERVED reporter without
 * a spool in the calling thread: the done() callbacks of sent documents run
 * in it. Waits up to timeout_ms for one, or until avk_reporter_wake().
 * @returns 0, or -1 at once when the reporter serves them itself (another
 * mode, or a spool): done() is then called from the reporter's threads.
 */
int avk_reporter_serve(avk_reporter_t *reporter, int timeout_ms);

/** @brief Makes a avk_reporter_serve() under way, or else the next one, return at once. */
void avk_reporter_wake(avk_reporter_t *reporter);

/** @brief Waits for every submitted document's outcome, then frees the reporter. */
void avk_reporter_destroy(avk_reporter_t *reporter);

/**
 * @brief Validates and encodes doc, in the calling thread.
 *
 * A document without its id (deviation_id for a deviation, response_id for a
 * response) gets a new random UUID. On AVK_FILED the id is written to id and
 * *out holds the document for avk_reporter_send(), which takes it over; on
 * AVK_REJECTED errs holds every field error. AVK_UNAVAILABLE: out of memory.
 */
enum avk_result avk_reporter_prepare(avk_reporter_t *reporter, enum avk_kind kind,
                                     const json_t *doc, char id[AVK_ID_SIZE],
                                     struct avk_errors *errs, avk_prepared_t **out);

/**
 * @brief avk_reporter_prepare() for the JSON text of a document, text[0..len).
 *
 * Most documents take one pass from text to Avro without a JSON tree
 * (common/contract/jsonstream.h), several times cheaper; any other - a rejected one
 * among them - is parsed and prepared as avk_reporter_prepare() does, so the
 * verdict and the errors are the same either way. Text that is not JSON is
 * AVK_REJECTED with "not valid JSON at line L column C: reason" in errs.
 */
enum avk_result avk_reporter_prepare_json(avk_reporter_t *reporter, enum avk_kind kind,
                                          const char *text, size_t len, char id[AVK_ID_SIZE],
                                          struct avk_errors *errs, avk_prepared_t **out);

/**
 * @brief avk_reporter_prepare_json() in the single pass only, for a document
 * that carries its own id: none is made for it. On AVK_FILED id, party (the
 * party the document names: a deviation's reporter.party, a response's
 * party) and *out are set; AVK_UNAVAILABLE is avk_reporter_prepare()'s.
 * AVK_REJECTED, with errs empty and nothing counted, when the single pass
 * does not take the text (not valid, without its id, or of a shape it does
 * not handle): avk_reporter_prepare_json() then gives the verdict and every
 * error.
 */
enum avk_result avk_reporter_prepare_own(avk_reporter_t *reporter, enum avk_kind kind,
                                         const char *text, size_t len, char id[AVK_ID_SIZE],
                                         char party[AVK_PARTY_SIZE], struct avk_errors *errs,
                                         avk_prepared_t **out);

/**
 * @brief Sends a prepared document without waiting; takes prepared over.
 * Documents sent one after another reach Kafka in that order (also through
 * the spool). done() is called exactly once.
 */
void avk_reporter_send(avk_reporter_t *reporter, avk_prepared_t *prepared,
                       avk_reporter_done_cb *done, void *opaque);

/**
 * @brief The framed Avro payload of a prepared document, as it goes to Kafka
 * (owned by prepared).
 */
const void *avk_prepared_payload(const avk_prepared_t *prepared, size_t *len);

/**
 * @brief prepared's avk_receipt_digest() into digest, made on the first call
 * and kept: its receipt, when it is sent, is written with it.
 * @returns 0, or -1 when the payload is not framed.
 */
int avk_prepared_digest(avk_prepared_t *prepared, unsigned char digest[AVK_RECEIPT_DIGEST_SIZE]);

/** @brief Frees a prepared document that will not be sent. */
void avk_prepared_destroy(avk_prepared_t *prepared);

/**
 * @brief Prepares and sends doc without waiting for Kafka.
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
 * @brief Files doc and waits: AVK_FILED once Kafka acknowledged it,
 * AVK_SPOOLED once it is in the spool. On AVK_UNAVAILABLE errs holds the reason.
 */
enum avk_result avk_reporter_file(avk_reporter_t *reporter, enum avk_kind kind, const json_t *doc,
                                  char id[AVK_ID_SIZE], struct avk_errors *errs);

/** What a reporter has done since it was created, and its state now. */
struct avk_reporter_stats {
        int kafka_up;           /**< the last metadata request to Kafka succeeded */
        int registry_up;        /**< the drain's last registry call answered (1 without one) */
        uint64_t in_flight;     /**< sent, outcome not yet known */
        uint64_t spool_pending; /**< in the spool, not yet acknowledged by Kafka */
        int drain_stalled;      /**< the spool holds documents, Kafka and the registry answer, and
                                     the drain's last attempts (about 3 s) moved none into Kafka */
        uint64_t filed;         /**< acknowledged by Kafka (directly or from the spool) */
        uint64_t spooled;       /**< answered AVK_SPOOLED */
        uint64_t unavailable;   /**< answered AVK_UNAVAILABLE */
        uint64_t rejected;      /**< rejected by validation */
        uint64_t txn_not_committed; /**< transactions aborted or ended by a fatal error: a real
                                         cluster hides their records from read_committed readers
                                         (librdkafka's mock cluster shows them) */
        uint64_t txn_committed;     /**< transactions of sent documents committed (not counting
                                         the spool's drain) */
};

/**
 * @brief Group commit of a receipted reporter's sent documents: a transaction
 * begins no sooner than interval_ms after the one before began (0, the
 * default: as soon as the one before ended and a document waits). Each
 * transaction costs librdkafka about 2 ms of CPU whatever it holds, so a
 * longer interval costs less CPU a document at up to interval_ms of latency
 * (docs/gateway.md, "Group commit"). Any thread, any time.
 */
void avk_reporter_set_commit_interval(avk_reporter_t *reporter, int interval_ms);

/** @brief A consistent snapshot of the reporter's counters. */
void avk_reporter_stats(avk_reporter_t *reporter, struct avk_reporter_stats *stats);

#endif
