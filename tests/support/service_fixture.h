/*
 * service_fixture: what a test of a service against the in-process mock
 * cluster sets up first and takes down last - a one-broker cluster with the
 * settings such tests want, a temporary directory, the built-in catalog and a
 * codec to write the service's inputs with (tests/support/codec_fixture.h).
 */
#ifndef AVK_TEST_SERVICE_FIXTURE_H
#define AVK_TEST_SERVICE_FIXTURE_H

#include "common/contract/codec.h"
#include "common/contract/schema.h"
#include "tests/support/mock_kafka.h"

struct service_fixture {
        struct mock_kafka mk;
        char workdir[64];
        avk_catalog_t *catalog;
        avk_codec_t *codec;
};

/**
 * @brief Starts the cluster (kafka.fetch.wait.max.ms=10 so that records
 * arrive at once, kafka.session.timeout.ms=6000, kafka.log_level=3), makes
 * /tmp/PREFIX-<random>, the catalog and the codec; a failure fails the test.
 */
void service_fixture_start(struct service_fixture *f, const char *prefix);

/** @brief Frees the codec and catalog, stops the cluster and removes the directory. */
void service_fixture_stop(struct service_fixture *f);

#endif
