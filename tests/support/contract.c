/* The contract fixture: see contract.h. */
#include "tests/support/contract.h"

#include <check.h>

const struct avk_json_opts contract_intake = {.flags = AVK_JSON_VALIDATE,
                                              .now_ms = CONTRACT_NOW_MS,
                                              .skew_ms = 300000,
                                              .today_ymd = 20261123};

void contract_open(avk_catalog_t **catalog, const avk_schema_t **reported, avro_value_t *value)
{
        char err[256];
        *catalog = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(*catalog != NULL, "%s", err);
        *reported = avk_catalog_by_name(*catalog, "DeviationReported");
        ck_assert_ptr_nonnull(*reported);
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(*reported), value), 0);
}

void contract_close(avk_catalog_t *catalog, avro_value_t *value)
{
        avro_value_decref(value);
        avk_catalog_destroy(catalog);
}
