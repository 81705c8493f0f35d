#!/bin/sh
# README's run command: installs what is missing, builds, and runs the whole
# system on the embedded broker - broker, gateway, router, notifier, tracker,
# analysis forwarder and dashboard - with a day of sample deviations
# (deploy/local/stack.sh). Ctrl-C stops everything.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build-run -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-run -j"$(nproc)" --target avvik
exec sh deploy/local/stack.sh build-run/avvik "$@"
