"""Service index, liveness, readiness and Prometheus metrics: the routes a platform calls."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from microservice_demo.runtime import Runtime
from microservice_demo.telemetry import PROMETHEUS_CONTENT_TYPE, SERVICE_NAME


class ProbeStatus(msgspec.Struct):
    status: str
    uptime_seconds: float | None = None


def _unavailable(description: str) -> dict[int, ResponseSpec]:
    return {HTTP_503_SERVICE_UNAVAILABLE: ResponseSpec(ProbeStatus, description=description, generate_examples=False)}


OPENAPI_JSON = "/schema/openapi.json"
DOCS = "/schema/swagger"


@get("/", summary="Service name, version and links to the API docs", tags=["meta"])
async def index(state: State) -> dict[str, Any]:
    settings = Runtime.of(state).settings
    return {
        "service": SERVICE_NAME,
        "version": settings.version,
        "links": {"openapi": OPENAPI_JSON, "docs": DOCS},
    }


@get("/healthz", summary="Liveness", tags=["probes"], responses=_unavailable("Liveness switched off (admin API)"))
async def healthz(state: State) -> Response[dict[str, Any]]:
    lifecycle = Runtime.of(state).lifecycle
    if lifecycle.alive:
        return Response({"status": "ok", "uptime_seconds": round(lifecycle.uptime_seconds, 3)})
    return Response({"status": "unhealthy"}, status_code=HTTP_503_SERVICE_UNAVAILABLE)


@get(
    "/ready",
    summary="Readiness: 503 while starting and once the lifespan shutdown has begun",
    tags=["probes"],
    responses=_unavailable("Starting, or shutting down"),
)
async def ready(state: State) -> Response[dict[str, str]]:
    lifecycle = Runtime.of(state).lifecycle
    status = HTTP_200_OK if lifecycle.ready else HTTP_503_SERVICE_UNAVAILABLE
    return Response({"status": lifecycle.state}, status_code=status)


@get("/metrics", summary="Prometheus metrics of this process", tags=["probes"], media_type=PROMETHEUS_CONTENT_TYPE)
async def metrics(state: State) -> Response[bytes]:
    telemetry = Runtime.of(state).telemetry
    assert telemetry is not None  # the route is registered only when telemetry is on
    return Response(telemetry.prometheus_text(), media_type=PROMETHEUS_CONTENT_TYPE)
