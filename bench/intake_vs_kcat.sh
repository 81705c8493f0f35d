#!/bin/sh
# Intake rate of 'avvik report' (NDJSON: parse, validate, encode, produce,
# wait for every acknowledgement) against kcat -P sending the same number of
# messages of the same size to the same embedded broker, in one run. Both
# produce idempotently with acks=all.
# usage: intake_vs_kcat.sh AVVIK_BINARY [COUNT]
set -eu
avvik=$1
count=${2:-50000}
work=$(mktemp -d)
bs=$work/bootstrap.servers
"$avvik" broker -f "$bs" 2>/dev/null &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$work"' EXIT INT TERM
while [ ! -s "$bs" ]; do sleep 0.1; done
servers=$(cat "$bs")
here=$(dirname "$0")

# COUNT distinct deviations: the sample with a fresh deviation_id a line.
line=$(jq -c 'del(.deviation_id)' "$here/../deploy/samples/02-no-physician-reachable.json")
awk -v n="$count" -v doc="$line" 'BEGIN {
        for (i = 0; i < n; i++)
                printf "{\"deviation_id\":\"00000000-0000-4000-8000-%012d\",%s\n", i, substr(doc, 2)
}' >"$work/deviations.ndjson"

now() { date +%s.%N; }

start=$(now)
"$avvik" report -X bootstrap.file="$bs" "$work/deviations.ndjson" >"$work/results"
avvik_s=$(echo "$(now) - $start" | bc)
accepted=$(grep -c "	accepted	" "$work/results")
[ "$accepted" -eq "$count" ] || { echo "only $accepted of $count accepted" >&2; exit 1; }

# The same number of messages with the same keys, each value as large as one
# framed record (keys spread them over the partitions as avvik's are; without
# keys librdkafka's sticky partitioner fills one partition at a time, past
# what the embedded broker keeps).
size=$(kcat -C -b "$servers" -t deviation.reported -o beginning -c 1 -e -q -f '%S')
awk -v n="$count" -v size="$size" 'BEGIN {
        s = sprintf("%*s", size, ""); gsub(/ /, "x", s)
        for (i = 0; i < n; i++) printf "00000000-0000-4000-8000-%012d\t%s\n", i, s
}' >"$work/raw"
start=$(now)
kcat -P -b "$servers" -t deviation.response -K '\t' -X enable.idempotence=true -X acks=all \
        -l "$work/raw"
kcat_s=$(echo "$(now) - $start" | bc)
got=$(kcat -C -b "$servers" -t deviation.response -o beginning -e -q -f 'x\n' | wc -l)
[ "$got" -eq "$count" ] || { echo "kcat delivered $got of $count" >&2; exit 1; }

echo "messages: $count of $size bytes (framed Avro), embedded broker, $(nproc) cores"
printf 'avvik report (NDJSON, validate+encode+produce+ack): %8.0f msg/s  (%.2f s)\n' \
        "$(echo "$count / $avvik_s" | bc -l)" "$avvik_s"
printf 'kcat -P (same count and size, idempotent, acks=all): %8.0f msg/s  (%.2f s)\n' \
        "$(echo "$count / $kcat_s" | bc -l)" "$kcat_s"
printf 'ratio avvik/kcat: %.2f (target at least 0.5)\n' "$(echo "$kcat_s / $avvik_s" | bc -l)"
