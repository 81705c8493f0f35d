#!/bin/sh
# The local stack's webhook receiver (deploy/local/webhook_receiver.py) checks
# signatures as docs/notify.md tells receivers to: it takes a fresh delivery,
# and refuses with 401 the same delivery replayed after the tolerance, one
# whose event type or body was changed, and one in the old body-only scheme.
#   webhook_receiver_replay.sh SOURCE_DIR
set -eu
src=$1
work=$(mktemp -d /tmp/avk-hook-replay.XXXXXX)
hook_pid=""
cleanup() {
        [ -z "$hook_pid" ] || kill "$hook_pid" 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
FAIL_LOGS="$work/hook.log"

umask 077
openssl rand -hex 32 >"$work/VGR-webhook.secret"
python3 "$src/deploy/local/webhook_receiver.py" "$work/hook.port" "$work/VGR-webhook.secret" \
        >"$work/hook.log" 2>&1 &
hook_pid=$!
poll "webhook receiver" test -s "$work/hook.port"
url="http://127.0.0.1:$(cat "$work/hook.port")/hook/VGR"
body='{"event_id":"0c7f3b1e-5d2a-5e4f-8a1b-2c3d4e5f6a7b","deviation_id":"3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10"}'

# post T SIGNED_TYPE SENT_TYPE SENT_BODY: the status of a POST signed at T for SIGNED_TYPE and $body
post() {
        v1=$(printf '%s.%s.%s' "$1" "$2" "$body" |
                openssl dgst -sha256 -mac HMAC -macopt "key:$(cat "$work/VGR-webhook.secret")" -r |
                cut -d' ' -f1)
        curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
                -H "X-Avvik-Event-Type: $3" -H "X-Avvik-Signature: t=$1,v1=$v1" \
                --data-binary "$4" "$url"
}

now=$(date +%s)
[ "$(post "$now" DeviationRouted DeviationRouted "$body")" = 200 ] || fail "a fresh delivery was refused"
# Twice the 300 s tolerance: under load a post here can take seconds, and a
# time 301 s ahead was once 300 s ahead by the time the receiver read it.
[ "$(post $((now - 600)) DeviationRouted DeviationRouted "$body")" = 401 ] ||
        fail "a delivery 600 s old was taken"
[ "$(post $((now + 600)) DeviationRouted DeviationRouted "$body")" = 401 ] ||
        fail "a delivery 600 s in the future was taken"
[ "$(post "$now" DeadlineReminder DeviationRouted "$body")" = 401 ] ||
        fail "a delivery with another event type was taken"
[ "$(post "$now" DeviationRouted DeviationRouted "$body ")" = 401 ] ||
        fail "a delivery with a changed body was taken"
old=$(printf '%s' "$body" | openssl dgst -sha256 -mac HMAC -macopt "key:$(cat "$work/VGR-webhook.secret")" -r |
        cut -d' ' -f1)
status=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Avvik-Event-Type: DeviationRouted" \
        -H "X-Avvik-Signature: sha256=$old" --data-binary "$body" "$url")
[ "$status" = 401 ] || fail "the old body-only signature was taken"
poll "the refusal says why in the log" grep -q "more than 300 s" "$work/hook.log"
echo "webhook_receiver.py: fresh taken; old, future, retyped, changed and body-only refused"
