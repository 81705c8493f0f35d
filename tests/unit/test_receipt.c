/*
 * avk_receipt: a receipt carries the filing of a document - its id, kind,
 * party, time, reply_reference and the digest of its Avro body - and
 * nothing about the patient; the digest is the same whichever framing
 * carries the body, and a payload that is not a framed document gets no
 * receipt.
 */
#include "common/contract/receipt.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/contract/avro_field.h"
#include "common/contract/json.h"
#include "tests/support/codec_fixture.h"
#include "tests/support/test_data.h"

#define SAMPLE   AVK_SOURCE_DIR "/deploy/samples/01-discharge-information-missing.json"
#define RESPONSE AVK_TEST_DATA "/schema_history/deviation_response.json"
#define RECEIPTS "deviation.intake.receipts"

static avk_catalog_t *catalog;
static avk_codec_t *codec;
static avk_receipt_writer_t *writer;

static void setup(void)
{
        char err[256];
        catalog = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(catalog != NULL, "%s", err);
        codec = codec_fixture_codec(catalog, NULL);
        writer = avk_receipt_writer_new(catalog, NULL, RECEIPTS, err, sizeof(err));
        ck_assert_msg(writer != NULL, "%s", err);
}

static void teardown(void)
{
        avk_receipt_writer_destroy(writer);
        avk_codec_destroy(codec);
        avk_catalog_destroy(catalog);
}

/* The receipt of msg (a document of kind) written with known_digest (NULL:
 * computed), decoded into a new value the test decrefs. */
static avro_value_t receipt_with(enum avk_receipt_kind kind, const struct codec_message *msg,
                                 const unsigned char *known_digest)
{
        const void *out;
        size_t out_len;
        char err[256];
        ck_assert_msg(avk_receipt_write(writer, kind, msg->bytes, msg->len, known_digest, &out,
                                        &out_len, err, sizeof(err)) == 0,
                      "%s", err);
        const avk_schema_t *schema = avk_catalog_by_name(catalog, "IntakeReceipt");
        avro_value_t receipt;
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(schema), &receipt), 0);
        ck_assert_msg(avk_codec_decode(codec, out, out_len, schema, &receipt, err, sizeof(err)) ==
                          0,
                      "%s", err);
        return receipt;
}

static avro_value_t receipt_of(enum avk_receipt_kind kind, const struct codec_message *msg)
{
        return receipt_with(kind, msg, NULL);
}

/* The receipt's digest field, which must be AVK_RECEIPT_DIGEST_SIZE bytes. */
static const void *digest_field(avro_value_t *receipt)
{
        avro_value_t field;
        const void *bytes;
        size_t len;
        ck_assert_int_eq(avk_avro_field(receipt, "digest", &field), 0);
        ck_assert_int_eq(avro_value_get_bytes(&field, &bytes, &len), 0);
        ck_assert_uint_eq(len, AVK_RECEIPT_DIGEST_SIZE);
        return bytes;
}

static int64_t time_of(const json_t *doc, const char *field)
{
        int64_t ms;
        ck_assert_int_eq(avk_json_parse_time(json_string_value(json_object_get(doc, field)), &ms),
                         0);
        return ms;
}

START_TEST(a_deviations_receipt_is_its_filing_and_nothing_of_the_patient)
{
        json_t *doc = codec_fixture_load_json(SAMPLE);
        json_object_set_new(doc, "reply_reference", json_string("GBG-CASE-1"));
        struct codec_message msg = codec_fixture_encode(
            codec, "deviation.reported", avk_catalog_by_name(catalog, "DeviationReported"), doc);
        avro_value_t receipt = receipt_of(AVK_RECEIPT_DEVIATION, &msg);
        const char *id = json_string_value(json_object_get(doc, "deviation_id"));
        ck_assert_str_eq(avk_avro_text(&receipt, "id"), id);
        ck_assert_str_eq(avk_avro_text(&receipt, "deviation_id"), id);
        ck_assert_str_eq(avk_avro_text(&receipt, "kind"), "DEVIATION");
        ck_assert_str_eq(avk_avro_text(&receipt, "party"), "1480");
        ck_assert_str_eq(avk_avro_text(&receipt, "reply_reference"), "GBG-CASE-1");
        int64_t filed_at;
        ck_assert_int_eq(avk_avro_long(&receipt, "filed_at", &filed_at), 0);
        ck_assert_int_eq(filed_at, time_of(doc, "reported_at"));
        unsigned char digest[AVK_RECEIPT_DIGEST_SIZE];
        ck_assert_int_eq(avk_receipt_digest(msg.bytes, msg.len, digest), 0);
        ck_assert_int_eq(memcmp(digest_field(&receipt), digest, sizeof(digest)), 0);
        /* Seven fields, none of them the patient's. */
        size_t fields;
        ck_assert_int_eq(avro_value_get_size(&receipt, &fields), 0);
        ck_assert_uint_eq(fields, 7);
        avro_value_decref(&receipt);
        free(msg.bytes);
        json_decref(doc);
}
END_TEST

START_TEST(a_responses_receipt_names_the_response_and_its_party)
{
        json_t *sample = codec_fixture_load_json(RESPONSE);
        const json_t *doc = json_object_get(sample, "record");
        struct codec_message msg = codec_fixture_encode(
            codec, "deviation.response", avk_catalog_by_name(catalog, "DeviationResponse"), doc);
        avro_value_t receipt = receipt_of(AVK_RECEIPT_RESPONSE, &msg);
        ck_assert_str_eq(avk_avro_text(&receipt, "id"),
                         json_string_value(json_object_get(doc, "response_id")));
        ck_assert_str_eq(avk_avro_text(&receipt, "deviation_id"),
                         json_string_value(json_object_get(doc, "deviation_id")));
        ck_assert_str_eq(avk_avro_text(&receipt, "kind"), "RESPONSE");
        ck_assert_str_eq(avk_avro_text(&receipt, "party"), "VGR");
        ck_assert_ptr_null(avk_avro_text(&receipt, "reply_reference"));
        int64_t filed_at;
        ck_assert_int_eq(avk_avro_long(&receipt, "filed_at", &filed_at), 0);
        ck_assert_int_eq(filed_at, time_of(doc, "responded_at"));
        avro_value_decref(&receipt);
        free(msg.bytes);
        json_decref(sample);
}
END_TEST

/* The gateway digests a document before it sends it (for its idempotency and
 * ownership checks); the receipt then takes that digest instead of making it again. */
START_TEST(a_digest_the_caller_has_is_the_one_written)
{
        json_t *doc = codec_fixture_load_json(SAMPLE);
        struct codec_message msg = codec_fixture_encode(
            codec, "deviation.reported", avk_catalog_by_name(catalog, "DeviationReported"), doc);
        unsigned char known[AVK_RECEIPT_DIGEST_SIZE];
        memset(known, 0xab, sizeof(known));
        avro_value_t receipt = receipt_with(AVK_RECEIPT_DEVIATION, &msg, known);
        ck_assert_int_eq(memcmp(digest_field(&receipt), known, sizeof(known)), 0);
        avro_value_decref(&receipt);
        free(msg.bytes);
        json_decref(doc);
}
END_TEST

START_TEST(the_digest_is_the_bodys_whatever_the_framing)
{
        static const unsigned char body[] = {0x02, 0x61, 0x62};
        unsigned char single[10 + sizeof(body)] = {0xC3, 0x01}, confluent[5 + sizeof(body)] = {0};
        memcpy(single + 10, body, sizeof(body));
        memcpy(confluent + 5, body, sizeof(body));
        confluent[4] = 7;
        unsigned char a[AVK_RECEIPT_DIGEST_SIZE], b[AVK_RECEIPT_DIGEST_SIZE];
        ck_assert_int_eq(avk_receipt_digest(single, sizeof(single), a), 0);
        ck_assert_int_eq(avk_receipt_digest(confluent, sizeof(confluent), b), 0);
        ck_assert_int_eq(memcmp(a, b, sizeof(a)), 0);
        confluent[sizeof(confluent) - 1] ^= 1;
        ck_assert_int_eq(avk_receipt_digest(confluent, sizeof(confluent), b), 0);
        ck_assert_int_ne(memcmp(a, b, sizeof(a)), 0);
}
END_TEST

START_TEST(a_payload_that_is_not_a_framed_document_gets_no_receipt)
{
        static const char id[] = "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10";
        const void *out;
        size_t out_len;
        char err[256];
        unsigned char digest[AVK_RECEIPT_DIGEST_SIZE];
        ck_assert_int_eq(avk_receipt_digest(id, strlen(id), digest), -1);
        ck_assert_int_eq(avk_receipt_write(writer, AVK_RECEIPT_DEVIATION, id, strlen(id), NULL,
                                           &out, &out_len, err, sizeof(err)),
                         -1);
        ck_assert_str_eq(err, RECEIPTS ": not a framed Avro record");
}
END_TEST

int main(void)
{
        Suite *s = suite_create("receipt");
        TCase *tc = tcase_create("receipt");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, a_deviations_receipt_is_its_filing_and_nothing_of_the_patient);
        tcase_add_test(tc, a_responses_receipt_names_the_response_and_its_party);
        tcase_add_test(tc, a_digest_the_caller_has_is_the_one_written);
        tcase_add_test(tc, the_digest_is_the_bodys_whatever_the_framing);
        tcase_add_test(tc, a_payload_that_is_not_a_framed_document_gets_no_receipt);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
