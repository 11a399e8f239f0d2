"""Logging: loguru everywhere, the standard library's loggers (Granian, Litestar) routed into it.

Production format is one flat JSON object per line on stdout with ``timestamp``, ``level``, ``message``,
``logger``, ``trace_id`` and ``span_id`` (lower-case hex, as OpenTelemetry describes for non-OTLP logs), plus
whatever fields the call bound (the access line binds the request's). Local format is readable text.

A line carries trace ids only if its span is sampled (exported), and the span is then marked with
``LOG_LINKED_ATTRIBUTE``: the collector's tail sampling keeps every trace so marked
(base/observability/charts/alloy.application.yaml), so a link from a log line always leads to a stored trace.

loguru's own ``serialize=True`` nests everything under ``record`` and costs more per line than the request
it describes; the sink below writes the flat object with msgspec instead (no library does that for loguru).
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
from loguru import logger
from opentelemetry import trace

if TYPE_CHECKING:
    from loguru import Message, Record

LOG_LINKED_ATTRIBUTE = "microservice_demo.log.linked"

_encoder = msgspec.json.Encoder()
# Local, readable: the request fields an access line carries are in its message already.
_TEXT_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <8}</level> <cyan>{extra[logger_name]}</cyan> {message}"
)


def _add_trace_context(record: Record) -> None:
    """Patcher: name the logger (the standard library's, for intercepted records) and stamp the active span's ids
    on every record written inside a sampled span, marking the span so its trace is kept; outside a span, or in
    one that is not sampled (never exported), leave them out."""
    extra = record["extra"]
    extra.setdefault("logger_name", record["name"])
    span = trace.get_current_span()
    context = span.get_span_context()
    if context.is_valid and context.trace_flags.sampled:
        extra["trace_id"] = format(context.trace_id, "032x")
        extra["span_id"] = format(context.span_id, "016x")
        span.set_attribute(LOG_LINKED_ATTRIBUTE, True)


class JsonSink:
    """A loguru sink writing one flat JSON object per record."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __call__(self, message: Message) -> None:
        record = message.record
        line: dict[str, Any] = {
            "timestamp": record["time"].astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "level": record["level"].name,
            "message": record["message"],
            "logger": record["extra"].pop("logger_name"),
        }
        line.update(record["extra"])
        exception = record["exception"]
        if exception is not None and exception.type is not None:
            line["exception.type"] = exception.type.__name__
            line["exception.message"] = str(exception.value)
            line["exception.stacktrace"] = "".join(
                traceback.format_exception(exception.type, exception.value, exception.traceback)
            ).rstrip()
        self._stream.write(_encoder.encode(line).decode() + "\n")
        self._stream.flush()


class InterceptHandler(logging.Handler):
    """Hand standard-library log records to loguru, keeping the original logger name and level."""

    def emit(self, record: logging.LogRecord) -> None:
        level: str | int
        try:
            level = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.bind(logger_name=record.name).opt(exception=record.exc_info).log(level, record.getMessage())


def configure_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Configure loguru for this process and route the standard library's logging into it.

    Safe to call again (tests and reloads do): loguru's handlers are replaced, not added.
    """
    out = stream if stream is not None else sys.stdout
    logger.remove()
    logger.configure(patcher=_add_trace_context, extra={})
    if fmt == "json":
        logger.add(JsonSink(out), level=level, format="{message}", backtrace=False, diagnose=False)
    else:
        logger.add(out, level=level, format=_TEXT_FORMAT, backtrace=False, diagnose=False, colorize=None)

    root = logging.getLogger()
    root.handlers = [InterceptHandler()]
    root.setLevel(logging.getLevelName(level if level != "TRACE" else "DEBUG"))
    for name in ("_granian", "granian", "granian.access", "litestar", "uvicorn", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers = []
        named.propagate = True
