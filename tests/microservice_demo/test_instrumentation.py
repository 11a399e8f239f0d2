"""HTTP instrumentation: the stable-semconv histogram, bounded cardinality, server spans, access lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from prometheus_client.parser import text_string_to_metric_families

from microservice_demo.logs import LOG_LINKED_ATTRIBUTE
from microservice_demo.telemetry import (
    BASELINE_ATTRIBUTE,
    BASELINE_RATIO,
    SLOW_SECONDS,
    ExportWhatTailSamplingKeeps,
    in_baseline,
    worth_exporting,
)

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


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch, make_service: Any) -> Iterator[tuple[Any, InMemorySpanExporter]]:
    """The service as the base configures it (no access line: a line in a span links it), and what it would
    send: its export filter in front of an in-memory exporter."""
    monkeypatch.setenv("APP_ACCESS_LOG", "false")
    with make_service() as service:
        exporter = InMemorySpanExporter()
        processor = ExportWhatTailSamplingKeeps(SimpleSpanProcessor(exporter))
        service.runtime.telemetry.tracer_provider.add_span_processor(processor)
        yield service, exporter


def _traceparent(low_bits: int) -> str:
    """A sampled trace context whose trace id ends in low_bits (the baseline decides on the lower 64 bits)."""
    return f"00-{'ab' * 8}{low_bits:016x}-{PARENT_ID}-01"


def test_only_the_spans_tail_sampling_keeps_are_exported(exported: tuple[Any, InMemorySpanExporter]) -> None:
    """Recorded always, sent when the collector keeps the trace: the baseline tenth (marked for the collector's
    policy), errors and log-linked spans; an ordinary fast request outside the baseline is not sent."""
    service, exported_spans = exported
    inside, outside = 1, (1 << 64) - 1
    service.client.get("/api/v1/hello", headers={"traceparent": _traceparent(outside)})
    assert exported_spans.get_finished_spans() == ()
    service.client.get("/api/v1/hello", headers={"traceparent": _traceparent(inside)})
    (span,) = exported_spans.get_finished_spans()
    assert span.attributes is not None and span.attributes[BASELINE_ATTRIBUTE] is True
    share = sum(in_baseline(trace_id) for trace_id in range(0, 1 << 64, (1 << 64) // 10_000)) / 10_000
    assert share == pytest.approx(BASELINE_RATIO, abs=0.001)


def test_errors_slow_and_linked_spans_are_worth_exporting() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    outside = SpanContext(trace_id=(1 << 64) - 1, span_id=1, is_remote=True, trace_flags=TraceFlags(1))
    parent = set_span_in_context(NonRecordingSpan(outside))

    def span(duration: float, **attributes: Any) -> Any:
        started = tracer.start_span("GET /api/v1/hello", context=parent, start_time=0, attributes=attributes)
        if attributes.pop("error", False):
            started.set_status(Status(StatusCode.ERROR))
        started.end(end_time=int(duration * 1e9))
        return started

    assert not worth_exporting(span(0.05))
    assert not worth_exporting(span(SLOW_SECONDS - 0.001))
    assert worth_exporting(span(SLOW_SECONDS))
    assert worth_exporting(span(0.05, error=True))
    assert worth_exporting(span(0.05, **{LOG_LINKED_ATTRIBUTE: True}))
    assert worth_exporting(span(0.05, **{BASELINE_ATTRIBUTE: True}))
