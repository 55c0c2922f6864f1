#!/usr/bin/env bash
# Runs the two publishing APIs (pix-api) in the background, as the seed's compose does.
#
#   scripts/local/apis.sh start     api-kafka on 127.0.0.1:5000, api-rabbitmq on 127.0.0.1:5001
#   scripts/local/apis.sh stop      SIGTERM (drains in-flight requests), then wait
#   scripts/local/apis.sh status    exit 0 if both answer /readyz, 3 otherwise
#
# Env: PIX_API_BIN (default build/release/src/pix-api), API_KAFKA_PORT (5000),
# API_RABBIT_PORT (5001), and every PIX_* variable pix-api reads (see README).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

root="$(pix_root)"
bin="${PIX_API_BIN:-$root/build/release/src/pix-api}"
run_dir="$PIX_STATE/run"
mkdir -p "$run_dir"

# name broker port
apis=("api-kafka kafka ${API_KAFKA_PORT:-5000}" "api-rabbitmq rabbit ${API_RABBIT_PORT:-5001}")

http_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true; }
is_ready() { [[ "$(http_code "http://127.0.0.1:$1/readyz")" == 200 ]]; }

start_one() {
    local name="$1" broker="$2" port="$3"
    local pidfile="$run_dir/$name.pid" log="$PIX_LOGS/$name.log" pid
    pid="$(pid_from_file "$pidfile")"
    if pid_alive "$pid" pix-api; then
        if is_ready "$port"; then
            ok "$name already running (pid $pid, http://127.0.0.1:$port)"
            return 0
        fi
        warn "$name (pid $pid) runs but is not ready; restarting it"
        stop_pid "$name" "$pid" 15
    fi
    if port_open 127.0.0.1 "$port"; then
        die "port $port is taken by another process; set API_$(tr '[:lower:]' '[:upper:]' <<<"$broker")_PORT"
    fi
    [[ -x "$bin" ]] || die "$bin is missing: build first (scripts/local/build.sh release)"
    step "starting $name on http://127.0.0.1:$port (log: $log)"
    # The inner shell writes its own pid, then becomes pix-api: the pid file is exact.
    # shellcheck disable=SC2016 # expanded by the inner shell, on purpose
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" \
        "$bin" --broker "$broker" --port "$port" >>"$log" 2>&1 </dev/null &
    wait_until "pid file of $name" 5 test -s "$pidfile"
    pid="$(pid_from_file "$pidfile")"
    wait_until "$name to be ready (GET /readyz)" 60 --log "$log" --pid "$pid" is_ready "$port"
}

stop_one() {
    local name="$1" pidfile="$run_dir/$1.pid" pid
    pid="$(pid_from_file "$pidfile")"
    if pid_alive "$pid" pix-api; then
        stop_pid "$name" "$pid" 20
        ok "$name stopped"
    else
        ok "$name is not running"
    fi
    rm -f "$pidfile"
}

status_one() {
    local name="$1" port="$3" pidfile="$run_dir/$1.pid" pid
    pid="$(pid_from_file "$pidfile")"
    if pid_alive "$pid" pix-api && is_ready "$port"; then
        printf '  %-13s up     pid %-7s http://127.0.0.1:%s\n' "$name" "$pid" "$port"
        return 0
    elif pid_alive "$pid" pix-api; then
        printf '  %-13s NOT READY pid %-7s http://127.0.0.1:%s (broker unreachable? see %s)\n' "$name" "$pid" "$port" \
            "$PIX_LOGS/$name.log"
        return 3
    fi
    printf '  %-13s down\n' "$name"
    return 3
}

case "${1:-}" in
    start)
        for a in "${apis[@]}"; do
            read -r n b p <<<"$a"
            start_one "$n" "$b" "$p"
        done
        ;;
    stop)
        for a in "${apis[@]}"; do
            read -r n _ _ <<<"$a"
            stop_one "$n"
        done
        ;;
    status)
        rc=0
        for a in "${apis[@]}"; do
            read -r n b p <<<"$a"
            status_one "$n" "$b" "$p" || rc=3
        done
        exit "$rc"
        ;;
    *) pix_usage "${BASH_SOURCE[0]}"; exit 2 ;;
esac
