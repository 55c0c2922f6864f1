"""The alerts check_monitoring.sh sends to a real Alertmanager, and what its inhibit_rules must make of
them: while Kafka is down, the API and stage alerts that the outage explains are muted
(inhibited), the broker alert itself, the RabbitMQ API's and an unrelated stage outage are not.

    scripts/deploy/alertmanager_inhibitions.py alerts OUT.json    the alerts, as Prometheus sends them
    scripts/deploy/alertmanager_inhibitions.py check ALERTS.json  GET /api/v2/alerts' answer: exit 1
                                                                  (and why, on stderr) unless as wanted
"""

from __future__ import annotations

import json
import sys

# (alertname, job, stage) -> inhibited?
WANT = {
    ("KafkaDown", "kafka", ""): False,
    ("PixApiHigh5xxRatio", "api-kafka", ""): True,
    ("PixPublishFailures", "api-kafka", ""): True,
    ("PixStageRetrying", "pix-saga", "antifraud"): True,
    ("PixApiHigh5xxRatio", "api-rabbitmq", ""): False,
    ("PixStageDown", "pix-saga", "settlement"): False,
    ("PixConsumerLagGrowing", "pix-saga", "settlement"): True,  # by KafkaDown and by PixStageDown
    ("PixConsumerLagGrowing", "pix-saga", "notifier"): True,  # by KafkaDown
}


def alert(name, severity, **labels):
    return {"labels": dict(alertname=name, severity=severity, **labels),
            "annotations": {"summary": name}, "generatorURL": "http://prometheus:9090/graph"}


def outage_alerts():
    """The alerts Prometheus would send while Kafka is down (and one unrelated to Kafka)."""
    return [
        alert("KafkaDown", "critical", job="kafka", instance="kafka:9404"),
        alert("PixApiHigh5xxRatio", "critical", job="api-kafka"),
        alert("PixPublishFailures", "warning", job="api-kafka", broker="kafka", result="broker_unavailable"),
        alert("PixStageRetrying", "warning", job="pix-saga", instance="antifraud:9101", stage="antifraud"),
        alert("PixApiHigh5xxRatio", "critical", job="api-rabbitmq"),
        alert("PixStageDown", "critical", job="pix-saga", instance="settlement:9102", stage="settlement"),
        alert("PixConsumerLagGrowing", "warning", job="pix-saga", instance="settlement:9102", stage="settlement"),
        alert("PixConsumerLagGrowing", "warning", job="pix-saga", instance="notifier:9103", stage="notifier"),
    ]


def inhibition_problems(listed) -> list[str]:
    """What of WANT the Alertmanager's list of alerts (GET /api/v2/alerts) does not show."""
    got = {}
    for a in listed:
        labels = a["labels"]
        got[(labels["alertname"], labels.get("job", ""), labels.get("stage", ""))] = \
            a["status"]["state"] == "suppressed" and bool(a["status"]["inhibitedBy"])
    return [f"{k}: inhibited={got.get(k)} (want {v})" for k, v in WANT.items() if got.get(k) != v]


def main(argv) -> int:
    if len(argv) == 2 and argv[0] == "alerts":
        with open(argv[1], "w", encoding="utf-8") as fh:
            json.dump(outage_alerts(), fh)
        return 0
    if len(argv) == 2 and argv[0] == "check":
        with open(argv[1], encoding="utf-8") as fh:
            bad = inhibition_problems(json.load(fh))
        if bad:
            print("\n".join(bad), file=sys.stderr)
            return 1
        return 0
    print("usage: alertmanager_inhibitions.py alerts OUT.json | check ALERTS.json", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
