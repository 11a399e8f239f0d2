"""Where a request's time goes, in-process: the service's app driven through ASGI directly (no server, no socket),
one configuration after another, each adding one piece of telemetry to the one before; and the SDK's histogram
record timed alone. Prints microseconds of Python per `GET /api/v1/hello` (median of the rounds) and what each
piece adds. Each request carries a sampled traceparent with a random trace id, as the Gateway sends it.

    python bench/per_request_cost.py [--requests 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
# Sampled trace contexts with random trace ids, as the Gateway sends them: a tenth fall in the baseline.
TRACEPARENTS = [f"00-{random.getrandbits(128):032x}-{random.getrandbits(64):016x}-01".encode() for _ in range(1000)]
# Each step: what it adds, and the environment that has it (on top of the steps before it).
STEPS: list[tuple[str, dict[str, str]]] = [
    ("the app, telemetry off", {"OTEL_SDK_DISABLED": "true", "APP_ACCESS_LOG": "false"}),
    (
        "+ histogram and a span that is not sampled (extract, sampler, context attach)",
        {"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_SAMPLER": "always_off"},
    ),
    ("+ the span recorded (parentbased_always_on), not exported", {"OTEL_TRACES_SAMPLER": "parentbased_always_on"}),
    (
        "+ OTLP/HTTP export of what tail sampling keeps (batch processor, local sink)",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "SINK"},
    ),
    ("+ a JSON access line per request (loguru)", {"APP_ACCESS_LOG": "true"}),
]


def _measure(env: dict[str, str], requests: int) -> float:
    """Microseconds per request of a fresh app built with `env`, in this process."""
    os.environ.update(env)
    from microservice_demo.app import create_app
    from microservice_demo.settings import load_settings

    app: Any = create_app(load_settings(), log_stream=io.StringIO())  # driven as a plain ASGI callable
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/api/v1/hello", "raw_path": b"/api/v1/hello", "query_string": b"name=World", "root_path": "",
        "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def lifespan_and_requests() -> float:
        started = asyncio.Event()
        stop = asyncio.Event()

        async def lifespan_receive() -> dict[str, Any]:
            if not started.is_set():
                started.set()
                return {"type": "lifespan.startup"}
            await stop.wait()
            return {"type": "lifespan.shutdown"}

        lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                            lifespan_receive, send))  # fmt: skip
        await started.wait()
        scopes = [{**scope, "headers": [*scope["headers"], (b"traceparent", t)]} for t in TRACEPARENTS]
        for index in range(500):  # warm-up
            await app(dict(scopes[index % len(scopes)]), receive, send)
        begin = time.perf_counter()
        for index in range(requests):
            await app(dict(scopes[index % len(scopes)]), receive, send)
        elapsed = time.perf_counter() - begin
        stop.set()
        await lifespan
        return elapsed / requests * 1e6

    return asyncio.run(lifespan_and_requests())


def _histogram_record(requests: int) -> float:
    """The SDK's histogram record alone, with the attributes the service records."""
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    histogram = MeterProvider(metric_readers=[InMemoryMetricReader()], exemplar_filter=AlwaysOffExemplarFilter())
    record = histogram.get_meter("bench").create_histogram("http.server.request.duration").record
    attrs: dict[str, str | int] = {"http.request.method": "GET", "http.response.status_code": 200,
                                   "url.scheme": "http", "http.route": "/api/v1/hello"}  # fmt: skip
    begin = time.perf_counter()
    for _ in range(requests):
        record(0.001, attrs)
    return (time.perf_counter() - begin) / requests * 1e6


def _encode_one_span(requests: int) -> float:
    """What the OTLP exporter spends encoding one span like the service's (what exporting every span would add)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    finished: list[ReadableSpan] = []

    class Keep(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            finished.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    attrs: dict[str, str | int] = {"http.request.method": "GET", "http.response.status_code": 200,
                                   "url.scheme": "http", "http.route": "/api/v1/hello",
                                   "url.path": "/api/v1/hello"}  # fmt: skip
    for _ in range(requests):
        provider.get_tracer("bench").start_span("GET /api/v1/hello", attributes=attrs).end()
    begin = time.perf_counter()
    for start in range(0, requests, 512):  # the batch processor's batches
        encode_spans(finished[start : start + 512]).SerializeToString()
    return (time.perf_counter() - begin) / requests * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from http_throughput import start_sink  # the same sink as the HTTP benchmark

    sink, port = start_sink()
    try:
        results: list[list[float]] = [[] for _ in STEPS]
        for _ in range(args.rounds):
            env: dict[str, str] = {"APP_LOG_FORMAT": "json", "APP_LOG_LEVEL": "INFO"}
            for index, (_, step) in enumerate(STEPS):
                env.update({k: v.replace("SINK", f"http://127.0.0.1:{port}") for k, v in step.items()})
                # Each step in a fresh interpreter, so no provider or log sink of the one before stays behind.
                code = (
                    f"import sys, json; sys.path.insert(0, {str(BENCH)!r}); import per_request_cost as p; "
                    "print(p._measure(json.loads(sys.argv[1]), int(sys.argv[2])))"
                )
                out = subprocess.run(
                    [sys.executable, "-c", code, json.dumps(env), str(args.requests)],
                    capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                results[index].append(float(out.strip().splitlines()[-1]))
        histogram = statistics.median(_histogram_record(args.requests) for _ in range(args.rounds))
        encoding = statistics.median(_encode_one_span(args.requests) for _ in range(args.rounds))
    finally:
        sink.terminate()

    print(f"\nin-process GET /api/v1/hello, {args.requests} requests per run, {args.rounds} rounds, medians")
    print(f"{'configuration':<82} {'µs/req':>7} {'adds':>6}")
    previous = None
    for (label, _), values in zip(STEPS, results, strict=True):
        value = statistics.median(values)
        adds = "" if previous is None else f"{value - previous:+.0f}"
        print(f"{label:<82} {value:>7.0f} {adds:>6}")
        previous = value
    print(f"{'of which the SDK histogram record alone':<82} {histogram:>7.1f}")
    print(f"{'OTLP encoding of one span, which exporting every span would add per request':<82} {encoding:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
