"""The observability base, rendered with real kustomize, and the Prometheus and Alertmanager tools that judge it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from gitops.render import render
from gitops.repository import repo_root

sys.path.insert(0, str(Path(__file__).parent))  # the tests import their PromQL helpers from promql_selectors.py

ROOT = repo_root(Path(__file__))
BASE = ROOT / "base" / "observability"
RULE_TESTS = Path(__file__).parent / "rules"
# Series that do not come from the service, so no scrape of it can show them; each is named by what exports it
# (tests/observability/edge_proxy.py exports the Gateway's two in the end-to-end tests).
PLATFORM_METRICS = {
    "envoy_cluster_upstream_rq_xx": "the Gateway's Envoy proxies (PodMonitor envoy-proxies, base/networking)",
    "envoy_cluster_upstream_rq_total": "the Gateway's Envoy proxies (PodMonitor envoy-proxies, base/networking)",
    "loki_write_dropped_entries_total": "Alloy's loki.write (ServiceMonitor alloy)",
    "otelcol_receiver_refused_spans_total": "Alloy's otelcol.receiver.otlp (ServiceMonitor alloy)",
    "otelcol_exporter_send_failed_spans_total": "Alloy's otelcol.exporter.otlp (ServiceMonitor alloy)",
    "tempo_discarded_spans_total": "Tempo (ServiceMonitor tempo)",
    "loki_request_duration_seconds_count": "Loki's HTTP server (ServiceMonitor loki)",
    "up": "Prometheus itself, one series per scrape target",
    "kube_deployment_spec_replicas": "kube-state-metrics (deployment metrics)",
    "kube_pod_container_resource_limits": "kube-state-metrics (pod metrics)",
    "kube_pod_container_status_restarts_total": "kube-state-metrics (pod metrics)",
    "kube_pod_container_status_waiting_reason": "kube-state-metrics (pod metrics)",
    "kube_pod_container_status_last_terminated_reason": "kube-state-metrics (pod metrics)",
    "container_memory_working_set_bytes": "the kubelet's cAdvisor",
    "container_cpu_usage_seconds_total": "the kubelet's cAdvisor",
    "container_cpu_cfs_periods_total": "the kubelet's cAdvisor",
    "container_cpu_cfs_throttled_periods_total": "the kubelet's cAdvisor",
}


# Prometheus 3 and Alertmanager 0.33 (the chart runs Prometheus v3.14.0 and Alertmanager v0.34.0): Debian sid's
# builds, unpacked by scripts/prometheus3.sh. Prometheus 2.42 and Alertmanager 0.25: Debian bookworm's packages,
# which ./scripts/test installs as root. The rules are tested on both (docs/observability.md says why).
PROMETHEUS3_BIN = ROOT / ".tools" / "prometheus3" / "usr" / "bin"
PROMETHEUS3_TEMPLATES = ROOT / ".tools" / "prometheus3" / "usr" / "share" / "prometheus" / "alertmanager"
PROMETHEUS_MAJORS = (2, 3)


def require_tool(name: str, major: int = 3) -> str:
    """The path of promtool, amtool, prometheus or prometheus-alertmanager: by default the Prometheus 3 family
    from .tools/prometheus3, with major=2 Debian bookworm's."""
    if major == 3:
        path: str | None = str(PROMETHEUS3_BIN / name) if (PROMETHEUS3_BIN / name).is_file() else None
        message = f"{name} is missing from {PROMETHEUS3_BIN}: run ./scripts/test (scripts/prometheus3.sh)"
    else:
        path = shutil.which(name)
        message = f"{name} is missing: run ./scripts/test as root (it installs Debian's prometheus packages)"
    if path is None:
        if os.environ.get("CI") == "true" or os.geteuid() == 0:
            pytest.fail(message)
        pytest.skip(message)
    return path


def wait_until(
    what: str, condition: Callable[[], Any], timeout: float, details: Callable[[], str] = str, interval: float = 0.2
) -> Any:
    """Poll until ``condition`` returns something true and return it; a server not answering yet counts as not
    yet. Fails after ``timeout`` seconds with ``details()``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except httpx.TransportError:
            result = None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s\n{details()}")


def wait_ready(url: str, log: Path, timeout: float = 30) -> None:
    """Until a server's readiness endpoint answers 200; its log on failure."""
    wait_until(f"{url} ready", lambda: httpx.get(url, timeout=2).status_code == 200, timeout, log.read_text)


def start_alertmanager(config_file: Path, folder: Path, port: int) -> subprocess.Popen[bytes]:
    """Alertmanager 0.33 on loopback with this config, alone (no cluster peers); its log in folder.

    Debian's build reads its default notification templates from the system's /usr/share/prometheus, where
    bookworm's 0.25 package keeps older ones (no slack.default.color, for one); the config it is given here also
    names its own, which define the same templates after them. The deployed Alertmanager (the chart's image) has its
    own built in, so the repository's config names none."""
    config = yaml.safe_load(config_file.read_text())
    config["templates"] = [*config.get("templates", []), str(PROMETHEUS3_TEMPLATES / "*.tmpl")]
    effective = folder / "alertmanager.effective.yaml"
    effective.write_text(yaml.safe_dump(config, sort_keys=False))
    log = folder / "alertmanager.log"
    process = subprocess.Popen(
        [
            require_tool("prometheus-alertmanager"),
            f"--config.file={effective}",
            f"--storage.path={folder / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_ready(f"http://127.0.0.1:{port}/-/ready", log)
    return process


class Stack:
    """What Argo CD syncs from base/observability and its charts' Applications (base/observability/charts)."""

    def __init__(self) -> None:
        self.objects = render(BASE, ROOT)[1] + render(BASE / "charts", ROOT)[1]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        (obj,) = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        return obj

    def prometheus_rules(self) -> dict[str, list[dict[str, Any]]]:
        """Each PrometheusRule's groups, by object name: the rule files Prometheus gets from the operator."""
        return {o["metadata"]["name"]: o["spec"]["groups"] for o in self.objects if o["kind"] == "PrometheusRule"}

    def rules(self) -> list[dict[str, Any]]:
        return [rule for groups in self.prometheus_rules().values() for group in groups for rule in group["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        return [rule for rule in self.rules() if "alert" in rule]

    def values(self, application: str) -> dict[str, Any]:
        values: dict[str, Any] = self.one("Application", application)["spec"]["source"]["helm"]["valuesObject"]
        return values

    def alertmanager_config(self) -> str:
        """The routing as the operator reads it: the rendered Secret's alertmanager.yaml."""
        secret = self.one("Secret", "alertmanager-config")
        return base64.b64decode(secret["data"]["alertmanager.yaml"]).decode()

    def dashboard(self) -> dict[str, Any]:
        config_map = self.one("ConfigMap", "microservice-demo-dashboard")
        dashboard: dict[str, Any] = json.loads(config_map["data"]["microservice-demo.json"])
        return dashboard


@pytest.fixture(scope="session")
def stack() -> Stack:
    return Stack()


@pytest.fixture(scope="session")
def rule_files(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """<PrometheusRule name>.rules.yaml for each PrometheusRule, in a folder of their own."""
    folder = tmp_path_factory.mktemp("rules")
    files = {}
    for name, groups in stack.prometheus_rules().items():
        path = folder / f"{name}.rules.yaml"
        path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        files[name] = path
    return files
