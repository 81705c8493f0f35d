#!/bin/sh
# No deadline is lost and nothing is escalated twice, whatever happens to the
# tracker: it runs on a fake clock (tracker.clock.file, for tests only) that
# is moved across months of deadlines in 2-day steps while routings and
# responses stream in; it is killed with SIGKILL at random points (random
# waits) and restarted, also while the clock moves past deadlines with no
# tracker running; half of the unanswered deviations are routed mid-run. Then:
#  - every deviation nobody answers has taken the one step a missed deadline
#    takes (MANAGERS_MANAGER, "Chef över chef") exactly once, with one
#    escalation id, and no forum step (only a disagreement reaches a forum:
#    docs/escalation.md); no escalation record is written twice;
#  - every answered deviation is CLOSED after its dispute window;
#  - the changelog has one state_id per (deviation, version), versions 1..n
#    without gaps; no reminder is written twice;
#  - every status version that tells the reporting party something (all but
#    an overdue mark) has exactly one DeviationFeedback, and no feedback
#    event id is written twice (docs/tracker.md, "Feedback after a crash").
# usage: tracker_kill.sh AVVIK_BINARY AVK_TEST_PRODUCE SOURCE_DIR
set -eu
avvik=$1
produce=$2
src=$3
unanswered=${TRACKER_KILL_UNANSWERED:-150}
answered=${TRACKER_KILL_ANSWERED:-50}
kills=${TRACKER_KILL_KILLS:-4}
work=$(mktemp -d)
bs=$work/bootstrap.servers
broker_pid=
tracker_pid=
clock_pid=
cleanup() {
        touch "$work/stop"
        for pid in $clock_pid $tracker_pid $broker_pid; do kill -KILL "$pid" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM
. "$(dirname "$0")/lib.sh"
FAIL_LOGS="$work/tracker.*.log"
common="-X bootstrap.file=$bs -X directory.file=$src/data/directory.json"

"$avvik" broker -f "$bs" $common 2>"$work/broker.log" &
broker_pid=$!
poll "broker bootstrap file" test -s "$bs"

# Monday 2 March 2026, 09:00 in Stockholm (08:00 UTC); one day in ms.
t0=1772438400000
day=86400000
echo "$t0" >"$work/clock"
iso() { # iso MS: RFC 3339 in UTC
        date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%S.000Z
}

life=0
start_tracker() {
        life=$((life + 1))
        "$avvik" track $common -X deadlines.file="$src/data/deadlines.json" \
                -X tracker.clock.file="$work/clock" -X tracker.tick.ms=20 \
                -X kafka.session.timeout.ms=6000 -X kafka.heartbeat.interval.ms=500 \
                -X kafka.log_level=0 2>"$work/tracker.$life.log" &
        tracker_pid=$!
}
kill_tracker() {
        kill -KILL "$tracker_pid"
        wait "$tracker_pid" 2>/dev/null || true
        tracker_pid=
}

uuid_of() { # uuid_of GROUP N: a fixed, valid UUID per deviation
        printf '%08x-0000-4000-8000-%012x' "$1" "$2"
}
routed() { # routed GROUP FROM TO
        i=$2
        while [ "$i" -lt "$3" ]; do
                id=$(uuid_of "$1" "$i")
                printf '{"event_id":"%s","deviation_id":"%s","routed_at":"%s","hop":0,' \
                        "$(uuid_of 99 "$i$1")" "$id" "$(iso "$t0")"
                printf '"reporter_party":"1480","receiver_party":"VGR","decision":"AGREEMENT_RULE",'
                printf '"rule_id":"R-TEST","reason":"test","category":"DISCHARGE_PLANNING",'
                printf '"harm_level":"LOW","possible_lex_maria":false}\n'
                i=$((i + 1))
        done | "$produce" -X bootstrap.file="$bs" deviation.routed
}
answers() { # answers GROUP COUNT
        i=0
        while [ "$i" -lt "$2" ]; do
                id=$(uuid_of "$1" "$i")
                printf '{"response_id":"%s","deviation_id":"%s","responded_at":"%s",' \
                        "$(uuid_of 98 "$i")" "$id" "$(iso $((t0 + 3600000)))"
                printf '"party":"VGR","kind":"ANSWERED"}\n'
                i=$((i + 1))
        done | "$produce" -X bootstrap.file="$bs" deviation.response
}
random_ms() { # random_ms MAX: a random wait of up to MAX ms, as seconds
        awk -v max="$1" -v seed="$$$(date +%N)" \
                'BEGIN { srand(seed); printf "%.2f", rand() * max / 1000 }'
}

# The clock moves 2 days every 0.25 s in the background until the checks
# are done (at most 2000 days).
advance_clock() {
        now=$t0
        end=$((t0 + 2000 * day))
        while [ "$now" -lt "$end" ] && [ ! -e "$work/stop" ]; do
                now=$((now + 2 * day))
                echo "$now" >"$work/clock.tmp"
                mv "$work/clock.tmp" "$work/clock"
                sleep 0.25
        done
}

half=$((unanswered / 2))
routed 1 0 "$half"
routed 2 0 "$answered"
answers 2 "$answered"
start_tracker
advance_clock &
clock_pid=$!
assigned() { grep -q "assigned" "$work/tracker.$life.log"; }
k=0
while [ $k -lt "$kills" ]; do
        poll "tracker $life assignment" assigned
        sleep "$(random_ms 3000)"
        kill_tracker
        [ $k -ne 1 ] || routed 1 "$half" "$unanswered"
        sleep "$(random_ms 1000)" # down while the clock moves on
        start_tracker
        k=$((k + 1))
done
poll "tracker $life assignment" assigned

tail_json() { "$avvik" tail $common -t "$1" -e 2>>"$work/tail.err"; }
climbed() {
        tail_json deviation.escalated >"$work/escalated"
        [ "$(jq -r 'select(.step == "MANAGERS_MANAGER") | .deviation_id' "$work/escalated" |
                sort -u | wc -l)" -eq "$unanswered" ]
}
closed() {
        tail_json deviation.status >"$work/status"
        [ "$(jq -r 'select(.state == "CLOSED") | .deviation_id' "$work/status" |
                sort -u | wc -l)" -eq "$answered" ]
}
poll "every unanswered deviation at its Chef över chef" climbed
poll "every answered deviation closed" closed
touch "$work/stop"
wait "$clock_pid"
kill -TERM "$tracker_pid"
wait "$tracker_pid" || fail "the tracker did not stop cleanly"
tracker_pid=
tail_json deviation.escalated >"$work/escalated"
tail_json deviation.status >"$work/status"
tail_json deviation.reminder >"$work/reminders"
tail_json deviation.feedback >"$work/feedback"

records=$(wc -l <"$work/escalated")
ids=$(jq -r .escalation_id "$work/escalated" | sort -u | wc -l)
steps=$(jq -r '[.deviation_id, .step] | @tsv' "$work/escalated" | sort -u | wc -l)
per_dev=$(jq -r .deviation_id "$work/escalated" | sort | uniq -c | awk '$1 != 1' | wc -l)
forum=$(jq -r 'select(.step | endswith("FORUM")) | .escalation_id' "$work/escalated" | wc -l)
answered_escalated=$(jq -r .deviation_id "$work/escalated" | grep -c '^00000002-' || true)
conflicts=$(jq -r '[.deviation_id, .version, .state_id] | @tsv' "$work/status" | sort -u |
        cut -f1,2 | uniq -d | wc -l)
gaps=$(jq -r '[.deviation_id, .version] | @tsv' "$work/status" | sort -u |
        awk -F'\t' '{ if ($2 > max[$1]) max[$1] = $2; n[$1]++ }
                END { for (d in n) if (n[d] != max[d]) print d }' | wc -l)
# An overdue mark keeps the state and names a deadline as its cause: no feedback.
jq -r 'select((.cause | startswith("deadline:") | not) or .state == "ESCALATED" or
        .state == "CLOSED") | [.deviation_id, .version] | @tsv' "$work/status" | sort -u \
        >"$work/feedback.due"
jq -r '[.deviation_id, .version] | @tsv' "$work/feedback" | sort -u >"$work/feedback.got"
feedback=$(wc -l <"$work/feedback")
feedback_ids=$(jq -r .event_id "$work/feedback" | sort -u | wc -l)
feedback_missing=$(comm -23 "$work/feedback.due" "$work/feedback.got" | wc -l)
feedback_extra=$(comm -13 "$work/feedback.due" "$work/feedback.got" | wc -l)
reminders=$(wc -l <"$work/reminders")
reminder_ids=$(jq -r .reminder_id "$work/reminders" | sort -u | wc -l)
per_life=$(for l in $(seq 1 "$life"); do grep -c "escalated to" "$work/tracker.$l.log" || true; done |
        paste -sd/ -)
echo "tracker lives: $life (escalations written per life: $per_life); escalation records: $records, ids: $ids, (deviation, step): $steps;" \
        "deviations without exactly 1 step: $per_dev; forum steps: $forum; answered ones escalated: $answered_escalated;" \
        "status version conflicts: $conflicts, gaps: $gaps; reminders: $reminders ($reminder_ids ids);" \
        "feedback: $feedback records, $feedback_ids ids, $(wc -l <"$work/feedback.due") due, $feedback_missing missing, $feedback_extra not due"
[ "$records" -eq "$unanswered" ] || fail "$records escalation records, expected $unanswered"
[ "$ids" -eq "$records" ] || fail "an escalation id is written twice"
[ "$steps" -eq "$records" ] || fail "a (deviation, step) has two escalations"
[ "$per_dev" -eq 0 ] || fail "$per_dev deviations did not take the deadline step once"
[ "$forum" -eq 0 ] || fail "$forum forum steps for missed deadlines"
[ "$answered_escalated" -eq 0 ] || fail "answered deviations were escalated"
[ "$conflicts" -eq 0 ] || fail "$conflicts (deviation, version) pairs with two state ids"
[ "$gaps" -eq 0 ] || fail "$gaps deviations with a gap in their versions"
[ "$reminders" -eq "$reminder_ids" ] || fail "a reminder is written twice"
[ "$feedback_missing" -eq 0 ] || fail "$feedback_missing status versions without their feedback"
[ "$feedback_extra" -eq 0 ] || fail "$feedback_extra feedback records for no status version that has one"
[ "$feedback" -eq "$feedback_ids" ] || fail "a feedback event id is written twice"
echo "ok"
