# shellcheck shell=sh disable=SC2154
# Shared by the benchmark scripts (sourced): a fresh embedded broker per
# repetition, and the median of a file of numbers.
# The caller sets avvik (the binary), bs (the bootstrap file), work (its
# temporary directory) and here (bench/) before sourcing.
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
gateway=
start_gateway() { # start_gateway PARTY: avvik gateway on the broker, one token of PARTY; sets url and token
        "$avvik" token "$1" bench >"$work/token"
        sed -n 2p "$work/token" >"$work/tokens"
        token=$(sed -n 1p "$work/token")
        "$avvik" gateway -X bootstrap.file="$bs" -X gateway.listen=127.0.0.1:0 \
                -X gateway.port.file="$work/port" -X gateway.tokens.file="$work/tokens" \
                -X log.level=warn 2>"$work/gateway.log" &
        gateway=$!
        while [ ! -s "$work/port" ]; do sleep 0.1; done
        url=http://127.0.0.1:$(cat "$work/port")
        until curl -sf "$url/readyz" >/dev/null; do sleep 0.1; done
}
start_sample_gateway() { # the broker and a gateway with the sample's party's token; sets template too
        start_broker
        sample=$here/../deploy/samples/01-discharge-information-missing.json
        start_gateway "$(jq -r .reporter.party "$sample")"
        jq -c '.deviation_id = "@ID@"' "$sample" >"$work/template"
}
stop_gateway() {
        [ -n "$gateway" ] || return 0
        kill -TERM "$gateway" 2>/dev/null || true
        wait "$gateway" 2>/dev/null || true
        gateway=
}
trap 'stop_gateway; stop_broker; rm -rf "$work"' EXIT INT TERM
