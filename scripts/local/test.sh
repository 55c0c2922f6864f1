#!/usr/bin/env bash
# The whole test suite: unit tests, then integration tests against the real brokers.
#
#   scripts/local/test.sh [unit|integration|secure|tsan|all]     default: all
#
# Installs what is missing, checks formatting and shell scripts, builds the debug preset (AddressSanitizer + UBSan),
# starts Kafka and RabbitMQ if they are not running, declares the topology, and
# runs ctest by label; `all` and `integration` then run the benchmark smoke run and the offline
# deployment checks (scripts/deploy/validate.sh). Leaves the brokers running (./pix down stops them).
# `integration` and `all` also need the trace backend (scripts/local/jaeger.sh): its first build
# on a machine runs in the background while the C++ builds; a Jaeger the tests start, they stop.
# `all` and `secure` also start a secure broker pair of the tests' own (Kafka SASL_SSL with ACLs,
# RabbitMQ AMQPS with per-user permissions; state in $PIX_STATE/secure-test, ports 29392/29393,
# 26671/26681/26691, so a running ./pix up --secure is left alone), run the `secure` label
# against it, and stop it again. `tsan` (not yet part of `all`: its first full run is still to be
# made and timed) builds the tsan preset (ThreadSanitizer) and runs the unit tests and the
# gateway's and saga's integration tests (services built with TSan too) under it; a race report
# fails the process that sees it.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

root="$(pix_root)"
here="$root/scripts/local"
what="${1:-all}"
case "$what" in
    unit|integration|secure|tsan|all) ;;
    *) die "unknown test set '$what' (unit, integration, secure, tsan or all)" ;;
esac

t0="$(now_us)"
# The trace backend's first build on this machine (~17 min cold) overlaps the rest of the setup.
jaeger_build_pid=""
if [[ "$what" == integration || "$what" == all ]] && ! "$here/jaeger.sh" path >/dev/null 2>&1; then
    mkdir -p "$PIX_LOGS"
    step "building the trace backend in the background (log: $PIX_LOGS/jaeger-build-bg.log)"
    "$here/jaeger.sh" build >"$PIX_LOGS/jaeger-build-bg.log" 2>&1 &
    jaeger_build_pid=$!
fi
# A ./pix up running beside the tests is the user's: it must be running (and ready) afterwards too.
user_services=0
"$here/services.sh" status >/dev/null 2>&1 && user_services=1
"$here/deps.sh"
"$here/lint.sh"
"$here/build.sh" debug
cd "$root"

# Sanitizer reports fail the test that triggers them.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# The secure pair of the tests: its own state and ports, stopped however the tests end.
secure_state="$PIX_STATE/secure-test"
secure_env=(PIX_PROFILE=secure PIX_STATE="$secure_state" KAFKA_PORT=29392 KAFKA_CONTROLLER_PORT=29393
    RABBITMQ_TLS_PORT=26671 RABBITMQ_MGMT_PORT=26681 RABBITMQ_PROM_PORT=26691 PIX_RABBITMQ_NODENAME=pix-secure-test@localhost)
secure_up=0
stop_secure() {
    ((secure_up)) || return 0
    secure_up=0
    step "stopping the secure test brokers"
    env "${secure_env[@]}" "$here/brokers.sh" down | sed 's/^/    /'
}
jaeger_ours=0
stop_jaeger() {
    ((jaeger_ours)) || return 0
    jaeger_ours=0
    "$here/jaeger.sh" stop | sed 's/^/    /'
}
trap 'stop_secure; stop_jaeger' EXIT

# A Jaeger on 127.0.0.1 for the tracing tests: the one running, or one of the tests' own.
start_jaeger() {
    if [[ -n "$jaeger_build_pid" ]]; then
        step "waiting for the trace backend's build (tail -f $PIX_LOGS/jaeger-build-bg.log)"
        wait "$jaeger_build_pid" || die "the trace backend did not build: see $PIX_LOGS/jaeger-build-bg.log"
        jaeger_build_pid=""
    fi
    "$here/jaeger.sh" status >/dev/null 2>&1 || jaeger_ours=1
    "$here/jaeger.sh" start | sed 's/^/    /'
    export PIX_OTLP_ENDPOINT="http://127.0.0.1:4318" PIX_JAEGER_URL="http://127.0.0.1:16686"
}

run_secure_tests() {
    step "secure profile: Kafka SASL_SSL + ACLs and RabbitMQ AMQPS + permissions, of the tests' own"
    secure_up=1
    env "${secure_env[@]}" PIX_SKIP_DEPS=1 "$here/brokers.sh" up | sed 's/^/    /'
    step "declaring the topology and every component's ACLs, as pix-admin"
    (
        set -a
        # shellcheck source=/dev/null # written by credentials.sh
        . "$secure_state/credentials/env/pix-admin.env"
        set +a
        "$root/build/debug/src/pix-admin" topology --kafka-acls
    ) | sed 's/^/    /'
    step "security tests against the secure brokers (ctest -L secure)"
    PIX_SECURE_STATE="$secure_state" ctest --preset secure
    stop_secure
}

# The same tests under ThreadSanitizer: the unit tests, then the gateway's and the saga's
# integration tests against the running brokers (their pix-api and stages are TSan builds too).
run_tsan_tests() {
    "$here/build.sh" tsan
    export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp}"
    step "unit tests under ThreadSanitizer (ctest --preset unit-tsan)"
    ctest --preset unit-tsan -j2
    PIX_SKIP_DEPS=1 "$here/brokers.sh" up
    "$root/build/tsan/src/pix-admin" topology | sed 's/^/    /'
    step "the gateway's and the saga's integration tests under ThreadSanitizer (ctest --preset integration-tsan)"
    PIX_KAFKA_BOOTSTRAP="${PIX_KAFKA_BOOTSTRAP:-127.0.0.1:9092}" \
        PIX_RABBIT_URL="${PIX_RABBIT_URL:-amqp://guest:guest@127.0.0.1:5672/}" \
        PIX_TEST_BROKER_CONTROL="${PIX_TEST_BROKER_CONTROL:-1}" ctest --preset integration-tsan
    unset TSAN_OPTIONS
}

if [[ "$what" == tsan ]]; then
    run_tsan_tests
fi
if [[ "$what" == unit || "$what" == all ]]; then
    step "unit tests (ctest -L unit)"
    ctest --preset unit -j2
fi
if [[ "$what" == secure ]]; then
    run_secure_tests
fi
if [[ "$what" == integration || "$what" == all ]]; then
    PIX_SKIP_DEPS=1 "$here/brokers.sh" up
    start_jaeger
    step "declaring the topology"
    "$root/build/debug/src/pix-admin" topology | sed 's/^/    /'
    export PIX_KAFKA_BOOTSTRAP="${PIX_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
    export PIX_RABBIT_URL="${PIX_RABBIT_URL:-amqp://guest:guest@127.0.0.1:5672/}"
    # These brokers are ours: tests may stop and restart them to check recovery.
    export PIX_TEST_BROKER_CONTROL="${PIX_TEST_BROKER_CONTROL:-1}"
    step "integration tests against Kafka $PIX_KAFKA_BOOTSTRAP, RabbitMQ and Jaeger (ctest -L integration)"
    ctest --preset integration
    stop_jaeger
    [[ "$what" == all ]] && run_secure_tests
    step "bench/run.py's own logic (bench/run_test.py)"
    PYTHONDONTWRITEBYTECODE=1 python3 "$root/bench/run_test.py" 2>&1 | sed 's/^/    /'
    step "benchmark smoke run (a few seconds per target at a tiny rate, so bench/ cannot rot)"
    # --leave-services: the smoke run measures nothing worth a quiet CPU, and the services of a
    # ./pix up running beside the tests are the user's (the smoke's own servers bind 5200 and up).
    "$root/bench/run.py" --smoke --leave-services --out "$PIX_STATE/bench-smoke"
    # After the smoke run: it builds the release preset, which the compose check reads.
    step "deployment checks (Dockerfiles, compose, k8s, monitoring, workflows; a real Prometheus scrape)"
    "$root/scripts/deploy/validate.sh"
fi
if ((user_services)); then
    step "checking that the services of ./pix up still answer /readyz"
    for _ in $(seq 60); do
        "$here/services.sh" status >/dev/null 2>&1 && break
        sleep 1
    done
    "$here/services.sh" status | sed 's/^/    /' || die "the tests left the services of ./pix up not ready"
fi
ok "all tests passed in $(elapsed_since "$t0")s"
