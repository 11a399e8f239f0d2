"""Alertmanager's routing, judged by amtool and by a real Alertmanager (Debian sid's 0.33, scripts/prometheus3.sh)."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import ROOT, Stack, require_tool, start_alertmanager, wait_until
from gitops.contracts import load_contracts

RUNBOOKS = "https://github.com/your-org/microservice-demo/blob/main/docs/runbooks/"

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
    assert "5 inhibit rules" in result.stdout


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
        # kube-prometheus-stack's Watchdog goes to the dead man's switch, and to no person.
        ({"alertname": "Watchdog", "severity": "none"}, ["heartbeat"]),
        ({"alertname": "InfoInhibitor", "severity": "none"}, ["null"]),
        # Info alerts are context: in the ticket channel, when InfoInhibitor lets them through.
        ({"alertname": "CPUThrottlingHigh", "severity": "info", "namespace": "microservice-demo-prod"}, ["ticket"]),
        # No severity at all: still seen, in the ticket channel.
        ({"alertname": "Unlabelled"}, ["ticket"]),
    ],
)
def test_routing_by_severity_and_environment(config_file: Path, labels: dict[str, str], receivers: list[str]) -> None:
    assert _routes(config_file, labels) == receivers


def test_receivers_send_resolved_notices_and_read_secrets_from_the_mounted_secret(stack: Stack) -> None:
    config = yaml.safe_load(stack.alertmanager_config())
    receivers = {r["name"]: r for r in config["receivers"]}
    # A Slack incoming webhook posts to the one channel it was made for: one webhook (one Secret key) per channel.
    assert [c["api_url_file"] for c in receivers["page"]["slack_configs"]] == [SECRETS + "slack-page-url"]
    assert [c["api_url_file"] for c in receivers["ticket"]["slack_configs"]] == [SECRETS + "slack-ticket-url"]
    assert [c["to"] for c in receivers["page"]["email_configs"]] == ["oncall@example.com"]
    for receiver in receivers.values():
        for kind in ("slack_configs", "email_configs"):
            for integration in receiver.get(kind, []):
                assert integration["send_resolved"] is True, receiver["name"]
                assert "api_url" not in integration, "the Slack URL is a secret: api_url_file only"
    (heartbeat,) = receivers["heartbeat"]["webhook_configs"]
    assert heartbeat["url_file"] == SECRETS + "heartbeat-url" and "url" not in heartbeat
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


def _inhibited(alertmanager: httpx.Client, alerts: list[dict[str, str]], settled: int) -> dict[str, bool]:
    """Post these alerts (labels only) and return, once Alertmanager has them all, whether each is inhibited, by a
    key of its alertname and, where given, pod."""
    body = [{"labels": labels, "annotations": {"summary": "test"}} for labels in alerts]
    assert alertmanager.post("/api/v2/alerts", json=body).status_code == 200

    def states() -> dict[str, bool]:
        found = alertmanager.get("/api/v2/alerts").json()
        return {
            "/".join(filter(None, (a["labels"]["alertname"], a["labels"].get("pod")))): bool(a["status"]["inhibitedBy"])
            for a in found
        }

    wait_until(
        "Alertmanager has the alerts",
        lambda: len(states()) == len(alerts) and settled <= sum(states().values()),
        30,
        lambda: str(states()),
    )
    return states()


def test_one_event_makes_one_notification(alertmanager: httpx.Client) -> None:
    """The service's own alert holds back the chart's alert for the same event; MicroserviceDemoDown holds back
    what follows from it; InfoInhibitor holds back info alerts where nothing worse fires."""
    prod = {"namespace": "microservice-demo-prod"}
    pod = {**prod, "pod": "microservice-demo-a", "container": "microservice-demo"}
    other = {**prod, "pod": "microservice-demo-b", "container": "microservice-demo"}
    states = _inhibited(
        alertmanager,
        [
            {"alertname": "MicroserviceDemoCrashLooping", "severity": "warning", **pod},
            {"alertname": "KubePodCrashLooping", "severity": "warning", **pod},
            {"alertname": "MicroserviceDemoCPUThrottled", "severity": "warning", **pod},
            {"alertname": "CPUThrottlingHigh", "severity": "info", **pod},
            {"alertname": "CPUThrottlingHigh", "severity": "info", **other},  # another pod: its own event
            {"alertname": "MicroserviceDemoDown", "severity": "critical", **prod},
            {"alertname": "MicroserviceDemoSLOMetricAbsent", "severity": "critical", "slo": "availability", **prod},
            {
                "alertname": "KubePodNotReady",
                "severity": "warning",
                "namespace": "microservice-demo-prod",
                "pod": "microservice-demo-c",
            },
            {"alertname": "InfoInhibitor", "severity": "none", "namespace": "observability"},
            {"alertname": "KubeQuotaAlmostFull", "severity": "info", "namespace": "observability"},
        ],
        settled=5,
    )
    assert states == {
        "MicroserviceDemoCrashLooping/microservice-demo-a": False,
        "KubePodCrashLooping/microservice-demo-a": True,
        "MicroserviceDemoCPUThrottled/microservice-demo-a": False,
        "CPUThrottlingHigh/microservice-demo-a": True,
        "CPUThrottlingHigh/microservice-demo-b": False,
        "MicroserviceDemoDown": False,
        "MicroserviceDemoSLOMetricAbsent": True,
        "KubePodNotReady/microservice-demo-c": True,
        "InfoInhibitor": False,
        "KubeQuotaAlmostFull": True,
    }


@pytest.fixture
def delivering_alertmanager(
    stack: Stack, tmp_path: Path, free_port: Callable[[], int]
) -> Iterator[tuple[httpx.Client, list[tuple[str, dict[str, Any]]]]]:
    """The repository's routing with its secrets as files that point at a local HTTP sink (the heartbeat
    service, the Slack webhooks), and its timings: the heartbeat's group_wait is 0s already."""
    received: list[tuple[str, dict[str, Any]]] = []

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{sink.server_port}"
    for key in ("slack-page-url", "slack-ticket-url", "heartbeat-url"):
        (tmp_path / key).write_text(f"{url}/{key}")
    (tmp_path / "smtp-password").write_text("not-a-real-password")
    config = tmp_path / "alertmanager.yaml"
    config.write_text(stack.alertmanager_config().replace(SECRETS, f"{tmp_path}/"))
    port = free_port()
    process = start_alertmanager(config, tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client, received
    finally:
        process.terminate()
        process.wait(15)
        sink.shutdown()


def test_the_watchdog_reaches_the_heartbeat_service_and_no_person(
    delivering_alertmanager: tuple[httpx.Client, list[tuple[str, dict[str, Any]]]],
) -> None:
    """The dead man's switch: while Prometheus and Alertmanager work, Watchdog reaches the heartbeat service's
    URL (from the Secret), and nothing else."""
    alertmanager, received = delivering_alertmanager
    watchdog = {"labels": {"alertname": "Watchdog", "severity": "none"}, "annotations": {"summary": "test"}}
    assert alertmanager.post("/api/v2/alerts", json=[watchdog]).status_code == 200
    wait_until("the heartbeat arrives", lambda: received, 30, lambda: str(received))
    time.sleep(1)  # anything else would have come with it
    ((path, body),) = received
    assert path == "/heartbeat-url"
    assert body["status"] == "firing" and body["commonLabels"]["alertname"] == "Watchdog"


DOCS = ROOT / "docs" / "observability.md"
ALERT_TABLE_HEADER = "| alert | severity | from | goes to | runbook |"


def _every_alert(stack: Stack) -> list[tuple[str, str, str, str]]:
    """(alert, severity, where it is defined, runbook) for every alert the platform can raise: this repository's
    PrometheusRules and kube-prometheus-stack's, as its contract lists them for these values."""
    ours = {
        (rule["alert"], rule["labels"]["severity"]): (name, rule["annotations"]["runbook_url"])
        for name, groups in stack.prometheus_rules().items()
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    }
    chart = {
        (alert["alert"], alert["severity"]): ("kube-prometheus-stack", alert["runbook"])
        for alert in load_contracts(ROOT)["kube-prometheus-stack"].data["alerts"]
    }
    assert not ours.keys() & chart.keys(), "an alert of ours has the name of one of the chart's"
    return [(alert, severity, *where) for (alert, severity), where in sorted({**ours, **chart}.items())]


def _goes_to(config_file: Path, alert: str, severity: str, source: str) -> str:
    """Where the alert is routed: per environment for the service's, in `observability` for the platform's."""
    if source.startswith("microservice-demo"):
        where = {
            env: _routes(
                config_file, {"alertname": alert, "severity": severity, "namespace": f"microservice-demo-{env}"}
            )
            for env in ("prod", "staging", "dev")
        }
        if where["prod"] == where["staging"] == where["dev"]:
            return ", ".join(where["prod"])
        return f"{', '.join(where['prod'])} (prod); {', '.join(where['dev'])} (dev, staging)"
    return ", ".join(_routes(config_file, {"alertname": alert, "severity": severity, "namespace": "observability"}))


def test_every_alert_the_platform_can_raise_has_a_deliberate_route_and_a_row_in_the_docs(
    stack: Stack, config_file: Path
) -> None:
    """docs/observability.md lists every alert, where amtool says it goes, and its runbook; no alert reaches the
    root route by default (the root's receiver is reserved for what nobody foresaw)."""
    rows = []
    for alert, severity, source, runbook in _every_alert(stack):
        goes_to = _goes_to(config_file, alert, severity, source)
        link = (
            f"[{runbook.rsplit('/', 1)[1]}](runbooks/{runbook.rsplit('/', 1)[1]})"
            if runbook.startswith(RUNBOOKS)
            else f"[upstream]({runbook})"
        )
        rows.append(f"| `{alert}` | {severity} | {source} | {goes_to} | {link} |")
    expected = "\n".join([ALERT_TABLE_HEADER, "|---|---|---|---|---|", *rows])
    text = DOCS.read_text()
    assert ALERT_TABLE_HEADER in text, f"docs/observability.md should have:\n{expected}"
    start = text.index(ALERT_TABLE_HEADER)
    end = text.find("\n\n", start)
    assert text[start : end if end != -1 else None].strip() == expected, (
        f"docs/observability.md should have:\n{expected}"
    )
    # Every severity an alert carries has a route of its own below the root.
    routed = {
        matcher.removeprefix('severity="').removesuffix('"')
        for route in yaml.safe_load(config_file.read_text())["route"]["routes"]
        for matcher in route.get("matchers", [])
        if matcher.startswith('severity="')
    }
    assert {severity for _, severity, *_ in _every_alert(stack)} <= routed, "an alert falls through to the root route"


def test_no_chart_alert_watches_a_component_a_managed_cluster_hides(stack: Stack) -> None:
    """The control plane's scheduler, controller manager, etcd and kube-proxy, CoreDNS and node-exporter are not
    scraped (kube-prometheus-stack.application.yaml), so alerts on them, `absent()` ones above all, could never
    clear: none is rendered. The API server is scraped, so KubeAPIDown stays."""
    hidden = re.compile(
        r"KubeScheduler|KubeControllerManager|KubeProxy|[Ee]tcd|CoreDNS|NodeExporter|Node(Filesystem|Network|Clock)"
    )
    alerts = {alert for alert, *_ in _every_alert(stack)}
    assert not {alert for alert in alerts if hidden.match(alert)}
    assert "KubeAPIDown" in alerts
    values = stack.values("kube-prometheus-stack")
    for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy", "coreDns", "nodeExporter"):
        assert values[component]["enabled"] is False, component
