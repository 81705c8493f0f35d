#!/bin/sh
# The gateway under wrk against a bare libmicrohttpd server
# (bench/bare_http.c: the same threading - an internal epoll pool of
# gateway.threads threads - and memory a connection, the same body and
# token, no validation, no Kafka), filing new deviations (POST /v1/deviations, each answered 202 by
# the gateway only after Kafka acknowledged it), two rows:
# - capacity: CONNECTIONS connections (default 256) as fast as they are
#   answered, requests/s and wrk's p99 at that connection count;
# - latency at a fixed rate: RATE requests/s (default 5,000) from
#   RATE_CONNECTIONS connections (default 100: each sends every 20 ms, room
#   for the gateway's group commit of 5-10 ms a request; with 50 the rate
#   fell 10 % short on a loaded machine), paced by wrk's delay()
#   (bench/gateway_rate.lua; Debian has no wrk2): p50 / p99 / max latency.
#   A run whose rate is more than 5 % off RATE is marked OFF RATE. wrk times
#   a request from when it is sent, not from when its slot was due
#   (coordinated omission): well under capacity, as here, that is the
#   service time; a stall would hide in the requests not sent meanwhile,
#   which the rate check shows.
# Each row: a window of DURATION seconds per run, REPS runs alternating the
# two servers (bench/lib.sh), each gateway run on a fresh embedded broker,
# and per run the server process's CPU per request (from /proc/PID/stat; the
# broker's CPU is not counted), and of it the gateway's librdkafka threads
# (rdk:main, which runs the transactions' timers, and its broker threads):
# with the bare server's CPU a request, what the 25 us limit leaves for the
# gateway's own threads. After each gateway run every 202 is checked against
# the records in Kafka (sum of end offsets).
# usage: gateway_wrk.sh BUILD_DIR [DURATION_S] [CONNECTIONS] [REPS] [RATE] [RATE_CONNECTIONS]
set -eu
build=$1
duration=${2:-10}
connections=${3:-256}
reps=${4:-5}
rate=${5:-5000}
rate_connections=${6:-100}
avvik=$build/avvik
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
bs=$work/bootstrap.servers
. "$here/lib.sh"

sample=$here/../deploy/samples/01-discharge-information-missing.json
"$avvik" token "$(jq -r .reporter.party "$sample")" bench >"$work/token"
sed -n 2p "$work/token" >"$work/tokens"
token=$(sed -n 1p "$work/token")
jq -c '.deviation_id = "@ID@"' "$sample" >"$work/template"
# The gateway's default thread count, from its configuration listing.
threads=$("$avvik" config | sed -n 's/^ *gateway\.threads .*\[\([0-9]*\)\]$/\1/p')

# CPU seconds so far of process PID's librdkafka threads (named rdk:*, from
# /proc/PID/task): "MAIN OTHERS" - its main thread, which runs the
# transactions' timers, and the rest (the broker threads).
rdkafka_seconds() { # rdkafka_seconds PID
        cat "/proc/$1/task/"*/stat 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" '{
                comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\).*/, "", comm)
                sub(/.*\) /, ""); s = ($12 + $13) / hz
                if (comm == "rdk:main") main += s; else if (comm ~ /^rdk:/) others += s
        } END { print main + 0, others + 0 }'
}

# wrk_window URL NAME SIDE: one wrk window of the row in $row (capacity or
# rate); appends requests/s (capacity) or the p99 (rate) to $work/SIDE, and
# prints the run with its latencies and the server's CPU per request.
wrk_window() {
        until curl -s -o /dev/null "$1/"; do sleep 0.1; done
        cpu0=$(cpu_seconds "$server") rdk0=$(rdkafka_seconds "$server")
        if [ "$row" = capacity ]; then
                wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$here/gateway_wrk.lua" \
                        "$1" -- "$work/template" "$token" >"$work/wrk"
        else
                wrk -t2 -c"$rate_connections" -d"${duration}s" --latency \
                        -s "$here/gateway_rate.lua" "$1" -- "$work/template" "$token" \
                        "$(echo "$rate / 2" | bc -l)" >"$work/wrk"
        fi
        cpu1=$(cpu_seconds "$server") rdk1=$(rdkafka_seconds "$server")
        rps=$(awk '/^Requests\/sec/ { print $2 }' "$work/wrk")
        requests=$(awk '/requests in/ { print $1 }' "$work/wrk")
        p50=$(awk '/^p50/ { print $2 }' "$work/wrk")
        p99=$(awk '/^p50/ { print $8 }' "$work/wrk")
        max=$(awk '/^p50/ { print $11 }' "$work/wrk")
        errors=$(awk '/^non-2xx/ { print $NF }' "$work/wrk")
        us=$(echo "($cpu1 - $cpu0) * 1000000 / $requests" | bc -l)
        echo "$us" >>"$work/$3.cpu"
        if [ "$row" = capacity ]; then
                # librdkafka's threads a request: its main thread, then the others.
                echo "$rdk0 $rdk1" | awk -v n="$requests" '{ printf "%.2f %.2f\n",
                        ($3 - $1) * 1000000 / n, ($4 - $2) * 1000000 / n }' >"$work/rdk"
                cut -d' ' -f1 "$work/rdk" >>"$work/$3.rdk_main"
                cut -d' ' -f2 "$work/rdk" >>"$work/$3.rdk_others"
                echo "$rps" >>"$work/$3"
                echo "$p99" >>"$work/$3.p99"
                fmt='  %-28s %9.0f req/s  p99 %6s ms  %6.1f us CPU/req (librdkafka %s)'
                printf "$fmt  non-2xx or errors %s\n" "$2" "$rps" "$p99" "$us" \
                        "$(awk '{ print $1 " + " $2 " us" }' "$work/rdk")" "$errors"
                return
        fi
        echo "$p99" >>"$work/$3"
        echo "$p50" >>"$work/$3.p50"
        echo "$max" >>"$work/$3.max"
        off=$(echo "$rps < $rate * 0.95 || $rps > $rate * 1.05" | bc -l)
        [ "$off" -eq 0 ] || echo "$2" >>"$work/off_rate"
        printf '  %-28s %7.0f req/s%s  p50 %5s  p99 %6s  max %6s ms  %6.1f us CPU/req  non-2xx or errors %s\n' \
                "$2" "$rps" "$([ "$off" -eq 0 ] || echo ' OFF RATE')" "$p50" "$p99" "$max" "$us" \
                "$errors"
}

side_a() {
        start_broker
        "$avvik" gateway -X bootstrap.file="$bs" -X gateway.listen=127.0.0.1:0 \
                -X gateway.port.file="$work/port" -X gateway.tokens.file="$work/tokens" \
                -X log.level=warn 2>"$work/gateway.log" &
        server=$!
        keep_process "$server"
        while [ ! -s "$work/port" ]; do sleep 0.1; done
        url=http://127.0.0.1:$(cat "$work/port")
        until curl -sf "$url/readyz" >/dev/null; do sleep 0.1; done
        wrk_window "$url" "avvik gateway" a
        answered=$(curl -s "$url/metrics" |
                awk '/^avk_gateway_requests_total.*code="202"/ { s += $2 } END { print s + 0 }')
        stop_kept
        rm -f "$work/port"
        in_kafka=$(end_offsets deviation.reported)
        [ "$in_kafka" -ge "$answered" ] || {
                echo "gateway answered 202 for $answered but Kafka holds $in_kafka" >&2
                exit 1
        }
        stop_broker
}

side_b() {
        "$build/bench/bare_http" "$work/bare.port" "$token" "$threads" &
        server=$!
        keep_process "$server"
        while [ ! -s "$work/bare.port" ]; do sleep 0.1; done
        wrk_window "http://127.0.0.1:$(cat "$work/bare.port")" "bare libmicrohttpd" b
        stop_kept
        rm -f "$work/bare.port"
}

row=capacity
echo "== gateway vs bare libmicrohttpd: $connections connections, ${duration} s windows," \
        "$threads server threads, wrk 2 threads, document of $(wc -c <"$work/template") bytes," \
        "$(nproc) cores (target: at least 0.4x)"
alternate "$reps"
verdict "gateway, wrk $connections connections" 0.4 "avvik gateway" "bare libmicrohttpd" req/s
printf '  p99 (wrk, %s connections), median: gateway %s ms, bare %s ms\n' "$connections" \
        "$(median "$work/a.p99")" "$(median "$work/b.p99")"
cp "$work/a.cpu" "$work/a"
cp "$work/b.cpu" "$work/b"
verdict "gateway CPU per request, wrk $connections connections" - "avvik gateway" \
        "bare libmicrohttpd" us lower 25
# What the limit leaves: the gateway's librdkafka threads alone (no HTTP, no
# JSON, none of avvik's own threads) on top of everything the bare server does.
rdk_main=$(median "$work/a.rdk_main") rdk_others=$(median "$work/a.rdk_others")
bare=$(median "$work/b")
printf "  of it, median: librdkafka's main thread %s us, its broker threads %s us; with the" \
        "$rdk_main" "$rdk_others"
printf " bare server's %s us, %s us before the gateway's own threads do anything\n" "$bare" \
        "$(num "$(echo "$rdk_main + $rdk_others + $bare" | bc -l)")"

row=rate
: >"$work/a.p50"
: >"$work/b.p50"
: >"$work/a.max"
: >"$work/b.max"
: >"$work/off_rate"
echo
echo "== gateway vs bare libmicrohttpd at a fixed $rate requests/s: $rate_connections connections" \
        "paced by wrk's delay(), ${duration} s windows (target: gateway p99 at most 20 ms)"
alternate "$reps"
verdict "gateway p99 at $rate req/s" - "avvik gateway" "bare libmicrohttpd" ms lower 20
printf '  p50, median: gateway %s ms, bare %s ms; max, median: gateway %s ms, bare %s ms\n' \
        "$(median "$work/a.p50")" "$(median "$work/b.p50")" "$(median "$work/a.max")" \
        "$(median "$work/b.max")"
printf '  CPU per request at %s req/s, median: gateway %.1f us, bare %.1f us\n' "$rate" \
        "$(median "$work/a.cpu")" "$(median "$work/b.cpu")"
[ ! -s "$work/off_rate" ] || echo "  OFF RATE (more than 5 % from $rate req/s):" \
        "$(wc -l <"$work/off_rate") runs"
