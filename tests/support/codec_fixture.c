/* codec_fixture: see codec_fixture.h. */
#include "tests/support/codec_fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/errors.h"
#include "tests/support/test_data.h"

json_t *codec_fixture_load_json(const char *path)
{
        char errstr[512] = "";
        json_t *j = test_data_load_json(path, errstr, sizeof(errstr));
        ck_assert_msg(j != NULL, "%s", errstr);
        return j;
}

avk_registry_t *codec_fixture_registry(const char *url)
{
        struct avk_registry_conf conf = {.url = url, .timeout_ms = 2000};
        char errstr[512] = "";
        avk_registry_t *reg = avk_registry_new(&conf, errstr, sizeof(errstr));
        ck_assert_msg(reg != NULL, "avk_registry_new(\"%s\"): %s", url, errstr);
        return reg;
}

avk_codec_t *codec_fixture_codec(const avk_catalog_t *catalog, avk_registry_t *registry)
{
        avk_codec_t *codec = avk_codec_new(catalog, registry);
        ck_assert_ptr_nonnull(codec);
        return codec;
}

struct codec_pair codec_fixture_pair(const avk_catalog_t *writer_catalog,
                                     const avk_catalog_t *reader_catalog, const char *registry_url)
{
        struct codec_pair pair = {NULL, NULL, NULL, NULL};
        if (registry_url) {
                pair.writer_registry = codec_fixture_registry(registry_url);
                pair.reader_registry = codec_fixture_registry(registry_url);
        }
        pair.writer = codec_fixture_codec(writer_catalog, pair.writer_registry);
        pair.reader = codec_fixture_codec(reader_catalog, pair.reader_registry);
        return pair;
}

void codec_fixture_pair_destroy(struct codec_pair *pair)
{
        avk_codec_destroy(pair->reader);
        avk_codec_destroy(pair->writer);
        avk_registry_destroy(pair->reader_registry);
        avk_registry_destroy(pair->writer_registry);
        *pair = (struct codec_pair){NULL, NULL, NULL, NULL};
}

void codec_fixture_value(const avk_schema_t *schema, const json_t *in,
                         const struct avk_json_opts *opts, avro_value_t *out)
{
        static const struct avk_json_opts no_rules = {0};
        struct avk_errors errs;
        char joined[1024];
        avk_errors_init(&errs);
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(schema), out), 0);
        ck_assert_msg(avk_json_to_avro(schema, in, out, opts ? opts : &no_rules, &errs) == 0, "%s",
                      avk_errors_join(&errs, joined, sizeof(joined)));
}

struct codec_message codec_fixture_encode(avk_codec_t *codec, const char *topic,
                                          const avk_schema_t *schema, const json_t *in)
{
        avro_value_t value;
        const void *out = NULL;
        size_t out_len = 0;
        char errstr[512] = "";
        codec_fixture_value(schema, in, NULL, &value);
        ck_assert_msg(avk_codec_encode(codec, topic, schema, &value, &out, &out_len, errstr,
                                       sizeof(errstr)) == 0,
                      "encode: %s", errstr);
        avro_value_decref(&value);
        struct codec_message m = {malloc(out_len), out_len};
        ck_assert_ptr_nonnull(m.bytes);
        memcpy(m.bytes, out, out_len);
        return m;
}

int codec_fixture_decode(avk_codec_t *codec, const void *buf, size_t len,
                         const avk_schema_t *reader, json_t **json, char *errstr,
                         size_t errstr_size)
{
        avro_value_t value;
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(reader), &value), 0);
        errstr[0] = '\0';
        int rc = avk_codec_decode(codec, buf, len, reader, &value, errstr, errstr_size);
        if (rc == 0 && json) {
                char reason[256] = "";
                *json = avk_json_from_avro(reader, &value, reason, sizeof(reason));
                ck_assert_msg(*json != NULL, "decoded value has no JSON form: %s", reason);
        }
        avro_value_decref(&value);
        return rc;
}

json_t *codec_fixture_decode_json(avk_codec_t *codec, const void *buf, size_t len,
                                  const avk_schema_t *reader)
{
        json_t *json = NULL;
        char errstr[512];
        ck_assert_msg(
            codec_fixture_decode(codec, buf, len, reader, &json, errstr, sizeof(errstr)) == 0,
            "decode: %s", errstr);
        return json;
}

void assert_json_equal(const json_t *expected, const json_t *actual, const char *what)
{
        if (json_equal(expected, actual))
                return;
        char *e = json_dumps(expected, JSON_SORT_KEYS | JSON_COMPACT);
        char *a = json_dumps(actual, JSON_SORT_KEYS | JSON_COMPACT);
        char diff[8192];
        snprintf(diff, sizeof(diff), "expected %s\n  actual %s", e, a);
        free(e);
        free(a);
        ck_abort_msg("%s: JSON differs\n%s", what, diff);
}
