#!/bin/sh
# Intake rate of 'avvik report' (NDJSON: parse, validate, encode, produce,
# wait for every acknowledgement) against kcat -P sending the same number of
# messages of the same size and keys to the same embedded broker. Both
# produce idempotently with acks=all.
#
# One run on these shared 2-core machines swings by a third either way, so
# the two are measured REPS times, alternately, each repetition on a fresh
# broker (avvik first in odd ones, kcat first in even ones), and the ratio is
# that of the medians; every run is printed.
# usage: intake_vs_kcat.sh AVVIK_BINARY [COUNT] [REPS]
set -eu
avvik=$1
count=${2:-50000}
reps=${3:-5}
work=$(mktemp -d)
bs=$work/bootstrap.servers
here=$(dirname "$0")
. "$here/lib.sh"

line=$(jq -c 'del(.deviation_id)' "$here/../deploy/samples/02-no-physician-reachable.json")
awk -v n="$count" -v doc="$line" 'BEGIN {
        for (i = 0; i < n; i++)
                printf "{\"deviation_id\":\"00000000-0000-4000-8000-%012d\",%s\n", i, substr(doc, 2)
}' >"$work/deviations.ndjson"

now() { date +%s.%N; }

run_avvik() {
        start=$(now)
        "$avvik" report -X bootstrap.file="$bs" "$work/deviations.ndjson" >"$work/results"
        s=$(echo "$(now) - $start" | bc)
        accepted=$(grep -c "	accepted	" "$work/results")
        [ "$accepted" -eq "$count" ] || { echo "only $accepted of $count accepted" >&2; exit 1; }
        echo "$count / $s" | bc -l >>"$work/avvik.rates"
        printf 'avvik report (NDJSON, validate+encode+produce+ack): %8.0f msg/s  (%.2f s)\n' \
                "$(echo "$count / $s" | bc -l)" "$s"
}

# The raw messages: the framed Avro size of a filed deviation, the same keys.
raw_messages() {
        head -n 1 "$work/deviations.ndjson" | "$avvik" report -X bootstrap.file="$bs" - >/dev/null
        size=$(kcat -C -b "$(cat "$bs")" -t deviation.reported -o beginning -c 1 -e -q -f '%S')
        awk -v n="$count" -v size="$size" 'BEGIN {
                s = sprintf("%*s", size, ""); gsub(/ /, "x", s)
                for (i = 0; i < n; i++) printf "00000000-0000-4000-8000-%012d\t%s\n", i, s
        }' >"$work/raw"
        echo "messages: $count of $size bytes (framed Avro), embedded broker, $(nproc) cores"
}

run_kcat() {
        start=$(now)
        kcat -P -b "$(cat "$bs")" -t deviation.response -K '\t' -X enable.idempotence=true \
                -X acks=all -l "$work/raw"
        s=$(echo "$(now) - $start" | bc)
        got=$(kcat -C -b "$(cat "$bs")" -t deviation.response -o beginning -e -q -f 'x\n' | wc -l)
        [ "$got" -eq "$count" ] || { echo "kcat delivered $got of $count" >&2; exit 1; }
        echo "$count / $s" | bc -l >>"$work/kcat.rates"
        printf 'kcat -P (same count and size, idempotent, acks=all):   %8.0f msg/s  (%.2f s)\n' \
                "$(echo "$count / $s" | bc -l)" "$s"
}

start_broker
raw_messages
stop_broker
i=1
while [ $i -le "$reps" ]; do
        start_broker
        if [ $((i % 2)) -eq 1 ]; then
                run_avvik
                run_kcat
        else
                run_kcat
                run_avvik
        fi
        stop_broker
        i=$((i + 1))
done
a=$(median "$work/avvik.rates")
k=$(median "$work/kcat.rates")
printf 'median of %d: avvik %.0f msg/s, kcat %.0f msg/s\n' "$reps" "$a" "$k"
printf 'ratio avvik/kcat: %.2f (target at least 0.5)\n' "$(echo "$a / $k" | bc -l)"
