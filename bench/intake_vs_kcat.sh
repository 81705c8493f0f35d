#!/bin/sh
# Intake rate of 'avvik report' (NDJSON: parse, validate, encode, produce,
# wait for every acknowledgement) against kcat -P sending the same number of
# messages of the same size and keys to the same embedded broker; both
# idempotent with acks=all.
#
# The same size includes the record's header: every record avvik report
# writes carries `avk-id` (docs/architecture.md), 44 bytes in the record, and
# librdkafka builds, writes and frees a header list per message (in a run of
# 5 pairs, kcat -P took 0.48-0.83 s of CPU with that one header against
# 0.41-0.55 s without: bench/RESULTS.md). The peers send the same header, of
# the same length (kcat -H, the first record's; Node the document's id); a
# last comparison keeps kcat -P without it, the peer used before, with no
# target.
#
# Honest by construction:
# - COUNT (default 200,000) large enough that start-up does not dominate:
#   kcat needs a few tenths of a second for it.
# - Counted the same way on both sides: by the end offsets of the topic
#   written (a fresh broker per run), not by reading back, since the embedded
#   broker keeps only ~5 MB a partition; its topics get PARTITIONS partitions
#   (default 64: 200,000 documents of ~450 bytes are ~1.4 MB each).
# - Each side timed from its start to its exit, with its CPU (user + system
#   of the process over the whole run) per message; REPS runs alternating
#   sides; min / median / max of each and the ratio of the medians, of the
#   rate and of the CPU per message (bench/lib.sh). The CPU ratio is the
#   load-independent one: on a shared machine the rates of both sides move
#   by 2x between runs, their CPU per message by a tenth.
# - Each run also prints the broker's CPU a message and the cores the machine
#   left idle over the run (/proc/stat): near none on 2 cores means the rate
#   is the CPU of the producer and the broker over the cores, not waits.
# - Both producers with librdkafka's defaults for batching (linger.ms 5,
#   batch.num.messages 10000, batch.size 1000000; avvik sets none of them).
# - The scheduling differs: avvik report puts its threads under SCHED_BATCH
#   (a bulk command: a woken thread does not preempt the running one;
#   docs/intake.md). kcat runs with the default scheduling in the first
#   comparison and under `chrt -b 0` (the same as avvik's) in the second.
# Then the same against Node doing avvik report's work (bench/intake_node.js:
# JSON.parse, avsc isValid and toBuffer, the same framing, kafkajs's
# idempotent producer with acks=all; its records are byte for byte avvik's,
# header included), installed by lib.sh's node_modules when missing.
# usage: intake_vs_kcat.sh AVVIK_BINARY [COUNT] [REPS] [PARTITIONS]
set -eu
avvik=$1
count=${2:-200000}
reps=${3:-5}
partitions=${4:-64}
work=$(mktemp -d)
bs=$work/bootstrap.servers
here=$(dirname "$0")
. "$here/lib.sh"

line=$(jq -c 'del(.deviation_id)' "$here/../deploy/samples/02-no-physician-reachable.json")
awk -v n="$count" -v doc="$line" 'BEGIN {
        for (i = 0; i < n; i++)
                printf "{\"deviation_id\":\"00000000-0000-4000-8000-%012d\",%s\n", i, substr(doc, 2)
}' >"$work/deviations.ndjson"

# The machine's idle and total time so far: "IDLE TOTAL" (/proc/stat, ticks).
ticks() { awk 'NR == 1 { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# timed FILE COMMAND...: runs COMMAND, appending "SECONDS CPU_SECONDS
# BROKER_CPU_SECONDS IDLE_CORES" to FILE: the command's time and CPU, the
# broker's CPU and the cores the machine left idle over the same window (a
# run that leaves none idle is bound by the CPU, not by waits).
timed() {
        f=$1
        shift
        # shellcheck disable=SC2154 # broker: lib.sh's start_broker sets it
        b0=$(cpu_seconds "$broker") t0=$(ticks)
        /usr/bin/time -f '%e %U %S' -o "$work/time" "$@"
        b1=$(cpu_seconds "$broker") t1=$(ticks)
        awk -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" -v cores="$(nproc)" '{
                split(t0, a, " "); split(t1, z, " ")
                print $1, $2 + $3, b1 - b0, (z[1] - a[1]) * cores / (z[2] - a[2])
        }' "$work/time" >>"$f"
}

# check SIDE TOPIC FILE: the run wrote COUNT records; its figures.
check() {
        got=$(end_offsets "$2")
        [ "$got" -eq "$count" ] || { echo "$1 wrote $got of $count to $2" >&2; exit 1; }
        read -r s cpu broker_cpu idle <"$3"
        echo "$count / $s" | bc -l >>"$work/$1"
        echo "$cpu * 1000000 / $count" | bc -l >>"$work/$1.cpu"
        printf '  %-44s %9.0f msg/s  %5.2f s  %5.2f us CPU/msg  broker %4.2f us/msg  idle %4.2f cores\n' \
                "$4" "$(echo "$count / $s" | bc -l)" "$s" "$(echo "$cpu * 1000000 / $count" | bc -l)" \
                "$(echo "$broker_cpu * 1000000 / $count" | bc -l)" "$idle"
}

side_a() {
        start_broker -X topic.partitions="$partitions"
        : >"$work/run"
        timed "$work/run" "$avvik" report -X bootstrap.file="$bs" "$work/deviations.ndjson" >"$work/results"
        accepted=$(grep -c "	accepted	" "$work/results")
        [ "$accepted" -eq "$count" ] || { echo "only $accepted of $count accepted" >&2; exit 1; }
        check a deviation.reported "$work/run" "avvik report (validate, encode, produce, ack)"
        stop_broker
}

# The raw messages: the framed Avro size of a filed deviation, the same keys.
raw_messages() {
        start_broker
        head -n 1 "$work/deviations.ndjson" | "$avvik" report -X bootstrap.file="$bs" - >/dev/null
        size=$(kcat -C -b "$(cat "$bs")" -t deviation.reported -o beginning -c 1 -e -q -f '%S')
        header=$(kcat -C -b "$(cat "$bs")" -t deviation.reported -o beginning -c 1 -e -q -f '%s' |
                head -c 10 | od -An -tx1 | tr -d ' \n')
        # The record's Kafka headers, "name=value": one, avk-id (kcat -H takes one a flag).
        record_header=$(kcat -C -b "$(cat "$bs")" -t deviation.reported -o beginning -c 1 -e -q \
                -f '%h')
        case $record_header in
        avk-id=*,*) echo "expected one header, avk-id: $record_header" >&2 && exit 1 ;;
        avk-id=*) ;;
        *) echo "expected one header, avk-id: $record_header" >&2 && exit 1 ;;
        esac
        stop_broker
        awk -v n="$count" -v size="$size" 'BEGIN {
                s = sprintf("%*s", size, ""); gsub(/ /, "x", s)
                for (i = 0; i < n; i++) printf "00000000-0000-4000-8000-%012d\t%s\n", i, s
        }' >"$work/raw"
        echo "messages: $count of $size bytes (framed Avro) keyed by deviation id, header" \
                "${record_header%%=*} (${#record_header} bytes as name=value), one embedded broker" \
                "with $partitions partitions a topic, $(nproc) cores; $reps alternating runs"
}

# kcat -P with avvik's header; with peer kcat_batch under SCHED_BATCH, as
# avvik report runs; with peer kcat_bare without the header.
side_kcat() {
        start_broker -X topic.partitions="$partitions"
        : >"$work/run"
        set -- kcat -P -b "$(cat "$bs")" -t deviation.response -K '	' \
                -X enable.idempotence=true -X acks=all -l "$work/raw"
        label="kcat -P (same count, sizes, keys, header)"
        case $peer in
        kcat_batch)
                set -- chrt -b 0 "$@" -H "$record_header"
                label="kcat -P under chrt -b 0"
                ;;
        kcat_bare) label="kcat -P without the header" ;;
        *) set -- "$@" -H "$record_header" ;;
        esac
        timed "$work/run" "$@"
        check b deviation.response "$work/run" "$label"
        stop_broker
}

# The Node peer: the same documents, validated and encoded the same way.
side_node() {
        start_broker -X topic.partitions="$partitions"
        : >"$work/run"
        timed "$work/run" node "$here/intake_node.js" "$(cat "$bs")" deviation.response \
                "$here/../schemas/deviation_reported.avsc" "$header" "$work/deviations.ndjson" \
                >"$work/node.out"
        grep -q "^sent $count invalid 0$" "$work/node.out" || {
                echo "intake_node.js: $(cat "$work/node.out")" >&2
                exit 1
        }
        check b deviation.response "$work/run" "Node: JSON.parse, avsc, kafkajs"
        stop_broker
}

# The peer of the comparison under way: kcat, kcat_batch, kcat_bare, then node.
side_b() { if [ "$peer" = node ]; then side_node; else side_kcat; fi; }

echo "== intake: avvik report vs kcat -P with the same header, $count documents (target: at" \
        "least 0.5x)"
peer=kcat
raw_messages
alternate "$reps"
verdict "avvik report, $count documents" 0.5 "avvik report" "kcat -P" "msg/s"
cpu_verdict "avvik report, $count documents" 0.5 "avvik report" "kcat -P"

echo "== intake: avvik report vs kcat -P under SCHED_BATCH (chrt -b 0, the scheduling avvik" \
        "report gives its threads), $count documents (target: at least 0.5x)"
peer=kcat_batch
alternate "$reps"
verdict "avvik report vs kcat -P under SCHED_BATCH, $count documents" 0.5 "avvik report" \
        "kcat -P under chrt -b 0" "msg/s"
cpu_verdict "avvik report vs kcat -P under SCHED_BATCH, $count documents" 0.5 "avvik report" \
        "kcat -P under chrt -b 0"

echo "== intake: avvik report vs kcat -P without the header (kcat's records 44 bytes" \
        "smaller: the peer before this script sent it), $count documents (no target)"
peer=kcat_bare
alternate "$reps"
verdict "avvik report vs kcat -P without the header, $count documents" - "avvik report" \
        "kcat -P without the header" "msg/s"
cpu_verdict "avvik report vs kcat -P without the header, $count documents" - "avvik report" \
        "kcat -P without the header"

echo "== intake: avvik report vs Node (JSON.parse, avsc isValid + toBuffer, kafkajs idempotent" \
        "acks=all), $count documents (no target)"
node_modules avsc kafkajs
echo "node $(node --version), avsc $(node -p "require('avsc/package.json').version"), kafkajs" \
        "$(node -p "require('kafkajs/package.json').version")"
peer=node
alternate "$reps"
verdict "avvik report vs Node, $count documents" - "avvik report" "Node + kafkajs" "msg/s"
cpu_verdict "avvik report vs Node, $count documents" - "avvik report" "Node + kafkajs"
