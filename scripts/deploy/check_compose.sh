#!/usr/bin/env bash
# Validates the container deployment: docker-compose.yaml, the Dockerfiles, the RabbitMQ definitions
# and the secured configuration's contract. Offline except for one real check against the locally
# running RabbitMQ.
#
#   scripts/deploy/check_compose.sh                 every check below; exit 1 on any finding
#   scripts/deploy/check_compose.sh --hash PASSWORD print a RabbitMQ password hash (salted SHA-256,
#                                                   rabbit_password_hashing_sha256)
#
# compose      `docker-compose config -q` (the Compose schema, strict: an unknown key fails); no
#              obsolete `version:`; every build context/Dockerfile/target and every bind-mounted file
#              exists; third-party images pinned (a tag, never :latest); our images carry the contract's
#              names (api-kafka:latest, api-rabbitmq:latest, pix-pubsub:latest, pix-kafka:3.9.1); every
#              long-running service has a healthcheck (one-shots: restart "no"), every depends_on waits
#              for health or completion; published ports are the contract's and bound to 127.0.0.1;
#              probes hit /readyz on the service's own port; Prometheus targets name compose services
#              and ports; every ${VAR} is listed in .env.example, and none is a credential.
# secure       scripts/deploy/secure_contract.py compose, against a fresh run of dev_secrets.sh in a
#              temporary directory: every secret file is one dev_secrets.sh makes, every PIX_*_FILE and
#              /run/secrets path is a secret mounted in that service, every Kafka principal has SCRAM
#              credentials in the broker's setup and is one of pix_acls' principals, every RabbitMQ
#              user of a URL has permissions in definitions.template.json, no plaintext listener nor
#              amqp:// URL, the APIs on HTTPS with --auth jwt, healthchecks over https with the CA,
#              the saga's decision keys (antifraud and settlement sign with their own, settlement and
#              notifier trust the upstream stage's, each mounted only where it is used, no
#              --allow-unsigned) (its docstring lists every rule); then the unit tests of scripts/deploy/*.py
#              (test_*.py, unittest).
# dockerfiles  Dockerfile and deploy/images/kafka/Dockerfile: `# syntax=docker/dockerfile:1`; the
#              targets api-kafka, api-rabbitmq and pix (last); final stages run as a numeric non-root
#              USER; no remote ADD without --checksum; base images pinned; every COPY source exists
#              and passes .dockerignore; the build targets are src/apps/* (pix-token, the host-side
#              development token issuer, may be left out); the runtime stage installs the Debian
#              package of every library the built binaries link (readelf + dpkg -S on build/release/src,
#              else build/debug/src with the sanitizer runtimes left out); OCI labels; the pix-api
#              stages' port, broker and HEALTHCHECK; pix-kafka-run's secured path.
# definitions  monitoring/rabbitmq/definitions.template.json: exactly dev_secrets.sh's users, no guest,
#              no password hashes (dev_secrets.sh adds them), tags and permissions as designed (the
#              secure profile's of scripts/local/rabbitmq.sh), topic permissions on `pix`; queues are
#              src/pix/domain/topics.hpp's.
#              Then the REAL check: in a throwaway vhost of the local RabbitMQ (management API
#              http://127.0.0.1:15672, guest/guest) import the exchanges, queues and bindings
#              (POST /api/definitions/<vhost>) and copies of the users (random passwords) with their
#              permissions and topic permissions, run `pix-admin topology --skip-kafka` as the
#              pix-admin copy and require success with the vhost unchanged (the definitions are exactly
#              what pix-admin declares); `pix-admin topology` as every other user must fail (no
#              configure); pix-api as api-rabbitmq and as notifier must publish
#              pix.notification.sent to `pix` (POST /rabbit -> 200, the message reaches the queue),
#              notifier must be refused pix.payment.requested (topic permission) and auditor any
#              publish. The vhost and the user copies are deleted on exit (trap). Neither `/` nor
#              guest is touched.
#
# Needs: docker-compose, python3 with PyYAML (Debian's /usr/bin/python3 + python3-yaml), curl,
# openssl, readelf/dpkg, built programs (build/release/src, else build/debug/src) and the local
# RabbitMQ of the plain profile (scripts/local/rabbitmq.sh start). Env: PIX_BIN_DIR (the programs),
# RABBITMQ_MGMT_URL (http://127.0.0.1:15672), RABBITMQ_AMQP_HOST (127.0.0.1), RABBITMQ_PORT (5672),
# RABBITMQ_CHECK_USER / RABBITMQ_CHECK_PASSWORD (guest / guest: management API only).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

root="$(pix_root)"
cd "$root"

PY=/usr/bin/python3
[[ -x "$PY" ]] || PY="$(command -v python3)"

# The checks themselves, in Python (stdlib + PyYAML), run as `"$PY" -c "$CHECKS_PY" SUBCOMMAND ...`.
# Subcommands: hash, compose, dockerfiles, defs-offline, defs-live VHOST PREFIX, cleanup VHOST PREFIX.
read -r -d '' CHECKS_PY <<'PYEOF' || true
import base64, hashlib, json, os, re, shlex, signal, socket, subprocess, sys, time
import urllib.error, urllib.parse, urllib.request

ROOT = os.getcwd()
failures = []


def ok(msg):
    print(f"    ok   {msg}")


def bad(msg):
    failures.append(msg)
    print(f"    FAIL {msg}", file=sys.stderr)


def check(cond, good, fail):
    if cond:
        ok(good)
    else:
        bad(fail)
    return cond


def finish(what):
    if failures:
        print(f"{len(failures)} problem(s) in {what}", file=sys.stderr)
        sys.exit(1)


def rel(p):
    return os.path.relpath(p, ROOT)


# ---- the contract ------------------------------------------------------------------------------
# The RabbitMQ users (scripts/deploy/dev_secrets.py's RABBIT_USERS) and their tags.
USER_TAGS = {"api-rabbitmq": [], "notifier": [], "auditor": [], "pix-admin": ["administrator"], "pix-tail": [],
             "monitoring": ["monitoring"], "bench": []}
# Container ports each compose service publishes (all on 127.0.0.1). kafka's 29092 is the EXTERNAL
# listener, published on ${PIX_KAFKA_HOST_PORT:-9092}; every other host port equals the container's.
PORTS = {
    "kafka": {29092}, "rabbitmq": {5671, 15671, 15692},
    "topology": set(), "api-kafka": {5000}, "api-rabbitmq": {5001},
    "antifraud": {9101}, "settlement": {9102}, "notifier": {9103}, "auditor": {9104},
    "pix-sim": set(),
    "prometheus": {9090}, "alertmanager": {9093}, "grafana": {3000},
    "otel-collector": {4317, 4318}, "jaeger": {16686},
}
# Ports other containers reach without publishing (Prometheus targets, OTLP into Jaeger).
INTERNAL_PORTS = {"kafka": {9092, 9093, 9404}, "otel-collector": {8888}, "jaeger": {4317, 4318, 13133}}
IMAGES = {  # image -> (build context, target)
    "api-kafka:latest": (".", "api-kafka"),
    "api-rabbitmq:latest": (".", "api-rabbitmq"),
    "pix-pubsub:latest": (".", "pix"),
    "pix-kafka:3.9.1": ("deploy/images/kafka", None),
}
# Long-running services whose image has no tool to run a healthcheck with, and why.
NO_HEALTHCHECK = {"otel-collector": "distroless image: no shell, no HTTP client"}
# Programs of src/apps that no image needs to carry: the development token issuer runs on the host
# (scripts/deploy/dev_secrets.sh, ./pix token).
HOST_ONLY_APPS = {"pix-token"}
SAGA = {"antifraud": "pix-antifraud", "settlement": "pix-settlement", "notifier": "pix-notifier",
        "auditor": "pix-auditor"}


def apps():
    d = os.path.join(ROOT, "src/apps")
    return sorted(a for a in os.listdir(d) if os.path.isfile(os.path.join(d, a, "main.cpp")))


def bin_dir():
    """The built programs: PIX_BIN_DIR, else build/release/src, else build/debug/src."""
    if os.environ.get("PIX_BIN_DIR"):
        return os.environ["PIX_BIN_DIR"]
    for preset in ("release", "debug"):
        d = os.path.join(ROOT, "build", preset, "src")
        if os.access(os.path.join(d, "pix-api"), os.X_OK):
            return d
    return os.path.join(ROOT, "build/release/src")


def topic_names():
    text = open(os.path.join(ROOT, "src/pix/domain/topics.hpp")).read()
    m = re.search(r"kTopicNames\s*=\s*\{(.*?)\};", text, re.S)
    return re.findall(r'"([^"]+)"', m.group(1)) if m else []


# ---- RabbitMQ password hashes ------------------------------------------------------------------
def rabbit_hash(password, salt=None):
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def rabbit_hash_matches(h, password):
    try:
        raw = base64.b64decode(h, validate=True)
    except ValueError:
        return False
    return len(raw) == 36 and rabbit_hash(password, raw[:4]) == h


# ---- compose -------------------------------------------------------------------------------------
def parse_port(p):
    """'127.0.0.1:5000:5000/tcp' or a long-syntax dict -> (host_ip, host_port, container_port)."""
    if isinstance(p, dict):
        return p.get("host_ip", ""), str(p.get("published", "")), int(p["target"])
    s = str(p).split("/")[0]
    parts = s.split(":")
    if len(parts) == 3:
        return parts[0], parts[1], int(parts[2])
    if len(parts) == 2:
        return "", parts[0], int(parts[1])
    return "", "", int(parts[0])


def healthcheck_text(hc):
    t = hc.get("test", [])
    return " ".join(t) if isinstance(t, list) else str(t)


def compose():
    import yaml
    raw_text = open("docker-compose.yaml").read()
    raw = yaml.safe_load(raw_text)
    check("version" not in raw, "no obsolete top-level `version:`", "docker-compose.yaml has a top-level `version:`")
    out = subprocess.run(["docker-compose", "-f", "docker-compose.yaml", "config"], capture_output=True, text=True)
    if out.returncode != 0:
        bad("docker-compose config failed: " + out.stderr.strip())
        return
    cfg = yaml.safe_load(out.stdout)
    services = cfg.get("services", {})
    raw_services = raw.get("services", {})

    check(set(services) == set(PORTS), f"services are the contract's: {', '.join(sorted(services))}",
          f"services {sorted(set(services) ^ set(PORTS))} differ from the contract (update docker-compose.yaml "
          f"or PORTS in this check)")
    declared_volumes = set((cfg.get("volumes") or {}).keys())

    for name, svc in sorted(services.items()):
        where = f"service {name}"
        image = svc.get("image", "")
        build = svc.get("build")
        # -- images and builds
        if build:
            ctx = build.get("context", ".")
            dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
            if check(os.path.isdir(ctx) and os.path.isfile(dockerfile),
                     f"{where}: builds {rel(dockerfile)}", f"{where}: build context/Dockerfile {dockerfile} missing"):
                stages = [s["name"] for s in dockerfile_stages(parse_dockerfile(dockerfile)) if s["name"]]
                target = build.get("target")
                if target:
                    check(target in stages, f"{where}: target {target} exists",
                          f"{where}: target {target} not a stage of {rel(dockerfile)} ({stages})")
                want = IMAGES.get(image)
                if want is None:
                    bad(f"{where}: built image {image!r} is not one of the contract's {sorted(IMAGES)}")
                else:
                    check(os.path.normpath(rel(ctx)) == os.path.normpath(want[0]) and target == want[1],
                          f"{where}: {image} = context {want[0]}, target {want[1] or '(last)'}",
                          f"{where}: {image} must be built from context {want[0]} target {want[1]}, "
                          f"not {rel(ctx)} target {target}")
        else:
            m = re.fullmatch(r"(?P<repo>[^:@]+(?::\d+/[^:@]+)?)(?::(?P<tag>[\w][\w.-]*))?(?:@sha256:[0-9a-f]{64})?", image)
            tag = m.group("tag") if m else None
            check(m is not None and ((tag and tag != "latest") or "@sha256:" in image),
                  f"{where}: third-party image {image} pinned", f"{where}: image {image!r} not pinned (tag, not :latest)")
        # -- healthchecks / one-shots
        restart = str(svc.get("restart", "no"))
        hc = svc.get("healthcheck")
        one_shot = restart == "no"
        if one_shot:
            ok(f"{where}: one-shot (restart: no)")
        elif hc and not hc.get("disable"):
            ok(f"{where}: healthcheck {healthcheck_text(hc)[:70]}")
        elif name in NO_HEALTHCHECK:
            ok(f"{where}: no healthcheck possible ({NO_HEALTHCHECK[name]})")
        else:
            bad(f"{where}: long-running (restart: {restart}) without a healthcheck")
        # -- depends_on
        for dep, cond in (svc.get("depends_on") or {}).items():
            c = cond.get("condition") if isinstance(cond, dict) else None
            target = services.get(dep, {})
            if c == "service_healthy":
                check(bool(target.get("healthcheck")), f"{where}: waits for {dep} healthy",
                      f"{where}: depends on {dep} healthy, but {dep} has no healthcheck")
            elif c == "service_completed_successfully":
                check(str(target.get("restart", "no")) == "no", f"{where}: waits for one-shot {dep} to complete",
                      f"{where}: waits for {dep} to complete, but {dep} is not a one-shot")
            else:
                bad(f"{where}: depends_on {dep} with condition {c!r} (want service_healthy / service_completed_successfully)")
        # -- ports
        published = [parse_port(p) for p in svc.get("ports", [])]
        targets = {t for _, _, t in published}
        check(targets == PORTS.get(name, set()), f"{where}: publishes {sorted(targets) or 'nothing'}",
              f"{where}: publishes container ports {sorted(targets)}, the contract says {sorted(PORTS.get(name, set()))}")
        for ip, hp, t in published:
            check(ip == "127.0.0.1", f"{where}: {hp}->{t} bound to 127.0.0.1", f"{where}: port {hp}->{t} bound to {ip or 'all interfaces'}")
            if name != "kafka":
                check(hp == str(t), f"{where}: host port {hp} = container port", f"{where}: host port {hp} != container port {t}")
        # -- volumes
        for v in svc.get("volumes", []):
            if isinstance(v, str):
                parts = v.split(":")
                src = parts[0]
                typ = "bind" if src.startswith(("/", ".")) else "volume"
            else:
                src, typ = v.get("source", ""), v.get("type", "volume")
            if typ == "bind":
                check(os.path.exists(src), f"{where}: mounts {rel(src)}", f"{where}: mounted host path {rel(src)} does not exist")
            elif src:
                check(src in declared_volumes, f"{where}: named volume {src}", f"{where}: volume {src} not declared")
        env = svc.get("environment") or {}
        # -- probes on our own services hit /readyz on their own port
        port = env.get("PIX_PORT") or env.get("PIX_ADMIN_PORT")
        if port and hc:
            check(f"127.0.0.1:{port}/readyz" in healthcheck_text(hc), f"{where}: probes /readyz on :{port}",
                  f"{where}: healthcheck does not GET http://127.0.0.1:{port}/readyz")
        if "PIX_KAFKA_BOOTSTRAP" in env:
            check(env["PIX_KAFKA_BOOTSTRAP"] == "kafka:9092", f"{where}: Kafka at kafka:9092",
                  f"{where}: PIX_KAFKA_BOOTSTRAP={env['PIX_KAFKA_BOOTSTRAP']}")
        # PIX_RABBIT_URL, PIX_KAFKA_*, secrets: the secure contract (secure_contract.py compose).
        if name in SAGA:
            cmd = svc.get("command") or []
            check(cmd[:1] == [SAGA[name]], f"{where}: runs {SAGA[name]}", f"{where}: command {cmd} should start with {SAGA[name]}")
            check(bool(env.get("PIX_INSTANCE_ID")), f"{where}: static membership id {env.get('PIX_INSTANCE_ID')}",
                  f"{where}: no PIX_INSTANCE_ID")
        for k in ("command",):
            cmd = svc.get(k)
            if isinstance(cmd, list) and cmd and cmd[0].startswith("pix-"):
                check(cmd[0] in apps(), f"{where}: {cmd[0]} is a program of src/apps", f"{where}: {cmd[0]} is not in src/apps")

    # -- specifics
    api = services.get("api-kafka", {}).get("environment", {})
    check(api.get("PIX_BROKER") == "kafka" and api.get("PIX_PORT") == "5000", "api-kafka: kafka on 5000", "api-kafka: want PIX_BROKER=kafka PIX_PORT=5000")
    api = services.get("api-rabbitmq", {}).get("environment", {})
    check(api.get("PIX_BROKER") == "rabbit" and api.get("PIX_PORT") == "5001", "api-rabbitmq: rabbit on 5001", "api-rabbitmq: want PIX_BROKER=rabbit PIX_PORT=5001")
    topo = services.get("topology", {})
    check((topo.get("command") or [])[:2] == ["pix-admin", "topology"], "topology: pix-admin topology", "topology: command must be pix-admin topology")
    sim = raw_services.get("pix-sim", {})
    check(sim.get("profiles") == ["sim"], "pix-sim: behind profile sim", "pix-sim: must be behind profile `sim` only")
    check("https://api-kafka:5000/kafka" in (services.get("pix-sim", {}).get("command") or []),
          "pix-sim: posts to https://api-kafka:5000/kafka", "pix-sim: must post to https://api-kafka:5000/kafka")
    kenv = services.get("kafka", {}).get("environment", {})
    kport = next((hp for _, hp, t in (parse_port(p) for p in services.get("kafka", {}).get("ports", [])) if t == 29092), None)
    check(f"EXTERNAL://localhost:{kport}" in kenv.get("KAFKA_ADVERTISED_LISTENERS", "") and "INTERNAL://kafka:9092" in kenv.get("KAFKA_ADVERTISED_LISTENERS", ""),
          f"kafka: advertises kafka:9092 inside and localhost:{kport} to the host",
          f"kafka: KAFKA_ADVERTISED_LISTENERS must be INTERNAL://kafka:9092 and EXTERNAL://localhost:{kport}")
    check(kenv.get("KAFKA_PROCESS_ROLES") == "broker,controller" and "KAFKA_ZOOKEEPER_CONNECT" not in kenv and kenv.get("CLUSTER_ID"),
          "kafka: KRaft combined mode with a fixed CLUSTER_ID", "kafka: want KRaft (broker,controller), CLUSTER_ID, no ZooKeeper")
    for k in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        check(kenv.get(k) == "1", f"kafka: {k}=1", f"kafka: {k} must be 1 on a single node")

    # -- Prometheus targets are compose services on ports they listen on
    prom_file = "monitoring/prometheus/prometheus.yml"
    if os.path.isfile(prom_file):
        prom = yaml.safe_load(open(prom_file))
        for job in prom.get("scrape_configs", []):
            for sc in job.get("static_configs", []):
                for t in sc.get("targets", []):
                    host, _, port = t.rpartition(":")
                    if host == "localhost":
                        continue
                    known = host in PORTS and (int(port) in PORTS[host] | INTERNAL_PORTS.get(host, set()))
                    check(known, f"prometheus job {job['job_name']}: {t} is a compose service port",
                          f"prometheus job {job['job_name']}: target {t} is not a port of a compose service")
    else:
        bad(f"{prom_file} missing")

    # -- every ${VAR} has a line in .env.example
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", raw_text))  # $${...} is a literal $
    listed = set()
    if os.path.isfile(".env.example"):
        listed = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", open(".env.example").read(), re.M))
    check(used <= listed, f".env.example lists {', '.join(sorted(used))}", f".env.example lacks {sorted(used - listed)}")
    # -- no credential is a variable: they are files (compose secrets)
    creds = sorted(v for v in used if re.search(r"PASSWORD|TOKEN|SECRET(?!S_DIR)|_KEY$", v))
    check(not creds, "no ${VAR} is a credential (they are compose secrets)", f"docker-compose.yaml takes credentials from variables: {creds}")
    finish("docker-compose.yaml")


# ---- Dockerfiles ---------------------------------------------------------------------------------
def parse_dockerfile(path):
    """[(instruction, rest, lineno)] with continuations joined and comments dropped."""
    out, buf, start = [], "", 0
    for i, line in enumerate(open(path).read().splitlines(), 1):
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
    words = shlex.split(rest) if not rest.startswith("[") else json.loads(rest)
    flags = {}
    while words and words[0].startswith("--"):
        k, _, v = words.pop(0)[2:].partition("=")
        flags[k] = v
    return flags, words


def dockerignore(ctx):
    pats = []
    f = os.path.join(ctx, ".dockerignore")
    if os.path.isfile(f):
        for line in open(f).read().splitlines():
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
    p = os.path.join(ctx, src)
    import glob
    hits = glob.glob(p)
    out = []
    for h in hits:
        if os.path.isdir(h):
            for d, _, fs in os.walk(h):
                out += [os.path.relpath(os.path.join(d, f), ctx) for f in fs]
        else:
            out.append(os.path.relpath(h, ctx))
    return out


def lint_dockerfile(path, ctx, want_targets, numeric_user):
    where = rel(path)
    first = open(path).readline().strip()
    check(first == "# syntax=docker/dockerfile:1", f"{where}: # syntax=docker/dockerfile:1", f"{where}: first line must be `# syntax=docker/dockerfile:1`")
    instrs = parse_dockerfile(path)
    stages = dockerfile_stages(instrs)
    names = [s["name"] for s in stages]
    args = {}
    for ins, rest, _ in instrs:
        if ins == "ARG" and "=" in rest:
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip().strip('"')
    expand = lambda s: re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), s)
    for t in want_targets:
        check(t in names, f"{where}: target {t}", f"{where}: no stage named {t}")
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
            check(u is not None and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", u) is not None,
                  f"{where}: {label} runs as numeric non-root USER {u}", f"{where}: {label} USER {u!r} is not a numeric non-root uid[:gid]")
        else:
            check(u is None or u.split(":")[0] not in ("root", "0"), f"{where}: {label} keeps the base image's non-root user" if u is None else f"{where}: {label} USER {u}",
                  f"{where}: {label} runs as root")
    for st in stages:
        base = expand(st["base"])
        if base in by_name or base == "scratch":
            continue
        m = re.fullmatch(r"[^:@]+:([\w][\w.-]*)(@sha256:[0-9a-f]{64})?", base)
        check(m is not None and m.group(1) != "latest", f"{where}: FROM {base} pinned", f"{where}:{st['line']}: FROM {base} is not pinned to a tag")
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
                check(ins == "ADD" and re.fullmatch(r"sha256:[0-9a-f]{64}", flags.get("checksum", "")) is not None,
                      f"{where}:{ln}: remote {s.rsplit('/', 1)[-1]} pinned by --checksum",
                      f"{where}:{ln}: remote source {s} without ADD --checksum=sha256:...")
                continue
            files = files_under(ctx, s)
            if not files:
                bad(f"{where}:{ln}: {ins} source {s} does not exist in context {rel(ctx)}")
                continue
            dropped = [f for f in files if ignored(pats, f)]
            check(not dropped, f"{where}:{ln}: {ins} {s} ({len(files)} file(s)) passes .dockerignore",
                  f"{where}:{ln}: {ins} {s}: .dockerignore excludes {dropped[:5]}")
        if ins == "ADD" and not any(re.match(r"https?://", expand(s)) for s in srcs):
            bad(f"{where}:{ln}: ADD of local files: use COPY")
    for ins, rest, ln in instrs:
        if ins == "RUN" and "apt-get install" in rest:
            check("--no-install-recommends" in rest, f"{where}:{ln}: apt-get install --no-install-recommends",
                  f"{where}:{ln}: apt-get install without --no-install-recommends")
    return instrs, stages, by_name, expand


def stage_env(stage, by_name):
    env = {}
    parent = by_name.get(stage["base"])
    if parent:
        env.update(stage_env(parent, by_name))
    for ins, rest, _ in stage["instrs"]:
        if ins == "ENV":
            for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                env[k] = v.strip('"')
    return env


def dockerfiles():
    instrs, stages, by_name, expand = lint_dockerfile(os.path.join(ROOT, "Dockerfile"), ROOT, ["api-kafka", "api-rabbitmq", "pix"], True)
    check(stages and stages[-1]["name"] == "pix", "Dockerfile: `pix` is the last (default) stage", "Dockerfile: the last stage must be `pix`")
    text = open("Dockerfile").read()
    for key in ("title", "description", "version", "revision", "created", "source"):
        check(f"org.opencontainers.image.{key}=" in text, f"Dockerfile: label org.opencontainers.image.{key}",
              f"Dockerfile: missing label org.opencontainers.image.{key}")
    runtime_env = stage_env(by_name.get("pix", {"base": "", "instrs": []}), by_name)
    for k, v in (("PIX_LISTEN", "0.0.0.0"), ("PIX_ADMIN_LISTEN", "0.0.0.0"), ("PIX_LOG_FORMAT", "json")):
        check(runtime_env.get(k) == v, f"Dockerfile: ENV {k}={v}", f"Dockerfile: the runtime stage must set {k}={v}")
    for t, broker, port in (("api-kafka", "kafka", "5000"), ("api-rabbitmq", "rabbit", "5001")):
        st = by_name.get(t)
        if not st:
            continue
        env = stage_env(st, by_name)
        ins = {i: r for i, r, _ in st["instrs"]}
        check(env.get("PIX_BROKER") == broker and env.get("PIX_PORT") == port and port in ins.get("EXPOSE", "").split(),
              f"Dockerfile: {t} = PIX_BROKER={broker}, port {port}", f"Dockerfile: {t} needs PIX_BROKER={broker}, PIX_PORT={port}, EXPOSE {port}")
        check("pix-api" in ins.get("ENTRYPOINT", ""), f"Dockerfile: {t} runs pix-api", f"Dockerfile: {t} ENTRYPOINT must be pix-api")
        check("/healthz" in ins.get("HEALTHCHECK", ""), f"Dockerfile: {t} HEALTHCHECK on /healthz", f"Dockerfile: {t} needs a HEALTHCHECK on /healthz")
    # every source file the release configure and build read is copied into the build stage
    pats = dockerignore(ROOT)
    copied = set()
    for ins, rest, _ in (build["instrs"] if (build := by_name.get("build")) else []):
        if ins == "COPY":
            flags, words = split_flags(rest)
            if "from" not in flags:
                for src in words[:-1]:
                    copied |= {f for f in files_under(ROOT, expand(src)) if not ignored(pats, f)}
    needed_src = {"CMakeLists.txt", "CMakePresets.json"}
    for top in ("cmake", "src", "bench"):
        needed_src |= {f for f in files_under(ROOT, top)
                       if re.search(r"(^|/)CMakeLists\.txt$|\.(cmake|cpp|hpp|h)$", f)}
    missing_src = sorted(needed_src - copied)
    check(not missing_src, f"Dockerfile: the build stage gets all {len(needed_src)} CMake/C++ files of cmake/, src/, bench/",
          f"Dockerfile: the build stage does not get {missing_src[:8]} (COPY them, and let them pass .dockerignore)")
    # the build targets and the installed binaries are exactly src/apps/*
    build = by_name.get("build")
    run_text = " ".join(r for i, r, _ in (build["instrs"] if build else []) if i == "RUN")
    m = re.search(r"--target\s+((?:pix-[\w-]+\s*)+)", run_text)
    targets = sorted(m.group(1).split()) if m else []
    installed = sorted(set(re.findall(r"build/release/src/(pix-[\w-]+)", run_text)))
    image_apps = [a for a in apps() if a not in HOST_ONLY_APPS]
    check(set(image_apps) <= set(targets) <= set(apps()) and set(targets) == set(installed),
          f"Dockerfile: builds and installs {', '.join(targets)} (of src/apps; host-only: {', '.join(sorted(HOST_ONLY_APPS))})",
          f"Dockerfile: targets {targets} / installed {installed} must be src/apps {image_apps} (plus, optionally, {sorted(HOST_ONLY_APPS)})")
    check("--preset release" in run_text, "Dockerfile: configures with cmake --preset release", "Dockerfile: use cmake --preset release")
    # runtime packages = the Debian packages of the libraries the binaries link
    runtime = by_name.get("runtime")
    rt_run = " ".join(r for i, r, _ in (runtime["instrs"] if runtime else []) if i == "RUN")
    m = re.search(r"apt-get install -y --no-install-recommends (.*?)(?:&&|$)", rt_run)
    listed = set(m.group(1).split()) if m else set()
    for p in ("ca-certificates", "tzdata", "curl"):
        check(p in listed, f"Dockerfile: runtime installs {p}", f"Dockerfile: runtime must install {p}")
    bindir = bin_dir()
    # A debug build links the sanitizer runtimes, which the release preset of the image does not.
    sanitizers = re.compile(r"^lib(asan|ubsan|lsan|tsan|hwasan)\.so") if bindir.endswith("debug/src") else None
    bins = [os.path.join(bindir, a) for a in targets if os.path.isfile(os.path.join(bindir, a))]
    if not targets or len(bins) != len(targets):
        bad(f"Dockerfile: cannot check the runtime libraries: {rel(bindir)} lacks some of {targets} (scripts/local/build.sh release)")
    else:
        if sanitizers:
            ok(f"Dockerfile: runtime libraries read from the debug build {rel(bindir)} (sanitizer runtimes left out)")
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
                bad(f"Dockerfile: no Debian package owns {so} ({path})")
            else:
                pkgs[so] = pkg
        want = set(pkgs.values()) - {"libc6"}  # libc6 is in every Debian image
        check(want <= listed, f"Dockerfile: runtime installs the packages of every linked library ({', '.join(sorted(want))})",
              f"Dockerfile: runtime lacks {sorted(want - listed)} (linked: {pkgs})")
        extra = {p for p in listed if p.startswith("lib")} - want
        check(not extra, "Dockerfile: runtime installs no library nothing links", f"Dockerfile: runtime installs unused libraries {sorted(extra)}")

    # deploy/images/kafka
    kdir = os.path.join(ROOT, "deploy/images/kafka")
    kinstrs, kstages, _, kexpand = lint_dockerfile(os.path.join(kdir, "Dockerfile"), kdir, [], False)
    check(kstages and kexpand(kstages[0]["base"]) == "apache/kafka:3.9.1", "deploy/images/kafka: FROM apache/kafka:3.9.1",
          "deploy/images/kafka: must be FROM apache/kafka:3.9.1")
    adds = [(split_flags(r), ln) for i, r, ln in kinstrs if i == "ADD"]
    jar = [(f, w) for (f, w), _ in adds if any("jmx_prometheus_javaagent" in kexpand(x) for x in w[:-1])]
    check(len(jar) == 1 and re.search(r"repo1\.maven\.org/maven2/io/prometheus/jmx/jmx_prometheus_javaagent/", kexpand(jar[0][1][0])),
          "deploy/images/kafka: jmx_prometheus_javaagent from Maven Central", "deploy/images/kafka: ADD the jmx_prometheus_javaagent jar from Maven Central")
    ktext = open(os.path.join(kdir, "Dockerfile")).read()
    run = open(os.path.join(kdir, "pix-kafka-run.sh")).read() if os.path.isfile(os.path.join(kdir, "pix-kafka-run.sh")) else ""
    check("-javaagent:" in run and "KAFKA_OPTS" in run and "pix-kafka-run" in ktext and "9404" in ktext,
          "deploy/images/kafka: pix-kafka-run puts -javaagent (port 9404) into the broker's KAFKA_OPTS",
          "deploy/images/kafka: the javaagent must be added to KAFKA_OPTS by pix-kafka-run (port 9404)")
    check(all(x in run for x in ("PIX_KAFKA_SCRAM_USERS", "kafka-storage.sh format", "--add-scram", "--ignore-formatted",
                                 "kafka-server-start.sh")),
          "deploy/images/kafka: pix-kafka-run's secured path formats the storage with SCRAM users, then starts the broker",
          "deploy/images/kafka: pix-kafka-run must format the storage with --add-scram (PIX_KAFKA_SCRAM_USERS) when secured")
    check(not re.search(r"^ENV\s+KAFKA_OPTS", ktext, re.M), "deploy/images/kafka: no KAFKA_OPTS in the image env (CLI tools stay agent-free)",
          "deploy/images/kafka: KAFKA_OPTS with the agent in ENV breaks every Kafka CLI tool in the container (port 9404 taken)")
    check(os.path.isfile("monitoring/kafka/jmx-exporter.yaml"), "monitoring/kafka/jmx-exporter.yaml (the agent's rules) exists",
          "monitoring/kafka/jmx-exporter.yaml (the agent's rules) is missing")
    finish("the Dockerfiles")


# ---- definitions.template.json -----------------------------------------------------------------------
def load_defs():
    return json.load(open("monitoring/rabbitmq/definitions.template.json"))


# The routing keys of the five PIX topics, as the secure profile's topic permissions write them.
PIX_KEYS_RE = r"^pix\.(payment\.(requested|validated|settled)|notification\.sent|audit\.log)$"


def defs_offline():
    d = load_defs()
    users = {u["name"]: u for u in d.get("users", [])}
    check(set(users) == set(USER_TAGS), f"users {', '.join(sorted(users))} (no guest)",
          f"users {sorted(users)} must be exactly {sorted(USER_TAGS)} (dev_secrets.py RABBIT_USERS)")
    for name, u in sorted(users.items()):
        check("password_hash" not in u and "password" not in u, f"{name}: no password in the template (dev_secrets.sh adds the hash)",
              f"{name}: the template must hold no password or hash: dev_secrets.sh renders them from the password files")
        tags = u.get("tags")
        tags = tags.split(",") if isinstance(tags, str) else tags or []
        check(sorted(t for t in tags if t) == USER_TAGS.get(name), f"{name}: tags {USER_TAGS.get(name)}",
              f"{name}: tags {tags}, want {USER_TAGS.get(name)}")
    check(sorted(v["name"] for v in d.get("vhosts", [])) == ["/", "pix-bench"], "vhosts / and pix-bench",
          "vhosts must be exactly [/, pix-bench] (bench has a vhost of its own)")
    topics = topic_names()
    check(len(topics) == 5, f"topics.hpp: {', '.join(topics)}", "cannot read kTopicNames from src/pix/domain/topics.hpp")
    objects = ["pix", "pix.unrouted", "pix.dlx", "pix.dead-letter", "amq.gen-Xyz"] + topics
    perms = {(p["user"], p["vhost"]): p for p in d.get("permissions", [])}

    def allowed(user, vhost, kind):
        p = perms.get((user, vhost), {}).get(kind, "")
        return {o for o in objects if p and re.search(p, o)}
    every = set(objects)
    # The secure profile's permissions (scripts/local/rabbitmq.sh): objects each user may configure,
    # write and read on `/` (amq.gen-*: server-named queues, what pix-tail binds).
    want = {
        "api-rabbitmq": (set(), {"pix"}, set()),
        "notifier": (set(), {"pix"}, set()),
        "auditor": (set(), set(), {"pix.notification.sent"}),
        "pix-admin": (every, every, every),
        "pix-tail": ({"amq.gen-Xyz"}, {"amq.gen-Xyz"}, {"pix", "amq.gen-Xyz"}),
        "monitoring": None,
        "bench": None,
    }
    for user, w in sorted(want.items()):
        if w is None:
            check((user, "/") not in perms, f"{user}: no permissions on /", f"{user}: must have no permissions on /")
            continue
        for kind, objs in zip(("configure", "write", "read"), w):
            got = allowed(user, "/", kind)
            check(got == objs, f"{user}: {kind} on {sorted(got) or 'nothing'}", f"{user}: {kind} permission covers {sorted(got)}, want {sorted(objs)}")
    for user in ("pix-admin", "bench"):
        p = perms.get((user, "pix-bench"), {})
        check(all(p.get(k) == ".*" for k in ("configure", "write", "read")), f"{user}: everything on vhost pix-bench",
              f"{user}: needs .* on vhost pix-bench")
    check(set(perms) == {(u, "/") for u, w in want.items() if w} | {("pix-admin", "pix-bench"), ("bench", "pix-bench")},
          "no other permissions", f"unexpected permissions {sorted(set(perms))}")
    tps = {(t["user"], t["vhost"], t["exchange"]): t for t in d.get("topic_permissions", [])}
    keys = topics + ["pix.other", "amq.x"]

    def keys_of(user, kind):
        p = (tps.get((user, "/", "pix")) or {}).get(kind)
        return None if p is None else {k for k in keys if re.search(p, k)}
    want_tp = {"api-rabbitmq": (set(topics), set()), "notifier": ({"pix.notification.sent"}, set()),
               "pix-tail": (set(), set(topics))}
    for user, (w, r) in sorted(want_tp.items()):
        check(keys_of(user, "write") == w and keys_of(user, "read") == r,
              f"{user}: topic permissions on pix: write {sorted(w) or 'nothing'}, read {sorted(r) or 'nothing'}",
              f"{user}: topic permissions on pix write {keys_of(user, 'write')}, read {keys_of(user, 'read')}; want {sorted(w)}, {sorted(r)}")
    check(set(tps) == {(u, "/", "pix") for u in want_tp}, "no other topic permissions", f"unexpected topic permissions {sorted(tps)}")
    qnames = {q["name"] for q in d.get("queues", [])}
    check(qnames == set(topics) | {"pix.unrouted", "pix.dead-letter"}, f"queues: the five topics + pix.unrouted + pix.dead-letter",
          f"queues {sorted(qnames)} differ from the five topics + pix.unrouted + pix.dead-letter")
    for kind in ("exchanges", "queues", "bindings"):
        check(all(o.get("vhost") == "/" for o in d.get(kind, [])), f"{kind} in vhost /", f"{kind} must all be in vhost /")
    finish("definitions.template.json (offline)")


class Mgmt:
    def __init__(self):
        self.base = os.environ.get("RABBITMQ_MGMT_URL", "http://127.0.0.1:15672").rstrip("/")
        user = os.environ.get("RABBITMQ_CHECK_USER", "guest")
        pw = os.environ.get("RABBITMQ_CHECK_PASSWORD", "guest")
        self.auth = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()

    def call(self, method, path, body=None, ok_codes=(200, 201, 204)):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": self.auth, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                code, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            code, text = e.code, e.read().decode(errors="replace")
        if code not in ok_codes:
            raise RuntimeError(f"{method} {path}: HTTP {code} {text[:300]}")
        return json.loads(text) if text.strip() else None


def q(s):
    return urllib.parse.quote(s, safe="")


def snapshot(m, vhost):
    ex = sorted((e["name"], e["type"], e["durable"], e["auto_delete"], e["internal"], json.dumps(e["arguments"], sort_keys=True))
                for e in m.call("GET", f"/api/exchanges/{q(vhost)}") if e["name"] and not e["name"].startswith("amq."))
    qs = sorted((x["name"], x["durable"], x["auto_delete"], json.dumps(x["arguments"], sort_keys=True))
                for x in m.call("GET", f"/api/queues/{q(vhost)}"))
    bs = sorted((b["source"], b["destination"], b["destination_type"], b["routing_key"], json.dumps(b["arguments"], sort_keys=True))
                for b in m.call("GET", f"/api/bindings/{q(vhost)}") if b["source"])
    return {"exchanges": ex, "queues": qs, "bindings": bs}


def from_defs(d):
    return {
        "exchanges": sorted((e["name"], e["type"], e["durable"], e["auto_delete"], e["internal"], json.dumps(e["arguments"], sort_keys=True)) for e in d["exchanges"]),
        "queues": sorted((x["name"], x["durable"], x["auto_delete"], json.dumps(x["arguments"], sort_keys=True)) for x in d["queues"]),
        "bindings": sorted((b["source"], b["destination"], b["destination_type"], b["routing_key"], json.dumps(b["arguments"], sort_keys=True)) for b in d["bindings"]),
    }


def diff(a, b):
    out = []
    for k in a:
        for x in sorted(set(a[k]) - set(b[k])):
            out.append(f"- {k[:-1]} {x}")
        for x in sorted(set(b[k]) - set(a[k])):
            out.append(f"+ {k[:-1]} {x}")
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(method, url, body=None, timeout=5):
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def cleanup(m, vhost, prefix):
    m.call("DELETE", f"/api/vhosts/{q(vhost)}", ok_codes=(200, 204, 404))
    for name in USER_TAGS:
        m.call("DELETE", f"/api/users/{q(prefix + name)}", ok_codes=(200, 204, 404))


def start_api(api_bin, url):
    """pix-api --broker rabbit on a free port (plain HTTP, no auth: this checks the broker side);
    returns (process, port, last /readyz code)."""
    p = free_port()
    env = dict(os.environ, PIX_LOG_FORMAT="text", PIX_LOG_LEVEL="warn")
    for k in [k for k in env if k.startswith(("PIX_RABBIT_", "PIX_TLS_", "PIX_AUTH", "PIX_JWKS"))]:
        env.pop(k)
    proc = subprocess.Popen([api_bin, "--broker", "rabbit", "--listen", "127.0.0.1", "--port", str(p),
                             "--rabbit-url", url, "--exchange", "pix"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 30
    code = 0
    while time.time() < deadline and proc.poll() is None:
        code, _ = http("GET", f"http://127.0.0.1:{p}/readyz", timeout=2)
        if code == 200:
            break
        time.sleep(0.3)
    return proc, p, code


def stop(proc):
    proc.terminate()
    try:
        return proc.communicate(timeout=20)[0] or ""
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0] or ""


def defs_live(vhost, prefix):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    m = Mgmt()
    try:
        ov = m.call("GET", "/api/overview")
    except Exception as e:  # noqa: BLE001 - any failure here means "not reachable"
        print(f"ERR the local RabbitMQ management API is not reachable at {m.base} ({e}).\n"
              f"    Start the brokers first (scripts/local/brokers.sh start, or scripts/local/rabbitmq.sh start).",
              file=sys.stderr)
        sys.exit(2)
    ok(f"RabbitMQ {ov.get('rabbitmq_version')} management API at {m.base}")
    bindir = bin_dir()
    admin_bin, api_bin = os.path.join(bindir, "pix-admin"), os.path.join(bindir, "pix-api")
    for b in (admin_bin, api_bin):
        if not os.access(b, os.X_OK):
            print(f"ERR {rel(b)} is missing: build first (scripts/local/build.sh release)", file=sys.stderr)
            sys.exit(2)
    host = os.environ.get("RABBITMQ_AMQP_HOST", "127.0.0.1")
    port = int(os.environ.get("RABBITMQ_PORT", "5672"))
    d = load_defs()
    procs = []
    passwords = {u["name"]: os.urandom(16).hex() for u in d["users"]}
    try:
        m.call("PUT", f"/api/vhosts/{q(vhost)}", {"description": "scripts/deploy/check_compose.sh (temporary)"})
        ok(f"throwaway vhost {vhost}")
        # users: copies named <prefix><user> with fresh random passwords, the template's tags, and its
        # permissions and topic permissions on `/`, moved to the throwaway vhost
        users = [dict(u, name=prefix + u["name"], password_hash=rabbit_hash(passwords[u["name"]]),
                      hashing_algorithm="rabbit_password_hashing_sha256") for u in d["users"]]
        perms = [dict(p, user=prefix + p["user"], vhost=vhost) for p in d["permissions"] if p["vhost"] == "/"]
        tperms = [dict(t, user=prefix + t["user"], vhost=vhost) for t in d.get("topic_permissions", []) if t["vhost"] == "/"]
        m.call("POST", "/api/definitions", {"users": users, "permissions": perms, "topic_permissions": tperms})
        ok(f"imported {len(users)} user copies ({prefix}*) with {len(perms)} permissions and {len(tperms)} topic "
           f"permissions on {vhost}")
        strip = lambda objs: [{k: v for k, v in o.items() if k != "vhost"} for o in objs]
        m.call("POST", f"/api/definitions/{q(vhost)}",
               {"exchanges": strip(d["exchanges"]), "queues": strip(d["queues"]), "bindings": strip(d["bindings"])})
        imported = snapshot(m, vhost)
        dd = diff(from_defs(d), imported)
        check(not dd, f"POST /api/definitions/{vhost}: {len(imported['exchanges'])} exchanges, {len(imported['queues'])} queues, "
              f"{len(imported['bindings'])} bindings as in the template", "the import differs from the template:\n      " + "\n      ".join(dd))

        def url(user):
            return f"amqp://{q(prefix + user)}:{q(passwords[user])}@{host}:{port}/{q(vhost)}"

        def topology(user):
            return subprocess.run([admin_bin, "topology", "--skip-kafka", "--rabbit-url", url(user)],
                                  capture_output=True, text=True, timeout=60)

        r = topology("pix-admin")
        check(r.returncode == 0, f"pix-admin topology --skip-kafka as {prefix}pix-admin: success (no PRECONDITION_FAILED)",
              f"pix-admin topology against the imported definitions failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
        after = snapshot(m, vhost)
        dd = diff(imported, after)
        check(not dd, "pix-admin topology added and changed nothing: the template is exactly its topology",
              "pix-admin topology declared what the template lacks:\n      " + "\n      ".join(dd))
        for user in sorted(u for u in USER_TAGS if u != "pix-admin"):
            r = topology(user)
            check(r.returncode != 0, f"{user} may not declare the topology (no configure permission)",
                  f"{user} could run pix-admin topology (exit {r.returncode}): it must have no configure permission")
        # publish through pix-api: allowed for api-rabbitmq and notifier, refused where the
        # (topic) permissions say so
        def body(topic):
            return json.dumps({"topic": topic, "value": {"transactionId": "defs-check", "status": "notified",
                                                         "amount": 1, "payer": "a", "receiver": "b"}}).encode()
        published = 0
        for user, topic, allowed in (("api-rabbitmq", "pix.notification.sent", True), ("notifier", "pix.notification.sent", True),
                                     ("notifier", "pix.payment.requested", False), ("auditor", "pix.notification.sent", False)):
            proc, p, code = start_api(api_bin, url(user))
            procs.append(proc)
            if allowed and not check(code == 200, f"pix-api as {user}: /readyz 200", f"pix-api as {user} never became ready (last /readyz {code})"):
                print(stop(proc)[-2000:], file=sys.stderr)
                continue
            code, text = http("POST", f"http://127.0.0.1:{p}/rabbit", body(topic), timeout=15) if code == 200 else (code, "not ready")
            if allowed:
                if check(code == 200, f"pix-api as {user}: POST /rabbit {topic} -> 200", f"pix-api as {user}: POST /rabbit {topic} -> {code} {text[:200]}"):
                    published += 1
            else:
                check(code != 200, f"pix-api as {user}: {topic} refused ({code})",
                      f"pix-api as {user} could publish {topic}: its permissions must refuse it")
            stop(proc)
        # the messages reached pix.notification.sent, nothing reached pix.payment.requested (stats lag)
        deadline, n = time.time() + 20, -1
        while time.time() < deadline:
            n = m.call("GET", f"/api/queues/{q(vhost)}/{q('pix.notification.sent')}").get("messages")
            if n == published:
                break
            time.sleep(1)
        check(n == published and published == 2, f"pix.notification.sent holds the {published} published message(s)",
              f"pix.notification.sent holds {n} message(s), {published} were published")
        n = m.call("GET", f"/api/queues/{q(vhost)}/{q('pix.payment.requested')}").get("messages")
        check(not n, "pix.payment.requested got nothing from the refused publish", f"pix.payment.requested holds {n} message(s)")
    except RuntimeError as e:
        bad(str(e))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        try:
            cleanup(m, vhost, prefix)
            ok(f"deleted vhost {vhost} and the user copies")
        except Exception as e:  # noqa: BLE001
            bad(f"cleanup of {vhost}: {e}")
    finish("definitions.template.json (live)")


cmd = sys.argv[1]
if cmd == "hash":
    print(rabbit_hash(sys.argv[2]))
elif cmd == "compose":
    compose()
elif cmd == "dockerfiles":
    dockerfiles()
elif cmd == "defs-offline":
    defs_offline()
elif cmd == "defs-live":
    defs_live(sys.argv[2], sys.argv[3])
elif cmd == "cleanup":
    try:
        cleanup(Mgmt(), sys.argv[2], sys.argv[3])
    except Exception:  # noqa: BLE001 - best effort, the main path reports
        pass
else:
    sys.exit(f"unknown subcommand {cmd}")
PYEOF

checks_py() { "$PY" -c "$CHECKS_PY" "$@"; }

case "${1:-}" in
    -h | --help)
        pix_usage "${BASH_SOURCE[0]}"
        exit 0
        ;;
    --hash)
        [[ $# -eq 2 ]] || die "usage: $0 --hash PASSWORD"
        checks_py hash "$2"
        exit 0
        ;;
    "") ;;
    *) die "usage: $0 [--hash PASSWORD]" ;;
esac

command -v docker-compose >/dev/null 2>&1 || die "docker-compose not found (scripts/local/deps.sh installs it)"
"$PY" -c 'import yaml' 2>/dev/null || die "$PY has no PyYAML (apt-get install python3-yaml)"

start="$(now_us)"
failed=()

step "compose: docker-compose -f docker-compose.yaml config -q (Compose schema, strict)"
if docker-compose -f docker-compose.yaml config -q; then
    ok "docker-compose.yaml is valid"
else
    failed+=("compose schema")
fi

step "compose: contract (builds, mounts, images, healthchecks, depends_on, ports, credentials)"
checks_py compose || failed+=("compose contract")

step "secure contract: docker-compose.yaml against a fresh dev_secrets.sh run (secure_contract.py compose)"
PYTHONDONTWRITEBYTECODE=1 "$PY" scripts/deploy/secure_contract.py compose || failed+=("secure contract")

step "unit tests of scripts/deploy/*.py (test_*.py)"
if PYTHONDONTWRITEBYTECODE=1 "$PY" -m unittest discover -s scripts/deploy -p 'test_*.py' 2>&1 | sed 's/^/    /'; then
    ok "scripts/deploy unit tests pass"
else
    failed+=("scripts/deploy unit tests")
fi

step "Dockerfiles: Dockerfile, deploy/images/kafka/Dockerfile"
checks_py dockerfiles || failed+=("dockerfiles")

step "definitions.template.json: users, permissions, topic permissions, topology (offline)"
checks_py defs-offline || failed+=("definitions offline")

vhost="pix-defs-check-$$"
prefix="$vhost."
live_pid=""
# The live check runs in the background so that a signal reaches this shell at once; it is passed
# on to the check (which deletes what it created), and the EXIT trap deletes it again (idempotent).
cleanup_live() {
    if [[ -n "$live_pid" ]] && kill -0 "$live_pid" 2>/dev/null; then
        kill -TERM "$live_pid" 2>/dev/null || true
        wait "$live_pid" 2>/dev/null || true
    fi
    checks_py cleanup "$vhost" "$prefix" || true
}
trap cleanup_live EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "definitions.template.json: import into vhost $vhost of the local RabbitMQ, then pix-admin topology and pix-api"
rc=0
"$PY" -c "$CHECKS_PY" defs-live "$vhost" "$prefix" &
live_pid=$!
wait "$live_pid" || rc=$?
live_pid=""
if ((rc == 2)); then
    die "the live definitions check needs the local RabbitMQ (management on ${RABBITMQ_MGMT_URL:-http://127.0.0.1:15672}) and built programs"
elif ((rc != 0)); then
    failed+=("definitions live")
fi

if ((${#failed[@]})); then
    die "check_compose: ${#failed[@]} check(s) failed: ${failed[*]} ($(elapsed_since "$start")s)"
fi
ok "compose, Dockerfiles and RabbitMQ definitions: all checks passed ($(elapsed_since "$start")s)"
