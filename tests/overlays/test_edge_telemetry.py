"""The Gateway's telemetry meets the rules that read it: what base/networking configures in Envoy Gateway (the
EnvoyProxy, the PodMonitor), what every overlay's HTTPRoute makes of it, and what the SLO rules, the
NetworkPolicies and the collector expect. The Envoy Gateway facts are v1.9.0's, cited in the files themselves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.layout import environments

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = tuple(environments(ROOT))

SLO_RULES = ROOT / "base" / "observability" / "rules" / "microservice-demo-slo.prometheusrule.yaml"
ALLOY = ROOT / "base" / "observability" / "charts" / "alloy.application.yaml"
# What Envoy Gateway puts on every proxy pod (internal/infrastructure/kubernetes/proxy/resource.go@v1.9.0) and the
# container port that serves /stats/prometheus (bootstrap.EnvoyStatsPort).
PROXY_POD_LABELS = {"app.kubernetes.io/name": "envoy", "app.kubernetes.io/component": "proxy"}
PROXY_STATS_PORT = ("metrics", 19001)


@pytest.fixture(scope="module")
def proxy(networking: Any) -> dict[str, Any]:
    envoy_proxy: dict[str, Any] = networking.one("EnvoyProxy")
    return envoy_proxy


def _slo_expressions() -> list[str]:
    rule = yaml.safe_load(SLO_RULES.read_text())
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


def _cluster_stat_name(template: str, route: dict[str, Any], rule: int) -> str:
    """The envoy_cluster_name a proxy exports for an HTTPRoute rule, by the EnvoyProxy's clusterStatName
    (its operators: internal/gatewayapi/route.go@v1.9.0)."""
    return (
        template.replace("%ROUTE_NAMESPACE%", route["metadata"]["namespace"])
        .replace("%ROUTE_NAME%", route["metadata"]["name"])
        .replace("%ROUTE_RULE_NUMBER%", str(rule))
    )


def test_the_gateway_takes_its_proxies_telemetry_from_the_envoyproxy(networking: Any, proxy: dict[str, Any]) -> None:
    """A Gateway's infrastructure.parametersRef names an EnvoyProxy in the Gateway's own namespace (it has no
    namespace field: internal/provider/kubernetes/controller.go@v1.9.0)."""
    gateway = networking.one("Gateway")
    assert gateway["spec"]["infrastructure"]["parametersRef"] == {
        "group": "gateway.envoyproxy.io",
        "kind": "EnvoyProxy",
        "name": proxy["metadata"]["name"],
    }
    assert proxy["metadata"]["namespace"] == gateway["metadata"]["namespace"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_slo_reads_the_api_rule_of_every_environments_route(
    overlays: dict[str, Any], proxy: dict[str, Any], env: str
) -> None:
    """The availability SLI selects the cluster of the route's /api rule by name and takes the environment from
    it: the name the proxies export for that rule must match, and no other rule's may."""
    route = overlays[env].one("HTTPRoute")
    rules = route["spec"]["rules"]
    assert rules[0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}}], "the API rule comes first"
    template = proxy["spec"]["telemetry"]["metrics"]["clusterStatName"]
    names = [_cluster_stat_name(template, route, n) for n in range(len(rules))]
    expressions = _slo_expressions()
    selected = {m for e in expressions for m in re.findall(r'envoy_cluster_name=~"([^"]+)"', e)}
    extracted = {m for e in expressions for m in re.findall(r'"envoy_cluster_name", "([^"]+)"', e)}
    assert selected and extracted
    for regex in selected:  # PromQL anchors label regexes at both ends, as fullmatch does
        assert [bool(re.fullmatch(regex, name)) for name in names] == [True] + [False] * (len(names) - 1)
    for regex in extracted:
        match = re.fullmatch(regex, names[0])
        assert match is not None and match[1] == route["metadata"]["namespace"] == f"microservice-demo-{env}"


def test_prometheus_scrapes_the_proxies_and_keeps_what_the_rules_read(networking: Any) -> None:
    monitor = networking.one("PodMonitor")
    assert monitor["metadata"]["namespace"] == "envoy-gateway-system"
    assert monitor["spec"]["selector"] == {"matchLabels": PROXY_POD_LABELS}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == (PROXY_STATS_PORT[0], "/stats/prometheus")
    (keep,) = endpoint["metricRelabelings"]
    assert keep["action"] == "keep" and keep["sourceLabels"] == ["__name__"]
    read = {m for e in _slo_expressions() for m in re.findall(r"\b(envoy_[a-z_]+)\{", e)}
    assert read == {"envoy_cluster_upstream_rq_xx", "envoy_cluster_upstream_rq_total"}
    for metric in read:
        assert re.fullmatch(keep["regex"], metric), f"{metric} is dropped at the scrape"
    assert not re.fullmatch(keep["regex"], "envoy_cluster_upstream_cx_connect_ms_bucket"), "the keep list keeps all"


def _sinks(proxy: dict[str, Any]) -> list[dict[str, Any]]:
    telemetry = proxy["spec"]["telemetry"]
    refs = [telemetry["tracing"]["provider"]["backendRefs"]]
    refs += [sink["openTelemetry"]["backendRefs"] for s in telemetry["accessLog"]["settings"] for sink in s["sinks"]]
    return [ref for group in refs for ref in group]


def test_the_proxies_send_to_alloys_otlp_grpc_port(proxy: dict[str, Any]) -> None:
    """Envoy Gateway speaks OTLP over gRPC only and needs the Service to have that TCP port
    (internal/gatewayapi/listener.go and validate.go@v1.9.0), else the Gateway is not accepted."""
    application = yaml.safe_load(ALLOY.read_text())
    alloy = application["spec"]["source"]["helm"]["valuesObject"]["alloy"]
    ports = {p["port"]: p for p in alloy["extraPorts"]}
    config = alloy["configMap"]["content"]
    for ref in _sinks(proxy):
        assert (ref["name"], ref["namespace"]) == ("alloy", application["spec"]["destination"]["namespace"])
        assert ports[ref["port"]]["protocol"] == "TCP"
        assert re.search(rf'grpc \{{\s*endpoint = "0\.0\.0\.0:{ref["port"]}"', config)


def test_only_a_5xx_access_line_links_to_its_trace(proxy: dict[str, Any]) -> None:
    """Every request is logged once (the two settings' conditions are complementary), and only the line of a 5xx,
    whose trace the collector keeps, carries a trace id."""
    settings = proxy["spec"]["telemetry"]["accessLog"]["settings"]
    by_condition = {tuple(s["matches"]): s["format"]["json"] for s in settings}
    assert set(by_condition) == {("response.code >= 500",), ("response.code < 500",)}
    assert by_condition[("response.code >= 500",)]["trace_id"] == "%TRACE_ID%"
    assert "trace_id" not in by_condition[("response.code < 500",)]
    errors, others = by_condition[("response.code >= 500",)], by_condition[("response.code < 500",)]
    assert {k: v for k, v in errors.items() if k != "trace_id"} == others, "the same fields otherwise"
