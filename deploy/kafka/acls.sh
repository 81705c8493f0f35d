#!/bin/sh
# Adds avvik's Kafka ACLs: one kafka-acls.sh --add per line of deploy/acls.conf
# (the services, the Schema Registry, operators, analysis readers), and per
# party of the directory its own rules: User:party-<code> may Read its own
# inbox topics (the party's and its units' delivery.inbox_topic) and its own
# consumer groups (prefix party-<code>.), nothing else. Adding an ACL that
# exists already is a no-op in Kafka, so running it again is harmless.
#
#   acls.sh [--dry-run] [--bootstrap-server HOST:PORT] [--command-config FILE]
#           [--acls FILE] [--directory FILE] [--kafka-bin DIR]
#
# --dry-run prints the commands, one a line, and runs nothing (needs only jq).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dry=0
bootstrap=${KAFKA_BOOTSTRAP:-kafka-1:9093}
command_config=${KAFKA_COMMAND_CONFIG:-/etc/kafka/admin.properties}
acls_file=$root/deploy/acls.conf
directory=$root/data/directory.json
kafka_bin=${KAFKA_BIN:-/opt/kafka/bin}

usage() {
        sed -n '9,10p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
}

while [ $# -gt 0 ]; do
        case $1 in
        --dry-run) dry=1 ;;
        --bootstrap-server) bootstrap=${2:?}; shift ;;
        --command-config) command_config=${2:?}; shift ;;
        --acls) acls_file=${2:?}; shift ;;
        --directory) directory=${2:?}; shift ;;
        --kafka-bin) kafka_bin=${2:?}; shift ;;
        -h | --help) usage ;;
        *) echo "acls.sh: unknown option $1" >&2; usage ;;
        esac
        shift
done

die() {
        echo "acls.sh: $*" >&2
        exit 1
}

# principal operation resource-type name pattern
acl() {
        case $3 in
        topic) resource="--topic $4" ;;
        group) resource="--group $4" ;;
        transactional-id) resource="--transactional-id $4" ;;
        cluster) resource="--cluster" ;;
        esac
        # shellcheck disable=SC2086 # $resource is an option and its value
        set -- "$kafka_bin/kafka-acls.sh" --bootstrap-server "$bootstrap" \
                --command-config "$command_config" --add --allow-principal "$1" \
                --operation "$2" $resource --resource-pattern-type "$5"
        if [ "$dry" -eq 1 ]; then
                printf '%s\n' "$*"
        else
                "$@"
        fi
}

[ -r "$acls_file" ] || die "$acls_file: cannot be read"
command -v jq >/dev/null || die "jq is required (the parties come from $directory)"
# One line per party: the code, then its inbox topics (the party's and its units').
parties=$(jq -r '.parties[] | [.party, ([.delivery.inbox_topic?, (.units[]? | .delivery.inbox_topic?)]
                 | map(select(. != null)) | unique | .[])] | join(" ")' "$directory") ||
        die "$directory: cannot read the parties"

# The table is checked whole before any command runs.
lineno=0
rows=""
while IFS= read -r line || [ -n "$line" ]; do
        lineno=$((lineno + 1))
        line=${line%%#*}
        # shellcheck disable=SC2086 # splitting the row into its fields is the point
        set -- $line
        [ $# -eq 0 ] && continue
        where="$acls_file:$lineno"
        [ $# -eq 5 ] || die "$where: expected 5 fields (principal operation resource name pattern), got $#"
        case $1 in
        User:?*) ;;
        *) die "$where: principal \"$1\" is not User:<name>" ;;
        esac
        case $2 in
        Read | Write | Describe | DescribeConfigs | IdempotentWrite) ;;
        *) die "$where: operation \"$2\" is not one avvik grants (Read, Write, Describe, DescribeConfigs, IdempotentWrite)" ;;
        esac
        case $3/$2 in
        cluster/IdempotentWrite | topic/Read | topic/Write | topic/Describe | topic/DescribeConfigs | group/Read | transactional-id/Write) ;;
        *) die "$where: $2 on a $3 is not a rule avvik needs" ;;
        esac
        case $5 in
        literal | prefixed) ;;
        *) die "$where: pattern \"$5\" is not literal or prefixed" ;;
        esac
        rows="$rows$1 $2 $3 $4 $5
"
done <"$acls_file"

printf '%s' "$rows" | while read -r principal operation resource name pattern; do
        acl "$principal" "$operation" "$resource" "$name" "$pattern"
done

printf '%s\n' "$parties" | while read -r code inboxes; do
        [ -n "$inboxes" ] || continue # a party with webhooks only has no inbox to read
        for inbox in $inboxes; do
                acl "User:party-$code" Read topic "$inbox" literal
        done
        acl "User:party-$code" Read group "party-$code." prefixed
done
