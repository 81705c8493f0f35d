/*
 * avk_receipt: see receipt.h.
 *
 * The writer decodes the document it is given (with the current schema of
 * its kind) rather than taking the fields from the caller: a spooled
 * document is only its payload, and one routine then serves the direct and
 * the spooled path alike.
 */
#include "common/contract/receipt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/contract/avro_field.h"

#define KIND_CNT 2

static const char *const doc_schema_name[KIND_CNT] = {"DeviationReported", "DeviationResponse"};
static const char *const kind_symbol[KIND_CNT] = {"DEVIATION", "RESPONSE"};
static const char *const id_path[KIND_CNT] = {"deviation_id", "response_id"};
static const char *const party_path[KIND_CNT] = {"reporter.party", "party"};
static const char *const time_path[KIND_CNT] = {"reported_at", "responded_at"};

struct avk_receipt_writer {
        avk_codec_t *codec;
        const char *topic;
        const avk_schema_t *schema;
        avro_value_t receipt;
        const avk_schema_t *doc_schema[KIND_CNT];
        avro_value_t doc[KIND_CNT];
        int values; /* how many of receipt, doc[0], doc[1] exist */
};

int avk_receipt_digest(const void *payload, size_t len,
                       unsigned char digest[AVK_RECEIPT_DIGEST_SIZE])
{
        size_t body_len;
        const void *body = avk_codec_body(payload, len, &body_len);
        unsigned char full[EVP_MAX_MD_SIZE];
        unsigned int full_len = 0;
        if (!body || EVP_Digest(body, body_len, full, &full_len, EVP_sha256(), NULL) != 1)
                return -1;
        memcpy(digest, full, AVK_RECEIPT_DIGEST_SIZE);
        return 0;
}

avk_receipt_writer_t *avk_receipt_writer_new(const avk_catalog_t *catalog, avk_registry_t *registry,
                                             const char *topic, char *errstr, size_t errstr_size)
{
        avk_receipt_writer_t *w = calloc(1, sizeof(*w));
        if (!w || !(w->codec = avk_codec_new(catalog, registry))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        w->topic = topic;
        if (!(w->schema = avk_catalog_by_name(catalog, "IntakeReceipt"))) {
                snprintf(errstr, errstr_size, "IntakeReceipt: not in the schema catalog");
                goto fail;
        }
        for (int k = 0; k < KIND_CNT; k++) {
                if (!(w->doc_schema[k] = avk_catalog_by_name(catalog, doc_schema_name[k]))) {
                        snprintf(errstr, errstr_size, "%s: not in the schema catalog",
                                 doc_schema_name[k]);
                        goto fail;
                }
        }
        avro_value_t *values[] = {&w->receipt, &w->doc[0], &w->doc[1]};
        const avk_schema_t *schemas[] = {w->schema, w->doc_schema[0], w->doc_schema[1]};
        for (; w->values < 3; w->values++) {
                if (avro_generic_value_new(avk_schema_iface(schemas[w->values]),
                                           values[w->values]) != 0) {
                        snprintf(errstr, errstr_size, "out of memory");
                        goto fail;
                }
        }
        return w;
fail:
        avk_receipt_writer_destroy(w);
        return NULL;
}

void avk_receipt_writer_destroy(avk_receipt_writer_t *w)
{
        if (!w)
                return;
        avro_value_t *values[] = {&w->receipt, &w->doc[0], &w->doc[1]};
        for (int i = 0; i < w->values; i++)
                avro_value_decref(values[i]);
        avk_codec_destroy(w->codec);
        free(w);
}

int avk_receipt_write(avk_receipt_writer_t *w, enum avk_receipt_kind kind, const void *payload,
                      size_t len, const void **out, size_t *out_len, char *errstr,
                      size_t errstr_size)
{
        unsigned char digest[AVK_RECEIPT_DIGEST_SIZE];
        if (avk_receipt_digest(payload, len, digest) != 0) {
                snprintf(errstr, errstr_size, "%s: not a framed Avro record", w->topic);
                return -1;
        }
        avro_value_t *doc = &w->doc[kind];
        avro_value_reset(doc);
        int rc =
            avk_codec_decode(w->codec, payload, len, w->doc_schema[kind], doc, errstr, errstr_size);
        if (rc != 0)
                return rc;
        int64_t filed_at = 0;
        avro_value_t field;
        avro_value_reset(&w->receipt);
        if (avk_avro_set_text(&w->receipt, "id", avk_avro_text(doc, id_path[kind])) != 0 ||
            avk_avro_set_text(&w->receipt, "deviation_id", avk_avro_text(doc, "deviation_id")) !=
                0 ||
            avk_avro_set_text(&w->receipt, "kind", kind_symbol[kind]) != 0 ||
            avk_avro_set_text(&w->receipt, "party", avk_avro_text(doc, party_path[kind])) != 0 ||
            avk_avro_long(doc, time_path[kind], &filed_at) != 0 ||
            avk_avro_set_long(&w->receipt, "filed_at", filed_at, 0) != 0 ||
            avk_avro_set_text(&w->receipt, "reply_reference",
                              kind == AVK_RECEIPT_DEVIATION ? avk_avro_text(doc, "reply_reference")
                                                            : NULL) != 0 ||
            avro_value_get_by_name(&w->receipt, "digest", &field, NULL) != 0 ||
            avro_value_set_bytes(&field, digest, sizeof(digest)) != 0) {
                snprintf(errstr, errstr_size, "%s: the document lacks a field its receipt needs",
                         w->topic);
                return -1;
        }
        return avk_codec_encode(w->codec, w->topic, w->schema, &w->receipt, out, out_len, errstr,
                                errstr_size);
}
