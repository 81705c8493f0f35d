/*
 * routing_fixture: what the routing tests decide with - the compiled-in
 * schemas, and the real directory (data/directory.json) and rules
 * (data/routing-rules.json), loaded once per test program.
 */
#ifndef AVK_TEST_ROUTING_FIXTURE_H
#define AVK_TEST_ROUTING_FIXTURE_H

#include <check.h>

#include "common/contract/directory.h"
#include "common/contract/schema.h"
#include "consumer/route/rules.h"

struct routing_fixture {
        avk_catalog_t *catalog;
        const avk_schema_t *reported; /**< DeviationReported, owned by catalog */
        avk_directory_t *dir;
        avk_rules_t *rules;
};

/**
 * @brief Loads the fixture; on failure prints why to stderr.
 * @returns 0, or -1 with what was loaded still to free by routing_fixture_free().
 */
int routing_fixture_load(struct routing_fixture *f);

/** @brief Runs suite (and frees it). @returns the number of checks that failed. */
int routing_fixture_run(Suite *suite);

/** @brief Frees what routing_fixture_load() loaded. */
void routing_fixture_free(struct routing_fixture *f);

#endif
