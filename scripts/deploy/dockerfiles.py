"""The Dockerfiles' checks (check_compose.sh's `dockerfiles` step): Dockerfile and
deploy/images/kafka/Dockerfile.

Both: `# syntax=docker/dockerfile:1` first; the final stages run as a non-root USER (numeric uid[:gid]
in ours); every FROM pinned to a tag; no remote ADD without --checksum=sha256:...; every COPY source
exists in the context and passes .dockerignore; no ADD of local files; apt-get install with
--no-install-recommends.
Dockerfile: the targets api-kafka, api-rabbitmq and pix (last); OCI labels; the runtime's ENV; the
pix-api stages' broker, port, ENTRYPOINT and HEALTHCHECK; the build stage gets every CMake/C++ file;
it builds and installs src/apps/* (host-only programs may be left out) with the release preset; the
runtime stage installs the Debian package of every library the built binaries link (readelf + dpkg -S
on the built programs, sanitizer runtimes of a debug build left out) and no other library.
deploy/images/kafka: FROM apache/kafka:3.9.1, the JMX exporter javaagent from Maven Central, put into
the broker's KAFKA_OPTS by pix-kafka-run (never by ENV), whose secured path formats the storage with
SCRAM users.

    scripts/deploy/dockerfiles.py        exit 1 on any finding
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import subprocess
import sys

from checklib import ROOT, Checker, apps, bin_dir

# Programs of src/apps that no image needs to carry: the development token issuer runs on the host
# (scripts/deploy/dev_secrets.sh, ./pix token).
HOST_ONLY_APPS = {"pix-token"}


def parse_dockerfile(path):
    """[(instruction, rest, lineno)] with continuations joined and comments dropped."""
    out, buf, start = [], "", 0
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    for i, line in enumerate(lines, 1):
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue
        if not buf:
            start = i
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip(), start))
        buf = ""
    return out


def dockerfile_stages(instrs):
    """The stages: [{"base", "name" (None when unnamed), "instrs", "line"}]."""
    stages = []
    for ins, rest, ln in instrs:
        if ins == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append({"base": words[0], "name": name, "instrs": [], "line": ln})
        elif stages:
            stages[-1]["instrs"].append((ins, rest, ln))
    return stages


def split_flags(rest):
    """`--from=build --chmod=0755 a b /dst` -> ({"from": "build", "chmod": "0755"}, ["a", "b", "/dst"])."""
    words = shlex.split(rest) if not rest.startswith("[") else json.loads(rest)
    flags = {}
    while words and words[0].startswith("--"):
        k, _, v = words.pop(0)[2:].partition("=")
        flags[k] = v
    return flags, words


def dockerignore(ctx):
    """The patterns of CTX/.dockerignore as [(regex, negated)], in order."""
    pats = []
    f = os.path.join(ctx, ".dockerignore")
    if not os.path.isfile(f):
        return pats
    with open(f, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        p = os.path.normpath(line[1:] if neg else line).lstrip("/")
        rx, i = "", 0
        while i < len(p):
            c = p[i]
            if p.startswith("**", i):
                i += 2
                if p.startswith("/", i):
                    rx += "(?:.*/)?"
                    i += 1
                else:
                    rx += ".*"
                continue
            rx += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
            i += 1
        pats.append((re.compile(rx + r"\Z"), neg))
    return pats


def ignored(pats, path):
    """True if .dockerignore's patterns leave PATH (relative to the context) out; the last match wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    matched = False
    for rx, neg in pats:
        if neg != matched:
            continue
        if any(rx.match(c) for c in candidates):
            matched = not neg
    return matched


def files_under(ctx, src):
    """The files (relative to CTX) a COPY source names: a glob, a file or a directory."""
    out = []
    for h in glob.glob(os.path.join(ctx, src)):
        if os.path.isdir(h):
            for d, _, fs in os.walk(h):
                out += [os.path.relpath(os.path.join(d, f), ctx) for f in fs]
        else:
            out.append(os.path.relpath(h, ctx))
    return out


def lint_dockerfile(chk: Checker, path, ctx, want_targets, numeric_user, root=ROOT):
    """The rules every Dockerfile follows; returns (instrs, stages, stages by name, ARG expander)."""
    where = os.path.relpath(path, root)
    with open(path, encoding="utf-8") as fh:
        first = fh.readline().strip()
    chk.check(first == "# syntax=docker/dockerfile:1", f"{where}: # syntax=docker/dockerfile:1",
              f"{where}: first line must be `# syntax=docker/dockerfile:1`")
    instrs = parse_dockerfile(path)
    stages = dockerfile_stages(instrs)
    names = [s["name"] for s in stages]
    args = {}
    for ins, rest, _ in instrs:
        if ins == "ARG" and "=" in rest:
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip().strip('"')

    def expand(s):
        return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), s)

    for t in want_targets:
        chk.check(t in names, f"{where}: target {t}", f"{where}: no stage named {t}")
    pats = dockerignore(ctx)
    by_name = {s["name"]: s for s in stages if s["name"]}

    def user_of(stage):
        users = [rest for ins, rest, _ in stage["instrs"] if ins == "USER"]
        if users:
            return expand(users[-1])
        parent = by_name.get(expand(stage["base"]))
        return user_of(parent) if parent else None

    finals = [by_name[t] for t in want_targets if t in by_name] or stages[-1:]
    for st in finals:
        u = user_of(st)
        label = st["name"] or "last stage"
        if numeric_user:
            chk.check(u is not None and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", u) is not None,
                      f"{where}: {label} runs as numeric non-root USER {u}",
                      f"{where}: {label} USER {u!r} is not a numeric non-root uid[:gid]")
        else:
            chk.check(u is None or u.split(":")[0] not in ("root", "0"),
                      f"{where}: {label} keeps the base image's non-root user" if u is None else f"{where}: {label} USER {u}",
                      f"{where}: {label} runs as root")
    for st in stages:
        base = expand(st["base"])
        if base in by_name or base == "scratch":
            continue
        m = re.fullmatch(r"[^:@]+:([\w][\w.-]*)(@sha256:[0-9a-f]{64})?", base)
        chk.check(m is not None and m.group(1) != "latest", f"{where}: FROM {base} pinned",
                  f"{where}:{st['line']}: FROM {base} is not pinned to a tag")
    for ins, rest, ln in instrs:
        if ins not in ("ADD", "COPY"):
            continue
        flags, words = split_flags(rest)
        srcs = words[:-1]
        if "from" in flags:
            continue
        for s in srcs:
            s = expand(s)
            if re.match(r"https?://|git@", s):
                chk.check(ins == "ADD" and re.fullmatch(r"sha256:[0-9a-f]{64}", flags.get("checksum", "")) is not None,
                          f"{where}:{ln}: remote {s.rsplit('/', 1)[-1]} pinned by --checksum",
                          f"{where}:{ln}: remote source {s} without ADD --checksum=sha256:...")
                continue
            files = files_under(ctx, s)
            if not files:
                chk.bad(f"{where}:{ln}: {ins} source {s} does not exist in context {os.path.relpath(ctx, root)}")
                continue
            dropped = [f for f in files if ignored(pats, f)]
            chk.check(not dropped, f"{where}:{ln}: {ins} {s} ({len(files)} file(s)) passes .dockerignore",
                      f"{where}:{ln}: {ins} {s}: .dockerignore excludes {dropped[:5]}")
        if ins == "ADD" and not any(re.match(r"https?://", expand(s)) for s in srcs):
            chk.bad(f"{where}:{ln}: ADD of local files: use COPY")
    for ins, rest, ln in instrs:
        if ins == "RUN" and "apt-get install" in rest:
            chk.check("--no-install-recommends" in rest, f"{where}:{ln}: apt-get install --no-install-recommends",
                      f"{where}:{ln}: apt-get install without --no-install-recommends")
    return instrs, stages, by_name, expand


def stage_env(stage, by_name):
    """The ENV a stage has, its parents' included."""
    env = {}
    parent = by_name.get(stage["base"])
    if parent:
        env.update(stage_env(parent, by_name))
    for ins, rest, _ in stage["instrs"]:
        if ins == "ENV":
            for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                env[k] = v.strip('"')
    return env


def runtime_packages(chk: Checker, bindir, targets, listed, root=ROOT):
    """The runtime stage installs (LISTED) the Debian package of every library the built TARGETS link."""
    # A debug build links the sanitizer runtimes, which the release preset of the image does not.
    sanitizers = re.compile(r"^lib(asan|ubsan|lsan|tsan|hwasan)\.so") if bindir.endswith("debug/src") else None
    bins = [os.path.join(bindir, a) for a in targets if os.path.isfile(os.path.join(bindir, a))]
    if not targets or len(bins) != len(targets):
        chk.bad(f"Dockerfile: cannot check the runtime libraries: {os.path.relpath(bindir, root)} lacks some of {targets} "
                f"(scripts/local/build.sh release)")
        return
    if sanitizers:
        chk.ok(f"Dockerfile: runtime libraries read from the debug build {os.path.relpath(bindir, root)} "
               f"(sanitizer runtimes left out)")
    needed = {}
    for b in bins:
        ldd = subprocess.run(["ldd", b], capture_output=True, text=True).stdout
        paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M))
        dyn = subprocess.run(["readelf", "-d", b], capture_output=True, text=True).stdout
        for so in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn):
            if sanitizers and sanitizers.match(so):
                continue
            needed.setdefault(so, paths.get(so))
    pkgs = {}
    for so, path in sorted(needed.items()):
        pkg = None
        for cand in filter(None, [path, path and re.sub(r"^/usr/", "/", path), path and "/usr" + path]):
            r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
            if r.returncode == 0:
                pkg = r.stdout.split(":")[0].strip()
                break
        if pkg is None:
            chk.bad(f"Dockerfile: no Debian package owns {so} ({path})")
        else:
            pkgs[so] = pkg
    want = set(pkgs.values()) - {"libc6"}  # libc6 is in every Debian image
    chk.check(want <= listed, f"Dockerfile: runtime installs the packages of every linked library ({', '.join(sorted(want))})",
              f"Dockerfile: runtime lacks {sorted(want - listed)} (linked: {pkgs})")
    extra = {p for p in listed if p.startswith("lib")} - want
    chk.check(not extra, "Dockerfile: runtime installs no library nothing links",
              f"Dockerfile: runtime installs unused libraries {sorted(extra)}")


def check_main_dockerfile(chk: Checker, root=ROOT, bindir=None):
    """The project's Dockerfile (the images api-kafka, api-rabbitmq, pix-pubsub)."""
    path = os.path.join(root, "Dockerfile")
    _, stages, by_name, expand = lint_dockerfile(chk, path, root, ["api-kafka", "api-rabbitmq", "pix"], True, root)
    chk.check(stages and stages[-1]["name"] == "pix", "Dockerfile: `pix` is the last (default) stage",
              "Dockerfile: the last stage must be `pix`")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    for key in ("title", "description", "version", "revision", "created", "source"):
        chk.check(f"org.opencontainers.image.{key}=" in text, f"Dockerfile: label org.opencontainers.image.{key}",
                  f"Dockerfile: missing label org.opencontainers.image.{key}")
    runtime_env = stage_env(by_name.get("pix", {"base": "", "instrs": []}), by_name)
    for k, v in (("PIX_LISTEN", "0.0.0.0"), ("PIX_ADMIN_LISTEN", "0.0.0.0"), ("PIX_LOG_FORMAT", "json")):
        chk.check(runtime_env.get(k) == v, f"Dockerfile: ENV {k}={v}", f"Dockerfile: the runtime stage must set {k}={v}")
    for t, broker, port in (("api-kafka", "kafka", "5000"), ("api-rabbitmq", "rabbit", "5001")):
        st = by_name.get(t)
        if not st:
            continue
        env = stage_env(st, by_name)
        ins = {i: r for i, r, _ in st["instrs"]}
        chk.check(env.get("PIX_BROKER") == broker and env.get("PIX_PORT") == port and port in ins.get("EXPOSE", "").split(),
                  f"Dockerfile: {t} = PIX_BROKER={broker}, port {port}",
                  f"Dockerfile: {t} needs PIX_BROKER={broker}, PIX_PORT={port}, EXPOSE {port}")
        chk.check("pix-api" in ins.get("ENTRYPOINT", ""), f"Dockerfile: {t} runs pix-api", f"Dockerfile: {t} ENTRYPOINT must be pix-api")
        chk.check("/healthz" in ins.get("HEALTHCHECK", ""), f"Dockerfile: {t} HEALTHCHECK on /healthz",
                  f"Dockerfile: {t} needs a HEALTHCHECK on /healthz")
    # every source file the release configure and build read is copied into the build stage
    pats = dockerignore(root)
    build = by_name.get("build")
    copied = set()
    for ins, rest, _ in (build["instrs"] if build else []):
        if ins == "COPY":
            flags, words = split_flags(rest)
            if "from" not in flags:
                for src in words[:-1]:
                    copied |= {f for f in files_under(root, expand(src)) if not ignored(pats, f)}
    needed_src = {"CMakeLists.txt", "CMakePresets.json"}
    for top in ("cmake", "src", "bench"):
        needed_src |= {f for f in files_under(root, top)
                       if re.search(r"(^|/)CMakeLists\.txt$|\.(cmake|cpp|hpp|h)$", f)}
    missing_src = sorted(needed_src - copied)
    chk.check(not missing_src, f"Dockerfile: the build stage gets all {len(needed_src)} CMake/C++ files of cmake/, src/, bench/",
              f"Dockerfile: the build stage does not get {missing_src[:8]} (COPY them, and let them pass .dockerignore)")
    # the build targets and the installed binaries are exactly src/apps/*
    run_text = " ".join(r for i, r, _ in (build["instrs"] if build else []) if i == "RUN")
    m = re.search(r"--target\s+((?:pix-[\w-]+\s*)+)", run_text)
    targets = sorted(m.group(1).split()) if m else []
    installed = sorted(set(re.findall(r"build/release/src/(pix-[\w-]+)", run_text)))
    all_apps = apps(root)
    image_apps = [a for a in all_apps if a not in HOST_ONLY_APPS]
    chk.check(set(image_apps) <= set(targets) <= set(all_apps) and set(targets) == set(installed),
              f"Dockerfile: builds and installs {', '.join(targets)} (of src/apps; host-only: {', '.join(sorted(HOST_ONLY_APPS))})",
              f"Dockerfile: targets {targets} / installed {installed} must be src/apps {image_apps} "
              f"(plus, optionally, {sorted(HOST_ONLY_APPS)})")
    chk.check("--preset release" in run_text, "Dockerfile: configures with cmake --preset release",
              "Dockerfile: use cmake --preset release")
    # runtime packages = the Debian packages of the libraries the binaries link
    runtime = by_name.get("runtime")
    rt_run = " ".join(r for i, r, _ in (runtime["instrs"] if runtime else []) if i == "RUN")
    m = re.search(r"apt-get install -y --no-install-recommends (.*?)(?:&&|$)", rt_run)
    listed = set(m.group(1).split()) if m else set()
    for p in ("ca-certificates", "tzdata", "curl"):
        chk.check(p in listed, f"Dockerfile: runtime installs {p}", f"Dockerfile: runtime must install {p}")
    if bindir is not False:  # False: the tests' fixtures have no build to read
        runtime_packages(chk, bindir or bin_dir(root), targets, listed, root)


def check_kafka_dockerfile(chk: Checker, root=ROOT):
    """deploy/images/kafka: the pix-kafka image (apache/kafka plus the JMX exporter)."""
    kdir = os.path.join(root, "deploy/images/kafka")
    kinstrs, kstages, _, kexpand = lint_dockerfile(chk, os.path.join(kdir, "Dockerfile"), kdir, [], False, root)
    chk.check(kstages and kexpand(kstages[0]["base"]) == "apache/kafka:3.9.1", "deploy/images/kafka: FROM apache/kafka:3.9.1",
              "deploy/images/kafka: must be FROM apache/kafka:3.9.1")
    adds = [(split_flags(r), ln) for i, r, ln in kinstrs if i == "ADD"]
    jar = [(f, w) for (f, w), _ in adds if any("jmx_prometheus_javaagent" in kexpand(x) for x in w[:-1])]
    chk.check(len(jar) == 1
              and re.search(r"repo1\.maven\.org/maven2/io/prometheus/jmx/jmx_prometheus_javaagent/", kexpand(jar[0][1][0])),
              "deploy/images/kafka: jmx_prometheus_javaagent from Maven Central",
              "deploy/images/kafka: ADD the jmx_prometheus_javaagent jar from Maven Central")
    with open(os.path.join(kdir, "Dockerfile"), encoding="utf-8") as fh:
        ktext = fh.read()
    run_sh = os.path.join(kdir, "pix-kafka-run.sh")
    run = ""
    if os.path.isfile(run_sh):
        with open(run_sh, encoding="utf-8") as fh:
            run = fh.read()
    chk.check("-javaagent:" in run and "KAFKA_OPTS" in run and "pix-kafka-run" in ktext and "9404" in ktext,
              "deploy/images/kafka: pix-kafka-run puts -javaagent (port 9404) into the broker's KAFKA_OPTS",
              "deploy/images/kafka: the javaagent must be added to KAFKA_OPTS by pix-kafka-run (port 9404)")
    chk.check(all(x in run for x in ("PIX_KAFKA_SCRAM_USERS", "kafka-storage.sh format", "--add-scram", "--ignore-formatted",
                                     "kafka-server-start.sh")),
              "deploy/images/kafka: pix-kafka-run's secured path formats the storage with SCRAM users, then starts the broker",
              "deploy/images/kafka: pix-kafka-run must format the storage with --add-scram (PIX_KAFKA_SCRAM_USERS) when secured")
    chk.check(not re.search(r"^ENV\s+KAFKA_OPTS", ktext, re.M),
              "deploy/images/kafka: no KAFKA_OPTS in the image env (CLI tools stay agent-free)",
              "deploy/images/kafka: KAFKA_OPTS with the agent in ENV breaks every Kafka CLI tool in the container "
              "(port 9404 taken)")
    chk.check(os.path.isfile(os.path.join(root, "monitoring/kafka/jmx-exporter.yaml")),
              "monitoring/kafka/jmx-exporter.yaml (the agent's rules) exists",
              "monitoring/kafka/jmx-exporter.yaml (the agent's rules) is missing")


def main() -> int:
    chk = Checker()
    check_main_dockerfile(chk)
    check_kafka_dockerfile(chk)
    return chk.finish("the Dockerfiles")


if __name__ == "__main__":
    sys.exit(main())
