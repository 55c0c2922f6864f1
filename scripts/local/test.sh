#!/usr/bin/env bash
# The whole test suite: unit tests, then integration tests against the real brokers.
#
#   scripts/local/test.sh [unit|integration|all]     default: all
#
# Installs what is missing, checks formatting and shell scripts, builds the debug preset (AddressSanitizer + UBSan),
# starts Kafka and RabbitMQ if they are not running, declares the topology, and
# runs ctest by label; `all` and `integration` then run the benchmark smoke run and the offline
# deployment checks (scripts/deploy/validate.sh). Leaves the brokers running (./pix down stops them).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

root="$(pix_root)"
here="$root/scripts/local"
what="${1:-all}"
case "$what" in
    unit|integration|all) ;;
    *) die "unknown test set '$what' (unit, integration or all)" ;;
esac

t0="$(now_us)"
"$here/deps.sh"
"$here/lint.sh"
"$here/build.sh" debug
cd "$root"

# Sanitizer reports fail the test that triggers them.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

if [[ "$what" != integration ]]; then
    step "unit tests (ctest -L unit)"
    ctest --preset unit -j2
fi
if [[ "$what" != unit ]]; then
    PIX_SKIP_DEPS=1 "$here/brokers.sh" up
    step "declaring the topology"
    "$root/build/debug/src/pix-admin" topology | sed 's/^/    /'
    export PIX_KAFKA_BOOTSTRAP="${PIX_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
    export PIX_RABBIT_URL="${PIX_RABBIT_URL:-amqp://guest:guest@127.0.0.1:5672/}"
    # These brokers are ours: tests may stop and restart them to check recovery.
    export PIX_TEST_BROKER_CONTROL="${PIX_TEST_BROKER_CONTROL:-1}"
    step "integration tests against Kafka $PIX_KAFKA_BOOTSTRAP and RabbitMQ (ctest -L integration)"
    ctest --preset integration
    step "benchmark smoke run (a few seconds per target at a tiny rate, so bench/ cannot rot)"
    "$root/bench/run.py" --smoke --out "$PIX_STATE/bench-smoke"
    # After the smoke run: it builds the release preset, which the compose check reads.
    step "deployment checks (Dockerfiles, compose, k8s, monitoring, workflows; a real Prometheus scrape)"
    "$root/scripts/deploy/validate.sh"
fi
ok "all tests passed in $(elapsed_since "$t0")s"
