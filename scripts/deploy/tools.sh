#!/usr/bin/env bash
# Installs the offline validators the deployment checks use, into .local/tools, idempotently
# (a second run only compares version stamps). Debian packages (promtool, amtool, yamllint,
# docker-compose) come from scripts/local/deps.sh; this adds what Debian does not have:
#
#   .local/tools/venv   kubernetes-validate (Kubernetes JSON schemas, offline)
#   .local/tools/node   @action-validator/cli (GitHub Actions workflows), kubernetes-models and
#                       @kubernetes-models/keda (KEDA's CRDs, validated offline), js-yaml
#
#   scripts/deploy/tools.sh          install what is missing, print the tool directory
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

root="$(pix_root)"
tools="${PIX_TOOLS:-$root/.local/tools}"
mkdir -p "$tools"

PY_PACKAGES=(kubernetes-validate==1.37.0)
NPM_PACKAGES=(@action-validator/cli@0.6.0 @action-validator/core@0.6.0 kubernetes-models@5.1.0
    @kubernetes-models/keda@2.0.0 js-yaml@4.1.0)

# A stamp per tool set: reinstall only when the pinned list changes.
stamp_ok() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

py_want="${PY_PACKAGES[*]}"
if ! stamp_ok "$tools/venv/.pix-stamp" "$py_want"; then
    step "python tools: ${PY_PACKAGES[*]}"
    [[ -x "$tools/venv/bin/python" ]] || /usr/bin/python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" \
        || die "pip install failed: ${PY_PACKAGES[*]}"
    printf '%s' "$py_want" >"$tools/venv/.pix-stamp"
fi

npm_want="${NPM_PACKAGES[*]}"
if ! stamp_ok "$tools/node/.pix-stamp" "$npm_want"; then
    if ! command -v npm >/dev/null 2>&1; then
        # Only when no Node.js is there at all: Debian's npm conflicts with other Node builds.
        step "apt-get install nodejs npm"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update \
            || die "apt-get update failed"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
            --no-install-recommends nodejs npm || die "could not install nodejs and npm"
    fi
    step "node tools: ${NPM_PACKAGES[*]}"
    mkdir -p "$tools/node"
    npm install --silent --no-audit --no-fund --prefix "$tools/node" "${NPM_PACKAGES[@]}" \
        || die "npm install failed: ${NPM_PACKAGES[*]}"
    printf '%s' "$npm_want" >"$tools/node/.pix-stamp"
fi

echo "$tools"
