#!/usr/bin/env bash
# Starts the official image's Kafka launcher (/etc/kafka/docker/run) with the Prometheus JMX exporter
# javaagent in KAFKA_OPTS, so that only the broker (and the storage format step before it, which
# exits before the broker binds the port) load the agent.
#
# Env: PIX_JMX_EXPORTER (on|off, default on), PIX_JMX_EXPORTER_PORT (9404),
#      PIX_JMX_EXPORTER_CONFIG (/etc/kafka/jmx-exporter/kafka.yaml, mounted from
#      monitoring/kafka/jmx-exporter.yaml). Arguments are passed on to /etc/kafka/docker/run.
set -euo pipefail

agent=/opt/jmx-exporter/jmx_prometheus_javaagent.jar
port="${PIX_JMX_EXPORTER_PORT:-9404}"
config="${PIX_JMX_EXPORTER_CONFIG:-/etc/kafka/jmx-exporter/kafka.yaml}"

case "${PIX_JMX_EXPORTER:-on}" in
    off | false | 0)
        echo "pix-kafka: JMX exporter disabled (PIX_JMX_EXPORTER=${PIX_JMX_EXPORTER})"
        ;;
    *)
        if [[ ! -r "$config" ]]; then
            echo "pix-kafka: JMX exporter rules $config not found: mount monitoring/kafka/jmx-exporter.yaml there" \
                "(or set PIX_JMX_EXPORTER=off)" >&2
            exit 64
        fi
        if [[ ! "$port" =~ ^[0-9]+$ ]]; then
            echo "pix-kafka: PIX_JMX_EXPORTER_PORT='$port' is not a port number" >&2
            exit 64
        fi
        export KAFKA_OPTS="-javaagent:${agent}=${port}:${config}${KAFKA_OPTS:+ $KAFKA_OPTS}"
        echo "pix-kafka: JMX exporter on :${port}/metrics with rules ${config}"
        ;;
esac

exec /etc/kafka/docker/run "$@"
