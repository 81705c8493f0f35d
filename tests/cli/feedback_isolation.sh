#!/bin/sh
# The feedback loop to the reporting party (issue 15) across the whole
# pipeline: broker, gateway, router, tracker and notifier in processes of
# their own, the local stack's webhook receiver recording what each party's
# endpoint took. Three parties - Göteborg (1480), Tanum (1435) and VGR - file
# deviations through the gateway; they are routed, one is rejected as the
# wrong receiver and re-routed, some are answered. Then, for every party:
# its webhook, its inbox topics and its look-ups show exactly the deviations
# it reported or received (every party a deviation was ever routed to), and
# nothing else; another party's deviation is a 404. And Göteborg's deviation
# answered by VGR reaches Göteborg's webhook and inbox with the analysis and
# action plan in full and its reply reference, and both sides' GET shows the
# same timeline.
# usage: feedback_isolation.sh AVVIK_BINARY SOURCE_DIR
set -eu
avvik=$1
src=$2
work=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
trap stop_started EXIT
FAIL_LOGS="$work/*.log"

parties="1480 1435 VGR"
# The sample directory with every webhook of the three parties on the
# receiver below (one endpoint per party), one for Tanum, which has an inbox
# only in the sample, and the county's triage desk's (not a party's).
for p in $parties triage-desk; do
        openssl rand -hex 32 >"$work/$p-webhook.secret"
        chmod 600 "$work/$p-webhook.secret"
done
python3 "$src/deploy/local/webhook_receiver.py" --record "$work/hooks.jsonl" "$work/hook.port" \
        "$work"/*-webhook.secret >"$work/webhooks.log" 2>&1 &
started="$started $!"
poll "webhook receiver" test -s "$work/hook.port"
hook="http://127.0.0.1:$(cat "$work/hook.port")/hook"
jq --arg hook "$hook" --arg dir "$work" '
  def local_hook($code): {url: ($hook + "/" + $code), secret_file: ($dir + "/" + $code + "-webhook.secret"),
                          allow_http: true, patient_identity: false};
  .parties |= map(.party as $code
    | if $code == "1435" then .delivery.webhook = local_hook($code) else . end
    | (if .delivery.webhook then .delivery.webhook = local_hook($code) else . end)
    | (if .units then .units |= map(if .delivery.webhook then .delivery.webhook = local_hook($code) else . end)
       else . end))
  | .triage_desk.delivery |= (if .webhook then .webhook = local_hook("triage-desk") else . end)' \
        "$src/data/directory.json" >"$work/directory.json"

: >"$work/tokens"
for p in $parties; do
        "$avvik" token "$p" "test $p" >"$work/token.$p"
        sed -n 2p "$work/token.$p" >>"$work/tokens"
done
token() { sed -n 1p "$work/token.$1"; }

start_broker_with_inboxes() {
        bs=$work/bootstrap.servers
        "$avvik" broker -f "$bs" -X directory.file="$work/directory.json" 2>"$work/broker.log" &
        started="$started $!"
        poll "the broker's bootstrap file" test -s "$bs"
}
start_broker_with_inboxes
cat >"$work/avvik.properties" <<EOF
bootstrap.file=$bs
directory.file=$work/directory.json
routing.rules.file=$src/data/routing-rules.json
deadlines.file=$src/data/deadlines.json
gateway.listen=127.0.0.1:0
gateway.port.file=$work/gateway.port
gateway.tokens.file=$work/tokens
tracker.tick.ms=100
notify.retry.backoff.ms=100
EOF
cfg="-c $work/avvik.properties"
for service in gateway route track notify; do
        "$avvik" "$service" $cfg >"$work/$service.log" 2>&1 &
        started="$started $!"
done
poll "gateway port" test -s "$work/gateway.port"
gw="http://127.0.0.1:$(cat "$work/gateway.port")"
poll "gateway ready" curl -sf -o /dev/null "$gw/readyz"

post() { # post PARTY PATH: the body on stdin; the answer in $work/answer, the status printed
        curl -sS -o "$work/answer" -w '%{http_code}' -H "Authorization: Bearer $(token "$1")" \
                -H "Content-Type: application/json" --data-binary @- "$gw$2"
}
get() { # get PARTY PATH: the body in $work/got, the status printed
        curl -sS -o "$work/got" -w '%{http_code}' -H "Authorization: Bearer $(token "$1")" "$gw$2"
}
tail_topic() { "$avvik" tail $cfg -t "$1" -e 2>/dev/null; }
# An inbox topic holds several record types (docs/notify.md, "Inbox topics"):
# read with kcat, keyed by deviation id, the avk-type header naming the type.
inbox() { kcat -C -b "$(cat "$bs")" -t "$1" -e -q -f "$2"; }

# ---- four deviations from three parties --------------------------------------
# d1 Göteborg -> VGR (answered); d2 Tanum -> VGR (rejected, re-routed);
# VGR's d3 -> Göteborg (acknowledged) and d4 -> Tanum.
file() { # file SAMPLE_LINE ID REFERENCE RECEIVER
        sed -n "$1p" "$src/deploy/local/deviations.ndjson" |
                jq -c --arg id "$2" --arg ref "$3" --arg to "$4" '.deviation_id = $id | .reply_reference = $ref
                  | .receiver = {party: $to, unit_hsa_id: null}
                  | .occurred_at = (now - 7200 | todateiso8601) | .reported_at = (now - 3600 | todateiso8601)' \
                >"$work/doc.json"
        party=$(jq -r .reporter.party "$work/doc.json")
        status=$(post "$party" /v1/deviations <"$work/doc.json")
        [ "$status" = 202 ] || fail "filing $2 as $party: $status $(cat "$work/answer")"
}
d1=fb000001-0c1d-4e2f-8a3b-000000000001
d2=fb000002-0c1d-4e2f-8a3b-000000000002
d3=fb000003-0c1d-4e2f-8a3b-000000000003
d4=fb000004-0c1d-4e2f-8a3b-000000000004
all="$d1 $d2 $d3 $d4"
file 9 $d1 GBG-CASE-0001 VGR
file 3 $d2 TANUM-CASE-0002 VGR
file 2 $d3 VGR-CASE-0003 1480
file 4 $d4 VGR-CASE-0004 1435

receiver_of() { # receiver_of ID: the receiving party of the latest hop
        tail_topic deviation.routed | jq -r --arg d "$1" 'select(.deviation_id == $d) | "\(.hop) \(.receiver_party)"' |
                sort -n | tail -n 1 | cut -d' ' -f2
}
routed_all() { [ "$(tail_topic deviation.routed | jq -r .deviation_id | sort -u | wc -l)" -ge 4 ]; }
poll "routing of all four" routed_all
respond() { # respond ID KIND PARTY [FIELDS-JSON]
        jq -nc --arg kind "$2" --arg party "$3" --argjson extra "${4:-{\}}" \
                '{responded_at: (now | todateiso8601), party: $party, unit_hsa_id: null, kind: $kind,
                  analysis: null, action_plan: null, suggested_receiver: null, comment: null} + $extra' |
                post "$3" "/v1/deviations/$1/responses" >"$work/status"
        [ "$(cat "$work/status")" = 202 ] || fail "$2 of $1 by $3: $(cat "$work/status") $(cat "$work/answer")"
}
[ "$(receiver_of $d1)" = VGR ] || fail "d1 went to $(receiver_of $d1), not VGR"
analysis="Läkemedelslistan följde inte med vid utskrivningen."
plan="Utskrivningschecklistan kompletteras; uppföljning om tre månader."
# The gateway answers a receiver's response only once its view has the routing.
can_respond() { [ "$(get VGR "/v1/deviations/$1")" = 200 ]; }
poll "VGR's view of d1" can_respond $d1
respond $d1 ACKNOWLEDGED VGR
respond $d1 ANSWERED VGR "$(jq -nc --arg a "$analysis" --arg p "$plan" '{analysis: $a, action_plan: $p}')"
first2=$(receiver_of $d2)
can_respond_as() { [ "$(get "$1" "/v1/deviations/$2")" = 200 ]; }
poll "the receiver's view of d2" can_respond_as "$first2" $d2
respond $d2 REJECTED_WRONG_RECEIVER "$first2" '{"comment": "Gäller kommunens hemsjukvård."}'
rerouted() { [ "$(tail_topic deviation.routed | jq -r --arg d $d2 'select(.deviation_id == $d) | .hop' | sort -n | tail -n 1)" = 1 ]; }
poll "re-routing of d2" rerouted
r3=$(receiver_of $d3)
poll "the receiver's view of d3" can_respond_as "$r3" $d3
respond $d3 ACKNOWLEDGED "$r3"

# ---- what each party is entitled to: reported, or ever routed to it ----------
tail_topic deviation.routed >"$work/routed.jsonl"
entitled() { # entitled PARTY: the ids, sorted
        for d in $all; do
                if jq -e -s --arg d "$d" --arg p "$1" 'any(.[]; .deviation_id == $d and (.reporter_party == $p or .receiver_party == $p))' \
                        "$work/routed.jsonl" >/dev/null; then echo "$d"; fi
        done | sort -u
}
# Every deviation's feedback has reached its reporter: ANSWERED of d1, REROUTED of d2,
# ACKNOWLEDGED of d3, ROUTED of d4; and every routing its receiver.
fed() { # fed ID KIND: the reporter's webhook took feedback KIND of ID
        jq -e -s --arg d "$1" --arg k "$2" 'any(.[]; .feedback.deviation_id == $d and .feedback.kind == $k and .status == 200)' \
                "$work/hooks.jsonl" >/dev/null
}
poll "d1 answered to Göteborg" fed $d1 ANSWERED
poll "d2 re-routed to Tanum" fed $d2 REROUTED
poll "d3 acknowledged to VGR" fed $d3 ACKNOWLEDGED
poll "d4 routed to VGR" fed $d4 ROUTED
# Every first routing went to a party with a webhook (d2's second to the county's
# triage desk, not a party).
routed_delivered() {
        [ "$(jq -s '[.[] | select(.event_type == "DeviationRouted" and .status == 200) | .deviation_id] | unique | length' \
                "$work/hooks.jsonl")" -eq 4 ]
}
poll "every first routing delivered" routed_delivered
grep -q "signature INVALID" "$work/webhooks.log" && fail "a signature did not verify"
sleep 1 # what is in flight lands

for p in $parties; do
        entitled "$p" >"$work/want.$p"
        [ -s "$work/want.$p" ] || fail "$p is entitled to nothing: the scenario is wrong"
        # Its webhook.
        jq -r --arg p "$p" 'select(.endpoint == $p) | .deviation_id' "$work/hooks.jsonl" | sort -u >"$work/hook.$p"
        cmp -s "$work/want.$p" "$work/hook.$p" ||
                fail "$p's webhook took $(tr '\n' ' ' <"$work/hook.$p"), want $(tr '\n' ' ' <"$work/want.$p")"
        # Its inbox topics (the party's and its units').
        : >"$work/inbox.$p"
        for t in $(jq -r --arg p "$p" '.parties[] | select(.party == $p) | [.delivery.inbox_topic, .units[]?.delivery.inbox_topic] | .[] | values' \
                "$work/directory.json" | sort -u); do
                inbox "$t" '%k\n' >>"$work/inbox.$p"
        done
        sort -u -o "$work/inbox.$p" "$work/inbox.$p"
        cmp -s "$work/want.$p" "$work/inbox.$p" ||
                fail "$p's inbox topics hold $(tr '\n' ' ' <"$work/inbox.$p"), want $(tr '\n' ' ' <"$work/want.$p")"
        # Its look-ups: the lists, and each id.
        : >"$work/list.$p"
        for role in reporter receiver; do
                [ "$(get "$p" "/v1/deviations?role=$role&state=all")" = 200 ] || fail "$p's $role list: $(cat "$work/got")"
                jq -r '.items[].deviation_id' "$work/got" >>"$work/list.$p"
        done
        sort -u -o "$work/list.$p" "$work/list.$p"
        cmp -s "$work/want.$p" "$work/list.$p" ||
                fail "$p's lists hold $(tr '\n' ' ' <"$work/list.$p"), want $(tr '\n' ' ' <"$work/want.$p")"
        for d in $all; do
                status=$(get "$p" "/v1/deviations/$d")
                if grep -qx "$d" "$work/want.$p"; then
                        [ "$status" = 200 ] || fail "$p's look-up of its $d: $status"
                else
                        [ "$status" = 404 ] || fail "$p's look-up of another's $d: $status, want 404"
                fi
        done
        echo "$p: webhook, inbox and look-ups show exactly $(wc -l <"$work/want.$p") deviations"
done

# ---- Göteborg's deviation answered by VGR --------------------------------------
jq -c --arg d $d1 'select(.feedback.deviation_id == $d and .feedback.kind == "ANSWERED") | .feedback' \
        "$work/hooks.jsonl" | head -n 1 >"$work/answered.json"
[ "$(jq -r .analysis "$work/answered.json")" = "$analysis" ] || fail "Göteborg's webhook: analysis $(jq .analysis "$work/answered.json")"
[ "$(jq -r .action_plan "$work/answered.json")" = "$plan" ] || fail "Göteborg's webhook: action plan"
[ "$(jq -r .reply_reference "$work/answered.json")" = GBG-CASE-0001 ] || fail "Göteborg's webhook: reply_reference"
[ "$(jq -r .dispute_until "$work/answered.json")" != null ] || fail "Göteborg's webhook: no dispute_until"
# The analysis and plan reach Göteborg's inbox in a DeviationFeedback (Avro keeps strings as
# written): the only record type there that carries them.
inbox avvik.inbox.1480 '%k %h\n%s\n' >"$work/inbox-1480"
grep -q "^$d1 .*avk-type=DeviationFeedback" "$work/inbox-1480" || fail "Göteborg's inbox: no feedback of d1"
grep -aqF "$analysis" "$work/inbox-1480" || fail "Göteborg's inbox: no analysis"
grep -aqF "$plan" "$work/inbox-1480" || fail "Göteborg's inbox: no action plan"
# VGR's own webhook never got Göteborg's feedback (reply reference included).
jq -e -s --arg d $d1 'any(.[]; .endpoint == "VGR" and .event_type == "DeviationFeedback" and .deviation_id == $d)' \
        "$work/hooks.jsonl" >/dev/null && fail "VGR's webhook got the reporter's feedback"
get 1480 "/v1/deviations/$d1" >/dev/null
jq -c .timeline "$work/got" >"$work/timeline.1480"
get VGR "/v1/deviations/$d1" >/dev/null
jq -c .timeline "$work/got" >"$work/timeline.VGR"
cmp -s "$work/timeline.1480" "$work/timeline.VGR" || fail "the timelines differ: $(cat "$work/timeline.1480") / $(cat "$work/timeline.VGR")"
grep -q ANSWERED "$work/timeline.1480" || fail "the timeline lacks the answer: $(cat "$work/timeline.1480")"
echo "feedback_isolation: each party sees exactly its own; Göteborg got VGR's answer in full, same timeline on both sides"
