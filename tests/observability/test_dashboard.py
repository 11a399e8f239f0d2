"""The service's Grafana dashboard and the data sources it relies on, as kube-prometheus-stack's Grafana gets them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ROOT, Stack
from promql_selectors import parse, selectors

GRID_COLUMNS = 24


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _queries(dashboard: dict[str, Any], datasource: str) -> list[str]:
    return [
        target["expr"]
        for panel in _panels(dashboard)
        if panel["datasource"]["type"] == datasource
        for target in panel["targets"]
    ]


def _grafana(stack: Stack) -> dict[str, Any]:
    values: dict[str, Any] = stack.values("kube-prometheus-stack")["grafana"]
    return values


def test_the_sidecar_finds_the_dashboard(stack: Stack) -> None:
    sidecar = _grafana(stack)["sidecar"]["dashboards"]
    config_map = stack.one("ConfigMap", "microservice-demo-dashboard")
    assert sidecar["enabled"] is True
    assert config_map["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
    # Without searchNamespace the sidecar reads its own namespace, where the ConfigMap is.
    assert "searchNamespace" not in sidecar
    assert config_map["metadata"]["namespace"] == "observability"


def test_argo_cd_links_to_this_dashboard_with_its_variable(stack: Stack) -> None:
    dashboard = stack.dashboard()
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    # Every environment's Application comes from the ApplicationSet's template, the environment its folder's name.
    appset = (ROOT / "argocd" / "root" / "applications" / "microservice-demo.applicationset.yaml").read_text()
    link = re.search(r"link\.argocd\.argoproj\.io/dashboard: (\S+)", appset)
    assert link
    match = re.fullmatch(r"https://[^/]+/d/(?P<uid>[^/]+)/[^?]+\?var-(?P<var>\w+)=(?P<value>\S+)", link[1])
    assert match, link[1]
    assert match["uid"] == dashboard["uid"]
    assert match["var"] in variables
    assert match["value"] == "microservice-demo-{{.path.basename}}"


def test_panels_are_laid_out_on_the_grid_with_unique_ids(stack: Stack) -> None:
    dashboard = stack.dashboard()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    occupied: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
    for panel in _panels(dashboard):
        assert panel["title"] and panel["description"], panel["id"]
        assert panel["targets"], panel["title"]


def test_every_panel_uses_a_provisioned_data_source(stack: Stack) -> None:
    grafana = _grafana(stack)
    provisioned = {("prometheus", grafana["sidecar"]["datasources"]["uid"])} | {
        (source["type"], source["uid"]) for source in grafana["additionalDataSources"]
    }
    dashboard = stack.dashboard()
    used = {(p["datasource"]["type"], p["datasource"]["uid"]) for p in _panels(dashboard)}
    used |= {(t["datasource"]["type"], t["datasource"]["uid"]) for p in _panels(dashboard) for t in p["targets"]}
    used |= {(v["datasource"]["type"], v["datasource"]["uid"]) for v in dashboard["templating"]["list"]}
    assert used <= provisioned


def test_the_dashboard_shows_what_the_issue_asks_for(stack: Stack) -> None:
    """Rate by route, error ratio, percentiles, in-flight, burn rate and budget, pods, restarts, CPU and memory
    against limits, and logs: each found by the metric its query reads, not by the panel's title."""
    dashboard = stack.dashboard()
    metrics = {s.metric for expr in _queries(dashboard, "prometheus") for s in selectors(expr)}
    expressions = " ".join(_queries(dashboard, "prometheus"))
    assert "sum by (http_route)" in expressions
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}," in expressions
    assert {
        "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds_bucket",
        "http_server_active_requests",
        "namespace:microservice_demo_api_errors:ratio_rate5m",
        "namespace:microservice_demo_availability_budget:remaining30d",
        "namespace:microservice_demo_latency_budget:remaining30d",
        "up",
        "kube_deployment_spec_replicas",
        "kube_pod_container_status_restarts_total",
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "kube_pod_container_resource_limits",
    } <= metrics
    assert _queries(dashboard, "loki"), "a logs panel"


def test_every_promql_query_parses(stack: Stack) -> None:
    dashboard = stack.dashboard()
    queries = _queries(dashboard, "prometheus") + [v["definition"] for v in dashboard["templating"]["list"]]
    for query in queries:
        assert selectors(query), query


def test_the_parser_rejects_broken_promql() -> None:
    with pytest.raises(ValueError, match="unclosed left parenthesis"):
        parse("sum(rate(http_server_active_requests[5m])")


def test_loki_logs_are_selected_by_the_labels_alloy_sets(stack: Stack) -> None:
    """The logs panel's stream selector uses only labels Alloy's relabelling writes (the Alloy Application)."""
    alloy = stack.values("alloy")["alloy"]["configMap"]["content"]
    written = set(re.findall(r'target_label\s*=\s*"(\w+)"', alloy)) | {"level", "logger"}
    for query in _queries(stack.dashboard(), "loki"):
        stream = re.match(r"^\{(?P<matchers>[^}]*)\}", query)
        assert stream, query
        labels = set(re.findall(r"(\w+)\s*=~?", stream["matchers"]))
        assert labels and labels <= written, query


@pytest.mark.process
def test_the_loki_trace_link_finds_the_trace_id_in_the_service_log_lines(
    stack: Stack, start_service: Callable[..., Any]
) -> None:
    """Grafana's derived field runs its regex on each log line: run it on the lines the service really writes."""
    sources = {s["uid"]: s for s in _grafana(stack)["additionalDataSources"]}
    (field,) = sources["loki"]["jsonData"]["derivedFields"]
    assert sources[field["datasourceUid"]]["type"] == "tempo"
    assert field["url"] == "$${__value.raw}", "$$ escapes Grafana's provisioning-time expansion of ${...}"
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with start_service() as server:
        server.get("/api/v1/hello", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
        time.sleep(0.2)  # the access line is written once the response is sent
        (line,) = [line for line in server.log.read_text().splitlines() if "/api/v1/hello" in line]
    match = re.search(field["matcherRegex"], line)
    assert match, line
    assert match[1] == trace_id
