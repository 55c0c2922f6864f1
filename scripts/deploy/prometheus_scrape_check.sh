#!/usr/bin/env bash
# The one real monitoring check: a real Prometheus (Debian's /usr/bin/prometheus) scrapes real
# processes with the scrape jobs of monitoring/prometheus/prometheus.yml, and the check asserts through
# Prometheus' HTTP API that the targets are up, that our metrics and RabbitMQ's arrive, and that the
# alert rules load and evaluate.
#
#   scripts/deploy/prometheus_scrape_check.sh
#
# What it starts (each on 127.0.0.1 and a free port; all stopped on exit, whatever happens):
#   - pix-api --broker kafka and pix-api --broker rabbit as the secured deployment runs them: HTTPS
#     (certificates of a throwaway development CA from scripts/deploy/dev_secrets.sh, made in a
#     temporary directory) and --auth jwt (its development issuer; the requests carry its tokens),
#     publishing to an isolated copy of the topology
#     (Kafka topics under a prefix of its own, a RabbitMQ exchange and queues of its own, created with
#     `pix-admin topology` and deleted again at the end), so nothing it sends reaches the real saga;
#   - pix-antifraud with the same topic prefix and a consumer group of its own;
#   - prometheus, with a config derived from monitoring/prometheus/prometheus.yml
#     (scripts/deploy/scrape_check.py derive-config): the same job names,
#     metrics paths, schemes, honor_labels and target labels, the same rule file (alerts.yml); only the
#     targets are rewritten to 127.0.0.1 ports, tls_config.ca_file to the throwaway CA (the APIs'
#     jobs scrape https and verify the certificate), the scrape/evaluation interval is shortened to
#     $PIX_SCRAPE_INTERVAL, and the alerting section is left out (no Alertmanager here).
# It scrapes the local RabbitMQ's rabbitmq_prometheus (127.0.0.1:15692) as the `rabbitmq` job. The
# `kafka` job is left out: the local broker runs without the JMX exporter javaagent (the pix-kafka image
# has it; check_monitoring.sh checks its rules). So is `otel-collector` (no collector runs here), and the
# pix-saga targets of the three stages it does not start.
#
# Then it sends the seed's example requests to both APIs (PIX_SCRAPE_REQUESTS each), waits for the
# scrapes, and asserts (scripts/deploy/scrape_check.py assert):
#   - /api/v1/targets: every target is up, with the contract's job names and the stage label;
#   - /api/v1/query: pix_http_requests_total and pix_publish_total (acked) count the requests,
#     pix_stage_consumed_total shows the stage consumed them, rabbitmq_global_messages_received_total
#     and the per-queue rabbitmq_queue_messages_ready of its own queue arrive;
#   - /api/v1/rules: every rule group of alerts.yml is loaded and every rule evaluates without error;
#   - every dashboard query runs without error against the scraped data.
#
# Env: PIX_BIN (binaries; default build/debug/src if it exists, else build/release/src),
# PIX_KAFKA_BOOTSTRAP (127.0.0.1:9092), PIX_RABBIT_URL (amqp://guest:guest@127.0.0.1:5672/),
# PIX_RABBIT_PROMETHEUS (127.0.0.1:15692), PIX_PROMETHEUS (/usr/bin/prometheus),
# PIX_SCRAPE_INTERVAL (2s), PIX_SCRAPE_REQUESTS (5), PIX_SCRAPE_TIMEOUT_S (60, per wait).
# Logs of every process it started: $PIX_LOGS/scrape-check/.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

pix_help_if_asked "$@"

root="$(pix_root)"
cd "$root"

if [[ -n "${PIX_BIN:-}" ]]; then
    bin="$PIX_BIN"
elif [[ -x "$root/build/debug/src/pix-api" ]]; then
    bin="$root/build/debug/src"
else
    bin="$root/build/release/src"
fi
kafka_bootstrap="${PIX_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
rabbit_url="${PIX_RABBIT_URL:-amqp://guest:guest@127.0.0.1:5672/}"
rabbit_prometheus="${PIX_RABBIT_PROMETHEUS:-127.0.0.1:15692}"
prometheus_bin="${PIX_PROMETHEUS:-/usr/bin/prometheus}"
interval="${PIX_SCRAPE_INTERVAL:-2s}"
requests="${PIX_SCRAPE_REQUESTS:-5}"
timeout_s="${PIX_SCRAPE_TIMEOUT_S:-60}"

logs="$PIX_LOGS/scrape-check"
mkdir -p "$logs"
rm -f "$logs"/*.log
work="$(mktemp -d "${TMPDIR:-/tmp}/pix-scrape-check.XXXXXX")"

# An isolated copy of the topology: unique Kafka topic prefix, RabbitMQ exchange and queue prefix.
run_id="pixscrape$$-$(date +%s)"
topic_prefix="$run_id."
exchange="$run_id"
queue_prefix="$run_id."

# ---- cleanup: every process this script started, and the topology copy ---------------------------

pids=()
names=()
topology_created=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_pid "${names[$i]}" "${pids[$i]}" 20 >/dev/null 2>&1 ||
            warn "could not stop ${names[$i]} (pid ${pids[$i]})"
    done
    if ((topology_created)); then
        "$bin/pix-admin" topology --delete --kafka-bootstrap "$kafka_bootstrap" --rabbit-url "$rabbit_url" \
            --topic-prefix "$topic_prefix" --exchange "$exchange" --queue-prefix "$queue_prefix" \
            >"$logs/topology-delete.log" 2>&1 ||
            warn "could not delete the test topology (prefix $run_id): see $logs/topology-delete.log"
    fi
    rm -rf "$work"
    if ((rc != 0)); then
        warn "prometheus_scrape_check FAILED; logs of the processes it ran: $logs"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME LOG CMD...: runs CMD in the background and remembers it for cleanup.
start() {
    local name="$1" log="$2"
    shift 2
    "$@" >"$log" 2>&1 &
    pids+=("$!")
    names+=("$name")
    echo "    $name: pid $! ($*)"
}

free_port() { python3 scripts/deploy/checklib.py free-port; }
# The derived configuration and the assertions: scripts/deploy/scrape_check.py.
scrape_py() { PYTHONDONTWRITEBYTECODE=1 python3 scripts/deploy/scrape_check.py "$@"; }

http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" 2>/dev/null || true; }
answers_200() { [[ "$(http_code "$@")" == 200 ]]; }

# ---- preflight ----------------------------------------------------------------------------------

step "preflight"
for b in pix-api pix-antifraud pix-admin; do
    [[ -x "$bin/$b" ]] || die "$bin/$b not found (build first, or set PIX_BIN)"
done
[[ -x "$prometheus_bin" ]] || die "$prometheus_bin not found (Debian package prometheus; scripts/local/deps.sh)"
for tool in promtool curl python3 openssl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
python3 -c 'import yaml' 2>/dev/null || die "python3 has no yaml module (Debian: python3-yaml)"
port_open "${kafka_bootstrap%%:*}" "${kafka_bootstrap##*:}" ||
    die "Kafka does not answer on $kafka_bootstrap (scripts/local/brokers.sh start)"
rabbit_hostport="${rabbit_url#*://}"
rabbit_hostport="${rabbit_hostport#*@}"
rabbit_hostport="${rabbit_hostport%%/*}"
port_open "${rabbit_hostport%%:*}" "${rabbit_hostport##*:}" ||
    die "RabbitMQ does not answer on $rabbit_hostport (scripts/local/brokers.sh start)"
answers_200 "http://$rabbit_prometheus/metrics" ||
    die "rabbitmq_prometheus does not answer on http://$rabbit_prometheus/metrics (is the plugin enabled?)"
echo "    binaries: $bin"
echo "    Kafka $kafka_bootstrap, RabbitMQ $rabbit_hostport, rabbitmq_prometheus $rabbit_prometheus"
echo "    Prometheus: $("$prometheus_bin" --version 2>&1 | head -n 1)"

step "throwaway development secrets (scripts/deploy/dev_secrets.sh): CA, the APIs' certificates, token issuer, decision keys"
secrets="$work/dev-secrets"
python3 scripts/deploy/dev_secrets.py ensure --dir "$secrets" --access owner --quiet ||
    die "dev_secrets.sh could not make the throwaway secrets"
ca="$secrets/ca/ca.crt"
token() { python3 scripts/deploy/dev_secrets.py token --dir "$secrets" --subject scrape-check --ttl 15m "$@"; }
kafka_token="$(token --scope pix.payment.requested)"
rabbit_token="$(token --scope pix.notification.sent)"
edge=(--auth jwt --jwks "$secrets/jwt/jwks.json" --jwt-issuer "https://pix-pubsub.local/dev-issuer")
echo "    CA $ca; tokens of the development issuer for both APIs"

step "isolated topology: Kafka topics '${topic_prefix}pix.*', RabbitMQ exchange '$exchange'"
topology_created=1
"$bin/pix-admin" topology --kafka-bootstrap "$kafka_bootstrap" --rabbit-url "$rabbit_url" \
    --topic-prefix "$topic_prefix" --exchange "$exchange" --queue-prefix "$queue_prefix" \
    --partitions 1 >"$logs/topology.log" 2>&1 ||
    { tail -n 20 "$logs/topology.log" >&2; die "pix-admin topology failed"; }

# ---- the processes to scrape ------------------------------------------------------------------

step "starting the APIs and a saga stage"
port_api_kafka="$(free_port)"
port_api_rabbit="$(free_port)"
port_antifraud="$(free_port)"
common=(--log-format text --kafka-bootstrap "$kafka_bootstrap" --topic-prefix "$topic_prefix")
start api-kafka "$logs/api-kafka.log" "$bin/pix-api" --broker kafka --listen 127.0.0.1 \
    --port "$port_api_kafka" "${common[@]}" "${edge[@]}" \
    --tls-cert "$secrets/tls/api-kafka.crt" --tls-key "$secrets/tls/api-kafka.key"
start api-rabbitmq "$logs/api-rabbitmq.log" "$bin/pix-api" --broker rabbit --listen 127.0.0.1 \
    --port "$port_api_rabbit" --rabbit-url "$rabbit_url" --exchange "$exchange" --log-format text "${edge[@]}" \
    --tls-cert "$secrets/tls/api-rabbitmq.crt" --tls-key "$secrets/tls/api-rabbitmq.key"
start antifraud "$logs/antifraud.log" "$bin/pix-antifraud" --admin-listen 127.0.0.1 \
    --admin-port "$port_antifraud" --group "${run_id}.antifraud" \
    --decision-key "$secrets/decision-keys/antifraud.json" "${common[@]}"
wait_until "api-kafka /readyz (https)" "$timeout_s" --pid "${pids[0]}" --log "$logs/api-kafka.log" \
    answers_200 --cacert "$ca" "https://127.0.0.1:$port_api_kafka/readyz"
wait_until "api-rabbitmq /readyz (https)" "$timeout_s" --pid "${pids[1]}" --log "$logs/api-rabbitmq.log" \
    answers_200 --cacert "$ca" "https://127.0.0.1:$port_api_rabbit/readyz"
wait_until "antifraud /healthz" "$timeout_s" --pid "${pids[2]}" --log "$logs/antifraud.log" \
    answers_200 "http://127.0.0.1:$port_antifraud/healthz"

# ---- Prometheus with the derived config -------------------------------------------------------

step "prometheus config derived from monitoring/prometheus/prometheus.yml"
port_prometheus="$(free_port)"
cp monitoring/prometheus/alerts.yml "$work/alerts.yml"
# compose target -> the local process this check runs
scrape_py derive-config monitoring/prometheus/prometheus.yml "$work/prometheus.yml" "$interval" "$ca" \
    "localhost:9090=127.0.0.1:$port_prometheus" \
    "api-kafka:5000=127.0.0.1:$port_api_kafka" \
    "api-rabbitmq:5001=127.0.0.1:$port_api_rabbit" \
    "antifraud:9101=127.0.0.1:$port_antifraud" \
    "rabbitmq:15692=$rabbit_prometheus"
echo "    (kafka: the local broker has no JMX exporter javaagent; its rules are checked by check_monitoring.sh)"
promtool check config "$work/prometheus.yml" >"$logs/promtool.log" 2>&1 ||
    { cat "$logs/promtool.log" >&2; die "the derived prometheus.yml does not pass promtool check config"; }
prom="http://127.0.0.1:$port_prometheus"
start prometheus "$logs/prometheus.log" "$prometheus_bin" --config.file="$work/prometheus.yml" \
    --storage.tsdb.path="$work/data" --web.listen-address="127.0.0.1:$port_prometheus" \
    --storage.tsdb.retention.time=1h
wait_until "prometheus /-/ready" "$timeout_s" --pid "${pids[3]}" --log "$logs/prometheus.log" \
    answers_200 "$prom/-/ready"

# ---- traffic ----------------------------------------------------------------------------------

step "sending the seed's example requests ($requests to each API)"
kafka_body='{"topic": "pix.payment.requested", "value": {"transactionId": "12345", "amount": 100, "payer": "alice", "receiver": "bob"}}'
rabbit_body='{"topic": "pix.notification.sent", "value": {"transactionId": "12345", "status": "notified"}}'
for ((i = 1; i <= requests; i++)); do
    code="$(http_code --cacert "$ca" -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $kafka_token" \
        -d "$kafka_body" "https://127.0.0.1:$port_api_kafka/kafka")"
    [[ "$code" == 200 ]] || die "POST /kafka answered $code (see $logs/api-kafka.log)"
    code="$(http_code --cacert "$ca" -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $rabbit_token" \
        -d "$rabbit_body" "https://127.0.0.1:$port_api_rabbit/rabbit")"
    [[ "$code" == 200 ]] || die "POST /rabbit answered $code (see $logs/api-rabbitmq.log)"
done
echo "    $requests x POST /kafka -> 200, $requests x POST /rabbit -> 200"

# ---- assertions through the HTTP API ----------------------------------------------------------

python3 scripts/deploy/check_metric_names.py --root "$root" --promql-rules-out "$work/dashboard-rules.yml" \
    >/dev/null 2>"$work/names.err" || { cat "$work/names.err" >&2; die "check_metric_names.py failed"; }

assert() { scrape_py assert "$prom" "$1" "$requests" "${queue_prefix}pix.notification.sent" \
    "$work/dashboard-rules.yml" "$work/alerts.yml" "${@:2}"; }

failures=0
verify() {
    # verify PHASE DESCRIPTION: poll until PHASE's assertions hold (scrapes take a few intervals),
    # then print them; a phase still failing at the deadline is printed with its reasons.
    local phase="$1" desc="$2"
    step "$desc"
    if ! wait_until "$desc" "$timeout_s" --pid "${pids[3]}" assert "$phase"; then
        failures=$((failures + 1))
    fi
    assert "$phase" --report || true
}
verify targets "every scrape target is up (/api/v1/targets)"
verify metrics "our metrics and RabbitMQ's arrive (/api/v1/query)"
verify rules "alerts.yml loaded and every rule evaluates (/api/v1/rules)"
verify dashboards "every dashboard query runs (/api/v1/query)"

echo
if ((failures)); then
    die "prometheus_scrape_check: $failures of 4 checks failed (logs: $logs)"
fi
echo "prometheus_scrape_check: passed. A real Prometheus ($(basename "$prometheus_bin")) scraped the jobs"
echo "  api-kafka, api-rabbitmq, pix-saga (antifraud), rabbitmq and prometheus with monitoring/prometheus/prometheus.yml's"
echo "  settings; the kafka job was SKIPPED (no JMX exporter on the local broker) and otel-collector too (none runs)."
