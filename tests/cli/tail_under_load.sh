#!/bin/sh
# 'avvik tail -e' while the topic is being written to, many times over: every
# run exits 0, prints only JSON records, nothing on stderr, and sees at least
# what the run before it saw. Before the fix in avk_kafka_consumer_close()
# most runs aborted with librdkafka's "res != RD_KAFKA_OP_RES_PASS"
# assertion (exit 134): tail keeps its self-assigned partitions fetching
# until the close, whose queue then receives records.
# usage: tail_under_load.sh AVVIK_BINARY AVK_TEST_PRODUCE SAMPLES_DIR [RUNS]
set -eu
avvik=$1
produce=$2
samples=$3
runs=${4:-20}
work=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
trap stop_started EXIT
FAIL_LOGS="$work/broker.log $work/produce.log"
start_broker

# 60 deviations with ids of their own, so that every partition is written to.
i=0
while [ $i -lt 60 ]; do
        jq -c --arg id "$(printf '00000000-0000-4000-8000-%012d' $i)" '.deviation_id = $id' \
                "$samples/01-discharge-information-missing.json"
        i=$((i + 1))
done >"$work/docs"

# The writer: the same 60 records again and again, about 300 a second, for
# as long as the test runs.
mkfifo "$work/feed"
"$produce" $X deviation.reported <"$work/feed" 2>"$work/produce.log" &
produce_pid=$!
(while :; do cat "$work/docs"; sleep 0.2; done) >"$work/feed" &
started="$started $produce_pid $!"
first_record() { kcat -C -b "$(cat "$bs")" -t deviation.reported -e -q -c 1 -f '%k\n' | grep -q .; }
poll "the writer's first record" first_record

seen=0
run=1
while [ "$run" -le "$runs" ]; do
        set +e
        "$avvik" tail $X -e >"$work/out" 2>"$work/err"
        rc=$?
        set -e
        [ $rc -eq 0 ] || fail "run $run: tail -e exited $rc: $(head -c 500 "$work/err")"
        [ ! -s "$work/err" ] || fail "run $run: tail -e wrote to stderr: $(head -c 500 "$work/err")"
        jq -e .deviation_id "$work/out" >/dev/null || fail "run $run: a line is not a record"
        lines=$(wc -l <"$work/out")
        [ "$lines" -gt 0 ] && [ "$lines" -ge "$seen" ] ||
                fail "run $run: tail -e printed $lines records, the run before $seen"
        seen=$lines
        run=$((run + 1))
done
kill -0 "$produce_pid" 2>/dev/null || fail "the writer stopped before the last run"
echo "tail -e under load: $runs runs, exit 0 each, the last printed $seen records"
