#!/usr/bin/env bash
# Creates the PIX topics (the five of src/pix/domain/topics.hpp and the saga's dead-letter topic
# pix.dlq), idempotently: on the local Kafka or on the Kafka running in Kubernetes.
#
#   scripts/create_kafka_topics.sh [--target k8s|local] [--partitions N] [--replication N] [-- ARGS...]
#
#   --target k8s     (default) kafka-topics.sh inside the first Kafka pod (kubectl exec), as the seed's
#                    script did; on the secured broker of k8s/ (the pix-kafka image) it logs in with the
#                    client config the image writes (/opt/kafka/config/pix-client.properties) on the
#                    pod's own listener. The pix-topology Job already does this, with the ACLs.
#   --target local   `pix-admin topology --skip-rabbit` against the local broker (Admin API); ARGS
#                    after `--` go to pix-admin (e.g. --topic-prefix). Needs a build
#                    (scripts/local/build.sh release); `./pix up` does all of it.
#   --partitions N   partitions per topic (3)
#   --replication N  replicas per partition (k8s: 1, 3 on a 3-broker cluster; local: pix-admin's
#                    default, min(3, brokers))
#
# Env: PIX_TOPICS_TARGET (k8s|local, what --target sets), PARTITIONS or PIX_TOPIC_PARTITIONS,
# REPLICATION or PIX_TOPIC_REPLICATION. k8s: NAMESPACE (kafka), SELECTOR (app=kafka),
# KAFKA_TOPICS_BIN (/opt/kafka/bin/kafka-topics.sh, the apache/kafka image). local:
# PIX_KAFKA_BOOTSTRAP (127.0.0.1:9092), PIX_BIN (build/release/src).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

target="${PIX_TOPICS_TARGET:-k8s}"
partitions="${PARTITIONS:-${PIX_TOPIC_PARTITIONS:-3}}"
replication="${REPLICATION:-${PIX_TOPIC_REPLICATION:-}}"
passthrough=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --target) target="${2:?--target needs k8s or local}"; shift ;;
        --target=*) target="${1#*=}" ;;
        --partitions) partitions="${2:?--partitions needs a number}"; shift ;;
        --partitions=*) partitions="${1#*=}" ;;
        --replication) replication="${2:?--replication needs a number}"; shift ;;
        --replication=*) replication="${1#*=}" ;;
        -h | --help)
            pix_usage "${BASH_SOURCE[0]}"
            exit 0
            ;;
        --)
            shift
            passthrough=("$@")
            break
            ;;
        *) die "unknown argument '$1' (--target k8s|local, --partitions N, --replication N, -- ARGS; --help)" ;;
    esac
    shift
done
[[ "$partitions" =~ ^[1-9][0-9]*$ ]] || die "partitions '$partitions' is not a positive number"
[[ -z "$replication" || "$replication" =~ ^(-1|[1-9][0-9]*)$ ]] || die "replication '$replication' is not a number"

# What pix-admin topology creates (src/pix/domain/topics.hpp's kTopicNames, pix::saga::kDeadLetterTopic).
topics=(
    pix.payment.requested
    pix.payment.validated
    pix.payment.settled
    pix.notification.sent
    pix.audit.log
    pix.dlq
)

create_local() {
    local admin="${PIX_BIN:-$(pix_root)/build/release/src}/pix-admin"
    [[ -x "$admin" ]] || die "$admin is missing: run scripts/local/build.sh release first"
    local args=(topology --skip-rabbit --partitions "$partitions")
    [[ -z "$replication" ]] || args+=(--replication-factor "$replication")
    step "creating the PIX topics on ${PIX_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
    exec "$admin" "${args[@]}" ${passthrough[@]+"${passthrough[@]}"}
}

create_k8s() {
    local namespace="${NAMESPACE:-kafka}" selector="${SELECTOR:-app=kafka}"
    local topics_bin="${KAFKA_TOPICS_BIN:-/opt/kafka/bin/kafka-topics.sh}"
    ((${#passthrough[@]} == 0)) || die "arguments after -- are for --target local only"
    command -v kubectl >/dev/null 2>&1 || die "kubectl not found"
    local pod
    pod="$(kubectl get pods -n "$namespace" -l "$selector" -o jsonpath='{.items[0].metadata.name}')" ||
        die "kubectl cannot list the pods of namespace $namespace (no cluster, or no current context?)"
    [[ -n "$pod" ]] || die "no pod matches -l $selector in namespace $namespace"
    # The secured broker (pix-kafka image, k8s/kafka) has no plaintext listener: its CLI tools log in
    # with the client config pix-kafka-run writes, on the pod's own name (the certificate's SAN).
    local connect=(--bootstrap-server localhost:9092)
    local client_props=/opt/kafka/config/pix-client.properties
    if kubectl -n "$namespace" exec "$pod" -- test -f "$client_props" 2>/dev/null; then
        connect=(--bootstrap-server "$pod.kafka-headless.$namespace.svc.cluster.local:9092" --command-config "$client_props")
    fi
    local topic
    for topic in "${topics[@]}"; do
        step "topic $topic (partitions $partitions, replication ${replication:-1}) on $namespace/$pod"
        kubectl -n "$namespace" exec "$pod" -- "$topics_bin" "${connect[@]}" \
            --create --if-not-exists --topic "$topic" \
            --partitions "$partitions" --replication-factor "${replication:-1}"
    done
}

case "$target" in
    local) create_local ;;
    k8s) create_k8s ;;
    *) die "unknown target '$target' (k8s or local)" ;;
esac
