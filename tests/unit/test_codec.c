/*
 * Tests for avk_codec: the sample deviations of deploy/samples/ survive
 * encode + decode in both framings (single-object without a registry,
 * Confluent against the fake Schema Registry of tests/support/), a reader
 * accepts both framings, and every kind of bad payload a consumer can meet on
 * a topic fails with a reason that names the problem - without a crash, a
 * leak or a huge allocation. The fuzz-style loops at the end mutate valid
 * messages byte by byte and at random (fixed seed) to show the same for
 * inputs nobody thought of.
 */
#include "common/contract/codec.h"

#include <avro.h>
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/registry.h"
#include "common/contract/schema.h"
#include "tests/support/check_text.h"
#include "tests/support/codec_fixture.h"
#include "tests/support/fake_registry.h"
#include "tests/support/test_data.h"

#define TOPIC            "deviation.reported"
#define SUBJECT          "deviation.reported-value"
#define SOE_HDR_SIZE     10
#define RANDOM_MUTATIONS 4000
/* Far above any honest allocation for one deviation, far below a forged length. */
#define ALLOCATION_LIMIT (16 * 1024 * 1024)

#ifdef __SANITIZE_ADDRESS__
/* Under ASan, any allocation above 64 MB aborts the test instead of quietly
 * reserving address space: a decoder that trusts a forged length cannot pass. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
        return "max_allocation_size_mb=64";
}
#endif

static avk_catalog_t *catalog;
static const avk_schema_t *reported;
static const avk_schema_t *routed;
static char **sample_paths;
static size_t sample_cnt;
static struct fake_registry *fake;

/* ---- fixtures ---- */

static void setup(void)
{
        char errstr[512] = "";
        catalog = avk_catalog_new_builtin(errstr, sizeof(errstr));
        ck_assert_msg(catalog != NULL, "%s", errstr);
        reported = avk_catalog_by_name(catalog, "DeviationReported");
        routed = avk_catalog_by_name(catalog, "DeviationRouted");
        ck_assert_ptr_nonnull(reported);
        ck_assert_ptr_nonnull(routed);
        sample_cnt = test_data_sample_paths(&sample_paths);
        ck_assert_uint_ge(sample_cnt, 3);
}

static void teardown(void)
{
        test_data_free_paths(sample_paths);
        sample_paths = NULL;
        avk_catalog_destroy(catalog);
        catalog = NULL;
}

static void fake_start(void)
{
        fake = fake_registry_start_or_fail();
}

static void fake_stop(void)
{
        fake_registry_stop(fake);
        fake = NULL;
}

/* ---- helpers ---- */

static json_t *load_sample(size_t i)
{
        return codec_fixture_load_json(sample_paths[i]);
}

static avk_codec_t *codec_with(avk_registry_t *reg)
{
        return codec_fixture_codec(catalog, reg);
}

/* Encodes in as the gateway would, less the intake rules (test_json's business). */
static struct codec_message encode_json(avk_codec_t *codec, const avk_schema_t *schema,
                                        const json_t *in)
{
        return codec_fixture_encode(codec, TOPIC, schema, in);
}

static struct codec_message encode_sample(avk_codec_t *codec, size_t i)
{
        json_t *j = load_sample(i);
        struct codec_message m = encode_json(codec, reported, j);
        json_decref(j);
        return m;
}

/* Decodes buf as a DeviationReported; on success *json (if asked) gets its JSON. */
static int decode_reported(avk_codec_t *codec, const void *buf, size_t len, json_t **json,
                           char *errstr, size_t errstr_size)
{
        return codec_fixture_decode(codec, buf, len, reported, json, errstr, errstr_size);
}

/* Decoding must fail, and the reason must contain each of the given parts. */
static void assert_rejected(avk_codec_t *codec, const void *buf, size_t len, const char *part1,
                            const char *part2)
{
        char errstr[512];
        ck_assert_int_eq(decode_reported(codec, buf, len, NULL, errstr, sizeof(errstr)), -1);
        ck_assert_contains(errstr, part1);
        if (part2)
                ck_assert_contains(errstr, part2);
}

static void round_trip_samples(avk_codec_t *writer, avk_codec_t *reader)
{
        for (size_t i = 0; i < sample_cnt; i++) {
                json_t *before = load_sample(i);
                struct codec_message m = encode_json(writer, reported, before);
                json_t *after = NULL;
                char errstr[512];
                ck_assert_msg(
                    decode_reported(reader, m.bytes, m.len, &after, errstr, sizeof(errstr)) == 0,
                    "%s: %s", sample_paths[i], errstr);
                assert_json_equal(before, after, sample_paths[i]);
                json_decref(after);
                json_decref(before);
                free(m.bytes);
        }
}

static uint64_t read_le64(const unsigned char *p)
{
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

static int32_t read_be32(const unsigned char *p)
{
        return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
                         (uint32_t)p[3]);
}

/* Where needle first occurs in m, or NULL. */
static unsigned char *find_bytes(const struct codec_message *m, const void *needle, size_t n)
{
        for (size_t i = 0; n <= m->len && i <= m->len - n; i++) {
                if (memcmp(m->bytes + i, needle, n) == 0)
                        return m->bytes + i;
        }
        return NULL;
}

/* Offset of the first byte where a and b differ; both must differ somewhere. */
static size_t first_difference(const struct codec_message *a, const struct codec_message *b)
{
        size_t n = a->len < b->len ? a->len : b->len;
        for (size_t i = 0; i < n; i++) {
                if (a->bytes[i] != b->bytes[i])
                        return i;
        }
        ck_abort_msg("the two encodings do not differ");
        return 0;
}

/* The encoding of sample 0 with one enum field (at dotted path) set to symbol. */
static struct codec_message encode_with_symbol(avk_codec_t *codec, const char *record,
                                               const char *field, const char *symbol)
{
        json_t *j = load_sample(0);
        json_t *parent = record ? json_object_get(j, record) : j;
        ck_assert_ptr_nonnull(parent);
        ck_assert_int_eq(json_object_set_new(parent, field, json_string(symbol)), 0);
        struct codec_message m = encode_json(codec, reported, j);
        json_decref(j);
        return m;
}

static json_t *routed_json(void)
{
        json_error_t jerr;
        json_t *j = json_loads("{\"event_id\":\"5b0f8e3c-1d2a-4b7c-9e8f-0a1b2c3d4e5f\","
                               "\"deviation_id\":\"3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10\","
                               "\"routed_at\":\"2026-11-17T08:00:00.000Z\",\"hop\":0,"
                               "\"reporter_party\":\"1480\",\"receiver_party\":\"VGR\","
                               "\"receiver_unit_hsa_id\":null,\"decision\":\"NAMED_BY_REPORTER\","
                               "\"rule_id\":\"named\",\"reason\":\"The reporter named VGR.\","
                               "\"category\":\"DISCHARGE_PLANNING\",\"harm_level\":\"NONE\","
                               "\"possible_lex_maria\":false}",
                               0, &jerr);
        ck_assert_msg(j != NULL, "%s", jerr.text);
        return j;
}

/* A small fixed-seed generator (xorshift64*), so every run mutates alike. */
static uint64_t next_random(uint64_t *state)
{
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        return *state * 0x2545F4914F6CDD1DULL;
}

/* Decodes a possibly broken message: it either decodes (0) or fails with a
 * reason (-1). Failures name the case as "<what> <n>". */
static int decode_must_not_crash(avk_codec_t *codec, const void *buf, size_t len, const char *what,
                                 size_t n)
{
        char errstr[512];
        json_t *json = NULL;
        int rc = decode_reported(codec, buf, len, &json, errstr, sizeof(errstr));
        ck_assert_msg(rc == 0 || rc == -1, "%s %zu: decode returned %d", what, n, rc);
        if (rc == 0)
                json_decref(json);
        else
                ck_assert_msg(errstr[0] != '\0', "%s %zu: failed without a reason", what, n);
        return rc;
}

/* ---- round trips ---- */

START_TEST(test_samples_round_trip_in_single_object_framing)
{
        avk_codec_t *codec = codec_with(NULL);

        round_trip_samples(codec, codec);

        /* The frame: C3 01, then the schema's fingerprint little-endian. */
        struct codec_message m = encode_sample(codec, 0);
        ck_assert_uint_gt(m.len, SOE_HDR_SIZE);
        ck_assert_uint_eq(m.bytes[0], 0xC3);
        ck_assert_uint_eq(m.bytes[1], 0x01);
        ck_assert_uint_eq(read_le64(m.bytes + 2), avk_schema_fingerprint(reported));
        free(m.bytes);
        avk_codec_destroy(codec);
}
END_TEST

START_TEST(test_samples_round_trip_in_confluent_framing)
{
        /* A reader in another process: it learns the schema by id from the registry. */
        struct codec_pair pair = codec_fixture_pair(catalog, catalog, fake_registry_url(fake));

        round_trip_samples(pair.writer, pair.reader);

        /* The writer registered its schema once under <topic>-value, whatever the
         * number of messages, and the reader fetched it once. */
        struct fake_registry_seen seen = fake_registry_seen(fake);
        ck_assert_int_eq(fake_registry_registrations(fake, SUBJECT), 1);
        ck_assert_int_eq(seen.registers, 1);
        ck_assert_str_eq(seen.subject, SUBJECT);
        ck_assert_int_eq(seen.fetches, 1);

        /* The frame: 00, then the registered id big-endian. */
        struct codec_message m = encode_sample(pair.writer, 1);
        ck_assert_uint_eq(m.bytes[0], 0x00);
        int32_t id = read_be32(m.bytes + 1);
        ck_assert_int_eq(id, FAKE_REGISTRY_FIRST_ID);
        char *registered = fake_registry_schema(fake, id);
        ck_assert_ptr_nonnull(registered);
        ck_assert_str_eq(registered, avk_schema_text(reported));
        free(registered);
        ck_assert_int_eq(fake_registry_registrations(fake, SUBJECT), 1);

        free(m.bytes);
        codec_fixture_pair_destroy(&pair);
}
END_TEST

START_TEST(test_reader_with_registry_accepts_both_framings)
{
        avk_registry_t *reg = codec_fixture_registry(fake_registry_url(fake));
        avk_codec_t *confluent_writer = codec_with(reg);
        avk_codec_t *single_object_writer = codec_with(NULL);
        avk_codec_t *reader = codec_with(reg);
        json_t *before = load_sample(0);
        struct codec_message framed[2] = {encode_json(single_object_writer, reported, before),
                                          encode_json(confluent_writer, reported, before)};
        ck_assert_uint_eq(framed[0].bytes[0], 0xC3);
        ck_assert_uint_eq(framed[1].bytes[0], 0x00);

        for (size_t i = 0; i < 2; i++) {
                json_t *after = NULL;
                char errstr[512];
                ck_assert_msg(decode_reported(reader, framed[i].bytes, framed[i].len, &after,
                                              errstr, sizeof(errstr)) == 0,
                              "framing %zu: %s", i, errstr);
                assert_json_equal(before, after, i == 0 ? "single-object" : "Confluent");
                json_decref(after);
                free(framed[i].bytes);
                /* The single-object message needed no registry: so far only the
                 * Confluent writer's register. */
                if (i == 0)
                        ck_assert_int_eq(fake_registry_seen(fake).requests, 1);
        }

        json_decref(before);
        avk_codec_destroy(reader);
        avk_codec_destroy(single_object_writer);
        avk_codec_destroy(confluent_writer);
        avk_registry_destroy(reg);
}
END_TEST

/* ---- bad framing ---- */

START_TEST(test_empty_message_is_rejected)
{
        avk_codec_t *codec = codec_with(NULL);
        static const unsigned char nothing[1] = {0};
        assert_rejected(codec, nothing, 0, "empty message", NULL);
        avk_codec_destroy(codec);
}
END_TEST

START_TEST(test_wrong_magic_byte_names_the_framings)
{
        avk_codec_t *codec = codec_with(NULL);
        /* A JSON document sent to an Avro topic. */
        static const char json_doc[] = "{\"deviation_id\":\"3f1c2a9e\"}";
        assert_rejected(codec, json_doc, strlen(json_doc), "unknown framing", "7b");
        assert_rejected(codec, json_doc, strlen(json_doc), "Confluent", "single-object");
        /* C3 with the wrong second byte is not single-object encoding either. */
        static const unsigned char c3_02[SOE_HDR_SIZE + 1] = {0xC3, 0x02};
        assert_rejected(codec, c3_02, sizeof(c3_02), "unknown framing", "c3 02");
        avk_codec_destroy(codec);
}
END_TEST

START_TEST(test_truncated_confluent_header_is_rejected)
{
        avk_registry_t *reg = codec_fixture_registry(fake_registry_url(fake));
        avk_codec_t *codec = codec_with(reg);
        static const unsigned char three[] = {0x00, 0x00, 0x00};
        assert_rejected(codec, three, sizeof(three), "truncated Confluent header", "3 bytes");
        /* Nothing was asked of the registry for a header that holds no id. */
        ck_assert_int_eq(fake_registry_seen(fake).requests, 0);
        avk_codec_destroy(codec);
        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_truncated_single_object_header_is_rejected)
{
        avk_codec_t *codec = codec_with(NULL);
        struct codec_message m = encode_sample(codec, 0);
        /* From the lone C3 on: a cut-off frame is truncated, not some unknown framing. */
        for (size_t len = 1; len < SOE_HDR_SIZE; len++)
                assert_rejected(codec, m.bytes, len, "truncated single-object header", "need 10");
        free(m.bytes);
        avk_codec_destroy(codec);
}
END_TEST

START_TEST(test_unknown_fingerprint_is_rejected)
{
        avk_codec_t *codec = codec_with(NULL);
        struct codec_message m = encode_sample(codec, 0);
        /* Another schema's fingerprint, little-endian: 0102030405060708. */
        for (int i = 0; i < 8; i++)
                m.bytes[2 + i] = (unsigned char)(8 - i);
        assert_rejected(codec, m.bytes, m.len, "unknown schema fingerprint", "0102030405060708");
        free(m.bytes);
        avk_codec_destroy(codec);
}
END_TEST

START_TEST(test_unknown_schema_id_is_rejected)
{
        avk_registry_t *reg = codec_fixture_registry(fake_registry_url(fake));
        avk_codec_t *codec = codec_with(reg);
        struct codec_message m = encode_sample(codec, 0);
        /* Id 42 was never registered: the fake answers 404 / 40403. */
        m.bytes[1] = 0, m.bytes[2] = 0, m.bytes[3] = 0, m.bytes[4] = 42;
        assert_rejected(codec, m.bytes, m.len, "schema id 42", "not found");
        assert_rejected(codec, m.bytes, m.len, "404", NULL);
        ck_assert_str_eq(fake_registry_seen(fake).url, "/schemas/ids/42");
        free(m.bytes);
        avk_codec_destroy(codec);
        avk_registry_destroy(reg);
}
END_TEST

START_TEST(test_confluent_framing_without_registry_names_the_missing_url)
{
        avk_codec_t *codec = codec_with(NULL);
        static const unsigned char framed[] = {0x00, 0x00, 0x00, 0x00, 0x07, 0x02, 'x'};
        assert_rejected(codec, framed, sizeof(framed), "schema.registry.url", "schema id 7");
        avk_codec_destroy(codec);
}
END_TEST

START_TEST(test_registry_down_names_the_url)
{
        char url[64];
        unsigned port = fake_registry_unused_port();
        ck_assert_uint_ne(port, 0);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
        avk_registry_t *reg = codec_fixture_registry(url);
        avk_codec_t *codec = codec_with(reg);
        char errstr[512] = "";

        /* A reader cannot learn the writer's schema, and says it is the
         * registry, not the record ... */
        static const unsigned char framed[] = {0x00, 0x00, 0x00, 0x00, 0x65, 0x02, 'x'};
        ck_assert_int_eq(
            decode_reported(codec, framed, sizeof(framed), NULL, errstr, sizeof(errstr)),
            AVK_CODEC_UNAVAILABLE);
        ck_assert_contains(errstr, url);
        ck_assert_contains(errstr, "connect");

        /* ... and a writer cannot register its own. */
        json_t *j = load_sample(0);
        avro_value_t value;
        const void *out = NULL;
        size_t out_len = 0;
        codec_fixture_value(reported, j, NULL, &value);
        ck_assert_int_eq(avk_codec_encode(codec, TOPIC, reported, &value, &out, &out_len, errstr,
                                          sizeof(errstr)),
                         AVK_CODEC_UNAVAILABLE);
        ck_assert_contains(errstr, url);
        ck_assert_contains(errstr, SUBJECT);

        avro_value_decref(&value);
        json_decref(j);
        avk_codec_destroy(codec);
        avk_registry_destroy(reg);
}
END_TEST

/* ---- bad Avro body ---- */

/* A check on one encoded message; what names it in failures. */
typedef void message_check(avk_codec_t *codec, struct codec_message *m, const char *what);

/* check on the single-object encoding of every sample. */
static void check_every_sample(message_check *check)
{
        avk_codec_t *codec = codec_with(NULL);
        for (size_t s = 0; s < sample_cnt; s++) {
                struct codec_message m = encode_sample(codec, s);
                check(codec, &m, sample_paths[s]);
                free(m.bytes);
        }
        avk_codec_destroy(codec);
}

/* check on the Confluent encoding of sample 0, with the fake for registry. */
static void check_a_confluent_sample(message_check *check)
{
        avk_registry_t *reg = codec_fixture_registry(fake_registry_url(fake));
        avk_codec_t *codec = codec_with(reg);
        struct codec_message m = encode_sample(codec, 0);
        check(codec, &m, "Confluent-framed sample");
        free(m.bytes);
        avk_codec_destroy(codec);
        avk_registry_destroy(reg);
}

/* Every cut of m from one byte on fails, and says it is truncated. */
static void assert_every_cut_fails(avk_codec_t *codec, struct codec_message *m, const char *what)
{
        /* Avro binary is prefix-free: no cut of a valid datum is a datum. */
        for (size_t len = 1; len < m->len; len++) {
                char errstr[512];
                ck_assert_msg(decode_reported(codec, m->bytes, len, NULL, errstr, sizeof(errstr)) ==
                                  -1,
                              "%s cut to %zu of %zu bytes decoded", what, len, m->len);
                ck_assert_msg(strstr(errstr, "truncated") != NULL,
                              "%s cut to %zu of %zu bytes: \"%s\" does not say truncated", what,
                              len, m->len, errstr);
        }
}

START_TEST(test_every_truncation_fails_cleanly)
{
        check_every_sample(assert_every_cut_fails);
}
END_TEST

START_TEST(test_every_truncation_of_a_confluent_message_fails_cleanly)
{
        check_a_confluent_sample(assert_every_cut_fails);
}
END_TEST

/* avro-c's allocator, wrapped to record the largest request while installed. */
static size_t largest_avro_request;
static void *recording_allocator(void *user_data, void *ptr, size_t osize, size_t nsize)
{
        (void)user_data;
        (void)osize;
        if (nsize == 0) {
                free(ptr);
                return NULL;
        }
        if (nsize > largest_avro_request)
                largest_avro_request = nsize;
        return nsize > ALLOCATION_LIMIT ? NULL : realloc(ptr, nsize);
}

START_TEST(test_huge_string_length_fails_without_allocating)
{
        avk_codec_t *codec = codec_with(NULL);
        unsigned char forged[SOE_HDR_SIZE + 8] = {0xC3, 0x01};
        uint64_t fp = avk_schema_fingerprint(reported);
        for (int i = 0; i < 8; i++)
                forged[2 + i] = (unsigned char)(fp >> (8 * i));
        /* deviation_id, the first field, claims 2^31 - 1 bytes: zigzag varint FE FF FF FF 0F. */
        static const unsigned char claim[] = {0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 'a', 'b', 'c'};
        memcpy(forged + SOE_HDR_SIZE, claim, sizeof(claim));

        avro_allocator_t previous = AVRO_CURRENT_ALLOCATOR.alloc;
        void *previous_data = AVRO_CURRENT_ALLOCATOR.user_data;
        largest_avro_request = 0;
        avro_set_allocator(recording_allocator, NULL);
        char errstr[512];
        int rc = decode_reported(codec, forged, sizeof(forged), NULL, errstr, sizeof(errstr));
        avro_set_allocator(previous, previous_data);

        ck_assert_int_eq(rc, -1);
        ck_assert_contains(errstr, "truncated");
        ck_assert_contains(errstr, "length 2147483647");
        ck_assert_contains(errstr, "deviation_id");
        ck_assert_msg(largest_avro_request < 64 * 1024,
                      "avro-c was asked for %zu bytes for an %zu-byte message",
                      largest_avro_request, sizeof(forged));
        avk_codec_destroy(codec);
}
END_TEST

START_TEST(test_invalid_utf8_in_description_is_rejected)
{
        avk_codec_t *codec = codec_with(NULL);
        json_t *j = load_sample(0);
        const char *description = json_string_value(json_object_get(j, "description"));
        ck_assert_uint_gt(strlen(description), 20);
        struct codec_message m = encode_json(codec, reported, j);
        unsigned char *text = find_bytes(&m, description, 20);
        ck_assert_ptr_nonnull(text);
        text[10] = 0xFF;
        text[11] = 0xFF;

        assert_rejected(codec, m.bytes, m.len, "description", "invalid UTF-8 at byte 10");
        json_decref(j);
        free(m.bytes);
        avk_codec_destroy(codec);
}
END_TEST

START_TEST(test_enum_index_out_of_range_is_rejected)
{
        avk_codec_t *codec = codec_with(NULL);
        /* The byte that holds an enum index is where two encodings that differ only in
         * that enum first differ. Category has 12 symbols; the reporter's role 10. */
        struct codec_message a = encode_with_symbol(codec, NULL, "category", "SIP");
        struct codec_message b = encode_with_symbol(codec, NULL, "category", "MEDICATION");
        size_t at = first_difference(&a, &b);
        ck_assert_uint_eq(a.bytes[at], 2 * 2); /* zigzag(2): SIP is symbol 2 */
        a.bytes[at] = 2 * 12;                  /* zigzag(12): one past the last symbol */
        assert_rejected(codec, a.bytes, a.len, "category", "enum index 12 out of range");
        a.bytes[at] = 1; /* zigzag(-1) */
        assert_rejected(codec, a.bytes, a.len, "category", "enum index -1 out of range");
        free(a.bytes);
        free(b.bytes);

        a = encode_with_symbol(codec, "reporter", "role", "NURSE");
        b = encode_with_symbol(codec, "reporter", "role", "PHYSICIAN");
        at = first_difference(&a, &b);
        a.bytes[at] = 2 * 10;
        assert_rejected(codec, a.bytes, a.len, "reporter.role", "enum index 10 out of range");
        free(a.bytes);
        free(b.bytes);
        avk_codec_destroy(codec);
}
END_TEST

START_TEST(test_trailing_garbage_is_rejected)
{
        avk_codec_t *codec = codec_with(NULL);
        struct codec_message m = encode_sample(codec, 0);
        unsigned char *longer = malloc(m.len + 3);
        ck_assert_ptr_nonnull(longer);
        memcpy(longer, m.bytes, m.len);
        memcpy(longer + m.len, "XYZ", 3);

        assert_rejected(codec, longer, m.len + 3, "3 bytes trail the datum", NULL);
        /* One more byte is enough. */
        assert_rejected(codec, longer, m.len + 1, "1 bytes trail the datum", NULL);
        free(longer);
        free(m.bytes);
        avk_codec_destroy(codec);
}
END_TEST

START_TEST(test_other_record_type_names_both_types)
{
        avk_codec_t *codec = codec_with(NULL);
        json_t *j = routed_json();
        struct codec_message m = encode_json(codec, routed, j);
        assert_rejected(codec, m.bytes, m.len, "se.vardsamverkan.avvik.DeviationRouted",
                        "se.vardsamverkan.avvik.DeviationReported");
        free(m.bytes);
        json_decref(j);
        avk_codec_destroy(codec);
}
END_TEST

START_TEST(test_other_record_type_in_confluent_framing_names_both_types)
{
        struct codec_pair pair = codec_fixture_pair(catalog, catalog, fake_registry_url(fake));
        json_t *j = routed_json();
        struct codec_message m = encode_json(pair.writer, routed, j);
        assert_rejected(pair.reader, m.bytes, m.len, "DeviationRouted", "expected");
        assert_rejected(pair.reader, m.bytes, m.len, "DeviationReported", NULL);
        free(m.bytes);
        json_decref(j);
        codec_fixture_pair_destroy(&pair);
}
END_TEST

/* ---- mutations ---- */

static void flip_every_byte(avk_codec_t *codec, struct codec_message *m, const char *what)
{
        char where[600];
        snprintf(where, sizeof(where), "%s at", what);
        for (size_t at = 0; at < m->len; at++) {
                unsigned char saved = m->bytes[at];
                static const unsigned char masks[] = {0xFF, 0x01, 0x80, 0x40};
                for (size_t k = 0; k < sizeof(masks); k++) {
                        m->bytes[at] = saved ^ masks[k];
                        decode_must_not_crash(codec, m->bytes, m->len, where, at);
                }
                m->bytes[at] = saved;
        }
        /* The message itself is untouched and still decodes. */
        char errstr[512];
        ck_assert_msg(decode_reported(codec, m->bytes, m->len, NULL, errstr, sizeof(errstr)) == 0,
                      "%s", errstr);
}

START_TEST(test_flipping_any_byte_never_crashes)
{
        check_every_sample(flip_every_byte);
}
END_TEST

START_TEST(test_flipping_any_byte_of_a_confluent_message_never_crashes)
{
        check_a_confluent_sample(flip_every_byte);
        /* Flipped ids were asked for, and not found. */
        ck_assert_int_gt(fake_registry_seen(fake).fetches, 0);
}
END_TEST

START_TEST(test_random_mutations_never_crash)
{
        avk_codec_t *codec = codec_with(NULL);
        struct codec_message m = encode_sample(codec, 0);
        unsigned char *mutant = malloc(m.len + 16);
        ck_assert_ptr_nonnull(mutant);
        uint64_t state = 0x9E3779B97F4A7C15ULL;
        int decoded = 0, rejected = 0;

        for (int round = 0; round < RANDOM_MUTATIONS; round++) {
                size_t len = m.len;
                memcpy(mutant, m.bytes, m.len);
                /* Mostly the body, rarely the header: a broken header is dull. */
                int changes = 1 + (int)(next_random(&state) % 4);
                for (int k = 0; k < changes; k++) {
                        size_t at = SOE_HDR_SIZE + next_random(&state) % (len - SOE_HDR_SIZE);
                        if (next_random(&state) % 16 == 0)
                                at = next_random(&state) % SOE_HDR_SIZE;
                        mutant[at] = (unsigned char)next_random(&state);
                }
                switch (next_random(&state) % 8) {
                case 0: /* cut short */
                        len = 1 + next_random(&state) % len;
                        break;
                case 1: /* grown */
                        for (size_t k = 0; k < 16; k++)
                                mutant[len + k] = (unsigned char)next_random(&state);
                        len += 1 + next_random(&state) % 16;
                        break;
                default:
                        break;
                }
                if (decode_must_not_crash(codec, mutant, len, "round", (size_t)round) == 0)
                        decoded++;
                else
                        rejected++;
        }
        /* Both outcomes occur: the mutations reach past the first check. */
        ck_assert_int_gt(decoded, 0);
        ck_assert_int_gt(rejected, 0);
        free(mutant);
        free(m.bytes);
        avk_codec_destroy(codec);
}
END_TEST

static Suite *codec_suite(void)
{
        Suite *suite = suite_create("codec");

        TCase *alone = tcase_create("without_registry");
        tcase_add_checked_fixture(alone, setup, teardown);
        tcase_set_timeout(alone, 120);
        tcase_add_test(alone, test_samples_round_trip_in_single_object_framing);
        tcase_add_test(alone, test_empty_message_is_rejected);
        tcase_add_test(alone, test_wrong_magic_byte_names_the_framings);
        tcase_add_test(alone, test_truncated_single_object_header_is_rejected);
        tcase_add_test(alone, test_unknown_fingerprint_is_rejected);
        tcase_add_test(alone, test_confluent_framing_without_registry_names_the_missing_url);
        tcase_add_test(alone, test_registry_down_names_the_url);
        tcase_add_test(alone, test_every_truncation_fails_cleanly);
        tcase_add_test(alone, test_huge_string_length_fails_without_allocating);
        tcase_add_test(alone, test_invalid_utf8_in_description_is_rejected);
        tcase_add_test(alone, test_enum_index_out_of_range_is_rejected);
        tcase_add_test(alone, test_trailing_garbage_is_rejected);
        tcase_add_test(alone, test_other_record_type_names_both_types);
        tcase_add_test(alone, test_flipping_any_byte_never_crashes);
        tcase_add_test(alone, test_random_mutations_never_crash);
        suite_add_tcase(suite, alone);

        TCase *with_fake = tcase_create("with_fake_registry");
        tcase_add_checked_fixture(with_fake, setup, teardown);
        tcase_add_checked_fixture(with_fake, fake_start, fake_stop);
        tcase_set_timeout(with_fake, 120);
        tcase_add_test(with_fake, test_samples_round_trip_in_confluent_framing);
        tcase_add_test(with_fake, test_reader_with_registry_accepts_both_framings);
        tcase_add_test(with_fake, test_truncated_confluent_header_is_rejected);
        tcase_add_test(with_fake, test_unknown_schema_id_is_rejected);
        tcase_add_test(with_fake, test_every_truncation_of_a_confluent_message_fails_cleanly);
        tcase_add_test(with_fake, test_other_record_type_in_confluent_framing_names_both_types);
        tcase_add_test(with_fake, test_flipping_any_byte_of_a_confluent_message_never_crashes);
        suite_add_tcase(suite, with_fake);

        return suite;
}

int main(void)
{
        SRunner *runner = srunner_create(codec_suite());
        srunner_run_all(runner, CK_NORMAL);
        int failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
