"""The admin API: bearer-token guard, liveness switch and fault injection through the real instrumentation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

ADMIN_ROUTES = [
    ("GET", "/admin/chaos"),
    ("POST", "/admin/chaos"),
    ("DELETE", "/admin/chaos"),
    ("POST", "/admin/liveness"),
]


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 1024 / 1024


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_do_not_exist_without_a_token(service: Any, method: str, path: str) -> None:
    assert service.client.request(method, path, json={}).status_code == 404


def test_chaos_routes_do_not_exist_without_fault_injection(make_service: Any, auth: dict[str, str]) -> None:
    with make_service(admin_token="x" * 20, fault_injection=False) as svc:
        headers = {"Authorization": "Bearer " + "x" * 20}
        assert svc.client.get("/admin/chaos", headers=headers).status_code == 404
        assert svc.client.post("/admin/liveness", json={"alive": True}, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token-0123456789", "Basic dGVzdA==", "bearer test-admin-token-012345678"],
)
@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_need_the_bearer_token(
    admin_service: Any, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = admin_service.client.request(method, path, json={"alive": False}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="admin"'
    assert response.headers["content-type"] == "application/problem+json"
    assert admin_service.runtime.lifecycle.alive is True


def test_liveness_switch(admin_service: Any, auth: dict[str, str]) -> None:
    client = admin_service.client
    assert client.post("/admin/liveness", json={"alive": False}, headers=auth).json() == {"alive": False}
    assert client.get("/healthz").status_code == 503
    assert client.get("/healthz").json() == {"status": "unhealthy"}
    assert client.get("/api/v1/status").json()["state"] == "unhealthy"
    assert client.post("/admin/liveness", json={"alive": True}, headers=auth).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_error_rate_fails_api_requests_only(admin_service: Any, auth: dict[str, str]) -> None:
    client = admin_service.client
    assert client.post("/admin/chaos", json={"error_rate": 1.0}, headers=auth).json()["error_rate"] == 1.0
    response = client.get("/api/v1/hello")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "injected fault" in response.json()["detail"]
    for path in ("/healthz", "/ready", "/metrics"):
        assert client.get(path).status_code == 200, path
    assert client.get("/admin/chaos", headers=auth).status_code == 200


def test_injected_errors_and_latency_reach_metrics_and_logs(admin_service: Any, auth: dict[str, str]) -> None:
    client = admin_service.client
    client.post("/admin/chaos", json={"error_rate": 1.0, "latency_ms": 150}, headers=auth)
    for _ in range(3):
        assert client.get("/api/v1/hello").status_code == 500
    metrics = client.get("/metrics").text
    count = next(
        line
        for line in metrics.splitlines()
        if line.startswith("http_server_request_duration_seconds_count")
        and 'http_route="/api/v1/hello"' in line
        and 'http_response_status_code="500"' in line
    )
    assert count.endswith(" 3.0")
    assert 'error_type="500"' in count
    le_200ms = [
        line
        for line in metrics.splitlines()
        if line.startswith("http_server_request_duration_seconds_bucket")
        and 'http_response_status_code="500"' in line
        and 'le="0.1"' in line
    ]
    assert le_200ms and le_200ms[0].endswith(" 0.0"), "the injected 150 ms must be measured"
    errors = [line for line in admin_service.logs.access() if line["http_status"] == 500]
    assert len(errors) == 3
    assert all(line["level"] == "ERROR" and line["duration_ms"] >= 150 for line in errors)


def test_a_fraction_of_requests_fail(admin_service: Any, auth: dict[str, str]) -> None:
    client = admin_service.client
    client.post("/admin/chaos", json={"error_rate": 0.5}, headers=auth)
    statuses = [client.get("/api/v1/hello").status_code for _ in range(200)]
    assert set(statuses) == {200, 500}
    assert 40 <= statuses.count(500) <= 160


def test_cpu_burn_runs_and_heals(admin_service: Any, auth: dict[str, str]) -> None:
    client = admin_service.client
    started = time.process_time()
    assert client.post("/admin/chaos", json={"cpu": 30}, headers=auth).json()["cpu_seconds_left"] > 29
    time.sleep(0.5)
    assert time.process_time() - started > 0.2, "a core must really be busy"
    assert client.get("/api/v1/status").json()["faults_active"] is True
    healed = client.delete("/admin/chaos", headers=auth).json()
    assert healed["cpu_seconds_left"] == 0.0
    assert admin_service.runtime.faults.any_active is False


def test_memory_is_really_held_then_released(admin_service: Any, auth: dict[str, str]) -> None:
    client = admin_service.client
    before = _rss_mb()
    assert client.post("/admin/chaos", json={"memory": 64}, headers=auth).json()["memory_mb"] == 64
    assert _rss_mb() - before > 60
    client.delete("/admin/chaos", headers=auth)
    assert _rss_mb() - before < 20


def test_faults_expire_by_themselves(admin_service: Any, auth: dict[str, str]) -> None:
    client = admin_service.client
    client.post("/admin/chaos", json={"error_rate": 1.0, "duration_seconds": 0.3}, headers=auth)
    assert client.get("/api/v1/hello").status_code == 500
    time.sleep(0.4)
    assert client.get("/api/v1/hello").status_code == 200
    assert client.get("/admin/chaos", headers=auth).json()["error_rate"] == 0.0


@pytest.mark.parametrize(
    "body",
    [
        {"error_rate": 1.01},
        {"error_rate": -0.1},
        {"latency_ms": -1},
        {"latency_ms": 60_001},
        {"cpu": 301},
        {"cpu": 0},
        {"memory": 257},
        {"memory": 0},
        {"error_rate": 0.5, "duration_seconds": 301},
        {"error_rate": "half"},
        {"explode": True},
    ],
)
def test_every_fault_is_bounded(admin_service: Any, auth: dict[str, str], body: dict[str, Any]) -> None:
    response = admin_service.client.post("/admin/chaos", json=body, headers=auth)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert admin_service.runtime.faults.any_active is False
