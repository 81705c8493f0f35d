# shellcheck shell=sh disable=SC2154
# Shared by the benchmark scripts (sourced): a fresh embedded broker per
# repetition, and the median of a file of numbers.
# The caller sets avvik (the binary), bs (the bootstrap file) and work (its
# temporary directory) before sourcing.
broker=
start_broker() { # start_broker [-X KEY=VALUE...]
        "$avvik" broker -f "$bs" "$@" 2>/dev/null &
        broker=$!
        while [ ! -s "$bs" ]; do sleep 0.1; done
}
stop_broker() {
        [ -n "$broker" ] || return 0
        kill "$broker" 2>/dev/null || true
        wait "$broker" 2>/dev/null || true
        broker=
        rm -f "$bs"
}
trap 'stop_broker; rm -rf "$work"' EXIT INT TERM
median() { # median FILE: of its lines, one number each
        # Fixed-point, not awk's %.6g: bc cannot read 1.5e+06.
        sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%.2f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
