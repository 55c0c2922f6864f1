#!/usr/bin/env bash
# Runs the services in the background: the two publishing APIs (as the seed's compose does)
# and the four saga stages.
#
#   scripts/local/services.sh start [NAME...]    all, or the named ones
#   scripts/local/services.sh stop [NAME...]     SIGTERM (each drains its work), then wait
#   scripts/local/services.sh status             exit 0 if all answer /readyz, 3 otherwise
#
# Names and ports (readiness is GET /readyz on the port):
#   api-kafka 5000, api-rabbitmq 5001, antifraud 9101, settlement 9102, notifier 9103, auditor 9104
# The ledger and the audit store live in $PIX_STATE/data. Env: PIX_BIN_DIR (default
# build/release/src), PIX_POPULATION (accounts pix-0001.. funded for the simulator, 1000), and
# every PIX_* variable the programs read (see README).
#
# PIX_PROFILE=secure: each service runs with its own credentials ($PIX_STATE/credentials/env/
# NAME.env, written by the secure brokers), and the APIs serve HTTPS with bearer tokens from the
# local development issuer ($PIX_STATE/issuer, made here with pix-token init) or client
# certificates of the local CA. PIX_RATE_LIMIT (default 2000/s per principal) applies to them.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

root="$(pix_root)"
bin_dir="${PIX_BIN_DIR:-$root/build/release/src}"
run_dir="$PIX_STATE/run"
data_dir="$PIX_STATE/data"
mkdir -p "$run_dir" "$data_dir"
secure=0
[[ "${PIX_PROFILE:-plain}" == secure ]] && secure=1
tls_dir="$PIX_STATE/tls"
issuer_dir="$PIX_STATE/issuer"
env_dir="$PIX_STATE/credentials/env"
keys_dir="$PIX_STATE/keys"
dev_issuer="https://pix-pubsub.local/dev-issuer"

all_names=(api-kafka api-rabbitmq antifraud settlement notifier auditor)

# port_of NAME / command_of NAME: how each service is reached and started.
port_of() {
    case "$1" in
        api-kafka) echo 5000 ;;
        api-rabbitmq) echo 5001 ;;
        antifraud) echo 9101 ;;
        settlement) echo 9102 ;;
        notifier) echo 9103 ;;
        auditor) echo 9104 ;;
        *) die "unknown service '$1' (${all_names[*]})" ;;
    esac
}

# The APIs' edge in the secure profile: HTTPS, tokens or client certificates, a rate limit.
api_security_flags() {
    ((secure)) || return 0
    echo "--tls-cert $tls_dir/server.crt --tls-key $tls_dir/server.key --tls-client-ca $tls_dir/ca.crt" \
        "--auth jwt --jwks $issuer_dir/jwks.json --jwt-issuer $dev_issuer --rate-limit ${PIX_RATE_LIMIT:-2000}"
}

command_of() {
    case "$1" in
        api-kafka) echo "$bin_dir/pix-api --broker kafka --port 5000 $(api_security_flags)" ;;
        api-rabbitmq) echo "$bin_dir/pix-api --broker rabbit --port 5001 $(api_security_flags)" ;;
        antifraud) echo "$bin_dir/pix-antifraud --instance-id antifraud-local --decision-key $keys_dir/antifraud.json" ;;
        settlement) echo "$bin_dir/pix-settlement --instance-id settlement-local --db $data_dir/ledger.db" \
            "--population ${PIX_POPULATION:-1000} --decision-key $keys_dir/settlement.json" \
            "--trust-key $keys_dir/antifraud.json" ;;
        notifier) echo "$bin_dir/pix-notifier --instance-id notifier-local --trust-key $keys_dir/settlement.json" ;;
        auditor) echo "$bin_dir/pix-auditor --instance-id auditor-local --db $data_dir/audit.db" ;;
    esac
}

http_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$@" 2>/dev/null || true; }
# The APIs answer HTTPS in the secure profile; the stages' admin endpoints stay plain loopback HTTP.
url_of() {
    if ((secure)) && [[ "$1" == api-* ]]; then
        echo "https://127.0.0.1:$(port_of "$1")"
    else
        echo "http://127.0.0.1:$(port_of "$1")"
    fi
}
is_ready() {
    if ((secure)) && [[ "$1" == api-* ]]; then
        [[ "$(http_code --cacert "$tls_dir/ca.crt" "$(url_of "$1")/readyz")" == 200 ]]
    else
        [[ "$(http_code "$(url_of "$1")/readyz")" == 200 ]]
    fi
}

# The secure profile needs the brokers' credentials and a token issuer before anything starts.
secure_prerequisites() {
    ((secure)) || return 0
    [[ -f "$tls_dir/server.crt" && -d "$env_dir" ]] ||
        die "no credentials in $PIX_STATE: start the secure brokers first (PIX_PROFILE=secure scripts/local/brokers.sh up)"
    [[ -x "$bin_dir/pix-token" ]] || die "$bin_dir/pix-token is missing: build first (scripts/local/build.sh release)"
    "$bin_dir/pix-token" init --dir "$issuer_dir" | sed 's/^/    /'
}

# The keys anti-fraud and settlement sign their decisions with (both profiles: settlement acts
# only on anti-fraud's signed decisions, the notifier only on settlement's). Made once, 0600.
decision_keys() {
    local stage
    mkdir -p "$keys_dir"
    chmod 700 "$keys_dir"
    for stage in antifraud settlement; do
        [[ -f "$keys_dir/$stage.json" ]] && continue
        [[ -x "$bin_dir/pix-admin" ]] || die "$bin_dir/pix-admin is missing: build first (scripts/local/build.sh release)"
        "$bin_dir/pix-admin" decision-key --stage "$stage" --out "$keys_dir/$stage.json" | sed 's/^/    /'
    done
}

start_one() {
    local name="$1" port
    port="$(port_of "$name")"
    local pidfile="$run_dir/$name.pid" log="$PIX_LOGS/$name.log" pid cmd
    pid="$(pid_from_file "$pidfile")"
    if pid_alive "$pid" pix-; then
        if is_ready "$name"; then
            ok "$name already running (pid $pid, $(url_of "$name"))"
            return 0
        fi
        warn "$name (pid $pid) runs but is not ready; restarting it"
        stop_pid "$name" "$pid" 15
    fi
    if port_open 127.0.0.1 "$port"; then
        die "port $port ($name) is taken by another process"
    fi
    read -r -a cmd <<<"$(command_of "$name")"
    [[ -x "${cmd[0]}" ]] || die "${cmd[0]} is missing: build first (scripts/local/build.sh release)"
    # Each service's own principal (Kafka SCRAM user, RabbitMQ user, CA): /dev/null when plain.
    local env_file=/dev/null
    if ((secure)); then
        env_file="$env_dir/$name.env"
        [[ -f "$env_file" ]] || die "$env_file is missing (the secure brokers write it)"
    fi
    step "starting $name on $(url_of "$name") (log: $log)"
    # The inner shell loads the credentials, writes its own pid, then becomes the program: the
    # pid file is exact and the secrets never appear on a command line.
    # shellcheck disable=SC2016 # expanded by the inner shell, on purpose
    setsid bash -c 'set -a; . "$1"; set +a; echo $$ >"$2"; shift 2; exec "$@"' _ "$env_file" "$pidfile" "${cmd[@]}" \
        >>"$log" 2>&1 </dev/null &
    wait_until "pid file of $name" 5 test -s "$pidfile"
    pid="$(pid_from_file "$pidfile")"
    wait_until "$name to be ready (GET /readyz)" 60 --log "$log" --pid "$pid" is_ready "$name"
}

stop_one() {
    local name="$1" pidfile="$run_dir/$1.pid" pid
    pid="$(pid_from_file "$pidfile")"
    if pid_alive "$pid" pix-; then
        stop_pid "$name" "$pid" 20
        ok "$name stopped"
    else
        ok "$name is not running"
    fi
    rm -f "$pidfile"
}

status_one() {
    local name="$1" pidfile="$run_dir/$1.pid" pid
    pid="$(pid_from_file "$pidfile")"
    if pid_alive "$pid" pix- && is_ready "$name"; then
        printf '  %-13s up        pid %-7s %s\n' "$name" "$pid" "$(url_of "$name")"
        return 0
    elif pid_alive "$pid" pix-; then
        printf '  %-13s NOT READY pid %-7s %s (see %s)\n' "$name" "$pid" "$(url_of "$name")" "$PIX_LOGS/$name.log"
        return 3
    fi
    printf '  %-13s down\n' "$name"
    return 3
}

verb="${1:-}"
shift || true
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${all_names[@]}")
case "$verb" in
    start)
        secure_prerequisites
        decision_keys
        for n in "${names[@]}"; do start_one "$n"; done
        ;;
    # In pipeline order: the APIs first, so each stage can finish what is already in flight.
    stop) for n in "${names[@]}"; do stop_one "$n"; done ;;
    status)
        rc=0
        for n in "${names[@]}"; do status_one "$n" || rc=3; done
        exit "$rc"
        ;;
    *) pix_usage "${BASH_SOURCE[0]}"; exit 2 ;;
esac
