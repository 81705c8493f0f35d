#!/bin/sh
# Look-up latency under load (issue 15): DEVIATIONS deviations filed through
# 'avvik gateway' on the embedded broker (bench/gateway_wrk.lua) and read
# back into its view, then GET /v1/deviations/{id} of random ones of them by
# the reporting party at about CONNECTIONS * 1000 / DELAY_MS requests per
# second for DURATION seconds. Target: p99 at most 20 ms at 2,000 look-ups/s
# with 100,000 deviations in the view.
# usage: lookup_wrk.sh AVVIK_BINARY [DEVIATIONS] [DURATION_S] [CONNECTIONS] [DELAY_MS]
set -eu
avvik=$1
deviations=${2:-100000}
duration=${3:-30}
connections=${4:-44}
delay_ms=${5:-20}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
bs=$work/bootstrap.servers
. "$here/lib.sh"
start_broker
sample=$here/../deploy/samples/01-discharge-information-missing.json
"$avvik" token "$(jq -r .reporter.party "$sample")" bench >"$work/token"
sed -n 2p "$work/token" >"$work/tokens"
token=$(sed -n 1p "$work/token")
jq -c '.deviation_id = "@ID@"' "$sample" >"$work/template"
"$avvik" gateway -X bootstrap.file="$bs" -X gateway.listen=127.0.0.1:0 \
        -X gateway.port.file="$work/port" -X gateway.tokens.file="$work/tokens" \
        -X log.level=warn 2>"$work/gateway.log" &
keep_process $!
while [ ! -s "$work/port" ]; do sleep 0.1; done
url=http://127.0.0.1:$(cat "$work/port")
until curl -sf "$url/readyz" >/dev/null; do sleep 0.1; done
view() { curl -s "$url/metrics" | awk '/^avk_gateway_view_deviations / {print $2}'; }

# Filed until the view holds them all; each wrk thread files its own ids in
# order, and the look-ups stay below 90% of a thread's share.
start=$(date +%s)
wrk -t2 -c64 -d600s -s "$here/gateway_wrk.lua" "$url" -- "$work/template" "$token" >/dev/null &
wrk_pid=$!
until [ "$(view)" -ge "$deviations" ]; do sleep 0.2; done
kill "$wrk_pid"
wait "$wrk_pid" 2>/dev/null || true
echo "filed and in the view: $(view) deviations in $(($(date +%s) - start)) s;" \
        "view $(curl -s "$url/metrics" | awk '/^avk_gateway_view_bytes / {printf "%.0f", $2 / 1e6}') MB"
echo "look-ups: $(nproc) cores, $connections connections, ${delay_ms} ms between a connection's" \
        "requests, ${duration} s, wrk 2 threads"
wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$here/lookup_wrk.lua" "$url" \
        -- $((deviations * 9 / 20)) "$token" "$delay_ms" |
        grep -iE "Requests/sec| 50%| 99%|^p99|non-2xx"
