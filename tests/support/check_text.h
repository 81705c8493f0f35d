/*
 * check_text: assertions on error texts, for tests that show what a caller is
 * told when something fails.
 */
#ifndef AVK_TEST_CHECK_TEXT_H
#define AVK_TEST_CHECK_TEXT_H

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "common/util/errors.h"

/** Fails unless text contains part, printing both. */
#define ck_assert_contains(text, part)                                                             \
        ck_assert_msg(strstr((text), (part)) != NULL, "\"%s\" does not contain \"%s\"", (text),    \
                      (part))

/** Fails when text contains part, printing both. */
#define ck_assert_not_contains(text, part)                                                         \
        ck_assert_msg(strstr((text), (part)) == NULL, "\"%s\" contains \"%s\"", (text), (part))

/** Fails unless one of errs is exactly "file: rest", listing them all. */
static inline void ck_assert_error_at(const struct avk_errors *errs, const char *file,
                                      const char *rest)
{
        char want[AVK_ERROR_MSG_SIZE], all[8192];

        snprintf(want, sizeof(want), "%s: %s", file, rest);
        for (size_t i = 0; i < errs->cnt; i++) {
                if (strcmp(errs->msg[i], want) == 0)
                        return;
        }
        ck_abort_msg("no error \"%s\" among: %s", want, avk_errors_join(errs, all, sizeof(all)));
}

#endif
