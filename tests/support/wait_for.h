/*
 * wait_for: polling a condition a service thread brings about, up to a
 * deadline, in integration tests that run a service against the mock
 * cluster. The deadline only bounds a failing test: a passing one waits as
 * long as the condition takes, and nothing asserts on time.
 */
#ifndef AVK_TEST_WAIT_FOR_H
#define AVK_TEST_WAIT_FOR_H

#include <stdint.h>
#include <unistd.h>

#include <check.h>

/** @brief CLOCK_MONOTONIC in milliseconds. */
int64_t wait_for_now_ms(void);

/** Waits up to timeout_ms for expr to reach want, then fails the test naming expr if it did not. */
#define WAIT_FOR_MS(expr, want, timeout_ms)                                                        \
        do {                                                                                       \
                int64_t until_ = wait_for_now_ms() + (timeout_ms);                                 \
                while ((int64_t)(expr) < (int64_t)(want) && wait_for_now_ms() < until_)            \
                        usleep(20000);                                                             \
                ck_assert_msg((int64_t)(expr) >= (int64_t)(want), "%s: %lld, want %lld", #expr,    \
                              (long long)(expr), (long long)(want));                               \
        } while (0)

#endif
