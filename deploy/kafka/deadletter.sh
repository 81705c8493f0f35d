#!/bin/sh
# The dead-letter topic with kcat (docs/operations.md, "Drain the dead-letter
# topic"): list what is there with the reasons, and re-publish one record,
# bytes, key and headers as they were, to the topic and partition it came from
# once its cause is fixed. Consumers recognise a replay by the record's ids.
#
#   deadletter.sh [-b BROKERS] [-F KCAT_CONFIG] [-t TOPIC] list
#   deadletter.sh [-b BROKERS] [-F KCAT_CONFIG] [-t TOPIC] replay PARTITION OFFSET
#
# -F names a kcat/librdkafka properties file (security.protocol=SASL_SSL,
# sasl.mechanisms, sasl.username, sasl.password, ssl.ca.location) for a real
# cluster; -t the dead-letter topic (default deviation.deadletter).
set -eu

brokers=${KAFKA_BOOTSTRAP:-kafka-1:9093}
topic=deviation.deadletter
config=""
while getopts b:F:t: opt; do
        case $opt in
        b) brokers=$OPTARG ;;
        F) config=$OPTARG ;;
        t) topic=$OPTARG ;;
        *) sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
        esac
done
shift $((OPTIND - 1))

kcat_() {
        if [ -n "$config" ]; then
                kcat -b "$brokers" -F "$config" "$@"
        else
                kcat -b "$brokers" "$@"
        fi
}

# header NAME HEADERS: the value of NAME in kcat's %h form (name=value,...).
header() {
        printf '%s\n' "$2" | tr ',' '\n' | sed -n "s/^$1=//p" | tail -n 1
}

case ${1:-} in
list)
        # partition, offset, key, then every header: the reason in avk-error.
        kcat_ -C -t "$topic" -o beginning -e -q -f 'partition %p offset %o key %k headers %h\n'
        ;;
replay)
        [ $# -eq 3 ] || { echo "deadletter.sh: replay PARTITION OFFSET" >&2; exit 2; }
        partition=$2
        offset=$3
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        one() { kcat_ -C -t "$topic" -p "$2" -o "$3" -c 1 -e -q -f "$1"; }
        one '%h' "$partition" "$offset" >"$tmp/headers"
        one '%k' "$partition" "$offset" >"$tmp/key"
        one '%s' "$partition" "$offset" >"$tmp/value"
        headers=$(cat "$tmp/headers")
        source_topic=$(header avk-source-topic "$headers")
        source_partition=$(header avk-source-partition "$headers")
        if [ -z "$source_topic" ] || [ -z "$source_partition" ]; then
                echo "deadletter.sh: $topic [$partition] offset $offset: no avk-source-topic/avk-source-partition header" >&2
                exit 1
        fi
        # Back where it came from: same partition, same key, bytes unchanged; the
        # record's own headers (avk-id, avk-type) kept, the dead-letter ones not.
        set -- -P -t "$source_topic" -p "$source_partition" -k "$(cat "$tmp/key")" \
                -H "avk-replayed-from=$topic/$partition/$offset"
        for name in avk-id avk-type avk-hop avk-cause; do
                value=$(header "$name" "$headers")
                [ -z "$value" ] || set -- "$@" -H "$name=$value"
        done
        kcat_ "$@" "$tmp/value"
        echo "deadletter.sh: $topic [$partition] offset $offset re-published to $source_topic [$source_partition]"
        ;;
*)
        sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
