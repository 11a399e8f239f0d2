"""The design's original stack, as the baseline: the same endpoints on FastAPI served by uvicorn (one worker),
with a prometheus_client request counter and latency histogram in a middleware, as the design described it."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field

STARTED = time.monotonic()
REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency", ["method", "endpoint"])

app = FastAPI(title="microservice-demo (baseline)")


@app.middleware("http")
async def prometheus_middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    start = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    endpoint = getattr(route, "path", "unmatched")
    LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - start)
    REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    return response


class HelloRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)


@app.get("/")
async def index() -> dict[str, object]:
    return {"service": "microservice-demo", "version": "0.1.0", "links": {"docs": "/docs"}}


@app.get("/healthz")
async def healthz() -> dict[str, object]:
    return {"status": "ok", "uptime_seconds": round(time.monotonic() - STARTED, 3)}


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "serving"}


@app.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@app.get("/api/v1/hello")
async def hello_query(name: str = "World") -> dict[str, str]:
    return {"message": f"Hello, {name}!"}


@app.post("/api/v1/hello")
async def hello_body(data: HelloRequest) -> dict[str, str]:
    return {"message": f"Hello, {data.name}!"}


@app.get("/api/v1/info")
async def info() -> dict[str, str]:
    return {"version": "0.1.0", "environment": os.environ.get("APP_ENVIRONMENT", "local")}
