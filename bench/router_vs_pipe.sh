#!/bin/sh
# Router throughput against a bare librdkafka consume->produce loop
# (raw_pipe) on the same embedded broker, in one run, over the same COUNT
# deviations of topic.reported; then the end-to-end latency from the
# reporter's acknowledgement to the routed record being readable, at RATE
# deviations per second; the numbers shown are of the second raw_pipe run and
# of the router run between the two. The router writes three records per deviation (the
# routed event and the receiver's two inbox copies), raw_pipe one.
# usage: router_vs_pipe.sh BUILD_DIR [COUNT] [RATE] [LATENCY_COUNT]
set -eu
build=$1
count=${2:-20000}
rate=${3:-1000}
latency_count=${4:-10000}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
bs=$work/bootstrap.servers
"$build/avvik" broker -f "$bs" -X directory.file="$src/data/directory.json" 2>/dev/null &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$work"' EXIT INT TERM
while [ ! -s "$bs" ]; do sleep 0.1; done

# COUNT distinct deviations without a named receiver (the rules decide).
line=$(jq -c 'del(.deviation_id) | .receiver = {}' "$src/deploy/samples/01-discharge-information-missing.json")
awk -v n="$count" -v doc="$line" 'BEGIN {
        for (i = 0; i < n; i++)
                printf "{\"deviation_id\":\"00000000-0000-4000-8000-%012d\",%s\n", i, substr(doc, 2)
}' >"$work/deviations.ndjson"
"$build/avvik" report -X bootstrap.file="$bs" "$work/deviations.ndjson" >/dev/null

# Each twice, alternating, so that neither gains from going second.
"$build/bench/raw_pipe" "$(cat "$bs")" deviation.reported deviation.analysis "$count" >/dev/null
router=$("$build/bench/bench_router" throughput "$bs" "$src" "$count" 2>/dev/null)
pipe=$("$build/bench/raw_pipe" "$(cat "$bs")" deviation.reported deviation.analysis "$count")
echo "$pipe"
echo "$router"
p=$(echo "$pipe" | sed -n 's/.*: \([0-9]*\) records\/s.*/\1/p')
r=$(echo "$router" | sed -n 's/.*: \([0-9]*\) records\/s.*/\1/p')
echo "router / raw_pipe: $(echo "scale=2; $r / $p" | bc) (target at least 0.5)"
"$build/bench/bench_router" latency "$bs" "$src" "$rate" "$latency_count" 2>/dev/null
