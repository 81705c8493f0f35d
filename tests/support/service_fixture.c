/* service_fixture: see service_fixture.h. */
#include "tests/support/service_fixture.h"

#include <check.h>

#include "tests/support/codec_fixture.h"
#include "tests/support/test_data.h"

void service_fixture_start(struct service_fixture *f, const char *prefix)
{
        char err[512];
        mock_kafka_start(&f->mk, 1);
        mock_kafka_set(&f->mk, "kafka.fetch.wait.max.ms", "10");
        mock_kafka_set(&f->mk, "kafka.session.timeout.ms", "6000");
        mock_kafka_set(&f->mk, "kafka.log_level", "3");
        ck_assert_ptr_nonnull(test_data_temp_dir(prefix, f->workdir, sizeof(f->workdir)));
        f->catalog = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(f->catalog != NULL, "%s", err);
        f->codec = codec_fixture_codec(f->catalog, NULL);
}

void service_fixture_stop(struct service_fixture *f)
{
        avk_codec_destroy(f->codec);
        avk_catalog_destroy(f->catalog);
        mock_kafka_stop(&f->mk);
        ck_assert_int_eq(test_data_remove_dir(f->workdir), 0);
}
