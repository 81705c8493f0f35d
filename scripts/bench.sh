#!/bin/sh
# Benchmark command: installs what is missing, builds an optimised tree of its
# own (build-bench: Release, no sanitizers), runs bench_codec with any
# arguments passed through (e.g. 'scripts/bench.sh -t 5' or '-c 4,7b'), the
# compiled Avro program against avsc and raw avro-c (bench/codec_vs_avsc.sh), then
# the intake benchmark against kcat (bench/intake_vs_kcat.sh), the router
# against a bare consume->produce loop (bench/router_vs_pipe.sh) and the
# gateway under wrk (bench/gateway_wrk.sh), then its look-ups
# (bench/lookup_wrk.sh); bench_tracker (the tracker's core with a million open
# deviations) and bench_view (the gateway's view with a million) run between.
# Timings on a shared machine vary: compare runs made back to back.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j2 --target bench_codec bench_tracker bench_view bench_router raw_pipe \
        avvik >/dev/null
./build-bench/bench/bench_codec "$@"
echo
sh bench/codec_vs_avsc.sh ./build-bench
echo
./build-bench/bench/bench_tracker
echo
./build-bench/bench/bench_view
echo
sh bench/intake_vs_kcat.sh ./build-bench/avvik
echo
sh bench/router_vs_pipe.sh ./build-bench
echo
sh bench/gateway_wrk.sh ./build-bench/avvik
echo
sh bench/lookup_wrk.sh ./build-bench/avvik
