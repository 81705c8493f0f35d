#!/bin/sh
# The whole system under faults (docs/operations.md, "Fault test"): the
# embedded broker, a Schema Registry stand-in (avk_test_registry, its ids kept
# in a file across restarts) and every service - gateway, route, notify,
# track, analyse - while clients file DEVIATIONS deviations through the
# gateway. Meanwhile KILLS times a service picked at random is killed with
# SIGKILL and started again with the same configuration, and OUTAGES times
# (spread evenly among the kills) the registry is taken away (SIGKILL) and
# brought back on the same port 3-8 s later. Then every id answered 202 is
# followed through the stages:
#   stored     in deviation.reported exactly once (its avk-id header)
#   routed     in deviation.routed at hop 0 exactly once (or duplicates
#              byte-identical as JSON)
#   delivered  to its receiver's webhook (DeviationRouted) at least once,
#              with a valid signature
#   tracked    in deviation.status, each state_id (deviation and version)
#              once (or byte-identical)
#   analysed   in deviation.analysis, each record_id once (or byte-identical)
# and a table of the counts is printed; any id lost or doubled at a stage,
# any invalid signature or any service that died by itself fails the run.
# Random choices come from the seed printed first: CHAOS_SEED=<seed> replays
# the same choices (timing still varies).
# usage: chaos.sh AVVIK_BINARY REGISTRY_BINARY SOURCE_DIR DEVIATIONS KILLS OUTAGES
set -eu
avvik=$1
registry=$2
src=$3
total=$4
kills=$5
outages=$6
seed=${CHAOS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
work=$(mktemp -d /tmp/avvik-chaos.XXXXXX)
. "$(dirname "$0")/lib.sh"
FAIL_LOGS="$work/*.log"
services="gateway route notify track analyse"
clients=
cleanup() {
        for pid in $clients; do kill "$pid" 2>/dev/null || true; done
        for name in $services registry webhooks broker; do
                [ -s "$work/$name.pid" ] || continue
                kill -KILL "$(cat "$work/$name.pid")" 2>/dev/null || true
        done
        wait 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT
echo "chaos: seed $seed (CHAOS_SEED=$seed replays it), $total deviations, $kills kills," \
        "$outages registry outages"

# random N: sets r to a number in [0, N) from the seeded generator (the C
# library's example rand(), in the shell so that a seed gives the same
# sequence anywhere). Not in $(...): a subshell's draw would be lost.
rnd=$((seed % 2147483648))
random() {
        rnd=$(((rnd * 1103515245 + 12345) % 2147483648))
        r=$(((rnd / 65536) % $1))
}
elapsed() { echo $(($(date +%s) - started_at)); }
started_at=$(date +%s)

running() { # running NAME: its process has not exited
        pid=$(cat "$work/$1.pid")
        kill -0 "$pid" 2>/dev/null && ! ps -o stat= -p "$pid" | grep -q Z
}
# start NAME COMMAND...: in the background, its log appended to across lives.
start() {
        name=$1
        shift
        "$@" >>"$work/$name.log" 2>&1 &
        echo $! >"$work/$name.pid"
}
# kill9 NAME: SIGKILL and reap; an exit of its own before that is a finding.
kill9() {
        pid=$(cat "$work/$1.pid")
        if ! running "$1"; then
                echo "  $1 (pid $pid) had exited by itself" | tee -a "$work/died"
        fi
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
}

# ---- secrets, directory, configuration -------------------------------------
# Every party and every unit of its own delivery takes webhooks at
# /hook/<party>, so that each deviation's receiver has one to be counted at.
mkdir -p "$work/secrets" "$work/spool" "$work/tokens.d"
for p in $(jq -r '.parties[].party' "$src/data/directory.json") triage-desk; do
        openssl rand -hex 32 >"$work/secrets/$p-webhook.secret"
        chmod 600 "$work/secrets/$p-webhook.secret"
done
start webhooks python3 "$src/deploy/local/webhook_receiver.py" --record "$work/hooks.jsonl" \
        "$work/hook.port" "$work"/secrets/*-webhook.secret
poll "webhook receiver" test -s "$work/hook.port"
jq --arg hook "http://127.0.0.1:$(cat "$work/hook.port")/hook" '
  def local_hook($code): {url: ($hook + "/" + $code), secret_file: ("secrets/" + $code + "-webhook.secret"),
                          allow_http: true, patient_identity: false};
  .parties |= map(.party as $code | .delivery.webhook = local_hook($code)
    | (if .units then .units |= map(if .delivery then .delivery.webhook = local_hook($code) else . end)
       else . end))
  | .triage_desk.delivery.webhook = local_hook("triage-desk")' "$src/data/directory.json" \
        >"$work/directory.json"

start registry "$registry" "$work/registry.port" "$work/registry.ids"
poll "registry" test -s "$work/registry.port"
registry_port=$(cat "$work/registry.port")

# A service killed with SIGKILL leaves a member behind in its group; on the
# embedded broker its successor gets no partitions before that member's
# session times out (the services' default is 6 s: docs/operations.md,
# "Restarts").
cat >"$work/avvik.properties" <<EOF
bootstrap.file=$work/bootstrap.servers
schema.registry.url=http://127.0.0.1:$registry_port
schema.registry.timeout.ms=2000
directory.file=$work/directory.json
routing.rules.file=$src/data/routing-rules.json
deadlines.file=$src/data/deadlines.json
gateway.listen=127.0.0.1:0
gateway.port.file=$work/gateway.port
gateway.tokens.file=$work/tokens
intake.spool.dir=$work/spool
intake.ack.timeout.ms=2000
analysis.pseudonym.key.file=$work/secrets/pseudonym.key
kafka.reconnect.backoff.max.ms=500
log.level=warn
EOF
openssl rand -hex 32 >"$work/secrets/pseudonym.key"
chmod 600 "$work/secrets/pseudonym.key"
cfg="-c $work/avvik.properties"

# Documents: the local stack's deviations, their times made recent, each
# filed again and again under a new id by its reporter's token.
jq -c '.deviation_id = "@ID@"
     | .occurred_at |= (now - 3600 * (ltrimstr("-") | rtrimstr("h") | tonumber) | todateiso8601)
     | .reported_at |= (now - 3600 * (ltrimstr("-") | rtrimstr("h") | tonumber) | todateiso8601)' \
        "$src/deploy/local/deviations.ndjson" >"$work/templates"
templates=$(wc -l <"$work/templates")
for p in $(jq -r .reporter.party "$work/templates" | sort -u); do
        "$avvik" token "$p" chaos >"$work/token.out"
        head -n 1 "$work/token.out" >"$work/tokens.d/$p"
        tail -n 1 "$work/token.out" >>"$work/tokens"
done

# ---- the broker and the services -----------------------------------------
start broker "$avvik" broker -f "$work/bootstrap.servers" -X directory.file="$work/directory.json"
poll "embedded broker" test -s "$work/bootstrap.servers"
start_service() { # start_service NAME
        [ "$1" != gateway ] || rm -f "$work/gateway.port"
        # shellcheck disable=SC2086
        start "$1" "$avvik" "$1" $cfg
}
for s in $services; do start_service "$s"; done
poll "gateway" test -s "$work/gateway.port"

# ---- clients ---------------------------------------------------------------
# Four clients file their share one after another, each with a new id,
# reading the gateway's port afresh each time (it changes with a restart);
# an id is promised only when answered 202. No answer is not retried: the
# next document gets a new id.
client() { # client N COUNT
        i=0
        while [ $i -lt "$2" ]; do
                i=$((i + 1))
                id=$(cat /proc/sys/kernel/random/uuid)
                line=$(((i * 4 + $1) % templates + 1))
                sed -n "${line}p" "$work/templates" | sed "s/@ID@/$id/" >"$work/doc.$1"
                party=$(jq -r .reporter.party "$work/doc.$1")
                echo "$id" >>"$work/sent.$1"
                code=$(curl -s -o "$work/answer.$1" -w '%{http_code}' --max-time 10 \
                        -H "Authorization: Bearer $(cat "$work/tokens.d/$party")" \
                        -H 'Content-Type: application/json' --data-binary @"$work/doc.$1" \
                        "http://127.0.0.1:$(cat "$work/gateway.port" 2>/dev/null || echo 9)/v1/deviations" ||
                        true)
                [ "$code" != 202 ] || jq -r .id "$work/answer.$1" >>"$work/acked.$1"
        done
}
for c in 1 2 3 4; do
        client $c $(((total + 4 - c) / 4)) &
        clients="$clients $!"
done

# ---- faults ----------------------------------------------------------------
# An outage of the registry follows every (KILLS / OUTAGES)th kill.
[ "$outages" -le "$kills" ] || fail "more registry outages ($outages) than kills ($kills)"
outage_every=$((kills + 1))
[ "$outages" -eq 0 ] || outage_every=$((kills / outages))
k=0
while [ $k -lt "$kills" ]; do
        random 3
        wait_s=$((1 + r))
        random 10
        sleep "$wait_s.$r"
        k=$((k + 1))
        random 5
        # shellcheck disable=SC2086
        set -- $services
        victim=$(eval echo "\${$((r + 1))}")
        kill9 "$victim"
        random 3
        echo "  $(elapsed) s: kill -9 $victim, started again after $r s"
        sleep "$r"
        start_service "$victim"
        if [ $((k % outage_every)) -eq 0 ] && [ $((k / outage_every)) -le "$outages" ]; then
                random 6
                down=$((3 + r))
                kill9 registry
                echo "  $(elapsed) s: registry killed, back after $down s on port $registry_port"
                sleep "$down"
                start registry "$registry" "$work/registry.port" "$work/registry.ids" "$registry_port"
        fi
done
for pid in $clients; do wait "$pid" || true; done
clients=
echo "  $(elapsed) s: the clients are done; waiting for every stage to settle"
restart_dead() { # a service or registry that exited by itself is noted and started again
        for s in $services registry; do
                running "$s" && continue
                kill9 "$s"
                if [ "$s" = registry ]; then
                        start registry "$registry" "$work/registry.port" "$work/registry.ids" \
                                "$registry_port"
                else
                        start_service "$s"
                fi
        done
}
restart_dead

# ---- counting --------------------------------------------------------------
cat "$work"/sent.* | sort -u >"$work/sent"
cat "$work"/acked.* 2>/dev/null | sort -u >"$work/acked"
bs=$(cat "$work/bootstrap.servers")
tail_topic() { # tail_topic TOPIC: its records as JSON lines, to the end
        # shellcheck disable=SC2086
        "$avvik" tail $cfg -t "$1" -e 2>>"$work/tail.log"
}
collect() {
        kcat -C -q -b "$bs" -t deviation.reported -e -f '%h\n' 2>>"$work/tail.log" |
                tr ',' '\n' | sed -n 's/^avk-id=//p' | sort >"$work/stored.all"
        tail_topic deviation.routed | jq -c 'select(.hop == 0)' | sort -u >"$work/routed.lines"
        jq -r 'select(.event_type == "DeviationRouted" and .signature == "valid" and .status == 200)
               | "\(.deviation_id) \(.endpoint)"' "$work/hooks.jsonl" | sort -u >"$work/delivered.pairs"
        tail_topic deviation.status | sort -u >"$work/status.lines"
        tail_topic deviation.analysis | sort -u >"$work/analysis.lines"
}
# count STAGE FOUND DOUBLED: the acked ids among the ids in file FOUND
# ($work/STAGE.found), those not among them (.lost) and the acked ids in file
# DOUBLED (.doubled).
count() {
        sort -u "$2" | comm -12 "$work/acked" - >"$work/$1.found"
        comm -23 "$work/acked" "$work/$1.found" >"$work/$1.lost"
        sort -u "$3" | comm -12 "$work/acked" - >"$work/$1.doubled"
}
# keyed STAGE LINES KEY: a stage of records each deviation has several of,
# one per KEY (state_id, record_id); the lines are distinct, so a KEY twice
# is the same record written twice with different content: doubled.
keyed() {
        jq -r .deviation_id "$2" >"$work/$1.ids"
        jq -r '"\(.'"$3"') \(.deviation_id)"' "$2" | sort | uniq -D | cut -d' ' -f2 \
                >"$work/$1.twice"
        count "$1" "$work/$1.ids" "$work/$1.twice"
}
settle() {
        collect
        uniq -d "$work/stored.all" >"$work/stored.twice"
        count stored "$work/stored.all" "$work/stored.twice"
        keyed routed "$work/routed.lines" deviation_id
        jq -r '"\(.deviation_id) \(.receiver_party)"' "$work/routed.lines" | sort -u |
                comm -12 - "$work/delivered.pairs" | cut -d' ' -f1 >"$work/delivered.ids"
        : >"$work/delivered.twice" # at least once: a delivery again is no fault
        count delivered "$work/delivered.ids" "$work/delivered.twice"
        keyed tracked "$work/status.lines" state_id
        keyed analysed "$work/analysis.lines" record_id
        for stage in stored routed delivered tracked analysed; do
                [ ! -s "$work/$stage.lost" ] || return 1
        done
}
# Every stage has 60 s from here (the restarts' session timeouts included);
# a count stops early once nothing is missing.
settle_by=$(($(date +%s) + 60))
until settle; do
        restart_dead
        [ "$(date +%s)" -lt "$settle_by" ] || break
        sleep 3
done
echo "  $(elapsed) s: counted"
for s in $services registry; do
        running "$s" || echo "  $s had exited by itself" | tee -a "$work/died"
done

printf '\n%-13s %7s %7s %8s\n' stage ids lost doubled
printf '%-13s %7d\n' sent "$(wc -l <"$work/sent")"
printf '%-13s %7d %7s %8s\n' acknowledged "$(wc -l <"$work/acked")" "" ""
failed=0
for stage in stored routed delivered tracked analysed; do
        lost=$(wc -l <"$work/$stage.lost")
        doubled=$(wc -l <"$work/$stage.doubled")
        printf '%-13s %7d %7d %8d\n' $stage "$(wc -l <"$work/$stage.found")" "$lost" "$doubled"
        [ $((lost + doubled)) -eq 0 ] || failed=1
done
invalid=$(jq -r 'select(.signature != "valid")' "$work/hooks.jsonl" | wc -l)
printf '%-13s %7d\n' "webhook posts" "$(wc -l <"$work/hooks.jsonl")"
printf '%-13s %7d\n' "  invalid sig" "$invalid"
echo "seed $seed"
for stage in stored routed delivered tracked analysed; do
        for what in lost doubled; do
                [ -s "$work/$stage.$what" ] || continue
                echo "$stage $what (first 5 of $(wc -l <"$work/$stage.$what")):"
                head -n 5 "$work/$stage.$what" | sed 's/^/  /'
        done
done
kcat -C -q -b "$bs" -t deviation.deadletter -e -f '%h\n' >"$work/deadletter.headers" 2>>"$work/tail.log"
dead=$(grep -c . "$work/deadletter.headers" || true)
[ "$dead" -eq 0 ] || {
        echo "dead letters: $dead; their headers (most frequent first):"
        sed 's/,avk-source-topic=\([^,]*\).*/ (from \1)/' "$work/deadletter.headers" | sort |
                uniq -c | sort -rn | head -n 5 | cut -c1-300
}
[ "$invalid" -eq 0 ] || fail "$invalid webhook requests had an invalid signature"
[ ! -s "$work/died" ] || fail "services died by themselves: $(cat "$work/died")"
[ "$failed" -eq 0 ] || fail "ids answered 202 were lost or doubled (seed $seed)"
[ "$(wc -l <"$work/acked")" -gt 0 ] || fail "no deviation was answered 202"
echo "ok"
