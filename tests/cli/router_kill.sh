#!/bin/sh
# Every deviation is routed and delivered, whatever happens to the router:
# deviations are filed in a stream while the router runs; it is killed with
# SIGKILL twice mid-stream (while it routes) and restarted. Then every filed
# deviation must have a DeviationRouted event - duplicates only with the
# same event id - and, delivered by avvik notify running beside it, a copy
# in its receiver's inbox topic.
# usage: router_kill.sh AVVIK_BINARY SOURCE_DIR
set -eu
avvik=$1
src=$2
sample=$src/deploy/samples/01-discharge-information-missing.json
n=${ROUTER_KILL_DEVIATIONS:-3000}
work=$(mktemp -d)
bs=$work/bootstrap.servers
broker_pid=
router_pid=
report_pid=
notify_pid=
cleanup() { # the services first, the broker they talk to last
        for pid in $report_pid $router_pid $notify_pid; do kill "$pid" 2>/dev/null || true; done
        for pid in $report_pid $router_pid $notify_pid; do wait "$pid" 2>/dev/null || true; done
        [ -z "$broker_pid" ] || kill "$broker_pid" 2>/dev/null || true
        wait 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
FAIL_LOGS="$work/router.*.log $work/notify.log"
[ $((n % 50)) -eq 0 ] || fail "ROUTER_KILL_DEVIATIONS must be a multiple of 50"
# The sample directory with VGR's receiver on its inbox only: its webhook host
# does not resolve here, and deliveries retrying a webhook would hold the
# notifier's window. Secret files stay where the directory names them.
jq --arg dir "$src/data" 'walk(if type == "object" and has("secret_file")
                then .secret_file = ($dir + "/" + .secret_file) else . end)
        | (.parties[] | select(.party == "VGR") | .delivery) |= del(.webhook)' \
        "$src/data/directory.json" >"$work/directory.json"
common="-X bootstrap.file=$bs -X directory.file=$work/directory.json"

"$avvik" broker -f "$bs" $common 2>"$work/broker.log" &
broker_pid=$!
poll "broker bootstrap file" test -s "$bs"

start_router() { # start_router N: the Nth life of the router
        "$avvik" route $common -X routing.rules.file="$src/data/routing-rules.json" \
                -X kafka.session.timeout.ms=6000 -X kafka.log_level=0 \
                2>"$work/router.$1.log" &
        router_pid=$!
}
routed_any() { grep -q "assigned" "$work/router.$1.log"; }
"$avvik" notify $common -X kafka.log_level=0 2>"$work/notify.log" &
notify_pid=$!

# N deviations without a named receiver (the rules decide), new ids each,
# 50 every 0.1 s: the stream lasts while the router is killed and restarted.
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
stream | "$avvik" report $common - >"$work/report.out" &
report_pid=$!
start_router 1
poll "router 1 assignment" routed_any 1
sleep 1
kill -KILL "$router_pid"
wait "$router_pid" 2>/dev/null || true
start_router 2
poll "router 2 assignment" routed_any 2
sleep 1
kill -KILL "$router_pid"
wait "$router_pid" 2>/dev/null || true
start_router 3
poll "router 3 assignment" routed_any 3
wait "$report_pid" || fail "avvik report failed"
report_pid=
awk -F'\t' '$2 == "accepted" { print $3 }' "$work/report.out" | sort >"$work/filed"
[ "$(wc -l <"$work/filed")" -eq "$n" ] || fail "only $(wc -l <"$work/filed") of $n filed"

tail_routed() {
        "$avvik" tail $common -t deviation.routed -e 2>>"$work/tail.err" |
                jq -r '[.deviation_id, .event_id] | @tsv' | sort -u >"$work/routed"
}
all_routed() {
        tail_routed
        [ "$(cut -f1 "$work/routed" | sort -u | comm -23 "$work/filed" - | wc -l)" -eq 0 ]
}
poll "every deviation routed" all_routed
kill -TERM "$router_pid"
wait "$router_pid" || fail "the router did not stop cleanly"
router_pid=

# Duplicates only as the same event id: one event id per deviation (hop 0).
"$avvik" tail $common -t deviation.routed -e 2>>"$work/tail.err" | jq -r .deviation_id |
        sort >"$work/routed_all"
events=$(wc -l <"$work/routed_all")
doubled=$(uniq -d "$work/routed_all" | wc -l)
conflicting=$(cut -f1 "$work/routed" | uniq -d | wc -l)
# Sample 01 is a discharge the municipality reports: rule R-REGION-DISCHARGE-PLANNING, VGR's inbox.
# kcat: the inbox holds two record types; the key and the avk-type header suffice.
tail_inbox() {
        kcat -C -b "$(cat "$bs")" -t avvik.inbox.vgr -e -q -f '%k %h\n' |
                awk '/avk-type=DeviationReported/ { print $1 }' | sort -u >"$work/inbox"
}
all_in_inbox() {
        tail_inbox
        [ "$(comm -23 "$work/filed" "$work/inbox" | wc -l)" -eq 0 ]
}
poll "every deviation in VGR's inbox" all_in_inbox
tail_inbox
missing_inbox=$(comm -23 "$work/filed" "$work/inbox" | wc -l)
echo "filed: $n; routed events: $events; deviations routed more than once: $doubled;" \
        "with differing event ids: $conflicting; missing from the inbox: $missing_inbox"
[ "$conflicting" -eq 0 ] || fail "$conflicting deviations have differing event ids"
[ "$missing_inbox" -eq 0 ] || fail "$missing_inbox deviations are missing from avvik.inbox.vgr"
kill -TERM "$notify_pid"
wait "$notify_pid" || fail "the notifier did not stop cleanly"
notify_pid=
echo "ok"
