#!/bin/sh
# Router throughput against a bare librdkafka consume->produce loop
# (bench/raw_pipe.c) on the same embedded broker, then the end-to-end latency
# at RATE deviations per second.
#
# Fair by construction:
# - Every repetition starts a fresh broker and files the same COUNT
#   deviations (spread by key over topic.reported's 6 partitions); the
#   router and the pipes then each read all of them in a consumer group of
#   their own. A fresh broker per repetition, because the router rebuilds its
#   state from topic.reported and topic.routed at assignment: on a broker
#   that already holds its outputs it would replay instead of route.
# - The same window on both sides: from the first input taken from the
#   consumer to the COUNT-th input whose outputs Kafka acknowledged. The
#   group join, the router's state rebuild and the producers' start are
#   outside it; both ask for all topics' metadata through their producer
#   before consuming, so no first output waits for librdkafka's topic scan.
# - The same producer settings (idempotent, so acks=all; linger.ms=2), the
#   same consumer settings (range, fetch.wait.max.ms=10, offsets stored after
#   the outputs are acknowledged and auto-committed every second).
# - The router writes one record per deviation (the routed event; the
#   receiver's inbox copies are avvik notify's, docs/notify.md), the pipe one
#   copy to one topic: the yardstick of issue 4.6.
# - Order alternates between repetitions; the median of REPS is reported.
# - The mock keeps about 5 MB per partition and drops the oldest data past
#   it: the script measures the bytes per partition of the input and of the
#   output and refuses a COUNT past 4 MB.
#
# usage: router_vs_pipe.sh BUILD_DIR [COUNT] [REPS] [RATE] [LATENCY_COUNT]
set -eu
build=$1
count=${2:-20000}
reps=${3:-5}
rate=${4:-1000}
latency_count=${5:-10000}
limit=$((4 * 1024 * 1024))
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
bs=$work/bootstrap.servers
avvik=$build/avvik
. "$src/bench/lib.sh"

# COUNT distinct deviations without a named receiver (the rules decide).
line=$(jq -c 'del(.deviation_id) | .receiver = {}' "$src/deploy/samples/01-discharge-information-missing.json")
awk -v n="$count" -v doc="$line" 'BEGIN {
        for (i = 0; i < n; i++)
                printf "{\"deviation_id\":\"00000000-0000-4000-8000-%012d\",%s\n", i, substr(doc, 2)
}' >"$work/deviations.ndjson"

# The largest partition of topic, in bytes of keys and values.
largest_partition() {
        p=0 max=0
        while [ $p -lt 6 ]; do
                b=$(kcat -C -b "$(cat "$bs")" -t "$1" -p $p -e -q -f '%K %S\n' |
                        awk '{ s += $1 + $2 } END { print s + 0 }')
                [ "$b" -gt "$max" ] && max=$b
                p=$((p + 1))
        done
        echo "$max"
}
check_size() {
        b=$(largest_partition "$1")
        echo "largest partition of $1: $b bytes"
        [ "$b" -le "$limit" ] || {
                echo "$1 holds more than 4 MB in a partition: the mock drops data past ~5 MB;" \
                        "use a smaller COUNT" >&2
                exit 1
        }
}

rate_of() { sed -n 's/.*: \([0-9]*\) records\/s.*/\1/p'; }
pipe1() {
        "$build/bench/raw_pipe" "$(cat "$bs")" deviation.reported deviation.analysis "$count" |
                tee -a "$work/log" | rate_of >>"$work/pipe1"
}
router() {
        "$build/bench/bench_router" throughput "$bs" "$src" "$count" 2>/dev/null |
                tee -a "$work/log" | rate_of >>"$work/router"
}

i=1
while [ $i -le "$reps" ]; do
        start_broker -X directory.file="$src/data/directory.json"
        "$build/avvik" report -X bootstrap.file="$bs" "$work/deviations.ndjson" >/dev/null
        if [ $((i % 2)) -eq 1 ]; then
                pipe1
                router
        else
                router
                pipe1
        fi
        if [ $i -eq 1 ]; then
                check_size deviation.reported
                check_size deviation.routed
        fi
        stop_broker
        i=$((i + 1))
done
cat "$work/log"
r=$(median "$work/router")
p1=$(median "$work/pipe1")
echo "median of $reps, $count deviations each: router $r/s; raw_pipe $p1/s"
echo "router / raw_pipe: $(echo "scale=2; $r / $p1" | bc) (target at least 0.5)"

start_broker -X directory.file="$src/data/directory.json"
"$build/bench/bench_router" latency "$bs" "$src" "$rate" "$latency_count" 2>/dev/null
stop_broker
