#!/bin/sh
# avk_schema_history_check refuses what it must, on copies of schemas/: a
# schema changed without a new history entry, a new version that cannot read
# an earlier one (a field without a default, a changed type) or that an
# earlier one cannot read (an enum symbol without the enum's default), a gap
# in the versions, a schema without history;
# and accepts a compatible change released as a new version.
# usage: schema_history_check.sh AVK_SCHEMA_HISTORY_CHECK SCHEMAS_DIR
set -eu
check=$1
schemas=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"

# expect EXIT_CODE PATTERN: runs the check on $work/schemas.
expect() {
        set +e
        "$check" "$work/schemas" >"$work/out" 2>&1
        rc=$?
        set -e
        [ $rc -eq "$1" ] || fail "check exited $rc, want $1: $(cat "$work/out")"
        grep -q "$2" "$work/out" || fail "want '$2', got: $(cat "$work/out")"
}
fresh() {
        rm -rf "$work/schemas"
        cp -r "$schemas" "$work/schemas"
}
# add_field FIELD_JSON: adds FIELD_JSON at the end of DeviationReported in schemas/.
add_field() {
        jq --argjson f "$1" '.fields += [$f]' "$schemas/deviation_reported.avsc" \
                >"$work/schemas/deviation_reported.avsc"
}
release() { cp "$work/schemas/deviation_reported.avsc" "$work/schemas/history/deviation_reported/v$1.avsc"; }
# The repository's newest released version of DeviationReported, and the next.
v=$(find "$schemas/history/deviation_reported" -name 'v*.avsc' | wc -l)
next=$((v + 1))

fresh
expect 0 "each is its newest version"

# A compatible change, not released: refused until it is.
add_field '{"name": "follow_up", "type": "boolean", "default": false, "doc": "d"}'
expect 1 "deviation_reported.avsc differs from .*history/deviation_reported/v$v.avsc.*add it as v$next.avsc"
release $next
expect 0 "each is its newest version"

# A field without a default: old data cannot be read.
fresh
add_field '{"name": "follow_up", "type": "boolean", "doc": "d"}'
release $next
expect 1 "deviation_reported.avsc is not backward compatible: it cannot read data written with .*v1.avsc: .*follow_up"

# A new symbol in an enum without a default (every avvik enum has one: here
# the newest version is released without it): an old reader cannot read it.
fresh
jq '(.. | objects | select(.name? == "ReporterRole")) |= del(.default)' \
        "$schemas/deviation_reported.avsc" >"$work/schemas/deviation_reported.avsc"
release $v
expect 0 "each is its newest version"
jq '(.. | objects | select(.name? == "ReporterRole")) |= (.symbols += ["DIETITIAN"] | del(.default))' \
        "$schemas/deviation_reported.avsc" >"$work/schemas/deviation_reported.avsc"
release $next
expect 1 "not forward compatible: .*v$v.avsc cannot read its data: .*reporter.role: enum ReporterRole: the writer's symbol DIETITIAN"

# A changed type.
fresh
jq '(.fields[] | select(.name == "description")).type = "int"' "$schemas/deviation_reported.avsc" \
        >"$work/schemas/deviation_reported.avsc"
release $next
expect 1 "not backward compatible: .*DeviationReported.description: Writer string not compatible with reader int"

# A gap in the versions.
fresh
cp "$schemas/deviation_reported.avsc" "$work/schemas/history/deviation_reported/v$((v + 2)).avsc"
expect 1 "holds more than v1.avsc .. v$v.avsc"

# A schema without history.
fresh
rm -r "$work/schemas/history/deviation_status"
expect 1 "deviation_status.avsc has no history"
echo "schema history check: refuses an unreleased change, a field without default, a symbol without default, a changed type, a gap, a missing history"
