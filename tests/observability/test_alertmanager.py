"""Alertmanager's routing, judged by amtool and by a real Alertmanager (Debian's prometheus-alertmanager)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import Stack, require_tool, start_alertmanager, wait_until

SECRETS = "/etc/alertmanager/secrets/alertmanager-notifications/"


@pytest.fixture
def config_file(stack: Stack, tmp_path: Path) -> Path:
    path = tmp_path / "alertmanager.yaml"
    path.write_text(stack.alertmanager_config())
    return path


def _routes(config_file: Path, labels: dict[str, str]) -> list[str]:
    amtool = require_tool("amtool")
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config_file}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def test_amtool_accepts_the_config(config_file: Path) -> None:
    amtool = require_tool("amtool")
    result = subprocess.run([amtool, "check-config", str(config_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 inhibit rules" in result.stdout


def test_amtool_rejects_a_route_to_a_missing_receiver(config_file: Path) -> None:
    amtool = require_tool("amtool")
    config = yaml.safe_load(config_file.read_text())
    config["route"]["routes"][0]["receiver"] = "nobody"
    config_file.write_text(yaml.safe_dump(config))
    result = subprocess.run([amtool, "check-config", str(config_file)], capture_output=True, text=True)
    assert result.returncode != 0
    assert 'undefined receiver "nobody"' in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        # Pages: critical in prod goes to the page channel and on-call's email (one receiver, both integrations).
        (
            {"alertname": "MicroserviceDemoDown", "severity": "critical", "namespace": "microservice-demo-prod"},
            ["page"],
        ),
        # Tickets: every warning.
        (
            {"alertname": "MicroserviceDemoHighLatency", "severity": "warning", "namespace": "microservice-demo-prod"},
            ["ticket"],
        ),
        (
            {"alertname": "MicroserviceDemoHighLatency", "severity": "warning", "namespace": "microservice-demo-dev"},
            ["ticket"],
        ),
        # Critical outside prod is a ticket: nobody is woken for dev or staging.
        (
            {"alertname": "MicroserviceDemoDown", "severity": "critical", "namespace": "microservice-demo-dev"},
            ["ticket"],
        ),
        (
            {"alertname": "MicroserviceDemoDown", "severity": "critical", "namespace": "microservice-demo-staging"},
            ["ticket"],
        ),
        # Critical platform alerts (kube-prometheus-stack's own, in other namespaces) page too.
        ({"alertname": "KubeAPIDown", "severity": "critical", "namespace": "kube-system"}, ["page"]),
        # kube-prometheus-stack's Watchdog (severity none) reaches no person.
        ({"alertname": "Watchdog", "severity": "none"}, ["null"]),
        # No severity at all: still seen, in the ticket channel.
        ({"alertname": "Unlabelled"}, ["ticket"]),
    ],
)
def test_routing_by_severity_and_environment(config_file: Path, labels: dict[str, str], receivers: list[str]) -> None:
    assert _routes(config_file, labels) == receivers


def test_receivers_send_resolved_notices_and_read_secrets_from_the_mounted_secret(stack: Stack) -> None:
    config = yaml.safe_load(stack.alertmanager_config())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert [c["channel"] for c in receivers["page"]["slack_configs"]] == ["#microservice-demo-page"]
    assert [c["to"] for c in receivers["page"]["email_configs"]] == ["oncall@example.com"]
    assert [c["channel"] for c in receivers["ticket"]["slack_configs"]] == ["#microservice-demo-tickets"]
    for receiver in receivers.values():
        for kind in ("slack_configs", "email_configs"):
            for integration in receiver.get(kind, []):
                assert integration["send_resolved"] is True, receiver["name"]
                assert "api_url" not in integration, "the Slack URL is a secret: api_url_file only"
                if kind == "slack_configs":
                    assert integration["api_url_file"].startswith(SECRETS)
    assert config["global"]["smtp_auth_password_file"].startswith(SECRETS)
    assert "smtp_auth_password" not in config["global"]
    assert config["route"]["group_by"] == ["alertname", "namespace"]
    # The operator mounts the Secret that those paths name, and reads the routing from the rendered Secret.
    spec = stack.values("kube-prometheus-stack")["alertmanager"]["alertmanagerSpec"]
    assert spec["secrets"] == [SECRETS.rstrip("/").rsplit("/", 1)[1]]
    assert spec["configSecret"] == stack.one("Secret", "alertmanager-config")["metadata"]["name"]


@pytest.fixture
def alertmanager(config_file: Path, tmp_path: Path, free_port: Callable[[], int]) -> Iterator[httpx.Client]:
    """A real Alertmanager on loopback with the repository's routing."""
    port = free_port()
    process = start_alertmanager(config_file, tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
    finally:
        process.terminate()
        process.wait(15)


def test_a_page_inhibits_the_ticket_of_the_same_alert_and_namespace(alertmanager: httpx.Client) -> None:
    def alert(severity: str, namespace: str) -> dict[str, Any]:
        labels = {"alertname": "MicroserviceDemoAvailabilityBudgetBurn", "severity": severity, "namespace": namespace}
        return {"labels": labels, "annotations": {"summary": "test"}}

    alerts = [
        alert("critical", "microservice-demo-prod"),
        alert("warning", "microservice-demo-prod"),  # inhibited by the page above
        alert("warning", "microservice-demo-staging"),  # another namespace: not inhibited
    ]
    assert alertmanager.post("/api/v2/alerts", json=alerts).status_code == 200

    def states() -> dict[tuple[str, str], list[str]]:
        found = alertmanager.get("/api/v2/alerts").json()
        return {(a["labels"]["severity"], a["labels"]["namespace"]): a["status"]["inhibitedBy"] for a in found}

    wait_until(
        "the ticket is inhibited",
        lambda: len(states()) == 3 and bool(states()[("warning", "microservice-demo-prod")]),
        30,
        lambda: str(states()),
    )
    assert states()[("critical", "microservice-demo-prod")] == []
    assert states()[("warning", "microservice-demo-staging")] == []
