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
#   json         every JSON file parses strictly (no comments, no trailing commas, no
#                duplicate keys), .vscode/ included; launch.json's preLaunchTask names exist
#                in tasks.json and its programs are executables the CMake project builds
#   shell        `shellcheck -x` on every script under scripts/
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

all_checks=(tools yaml json shell workflows compose commands k8s monitoring scrape)

describe() {
    case "$1" in
        tools) echo "scripts/deploy/tools.sh" ;;
        yaml) echo "yamllint -s -c .yamllint (all YAML files)" ;;
        json) echo "strict JSON parse (all JSON files) + .vscode cross-references" ;;
        shell) echo "shellcheck -x (every scripts/**/*.sh)" ;;
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

# Tracked files plus untracked ones that .gitignore does not exclude, that exist, outside
# build/ and .local/. Arguments: git pathspecs.
repo_files() {
    git ls-files -z --cached --others --exclude-standard -- "$@" |
        while IFS= read -r -d '' f; do
            case "$f" in build/* | .local/*) continue ;; esac
            [[ -f "$f" ]] && printf '%s\n' "$f"
        done | sort -u
}

# ---- built-in checks ------------------------------------------------------------

check_tools() {
    "$root/scripts/deploy/tools.sh"
}

check_yaml() {
    local files
    mapfile -t files < <(repo_files '*.yml' '*.yaml')
    [[ ${#files[@]} -gt 0 ]] || { warn "no YAML files found"; return 1; }
    echo "    ${#files[@]} YAML files"
    yamllint -s -c .yamllint "${files[@]}" || return 1
    ok "yamllint clean"
}

check_json() {
    local files
    mapfile -t files < <(repo_files '*.json')
    [[ ${#files[@]} -gt 0 ]] || { warn "no JSON files found"; return 1; }
    python3 - "$root" "${files[@]}" <<'PY' || return 1
import json
import os
import re
import sys

root, files = sys.argv[1], sys.argv[2:]
problems = []


def no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"duplicate key {k!r}")
        seen[k] = v
    return seen


docs = {}
for f in files:
    try:
        with open(os.path.join(root, f), encoding="utf-8") as fh:
            docs[f] = json.load(fh, object_pairs_hook=no_duplicates)
    except (ValueError, UnicodeDecodeError) as e:
        problems.append(f"{f}: {e}")
print(f"    {len(files)} JSON files parsed strictly")

# .vscode: every preLaunchTask names a task; every program is an executable the project builds.
tasks = docs.get(".vscode/tasks.json")
launch = docs.get(".vscode/launch.json")
if launch is not None:
    labels = {t.get("label") for t in (tasks or {}).get("tasks", [])}
    apps = set(os.listdir(os.path.join(root, "src", "apps"))) if os.path.isdir(os.path.join(root, "src", "apps")) else set()
    tests_cmake = os.path.join(root, "tests", "CMakeLists.txt")
    test_targets = set()
    if os.path.exists(tests_cmake):
        with open(tests_cmake, encoding="utf-8") as fh:
            test_targets = set(re.findall(r"add_executable\(\s*([A-Za-z0-9_-]+)", fh.read()))
    for cfg in launch.get("configurations", []):
        name = cfg.get("name", "?")
        pre = cfg.get("preLaunchTask")
        if pre and pre not in labels:
            problems.append(f".vscode/launch.json '{name}': preLaunchTask '{pre}' is not a task label in tasks.json")
        prog = cfg.get("program", "")
        m = re.fullmatch(r"\$\{workspaceFolder\}/build/(debug|release)/(src|tests)/([A-Za-z0-9_-]+)", prog)
        if not m:
            problems.append(f".vscode/launch.json '{name}': program '{prog}' is not build/<preset>/src|tests/<target>")
        elif (m.group(2) == "src" and m.group(3) not in apps) or (m.group(2) == "tests" and m.group(3) not in test_targets):
            problems.append(f".vscode/launch.json '{name}': {m.group(3)} is not a target the project builds")
    print(f"    .vscode/launch.json: {len(launch.get('configurations', []))} configurations cross-checked")
for p in problems:
    print(f"    {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
    ok "JSON valid"
}

check_shell() {
    local files
    mapfile -t files < <(repo_files 'scripts/*.sh')
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
        tools | yaml | json | shell)
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
