#!/bin/sh
# This build reads what earlier builds wrote, without a Schema Registry: for
# every earlier released version of a schema (schemas/history/NAME/vK.avsc,
# K below the newest), avk_test_produce writes a record with that version
# (single-object framing, that version's fingerprint) and 'avvik tail' of
# this build prints it as the current version: the fields vK had as written,
# the later ones at their defaults. Each schema with an earlier version needs
# a record of its current version in SAMPLES_DIR/NAME.json,
# {"topic": ..., "record": ...}, with a value other than the default in every
# field added since (a version that only changed enum symbols or annotations
# is read with the same fields).
# usage: schema_history_read.sh AVVIK_BINARY AVK_TEST_PRODUCE SCHEMAS_DIR SAMPLES_DIR
set -eu
avvik=$1
produce=$2
schemas=$3
samples=$4
work=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
trap stop_started EXIT
FAIL_LOGS="$work/broker.log"
start_broker

read_cnt=0
n=0
for history in "$schemas"/history/*; do
        name=$(basename "$history")
        newest=$(ls "$history" | sed -n 's/^v\([0-9]*\)\.avsc$/\1/p' | sort -n | tail -1)
        [ "$newest" -gt 1 ] || continue
        sample=$samples/$name.json
        [ -f "$sample" ] || fail "$name has $newest versions but no $sample to write the earlier ones with"
        topic=$(jq -r .topic "$sample")
        v=1
        while [ $v -lt "$newest" ]; do
                n=$((n + 1))
                id=$(printf '00000000-0000-4000-8000-%012d' $n)
                # The sample as version v wrote it: only the fields v had.
                jq -c --arg id "$id" --slurpfile v "$history/v$v.avsc" \
                        '.record | with_entries(select(.key as $k | $v[0].fields | any(.name == $k)))
                         | .deviation_id = $id' "$sample" >"$work/written.json"
                # What this build must print: the rest at the current defaults.
                jq -cS --slurpfile w "$work/written.json" --slurpfile c "$schemas/$name.avsc" \
                        '$w[0] + ($c[0].fields | map(select(.name as $k | $w[0] | has($k) | not))
                                  | map({(.name): .default}) | add // {})' \
                        "$work/written.json" >"$work/want.json"
                # A version that lacks fields must be shown reading them as defaults; one that
                # changed only enum symbols or annotations is read with the same fields.
                lacking=$(jq --slurpfile v "$history/v$v.avsc" \
                        '[.fields[].name] - [$v[0].fields[].name] | length' "$schemas/$name.avsc")
                [ "$lacking" -eq 0 ] ||
                        [ "$(jq length "$work/written.json")" -lt "$(jq '.record | length' "$sample")" ] ||
                        fail "$name v$v: the sample has no field that v$v lacks"
                "$produce" $X -s "$history/v$v.avsc" "$topic" <"$work/written.json" ||
                        fail "$name v$v: avk_test_produce exited $?"
                "$avvik" tail $X -t "$topic" -e >"$work/tail.jsonl" 2>"$work/tail.err" ||
                        fail "$name v$v: tail exited $?: $(cat "$work/tail.err")"
                got=$(jq -cS "select(.deviation_id == \"$id\")" "$work/tail.jsonl")
                [ "$got" = "$(cat "$work/want.json")" ] ||
                        fail "$name v$v: tail printed '$got', want '$(cat "$work/want.json")'; stderr: $(cat "$work/tail.err")"
                read_cnt=$((read_cnt + 1))
                v=$((v + 1))
        done
done
[ $read_cnt -gt 0 ] || fail "no schema has an earlier version: nothing was read"
echo "schema history: $read_cnt records written with earlier versions, each read by this build"
