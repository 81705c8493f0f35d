#!/bin/sh
# Installs the Debian packages avvik builds, tests and runs with. Idempotent:
# installs only what is missing, so a ready machine pays one dpkg query.
set -eu
pkgs="build-essential cmake pkg-config clang libclang-rt-dev clang-format bc
librdkafka-dev libavro-dev libjansson-dev libyajl-dev libsimdjson-dev libcurl4-openssl-dev
libmicrohttpd-dev libssl-dev libxxhash-dev libicu-dev zlib1g-dev check libsubunit-dev uuid-dev kcat curl jq openssl wrk tzdata
chromium python3-yaml shellcheck docker-compose"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
as_root=""
[ "$(id -u)" -eq 0 ] || as_root="sudo"
echo "deps: installing$missing" >&2
$as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends $missing >/dev/null
