"""The fair baseline, what a user who knows FastAPI would build: the same endpoints on FastAPI served by uvicorn
(one worker, uvloop and httptools), with the same prometheus_client counter and histogram recorded by a pure ASGI
middleware (no BaseHTTPMiddleware: no extra task and stream per request), labelled by the route template."""

from __future__ import annotations

import time
from typing import Any

from baseline_routes import LATENCY, REQUESTS, build
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class PrometheusMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_and_capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_capture)
        finally:
            route: Any = scope.get("route")  # the routing sets it in this same scope dict
            endpoint = getattr(route, "path", "unmatched")
            LATENCY.labels(scope["method"], endpoint).observe(time.perf_counter() - start)
            REQUESTS.labels(scope["method"], endpoint, str(status)).inc()


app = build("microservice-demo (pure ASGI baseline)")
app.add_middleware(PrometheusMiddleware)
