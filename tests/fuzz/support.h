/*
 * What the fuzz harnesses share: the built-in contract (plus an older
 * version of DeviationReported, so that decoding projects between versions),
 * intake options on a fixed clock, so that a finding reproduces on any day,
 * and the end of a run that found a fault.
 */
#ifndef AVK_FUZZ_SUPPORT_H
#define AVK_FUZZ_SUPPORT_H

#include <stddef.h>

#include "common/contract/json.h"
#include "common/contract/schema.h"

/** The record types of the contract, in a fixed order (a selector byte indexes it). */
extern const char *const fuzz_record_names[];
extern const size_t fuzz_record_count;

/** Intake validation at 2026-11-23T12:00:00Z, 5 minutes of clock skew. */
extern const struct avk_json_opts fuzz_intake;

/**
 * @brief The built-in catalog with tests/data/deviation_reported_v2.avsc
 * added; made on the first call and kept for the process (aborts when it
 * cannot be made).
 */
const avk_catalog_t *fuzz_catalog(void);

/** @brief The older DeviationReported of fuzz_catalog(), a writer the decoder projects from. */
const avk_schema_t *fuzz_older_reported(void);

/** @brief Writes "fuzz: " and the message to stderr and aborts: libFuzzer keeps the input. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
