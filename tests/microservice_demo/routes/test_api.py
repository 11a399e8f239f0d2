"""The public API: greetings, status, info, and problem details for bad requests."""

from __future__ import annotations

from typing import Any

import pytest

PROBLEM = "application/problem+json"


def _assert_names_field(response: Any, field: str) -> None:
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 400
    assert body["title"] == "Bad Request"
    assert body["type"] == "about:blank"
    assert any(error["key"] == field or f"`{field}`" in error["message"] for error in body["errors"]), body


def test_hello_defaults_to_world(service: Any) -> None:
    response = service.client.get("/api/v1/hello")
    assert response.status_code == 200
    assert response.json() == {"message": "Hello, World!"}


@pytest.mark.parametrize("name", ["Ada", "x", "ü" * 64, "Grace Hopper", "名前"])
def test_hello_by_query_and_by_body(service: Any, name: str) -> None:
    by_query = service.client.get("/api/v1/hello", params={"name": name})
    by_body = service.client.post("/api/v1/hello", json={"name": name})
    assert by_query.status_code == by_body.status_code == 200
    assert by_query.json() == by_body.json() == {"message": f"Hello, {name}!"}


@pytest.mark.parametrize(
    "name",
    ["", "x" * 65, "tab\there", "new\nline", "nul\x00", "del\x7f", "nbsp\u00a0x", "line\u2028sep", "\u200b"],
    ids=["empty", "65-chars", "tab", "newline", "nul", "del", "nbsp", "line-separator", "zero-width-space"],
)
def test_hello_rejects_names_that_are_not_1_to_64_printable_characters(service: Any, name: str) -> None:
    _assert_names_field(service.client.get("/api/v1/hello", params={"name": name}), "name")
    _assert_names_field(service.client.post("/api/v1/hello", json={"name": name}), "name")


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "name"), ({"name": 5}, "name"), ({"name": None}, "name"), ({"name": "x", "admin": True}, "admin")],
    ids=["missing", "number", "null", "unknown-field"],
)
def test_hello_body_errors_name_the_field(service: Any, body: dict[str, Any], field: str) -> None:
    _assert_names_field(service.client.post("/api/v1/hello", json=body), field)


@pytest.mark.parametrize(("content", "says"), [(b'{"name": ', "truncated"), (b"{name: 1}", "malformed")])
def test_malformed_json_is_a_400_problem(service: Any, content: bytes, says: str) -> None:
    response = service.client.post("/api/v1/hello", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert says in response.json()["detail"]


def test_status(make_service: Any) -> None:
    with make_service(environment="staging", version="1.2.3") as svc:
        body = svc.client.get("/api/v1/status").json()
    assert body["environment"] == "staging"
    assert body["version"] == "1.2.3"
    assert body["state"] == "serving"
    assert body["uptime_seconds"] >= 0
    assert body["faults_active"] is False


def test_info_reports_what_the_image_and_overlay_set(make_service: Any) -> None:
    image = "ghcr.io/example/microservice-demo@sha256:" + "a" * 64
    with make_service(environment="prod", version="2.0.0", git_commit="0123456789abcdef", image=image) as svc:
        body = svc.client.get("/api/v1/info").json()
    assert body["version"] == "2.0.0"
    assert body["git_commit"] == "0123456789abcdef"
    assert body["image"] == image
    assert body["environment"] == "prod"


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nope", 404), ("DELETE", "/api/v1/hello", 405)])
def test_unknown_routes_and_methods_are_problems(service: Any, method: str, path: str, status: int) -> None:
    response = service.client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == status
