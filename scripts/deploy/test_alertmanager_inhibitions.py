"""Tests of alertmanager_inhibitions.py: an Alertmanager answer that mutes exactly what a Kafka outage
explains passes; one that mutes too much or too little fails, naming the alert."""

import json

import alertmanager_inhibitions as ai


def listed(inhibited):
    """GET /api/v2/alerts' answer for the outage's alerts, those of INHIBITED suppressed."""
    out = []
    for a in ai.outage_alerts():
        labels = a["labels"]
        key = (labels["alertname"], labels.get("job", ""), labels.get("stage", ""))
        muted = key in inhibited
        out.append({"labels": labels, "status": {"state": "suppressed" if muted else "active",
                                                 "inhibitedBy": ["f00"] if muted else [], "silencedBy": []}})
    return out


WANTED = {k for k, v in ai.WANT.items() if v}


def test_the_wanted_inhibitions_pass():
    assert ai.inhibition_problems(listed(WANTED)) == []


def test_muting_the_rabbitmq_api_fails():
    assert ai.inhibition_problems(listed(WANTED | {("PixApiHigh5xxRatio", "api-rabbitmq", "")})) == [
        "('PixApiHigh5xxRatio', 'api-rabbitmq', ''): inhibited=True (want False)"]


def test_not_muting_a_stage_fails():
    assert ai.inhibition_problems(listed(WANTED - {("PixStageRetrying", "pix-saga", "antifraud")})) == [
        "('PixStageRetrying', 'pix-saga', 'antifraud'): inhibited=False (want True)"]


def test_a_silenced_alert_is_not_inhibited():
    answer = listed(WANTED)
    answer[1]["status"]["inhibitedBy"] = []  # suppressed by a silence only
    assert ai.inhibition_problems(answer) == ["('PixApiHigh5xxRatio', 'api-kafka', ''): inhibited=False (want True)"]


def test_missing_alerts_fail():
    assert len(ai.inhibition_problems([])) == len(ai.WANT)


def test_the_command_line(tmp_path, capsys):
    alerts = tmp_path / "alerts.json"
    assert ai.main(["alerts", str(alerts)]) == 0
    assert {a["labels"]["alertname"] for a in json.loads(alerts.read_text())} >= {"KafkaDown", "PixStageDown"}
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps(listed(set())))
    assert ai.main(["check", str(answer)]) == 1
    assert "inhibited=False (want True)" in capsys.readouterr().err
