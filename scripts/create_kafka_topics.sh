#!/usr/bin/env bash
# Creates the five PIX topics on the Kafka running in Kubernetes (the seed's script, made safe
# to re-run). For the local broker use scripts/local/create_kafka_topics.sh instead.
#
#   scripts/create_kafka_topics.sh
#
# Env: NAMESPACE (kafka), SELECTOR (app=kafka), PARTITIONS (3), REPLICATION (1; 3 on a
# 3-broker cluster), KAFKA_TOPICS_BIN (/opt/kafka/bin/kafka-topics.sh, the apache/kafka image).
set -euo pipefail

namespace="${NAMESPACE:-kafka}"
selector="${SELECTOR:-app=kafka}"
partitions="${PARTITIONS:-3}"
replication="${REPLICATION:-1}"
topics_bin="${KAFKA_TOPICS_BIN:-/opt/kafka/bin/kafka-topics.sh}"

topics=(
  pix.payment.requested
  pix.payment.validated
  pix.payment.settled
  pix.notification.sent
  pix.audit.log
)

pod="$(kubectl get pods -n "$namespace" -l "$selector" -o jsonpath='{.items[0].metadata.name}')"
if [[ -z "$pod" ]]; then
  echo "no pod matches -l $selector in namespace $namespace" >&2
  exit 1
fi

for topic in "${topics[@]}"; do
  echo "==> topic $topic (partitions $partitions, replication $replication) on $namespace/$pod"
  kubectl -n "$namespace" exec "$pod" -- "$topics_bin" --bootstrap-server localhost:9092 \
    --create --if-not-exists --topic "$topic" \
    --partitions "$partitions" --replication-factor "$replication"
done
