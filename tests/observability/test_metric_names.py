"""Every metric the rules and the dashboard read exists: the service's are checked against a real scrape of the
running service, so a renamed metric or label breaks this test, not the alerts in production."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import PLATFORM_METRICS, Stack
from prometheus_client.parser import text_string_to_metric_families
from promql_selectors import Selector, selectors

pytestmark = pytest.mark.process

TOKEN = "metric-names-test-token-0123456789"
# Labels Prometheus adds to every series it scrapes through the ServiceMonitor (target labels), beside the
# service's own.
TARGET_LABELS = {"job", "namespace", "pod", "instance", "service", "container", "endpoint"}


@pytest.fixture
def scraped(start_service: Callable[..., Any]) -> dict[str, set[str]]:
    """Sample name -> label names, from /metrics of the real service after successful, failed and unknown requests."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with start_service({"APP_ADMIN_TOKEN": TOKEN, "APP_FAULT_INJECTION": "true"}) as server:
        server.get("/api/v1/hello")
        server.get("/no/such/path")
        httpx.post(server.url + "/admin/chaos", json={"error_rate": 1.0}, headers=auth).raise_for_status()
        assert server.get("/api/v1/hello").status_code == 500
        text = server.get("/metrics").text
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def _used(stack: Stack) -> list[tuple[str, Selector]]:
    """(where, selector) for every selector in the rules and the dashboard's Prometheus queries."""
    used = [(rule.get("record") or rule["alert"], s) for rule in stack.rules() for s in selectors(rule["expr"])]
    dashboard = stack.dashboard()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            if target["datasource"]["type"] == "prometheus":
                used += [(panel["title"], s) for s in selectors(target["expr"])]
    used += [(f"variable {v['name']}", s) for v in dashboard["templating"]["list"] for s in selectors(v["definition"])]
    return used


def test_every_metric_read_is_exported_recorded_or_the_platforms(stack: Stack, scraped: dict[str, set[str]]) -> None:
    recorded = {rule["record"] for rule in stack.rules() if "record" in rule}
    for where, selector in _used(stack):
        name = selector.metric
        assert name in scraped or name in recorded or name in PLATFORM_METRICS, f"{where}: {name} does not exist"


def test_labels_matched_on_the_services_metrics_are_labels_it_exports(
    stack: Stack, scraped: dict[str, set[str]]
) -> None:
    for where, selector in _used(stack):
        if selector.metric in scraped:
            unknown = selector.labels - scraped[selector.metric] - TARGET_LABELS
            assert not unknown, f"{where}: {selector.metric} has no label {sorted(unknown)}"


def test_recorded_series_are_matched_only_on_the_labels_they_keep(stack: Stack) -> None:
    recorded = {rule["record"] for rule in stack.rules() if "record" in rule}
    for where, selector in _used(stack):
        if selector.metric in recorded:
            assert selector.labels <= {"namespace"}, f"{where}: {selector.metric} keeps only namespace"


def test_the_platform_list_holds_no_service_metric_and_nothing_unused(
    stack: Stack, scraped: dict[str, set[str]]
) -> None:
    assert not set(PLATFORM_METRICS) & set(scraped), "a metric the service exports must come from the scrape"
    assert {selector.metric for _, selector in _used(stack)} >= set(PLATFORM_METRICS)


def test_the_scrape_has_the_series_the_slis_need(scraped: dict[str, set[str]]) -> None:
    """The SLIs divide bucket by count with le="0.2" and filter on route and status code."""
    assert {"http_route", "http_response_status_code", "le"} <= scraped["http_server_request_duration_seconds_bucket"]
    assert {"http_route", "http_response_status_code"} <= scraped["http_server_request_duration_seconds_count"]
