#!/usr/bin/env python3
"""Side-by-side benchmarks of pix-pubsub, on the same brokers, in one run.

Measures, with the same load generator (pix-sim) and the same payload:
  1. api-kafka and api-rabbitmq, durable as shipped; and api-kafka-tls / api-rabbitmq-tls, the
     same gateway on the same (plaintext) brokers with its edge secured: HTTPS and a bearer JWT on
     every request (a throwaway certificate and issuer made for the run), over keep-alive
     connections as a steady client sends; compared with the plaintext gateway at equal rate;
  2. the seed's design (../shared/peers/seed-flask) with PEER_DURABLE=1 (fair: waits for the
     broker) and PEER_DURABLE=0 (the seed's fire-and-forget);
  3. the ceiling: pix-ceiling publishes the same events through the same client library with the
     same durability, without HTTP;
  4. the whole saga: payments per second from requested to notification.sent, and the
     end-to-end latency (requestedAt to the notification's arrival);
  5. tracing's overhead (target `tracing`): api-kafka at one fixed rate (half of its max
     sustainable) and the saga at one fixed rate, each with tracing off, at 1% sampling and at
     100%, exporting OTLP/HTTP JSON to Jaeger (started by scripts/local/jaeger.sh if it is not
     running, stopped afterwards only then; skipped when Jaeger is not built): CPU per request
     against "off", p99, spans exported and dropped.

For each target: the highest open-loop rate whose p99 stays under --bound-ms with no errors (max
sustainable throughput), then a run at half that rate for latency, CPU seconds per 1,000 events
and peak RSS; idle RSS before any load. Writes bench/results/<stamp>.md and .json (and
latest.md / latest.json) and prints the ratios gateway/seed and gateway/ceiling.

    bench/run.py                  # the full run (about 20-30 minutes on 2 cores, 5 of them tracing)
    bench/run.py --smoke          # a few seconds per target at a tiny rate: checks the machinery
    bench/run.py --targets api-kafka,ceiling-kafka --step-seconds 5
    bench/run.py --targets api-kafka,api-kafka-tls   # the secured edge beside the plaintext one
    bench/run.py --targets tracing --half-seconds 10 # tracing off / 1% / 100%, gateway and saga

It brings the brokers up (or uses running ones), builds the release preset, and stops the
services `./pix up` started so that they do not compete for the CPU; `./pix up` starts them again.
To measure elsewhere: --build-dir takes binaries as they are from another build, --use-brokers
the brokers at --kafka-bootstrap / --rabbit-url / --rabbit-mgmt-url as they are, --leave-services
leaves ./pix up's services alone, and --port-base moves the ports the servers under test bind.
"""
import argparse
import base64
import datetime
import json
import os
import platform
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BUILD = os.path.join(ROOT, "build", "release")
# Set by configure() from the command line: where the binaries are, and how to reach RabbitMQ's
# management API.
BIN = os.path.join(DEFAULT_BUILD, "src")
BENCH_BIN = os.path.join(DEFAULT_BUILD, "bench")
RABBIT_MGMT = {"url": "http://127.0.0.1:15672", "auth": "Basic Z3Vlc3Q6Z3Vlc3Q="}
PEER = os.path.normpath(os.path.join(ROOT, "..", "shared", "peers", "seed-flask", "run.sh"))
STATE = os.environ.get("PIX_STATE", os.path.join(ROOT, ".local"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# Everything measured here writes to its own topics, exchange and vhost, removed at the end, so the
# services of ./pix up never inherit a backlog from a benchmark.
PREFIX = "bench."
SAGA_PREFIX = "benchsaga."
PAYMENT = {"transactionId": "12345", "amount": 100, "payer": "alice", "receiver": "bob"}
NOTIFICATION = {"transactionId": "12345", "status": "notified"}
SEED_BODY = json.dumps({"topic": "pix.payment.requested", "value": PAYMENT})
RABBIT_BODY = json.dumps({"topic": "pix.notification.sent", "value": NOTIFICATION})
# The seed's app uses the body's topic as the Kafka topic as it is: name the bench copy directly.
PEER_KAFKA_BODY = json.dumps({"topic": PREFIX + "pix.payment.requested", "value": PAYMENT})
PEER_VHOST = "bench-seed"
# The secured edge: what pix-token puts in its tokens by default, and the topics the bench sends.
JWT_ISSUER = "https://pix-pubsub.local/dev-issuer"
TOKEN_SCOPES = ("pix.payment.requested", "pix.notification.sent")
# At equal rate the secured gateway may spend at most this much more CPU per request.
TLS_CPU_TARGET = 1.25
# Tracing: the configurations of the `tracing` target in the order they run (off once more at the
# end, so that the two "off" figures show the noise), and how much more CPU per request each
# sampling ratio may cost against "off".
OTLP_ENDPOINT = "http://127.0.0.1:4318"
TRACING_CONFIGS = (("off", None), ("1%", "0.01"), ("100%", "1.0"), ("off again", None))
TRACING_CPU_TARGETS = {"0.01": 1.05, "1.0": 1.25}
# After a run, how long to wait at most for the exporters to ship what is queued, and, from a
# build without the pix_trace_queue_spans gauge, how long the counts must stay still to be final
# (longer than the exporter's 5 s schedule delay).
TRACE_DRAIN_S = 15
TRACE_QUIET_S = 6
JAEGER = os.path.join(ROOT, "scripts", "local", "jaeger.sh")


def say(msg):
    print(f"==> {msg}", flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


# ---- processes -------------------------------------------------------------------------------

def tree(pid):
    """pid and all its descendants."""
    pids, frontier = [pid], [pid]
    while frontier:
        out = subprocess.run(["pgrep", "-P", ",".join(map(str, frontier))], capture_output=True, text=True).stdout
        frontier = [int(p) for p in out.split()]
        pids += frontier
    return pids


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total / CLK_TCK


def rss_kb(pids, field):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def http_ok(url, cafile=None):
    """GET url answers 200 (https verified against cafile)."""
    try:
        context = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
        with urllib.request.urlopen(url, timeout=2, context=context) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False


def basic_auth(amqp_url):
    """The Authorization header of the management API for the AMQP URL's user (guest by default)."""
    u = urllib.parse.urlsplit(amqp_url)
    user = urllib.parse.unquote(u.username or "guest")
    password = urllib.parse.unquote(u.password or "guest")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def with_vhost(amqp_url, vhost):
    """The AMQP URL with its vhost replaced (the seed's app gets a vhost of its own)."""
    u = urllib.parse.urlsplit(amqp_url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + urllib.parse.quote(vhost, safe=""), "", ""))


def rabbit_api(method, path, body=None):
    """RabbitMQ's management API (the --rabbit-url's user)."""
    req = urllib.request.Request(f"{RABBIT_MGMT['url']}/api/{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"content-type": "application/json",
                                          "authorization": RABBIT_MGMT["auth"]})
    try:
        with urllib.request.urlopen(req, timeout=10):
            pass
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise


def prepare_peer_vhost():
    """The seed's app declares a plain `pix` exchange: give it a vhost of its own, with one durable
    quorum queue bound to every key, as a fair counterpart of our topology."""
    rabbit_api("PUT", f"vhosts/{PEER_VHOST}", {})
    rabbit_api("PUT", f"permissions/{PEER_VHOST}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    rabbit_api("PUT", f"exchanges/{PEER_VHOST}/pix", {"type": "topic", "durable": True})
    rabbit_api("PUT", f"queues/{PEER_VHOST}/pix.bench", {"durable": True, "arguments": {"x-queue-type": "quorum"}})
    rabbit_api("POST", f"bindings/{PEER_VHOST}/e/pix/q/pix.bench", {"routing_key": "#"})


def purge_queues():
    """Empty what the benchmarks filled (quorum queues refuse publishes beyond their max length)."""
    rabbit_api("DELETE", "queues/%2F/" + PREFIX + "pix.notification.sent/contents")
    rabbit_api("DELETE", f"queues/{PEER_VHOST}/pix.bench/contents")


def admin_topology(prefix, exchange, delete=False):
    cmd = [os.path.join(BIN, "pix-admin"), "topology", "--topic-prefix", prefix, "--exchange", exchange,
           "--queue-prefix", exchange + "."] + (["--delete"] if delete else [])
    run(cmd, stdout=subprocess.DEVNULL)


def wait_ready(probe, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if probe():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready in {timeout}s")


class Server:
    """A server under test, started in its own process group."""

    def __init__(self, name, cmd, ready, env=None):
        self.name = name
        log = open(os.path.join(STATE, "logs", f"bench-{name}.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                     start_new_session=True)
        self.log = log.name

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with status {self.proc.returncode} (log: {self.log})")
            return ready()

        try:
            wait_ready(up, name, timeout=180)
        except BaseException:
            self.stop()  # never ready (or interrupted): not left running behind the run
            raise

    def pids(self):
        return tree(self.proc.pid)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            self.proc.wait()  # the whole group is gone already
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class SecuredEdge:
    """What pix-api needs to serve HTTPS and demand a bearer JWT, and what pix-sim needs to pass:
    a self-signed certificate for 127.0.0.1 (openssl), a throwaway issuer (pix-token init) and
    one token valid for the whole run, all in a temporary directory removed at the end."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pix-bench-edge-")
        self.cert = os.path.join(self.dir, "server.crt")
        self.key = os.path.join(self.dir, "server.key")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=pix-bench",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], capture_output=True)
        issuer = os.path.join(self.dir, "issuer")
        run([os.path.join(BIN, "pix-token"), "init", "--dir", issuer], stdout=subprocess.DEVNULL)
        self.jwks = os.path.join(issuer, "jwks.json")
        scopes = [a for topic in TOKEN_SCOPES for a in ("--scope", topic)]
        token = run([os.path.join(BIN, "pix-token"), "issue", "--dir", issuer, "--subject", "pix-bench", "--ttl", "2d",
                     "--issuer", JWT_ISSUER] + scopes, capture_output=True).stdout.strip()
        # In a file, so that it shows in no process list.
        self.token_file = os.path.join(self.dir, "token")
        with open(os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(token + "\n")

    def api_flags(self):
        return ["--tls-cert", self.cert, "--tls-key", self.key, "--auth", "jwt", "--jwks", self.jwks,
                "--jwt-issuer", JWT_ISSUER]

    def sim_flags(self):
        return ["--ca", self.cert, "--bearer-file", self.token_file]

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- load ------------------------------------------------------------------------------------

def load(url, rate, seconds, body, sim_flags=(), pool=None):
    """One open-loop run of pix-sim (with sim_flags: --ca, --bearer-file...); its JSON result.
    With `pool`, exactly that many keep-alive connections, opened before the clock starts."""
    purge_queues()
    # Few connections up front (pix-sim opens more when requests wait): the seed's sync gunicorn
    # workers each block on one idle keep-alive connection, so pre-opening 64 would stall them.
    connections = ["--concurrency", str(pool), "--max-connections", str(pool)] if pool else ["--concurrency", "4"]
    cmd = [os.path.join(BIN, "pix-sim"), "load", "--url", url, "--rate", str(int(rate)), "--duration", f"{seconds}s",
           "--body", body, "--json", "--no-progress"] + connections + list(sim_flags)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if not out.stdout.strip():
        raise RuntimeError(f"pix-sim printed nothing: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def ceiling(broker, rate, seconds):
    purge_queues()
    cmd = [os.path.join(BENCH_BIN, "pix-ceiling"), "--broker", broker, "--rate", str(int(rate)),
           "--duration", f"{seconds}s", "--json", "--topic-prefix", PREFIX, "--exchange", PREFIX.rstrip(".")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if not out.stdout.strip():
        raise RuntimeError(f"pix-ceiling printed nothing: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def latency(result):
    """The latency percentiles (µs) of all answers: pix-sim nests them under "all"."""
    lat = result["latency_us"]
    return lat["all"] if "all" in lat else lat


def p99_ms(result):
    return latency(result)["p99"] / 1000.0


def errors(result):
    non2xx = sum(n for code, n in result.get("status", {}).items() if not str(code).startswith("2"))
    return non2xx + sum(result.get("errors", {}).values())


def sustainable(result, rate, bound_ms):
    achieved = result["completed"] / max(result["elapsed_s"], 1e-9)
    return errors(result) == 0 and p99_ms(result) <= bound_ms and achieved >= 0.9 * rate


def search(measure, start, bound_ms, seconds, cap):
    """Highest sustainable rate: double until it fails (or the cap), then bisect twice."""
    log = []

    def step(rate):
        r = measure(rate, seconds)
        ok = sustainable(r, rate, bound_ms)
        log.append({"rate": rate, "p99_ms": round(p99_ms(r), 2), "errors": errors(r), "ok": ok})
        print(f"    {rate:>8.0f}/s  p99 {p99_ms(r):8.2f} ms  errors {errors(r):>6}  {'ok' if ok else 'over'}", flush=True)
        return ok

    good, bad, rate = 0, None, start
    while rate <= cap:
        if not step(rate):
            bad = rate
            break
        good = rate
        rate *= 2
    if bad is None and good < cap:
        # The doubling stepped over the cap: the cap itself is the last rate worth trying.
        if step(cap):
            good = cap
        else:
            bad = cap
    for _ in range(2):
        if bad is None or bad - good <= max(50, good * 0.1):
            break
        mid = (good + bad) / 2
        if step(mid):
            good = mid
        else:
            bad = mid
    return good, log


def capped(ladder, args):
    """True when even --max-rate was sustainable: the real maximum is higher than measured."""
    return bool(ladder) and all(step["ok"] for step in ladder) and ladder[-1]["rate"] >= args.max_rate


def ceiling_at(broker, rate, args):
    """The ceiling at a given rate (the gateway's half-load rate): latency at equal load."""
    r = ceiling(broker, rate, args.half_seconds)
    return {"rate": rate, "latency_us": latency(r), "errors": errors(r)}


def at_rate(server, url, rate, body, args, sim_flags=(), pool=None):
    """One run at `rate` for --half-seconds: latency, errors and the server's CPU per 1000 answers."""
    cpu0 = cpu_seconds(server.pids())
    r = load(url, rate, args.half_seconds, body, sim_flags, pool)
    cpu = cpu_seconds(server.pids()) - cpu0
    return {"rate": rate, "latency_us": latency(r), "completed": r["completed"], "errors": errors(r),
            "achieved_rate": round(r["completed"] / max(r["elapsed_s"], 1e-9), 1),
            "cpu_s_per_1000": round(1000 * cpu / max(r["completed"], 1), 4),
            "connections": r.get("connections", {}).get("opened", 0)}


def measure_http(name, server, url, body, args, sim_flags=(), equal_rate=None):
    """Max sustainable rate, then latency, CPU and RSS at half of it. With equal_rate (a rate, or
    "half": this target's own half-load rate), once more at that rate as a steady client sends it:
    a fixed pool of --steady-connections keep-alive connections, so that both sides of a comparison
    at equal load pay for the same connections (the growing pool follows latency spikes with new
    connections, and over TLS each is a full handshake)."""
    pids = server.pids()
    time.sleep(1)
    idle = rss_kb(pids, "VmRSS")
    load(url, 20, 2, body, sim_flags)  # warm up: connections, workers, producers
    say(f"{name}: searching the max sustainable rate (p99 <= {args.bound_ms} ms, no errors)")
    if args.smoke:
        peak, ladder = args.smoke_rate, []
    else:
        peak, ladder = search(lambda r, s: load(url, r, s, body, sim_flags), args.start_rate, args.bound_ms,
                              args.step_seconds, args.max_rate)
    half = max(peak / 2, 1) if not args.smoke else args.smoke_rate
    say(f"{name}: {half:.0f}/s for {args.half_seconds}s (half of {peak:.0f}/s)")
    h = at_rate(server, url, half, body, args, sim_flags)
    equal_rate = half if equal_rate == "half" else equal_rate
    out = {
        "target": name, "max_rate": peak, "capped": capped(ladder, args), "ladder": ladder, "half_rate": half,
        "latency_us": h["latency_us"], "completed": h["completed"], "errors": h["errors"],
        "cpu_s_per_1000": h["cpu_s_per_1000"], "connections": h["connections"],
    }
    if equal_rate is not None:
        say(f"{name}: {equal_rate:.0f}/s for {args.half_seconds}s over {args.steady_connections} connections "
            "(equal load)")
        out["equal_rate"] = at_rate(server, url, equal_rate, body, args, sim_flags, pool=args.steady_connections)
    out["peak_rss_kb"] = rss_kb(server.pids(), "VmHWM")
    out["idle_rss_kb"] = idle
    return out


def measure_ceiling(broker, args):
    name = f"ceiling-{broker}"
    say(f"{name}: searching the max sustainable rate (p99 <= {args.bound_ms} ms, no errors)")
    if args.smoke:
        peak, ladder = args.smoke_rate, []
    else:
        peak, ladder = search(lambda r, s: ceiling(broker, r, s), args.start_rate, args.bound_ms, args.step_seconds,
                              args.max_rate)
    half = max(peak / 2, 1) if not args.smoke else args.smoke_rate
    say(f"{name}: {half:.0f}/s for {args.half_seconds}s")
    r = ceiling(broker, half, args.half_seconds)
    return {"target": name, "max_rate": peak, "capped": capped(ladder, args), "ladder": ladder, "half_rate": half,
            "latency_us": latency(r),
            "completed": r["completed"], "errors": errors(r),
            "cpu_s_per_1000": round(1000 * r["cpu_s"] / max(r["completed"], 1), 4),
            "peak_rss_kb": r["peak_rss_kb"], "idle_rss_kb": r["idle_rss_kb"]}


# ---- the saga --------------------------------------------------------------------------------

class SagaWorld:
    """The saga on topics, an exchange, databases and consumer groups of its own (named by
    `prefix`), its processes started with `env` over the harness's environment."""

    def __init__(self, population, port_base, prefix=SAGA_PREFIX, env=None):
        self.prefix, self.env = prefix, env or {}
        self.dir = os.path.join(STATE, "bench", prefix.rstrip(".") + "-" +
                                datetime.datetime.utcnow().strftime("%Y%m%d%H%M%S"))
        os.makedirs(self.dir, exist_ok=True)
        admin_topology(prefix, prefix.rstrip("."))
        exchange = prefix.rstrip(".")
        common = ["--topic-prefix", prefix, "--log-level", "warn"]
        self.api_port = port_base + 10
        self.admin_ports = []
        self.servers = []
        try:
            self.start(population, port_base, common, exchange)
        except BaseException:
            self.close()  # what started stops, and the topology goes: nothing is left behind
            raise

    def start(self, population, port_base, common, exchange):
        name = self.prefix.rstrip(".")
        self.servers.append(Server(f"{name}-api", [os.path.join(BIN, "pix-api"), "--broker", "kafka", "--port",
                                                   str(self.api_port)] + common,
                                   lambda: http_ok(f"http://127.0.0.1:{self.api_port}/readyz"), env=self.env))
        # The decision keys: settlement acts only on anti-fraud's signed decisions, the notifier
        # only on settlement's (the cost of signing and verifying is part of what is measured).
        key = {stage: os.path.join(self.dir, f"{stage}.key.json") for stage in ("antifraud", "settlement")}
        for stage, path in key.items():
            run([os.path.join(BIN, "pix-admin"), "decision-key", "--stage", stage, "--out", path],
                stdout=subprocess.DEVNULL)
        stages = {
            "antifraud": ["--decision-key", key["antifraud"]],
            "settlement": ["--db", os.path.join(self.dir, "ledger.db"), "--population", str(population),
                           "--decision-key", key["settlement"], "--trust-key", key["antifraud"]],
            "notifier": ["--exchange", exchange, "--trust-key", key["settlement"]],
            "auditor": ["--db", os.path.join(self.dir, "audit.db"), "--notification-queue",
                        exchange + ".pix.notification.sent"],
        }
        for i, (stage, extra) in enumerate(stages.items()):
            port = port_base + 20 + i
            self.admin_ports.append(port)
            self.servers.append(Server(f"{name}-{stage}", [os.path.join(BIN, f"pix-{stage}"), "--admin-port",
                                                           str(port), "--group", self.prefix + stage, "--instance-id",
                                                           self.prefix + stage] + common + extra,
                                       lambda p=port: http_ok(f"http://127.0.0.1:{p}/readyz"), env=self.env))

    def cpu_seconds(self):
        """CPU of the gateway and the four stages together."""
        return sum(cpu_seconds(s.pids()) for s in self.servers)

    def metrics_urls(self):
        """The /metrics of the gateway (its own port) and of each stage (its admin port)."""
        return [f"http://127.0.0.1:{self.api_port}/metrics"] + \
            [f"http://127.0.0.1:{p}/metrics" for p in self.admin_ports]

    def report(self):
        out = subprocess.run([os.path.join(BIN, "pix-admin"), "report", "--json", "--audit-db",
                              os.path.join(self.dir, "audit.db"), "--ledger-db", os.path.join(self.dir, "ledger.db")],
                             capture_output=True, text=True)
        return json.loads(out.stdout)

    def close(self):
        for s in reversed(self.servers):
            s.stop()
        admin_topology(self.prefix, self.prefix.rstrip("."), delete=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def measure_saga(args):
    say("saga: api-kafka and the four stages on topics of their own")
    world = SagaWorld(args.saga_population, args.port_base)
    try:
        return saga_runs(world, args)
    finally:
        world.close()


def saga_runs(world, args, rates=None, seconds=None):
    """The saga at each rate (default: the --saga-rates ladder, until one is not sustained), each
    for `seconds` (default --half-seconds)."""
    rates = rates or ([args.smoke_rate] if args.smoke else args.saga_rates)
    seconds = seconds or args.half_seconds
    results, best = [], None
    for rate in rates:
        before = world.report()
        probe = subprocess.Popen([os.path.join(BENCH_BIN, "pix-saga-probe"), "--exchange", world.prefix.rstrip("."),
                                  "--duration", f"{seconds + 60}s", "--idle-exit-s", "8", "--json"],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        cpu0 = world.cpu_seconds()
        sim = subprocess.run([os.path.join(BIN, "pix-sim"), "payments",
                              "--url", f"http://127.0.0.1:{world.api_port}/kafka",
                              "--rate", str(rate), "--duration", f"{seconds}s", "--population",
                              str(args.saga_population), "--json", "--no-progress"], capture_output=True, text=True)
        sent = json.loads(sim.stdout) if sim.stdout.strip() else {"status": {}}
        accepted = sent.get("status", {}).get("200", 0)
        # Every payment accounted for: wait (bounded) until the audit trail has them all. The
        # stages' CPU is taken then: the work of these payments, not the probe's idle wait after.
        deadline, after = time.time() + 60, before
        while time.time() < deadline:
            after = world.report()
            judged = after["validated"] - before["validated"]
            done = after["settled"] + after["rejectedAtSettlement"] - before["settled"] - before["rejectedAtSettlement"]
            if after["requested"] - before["requested"] >= accepted and done >= judged and \
                    after["notified"] - before["notified"] >= after["settled"] - before["settled"]:
                break
            time.sleep(0.5)
        cpu = world.cpu_seconds() - cpu0
        latency = json.loads(probe.communicate()[0] or "{}")
        delta = {k: after[k] - before[k] for k in ("requested", "validated", "rejectedAtValidation", "settled",
                                                   "rejectedAtSettlement", "notified")}
        accounted = (delta["requested"] == accepted
                     and delta["requested"] == delta["validated"] + delta["rejectedAtValidation"]
                     and delta["validated"] == delta["settled"] + delta["rejectedAtSettlement"]
                     and delta["notified"] == delta["settled"])
        e2e = {k: round(v / 1000, 1) for k, v in latency.get("latency_us", {}).items() if k != "count"}
        row = {"rate": rate, "accepted": accepted, "saga": delta, "e2e_latency_ms": e2e,
               "achieved_rate": round(accepted / max(sent.get("elapsed_s", seconds), 1e-9), 1),
               "errors": errors(sent),
               "cpu_s_per_1000": round(1000 * cpu / max(accepted, 1), 4),
               "notifications_seen": latency.get("count", 0), "all_accounted": accounted,
               "balances_conserved": after.get("balancesConserved"), "chain_valid": after.get("chainValid")}
        p99 = row["e2e_latency_ms"].get("p99", float("inf"))
        print(f"    {rate:>6}/s  accepted {accepted:>7}  settled {delta['settled']:>7}  notified "
              f"{delta['notified']:>7}  e2e p99 {p99:9.1f} ms  accounted {accounted}", flush=True)
        results.append(row)
        if accounted and p99 <= args.saga_bound_ms:
            best = row
        else:
            break
    return {"target": "saga", "runs": results, "max_rate": best["rate"] if best else 0,
            "e2e_latency_ms": best["e2e_latency_ms"] if best else {}}


# ---- tracing overhead --------------------------------------------------------------------------

def tracing_env(sampler_arg):
    """The environment of a traced process (None: tracing off, no OTEL_* variable at all)."""
    if sampler_arg is None:
        return {}
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_ENDPOINT, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": sampler_arg}


def parse_metrics(text):
    """Prometheus text exposition: {series (name and labels as written): value}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "}" in line:
            end = line.rindex("}") + 1
            series, rest = line[:end], line[end:].split()
        else:
            series, *rest = line.split()
        try:
            out[series] = float(rest[0])
        except (IndexError, ValueError):
            continue
    return out


def span_counts(text):
    """Spans exported, dropped by reason and still queued (None: no queue gauge in this build),
    from a process's /metrics; None when it has no tracer (tracing off)."""
    m = parse_metrics(text)
    if not any(k.startswith("pix_trace_") for k in m):
        return None
    dropped = {}
    for series, value in m.items():
        if series.startswith("pix_trace_spans_dropped_total"):
            reason = series.partition('reason="')[2].partition('"')[0] or "unknown"
            dropped[reason] = dropped.get(reason, 0) + int(value)
    queued = m.get("pix_trace_queue_spans")
    return {"exported": int(m.get("pix_trace_spans_exported_total", 0)), "dropped": dropped,
            "queued": int(queued) if queued is not None else None}


def sum_span_counts(counts):
    """Several processes' span_counts together (None when none of them traced)."""
    counts = [c for c in counts if c is not None]
    if not counts:
        return None
    dropped = {}
    for c in counts:
        for reason, n in c["dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + n
    queued = None if any(c["queued"] is None for c in counts) else sum(c["queued"] for c in counts)
    return {"exported": sum(c["exported"] for c in counts), "dropped": dropped, "queued": queued}


def http_text(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except Exception:  # noqa: BLE001 - a process that does not answer has nothing to report
        return ""


def settled(previous, counts, still_s):
    """Whether the span counts are final: two polls in a row with nothing queued and the same spans
    exported and dropped (no batch in flight either: the queue empties when a batch is taken,
    before it is sent and counted). Without the queue gauge, the counts still for `still_s`
    seconds, longer than the exporter's schedule delay."""
    def total(c):
        return c["exported"] + sum(c["dropped"].values())
    if previous is None or counts is None or total(previous) != total(counts):
        return False
    if counts["queued"] is None or previous["queued"] is None:
        return still_s >= TRACE_QUIET_S
    return previous["queued"] == 0 and counts["queued"] == 0


def drained_span_counts(urls):
    """The processes' span counts once they are final (or TRACE_DRAIN_S passed)."""
    deadline, previous, changed = time.time() + TRACE_DRAIN_S, None, time.time()
    while True:
        counts = sum_span_counts([span_counts(http_text(u)) for u in urls])
        if counts is None:
            return None
        if previous is None or counts["exported"] + sum(counts["dropped"].values()) != \
                previous["exported"] + sum(previous["dropped"].values()):
            changed = time.time()
        if settled(previous, counts, time.time() - changed) or time.time() >= deadline:
            return counts
        previous = counts
        time.sleep(0.5)


def cpu_verdicts(runs):
    """CPU per request of each run against tracing off: the baseline is the mean of the "off"
    runs, their spread ((max - min) / mean) the noise; each traced run's ratio is held to its
    sampling ratio's target. Pure: the runs need only sampler_arg and cpu_s_per_1000."""
    offs = [r["cpu_s_per_1000"] for r in runs if r["sampler_arg"] is None]
    base = sum(offs) / len(offs) if offs else 0
    out = {"baseline_cpu_s_per_1000": round(base, 4) if offs else None,
           "off_spread": round((max(offs) - min(offs)) / base, 4) if len(offs) > 1 and base > 0 else None,
           "runs": []}
    for r in runs:
        ratio = r["cpu_s_per_1000"] / base if base > 0 else None
        target = TRACING_CPU_TARGETS.get(r["sampler_arg"])
        out["runs"].append({"ratio": round(ratio, 4) if ratio is not None else None, "target": target,
                            "met": None if target is None or ratio is None else ratio <= target})
    return out


def tracing_schedule(args):
    """(index, (label, sampler_arg)) for every run: TRACING_CONFIGS' order, --tracing-rounds times
    over, so that slow drifts of the machine fall on every configuration alike."""
    return enumerate(c for _ in range(max(args.tracing_rounds, 1)) for c in TRACING_CONFIGS)


def median_ratios(runs):
    """Per traced configuration, the median of its runs' CPU ratios and the verdict on it: with
    several rounds, one noisy run does not decide. Pure: runs need sampler_arg, tracing, cpu_ratio."""
    out = []
    for label, arg in TRACING_CONFIGS:
        if arg is None:
            continue
        ratios = sorted(r["cpu_ratio"] for r in runs if r["sampler_arg"] == arg and r.get("cpu_ratio") is not None)
        if not ratios:
            continue
        mid = len(ratios) // 2
        median = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
        target = TRACING_CPU_TARGETS.get(arg)
        out.append({"tracing": label, "sampler_arg": arg, "runs": len(ratios), "median_ratio": round(median, 4),
                    "target": target, "met": None if target is None else median <= target})
    return out


def with_verdicts(part):
    """A part (gateway or saga) of the tracing result with its runs' ratios and verdicts."""
    v = cpu_verdicts(part["runs"])
    for run_, verdict in zip(part["runs"], v["runs"]):
        run_.update(cpu_ratio=verdict["ratio"], cpu_target=verdict["target"], target_met=verdict["met"])
    part["baseline_cpu_s_per_1000"], part["off_spread"] = v["baseline_cpu_s_per_1000"], v["off_spread"]
    part["medians"] = median_ratios(part["runs"])
    return part


class Jaeger:
    """The trace backend: the running one if it is up, else started (and then stopped at the end)
    by scripts/local/jaeger.sh; never built here (a cold build takes ~17 minutes)."""

    def __init__(self):
        self.started = False
        self.skip = None
        if subprocess.run([JAEGER, "status"], capture_output=True).returncode == 0:
            self.how = "already running (left running)"
            return
        if subprocess.run([JAEGER, "path"], capture_output=True).returncode != 0:
            self.skip = "Jaeger is not built; `scripts/local/jaeger.sh build` builds it once per machine (~17 min)"
            return
        say("tracing: starting Jaeger (scripts/local/jaeger.sh start)")
        r = subprocess.run([JAEGER, "start"], capture_output=True, text=True)
        if r.returncode != 0:
            self.skip = "scripts/local/jaeger.sh start failed: " + (r.stderr or r.stdout).strip()[-500:]
            return
        self.started, self.how = True, "started for the run (stopped after it)"

    def close(self):
        if self.started:
            say("tracing: stopping the Jaeger this run started")
            subprocess.run([JAEGER, "stop"], capture_output=True)
            self.started = False


def measure_tracing(results, args):
    """Tracing off, at 1% and at 100% (TRACING_CONFIGS' order), each on fresh processes: the gateway
    at one fixed rate, then the saga at one fixed rate."""
    jaeger = Jaeger()
    if jaeger.skip:
        say(f"tracing: skipped ({jaeger.skip})")
        return {"target": "tracing", "skipped": jaeger.skip}
    try:
        say(f"tracing: Jaeger {jaeger.how}; OTLP/HTTP JSON to {OTLP_ENDPOINT}")
        gateway = with_verdicts(tracing_gateway(results, args))
        saga = with_verdicts(tracing_saga(args))
    finally:
        jaeger.close()
    return {"target": "tracing", "jaeger": jaeger.how, "order": [label for label, _ in TRACING_CONFIGS],
            "gateway": gateway, "saga": saga}


def tracing_gateway(results, args):
    """api-kafka at one rate, as the secured edge is compared with the plaintext one: the plaintext
    gateway's half load (this run's api-kafka, else a quick search on an untraced gateway of its
    own), sent by a steady client (--steady-connections keep-alive connections)."""
    port = args.port_base + 4
    url, metrics = f"http://127.0.0.1:{port}/kafka", f"http://127.0.0.1:{port}/metrics"

    def gateway(name, env):
        return Server(name, [os.path.join(BIN, "pix-api"), "--broker", "kafka", "--port", str(port),
                             "--log-level", "warn", "--topic-prefix", PREFIX],
                      lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), env=env)

    def warm_up():  # as measure_http does: connections, workers, producers
        time.sleep(1)
        load(url, 20, 2, SEED_BODY)

    plain = next((r for r in results if r["target"] == "api-kafka"), None)
    if args.smoke:
        rate, source = args.smoke_rate, "the smoke rate"
    elif plain:
        rate, source = plain["half_rate"], f"half of api-kafka's max sustainable {plain['max_rate']:.0f}/s, this run"
    else:
        say(f"tracing: api-kafka untraced, searching its max sustainable rate (p99 <= {args.bound_ms} ms)")
        s = gateway("tracing-api-kafka-search", {})
        try:
            warm_up()
            peak, _ = search(lambda r, sec: load(url, r, sec, SEED_BODY), args.start_rate, args.bound_ms,
                             args.step_seconds, args.max_rate)
        finally:
            s.stop()
        rate, source = max(peak / 2, 1), f"half of its max sustainable {peak:.0f}/s, searched untraced"
    say(f"tracing: api-kafka at {rate:.0f}/s for {args.half_seconds}s over {args.steady_connections} connections, "
        f"{', '.join(label for label, _ in TRACING_CONFIGS)}")
    runs = []
    for i, (label, arg) in tracing_schedule(args):
        s = gateway(f"tracing-api-kafka-{i}", tracing_env(arg))
        try:
            warm_up()
            r = at_rate(s, url, rate, SEED_BODY, args, pool=args.steady_connections)
            spans = drained_span_counts([metrics]) if arg else None
            r["peak_rss_kb"] = rss_kb(s.pids(), "VmHWM")
        finally:
            s.stop()
        runs.append({"tracing": label, "sampler_arg": arg, **r, "spans": spans})
        print(f"    {label:>9}  {r['achieved_rate']:>8.0f}/s  p99 {p99_ms(r):8.2f} ms  errors {r['errors']:>6}  "
              f"CPU {r['cpu_s_per_1000']:.4f} s/1000  spans {spans_text(spans)}", flush=True)
    return {"rate": rate, "rate_from": source, "seconds": args.half_seconds,
            "connections": args.steady_connections, "runs": runs}


def tracing_saga(args):
    """The saga at one fixed rate per configuration, each on a world of its own (its own topics,
    exchange, consumer groups and databases: nothing carried over from the previous one)."""
    rate = args.smoke_rate if args.smoke else args.tracing_saga_rate
    seconds = args.half_seconds if args.smoke else (args.tracing_saga_seconds or min(args.half_seconds, 30))
    say(f"tracing: the saga at {rate}/s for {seconds}s, {', '.join(label for label, _ in TRACING_CONFIGS)}")
    runs = []
    for i, (label, arg) in tracing_schedule(args):
        world = SagaWorld(args.saga_population, args.port_base, prefix=f"benchtrace{i}.", env=tracing_env(arg))
        try:
            row = saga_runs(world, args, rates=[rate], seconds=seconds)["runs"][0]
            spans = drained_span_counts(world.metrics_urls()) if arg else None
        finally:
            world.close()
        runs.append({"tracing": label, "sampler_arg": arg, **row, "spans": spans})
        print(f"    {label:>9}  spans {spans_text(spans)}  CPU {row['cpu_s_per_1000']:.4f} s/1000 payments", flush=True)
    return {"rate": rate, "seconds": seconds, "runs": runs}


# ---- report ----------------------------------------------------------------------------------

def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1048576, 1),
            "kernel": platform.release(), "os": "Debian " + open("/etc/debian_version").read().strip(),
            "kafka": "3.9.1 (KRaft, single node)", "rabbitmq": "3.10 (Debian)", "librdkafka": "2.0.2",
            "rabbitmq-c": "0.11"}


def ms(us):
    return f"{us / 1000:.2f}"


def equal_load(r):
    """A gateway's run at equal load (the steady pool), or its half-load run when it had none."""
    return r.get("equal_rate") or {**r, "rate": r["half_rate"]}


def tls_cpu_ratio(plain, secured):
    """CPU per request of the secured gateway over the plaintext one's, both at the plaintext
    gateway's half-load rate; None when either is missing or the plaintext one used no CPU."""
    if not plain or not secured or not secured.get("equal_rate"):
        return None
    base = equal_load(plain)["cpu_s_per_1000"]
    return secured["equal_rate"]["cpu_s_per_1000"] / base if base > 0 else None


def secured_edge_lines(by):
    """The secured edge (HTTPS + bearer JWT) beside the plaintext gateway at equal rate."""
    lines = []
    for api in ("api-kafka", "api-rabbitmq"):
        plain, secured = by.get(api), by.get(f"{api}-tls")
        if not secured:
            continue
        if not lines:
            lines += ["", "The secured edge (HTTPS, a bearer JWT on every request; the same plaintext brokers) beside "
                      "the plaintext gateway at equal rate (the plaintext gateway's half load), both sent by a steady "
                      "client: a fixed pool of keep-alive connections opened before the run; CPU is pix-api's:", "",
                      "| target | rate /s | p50 ms | p99 ms | errors | CPU s / 1000 req | connections |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
        same = secured.get("equal_rate")
        if not plain or not same:
            lines.append(f"| {api}-tls | - | - | - | - | - | - |")
            continue
        for name, row in ((api, equal_load(plain)), (f"{api}-tls", same)):
            lat = row["latency_us"]
            lines.append(f"| {name} | {row['rate']:.0f} | {ms(lat['p50'])} | {ms(lat['p99'])} | {row['errors']} | "
                         f"{row['cpu_s_per_1000']:.4f} | {row.get('connections', '-')} |")
    if lines:
        lines.append("")
    for api in ("api-kafka", "api-rabbitmq"):
        plain, secured = by.get(api), by.get(f"{api}-tls")
        if not secured:
            continue
        ratio = tls_cpu_ratio(plain, secured)
        if ratio is None:
            lines.append(f"- {api}-tls / {api} CPU per request: not measured (needs {api} in the same run)")
            continue
        same, base = secured["equal_rate"], equal_load(plain)
        verdict = "met" if ratio <= TLS_CPU_TARGET else "NOT met"
        lines.append(f"- {api}-tls / {api} CPU per request at {same['rate']:.0f}/s: **{ratio:.2f}x** "
                     f"(target ≤ {TLS_CPU_TARGET:.2f}x: {verdict}); p99 {ms(same['latency_us']['p99'])} ms vs "
                     f"{ms(base['latency_us']['p99'])} ms")
    return lines


def dropped_text(spans):
    """Spans dropped, with the reasons when there are any: "0", "120 (queue_full 118, rejected 2)"."""
    if spans is None:
        return "-"
    total = sum(spans["dropped"].values())
    reasons = ", ".join(f"{k} {n}" for k, n in sorted(spans["dropped"].items()) if n)
    return f"{total} ({reasons})" if reasons else str(total)


def exported_text(spans):
    if spans is None:
        return "-"
    return f"{spans['exported']}" + (f" (+{spans['queued']} still queued)" if spans.get("queued") else "")


def spans_text(spans):
    return "-" if spans is None else f"{exported_text(spans)} exported, {dropped_text(spans)} dropped"


def ratio_text(ratio):
    return "-" if ratio is None else f"{ratio:.2f}x"


def verdict_text(run_):
    if run_.get("cpu_target") is None:
        return "-"
    met = {True: "met", False: "NOT met", None: "not measured"}[run_.get("target_met")]
    return f"≤ {run_['cpu_target']:.2f}x: {met}"


def tracing_lines(tracing):
    """Tracing off, at 1% and at 100%, side by side: the gateway, then the saga."""
    if not tracing:
        return []
    if tracing.get("skipped"):
        return ["", f"Tracing overhead: not measured ({tracing['skipped']})."]
    g, s = tracing["gateway"], tracing["saga"]
    order = ", ".join(tracing["order"])
    lines = ["", f"Tracing overhead (OTLP/HTTP JSON to Jaeger on this machine, {tracing['jaeger']}; sampler "
             f"parentbased_traceidratio at 0.01 and 1.0, default batch processor). Order: {order}, each on fresh "
             "processes; \"off\" runs first and last of each round, so its figures show the noise; the CPU ratios "
             "are against their mean. "
             f"Gateway: api-kafka at {g['rate']:.0f}/s ({g['rate_from']}) for {g['seconds']} s over "
             f"{g['connections']} keep-alive connections, CPU pix-api's own while loaded. "
             f"Saga: {s['rate']}/s for {s['seconds']} s, latency end to end, CPU summed over pix-api and the four "
             "stages until every payment is accounted for, per payment. Spans from /metrics once the export queue "
             f"settled (at most {TRACE_DRAIN_S} s); Jaeger's own CPU is not counted.", "",
             "| part | tracing | rate /s | achieved /s | p50 ms | p99 ms | errors | CPU s / 1000 req | vs off | target "
             "| spans exported | spans dropped |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for part, name in ((g, "gateway"), (s, "saga")):
        for r in part["runs"]:
            if "e2e_latency_ms" in r:
                p50, p99 = r["e2e_latency_ms"].get("p50", "-"), r["e2e_latency_ms"].get("p99", "-")
                errs = f"{r['errors']}" + ("" if r["all_accounted"] else " (NOT all accounted)")
            else:
                p50, p99, errs = ms(r["latency_us"]["p50"]), ms(r["latency_us"]["p99"]), f"{r['errors']}"
            lines.append(f"| {name} | {r['tracing']} | {r['rate']:.0f} | {r['achieved_rate']:.0f} | {p50} | {p99} | "
                         f"{errs} | {r['cpu_s_per_1000']:.4f} | {ratio_text(r.get('cpu_ratio'))} | "
                         f"{verdict_text(r)} | {exported_text(r['spans'])} | {dropped_text(r['spans'])} |")
    lines.append("")
    for part, name, unit in ((g, "gateway (api-kafka)", "request"), (s, "saga (gateway + 4 stages)", "payment")):
        traced = [f"{m['tracing']} **{ratio_text(m['median_ratio'])}**"
                  + (f" (median of {m['runs']})" if m["runs"] > 1 else "")
                  + f" (≤ {m['target']:.2f}x: {'met' if m['met'] else 'NOT met'})"
                  for m in part.get("medians", [])]
        spread = part.get("off_spread")
        noise = f"; the off runs differ by up to {100 * spread:.1f}%" if spread is not None else ""
        lines.append(f"- {name} CPU per {unit} against off: {'; '.join(traced)}{noise}")
    return lines


def markdown(results, saga, m, args, tracing=None):
    lines = [f"# pix-pubsub benchmark, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, kernel {m['kernel']}; "
             f"Kafka {m['kafka']}, RabbitMQ {m['rabbitmq']}; everything on this one machine.", "",
             f"Open-loop load from pix-sim, the seed's example body. Max sustainable = highest rate with p99 <= "
             f"{args.bound_ms} ms and no errors ({args.step_seconds} s steps); latency, CPU and RSS measured at half "
             f"of it for {args.half_seconds} s. CPU and RSS are the server's process tree (the broker not counted).",
             "", "| target | max sustainable (req/s) | at half: p50 ms | p90 | p99 | p99.9 | max | CPU s / 1000 ev | "
             "peak RSS MB | idle RSS MB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def peak(r):
        return f"≥ {r['max_rate']:.0f}" if r.get("capped") else f"{r['max_rate']:.0f}"

    for r in results:
        lat = r["latency_us"]
        lines.append(f"| {r['target']} | {peak(r)} | {ms(lat['p50'])} | {ms(lat['p90'])} | {ms(lat['p99'])} "
                     f"| {ms(lat['p99.9'])} | {ms(lat['max'])} | {r['cpu_s_per_1000']:.3f} | "
                     f"{r['peak_rss_kb'] / 1024:.1f} | {r['idle_rss_kb'] / 1024:.1f} |")
    by = {r["target"]: r for r in results}
    lines += ["", "Ratios (max sustainable throughput):", ""]
    for api, broker in (("api-kafka", "kafka"), ("api-rabbitmq", "rabbit")):
        if api not in by:
            continue
        for other in (f"seed-{broker}-durable", f"seed-{broker}-fire-and-forget", f"ceiling-{broker}"):
            if other in by and by[other]["max_rate"] > 0:
                # Against a capped ceiling the real ratio is at most the one shown.
                bound = "≤ " if by[other].get("capped") else ""
                lines.append(f"- {api} / {other}: **{bound}{by[api]['max_rate'] / by[other]['max_rate']:.1f}x**")
        c = by.get(f"ceiling-{broker}")
        if c:
            lines.append(f"- {api} p99 at half load minus the ceiling's at its own half load: "
                         f"{(by[api]['latency_us']['p99'] - c['latency_us']['p99']) / 1000:.2f} ms")
        same = by[api].get("ceiling_same_rate")
        if same:
            lines.append(f"- gateway overhead at equal load ({same['rate']:.0f}/s, half of {api}'s peak): "
                         f"p50 +{(by[api]['latency_us']['p50'] - same['latency_us']['p50']) / 1000:.2f} ms, "
                         f"p99 +{(by[api]['latency_us']['p99'] - same['latency_us']['p99']) / 1000:.2f} ms "
                         f"(ceiling p99 {ms(same['latency_us']['p99'])} ms)")
    lines += secured_edge_lines(by)
    if saga:
        lines += ["", "The saga (payments mode, requested -> notification.sent on RabbitMQ):", "",
                  "| rate /s | accepted | settled | rejected | notified | e2e p50 ms | p90 | p99 | max | all accounted |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for row in saga["runs"]:
            e = row["e2e_latency_ms"]
            rej = row["saga"]["rejectedAtValidation"] + row["saga"]["rejectedAtSettlement"]
            lines.append(f"| {row['rate']} | {row['accepted']} | {row['saga']['settled']} | {rej} | "
                         f"{row['saga']['notified']} | {e.get('p50', '-')} | {e.get('p90', '-')} | {e.get('p99', '-')} "
                         f"| {e.get('max', '-')} | {'yes' if row['all_accounted'] else 'NO'} |")
        lines.append(f"\nSustained saga rate (all accounted, e2e p99 <= {args.saga_bound_ms} ms): "
                     f"**{saga['max_rate']} payments/s**")
    lines += tracing_lines(tracing)
    lines += ["", "Reproduce: `bench/run.py`"]
    return "\n".join(lines) + "\n"


def measure_all(targets, args):
    results = []
    edge = SecuredEdge() if any(t.endswith("-tls") for t in targets) else None
    try:
        for broker in ("kafka", "rabbit"):
            results += measure_broker(broker, targets, args, edge)
    finally:
        if edge:
            edge.close()
    saga = measure_saga(args) if "saga" in targets else None
    # Last: at api-kafka's half load when api-kafka ran.
    tracing = measure_tracing(results, args) if "tracing" in targets else None
    return results, saga, tracing


def measure_broker(broker, targets, args, edge):
    results = []
    port = args.port_base + (0 if broker == "kafka" else 1)
    body = SEED_BODY if broker == "kafka" else RABBIT_BODY
    peer_body = PEER_KAFKA_BODY if broker == "kafka" else RABBIT_BODY
    where = ["--topic-prefix", PREFIX] if broker == "kafka" else ["--exchange", PREFIX.rstrip(".")]
    api = f"api-{'kafka' if broker == 'kafka' else 'rabbitmq'}"
    if api in targets:
        s = Server(api, [os.path.join(BIN, "pix-api"), "--broker", broker, "--port", str(port),
                         "--log-level", "warn"] + where, lambda p=port: http_ok(f"http://127.0.0.1:{p}/readyz"))
        try:
            # With its secured twin to compare with: once more at its own half load, as the twin will be.
            twin = f"{api}-tls" in targets
            results.append(measure_http(api, s, f"http://127.0.0.1:{port}/{broker}", body, args,
                                        equal_rate=None if not twin else "half"))
        finally:
            s.stop()
    if f"{api}-tls" in targets:
        # The same gateway on the same plaintext broker, its edge secured; measured as a steady
        # client sees it (keep-alive connections: one handshake each, the token verified from cache).
        tls_port = port + 2
        plain = next((r for r in results if r["target"] == api), None)
        s = Server(f"{api}-tls", [os.path.join(BIN, "pix-api"), "--broker", broker, "--port", str(tls_port),
                                  "--log-level", "warn"] + where + edge.api_flags(),
                   lambda p=tls_port: http_ok(f"https://127.0.0.1:{p}/readyz", cafile=edge.cert))
        try:
            results.append(measure_http(f"{api}-tls", s, f"https://127.0.0.1:{tls_port}/{broker}", body, args,
                                        sim_flags=edge.sim_flags(),
                                        equal_rate=plain["half_rate"] if plain else None))
        finally:
            s.stop()
    for durable, suffix in (("1", "durable"), ("0", "fire-and-forget")):
        name = f"seed-{broker}-{suffix}"
        if name not in targets:
            continue
        if not os.path.exists(PEER):
            say(f"{name}: skipped ({PEER} not found)")
            continue
        s = Server(name, ["bash", PEER, broker, str(port + 100)],
                   lambda p=port + 100: subprocess.run(
                       ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{p}"], capture_output=True).returncode == 0,
                   env={"PEER_DURABLE": durable, "KAFKA_BOOTSTRAP": args.kafka_bootstrap,
                        "RABBIT_URL": with_vhost(args.rabbit_url, PEER_VHOST)})
        try:
            results.append(measure_http(name, s, f"http://127.0.0.1:{port + 100}/{broker}", peer_body, args))
        finally:
            s.stop()
    if f"ceiling-{broker}" in targets:
        results.append(measure_ceiling(broker, args))
        gateway = next((r for r in results if r["target"] == api), None)
        if gateway:
            say(f"ceiling-{broker} at {gateway['half_rate']:.0f}/s: the gateway's half load, for latency at equal load")
            gateway["ceiling_same_rate"] = ceiling_at(broker, gateway["half_rate"], args)
    return results


def needed_binaries(targets):
    """The programs the chosen targets run, to find them missing before anything starts."""
    need = {os.path.join(BIN, "pix-admin")}
    for t in targets:
        if t.startswith(("api-", "seed-")):
            need.add(os.path.join(BIN, "pix-sim"))
        if t.startswith("api-"):
            need.add(os.path.join(BIN, "pix-api"))
        if t.endswith("-tls"):
            need.add(os.path.join(BIN, "pix-token"))
        if t.startswith("ceiling-"):
            need.add(os.path.join(BENCH_BIN, "pix-ceiling"))
        if t in ("saga", "tracing"):
            need |= {os.path.join(BIN, p) for p in ("pix-api", "pix-sim", "pix-antifraud", "pix-settlement",
                                                    "pix-notifier", "pix-auditor")}
            need.add(os.path.join(BENCH_BIN, "pix-saga-probe"))
    return sorted(need)


def configure(args):
    """Points every child process (pix-api, pix-admin, pix-ceiling, the stages) at the chosen
    brokers through their environment, and this script at the chosen binaries."""
    global BIN, BENCH_BIN
    build = os.path.abspath(args.build_dir) if args.build_dir else DEFAULT_BUILD
    BIN, BENCH_BIN = os.path.join(build, "src"), os.path.join(build, "bench")
    if args.build_dir:
        missing = [p for p in needed_binaries(args.targets.split(",")) if not os.access(p, os.X_OK)]
        if missing:
            sys.exit(f"run.py: --build-dir {args.build_dir} lacks {', '.join(missing)} (build them first)")
    # Tracing is measured only where the `tracing` target turns it on: nothing inherits an OTEL_*
    # variable from the shell that started the run.
    inherited = sorted(k for k in os.environ if k.startswith("OTEL_"))
    for k in inherited:
        del os.environ[k]
    if inherited:
        say(f"ignoring {', '.join(inherited)} from the environment (the servers under test run untraced "
            "unless the tracing target says otherwise)")
    os.environ["PIX_KAFKA_BOOTSTRAP"] = args.kafka_bootstrap
    os.environ["PIX_RABBIT_URL"] = args.rabbit_url
    RABBIT_MGMT["url"] = args.rabbit_mgmt_url.rstrip("/")
    RABBIT_MGMT["auth"] = basic_auth(args.rabbit_url)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="api-kafka,api-kafka-tls,api-rabbitmq,api-rabbitmq-tls,seed-kafka-durable,"
                    "seed-kafka-fire-and-forget,seed-rabbit-durable,seed-rabbit-fire-and-forget,ceiling-kafka,"
                    "ceiling-rabbit,saga,tracing",
                    help="comma-separated; an api-*-tls target is compared with its api-* one when both run; "
                    "tracing runs api-kafka and the saga with tracing off, at 1%% and at 100%% (needs Jaeger built)")
    ap.add_argument("--bound-ms", type=float, default=50.0, help="p99 bound for 'sustainable'")
    ap.add_argument("--saga-bound-ms", type=float, default=5000.0, help="e2e p99 bound for the saga")
    ap.add_argument("--step-seconds", type=int, default=5)
    ap.add_argument("--half-seconds", type=int, default=15)
    ap.add_argument("--start-rate", type=float, default=250)
    ap.add_argument("--max-rate", type=float, default=200000)
    ap.add_argument("--saga-rates", type=lambda s: [int(x) for x in s.split(",")],
                    default=[50, 100, 200, 400, 800, 1600, 3200])
    ap.add_argument("--tracing-saga-rate", type=int, default=400,
                    help="payments/s of the tracing target's saga runs (below the saga's knee)")
    ap.add_argument("--tracing-rounds", type=int, default=1,
                    help="tracing target: run off / 1%% / 100%% / off this many times over, interleaved; the "
                         "verdicts are on the median ratio per sampling (default 1)")
    ap.add_argument("--tracing-saga-seconds", type=int,
                    help="duration of each of the tracing target's saga runs (default: --half-seconds, at most 30)")
    ap.add_argument("--saga-population", type=int, default=10000, help="accounts funded for the saga run")
    ap.add_argument("--smoke", action="store_true", help="tiny rates, a few seconds each: checks the machinery")
    ap.add_argument("--smoke-rate", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--build-dir", help="use the binaries of this build directory (its src/ and bench/) as they "
                    "are; default: build the release preset and use build/release")
    ap.add_argument("--use-brokers", action="store_true",
                    help="use the brokers at --kafka-bootstrap and --rabbit-url as they are "
                    "(do not start the local ones)")
    ap.add_argument("--kafka-bootstrap", default=os.environ.get("PIX_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    ap.add_argument("--rabbit-url", default=os.environ.get("PIX_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    ap.add_argument("--rabbit-mgmt-url", default=os.environ.get("PIX_RABBIT_MGMT_URL", "http://127.0.0.1:15672"),
                    help="RabbitMQ's management API (queues purged, the seed's vhost made), as --rabbit-url's user")
    ap.add_argument("--leave-services", action="store_true",
                    help="do not stop the services of ./pix up (they will compete for the CPU)")
    ap.add_argument("--steady-connections", type=int, default=128,
                    help="keep-alive connections of the runs at equal load (plaintext vs secured gateway)")
    ap.add_argument("--port-base", type=int, default=5200,
                    help="first port of the servers under test (they bind it up to +101)")
    args = ap.parse_args()
    known = set(ap.get_default("targets").split(","))
    unknown = [t for t in args.targets.split(",") if t not in known]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if args.smoke:
        args.half_seconds, args.step_seconds = 3, 2
        args.steady_connections = min(args.steady_connections, 4)
    targets = args.targets.split(",")
    os.makedirs(os.path.join(STATE, "logs"), exist_ok=True)

    configure(args)

    say("brokers, build and topology")
    if not args.use_brokers:
        run([os.path.join(ROOT, "scripts", "local", "brokers.sh"), "up"], stdout=subprocess.DEVNULL)
    if not args.build_dir:
        run([os.path.join(ROOT, "scripts", "local", "build.sh"), "release"], stdout=subprocess.DEVNULL)
    admin_topology(PREFIX, PREFIX.rstrip("."))
    prepare_peer_vhost()
    if not args.leave_services:
        say("stopping the services ./pix up started, so that nothing else competes for the CPU")
        run([os.path.join(ROOT, "scripts", "local", "services.sh"), "stop"], stdout=subprocess.DEVNULL)
    try:
        results, saga, tracing = measure_all(targets, args)
    finally:
        admin_topology(PREFIX, PREFIX.rstrip("."), delete=True)
        rabbit_api("DELETE", f"vhosts/{PEER_VHOST}")

    m = machine()
    md = markdown(results, saga, m, args, tracing)
    print()
    print(md)
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime("%Y%m%d-%H%M%S") + ("-smoke" if args.smoke else "")
    doc = {"machine": m, "bound_ms": args.bound_ms, "results": results, "saga": saga, "tracing": tracing}
    for name in (stamp, "latest-smoke" if args.smoke else "latest"):
        with open(os.path.join(args.out, name + ".md"), "w") as f:
            f.write(md)
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(doc, f, indent=2)
    say(f"written {os.path.join(args.out, stamp)}.md and .json")
    bad = [r["target"] for r in results if r["errors"] or r.get("equal_rate", {}).get("errors")]
    bad += ([] if not saga or all(
        x["all_accounted"] for x in saga["runs"][:1]) else ["saga"])
    if tracing and not tracing.get("skipped"):
        bad += [f"tracing {part} {r['tracing']}" for part in ("gateway", "saga") for r in tracing[part]["runs"]
                if r["errors"] or not r.get("all_accounted", True)]
    if bad:
        say(f"errors at half load in: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
