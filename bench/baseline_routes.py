"""The service's endpoints on FastAPI, and the prometheus_client instruments both FastAPI baselines record into
(baseline_app.py: the design's snippet; baseline_asgi_app.py: a pure ASGI middleware)."""

from __future__ import annotations

import os
import time

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field

STARTED = time.monotonic()
REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency", ["method", "endpoint"])

router = APIRouter()


class HelloRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)


@router.get("/")
async def index() -> dict[str, object]:
    return {"service": "microservice-demo", "version": "0.1.0", "links": {"docs": "/docs"}}


@router.get("/healthz")
async def healthz() -> dict[str, object]:
    return {"status": "ok", "uptime_seconds": round(time.monotonic() - STARTED, 3)}


@router.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "serving"}


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/hello")
async def hello_query(name: str = "World") -> dict[str, str]:
    return {"message": f"Hello, {name}!"}


@router.post("/api/v1/hello")
async def hello_body(data: HelloRequest) -> dict[str, str]:
    return {"message": f"Hello, {data.name}!"}


@router.get("/api/v1/info")
async def info() -> dict[str, str]:
    return {"version": "0.1.0", "environment": os.environ.get("APP_ENVIRONMENT", "local")}


def build(title: str) -> FastAPI:
    app = FastAPI(title=title)
    app.include_router(router)
    return app
