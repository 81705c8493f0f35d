# Shared by the end-to-end tests (sourced): failing with the logs that
# explain it, and waiting for a condition instead of sleeping.
#   FAIL_LOGS     files (globs allowed) whose last 20 lines a failure shows
#   POLL_SECONDS  how long poll waits (default 15)

fail() {
        echo "FAIL: $*" >&2
        for log in ${FAIL_LOGS:-}; do
                [ -f "$log" ] || continue
                echo "--- $log (last 20 lines)" >&2
                tail -n 20 "$log" >&2
        done
        exit 1
}

# poll WHAT COMMAND...: runs COMMAND until it succeeds, for up to POLL_SECONDS.
poll() {
        what=$1
        shift
        i=0
        until "$@"; do
                i=$((i + 1))
                [ $i -lt $((${POLL_SECONDS:-15} * 10)) ] ||
                        fail "$what: not within ${POLL_SECONDS:-15} s"
                sleep 0.1
        done
}
