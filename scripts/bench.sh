#!/bin/sh
# Benchmark command: installs what is missing, builds an optimised tree of its
# own (build-bench: Release, no sanitizers) and runs every row of issue 19's
# table, each against its peer or limit in the same run, alternating sides
# (bench/lib.sh), then prints the rows as one table (bench/RESULTS.md keeps
# the latest, with the commands):
#   bench/codec_vs_avsc.sh    the compiled codec and the JSON intake vs Node's avsc
#   bench/intake_vs_kcat.sh   avvik report vs kcat -P, 200,000 documents
#   bench/router_vs_pipe.sh   the router vs a one-copy raw pipe, and its rebuild
#   bench/gateway_wrk.sh      the gateway vs a bare libmicrohttpd server under wrk: its
#                             capacity and CPU a request at 256 connections, its p99
#                             at a fixed 5,000 requests/s
#   bench/tracker_vs_node.sh  tracker memory per open deviation vs a Node Map
#   bench/idle_cpu.sh         idle avvik route / track vs an idle kcat consumer
# and, with no peer, bench_view (the gateway's view with a million
# deviations) and bench/lookup_wrk.sh (look-up latency at 2,000/s).
# Each script also runs alone (see its usage line). Timings are never part
# of a pass/fail test; on a shared machine read the ratios and the load.
# usage: scripts/bench.sh [REPS]   (default 5)
set -eu
cd "$(dirname "$0")/.."
reps=${1:-5}
sh scripts/deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j2 --target bench_codec bench_tracker bench_view bench_router raw_pipe \
        bare_http avvik >/dev/null
table=$(mktemp)
trap 'rm -f "$table"' EXIT INT TERM
export AVK_BENCH_TABLE="$table"
echo "$(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')," \
        "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $reps alternating runs a side"
echo
sh bench/codec_vs_avsc.sh ./build-bench 2 "$reps"
sh bench/intake_vs_kcat.sh ./build-bench/avvik 200000 "$reps"
echo
sh bench/router_vs_pipe.sh ./build-bench 1200000 "$reps"
echo
sh bench/gateway_wrk.sh ./build-bench 10 256 "$reps"
echo
sh bench/tracker_vs_node.sh ./build-bench "$reps"
echo
sh bench/idle_cpu.sh ./build-bench/avvik 30 "$reps"
echo
./build-bench/bench/bench_view
echo
sh bench/lookup_wrk.sh ./build-bench/avvik
echo
echo "| Row | avvik: min / median / max | peer or limit: min / median / max | Ratio of medians | Load after |"
echo "| --- | --- | --- | --- | --- |"
cat "$table"
