#!/bin/sh
# Makes every secret deploy/compose.yaml mounts, into OUTDIR (default
# deploy/.secrets), with random values: for trying the production layout out.
# In production each secret comes from the site's secret store instead; the
# file names are what the compose file and the systemd units expect.
#
#   make-secrets.sh [OUTDIR]
#
# OUTDIR/tls/          CA and certificates (deploy/tls/make-certs.sh)
# OUTDIR/scram/        <user>.password per Kafka user (deploy/kafka/scram-users.sh)
# OUTDIR/kafka-broker.properties   password=... of the inter-broker user "broker"
# OUTDIR/admin.properties          client configuration of the Kafka CLI tools (user admin)
# OUTDIR/<service>.credentials.properties   kafka.sasl.password and the Schema
#                                  Registry's user:password, the second -c file of a service
# OUTDIR/schema-registry.passwords the registry's basic-auth users (Jetty property file)
# OUTDIR/schema-registry.jaas      the registry's JAAS file pointing at it
# OUTDIR/pseudonym.key             32 random bytes: analysis.pseudonym.key.file
# OUTDIR/gateway-tokens            the gateway's tokens file, empty: add lines with 'avvik token'
# OUTDIR/dashboard-tokens          the dashboard's, empty: add lines with 'avvik token --role'
# Every secret is mode 0600: give each to the uid of the container that reads it
# (docs/operations.md, "Start").
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/.secrets}
[ ! -e "$out/scram" ] || {
        echo "make-secrets.sh: $out has secrets already; rotate them one by one (docs/operations.md)" >&2
        exit 1
}
umask 077
mkdir -p "$out/scram"
sh "$here/tls/make-certs.sh" "$out/tls" >/dev/null

password() { openssl rand -hex 32; }
for user in broker admin schema-registry avvik-gateway avvik-router avvik-notify avvik-tracker \
        avvik-analysis avvik-dashboard avvik-operator; do
        password >"$out/scram/$user.password"
done
printf 'password=%s\n' "$(cat "$out/scram/broker.password")" >"$out/kafka-broker.properties"
cat >"$out/admin.properties" <<EOT
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat "$out/scram/admin.password")";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/tls/ca.pem
EOT

: >"$out/schema-registry.passwords"
for pair in gateway:avvik-gateway route:avvik-router notify:avvik-notify track:avvik-tracker \
        analyse:avvik-analysis dashboard:avvik-dashboard; do
        service=${pair%%:*}
        user=${pair#*:}
        registry_password=$(password)
        cat >"$out/$service.credentials.properties" <<EOT
kafka.sasl.password=$(cat "$out/scram/$user.password")
schema.registry.basic.auth.user.info=$user:$registry_password
EOT
        # Writers may register a schema version; compatibility is the registry's check.
        printf '%s: %s,avvik\n' "$user" "$registry_password" >>"$out/schema-registry.passwords"
done
printf 'operator: %s,admin\n' "$(password)" >>"$out/schema-registry.passwords"
cat >"$out/schema-registry.jaas" <<'EOT'
SchemaRegistry {
  org.eclipse.jetty.jaas.spi.PropertyFileLoginModule required
  file="/run/secrets/schema-registry-passwords"
  debug="false";
};
EOT
openssl rand 32 >"$out/pseudonym.key"
: >"$out/gateway-tokens"
: >"$out/dashboard-tokens"
echo "make-secrets.sh: secrets in $out"
