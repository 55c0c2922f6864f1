#!/usr/bin/env bash
# All offline deployment checks, one after the other (no Docker engine, no cluster needed).
# Every check runs even when an earlier one failed; a summary table (check, result, seconds)
# ends the output, and the exit status is 1 if any check failed.
#
#   scripts/deploy/validate.sh [CHECK...]     default: all, in this order
#   scripts/deploy/validate.sh --list         the checks and what they run
#
# Checks:
#   tools        scripts/deploy/tools.sh (installs the validators into .local/tools once)
#   yaml         yamllint -s -c .yamllint on every YAML file of the repository (tracked and
#                untracked-but-not-ignored, outside build/ and .local/)
#   json         scripts/deploy/check_json.py: every JSON file parses strictly (no comments, no
#                trailing commas, no duplicate keys), .vscode/ included; launch.json's
#                preLaunchTask names exist in tasks.json and its programs are executables the
#                CMake project builds
#   shell        `shellcheck -x` on every script under scripts/
#   pytest       the tests of scripts/deploy's Python modules (test_*.py)
#   workflows    scripts/deploy/check_workflows.sh (GitHub Actions)
#   compose      scripts/deploy/check_compose.sh (docker-compose.yaml, Dockerfiles)
#   commands     scripts/deploy/check_commands.sh (compose's and k8s' pix-* command lines and
#                PIX_* variables against each program's --help)
#   k8s          scripts/deploy/check_k8s.sh (k8s/ against the Kubernetes and KEDA schemas)
#   monitoring   scripts/deploy/check_monitoring.sh (promtool, amtool, dashboards' metrics)
#   scrape       scripts/deploy/prometheus_scrape_check.sh (a real Prometheus scrapes the APIs)
#
# A check whose script does not exist FAILS (it is never skipped silently).
# Env: PIX_DEPLOY_CHECKS="k8s,monitoring" (or space-separated) selects a subset, like the
# arguments do (arguments win).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

root="$(pix_root)"
cd "$root"

all_checks=(tools yaml json shell pytest workflows compose commands k8s monitoring scrape)

describe() {
    case "$1" in
        tools) echo "scripts/deploy/tools.sh" ;;
        yaml) echo "yamllint -s -c .yamllint (all YAML files)" ;;
        json) echo "strict JSON parse (all JSON files) + .vscode cross-references" ;;
        shell) echo "shellcheck -x (every scripts/**/*.sh)" ;;
        pytest) echo "pytest scripts/deploy (the checks' own tests)" ;;
        workflows) echo "scripts/deploy/check_workflows.sh" ;;
        compose) echo "scripts/deploy/check_compose.sh" ;;
        commands) echo "scripts/deploy/check_commands.sh" ;;
        k8s) echo "scripts/deploy/check_k8s.sh" ;;
        monitoring) echo "scripts/deploy/check_monitoring.sh" ;;
        scrape) echo "scripts/deploy/prometheus_scrape_check.sh" ;;
        *) return 1 ;;
    esac
}

case "${1:-}" in
    -h | --help)
        pix_usage "${BASH_SOURCE[0]}"
        exit 0
        ;;
    --list)
        for c in "${all_checks[@]}"; do printf '  %-11s %s\n' "$c" "$(describe "$c")"; done
        exit 0
        ;;
esac

selected=()
if [[ $# -gt 0 ]]; then
    selected=("$@")
elif [[ -n "${PIX_DEPLOY_CHECKS:-}" ]]; then
    read -r -a selected <<<"${PIX_DEPLOY_CHECKS//,/ }"
fi
[[ ${#selected[@]} -gt 0 ]] || selected=("${all_checks[@]}")
for c in "${selected[@]}"; do
    describe "$c" >/dev/null || die "unknown check '$c' (${all_checks[*]})"
done

# ---- file lists ---------------------------------------------------------------

# ---- built-in checks ------------------------------------------------------------

check_tools() {
    "$root/scripts/deploy/tools.sh"
}

check_yaml() {
    local files
    mapfile -t files < <(pix_repo_files '*.yml' '*.yaml')
    [[ ${#files[@]} -gt 0 ]] || { warn "no YAML files found"; return 1; }
    echo "    ${#files[@]} YAML files"
    yamllint -s -c .yamllint "${files[@]}" || return 1
    ok "yamllint clean"
}

check_json() {
    local files
    mapfile -t files < <(pix_repo_files '*.json')
    [[ ${#files[@]} -gt 0 ]] || { warn "no JSON files found"; return 1; }
    PYTHONDONTWRITEBYTECODE=1 python3 scripts/deploy/check_json.py "$root" "${files[@]}" || return 1
    ok "JSON valid"
}

# The checks' own tests (scripts/deploy/test_*.py; pytest.ini). Debian's python3 and its pytest
# (python3-pytest, scripts/local/deps.sh), whatever python3 comes first on PATH.
check_pytest() {
    local py=/usr/bin/python3
    [[ -x "$py" ]] || py="$(command -v python3)"
    "$py" -m pytest --version >/dev/null 2>&1 || { warn "$py has no pytest (scripts/local/deps.sh installs python3-pytest)"; return 1; }
    PYTHONDONTWRITEBYTECODE=1 "$py" -m pytest scripts/deploy 2>&1 | sed 's/^/    /' || return 1
    ok "scripts/deploy tests pass"
}

check_shell() {
    local files
    mapfile -t files < <(pix_repo_files 'scripts/*.sh')
    [[ ${#files[@]} -gt 0 ]] || { warn "no scripts found"; return 1; }
    echo "    ${#files[@]} scripts"
    shellcheck -x "${files[@]}" || return 1
    ok "shellcheck clean"
}

# ---- running ---------------------------------------------------------------------

results=()
seconds=()

run_check() {
    local name="$1" t0 rc=0 script=""
    t0="$(now_us)"
    step "[$name] $(describe "$name")"
    case "$name" in
        tools | yaml | json | shell | pytest)
            "check_$name" || rc=$?
            ;;
        *)
            script="$(describe "$name")"
            if [[ ! -f "$root/$script" ]]; then
                warn "$script does not exist"
                rc=127
            else
                bash "$root/$script" || rc=$?
            fi
            ;;
    esac
    seconds+=("$(elapsed_since "$t0")")
    if ((rc == 0)); then
        results+=(ok)
    elif ((rc == 127)) && [[ -n "$script" && ! -f "$root/$script" ]]; then
        results+=("FAIL (missing $script)")
    else
        results+=("FAIL (exit $rc)")
        warn "[$name] failed (exit $rc)"
    fi
}

t_all="$(now_us)"
for c in "${selected[@]}"; do
    run_check "$c"
done

echo
printf '%-12s %-60s %8s\n' CHECK RESULT SECONDS
failed=0
for i in "${!selected[@]}"; do
    printf '%-12s %-60s %8s\n' "${selected[$i]}" "${results[$i]}" "${seconds[$i]}"
    [[ "${results[$i]}" == ok ]] || failed=$((failed + 1))
done
if ((${#selected[@]} < ${#all_checks[@]})); then
    echo "(a subset: ${selected[*]}; all checks: ${all_checks[*]})"
fi
if ((failed > 0)); then
    die "$failed of ${#selected[@]} deployment check(s) failed ($(elapsed_since "$t_all")s)"
fi
ok "all ${#selected[@]} deployment check(s) passed ($(elapsed_since "$t_all")s)"
