"""What the NetworkPolicies allow, computed by IBM's network-config-analyzer (PyPI network-config-analyzer, `nca`)
from every NetworkPolicy the repository deploys, over a cluster of stand-in pods: the service and its post-deploy
check with their rendered labels, the charts' pods with the labels the policies rely on (Prometheus, Grafana,
Alloy, Alertmanager, Envoy, the EventListeners, Argo CD's notifications controller, CoreDNS), and every pod a
chart's contract says a ServiceMonitor scrapes or a controller calls, with the labels and ports the contract
records from the chart's templates at the pinned version."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.contracts import load_contracts
from gitops.layout import environments
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
CONTRACTS = {name: contract.data for name, contract in load_contracts(ROOT).items()}
NCA = ROOT / ".tools" / "network-analyzer" / "bin" / "nca"
ENVIRONMENTS = environments(ROOT)
INTERNET = "internet"
# name -> (namespace, labels, container ports): the charts' pods, as the policies select them.
CHART_PODS = {
    "prometheus": ("observability", {"app.kubernetes.io/name": "prometheus"}, {"web": 9090}),
    "grafana": ("observability", {"app.kubernetes.io/name": "grafana"}, {"grafana": 3000}),
    "alloy": ("observability", {"app.kubernetes.io/name": "alloy"}, {"otlp-http": 4318, "otlp-grpc": 4317}),
    "alertmanager": ("observability", {"app.kubernetes.io/name": "alertmanager"}, {"web": 9093}),
    "envoy": ("envoy-gateway-system", {"app.kubernetes.io/name": "envoy", "app.kubernetes.io/component": "proxy",
                                       "app.kubernetes.io/managed-by": "envoy-gateway"},
              {"https": 10443, "metrics": 19001}),
    "el-github": ("ci-cd", {"eventlistener": "github"}, {"http-listener": 8080}),
    "el-promotion": ("ci-cd", {"eventlistener": "promotion"}, {"http-listener": 8080}),
    "notifications": ("argocd", {"app.kubernetes.io/name": "argocd-notifications-controller"}, {"metrics": 9001}),
    "argocd-server": ("argocd", {"app.kubernetes.io/name": "argocd-server"}, {"server": 8080}),
    "pr-check": ("ci-pull-requests", {"tekton.dev/pipelineTask": "checks"}, {}),
    "eg-controller": ("envoy-gateway-system", {"app.kubernetes.io/name": "gateway-helm",
                                               "control-plane": "envoy-gateway"}, {"xds": 18000}),
    "coredns": ("kube-system", {"k8s-app": "kube-dns"}, {"dns": 53}),
}  # fmt: skip
# The EventListeners' pods carry Triggers' own labels beside `eventlistener: <name>`, and Triggers' core
# interceptors run in tekton-pipelines (tekton-operator.contract.yaml, from tektoncd/triggers at the bundled version).
_OPERANDS = CONTRACTS["tekton-operator"]["operands"]
for _listener in ("el-github", "el-promotion"):
    _namespace, _labels, _ports = CHART_PODS[_listener]
    _shared = {k: v for k, v in _OPERANDS["eventListenerPods"]["podLabels"].items() if k != "eventlistener"}
    CHART_PODS[_listener] = (_namespace, {**_labels, **_shared}, _ports)
CHART_PODS["core-interceptors"] = (
    _OPERANDS["triggersCoreInterceptors"]["service"]["namespace"],
    _OPERANDS["triggersCoreInterceptors"]["podLabels"],
    {"https": _OPERANDS["triggersCoreInterceptors"]["service"]["port"]},
)
# Every pod an enabled ServiceMonitor of a chart scrapes (not the kubelets' and the API server's addresses, which
# are no pods), named <chart>-<n>.
SCRAPE_TARGETS = [
    (f"{chart}-{n}", target["namespace"], target["podLabels"], target["port"])
    for chart, contract in CONTRACTS.items()
    for n, target in enumerate(contract.get("scrapeTargets") or [])
    if target["podLabels"]
]
for _name, _namespace, _labels, _port in SCRAPE_TARGETS:
    CHART_PODS.setdefault(_name, (_namespace, _labels, {"metrics": _port}))


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
    declared = {o["metadata"]["name"]: o["metadata"].get("labels", {}) for o in objects if o["kind"] == "Namespace"}
    names = set(declared) | {"kube-system", "argocd"}
    namespaces = [  # with their labels (gitops/environment...) and the one the API server adds
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": n, "labels": {**declared.get(n, {}), "kubernetes.io/metadata.name": n}},
        }
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
    def __init__(self, rules: list[dict[str, Any]], pods: dict[str, tuple[str, dict[str, str]]]) -> None:
        self.rules = rules
        self.pods = pods  # name -> (namespace, labels)

    @staticmethod
    def _selects(entry: str, pod: str, labels: dict[str, str]) -> bool:
        """nca names a group of pods by name, by `*`, or by a label selector that picks exactly that group: terms
        `key=value`, `key!=value`, `has(key)` and `!has(key)`, joined by "," or " and " (which form it picks
        depends on the pods it groups); anything else is a form this reading does not know, and fails loudly."""
        if entry in ("*", pod):
            return True
        if re.fullmatch(r"[\w.-]+", entry):  # another pod's name
            return False
        results = []
        for term in re.split(r",| and ", entry):
            term = term.strip()
            if match := re.fullmatch(r"(!?)has\(([\w./-]+)\)", term):
                results.append((match[2] in labels) != bool(match[1]))
            elif match := re.fullmatch(r"([\w./-]+)\s*(!?=)\s*(\S+)", term):
                results.append((labels.get(match[1]) == match[3]) == (match[2] == "="))
            else:
                raise AssertionError(f"nca named pods by a selector this test cannot read: {entry}")
        return all(results)

    def _ends(self, rule: dict[str, Any], side: str) -> Iterator[str]:
        if f"{side}_ip_block" in rule:
            yield INTERNET
        for namespace in rule.get(f"{side}_ns", []):
            for pod, (pod_namespace, labels) in self.pods.items():
                if pod_namespace == namespace and any(self._selects(e, pod, labels) for e in rule[f"{side}_pods"]):
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
    by_name = {
        p["metadata"]["name"]: (p["metadata"]["namespace"], p["metadata"]["labels"])
        for p in yaml.safe_load_all(pods.read_text())
    }
    return Connectivity(rules, by_name)


@pytest.mark.parametrize(
    ("source", "destination", "port"),
    [
        ("envoy", "service-prod", 8080),  # the Gateway's proxies to the service
        ("envoy", "grafana", 3000),
        ("prometheus", "service-dev", 8080),  # scraping
        ("prometheus", "service-prod", 8080),
        ("prometheus", "alertmanager", 9093),
        ("service-prod", "alloy", 4318),  # OTLP traces
        ("envoy", "alloy", 4317),  # the proxies' access logs and spans (OTLP/gRPC)
        ("prometheus", "envoy", 19001),  # the proxies' stats: the availability SLI
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
        ("grafana", "envoy", 19001),  # only Prometheus reads the proxies' stats
        ("service-prod", "envoy", 19001),
        ("prometheus", "el-promotion", 8080),  # only Argo CD's notifications start a promotion
        ("el-github", "el-promotion", 8080),
        ("service-prod", "el-promotion", 8080),
        ("alertmanager", INTERNET, 25),  # mail goes out on the submission port only
    ],
)
def test_what_nothing_needs_is_denied(connectivity: Connectivity, source: str, destination: str, port: int) -> None:
    assert not connectivity.allows(source, destination, port)


@pytest.mark.parametrize(("target", "port"), [(name, port) for name, _, _, port in SCRAPE_TARGETS])
def test_prometheus_reaches_every_pod_a_charts_service_monitor_scrapes(
    connectivity: Connectivity, target: str, port: int
) -> None:
    assert connectivity.allows("prometheus", target, port), f"{target}: its ServiceMonitor's targets would be down"


def test_the_charts_service_monitors_are_all_checked() -> None:
    """cert-manager's three pods, Trivy Operator, the stack's own parts, Loki, Tempo, Alloy: enabled, so judged."""
    charts = {name.rsplit("-", 1)[0] for name, *_ in SCRAPE_TARGETS}
    assert {"cert-manager", "trivy-operator", "kube-prometheus-stack", "loki", "tempo", "alloy"} <= charts


@pytest.mark.parametrize("listener", ["el-github", "el-promotion"])
def test_the_eventlisteners_reach_triggers_core_interceptors(connectivity: Connectivity, listener: str) -> None:
    assert connectivity.allows(listener, "core-interceptors", 8443)


def test_githubs_webhooks_reach_the_eventlistener_only_through_the_gateway(connectivity: Connectivity) -> None:
    assert connectivity.allows("envoy", "el-github", 8080)
    assert not connectivity.allows("prometheus", "el-github", 8080)
    assert not connectivity.allows("service-prod", "el-github", 8080)


@pytest.mark.parametrize(
    ("source", "destination", "port"),
    [
        ("pr-check", "service-prod", 8080),  # a pull request's code reaches nothing in the cluster
        ("pr-check", "el-promotion", 8080),
        ("pr-check", "el-github", 8080),
        ("pr-check", "prometheus", 9090),
        ("pr-check", "argocd-server", 8080),
        ("pr-check", "core-interceptors", 8443),
        ("pr-check", INTERNET, 6443),  # nor the API server's port
        ("envoy", INTERNET, 443),  # the internet-facing proxies reach only their routes' backends
        ("envoy", INTERNET, 6443),
    ],
)
def test_untrusted_and_exposed_pods_reach_nothing_they_do_not_need(
    connectivity: Connectivity, source: str, destination: str, port: int
) -> None:
    assert not connectivity.allows(source, destination, port)


def test_what_pull_requests_and_the_gateway_controller_need_is_allowed(connectivity: Connectivity) -> None:
    assert connectivity.allows("pr-check", INTERNET, 443)  # PyPI, npm, Debian, the fork
    assert connectivity.allows("pr-check", "coredns", 53, "UDP")
    assert connectivity.allows("eg-controller", INTERNET, 443)  # the API server
    assert connectivity.allows("envoy", "eg-controller", 18000)  # xDS
    assert connectivity.allows("notifications", "el-promotion", 8080)


METADATA = "169.254.169.254/32"


def test_no_policy_that_opens_the_internet_opens_the_cloud_metadata_endpoint(everything: list[dict[str, Any]]) -> None:
    """The metadata endpoint hands out the node's cloud credentials: every ipBlock of 0.0.0.0/0 excepts it."""
    opened = 0
    for policy in (o for o in everything if o["kind"] == "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                block = peer.get("ipBlock")
                if block and block["cidr"] == "0.0.0.0/0":
                    opened += 1
                    assert METADATA in block.get("except", []), policy["metadata"]
    assert opened >= 10, "the check saw the policies that open the internet"


@pytest.mark.parametrize(
    ("entry", "selected"),
    [
        ("app.kubernetes.io/name=prometheus", True),
        ("!has(app.kubernetes.io/component) and app.kubernetes.io/name=prometheus", True),
        ("has(app.kubernetes.io/component)", False),
        ("app.kubernetes.io/name=prometheus, app.kubernetes.io/component!=proxy", True),
        ("app.kubernetes.io/name=envoy", False),
    ],
)
def test_ncas_pod_group_names_are_read_as_selectors(entry: str, selected: bool) -> None:
    """nca picks among equivalent names for a group of pods by the set it groups, so every form is read."""
    assert Connectivity._selects(entry, "prometheus", {"app.kubernetes.io/name": "prometheus"}) is selected


def test_an_unknown_selector_form_fails_loudly() -> None:
    with pytest.raises(AssertionError, match="cannot read"):
        Connectivity._selects("app.kubernetes.io/name in (a, b)", "prometheus", {})
