#!/bin/sh
# Creates avvik's topics on a Kafka cluster from deploy/topics.conf and the
# inbox topics of the party directory (parties, units, the triage desk), then sets each topic's configuration
# (kafka-configs.sh --alter), so running it again converges an existing
# cluster on the file. Partition counts of existing topics are never changed:
# that would move keys between partitions (docs/operations.md).
#
#   create-topics.sh [--dry-run] [--bootstrap-server HOST:PORT]
#                    [--command-config FILE] [--topics FILE] [--directory FILE]
#                    [--kafka-bin DIR]
#
# --dry-run prints the commands, one a line, and runs nothing: it needs only
# jq, no Kafka. Errors in topics.conf name the line.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dry=0
bootstrap=${KAFKA_BOOTSTRAP:-kafka-1:9093}
command_config=${KAFKA_COMMAND_CONFIG:-/etc/kafka/admin.properties}
topics_file=$root/deploy/topics.conf
directory=$root/data/directory.json
kafka_bin=${KAFKA_BIN:-/opt/kafka/bin}

usage() {
        sed -n '7,9p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
}

while [ $# -gt 0 ]; do
        case $1 in
        --dry-run) dry=1 ;;
        --bootstrap-server) bootstrap=${2:?}; shift ;;
        --command-config) command_config=${2:?}; shift ;;
        --topics) topics_file=${2:?}; shift ;;
        --directory) directory=${2:?}; shift ;;
        --kafka-bin) kafka_bin=${2:?}; shift ;;
        -h | --help) usage ;;
        *) echo "create-topics.sh: unknown option $1" >&2; usage ;;
        esac
        shift
done

die() {
        echo "create-topics.sh: $*" >&2
        exit 1
}

run() {
        if [ "$dry" -eq 1 ]; then
                printf '%s\n' "$*"
        else
                "$@"
        fi
}

[ -r "$topics_file" ] || die "$topics_file: cannot be read"
command -v jq >/dev/null || die "jq is required (the inbox topics come from $directory)"
inboxes=$(jq -r '[(.parties[] | .delivery.inbox_topic?, (.units[]? | .delivery.inbox_topic?)),
                  .triage_desk.delivery.inbox_topic?]
                 | map(select(. != null)) | unique | .[]' "$directory") ||
        die "$directory: cannot read the inbox topics"

rf=""
min_isr=""
lifecycle=""
is_count() {
        case $1 in
        '' | *[!0-9]*) return 1 ;;
        *) [ "$1" -gt 0 ] ;;
        esac
}

create() { # name partitions retention.ms cleanup.policy max.message.bytes
        # kafka-configs.sh separates configs by commas: a list value goes in brackets.
        list_policy=$4
        case $4 in *,*) list_policy="[$4]" ;; esac
        run "$kafka_bin/kafka-topics.sh" --bootstrap-server "$bootstrap" \
                --command-config "$command_config" --create --if-not-exists --topic "$1" \
                --partitions "$2" --replication-factor "$rf" \
                --config "min.insync.replicas=$min_isr" --config "retention.ms=$3" \
                --config "cleanup.policy=$4" --config "max.message.bytes=$5"
        run "$kafka_bin/kafka-configs.sh" --bootstrap-server "$bootstrap" \
                --command-config "$command_config" --alter --entity-type topics \
                --entity-name "$1" \
                --add-config "min.insync.replicas=$min_isr,retention.ms=$3,cleanup.policy=$list_policy,max.message.bytes=$5"
}

lineno=0
# The table is read whole first, so that an error anywhere stops before any command.
rows=""
while IFS= read -r line || [ -n "$line" ]; do
        lineno=$((lineno + 1))
        line=${line%%#*}
        # shellcheck disable=SC2086 # splitting the row into its fields is the point
        set -- $line
        [ $# -eq 0 ] && continue
        where="$topics_file:$lineno"
        case $1 in
        replication.factor=*) rf=${1#*=}; is_count "$rf" || die "$where: replication.factor: \"$rf\" is not a positive integer"; continue ;;
        min.insync.replicas=*) min_isr=${1#*=}; is_count "$min_isr" || die "$where: min.insync.replicas: \"$min_isr\" is not a positive integer"; continue ;;
        partitions.lifecycle=*) lifecycle=${1#*=}; is_count "$lifecycle" || die "$where: partitions.lifecycle: \"$lifecycle\" is not a positive integer"; continue ;;
        *=*) die "$where: unknown setting ${1%%=*}" ;;
        esac
        [ $# -eq 5 ] || die "$where: expected 5 fields (topic partitions retention.ms cleanup.policy max.message.bytes), got $#"
        case $2 in
        lifecycle) [ -n "$lifecycle" ] || die "$where: partitions.lifecycle is not set above the table" ;;
        *) is_count "$2" || die "$where: partitions: \"$2\" is not a positive integer or 'lifecycle'" ;;
        esac
        case $3 in
        -1) ;;
        *) is_count "$3" || die "$where: retention.ms: \"$3\" is not -1 or a positive integer" ;;
        esac
        case $4 in
        delete | compact | compact,delete) ;;
        *) die "$where: cleanup.policy: \"$4\" is not delete, compact or compact,delete" ;;
        esac
        is_count "$5" || die "$where: max.message.bytes: \"$5\" is not a positive integer"
        rows="$rows$1 $2 $3 $4 $5
"
done <"$topics_file"
[ -n "$rf" ] || die "$topics_file: replication.factor is not set"
[ -n "$min_isr" ] || die "$topics_file: min.insync.replicas is not set"
[ "$min_isr" -lt "$rf" ] || die "$topics_file: min.insync.replicas $min_isr must be below replication.factor $rf, or one broker down stops every producer"

seen_inbox=0
printf '%s' "$rows" | {
        while read -r name parts retention policy max_bytes; do
                [ "$parts" = lifecycle ] && parts=$lifecycle
                if [ "$name" = @inbox ]; then
                        seen_inbox=1
                        for inbox in $inboxes; do
                                create "$inbox" "$parts" "$retention" "$policy" "$max_bytes"
                        done
                else
                        create "$name" "$parts" "$retention" "$policy" "$max_bytes"
                fi
        done
        [ "$seen_inbox" -eq 1 ] || die "$topics_file: no @inbox line: the directory's inbox topics would not be created"
}
