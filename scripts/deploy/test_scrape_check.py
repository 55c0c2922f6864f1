"""Tests of scrape_check.py: the derived Prometheus configuration, and each phase's assertions
against a stand-in for Prometheus' HTTP API."""

import pytest

import scrape_check as sc

PROM_YML = {
    "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
    "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]},
    "rule_files": ["alerts.yml"],
    "scrape_configs": [
        {"job_name": "api-kafka", "scheme": "https", "tls_config": {"ca_file": "/run/secrets/pix-ca.crt", "server_name": "api-kafka"},
         "static_configs": [{"targets": ["api-kafka:5000"]}]},
        {"job_name": "pix-saga", "static_configs": [{"targets": ["antifraud:9101"], "labels": {"stage": "antifraud"}},
                                                    {"targets": ["settlement:9102"], "labels": {"stage": "settlement"}}]},
        {"job_name": "kafka", "static_configs": [{"targets": ["kafka:9404"]}]},
    ],
}


def test_derive_config_keeps_the_jobs_it_can_scrape():
    cfg, kept, dropped = sc.derive_config(PROM_YML.copy(), "2s", "/tmp/ca.crt",
                                          {"api-kafka:5000": "127.0.0.1:1001", "antifraud:9101": "127.0.0.1:1002"})
    assert kept == ["api-kafka", "pix-saga"]
    assert dropped == ["pix-saga/settlement:9102", "kafka/kafka:9404"]
    assert "alerting" not in cfg and cfg["rule_files"] == ["alerts.yml"]
    assert cfg["global"] == {"scrape_interval": "2s", "evaluation_interval": "2s", "scrape_timeout": "2s"}
    api, saga = cfg["scrape_configs"]
    assert api["tls_config"] == {"ca_file": "/tmp/ca.crt", "server_name": "api-kafka"} and api["scheme"] == "https"
    assert saga["static_configs"] == [{"targets": ["127.0.0.1:1002"], "labels": {"stage": "antifraud"}}]


class FakeProm:
    """Answers api() from a dict path -> data, query() from a dict PromQL -> [(labels, value)]."""

    def __init__(self, data=None, series=None, failing=()):
        self.data, self.series, self.failing = data or {}, series or {}, failing

    def api(self, path, **params):
        if params.get("query") in self.failing:
            raise RuntimeError("bad_data: parse error")
        return self.data[path]

    def query(self, q):
        return self.series.get(q, [])


def target(job, health="up", stage=None):
    labels = {"job": job, **({"stage": stage} if stage else {})}
    return {"labels": labels, "health": health, "lastError": "" if health == "up" else "connection refused",
            "scrapeUrl": f"http://127.0.0.1/{job}"}


UP = [target("prometheus"), target("api-kafka"), target("api-rabbitmq"), target("pix-saga", stage="antifraud"), target("rabbitmq")]


def failed(results):
    return [(what, detail) for ok, what, detail in results if not ok]


def test_targets_up_pass_and_down_or_unexpected_fail():
    assert failed(sc.check_targets(FakeProm({"/api/v1/targets": {"activeTargets": UP}}))) == []
    down = UP[:1] + [target("api-kafka", "down")] + UP[2:] + [target("kafka")]
    assert failed(sc.check_targets(FakeProm({"/api/v1/targets": {"activeTargets": down}}))) == [
        ("target job=api-kafka is up", "down http://127.0.0.1/api-kafka connection refused"),
        ("unexpected target ('kafka', '')", "")]


def test_metrics_count_the_requests():
    queue = "q.pix.notification.sent"
    series = {q: [({}, 5.0)] for q in [
        'sum(pix_http_requests_total{job="api-kafka", route="/kafka", method="POST", code="200"})',
        'sum(pix_http_requests_total{job="api-rabbitmq", route="/rabbit", method="POST", code="200"})',
        'sum(pix_publish_total{job="api-kafka", broker="kafka", result="acked"})',
        'sum(pix_publish_total{job="api-rabbitmq", broker="rabbitmq", result="acked"})',
        'pix_http_request_duration_seconds_count{job="api-kafka", route="/kafka"}',
        'pix_stage_consumer_lag{job="pix-saga", stage="antifraud"}',
        'pix_stage_dead_lettered_total{job="pix-saga", stage="antifraud"}',
        'rabbitmq_global_messages_received_total{job="rabbitmq"}',
        f'rabbitmq_queue_messages_ready{{job="rabbitmq", queue="{queue}"}}']}
    series['pix_stage_consumed_total{job="pix-saga", stage="antifraud"}'] = [({"topic": "pix.payment.requested"}, 5.0)]
    series['pix_build_info{job="pix-saga", stage="antifraud"}'] = [({"stage": "antifraud"}, 1.0)]
    assert failed(sc.check_metrics(FakeProm(series=series), 5, queue)) == []
    series['pix_build_info{job="pix-saga", stage="antifraud"}'] = [({"exported_stage": "antifraud"}, 1.0)]
    del series['sum(pix_publish_total{job="api-kafka", broker="kafka", result="acked"})']
    assert failed(sc.check_metrics(FakeProm(series=series), 6, queue)) == [
        ("pix_http_requests_total{job=api-kafka, route=/kafka, code=200} counts the POSTs", "5"),
        ("pix_http_requests_total{job=api-rabbitmq, route=/rabbit, code=200} counts the POSTs", "5"),
        ("pix_publish_total{job=api-kafka, broker=kafka, result=acked}", "0"),
        ("pix_publish_total{job=api-rabbitmq, broker=rabbitmq, result=acked}", "5"),
        ("pix_http_request_duration_seconds (histogram) arrives", "[({}, 5.0)]"),
        ("pix_build_info carries the target's stage label, no exported_stage", "[{'exported_stage': 'antifraud'}]"),
        ("rabbitmq_queue_messages_ready{queue=q.pix.notification.sent} (per-object) holds the messages", "[5.0]")]


def test_rules_loaded_and_evaluating():
    want = [{"name": "pix", "rules": [{"alert": "A"}, {"alert": "B"}]}]
    good = {"groups": [{"name": "pix", "rules": [{"name": "A", "health": "ok"}, {"name": "B", "health": "ok"}]}]}
    assert failed(sc.check_rules(FakeProm({"/api/v1/rules": good}), want)) == []
    bad = {"groups": [{"name": "pix", "rules": [{"name": "A", "health": "err", "lastError": "many-to-many"}]}]}
    assert failed(sc.check_rules(FakeProm({"/api/v1/rules": bad}), want)) == [
        ("rule group pix: 2 rules loaded", "1"), ("  A evaluates", "many-to-many")]
    assert failed(sc.check_rules(FakeProm({"/api/v1/rules": {"groups": []}}), want)) == [
        ("rule group pix: 2 rules loaded", "missing")]


def test_dashboard_queries():
    prom = FakeProm({"/api/v1/query": {"result": []}}, failing={"sum(rate(x[5m])) by"})
    assert failed(sc.check_dashboards(prom, ["up"])) == []
    assert failed(sc.check_dashboards(prom, ["up", "sum(rate(x[5m])) by"])) == [
        ("2 dashboard queries run without error", "sum(rate(x[5m])) by: bad_data: parse error")]


def test_unknown_phase():
    with pytest.raises(ValueError):
        sc.run_phase(FakeProm(), "nope", 1, "q", "", "")
