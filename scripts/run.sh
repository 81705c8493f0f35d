#!/bin/sh
# README's run command: installs what is missing, builds, starts the embedded
# broker, files the sample deviations, and shows them arriving - through
# 'avvik tail' and through kcat, an independent Kafka client.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build-run -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-run -j"$(nproc)" --target avvik
avvik=build-run/avvik
state=$(mktemp -d)
bs=$state/bootstrap.servers
X="-X bootstrap.file=$bs"

"$avvik" broker -f "$bs" &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$state"' EXIT INT TERM
while [ ! -s "$bs" ]; do sleep 0.1; done

echo
echo "== filing the sample deviations (deploy/samples/) with avvik report"
for f in deploy/samples/*.json; do
        printf '%-48s -> %s\n' "$(basename "$f")" "$("$avvik" report $X "$f" | cut -f2,3 | tr '\t' ' ')"
done

echo
echo "== a report with errors is rejected, every field named"
jq '.category = "WEATHER" | .patient.personal_id = "194003141234" | del(.description)' \
        deploy/samples/01-discharge-information-missing.json | "$avvik" report $X - || true

echo
echo "== deviation.reported as avvik tail reads it (JSON, one record a line)"
"$avvik" tail $X -e | jq -c '{deviation_id, reporter: .reporter.party, location: .location.party, category, harm: .harm.level}'

echo
echo "== the same records through kcat (key, partition, offset, Avro bytes)"
kcat -C -b "$(cat "$bs")" -t deviation.reported -e -q -f 'key %k  partition %p  offset %o  %S bytes\n'
echo
echo "broker stopping; 'avvik broker' runs it on its own until Ctrl-C"
