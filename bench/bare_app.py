"""The ceiling: a bare ASGI app answering the two benchmarked routes with fixed JSON, nothing else."""

from __future__ import annotations

import json
from typing import Any

_BODY = json.dumps({"message": "Hello, World!"}).encode()
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":
        more = True
        while more:
            more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
