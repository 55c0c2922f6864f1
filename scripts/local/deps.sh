#!/usr/bin/env bash
# Installs the Debian packages needed to build pix-pubsub and run its local
# brokers. Idempotent: when everything is present it only runs one dpkg-query
# and exits (well under a second).
#
#   scripts/local/deps.sh           install what is missing
#   scripts/local/deps.sh --check   only report; exit 1 if something is missing
#
# Add packages to PIX_APT_PACKAGES below (one list for the whole project).
set -euo pipefail

PIX_APT_PACKAGES=(
    # build toolchain
    build-essential cmake ninja-build pkg-config g++
    # C++ libraries
    libgtest-dev libgmock-dev librdkafka-dev librabbitmq-dev libboost1.81-dev
    libspdlog-dev libcli11-dev libsqlite3-dev libssl-dev
    # local brokers and their tools (scripts/local/kafka.sh, rabbitmq.sh)
    rabbitmq-server kcat maven openjdk-17-jre-headless curl
    # secure profile (PIX_PROFILE=secure): certificates, AMQPS smoke checks (secure_smoke.sh)
    openssl amqp-tools jq
    # scripting / tooling
    python3 python3-venv procps
    # deployment checks (scripts/deploy): promtool, amtool, real Prometheus, compose, node tools
    prometheus prometheus-alertmanager yamllint docker-compose
    # lint and tests of the tooling (the test command checks formatting, clang-tidy, shell scripts and the
    # Python under scripts/ and bench/; pytest runs scripts/deploy's tests)
    clang-format clang-tidy shellcheck python3-flake8 python3-pytest
)

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

check_only=0
case "${1:-}" in
    --check) check_only=1 ;;
    "") ;;
    -h | --help)
        pix_usage "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) die "usage: $0 [--check]" ;;
esac

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian/Ubuntu only"

start="$(now_us)"
step "checking ${#PIX_APT_PACKAGES[@]} Debian packages"

# One dpkg-query for all packages; unknown packages are simply absent from the
# output (dpkg-query complains on stderr and exits 1, which we ignore).
declare -A installed=()
while read -r name status; do
    [[ -n "$name" ]] || continue
    if [[ "$status" == "install ok installed" ]]; then
        installed["${name%%:*}"]=1
    fi
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${PIX_APT_PACKAGES[@]}" 2>/dev/null || true)

missing=()
for p in "${PIX_APT_PACKAGES[@]}"; do
    [[ -n "${installed[$p]:-}" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    ok "all ${#PIX_APT_PACKAGES[@]} packages already installed ($(elapsed_since "$start")s)"
    exit 0
fi

if ((check_only)); then
    warn "missing packages: ${missing[*]}"
    exit 1
fi

step "installing ${#missing[@]} missing package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300)

step "apt-get update"
as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update \
    || die "apt-get update failed"
step "apt-get install -y --no-install-recommends ${missing[*]}"
as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" \
    || die "apt-get install failed for: ${missing[*]}"

# The rabbitmq-server package may try to start its own service; on machines
# without an init system it doesn't, and scripts/local/rabbitmq.sh runs a
# project-local node instead (it does not touch a packaged one that runs).

still=()
for p in "${missing[@]}"; do
    s="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
    [[ "$s" == "install ok installed" ]] || still+=("$p")
done
if [[ ${#still[@]} -gt 0 ]]; then
    die "still not installed: ${still[*]}"
fi
ok "installed ${missing[*]} ($(elapsed_since "$start")s)"
