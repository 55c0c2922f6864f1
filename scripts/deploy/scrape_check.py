"""The Python half of prometheus_scrape_check.sh: the Prometheus configuration it derives from
monitoring/prometheus/prometheus.yml, and its assertions through Prometheus' HTTP API.

derive-config  SRC DST INTERVAL CA COMPOSE_TARGET=LOCAL_TARGET...: the same job names, metrics paths,
               schemes, honor_labels and target labels, the same rule files; only the targets named
               are kept, rewritten to the local processes; tls_config.ca_file is CA; scrape and
               evaluation intervals INTERVAL; no alerting section.
assert         PROM_URL PHASE REQUESTS QUEUE DASHBOARD_RULES ALERTS [--report]: exit 0 when every
               assertion of PHASE holds (targets, metrics, rules, dashboards); --report prints one line
               per assertion (ok / FAIL [why]).
"""

from __future__ import annotations

import json
import sys
import urllib.parse
import urllib.request

import yaml


def derive_config(cfg, interval, ca, targets):
    """CFG (prometheus.yml) for this check: (config, job names kept, job/target pairs dropped)."""
    cfg["global"]["scrape_interval"] = interval
    cfg["global"]["scrape_timeout"] = interval
    cfg["global"]["evaluation_interval"] = interval
    cfg.pop("alerting", None)
    jobs, dropped = [], []
    for job in cfg["scrape_configs"]:
        if "tls_config" in job:
            # compose mounts the CA at /run/secrets/pix-ca.crt; here it is the throwaway one.
            job["tls_config"] = dict(job["tls_config"], ca_file=ca)
        statics = []
        for sc in job.get("static_configs", []):
            kept = [targets[t] for t in sc["targets"] if t in targets]
            dropped += [f"{job['job_name']}/{t}" for t in sc["targets"] if t not in targets]
            if kept:
                statics.append(dict(sc, targets=kept))
        if statics:
            jobs.append(dict(job, static_configs=statics))
    cfg["scrape_configs"] = jobs
    return cfg, [j["job_name"] for j in jobs], dropped


class Prometheus:
    """Prometheus' HTTP API at URL."""

    def __init__(self, url):
        self.url = url

    def api(self, path, **params):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body.get('error')}")
        return body["data"]

    def query(self, q):
        return [(s["metric"], float(s["value"][1])) for s in self.api("/api/v1/query", query=q)["result"]]


def check_targets(prom):
    """Every target of the contract's jobs is up, and there is no other."""
    results = []
    want = {("prometheus", ""), ("api-kafka", ""), ("api-rabbitmq", ""), ("pix-saga", "antifraud"), ("rabbitmq", "")}
    got = {}
    for t in prom.api("/api/v1/targets", state="active")["activeTargets"]:
        got[(t["labels"]["job"], t["labels"].get("stage", ""))] = (t["health"], t.get("lastError", ""), t["scrapeUrl"])
    for key in sorted(want):
        health, err, url = got.get(key, ("missing", "", ""))
        results.append((health == "up", f"target job={key[0]}{' stage=' + key[1] if key[1] else ''} is up",
                        f"{health} {url} {err}".strip()))
    for key in sorted(set(got) - want):
        results.append((False, f"unexpected target {key}", ""))
    return results


def check_metrics(prom, requests, queue):
    """Our metrics count the REQUESTS sent, the stage's arrive, RabbitMQ's (QUEUE's) too."""
    results = []

    def check(ok, what, detail=""):
        results.append((bool(ok), what, detail))

    def total(q):
        return sum(v for _, v in prom.query(q))

    n = total('sum(pix_http_requests_total{job="api-kafka", route="/kafka", method="POST", code="200"})')
    check(n >= requests, "pix_http_requests_total{job=api-kafka, route=/kafka, code=200} counts the POSTs", f"{n:g}")
    n = total('sum(pix_http_requests_total{job="api-rabbitmq", route="/rabbit", method="POST", code="200"})')
    check(n >= requests, "pix_http_requests_total{job=api-rabbitmq, route=/rabbit, code=200} counts the POSTs", f"{n:g}")
    n = total('sum(pix_publish_total{job="api-kafka", broker="kafka", result="acked"})')
    check(n >= requests, "pix_publish_total{job=api-kafka, broker=kafka, result=acked}", f"{n:g}")
    n = total('sum(pix_publish_total{job="api-rabbitmq", broker="rabbitmq", result="acked"})')
    check(n >= requests, "pix_publish_total{job=api-rabbitmq, broker=rabbitmq, result=acked}", f"{n:g}")
    s = prom.query('pix_http_request_duration_seconds_count{job="api-kafka", route="/kafka"}')
    check(s and s[0][1] >= requests, "pix_http_request_duration_seconds (histogram) arrives", f"{s}")
    s = prom.query('pix_stage_consumed_total{job="pix-saga", stage="antifraud"}')
    check(s, "pix_stage_consumed_total{job=pix-saga, stage=antifraud} arrives",
          ", ".join(f"{m.get('topic')}={v:g}" for m, v in s) or "no series")
    s = prom.query('pix_stage_consumer_lag{job="pix-saga", stage="antifraud"}')
    check(s, "pix_stage_consumer_lag{stage=antifraud} arrives", f"{[v for _, v in s]}")
    s = prom.query('pix_stage_dead_lettered_total{job="pix-saga", stage="antifraud"}')
    check(s, "pix_stage_dead_lettered_total{stage=antifraud} arrives (0 is fine)", f"{[v for _, v in s]}")
    s = prom.query('pix_build_info{job="pix-saga", stage="antifraud"}')
    check(s and "exported_stage" not in s[0][0], "pix_build_info carries the target's stage label, no exported_stage",
          f"{[m for m, _ in s]}")
    s = prom.query('rabbitmq_global_messages_received_total{job="rabbitmq"}')
    check(s, "rabbitmq_global_messages_received_total{job=rabbitmq} arrives", f"{[v for _, v in s]}")
    s = prom.query(f'rabbitmq_queue_messages_ready{{job="rabbitmq", queue="{queue}"}}')
    check(s and s[0][1] >= requests, f"rabbitmq_queue_messages_ready{{queue={queue}}} (per-object) holds the messages",
          f"{[v for _, v in s]}")
    return results


def check_rules(prom, want_groups):
    """Every rule group of alerts.yml (WANT_GROUPS) is loaded whole and every rule evaluates."""
    results = []
    loaded = {g["name"]: g for g in prom.api("/api/v1/rules")["groups"]}
    for g in want_groups:
        lg = loaded.get(g["name"])
        results.append((bool(lg and len(lg["rules"]) == len(g["rules"])),
                        f"rule group {g['name']}: {len(g['rules'])} rules loaded", f"{len(lg['rules']) if lg else 'missing'}"))
        for r in (lg or {}).get("rules", []):
            results.append((r.get("health") == "ok", f"  {r['name']} evaluates", r.get("lastError") or r.get("health")))
    return results


def check_dashboards(prom, exprs):
    """Every dashboard query runs without error."""
    errors = []
    for e in exprs:
        try:
            prom.api("/api/v1/query", query=e)
        except Exception as ex:  # noqa: BLE001 - reported below
            errors.append(f"{e}: {ex}")
    return [(not errors, f"{len(exprs)} dashboard queries run without error", "; ".join(errors))]


def run_phase(prom, phase, requests, queue, dash_rules, alerts):
    if phase == "targets":
        return check_targets(prom)
    if phase == "metrics":
        return check_metrics(prom, requests, queue)
    if phase == "rules":
        with open(alerts, encoding="utf-8") as fh:
            return check_rules(prom, yaml.safe_load(fh)["groups"])
    if phase == "dashboards":
        with open(dash_rules, encoding="utf-8") as fh:
            return check_dashboards(prom, [r["expr"] for g in yaml.safe_load(fh)["groups"] for r in g["rules"]])
    raise ValueError(f"unknown phase {phase}")


def report(results):
    for ok, what, detail in results:
        print(f"    {'ok  ' if ok else 'FAIL'} {what}" + (f"  [{detail}]" if detail else ""))


def main(argv) -> int:
    if len(argv) >= 5 and argv[0] == "derive-config":
        src, dst, interval, ca = argv[1:5]
        targets = dict(t.split("=", 1) for t in argv[5:])
        with open(src, encoding="utf-8") as fh:
            cfg, kept, dropped = derive_config(yaml.safe_load(fh), interval, ca, targets)
        with open(dst, "w", encoding="utf-8") as fh:
            yaml.safe_dump(cfg, fh, sort_keys=False)
        print("    jobs scraped: " + ", ".join(kept))
        print("    not scraped (no such process here): " + ", ".join(dropped))
        return 0
    if len(argv) >= 7 and argv[0] == "assert":
        prom, phase, requests, queue, dash_rules, alerts = argv[1:7]
        results = run_phase(Prometheus(prom), phase, int(requests), queue, dash_rules, alerts)
        if "--report" in argv[7:]:
            report(results)
        return 1 if not results or not all(ok for ok, _, _ in results) else 0
    print("usage: scrape_check.py derive-config SRC DST INTERVAL CA TARGET=LOCAL... | "
          "assert PROM_URL PHASE REQUESTS QUEUE DASHBOARD_RULES ALERTS [--report]", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
