#!/bin/sh
# The local stack: the embedded broker and every avvik service on this
# machine, a day of deviations filed through the HTTP gateway by the
# systems the parties already use, the receivers' responses, a dispute and
# deviations nobody answers; then time is moved on (the tracker and the
# dashboard run on a demo clock) and what happened is printed: who received
# what, response times, reminders, escalations, the pseudonymised analysis
# stream and where the dashboard is. Ctrl-C stops everything.
# usage: stack.sh AVVIK_BINARY [--once]   (--once: stop after the summary)
set -eu
avvik=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
once=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
state=$(mktemp -d /tmp/avvik-stack.XXXXXX)
logs=$state/logs
mkdir -p "$logs" "$state/secrets" "$state/tokens.d" "$state/spool"
pids=""
broker_pid=
stopping=
sleeper=
running() { # running PID: not exited (an exited child stays a zombie until waited for)
        kill -0 "$1" 2>/dev/null && ! ps -o stat= -p "$1" | grep -q Z
}
stop_all() { # stop_all PID...: SIGTERM, then SIGKILL for what still runs 30 s later
        for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
        i=0
        for pid in "$@"; do
                while running "$pid"; do
                        i=$((i + 1))
                        if [ $i -ge 300 ]; then
                                echo "  process $pid did not stop within 30 s: killed" >&2
                                kill -KILL "$pid" 2>/dev/null || true
                        fi
                        sleep 0.1
                done
                wait "$pid" 2>/dev/null || true
        done
}
stop() {
        [ -z "$stopping" ] || return 0
        stopping=1
        echo
        echo "stopping the services (each drains and commits), then the broker..."
        # shellcheck disable=SC2086
        stop_all $pids
        [ -z "$broker_pid" ] || stop_all "$broker_pid"
        [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
        rm -rf "$state"
        echo "stopped"
}
trap stop EXIT
trap 'exit 130' INT TERM

fail() {
        echo "FAILED: $*" >&2
        for log in "$logs"/*.log; do
                echo "--- $log" >&2
                tail -n 15 "$log" >&2
        done
        exit 1
}
# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
        what=$1 seconds=$2
        shift 2
        i=0
        until "$@" 2>/dev/null; do
                i=$((i + 1))
                [ $i -lt $((seconds * 10)) ] || fail "$what: not within $seconds s"
                sleep 0.1
        done
}
start() { # start NAME COMMAND...: a service in the background, its log in $logs
        name=$1
        shift
        "$@" >"$logs/$name.log" 2>&1 &
        pids="$! $pids"
}
ms_now() { echo $(($(date +%s) * 1000)); }
day=86400000

# ---- secrets, the local party directory, configuration -------------------
openssl rand -hex 32 >"$state/secrets/pseudonym.key"
chmod 600 "$state/secrets/pseudonym.key"
# Every webhook of the sample directory goes to the receiver below, one path
# per party and one for the county's triage desk, each with a secret of its own
# (http: loopback only); so does one for every party that files below, whose
# system is told what becomes of its deviations (docs/notify.md, "What the
# reporting party gets").
reporters=$(jq -r .reporter.party "$here/deviations.ndjson" | sort -u | tr '\n' ' ')
hook_parties=$(jq -r --arg reporters "$reporters" '.parties[]
        | select(.delivery.webhook or ((.units // []) | any(.delivery.webhook))
                 or (.party as $p | $reporters | split(" ") | index($p))) | .party' \
        "$src/data/directory.json")
for p in $hook_parties triage-desk; do
        openssl rand -hex 32 >"$state/secrets/$p-webhook.secret"
        chmod 600 "$state/secrets/$p-webhook.secret" # avvik refuses a key others may read
done
start webhooks python3 "$here/webhook_receiver.py" --record "$state/hooks.jsonl" "$state/hook.port" \
        "$state"/secrets/*-webhook.secret
wait_for "webhook receiver" 10 test -s "$state/hook.port"
hook="http://127.0.0.1:$(cat "$state/hook.port")/hook"
jq --arg hook "$hook" --arg reporters "$reporters" '
  def local_hook($code): {url: ($hook + "/" + $code), secret_file: ("secrets/" + $code + "-webhook.secret"),
                          allow_http: true, patient_identity: false};
  .parties |= map(.party as $code
    | (if .delivery.webhook or ($reporters | split(" ") | index($code)) then .delivery.webhook = local_hook($code)
       else . end)
    | (if .units then .units |= map(if .delivery.webhook then .delivery.webhook = local_hook($code) else . end)
       else . end))
  | .triage_desk.delivery |= (if .webhook then .webhook = local_hook("triage-desk") else . end)' \
        "$src/data/directory.json" >"$state/directory.json"

ms_now >"$state/clock"
cat >"$state/avvik.properties" <<EOF
bootstrap.file=$state/bootstrap.servers
directory.file=$state/directory.json
routing.rules.file=$src/data/routing-rules.json
deadlines.file=$src/data/deadlines.json
gateway.listen=127.0.0.1:0
gateway.port.file=$state/gateway.port
gateway.tokens.file=$state/tokens
intake.spool.dir=$state/spool
analysis.pseudonym.key.file=$state/secrets/pseudonym.key
tracker.clock.file=$state/clock
tracker.tick.ms=100
dashboard.listen=127.0.0.1:${AVVIK_DASHBOARD_PORT:-0}
dashboard.port.file=$state/dashboard.port
dashboard.clock.file=$state/clock
dashboard.tokens.file=$state/dashboard-tokens
log.level=warn
EOF
cfg="-c $state/avvik.properties"

# Gateway tokens: one per party, as each party's own system would hold.
parties="VGR $(tail -n +2 "$src/data/municipalities.csv" | cut -d, -f1)"
for p in $parties; do
        "$avvik" token "$p" "stack demo" >"$state/token.out"
        head -n 1 "$state/token.out" >"$state/tokens.d/$p"
        tail -n 1 "$state/token.out" >>"$state/tokens"
done
# The dashboard's: one analyst, as a patient-safety team would hold.
"$avvik" token --role analyst "stack demo" >"$state/token.out"
head -n 1 "$state/token.out" >"$state/dashboard.token"
tail -n 1 "$state/token.out" >"$state/dashboard-tokens"

# ---- the broker and the services ------------------------------------------
"$avvik" broker -f "$state/bootstrap.servers" -X directory.file="$state/directory.json" >"$logs/broker.log" 2>&1 &
broker_pid=$!
wait_for "embedded broker" 20 test -s "$state/bootstrap.servers"
start gateway "$avvik" gateway $cfg
start route "$avvik" route $cfg
start notify "$avvik" notify $cfg
start track "$avvik" track $cfg
start analyse "$avvik" analyse $cfg
start dashboard "$avvik" dashboard $cfg
wait_for "gateway" 30 test -s "$state/gateway.port"
wait_for "dashboard" 30 test -s "$state/dashboard.port"
gw="http://127.0.0.1:$(cat "$state/gateway.port")"
dash="http://127.0.0.1:$(cat "$state/dashboard.port")"
# The gateway files only once its view of the lifecycle topics is loaded
# (docs/gateway.md, "Look-ups"): ready, not just listening.
wait_for "gateway ready" 60 curl -sf -o /dev/null "$gw/readyz"

name_of() { # name_of PARTY
        [ "$1" = VGR ] && { echo "VGR"; return; }
        grep "^$1," "$src/data/municipalities.csv" | cut -d, -f2
}
post() { # post PARTY PATH: the body on stdin; prints the answer
        curl -sS -H "Authorization: Bearer $(cat "$state/tokens.d/$1")" \
                -H "Content-Type: application/json" --data-binary @- "$gw$2"
}
look() { # look PATH: GET of the dashboard's PATH with the analyst's token
        curl -sS -H "Authorization: Bearer $(cat "$state/dashboard.token")" "$dash$1"
}
tail_topic() { # tail_topic TOPIC: the topic's records as JSON lines
        "$avvik" tail $cfg -t "$1" -e 2>/dev/null
}

# ---- a day of deviations ---------------------------------------------------
echo
echo "== 12 deviations filed through the gateway (POST /v1/deviations), each with its party's token"
jq -c '.occurred_at |= (now - 3600 * (ltrimstr("-") | rtrimstr("h") | tonumber) | todateiso8601)
     | .reported_at |= (now - 3600 * (ltrimstr("-") | rtrimstr("h") | tonumber) | todateiso8601)' \
        "$here/deviations.ndjson" >"$state/deviations.ndjson"
while read -r doc; do
        party=$(echo "$doc" | jq -r .reporter.party)
        answer=$(echo "$doc" | post "$party" /v1/deviations)
        printf '  %-26s from %-12s -> %s\n' "$(echo "$doc" | jq -r .category)" "$(name_of "$party")" \
                "$(echo "$answer" | jq -r '"\(.status) \(.id)"')"
done <"$state/deviations.ndjson"

routed_all() { [ "$(tail_topic deviation.routed | jq -r .deviation_id | sort -u | wc -l)" -ge 12 ]; }
wait_for "routing of all 12" 60 routed_all

receiver_of() { # receiver_of DEVIATION_ID: the receiving party of the latest hop
        tail_topic deviation.routed | jq -r --arg d "$1" 'select(.deviation_id == $d) | "\(.hop) \(.receiver_party)"' |
                sort -n | tail -n 1 | cut -d' ' -f2
}
echo
echo "== routed by the agreement's rules (deviation.routed), each receiver told through its inbox topic or webhook"
tail_topic deviation.routed | jq -r '"\(.deviation_id) \(.category) \(.reporter_party) \(.receiver_party) \(.decision) \(.rule_id)"' |
        while read -r id cat from to decision rule; do
                printf '  %s %-24s %-12s -> %-10s %s (%s)\n' "$(echo "$id" | cut -c1-8)" "$cat" "$(name_of "$from")" \
                        "$(name_of "$to")" "$decision" "$rule"
        done

# ---- responses ---------------------------------------------------------------
respond() { # respond DEVIATION_NUMBER KIND PARTY [FIELDS-JSON]
        id=$(printf '5a1e%04d-0c1d-4e2f-8a3b-%012d' "$1" "$1")
        extra=${4:-'{}'}
        jq -nc --arg kind "$2" --arg party "$3" --argjson extra "$extra" \
                '{responded_at: (now | todateiso8601), party: $party, unit_hsa_id: null, kind: $kind,
                  analysis: null, action_plan: null, suggested_receiver: null, comment: null} + $extra' |
                post "$3" "/v1/deviations/$id/responses" >"$state/answer.json"
        printf '  deviation %s  %-24s by %-12s -> %s\n' "$1" "$2" "$(name_of "$3")" \
                "$(jq -r '.status // .error' "$state/answer.json")"
}
dev() { printf '5a1e%04d-0c1d-4e2f-8a3b-%012d' "$1" "$1"; }
echo
echo "== the receivers respond (POST /v1/deviations/{id}/responses)"
answer='{"analysis": "Utskrivningsmeddelandet skickades inte när vårdtiden förlängdes.", "action_plan": "Rutinen för utskrivning gås igenom på avdelningens APT; stickprov i tre månader."}'
for n in 1 2 4 7 9; do
        r=$(receiver_of "$(dev $n)")
        respond $n ACKNOWLEDGED "$r"
        respond $n ANSWERED "$r" "$answer"
done
for n in 5 8 10; do respond $n ACKNOWLEDGED "$(receiver_of "$(dev $n)")"; done
r=$(receiver_of "$(dev 3)")
respond 3 REJECTED_WRONG_RECEIVER "$r" '{"comment": "SIP-kallelsen gällde kommunens hemsjukvård, inte vårdcentralen."}'
reporter4=$(jq -r 'select(.deviation_id == "'"$(dev 4)"'") | .reporter.party' "$state/deviations.ndjson")
# The reporter disputes once it sees the answer: its own look-up (docs/gateway.md, "Look-ups").
lookup() { # lookup PARTY ID: GET /v1/deviations/ID as PARTY
        curl -sS -H "Authorization: Bearer $(cat "$state/tokens.d/$1")" "$gw/v1/deviations/$2"
}
for _ in $(seq 100); do
        lookup "$reporter4" "$(dev 4)" >"$state/lookup4.json"
        [ "$(jq -r '.dispute_until // empty' "$state/lookup4.json")" ] && break
        sleep 0.1
done
echo "  deviation 4: the reporter's look-up shows the answer, dispute until $(jq -r '.dispute_until' "$state/lookup4.json")"
respond 4 DISPUTED "$reporter4" '{"comment": "Svaret saknar en plan för hur dosändringar ska nå hemsjukvården."}'
echo "  deviations 6, 11 and 12: nobody responds"

# ---- time passes -------------------------------------------------------------
advance() { # advance DAYS: moves the demo clock of tracker and dashboard
        echo $(($(cat "$state/clock") + $1 * day)) >"$state/clock.tmp"
        mv "$state/clock.tmp" "$state/clock"
}
echo
echo "== time passes: the tracker's and the dashboard's demo clock (tracker.clock.file, dashboard.clock.file)"
echo "   moves on 7 days, then 70 more; deadlines follow data/deadlines.json and the Swedish calendar"
sleep 2
for _ in 1 2 3 4 5 6 7; do advance 1; sleep 0.5; done
for _ in 1 2 3 4 5 6 7; do advance 10; sleep 0.5; done
sleep 3

echo
echo "== reminders (deviation.reminder)"
tail_topic deviation.reminder >"$state/reminders.jsonl"
jq -r '"  \(.deviation_id[0:8]) \(.kind) deadline \(.deadline_at) to \(.receiver_party)"' "$state/reminders.jsonl" | sort -u
[ -s "$state/reminders.jsonl" ] || fail "no reminder was sent"
echo
echo "== escalations up the ladder (deviation.escalated)"
tail_topic deviation.escalated >"$state/escalations.jsonl"
jq -r '"  \(.deviation_id[0:8]) \(.party) \(.step) (\(.reason)) held by \(.holder // "-")"' "$state/escalations.jsonl"
grep -q ANSWER_DISPUTED "$state/escalations.jsonl" || fail "the dispute was not escalated"
grep -q ACKNOWLEDGE_DEADLINE_PASSED "$state/escalations.jsonl" || fail "no missed deadline was escalated"
echo
echo "== where each deviation stands (latest of deviation.status), response times in hours"
tail_topic deviation.status | jq -s -r 'group_by(.deviation_id) | map(max_by(.version))[] |
        "  \(.deviation_id[0:8]) \(.state) receiver \(.receiver_party) ack \(if .time_to_acknowledge_ms then (.time_to_acknowledge_ms / 3600000 * 10 | round / 10) else "-" end) h, answer \(if .time_to_answer_ms then (.time_to_answer_ms / 3600000 * 10 | round / 10) else "-" end) h, deadline kept: \(.deadline_kept // "-"), overdue: \(.overdue)"'
echo
echo "== webhooks the receivers' systems took (signature checked)"
sed 's/^/  /' "$logs/webhooks.log"
grep -q "signature valid" "$logs/webhooks.log" || fail "no webhook was taken with a valid signature"
if grep -q "signature INVALID" "$logs/webhooks.log"; then fail "a webhook signature did not verify"; fi
echo
echo "== what the reporting parties' systems were told (DeviationFeedback to the reporter's webhook)"
for n in 1 3 4 6; do
        d=$(dev $n)
        from=$(jq -r 'select(.deviation_id == "'"$d"'") | .reporter.party' "$state/deviations.ndjson")
        echo "  deviation $n, filed by $(name_of "$from"):"
        jq -r --arg d "$d" --arg p "$from" 'select(.endpoint == $p and .feedback.deviation_id == $d and .status == 200)
                | .feedback | "\(.version)\t\(.kind)\t\(
                  if .kind == "ROUTED" or .kind == "REROUTED" then "to \(.receiver_party) (\(.decision), \(.rule_id))"
                  elif .kind == "ANSWERED" then "plan: \(.action_plan); dispute until \(.dispute_until)"
                  elif .kind == "ESCALATED" or .escalation_step then "step \(.escalation_step), held by \(.holder // "-")"
                  elif .kind == "REJECTED_WRONG_RECEIVER" or .kind == "DISPUTED" then "\(.reason // "")"
                  else "" end)"' "$state/hooks.jsonl" | sort -n -u | sed 's/^[0-9]*\t/    /; s/\t/ /; s/ $//'
done
grep -q '"kind": "ANSWERED"' "$state/hooks.jsonl" || fail "no reporter was told of an answer"
grep -q '"kind": "REROUTED"' "$state/hooks.jsonl" || fail "no reporter was told of a re-routing"
grep -q '"kind": "ESCALATED"' "$state/hooks.jsonl" || fail "no reporter was told of an escalation"
echo
echo "== deviation 1 as its reporter looks it up (GET /v1/deviations/{id}): the timeline both sides see"
from1=$(jq -r 'select(.deviation_id == "'"$(dev 1)"'") | .reporter.party' "$state/deviations.ndjson")
lookup "$from1" "$(dev 1)" | jq -r '"  state \(.state), receiver \(.receiver_party), answered: \(.answer.action_plan // "-")",
        (.timeline[] | "    \(.at) \(.event) \(.party)\(if .rule then " rule \(.rule)" else "" end)\(if .step then " step \(.step)" else "" end)")'
echo
echo "== the analysis stream (deviation.analysis): pseudonymised, free text scrubbed"
tail_topic deviation.analysis >"$state/analysis.jsonl"
echo "  $(wc -l <"$state/analysis.jsonl") records; one of them:"
head -n 1 "$state/analysis.jsonl" | jq -c '{state, patient_pseudonym, age_group, sex, municipality_code, subregion, category, harm_level}' | sed 's/^/  /'
ids=$(jq -r '.patient.personal_id // empty' "$state/deviations.ndjson" | sort -u)
leaks=0
for pid in $ids; do
        if grep -q -e "$pid" -e "$(echo "$pid" | cut -c3-)" "$state/analysis.jsonl"; then leaks=$((leaks + 1)); fi
done
echo "  patients' identity numbers found in the stream: $leaks"
[ "$leaks" -eq 0 ] || fail "a personnummer reached the analysis stream"
# Nor anywhere a user or Prometheus can look: the dashboard, its report and
# API, the services' metrics, their logs.
for path in / /api/sammanstallning.json /api/forsenade.json "/rapport/$(date +%Y)" /metrics; do
        look "$path" >>"$state/looked-at.txt"
done
curl -sS "$gw/metrics" >>"$state/looked-at.txt"
cat "$logs"/*.log >>"$state/looked-at.txt"
for pid in $ids; do
        if grep -q -e "$pid" -e "$(echo "$pid" | cut -c3-)" "$state/looked-at.txt"; then
                fail "a personnummer is shown by the dashboard, the metrics or a log"
        fi
done
echo "  ... nor in the dashboard, its report, /metrics or any service's log"

overdue=$(look /api/forsenade.json | jq -r '.total // (.deviations // . | length)')
echo
echo "== the dashboard's overdue list (GET /api/forsenade.json, on the demo clock): $overdue deviations"
[ "$overdue" -gt 0 ] || fail "the dashboard lists no overdue deviation"
echo
echo "== the dashboard (in Swedish): $dash/#nyckel=$(cat "$state/dashboard.token")"
echo "   (the analyst's token in the link's fragment logs the browser in; the report: $dash/rapport/$(date +%Y))"
echo "   gateway: $gw   logs: $logs"
if [ "$once" = --once ]; then
        exit 0
fi
echo "   running until Ctrl-C"
# In the background and waited for: a TERM sent to this script alone (timeout,
# a container's stop) runs the trap at once, not after the sleep's hour.
while :; do
        sleep 3600 &
        sleeper=$!
        wait $sleeper
done
