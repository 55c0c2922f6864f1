"""Tests of rabbit_definitions.py's offline rules: the repository's template passes; a template with a
guest user, a password, a permission too wide, a missing queue or an extra topic permission fails,
saying which. (The live check runs against a real RabbitMQ in check_compose.sh.)"""

import copy

import pytest

import dev_secrets
import rabbit_definitions as rd
from checklib import Checker, topic_names


@pytest.fixture(scope="module")
def template():
    return rd.load_defs()


def failures(defs):
    chk = Checker()
    rd.check_offline(chk, defs, topic_names())
    return chk.failures


def test_the_repository_template_passes(template):
    assert failures(template) == []


def test_guest_and_a_password_fail(template):
    d = copy.deepcopy(template)
    d["users"].append({"name": "guest", "tags": ["administrator"]})
    d["users"][0]["password_hash"] = "x"
    found = failures(d)
    assert found[0].startswith("users ") and "must be exactly" in found[0]
    assert f"{d['users'][0]['name']}: the template must hold no password or hash: dev_secrets.sh renders them " \
           f"from the password files" in found


def test_a_permission_too_wide_fails(template):
    d = copy.deepcopy(template)
    next(p for p in d["permissions"] if p["user"] == "notifier" and p["vhost"] == "/")["configure"] = ".*"
    found = failures(d)
    assert len(found) == 1
    assert found[0].startswith("notifier: configure permission covers ['amq.gen-Xyz', 'pix', ") and found[0].endswith("want []")


def test_a_missing_queue_and_an_extra_topic_permission_fail(template):
    d = copy.deepcopy(template)
    d["queues"] = [q for q in d["queues"] if q["name"] != "pix.audit.log"]
    d["topic_permissions"].append({"user": "auditor", "vhost": "/", "exchange": "pix", "write": ".*", "read": ""})
    found = failures(d)
    assert any(f.startswith("queues [") and f.endswith("differ from the five topics + pix.unrouted + pix.dead-letter")
               for f in found)
    assert any(f.startswith("unexpected topic permissions [") and "('auditor', '/', 'pix')" in f for f in found)


def test_topology_diff():
    ex = {"name": "pix", "type": "topic", "durable": True, "auto_delete": False, "internal": False, "arguments": {}}
    q = {"name": "pix.dlq", "durable": True, "auto_delete": False, "arguments": {"x-queue-type": "quorum"}}
    a = rd.topology_of([ex], [q], [])
    b = rd.topology_of([ex], [dict(q, arguments={})], [])
    assert rd.diff(a, a) == []
    assert rd.diff(a, b) == ["- queue ('pix.dlq', True, False, '{\"x-queue-type\": \"quorum\"}')",
                             "+ queue ('pix.dlq', True, False, '{}')"]


def test_hash_is_rabbitmqs(capsys):
    assert rd.main(["hash", "s3cret"]) == 0
    assert dev_secrets.rabbit_hash_matches(capsys.readouterr().out.strip(), "s3cret")
    assert rd.main(["bogus"]) == 64
