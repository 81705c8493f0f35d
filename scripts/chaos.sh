#!/bin/sh
# The fault test of the whole system (tests/cli/chaos.sh; docs/operations.md,
# "Fault test"): builds the sanitized tree as scripts/test.sh does and runs
# cli_chaos_short (300 deviations, 5 kills, 1 registry outage; in the test
# command too, label integration) and cli_chaos_long (3,000 deviations, 40
# kills, 8 outages; label chaos, outside it) - or those whose name matches
# REGEX.
# CHAOS_SEED=<seed> replays a run's random choices.
#   scripts/chaos.sh [REGEX]
set -eu
cd "$(dirname "$0")/.."
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DAVK_SANITIZE=ON >/dev/null
cmake --build build-test -j"$(nproc)" --target avvik avk_test_registry
ctest --test-dir build-test -R "^cli_chaos_.*${1:-}" --output-on-failure --verbose
