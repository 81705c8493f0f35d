#!/bin/sh
# The walking skeleton as a user runs it: 'avvik broker' in its own process,
# 'avvik report' files the samples, 'avvik tail' prints them back equal in
# content, kcat (an independent client) reads the same records, bad input is
# rejected naming the field, and SIGTERM stops the broker cleanly.
# usage: walking_skeleton.sh AVVIK_BINARY SAMPLES_DIR
set -eu
avvik=$1
samples=$2
work=$(mktemp -d)
bs=$work/bootstrap.servers
broker_pid=
cleanup() {
        [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"

"$avvik" broker -f "$bs" 2>"$work/broker.log" &
broker_pid=$!
poll "the broker's bootstrap file" test -s "$bs"
X="-X bootstrap.file=$bs"

n=0
for f in "$samples"/*.json; do
        result=$("$avvik" report $X "$f") || fail "report $f exited $?"
        [ "$result" = "$(printf '1\taccepted\t%s' "$(jq -r .deviation_id "$f")")" ] ||
                fail "report printed '$result' for $f"
        n=$((n + 1))
done

"$avvik" tail $X -e >"$work/tail.jsonl" || fail "tail exited $?"
[ "$(wc -l <"$work/tail.jsonl")" -eq $n ] || fail "tail printed $(wc -l <"$work/tail.jsonl") records, want $n"
for f in "$samples"/*.json; do
        id=$(jq -r .deviation_id "$f")
        want=$(jq -cS . "$f")
        got=$(jq -cS "select(.deviation_id == \"$id\")" "$work/tail.jsonl")
        [ "$want" = "$got" ] || fail "record $id differs: $got"
done

# kcat: keys are the deviation ids; values are Avro single-object encoded (c3 01).
kcat -C -b "$(cat "$bs")" -t deviation.reported -e -q -f '%k\n' | sort >"$work/keys"
for f in "$samples"/*.json; do jq -r .deviation_id "$f"; done | sort | cmp -s - "$work/keys" ||
        fail "kcat keys differ: $(cat "$work/keys")"
magic=$(kcat -C -b "$(cat "$bs")" -t deviation.reported -e -q -c 1 -f '%s' | head -c 2 | od -An -tx1 | tr -d ' ')
[ "$magic" = "c301" ] || fail "first bytes are $magic, want c301"

# Bad input: exit 1, every field named, nothing filed.
jq '.category = "WEATHER" | del(.description)' "$samples/01-discharge-information-missing.json" >"$work/bad.json"
set +e
"$avvik" report $X "$work/bad.json" >"$work/bad.err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "bad report exited $rc, want 1"
grep -q 'category: unknown symbol "WEATHER"' "$work/bad.err" || fail "no category error: $(cat "$work/bad.err")"
grep -q 'description: is required' "$work/bad.err" || fail "no description error"
expect_rejected() { # expect_rejected EXIT_CODE PATTERN: stdin is the document
        set +e
        "$avvik" report $X - >"$work/err" 2>&1
        rc=$?
        set -e
        [ $rc -eq "$1" ] || fail "exit $rc, want $1 for '$2': $(cat "$work/err")"
        grep -q "$2" "$work/err" || fail "want '$2', got: $(cat "$work/err")"
}
printf '{"description": "\377\376"}' | expect_rejected 1 "invalid bytes in UTF8 string"
head -c 200 "$samples/01-discharge-information-missing.json" | expect_rejected 1 "not valid JSON at line"
head -c 1100000 /dev/zero | tr '\0' ' ' | expect_rejected 1 "longer than 1048576 bytes"
echo '{}' | expect_rejected 1 "description: is required"
set +e
"$avvik" report -X no.such.key=1 - </dev/null 2>"$work/err"
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "no.such.key: unknown configuration key" "$work/err" || fail "config error: $rc $(cat "$work/err")"
[ "$(kcat -C -b "$(cat "$bs")" -t deviation.reported -e -q -f '%k\n' | wc -l)" -eq $n ] || fail "a rejected report reached Kafka"

# NDJSON: one result a line, in input order; good lines filed, bad ones named.
{
        jq -c '.deviation_id = "00000000-0000-4000-8000-000000000001"' "$samples/02-no-physician-reachable.json"
        echo '{"category": "SIP"}'
        echo
        jq -c 'del(.deviation_id)' "$samples/03-assistive-device-not-delivered.json"
} >"$work/batch.ndjson"
set +e
"$avvik" report $X "$work/batch.ndjson" >"$work/batch.out"
rc=$?
set -e
[ $rc -eq 1 ] || fail "NDJSON with a bad line exited $rc, want 1"
[ "$(cut -f1,2 "$work/batch.out" | tr '\t\n' ' ;')" = "1 accepted;2 rejected;4 accepted;" ] ||
        fail "NDJSON results: $(cat "$work/batch.out")"
grep -q "^2	rejected	.*description: is required" "$work/batch.out" || fail "line 2 errors: $(cat "$work/batch.out")"
generated=$(sed -n 3p "$work/batch.out" | cut -f3)
n=$((n + 2))

# In lockstep over a pipe, as a system that writes a line and waits for its
# result before the next: each result comes while the input is quiet.
mkfifo "$work/lockstep.in"
"$avvik" report $X - <"$work/lockstep.in" >"$work/lockstep.out" &
lockstep_pid=$!
exec 3>"$work/lockstep.in"
lines() { [ "$(wc -l <"$work/lockstep.out")" -ge "$1" ]; }
jq -c 'del(.deviation_id)' "$samples/02-no-physician-reachable.json" >&3
poll "the first lockstep result, with the input still open" lines 1
# A bulk command: every thread of avvik report runs under SCHED_BATCH (3),
# librdkafka's included (docs/intake.md).
for task in /proc/$lockstep_pid/task/*; do
        policy=$(sed 's/.*) //' "$task/stat" | cut -d' ' -f39)
        [ "$policy" = 3 ] || fail "avvik report's thread $(cat "$task/comm") has scheduling policy $policy, want 3"
done
# Waiting for input, no thread polls (docs/intake.md): over 2 s each wakes at
# most 100 times (its own waits are 100 ms; a 2 ms poll wakes about 1,000
# times, and a loaded machine makes fewer wake-ups, not more).
wakeups() {
        for task in /proc/$lockstep_pid/task/*; do
                echo "${task##*/} $(sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' "$task/status")"
        done | sort
}
wakeups >"$work/wake.before"
sleep 2
wakeups >"$work/wake.after"
busy=$(join "$work/wake.before" "$work/wake.after" | awk '$3 - $2 > 100 { print $1 ": " $3 - $2 }')
[ -z "$busy" ] || fail "avvik report polls while its input is quiet (thread: wake-ups in 2 s): $busy"
jq -c 'del(.deviation_id)' "$samples/03-assistive-device-not-delivered.json" >&3
poll "the second lockstep result" lines 2
exec 3>&-
wait $lockstep_pid || fail "lockstep report exited $?"
[ "$(cut -f1,2 "$work/lockstep.out" | tr '\t\n' ' ;')" = "1 accepted;2 accepted;" ] ||
        fail "lockstep results: $(cat "$work/lockstep.out")"
n=$((n + 2))
[ "$(kcat -C -b "$(cat "$bs")" -t deviation.reported -e -q -f '%k\n' | grep -c -e "^00000000-0000-4000-8000-000000000001$" -e "^$generated$")" -eq 2 ] ||
        fail "NDJSON lines not in Kafka"

# Kafka unreachable: exit 3 after intake.ack.timeout.ms, the id named as unavailable.
set +e
echo "127.0.0.1:1" >"$work/nowhere"
"$avvik" report -X bootstrap.file="$work/nowhere" -X intake.ack.timeout.ms=1000 -X kafka.log_level=0 \
        "$samples/01-discharge-information-missing.json" >"$work/down.out"
rc=$?
set -e
[ $rc -eq 3 ] || fail "unreachable Kafka exited $rc, want 3"
grep -q "^1	unavailable	3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10: " "$work/down.out" || fail "unavailable: $(cat "$work/down.out")"

# FHIR R4 AdverseEvent resources file as deviations; another resource type is rejected.
fhir=$(dirname "$0")/../data/fhir
result=$("$avvik" report $X -k fhir "$fhir/adverse-event-minimal.json") || fail "fhir report exited $?"
[ "$(echo "$result" | cut -f2)" = accepted ] || fail "fhir: $result"
jq '.resourceType = "Patient"' "$fhir/adverse-event-minimal.json" >"$work/patient.json"
set +e
"$avvik" report $X -k fhir "$work/patient.json" >"$work/fhir.out"
rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'rejected	resourceType: is "Patient"' "$work/fhir.out" || fail "fhir bad: $rc $(cat "$work/fhir.out")"
n=$((n + 1))

# A record that is not avvik's: tail names its place and the reason, and goes on.
printf 'garbage\n' | kcat -P -b "$(cat "$bs")" -t deviation.reported -k 00000000-0000-4000-8000-00000000dead
set +e
"$avvik" tail $X -e >"$work/tail2.jsonl" 2>"$work/tail2.err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "tail over a bad record exited $rc, want 1"
grep -q "deviation.reported \[[0-9]*\] offset [0-9]*: unknown framing: first bytes 67 61" "$work/tail2.err" ||
        fail "tail error: $(cat "$work/tail2.err")"
[ "$(wc -l <"$work/tail2.jsonl")" -eq $n ] || fail "tail stopped at the bad record"

kill -TERM $broker_pid
wait $broker_pid || fail "broker exited $? on SIGTERM"
broker_pid=
[ ! -e "$bs" ] || fail "broker left its bootstrap file behind"
echo "walking skeleton: $n deviations filed, read back equal by avvik tail and kcat"
