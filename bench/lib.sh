# shellcheck shell=sh disable=SC2154
# Shared by the benchmark scripts (sourced): a fresh embedded broker per
# repetition, records counted by end offsets, and the comparison every row
# makes - two sides run alternately REPS times (the first side first in odd
# repetitions, the second first in even ones), then min / median / max of
# each, the ratio of the medians against the row's target and the load.
# The caller sets work (its temporary directory) and, for the broker, avvik
# (the binary) and bs (the bootstrap file) before sourcing. With
# AVK_BENCH_TABLE set, every row also appends one line of Markdown to that
# file (scripts/bench.sh prints them as one table).
# stop_process PID...: SIGTERM to each, then waits for it.
stop_process() {
        for pid in "$@"; do
                kill -TERM "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        done
}

# Processes a script started besides the broker (servers, services): kept
# with keep_process, stopped together by stop_kept, and on exit.
kept=
keep_process() { kept="$kept $1"; }
stop_kept() {
        # shellcheck disable=SC2086
        stop_process $kept
        kept=
}

broker=
start_broker() { # start_broker [-X KEY=VALUE...]: exits with the broker's error if it stops
        "$avvik" broker -f "$bs" "$@" 2>"$work/broker.err" &
        broker=$!
        while [ ! -s "$bs" ]; do
                kill -0 "$broker" 2>/dev/null || {
                        echo "avvik broker stopped: $(cat "$work/broker.err")" >&2
                        exit 1
                }
                sleep 0.1
        done
}
stop_broker() {
        [ -n "$broker" ] || return 0
        stop_process "$broker"
        broker=
        rm -f "$bs"
}
trap 'stop_kept; stop_broker; rm -rf "$work"' EXIT INT TERM
median() { # median FILE: of its lines, one number each
        # Fixed-point, not awk's %.6g: bc cannot read 1.5e+06.
        sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%.2f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
load() { cut -d' ' -f1-3 /proc/loadavg; }

# The sum of topic's end offsets: what was written to it, however much the
# embedded broker (which keeps only ~5 MB a partition) has since dropped.
end_offsets() { # end_offsets TOPIC
        n=$(kcat -b "$(cat "$bs")" -L -J -t "$1" | jq '.topics[0].partitions | length')
        set --  "$1" "$n"
        p=0 args=
        while [ "$p" -lt "$2" ]; do
                args="$args -t $1:$p:-1"
                p=$((p + 1))
        done
        # shellcheck disable=SC2086
        kcat -b "$(cat "$bs")" -Q $args | awk '{ s += $NF } END { print s + 0 }'
}

# CPU seconds (user + system) of process PID so far, from /proc/PID/stat.
cpu_seconds() { # cpu_seconds PID
        awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

# What alternate() does before and after the two sides of a repetition (a
# script that needs a fresh broker for both defines its own).
rep_begin() { :; }
rep_end() { :; }

# alternate REPS: calls side_a and side_b (the caller's functions, each
# appending one figure to $work/a or $work/b) REPS times, alternately, between
# rep_begin and rep_end.
alternate() {
        : >"$work/a"
        : >"$work/b"
        : >"$work/a.cpu"
        : >"$work/b.cpu"
        echo "load before: $(load)"
        i=1
        while [ "$i" -le "$1" ]; do
                rep_begin
                if [ $((i % 2)) -eq 1 ]; then
                        side_a
                        side_b
                else
                        side_b
                        side_a
                fi
                rep_end
                i=$((i + 1))
        done
        load_after=$(load)
        echo "load after: $load_after"
}

# num X: X rounded for a table (bc -l prints 20 decimals).
num() { awk -v x="$1" 'BEGIN { printf (x >= 100 || x <= -100) ? "%.0f" : "%.2f", x }'; }

stats() { # stats FILE NAME UNIT: NAME's min, median and max
        printf '  %-40s min %10.1f  median %10.1f  max %10.1f %s\n' "$2" "$(sort -n "$1" | head -n 1)" \
                "$(median "$1")" "$(sort -n "$1" | tail -n 1)" "$3"
}

# cpu_verdict TITLE TARGET A_NAME B_NAME: (TARGET "-" for none) the CPU per message of $work/a.cpu
# against $work/b.cpu (microseconds, user + system of each side's process,
# one line a run): the load-independent measure, since a loaded machine
# stretches both sides' wall time but hardly the CPU a message takes. The
# ratio is B's median over A's, so that it reads like the throughput ratio
# (0.5x: A takes twice B's CPU a message).
cpu_verdict() {
        a_cpu=$(median "$work/a.cpu") b_cpu=$(median "$work/b.cpu")
        cpu_ratio=$(echo "$b_cpu / $a_cpu" | bc -l)
        printf '  CPU per message, min / median / max: %s %s / %s / %s us, %s %s / %s / %s us\n' \
                "$3" "$(num "$(sort -n "$work/a.cpu" | head -n 1)")" "$(num "$a_cpu")" \
                "$(num "$(sort -n "$work/a.cpu" | tail -n 1)")" "$4" \
                "$(num "$(sort -n "$work/b.cpu" | head -n 1)")" "$(num "$b_cpu")" \
                "$(num "$(sort -n "$work/b.cpu" | tail -n 1)")"
        if [ "$2" = - ]; then
                v="no target"
        elif [ "$(echo "$cpu_ratio >= $2" | bc -l)" -eq 1 ]; then
                v="meets at least ${2}x"
        else
                v="MISSES ${2}x"
        fi
        printf '  CPU ratio of medians (%s / %s): %.2fx (%s)\n' "$4" "$3" "$cpu_ratio" "$v"
        if [ -n "${AVK_BENCH_TABLE:-}" ]; then
                printf '| %s, CPU per message | %s: %s us | %s: %s us | **%.2fx** (%s) | %s |\n' \
                        "$1" "$3" "$(num "$a_cpu")" "$4" "$(num "$b_cpu")" "$cpu_ratio" "$v" \
                        "$load_after" >>"$AVK_BENCH_TABLE"
        fi
}

# verdict TITLE TARGET A_NAME B_NAME UNIT [HIGHER [LIMIT]]: the row of $work/a
# against $work/b. TARGET "-" is none; HIGHER "lower" when a ratio at most
# TARGET is the goal (memory, CPU, latency). LIMIT, with TARGET "-": the goal
# is A's median at most LIMIT UNIT (a latency), whatever B's.
verdict() {
        title=$1 target=$2 a_name=$3 b_name=$4 unit=$5 better=${6:-higher} limit=${7:-}
        stats "$work/a" "$a_name" "$unit"
        stats "$work/b" "$b_name" "$unit"
        a_med=$(median "$work/a") b_med=$(median "$work/b")
        ratio=$(echo "$a_med / $b_med" | bc -l)
        if [ -n "$limit" ] && [ "$(echo "$a_med <= $limit" | bc -l)" -eq 1 ]; then
                v="meets at most $limit $unit"
        elif [ -n "$limit" ]; then
                v="MISSES at most $limit $unit"
        elif [ "$target" = - ]; then
                v="no target"
        elif [ "$better" = lower ] && [ "$(echo "$ratio <= $target" | bc -l)" -eq 1 ]; then
                v="meets at most ${target}x"
        elif [ "$better" = higher ] && [ "$(echo "$ratio >= $target" | bc -l)" -eq 1 ]; then
                v="meets at least ${target}x"
        else
                v="MISSES ${target}x"
        fi
        # With a limit the verdict is on A's median itself, the ratio beside it.
        if [ -n "$limit" ]; then
                head=$(printf '%s %s' "$(num "$a_med")" "$unit")
                v=$(printf '%s; ratio of medians %.2fx' "$v" "$ratio")
                printf '  %s, median: %s (%s)\n' "$a_name" "$head" "$v"
        else
                head=$(printf '%.2fx' "$ratio")
                printf '  ratio of medians: %s (%s)\n' "$head" "$v"
        fi
        if [ -n "${AVK_BENCH_TABLE:-}" ]; then
                printf '| %s | %s: %s / %s / %s %s | %s: %s / %s / %s | **%s** (%s) | %s |\n' \
                        "$title" "$a_name" "$(num "$(sort -n "$work/a" | head -n 1)")" \
                        "$(num "$a_med")" "$(num "$(sort -n "$work/a" | tail -n 1)")" "$unit" \
                        "$b_name" "$(num "$(sort -n "$work/b" | head -n 1)")" "$(num "$b_med")" \
                        "$(num "$(sort -n "$work/b" | tail -n 1)")" "$head" "$v" "$load_after" \
                        >>"$AVK_BENCH_TABLE"
        fi
}

# node_modules PACKAGE...: the Node peers' runtime - nodejs and npm (apt) and
# the npm PACKAGEs (into AVK_NODE_DIR) installed when missing, NODE_PATH set.
node_modules() {
        node_dir=${AVK_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/avvik-bench-node}
        command -v node >/dev/null || apt-get install -y nodejs npm >/dev/null
        NODE_PATH=$node_dir/node_modules
        export NODE_PATH
        for pkg in "$@"; do
                node -e "require('$pkg')" 2>/dev/null && continue
                mkdir -p "$node_dir"
                npm install --prefix "$node_dir" --no-audit --no-fund "$pkg" >/dev/null
        done
}
