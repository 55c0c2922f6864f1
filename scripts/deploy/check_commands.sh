#!/usr/bin/env bash
# Every pix-* program that docker-compose.yaml and k8s/ run is called the way the program
# understands: each `--flag` in its command line and each PIX_* variable in its environment must
# appear in that program's own `--help` (CLI11 lists every flag and its environment variable).
# A misspelt flag or variable would otherwise surface only when a container starts. The check is
# scripts/deploy/check_commands.py; this script finds the programs.
#
#   scripts/deploy/check_commands.sh
#
# Env: PIX_BIN (the programs; default build/release/src, else build/debug/src).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

pix_help_if_asked "$@"

root="$(pix_root)"
cd "$root"

bin="${PIX_BIN:-}"
if [[ -z "$bin" ]]; then
    for candidate in build/release/src build/debug/src; do
        [[ -x "$candidate/pix-api" ]] && { bin="$candidate"; break; }
    done
fi
[[ -n "$bin" && -x "$bin/pix-api" ]] || die "no built programs (build/release/src or build/debug/src): build first"

PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 scripts/deploy/check_commands.py "$bin"
