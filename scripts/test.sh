#!/bin/sh
# README's test command: installs what is missing, checks the code style,
# builds with AddressSanitizer and UndefinedBehaviorSanitizer, runs every test,
# then every fuzz harness for 20 s (scripts/fuzz.sh runs them longer). The
# fault test of the whole system (label chaos) runs in scripts/chaos.sh.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
echo "== style (clang-format)"
find common cli producer consumer tests bench -name '*.[ch]' -print0 |
        xargs -0 clang-format --dry-run --Werror
echo "== build (ASan + UBSan)"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DAVK_SANITIZE=ON >/dev/null
cmake --build build-test -j"$(nproc)"
echo "== build (Release: the optimiser finds warnings a Debug build does not)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$(nproc)" >/dev/null
echo "== tests"
cd build-test
# Four at a time on two cores: the integration tests mostly wait on the
# embedded broker (group joins, session timeouts), not on the CPU.
ctest --output-on-failure -j4 -LE 'known-loss|chaos'
cd ..
echo "== fuzz (clang, libFuzzer, ASan + UBSan): 20 s a harness"
sh scripts/fuzz.sh 20
