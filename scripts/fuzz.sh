#!/bin/sh
# Builds the libFuzzer harnesses of tests/fuzz with clang (its own build
# directory, build-fuzz) and runs each for SECONDS (default 600), seeded from
# real records: deploy/samples and a response for the JSON paths,
# tests/data/fhir for the FHIR mapping, those records encoded
# (seed_corpus) for the Avro check and the decoder, request heads (smuggling
# attempts among them, tests/fuzz/seeds/httphead) for the HTTP server's
# framing check. The test command runs it
# for 20 s a harness. A finding stops the run: libFuzzer prints the fault and
# writes the input to build-fuzz/findings/; rerun one with
# build-fuzz/tests/fuzz/fuzz_<name> <file>.
#   scripts/fuzz.sh [SECONDS]
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-600}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DAVK_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
bin=build-fuzz/tests/fuzz
corpus=build-fuzz/corpus
mkdir -p "$corpus/json" "$corpus/fhir" "$corpus/httphead" build-fuzz/findings
"$bin/seed_corpus" "$corpus" >/dev/null
for harness in binary codec json fhir httphead; do
        case $harness in
        json) seeds="deploy/samples tests/fuzz/seeds/json" ;;
        fhir) seeds="tests/data/fhir" ;;
        httphead) seeds="tests/fuzz/seeds/httphead" ;;
        *) seeds="" ;;
        esac
        echo "== fuzz_$harness, $seconds s"
        # shellcheck disable=SC2086 # seeds is a list of directories
        "$bin/fuzz_$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
                -max_len=65536 -print_final_stats=1 -artifact_prefix="build-fuzz/findings/$harness-" \
                "$corpus/$harness" $seeds 2>"build-fuzz/fuzz_$harness.log" ||
                { tail -n 60 "build-fuzz/fuzz_$harness.log" >&2; exit 1; }
        grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "build-fuzz/fuzz_$harness.log" |
                tr '\n' ' '
        echo
done
