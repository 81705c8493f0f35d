# Shared by the end-to-end tests (sourced): failing with the logs that
# explain it, and waiting for a condition instead of sleeping.
#   FAIL_LOGS     files (globs allowed) whose last 20 lines a failure shows
#   POLL_SECONDS  how long poll waits (default 60: it stops as soon as COMMAND
#                 succeeds, and a loaded CI machine once took 15 s to start a process)

fail() {
        echo "FAIL: $*" >&2
        for log in ${FAIL_LOGS:-}; do
                [ -f "$log" ] || continue
                echo "--- $log (last 20 lines)" >&2
                tail -n 20 "$log" >&2
        done
        exit 1
}

# poll WHAT COMMAND...: runs COMMAND until it succeeds, for up to POLL_SECONDS
# of wall time (a slow COMMAND, such as a tail of a topic under the
# sanitizers, must not stretch the wait past the test's own timeout).
poll() {
        what=$1
        shift
        deadline=$(($(date +%s) + ${POLL_SECONDS:-60}))
        until "$@"; do
                [ "$(date +%s)" -lt "$deadline" ] ||
                        fail "$what: not within ${POLL_SECONDS:-60} s"
                sleep 0.1
        done
}

# A script that sets 'trap stop_started EXIT' and adds the processes it starts
# to $started has them killed and its $work directory removed however it ends.
started=
stop_started() {
        for pid in $started; do kill "$pid" 2>/dev/null || true; done
        rm -rf "$work"
}

# start_broker: 'avvik broker' ($avvik) in the background with its log in
# $work/broker.log, added to $started; sets bs (its bootstrap file) and X
# (the -X option that points an avvik command at it).
start_broker() {
        bs=$work/bootstrap.servers
        "$avvik" broker -f "$bs" 2>"$work/broker.log" &
        started="$started $!"
        poll "the broker's bootstrap file" test -s "$bs"
        X="-X bootstrap.file=$bs"
}
