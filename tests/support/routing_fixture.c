/* routing_fixture: see routing_fixture.h. */
#include "tests/support/routing_fixture.h"

#include <stdio.h>
#include <string.h>

#include "common/util/errors.h"

int routing_fixture_load(struct routing_fixture *f)
{
        char errstr[512], joined[4096];
        struct avk_errors errs;

        memset(f, 0, sizeof(*f));
        avk_errors_init(&errs);
        f->catalog = avk_catalog_new_builtin(errstr, sizeof(errstr));
        if (f->catalog == NULL) {
                fprintf(stderr, "%s\n", errstr);
                return -1;
        }
        f->reported = avk_catalog_by_name(f->catalog, "DeviationReported");
        f->dir = avk_directory_load(AVK_SOURCE_DIR "/data/directory.json", 0, &errs);
        f->rules = avk_rules_load(AVK_SOURCE_DIR "/data/routing-rules.json", f->reported, &errs);
        if (f->dir == NULL || f->rules == NULL) {
                fprintf(stderr, "%s\n", avk_errors_join(&errs, joined, sizeof(joined)));
                return -1;
        }
        return 0;
}

int routing_fixture_run(Suite *suite)
{
        SRunner *sr = srunner_create(suite);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed;
}

void routing_fixture_free(struct routing_fixture *f)
{
        avk_rules_destroy(f->rules);
        avk_directory_destroy(f->dir);
        avk_catalog_destroy(f->catalog);
}
