#!/usr/bin/env bash
# Checks the GitHub Actions workflows offline, strictly (any finding fails):
#
#   1. action-validator: each workflow against the GitHub workflow schema (a key typo such
#      as `runs-onn`, a wrong type or an unknown trigger fails);
#   2. yamllint -s with the project's .yamllint;
#   3. policy (check_workflows.py): every `uses:` is pinned (owner/repo@vN[.N.N] or a 40-hex commit sha;
#      docker:// images with a tag or digest; local ./actions allowed), at or above the oldest
#      major that still runs on today's runners; no Docker Hub secrets (secrets.DOCKER_USERNAME
#      / DOCKER_PASSWORD: images go to GHCR with GITHUB_TOKEN); a top-level `permissions:`;
#      a `timeout-minutes` on every job;
#   4. shellcheck on every `run:` script (GitHub expressions ${{ ... }} replaced by a word).
#
#   scripts/deploy/check_workflows.sh [FILE...]    default: .github/workflows/*.yml *.yaml
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

pix_help_if_asked "$@"

root="$(pix_root)"
cd "$root"

# tools.sh is idempotent (stamps); its last line is the tool directory.
tools_out="$("$root/scripts/deploy/tools.sh")" || die "scripts/deploy/tools.sh failed"
tools="${tools_out##*$'\n'}"
[[ "$tools_out" == *$'\n'* ]] && printf '%s\n' "${tools_out%$'\n'*}"
validator="$tools/node/node_modules/.bin/action-validator"
python="$tools/venv/bin/python"
[[ -x "$validator" ]] || die "action-validator missing: $validator (scripts/deploy/tools.sh)"
[[ -x "$python" ]] || die "python venv missing: $python (scripts/deploy/tools.sh)"

files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
    shopt -s nullglob
    files=(.github/workflows/*.yml .github/workflows/*.yaml)
    shopt -u nullglob
fi
[[ ${#files[@]} -gt 0 ]] || die "no workflow files in .github/workflows"

# The policy and the summary of action-validator's errors: scripts/deploy/check_workflows.py.
workflows_py() { PYTHONDONTWRITEBYTECODE=1 "$python" "$root/scripts/deploy/check_workflows.py" "$@"; }

failed=0

step "action-validator (GitHub workflow schema): ${#files[@]} file(s)"
for f in "${files[@]}"; do
    [[ -f "$f" ]] || die "no such file: $f"
    if out="$("$validator" "$f" 2>&1)"; then
        ok "$f"
    else
        warn "$f does not match the workflow schema:"
        workflows_py summarize "$out" >&2
        failed=1
    fi
done

step "yamllint -s -c .yamllint: ${#files[@]} file(s)"
if yamllint -s -c .yamllint "${files[@]}"; then
    ok "yamllint clean"
else
    warn "yamllint found problems"
    failed=1
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

step "policy: pinned actions, no Docker Hub secrets, permissions, job timeouts; extracting run: scripts"
if workflows_py policy "$scratch" "${files[@]}"; then
    ok "policy clean"
else
    warn "policy problems (above)"
    failed=1
fi

shopt -s nullglob
run_scripts=("$scratch"/*.sh)
shopt -u nullglob
step "shellcheck on ${#run_scripts[@]} run: script(s)"
if [[ ${#run_scripts[@]} -eq 0 ]] || (cd "$scratch" && shellcheck "${run_scripts[@]##*/}"); then
    ok "run: scripts clean"
else
    warn "shellcheck found problems in run: scripts (file names: <workflow>-<job>-<step number>.sh)"
    failed=1
fi

((failed == 0)) || die "workflow checks failed"
ok "workflows valid: ${files[*]}"
