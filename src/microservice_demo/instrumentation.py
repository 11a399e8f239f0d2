"""HTTP server instrumentation: one histogram sample, one server span and one access line per API request.

This is a plain ASGI middleware rather than ``opentelemetry-instrumentation-asgi`` (or Litestar's plugin built on
it): that middleware also wraps ``receive``/``send`` in spans of their own, and with it a Litestar app was measured
at about a third of the original FastAPI stack's throughput (``bench/README.md`` has this one's figures). Where it
matters for the service's SLOs both record the same: the stable HTTP semantic conventions' duration histogram and
active-requests counter, with ``http.route`` taken from the route template Litestar matched (never the raw path,
so cardinality stays bounded whatever clients send), and one ``SERVER`` span per request whose parent comes from
the incoming ``traceparent``.

It wraps Litestar's whole ASGI handler, outside its exception handling, so 404s, 405s, 500s and the faults the
chaos routes inject are all measured.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from loguru import logger
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from microservice_demo.telemetry import BASELINE_ATTRIBUTE, Telemetry, in_baseline

# Requests to these paths are not API traffic: they are neither measured nor access-logged.
NOT_API_TRAFFIC = frozenset({"/metrics", "/healthz", "/ready"})

# The stable HTTP semantic conventions record methods outside the well-known set as "_OTHER".
_KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})


class _HeaderCarrier:
    """A read-only propagation carrier over ASGI's raw header list; headers are decoded only when asked for."""

    __slots__ = ("_headers",)

    def __init__(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self._headers = headers

    def get(self, key: str) -> list[str] | None:
        wanted = key.encode("latin-1")
        values = [value.decode("latin-1") for name, value in self._headers if name == wanted]
        return values or None

    def keys(self) -> list[str]:
        return [name.decode("latin-1") for name, _ in self._headers]


class _CarrierGetter(Getter[_HeaderCarrier]):
    def get(self, carrier: _HeaderCarrier, key: str) -> list[str] | None:
        return carrier.get(key)

    def keys(self, carrier: _HeaderCarrier) -> list[str]:
        return carrier.keys()


_GETTER = _CarrierGetter()
# The span's attributes known when it starts (the rest are set when the response is known).
_AT_START = frozenset({"http.request.method", "url.scheme"})
_access_logger = logger.bind(logger_name="access")


class HttpInstrumentation:
    """ASGI middleware recording metrics, a server span and an access line for each API request."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry | None, access_log: bool) -> None:
        self._app = app
        self._telemetry = telemetry
        self._access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] in NOT_API_TRAFFIC:
            await self._app(scope, receive, send)
            return

        method = scope["method"]
        method_attr = method if method in _KNOWN_METHODS else "_OTHER"
        scheme = scope.get("scheme", "http")
        path = scope["path"]  # read now: routing rewrites scope["path"] for mounted apps
        telemetry = self._telemetry
        status_code = 500
        span: trace.Span | None = None
        token: object | None = None
        active_key = (method_attr, scheme)

        if telemetry is not None:
            parent = propagate.extract(_HeaderCarrier(scope["headers"]), getter=_GETTER)
            span = telemetry.tracer.start_span(
                method_attr,
                context=parent,
                kind=SpanKind.SERVER,
                attributes={"http.request.method": method_attr, "url.scheme": scheme, "url.path": path},
            )
            token = otel_context.attach(trace.set_span_in_context(span, parent))
            telemetry.active_requests.counts[active_key] += 1

        async def send_and_capture(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self._app(scope, receive, send_and_capture)
        finally:
            duration = time.perf_counter() - start
            route: str | None = scope.get("path_template")
            if telemetry is not None and span is not None:
                attrs: dict[str, str | int] = {
                    "http.request.method": method_attr,
                    "http.response.status_code": status_code,
                    "url.scheme": scheme,
                }
                if route is not None:
                    attrs["http.route"] = route
                if status_code >= 500:
                    attrs["error.type"] = str(status_code)
                telemetry.request_duration.record(duration, attrs)
                telemetry.active_requests.counts[active_key] -= 1
                if span.is_recording():  # the attributes it does not have from its start, in one call
                    span.update_name(f"{method_attr} {route}" if route is not None else method_attr)
                    ending: dict[str, str | int | bool] = {k: v for k, v in attrs.items() if k not in _AT_START}
                    if in_baseline(span.get_span_context().trace_id):
                        ending[BASELINE_ATTRIBUTE] = True
                    span.set_attributes(ending)
                    if status_code >= 500:
                        span.set_status(Status(StatusCode.ERROR))
            if self._access_log or status_code >= 500:
                self._log_access(method, path, route, status_code, duration)
            if span is not None:
                span.end()
            if token is not None:
                otel_context.detach(token)  # type: ignore[arg-type]

    @staticmethod
    def _log_access(method: str, path: str, route: str | None, status_code: int, duration: float) -> None:
        # The request fields travel as keyword arguments: loguru adds them to the record's extra fields.
        _access_logger.log(
            "ERROR" if status_code >= 500 else "INFO",
            "{http_method} {http_path} {http_status}",  # a template: a path with braces is data, never format
            http_method=method,
            http_path=path,
            http_route=route,
            http_status=status_code,
            duration_ms=round(duration * 1000, 3),
        )
