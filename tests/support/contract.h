/*
 * The contract as the JSON tests use it: the built-in catalog, the
 * DeviationReported schema with a value to fill, and intake options on a
 * fixed clock, so "past" checks and personal-id centuries do not depend on
 * the day the tests run.
 */
#ifndef AVK_TEST_CONTRACT_H
#define AVK_TEST_CONTRACT_H

#include <avro.h>

#include "common/contract/json.h"
#include "common/contract/schema.h"

/* 2026-11-23T12:00:00Z */
#define CONTRACT_NOW_MS 1795435200000LL

/** Intake validation at CONTRACT_NOW_MS, 5 minutes of clock skew. */
extern const struct avk_json_opts contract_intake;

/** Opens the built-in catalog, finds DeviationReported and makes a value of it. */
void contract_open(avk_catalog_t **catalog, const avk_schema_t **reported, avro_value_t *value);

void contract_close(avk_catalog_t *catalog, avro_value_t *value);

#endif
