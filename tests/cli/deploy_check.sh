#!/bin/sh
# Checks deploy/ as far as a machine without a Docker engine or a Kafka cluster
# can (ctest cli_deploy_check; README, "Production deployment", says what is
# left): the compose file's schema and shape, every properties file against
# this avvik binary, the topic, ACL and SCRAM scripts' commands (--dry-run),
# the shell scripts, the test CA, the topics on the embedded broker, the
# dead-letter drain against it, and the systemd units.
#   deploy_check.sh AVVIK SOURCE_DIR
set -eu
avvik=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$2
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d)
broker_pid=""
dashboard_pid=""
cleanup() {
        for pid in $dashboard_pid $broker_pid; do
                kill "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null || true
        done
        rm -rf "$tmp"
}
trap cleanup EXIT
FAIL_LOGS="$tmp/*.log"
deploy=$src/deploy
skipped=""
skip() {
        echo "SKIP: $*"
        skipped="$skipped
  $*"
}

echo "== shell scripts: sh -n, shellcheck"
scripts="$deploy/make-secrets.sh $deploy/tls/make-certs.sh $deploy/kafka/create-topics.sh
$deploy/kafka/acls.sh $deploy/kafka/scram-users.sh $deploy/kafka/deadletter.sh"
for s in $scripts "$0"; do
        sh -n "$s" || fail "$s: syntax"
done
if command -v shellcheck >/dev/null; then
        # shellcheck disable=SC2086 # a list of paths
        shellcheck -x $scripts || fail "shellcheck"
else
        skip "shellcheck not installed"
fi

echo "== compose file"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
AVVIK_KAFKA_CLUSTER_ID=MkU3OEVBNTcwNTJENDM2Qk "$py" - "$deploy/compose.yaml" <<'EOF' || fail "compose.yaml"
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
services = doc["services"]
want = {"kafka-1", "kafka-2", "kafka-3", "kafka-init", "schema-registry",
        "gateway", "route", "notify", "track", "analyse", "dashboard"}
assert set(services) == want, f"services: {sorted(services)}, expected {sorted(want)}"
assert set(doc["volumes"]) == {"kafka-1-data", "kafka-2-data", "kafka-3-data", "gateway-spool"}, doc["volumes"]
for name, s in services.items():
    image = s["image"]
    assert ":" in image and not image.endswith(":latest"), f"{name}: image {image} is not pinned"
    if name == "kafka-init":
        assert s["restart"] == "no", f"{name}: a one-shot job is not restarted"
        continue
    assert s.get("restart") == "unless-stopped", f"{name}: restart policy"
    assert "healthcheck" in s, f"{name}: no healthcheck"
    assert s["deploy"]["resources"]["limits"], f"{name}: no resource limits"
for name in ("kafka-1", "kafka-2", "kafka-3"):
    assert services[name]["environment"]["NODE_ID"] == name[-1], name
for name in ("gateway", "route", "notify", "track", "analyse", "dashboard"):
    s = services[name]
    cmd = s["command"]
    assert cmd[0] == name and cmd[1:3] == ["-c", f"/etc/avvik/{name}.properties"], f"{name}: {cmd}"
    assert cmd[3:5] == ["-c", f"/run/secrets/{name}-credentials"], f"{name}: credentials {cmd}"
    assert f"{name}-credentials" in s["secrets"], f"{name}: secrets"
    assert any(v.startswith(f"./config/{name}.properties:") for v in s["volumes"]), f"{name}: properties not mounted"
    probe = " ".join(s["healthcheck"]["test"])
    assert "/healthz" in probe, f"{name}: healthcheck {probe}"
    assert s["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
# The HTTP servers: HTTPS only (a probe over https with the test CA), their
# tokens and TLS keys as secrets, their certificates mounted.
for name in ("gateway", "dashboard"):
    s = services[name]
    probe = s["healthcheck"]["test"]
    assert probe[-1].startswith("https://localhost:") and "--cacert" in probe, f"{name}: probe {probe}"
    assert {f"{name}-tokens", f"{name}-tls-key"} <= set(s["secrets"]), f"{name}: secrets {s['secrets']}"
    assert any(v.endswith(f"/tls/{name}.pem:/etc/avvik/tls/{name}.pem:ro") for v in s["volumes"]), f"{name}: no certificate"
for secret, spec in doc["secrets"].items():
    assert "file" in spec, secret
print("compose.yaml: services, volumes, images, healthchecks, limits, secrets as expected")
EOF
if command -v docker-compose >/dev/null; then
        # The Compose schema of docker-compose 1.29 (Debian 12): offline, no engine needed.
        (cd "$deploy" && AVVIK_KAFKA_CLUSTER_ID=MkU3OEVBNTcwNTJENDM2Qk docker-compose -f compose.yaml config -q) ||
                fail "docker-compose config"
        echo "docker-compose config: valid"
else
        skip "docker-compose not installed: the Compose schema was not checked"
fi

echo "== properties files against $avvik"
unknown=""
for f in "$deploy"/config/*.properties "$deploy"/config/credentials.example/*.properties; do
        if ! "$avvik" config check "$f" >/dev/null 2>"$tmp/check.err"; then
                cat "$tmp/check.err" >&2
                unknown="$unknown$(sed -n 's/^[^:]*:[0-9]*: \([^:]*\): unknown configuration key$/\1/p' "$tmp/check.err" | tr '\n' ' ')"
                other=$(grep -v ': unknown configuration key$' "$tmp/check.err" || true)
                [ -z "$other" ] || fail "$f: $other"
        fi
done
[ -z "$unknown" ] || fail "keys the deploy configuration uses that this avvik does not know: $unknown"
echo "every properties file loads"
# The HTTP servers in production: TLS, bearer tokens; the dashboard's Host
# names listed, none a wildcard.
for svc in gateway dashboard; do
        for key in tls.cert.file tls.key.file tokens.file; do
                grep -q "^$svc\.$key=/" "$deploy/config/$svc.properties" ||
                        fail "$svc.properties: $svc.$key is not set: $svc must serve HTTPS with tokens"
        done
done
hosts=$(sed -n 's/^dashboard\.hosts=//p' "$deploy/config/dashboard.properties")
[ -n "$hosts" ] || fail "dashboard.properties: dashboard.hosts is not set"
case ",$hosts," in *"*"* | *",,"*) fail "dashboard.hosts: $hosts" ;; esac
# The check itself: an unknown key and a bad value are named with their line.
printf 'log.level=info\nno.such.key=1\ntopic.partitions=0\n' >"$tmp/bad.properties"
if "$avvik" config check "$tmp/bad.properties" 2>"$tmp/bad.err"; then fail "a bad file passed"; fi
grep -q "bad.properties:2: no.such.key: unknown configuration key" "$tmp/bad.err" || fail "$(cat "$tmp/bad.err")"
grep -q "bad.properties:3: topic.partitions: 0 is outside" "$tmp/bad.err" || fail "$(cat "$tmp/bad.err")"

echo "== topics (create-topics.sh --dry-run)"
sh "$deploy/kafka/create-topics.sh" --dry-run >"$tmp/topics.txt" || fail "create-topics.sh"
inboxes=$(jq -r '[(.parties[] | .delivery.inbox_topic?, (.units[]? | .delivery.inbox_topic?)),
                  .triage_desk.delivery.inbox_topic?]
                 | map(select(. != null)) | unique | .[]' "$src/data/directory.json")
desk_inbox=$(jq -r '.triage_desk.delivery.inbox_topic' "$src/data/directory.json")
creates=$(grep -c -- '--create --if-not-exists' "$tmp/topics.txt")
want=$(($(printf '%s\n' "$inboxes" | wc -l) + 13))
[ "$creates" -eq "$want" ] || fail "$creates topics created, expected $want"
grep -- '--create' "$tmp/topics.txt" | grep -v -- '--replication-factor 3 --config min.insync.replicas=2 ' &&
        fail "a topic without replication factor 3 and min.insync.replicas 2"
# Every topic avvik knows (avvik config lists their defaults) is defined.
"$avvik" config | sed -n 's/^  \(topic\.[a-z.]*\) .*\[\(.*\)\]$/\1 \2/p' | grep -v '^topic.partitions ' >"$tmp/avk-topics"
[ -s "$tmp/avk-topics" ] || fail "avvik config lists no topic keys"
while read -r key name; do
        grep -q -- "--topic $name " "$tmp/topics.txt" || fail "$key ($name) is not in deploy/topics.conf"
done <"$tmp/avk-topics"
for t in deviation.reported deviation.response deviation.routed deviation.escalated deviation.status \
        deviation.reminder deviation.feedback deviation.delivery.failed deviation.analysis \
        deviation.notify.retry deviation.intake.receipts; do
        grep -q -- "--topic $t --partitions 12 " "$tmp/topics.txt" || fail "$t: not 12 partitions (lifecycle)"
done
grep -q -- '--topic deviation.status .*cleanup.policy=compact ' "$tmp/topics.txt" || fail "deviation.status not compacted"
grep -q -- '--topic deviation.reported .*retention.ms=-1 ' "$tmp/topics.txt" || fail "deviation.reported not kept"
grep -q -- '--topic avvik.inbox.1480 --partitions 3 ' "$tmp/topics.txt" || fail "inbox of 1480"
grep -q -- "--topic $desk_inbox --partitions 3 " "$tmp/topics.txt" || fail "inbox of the triage desk"
grep -q -- '--entity-name deviation.status --add-config min.insync.replicas=2,retention.ms=-1,cleanup.policy=compact,' \
        "$tmp/topics.txt" || fail "deviation.status: configs not converged"
# A bad line is refused with its line number, before any command.
sed 's/^deviation.status .*/deviation.status lifecycle -1 compacted 1048588/' "$deploy/topics.conf" >"$tmp/bad-topics.conf"
if sh "$deploy/kafka/create-topics.sh" --dry-run --topics "$tmp/bad-topics.conf" >"$tmp/bad-topics.out" 2>&1; then
        fail "a bad topics.conf passed"
fi
line=$(grep -n '^deviation.status ' "$deploy/topics.conf" | cut -d: -f1)
grep -q "bad-topics.conf:$line: cleanup.policy: \"compacted\"" "$tmp/bad-topics.out" || fail "$(cat "$tmp/bad-topics.out")"
grep -q -- '--create' "$tmp/bad-topics.out" && fail "commands printed before the error"

echo "== ACLs (acls.sh --dry-run)"
sh "$deploy/kafka/acls.sh" --dry-run >"$tmp/acls.txt" || fail "acls.sh"
rules() { sed -n "s/.*--allow-principal $1 --operation \([A-Za-z]*\) \(--[a-z-]*\)\( [^ ]*\)\{0,1\} --resource-pattern-type \([a-z]*\)$/\1 \2\3 \4/p" "$tmp/acls.txt" | sort; }
[ "$(rules User:party-1480)" = "Read --group party-1480. prefixed
Read --topic avvik.inbox.1480 literal" ] || fail "party-1480's rules: $(rules User:party-1480)"
[ "$(rules User:party-VGR)" = "Read --group party-VGR. prefixed
Read --topic avvik.inbox.vgr literal" ] || fail "party-VGR's rules: $(rules User:party-VGR)"
# The county's triage desk is a joint function with a principal of its own: it reads its own
# inbox (the directory's) in its own groups, nothing else, and no party reads that inbox.
[ "$(rules User:triage-desk)" = "Read --group triage-desk. prefixed
Read --topic $desk_inbox literal" ] || fail "triage-desk's rules: $(rules User:triage-desk)"
# Every inbox is read by its own party (or the desk) only (the services write to them).
for inbox in $inboxes; do
        readers=$(grep -- "--operation Read --topic $inbox " "$tmp/acls.txt" | sed 's/.*--allow-principal \([^ ]*\).*/\1/' | sort -u)
        [ "$(printf '%s\n' "$readers" | wc -l)" -eq 1 ] || fail "$inbox read by: $readers"
        case $inbox/$readers in
        "$desk_inbox/User:triage-desk") ;;
        "$desk_inbox/"*) fail "the triage desk's inbox $inbox read by $readers" ;;
        */User:party-*) ;;
        *) fail "$inbox read by $readers" ;;
        esac
done
grep -- '--operation Read --topic avvik.inbox. --resource-pattern-type prefixed' "$tmp/acls.txt" &&
        fail "someone reads every inbox"
# The inboxes are written by the notifier (routings) and the tracker (escalations, reminders).
[ "$(grep -- '--operation Write --topic avvik.inbox. ' "$tmp/acls.txt" | sed 's/.*--allow-principal \([^ ]*\).*/\1/' | sort | tr '\n' ' ')" = \
        "User:avvik-notify User:avvik-tracker " ] || fail "inbox writers: $(grep -- '--operation Write --topic avvik.inbox. ' "$tmp/acls.txt")"
[ "$(grep -- '--operation Write --topic deviation.status ' "$tmp/acls.txt" | sed 's/.*--allow-principal \([^ ]*\).*/\1/')" = User:avvik-tracker ] ||
        fail "deviation.status is written by someone besides the tracker"
grep -- '--operation Write --topic deviation. --resource-pattern-type prefixed' "$tmp/acls.txt" &&
        fail "a prefixed Write covers deviation.status"
# The notifier's retry topic holds webhook bodies: the notifier alone reads and writes it.
grep -- '--operation Read --topic deviation. --resource-pattern-type prefixed' "$tmp/acls.txt" &&
        fail "a prefixed Read covers deviation.notify.retry"
[ "$(grep -- '--topic deviation.notify.retry ' "$tmp/acls.txt" | sed 's/.*--allow-principal \([^ ]*\) --operation \([A-Za-z]*\).*/\1 \2/' | sort | tr '\n' ' ')" = \
        "User:avvik-notify Read User:avvik-notify Write " ] ||
        fail "deviation.notify.retry: $(grep -- '--topic deviation.notify.retry ' "$tmp/acls.txt")"
# The internet-facing gateway writes documents and their receipts in its transactions and
# reads the receipts back (never the documents: docs/intake.md, "Receipts"); its view reads
# the receipts and the lifecycle topics but deviation.reported, which holds the patient
# (docs/operations.md, "Security").
grep -- '--allow-principal User:avvik-gateway --operation Read --topic deviation.reported ' "$tmp/acls.txt" &&
        fail "the gateway reads deviation.reported"
[ "$(rules User:avvik-gateway)" = "IdempotentWrite --cluster literal
Read --topic deviation.escalated literal
Read --topic deviation.intake.receipts literal
Read --topic deviation.reminder literal
Read --topic deviation.response literal
Read --topic deviation.routed literal
Read --topic deviation.status literal
Write --topic deviation.intake.receipts literal
Write --topic deviation.reported literal
Write --topic deviation.response literal
Write --transactional-id avvik-intake- prefixed" ] || fail "the gateway's rules: $(rules User:avvik-gateway)"
# Only the gateway uses transactions, under its own prefix.
[ "$(grep -- '--transactional-id' "$tmp/acls.txt" | sed 's/.*--allow-principal \([^ ]*\).*/\1/')" = User:avvik-gateway ] ||
        fail "transactional ids: $(grep -- '--transactional-id' "$tmp/acls.txt")"
[ "$(rules User:analysis-vgr)" = "Read --group analysis-vgr. prefixed
Read --topic deviation.analysis literal" ] || fail "analysis-vgr: $(rules User:analysis-vgr)"
[ "$(rules User:avvik-dashboard)" = "Read --topic deviation.analysis literal" ] || fail "dashboard: $(rules User:avvik-dashboard)"

echo "== test CA, secrets, SCRAM users"
sh "$deploy/make-secrets.sh" "$tmp/secrets" >/dev/null || fail "make-secrets.sh"
for name in kafka-1 kafka-2 kafka-3 schema-registry gateway dashboard; do
        openssl verify -CAfile "$tmp/secrets/tls/ca.pem" -purpose sslserver "$tmp/secrets/tls/$name.pem" >/dev/null ||
                fail "$name.pem does not verify against the test CA"
        openssl x509 -in "$tmp/secrets/tls/$name.pem" -noout -ext subjectAltName | grep -q "DNS:$name" ||
                fail "$name.pem: no subjectAltName DNS:$name"
done
openssl pkcs12 -in "$tmp/secrets/tls/schema-registry.p12" -passin "file:$tmp/secrets/tls/schema-registry.p12.password" \
        -nokeys >/dev/null 2>&1 || fail "schema-registry.p12 does not open with its password"
[ "$(wc -c <"$tmp/secrets/pseudonym.key")" -eq 32 ] || fail "pseudonym.key is not 32 bytes"
[ "$(stat -c %a "$tmp/secrets/pseudonym.key")" = 600 ] || fail "pseudonym.key is not mode 0600"
"$avvik" config check "$tmp"/secrets/*.credentials.properties >/dev/null || fail "generated credentials"
sh "$deploy/kafka/scram-users.sh" --dry-run "$tmp/secrets/scram" >"$tmp/scram.txt" || fail "scram-users.sh"
[ "$(grep -c -- '--entity-type users' "$tmp/scram.txt")" -eq 10 ] || fail "SCRAM users: $(cat "$tmp/scram.txt")"
grep -q -- "--entity-name avvik-tracker --add-config SCRAM-SHA-512=\[iterations=8192,password=<$tmp/secrets/scram/avvik-tracker.password>\]" \
        "$tmp/scram.txt" || fail "scram-users.sh: $(head -n 3 "$tmp/scram.txt")"
grep -q -F -f "$tmp/secrets/scram/admin.password" "$tmp/scram.txt" && fail "a password in the dry run"

echo "== topics on the embedded broker"
"$avvik" broker -f "$tmp/bootstrap" -X topic.partitions=12 -X directory.file="$src/data/directory.json" \
        >"$tmp/broker.log" 2>&1 &
broker_pid=$!
poll "embedded broker" test -s "$tmp/bootstrap"
bs=$(cat "$tmp/bootstrap")
kcat -b "$bs" -L -J >"$tmp/metadata.json" || fail "kcat -L"
# The mock creates what avvik broker knows (no CreateTopics): compare names and
# the lifecycle partition count. Replication, min.insync.replicas, retention
# and compaction have no counterpart there.
sed -n 's/.*--create --if-not-exists --topic \([^ ]*\) --partitions \([0-9]*\) .*/\1 \2/p' "$tmp/topics.txt" |
        grep -v '^_schemas ' >"$tmp/wanted"
while read -r name parts; do
        have=$(jq -r --arg t "$name" '.topics[] | select(.topic == $t) | .partitions | length' "$tmp/metadata.json")
        [ -n "$have" ] || fail "$name: not on the embedded broker"
        case $name in
        avvik.inbox.* | deviation.deadletter) ;; # the mock's own counts (lifecycle, 1)
        *) [ "$have" -eq "$parts" ] || fail "$name: $have partitions on the embedded broker, $parts in topics.conf" ;;
        esac
done <"$tmp/wanted"
echo "$(wc -l <"$tmp/wanted") topics of topics.conf on the embedded broker"

echo "== dead-letter drain (deadletter.sh) against the embedded broker"
id=0b4f5c1e-7a8d-4e2f-9c3b-1d2e3f4a5b0d
printf 'bytes\nas they were' >"$tmp/value"
kcat -b "$bs" -P -t deviation.deadletter -p 0 -k "$id" -H "avk-error=undecodable: a, b" \
        -H avk-source-topic=deviation.reported -H avk-source-partition=4 -H avk-source-offset=9 \
        -H "avk-id=$id" -H avk-type=DeviationReported "$tmp/value" || fail "kcat -P"
sh "$deploy/kafka/deadletter.sh" -b "$bs" list >"$tmp/dl-list.txt" || fail "deadletter.sh list"
grep -q "partition 0 offset 0 key $id headers avk-error=undecodable: a, b,avk-source-topic=deviation.reported" \
        "$tmp/dl-list.txt" || fail "list: $(cat "$tmp/dl-list.txt")"
sh "$deploy/kafka/deadletter.sh" -b "$bs" replay 0 0 >/dev/null || fail "deadletter.sh replay"
kcat -b "$bs" -C -t deviation.reported -p 4 -o beginning -e -q -f '%k|%h|%s' >"$tmp/replayed"
printf '%s|avk-replayed-from=deviation.deadletter/0/0,avk-id=%s,avk-type=DeviationReported|bytes\nas they were' \
        "$id" "$id" >"$tmp/expected"
cmp -s "$tmp/replayed" "$tmp/expected" || fail "replayed: $(cat "$tmp/replayed")"

echo "== the dashboard with deploy's dashboard.* keys: HTTPS only, a token or its session"
grep '^dashboard\.' "$deploy/config/dashboard.properties" | sed -e 's|^dashboard.listen=.*|dashboard.listen=127.0.0.1:0|' \
        -e "s|=/etc/avvik/tls/|=$tmp/secrets/tls/|" -e "s|=/run/secrets/dashboard-tls-key|=$tmp/secrets/tls/dashboard.key|" \
        -e "s|=/run/secrets/dashboard-tokens|=$tmp/dashboard-tokens|" >"$tmp/dashboard.properties"
"$avvik" token --role analyst deploy-check >"$tmp/token.out" || fail "avvik token --role"
token=$(head -n 1 "$tmp/token.out")
tail -n 1 "$tmp/token.out" >"$tmp/dashboard-tokens"
"$avvik" dashboard -c "$tmp/dashboard.properties" -X bootstrap.file="$tmp/bootstrap" \
        -X dashboard.port.file="$tmp/dashboard.port" 2>"$tmp/dashboard.log" &
dashboard_pid=$!
poll "dashboard port file" test -s "$tmp/dashboard.port"
port=$(cat "$tmp/dashboard.port")
https() { curl -sS --cacert "$tmp/secrets/tls/ca.pem" -o "$tmp/answer" -D "$tmp/answer.h" -w '%{http_code}' "$@"; }
[ "$(https "https://localhost:$port/healthz")" = 200 ] || fail "dashboard: /healthz over HTTPS"
[ "$(https "https://localhost:$port/api/forsenade.json")" = 401 ] || fail "dashboard: no token, not 401"
[ "$(https -H "Authorization: Bearer $token" "https://localhost:$port/api/forsenade.json")" = 200 ] ||
        fail "dashboard: the analyst's token, not 200"
[ "$(https -H "Authorization: Bearer $token" -H "Host: rebound.example" "https://localhost:$port/")" = 421 ] ||
        fail "dashboard: a foreign Host, not 421"
[ "$(https -X POST -H "Authorization: Bearer $token" "https://localhost:$port/api/session")" = 200 ] ||
        fail "dashboard: POST /api/session"
grep -qi '^Set-Cookie: avk_session=.*; HttpOnly; SameSite=Strict; Secure' "$tmp/answer.h" ||
        fail "dashboard: the session cookie is not Secure over TLS: $(grep -i set-cookie "$tmp/answer.h")"
curl -sS -o /dev/null "http://localhost:$port/healthz" 2>/dev/null && fail "dashboard: answers plain HTTP"
kill "$dashboard_pid"
wait "$dashboard_pid" || fail "dashboard: exited $? after SIGTERM"
dashboard_pid=""
echo "dashboard: HTTPS only, 401 without a token, 421 for a foreign Host, a Secure session cookie"

echo "== systemd units"
if command -v systemd-analyze >/dev/null; then
        mkdir "$tmp/units"
        for f in "$deploy"/systemd/*.service; do
                sed "s|/usr/local/bin/avvik|$avvik|" "$f" >"$tmp/units/$(basename "$f")"
        done
        cp "$tmp/units/avvik-route@.service" "$tmp/units/avvik-route@9111.service"
        rm "$tmp/units/avvik-route@.service"
        for f in "$tmp"/units/*.service; do
                # verify warns without failing: any output is a finding.
                out=$(cd "$tmp/units" && systemd-analyze verify "./$(basename "$f")" 2>&1) || fail "$f: $out"
                [ -z "$out" ] || fail "systemd-analyze verify $(basename "$f"): $out"
                systemd-analyze security --offline=true --threshold=20 "$f" >"$tmp/security.log" 2>&1 ||
                        fail "$(basename "$f"): exposure above 2.0: $(tail -n 1 "$tmp/security.log")"
                echo "$(basename "$f"): $(tail -n 1 "$tmp/security.log" | sed 's/.*: //')"
        done
else
        skip "systemd-analyze not installed: the units were not verified"
fi

echo "deploy check passed${skipped:+; not checked:$skipped}"
