#!/bin/sh
# The compiled Avro program (common/contract/avroprog.h, bench_codec cases
# 8-10) against its peers on the same DeviationReported body: Node's avsc
# (fromBuffer, toBuffer, createResolver + fromBuffer) and raw avro-c's read
# (case 7b); and its cross-version decode against its own same-version decode.
#
# Each row runs its two sides REPS times, alternately (the first side first in
# odd repetitions, second in even ones), each a window of SECONDS after a
# warm-up, and prints every run, min / median / max of each side, the ratio of
# the medians against the issue's target, and the load average before and
# after: these 2-core machines are shared, so read the ratio, not one figure.
# Installs nodejs/npm (apt) and avsc (npm, into AVK_NODE_DIR) when missing.
# usage: codec_vs_avsc.sh [BUILD_DIR] [SECONDS] [REPS]
#   BUILD_DIR: a Release tree with bench_codec built (default build-bench,
#   as scripts/bench.sh makes it)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build-bench}
secs=${2:-2}
reps=${3:-5}
bench_codec=$build/bench/bench_codec
node_dir=${AVK_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/avvik-bench-node}
work=$(mktemp -d)
. "$here/lib.sh" # median; removes $work on exit

[ -x "$bench_codec" ] || { echo "codec_vs_avsc: no $bench_codec: build a Release tree" >&2; exit 1; }
if ! command -v node >/dev/null; then
        apt-get install -y nodejs npm >/dev/null
fi
if ! NODE_PATH=$node_dir/node_modules node -e "require('avsc')" 2>/dev/null; then
        mkdir -p "$node_dir"
        npm install --prefix "$node_dir" --no-audit --no-fund avsc >/dev/null
fi
schema=$here/../schemas/deviation_reported.avsc
body=$work/body.avro
"$bench_codec" -t 0 -c 8 -o "$body" >"$work/setup" || { cat "$work/setup"; exit 1; }

# One run of a side, printing records per second: "c ID" is bench_codec's case
# ID, "avsc MODE" codec_avsc.js in MODE.
run() {
        case $1 in
        c) "$bench_codec" -t "$secs" -c "$2" | awk -v id="$2" '$1 == id { print $(NF - 3) }' ;;
        avsc) NODE_PATH=$node_dir/node_modules node "$here/codec_avsc.js" "$schema" "$body" "$2" \
                "$secs" | awk '{ print $2 }' ;;
        esac
}

stats() { # stats FILE NAME: prints NAME's min, median and max; the median into $work/median
        median "$1" >"$work/median"
        printf '  %-36s min %9.0f  median %9.0f  max %9.0f\n' "$2" "$(sort -n "$1" | head -n 1)" \
                "$(cat "$work/median")" "$(sort -n "$1" | tail -n 1)"
}

# row TITLE TARGET A_NAME A_SIDE A_ARG B_NAME B_SIDE B_ARG: ratio A/B of
# medians, against TARGET ("-": none, a figure for reference)
row() {
        title=$1 target=$2 a_name=$3 a_side=$4 a_arg=$5 b_name=$6 b_side=$7 b_arg=$8
        : >"$work/a"
        : >"$work/b"
        if [ "$target" = - ]; then
                echo "== $title (for reference, no target)"
        else
                echo "== $title (target: at least ${target}x)"
        fi
        echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
        i=1
        while [ "$i" -le "$reps" ]; do
                if [ $((i % 2)) -eq 1 ]; then order="a b"; else order="b a"; fi
                for side in $order; do
                        if [ "$side" = a ]; then
                                rate=$(run "$a_side" "$a_arg") name=$a_name
                        else
                                rate=$(run "$b_side" "$b_arg") name=$b_name
                        fi
                        [ -n "$rate" ] || { echo "codec_vs_avsc: $name gave no figure" >&2; exit 1; }
                        echo "$rate" >>"$work/$side"
                        printf '  run %d  %-34s %10.0f rec/s\n' "$i" "$name" "$rate"
                done
                i=$((i + 1))
        done
        stats "$work/a" "$a_name"
        a_median=$(cat "$work/median")
        stats "$work/b" "$b_name"
        ratio=$(echo "$a_median / $(cat "$work/median")" | bc -l)
        if [ "$target" = - ]; then
                verdict="no target"
        elif [ "$(echo "$ratio >= $target" | bc -l)" -eq 1 ]; then
                verdict="meets ${target}x"
        else
                verdict="BELOW ${target}x"
        fi
        printf '  ratio of medians: %.2fx (%s)\n' "$ratio" "$verdict"
        echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo
}

head -n 2 "$work/setup"
echo "node $(node --version), avsc $(NODE_PATH=$node_dir/node_modules node -p "require('avsc/package.json').version");" \
        "$reps repetitions of ${secs} s windows per side, alternating; nproc $(nproc)"
echo
row "decode: avroprog vs avsc fromBuffer" 2 "avroprog decode (case 8)" c 8 \
        "avsc Type.fromBuffer" avsc decode
row "decode: avroprog vs raw avro-c read" 1.5 "avroprog decode (case 8)" c 8 \
        "avro-c avro_value_read (case 7b)" c 7b
row "encode: avroprog vs avsc toBuffer" 4 "avroprog encode (case 9)" c 9 \
        "avsc Type.toBuffer" avsc encode
row "cross-version decode v1 -> v2 vs same-version decode" 0.8 \
        "avroprog decode v1 -> v2 (case 10)" c 10 "avroprog decode (case 8)" c 8
row "cross-version decode: avroprog vs avsc createResolver" - \
        "avroprog decode v1 -> v2 (case 10)" c 10 "avsc fromBuffer with resolver" avsc resolve
