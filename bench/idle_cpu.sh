#!/bin/sh
# Idle CPU of 'avvik route' and 'avvik track' against an idle kcat group
# consumer (kcat -G) on the same embedded broker: the three run side by side
# with nothing to consume, and each process's CPU (user + system, from
# /proc/PID/stat) is taken over the same WINDOW seconds (default 30), after
# SETTLE seconds (default 10) for the group joins and the rebuilds. REPS
# windows (default 5), fresh processes and broker each; min / median / max
# in percent of one core, and the ratio of the medians against kcat.
# Target (issue 19): at most 0.3 % of a core each.
# usage: idle_cpu.sh AVVIK_BINARY [WINDOW] [REPS] [SETTLE]
set -eu
avvik=$1
window=${2:-30}
reps=${3:-5}
settle=${4:-10}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
bs=$work/bootstrap.servers
. "$src/bench/lib.sh"

# percent PID CPU0: percent of a core PID used since CPU0 over the window.
percent() { echo "($(cpu_seconds "$1") - $2) * 100 / $window" | bc -l; }

echo "== idle CPU: avvik route and avvik track vs an idle kcat group consumer," \
        "$reps windows of $window s after $settle s (target: at most 0.3 % of a core each)"
: >"$work/route"
: >"$work/track"
: >"$work/kcat"
echo "load before: $(load)"
i=1
while [ "$i" -le "$reps" ]; do
        start_broker -X directory.file="$src/data/directory.json"
        common="-X bootstrap.file=$bs -X directory.file=$src/data/directory.json -X log.level=warn"
        # shellcheck disable=SC2086
        "$avvik" route $common -X routing.rules.file="$src/data/routing-rules.json" 2>/dev/null &
        route=$!
        # shellcheck disable=SC2086
        "$avvik" track $common -X deadlines.file="$src/data/deadlines.json" 2>/dev/null &
        track=$!
        kcat -b "$(cat "$bs")" -G bench-idle deviation.reported -q >/dev/null 2>&1 &
        kcat=$!
        keep_process "$route"
        keep_process "$track"
        keep_process "$kcat"
        sleep "$settle"
        r0=$(cpu_seconds "$route") t0=$(cpu_seconds "$track") k0=$(cpu_seconds "$kcat")
        sleep "$window"
        r=$(percent "$route" "$r0") t=$(percent "$track" "$t0") k=$(percent "$kcat" "$k0")
        echo "$r" >>"$work/route"
        echo "$t" >>"$work/track"
        echo "$k" >>"$work/kcat"
        printf '  window %d: avvik route %.2f %%, avvik track %.2f %%, kcat -G %.2f %% of a core\n' \
                "$i" "$r" "$t" "$k"
        stop_kept
        stop_broker
        i=$((i + 1))
done
load_after=$(load)
echo "load after: $load_after"
cp "$work/kcat" "$work/b"
for service in route track; do
        cp "$work/$service" "$work/a"
        verdict "idle CPU, avvik $service" - "avvik $service" "idle kcat -G" "% of a core"
        [ "$(echo "$(median "$work/a") <= 0.3" | bc -l)" -eq 1 ] && v=meets || v=MISSES
        echo "  avvik $service: median $(median "$work/a") % of a core ($v at most 0.3 %)"
done
