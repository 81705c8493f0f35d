#!/bin/sh
# Makes a test certificate authority and the certificates of deploy/compose.yaml
# with openssl: for trying the production layout out, never for production
# (there, certificates come from the organisation's CA, e.g. SITHS or an
# internal PKI, and private keys never leave their hosts).
#
#   make-certs.sh OUTDIR [DAYS]
#
# OUTDIR receives, for each name in NAMES (default: kafka-1 kafka-2 kafka-3
# schema-registry gateway dashboard):
#   <name>.key   private key (EC P-256, PKCS#8, mode 0600)
#   <name>.pem   certificate, signed by the CA, subjectAltName DNS:<name>, DNS:localhost
#   <name>.keystore.pem   key and certificate in one file (Kafka's PEM keystore)
# and ca.pem / ca.key (the CA), schema-registry.p12 with its password in
# schema-registry.p12.password (the registry's Jetty takes PKCS#12), ready to be
# checked with: openssl verify -CAfile OUTDIR/ca.pem OUTDIR/kafka-1.pem
# Certificates carry serverAuth and clientAuth: the brokers use theirs both to
# serve and, on the controller listener, to authenticate to each other.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
        sed -n '7p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
fi
out=$1
days=${2:-365}
names=${NAMES:-kafka-1 kafka-2 kafka-3 schema-registry gateway dashboard}
command -v openssl >/dev/null || {
        echo "make-certs.sh: openssl is required" >&2
        exit 1
}
mkdir -p "$out"
# The directory is mounted whole into the containers: they must enter it.
chmod 0755 "$out"
umask 077

subject_base="/C=SE/O=avvik test CA only"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/ca.key" 2>/dev/null
openssl req -x509 -new -key "$out/ca.key" -sha256 -days "$days" -subj "$subject_base/CN=avvik test CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$out/ca.pem"

ext=$(mktemp)
trap 'rm -f "$ext" "$out"/*.csr' EXIT
for name in $names; do
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/$name.key" 2>/dev/null
        openssl req -new -key "$out/$name.key" -subj "$subject_base/CN=$name" -out "$out/$name.csr"
        cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$name,DNS:localhost
EOF
        openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" \
                -CAcreateserial -sha256 -days "$days" -extfile "$ext" -out "$out/$name.pem" 2>/dev/null
        cat "$out/$name.key" "$out/$name.pem" >"$out/$name.keystore.pem"
done
case " $names " in
*" schema-registry "*)
        openssl rand -hex 24 >"$out/schema-registry.p12.password"
        openssl pkcs12 -export -in "$out/schema-registry.pem" -inkey "$out/schema-registry.key" \
                -certfile "$out/ca.pem" -name schema-registry \
                -passout "file:$out/schema-registry.p12.password" -out "$out/schema-registry.p12"
        ;;
esac
# The CA certificate and the leaf certificates are public; keys stay 0600.
chmod 0644 "$out/ca.pem"
for name in $names; do chmod 0644 "$out/$name.pem"; done
echo "make-certs.sh: CA and certificates for $names in $out (valid $days days)"
