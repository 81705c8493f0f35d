/*
 * check_text: assertions on error texts, for tests that show what a caller is
 * told when something fails.
 */
#ifndef AVK_TEST_CHECK_TEXT_H
#define AVK_TEST_CHECK_TEXT_H

#include <check.h>
#include <string.h>

/** Fails unless text contains part, printing both. */
#define ck_assert_contains(text, part)                                                             \
        ck_assert_msg(strstr((text), (part)) != NULL, "\"%s\" does not contain \"%s\"", (text),    \
                      (part))

/** Fails when text contains part, printing both. */
#define ck_assert_not_contains(text, part)                                                         \
        ck_assert_msg(strstr((text), (part)) == NULL, "\"%s\" contains \"%s\"", (text), (part))

#endif
