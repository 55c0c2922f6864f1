# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the scripts that source this file
# Names and paths of the secure broker profile (PIX_PROFILE=secure), shared by tls.sh,
# credentials.sh, kafka.sh, rabbitmq.sh and secure_smoke.sh. Source it after common.sh:
#
#   # shellcheck source=../lib/secure.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib/secure.sh"
#
# Provides:
#   PIX_TLS_DIR, PIX_CA_CRT, PIX_CA_KEY, PIX_SERVER_CRT, PIX_SERVER_KEY, PIX_TLS_CLIENTS_DIR
#   PIX_CRED_DIR (passwords), PIX_ENV_DIR (per-component env files), PIX_KAFKA_CLIENTS_DIR
#   PIX_TLS_CLIENT_NAMES   principals that get a client certificate (clients/<name>.crt/.key)
#   PIX_KAFKA_PRINCIPALS   SCRAM-SHA-512 users of Kafka
#   PIX_RABBIT_USERS       users of RabbitMQ
#   PIX_COMPONENTS         programs that get an env file; pix_component_uses_kafka/_rabbit NAME
#   pix_password_file NAME path of NAME's password file
#   pix_read_password NAME prints NAME's password (dies if it was never made)
#   pix_in_list WORD LIST...  true if WORD is one of LIST

if [[ -n "${_PIX_SECURE_SH:-}" ]]; then
    return 0
fi
_PIX_SECURE_SH=1

PIX_TLS_DIR="$PIX_STATE/tls"
PIX_CA_CRT="$PIX_TLS_DIR/ca.crt"
PIX_CA_KEY="$PIX_TLS_DIR/ca.key"
PIX_SERVER_CRT="$PIX_TLS_DIR/server.crt"
PIX_SERVER_KEY="$PIX_TLS_DIR/server.key"
PIX_TLS_CLIENTS_DIR="$PIX_TLS_DIR/clients"
# PEM keystores for Kafka (private key, then certificate, then the CA), made by tls.sh.
PIX_KAFKA_SERVER_KEYSTORE="$PIX_TLS_DIR/kafka/server.keystore.pem"
PIX_KAFKA_CONTROLLER_KEYSTORE="$PIX_TLS_DIR/kafka/controller.keystore.pem"

PIX_CRED_DIR="$PIX_STATE/credentials"
PIX_ENV_DIR="$PIX_CRED_DIR/env"
# Ready-made client configurations for Kafka's and librdkafka's own tools (kcat -F, --command-config).
PIX_KAFKA_CLIENTS_DIR="$PIX_CRED_DIR/kafka"

PIX_TLS_CLIENT_NAMES=(api-kafka api-rabbitmq antifraud settlement notifier auditor pix-admin pix-tail bench kafka-controller)
PIX_KAFKA_PRINCIPALS=(api-kafka antifraud settlement notifier auditor pix-admin pix-tail bench kafka-broker)
PIX_RABBIT_USERS=(api-rabbitmq notifier auditor pix-admin pix-tail monitoring bench)
PIX_COMPONENTS=(api-kafka api-rabbitmq antifraud settlement notifier auditor pix-admin pix-tail bench)
# The controller listener's principal: the subject of clients/kafka-controller.crt.
PIX_KAFKA_CONTROLLER_PRINCIPAL="User:CN=kafka-controller"

pix_in_list() {
    local word="$1" w
    shift
    for w in "$@"; do
        [[ "$w" == "$word" ]] && return 0
    done
    return 1
}

pix_component_uses_kafka() { [[ "$1" != api-rabbitmq ]] && pix_in_list "$1" "${PIX_COMPONENTS[@]}"; }
pix_component_uses_rabbit() { pix_in_list "$1" api-rabbitmq notifier auditor pix-admin pix-tail bench; }

pix_password_file() { printf '%s\n' "$PIX_CRED_DIR/$1.password"; }

pix_read_password() {
    local f
    f="$(pix_password_file "$1")"
    [[ -s "$f" ]] || die "no password for $1 ($f): run PIX_PROFILE=secure scripts/local/credentials.sh ensure"
    printf '%s' "$(<"$f")"
}
