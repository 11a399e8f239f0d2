"""The index, liveness, readiness and metrics routes."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from microservice_demo.app import create_app
from microservice_demo.settings import Settings


def test_index_names_service_version_and_docs(service: Any) -> None:
    response = service.client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["service"] == "microservice-demo"
    assert body["version"] == "0.1.0"
    for link in body["links"].values():
        assert service.client.get(link).status_code == 200


def test_healthz_ok(service: Any) -> None:
    response = service.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["uptime_seconds"] >= 0


def test_ready_only_between_startup_and_shutdown() -> None:
    app = create_app(Settings())
    client = TestClient(app)  # not entered: the lifespan has not started
    response = client.get("/ready")
    assert (response.status_code, response.json()) == (503, {"status": "starting"})
    with client:
        assert client.get("/ready").status_code == 200
        assert client.get("/ready").json() == {"status": "serving"}
    response = client.get("/ready")  # after the lifespan's shutdown
    assert (response.status_code, response.json()) == (503, {"status": "stopping"})


def test_metrics_in_prometheus_text_format(service: Any) -> None:
    service.client.get("/api/v1/hello")
    response = service.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE http_server_request_duration_seconds histogram" in response.text


def test_metrics_route_absent_when_the_sdk_is_disabled(monkeypatch: Any, make_service: Any) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with make_service() as svc:
        assert svc.client.get("/metrics").status_code == 404
        assert svc.client.get("/api/v1/hello").status_code == 200
