"""Logging: flat JSON lines with trace ids, the standard library routed into loguru, readable local text."""

from __future__ import annotations

import io
import json
import logging

from loguru import logger
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from microservice_demo.logs import LOG_LINKED_ATTRIBUTE, configure_logging


def test_json_lines_are_flat_with_trace_context() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logger.bind(order=7).info("inside {}", "span")
    logger.debug("below the level")
    logger.warning("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    context = span.get_span_context()
    assert first["message"] == "inside span"
    assert first["level"] == "INFO"
    assert first["order"] == 7
    assert first["trace_id"] == format(context.trace_id, "032x")
    assert first["span_id"] == format(context.span_id, "016x")
    assert first["timestamp"].endswith("Z")
    assert second["level"] == "WARNING"
    assert "trace_id" not in second


def test_a_line_links_only_to_a_trace_that_is_exported_and_marks_it_to_be_kept() -> None:
    """A line in a sampled span carries its ids and marks the span for the collector's tail sampling; a line in a
    span that is not sampled (never exported) carries no trace id, so it links to nothing rather than to nothing
    stored."""
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    exported = InMemorySpanExporter()
    sampled = TracerProvider()
    sampled.add_span_processor(SimpleSpanProcessor(exported))
    with sampled.get_tracer("test").start_as_current_span("logged"):
        logger.error("a 5xx")
    with sampled.get_tracer("test").start_as_current_span("quiet"):
        pass
    with TracerProvider(sampler=ALWAYS_OFF).get_tracer("test").start_as_current_span("unsampled"):
        logger.error("not sampled")
    linked, unlinked = (json.loads(line) for line in stream.getvalue().splitlines())
    spans: dict[str, ReadableSpan] = {span.name: span for span in exported.get_finished_spans()}
    assert linked["trace_id"] == format(spans["logged"].context.trace_id, "032x")
    assert spans["logged"].attributes == {LOG_LINKED_ATTRIBUTE: True}
    assert spans["quiet"].attributes == {}
    assert "trace_id" not in unlinked and "span_id" not in unlinked


def test_errors_carry_the_exception() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    (line,) = (json.loads(text) for text in stream.getvalue().splitlines())
    assert line["level"] == "ERROR"
    assert line["exception.type"] == "RuntimeError"
    assert line["exception.message"] == "boom"
    assert "raise RuntimeError" in line["exception.stacktrace"]


def test_standard_library_loggers_are_routed_into_loguru() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    logging.getLogger("_granian").info("Listening at: http://127.0.0.1:1")
    logging.getLogger("litestar").warning("from litestar")
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert [(line["logger"], line["level"], line["message"]) for line in lines] == [
        ("_granian", "INFO", "Listening at: http://127.0.0.1:1"),
        ("litestar", "WARNING", "from litestar"),
    ]


def test_text_format_is_readable() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "text", stream)
    logger.debug("hello {}", "reader")
    logging.getLogger("_granian").info("Listening at: http://127.0.0.1:1")
    first, second = stream.getvalue().splitlines()
    assert first.split()[1] == "DEBUG"
    assert first.endswith("hello reader")
    assert second.split()[2:] == ["_granian", "Listening", "at:", "http://127.0.0.1:1"], "named by its own logger"
    assert not first.startswith("{")


def test_configuring_again_replaces_the_sink() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "json", first)
    configure_logging("INFO", "json", second)
    logger.info("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1
