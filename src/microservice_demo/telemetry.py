"""OpenTelemetry providers for one app instance: metrics in Prometheus format, traces over OTLP.

Nothing here touches the OpenTelemetry globals (``set_meter_provider``/``set_tracer_provider`` may be called only
once per process): each app owns its providers and its Prometheus registry, so tests build as many apps as they
like and nothing has to be reset by hand.

The standard ``OTEL_*`` variables are honoured: ``OTEL_SDK_DISABLED`` switches telemetry off,
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` override the resource defaults, ``OTEL_TRACES_SAMPLER``
(and its argument) choose the sampler, ``OTEL_PROPAGATORS`` the propagation format, and spans are exported over
OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Histogram, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import StatusCode, Tracer
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from microservice_demo.logs import LOG_LINKED_ATTRIBUTE
from microservice_demo.settings import Settings

INSTRUMENTATION_SCOPE = "microservice_demo"
SERVICE_NAME = "microservice-demo"
REQUEST_DURATION = "http.server.request.duration"
ACTIVE_REQUESTS = "http.server.active_requests"

# Seconds. 0.2 is a boundary so "faster than 200 ms" is exact for the latency SLO; the rest follows the
# stable HTTP semantic conventions' advice, with more resolution around the threshold.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip

# What the collector's tail sampling keeps (base/observability/charts/alloy.application.yaml), and so what is worth
# exporting: traces with an error, traces slower than the latency SLO's threshold, traces a log line links to, and
# a tenth of the rest, chosen by trace id as OpenTelemetry's TraceIdRatioBased sampler chooses (the lower 64 bits
# below the ratio's share) and marked with BASELINE_ATTRIBUTE for the collector's policy of the same name.
SLOW_SECONDS = 0.2
BASELINE_ATTRIBUTE = "microservice_demo.baseline"
BASELINE_RATIO = 0.1
_BASELINE_BOUND = round(BASELINE_RATIO * (1 << 64))

# generate_latest() writes the classic text format 0.0.4; Litestar appends "; charset=utf-8" to text types itself.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4"


def telemetry_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _otlp_traces_configured() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def build_resource(settings: Settings) -> Resource:
    defaults = {
        "service.name": SERVICE_NAME,
        "service.version": settings.version,
        "deployment.environment": settings.environment,
        "deployment.environment.name": settings.environment,
    }
    return Resource.create(defaults).merge(OTELResourceDetector().detect())


def in_baseline(trace_id: int) -> bool:
    return trace_id & 0xFFFF_FFFF_FFFF_FFFF < _BASELINE_BOUND


def worth_exporting(span: ReadableSpan) -> bool:
    """Whether tail sampling would keep the trace for what this span shows."""
    attributes = span.attributes or {}
    if span.status.status_code is StatusCode.ERROR or attributes.get(LOG_LINKED_ATTRIBUTE):
        return True
    if attributes.get(BASELINE_ATTRIBUTE):
        return True
    return (span.end_time or 0) - (span.start_time or 0) >= SLOW_SECONDS * 1e9


class ExportWhatTailSamplingKeeps(SpanProcessor):
    """Every span is recorded (the sampler stays parent-based always-on, so a trace's decision is the collector's),
    but only the spans of traces the collector keeps are encoded and sent: encoding one span for OTLP costs about
    as much as recording it (bench/README.md), and the collector would drop nine in ten of the rest. The
    collector's decision also sees the Gateway's span; a trace it keeps for what only that span shows (slow
    between proxy and pod, a 5xx the service never answered) is stored without the service's span."""

    def __init__(self, export: SpanProcessor) -> None:
        self._export = export

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._export.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if worth_exporting(span):
            self._export.on_end(span)

    def shutdown(self) -> None:
        self._export.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._export.force_flush(timeout_millis)


@dataclass(slots=True)
class ActiveRequests:
    """Requests in flight per (method, scheme), observed by the SDK when metrics are collected.

    An observable up-down counter reports the same value a synchronous one would, but the hot path only bumps a
    plain integer instead of making two SDK calls per request.
    """

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def observe(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(value, {"http.request.method": method, "url.scheme": scheme})
            for (method, scheme), value in self.counts.items()
        ]


@dataclass(frozen=True, slots=True)
class Telemetry:
    """The instruments the HTTP instrumentation records into, and what ``/metrics`` exports."""

    registry: CollectorRegistry
    meter_provider: MeterProvider
    tracer_provider: TracerProvider
    tracer: Tracer
    request_duration: Histogram
    active_requests: ActiveRequests

    def prometheus_text(self) -> bytes:
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def create_telemetry(settings: Settings) -> Telemetry | None:
    """Build this app's providers, or ``None`` when ``OTEL_SDK_DISABLED=true``."""
    if telemetry_disabled():
        return None
    resource = build_resource(settings)
    registry = CollectorRegistry(auto_describe=True)
    reader = PrometheusMetricReader(registry=registry)
    # Exemplars can't be written in the Prometheus text format, and collecting them costs on every measurement:
    # off unless OTEL_METRICS_EXEMPLAR_FILTER asks for them.
    exemplar_filter = None if os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER") else AlwaysOffExemplarFilter()
    meter_provider = MeterProvider(
        resource=resource,
        exemplar_filter=exemplar_filter,
        metric_readers=[reader],
        views=[
            View(
                instrument_name=REQUEST_DURATION,
                aggregation=ExplicitBucketHistogramAggregation(boundaries=DURATION_BUCKETS),
            )
        ],
    )
    tracer_provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
    if _otlp_traces_configured():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(ExportWhatTailSamplingKeeps(BatchSpanProcessor(OTLPSpanExporter())))

    meter = meter_provider.get_meter(INSTRUMENTATION_SCOPE, settings.version)
    active_requests = ActiveRequests()
    meter.create_observable_up_down_counter(
        ACTIVE_REQUESTS,
        callbacks=[active_requests.observe],
        unit="{request}",
        description="Number of active HTTP server requests.",
    )
    return Telemetry(
        registry=registry,
        meter_provider=meter_provider,
        tracer_provider=tracer_provider,
        tracer=tracer_provider.get_tracer(INSTRUMENTATION_SCOPE, settings.version),
        request_duration=meter.create_histogram(
            REQUEST_DURATION, unit="s", description="Duration of HTTP server requests."
        ),
        active_requests=active_requests,
    )
