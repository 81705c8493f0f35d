#!/bin/sh
# Sets the SCRAM-SHA-512 credential of every user with a password file in DIR
# (DIR/<user>.password, as deploy/make-secrets.sh writes them): the avvik
# services, the Schema Registry, operators and any party whose consumer has
# been given credentials. Setting a credential again replaces it: this is also
# how a password is rotated (docs/operations.md).
#
#   scram-users.sh [--dry-run] [--bootstrap-server HOST:PORT]
#                  [--command-config FILE] [--kafka-bin DIR] DIR
#
# --dry-run prints the commands with "<DIR/user.password>" where the password
# goes, and runs nothing. Passwords must not hold ',', '[', ']' or '=' (the
# syntax of --add-config): make-secrets.sh uses hex.
set -eu

dry=0
bootstrap=${KAFKA_BOOTSTRAP:-kafka-1:9093}
command_config=${KAFKA_COMMAND_CONFIG:-/etc/kafka/admin.properties}
kafka_bin=${KAFKA_BIN:-/opt/kafka/bin}
while [ $# -gt 1 ]; do
        case $1 in
        --dry-run) dry=1 ;;
        --bootstrap-server) bootstrap=${2:?}; shift ;;
        --command-config) command_config=${2:?}; shift ;;
        --kafka-bin) kafka_bin=${2:?}; shift ;;
        *) echo "scram-users.sh: unknown option $1" >&2; exit 2 ;;
        esac
        shift
done
[ $# -eq 1 ] || { sed -n '9,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
dir=$1
found=0
for file in "$dir"/*.password; do
        [ -f "$file" ] || continue
        found=1
        user=$(basename "$file" .password)
        if [ "$dry" -eq 1 ]; then
                password="<$file>"
        else
                password=$(cat "$file")
                case $password in
                '' | *[],[=]*) echo "scram-users.sh: $file: empty, or holds , [ ] or =" >&2; exit 1 ;;
                esac
        fi
        set -- "$kafka_bin/kafka-configs.sh" --bootstrap-server "$bootstrap" \
                --command-config "$command_config" --alter --entity-type users \
                --entity-name "$user" --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
        if [ "$dry" -eq 1 ]; then printf '%s\n' "$*"; else "$@"; fi
done
[ "$found" -eq 1 ] || { echo "scram-users.sh: no *.password files in $dir" >&2; exit 1; }
