"""Tests of check_commands.py: command lines and environments against a program's --help."""

import check_commands as cmds

HELP = """Usage: pix-api [OPTIONS]
  --broker TEXT (Env:PIX_BROKER)
  --port INT (Env:PIX_PORT)
"""


def test_calls_are_found_in_compose_and_k8s():
    compose = {"services": {
        "api-kafka": {"image": "api-kafka:latest", "environment": ["PIX_BROKER=kafka", "PIX_PORT"]},
        "stage": {"image": "pix-pubsub:latest", "command": ["pix-admin", "topology", "--skip-rabbit"]},
        "grafana": {"image": "grafana/grafana:11.1.0", "command": ["grafana", "server"]},
    }}
    assert cmds.compose_calls(compose) == [
        ("docker-compose.yaml: api-kafka", "pix-api", [], [], ["PIX_BROKER", "PIX_PORT"]),
        ("docker-compose.yaml: stage", "pix-admin", ["topology"], ["--skip-rabbit"], []),
    ]
    doc = {"spec": {"template": {"spec": {"containers": [
        {"name": "antifraud", "image": "pix-pubsub:latest", "command": ["pix-antifraud"], "args": ["--group", "g"],
         "env": [{"name": "PIX_GROUP", "value": "g"}]}]}}}}
    assert cmds.k8s_calls(doc, "k8s/saga.yaml") == [
        ("k8s/saga.yaml: antifraud", "pix-antifraud", [], ["--group", "g"], ["PIX_GROUP"])]


def test_known_flags_and_variables_pass(capsys):
    calls = [("compose: api", "pix-api", [], ["--broker=kafka", "--port", "5000"], ["PIX_BROKER", "OTHER"])]
    assert cmds.check(calls, lambda program, sub: HELP) == []
    assert "ok   compose: api: pix-api  (3 args, 1 PIX_* variables)" in capsys.readouterr().out


def test_unknown_flags_and_variables_fail():
    calls = [("compose: api", "pix-api", [], ["--brokr", "kafka"], ["PIX_PORTT"])]
    assert cmds.check(calls, lambda program, sub: HELP) == [
        "compose: api: pix-api has no flag --brokr",
        "compose: api: pix-api reads no environment variable PIX_PORTT"]


def test_a_failing_help_is_reported_once():
    calls = [("a", "pix-nope", [], [], []), ("b", "pix-nope", [], [], [])]
    assert cmds.check(calls, lambda program, sub: None) == [
        "a: `pix-nope  --help` failed (is pix-nope a program of ours?)"]


def test_no_calls_fail():
    assert cmds.check([], lambda program, sub: HELP) == ["no pix-* program found in docker-compose.yaml or k8s/"]
