"""Every pix-* program that docker-compose.yaml and k8s/ run is called the way the program understands:
each `--flag` of its command line and each PIX_* variable of its environment appears in that program's
own `--help` (CLI11 lists every flag and its environment variable). check_commands.sh runs it.

    scripts/deploy/check_commands.py BIN_DIR       exit 1 on any finding
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import yaml

from checklib import ROOT

# The images' entrypoints: the API images run pix-api with no command of their own.
API_IMAGES = ("api-kafka", "api-rabbitmq")


def call_of(where, image, command, env_names):
    """(where, program, subcommand list, args, env names) of a container that runs one of ours, else None."""
    image = str(image)
    command = [str(c) for c in (command or [])]
    if image.startswith(API_IMAGES) and not command:
        return (where, "pix-api", [], [], env_names)
    if command and command[0].startswith("pix-"):
        sub = [c for c in command[1:2] if not c.startswith("-")]
        return (where, command[0], sub, command[1 + len(sub):], env_names)
    return None


def compose_calls(compose):
    calls = []
    for name, svc in compose.get("services", {}).items():
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
        calls.append(call_of(f"docker-compose.yaml: {name}", svc.get("image", ""), svc.get("command"), list(env)))
    return [c for c in calls if c]


def k8s_calls(doc, path):
    """The containers of a Kubernetes document (anything with an image and a name, at any depth)."""
    calls = []
    if isinstance(doc, dict):
        if "image" in doc and "name" in doc:
            calls.append(call_of(f"{path}: {doc['name']}", doc["image"], (doc.get("command") or []) + (doc.get("args") or []),
                                 [e["name"] for e in doc.get("env", []) if "name" in e]))
        for v in doc.values():
            calls += k8s_calls(v, path)
    elif isinstance(doc, list):
        for v in doc:
            calls += k8s_calls(v, path)
    return [c for c in calls if c]


def call_problems(call, help_text):
    """What of CALL's flags and PIX_* variables HELP_TEXT (the program's --help) does not know."""
    where, program, _, args, env_names = call
    known = set(re.findall(r"(--[a-z0-9][a-z0-9-]*)", help_text))
    known_env = set(re.findall(r"\b(PIX_[A-Z0-9_]+)\b", help_text))
    problems = []
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and flag not in known:
            problems.append(f"{where}: {program} has no flag {flag}")
    for name in env_names:
        if name.startswith("PIX_") and name not in known_env:
            problems.append(f"{where}: {program} reads no environment variable {name}")
    return problems


def check(calls, run_help) -> list[str]:
    """Checks CALLS, asking RUN_HELP(program, subcommands) for each program's --help (None: it failed);
    prints a line per call that holds, returns the problems."""
    helps = {}
    problems = []
    for call in calls:
        where, program, sub, args, env_names = call
        key = (program, tuple(sub))
        if key not in helps:
            helps[key] = run_help(program, sub)
            if helps[key] is None:
                problems.append(f"{where}: `{program} {' '.join(sub)} --help` failed (is {program} a program of ours?)")
                continue
        if helps[key] is None:
            continue
        found = call_problems(call, helps[key])
        problems += found
        if not found:
            print(f"    ok   {where}: {program} {' '.join(sub)} ({len(args)} args, "
                  f"{sum(n.startswith('PIX_') for n in env_names)} PIX_* variables)")
    if not calls:
        problems.append("no pix-* program found in docker-compose.yaml or k8s/")
    return problems


def main(argv) -> int:
    if len(argv) != 1:
        print("usage: check_commands.py BIN_DIR", file=sys.stderr)
        return 64
    bin_dir = argv[0]

    def run_help(program, sub):
        out = subprocess.run([os.path.join(bin_dir, program), *sub, "--help"], capture_output=True, text=True)
        return out.stdout if out.returncode == 0 and out.stdout else None

    with open(os.path.join(ROOT, "docker-compose.yaml"), encoding="utf-8") as fh:
        calls = compose_calls(yaml.safe_load(fh))
    for f in sorted(glob.glob("k8s/**/*.yaml", root_dir=ROOT, recursive=True)):
        with open(os.path.join(ROOT, f), encoding="utf-8") as fh:
            for doc in yaml.safe_load_all(fh):
                calls += k8s_calls(doc, f)
    problems = check(calls, run_help)
    for p in problems:
        print(f"    FAIL {p}")
    if problems:
        return 1
    print(f" ok  {len(calls)} command lines use only flags and variables their programs know")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
