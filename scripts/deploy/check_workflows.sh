#!/usr/bin/env bash
# Checks the GitHub Actions workflows offline, strictly (any finding fails):
#
#   1. action-validator: each workflow against the GitHub workflow schema (a key typo such
#      as `runs-onn`, a wrong type or an unknown trigger fails);
#   2. yamllint -s with the project's .yamllint;
#   3. policy (python): every `uses:` is pinned (owner/repo@vN[.N.N] or a 40-hex commit sha;
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

# action-validator prints a JSON error tree; print one line per error (for a oneOf, the branch
# with the fewest errors: the one the author meant). Anything else is printed as is.
summarize_validator() {
    python3 -c '
import json, sys
text = sys.argv[1]
try:
    doc = json.loads(text[text.index("{"):])
except ValueError:
    print("\n".join("    | " + line for line in text.splitlines()))
    sys.exit(0)
seen = []
def walk(errors):
    for e in errors:
        if e.get("states"):
            walk(min(e["states"], key=lambda s: len(s.get("errors", []))).get("errors", []))
        else:
            line = "{}: {}".format(e.get("path") or "/", e.get("detail") or e.get("title") or e.get("code"))
            if line not in seen:
                seen.append(line)
walk(doc.get("errors", []))
print("\n".join("    | " + line for line in seen) or text)
' "$1"
}

failed=0

step "action-validator (GitHub workflow schema): ${#files[@]} file(s)"
for f in "${files[@]}"; do
    [[ -f "$f" ]] || die "no such file: $f"
    if out="$("$validator" "$f" 2>&1)"; then
        ok "$f"
    else
        warn "$f does not match the workflow schema:"
        summarize_validator "$out" >&2
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
if "$python" - "$scratch" "${files[@]}" <<'PY'; then
import os
import re
import sys

import yaml

scratch, files = sys.argv[1], sys.argv[2:]

# The oldest major of each action that still runs on today's hosted runners (Node 20+, the
# current cache and artifact services). Actions not listed only need to be pinned.
MIN_MAJOR = {
    "actions/checkout": 4,
    "actions/cache": 4,
    "actions/upload-artifact": 4,
    "actions/download-artifact": 4,
    "actions/setup-python": 5,
    "actions/setup-node": 4,
    "docker/setup-buildx-action": 3,
    "docker/setup-qemu-action": 3,
    "docker/login-action": 3,
    "docker/build-push-action": 5,
    "docker/metadata-action": 5,
    "azure/setup-kubectl": 4,
}
SHA = re.compile(r"^[0-9a-f]{40}$")
SEMVER = re.compile(r"^v(\d+)(\.\d+){0,2}$")
DOCKER_SECRET = re.compile(r"secrets\s*(\.\s*|\[\s*['\"])DOCKER_(USERNAME|PASSWORD)", re.I)
EXPR = re.compile(r"\$\{\{.*?\}\}", re.S)

problems = []
scripts = 0


def check_uses(where, uses):
    if uses.startswith("./"):
        return
    if uses.startswith("docker://"):
        image = uses[len("docker://"):]
        if "@sha256:" not in image and ":" not in image.rsplit("/", 1)[-1]:
            problems.append(f"{where}: {uses} has no tag or digest")
        return
    if "@" not in uses:
        problems.append(f"{where}: {uses} is not pinned (owner/repo@vN or @<commit sha>)")
        return
    name, ref = uses.rsplit("@", 1)
    action = "/".join(name.split("/")[:2]).lower()
    if SHA.match(ref):
        return
    m = SEMVER.match(ref)
    if not m:
        problems.append(f"{where}: {uses} is pinned to '{ref}', a branch or unknown ref (use vN or a commit sha)")
        return
    least = MIN_MAJOR.get(action)
    if least is not None and int(m.group(1)) < least:
        problems.append(f"{where}: {uses} is older than {action}@v{least} (no longer runs on hosted runners)")


for path in files:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    for n, line in enumerate(text.splitlines(), 1):
        if DOCKER_SECRET.search(line):
            problems.append(f"{path}:{n}: Docker Hub secret referenced ({line.strip()}); push to GHCR with GITHUB_TOKEN")
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        problems.append(f"{path}: not a mapping")
        continue
    if "permissions" not in doc:
        problems.append(f"{path}: no top-level permissions: (least privilege, e.g. contents: read)")
    jobs = doc.get("jobs") or {}
    for job_id, job in jobs.items():
        where = f"{path}: job {job_id}"
        if not isinstance(job, dict):
            continue
        if "uses" in job:  # a reusable workflow call
            check_uses(where, str(job["uses"]))
            continue
        if "timeout-minutes" not in job:
            problems.append(f"{where}: no timeout-minutes (the default is 6 hours)")
        shell = ((job.get("defaults") or {}).get("run") or {}).get("shell") or \
            ((doc.get("defaults") or {}).get("run") or {}).get("shell") or "bash"
        for i, st in enumerate(job.get("steps") or [], 1):
            label = f"{where} step {i} ({st.get('name') or st.get('uses') or 'run'})"
            if "uses" in st:
                check_uses(label, str(st["uses"]))
            if "run" in st:
                sh = st.get("shell", shell)
                if sh not in ("bash", "sh"):
                    continue
                body = EXPR.sub("GHA_EXPR", str(st["run"]))
                scripts += 1
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{os.path.basename(path)}-{job_id}-{i}") + ".sh"
                with open(os.path.join(scratch, name), "w", encoding="utf-8") as out:
                    out.write(f"#!/usr/bin/env {sh}\n# {label}\n{body}\n")

for p in problems:
    print(f"    {p}", file=sys.stderr)
print(f"    {len(files)} workflow(s), {scripts} run: script(s) extracted, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY
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
