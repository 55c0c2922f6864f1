"""Tests of compose_contract.py: the repository's docker-compose.yaml passes; each rule fails, with a
message naming what is wrong, on a copy of it broken in one place."""

import copy
import shutil
import subprocess

import pytest
import yaml

import compose_contract as cc
from checklib import ROOT, Checker


@pytest.fixture(scope="module")
def compose():
    """(docker-compose.yaml's text, its configuration as `docker-compose config` resolves it)."""
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose not installed (scripts/local/deps.sh)")
    text = (ROOT / "docker-compose.yaml").read_text()
    out = subprocess.run(["docker-compose", "-f", "docker-compose.yaml", "config"], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    return text, yaml.safe_load(out.stdout)


def failures(text, cfg):
    chk = Checker()
    cc.check_config(chk, text, cfg)
    return chk.failures


def test_the_repository_passes(compose):
    assert failures(*compose) == []


def test_a_port_on_every_interface_fails(compose):
    text, cfg = compose
    cfg = copy.deepcopy(cfg)
    cfg["services"]["api-kafka"]["ports"] = ["5000:5000"]
    assert failures(text, cfg) == ["service api-kafka: port 5000->5000 bound to all interfaces"]


def test_a_port_outside_the_contract_fails(compose):
    text, cfg = compose
    cfg = copy.deepcopy(cfg)
    cfg["services"]["grafana"]["ports"].append("127.0.0.1:3001:3001")
    assert failures(text, cfg) == ["service grafana: publishes container ports [3000, 3001], the contract says [3000]"]


def test_an_unpinned_image_fails(compose):
    text, cfg = compose
    cfg = copy.deepcopy(cfg)
    cfg["services"]["jaeger"]["image"] = "jaegertracing/all-in-one:latest"
    assert failures(text, cfg) == ["service jaeger: image 'jaegertracing/all-in-one:latest' not pinned (tag, not :latest)"]


def test_waiting_for_a_start_instead_of_health_fails(compose):
    text, cfg = compose
    cfg = copy.deepcopy(cfg)
    dep = next(iter(cfg["services"]["api-kafka"]["depends_on"]))
    cfg["services"]["api-kafka"]["depends_on"][dep] = {"condition": "service_started"}
    assert failures(text, cfg) == [f"service api-kafka: depends_on {dep} with condition 'service_started' "
                                   f"(want service_healthy / service_completed_successfully)"]


def test_a_long_running_service_without_healthcheck_fails(compose):
    text, cfg = compose
    cfg = copy.deepcopy(cfg)
    del cfg["services"]["grafana"]["healthcheck"]
    found = failures(text, cfg)
    assert "service grafana: long-running (restart: unless-stopped) without a healthcheck" in found


def test_a_built_image_outside_the_contract_fails(compose):
    text, cfg = compose
    cfg = copy.deepcopy(cfg)
    cfg["services"]["api-kafka"]["image"] = "api-kafka:dev"
    found = failures(text, cfg)
    assert len(found) == 1 and found[0].startswith("service api-kafka: built image 'api-kafka:dev' is not one of the contract's")


def test_a_credential_variable_fails(compose):
    text, cfg = compose
    found = failures(text + "\nx-note: ${GRAFANA_ADMIN_PASSWORD}\n", cfg)
    assert found == [".env.example lacks ['GRAFANA_ADMIN_PASSWORD']",
                     "docker-compose.yaml takes credentials from variables: ['GRAFANA_ADMIN_PASSWORD']"]


def test_variables():
    chk = Checker()
    cc.check_variables(chk, "image: x:${TAG:-1}\nliteral: $${NOT_A_VAR}\n", "TAG=1\n")
    assert chk.failures == []
    cc.check_variables(chk, "a: ${PIX_SECRETS_DIR} ${API_TOKEN} ${TLS_KEY}", "PIX_SECRETS_DIR=x\nAPI_TOKEN=\nTLS_KEY=\n")
    assert chk.failures == ["docker-compose.yaml takes credentials from variables: ['API_TOKEN', 'TLS_KEY']"]


def test_prometheus_targets():
    chk = Checker()
    good = {"job_name": "ok", "static_configs": [{"targets": ["localhost:9090", "kafka:9404", "api-kafka:5000"]}]}
    bad = {"job_name": "bad", "static_configs": [{"targets": ["api-kafka:5001", "nowhere:80"]}]}
    prom = {"scrape_configs": [good, bad]}
    cc.check_prometheus_targets(chk, prom)
    assert chk.failures == ["prometheus job bad: target api-kafka:5001 is not a port of a compose service",
                            "prometheus job bad: target nowhere:80 is not a port of a compose service"]


@pytest.mark.parametrize("spec, want", [
    ("127.0.0.1:5000:5000/tcp", ("127.0.0.1", "5000", 5000)),
    ("9092:29092", ("", "9092", 29092)),
    ("8080", ("", "", 8080)),
    ({"host_ip": "127.0.0.1", "published": "3000", "target": 3000}, ("127.0.0.1", "3000", 3000)),
])
def test_parse_port(spec, want):
    assert cc.parse_port(spec) == want


@pytest.mark.parametrize("image, pinned", [
    ("prom/prometheus:v2.53.0", True), ("grafana/grafana:latest", False), ("redis", False),
    ("registry:5000/team/app:1.2", True), ("busybox@sha256:" + "a" * 64, True),
])
def test_image_pinned(image, pinned):
    assert cc.image_pinned(image) is pinned
