"""validate.sh's `json` check: every JSON file parses strictly (no comments, no trailing commas, no
duplicate keys); in .vscode/launch.json every preLaunchTask is a task label of tasks.json and every
program is build/<preset>/src/<app> or build/<preset>/tests/<test target> of a target the CMake project
defines (src/apps/<app>, add_executable in tests/CMakeLists.txt).

    scripts/deploy/check_json.py ROOT FILE...     FILEs relative to ROOT; exit 1 on any finding
"""

from __future__ import annotations

import json
import os
import re
import sys

PROGRAM_RE = re.compile(r"\$\{workspaceFolder\}/build/(debug|release)/(src|tests)/([A-Za-z0-9_-]+)")


def no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"duplicate key {k!r}")
        seen[k] = v
    return seen


def load_strict(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh, object_pairs_hook=no_duplicates)


def built_targets(root):
    """(the programs of src/apps, the test executables of tests/CMakeLists.txt)."""
    apps_dir = os.path.join(root, "src", "apps")
    apps = set(os.listdir(apps_dir)) if os.path.isdir(apps_dir) else set()
    tests_cmake = os.path.join(root, "tests", "CMakeLists.txt")
    test_targets = set()
    if os.path.exists(tests_cmake):
        with open(tests_cmake, encoding="utf-8") as fh:
            test_targets = set(re.findall(r"add_executable\(\s*([A-Za-z0-9_-]+)", fh.read()))
    return apps, test_targets


def launch_problems(launch, tasks, apps, test_targets):
    """What of .vscode/launch.json does not name a task of TASKS or a program the project builds."""
    problems = []
    labels = {t.get("label") for t in (tasks or {}).get("tasks", [])}
    for cfg in launch.get("configurations", []):
        name = cfg.get("name", "?")
        pre = cfg.get("preLaunchTask")
        if pre and pre not in labels:
            problems.append(f".vscode/launch.json '{name}': preLaunchTask '{pre}' is not a task label in tasks.json")
        prog = cfg.get("program", "")
        m = PROGRAM_RE.fullmatch(prog)
        if not m:
            problems.append(f".vscode/launch.json '{name}': program '{prog}' is not build/<preset>/src|tests/<target>")
        elif (m.group(2) == "src" and m.group(3) not in apps) or (m.group(2) == "tests" and m.group(3) not in test_targets):
            problems.append(f".vscode/launch.json '{name}': {m.group(3)} is not a target the project builds")
    return problems


def check(root, files) -> list[str]:
    problems = []
    docs = {}
    for f in files:
        try:
            docs[f] = load_strict(os.path.join(root, f))
        except (ValueError, UnicodeDecodeError) as e:
            problems.append(f"{f}: {e}")
    print(f"    {len(files)} JSON files parsed strictly")
    launch = docs.get(".vscode/launch.json")
    if launch is not None:
        problems += launch_problems(launch, docs.get(".vscode/tasks.json"), *built_targets(root))
        print(f"    .vscode/launch.json: {len(launch.get('configurations', []))} configurations cross-checked")
    return problems


def main(argv) -> int:
    if not argv:
        print("usage: check_json.py ROOT FILE...", file=sys.stderr)
        return 64
    problems = check(argv[0], argv[1:])
    for p in problems:
        print(f"    {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
