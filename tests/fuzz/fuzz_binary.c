/*
 * The Avro bounds check (common/contract/binary.c) against avro-c: the first
 * byte picks a record type of the contract, the rest is its Avro binary.
 * Whatever avk_binary_check() accepts, avro-c must read without error, since
 * avvik hands avro-c only what the check passed; and nothing may make the
 * check itself read out of bounds (ASan) or misbehave (UBSan).
 */
#include <stddef.h>
#include <stdint.h>

#include <avro.h>

#include "common/contract/binary.h"
#include "tests/fuzz/support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        const avk_schema_t *schema =
            avk_catalog_by_name(fuzz_catalog(), fuzz_record_names[data[0] % fuzz_record_count]);
        char err[512];
        if (avk_binary_check(avk_schema_avro(schema), data + 1, size - 1, err, sizeof(err)) != 0)
                return 0;
        avro_value_t value;
        avro_reader_t reader = avro_reader_memory((const char *)data + 1, (int64_t)(size - 1));
        if (!reader || avro_generic_value_new(avk_schema_iface(schema), &value) != 0)
                fuzz_fail("out of memory");
        if (avro_value_read(reader, &value) != 0)
                fuzz_fail("%s: the bounds check passed %zu bytes that avro-c cannot read: %s",
                          fuzz_record_names[data[0] % fuzz_record_count], size - 1,
                          avro_strerror());
        avro_value_decref(&value);
        avro_reader_free(reader);
        return 0;
}
