#!/bin/sh
# The HTTP gateway as a filing system meets it: 'avvik broker' and 'avvik
# gateway' in processes of their own, curl as the client. Every status code of
# docs/gateway.md is provoked and checked, records are read back from Kafka
# with 'avvik tail', responses are authorised against DeviationRouted events
# (filed by avk_test_produce, as the router would), TLS is served with a
# self-signed certificate, and with the broker gone the gateway turns unready
# and answers 503 with Retry-After.
# usage: gateway.sh AVVIK_BINARY AVK_TEST_PRODUCE SAMPLES_DIR FHIR_DIR
set -eu
avvik=$1
produce=$2
samples=$3
fhir=$4
work=$(mktemp -d)
bs=$work/bootstrap.servers
broker_pid=
gateway_pid=
tls_pid=
cleanup() {
        for pid in $tls_pid $gateway_pid $broker_pid; do kill "$pid" 2>/dev/null || true; done
        rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
FAIL_LOGS="$work/gateway.log"

"$avvik" broker -f "$bs" 2>"$work/broker.log" &
broker_pid=$!
poll "broker bootstrap file" test -s "$bs"
X="-X bootstrap.file=$bs"

# Tokens, one per party the test files for; the file holds only their hashes.
: >"$work/tokens"
for party in 1480 1490 VGR 1401 DESK; do
        "$avvik" token "$party" "test client $party" >"$work/token.$party" || fail "avvik token $party"
        sed -n 2p "$work/token.$party" >>"$work/tokens"
done
token() { sed -n 1p "$work/token.$1"; }
grep -q "$(token 1480)" "$work/tokens" && fail "the tokens file holds a token itself"
grep -q "^[0-9a-f]\{64\} DESK test client DESK$" "$work/tokens" || fail "the triage desk's token line"
"$avvik" token TRIAGE 2>"$work/token.bad" && fail "avvik token TRIAGE succeeded"
grep -q "or DESK, the county's triage desk" "$work/token.bad" || fail "avvik token TRIAGE: $(cat "$work/token.bad")"

"$avvik" gateway $X -X gateway.listen=127.0.0.1:0 -X gateway.port.file="$work/port" \
        -X gateway.tokens.file="$work/tokens" -X gateway.max.in.flight=1 \
        -X intake.ack.timeout.ms=3000 -X log.level=debug \
        2>"$work/gateway.log" &
gateway_pid=$!
poll "gateway port file" test -s "$work/port"
url=http://127.0.0.1:$(cat "$work/port")

# call METHOD PATH [CURL_ARGS...]: the status code in $status, the body in
# $work/body, the headers in $work/headers.
call() {
        method=$1
        path=$2
        shift 2
        status=$(curl -sS -o "$work/body" -D "$work/headers" -w '%{http_code}' -X "$method" \
                "$@" "$url$path") || fail "curl $method $path failed"
}
# send PATH PARTY CONTENT_TYPE FILE [CURL_ARGS...]: POSTs FILE with PARTY's token.
send() {
        path=$1
        party=$2
        type=$3
        file=$4
        shift 4
        call POST "$path" -H "Authorization: Bearer $(token "$party")" \
                -H "Content-Type: $type" --data-binary "@$file" "$@"
}
expect() { # expect STATUS WHAT
        [ "$status" = "$1" ] || fail "$2: status $status, want $1: $(cat "$work/body")"
}
body_has() { # body_has TEXT WHAT
        grep -qF -- "$1" "$work/body" || fail "$2: body lacks '$1': $(cat "$work/body")"
}
header_has() { # header_has "Name: value" WHAT
        grep -qi "^$1" "$work/headers" || fail "$2: no '$1' header: $(cat "$work/headers")"
}
ready() {
        call GET /readyz
        [ "$status" = 200 ]
}
records() { # records TOPIC ID: how many records of TOPIC carry ID as key
        "$avvik" tail $X -t "$1" -e | jq -r '.response_id // .deviation_id' | grep -c "^$2\$" || true
}

call GET /healthz
expect 200 "healthz"
poll "readyz 200" ready
body_has '"kafka":"up"' "readyz"

# Each sample is filed by its reporter's party: 202 with its id, once acknowledged.
n=0
for f in "$samples"/*.json; do
        id=$(jq -r .deviation_id "$f")
        send /v1/deviations "$(jq -r .reporter.party "$f")" application/json "$f"
        expect 202 "sample $f"
        [ "$(jq -r .id "$work/body")" = "$id" ] || fail "sample $f: id $(cat "$work/body")"
        [ "$(jq -r .status "$work/body")" = filed ] || fail "sample $f: $(cat "$work/body")"
        n=$((n + 1))
done
"$avvik" tail $X -e >"$work/tail.jsonl" || fail "tail exited $?"
for f in "$samples"/*.json; do
        id=$(jq -r .deviation_id "$f")
        [ "$(jq -cS "select(.deviation_id == \"$id\")" "$work/tail.jsonl")" = "$(jq -cS . "$f")" ] ||
                fail "record $id differs from the sample"
done
sample=$samples/01-discharge-information-missing.json
sample_id=$(jq -r .deviation_id "$sample")

# 400: every field error at once; bad JSON and bad UTF-8 named with line and column.
jq '.category = "WEATHER" | del(.description) | .deviation_id = "00000000-0000-4000-8000-000000000400"' \
        "$sample" >"$work/bad.json"
send /v1/deviations 1480 application/json "$work/bad.json"
expect 400 "invalid deviation"
body_has 'category: unknown symbol \"WEATHER\"' "invalid deviation"
body_has 'description: is required' "invalid deviation"
[ "$(jq '.errors | length' "$work/body")" -eq 2 ] || fail "errors: $(cat "$work/body")"
head -c 200 "$sample" >"$work/cut.json"
send /v1/deviations 1480 application/json "$work/cut.json"
expect 400 "cut JSON"
body_has 'body: line ' "cut JSON"
body_has ' column ' "cut JSON"
printf '{"description": "\377\376"}' >"$work/latin1.json"
send /v1/deviations 1480 application/json "$work/latin1.json"
expect 400 "bad UTF-8"
body_has 'invalid bytes in UTF8 string' "bad UTF-8"
echo '[]' >"$work/array.json"
send /v1/deviations 1480 application/json "$work/array.json"
expect 400 "array body"
body_has 'body: expected an object, got an array' "array body"
: >"$work/empty.json"
send /v1/deviations 1480 application/json "$work/empty.json"
expect 400 "empty body"
[ "$(records deviation.reported 00000000-0000-4000-8000-000000000400)" -eq 0 ] ||
        fail "a rejected deviation reached Kafka"

# 413: over gateway.max.body.bytes (65536), declared or chunked.
{ printf '{"description": "'; head -c 70000 /dev/zero | tr '\0' 'a'; printf '"}'; } >"$work/big.json"
send /v1/deviations 1480 application/json "$work/big.json"
expect 413 "large body"
body_has 'gateway.max.body.bytes' "large body"
send /v1/deviations 1480 application/json "$work/big.json" -H "Transfer-Encoding: chunked"
expect 413 "large chunked body"

# 415: not JSON, or not UTF-8.
send /v1/deviations 1480 text/plain "$sample"
expect 415 "text/plain"
body_has 'Content-Type: \"text/plain\" is not accepted' "text/plain"
send /v1/deviations 1480 "application/json; charset=iso-8859-1" "$sample"
expect 415 "latin-1 charset"
call POST /v1/deviations -H "Authorization: Bearer $(token 1480)" -H "Content-Type:" \
        --data-binary "@$sample"
expect 415 "no Content-Type"
body_has 'Content-Type: missing' "no Content-Type"

# 401: no token, another scheme, an unknown token - with a Bearer challenge.
call POST /v1/deviations -H "Content-Type: application/json" --data-binary "@$sample"
expect 401 "no token"
header_has 'WWW-Authenticate: Bearer realm="avvik"' "no token"
body_has 'Authorization: missing' "no token"
call POST /v1/deviations -H "Authorization: Basic dXNlcjpwdw==" -H "Content-Type: application/json" \
        --data-binary "@$sample"
expect 401 "basic auth"
call POST /v1/deviations -H "Authorization: Bearer not-a-token" -H "Content-Type: application/json" \
        --data-binary "@$sample"
expect 401 "unknown token"
header_has 'WWW-Authenticate: Bearer realm="avvik", error="invalid_token"' "unknown token"

# 403: a party files only as itself.
send /v1/deviations VGR application/json "$sample"
expect 403 "filing as another party"
body_has 'reporter.party: \"1480\" is not the token'"'"'s party VGR' "filing as another party"
# The county's triage desk files nothing (docs/gateway.md, "The triage desk").
send /v1/deviations DESK application/json "$sample"
expect 403 "the triage desk filing"
body_has 'the triage desk files no deviations' "the triage desk filing"

# 404 and 405.
call GET /v1/nothing
expect 404 "unknown path"
call GET /v1/deviations -H "Authorization: Bearer $(token 1480)"
expect 400 "GET on /v1/deviations without a role"
body_has 'role: missing' "GET on /v1/deviations without a role"
call DELETE /v1/deviations -H "Authorization: Bearer $(token 1480)"
expect 405 "DELETE on /v1/deviations"
call DELETE /healthz
expect 405 "DELETE on /healthz"

# FHIR R4 AdverseEvent resources, with fresh ids (the samples share ids with deploy/samples).
i=0
for f in "$fhir"/*.json; do
        i=$((i + 1))
        id=00000000-0000-4000-8000-00000000f00$i
        jq ".identifier.value = \"urn:uuid:$id\"" "$f" >"$work/fhir.json"
        party=$(jq -r '.extension[] | select(.url | endswith("/reporter-party")) | .valueCode' "$f")
        send /v1/deviations "$party" application/fhir+json "$work/fhir.json"
        expect 202 "FHIR $f"
        [ "$(jq -r .id "$work/body")" = "$id" ] || fail "FHIR $f: $(cat "$work/body")"
        [ "$(records deviation.reported "$id")" -eq 1 ] || fail "FHIR $f: not in Kafka"
        n=$((n + 1))
done
jq '.resourceType = "Patient" | .identifier.value = "urn:uuid:00000000-0000-4000-8000-00000000f0ff"' \
        "$fhir/adverse-event-minimal.json" >"$work/patient.json"
send /v1/deviations VGR application/fhir+json "$work/patient.json"
expect 400 "FHIR Patient"
body_has 'resourceType: is \"Patient\"' "FHIR Patient"

# Idempotency: a retry gets the first answer, one record; another body under the key is 422.
jq -c 'del(.deviation_id)' "$sample" >"$work/noid.json"
send /v1/deviations 1480 application/json "$work/noid.json" -H "Idempotency-Key: retry-1"
expect 202 "first with Idempotency-Key"
first=$(jq -r .id "$work/body")
jq . "$work/noid.json" >"$work/noid-pretty.json" # the same document, other whitespace
send /v1/deviations 1480 application/json "$work/noid-pretty.json" -H "Idempotency-Key: retry-1"
expect 202 "retry with Idempotency-Key"
[ "$(jq -r .id "$work/body")" = "$first" ] || fail "retry got another id: $(cat "$work/body")"
jq '.description = "Another text."' "$work/noid.json" >"$work/other.json"
send /v1/deviations 1480 application/json "$work/other.json" -H "Idempotency-Key: retry-1"
expect 422 "same key, other body"
body_has 'Idempotency-Key: was used for a different request' "same key, other body"
# The key is the party's own: another party may use the same one.
jq -c 'del(.deviation_id) | .reporter.party = "1490" | .municipality_code = "1490"' "$sample" >"$work/noid1490.json"
send /v1/deviations 1490 application/json "$work/noid1490.json" -H "Idempotency-Key: retry-1"
expect 202 "another party's same key"
[ "$(jq -r .id "$work/body")" != "$first" ] || fail "another party's key replayed 1480's answer"
n=$((n + 2))
# A resent sample (same deviation_id) is the same request: its first answer, no new record.
send /v1/deviations 1480 application/json "$sample"
expect 202 "resent sample"
[ "$(jq -r .id "$work/body")" = "$sample_id" ] || fail "resent sample: $(cat "$work/body")"
# Written otherwise - the id in capitals, a time in another offset, the keys sorted - it is
# still the same document: what is compared is its Avro body (docs/gateway.md, "Idempotency").
jq -S '.deviation_id |= ascii_upcase | .occurred_at = "2026-11-16T16:40:00.000+01:00"' \
        "$sample" >"$work/same.json"
send /v1/deviations 1480 application/json "$work/same.json"
expect 202 "the sample written otherwise"
[ "$(jq -r .id "$work/body")" = "$sample_id" ] || fail "the sample written otherwise: $(cat "$work/body")"
jq '.description = "Changed."' "$sample" >"$work/changed.json"
send /v1/deviations 1480 application/json "$work/changed.json"
expect 409 "same deviation_id, other body"
body_has 'deviation_id: a different document was filed under this id' "same deviation_id, other body"
# Retries at once: every one gets the same id, Kafka gets one record.
curls=
for k in 1 2 3 4 5 6; do
        curl -sS -o "$work/parallel.$k" -X POST -H "Authorization: Bearer $(token 1480)" \
                -H "Content-Type: application/json" -H "Idempotency-Key: parallel" \
                --data-binary "@$work/noid.json" "$url/v1/deviations" &
        curls="$curls $!"
done
for pid in $curls; do wait "$pid" || fail "parallel curl exited $?"; done
parallel_id=$(jq -r .id "$work/parallel.1")
for k in 1 2 3 4 5 6; do
        [ "$(jq -r .id "$work/parallel.$k")" = "$parallel_id" ] ||
                fail "parallel retry $k: $(cat "$work/parallel.$k")"
done
n=$((n + 1))
[ "$(records deviation.reported "$first")" -eq 1 ] || fail "Idempotency-Key retry made a second record"
[ "$(records deviation.reported "$sample_id")" -eq 1 ] || fail "resent sample made a second record"
[ "$(records deviation.reported "$parallel_id")" -eq 1 ] || fail "parallel retries made more than one record"
[ "$("$avvik" tail $X -e | wc -l)" -eq $n ] || fail "deviation.reported holds $("$avvik" tail $X -e | wc -l) records, want $n"

# Responses: authorised by the routing of the deviation (sample 01: 1480 reported, VGR receives).
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
routed() { # routed HOP RECEIVER
        printf '{"event_id": "00000000-0000-4000-8000-0000000000e%s", "deviation_id": "%s", "routed_at": "%s", "hop": %s, "reporter_party": "1480", "receiver_party": "%s", "decision": "NAMED_BY_REPORTER", "rule_id": "R-test", "reason": "named by the reporter", "category": "DISCHARGE_PLANNING", "harm_level": "NONE"}\n' \
                "$1" "$sample_id" "$now" "$1" "$2" | "$produce" $X deviation.routed ||
                fail "producing DeviationRouted hop $1"
}
response() { # response PARTY KIND: a response document in $work/response.json
        printf '{"responded_at": "%s", "party": "%s", "kind": "%s", "comment": "test"}\n' \
                "$now" "$1" "$2" >"$work/response.json"
}
respond() { # respond PARTY KIND [DEVIATION_ID]
        response "$1" "$2"
        send "/v1/deviations/${3:-$sample_id}/responses" "$1" application/json "$work/response.json"
}
respond VGR ACKNOWLEDGED
expect 404 "response before routing"
body_has "that this party reported or was routed" "response before routing"
routed 0 VGR
receiver_acknowledges() {
        respond VGR ACKNOWLEDGED
        [ "$status" = 202 ]
}
poll "the view learns the routing" receiver_acknowledges
ack_id=$(jq -r .id "$work/body")
[ "$(jq -r .deviation_id "$work/body")" = "$sample_id" ] || fail "ack: $(cat "$work/body")"
[ "$(records deviation.response "$ack_id")" -eq 1 ] || fail "the acknowledgement is not in Kafka"
respond 1401 ACKNOWLEDGED
expect 404 "a party the deviation was not routed to"
body_has "that this party reported or was routed" "a party the deviation was not routed to"
respond 1480 DISPUTED
expect 409 "disputed by the reporter before any answer"
body_has "there is no answer to dispute" "disputed before any answer"
respond VGR DISPUTED
expect 403 "disputed by the receiver"
body_has 'party: VGR did not report deviation' "disputed by the receiver"
respond 1480 ACKNOWLEDGED
expect 403 "acknowledged by the reporter"
respond VGR ACKNOWLEDGED 00000000-0000-4000-8000-00000000beef
expect 404 "unknown deviation"
body_has "no deviation 00000000-0000-4000-8000-00000000beef that this party" "unknown deviation"
response VGR ANSWERED
jq '.deviation_id = "00000000-0000-4000-8000-00000000beef" | .analysis = "a" | .action_plan = "b"' \
        "$work/response.json" >"$work/mismatch.json"
send "/v1/deviations/$sample_id/responses" VGR application/json "$work/mismatch.json"
expect 400 "deviation_id unlike the URL's"
body_has 'deviation_id: \"00000000-0000-4000-8000-00000000beef\" is not the deviation of the URL' "mismatch"
response 1401 ACKNOWLEDGED
send "/v1/deviations/$sample_id/responses" VGR application/json "$work/response.json"
expect 403 "responding as another party"
body_has 'party: \"1401\" is not the token' "responding as another party"
respond VGR ACKNOWLEDGED not-a-uuid
expect 400 "bad id in the URL"
respond VGR ACKNOWLEDGED
send "/v1/deviations/$sample_id/responses" VGR application/fhir+json "$work/response.json"
expect 415 "FHIR on responses"
# A re-routing (hop 1) moves the deviation to 1401: now 1401 answers, and VGR's response comes
# from an earlier hop: 409, naming the current receiver.
routed 1 1401
rerouted() {
        respond VGR ACKNOWLEDGED
        [ "$status" = 409 ]
}
poll "the index learns the re-routing" rerouted
body_has 'is routed to 1401 (hop 1)' "a response of an earlier receiver"
response 1401 ANSWERED
jq '.analysis = "Rutinen följdes inte." | .action_plan = "Ny checklista."' "$work/response.json" >"$work/answer.json"
send "/v1/deviations/$sample_id/responses" 1401 application/json "$work/answer.json"
expect 202 "answered by the new receiver"

# TLS: a second gateway on a self-signed certificate, reached with curl --cacert.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null ||
        fail "openssl req could not make a certificate"
"$avvik" gateway $X -X gateway.listen=127.0.0.1:0 -X gateway.port.file="$work/tls.port" \
        -X gateway.tokens.file="$work/tokens" -X gateway.tls.cert.file="$work/cert.pem" \
        -X gateway.tls.key.file="$work/key.pem" 2>"$work/tls.log" &
tls_pid=$!
poll "TLS gateway port file" test -s "$work/tls.port"
tls_url=https://127.0.0.1:$(cat "$work/tls.port")
[ "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$work/cert.pem" "$tls_url/healthz")" = 200 ] ||
        fail "healthz over TLS"
tls_ready() {
        [ "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$work/cert.pem" "$tls_url/readyz")" = 200 ]
}
poll "TLS gateway ready (its view read)" tls_ready
jq '.deviation_id = "00000000-0000-4000-8000-000000000715"' "$sample" >"$work/tls.json"
[ "$(curl -sS -o "$work/body" -w '%{http_code}' --cacert "$work/cert.pem" \
        -H "Authorization: Bearer $(token 1480)" -H "Content-Type: application/json" \
        --data-binary "@$work/tls.json" "$tls_url/v1/deviations")" = 202 ] ||
        fail "deviation over TLS: $(cat "$work/body")"
if curl -sS -o /dev/null "http://127.0.0.1:$(cat "$work/tls.port")/healthz" 2>/dev/null; then
        fail "the TLS gateway answered plain HTTP"
fi
kill -TERM $tls_pid
wait $tls_pid || fail "TLS gateway exited $? on SIGTERM"
tls_pid=
n=$((n + 1))

# Metrics and logs: counters by route and status; never a personal identity number or text.
call GET /metrics
expect 200 "metrics"
header_has 'Content-Type: text/plain; version=0.0.4' "metrics"
body_has 'avk_gateway_requests_total{route="/v1/deviations",code="202"}' "metrics"
body_has 'avk_gateway_requests_total{route="/v1/deviations/{id}/responses",code="403"}' "metrics"
body_has 'avk_gateway_request_duration_seconds_bucket{route="/v1/deviations",le="+Inf"}' "metrics"
body_has 'avk_gateway_idempotency_total{outcome="replayed"}' "metrics"
body_has 'avk_gateway_idempotency_total{outcome="conflict"} 2' "metrics"
body_has 'avk_gateway_view_loaded 1' "metrics"
body_has 'avk_reporter_kafka_up 1' "metrics"
body_has 'avk_reporter_documents_total{outcome="filed"}' "metrics"
body_has 'avk_gateway_in_flight 0' "metrics"
pid_number=$(jq -r .patient.personal_id "$sample")
for f in "$work/body" "$work/gateway.log"; do
        if grep -q -e "$pid_number" -e "Insulindosen" "$f"; then fail "$f holds patient data"; fi
done
grep -q 'POST /v1/deviations 202 .* party=1480 client=test client 1480 id=' "$work/gateway.log" ||
        fail "no request line in the gateway log"

# The broker goes: not ready, and a new deviation is refused with 503 and Retry-After (no spool).
kill -TERM $broker_pid
wait $broker_pid || fail "broker exited $? on SIGTERM"
broker_pid=
not_ready() {
        call GET /readyz
        [ "$status" = 503 ]
}
poll "readyz 503 without Kafka" not_ready
header_has 'Retry-After: ' "readyz without Kafka"
body_has '"kafka":"down"' "readyz without Kafka"
# A document now waits for Kafka until intake.ack.timeout.ms; meanwhile a second one finds
# gateway.max.in.flight (1) taken. Both get 503 with Retry-After.
jq '.deviation_id = "00000000-0000-4000-8000-000000000503"' "$sample" >"$work/down.json"
curl -sS -o "$work/down.body" -D "$work/down.headers" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $(token 1480)" -H "Content-Type: application/json" \
        --data-binary "@$work/down.json" "$url/v1/deviations" >"$work/down.status" &
waiting_pid=$!
waiting() {
        call GET /metrics
        grep -q '^avk_gateway_in_flight 1$' "$work/body"
}
poll "a document waiting for Kafka" waiting
jq '.deviation_id = "00000000-0000-4000-8000-000000000429"' "$sample" >"$work/busy.json"
send /v1/deviations 1480 application/json "$work/busy.json"
expect 503 "over gateway.max.in.flight"
header_has 'Retry-After: ' "over gateway.max.in.flight"
body_has 'gateway.max.in.flight: 1 documents are waiting for Kafka already' "over gateway.max.in.flight"
wait $waiting_pid || fail "curl of the waiting document exited $?"
[ "$(cat "$work/down.status")" = 503 ] || fail "filing without Kafka: $(cat "$work/down.status") $(cat "$work/down.body")"
grep -qi '^Retry-After: ' "$work/down.headers" || fail "filing without Kafka: no Retry-After"
grep -qF '00000000-0000-4000-8000-000000000503: ' "$work/down.body" || fail "filing without Kafka: $(cat "$work/down.body")"

kill -TERM $gateway_pid
wait $gateway_pid || fail "gateway exited $? on SIGTERM"
gateway_pid=
[ ! -e "$work/port" ] || fail "gateway left its port file behind"
grep -q 'info gateway: stopped' "$work/gateway.log" || fail "no clean stop in the log"
echo "gateway: $n deviations filed over HTTP(S), every status code checked"
