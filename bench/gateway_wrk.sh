#!/bin/sh
# Gateway requests per second and latency under wrk: 64 connections filing
# new deviations (POST /v1/deviations, each 202 only after Kafka acknowledged
# it) against 'avvik gateway' on the embedded broker, for DURATION seconds;
# then every answered id is counted in Kafka. Target (issue 3): p99 at most
# 50 ms at 5,000 requests per second on a 2-core machine.
# usage: gateway_wrk.sh AVVIK_BINARY [DURATION_S] [CONNECTIONS]
set -eu
avvik=$1
duration=${2:-15}
connections=${3:-64}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
bs=$work/bootstrap.servers
broker_pid=
gateway_pid=
cleanup() {
        for pid in $gateway_pid $broker_pid; do kill "$pid" 2>/dev/null || true; done
        rm -rf "$work"
}
trap cleanup EXIT
"$avvik" broker -f "$bs" 2>/dev/null &
broker_pid=$!
while [ ! -s "$bs" ]; do sleep 0.1; done
sample=$here/../deploy/samples/01-discharge-information-missing.json
"$avvik" token "$(jq -r .reporter.party "$sample")" bench >"$work/token"
sed -n 2p "$work/token" >"$work/tokens"
jq -c '.deviation_id = "@ID@"' "$sample" >"$work/template"
"$avvik" gateway -X bootstrap.file="$bs" -X gateway.listen=127.0.0.1:0 \
        -X gateway.port.file="$work/port" -X gateway.tokens.file="$work/tokens" \
        -X log.level=warn 2>"$work/gateway.log" &
gateway_pid=$!
while [ ! -s "$work/port" ]; do sleep 0.1; done
url=http://127.0.0.1:$(cat "$work/port")
until curl -sf "$url/readyz" >/dev/null; do sleep 0.1; done

echo "gateway: $(nproc) cores, $connections connections, ${duration} s, wrk 2 threads," \
        "document of $(wc -c <"$work/template") bytes"
wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$here/gateway_wrk.lua" "$url" \
        -- "$work/template" "$(sed -n 1p "$work/token")" | grep -E "Requests/sec|p50|non-2xx"
answered=$(curl -s "$url/metrics" | awk '/^avk_gateway_requests_total.*code="202"/ {s += $2} END {print s + 0}')
kill -TERM "$gateway_pid"
wait "$gateway_pid" || true
gateway_pid=
# The embedded broker keeps only the newest ~5 MB a partition, so records
# are counted by the partitions' end offsets, not read back.
in_kafka=0
partitions=$(kcat -b "$(cat "$bs")" -L -J -t deviation.reported | jq '.topics[0].partitions | length')
for p in $(seq 0 $((partitions - 1))); do
        end=$(kcat -b "$(cat "$bs")" -Q -t "deviation.reported:$p:-1" | awk '{print $NF}')
        in_kafka=$((in_kafka + end))
done
echo "answered 202: $answered; records in Kafka (sum of end offsets): $in_kafka"
