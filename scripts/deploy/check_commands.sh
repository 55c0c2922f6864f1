#!/usr/bin/env bash
# Every pix-* program that docker-compose.yaml and k8s/ run is called the way the program
# understands: each `--flag` in its command line and each PIX_* variable in its environment must
# appear in that program's own `--help` (CLI11 lists every flag and its environment variable).
# A misspelt flag or variable would otherwise surface only when a container starts.
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

/usr/bin/python3 - "$bin" <<'PY'
import glob
import re
import subprocess
import sys

import yaml

bin_dir = sys.argv[1]
# The images' entrypoints: the API images run pix-api with no command of their own.
API_IMAGES = ("api-kafka", "api-rabbitmq")
calls = []  # (where, program, subcommand list, args, env names)


def add(where, image, command, env_names):
    image = str(image)
    command = [str(c) for c in (command or [])]
    if image.startswith(API_IMAGES) and not command:
        calls.append((where, "pix-api", [], [], env_names))
    elif command and command[0].startswith("pix-"):
        sub = [c for c in command[1:2] if not c.startswith("-")]
        calls.append((where, command[0], sub, command[1 + len(sub):], env_names))


compose = yaml.safe_load(open("docker-compose.yaml"))
for name, svc in compose.get("services", {}).items():
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    add(f"docker-compose.yaml: {name}", svc.get("image", ""), svc.get("command"), list(env))


def walk(node, path):
    if isinstance(node, dict):
        if "image" in node and "name" in node:
            add(f"{path}: {node['name']}", node["image"], (node.get("command") or []) + (node.get("args") or []),
                [e["name"] for e in node.get("env", []) if "name" in e])
        for v in node.values():
            walk(v, path)
    elif isinstance(node, list):
        for v in node:
            walk(v, path)


for f in sorted(glob.glob("k8s/**/*.yaml", recursive=True)):
    for doc in yaml.safe_load_all(open(f)):
        walk(doc, f)

helps = {}
problems = []
for where, program, sub, args, env_names in calls:
    key = (program, tuple(sub))
    if key not in helps:
        out = subprocess.run([f"{bin_dir}/{program}", *sub, "--help"], capture_output=True, text=True)
        if out.returncode != 0 or not out.stdout:
            problems.append(f"{where}: `{program} {' '.join(sub)} --help` failed (is {program} a program of ours?)")
            helps[key] = None
            continue
        helps[key] = out.stdout
    text = helps[key]
    if text is None:
        continue
    before = len(problems)
    known = set(re.findall(r"(--[a-z0-9][a-z0-9-]*)", text))
    known_env = set(re.findall(r"\b(PIX_[A-Z0-9_]+)\b", text))
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and flag not in known:
            problems.append(f"{where}: {program} has no flag {flag}")
    for name in env_names:
        if name.startswith("PIX_") and name not in known_env:
            problems.append(f"{where}: {program} reads no environment variable {name}")
    if len(problems) > before:
        continue
    print(f"    ok   {where}: {program} {' '.join(sub)} ({len(args)} args, "
          f"{sum(n.startswith('PIX_') for n in env_names)} PIX_* variables)")

if not calls:
    problems.append("no pix-* program found in docker-compose.yaml or k8s/")
for p in problems:
    print(f"    FAIL {p}")
if problems:
    sys.exit(1)
print(f" ok  {len(calls)} command lines use only flags and variables their programs know")
PY
