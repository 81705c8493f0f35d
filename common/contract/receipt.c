/*
 * avk_receipt: see receipt.h.
 *
 * The writer decodes the document it is given (with the current schema of
 * its kind) rather than taking the fields from the caller: a spooled
 * document is only its payload, and one routine then serves the direct and
 * the spooled path alike. Both the document's read and the receipt's write
 * go through the compiled codec (common/contract/avroprog.h): the fields are
 * copied slot to slot, and no avro-c value is made per receipt.
 */
#include "common/contract/receipt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/avroprog.h"
#include "common/util/hash.h"

#define KIND_CNT 2
/* Room for a receipt's Avro body: two uuids, a party, the digest, the time
 * and a reply_reference of at most 64 characters take well under this; a
 * longer body is encoded again with the room it needs. */
#define BODY_ROOM 512

static const char *const doc_schema_name[KIND_CNT] = {"DeviationReported", "DeviationResponse"};
static const char *const id_path[KIND_CNT] = {"deviation_id", "response_id"};
static const char *const party_path[KIND_CNT] = {"reporter.party", "party"};
static const char *const time_path[KIND_CNT] = {"reported_at", "responded_at"};

/* The receipt's fields, in the order of their slots in receipt_slot[]. */
enum receipt_field { R_ID, R_DEVIATION_ID, R_KIND, R_PARTY, R_DIGEST, R_FILED_AT, R_REPLY, R_CNT };
static const char *const receipt_path[R_CNT] = {"id",     "deviation_id", "kind",           "party",
                                                "digest", "filed_at",     "reply_reference"};

/* A document's fields the receipt copies: the slots of its kind's program. */
enum doc_field { D_ID, D_DEVIATION_ID, D_PARTY, D_TIME, D_REPLY, D_CNT };

struct avk_receipt_writer {
        avk_codec_t *codec;
        const char *topic;
        const avk_schema_t *schema;
        const avk_avroprog_t *prog; /* the receipt's, owned by codec */
        int receipt_slot[R_CNT];
        avk_avroprog_slot_t *slots; /* the receipt's, reused for each */
        const avk_schema_t *doc_schema[KIND_CNT];
        int doc_slot[KIND_CNT][D_CNT]; /* -1: the kind has no such field */
        unsigned char *body;
        size_t body_cap;
};

int avk_receipt_digest(const void *payload, size_t len,
                       unsigned char digest[AVK_RECEIPT_DIGEST_SIZE])
{
        size_t body_len;
        const void *body = avk_codec_body(payload, len, &body_len);
        unsigned char full[32];
        if (!body || avk_hash_sha256_digest(body, body_len, full) != 0)
                return -1;
        memcpy(digest, full, AVK_RECEIPT_DIGEST_SIZE);
        return 0;
}

/* Finds the slots of kind's document fields; the reply reference only a
 * deviation has. @returns 0, or -1 with the missing field in errstr. */
static int doc_slots(avk_receipt_writer_t *w, int kind, char *errstr, size_t errstr_size)
{
        const avk_avroprog_t *prog = avk_codec_program(w->codec, w->doc_schema[kind]);
        const char *paths[D_CNT] = {id_path[kind], "deviation_id", party_path[kind],
                                    time_path[kind],
                                    kind == AVK_RECEIPT_DEVIATION ? "reply_reference" : NULL};
        for (int f = 0; f < D_CNT; f++) {
                w->doc_slot[kind][f] = prog && paths[f] ? avk_avroprog_slot(prog, paths[f]) : -1;
                if (paths[f] && w->doc_slot[kind][f] < 0) {
                        snprintf(errstr, errstr_size, "%s: no compiled field %s",
                                 doc_schema_name[kind], paths[f]);
                        return -1;
                }
        }
        return 0;
}

avk_receipt_writer_t *avk_receipt_writer_new(const avk_catalog_t *catalog, avk_registry_t *registry,
                                             const char *topic, char *errstr, size_t errstr_size)
{
        avk_receipt_writer_t *w = calloc(1, sizeof(*w));
        if (!w || !(w->codec = avk_codec_new(catalog, registry)) ||
            !(w->body = malloc(BODY_ROOM))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        w->body_cap = BODY_ROOM;
        w->topic = topic;
        if (!(w->schema = avk_catalog_by_name(catalog, "IntakeReceipt"))) {
                snprintf(errstr, errstr_size, "IntakeReceipt: not in the schema catalog");
                goto fail;
        }
        if (!(w->prog = avk_codec_program(w->codec, w->schema))) {
                snprintf(errstr, errstr_size, "IntakeReceipt: not compiled");
                goto fail;
        }
        for (int f = 0; f < R_CNT; f++) {
                if ((w->receipt_slot[f] = avk_avroprog_slot(w->prog, receipt_path[f])) < 0) {
                        snprintf(errstr, errstr_size, "IntakeReceipt: no field %s",
                                 receipt_path[f]);
                        goto fail;
                }
        }
        if (!(w->slots = calloc(avk_avroprog_slot_count(w->prog), sizeof(*w->slots)))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        for (int k = 0; k < KIND_CNT; k++) {
                if (!(w->doc_schema[k] = avk_catalog_by_name(catalog, doc_schema_name[k]))) {
                        snprintf(errstr, errstr_size, "%s: not in the schema catalog",
                                 doc_schema_name[k]);
                        goto fail;
                }
                if (doc_slots(w, k, errstr, errstr_size) != 0)
                        goto fail;
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
        free(w->slots);
        free(w->body);
        avk_codec_destroy(w->codec);
        free(w);
}

int avk_receipt_write(avk_receipt_writer_t *w, enum avk_receipt_kind kind, const void *payload,
                      size_t len, const unsigned char *known_digest, const void **out,
                      size_t *out_len, char *errstr, size_t errstr_size)
{
        unsigned char digest[AVK_RECEIPT_DIGEST_SIZE];
        if (known_digest)
                memcpy(digest, known_digest, sizeof(digest));
        else if (avk_receipt_digest(payload, len, digest) != 0) {
                snprintf(errstr, errstr_size, "%s: not a framed Avro record", w->topic);
                return -1;
        }
        const avk_avroprog_slot_t *doc;
        int rc = avk_codec_decode_slots(w->codec, payload, len, w->doc_schema[kind], &doc, errstr,
                                        errstr_size);
        if (rc != 0)
                return rc;
        const int *ds = w->doc_slot[kind];
        avk_avroprog_slot_t *r = w->slots;
        const int *rs = w->receipt_slot;
        r[rs[R_ID]] = doc[ds[D_ID]];
        r[rs[R_DEVIATION_ID]] = doc[ds[D_DEVIATION_ID]];
        r[rs[R_KIND]].v.i = kind;
        r[rs[R_PARTY]] = doc[ds[D_PARTY]];
        r[rs[R_DIGEST]].v.str = (const char *)digest;
        r[rs[R_DIGEST]].len = sizeof(digest);
        r[rs[R_FILED_AT]].v.i = doc[ds[D_TIME]].v.i;
        /* Both unions are ["null", "string"]; a response has no reference. */
        if (ds[D_REPLY] >= 0)
                r[rs[R_REPLY]] = doc[ds[D_REPLY]];
        else
                r[rs[R_REPLY]].branch = 0;
        int64_t body_len =
            avk_avroprog_encode_into(w->prog, r, &w->body, &w->body_cap, errstr, errstr_size);
        if (body_len < 0)
                return -1;
        return avk_codec_frame(w->codec, w->topic, w->schema, 0, w->body, (size_t)body_len, out,
                               out_len, errstr, errstr_size);
}
