"""The GitHub Actions workflows' policy, and a readable form of action-validator's errors
(check_workflows.sh runs both).

policy     every `uses:` is pinned (owner/repo@vN[.N.N] or a 40-hex commit sha; docker:// images with
           a tag or digest; local ./actions allowed), at or above the oldest major that still runs on
           today's runners; no Docker Hub secrets (secrets.DOCKER_USERNAME / DOCKER_PASSWORD: images go
           to GHCR with GITHUB_TOKEN); a top-level `permissions:`; a `timeout-minutes` on every job.
           Every bash/sh `run:` script is written to SCRATCH (GitHub expressions ${{ ... }} replaced by
           a word), for shellcheck.
summarize  action-validator's JSON error tree as one line per error (for a oneOf, the branch with
           the fewest errors: the one the author meant); any other text as it is.

    scripts/deploy/check_workflows.py policy SCRATCH FILE...
    scripts/deploy/check_workflows.py summarize VALIDATOR_OUTPUT
"""

from __future__ import annotations

import json
import os
import re
import sys

import yaml

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


def uses_problem(where, uses):
    """Why a `uses:` reference is not acceptable, or None."""
    if uses.startswith("./"):
        return None
    if uses.startswith("docker://"):
        image = uses[len("docker://"):]
        if "@sha256:" not in image and ":" not in image.rsplit("/", 1)[-1]:
            return f"{where}: {uses} has no tag or digest"
        return None
    if "@" not in uses:
        return f"{where}: {uses} is not pinned (owner/repo@vN or @<commit sha>)"
    name, ref = uses.rsplit("@", 1)
    action = "/".join(name.split("/")[:2]).lower()
    if SHA.match(ref):
        return None
    m = SEMVER.match(ref)
    if not m:
        return f"{where}: {uses} is pinned to '{ref}', a branch or unknown ref (use vN or a commit sha)"
    least = MIN_MAJOR.get(action)
    if least is not None and int(m.group(1)) < least:
        return f"{where}: {uses} is older than {action}@v{least} (no longer runs on hosted runners)"
    return None


def workflow_policy(path, text):
    """(problems, run: scripts as [(file name, script text)]) of one workflow file."""
    problems, scripts = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if DOCKER_SECRET.search(line):
            problems.append(f"{path}:{n}: Docker Hub secret referenced ({line.strip()}); push to GHCR with GITHUB_TOKEN")
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        return problems + [f"{path}: not a mapping"], scripts
    if "permissions" not in doc:
        problems.append(f"{path}: no top-level permissions: (least privilege, e.g. contents: read)")

    def check_uses(where, uses):
        p = uses_problem(where, uses)
        if p:
            problems.append(p)

    for job_id, job in (doc.get("jobs") or {}).items():
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
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{os.path.basename(path)}-{job_id}-{i}") + ".sh"
                scripts.append((name, f"#!/usr/bin/env {sh}\n# {label}\n{body}\n"))
    return problems, scripts


def policy(scratch, files) -> int:
    problems, n_scripts = [], 0
    for path in files:
        with open(path, encoding="utf-8") as fh:
            found, scripts = workflow_policy(path, fh.read())
        problems += found
        for name, text in scripts:
            with open(os.path.join(scratch, name), "w", encoding="utf-8") as out:
                out.write(text)
        n_scripts += len(scripts)
    for p in problems:
        print(f"    {p}", file=sys.stderr)
    print(f"    {len(files)} workflow(s), {n_scripts} run: script(s) extracted, {len(problems)} problem(s)")
    return 1 if problems else 0


def summarize(text) -> str:
    """action-validator's output, one `    | path: detail` line per distinct error."""
    try:
        doc = json.loads(text[text.index("{"):])
    except ValueError:
        return "\n".join("    | " + line for line in text.splitlines())
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
    return "\n".join("    | " + line for line in seen) or text


def main(argv) -> int:
    if len(argv) >= 2 and argv[0] == "policy":
        return policy(argv[1], argv[2:])
    if len(argv) == 2 and argv[0] == "summarize":
        print(summarize(argv[1]))
        return 0
    print("usage: check_workflows.py policy SCRATCH FILE... | summarize VALIDATOR_OUTPUT", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
