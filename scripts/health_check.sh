#!/usr/bin/env bash
# Health of a running pix-pubsub: the APIs' liveness (GET /healthz) and readiness (GET /readyz:
# the broker answers), Prometheus (/-/ready), Grafana (/api/health) and Alertmanager (/-/ready).
# Only GETs on health endpoints: never a GET on the POST routes (/kafka, /rabbit).
#
#   scripts/health_check.sh [local|compose|minikube] [--timeout S] [--wait S]    default: local
#
#   local      ./pix up: api-kafka 127.0.0.1:5000, api-rabbitmq :5001 (required); the saga
#              stages :9101-9104, Prometheus :9090, Grafana :3000 and Alertmanager :9093 are
#              checked when they answer HTTP there, else reported "not running" (locally the
#              Kafka controller holds 9093)
#   compose    docker-compose.yaml's published ports: 5000, 5001, the stages' 9101-9104 (GET
#              /readyz), 9090, 3000, 9093 (all required)
#   minikube   the APIs through the ingress, https://pix.local/kafka/... and /rabbit/... (-k: the
#              certificate is self-signed; pix.local need not be in /etc/hosts, it is resolved
#              to `minikube ip`), and the NodePorts 30090 (Prometheus), 30300 (Grafana),
#              30093 (Alertmanager)
#
# Prints one line per check (HTTP code, ok / FAIL / not running) and exits 1 if any check
# fails. --timeout S: per request (5); --wait S: retry every 3 s until all pass or S seconds
# have passed (e.g. right after `docker compose up -d`).
# Env overrides (base URLs, no trailing slash): PIX_HC_API_KAFKA, PIX_HC_API_RABBITMQ,
# PIX_HC_PROMETHEUS, PIX_HC_GRAFANA, PIX_HC_ALERTMANAGER; PIX_HC_MINIKUBE_IP (skip `minikube ip`),
# PIX_HC_HOST (ingress host, pix.local).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

target=local
timeout_s=5
wait_s=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h | --help)
            pix_usage "${BASH_SOURCE[0]}"
            exit 0
            ;;
        --timeout)
            [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--timeout needs a number of seconds"
            timeout_s="$2"
            shift 2
            ;;
        --wait)
            [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--wait needs a number of seconds"
            wait_s="$2"
            shift 2
            ;;
        local | compose | minikube)
            target="$1"
            shift
            ;;
        *) die "unknown argument '$1' (local, compose, minikube, --timeout S, --wait S, --help)" ;;
    esac
done

command -v curl >/dev/null 2>&1 || die "curl is needed"

# Each check: name, URL, policy (required | optional: "not running" when nothing listens).
names=()
urls=()
policies=()
curl_opts=()

add() {
    names+=("$1")
    urls+=("$2")
    policies+=("$3")
}

host=127.0.0.1
mon_policy=required
case "$target" in
    local | compose)
        api_kafka="${PIX_HC_API_KAFKA:-http://$host:5000}"
        api_rabbit="${PIX_HC_API_RABBITMQ:-http://$host:5001}"
        prometheus="${PIX_HC_PROMETHEUS:-http://$host:9090}"
        grafana="${PIX_HC_GRAFANA:-http://$host:3000}"
        alertmanager="${PIX_HC_ALERTMANAGER:-http://$host:9093}"
        [[ "$target" == local ]] && mon_policy=optional
        ;;
    minikube)
        ingress_host="${PIX_HC_HOST:-pix.local}"
        ip="${PIX_HC_MINIKUBE_IP:-}"
        if [[ -z "$ip" ]]; then
            command -v minikube >/dev/null 2>&1 || die "minikube not found (or set PIX_HC_MINIKUBE_IP)"
            ip="$(minikube ip 2>/dev/null)" || die "minikube ip failed: is the cluster running? (minikube start)"
        fi
        [[ -n "$ip" ]] || die "minikube ip printed nothing"
        api_kafka="${PIX_HC_API_KAFKA:-https://$ingress_host/kafka}"
        api_rabbit="${PIX_HC_API_RABBITMQ:-https://$ingress_host/rabbit}"
        prometheus="${PIX_HC_PROMETHEUS:-http://$ip:30090}"
        grafana="${PIX_HC_GRAFANA:-http://$ip:30300}"
        alertmanager="${PIX_HC_ALERTMANAGER:-http://$ip:30093}"
        # Self-signed certificate; reach the ingress at the minikube IP even without /etc/hosts.
        curl_opts=(-k)
        if ! getent hosts "$ingress_host" >/dev/null 2>&1; then
            curl_opts+=(--resolve "$ingress_host:443:$ip" --resolve "$ingress_host:80:$ip")
        fi
        ;;
esac

add "api-kafka liveness" "$api_kafka/healthz" required
add "api-kafka readiness" "$api_kafka/readyz" required
add "api-rabbitmq liveness" "$api_rabbit/healthz" required
add "api-rabbitmq readiness" "$api_rabbit/readyz" required
if [[ "$target" != minikube ]]; then
    # The stages' admin ports (./pix up; docker-compose.yaml publishes them too). In Kubernetes
    # they are not exposed: their probes run in the cluster.
    stage_policy=required
    [[ "$target" == local ]] && stage_policy=optional
    port=9101
    for stage in antifraud settlement notifier auditor; do
        add "$stage readiness" "http://$host:$port/readyz" "$stage_policy"
        port=$((port + 1))
    done
fi
add "prometheus ready" "$prometheus/-/ready" "$mon_policy"
add "grafana health" "$grafana/api/health" "$mon_policy"
add "alertmanager ready" "$alertmanager/-/ready" "$mon_policy"

# host and port of a URL (for the "is anything listening" test of optional checks)
url_host_port() {
    local re='^(https?)://([^/:]+)(:([0-9]+))?'
    [[ "$1" =~ $re ]] || return 1
    local port="${BASH_REMATCH[4]}"
    if [[ -z "$port" ]]; then
        if [[ "${BASH_REMATCH[1]}" == https ]]; then port=443; else port=80; fi
    fi
    printf '%s %s\n' "${BASH_REMATCH[2]}" "$port"
}

# One pass over every check: fills rows[] and sets failures.
rows=()
failures=0
check_all() {
    rows=()
    failures=0
    local i name url policy h p code result
    for i in "${!names[@]}"; do
        name="${names[$i]}" url="${urls[$i]}" policy="${policies[$i]}"
        if [[ "$policy" == optional ]]; then
            read -r h p < <(url_host_port "$url") || die "bad URL: $url"
            if ! port_open "$h" "$p"; then
                rows+=("$(printf '%-24s %-48s %-4s %s' "$name" "$url" "-" "not running")")
                continue
            fi
        fi
        code="$(curl -s -o /dev/null -m "$timeout_s" -w '%{http_code}' ${curl_opts[@]+"${curl_opts[@]}"} "$url" 2>/dev/null)" || true
        code="${code:-000}"
        if [[ "$policy" == optional && "$code" == 000 ]]; then
            # Something else holds the port (locally, Kafka's controller listens on 9093).
            rows+=("$(printf '%-24s %-48s %-4s %s' "$name" "$url" "$code" "not running (the port answers, not HTTP)")")
            continue
        fi
        if [[ "$code" == 200 ]]; then
            result=ok
        else
            result=FAIL
            failures=$((failures + 1))
        fi
        rows+=("$(printf '%-24s %-48s %-4s %s' "$name" "$url" "$code" "$result")")
    done
}

check_all
if ((wait_s > 0 && failures > 0)); then
    deadline=$((SECONDS + wait_s))
    echo "waiting up to ${wait_s}s for every check to pass ($failures failing)"
    while ((failures > 0 && SECONDS < deadline)); do
        sleep 3
        check_all
    done
fi

echo "pix-pubsub health ($target)"
printf '%-24s %-48s %-4s %s\n' CHECK URL HTTP RESULT
printf '%s\n' "${rows[@]}"
if ((failures > 0)); then
    echo "$failures check(s) failed (HTTP 000: no answer; 503 on /readyz: the broker is not reachable)"
    exit 1
fi
echo "all checks passed"
