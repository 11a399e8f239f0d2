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
# Series that do not come from the service, so no scrape here can show them; each is named by the component of
# kube-prometheus-stack that exports it.
PLATFORM_METRICS = {
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


def require_tool(name: str) -> str:
    """The path of promtool, amtool, prometheus or prometheus-alertmanager (Debian's prometheus and
    prometheus-alertmanager packages, which ./scripts/test installs as root)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is missing: run ./scripts/test as root (it installs Debian's prometheus packages)"
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
    """Debian's Alertmanager on loopback with this config, alone (no cluster peers); its log in folder."""
    log = folder / "alertmanager.log"
    process = subprocess.Popen(
        [
            require_tool("prometheus-alertmanager"),
            f"--config.file={config_file}",
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
