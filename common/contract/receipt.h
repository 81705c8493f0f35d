/*
 * avk_receipt: the intake's receipt of a filed document (schemas/
 * intake_receipt.avsc), written to topic.intake.receipts in the same Kafka
 * transaction as the document. It carries what the spool's drain and the
 * gateway's view need - the document's id, its kind, the filing party, the
 * digest of its Avro body, its time, a deviation's reply_reference - and
 * nothing about the patient, so the internet-facing gateway never reads the
 * documents' topics (docs/intake.md, "Receipts").
 */
#ifndef AVK_RECEIPT_H
#define AVK_RECEIPT_H

#include <stddef.h>

#include "common/contract/codec.h"
#include "common/contract/schema.h"

#define AVK_RECEIPT_DIGEST_SIZE 16 /**< bytes of a document's digest kept */

/** The documents a receipt is for, in the order of the schema's ReceiptKind. */
enum avk_receipt_kind {
        AVK_RECEIPT_DEVIATION,
        AVK_RECEIPT_RESPONSE,
};

/**
 * @brief SHA-256 of a framed Avro payload's body (the same bytes whichever
 * framing carries them), cut to AVK_RECEIPT_DIGEST_SIZE. @returns 0, or -1
 * when the payload is not framed.
 */
int avk_receipt_digest(const void *payload, size_t len,
                       unsigned char digest[AVK_RECEIPT_DIGEST_SIZE]);

typedef struct avk_receipt_writer avk_receipt_writer_t;

/**
 * @brief A writer of receipts for topic, with a codec of its own (one
 * thread's). catalog and registry (may be NULL) are not owned and must
 * outlive the writer. NULL with the reason in errstr.
 */
avk_receipt_writer_t *avk_receipt_writer_new(const avk_catalog_t *catalog, avk_registry_t *registry,
                                             const char *topic, char *errstr, size_t errstr_size);

/** @brief Frees the writer. NULL is a no-op. */
void avk_receipt_writer_destroy(avk_receipt_writer_t *w);

/**
 * @brief The receipt of payload, a framed document of kind, as it goes to
 * the writer's topic.
 * @param known_digest payload's avk_receipt_digest() when the caller has it
 * already, else NULL (it is computed).
 * @param out receives the receipt, owned by the writer and valid until its next call.
 * @returns 0, AVK_CODEC_UNAVAILABLE (the registry could not be asked), or
 * -1 with the reason in errstr.
 */
int avk_receipt_write(avk_receipt_writer_t *w, enum avk_receipt_kind kind, const void *payload,
                      size_t len, const unsigned char *known_digest, const void **out,
                      size_t *out_len, char *errstr, size_t errstr_size);

#endif
