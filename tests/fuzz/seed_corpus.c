/*
 * seed_corpus OUTDIR: the Avro harnesses' seeds from real records: every
 * deploy/samples/ deviation (also under the older DeviationReported of
 * tests/data, which the decoder projects) and a response, encoded in single-object
 * framing, as OUTDIR/codec/<name> (the payload, for fuzz_codec) and
 * OUTDIR/binary/<name> (the record type's selector byte and the Avro body,
 * for fuzz_binary). Encoded here, so that the seeds follow the schemas.
 */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <avro.h>

#include "common/contract/codec.h"
#include "common/contract/jsonparse.h"
#include "tests/fuzz/support.h"

/* Single-object framing: 0xC3 0x01 and the 8-byte fingerprint (docs/architecture.md). */
#define FRAME_LEN 10

static const char response[] =
    "{\"response_id\":\"5b0c9c1e-2d3f-4a5b-8c6d-7e8f9a0b1c2d\","
    "\"deviation_id\":\"3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10\","
    "\"responded_at\":\"2026-11-20T09:00:00.000Z\",\"party\":\"VGR\","
    "\"unit_hsa_id\":\"SE2321000131-E000000012345\",\"kind\":\"REJECTED_WRONG_RECEIVER\","
    "\"analysis\":null,\"action_plan\":null,\"suggested_receiver\":\"1480\","
    "\"comment\":\"Kommunens hemsjukvård.\"}";

static void write_file(const char *dir, const char *name, const void *head, size_t head_len,
                       const void *body, size_t body_len)
{
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(head, 1, head_len, f) != head_len ||
            fwrite(body, 1, body_len, f) != body_len || fclose(f) != 0)
                fuzz_fail("%s: %s", path, strerror(errno));
}

/* Encodes the JSON text as schema, record type selector, into both corpora. */
static void seed(avk_codec_t *codec, const char *out, const avk_schema_t *schema, size_t selector,
                 const char *name, const char *text, size_t len)
{
        char err[512], dir[1024];
        avro_value_t value;
        json_t *doc = avk_json_parse(text, len, err, sizeof(err));
        struct avk_json_opts as_filed = {0};
        struct avk_errors errs;
        avk_errors_init(&errs);
        if (!doc || avro_generic_value_new(avk_schema_iface(schema), &value) != 0 ||
            avk_json_to_avro(schema, doc, &value, &as_filed, &errs) != 0)
                fuzz_fail("%s: not a %s", name, fuzz_record_names[selector]);
        const void *payload;
        size_t payload_len;
        if (avk_codec_encode_local(codec, schema, &value, &payload, &payload_len, err,
                                   sizeof(err)) != 0)
                fuzz_fail("%s: %s", name, err);
        snprintf(dir, sizeof(dir), "%s/codec", out);
        write_file(dir, name, "", 0, payload, payload_len);
        unsigned char selector_byte = (unsigned char)selector;
        snprintf(dir, sizeof(dir), "%s/binary", out);
        write_file(dir, name, &selector_byte, 1, (const char *)payload + FRAME_LEN,
                   payload_len - FRAME_LEN);
        avro_value_decref(&value);
        json_decref(doc);
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: seed_corpus OUTDIR\n");
                return 2;
        }
        char dir[1024];
        for (const char *const *sub = (const char *const[]){"", "/codec", "/binary", NULL}; *sub;
             sub++) {
                snprintf(dir, sizeof(dir), "%s%s", argv[1], *sub);
                if (mkdir(dir, 0755) != 0 && errno != EEXIST)
                        fuzz_fail("%s: %s", dir, strerror(errno));
        }
        avk_codec_t *codec = avk_codec_new(fuzz_catalog(), NULL);
        glob_t samples;
        if (!codec || glob(AVK_SOURCE_DIR "/deploy/samples/*.json", 0, NULL, &samples) != 0)
                fuzz_fail("no codec or no samples");
        for (size_t i = 0; i < samples.gl_pathc; i++) {
                FILE *f = fopen(samples.gl_pathv[i], "rb");
                static char text[65536];
                size_t len = f ? fread(text, 1, sizeof(text), f) : 0;
                if (!f || len == 0 || len == sizeof(text))
                        fuzz_fail("%s: cannot read it", samples.gl_pathv[i]);
                fclose(f);
                const char *name = strrchr(samples.gl_pathv[i], '/') + 1;
                seed(codec, argv[1], avk_catalog_by_name(fuzz_catalog(), fuzz_record_names[0]), 0,
                     name, text, len);
                /* The same deviation from an older writer: decoding projects it. */
                char older[256];
                snprintf(older, sizeof(older), "v2-%s", name);
                seed(codec, argv[1], fuzz_older_reported(), 0, older, text, len);
        }
        seed(codec, argv[1], avk_catalog_by_name(fuzz_catalog(), fuzz_record_names[1]), 1,
             "response.json", response, sizeof(response) - 1);
        printf("seed_corpus: %zu records in %s/codec and %s/binary\n", 2 * samples.gl_pathc + 1,
               argv[1], argv[1]);
        globfree(&samples);
        avk_codec_destroy(codec);
        return 0;
}
