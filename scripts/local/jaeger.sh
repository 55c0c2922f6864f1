#!/usr/bin/env bash
# A real trace backend on 127.0.0.1: Jaeger (all-in-one, in-memory store), which takes OTLP and
# answers queries. No Jaeger package or image is reachable here, so it is built from the Go module
# proxy once per machine into a cache keyed by version, and reused by every clone (CI clones afresh).
#
#   scripts/local/jaeger.sh build     build the binary into the machine-wide cache (once; ~17 min cold)
#   scripts/local/jaeger.sh start     build if needed, start on 127.0.0.1, wait until it answers
#   scripts/local/jaeger.sh stop      SIGTERM, wait, SIGKILL after a deadline
#   scripts/local/jaeger.sh status    "up"/"down"; exit 0 if up, 3 if down
#   scripts/local/jaeger.sh path      print the cached binary's path (exit 1 if not built)
#
# Ports (loopback only): OTLP 4317 (gRPC) and 4318 (HTTP, POST /v1/traces), query 16686 (HTTP API:
# /api/services, /api/traces/<id>) and 16685 (gRPC), health 13133, and Jaeger's other receivers.
# Env: PIX_JAEGER_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/pix-pubsub), PIX_STATE, PIX_LOGS.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

usage() { pix_usage "${BASH_SOURCE[0]}"; }

# v1.75.0 is the approved release: `go install` refuses it (its go.mod has a replace directive),
# so a wrapper module requires it as a tool and builds that.
readonly JAEGER_VERSION="v1.75.0"
readonly JAEGER_PACKAGE="github.com/jaegertracing/jaeger/cmd/jaeger"
readonly JAEGER_PACKAGES_APPROX=2300 # what a cold build compiles: for the progress line
CACHE_ROOT="${PIX_JAEGER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pix-pubsub}"
readonly CACHE_DIR="$CACHE_ROOT/jaeger-$JAEGER_VERSION"
readonly BIN="$CACHE_DIR/jaeger"
readonly PID_FILE="$PIX_STATE/jaeger.pid"
readonly LOG="$PIX_LOGS/jaeger.log"
readonly QUERY_URL="http://127.0.0.1:16686"
readonly HEALTH_URL="http://127.0.0.1:13133/status"

cmd_build() {
    if [[ -x "$BIN" ]]; then
        ok "jaeger $JAEGER_VERSION already built ($BIN)"
        return 0
    fi
    command -v go >/dev/null 2>&1 || die "go not found (Jaeger is built from the Go module proxy)"
    local t0 work build_log rc
    t0="$(now_us)"
    mkdir -p "$CACHE_DIR"
    # One builder at a time per machine: a second clone waits for the first one's binary.
    exec 9>"$CACHE_DIR/.build.lock"
    if ! flock -n 9; then
        step "another build of jaeger $JAEGER_VERSION is running; waiting for it"
        flock 9
        if [[ -x "$BIN" ]]; then
            ok "jaeger $JAEGER_VERSION built by the other build ($BIN)"
            return 0
        fi
    fi
    work="$(mktemp -d "$CACHE_DIR/build.XXXXXX")"
    build_log="$PIX_LOGS/jaeger-build.log"
    step "building jaeger $JAEGER_VERSION from the Go module proxy into $CACHE_DIR (once per machine;"
    echo "    about 17 minutes cold on 2 cores, ~3 GB of Go caches; log: $build_log)"
    (
        cd "$work"
        go mod init pix-pubsub/jaeger-wrapper
        go get -tool "$JAEGER_PACKAGE@$JAEGER_VERSION"
        CGO_ENABLED=0 go build -v -o "$work/jaeger" "$JAEGER_PACKAGE"
    ) >"$build_log" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 30
        local done_n
        # `go build -v` prints each package it compiles; `go get` prints "go: ..." lines.
        done_n="$(grep -vc '^go: ' "$build_log" 2>/dev/null || true)"
        echo "    ... $(elapsed_since "$t0")s: ~${done_n:-0} of ~$JAEGER_PACKAGES_APPROX packages"
    done
    rc=0
    wait "$pid" || rc=$?
    if ((rc != 0)) || [[ ! -x "$work/jaeger" ]]; then
        tail -n 20 "$build_log" | sed 's/^/    | /' >&2
        rm -rf "$work"
        die "jaeger build failed (exit $rc; full log: $build_log)"
    fi
    mv "$work/jaeger" "$BIN" # atomic within the cache directory: a reader sees all or nothing
    rm -rf "$work"
    ok "jaeger $JAEGER_VERSION built in $(elapsed_since "$t0")s ($BIN)"
}

jaeger_answers() { curl -fsS -m 2 -o /dev/null "$HEALTH_URL" && curl -fsS -m 2 -o /dev/null "$QUERY_URL/api/services"; }

cmd_start() {
    local pid
    pid="$(pid_from_file "$PID_FILE")"
    if [[ -n "$pid" ]] && pid_alive "$pid" && jaeger_answers; then
        ok "jaeger already running (pid $pid, OTLP http://127.0.0.1:4318, query $QUERY_URL)"
        return 0
    fi
    if port_open 127.0.0.1 4318 || port_open 127.0.0.1 16686; then
        die "127.0.0.1:4318 or :16686 is already in use by a process this script did not start"
    fi
    cmd_build
    step "starting jaeger $JAEGER_VERSION on 127.0.0.1 (log: $LOG)"
    echo "===== $(date '+%F %T') jaeger.sh start =====" >>"$LOG"
    # JAEGER_LISTEN_HOST keeps the receivers on loopback; the query extension needs its own flags.
    JAEGER_LISTEN_HOST=127.0.0.1 setsid "$BIN" \
        --set=extensions.jaeger_query.http.endpoint=127.0.0.1:16686 \
        --set=extensions.jaeger_query.grpc.endpoint=127.0.0.1:16685 \
        </dev/null >>"$LOG" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    if ! wait_until "jaeger (health + query API)" 60 --log "$LOG" --pid "$pid" jaeger_answers; then
        tail -n 20 "$LOG" | sed 's/^/    | /' >&2
        die "jaeger did not become ready"
    fi
    ok "jaeger up (pid $pid): OTLP http://127.0.0.1:4318/v1/traces, query $QUERY_URL/api/traces/<trace id>"
}

cmd_stop() {
    local pid
    pid="$(pid_from_file "$PID_FILE")"
    if [[ -z "$pid" ]] || ! pid_alive "$pid"; then
        rm -f "$PID_FILE"
        ok "jaeger not running"
        return 0
    fi
    stop_pid jaeger "$pid" 20
    rm -f "$PID_FILE"
    ok "jaeger stopped"
}

cmd_status() {
    local pid
    pid="$(pid_from_file "$PID_FILE")"
    if [[ -n "$pid" ]] && pid_alive "$pid" && jaeger_answers; then
        echo "up (pid $pid, query $QUERY_URL)"
        return 0
    fi
    echo "down"
    return 3
}

case "${1:-}" in
    build) cmd_build ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    path)
        [[ -x "$BIN" ]] || exit 1
        echo "$BIN"
        ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
