/*
 * The decoder (common/contract/codec.c) on a whole Kafka payload, framing
 * included: single-object framing (the codec has no registry here), the
 * fingerprint looked up among the contract's schemas and an older version of
 * DeviationReported, the bounds check, avro-c's read and the projection onto
 * each reader record type. A payload that decodes must encode again, and the
 * encoding must decode to an equal value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "common/contract/codec.h"
#include "tests/fuzz/support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static avk_codec_t *codec;
static avro_value_t values[16], again[16];

/* What a run holds is released at exit: LeakSanitizer, which libFuzzer runs
 * then, reports avro-c's strings in values still held as leaks. */
static void release(void)
{
        for (size_t i = 0; i < fuzz_record_count; i++) {
                avro_value_decref(&values[i]);
                avro_value_decref(&again[i]);
        }
        avk_codec_destroy(codec);
}

static void init(void)
{
        const avk_catalog_t *catalog = fuzz_catalog();
        atexit(release);
        if (!(codec = avk_codec_new(catalog, NULL)))
                fuzz_fail("out of memory");
        for (size_t i = 0; i < fuzz_record_count; i++) {
                avro_value_iface_t *iface =
                    avk_schema_iface(avk_catalog_by_name(catalog, fuzz_record_names[i]));
                if (avro_generic_value_new(iface, &values[i]) != 0 ||
                    avro_generic_value_new(iface, &again[i]) != 0)
                        fuzz_fail("out of memory");
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!codec)
                init();
        char err[512];
        for (size_t i = 0; i < fuzz_record_count; i++) {
                const avk_schema_t *reader =
                    avk_catalog_by_name(fuzz_catalog(), fuzz_record_names[i]);
                if (avk_codec_decode(codec, data, size, reader, &values[i], err, sizeof(err)) != 0)
                        continue;
                const void *out;
                size_t out_len;
                if (avk_codec_encode_local(codec, reader, &values[i], &out, &out_len, err,
                                           sizeof(err)) != 0)
                        fuzz_fail("%s: decoded but does not encode again: %s", fuzz_record_names[i],
                                  err);
                /* out is the codec's until its next call: decode a copy. */
                void *copy = malloc(out_len);
                if (!copy)
                        fuzz_fail("out of memory");
                memcpy(copy, out, out_len);
                int rc =
                    avk_codec_decode(codec, copy, out_len, reader, &again[i], err, sizeof(err));
                free(copy);
                if (rc != 0)
                        fuzz_fail("%s: its own encoding does not decode: %s", fuzz_record_names[i],
                                  err);
                if (!avro_value_equal(&values[i], &again[i]))
                        fuzz_fail("%s: encoding and decoding again changed the value",
                                  fuzz_record_names[i]);
        }
        return 0;
}
