/*
 * The two JSON intake paths against each other (docs/architecture.md, "The
 * contract"): the tree path (avk_json_parse(), the id filled when absent,
 * avk_json_to_avro()) and the single pass (avk_json_stream_to_avro()) with
 * each of its readers, simdjson and yajl, under
 * intake validation, for the two record types the intake files. The single
 * pass may give up on a document the tree accepts only for a surrogate
 * escape, which is the tree's alone (and, read by simdjson, for a form feed
 * or vertical tab between tokens, which only yajl takes for whitespace); otherwise both must accept
 * and reject the same documents and, when they accept, fill the same Avro bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "common/contract/json_int.h"
#include "common/contract/jsonparse.h"
#include "common/contract/jsonstream.h"
#include "tests/fuzz/support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FILL_ID "0f0e0d0c-0b0a-4908-8706-050403020100"

static const struct {
        const char *record, *id_field;
} filed[] = {{"DeviationReported", "deviation_id"}, {"DeviationResponse", "response_id"}};

/* The single pass's two readers, each against the tree path. */
static const struct {
        enum avk_json_reader reader;
        const char *name;
} readers[] = {{AVK_JSON_READER_SIMDJSON, "simdjson"}, {AVK_JSON_READER_YAJL, "yajl"}};

static struct path_pair {
        const avk_schema_t *schema;
        avk_json_plan_t *plan;
        avro_value_t tree, stream;
} pairs[2];

static void fill_id(char *buf, size_t size)
{
        snprintf(buf, size, "%s", FILL_ID);
}

/* Released at exit, for LeakSanitizer (see fuzz_codec.c). */
static void release(void)
{
        for (size_t i = 0; i < 2; i++) {
                avro_value_decref(&pairs[i].tree);
                avro_value_decref(&pairs[i].stream);
                avk_json_plan_destroy(pairs[i].plan);
        }
}

static void init(void)
{
        char err[256];
        for (size_t i = 0; i < 2; i++) {
                struct path_pair *p = &pairs[i];
                p->schema = avk_catalog_by_name(fuzz_catalog(), filed[i].record);
                if (!(p->plan = avk_json_plan_new(p->schema, err, sizeof(err))))
                        fuzz_fail("%s: %s", filed[i].record, err);
                if (avro_generic_value_new(avk_schema_iface(p->schema), &p->tree) != 0 ||
                    avro_generic_value_new(avk_schema_iface(p->schema), &p->stream) != 0)
                        fuzz_fail("out of memory");
        }
        atexit(release);
}

/* The tree path as the reporter takes it; 1 when it accepts. */
static int tree_accepts(struct path_pair *p, const char *id_field, const char *text, size_t len)
{
        char reason[256];
        json_t *doc = avk_json_parse(text, len, reason, sizeof(reason));
        if (!doc)
                return 0;
        if (json_is_object(doc) && !json_object_get(doc, id_field))
                json_object_set_new(doc, id_field, json_string(FILL_ID));
        struct avk_errors errs;
        avk_errors_init(&errs);
        int rc = avk_json_to_avro(p->schema, doc, &p->tree, &fuzz_intake, &errs);
        json_decref(doc);
        if ((rc != 0) != (avk_errors_total(&errs) != 0))
                fuzz_fail("the tree path returned %d with %zu errors", rc, avk_errors_total(&errs));
        return rc == 0;
}

static int same_bytes(avro_value_t *a, avro_value_t *b)
{
        size_t a_len, b_len;
        if (avro_value_sizeof(a, &a_len) != 0 || avro_value_sizeof(b, &b_len) != 0)
                fuzz_fail("avro_value_sizeof: %s", avro_strerror());
        if (a_len != b_len)
                return 0;
        char *buf = malloc(2 * a_len + 2);
        if (!buf)
                fuzz_fail("out of memory");
        avro_writer_t wa = avro_writer_memory(buf, (int64_t)a_len + 1);
        avro_writer_t wb = avro_writer_memory(buf + a_len + 1, (int64_t)b_len + 1);
        if (!wa || !wb || avro_value_write(wa, a) != 0 || avro_value_write(wb, b) != 0)
                fuzz_fail("avro_value_write: %s", avro_strerror());
        int same = memcmp(buf, buf + a_len + 1, a_len) == 0;
        avro_writer_free(wa);
        avro_writer_free(wb);
        free(buf);
        return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!pairs[0].plan)
                init();
        const char *text = (const char *)data;
        for (size_t i = 0; i < 2; i++) {
                struct path_pair *p = &pairs[i];
                struct avk_json_fill fill = {filed[i].id_field, fill_id};
                int tree = tree_accepts(p, filed[i].id_field, text, size);
                for (size_t r = 0; r < 2; r++) {
                        int stream = avk_json_stream_to_avro(p->plan, readers[r].reader, text, size,
                                                             &fill, &p->stream, &fuzz_intake) == 0;
                        if (stream && !tree)
                                fuzz_fail("%s: the single pass (%s) accepts what the tree path "
                                          "rejects",
                                          filed[i].record, readers[r].name);
                        /* yajl reads a form feed or vertical tab between
                         * tokens as whitespace, simdjson (JSON's grammar)
                         * does not. */
                        if (tree && !stream && !avk_json_has_surrogate_escape(text, size) &&
                            !(readers[r].reader == AVK_JSON_READER_SIMDJSON &&
                              (memchr(text, '\f', size) || memchr(text, '\v', size))))
                                fuzz_fail("%s: the single pass (%s) rejects what the tree path "
                                          "accepts",
                                          filed[i].record, readers[r].name);
                        if (tree && stream && !same_bytes(&p->tree, &p->stream))
                                fuzz_fail("%s: the tree path and the single pass (%s) fill "
                                          "different Avro bytes",
                                          filed[i].record, readers[r].name);
                }
        }
        return 0;
}
