"""What the deployment checks share: a reporter that prints each finding as it is made, and a few
facts read from the repository (the programs of src/apps, the PIX topics, the built programs)."""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Checker:
    """Prints `    ok   ...` for a check that holds and `    FAIL ...` (stderr) for one that does not,
    and remembers the failures; finish() turns them into an exit status."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def ok(self, msg: str) -> None:
        print(f"    ok   {msg}")

    def bad(self, msg: str) -> None:
        self.failures.append(msg)
        print(f"    FAIL {msg}", file=sys.stderr)

    def check(self, cond, good: str, fail: str) -> bool:
        if cond:
            self.ok(good)
        else:
            self.bad(fail)
        return bool(cond)

    def finish(self, what: str) -> int:
        if self.failures:
            print(f"{len(self.failures)} problem(s) in {what}", file=sys.stderr)
            return 1
        return 0


def apps(root: Path | str = ROOT) -> list[str]:
    """The programs the CMake project builds: src/apps/<name>/main.cpp."""
    d = os.path.join(root, "src/apps")
    return sorted(a for a in os.listdir(d) if os.path.isfile(os.path.join(d, a, "main.cpp")))


def topic_names(root: Path | str = ROOT) -> list[str]:
    """kTopicNames of src/pix/domain/topics.hpp (the five PIX topics), in order."""
    with open(os.path.join(root, "src/pix/domain/topics.hpp"), encoding="utf-8") as fh:
        m = re.search(r"kTopicNames\s*=\s*\{(.*?)\};", fh.read(), re.S)
    return re.findall(r'"([^"]+)"', m.group(1)) if m else []


def bin_dir(root: Path | str = ROOT) -> str:
    """The built programs: PIX_BIN_DIR, else build/release/src, else build/debug/src."""
    if os.environ.get("PIX_BIN_DIR"):
        return os.environ["PIX_BIN_DIR"]
    for preset in ("release", "debug"):
        d = os.path.join(root, "build", preset, "src")
        if os.access(os.path.join(d, "pix-api"), os.X_OK):
            return d
    return os.path.join(root, "build/release/src")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (bound, read back, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    # `checklib.py free-port`: for the shell scripts that start servers on free ports.
    if sys.argv[1:] != ["free-port"]:
        sys.exit("usage: checklib.py free-port")
    print(free_port())
