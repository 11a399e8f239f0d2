"""HTTP instrumentation: the stable-semconv histogram, bounded cardinality, server spans, access lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from microservice_demo.logs import LOG_LINKED_ATTRIBUTE

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def _duration_counts(text: str) -> dict[tuple[tuple[str, str], ...], float]:
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "http_server_request_duration_seconds"]
    return {
        tuple(sorted((k, v) for k, v in sample.labels.items() if not k.startswith("otel_"))): sample.value
        for sample in family.samples
        if sample.name.endswith("_count")
    }


@pytest.fixture
def spans(service: Any) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    service.runtime.telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter


def test_histogram_uses_route_templates_and_stable_attribute_names(service: Any) -> None:
    for name in ("a", "b", "c"):
        service.client.get("/api/v1/hello", params={"name": name})
    service.client.post("/api/v1/hello", json={"name": "d"})
    service.client.post("/api/v1/hello", json={"name": ""})
    counts = _duration_counts(service.client.get("/metrics").text)
    get_ok = (
        ("http_request_method", "GET"),
        ("http_response_status_code", "200"),
        ("http_route", "/api/v1/hello"),
        ("url_scheme", "http"),
    )
    assert counts[get_ok] == 3.0
    post_bad = (
        ("http_request_method", "POST"),
        ("http_response_status_code", "400"),
        ("http_route", "/api/v1/hello"),
        ("url_scheme", "http"),
    )
    assert counts[post_bad] == 1.0


def test_probes_and_metrics_are_not_api_traffic(service: Any) -> None:
    for path in ("/healthz", "/ready", "/metrics", "/healthz"):
        service.client.get(path)
    text = service.client.get("/metrics").text
    assert "http_server_request_duration_seconds_count" not in text
    assert service.logs.access() == []


def test_unknown_paths_and_methods_keep_cardinality_bounded(service: Any) -> None:
    for i in range(300):
        service.client.get(f"/users/{i}/orders?id={i}")
        service.client.request("PURGE" if i % 2 else "BREW", f"/api/v1/hello/{i}")
    counts = _duration_counts(service.client.get("/metrics").text)
    assert len(counts) == 2, counts
    assert all("http_route" not in dict(labels) for labels in counts)
    assert {dict(labels)["http_request_method"] for labels in counts} == {"GET", "_OTHER"}


def test_active_requests_returns_to_zero(service: Any) -> None:
    service.client.get("/api/v1/hello")
    text = service.client.get("/metrics").text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "http_server_active_requests"]
    assert [sample.value for sample in family.samples] == [0.0]


def test_one_server_span_per_request_continuing_the_callers_trace(service: Any, spans: InMemorySpanExporter) -> None:
    response = service.client.get("/api/v1/hello", params={"name": "t"}, headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    (span,) = spans.get_finished_spans()
    assert span.name == "GET /api/v1/hello"
    assert span.kind == SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/api/v1/hello"
    assert span.attributes["http.response.status_code"] == 200


def test_server_errors_mark_the_span(admin_service: Any, auth: dict[str, str]) -> None:
    exporter = InMemorySpanExporter()
    admin_service.runtime.telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    admin_service.client.post("/admin/chaos", json={"error_rate": 1.0}, headers=auth)
    admin_service.client.get("/api/v1/hello")
    span = exporter.get_finished_spans()[-1]
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "500"
    # Its error line links to it, so the collector keeps it even under the other policies' sampling.
    assert span.attributes[LOG_LINKED_ATTRIBUTE] is True


def test_the_sampler_is_honoured_and_an_unexported_trace_is_not_linked(
    monkeypatch: pytest.MonkeyPatch, make_service: Any
) -> None:
    """With nothing sampled nothing is exported, so the access line carries no trace id: it would link to a
    trace that does not exist."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    with make_service() as svc:
        exporter = InMemorySpanExporter()
        svc.runtime.telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        svc.client.get("/api/v1/hello", headers={"traceparent": TRACEPARENT})
        assert exporter.get_finished_spans() == ()
        (line,) = svc.logs.access()
        assert "trace_id" not in line


def test_access_line_fields(service: Any) -> None:
    service.client.get("/api/v1/hello", params={"name": "x"}, headers={"traceparent": TRACEPARENT})
    (line,) = service.logs.access()
    assert line["level"] == "INFO"
    assert line["message"] == "GET /api/v1/hello 200"
    assert line["http_method"] == "GET"
    assert line["http_route"] == "/api/v1/hello"
    assert line["http_status"] == 200
    assert line["duration_ms"] >= 0
    assert line["trace_id"] == TRACE_ID
    assert len(line["span_id"]) == 16 and line["span_id"] != PARENT_ID


def test_access_log_off_still_logs_server_errors(make_service: Any, auth: dict[str, str]) -> None:
    with make_service(access_log=False, admin_token=auth["Authorization"].split()[1], fault_injection=True) as svc:
        svc.client.get("/api/v1/hello")
        svc.client.post("/admin/chaos", json={"error_rate": 1.0}, headers=auth)
        svc.client.get("/api/v1/hello")
        access = svc.logs.access()
    assert [line["http_status"] for line in access] == [500]
    assert access[0]["level"] == "ERROR"


def test_paths_with_braces_are_logged_as_data(service: Any) -> None:
    service.client.get("/a{b}c/{0}")
    (line,) = service.logs.access()
    assert line["message"] == "GET /a{b}c/{0} 404"
    assert line["http_path"] == "/a{b}c/{0}"
