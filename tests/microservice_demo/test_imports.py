"""What the service imports when it serves: the image leaves out the packages it never does (Containerfile)."""

from __future__ import annotations

import json
import subprocess
import sys

LEFT_OUT_OF_THE_IMAGE = ("polyfactory", "faker")

# Every route family the service has, in a fresh interpreter, with the telemetry the base configures.
PROBE = """
import json, sys
from litestar.testing import TestClient
from microservice_demo.app import create_app
with TestClient(create_app()) as client:
    for path in ("/", "/healthz", "/ready", "/metrics", "/api/v1/hello", "/api/v1/info", "/schema/openapi.json",
                 "/no-such-route"):
        client.get(path)
    client.post("/api/v1/hello", json={"name": "World"})
    client.post("/api/v1/hello", json={"name": ""})
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_serving_imports_nothing_the_image_leaves_out() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={"APP_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin"},
    )
    imported = set(json.loads(result.stdout.splitlines()[-1]))
    assert "litestar" in imported and "opentelemetry" in imported
    assert not imported & set(LEFT_OUT_OF_THE_IMAGE)
