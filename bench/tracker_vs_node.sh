#!/bin/sh
# Memory per open deviation of the tracker at 1,000,000 open deviations: its
# core and each deviation's filing as the feedback module keeps it (unit and
# reply_reference; bench_tracker, the heap in use by mallinfo2) against Node:
# a Map of small objects holding the same (bench/tracker_node.js, the V8 heap
# in use after a full collection). REPS runs each, alternating; min / median
# / max and the ratio of the medians (lower is better). Target (issue 19):
# at most 300 B per open deviation.
# usage: tracker_vs_node.sh [BUILD_DIR] [REPS] [DEVIATIONS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build-bench}
reps=${2:-5}
count=${3:-1000000}
work=$(mktemp -d)
. "$here/lib.sh"
node_modules # nodejs, when missing

side_a() {
        b=$("$build/bench/bench_tracker" "$count" | sed -n 's/.*memory per open deviation with its filing (feedback): \([0-9.]*\) B.*/\1/p')
        [ -n "$b" ] || { echo "tracker_vs_node: bench_tracker gave no figure" >&2; exit 1; }
        echo "$b" >>"$work/a"
        # shellcheck disable=SC2154 # i: the repetition, set by alternate (bench/lib.sh)
        printf '  run %d  %-28s %7.1f B per open deviation\n' "$i" "avvik tracker with filings" "$b"
}
side_b() {
        b=$(node --expose-gc "$here/tracker_node.js" "$count" | awk '{ print $2 }')
        [ -n "$b" ] || { echo "tracker_vs_node: tracker_node.js gave no figure" >&2; exit 1; }
        echo "$b" >>"$work/b"
        printf '  run %d  %-28s %7.1f B per open deviation\n' "$i" "Node Map of small objects" "$b"
}

echo "== tracker memory per open deviation at $count (target: at most 300 B)"
alternate "$reps"
verdict "tracker memory per open deviation at $count" - "avvik tracker with filings" \
        "Node Map of small objects" B lower
[ "$(echo "$(median "$work/a") <= 300" | bc -l)" -eq 1 ] && v=meets || v=MISSES
echo "  avvik: median $(median "$work/a") B per open deviation ($v at most 300 B)"
