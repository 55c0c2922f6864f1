#!/usr/bin/env bash
# Validates the monitoring configuration offline (no Docker engine, no cluster), strictly: any
# problem fails the script. What it checks, in order:
#
#   prometheus     promtool check config monitoring/prometheus/prometheus.yml (alerts.yml included)
#   rules          promtool check rules alerts.yml, and promtool test rules alerts_test.yml
#   alertmanager   amtool check-config; the routes send each severity to its receiver; a real
#                  Alertmanager on 127.0.0.1 receives broker-down + API alerts and must inhibit the
#                  ones the broker outage explains (inhibit_rules), and only those
#                  (scripts/deploy/alertmanager_inhibitions.py)
#   dashboards     dashboards/*.json parse; every query parses as PromQL (promtool)
#   jmx-rules      the Prometheus JMX exporter javaagent (the version deploy/images/kafka pins) runs with
#                  monitoring/kafka/jmx-exporter.yaml next to Kafka's own metric classes (Kafka's jars
#                  from the local broker's class path): every kafka_* name we use must come out
#   metric-names   scripts/deploy/check_metric_names.py: every metric named in the dashboards and
#                  alerts.yml is in docs/metrics.txt or monitoring/external-metrics.txt; RabbitMQ names
#                  against a live scrape of the local rabbitmq_prometheus (FACTS.md's list otherwise);
#                  scrape jobs, alert test coverage, otel collector wiring
#   yamllint       yamllint -s -c .yamllint on monitoring/
#
#   scripts/deploy/check_monitoring.sh
#
# Env: PIX_KAFKA_LIBS (Kafka's jars; default $PIX_STATE/kafka/libs, laid out by scripts/local/kafka.sh;
# without them jmx-rules is skipped with a warning), PIX_JMX_EXPORTER_VERSION (default: the
# Dockerfile's, else 1.0.1), PIX_RABBIT_METRICS_URL (default http://127.0.0.1:15692/metrics/per-object),
# PIX_FACTS (default <repo>/../shared/FACTS.md).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

pix_help_if_asked "$@"

root="$(pix_root)"
cd "$root"

work="$(mktemp -d "${TMPDIR:-/tmp}/pix-check-monitoring.XXXXXX")"
am_pid=""
cleanup() {
    if [[ -n "$am_pid" ]]; then
        kill "$am_pid" 2>/dev/null || true
        wait "$am_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

summary=()
pass() {
    ok "$1: $2"
    summary+=("$(printf '  %-13s ok    %s' "$1" "$2")")
}
skipped() {
    warn "$1: SKIPPED: $2"
    summary+=("$(printf '  %-13s SKIP  %s' "$1" "$2")")
}

for tool in promtool amtool prometheus-alertmanager python3 curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (scripts/local/deps.sh installs it)"
done
python3 -c 'import yaml' 2>/dev/null || die "python3 has no yaml module (Debian: python3-yaml, which yamllint brings)"

free_port() { python3 scripts/deploy/checklib.py free-port; }

# ---- Prometheus config and rules ----------------------------------------------------------------

step "promtool check config monitoring/prometheus/prometheus.yml"
promtool check config monitoring/prometheus/prometheus.yml
pass prometheus "prometheus.yml and the rule files it names"

step "promtool check rules / test rules"
promtool check rules monitoring/prometheus/alerts.yml
promtool test rules monitoring/prometheus/alerts_test.yml
n_alerts="$(grep -c '^ *- alert:' monitoring/prometheus/alerts.yml)"
pass rules "$n_alerts alerts parse; their unit tests pass"

# ---- Alertmanager -------------------------------------------------------------------------------

am_config=monitoring/alertmanager/alertmanager.yml
step "amtool check-config $am_config"
amtool check-config "$am_config"

step "alertmanager routes"
route_is() {
    # route_is RECEIVER LABEL=VALUE...: the route tree sends an alert with these labels to RECEIVER.
    local want="$1"
    shift
    amtool config routes test --config.file="$am_config" --verify.receivers="$want" "$@" >/dev/null 2>&1 ||
        die "alertmanager.yml routes {$*} elsewhere than $want"
    echo "    {$*} -> $want"
}
route_is pix-critical severity=critical alertname=KafkaDown job=kafka
route_is pix-warning severity=warning alertname=PixConsumerLagGrowing job=pix-saga
route_is pix-default alertname=Unlabelled

step "alertmanager inhibitions (a real Alertmanager on 127.0.0.1)"
am_port="$(free_port)"
prometheus-alertmanager --config.file="$am_config" --storage.path="$work/alertmanager" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
    >"$work/alertmanager.log" 2>&1 &
am_pid=$!
am="http://127.0.0.1:$am_port"
wait_until "alertmanager on :$am_port" 30 --pid "$am_pid" --log "$work/alertmanager.log" \
    curl -fsS -o /dev/null "$am/-/ready"
# Alerts as Prometheus would send them while Kafka is down (and one unrelated to Kafka); which of
# them must be inhibited: scripts/deploy/alertmanager_inhibitions.py.
PYTHONDONTWRITEBYTECODE=1 python3 scripts/deploy/alertmanager_inhibitions.py alerts "$work/alerts.json"
curl -fsS -X POST -H 'Content-Type: application/json' --data-binary "@$work/alerts.json" "$am/api/v2/alerts" >/dev/null
inhibited_ok() {
    curl -fsS "$am/api/v2/alerts" >"$work/am-alerts.json" || return 1
    PYTHONDONTWRITEBYTECODE=1 python3 scripts/deploy/alertmanager_inhibitions.py check "$work/am-alerts.json"
}
# Inhibition is computed when the alerts are listed; give the API a moment to have them all.
if ! wait_until "alertmanager to report the inhibitions" 20 --pid "$am_pid" inhibited_ok; then
    inhibited_ok || true
    die "alertmanager.yml inhibit_rules do not mute what a broker outage explains (see above)"
fi
kill "$am_pid" 2>/dev/null || true
wait "$am_pid" 2>/dev/null || true
am_pid=""
pass alertmanager "config valid; routes by severity; KafkaDown inhibits the api-kafka and stage alerts, not api-rabbitmq's"

# ---- dashboards, JMX rules, metric names ---------------------------------------------------------

step "dashboards parse"
shopt -s nullglob
dashboards=(dashboards/*.json)
shopt -u nullglob
[[ ${#dashboards[@]} -gt 0 ]] || die "no dashboards/*.json"
for d in "${dashboards[@]}"; do
    python3 -m json.tool "$d" >/dev/null || die "$d is not valid JSON"
    echo "    $d"
done

kafka_metrics_args=()
kafka_libs="${PIX_KAFKA_LIBS:-$PIX_STATE/kafka/libs}"
jmx_version="${PIX_JMX_EXPORTER_VERSION:-}"
if [[ -z "$jmx_version" && -f deploy/images/kafka/Dockerfile ]]; then
    jmx_version="$(sed -n 's/^ARG JMX_EXPORTER_VERSION=\([0-9][0-9.]*\)$/\1/p' deploy/images/kafka/Dockerfile | head -n 1)"
fi
jmx_version="${jmx_version:-1.0.1}"
if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    skipped jmx-rules "java or mvn missing (scripts/local/deps.sh installs them)"
elif ! compgen -G "$kafka_libs/kafka_2.13-*.jar" >/dev/null; then
    skipped jmx-rules "no Kafka jars in $kafka_libs (scripts/local/kafka.sh start lays them out)"
else
    step "JMX exporter $jmx_version with monitoring/kafka/jmx-exporter.yaml on Kafka's metric classes"
    agent_dir="$PIX_STATE/monitoring"
    agent="$agent_dir/jmx_prometheus_javaagent-$jmx_version.jar"
    if [[ ! -s "$agent" ]]; then
        mkdir -p "$agent_dir"
        mvn -q -B dependency:copy -Dartifact="io.prometheus.jmx:jmx_prometheus_javaagent:$jmx_version" \
            -DoutputDirectory="$agent_dir" >"$work/mvn.log" 2>&1 ||
            { tail -n 20 "$work/mvn.log" >&2; die "could not fetch jmx_prometheus_javaagent $jmx_version from Maven Central"; }
    fi
    mkdir -p "$work/jmx"
    # Registers the broker's metrics with Kafka's own classes (so the MBean names are the real ones),
    # then prints what the javaagent serves.
    cat >"$work/jmx/JmxRulesProbe.java" <<'EOF'
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import kafka.server.BrokerTopicStats;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.controller.metrics.ControllerMetadataMetrics;
import org.apache.kafka.controller.metrics.QuorumControllerMetrics;
import org.apache.kafka.server.metrics.KafkaMetricsGroup;
import org.apache.kafka.server.metrics.KafkaYammerMetrics;
import org.apache.kafka.storage.log.metrics.BrokerTopicMetrics;

public class JmxRulesProbe {
    public static void main(String[] args) throws Exception {
        BrokerTopicStats stats = new BrokerTopicStats(false);
        for (BrokerTopicMetrics m : new BrokerTopicMetrics[] {
                 stats.topicStats("pix.payment.requested"), stats.topicStats("pix.dlq"), stats.allTopicsStats()}) {
            m.messagesInRate().mark(3);
            m.bytesInRate().mark(300);
            m.bytesOutRate().mark(600);
            m.bytesRejectedRate().mark(0);
            m.totalProduceRequestRate().mark(2);
            m.totalFetchRequestRate().mark(5);
            m.failedProduceRequestRate().mark(0);
            m.failedFetchRequestRate().mark(0);
        }
        KafkaMetricsGroup replicaManager = new KafkaMetricsGroup("kafka.server", "ReplicaManager");
        replicaManager.newGauge("UnderReplicatedPartitions", () -> 0);
        replicaManager.newGauge("UnderMinIsrPartitionCount", () -> 0);
        replicaManager.newGauge("PartitionCount", () -> 18);
        replicaManager.newGauge("LeaderCount", () -> 18);
        ControllerMetadataMetrics metadata = new ControllerMetadataMetrics(Optional.of(KafkaYammerMetrics.defaultRegistry()));
        metadata.setOfflinePartitionCount(0);
        metadata.setGlobalPartitionCount(18);
        new QuorumControllerMetrics(Optional.of(KafkaYammerMetrics.defaultRegistry()), Time.SYSTEM, false).setActive(true);
        new KafkaMetricsGroup("kafka.server", "KafkaRequestHandlerPool")
            .newMeter("RequestHandlerAvgIdlePercent", "percent", TimeUnit.NANOSECONDS).mark(1);

        HttpResponse<String> r = HttpClient.newHttpClient().send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + args[0] + "/metrics")).build(),
            HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) throw new IllegalStateException("GET /metrics answered " + r.statusCode());
        System.out.print(r.body());
        System.exit(0);
    }
}
EOF
    jmx_port="$(free_port)"
    log4j=()
    [[ -f "$PIX_STATE/kafka/tools-log4j.properties" ]] && log4j=("-Dlog4j.configuration=file:$PIX_STATE/kafka/tools-log4j.properties")
    if ! timeout 120 java -Xmx256m \
        "-javaagent:$agent=127.0.0.1:$jmx_port:$root/monitoring/kafka/jmx-exporter.yaml" \
        "${log4j[@]}" -cp "$kafka_libs/*" "$work/jmx/JmxRulesProbe.java" "$jmx_port" \
        >"$work/kafka-metrics.txt" 2>"$work/jmx.log"; then
        tail -n 30 "$work/jmx.log" >&2
        die "the JMX exporter probe failed"
    fi
    grep -E '^kafka_' "$work/kafka-metrics.txt" | sed 's/[{ ].*//' | sort -u | sed 's/^/    /'
    # The labels the queries rely on: per-topic series (topic=...), and all-topics series without
    # a topic label (selected with topic="").
    for series in \
        'kafka_server_brokertopicmetrics_messagesin_total{topic="pix.dlq"} 3' \
        'kafka_server_brokertopicmetrics_messagesin_total{topic="pix.payment.requested"} 3' \
        'kafka_server_brokertopicmetrics_bytesin_total{topic="pix.payment.requested"} 300' \
        'kafka_server_brokertopicmetrics_bytesout_total{topic="pix.payment.requested"} 600' \
        'kafka_server_brokertopicmetrics_totalproducerequests_total 2' \
        'kafka_server_brokertopicmetrics_totalfetchrequests_total 5' \
        'kafka_server_brokertopicmetrics_failedproducerequests_total 0' \
        'kafka_controller_kafkacontroller_activecontrollercount 1' \
        'kafka_controller_kafkacontroller_offlinepartitionscount 0' \
        'kafka_server_replicamanager_underreplicatedpartitions 0'; do
        # The exporter prints floats (3.0); compare the numeric value.
        awk -v want="$series" '
            BEGIN { n = split(want, w, " ") }
            { v = $NF; $NF = ""; sub(/ $/, "") }
            $0 == w[1] && v + 0 == w[2] + 0 { found = 1 }
            END { exit !found }' "$work/kafka-metrics.txt" ||
            die "the JMX exporter does not serve '$series' (rules: monitoring/kafka/jmx-exporter.yaml)"
    done
    kafka_metrics_args=(--kafka-metrics "$work/kafka-metrics.txt")
    pass jmx-rules "javaagent $jmx_version + jmx-exporter.yaml export every kafka_* name we use (Kafka jars: $kafka_libs)"
fi

rabbit_args=()
rabbit_url="${PIX_RABBIT_METRICS_URL:-http://127.0.0.1:15692/metrics/per-object}"
if curl -fsS -m 10 -o "$work/rabbitmq-metrics.txt" "$rabbit_url" 2>/dev/null; then
    rabbit_args=(--rabbitmq-metrics "$work/rabbitmq-metrics.txt")
    rabbit_note="RabbitMQ names checked against a live scrape of $rabbit_url"
else
    rabbit_note="RabbitMQ not reachable at $rabbit_url: its names checked against FACTS.md only"
    warn "$rabbit_note"
fi
facts="${PIX_FACTS:-$root/../shared/FACTS.md}"
facts_args=()
[[ -f "$facts" ]] && facts_args=(--facts "$facts")

step "metric names in dashboards and alerts"
python3 scripts/deploy/check_metric_names.py --root "$root" --promql-rules-out "$work/dashboard-rules.yml" \
    "${kafka_metrics_args[@]}" "${rabbit_args[@]}" "${facts_args[@]}" ||
    die "metric names: see the errors above"
pass metric-names "every name exists (docs/metrics.txt, monitoring/external-metrics.txt); $rabbit_note"

step "dashboard queries parse as PromQL"
promtool check rules "$work/dashboard-rules.yml" >/dev/null ||
    { promtool check rules "$work/dashboard-rules.yml" || true; die "a dashboard query is not valid PromQL"; }
pass dashboards "${#dashboards[@]} dashboards parse; $(grep -c 'record:' "$work/dashboard-rules.yml") queries are valid PromQL"

if command -v yamllint >/dev/null 2>&1; then
    step "yamllint monitoring/"
    yamllint -s -c .yamllint monitoring/
    pass yamllint "monitoring/**/*.y*ml"
else
    skipped yamllint "yamllint not installed"
fi

echo
echo "check_monitoring: all checks passed"
printf '%s\n' "${summary[@]}"
