"""The design's snippet, reproduced: FastAPI on uvicorn (one worker) with the request counter and latency histogram
in `@app.middleware("http")`, Starlette's BaseHTTPMiddleware, which costs a task and a stream per request."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from baseline_routes import LATENCY, REQUESTS, build
from fastapi import Request, Response

app = build("microservice-demo (the design's snippet)")


@app.middleware("http")
async def prometheus_middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    start = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    endpoint = getattr(route, "path", "unmatched")
    LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - start)
    REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    return response
