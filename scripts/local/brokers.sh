#!/usr/bin/env bash
# Both local brokers at once.
#
#   scripts/local/brokers.sh up       deps.sh, then kafka.sh start and rabbitmq.sh start in parallel
#   scripts/local/brokers.sh down     stop both (in parallel)
#   scripts/local/brokers.sh status   status of both (and the profile); exit 0 if both up, 3 otherwise
#
# PIX_PROFILE=secure runs the secure pair instead (TLS, SCRAM / AMQP users, ACLs; state in
# <repo>/.local/secure; docs/security-brokers.md): `up` first makes the certificates
# (tls.sh ensure) and the passwords and env files (credentials.sh ensure), then starts both.
#
# Env: PIX_PROFILE (plain | secure; passed to both scripts), PIX_SKIP_DEPS=1 skips deps.sh;
# PIX_SERIAL=1 starts/stops one after the other instead of in parallel. Every variable of
# kafka.sh / rabbitmq.sh applies (secure: RABBITMQ_TLS_PORT, RABBITMQ_MGMT_PORT, ...).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"

usage() { pix_usage "${BASH_SOURCE[0]}"; }

# run_both VERB_KAFKA VERB_RABBITMQ: run both scripts, each line prefixed with
# the broker's name; parallel unless PIX_SERIAL=1. Fails if either fails.
run_both() {
    local kverb="$1" rverb="$2"
    if [[ "${PIX_SERIAL:-0}" == 1 ]]; then
        local rc=0
        "$HERE/kafka.sh" "$kverb" || rc=1
        "$HERE/rabbitmq.sh" "$rverb" || rc=1
        return "$rc"
    fi
    # Children write to a pipe: keep colors if we are on a tty ourselves.
    local color=0
    [[ -t 1 && -z "${NO_COLOR:-}" ]] && color=1
    (set -o pipefail; PIX_COLOR=$color "$HERE/kafka.sh" "$kverb" 2>&1 | sed -u 's/^/[kafka]    /') &
    local kpid=$!
    (set -o pipefail; PIX_COLOR=$color "$HERE/rabbitmq.sh" "$rverb" 2>&1 | sed -u 's/^/[rabbitmq] /') &
    local rpid=$!
    local krc=0 rrc=0
    wait "$kpid" || krc=$?
    wait "$rpid" || rrc=$?
    if [[ $krc -ne 0 ]]; then warn "kafka.sh $kverb failed (exit $krc)"; fi
    if [[ $rrc -ne 0 ]]; then warn "rabbitmq.sh $rverb failed (exit $rrc)"; fi
    [[ $krc -eq 0 && $rrc -eq 0 ]]
}

cmd_up() {
    local t0
    t0="$(now_us)"
    if [[ "${PIX_SKIP_DEPS:-0}" == 1 ]]; then
        step "skipping deps.sh (PIX_SKIP_DEPS=1)"
    else
        "$HERE/deps.sh"
    fi
    if [[ "$PIX_PROFILE" == secure ]]; then
        step "secure profile: certificates and credentials in $PIX_STATE"
        "$HERE/tls.sh" ensure
        "$HERE/credentials.sh" ensure
    fi
    step "starting kafka and rabbitmq (profile: $PIX_PROFILE, state: $PIX_STATE, logs: $PIX_LOGS)"
    if ! run_both start start; then
        die "brokers not up (see messages above; logs in $PIX_LOGS)"
    fi
    ok "brokers up in $(elapsed_since "$t0")s"
    cmd_status || true
}

cmd_down() {
    local t0
    t0="$(now_us)"
    step "stopping kafka and rabbitmq (profile: $PIX_PROFILE, state: $PIX_STATE)"
    run_both stop stop || die "could not stop every broker"
    ok "brokers down in $(elapsed_since "$t0")s"
}

cmd_status() {
    local rc=0
    echo "profile: $PIX_PROFILE (state $PIX_STATE)"
    "$HERE/kafka.sh" status || rc=3
    "$HERE/rabbitmq.sh" status || rc=3
    return "$rc"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) rc=0; cmd_status || rc=$?; exit "$rc" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
