/*
 * The FHIR mapping (producer/intake/fhir.c) as the gateway runs it on a
 * filing in application/fhir+json: parse, map the AdverseEvent to a
 * DeviationReported document, validate that under the intake's rules. A
 * mapping answers a document or errors, never both and never neither; a
 * document the contract accepts converts back to JSON.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <avro.h>

#include "common/contract/jsonparse.h"
#include "producer/intake/fhir.h"
#include "tests/fuzz/support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const avk_schema_t *reported;
static avro_value_t value;

/* Released at exit, for LeakSanitizer (see fuzz_codec.c). */
static void release(void)
{
        avro_value_decref(&value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!reported) {
                reported = avk_catalog_by_name(fuzz_catalog(), "DeviationReported");
                if (avro_generic_value_new(avk_schema_iface(reported), &value) != 0)
                        fuzz_fail("out of memory");
                atexit(release);
        }
        char reason[256];
        json_t *resource = avk_json_parse((const char *)data, size, reason, sizeof(reason));
        if (!resource)
                return 0;
        struct avk_errors errs;
        avk_errors_init(&errs);
        json_t *doc = avk_fhir_to_deviation(resource, &errs);
        json_decref(resource);
        if ((doc == NULL) == (avk_errors_total(&errs) == 0))
                fuzz_fail("the mapping answered %s with %zu errors", doc ? "a document" : "nothing",
                          avk_errors_total(&errs));
        if (!doc)
                return 0;
        avk_errors_init(&errs);
        if (avk_json_to_avro(reported, doc, &value, &fuzz_intake, &errs) == 0) {
                json_t *back = avk_json_from_avro(reported, &value, reason, sizeof(reason));
                if (!back)
                        fuzz_fail("an accepted deviation does not convert back: %s", reason);
                json_decref(back);
        }
        json_decref(doc);
        return 0;
}
