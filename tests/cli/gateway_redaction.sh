#!/bin/sh
# No answer or log line of the HTTP gateway echoes an identity (issue 17,
# point 4): a personnummer planted in Content-Type, its charset,
# reporter.party, a response's deviation_id, an enum field, an unknown key
# and a FHIR code comes back as [personnummer], never as the number, and
# the gateway's log (at debug level) never holds it either.
# usage: gateway_redaction.sh AVVIK_BINARY SAMPLES_DIR FHIR_DIR
set -eu
avvik=$1
samples=$2
fhir=$3
work=$(mktemp -d)
bs=$work/bootstrap.servers
broker_pid=
gateway_pid=
cleanup() {
        for pid in $gateway_pid $broker_pid; do kill "$pid" 2>/dev/null || true; done
        rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
FAIL_LOGS="$work/gateway.log"
pnr=19400314-1233
birth=400314 # what must never come back

"$avvik" broker -f "$bs" 2>"$work/broker.log" &
broker_pid=$!
poll "broker bootstrap file" test -s "$bs"
"$avvik" token 1480 "test client 1480" >"$work/token" || fail "avvik token"
sed -n 2p "$work/token" >"$work/tokens"
"$avvik" gateway -X bootstrap.file="$bs" -X gateway.listen=127.0.0.1:0 \
        -X gateway.port.file="$work/port" -X gateway.tokens.file="$work/tokens" \
        -X log.level=debug 2>"$work/gateway.log" &
gateway_pid=$!
poll "gateway port file" test -s "$work/port"
url=http://127.0.0.1:$(cat "$work/port")

# post WHAT STATUS PATH CONTENT_TYPE FILE: POSTs FILE as party 1480 and
# checks the status and that the answer says [personnummer], not the number.
post() {
        status=$(curl -sS -o "$work/body" -w '%{http_code}' -X POST \
                -H "Authorization: Bearer $(sed -n 1p "$work/token")" -H "Content-Type: $4" \
                --data-binary "@$5" "$url$3") || fail "$1: curl failed"
        [ "$status" = "$2" ] || fail "$1: status $status, want $2: $(cat "$work/body")"
        grep -q "$birth" "$work/body" && fail "$1: the answer echoes the personnummer: $(cat "$work/body")"
        grep -qF "[personnummer]" "$work/body" || fail "$1: the answer lacks [personnummer]: $(cat "$work/body")"
}

sample=$samples/01-discharge-information-missing.json
post "Content-Type" 415 /v1/deviations "application/$pnr" "$sample"
post "charset" 415 /v1/deviations "application/json; charset=$pnr" "$sample"
jq --arg p "$pnr" '.reporter.party = $p' "$sample" >"$work/party.json"
post "reporter.party" 403 /v1/deviations application/json "$work/party.json"
jq --arg p "$pnr" '.harm.level = $p' "$sample" >"$work/enum.json"
post "an enum field" 400 /v1/deviations application/json "$work/enum.json"
jq --arg p "$pnr" '.[$p] = 1' "$sample" >"$work/key.json"
post "an unknown key" 400 /v1/deviations application/json "$work/key.json"
printf '{"deviation_id": "%s", "responded_at": "2026-11-18T08:00:00.000Z", "party": "1480", "kind": "ACKNOWLEDGED"}\n' \
        "$pnr" >"$work/response.json"
post "a response's deviation_id" 400 /v1/deviations/3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10/responses \
        application/json "$work/response.json"
jq --arg p "$pnr" '.actuality = $p' "$fhir/adverse-event-minimal.json" >"$work/fhir.json"
post "a FHIR code" 400 /v1/deviations application/fhir+json "$work/fhir.json"

grep -q "$birth" "$work/gateway.log" && fail "the gateway's log holds the personnummer: $(grep "$birth" "$work/gateway.log")"
echo "gateway redaction: ok"
