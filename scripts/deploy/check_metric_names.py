#!/usr/bin/env python3
"""Checks that the monitoring files only name metrics that exist, and that they hang together.

Run by scripts/deploy/check_monitoring.sh (python3 standard library plus PyYAML, which Debian's
yamllint brings). Exits 1 on any problem, after printing all of them.

  check_metric_names.py [--root DIR] [--rabbitmq-metrics FILE] [--kafka-metrics FILE]
                        [--facts FILE] [--promql-rules-out FILE] [--list]

What it checks:
  * every metric name in every PromQL expression of dashboards/*.json (panel targets, template
    queries) and monitoring/prometheus/alerts.yml is in docs/metrics.txt (pix_* names, what our
    processes export) or in monitoring/external-metrics.txt (every other name, with its exporter);
    _bucket/_sum/_count are stripped from histogram names first;
  * the kafka-jmx names of external-metrics.txt appear in --kafka-metrics (the JMX exporter's output
    with monitoring/kafka/jmx-exporter.yaml), and the rabbitmq names appear in --rabbitmq-metrics (a
    live rabbitmq_prometheus scrape) or, when no scrape is given, in FACTS.md's list (others warned);
  * every job="..." an expression selects is a scrape job of monitoring/prometheus/prometheus.yml,
    which has the contract's jobs; the dashboards use the datasource uid `prometheus`, have unique
    uids and panel ids;
  * every alert of alerts.yml has a firing test and a not-firing test in alerts_test.yml;
  * the OpenTelemetry collector config wires only components it defines, and has no `logging` exporter.
--promql-rules-out writes every dashboard expression as a recording rule (Grafana's $__ variables
replaced by durations) so that `promtool check rules` can parse them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

KEYWORDS = {
    # aggregation operators
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
    # clauses and binary operators
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
    "atan2", "inf", "nan",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
EXPECTED_JOBS = {"prometheus", "api-kafka", "api-rabbitmq", "pix-saga", "kafka", "rabbitmq", "otel-collector"}
EXPORTERS = {"kafka-jmx", "rabbitmq", "prometheus", "otelcol"}
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "${__rate_interval}": "1m",
                "${__interval}": "1m", "${__range}": "1h"}

errors: list[str] = []
warnings: list[str] = []


def error(msg: str) -> None:
    errors.append(msg)


def warn(msg: str) -> None:
    warnings.append(msg)


# ---- PromQL --------------------------------------------------------------------------------------

def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, label
    names (inside {} or the label lists of by/without/on/ignoring/group_*), strings or durations."""
    s = re.sub(r"\$\{[^}]*\}|\$\w+", " ", expr)                     # Grafana variables
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', s)  # string literals
    s = re.sub(r"#[^\n]*", " ", s)                                   # comments
    s = re.sub(r"\{[^{}]*\}", " ", s)                                # label matchers
    s = re.sub(r"\[[^\[\]]*\]", " ", s)                              # ranges and subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", s)
    s = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)", s):
        name = m.group(1)
        rest = s[m.end():].lstrip()
        if name in KEYWORDS or rest.startswith("("):
            continue
        names.add(name)
    return names


def job_selectors(expr: str) -> list[tuple[str, str]]:
    return re.findall(r'\bjob\s*(=~|=)\s*"([^"]*)"', expr)


def dashboard_exprs(path: Path, data: dict) -> list[tuple[str, str]]:
    """(where, expr) of every panel target and template query of a Grafana dashboard."""
    out = []

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(data.get("panels", [])):
        for t in p.get("targets", []):
            if "expr" in t:
                out.append((f"{path.name}: panel '{p.get('title')}' {t.get('refId')}", t["expr"]))
    for v in data.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and isinstance(q, str):
            m = re.fullmatch(r"\s*(?:label_values|query_result)\((.*)\)\s*", q, re.S)
            inner = m.group(1) if m else q
            if q.strip().startswith("label_values("):
                inner = inner.rsplit(",", 1)[0] if "," in inner else ""
            if inner.strip():
                out.append((f"{path.name}: variable '{v.get('name')}'", inner))
    return out


# ---- metric lists --------------------------------------------------------------------------------

def read_list(path: Path, kinds: set[str] | None) -> dict[str, set[str]]:
    """'<kind> <name>' lines (comments and blank lines skipped) -> {name: {kinds}}."""
    out: dict[str, set[str]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            error(f"{path}:{n}: expected '<exporter> <metric>', got {line!r}")
            continue
        kind, name = parts
        if kinds is not None and kind not in kinds:
            error(f"{path}:{n}: unknown exporter {kind!r} (one of {', '.join(sorted(kinds))})")
        if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name):
            error(f"{path}:{n}: {name!r} is not a metric name")
        out.setdefault(name, set()).add(kind)
    return out


def scraped_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text(errors="replace").splitlines():
        if line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
            if m:
                names.add(m.group(1))
    return names


def facts_rabbitmq_names(path: Path) -> set[str]:
    """The names of FACTS.md's 'Metric names from rabbitmq_prometheus' bullet ('..._x' continues the
    previous full name's stem); the names it says do not exist are left out."""
    text = path.read_text()
    m = re.search(r"Metric names from rabbitmq_prometheus:(.*?)(?:There is no|\n- |\n#)", text, re.S)
    if not m:
        return set()
    names, last = set(), None
    for tok in re.findall(r"`([^`]+)`", m.group(1)):
        if tok.startswith("rabbitmq_"):
            names.add(tok)
            last = tok
        elif tok.startswith("..._") and last:
            names.add(last.rsplit("_", 2)[0] + tok[3:])
    return names


# ---- checks --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    ap.add_argument("--rabbitmq-metrics", type=Path, help="a scrape of rabbitmq_prometheus (/metrics/per-object)")
    ap.add_argument("--kafka-metrics", type=Path, help="the JMX exporter's output with our rules")
    ap.add_argument("--facts", type=Path, help="FACTS.md (rabbitmq names when no live scrape is given)")
    ap.add_argument("--promql-rules-out", type=Path, help="write the dashboard expressions as a rule file")
    ap.add_argument("--list", action="store_true", help="print every metric name used, with where")
    args = ap.parse_args()
    root: Path = args.root

    ours = read_list(root / "docs/metrics.txt", None)
    external = read_list(root / "monitoring/external-metrics.txt", EXPORTERS)
    for name in external:
        if name.startswith("pix_"):
            error(f"monitoring/external-metrics.txt: {name} is ours: it belongs in docs/metrics.txt")

    # Every expression, with where it comes from.
    exprs: list[tuple[str, str]] = []
    dash_exprs: list[tuple[str, str]] = []
    uids: dict[str, Path] = {}
    dashboards = sorted((root / "dashboards").glob("*.json"))
    if not dashboards:
        error("dashboards/: no *.json dashboard")
    for path in dashboards:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            error(f"{path.name}: not JSON: {e}")
            continue
        uid = data.get("uid")
        if not uid or uid in uids:
            error(f"{path.name}: missing or duplicate dashboard uid {uid!r}")
        uids[uid] = path
        ids = []

        def walk(ps):
            for p in ps:
                yield p
                yield from walk(p.get("panels", []))

        for p in walk(data.get("panels", [])):
            ids.append(p.get("id"))
            if p.get("type") == "row":
                continue
            for ds in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]:
                if not isinstance(ds, dict) or ds.get("uid") != "prometheus":
                    error(f"{path.name}: panel '{p.get('title')}': datasource must be uid 'prometheus', got {ds!r}")
            if not p.get("targets"):
                error(f"{path.name}: panel '{p.get('title')}' has no query")
        if len(ids) != len(set(ids)):
            error(f"{path.name}: duplicate panel ids")
        found = dashboard_exprs(path, data)
        dash_exprs += found
        exprs += found

    alerts_path = root / "monitoring/prometheus/alerts.yml"
    alerts = yaml.safe_load(alerts_path.read_text())
    alert_names = []
    for g in alerts.get("groups", []):
        for r in g.get("rules", []):
            where = f"alerts.yml: {r.get('alert') or r.get('record')}"
            exprs.append((where, str(r["expr"])))
            if "alert" in r:
                alert_names.append(r["alert"])
                for key in ("severity",):
                    if key not in r.get("labels", {}):
                        error(f"{where}: no {key} label")
                for key in ("summary", "description", "runbook"):
                    if key not in r.get("annotations", {}):
                        error(f"{where}: no {key} annotation")

    # Metric names.
    used: dict[str, list[str]] = {}
    for where, expr in exprs:
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)
    allowed = set(ours) | set(external)
    for name, wheres in sorted(used.items()):
        base = name
        if name not in allowed:
            for suffix in HISTOGRAM_SUFFIXES:
                if name.endswith(suffix) and name[: -len(suffix)] in allowed:
                    base = name[: -len(suffix)]
                    break
        if base not in allowed:
            hint = "docs/metrics.txt (what our processes export)" if name.startswith("pix_") else \
                "monitoring/external-metrics.txt (with the exporter that serves it)"
            error(f"unknown metric {name!r}, used in {'; '.join(sorted(set(wheres)))}: not in {hint}")
        elif base.startswith("pix_") and base not in ours:
            error(f"{name!r} is not in docs/metrics.txt")
    used_bases = {n if n in allowed else next((n[: -len(s)] for s in HISTOGRAM_SUFFIXES if n.endswith(s)), n)
                  for n in used}
    for name in sorted(set(external) - used_bases):
        warn(f"monitoring/external-metrics.txt lists {name}, which no dashboard or alert uses")
    if args.list:
        for name, wheres in sorted(used.items()):
            print(f"{name:70} {len(wheres)} use(s)")

    # Exporter-side truth for the external names.
    kafka_names = sorted(n for n, k in external.items() if "kafka-jmx" in k)
    if args.kafka_metrics:
        served = scraped_names(args.kafka_metrics)
        for n in kafka_names:
            if n not in served:
                error(f"{n} (kafka-jmx) is not produced by monitoring/kafka/jmx-exporter.yaml "
                      f"from Kafka's MBeans (see {args.kafka_metrics})")
    elif kafka_names:
        warn("kafka-jmx names not checked against the JMX exporter (no --kafka-metrics)")
    rabbit_names = sorted(n for n, k in external.items() if "rabbitmq" in k)
    if args.rabbitmq_metrics:
        served = scraped_names(args.rabbitmq_metrics)
        for n in rabbit_names:
            if n not in served:
                error(f"{n} (rabbitmq) is not in the live rabbitmq_prometheus output ({args.rabbitmq_metrics})")
    else:
        facts = facts_rabbitmq_names(args.facts) if args.facts and args.facts.exists() else set()
        if args.facts and not facts:
            error(f"{args.facts}: no 'Metric names from rabbitmq_prometheus' list found")
        unverified = [n for n in rabbit_names if n not in facts]
        if unverified:
            warn("no live RabbitMQ scrape given: these rabbitmq names are not in FACTS.md and were not checked "
                 "against rabbitmq_prometheus: " + ", ".join(unverified))

    # Scrape jobs.
    prom = yaml.safe_load((root / "monitoring/prometheus/prometheus.yml").read_text())
    jobs = {c["job_name"]: c for c in prom.get("scrape_configs", [])}
    if set(jobs) != EXPECTED_JOBS:
        error(f"prometheus.yml jobs {sorted(jobs)} != the contract's {sorted(EXPECTED_JOBS)}")
    stages = sorted(sc.get("labels", {}).get("stage", "") for sc in jobs.get("pix-saga", {}).get("static_configs", []))
    if stages != ["antifraud", "auditor", "notifier", "settlement"]:
        error(f"prometheus.yml: pix-saga targets need a stage label each (antifraud, settlement, notifier, auditor), "
              f"got {stages}")
    if prom.get("rule_files") != ["alerts.yml"]:
        error("prometheus.yml: rule_files must be [alerts.yml]")
    for where, expr in exprs:
        for op, value in job_selectors(expr):
            if op == "=" and value not in jobs:
                error(f"{where}: job=\"{value}\" is not a scrape job of prometheus.yml")
            if op == "=~" and not any(re.fullmatch(value, j) for j in jobs):
                error(f"{where}: job=~\"{value}\" matches no scrape job of prometheus.yml")

    # Alert unit tests: a firing and a not-firing case for every alert.
    tests = yaml.safe_load((root / "monitoring/prometheus/alerts_test.yml").read_text())
    firing, silent = set(), set()
    for t in tests.get("tests", []):
        for a in t.get("alert_rule_test", []) or []:
            (firing if a.get("exp_alerts") else silent).add(a.get("alertname"))
    for name in alert_names:
        if name not in firing:
            error(f"alerts_test.yml: no test where {name} fires")
        if name not in silent:
            error(f"alerts_test.yml: no test where {name} stays silent")
    for name in (firing | silent) - set(alert_names):
        error(f"alerts_test.yml: tests an alert that alerts.yml does not define: {name}")

    # OpenTelemetry collector: pipelines only use defined components.
    otel = yaml.safe_load((root / "monitoring/otel/otel-collector.yaml").read_text())
    for section in ("receivers", "processors", "exporters"):
        defined = set((otel.get(section) or {}).keys())
        for pname, pipe in (otel.get("service", {}).get("pipelines") or {}).items():
            for comp in pipe.get(section, []):
                if comp not in defined:
                    error(f"otel-collector.yaml: pipeline {pname} uses {section[:-1]} {comp!r}, not defined")
    for ext in otel.get("service", {}).get("extensions", []):
        if ext not in (otel.get("extensions") or {}):
            error(f"otel-collector.yaml: service uses extension {ext!r}, not defined")
    if any(e.split("/")[0] == "logging" for e in (otel.get("exporters") or {})):
        error("otel-collector.yaml: the `logging` exporter is removed from current collectors: use `debug`")

    # Dashboard expressions as a rule file, for promtool's parser.
    if args.promql_rules_out:
        rules = []
        for i, (where, expr) in enumerate(dash_exprs):
            e = expr
            for var, dur in GRAFANA_VARS.items():
                e = e.replace(var, dur)
            rules.append({"record": f"dashboard:expr_{i}", "expr": e})
        args.promql_rules_out.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]},
                                                        width=1000))

    n_names = len(used)
    print(f"checked {len(exprs)} expressions ({len(dash_exprs)} in {len(dashboards)} dashboards, "
          f"{len(exprs) - len(dash_exprs)} in alerts.yml): {n_names} metric names, "
          f"{len(alert_names)} alerts, {len(jobs)} scrape jobs")
    for w in warnings:
        print(f"warning: {w}")
    for e in errors:
        print(f"ERROR: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
