#!/bin/sh
# How long a restarted consumer service does nothing (issue 18, point 9;
# docs/operations.md, "Restarts"): the embedded broker with avvik route,
# notify and track running; the service measured is stopped - SIGKILL, or
# SIGTERM and its clean exit - a deviation is filed meanwhile, and the
# service is started again. The figure is the time from that start to the
# service's first input finished (<prefix>_input_seconds_count above 0 on
# its /metrics, polled every 0.1 s): process start, group join, state
# rebuild and the record. RUNS times each, then min / median / max in
# seconds. The services run with the configuration's defaults (no
# kafka.session.timeout.ms), as a deployment would. With RESTART_BOUND_S set,
# a restart that takes longer fails the run (the test cli_service_restart);
# one still idle after RESTART_CAP_S (150) is shown as ">150" and the next
# run goes on.
#   bench/restart_time.sh AVVIK_BINARY SOURCE_DIR [RUNS] [SERVICES] [SIGNALS]
# SERVICES defaults to "route notify track", SIGNALS to "KILL TERM".
set -eu
avvik=$1
src=$(cd "$2" && pwd)
runs=${3:-5}
cap=${RESTART_CAP_S:-150} # a restart still idle then is counted as "more than cap"
services=${4:-route notify track}
signals=${5:-KILL TERM}
work=$(mktemp -d /tmp/avvik-restart.XXXXXX)
bs=$work/bootstrap.servers
. "$(dirname "$0")/lib.sh"
trap 'stop_kept; stop_broker; rm -rf "$work"' EXIT

# Receivers on their inboxes only: a webhook host that does not resolve here
# would only add retries.
jq --arg dir "$src/data" 'walk(if type == "object" and has("secret_file")
                then .secret_file = ($dir + "/" + .secret_file) else . end)
        | .parties[].delivery |= (if has("inbox_topic") then del(.webhook) else . end)' \
        "$src/data/directory.json" >"$work/directory.json"
jq -c 'del(.deviation_id) | .receiver = {}' \
        "$src/deploy/samples/01-discharge-information-missing.json" >"$work/deviation"
cat >"$work/avvik.properties" <<EOF
bootstrap.file=$bs
directory.file=$work/directory.json
routing.rules.file=$src/data/routing-rules.json
deadlines.file=$src/data/deadlines.json
kafka.log_level=0
EOF

prefix() { # the config prefix and metric prefix of a service command
        case $1 in
        route) echo router ;;
        notify) echo notify ;;
        track) echo tracker ;;
        esac
}
pid_of() { cat "$work/$1.pid"; }
alive() { # alive NAME: else its log ends the run
        kill -0 "$(pid_of "$1")" 2>/dev/null && return
        echo "$1 exited:" >&2
        tail -n 5 "$work/$1.log" >&2
        exit 1
}
start_service() { # start_service NAME: in the background, a log of its own for this life
        "$avvik" "$1" -c "$work/avvik.properties" -X "$(prefix "$1").http.listen=127.0.0.1:0" \
                2>"$work/$1.log" &
        echo $! >"$work/$1.pid"
}
inputs_done() { # inputs_done NAME: the service's finished inputs (0 while it does not answer)
        port=$(sed -n 's/.*metrics-http: .* on port \([0-9]*\)$/\1/p' "$work/$1.log")
        if [ -z "$port" ]; then
                echo 0
                return
        fi
        curl -s --max-time 1 "http://127.0.0.1:$port/metrics" |
                sed -n "s/^avk_$(prefix "$1")_input_seconds_count \([0-9]*\)$/\1/p" | grep . ||
                echo 0
}
now() { date +%s.%N; }
since() { awk -v s="$1" -v n="$(now)" 'BEGIN { printf "%.1f", n - s }'; }
above() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
file_one() { "$avvik" report -c "$work/avvik.properties" "$work/deviation" >/dev/null; }

for signal in $signals; do
        for service in $services; do
                start_broker
                for s in route notify track; do start_service "$s"; done
                file_one
                started=$(now)
                until [ "$(inputs_done "$service")" -gt 0 ]; do
                        alive "$service"
                        if above "$(since "$started")" "$cap"; then
                                echo "$service: its first start did nothing for $cap s" >&2
                                tail -n 5 "$work/$service.log" >&2
                                exit 1
                        fi
                        sleep 0.2
                done
                : >"$work/times"
                run=0
                while [ $run -lt "$runs" ]; do
                        run=$((run + 1))
                        kill -"$signal" "$(pid_of "$service")"
                        wait "$(pid_of "$service")" 2>/dev/null || true
                        file_one
                        started=$(now)
                        start_service "$service"
                        took=$(since "$started")
                        until [ "$(inputs_done "$service")" -gt 0 ] || above "$took" "$cap"; do
                                alive "$service"
                                sleep 0.1
                                took=$(since "$started")
                        done
                        echo "$took" >>"$work/times"
                        if [ -n "${RESTART_BOUND_S:-}" ] && above "$took" "$RESTART_BOUND_S"; then
                                echo "FAIL: $service after SIG$signal did nothing for $took s" \
                                        "(bound $RESTART_BOUND_S s)" >&2
                                tail -n 5 "$work/$service.log" >&2
                                exit 1
                        fi
                done
                for s in route notify track; do kill -TERM "$(pid_of "$s")" 2>/dev/null || true; done
                for s in route notify track; do wait "$(pid_of "$s")" 2>/dev/null || true; done
                stop_broker
                sort -n "$work/times" | awk -v svc="$service" -v sig="SIG$signal" -v cap="$cap" '
                        function shown(x) { return x > cap ? sprintf(">%d", cap) : sprintf("%.1f", x) }
                        { t[NR] = $1 }
                        END { printf "| %-7s | %-7s | %5s | %5s | %5s | %s |\n", svc, sig,
                                     shown(t[1]), shown(t[int((NR + 1) / 2)]), shown(t[NR]), NR }'
        done
done
