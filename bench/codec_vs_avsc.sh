#!/bin/sh
# The codec against its peers on the same DeviationReported record:
# - the compiled Avro program (common/contract/avroprog.h, bench_codec cases
#   8-10) against Node's avsc (fromBuffer, toBuffer, createResolver +
#   fromBuffer) and raw avro-c's read (case 7b), and its cross-version decode
#   against its own same-version decode;
# - JSON text to validated Avro, the intake's single pass (case 1s) and the
#   tree path (case 1), against Node's JSON.parse + avsc isValid + toBuffer
#   (timestamps by Date.parse: bench/codec_avsc.js); and the single pass
#   with simdjson reading the text (1s) against yajl reading it (1y).
#
# Each row runs its two sides REPS times, alternately (bench/lib.sh), each a
# window of SECONDS after a warm-up, and prints every run, min / median / max
# of each side, the ratio of the medians against the issue's target, and the
# load average before and after: these 2-core machines are shared, so read
# the ratio, not one figure.
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
work=$(mktemp -d)
. "$here/lib.sh" # median; removes $work on exit

[ -x "$bench_codec" ] || { echo "codec_vs_avsc: no $bench_codec: build a Release tree" >&2; exit 1; }
node_modules avsc
schema=$here/../schemas/deviation_reported.avsc
body=$work/body.avro
document=$work/document.json
"$bench_codec" -t 0 -c 8 -o "$body" -j "$document" >"$work/setup" || { cat "$work/setup"; exit 1; }

# One run of a side, printing records per second: "c ID" is bench_codec's case
# ID, "avsc MODE" codec_avsc.js in MODE.
run() {
        case $1 in
        c) "$bench_codec" -t "$secs" -c "$2" | awk -v id="$2" '$1 == id { print $(NF - 3) }' ;;
        avsc) node "$here/codec_avsc.js" "$schema" "$body" \
                "$document" "$2" "$secs" | awk '{ print $2 }' ;;
        esac
}

# side A|B: one run of the row's side into $work/a or $work/b.
side() {
        if [ "$1" = a ]; then
                rate=$(run "$a_side" "$a_arg") name=$a_name
        else
                rate=$(run "$b_side" "$b_arg") name=$b_name
        fi
        [ -n "$rate" ] || { echo "codec_vs_avsc: $name gave no figure" >&2; exit 1; }
        echo "$rate" >>"$work/$1"
        # shellcheck disable=SC2154 # i: the repetition, set by alternate (bench/lib.sh)
        printf '  run %d  %-40s %10.0f rec/s\n' "$i" "$name" "$rate"
}
side_a() { side a; }
side_b() { side b; }

# row TITLE TARGET A_NAME A_SIDE A_ARG B_NAME B_SIDE B_ARG: ratio A/B of
# medians, against TARGET ("-": none, a figure for reference)
row() {
        title=$1 target=$2 a_name=$3 a_side=$4 a_arg=$5 b_name=$6 b_side=$7 b_arg=$8
        if [ "$target" = - ]; then
                echo "== $title (for reference, no target)"
        else
                echo "== $title (target: at least ${target}x)"
        fi
        alternate "$reps"
        verdict "$title" "$target" "$a_name" "$b_name" rec/s
        echo
}

head -n 2 "$work/setup"
echo "node $(node --version), avsc $(node -p "require('avsc/package.json').version");" \
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
row "JSON -> validated Avro, single pass vs Node" 3 "single pass (case 1s)" c 1s \
        "JSON.parse + isValid + toBuffer" avsc json
row "JSON -> validated Avro, tree path vs Node" - "tree path (case 1)" c 1 \
        "JSON.parse + isValid + toBuffer" avsc json
row "JSON -> validated Avro, single pass: simdjson vs yajl reading" - \
        "single pass, simdjson (case 1s)" c 1s "single pass, yajl (case 1y)" c 1y
