#!/usr/bin/env python3
"""Side-by-side benchmarks of pix-pubsub, on the same brokers, in one run.

Measures, with the same load generator (pix-sim) and the same payload:
  1. api-kafka and api-rabbitmq, durable as shipped;
  2. the seed's design (../shared/peers/seed-flask) with PEER_DURABLE=1 (fair: waits for the
     broker) and PEER_DURABLE=0 (the seed's fire-and-forget);
  3. the ceiling: pix-ceiling publishes the same events through the same client library with the
     same durability, without HTTP;
  4. the whole saga: payments per second from requested to notification.sent, and the
     end-to-end latency (requestedAt to the notification's arrival).

For each target: the highest open-loop rate whose p99 stays under --bound-ms with no errors (max
sustainable throughput), then a run at half that rate for latency, CPU seconds per 1,000 events
and peak RSS; idle RSS before any load. Writes bench/results/<stamp>.md and .json (and
latest.md / latest.json) and prints the ratios gateway/seed and gateway/ceiling.

    bench/run.py                  # the full run (about 15-25 minutes on 2 cores)
    bench/run.py --smoke          # a few seconds per target at a tiny rate: checks the machinery
    bench/run.py --targets api-kafka,ceiling-kafka --step-seconds 5

It brings the brokers up (or uses running ones), builds the release preset, and stops the
services `./pix up` started so that they do not compete for the CPU; `./pix up` starts them again.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "release", "src")
BENCH_BIN = os.path.join(ROOT, "build", "release", "bench")
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


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False


def rabbit_api(method, path, body=None):
    """RabbitMQ's management API (guest on loopback)."""
    req = urllib.request.Request(f"http://127.0.0.1:15672/api/{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"content-type": "application/json",
                                          "authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="})
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
        wait_ready(lambda: self.proc.poll() is None and ready(), name, timeout=180)

    def pids(self):
        return tree(self.proc.pid)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


# ---- load ------------------------------------------------------------------------------------

def load(url, rate, seconds, body):
    """One open-loop run of pix-sim; its JSON result."""
    purge_queues()
    # Few connections up front (pix-sim opens more when requests wait): the seed's sync gunicorn
    # workers each block on one idle keep-alive connection, so pre-opening 64 would stall them.
    cmd = [os.path.join(BIN, "pix-sim"), "load", "--url", url, "--rate", str(int(rate)), "--duration", f"{seconds}s",
           "--body", body, "--json", "--no-progress", "--concurrency", "4"]
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


def measure_http(name, server, url, body, args):
    pids = server.pids()
    time.sleep(1)
    idle = rss_kb(pids, "VmRSS")
    load(url, 20, 2, body)  # warm up: connections, workers, producers
    say(f"{name}: searching the max sustainable rate (p99 <= {args.bound_ms} ms, no errors)")
    if args.smoke:
        peak, ladder = args.smoke_rate, []
    else:
        peak, ladder = search(lambda r, s: load(url, r, s, body), args.start_rate, args.bound_ms, args.step_seconds,
                              args.max_rate)
    half = max(peak / 2, 1) if not args.smoke else args.smoke_rate
    say(f"{name}: {half:.0f}/s for {args.half_seconds}s (half of {peak:.0f}/s)")
    cpu0 = cpu_seconds(server.pids())
    r = load(url, half, args.half_seconds, body)
    cpu = cpu_seconds(server.pids()) - cpu0
    return {
        "target": name, "max_rate": peak, "capped": capped(ladder, args), "ladder": ladder, "half_rate": half,
        "latency_us": latency(r), "completed": r["completed"], "errors": errors(r),
        "cpu_s_per_1000": round(1000 * cpu / max(r["completed"], 1), 4),
        "peak_rss_kb": rss_kb(server.pids(), "VmHWM"), "idle_rss_kb": idle,
    }


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
    """The saga on topics, an exchange, databases and consumer groups of its own."""

    def __init__(self, population):
        self.dir = os.path.join(STATE, "bench", "saga-" + datetime.datetime.utcnow().strftime("%Y%m%d%H%M%S"))
        os.makedirs(self.dir, exist_ok=True)
        admin_topology(SAGA_PREFIX, SAGA_PREFIX.rstrip("."))
        exchange = SAGA_PREFIX.rstrip(".")
        common = ["--topic-prefix", SAGA_PREFIX, "--log-level", "warn"]
        self.servers = [Server("saga-api", [os.path.join(BIN, "pix-api"), "--broker", "kafka", "--port", "5210"]
                               + common, lambda: http_ok("http://127.0.0.1:5210/readyz"))]
        stages = {
            "antifraud": [],
            "settlement": ["--db", os.path.join(self.dir, "ledger.db"), "--population", str(population)],
            "notifier": ["--exchange", exchange],
            "auditor": ["--db", os.path.join(self.dir, "audit.db"), "--notification-queue",
                        exchange + ".pix.notification.sent"],
        }
        for i, (stage, extra) in enumerate(stages.items()):
            port = 9201 + i
            self.servers.append(Server(f"saga-{stage}", [os.path.join(BIN, f"pix-{stage}"), "--admin-port", str(port),
                                                          "--group", SAGA_PREFIX + stage, "--instance-id",
                                                          SAGA_PREFIX + stage] + common + extra,
                                       lambda p=port: http_ok(f"http://127.0.0.1:{p}/readyz")))

    def report(self):
        out = subprocess.run([os.path.join(BIN, "pix-admin"), "report", "--json", "--audit-db",
                              os.path.join(self.dir, "audit.db"), "--ledger-db", os.path.join(self.dir, "ledger.db")],
                             capture_output=True, text=True)
        return json.loads(out.stdout)

    def close(self):
        for s in reversed(self.servers):
            s.stop()
        admin_topology(SAGA_PREFIX, SAGA_PREFIX.rstrip("."), delete=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def measure_saga(args):
    say("saga: api-kafka and the four stages on topics of their own")
    world = SagaWorld(args.saga_population)
    try:
        return saga_runs(world, args)
    finally:
        world.close()


def saga_runs(world, args):
    rates = [args.smoke_rate] if args.smoke else args.saga_rates
    seconds = args.half_seconds
    results, best = [], None
    for rate in rates:
        before = world.report()
        probe = subprocess.Popen([os.path.join(BENCH_BIN, "pix-saga-probe"), "--exchange", SAGA_PREFIX.rstrip("."),
                                  "--duration", f"{seconds + 60}s", "--idle-exit-s", "8", "--json"],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        sim = subprocess.run([os.path.join(BIN, "pix-sim"), "payments", "--url", "http://127.0.0.1:5210/kafka",
                              "--rate", str(rate), "--duration", f"{seconds}s", "--population",
                              str(args.saga_population), "--json", "--no-progress"], capture_output=True, text=True)
        sent = json.loads(sim.stdout) if sim.stdout.strip() else {"status": {}}
        accepted = sent.get("status", {}).get("200", 0)
        latency = json.loads(probe.communicate()[0] or "{}")
        # Every payment accounted for: wait (bounded) until the audit trail has them all.
        deadline, after = time.time() + 60, before
        while time.time() < deadline:
            after = world.report()
            judged = after["validated"] - before["validated"]
            done = after["settled"] + after["rejectedAtSettlement"] - before["settled"] - before["rejectedAtSettlement"]
            if after["requested"] - before["requested"] >= accepted and done >= judged and \
                    after["notified"] - before["notified"] >= after["settled"] - before["settled"]:
                break
            time.sleep(1)
        delta = {k: after[k] - before[k] for k in ("requested", "validated", "rejectedAtValidation", "settled",
                                                    "rejectedAtSettlement", "notified")}
        accounted = (delta["requested"] == accepted
                     and delta["requested"] == delta["validated"] + delta["rejectedAtValidation"]
                     and delta["validated"] == delta["settled"] + delta["rejectedAtSettlement"]
                     and delta["notified"] == delta["settled"])
        e2e = {k: round(v / 1000, 1) for k, v in latency.get("latency_us", {}).items() if k != "count"}
        row = {"rate": rate, "accepted": accepted, "saga": delta, "e2e_latency_ms": e2e,
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


def markdown(results, saga, m, args):
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
    lines += ["", "Reproduce: `bench/run.py`"]
    return "\n".join(lines) + "\n"


def measure_all(targets, args):
    results = []
    for broker, port in (("kafka", 5200), ("rabbit", 5201)):
        body = SEED_BODY if broker == "kafka" else RABBIT_BODY
        peer_body = PEER_KAFKA_BODY if broker == "kafka" else RABBIT_BODY
        where = ["--topic-prefix", PREFIX] if broker == "kafka" else ["--exchange", PREFIX.rstrip(".")]
        name = f"api-{'kafka' if broker == 'kafka' else 'rabbitmq'}"
        if name in targets:
            s = Server(name, [os.path.join(BIN, "pix-api"), "--broker", broker, "--port", str(port),
                              "--log-level", "warn"] + where, lambda p=port: http_ok(f"http://127.0.0.1:{p}/readyz"))
            try:
                results.append(measure_http(name, s, f"http://127.0.0.1:{port}/{broker}", body, args))
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
                       env={"PEER_DURABLE": durable,
                            "RABBIT_URL": f"amqp://guest:guest@127.0.0.1:5672/{PEER_VHOST}"})
            try:
                results.append(measure_http(name, s, f"http://127.0.0.1:{port + 100}/{broker}", peer_body, args))
            finally:
                s.stop()
        if f"ceiling-{broker}" in targets:
            results.append(measure_ceiling(broker, args))
            api = next((r for r in results if r["target"] == f"api-{'kafka' if broker == 'kafka' else 'rabbitmq'}"), None)
            if api:
                say(f"ceiling-{broker} at {api['half_rate']:.0f}/s: the gateway's half load, for latency at equal load")
                api["ceiling_same_rate"] = ceiling_at(broker, api["half_rate"], args)
    saga = measure_saga(args) if "saga" in targets else None
    return results, saga


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="api-kafka,api-rabbitmq,seed-kafka-durable,seed-kafka-fire-and-forget,"
                    "seed-rabbit-durable,seed-rabbit-fire-and-forget,ceiling-kafka,ceiling-rabbit,saga")
    ap.add_argument("--bound-ms", type=float, default=50.0, help="p99 bound for 'sustainable'")
    ap.add_argument("--saga-bound-ms", type=float, default=5000.0, help="e2e p99 bound for the saga")
    ap.add_argument("--step-seconds", type=int, default=5)
    ap.add_argument("--half-seconds", type=int, default=15)
    ap.add_argument("--start-rate", type=float, default=250)
    ap.add_argument("--max-rate", type=float, default=200000)
    ap.add_argument("--saga-rates", type=lambda s: [int(x) for x in s.split(",")],
                    default=[50, 100, 200, 400, 800, 1600, 3200])
    ap.add_argument("--saga-population", type=int, default=10000, help="accounts funded for the saga run")
    ap.add_argument("--smoke", action="store_true", help="tiny rates, a few seconds each: checks the machinery")
    ap.add_argument("--smoke-rate", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    if args.smoke:
        args.half_seconds, args.step_seconds = 3, 2
    targets = args.targets.split(",")
    os.makedirs(os.path.join(STATE, "logs"), exist_ok=True)

    say("brokers, build and topology")
    run([os.path.join(ROOT, "scripts", "local", "brokers.sh"), "up"], stdout=subprocess.DEVNULL)
    run([os.path.join(ROOT, "scripts", "local", "build.sh"), "release"], stdout=subprocess.DEVNULL)
    admin_topology(PREFIX, PREFIX.rstrip("."))
    prepare_peer_vhost()
    say("stopping the services ./pix up started, so that nothing else competes for the CPU")
    run([os.path.join(ROOT, "scripts", "local", "services.sh"), "stop"], stdout=subprocess.DEVNULL)
    try:
        results, saga = measure_all(targets, args)
    finally:
        admin_topology(PREFIX, PREFIX.rstrip("."), delete=True)
        rabbit_api("DELETE", f"vhosts/{PEER_VHOST}")

    m = machine()
    md = markdown(results, saga, m, args)
    print()
    print(md)
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime("%Y%m%d-%H%M%S") + ("-smoke" if args.smoke else "")
    doc = {"machine": m, "bound_ms": args.bound_ms, "results": results, "saga": saga}
    for name in (stamp, "latest-smoke" if args.smoke else "latest"):
        with open(os.path.join(args.out, name + ".md"), "w") as f:
            f.write(md)
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(doc, f, indent=2)
    say(f"written {os.path.join(args.out, stamp)}.md and .json")
    bad = [r["target"] for r in results if r["errors"]] + ([] if not saga or all(
        x["all_accounted"] for x in saga["runs"][:1]) else ["saga"])
    if bad:
        say(f"errors at half load in: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
