"""docker-compose.yaml against the project's contract (check_compose.sh's `compose` step; the
Compose schema itself is `docker-compose config -q`, the secured configuration secure_contract.py's).

No obsolete `version:`; the services are the contract's; every build context/Dockerfile/target exists
and our images carry the contract's names; third-party images pinned (a tag, never :latest); every
long-running service has a healthcheck (one-shots: restart "no"); every depends_on waits for health or
completion; published ports are the contract's, bound to 127.0.0.1, host port = container port (but
Kafka's); every bind-mounted path exists and every named volume is declared; probes hit /readyz on the
service's own port; the saga stages run their program with a static membership id; every pix-*
command is a program of src/apps; the APIs', topology's, pix-sim's and Kafka's specifics; Prometheus
targets name compose services and ports they listen on; every ${VAR} is listed in .env.example, and
none is a credential.

    scripts/deploy/compose_contract.py        exit 1 on any finding
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

from checklib import ROOT, Checker, apps
from dockerfiles import dockerfile_stages, parse_dockerfile

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
SAGA = {"antifraud": "pix-antifraud", "settlement": "pix-settlement", "notifier": "pix-notifier",
        "auditor": "pix-auditor"}
IMAGE_RE = re.compile(r"(?P<repo>[^:@]+(?::\d+/[^:@]+)?)(?::(?P<tag>[\w][\w.-]*))?(?:@sha256:[0-9a-f]{64})?")
CREDENTIAL_VAR_RE = re.compile(r"PASSWORD|TOKEN|SECRET(?!S_DIR)|_KEY$")


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


def image_pinned(image: str) -> bool:
    """A third-party image names a tag other than latest, or a digest."""
    m = IMAGE_RE.fullmatch(image)
    tag = m.group("tag") if m else None
    return m is not None and ((tag and tag != "latest") or "@sha256:" in image)


def check_build(chk: Checker, where, image, build, root=ROOT):
    ctx = os.path.join(root, build.get("context", "."))
    dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
    rel_df = os.path.relpath(dockerfile, root)
    if not chk.check(os.path.isdir(ctx) and os.path.isfile(dockerfile), f"{where}: builds {rel_df}",
                     f"{where}: build context/Dockerfile {dockerfile} missing"):
        return
    stages = [s["name"] for s in dockerfile_stages(parse_dockerfile(dockerfile)) if s["name"]]
    target = build.get("target")
    if target:
        chk.check(target in stages, f"{where}: target {target} exists",
                  f"{where}: target {target} not a stage of {rel_df} ({stages})")
    want = IMAGES.get(image)
    if want is None:
        chk.bad(f"{where}: built image {image!r} is not one of the contract's {sorted(IMAGES)}")
        return
    rel_ctx = os.path.relpath(ctx, root)
    chk.check(os.path.normpath(rel_ctx) == os.path.normpath(want[0]) and target == want[1],
              f"{where}: {image} = context {want[0]}, target {want[1] or '(last)'}",
              f"{where}: {image} must be built from context {want[0]} target {want[1]}, not {rel_ctx} target {target}")


def check_service(chk: Checker, name, svc, services, declared_volumes, root=ROOT):
    """The rules of one service of the resolved configuration (`docker-compose config`)."""
    where = f"service {name}"
    image = svc.get("image", "")
    build = svc.get("build")
    # -- images and builds
    if build:
        check_build(chk, where, image, build, root)
    else:
        chk.check(image_pinned(image), f"{where}: third-party image {image} pinned",
                  f"{where}: image {image!r} not pinned (tag, not :latest)")
    # -- healthchecks / one-shots
    restart = str(svc.get("restart", "no"))
    hc = svc.get("healthcheck")
    if restart == "no":
        chk.ok(f"{where}: one-shot (restart: no)")
    elif hc and not hc.get("disable"):
        chk.ok(f"{where}: healthcheck {healthcheck_text(hc)[:70]}")
    elif name in NO_HEALTHCHECK:
        chk.ok(f"{where}: no healthcheck possible ({NO_HEALTHCHECK[name]})")
    else:
        chk.bad(f"{where}: long-running (restart: {restart}) without a healthcheck")
    # -- depends_on
    for dep, cond in (svc.get("depends_on") or {}).items():
        c = cond.get("condition") if isinstance(cond, dict) else None
        target = services.get(dep, {})
        if c == "service_healthy":
            chk.check(bool(target.get("healthcheck")), f"{where}: waits for {dep} healthy",
                      f"{where}: depends on {dep} healthy, but {dep} has no healthcheck")
        elif c == "service_completed_successfully":
            chk.check(str(target.get("restart", "no")) == "no", f"{where}: waits for one-shot {dep} to complete",
                      f"{where}: waits for {dep} to complete, but {dep} is not a one-shot")
        else:
            chk.bad(f"{where}: depends_on {dep} with condition {c!r} "
                    f"(want service_healthy / service_completed_successfully)")
    # -- ports
    published = [parse_port(p) for p in svc.get("ports", [])]
    targets = {t for _, _, t in published}
    chk.check(targets == PORTS.get(name, set()), f"{where}: publishes {sorted(targets) or 'nothing'}",
              f"{where}: publishes container ports {sorted(targets)}, the contract says {sorted(PORTS.get(name, set()))}")
    for ip, hp, t in published:
        chk.check(ip == "127.0.0.1", f"{where}: {hp}->{t} bound to 127.0.0.1",
                  f"{where}: port {hp}->{t} bound to {ip or 'all interfaces'}")
        if name != "kafka":
            chk.check(hp == str(t), f"{where}: host port {hp} = container port", f"{where}: host port {hp} != container port {t}")
    # -- volumes
    for v in svc.get("volumes", []):
        if isinstance(v, str):
            src = v.split(":")[0]
            typ = "bind" if src.startswith(("/", ".")) else "volume"
        else:
            src, typ = v.get("source", ""), v.get("type", "volume")
        if typ == "bind":
            rel_src = os.path.relpath(os.path.join(root, src), root)
            chk.check(os.path.exists(os.path.join(root, src)), f"{where}: mounts {rel_src}",
                      f"{where}: mounted host path {rel_src} does not exist")
        elif src:
            chk.check(src in declared_volumes, f"{where}: named volume {src}", f"{where}: volume {src} not declared")
    env = svc.get("environment") or {}
    # -- probes on our own services hit /readyz on their own port
    port = env.get("PIX_PORT") or env.get("PIX_ADMIN_PORT")
    if port and hc:
        chk.check(f"127.0.0.1:{port}/readyz" in healthcheck_text(hc), f"{where}: probes /readyz on :{port}",
                  f"{where}: healthcheck does not GET http://127.0.0.1:{port}/readyz")
    if "PIX_KAFKA_BOOTSTRAP" in env:
        chk.check(env["PIX_KAFKA_BOOTSTRAP"] == "kafka:9092", f"{where}: Kafka at kafka:9092",
                  f"{where}: PIX_KAFKA_BOOTSTRAP={env['PIX_KAFKA_BOOTSTRAP']}")
    # PIX_RABBIT_URL, PIX_KAFKA_*, secrets: the secure contract (secure_contract.py compose).
    cmd = svc.get("command")
    if name in SAGA:
        cmd_list = cmd or []
        chk.check(cmd_list[:1] == [SAGA[name]], f"{where}: runs {SAGA[name]}",
                  f"{where}: command {cmd_list} should start with {SAGA[name]}")
        chk.check(bool(env.get("PIX_INSTANCE_ID")), f"{where}: static membership id {env.get('PIX_INSTANCE_ID')}",
                  f"{where}: no PIX_INSTANCE_ID")
    if isinstance(cmd, list) and cmd and cmd[0].startswith("pix-"):
        chk.check(cmd[0] in apps(root), f"{where}: {cmd[0]} is a program of src/apps", f"{where}: {cmd[0]} is not in src/apps")


def check_specifics(chk: Checker, services, raw_services):
    """What the APIs, topology, pix-sim and Kafka must be configured with."""
    api = services.get("api-kafka", {}).get("environment", {})
    chk.check(api.get("PIX_BROKER") == "kafka" and api.get("PIX_PORT") == "5000", "api-kafka: kafka on 5000",
              "api-kafka: want PIX_BROKER=kafka PIX_PORT=5000")
    api = services.get("api-rabbitmq", {}).get("environment", {})
    chk.check(api.get("PIX_BROKER") == "rabbit" and api.get("PIX_PORT") == "5001", "api-rabbitmq: rabbit on 5001",
              "api-rabbitmq: want PIX_BROKER=rabbit PIX_PORT=5001")
    topo = services.get("topology", {})
    chk.check((topo.get("command") or [])[:2] == ["pix-admin", "topology"], "topology: pix-admin topology",
              "topology: command must be pix-admin topology")
    sim = raw_services.get("pix-sim", {})
    chk.check(sim.get("profiles") == ["sim"], "pix-sim: behind profile sim", "pix-sim: must be behind profile `sim` only")
    chk.check("https://api-kafka:5000/kafka" in (services.get("pix-sim", {}).get("command") or []),
              "pix-sim: posts to https://api-kafka:5000/kafka", "pix-sim: must post to https://api-kafka:5000/kafka")
    kenv = services.get("kafka", {}).get("environment", {})
    kport = next((hp for _, hp, t in (parse_port(p) for p in services.get("kafka", {}).get("ports", [])) if t == 29092), None)
    advertised = kenv.get("KAFKA_ADVERTISED_LISTENERS", "")
    chk.check(f"EXTERNAL://localhost:{kport}" in advertised and "INTERNAL://kafka:9092" in advertised,
              f"kafka: advertises kafka:9092 inside and localhost:{kport} to the host",
              f"kafka: KAFKA_ADVERTISED_LISTENERS must be INTERNAL://kafka:9092 and EXTERNAL://localhost:{kport}")
    chk.check(kenv.get("KAFKA_PROCESS_ROLES") == "broker,controller" and "KAFKA_ZOOKEEPER_CONNECT" not in kenv
              and kenv.get("CLUSTER_ID"),
              "kafka: KRaft combined mode with a fixed CLUSTER_ID", "kafka: want KRaft (broker,controller), CLUSTER_ID, no ZooKeeper")
    for k in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
              "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        chk.check(kenv.get(k) == "1", f"kafka: {k}=1", f"kafka: {k} must be 1 on a single node")


def check_prometheus_targets(chk: Checker, prom):
    """Every static target of prometheus.yml (but localhost) is a compose service on a port it listens on."""
    for job in prom.get("scrape_configs", []):
        for sc in job.get("static_configs", []):
            for t in sc.get("targets", []):
                host, _, port = t.rpartition(":")
                if host == "localhost":
                    continue
                known = host in PORTS and (int(port) in PORTS[host] | INTERNAL_PORTS.get(host, set()))
                chk.check(known, f"prometheus job {job['job_name']}: {t} is a compose service port",
                          f"prometheus job {job['job_name']}: target {t} is not a port of a compose service")


def check_variables(chk: Checker, raw_text, env_example_text):
    """Every ${VAR} of docker-compose.yaml has a line in .env.example, and none is a credential."""
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", raw_text))  # $${...} is a literal $
    listed = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", env_example_text or "", re.M))
    chk.check(used <= listed, f".env.example lists {', '.join(sorted(used))}", f".env.example lacks {sorted(used - listed)}")
    # no credential is a variable: they are files (compose secrets)
    creds = sorted(v for v in used if CREDENTIAL_VAR_RE.search(v))
    chk.check(not creds, "no ${VAR} is a credential (they are compose secrets)",
              f"docker-compose.yaml takes credentials from variables: {creds}")


def check_config(chk: Checker, raw_text, cfg, root=ROOT):
    """All the rules, on docker-compose.yaml's text and its resolved configuration CFG."""
    raw = yaml.safe_load(raw_text)
    chk.check("version" not in raw, "no obsolete top-level `version:`", "docker-compose.yaml has a top-level `version:`")
    services = cfg.get("services", {})
    chk.check(set(services) == set(PORTS), f"services are the contract's: {', '.join(sorted(services))}",
              f"services {sorted(set(services) ^ set(PORTS))} differ from the contract (update docker-compose.yaml "
              f"or PORTS in this check)")
    declared_volumes = set((cfg.get("volumes") or {}).keys())
    for name, svc in sorted(services.items()):
        check_service(chk, name, svc, services, declared_volumes, root)
    check_specifics(chk, services, raw.get("services", {}))
    prom_file = os.path.join(root, "monitoring/prometheus/prometheus.yml")
    if os.path.isfile(prom_file):
        with open(prom_file, encoding="utf-8") as fh:
            check_prometheus_targets(chk, yaml.safe_load(fh))
    else:
        chk.bad("monitoring/prometheus/prometheus.yml missing")
    env_example = os.path.join(root, ".env.example")
    text = ""
    if os.path.isfile(env_example):
        with open(env_example, encoding="utf-8") as fh:
            text = fh.read()
    check_variables(chk, raw_text, text)


def main() -> int:
    chk = Checker()
    with open(os.path.join(ROOT, "docker-compose.yaml"), encoding="utf-8") as fh:
        raw_text = fh.read()
    out = subprocess.run(["docker-compose", "-f", "docker-compose.yaml", "config"], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        chk.bad("docker-compose config failed: " + out.stderr.strip())
    else:
        check_config(chk, raw_text, yaml.safe_load(out.stdout))
    return chk.finish("docker-compose.yaml")


if __name__ == "__main__":
    sys.exit(main())
