"""Telemetry setup: the resource, the histogram buckets, the OTEL_* variables, per-app isolation."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from microservice_demo.settings import Settings
from microservice_demo.telemetry import DURATION_BUCKETS, build_resource, create_telemetry


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_resource_defaults(make_service: Any) -> None:
    resource = build_resource(Settings(environment="staging", version="1.2.3"))
    assert resource.attributes["service.name"] == "microservice-demo"
    assert resource.attributes["service.version"] == "1.2.3"
    assert resource.attributes["deployment.environment"] == "staging"


def test_standard_variables_override_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "renamed")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,team=platform")
    attributes = build_resource(Settings(environment="dev")).attributes
    assert attributes["service.name"] == "renamed"
    assert attributes["deployment.environment"] == "prod"
    assert attributes["team"] == "platform"


def test_target_info_carries_the_resource(make_service: Any) -> None:
    with make_service(environment="dev", version="9.9.9") as svc:
        svc.client.get("/api/v1/hello")  # the exporter writes target_info beside the first metric
        text = svc.client.get("/metrics").text
    (sample,) = _families(text)["target_info"].samples
    assert sample.labels["service_name"] == "microservice-demo"
    assert sample.labels["service_version"] == "9.9.9"
    assert sample.labels["deployment_environment"] == "dev"


def test_200ms_is_a_bucket_boundary(service: Any) -> None:
    assert 0.2 in DURATION_BUCKETS
    service.client.get("/api/v1/hello")
    text = service.client.get("/metrics").text
    assert 'le="0.2"' in text
    bounds = {
        sample.labels["le"]
        for sample in _families(text)["http_server_request_duration_seconds"].samples
        if sample.name.endswith("_bucket")
    }
    assert bounds == {*(str(b) for b in DURATION_BUCKETS), "+Inf"}


def test_each_app_has_its_own_registry() -> None:
    first = create_telemetry(Settings())
    second = create_telemetry(Settings())
    assert first is not None and second is not None
    first.request_duration.record(0.1, {"http.request.method": "GET"})
    assert b"http_server_request_duration_seconds_count" in first.prometheus_text()
    assert b"http_server_request_duration_seconds_count" not in second.prometheus_text()
    first.shutdown()
    second.shutdown()


def test_sdk_disabled_means_no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert create_telemetry(Settings()) is None
