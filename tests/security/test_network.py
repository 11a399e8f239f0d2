"""What the NetworkPolicies allow, computed by IBM's network-config-analyzer (PyPI network-config-analyzer, `nca`)
from every NetworkPolicy the repository deploys, over a cluster of stand-in pods: the service and its post-deploy
check with their rendered labels, and the charts' pods with the labels the policies rely on (Prometheus, Grafana,
Alloy, Alertmanager, Envoy, Trivy Operator, the EventListeners, Argo CD's notifications controller, CoreDNS)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
NCA = ROOT / ".tools" / "network-analyzer" / "bin" / "nca"
ENVIRONMENTS = ("dev", "staging", "prod")
INTERNET = "internet"
# name -> (namespace, labels, container ports): the charts' pods, as the policies select them.
CHART_PODS = {
    "prometheus": ("observability", {"app.kubernetes.io/name": "prometheus"}, {"web": 9090}),
    "grafana": ("observability", {"app.kubernetes.io/name": "grafana"}, {"grafana": 3000}),
    "alloy": ("observability", {"app.kubernetes.io/name": "alloy"}, {"otlp-http": 4318}),
    "alertmanager": ("observability", {"app.kubernetes.io/name": "alertmanager"}, {"web": 9093}),
    "envoy": ("envoy-gateway-system", {"app.kubernetes.io/name": "envoy",
                                       "app.kubernetes.io/managed-by": "envoy-gateway"}, {"https": 10443}),
    "trivy-operator": ("security-tools", {"app.kubernetes.io/name": "trivy-operator"}, {"metrics": 8080}),
    "el-github": ("ci-cd", {"eventlistener": "github"}, {"http-listener": 8080}),
    "el-promotion": ("ci-cd", {"eventlistener": "promotion"}, {"http-listener": 8080}),
    "notifications": ("argocd", {"app.kubernetes.io/name": "argocd-notifications-controller"}, {"metrics": 9001}),
    "coredns": ("kube-system", {"k8s-app": "kube-dns"}, {"dns": 53}),
}  # fmt: skip


def _pod(name: str, namespace: str, labels: dict[str, str], ports: dict[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "containers": [
                {"name": "c", "image": "x", "ports": [{"name": n, "containerPort": p} for n, p in ports.items()]}
            ]
        },
    }


def _cluster(folder: Path, objects: list[dict[str, Any]]) -> tuple[Path, Path, Path]:
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    names = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"} | {
        "kube-system", "argocd", "tekton-pipelines"}  # fmt: skip
    namespaces = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}}}
        for n in sorted(names)
    ]
    pods = [_pod(name, *spec) for name, spec in CHART_PODS.items()]
    for env in ENVIRONMENTS:
        namespace = f"microservice-demo-{env}"
        for kind, name in (("Deployment", f"service-{env}"), ("Job", f"check-{env}")):
            (workload,) = [o for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace]
            template = workload["spec"]["template"]
            ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
            pods.append(_pod(name, namespace, template["metadata"]["labels"], ports))
    files = folder / "policies.yaml", folder / "namespaces.yaml", folder / "pods.yaml"
    for path, content in zip(files, (policies, namespaces, pods), strict=True):
        path.write_text(yaml.safe_dump_all(content))
    return files


class Connectivity:
    def __init__(self, rules: list[dict[str, Any]], pods: dict[str, str]) -> None:
        self.rules = rules
        self.pods = pods  # name -> namespace

    def _ends(self, rule: dict[str, Any], side: str) -> Iterator[str]:
        if f"{side}_ip_block" in rule:
            yield INTERNET
        for namespace in rule.get(f"{side}_ns", []):
            for pod, pod_namespace in self.pods.items():
                if pod_namespace == namespace and (rule[f"{side}_pods"] == ["*"] or pod in rule[f"{side}_pods"]):
                    yield pod

    @staticmethod
    def _ports(connection: Any, port: int, protocol: str) -> bool:
        if connection == "All connections":
            return True
        if protocol not in [p.strip() for p in connection["protocols"].split(",")]:
            return False
        for allowed in connection.get("dst_ports", []):
            low, _, high = str(allowed).partition("-")
            if int(low) <= port <= int(high or low):
                return True
        return not connection.get("dst_ports")

    def allows(self, source: str, destination: str, port: int, protocol: str = "TCP") -> bool:
        return any(
            source in self._ends(rule, "src")
            and destination in self._ends(rule, "dst")
            and any(self._ports(c, port, protocol) for c in rule["connection"])
            for rule in self.rules
        )


@pytest.fixture(scope="module")
def connectivity(tmp_path_factory: pytest.TempPathFactory, everything: list[dict[str, Any]]) -> Connectivity:
    if not NCA.exists():
        message = "nca is missing: run ./scripts/test (it syncs tools/network-analyzer)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("network")
    policies, namespaces, pods = _cluster(folder, everything)
    out = folder / "connectivity.json"
    result = subprocess.run(
        [str(NCA), "--connectivity", str(policies), "--ns_list", str(namespaces), "--pod_list", str(pods),
         "--output_format", "json", "--file_out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.exists(), result.stdout + result.stderr
    (query,) = json.loads(out.read_text())
    rules = query["explanation"][0]["rules"]
    by_name = {p["metadata"]["name"]: p["metadata"]["namespace"] for p in yaml.safe_load_all(pods.read_text())}
    return Connectivity(rules, by_name)


@pytest.mark.parametrize(
    ("source", "destination", "port"),
    [
        ("envoy", "service-prod", 8080),  # the Gateway's proxies to the service
        ("envoy", "grafana", 3000),
        ("prometheus", "service-dev", 8080),  # scraping
        ("prometheus", "service-prod", 8080),
        ("prometheus", "trivy-operator", 8080),
        ("prometheus", "alertmanager", 9093),
        ("service-prod", "alloy", 4318),  # OTLP traces
        ("service-prod", "coredns", 53),
        ("check-prod", "service-prod", 8080),  # the post-deploy check
        ("grafana", "prometheus", 9090),
        ("notifications", "el-promotion", 8080),  # the on-deployed webhook
        ("el-github", INTERNET, 443),  # GitHub's API, registries
        ("alertmanager", INTERNET, 443),  # Slack
    ],
)
def test_what_the_system_needs_is_allowed(connectivity: Connectivity, source: str, destination: str, port: int) -> None:
    assert connectivity.allows(source, destination, port)


@pytest.mark.parametrize(
    ("source", "destination", "port"),
    [
        ("service-dev", "service-prod", 8080),  # environments do not reach each other
        ("service-prod", "service-dev", 8080),
        ("check-dev", "service-prod", 8080),
        ("service-prod", INTERNET, 443),  # the service calls nothing outside
        ("service-prod", "prometheus", 9090),
        ("service-prod", "grafana", 3000),
        ("grafana", "service-prod", 8080),  # only Prometheus and the proxies reach the service
        ("alloy", "service-prod", 8080),
        ("trivy-operator", "service-prod", 8080),
        ("el-github", "service-prod", 8080),
        ("envoy", "alloy", 4318),  # the proxies reach only the routes' backends
        ("envoy", "prometheus", 9090),
        ("prometheus", "el-promotion", 8080),  # only Argo CD's notifications start a promotion
        ("el-github", "el-promotion", 8080),
        ("service-prod", "el-promotion", 8080),
        ("alertmanager", INTERNET, 25),  # mail goes out on the submission port only
    ],
)
def test_what_nothing_needs_is_denied(connectivity: Connectivity, source: str, destination: str, port: int) -> None:
    assert not connectivity.allows(source, destination, port)
