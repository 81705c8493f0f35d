#!/bin/sh
# Two notifiers in one group while deviations stream in and are routed:
# notifier A is stopped gracefully (SIGTERM) and started again, notifier B is
# killed (SIGKILL) and started again, so the partitions move between them
# while deliveries are in flight - the receiver answers a part of the event
# ids slowly and a part of them 500 on their first attempt, so retries are
# pending too. Every webhook of the directory points at
# deploy/local/webhook_receiver.py, which records each request. Then:
# - every routed deviation whose receiver has a webhook reached it, at its
#   unit's or party's endpoint, with a valid signature, answered 200;
# - a notification sent more than once was sent under the same
#   X-Avvik-Event-Id with the same body, byte for byte: the notifier that
#   took a partition over sent what the other had, never something new;
# - nothing reached the receiver that was not routed to it (none for the
#   inbox-only party), and nothing was dead-lettered or reported as
#   DeliveryFailed (the failures stay well inside the retry budget);
# - partitions did move: each of the four notifier lives was assigned
#   partitions (librdkafka's group debug lines) and delivered, and there
#   were at least six assignments and revokes in all;
# - the restarted notifiers serve /healthz, /readyz and /metrics on
#   notify.http.listen (port in notify.http.port.file) and remove the file
#   when stopped.
# usage: notify_rebalance.sh AVVIK_BINARY SOURCE_DIR
set -eu
export LC_ALL=C # sort, comm and join agree on one order
avvik=$1
src=$2
sample=$src/deploy/samples/01-discharge-information-missing.json
n=${NOTIFY_REBALANCE_DEVIATIONS:-800}
work=$(mktemp -d)
bs=$work/bootstrap.servers
record=$work/requests.jsonl
broker_pid=
hook_pid=
router_pid=
a_pid=
b_pid=
report_pid=
# After a failure the services are killed: a graceful stop may take up to
# consumer.close.timeout.ms, and the test has failed already.
cleanup() {
        for pid in $report_pid $a_pid $b_pid $router_pid; do kill -KILL "$pid" 2>/dev/null || true; done
        for pid in $hook_pid $broker_pid; do kill "$pid" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
FAIL_LOGS="$work/notify.*.log $work/router.log $work/hook.log"
[ $((n % 20)) -eq 0 ] || fail "NOTIFY_REBALANCE_DEVIATIONS must be a multiple of 20"

# Every webhook of the directory (a party's, a unit's or the triage desk's) gets a
# secret of its own and an endpoint of the receiver: /hook/<party code, unit HSA id
# or triage-desk>.
mkdir "$work/secrets"
endpoints=$(jq -r '(.parties[] | (select(.delivery.webhook) | .party),
        ((.units // [])[] | select(.delivery.webhook) | .hsa_id)),
        (.triage_desk | select(.delivery.webhook) | "triage-desk")' "$src/data/directory.json")
for e in $endpoints; do
        openssl rand -hex 32 >"$work/secrets/$e-webhook.secret"
        chmod 600 "$work/secrets/$e-webhook.secret" # avvik refuses a key others may read
done
python3 "$src/deploy/local/webhook_receiver.py" --record "$record" --fail-first 20 --slow 20 \
        --slow-seconds 1 "$work/hook.port" "$work"/secrets/*-webhook.secret >"$work/hook.log" 2>&1 &
hook_pid=$!
poll "webhook receiver" test -s "$work/hook.port"
jq --arg hook "http://127.0.0.1:$(cat "$work/hook.port")/hook" '
  def local_hook($name): {url: ($hook + "/" + $name), allow_http: true, patient_identity: false,
                          secret_file: ("secrets/" + $name + "-webhook.secret")};
  .parties |= map(
    (if .delivery.webhook then .delivery.webhook = local_hook(.party) else . end)
    | (if .units then .units |= map(if .delivery.webhook then .delivery.webhook = local_hook(.hsa_id)
                                    else . end)
       else . end))
  | .triage_desk.delivery |= (if .webhook then .webhook = local_hook("triage-desk") else . end)' \
        "$src/data/directory.json" >"$work/directory.json"
cat >"$work/avvik.properties" <<EOF
bootstrap.file=$bs
directory.file=$work/directory.json
routing.rules.file=$src/data/routing-rules.json
kafka.log_level=0
EOF
cfg=$work/avvik.properties

"$avvik" broker -f "$bs" -c "$cfg" 2>"$work/broker.log" &
broker_pid=$!
poll "broker bootstrap file" test -s "$bs"
"$avvik" route -c "$cfg" 2>"$work/router.log" &
router_pid=$!

# librdkafka's group debug lines (kafka.debug=cgrp) say when partitions are
# assigned and revoked, which avvik notify does not log.
start_notify() { # start_notify NAME: one life of notifier NAME (a1, a2, b1, b2)
        "$avvik" notify -c "$cfg" -X notify.group.id=rebalance -X instance.name="notify-${1%?}" \
                -X kafka.session.timeout.ms=6000 -X kafka.heartbeat.interval.ms=500 \
                -X kafka.debug=cgrp -X kafka.log_level=7 \
                -X notify.retry.backoff.ms=200 -X notify.retry.backoff.max.ms=1000 \
                -X notify.http.listen=127.0.0.1:0 -X notify.http.port.file="$work/$1.port" \
                2>"$work/notify.$1.log" &
}
ready() { # ready NAME: notifier NAME answers /readyz with 200 (partitions assigned)
        [ -s "$work/$1.port" ] &&
                curl -sf "http://127.0.0.1:$(cat "$work/$1.port")/readyz" >/dev/null
}
taken() { # taken: the number of requests answered 200
        grep -c '"status": 200' "$record" 2>/dev/null || true
}
taken_at_least() { [ "$(taken)" -ge "$1" ]; }

# N deviations, 20 every 0.4 s, to four receivers in turn: VGR by the
# agreement's rules (a physician: the region; its unit has no webhook of its
# own, so VGR's), Folktandvården named (a VGR unit with a webhook of its
# own), Göteborg named (1480, a webhook) and Ale named (1440: an inbox only).
jq -c 'del(.deviation_id) | .receiver = {}' "$sample" >"$work/by_rule"
jq -c 'del(.deviation_id) | .receiver = {party: "VGR", unit_hsa_id: "SE2321000131-E000000040001"}' \
        "$sample" >"$work/to_unit"
jq -c 'del(.deviation_id) | .receiver = {party: "1480"}
        | .reporter = {party: "VGR", unit_hsa_id: "SE2321000131-E000000012345", role: "NURSE"}' \
        "$sample" >"$work/to_1480"
jq -c 'del(.deviation_id) | .receiver = {party: "1440"}' "$sample" >"$work/to_inbox"
for _ in 1 2 3 4 5; do
        cat "$work/by_rule" "$work/to_unit" "$work/to_1480" "$work/to_inbox"
done >"$work/batch"
stream() {
        i=0
        while [ $i -lt "$n" ]; do
                cat "$work/batch"
                sleep 0.4
                i=$((i + 20))
        done
}

start_notify a1
a_pid=$!
start_notify b1
b_pid=$!
poll "notifier a1 ready" ready a1
poll "notifier b1 ready" ready b1
stream | "$avvik" report -c "$cfg" - >"$work/report.out" &
report_pid=$!

# A fifth of the stream delivered: A leaves gracefully and comes back.
poll "the first deliveries" taken_at_least $((n / 5))
kill -TERM "$a_pid"
wait "$a_pid" || fail "notifier a1 did not stop cleanly"
[ ! -e "$work/a1.port" ] || fail "a1 left its port file behind"
start_notify a2
a_pid=$!
poll "notifier a2 ready" ready a2
# More delivered since: B dies with its deliveries in flight and comes back.
poll "more deliveries" taken_at_least $((n / 3))
kill -KILL "$b_pid"
wait "$b_pid" 2>/dev/null || true
start_notify b2
b_pid=$!
poll "notifier b2 ready" ready b2
wait "$report_pid" || fail "avvik report failed"
report_pid=

awk -F'\t' '$2 == "accepted" { print $3 }' "$work/report.out" | sort >"$work/filed"
[ "$(wc -l <"$work/filed")" -eq "$n" ] || fail "only $(wc -l <"$work/filed") of $n filed"

# The routed records, each with the endpoint its notification must reach:
# the receiving unit's webhook when the directory gives it one, else its
# party's, else none (an inbox only).
routed() {
        "$avvik" tail -c "$cfg" -t deviation.routed -e 2>>"$work/tail.err" |
                jq -c --slurpfile dir "$work/directory.json" '
                  . as $r | ($dir[0].parties[] | select(.party == $r.receiver_party)) as $p
                  | {event_id, deviation_id, hop,
                     endpoint: (([($p.units // [])[] | select(.hsa_id == $r.receiver_unit_hsa_id
                                                                and .delivery.webhook)][0].hsa_id)
                                // (if $p.delivery.webhook then $p.party else "none" end))}'
}
all_routed() {
        routed | sort -u >"$work/routed"
        jq -r .deviation_id "$work/routed" | sort -u >"$work/routed_ids"
        [ "$(comm -23 "$work/filed" "$work/routed_ids" | wc -l)" -eq 0 ]
}
poll "every deviation routed" all_routed
jq -r 'select(.endpoint != "none") | [.event_id, .endpoint] | @tsv' "$work/routed" | sort -u \
        >"$work/wanted"
# poll counts tries, not seconds: the receiver's record is read again only
# when it has grown, so that a wait for what never comes stays near POLL_SECONDS.
read_at_size=-1
all_taken() {
        size=$(wc -c <"$record")
        [ "$size" -ne "$read_at_size" ] || return 1
        read_at_size=$size
        jq -r 'select(.status == 200 and .signature == "valid") | [.event_id, .endpoint] | @tsv' \
                "$record" | sort -u >"$work/taken"
        comm -23 "$work/wanted" "$work/taken" >"$work/missing"
        [ ! -s "$work/missing" ]
}
FAIL_LOGS="$FAIL_LOGS $work/missing" poll "every notification taken by the receiver" all_taken

for name in a2 b2; do
        url=http://127.0.0.1:$(cat "$work/$name.port")
        curl -sf "$url/healthz" >/dev/null || fail "$name: /healthz"
        curl -sf "$url/readyz" >/dev/null || fail "$name: /readyz is not 200 with partitions assigned"
        curl -sf "$url/metrics" >"$work/$name.metrics" || fail "$name: /metrics"
        grep -q '^avk_notify_deliveries_total{.*outcome="delivered",event="routed"} [1-9]' \
                "$work/$name.metrics" || fail "$name: /metrics lacks its deliveries"
        grep -q '^avk_notify_attempt_seconds_count{party="[^"]*"} [1-9]' "$work/$name.metrics" ||
                fail "$name: /metrics lacks attempt latencies"
done
# Both stopped at once, while the group rebalances after a2 left: the close
# is bounded and leaves the group before closing (avk_kafka_consumer_close()),
# where rd_kafka_consumer_close() alone could hang in librdkafka 2.0.2.
kill -TERM "$a_pid" "$b_pid"
wait "$a_pid" || fail "notifier a2 did not stop cleanly"
a_pid=
wait "$b_pid" || fail "notifier b2 did not stop cleanly"
b_pid=
kill -TERM "$router_pid"
wait "$router_pid" || fail "the router did not stop cleanly"
router_pid=
for name in a2 b2; do
        [ ! -e "$work/$name.port" ] || fail "$name left its port file behind"
done

# What the receiver was sent, request by request.
invalid=$(grep -c '"signature": "invalid"' "$record" || true)
[ "$invalid" -eq 0 ] || fail "$invalid requests with an invalid signature"
jq -r '[.event_id, .endpoint] | @tsv' "$record" | sort -u >"$work/sent"
unwanted=$(comm -13 "$work/wanted" "$work/sent" | wc -l)
[ "$unwanted" -eq 0 ] ||
        fail "$unwanted (event id, endpoint) sent that were not routed there: $(comm -13 "$work/wanted" "$work/sent" | head -n 3 | tr "\n" " ")"
# The body names the event of its header and that event's deviation.
jq -r 'select(.body_event_id != .event_id) | .event_id' "$record" >"$work/mislabelled"
[ ! -s "$work/mislabelled" ] || fail "bodies of another event than their X-Avvik-Event-Id: $(head -n 3 "$work/mislabelled" | tr "\n" " ")"
jq -r '[.event_id, .deviation_id] | @tsv' "$record" | sort -u >"$work/sent_deviations"
jq -r '[.event_id, .deviation_id] | @tsv' "$work/routed" | sort -u >"$work/routed_deviations"
[ "$(comm -23 "$work/sent_deviations" "$work/routed_deviations" | wc -l)" -eq 0 ] ||
        fail "a body names another deviation than its routed event"
# One body per event id, however often it was sent; one event id per deviation.
jq -r '[.event_id, .body_sha256] | @tsv' "$record" | sort -u | cut -f1 | uniq -d >"$work/rewritten"
[ ! -s "$work/rewritten" ] ||
        fail "$(wc -l <"$work/rewritten") event ids sent with different bodies: $(head -n 3 "$work/rewritten" | tr "\n" " ")"
cut -f2 "$work/sent_deviations" | sort | uniq -d >"$work/renamed"
[ ! -s "$work/renamed" ] ||
        fail "$(wc -l <"$work/renamed") deviations notified under more than one event id"
# Nothing given up: no dead letter, no DeliveryFailed.
sh "$src/deploy/kafka/deadletter.sh" -b "$(cat "$bs")" list >"$work/deadletters" ||
        fail "the dead-letter topic could not be read"
[ ! -s "$work/deadletters" ] || fail "$(wc -l <"$work/deadletters") records on the dead-letter topic"
"$avvik" tail -c "$cfg" -t deviation.delivery.failed -e >"$work/delivery_failed" 2>>"$work/tail.err" ||
        fail "deviation.delivery.failed could not be read"
[ ! -s "$work/delivery_failed" ] || fail "$(wc -l <"$work/delivery_failed") DeliveryFailed events"
# Each life of each notifier was assigned partitions and delivered: the
# partitions moved A -> B -> A, B.
for name in a1 b1 a2 b2; do
        grep -q "new assignment of [1-9]" "$work/notify.$name.log" ||
                fail "notifier $name was assigned no partitions"
        sed -n "s/.* notify: event \([^ ]*\) delivered to party .*/\1 $name/p" "$work/notify.$name.log" |
                sort -u >"$work/delivered.$name"
        [ -s "$work/delivered.$name" ] || fail "notifier $name delivered nothing"
        sed -n "s/.* notify: event \([^ ]*\) to party .*(attempt .*/\1 $name/p" "$work/notify.$name.log"
done | sort -u >"$work/retried"
sort -m "$work"/delivered.* >"$work/delivered"
moves=$(cat "$work"/notify.*.log | grep -c "new assignment of [1-9]\|delegating revoke of [1-9]")
[ "$moves" -ge 6 ] || fail "the partitions moved only $moves times"

# What the test made happen, in figures: requests, the failures on purpose,
# notifications sent again by another life, and retries that another life
# finished (a partition moved while they were pending).
requests=$(wc -l <"$record")
wanted=$(wc -l <"$work/wanted")
failures=$(grep -c '"status": 500' "$record" || true)
again=$(jq -r 'select(.status == 200) | .event_id' "$record" | sort | uniq -d | wc -l)
twice=$(cut -d' ' -f1 "$work/delivered" | uniq -d | wc -l)
moved=$(join "$work/retried" "$work/delivered" | awk '$2 != $3 { print $1 }' | sort -u | wc -l)
echo "filed: $n; routed to a webhook: $wanted; requests: $requests (500 on purpose: $failures);" \
        "event ids taken more than once: $again (same id, same body), delivered by two lives: $twice;" \
        "retries finished by another life: $moved; assignments and revokes: $moves;" \
        "delivered per life:" \
        "$(for name in a1 b1 a2 b2; do printf '%s %s ' "$name" "$(wc -l <"$work/delivered.$name")"; done)"
echo "ok"
