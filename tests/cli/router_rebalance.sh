#!/bin/sh
# Two routers in one group while deviations stream in: router A is stopped
# gracefully (SIGTERM) and started again, router B is killed (SIGKILL) and
# started again, so the partitions move between them four times; meanwhile
# the receiving party rejects a part of the deviations already routed, so
# re-routings (hop 1) are decided while partitions move. Then:
# - every filed deviation is routed (hop 0), every rejected one re-routed (hop 1);
# - a (deviation, hop) written more than once is written with the same bytes
#   - same event id, receiver, rule and routed_at: the instance that took a
#   partition over rewrote what the other had decided, never decided anew;
# - partitions did move: both routers logged assignments after the first;
# - router a2 serves its counters on router.http.listen (port in
#   router.http.port.file): /metrics, /healthz, and /readyz once assigned.
# usage: router_rebalance.sh AVVIK_BINARY SOURCE_DIR
set -eu
avvik=$1
src=$2
sample=$src/deploy/samples/01-discharge-information-missing.json
n=${ROUTER_REBALANCE_DEVIATIONS:-2000}
rejected_n=300
work=$(mktemp -d)
bs=$work/bootstrap.servers
broker_pid=
a_pid=
b_pid=
report_pid=
cleanup() {
        for pid in $report_pid $a_pid $b_pid $broker_pid; do kill "$pid" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
FAIL_LOGS="$work/router.*.log"
[ $((n % 50)) -eq 0 ] || fail "ROUTER_REBALANCE_DEVIATIONS must be a multiple of 50"
common="-X bootstrap.file=$bs -X directory.file=$src/data/directory.json"

"$avvik" broker -f "$bs" $common 2>"$work/broker.log" &
broker_pid=$!
poll "broker bootstrap file" test -s "$bs"

start_router() { # start_router NAME [-X KEY=VALUE...]: one life of router NAME (a1, a2, b1, b2)
        name=$1
        shift
        "$avvik" route $common -X routing.rules.file="$src/data/routing-rules.json" \
                -X kafka.session.timeout.ms=6000 -X kafka.heartbeat.interval.ms=500 \
                -X kafka.log_level=0 -X router.group.id=rebalance -X instance.name="router-${name%?}" \
                "$@" 2>"$work/router.$name.log" &
}
assigned() { grep -q "assigned [1-9]" "$work/router.$1.log"; }
routed_ids() { # the deviation ids with a routed event of hop $1
        "$avvik" tail $common -t deviation.routed -e 2>>"$work/tail.err" |
                jq -r --argjson hop "$1" 'select(.hop == $hop) | .deviation_id' | sort -u
}

# N deviations without a named receiver (the rules decide: VGR), 50 every 0.1 s.
jq -c 'del(.deviation_id) | .receiver = {}' "$sample" >"$work/template"
i=0
while [ $i -lt 50 ]; do
        cat "$work/template"
        i=$((i + 1))
done >"$work/batch"
stream() {
        i=0
        while [ $i -lt "$n" ]; do
                cat "$work/batch"
                sleep 0.1
                i=$((i + 50))
        done
}

start_router a1
a_pid=$!
start_router b1
b_pid=$!
poll "router a1 assignment" assigned a1
stream | "$avvik" report $common - >"$work/report.out" &
report_pid=$!

# The first deviations routed: VGR rejects them (wrong receiver) while the
# partitions move below.
enough_routed() { [ "$(routed_ids 0 | wc -l)" -ge "$rejected_n" ]; }
poll "$rejected_n deviations routed" enough_routed
routed_ids 0 | head -n "$rejected_n" >"$work/rejected"
when=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%S.000Z)
jq -R -c --arg when "$when" '{deviation_id: ., responded_at: $when, party: "VGR",
        kind: "REJECTED_WRONG_RECEIVER", comment: "Not ours."}' "$work/rejected" |
        "$avvik" report $common -k response - >"$work/responses.out" &
responses_pid=$!

kill -TERM "$a_pid"
wait "$a_pid" || fail "router a1 did not stop cleanly"
start_router a2 -X router.http.listen=127.0.0.1:0 -X router.http.port.file="$work/a2.port"
a_pid=$!
poll "router a2 assignment" assigned a2
kill -KILL "$b_pid"
wait "$b_pid" 2>/dev/null || true
start_router b2
b_pid=$!
wait "$responses_pid" || fail "filing the rejections failed"
poll "router b2 assignment" assigned b2
wait "$report_pid" || fail "avvik report failed"
report_pid=

awk -F'\t' '$2 == "accepted" { print $3 }' "$work/report.out" | sort >"$work/filed"
[ "$(wc -l <"$work/filed")" -eq "$n" ] || fail "only $(wc -l <"$work/filed") of $n filed"
sort -o "$work/rejected" "$work/rejected"
all_routed() {
        routed_ids 0 >"$work/hop0"
        routed_ids 1 >"$work/hop1"
        [ "$(comm -23 "$work/filed" "$work/hop0" | wc -l)" -eq 0 ] &&
                [ "$(comm -23 "$work/rejected" "$work/hop1" | wc -l)" -eq 0 ]
}
poll "every deviation routed and every rejected one re-routed" all_routed
url=http://127.0.0.1:$(cat "$work/a2.port")
curl -sf "$url/healthz" >/dev/null || fail "a2: /healthz"
curl -sf "$url/readyz" >/dev/null || fail "a2: /readyz is not 200 with partitions assigned"
curl -sf "$url/metrics" >"$work/metrics" || fail "a2: /metrics"
# Its own routings, of whatever decision: when a2 is assigned after the last
# deviation was routed (a loaded machine), what it decides is re-routings
# (MANUAL, REROUTED), not the rules' AGREEMENT_RULE.
grep -q '^avk_router_routed_total{decision="[A-Z_]*",rule="[A-Z0-9-]*"} [1-9]' \
        "$work/metrics" || fail "a2: /metrics lacks its routings"
grep -q '^avk_router_input_seconds_count [1-9]' "$work/metrics" || fail "a2: /metrics lacks latency"
for pid in $a_pid $b_pid; do
        kill -TERM "$pid"
        wait "$pid" || fail "a router did not stop cleanly"
done
[ ! -e "$work/a2.port" ] || fail "a2 left its port file behind"
a_pid=
b_pid=

# One record per (deviation, hop), however often it was written.
"$avvik" tail $common -t deviation.routed -e 2>>"$work/tail.err" |
        jq -c '{deviation_id, hop, event_id, receiver_party, receiver_unit_hsa_id, decision,
                rule_id, routed_at}' >"$work/routed_all"
events=$(wc -l <"$work/routed_all")
sort -u "$work/routed_all" | jq -r '[.deviation_id, .hop] | @tsv' | sort >"$work/distinct"
decided_twice=$(uniq -d "$work/distinct" | wc -l)
duplicates=$((events - $(wc -l <"$work/distinct")))
moves=$(cat "$work"/router.*.log | grep -c "assigned [1-9]\|revoked [1-9]")
echo "filed: $n; rejected: $rejected_n; routed events: $events (duplicates $duplicates);" \
        "(deviation, hop) decided differently twice: $decided_twice; assignments and revokes: $moves"
[ "$decided_twice" -eq 0 ] || fail "$decided_twice hops were decided twice, differently"
[ "$moves" -ge 6 ] || fail "the partitions moved only $moves times"
echo "ok"
