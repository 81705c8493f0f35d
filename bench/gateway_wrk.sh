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
. "$here/lib.sh"
start_sample_gateway

echo "gateway: $(nproc) cores, $connections connections, ${duration} s, wrk 2 threads," \
        "document of $(wc -c <"$work/template") bytes"
wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$here/gateway_wrk.lua" "$url" \
        -- "$work/template" "$token" | grep -E "Requests/sec|p50|non-2xx"
answered=$(curl -s "$url/metrics" | awk '/^avk_gateway_requests_total.*code="202"/ {s += $2} END {print s + 0}')
stop_gateway
# The embedded broker keeps only the newest ~5 MB a partition, so records
# are counted by the partitions' end offsets, not read back.
in_kafka=0
partitions=$(kcat -b "$(cat "$bs")" -L -J -t deviation.reported | jq '.topics[0].partitions | length')
for p in $(seq 0 $((partitions - 1))); do
        end=$(kcat -b "$(cat "$bs")" -Q -t "deviation.reported:$p:-1" | awk '{print $NF}')
        in_kafka=$((in_kafka + end))
done
echo "answered 202: $answered; records in Kafka (sum of end offsets): $in_kafka"
